//! HTTP plumbing of the Autotask simulator: shared state, routing (case-insensitive paths),
//! the request pipeline (log → authenticate → threshold → injected faults → work → after-commit
//! faults) and the Autotask response shapes (`{"errors": [...]}`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::directory::Directory;
use super::model::{Entity, Specs};
use super::{AutotaskCredentials, AutotaskOperation, DEFAULT_THRESHOLD, SimTicket, picklists, threshold};
use crate::kit::{FailureMode, Kit, Operation};

const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub(crate) const FIRST_TICKET_ID: i64 = 7001;
pub(crate) const FIRST_NOTE_ID: i64 = 30001;

/// Everything a request handler needs.
pub(crate) struct Shared {
    pub(crate) creds: AutotaskCredentials,
    pub(crate) specs: &'static Specs,
    pub(crate) addr: SocketAddr,
    pub(crate) kit: Kit<AutotaskOperation>,
    state: Mutex<SimState>,
}

/// The simulated tenant's data.
pub(crate) struct SimState {
    pub(crate) tickets: BTreeMap<i64, Map<String, Value>>,
    pub(crate) notes: BTreeMap<i64, Map<String, Value>>,
    pub(crate) merged_into: BTreeMap<i64, i64>,
    pub(crate) directory: Directory,
    pub(crate) threshold: u64,
    pub(crate) next_ticket_id: i64,
    pub(crate) next_note_id: i64,
    pub(crate) contracts: super::contracts::Contracts,
}

impl SimState {
    fn new() -> Self {
        SimState {
            tickets: BTreeMap::new(),
            notes: BTreeMap::new(),
            merged_into: BTreeMap::new(),
            directory: Directory::new(),
            threshold: DEFAULT_THRESHOLD,
            next_ticket_id: FIRST_TICKET_ID,
            next_note_id: FIRST_NOTE_ID,
            contracts: super::contracts::Contracts::default(),
        }
    }
}

impl Shared {
    pub(crate) fn new(creds: AutotaskCredentials, specs: &'static Specs, addr: SocketAddr) -> Self {
        Shared { creds, specs, addr, kit: Kit::new(), state: Mutex::new(SimState::new()) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reset(&self) {
        self.kit.reset();
        *self.lock() = SimState::new();
    }

    /// `http://127.0.0.1:PORT/atservicesrest/V1.0`.
    pub(crate) fn api_root(&self) -> String {
        format!("http://{}{}", self.addr, super::API_PATH)
    }

    /// Every stored ticket in its API shape, with notes.
    pub(crate) fn snapshot(&self) -> Vec<SimTicket> {
        let state = self.lock();
        let ticket_spec = self.specs.of(Entity::Tickets);
        let note_spec = self.specs.of(Entity::TicketNotes);
        state
            .tickets
            .iter()
            .map(|(id, t)| SimTicket {
                id: *id,
                item: super::model::full_item(ticket_spec, t),
                notes: state
                    .notes
                    .values()
                    .filter(|n| n.get("ticketID").and_then(Value::as_i64) == Some(*id))
                    .map(|n| super::model::full_item(note_spec, n))
                    .collect(),
                merged_into: state.merged_into.get(id).copied(),
            })
            .collect()
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// One request, read completely (the state mutex is never held across an await).
pub(crate) struct SimRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl SimRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        // HeaderMap lookups are case-insensitive.
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter, name matched case-insensitively (ASP.NET model binding does).
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.into_owned())
    }

    /// The body as JSON; malformed JSON is `400 {"errors": [...]}`.
    pub(crate) fn json(&self) -> Result<Value, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "The request body is empty."));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("The request body is not valid JSON: {e}")))
    }
}

/// An Autotask error answer: a status and `{"errors": [...]}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) errors: Vec<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, errors: vec![message.into()] }
    }

    /// A validation failure: HTTP 500, like Autotask.
    pub(crate) fn validation(errors: Vec<String>) -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, errors }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::validation(vec![message.into()])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &json!({"errors": self.errors}))
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

pub(crate) fn ok(body: &Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, body))
}

/// Where a query's JSON comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuerySource {
    /// `POST …/query` body.
    Body,
    /// `GET …/query?search=`.
    Search,
    /// `GET …/query/next?paging=&search=`.
    Next,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Threshold,
    EntityInfo(Entity),
    EntityFields(Entity),
    EntityUdfs(Entity),
    CreateTicket,
    UpdateTicket,
    ReplaceTicket,
    GetOne(Entity, i64),
    Query(Entity, QuerySource),
    Count(Entity, QuerySource),
    AddNote(i64),
    ListNotes(i64),
    GetChildNote(i64, i64),
    RootNoteWrite,
    GetContract(i64),
    QueryContractServices,
    QueryContractServiceUnits,
    CreateAdjustment,
}

