//! GDAP relationships of partner tenants for the Microsoft 365 simulator (the
//! `graph.microsoft.com` role), following `/work/shared/reference/microsoft-apis.md` §6.1:
//!
//! * `GET {base}/graph/v1.0/tenantRelationships/delegatedAdminRelationships` lists the
//!   relationships of the token's tenant (the partner); `…/{id}/accessAssignments` lists one
//!   relationship's access assignments (`404 ResourceNotFound` for another partner's or an
//!   unknown relationship).
//! * The token must be a Graph token of a registered tenant (else `401`) carrying
//!   `DelegatedAdminRelationship.Read.All` (granted per partner tenant, off by default; else
//!   `403 Forbidden`).
//! * `$top` (1 to 300; the default page is 300 for relationships, 100 for assignments, or the
//!   simulator's smaller page size) pages the listing; a page with more behind it has an
//!   absolute `@odata.nextLink` with a `$skiptoken`. A nextLink whose `$top` was changed, or an
//!   unknown or another tenant's skip token, is `400 BadRequest`. Other options are `400`.
//! * `GET …/delegatedAdminRelationships/{id}` reads one relationship. A relationship being
//!   terminated moves one status on at each read (`terminationRequested` → `terminating` →
//!   `terminated`, its `endDateTime` then set and its terminate request `succeeded`), the way a
//!   caller following the long-running termination sees it progress.
//! * `GET …/{id}/requests` lists the lifecycle requests made on a relationship; `POST
//!   …/{id}/requests` with `{"action": "terminate"}` (also `lockForApproval`, `approve`,
//!   `reject` are known actions; only `terminate` is simulated) needs
//!   `DelegatedAdminRelationship.ReadWrite.All` (else `403`), answers `201 Created` with the
//!   request (`status` `created`) and a `Location`, and moves the relationship to
//!   `terminationRequested`. Terminating a relationship that is not active, expiring or pending
//!   approval, or one with a terminate request under way, is `400 BadRequest`; another partner's
//!   or an unknown relationship is `404`.
//! * Failure injection: [`crate::m365::M365Operation::PartnerRelationships`], answered as for
//!   Graph alerts (429 / 503 with `Retry-After`, 500), for every call above.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::graph::{Caller, graph_error, json_response, option};

/// The application permission the listing requires.
pub(crate) const RELATIONSHIPS_ROLE: &str = "DelegatedAdminRelationship.Read.All";
/// The application permission lifecycle requests (termination) require.
pub(crate) const RELATIONSHIPS_WRITE_ROLE: &str = "DelegatedAdminRelationship.ReadWrite.All";
const RELATIONSHIPS_PATH: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";
const MAX_TOP: usize = 300;
const ASSIGNMENTS_PAGE: usize = 100;

/// The partner side's state; lives in the M365 simulator's state, behind its lock.
#[derive(Default)]
pub(crate) struct PartnerState {
    /// Relationships by lower-cased partner tenant id, in the order added.
    relationships: HashMap<String, Vec<Value>>,
    /// Access assignments by relationship id.
    assignments: HashMap<String, Vec<Value>>,
    /// Partner tenants where `DelegatedAdminRelationship.Read.All` is consented.
    granted: HashSet<String>,
    /// Partner tenants where `DelegatedAdminRelationship.ReadWrite.All` is consented.
    writable: HashSet<String>,
    /// Lifecycle requests by relationship id, in the order made.
    requests: HashMap<String, Vec<Value>>,
    /// Open `$skiptoken`s: (partner tenant, relationship or none, `$top` text, offset).
    pages: HashMap<String, (String, Option<String>, Option<String>, usize)>,
    seq: u64,
}

impl PartnerState {
    /// Whether a token of the tenant carries the read role (the write role includes it).
    pub(crate) fn role_granted(&self, tenant_key: &str) -> bool {
        self.granted.contains(tenant_key) || self.writable.contains(tenant_key)
    }

    /// Whether a token of the tenant carries `DelegatedAdminRelationship.ReadWrite.All`.
    pub(crate) fn write_granted(&self, tenant_key: &str) -> bool {
        self.writable.contains(tenant_key)
    }

