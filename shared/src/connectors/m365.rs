//! The Office 365 Management Activity API as an [`AuditSource`] and a [`SubscriptionManager`].
//!
//! Authentication is the OAuth2 client-credentials grant against the customer tenant's v2 token
//! endpoint (`{login}/{tenant}/oauth2/v2.0/token`, scope `{management}/.default`). Tokens come
//! from the shared `identity::TokenProvider`, cached per (MSP, tenant, scope, credential fingerprint) until five minutes
//! before they expire; a `401` from the API drops the cached token and retries once with a fresh
//! one.
//!
//! Every Management API request carries `PublisherIdentifier` (the vendor's tenant GUID), also
//! the `NextPageUri` follow-ups and the `contentUri` blob downloads, where it is appended when
//! missing. A listing that fails with AF20022 (no subscription) or AF20023 (disabled) starts the
//! subscription and lists again, once; if that listing still fails so (the live service can
//! answer AF20023 for a while after a start) the error is transient, not a refusal. The start
//! response's body is not read, so its `contentType` spelling (`Audit.Sharepoint`) never matters.
//!
//! Starting a subscription can register a webhook (`{"webhook":{"address","authId","expiration"}}`
//! in the start body); Microsoft validates the address during the call, and a failed validation
//! is AF20021, a [`SourceError::Rejected`]. The `authId` is a secret: never logged.
//!
//! Errors are classified here, once (see `shared/reference/microsoft-apis.md` §1.6 and §2.7):
//! consent and permission problems (AADSTS700016, AF10001, auditing disabled …) are
//! [`SourceError::AccessRefused`]; AF429 / 429 are [`SourceError::Throttled`] with the server's
//! `Retry-After`; 5xx, AF50000 and timeouts are [`SourceError::Unavailable`]; any other refusal
//! is [`SourceError::Rejected`]. Neither the client secret nor an access token ever appears in
//! an error or a log line.

use super::identity::TokenProvider;
use super::{LazyHttp, retry_after, transport_failure, truncate_chars};
use crate::error::SourceError;
use crate::ids::{ContentType, TenantId};
use crate::ports::{AuditSource, ContentBlob, ListedSubscription, SubscriptionManager, TimeWindow, WebhookRegistration, WebhookState};
use crate::secret::SecretString;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use std::time::Duration;

/// Listing stops (as unavailable) after this many pages: a `NextPageUri` loop, not real data.
const MAX_PAGES: usize = 2000;
/// Longest remote message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;
/// The query parameter every Management API request carries.
const PUBLISHER_PARAM: &str = "PublisherIdentifier";

/// Where the identity platform and the Management Activity API live (one cloud).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct M365Endpoints {
    /// Token host, e.g. `https://login.microsoftonline.com` (no trailing slash needed).
    pub login_base: String,
    /// Management API root, e.g. `https://manage.office.com`; also the token scope's resource.
    pub management_base: String,
}

impl M365Endpoints {
    /// The commercial ("Enterprise") cloud.
    #[must_use]
    pub fn commercial() -> Self {
        Self { login_base: "https://login.microsoftonline.com".into(), management_base: "https://manage.office.com".into() }
    }

    fn login(&self) -> &str {
        self.login_base.trim_end_matches('/')
    }

    fn management(&self) -> &str {
        self.management_base.trim_end_matches('/')
    }
}

/// A client of the Office 365 Management Activity API for many customer tenants.
pub struct ManagementActivityClient {
    /// Built on the first request (see [`LazyHttp`]).
    http: LazyHttp,
    endpoints: M365Endpoints,
    publisher_identifier: String,
    /// Access tokens for the Management API's scope.
    tokens: TokenProvider,
}

impl std::fmt::Debug for ManagementActivityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementActivityClient")
            .field("endpoints", &self.endpoints)
            .field("publisher_identifier", &self.publisher_identifier)
            .finish_non_exhaustive()
    }
}

/// Which Management API operation a request is, for error messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    ListContent,
    StartSubscription,
    ListSubscriptions,
    StopSubscription,
    FetchContent,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::ListContent => "list content",
            Self::StartSubscription => "start subscription",
            Self::ListSubscriptions => "list subscriptions",
            Self::StopSubscription => "stop subscription",
            Self::FetchContent => "fetch content",
        }
    }
}

