//! ConnectWise billing (agreements, their additions, the product catalog) against the
//! ConnectWise simulator, one simulator per test on `127.0.0.1`: the shared billing contract, a
//! mapping to an agreement that does not exist, is cancelled or has ended, or to a product not
//! in the catalog refused naming it, the simulator refusing an addition like ConnectWise, and the
//! sync's exactly-once under a lost answer: no second addition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use vigil::billing::BillingSettings;
use vigil::billing::sync::{BillingLine, BillingMapping, SyncSchedule};
use vigil::clock::{ManualClock, SystemClock};
use vigil::connectors::connectwise::ConnectWiseClient;
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::connectors::psa::PsaProvider;
use vigil::contract::{BillingContractLines, billing_target_contract};
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, Routing};
use vigil::error::{Classified, ErrorClass};
use vigil::ids::{DestinationId, MspId, TenantId};
use vigil::memory::{MemoryBillingStore, MemoryConfigStore, MemoryQueue, MemoryRequestBudget, MemorySecretStore};
use vigil::ports::{
    BillingStore, BillingTarget, BillingTargets, DestinationStore, MailboxCountStore, RequestGate, SecretName, SecretStore,
};
use vigil::secret::SecretString;
use vigil::services::billing_sync::BillingSyncService;
use vigil_simulators::connectwise::{ConnectWiseCredentials, ConnectWiseSim, ConnectWiseSimHandle, FailureMode, SimOperation};

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;
/// Seeded in the simulator.
const CONTOSO: i64 = 250;

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

