//! HTTP plumbing of the Tigerpaw simulator: shared state, routing (case-insensitive paths), the
//! request pipeline (log → authenticate → Content-Length → injected faults → work → after-commit
//! faults) and Tigerpaw's answer shapes (`{"Message"}` for HTTP failures, `{"Success": false,
//! "Message"}` with HTTP 200 for business failures).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::agreements::Agreements;
use super::tables::Tables;
use super::{AuthForm, SimOrder, TigerpawKeys, TigerpawOperation};
use crate::kit::{FailureMode, Kit, Operation};

const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub(crate) const FIRST_ORDER: i64 = 12_345;
pub(crate) const FIRST_NOTE: i64 = 900_001;

/// Everything a request handler needs.
pub(crate) struct Shared {
    pub(crate) keys: TigerpawKeys,
    pub(crate) kit: Kit<TigerpawOperation>,
    state: Mutex<SimState>,
}

/// A stored order: the `TsiWebServiceOrder` members, its notes and its lock.
pub(crate) struct StoredOrder {
    pub(crate) order: Map<String, Value>,
    pub(crate) notes: Vec<Value>,
    pub(crate) locked_by: Option<(i64, String)>,
}

/// The simulated database.
pub(crate) struct SimState {
    pub(crate) auth_form: AuthForm,
    pub(crate) orders: BTreeMap<i64, StoredOrder>,
    pub(crate) tables: Tables,
    pub(crate) agreements: Agreements,
    pub(crate) next_order: i64,
    pub(crate) next_note: i64,
}

impl SimState {
    fn new(auth_form: AuthForm) -> Self {
        SimState {
            auth_form,
            orders: BTreeMap::new(),
            tables: Tables::new(),
            agreements: Agreements::default(),
            next_order: FIRST_ORDER,
            next_note: FIRST_NOTE,
        }
    }
}

