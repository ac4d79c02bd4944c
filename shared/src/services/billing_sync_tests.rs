//! Tests of the billing sync on the in-memory PSA: the first sync sets the figure, a same-period
//! re-run changes nothing, a crash between the PSA write and the record never writes twice, a
//! hand edit is reported once and kept or set back as the mapping says, a dry run writes
//! nothing, a report-only PSA is never written and a tenant without a figure is never billed.

use super::*;
use crate::billing::BillingSettings;
use crate::billing::sync::{BillingLine, SyncSchedule};
use crate::clock::ManualClock;
use crate::ids::{DestinationId, TenantId};
use crate::memory::*;
use chrono::{NaiveDate, TimeZone, Utc};

struct Fixture {
    service: BillingSyncService,
    store: Arc<MemoryBillingStore>,
    psa: Arc<MemoryBillingTarget>,
    events: Arc<MemoryQueue>,
    msp: MspId,
    tenant: TenantId,
    line: BillingLine,
}

fn period(key_day: u32) -> BillingPeriod {
    SyncSchedule::Daily.period_of(NaiveDate::from_ymd_opt(2026, 12, key_day).unwrap())
}

async fn fixture(writes: bool, restore: bool) -> Fixture {
    let msp = MspId::parse("acme").unwrap();
    let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    let config = Arc::new(MemoryConfigStore::default());
    crate::ports::DestinationStore::put_destination(config.as_ref(), &crate::contract::sample_destination(&msp, "psa")).await.unwrap();
    let store = Arc::new(MemoryBillingStore::default());
    let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    store.record_count(&msp, &crate::contract::sample_count(&tenant, day, 40), &BillingSettings::default()).await.unwrap();
    let mapping = BillingMapping {
        tenant_id: tenant.clone(),
        destination_id: DestinationId::parse("psa").unwrap(),
        agreement_id: "7".into(),
        product_id: "VIGIL-MBX".into(),
        restore_hand_edits: restore,
    };
    BillingStore::put_mapping(store.as_ref(), &msp, &mapping).await.unwrap();
    let psa = Arc::new(MemoryBillingTarget::new(writes));
    psa.add_agreement("7", false);
    let targets = Arc::new(MemoryBillingTargets::default());
    targets.set(&mapping.destination_id, psa.clone());
    let events = Arc::new(MemoryQueue::default());
    let service = BillingSyncService {
        billing: store.clone(),
        counts: store.clone(),
        destinations: config,
        targets,
        events: events.clone(),
        clock: Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 6, 0, 30, 0).unwrap())),
    };
    Fixture { service, store, psa, events, msp, tenant, line: mapping.line() }
}

async fn figure(f: &Fixture, day: u32, protected: u32) {
    let day = NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
    f.store.record_count(&f.msp, &crate::contract::sample_count(&f.tenant, day, protected), &BillingSettings::default()).await.unwrap();
}

#[tokio::test]
async fn the_first_sync_sets_the_figure_and_a_same_period_rerun_changes_nothing() {
    let f = fixture(true, false).await;
    f.psa.set_by_hand(&f.line, 12);
    let lines = f.service.sync(&f.msp, &period(6), false).await.unwrap();
    assert_eq!((lines[0].current, lines[0].new, lines[0].result.as_str()), (Some(12), Some(40), "set"));
    assert_eq!(f.psa.quantity_of(&f.line), Some(40));
    figure(&f, 6, 44).await;
    let again = f.service.sync(&f.msp, &period(6), false).await.unwrap();
    assert_eq!(again[0].result, "done_before");
    assert_eq!(f.psa.writes_made().len(), 1, "one write for the period, whatever the re-runs");
    assert!(f.events.drain().is_empty(), "no hand edit");
    let next = f.service.sync(&f.msp, &period(7), false).await.unwrap();
    assert_eq!((next[0].current, next[0].new, next[0].result.as_str()), (Some(40), Some(44), "set"));
}

#[tokio::test]
async fn a_crash_between_the_psa_write_and_the_record_never_writes_twice() {
    let f = fixture(true, false).await;
    f.psa.set_by_hand(&f.line, 12);
    f.psa.lose_next_answer();
    let error = f.service.sync(&f.msp, &period(6), false).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "retried");
    assert_eq!(f.psa.quantity_of(&f.line), Some(40), "the write happened");
    let retried = f.service.sync(&f.msp, &period(6), false).await.unwrap();
    assert_eq!(retried[0].result, "set");
    assert_eq!(f.psa.writes_made().len(), 1, "found set: not written again");
    let record = f.store.sync_record(&f.msp, &DestinationId::parse("psa").unwrap(), &f.tenant).await.unwrap().unwrap();
    assert_eq!((record.found, record.last_set, record.outcome), (Some(12), Some(40), Some(SyncOutcome::Set)));
}

