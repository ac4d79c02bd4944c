//! HTTP wiring of the Microsoft 365 simulator: the axum router and the async handlers for the
//! token endpoint, the Management Activity API and Microsoft Graph security alerts.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{any, get, post};
use chrono::Utc;

use crate::webhooks::PendingStart;

use super::control::{
    ctl_add_partner_relationship, ctl_add_raw_blob, ctl_add_records, ctl_add_sign_ins, ctl_add_tenant, ctl_age_partner_relationship,
    ctl_consent, ctl_disabled_after_start, ctl_fail, ctl_page_size, ctl_requests, ctl_subscriptions,
};
use super::faults::Op;
use super::identity::TokenVersion;
use super::state::Inner;
use super::wire::bearer_token;

pub(super) async fn graph_alerts(State(sim): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.handle_graph_alerts(&uri, &headers)
}

impl Inner {
    pub(super) fn graph_base(&self) -> String {
        format!("{}/graph", self.base_url)
    }

    /// `GET /graph/v1.0/security/alerts_v2`: the bearer token decides the tenant.
    pub(super) fn handle_graph_alerts(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        let mut guard = self.lock();
        let st = &mut *guard;
        self.log(&Method::GET, uri, Op::GraphAlerts);
        if let Some(failure) = self.take_failure(Op::GraphAlerts) {
            return crate::graph::failure(failure);
        }
        let caller = graph_caller(st, headers, |t| t.has_role);
        let page_size = st.page_size;
        st.graph.list_alerts(caller, self.port(), uri.query().unwrap_or_default(), &self.graph_base(), page_size, Utc::now())
    }
}

pub(super) async fn partner_relationships(State(sim): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.handle_partner(&uri, &headers, None)
}

pub(super) async fn partner_assignments(State(sim): State<Arc<Inner>>, Path(id): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.handle_partner(&uri, &headers, Some(&id))
}

/// The Graph caller of a request's bearer token, its role being the one `role` picks from the
/// token (each Graph API needs its own application permission).
fn graph_caller(
    st: &super::state::SimState,
    headers: &HeaderMap,
    role: impl Fn(&super::state::IssuedToken) -> bool,
) -> Option<crate::graph::Caller> {
    bearer_token(headers).and_then(|t| st.tokens.get(t)).map(|t| crate::graph::Caller {
        tenant: t.tenant.clone(),
        audience: t.audience.clone(),
        expires: t.expires,
        has_role: role(t),
        tenant_exists: st.tenants.contains_key(&t.tenant),
    })
}

pub(super) async fn sign_ins(State(sim): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    let mut guard = sim.lock();
    let st = &mut *guard;
    sim.log(&Method::GET, &uri, Op::SignIns);
    if let Some(failure) = sim.take_failure(Op::SignIns) {
        return crate::graph::failure(failure);
    }
    let caller = graph_caller(st, &headers, |t| t.sign_in_role);
    let base = sim.graph_base();
    st.sign_ins.list(caller, sim.port(), uri.query().unwrap_or_default(), &base, Utc::now())
}

pub(super) async fn users(State(sim): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    let mut guard = sim.lock();
    let st = &mut *guard;
    sim.log(&Method::GET, &uri, Op::Users);
    if let Some(failure) = sim.take_failure(Op::Users) {
        return crate::graph::failure(failure);
    }
    let caller = graph_caller(st, &headers, |t| t.users_role);
    let base = sim.graph_base();
    st.users.list(caller, sim.port(), &headers, uri.query().unwrap_or_default(), &base, Utc::now())
}

pub(super) async fn subscribed_skus(State(sim): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.handle_licences(&uri, &headers, super::licences::SKUS_PATH)
}

pub(super) async fn directory_subscriptions(State(sim): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.handle_licences(&uri, &headers, super::licences::SUBSCRIPTIONS_PATH)
}

