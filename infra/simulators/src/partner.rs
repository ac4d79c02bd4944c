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
//! * Failure injection: [`crate::m365::M365Operation::PartnerRelationships`], answered as for
//!   Graph alerts (429 / 503 with `Retry-After`, 500).

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::graph::{Caller, graph_error, json_response, option};

/// The application permission the listing requires.
pub(crate) const RELATIONSHIPS_ROLE: &str = "DelegatedAdminRelationship.Read.All";
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
    /// Open `$skiptoken`s: (partner tenant, relationship or none, `$top` text, offset).
    pages: HashMap<String, (String, Option<String>, Option<String>, usize)>,
    seq: u64,
}

impl PartnerState {
    pub(crate) fn role_granted(&self, tenant_key: &str) -> bool {
        self.granted.contains(tenant_key)
    }

    pub(crate) fn set_role(&mut self, tenant_id: &str, granted: bool) {
        let key = tenant_id.to_ascii_lowercase();
        if granted {
            self.granted.insert(key);
        } else {
            self.granted.remove(&key);
        }
    }

    pub(crate) fn add_relationship(&mut self, tenant_id: &str, relationship: Value) {
        let list = self.relationships.entry(tenant_id.to_ascii_lowercase()).or_default();
        let id = relationship.get("id").cloned();
        match list.iter_mut().find(|r| id.is_some() && r.get("id") == id.as_ref()) {
            Some(stored) => *stored = relationship,
            None => list.push(relationship),
        }
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

fn random() -> [u8; 8] {
    let mut buf = [0u8; 8];
    let _ = getrandom::fill(&mut buf);
    buf
}
