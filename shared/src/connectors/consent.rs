//! The token probe of onboarding ([`TenantAccessProbe`]): a fresh app-only Microsoft Graph
//! token from the customer tenant, and the tenant that issued it — the token's `tid` claim,
//! read (never validated: access tokens are opaque to clients, `shared/reference/microsoft-apis.md`
//! §1.8) to confirm that the tenant in Microsoft's consent redirect is the one whose token
//! Vigil now holds. The token itself is dropped at once.

use super::LazyHttp;
use super::identity::TokenProvider;
use crate::error::SourceError;
use crate::ids::TenantId;
use crate::ports::TenantAccessProbe;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// [`TenantAccessProbe`] over the identity platform.
#[derive(Debug)]
pub struct TokenProbe {
    tokens: TokenProvider,
    scope: String,
}

impl TokenProbe {
    /// A probe asking `login_base` for tokens of the Graph at `graph_base`.
    #[must_use]
    pub fn new(http: impl Into<LazyHttp>, login_base: &str, graph_base: &str) -> Self {
        Self { tokens: TokenProvider::new(http, login_base), scope: format!("{}/.default", graph_base.trim_end_matches('/')) }
    }
}

/// The `tid` claim of a JWT-shaped access token.
fn tid_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?).ok()?;
    claims.get("tid")?.as_str().map(str::to_owned)
}

#[async_trait]
impl TenantAccessProbe for TokenProbe {
    async fn token_tenant(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) -> Result<String, SourceError> {
        // A fresh token: a cached one says nothing of the consent as it is now.
        self.tokens.forget(tenant_id, credentials, &self.scope);
        let token = self.tokens.token(tenant_id, credentials, &self.scope).await?;
        self.tokens.forget(tenant_id, credentials, &self.scope);
        tid_of(token.expose())
            .ok_or_else(|| SourceError::Rejected { code: "InvalidToken".into(), message: "the token carries no tenant (tid) claim".into() })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_is_read_from_the_tokens_claims_and_a_token_without_one_gives_none() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"tid":"5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11","aud":"x"}"#);
        assert_eq!(tid_of(&format!("h.{claims}.sig")).as_deref(), Some("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11"));
        assert_eq!(tid_of("opaque"), None);
        assert_eq!(tid_of(&format!("h.{}.s", URL_SAFE_NO_PAD.encode(b"{}"))), None);
    }
}
