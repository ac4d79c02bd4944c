//! Admin consent for a multi-tenant app (`shared/reference/microsoft-apis.md` §1.7):
//! `GET {base}/login/{tenant|common|organizations}/adminconsent?client_id&redirect_uri&state`.
//! The app must be registered here (`POST /_sim/apps`, its client id, secret, redirect URIs and
//! the application permissions it asks for) and `redirect_uri` must be one of its own, as
//! Entra checks (AADSTS700016 unknown app, AADSTS50011 redirect mismatch: an error page, no
//! redirect). The administrator who signs in is the path's tenant, or for `common` /
//! `organizations` the one set by `POST /_sim/consent-admin`. Their decision — grant every
//! permission the app asks for (the default), a subset, or decline — is set per tenant by
//! `POST /_sim/tenants/{tenant}/consent-decision`. Granting makes the app's service principal in
//! the tenant with those app roles (tokens then carry exactly them; a tenant that never
//! consented gets AADSTS700016 at the token endpoint) and redirects to
//! `{redirect_uri}?tenant=…&state=…&admin_consent=True`; declining redirects with
//! `error=access_denied`-style `error=permission_denied&error_description=…&state=…`.
//! Revoking is the existing `POST /_sim/tenants/{tenant}/consent {"granted": false}`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::faults::Op;
use super::routes::Shared;
use super::state::{Inner, tenant_key};
use super::wire::{Params, aad_error, json_response};

/// Every application permission Vigil's app asks for (the default of a registered app).
pub const ALL_PERMISSIONS: [&str; 6] =
    ["ActivityFeed.Read", "SecurityAlert.Read.All", "AuditLog.Read.All", "Directory.Read.All", "Organization.Read.All", "User.Read.All"];

/// A registered multi-tenant app.
pub(super) struct App {
    client_secret: String,
    redirect_uris: Vec<String>,
    permissions: Vec<String>,
}

/// What a tenant's administrator does on the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentDecision {
    /// Accepts these permissions of the app's (`None`: all it asks for).
    Grant(Option<Vec<String>>),
    /// Declines.
    Decline,
}

/// Apps, decisions and the signed-in administrator.
#[derive(Default)]
pub(super) struct ConsentState {
    /// By lower-cased client id.
    apps: HashMap<String, App>,
    /// By lower-cased tenant id.
    decisions: HashMap<String, ConsentDecision>,
    /// The administrator's tenant on `common` / `organizations` links.
    admin_tenant: Option<String>,
    /// Consents completed (granted or declined).
    pub(super) completed: u64,
}

impl Inner {
    pub(super) fn register_app(&self, client_id: &str, client_secret: &str, redirect_uris: Vec<String>, permissions: Option<Vec<String>>) {
        let permissions = permissions.unwrap_or_else(|| ALL_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect());
        self.lock()
            .consent
            .apps
            .insert(client_id.to_ascii_lowercase(), App { client_secret: client_secret.to_owned(), redirect_uris, permissions });
    }

    pub(super) fn set_consent_decision(&self, tenant_id: &str, decision: ConsentDecision) {
        self.lock().consent.decisions.insert(tenant_key(tenant_id), decision);
    }

    pub(super) fn set_consent_admin(&self, tenant_id: &str) {
        self.lock().consent.admin_tenant = Some(tenant_key(tenant_id));
    }

