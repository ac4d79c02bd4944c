//! A faithful in-process simulator of the ConnectWise Manage (ConnectWise PSA) REST API, for
//! tests and the local stack.
//!
//! It serves, on `127.0.0.1` and a random port:
//!
//! * `GET /login/companyinfo/{company}` — unauthenticated codebase discovery (`null` for an
//!   unknown company, like the real server);
//! * under `/{codebase}/apis/3.0` (the discovery answer says `v4_6_release/`; any `v…` codebase
//!   is accepted, as the real cloud does):
//!   * `POST /service/tickets`, `GET /service/tickets`, `GET /service/tickets/count`,
//!     `GET|PATCH /service/tickets/{id}`;
//!   * `POST|GET /service/tickets/{id}/notes`, `GET /service/tickets/{id}/notes/count`,
//!     `GET /service/tickets/{id}/notes/{noteId}`;
//!   * `GET /service/boards/{id}/statuses` (a fixed status table: 1 `New`, 2 `In Progress`,
//!     99 `>Closed`) and `GET /system/info`;
//! * control endpoints without authentication: `GET /_sim/tickets`, `POST /_sim/fail`,
//!   `POST /_sim/reset`.
//!
//! What the simulator checks, like the real API (see `shared/reference/psa-apis.md` §1):
//! `Authorization: Basic base64("{companyId}+{publicKey}:{privateKey}")` and a `clientId`
//! header on every API request (header names case-insensitive); request bodies against the
//! published OpenAPI component schemas (`Ticket`, `ServiceNote`, …) including the max lengths
//! hidden in descriptions, answering ConnectWise's `400 InvalidObject` shape with per-field
//! `errors`; the `conditions` query language (`=`, `!=`, `<`, `<=`, `>`, `>=`, `contains`,
//! `like` with `*`, `in (…)`, `not`, `and`, `or`, parentheses, nested `a/b` paths, quoted strings,
//! numbers, booleans, `null`, `[dates]`); `page`/`pageSize` paging with a `Link` header and
//! forward-only paging (`pagination-type: forward-only` + `pageId`); `fields` projections and
//! `orderBy`.
//!
//! Like the live API, unknown members in a request body are refused: `400 InvalidObject` with an
//! `InvalidField` error naming the member. A path no route matches answers the server's HTML
//! `404` page (not JSON; an unknown ticket id is still the JSON `NotFound`); an injected 5xx is a
//! server exception `{"code":"ConnectWiseApi","message":"…","errors":null}`; `GET` of one ticket
//! returns the full live shape (`status` with `Sort` and `_info.status_href`, `_info` hrefs).
//!
//! Where the simulator is deliberately stricter than ConnectWise, to catch our own bugs:
//! unknown fields in `conditions` and `orderBy` are rejected, and JSON bodies must be sent as
//! `application/json`.
//!
//! Failures can be injected per operation ([`ConnectWiseSimHandle::fail_next`]): a plain error
//! status before any work, an error status *after* the work was committed (a crash after
//! commit, the case that makes clients create duplicate tickets), or a `429` throttle with
//! `Retry-After: 1`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::openapi_validate::{SchemaSet, Violation, ViolationCode};

/// The codebase the discovery endpoint advertises (with the trailing slash CW uses).
pub const CODEBASE: &str = "v4_6_release/";
/// Path of the API root below the base URL.
pub const API_PATH: &str = "/v4_6_release/apis/3.0";
/// Version of the ConnectWise model the embedded schemas describe.
pub const API_VERSION: &str = "2026.4";

const SCHEMA_JSON: &str = include_str!("../../schemas/connectwise-manage-ticketing-schemas.json");
const FIRST_TICKET_ID: i64 = 1001;
const FIRST_NOTE_ID: i64 = 1;
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 1000;
/// Identifier of the API member the simulator pretends the keys belong to (`_info.updatedBy`).
const API_MEMBER: &str = "VigilSimApi";
/// Board status table: (id, name, closed). Ids not in the table are stored as sent.
const STATUSES: &[(i64, &str, bool)] = &[(1, "New", false), (2, "In Progress", false), (99, ">Closed", true)];
/// `POST`-only ticket fields that ConnectWise accepts but never returns.
const POST_ONLY_TICKET_FIELDS: &[&str] = &["initialDescription", "initialInternalAnalysis", "initialResolution"];
/// Ticket fields a `PATCH` may not change (server-maintained).
const READ_ONLY_TICKET_FIELDS: &[&str] = &["id", "_info", "closedFlag", "closedDate", "closedBy"];

fn schemas() -> Result<&'static SchemaSet, String> {
    static SCHEMAS: OnceLock<Result<SchemaSet, String>> = OnceLock::new();
    SCHEMAS.get_or_init(|| SchemaSet::from_openapi_json(SCHEMA_JSON)).as_ref().map_err(Clone::clone)
}

/// The API credentials the simulated tenant accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectWiseCredentials {
    /// Login company id (compared case-insensitively, like the CW login page).
    pub company_id: String,
    /// API member public key (compared exactly).
    pub public_key: String,
    /// API member private key (compared exactly).
    pub private_key: String,
    /// Integration client id sent in the `clientId` header (compared case-insensitively: it
    /// is a GUID).
    pub client_id: String,
}

impl ConnectWiseCredentials {
    /// Fixed, obviously fake credentials for tests and the local stack.
    pub fn sample() -> Self {
        ConnectWiseCredentials {
            company_id: "vigilsim".to_string(),
            public_key: "SimPublicKey0001".to_string(),
            private_key: "SimPrivateKey0001".to_string(),
            client_id: "00000000-0000-4000-8000-00000000c1d0".to_string(),
        }
    }

    /// The `Authorization` header value a correct client sends:
    /// `Basic base64("{companyId}+{publicKey}:{privateKey}")`.
    pub fn authorization_header(&self) -> String {
        let raw = format!("{}+{}:{}", self.company_id, self.public_key, self.private_key);
        format!("Basic {}", BASE64.encode(raw))
    }
}

impl fmt::Debug for ConnectWiseCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectWiseCredentials")
            .field("company_id", &self.company_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// An operation failures can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimOperation {
    /// `POST /service/tickets`.
    CreateTicket,
    /// `GET /service/tickets/{id}`.
    GetTicket,
    /// `GET /service/tickets` and `GET /service/tickets/count`.
    SearchTickets,
    /// `PATCH /service/tickets/{id}`.
    UpdateTicket,
    /// `POST /service/tickets/{id}/notes`.
    AddNote,
    /// `GET /service/tickets/{id}/notes[...]`.
    ListNotes,
    /// `GET /system/info`, `GET /service/boards/{id}/statuses`.
    Lookup,
    /// Every authenticated API request (not `/login/companyinfo`, not `/_sim`).
    Any,
}

impl SimOperation {
    /// Parses the snake_case name used by `POST /_sim/fail` (`create_ticket`, `any`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "create_ticket" => SimOperation::CreateTicket,
            "get_ticket" => SimOperation::GetTicket,
            "search_tickets" => SimOperation::SearchTickets,
            "update_ticket" => SimOperation::UpdateTicket,
            "add_note" => SimOperation::AddNote,
            "list_notes" => SimOperation::ListNotes,
            "lookup" => SimOperation::Lookup,
            "any" => SimOperation::Any,
            _ => return None,
        })
    }
}

/// How an injected failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureMode {
    /// Answer this status without doing anything.
    Status(u16),
    /// Do the work (a ticket or note is stored) and then answer this status, like a crash after
    /// commit. Only triggers when the work itself succeeds; a request that fails validation
    /// gets its real error and leaves the injected failure armed.
    AfterCommit(u16),
    /// Answer `429 Too Many Requests` with `Retry-After: 1` without doing anything.
    Throttle,
    /// Do the work, then hold the response for this many seconds before sending it: the
    /// client's caller is killed (e.g. a Lambda timeout) after the ticket exists but before it
    /// learns the ticket id — a crash between "ticket created" and "ticket id stored".
    HangAfterCommit(u16),
}

