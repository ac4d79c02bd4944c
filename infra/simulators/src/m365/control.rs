//! The Microsoft 365 simulator's control endpoints under `/_sim` (no authentication): tenants,
//! records and raw blobs, consent, subscriptions, failures, page size, disabled-after-start and
//! the request log; partner relationships (add, age) and sign-ins.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::{M365Failure, M365Operation};
use super::routes::Shared;
use super::state::{BlobBody, tenant_key};
use super::wire::json_response;

#[derive(Deserialize)]
pub(super) struct CtlTenant {
    pub(super) tenant_id: String,
    pub(super) client_id: String,
    pub(super) client_secret: String,
}

pub(super) async fn ctl_add_tenant(State(sim): State<Shared>, Json(req): Json<CtlTenant>) -> Response {
    sim.add_tenant(&req.tenant_id, &req.client_id, &req.client_secret);
    json_response(StatusCode::CREATED, &json!({ "tenant_id": req.tenant_id, "client_id": req.client_id }))
}

#[derive(Deserialize)]
pub(super) struct CtlRecords {
    pub(super) content_type: String,
    pub(super) records: Vec<Value>,
}

pub(super) async fn ctl_add_records(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlRecords>) -> Response {
    let id = sim.add_blob(&tenant, &req.content_type, Utc::now(), BlobBody::Records(req.records));
    json_response(StatusCode::CREATED, &json!({ "contentId": id }))
}

#[derive(Deserialize)]
pub(super) struct CtlRawBlob {
    pub(super) content_type: String,
    pub(super) body: String,
}

pub(super) async fn ctl_add_raw_blob(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlRawBlob>) -> Response {
    let id = sim.add_blob(&tenant, &req.content_type, Utc::now(), BlobBody::Raw(req.body));
    json_response(StatusCode::CREATED, &json!({ "contentId": id }))
}

#[derive(Deserialize)]
pub(super) struct CtlConsent {
    pub(super) granted: bool,
}

pub(super) async fn ctl_consent(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlConsent>) -> Response {
    if !sim.lock().tenants.contains_key(&tenant_key(&tenant)) {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": format!("unknown tenant {tenant}") }));
    }
    sim.set_consent(&tenant, req.granted);
    json_response(StatusCode::OK, &json!({ "granted": req.granted }))
}

pub(super) async fn ctl_subscriptions(State(sim): State<Shared>, Path(tenant): Path<String>) -> Response {
    json_response(StatusCode::OK, &json!(sim.subscriptions(&tenant)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CtlAdminDisabled {
    pub(super) disabled: bool,
}

/// `POST /_sim/tenants/{tenant}/subscriptions/{content_type}/admin-disabled` `{"disabled":
/// true}`: a tenant admin keeps the subscription disabled (starts answer AF20023) until
/// `{"disabled": false}`.
pub(super) async fn ctl_admin_disabled(
    State(sim): State<Shared>,
    Path((tenant, content_type)): Path<(String, String)>,
    Json(req): Json<CtlAdminDisabled>,
) -> Response {
    if !sim.hold_subscription_disabled(&tenant, &content_type, req.disabled) {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": format!("unknown tenant {tenant}") }));
    }
    json_response(StatusCode::OK, &json!({ "content_type": content_type, "admin_disabled": req.disabled }))
}

/// `POST /_sim/tenants/{tenant}/subscriptions/{content_type}/disable-webhook`: Microsoft
/// disables the subscription's webhook (as after failed notifications).
pub(super) async fn ctl_disable_webhook(State(sim): State<Shared>, Path((tenant, content_type)): Path<(String, String)>) -> Response {
    if !sim.disable_webhook(&tenant, &content_type) {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": "no webhook on that subscription" }));
    }
    json_response(StatusCode::OK, &json!({ "content_type": content_type, "webhook": "disabled" }))
}

#[derive(Deserialize)]
pub(super) struct CtlFail {
    pub(super) operation: String,
    pub(super) failure: String,
    #[serde(default = "one")]
    pub(super) times: u32,
}

pub(super) fn one() -> u32 {
    1
}

pub(super) async fn ctl_fail(State(sim): State<Shared>, Json(req): Json<CtlFail>) -> Response {
    let op = match req.operation.parse::<M365Operation>() {
        Ok(op) => op,
        Err(e) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({ "error": e.to_string() }));
        }
    };
    let failure = match req.failure.parse::<M365Failure>() {
        Ok(f) => f,
        Err(e) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({ "error": e.to_string() }));
        }
    };
    sim.fail_next(op, failure, req.times);
    json_response(StatusCode::OK, &json!({ "operation": format!("{op:?}"), "failure": format!("{failure:?}"), "times": req.times }))
}

