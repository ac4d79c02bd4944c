//! Per-token rate limits for the routes that fan out to a PSA (destination tests and lookups):
//! API Gateway throttles the whole API and each route, but only a per-token count keeps one
//! caller (a script in a loop, a leaked token) from spending the MSP's share of its PSA's
//! allowance. Counted in DynamoDB ([`vigil::ports::RateLimiter`]) so every instance of the
//! function shares the count; over the limit, 429 problem+json with `Retry-After`.

use crate::AppState;
use crate::problem::Problem;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::marker::PhantomData;
use vigil::ports::RateDecision;
use vigil::tenant::ApiToken;

/// A class of rate-limited routes.
pub trait RouteClass: Send + Sync + 'static {
    /// The counter's name.
    const NAME: &'static str;
    /// Requests per token per minute.
    const PER_MINUTE: u32;
}

/// `GET /v1/destinations/{id}/companies|places|priorities|statuses|contacts|technicians|sites`: one PSA call each.
pub struct Lookups;
impl RouteClass for Lookups {
    const NAME: &'static str = "lookups";
    const PER_MINUTE: u32 = 60;
}

/// `POST /v1/destinations/{id}/test`: several PSA calls each.
pub struct DestinationTests;
impl RouteClass for DestinationTests {
    const NAME: &'static str = "destination-tests";
    const PER_MINUTE: u32 = 6;
}

/// Admits the request under the caller's token's limit for `C`, or rejects it with 429. Put it
/// after [`crate::extract::Caller`], which authenticates the token first.
pub struct Admitted<C>(PhantomData<C>);

impl<C: RouteClass> FromRequestParts<AppState> for Admitted<C> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let bearer = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim).unwrap_or_default();
        let token = ApiToken::parse(bearer).map_err(|_| vigil::services::admin::AdminError::Unauthenticated)?;
        let now = state.admin.clock.now();
        let decision = state
            .rate_limits
            .admit(&token.msp_id, &fingerprint(bearer), C::NAME, C::PER_MINUTE, chrono::Duration::minutes(1), now)
            .await
            .map_err(vigil::services::admin::AdminError::from)?;
        match decision {
            RateDecision::Allowed => Ok(Self(PhantomData)),
            RateDecision::Limited { retry_after } => Err(Problem::too_many_requests(
                format!("at most {} of these requests per minute per API token; retry after {} s", C::PER_MINUTE, retry_after.as_secs()),
                retry_after,
            )),
        }
    }
}

/// Names a token in counters without storing it: 16 hex characters of a hash of it.
fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(format!("vigil-rate-limit\n{token}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
