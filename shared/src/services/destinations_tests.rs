//! Specifications of the destination use cases, on the in-memory adapters.

use super::*;
use crate::alert::AlertHits;
use crate::clock::SystemClock;
use crate::contract::{sample_alert_for, unique_tenant};
use crate::memory::*;
use crate::ports::{AlertStore, SecretStore};
use crate::ticket::Delivery;
use chrono::Utc;

struct Harness {
    service: DestinationsService,
    secrets: Arc<MemorySecretStore>,
    alerts: Arc<MemoryAlertStore>,
    psa: MemoryTicketSystemProvider,
    queue: Arc<MemoryQueue>,
}

fn harness() -> Harness {
    let secrets = Arc::new(MemorySecretStore::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let config = Arc::new(MemoryConfigStore::default());
    let admin = Arc::new(AdminService {
        config: config.clone(),
        alerts: alerts.clone(),
        ingest: Arc::new(MemoryIngestState::default()),
        secrets: secrets.clone(),
        clock: Arc::new(SystemClock),
        audit: crate::services::access::AuditTrail {
            log: Arc::new(crate::memory::MemoryConfigStore::default()),
            clock: Arc::new(crate::clock::SystemClock),
        },
    });
    let psa = MemoryTicketSystemProvider::default();
    let queue = Arc::new(MemoryQueue::default());
    let service = DestinationsService {
        admin,
        destinations: config,
        systems: Arc::new(psa.clone()),
        tickets: queue.clone(),
        policy: DestinationPolicy::default(),
        callback_base: None,
        billing: None,
    };
    Harness { service, secrets, alerts, psa, queue }
}

fn acme() -> MspId {
    MspId::parse("acme").unwrap()
}

fn id(raw: &str) -> DestinationId {
    DestinationId::parse(raw).unwrap()
}

fn connectwise_settings() -> DestinationSettings {
    DestinationSettings::ConnectWise {
        api_root: "https://api-na.myconnectwise.net/v4_6_release/apis/3.0".into(),
        ticket_type: None,
        source: None,
    }
}

fn connectwise_credentials() -> DestinationCredentials {
    DestinationCredentials::ConnectWise {
        company_id: "acme".into(),
        public_key: "pub".into(),
        private_key: SecretString::new("priv-secret"),
        client_id: "3f0c0a3e-0000-4000-8000-000000000001".into(),
    }
}

fn autotask_credentials() -> DestinationCredentials {
    DestinationCredentials::Autotask {
        username: "api@acme.example".into(),
        secret: SecretString::new("at-secret"),
        integration_code: SecretString::new("at-code"),
    }
}

fn request() -> DestinationRequest {
    DestinationRequest {
        name: "ConnectWise".into(),
        enabled: true,
        settings: connectwise_settings(),
        routing: Routing::default(),
        requests_per_hour: None,
        credentials: Some(connectwise_credentials()),
    }
}

fn refusal(result: Result<impl std::fmt::Debug, AdminError>) -> String {
    match result {
        Err(AdminError::Invalid(detail)) => detail,
        other => panic!("expected a 422, got {other:?}"),
    }
}

#[tokio::test]
async fn creating_needs_credentials_which_go_to_the_secret_store_and_replacing_keeps_them() {
    let h = harness();
    let without = DestinationRequest { credentials: None, ..request() };
    assert_eq!(
        refusal(h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), without.clone(), None).await),
        "credentials: required when creating a destination"
    );
    let (created, was_created) = h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), request(), None).await.unwrap();
    assert!(was_created && created.credentials_set);
    let secret = h.secrets.get_secret(&SecretName::destination(&acme(), &id("psa"))).await.unwrap().unwrap();
    let stored: DestinationCredentials = serde_json::from_str(secret.expose()).unwrap();
    assert_eq!(stored, connectwise_credentials());
    assert!(!serde_json::to_string(&created).unwrap().contains("priv-secret"), "the destination never holds the keys");
    let renamed = DestinationRequest { name: " Service desk ".into(), enabled: false, ..without };
    let (replaced, was_created) = h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), renamed, None).await.unwrap();
    assert!(!was_created);
    assert_eq!((replaced.name.as_str(), replaced.enabled, replaced.credentials_set), ("Service desk", false, true));
    assert_eq!(replaced.created_at, created.created_at);
    assert_eq!(h.service.get(&crate::access::Access::operator(&acme()), &id("psa")).await.unwrap(), replaced);
}

