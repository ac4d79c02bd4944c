//! Routes for replays: a policy run in shadow over a tenant's last hours (up to 7 days) of audit
//! content, reporting what it would have raised — parse, call
//! [`vigil::services::replay::ReplayService`], map the result. The run itself is the
//! audit-poller's (a job on the poll-jobs queue), so the request answers 202 with the replay's
//! address; no alert, delivery or ticket ever results.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use vigil::replay::ReplayView;
use vigil::services::replay::ReplayRequest;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        // A policy given whole may be as large as one saved through /v1/policies.
        .route("/v1/tenants/{tenant_id}/replays", post(start_replay).layer(DefaultBodyLimit::max(crate::POLICY_BODY_LIMIT)))
        .route("/v1/tenants/{tenant_id}/replays/{replay_id}", get(get_replay))
}

/// Replays a policy in shadow over the tenant's last hours of audit content (run by the
/// audit-poller).
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/replays", tag = "policies", request_body = ReplayRequest,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 202, body = ReplayView, headers(("Location" = String, description = "Where to read the replay"))),
        (status = 409, description = "The tenant's previous replay is unfinished", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn start_replay(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<Response, Problem> {
    let tenant = tenant_id(&raw)?;
    let replay = state.replays.start(&access, &tenant, body).await?;
    let location = format!("/v1/tenants/{tenant}/replays/{}", replay.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(replay.view())).into_response())
}

/// One replay: status, progress, would-be alerts.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/replays/{replay_id}", tag = "policies",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)"), ("replay_id" = String, Path, description = "rpl-…")),
    responses((status = 200, body = ReplayView)))]
pub(crate) async fn get_replay(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, replay)): Path<(String, String)>,
) -> Result<Json<ReplayView>, Problem> {
    Ok(Json(state.replays.get(&access, &tenant_id(&tenant)?, &replay).await?.view()))
}
