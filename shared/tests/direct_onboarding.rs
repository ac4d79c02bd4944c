//! Direct onboarding against the Microsoft 365 simulator (started on `127.0.0.1` per test), with
//! the real Microsoft connectors over HTTP and in-memory stores: the partner tenant's GDAP
//! relationships read by the partner connector, a technician's refresh token redeemed per
//! customer (rotating), the MSP app's service principal made and its app roles granted through
//! Graph, and the tenant then working with the MSP app's own client-credentials tokens. A
//! customer without Privileged Role Administrator / Global Administrator or without an active
//! relationship gets a consent link carrying Microsoft's error; the refused customer is onboarded
//! directly once its relationship allows it, reusing the principal made the first time; a failed
//! write of the rotated refresh token leaves the stored one working. The bulk flow over moto and
//! the local stack's API is in `tests/tests/onboarding.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use vigil::access::Access;
use vigil::clock::SystemClock;
use vigil::connectors::consent::TokenProbe;
use vigil::connectors::directory::GraphDirectoryClient;
use vigil::connectors::graph::GraphAlertsClient;
use vigil::connectors::http_client;
use vigil::connectors::licences::GraphLicencesClient;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::connectors::partner::PartnerRelationshipsClient;
use vigil::ids::{AuditStream, MspId, TenantId};
use vigil::memory::{MemoryConfigStore, MemoryOnboardingStore, MemoryQueue, MemorySecretStore};
use vigil::onboarding::direct::{REQUIRED_APP_ROLES, StepResult};
use vigil::onboarding::{BulkJob, BulkMethod, LinkStatus};
use vigil::ports::{AdminRelationshipSource, ConfigStore, RelationshipStore, SecretName, SecretStore};
use vigil::relationships::GLOBAL_ADMINISTRATOR;
use vigil::secret::SecretString;
use vigil::services::access::AuditTrail;
use vigil::services::onboarding::{OnboardingService, TenantApis};
use vigil::tenant::M365AppCredentials;
use vigil_simulators::m365::fixtures::{active_assignment, gdap_relationship};
use vigil_simulators::m365::{M365Sim, M365SimHandle};

const APP: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";
const SECRET: &str = "msp-app-secret-value-123";
const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const PARTNER_APP: &str = "partner-reader-app";
const CONTOSO: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const FABRIKAM: &str = "6f2a3d9b-8e52-4a1f-8b62-3c8e1d0f5b22";
const NORTHWIND: &str = "7a3b4e0c-9f63-4b20-9c73-4d9f2e1a6c33";
const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const API: &str = "https://vigil.example";

struct Direct {
    sim: M365SimHandle,
    service: OnboardingService,
    config: Arc<MemoryConfigStore>,
    secrets: Arc<MemorySecretStore>,
    jobs: Arc<MemoryQueue>,
    partner: PartnerRelationshipsClient,
}

fn acme() -> MspId {
    MspId::parse("acme").unwrap()
}

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

/// The partner has a relationship with `customer` granting `roles`, held by an active
/// assignment (status `active`, or another to end it).
fn relate(sim: &M365SimHandle, customer: &str, name: &str, status: &str, roles: &[&str]) {
    let id = format!("rel-{customer}");
    let mut relationship = gdap_relationship(&id, customer, name, 30, roles);
    relationship["status"] = status.into();
    sim.add_partner_relationship(PARTNER, relationship);
    sim.add_access_assignment(&id, active_assignment(&format!("assign-{customer}-{}", roles.join("-")), roles));
}