/// A Management API answer that was not a success.
struct Failure {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: String,
}

impl ManagementActivityClient {
    /// A client for one cloud. `publisher_identifier` is the vendor's (Vigil operator's) tenant
    /// GUID, sent with every request so throttling counts against our own quota.
    ///
    /// `http` is a [`LazyHttp`] (built on the first request; pass clones of one to share it) or
    /// a `reqwest::Client` already built.
    #[must_use]
    pub fn new(http: impl Into<LazyHttp>, endpoints: M365Endpoints, publisher_identifier: String) -> Self {
        let http = http.into();
        let tokens = TokenProvider::new(http.clone(), endpoints.login());
        Self { http, endpoints, publisher_identifier, tokens }
    }

    /// The Management API's token scope, `{management}/.default`.
    fn scope(&self) -> String {
        format!("{}/.default", self.endpoints.management())
    }

    fn forget_token(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) {
        self.tokens.forget(tenant_id, credentials, &self.scope());
    }

    /// A valid access token for the tenant: cached, or freshly requested.
    async fn token(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) -> Result<SecretString, SourceError> {
        self.tokens.token(tenant_id, credentials, &self.scope()).await
    }

    /// Sends a Management API request with a bearer token; on `401` forgets the token and tries
    /// once more with a fresh one.
    async fn send(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        method: reqwest::Method,
        url: &Url,
        operation: Operation,
    ) -> Result<Result<reqwest::Response, Failure>, SourceError> {
        self.send_with_body(tenant_id, credentials, method, url, operation, None).await
    }

    /// [`Self::send`] with a JSON body on a POST. The body may carry a secret (a webhook
    /// `authId`); it is never logged.
    async fn send_with_body(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        method: reqwest::Method,
        url: &Url,
        operation: Operation,
        json_body: Option<&str>,
    ) -> Result<Result<reqwest::Response, Failure>, SourceError> {
        let mut refreshed = false;
        loop {
            let token = self.token(tenant_id, credentials).await?;
            let mut request = self.http.for_request(operation.as_str())?.request(method.clone(), url.clone()).bearer_auth(token.expose());
            if method == reqwest::Method::POST {
                request = match json_body {
                    Some(body) => request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_owned()),
                    // An empty body, sent with `Content-Length: 0` (IIS refuses a POST without one).
                    None => request.body(""),
                };
            }
            let response = request.send().await.map_err(|e| SourceError::Unavailable(transport_failure(operation.as_str(), &e)))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                tracing::debug!(tenant_id = %tenant_id, operation = operation.as_str(), "access token refused; requesting a new one");
                self.forget_token(tenant_id, credentials);
                refreshed = true;
                continue;
            }
            if status.is_success() {
                return Ok(Ok(response));
            }
            let retry = retry_after(response.headers());
            let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure(operation.as_str(), &e)))?;
            return Ok(Err(Failure { status, retry_after: retry, body }));
        }
    }

    /// The `PublisherIdentifier` for calls with these credentials: the MSP's own, when the
    /// poller filled it in, else the deployment's.
    fn publisher<'a>(&'a self, credentials: &'a M365AppCredentials) -> &'a str {
        credentials.publisher_identifier.as_deref().filter(|p| !p.is_empty()).unwrap_or(&self.publisher_identifier)
    }

    fn feed_url(&self, tenant_id: &TenantId, publisher: &str, operation: &str, query: &[(&str, &str)]) -> Result<Url, SourceError> {
        let base = format!("{}/api/v1.0/{}/activity/feed/{operation}", self.endpoints.management(), tenant_id);
        let mut pairs: Vec<(&str, &str)> = query.to_vec();
        pairs.push((PUBLISHER_PARAM, publisher));
        Url::parse_with_params(&base, &pairs)
            .map_err(|e| SourceError::Rejected { code: "InvalidUrl".into(), message: format!("{operation}: {e}") })
    }

    /// Turns a URL handed out by the service (`NextPageUri`, `contentUri`) into one we will send
    /// our bearer token to: absolute, on the Management API's origin, with `PublisherIdentifier`.
    fn service_url(&self, raw: &str, publisher: &str, operation: Operation) -> Result<Url, SourceError> {
        let base = Url::parse(&format!("{}/", self.endpoints.management()))
            .map_err(|e| SourceError::Rejected { code: "InvalidUrl".into(), message: format!("management base: {e}") })?;
        let url = base
            .join(raw.trim())
            .map_err(|e| SourceError::Rejected { code: "InvalidUrl".into(), message: format!("{}: {e}", operation.as_str()) })?;
        if url.origin() != base.origin() {
            return Err(SourceError::Rejected {
                code: "ForeignUrl".into(),
                message: format!(
                    "{}: the service pointed to {} instead of {}",
                    operation.as_str(),
                    url.origin().ascii_serialization(),
                    base.origin().ascii_serialization()
                ),
            });
        }
        Ok(with_publisher_identifier(url, publisher))
    }

    /// Starts the content type's subscription, registering `webhook` if given; "already enabled"
    /// (AF20024) counts as success, a webhook that failed validation is AF20021.
    async fn subscribe(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        webhook: Option<&WebhookRegistration>,
    ) -> Result<(), SourceError> {
        let url =
            self.feed_url(tenant_id, self.publisher(credentials), "subscriptions/start", &[("contentType", content_type.as_str())])?;
        let body = webhook.map(|webhook| {
            serde_json::json!({"webhook": {"address": webhook.address, "authId": webhook.auth_id.expose(), "expiration": ""}}).to_string()
        });
        match self
            .send_with_body(tenant_id, credentials, reqwest::Method::POST, &url, Operation::StartSubscription, body.as_deref())
            .await?
        {
            Ok(_) => {
                tracing::info!(tenant_id = %tenant_id, content_type = %content_type, webhook = webhook.is_some(), "started the audit subscription");
                Ok(())
            }
            Err(failure) if af_error(&failure.body).is_some_and(|(code, _)| code == "AF20024") => Ok(()),
            Err(failure) => Err(self.failure_error(failure, Operation::StartSubscription)),
        }
    }

    fn failure_error(&self, failure: Failure, operation: Operation) -> SourceError {
        let error = classify_management_error(failure.status, failure.retry_after, &failure.body);
        tracing::warn!(operation = operation.as_str(), status = failure.status.as_u16(), error = %error, "Management Activity API request failed");
        error
    }
}

