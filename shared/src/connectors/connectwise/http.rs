//! Transport: the headers every request carries, the one place a request is sent (URL policy,
//! request gate, send, classify) and the classification of ConnectWise's failures.

use super::ConnectWiseClient;
use crate::connectors::{redact, retry_after, transport_failure, truncate_chars};
use crate::error::SinkError;
use crate::secret::SecretString;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

/// The ConnectWise model version Vigil is written against.
pub const ACCEPT_HEADER: &str = "application/vnd.connectwise.com+json; version=2025.1";
/// ConnectWise's largest page.
pub(super) const PAGE_SIZE: usize = 1000;
/// Longest remote message kept in an error.
const MAX_MESSAGE_CHARS: usize = 500;

/// `Authorization: Basic base64("{company}+{public}:{private}")` (marked sensitive), `clientId`
/// and the versioned `Accept`; `None` when a value cannot be sent in a header.
pub(super) fn request_headers(company_id: &str, public_key: &str, private_key: &SecretString, client_id: &str) -> Option<HeaderMap> {
    let basic = BASE64.encode(format!("{company_id}+{public_key}:{}", private_key.expose()));
    let mut authorization = HeaderValue::from_str(&format!("Basic {basic}")).ok()?;
    authorization.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, authorization);
    headers.insert(HeaderName::from_static("clientid"), HeaderValue::from_str(client_id.trim()).ok()?);
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER));
    Some(headers)
}

/// What a `404` means for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    /// The path does not exist: a permanent refusal.
    Rejected,
    /// The request names one ticket: ConnectWise's JSON `404` means it was deleted or merged
    /// away ([`SinkError::Gone`]). The server's HTML `404` page (a wrong `api_root`) stays a
    /// refusal, so a misconfigured address never retires tickets.
    Gone,
}

impl ConnectWiseClient {
    /// Sends one request; a success is returned as its body text. The URL is checked against
    /// the destination policy and the request gate admits it first: a refused address or an
    /// exhausted share sends nothing.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        operation: &str,
        missing: Missing,
    ) -> Result<String, SinkError> {
        let url = self
            .policy
            .validate(&format!("{}{path}", self.api_root))
            .map_err(|refused| SinkError::Rejected(format!("{operation}: the ConnectWise api_root is refused: {refused}")))?;
        self.gate.admit().await?;
        let mut request = self.http.request(method, url).headers(self.headers.clone());
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            // `json` also sets `Content-Type: application/json`.
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let text = response.text().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        if status.is_success() {
            return Ok(text);
        }
        let error = classify_error(status, retry, &redact(&text, self.private_key.expose()), operation, missing);
        tracing::warn!(operation, status = status.as_u16(), error = %error, "ConnectWise request failed");
        Err(error)
    }

    /// `GET` whose body is read as `T`; an unreadable body is transient (a proxy's page, a
    /// truncated answer).
    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        operation: &str,
        missing: Missing,
    ) -> Result<T, SinkError> {
        let text = self.call(Method::GET, path, query, None, operation, missing).await?;
        serde_json::from_str(&text).map_err(|e| SinkError::Unavailable(format!("{operation}: unexpected response body: {e}")))
    }

    /// Every item of a list, [`PAGE_SIZE`] per request, reading at most `max_pages` pages
    /// (`page` is 1-based).
    pub(super) async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        operation: &str,
        max_pages: usize,
    ) -> Result<Vec<T>, SinkError> {
        let page_size = PAGE_SIZE.to_string();
        let mut all = Vec::new();
        for page in 1..=max_pages {
            let page = page.to_string();
            let mut paged = query.to_vec();
            paged.push(("pageSize", page_size.as_str()));
            paged.push(("page", page.as_str()));
            let items: Vec<T> = self.get(path, &paged, operation, Missing::Rejected).await?;
            let last = items.len() < PAGE_SIZE;
            all.extend(items);
            if last {
                break;
            }
        }
        Ok(all)
    }
}

#[derive(Deserialize, Default)]
struct CwError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<Vec<CwFieldError>>,
}

#[derive(Deserialize)]
struct CwFieldError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

