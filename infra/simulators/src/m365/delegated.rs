//! A partner technician's delegated access to customer tenants (the "secure application model"
//! MSP tools use), checked against the partner side's GDAP relationships (`partner.rs`):
//!
//! * `POST /_sim/delegated/refresh-tokens {"partner_tenant_id", "user", "client_id"}` stands
//!   for the technician's interactive sign-in (device code or auth code) to the MSP's app: it
//!   answers `201 {"refresh_token"}`.
//! * `POST {base}/login/{tenant}/oauth2/v2.0/token` with `grant_type=refresh_token`: the app's
//!   `client_id`/`client_secret` must be a registered app's (AADSTS700016 / AADSTS7000215), the
//!   refresh token one issued to that app (AADSTS9002313 unknown, AADSTS70000 another app's,
//!   AADSTS50173 revoked, AADSTS700082 expired), the scope Graph's `.default` (AADSTS70011).
//!   For a customer tenant the technician's partner must have an active (or expiring)
//!   relationship with an active access assignment, else `400 invalid_grant` AADSTS50020 —
//!   the user account does not exist in the tenant (entra-docs `reference-error-codes.md`).
//!   The answer carries a delegated Graph token of the customer tenant (its `wids` the GDAP
//!   roles) and a **new** refresh token; the redeemed one stays valid until its own expiry
//!   (90 days), as Microsoft's do, so a client that failed to store the new one can retry.
//! * Graph with a delegated token (`401 InvalidAuthenticationToken` for any other):
//!   `GET /v1.0/servicePrincipals?$filter=appId eq '…'`, `GET /v1.0/servicePrincipals/{id}`,
//!   `POST /v1.0/servicePrincipals {"appId"}` (a registered app or a first-party resource; needs
//!   Application / Cloud Application / Privileged Role / Global Administrator, else `403
//!   Authorization_RequestDenied`; `409 Request_MultipleObjectsWithSameKeyValue` when it
//!   exists), `GET /v1.0/servicePrincipals/{id}/appRoleAssignments`, and `POST
//!   /v1.0/servicePrincipals/{resource}/appRoleAssignedTo {principalId, resourceId, appRoleId}`
//!   — Privileged Role Administrator or Global Administrator only (else `403
//!   Authorization_RequestDenied`), `409` for a grant that exists. A grant to a registered
//!   app's principal is recorded in the same per-tenant consent state an admin consent writes:
//!   that app's client-credentials tokens in the tenant then carry exactly the roles granted.
//!   Every tenant has Microsoft Graph's and the Office 365 Management APIs' principals with
//!   their app roles (ids as Microsoft publishes them for Graph).
//! * Failures on demand: [`super::M365Operation::Token`] for the redemption,
//!   [`super::M365Operation::Directory`] for the Graph calls above.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::MANAGEMENT_APP_ID;
use super::TOKEN_LIFETIME_SECS;
use super::faults::Op;
use super::routes::Shared;
use super::state::{Inner, SimState, tenant_key};
use super::wire::{Params, aad_error, bearer_token, json_response, new_guid, no_store, random_bytes};
use crate::graph::graph_error;

/// Microsoft Graph's app id.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// How long a refresh token lives (Microsoft: 90 days, sliding).
const REFRESH_TOKEN_DAYS: i64 = 90;
/// Entra role template ids.
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const CLOUD_APPLICATION_ADMINISTRATOR: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";

/// A first-party resource: app id, display name, app roles (id, value).
type Resource = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The app roles of the first-party resources.
const RESOURCES: [Resource; 2] = [
    (
        GRAPH_APP_ID,
        "Microsoft Graph",
        &[
            ("472e4a4d-bb4a-4026-98d1-0b0d74cb74a5", "SecurityAlert.Read.All"),
            ("b0afded3-3588-46d8-8b3d-9842eff778da", "AuditLog.Read.All"),
            ("7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All"),
            ("498476ce-e0fe-48b0-b801-37ba7e2685c6", "Organization.Read.All"),
            ("df021288-bdef-4463-88db-98f22de89214", "User.Read.All"),
            ("cc117bb9-00cf-4eb8-b580-ea2a878fe8f7", "User-PasswordProfile.ReadWrite.All"),
        ],
    ),
    (
        MANAGEMENT_APP_ID,
        "Office 365 Management APIs",
        &[
            ("594c1fb6-4f81-4475-ae41-0c394909246c", "ActivityFeed.Read"),
            ("4807a72c-ad38-4250-94c9-4eabfe26cd55", "ActivityFeed.ReadDlp"),
            ("e2cea78f-e743-4d8f-a16a-75b629a038ae", "ServiceHealth.Read"),
        ],
    ),
];