    pub(crate) fn set_write_role(&mut self, tenant_id: &str, granted: bool) {
        crate::graph::set_tenant(&mut self.writable, tenant_id, granted);
    }

    /// Moves a relationship's times `days` into the past (created, activated, end), as if it
    /// had been established that much earlier. `false`: no such relationship.
    pub(crate) fn age(&mut self, relationship_id: &str, days: i64) -> bool {
        let Some(relationship) = self.find_mut(relationship_id) else { return false };
        for field in ["createdDateTime", "activatedDateTime", "endDateTime", "lastModifiedDateTime"] {
            let shifted = relationship
                .get(field)
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| (t.with_timezone(&Utc) - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            if let Some(shifted) = shifted {
                relationship[field] = json!(shifted);
            }
        }
        true
    }

    /// A relationship's status now (for tests and the demo).
    pub(crate) fn status(&self, relationship_id: &str) -> Option<String> {
        self.relationships
            .values()
            .flatten()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(relationship_id))
            .and_then(|r| r.get("status").and_then(Value::as_str).map(str::to_owned))
    }

    fn find_mut(&mut self, relationship_id: &str) -> Option<&mut Value> {
        self.relationships.values_mut().flatten().find(|r| r.get("id").and_then(Value::as_str) == Some(relationship_id))
    }

