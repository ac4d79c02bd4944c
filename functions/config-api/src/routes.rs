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
use vigil::ids::{AuditStream, DestinationId, TenantId};
use vigil::secret::SecretString;
use vigil::services::admin::MspSettingsChange;
use vigil::services::poll::PollSettings;
use vigil::tenant::{M365AppCredentials, Tenant};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(crate::openapi::openapi_json))
        .route("/v1/msp", get(get_msp).put(set_msp))
        .route("/v1/msp/partner-tenant", put(connect_partner_tenant))
        .route("/v1/tenants", get(list_tenants).post(register_tenant))
        .route("/v1/tenants/{tenant_id}", get(get_tenant))
        .route("/v1/tenants/{tenant_id}/m365-credentials", put(set_m365_credentials))
        .route("/v1/tenants/{tenant_id}/connectwise-company", put(company_route_gone))
        .route("/v1/tenants/{tenant_id}/streams", get(stream_health).put(set_streams))
        .route("/v1/psa/connectwise", put(psa_route_gone_put).get(psa_route_gone_get))
        .route("/v1/alerts", get(crate::tuning_routes::list_alerts))
        .route("/v1/alerts/{alert_id}", get(crate::alert_routes::get_alert).patch(crate::tuning_routes::triage_alert))
        .merge(crate::tuning_routes::router())
        .merge(crate::destination_routes::router())
        .merge(crate::replay_routes::router())
        .merge(crate::siem_routes::router())
        .merge(crate::access_routes::router())
        .merge(crate::relationship_routes::router())
        .merge(crate::mailbox_routes::router())
        .merge(crate::licence_routes::router())
        .merge(crate::billing_routes::router())
        .merge(crate::console_routes::router())
        .merge(crate::coverage_routes::router())
        .merge(crate::onboarding_routes::router())
        .merge(crate::offboarding_routes::router())
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "this route does not accept that method")
        })
}

/// `GET /v1/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// `GET /v1/health`: the API answers.
#[utoipa::path(get, path = "/v1/health", tag = "meta", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

pub(crate) fn tenant_id(raw: &str) -> Result<TenantId, Problem> {
    TenantId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// A tenant as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// `POST /v1/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterTenant {
    tenant_id: TenantId,
    name: String,
    #[serde(default)]
    domains: Vec<String>,
}

/// Registers a customer tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = RegisterTenant,
    responses((status = 201, body = TenantView), (status = 409, description = "Already registered", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn register_tenant(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<RegisterTenant>,
) -> Result<Response, Problem> {
    let tenant = state.admin.register_tenant(&access, body.tenant_id, &body.name, body.domains).await?;
    Ok((StatusCode::CREATED, Json(TenantView::from(tenant))).into_response())
}

/// The MSP's tenants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantList {
    tenants: Vec<TenantView>,
    /// With `limit`: continues the list (`null` at its end). Without: always `null`.
    next_cursor: Option<String>,
}

/// `GET /v1/tenants` query: paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantQuery {
    /// A page of at most this many tenants (1 to 1000), in tenant-id order; without it, every
    /// tenant at once.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the page before (needs `limit`).
    cursor: Option<String>,
}