/// Classifies a failed ConnectWise response. The description names the operation, the status,
/// ConnectWise's `code` and `message`, and each per-field error.
pub(super) fn classify_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
    operation: &str,
    missing: Missing,
) -> SinkError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return SinkError::Throttled { retry_after };
    }
    let parsed: Option<CwError> = serde_json::from_str(body).ok();
    let is_json = parsed.as_ref().is_some_and(|p| p.code.is_some() || p.message.is_some());
    let parsed = parsed.unwrap_or_default();
    let mut description = format!("{operation}: HTTP {}", status.as_u16());
    if let Some(code) = parsed.code.as_deref().filter(|c| !c.is_empty()) {
        let _ = write!(description, " {code}");
    }
    match parsed.message.as_deref().filter(|m| !m.is_empty()) {
        Some(message) => {
            let _ = write!(description, ": {message}");
        }
        None if parsed.code.is_none() && !body.trim().is_empty() => {
            let _ = write!(description, ": {}", truncate_chars(body.trim(), 200));
        }
        None => {}
    }
    for error in parsed.errors.iter().flatten() {
        let field = error.field.as_deref().unwrap_or("");
        let code = error.code.as_deref().unwrap_or("");
        let message = error.message.as_deref().unwrap_or("");
        let _ = write!(description, "; {field}: {code} {message}");
    }
    let description = truncate_chars(description.trim_end(), MAX_MESSAGE_CHARS);
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SinkError::Unavailable(description)
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        SinkError::Unauthorized(description)
    } else if status == StatusCode::NOT_FOUND && missing == Missing::Gone && is_json {
        SinkError::Gone(description)
    } else {
        SinkError::Rejected(description)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::{Classified, ErrorClass};

    #[test]
    fn errors_are_classified_by_status_with_connectwise_details() {
        let invalid = r#"{"code":"InvalidObject","message":"ticket object is invalid","errors":[{"code":"NullValue","message":"summary is required","resource":"ticket","field":"summary"}]}"#;
        let error = classify_error(StatusCode::BAD_REQUEST, None, invalid, "create ticket", Missing::Rejected);
        assert!(
            matches!(&error, SinkError::Rejected(m) if m.contains("InvalidObject") && m.contains("ticket object is invalid") && m.contains("summary: NullValue summary is required")),
            "{error}"
        );
        let throttled = classify_error(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(1)), "", "x", Missing::Rejected);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(1)));
        let exception = r#"{"code":"ConnectWiseApi","message":"An error occurred","errors":null}"#;
        assert_eq!(
            classify_error(StatusCode::INTERNAL_SERVER_ERROR, None, exception, "x", Missing::Rejected).class(),
            ErrorClass::Transient
        );
        assert_eq!(classify_error(StatusCode::GATEWAY_TIMEOUT, None, "<html/>", "x", Missing::Rejected).class(), ErrorClass::Transient);
        let unauthenticated = r#"{"code":"Unauthorized","message":"UserNotAuthenticated"}"#;
        assert!(matches!(
            classify_error(StatusCode::UNAUTHORIZED, None, unauthenticated, "x", Missing::Rejected),
            SinkError::Unauthorized(_)
        ));
        assert!(matches!(classify_error(StatusCode::FORBIDDEN, None, "", "x", Missing::Rejected), SinkError::Unauthorized(_)));
    }

    #[test]
    fn a_json_404_on_a_ticket_is_gone_but_an_html_404_page_stays_a_refusal() {
        let not_found = r#"{"code":"NotFound","message":"Ticket with id 5 was not found"}"#;
        let gone = classify_error(StatusCode::NOT_FOUND, None, not_found, "add note", Missing::Gone);
        assert!(matches!(&gone, SinkError::Gone(m) if m.contains("Ticket with id 5 was not found")), "{gone:?}");
        assert!(matches!(classify_error(StatusCode::NOT_FOUND, None, not_found, "lookup", Missing::Rejected), SinkError::Rejected(_)));
        let page = "<html><body>404 - File or directory not found.</body></html>";
        let wrong_root = classify_error(StatusCode::NOT_FOUND, None, page, "add note", Missing::Gone);
        assert!(matches!(&wrong_root, SinkError::Rejected(m) if m.contains("404")), "{wrong_root:?}");
        assert_eq!(wrong_root.class(), ErrorClass::Permanent);
    }

    #[test]
    fn headers_carry_the_keys_only_in_the_sensitive_authorization_header() {
        let key = SecretString::new("priv-key-1");
        let headers = request_headers("acme", "pub", &key, " 00000000-0000-4000-8000-00000000c1d0 ").unwrap();
        assert_eq!(headers[AUTHORIZATION], format!("Basic {}", BASE64.encode("acme+pub:priv-key-1")));
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert_eq!(headers["clientId"], "00000000-0000-4000-8000-00000000c1d0");
        assert_eq!(headers[ACCEPT], ACCEPT_HEADER);
        assert!(request_headers("acme", "pub", &key, "bad\nid").is_none());
    }
}
