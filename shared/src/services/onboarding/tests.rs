//! Onboarding on the in-memory adapters: the consent redirect's refusals (forged, expired,
//! replayed, other-MSP state; a tenant other than the link's or than the token's), a declined
//! consent recorded, a granted one watched with the MSP app and polled, and bulk onboarding's
//! checks. The same flows against the Microsoft 365 simulator are in `shared/tests/onboarding.rs`.

use super::*;
use crate::clock::ManualClock;
use crate::contract::sample_relationship;
use crate::memory::{
    MemoryAccessProbe, MemoryAuditSource, MemoryConfigStore, MemoryDirectory, MemoryLicenceSource, MemoryOnboardingStore, MemoryQueue,
    MemoryRelationshipSource, MemorySecretStore, MemorySecurityAlertSource,
};
use crate::onboarding::Capability;
use chrono::{TimeZone, Utc};

pub(super) struct Harness {
    pub(super) service: OnboardingService,
    pub(super) config: Arc<MemoryConfigStore>,
    pub(super) probe: Arc<MemoryAccessProbe>,
    pub(super) jobs: Arc<MemoryQueue>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) secrets: Arc<MemorySecretStore>,
    pub(super) directory: Arc<MemoryDirectory>,
}

pub(super) fn acme() -> MspId {
    MspId::parse("acme").unwrap()
}

pub(super) fn tenant(n: u8) -> TenantId {
    TenantId::parse(&format!("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a{n:02}")).unwrap()
}

pub(super) fn harness() -> Harness {
    let config = Arc::new(MemoryConfigStore::default());
    let probe = Arc::new(MemoryAccessProbe::default());
    let jobs = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(Utc.timestamp_opt(1_765_000_000, 0).unwrap()));
    let secrets = Arc::new(MemorySecretStore::default());
    let audit_source = Arc::new(MemoryAuditSource::default());
    let directory = Arc::new(MemoryDirectory::default());
    let service = OnboardingService {
        config: config.clone(),
        store: Arc::new(MemoryOnboardingStore::default()),
        relationships: config.clone(),
        secrets: secrets.clone(),
        jobs: jobs.clone(),
        apis: TenantApis {
            probe: probe.clone(),
            subscriptions: audit_source,
            alerts: Arc::new(MemorySecurityAlertSource::default()),
            licences: Arc::new(MemoryLicenceSource::healthy()),
            sign_ins: Arc::new(MemoryRelationshipSource::default()),
            directory: directory.clone(),
        },
        audit: AuditTrail { log: config.clone(), clock: clock.clone() },
        clock: clock.clone(),
        login_base: "https://login.example".into(),
        api_base: Some("https://vigil.example".into()),
        default_streams: AuditStream::all(),
    };
    Harness { service, config, probe, jobs, clock, secrets, directory }
}

pub(super) async fn registered() -> Harness {
    let h = harness();
    h.service.register_app(&Access::operator(&acme()), M365AppCredentials::new("app-1", SecretString::new("s3cret")), None).await.unwrap();
    h
}

/// The `state` a link carries.
fn state_of(link: &ConsentLink) -> String {
    let url = url::Url::parse(&link.url).unwrap();
    url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned()
}

fn granted(state: &str, tenant: &TenantId) -> String {
    format!("tenant={tenant}&state={state}&admin_consent=True")
}

async fn link(h: &Harness, expected: Option<TenantId>) -> ConsentLink {
    h.service.issue_link(&Access::operator(&acme()), "Contoso", expected, None, None).await.unwrap()
}

#[tokio::test]
async fn registering_the_app_keeps_its_secret_only_in_the_secret_store_and_names_the_redirect() {
    let h = registered().await;
    let app = h.service.app(&Access::operator(&acme())).await.unwrap();
    assert_eq!(app.redirect_uri, "https://vigil.example/v1/consent/acme");
    assert!(!serde_json::to_string(&app).unwrap().contains("s3cret"));
    let stored = h.secrets.get_secret(&SecretName::msp_app(&acme())).await.unwrap().unwrap();
    assert!(stored.expose().contains("s3cret"));
    assert!(h.secrets.get_secret(&SecretName::consent_state_key(&acme())).await.unwrap().is_some(), "a state key was made");
}

