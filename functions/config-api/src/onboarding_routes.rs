//! Onboarding routes: the MSP app (write-only credentials), consent links, Microsoft's consent
//! redirect (`GET /v1/consent/{msp_id}`: unauthenticated — Microsoft's redirect carries no
//! token, so its signed single-use `state` is the authentication, checked on the raw query),
//! the access test of a tenant (run again any time, its last result readable), discovery from
//! the partner tenant and bulk onboarding. Parse, call
//! [`vigil::services::onboarding::OnboardingService`], map the result.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use crate::routes::tenant_id;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use vigil::ids::{MspId, TenantId};
use vigil::onboarding::state::StateError;
use vigil::onboarding::{AccessTest, BulkJob, ConsentLink, DiscoveredCustomer, MspApp};
use vigil::secret::SecretString;
use vigil::services::onboarding::ConsentError;
use vigil::tenant::M365AppCredentials;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/onboarding/app", put(register_app).get(get_app))
        .route("/v1/onboarding/consent-links", post(issue_link).get(list_links))
        .route("/v1/consent/{msp_id}", get(consent_redirect))
        .route("/v1/tenants/{tenant_id}/access-test", post(run_access_test).get(last_access_test))
        .route("/v1/onboarding/discovery", get(discovery))
        .route("/v1/onboarding/bulk", post(bulk_onboard))
        .route("/v1/onboarding/bulk/{job_id}", get(bulk_job))
        .route("/v1/msp/delegated-credential", put(store_delegated_credential).delete(forget_delegated_credential))
}

/// `PUT /v1/onboarding/app`: the MSP's multi-tenant Entra app.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterApp {
    /// The app's (client) id.
    client_id: String,
    /// A client secret value of the app (write-only; never returned).
    client_secret: SecretString,
}