    /// The caller's own relationship `id`, or the `404` Graph answers.
    fn owned_mut(&mut self, tenant: &str, id: &str) -> Result<&mut Value, Box<Response>> {
        self.relationships
            .get_mut(tenant)
            .and_then(|list| list.iter_mut().find(|r| r.get("id").and_then(Value::as_str) == Some(id)))
            .ok_or_else(|| {
                Box::new(graph_error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!("The delegated admin relationship {id} was not found."),
                ))
            })
    }

    /// `GET …/{id}`: one relationship, a termination under way moving one status on.
    pub(crate) fn read_one(&mut self, caller: Option<Caller>, sim_port: Option<u16>, id: &str, now: DateTime<Utc>) -> Response {
        let tenant = match authenticate_partner(caller, sim_port, now) {
            Ok(tenant) => tenant,
            Err(refusal) => return *refusal,
        };
        let relationship = match self.owned_mut(&tenant, id) {
            Ok(relationship) => relationship,
            Err(missing) => return *missing,
        };
        let seen = relationship.clone();
        let next = match relationship.get("status").and_then(Value::as_str) {
            Some("terminationRequested") => Some("terminating"),
            Some("terminating") => Some("terminated"),
            _ => None,
        };
        if let Some(next) = next {
            relationship["status"] = json!(next);
            relationship["lastModifiedDateTime"] = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            if next == "terminated" {
                relationship["endDateTime"] = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                for request in self.requests.get_mut(id).into_iter().flatten() {
                    if request["action"] == "terminate" {
                        request["status"] = json!("succeeded");
                        request["lastModifiedDateTime"] = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    }
                }
            }
        }
        let mut body = seen;
        body["@odata.context"] =
            json!("https://graph.microsoft.com/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships/$entity");
        json_response(StatusCode::OK, &body)
    }

    /// `GET …/{id}/requests`.
    pub(crate) fn list_requests(&mut self, caller: Option<Caller>, sim_port: Option<u16>, id: &str, now: DateTime<Utc>) -> Response {
        let tenant = match authenticate_partner(caller, sim_port, now) {
            Ok(tenant) => tenant,
            Err(refusal) => return *refusal,
        };
        if let Err(missing) = self.owned_mut(&tenant, id) {
            return *missing;
        }
        let value = self.requests.get(id).cloned().unwrap_or_default();
        json_response(
            StatusCode::OK,
            &json!({"@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{RELATIONSHIPS_PATH}('{id}')/requests"), "value": value}),
        )
    }

    /// `POST …/{id}/requests`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_request(
        &mut self,
        caller: Option<Caller>,
        can_write: bool,
        sim_port: Option<u16>,
        id: &str,
        body: &[u8],
        graph_base: &str,
        now: DateTime<Utc>,
    ) -> Response {
        let tenant = match authenticate_partner(caller, sim_port, now) {
            Ok(tenant) => tenant,
            Err(refusal) => return *refusal,
        };
        if !can_write {
            return graph_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!("Missing application roles. API required roles: {RELATIONSHIPS_WRITE_ROLE}."),
            );
        }
        let action = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => match fields.get("action").and_then(Value::as_str) {
                Some(action) if ["lockForApproval", "approve", "terminate", "reject"].contains(&action) => action.to_owned(),
                Some(other) => {
                    return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &format!("Invalid action '{other}'."));
                }
                None => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The action property is required."),
            },
            _ => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The request body must be a JSON object."),
        };
        if action != "terminate" {
            return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &format!("The simulator does not carry out '{action}'."));
        }
        let under_way = self.requests.get(id).into_iter().flatten().any(|r| r["action"] == "terminate" && r["status"] != "failed");
        let relationship = match self.owned_mut(&tenant, id) {
            Ok(relationship) => relationship,
            Err(missing) => return *missing,
        };
        let status = relationship.get("status").and_then(Value::as_str).unwrap_or_default().to_owned();
        if under_way || !["active", "expiring", "approvalPending"].contains(&status.as_str()) {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("The relationship is {status}; it cannot be terminated (a termination may already be under way)."),
            );
        }
        relationship["status"] = json!("terminationRequested");
        let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        relationship["lastModifiedDateTime"] = json!(at);
        self.seq += 1;
        let request_id = format!("{}-{:04x}", hex::encode(random()), self.seq);
        let request = json!({
            "@odata.type": "#microsoft.graph.delegatedAdminRelationshipRequest",
            "id": request_id,
            "action": action,
            "status": "created",
            "createdDateTime": at,
            "lastModifiedDateTime": at,
        });
        self.requests.entry(id.to_owned()).or_default().push(request.clone());
        let location = format!("{graph_base}{RELATIONSHIPS_PATH}/{id}/requests/{request_id}");
        let mut response = json_response(StatusCode::CREATED, &request);
        if let Ok(value) = axum::http::HeaderValue::from_str(&location) {
            response.headers_mut().insert(axum::http::header::LOCATION, value);
        }
        response
    }

    pub(crate) fn set_role(&mut self, tenant_id: &str, granted: bool) {
        crate::graph::set_tenant(&mut self.granted, tenant_id, granted);
    }

    pub(crate) fn add_relationship(&mut self, tenant_id: &str, relationship: Value) {
        let list = self.relationships.entry(tenant_id.to_ascii_lowercase()).or_default();
        let id = relationship.get("id").cloned();
        match list.iter_mut().find(|r| id.is_some() && r.get("id") == id.as_ref()) {
            Some(stored) => *stored = relationship,
            None => list.push(relationship),
        }
    }

    /// The Entra roles (template ids) a technician of `partner` holds in `customer`: those of
    /// every active access assignment of every relationship with the customer that grants
    /// access now (`active`, or `expiring` until its end). `None`: no such relationship —
    /// Microsoft then issues the technician no token for the customer.
    pub(crate) fn gdap_roles(&self, partner: &str, customer: &str) -> Option<Vec<String>> {
        let roles_of = |v: &Value| -> Vec<String> {
            v.pointer("/accessDetails/unifiedRoles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("roleDefinitionId").and_then(Value::as_str).map(str::to_ascii_lowercase))
                .collect()
        };
        let mut held: Option<Vec<String>> = None;
        for relationship in self.relationships.get(&partner.to_ascii_lowercase()).into_iter().flatten() {
            let customer_of = relationship.pointer("/customer/tenantId").and_then(Value::as_str).unwrap_or_default();
            let status = relationship.get("status").and_then(Value::as_str).unwrap_or_default();
            if !customer_of.eq_ignore_ascii_case(customer) || !matches!(status, "active" | "expiring") {
                continue;
            }
            let granted = roles_of(relationship);
            let id = relationship.get("id").and_then(Value::as_str).unwrap_or_default();
            let roles = held.get_or_insert_with(Vec::new);
            for assignment in self.assignments.get(id).into_iter().flatten() {
                if assignment.get("status").and_then(Value::as_str) == Some("active") {
                    roles.extend(roles_of(assignment).into_iter().filter(|r| granted.contains(r)));
                }
            }
        }
        held
    }

    pub(crate) fn add_assignment(&mut self, relationship_id: &str, assignment: Value) {
        self.assignments.entry(relationship_id.to_owned()).or_default().push(assignment);
    }

    /// Answers a listing of relationships (`relationship` is `None`) or of one relationship's
    /// access assignments.
    pub(crate) fn list(
        &mut self,
        caller: Option<Caller>,
        sim_port: Option<u16>,
        relationship: Option<&str>,
        raw_query: &str,
        graph_base: &str,
        now: DateTime<Utc>,
    ) -> Response {
        let tenant = match crate::graph::authenticate(caller, sim_port, now) {
            Ok(tenant) => tenant,
            Err(crate::graph::Refusal::MissingRole) => {
                return graph_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    &format!(
                        "Missing application roles. API required roles: {RELATIONSHIPS_ROLE},DelegatedAdminRelationship.ReadWrite.All."
                    ),
                );
            }
            Err(refusal) => return refusal.into_response(),
        };
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if let Some((name, _)) =
            params.iter().find(|(k, _)| !matches!(k.trim_start_matches('$').to_ascii_lowercase().as_str(), "top" | "skiptoken"))
        {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Query option '{name}' is not supported by this simulator."),
            );
        }
        let top_text = option(&params, "top");
        let default_page = if relationship.is_some() { ASSIGNMENTS_PAGE } else { MAX_TOP };
        let top = match &top_text {
            None => default_page,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_TOP).contains(&n) => n,
                _ => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &format!("Invalid $top value '{text}': 1 to {MAX_TOP}.")),
            },
        };
        let offset = match option(&params, "skiptoken") {
            None => 0,
            Some(token) => match self.pages.get(&token) {
                Some((t, r, top, offset)) if *t == tenant && r.as_deref() == relationship && *top == top_text => *offset,
                Some((t, ..)) if *t == tenant => {
                    return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Follow the nextLink as it is: its $top must not change.");
                }
                _ => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The $skiptoken is invalid or has expired."),
            },
        };
        let owned = self.relationships.get(&tenant).map(Vec::as_slice).unwrap_or_default();
        let items: Vec<Value> = match relationship {
            None => owned.to_vec(),
            Some(id) => {
                if !owned.iter().any(|r| r.get("id").and_then(Value::as_str) == Some(id)) {
                    return graph_error(
                        StatusCode::NOT_FOUND,
                        "ResourceNotFound",
                        &format!("The delegated admin relationship {id} was not found."),
                    );
                }
                self.assignments.get(id).cloned().unwrap_or_default()
            }
        };
        let end = (offset + top).min(items.len());
        let page: Vec<Value> = items.get(offset.min(items.len())..end).unwrap_or_default().to_vec();
        let path = match relationship {
            None => RELATIONSHIPS_PATH.to_owned(),
            Some(id) => format!("{RELATIONSHIPS_PATH}/{id}/accessAssignments"),
        };
        let mut body = json!({"@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{path}"), "value": page});
        if end < items.len() {
            self.seq += 1;
            let token = format!("{}{}", hex::encode(random()), self.seq);
            self.pages.insert(token.clone(), (tenant, relationship.map(str::to_owned), top_text.clone(), end));
            let top_part = top_text.map(|t| format!("$top={t}&")).unwrap_or_default();
            body["@odata.nextLink"] = json!(format!("{graph_base}{path}?{top_part}$skiptoken={token}"));
        }
        json_response(StatusCode::OK, &body)
    }
}

/// The caller's partner tenant, or the refusal Graph answers (`403` without the read role).
fn authenticate_partner(caller: Option<Caller>, sim_port: Option<u16>, now: DateTime<Utc>) -> Result<String, Box<Response>> {
    crate::graph::authenticate(caller, sim_port, now).map_err(|refusal| {
        Box::new(match refusal {
            crate::graph::Refusal::MissingRole => graph_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!("Missing application roles. API required roles: {RELATIONSHIPS_ROLE},{RELATIONSHIPS_WRITE_ROLE}."),
            ),
            refusal => refusal.into_response(),
        })
    })
}

fn random() -> [u8; 8] {
    let mut buf = [0u8; 8];
    let _ = getrandom::fill(&mut buf);
    buf
}
