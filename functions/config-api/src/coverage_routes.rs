//! `GET /v1/coverage`: how much of the last 24 hours Vigil has seen of each of the MSP's
//! tenants, and of the MSP as a whole (see [`vigil::coverage`] for the figure's definition).
//! Parse, call [`vigil::services::admin::AdminService::coverage`], map the result.

use crate::AppState;
use crate::extract::Caller;
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil::services::coverage::{COVERAGE_PAGE_MAX, TenantCoverage};
use vigil::services::poll::PollSettings;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/coverage", get(coverage))
}

/// The page asked for.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CoverageQuery {
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// The `next_after` of the previous page: tenants after this tenant id.
    after: Option<String>,
}

/// One tenant's coverage of the last 24 hours.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantCoverageView {
    tenant_id: String,
    name: String,
    /// The fraction (0 to 1) of the 24 hours before `at` in which every stream the tenant has
    /// enabled was covered: listed and enqueued (before its ledger's `covered_until`, or its last
    /// successful poll) and in none of its lost intervals. A stream never polled covers nothing; the time since the last
    /// poll is not covered yet. `null`: the tenant has no enabled stream.
    coverage_24h: Option<f64>,
    /// Enabled streams never polled yet.
    streams_not_polled: usize,
    /// Enabled streams with a lost interval ending within the window.
    streams_with_losses: usize,
}

impl From<TenantCoverage> for TenantCoverageView {
    fn from(c: TenantCoverage) -> Self {
        Self {
            tenant_id: c.tenant_id.to_string(),
            name: c.name,
            coverage_24h: c.coverage_24h,
            streams_not_polled: c.streams_not_polled,
            streams_with_losses: c.streams_with_losses,
        }
    }
}

/// The MSP's coverage and a page of its tenants'.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CoverageView {
    /// When the figures were computed: the 24-hour window ends here.
    at: DateTime<Utc>,
    /// The mean of the tenants' `coverage_24h` (the share of tenant-hours covered) over all
    /// the MSP's tenants with a figure, whatever the page; `null` when none has one.
    msp_coverage_24h: Option<f64>,
    /// How many tenants the MSP has.
    tenants_total: usize,
    /// Tenants in tenant id order.
    tenants: Vec<TenantCoverageView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

/// The MSP's coverage of the last 24 hours: its figure and a page of its tenants' (needs
/// config:read).
#[utoipa::path(get, path = "/v1/coverage", tag = "tenants", params(CoverageQuery), responses((status = 200, body = CoverageView)))]
pub(crate) async fn coverage(
    State(state): State<AppState>,
    Caller(access): Caller,
    query: Result<Query<CoverageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CoverageView>, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=COVERAGE_PAGE_MAX).contains(&limit) {
        return Err(Problem::bad_request(format!("limit: 1 to {COVERAGE_PAGE_MAX}")));
    }
    let after = query.after.as_deref().map(tenant_id).transpose()?;
    let page = state.admin.coverage(&access, &PollSettings::default().streams, limit, after.as_ref()).await?;
    Ok(Json(CoverageView {
        at: page.at,
        msp_coverage_24h: page.msp_coverage_24h,
        tenants_total: page.tenants_total,
        tenants: page.tenants.into_iter().map(Into::into).collect(),
        next_after: page.next_after.map(|t| t.to_string()),
    }))
}