async fn direct() -> Direct {
    let sim = M365Sim::start().await.unwrap();
    sim.register_app(APP, SECRET, vec![format!("{API}/v1/consent/acme")], None);
    sim.add_tenant(PARTNER, PARTNER_APP, "partner-secret");
    sim.set_partner_role(PARTNER, true);
    let http = http_client().unwrap();
    let config = Arc::new(MemoryConfigStore::default());
    let (jobs, secrets) = (Arc::new(MemoryQueue::default()), Arc::new(MemorySecretStore::default()));
    let endpoints = M365Endpoints { login_base: sim.login_base(), management_base: sim.management_base() };
    let service = OnboardingService {
        config: config.clone(),
        store: Arc::new(MemoryOnboardingStore::default()),
        relationships: config.clone(),
        secrets: secrets.clone(),
        jobs: jobs.clone(),
        apis: TenantApis {
            probe: Arc::new(TokenProbe::new(http.clone(), &sim.login_base(), &sim.graph_base())),
            subscriptions: Arc::new(ManagementActivityClient::new(http.clone(), endpoints, "vigil-test".into())),
            alerts: Arc::new(GraphAlertsClient::new(http.clone(), sim.login_base(), sim.graph_base())),
            licences: Arc::new(GraphLicencesClient::new(http.clone(), sim.login_base(), sim.graph_base())),
            sign_ins: Arc::new(PartnerRelationshipsClient::new(http.clone(), sim.login_base(), sim.graph_base())),
            directory: Arc::new(GraphDirectoryClient::new(http.clone(), &sim.login_base(), &sim.graph_base())),
        },
        audit: AuditTrail { log: config.clone(), clock: Arc::new(SystemClock) },
        clock: Arc::new(SystemClock),
        login_base: sim.login_base(),
        api_base: Some(API.into()),
        default_streams: AuditStream::all(),
    };
    let owner = Access::operator(&acme());
    service.register_app(&owner, M365AppCredentials::new(APP, SecretString::new(SECRET)), None).await.unwrap();
    let partner = PartnerRelationshipsClient::new(http, sim.login_base(), sim.graph_base());
    Direct { sim, service, config, secrets, jobs, partner }
}

impl Direct {
    /// Reads the partner tenant's relationships as the daily read does.
    async fn discover(&self) {
        let credentials = M365AppCredentials::new(PARTNER_APP, SecretString::new("partner-secret"));
        let relationships = self.partner.relationships(&tenant(PARTNER), &credentials).await.unwrap();
        self.config.replace_relationships(&acme(), &relationships).await.unwrap();
    }

    /// A technician signs in and the MSP stores the refresh token.
    async fn sign_in(&self) -> String {
        let token = self.sim.issue_refresh_token(PARTNER, "tech@partner.example", APP);
        self.service.store_delegated_credential(&Access::operator(&acme()), SecretString::new(token.clone())).await.unwrap();
        token
    }

    async fn bulk(&self, tenants: &[&str]) -> BulkJob {
        let ids: Vec<TenantId> = tenants.iter().map(|t| tenant(t)).collect();
        self.service.bulk_onboard(&Access::operator(&acme()), &ids, None).await.unwrap()
    }

    async fn stored(&self) -> String {
        self.secrets.get_secret(&SecretName::delegated_credential(&acme())).await.unwrap().unwrap().expose().to_owned()
    }
}

fn all_roles() -> Vec<String> {
    let mut roles: Vec<String> = REQUIRED_APP_ROLES.iter().map(|(_, p)| (*p).to_owned()).collect();
    roles.sort();
    roles
}

#[tokio::test]
async fn a_customer_with_privileged_role_administrator_is_onboarded_directly_and_every_capability_passes() {
    let d = direct().await;
    relate(&d.sim, CONTOSO, "Contoso", "active", &[PRIVILEGED_ROLE_ADMINISTRATOR]);
    d.discover().await;
    let first = d.sign_in().await;
    let job = d.bulk(&[CONTOSO]).await;
    let item = &job.items[0];
    assert_eq!(item.method, BulkMethod::Direct, "{:#?}", item.steps);
    assert_eq!(item.access_test_passed, Some(true), "{:#?}", item.steps);
    assert_eq!(d.sim.app_roles_granted(CONTOSO, APP), all_roles(), "granted through appRoleAssignedTo");
    assert!(d.sim.subscriptions(CONTOSO).len() >= 4, "subscriptions started: {:?}", d.sim.subscriptions(CONTOSO));
    assert_eq!(d.jobs.drain().len(), AuditStream::all().len(), "the first poll is queued");
    assert!(d.config.get_tenant(&acme(), &tenant(CONTOSO)).await.unwrap().unwrap().credentials_from_msp_app);
    let rotated = d.stored().await;
    assert_ne!(rotated, first, "the rotated refresh token is stored");
    // Both still redeem: Microsoft keeps a redeemed refresh token until its own expiry.
    let again = d.bulk(&[CONTOSO]).await;
    assert_eq!(again.items[0].method, BulkMethod::Direct);
    assert!(again.items[0].steps.iter().filter(|s| s.step.starts_with("grant ")).all(|s| s.result == StepResult::AlreadyDone));
    assert_eq!(d.sim.refresh_token_redemptions(), 2);
}