#[tokio::test]
async fn changing_the_kind_needs_credentials_of_the_new_kind() {
    let h = harness();
    h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), request(), None).await.unwrap();
    let autotask = DestinationSettings::autotask(None);
    let bare = DestinationRequest { settings: autotask.clone(), credentials: None, ..request() };
    assert!(
        refusal(h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), bare, None).await)
            .starts_with("credentials: required when the kind changes")
    );
    let mismatched = DestinationRequest { settings: autotask.clone(), ..request() };
    assert_eq!(
        refusal(h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), mismatched, None).await),
        "credentials.kind: connectwise credentials for a autotask destination"
    );
    let matching = DestinationRequest { settings: autotask, credentials: Some(autotask_credentials()), ..request() };
    assert_eq!(
        h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), matching, None).await.unwrap().0.kind(),
        crate::destination::DestinationKind::Autotask
    );
}

#[test]
fn every_refused_value_is_named_by_its_field() {
    let policy = DestinationPolicy::default();
    let check = |request: DestinationRequest| refusal(validate(&request, policy));
    let cw = |api_root: &str, ticket_type: Option<&str>| DestinationSettings::ConnectWise {
        api_root: api_root.into(),
        ticket_type: ticket_type.map(str::to_owned),
        source: None,
    };
    assert_eq!(check(DestinationRequest { name: "  ".into(), ..request() }), "name: must not be blank");
    assert_eq!(check(DestinationRequest { name: "n".repeat(101), ..request() }), "name: at most 100 characters");
    let metadata = check(DestinationRequest { settings: cw("https://169.254.169.254/v4_6_release/apis/3.0", None), ..request() });
    assert!(metadata.starts_with("settings.api_root: ") && metadata.contains("not a public address"), "{metadata}");
    let wrong_root = check(DestinationRequest { settings: cw("https://api-na.myconnectwise.net/v4_6_release/", None), ..request() });
    assert!(wrong_root.starts_with("settings.api_root: must be the REST API root, ending in /apis/3.0"), "{wrong_root}");
    let root = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0";
    assert_eq!(check(DestinationRequest { settings: cw(root, Some(" ")), ..request() }), "settings.ticket_type: must not be blank");
    assert_eq!(
        check(DestinationRequest { settings: cw(root, Some(&"7".repeat(65))), ..request() }),
        "settings.ticket_type: at most 64 characters"
    );
    let mut routing = Routing::default();
    routing.priorities.insert(crate::alert::Severity::High, "p".repeat(65));
    assert_eq!(check(DestinationRequest { routing, ..request() }), "routing.priorities.High: at most 64 characters");
    let routing = Routing { unlinked_tenant: UnlinkedTenant::CatchAll { company: String::new() }, ..Routing::default() };
    assert_eq!(check(DestinationRequest { routing, ..request() }), "routing.unlinked_tenant.company: must not be blank");
    let routing = Routing { tenants: vec![unique_tenant(); limits::ROUTING_LIST_MAX + 1], ..Routing::default() };
    assert_eq!(check(DestinationRequest { routing, ..request() }), "routing.tenants: at most 1000 entries");
    for share in [0, limits::REQUESTS_PER_HOUR_MAX + 1] {
        assert!(check(DestinationRequest { requests_per_hour: Some(share), ..request() }).starts_with("requests_per_hour: 1 to 10000"));
    }
    assert!(validate(&DestinationRequest { requests_per_hour: Some(limits::REQUESTS_PER_HOUR_MAX), ..request() }, policy).is_ok());
    let autotask_keys = DestinationRequest { credentials: Some(autotask_credentials()), ..request() };
    assert_eq!(check(autotask_keys), "credentials.kind: autotask credentials for a connectwise destination");
    let blank_key = DestinationCredentials::ConnectWise {
        company_id: "acme".into(),
        public_key: " ".into(),
        private_key: SecretString::new("k"),
        client_id: "c".into(),
    };
    assert_eq!(check(DestinationRequest { credentials: Some(blank_key), ..request() }), "credentials.public_key: must not be blank");
}