struct RefreshToken {
    partner: String,
    user: String,
    client_id: String,
    expires: DateTime<Utc>,
    revoked: bool,
}

struct DelegatedToken {
    tenant: String,
    roles: Vec<String>,
    expires: DateTime<Utc>,
}

struct Principal {
    id: String,
    app_id: String,
    display_name: String,
    app_roles: Vec<(String, String)>,
}

struct Assignment {
    id: String,
    principal_id: String,
    resource_id: String,
    app_role_id: String,
}

/// Refresh tokens, delegated tokens and each customer tenant's principals and grants.
#[derive(Default)]
pub(super) struct DelegatedState {
    refresh_tokens: HashMap<String, RefreshToken>,
    tokens: HashMap<String, DelegatedToken>,
    /// By lower-cased tenant id; the first-party resources are added on first use.
    principals: HashMap<String, Vec<Principal>>,
    assignments: HashMap<String, Vec<Assignment>>,
    /// Refresh-token redemptions answered with a token.
    pub(super) redemptions: u64,
}

impl DelegatedState {
    fn principals_of(&mut self, tenant: &str) -> &mut Vec<Principal> {
        self.principals.entry(tenant.to_owned()).or_insert_with(|| {
            RESOURCES
                .iter()
                .map(|(app_id, name, roles)| Principal {
                    id: new_guid(),
                    app_id: (*app_id).to_owned(),
                    display_name: (*name).to_owned(),
                    app_roles: roles.iter().map(|(id, value)| ((*id).to_owned(), (*value).to_owned())).collect(),
                })
                .collect()
        })
    }

    /// The app role values granted to `app_id`'s principal in `tenant`.
    pub(super) fn granted(&mut self, tenant: &str, app_id: &str) -> Vec<String> {
        let tenant = tenant_key(tenant);
        let principals = self.principals_of(&tenant);
        let Some(principal) = principals.iter().find(|p| p.app_id.eq_ignore_ascii_case(app_id)).map(|p| p.id.clone()) else {
            return Vec::new();
        };
        let roles: Vec<(String, String, String)> =
            principals.iter().flat_map(|p| p.app_roles.iter().map(|(id, value)| (p.id.clone(), id.clone(), value.clone()))).collect();
        let mut granted: Vec<String> = self
            .assignments
            .get(&tenant)
            .into_iter()
            .flatten()
            .filter(|a| a.principal_id == principal)
            .filter_map(|a| roles.iter().find(|(r, id, _)| *r == a.resource_id && *id == a.app_role_id).map(|(_, _, v)| v.clone()))
            .collect();
        granted.sort();
        granted
    }

    /// Revokes every refresh token of `partner`'s technicians (as a sign-out everywhere does).
    pub(super) fn revoke(&mut self, partner: &str) {
        for token in self.refresh_tokens.values_mut().filter(|t| t.partner.eq_ignore_ascii_case(partner)) {
            token.revoked = true;
        }
    }

    /// Moves every refresh token's expiry `days` earlier.
    pub(super) fn age_refresh_tokens(&mut self, days: i64) {
        for token in self.refresh_tokens.values_mut() {
            token.expires -= Duration::days(days);
        }
    }

    fn issue_refresh_token(&mut self, partner: &str, user: &str, client_id: &str, now: DateTime<Utc>) -> String {
        let token = format!("0.AS-sim.{}", URL_SAFE_NO_PAD.encode(random_bytes::<48>()));
        self.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                partner: tenant_key(partner),
                user: user.to_owned(),
                client_id: client_id.to_ascii_lowercase(),
                expires: now + Duration::days(REFRESH_TOKEN_DAYS),
                revoked: false,
            },
        );
        token
    }
}

