//! Routes for destinations (where an MSP's alerts go), lookups in their PSA and the tenants'
//! company links: parse, call [`vigil::services::destinations::DestinationsService`], map the
//! result. Credentials are accepted by `PUT` and never returned: a destination shows only
//! `credentials_set`.
//!
//! | Route | Request | Response |
//! |---|---|---|
//! | `GET /v1/destinations` | – | [`DestinationList`] |
//! | `PUT /v1/destinations/{destination_id}` | [`DestinationRequest`] | 201 (created) or 200 [`DestinationView`] |
//! | `GET /v1/destinations/{destination_id}` | – | [`DestinationView`] |
//! | `DELETE /v1/destinations/{destination_id}` | – | 204 |
//! | `POST /v1/destinations/{destination_id}/test` | – (no body) | [`DestinationTest`] |
//! | `GET /v1/destinations/{destination_id}/companies?search=` | – | [`LookupList`] |
//! | `GET /v1/destinations/{destination_id}/places` | – | [`LookupList`] |
//! | `GET /v1/destinations/{destination_id}/priorities` | – | [`LookupList`] |
//! | `GET /v1/destinations/{destination_id}/statuses?place=` | – | [`LookupList`] |
//! | `GET /v1/destinations/{destination_id}/contacts?company=&email=` | – | [`LookupList`] |
//! | `GET /v1/destinations/{destination_id}/technicians` | – | [`LookupList`] |
//! | `GET /v1/destinations/{destination_id}/sites?company=` | – | [`LookupList`] |
//! | `PUT /v1/tenants/{tenant_id}/destinations/{destination_id}/company` | [`CompanyLinkBody`] | the tenant |
//!
//! A PSA that refuses or fails a lookup answers 502 naming its complaint; a `test` reports such
//! failures in its result instead.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use crate::rate_limits::{Admitted, DestinationTests, Lookups};
use crate::routes::{TenantView, tenant_id};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil::destination::{Destination, DestinationKind, DestinationSettings, Routing};
use vigil::ids::DestinationId;
use vigil::ports::{Lookup, LookupItem};
use vigil::services::destinations::{DestinationRequest, DestinationTest};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/destinations", get(list_destinations))
        .route("/v1/destinations/{destination_id}", get(get_destination).put(put_destination).delete(delete_destination))
        .route("/v1/destinations/{destination_id}/test", post(test_destination))
        .route("/v1/destinations/{destination_id}/companies", get(companies))
        .route("/v1/destinations/{destination_id}/places", get(places))
        .route("/v1/destinations/{destination_id}/priorities", get(priorities))
        .route("/v1/destinations/{destination_id}/statuses", get(statuses))
        .route("/v1/destinations/{destination_id}/contacts", get(contacts))
        .route("/v1/destinations/{destination_id}/technicians", get(technicians))
        .route("/v1/destinations/{destination_id}/sites", get(sites))
        .route("/v1/tenants/{tenant_id}/destinations/{destination_id}/company", put(link_company))
}

fn destination_id(raw: &str) -> Result<DestinationId, Problem> {
    DestinationId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// A destination as the API shows it: everything but the credentials.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DestinationView {
    pub id: DestinationId,
    pub name: String,
    pub kind: DestinationKind,
    pub enabled: bool,
    pub settings: DestinationSettings,
    pub routing: Routing,
    pub requests_per_hour: Option<u32>,
    /// Whether credentials are stored (they are never shown).
    pub credentials_set: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Destination> for DestinationView {
    fn from(d: Destination) -> Self {
        Self {
            kind: d.kind(),
            id: d.id,
            name: d.name,
            enabled: d.enabled,
            settings: d.settings,
            routing: d.routing,
            requests_per_hour: d.requests_per_hour,
            credentials_set: d.credentials_set,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// `GET /v1/destinations`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DestinationList {
    pub destinations: Vec<DestinationView>,
}

/// What a lookup found in the PSA.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LookupList {
    pub items: Vec<LookupItem>,
}

/// `PUT /v1/tenants/{tenant_id}/destinations/{destination_id}/company`: the company's id in
/// the PSA, or `null` to unlink. The field is required.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyLinkBody {
    /// The company's id in the destination's PSA; `null` unlinks the tenant.
    #[serde(deserialize_with = "nullable")]
    pub company: Option<String>,
}

/// A required field that may be `null`.
fn nullable<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(deserializer)
}

