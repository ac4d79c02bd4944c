//! HTTP plumbing: the axum entry point, the request type, ConnectWise's error shapes, routing
//! of API paths to operations, and armed-failure handling around each operation.

use std::sync::Arc;

use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::agreements::AgreementRoute;
use super::callbacks::CallbackRoute;
use super::lookups::LookupRoute;
use super::tickets::{public_tickets, ticket_not_found};
use super::{API_VERSION, FailureMode, HANG_HEADER, MAX_BODY_BYTES, Shared, SimOperation, SimState};
use crate::kit::Operation;
use crate::openapi_validate::{Violation, ViolationCode};

pub(super) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
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

pub(super) struct SimRequest {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

impl SimRequest {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        // HeaderMap lookups are case-insensitive (names are normalised to lower case).
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query parameters, names matched case-insensitively (ASP.NET model binding does).
    pub(super) fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.into_owned())
    }
}

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// An error answer: a status and a ConnectWise-style JSON body. (Kept small so `Result`s
/// carrying it stay cheap; it becomes a [`Response`] at the edge.)
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// ConnectWise's error shape: `{"code": "...", "message": "..."}`.
pub(super) fn cw_error(status: StatusCode, code: &str, message: &str) -> ApiError {
    ApiError { status, body: json!({"code": code, "message": message}) }
}

pub(super) fn not_found(message: &str) -> ApiError {
    cw_error(StatusCode::NOT_FOUND, "NotFound", message)
}

/// One entry of an `InvalidObject` answer's `errors` list.
#[derive(Debug, Clone)]
pub(super) struct FieldError {
    pub(super) field: String,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl From<&Violation> for FieldError {
    fn from(v: &Violation) -> Self {
        FieldError { field: v.field.clone(), code: v.code.as_str(), message: v.message.clone() }
    }
}

/// A reference (`company`, `board`, `status`, …) that names nothing usable. The per-error code
/// `InvalidObject` is what the live API answers for an unrecognised callback `level` (seen in a
/// public client's recorded response); for ticket references it is unconfirmed.
pub(super) fn reference_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_string(), code: "InvalidObject", message: message.into() }
}

/// ConnectWise's validation failure: `400 {"code":"InvalidObject","message":"ticket object is
/// invalid","errors":[{"code","message","resource","field"}]}`.
pub(super) fn invalid_object(resource: &str, violations: &[Violation]) -> ApiError {
    invalid_object_errors(resource, &violations.iter().map(FieldError::from).collect::<Vec<_>>())
}