impl Route {
    fn parse(method: &Method, rest: &[String]) -> Option<Route> {
        let get = *method == Method::GET;
        let post = *method == Method::POST;
        let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
        let id = |s: &str| s.parse::<i64>().ok();
        Some(match segs.as_slice() {
            ["contracts", n] if get => Route::GetContract(id(n)?),
            ["contractservices", "query"] if post => Route::QueryContractServices,
            ["contractserviceunits", "query"] if post => Route::QueryContractServiceUnits,
            ["contractserviceadjustments"] if post => Route::CreateAdjustment,
            ["thresholdinformation"] if get => Route::Threshold,
            [e, "entityinformation"] if get => Route::EntityInfo(Entity::from_segment(e)?),
            [e, "entityinformation", "fields"] if get => Route::EntityFields(Entity::from_segment(e)?),
            [e, "entityinformation", "userdefinedfields"] if get => Route::EntityUdfs(Entity::from_segment(e)?),
            [e, "query"] if post => Route::Query(Entity::from_segment(e)?, QuerySource::Body),
            [e, "query"] if get => Route::Query(Entity::from_segment(e)?, QuerySource::Search),
            [e, "query", "next"] if get => Route::Query(Entity::from_segment(e)?, QuerySource::Next),
            [e, "query", "count"] if post => Route::Count(Entity::from_segment(e)?, QuerySource::Body),
            [e, "query", "count"] if get => Route::Count(Entity::from_segment(e)?, QuerySource::Search),
            ["tickets"] if post => Route::CreateTicket,
            ["tickets"] if *method == Method::PATCH => Route::UpdateTicket,
            ["tickets"] if *method == Method::PUT => Route::ReplaceTicket,
            ["ticketnotes"] if post || *method == Method::PATCH || *method == Method::PUT => Route::RootNoteWrite,
            ["tickets", t, "notes"] if post => Route::AddNote(id(t)?),
            ["tickets", t, "notes"] if get => Route::ListNotes(id(t)?),
            ["tickets", t, "notes", n] if get => Route::GetChildNote(id(t)?, id(n)?),
            [e, n] if get => Route::GetOne(Entity::from_segment(e)?, id(n)?),
            _ => return None,
        })
    }

    fn operation(self) -> AutotaskOperation {
        use AutotaskOperation as Op;
        match self {
            Route::CreateTicket | Route::ReplaceTicket => Op::CreateTicket,
            Route::UpdateTicket => Op::UpdateTicket,
            Route::GetOne(Entity::Tickets, _) => Op::GetTicket,
            Route::Query(Entity::Tickets, _) | Route::Count(Entity::Tickets, _) => Op::QueryTickets,
            Route::AddNote(_) | Route::RootNoteWrite => Op::AddNote,
            Route::ListNotes(_) | Route::GetChildNote(..) => Op::QueryNotes,
            Route::GetOne(Entity::TicketNotes, _) | Route::Query(Entity::TicketNotes, _) | Route::Count(Entity::TicketNotes, _) => {
                Op::QueryNotes
            }
            Route::CreateAdjustment => Op::AdjustContract,
            Route::GetContract(_) | Route::QueryContractServices | Route::QueryContractServiceUnits => Op::Billing,
            _ => Op::Lookup,
        }
    }
}

/// What the synchronous first half of the pipeline decided.
enum Prepared {
    Done(Response),
    Run { route: Route, latency: Option<u64> },
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("The request body could not be read: {e}")).into_response(),
    };
    let req = SimRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: bytes,
    };
    tracing::debug!(method = %req.method, path = %req.path, "Autotask simulator request");
    match shared.prepare(&req) {
        Prepared::Done(resp) => resp,
        Prepared::Run { route, latency } => {
            if let Some(ms) = latency {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let (resp, hold) = shared.execute(route, &req);
            if let Some(seconds) = hold {
                tokio::time::sleep(Duration::from_secs(u64::from(seconds))).await;
            }
            resp
        }
    }
}

/// Log labels of requests that never reached an operation (not counted against the threshold).
pub(crate) const LABEL_UNAUTHORIZED: &str = "unauthorized";
pub(crate) const LABEL_THRESHOLD: &str = "threshold_exceeded";
pub(crate) const LABEL_ZONE: &str = "zone_information";
pub(crate) const LABEL_VERSION: &str = "version_information";
pub(crate) const LABEL_UNKNOWN: &str = "unknown_route";

impl Shared {
    fn record(&self, req: &SimRequest, label: &str) {
        self.kit.log.record(req.method.as_str(), &req.path, self.kit.clock.now(), label);
    }

