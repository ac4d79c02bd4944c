//! Autotask billing (contracts, contract service units, adjustments) against the Autotask
//! simulator, one simulator per test on `127.0.0.1`: the shared billing contract, a mapping to a
//! contract that does not exist or is inactive refused naming it, and the sync's exactly-once
//! under a lost answer: no second delta.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use std::sync::Arc;
use vigil::billing::BillingSettings;
use vigil::billing::sync::{BillingLine, BillingMapping, SyncSchedule};
use vigil::clock::ManualClock;
use vigil::connectors::autotask::AutotaskClient;
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::contract::{BillingContractLines, billing_target_contract};
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, Routing};
use vigil::ids::{DestinationId, MspId, TenantId};
use vigil::memory::{MemoryBillingStore, MemoryConfigStore, MemoryQueue};
use vigil::ports::{BillingStore, BillingTarget, BillingTargets, DestinationStore, MailboxCountStore, RequestGate, SinkSetupError};
use vigil::secret::SecretString;
use vigil::services::billing_sync::BillingSyncService;
use vigil_simulators::autotask::{AutotaskCredentials, AutotaskOperation, AutotaskSim, AutotaskSimHandle, FailureMode};

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;
const SERVICE: i64 = 410;

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

fn destination(sim: &AutotaskSimHandle) -> Destination {
    Destination {
        msp_id: MspId::parse("acme").unwrap(),
        id: DestinationId::parse("autotask").unwrap(),
        name: "Autotask".into(),
        enabled: true,
        settings: DestinationSettings::autotask(Some(sim.zone_url())),
        routing: Routing::default(),
        requests_per_hour: None,
        credentials_set: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn client(sim: &AutotaskSimHandle) -> AutotaskClient {
    let c = sim.credentials();
    let credentials = DestinationCredentials::Autotask {
        username: c.username,
        secret: SecretString::new(c.secret),
        integration_code: SecretString::new(c.integration_code),
    };
    AutotaskClient::for_destination(destination_http_client(POLICY).unwrap(), &destination(sim), credentials, RequestGate::open(), POLICY)
        .unwrap()
        .with_discovery_base(sim.base_url())
}

fn line(contract: i64, service: i64) -> BillingLine {
    BillingLine { agreement_id: contract.to_string(), product_id: service.to_string() }
}

async fn started() -> (AutotaskSimHandle, i64) {
    let sim = AutotaskSim::start(AutotaskCredentials::sample()).await.unwrap();
    let contract = sim.add_contract("Contoso managed security", 0, day(1, 1), day(12, 31));
    sim.add_contract_service(contract, SERVICE, 5).unwrap();
    (sim, contract)
}

#[tokio::test]
async fn autotask_contracts_honour_the_billing_contract() {
    let (sim, contract) = started().await;
    let cancelled = sim.add_contract("Fabrikam (ended)", 0, day(1, 1), day(12, 31));
    sim.add_contract_service(cancelled, SERVICE, 5).unwrap();
    sim.set_contract_status(cancelled, 0);
    let lines = BillingContractLines {
        line: line(contract, SERVICE),
        missing_agreement: line(999, SERVICE),
        cancelled: line(cancelled, SERVICE),
        missing_product: line(contract, 777),
        period: SyncSchedule::Daily.period_of(day(12, 6)),
    };
    let target = client(&sim);
    billing_target_contract(&target, &lines, |units| {
        let sim = sim.clone();
        async move {
            assert!(sim.set_units_by_hand(contract, SERVICE, i64::from(units), day(12, 6)));
        }
    })
    .await;
    let deltas: Vec<i64> = sim.adjustments(contract).iter().map(|a| a["unitChange"].as_i64().unwrap()).collect();
    assert_eq!(deltas, vec![7, -3], "deltas from the current units, none for no change");
}

#[tokio::test]
async fn an_adjustment_the_contract_refuses_is_permanent_and_names_the_field() {
    let (sim, contract) = started().await;
    let target = client(&sim);
    let outside = SyncSchedule::Daily.period_of(NaiveDate::from_ymd_opt(2027, 1, 3).unwrap());
    let refused = target.set_quantity(&line(contract, SERVICE), &outside, Some(5), 8).await.unwrap_err();
    assert!(refused.to_string().contains("effectiveDate"), "{refused}");
    assert_eq!(vigil::error::Classified::class(&refused), vigil::error::ErrorClass::Permanent);
}

/// [`BillingTargets`] that hands out one Autotask client.
struct OneAutotask(Arc<AutotaskClient>);

#[async_trait::async_trait]
impl BillingTargets for OneAutotask {
    async fn billing_for(&self, _destination: &Destination) -> Result<Arc<dyn BillingTarget>, SinkSetupError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn a_lost_answer_after_the_adjustment_never_makes_a_second_delta_and_a_rerun_changes_nothing() {
    let (sim, contract) = started().await;
    let msp = MspId::parse("acme").unwrap();
    let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    let config = Arc::new(MemoryConfigStore::default());
    config.put_destination(&destination(&sim)).await.unwrap();
    let store = Arc::new(MemoryBillingStore::default());
    store.record_count(&msp, &vigil::contract::sample_count(&tenant, day(12, 6), 42), &BillingSettings::default()).await.unwrap();
    let mapping = BillingMapping {
        tenant_id: tenant,
        destination_id: DestinationId::parse("autotask").unwrap(),
        agreement_id: contract.to_string(),
        product_id: SERVICE.to_string(),
        restore_hand_edits: false,
    };
    store.put_mapping(&msp, &mapping).await.unwrap();
    let sync = BillingSyncService {
        billing: store.clone(),
        counts: store.clone(),
        destinations: config,
        targets: Arc::new(OneAutotask(Arc::new(client(&sim)))),
        events: Arc::new(MemoryQueue::default()),
        clock: Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 6, 1, 0, 0).unwrap())),
    };
    let period = SyncSchedule::Daily.period_of(day(12, 6));
    let dry = sync.sync(&msp, &period, true).await.unwrap();
    assert_eq!((dry[0].current, dry[0].new, dry[0].result.as_str()), (Some(5), Some(42), "would_set"));
    assert!(sim.adjustments(contract).is_empty(), "a dry run writes nothing");

    sim.fail_next(AutotaskOperation::AdjustContract, FailureMode::AfterCommit(503), 1);
    // The adjustment is made and its answer lost (a crash between the PSA write and the record
    // looks the same to the next run).
    assert!(sync.sync(&msp, &period, false).await.is_err());
    assert_eq!(sim.units_on(contract, SERVICE, day(12, 6)), Some(42));
    let retried = sync.sync(&msp, &period, false).await.unwrap();
    assert_eq!(retried[0].result, "set");
    let rerun = sync.sync(&msp, &period, false).await.unwrap();
    assert_eq!(rerun[0].result, "done_before");
    assert_eq!(sim.adjustments(contract).len(), 1, "one delta of +37, never a second");
    assert_eq!(sim.adjustments(contract)[0]["unitChange"], 37);
    assert_eq!(sim.units_on(contract, SERVICE, day(12, 6)), Some(42));
}