fn destination(sim: &ConnectWiseSimHandle) -> Destination {
    Destination {
        msp_id: MspId::parse("acme").unwrap(),
        id: DestinationId::parse("cw").unwrap(),
        name: "ConnectWise".into(),
        enabled: true,
        settings: DestinationSettings::ConnectWise { api_root: sim.api_root(), ticket_type: None, source: None },
        routing: Routing::default(),
        requests_per_hour: None,
        credentials_set: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn credentials(sim: &ConnectWiseSimHandle) -> DestinationCredentials {
    let keys = sim.credentials();
    DestinationCredentials::ConnectWise {
        company_id: keys.company_id,
        public_key: keys.public_key,
        private_key: SecretString::new(keys.private_key),
        client_id: keys.client_id,
    }
}

fn client(sim: &ConnectWiseSimHandle) -> ConnectWiseClient {
    ConnectWiseClient::for_destination(
        destination_http_client(POLICY).unwrap(),
        &destination(sim),
        credentials(sim),
        RequestGate::open(),
        POLICY,
    )
    .unwrap()
}

fn line(agreement: i64, product: impl ToString) -> BillingLine {
    BillingLine { agreement_id: agreement.to_string(), product_id: product.to_string() }
}

/// A simulator with the Vigil product in the catalog and an open-ended agreement for Contoso.
async fn started() -> (ConnectWiseSimHandle, i64, i64) {
    let sim = ConnectWiseSim::start(ConnectWiseCredentials::sample()).await.unwrap();
    let product = sim.add_product("VIGIL-MBX", "Vigil protected mailbox");
    let agreement = sim.add_agreement("Contoso managed security", CONTOSO, day(1, 1), None);
    (sim, agreement, product)
}

#[tokio::test]
async fn connectwise_agreement_additions_honour_the_billing_contract() {
    let (sim, agreement, product) = started().await;
    let cancelled = sim.add_agreement("Fabrikam (cancelled)", CONTOSO, day(1, 1), None);
    assert!(sim.set_agreement_cancelled(cancelled, true));
    let lines = BillingContractLines {
        line: line(agreement, product),
        missing_agreement: line(999, product),
        cancelled: line(cancelled, product),
        missing_product: line(agreement, 777),
        period: SyncSchedule::Daily.period_of(day(12, 6)),
    };
    let target = client(&sim);
    billing_target_contract(&target, &lines, |quantity| {
        let sim = sim.clone();
        async move {
            let addition = sim.additions(agreement)[0]["id"].as_i64().unwrap();
            assert!(sim.set_addition_quantity_by_hand(agreement, addition, f64::from(quantity)));
        }
    })
    .await;
    let additions = sim.additions(agreement);
    assert_eq!(additions.len(), 1, "one addition, its quantity replaced: {additions:?}");
    assert_eq!(additions[0]["product"]["identifier"], "VIGIL-MBX");
    assert_eq!(additions[0]["billCustomer"], "Billable");
    let writes: Vec<String> = sim.requests().iter().filter(|r| r.operation == "write_addition").map(|r| r.method.clone()).collect();
    assert_eq!(writes, vec!["POST", "PATCH"], "12 added, 12 again sends nothing, 9 replaced");
}

#[tokio::test]
async fn an_ended_agreement_and_an_unknown_product_identifier_are_refused_naming_them() {
    let (sim, agreement, _) = started().await;
    let ended = sim.add_agreement("Contoso 2025", CONTOSO, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(), Some(day(6, 30)));
    let target = client(&sim);
    let refused = target.check_line(&line(ended, "VIGIL-MBX")).await.unwrap_err();
    assert!(refused.to_string().contains(&format!("agreement {ended} ended")), "{refused}");
    target.check_line(&line(agreement, "VIGIL-MBX")).await.unwrap();
    let unknown = target.check_line(&line(agreement, "NOT-A-SKU")).await.unwrap_err();
    assert!(unknown.to_string().contains("NOT-A-SKU"), "{unknown}");
    let not_an_id = target.check_line(&line(0, "x")).await;
    assert!(not_an_id.is_err());
    let words = target.check_line(&BillingLine { agreement_id: "Contoso".into(), product_id: "VIGIL-MBX".into() }).await.unwrap_err();
    assert_eq!(words.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn the_simulator_refuses_an_addition_without_its_required_fields_like_connectwise() {
    let (sim, agreement, product) = started().await;
    let keys = sim.credentials();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}+{}:{}", keys.company_id, keys.public_key, keys.private_key));
    let http = reqwest::Client::new();
    let post = |body: Value, agreement: i64| {
        http.post(format!("{}/finance/agreements/{agreement}/additions", sim.api_root()))
            .header("Authorization", format!("Basic {basic}"))
            .header("clientId", keys.client_id.clone())
            .json(&body)
            .send()
    };
    let missing = post(json!({"product": {"id": product}, "quantity": 3}), agreement).await.unwrap();
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "InvalidObject");
    assert!(body["errors"].as_array().unwrap().iter().any(|e| e["field"] == "billCustomer"), "{body}");
    let unknown = post(json!({"product": {"id": 777}, "billCustomer": "Billable"}), agreement).await.unwrap();
    let body: Value = unknown.json().await.unwrap();
    assert!(body["errors"].as_array().unwrap().iter().any(|e| e["field"] == "product"), "{body}");
    let nowhere = post(json!({"product": {"id": product}, "billCustomer": "Billable"}), 999).await.unwrap();
    assert_eq!(nowhere.status(), 404);
    assert_eq!(nowhere.json::<Value>().await.unwrap()["code"], "NotFound");
    let anonymous = http.get(format!("{}/finance/agreements/{agreement}", sim.api_root())).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(sim.additions(agreement).is_empty());
}

#[tokio::test]
async fn a_lost_answer_after_the_addition_never_makes_a_second_one_and_a_rerun_changes_nothing() {
    let (sim, agreement, product) = started().await;
    let msp = MspId::parse("acme").unwrap();
    let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    let config = Arc::new(MemoryConfigStore::default());
    let d = destination(&sim);
    config.put_destination(&d).await.unwrap();
    let secrets = Arc::new(MemorySecretStore::default());
    let keys = serde_json::to_string(&credentials(&sim)).unwrap();
    secrets.put_secret(&SecretName::destination(&d.msp_id, &d.id), &SecretString::new(keys)).await.unwrap();
    let provider = PsaProvider::new(secrets, POLICY, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock))
        .with_http(destination_http_client(POLICY).unwrap());
    assert!(provider.billing_for(&d).await.unwrap().writes(), "the provider builds ConnectWise's billing side");
    let store = Arc::new(MemoryBillingStore::default());
    store.record_count(&msp, &vigil::contract::sample_count(&tenant, day(12, 6), 42), &BillingSettings::default()).await.unwrap();
    let mapping = BillingMapping {
        tenant_id: tenant,
        destination_id: d.id.clone(),
        agreement_id: agreement.to_string(),
        product_id: product.to_string(),
        restore_hand_edits: false,
    };
    store.put_mapping(&msp, &mapping).await.unwrap();
    let sync = BillingSyncService {
        billing: store.clone(),
        counts: store.clone(),
        destinations: config,
        targets: Arc::new(provider),
        events: Arc::new(MemoryQueue::default()),
        clock: Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 6, 1, 0, 0).unwrap())),
    };
    let period = SyncSchedule::Daily.period_of(day(12, 6));
    let dry = sync.sync(&msp, &period, true).await.unwrap();
    assert_eq!((dry[0].current, dry[0].new, dry[0].result.as_str()), (None, Some(42), "would_set"));
    assert!(sim.additions(agreement).is_empty(), "a dry run writes nothing");

    sim.fail_next(SimOperation::WriteAddition, FailureMode::AfterCommit(503), 1);
    // The addition is made and its answer lost (a crash between the PSA write and the record
    // looks the same to the next run).
    assert!(sync.sync(&msp, &period, false).await.is_err());
    assert_eq!(sim.additions(agreement).len(), 1);
    let retried = sync.sync(&msp, &period, false).await.unwrap();
    assert_eq!(retried[0].result, "set");
    let rerun = sync.sync(&msp, &period, false).await.unwrap();
    assert_eq!(rerun[0].result, "done_before");
    let additions = sim.additions(agreement);
    assert_eq!(additions.len(), 1, "one addition, never a second: {additions:?}");
    assert_eq!(additions[0]["quantity"].as_f64(), Some(42.0));
    let writes = sim.requests().iter().filter(|r| r.operation == "write_addition").count();
    assert_eq!(writes, 1, "the retry found the quantity already set and wrote nothing");
}
