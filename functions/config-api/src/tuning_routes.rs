//! Routes for policies, suppressions and alert triage: parse, call
//! [`vigil::services::tuning::TuningService`], map the result. Who made a change is the
//! authenticated principal (an `X-Vigil-Actor` header, which older clients sent, is ignored).

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil::alert::Alert;
use vigil::ids::{AlertId, PolicyId, TenantId};
use vigil::policy::model::PolicyDefinition;
use vigil::ports::Suppression;
use vigil::services::alert_feed::{CursorUse, Position, decode_cursor, encode_cursor};
use vigil::services::tuning::{AlertFilter, NewSuppression, PolicyTestResult, PolicyView, SuppressFromAlert, TriageUpdate};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies", get(list_policies).post(create_policy).layer(DefaultBodyLimit::max(crate::POLICY_BODY_LIMIT)))
        .route("/v1/policies/test", post(test_policy).layer(DefaultBodyLimit::max(crate::POLICY_TEST_BODY_LIMIT)))
        .route(
            "/v1/policies/{policy_id}",
            get(get_policy).put(replace_policy).delete(delete_policy).layer(DefaultBodyLimit::max(crate::POLICY_BODY_LIMIT)),
        )
        .route("/v1/tenants/{tenant_id}/policies", get(tenant_switches))
        .route("/v1/tenants/{tenant_id}/policies/{policy_id}", put(switch_policy))
        .route("/v1/tenants/{tenant_id}/policy-context", put(set_policy_context))
        .route("/v1/suppressions", get(list_suppressions).post(create_suppression))
        .route("/v1/suppressions/{suppression_id}", axum::routing::delete(delete_suppression))
        .route("/v1/alerts/{alert_id}/suppress", post(suppress_like))
}

fn policy_id(raw: &str) -> Result<PolicyId, Problem> {
    PolicyId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

pub(crate) fn alert_id(raw: &str) -> Result<AlertId, Problem> {
    AlertId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// The policies in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PolicyList {
    policies: Vec<PolicyView>,
}

/// Every policy in force for the MSP (built-ins first); a category-limited caller sees those
/// of its categories.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", responses((status = 200, body = PolicyList)))]
pub(crate) async fn list_policies(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<PolicyList>, Problem> {
    Ok(Json(PolicyList { policies: state.tuning.list_policies(&access).await? }))
}

/// One policy.
#[utoipa::path(get, path = "/v1/policies/{policy_id}", tag = "policies", params(("policy_id" = String, Path, description = "builtin.… or custom.…")),
    responses((status = 200, body = PolicyView)))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<PolicyView>, Problem> {
    Ok(Json(state.tuning.policy(&access, &policy_id(&raw)?).await?))
}

/// Creates an own policy (id `custom.…`).
#[utoipa::path(post, path = "/v1/policies", tag = "policies", request_body = PolicyDefinition,
    responses((status = 201, body = PolicyView), (status = 409, description = "The id exists (or is a built-in's)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, Problem> {
    let view = state.tuning.put_policy(&access, None, body, true).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Replaces an own policy, or a built-in by the MSP's copy.
#[utoipa::path(put, path = "/v1/policies/{policy_id}", tag = "policies", request_body = PolicyDefinition,
    params(("policy_id" = String, Path, description = "builtin.… or custom.…")), responses((status = 200, body = PolicyView)))]
pub(crate) async fn replace_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<PolicyView>, Problem> {
    Ok(Json(state.tuning.put_policy(&access, Some(&policy_id(&raw)?), body, false).await?))
}

/// Deletes an own policy, or the MSP's copy of a built-in (the shipped one is back).
#[utoipa::path(delete, path = "/v1/policies/{policy_id}", tag = "policies", params(("policy_id" = String, Path, description = "builtin.… or custom.…")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    state.tuning.delete_policy(&access, &policy_id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/policies/test`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestBody {
    /// A policy id (a string: the policy in force), or a whole definition.
    policy: Value,
    /// Audit records as Microsoft sends them (free-form; at most 10,000).
    records: Vec<Value>,
    #[serde(default)]
    tenant_id: Option<TenantId>,
}

/// Runs a policy over sample records; nothing is stored.
#[utoipa::path(post, path = "/v1/policies/test", tag = "policies", request_body = TestBody, responses((status = 200, body = PolicyTestResult)))]
pub(crate) async fn test_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<PolicyTestResult>, Problem> {
    if body.records.len() > 10_000 {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", "at most 10,000 records per test"));
    }
    Ok(Json(state.tuning.test_policy(&access, body.policy, body.records, body.tenant_id.as_ref()).await?))
}

/// `PUT /v1/tenants/{tenant_id}/policies/{policy_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchBody {
    enabled: bool,
}

/// A policy's switch for one tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PolicySwitch {
    tenant_id: TenantId,
    policy_id: PolicyId,
    enabled: bool,
}

/// A tenant's own switches.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PolicySwitchList {
    /// Policies turned on or off for this tenant alone, of the categories the caller sees; a
    /// policy not listed follows its own `enabled`.
    switches: Vec<PolicySwitch>,
}

/// The policies turned on or off for one tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/policies", tag = "policies",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 200, body = PolicySwitchList)))]
pub(crate) async fn tenant_switches(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(tenant): Path<String>,
) -> Result<Json<PolicySwitchList>, Problem> {
    let tenant = tenant_id(&tenant)?;
    let switches = state.tuning.tenant_policy_switches(&access, &tenant).await?;
    let switches =
        switches.into_iter().map(|(policy_id, enabled)| PolicySwitch { tenant_id: tenant.clone(), policy_id, enabled }).collect();
    Ok(Json(PolicySwitchList { switches }))
}

