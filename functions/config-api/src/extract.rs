//! Extractors whose rejections are problem+json: the caller's MSP (from the bearer token),
//! JSON bodies, and path identifiers.

use crate::AppState;
use crate::problem::Problem;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use vigil::ids::MspId;

/// The authenticated caller's MSP. Every handler that touches data takes this, and only this,
/// as the tenancy key.
#[derive(Debug, Clone)]
pub struct Caller(pub MspId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim).unwrap_or_default();
        if token.is_empty() {
            return Err(Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", "send Authorization: Bearer <your Vigil API token>"));
        }
        Ok(Caller(state.admin.authenticate(token).await?))
    }
}

/// A JSON body; malformed JSON, a wrong content type or wrong fields become problem+json.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(Problem::bad_request(format!("malformed JSON: {}", e.body_text()))),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type", "send Content-Type: application/json"))
            }
            Err(other) => Err(Problem::bad_request(other.body_text())),
        }
    }
}
