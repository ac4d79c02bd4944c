//! RFC 7807 problem details: the only error body the config API returns.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vigil::services::admin::AdminError;

/// A `application/problem+json` response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Sent as `Retry-After` (seconds), not in the body.
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
}

impl Problem {
    /// A problem with a status, a short title and a detail for the caller.
    #[must_use]
    pub fn new(status: StatusCode, title: &str, detail: impl Into<String>) -> Self {
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        Self {
            kind: format!("https://vigil.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400 for a request that cannot be understood.
    #[must_use]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }

    /// 404.
    #[must_use]
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", detail)
    }

    /// 429 with `Retry-After`.
    #[must_use]
    pub fn too_many_requests(detail: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests", detail) }
    }

    /// 410 for a route that was replaced; `detail` names its successor.
    #[must_use]
    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Gone", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after.map(|wait| wait.as_secs().max(1));
        let mut response = (status, [(header::CONTENT_TYPE, "application/problem+json")], Json(self)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<AdminError> for Problem {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Unauthenticated => {
                Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", "send Authorization: Bearer <your Vigil API token>")
            }
            AdminError::Forbidden(detail) => Problem::new(StatusCode::FORBIDDEN, "Forbidden", detail),
            AdminError::Refused(detail) => Problem::new(StatusCode::CONFLICT, "Conflict", detail),
            AdminError::NotFound(what) => Problem::not_found(format!("{what} not found")),
            AdminError::Conflict(what) => Problem::new(StatusCode::CONFLICT, "Conflict", format!("{what} already exists")),
            AdminError::Invalid(detail) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", detail),
            AdminError::Store(e) => {
                tracing::error!(message = "Store failure in the config API.", error = %e);
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable", "a backend is unavailable; retry later")
            }
            AdminError::Secret(e) => {
                tracing::error!(message = "Secret store failure in the config API.", error = %e);
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable", "a backend is unavailable; retry later")
            }
            AdminError::Queue(e) => {
                tracing::error!(message = "Queue failure in the config API.", error = %e);
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable", "a backend is unavailable; retry later")
            }
            AdminError::Upstream(complaint) => {
                Problem::new(StatusCode::BAD_GATEWAY, "Bad gateway", format!("the PSA answered: {complaint}"))
            }
            AdminError::Random(e) => {
                tracing::error!(message = "Random source failure.", error = %e);
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "retry later")
            }
        }
    }
}