    fn handle_admin_consent(&self, path_tenant: &str, uri: &Uri) -> Response {
        let params = Params::parse(uri.query().unwrap_or_default().as_bytes());
        let mut guard = self.lock();
        let st = &mut *guard;
        self.log(&Method::GET, uri, Op::Token);
        let Some(client_id) = params.get("client_id").filter(|c| !c.is_empty()) else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        };
        let Some(app) = st.consent.apps.get(&client_id.to_ascii_lowercase()) else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700_016,
                &format!("Application with identifier '{client_id}' was not found in the directory."),
            );
        };
        let redirect_uri = params.get("redirect_uri").unwrap_or_default();
        if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50_011,
                &format!(
                    "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
                ),
            );
        }
        let path_key = tenant_key(path_tenant);
        let tenant = if path_key == "common" || path_key == "organizations" {
            match st.consent.admin_tenant.clone() {
                Some(tenant) => tenant,
                None => {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        50_058,
                        "No administrator is signed in (set one with POST /_sim/consent-admin).",
                    );
                }
            }
        } else {
            path_key
        };
        let state = params.get("state").map(str::to_owned);
        let decision = st.consent.decisions.get(&tenant).cloned().unwrap_or(ConsentDecision::Grant(None));
        st.consent.completed += 1;
        let mut target = match url::Url::parse(redirect_uri) {
            Ok(url) => url,
            Err(_) => return aad_error(StatusCode::BAD_REQUEST, "invalid_request", 50_011, "The redirect URI is not a URL."),
        };
        let mut pairs = Vec::new();
        match decision {
            ConsentDecision::Decline => {
                pairs.push(("error", "permission_denied".to_owned()));
                pairs.push(("error_description", "AADSTS65004: User declined to consent to access the app.".to_owned()));
            }
            ConsentDecision::Grant(subset) => {
                let granted: Vec<String> =
                    app.permissions.iter().filter(|p| subset.as_ref().is_none_or(|s| s.contains(p))).cloned().collect();
                let secret = app.client_secret.clone();
                apply_grants(st, &tenant, client_id, &secret, &granted);
                pairs.push(("tenant", tenant.clone()));
                pairs.push(("admin_consent", "True".to_owned()));
            }
        }
        {
            let mut query = target.query_pairs_mut();
            for (name, value) in &pairs {
                query.append_pair(name, value);
            }
            if let Some(state) = &state {
                query.append_pair("state", state);
            }
        }
        (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
    }
}

/// The app `client_id` (secret `secret`) holds exactly the app roles `granted` in `tenant`:
/// its client-credentials tokens there carry them from now on. Written by an admin consent
/// and by a direct `appRoleAssignedTo` grant (`delegated.rs`) alike.
pub(super) fn apply_grants(st: &mut super::state::SimState, tenant: &str, client_id: &str, secret: &str, granted: &[String]) {
    let has = |p: &str| granted.iter().any(|g| g == p);
    let entry = st.tenants.entry(tenant.to_owned()).or_insert_with(|| super::state::Tenant {
        client_id: String::new(),
        client_secret: String::new(),
        consented: true,
        activity_feed_role: true,
        subscriptions: std::collections::BTreeMap::new(),
    });
    entry.client_id = client_id.to_owned();
    entry.client_secret = secret.to_owned();
    entry.consented = true;
    entry.activity_feed_role = has("ActivityFeed.Read");
    st.graph.set_role(tenant, has("SecurityAlert.Read.All"));
    st.sign_ins.set_role(tenant, has("AuditLog.Read.All") && has("Directory.Read.All"));
    st.licences.set_role(tenant, has("Organization.Read.All"));
    st.users.set_role(tenant, has("User.Read.All"));
}

/// The secret of the registered app `client_id`, if it is registered.
pub(super) fn app_secret(st: &super::state::SimState, client_id: &str) -> Option<String> {
    st.consent.apps.get(&client_id.to_ascii_lowercase()).map(|app| app.client_secret.clone())
}

pub(super) async fn admin_consent(State(sim): State<Shared>, Path(tenant): Path<String>, uri: Uri) -> Response {
    sim.delay().await;
    sim.handle_admin_consent(&tenant, &uri)
}

#[derive(Deserialize)]
pub(super) struct CtlApp {
    client_id: String,
    client_secret: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

pub(super) async fn ctl_register_app(State(sim): State<Shared>, Json(req): Json<CtlApp>) -> Response {
    sim.register_app(&req.client_id, &req.client_secret, req.redirect_uris, req.permissions);
    json_response(StatusCode::CREATED, &json!({ "client_id": req.client_id }))
}

#[derive(Deserialize)]
pub(super) struct CtlDecision {
    #[serde(default)]
    grant: Option<Vec<String>>,
    #[serde(default)]
    decline: bool,
}

pub(super) async fn ctl_consent_decision(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlDecision>) -> Response {
    let decision = if req.decline { ConsentDecision::Decline } else { ConsentDecision::Grant(req.grant) };
    sim.set_consent_decision(&tenant, decision);
    json_response(StatusCode::OK, &json!({ "tenant": tenant }))
}

#[derive(Deserialize)]
pub(super) struct CtlAdmin {
    tenant_id: String,
}

pub(super) async fn ctl_consent_admin(State(sim): State<Shared>, Json(req): Json<CtlAdmin>) -> Response {
    sim.set_consent_admin(&req.tenant_id);
    json_response(StatusCode::OK, &json!({ "tenant_id": req.tenant_id }))
}