impl Shared {
    pub(crate) fn new(keys: TigerpawKeys, form: AuthForm) -> Self {
        Shared { keys, kit: Kit::new(), state: Mutex::new(SimState::new(form)) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reset(&self) {
        self.kit.reset();
        let mut state = self.lock();
        *state = SimState::new(state.auth_form);
    }

    pub(crate) fn snapshot(&self) -> Vec<SimOrder> {
        let state = self.lock();
        state
            .orders
            .iter()
            .map(|(number, stored)| SimOrder {
                number: *number,
                summary: super::orders::summary(*number, stored, &state.tables),
                notes: stored.notes.clone(),
                locked_by: stored.locked_by.as_ref().map(|(_, name)| name.clone()),
            })
            .collect()
    }

    /// Whether the `Authorization` header carries the keys in the accepted form.
    fn authenticate(&self, req: &SimRequest) -> bool {
        let form = self.lock().auth_form;
        let Some((scheme, token)) = req.header("authorization").and_then(|v| v.trim().split_once(' ')) else { return false };
        if !scheme.eq_ignore_ascii_case(form.scheme()) {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else { return false };
        decoded == format!("{}:{}", self.keys.public_key, self.keys.private_key).as_bytes()
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
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a JSON object; anything else is `400`.
    pub(crate) fn object(&self) -> Result<Map<String, Value>, ApiError> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::bad_request("The request body must be a JSON object.")),
            Err(e) => Err(ApiError::bad_request(format!("The request is invalid: {e}"))),
        }
    }
}

/// A failure answered with an HTTP error status and `{"Message"}` (plus ASP.NET's `ModelState`
/// for a refused body).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) model_state: Option<Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), model_state: None }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `400 {"Message": "The request is invalid.", "ModelState": {"model.{field}": [why]}}`.
    pub(crate) fn invalid(problems: Vec<(String, String)>) -> Self {
        let mut state = Map::new();
        for (field, why) in problems {
            state.insert(format!("model.{field}"), json!([why]));
        }
        ApiError { status: StatusCode::BAD_REQUEST, message: "The request is invalid.".into(), model_state: Some(Value::Object(state)) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"Message": self.message});
        if let Some(state) = self.model_state {
            body["ModelState"] = state;
        }
        json_response(self.status, &body)
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// A business failure, answered with HTTP 200: `{…each of `empty`: null, "Success": false,
/// "Message": message}`.
pub(crate) fn failure(empty: &[&str], message: impl Into<String>) -> Value {
    let mut body = json!({"Success": false, "Message": message.into()});
    for member in empty {
        body[*member] = Value::Null;
    }
    body
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    CreateOrder,
    GetOrder(i64),
    UpdateOrder(i64),
    AddNote(i64),
    ListNotes(i64),
    SearchOrders,
    SearchAccounts,
    GetAccount(i64),
    AccountContacts(i64),
    MasterTable(Vec<String>),
    AgreementDetails(i64),
    AgreementCharges(i64),
    /// A write below `/api/agreements` (refused: the REST API reads agreements only).
    AgreementWrite,
}

impl Route {
    pub(crate) fn parse(method: &Method, rest: &[String]) -> Option<Route> {
        let (get, post, put) = (*method == Method::GET, *method == Method::POST, *method == Method::PUT);
        let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
        let n = |s: &str| s.parse::<i64>().ok();
        Some(match segs.as_slice() {
            ["serviceorders"] if post => Route::CreateOrder,
            ["serviceorders", "search"] if post => Route::SearchOrders,
            ["serviceorders", o] if get => Route::GetOrder(n(o)?),
            ["serviceorders", o] if put => Route::UpdateOrder(n(o)?),
            ["serviceorders", o, "notes"] if post => Route::AddNote(n(o)?),
            ["serviceorders", o, "notes"] if get => Route::ListNotes(n(o)?),
            ["accounts", "search"] if post => Route::SearchAccounts,
            ["accounts", a] if get => Route::GetAccount(n(a)?),
            ["contacts", "account", a] if get => Route::AccountContacts(n(a)?),
            ["agreements", a, "details"] if get => Route::AgreementDetails(n(a)?),
            ["agreements", a, "additionalcharges", ..] if get => Route::AgreementCharges(n(a)?),
            ["agreements", ..] if !get => Route::AgreementWrite,
            ["mastertables", table @ ..] if get && !table.is_empty() => {
                Route::MasterTable(table.iter().map(|s| (*s).to_string()).collect())
            }
            _ => return None,
        })
    }

    pub(crate) fn operation(&self) -> TigerpawOperation {
        use TigerpawOperation as Op;
        match self {
            Route::CreateOrder => Op::CreateOrder,
            Route::GetOrder(_) => Op::GetOrder,
            Route::UpdateOrder(_) => Op::UpdateOrder,
            Route::AddNote(_) => Op::AddNote,
            Route::ListNotes(_) => Op::ListNotes,
            Route::SearchOrders => Op::SearchOrders,
            Route::SearchAccounts | Route::GetAccount(_) | Route::AccountContacts(_) | Route::MasterTable(_) => Op::Lookup,
            Route::AgreementDetails(_) | Route::AgreementCharges(_) | Route::AgreementWrite => Op::Agreements,
        }
    }
}

/// What the synchronous first half of the pipeline decided.
pub(crate) enum Prepared {
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
    match shared.prepare(&req) {
        Prepared::Done(resp) => resp,
        Prepared::Run { route, latency } => {
            if let Some(ms) = latency {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let (resp, hold) = shared.execute(&route, &req);
            if let Some(seconds) = hold {
                tokio::time::sleep(Duration::from_secs(u64::from(seconds))).await;
            }
            resp
        }
    }
}

pub(crate) const LABEL_UNAUTHORIZED: &str = "unauthorized";
pub(crate) const LABEL_LENGTH_REQUIRED: &str = "length_required";
pub(crate) const LABEL_UNKNOWN: &str = "unknown_route";

impl Shared {
    fn record(&self, req: &SimRequest, label: &str) {
        self.kit.log.record_with_query(req.method.as_str(), &req.path, &req.query, self.kit.clock.now(), label);
    }