/// Registers (or replaces) the MSP's multi-tenant Entra app. Its secret is kept only in the
/// secret store — one secret for every tenant that consents. The answer names the redirect URI
/// to register on the app in Entra.
#[utoipa::path(put, path = "/v1/onboarding/app", tag = "onboarding", request_body = RegisterApp,
    responses((status = 200, body = MspApp), (status = 409, description = "The API's address is not configured", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn register_app(
    State(state): State<AppState>,
    Caller(access): Caller,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<RegisterApp>,
) -> Result<Json<MspApp>, Problem> {
    let host = headers.get(axum::http::header::HOST).and_then(|value| value.to_str().ok());
    Ok(Json(state.onboarding.register_app(&access, M365AppCredentials::new(body.client_id, body.client_secret), host).await?))
}

/// The MSP app's public part (its client id and redirect URI).
#[utoipa::path(get, path = "/v1/onboarding/app", tag = "onboarding", responses((status = 200, body = MspApp)))]
pub(crate) async fn get_app(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<MspApp>, Problem> {
    Ok(Json(state.onboarding.app(&access).await?))
}

/// `POST /v1/onboarding/consent-links`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConsentLink {
    /// What the tenant will be called once it consents.
    customer_name: String,
    /// The tenant the link is for, when known: a consent from another tenant is refused.
    #[serde(default)]
    tenant_id: Option<TenantId>,
    /// How long the link stays valid, in hours (1 to 720; default 72).
    #[serde(default)]
    hours: Option<u32>,
}

/// Issues a consent link for a customer's administrator: signed, single-use, expiring.
#[utoipa::path(post, path = "/v1/onboarding/consent-links", tag = "onboarding", request_body = NewConsentLink,
    responses((status = 201, body = ConsentLink), (status = 409, description = "The MSP app is not registered yet", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn issue_link(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<NewConsentLink>,
) -> Result<Response, Problem> {
    let link = state.onboarding.issue_link(&access, &body.customer_name, body.tenant_id, body.hours, None).await?;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}

/// The MSP's consent links.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConsentLinkList {
    links: Vec<ConsentLink>,
}

/// Every consent link kept (until 30 days after it expired) and what became of it: issued,
/// consented, declined (with Microsoft's error), refused or unconfirmed.
#[utoipa::path(get, path = "/v1/onboarding/consent-links", tag = "onboarding", responses((status = 200, body = ConsentLinkList)))]
pub(crate) async fn list_links(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<ConsentLinkList>, Problem> {
    Ok(Json(ConsentLinkList { links: state.onboarding.links(&access).await? }))
}

/// What Microsoft's consent redirect did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConsentOutcome {
    /// The link, with its new status.
    link: ConsentLink,
    /// The access test run on the consented tenant (absent when the consent was declined).
    access_test: Option<AccessTest>,
    /// Poll jobs queued for the tenant's first poll.
    poll_jobs: usize,
}

fn consent_problem(error: ConsentError) -> Problem {
    match error {
        ConsentError::BadRedirect(detail) => Problem::bad_request(detail),
        ConsentError::State(StateError::Expired) => Problem::new(StatusCode::GONE, "Consent link expired", StateError::Expired.to_string()),
        ConsentError::State(error) => Problem::new(StatusCode::FORBIDDEN, "Consent refused", error.to_string()),
        ConsentError::Replayed => Problem::new(StatusCode::CONFLICT, "Consent link used", ConsentError::Replayed.to_string()),
        ConsentError::TenantMismatch(detail) => Problem::new(StatusCode::FORBIDDEN, "Consent refused", detail),
        ConsentError::Admin(error) => error.into(),
    }
}

/// Where Microsoft sends the customer's administrator after admin consent (the app's redirect
/// URI). No bearer token: the signed, expiring, single-use `state` names the MSP. A success
/// (`tenant`, `admin_consent=True`) is checked against the link's tenant and Microsoft's token,
/// then the tenant is watched, tested and polled; a failure (`error`, `error_description`) is
/// recorded on the link.
#[utoipa::path(get, path = "/v1/consent/{msp_id}", tag = "onboarding", security(()),
    params(("msp_id" = String, Path, description = "The MSP whose app the redirect URI belongs to"),
        ("state" = String, Query, description = "The link's signed state, as Microsoft returns it"),
        ("tenant" = Option<String>, Query, description = "The tenant that consented"),
        ("admin_consent" = Option<String>, Query, description = "`True` when consent was granted"),
        ("error" = Option<String>, Query, description = "Microsoft's error when consent failed"),
        ("error_description" = Option<String>, Query, description = "Microsoft's description of the error")),
    responses((status = 200, body = ConsentOutcome),
        (status = 400, description = "No state, or neither a consent nor an error", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A forged state, another MSP's, or a tenant other than the link's or the token's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The link was used already", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The link expired", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A backend is unavailable; retry", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn consent_redirect(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<ConsentOutcome>, Problem> {
    // An unknown or malformed MSP id is a state that cannot be for it: the same answer as forged.
    let msp_id = MspId::parse(&raw).map_err(|_| consent_problem(ConsentError::State(StateError::Forged)))?;
    let result = state.onboarding.complete_consent(&msp_id, query.as_deref().unwrap_or_default()).await.map_err(consent_problem)?;
    Ok(Json(ConsentOutcome { link: result.link, access_test: result.access_test, poll_jobs: result.poll_jobs }))
}

/// Runs the tenant's access test now: a token, the Management Activity subscription start,
/// Graph alerts, licences and sign-ins, each with Microsoft's error and the fix when it fails.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/access-test", tag = "onboarding",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 200, body = AccessTest),
        (status = 409, description = "The tenant uses its own app credentials (send it a consent link), or is offboarded", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn run_access_test(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<AccessTest>, Problem> {
    Ok(Json(state.onboarding.run_access_test(&access, &tenant_id(&raw)?).await?))
}

/// The tenant's last access test.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/access-test", tag = "onboarding",
    params(("tenant_id" = String, Path, description = "The tenant's Entra id (GUID)")),
    responses((status = 200, body = AccessTest)))]
pub(crate) async fn last_access_test(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<AccessTest>, Problem> {
    Ok(Json(state.onboarding.last_access_test(&access, &tenant_id(&raw)?).await?))
}

/// The partner tenant's customers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Discovery {
    customers: Vec<DiscoveredCustomer>,
}

/// The customers of the partner tenant's GDAP relationships as last read, with each
/// relationship's status and roles, and whether Vigil already watches them.
#[utoipa::path(get, path = "/v1/onboarding/discovery", tag = "onboarding", responses((status = 200, body = Discovery)))]
pub(crate) async fn discovery(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<Discovery>, Problem> {
    Ok(Json(Discovery { customers: state.onboarding.discover(&access).await? }))
}

/// `POST /v1/onboarding/bulk`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkOnboarding {
    /// Discovered customers to onboard (1 to 50).
    tenant_ids: Vec<TenantId>,
    /// How long their links stay valid, in hours (1 to 720; default 72).
    #[serde(default)]
    hours: Option<u32>,
}

/// Onboards several discovered customers at once: each one whose GDAP roles allow it is
/// onboarded directly when the MSP has stored a delegated credential (its app roles granted by
/// the technician), the others get a consent link bound to their tenant. The answer shows per
/// customer the path taken, each direct step's result and Microsoft's error text.
#[utoipa::path(post, path = "/v1/onboarding/bulk", tag = "onboarding", request_body = BulkOnboarding,
    responses((status = 201, body = BulkJob), (status = 409, description = "The MSP app is not registered yet", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn bulk_onboard(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<BulkOnboarding>,
) -> Result<Response, Problem> {
    let job = state.onboarding.bulk_onboard(&access, &body.tenant_ids, body.hours).await?;
    Ok((StatusCode::CREATED, Json(job)).into_response())
}

/// A bulk onboarding's progress per customer: the path taken, each direct step, its link's
/// state and its last access test; customers not handled yet are listed in `remaining`.
#[utoipa::path(get, path = "/v1/onboarding/bulk/{job_id}", tag = "onboarding",
    params(("job_id" = String, Path, description = "The bulk onboarding's id")),
    responses((status = 200, body = BulkJob)))]
pub(crate) async fn bulk_job(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(job_id): Path<String>,
) -> Result<Json<BulkJob>, Problem> {
    Ok(Json(state.onboarding.bulk(&access, &job_id).await?))
}

/// `PUT /v1/msp/delegated-credential`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelegatedCredential {
    /// A refresh token of the MSP app for a partner-tenant technician who holds GDAP roles
    /// (device-code or auth-code sign-in; see the README). Write-only: never returned.
    refresh_token: SecretString,
}

/// Stores (or replaces) the MSP's delegated credential, with which bulk onboarding grants the
/// MSP app its roles in customers whose GDAP relationship allows it. Owner only; write-only.
#[utoipa::path(put, path = "/v1/msp/delegated-credential", tag = "onboarding", request_body = DelegatedCredential,
    responses((status = 204, description = "Stored"), (status = 409, description = "The MSP app is not registered yet", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn store_delegated_credential(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<DelegatedCredential>,
) -> Result<StatusCode, Problem> {
    state.onboarding.store_delegated_credential(&access, body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets the MSP's delegated credential (revoke the technician's sessions in Entra too).
/// Owner only.
#[utoipa::path(delete, path = "/v1/msp/delegated-credential", tag = "onboarding", responses((status = 204, description = "Forgotten")))]
pub(crate) async fn forget_delegated_credential(State(state): State<AppState>, Caller(access): Caller) -> Result<StatusCode, Problem> {
    state.onboarding.forget_delegated_credential(&access).await?;
    Ok(StatusCode::NO_CONTENT)
}