#[async_trait]
impl AuditSource for ManagementActivityClient {
    async fn list_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        window: TimeWindow,
    ) -> Result<Vec<ContentBlob>, SourceError> {
        let start = format_window_time(window.start);
        let end = format_window_time(window.end);
        let first = self.feed_url(
            tenant_id,
            self.publisher(credentials),
            "subscriptions/content",
            &[("contentType", content_type.as_str()), ("startTime", &start), ("endTime", &end)],
        )?;
        let mut url = first.clone();
        let mut blobs = Vec::new();
        let mut started = false;
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(SourceError::Unavailable(format!("list content: more than {MAX_PAGES} pages; the paging does not end")));
            }
            let response = match self.send(tenant_id, credentials, reqwest::Method::GET, &url, Operation::ListContent).await? {
                Ok(response) => response,
                Err(failure) => {
                    let missing_subscription = af_error(&failure.body).is_some_and(|(code, _)| code == "AF20022" || code == "AF20023");
                    if missing_subscription && !started {
                        tracing::info!(tenant_id = %tenant_id, content_type = %content_type, "no enabled subscription; starting it");
                        self.subscribe(tenant_id, credentials, content_type, None).await?;
                        started = true;
                        url = first.clone();
                        blobs.clear();
                        pages = 0;
                        continue;
                    }
                    if missing_subscription {
                        // Observed live: a subscription can answer AF20023 for a while after a
                        // successful start. Not a refusal: list again later.
                        let (code, _) = af_error(&failure.body).unwrap_or_default();
                        tracing::warn!(tenant_id = %tenant_id, content_type = %content_type, code = %code, "subscription not enabled yet after its start");
                        return Err(SourceError::Unavailable(format!(
                            "list content: {code}: the subscription was started but is not enabled yet"
                        )));
                    }
                    return Err(self.failure_error(failure, Operation::ListContent));
                }
            };
            let next = next_page_uri(response.headers());
            let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure("list content", &e)))?;
            blobs.extend(parse_content_list(&body)?);
            match next {
                Some(next) => url = self.service_url(&next, self.publisher(credentials), Operation::ListContent)?,
                None => break,
            }
        }
        tracing::debug!(tenant_id = %tenant_id, content_type = %content_type, blobs = blobs.len(), pages, "listed audit content");
        Ok(blobs)
    }

    async fn fetch_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        blob: &ContentBlob,
    ) -> Result<String, SourceError> {
        let url = self.service_url(&blob.content_uri, self.publisher(credentials), Operation::FetchContent)?;
        match self.send(tenant_id, credentials, reqwest::Method::GET, &url, Operation::FetchContent).await? {
            Ok(response) => {
                let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure("fetch content", &e)))?;
                // A byte-order mark is an encoding artefact, not content.
                Ok(match body.strip_prefix('\u{feff}') {
                    Some(rest) => rest.to_owned(),
                    None => body,
                })
            }
            Err(failure) => Err(self.failure_error(failure, Operation::FetchContent)),
        }
    }
}

