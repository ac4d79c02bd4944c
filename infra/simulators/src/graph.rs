//! Microsoft Graph security alerts for the Microsoft 365 simulator:
//! `GET {base}/graph/v1.0/security/alerts_v2` (the `graph.microsoft.com` role), following
//! `/work/shared/reference/microsoft-apis.md` section 5.
//!
//! * Graph has no tenant in its URLs: the bearer token decides whose alerts are listed. It must be
//!   a token the simulator issued for a Graph audience (`https://graph.microsoft.com`, the US
//!   government hosts, the Graph app id `00000003-0000-0000-c000-000000000000`, or the simulator's
//!   own `{base}/graph`), not expired, for a registered tenant; otherwise `401`
//!   `InvalidAuthenticationToken`. A Management API token is refused like any other wrong audience.
//! * The token must carry the `SecurityAlert.Read.All` app role, decided when the token is issued
//!   (like the real `roles` claim): without it `403` `Forbidden`.
//! * `$filter`: `and`-joined comparisons on `lastUpdateDateTime` / `createdDateTime` (`ge`, `gt`,
//!   `le`, `lt`, `eq`, `ne`, against an unquoted ISO-8601 literal) and on `severity`, `status`,
//!   `serviceSource`, `classification`, `determination`, `assignedTo` (`eq`, `ne`, against a
//!   quoted string or `null`). Anything else is `400` `BadRequest`, as is a quoted date.
//! * `$orderby`: `lastUpdateDateTime` with `asc` (the default direction) or `desc`; without it
//!   the most recently updated alerts come first (the documented order). Anything else is `400`.
//! * `$top` is the page size, capped by the simulator's page size. A page with more behind it
//!   has an absolute `@odata.nextLink` repeating the query with a `$skiptoken`. Paging is keyset
//!   paging on (`lastUpdateDateTime`, update sequence), so an alert updated while a client pages
//!   in ascending order shows up again, later, with its new time. A nextLink whose `$filter`,
//!   `$orderby` or `$top` was changed, or whose skip token is unknown or another tenant's, is `400`.
//!
//! Failure injection ([`crate::m365::M365Operation::GraphAlerts`]): `Throttle` answers `429`
//! `TooManyRequests` and `ThrottleForbidden` `503` `serviceNotAvailable`, both with
//! `Retry-After: 1`; `ThrottleFractional` answers the `429` with `Retry-After: 0.249` and
//! `ThrottleWithoutRetryAfter` with no `Retry-After` at all; `ServerError` answers `500`
//! `generalException`.

use std::collections::{HashMap, HashSet};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use url::Url;

use crate::m365::M365Failure;

/// The application permission alerts_v2 requires.
pub(crate) const ALERTS_ROLE: &str = "SecurityAlert.Read.All";
/// App id of the Microsoft Graph resource principal (a valid token audience).
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Graph roots of the public and US government clouds (and China), as token audiences.
const GRAPH_HOSTS: [&str; 4] = ["graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"];
/// The collection's path below the simulator's base URL.
const ALERTS_PATH: &str = "/v1.0/security/alerts_v2";
/// String properties `$filter` accepts (the documented list, minus the two dates).
const STRING_PROPERTIES: [&str; 6] = ["severity", "status", "serviceSource", "classification", "determination", "assignedTo"];
const DATE_PROPERTIES: [&str; 2] = ["lastUpdateDateTime", "createdDateTime"];

/// Whether a token audience (v2 scope resource or v1 `resource`) designates Microsoft Graph.
/// `sim_port` is the simulator's own port: `http://<any host>:<port>/graph` is its Graph root.
pub(crate) fn is_graph_audience(audience: &str, sim_port: Option<u16>) -> bool {
    let aud = audience.trim_end_matches('/');
    if aud.eq_ignore_ascii_case(GRAPH_APP_ID) {
        return true;
    }
    let Ok(url) = Url::parse(aud) else {
        return false;
    };
    match url.scheme() {
        "https" => url.path() == "/" && url.host_str().is_some_and(|h| GRAPH_HOSTS.iter().any(|g| h.eq_ignore_ascii_case(g))),
        "http" => url.port().is_some() && url.port() == sim_port && url.path() == "/graph",
        _ => false,
    }
}

/// What the Graph handler needs to know about the bearer token the request carried.
pub(crate) struct Caller {
    /// Lower-cased tenant of the token (`tid`).
    pub(crate) tenant: String,
    pub(crate) audience: String,
    pub(crate) expires: DateTime<Utc>,
    /// Whether the token carries [`ALERTS_ROLE`].
    pub(crate) has_role: bool,
    /// Whether the token's tenant is (still) registered.
    pub(crate) tenant_exists: bool,
}

