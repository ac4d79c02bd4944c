//! Load as Microsoft sees it, per tenant: a slow tenant, a tenant's per-minute quota answered
//! with `429` + `Retry-After` once spent, the requests each tenant made, and how many requests
//! were in flight at once (the concurrency a deployment puts on Microsoft).
//!
//! A layer in front of every token, Management Activity API and Graph route (control routes
//! pass untouched). The tenant is the one in the path (`/login/{tenant}/…`,
//! `/manage/api/v1.0/{tenant}/…`) or, for Graph, the one the bearer token was issued for.
//! Microsoft counts its quota per tenant per minute ("2,000 requests/minute per tenant",
//! `../shared/reference/microsoft-apis.md` §2.6); a spent quota answers the Management API's
//! `429` `AF429` (`Too many requests. Method=…`) or Graph's `429` `TooManyRequests`, each with
//! `Retry-After` in seconds to the minute's end. The token endpoint is not counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use std::sync::Mutex;

use super::state::{Inner, tenant_key};
use super::wire::{af_error, bearer_token, json_response};

/// How one tenant behaves under load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLoad {
    /// Added to every answer for this tenant (after the simulator's own latency).
    pub extra_latency: Duration,
    /// Requests answered per minute before `429` (`None`: unlimited).
    pub per_minute: Option<u32>,
}

/// What the layer has counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests per tenant (lower-cased id), throttled ones included.
    pub requests: HashMap<String, u64>,
    /// Requests answered `429` by a spent quota.
    pub throttled: u64,
    /// The most requests in flight at once.
    pub peak_in_flight: u64,
}

#[derive(Default)]
struct Counters {
    loads: HashMap<String, TenantLoad>,
    /// (tenant, minute) → requests in that minute.
    windows: HashMap<String, (i64, u32)>,
    requests: HashMap<String, u64>,
    throttled: u64,
}

/// The layer's state, one per simulator.
pub(crate) struct LoadState {
    counters: Mutex<Counters>,
    in_flight: AtomicU64,
    peak: AtomicU64,
}

impl Default for LoadState {
    fn default() -> Self {
        Self { counters: Mutex::new(Counters::default()), in_flight: AtomicU64::new(0), peak: AtomicU64::new(0) }
    }
}

impl LoadState {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set(&self, tenant_id: &str, load: TenantLoad) {
        self.counters().loads.insert(tenant_key(tenant_id), load);
    }

    /// The counts so far, and starts counting again from zero.
    pub(crate) fn take_report(&self) -> LoadReport {
        let mut counters = self.counters();
        LoadReport {
            requests: std::mem::take(&mut counters.requests),
            throttled: std::mem::take(&mut counters.throttled),
            peak_in_flight: self.peak.swap(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst),
        }
    }

    /// Counts a request of `tenant`; `Some(wait)` when its quota for the minute is spent.
    fn admit(&self, tenant: &str, counted: bool) -> (TenantLoad, Option<u64>) {
        let mut counters = self.counters();
        *counters.requests.entry(tenant.to_owned()).or_default() += 1;
        let load = counters.loads.get(tenant).copied().unwrap_or_default();
        let Some(quota) = load.per_minute.filter(|_| counted) else { return (load, None) };
        let now = Utc::now().timestamp();
        let minute = now.div_euclid(60);
        let window = counters.windows.entry(tenant.to_owned()).or_insert((minute, 0));
        if window.0 != minute {
            *window = (minute, 0);
        }
        if window.1 >= quota {
            counters.throttled += 1;
            return (load, Some(u64::try_from(60 - now.rem_euclid(60)).unwrap_or(1).max(1)));
        }
        window.1 += 1;
        (load, None)
    }
}

struct InFlight<'a>(&'a LoadState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The tenant a request is for, and whether it counts toward the quota (not the token endpoint).
fn tenant_of(sim: &Inner, request: &Request) -> Option<(String, bool)> {
    let path = request.uri().path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["login", tenant, ..] => Some((tenant_key(tenant), false)),
        ["manage", "api", _, tenant, ..] => Some((tenant_key(tenant), true)),
        ["graph", ..] => {
            let token = bearer_token(request.headers())?;
            sim.lock().tokens.get(token).map(|t| (t.tenant.clone(), true))
        }
        _ => None,
    }
}

fn throttled(path: &str, retry_after: u64) -> Response {
    let mut response = if path.starts_with("/graph") {
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &serde_json::json!({"error": {"code": "TooManyRequests", "message": "Too many requests for this tenant; retry later."}}),
        )
    } else {
        let method = if path.contains("/audit/") { "GetBlob" } else { "GetContents" };
        af_error(StatusCode::TOO_MANY_REQUESTS, "AF429", &format!("Too many requests. Method={method}, PublisherId=tenant-quota"))
    };
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The layer: counts, delays and throttles per tenant, and gauges requests in flight.
pub(super) async fn layer(State(sim): State<Arc<Inner>>, request: Request<Body>, next: Next) -> Response {
    if request.uri().path().starts_with("/_sim") {
        return next.run(request).await;
    }
    let load_state = &sim.load;
    let in_flight = load_state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    load_state.peak.fetch_max(in_flight, Ordering::SeqCst);
    let _gauge = InFlight(load_state);
    let Some((tenant, counted)) = tenant_of(&sim, &request) else { return next.run(request).await };
    let (load, refused) = load_state.admit(&tenant, counted);
    if !load.extra_latency.is_zero() {
        tokio::time::sleep(load.extra_latency).await;
    }
    if let Some(retry_after) = refused {
        sim.delay().await;
        return throttled(request.uri().path(), retry_after);
    }
    next.run(request).await
}