/// Internal marker from the synchronous request path to the async handler: hold the response.
const HANG_HEADER: &str = "x-vigil-sim-hang-seconds";

/// A stored ticket as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimTicket {
    pub id: i64,
    /// The full stored ticket, including `POST`-only fields such as `initialDescription` that
    /// the API never returns.
    pub body: Value,
    /// Notes in creation order.
    pub notes: Vec<Value>,
}

/// Entry point: `ConnectWiseSim::start(creds).await`.
pub struct ConnectWiseSim;

impl ConnectWiseSim {
    /// Binds `127.0.0.1:0` and serves the simulator on the current tokio runtime until the last
    /// clone of the returned handle is dropped or [`ConnectWiseSimHandle::shutdown`] is called.
    pub async fn start(creds: ConnectWiseCredentials) -> std::io::Result<ConnectWiseSimHandle> {
        let schemas = schemas().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { creds, schemas, addr, request_count: AtomicU64::new(0), state: Mutex::new(SimState::new()) });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "ConnectWise simulator stopped with an error");
            }
        });
        tracing::debug!(%addr, "ConnectWise simulator listening");
        Ok(ConnectWiseSimHandle { shared, guard: Arc::new(ServerGuard { stop: Mutex::new(Some(stop_tx)), task: Mutex::new(Some(task)) }) })
    }
}

/// Handle on a running simulator. Clones share the server; it stops when the last clone is
/// dropped or when [`shutdown`](Self::shutdown) is called on any clone.
#[derive(Clone)]
pub struct ConnectWiseSimHandle {
    shared: Arc<Shared>,
    guard: Arc<ServerGuard>,
}

