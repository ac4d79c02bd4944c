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
//! * `POST /_sim/contacts` `{"companyID", "emailAddress", "firstName", "lastName"}` → `{"id"}`.
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
            _ => not_found(&format!("no control route {} /_sim/{}", req.method, rest.join("/"))),
        }
    }
}