/// The simulator's Graph state; lives in the M365 simulator's state, behind its lock.
#[derive(Default)]
pub(crate) struct GraphState {
    /// Alerts by lower-cased tenant id.
    alerts: HashMap<String, Vec<StoredAlert>>,
    /// Tenants where `SecurityAlert.Read.All` is not consented (default: consented).
    denied: HashSet<String>,
    /// Open `$skiptoken`s.
    pages: HashMap<String, Cursor>,
    /// Insert/update sequence (ties on `lastUpdateDateTime` are broken by it).
    seq: u64,
}

struct StoredAlert {
    seq: u64,
    id: String,
    updated: DateTime<Utc>,
    alert: Value,
}

/// A listing in progress.
struct Cursor {
    tenant: String,
    query: Query,
    /// `(lastUpdateDateTime, seq)` of the last alert already returned.
    after: (DateTime<Utc>, u64),
}

/// The validated query options of a listing.
#[derive(Clone, PartialEq)]
struct Query {
    /// Raw (decoded) option values, repeated verbatim in the nextLink.
    filter_text: Option<String>,
    orderby_text: Option<String>,
    top_text: Option<String>,
    clauses: Vec<Clause>,
    descending: bool,
    top: Option<usize>,
}

#[derive(Clone, PartialEq)]
enum Clause {
    Date { property: &'static str, op: CmpOp, value: DateTime<Utc> },
    Text { property: &'static str, equal: bool, value: Option<String> },
}

#[derive(Clone, Copy, PartialEq)]
enum CmpOp {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl CmpOp {
    fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "ge" => Self::Ge,
            "gt" => Self::Gt,
            "le" => Self::Le,
            "lt" => Self::Lt,
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            _ => return None,
        })
    }

    fn holds(self, left: DateTime<Utc>, right: DateTime<Utc>) -> bool {
        match self {
            Self::Ge => left >= right,
            Self::Gt => left > right,
            Self::Le => left <= right,
            Self::Lt => left < right,
            Self::Eq => left == right,
            Self::Ne => left != right,
        }
    }
}

impl Clause {
    fn matches(&self, alert: &Value) -> bool {
        match self {
            Self::Date { property, op, value } => {
                alert.get(*property).and_then(Value::as_str).and_then(parse_time).is_some_and(|at| op.holds(at, *value))
            }
            Self::Text { property, equal, value } => {
                let actual = alert.get(*property).and_then(Value::as_str);
                (actual == value.as_deref()) == *equal
            }
        }
    }
}

impl GraphState {
    /// Whether the tenant's app has `SecurityAlert.Read.All` (checked when a Graph token is issued).
    pub(crate) fn role_granted(&self, tenant_key: &str) -> bool {
        !self.denied.contains(tenant_key)
    }

    pub(crate) fn set_role(&mut self, tenant_id: &str, granted: bool) {
        set_tenant(&mut self.denied, tenant_id, !granted);
    }