fn principal_json(p: &Principal) -> Value {
    json!({
        "id": p.id, "appId": p.app_id, "displayName": p.display_name, "servicePrincipalType": "Application",
        "accountEnabled": true,
        "appRoles": p.app_roles.iter().map(|(id, value)| json!({
            "id": id, "value": value, "displayName": value, "isEnabled": true, "allowedMemberTypes": ["Application"],
            "description": value, "origin": "Application"
        })).collect::<Vec<_>>(),
    })
}

fn assignment_json(a: &Assignment, principals: &[Principal]) -> Value {
    let name = |id: &str| principals.iter().find(|p| p.id == id).map(|p| p.display_name.clone()).unwrap_or_default();
    json!({
        "id": a.id, "principalId": a.principal_id, "principalType": "ServicePrincipal", "principalDisplayName": name(&a.principal_id),
        "resourceId": a.resource_id, "resourceDisplayName": name(&a.resource_id), "appRoleId": a.app_role_id,
        "createdDateTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

fn delegated_access_token(tenant: &str, user: &str, partner: &str, client_id: &str, roles: &[String], now: DateTime<Utc>) -> String {
    let header = json!({ "typ": "JWT", "alg": "RS256", "kid": "vigil-sim" });
    let claims = json!({
        "aud": "https://graph.microsoft.com", "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now.timestamp() - 300, "nbf": now.timestamp() - 300, "exp": now.timestamp() + TOKEN_LIFETIME_SECS,
        "appid": client_id, "idtyp": "user", "tid": tenant, "upn": user, "idp": format!("https://sts.windows.net/{partner}/"),
        "scp": "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All Directory.Read.All", "wids": roles,
        "uti": URL_SAFE_NO_PAD.encode(random_bytes::<16>()), "ver": "1.0",
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(random_bytes::<64>())
    )
}

fn holds(roles: &[String], any_of: &[&str]) -> bool {
    roles.iter().any(|r| any_of.iter().any(|w| r.eq_ignore_ascii_case(w)))
}

fn denied() -> Response {
    graph_error(StatusCode::FORBIDDEN, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

impl Inner {
    /// `grant_type=refresh_token` at the token endpoint (the caller logged the request and
    /// consumed injected token failures).
    pub(super) fn handle_refresh_grant(&self, st: &mut SimState, tenant: &str, form: &Params, headers: &HeaderMap) -> Response {
        let now = Utc::now();
        let (client_id, client_secret) = super::identity::client_credentials(form, headers);
        let Some(client_id) = client_id else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        };
        let Some(secret) = super::consent::app_secret(st, &client_id) else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700_016,
                &format!("Application with identifier '{client_id}' was not found in the directory."),
            );
        };
        if client_secret.as_deref() != Some(secret.as_str()) {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
        let scope = form.get("scope").unwrap_or_default();
        let resources: Vec<&str> = scope.split_whitespace().filter(|s| !matches!(*s, "offline_access" | "openid" | "profile")).collect();
        let graph =
            resources.len() == 1 && resources[0].strip_suffix("/.default").is_some_and(|r| crate::graph::is_graph_audience(r, self.port()));
        if !graph {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70_011,
                &format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
            );
        }
        let presented = form.get("refresh_token").unwrap_or_default();
        let Some(grant) = st.delegated.refresh_tokens.get(presented) else {
            return aad_error(StatusCode::BAD_REQUEST, "invalid_grant", 9_002_313, "Invalid request. Request is malformed or invalid.");
        };
        if grant.client_id != client_id.to_ascii_lowercase() {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                70_000,
                "The provided authorization grant or refresh token is invalid, expired or revoked: it was issued to another client.",
            );
        }
        if grant.revoked {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                50_173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
            );
        }
        if grant.expires <= now {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                700_082,
                "The refresh token has expired due to inactivity. The token was issued long ago and was inactive for 90 days.",
            );
        }
        let (partner, user) = (grant.partner.clone(), grant.user.clone());
        let customer = tenant_key(tenant);
        let roles = if customer == partner {
            Vec::new()
        } else {
            match st.partner.gdap_roles(&partner, &customer) {
                Some(roles) => roles,
                None => {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        50_020,
                        &format!(
                            "User account '{user}' from identity provider 'https://sts.windows.net/{partner}/' does not exist in tenant '{customer}' and cannot access the application '{client_id}' in that tenant. The account needs to be added as an external user in the tenant first."
                        ),
                    );
                }
            }
        };
        let access_token = delegated_access_token(&customer, &user, &partner, &client_id, &roles, now);
        st.delegated.tokens.insert(
            access_token.clone(),
            DelegatedToken { tenant: customer, roles, expires: now + Duration::seconds(TOKEN_LIFETIME_SECS) },
        );
        let refresh_token = st.delegated.issue_refresh_token(&partner, &user, &client_id, now);
        st.delegated.redemptions += 1;
        let mut response = json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer", "scope": "https://graph.microsoft.com/.default", "expires_in": TOKEN_LIFETIME_SECS,
                "ext_expires_in": TOKEN_LIFETIME_SECS, "access_token": access_token, "refresh_token": refresh_token,
            }),
        );
        no_store(&mut response);
        response
    }

    /// A Graph call of direct onboarding: logged, failures injected, the delegated bearer
    /// checked; `handle` gets the state, the caller's tenant and roles.
    fn directory_call(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        handle: impl FnOnce(&mut SimState, &str, &[String]) -> Response,
    ) -> Response {
        let mut guard = self.lock();
        let st = &mut *guard;
        self.log(method, uri, Op::Directory);
        if let Some(failure) = self.take_failure(Op::Directory) {
            return crate::graph::failure(failure);
        }
        let caller = bearer_token(headers).and_then(|t| st.delegated.tokens.get(t)).map(|t| (t.tenant.clone(), t.roles.clone(), t.expires));
        match caller {
            Some((tenant, roles, expires)) if expires > Utc::now() => handle(st, &tenant, &roles),
            _ => graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty, expired or not a delegated token of this tenant.",
            ),
        }
    }
}

