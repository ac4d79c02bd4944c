//! Onboarding by consent link against the Microsoft 365 simulator (started on `127.0.0.1` per
//! test), with the real Microsoft connectors and in-memory stores: the link followed to the
//! simulator's `adminconsent`, which redirects back; the access test's failure modes each named
//! with Microsoft's own error (no consent, a missing `ActivityFeed.Read`, `SecurityAlert.Read.All`,
//! licence or sign-in permission, revoked consent then re-consent through a new link); the
//! simulator's own checks of `client_id` and `redirect_uri`; the poller reading a consented
//! tenant with the one MSP app secret. The same flow over moto and the local stack's API is in
//! `tests/tests/onboarding.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use vigil::access::Access;
use vigil::clock::SystemClock;
use vigil::connectors::consent::TokenProbe;
use vigil::connectors::graph::GraphAlertsClient;
use vigil::connectors::http_client;
use vigil::connectors::licences::GraphLicencesClient;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::connectors::partner::PartnerRelationshipsClient;
use vigil::ids::{AuditStream, MspId, TenantId};
use vigil::memory::{MemoryConfigStore, MemoryOnboardingStore, MemoryQueue, MemorySecretStore};
use vigil::onboarding::{AccessTest, Capability, ConsentLink, LinkStatus};
use vigil::ports::{ConfigStore, SecretName};
use vigil::secret::SecretString;
use vigil::services::access::AuditTrail;
use vigil::services::onboarding::{ConsentError, OnboardingService, TenantApis};
use vigil::tenant::M365AppCredentials;
use vigil_simulators::m365::{ConsentDecision, M365Sim, M365SimHandle};

const APP: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";
const SECRET: &str = "msp-app-secret-value-123";
const CONTOSO: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const FABRIKAM: &str = "6f2a3d9b-8e52-4a1f-8b62-3c8e1d0f5b22";
const API: &str = "https://vigil.example";

struct Onboarding {
    sim: M365SimHandle,
    service: OnboardingService,
    config: Arc<MemoryConfigStore>,
    jobs: Arc<MemoryQueue>,
    http: reqwest::Client,
}

fn acme() -> MspId {
    MspId::parse("acme").unwrap()
}

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

async fn onboarding() -> Onboarding {
    let sim = M365Sim::start().await.unwrap();
    sim.register_app(APP, SECRET, vec![format!("{API}/v1/consent/acme")], None);
    let http = http_client().unwrap();
    let config = Arc::new(MemoryConfigStore::default());
    let jobs = Arc::new(MemoryQueue::default());
    let endpoints = M365Endpoints { login_base: sim.login_base(), management_base: sim.management_base() };
    let service = OnboardingService {
        config: config.clone(),
        store: Arc::new(MemoryOnboardingStore::default()),
        relationships: config.clone(),
        secrets: Arc::new(MemorySecretStore::default()),
        jobs: jobs.clone(),
        apis: TenantApis {
            probe: Arc::new(TokenProbe::new(http.clone(), &sim.login_base(), &sim.graph_base())),
            subscriptions: Arc::new(ManagementActivityClient::new(http.clone(), endpoints, "vigil-test".into())),
            alerts: Arc::new(GraphAlertsClient::new(http.clone(), sim.login_base(), sim.graph_base())),
            licences: Arc::new(GraphLicencesClient::new(http.clone(), sim.login_base(), sim.graph_base())),
            sign_ins: Arc::new(PartnerRelationshipsClient::new(http.clone(), sim.login_base(), sim.graph_base())),
            directory: Arc::new(vigil::connectors::directory::GraphDirectoryClient::new(
                http.clone(),
                &sim.login_base(),
                &sim.graph_base(),
            )),
        },
        audit: AuditTrail { log: config.clone(), clock: Arc::new(SystemClock) },
        clock: Arc::new(SystemClock),
        login_base: sim.login_base(),
        api_base: Some(API.into()),
        default_streams: AuditStream::all(),
    };
    service.register_app(&Access::operator(&acme()), M365AppCredentials::new(APP, SecretString::new(SECRET)), None).await.unwrap();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Onboarding { sim, service, config, jobs, http: no_redirects }
}

impl Onboarding {
    async fn link(&self, expected: Option<&str>) -> ConsentLink {
        self.service.issue_link(&Access::operator(&acme()), "Contoso", expected.map(tenant), None, None).await.unwrap()
    }

