//! The route of a tenant's licences: parse, call [`vigil::services::licences::LicenceService`],
//! map the result.

use crate::AppState;
use crate::extract::Caller;
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use vigil::licences::TenantLicences;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant_id}/licences", get(tenant_licences))
}

/// A tenant's licences as Vigil read them last (daily, `Organization.Read.All`): products with
/// their units and Defender for Office 365 plans, subscriptions with their status and next
/// lifecycle date, since when each has its status, the last 50 status changes, the licence
/// findings raised, and how the last read went (`needs_reconsent`: Graph refused it). Before
/// the first read, `read_at` is null and the lists are empty.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/licences", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 200, body = TenantLicences)))]
pub(crate) async fn tenant_licences(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<TenantLicences>, Problem> {
    Ok(Json(state.licences.tenant_licences(&access, &tenant_id(&raw)?).await?))
}
