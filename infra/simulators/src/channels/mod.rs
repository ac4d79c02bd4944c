//! A simulator of the channels Vigil posts alert messages to, on one server built on the
//! shared [`kit`](crate::kit): Microsoft Teams Workflows webhooks ([`teams`]), Slack incoming
//! webhooks ([`slack`]) and a Standard Webhooks receiver ([`receiver`]). Each checks what the
//! real service checks (the URL's credential, the body's shape and limits), records what it
//! received so tests can read the card, the blocks and the signature back, and fails on demand.
//!
//! Routes (on `127.0.0.1` and a random port):
//! * `POST /powerautomate/automations/direct/workflows/{id}/triggers/manual/paths/invoke?api-version=1&sp=…&sv=1.0&sig=…`
//!   → `202` (see [`teams`]);
//! * `POST /services/{team}/{bot}/{secret}` → `200 ok` (see [`slack`]);
//! * `POST /hooks/{id}` → `200` (see [`receiver`]);
//! * control, without authentication: the kit's `POST /_sim/fail` (operations `teams_post`,
//!   `slack_post`, `webhook_post`, `any`), `POST /_sim/reset`, `GET /_sim/requests`;
//!   `POST /_sim/teams/flows`, `POST /_sim/slack/webhooks`, `POST /_sim/hooks {"secrets": […]}`
//!   → `{"url"}`; `POST /_sim/revoke {"url"}`; `POST /_sim/hooks/secrets {"url", "secrets"}`;
//!   `GET /_sim/received?url=` → `{"messages": [{"headers", "body", "raw"}]}`.
//!
//! Injected failures: `status` answers without recording; `after_commit` records, then
//! answers the status; `hang_after_commit` records, then holds the answer (a lost response);
//! `throttle` answers `429` with `Retry-After`.

pub mod receiver;
pub mod slack;
pub mod teams;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::kit::control::{control_error, control_ok, requests_response};
use crate::kit::{FailureMode, Kit, Operation, SimServer, parse_fail_request};

/// The largest body the server reads.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An operation failures can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelOperation {
    TeamsPost,
    SlackPost,
    WebhookPost,
    Any,
}

impl Operation for ChannelOperation {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "teams_post" => Self::TeamsPost,
            "slack_post" => Self::SlackPost,
            "webhook_post" => Self::WebhookPost,
            "any" => Self::Any,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::TeamsPost => "teams_post",
            Self::SlackPost => "slack_post",
            Self::WebhookPost => "webhook_post",
            Self::Any => "any",
        }
    }
    fn is_any(self) -> bool {
        self == Self::Any
    }
}

/// One message a channel took.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Request headers (names lowercase).
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (Null when it was not JSON).
    pub body: Value,
    /// The body's exact bytes.
    pub raw: Vec<u8>,
}

impl Received {
    fn to_json(&self) -> Value {
        json!({"headers": self.headers, "body": self.body, "raw": String::from_utf8_lossy(&self.raw)})
    }
}

/// What one channel address is and what it took.
#[derive(Debug, Default)]
pub(crate) struct Endpoint {
    pub(crate) revoked: bool,
    /// Signing secrets a webhook receiver accepts.
    pub(crate) secrets: Vec<String>,
    /// Messages shown (a webhook receiver shows each `webhook-id` once).
    pub(crate) shown: Vec<Received>,
    /// Every accepted request, duplicates included.
    pub(crate) attempts: usize,
}

/// The simulator's state.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) kit: Kit<ChannelOperation>,
    /// Endpoints by their path (`/hooks/3`, `/services/T/B/s`, `/powerautomate/…/workflows/{id}`).
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
    next: Mutex<u64>,
    base: Mutex<String>,
}

impl Shared {
    pub(crate) fn endpoints(&self) -> MutexGuard<'_, BTreeMap<String, Endpoint>> {
        self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn next_id(&self) -> u64 {
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *next += 1;
        *next
    }
    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
    fn token(&self) -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).unwrap_or_default();
        hex::encode(bytes)
    }
}

/// Entry point: `ChannelsSim::start().await`.
pub struct ChannelsSim;