impl fmt::Debug for ConnectWiseSimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectWiseSimHandle").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl ConnectWiseSimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `base_url() + "/v4_6_release/apis/3.0"`.
    pub fn api_root(&self) -> String {
        format!("{}{API_PATH}", self.base_url())
    }

    /// The credentials the simulator accepts.
    pub fn credentials(&self) -> ConnectWiseCredentials {
        self.shared.creds.clone()
    }

    /// Snapshot of all stored tickets, ordered by id.
    pub fn tickets(&self) -> Vec<SimTicket> {
        self.shared.lock().snapshot()
    }

    /// Arms a failure for the next `times` requests of `op` (`SimOperation::Any`: of any API
    /// operation). Failures are consumed in the order they were armed.
    pub fn fail_next(&self, op: SimOperation, mode: FailureMode, times: u32) {
        if times > 0 {
            self.shared.lock().failures.push(FailRule { op, mode, remaining: times });
        }
    }

    /// Number of requests received, control endpoints (`/_sim/...`) excluded.
    pub fn request_count(&self) -> u64 {
        self.shared.request_count.load(AtomicOrdering::SeqCst)
    }

    /// Forgets all tickets and notes, armed failures and the request count; ids restart.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits (up to 5 s) for it to finish.
    pub async fn shutdown(self) {
        self.guard.signal_stop();
        let task = self.guard.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

struct ServerGuard {
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ServerGuard {
    fn signal_stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

struct Shared {
    creds: ConnectWiseCredentials,
    schemas: &'static SchemaSet,
    addr: SocketAddr,
    request_count: AtomicU64,
    state: Mutex<SimState>,
}

struct FailRule {
    op: SimOperation,
    mode: FailureMode,
    remaining: u32,
}

struct StoredTicket {
    body: Map<String, Value>,
    notes: Vec<Value>,
}

struct SimState {
    tickets: BTreeMap<i64, StoredTicket>,
    next_ticket_id: i64,
    next_note_id: i64,
    failures: Vec<FailRule>,
}

impl SimState {
    fn new() -> Self {
        SimState { tickets: BTreeMap::new(), next_ticket_id: FIRST_TICKET_ID, next_note_id: FIRST_NOTE_ID, failures: Vec::new() }
    }

    fn snapshot(&self) -> Vec<SimTicket> {
        self.tickets.iter().map(|(id, t)| SimTicket { id: *id, body: Value::Object(t.body.clone()), notes: t.notes.clone() }).collect()
    }

    /// Index of the first armed failure that applies to `op`.
    fn matching_failure(&self, op: SimOperation) -> Option<usize> {
        self.failures.iter().position(|r| r.remaining > 0 && (r.op == op || r.op == SimOperation::Any))
    }

    fn consume_failure(&mut self, index: usize) {
        if let Some(rule) = self.failures.get_mut(index) {
            rule.remaining = rule.remaining.saturating_sub(1);
            if rule.remaining == 0 {
                self.failures.remove(index);
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset(&self) {
        *self.lock() = SimState::new();
        self.request_count.store(0, AtomicOrdering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return cw_error(StatusCode::PAYLOAD_TOO_LARGE, "InvalidObject", &format!("request body could not be read: {e}"))
                .into_response();
        }
    };
    // Everything below is synchronous: the state mutex is never held across an await.
    let req = SimRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: bytes,
    };
    tracing::debug!(method = %req.method, path = %req.path, "ConnectWise simulator request");
    let mut response = shared.dispatch(&req);
    let hang = response.headers_mut().remove(HANG_HEADER).and_then(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()));
    if let Some(seconds) = hang {
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    }
    response
}

struct SimRequest {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

impl SimRequest {
    fn header(&self, name: &str) -> Option<&str> {
        // HeaderMap lookups are case-insensitive (names are normalised to lower case).
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query parameters, names matched case-insensitively (ASP.NET model binding does).
    fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.into_owned())
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// An error answer: a status and a ConnectWise-style JSON body. (Kept small so `Result`s
/// carrying it stay cheap; it becomes a [`Response`] at the edge.)
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// ConnectWise's error shape: `{"code": "...", "message": "..."}`.
fn cw_error(status: StatusCode, code: &str, message: &str) -> ApiError {
    ApiError { status, body: json!({"code": code, "message": message}) }
}

fn not_found(message: &str) -> ApiError {
    cw_error(StatusCode::NOT_FOUND, "NotFound", message)
}

/// ConnectWise's validation failure: `400 {"code":"InvalidObject","message":"ticket object is
/// invalid","errors":[{"code","message","resource","field"}]}`.
fn invalid_object(resource: &str, violations: &[Violation]) -> ApiError {
    let errors: Vec<Value> = violations
        .iter()
        .map(|v| {
            json!({
                "code": v.code.as_str(),
                "message": v.message,
                "resource": resource,
                "field": v.field,
            })
        })
        .collect();
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({
            "code": "InvalidObject",
            "message": format!("{resource} object is invalid"),
            "errors": errors,
        }),
    }
}

fn bad_request(message: &str) -> ApiError {
    cw_error(StatusCode::BAD_REQUEST, "InvalidObject", message)
}

fn violation(field: &str, code: ViolationCode, message: impl Into<String>) -> Violation {
    Violation { field: field.to_string(), code, message: message.into() }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn status_from_u16(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Body of an injected error status, e.g. `{"code":"InternalServerError","message":...}`.
/// An injected failure. A 5xx has the live server-exception shape,
/// `{"code":"ConnectWiseApi","message":"…","errors":null}`.
fn injected_failure(status: StatusCode, when: &str) -> ApiError {
    let message = format!("simulated failure ({when}): HTTP {}", status.as_u16());
    if status.is_server_error() {
        return ApiError { status, body: json!({"code": "ConnectWiseApi", "message": message, "errors": null}) };
    }
    let code: String = status.canonical_reason().unwrap_or("Error").chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    cw_error(status, &code, &message)
}

/// What the live server (IIS) answers for a path no API route matches: an HTML page, not JSON.
fn html_not_found(path: &str) -> Response {
    let path = path.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>404 - File or directory not found.</title></head>\n<body><div id=\"header\"><h1>Server Error</h1></div>\n<div id=\"content\"><h2>404 - File or directory not found.</h2>\n<h3>The resource you are looking for ({path}) might have been removed, had its name changed, or is temporarily unavailable.</h3></div></body></html>\n"
    );
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

fn throttled() -> Response {
    let mut resp =
        cw_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "simulated throttling: too many requests, retry after 1 second")
            .into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Parses a JSON request body, answering CW-style errors for a wrong content type, an empty
/// body or malformed JSON.
fn parse_json_body(req: &SimRequest, resource: &str) -> Result<Value, ApiError> {
    let content_type = req.header("content-type").unwrap_or("").to_ascii_lowercase();
    let media = content_type.split(';').next().unwrap_or("").trim();
    let is_json = media == "application/json" || media.ends_with("+json");
    if !is_json && !req.body.is_empty() {
        return Err(cw_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            &format!("request bodies must be sent as application/json, got {content_type:?}"),
        ));
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_object(resource, &[violation("", ViolationCode::NullValue, "the request body is empty")]));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        invalid_object(resource, &[violation("", ViolationCode::InvalidField, format!("the request body is not valid JSON: {e}"))])
    })
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    SystemInfo,
    BoardStatuses(i64),
    ListTickets,
    CountTickets,
    CreateTicket,
    GetTicket(i64),
    PatchTicket(i64),
    ListNotes(i64),
    CountNotes(i64),
    AddNote(i64),
    GetNote(i64, i64),
}

impl Route {
    /// Matches the path below `/apis/3.0` (segment names case-insensitive, as on IIS).
    fn parse(method: &Method, segments: &[&str]) -> Option<Route> {
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let segs: Vec<&str> = lower.iter().map(String::as_str).collect();
        let id = |i: usize| segments.get(i).and_then(|s| s.parse::<i64>().ok());
        let get = method == Method::GET;
        let post = method == Method::POST;
        Some(match segs.as_slice() {
            ["system", "info"] if get => Route::SystemInfo,
            ["service", "boards", _, "statuses"] if get => Route::BoardStatuses(id(2)?),
            ["service", "tickets"] if get => Route::ListTickets,
            ["service", "tickets"] if post => Route::CreateTicket,
            ["service", "tickets", "count"] if get => Route::CountTickets,
            ["service", "tickets", _] if get => Route::GetTicket(id(2)?),
            ["service", "tickets", _] if method == Method::PATCH => Route::PatchTicket(id(2)?),
            ["service", "tickets", _, "notes"] if get => Route::ListNotes(id(2)?),
            ["service", "tickets", _, "notes"] if post => Route::AddNote(id(2)?),
            ["service", "tickets", _, "notes", "count"] if get => Route::CountNotes(id(2)?),
            ["service", "tickets", _, "notes", _] if get => Route::GetNote(id(2)?, id(4)?),
            _ => return None,
        })
    }

    fn operation(self) -> SimOperation {
        match self {
            Route::SystemInfo | Route::BoardStatuses(_) => SimOperation::Lookup,
            Route::ListTickets | Route::CountTickets => SimOperation::SearchTickets,
            Route::CreateTicket => SimOperation::CreateTicket,
            Route::GetTicket(_) => SimOperation::GetTicket,
            Route::PatchTicket(_) => SimOperation::UpdateTicket,
            Route::ListNotes(_) | Route::CountNotes(_) | Route::GetNote(..) => SimOperation::ListNotes,
            Route::AddNote(_) => SimOperation::AddNote,
        }
    }
}

impl Shared {
    fn dispatch(&self, req: &SimRequest) -> Response {
        let trimmed = req.path.trim_start_matches('/').trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.first() == Some(&"_sim") {
            return self.control(req, &segments[1..]);
        }
        self.request_count.fetch_add(1, AtomicOrdering::SeqCst);

        match segments.as_slice() {
            [login, info, company]
                if login.eq_ignore_ascii_case("login") && info.eq_ignore_ascii_case("companyinfo") && req.method == Method::GET =>
            {
                return self.company_info(company);
            }
            [codebase, apis, version, rest @ ..] if codebase.starts_with('v') && apis.eq_ignore_ascii_case("apis") && *version == "3.0" => {
                let mut resp = self.api(req, rest);
                resp.headers_mut().insert(HeaderName::from_static("api-current-version"), HeaderValue::from_static(API_VERSION));
                return resp;
            }
            _ => {}
        }
        html_not_found(&req.path)
    }

    fn company_info(&self, company: &str) -> Response {
        if !company.eq_ignore_ascii_case(&self.creds.company_id) {
            // The real server answers an unknown company with a `null` body.
            return json_response(StatusCode::OK, &Value::Null);
        }
        json_response(
            StatusCode::OK,
            &json!({
                "CompanyName": "Simulated MSP",
                "Codebase": CODEBASE,
                "VersionCode": format!("v{API_VERSION}"),
                "VersionNumber": "v4.6.0",
                "CompanyID": self.creds.company_id,
                "IsCloud": false,
                "SiteUrl": self.addr.to_string(),
            }),
        )
    }

    /// Checks `Authorization` and `clientId`; `Err` is the 401 to send.
    fn authenticate(&self, req: &SimRequest) -> Result<(), ApiError> {
        let unauthorized = |msg: &str| cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", msg);
        let Some(auth) = req.header("authorization") else {
            return Err(unauthorized("Authorization header is missing: expected Basic base64(\"{companyId}+{publicKey}:{privateKey}\")"));
        };
        let mut parts = auth.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let encoded = parts.next().unwrap_or("").trim();
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized("Authorization scheme must be Basic"));
        }
        let decoded = BASE64.decode(encoded).ok().and_then(|b| String::from_utf8(b).ok());
        let Some(decoded) = decoded else {
            return Err(unauthorized("Authorization header is not valid base64"));
        };
        let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
        let (company, public_key) = user.split_once('+').unwrap_or(("", user));
        let creds = &self.creds;
        if !company.eq_ignore_ascii_case(&creds.company_id) || public_key != creds.public_key || password != creds.private_key {
            return Err(unauthorized("UserNotAuthenticated: the company, public key or private key is wrong"));
        }
        match req.header("clientid") {
            None => Err(unauthorized("clientId header is required (register one at developer.connectwise.com/ClientID)")),
            Some(id) if !id.trim().eq_ignore_ascii_case(&creds.client_id) => {
                Err(unauthorized("clientId header does not match a registered integration"))
            }
            Some(_) => Ok(()),
        }
    }

    fn api(&self, req: &SimRequest, rest: &[&str]) -> Response {
        if let Err(e) = self.authenticate(req) {
            return e.into_response();
        }
        let Some(route) = Route::parse(&req.method, rest) else {
            return html_not_found(&req.path);
        };

        let mut state = self.lock();
        let armed = state.matching_failure(route.operation());
        if let Some(index) = armed {
            match state.failures[index].mode {
                FailureMode::Status(code) => {
                    state.consume_failure(index);
                    return injected_failure(status_from_u16(code), "before processing").into_response();
                }
                FailureMode::Throttle => {
                    state.consume_failure(index);
                    return throttled();
                }
                FailureMode::AfterCommit(_) | FailureMode::HangAfterCommit(_) => {}
            }
        }
        let resp = self.execute(&mut state, route, req);
        if let Some(index) = armed
            && let FailureMode::AfterCommit(code) = state.failures[index].mode
            && resp.status().is_success()
        {
            state.consume_failure(index);
            return injected_failure(status_from_u16(code), "after commit").into_response();
        }
        if let Some(index) = armed
            && let FailureMode::HangAfterCommit(seconds) = state.failures[index].mode
            && resp.status().is_success()
        {
            state.consume_failure(index);
            let mut resp = resp;
            resp.headers_mut().insert(HeaderName::from_static(HANG_HEADER), HeaderValue::from(seconds));
            return resp;
        }
        resp
    }

    fn execute(&self, state: &mut SimState, route: Route, req: &SimRequest) -> Response {
        let result = match route {
            Route::SystemInfo => Ok(json_response(
                StatusCode::OK,
                &json!({
                    "version": format!("v{API_VERSION}"),
                    "isCloud": false,
                    "serverTimeZone": "Eastern Standard Time",
                    "cloudRegion": "NA",
                }),
            )),
            Route::BoardStatuses(board) => {
                let items = STATUSES
                    .iter()
                    .enumerate()
                    .map(|(i, (id, name, closed))| {
                        json!({
                            "id": id, "name": name, "board": {"id": board},
                            "sortOrder": i, "displayOnBoard": true, "inactive": false,
                            "closedStatus": closed, "timeEntryNotAllowed": false,
                            "defaultFlag": *id == 1,
                        })
                    })
                    .collect();
                self.list(req, "BoardStatus", items, false)
            }
            Route::ListTickets => self.list(req, "Ticket", public_tickets(state), false),
            Route::CountTickets => self.list(req, "Ticket", public_tickets(state), true),
            Route::CreateTicket => self.create_ticket(state, req),
            Route::GetTicket(id) => match state.tickets.get(&id) {
                Some(t) => self.single(req, "Ticket", self.full_ticket(&t.body)),
                None => Err(ticket_not_found(id)),
            },
            Route::PatchTicket(id) => self.patch_ticket(state, id, req),
            Route::ListNotes(id) | Route::CountNotes(id) => match state.tickets.get(&id) {
                Some(t) => self.list(req, "ServiceNote", t.notes.clone(), matches!(route, Route::CountNotes(_))),
                None => Err(ticket_not_found(id)),
            },
            Route::GetNote(id, note_id) => {
                let note =
                    state.tickets.get(&id).and_then(|t| t.notes.iter().find(|n| n.get("id").and_then(Value::as_i64) == Some(note_id)));
                match note {
                    Some(n) => self.single(req, "ServiceNote", n.clone()),
                    None => Err(not_found(&format!("Note {note_id} on ticket {id} was not found"))),
                }
            }
            Route::AddNote(id) => self.add_note(state, id, req),
        };
        result.unwrap_or_else(IntoResponse::into_response)
    }

    // -----------------------------------------------------------------------------------------
    // Control endpoints
    // -----------------------------------------------------------------------------------------

    fn control(&self, req: &SimRequest, segments: &[&str]) -> Response {
        let control_error = |msg: String| json_response(StatusCode::BAD_REQUEST, &json!({"error": msg}));
        match (req.method.clone(), segments) {
            (Method::GET, ["tickets"]) => {
                let tickets = self.lock().snapshot();
                json_response(StatusCode::OK, &serde_json::to_value(tickets).unwrap_or(Value::Null))
            }
            (Method::POST, ["reset"]) => {
                self.reset();
                json_response(StatusCode::OK, &json!({"reset": true}))
            }
            (Method::POST, ["fail"]) => {
                let body: Value = match serde_json::from_slice(&req.body) {
                    Ok(v) => v,
                    Err(e) => return control_error(format!("body is not JSON: {e}")),
                };
                match parse_fail_request(&body) {
                    Ok((op, mode, times)) => {
                        if times > 0 {
                            self.lock().failures.push(FailRule { op, mode, remaining: times });
                        }
                        json_response(StatusCode::OK, &json!({"armed": true}))
                    }
                    Err(e) => control_error(e),
                }
            }
            _ => not_found(&format!("No control endpoint {} {}", req.method, req.path)).into_response(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Tickets
    // -----------------------------------------------------------------------------------------

    fn create_ticket(&self, state: &mut SimState, req: &SimRequest) -> Result<Response, ApiError> {
        let value = parse_json_body(req, "ticket")?;
        let Value::Object(mut ticket) = value else {
            return Err(invalid_object("ticket", &[violation("", ViolationCode::InvalidField, "the ticket must be a JSON object")]));
        };
        let mut violations = self.schemas.validate("Ticket", &Value::Object(ticket.clone()));
        // .NET's [Required] also rejects empty strings.
        if let Some(Value::String(s)) = ticket.get("summary")
            && s.trim().is_empty()
        {
            violations.push(violation("summary", ViolationCode::NullValue, "summary may not be empty"));
        }
        let company_reported = violations.iter().any(|v| v.field == "company" || v.field.starts_with("company/"));
        if let Some(Value::Object(company)) = ticket.get("company")
            && !company_reported
        {
            let has_id = company.get("id").is_some_and(Value::is_number);
            let has_identifier = company.get("identifier").and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
            if !has_id && !has_identifier {
                violations.push(violation("company", ViolationCode::NullValue, "company must reference a company by id or identifier"));
            }
        }
        if !violations.is_empty() {
            return Err(invalid_object("ticket", &violations));
        }

        let id = state.next_ticket_id;
        state.next_ticket_id += 1;
        let now = now_rfc3339();
        ticket.insert("id".into(), json!(id));
        if !ticket.get("status").is_some_and(Value::is_object) {
            ticket.insert("status".into(), json!({"id": 1, "name": "New"}));
        }
        normalize_status(&mut ticket);
        ticket.insert("closedFlag".into(), json!(false));
        update_closed_fields(&mut ticket, &now);
        ticket.insert(
            "_info".into(),
            json!({
                "lastUpdated": now, "updatedBy": API_MEMBER,
                "dateEntered": now, "enteredBy": API_MEMBER,
            }),
        );
        let public = public_ticket(&ticket);
        state.tickets.insert(id, StoredTicket { body: ticket, notes: Vec::new() });
        Ok(json_response(StatusCode::CREATED, &public))
    }

    fn patch_ticket(&self, state: &mut SimState, id: i64, req: &SimRequest) -> Result<Response, ApiError> {
        let Some(stored) = state.tickets.get(&id) else {
            return Err(ticket_not_found(id));
        };
        let value = parse_json_body(req, "ticket")?;
        let Value::Array(ops) = value else {
            return Err(bad_request(
                "PATCH bodies must be a JSON-Patch array, e.g. [{\"op\":\"replace\",\"path\":\"/status\",\"value\":{\"id\":99}}]",
            ));
        };
        let mut ticket = stored.body.clone();
        for (i, op) in ops.iter().enumerate() {
            self.apply_patch_op(&mut ticket, op).map_err(|e| bad_request(&format!("patch operation {i}: {e}")))?;
        }
        let violations = self.schemas.validate("Ticket", &Value::Object(ticket.clone()));
        if !violations.is_empty() {
            return Err(invalid_object("ticket", &violations));
        }
        let now = now_rfc3339();
        normalize_status(&mut ticket);
        update_closed_fields(&mut ticket, &now);
        touch(&mut ticket, &now);
        let public = public_ticket(&ticket);
        if let Some(stored) = state.tickets.get_mut(&id) {
            stored.body = ticket;
        }
        Ok(json_response(StatusCode::OK, &public))
    }

    /// Applies one `{op, path, value}` operation. Supported: `replace`/`add` (same thing for an
    /// object property) and `remove`, on a top-level ticket property (`/summary`, `/status`) or
    /// on one property of a reference (`status/id`, which replaces the whole reference with
    /// `{"id": value}` because CW re-resolves references).
    fn apply_patch_op(&self, ticket: &mut Map<String, Value>, op: &Value) -> Result<(), String> {
        let obj = op.as_object().ok_or("must be an object {op, path, value}")?;
        let kind = obj.get("op").and_then(Value::as_str).ok_or("missing op")?.to_ascii_lowercase();
        let path = obj.get("path").and_then(Value::as_str).ok_or("missing path")?;
        let path = path.trim().trim_start_matches('/');
        let resolved = self.schemas.lookup_property("Ticket", path).ok_or_else(|| format!("unknown ticket field {path:?}"))?;
        let canonical = resolved.canonical_path;
        let top = canonical[0].clone();
        if READ_ONLY_TICKET_FIELDS.contains(&top.as_str()) {
            return Err(format!("{top} is read-only"));
        }
        let value = || obj.get("value").cloned().ok_or_else(|| format!("{kind} needs a value"));
        match (kind.as_str(), canonical.len()) {
            ("replace" | "add", 1) => {
                ticket.insert(top, value()?);
            }
            ("replace" | "add", 2) => {
                ticket.insert(top, json!({ canonical[1].clone(): value()? }));
            }
            ("remove", 1) => {
                ticket.remove(&top);
            }
            ("replace" | "add" | "remove", _) => {
                return Err(format!("path {path:?} is too deep"));
            }
            _ => {
                return Err(format!("unsupported op {kind:?} (use replace, add or remove)"));
            }
        }
        Ok(())
    }

    fn add_note(&self, state: &mut SimState, id: i64, req: &SimRequest) -> Result<Response, ApiError> {
        if !state.tickets.contains_key(&id) {
            return Err(ticket_not_found(id));
        }
        let value = parse_json_body(req, "serviceNote")?;
        let Value::Object(mut note) = value else {
            return Err(invalid_object("serviceNote", &[violation("", ViolationCode::InvalidField, "the note must be a JSON object")]));
        };
        let mut violations = self.schemas.validate("ServiceNote", &Value::Object(note.clone()));
        let has_text = note.get("text").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty());
        let text_reported = violations.iter().any(|v| v.field == "text");
        if !has_text && !text_reported {
            violations.push(violation("text", ViolationCode::NullValue, "text is required"));
        }
        // [unconfirmed] The real API is reported to reject notes that are neither discussion,
        // internal analysis nor resolution; see psa-apis.md §1.4.
        let flags = ["detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag"];
        if !flags.iter().any(|f| note.get(*f).and_then(Value::as_bool) == Some(true)) {
            violations.push(violation(
                "detailDescriptionFlag",
                ViolationCode::InvalidField,
                "at least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true",
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_object("serviceNote", &violations));
        }

        let note_id = state.next_note_id;
        state.next_note_id += 1;
        let now = now_rfc3339();
        note.insert("id".into(), json!(note_id));
        note.insert("ticketId".into(), json!(id));
        for flag in flags.iter().chain(&["issueFlag", "internalFlag", "externalFlag"]) {
            note.entry(*flag).or_insert(json!(false));
        }
        note.insert("dateCreated".into(), json!(now));
        note.insert("createdBy".into(), json!(API_MEMBER));
        note.insert("_info".into(), json!({"lastUpdated": now, "updatedBy": API_MEMBER}));
        let note = Value::Object(note);
        if let Some(ticket) = state.tickets.get_mut(&id) {
            ticket.notes.push(note.clone());
            touch(&mut ticket.body, &now);
        }
        Ok(json_response(StatusCode::CREATED, &note))
    }

    // -----------------------------------------------------------------------------------------
    // Reading: single objects and lists (conditions, orderBy, fields, paging)
    // -----------------------------------------------------------------------------------------

    fn single(&self, req: &SimRequest, schema: &str, item: Value) -> Result<Response, ApiError> {
        let fields = self.parse_fields(req, schema)?;
        let item = match &fields {
            Some(f) => project(&item, f),
            None => item,
        };
        Ok(json_response(StatusCode::OK, &item))
    }

    fn resolve_field(&self, schema: &str, path: &str) -> Result<Vec<String>, String> {
        if let Some(p) = self.schemas.lookup_property(schema, path) {
            return Ok(p.canonical_path);
        }
        // Audit fields live in `_info` but are queried as top-level fields.
        for pseudo in ["lastUpdated", "dateEntered", "enteredBy", "updatedBy"] {
            if pseudo.eq_ignore_ascii_case(path) {
                return Ok(vec!["_info".to_string(), pseudo.to_string()]);
            }
        }
        Err(format!("unknown field {path:?} for {schema}"))
    }

    fn parse_fields(&self, req: &SimRequest, schema: &str) -> Result<Option<Vec<Vec<String>>>, ApiError> {
        let Some(fields) = req.param("fields") else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for f in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let path = self.resolve_field(schema, f).map_err(|e| bad_request(&format!("fields: {e}")))?;
            out.push(path);
        }
        Ok(Some(out))
    }

    fn list(&self, req: &SimRequest, schema: &str, mut items: Vec<Value>, count_only: bool) -> Result<Response, ApiError> {
        for unsupported in ["childConditions", "customFieldConditions"] {
            if req.param(unsupported).is_some_and(|v| !v.trim().is_empty()) {
                return Err(bad_request(&format!("{unsupported} is not supported by the simulator")));
            }
        }
        if let Some(text) = req.param("conditions").filter(|c| !c.trim().is_empty()) {
            let cond =
                conditions::parse(&text, &|f| self.resolve_field(schema, f)).map_err(|e| bad_request(&format!("conditions: {e}")))?;
            items.retain(|item| cond.matches(item));
        }
        if count_only {
            return Ok(json_response(StatusCode::OK, &json!({"count": items.len()})));
        }

        let page_size = match req.param("pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(bad_request(&format!("pageSize must be a positive integer, got {s:?}")));
                }
                Ok(n) => n.min(MAX_PAGE_SIZE),
            },
        };
        let forward_only = req.header("pagination-type").is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"));

        if forward_only {
            // Forward-only paging walks ids upwards; `pageId` is the last id already seen.
            let after = match req.param("pageId") {
                None => i64::MIN,
                Some(s) => s.trim().parse::<i64>().map_err(|_| bad_request(&format!("pageId must be an integer, got {s:?}")))?,
            };
            items.sort_by_key(|v| v.get("id").and_then(Value::as_i64).unwrap_or(i64::MIN));
            items.retain(|v| v.get("id").and_then(Value::as_i64).unwrap_or(i64::MIN) > after);
            let more = items.len() > page_size;
            items.truncate(page_size);
            let last_id = items.last().and_then(|v| v.get("id")).and_then(Value::as_i64);
            let mut links = Vec::new();
            if let (true, Some(last)) = (more, last_id) {
                links.push((self.page_url(req, &[("pageId", last.to_string())], &["page", "pageId"]), "next"));
            }
            return self.page_response(req, schema, items, &links);
        }

        if let Some(order) = req.param("orderBy").filter(|o| !o.trim().is_empty()) {
            let keys = self.parse_order_by(schema, &order)?;
            items.sort_by(|a, b| {
                keys.iter()
                    .map(|(path, desc)| {
                        let ord = order_values(lookup(a, path), lookup(b, path));
                        if *desc { ord.reverse() } else { ord }
                    })
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            });
        } else {
            items.sort_by_key(|v| v.get("id").and_then(Value::as_i64).unwrap_or(i64::MIN));
        }

        let page = match req.param("page") {
            None => 1,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(bad_request(&format!("page must be a positive integer, got {s:?}")));
                }
                Ok(n) => n,
            },
        };
        let total = items.len();
        let last_page = total.div_ceil(page_size).max(1);
        let start = (page - 1).saturating_mul(page_size).min(total);
        let end = start.saturating_add(page_size).min(total);
        let page_items: Vec<Value> = items.drain(start..end).collect();

        let mut links = Vec::new();
        if last_page > 1 {
            let url = |p: usize| {
                self.page_url(req, &[("pageSize", page_size.to_string()), ("page", p.to_string())], &["page", "pageSize", "pageId"])
            };
            if page > 1 {
                links.push((url(page - 1), "prev"));
                links.push((url(1), "first"));
            }
            if page < last_page {
                links.push((url(page + 1), "next"));
                links.push((url(last_page), "last"));
            }
        }
        self.page_response(req, schema, page_items, &links)
    }

    fn page_response(&self, req: &SimRequest, schema: &str, items: Vec<Value>, links: &[(String, &str)]) -> Result<Response, ApiError> {
        let fields = self.parse_fields(req, schema)?;
        let items: Vec<Value> = match &fields {
            Some(f) => items.iter().map(|i| project(i, f)).collect(),
            None => items,
        };
        let mut resp = json_response(StatusCode::OK, &Value::Array(items));
        if !links.is_empty() {
            let link = links.iter().map(|(url, rel)| format!("<{url}>; rel=\"{rel}\"")).collect::<Vec<_>>().join(", ");
            if let Ok(v) = HeaderValue::from_str(&link) {
                resp.headers_mut().insert(header::LINK, v);
            }
        }
        Ok(resp)
    }

    /// The request URL with the paging parameters `drop` removed and `set` appended.
    fn page_url(&self, req: &SimRequest, set: &[(&str, String)], drop: &[&str]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(req.query.as_bytes()) {
            if !drop.iter().any(|d| d.eq_ignore_ascii_case(&k)) {
                query.append_pair(&k, &v);
            }
        }
        for (k, v) in set {
            query.append_pair(k, v);
        }
        format!("http://{}{}?{}", self.addr, req.path, query.finish())
    }

    fn parse_order_by(&self, schema: &str, order: &str) -> Result<Vec<(Vec<String>, bool)>, ApiError> {
        let mut keys = Vec::new();
        for part in order.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut words = part.split_whitespace();
            let field = words.next().unwrap_or("");
            let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(bad_request(&format!("orderBy: expected asc or desc, got {other:?}")));
                }
            };
            if words.next().is_some() {
                return Err(bad_request(&format!("orderBy: cannot parse {part:?}")));
            }
            let path = self.resolve_field(schema, field).map_err(|e| bad_request(&format!("orderBy: {e}")))?;
            keys.push((path, desc));
        }
        Ok(keys)
    }
}

