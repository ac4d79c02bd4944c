//! The Tigerpaw simulator's own control routes (no authentication), next to the kit's shared
//! `/_sim/fail`, `/_sim/reset` and `/_sim/requests` — what a user does in the Tigerpaw GUI:
//!
//! * `GET /_sim/orders` → `{"orders": [{"number", "summary", "notes", "locked_by"}]}`;
//! * `POST /_sim/orders/{n}/complete` `{"rep": "Jane Smith"}` (default "Alex Tech"; a rep is
//!   added when the name is unknown) → `204`;
//! * `POST /_sim/orders/{n}/delete` → `204`;
//! * `POST /_sim/orders/{n}/lock` `{"rep": "Jane Smith"}` (default "Alex Tech") and
//!   `POST /_sim/orders/{n}/unlock` → `204`;
//! * `POST /_sim/accounts` `{"name"}` → `{"AccountNumber"}`;
//! * `POST /_sim/contacts` `{"AccountNumber", "EmailAddress", "FirstName", "LastName"}` →
//!   `{"ContactNumber"}`;
//! * `POST /_sim/auth` `{"form": "tsi" | "basic"}` → `204` (the form accepted from now on).
//!
//! An unknown order answers `404 {"error"}`, a bad body `400 {"error"}`.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AuthForm;
use super::server::{Shared, SimRequest, json_response};
use crate::kit::control::{control_error, control_ok};

const DEFAULT_REP: &str = "Alex Tech";

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

fn text<'a>(body: &'a Value, name: &str) -> Result<&'a str, String> {
    body.get(name).and_then(Value::as_str).filter(|v| !v.trim().is_empty()).ok_or_else(|| format!("\"{name}\" (text) is required"))
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
        let rep = body.get("rep").and_then(Value::as_str).filter(|r| !r.trim().is_empty()).unwrap_or(DEFAULT_REP);
        match rest {
            ["orders"] if req.method == Method::GET => control_ok(&json!({"orders": self.snapshot()})),
            ["orders", number, action] if post => {
                let Ok(number) = number.parse::<i64>() else { return control_error("the order number must be an integer") };
                match *action {
                    "complete" => outcome(self.complete_order(number, rep)),
                    "delete" => outcome(self.delete_order(number)),
                    "lock" => outcome(self.lock_order(number, Some(rep))),
                    "unlock" => outcome(self.lock_order(number, None)),
                    other => not_found(&format!("unknown order action {other:?}")),
                }
            }
            ["accounts"] if post => match text(&body, "name") {
                Ok(name) => control_ok(&json!({"AccountNumber": self.lock().tables.add_account(name)})),
                Err(e) => control_error(&e),
            },
            ["contacts"] if post => {
                let fields = (|| -> Result<(i64, &str, &str, &str), String> {
                    let account = body.get("AccountNumber").and_then(Value::as_i64).ok_or("\"AccountNumber\" (integer) is required")?;
                    Ok((account, text(&body, "EmailAddress")?, text(&body, "FirstName")?, text(&body, "LastName")?))
                })();
                match fields {
                    Ok((account, email, first, last)) => {
                        control_ok(&json!({"ContactNumber": self.lock().tables.add_contact(account, email, first, last)}))
                    }
                    Err(e) => control_error(&e),
                }
            }
            ["auth"] if post => match body.get("form").and_then(Value::as_str).and_then(AuthForm::parse) {
                Some(form) => {
                    self.lock().auth_form = form;
                    StatusCode::NO_CONTENT.into_response()
                }
                None => control_error("\"form\" must be \"tsi\" or \"basic\""),
            },
            _ => not_found(&format!("no control route {} /_sim/{}", req.method, rest.join("/"))),
        }
    }
}