impl ChannelsSim {
    /// Binds `127.0.0.1:0` and serves until the last clone of the handle is dropped.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start() -> std::io::Result<ChannelsSimHandle> {
        let shared = Arc::new(Shared::default());
        let app = router(shared.clone());
        let server = SimServer::start("channels", app).await?;
        *shared.base.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = server.base_url();
        Ok(ChannelsSimHandle { shared, server })
    }
}

/// A running channels simulator.
#[derive(Clone)]
pub struct ChannelsSimHandle {
    shared: Arc<Shared>,
    server: SimServer,
}

impl std::fmt::Debug for ChannelsSimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelsSimHandle").field("base", &self.server.base_url()).finish_non_exhaustive()
    }
}

impl ChannelsSimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
    /// Stops the server (gracefully).
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
    /// A new Teams Workflows flow; its trigger URL.
    pub fn teams_flow(&self) -> String {
        teams::create_flow(&self.shared)
    }
    /// A new Slack incoming webhook; its URL.
    pub fn slack_webhook(&self) -> String {
        slack::create_webhook(&self.shared)
    }
    /// A new signed-webhook endpoint accepting `secrets` (`whsec_…`); its URL.
    pub fn webhook_endpoint(&self, secrets: &[&str]) -> String {
        receiver::create_endpoint(&self.shared, secrets.iter().map(|s| (*s).to_owned()).collect())
    }
    /// Replaces the secrets an endpoint accepts.
    pub fn set_endpoint_secrets(&self, url: &str, secrets: &[&str]) {
        if let Some(endpoint) = self.shared.endpoints().get_mut(&path_of(url)) {
            endpoint.secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
        }
    }
    /// Revokes (deletes) the channel at `url`.
    pub fn revoke(&self, url: &str) {
        if let Some(endpoint) = self.shared.endpoints().get_mut(&path_of(url)) {
            endpoint.revoked = true;
        }
    }
    /// What the channel at `url` shows, oldest first.
    pub fn received(&self, url: &str) -> Vec<Received> {
        self.shared.endpoints().get(&path_of(url)).map(|e| e.shown.clone()).unwrap_or_default()
    }
    /// How many requests the channel at `url` accepted (duplicates included).
    pub fn attempts(&self, url: &str) -> usize {
        self.shared.endpoints().get(&path_of(url)).map_or(0, |e| e.attempts)
    }
    /// Arms a failure for the next `times` requests of `operation`.
    pub fn fail(&self, operation: ChannelOperation, mode: FailureMode, times: u32) {
        self.shared.kit.faults.arm(operation, mode, times);
    }
    /// Moves the simulator's clock (the receiver's timestamp tolerance is checked against it).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.kit.clock.advance(by);
    }
}

/// The path part of a channel URL (the key of its endpoint).
fn path_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => parsed.path().to_owned(),
        Err(_) => url.to_owned(),
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/fail", post(control_fail))
        .route("/_sim/reset", post(control_reset))
        .route("/_sim/requests", get(|State(s): State<Arc<Shared>>| async move { requests_response(&s.kit.log) }))
        .route("/_sim/teams/flows", post(|State(s): State<Arc<Shared>>| async move { control_ok(&json!({"url": teams::create_flow(&s)})) }))
        .route(
            "/_sim/slack/webhooks",
            post(|State(s): State<Arc<Shared>>| async move { control_ok(&json!({"url": slack::create_webhook(&s)})) }),
        )
        .route("/_sim/hooks", post(control_create_hook))
        .route("/_sim/hooks/secrets", post(control_hook_secrets))
        .route("/_sim/revoke", post(control_revoke))
        .route("/_sim/received", get(control_received))
        .fallback(serve)
        .with_state(shared)
}

async fn control_fail(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match parse_fail_request::<ChannelOperation>(&value) {
        Ok(request) => {
            shared.kit.faults.arm(request.operation, request.mode, request.times);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => control_error(&error),
    }
}

async fn control_reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.kit.reset();
    shared.endpoints().clear();
    StatusCode::NO_CONTENT.into_response()
}

