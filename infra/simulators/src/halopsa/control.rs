//! The HaloPSA simulator's own control routes (no authentication), next to the kit's shared
//! `/_sim/fail`, `/_sim/reset` and `/_sim/requests`:
//!
//! * `GET /_sim/tickets` → `{"tickets": [{"id", "item", "actions"}]}`;
//! * `POST /_sim/tickets/{id}/close` `{"by": "Agent name"}` (default "Alex Tech"; a new agent
//!   when the name is unknown) → `204`;
//! * `POST /_sim/tickets/{id}/delete` → `204`;
//! * `POST /_sim/clients` `{"name", "inactive": false}` → `{"id"}`;
//! * `POST /_sim/tokens/expire` → `204` (every token issued so far answers 401 from now on);
//! * `POST /_sim/clock/advance` `{"seconds": N}` → `204`.
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
                    "close" => {
                        let by = body.get("by").and_then(Value::as_str).filter(|b| !b.trim().is_empty()).unwrap_or("Alex Tech");
                        outcome(self.close_as_agent(id, by))
                    }
                    "delete" => outcome(self.delete_ticket(id)),
                    other => not_found(&format!("unknown ticket action {other:?}")),
                }
            }
            ["clients"] if post => match body.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) {
                Some(name) => {
                    let inactive = body.get("inactive").and_then(Value::as_bool).unwrap_or(false);
                    control_ok(&json!({"id": self.lock().directory.add_client(name, inactive)}))
                }
                None => control_error("\"name\" (non-blank string) is required"),
            },
            ["tokens", "expire"] if post => {
                self.lock().tokens.clear();
                StatusCode::NO_CONTENT.into_response()
            }
            ["clock", "advance"] if post => match body.get("seconds").and_then(Value::as_u64) {
                Some(s) => {
                    self.kit.clock.advance(Duration::from_secs(s));
                    StatusCode::NO_CONTENT.into_response()
                }
                None => control_error("\"seconds\" (non-negative integer) is required"),
            },
            _ => not_found(&format!("no control route {} /_sim/{}", req.method, rest.join("/"))),
        }
    }
}