#[tokio::test]
async fn an_msp_has_at_most_fifty_destinations_but_may_still_replace_one() {
    let h = harness();
    for n in 0..limits::DESTINATIONS_MAX {
        h.service.put(&crate::access::Access::operator(&acme()), &id(&format!("d{n}")), request(), None).await.unwrap();
    }
    assert_eq!(
        refusal(h.service.put(&crate::access::Access::operator(&acme()), &id("one-more"), request(), None).await),
        "destinations: at most 50 entries"
    );
    assert!(h.service.put(&crate::access::Access::operator(&acme()), &id("d0"), request(), None).await.is_ok());
    assert!(
        h.service.put(&crate::access::Access::operator(&MspId::parse("other").unwrap()), &id("one-more"), request(), None).await.is_ok(),
        "the limit is per MSP"
    );
}

#[tokio::test]
async fn another_msps_destination_is_not_found_anywhere() {
    let h = harness();
    h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), request(), None).await.unwrap();
    let other = MspId::parse("other").unwrap();
    assert!(matches!(h.service.get(&crate::access::Access::operator(&other), &id("psa")).await, Err(AdminError::NotFound(_))));
    assert!(matches!(h.service.test(&crate::access::Access::operator(&other), &id("psa")).await, Err(AdminError::NotFound(_))));
    assert!(matches!(
        h.service.lookup(&crate::access::Access::operator(&other), &id("psa"), &Lookup::Places).await,
        Err(AdminError::NotFound(_))
    ));
    assert!(matches!(h.service.delete(&crate::access::Access::operator(&other), &id("psa")).await, Err(AdminError::NotFound(_))));
    assert!(h.service.list(&crate::access::Access::operator(&other)).await.unwrap().is_empty());
    h.service.delete(&crate::access::Access::operator(&acme()), &id("psa")).await.unwrap();
    assert!(h.secrets.get_secret(&SecretName::destination(&acme(), &id("psa"))).await.unwrap().is_some(), "the secret is left");
}

#[tokio::test]
async fn a_test_reports_the_psas_problems_and_a_setup_failure_as_a_result() {
    let h = harness();
    h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), request(), None).await.unwrap();
    assert_eq!(
        h.service.test(&crate::access::Access::operator(&acme()), &id("psa")).await.unwrap(),
        DestinationTest { ok: true, problems: vec![] }
    );
    h.psa.system(&id("psa")).report_problems(vec!["board 7 does not exist".into()]);
    assert_eq!(h.service.test(&crate::access::Access::operator(&acme()), &id("psa")).await.unwrap().problems, ["board 7 does not exist"]);
    h.psa.system(&id("psa")).fail_next(MemoryOperation::Check, MemoryFailure::Before(SinkError::Unauthorized("401 bad keys".into())));
    let refused = h.service.test(&crate::access::Access::operator(&acme()), &id("psa")).await.unwrap();
    assert_eq!((refused.ok, refused.problems), (false, vec!["credentials refused: 401 bad keys".to_owned()]));
    h.psa.refuse_setup(&id("psa"), "destination psa has a refused address");
    let unusable = h.service.test(&crate::access::Access::operator(&acme()), &id("psa")).await.unwrap();
    assert_eq!((unusable.ok, unusable.problems), (false, vec!["destination psa has a refused address".to_owned()]));
    assert!(h.psa.system(&id("psa")).tickets().is_empty(), "a test creates nothing");
}

#[tokio::test]
async fn a_lookup_answers_the_psas_items_and_a_psa_failure_is_an_upstream_error_with_a_bounded_complaint() {
    let h = harness();
    h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), request(), None).await.unwrap();
    let companies = h
        .service
        .lookup(&crate::access::Access::operator(&acme()), &id("psa"), &Lookup::Companies { search: Some("Con".into()) })
        .await
        .unwrap();
    assert_eq!(companies[0].id, "250");
    let long = "x".repeat(10_000);
    h.psa.system(&id("psa")).fail_next(MemoryOperation::Lookup, MemoryFailure::Before(SinkError::Rejected(long)));
    match h.service.lookup(&crate::access::Access::operator(&acme()), &id("psa"), &Lookup::Places).await {
        Err(AdminError::Upstream(complaint)) => {
            assert!(complaint.starts_with("request rejected: xxx"));
            assert_eq!(complaint.chars().count(), PSA_COMPLAINT_CHARS);
        }
        other => panic!("{other:?}"),
    }
    let search = Lookup::Companies { search: Some("s".repeat(limits::LOOKUP_SEARCH_CHARS + 1)) };
    assert_eq!(
        refusal(h.service.lookup(&crate::access::Access::operator(&acme()), &id("psa"), &search).await),
        "search: at most 100 characters"
    );
    let contacts = Lookup::Contacts { company: " ".into(), email: None };
    assert_eq!(
        refusal(h.service.lookup(&crate::access::Access::operator(&acme()), &id("psa"), &contacts).await),
        "company: must not be blank"
    );
}