#[tokio::test]
async fn without_a_configured_base_the_redirect_is_on_the_host_the_registration_arrived_on() {
    let mut h = harness();
    h.service.api_base = None;
    let operator = Access::operator(&acme());
    let app = |secret: &str| M365AppCredentials::new("app-1", SecretString::new(secret));
    let registered = h.service.register_app(&operator, app("s1"), Some("abc123.execute-api.eu-west-1.amazonaws.com")).await.unwrap();
    assert_eq!(registered.redirect_uri, "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/consent/acme");
    for host in [None, Some(""), Some("evil.example/path"), Some("user@evil.example"), Some("https://evil.example")] {
        let refused = h.service.register_app(&operator, app("s2"), host).await;
        assert!(matches!(refused, Err(AdminError::Refused(_))), "{host:?}: {refused:?}");
    }
}

#[tokio::test]
async fn a_link_names_the_app_the_redirect_and_the_bound_tenant_and_expires_after_its_hours() {
    let h = registered().await;
    let link = h.service.issue_link(&Access::operator(&acme()), "Contoso", Some(tenant(1)), Some(2), None).await.unwrap();
    assert!(
        link.url.starts_with(&format!("https://login.example/{}/adminconsent?client_id=app-1&redirect_uri=", tenant(1))),
        "{}",
        link.url
    );
    assert_eq!(link.expires_at - link.issued_at, Duration::hours(2));
    let unbound = self::link(&h, None).await;
    assert!(unbound.url.starts_with("https://login.example/organizations/adminconsent?"));
    let refused = h.service.issue_link(&Access::operator(&acme()), "Contoso", None, Some(721), None).await;
    assert!(matches!(refused, Err(AdminError::Invalid(_))));
}

#[tokio::test]
async fn a_link_before_the_app_is_registered_is_refused() {
    let h = harness();
    assert!(matches!(h.service.issue_link(&Access::operator(&acme()), "Contoso", None, None, None).await, Err(AdminError::Refused(_))));
}

#[tokio::test]
async fn a_consent_watches_the_tenant_with_the_msp_app_tests_it_and_queues_its_first_poll() {
    let h = registered().await;
    let link = link(&h, None).await;
    let result = h.service.complete_consent(&acme(), &granted(&state_of(&link), &tenant(1))).await.unwrap();
    assert_eq!(result.link.status, LinkStatus::Consented { tenant_id: tenant(1) });
    let test = result.access_test.unwrap();
    assert!(test.passed, "{test:?}");
    let watched = h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().unwrap();
    assert!(watched.credentials_from_msp_app && watched.m365_credentials_set);
    assert_eq!(watched.name, "Contoso");
    assert!(h.secrets.get_secret(&SecretName::m365_app(&acme(), &tenant(1))).await.unwrap().is_none(), "no secret per tenant");
    let jobs = h.jobs.drain();
    assert_eq!(jobs.len(), AuditStream::all().len(), "one poll job per stream");
    assert_eq!(result.poll_jobs, jobs.len());
    assert!(jobs.iter().all(|j| j.contains(&tenant(1).to_string())));
    assert_eq!(h.service.store.link(&acme(), &link.id).await.unwrap().unwrap().status, result.link.status, "the outcome is kept");
}

#[tokio::test]
async fn a_replayed_state_is_refused_and_changes_nothing() {
    let h = registered().await;
    let link = link(&h, None).await;
    let query = granted(&state_of(&link), &tenant(1));
    h.service.complete_consent(&acme(), &query).await.unwrap();
    h.jobs.drain();
    assert!(matches!(h.service.complete_consent(&acme(), &query).await, Err(ConsentError::Replayed)));
    assert!(h.jobs.drain().is_empty());
}

