//! App-only access tokens from the Microsoft identity platform, shared by every Microsoft
//! connector (the Management Activity API in [`super::m365`], Microsoft Graph in [`super::graph`]).
//!
//! A token is requested with the OAuth2 client-credentials grant against the customer tenant's v2
//! token endpoint (`{login}/{tenant}/oauth2/v2.0/token`, `scope={resource}/.default`). One token is
//! valid for exactly one resource, so tokens are cached in memory until five minutes before they
//! expire (half their lifetime when that is shorter). A connector whose token is refused (`401`)
//! calls [`TokenProvider::forget`] and asks again.
//!
//! A cached token is found by (MSP, tenant, scope, credential fingerprint) — see [`TokenKey`].
//! The client id alone is no key: it is public (it appears in every consent URL), so keying by it
//! would hand a token one MSP earned with a valid secret to another MSP that names the same
//! tenant and app with a wrong one. The fingerprint is a SHA-256 of client id and secret; the
//! secret itself is never kept.
//!
//! Token endpoint failures are classified here, once (`shared/reference/microsoft-apis.md` §1.6):
//! consent missing or revoked, bad or expired secret, unknown tenant … are
//! [`SourceError::AccessRefused`]; 429, AADSTS50196 and AADSTS90055 are [`SourceError::Throttled`];
//! 5xx and timeouts are [`SourceError::Unavailable`]; anything else is [`SourceError::Rejected`].
//! The client secret is scrubbed from every message, and no access token ever reaches an error,
//! a log line or a `Debug` rendering.

use super::{redact, retry_after, transport_failure, truncate_chars};
use crate::error::SourceError;
use crate::ids::{MspId, TenantId};
use crate::secret::SecretString;
use crate::tenant::M365AppCredentials;
use reqwest::StatusCode;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Tokens are refreshed this long before they expire.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Longest remote message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// AADSTS codes that mean "this tenant does not (or no longer) let our app in": consent missing
/// or revoked, app or resource principal missing, bad or expired secret, app disabled, unknown
/// tenant. Retrying will not help until someone fixes the tenant or the credentials.
const ACCESS_REFUSED_AADSTS: [u64; 8] = [700_016, 65_001, 500_011, 7_000_215, 7_000_222, 7_000_112, 90_002, 7_000_218];
/// AADSTS codes that mean "slow down": loop detected, tenant throttled.
const THROTTLED_AADSTS: [u64; 2] = [50_196, 90_055];

/// What a cached token is found by: the MSP holding the credentials, the tenant, the scope and
/// the fingerprint of the credentials that earned it (never the secret itself). Whoever presents
/// a different secret, or holds the same one as another MSP, asks the token endpoint again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    msp_id: Option<MspId>,
    tenant_id: TenantId,
    scope: String,
    credential_fingerprint: String,
}

