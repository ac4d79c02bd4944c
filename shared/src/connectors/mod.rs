//! HTTP connectors: the production adapters of [`crate::ports::AuditSource`] (the Office 365
//! Management Activity API, [`m365`]; the partner tenant's Graph reads, [`partner`]),
//! [`crate::ports::TicketSystem`] (ConnectWise Manage, [`connectwise`]; Autotask,
//! [`autotask`]; HaloPSA, [`halopsa`]; Tigerpaw, [`tigerpaw`]) and
//! [`crate::ports::MessageChannel`] (Teams, Slack, signed webhooks, e-mail: [`channels`]),
//! built per destination by [`psa::PsaProvider`].
//!
//! Both classify every failure once, where it happens, into the port's error type
//! ([`crate::error::SourceError`], [`crate::error::SinkError`]): throttling keeps the server's
//! `Retry-After`, timeouts, connection failures and 5xx are transient, refusals are permanent.
//! No error message or log line ever carries a secret (client secret, access token, PSA keys).
//!
//! Every address an MSP configures is checked by [`destination_url`] when saved, when a client
//! is built, and at connection time.

pub mod autotask;
pub mod channels;
pub mod connectwise;
pub mod consent;
pub mod destination_url;
pub mod directory;
pub mod graph;
pub mod halopsa;
pub(crate) mod identity;
pub mod licences;
pub mod m365;
pub mod mailboxes;
pub mod partner;
pub mod psa;
pub mod tigerpaw;

use crate::error::SourceError;
use chrono::{DateTime, Utc};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Time allowed to establish a TCP/TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request, response body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest `Retry-After` honoured; larger values are clamped to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The HTTP client every connector should share: rustls, a 5 s connect timeout and a 20 s
/// total timeout (well inside a Lambda invocation), and a `User-Agent` naming Vigil.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    http_client_builder().build()
}

/// A [`http_client`] built on first use and shared by every clone: the poller's Management
/// Activity, Graph and token clients hold clones of one, so a container builds at most one
/// client, and only once it makes its first request.
///
/// Building a `reqwest` client sets up rustls and loads the TLS roots again (the AWS SDK has
/// its own): milliseconds of cold start that an invocation making no Microsoft call (an empty
/// batch, a tick with no tenants) should not pay.
#[derive(Clone, Default)]
pub struct LazyHttp(Arc<OnceLock<reqwest::Client>>);

impl std::fmt::Debug for LazyHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LazyHttp").field(&if self.0.get().is_some() { "built" } else { "not built" }).finish()
    }
}

impl LazyHttp {
    /// A [`http_client`] not built yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the client exists (built on use, or given).
    #[must_use]
    pub fn is_built(&self) -> bool {
        self.0.get().is_some()
    }

    /// The client, built now if this is the first use. A build that fails is not kept: the
    /// next request tries again.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn get(&self) -> Result<&reqwest::Client, reqwest::Error> {
        if let Some(client) = self.0.get() {
            return Ok(client);
        }
        let built = http_client()?;
        Ok(self.0.get_or_init(|| built))
    }

    /// [`Self::get`] for a connector: a client that cannot be built makes `operation`
    /// unavailable (transient), like a connection failure would.
    pub(crate) fn for_request(&self, operation: &str) -> Result<&reqwest::Client, SourceError> {
        self.get().map_err(|e| SourceError::Unavailable(transport_failure(operation, &e)))
    }
}

impl From<reqwest::Client> for LazyHttp {
    /// A client already built (tests, or a caller with settings of its own).
    fn from(client: reqwest::Client) -> Self {
        Self(Arc::new(OnceLock::from(client)))
    }
}

/// The settings of [`http_client`], for clients that add to them
/// ([`destination_url::destination_http_client`]).
pub(crate) fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
}

/// The delay a response asks for in its `Retry-After` header, if any (see [`parse_retry_after`]).
#[must_use]
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, Utc::now())
}

