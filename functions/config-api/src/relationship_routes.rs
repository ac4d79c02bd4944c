//! Routes of the admin-relationship report and of removals: parse, call
//! [`vigil::services::relationships::RelationshipReportService`] or
//! [`vigil::services::relationship_removal::RelationshipRemovalService`], map the result.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil::relationships::RelationshipRefreshState;
use vigil::relationships::removal::Removal;
use vigil::relationships::report::{ReportRow, ReportSummary};
use vigil::services::relationship_removal::{ConfirmRequest, PreviewRequest, PreviewResponse};
use vigil::services::relationships::ReportQuery;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin-relationships", get(admin_relationships))
        .route("/v1/admin-relationships/summary", get(admin_relationship_summary))
        .route("/v1/admin-relationships/export", get(admin_relationship_export))
        .route("/v1/admin-relationships/removal-previews", post(preview_removal))
        .route("/v1/admin-relationships/removals", post(confirm_removal).get(list_removals))
        .route("/v1/admin-relationships/refresh", post(refresh))
}

/// Removals of admin relationships.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RemovalList {
    removals: Vec<Removal>,
}

/// Previews removing admin relationships: per relationship what will be removed, which
/// partner groups lose access and what stops working, and whether Vigil can remove it. Removes
/// nothing; the token (shown once) confirms it within 10 minutes. Needs
/// `relationships:remove`.
#[utoipa::path(post, path = "/v1/admin-relationships/removal-previews", tag = "admin relationships", request_body = PreviewRequest,
    responses((status = 201, body = PreviewResponse)))]
pub(crate) async fn preview_removal(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<Response, Problem> {
    let preview = state.removals.preview(&access, &request).await?;
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(preview)).into_response())
}

/// Confirms a preview with its token: each removable relationship is terminated through Graph
/// by the audit-poller (follow it with `GET /v1/admin-relationships/removals`). The token is
/// used up. Needs `relationships:remove`.
#[utoipa::path(post, path = "/v1/admin-relationships/removals", tag = "admin relationships", request_body = ConfirmRequest,
    responses((status = 202, body = RemovalList),
    (status = 409, description = "The preview expired", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn confirm_removal(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(request): ApiJson<ConfirmRequest>,
) -> Result<Response, Problem> {
    let removals = state.removals.confirm(&access, &request).await?;
    Ok((StatusCode::ACCEPTED, Json(RemovalList { removals })).into_response())
}

/// Every removal of the MSP's admin relationships, newest first: who asked, when, and how far
/// Graph has got.
#[utoipa::path(get, path = "/v1/admin-relationships/removals", tag = "admin relationships", responses((status = 200, body = RemovalList)))]
pub(crate) async fn list_removals(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<RemovalList>, Problem> {
    Ok(Json(RemovalList { removals: state.removals.removals(&access).await? }))
}

/// A page of the report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RelationshipReport {
    relationships: Vec<ReportRow>,
    /// Continues the report; `null` at its end.
    next_cursor: Option<String>,
    /// Across every customer, whatever the filters.
    summary: ReportSummary,
    /// When the figures were computed (days are counted to this time).
    as_of: DateTime<Utc>,
    /// How the last read of the partner tenant went (`null`: never read).
    last_read: Option<RelationshipRefreshState>,
}

fn query<T>(query: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(q)| q).map_err(|e| Problem::bad_request(e.body_text()))
}

/// The MSP's admin relationships with its customers (GDAP, and DAP where listed): roles,
/// access assignments, days enabled, partner sign-ins, inactivity bucket, recommendation.
#[utoipa::path(get, path = "/v1/admin-relationships", tag = "admin relationships", params(ReportQuery),
    responses((status = 200, body = RelationshipReport)))]
pub(crate) async fn admin_relationships(
    State(state): State<AppState>,
    Caller(access): Caller,
    q: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RelationshipReport>, Problem> {
    let page = state.relationships.report(&access, &query(q)?).await?;
    Ok(Json(RelationshipReport {
        relationships: page.rows,
        next_cursor: page.next_cursor,
        summary: page.summary,
        as_of: page.as_of,
        last_read: page.last_read,
    }))
}

/// Counts per inactivity bucket and finding across every customer.
#[utoipa::path(get, path = "/v1/admin-relationships/summary", tag = "admin relationships", responses((status = 200, body = ReportSummary)))]
pub(crate) async fn admin_relationship_summary(
    State(state): State<AppState>,
    Caller(access): Caller,
) -> Result<Json<ReportSummary>, Problem> {
    Ok(Json(state.relationships.summary(&access).await?))
}

/// The report (every row passing the filters; `limit` and `cursor` are ignored) as CSV.
#[utoipa::path(get, path = "/v1/admin-relationships/export", tag = "admin relationships", params(ReportQuery),
    responses((status = 200, description = "RFC 4180 CSV with a header row", content_type = "text/csv", body = String)))]
pub(crate) async fn admin_relationship_export(
    State(state): State<AppState>,
    Caller(access): Caller,
    q: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let csv = state.relationships.csv(&access, &query(q)?).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"admin-relationships.csv\""),
        ],
        csv,
    )
        .into_response())
}

/// Reads the partner tenant now instead of at the next daily read (at most once per 5
/// minutes); the report's `last_read` says when it was done.
#[utoipa::path(post, path = "/v1/admin-relationships/refresh", tag = "admin relationships", responses((status = 202, description = "The read is queued"),
    (status = 409, description = "No partner tenant is connected, or it was read less than 5 minutes ago", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn refresh(State(state): State<AppState>, Caller(access): Caller) -> Result<StatusCode, Problem> {
    state.relationships.refresh(&access).await?;
    Ok(StatusCode::ACCEPTED)
}
