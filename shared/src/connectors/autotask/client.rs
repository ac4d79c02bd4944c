//! The Autotask client: credentials and auth headers, the zone (configured or discovered and
//! cached), the request gate and the destination policy in front of every request, and the
//! one place a request is sent and its answer classified.

use super::errors::{Scrub, classify};
use super::picklists::EntityFields;
use crate::connectors::destination_url::DestinationPolicy;
use crate::connectors::{retry_after, transport_failure};
use crate::destination::{Destination, DestinationCredentials};
use crate::error::SinkError;
use crate::ports::{RequestGate, SinkSetupError};
use crate::secret::SecretString;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use url::Url;

/// Where zone discovery asks by default (any zone answers it; Autotask's own examples use 2).
pub const DEFAULT_DISCOVERY_BASE: &str = "https://webservices2.autotask.net";
/// How long a discovered zone is reused (as Autotask's own Go client does).
pub const ZONE_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

/// The destination's non-secret Autotask settings, as the connector uses them.
pub type Settings = crate::destination::AutotaskSettings;

/// Discovered zones, process-wide, keyed by (discovery base, lower-case user name): every
/// destination of the same API user shares one discovery per [`ZONE_CACHE_TTL`], and a warm
/// Lambda keeps it across invocations. (The discovery base is part of the key only so tests
/// with their own simulators never see each other's zones; in production it is constant.)
type ZoneCache = Mutex<HashMap<(String, String), (Instant, Url)>>;

fn zone_cache() -> &'static ZoneCache {
    static ZONES: OnceLock<ZoneCache> = OnceLock::new();
    ZONES.get_or_init(Mutex::default)
}

/// `url` as the API root: with a trailing `/` and ending in `v1.0/` (appended unless there).
pub(crate) fn api_root_of(zone: &str) -> String {
    let mut root = zone.trim().to_owned();
    if !root.ends_with('/') {
        root.push('/');
    }
    if !root.to_ascii_lowercase().ends_with("/v1.0/") {
        root.push_str("v1.0/");
    }
    root
}

/// Autotask PSA as a [`crate::ports::TicketSystem`], for one destination.
pub struct AutotaskClient {
    pub(super) http: reqwest::Client,
    pub(super) username: String,
    /// `None` when a credential cannot be sent in a header (every request is then refused as
    /// unauthorized without being sent).
    headers: Option<HeaderMap>,
    /// Kept only to scrub them from anything the server echoes back.
    secret: SecretString,
    integration_code: SecretString,
    pub(super) settings: Settings,
    /// The routing's closing status override.
    pub(super) closed_status: Option<String>,
    discovery_base: String,
    /// The API root once known (configured, or discovered).
    api_root: Mutex<Option<Url>>,
    gate: RequestGate,
    policy: DestinationPolicy,
    pub(super) ticket_fields: tokio::sync::Mutex<Option<Arc<EntityFields>>>,
    pub(super) note_fields: tokio::sync::Mutex<Option<Arc<EntityFields>>>,
}

impl std::fmt::Debug for AutotaskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutotaskClient")
            .field("username", &self.username)
            .field("zone_url", &self.settings.zone_url)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

fn auth_headers(username: &str, secret: &SecretString, integration_code: &SecretString) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    let mut code = HeaderValue::from_str(integration_code.expose().trim()).ok()?;
    code.set_sensitive(true);
    let mut secret = HeaderValue::from_str(secret.expose()).ok()?;
    secret.set_sensitive(true);
    headers.insert(HeaderName::from_static("apiintegrationcode"), code);
    headers.insert(HeaderName::from_static("username"), HeaderValue::from_str(username.trim()).ok()?);
    headers.insert(HeaderName::from_static("secret"), secret);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Some(headers)
}

impl AutotaskClient {
    /// The client of `destination` (an Autotask one, with Autotask credentials), sending through
    /// `http`, asking `gate` before every request and checking every URL against `policy`.
    ///
    /// # Errors
    /// [`SinkSetupError::NotConfigured`] for another kind of settings or credentials, a
    /// configured zone URL the policy refuses, or credentials that cannot be sent in a header.
    pub fn for_destination(
        http: reqwest::Client,
        destination: &Destination,
        credentials: DestinationCredentials,
        gate: RequestGate,
        policy: DestinationPolicy,
    ) -> Result<Self, SinkSetupError> {
        let not_configured = |why: &str| SinkSetupError::NotConfigured(format!("destination {}: {why}", destination.id));
        let settings = destination.settings.as_autotask().cloned().ok_or_else(|| not_configured("not an Autotask destination"))?;
        let DestinationCredentials::Autotask { username, secret, integration_code } = credentials else {
            return Err(not_configured("the credentials are not Autotask credentials"));
        };
        let api_root = match &settings.zone_url {
            Some(zone) => Some(policy.validate(&api_root_of(zone)).map_err(|refused| not_configured(&format!("the zone URL {refused}")))?),
            None => None,
        };
        let headers = auth_headers(&username, &secret, &integration_code);
        if headers.is_none() {
            return Err(not_configured("the Autotask credentials contain characters that cannot be sent in a header"));
        }
        Ok(Self {
            http,
            username: username.trim().to_owned(),
            headers,
            secret,
            integration_code,
            settings,
            closed_status: destination.routing.closed_status.clone(),
            discovery_base: DEFAULT_DISCOVERY_BASE.to_owned(),
            api_root: Mutex::new(api_root),
            gate,
            policy,
            ticket_fields: tokio::sync::Mutex::new(None),
            note_fields: tokio::sync::Mutex::new(None),
        })
    }