#[tokio::test]
async fn customers_without_a_privileged_role_or_an_active_relationship_get_links_with_microsofts_error() {
    let d = direct().await;
    relate(&d.sim, CONTOSO, "Contoso", "active", &[GLOBAL_ADMINISTRATOR]);
    relate(&d.sim, FABRIKAM, "Fabrikam", "active", &[GLOBAL_ADMINISTRATOR]);
    relate(&d.sim, NORTHWIND, "Northwind", "active", &[GLOBAL_ADMINISTRATOR]);
    d.discover().await;
    // Since the last read: Fabrikam's relationship was cut down to Application Administrator,
    // Northwind's terminated. Vigil's copy still says Global Administrator for both.
    relate(&d.sim, FABRIKAM, "Fabrikam", "active", &[APPLICATION_ADMINISTRATOR]);
    relate(&d.sim, NORTHWIND, "Northwind", "terminated", &[GLOBAL_ADMINISTRATOR]);
    d.sign_in().await;
    let job = d.bulk(&[CONTOSO, FABRIKAM, NORTHWIND]).await;
    let methods: Vec<BulkMethod> = job.items.iter().map(|i| i.method).collect();
    assert_eq!(methods, [BulkMethod::Direct, BulkMethod::ConsentLink, BulkMethod::ConsentLink], "{job:#?}");
    let denied = job.items[1].steps.last().unwrap();
    assert!(denied.step.starts_with("grant ") && denied.error.as_ref().unwrap().contains("Authorization_RequestDenied"), "{denied:?}");
    let no_relationship = &job.items[2].steps[0];
    assert_eq!((no_relationship.step.as_str(), no_relationship.result), ("token", StepResult::Failed));
    assert!(no_relationship.error.as_ref().unwrap().contains("AADSTS50020"), "{no_relationship:?}");
    for item in &job.items[1..] {
        assert!(item.url.as_ref().unwrap().contains(&format!("/{}/adminconsent", item.tenant_id)));
        assert!(d.config.get_tenant(&acme(), &item.tenant_id).await.unwrap().is_none());
    }
    assert!(d.sim.app_roles_granted(FABRIKAM, APP).is_empty(), "nothing granted without the role");

    // Fabrikam's relationship gains Privileged Role Administrator: the retry reuses the
    // principal made the first time and grants everything.
    relate(&d.sim, FABRIKAM, "Fabrikam", "active", &[APPLICATION_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR]);
    let retry = d.bulk(&[FABRIKAM]).await;
    assert_eq!(retry.items[0].method, BulkMethod::Direct, "{:#?}", retry.items[0].steps);
    let principal = retry.items[0].steps.iter().find(|s| s.step == "service-principal").unwrap();
    assert_eq!(principal.result, StepResult::AlreadyDone);
    assert_eq!(d.sim.app_roles_granted(FABRIKAM, APP), all_roles());
    let progress = d.service.bulk(&Access::operator(&acme()), &retry.id).await.unwrap();
    assert_eq!(progress.items[0].status, LinkStatus::Consented { tenant_id: tenant(FABRIKAM) });
}

#[tokio::test]
async fn a_failed_write_of_the_rotated_refresh_token_leaves_the_stored_one_redeemable() {
    let d = direct().await;
    relate(&d.sim, CONTOSO, "Contoso", "active", &[GLOBAL_ADMINISTRATOR]);
    relate(&d.sim, FABRIKAM, "Fabrikam", "active", &[GLOBAL_ADMINISTRATOR]);
    d.discover().await;
    let first = d.sign_in().await;
    // Microsoft answers with a new refresh token; storing it fails.
    d.secrets.fail_next_puts(1);
    let one = d.bulk(&[CONTOSO]).await;
    let store = one.items[0].steps.iter().find(|s| s.step == "store-refresh-token").unwrap();
    assert_eq!(store.result, StepResult::Failed);
    assert_eq!(d.stored().await, first, "the stored one is the token Microsoft rotated away from");
    let two = d.bulk(&[FABRIKAM]).await;
    assert_eq!(two.items[0].method, BulkMethod::Direct, "the old token still redeems: {:#?}", two.items[0].steps);
    assert_ne!(d.stored().await, first);
    // A revoked technician: every redemption is refused, and customers get links.
    d.sim.revoke_refresh_tokens(PARTNER);
    relate(&d.sim, NORTHWIND, "Northwind", "active", &[GLOBAL_ADMINISTRATOR]);
    d.discover().await;
    let three = d.bulk(&[NORTHWIND]).await;
    assert_eq!(three.items[0].method, BulkMethod::ConsentLink);
    assert!(three.items[0].steps[0].error.as_ref().unwrap().contains("AADSTS50173"), "{:?}", three.items[0].steps);
}
