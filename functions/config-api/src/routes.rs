//! Route handlers: parse, call [`vigil::services::admin::AdminService`], map the result. The
//! destination routes are in [`crate::destination_routes`], policies, suppressions and triage
//! in [`crate::tuning_routes`].

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
use std::collections::BTreeMap;
use vigil::alert::Alert;
use vigil::ids::{AlertId, AuditStream, DestinationId, TenantId};
use vigil::secret::SecretString;
use vigil::services::admin::MspSettingsChange;
use vigil::services::poll::PollSettings;
use vigil::tenant::{M365AppCredentials, Tenant};
use vigil::ticket::{Delivery, TicketState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/v1/msp", get(get_msp).put(set_msp))
        .route("/v1/tenants", get(list_tenants).post(register_tenant))
        .route("/v1/tenants/{tenant_id}", get(get_tenant))
        .route("/v1/tenants/{tenant_id}/m365-credentials", put(set_m365_credentials))
        .route("/v1/tenants/{tenant_id}/connectwise-company", put(company_route_gone))
        .route("/v1/tenants/{tenant_id}/streams", get(stream_health).put(set_streams))
        .route("/v1/psa/connectwise", put(psa_route_gone).get(psa_route_gone))
        .route("/v1/alerts", get(crate::tuning_routes::list_alerts))
        .route("/v1/alerts/{alert_id}", get(get_alert).patch(crate::tuning_routes::triage_alert))
        .merge(crate::tuning_routes::router())
        .merge(crate::destination_routes::router())
        .merge(crate::replay_routes::router())
        .merge(crate::siem_routes::router())
        .merge(crate::access_routes::router())
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
pub(crate) struct TenantView {
    tenant_id: String,
    name: String,
    domains: Vec<String>,
    /// The tenant's company per destination (a link stored before destinations were data
    /// shows as the destination `connectwise`'s).
    company_links: BTreeMap<DestinationId, String>,
    m365_credentials_set: bool,
    webhook_registered: bool,
    streams: Option<Vec<AuditStream>>,
    created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        let mut company_links = t.company_links.clone();
        if let Ok(legacy) = DestinationId::parse(vigil::destination::LEGACY_DESTINATION_ID)
            && let Some(company) = t.company_link(&legacy)
        {
            company_links.entry(legacy).or_insert(company);
        }
        Self {
            tenant_id: t.tenant_id.to_string(),
            name: t.name,
            domains: t.domains,
            company_links,
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
    Caller(access): Caller,
    ApiJson(body): ApiJson<RegisterTenant>,
) -> Result<Response, Problem> {
    let tenant = state.admin.register_tenant(&access, body.tenant_id, &body.name, body.domains).await?;
    Ok((StatusCode::CREATED, Json(TenantView::from(tenant))).into_response())
}

async fn list_tenants(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<serde_json::Value>, Problem> {
    let tenants: Vec<TenantView> = state.admin.tenants(&access).await?.into_iter().map(TenantView::from).collect();
    Ok(Json(serde_json::json!({ "tenants": tenants })))
}

async fn get_tenant(State(state): State<AppState>, Caller(access): Caller, Path(raw): Path<String>) -> Result<Json<TenantView>, Problem> {
    Ok(Json(state.admin.tenant(&access, &tenant_id(&raw)?).await?.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct M365CredentialsBody {
    client_id: String,
    client_secret: SecretString,
}

async fn set_m365_credentials(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<M365CredentialsBody>,
) -> Result<StatusCode, Problem> {
    state.admin.set_m365_credentials(&access, &tenant_id(&raw)?, M365AppCredentials::new(body.client_id, body.client_secret)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT|GET /v1/psa/connectwise`: replaced by destinations.
async fn psa_route_gone() -> Problem {
    Problem::gone(
        "PSA settings are destinations now: PUT /v1/destinations/{destination_id} with {\"name\", \"settings\": {\"kind\": \"connectwise\", \"api_root\": …}, \"routing\", \"credentials\"}; \
         settings saved here before carry over as the destination `connectwise` (GET /v1/destinations/connectwise)",
    )
}

/// `PUT /v1/tenants/{tenant_id}/connectwise-company`: replaced by per-destination links.
async fn company_route_gone() -> Problem {
    Problem::gone(
        "company links are per destination now: PUT /v1/tenants/{tenant_id}/destinations/{destination_id}/company with {\"company\": \"250\"}; \
         a company saved here before counts as the link to the destination `connectwise`",
    )
}

/// A ticket filed for the alert before the current one.
#[derive(Debug, Serialize)]
struct EarlierTicketView {
    ticket: String,
    /// `closed` (by a technician) or `gone` (deleted or merged in the PSA).
    ended: String,
    at: DateTime<Utc>,
}

/// The alert's delivery to one destination.
#[derive(Debug, Serialize)]
struct DeliveryView {
    destination: DestinationId,
    /// The PSA's id of the current ticket, once filed.
    ticket: Option<String>,
    /// The ticket's state as last read from the PSA.
    psa_state: Option<TicketState>,
    earlier_tickets: Vec<EarlierTicketView>,
    /// Vigil closed the ticket (the alert resolved).
    closed: bool,
    /// Waiting for the tenant's company link in this destination.
    held_until_linked: bool,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            destination: d.destination,
            ticket: d.ticket.map(|t| t.id),
            psa_state: d.psa_state,
            earlier_tickets: d
                .earlier_tickets
                .into_iter()
                .map(|e| EarlierTicketView { ticket: e.ticket.id, ended: e.ended, at: e.at })
                .collect(),
            closed: d.closed,
            held_until_linked: d.held_unlinked,
        }
    }
}

/// An alert with its delivery to each destination.
#[derive(Debug, Serialize)]
struct AlertView {
    #[serde(flatten)]
    alert: Alert,
    deliveries: Vec<DeliveryView>,
}

async fn get_alert(State(state): State<AppState>, Caller(access): Caller, Path(raw): Path<String>) -> Result<Json<AlertView>, Problem> {
    let alert_id = AlertId::parse(&raw).map_err(|_| Problem::not_found(format!("alert {raw} not found")))?;
    let detail = state.admin.alert(&access, &alert_id).await?;
    Ok(Json(AlertView { alert: detail.alert, deliveries: detail.deliveries.into_iter().map(DeliveryView::from).collect() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamsBody {
    /// Stream names (`Audit.Exchange`, …, `Graph.AlertsV2`), or null for Vigil's defaults.
    streams: Option<Vec<AuditStream>>,
}

async fn set_streams(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<StreamsBody>,
) -> Result<Json<TenantView>, Problem> {
    Ok(Json(state.admin.set_streams(&access, &tenant_id(&raw)?, body.streams).await?.into()))
}

async fn stream_health(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let health = state.admin.stream_health(&access, &tenant_id(&raw)?, &PollSettings::default().streams).await?;
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

async fn get_msp(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<serde_json::Value>, Problem> {
    Ok(Json(msp_view(&state.admin.msp(&access).await?)))
}

async fn set_msp(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<MspSettings>,
) -> Result<Json<serde_json::Value>, Problem> {
    let change = MspSettingsChange {
        publisher_identifier: body.publisher_identifier,
        first_lookback_hours: body.first_lookback_hours,
        backfill_ticket_max_age_hours: body.backfill_ticket_max_age_hours,
    };
    Ok(Json(msp_view(&state.admin.update_msp_settings(&access, change).await?)))
}
