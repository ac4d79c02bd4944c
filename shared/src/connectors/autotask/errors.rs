//! How an Autotask failure becomes a [`SinkError`], decided once, here.
//!
//! Autotask answers failures with `{"errors": [...]}` (strings, or objects some zones send),
//! ASP.NET answers a wrong method with `{"Message": "..."}`, and 401/403 carry no body. The
//! message kept in an error is those texts joined, cut to [`MAX_MESSAGE_CHARS`], with the
//! secret and the integration code scrubbed out (a server echoing them must not push them into
//! our errors or logs).
//!
//! | answer | error |
//! |---|---|
//! | 401, 403 | [`SinkError::Unauthorized`] |
//! | 429, or any status whose errors speak of the request threshold | [`SinkError::Throttled`], with `Retry-After` or [`DEFAULT_THROTTLE_DELAY`] |
//! | 500 whose errors read as validation ([`looks_like_validation`]) | [`SinkError::Rejected`] (permanent) |
//! | other 5xx | [`SinkError::Unavailable`] (transient) |
//! | other 4xx | [`SinkError::Rejected`] |
//!
//! **The 500 heuristic.** Autotask reports many validation failures (a missing required field,
//! an inactive picklist value, a reference to a company that does not exist, a string over its
//! maximum length, a bad query) as HTTP 500 with an `errors` list. Retrying those would fail
//! the same way forever, so a 500 whose messages contain one of [`VALIDATION_PHRASES`] (field
//! words like "required", "invalid", "does not exist", "maximum length", "Unable to find
//! property/field") is `Rejected`. A 500 with no body, an HTML body or other wording (an
//! outage, "Simulated failure") stays `Unavailable`, so a real outage is retried. Erring
//! towards `Unavailable` costs retries; erring towards `Rejected` would lose a ticket, so only
//! explicit validation wording flips it.

use super::super::{redact, truncate_chars};
use crate::error::SinkError;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Longest remote message kept in an error.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// The delay a throttled answer without `Retry-After` asks for (Autotask's threshold is per
/// rolling hour; a minute lets some old requests leave the window without hammering it).
pub const DEFAULT_THROTTLE_DELAY: Duration = Duration::from_secs(60);

/// Lower-case phrases that mark a 500 as a validation failure (see the module docs).
pub const VALIDATION_PHRASES: &[&str] = &[
    "required",
    "invalid",
    "is not valid",
    "not a valid",
    "does not exist",
    "do not exist",
    "does not reference",
    "maximum length",
    "exceeds",
    "unable to find",
    "out of range",
    "expected an",
    "expected a ",
    "must be",
    "is not allowed",
    "are allowed",
    "inactive",
    "does not match",
];

/// Whether a 500's messages read as a validation failure.
#[must_use]
pub fn looks_like_validation(messages: &[String]) -> bool {
    messages.iter().any(|message| {
        let lower = message.to_lowercase();
        VALIDATION_PHRASES.iter().any(|phrase| lower.contains(phrase))
    })
}

/// The messages of an Autotask error body: the `errors` list (strings, or objects'
/// `message`), else ASP.NET's `Message`; empty for no body or a body that is not JSON.
#[must_use]
pub fn error_messages(body: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<Value>(body) else { return Vec::new() };
    let member = |name: &str| value.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))).map(|(_, v)| v);
    if let Some(Value::Array(errors)) = member("errors") {
        return errors
            .iter()
            .filter_map(|error| match error {
                Value::String(text) => Some(text.clone()),
                Value::Object(object) => object
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("message"))
                    .and_then(|(_, v)| v.as_str().map(str::to_owned))
                    .or_else(|| Some(error.to_string())),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect();
    }
    member("message").and_then(Value::as_str).map(|m| vec![m.to_owned()]).unwrap_or_default()
}

/// The secrets an error message must never carry.
pub(crate) struct Scrub<'a> {
    pub secret: &'a str,
    pub integration_code: &'a str,
}

impl Scrub<'_> {
    fn apply(&self, text: &str) -> String {
        redact(&redact(text, self.secret), self.integration_code)
    }
}

