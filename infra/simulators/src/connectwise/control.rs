//! Control endpoints under `/_sim` (no authentication): inspect tickets, arm failures, reset,
//! and act as a technician:
//!
//! * `GET /_sim/tickets` — the stored tickets (`[{id, body, notes}]`);
//! * `POST /_sim/fail` `{"operation","mode","status","times","seconds"}`;
//! * `POST /_sim/reset`;
//! * `POST /_sim/tickets/{id}/close` `{"by":"jsmith","status_id":99}` (`status_id` optional) →
//!   `200` with the ticket; `…/reopen` `{"by","status_id"}` → `200` with the ticket;
//!   `…/delete` `{"by"}` → `200 {"deleted": id}`; `…/merge` `{"into": N, "by"}` →
//!   `200 {"merged": id, "into": N}`. `by` defaults to `admin1`. An unknown ticket answers
//!   `404 {"error"}`, anything else wrong `400 {"error"}`;
//! * `POST /_sim/companies` `{"identifier","name"}` → `200 {"id"}`; `POST /_sim/contacts`
//!   `{"company_id","first_name","last_name","email"}` → `200 {"id"}` (the handle's
//!   `add_company` / `add_contact`);
//! * `POST /_sim/agreements/{id}/additions/{additionId}/quantity` `{"quantity": N}` → `200`, an
//!   addition's quantity edited by hand (`404 {"error"}` when there is no such addition);
//! * `GET /_sim/callback-deliveries` — every callback delivery attempted so far;
//! * `GET /_sim/requests` — the kit's request log, `{"requests": [{"method","path","timestamp",
//!   "operation"}], "count": N}`.
//!
//! `/_sim/fail` and `/_sim/reset` stay here rather than being the kit's: they answer `200` with a
//! body (`{"armed": true}`, `{"reset": true}`) where the kit answers `204`, `operation` defaults to
//! `any` and `hang_after_commit` to 60 s, and a throttle has no `retry_after`; the armed failures
//! go to the kit's fault plan.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::http::{SimRequest, json_response, not_found};
use super::technician::ActionError;
use super::{FailureMode, Shared, SimOperation};
use crate::kit::control::requests_response;

