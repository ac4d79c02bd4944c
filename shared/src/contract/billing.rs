//! The [`crate::ports::MailboxCountStore`] contract, run against memory and DynamoDB on moto: a
//! day recorded twice keeps the last figure, ranges come oldest first, the latest figure per
//! tenant never moves back to an older day, days past the MSP's retention are gone once the
//! next day is recorded, settings default until set — every key under its MSP. And the
//! [`crate::ports::BillingStore`] contract: mappings replaced per (destination, tenant), one
//! sync record per mapping, both gone with the mapping.

use super::{unique_msp, unique_tenant};
use crate::billing::{BillingSettings, DailyCount};
use crate::ids::TenantId;
use chrono::{NaiveDate, TimeZone, Utc};

/// A fresh figure of `protected` mailboxes for `tenant` on `day`.
#[must_use]
pub fn sample_count(tenant: &TenantId, day: NaiveDate, protected: u32) -> DailyCount {
    DailyCount {
        tenant_id: tenant.clone(),
        day,
        protected_mailboxes: protected,
        users: protected + 3,
        counted_on: day,
        recorded_at: Utc.timestamp_opt(1_765_000_000, 0).unwrap(),
        carried_over: None,
    }
}

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Duration::days(i64::from(n))
}

/// What every [`crate::ports::MailboxCountStore`] must do.
pub async fn mailbox_count_store_contract(store: &dyn crate::ports::MailboxCountStore) {
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let (t1, t2) = (unique_tenant(), unique_tenant());
    assert_eq!(store.billing_settings(&msp_id).await.unwrap(), BillingSettings::default(), "defaults until set");
    let keep_week = BillingSettings { count_retention_days: 7, ..BillingSettings::default() };
    store.put_billing_settings(&msp_id, &keep_week).await.unwrap();
    assert_eq!(store.billing_settings(&msp_id).await.unwrap(), keep_week);
    assert_eq!(store.billing_settings(&other_msp).await.unwrap(), BillingSettings::default(), "another MSP's are its own");

    assert_eq!(store.counts_requested_on(&msp_id).await.unwrap(), None);
    store.set_counts_requested_on(&msp_id, day(3)).await.unwrap();
    store.set_counts_requested_on(&msp_id, day(4)).await.unwrap();
    assert_eq!(store.counts_requested_on(&msp_id).await.unwrap(), Some(day(4)));
    assert_eq!(store.counts_requested_on(&other_msp).await.unwrap(), None);

    let long = BillingSettings::default();
    for n in 0..5 {
        store.record_count(&msp_id, &sample_count(&t1, day(n), 10 + n), &long).await.unwrap();
    }
    store.record_count(&msp_id, &sample_count(&t2, day(2), 99), &long).await.unwrap();
    let carried = sample_count(&t1, day(3), 13).carried_to(day(4), "throttled", Utc.timestamp_opt(1_765_100_000, 0).unwrap());
    store.record_count(&msp_id, &carried, &long).await.unwrap();
    let series = store.counts(&msp_id, &t1, day(1), day(4)).await.unwrap();
    assert_eq!(series.iter().map(|c| c.day).collect::<Vec<_>>(), vec![day(1), day(2), day(3), day(4)], "oldest first, both ends");
    assert_eq!(series[3], carried, "a day recorded again keeps the last figure");
    assert!(store.counts(&msp_id, &t1, day(4), day(1)).await.unwrap().is_empty(), "an empty range");
    assert!(store.counts(&other_msp, &t1, day(0), day(9)).await.unwrap().is_empty(), "another MSP reads none");

    let latest = store.latest_counts(&msp_id).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[&t1], carried);
    assert_eq!(latest[&t2].protected_mailboxes, 99);
    store.record_count(&msp_id, &sample_count(&t2, day(1), 1), &long).await.unwrap();
    assert_eq!(store.latest_counts(&msp_id).await.unwrap()[&t2].day, day(2), "an older day written late is not the latest");
    assert!(store.latest_counts(&other_msp).await.unwrap().is_empty());

    store.record_count(&msp_id, &sample_count(&t1, day(10), 20), &keep_week).await.unwrap();
    let kept = store.counts(&msp_id, &t1, day(0), day(10)).await.unwrap();
    assert_eq!(kept.iter().map(|c| c.day).collect::<Vec<_>>(), vec![day(4), day(10)], "days older than a week before day 10 are gone");
    assert_eq!(store.counts(&msp_id, &t2, day(0), day(10)).await.unwrap().len(), 2, "another tenant's series is left alone");
}