impl Inner {
    /// A tenant's licence listings: the bearer token decides the tenant.
    fn handle_licences(&self, uri: &Uri, headers: &HeaderMap, path: &'static str) -> Response {
        let mut guard = self.lock();
        let st = &mut *guard;
        self.log(&Method::GET, uri, Op::Licences);
        if let Some(failure) = self.take_failure(Op::Licences) {
            return crate::graph::failure(failure);
        }
        let caller = graph_caller(st, headers, |t| t.licences_role);
        let (base, page_size) = (self.graph_base(), st.page_size);
        st.licences.list(caller, self.port(), path, uri.query().unwrap_or_default(), &base, page_size, Utc::now())
    }
}

pub(super) async fn partner_relationship(State(sim): State<Arc<Inner>>, Path(id): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.partner_call(&Method::GET, &uri, &headers, |st, caller, _, port, _| st.partner.read_one(caller, port, &id, Utc::now()))
}

pub(super) async fn partner_requests(State(sim): State<Arc<Inner>>, Path(id): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.partner_call(&Method::GET, &uri, &headers, |st, caller, _, port, _| st.partner.list_requests(caller, port, &id, Utc::now()))
}

pub(super) async fn partner_create_request(
    State(sim): State<Arc<Inner>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    sim.delay().await;
    sim.partner_call(&Method::POST, &uri, &headers, |st, caller, can_write, port, base| {
        st.partner.create_request(caller, can_write, port, &id, &body, base, Utc::now())
    })
}

impl Inner {
    /// One call of the partner side beyond the listings: logged, failures injected, the bearer
    /// token read (`can_write`: it carries `DelegatedAdminRelationship.ReadWrite.All`).
    fn partner_call(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        answer: impl FnOnce(&mut super::state::SimState, Option<crate::graph::Caller>, bool, Option<u16>, &str) -> Response,
    ) -> Response {
        let mut guard = self.lock();
        let st = &mut *guard;
        self.log(method, uri, Op::PartnerRelationships);
        if let Some(failure) = self.take_failure(Op::PartnerRelationships) {
            return crate::graph::failure(failure);
        }
        let can_write = bearer_token(headers).and_then(|t| st.tokens.get(t)).is_some_and(|t| t.partner_write);
        let caller = graph_caller(st, headers, |t| t.partner_role);
        let base = self.graph_base();
        answer(st, caller, can_write, self.port(), &base)
    }

    /// The partner tenant's GDAP relationships, or one relationship's access assignments: the
    /// bearer token decides the partner tenant.
    fn handle_partner(&self, uri: &Uri, headers: &HeaderMap, relationship: Option<&str>) -> Response {
        let mut guard = self.lock();
        let st = &mut *guard;
        self.log(&Method::GET, uri, Op::PartnerRelationships);
        if let Some(failure) = self.take_failure(Op::PartnerRelationships) {
            return crate::graph::failure(failure);
        }
        let caller = graph_caller(st, headers, |t| t.partner_role);
        let base = self.graph_base();
        st.partner.list(caller, self.port(), relationship, uri.query().unwrap_or_default(), &base, Utc::now())
    }
}

pub(super) type Shared = Arc<Inner>;