    /// Stores `alert` for the tenant, filling in `@odata.type`, `id`, `tenantId`,
    /// `lastUpdateDateTime` (now, when missing or unreadable) and `createdDateTime`. An alert
    /// whose `id` is already stored replaces it (an update); it keeps its `createdDateTime` when
    /// the update has none.
    pub(crate) fn add_alert(&mut self, tenant_id: &str, alert: Value, now: DateTime<Utc>) {
        let Value::Object(mut alert) = alert else {
            tracing::warn!("m365 simulator: a Graph alert must be a JSON object; ignored");
            return;
        };
        self.seq += 1;
        let seq = self.seq;
        let alerts = self.alerts.entry(tenant_id.to_ascii_lowercase()).or_default();
        let id = match alert.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
            Some(id) => id.to_owned(),
            None => format!("da{}_{seq}", now.timestamp_micros()),
        };
        let previous = alerts.iter().position(|a| a.id == id).map(|at| alerts.remove(at));
        let updated = match alert.get("lastUpdateDateTime").and_then(Value::as_str).and_then(parse_time) {
            Some(at) => at,
            None => {
                alert.insert("lastUpdateDateTime".into(), json!(graph_time(now)));
                now
            }
        };
        let created = previous
            .as_ref()
            .and_then(|p| p.alert.get("createdDateTime").cloned())
            .or_else(|| alert.get("lastUpdateDateTime").cloned())
            .unwrap_or(Value::Null);
        let mut full = Map::new();
        full.insert("@odata.type".into(), json!("#microsoft.graph.security.alert"));
        full.insert("id".into(), json!(id));
        full.insert("tenantId".into(), json!(tenant_id));
        full.insert("createdDateTime".into(), created);
        full.extend(alert);
        alerts.push(StoredAlert { seq, id, updated, alert: Value::Object(full) });
    }

    /// `GET /graph/v1.0/security/alerts_v2`. `caller` is `None` without a known bearer token.
    pub(crate) fn list_alerts(
        &mut self,
        caller: Option<Caller>,
        sim_port: Option<u16>,
        raw_query: &str,
        graph_base: &str,
        page_size: usize,
        now: DateTime<Utc>,
    ) -> Response {
        let tenant = match authenticate(caller, sim_port, now) {
            Ok(tenant) => tenant,
            Err(refusal) => return refusal.into_response(),
        };
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let requested = match parse_query(&params) {
            Ok(query) => query,
            Err(message) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
        };
        let skiptoken = option(&params, "skiptoken");
        let (query, after) = match skiptoken {
            None => (requested, None),
            Some(token) => match self.pages.get(&token) {
                Some(cursor) if cursor.tenant == tenant && cursor.query == requested => (cursor.query.clone(), Some(cursor.after)),
                Some(cursor) if cursor.tenant == tenant => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "The $filter, $orderby and $top of a nextLink must not be changed; follow the nextLink as it is.",
                    );
                }
                _ => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The $skiptoken is invalid or has expired."),
            },
        };

        let mut matching: Vec<&StoredAlert> = self
            .alerts
            .get(&tenant)
            .map(|alerts| alerts.iter().filter(|a| query.clauses.iter().all(|c| c.matches(&a.alert))).collect())
            .unwrap_or_default();
        let key = |a: &StoredAlert| (a.updated, a.seq);
        if query.descending {
            matching.retain(|a| after.is_none_or(|after| key(a) < after));
            matching.sort_by_key(|a| std::cmp::Reverse(key(a)));
        } else {
            matching.retain(|a| after.is_none_or(|after| key(a) > after));
            matching.sort_by_key(|a| key(a));
        }
        let size = query.top.unwrap_or(page_size).min(page_size.max(1));
        let has_more = matching.len() > size;
        matching.truncate(size);
        let last = matching.last().map(|a| key(a));
        let value: Vec<Value> = matching.iter().map(|a| a.alert.clone()).collect();

        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(format!("{graph_base}/v1.0/$metadata#security/alerts_v2")));
        if let Some(last) = last.filter(|_| has_more) {
            self.seq += 1;
            let token = format!("{}{:x}", hex::encode(random_bytes()), self.seq);
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            for (name, text) in [("$filter", &query.filter_text), ("$orderby", &query.orderby_text), ("$top", &query.top_text)] {
                if let Some(text) = text {
                    pairs.push((name, text));
                }
            }
            pairs.push(("$skiptoken", &token));
            let encoded: Vec<String> = pairs.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect();
            body.insert("@odata.nextLink".into(), json!(format!("{graph_base}{ALERTS_PATH}?{}", encoded.join("&"))));
            self.pages.insert(token, Cursor { tenant, query, after: last });
        }
        body.insert("value".into(), Value::Array(value));
        json_response(StatusCode::OK, &Value::Object(body))
    }
}

/// Why a caller is turned away.
pub(crate) enum Refusal {
    /// `401 InvalidAuthenticationToken` with this message.
    Unauthenticated(&'static str),
    /// `403 Forbidden`: the token lacks [`ALERTS_ROLE`].
    MissingRole,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(message) => unauthorized(message),
            Self::MissingRole => graph_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Missing application roles. API required roles: SecurityAlert.Read.All,SecurityAlert.ReadWrite.All. API application roles: .",
            ),
        }
    }
}

/// The caller's tenant, or why Graph answers `401`/`403`.
pub(crate) fn authenticate(caller: Option<Caller>, sim_port: Option<u16>, now: DateTime<Utc>) -> Result<String, Refusal> {
    let Some(caller) = caller else {
        return Err(Refusal::Unauthenticated("Access token is empty or not valid."));
    };
    if !is_graph_audience(&caller.audience, sim_port) {
        return Err(Refusal::Unauthenticated("Access token validation failure. Invalid audience."));
    }
    if caller.expires <= now {
        return Err(Refusal::Unauthenticated("Lifetime validation failed, the token is expired."));
    }
    if !caller.tenant_exists {
        return Err(Refusal::Unauthenticated("Access token validation failure. The tenant of the token does not exist."));
    }
    if !caller.has_role {
        return Err(Refusal::MissingRole);
    }
    Ok(caller.tenant)
}

