//! The request threshold: Autotask allows 10,000 requests per rolling 60 minutes per database
//! (settable per simulator with [`AutotaskSimHandle::set_threshold`]), and reports usage at
//! `GET /V1.0/ThresholdInformation` →
//! `{"externalRequestThreshold": N, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": M}`.
//!
//! Usage is counted from the request log over the hour before the simulator's clock (which tests
//! move with [`AutotaskSimHandle::advance_clock`]): every authenticated API request counts,
//! including `ThresholdInformation` itself; zone discovery, refused (401, over-threshold) and
//! control requests do not. When the count has reached the threshold, the request is refused
//! **before** authentication-dependent work with `429 Too Many Requests`,
//! `Retry-After: {seconds until the oldest counted request leaves the window}` and
//! `{"errors": ["The request threshold of N requests per 60 minutes has been exceeded …"]}`.
//! This status and body are the simulator's choice: the reference confirms the rolling limit but
//! not the exact refusal. The latency Autotask adds past 50 % and 75 % of the threshold is not
//! simulated.
//!
//! [`AutotaskSimHandle::set_threshold`]: super::AutotaskSimHandle::set_threshold
//! [`AutotaskSimHandle::advance_clock`]: super::AutotaskSimHandle::advance_clock

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use serde_json::{Value, json};

use super::AutotaskOperation;
use super::server::{ApiError, LABEL_THRESHOLD, LABEL_UNAUTHORIZED, LABEL_UNKNOWN, LABEL_VERSION, LABEL_ZONE, Shared};
use crate::kit::{Kit, LoggedRequest};

/// The window, in minutes, as `requestThresholdTimeframe` reports it.
pub const TIMEFRAME_MINUTES: i64 = 60;

fn counted(r: &LoggedRequest) -> bool {
    ![LABEL_UNAUTHORIZED, LABEL_THRESHOLD, LABEL_ZONE, LABEL_VERSION, LABEL_UNKNOWN].contains(&r.operation.as_str())
}

/// Requests counted in the current rolling window.
pub(crate) fn current_count(kit: &Kit<AutotaskOperation>) -> u64 {
    kit.log.count_since(kit.clock.now() - TimeDelta::minutes(TIMEFRAME_MINUTES), counted)
}

/// `GET /V1.0/ThresholdInformation`.
pub(crate) fn information(shared: &Shared) -> Value {
    let threshold = shared.lock().threshold;
    json!({
        "externalRequestThreshold": threshold,
        "requestThresholdTimeframe": TIMEFRAME_MINUTES,
        "currentTimeframeRequestCount": current_count(&shared.kit),
    })
}

/// The refusal to answer when the threshold is reached, if it is.
pub(crate) fn refusal(shared: &Shared) -> Option<Response> {
    let threshold = shared.lock().threshold;
    let count = current_count(&shared.kit);
    if count < threshold {
        return None;
    }
    let now = shared.kit.clock.now();
    let window_start = now - TimeDelta::minutes(TIMEFRAME_MINUTES);
    let oldest = shared.kit.log.requests().into_iter().filter(|r| r.timestamp >= window_start && counted(r)).map(|r| r.timestamp).min();
    let retry_after = oldest.map_or(1, |t| (t - window_start).num_seconds().max(0) + 1);
    let message = format!(
        "The request threshold of {threshold} requests per {TIMEFRAME_MINUTES} minutes has been exceeded ({count} requests in the current timeframe); requests are refused until usage drops below the threshold."
    );
    let mut resp = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}