    /// The same client discovering its zone at `base` instead of [`DEFAULT_DISCOVERY_BASE`]
    /// (tests; only used when the destination has no `zone_url`).
    #[must_use]
    pub fn with_discovery_base(mut self, base: impl Into<String>) -> Self {
        self.discovery_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    fn scrub(&self) -> Scrub<'_> {
        Scrub { secret: self.secret.expose(), integration_code: self.integration_code.expose() }
    }

    /// The API root (`…/atservicesrest/v1.0/`): configured, else discovered (and cached).
    pub(super) async fn api_root(&self) -> Result<Url, SinkError> {
        if let Some(root) = self.api_root.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(root);
        }
        let key = (self.discovery_base.clone(), self.username.to_lowercase());
        let cached = zone_cache().lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let root = match cached {
            Some((at, root)) if at.elapsed() < ZONE_CACHE_TTL => root,
            _ => {
                let root = self.discover_zone().await?;
                zone_cache().lock().unwrap_or_else(PoisonError::into_inner).insert(key, (Instant::now(), root.clone()));
                root
            }
        };
        *self.api_root.lock().unwrap_or_else(PoisonError::into_inner) = Some(root.clone());
        Ok(root)
    }

    /// `GET {discovery base}/atservicesrest/v1.0/zoneInformation?user={username}`. Sent without
    /// the secret and integration code: discovery needs no authentication, so they never go to
    /// a host that is not the MSP's zone.
    async fn discover_zone(&self) -> Result<Url, SinkError> {
        let operation = "zone discovery";
        let mut url = self
            .policy
            .validate(&format!("{}/atservicesrest/v1.0/zoneInformation", self.discovery_base))
            .map_err(|refused| SinkError::Rejected(format!("{operation}: the discovery address {refused}")))?;
        url.query_pairs_mut().append_pair("user", &self.username);
        self.gate.admit().await?;
        let response = self.http.get(url).send().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let text = response.text().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        if status == StatusCode::NOT_FOUND {
            return Err(SinkError::Unauthorized(format!("{operation}: Autotask knows no API user {}", self.username)));
        }
        if !status.is_success() {
            return Err(classify(status, retry, &text, operation, &self.scrub()));
        }
        let body: Value =
            serde_json::from_str(&text).map_err(|e| SinkError::Unavailable(format!("{operation}: unreadable answer: {e}")))?;
        let zone = body
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("url")))
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| SinkError::Unavailable(format!("{operation}: the answer names no zone url")))?;
        let root = self
            .policy
            .validate(&api_root_of(zone))
            .map_err(|refused| SinkError::Rejected(format!("{operation}: the discovered zone URL {refused}")))?;
        tracing::info!(zone = %root, "discovered the Autotask zone");
        Ok(root)
    }

    /// `path` (e.g. `Tickets/query`) below the API root.
    pub(super) async fn endpoint(&self, path: &str) -> Result<Url, SinkError> {
        let root = self.api_root().await?;
        root.join(path).map_err(|e| SinkError::Rejected(format!("{path}: not a valid API path: {e}")))
    }

    /// A `nextPageUrl` to follow: permitted by the policy and on the zone's own origin.
    pub(super) async fn next_page(&self, raw: &str) -> Result<Url, SinkError> {
        let root = self.api_root().await?;
        let url = self.policy.validate(raw).map_err(|refused| SinkError::Rejected(format!("next page: the page URL {refused}")))?;
        if url.origin() != root.origin() {
            return Err(SinkError::Rejected("next page: the page URL is not on the zone's host".into()));
        }
        Ok(url)
    }

    /// Sends one request (after the gate admits it and the policy permits the URL); a success
    /// is its JSON body (`Null` when empty), a failure is classified.
    pub(super) async fn call(&self, method: Method, url: Url, body: Option<&Value>, operation: &str) -> Result<Value, SinkError> {
        let Some(headers) = &self.headers else {
            return Err(SinkError::Unauthorized("the Autotask credentials cannot be sent".into()));
        };
        let url = self.policy.validate(url.as_str()).map_err(|refused| SinkError::Rejected(format!("{operation}: the URL {refused}")))?;
        self.gate.admit().await?;
        let mut request = self.http.request(method, url).headers(headers.clone());
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let text = response.text().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| SinkError::Unavailable(format!("{operation}: unreadable answer: {e}")));
        }
        let error = classify(status, retry, &text, operation, &self.scrub());
        tracing::warn!(operation, status = status.as_u16(), error = %error, "Autotask request failed");
        Err(error)
    }

    /// `GET {path}`.
    pub(super) async fn get(&self, path: &str, operation: &str) -> Result<Value, SinkError> {
        let url = self.endpoint(path).await?;
        self.call(Method::GET, url, None, operation).await
    }

    /// `{method} {path}` with a JSON body.
    pub(super) async fn send(&self, method: Method, path: &str, body: &Value, operation: &str) -> Result<Value, SinkError> {
        let url = self.endpoint(path).await?;
        self.call(method, url, Some(body), operation).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::destination::Routing;
    use crate::ids::{DestinationId, MspId};
    use chrono::Utc;

    const ZONE: &str = "https://webservices15.autotask.net/atservicesrest/";

    fn destination(zone_url: Option<&str>) -> Destination {
        Destination {
            msp_id: MspId::parse("acme").unwrap(),
            id: DestinationId::parse("autotask").unwrap(),
            name: "Autotask".into(),
            enabled: true,
            settings: crate::destination::DestinationSettings::autotask(zone_url.map(str::to_owned)),
            routing: Routing::default(),
            requests_per_hour: None,
            credentials_set: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn credentials() -> DestinationCredentials {
        DestinationCredentials::Autotask {
            username: "api@msp.example".into(),
            secret: SecretString::new("s3cret-value"),
            integration_code: SecretString::new("TRACKING-CODE"),
        }
    }

    fn client(zone_url: Option<&str>) -> Result<AutotaskClient, SinkSetupError> {
        AutotaskClient::for_destination(
            reqwest::Client::new(),
            &destination(zone_url),
            credentials(),
            RequestGate::open(),
            DestinationPolicy::STRICT,
        )
    }

    #[tokio::test]
    async fn a_next_page_url_must_be_permitted_and_stay_on_the_zones_host() {
        let client = client(Some(ZONE)).unwrap();
        let next = "https://webservices15.autotask.net/ATServicesRest/V1.0/Tickets/query/next?paging=%7B%7D";
        assert_eq!(client.next_page(next).await.unwrap().as_str(), next);
        for refused in [
            "https://evil.example/ATServicesRest/V1.0/Tickets/query/next",
            "http://webservices15.autotask.net/ATServicesRest/V1.0/Tickets/query/next",
            "https://169.254.169.254/latest/meta-data",
            "https://webservices15.autotask.net:8443/ATServicesRest/V1.0/Tickets/query/next",
        ] {
            assert!(matches!(client.next_page(refused).await, Err(SinkError::Rejected(_))), "{refused}");
        }
    }

    #[test]
    fn no_client_is_built_for_a_refused_zone_or_foreign_credentials() {
        for zone in ["http://webservices15.autotask.net/atservicesrest/", "https://10.0.0.5/atservicesrest/", "https://localhost/x/"] {
            assert!(matches!(client(Some(zone)), Err(SinkSetupError::NotConfigured(_))), "{zone}");
        }
        let foreign = DestinationCredentials::ConnectWise {
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new("private"),
            client_id: "cid".into(),
        };
        let built = AutotaskClient::for_destination(
            reqwest::Client::new(),
            &destination(None),
            foreign,
            RequestGate::open(),
            DestinationPolicy::STRICT,
        );
        assert!(matches!(built, Err(SinkSetupError::NotConfigured(_))));
    }

    #[test]
    fn the_client_never_shows_its_secrets() {
        let shown = format!("{:?}", client(Some(ZONE)).unwrap());
        assert!(!shown.contains("s3cret-value") && !shown.contains("TRACKING-CODE"), "{shown}");
        assert!(shown.contains("api@msp.example"));
    }

    #[test]
    fn the_zone_url_gets_v1_0_appended_once() {
        assert_eq!(
            api_root_of("https://webservices15.autotask.net/atservicesrest/"),
            "https://webservices15.autotask.net/atservicesrest/v1.0/"
        );
        assert_eq!(
            api_root_of(" https://webservices15.autotask.net/ATServicesRest"),
            "https://webservices15.autotask.net/ATServicesRest/v1.0/"
        );
        assert_eq!(
            api_root_of("https://webservices15.autotask.net/ATServicesRest/V1.0"),
            "https://webservices15.autotask.net/ATServicesRest/V1.0/"
        );
    }

    #[test]
    fn the_auth_headers_carry_the_credentials_as_sensitive_values() {
        let headers = auth_headers("api@msp.example", &SecretString::new("s3cret"), &SecretString::new("CODE")).unwrap();
        assert_eq!(headers["ApiIntegrationCode"], "CODE");
        assert_eq!(headers["UserName"], "api@msp.example");
        assert_eq!(headers["Secret"], "s3cret");
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert!(headers["Secret"].is_sensitive() && headers["ApiIntegrationCode"].is_sensitive());
        assert!(auth_headers("api@msp.example", &SecretString::new("bad\nsecret"), &SecretString::new("CODE")).is_none());
    }
}
