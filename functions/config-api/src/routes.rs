//! Route handlers: parse, call [`vigil::services::admin::AdminService`], map the result.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil::alert::Alert;
use vigil::ids::{AlertId, AuditStream, TenantId};
use vigil::secret::SecretString;
use vigil::services::admin::MspSettingsChange;
use vigil::services::poll::PollSettings;
use vigil::tenant::{ConnectWiseCredentials, ConnectWiseSettings, M365AppCredentials, PriorityMap, Tenant};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/v1/msp", get(get_msp).put(set_msp))
        .route("/v1/tenants", get(list_tenants).post(register_tenant))
        .route("/v1/tenants/{tenant_id}", get(get_tenant))
        .route("/v1/tenants/{tenant_id}/m365-credentials", put(set_m365_credentials))
        .route("/v1/tenants/{tenant_id}/connectwise-company", put(map_company))
        .route("/v1/tenants/{tenant_id}/streams", get(stream_health).put(set_streams))
        .route("/v1/psa/connectwise", put(set_connectwise).get(get_connectwise))
        .route("/v1/alerts", get(crate::tuning_routes::list_alerts))
        .route("/v1/alerts/{alert_id}", get(get_alert).patch(crate::tuning_routes::triage_alert))
        .merge(crate::tuning_routes::router())
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "this route does not accept that method")
        })
}