#[tokio::test]
async fn a_forged_state_is_refused() {
    let h = registered().await;
    let link = link(&h, None).await;
    let state = state_of(&link);
    let mut forged = state.clone().into_bytes();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(matches!(h.service.complete_consent(&acme(), &granted(&forged, &tenant(1))).await, Err(ConsentError::State(_))));
    let signed_elsewhere = StateSigner::new(SecretString::new("not the key"))
        .sign(&ConsentState::new(&acme(), h.clock.now() + Duration::hours(1), None).unwrap());
    assert!(matches!(
        h.service.complete_consent(&acme(), &granted(&signed_elsewhere, &tenant(1))).await,
        Err(ConsentError::State(StateError::Forged))
    ));
    assert!(h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().is_none());
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let h = registered().await;
    let link = link(&h, None).await;
    h.clock.advance(Duration::hours(i64::from(DEFAULT_LINK_HOURS)));
    assert!(matches!(
        h.service.complete_consent(&acme(), &granted(&state_of(&link), &tenant(1))).await,
        Err(ConsentError::State(StateError::Expired))
    ));
}

#[tokio::test]
async fn another_msps_state_is_refused() {
    let h = registered().await;
    let globex = MspId::parse("globex").unwrap();
    h.service.register_app(&Access::operator(&globex), M365AppCredentials::new("app-2", SecretString::new("other")), None).await.unwrap();
    let acme_link = link(&h, None).await;
    let refused = h.service.complete_consent(&globex, &granted(&state_of(&acme_link), &tenant(1))).await;
    assert!(matches!(refused, Err(ConsentError::State(StateError::Forged | StateError::OtherMsp))), "{refused:?}");
    assert!(h.config.get_tenant(&globex, &tenant(1)).await.unwrap().is_none());
    let unknown = MspId::parse("initech").unwrap();
    assert!(matches!(h.service.complete_consent(&unknown, &granted(&state_of(&acme_link), &tenant(1))).await, Err(ConsentError::State(_))));
}

#[tokio::test]
async fn a_tenant_other_than_the_one_the_link_was_made_for_is_refused() {
    let h = registered().await;
    let link = link(&h, Some(tenant(1))).await;
    let refused = h.service.complete_consent(&acme(), &granted(&state_of(&link), &tenant(2))).await;
    assert!(matches!(refused, Err(ConsentError::TenantMismatch(_))), "{refused:?}");
    assert!(h.config.get_tenant(&acme(), &tenant(2)).await.unwrap().is_none());
    assert!(matches!(h.service.store.link(&acme(), &link.id).await.unwrap().unwrap().status, LinkStatus::Refused { .. }));
}

#[tokio::test]
async fn a_tenant_in_the_query_that_disagrees_with_the_tokens_tenant_is_refused() {
    let h = registered().await;
    h.probe.issue_as(&tenant(1), &tenant(9).to_string());
    let link = link(&h, None).await;
    let refused = h.service.complete_consent(&acme(), &granted(&state_of(&link), &tenant(1))).await;
    assert!(matches!(refused, Err(ConsentError::TenantMismatch(_))), "{refused:?}");
    assert!(h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().is_none());
    assert!(h.jobs.drain().is_empty());
}

#[tokio::test]
async fn a_declined_consent_is_recorded_with_microsofts_error() {
    let h = registered().await;
    let link = link(&h, None).await;
    let query = format!("error=permission_denied&error_description=AADSTS65004%3A+User+declined+to+consent&state={}", state_of(&link));
    let result = h.service.complete_consent(&acme(), &query).await.unwrap();
    assert_eq!(
        result.link.status,
        LinkStatus::Declined { error: "permission_denied".into(), description: "AADSTS65004: User declined to consent".into() }
    );
    assert!(result.access_test.is_none());
    assert_eq!(h.service.links(&Access::operator(&acme())).await.unwrap()[0].status, result.link.status);
}

