//! Security end to end on the local stack: what one MSP's work must never leak to another.
//!
//! Two MSPs can register the same customer tenant id (nothing stops them, and an MSP taking over
//! a customer does exactly that). Only the one whose credentials the tenant really lets in may
//! see its audit records — also when both poll from the same warm container, where every cache
//! (tokens, secrets, compiled policies, PSA clients) is shared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use vigil_local::LocalStack;
use vigil_tests::{MspClient, forwarding_record, in_current_window, onboard, poll_and_settle, record_id, start_stack};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
/// The app the tenant consented to (`onboard` registers it in the simulator). Its id is no
/// secret: it appears in every consent URL.
const CONSENTED_APP: &str = "11111111-2222-4333-8444-555555555555";
/// An app of another MSP that this tenant never consented to.
const UNCONSENTED_APP: &str = "99999999-2222-4333-8444-555555555555";
const CONNECTION_PROBLEM: &str = "Tenant connection problem";

/// Creates an MSP and registers `TENANT` with the given Microsoft credentials (not consented in
/// the simulator) and its own ConnectWise company `company_id`.
async fn register_with(stack: &LocalStack, msp_id: &str, client_id: &str, client_secret: &str, company_id: i64) -> MspClient {
    let token = stack.create_msp(msp_id, msp_id).await.unwrap();
    let client = MspClient { http: reqwest::Client::new(), base: stack.api_url.clone(), token: token.expose().to_owned() };
    let ok = |r: (u16, String, Value)| assert!((200..300).contains(&r.0), "{r:?}");
    ok(client.call(reqwest::Method::POST, "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso (claimed)"}))).await);
    ok(client
        .call(
            reqwest::Method::PUT,
            &format!("/v1/tenants/{TENANT}/m365-credentials"),
            Some(json!({"client_id": client_id, "client_secret": client_secret})),
        )
        .await);
    ok(client
        .call(
            reqwest::Method::PUT,
            &format!("/v1/destinations/{}", vigil_tests::CONNECTWISE),
            Some(vigil_tests::connectwise_destination(stack)),
        )
        .await);
    ok(vigil_tests::link_company(&client, TENANT, vigil_tests::CONNECTWISE, &company_id.to_string()).await);
    client
}

/// The alerts of an MSP built from audit records (anything but its own connection problems).
async fn audit_alerts(msp: &MspClient) -> Vec<Value> {
    msp.alerts().await.into_iter().filter(|a| a["policy_name"] != CONNECTION_PROBLEM).collect()
}

fn hits(alerts: &[Value]) -> u64 {
    alerts.iter().map(|a| a["hit_count"].as_u64().unwrap()).sum()
}

/// Tickets the ConnectWise simulator holds for one company.
fn tickets_of_company(stack: &LocalStack, company_id: i64) -> Vec<Value> {
    stack.connectwise.tickets().into_iter().filter(|t| t.body["company"]["id"] == company_id).map(|t| t.body).collect()
}

