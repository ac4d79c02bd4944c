//! Extractors whose rejections are problem+json: the caller's access (from the bearer token),
//! JSON bodies, and path identifiers.

use crate::AppState;
use crate::problem::Problem;
use crate::strict_json::{BodyError, parse_object};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use vigil::access::Access;

/// The authenticated caller: its MSP, principal, role and alert categories. Every handler that
/// touches data takes this and hands it to the service, which checks it.
#[derive(Debug, Clone)]
pub struct Caller(pub Access);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim).unwrap_or_default();
        if token.is_empty() {
            return Err(Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", "send Authorization: Bearer <your Vigil API token>"));
        }
        Ok(Caller(state.access.authenticate(token).await?))
    }
}

/// A JSON object body, read strictly ([`crate::strict_json`]): a body over the route's size limit
/// is 413, one nested too deep or not JSON is 400, a wrong content type 415, and a top level that
/// is not an object or a field of the wrong type 422 naming the field — all problem+json.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(request.headers()) {
            return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type", "send Content-Type: application/json"));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large", "the body is larger than this route accepts")
            } else {
                Problem::bad_request(rejection.body_text())
            }
        })?;
        match parse_object(&bytes) {
            Ok(value) => Ok(ApiJson(value)),
            Err(BodyError::Malformed(detail)) => Err(Problem::bad_request(detail)),
            Err(BodyError::Invalid(detail)) => Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", detail)),
        }
    }
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}