#[tokio::test]
async fn a_consent_whose_token_is_refused_is_unconfirmed_and_watches_nothing() {
    let h = registered().await;
    h.probe.refuse(&tenant(1), "AADSTS700016");
    let link = link(&h, None).await;
    let result = h.service.complete_consent(&acme(), &granted(&state_of(&link), &tenant(1))).await.unwrap();
    assert!(matches!(result.link.status, LinkStatus::Unconfirmed { .. }));
    let test = result.access_test.unwrap();
    assert!(!test.passed(Capability::Token));
    assert!(test.checks[1..].iter().all(|c| !c.passed && c.error.as_deref().is_some_and(|e| e.contains("not tried"))));
    assert!(h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_redirect_without_state_or_tenant_is_a_bad_redirect() {
    let h = registered().await;
    assert!(matches!(h.service.complete_consent(&acme(), "tenant=x&admin_consent=True").await, Err(ConsentError::BadRedirect(_))));
    let link = link(&h, None).await;
    let query = format!("state={}&admin_consent=True", state_of(&link));
    assert!(matches!(h.service.complete_consent(&acme(), &query).await, Err(ConsentError::BadRedirect(_))));
}

#[tokio::test]
async fn a_tenant_with_its_own_credentials_switches_to_the_msp_app_on_consent() {
    let h = registered().await;
    let access = Access::operator(&acme());
    let own = Tenant {
        msp_id: acme(),
        tenant_id: tenant(1),
        name: "Contoso (own app)".into(),
        domains: vec![],
        break_glass_accounts: vec![],
        company_links: std::collections::BTreeMap::new(),
        legacy_connectwise_company_id: None,
        m365_credentials_set: true,
        credentials_from_msp_app: false,
        webhook_auth_hash: None,
        webhook_registered: false,
        offboarded_at: None,
        streams: Some(vec![AuditStream::GraphAlerts]),
        created_at: h.clock.now(),
    };
    h.config.create_tenant(&own).await.unwrap();
    let link = link(&h, Some(tenant(1))).await;
    let result = h.service.complete_consent(&acme(), &granted(&state_of(&link), &tenant(1))).await.unwrap();
    let tenant = h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().unwrap();
    assert!(tenant.credentials_from_msp_app);
    assert_eq!(tenant.name, "Contoso (own app)", "the rest of the tenant is kept");
    assert_eq!(result.poll_jobs, 1, "its own stream choice is polled");
    let again = h.service.run_access_test(&access, &tenant.tenant_id).await.unwrap();
    assert!(again.passed);
    assert_eq!(h.service.last_access_test(&access, &tenant.tenant_id).await.unwrap(), again);
}

#[tokio::test]
async fn a_consent_for_a_tenant_offboarded_but_not_yet_purged_is_refused_and_keeps_it_offboarded() {
    let h = registered().await;
    let offboarded_at = h.clock.now();
    let gone = Tenant {
        msp_id: acme(),
        tenant_id: tenant(1),
        name: "Contoso (leaving)".into(),
        domains: vec![],
        break_glass_accounts: vec![],
        company_links: std::collections::BTreeMap::new(),
        legacy_connectwise_company_id: None,
        m365_credentials_set: false,
        credentials_from_msp_app: false,
        webhook_auth_hash: None,
        webhook_registered: false,
        offboarded_at: Some(offboarded_at),
        streams: None,
        created_at: h.clock.now(),
    };
    h.config.create_tenant(&gone).await.unwrap();
    let link = link(&h, Some(tenant(1))).await;
    let refused = h.service.complete_consent(&acme(), &granted(&state_of(&link), &tenant(1))).await;
    assert!(matches!(refused, Err(ConsentError::Admin(AdminError::Refused(_)))), "{refused:?}");
    let tenant = h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().unwrap();
    assert_eq!(tenant.offboarded_at, Some(offboarded_at), "still offboarded");
    assert!(!tenant.credentials_from_msp_app, "not switched to the MSP app");
    assert!(h.jobs.drain().is_empty(), "nothing polled");
}

#[tokio::test]
async fn bulk_onboarding_issues_one_bound_link_per_discovered_customer_and_reads_progress() {
    let h = registered().await;
    let access = Access::operator(&acme());
    crate::ports::RelationshipStore::replace_relationships(
        h.config.as_ref(),
        &acme(),
        &[sample_relationship("r1", &tenant(1)), sample_relationship("r2", &tenant(2)), sample_relationship("r3", &tenant(3))],
    )
    .await
    .unwrap();
    let found = h.service.discover(&access).await.unwrap();
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|c| !c.watched));
    let job = h.service.bulk_onboard(&access, &[tenant(1), tenant(2)], None).await.unwrap();
    assert_eq!(job.items.len(), 2);
    assert!(job.items.iter().all(|i| i.url.as_ref().unwrap().contains(&format!("/{}/adminconsent", i.tenant_id))), "bound to each tenant");
    assert!(
        job.items.iter().all(|i| i.method == crate::onboarding::BulkMethod::ConsentLink && i.steps.is_empty()),
        "no delegated credential"
    );
    assert!(job.remaining.is_empty());
    let first = h.service.store.link(&acme(), job.items[0].link_id.as_ref().unwrap()).await.unwrap().unwrap();
    h.service.complete_consent(&acme(), &granted(&state_of(&first), &job.items[0].tenant_id)).await.unwrap();
    let progress = h.service.bulk(&access, &job.id).await.unwrap();
    assert!(matches!(progress.items[0].status, LinkStatus::Consented { .. }));
    assert_eq!(progress.items[0].access_test_passed, Some(true));
    assert_eq!(progress.items[1].status, LinkStatus::Issued);
    assert_eq!(progress.items[1].access_test_passed, None);
    assert!(h.service.discover(&access).await.unwrap().iter().any(|c| c.tenant_id == tenant(1) && c.watched));
}