/// [`authenticate`] for a directory read (users, licences, sign-ins): a token without the read's
/// `role` gets the directory's `403 Authorization_RequestDenied` naming it.
pub(crate) fn authenticate_directory_read(
    caller: Option<Caller>,
    sim_port: Option<u16>,
    now: DateTime<Utc>,
    role: &str,
) -> Result<String, Box<Response>> {
    authenticate(caller, sim_port, now).map_err(|refusal| {
        Box::new(match refusal {
            Refusal::MissingRole => graph_error(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                &format!("Insufficient privileges to complete the operation. API required roles: {role}."),
            ),
            refusal => refusal.into_response(),
        })
    })
}

/// The value of OData system query option `$name` (the `$` is optional, as in Graph v1.0).
pub(crate) fn option(params: &[(String, String)], name: &str) -> Option<String> {
    params.iter().find(|(k, _)| k.strip_prefix('$').unwrap_or(k).eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

fn parse_query(params: &[(String, String)]) -> Result<Query, String> {
    let filter_text = option(params, "filter");
    let orderby_text = option(params, "orderby");
    let top_text = option(params, "top");
    let clauses = match &filter_text {
        Some(text) => parse_filter(text)?,
        None => Vec::new(),
    };
    let descending = match orderby_text.as_deref().map(|o| o.split_whitespace().collect::<Vec<_>>()) {
        None => true,
        Some(words) => match words.as_slice() {
            ["lastUpdateDateTime"] | ["lastUpdateDateTime", "asc"] => false,
            ["lastUpdateDateTime", "desc"] => true,
            _ => {
                return Err(format!(
                    "Invalid $orderby: '{}'. Only lastUpdateDateTime asc|desc is supported.",
                    orderby_text.unwrap_or_default()
                ));
            }
        },
    };
    let top = match &top_text {
        None => None,
        Some(text) => {
            Some(text.trim().parse::<usize>().map_err(|_| format!("Invalid value '{text}' for $top; expected a non-negative integer."))?)
        }
    };
    Ok(Query { filter_text, orderby_text, top_text, clauses, descending, top })
}

/// Splits a filter into words, keeping `'quoted strings'` (with `''` escapes) whole.
fn words(filter: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut word = String::from("'");
            loop {
                match chars.next() {
                    None => return Err("Invalid $filter: unterminated string literal.".into()),
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        word.push('\'');
                    }
                    Some('\'') => break,
                    Some(other) => word.push(other),
                }
            }
            words.push(word);
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace()) {
                word.push(c);
                chars.next();
            }
            words.push(word);
        }
    }
    Ok(words)
}

fn parse_filter(filter: &str) -> Result<Vec<Clause>, String> {
    let words = words(filter)?;
    let mut clauses = Vec::new();
    let mut rest = words.as_slice();
    loop {
        let [property, op, literal, tail @ ..] = rest else {
            return Err(format!("Invalid $filter: '{filter}'. Expected '<property> <operator> <value>' clauses joined by 'and'."));
        };
        clauses.push(parse_clause(property, op, literal)?);
        match tail {
            [] => return Ok(clauses),
            [and, more @ ..] if and == "and" => rest = more,
            _ => return Err(format!("Invalid $filter: '{filter}'. Only 'and' may join clauses.")),
        }
    }
}

fn parse_clause(property: &str, op: &str, literal: &str) -> Result<Clause, String> {
    let Some(cmp) = CmpOp::parse(op) else {
        return Err(format!("Invalid $filter: unsupported operator '{op}'."));
    };
    if let Some(property) = DATE_PROPERTIES.iter().find(|p| **p == property) {
        if literal.starts_with('\'') {
            return Err(format!(
                "Invalid $filter: a DateTimeOffset literal is not quoted ({property} {op} {literal}'); use e.g. 2026-01-05T10:00:00Z."
            ));
        }
        let value = parse_time(literal).ok_or_else(|| format!("Invalid $filter: '{literal}' is not a valid DateTimeOffset."))?;
        return Ok(Clause::Date { property, op: cmp, value });
    }
    if let Some(property) = STRING_PROPERTIES.iter().find(|p| **p == property) {
        let equal = match cmp {
            CmpOp::Eq => true,
            CmpOp::Ne => false,
            _ => return Err(format!("Invalid $filter: operator '{op}' is not supported on {property}.")),
        };
        let value = match literal.strip_prefix('\'') {
            Some(text) => Some(text.to_owned()),
            None if literal == "null" => None,
            None => return Err(format!("Invalid $filter: '{literal}' is not a string literal.")),
        };
        return Ok(Clause::Text { property, equal, value });
    }
    Err(format!("Invalid $filter: filtering on '{property}' is not supported by alerts_v2."))
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|at| at.with_timezone(&Utc))
}