/// The MSP's tenants: every one, or with `limit` one page at a time (a page costs reads of
/// that page only, so a console can show the first page of thousands at once).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(TenantQuery), responses((status = 200, body = TenantList)))]
pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    Caller(access): Caller,
    query: Result<axum::extract::Query<TenantQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TenantList>, Problem> {
    let axum::extract::Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let Some(limit) = query.limit else {
        if query.cursor.is_some() {
            return Err(Problem::bad_request("cursor needs limit"));
        }
        let tenants: Vec<TenantView> = state.admin.tenants(&access).await?.into_iter().map(TenantView::from).collect();
        return Ok(Json(TenantList { tenants, next_cursor: None }));
    };
    let after =
        query.cursor.as_deref().map(TenantId::parse).transpose().map_err(|_| Problem::bad_request("cursor: not one this API returned"))?;
    let page = state.admin.tenants_page(&access, limit, after.as_ref()).await?;
    Ok(Json(TenantList {
        tenants: page.tenants.into_iter().map(TenantView::from).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}

/// One tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}", tag = "tenants", params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 200, body = TenantView)))]
pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<TenantView>, Problem> {
    Ok(Json(state.admin.tenant(&access, &tenant_id(&raw)?).await?.into()))
}

/// `PUT /v1/tenants/{tenant_id}/m365-credentials` (write-only).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct M365CredentialsBody {
    client_id: String,
    client_secret: SecretString,
}

/// Stores the Microsoft 365 app credentials that reach the tenant (write-only).
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/m365-credentials", tag = "tenants", request_body = M365CredentialsBody,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 204, description = "Stored"),
        (status = 409, description = "The tenant is offboarded and not yet purged", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn set_m365_credentials(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<M365CredentialsBody>,
) -> Result<StatusCode, Problem> {
    state.admin.set_m365_credentials(&access, &tenant_id(&raw)?, M365AppCredentials::new(body.client_id, body.client_secret)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/psa/connectwise`: replaced by destinations.
#[utoipa::path(get, path = "/v1/psa/connectwise", tag = "gone", responses((status = 410, description = "Replaced by destinations", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn psa_route_gone_get() -> Problem {
    psa_route_gone()
}

/// `PUT /v1/psa/connectwise`: replaced by destinations.
#[utoipa::path(put, path = "/v1/psa/connectwise", tag = "gone", responses((status = 410, description = "Replaced by destinations", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn psa_route_gone_put() -> Problem {
    psa_route_gone()
}

fn psa_route_gone() -> Problem {
    Problem::gone(
        "PSA settings are destinations now: PUT /v1/destinations/{destination_id} with {\"name\", \"settings\": {\"kind\": \"connectwise\", \"api_root\": …}, \"routing\", \"credentials\"}; \
         settings saved here before carry over as the destination `connectwise` (GET /v1/destinations/connectwise)",
    )
}

/// `PUT /v1/tenants/{tenant_id}/connectwise-company`: replaced by per-destination links.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/connectwise-company", tag = "gone", params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 410, description = "Replaced by per-destination company links", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn company_route_gone() -> Problem {
    Problem::gone(
        "company links are per destination now: PUT /v1/tenants/{tenant_id}/destinations/{destination_id}/company with {\"company\": \"250\"}; \
         a company saved here before counts as the link to the destination `connectwise`",
    )
}

/// `PUT /v1/tenants/{tenant_id}/streams`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamsBody {
    /// Stream names (`Audit.Exchange`, …, `Graph.AlertsV2`), or null for Vigil's defaults.
    streams: Option<Vec<AuditStream>>,
}

/// Chooses which audit streams are polled for the tenant.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/streams", tag = "tenants", request_body = StreamsBody,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")), responses((status = 200, body = TenantView)))]
pub(crate) async fn set_streams(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<StreamsBody>,
) -> Result<Json<TenantView>, Problem> {
    Ok(Json(state.admin.set_streams(&access, &tenant_id(&raw)?, body.streams).await?.into()))
}

/// An interval of audit content Microsoft no longer holds, lost to an outage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LostInterval {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// One stream's health.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StreamHealth {
    stream: AuditStream,
    /// `not polled yet`, `healthy`, `failing` or `connection problem`.
    status: &'static str,
    /// The rest are absent until the stream's first poll.
    #[serde(skip_serializing_if = "Option::is_none")]
    covered_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_success: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consecutive_failures: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem_since: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost_intervals: Option<Vec<LostInterval>>,
}

/// The health of each of a tenant's streams.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StreamHealthList {
    streams: Vec<StreamHealth>,
    /// The fraction (0 to 1) of the last 24 hours in which every stream listed was covered
    /// (before its `covered_until` or last success, outside its lost intervals; a stream not polled yet
    /// covers nothing), as in `GET /v1/coverage`.
    coverage_24h: Option<f64>,
}

/// Coverage and health of each stream of the tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/streams", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")), responses((status = 200, body = StreamHealthList)))]
pub(crate) async fn stream_health(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<StreamHealthList>, Problem> {
    let health = state.admin.stream_health(&access, &tenant_id(&raw)?, &PollSettings::default().streams).await?;
    let ledgers: Vec<_> = health.iter().map(|(_, ledger)| ledger.as_ref()).collect();
    let coverage_24h = vigil::coverage::tenant_coverage(&ledgers, state.admin.clock.now());
    let streams = health
        .into_iter()
        .map(|(stream, ledger)| match ledger {
            None => StreamHealth {
                stream,
                status: "not polled yet",
                covered_until: None,
                last_success: None,
                consecutive_failures: None,
                last_error: None,
                problem_since: None,
                lost_intervals: None,
            },
            Some(l) => StreamHealth {
                stream,
                status: if l.problem_since.is_some() {
                    "connection problem"
                } else if l.consecutive_failures > 0 {
                    "failing"
                } else {
                    "healthy"
                },
                covered_until: Some(l.covered_until),
                last_success: Some(l.last_success),
                consecutive_failures: Some(l.consecutive_failures),
                last_error: Some(l.last_error),
                problem_since: Some(l.problem_since),
                lost_intervals: Some(l.lost.iter().map(|(from, to)| LostInterval { from: *from, to: *to }).collect()),
            },
        })
        .collect();
    Ok(Json(StreamHealthList { streams, coverage_24h }))
}

/// `PUT /v1/msp`: only the fields present change; `null` clears an optional one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MspSettings {
    /// The MSP's own Entra tenant id (GUID), or null for the deployment's.
    #[serde(default, deserialize_with = "vigil::services::present")]
    #[schema(value_type = Option<String>)]
    publisher_identifier: Option<Option<TenantId>>,
    /// How far back a new tenant's first poll looks, in hours (1 to 168).
    #[serde(default)]
    first_lookback_hours: Option<u32>,
    /// Alerts whose newest hit is older than this many hours get no ticket; null: no limit.
    #[serde(default, deserialize_with = "vigil::services::present")]
    #[schema(value_type = Option<u32>)]
    backfill_ticket_max_age_hours: Option<Option<u32>>,
    /// How often the partner tenant's admin relationships are read, in hours (1 to 168;
    /// default 24).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 168)]
    partner_read_every_hours: Option<u32>,
    /// How often each customer tenant's licences are read, in hours (1 to 168; default 24).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 168)]
    licence_read_every_hours: Option<u32>,
    /// A subscription whose next lifecycle date (expiry or renewal) is within this many days
    /// raises the licence policy "lifecycle date near" (1 to 365; default 30).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    licence_lifecycle_days: Option<u32>,
}

/// The caller's MSP and its settings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MspView {
    msp_id: vigil::ids::MspId,
    name: String,
    publisher_identifier: Option<TenantId>,
    first_lookback_hours: u32,
    backfill_ticket_max_age_hours: Option<u32>,
    /// The MSP's own partner tenant, whose GDAP relationships Vigil reads every
    /// `partner_read_every_hours`; `null`: not connected.
    partner_tenant_id: Option<TenantId>,
    /// How often the partner tenant is read, in hours.
    partner_read_every_hours: u32,
    /// How often each customer tenant's licences are read, in hours.
    licence_read_every_hours: u32,
    /// How many days ahead a subscription's next lifecycle date raises an alert.
    licence_lifecycle_days: u32,
    created_at: DateTime<Utc>,
}

fn msp_view(msp: &vigil::tenant::Msp) -> MspView {
    MspView {
        msp_id: msp.id.clone(),
        name: msp.name.clone(),
        publisher_identifier: msp.publisher_identifier.clone(),
        first_lookback_hours: msp.first_lookback_hours,
        backfill_ticket_max_age_hours: msp.backfill_ticket_max_age_hours,
        partner_tenant_id: msp.partner_tenant_id.clone(),
        partner_read_every_hours: msp.partner_read_every_hours,
        licence_read_every_hours: msp.licence_read_every_hours,
        licence_lifecycle_days: msp.licence_lifecycle_days,
        created_at: msp.created_at,
    }
}

/// `PUT /v1/msp/partner-tenant`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartnerTenantBody {
    /// The MSP's own Entra tenant (its Partner Center tenant).
    tenant_id: TenantId,
    /// An app registered there with `DelegatedAdminRelationship.Read.All` (application), admin
    /// consented.
    client_id: String,
    client_secret: SecretString,
}

/// Connects the MSP's own partner tenant, whose GDAP relationships with customers Vigil reads
/// daily for the admin-relationship report (credentials write-only).
#[utoipa::path(put, path = "/v1/msp/partner-tenant", tag = "msp", request_body = PartnerTenantBody, responses((status = 200, body = MspView)))]
pub(crate) async fn connect_partner_tenant(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<PartnerTenantBody>,
) -> Result<Json<MspView>, Problem> {
    let credentials = M365AppCredentials::new(body.client_id, body.client_secret);
    Ok(Json(msp_view(&state.admin.connect_partner_tenant(&access, body.tenant_id, credentials).await?)))
}

/// The caller's MSP and its settings.
#[utoipa::path(get, path = "/v1/msp", tag = "msp", responses((status = 200, body = MspView)))]
pub(crate) async fn get_msp(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<MspView>, Problem> {
    Ok(Json(msp_view(&state.admin.msp(&access).await?)))
}

/// Changes the MSP's settings; fields left out keep their value.
#[utoipa::path(put, path = "/v1/msp", tag = "msp", request_body = MspSettings, responses((status = 200, body = MspView)))]
pub(crate) async fn set_msp(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<MspSettings>,
) -> Result<Json<MspView>, Problem> {
    let change = MspSettingsChange {
        publisher_identifier: body.publisher_identifier,
        first_lookback_hours: body.first_lookback_hours,
        backfill_ticket_max_age_hours: body.backfill_ticket_max_age_hours,
        partner_read_every_hours: body.partner_read_every_hours,
        licence_read_every_hours: body.licence_read_every_hours,
        licence_lifecycle_days: body.licence_lifecycle_days,
    };
    Ok(Json(msp_view(&state.admin.update_msp_settings(&access, change).await?)))
}
