//! Microsoft Graph security alerts (`GET /v1.0/security/alerts_v2`) as a [`SecurityAlertSource`].
//!
//! The app-only Graph token (scope `{graph}/.default`, e.g. `https://graph.microsoft.com/.default`)
//! comes from the shared `identity::TokenProvider`, cached per (MSP, tenant, scope, credential fingerprint) and separate from
//! the Management Activity API's token. Graph has no tenant in its URLs: the token decides whose
//! alerts are listed.
//!
//! One listing is `$filter=lastUpdateDateTime ge {since}` (an unquoted UTC literal with `Z`),
//! `$orderby=lastUpdateDateTime asc`, `$top=100`, then every `@odata.nextLink`, followed verbatim
//! but only on the Graph origin (the bearer token goes nowhere else). Because `$orderby` is not in
//! the documented list for alerts_v2, the concatenated pages are also sorted here (stably) by
//! `lastUpdateDateTime`, and exact repeats of one (`id`, `lastUpdateDateTime`) are dropped. The
//! alert objects themselves are returned unchanged.
//!
//! Errors are classified here, once (`shared/reference/microsoft-apis.md` §5.4): 429 and 503 are
//! [`SourceError::Throttled`] with the server's `Retry-After`; other 5xx, 408 and timeouts are
//! [`SourceError::Unavailable`]; a `401` drops the cached token and retries once, a second `401`
//! is [`SourceError::AccessRefused`]; `403` (e.g. `SecurityAlert.Read.All` not consented) is
//! [`SourceError::AccessRefused`] with the body's `error.code` and also drops the cached token, so
//! the next call sees a newly granted role; any other refusal is [`SourceError::Rejected`]. Neither
//! the client secret nor an access token ever appears in an error or a log line.

use super::identity::TokenProvider;
use super::{LazyHttp, redact, retry_after, transport_failure, truncate_chars};
use crate::error::SourceError;
use crate::ids::TenantId;
use crate::ports::SecurityAlertSource;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// `$top` of the first request (nextLinks carry their own).
const PAGE_SIZE: usize = 100;
/// Listing stops (as unavailable) after this many pages: a nextLink loop, not real data.
const MAX_PAGES: usize = 2000;
/// Longest remote message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;
/// The alerts_v2 collection, relative to the Graph root.
const ALERTS_PATH: &str = "/v1.0/security/alerts_v2";
/// Asks Graph for evolvable enum members added after `unknownFutureValue` (e.g. newer
/// `serviceSource` / `detectionSource` values) instead of `unknownFutureValue`.
const PREFER: &str = "include-unknown-enum-members";

/// A client of Microsoft Graph's security alerts for many customer tenants.
#[derive(Debug)]
pub struct GraphAlertsClient {
    reader: GraphReader,
}

/// Reads Microsoft Graph collections with app-only tokens: one GET with the token of a
/// tenant, retried once with a new token after a `401`, failures classified; nextLinks
/// followed on Graph's origin only. Shared by every Graph source.
pub(super) struct GraphReader {
    /// Built on the first request (see [`LazyHttp`]).
    http: LazyHttp,
    /// Graph root without a trailing slash, e.g. `https://graph.microsoft.com`.
    graph_base: String,
    tokens: TokenProvider,
}

impl std::fmt::Debug for GraphReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphReader").field("graph_base", &self.graph_base).field("tokens", &self.tokens).finish()
    }
}

/// What a Graph read is, for its errors: what it does, and the app role it needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct GraphRead {
    /// `list alerts`, `list admin relationships` …
    pub(super) what: &'static str,
    /// Said when Graph answers 403, e.g. `the app lacks SecurityAlert.Read.All in the tenant`.
    pub(super) missing_role: &'static str,
}

const ALERTS_READ: GraphRead = GraphRead { what: "list alerts", missing_role: "the app lacks SecurityAlert.Read.All in the tenant" };

/// How a request is sent and its answer read.
#[derive(Debug, Clone, Copy, Default)]
struct Answer {
    /// A `404` is `None` rather than an error.
    gone_is_none: bool,
    /// Sends `ConsistencyLevel: eventual` (advanced directory queries).
    eventual: bool,
}

/// A Graph answer that was not a success.
struct Failure {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: String,
}

