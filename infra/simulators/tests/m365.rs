//! Wire-level tests of the Microsoft 365 simulator (token endpoint + Management Activity API),
//! driven over real HTTP with reqwest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vigil_simulators::m365::{M365Failure, M365Operation, M365Sim, M365SimHandle};

const TENANT_A: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const TENANT_B: &str = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const CLIENT_ID: &str = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6";
const SECRET: &str = "s3cr3t~value";
const PUBLISHER: &str = "aaaa0000-bb11-2222-33cc-444444dddddd";

async fn sim_with_tenants() -> M365SimHandle {
    let sim = M365Sim::start().await.expect("sim starts");
    sim.add_tenant(TENANT_A, CLIENT_ID, SECRET);
    sim.add_tenant(TENANT_B, CLIENT_ID, SECRET);
    sim
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn token_v2_response(sim: &M365SimHandle, tenant: &str, secret: &str) -> reqwest::Response {
    client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.login_base()))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", "https://manage.office.com/.default"),
        ])
        .send()
        .await
        .unwrap()
}

async fn token(sim: &M365SimHandle, tenant: &str) -> String {
    let resp = token_v2_response(sim, tenant, SECRET).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn feed(sim: &M365SimHandle, tenant: &str, op: &str) -> String {
    format!("{}/api/v1.0/{tenant}/activity/feed/{op}", sim.management_base())
}

async fn start_subscription(sim: &M365SimHandle, tenant: &str, token: &str, content_type: &str) -> reqwest::Response {
    client()
        .post(feed(sim, tenant, "subscriptions/start"))
        .bearer_auth(token)
        .query(&[("contentType", content_type), ("PublisherIdentifier", PUBLISHER)])
        .send()
        .await
        .unwrap()
}

fn window_now() -> (String, String) {
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    (fmt(now - TimeDelta::hours(1)), fmt(now + TimeDelta::hours(1)))
}

async fn list_content(sim: &M365SimHandle, tenant: &str, token: &str, content_type: &str, start: &str, end: &str) -> reqwest::Response {
    client()
        .get(feed(sim, tenant, "subscriptions/content"))
        .bearer_auth(token)
        .query(&[("contentType", content_type), ("startTime", start), ("endTime", end), ("PublisherIdentifier", PUBLISHER)])
        .send()
        .await
        .unwrap()
}

async fn af_code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.unwrap();
    body["error"]["code"].as_str().unwrap_or_default().to_owned()
}

fn exchange_record(id: &str) -> Value {
    json!({
        "CreationTime": "2026-01-05T09:41:27",
        "Id": id,
        "Operation": "New-InboxRule",
        "OrganizationId": TENANT_A,
        "RecordType": 1,
        "ResultStatus": "True",
        "UserKey": "10032001A2B3C4D5",
        "UserType": 0,
        "Version": 1,
        "Workload": "Exchange",
        "ClientIP": "[2001:db8:12::7]:51544",
        "UserId": "alice@contoso.com",
        "Parameters": [{ "Name": "ForwardTo", "Value": "drop@mail-collector.example" }]
    })
}

#[tokio::test]
async fn v2_token_returns_numeric_expires_in() {
    let sim = sim_with_tenants().await;
    let resp = token_v2_response(&sim, TENANT_A, SECRET).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64(), "{body}");
    assert!(body["ext_expires_in"].is_u64(), "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped token");
    sim.shutdown().await;
}

