//! The directory's users for the Microsoft 365 simulator (`GET {base}/graph/v1.0/users`), as the
//! protected-mailbox count reads them (`shared/reference/licences-billing-outputs.md` §1.5):
//!
//! * The users of the token's tenant. The token must be a Graph token of a registered tenant
//!   (else `401`) carrying `User.Read.All` (consented by default; [`UserState::set_role`] takes
//!   it away: `403 Authorization_RequestDenied`).
//! * `$select` picks the properties; without it Graph's default set is returned, which has no
//!   `accountEnabled`, `userType` or `assignedPlans` (as Graph: `assignedPlans` must be
//!   selected). `id` is always returned.
//! * `$count=true` is an advanced query: without `ConsistencyLevel: eventual` it is `400
//!   Request_BadRequest`; with it the first page carries `@odata.count`. `$filter`, `$search`
//!   and `$orderby` are not served here (`400`).
//! * `$top` is 1 to 999 (default 100); a page with more behind it has an absolute
//!   `@odata.nextLink` with a `$skiptoken` that keeps the query (an unknown or another
//!   tenant's one is `400`). Paging is by offset over the users in insertion order.
//! * Failures injected with [`super::M365Operation::Users`] (429 with `Retry-After`, 503, 500).
//!
//! Control: users are added whole (`POST /_sim/tenants/{tenant}/users`), licensed mailboxes by
//! number (`POST /_sim/tenants/{tenant}/licensed-mailboxes` `{"count": n}`: enabled members
//! holding `EXCHANGE_S_STANDARD`), removed one by one (`DELETE
//! /_sim/tenants/{tenant}/users/{id}`), and the role granted or revoked
//! (`POST /_sim/tenants/{tenant}/users-role` `{"granted": bool}`).

use std::collections::{HashMap, HashSet};

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::graph::{Caller, graph_error, json_response, option};

/// The application permission the listing needs.
pub(crate) const USERS_ROLE: &str = "User.Read.All";
const USERS_PATH: &str = "/v1.0/users";
const MAX_TOP: usize = 999;
const DEFAULT_TOP: usize = 100;
/// Graph's default property set of a user (no licence or account state in it).
const DEFAULT_PROPERTIES: [&str; 10] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];
/// `EXCHANGE_S_STANDARD`, the plan of the licensed mailboxes added by number.
pub(crate) const EXCHANGE_PLAN_1: &str = "9aaf7827-d63c-4b61-89c3-182f06f82e5c";

/// An open `$skiptoken`.
struct Cursor {
    tenant: String,
    select: Option<String>,
    top: usize,
    offset: usize,
}

/// Users per tenant; lives in the M365 simulator's state, behind its lock.
#[derive(Default)]
pub(crate) struct UserState {
    /// Users by lower-cased tenant id, in insertion order.
    users: HashMap<String, Vec<Value>>,
    /// Tenants where `User.Read.All` was revoked.
    revoked: HashSet<String>,
    pages: HashMap<String, Cursor>,
    seq: u64,
}

impl UserState {
    pub(crate) fn role_granted(&self, tenant_key: &str) -> bool {
        !self.revoked.contains(tenant_key)
    }

    pub(crate) fn set_role(&mut self, tenant_id: &str, granted: bool) {
        crate::graph::set_tenant(&mut self.revoked, tenant_id, !granted);
    }

    /// Adds a user (`user` JSON with an `id`), replacing one with the same id.
    pub(crate) fn add(&mut self, tenant_id: &str, user: Value) {
        let list = self.users.entry(tenant_id.to_ascii_lowercase()).or_default();
        let id = user.get("id").cloned();
        match list.iter_mut().find(|u| u.get("id") == id.as_ref()) {
            Some(existing) => *existing = user,
            None => list.push(user),
        }
    }

    /// Adds `count` enabled members each holding an enabled `EXCHANGE_S_STANDARD`; their ids.
    pub(crate) fn add_licensed_mailboxes(&mut self, tenant_id: &str, count: usize, now: DateTime<Utc>) -> Vec<String> {
        (0..count)
            .map(|_| {
                self.seq += 1;
                let id = format!("00000000-0000-4000-8000-{:012x}", self.seq);
                self.add(
                    tenant_id,
                    json!({
                        "id": id,
                        "displayName": format!("Mailbox {}", self.seq),
                        "userPrincipalName": format!("mailbox{}@{}.example", self.seq, &tenant_id[..8.min(tenant_id.len())]),
                        "accountEnabled": true,
                        "userType": "Member",
                        "assignedPlans": [{"assignedDateTime": now.to_rfc3339(), "capabilityStatus": "Enabled",
                            "service": "exchange", "servicePlanId": EXCHANGE_PLAN_1}],
                    }),
                );
                id
            })
            .collect()
    }

