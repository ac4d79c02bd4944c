//! Entra ID sign-in logs for the Microsoft 365 simulator (`GET {base}/graph/beta/auditLogs/signIns`),
//! following `/work/shared/reference/microsoft-apis.md` §6.3:
//!
//! * The sign-ins of the token's tenant, newest first. In a partner tenant they include its
//!   users' sign-ins into customer tenants (`homeTenantId` the partner, `resourceTenantId` the
//!   customer); in a customer tenant, partner technicians' sign-ins carry
//!   `crossTenantAccessType` `serviceProvider`.
//! * The token must be a Graph token of a registered tenant (else `401`) carrying
//!   `AuditLog.Read.All` (granted per tenant, off by default; else `403 Forbidden`). A tenant
//!   without an Entra ID P1/P2 licence (on by default here) answers `403`
//!   `Authentication_RequestFromNonPremiumTenantOrB2CTenant`, as Graph does.
//! * `$filter` supports `createdDateTime ge {time}` (and `and createdDateTime le {time}`);
//!   `$top` is 1 to 1,000 (default 1,000); a page with more behind it has an absolute
//!   `@odata.nextLink` with a `$skiptoken` (an unknown one is `400`). Other options are `400`.
//! * Failures injected with [`crate::m365::M365Operation::SignIns`].

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::graph::{Caller, graph_error, json_response, option};

/// The application permission sign-in logs need.
pub(crate) const SIGN_INS_ROLE: &str = "AuditLog.Read.All";
const SIGN_INS_PATH: &str = "/beta/auditLogs/signIns";
const MAX_TOP: usize = 1000;

/// A `$filter`'s bounds on `createdDateTime` (`ge`, `le`).
type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// An open `$skiptoken`: the tenant, the filter's bounds, `$top` and the offset reached.
struct Cursor {
    tenant: String,
    bounds: Bounds,
    top: usize,
    offset: usize,
}

/// Sign-in logs per tenant; lives in the M365 simulator's state, behind its lock.
#[derive(Default)]
pub(crate) struct SignInState {
    /// Sign-ins by lower-cased tenant id.
    sign_ins: HashMap<String, Vec<Value>>,
    /// Tenants where `AuditLog.Read.All` is consented.
    granted: HashSet<String>,
    /// Tenants without Entra ID P1/P2.
    unlicensed: HashSet<String>,
    /// Open `$skiptoken`s.
    pages: HashMap<String, Cursor>,
    seq: u64,
}

impl SignInState {
    pub(crate) fn role_granted(&self, tenant_key: &str) -> bool {
        self.granted.contains(tenant_key)
    }

    pub(crate) fn set_role(&mut self, tenant_id: &str, granted: bool) {
        crate::graph::set_tenant(&mut self.granted, tenant_id, granted);
    }

    pub(crate) fn set_licensed(&mut self, tenant_id: &str, licensed: bool) {
        crate::graph::set_tenant(&mut self.unlicensed, tenant_id, !licensed);
    }

    /// Adds a sign-in (`signIn` JSON) to the tenant's log.
    pub(crate) fn add(&mut self, tenant_id: &str, sign_in: Value) {
        self.sign_ins.entry(tenant_id.to_ascii_lowercase()).or_default().push(sign_in);
    }

    /// Answers a listing of the caller's sign-ins.
    pub(crate) fn list(
        &mut self,
        caller: Option<Caller>,
        sim_port: Option<u16>,
        raw_query: &str,
        graph_base: &str,
        now: DateTime<Utc>,
    ) -> Response {
        let tenant = match crate::graph::authenticate_directory_read(caller, sim_port, now, SIGN_INS_ROLE) {
            Ok(tenant) => tenant,
            Err(refusal) => return *refusal,
        };
        if self.unlicensed.contains(&tenant) {
            return graph_error(
                StatusCode::FORBIDDEN,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            );
        }
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if let Some((name, _)) =
            params.iter().find(|(k, _)| !matches!(k.trim_start_matches('$').to_ascii_lowercase().as_str(), "top" | "skiptoken" | "filter"))
        {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Query option '{name}' is not supported by this simulator."),
            );
        }
        let (top, mut from, mut to, mut offset) = (
            match option(&params, "top") {
                None => MAX_TOP,
                Some(text) => match text.parse::<usize>() {
                    Ok(n) if (1..=MAX_TOP).contains(&n) => n,
                    _ => {
                        return graph_error(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            &format!("Invalid $top value '{text}': 1 to {MAX_TOP}."),
                        );
                    }
                },
            },
            None,
            None,
            0,
        );
        if let Some(filter) = option(&params, "filter") {
            match parse_filter(&filter) {
                Ok((ge, le)) => (from, to) = (ge, le),
                Err(message) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
            }
        }
        if let Some(token) = option(&params, "skiptoken") {
            match self.pages.get(&token) {
                Some(cursor) if cursor.tenant == tenant && cursor.top == top => {
                    (from, to, offset) = (cursor.bounds.0, cursor.bounds.1, cursor.offset)
                }
                _ => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The $skiptoken is invalid or has expired."),
            }
        }
        let mut items: Vec<Value> = self
            .sign_ins
            .get(&tenant)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|s| {
                let at = created(s);
                from.is_none_or(|ge| at.is_some_and(|at| at >= ge)) && to.is_none_or(|le| at.is_some_and(|at| at <= le))
            })
            .cloned()
            .collect();
        items.sort_by_key(|s| std::cmp::Reverse(created(s)));
        let end = (offset + top).min(items.len());
        let page: Vec<Value> = items.get(offset.min(items.len())..end).unwrap_or_default().to_vec();
        let mut body = json!({"@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns", "value": page});
        if end < items.len() {
            self.seq += 1;
            let token = format!("{:016x}{}", rand_u64(), self.seq);
            self.pages.insert(token.clone(), Cursor { tenant, bounds: (from, to), top, offset: end });
            body["@odata.nextLink"] = json!(format!("{graph_base}{SIGN_INS_PATH}?$top={top}&$skiptoken={token}"));
        }
        json_response(StatusCode::OK, &body)
    }
}

fn created(sign_in: &Value) -> Option<DateTime<Utc>> {
    sign_in.get("createdDateTime").and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// `createdDateTime ge {t}` optionally `and createdDateTime le {t}`.
fn parse_filter(filter: &str) -> Result<Bounds, String> {
    let (mut ge, mut le) = (None, None);
    for clause in filter.split(" and ") {
        let parts: Vec<&str> = clause.split_whitespace().collect();
        let [field, op, value] = parts.as_slice() else { return Err(format!("Invalid filter clause '{clause}'.")) };
        if !field.eq_ignore_ascii_case("createdDateTime") {
            return Err(format!("Filtering on '{field}' is not supported by this simulator."));
        }
        let at = DateTime::parse_from_rfc3339(value).map_err(|_| format!("Invalid date '{value}'."))?.with_timezone(&Utc);
        match op.to_ascii_lowercase().as_str() {
            "ge" => ge = Some(at),
            "le" => le = Some(at),
            other => return Err(format!("Operator '{other}' is not supported on createdDateTime by this simulator.")),
        }
    }
    Ok((ge, le))
}

fn rand_u64() -> u64 {
    let mut buf = [0u8; 8];
    let _ = getrandom::fill(&mut buf);
    u64::from_le_bytes(buf)
}
