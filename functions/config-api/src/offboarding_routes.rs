//! Routes for offboarding a customer tenant — parse, call
//! [`vigil::services::offboarding::OffboardingRequests`], map the result. The work itself is the
//! audit-poller's (a job on the poll-jobs queue), so the request answers 202 with the
//! offboarding's address; a repeated request answers 200 with the offboarding already under way.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use vigil::offboarding::{OffboardingRequest, OffboardingView};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant_id}/offboarding", post(offboard_tenant).get(get_offboarding))
}

/// Offboards the tenant: it is no longer polled, Microsoft's subscriptions (and webhooks) are
/// stopped, its credentials and company links removed; after `retention_days` (default 30, 0 to
/// 365) every record of it is deleted. Needs `tenants:offboard` (owners).
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/offboarding", tag = "tenants", request_body = OffboardingRequest,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 202, description = "Offboarding started", body = OffboardingView,
            headers(("Location" = String, description = "Where to read the offboarding"))),
        (status = 200, description = "The tenant's offboarding was already under way (or done): nothing new started", body = OffboardingView)))]
pub(crate) async fn offboard_tenant(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<OffboardingRequest>,
) -> Result<Response, Problem> {
    let tenant = tenant_id(&raw)?;
    let (offboarding, created) = state.offboarding.request(&access, &tenant, &body).await?;
    let status = if created { StatusCode::ACCEPTED } else { StatusCode::OK };
    let location = format!("/v1/tenants/{tenant}/offboarding");
    Ok((status, [(header::LOCATION, location)], Json(offboarding.view(&tenant))).into_response())
}

/// The tenant's offboarding: its phase, when the data is purged, and what was removed.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/offboarding", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 200, body = OffboardingView)))]
pub(crate) async fn get_offboarding(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<OffboardingView>, Problem> {
    let tenant = tenant_id(&raw)?;
    Ok(Json(state.offboarding.status(&access, &tenant).await?.view(&tenant)))
}
