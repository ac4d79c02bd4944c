//! Connectors of the destinations that hear about alerts without keeping tickets, each a
//! [`crate::ports::MessageChannel`]: Microsoft Teams (Workflows webhooks, [`teams`]), Slack
//! (incoming webhooks, [`slack`]), signed webhooks ([`signed_webhook`]) and e-mail
//! ([`email`], over the [`crate::ports::MailSender`] port).
//!
//! [`post_json`] is the one HTTP post they share, and the one place that says on which side of
//! the wire a failure happened: refused or never sent ([`PostError::NotPosted`]: safe to post
//! again) or sent without an answer ([`PostError::MaybePosted`]).

pub mod email;
pub mod signed_webhook;
pub mod slack;
pub mod teams;

use super::{redact, retry_after, transport_failure, truncate_chars};
use crate::error::SinkError;
use crate::ports::{PostError, RequestGate};

/// What a channel answered with a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub status: u16,
    pub body: String,
}

/// Posts `body` as JSON to `url` with `headers`, through the destination's request gate.
///
/// * 2xx → accepted;
/// * 429 → throttled (with `Retry-After`), not posted;
/// * 401/403 → credentials refused; 3xx (a redirect the client did not follow: to another
///   origin), 400, 404, 410, 413, 422 → refused;
///   both not posted and permanent (a revoked or removed endpoint, a payload it cannot take);
/// * 502 and 504 (a gateway gave up on a backend that may have taken it) and a request sent
///   without an answer (the client's timeout, a connection lost) → maybe posted;
/// * other 5xx and a connection that never opened → not posted, transient.
///
/// `what` names the channel in errors; error texts never carry the URL.
///
/// # Errors
/// See above.
pub async fn post_json(
    http: &reqwest::Client,
    gate: &RequestGate,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    what: &str,
) -> Result<Accepted, PostError> {
    gate.admit().await.map_err(PostError::NotPosted)?;
    let mut request = http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let failure = SinkError::Unavailable(without_url(&transport_failure(what, &error), url));
            return Err(if error.is_connect() { PostError::NotPosted(failure) } else { PostError::MaybePosted(failure) });
        }
    };
    let status = response.status().as_u16();
    let wait = retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let said = without_url(&truncate_chars(text.trim(), 200), url);
    match status {
        200..=299 => Ok(Accepted { status, body: text }),
        429 => Err(PostError::NotPosted(SinkError::Throttled { retry_after: wait })),
        401 | 403 => Err(PostError::NotPosted(SinkError::Unauthorized(format!("{what} refused the credentials ({status} {said})")))),
        300..=399 => {
            Err(PostError::NotPosted(SinkError::Rejected(format!("{what} answered a redirect ({status}); redirects are not followed"))))
        }
        404 | 410 => Err(PostError::NotPosted(SinkError::Rejected(format!("{what}: the endpoint no longer exists ({status} {said})")))),
        502 | 504 => Err(PostError::MaybePosted(SinkError::Unavailable(format!("{what}: gateway failure ({status})")))),
        500..=599 => Err(PostError::NotPosted(SinkError::Unavailable(format!("{what} is unavailable ({status} {said})")))),
        _ => Err(PostError::NotPosted(SinkError::Rejected(format!("{what} refused the message ({status} {said})")))),
    }
}

/// `text` without `url`, its path or its query: a chat webhook's URL is its credential (Slack's
/// secret is in the path, a Workflows `sig` in the query), and a service that echoes a request
/// must not push it into an error or a log.
fn without_url(text: &str, url: &str) -> String {
    let mut text = redact(text, url);
    if let Ok(parsed) = url::Url::parse(url) {
        text = redact(&text, parsed.path());
        if let Some(query) = parsed.query() {
            text = redact(&text, query);
        }
    }
    text
}

/// A chat webhook whose URL is its credential (Teams Workflows, Slack): the client, the URL
/// (never shown in `Debug` or errors) and the destination's request gate.
pub struct SecretUrlWebhook {
    http: reqwest::Client,
    url: crate::secret::SecretString,
    gate: RequestGate,
    what: &'static str,
}

impl std::fmt::Debug for SecretUrlWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretUrlWebhook").field("what", &self.what).field("url", &"<redacted>").finish_non_exhaustive()
    }
}

impl SecretUrlWebhook {
    /// The webhook at `url`, named `what` in errors.
    #[must_use]
    pub fn new(http: reqwest::Client, url: crate::secret::SecretString, gate: RequestGate, what: &'static str) -> Self {
        Self { http, url, gate, what }
    }

    /// Posts `body` as JSON (see [`post_json`]).
    ///
    /// # Errors
    /// See [`post_json`].
    pub async fn send(&self, body: &serde_json::Value) -> Result<Accepted, PostError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        post_json(&self.http, &self.gate, self.url.expose(), &[], bytes, self.what).await
    }
}

/// Escapes the three characters chat markup gives meaning to (`&`, `<`, `>`).
#[must_use]
pub fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The problems a test post found: none when it was accepted, else the failure in words.
#[must_use]
pub fn test_outcome(result: Result<(), PostError>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(error) => vec![error.into_sink().to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_webhook_url_never_reaches_an_error_text() {
        let url = "https://hooks.slack.com/services/T0/B0/abcdefsecret";
        let echoed = without_url("invalid_token for /services/T0/B0/abcdefsecret", url);
        assert!(!echoed.contains("abcdefsecret"), "{echoed}");
        let flow = "https://x.api.powerplatform.com/workflows/1?api-version=1&sp=%2F&sv=1.0&sig=s1gnature";
        assert!(!without_url("bad request api-version=1&sp=%2F&sv=1.0&sig=s1gnature", flow).contains("s1gnature"));
    }
}
