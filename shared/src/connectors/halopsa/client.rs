//! The HaloPSA client: settings and credentials, the client-credentials token (cached until
//! shortly before it expires, refreshed once when `/api` answers 401), the request gate in
//! front of every request, the one place a request is sent and its answer classified, and
//! `record_count` paging.

use super::errors::{Scrub, classify, classify_token};
use crate::connectors::destination_url::DestinationPolicy;
use crate::connectors::{retry_after, transport_failure};
use crate::destination::{Destination, DestinationCredentials};
use crate::error::SinkError;
use crate::ports::{RequestGate, SinkSetupError};
use crate::secret::SecretString;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// The destination's non-secret HaloPSA settings, as the connector uses them.
pub type Settings = crate::destination::HaloPsaSettings;

/// Items asked for per page (`page_size`).
pub const PAGE_SIZE: usize = 100;
/// Pages read at most for one list (a runaway `record_count` cannot loop forever).
pub const MAX_PAGES: usize = 200;
/// A token is renewed this long before Halo says it expires (half its lifetime when shorter).
pub const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// The lifetime assumed when the token answer has no `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A cached access token.
struct Token {
    value: SecretString,
    renew_at: Instant,
}

/// A status as `GET /api/Status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaloStatus {
    pub id: i64,
    pub name: String,
}

/// HaloPSA as a [`crate::ports::TicketSystem`], for one destination.
pub struct HaloPsaClient {
    http: reqwest::Client,
    /// The instance root (`https://msp.halopsa.com`), checked against the policy.
    root: Url,
    client_id: String,
    client_secret: SecretString,
    pub(super) settings: Settings,
    /// The routing's closing status override.
    pub(super) closed_status: Option<String>,
    gate: RequestGate,
    token: tokio::sync::Mutex<Option<Token>>,
    pub(super) statuses: tokio::sync::Mutex<Option<Arc<Vec<HaloStatus>>>>,
}