fn parse_fail_request(body: &Value) -> Result<(SimOperation, FailureMode, u32), String> {
    let op_name = body.get("operation").and_then(Value::as_str).unwrap_or("any");
    let op = SimOperation::from_name(op_name).ok_or_else(|| format!("unknown operation {op_name:?}"))?;
    let status = match body.get("status") {
        None | Some(Value::Null) => 500,
        Some(v) => v
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(|| format!("status must be an HTTP status code, got {v}"))?,
    };
    let mode_name = body.get("mode").and_then(Value::as_str).unwrap_or("status");
    let mode = match mode_name.to_ascii_lowercase().as_str() {
        "status" => FailureMode::Status(status),
        "after_commit" => FailureMode::AfterCommit(status),
        "throttle" => FailureMode::Throttle,
        "hang_after_commit" => {
            FailureMode::HangAfterCommit(body.get("seconds").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()).unwrap_or(60))
        }
        other => {
            return Err(format!("unknown mode {other:?} (status, after_commit, hang_after_commit, throttle)"));
        }
    };
    let times = match body.get("times") {
        None | Some(Value::Null) => 1,
        Some(v) => {
            v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| format!("times must be a non-negative integer, got {v}"))?
        }
    };
    Ok((op, mode, times))
}

fn ticket_not_found(id: i64) -> ApiError {
    not_found(&format!("Ticket with id {id} was not found"))
}