    /// Follows the link as the administrator's browser does: to Microsoft, whose answer is a
    /// redirect back to Vigil; the query string of that redirect.
    async fn follow(&self, link: &ConsentLink) -> String {
        let response = self.http.get(&link.url).send().await.unwrap();
        assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&format!("{API}/v1/consent/acme?")), "{location}");
        location.split_once('?').unwrap().1.to_owned()
    }

    async fn consent(&self, expected: Option<&str>) -> Result<vigil::services::onboarding::ConsentResult, ConsentError> {
        let link = self.link(expected).await;
        let query = self.follow(&link).await;
        self.service.complete_consent(&acme(), &query).await
    }

    async fn retest(&self, tenant_id: &str) -> AccessTest {
        self.service.run_access_test(&Access::operator(&acme()), &tenant(tenant_id)).await.unwrap()
    }
}

fn check(test: &AccessTest, capability: Capability) -> &vigil::onboarding::CapabilityCheck {
    test.checks.iter().find(|c| c.capability == capability).unwrap()
}

#[tokio::test]
async fn a_customer_consents_through_its_link_and_every_capability_passes_and_polling_starts() {
    let o = onboarding().await;
    let result = o.consent(Some(CONTOSO)).await.unwrap();
    assert_eq!(result.link.status, LinkStatus::Consented { tenant_id: tenant(CONTOSO) });
    let test = result.access_test.unwrap();
    assert!(test.passed, "{test:#?}");
    assert_eq!(test.checks.len(), 5);
    assert!(o.sim.subscriptions(CONTOSO).len() >= 4, "subscriptions started: {:?}", o.sim.subscriptions(CONTOSO));
    assert_eq!(o.jobs.drain().len(), AuditStream::all().len(), "the first poll is queued");
    let watched = o.config.get_tenant(&acme(), &tenant(CONTOSO)).await.unwrap().unwrap();
    assert!(watched.credentials_from_msp_app);
}

#[tokio::test]
async fn an_unbound_link_takes_the_tenant_microsoft_names() {
    let o = onboarding().await;
    o.sim.set_consent_admin(FABRIKAM);
    let result = o.consent(None).await.unwrap();
    assert_eq!(result.link.status, LinkStatus::Consented { tenant_id: tenant(FABRIKAM) });
}