impl std::fmt::Debug for HaloPsaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloPsaClient")
            .field("url", &self.root.as_str())
            .field("tenant", &self.settings.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// The instance root of `url`: trimmed, without a trailing `/`, `/api` or `/auth` (an MSP may
/// paste the resource or authorisation server's address Halo shows).
pub(crate) fn instance_root(url: &str) -> String {
    let mut root = url.trim().trim_end_matches('/').to_owned();
    for suffix in ["/api", "/auth"] {
        if root.to_ascii_lowercase().ends_with(suffix) {
            root.truncate(root.len() - suffix.len());
        }
    }
    root.trim_end_matches('/').to_owned()
}

/// A raw answer: status, `Retry-After` and body text.
pub(super) struct Answer {
    pub status: StatusCode,
    pub retry: Option<Duration>,
    pub text: String,
}

impl HaloPsaClient {
    /// The client of `destination` (a HaloPSA one, with HaloPSA credentials), sending through
    /// `http`, asking `gate` before every request (token requests included).
    ///
    /// # Errors
    /// [`SinkSetupError::NotConfigured`] for another kind of settings or credentials, an
    /// address the policy refuses, or blank credentials.
    pub fn for_destination(
        http: reqwest::Client,
        destination: &Destination,
        credentials: DestinationCredentials,
        gate: RequestGate,
        policy: DestinationPolicy,
    ) -> Result<Self, SinkSetupError> {
        let not_configured = |why: &str| SinkSetupError::NotConfigured(format!("destination {}: {why}", destination.id));
        let crate::destination::DestinationSettings::HaloPsa(settings) = &destination.settings else {
            return Err(not_configured("not a HaloPSA destination"));
        };
        let DestinationCredentials::HaloPsa { client_id, client_secret } = credentials else {
            return Err(not_configured("the credentials are not HaloPSA credentials"));
        };
        if client_id.trim().is_empty() || client_secret.is_blank() {
            return Err(not_configured("the HaloPSA client id and secret must not be blank"));
        }
        let root =
            policy.validate(&instance_root(&settings.url)).map_err(|refused| not_configured(&format!("the HaloPSA URL {refused}")))?;
        Ok(Self {
            http,
            root,
            client_id: client_id.trim().to_owned(),
            client_secret,
            settings: settings.clone(),
            closed_status: destination.routing.closed_status.clone(),
            gate,
            token: tokio::sync::Mutex::new(None),
            statuses: tokio::sync::Mutex::new(None),
        })
    }

    fn scrub<'a>(&'a self, token: Option<&'a str>) -> Scrub<'a> {
        Scrub { client_secret: self.client_secret.expose(), token }
    }

    /// `{root}/{path}` (path without a leading `/`), with `query`.
    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, SinkError> {
        let base = self.root.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/{path}")).map_err(|e| SinkError::Invalid(format!("HaloPSA URL for {path}: {e}")))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// `POST {root}/auth/token[?tenant=]` with the client credentials (form body).
    async fn fetch_token(&self) -> Result<Token, SinkError> {
        let operation = "token request";
        let query: Vec<(&str, String)> =
            self.settings.tenant.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).map(|t| ("tenant", t.to_owned())).collect();
        let url = self.url("auth/token", &query)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
            ("scope", "all"),
        ];
        self.gate.admit().await?;
        let response =
            self.http.post(url).form(&form).send().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let text = response.text().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        if !status.is_success() {
            return Err(classify_token(status, retry, &text, &self.scrub(None)));
        }
        let body: Value = serde_json::from_str(&text).map_err(|_| SinkError::Unavailable(format!("{operation}: unreadable answer")))?;
        let value = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SinkError::Unavailable(format!("{operation}: the answer has no access_token")))?;
        let lifetime = body.get("expires_in").and_then(Value::as_u64).map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        let margin = TOKEN_MARGIN.min(lifetime / 2);
        tracing::debug!(lifetime_s = lifetime.as_secs(), "obtained a HaloPSA access token");
        Ok(Token { value: SecretString::new(value), renew_at: Instant::now() + lifetime - margin })
    }

    /// The cached token, or a new one when there is none or it is about to expire.
    async fn bearer(&self) -> Result<SecretString, SinkError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Forgets `used` (Halo refused it), unless another request already replaced it.
    async fn forget(&self, used: &SecretString) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value.expose() == used.expose()) {
            *cached = None;
        }
    }

    /// `{method} /api/{path}` with a bearer token; a 401 forgets the token and the request is
    /// sent once more with a new one. Every attempt takes one request from the gate.
    pub(super) async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        operation: &str,
    ) -> Result<Answer, SinkError> {
        let url = self.url(&format!("api/{path}"), query)?;
        let mut refreshed = false;
        loop {
            let token = self.bearer().await?;
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| SinkError::Unauthorized(format!("{operation}: the access token cannot be sent in a header")))?;
            bearer.set_sensitive(true);
            self.gate.admit().await?;
            let mut request = self.http.request(method.clone(), url.clone()).header(AUTHORIZATION, bearer);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                tracing::info!(operation, "HaloPSA refused the access token; renewing it once");
                self.forget(&token).await;
                refreshed = true;
                continue;
            }
            let retry = retry_after(response.headers());
            let text = response.text().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
            let text = self.scrub(Some(token.expose())).apply(&text);
            return Ok(Answer { status, retry, text });
        }
    }

    /// [`Self::exchange`], a failure classified, a success read as JSON (`null` when empty).
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        operation: &str,
    ) -> Result<Value, SinkError> {
        let answer = self.exchange(method, path, query, body, operation).await?;
        self.read(answer, operation)
    }

    /// A successful answer's JSON, or the classified failure.
    pub(super) fn read(&self, answer: Answer, operation: &str) -> Result<Value, SinkError> {
        if !answer.status.is_success() {
            return Err(classify(answer.status, answer.retry, &answer.text, operation, &self.scrub(None)));
        }
        if answer.text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&answer.text).map_err(|e| SinkError::Unavailable(format!("{operation}: unreadable answer: {e}")))
    }

    /// Every item of a list: `pageinate=true&page_size&page_no` from 1, the items under
    /// `plural` (or a bare array, which is the whole list), until `record_count` items were read,
    /// a page comes back empty, or `stop` says enough (it sees each page).
    pub(super) async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        plural: &str,
        operation: &str,
        mut stop: impl FnMut(&[Value]) -> bool,
    ) -> Result<Vec<Value>, SinkError> {
        let mut items = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut paged: Vec<(&str, String)> = query.to_vec();
            paged.extend([("pageinate", "true".to_owned()), ("page_size", PAGE_SIZE.to_string()), ("page_no", page.to_string())]);
            let body = self.call(Method::GET, path, &paged, None, operation).await?;
            let (page_items, total) = match body {
                Value::Array(all) => (all, None),
                Value::Object(mut object) => {
                    let total = object.get("record_count").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
                    let found = object.remove(plural).and_then(|v| if let Value::Array(a) = v { Some(a) } else { None });
                    (found.unwrap_or_default(), total)
                }
                Value::Null => (Vec::new(), Some(0)),
                other => {
                    return Err(SinkError::Unavailable(format!(
                        "{operation}: unexpected answer {}",
                        crate::connectors::truncate_chars(&other.to_string(), 100)
                    )));
                }
            };
            let empty = page_items.is_empty();
            let enough = stop(&page_items);
            items.extend(page_items);
            match total {
                None => return Ok(items),
                Some(total) if empty || enough || items.len() >= total => return Ok(items),
                Some(_) => {}
            }
        }
        Ok(items)
    }

    /// The instance's statuses (`GET /api/Status`), read once per client.
    pub(super) async fn statuses(&self) -> Result<Arc<Vec<HaloStatus>>, SinkError> {
        let mut cached = self.statuses.lock().await;
        if let Some(statuses) = cached.as_ref() {
            return Ok(statuses.clone());
        }
        let items = self.list("Status", &[], "statuses", "read statuses", |_| false).await?;
        let statuses: Arc<Vec<HaloStatus>> = Arc::new(
            items.iter().filter_map(|s| Some(HaloStatus { id: s.get("id").and_then(Value::as_i64)?, name: text(s, "name") })).collect(),
        );
        *cached = Some(statuses.clone());
        Ok(statuses)
    }

    /// The status that closes a ticket: `wanted`, else the routing's, else the one named
    /// "Closed". `None` when none is known.
    pub(super) async fn closing_status(&self, wanted: Option<&str>) -> Result<Option<i64>, SinkError> {
        if let Some(id) = wanted.or(self.closed_status.as_deref()) {
            return numeric("closed status", id).map(Some);
        }
        Ok(self.statuses().await?.iter().find(|s| s.name.eq_ignore_ascii_case("closed")).map(|s| s.id))
    }
}