impl Shared {
    /// A ticket as `GET /service/tickets/{id}` returns it live: [`public_ticket`] plus the
    /// server-made members — `status.Sort` and `status._info.status_href`, `company._info`,
    /// and the ticket's `_info` hrefs. Output only: the stored ticket stays schema-valid.
    fn full_ticket(&self, ticket: &Map<String, Value>) -> Value {
        let root = format!("http://{}{API_PATH}", self.addr);
        let mut t = public_ticket(ticket);
        let id = t.get("id").and_then(Value::as_i64).unwrap_or_default();
        if let Some(Value::Object(status)) = t.get_mut("status") {
            let sid = status.get("id").and_then(Value::as_i64).unwrap_or_default();
            let sort = STATUSES.iter().position(|(known, _, _)| *known == sid).unwrap_or(STATUSES.len());
            status.insert("Sort".into(), json!(sort));
            status.insert("_info".into(), json!({"status_href": format!("{root}/service/boards/1/statuses/{sid}")}));
        }
        if let Some(Value::Object(company)) = t.get_mut("company")
            && let Some(cid) = company.get("id").and_then(Value::as_i64)
        {
            company.insert("_info".into(), json!({"company_href": format!("{root}/company/companies/{cid}")}));
        }
        if let Some(Value::Object(info)) = t.get_mut("_info") {
            for (name, path) in [
                ("activities_href", format!("/sales/activities?conditions=ticket/id={id}")),
                ("scheduleentries_href", format!("/schedule/entries?conditions=type/id='S' AND objectId={id}")),
                ("documents_href", format!("/system/documents?recordType=Ticket&recordId={id}")),
                ("configurations_href", format!("/service/tickets/{id}/configurations")),
                ("tasks_href", format!("/service/tickets/{id}/tasks")),
                ("notes_href", format!("/service/tickets/{id}/notes")),
                ("products_href", format!("/procurement/products?conditions=chargeToType='Ticket' AND chargeToId={id}")),
                (
                    "timeentries_href",
                    format!("/time/entries?conditions=(chargeToType='ServiceTicket' OR chargeToType='ProjectTicket') AND chargeToId={id}"),
                ),
                (
                    "expenseEntries_href",
                    format!(
                        "/expense/entries?conditions=(chargeToType='ServiceTicket' OR chargeToType='ProjectTicket') AND chargeToId={id}"
                    ),
                ),
            ] {
                info.insert(name.into(), json!(format!("{root}{path}")));
            }
        }
        t
    }
}

