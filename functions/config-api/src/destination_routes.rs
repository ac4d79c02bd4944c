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
        .route("/v1/destinations/{destination_id}/companies", get(lookup::<CompanyQuery>))
        .route("/v1/destinations/{destination_id}/places", get(lookup::<PlacesQuery>))
        .route("/v1/destinations/{destination_id}/priorities", get(lookup::<PrioritiesQuery>))
        .route("/v1/destinations/{destination_id}/statuses", get(lookup::<StatusQuery>))
        .route("/v1/destinations/{destination_id}/contacts", get(lookup::<ContactQuery>))
        .route("/v1/tenants/{tenant_id}/destinations/{destination_id}/company", put(link_company))
}

fn destination_id(raw: &str) -> Result<DestinationId, Problem> {
    DestinationId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// A destination as the API shows it: everything but the credentials.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct DestinationList {
    pub destinations: Vec<DestinationView>,
}

/// What a lookup found in the PSA.
#[derive(Debug, Serialize)]
pub struct LookupList {
    pub items: Vec<LookupItem>,
}

/// `PUT /v1/tenants/{tenant_id}/destinations/{destination_id}/company`: the company's id in
/// the PSA, or `null` to unlink. The field is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyLinkBody {
    #[serde(deserialize_with = "nullable")]
    pub company: Option<String>,
}

/// A required field that may be `null`.
fn nullable<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(deserializer)
}

async fn list_destinations(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<DestinationList>, Problem> {
    let destinations = state.destinations.list(&access).await?.into_iter().map(DestinationView::from).collect();
    Ok(Json(DestinationList { destinations }))
}

async fn get_destination(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<DestinationView>, Problem> {
    Ok(Json(state.destinations.get(&access, &destination_id(&raw)?).await?.into()))
}

async fn put_destination(
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

async fn delete_destination(State(state): State<AppState>, Caller(access): Caller, Path(raw): Path<String>) -> Result<StatusCode, Problem> {
    state.destinations.delete(&access, &destination_id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_destination(
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompanyQuery {
    search: Option<String>,
}

impl LookupQuery for CompanyQuery {
    fn lookup(self) -> Lookup {
        Lookup::Companies { search: self.search.filter(|s| !s.trim().is_empty()) }
    }
}

/// `?place=` of `statuses`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    place: Option<String>,
}

impl LookupQuery for StatusQuery {
    fn lookup(self) -> Lookup {
        Lookup::Statuses { place: self.place }
    }
}

/// `?company=&email=` of `contacts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactQuery {
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
struct PlacesQuery {}

impl LookupQuery for PlacesQuery {
    fn lookup(self) -> Lookup {
        Lookup::Places
    }
}

/// `priorities`: no query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrioritiesQuery {}

impl LookupQuery for PrioritiesQuery {
    fn lookup(self) -> Lookup {
        Lookup::Priorities
    }
}

/// One lookup route: its query string (400 when malformed or unknown), then the PSA.
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

async fn link_company(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((tenant, destination)): Path<(String, String)>,
    ApiJson(body): ApiJson<CompanyLinkBody>,
) -> Result<Json<TenantView>, Problem> {
    let (tenant, destination) = (tenant_id(&tenant)?, destination_id(&destination)?);
    Ok(Json(state.destinations.link_company(&access, &tenant, &destination, body.company).await?.into()))
}