    pub(crate) fn prepare(&self, req: &SimRequest) -> Prepared {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.first() == Some(&"_sim") {
            return Prepared::Done(self.control(req, &segments[1..]));
        }
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let Some(("api", rest)) = lower.split_first().map(|(first, rest)| (first.as_str(), rest)) else {
            self.record(req, LABEL_UNKNOWN);
            return Prepared::Done(unknown_route(req));
        };
        if !self.authenticate(req) {
            self.record(req, LABEL_UNAUTHORIZED);
            return Prepared::Done(
                ApiError::new(StatusCode::UNAUTHORIZED, "Authorization has been denied for this request.").into_response(),
            );
        }
        if (req.method == Method::POST || req.method == Method::PUT) && req.header("content-length").is_none() {
            self.record(req, LABEL_LENGTH_REQUIRED);
            return Prepared::Done(
                ApiError::new(StatusCode::LENGTH_REQUIRED, "Content-Length is required on POST and PUT.").into_response(),
            );
        }
        let Some(route) = Route::parse(&req.method, rest) else {
            self.record(req, LABEL_UNKNOWN);
            return Prepared::Done(unknown_route(req));
        };
        let op = route.operation();
        self.record(req, op.name());
        match self.kit.faults.peek(op) {
            Some(FailureMode::Status(code)) => {
                self.kit.faults.consume(op);
                Prepared::Done(injected(code, "before processing"))
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

    /// Does the work; an armed after-commit failure replaces a successful answer (one whose
    /// body does not say `"Success": false`).
    pub(crate) fn execute(&self, route: &Route, req: &SimRequest) -> (Response, Option<u16>) {
        let (resp, succeeded) = match self.run(route, req) {
            Err(e) => (e.into_response(), false),
            Ok((resp, succeeded)) => (resp, succeeded),
        };
        if !succeeded {
            return (resp, None);
        }
        let op = route.operation();
        match self.kit.faults.peek(op) {
            Some(FailureMode::AfterCommit(code)) => {
                self.kit.faults.consume(op);
                (injected(code, "after commit"), None)
            }
            Some(FailureMode::HangAfterCommit(seconds)) => {
                self.kit.faults.consume(op);
                (resp, Some(seconds))
            }
            _ => (resp, None),
        }
    }

    /// The answer and whether the work succeeded.
    fn run(&self, route: &Route, req: &SimRequest) -> Result<(Response, bool), ApiError> {
        let outcome = match route {
            Route::CreateOrder => self.create_order(req),
            Route::GetOrder(n) => self.get_order(*n),
            Route::UpdateOrder(n) => self.update_order(*n, req),
            Route::AddNote(n) => self.add_note(*n, req),
            Route::ListNotes(n) => self.list_notes(*n),
            Route::SearchOrders => self.search_orders(req),
            Route::SearchAccounts => self.search_accounts(req),
            Route::GetAccount(n) => match self.lock().tables.account_json(*n) {
                Some(account) => Ok(account),
                None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("Account {n} was not found."))),
            },
            Route::AccountContacts(n) => Ok(self.lock().tables.contacts_of(*n)),
            Route::AgreementDetails(n) => self.lock().agreements.details(*n).ok_or_else(|| agreement_not_found(*n)),
            Route::AgreementCharges(n) => self.lock().agreements.charges(*n).ok_or_else(|| agreement_not_found(*n)),
            Route::AgreementWrite => {
                self.lock().agreements.refuse_write();
                Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("The requested resource does not support http method '{}'.", req.method),
                ))
            }
            Route::MasterTable(segments) => {
                let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
                super::tables::master_table(&segments, &self.lock().tables)
                    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("No master table {}.", segments.join("/"))))
            }
        }?;
        let succeeded = outcome.get("Success") != Some(&Value::Bool(false));
        Ok((json_response(StatusCode::OK, &outcome), succeeded))
    }

    fn control(&self, req: &SimRequest, rest: &[&str]) -> Response {
        if let Some(resp) = self.kit.control(&req.method, rest, &req.body, || {
            let mut state = self.lock();
            *state = SimState::new(state.auth_form);
        }) {
            return resp;
        }
        self.vendor_control(req, rest)
    }
}