#[tokio::test]
async fn bulk_onboarding_refuses_unknown_repeated_or_too_many_tenants() {
    let h = registered().await;
    let access = Access::operator(&acme());
    crate::ports::RelationshipStore::replace_relationships(h.config.as_ref(), &acme(), &[sample_relationship("r1", &tenant(1))])
        .await
        .unwrap();
    for tenants in [vec![], vec![tenant(2)], vec![tenant(1), tenant(1)], vec![tenant(1); crate::onboarding::BULK_MAX + 1]] {
        assert!(matches!(h.service.bulk_onboard(&access, &tenants, None).await, Err(AdminError::Invalid(_))), "{tenants:?}");
    }
}

#[tokio::test]
async fn onboarding_needs_credentials_write_and_reading_needs_config_read() {
    let h = registered().await;
    let engineer = Access::of(&crate::access::Principal {
        msp_id: acme(),
        principal_id: crate::ids::PrincipalId::parse("eng").unwrap(),
        name: "Eng".into(),
        email: Some("e@acme.example".into()),
        role: crate::access::Role::Engineer,
        categories: None,
        scopes: std::collections::BTreeSet::new(),
        created_at: h.clock.now(),
        updated_at: h.clock.now(),
    });
    assert!(matches!(
        h.service.register_app(&engineer, M365AppCredentials::new("x", SecretString::new("y")), None).await,
        Err(AdminError::Forbidden(_))
    ));
    assert!(matches!(h.service.issue_link(&engineer, "C", None, None, None).await, Err(AdminError::Forbidden(_))));
    assert!(matches!(h.service.bulk_onboard(&engineer, &[tenant(1)], None).await, Err(AdminError::Forbidden(_))));
    assert!(h.service.app(&engineer).await.is_ok());
    assert!(h.service.links(&engineer).await.is_ok());
}