    fn prepare(&self, req: &SimRequest) -> Prepared {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.first() == Some(&"_sim") {
            return Prepared::Done(self.control(req, &segments[1..]));
        }
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        match lower.as_slice() {
            [root, v, zone] if root == "atservicesrest" && v == "v1.0" && zone == "zoneinformation" && req.method == Method::GET => {
                self.record(req, LABEL_ZONE);
                Prepared::Done(self.zone_information(req))
            }
            [root, info] if root == "atservicesrest" && info == "versioninformation" && req.method == Method::GET => {
                self.record(req, LABEL_VERSION);
                Prepared::Done(json_response(StatusCode::OK, &json!({"apiVersions": ["1.0"]})))
            }
            [root, v, rest @ ..] if root == "atservicesrest" && v == "v1.0" => {
                if !self.authenticate(req) {
                    self.record(req, LABEL_UNAUTHORIZED);
                    // Like the real API: 401 without a body.
                    return Prepared::Done(StatusCode::UNAUTHORIZED.into_response());
                }
                if let Some(refusal) = threshold::refusal(self) {
                    self.record(req, LABEL_THRESHOLD);
                    return Prepared::Done(refusal);
                }
                let Some(route) = Route::parse(&req.method, rest) else {
                    self.record(req, LABEL_UNKNOWN);
                    return Prepared::Done(method_not_allowed(req, rest).unwrap_or_else(|| unknown_route(req)));
                };
                let op = route.operation();
                self.record(req, op.name());
                match self.kit.faults.peek(op) {
                    Some(FailureMode::Status(code)) => {
                        self.kit.faults.consume(op);
                        Prepared::Done(injected_failure(code, "before processing").into_response())
                    }
                    Some(FailureMode::Throttle { retry_after }) => {
                        self.kit.faults.consume(op);
                        Prepared::Done(throttled(retry_after))
                    }
                    Some(FailureMode::Latency(ms)) => {
                        self.kit.faults.consume(op);
                        Prepared::Run { route, latency: Some(ms) }
                    }
                    _ => Prepared::Run { route, latency: None },
                }
            }
            _ => {
                self.record(req, LABEL_UNKNOWN);
                Prepared::Done(unknown_route(req))
            }
        }
    }

    /// Does the work; an armed after-commit failure replaces a successful answer.
    fn execute(&self, route: Route, req: &SimRequest) -> (Response, Option<u16>) {
        let result = self.run(route, req);
        match result {
            Err(e) => (e.into_response(), None),
            Ok(resp) => {
                let op = route.operation();
                match self.kit.faults.peek(op) {
                    Some(FailureMode::AfterCommit(code)) => {
                        self.kit.faults.consume(op);
                        (injected_failure(code, "after commit").into_response(), None)
                    }
                    Some(FailureMode::HangAfterCommit(seconds)) => {
                        self.kit.faults.consume(op);
                        (resp, Some(seconds))
                    }
                    _ => (resp, None),
                }
            }
        }
    }

    fn run(&self, route: Route, req: &SimRequest) -> Result<Response, ApiError> {
        match route {
            Route::Threshold => ok(&threshold::information(self)),
            Route::EntityInfo(e) => ok(&picklists::entity_information(e)),
            Route::EntityFields(e) => ok(&picklists::fields_information(self.specs.of(e))),
            Route::EntityUdfs(_) => ok(&json!({"fields": []})),
            Route::CreateTicket => self.create_ticket(req),
            Route::UpdateTicket => self.update_ticket(req),
            Route::ReplaceTicket => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "The simulator does not implement PUT /Tickets (full replace); use PATCH /Tickets.",
            )),
            Route::GetOne(entity, id) => ok(&json!({"item": self.get_one(entity, id)})),
            Route::Query(entity, source) => self.query(entity, source, req, false),
            Route::Count(entity, source) => self.query(entity, source, req, true),
            Route::AddNote(ticket_id) => self.add_note(ticket_id, req),
            Route::ListNotes(ticket_id) => ok(&self.list_notes(ticket_id)),
            Route::GetChildNote(ticket_id, note_id) => ok(&json!({"item": self.child_note(ticket_id, note_id)})),
            Route::GetContract(id) => ok(&json!({"item": self.lock().contracts.get_contract(id)})),
            Route::QueryContractServices => self.lock().contracts.query_services(req),
            Route::QueryContractServiceUnits => self.lock().contracts.query_units(req),
            Route::CreateAdjustment => self.lock().contracts.create_adjustment(req),
            Route::RootNoteWrite => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "TicketNotes cannot be created or updated at the root URL: use POST /V1.0/Tickets/{ticketId}/Notes.",
            )),
        }
    }

    fn control(&self, req: &SimRequest, rest: &[&str]) -> Response {
        if let Some(resp) = self.kit.control(&req.method, rest, &req.body, || *self.lock() = SimState::new()) {
            return resp;
        }
        self.vendor_control(req, rest)
    }
}

/// A path the API serves, with a method it does not: ASP.NET Web API's `405`,
/// `{"Message": "The requested resource does not support http method 'GET'."}` (e.g. `GET
/// /V1.0/Tickets`), as the real API answers.
fn method_not_allowed(req: &SimRequest, rest: &[String]) -> Option<Response> {
    let served = [Method::GET, Method::POST, Method::PATCH, Method::PUT].iter().any(|m| Route::parse(m, rest).is_some());
    served.then(|| {
        json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"Message": format!("The requested resource does not support http method '{}'.", req.method)}),
        )
    })
}

fn unknown_route(req: &SimRequest) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, format!("No HTTP resource was found that matches the request URI '{} {}'.", req.method, req.path))
        .into_response()
}

/// An injected failure: `{"errors": ["simulated failure (...): HTTP 503"]}`.
fn injected_failure(code: u16, when: &str) -> ApiError {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, format!("Simulated failure ({when}): HTTP {}", status.as_u16()))
}

fn throttled(retry_after: u32) -> Response {
    let mut resp =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("Simulated throttling: retry after {retry_after} seconds.")).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}
