//! Routes of billing mappings and sync runs: parse, call
//! [`vigil::services::billing::BillingService`], map the result.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::Serialize;
use vigil::billing::sync::BillingMapping;
use vigil::ids::DestinationId;
use vigil::services::billing::{MappingRequest, MappingView, SyncRequest, SyncRun};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/billing/mappings", axum::routing::get(list_mappings))
        .route("/v1/tenants/{tenant_id}/billing/{destination_id}", put(put_mapping).delete(delete_mapping))
        .route("/v1/billing/dry-run", post(dry_run))
        .route("/v1/billing/sync", post(run_sync))
}

fn destination_id(raw: &str) -> Result<DestinationId, Problem> {
    DestinationId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// The MSP's billing mappings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MappingList {
    mappings: Vec<MappingView>,
}

/// Every billing mapping with its last sync.
#[utoipa::path(get, path = "/v1/billing/mappings", tag = "billing", responses((status = 200, body = MappingList)))]
pub(crate) async fn list_mappings(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<MappingList>, Problem> {
    Ok(Json(MappingList { mappings: state.billing.mappings(&access).await? }))
}

/// Bills the tenant's protected mailboxes in a PSA destination: the agreement (ConnectWise),
/// contract (Autotask) or recurring invoice and the product or service whose quantity Vigil
/// sets. Checked in the PSA first: one that does not exist or is cancelled is refused (422,
/// naming it).
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/billing/{destination_id}", tag = "billing", request_body = MappingRequest,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)"), ("destination_id" = String, Path, description = "A PSA destination")),
    responses((status = 200, body = BillingMapping), (status = 502, description = "The PSA could not be asked", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn put_mapping(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, destination)): Path<(String, String)>,
    ApiJson(body): ApiJson<MappingRequest>,
) -> Result<Json<BillingMapping>, Problem> {
    Ok(Json(state.billing.put_mapping(&access, &tenant_id(&tenant)?, &destination_id(&destination)?, body).await?))
}

/// Stops billing the tenant in the destination (the PSA's quantity is left as it is).
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/billing/{destination_id}", tag = "billing",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)"), ("destination_id" = String, Path, description = "A PSA destination")),
    responses((status = 204, description = "Forgotten")))]
pub(crate) async fn delete_mapping(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, destination)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.billing.delete_mapping(&access, &tenant_id(&tenant)?, &destination_id(&destination)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shows, per tenant and destination, the quantity in the PSA and the one a sync of the period
/// would set, writing nothing.
#[utoipa::path(post, path = "/v1/billing/dry-run", tag = "billing", request_body = SyncRequest,
    responses((status = 200, body = SyncRun), (status = 502, description = "A PSA could not be asked", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn dry_run(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<SyncRequest>,
) -> Result<Json<SyncRun>, Problem> {
    Ok(Json(state.billing.run(&access, &body, true).await?))
}

/// Syncs the period now: each mapped tenant's current figure set in its PSA, once per period
/// (a re-run of the same period changes nothing).
#[utoipa::path(post, path = "/v1/billing/sync", tag = "billing", request_body = SyncRequest,
    responses((status = 200, body = SyncRun), (status = 502, description = "A PSA failed; what could be done is done, run it again", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn run_sync(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<SyncRequest>,
) -> Result<Json<SyncRun>, Problem> {
    Ok(Json(state.billing.run(&access, &body, false).await?))
}
