//! The Microsoft 365 connector against the project's simulator of the token endpoint and the
//! Management Activity API, started on `127.0.0.1` per test. (ConnectWise: `connectwise.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration as TimeDelta, Utc};
use serde_json::json;
use std::time::Duration;
use vigil::connectors::http_client;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::error::{Classified, ErrorClass, SourceError};
use vigil::ids::{ContentType, MspId, TenantId};
use vigil::ports::{AuditSource, TimeWindow};
use vigil::secret::SecretString;
use vigil::tenant::M365AppCredentials;
use vigil_simulators::m365::{M365Failure, M365Operation, M365Sim, M365SimHandle};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const CLIENT_ID: &str = "1b2c3d4e-0000-4000-8000-000000000001";
const CLIENT_SECRET: &str = "m365-client-secret-value-123";
const PUBLISHER: &str = "9f8e7d6c-0000-4000-8000-0000000000aa";

// ---------------------------------------------------------------------------------------------
// Microsoft 365
// ---------------------------------------------------------------------------------------------

async fn m365() -> (M365SimHandle, ManagementActivityClient) {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT, CLIENT_ID, CLIENT_SECRET);
    let endpoints = M365Endpoints { login_base: sim.login_base(), management_base: sim.management_base() };
    let client = ManagementActivityClient::new(http_client().unwrap(), endpoints, PUBLISHER.into());
    (sim, client)
}

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

fn credentials() -> M365AppCredentials {
    M365AppCredentials::new(CLIENT_ID, SecretString::new(CLIENT_SECRET))
}

fn last_hour() -> TimeWindow {
    let now = Utc::now();
    TimeWindow { start: now - TimeDelta::hours(1), end: now + TimeDelta::minutes(1) }
}

fn record(id: &str) -> serde_json::Value {
    json!({"Id": id, "RecordType": 1, "CreationTime": "2026-01-05T10:00:00", "Operation": "New-InboxRule", "Workload": "Exchange", "UserId": "alice@contoso.com"})
}

fn token_requests(sim: &M365SimHandle) -> usize {
    sim.request_log().iter().filter(|r| r.path.contains("/oauth2/")).count()
}

#[tokio::test]
async fn listing_follows_every_page_and_every_request_carries_the_publisher_identifier() {
    let (sim, client) = m365().await;
    sim.set_page_size(2);
    let mut expected: Vec<String> = (0..5).map(|i| sim.add_records(TENANT, "Audit.Exchange", vec![record(&format!("r{i}"))])).collect();

    let blobs = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap();

    let mut listed: Vec<String> = blobs.iter().map(|b| b.content_id.clone()).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "all five blobs, across three pages, each once");
    let manage: Vec<_> = sim.request_log().into_iter().filter(|r| r.path.starts_with("/manage/")).collect();
    assert!(manage.iter().filter(|r| r.query.contains("nextPage")).count() >= 2, "the NextPageUri pages were followed: {manage:?}");
    assert!(manage.iter().all(|r| r.has_publisher_identifier()), "{manage:?}");
    assert!(manage.iter().all(|r| r.query_param("PublisherIdentifier").as_deref() == Some(PUBLISHER)));
    assert_eq!(sim.missing_publisher_identifier_count(), 0);
}

#[tokio::test]
async fn a_missing_subscription_is_started_automatically() {
    let (sim, client) = m365().await;
    let content_id = sim.add_records(TENANT, "Audit.General", vec![record("g1")]);
    assert!(sim.subscriptions(TENANT).is_empty());

    let blobs = client.list_content(&tenant(), &credentials(), ContentType::General, last_hour()).await.unwrap();

    assert_eq!(sim.subscriptions(TENANT), vec!["Audit.General".to_string()]);
    assert_eq!(blobs.iter().map(|b| b.content_id.as_str()).collect::<Vec<_>>(), vec![content_id.as_str()]);
    let starts = sim.request_log().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/subscriptions/start")).count();
    assert_eq!(starts, 1);
    // Once started, listing again does not start it again.
    client.list_content(&tenant(), &credentials(), ContentType::General, last_hour()).await.unwrap();
    assert_eq!(sim.request_log().into_iter().filter(|r| r.path.ends_with("/subscriptions/start")).count(), 1);
}