/// `appId eq '…'`, the one `$filter` the simulator reads.
fn app_id_filter(uri: &Uri) -> Result<Option<String>, Box<Response>> {
    let params = Params::parse(uri.query().unwrap_or_default().as_bytes());
    let Some(filter) = params.get("$filter") else { return Ok(None) };
    let value = filter.trim().strip_prefix("appId eq '").and_then(|rest| rest.strip_suffix('\'')).map(|v| v.replace("''", "'"));
    match value {
        Some(value) => Ok(Some(value)),
        None => Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            &format!("Unsupported or invalid query filter clause specified for property of resource 'ServicePrincipal': {filter}"),
        ))),
    }
}

pub(super) async fn list_principals(State(sim): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.directory_call(&Method::GET, &uri, &headers, |st, tenant, _| {
        let filter = match app_id_filter(&uri) {
            Ok(filter) => filter,
            Err(refusal) => return *refusal,
        };
        let value: Vec<Value> = st
            .delegated
            .principals_of(tenant)
            .iter()
            .filter(|p| filter.as_deref().is_none_or(|app| p.app_id.eq_ignore_ascii_case(app)))
            .map(principal_json)
            .collect();
        json_response(
            StatusCode::OK,
            &json!({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals", "value": value }),
        )
    })
}

pub(super) async fn get_principal(State(sim): State<Shared>, Path(id): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.directory_call(&Method::GET, &uri, &headers, |st, tenant, _| match st.delegated.principals_of(tenant).iter().find(|p| p.id == id) {
        Some(p) => json_response(StatusCode::OK, &principal_json(p)),
        None => not_found(&id),
    })
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

pub(super) async fn create_principal(State(sim): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    sim.delay().await;
    sim.directory_call(&Method::POST, &uri, &headers, |st, tenant, roles| {
        let Some(app_id) =
            serde_json::from_slice::<Value>(&body).ok().and_then(|b| b.get("appId").and_then(Value::as_str).map(str::to_owned))
        else {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "A value is required for property 'appId' of resource 'ServicePrincipal'.",
            );
        };
        if !holds(roles, &[GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR, APPLICATION_ADMINISTRATOR, CLOUD_APPLICATION_ADMINISTRATOR])
        {
            return denied();
        }
        let known =
            super::consent::app_secret(st, &app_id).is_some() || RESOURCES.iter().any(|(id, _, _)| id.eq_ignore_ascii_case(&app_id));
        if !known {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("The appId '{app_id}' of the service principal does not reference a valid application object."),
            );
        }
        let principals = st.delegated.principals_of(tenant);
        if principals.iter().any(|p| p.app_id.eq_ignore_ascii_case(&app_id)) {
            return graph_error(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                "Another object with the same value for property servicePrincipalNames already exists.",
            );
        }
        let principal = Principal { id: new_guid(), app_id: app_id.clone(), display_name: format!("app {app_id}"), app_roles: Vec::new() };
        let answer = principal_json(&principal);
        principals.push(principal);
        json_response(StatusCode::CREATED, &answer)
    })
}

pub(super) async fn list_assignments(State(sim): State<Shared>, Path(id): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.directory_call(&Method::GET, &uri, &headers, |st, tenant, _| {
        if !st.delegated.principals_of(tenant).iter().any(|p| p.id == id) {
            return not_found(&id);
        }
        let principals = &st.delegated.principals[tenant];
        let value: Vec<Value> = st
            .delegated
            .assignments
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|a| a.principal_id == id)
            .map(|a| assignment_json(a, principals))
            .collect();
        json_response(StatusCode::OK, &json!({ "value": value }))
    })
}

