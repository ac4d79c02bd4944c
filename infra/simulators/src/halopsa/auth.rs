//! The HaloPSA simulator's authorisation server: `POST /auth/token` (client credentials, form
//! body) issues bearer tokens that expire on the simulator's clock, and the check every `/api`
//! request passes.
//!
//! * a hosted instance needs `?tenant={name}`; a missing or wrong one answers
//!   `400 {"error": "invalid_request"}` (unconfirmed wording); a self-hosted one ignores it;
//! * a grant other than `client_credentials` answers `400 {"error": "unsupported_grant_type"}`;
//! * a wrong client id or secret answers `401 {"error": "invalid_client"}`;
//! * the answer is `{"access_token", "token_type": "Bearer", "expires_in", "scope"}`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::server::{Shared, SimRequest, json_response};

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &json!({"error": error, "error_description": description}))
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy: a token that is still unique per process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        return format!("halosim-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
    }
    hex::encode(bytes)
}

impl Shared {
    pub(crate) fn token(&self, req: &SimRequest) -> Response {
        if let Some(tenant) = &self.config.tenant
            && req.param("tenant").as_deref() != Some(tenant.as_str())
        {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "The tenant parameter does not name this instance.");
        }
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body).into_owned().collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if field("grant_type") != Some("client_credentials") {
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Only client_credentials is supported.");
        }
        if field("client_id") != Some(self.config.client_id.as_str()) || field("client_secret") != Some(self.config.client_secret.as_str())
        {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The client id or secret is wrong.");
        }
        let token = random_token();
        let lifetime = self.config.token_lifetime;
        let expires = self.kit.clock.now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1));
        self.lock().tokens.insert(token.clone(), expires);
        json_response(
            StatusCode::OK,
            &json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime.as_secs(), "scope": field("scope").unwrap_or("all")}),
        )
    }

    /// Whether the request carries `Authorization: Bearer {token}` with a live token.
    pub(crate) fn authenticate(&self, req: &SimRequest) -> bool {
        let Some(value) = req.headers.get("authorization").and_then(|v| v.to_str().ok()) else { return false };
        let Some((scheme, token)) = value.split_once(' ') else { return false };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        let now = self.kit.clock.now();
        self.lock().tokens.get(token.trim()).is_some_and(|expires| *expires > now)
    }
}
