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
use serde_json::Value;
use vigil::services::replay::ReplayRequest;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        // A policy given whole may be as large as one saved through /v1/policies.
        .route("/v1/tenants/{tenant_id}/replays", post(start_replay).layer(DefaultBodyLimit::max(crate::POLICY_BODY_LIMIT)))
        .route("/v1/tenants/{tenant_id}/replays/{replay_id}", get(get_replay))
}

async fn start_replay(
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

async fn get_replay(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, replay)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(state.replays.get(&access, &tenant_id(&tenant)?, &replay).await?.view()))
}