#[tokio::test]
async fn v1_token_returns_string_expires_in() {
    let sim = sim_with_tenants().await;
    let resp = client()
        .post(format!("{}/{TENANT_A}/oauth2/token", sim.login_base()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("resource", "https://manage.office.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    for field in ["expires_in", "expires_on", "not_before"] {
        let v = body[field].as_str().unwrap_or_else(|| panic!("{field} is a string: {body}"));
        v.parse::<i64>().unwrap();
    }
    assert_eq!(body["resource"], "https://manage.office.com");
    // A v1 token works against the API like a v2 one.
    let token = body["access_token"].as_str().unwrap();
    let resp = start_subscription(&sim, TENANT_A, token, "Audit.General").await;
    assert_eq!(resp.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn revoked_consent_gives_aadsts700016_and_restore_fixes_it() {
    let sim = sim_with_tenants().await;
    sim.revoke_consent(TENANT_A);
    let resp = token_v2_response(&sim, TENANT_A, SECRET).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(body["error_codes"], json!([700016]));
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS700016: "));
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{field} present: {body}");
    }
    sim.restore_consent(TENANT_A);
    let resp = token_v2_response(&sim, TENANT_A, SECRET).await;
    assert_eq!(resp.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_gives_401_invalid_client() {
    let sim = sim_with_tenants().await;
    let resp = token_v2_response(&sim, TENANT_A, "not-the-secret").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    sim.shutdown().await;
}

#[tokio::test]
async fn token_request_errors_follow_identity_platform_shapes() {
    let sim = sim_with_tenants().await;
    let url = |tenant: &str| format!("{}/{tenant}/oauth2/v2.0/token", sim.login_base());
    let codes = |body: &Value| body["error_codes"].clone();

    // Unknown tenant.
    let resp = client()
        .post(url("00000000-1111-2222-3333-444444444444"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://manage.office.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(codes(&body), json!([90002]));

    // Missing scope.
    let resp = client()
        .post(url(TENANT_A))
        .form(&[("client_id", CLIENT_ID), ("client_secret", SECRET), ("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(codes(&body), json!([70011]));

    // Wrong grant type.
    let resp = client()
        .post(url(TENANT_A))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("grant_type", "password"),
            ("scope", "https://manage.office.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    // The simulator's own manage root is an accepted scope.
    let resp = client()
        .post(url(TENANT_A))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{}/.default", sim.management_base())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn listing_without_subscription_gives_af20022() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    let (start, end) = window_now();
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(af_code(resp).await, "AF20022");
    sim.shutdown().await;
}

#[tokio::test]
async fn start_twice_gives_af20024() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    let resp = start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "contentType": "Audit.Exchange", "status": "enabled", "webhook": null }));
    let resp = start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(af_code(resp).await, "AF20024");
    assert_eq!(sim.subscriptions(TENANT_A), vec!["Audit.Exchange"]);

    let resp = start_subscription(&sim, TENANT_A, &token, "Audit.Bogus").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(af_code(resp).await, "AF20020");

    let resp = client()
        .get(feed(&sim, TENANT_A, "subscriptions/list"))
        .bearer_auth(&token)
        .query(&[("PublisherIdentifier", PUBLISHER)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn windows_of_24_hours_or_more_or_starting_over_7_days_back_give_af20055() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();

    let start = fmt(now - TimeDelta::hours(25));
    let end = fmt(now);
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(af_code(resp).await, "AF20055");

    // Exactly 24 hours: documented as allowed, refused by the live service.
    let day = now.date_naive();
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &(day - TimeDelta::days(1)).to_string(), &day.to_string()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AF20055");
    assert!(body["error"]["message"].as_str().unwrap().contains("24 hours"), "the live error body shape: {body}");
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &fmt(now - TimeDelta::hours(24)), &fmt(now)).await;
    assert_eq!(af_code(resp).await, "AF20055");
    let resp =
        list_content(&sim, TENANT_A, &token, "Audit.Exchange", &fmt(now - TimeDelta::hours(24) + TimeDelta::seconds(1)), &fmt(now)).await;
    assert_eq!(resp.status(), StatusCode::OK, "just under 24 hours is fine");

    // Starting more than 7 days (plus the ~1 hour the live service tolerates) back.
    let start = fmt(now - TimeDelta::days(8));
    let end = fmt(now - TimeDelta::days(8) + TimeDelta::hours(1));
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(af_code(resp).await, "AF20055");
    let start = fmt(now - TimeDelta::days(7) + TimeDelta::minutes(5));
    let end = fmt(now - TimeDelta::days(7) + TimeDelta::hours(1));
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::OK, "just inside 7 days is fine");

    // End before start.
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &end, &start).await;
    assert_eq!(af_code(resp).await, "AF20030");

    // `Z` suffix is rejected (stricter than the possibly-lenient real service).
    let start = format!("{}Z", fmt(now - TimeDelta::hours(1)));
    let end = format!("{}Z", fmt(now));
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(af_code(resp).await, "AF20002");

    // The minute format is fine.
    let start = (now - TimeDelta::hours(2)).format("%Y-%m-%dT%H:%M").to_string();
    let end = now.format("%Y-%m-%dT%H:%M").to_string();
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn paging_returns_next_page_uri_and_the_follow_up_page_works() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    sim.set_page_size(2);
    let mut added = Vec::new();
    for i in 0..5 {
        added.push(sim.add_records(TENANT_A, "Audit.Exchange", vec![exchange_record(&format!("00000000-0000-0000-0000-00000000000{i}"))]));
    }
    // Another tenant's and another content type's blobs never show up.
    sim.add_records(TENANT_B, "Audit.Exchange", vec![exchange_record("b")]);
    sim.add_records(TENANT_A, "Audit.General", vec![exchange_record("g")]);

    let (start, end) = window_now();
    let mut resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        assert_eq!(resp.status(), StatusCode::OK);
        pages += 1;
        let next = resp.headers().get("NextPageUri").map(|v| v.to_str().unwrap().to_owned());
        let items: Vec<Value> = resp.json().await.unwrap();
        for item in &items {
            assert_eq!(item["contentType"], "Audit.Exchange");
            let created = item["contentCreated"].as_str().unwrap();
            assert!(created.ends_with('Z') && created.contains('.'), "{created}");
            assert!(item["contentExpiration"].as_str().unwrap().ends_with('Z'));
            let id = item["contentId"].as_str().unwrap();
            assert!(id.contains('$'));
            assert!(item["contentUri"].as_str().unwrap().ends_with(id));
            seen.push(id.to_owned());
        }
        let Some(next) = next else { break };
        assert!(next.contains("/api/v1/"), "{next}");
        assert!(next.contains("nextPage="), "{next}");
        assert!(!next.contains("PublisherIdentifier"), "{next}");
        resp = client().get(format!("{next}&PublisherIdentifier={PUBLISHER}")).bearer_auth(&token).send().await.unwrap();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, added);

    // A bogus nextPage token is rejected.
    let resp = client()
        .get(feed(&sim, TENANT_A, "subscriptions/content"))
        .bearer_auth(&token)
        .query(&[
            ("contentType", "Audit.Exchange"),
            ("startTime", start.as_str()),
            ("endTime", end.as_str()),
            ("nextPage", "2026010500R000000000bogus"),
            ("PublisherIdentifier", PUBLISHER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(af_code(resp).await, "AF20031");

    // Every API request of this test carried PublisherIdentifier.
    assert_eq!(sim.missing_publisher_identifier_count(), 0);
    assert!(sim.request_log().iter().filter(|r| r.path.starts_with("/manage/")).all(|r| r.has_publisher_identifier()));
    sim.shutdown().await;
}

#[tokio::test]
async fn blob_fetch_returns_records_and_raw_blob_returns_verbatim_body() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    let record = exchange_record("8d3c1f0a-5b62-4e8c-9a1d-3f7e2b6c4d10");
    let id = sim.add_records(TENANT_A, "Audit.Exchange", vec![record.clone()]);
    let raw_id = sim.add_raw_blob(TENANT_A, "Audit.Exchange", "[{\"Id\": broken");

    let (start, end) = window_now();
    let items: Vec<Value> = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await.json().await.unwrap();
    assert_eq!(items.len(), 2);
    let uri = items[0]["contentUri"].as_str().unwrap();
    assert_eq!(items[0]["contentId"], id.as_str());

    // contentUri used verbatim (raw `$`), PublisherIdentifier appended.
    let resp = client().get(uri).bearer_auth(&token).query(&[("PublisherIdentifier", PUBLISHER)]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let records: Value = resp.json().await.unwrap();
    assert_eq!(records, json!([record]));

    // `$` percent-encoded works too.
    let encoded = feed(&sim, TENANT_A, &format!("audit/{}", id.replace('$', "%24")));
    let resp = client().get(format!("{encoded}?PublisherIdentifier={PUBLISHER}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = client()
        .get(items[1]["contentUri"].as_str().unwrap())
        .bearer_auth(&token)
        .query(&[("PublisherIdentifier", PUBLISHER)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(items[1]["contentId"], raw_id.as_str());
    assert_eq!(resp.text().await.unwrap(), "[{\"Id\": broken");
    assert_eq!(sim.blob_fetch_count(), 3);
    let blob_paths: Vec<String> =
        sim.request_log().into_iter().filter(|r| r.path.contains("/activity/feed/audit/")).map(|r| r.path).collect();
    assert!(blob_paths[0].contains('$'), "{blob_paths:?}");
    assert!(blob_paths[1].contains("%24"), "{blob_paths:?}");

    // Unknown blob → 404 AF20050; expired blob (~20 days) → AF20051.
    let resp = client()
        .get(feed(&sim, TENANT_A, "audit/nope$nope"))
        .bearer_auth(&token)
        .query(&[("PublisherIdentifier", PUBLISHER)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(af_code(resp).await, "AF20050");
    let old = sim.add_records_at(TENANT_A, "Audit.Exchange", Utc::now() - TimeDelta::days(21), vec![record]);
    let resp = client()
        .get(feed(&sim, TENANT_A, &format!("audit/{old}")))
        .bearer_auth(&token)
        .query(&[("PublisherIdentifier", PUBLISHER)])
        .send()
        .await
        .unwrap();
    assert_eq!(af_code(resp).await, "AF20051");
    assert_eq!(sim.blob_fetch_count(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_for_tenant_a_is_rejected_on_tenant_b() {
    let sim = sim_with_tenants().await;
    let token_a = token(&sim, TENANT_A).await;
    let resp = start_subscription(&sim, TENANT_B, &token_a, "Audit.Exchange").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(af_code(resp).await, "AF20010");
    assert!(sim.subscriptions(TENANT_B).is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_unknown_or_expired_token_gives_401() {
    let sim = sim_with_tenants().await;
    let url = feed(&sim, TENANT_A, "subscriptions/list");
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client().get(&url).bearer_auth("eyJ.not.issued").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let token = token(&sim, TENANT_A).await;
    let resp = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    sim.expire_tokens();
    let resp = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    sim.shutdown().await;
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    let (start, end) = window_now();

    sim.fail_next(M365Operation::ListContent, M365Failure::Throttle, 1);
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AF429");
    assert!(body["error"]["message"].as_str().unwrap().contains("Method=GetContents"));
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::OK);

    sim.fail_next(M365Operation::Any, M365Failure::ThrottleForbidden, 1);
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(af_code(resp).await, "AF429");

    sim.fail_next(M365Operation::Token, M365Failure::ServerError, 1);
    let resp = token_v2_response(&sim, TENANT_A, SECRET).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let resp = token_v2_response(&sim, TENANT_A, SECRET).await;
    assert_eq!(resp.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_publisher_identifier_is_answered_but_counted() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    let resp = client().get(feed(&sim, TENANT_A, "subscriptions/list")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Lower-case parameter name is accepted (matched case-insensitively).
    let resp = client()
        .get(feed(&sim, TENANT_A, "subscriptions/list"))
        .bearer_auth(&token)
        .query(&[("publisheridentifier", PUBLISHER)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.missing_publisher_identifier_count(), 1);
    let log = sim.request_log();
    let manage: Vec<_> = log.iter().filter(|r| r.path.starts_with("/manage/")).collect();
    assert_eq!(manage.len(), 2);
    assert!(!manage[0].has_publisher_identifier());
    assert!(manage[1].has_publisher_identifier());
    sim.shutdown().await;
}

#[tokio::test]
async fn control_endpoints_drive_the_simulator() {
    let sim = M365Sim::start().await.unwrap();
    let base = sim.base_url();
    let resp = client()
        .post(format!("{base}/_sim/tenants"))
        .json(&json!({ "tenant_id": TENANT_A, "client_id": CLIENT_ID, "client_secret": SECRET }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let resp = client()
        .post(format!("{base}/_sim/tenants/{TENANT_A}/records"))
        .json(&json!({ "content_type": "Audit.Exchange", "records": [exchange_record("x")] }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body["contentId"].as_str().unwrap().contains('$'));
    let resp = client().post(format!("{base}/_sim/tenants/{TENANT_A}/consent")).json(&json!({ "granted": false })).send().await.unwrap();
    assert!(resp.status().is_success());
    let resp = token_v2_response(&sim, TENANT_A, SECRET).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = client()
        .post(format!("{base}/_sim/fail"))
        .json(&json!({ "operation": "token", "failure": "throttle", "times": 1 }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let resp = token_v2_response(&sim, TENANT_A, SECRET).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let requests: Vec<Value> = client().get(format!("{base}/_sim/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["method"], "POST");
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_token_and_api_responses() {
    let sim = sim_with_tenants().await;
    let latency = std::time::Duration::from_millis(150);
    sim.set_latency(latency);
    let started = std::time::Instant::now();
    let token = token(&sim, TENANT_A).await;
    assert!(started.elapsed() >= latency, "token answered after {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let resp = start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    assert!(resp.status().is_success());
    assert!(started.elapsed() >= latency, "API answered after {:?}", started.elapsed());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_blob_older_than_7_days_is_no_longer_listed_but_its_uri_serves_for_about_20_days() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    let created = Utc::now() - TimeDelta::days(7) - TimeDelta::minutes(30);
    let id = sim.add_records_at(TENANT_A, "Audit.Exchange", created, vec![exchange_record("old-1")]);
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();

    // Inside the start-time grace, so the window is accepted, but the blob is not listed.
    let resp =
        list_content(&sim, TENANT_A, &token, "Audit.Exchange", &fmt(created - TimeDelta::minutes(10)), &fmt(created + TimeDelta::hours(1)))
            .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!([]));

    let resp = client()
        .get(feed(&sim, TENANT_A, &format!("audit/{id}")))
        .bearer_auth(&token)
        .query(&[("PublisherIdentifier", PUBLISHER)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let records: Value = resp.json().await.unwrap();
    assert_eq!(records[0]["Id"], "old-1");

    // A listed blob's contentExpiration is ~20 days after contentCreated, as observed live.
    sim.add_records(TENANT_A, "Audit.Exchange", vec![exchange_record("new-1")]);
    let (start, end) = window_now();
    let listed: Value = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await.json().await.unwrap();
    let created: chrono::DateTime<Utc> = listed[0]["contentCreated"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<Utc> = listed[0]["contentExpiration"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - created, TimeDelta::days(20));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_start_response_spells_sharepoint_as_the_live_service_does() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    let resp = start_subscription(&sim, TENANT_A, &token, "Audit.SharePoint").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["contentType"], "Audit.Sharepoint");
    // Other content types, and the subscription list, keep the documented spelling.
    let body: Value = start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await.json().await.unwrap();
    assert_eq!(body["contentType"], "Audit.Exchange");
    assert_eq!(sim.subscriptions(TENANT_A), vec!["Audit.Exchange", "Audit.SharePoint"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn disabled_after_start_answers_af20023_for_the_next_n_listings_after_each_start() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    let (start, end) = window_now();
    sim.set_disabled_after_start(2);
    assert_eq!(start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await.status(), StatusCode::OK);
    for _ in 0..2 {
        let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(af_code(resp).await, "AF20023");
    }
    assert_eq!(list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await.status(), StatusCode::OK);

    // The control endpoint sets the same switch; 0 turns it off.
    let resp =
        client().post(format!("{}/_sim/disabled-after-start", sim.base_url())).json(&json!({ "list_calls": 0 })).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(start_subscription(&sim, TENANT_A, &token, "Audit.General").await.status(), StatusCode::OK);
    assert_eq!(list_content(&sim, TENANT_A, &token, "Audit.General", &start, &end).await.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn throttling_can_carry_a_fractional_retry_after_or_none() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await;
    let (start, end) = window_now();

    sim.fail_next(M365Operation::ListContent, "throttle_fractional".parse().unwrap(), 1);
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "0.249");
    assert_eq!(af_code(resp).await, "AF429");

    sim.fail_next(M365Operation::ListContent, M365Failure::ThrottleWithoutRetryAfter, 1);
    let resp = list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(af_code(resp).await, "AF429");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_subscription_an_admin_keeps_disabled_lists_as_disabled_and_refuses_starts_until_released() {
    let sim = sim_with_tenants().await;
    let token = token(&sim, TENANT_A).await;
    let (start, end) = window_now();
    assert_eq!(start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await.status(), StatusCode::OK);
    let resp = client()
        .post(format!("{}/_sim/tenants/{TENANT_A}/subscriptions/Audit.Exchange/admin-disabled", sim.base_url()))
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.subscription(TENANT_A, "Audit.Exchange").unwrap()["status"], "disabled");
    assert_eq!(af_code(list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await).await, "AF20023");
    assert_eq!(af_code(start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await).await, "AF20023");

    assert!(sim.hold_subscription_disabled(TENANT_A, "Audit.Exchange", false));
    assert_eq!(start_subscription(&sim, TENANT_A, &token, "Audit.Exchange").await.status(), StatusCode::OK);
    assert_eq!(list_content(&sim, TENANT_A, &token, "Audit.Exchange", &start, &end).await.status(), StatusCode::OK);
    assert!(!sim.hold_subscription_disabled("0e1f2c8a-0000-4000-8000-000000000000", "Audit.Exchange", true), "unknown tenant");
    sim.shutdown().await;
}
