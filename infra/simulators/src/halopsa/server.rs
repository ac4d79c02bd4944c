//! HTTP plumbing of the HaloPSA simulator: shared state, routing (case-insensitive paths), the
//! request pipeline (log with query → token check → injected faults → work → after-commit
//! faults), `record_count` paging and Halo's error shapes (`400` keyed by field).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;

use super::directory::{self, Directory};
use super::recurring::RecurringInvoices;
use super::{HaloOperation, HaloSimConfig, SCHEMA_JSON, SimTicket};
use crate::kit::{FailureMode, Kit, Operation};
use crate::openapi_validate::SchemaSet;

const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub(crate) const FIRST_TICKET_ID: i64 = 1001;
pub(crate) const FIRST_ACTION_ID: i64 = 5001;
/// `page_size` when a paged request names none.
const DEFAULT_PAGE_SIZE: usize = 50;

/// The embedded schema subset, parsed once per process.
pub(crate) fn schemas() -> Result<&'static SchemaSet, String> {
    static SCHEMAS: OnceLock<Result<SchemaSet, String>> = OnceLock::new();
    SCHEMAS.get_or_init(|| SchemaSet::from_openapi_json(SCHEMA_JSON)).as_ref().map_err(Clone::clone)
}

/// Everything a request handler needs.
pub(crate) struct Shared {
    pub(crate) config: HaloSimConfig,
    pub(crate) schemas: &'static SchemaSet,
    pub(crate) kit: Kit<HaloOperation>,
    state: Mutex<SimState>,
}

/// The simulated instance's data.
pub(crate) struct SimState {
    pub(crate) tickets: BTreeMap<i64, Map<String, Value>>,
    pub(crate) actions: BTreeMap<i64, Map<String, Value>>,
    pub(crate) directory: Directory,
    pub(crate) recurring: RecurringInvoices,
    /// Issued tokens and when they expire (simulator clock).
    pub(crate) tokens: HashMap<String, DateTime<Utc>>,
    pub(crate) next_ticket_id: i64,
    pub(crate) next_action_id: i64,
}

impl SimState {
    fn new() -> Self {
        SimState {
            tickets: BTreeMap::new(),
            actions: BTreeMap::new(),
            directory: Directory::new(),
            recurring: RecurringInvoices::default(),
            tokens: HashMap::new(),
            next_ticket_id: FIRST_TICKET_ID,
            next_action_id: FIRST_ACTION_ID,
        }
    }
}

impl Shared {
    pub(crate) fn new(config: HaloSimConfig, schemas: &'static SchemaSet) -> Self {
        Shared { config, schemas, kit: Kit::new(), state: Mutex::new(SimState::new()) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reset(&self) {
        self.kit.reset();
        *self.lock() = SimState::new();
    }

    /// Every stored ticket with its actions.
    pub(crate) fn snapshot(&self) -> Vec<SimTicket> {
        let state = self.lock();
        state
            .tickets
            .iter()
            .map(|(id, t)| SimTicket {
                id: *id,
                item: Value::Object(t.clone()),
                actions: state.actions.values().filter(|a| a["ticket_id"].as_i64() == Some(*id)).map(|a| action_view(a, true)).collect(),
            })
            .collect()
    }
}

/// An action as `GET /api/Actions` lists it: `note` always (plain text), `note_html` only when
/// asked for.
pub(crate) fn action_view(action: &Map<String, Value>, with_html: bool) -> Value {
    let mut view = action.clone();
    let html = action.get("note_html").and_then(Value::as_str).map(str::to_owned);
    if action.get("note").and_then(Value::as_str).is_none_or(str::is_empty) {
        view.insert("note".into(), json!(html.as_deref().map(strip_html).unwrap_or_default()));
    }
    if !with_html {
        view.remove("note_html");
    }
    Value::Object(view)
}

/// HTML as plain text: `<br>` and `</p>` become line breaks, other tags go, entities are read.
pub(crate) fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        if tag.starts_with("br") || tag == "/p" {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let text = out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&nbsp;", " ");
    text.replace("&amp;", "&").replace("\n\n", "\n")
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
    /// A query parameter (name case-insensitive), decoded.
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.into_owned())
    }

    /// A boolean query parameter (`true`, case-insensitive).
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.param(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// An integer query parameter; a present but unreadable one is an error.
    pub(crate) fn number(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.param(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ApiError::field(name, format!("The value '{v}' is not valid."))),
        }
    }
}