#[derive(Deserialize)]
pub(super) struct CtlPageSize {
    pub(super) page_size: usize,
}

pub(super) async fn ctl_page_size(State(sim): State<Shared>, Json(req): Json<CtlPageSize>) -> Response {
    sim.lock().page_size = req.page_size.max(1);
    json_response(StatusCode::OK, &json!({ "page_size": req.page_size.max(1) }))
}

#[derive(Deserialize)]
pub(super) struct CtlDisabledAfterStart {
    pub(super) list_calls: u32,
}

pub(super) async fn ctl_disabled_after_start(State(sim): State<Shared>, Json(req): Json<CtlDisabledAfterStart>) -> Response {
    sim.lock().disabled_after_start = req.list_calls;
    json_response(StatusCode::OK, &json!({ "list_calls": req.list_calls }))
}

pub(super) async fn ctl_requests(State(sim): State<Shared>) -> Response {
    // A bare array, not the kit's `{"requests", "count"}`: scripts read it that way.
    json_response(StatusCode::OK, &json!(sim.request_log()))
}

#[derive(Deserialize)]
pub(super) struct CtlAge {
    pub(super) days: i64,
}

/// Adds (or replaces) a relationship of a partner tenant, with its access assignments under
/// `accessAssignments` (kept apart, as Graph lists them).
pub(super) async fn ctl_add_partner_relationship(
    State(sim): State<Shared>,
    Path(tenant): Path<String>,
    Json(mut relationship): Json<Value>,
) -> Response {
    let assignments = relationship.as_object_mut().and_then(|o| o.remove("accessAssignments"));
    let Some(id) = relationship.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": "the relationship needs an id"}));
    };
    let mut state = sim.lock();
    state.partner.add_relationship(&tenant, relationship);
    for assignment in assignments.and_then(|a| a.as_array().cloned()).unwrap_or_default() {
        state.partner.add_assignment(&id, assignment);
    }
    drop(state);
    json_response(StatusCode::CREATED, &json!({ "id": id }))
}

/// Moves a relationship's times `days` into the past.
pub(super) async fn ctl_age_partner_relationship(State(sim): State<Shared>, Path(id): Path<String>, Json(req): Json<CtlAge>) -> Response {
    let aged = sim.lock().partner.age(&id, req.days);
    if aged {
        json_response(StatusCode::OK, &json!({ "id": id, "aged_days": req.days }))
    } else {
        json_response(StatusCode::NOT_FOUND, &json!({"error": format!("no relationship {id}")}))
    }
}

/// Adds sign-ins (`signIn` JSON objects) to a tenant's sign-in log.
pub(super) async fn ctl_add_sign_ins(State(sim): State<Shared>, Path(tenant): Path<String>, Json(sign_ins): Json<Vec<Value>>) -> Response {
    let count = sign_ins.len();
    let mut state = sim.lock();
    for sign_in in sign_ins {
        state.sign_ins.add(&tenant, sign_in);
    }
    drop(state);
    json_response(StatusCode::CREATED, &json!({ "added": count }))
}

/// Adds directory users (`user` JSON objects with an `id`) to a tenant.
pub(super) async fn ctl_add_users(State(sim): State<Shared>, Path(tenant): Path<String>, Json(users): Json<Vec<Value>>) -> Response {
    if users.iter().any(|u| u.get("id").and_then(Value::as_str).is_none_or(str::is_empty)) {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": "every user needs an id"}));
    }
    let count = users.len();
    let mut state = sim.lock();
    for user in users {
        state.users.add(&tenant, user);
    }
    drop(state);
    json_response(StatusCode::CREATED, &json!({ "added": count }))
}

