//! The Autotask simulator's own control routes (no authentication), next to the kit's shared
//! `/_sim/fail`, `/_sim/reset` and `/_sim/requests`:
//!
//! * `GET /_sim/tickets` → `{"tickets": [{"id", "item", "notes", "merged_into"}]}`;
//! * `POST /_sim/tickets/{id}/complete` `{"by": "Resource name"}` (a new resource when the name
//!   is unknown) or `{"byResourceID": N}` (default: the technician "Alex Tech") → `204`;
//! * `POST /_sim/tickets/{id}/delete` → `204`;
//! * `POST /_sim/tickets/{id}/merge` `{"into": N}` → `204`;
//! * `POST /_sim/threshold` `{"threshold": N}` → `204`;
//! * `POST /_sim/clock/advance` `{"seconds": N}` → `204`;
//! * `POST /_sim/companies` `{"name"}` → `{"id"}`;
//! * `POST /_sim/contacts` `{"companyID", "emailAddress", "firstName", "lastName"}` → `{"id"}`;
//! * `POST /_sim/resources` `{"name"}` (not blank; split into first and last name) → `{"id"}`.
//!
//! An unknown ticket answers `404 {"error"}`, a bad body `400 {"error"}`.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{Shared, SimRequest, json_response};
use crate::kit::control::{control_error, control_ok};

fn not_found(message: &str) -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"error": message}))
}

fn outcome(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) if e.contains("does not exist") => not_found(&e),
        Err(e) => control_error(&e),
    }
}

fn str_member<'a>(body: &'a Value, name: &str) -> Result<&'a str, String> {
    body.get(name).and_then(Value::as_str).ok_or_else(|| format!("\"{name}\" (string) is required"))
}

fn non_blank<'a>(name: &str, value: &'a str) -> Result<&'a str, String> {
    if value.trim().is_empty() { Err(format!("\"{name}\" must not be blank")) } else { Ok(value) }
}

impl Shared {
    pub(crate) fn vendor_control(&self, req: &SimRequest, rest: &[&str]) -> Response {
        let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => return control_error(&format!("body is not JSON: {e}")),
            }
        };
        let post = req.method == Method::POST;
        match rest {
            ["tickets"] if req.method == Method::GET => control_ok(&json!({"tickets": self.snapshot()})),
            ["tickets", id, action] if post => {
                let Ok(id) = id.parse::<i64>() else { return control_error("the ticket id must be an integer") };
                match *action {
                    "complete" => {
                        let by = match (body.get("byResourceID").and_then(Value::as_i64), body.get("by").and_then(Value::as_str)) {
                            (Some(id), _) => Some(id),
                            (None, Some(name)) => Some(self.lock().directory.resource_named(name)),
                            (None, None) => None,
                        };
                        outcome(self.complete_ticket(id, by))
                    }
                    "delete" => outcome(self.delete_ticket(id)),
                    "merge" => match body.get("into").and_then(Value::as_i64) {
                        Some(into) => outcome(self.merge_ticket(id, into)),
                        None => control_error("\"into\" (ticket id) is required"),
                    },
                    other => not_found(&format!("unknown ticket action {other:?}")),
                }
            }
            ["threshold"] if post => match body.get("threshold").and_then(Value::as_u64) {
                Some(n) => {
                    self.lock().threshold = n;
                    StatusCode::NO_CONTENT.into_response()
                }
                None => control_error("\"threshold\" (non-negative integer) is required"),
            },
            ["clock", "advance"] if post => match body.get("seconds").and_then(Value::as_u64) {
                Some(s) => {
                    self.kit.clock.advance(Duration::from_secs(s));
                    StatusCode::NO_CONTENT.into_response()
                }
                None => control_error("\"seconds\" (non-negative integer) is required"),
            },
            ["companies"] if post => match str_member(&body, "name") {
                Ok(name) => control_ok(&json!({"id": self.lock().directory.add_company(name)})),
                Err(e) => control_error(&e),
            },
            ["resources"] if post => match str_member(&body, "name").and_then(|n| non_blank("name", n)) {
                Ok(name) => control_ok(&json!({"id": self.lock().directory.add_resource(name)})),
                Err(e) => control_error(&e),
            },
            ["contacts"] if post => {
                let fields = (|| -> Result<(i64, &str, &str, &str), String> {
                    let company = body.get("companyID").and_then(Value::as_i64).ok_or("\"companyID\" (integer) is required")?;
                    Ok((company, str_member(&body, "emailAddress")?, str_member(&body, "firstName")?, str_member(&body, "lastName")?))
                })();
                match fields {
                    Ok((company, email, first, last)) => {
                        control_ok(&json!({"id": self.lock().directory.add_contact(company, email, first, last)}))
                    }
                    Err(e) => control_error(&e),
                }
            }
            ["contracts"] if post => {
                let day =
                    |name: &str| body.get(name).and_then(Value::as_str).and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                match (str_member(&body, "name"), day("startDate"), day("endDate")) {
                    (Ok(name), Some(start), Some(end)) => {
                        let company = body.get("companyID").and_then(Value::as_i64).unwrap_or(0);
                        let mut state = self.lock();
                        let id = state.contracts.add_contract(name, company, start, end);
                        if let Some(status) = body.get("status").and_then(Value::as_i64) {
                            state.contracts.set_status(id, status);
                        }
                        if let Some(kind) = body.get("contractType").and_then(Value::as_i64) {
                            state.contracts.set_type(id, kind);
                        }
                        control_ok(&json!({"id": id}))
                    }
                    _ => control_error("\"name\", \"startDate\" and \"endDate\" (YYYY-MM-DD) are required"),
                }
            }
            ["contracts", id, "services"] if post => {
                let (Ok(id), Some(service), Some(units)) =
                    (id.parse::<i64>(), body.get("serviceID").and_then(Value::as_i64), body.get("units").and_then(Value::as_i64))
                else {
                    return control_error("a numeric contract id, \"serviceID\" and \"units\" are required");
                };
                match self.lock().contracts.add_service(id, service, units) {
                    Some(line) => control_ok(&json!({"id": line})),
                    None => not_found(&format!("contract {id} does not exist")),
                }
            }
            ["contracts", id, "services", service, "units"] if post => {
                let (Ok(id), Ok(service), Some(units)) =
                    (id.parse::<i64>(), service.parse::<i64>(), body.get("units").and_then(Value::as_i64))
                else {
                    return control_error("numeric contract and service ids and \"units\" are required");
                };
                let day = body
                    .get("effectiveDate")
                    .and_then(Value::as_str)
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .unwrap_or_else(|| self.kit.clock.now().date_naive());
                if self.lock().contracts.set_units_by_hand(id, service, units, day) {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    not_found(&format!("service {service} is not on contract {id}"))
                }
            }
            ["contracts", id, "status"] if post => match (id.parse::<i64>(), body.get("status").and_then(Value::as_i64)) {
                (Ok(id), Some(status)) => {
                    if self.lock().contracts.set_status(id, status) {
                        StatusCode::NO_CONTENT.into_response()
                    } else {
                        not_found(&format!("contract {id} does not exist"))
                    }
                }
                _ => control_error("a numeric contract id and \"status\" are required"),
            },
            ["contracts", id, "adjustments"] if req.method == Method::GET => match id.parse::<i64>() {
                Ok(id) => control_ok(&json!({"adjustments": self.lock().contracts.adjustments(id)})),
                Err(_) => control_error("the contract id must be an integer"),
            },
            _ => not_found(&format!("no control route {} /_sim/{}", req.method, rest.join("/"))),
        }
    }
}
