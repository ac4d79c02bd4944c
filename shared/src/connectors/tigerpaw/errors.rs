//! How a Tigerpaw failure becomes a [`SinkError`], decided once, here.
//!
//! Tigerpaw (ASP.NET Web API on IIS) answers HTTP failures with `{"Message": "…"}`, a refused
//! body with `{"Message", "ModelState": {"model.Field": ["…"]}}`, and business failures with
//! **HTTP 200 and `"Success": false`** plus a `Message` (`psa-apis.md` §4.3, §5). The message
//! kept in an error is those texts joined, cut to [`MAX_MESSAGE_CHARS`], with the private key
//! scrubbed out.
//!
//! | answer | error |
//! |---|---|
//! | 429 | [`SinkError::Throttled`], with `Retry-After` or [`DEFAULT_THROTTLE_DELAY`] |
//! | 401, 403 | [`SinkError::Unauthorized`] |
//! | 408, 5xx | [`SinkError::Unavailable`] (transient) |
//! | other 4xx | [`SinkError::Rejected`] |
//! | 200 `Success: false` whose message speaks of a lock ([`LOCK_PHRASES`]) | [`SinkError::Unavailable`]: a user has the order open in the GUI; retried later (`licences-billing-outputs.md` §3) |
//! | other 200 `Success: false` | [`SinkError::Rejected`] (an unknown account, a value not in a master table, …) |

use super::super::{redact, truncate_chars};
use crate::error::SinkError;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Longest remote message kept in an error.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// The delay a throttled answer without `Retry-After` asks for (Tigerpaw publishes no limits).
pub const DEFAULT_THROTTLE_DELAY: Duration = Duration::from_secs(60);
/// Lower-case phrases that mark a `Success: false` as the order being open in the GUI
/// (**unconfirmed** wording: the reference says only that API edits fail while a user has it).
pub const LOCK_PHRASES: &[&str] = &["lock", "in use", "being edited", "opened by", "open by another"];

/// The texts of a Tigerpaw answer: `Message`, `ExceptionMessage` and every `ModelState` entry.
#[must_use]
pub fn messages(body: &str) -> Vec<String> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body) else { return Vec::new() };
    let member = |name: &str| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let mut out = Vec::new();
    for name in ["Message", "ExceptionMessage"] {
        if let Some(text) = member(name).and_then(Value::as_str).filter(|t| !t.trim().is_empty()) {
            out.push(text.to_owned());
        }
    }
    if let Some(Value::Object(state)) = member("ModelState") {
        for (field, problems) in state {
            let texts: Vec<&str> = problems.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            out.push(format!("{field}: {}", texts.join(" ")));
        }
    }
    out
}

/// Classifies a failed HTTP answer (see the module docs).
pub(crate) fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str, operation: &str, secret: &str) -> SinkError {
    let texts: Vec<String> = messages(body).iter().map(|m| redact(m, secret)).collect();
    let summary = if texts.is_empty() { String::new() } else { format!(": {}", texts.join("; ")) };
    let text = truncate_chars(&format!("{operation}: HTTP {}{summary}", status.as_u16()), MAX_MESSAGE_CHARS);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return SinkError::Throttled { retry_after: Some(retry_after.unwrap_or(DEFAULT_THROTTLE_DELAY)) };
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return SinkError::Unauthorized(text);
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return SinkError::Unavailable(text);
    }
    SinkError::Rejected(text)
}

/// Whether a `Success: false` message says the order is locked (open in the GUI).
#[must_use]
pub fn is_lock(message: &str) -> bool {
    let lower = message.to_lowercase();
    LOCK_PHRASES.iter().any(|phrase| lower.contains(phrase))
}

/// Classifies an HTTP 200 answer that says `"Success": false` (see the module docs).
pub(crate) fn refusal(message: Option<&str>, operation: &str, secret: &str) -> SinkError {
    let message = redact(message.unwrap_or("(no message)"), secret);
    let text = truncate_chars(&format!("{operation}: Tigerpaw answered Success: false: {message}"), MAX_MESSAGE_CHARS);
    if is_lock(&message) { SinkError::Unavailable(text) } else { SinkError::Rejected(text) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::{Classified, ErrorClass};

    const SECRET: &str = "PrivateKey0001";

    #[test]
    fn a_lock_is_transient_and_other_refusals_are_permanent() {
        let locked = refusal(Some("Service order 12345 is locked by Jane Smith."), "close ticket", SECRET);
        assert_eq!(locked.class(), ErrorClass::Transient, "{locked:?}");
        let unknown = refusal(Some("Account 999 does not exist."), "create ticket", SECRET);
        assert!(matches!(&unknown, SinkError::Rejected(m) if m.contains("Account 999")), "{unknown:?}");
        assert!(matches!(refusal(None, "x", SECRET), SinkError::Rejected(_)));
    }

    #[test]
    fn http_failures_are_classified_by_status() {
        let throttled = classify(StatusCode::TOO_MANY_REQUESTS, None, "", "x", SECRET);
        assert_eq!(throttled.retry_after(), Some(DEFAULT_THROTTLE_DELAY));
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, None, "", "x", SECRET), SinkError::Unauthorized(_)));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, None, "", "x", SECRET), SinkError::Unavailable(_)));
        assert!(matches!(classify(StatusCode::LENGTH_REQUIRED, None, "", "x", SECRET), SinkError::Rejected(_)));
        let invalid = r#"{"Message":"The request is invalid.","ModelState":{"model.AccountNumber":["AccountNumber is required."]}}"#;
        let error = classify(StatusCode::BAD_REQUEST, None, invalid, "create ticket", SECRET);
        assert!(matches!(&error, SinkError::Rejected(m) if m.contains("model.AccountNumber: AccountNumber is required.")), "{error:?}");
    }

    #[test]
    fn messages_never_carry_the_private_key_and_are_bounded() {
        let echoed = format!(r#"{{"Message":"bad key {SECRET} {}"}}"#, "x".repeat(2000));
        let text = classify(StatusCode::BAD_REQUEST, None, &echoed, "find ticket", SECRET).to_string();
        assert!(!text.contains(SECRET) && text.contains("[REDACTED]"), "{text}");
        assert!(refusal(Some(&echoed), "x", SECRET).to_string().chars().count() < MAX_MESSAGE_CHARS + 40);
    }
}