/// [`invalid_object`] for errors that are not all schema violations.
pub(super) fn invalid_object_errors(resource: &str, errors: &[FieldError]) -> ApiError {
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({
                "code": e.code,
                "message": e.message,
                "resource": resource,
                "field": e.field,
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

pub(super) fn bad_request(message: &str) -> ApiError {
    cw_error(StatusCode::BAD_REQUEST, "InvalidObject", message)
}

pub(super) fn violation(field: &str, code: ViolationCode, message: impl Into<String>) -> Violation {
    Violation { field: field.to_string(), code, message: message.into() }
}

pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn status_from_u16(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Body of an injected error status, e.g. `{"code":"InternalServerError","message":...}`.
/// An injected failure. A 5xx has the live server-exception shape,
/// `{"code":"ConnectWiseApi","message":"…","errors":null}`.
pub(super) fn injected_failure(status: StatusCode, when: &str) -> ApiError {
    let message = format!("simulated failure ({when}): HTTP {}", status.as_u16());
    if status.is_server_error() {
        return ApiError { status, body: json!({"code": "ConnectWiseApi", "message": message, "errors": null}) };
    }
    let code: String = status.canonical_reason().unwrap_or("Error").chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    cw_error(status, &code, &message)
}

/// What the live server (IIS) answers for a path no API route matches: an HTML page, not JSON.
pub(super) fn html_not_found(path: &str) -> Response {
    let path = path.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>404 - File or directory not found.</title></head>\n<body><div id=\"header\"><h1>Server Error</h1></div>\n<div id=\"content\"><h2>404 - File or directory not found.</h2>\n<h3>The resource you are looking for ({path}) might have been removed, had its name changed, or is temporarily unavailable.</h3></div></body></html>\n"
    );
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

pub(super) fn throttled() -> Response {
    let mut resp =
        cw_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "simulated throttling: too many requests, retry after 1 second")
            .into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Parses a JSON request body, answering CW-style errors for a wrong content type, an empty
/// body or malformed JSON.
pub(super) fn parse_json_body(req: &SimRequest, resource: &str) -> Result<Value, ApiError> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    SystemInfo,
    Lookup(LookupRoute),
    Callback(CallbackRoute),
    Agreement(AgreementRoute),
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
    pub(super) fn parse(method: &Method, segments: &[&str]) -> Option<Route> {
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let segs: Vec<&str> = lower.iter().map(String::as_str).collect();
        let id = |i: usize| segments.get(i).and_then(|s| s.parse::<i64>().ok());
        let get = method == Method::GET;
        let post = method == Method::POST;
        let lookup = |l: LookupRoute| if get { Some(Route::Lookup(l)) } else { None };
        Some(match segs.as_slice() {
            ["system", "info"] if get => Route::SystemInfo,
            ["system", "callbacks"] if get => Route::Callback(CallbackRoute::List),
            ["system", "callbacks"] if post => Route::Callback(CallbackRoute::Create),
            ["system", "callbacks", _] if get => Route::Callback(CallbackRoute::Get(id(2)?)),
            ["system", "callbacks", _] if method == Method::DELETE => Route::Callback(CallbackRoute::Delete(id(2)?)),
            ["service", "boards"] => lookup(LookupRoute::Boards)?,
            ["service", "boards", _] => lookup(LookupRoute::Board(id(2)?))?,
            ["service", "boards", _, "statuses"] => lookup(LookupRoute::BoardStatuses(id(2)?))?,
            ["service", "boards", _, "statuses", _] => lookup(LookupRoute::BoardStatus(id(2)?, id(4)?))?,
            ["service", "boards", _, "types"] => lookup(LookupRoute::BoardTypes(id(2)?))?,
            ["service", "priorities"] => lookup(LookupRoute::Priorities)?,
            ["service", "priorities", _] => lookup(LookupRoute::Priority(id(2)?))?,
            ["company", "companies"] => lookup(LookupRoute::Companies { count: false })?,
            ["company", "companies", "count"] => lookup(LookupRoute::Companies { count: true })?,
            ["company", "companies", _] => lookup(LookupRoute::Company(id(2)?))?,
            ["company", "contacts"] => lookup(LookupRoute::Contacts { count: false })?,
            ["company", "contacts", "count"] => lookup(LookupRoute::Contacts { count: true })?,
            ["company", "contacts", _] => lookup(LookupRoute::Contact(id(2)?))?,
            ["finance", "agreements", _] if get => Route::Agreement(AgreementRoute::Agreement(id(2)?)),
            ["finance", "agreements", _, "additions"] if get => {
                Route::Agreement(AgreementRoute::Additions { agreement: id(2)?, count: false })
            }
            ["finance", "agreements", _, "additions", "count"] if get => {
                Route::Agreement(AgreementRoute::Additions { agreement: id(2)?, count: true })
            }
            ["finance", "agreements", _, "additions"] if post => Route::Agreement(AgreementRoute::AddAddition(id(2)?)),
            ["finance", "agreements", _, "additions", _] if get => Route::Agreement(AgreementRoute::Addition(id(2)?, id(4)?)),
            ["finance", "agreements", _, "additions", _] if method == Method::PATCH => {
                Route::Agreement(AgreementRoute::PatchAddition(id(2)?, id(4)?))
            }
            ["procurement", "catalog"] if get => Route::Agreement(AgreementRoute::Catalog { count: false }),
            ["procurement", "catalog", "count"] if get => Route::Agreement(AgreementRoute::Catalog { count: true }),
            ["procurement", "catalog", _] if get => Route::Agreement(AgreementRoute::CatalogItem(id(2)?)),
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

    pub(super) fn operation(self) -> SimOperation {
        match self {
            Route::SystemInfo | Route::Lookup(_) => SimOperation::Lookup,
            Route::Callback(_) => SimOperation::Callbacks,
            Route::Agreement(a) if a.writes() => SimOperation::WriteAddition,
            Route::Agreement(_) => SimOperation::ReadAgreements,
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
    pub(super) fn dispatch(&self, req: &SimRequest) -> Response {
        let trimmed = req.path.trim_start_matches('/').trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.first() == Some(&"_sim") {
            return self.control(req, &segments[1..]);
        }
        match segments.as_slice() {
            [login, info, company]
                if login.eq_ignore_ascii_case("login") && info.eq_ignore_ascii_case("companyinfo") && req.method == Method::GET =>
            {
                self.record(req, "company_info");
                return self.company_info(company);
            }
            [codebase, rest @ ..]
                if codebase.starts_with('v')
                    && req.method == Method::GET
                    && rest.iter().filter(|s| !s.is_empty()).map(|s| s.to_ascii_lowercase()).eq([
                        "system",
                        "callbackkey",
                        "index.rails",
                    ]) =>
            {
                self.record(req, "callback_key");
                return self.callback_key(req);
            }
            [codebase, apis, version, rest @ ..] if codebase.starts_with('v') && apis.eq_ignore_ascii_case("apis") && *version == "3.0" => {
                let mut resp = self.api(req, rest);
                resp.headers_mut().insert(HeaderName::from_static("api-current-version"), HeaderValue::from_static(API_VERSION));
                return resp;
            }
            _ => {}
        }
        self.record(req, "unrouted");
        html_not_found(&req.path)
    }

    /// Logs a request (control endpoints are never logged) in the kit's request log.
    fn record(&self, req: &SimRequest, operation: &str) {
        self.kit.log.record(req.method.as_str(), &req.path, self.kit.clock.now(), operation);
    }

    pub(super) fn api(&self, req: &SimRequest, rest: &[&str]) -> Response {
        let route = Route::parse(&req.method, rest);
        self.record(req, route.map_or("unrouted", |r| r.operation().name()));
        if let Err(e) = self.authenticate(req) {
            return e.into_response();
        }
        let Some(route) = route else {
            return html_not_found(&req.path);
        };

        // The state lock is held from the peek to the consume, and every consumer holds it: the
        // failure consumed is the one peeked (arming only appends).
        let mut state = self.lock();
        let op = route.operation();
        let armed = self.kit.faults.peek(op);
        match armed {
            Some(FailureMode::Status(code)) => {
                self.kit.faults.consume(op);
                return injected_failure(status_from_u16(code), "before processing").into_response();
            }
            Some(FailureMode::Throttle) => {
                self.kit.faults.consume(op);
                return throttled();
            }
            Some(FailureMode::AfterCommit(_) | FailureMode::HangAfterCommit(_)) | None => {}
        }
        let resp = self.execute(&mut state, route, req);
        match armed {
            Some(FailureMode::AfterCommit(code)) if resp.status().is_success() => {
                self.kit.faults.consume(op);
                injected_failure(status_from_u16(code), "after commit").into_response()
            }
            Some(FailureMode::HangAfterCommit(seconds)) if resp.status().is_success() => {
                self.kit.faults.consume(op);
                let mut resp = resp;
                resp.headers_mut().insert(HeaderName::from_static(HANG_HEADER), HeaderValue::from(seconds));
                resp
            }
            _ => resp,
        }
    }

    pub(super) fn execute(&self, state: &mut SimState, route: Route, req: &SimRequest) -> Response {
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
            Route::Lookup(lookup) => self.lookup(state, lookup, req),
            Route::Callback(callback) => self.callback_route(state, callback, req),
            Route::Agreement(agreement) => self.agreement_route(state, agreement, req),
            Route::ListTickets => self.list(req, "Ticket", public_tickets(state), false),
            Route::CountTickets => self.list(req, "Ticket", public_tickets(state), true),
            Route::CreateTicket => self.create_ticket(state, req),
            Route::GetTicket(id) => match state.tickets.get(&id) {
                Some(t) => self.single(req, "Ticket", self.full_ticket(state, &t.body)),
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
}
