//! Control endpoints under `/_sim` (no authentication): inspect tickets, arm failures, reset.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::http::{SimRequest, json_response, not_found};
use super::{FailRule, FailureMode, Shared, SimOperation};

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
                        if times > 0 {
                            self.lock().failures.push(FailRule { op, mode, remaining: times });
                        }
                        json_response(StatusCode::OK, &json!({"armed": true}))
                    }
                    Err(e) => control_error(e),
                }
            }
            _ => not_found(&format!("No control endpoint {} {}", req.method, req.path)).into_response(),
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