/// What the API returns for a stored ticket: everything but the `POST`-only fields.
fn public_ticket(ticket: &Map<String, Value>) -> Value {
    let mut t = ticket.clone();
    for f in POST_ONLY_TICKET_FIELDS {
        t.remove(*f);
    }
    Value::Object(t)
}

fn public_tickets(state: &SimState) -> Vec<Value> {
    state.tickets.values().map(|t| public_ticket(&t.body)).collect()
}

/// Completes a status reference from the status table (`{id}` gains its name, `{name}` its id).
fn normalize_status(ticket: &mut Map<String, Value>) {
    let Some(Value::Object(status)) = ticket.get_mut("status") else {
        return;
    };
    let id = status.get("id").and_then(Value::as_i64);
    let name = status.get("name").and_then(Value::as_str).map(str::to_string);
    let known = STATUSES
        .iter()
        .find(|(sid, sname, _)| Some(*sid) == id || (id.is_none() && name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(sname))));
    if let Some((sid, sname, _)) = known {
        status.insert("id".into(), json!(sid));
        status.insert("name".into(), json!(sname));
    }
}

/// A status closes the ticket when its id is 99 or its name is `Closed` / `>Closed`.
fn is_closed_status(status: Option<&Value>) -> bool {
    let Some(status) = status else {
        return false;
    };
    let id = status.get("id").and_then(Value::as_i64);
    let name = status.get("name").and_then(Value::as_str).unwrap_or("").trim();
    id == Some(99) || name.trim_start_matches('>').eq_ignore_ascii_case("closed")
}

fn update_closed_fields(ticket: &mut Map<String, Value>, now: &str) {
    let closed = is_closed_status(ticket.get("status"));
    let was_closed = ticket.get("closedFlag").and_then(Value::as_bool) == Some(true);
    ticket.insert("closedFlag".into(), json!(closed));
    if closed && !was_closed {
        ticket.insert("closedDate".into(), json!(now));
        ticket.insert("closedBy".into(), json!(API_MEMBER));
    } else if !closed {
        ticket.remove("closedDate");
        ticket.remove("closedBy");
    }
}

fn touch(obj: &mut Map<String, Value>, now: &str) {
    let info = obj.entry("_info").or_insert_with(|| json!({}));
    if let Value::Object(info) = info {
        info.insert("lastUpdated".into(), json!(now));
        info.insert("updatedBy".into(), json!(API_MEMBER));
    }
}

fn lookup<'a>(item: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(item, |v, key| v.get(key))
}