impl Shared {
    pub(super) fn control(&self, req: &SimRequest, segments: &[&str]) -> Response {
        let control_error = |msg: String| json_response(StatusCode::BAD_REQUEST, &json!({"error": msg}));
        match (req.method.clone(), segments) {
            (Method::GET, ["tickets"]) => {
                let tickets = self.lock().snapshot();
                json_response(StatusCode::OK, &serde_json::to_value(tickets).unwrap_or(Value::Null))
            }
            (Method::POST, ["reset"]) => {
                self.reset();
                json_response(StatusCode::OK, &json!({"reset": true}))
            }
            (Method::POST, ["fail"]) => {
                let body: Value = match serde_json::from_slice(&req.body) {
                    Ok(v) => v,
                    Err(e) => return control_error(format!("body is not JSON: {e}")),
                };
                match parse_fail_request(&body) {
                    Ok((op, mode, times)) => {
                        self.kit.faults.arm(op, mode, times);
                        json_response(StatusCode::OK, &json!({"armed": true}))
                    }
                    Err(e) => control_error(e),
                }
            }
            (Method::POST, ["companies"]) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                match (body.get("identifier").and_then(Value::as_str), body.get("name").and_then(Value::as_str)) {
                    (Some(identifier), Some(name)) => json_response(StatusCode::OK, &json!({"id": self.add_company(identifier, name)})),
                    _ => control_error("expected {\"identifier\": \"…\", \"name\": \"…\"}".to_string()),
                }
            }
            (Method::POST, ["contacts"]) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let text = |k: &str| body.get(k).and_then(Value::as_str);
                match (body.get("company_id").and_then(Value::as_i64), text("first_name"), text("last_name"), text("email")) {
                    (Some(company), Some(first), Some(last), Some(email)) => {
                        json_response(StatusCode::OK, &json!({"id": self.add_contact(company, first, last, email)}))
                    }
                    _ => control_error("expected {\"company_id\", \"first_name\", \"last_name\", \"email\"}".to_string()),
                }
            }
            (Method::GET, ["requests"]) => requests_response(&self.kit.log),
            (Method::GET, ["callback-deliveries"]) => {
                let log = self.outbox.log().clone();
                json_response(StatusCode::OK, &serde_json::to_value(log).unwrap_or(Value::Null))
            }
            (Method::POST, ["agreements", agreement, "additions", addition, "quantity"]) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                match (agreement.parse::<i64>(), addition.parse::<i64>(), body.get("quantity").and_then(Value::as_f64)) {
                    (Ok(agreement), Ok(addition), Some(quantity)) => {
                        if self.set_addition_quantity_by_hand(agreement, addition, quantity) {
                            json_response(StatusCode::OK, &json!({"quantity": quantity}))
                        } else {
                            json_response(
                                StatusCode::NOT_FOUND,
                                &json!({"error": format!("no addition {addition} on agreement {agreement}")}),
                            )
                        }
                    }
                    _ => control_error("expected integer ids and {\"quantity\": N}".to_string()),
                }
            }
            (Method::POST, ["tickets", id, action]) => match id.parse::<i64>() {
                Ok(id) => self.technician_route(req, id, action),
                Err(_) => control_error(format!("ticket id must be an integer, got {id:?}")),
            },
            _ => not_found(&format!("No control endpoint {} {}", req.method, req.path)).into_response(),
        }
    }

    fn technician_route(&self, req: &SimRequest, id: i64, action: &str) -> Response {
        let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => return json_response(StatusCode::BAD_REQUEST, &json!({"error": format!("body is not JSON: {e}")})),
            }
        };
        let by = body.get("by").and_then(Value::as_str).unwrap_or("admin1").to_string();
        let status_id = body.get("status_id").and_then(Value::as_i64);
        let mut state = self.lock();
        let done = match action {
            "close" => self.technician_close(&mut state, id, &by, status_id),
            "reopen" => self.technician_reopen(&mut state, id, &by, status_id),
            "delete" => self.technician_delete(&mut state, id, &by).map(|()| json!({"deleted": id})),
            "merge" => match body.get("into").and_then(Value::as_i64) {
                Some(into) => self.technician_merge(&mut state, id, into, &by).map(|()| json!({"merged": id, "into": into})),
                None => Err(ActionError::Invalid("merge needs {\"into\": <ticket id>}".to_string())),
            },
            other => Err(ActionError::Invalid(format!("unknown ticket action {other:?} (close, reopen, delete, merge)"))),
        };
        match done {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e @ ActionError::NotFound(_)) => json_response(StatusCode::NOT_FOUND, &json!({"error": e.message()})),
            Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e.message()})),
        }
    }
}

pub(super) fn parse_fail_request(body: &Value) -> Result<(SimOperation, FailureMode, u32), String> {
    let op_name = body.get("operation").and_then(Value::as_str).unwrap_or("any");
    let op = SimOperation::from_name(op_name).ok_or_else(|| format!("unknown operation {op_name:?}"))?;
    let status = match body.get("status") {
        None | Some(Value::Null) => 500,
        Some(v) => v
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(|| format!("status must be an HTTP status code, got {v}"))?,
    };
    let mode_name = body.get("mode").and_then(Value::as_str).unwrap_or("status");
    let mode = match mode_name.to_ascii_lowercase().as_str() {
        "status" => FailureMode::Status(status),
        "after_commit" => FailureMode::AfterCommit(status),
        "throttle" => FailureMode::Throttle,
        "hang_after_commit" => {
            FailureMode::HangAfterCommit(body.get("seconds").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()).unwrap_or(60))
        }
        other => {
            return Err(format!("unknown mode {other:?} (status, after_commit, hang_after_commit, throttle)"));
        }
    };
    let times = match body.get("times") {
        None | Some(Value::Null) => 1,
        Some(v) => {
            v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| format!("times must be a non-negative integer, got {v}"))?
        }
    };
    Ok((op, mode, times))
}
