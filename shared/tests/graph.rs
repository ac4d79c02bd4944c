//! The Microsoft Graph security alerts connector (`GraphAlertsClient`) against the project's
//! Microsoft 365 simulator (token endpoint, Management Activity API and Graph alerts_v2), started
//! on `127.0.0.1` per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use vigil::connectors::graph::GraphAlertsClient;
use vigil::connectors::http_client;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::error::{Classified, ErrorClass, SourceError};
use vigil::ids::{ContentType, TenantId};
use vigil::ports::{AuditSource, SecurityAlertSource, TimeWindow};
use vigil::secret::SecretString;
use vigil::tenant::M365AppCredentials;
use vigil_simulators::m365::{M365Failure, M365Operation, M365Sim, M365SimHandle};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const OTHER_TENANT: &str = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const CLIENT_ID: &str = "1b2c3d4e-0000-4000-8000-000000000001";
const CLIENT_SECRET: &str = "m365-client-secret-value-123";

async fn graph() -> (M365SimHandle, GraphAlertsClient) {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT, CLIENT_ID, CLIENT_SECRET);
    let client = GraphAlertsClient::new(http_client().unwrap(), sim.login_base(), sim.graph_base());
    (sim, client)
}

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

fn credentials() -> M365AppCredentials {
    M365AppCredentials::new(CLIENT_ID, SecretString::new(CLIENT_SECRET))
}

/// Graph's format: 7 fractional digits and `Z`.
fn graph_time(at: DateTime<Utc>) -> String {
    format!("{}.{:07}Z", at.format("%Y-%m-%dT%H:%M:%S"), at.timestamp_subsec_nanos() / 100)
}

fn alert(id: &str, updated: DateTime<Utc>) -> Value {
    json!({
        "id": id,
        "title": format!("Suspicious inbox rule {id}"),
        "severity": "medium",
        "status": "new",
        "serviceSource": "microsoftDefenderForOffice365",
        "lastUpdateDateTime": graph_time(updated),
        "evidence": [],
    })
}

