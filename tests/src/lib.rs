//! Helpers for the cross-crate tests: a local stack per test (sharing one moto server when
//! `AWS_ENDPOINT_URL` is set, as `make test` does), an MSP onboarded through the real config
//! API, and audit records shaped like the documented schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use std::time::Duration as StdDuration;
use vigil_local::moto::MotoServer;
use vigil_local::{LocalOptions, LocalStack};

/// Sends the handlers' logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=warn` to see why
/// messages failed); silent otherwise.
pub fn init_logs() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Starts a local stack for one test.
pub async fn start_stack() -> LocalStack {
    init_logs();
    LocalStack::start(LocalOptions::for_tests()).await.expect("local stack starts (is moto installed? run `make tools`)")
}

/// A local stack with the template's function and visibility timeouts instead of the tests'
/// 8 s and 2 s: for a job that must finish in one invocation (a replay recomputes from the
/// start on every attempt, a week's first look-back reports per invocation) and would not on a
/// loaded machine, and that must not be redelivered while it still runs. Retries then take
/// the template's visibility timeout: only for tests that inject no failure.
pub async fn start_stack_with_template_timeouts() -> LocalStack {
    init_logs();
    LocalStack::start(LocalOptions { function_timeout_override: None, visibility_timeout_override: None, ..LocalOptions::for_tests() })
        .await
        .expect("local stack starts (is moto installed? run `make tools`)")
}

/// An AWS SDK configuration on moto: the shared one from `AWS_ENDPOINT_URL`, or a private
/// server kept alive by the returned guard.
pub async fn moto_sdk() -> (aws_config::SdkConfig, Option<MotoServer>) {
    match std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()) {
        Some(endpoint) => (vigil::aws::sdk_config_for_emulator(&endpoint).await, None),
        None => {
            let server = MotoServer::start().await.expect("moto starts (run `make tools`)");
            (vigil::aws::sdk_config_for_emulator(server.endpoint()).await, Some(server))
        }
    }
}

/// A client of the config API as an onboarded MSP.
pub struct MspClient {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl MspClient {
    /// Sends a request and returns (status, content type, JSON body or Null).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, String, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let text = response.text().await.unwrap();
        (status, content_type, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The MSP's alerts.
    pub async fn alerts(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, "/v1/alerts?limit=100", None).await.2["alerts"].as_array().cloned().unwrap_or_default()
    }
}

/// The destination every onboarded MSP has: the ConnectWise simulator, board 7, a priority per
/// severity.
pub const CONNECTWISE: &str = "connectwise";

/// The body of `PUT /v1/destinations/connectwise` for the stack's ConnectWise simulator.
#[must_use]
pub fn connectwise_destination(stack: &LocalStack) -> Value {
    let cw = stack.connectwise.credentials();
    json!({
        "name": "ConnectWise Manage",
        "settings": {"kind": "connectwise", "api_root": stack.connectwise.api_root()},
        "routing": {"default_place": "7", "priorities": {"High": "1", "Medium": "2", "Low": "3", "Informational": "4"}},
        "credentials": {"kind": "connectwise", "company_id": cw.company_id, "public_key": cw.public_key, "private_key": cw.private_key, "client_id": cw.client_id}
    })
}

/// Links a tenant to a company of a destination through the config API.
pub async fn link_company(msp: &MspClient, tenant_id: &str, destination: &str, company: &str) -> (u16, String, Value) {
    msp.call(
        reqwest::Method::PUT,
        &format!("/v1/tenants/{tenant_id}/destinations/{destination}/company"),
        Some(json!({"company": company})),
    )
    .await
}

/// Creates an MSP (operator) and onboards `tenant_id` through the config API: registration,
/// Microsoft credentials (also consented in the simulator), the ConnectWise destination and the
/// tenant's company link in it.
pub async fn onboard(stack: &LocalStack, msp_id: &str, tenant_id: &str, company_id: i64) -> MspClient {
    let token = stack.create_msp(msp_id, "Test MSP").await.unwrap();
    let client = MspClient { http: reqwest::Client::new(), base: stack.api_url.clone(), token: token.expose().to_owned() };
    let ok = |r: (u16, String, Value)| assert!((200..300).contains(&r.0), "{r:?}");
    ok(client
        .call(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(json!({"tenant_id": tenant_id, "name": "Contoso Ltd", "domains": ["contoso.com"]})),
        )
        .await);
    let app_id = "11111111-2222-4333-8444-555555555555";
    stack.m365.add_tenant(tenant_id, app_id, "tenant-app-secret");
    ok(client
        .call(
            reqwest::Method::PUT,
            &format!("/v1/tenants/{tenant_id}/m365-credentials"),
            Some(json!({"client_id": app_id, "client_secret": "tenant-app-secret"})),
        )
        .await);
    ok(client.call(reqwest::Method::PUT, &format!("/v1/destinations/{CONNECTWISE}"), Some(connectwise_destination(stack))).await);
    ok(link_company(&client, tenant_id, CONNECTWISE, &company_id.to_string()).await);
    client
}

/// The start of the current 15-minute window plus `seconds`: events at these times share a window.
#[must_use]
pub fn in_current_window(seconds: i64) -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(Duration::minutes(15)).unwrap() + Duration::seconds(seconds)
}