pub(crate) fn tenant_id(raw: &str) -> Result<TenantId, Problem> {
    TenantId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// A tenant as the API shows it.
#[derive(Debug, Serialize)]
struct TenantView {
    tenant_id: String,
    name: String,
    domains: Vec<String>,
    connectwise_company_id: Option<i64>,
    m365_credentials_set: bool,
    webhook_registered: bool,
    streams: Option<Vec<AuditStream>>,
    created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            tenant_id: t.tenant_id.to_string(),
            name: t.name,
            domains: t.domains,
            connectwise_company_id: t.connectwise_company_id,
            m365_credentials_set: t.m365_credentials_set,
            webhook_registered: t.webhook_registered,
            streams: t.streams,
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterTenant {
    tenant_id: TenantId,
    name: String,
    #[serde(default)]
    domains: Vec<String>,
}

async fn register_tenant(
    State(state): State<AppState>,
    Caller(msp): Caller,
    ApiJson(body): ApiJson<RegisterTenant>,
) -> Result<Response, Problem> {
    let tenant = state.admin.register_tenant(&msp, body.tenant_id, &body.name, body.domains).await?;
    Ok((StatusCode::CREATED, Json(TenantView::from(tenant))).into_response())
}

async fn list_tenants(State(state): State<AppState>, Caller(msp): Caller) -> Result<Json<serde_json::Value>, Problem> {
    let tenants: Vec<TenantView> = state.admin.tenants(&msp).await?.into_iter().map(TenantView::from).collect();
    Ok(Json(serde_json::json!({ "tenants": tenants })))
}

async fn get_tenant(State(state): State<AppState>, Caller(msp): Caller, Path(raw): Path<String>) -> Result<Json<TenantView>, Problem> {
    Ok(Json(state.admin.tenant(&msp, &tenant_id(&raw)?).await?.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct M365CredentialsBody {
    client_id: String,
    client_secret: SecretString,
}

async fn set_m365_credentials(
    State(state): State<AppState>,
    Caller(msp): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<M365CredentialsBody>,
) -> Result<StatusCode, Problem> {
    state.admin.set_m365_credentials(&msp, &tenant_id(&raw)?, M365AppCredentials::new(body.client_id, body.client_secret)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompanyMapping {
    company_id: i64,
}

async fn map_company(
    State(state): State<AppState>,
    Caller(msp): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CompanyMapping>,
) -> Result<Json<TenantView>, Problem> {
    Ok(Json(state.admin.map_connectwise_company(&msp, &tenant_id(&raw)?, body.company_id).await?.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectWiseBody {
    api_root: String,
    company_id: String,
    public_key: String,
    private_key: SecretString,
    client_id: String,
    board_id: Option<i64>,
    #[serde(default)]
    priorities: PriorityMap,
}

async fn set_connectwise(
    State(state): State<AppState>,
    Caller(msp): Caller,
    ApiJson(body): ApiJson<ConnectWiseBody>,
) -> Result<StatusCode, Problem> {
    let settings = ConnectWiseSettings { api_root: body.api_root, board_id: body.board_id, priorities: body.priorities };
    let credentials = ConnectWiseCredentials {
        company_id: body.company_id,
        public_key: body.public_key,
        private_key: body.private_key,
        client_id: body.client_id,
    };
    state.admin.set_connectwise(&msp, settings, credentials, state.destination_policy).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_connectwise(State(state): State<AppState>, Caller(msp): Caller) -> Result<Json<ConnectWiseSettings>, Problem> {
    Ok(Json(state.admin.connectwise(&msp).await?))
}

/// An alert with its ticket deliveries.
#[derive(Debug, Serialize)]
struct AlertView {
    #[serde(flatten)]
    alert: Alert,
    tickets: Vec<serde_json::Value>,
}

async fn get_alert(State(state): State<AppState>, Caller(msp): Caller, Path(raw): Path<String>) -> Result<Json<AlertView>, Problem> {
    let alert_id = AlertId::parse(&raw).map_err(|_| Problem::not_found(format!("alert {raw} not found")))?;
    let detail = state.admin.alert(&msp, &alert_id).await?;
    let tickets = detail
        .deliveries
        .iter()
        .map(|d| serde_json::json!({ "destination": d.destination, "ticket_id": d.ticket.as_ref().map(|t| t.id), "notified_hits": d.notified_hits }))
        .collect();
    Ok(Json(AlertView { alert: detail.alert, tickets }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamsBody {
    /// Stream names (`Audit.Exchange`, …, `Graph.AlertsV2`), or null for Vigil's defaults.
    streams: Option<Vec<AuditStream>>,
}

async fn set_streams(
    State(state): State<AppState>,
    Caller(msp): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<StreamsBody>,
) -> Result<Json<TenantView>, Problem> {
    Ok(Json(state.admin.set_streams(&msp, &tenant_id(&raw)?, body.streams).await?.into()))
}

async fn stream_health(
    State(state): State<AppState>,
    Caller(msp): Caller,
    Path(raw): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let health = state.admin.stream_health(&msp, &tenant_id(&raw)?, &PollSettings::default().streams).await?;
    let streams: Vec<serde_json::Value> = health
        .into_iter()
        .map(|(stream, ledger)| match ledger {
            None => serde_json::json!({ "stream": stream, "status": "not polled yet" }),
            Some(l) => serde_json::json!({
                "stream": stream,
                "status": if l.problem_since.is_some() { "connection problem" } else if l.consecutive_failures > 0 { "failing" } else { "healthy" },
                "covered_until": l.covered_until,
                "last_success": l.last_success,
                "consecutive_failures": l.consecutive_failures,
                "last_error": l.last_error,
                "problem_since": l.problem_since,
                "lost_intervals": l.lost.iter().map(|(from, to)| serde_json::json!({"from": from, "to": to})).collect::<Vec<_>>(),
            }),
        })
        .collect();
    Ok(Json(serde_json::json!({ "streams": streams })))
}

/// `PUT /v1/msp`: only the fields present change; `null` clears an optional one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MspSettings {
    /// The MSP's own Entra tenant id (GUID), or null for the deployment's.
    #[serde(default, deserialize_with = "present")]
    publisher_identifier: Option<Option<TenantId>>,
    /// How far back a new tenant's first poll looks, in hours (1 to 168).
    #[serde(default)]
    first_lookback_hours: Option<u32>,
    /// Alerts whose newest hit is older than this many hours get no ticket; null: no limit.
    #[serde(default, deserialize_with = "present")]
    backfill_ticket_max_age_hours: Option<Option<u32>>,
}

/// A field that is present, even as `null`, is `Some`; an absent one stays `None` (default).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

fn msp_view(msp: &vigil::tenant::Msp) -> serde_json::Value {
    serde_json::json!({
        "msp_id": msp.id,
        "name": msp.name,
        "publisher_identifier": msp.publisher_identifier,
        "first_lookback_hours": msp.first_lookback_hours,
        "backfill_ticket_max_age_hours": msp.backfill_ticket_max_age_hours,
        "created_at": msp.created_at,
    })
}

async fn get_msp(State(state): State<AppState>, Caller(msp): Caller) -> Result<Json<serde_json::Value>, Problem> {
    Ok(Json(msp_view(&state.admin.msp(&msp).await?)))
}

async fn set_msp(
    State(state): State<AppState>,
    Caller(msp): Caller,
    ApiJson(body): ApiJson<MspSettings>,
) -> Result<Json<serde_json::Value>, Problem> {
    let change = MspSettingsChange {
        publisher_identifier: body.publisher_identifier,
        first_lookback_hours: body.first_lookback_hours,
        backfill_ticket_max_age_hours: body.backfill_ticket_max_age_hours,
    };
    Ok(Json(msp_view(&state.admin.update_msp_settings(&msp, change).await?)))
}