fn ids(alerts: &[Value]) -> Vec<String> {
    alerts.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

fn token_requests(sim: &M365SimHandle) -> usize {
    sim.request_log().iter().filter(|r| r.path.contains("/oauth2/")).count()
}

fn graph_requests(sim: &M365SimHandle) -> usize {
    sim.request_log().iter().filter(|r| r.path.starts_with("/graph/")).count()
}

#[tokio::test]
async fn paging_returns_all_250_alerts_oldest_update_first() {
    let (sim, client) = graph().await;
    let base = Utc::now() - TimeDelta::hours(3);
    // Stored out of order; each updated at base + i seconds.
    for n in 0..250 {
        let i = (n * 97) % 250;
        sim.add_graph_alert(TENANT, alert(&format!("alert-{i:03}"), base + TimeDelta::seconds(i)));
    }

    let alerts = client.alerts_updated_since(&tenant(), &credentials(), base - TimeDelta::minutes(1)).await.unwrap();

    let expected: Vec<String> = (0..250).map(|i| format!("alert-{i:03}")).collect();
    assert_eq!(ids(&alerts), expected);
    assert_eq!(graph_requests(&sim), 3, "three pages of at most 100");
    let log = sim.request_log();
    let first = log.iter().find(|r| r.path.starts_with("/graph/")).unwrap();
    assert_eq!(first.query_param("$orderby").as_deref(), Some("lastUpdateDateTime asc"));
    assert_eq!(first.query_param("$top").as_deref(), Some("100"));
    assert!(first.query_param("$filter").unwrap().starts_with("lastUpdateDateTime ge "), "{first:?}");
    assert!(log.iter().filter(|r| r.path.starts_with("/graph/")).skip(1).all(|r| r.query_param("$skiptoken").is_some()));
    assert_eq!(alerts[0]["serviceSource"], "microsoftDefenderForOffice365", "alerts come back unchanged");
}

#[tokio::test]
async fn since_filters_on_the_last_update() {
    let (sim, client) = graph().await;
    let base = Utc::now() - TimeDelta::hours(1);
    for i in 0..10 {
        sim.add_graph_alert(TENANT, alert(&format!("a{i}"), base + TimeDelta::minutes(i)));
    }
    let alerts = client.alerts_updated_since(&tenant(), &credentials(), base + TimeDelta::minutes(7)).await.unwrap();
    assert_eq!(ids(&alerts), ["a7", "a8", "a9"], "ge: the alert updated exactly at `since` is included");
    let none = client.alerts_updated_since(&tenant(), &credentials(), Utc::now() + TimeDelta::minutes(1)).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn an_updated_alert_shows_up_again_with_its_new_time() {
    let (sim, client) = graph().await;
    let base = Utc::now() - TimeDelta::hours(1);
    sim.add_graph_alert(TENANT, alert("first", base));
    sim.add_graph_alert(TENANT, alert("second", base + TimeDelta::minutes(1)));
    let since = base - TimeDelta::seconds(1);
    assert_eq!(ids(&client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap()), ["first", "second"]);

    let mut resolved = alert("first", base + TimeDelta::minutes(5));
    resolved["status"] = json!("resolved");
    sim.add_graph_alert(TENANT, resolved);

    let later = base + TimeDelta::minutes(2);
    let alerts = client.alerts_updated_since(&tenant(), &credentials(), later).await.unwrap();
    assert_eq!(ids(&alerts), ["first"]);
    assert_eq!(alerts[0]["status"], "resolved");
    assert_eq!(alerts[0]["lastUpdateDateTime"], graph_time(base + TimeDelta::minutes(5)));
    assert_eq!(ids(&client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap()), ["second", "first"]);
}

#[tokio::test]
async fn only_the_tenants_own_alerts_are_listed() {
    let (sim, client) = graph().await;
    sim.add_tenant(OTHER_TENANT, CLIENT_ID, CLIENT_SECRET);
    let base = Utc::now() - TimeDelta::minutes(10);
    sim.add_graph_alert(TENANT, alert("mine", base));
    sim.add_graph_alert(OTHER_TENANT, alert("theirs", base));
    let alerts = client.alerts_updated_since(&tenant(), &credentials(), base - TimeDelta::minutes(1)).await.unwrap();
    assert_eq!(ids(&alerts), ["mine"]);
}

#[tokio::test]
async fn without_the_alerts_role_access_is_refused_until_it_is_granted() {
    let (sim, client) = graph().await;
    sim.set_graph_role(TENANT, false);
    let since = Utc::now() - TimeDelta::hours(1);

    let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
    assert!(matches!(&error, SourceError::AccessRefused { code, .. } if code == "Forbidden"), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(!error.to_string().contains(CLIENT_SECRET));

    // Once consented, the next call works: the refused token was not kept.
    sim.set_graph_role(TENANT, true);
    sim.add_graph_alert(TENANT, alert("after-consent", Utc::now()));
    let alerts = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap();
    assert_eq!(ids(&alerts), ["after-consent"]);
}

#[tokio::test]
async fn throttling_gives_throttled_with_the_servers_retry_after() {
    let (sim, client) = graph().await;
    let since = Utc::now() - TimeDelta::hours(1);
    sim.fail_next(M365Operation::GraphAlerts, M365Failure::Throttle, 1);
    let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(error.class(), ErrorClass::Transient);

    sim.fail_next(M365Operation::GraphAlerts, M365Failure::ThrottleForbidden, 1);
    let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { retry_after: Some(_) }), "503 is throttling too: {error:?}");

    sim.fail_next(M365Operation::GraphAlerts, M365Failure::ThrottleFractional, 1);
    let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)), "0.249 s is rounded up: {error:?}");

    sim.fail_next(M365Operation::GraphAlerts, M365Failure::ThrottleWithoutRetryAfter, 1);
    let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { retry_after: None }), "no Retry-After: the caller's schedule: {error:?}");

    sim.fail_next(M365Operation::GraphAlerts, M365Failure::ServerError, 1);
    let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
    assert!(matches!(error, SourceError::Unavailable(_)), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);

    assert!(client.alerts_updated_since(&tenant(), &credentials(), since).await.is_ok(), "recovers");
}

