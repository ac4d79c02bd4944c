//! Routes of the protected-mailbox figures and the billing settings: parse, call
//! [`vigil::services::mailbox_counts::MailboxCountService`], map the result.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use vigil::billing::BillingSettings;
use vigil::services::mailbox_counts::{MailboxSeries, MspMailboxFigures, SeriesQuery};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/mailbox-counts", get(current_counts))
        .route("/v1/mailbox-counts/export", get(current_counts_export))
        .route("/v1/tenants/{tenant_id}/mailbox-counts", get(tenant_series))
        .route("/v1/tenants/{tenant_id}/mailbox-counts/export", get(tenant_series_export))
        .route("/v1/billing/settings", get(billing_settings).put(set_billing_settings))
}

fn query<T>(query: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(q)| q).map_err(|e| Problem::bad_request(e.body_text()))
}

fn csv(body: String, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// Each tenant's current protected-mailbox figure (its latest day) and their total. A figure
/// carried over from an earlier day (today's count failed) says so in `carried_over`.
#[utoipa::path(get, path = "/v1/mailbox-counts", tag = "billing", responses((status = 200, body = MspMailboxFigures)))]
pub(crate) async fn current_counts(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<MspMailboxFigures>, Problem> {
    Ok(Json(state.mailbox_counts.current(&access).await?))
}

/// The current figures as CSV, one row per tenant.
#[utoipa::path(get, path = "/v1/mailbox-counts/export", tag = "billing",
    responses((status = 200, description = "RFC 4180 CSV with a header row", content_type = "text/csv", body = String)))]
pub(crate) async fn current_counts_export(State(state): State<AppState>, Caller(access): Caller) -> Result<Response, Problem> {
    Ok(csv(state.mailbox_counts.current_csv(&access).await?, "mailbox-counts.csv"))
}

/// A tenant's daily protected-mailbox series (default: the last 31 days).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/mailbox-counts", tag = "billing", params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)"), SeriesQuery),
    responses((status = 200, body = MailboxSeries)))]
pub(crate) async fn tenant_series(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    q: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MailboxSeries>, Problem> {
    Ok(Json(state.mailbox_counts.series(&access, &tenant_id(&raw)?, &query(q)?).await?))
}

/// A tenant's daily series as CSV.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/mailbox-counts/export", tag = "billing", params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)"), SeriesQuery),
    responses((status = 200, description = "RFC 4180 CSV with a header row", content_type = "text/csv", body = String)))]
pub(crate) async fn tenant_series_export(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    q: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let tenant = tenant_id(&raw)?;
    let body = state.mailbox_counts.series_csv(&access, &tenant, &query(q)?).await?;
    Ok(csv(body, &format!("mailbox-counts-{tenant}.csv")))
}

/// The MSP's billing settings (how many days each tenant's series keeps).
#[utoipa::path(get, path = "/v1/billing/settings", tag = "billing", responses((status = 200, body = BillingSettings)))]
pub(crate) async fn billing_settings(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<BillingSettings>, Problem> {
    Ok(Json(state.mailbox_counts.settings(&access).await?))
}

/// Replaces the MSP's billing settings. A shorter retention deletes each tenant's older days
/// when its next day is recorded.
#[utoipa::path(put, path = "/v1/billing/settings", tag = "billing", request_body = BillingSettings, responses((status = 200, body = BillingSettings)))]
pub(crate) async fn set_billing_settings(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<BillingSettings>,
) -> Result<Json<BillingSettings>, Problem> {
    Ok(Json(state.mailbox_counts.set_settings(&access, body).await?))
}