/// The MSP's destinations.
#[utoipa::path(get, path = "/v1/destinations", tag = "destinations", responses((status = 200, body = DestinationList)))]
pub(crate) async fn list_destinations(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<DestinationList>, Problem> {
    let destinations = state.destinations.list(&access).await?.into_iter().map(DestinationView::from).collect();
    Ok(Json(DestinationList { destinations }))
}

/// One destination (never its credentials).
#[utoipa::path(get, path = "/v1/destinations/{destination_id}", tag = "destinations", params(("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 200, body = DestinationView)))]
pub(crate) async fn get_destination(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<DestinationView>, Problem> {
    Ok(Json(state.destinations.get(&access, &destination_id(&raw)?).await?.into()))
}

/// Creates or replaces a destination; credentials are write-only (required on create and on a
/// change of kind).
#[utoipa::path(put, path = "/v1/destinations/{destination_id}", tag = "destinations", request_body = DestinationRequest,
    params(("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 200, description = "Replaced", body = DestinationView), (status = 201, description = "Created", body = DestinationView)))]
pub(crate) async fn put_destination(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<DestinationRequest>,
) -> Result<Response, Problem> {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok());
    let (destination, created) = state.destinations.put(&access, &destination_id(&raw)?, body, host).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(DestinationView::from(destination))).into_response())
}

/// Deletes a destination.
#[utoipa::path(delete, path = "/v1/destinations/{destination_id}", tag = "destinations", params(("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_destination(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    state.destinations.delete(&access, &destination_id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the PSA whether the destination works, creating nothing (at most 6 a minute per token).
#[utoipa::path(post, path = "/v1/destinations/{destination_id}/test", tag = "destinations", params(("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 200, body = DestinationTest)))]
pub(crate) async fn test_destination(
    State(state): State<AppState>,
    Caller(access): Caller,
    _admitted: Admitted<DestinationTests>,
    Path(raw): Path<String>,
) -> Result<Json<DestinationTest>, Problem> {
    Ok(Json(state.destinations.test(&access, &destination_id(&raw)?).await?))
}

/// The query string of one lookup route, and the lookup it asks for.
trait LookupQuery: serde::de::DeserializeOwned + Send + 'static {
    fn lookup(self) -> Lookup;
}

/// `?search=` of `companies`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CompanyQuery {
    search: Option<String>,
}

impl LookupQuery for CompanyQuery {
    fn lookup(self) -> Lookup {
        Lookup::Companies { search: self.search.filter(|s| !s.trim().is_empty()) }
    }
}

/// `?place=` of `statuses`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatusQuery {
    place: Option<String>,
}

impl LookupQuery for StatusQuery {
    fn lookup(self) -> Lookup {
        Lookup::Statuses { place: self.place }
    }
}

/// `?company=&email=` of `contacts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ContactQuery {
    company: String,
    email: Option<String>,
}

impl LookupQuery for ContactQuery {
    fn lookup(self) -> Lookup {
        Lookup::Contacts { company: self.company, email: self.email.filter(|e| !e.trim().is_empty()) }
    }
}

/// `places`: no query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlacesQuery {}

impl LookupQuery for PlacesQuery {
    fn lookup(self) -> Lookup {
        Lookup::Places
    }
}

/// `priorities`: no query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrioritiesQuery {}

impl LookupQuery for PrioritiesQuery {
    fn lookup(self) -> Lookup {
        Lookup::Priorities
    }
}

/// `technicians`: no query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TechniciansQuery {}

impl LookupQuery for TechniciansQuery {
    fn lookup(self) -> Lookup {
        Lookup::Technicians
    }
}

/// `?company=` of `sites`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SiteQuery {
    company: String,
}

impl LookupQuery for SiteQuery {
    fn lookup(self) -> Lookup {
        Lookup::Sites { company: self.company }
    }
}