/// Turns a policy on or off for one tenant.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/policies/{policy_id}", tag = "policies", request_body = SwitchBody,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)"), ("policy_id" = String, Path, description = "builtin.… or custom.…")),
    responses((status = 200, body = PolicySwitch)))]
pub(crate) async fn switch_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, policy)): Path<(String, String)>,
    ApiJson(body): ApiJson<SwitchBody>,
) -> Result<Json<PolicySwitch>, Problem> {
    let (tenant, policy) = (tenant_id(&tenant)?, policy_id(&policy)?);
    state.tuning.set_tenant_policy(&access, &tenant, &policy, body.enabled).await?;
    Ok(Json(PolicySwitch { tenant_id: tenant, policy_id: policy, enabled: body.enabled }))
}

/// `PUT /v1/tenants/{tenant_id}/policy-context`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyContextBody {
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    break_glass_accounts: Vec<String>,
}

/// What policies know of a tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PolicyContext {
    tenant_id: TenantId,
    domains: Vec<String>,
    break_glass_accounts: Vec<String>,
}

/// Sets the tenant's mail domains and break-glass accounts, which policies may use.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/policy-context", tag = "policies", request_body = PolicyContextBody,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")), responses((status = 200, body = PolicyContext)))]
pub(crate) async fn set_policy_context(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PolicyContextBody>,
) -> Result<Json<PolicyContext>, Problem> {
    let tenant = state.tuning.set_policy_context(&access, &tenant_id(&raw)?, body.domains, body.break_glass_accounts).await?;
    Ok(Json(PolicyContext { tenant_id: tenant.tenant_id, domains: tenant.domains, break_glass_accounts: tenant.break_glass_accounts }))
}

/// The suppression rules.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SuppressionList {
    suppressions: Vec<Suppression>,
}

/// The MSP's suppression rules (a category-limited caller: those naming a policy of its
/// categories).
#[utoipa::path(get, path = "/v1/suppressions", tag = "suppressions", responses((status = 200, body = SuppressionList)))]
pub(crate) async fn list_suppressions(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<SuppressionList>, Problem> {
    Ok(Json(SuppressionList { suppressions: state.tuning.suppressions(&access).await? }))
}

/// Creates a suppression rule.
#[utoipa::path(post, path = "/v1/suppressions", tag = "suppressions", request_body = NewSuppression, responses((status = 201, body = Suppression)))]
pub(crate) async fn create_suppression(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<NewSuppression>,
) -> Result<Response, Problem> {
    let created = state.tuning.create_suppression(&access, body).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Deletes a suppression rule.
#[utoipa::path(delete, path = "/v1/suppressions/{suppression_id}", tag = "suppressions", params(("suppression_id" = String, Path, description = "sup-…")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_suppression(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.tuning.delete_suppression(&access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Suppresses alerts like this one (same policy and tenant, and user unless `scope` is
/// `tenant`).
#[utoipa::path(post, path = "/v1/alerts/{alert_id}/suppress", tag = "alerts", request_body = SuppressFromAlert,
    params(("alert_id" = String, Path, description = "The alert's id")), responses((status = 201, body = Suppression)))]
pub(crate) async fn suppress_like(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<SuppressFromAlert>,
) -> Result<Response, Problem> {
    let created = state.tuning.suppress_like(&access, &alert_id(&raw)?, body).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// `GET /v1/alerts` query: filters plus paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertQuery {
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// `next_cursor` of the page before.
    cursor: Option<String>,
    status: Option<vigil::alert::AlertStatus>,
    severity: Option<vigil::alert::Severity>,
    category: Option<vigil::alert::Category>,
    policy: Option<PolicyId>,
    tenant: Option<TenantId>,
    mode: Option<vigil::alert::PolicyMode>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of alerts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AlertList {
    alerts: Vec<Alert>,
    /// Continues the list; `null` at its end.
    next_cursor: Option<String>,
}

/// The MSP's alerts, newest change first; filters combine.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertQuery), responses((status = 200, body = AlertList)))]
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    Caller(access): Caller,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertList>, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let after = match &query.cursor {
        Some(cursor) => {
            decode_cursor(cursor, CursorUse::List, access.msp_id()).map_err(|e| Problem::bad_request(format!("cursor: {e}")))?.after
        }
        None => None,
    };
    let filter = AlertFilter {
        status: query.status,
        severity: query.severity,
        category: query.category,
        policy: query.policy,
        tenant: query.tenant,
        mode: query.mode,
        from: query.from,
        to: query.to,
    };
    let (alerts, next) = state.tuning.alerts(&access, &filter, query.limit.unwrap_or(50), after).await?;
    let next_cursor = next.map(|key| encode_cursor(CursorUse::List, access.msp_id(), &Position::after(key)));
    Ok(Json(AlertList { alerts, next_cursor }))
}

/// Changes an alert's status, assignee, classification or comments; resolving it closes its
/// tickets.
#[utoipa::path(patch, path = "/v1/alerts/{alert_id}", tag = "alerts", request_body = TriageUpdate,
    params(("alert_id" = String, Path, description = "The alert's id")), responses((status = 200, body = Alert)))]
pub(crate) async fn triage_alert(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<TriageUpdate>,
) -> Result<Json<Alert>, Problem> {
    Ok(Json(state.tuning.triage(&access, &alert_id(&raw)?, &body).await?))
}