#[tokio::test]
async fn a_link_bound_to_one_tenant_consented_by_another_is_refused() {
    let o = onboarding().await;
    let link = o.link(Some(CONTOSO)).await;
    // The administrator of Fabrikam opens Contoso's link on the common endpoint.
    o.sim.set_consent_admin(FABRIKAM);
    let common = link.url.replace(&format!("/{CONTOSO}/adminconsent"), "/common/adminconsent");
    let query = o.follow(&ConsentLink { url: common, ..link }).await;
    assert!(query.contains(FABRIKAM), "{query}");
    let refused = o.service.complete_consent(&acme(), &query).await;
    assert!(matches!(refused, Err(ConsentError::TenantMismatch(_))), "{refused:?}");
    assert!(o.config.get_tenant(&acme(), &tenant(FABRIKAM)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_declined_consent_is_recorded_and_shown() {
    let o = onboarding().await;
    o.sim.set_consent_decision(CONTOSO, ConsentDecision::Decline);
    let result = o.consent(Some(CONTOSO)).await.unwrap();
    let LinkStatus::Declined { error, description } = &result.link.status else { panic!("{:?}", result.link.status) };
    assert_eq!(error, "permission_denied");
    assert!(description.contains("AADSTS65004"), "{description}");
    assert!(o.config.get_tenant(&acme(), &tenant(CONTOSO)).await.unwrap().is_none());
}

#[tokio::test]
async fn the_simulator_refuses_an_unknown_app_or_an_unregistered_redirect_without_redirecting() {
    let o = onboarding().await;
    let link = o.link(None).await;
    for (from, to) in [(APP, "0a1b2c3d-0000-4000-8000-00000000ffff"), ("vigil.example", "evil.example")] {
        let response = o.http.get(link.url.replace(from, to)).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error_codes"][0] == 700_016 || body["error_codes"][0] == 50_011, "{body}");
    }
    assert_eq!(o.sim.consents_completed(), 0);
}

#[tokio::test]
async fn a_replayed_redirect_is_refused() {
    let o = onboarding().await;
    let link = o.link(Some(CONTOSO)).await;
    let query = o.follow(&link).await;
    o.service.complete_consent(&acme(), &query).await.unwrap();
    assert!(matches!(o.service.complete_consent(&acme(), &query).await, Err(ConsentError::Replayed)));
}

#[tokio::test]
async fn a_tenant_without_consent_fails_the_token_check_with_aadsts700016_and_the_consent_fix() {
    let o = onboarding().await;
    o.consent(Some(CONTOSO)).await.unwrap();
    o.sim.revoke_consent(CONTOSO);
    let test = o.retest(CONTOSO).await;
    let token = check(&test, Capability::Token);
    assert!(!token.passed);
    assert!(token.error.as_deref().unwrap().contains("AADSTS700016"), "{token:?}");
    assert!(token.fix.as_deref().unwrap().contains("consent link"));
    assert!(test.checks[1..].iter().all(|c| !c.passed), "nothing else is tried without a token");
}

#[tokio::test]
async fn revoked_consent_is_restored_by_a_new_link_to_the_same_tenant() {
    let o = onboarding().await;
    o.consent(Some(CONTOSO)).await.unwrap();
    o.sim.revoke_consent(CONTOSO);
    assert!(!o.retest(CONTOSO).await.passed);
    let again = o.consent(Some(CONTOSO)).await.unwrap();
    assert_eq!(again.link.status, LinkStatus::Consented { tenant_id: tenant(CONTOSO) });
    assert!(again.access_test.unwrap().passed);
    assert!(o.retest(CONTOSO).await.passed);
    assert_eq!(o.config.list_tenants(&acme()).await.unwrap().len(), 1, "the same tenant, consented again");
}

/// Consents with every permission but `missing`, and the test's failing capabilities.
async fn failing_without(missing: &[&str]) -> (AccessTest, Vec<Capability>) {
    let o = onboarding().await;
    let grant = vigil_simulators::m365::ALL_PERMISSIONS.iter().filter(|p| !missing.contains(p)).map(|p| (*p).to_owned()).collect();
    o.sim.set_consent_decision(CONTOSO, ConsentDecision::Grant(Some(grant)));
    let test = o.consent(Some(CONTOSO)).await.unwrap().access_test.unwrap();
    let failing = test.checks.iter().filter(|c| !c.passed).map(|c| c.capability).collect();
    (test, failing)
}

#[tokio::test]
async fn a_missing_activity_feed_read_fails_only_the_management_activity_check_with_microsofts_error() {
    let (test, failing) = failing_without(&["ActivityFeed.Read"]).await;
    assert_eq!(failing, [Capability::ManagementActivity]);
    let check = check(&test, Capability::ManagementActivity);
    assert!(check.error.as_deref().unwrap().contains("AF10001"), "{check:?}");
    assert!(check.fix.as_deref().unwrap().contains("ActivityFeed.Read"));
}

#[tokio::test]
async fn a_missing_security_alert_read_fails_only_the_alerts_check() {
    let (test, failing) = failing_without(&["SecurityAlert.Read.All"]).await;
    assert_eq!(failing, [Capability::SecurityAlerts]);
    let check = check(&test, Capability::SecurityAlerts);
    assert!(check.fix.as_deref().unwrap().contains("SecurityAlert.Read.All"), "{check:?}");
    assert!(check.error.is_some());
}

#[tokio::test]
async fn missing_licence_and_sign_in_permissions_fail_those_checks_each_naming_its_permission() {
    let (test, failing) = failing_without(&["Organization.Read.All", "AuditLog.Read.All"]).await;
    assert_eq!(failing, [Capability::Licences, Capability::SignIns]);
    assert!(check(&test, Capability::Licences).fix.as_deref().unwrap().contains("Organization.Read.All"));
    assert!(check(&test, Capability::SignIns).fix.as_deref().unwrap().contains("AuditLog.Read.All"));
}

#[tokio::test]
async fn a_consented_tenant_has_no_secret_of_its_own_only_the_msp_apps() {
    let o = onboarding().await;
    o.consent(Some(CONTOSO)).await.unwrap();
    let stored = o.service.secrets.get_secret(&SecretName::m365_app(&acme(), &tenant(CONTOSO))).await.unwrap();
    assert!(stored.is_none(), "no per-tenant secret");
    let app = o.service.secrets.get_secret(&SecretName::msp_app(&acme())).await.unwrap().unwrap();
    assert!(app.expose().contains(SECRET));
}