pub(super) async fn assign_role(
    State(sim): State<Shared>,
    Path(resource): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.delay().await;
    sim.directory_call(&Method::POST, &uri, &headers, |st, tenant, roles| {
        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (principal_id, resource_id, app_role_id) = (field("principalId"), field("resourceId"), field("appRoleId"));
        if principal_id.is_empty() || app_role_id.is_empty() || resource_id != resource {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "principalId, resourceId (the path's principal) and appRoleId are required.",
            );
        }
        if !holds(roles, &[GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR]) {
            return denied();
        }
        let principals = st.delegated.principals_of(tenant);
        let Some(resource_sp) = principals.iter().find(|p| p.id == resource) else { return not_found(&resource) };
        if !resource_sp.app_roles.iter().any(|(id, _)| *id == app_role_id) {
            return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", "Permission being assigned was not found on application.");
        }
        let Some(client_app) = principals.iter().find(|p| p.id == principal_id).map(|p| p.app_id.clone()) else {
            return not_found(&principal_id);
        };
        let exists = st
            .delegated
            .assignments
            .get(tenant)
            .into_iter()
            .flatten()
            .any(|a| a.principal_id == principal_id && a.resource_id == resource && a.app_role_id == app_role_id);
        if exists {
            return graph_error(StatusCode::CONFLICT, "Request_BadRequest", "Permission being assigned already exists on the object.");
        }
        let assignment = Assignment { id: URL_SAFE_NO_PAD.encode(random_bytes::<24>()), principal_id, resource_id, app_role_id };
        let answer = assignment_json(&assignment, &st.delegated.principals[tenant]);
        st.delegated.assignments.entry(tenant.to_owned()).or_default().push(assignment);
        if let Some(secret) = super::consent::app_secret(st, &client_app) {
            let granted = st.delegated.granted(tenant, &client_app);
            super::consent::apply_grants(st, tenant, &client_app, &secret, &granted);
        }
        json_response(StatusCode::CREATED, &answer)
    })
}

#[derive(Deserialize)]
pub(super) struct CtlRefreshToken {
    partner_tenant_id: String,
    user: String,
    client_id: String,
}

/// The technician's interactive sign-in: a first refresh token for the app.
pub(super) async fn ctl_issue_refresh_token(State(sim): State<Shared>, Json(req): Json<CtlRefreshToken>) -> Response {
    let token = sim.lock().delegated.issue_refresh_token(&req.partner_tenant_id, &req.user, &req.client_id, Utc::now());
    json_response(StatusCode::CREATED, &json!({ "refresh_token": token }))
}

impl Inner {
    pub(super) fn issue_refresh_token(&self, partner: &str, user: &str, client_id: &str) -> String {
        self.lock().delegated.issue_refresh_token(partner, user, client_id, Utc::now())
    }
}
