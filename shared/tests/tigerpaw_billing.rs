//! Tigerpaw billing (report-only: agreements and their additional charges, read) against the
//! Tigerpaw simulator, one simulator per test on `127.0.0.1`, built through the production
//! provider: a mapping to an agreement that does not exist, is cancelled or has expired is refused
//! naming it; the current quantity is read from the agreement's additional charges; a sync run
//! records `report_only` with the current and Vigil's figure and sends no write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use std::sync::Arc;
use vigil::billing::BillingSettings;
use vigil::billing::sync::{BillingLine, BillingMapping, SyncOutcome, SyncSchedule};
use vigil::clock::{ManualClock, SystemClock};
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::connectors::psa::PsaProvider;
use vigil::contract::sample_destination;
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, TigerpawAuth, TigerpawSettings};
use vigil::error::SinkError;
use vigil::ids::{DestinationId, MspId, TenantId};
use vigil::memory::{MemoryBillingStore, MemoryConfigStore, MemoryQueue, MemoryRequestBudget, MemorySecretStore};
use vigil::ports::{BillingStore, BillingTargets, DestinationStore, MailboxCountStore, SecretName, SecretStore};
use vigil::secret::SecretString;
use vigil::services::billing_sync::BillingSyncService;
use vigil_simulators::tigerpaw::tables::CONTOSO_ACCOUNT;
use vigil_simulators::tigerpaw::{AuthForm, TigerpawKeys, TigerpawSim, TigerpawSimHandle};

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;
const ITEM: &str = "VIGIL-MBX";

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

fn destination(sim: &TigerpawSimHandle) -> Destination {
    let mut destination = sample_destination(&MspId::parse("acme").unwrap(), "tigerpaw");
    destination.settings = DestinationSettings::Tigerpaw(TigerpawSettings {
        url: sim.base_url(),
        auth: TigerpawAuth::Tsi,
        rep_number: None,
        service_order_type: None,
        new_status: None,
        note_topic: None,
    });
    destination
}

/// The production provider, the destination's keys in its secret store.
async fn provider(sim: &TigerpawSimHandle) -> PsaProvider {
    let keys = sim.keys();
    let credentials = DestinationCredentials::Tigerpaw { public_key: keys.public_key, private_key: SecretString::new(keys.private_key) };
    let secrets = Arc::new(MemorySecretStore::default());
    let destination = destination(sim);
    let stored = SecretString::new(serde_json::to_string(&credentials).unwrap());
    secrets.put_secret(&SecretName::destination(&destination.msp_id, &destination.id), &stored).await.unwrap();
    PsaProvider::new(secrets, POLICY, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock))
        .with_http(destination_http_client(POLICY).unwrap())
}

fn line(agreement: i64, item: &str) -> BillingLine {
    BillingLine { agreement_id: agreement.to_string(), product_id: item.to_owned() }
}

async fn started() -> (TigerpawSimHandle, i64) {
    let sim = TigerpawSim::start(TigerpawKeys::sample(), AuthForm::Tsi).await.unwrap();
    let agreement = sim.add_agreement(CONTOSO_ACCOUNT, "Contoso managed security", day(1, 1));
    sim.set_additional_charge(agreement, ITEM, 12, day(11, 1)).unwrap();
    (sim, agreement)
}