/// What every [`crate::ports::BillingStore`] must do.
pub async fn billing_store_contract(store: &dyn crate::ports::BillingStore) {
    use crate::billing::sync::{BillingMapping, SyncOutcome, SyncRecord};
    use crate::ids::DestinationId;
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let (t1, t2) = (unique_tenant(), unique_tenant());
    let (psa, other_psa) = (DestinationId::parse("psa").unwrap(), DestinationId::parse("at").unwrap());
    let mapping = |tenant: &TenantId, destination: &DestinationId, agreement: &str| BillingMapping {
        tenant_id: tenant.clone(),
        destination_id: destination.clone(),
        agreement_id: agreement.into(),
        product_id: "VIGIL-MBX".into(),
        restore_hand_edits: false,
    };
    store.put_mapping(&msp_id, &mapping(&t1, &psa, "1")).await.unwrap();
    store.put_mapping(&msp_id, &mapping(&t2, &psa, "2")).await.unwrap();
    store.put_mapping(&msp_id, &mapping(&t1, &other_psa, "3")).await.unwrap();
    store.put_mapping(&msp_id, &mapping(&t1, &psa, "4")).await.unwrap();
    let mut listed = store.mappings(&msp_id).await.unwrap();
    listed.sort_by(|a, b| a.agreement_id.cmp(&b.agreement_id));
    assert_eq!(listed.iter().map(|m| m.agreement_id.as_str()).collect::<Vec<_>>(), vec!["2", "3", "4"], "one per (destination, tenant)");
    assert!(store.mappings(&other_msp).await.unwrap().is_empty());

    assert_eq!(store.sync_record(&msp_id, &psa, &t1).await.unwrap(), None);
    let intent = SyncRecord {
        tenant_id: t1.clone(),
        destination_id: psa.clone(),
        period: "2026-12".into(),
        found: Some(3),
        target: 9,
        outcome: None,
        last_set: None,
        hand_edit: None,
        at: chrono::Utc.timestamp_opt(1_765_000_000, 0).unwrap(),
    };
    store.put_sync_record(&msp_id, &intent).await.unwrap();
    let done = SyncRecord { outcome: Some(SyncOutcome::Set), last_set: Some(9), ..intent.clone() };
    store.put_sync_record(&msp_id, &done).await.unwrap();
    assert_eq!(store.sync_record(&msp_id, &psa, &t1).await.unwrap(), Some(done), "the outcome replaces the intent");
    assert_eq!(store.sync_record(&other_msp, &psa, &t1).await.unwrap(), None);
    assert_eq!(store.sync_record(&msp_id, &other_psa, &t1).await.unwrap(), None);

    assert!(store.delete_mapping(&msp_id, &psa, &t1).await.unwrap());
    assert!(!store.delete_mapping(&msp_id, &psa, &t1).await.unwrap(), "nothing left to delete");
    assert_eq!(store.sync_record(&msp_id, &psa, &t1).await.unwrap(), None, "the record goes with its mapping");
    assert_eq!(store.mappings(&msp_id).await.unwrap().len(), 2);
}

/// The lines a [`billing_target_contract`] run uses in one PSA (set up by the caller).
pub struct BillingContractLines {
    /// An active agreement or contract with the product on it.
    pub line: crate::billing::sync::BillingLine,
    /// An agreement that does not exist.
    pub missing_agreement: crate::billing::sync::BillingLine,
    /// An agreement that exists, cancelled.
    pub cancelled: crate::billing::sync::BillingLine,
    /// An active agreement without the product.
    pub missing_product: crate::billing::sync::BillingLine,
    /// A period inside the agreement.
    pub period: crate::billing::sync::BillingPeriod,
}

/// What every writing [`crate::ports::BillingTarget`] must do: refuse lines that do not exist
/// or are cancelled naming them, read a line's quantity, set it (again to the same is no
/// change), and read back a quantity changed by hand (`set_by_hand`, the PSA's own screens).
pub async fn billing_target_contract<F, Fut>(target: &dyn crate::ports::BillingTarget, lines: &BillingContractLines, set_by_hand: F)
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    assert!(target.writes());
    target.check_line(&lines.line).await.unwrap();
    for (bad, named) in [
        (&lines.missing_agreement, &lines.missing_agreement.agreement_id),
        (&lines.cancelled, &lines.cancelled.agreement_id),
        (&lines.missing_product, &lines.missing_product.product_id),
    ] {
        let refused = target.check_line(bad).await.unwrap_err();
        assert!(refused.to_string().contains(named.as_str()), "the refusal names {named}: {refused}");
    }
    let period = &lines.period;
    let start = target.quantity(&lines.line, period).await.unwrap();
    target.set_quantity(&lines.line, period, start, 12).await.unwrap();
    assert_eq!(target.quantity(&lines.line, period).await.unwrap(), Some(12));
    target.set_quantity(&lines.line, period, Some(12), 12).await.unwrap();
    assert_eq!(target.quantity(&lines.line, period).await.unwrap(), Some(12), "the same quantity again changes nothing");
    target.set_quantity(&lines.line, period, Some(12), 9).await.unwrap();
    assert_eq!(target.quantity(&lines.line, period).await.unwrap(), Some(9), "down as well as up");
    set_by_hand(30).await;
    assert_eq!(target.quantity(&lines.line, period).await.unwrap(), Some(30), "a hand edit is read back");
}
