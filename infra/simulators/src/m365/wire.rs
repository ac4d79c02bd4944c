//! Wire helpers shared by the Microsoft 365 simulator's endpoints: form/query parameters, ids,
//! time formats, and the identity platform and Management API error shapes.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};

/// Decoded `application/x-www-form-urlencoded` pairs (query strings and token request bodies).
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(raw: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// Exact-name lookup (token endpoint form fields).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Case-insensitive lookup (Management API query parameters; ASP.NET binds them
    /// case-insensitively and Elastic sends `publisherIdentifier`).
    pub(super) fn get_ci(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        // Fallback: uniqueness is all the simulator needs.
        static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let mut x = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        for b in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
    }
    buf
}

pub(super) fn new_guid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

pub(super) fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// `contentCreated` / `contentExpiration` format: `2026-01-05T10:15:00.123Z`.
pub(super) fn content_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Window time format used when the server fills in `startTime`/`endTime` itself.
pub(super) fn window_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Parses `startTime`/`endTime`: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, UTC.
///
/// A `Z` suffix, offsets and fractional seconds are rejected (AF20002). Whether the real service
/// accepts them is unconfirmed; rejecting them is stricter than (possibly) real behaviour and
/// keeps clients on the documented formats.
pub(super) fn parse_window_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(dt.and_utc());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        return Some(dt.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|dt| dt.and_utc())
}

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// Management API error body: `{"error":{"code":"AF20022","message":"..."}}`.
pub(super) fn af_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({ "error": { "code": code, "message": message } }))
}

/// A Management API error not yet rendered (keeps `Result`s small).
pub(super) struct AfError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl AfError {
    pub(super) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }
}

impl IntoResponse for AfError {
    fn into_response(self) -> Response {
        af_error(self.status, self.code, &self.message)
    }
}

/// What the (ASP.NET-hosted) Management API answers for a missing, unknown, expired or
/// wrong-audience bearer token: 401, `WWW-Authenticate: Bearer`, `{"Message": "..."}` – no AF
/// code, so clients re-authenticate instead of treating it as a permission problem.
pub(super) fn unauthorized() -> Response {
    let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({ "Message": "Authorization has been denied for this request." }));
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

pub(super) fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Identity platform error body (section 1.6 of the reference).
pub(super) fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace_id = new_guid();
    let correlation_id = new_guid();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    let mut resp = json_response(status, &body);
    no_store(&mut resp);
    resp
}

pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{new_guid, parse_window_time};

    #[test]
    fn window_time_formats() {
        assert!(parse_window_time("2026-01-05").is_some());
        assert!(parse_window_time("2026-01-05T10:15").is_some());
        assert!(parse_window_time("2026-01-05T10:15:00").is_some());
        assert!(parse_window_time("2026-01-05T10:15:00Z").is_none());
        assert!(parse_window_time("2026-01-05T10:15:00.123").is_none());
        assert!(parse_window_time("2026-01-05T10:15:00+00:00").is_none());
    }

    #[test]
    fn guid_shape() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
    }
}
