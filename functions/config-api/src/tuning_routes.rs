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
use serde::Deserialize;
use serde_json::{Value, json};
use vigil::ids::{AlertId, PolicyId, TenantId};
use vigil::services::alert_feed::{CursorUse, Position, decode_cursor, encode_cursor};
use vigil::services::tuning::{AlertFilter, NewSuppression, SuppressFromAlert, TriageUpdate};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies", get(list_policies).post(create_policy).layer(DefaultBodyLimit::max(crate::POLICY_BODY_LIMIT)))
        .route("/v1/policies/test", post(test_policy).layer(DefaultBodyLimit::max(crate::POLICY_TEST_BODY_LIMIT)))
        .route(
            "/v1/policies/{policy_id}",
            get(get_policy).put(replace_policy).delete(delete_policy).layer(DefaultBodyLimit::max(crate::POLICY_BODY_LIMIT)),
        )
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

async fn list_policies(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<Value>, Problem> {
    Ok(Json(json!({ "policies": state.tuning.list_policies(&access).await? })))
}

async fn get_policy(State(state): State<AppState>, Caller(access): Caller, Path(raw): Path<String>) -> Result<Json<Value>, Problem> {
    Ok(Json(json!(state.tuning.policy(&access, &policy_id(&raw)?).await?)))
}

async fn create_policy(State(state): State<AppState>, Caller(access): Caller, ApiJson(body): ApiJson<Value>) -> Result<Response, Problem> {
    let view = state.tuning.put_policy(&access, None, body, true).await?;
    Ok((StatusCode::CREATED, Json(json!(view))).into_response())
}

async fn replace_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(json!(state.tuning.put_policy(&access, Some(&policy_id(&raw)?), body, false).await?)))
}

async fn delete_policy(State(state): State<AppState>, Caller(access): Caller, Path(raw): Path<String>) -> Result<StatusCode, Problem> {
    state.tuning.delete_policy(&access, &policy_id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    policy: Value,
    records: Vec<Value>,
    #[serde(default)]
    tenant_id: Option<TenantId>,
}

async fn test_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<Value>, Problem> {
    if body.records.len() > 10_000 {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", "at most 10,000 records per test"));
    }
    Ok(Json(json!(state.tuning.test_policy(&access, body.policy, body.records, body.tenant_id.as_ref()).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    enabled: bool,
}

async fn switch_policy(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, policy)): Path<(String, String)>,
    ApiJson(body): ApiJson<SwitchBody>,
) -> Result<Json<Value>, Problem> {
    let (tenant, policy) = (tenant_id(&tenant)?, policy_id(&policy)?);
    state.tuning.set_tenant_policy(&access, &tenant, &policy, body.enabled).await?;
    Ok(Json(json!({ "tenant_id": tenant, "policy_id": policy, "enabled": body.enabled })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyContextBody {
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    break_glass_accounts: Vec<String>,
}

async fn set_policy_context(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PolicyContextBody>,
) -> Result<Json<Value>, Problem> {
    let tenant = state.tuning.set_policy_context(&access, &tenant_id(&raw)?, body.domains, body.break_glass_accounts).await?;
    Ok(Json(json!({ "tenant_id": tenant.tenant_id, "domains": tenant.domains, "break_glass_accounts": tenant.break_glass_accounts })))
}

async fn list_suppressions(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<Value>, Problem> {
    Ok(Json(json!({ "suppressions": state.tuning.suppressions(&access).await? })))
}

async fn create_suppression(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<NewSuppression>,
) -> Result<Response, Problem> {
    let created = state.tuning.create_suppression(&access, body).await?;
    Ok((StatusCode::CREATED, Json(json!(created))).into_response())
}

async fn delete_suppression(State(state): State<AppState>, Caller(access): Caller, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    state.tuning.delete_suppression(&access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn suppress_like(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<SuppressFromAlert>,
) -> Result<Response, Problem> {
    let created = state.tuning.suppress_like(&access, &alert_id(&raw)?, body).await?;
    Ok((StatusCode::CREATED, Json(json!(created))).into_response())
}

/// `GET /v1/alerts` query: filters plus paging.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertQuery {
    limit: Option<usize>,
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

pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    Caller(access): Caller,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
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
    Ok(Json(json!({ "alerts": alerts, "next_cursor": next_cursor })))
}

pub(crate) async fn triage_alert(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<TriageUpdate>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(json!(state.tuning.triage(&access, &alert_id(&raw)?, &body).await?)))
}
