//! The config API's size limits (issue 8): a body over its route's size limit is a 413 problem,
//! a value over its field's limit a 422 problem naming the field; and an alert triaged again and again keeps answering 200 with its older entries counted as
//! dropped, never growing past what DynamoDB can store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Api, TENANT};
use vigil::ids::MspId;
use vigil::limits;
use vigil::ports::{SecretName, SecretStore};

mod support;

/// The API with acme's tenant registered.
async fn api() -> Api {
    let api = support::api().await;
    let created = api.send("POST", "/v1/tenants", json!({"tenant_id": TENANT, "name": "Contoso", "domains": ["contoso.com"]})).await;
    assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.2);
    api
}

/// A 413 problem: the body is over the route's size limit.
fn assert_too_large(result: &(StatusCode, String, Value)) {
    assert_eq!(result.0, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", result.2);
    assert_eq!(result.1, "application/problem+json");
}

/// A 422 problem whose detail names the field.
fn assert_refused(result: &(StatusCode, String, Value), detail: &str) {
    assert_eq!(result.0, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", result.2);
    assert_eq!(result.1, "application/problem+json");
    assert!(result.2["detail"].as_str().unwrap().contains(detail), "{:?} should name {detail:?}", result.2["detail"]);
}

#[tokio::test]
async fn an_oversized_client_secret_is_refused_and_nothing_is_stored() {
    let api = api().await;
    let path = format!("/v1/tenants/{TENANT}/m365-credentials");
    assert_too_large(&api.send("PUT", &path, json!({"client_id": "app", "client_secret": "s".repeat(1 << 20)})).await);
    let long = api.send("PUT", &path, json!({"client_id": "app", "client_secret": "s".repeat(limits::CLIENT_SECRET_CHARS + 1)})).await;
    assert_refused(&long, "client_secret: at most 1024 characters");
    let tenant_id = vigil::ids::TenantId::parse(TENANT).unwrap();
    assert_eq!(api.secrets.get_secret(&SecretName::m365_app(&MspId::parse("acme").unwrap(), &tenant_id)).await.unwrap(), None);
    let fine = api.send("PUT", &path, json!({"client_id": "app", "client_secret": "s".repeat(limits::CLIENT_SECRET_CHARS)})).await;
    assert_eq!(fine.0, StatusCode::NO_CONTENT, "{:?}", fine.2);
}

#[tokio::test]
async fn ninety_long_comment_patches_keep_answering_200_and_show_what_was_dropped() {
    let api = api().await;
    let alert = vigil::contract::sample_alert(chrono::Utc::now());
    let hits = vigil::alert::AlertHits::of_records(alert.clone(), vec![(vigil::ids::RecordId::parse("r1").unwrap(), chrono::Utc::now())]);
    api.state.admin.alerts.record_hits(&hits, chrono::Utc::now()).await.unwrap();
    let path = format!("/v1/alerts/{}", alert.id);
    let mut last = Value::Null;
    for n in 0..90 {
        let comment = format!("{n:02} {}", "long triage note ".repeat(235));
        assert!(comment.chars().count() <= limits::COMMENT_CHARS);
        let response = api.send("PATCH", &path, json!({"comment": comment})).await;
        assert_eq!(response.0, StatusCode::OK, "PATCH {n}: {:?}", response.2);
        last = response.2;
    }
    let triage = &last["triage"];
    let kept = triage["comments"].as_array().unwrap().len();
    assert!((8..90).contains(&kept), "{kept}");
    assert_eq!(triage["comments_dropped"].as_u64().unwrap(), 90 - kept as u64);
    assert!(triage["comments"][kept - 1]["text"].as_str().unwrap().starts_with("89 "), "the newest comment stays");
    assert_eq!(triage["history"].as_array().unwrap().len(), limits::TRIAGE_HISTORY_KEPT);
    assert_eq!(triage["history_dropped"], 90 - limits::TRIAGE_HISTORY_KEPT);
    let stored = api.send("GET", &path, Value::Null).await;
    assert!(stored.2.to_string().len() < 100 * 1024, "{} bytes", stored.2.to_string().len());
    let too_long = api.send("PATCH", &path, json!({"comment": "c".repeat(limits::COMMENT_CHARS + 1)})).await;
    assert_refused(&too_long, "comment: at most 4000 characters");
}

#[tokio::test]
async fn a_huge_suppression_reason_is_refused_naming_reason() {
    let api = api().await;
    let huge = json!({"tenant_id": TENANT, "user": "svc@contoso.com", "reason": "because ".repeat(100_000)});
    assert_too_large(&api.send("POST", "/v1/suppressions", huge).await);
    let rule = json!({"tenant_id": TENANT, "user": "svc@contoso.com", "reason": "r".repeat(limits::SUPPRESSION_REASON_CHARS + 1)});
    assert_refused(&api.send("POST", "/v1/suppressions", rule).await, "reason: at most 1000 characters");
    let values: Vec<String> = (0..1200).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
    let wide = json!({"tenant_id": TENANT, "reason": "scanners", "conditions": {"field": "ClientIP", "op": "ip_in_cidr", "value": values}});
    assert_refused(&api.send("POST", "/v1/suppressions", wide).await, "conditions");
    let fine = json!({"tenant_id": TENANT, "user": "svc@contoso.com", "reason": "r".repeat(limits::SUPPRESSION_REASON_CHARS)});
    assert_eq!(api.send("POST", "/v1/suppressions", fine).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn a_policy_context_of_100000_domains_is_refused_naming_domains() {
    let api = api().await;
    let path = format!("/v1/tenants/{TENANT}/policy-context");
    let domains: Vec<String> = (0..100_000).map(|i| format!("d{i}.io")).collect();
    assert_too_large(&api.send("PUT", &path, json!({"domains": domains, "break_glass_accounts": []})).await);
    let domains: Vec<String> = (0..=limits::DOMAINS_MAX).map(|i| format!("d{i}.io")).collect();
    assert_refused(&api.send("PUT", &path, json!({"domains": domains, "break_glass_accounts": []})).await, "domains: at most 500 entries");
    let accounts: Vec<String> = (0..=limits::BREAK_GLASS_ACCOUNTS_MAX).map(|i| format!("bg{i}@contoso.com")).collect();
    let context = json!({"domains": ["contoso.com"], "break_glass_accounts": accounts});
    assert_refused(&api.send("PUT", &path, context).await, "break_glass_accounts: at most 50 entries");
    let fine = api.send("PUT", &path, json!({"domains": ["contoso.com"], "break_glass_accounts": ["bg@contoso.com"]})).await;
    assert_eq!(fine.0, StatusCode::OK, "{:?}", fine.2);
}

#[tokio::test]
async fn a_policy_over_a_limit_is_refused_naming_the_field() {
    let api = api().await;
    let policy = json!({"id": "custom.long", "name": "n".repeat(limits::POLICY_NAME_CHARS + 1), "category": "ThreatManagement",
                        "severity": "Low", "activity": {"operations": ["UserLoggedIn"]}});
    assert_refused(&api.send("POST", "/v1/policies", policy).await, "name: at most 256 characters");
}

#[tokio::test]
async fn destination_keys_over_their_limit_are_refused_naming_the_field_and_nothing_is_stored() {
    let api = api().await;
    let mut body = support::connectwise_destination();
    body["credentials"]["public_key"] = json!("p".repeat(limits::CREDENTIAL_FIELD_CHARS + 1));
    assert_refused(&api.send("PUT", "/v1/destinations/psa", body).await, "credentials.public_key: at most 256 characters");
    let psa = vigil::ids::DestinationId::parse("psa").unwrap();
    assert_eq!(api.secrets.get_secret(&SecretName::destination(&MspId::parse("acme").unwrap(), &psa)).await.unwrap(), None);
    let mut name = support::connectwise_destination();
    name["name"] = json!("n".repeat(limits::DESTINATION_NAME_CHARS + 1));
    assert_refused(&api.send("PUT", "/v1/destinations/psa", name).await, "name: at most 100 characters");
}

#[tokio::test]
async fn an_msps_fifty_first_destination_is_refused_naming_destinations() {
    let api = api().await;
    for n in 0..limits::DESTINATIONS_MAX {
        let created = api.send("PUT", &format!("/v1/destinations/d{n}"), support::connectwise_destination()).await;
        assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.2);
    }
    assert_refused(
        &api.send("PUT", "/v1/destinations/one-more", support::connectwise_destination()).await,
        "destinations: at most 50 entries",
    );
}

#[tokio::test]
async fn a_company_link_over_its_limit_is_refused_naming_company() {
    let api = api().await;
    api.send("PUT", "/v1/destinations/psa", support::connectwise_destination()).await;
    let path = format!("/v1/tenants/{TENANT}/destinations/psa/company");
    let long = json!({"company": "1".repeat(limits::PSA_REFERENCE_CHARS + 1)});
    assert_refused(&api.send("PUT", &path, long).await, "company: at most 64 characters");
}