/// Graph's `DateTimeOffset` format: 7 fractional digits and `Z` (`2026-01-05T12:19:27.7211305Z`).
fn graph_time(at: DateTime<Utc>) -> String {
    format!("{}.{:07}Z", at.format("%Y-%m-%dT%H:%M:%S"), at.timestamp_subsec_nanos() / 100)
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn random_bytes() -> [u8; 12] {
    let mut buf = [0u8; 12];
    // Uniqueness comes from the sequence number appended to the token; randomness only makes
    // tokens unguessable, so a failure here is harmless.
    let _ = getrandom::fill(&mut buf);
    buf
}

/// Puts a tenant (by lower-cased id) in `tenants` or takes it out.
pub(crate) fn set_tenant(tenants: &mut std::collections::HashSet<String>, tenant_id: &str, member: bool) {
    let key = tenant_id.to_ascii_lowercase();
    if member {
        tenants.insert(key);
    } else {
        tenants.remove(&key);
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// Graph error body: `{"error":{"code":…,"message":…,"innerError":{"date","request-id","client-request-id"}}}`.
pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = hex::encode(random_bytes());
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }
    });
    json_response(status, &body)
}

fn unauthorized(message: &str) -> Response {
    let mut resp = graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        ),
    );
    resp
}

fn with_retry_after(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The answer to an injected failure (see the module documentation).
pub(crate) fn failure(failure: M365Failure) -> Response {
    match failure {
        M365Failure::Throttle | M365Failure::ThrottleFractional | M365Failure::ThrottleWithoutRetryAfter => {
            crate::m365::throttle_retry_after(
                failure,
                graph_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Too many requests. Retry after the time given in the Retry-After header.",
                ),
            )
        }
        M365Failure::ThrottleForbidden => {
            with_retry_after(graph_error(StatusCode::SERVICE_UNAVAILABLE, "serviceNotAvailable", "The service is temporarily unavailable."))
        }
        M365Failure::ServerError => {
            graph_error(StatusCode::INTERNAL_SERVER_ERROR, "generalException", "An unspecified error has occurred.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_audiences() {
        assert!(is_graph_audience("https://graph.microsoft.com", None));
        assert!(is_graph_audience("https://graph.microsoft.com/", None));
        assert!(is_graph_audience("https://dod-graph.microsoft.us", None));
        assert!(is_graph_audience(GRAPH_APP_ID, None));
        assert!(is_graph_audience("http://127.0.0.1:4000/graph", Some(4000)));
        assert!(!is_graph_audience("http://127.0.0.1:4000/graph", Some(4001)));
        assert!(!is_graph_audience("http://127.0.0.1:4000/manage", Some(4000)));
        assert!(!is_graph_audience("https://manage.office.com", None));
        assert!(!is_graph_audience("https://graph.microsoft.com.evil.example", None));
    }

    #[test]
    fn filters_parse() {
        let clauses = parse_filter("lastUpdateDateTime ge 2026-01-05T10:00:00Z and severity eq 'high' and assignedTo eq null").unwrap();
        assert_eq!(clauses.len(), 3);
        assert!(parse_filter("lastUpdateDateTime gt 2026-01-05T10:00:00.1234567Z").is_ok());
        assert!(parse_filter("title eq 'it''s'").is_err(), "not a filterable property");
        assert!(parse_filter("assignedTo eq 'it''s'").is_ok());
        assert!(parse_filter("lastUpdateDateTime ge '2026-01-05T10:00:00Z'").is_err(), "quoted dates are strings");
        assert!(parse_filter("lastUpdateDateTime ge 2026-01-05").is_err());
        assert!(parse_filter("lastUpdateDateTime ge 2026-01-05T10:00:00Z or severity eq 'high'").is_err());
        assert!(parse_filter("severity gt 'high'").is_err());
        assert!(parse_filter("investigationState eq 'x'").is_err());
        assert!(parse_filter("").is_err());
    }

    #[test]
    fn graph_times_have_seven_digits() {
        let at = parse_time("2026-01-05T12:19:27.7211305Z").unwrap();
        assert_eq!(graph_time(at), "2026-01-05T12:19:27.7211305Z");
        assert_eq!(graph_time(parse_time("2026-01-05T12:19:27Z").unwrap()), "2026-01-05T12:19:27.0000000Z");
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("lastUpdateDateTime ge 2026-01-05T10:00:00Z"), "lastUpdateDateTime%20ge%202026-01-05T10%3A00%3A00Z");
        assert_eq!(encode("a'b+c"), "a%27b%2Bc");
    }
}
