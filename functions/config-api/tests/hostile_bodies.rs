//! Hostile request bodies: deep nesting, oversized bodies, wrong JSON types, unknown ids — each a
//! clear 4xx problem, never a 5xx or a dropped connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{TENANT, api, assert_problem};
use vigil::random_json::RandomJson;

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[tokio::test]
async fn json_nested_ten_thousand_deep_is_a_400_problem_on_every_json_route() {
    let api = api().await;
    let token = api.acme_token.clone();
    let deep = nested(10_000);
    for (method, path, body) in [
        ("POST", "/v1/policies/test".to_owned(), format!("{{\"policy\": {deep}, \"records\": []}}")),
        ("PUT", format!("/v1/tenants/{TENANT}/m365-credentials"), format!("{{\"client_id\": \"a\", \"client_secret\": {deep}}}")),
        ("POST", "/v1/policies".to_owned(), format!("{{\"conditions\": {deep}}}")),
        ("POST", "/v1/policies".to_owned(), deep.clone()),
        ("POST", "/v1/policies/test".to_owned(), format!("{{\"policy\": {}, \"records\": []}}", nested_objects(10_000))),
        ("POST", "/v1/policies/test".to_owned(), format!("{{\"policy\": {{}}, \"records\": [{}]}}", nested_objects(10_000))),
        ("PUT", format!("/v1/tenants/{TENANT}/m365-credentials"), nested_objects(10_000)),
        ("POST", "/v1/suppressions".to_owned(), format!("{{\"reason\": \"x\", \"conditions\": {}}}", nested_objects(10_000))),
        ("PUT", "/v1/destinations/psa".to_owned(), format!("{{\"name\": \"x\", \"settings\": {}}}", nested_objects(10_000))),
        ("PUT", "/v1/destinations/psa".to_owned(), format!("{{\"name\": \"x\", \"routing\": {{\"tenants\": {deep}}}}}")),
        ("PUT", format!("/v1/tenants/{TENANT}/destinations/psa/company"), format!("{{\"company\": {deep}}}")),
    ] {
        let result = api.call(method, &path, Some(&token), Some(&body)).await;
        assert!(result.0.is_client_error(), "{method} {path}: {result:?}");
        assert_eq!(result.1, "application/problem+json");
    }
}