impl GraphAlertsClient {
    /// A client for one cloud: `login_base` is the token host (e.g.
    /// `https://login.microsoftonline.com`), `graph_base` the Graph root (e.g.
    /// `https://graph.microsoft.com`), which is also the token scope's resource.
    ///
    /// `http` is a [`LazyHttp`] (built on the first request; pass clones of one to share it) or
    /// a `reqwest::Client` already built.
    #[must_use]
    pub fn new(http: impl Into<LazyHttp>, login_base: String, graph_base: String) -> Self {
        Self { reader: GraphReader::new(http, &login_base, &graph_base) }
    }

    /// The first page's URL: alerts updated at or after `since`, oldest update first.
    fn first_url(&self, since: DateTime<Utc>) -> Result<Url, SourceError> {
        let filter = format!("lastUpdateDateTime ge {}", odata_time(since));
        let query = [("$filter", filter.as_str()), ("$orderby", "lastUpdateDateTime asc"), ("$top", &PAGE_SIZE.to_string())]
            .iter()
            .map(|(name, value)| format!("{name}={}", encode_query_value(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.reader.url(&format!("{ALERTS_PATH}?{query}"), ALERTS_READ)
    }
}

impl GraphReader {
    /// A reader of one cloud's Graph (`graph_base`), with tokens from `login_base`.
    pub(super) fn new(http: impl Into<LazyHttp>, login_base: &str, graph_base: &str) -> Self {
        let http = http.into();
        let tokens = TokenProvider::new(http.clone(), login_base);
        Self { http, graph_base: graph_base.trim_end_matches('/').to_owned(), tokens }
    }

    /// The token scope: `{graph}/.default`.
    pub(super) fn scope(&self) -> String {
        format!("{}/.default", self.graph_base)
    }

    fn base_url(&self) -> Result<Url, SourceError> {
        Url::parse(&format!("{}/", self.graph_base))
            .map_err(|e| SourceError::Rejected { code: "InvalidUrl".into(), message: format!("graph base: {e}") })
    }

    /// A URL below the Graph root (`path_and_query` starts with `/`).
    pub(super) fn url(&self, path_and_query: &str, read: GraphRead) -> Result<Url, SourceError> {
        Url::parse(&format!("{}{path_and_query}", self.graph_base))
            .map_err(|e| SourceError::Rejected { code: "InvalidUrl".into(), message: format!("{}: {e}", read.what) })
    }

    /// An `@odata.nextLink` as a URL we will send our bearer token to: on Graph's origin only.
    pub(super) fn next_url(&self, raw: &str, read: GraphRead) -> Result<Url, SourceError> {
        let base = self.base_url()?;
        let url = base
            .join(raw.trim())
            .map_err(|e| SourceError::Rejected { code: "InvalidUrl".into(), message: format!("{}: nextLink: {e}", read.what) })?;
        if url.origin() != base.origin() {
            return Err(SourceError::Rejected {
                code: "ForeignUrl".into(),
                message: format!(
                    "{}: the nextLink pointed to {} instead of {}",
                    read.what,
                    url.origin().ascii_serialization(),
                    base.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }

    /// GETs one page with a bearer token; on `401` forgets the token and tries once more.
    pub(super) async fn get(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        url: &Url,
        read: GraphRead,
    ) -> Result<String, SourceError> {
        // A 404 is an error here (classified like any refusal), never `None`.
        self.send(tenant_id, credentials, reqwest::Method::GET, url, None, read, Answer::default()).await.map(Option::unwrap_or_default)
    }

    /// [`Self::get`] with `ConsistencyLevel: eventual`, which Graph's advanced directory
    /// queries (`$count`, `ne`, `not`, some lambda filters) require.
    pub(super) async fn get_eventual(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        url: &Url,
        read: GraphRead,
    ) -> Result<String, SourceError> {
        let answer = Answer { eventual: true, ..Answer::default() };
        self.send(tenant_id, credentials, reqwest::Method::GET, url, None, read, answer).await.map(Option::unwrap_or_default)
    }

    /// [`Self::get`], with `None` when Graph answers `404 Not Found` (the object is gone).
    pub(super) async fn get_if_found(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        url: &Url,
        read: GraphRead,
    ) -> Result<Option<String>, SourceError> {
        self.send(tenant_id, credentials, reqwest::Method::GET, url, None, read, Answer { gone_is_none: true, ..Answer::default() }).await
    }

    /// POSTs a JSON body; the response body of a `2xx`.
    pub(super) async fn post(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        url: &Url,
        body: &serde_json::Value,
        read: GraphRead,
    ) -> Result<String, SourceError> {
        self.send(tenant_id, credentials, reqwest::Method::POST, url, Some(body), read, Answer::default())
            .await
            .map(Option::unwrap_or_default)
    }

    /// One request with a bearer token; on `401` forgets the token and tries once more. A `404`
    /// is `None` when `answer.gone_is_none`, else an error like any other refusal.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        read: GraphRead,
        answer: Answer,
    ) -> Result<Option<String>, SourceError> {
        let Answer { gone_is_none, eventual } = answer;
        let scope = self.scope();
        let mut refreshed = false;
        loop {
            let token = self.tokens.token(tenant_id, credentials, &scope).await?;
            let mut request = self
                .http
                .for_request(read.what)?
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .header("Prefer", PREFER);
            if eventual {
                request = request.header("ConsistencyLevel", "eventual");
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| SourceError::Unavailable(transport_failure(read.what, &e)))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                tracing::debug!(tenant_id = %tenant_id, "Graph refused the access token; requesting a new one");
                self.tokens.forget(tenant_id, credentials, &scope);
                refreshed = true;
                continue;
            }
            let retry = retry_after(response.headers());
            let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure(read.what, &e)))?;
            if status.is_success() {
                return Ok(Some(body));
            }
            if status == StatusCode::NOT_FOUND && gone_is_none {
                return Ok(None);
            }
            if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
                // A role granted since this token was issued only shows up in a new token.
                self.tokens.forget(tenant_id, credentials, &scope);
            }
            let failure = Failure { status, retry_after: retry, body };
            let error = classify_graph_error(&failure, &[token.expose(), credentials.client_secret.expose()], read);
            tracing::warn!(tenant_id = %tenant_id, status = status.as_u16(), error = %error, what = read.what, "Graph request failed");
            return Err(error);
        }
    }
}

#[async_trait]
impl SecurityAlertSource for GraphAlertsClient {
    async fn alerts_updated_since(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<Value>, SourceError> {
        let mut url = self.first_url(since)?;
        let mut alerts = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(SourceError::Unavailable(format!("list alerts: more than {MAX_PAGES} pages; the paging does not end")));
            }
            let page = parse_page(&self.reader.get(tenant_id, credentials, &url, ALERTS_READ).await?)?;
            alerts.extend(page.value);
            match page.next_link.as_deref().map(str::trim).filter(|next| !next.is_empty()) {
                Some(next) => url = self.reader.next_url(next, ALERTS_READ)?,
                None => break,
            }
        }
        let alerts = oldest_update_first(alerts);
        tracing::debug!(tenant_id = %tenant_id, alerts = alerts.len(), pages, "listed Graph security alerts");
        Ok(alerts)
    }
}

/// An OData `DateTimeOffset` literal: UTC, `Z`, at most microsecond precision (truncated, which
/// only widens a `ge` filter).
fn odata_time(at: DateTime<Utc>) -> String {
    at.trunc_subsecs(6).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Percent-encodes a query value: everything but RFC 3986 unreserved characters (spaces become
/// `%20`, never `+`, which some OData parsers take literally).
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct AlertPage {
    value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

fn parse_page(body: &str) -> Result<AlertPage, SourceError> {
    serde_json::from_str(body).map_err(|e| SourceError::Unavailable(format!("list alerts: unexpected response body: {e}")))
}

fn last_update(alert: &Value) -> Option<DateTime<Utc>> {
    let text = alert.get("lastUpdateDateTime")?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|at| at.with_timezone(&Utc))
}

/// The alerts sorted (stably) by `lastUpdateDateTime`, without exact repeats of an
/// (`id`, `lastUpdateDateTime`) pair. Alerts without a readable time keep their place up front.
fn oldest_update_first(alerts: Vec<Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut keyed: Vec<(Option<DateTime<Utc>>, Value)> = alerts
        .into_iter()
        .filter(|alert| {
            let id = alert.get("id").and_then(Value::as_str);
            let updated = alert.get("lastUpdateDateTime").and_then(Value::as_str);
            match (id, updated) {
                (Some(id), Some(updated)) => seen.insert((id.to_owned(), updated.to_owned())),
                _ => true,
            }
        })
        .map(|alert| (last_update(&alert), alert))
        .collect();
    keyed.sort_by_key(|(at, _)| *at);
    keyed.into_iter().map(|(_, alert)| alert).collect()
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorDetail,
}

#[derive(Deserialize)]
struct GraphErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `(code, message)` of a Graph error body `{"error":{"code":…,"message":…}}`, empty when absent.
fn graph_error(body: &str) -> (String, String) {
    match serde_json::from_str::<GraphErrorBody>(body) {
        Ok(parsed) => (parsed.error.code, parsed.error.message),
        Err(_) => (String::new(), body.trim().to_owned()),
    }
}

/// Classifies a failed Graph request; every string in `secrets` is scrubbed from the message.
fn classify_graph_error(failure: &Failure, secrets: &[&str], read: GraphRead) -> SourceError {
    let status = failure.status;
    let (code, message) = graph_error(&failure.body);
    let message = secrets.iter().fold(truncate_chars(&message, MAX_MESSAGE_CHARS), |message, secret| redact(&message, secret));
    let code_or = |fallback: &str| if code.is_empty() { fallback.to_owned() } else { code.clone() };
    let described = |fallback: &str| if message.is_empty() { fallback.to_owned() } else { message.clone() };
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        return SourceError::Throttled { retry_after: failure.retry_after };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return SourceError::Unavailable(format!(
            "{}: {}: {}",
            read.what,
            code_or(&format!("HTTP {}", status.as_u16())),
            described("server error")
        ));
    }
    match status {
        StatusCode::UNAUTHORIZED => SourceError::AccessRefused {
            code: code_or("InvalidAuthenticationToken"),
            message: described("a freshly issued token was refused"),
        },
        StatusCode::FORBIDDEN => SourceError::AccessRefused { code: code_or("Forbidden"), message: described(read.missing_role) },
        StatusCode::NOT_FOUND => SourceError::Rejected { code: code_or("NotFound"), message: described("not found") },
        _ => SourceError::Rejected { code: code_or(&format!("HTTP {}", status.as_u16())), message: described("request refused") },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::{Classified, ErrorClass};
    use chrono::TimeZone;
    use serde_json::json;

    fn client() -> GraphAlertsClient {
        GraphAlertsClient::new(reqwest::Client::new(), "https://login.example".into(), "https://graph.example/".into())
    }

    #[test]
    fn the_first_request_filters_orders_and_pages() {
        let since = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
        let url = client().first_url(since).unwrap();
        assert_eq!(
            url.as_str(),
            "https://graph.example/v1.0/security/alerts_v2?$filter=lastUpdateDateTime%20ge%202026-01-05T10%3A00%3A00Z&$orderby=lastUpdateDateTime%20asc&$top=100"
        );
        let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(pairs[0], ("$filter".into(), "lastUpdateDateTime ge 2026-01-05T10:00:00Z".into()));
        assert_eq!(client().reader.scope(), "https://graph.example/.default");
    }

    #[test]
    fn since_is_an_unquoted_utc_literal_with_at_most_microseconds() {
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap() + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(odata_time(at), "2026-01-05T10:00:00.123456Z");
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap() + chrono::Duration::milliseconds(250);
        assert_eq!(odata_time(at), "2026-01-05T10:00:00.250Z");
    }

    #[test]
    fn next_links_are_followed_only_on_the_graph_origin() {
        let client = client();
        let next =
            client.reader.next_url("https://graph.example/v1.0/security/alerts_v2?$top=100&$skiptoken=abc%3D%3D", ALERTS_READ).unwrap();
        assert_eq!(next.as_str(), "https://graph.example/v1.0/security/alerts_v2?$top=100&$skiptoken=abc%3D%3D", "kept verbatim");
        for foreign in ["https://evil.example/v1.0/security/alerts_v2", "http://graph.example/x", "https://graph.example:8443/x"] {
            assert!(
                matches!(client.reader.next_url(foreign, ALERTS_READ), Err(SourceError::Rejected { code, .. }) if code == "ForeignUrl"),
                "{foreign}"
            );
        }
    }

    fn failure(status: u16, retry: Option<u64>, body: &str) -> Failure {
        Failure { status: StatusCode::from_u16(status).unwrap(), retry_after: retry.map(Duration::from_secs), body: body.into() }
    }

    fn graph_body(code: &str, message: &str) -> String {
        json!({"error": {"code": code, "message": message, "innerError": {"request-id": "r", "date": "2026-01-05T10:00:00"}}}).to_string()
    }

    #[test]
    fn graph_errors_are_classified() {
        let throttled = classify_graph_error(&failure(429, Some(3), &graph_body("TooManyRequests", "slow down")), &[], ALERTS_READ);
        assert!(matches!(throttled, SourceError::Throttled { .. }));
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        assert!(matches!(
            classify_graph_error(&failure(503, None, "Service Unavailable"), &[], ALERTS_READ),
            SourceError::Throttled { retry_after: None }
        ));
        for status in [500, 502, 504, 408] {
            let error = classify_graph_error(&failure(status, None, &graph_body("generalException", "boom")), &[], ALERTS_READ);
            assert!(matches!(error, SourceError::Unavailable(_)), "{status}");
            assert_eq!(error.class(), ErrorClass::Transient);
        }
        let forbidden = classify_graph_error(&failure(403, None, &graph_body("Forbidden", "Missing application roles.")), &[], ALERTS_READ);
        assert!(
            matches!(&forbidden, SourceError::AccessRefused { code, message } if code == "Forbidden" && message == "Missing application roles.")
        );
        assert_eq!(forbidden.class(), ErrorClass::Permanent);
        assert!(
            matches!(classify_graph_error(&failure(403, None, ""), &[], ALERTS_READ), SourceError::AccessRefused { code, .. } if code == "Forbidden")
        );
        assert!(matches!(
            classify_graph_error(&failure(401, None, &graph_body("InvalidAuthenticationToken", "Access token has expired.")), &[], ALERTS_READ),
            SourceError::AccessRefused { code, .. } if code == "InvalidAuthenticationToken"
        ));
        assert!(matches!(
            classify_graph_error(&failure(400, None, &graph_body("BadRequest", "Invalid filter clause")), &[], ALERTS_READ),
            SourceError::Rejected { code, .. } if code == "BadRequest"
        ));
        assert!(
            matches!(classify_graph_error(&failure(404, None, "<html/>"), &[], ALERTS_READ), SourceError::Rejected { code, .. } if code == "NotFound")
        );
    }

    #[test]
    fn secrets_echoed_by_graph_never_reach_an_error() {
        let body = graph_body("InvalidAuthenticationToken", "Token eyJ-access-token-value is bad; secret hunter2-secret");
        let error = classify_graph_error(&failure(401, None, &body), &["eyJ-access-token-value", "hunter2-secret"], ALERTS_READ);
        let rendered = format!("{error} {error:?}");
        assert!(!rendered.contains("eyJ-access") && !rendered.contains("hunter2"), "{rendered}");
    }

    #[test]
    fn pages_are_parsed_with_or_without_a_next_link() {
        let page = parse_page(r#"{"@odata.context":"x","@odata.nextLink":"https://graph.example/n","value":[{"id":"a"}]}"#).unwrap();
        assert_eq!(page.value.len(), 1);
        assert_eq!(page.next_link.as_deref(), Some("https://graph.example/n"));
        assert!(parse_page(r#"{"value":[]}"#).unwrap().next_link.is_none());
        assert!(matches!(parse_page(r#"{"error":{}}"#), Err(SourceError::Unavailable(_))));
        assert!(matches!(parse_page("<html>"), Err(SourceError::Unavailable(_))));
    }

    #[test]
    fn alerts_are_sorted_by_update_and_exact_repeats_dropped() {
        let alert = |id: &str, at: &str| json!({"id": id, "lastUpdateDateTime": at, "title": id});
        let sorted = oldest_update_first(vec![
            alert("b", "2026-01-05T10:00:02.0000000Z"),
            alert("a", "2026-01-05T10:00:01.5000000Z"),
            alert("c", "2026-01-05T10:00:02Z"),
            alert("a", "2026-01-05T10:00:01.5000000Z"),
            alert("a", "2026-01-05T10:00:03.1234567Z"),
        ]);
        let ids: Vec<&str> = sorted.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c", "a"], "stable on equal times; an updated alert stays, an exact repeat goes");
    }

    #[test]
    fn debug_output_names_the_endpoint_only() {
        let rendered = format!("{:?}", client());
        assert!(rendered.contains("https://graph.example"), "{rendered}");
    }
}