fn refusal(result: Result<(), SinkError>) -> String {
    match result {
        Err(SinkError::Rejected(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn tigerpaw_billing_is_report_only_and_refuses_an_agreement_missing_cancelled_or_expired_naming_it() {
    let (sim, agreement) = started().await;
    let cancelled = sim.add_agreement(CONTOSO_ACCOUNT, "Fabrikam (cancelled)", day(1, 1));
    sim.set_agreement_status(cancelled, "Cancelled", Some(day(10, 31)));
    let expired = sim.add_agreement(CONTOSO_ACCOUNT, "Northwind (expired)", day(1, 1));
    sim.set_agreement_status(expired, "Expired", Some(day(6, 30)));
    let target = provider(&sim).await.billing_for(&destination(&sim)).await.unwrap();
    assert!(!target.writes(), "the REST API has no confirmed write path for agreement charges");

    target.check_line(&line(agreement, ITEM)).await.unwrap();
    assert!(refusal(target.check_line(&line(999_999, ITEM)).await).contains("agreement 999999 does not exist"));
    let why = refusal(target.check_line(&line(cancelled, ITEM)).await);
    assert!(why.contains(&format!("agreement {cancelled}")) && why.contains("Cancelled"), "{why}");
    let why = refusal(target.check_line(&line(expired, ITEM)).await);
    assert!(why.contains(&format!("agreement {expired}")) && why.contains("Expired"), "{why}");
    assert!(matches!(
        target.check_line(&BillingLine { agreement_id: "abc".into(), product_id: ITEM.into() }).await,
        Err(SinkError::Invalid(_))
    ));
}

#[tokio::test]
async fn the_current_quantity_is_read_from_the_agreement_additional_charges() {
    let (sim, agreement) = started().await;
    let target = provider(&sim).await.billing_for(&destination(&sim)).await.unwrap();
    let period = SyncSchedule::MonthEnd.period_of(day(12, 6));
    assert_eq!(target.quantity(&line(agreement, ITEM), &period).await.unwrap(), Some(12));
    assert_eq!(target.quantity(&line(agreement, "vigil-mbx"), &period).await.unwrap(), Some(12), "item codes match in any case");
    assert_eq!(target.quantity(&line(agreement, "OTHER-ITEM"), &period).await.unwrap(), None, "not on the agreement");
    sim.set_additional_charge(agreement, ITEM, 17, day(12, 2)).unwrap();
    assert_eq!(target.quantity(&line(agreement, ITEM), &period).await.unwrap(), Some(17), "read again, never cached");
    let reads = sim.requests().iter().filter(|r| r.path.to_ascii_lowercase().ends_with("/additionalcharges")).count();
    assert_eq!(reads, 4);
}

#[tokio::test]
async fn a_sync_run_records_report_only_with_both_figures_and_sends_no_write() {
    let (sim, agreement) = started().await;
    let msp = MspId::parse("acme").unwrap();
    let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    let config = Arc::new(MemoryConfigStore::default());
    config.put_destination(&destination(&sim)).await.unwrap();
    let store = Arc::new(MemoryBillingStore::default());
    store.record_count(&msp, &vigil::contract::sample_count(&tenant, day(12, 6), 42), &BillingSettings::default()).await.unwrap();
    let mapping = BillingMapping {
        tenant_id: tenant.clone(),
        destination_id: DestinationId::parse("tigerpaw").unwrap(),
        agreement_id: agreement.to_string(),
        product_id: ITEM.into(),
        restore_hand_edits: true,
    };
    store.put_mapping(&msp, &mapping).await.unwrap();
    let sync = BillingSyncService {
        billing: store.clone(),
        counts: store.clone(),
        destinations: config,
        targets: Arc::new(provider(&sim).await),
        events: Arc::new(MemoryQueue::default()),
        clock: Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 6, 1, 0, 0).unwrap())),
    };
    let period = SyncSchedule::MonthEnd.period_of(day(12, 6));
    let lines = sync.sync(&msp, &period, false).await.unwrap();
    assert_eq!((lines[0].current, lines[0].new, lines[0].result.as_str()), (Some(12), Some(42), "report_only"));
    let again = sync.sync(&msp, &period, false).await.unwrap();
    assert_eq!(again[0].result, "done_before", "a re-run of the period never turns into a write");
    let record = store.sync_record(&msp, &mapping.destination_id, &tenant).await.unwrap().expect("the run is recorded");
    assert_eq!(
        (record.period.as_str(), record.found, record.target, record.outcome, record.last_set),
        (period.key.as_str(), Some(12), 42, Some(SyncOutcome::ReportOnly), None)
    );
    assert_eq!(sim.agreement_write_attempts(), 0, "no write reached the agreements");
    assert!(sim.requests().iter().all(|r| r.method == "GET"), "only reads: {:?}", sim.requests());
    let target = provider(&sim).await.billing_for(&destination(&sim)).await.unwrap();
    assert_eq!(target.quantity(&line(agreement, ITEM), &period).await.unwrap(), Some(12), "the charge is unchanged");
}

#[tokio::test]
async fn the_simulator_refuses_and_counts_a_write_to_agreement_charges_as_the_read_only_api_does() {
    let (sim, agreement) = started().await;
    let answer = reqwest::Client::new()
        .post(format!("{}/api/agreements/{agreement}/additionalcharges", sim.base_url()))
        .header("Authorization", sim.keys().header(AuthForm::Tsi))
        .json(&serde_json::json!({"SpecialItemId": ITEM, "Quantity": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 405);
    assert_eq!(sim.agreement_write_attempts(), 1, "the counter the sync test relies on sees a write");
}