#[tokio::test]
async fn tokens_are_cached_per_resource_and_renewed_once_when_refused() {
    let (sim, client) = graph().await;
    let since = Utc::now() - TimeDelta::hours(1);
    for _ in 0..3 {
        client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap();
    }
    assert_eq!(token_requests(&sim), 1, "one Graph token for several calls");

    // The Management API needs a token of its own.
    let endpoints = M365Endpoints { login_base: sim.login_base(), management_base: sim.management_base() };
    let management = ManagementActivityClient::new(http_client().unwrap(), endpoints, "9f8e7d6c-0000-4000-8000-0000000000aa".into());
    let window = TimeWindow { start: Utc::now() - TimeDelta::hours(1), end: Utc::now() };
    management.list_content(&tenant(), &credentials(), ContentType::Exchange, window).await.unwrap();
    management.list_content(&tenant(), &credentials(), ContentType::Exchange, window).await.unwrap();
    assert_eq!(token_requests(&sim), 2, "one Management API token, cached too");
    client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap();
    assert_eq!(token_requests(&sim), 2, "the Graph token is still cached");

    // A token Graph no longer accepts is replaced once.
    sim.expire_tokens();
    client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap();
    assert_eq!(token_requests(&sim), 3);
}

#[tokio::test]
async fn a_management_api_token_is_not_accepted_by_graph() {
    let (sim, _client) = graph().await;
    let http = reqwest::Client::new();
    let token_for = |scope: String| {
        let http = http.clone();
        let url = format!("{}/{TENANT}/oauth2/v2.0/token", sim.login_base());
        async move {
            let form =
                [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("grant_type", "client_credentials"), ("scope", &scope)];
            let body: Value = http.post(url).form(&form).send().await.unwrap().json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let alerts = format!("{}/v1.0/security/alerts_v2", sim.graph_base());
    let management_token = token_for(format!("{}/.default", sim.management_base())).await;
    let refused = http.get(&alerts).bearer_auth(&management_token).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    let graph_token = token_for(format!("{}/.default", sim.graph_base())).await;
    assert_eq!(http.get(&alerts).bearer_auth(&graph_token).send().await.unwrap().status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn revoked_consent_and_a_wrong_secret_are_access_refused_without_secrets() {
    let (sim, client) = graph().await;
    let since = Utc::now() - TimeDelta::hours(1);
    let wrong = M365AppCredentials::new(CLIENT_ID, SecretString::new("wrong-secret-value-xyz"));
    let error = client.alerts_updated_since(&tenant(), &wrong, since).await.unwrap_err();
    assert!(matches!(&error, SourceError::AccessRefused { code, .. } if code == "AADSTS7000215"), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("wrong-secret-value-xyz"));

    sim.revoke_consent(TENANT);
    let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
    assert!(matches!(&error, SourceError::AccessRefused { code, .. } if code == "AADSTS700016"), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable() {
    let (sim, client) = graph().await;
    let since = Utc::now() - TimeDelta::hours(1);
    client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap();
    let other = GraphAlertsClient::new(http_client().unwrap(), sim.login_base(), sim.graph_base());
    sim.shutdown().await;

    // With a cached token only the Graph request fails; without one, the token request does.
    for client in [&client, &other] {
        let error = client.alerts_updated_since(&tenant(), &credentials(), since).await.unwrap_err();
        assert!(matches!(error, SourceError::Unavailable(_)), "{error:?}");
        assert_eq!(error.class(), ErrorClass::Transient);
    }
}