/// Classifies a failed answer (see the module docs). `operation` names the call in the message.
pub(crate) fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str, operation: &str, scrub: &Scrub<'_>) -> SinkError {
    let messages: Vec<String> = error_messages(body).iter().map(|m| scrub.apply(m)).collect();
    let summary = if messages.is_empty() { String::new() } else { format!(": {}", messages.join("; ")) };
    let text = truncate_chars(&format!("{operation}: HTTP {}{summary}", status.as_u16()), MAX_MESSAGE_CHARS);
    let threshold = messages.iter().any(|m| m.to_lowercase().contains("threshold"));
    if status == StatusCode::TOO_MANY_REQUESTS || threshold {
        return SinkError::Throttled { retry_after: Some(retry_after.unwrap_or(DEFAULT_THROTTLE_DELAY)) };
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return SinkError::Unauthorized(text);
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR && looks_like_validation(&messages) {
        return SinkError::Rejected(text);
    }
    if status.is_server_error() {
        return SinkError::Unavailable(text);
    }
    SinkError::Rejected(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::{Classified, ErrorClass};

    const SCRUB: Scrub<'static> = Scrub { secret: "S3cretValue", integration_code: "TRACKING-CODE-1" };

    fn classify_500(body: &str) -> SinkError {
        classify(StatusCode::INTERNAL_SERVER_ERROR, None, body, "create ticket", &SCRUB)
    }

    #[test]
    fn a_500_naming_a_field_problem_is_a_permanent_rejection() {
        for body in [
            r#"{"errors":["Missing required field: title."]}"#,
            r#"{"errors":["Value does not reference an existing entity for companyID . Company 9 does not exist."]}"#,
            r#"{"errors":["String value exceeds maximum length (field:title). The maximum is 255 characters; 300 were sent."]}"#,
            r#"{"errors":["priority: the value 5 is not valid for a Integer field."]}"#,
            r#"{"errors":["Unable to find property 'bogus' on the Ticket entity."]}"#,
            r#"{"errors":[{"message":"status: a value is required."}]}"#,
        ] {
            let error = classify_500(body);
            assert!(matches!(error, SinkError::Rejected(_)), "{body}: {error:?}");
            assert_eq!(error.class(), ErrorClass::Permanent);
        }
    }

    #[test]
    fn a_500_without_validation_wording_is_transient() {
        for body in ["", "<html>Server Error</html>", r#"{"errors":["Simulated failure (after commit): HTTP 500"]}"#, "{}"] {
            assert!(matches!(classify_500(body), SinkError::Unavailable(_)), "{body}");
        }
        let gateway = classify(StatusCode::BAD_GATEWAY, None, r#"{"errors":["field is required"]}"#, "x", &SCRUB);
        assert!(matches!(gateway, SinkError::Unavailable(_)), "only a 500 is read as validation");
    }

    #[test]
    fn throttling_keeps_the_servers_delay_or_waits_a_minute() {
        let with = classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(7)), "", "x", &SCRUB);
        assert_eq!(with.retry_after(), Some(Duration::from_secs(7)));
        let without = classify(StatusCode::TOO_MANY_REQUESTS, None, "", "x", &SCRUB);
        assert_eq!(without.retry_after(), Some(DEFAULT_THROTTLE_DELAY));
        let threshold = r#"{"errors":["The request threshold of 10000 requests per 60 minutes has been exceeded"]}"#;
        assert!(matches!(classify_500(threshold), SinkError::Throttled { .. }), "a threshold message is throttling whatever the status");
    }

    #[test]
    fn refused_credentials_are_unauthorized_and_other_4xx_are_rejected() {
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, None, "", "x", &SCRUB), SinkError::Unauthorized(_)));
        assert!(matches!(classify(StatusCode::FORBIDDEN, None, "", "x", &SCRUB), SinkError::Unauthorized(_)));
        let wrong_method = classify(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            r#"{"Message":"The requested resource does not support http method 'GET'."}"#,
            "x",
            &SCRUB,
        );
        assert!(matches!(&wrong_method, SinkError::Rejected(m) if m.contains("does not support http method")), "{wrong_method:?}");
        assert!(matches!(classify(StatusCode::NOT_FOUND, None, "", "x", &SCRUB), SinkError::Rejected(_)));
    }

    #[test]
    fn error_messages_are_bounded_and_never_carry_the_credentials() {
        let echoed = format!(r#"{{"errors":["bad secret S3cretValue for TRACKING-CODE-1", "{}"]}}"#, "x".repeat(2000));
        let error = classify(StatusCode::BAD_REQUEST, None, &echoed, "find ticket", &SCRUB);
        let text = error.to_string();
        assert!(!text.contains("S3cretValue") && !text.contains("TRACKING-CODE-1"), "{text}");
        assert!(text.contains("[REDACTED]") && text.contains("find ticket: HTTP 400"), "{text}");
        let SinkError::Rejected(message) = error else { panic!("rejected") };
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS);
    }

    #[test]
    fn error_bodies_are_read_as_strings_objects_or_aspnet_messages() {
        assert_eq!(error_messages(r#"{"errors":["a","b"]}"#), ["a", "b"]);
        assert_eq!(error_messages(r#"{"errors":[{"message":"m","code":1}, {"code":2}]}"#), ["m", r#"{"code":2}"#]);
        assert_eq!(error_messages(r#"{"Message":"wrong method"}"#), ["wrong method"]);
        assert!(error_messages("not json").is_empty());
    }
}
