//! How a HaloPSA failure becomes a [`SinkError`], decided once, here.
//!
//! Halo answers a refused write with `400` and a JSON object keyed by field (`{"summary":
//! "…"}`, `{"[0].id": "…"}`), the token endpoint with OAuth's `{"error", "error_description"}`,
//! and some failures with a bare string or ASP.NET's `{"Message": "…"}`. The message kept in an
//! error is those texts joined (`field: text`), cut to [`MAX_MESSAGE_CHARS`], with the client
//! secret and the access token scrubbed out.
//!
//! | answer | error |
//! |---|---|
//! | 429 | [`SinkError::Throttled`], with `Retry-After` or [`DEFAULT_THROTTLE_DELAY`] |
//! | 401, 403 | [`SinkError::Unauthorized`] (a 401 from `/api` is first answered by one token refresh, see [`super::client`]) |
//! | 5xx | [`SinkError::Unavailable`] (transient) |
//! | other 4xx (400 by field, 404) | [`SinkError::Rejected`] |

use super::super::{redact, truncate_chars};
use crate::error::SinkError;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Longest remote message kept in an error.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// The delay a `429` without `Retry-After` asks for (Halo publishes no rate limit; a minute
/// is long enough not to hammer it).
pub const DEFAULT_THROTTLE_DELAY: Duration = Duration::from_secs(60);

/// The messages of a Halo error body: each member of an object as `key: text` (OAuth's
/// `error_description` preferred over `error`), a bare string as is; empty for no body.
#[must_use]
pub fn error_messages(body: &str) -> Vec<String> {
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(object)) => {
            if let Some(description) = object.get("error_description").and_then(Value::as_str) {
                let code = object.get("error").and_then(Value::as_str).unwrap_or("error");
                return vec![format!("{code}: {description}")];
            }
            if let Some(message) = object.iter().find(|(k, _)| k.eq_ignore_ascii_case("message")).map(|(_, v)| text(v)) {
                return vec![message];
            }
            object.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k}: {}", text(v))).collect()
        }
        Ok(Value::String(s)) => vec![s],
        Ok(Value::Array(items)) => items.iter().map(text).collect(),
        Ok(_) => Vec::new(),
        Err(_) => {
            let trimmed = body.trim();
            if trimmed.is_empty() || trimmed.starts_with('<') { Vec::new() } else { vec![truncate_chars(trimmed, 200)] }
        }
    }
}

/// The secrets an error message must never carry.
pub(crate) struct Scrub<'a> {
    pub client_secret: &'a str,
    pub token: Option<&'a str>,
}

impl Scrub<'_> {
    pub(crate) fn apply(&self, text: &str) -> String {
        let text = redact(text, self.client_secret);
        match self.token {
            Some(token) => redact(&text, token),
            None => text,
        }
    }
}

/// The answer's text as an error message: `{operation}: HTTP {status}: {messages}`, scrubbed
/// and bounded.
fn message(status: StatusCode, body: &str, operation: &str, scrub: &Scrub<'_>) -> String {
    let messages: Vec<String> = error_messages(body).iter().map(|m| scrub.apply(m)).collect();
    let summary = if messages.is_empty() { String::new() } else { format!(": {}", messages.join("; ")) };
    truncate_chars(&format!("{operation}: HTTP {}{summary}", status.as_u16()), MAX_MESSAGE_CHARS)
}

/// Classifies a failed `/api` answer (see the module docs).
pub(crate) fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str, operation: &str, scrub: &Scrub<'_>) -> SinkError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return SinkError::Throttled { retry_after: Some(retry_after.unwrap_or(DEFAULT_THROTTLE_DELAY)) };
    }
    let text = message(status, body, operation, scrub);
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return SinkError::Unauthorized(text);
    }
    if status.is_server_error() {
        return SinkError::Unavailable(text);
    }
    SinkError::Rejected(text)
}

/// Classifies a failed token request: a refused client, secret, grant or tenant (400, 401, 403)
/// is [`SinkError::Unauthorized`] — nothing but new settings makes it work.
pub(crate) fn classify_token(status: StatusCode, retry_after: Option<Duration>, body: &str, scrub: &Scrub<'_>) -> SinkError {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SinkError::Unauthorized(message(status, body, "token request", scrub))
        }
        other => classify(other, retry_after, body, "token request", scrub),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::Classified;

    const SCRUB: Scrub<'static> = Scrub { client_secret: "Sup3rSecretValue", token: Some("tok-abcdef123456") };

    #[test]
    fn a_400_keyed_by_field_is_a_rejection_naming_the_fields() {
        let error = classify(StatusCode::BAD_REQUEST, None, r#"{"[0].client_id": "Client 9 does not exist"}"#, "create ticket", &SCRUB);
        assert!(matches!(&error, SinkError::Rejected(m) if m.contains("[0].client_id: Client 9 does not exist")), "{error:?}");
        assert!(matches!(classify(StatusCode::NOT_FOUND, None, "", "x", &SCRUB), SinkError::Rejected(_)));
    }

    #[test]
    fn throttling_refusals_and_outages_are_classified() {
        let throttled = classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(4)), "", "x", &SCRUB);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(4)));
        assert_eq!(classify(StatusCode::TOO_MANY_REQUESTS, None, "", "x", &SCRUB).retry_after(), Some(DEFAULT_THROTTLE_DELAY));
        assert!(matches!(classify(StatusCode::FORBIDDEN, None, "", "x", &SCRUB), SinkError::Unauthorized(_)));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, None, "<html/>", "x", &SCRUB), SinkError::Unavailable(_)));
        let token = classify_token(StatusCode::BAD_REQUEST, None, r#"{"error":"invalid_client","error_description":"bad"}"#, &SCRUB);
        assert!(matches!(&token, SinkError::Unauthorized(m) if m.contains("invalid_client: bad")), "{token:?}");
        assert!(matches!(classify_token(StatusCode::SERVICE_UNAVAILABLE, None, "", &SCRUB), SinkError::Unavailable(_)));
    }

    #[test]
    fn error_messages_never_carry_the_secret_or_the_token_and_are_bounded() {
        let echoed = format!(r#"{{"secret": "Sup3rSecretValue", "token": "tok-abcdef123456", "long": "{}"}}"#, "x".repeat(2000));
        let text = classify(StatusCode::BAD_REQUEST, None, &echoed, "x", &SCRUB).to_string();
        assert!(!text.contains("Sup3rSecretValue") && !text.contains("tok-abcdef123456"), "{text}");
        assert!(text.chars().count() <= MAX_MESSAGE_CHARS + 40);
    }

    #[test]
    fn error_bodies_are_read_as_objects_strings_or_aspnet_messages() {
        assert_eq!(error_messages(r#"{"Message":"wrong method"}"#), ["wrong method"]);
        assert_eq!(error_messages(r#""plain""#), ["plain"]);
        assert_eq!(error_messages(r#"{"a":"x","b":null}"#), ["a: x"]);
        assert!(error_messages("").is_empty() && error_messages("<html>").is_empty());
    }
}