fn secrets_of(body: &Value) -> Vec<String> {
    body.get("secrets")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

async fn control_create_hook(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    control_ok(&json!({"url": receiver::create_endpoint(&shared, secrets_of(&value))}))
}

async fn control_hook_secrets(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(url) = value.get("url").and_then(Value::as_str) else { return control_error("\"url\" is required") };
    match shared.endpoints().get_mut(&path_of(url)) {
        Some(endpoint) => {
            endpoint.secrets = secrets_of(&value);
            StatusCode::NO_CONTENT.into_response()
        }
        None => control_error("no such endpoint"),
    }
}

async fn control_revoke(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(url) = value.get("url").and_then(Value::as_str) else { return control_error("\"url\" is required") };
    match shared.endpoints().get_mut(&path_of(url)) {
        Some(endpoint) => {
            endpoint.revoked = true;
            StatusCode::NO_CONTENT.into_response()
        }
        None => control_error("no such endpoint"),
    }
}

async fn control_received(State(shared): State<Arc<Shared>>, Query(query): Query<BTreeMap<String, String>>) -> Response {
    let Some(url) = query.get("url") else { return control_error("\"url\" is required") };
    let endpoints = shared.endpoints();
    let Some(endpoint) = endpoints.get(&path_of(url)) else { return control_error("no such endpoint") };
    let messages: Vec<Value> = endpoint.shown.iter().map(Received::to_json).collect();
    control_ok(&json!({"messages": messages, "attempts": endpoint.attempts}))
}

/// A request as a channel handler sees it.
pub(crate) struct ChannelRequest {
    pub(crate) uri: Uri,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Bytes,
}

/// What a channel handler decided.
pub(crate) enum Verdict {
    /// Refused: nothing recorded.
    Refuse(Response),
    /// Taken: record it under the endpoint (unless `duplicate`) and answer `response`.
    Take { endpoint: String, received: Received, duplicate: bool, response: Response },
}

async fn serve(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > MAX_BODY_BYTES {
        return (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity too large").into_response();
    }
    let path = uri.path().to_owned();
    let operation = if path.starts_with("/powerautomate/") {
        ChannelOperation::TeamsPost
    } else if path.starts_with("/services/") {
        ChannelOperation::SlackPost
    } else if path.starts_with("/hooks/") {
        ChannelOperation::WebhookPost
    } else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    shared.kit.log.record(method.as_str(), &path, shared.kit.clock.now(), operation.name());
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response();
    }
    match shared.kit.faults.peek(operation) {
        Some(FailureMode::Status(code)) => {
            shared.kit.faults.consume(operation);
            return (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "injected failure").into_response();
        }
        Some(FailureMode::Throttle { retry_after }) => {
            shared.kit.faults.consume(operation);
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "rate_limited").into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        Some(FailureMode::Latency(ms)) => {
            shared.kit.faults.consume(operation);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        _ => {}
    }
    let request = ChannelRequest {
        uri,
        headers: headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_owned())).collect(),
        body,
    };
    let verdict = match operation {
        ChannelOperation::TeamsPost => teams::handle(&shared, &request),
        ChannelOperation::SlackPost => slack::handle(&shared, &request),
        _ => receiver::handle(&shared, &request),
    };
    let (endpoint, received, duplicate, response) = match verdict {
        Verdict::Refuse(response) => return response,
        Verdict::Take { endpoint, received, duplicate, response } => (endpoint, received, duplicate, response),
    };
    {
        let mut endpoints = shared.endpoints();
        if let Some(taken) = endpoints.get_mut(&endpoint) {
            taken.attempts += 1;
            if !duplicate {
                taken.shown.push(received);
            }
        }
    }
    match shared.kit.faults.peek(operation) {
        Some(FailureMode::AfterCommit(code)) => {
            shared.kit.faults.consume(operation);
            (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "injected failure after commit").into_response()
        }
        Some(FailureMode::HangAfterCommit(seconds)) => {
            shared.kit.faults.consume(operation);
            tokio::time::sleep(Duration::from_secs(u64::from(seconds))).await;
            response
        }
        _ => response,
    }
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_owned()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

impl Shared {
    /// Registers an endpoint at `path`.
    pub(crate) fn add_endpoint(&self, path: String, secrets: Vec<String>) -> String {
        self.endpoints().insert(path.clone(), Endpoint { secrets, ..Endpoint::default() });
        path
    }
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base())
    }
}