/// Parses a `Retry-After` value: delay seconds (`"120"`) or, as RFC 9110 also allows, an
/// HTTP date (relative to `now`; a date in the past means "now"). Clamped to
/// [`MAX_RETRY_AFTER`]. `None` when the value is neither.
///
/// Decimal seconds (`"0.249"`, sent by Microsoft Graph although RFC 9110 allows only whole
/// seconds) are honoured, rounded **up** to the next whole second: every consumer schedules in
/// whole seconds (the poller's SQS visibility timeout), and rounding up never retries earlier
/// than the server asked.
///
/// `None` (no header, or an unreadable one) leaves the delay to the caller's own schedule: the
/// poller then does not shorten or lengthen the poll job's visibility, so the job comes back
/// after the poll-jobs queue's visibility timeout (its redrive policy bounding the attempts), and
/// the dispatcher, which never uses `Retry-After`, always retries on its queue's schedule.
#[must_use]
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else if let Some(seconds) = decimal_seconds_rounded_up(value) {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// `"1.5"` → 2, `"0.249"` → 1, `"3.000"` → 3; `None` unless digits, a dot and digits.
fn decimal_seconds_rounded_up(value: &str) -> Option<u64> {
    let (whole, fraction) = value.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole = whole.parse::<u64>().ok()?;
    Some(if fraction.bytes().any(|b| b != b'0') { whole.saturating_add(1) } else { whole })
}

/// A short description of a transport failure (timeout, connection refused …) without the URL.
pub(crate) fn transport_failure(operation: &str, error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body could not be read"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    truncate_chars(&format!("{operation}: {kind}{detail}"), 300)
}

/// `text` cut to at most `max` characters (on a character boundary), with `…` when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `HMAC-SHA256(key, message)` (RFC 2104), for the signatures PSAs and webhooks use.
pub(crate) use crate::mac::hmac_sha256;

/// Replaces every occurrence of `secret` in `text` (defence in depth: a remote service echoing a
/// credential back must not push it into our errors or logs).
pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.len() < 4 {
        return text.to_owned();
    }
    text.replace(secret, "[REDACTED]")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Mon, 05 Jan 2026 10:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Mon, 05 Jan 2026 09:00:00 GMT", now), Some(Duration::ZERO), "a past date means now");
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER), "absurd delays are clamped");
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn a_decimal_retry_after_is_honoured_rounded_up_to_the_next_whole_second() {
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
        assert_eq!(parse_retry_after("0.249", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("3.000", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999.9", now), Some(MAX_RETRY_AFTER), "clamped like whole seconds");
        for malformed in ["1.", ".5", "1.2.3", "-0.5", "1,5", "1.5s", "1e3"] {
            assert_eq!(parse_retry_after(malformed, now), None, "{malformed}");
        }
    }

    #[test]
    fn a_missing_retry_after_leaves_the_delay_to_the_caller() {
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new()), None);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_static("0.249"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_reads_the_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("ééééé", 3), "éé…");
        assert_eq!(truncate_chars("ééééé", 3).chars().count(), 3);
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact("key=hunter22 here", "hunter22"), "key=[REDACTED] here");
        assert_eq!(redact("abc", ""), "abc");
    }

    #[test]
    fn the_shared_client_builds() {
        assert!(http_client().is_ok());
    }

    #[test]
    fn a_lazy_client_is_built_once_on_first_use_and_shared_by_its_clones() {
        let lazy = LazyHttp::new();
        let clone = lazy.clone();
        assert!(!lazy.is_built() && !clone.is_built(), "nothing is built before the first request");
        let first: *const reqwest::Client = lazy.get().unwrap();
        assert!(clone.is_built(), "clones share the client");
        assert!(std::ptr::eq(first, clone.get().unwrap()));
        assert!(LazyHttp::from(reqwest::Client::new()).is_built(), "a given client is used as is");
    }
}
