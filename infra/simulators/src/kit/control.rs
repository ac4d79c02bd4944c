//! The control routes every simulator shares, served without authentication under `/_sim`:
//!
//! * `POST /_sim/fail` `{"operation": "create_ticket", "mode": "status"|"after_commit"|
//!   "throttle"|"hang_after_commit"|"latency", "status": 503, "times": 1, "retry_after": 1,
//!   "seconds": 30, "ms": 250}` arms a failure (`status` for `status`/`after_commit`, default
//!   500; `retry_after` for `throttle`, default 1; `seconds` for `hang_after_commit`, default
//!   30; `ms` for `latency`, default 1000; `times` default 1) → `204`;
//! * `POST /_sim/reset` forgets armed failures, the request log and the vendor's state → `204`;
//! * `GET /_sim/requests` → `{"requests": [{"method","path","timestamp","operation"}], "count": N}`.
//!
//! Errors in a control request answer `400 {"error": "..."}`.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{FailureMode, Kit, Operation, RequestLog};

/// A parsed `POST /_sim/fail` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailRequest<O> {
    /// Which operation fails.
    pub operation: O,
    /// How.
    pub mode: FailureMode,
    /// For how many requests.
    pub times: u32,
}

fn number(body: &Value, key: &str, default: u64) -> Result<u64, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| format!("{key:?} must be a non-negative integer")),
    }
}

/// Parses a `POST /_sim/fail` body (see the module docs).
pub fn parse_fail_request<O: Operation>(body: &Value) -> Result<FailRequest<O>, String> {
    let name = body.get("operation").and_then(Value::as_str).ok_or("\"operation\" (string) is required")?;
    let operation = O::from_name(name).ok_or_else(|| format!("unknown operation {name:?}"))?;
    let mode_name = body.get("mode").and_then(Value::as_str).unwrap_or("status").to_ascii_lowercase();
    let status = || -> Result<u16, String> {
        let s = number(body, "status", 500)?;
        u16::try_from(s).ok().filter(|s| (100..=599).contains(s)).ok_or_else(|| format!("status {s} is not an HTTP status"))
    };
    let mode = match mode_name.as_str() {
        "status" => FailureMode::Status(status()?),
        "after_commit" => FailureMode::AfterCommit(status()?),
        "throttle" => FailureMode::Throttle { retry_after: u32::try_from(number(body, "retry_after", 1)?).unwrap_or(u32::MAX) },
        "hang_after_commit" => FailureMode::HangAfterCommit(u16::try_from(number(body, "seconds", 30)?).unwrap_or(u16::MAX)),
        "latency" => FailureMode::Latency(number(body, "ms", 1000)?),
        other => return Err(format!("unknown mode {other:?}")),
    };
    let times = u32::try_from(number(body, "times", 1)?).unwrap_or(u32::MAX);
    Ok(FailRequest { operation, mode, times })
}

fn control_json(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `400 {"error": message}`.
pub fn control_error(message: &str) -> Response {
    control_json(StatusCode::BAD_REQUEST, &json!({"error": message}))
}

/// A JSON control answer.
pub fn control_ok(body: &Value) -> Response {
    control_json(StatusCode::OK, body)
}

/// The `GET /_sim/requests` answer: `{"requests": [...], "count": N}`.
pub fn requests_response(log: &RequestLog) -> Response {
    let requests = log.requests();
    let count = requests.len();
    control_ok(&json!({"requests": requests, "count": count}))
}

impl<O: Operation> Kit<O> {
    /// Answers the shared control routes. `rest` is the path below `/_sim` split on `/`;
    /// `reset_vendor` forgets the vendor's own state on `POST /_sim/reset`. Returns `None` for
    /// a route the kit does not know (the vendor's own control routes).
    pub fn control(&self, method: &Method, rest: &[&str], body: &[u8], reset_vendor: impl FnOnce()) -> Option<Response> {
        match (method.as_str(), rest) {
            ("POST", ["fail"]) => {
                let parsed = serde_json::from_slice::<Value>(body).map_err(|e| format!("body is not JSON: {e}"));
                Some(match parsed.and_then(|b| parse_fail_request::<O>(&b)) {
                    Ok(req) => {
                        self.faults.arm(req.operation, req.mode, req.times);
                        StatusCode::NO_CONTENT.into_response()
                    }
                    Err(e) => control_error(&e),
                })
            }
            ("POST", ["reset"]) => {
                self.reset();
                reset_vendor();
                Some(StatusCode::NO_CONTENT.into_response())
            }
            ("GET", ["requests"]) => Some(requests_response(&self.log)),
            _ => None,
        }
    }
}
