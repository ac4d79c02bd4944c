//! HaloPSA billing (report-only: recurring invoices and their lines, read) against the HaloPSA
//! simulator, one simulator per test on `127.0.0.1`, built through the production provider: a
//! mapping to a recurring invoice that does not exist or is disabled is refused naming it; the
//! current quantity is the line's `qty_order`; a sync run records `report_only` with the current
//! and Vigil's figure and sends no `POST /api/RecurringInvoice`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use std::sync::Arc;
use vigil::billing::BillingSettings;
use vigil::billing::sync::{BillingLine, BillingMapping, SyncOutcome, SyncSchedule};
use vigil::clock::{ManualClock, SystemClock};
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::connectors::psa::PsaProvider;
use vigil::contract::sample_destination;
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, HaloPsaSettings};
use vigil::error::SinkError;
use vigil::ids::{DestinationId, MspId, TenantId};
use vigil::memory::{MemoryBillingStore, MemoryConfigStore, MemoryQueue, MemoryRequestBudget, MemorySecretStore};
use vigil::ports::{BillingStore, BillingTargets, DestinationStore, MailboxCountStore, SecretName, SecretStore};
use vigil::secret::SecretString;
use vigil::services::billing_sync::BillingSyncService;
use vigil_simulators::halopsa::directory::CONTOSO_CLIENT_ID;
use vigil_simulators::halopsa::{HaloSim, HaloSimConfig, HaloSimHandle};

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;
const ITEM: i64 = 4410;

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

fn destination(sim: &HaloSimHandle) -> Destination {
    let mut destination = sample_destination(&MspId::parse("acme").unwrap(), "halo");
    destination.settings = DestinationSettings::HaloPsa(HaloPsaSettings {
        url: sim.base_url(),
        tenant: sim.config().tenant,
        ticket_type: None,
        note_outcome: None,
    });
    destination
}

/// The production provider, the destination's credentials in its secret store.
async fn provider(sim: &HaloSimHandle) -> PsaProvider {
    let config = sim.config();
    let credentials =
        DestinationCredentials::HaloPsa { client_id: config.client_id, client_secret: SecretString::new(config.client_secret) };
    let secrets = Arc::new(MemorySecretStore::default());
    let destination = destination(sim);
    let stored = SecretString::new(serde_json::to_string(&credentials).unwrap());
    secrets.put_secret(&SecretName::destination(&destination.msp_id, &destination.id), &stored).await.unwrap();
    PsaProvider::new(secrets, POLICY, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock))
        .with_http(destination_http_client(POLICY).unwrap())
}

fn line(invoice: i64, item: i64) -> BillingLine {
    BillingLine { agreement_id: invoice.to_string(), product_id: item.to_string() }
}

async fn started() -> (HaloSimHandle, i64) {
    let sim = HaloSim::start(HaloSimConfig::hosted()).await.unwrap();
    let invoice = sim.add_recurring_invoice(CONTOSO_CLIENT_ID, "Contoso", &[(ITEM, 12.0), (9001, 1.0)]);
    (sim, invoice)
}

fn refusal(result: Result<(), SinkError>) -> String {
    match result {
        Err(SinkError::Rejected(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn halopsa_billing_is_report_only_and_refuses_a_recurring_invoice_missing_or_disabled_naming_it() {
    let (sim, invoice) = started().await;
    let disabled = sim.add_recurring_invoice(CONTOSO_CLIENT_ID, "Contoso (old)", &[(ITEM, 3.0)]);
    assert!(sim.set_recurring_invoice_disabled(disabled, true));
    let target = provider(&sim).await.billing_for(&destination(&sim)).await.unwrap();
    assert!(!target.writes(), "the recurring-invoice line update shape is unconfirmed");

    target.check_line(&line(invoice, ITEM)).await.unwrap();
    assert!(refusal(target.check_line(&line(999_999, ITEM)).await).contains("recurring invoice 999999 does not exist"));
    let why = refusal(target.check_line(&line(disabled, ITEM)).await);
    assert!(why.contains(&format!("recurring invoice {disabled}")) && why.contains("disabled"), "{why}");
    assert!(matches!(
        target.check_line(&BillingLine { agreement_id: "x".into(), product_id: "1".into() }).await,
        Err(SinkError::Invalid(_))
    ));
}

#[tokio::test]
async fn the_current_quantity_is_the_recurring_invoice_line_qty_order() {
    let (sim, invoice) = started().await;
    let target = provider(&sim).await.billing_for(&destination(&sim)).await.unwrap();
    let period = SyncSchedule::MonthEnd.period_of(day(12, 6));
    assert_eq!(target.quantity(&line(invoice, ITEM), &period).await.unwrap(), Some(12));
    assert_eq!(target.quantity(&line(invoice, 9001), &period).await.unwrap(), Some(1), "each line by its item");
    assert_eq!(target.quantity(&line(invoice, 77), &period).await.unwrap(), None, "not on the invoice");
    assert!(sim.set_recurring_invoice_quantity(invoice, ITEM, 17.0));
    assert_eq!(target.quantity(&line(invoice, ITEM), &period).await.unwrap(), Some(17), "read again, never cached");
    let reads = sim.requests().iter().filter(|r| r.path.eq_ignore_ascii_case(&format!("/api/RecurringInvoice/{invoice}"))).count();
    assert_eq!(reads, 4);
}

#[tokio::test]
async fn a_sync_run_records_report_only_with_both_figures_and_sends_no_write() {
    let (sim, invoice) = started().await;
    let msp = MspId::parse("acme").unwrap();
    let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    let config = Arc::new(MemoryConfigStore::default());
    config.put_destination(&destination(&sim)).await.unwrap();
    let store = Arc::new(MemoryBillingStore::default());
    store.record_count(&msp, &vigil::contract::sample_count(&tenant, day(12, 6), 42), &BillingSettings::default()).await.unwrap();
    let mapping = BillingMapping {
        tenant_id: tenant.clone(),
        destination_id: DestinationId::parse("halo").unwrap(),
        agreement_id: invoice.to_string(),
        product_id: ITEM.to_string(),
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
    assert_eq!(sim.recurring_invoice_writes(), 0, "no POST /api/RecurringInvoice");
    assert!(
        sim.requests().iter().all(|r| r.method == "GET" || r.path.eq_ignore_ascii_case("/auth/token")),
        "only reads: {:?}",
        sim.requests()
    );
    let target = provider(&sim).await.billing_for(&destination(&sim)).await.unwrap();
    assert_eq!(target.quantity(&line(invoice, ITEM), &period).await.unwrap(), Some(12), "the line is unchanged");
}

#[tokio::test]
async fn the_simulator_counts_a_recurring_invoice_update() {
    let (sim, invoice) = started().await;
    let http = reqwest::Client::new();
    let config = sim.config();
    let token: serde_json::Value = http
        .post(format!("{}/auth/token?tenant={}", sim.base_url(), config.tenant.clone().unwrap_or_default()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
            ("scope", "all"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let line_id = invoice * 100 + 1;
    let answer = http
        .post(format!("{}/api/RecurringInvoice", sim.base_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&serde_json::json!([{"id": invoice, "lines": [{"id": line_id, "qty_order": 42}]}]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(sim.recurring_invoice_writes(), 1, "the counter the sync test relies on sees a write");
}