pub(super) fn router(inner: Shared) -> Router {
    Router::new()
        .route("/login/{tenant}/oauth2/v2.0/token", post(token_v2))
        .route("/login/{tenant}/oauth2/token", post(token_v1))
        .route("/login/{tenant}/adminconsent", get(super::consent::admin_consent))
        .route("/_sim/apps", post(super::consent::ctl_register_app))
        .route("/_sim/consent-admin", post(super::consent::ctl_consent_admin))
        .route("/_sim/tenants/{tenant}/consent-decision", post(super::consent::ctl_consent_decision))
        .route("/manage/api/{version}/{tenant}/activity/feed/{*rest}", any(manage))
        .route("/graph/v1.0/security/alerts_v2", get(graph_alerts))
        .route("/graph/v1.0/servicePrincipals", get(super::delegated::list_principals).post(super::delegated::create_principal))
        .route("/graph/v1.0/servicePrincipals/{id}", get(super::delegated::get_principal))
        .route("/graph/v1.0/servicePrincipals/{id}/appRoleAssignments", get(super::delegated::list_assignments))
        .route("/graph/v1.0/servicePrincipals/{id}/appRoleAssignedTo", post(super::delegated::assign_role))
        .route("/_sim/delegated/refresh-tokens", post(super::delegated::ctl_issue_refresh_token))
        .route("/graph/v1.0/tenantRelationships/delegatedAdminRelationships", get(partner_relationships))
        .route("/graph/v1.0/tenantRelationships/delegatedAdminRelationships/{id}", get(partner_relationship))
        .route("/graph/v1.0/tenantRelationships/delegatedAdminRelationships/{id}/accessAssignments", get(partner_assignments))
        .route(
            "/graph/v1.0/tenantRelationships/delegatedAdminRelationships/{id}/requests",
            get(partner_requests).post(partner_create_request),
        )
        .route("/graph/beta/auditLogs/signIns", get(sign_ins))
        .route("/graph/v1.0/users", get(users))
        .route("/graph/v1.0/subscribedSkus", get(subscribed_skus))
        .route("/graph/v1.0/directory/subscriptions", get(directory_subscriptions))
        .route("/_sim/tenants/{tenant}/licence-subscriptions", post(super::control::ctl_add_licence_subscription))
        .route("/_sim/tenants/{tenant}/licence-subscriptions/{id}", axum::routing::delete(super::control::ctl_remove_licence_subscription))
        .route("/_sim/licence-subscriptions/{id}/lifecycle", post(super::control::ctl_licence_lifecycle))
        .route("/_sim/tenants/{tenant}/licence-units", post(super::control::ctl_licence_units))
        .route("/_sim/tenants/{tenant}/licences-role", post(super::control::ctl_licences_role))
        .route("/_sim/tenants/{tenant}/users", post(super::control::ctl_add_users))
        .route("/_sim/tenants/{tenant}/users/{id}", axum::routing::delete(super::control::ctl_remove_user))
        .route("/_sim/tenants/{tenant}/licensed-mailboxes", post(super::control::ctl_add_licensed_mailboxes))
        .route("/_sim/tenants/{tenant}/users-role", post(super::control::ctl_users_role))
        .route("/_sim/partner/{tenant}/relationships", post(ctl_add_partner_relationship))
        .route("/_sim/tenants/{tenant}/sign-ins", post(ctl_add_sign_ins))
        .route("/_sim/partner/relationships/{id}/age", post(ctl_age_partner_relationship))
        .route("/_sim/tenants", post(ctl_add_tenant))
        .route("/_sim/tenants/{tenant}/records", post(ctl_add_records))
        .route("/_sim/tenants/{tenant}/raw-blob", post(ctl_add_raw_blob))
        .route("/_sim/tenants/{tenant}/consent", post(ctl_consent))
        .route("/_sim/tenants/{tenant}/subscriptions", get(ctl_subscriptions))
        .route("/_sim/tenants/{tenant}/subscriptions/{content_type}/admin-disabled", post(super::control::ctl_admin_disabled))
        .route("/_sim/tenants/{tenant}/subscriptions/{content_type}/disable-webhook", post(super::control::ctl_disable_webhook))
        .route("/_sim/fail", post(ctl_fail))
        .route("/_sim/page-size", post(ctl_page_size))
        .route("/_sim/disabled-after-start", post(ctl_disabled_after_start))
        .route("/_sim/requests", get(ctl_requests))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&inner), super::tenant_load::layer))
        .with_state(inner)
}

pub(super) async fn token_v2(State(sim): State<Shared>, Path(tenant): Path<String>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    sim.delay().await;
    sim.handle_token(TokenVersion::V2, &tenant, &uri, &headers, &body)
}

pub(super) async fn token_v1(State(sim): State<Shared>, Path(tenant): Path<String>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    sim.delay().await;
    sim.handle_token(TokenVersion::V1, &tenant, &uri, &headers, &body)
}

pub(super) async fn manage(
    State(sim): State<Shared>,
    Path((version, tenant, rest)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.delay().await;
    let mut resp = sim.handle_manage(&method, &uri, &headers, &version, &tenant, &rest, &body);
    match resp.extensions_mut().remove::<PendingStart>() {
        Some(pending) => sim.finish_start(pending).await,
        None => resp,
    }
}