#[async_trait]
impl SubscriptionManager for ManagementActivityClient {
    async fn start_subscription(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        webhook: Option<&WebhookRegistration>,
    ) -> Result<(), SourceError> {
        self.subscribe(tenant_id, credentials, content_type, webhook).await
    }

    /// `POST subscriptions/stop` (documented 200, any 2xx accepted); "no subscription"
    /// (AF20022) counts as stopped, so a repeated stop succeeds.
    async fn stop_subscription(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
    ) -> Result<(), SourceError> {
        let url = self.feed_url(tenant_id, self.publisher(credentials), "subscriptions/stop", &[("contentType", content_type.as_str())])?;
        match self.send_with_body(tenant_id, credentials, reqwest::Method::POST, &url, Operation::StopSubscription, None).await? {
            Ok(_) => {
                tracing::info!(tenant_id = %tenant_id, content_type = %content_type, "stopped the audit subscription");
                Ok(())
            }
            Err(failure) if af_error(&failure.body).is_some_and(|(code, _)| code == "AF20022") => Ok(()),
            Err(failure) => Err(self.failure_error(failure, Operation::StopSubscription)),
        }
    }

    async fn list_subscriptions(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
    ) -> Result<Vec<ListedSubscription>, SourceError> {
        let url = self.feed_url(tenant_id, self.publisher(credentials), "subscriptions/list", &[])?;
        match self.send(tenant_id, credentials, reqwest::Method::GET, &url, Operation::ListSubscriptions).await? {
            Ok(response) => {
                let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure("list subscriptions", &e)))?;
                parse_subscription_list(&body)
            }
            Err(failure) => Err(self.failure_error(failure, Operation::ListSubscriptions)),
        }
    }
}

/// One element of `subscriptions/list` (reference §2.2): `status` may be missing, `webhook`
/// null, and `contentType` cased differently (`Audit.Sharepoint`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionElement {
    content_type: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    webhook: Option<WebhookElement>,
}

#[derive(Deserialize)]
struct WebhookElement {
    #[serde(default)]
    status: Option<String>,
}

fn parse_subscription_list(body: &str) -> Result<Vec<ListedSubscription>, SourceError> {
    let listed: Vec<SubscriptionElement> =
        serde_json::from_str(body).map_err(|e| SourceError::Unavailable(format!("list subscriptions: unexpected response body: {e}")))?;
    Ok(listed
        .into_iter()
        .filter_map(|element| {
            let content_type = ContentType::from_wire(&element.content_type)?;
            let enabled = element.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("enabled"));
            let webhook = element.webhook.map(|hook| match hook.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("enabled") => WebhookState::Enabled,
                Some("disabled") => WebhookState::Disabled,
                Some("expired") => WebhookState::Expired,
                other => WebhookState::Other(other.unwrap_or_default().to_owned()),
            });
            Some(ListedSubscription { content_type, enabled, webhook })
        })
        .collect())
}

/// `startTime`/`endTime` as the API documents them: UTC, `YYYY-MM-DDTHH:MM:SS`, no `Z`.
fn format_window_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `url` with `PublisherIdentifier` appended unless it already has one (any case). The rest of
/// the URL is kept verbatim (`$` in content ids stays `$`).
fn with_publisher_identifier(mut url: Url, publisher_identifier: &str) -> Url {
    let present = url.query_pairs().any(|(name, _)| name.eq_ignore_ascii_case(PUBLISHER_PARAM));
    if !present {
        url.query_pairs_mut().append_pair(PUBLISHER_PARAM, publisher_identifier);
    }
    url
}