/// Requests and caches app-only access tokens for many tenants, apps and resources.
pub(crate) struct TokenProvider {
    http: super::LazyHttp,
    /// Token host without a trailing slash, e.g. `https://login.microsoftonline.com`.
    login_base: String,
    /// Never held across an `.await`.
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    /// One lock per key, so concurrent callers that miss the cache share one token request
    /// (the identity platform throttles repeated identical requests: AADSTS50196/90055).
    fetching: Mutex<HashMap<TokenKey, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider").field("login_base", &self.login_base).finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider for one cloud's token host (`login_base`, e.g. `https://login.microsoftonline.com`).
    pub(crate) fn new(http: impl Into<super::LazyHttp>, login_base: &str) -> Self {
        Self {
            http: http.into(),
            login_base: login_base.trim_end_matches('/').to_owned(),
            tokens: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<TokenKey, CachedToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(tenant_id: &TenantId, credentials: &M365AppCredentials, scope: &str) -> TokenKey {
        TokenKey {
            msp_id: credentials.msp_id.clone(),
            tenant_id: tenant_id.clone(),
            scope: scope.to_owned(),
            credential_fingerprint: credentials.fingerprint(),
        }
    }

    /// Drops the cached token for (MSP, tenant, credentials, scope), e.g. after the API refused it.
    pub(crate) fn forget(&self, tenant_id: &TenantId, credentials: &M365AppCredentials, scope: &str) {
        self.cache().remove(&Self::key(tenant_id, credentials, scope));
    }

    /// A valid access token for the tenant and `scope` (`{resource}/.default`): cached, or
    /// freshly requested.
    pub(crate) async fn token(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        scope: &str,
    ) -> Result<SecretString, SourceError> {
        let key = Self::key(tenant_id, credentials, scope);
        if let Some(token) = self.cached(&key) {
            return Ok(token);
        }
        let gate = self.fetching.lock().unwrap_or_else(PoisonError::into_inner).entry(key.clone()).or_default().clone();
        let _turn = gate.lock().await;
        // Someone who held the gate before us may have fetched it already.
        if let Some(token) = self.cached(&key) {
            return Ok(token);
        }
        let requested_at = Instant::now();
        let (token, lifetime) = self.request_token(tenant_id, credentials, scope).await?;
        self.cache().insert(key, CachedToken { token: token.clone(), refresh_at: requested_at + keep_for(lifetime) });
        Ok(token)
    }

    fn cached(&self, key: &TokenKey) -> Option<SecretString> {
        self.cache().get(key).filter(|cached| Instant::now() < cached.refresh_at).map(|cached| cached.token.clone())
    }

    async fn request_token(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        scope: &str,
    ) -> Result<(SecretString, Duration), SourceError> {
        let url = format!("{}/{}/oauth2/v2.0/token", self.login_base, tenant_id);
        let form = [
            ("client_id", credentials.client_id.as_str()),
            ("client_secret", credentials.client_secret.expose()),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ];
        let response = self
            .http
            .for_request("token request")?
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| SourceError::Unavailable(transport_failure("token request", &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure("token request", &e)))?;
        if status.is_success() {
            return parse_token_response(&body).ok_or_else(|| {
                SourceError::Unavailable("token request: the token endpoint answered without a usable access token".into())
            });
        }
        let error = classify_token_error(status, retry, &body, credentials.client_secret.expose());
        tracing::warn!(tenant_id = %tenant_id, scope, status = status.as_u16(), error = %error, "token request refused");
        Err(error)
    }

    #[cfg(test)]
    fn cache_for_tests(&self, tenant_id: &TenantId, credentials: &M365AppCredentials, scope: &str, token: &str) {
        self.cache().insert(
            Self::key(tenant_id, credentials, scope),
            CachedToken { token: SecretString::new(token), refresh_at: Instant::now() + Duration::from_secs(60) },
        );
    }
}

/// How long a token that lives `lifetime` is served from the cache: until
/// [`TOKEN_REFRESH_MARGIN`] before it expires, or half its lifetime when that is shorter.
fn keep_for(lifetime: Duration) -> Duration {
    if lifetime > TOKEN_REFRESH_MARGIN * 2 { lifetime - TOKEN_REFRESH_MARGIN } else { lifetime / 2 }
}

/// `expires_in` is a number in v2 responses and a string in v1 responses.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn value(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<Seconds>,
}

/// The access token and its lifetime (an hour if the response does not say).
fn parse_token_response(body: &str) -> Option<(SecretString, Duration)> {
    let response: TokenResponse = serde_json::from_str(body).ok()?;
    if response.access_token.trim().is_empty() {
        return None;
    }
    let lifetime = response.expires_in.as_ref().and_then(Seconds::value).unwrap_or(3600);
    Some((SecretString::new(response.access_token), Duration::from_secs(lifetime)))
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// Classifies a failed token request. `client_secret` is scrubbed from whatever is kept.
pub(crate) fn classify_token_error(status: StatusCode, retry_after: Option<Duration>, body: &str, client_secret: &str) -> SourceError {
    let parsed: TokenError = serde_json::from_str(body).unwrap_or_default();
    let code = parsed.error_codes.first().map_or_else(
        || {
            if parsed.error.is_empty() { format!("HTTP{}", status.as_u16()) } else { parsed.error.clone() }
        },
        |n| format!("AADSTS{n}"),
    );
    let description = short_description(&parsed.error_description);
    let message = match (parsed.error.is_empty(), description.is_empty()) {
        (true, true) => format!("token endpoint answered HTTP {}", status.as_u16()),
        (true, false) => description,
        (false, true) => parsed.error.clone(),
        (false, false) => format!("{}: {description}", parsed.error),
    };
    let message = redact(&truncate_chars(&message, MAX_MESSAGE_CHARS), client_secret);
    let has = |codes: &[u64]| parsed.error_codes.iter().any(|c| codes.contains(c));
    if status == StatusCode::TOO_MANY_REQUESTS || has(&THROTTLED_AADSTS) || parsed.error == "temporarily_unavailable" {
        SourceError::Throttled { retry_after }
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SourceError::Unavailable(format!("token endpoint: {code}: {message}"))
    } else if has(&ACCESS_REFUSED_AADSTS) || parsed.error == "invalid_client" || parsed.error == "unauthorized_client" {
        SourceError::AccessRefused { code, message }
    } else {
        SourceError::Rejected { code, message }
    }
}

/// The first line of an `error_description` without its `AADSTSnnn: ` prefix (the rest is
/// trace id, correlation id and timestamp).
fn short_description(description: &str) -> String {
    let first = description.lines().next().unwrap_or_default().trim();
    let without_code = match first.strip_prefix("AADSTS") {
        Some(rest) => rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start_matches(':').trim_start(),
        None => first,
    };
    without_code.to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::{Classified, ErrorClass};

    #[test]
    fn token_lifetime_is_read_as_number_or_string() {
        let (token, lifetime) =
            parse_token_response(r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ.a.b"}"#).unwrap();
        assert_eq!(token.expose(), "eyJ.a.b");
        assert_eq!(lifetime, Duration::from_secs(3599));
        let (_, lifetime) =
            parse_token_response(r#"{"token_type":"Bearer","expires_in":"4000","expires_on":"1431659094","access_token":"x"}"#).unwrap();
        assert_eq!(lifetime, Duration::from_secs(4000));
        let (_, lifetime) = parse_token_response(r#"{"access_token":"x"}"#).unwrap();
        assert_eq!(lifetime, Duration::from_secs(3600), "a missing lifetime defaults to an hour");
        assert!(parse_token_response(r#"{"access_token":""}"#).is_none());
        assert!(parse_token_response("<html>").is_none());
    }

    fn aad_body(error: &str, code: u64, text: &str) -> String {
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0000aaaa-11bb\r\nCorrelation ID: aaaa0000-bb11\r\nTimestamp: 2026-01-05 10:11:12Z"),
            "error_codes": [code],
            "trace_id": "0000aaaa-11bb",
        })
        .to_string()
    }

    #[test]
    fn revoked_consent_is_access_refused_without_trace_ids() {
        let body = aad_body("unauthorized_client", 700_016, "Application with identifier 'abc' was not found in the directory 'Fabrikam'.");
        let error = classify_token_error(StatusCode::BAD_REQUEST, None, &body, "s3cret-value");
        let SourceError::AccessRefused { code, message } = &error else { panic!("{error:?}") };
        assert_eq!(code, "AADSTS700016");
        assert_eq!(message, "unauthorized_client: Application with identifier 'abc' was not found in the directory 'Fabrikam'.");
        assert_eq!(error.class(), ErrorClass::Permanent);
    }

    #[test]
    fn token_refusals_are_classified_by_code() {
        let refused = |error: &str, code: u64| classify_token_error(StatusCode::BAD_REQUEST, None, &aad_body(error, code, "x"), "");
        for code in [65_001, 500_011, 7_000_222, 7_000_112, 90_002] {
            assert!(matches!(refused("invalid_request", code), SourceError::AccessRefused { .. }), "{code}");
        }
        assert!(
            matches!(classify_token_error(StatusCode::UNAUTHORIZED, None, &aad_body("invalid_client", 7_000_215, "Invalid client secret provided."), ""), SourceError::AccessRefused { code, .. } if code == "AADSTS7000215")
        );
        assert!(matches!(refused("invalid_client", 12_345), SourceError::AccessRefused { .. }), "invalid_client whatever the code");
        assert!(matches!(refused("invalid_scope", 70_011), SourceError::Rejected { code, .. } if code == "AADSTS70011"));
        assert!(matches!(refused("invalid_request", 50_196), SourceError::Throttled { .. }));
        let throttled = classify_token_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(4)),
            &aad_body("temporarily_unavailable", 90_055, "x"),
            "",
        );
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(4)));
        assert!(matches!(
            classify_token_error(StatusCode::INTERNAL_SERVER_ERROR, None, &aad_body("server_error", 50_000, "x"), ""),
            SourceError::Unavailable(_)
        ));
        assert!(matches!(classify_token_error(StatusCode::BAD_GATEWAY, None, "<html>bad gateway</html>", ""), SourceError::Unavailable(_)));
    }

    #[test]
    fn the_client_secret_never_survives_in_a_token_error() {
        let body = aad_body("invalid_client", 7_000_215, "Invalid client secret provided: hunter2-secret-value.");
        let error = classify_token_error(StatusCode::UNAUTHORIZED, None, &body, "hunter2-secret-value");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    fn tenant() -> TenantId {
        TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap()
    }

    fn credentials() -> M365AppCredentials {
        M365AppCredentials::new("App-ID", SecretString::new("secret")).held_by(&MspId::parse("acme").unwrap())
    }

    const MANAGE: &str = "https://manage.example/.default";
    const GRAPH: &str = "https://graph.example/.default";

    /// A provider whose login host is unreachable: anything not served from the cache fails.
    fn offline_provider() -> TokenProvider {
        TokenProvider::new(reqwest::Client::new(), "http://127.0.0.1:9/")
    }

    async fn served_from_cache(provider: &TokenProvider, credentials: &M365AppCredentials, scope: &str) -> Option<String> {
        provider.token(&tenant(), credentials, scope).await.ok().map(|t| t.expose().to_owned())
    }

    #[tokio::test]
    async fn tokens_are_cached_per_scope_and_forgotten_per_scope() {
        let provider = offline_provider();
        provider.cache_for_tests(&tenant(), &credentials(), MANAGE, "eyJ-manage");
        provider.cache_for_tests(&tenant(), &credentials(), GRAPH, "eyJ-graph");
        assert_eq!(served_from_cache(&provider, &credentials(), MANAGE).await.as_deref(), Some("eyJ-manage"));
        assert_eq!(served_from_cache(&provider, &credentials(), GRAPH).await.as_deref(), Some("eyJ-graph"), "one token per resource");

        provider.forget(&tenant(), &credentials(), GRAPH);
        assert!(matches!(provider.token(&tenant(), &credentials(), GRAPH).await, Err(SourceError::Unavailable(_))));
        assert_eq!(served_from_cache(&provider, &credentials(), MANAGE).await.as_deref(), Some("eyJ-manage"));
    }

    #[tokio::test]
    async fn client_ids_match_in_any_case() {
        let provider = offline_provider();
        provider.cache_for_tests(&tenant(), &credentials(), MANAGE, "eyJ-manage");
        let mut shouting = credentials();
        shouting.client_id = "APP-ID".into();
        assert_eq!(served_from_cache(&provider, &shouting, MANAGE).await.as_deref(), Some("eyJ-manage"));
    }

    #[tokio::test]
    async fn a_token_earned_with_one_secret_is_never_served_to_another_secret() {
        let provider = offline_provider();
        provider.cache_for_tests(&tenant(), &credentials(), MANAGE, "eyJ-earned");
        let mut wrong = credentials();
        wrong.client_secret = SecretString::new("not-the-secret");
        assert_eq!(served_from_cache(&provider, &wrong, MANAGE).await, None, "a wrong secret must ask the token endpoint");
        let rotated = M365AppCredentials::new("App-ID", SecretString::new("new-secret")).held_by(&MspId::parse("acme").unwrap());
        assert_eq!(served_from_cache(&provider, &rotated, MANAGE).await, None, "a changed secret must ask again");
    }

    #[tokio::test]
    async fn a_token_one_msp_earned_is_never_served_to_another_msp() {
        let provider = offline_provider();
        provider.cache_for_tests(&tenant(), &credentials(), MANAGE, "eyJ-acme");
        let other_msp = M365AppCredentials::new("App-ID", SecretString::new("secret")).held_by(&MspId::parse("other").unwrap());
        assert_eq!(served_from_cache(&provider, &other_msp, MANAGE).await, None, "same tenant, app and even secret: still another MSP");
        let no_msp = M365AppCredentials::new("App-ID", SecretString::new("secret"));
        assert_eq!(served_from_cache(&provider, &no_msp, MANAGE).await, None);
    }

    #[test]
    fn the_cache_key_holds_a_fingerprint_not_the_secret() {
        let key = TokenProvider::key(&tenant(), &credentials(), MANAGE);
        assert!(!format!("{key:?}").contains("secret\""), "{key:?}");
        assert_ne!(key.credential_fingerprint, "secret");
        assert_eq!(key.credential_fingerprint.len(), 64);
    }

    #[test]
    fn tokens_are_refreshed_five_minutes_early_or_at_half_their_life() {
        let secs = Duration::from_secs;
        assert_eq!(keep_for(secs(3600)), secs(3300));
        assert_eq!(keep_for(secs(601)), secs(301));
        assert_eq!(keep_for(secs(600)), secs(300), "at twice the margin: half the lifetime");
        assert_eq!(keep_for(secs(120)), secs(60));
        assert_eq!(keep_for(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn debug_output_names_the_login_host() {
        let provider = TokenProvider::new(reqwest::Client::new(), "https://login.example/");
        assert_eq!(format!("{provider:?}"), "TokenProvider { login_base: \"https://login.example\", .. }");
    }

    #[test]
    fn debug_output_has_no_tokens() {
        let provider = TokenProvider::new(reqwest::Client::new(), "https://login.example");
        provider.cache_for_tests(&tenant(), &credentials(), MANAGE, "eyJ-secret-token");
        assert!(!format!("{provider:?}").contains("eyJ-secret-token"));
    }
}