/// Keeps only the listed (nested) fields, like `fields=id,summary,status/name`.
fn project(item: &Value, fields: &[Vec<String>]) -> Value {
    let mut out = Value::Object(Map::new());
    for path in fields {
        let Some(v) = lookup(item, path) else {
            continue;
        };
        let mut target = &mut out;
        for (i, key) in path.iter().enumerate() {
            let Value::Object(map) = target else {
                break;
            };
            if i + 1 == path.len() {
                map.insert(key.clone(), v.clone());
                break;
            }
            target = map.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    out
}

/// Sort order for `orderBy`: missing/null first, then booleans, numbers, strings
/// (case-insensitive, like SQL Server's default collation).
fn order_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        _ => rank(a).cmp(&rank(b)),
    }
}

mod conditions {
    //! The `conditions` query language.
    //!
    //! Grammar (keywords case-insensitive):
    //! ```text
    //! expr       := and_expr ("or" and_expr)*
    //! and_expr   := unary ("and" unary)*
    //! unary      := "not" unary | "(" expr ")" | comparison
    //! comparison := field op literal | field ["not"] ("contains" | "like") literal
    //!             | field ["not"] "in" "(" literal ("," literal)* ")"
    //! op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    //! literal    := "string" | 'string' | number | true | false | null | [date-time]
    //! field      := name ("/" name)*
    //! ```
    //! Strings may escape their quote with a backslash. String comparisons are case-insensitive
    //! (SQL Server's default collation). `!=` is the plain negation of `=` (so it also matches
    //! tickets where the field is empty).

    use std::cmp::Ordering;

    use chrono::{DateTime, FixedOffset};
    use serde_json::Value;

    use super::lookup;

    #[derive(Debug, Clone, PartialEq)]
    enum Token {
        Word(String),
        Str(String),
        Date(String),
        Op(&'static str),
        LParen,
        RParen,
        Comma,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Lit {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Date(DateTime<FixedOffset>),
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Op {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
        Contains,
        Like,
    }

    /// A parsed condition.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Cond {
        Cmp { path: Vec<String>, op: Op, lit: Lit },
        In { path: Vec<String>, lits: Vec<Lit> },
        Not(Box<Cond>),
        And(Box<Cond>, Box<Cond>),
        Or(Box<Cond>, Box<Cond>),
    }

    type Resolver<'a> = &'a dyn Fn(&str) -> Result<Vec<String>, String>;

    /// Parses `text`, resolving field names with `resolve` (which rejects unknown fields).
    pub(super) fn parse(text: &str, resolve: Resolver<'_>) -> Result<Cond, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, pos: 0, resolve };
        let cond = p.expr(0)?;
        match p.peek() {
            None => Ok(cond),
            Some(t) => Err(format!("unexpected {} after a complete condition", describe(t))),
        }
    }

    fn is_word_char(c: char) -> bool {
        c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-')
    }

    fn tokenize(text: &str) -> Result<Vec<Token>, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match c {
                c if c.is_whitespace() => i += 1,
                '(' => {
                    out.push(Token::LParen);
                    i += 1;
                }
                ')' => {
                    out.push(Token::RParen);
                    i += 1;
                }
                ',' => {
                    out.push(Token::Comma);
                    i += 1;
                }
                '"' | '\'' => {
                    let start = i;
                    i += 1;
                    let mut s = String::new();
                    loop {
                        match chars.get(i) {
                            None => {
                                return Err(format!("unterminated string starting at position {start}"));
                            }
                            Some('\\') if i + 1 < chars.len() => {
                                s.push(chars[i + 1]);
                                i += 2;
                            }
                            Some(&ch) if ch == c => {
                                i += 1;
                                break;
                            }
                            Some(&ch) => {
                                s.push(ch);
                                i += 1;
                            }
                        }
                    }
                    out.push(Token::Str(s));
                }
                '[' => {
                    let start = i;
                    let end = chars[i..]
                        .iter()
                        .position(|&ch| ch == ']')
                        .ok_or_else(|| format!("unterminated [date] starting at position {start}"))?;
                    out.push(Token::Date(chars[i + 1..i + end].iter().collect::<String>().trim().to_string()));
                    i += end + 1;
                }
                '=' => {
                    out.push(Token::Op("="));
                    i += 1;
                }
                '!' if next == Some('=') => {
                    out.push(Token::Op("!="));
                    i += 2;
                }
                '<' if next == Some('=') => {
                    out.push(Token::Op("<="));
                    i += 2;
                }
                '<' if next == Some('>') => {
                    out.push(Token::Op("!="));
                    i += 2;
                }
                '<' => {
                    out.push(Token::Op("<"));
                    i += 1;
                }
                '>' if next == Some('=') => {
                    out.push(Token::Op(">="));
                    i += 2;
                }
                '>' => {
                    out.push(Token::Op(">"));
                    i += 1;
                }
                c if is_word_char(c) => {
                    let start = i;
                    while i < chars.len() && is_word_char(chars[i]) {
                        i += 1;
                    }
                    out.push(Token::Word(chars[start..i].iter().collect()));
                }
                other => return Err(format!("unexpected character {other:?} at position {i}")),
            }
        }
        Ok(out)
    }

    fn describe(t: &Token) -> String {
        match t {
            Token::Word(w) => format!("{w:?}"),
            Token::Str(s) => format!("string {s:?}"),
            Token::Date(d) => format!("date [{d}]"),
            Token::Op(o) => format!("operator {o}"),
            Token::LParen => "\"(\"".to_string(),
            Token::RParen => "\")\"".to_string(),
            Token::Comma => "\",\"".to_string(),
        }
    }