#[tokio::test]
async fn bodies_over_the_route_limit_are_413_problems() {
    let api = api().await;
    let token = api.acme_token.clone();
    let big_secret = format!("{{\"client_id\": \"a\", \"client_secret\": \"{}\"}}", "s".repeat(config_api::DEFAULT_BODY_LIMIT));
    let result = api.call("PUT", &format!("/v1/tenants/{TENANT}/m365-credentials"), Some(&token), Some(&big_secret)).await;
    assert_problem(&result, StatusCode::PAYLOAD_TOO_LARGE);
    let big_policy = format!("{{\"id\": \"custom.x\", \"description\": \"{}\"}}", "d".repeat(config_api::POLICY_BODY_LIMIT));
    assert_problem(&api.call("POST", "/v1/policies", Some(&token), Some(&big_policy)).await, StatusCode::PAYLOAD_TOO_LARGE);
    // The policy test takes sample records, so its limit is higher than the others'.
    let records = format!("{{\"policy\": \"builtin.brute-force\", \"records\": [{}]}}", vec!["{}"; 30_000].join(","));
    assert!(records.len() > config_api::DEFAULT_BODY_LIMIT);
    assert_eq!(
        api.call("POST", "/v1/policies/test", Some(&token), Some(&records)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too many records, but read"
    );
}

#[tokio::test]
async fn a_json_array_where_an_object_is_expected_is_a_422_problem_and_changes_nothing() {
    let api = api().await;
    let token = api.acme_token.clone();
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso", "domains": ["contoso.com"]}))).await;
    let result = api.call("PUT", &format!("/v1/tenants/{TENANT}/policy-context"), Some(&token), Some("[]")).await;
    assert_problem(&result, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(result.2["detail"].as_str().unwrap().contains("must be a JSON object"), "{:?}", result.2);
    assert_eq!(api.acme("GET", &format!("/v1/tenants/{TENANT}"), None).await.2["domains"], json!(["contoso.com"]), "nothing was cleared");
    let mut destination = support::connectwise_destination();
    destination["routing"]["priorities"] = json!([1, 2, 3, 4]);
    let nested = api.acme("PUT", "/v1/destinations/psa", Some(destination)).await;
    assert_problem(&nested, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nested.2["detail"].as_str().unwrap().starts_with("routing.priorities: "), "{:?}", nested.2);
    assert_problem(&api.acme("GET", "/v1/destinations/psa", None).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn testing_an_unknown_policy_id_is_a_404_problem() {
    let api = api().await;
    let unknown = api.acme("POST", "/v1/policies/test", Some(json!({"policy": "builtin.no-such-policy", "records": []}))).await;
    assert_problem(&unknown, StatusCode::NOT_FOUND);
    let unknown_builtin = json!({"id": "builtin.no-such-policy", "name": "x", "category": "ThreatManagement", "severity": "Low",
        "activity": {"record_types": [1]}});
    let defined = api.acme("POST", "/v1/policies/test", Some(json!({"policy": unknown_builtin, "records": []}))).await;
    assert!(matches!(defined.0, StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY), "{defined:?}");
    let known = api.acme("POST", "/v1/policies/test", Some(json!({"policy": "builtin.brute-force", "records": []}))).await;
    assert_eq!(known.0, StatusCode::OK, "{known:?}");
    let suppression = api.acme("POST", "/v1/suppressions", Some(json!({"policy_id": "custom.never-made", "reason": "noise"}))).await;
    assert_problem(&suppression, StatusCode::NOT_FOUND);
}

/// Every route that reads a body, with ids that exist, so random bodies reach the services.
fn routes_with_bodies(alert_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("POST", "/v1/tenants".into()),
        ("PUT", format!("/v1/tenants/{TENANT}/m365-credentials")),
        ("PUT", format!("/v1/tenants/{TENANT}/connectwise-company")),
        ("PUT", format!("/v1/tenants/{TENANT}/destinations/psa/company")),
        ("PUT", "/v1/destinations/fuzzed".into()),
        ("PUT", "/v1/destinations/psa".into()),
        ("POST", "/v1/destinations/psa/test".into()),
        ("PUT", format!("/v1/tenants/{TENANT}/streams")),
        ("PUT", format!("/v1/tenants/{TENANT}/policy-context")),
        ("PUT", format!("/v1/tenants/{TENANT}/policies/builtin.brute-force")),
        ("PUT", "/v1/msp".into()),
        ("PUT", "/v1/psa/connectwise".into()),
        ("PATCH", format!("/v1/alerts/{alert_id}")),
        ("POST", format!("/v1/alerts/{alert_id}/suppress")),
        ("POST", "/v1/policies".into()),
        ("PUT", "/v1/policies/custom.fuzzed".into()),
        ("PUT", "/v1/policies/builtin.brute-force".into()),
        ("POST", "/v1/policies/test".into()),
        ("POST", format!("/v1/tenants/{TENANT}/replays")),
        ("POST", "/v1/suppressions".into()),
        ("GET", "/v1/alerts".into()),
        ("GET", format!("/v1/tenants/{TENANT}/streams")),
        ("GET", "/v1/destinations/psa/companies".into()),
        ("DELETE", "/v1/policies/custom.fuzzed".into()),
        ("DELETE", "/v1/destinations/fuzzed".into()),
    ]
}

#[tokio::test]
async fn property_random_bodies_never_produce_a_5xx_on_any_route() {
    let api = api().await;
    let token = api.acme_token.clone();
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso"}))).await;
    api.acme("PUT", "/v1/destinations/psa", Some(support::connectwise_destination())).await;
    let alert = vigil::contract::sample_alert(chrono::Utc::now());
    api.state.admin.alerts.record_hits(&vigil::alert::AlertHits::new(alert.clone()), chrono::Utc::now()).await.unwrap();
    let cases: u64 = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let mut statuses = std::collections::BTreeMap::new();
    for (method, path) in routes_with_bodies(alert.id.as_str()) {
        for seed in 0..cases {
            let mut random = RandomJson::new(seed ^ (path.len() as u64) << 32);
            let body = random.body();
            let (status, content_type, problem) = api.call_bytes(method, &path, Some(&token), Some(body.clone())).await;
            assert!(
                status.is_success()
                    || (status.is_client_error() && content_type == "application/problem+json" && problem["status"] == status.as_u16()),
                "{method} {path} seed {seed}: {status} {problem}\nbody: {}",
                String::from_utf8_lossy(&body[..body.len().min(2_000)])
            );
            *statuses.entry(status.as_u16()).or_insert(0u32) += 1;
        }
    }
    // The generator must reach past the parser: some bodies are accepted, most refused for a reason.
    assert!(statuses.keys().any(|s| *s < 300), "{statuses:?}");
    assert!(statuses.contains_key(&400) && statuses.contains_key(&422), "{statuses:?}");
    eprintln!("statuses over {cases} cases per route: {statuses:?}");
}