/// A Halo failure: a status and a JSON body (an object keyed by field for `400`).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl ApiError {
    /// `400 {field: message}`.
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, body: json!({ field: message.into() }) }
    }

    /// `400` with several fields.
    pub(crate) fn fields(errors: Map<String, Value>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, body: Value::Object(errors) }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, body: json!(message.into()) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
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

/// `{"record_count": N, plural: items}`, one page of them with `pageinate=true`.
pub(crate) fn paged(req: &SimRequest, plural: &str, items: Vec<Value>) -> Result<Response, ApiError> {
    let total = items.len();
    let page: Vec<Value> = if req.flag("pageinate") {
        let size = req.number("page_size")?.map_or(DEFAULT_PAGE_SIZE, |n| usize::try_from(n).unwrap_or(0)).max(1);
        let number = req.number("page_no")?.map_or(1, |n| usize::try_from(n).unwrap_or(0)).max(1);
        items.into_iter().skip((number - 1).saturating_mul(size)).take(size).collect()
    } else {
        items
    };
    ok(&json!({"record_count": total, plural: page}))
}

/// A route the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Token,
    PostTickets,
    ListTickets,
    GetTicket(i64),
    DeleteTicket(i64),
    PostActions,
    ListActions,
    Clients,
    Users,
    Teams,
    Sites,
    Agents,
    Priorities,
    Statuses,
    TicketTypes,
    Outcomes,
    GetRecurringInvoice(i64),
    ListRecurringInvoices,
    PostRecurringInvoices,
}

impl Route {
    fn parse(method: &Method, lower: &[String]) -> Option<Route> {
        let segments: Vec<&str> = lower.iter().map(String::as_str).collect();
        let get = method == Method::GET;
        let post = method == Method::POST;
        Some(match segments.as_slice() {
            ["auth", "token"] if post => Route::Token,
            ["api", "tickets"] if post => Route::PostTickets,
            ["api", "tickets"] if get => Route::ListTickets,
            ["api", "tickets", id] if get => Route::GetTicket(id.parse().ok()?),
            ["api", "tickets", id] if method == Method::DELETE => Route::DeleteTicket(id.parse().ok()?),
            ["api", "actions"] if post => Route::PostActions,
            ["api", "actions"] if get => Route::ListActions,
            ["api", "client"] if get => Route::Clients,
            ["api", "users"] if get => Route::Users,
            ["api", "team"] if get => Route::Teams,
            ["api", "site"] if get => Route::Sites,
            ["api", "agent"] if get => Route::Agents,
            ["api", "priority"] if get => Route::Priorities,
            ["api", "status"] if get => Route::Statuses,
            ["api", "tickettype"] if get => Route::TicketTypes,
            ["api", "outcome"] if get => Route::Outcomes,
            ["api", "recurringinvoice"] if get => Route::ListRecurringInvoices,
            ["api", "recurringinvoice"] if post => Route::PostRecurringInvoices,
            ["api", "recurringinvoice", id] if get => Route::GetRecurringInvoice(id.parse().ok()?),
            _ => return None,
        })
    }

    fn operation(self) -> HaloOperation {
        match self {
            Route::Token => HaloOperation::Token,
            Route::PostTickets => HaloOperation::PostTickets,
            Route::ListTickets => HaloOperation::ListTickets,
            Route::GetTicket(_) => HaloOperation::GetTicket,
            Route::DeleteTicket(_) => HaloOperation::DeleteTicket,
            Route::PostActions => HaloOperation::PostActions,
            Route::ListActions => HaloOperation::ListActions,
            Route::GetRecurringInvoice(_) | Route::ListRecurringInvoices => HaloOperation::ReadRecurringInvoices,
            Route::PostRecurringInvoices => HaloOperation::PostRecurringInvoices,
            _ => HaloOperation::Lookup,
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
        Err(e) => return ApiError::field("body", format!("The request body could not be read: {e}")).into_response(),
    };
    let req = SimRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: bytes,
    };
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

/// Log labels of requests that never reached an operation.
pub(crate) const LABEL_UNAUTHORIZED: &str = "unauthorized";
pub(crate) const LABEL_UNKNOWN: &str = "unknown_route";

impl Shared {
    fn record(&self, req: &SimRequest, label: &str) {
        self.kit.log.record_with_query(req.method.as_str(), &req.path, &req.query, self.kit.clock.now(), label);
    }