#[tokio::test]
async fn a_tenant_with_revoked_consent_is_access_refused_and_permanent() {
    let (sim, client) = m365().await;
    sim.revoke_consent(TENANT);

    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();

    assert!(matches!(&error, SourceError::AccessRefused { code, .. } if code == "AADSTS700016"), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
    let rendered = format!("{error} {error:?}");
    assert!(!rendered.contains("Trace ID") && !rendered.contains(CLIENT_SECRET), "{rendered}");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_even_after_the_right_one_earned_a_token() {
    let (sim, client) = m365().await;
    let acme = credentials().held_by(&MspId::parse("acme").unwrap());
    client.list_content(&tenant(), &acme, ContentType::Exchange, last_hour()).await.unwrap();
    let before = token_requests(&sim);

    let guessed = M365AppCredentials::new(CLIENT_ID, SecretString::new("guessed-secret")).held_by(&MspId::parse("other").unwrap());
    let error = client.list_content(&tenant(), &guessed, ContentType::Exchange, last_hour()).await.unwrap_err();

    assert!(matches!(&error, SourceError::AccessRefused { code, .. } if code == "AADSTS7000215"), "{error:?}");
    assert_eq!(token_requests(&sim), before + 1, "the guessed secret had to face the token endpoint");
    let same_secret_other_msp = credentials().held_by(&MspId::parse("other").unwrap());
    client.list_content(&tenant(), &same_secret_other_msp, ContentType::Exchange, last_hour()).await.unwrap();
    assert_eq!(token_requests(&sim), before + 2, "another MSP earns its own token, even with the same secret");
    client.list_content(&tenant(), &acme, ContentType::Exchange, last_hour()).await.unwrap();
    assert_eq!(token_requests(&sim), before + 2, "the first MSP's token is still cached for it");
}

#[tokio::test]
async fn a_wrong_client_secret_is_access_refused_and_never_shown() {
    let (_sim, client) = m365().await;
    let wrong = M365AppCredentials::new(CLIENT_ID, SecretString::new("wrong-secret-value-456"));

    let error = client.list_content(&tenant(), &wrong, ContentType::Exchange, last_hour()).await.unwrap_err();

    assert!(matches!(&error, SourceError::AccessRefused { code, .. } if code == "AADSTS7000215"), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("wrong-secret-value-456"));
}

#[tokio::test]
async fn a_token_without_the_activity_feed_role_is_access_refused() {
    let (sim, client) = m365().await;
    sim.set_activity_feed_role(TENANT, false);

    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();

    assert!(matches!(&error, SourceError::AccessRefused { code, .. } if code == "AF10001"), "{error:?}");
}

#[tokio::test]
async fn throttling_gives_throttled_with_the_servers_retry_after() {
    let (sim, client) = m365().await;
    sim.fail_next(M365Operation::ListContent, M365Failure::Throttle, 1);
    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { retry_after: Some(delay) } if delay == Duration::from_secs(1)), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);

    sim.fail_next(M365Operation::FetchBlob, M365Failure::ThrottleForbidden, 1);
    sim.add_records(TENANT, "Audit.Exchange", vec![record("t1")]);
    let blobs = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap();
    let error = client.fetch_content(&tenant(), &credentials(), &blobs[0]).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { retry_after: None }), "403 + AF429 is throttling too: {error:?}");
}

#[tokio::test]
async fn a_fractional_retry_after_is_rounded_up_and_a_missing_one_leaves_the_delay_to_the_caller() {
    let (sim, client) = m365().await;
    sim.fail_next(M365Operation::ListContent, M365Failure::ThrottleFractional, 1);
    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { retry_after: Some(delay) } if delay == Duration::from_secs(1)), "0.249: {error:?}");

    sim.fail_next(M365Operation::ListContent, M365Failure::ThrottleWithoutRetryAfter, 1);
    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { retry_after: None }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn a_subscription_still_disabled_just_after_its_start_is_transient_and_later_lists() {
    let (sim, client) = m365().await;
    sim.set_disabled_after_start(1);
    sim.add_records(TENANT, "Audit.Exchange", vec![record("lag-1")]);

    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();
    assert!(matches!(error, SourceError::Unavailable(ref message) if message.contains("AF20023")), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);

    let blobs = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap();
    assert_eq!(blobs.len(), 1, "the next poll lists");
}