    struct Parser<'a> {
        tokens: Vec<Token>,
        pos: usize,
        resolve: Resolver<'a>,
    }

    const MAX_NESTING: usize = 32;

    impl Parser<'_> {
        fn peek(&self) -> Option<&Token> {
            self.tokens.get(self.pos)
        }

        fn next(&mut self) -> Option<Token> {
            let t = self.tokens.get(self.pos).cloned();
            self.pos += 1;
            t
        }

        fn keyword(&self, kw: &str) -> bool {
            matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
        }

        fn expr(&mut self, depth: usize) -> Result<Cond, String> {
            if depth > MAX_NESTING {
                return Err("conditions are nested too deeply".to_string());
            }
            let mut left = self.and_expr(depth)?;
            while self.keyword("or") {
                self.pos += 1;
                let right = self.and_expr(depth)?;
                left = Cond::Or(Box::new(left), Box::new(right));
            }
            Ok(left)
        }

        fn and_expr(&mut self, depth: usize) -> Result<Cond, String> {
            let mut left = self.unary(depth)?;
            while self.keyword("and") {
                self.pos += 1;
                let right = self.unary(depth)?;
                left = Cond::And(Box::new(left), Box::new(right));
            }
            Ok(left)
        }

        fn unary(&mut self, depth: usize) -> Result<Cond, String> {
            if self.keyword("not") {
                self.pos += 1;
                return Ok(Cond::Not(Box::new(self.unary(depth + 1)?)));
            }
            if self.peek() == Some(&Token::LParen) {
                self.pos += 1;
                let inner = self.expr(depth + 1)?;
                return match self.next() {
                    Some(Token::RParen) => Ok(inner),
                    Some(t) => Err(format!("expected \")\", got {}", describe(&t))),
                    None => Err("missing \")\"".to_string()),
                };
            }
            self.comparison()
        }

        fn comparison(&mut self) -> Result<Cond, String> {
            let field = match self.next() {
                Some(Token::Word(w)) if w.starts_with(|c: char| c.is_alphabetic() || c == '_') => w,
                Some(t) => return Err(format!("expected a field name, got {}", describe(&t))),
                None => {
                    return Err("expected a field name, got the end of the conditions".to_string());
                }
            };
            let path = (self.resolve)(&field)?;
            let negated = self.keyword("not");
            if negated {
                self.pos += 1;
            }
            let op = match self.next() {
                Some(Token::Op(o)) if !negated => match o {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    _ => Op::Ge,
                },
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("contains") => Op::Contains,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                    let lits = self.list()?;
                    let cond = Cond::In { path, lits };
                    return Ok(if negated { Cond::Not(Box::new(cond)) } else { cond });
                }
                Some(t) => {
                    return Err(format!("expected an operator after {field}, got {}", describe(&t)));
                }
                None => return Err(format!("expected an operator after {field}")),
            };
            let lit = self.literal()?;
            if matches!(op, Op::Contains | Op::Like) && !matches!(lit, Lit::Str(_)) {
                return Err(format!("{field}: contains/like need a quoted string"));
            }
            let cond = Cond::Cmp { path, op, lit };
            Ok(if negated { Cond::Not(Box::new(cond)) } else { cond })
        }

        fn list(&mut self) -> Result<Vec<Lit>, String> {
            if self.next() != Some(Token::LParen) {
                return Err("in must be followed by a parenthesised list".to_string());
            }
            let mut lits = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => lits.push(self.literal()?),
                    Some(Token::RParen) => return Ok(lits),
                    Some(t) => {
                        return Err(format!("expected \",\" or \")\" in list, got {}", describe(&t)));
                    }
                    None => return Err("unterminated in (...) list".to_string()),
                }
            }
        }

        fn literal(&mut self) -> Result<Lit, String> {
            match self.next() {
                Some(Token::Str(s)) => Ok(Lit::Str(s)),
                Some(Token::Date(d)) => {
                    DateTime::parse_from_rfc3339(&d).map(Lit::Date).map_err(|e| format!("[{d}] is not an RFC 3339 date-time: {e}"))
                }
                Some(Token::Word(w)) => {
                    if w.eq_ignore_ascii_case("true") {
                        Ok(Lit::Bool(true))
                    } else if w.eq_ignore_ascii_case("false") {
                        Ok(Lit::Bool(false))
                    } else if w.eq_ignore_ascii_case("null") {
                        Ok(Lit::Null)
                    } else if let Ok(n) = w.parse::<f64>()
                        && n.is_finite()
                    {
                        Ok(Lit::Num(n))
                    } else {
                        Err(format!("{w:?} is not a value: quote strings (\"...\")"))
                    }
                }
                Some(t) => Err(format!("expected a value, got {}", describe(&t))),
                None => Err("expected a value, got the end of the conditions".to_string()),
            }
        }
    }

    impl Cond {
        pub(super) fn matches(&self, item: &Value) -> bool {
            match self {
                Cond::Cmp { path, op, lit } => compare_op(lookup(item, path), *op, lit),
                Cond::In { path, lits } => {
                    let field = lookup(item, path);
                    lits.iter().any(|l| equals(field, l))
                }
                Cond::Not(c) => !c.matches(item),
                Cond::And(a, b) => a.matches(item) && b.matches(item),
                Cond::Or(a, b) => a.matches(item) || b.matches(item),
            }
        }
    }

    fn text_of(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn compare(field: Option<&Value>, lit: &Lit) -> Option<Ordering> {
        let field = field.filter(|v| !v.is_null())?;
        match lit {
            Lit::Null => None,
            Lit::Bool(b) => field.as_bool().map(|f| f.cmp(b)),
            Lit::Num(n) => {
                let f = field.as_f64().or_else(|| field.as_str().and_then(|s| s.trim().parse().ok()))?;
                f.partial_cmp(n)
            }
            Lit::Str(s) => Some(text_of(field)?.to_lowercase().cmp(&s.to_lowercase())),
            Lit::Date(d) => {
                let f = DateTime::parse_from_rfc3339(field.as_str()?).ok()?;
                Some(f.cmp(d))
            }
        }
    }

    fn equals(field: Option<&Value>, lit: &Lit) -> bool {
        match lit {
            Lit::Null => field.is_none_or(Value::is_null),
            _ => compare(field, lit) == Some(Ordering::Equal),
        }
    }

    fn compare_op(field: Option<&Value>, op: Op, lit: &Lit) -> bool {
        match op {
            Op::Eq => equals(field, lit),
            Op::Ne => !equals(field, lit),
            Op::Lt => compare(field, lit) == Some(Ordering::Less),
            Op::Le => matches!(compare(field, lit), Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => compare(field, lit) == Some(Ordering::Greater),
            Op::Ge => matches!(compare(field, lit), Some(Ordering::Greater | Ordering::Equal)),
            Op::Contains | Op::Like => {
                let (Some(text), Lit::Str(pattern)) = (field.and_then(text_of), lit) else {
                    return false;
                };
                let text = text.to_lowercase();
                let pattern = pattern.to_lowercase();
                if op == Op::Contains {
                    text.contains(&pattern)
                } else {
                    glob(&text.chars().collect::<Vec<_>>(), &pattern.chars().collect::<Vec<_>>())
                }
            }
        }
    }

    /// `*` matches any run of characters; everything else matches itself.
    fn glob(text: &[char], pattern: &[char]) -> bool {
        let (mut t, mut p) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && pattern[p] == '*' {
                star = Some((p, t));
                p += 1;
            } else if p < pattern.len() && pattern[p] == text[t] {
                p += 1;
                t += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used, clippy::expect_used)]

        use super::*;
        use serde_json::json;

        fn resolve(f: &str) -> Result<Vec<String>, String> {
            match f.to_ascii_lowercase().as_str() {
                "unknown" => Err("unknown field".to_string()),
                _ => Ok(f.split('/').map(str::to_string).collect()),
            }
        }

        fn m(cond: &str, item: &Value) -> bool {
            parse(cond, &resolve).unwrap().matches(item)
        }

        #[test]
        fn evaluates_the_documented_operators() {
            let t = json!({"id": 1001, "summary": "Vigil: Impossible travel", "closedFlag": false,
                           "company": {"id": 250}, "externalXRef": "vigil:abc",
                           "_info": {"lastUpdated": "2025-06-01T00:00:00Z"}});
            assert!(m("company/id=250 and closedFlag=false and externalXRef=\"vigil:abc\"", &t));
            assert!(m("externalXRef='VIGIL:ABC'", &t));
            assert!(!m("company/id != 250", &t));
            assert!(m("summary contains \"impossible\"", &t));
            assert!(m("summary like \"Vigil:*travel\"", &t));
            assert!(!m("summary like \"travel*\"", &t));
            assert!(m("summary not like \"travel*\"", &t));
            assert!(m("id >= 1001 AND id < 1002", &t));
            assert!(m("id in (5, 1001)", &t));
            assert!(m("id not in (5, 6)", &t));
            assert!(m("(id = 5 or id = 1001) and not closedFlag = true", &t));
            assert!(m("_info/lastUpdated > [2025-01-01T00:00:00Z]", &t));
            assert!(m("owner = null", &t));
            assert!(!m("owner/id = 5", &t));
            assert!(m("summary = \"say \\\"hi\\\"\" or id=1001", &t));
        }

        #[test]
        fn rejects_bad_syntax_and_unknown_fields() {
            for bad in [
                "summary = vigil",
                "summary ==",
                "summary = \"x",
                "company/id = 250 and",
                "(id = 1",
                "id = 1 id = 2",
                "unknown = 1",
                "id ~ 1",
                "id contains 5",
                "id in 5",
                "lastUpdated > [yesterday]",
                "= 5",
            ] {
                assert!(parse(bad, &resolve).is_err(), "{bad} should not parse");
            }
        }

        #[test]
        fn glob_matches_stars() {
            let g = |t: &str, p: &str| glob(&t.chars().collect::<Vec<_>>(), &p.chars().collect::<Vec<_>>());
            assert!(g("contoso ltd", "contoso*"));
            assert!(g("contoso ltd", "*ltd"));
            assert!(g("contoso ltd", "*so*l*"));
            assert!(g("", "*"));
            assert!(!g("contoso", "fabrikam*"));
            assert!(g("abc", "abc"));
            assert!(!g("abcd", "abc"));
        }
    }
}