/// Stores an alert of `tenant` held by `destination` for want of a company link.
async fn held_alert(h: &Harness, tenant: &TenantId, destination: &str) -> crate::ids::AlertId {
    let alert = sample_alert_for(&acme(), tenant, Utc::now());
    let hits = AlertHits::of_records(alert.clone(), vec![(crate::ids::RecordId::parse("r1").unwrap(), Utc::now())]);
    h.alerts.record_hits(&hits, Utc::now()).await.unwrap();
    let mut delivery = Delivery::new(acme(), alert.id.clone(), id(destination));
    delivery.held_unlinked = true;
    delivery.version = 1;
    h.alerts.save_delivery(&delivery).await.unwrap();
    alert.id
}

#[tokio::test]
async fn linking_a_tenant_announces_its_held_alerts_to_that_destination_only() {
    let h = harness();
    let (contoso, fabrikam) = (unique_tenant(), unique_tenant());
    for tenant in [&contoso, &fabrikam] {
        h.service.admin.register_tenant(&crate::access::Access::operator(&acme()), tenant.clone(), "Tenant", vec![]).await.unwrap();
    }
    h.service.put(&crate::access::Access::operator(&acme()), &id("psa"), request(), None).await.unwrap();
    h.service.put(&crate::access::Access::operator(&acme()), &id("other-psa"), request(), None).await.unwrap();
    let held = held_alert(&h, &contoso, "psa").await;
    held_alert(&h, &fabrikam, "psa").await;
    let linked = h.service.link_company(&crate::access::Access::operator(&acme()), &contoso, &id("psa"), Some("250".into())).await.unwrap();
    assert_eq!(linked.company_link(&id("psa")).as_deref(), Some("250"));
    let sent: Vec<AlertChangedMessage> = h.queue.drain().iter().map(|body| serde_json::from_str(body).unwrap()).collect();
    assert_eq!(sent, [AlertChangedMessage { msp_id: acme(), alert_id: held, destination: Some(id("psa")) }]);
    h.service.link_company(&crate::access::Access::operator(&acme()), &contoso, &id("other-psa"), Some("7".into())).await.unwrap();
    assert!(h.queue.drain().is_empty(), "nothing is held by the other destination");
    h.service.link_company(&crate::access::Access::operator(&acme()), &contoso, &id("psa"), None).await.unwrap();
    assert!(h.queue.drain().is_empty(), "unlinking announces nothing");
    assert!(matches!(
        h.service.link_company(&crate::access::Access::operator(&acme()), &contoso, &id("nowhere"), Some("1".into())).await,
        Err(AdminError::NotFound(_))
    ));
}

fn channel_request(settings: DestinationSettings, credentials: Option<DestinationCredentials>) -> DestinationRequest {
    DestinationRequest { name: "Channel".into(), settings, credentials, ..request() }
}

fn teams_credentials(url: &str) -> Option<DestinationCredentials> {
    Some(DestinationCredentials::Teams { workflow_url: SecretString::new(url) })
}