#[tokio::test]
async fn a_write_that_failed_before_reaching_the_psa_is_made_on_the_retry_once() {
    let f = fixture(true, false).await;
    f.psa.set_by_hand(&f.line, 12);
    f.psa.fail_next(SinkError::Throttled { retry_after: Some(std::time::Duration::from_secs(3)) });
    let throttled = f.service.sync(&f.msp, &period(6), false).await.unwrap_err();
    assert_eq!(throttled.retry_after(), Some(std::time::Duration::from_secs(3)), "the PSA's delay is kept");
    f.psa.fail_next_write(SinkError::Unavailable("503".into()));
    assert!(f.service.sync(&f.msp, &period(6), false).await.is_err());
    assert_eq!(f.psa.quantity_of(&f.line), Some(12), "nothing written yet");
    assert_eq!(f.service.sync(&f.msp, &period(6), false).await.unwrap()[0].result, "set");
    assert_eq!(f.psa.writes_made(), vec![(f.line.clone(), Some(12), 40)]);
}

#[tokio::test]
async fn a_hand_edit_is_reported_once_and_kept_when_the_mapping_does_not_restore() {
    let f = fixture(true, false).await;
    f.service.sync(&f.msp, &period(6), false).await.unwrap();
    f.psa.set_by_hand(&f.line, 55);
    let lines = f.service.sync(&f.msp, &period(7), false).await.unwrap();
    assert_eq!(lines[0].result, "hand_edit_kept");
    assert_eq!(lines[0].hand_edit, Some(HandEdit { set_by_vigil: 40, found: Some(55) }));
    assert_eq!(f.psa.quantity_of(&f.line), Some(55), "left as the technician set it");
    let events = f.events.drain();
    assert_eq!(events.len(), 1);
    let message: AuditEventsMessage = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(message.content_id, BILLING_EVENTS);
    assert_eq!(message.records[0]["Operation"], QUANTITY_CHANGED);
    assert_eq!((message.records[0]["SetByVigil"].as_u64(), message.records[0]["FoundInPsa"].as_u64()), (Some(40), Some(55)));
    f.service.sync(&f.msp, &period(8), false).await.unwrap();
    assert_eq!(f.psa.quantity_of(&f.line), Some(40), "the next period syncs the figure again");
}

#[tokio::test]
async fn a_hand_edit_is_set_back_when_the_mapping_says_so() {
    let f = fixture(true, true).await;
    f.service.sync(&f.msp, &period(6), false).await.unwrap();
    f.psa.set_by_hand(&f.line, 55);
    let lines = f.service.sync(&f.msp, &period(7), false).await.unwrap();
    assert_eq!(lines[0].result, "set");
    assert_eq!(f.psa.quantity_of(&f.line), Some(40));
    let message: AuditEventsMessage = serde_json::from_str(&f.events.drain()[0]).unwrap();
    assert_eq!(message.records[0]["SetBack"], true);
}

#[tokio::test]
async fn a_dry_run_shows_the_current_and_new_quantity_and_writes_nothing() {
    let f = fixture(true, false).await;
    f.psa.set_by_hand(&f.line, 12);
    let lines = f.service.sync(&f.msp, &period(6), true).await.unwrap();
    assert_eq!((lines[0].current, lines[0].new, lines[0].result.as_str()), (Some(12), Some(40), "would_set"));
    assert!(f.psa.writes_made().is_empty());
    assert!(f.store.sync_record(&f.msp, &DestinationId::parse("psa").unwrap(), &f.tenant).await.unwrap().is_none());
}

#[tokio::test]
async fn a_report_only_psa_is_shown_the_figure_and_never_written() {
    let f = fixture(false, true).await;
    f.psa.set_by_hand(&f.line, 12);
    let lines = f.service.sync(&f.msp, &period(6), false).await.unwrap();
    assert_eq!((lines[0].current, lines[0].new, lines[0].result.as_str()), (Some(12), Some(40), "report_only"));
    assert!(f.psa.writes_made().is_empty());
}

#[tokio::test]
async fn a_tenant_never_counted_is_skipped_never_billed_zero() {
    let f = fixture(true, false).await;
    let other = TenantId::parse("0e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    let mapping = BillingMapping {
        tenant_id: other,
        destination_id: DestinationId::parse("psa").unwrap(),
        agreement_id: "7".into(),
        product_id: "OTHER".into(),
        restore_hand_edits: false,
    };
    BillingStore::put_mapping(f.store.as_ref(), &f.msp, &mapping).await.unwrap();
    let lines = f.service.sync(&f.msp, &period(6), false).await.unwrap();
    let skipped = lines.iter().find(|l| l.product_id == "OTHER").unwrap();
    assert_eq!((skipped.result.as_str(), skipped.new), ("skipped", None));
    assert_eq!(f.psa.writes_made().len(), 1, "only the counted tenant");
}