/// A `New-InboxRule` record forwarding alice's mail, as the Management Activity API delivers it.
#[must_use]
pub fn forwarding_record(tenant_id: &str, id: &str, at: DateTime<Utc>) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "New-InboxRule",
        "OrganizationId": tenant_id, "RecordType": 1, "ResultStatus": "True", "UserKey": "10032001A2B3C4D5", "UserType": 0,
        "Version": 1, "Workload": "Exchange", "ClientIP": "203.0.113.7:51544", "UserId": "alice@contoso.com",
        "ObjectId": "contoso.onmicrosoft.com\\alice\\Forward", "Parameters": [{"Name": "ForwardTo", "Value": "drop@mail-collector.example"}, {"Name": "Name", "Value": "Forward"}]
    })
}

/// Record ids `prefix-0001`… as GUID-like strings.
#[must_use]
pub fn record_id(n: usize) -> String {
    format!("aaaaaaaa-0000-4000-8000-{n:012}")
}

/// Polls (after letting the current second pass, since listing windows have one-second
/// resolution) and waits until the queues are drained.
///
/// The deadline only stops a test that would never settle; it asserts no speed. A first tick
/// over 50 tenants also sends each tenant's licence read and mailbox count, over moto, on a
/// 2-core machine that may be busy with other builds: 90 s was once not enough there.
pub async fn poll_and_settle(stack: &LocalStack) -> vigil::services::poll::PollReport {
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    stack.poll_and_settle(StdDuration::from_secs(300)).await.unwrap()
}

/// Onboards one more tenant of an already onboarded MSP through the config API, as [`onboard`]
/// does (registration as "Customer {company_id}", Microsoft credentials also consented in the
/// simulator, ConnectWise company link); the MSP's ConnectWise destination already exists.
pub async fn onboard_tenant(stack: &LocalStack, msp: &MspClient, tenant_id: &str, company_id: i64) {
    let ok = |r: (u16, String, Value)| assert!((200..300).contains(&r.0), "{r:?}");
    let tenant =
        json!({"tenant_id": tenant_id, "name": format!("Customer {company_id}"), "domains": [format!("customer{company_id}.example")]});
    ok(msp.call(reqwest::Method::POST, "/v1/tenants", Some(tenant)).await);
    let app_id = "11111111-2222-4333-8444-555555555555";
    stack.m365.add_tenant(tenant_id, app_id, "tenant-app-secret");
    ok(msp
        .call(
            reqwest::Method::PUT,
            &format!("/v1/tenants/{tenant_id}/m365-credentials"),
            Some(json!({"client_id": app_id, "client_secret": "tenant-app-secret"})),
        )
        .await);
    ok(link_company(msp, tenant_id, CONNECTWISE, &company_id.to_string()).await);
}

/// A SharePoint `FileAccessed` record of `user` (RecordType 6), which no built-in policy matches.
#[must_use]
pub fn file_accessed_record(tenant_id: &str, id: &str, user: &str, at: DateTime<Utc>) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "FileAccessed",
        "OrganizationId": tenant_id, "RecordType": 6, "UserKey": "i:0h.f|membership|10032001a2b3c4d5@live.com", "UserType": 0,
        "Version": 1, "Workload": "SharePoint", "ClientIP": "203.0.113.77", "UserId": user,
        "ObjectId": format!("https://contoso.sharepoint.com/sites/Finance/Shared Documents/{id}.xlsx"),
        "SiteUrl": "https://contoso.sharepoint.com/sites/Finance/", "SourceFileName": format!("{id}.xlsx")
    })
}

/// The stack's trigger state (threshold windows, unusual-activity baselines) in its state table,
/// as the alert evaluator reads and writes it.
#[must_use]
pub fn trigger_store(stack: &LocalStack) -> vigil::aws::policy_store::DynamoTriggerStore {
    vigil::aws::policy_store::DynamoTriggerStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        &stack.provisioned.table_names["StateTable"],
    )
}

/// Stores `state` as the trigger state of `key` (replacing any), e.g. a week of baseline that
/// would take a week of records to learn.
pub async fn seed_trigger_state(stack: &LocalStack, key: &vigil::ports::TriggerKey, state: &vigil::policy::trigger::TriggerState) {
    use vigil::ports::TriggerStateStore;
    let store = trigger_store(stack);
    let version = store.load_trigger(key).await.unwrap().map_or(0, |(_, version)| version);
    store.save_trigger(key, state, version, Utc::now() + Duration::days(8)).await.unwrap();
}
