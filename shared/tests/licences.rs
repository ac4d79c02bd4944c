//! The licence connector (`GraphLicencesClient`) against the project's Microsoft 365 simulator
//! (token endpoint, Graph's `subscribedSkus` and `directory/subscriptions`), started on
//! `127.0.0.1` per test: the default product and added ones read with their units, plans and
//! lifecycle dates through every page; a subscription moved through its lifecycle read as it
//! moves; a missing `Organization.Read.All` refused as "needs re-consent"; throttling classified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vigil::connectors::http_client;
use vigil::connectors::licences::GraphLicencesClient;
use vigil::error::{Classified, ErrorClass, SourceError};
use vigil::ids::TenantId;
use vigil::licences::{DefenderPlan, LicenceStatus};
use vigil::ports::LicenceSource;
use vigil::secret::SecretString;
use vigil::tenant::M365AppCredentials;
use vigil_simulators::m365::licences::{DEFENDER_P1_PLAN, LifecycleStep, SimSubscription};
use vigil_simulators::m365::{M365Failure, M365Operation, M365Sim, M365SimHandle};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const CLIENT_ID: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const CLIENT_SECRET: &str = "tenant-app-secret-value-123";
const SPB: &str = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46";

async fn licences() -> (M365SimHandle, GraphLicencesClient) {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT, CLIENT_ID, CLIENT_SECRET);
    let client = GraphLicencesClient::new(http_client().unwrap(), sim.login_base(), sim.graph_base());
    (sim, client)
}

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

fn credentials() -> M365AppCredentials {
    M365AppCredentials::new(CLIENT_ID, SecretString::new(CLIENT_SECRET))
}

fn business_premium(id: &str, licences: i64) -> SimSubscription {
    SimSubscription {
        id: id.into(),
        sku_id: SPB.into(),
        sku_part_number: "SPB".into(),
        status: "Enabled".into(),
        is_trial: false,
        total_licenses: licences,
        next_lifecycle_date_time: Some(chrono::Utc::now() + chrono::Duration::days(200)),
        service_plans: vec![(DEFENDER_P1_PLAN.into(), "ATP_ENTERPRISE".into())],
        created_date_time: None,
    }
}

#[tokio::test]
async fn every_product_and_subscription_is_read_through_every_page_with_units_plans_and_dates() {
    let (sim, client) = licences().await;
    sim.set_page_size(1);
    sim.add_licence_subscription(TENANT, business_premium("spb-1", 20));
    sim.add_licence_subscription(TENANT, business_premium("spb-2", 5));
    sim.set_consumed_units(TENANT, SPB, 23);
    let snapshot = client.licences(&tenant(), &credentials()).await.unwrap();
    assert_eq!(snapshot.subscriptions.len(), 3, "the default E5 and two Business Premium");
    assert_eq!(snapshot.skus.len(), 2);
    let spb = snapshot.skus.iter().find(|s| s.sku_id == SPB).unwrap();
    assert_eq!((spb.consumed_units, spb.prepaid_units.enabled, spb.capability_status), (23, 25, LicenceStatus::Enabled));
    assert_eq!(spb.defender_plans, vec![DefenderPlan::Plan1]);
    let e5 = snapshot.skus.iter().find(|s| s.sku_part_number == "SPE_E5").unwrap();
    assert_eq!(e5.defender_plans, vec![DefenderPlan::Plan2]);
    let pages = sim.request_log().iter().filter(|r| r.path.ends_with("/subscribedSkus")).count();
    assert_eq!(pages, 2, "one product per page");
    assert!(sim.request_log().iter().any(|r| r.query.contains("skiptoken")), "nextLinks followed");
}

#[tokio::test]
async fn a_subscription_moved_through_its_lifecycle_is_read_as_it_moves() {
    let (sim, client) = licences().await;
    sim.clear_licences(TENANT);
    sim.add_licence_subscription(TENANT, business_premium("spb-1", 20));
    for (step, status, units_in) in [
        (LifecycleStep::Warning, LicenceStatus::Warning, "warning"),
        (LifecycleStep::Suspended, LicenceStatus::Suspended, "suspended"),
        (LifecycleStep::Renewed, LicenceStatus::Enabled, "enabled"),
    ] {
        sim.move_licence_subscription("spb-1", step).unwrap();
        let snapshot = client.licences(&tenant(), &credentials()).await.unwrap();
        assert_eq!(snapshot.subscriptions[0].status, status);
        assert_eq!(snapshot.skus[0].capability_status, status);
        let units = snapshot.skus[0].prepaid_units;
        let held = match units_in {
            "warning" => units.warning,
            "suspended" => units.suspended,
            _ => units.enabled,
        };
        assert_eq!(held, 20, "{step:?}: {units:?}");
        assert!(snapshot.subscriptions[0].next_lifecycle_at.unwrap() > chrono::Utc::now());
    }
}

#[tokio::test]
async fn a_missing_organization_read_all_is_refused_as_access_and_throttling_is_transient() {
    let (sim, client) = licences().await;
    sim.set_licences_role(TENANT, false);
    let refused = client.licences(&tenant(), &credentials()).await.unwrap_err();
    assert!(matches!(&refused, SourceError::AccessRefused { .. }), "{refused:?}");
    assert!(refused.to_string().contains("Organization.Read.All"), "{refused}");
    sim.set_licences_role(TENANT, true);
    sim.expire_tokens();
    sim.fail_next(M365Operation::Licences, M365Failure::Throttle, 1);
    let throttled = client.licences(&tenant(), &credentials()).await.unwrap_err();
    assert_eq!(throttled.class(), ErrorClass::Transient);
    assert_eq!(throttled.retry_after(), Some(std::time::Duration::from_secs(1)));
    assert_eq!(client.licences(&tenant(), &credentials()).await.unwrap().subscriptions.len(), 1, "then it works");
}