/// One lookup route: its query string (400 when malformed or unknown), then the PSA.
/// Companies in the destination's PSA (at most 60 lookups a minute per token).
#[utoipa::path(get, path = "/v1/destinations/{destination_id}/companies", tag = "destinations",
    params(("destination_id" = String, Path, description = "The destination's id"), CompanyQuery),
    responses((status = 200, body = LookupList), (status = 502, description = "The PSA refused or failed", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn companies(
    state: State<AppState>,
    caller: Caller,
    admitted: Admitted<Lookups>,
    path: Path<String>,
    q: Result<Query<CompanyQuery>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    lookup(state, caller, admitted, path, q).await
}

/// Boards (ConnectWise) or queues (Autotask).
#[utoipa::path(get, path = "/v1/destinations/{destination_id}/places", tag = "destinations",
    params(("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 200, body = LookupList), (status = 502, description = "The PSA refused or failed", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn places(
    state: State<AppState>,
    caller: Caller,
    admitted: Admitted<Lookups>,
    path: Path<String>,
    q: Result<Query<PlacesQuery>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    lookup(state, caller, admitted, path, q).await
}

/// Ticket priorities.
#[utoipa::path(get, path = "/v1/destinations/{destination_id}/priorities", tag = "destinations",
    params(("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 200, body = LookupList), (status = 502, description = "The PSA refused or failed", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn priorities(
    state: State<AppState>,
    caller: Caller,
    admitted: Admitted<Lookups>,
    path: Path<String>,
    q: Result<Query<PrioritiesQuery>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    lookup(state, caller, admitted, path, q).await
}

/// Ticket statuses (of a board, for ConnectWise).
#[utoipa::path(get, path = "/v1/destinations/{destination_id}/statuses", tag = "destinations",
    params(("destination_id" = String, Path, description = "The destination's id"), StatusQuery),
    responses((status = 200, body = LookupList), (status = 502, description = "The PSA refused or failed", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn statuses(
    state: State<AppState>,
    caller: Caller,
    admitted: Admitted<Lookups>,
    path: Path<String>,
    q: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    lookup(state, caller, admitted, path, q).await
}

/// Contacts of a company (by e-mail).
#[utoipa::path(get, path = "/v1/destinations/{destination_id}/contacts", tag = "destinations",
    params(("destination_id" = String, Path, description = "The destination's id"), ContactQuery),
    responses((status = 200, body = LookupList), (status = 502, description = "The PSA refused or failed", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn contacts(
    state: State<AppState>,
    caller: Caller,
    admitted: Admitted<Lookups>,
    path: Path<String>,
    q: Result<Query<ContactQuery>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    lookup(state, caller, admitted, path, q).await
}

/// The PSA's technicians (members, resources, agents or account reps), for settings that name one.
#[utoipa::path(get, path = "/v1/destinations/{destination_id}/technicians", tag = "destinations",
    params(("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 200, body = LookupList), (status = 422, description = "This PSA has no technician lookup in Vigil", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The PSA refused or failed", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn technicians(
    state: State<AppState>,
    caller: Caller,
    admitted: Admitted<Lookups>,
    path: Path<String>,
    q: Result<Query<TechniciansQuery>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    lookup(state, caller, admitted, path, q).await
}

/// A company's sites (locations), where the PSA keeps them.
#[utoipa::path(get, path = "/v1/destinations/{destination_id}/sites", tag = "destinations",
    params(("destination_id" = String, Path, description = "The destination's id"), SiteQuery),
    responses((status = 200, body = LookupList), (status = 422, description = "This PSA has no sites in Vigil", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The PSA refused or failed", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn sites(
    state: State<AppState>,
    caller: Caller,
    admitted: Admitted<Lookups>,
    path: Path<String>,
    q: Result<Query<SiteQuery>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    lookup(state, caller, admitted, path, q).await
}

async fn lookup<Q: LookupQuery>(
    State(state): State<AppState>,
    Caller(access): Caller,
    _admitted: Admitted<Lookups>,
    Path(raw): Path<String>,
    q: Result<Query<Q>, QueryRejection>,
) -> Result<Json<LookupList>, Problem> {
    let what = q.map(|Query(q)| q.lookup()).map_err(|e| Problem::bad_request(e.body_text()))?;
    let items = state.destinations.lookup(&access, &destination_id(&raw)?, &what).await?;
    Ok(Json(LookupList { items }))
}

/// Links the tenant to its company in one destination (`null` unlinks); alerts held for the
/// link are delivered.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/destinations/{destination_id}/company", tag = "tenants", request_body = CompanyLinkBody,
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)"), ("destination_id" = String, Path, description = "The destination's id")),
    responses((status = 200, body = TenantView),
        (status = 409, description = "The tenant is offboarded and not yet purged", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn link_company(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, destination)): Path<(String, String)>,
    ApiJson(body): ApiJson<CompanyLinkBody>,
) -> Result<Json<TenantView>, Problem> {
    let (tenant, destination) = (tenant_id(&tenant)?, destination_id(&destination)?);
    Ok(Json(state.destinations.link_company(&access, &tenant, &destination, body.company).await?.into()))
}
