//! Routes of the admin-relationship report: parse, call
//! [`vigil::services::relationships::RelationshipReportService`], map the result.

use crate::AppState;
use crate::extract::Caller;
use crate::problem::Problem;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil::relationships::RelationshipRefreshState;
use vigil::relationships::report::{ReportRow, ReportSummary};
use vigil::services::relationships::ReportQuery;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin-relationships", get(admin_relationships))
        .route("/v1/admin-relationships/summary", get(admin_relationship_summary))
        .route("/v1/admin-relationships/export", get(admin_relationship_export))
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