fn agreement_not_found(number: i64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("Agreement {number} was not found."))
}

fn unknown_route(req: &SimRequest) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, format!("No HTTP resource was found that matches the request URI '{} {}'.", req.method, req.path))
        .into_response()
}

fn injected(code: u16, when: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, format!("Simulated failure ({when}): HTTP {}", status.as_u16())).into_response()
}

fn throttled(retry_after: u32) -> Response {
    let mut resp =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("Simulated throttling: retry after {retry_after} seconds.")).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, auth: Option<String>, body: &str, length: bool) -> SimRequest {
        let mut headers = HeaderMap::new();
        if let Some(auth) = auth.and_then(|a| HeaderValue::from_str(&a).ok()) {
            headers.insert(header::AUTHORIZATION, auth);
        }
        if length && let Ok(len) = HeaderValue::from_str(&body.len().to_string()) {
            headers.insert(header::CONTENT_LENGTH, len);
        }
        SimRequest { method, path: path.into(), query: String::new(), headers, body: Bytes::from(body.to_string()) }
    }

    fn status_of(prepared: Prepared) -> Option<StatusCode> {
        match prepared {
            Prepared::Done(resp) => Some(resp.status()),
            Prepared::Run { .. } => None,
        }
    }

    #[test]
    fn only_the_configured_authorization_form_is_accepted() {
        let shared = Shared::new(TigerpawKeys::sample(), AuthForm::Basic);
        let keys = TigerpawKeys::sample();
        let get = |auth: Option<String>| status_of(shared.prepare(&request(Method::GET, "/api/mastertables/priorities", auth, "", false)));
        assert_eq!(get(Some(keys.header(AuthForm::Tsi))), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(get(None), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(get(Some(keys.header(AuthForm::Basic))), None, "runs");
        let wrong = TigerpawKeys { private_key: "wrong".into(), ..keys.clone() };
        assert_eq!(get(Some(wrong.header(AuthForm::Basic))), Some(StatusCode::UNAUTHORIZED));
        shared.lock().auth_form = AuthForm::Tsi;
        assert_eq!(get(Some(keys.header(AuthForm::Tsi))), None);
    }

    #[test]
    fn a_post_without_content_length_is_refused_with_411() {
        let shared = Shared::new(TigerpawKeys::sample(), AuthForm::Tsi);
        let auth = Some(TigerpawKeys::sample().header(AuthForm::Tsi));
        let body = r#"{"AccountNumber":1053145,"BriefDescription":"x"}"#;
        let without = shared.prepare(&request(Method::POST, "/api/ServiceOrders", auth.clone(), body, false));
        assert_eq!(status_of(without), Some(StatusCode::LENGTH_REQUIRED));
        assert_eq!(status_of(shared.prepare(&request(Method::POST, "/api/ServiceOrders", auth, body, true))), None);
    }

    #[test]
    fn routes_are_matched_case_insensitively() {
        let rest = |p: &str| p.split('/').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(Route::parse(&Method::POST, &rest("serviceorders")), Some(Route::CreateOrder));
        assert_eq!(Route::parse(&Method::PUT, &rest("serviceorders/12")), Some(Route::UpdateOrder(12)));
        assert_eq!(Route::parse(&Method::GET, &rest("serviceorders/12/notes")), Some(Route::ListNotes(12)));
        assert_eq!(Route::parse(&Method::DELETE, &rest("serviceorders/12")), None);
        assert_eq!(Route::parse(&Method::GET, &rest("serviceorders/abc")), None);
    }
}