    /// Removes a user; whether it was there.
    pub(crate) fn remove(&mut self, tenant_id: &str, user_id: &str) -> bool {
        let Some(list) = self.users.get_mut(&tenant_id.to_ascii_lowercase()) else { return false };
        let before = list.len();
        list.retain(|u| !u.get("id").and_then(Value::as_str).is_some_and(|id| id.eq_ignore_ascii_case(user_id)));
        list.len() != before
    }

    /// Answers a listing of the caller's users.
    pub(crate) fn list(
        &mut self,
        caller: Option<Caller>,
        sim_port: Option<u16>,
        headers: &HeaderMap,
        raw_query: &str,
        graph_base: &str,
        now: DateTime<Utc>,
    ) -> Response {
        let tenant = match crate::graph::authenticate_directory_read(caller, sim_port, now, USERS_ROLE) {
            Ok(tenant) => tenant,
            Err(refusal) => return *refusal,
        };
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if let Some((name, _)) = params
            .iter()
            .find(|(k, _)| !matches!(k.trim_start_matches('$').to_ascii_lowercase().as_str(), "top" | "skiptoken" | "select" | "count"))
        {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("Query option '{name}' is not supported by this simulator."),
            );
        }
        let eventual = headers.get("ConsistencyLevel").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
        let count = match option(&params, "count").as_deref() {
            None | Some("false") => false,
            Some("true") if eventual => true,
            Some("true") => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "$count is not currently supported. Add the ConsistencyLevel: eventual header for advanced queries.",
                );
            }
            Some(other) => return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid $count value '{other}'.")),
        };
        let top = match option(&params, "top") {
            None => DEFAULT_TOP,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_TOP).contains(&n) => n,
                _ => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "Request_BadRequest",
                        &format!("Invalid page size '{text}': 1 to {MAX_TOP}."),
                    );
                }
            },
        };
        let mut select = option(&params, "select");
        let mut offset = 0;
        if let Some(token) = option(&params, "skiptoken") {
            match self.pages.get(&token) {
                Some(cursor) if cursor.tenant == tenant && cursor.top == top => {
                    select.clone_from(&cursor.select);
                    offset = cursor.offset;
                }
                _ => return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", "The $skiptoken is invalid or has expired."),
            }
        }
        let all = self.users.get(&tenant).map(Vec::as_slice).unwrap_or_default();
        let end = (offset + top).min(all.len());
        let page: Vec<Value> =
            all.get(offset.min(all.len())..end).unwrap_or_default().iter().map(|u| project(u, select.as_deref())).collect();
        let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": page});
        if count && offset == 0 {
            body["@odata.count"] = json!(all.len());
        }
        if end < all.len() {
            self.seq += 1;
            let token = format!("{:016x}{}", rand_u64(), self.seq);
            self.pages.insert(token.clone(), Cursor { tenant, select: select.clone(), top, offset: end });
            let select_part = select.as_deref().map(|s| format!("$select={s}&")).unwrap_or_default();
            body["@odata.nextLink"] = json!(format!("{graph_base}{USERS_PATH}?{select_part}$top={top}&$skiptoken={token}"));
        }
        json_response(StatusCode::OK, &body)
    }
}

/// The user with the selected properties (`id` always), or Graph's default set.
fn project(user: &Value, select: Option<&str>) -> Value {
    let wanted: Vec<&str> = match select {
        Some(list) => list.split(',').map(str::trim).filter(|p| !p.is_empty()).collect(),
        None => DEFAULT_PROPERTIES.to_vec(),
    };
    let mut out = Map::new();
    out.insert("id".into(), user.get("id").cloned().unwrap_or(Value::Null));
    for property in wanted {
        if let Some((name, value)) = user.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(property))) {
            out.insert(name.clone(), value.clone());
        } else if select.is_some() {
            out.insert(property.to_owned(), Value::Null);
        }
    }
    Value::Object(out)
}

fn rand_u64() -> u64 {
    let mut buf = [0u8; 8];
    let _ = getrandom::fill(&mut buf);
    u64::from_le_bytes(buf)
}