/// `{"count": n}`: adds n licensed mailboxes (enabled members with `EXCHANGE_S_STANDARD`).
#[derive(Debug, serde::Deserialize)]
pub(super) struct CtlMailboxes {
    count: usize,
}

pub(super) async fn ctl_add_licensed_mailboxes(
    State(sim): State<Shared>,
    Path(tenant): Path<String>,
    Json(req): Json<CtlMailboxes>,
) -> Response {
    if req.count > 100_000 {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": "at most 100000 at once"}));
    }
    let ids = sim.lock().users.add_licensed_mailboxes(&tenant, req.count, chrono::Utc::now());
    json_response(StatusCode::CREATED, &json!({ "ids": ids }))
}

/// Removes one directory user.
pub(super) async fn ctl_remove_user(State(sim): State<Shared>, Path((tenant, id)): Path<(String, String)>) -> Response {
    if sim.lock().users.remove(&tenant, &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_response(StatusCode::NOT_FOUND, &json!({"error": format!("no user {id}")}))
    }
}

/// `{"granted": bool}`: whether `User.Read.All` is consented (for tokens issued from now on).
#[derive(Debug, serde::Deserialize)]
pub(super) struct CtlGranted {
    granted: bool,
}

pub(super) async fn ctl_users_role(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlGranted>) -> Response {
    sim.lock().users.set_role(&tenant, req.granted);
    json_response(StatusCode::OK, &json!({ "granted": req.granted }))
}

/// Adds (or replaces) one of a tenant's licence subscriptions.
pub(super) async fn ctl_add_licence_subscription(
    State(sim): State<Shared>,
    Path(tenant): Path<String>,
    Json(subscription): Json<super::licences::SimSubscription>,
) -> Response {
    match sim.lock().licences.add(&tenant, subscription, Utc::now()) {
        Ok(()) => json_response(StatusCode::CREATED, &json!({"added": true})),
        Err(error) => json_response(StatusCode::BAD_REQUEST, &json!({ "error": error })),
    }
}

/// Removes one of a tenant's licence subscriptions.
pub(super) async fn ctl_remove_licence_subscription(State(sim): State<Shared>, Path((tenant, id)): Path<(String, String)>) -> Response {
    if sim.lock().licences.remove(&tenant, &id, Utc::now()) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_response(StatusCode::NOT_FOUND, &json!({"error": "no such subscription"}))
    }
}

/// `{"to": "Warning" | "Suspended" | "LockedOut" | "Deleted" | "Renewed"}`.
#[derive(Debug, Deserialize)]
pub(super) struct CtlLifecycle {
    to: super::licences::LifecycleStep,
}

/// Moves a licence subscription through its lifecycle.
pub(super) async fn ctl_licence_lifecycle(State(sim): State<Shared>, Path(id): Path<String>, Json(req): Json<CtlLifecycle>) -> Response {
    match sim.lock().licences.step(&id, req.to, Utc::now()) {
        Some(status) => json_response(StatusCode::OK, &json!({ "status": status })),
        None => json_response(StatusCode::NOT_FOUND, &json!({"error": "no such subscription"})),
    }
}

/// `{"sku_id": "…", "consumed_units": n}`.
#[derive(Debug, Deserialize)]
pub(super) struct CtlLicenceUnits {
    sku_id: String,
    consumed_units: i64,
}

/// Sets how many licences of a product are assigned.
pub(super) async fn ctl_licence_units(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlLicenceUnits>) -> Response {
    sim.lock().licences.set_consumed(&tenant, &req.sku_id, req.consumed_units, Utc::now());
    json_response(StatusCode::OK, &json!({ "consumed_units": req.consumed_units }))
}

/// `{"granted": bool}`: whether `Organization.Read.All` is consented (for tokens issued from
/// now on).
pub(super) async fn ctl_licences_role(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlGranted>) -> Response {
    sim.lock().licences.set_role(&tenant, req.granted);
    json_response(StatusCode::OK, &json!({ "granted": req.granted }))
}