/// A Halo id from its text.
pub(super) fn numeric(what: &str, text: &str) -> Result<i64, SinkError> {
    text.trim().parse::<i64>().map_err(|_| SinkError::Invalid(format!("{what} {text:?} is not a HaloPSA id (a number)")))
}

/// A string member, trimmed (empty when absent).
pub(super) fn text(item: &Value, field: &str) -> String {
    item.get(field).and_then(Value::as_str).unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::destination::{DestinationSettings, HaloPsaSettings, Routing};
    use crate::ids::MspId;

    fn destination(url: &str) -> Destination {
        let mut destination = crate::contract::sample_destination(&MspId::parse("acme").unwrap(), "halo");
        destination.settings = DestinationSettings::HaloPsa(HaloPsaSettings {
            url: url.into(),
            tenant: Some("msp".into()),
            ticket_type: None,
            note_outcome: None,
        });
        destination.routing = Routing::default();
        destination
    }

    fn credentials() -> DestinationCredentials {
        DestinationCredentials::HaloPsa { client_id: "vigil-app".into(), client_secret: SecretString::new("Halo-S3cret-Value") }
    }

    fn client(url: &str) -> Result<HaloPsaClient, SinkSetupError> {
        HaloPsaClient::for_destination(
            reqwest::Client::new(),
            &destination(url),
            credentials(),
            RequestGate::open(),
            DestinationPolicy::STRICT,
        )
    }

    #[test]
    fn the_instance_root_drops_a_pasted_api_or_auth_suffix() {
        assert_eq!(instance_root(" https://msp.halopsa.com/ "), "https://msp.halopsa.com");
        assert_eq!(instance_root("https://msp.halopsa.com/api"), "https://msp.halopsa.com");
        assert_eq!(instance_root("https://halo.msp.example/AUTH/"), "https://halo.msp.example");
    }

    #[test]
    fn no_client_is_built_for_a_refused_address_or_foreign_credentials() {
        assert!(client("https://msp.halopsa.com").is_ok());
        for refused in ["http://msp.halopsa.com", "https://10.0.0.5", "https://localhost/"] {
            assert!(matches!(client(refused), Err(SinkSetupError::NotConfigured(_))), "{refused}");
        }
        let foreign = DestinationCredentials::Tigerpaw { public_key: "p".into(), private_key: SecretString::new("k") };
        let built = HaloPsaClient::for_destination(
            reqwest::Client::new(),
            &destination("https://msp.halopsa.com"),
            foreign,
            RequestGate::open(),
            DestinationPolicy::STRICT,
        );
        assert!(matches!(built, Err(SinkSetupError::NotConfigured(_))));
    }

    #[test]
    fn the_client_never_shows_its_secret() {
        let shown = format!("{:?}", client("https://msp.halopsa.com").unwrap());
        assert!(!shown.contains("Halo-S3cret-Value") && shown.contains("vigil-app"), "{shown}");
    }

    #[test]
    fn urls_keep_the_root_and_carry_the_query() {
        let client = client("https://msp.halopsa.com/api").unwrap();
        let url = client.url("api/Tickets", &[("search_supplier_reference", "vigil:a b".into())]).unwrap();
        assert_eq!(url.as_str(), "https://msp.halopsa.com/api/Tickets?search_supplier_reference=vigil%3Aa+b");
    }
}