    fn prepare(&self, req: &SimRequest) -> Prepared {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.first() == Some(&"_sim") {
            return Prepared::Done(self.control(req, &segments[1..]));
        }
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let Some(route) = Route::parse(&req.method, &lower) else {
            self.record(req, LABEL_UNKNOWN);
            return Prepared::Done(ApiError::not_found(format!("No route {} {}", req.method, req.path)).into_response());
        };
        if route != Route::Token && !self.authenticate(req) {
            self.record(req, LABEL_UNAUTHORIZED);
            return Prepared::Done(StatusCode::UNAUTHORIZED.into_response());
        }
        let op = route.operation();
        self.record(req, op.name());
        match self.kit.faults.peek(op) {
            Some(FailureMode::Status(code)) => {
                self.kit.faults.consume(op);
                Prepared::Done(injected_failure(code, "before processing"))
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

    /// Does the work; an armed after-commit failure replaces a successful answer.
    fn execute(&self, route: Route, req: &SimRequest) -> (Response, Option<u16>) {
        match self.run(route, req) {
            Err(e) => (e.into_response(), None),
            Ok(resp) if !resp.status().is_success() => (resp, None),
            Ok(resp) => {
                let op = route.operation();
                match self.kit.faults.peek(op) {
                    Some(FailureMode::AfterCommit(code)) => {
                        self.kit.faults.consume(op);
                        (injected_failure(code, "after commit"), None)
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
            Route::Token => Ok(self.token(req)),
            Route::PostTickets => self.post_tickets(req),
            Route::ListTickets => self.list_tickets(req),
            Route::GetTicket(id) => self.get_ticket(id),
            Route::DeleteTicket(id) => self.delete_ticket(id).map(|()| StatusCode::OK.into_response()).map_err(ApiError::not_found),
            Route::PostActions => self.post_actions(req),
            Route::ListActions => self.list_actions(req),
            Route::GetRecurringInvoice(id) => self.get_recurring_invoice(id),
            Route::ListRecurringInvoices => self.list_recurring_invoices(req),
            Route::PostRecurringInvoices => self.post_recurring_invoices(req),
            Route::Clients => {
                let search = req.param("search").filter(|s| !s.trim().is_empty());
                let clients = directory::clients(&self.lock().directory, search.as_deref(), req.flag("includeinactive"));
                paged(req, "clients", clients)
            }
            Route::Users => {
                let client = req.number("client_id")?;
                let search = req.param("search").filter(|s| !s.trim().is_empty());
                let users = directory::users(&self.lock().directory, client, search.as_deref());
                paged(req, "users", users)
            }
            Route::Teams => ok(&json!(self.lock().directory.teams)),
            Route::Sites => {
                let client = req.number("client_id")?;
                let sites: Vec<Value> = self
                    .lock()
                    .directory
                    .sites
                    .iter()
                    .filter(|s| client.is_none_or(|c| s["client_id"].as_i64() == Some(c)))
                    .cloned()
                    .collect();
                paged(req, "sites", sites)
            }
            Route::Agents => ok(&json!(self.lock().directory.agents)),
            Route::Priorities => ok(&json!(self.lock().directory.priorities)),
            Route::Statuses => ok(&json!(self.lock().directory.statuses)),
            Route::TicketTypes => ok(&json!(self.lock().directory.ticket_types)),
            Route::Outcomes => ok(&json!(self.lock().directory.outcomes)),
        }
    }

    fn control(&self, req: &SimRequest, rest: &[&str]) -> Response {
        if let Some(resp) = self.kit.control(&req.method, rest, &req.body, || *self.lock() = SimState::new()) {
            return resp;
        }
        self.vendor_control(req, rest)
    }
}

/// An injected failure: `"Simulated failure (…): HTTP 503"`.
fn injected_failure(code: u16, when: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &json!(format!("Simulated failure ({when}): HTTP {}", status.as_u16())))
}

fn throttled(retry_after: u32) -> Response {
    let mut resp =
        json_response(StatusCode::TOO_MANY_REQUESTS, &json!(format!("Simulated throttling: retry after {retry_after} seconds.")));
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_read_back_as_text() {
        assert_eq!(strip_html("a &lt;b&gt;<br>\n[m] &amp;amp;"), "a <b>\n[m] &amp;");
        assert_eq!(strip_html("<p>one</p><p>two</p>"), "one\ntwo\n");
    }

    #[test]
    fn the_embedded_schema_has_the_entities_the_simulator_validates() {
        let schemas = schemas().unwrap_or_else(|e| panic!("{e}"));
        assert!(schemas.contains("Faults") && schemas.contains("Actions"));
        assert!(schemas.validate("Faults", &json!({"summary": "x", "client_id": 12, "supplier_reference": "vigil:a"})).is_empty());
        assert!(!schemas.validate("Faults", &json!({"summary": 5})).is_empty(), "types are checked");
        assert!(!schemas.validate("Faults", &json!({"externalid": "x"})).is_empty(), "unknown members are refused");
    }
}