#[tokio::test]
async fn starting_sharepoint_accepts_the_live_contenttype_spelling() {
    let (sim, client) = m365().await;
    sim.add_records(TENANT, "Audit.SharePoint", vec![record("sp-1")]);
    // The listing starts the subscription; the start answers `"contentType":"Audit.Sharepoint"`.
    let blobs = client.list_content(&tenant(), &credentials(), ContentType::SharePoint, last_hour()).await.unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!(sim.subscriptions(TENANT), vec!["Audit.SharePoint"]);
    assert_eq!(ContentType::from_wire("Audit.Sharepoint"), Some(ContentType::SharePoint));
}

#[tokio::test]
async fn server_errors_and_token_endpoint_throttling_are_transient() {
    let (sim, client) = m365().await;
    sim.fail_next(M365Operation::ListContent, M365Failure::ServerError, 1);
    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();
    assert!(matches!(error, SourceError::Unavailable(_)), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);

    let (sim, client) = m365().await;
    sim.fail_next(M365Operation::Token, M365Failure::Throttle, 1);
    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { .. }), "{error:?}");
}

#[tokio::test]
async fn fetch_returns_the_raw_body_even_of_an_invalid_json_blob() {
    let (sim, client) = m365().await;
    let raw = "[{\"Id\": \"broken\", \"RecordType\": 1,";
    let content_id = sim.add_raw_blob(TENANT, "Audit.SharePoint", raw);
    let blobs = client.list_content(&tenant(), &credentials(), ContentType::SharePoint, last_hour()).await.unwrap();
    let blob = blobs.iter().find(|b| b.content_id == content_id).unwrap();
    assert!(blob.content_id.contains('$'), "content ids carry dollars: {}", blob.content_id);

    let body = client.fetch_content(&tenant(), &credentials(), blob).await.unwrap();

    assert_eq!(body, raw);
    assert_eq!(sim.blob_fetch_count(), 1);
    let fetch = sim.request_log().into_iter().find(|r| r.path.contains("/audit/")).unwrap();
    assert!(fetch.has_publisher_identifier(), "{fetch:?}");
}

#[tokio::test]
async fn fetching_a_blob_that_does_not_exist_is_rejected() {
    let (sim, client) = m365().await;
    sim.add_records(TENANT, "Audit.Exchange", vec![record("x")]);
    let mut blob = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap().remove(0);
    blob.content_uri = blob.content_uri.replace(&blob.content_id, "20260101000000000$20260101000000000$audit_exchange$999999");

    let error = client.fetch_content(&tenant(), &credentials(), &blob).await.unwrap_err();

    assert!(matches!(&error, SourceError::Rejected { code, .. } if code == "AF20050"), "{error:?}");
}

#[tokio::test]
async fn tokens_are_cached_across_calls_and_renewed_once_when_refused() {
    let (sim, client) = m365().await;
    sim.add_records(TENANT, "Audit.Exchange", vec![record("a")]);
    let blobs = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap();
    client.fetch_content(&tenant(), &credentials(), &blobs[0]).await.unwrap();
    client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap();
    client.fetch_content(&tenant(), &credentials(), &blobs[0]).await.unwrap();
    assert_eq!(token_requests(&sim), 1, "one token for several calls");

    sim.expire_tokens();
    client.fetch_content(&tenant(), &credentials(), &blobs[0]).await.unwrap();
    assert_eq!(token_requests(&sim), 2, "a 401 drops the cached token and retries once");
    let token_query_has_secret = sim.request_log().iter().any(|r| r.query.contains(CLIENT_SECRET));
    assert!(!token_query_has_secret, "the secret travels in the form body only");
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable() {
    let endpoints = M365Endpoints { login_base: "http://127.0.0.1:1/login".into(), management_base: "http://127.0.0.1:1/manage".into() };
    let client = ManagementActivityClient::new(http_client().unwrap(), endpoints, PUBLISHER.into());
    let error = client.list_content(&tenant(), &credentials(), ContentType::Exchange, last_hour()).await.unwrap_err();
    assert!(matches!(error, SourceError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn concurrent_calls_for_one_tenant_share_a_single_token_request() {
    let (sim, client) = m365().await;
    sim.set_latency(std::time::Duration::from_millis(200));
    let (tenant, credentials) = (tenant(), credentials());
    let calls = (0..5).map(|_| client.list_content(&tenant, &credentials, ContentType::Exchange, last_hour()));
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(token_requests(&sim), 1, "the identity platform throttles repeated identical token requests");
}