/// The next page's URL: `NextPageUri`, or `NextPageUrl` as the troubleshooting page calls it.
fn next_page_uri(headers: &HeaderMap) -> Option<String> {
    ["NextPageUri", "NextPageUrl"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .find(|value| !value.is_empty())
        .map(str::to_owned)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedBlob {
    content_id: String,
    content_uri: String,
    content_created: DateTime<Utc>,
}

fn parse_content_list(body: &str) -> Result<Vec<ContentBlob>, SourceError> {
    let listed: Vec<ListedBlob> =
        serde_json::from_str(body).map_err(|e| SourceError::Unavailable(format!("list content: unexpected response body: {e}")))?;
    Ok(listed
        .into_iter()
        .map(|blob| ContentBlob { content_id: blob.content_id, content_uri: blob.content_uri, content_created: blob.content_created })
        .collect())
}

#[derive(Deserialize)]
struct AfErrorBody {
    error: AfErrorDetail,
}

#[derive(Deserialize)]
struct AfErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `(code, message)` of a Management API error body `{"error":{"code":"AF…","message":…}}`.
fn af_error(body: &str) -> Option<(String, String)> {
    let parsed: AfErrorBody = serde_json::from_str(body).ok()?;
    Some((parsed.error.code, parsed.error.message)).filter(|(code, _)| !code.is_empty())
}

/// Whether an error says unified audit logging is off in the tenant
/// (`Microsoft.Office.Compliance.Audit.DataServiceException: Tenant <id> does not exist.`).
fn says_auditing_disabled(body: &str) -> bool {
    if body.contains("DataServiceException") && body.contains("does not exist") {
        return true;
    }
    body.match_indices("Tenant ").any(|(at, prefix)| {
        let rest = &body[at + prefix.len()..];
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        word_end > 0 && rest[word_end..].starts_with(" does not exist")
    })
}

/// Classifies a Management API failure from its status, `Retry-After` and body.
fn classify_management_error(status: StatusCode, retry_after: Option<Duration>, body: &str) -> SourceError {
    let (code, message) = af_error(body).unwrap_or_else(|| {
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("Message").or_else(|| v.get("message")).and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_owned());
        (String::new(), message)
    });
    let message = truncate_chars(&message, MAX_MESSAGE_CHARS);
    let described = |fallback: &str| {
        if message.is_empty() { fallback.to_owned() } else { message.clone() }
    };
    if code == "AF429" || status == StatusCode::TOO_MANY_REQUESTS {
        return SourceError::Throttled { retry_after };
    }
    if says_auditing_disabled(body) {
        return SourceError::AccessRefused {
            code: "AuditingDisabled".into(),
            message: described("unified audit logging is not enabled in the tenant"),
        };
    }
    if matches!(code.as_str(), "AF50000" | "AF50005" | "AF50006") || status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        let code = if code.is_empty() { format!("HTTP {}", status.as_u16()) } else { code };
        return SourceError::Unavailable(format!("{code}: {}", described("server error")));
    }
    if matches!(code.as_str(), "AF20055" | "AF20030") {
        return SourceError::WindowRefused { code, message: described("the time window was refused") };
    }
    if code == "AF10001" {
        return SourceError::AccessRefused { code, message: described("the token lacks ActivityFeed.Read") };
    }
    if status == StatusCode::UNAUTHORIZED {
        return SourceError::AccessRefused {
            code: if code.is_empty() { "Unauthorized".into() } else { code },
            message: described("a freshly issued token was refused"),
        };
    }
    let code = match (code.is_empty(), status) {
        (false, _) => code,
        (true, StatusCode::NOT_FOUND) => "NotFound".into(),
        (true, status) => format!("HTTP {}", status.as_u16()),
    };
    SourceError::Rejected { code, message: described("request refused") }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::Classified;

    fn af_body(code: &str, message: &str) -> String {
        serde_json::json!({"error": {"code": code, "message": message}}).to_string()
    }

    #[test]
    fn a_subscription_list_reads_status_and_webhook_state_and_tolerates_what_the_docs_allow() {
        let body = r#"[
            {"contentType":"Audit.Sharepoint","status":"enabled","webhook":{"status":"disabled","address":"https://h","authId":"a","expiration":null}},
            {"contentType":"Audit.Exchange","webhook":null},
            {"contentType":"Audit.General","status":"disabled","webhook":{"status":"expired"}},
            {"contentType":"DLP.All","status":"enabled","webhook":{"status":"enabled"}},
            {"contentType":"Audit.Unknown","status":"enabled"}
        ]"#;
        let listed = parse_subscription_list(body).unwrap();
        assert_eq!(
            listed,
            vec![
                ListedSubscription { content_type: ContentType::SharePoint, enabled: true, webhook: Some(WebhookState::Disabled) },
                ListedSubscription { content_type: ContentType::Exchange, enabled: false, webhook: None },
                ListedSubscription { content_type: ContentType::General, enabled: false, webhook: Some(WebhookState::Expired) },
                ListedSubscription { content_type: ContentType::Dlp, enabled: true, webhook: Some(WebhookState::Enabled) },
            ]
        );
        assert!(parse_subscription_list("[]").unwrap().is_empty());
        assert!(matches!(parse_subscription_list("{}"), Err(SourceError::Unavailable(_))));
    }

    #[test]
    fn management_errors_are_classified_from_their_bodies() {
        let classify =
            |status: u16, body: &str| classify_management_error(StatusCode::from_u16(status).unwrap(), Some(Duration::from_secs(2)), body);
        assert_eq!(classify(403, &af_body("AF429", "Too many requests. Method=GetBlob")).retry_after(), Some(Duration::from_secs(2)));
        assert!(matches!(classify(429, ""), SourceError::Throttled { .. }));
        assert!(matches!(classify(500, &af_body("AF50000", "An internal error occurred.")), SourceError::Unavailable(_)));
        assert!(matches!(classify(400, &af_body("AF50005", "internal")), SourceError::Unavailable(_)));
        assert!(matches!(classify(503, "Service Unavailable"), SourceError::Unavailable(_)));
        assert!(
            matches!(classify(403, &af_body("AF10001", "The permission set () does not include ActivityFeed.Read.")), SourceError::AccessRefused { code, .. } if code == "AF10001")
        );
        assert!(
            matches!(classify(400, &af_body("AF20030", "Start time and end time must ...")), SourceError::WindowRefused { code, .. } if code == "AF20030")
        );
        assert!(matches!(classify(404, &af_body("AF20051", "Content expired.")), SourceError::Rejected { code, .. } if code == "AF20051"));
        assert!(matches!(classify(404, "{\"Message\":\"No HTTP resource\"}"), SourceError::Rejected { code, .. } if code == "NotFound"));
        assert!(matches!(
            classify(401, "{\"Message\":\"Authorization has been denied for this request.\"}"),
            SourceError::AccessRefused { .. }
        ));
    }

    #[test]
    fn disabled_auditing_is_access_refused_but_a_deleted_tenant_is_rejected() {
        let disabled = af_body(
            "AF20012",
            "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant 5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11 does not exist.",
        );
        assert!(
            matches!(classify_management_error(StatusCode::BAD_REQUEST, None, &disabled), SourceError::AccessRefused { code, .. } if code == "AuditingDisabled")
        );
        assert!(
            matches!(classify_management_error(StatusCode::INTERNAL_SERVER_ERROR, None, "Tenant abc does not exist."), SourceError::AccessRefused { code, .. } if code == "AuditingDisabled")
        );
        let deleted = af_body("AF20011", "Specified tenant ID (5e1f2c8a) does not exist in the system or has been deleted.");
        assert!(
            matches!(classify_management_error(StatusCode::BAD_REQUEST, None, &deleted), SourceError::Rejected { code, .. } if code == "AF20011")
        );
    }

    #[test]
    fn the_af_code_is_read_from_the_error_body() {
        assert_eq!(af_error(&af_body("AF20022", "No subscription found")), Some(("AF20022".into(), "No subscription found".into())));
        assert_eq!(af_error("{\"Message\":\"x\"}"), None);
        assert_eq!(af_error("not json"), None);
    }

    fn client() -> ManagementActivityClient {
        ManagementActivityClient::new(
            reqwest::Client::new(),
            M365Endpoints { login_base: "https://login.example/".into(), management_base: "https://manage.example".into() },
            "pub-guid".into(),
        )
    }

    #[test]
    fn listing_urls_carry_the_window_and_the_publisher() {
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let start = DateTime::parse_from_rfc3339("2026-01-05T09:00:00.500Z").unwrap().with_timezone(&Utc);
        let url = client()
            .feed_url(
                &tenant,
                "pub-guid",
                "subscriptions/content",
                &[("contentType", "Audit.Exchange"), ("startTime", &format_window_time(start))],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://manage.example/api/v1.0/5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11/activity/feed/subscriptions/content?contentType=Audit.Exchange&startTime=2026-01-05T09%3A00%3A00&PublisherIdentifier=pub-guid"
        );
    }

    #[test]
    fn service_urls_get_the_publisher_appended_and_keep_dollars() {
        let client = client();
        let blob = client
            .service_url(
                "https://manage.example/api/v1.0/t/activity/feed/audit/20260105$20260105$audit_exchange$000001",
                "pub-guid",
                Operation::FetchContent,
            )
            .unwrap();
        assert_eq!(
            blob.as_str(),
            "https://manage.example/api/v1.0/t/activity/feed/audit/20260105$20260105$audit_exchange$000001?PublisherIdentifier=pub-guid"
        );
        let next = client
            .service_url(
                "https://manage.example/api/v1/t/activity/feed/subscriptions/content?contentType=Audit.General&nextPage=2026R1",
                "pub-guid",
                Operation::ListContent,
            )
            .unwrap();
        assert_eq!(
            next.as_str(),
            "https://manage.example/api/v1/t/activity/feed/subscriptions/content?contentType=Audit.General&nextPage=2026R1&PublisherIdentifier=pub-guid"
        );
        let already = client.service_url("https://manage.example/x?publisheridentifier=other", "pub-guid", Operation::ListContent).unwrap();
        assert_eq!(already.as_str(), "https://manage.example/x?publisheridentifier=other");
        assert!(
            matches!(client.service_url("https://evil.example/api", "pub-guid", Operation::FetchContent), Err(SourceError::Rejected { code, .. }) if code == "ForeignUrl"),
            "the bearer token only goes to the Management API"
        );
    }

    #[test]
    fn an_msps_own_publisher_identifier_replaces_the_deployments() {
        let client = client();
        let mut credentials = M365AppCredentials::new("app", SecretString::new("s"));
        assert_eq!(client.publisher(&credentials), "pub-guid");
        credentials.publisher_identifier = Some("msp-own-guid".into());
        assert_eq!(client.publisher(&credentials), "msp-own-guid");
    }

    #[test]
    fn both_next_page_header_spellings_are_followed() {
        let mut headers = HeaderMap::new();
        assert_eq!(next_page_uri(&headers), None);
        headers.insert("nextpageurl", "https://manage.example/next".parse().unwrap());
        assert_eq!(next_page_uri(&headers).as_deref(), Some("https://manage.example/next"));
        headers.insert("NextPageUri", "https://manage.example/uri".parse().unwrap());
        assert_eq!(next_page_uri(&headers).as_deref(), Some("https://manage.example/uri"));
    }

    #[test]
    fn content_listings_are_parsed() {
        let body = r#"[{"contentType":"Audit.SharePoint","contentId":"a$b","contentUri":"https://manage.example/x/a$b","contentCreated":"2026-01-05T10:15:00.123Z","contentExpiration":"2026-01-12T10:15:00.123Z"}]"#;
        let blobs = parse_content_list(body).unwrap();
        assert_eq!(blobs.len(), 1);
        assert_eq!(blobs[0].content_id, "a$b");
        assert_eq!(blobs[0].content_created, DateTime::parse_from_rfc3339("2026-01-05T10:15:00.123Z").unwrap().with_timezone(&Utc));
        assert!(parse_content_list("[]").unwrap().is_empty());
        assert!(matches!(parse_content_list("{}"), Err(SourceError::Unavailable(_))));
    }

    #[test]
    fn debug_output_has_no_tokens() {
        let client = client();
        assert!(!format!("{client:?}").contains("token\":"), "the token cache is not shown");
        assert_eq!(client.scope(), "https://manage.example/.default");
    }
}