#[tokio::test]
async fn no_audit_record_of_a_tenant_reaches_an_msp_without_valid_consent_for_it() {
    let stack = start_stack().await;
    // MSP A holds valid consent and polls first: its tokens are now cached in the warm poller.
    let msp_a = onboard(&stack, "msp-a", TENANT, 250).await;
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(10))]);
    poll_and_settle(&stack).await;
    assert_eq!(hits(&audit_alerts(&msp_a).await), 1, "A sees its tenant");

    // MSP B names the same tenant with A's (public) app id and a guessed secret; MSP C with an
    // app the tenant never consented to. Both poll in the same container A polled in.
    let msp_b = register_with(&stack, "msp-b", CONSENTED_APP, "guessed-secret", 260).await;
    let msp_c = register_with(&stack, "msp-c", UNCONSENTED_APP, "c-secret", 270).await;
    // MSP D holds the same valid credentials as A (say, one app shared in a deployment): it
    // must see every record too, so claims and blob markers must be its own, not A's.
    let msp_d = register_with(&stack, "msp-d", CONSENTED_APP, "tenant-app-secret", 280).await;
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(2), in_current_window(20))]);
    poll_and_settle(&stack).await;
    // A second round: a token cached during the first must not help either.
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(3), in_current_window(30))]);
    poll_and_settle(&stack).await;

    assert_eq!(hits(&audit_alerts(&msp_a).await), 3, "A keeps seeing every record, exactly once");
    assert_eq!(hits(&audit_alerts(&msp_d).await), 3, "D, with valid consent of its own, sees every record once: nothing A claimed");
    assert!(tickets_of_company(&stack, 280).iter().any(|t| !t["summary"].as_str().unwrap_or_default().contains(CONNECTION_PROBLEM)));
    for (name, msp, company) in [("B (wrong secret)", &msp_b, 260), ("C (no consent)", &msp_c, 270)] {
        let leaked = audit_alerts(msp).await;
        assert!(leaked.is_empty(), "MSP {name} received alerts built from another MSP's tenant: {leaked:#?}");
        let problems = msp.alerts().await;
        assert!(
            problems.iter().any(|a| a["policy_name"] == CONNECTION_PROBLEM),
            "MSP {name} is told it cannot reach the tenant: {problems:#?}"
        );
        let (status, _, streams) = msp.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/streams"), None).await;
        assert_eq!(status, 200);
        let streams = streams["streams"].as_array().unwrap();
        assert!(streams.iter().all(|s| s["status"] != "healthy"), "MSP {name}'s streams must not turn healthy: {streams:#?}");
        let tickets = tickets_of_company(&stack, company);
        assert!(
            tickets.iter().all(|t| t["summary"].as_str().unwrap_or_default().contains(CONNECTION_PROBLEM)),
            "MSP {name}'s PSA got tickets about the tenant's activity: {tickets:#?}"
        );
    }
    // A's own tickets are untouched by the others.
    assert!(!tickets_of_company(&stack, 250).is_empty());
    stack.shutdown().await;
}

/// Every route that reads a body, with ids that exist.
fn routes_with_bodies(alert_id: &str) -> Vec<(reqwest::Method, String)> {
    use reqwest::Method;
    vec![
        (Method::POST, "/v1/tenants".into()),
        (Method::PUT, format!("/v1/tenants/{TENANT}/m365-credentials")),
        (Method::PUT, format!("/v1/tenants/{TENANT}/destinations/connectwise/company")),
        (Method::PUT, format!("/v1/tenants/{TENANT}/streams")),
        (Method::PUT, format!("/v1/tenants/{TENANT}/policy-context")),
        (Method::PUT, format!("/v1/tenants/{TENANT}/policies/builtin.brute-force")),
        (Method::PUT, "/v1/msp".into()),
        (Method::PUT, "/v1/destinations/fuzzed".into()),
        (Method::PATCH, format!("/v1/alerts/{alert_id}")),
        (Method::POST, format!("/v1/alerts/{alert_id}/suppress")),
        (Method::POST, "/v1/policies".into()),
        (Method::PUT, "/v1/policies/custom.fuzzed".into()),
        (Method::POST, "/v1/policies/test".into()),
        (Method::POST, format!("/v1/tenants/{TENANT}/replays")),
        (Method::POST, "/v1/suppressions".into()),
    ]
}

#[tokio::test]
async fn property_random_bodies_over_http_never_produce_a_5xx_or_a_dropped_connection() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "fuzzed", TENANT, 250).await;
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(10))]);
    poll_and_settle(&stack).await;
    let alert_id = msp.alerts().await[0]["id"].as_str().unwrap().to_owned();
    let cases: u64 = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut statuses = std::collections::BTreeMap::new();
    for (method, path) in routes_with_bodies(&alert_id) {
        for seed in 0..cases {
            let body = vigil::random_json::RandomJson::new(seed.wrapping_add(path.len() as u64 * 7919)).body();
            let response = msp
                .http
                .request(method.clone(), format!("{}{path}", msp.base))
                .bearer_auth(&msp.token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path} seed {seed}: the connection failed: {e}"));
            let status = response.status().as_u16();
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            let text = response.text().await.unwrap();
            assert!(
                status < 300 || ((400..500).contains(&status) && content_type == "application/problem+json"),
                "{method} {path} seed {seed}: {status} {text}\nbody: {}",
                String::from_utf8_lossy(&body[..body.len().min(2_000)])
            );
            *statuses.entry(status).or_insert(0u32) += 1;
        }
    }
    assert!(statuses.keys().any(|s| *s < 300) && statuses.contains_key(&422), "{statuses:?}");
    stack.shutdown().await;
}