#[test]
fn a_channels_address_and_secret_are_checked_before_anything_is_stored() {
    let strict = DestinationPolicy::default();
    let teams = |url: &str| validate(&channel_request(DestinationSettings::Teams {}, teams_credentials(url)), strict);
    assert!(teams("https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=x").is_ok());
    assert!(teams("https://default1.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/abc?sig=x").is_ok());
    assert!(
        refusal(teams("https://evil.example/workflows/abc"))
            .starts_with("credentials.workflow_url: \"evil.example\" is not a host of this service")
    );
    assert!(refusal(teams("http://prod-1.logic.azure.com/x")).contains("https"));
    let slack = |url: &str| {
        validate(
            &channel_request(DestinationSettings::Slack {}, Some(DestinationCredentials::Slack { webhook_url: SecretString::new(url) })),
            strict,
        )
    };
    assert!(slack("https://hooks.slack.com/services/T0/B0/secret").is_ok());
    assert!(refusal(slack("https://hooks.slack.com.evil.example/services/x")).starts_with("credentials.webhook_url:"));
    let webhook = |secret: &str| {
        let settings = DestinationSettings::Webhook(crate::destination::WebhookSettings {
            url: "https://hooks.msp.example/vigil".into(),
            rotation_grace_hours: 24,
        });
        let credentials =
            DestinationCredentials::Webhook { secret: SecretString::new(secret), previous_secret: None, previous_valid_until: None };
        validate(&channel_request(settings, Some(credentials)), strict)
    };
    assert!(webhook("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_ok());
    assert!(refusal(webhook("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")).contains("whsec_"));
    assert!(refusal(webhook("whsec_c2hvcnQ=")).contains("24 to 64"), "a short secret is refused");
    let email = |recipients: Vec<&str>| {
        let settings = DestinationSettings::Email(crate::destination::EmailSettings {
            recipients: recipients.into_iter().map(str::to_owned).collect(),
            subject_prefix: None,
        });
        validate(&channel_request(settings, None), strict)
    };
    assert!(email(vec!["soc@msp.example"]).is_ok());
    assert_eq!(refusal(email(vec![])), "settings.recipients: at least one address");
    assert!(refusal(email(vec!["soc@msp.example", "not an address"])).starts_with("settings.recipients[1]:"));
    assert!(refusal(email(vec!["a@msp.example"; 51])).contains("settings.recipients"));
}

#[tokio::test]
async fn an_email_destination_needs_no_credentials_and_a_channel_test_posts_one_test_message() {
    let h = harness();
    let settings =
        DestinationSettings::Email(crate::destination::EmailSettings { recipients: vec!["soc@msp.example".into()], subject_prefix: None });
    let (created, _) =
        h.service.put(&crate::access::Access::operator(&acme()), &id("mail"), channel_request(settings, None), None).await.unwrap();
    assert!(created.credentials_set, "nothing is missing");
    let tested = h.service.test(&crate::access::Access::operator(&acme()), &id("mail")).await.unwrap();
    assert!(tested.ok);
    assert_eq!(h.psa.channel(&id("mail")).tests_posted(), 1);
    let lookup = h.service.lookup(&crate::access::Access::operator(&acme()), &id("mail"), &Lookup::Places).await;
    assert_eq!(refusal(lookup), "a email destination has nothing to look up");
}

#[tokio::test]
async fn a_new_webhook_secret_keeps_the_replaced_one_for_the_grace_period_and_the_same_one_changes_nothing() {
    let h = harness();
    let settings = DestinationSettings::Webhook(crate::destination::WebhookSettings {
        url: "https://hooks.msp.example/vigil".into(),
        rotation_grace_hours: 12,
    });
    let with_secret = |secret: &str| {
        let credentials =
            DestinationCredentials::Webhook { secret: SecretString::new(secret), previous_secret: None, previous_valid_until: None };
        channel_request(settings.clone(), Some(credentials))
    };
    let first = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let second = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let stored = || async {
        let secret = h.secrets.get_secret(&SecretName::destination(&acme(), &id("hook"))).await.unwrap().unwrap();
        serde_json::from_str::<DestinationCredentials>(secret.expose()).unwrap()
    };
    h.service.put(&crate::access::Access::operator(&acme()), &id("hook"), with_secret(first), None).await.unwrap();
    h.service.put(&crate::access::Access::operator(&acme()), &id("hook"), with_secret(second), None).await.unwrap();
    let DestinationCredentials::Webhook { secret, previous_secret, previous_valid_until } = stored().await else {
        panic!("webhook credentials")
    };
    assert_eq!((secret.expose(), previous_secret.as_ref().map(SecretString::expose)), (second, Some(first)));
    let until = previous_valid_until.unwrap();
    let hours = (until - Utc::now()).num_minutes();
    assert!((11 * 60..=12 * 60).contains(&hours), "{hours} minutes");
    h.service.put(&crate::access::Access::operator(&acme()), &id("hook"), with_secret(second), None).await.unwrap();
    let DestinationCredentials::Webhook { previous_valid_until: again, .. } = stored().await else { panic!("webhook credentials") };
    assert_eq!(again, Some(until), "sending the same secret again does not restart the grace period");
}
