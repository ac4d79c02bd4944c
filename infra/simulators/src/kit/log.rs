//! The request log and the simulator clock.
//!
//! Every request a simulator receives (control routes excluded) is logged with the
//! simulator's notion of "now" ([`SimClock`]). Tests move the clock forward with
//! [`SimClock::advance`] (or speed up with [`SimClock::set_scale`]) to show time-based
//! behaviour, such as a rolling-hour request threshold, without waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The simulator's clock: starts at real time, runs at `scale` × real speed (1 by default) and
/// can be moved forward at once.
#[derive(Debug)]
pub struct SimClock {
    state: Mutex<ClockState>,
}

#[derive(Debug, Clone, Copy)]
struct ClockState {
    /// Simulated time at `anchor_real`.
    anchor_sim: DateTime<Utc>,
    anchor_real: Instant,
    scale: f64,
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock { state: Mutex::new(ClockState { anchor_sim: Utc::now(), anchor_real: Instant::now(), scale: 1.0 }) }
    }
}

impl ClockState {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.anchor_real.elapsed().as_secs_f64() * self.scale;
        let elapsed = chrono::Duration::from_std(Duration::from_secs_f64(elapsed.clamp(0.0, 1e12))).unwrap_or(chrono::Duration::MAX);
        self.anchor_sim.checked_add_signed(elapsed).unwrap_or(self.anchor_sim)
    }
}

impl SimClock {
    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulator's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.state().now()
    }

    /// Moves the simulator's "now" forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut state = self.state();
        state.anchor_sim = state.anchor_sim.checked_add_signed(by).unwrap_or(state.anchor_sim);
    }

    /// From now on, simulated time runs `scale` times as fast as real time (e.g. 60: a
    /// simulated hour per real minute; 0 freezes the clock). Negative or non-finite values count
    /// as 0.
    pub fn set_scale(&self, scale: f64) {
        let mut state = self.state();
        let now = state.now();
        *state = ClockState { anchor_sim: now, anchor_real: Instant::now(), scale: if scale.is_finite() { scale.max(0.0) } else { 0.0 } };
    }
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// Path as received (no query string).
    pub path: String,
    /// Raw query string without `?`, when the vendor keeps it (empty otherwise; not serialized
    /// when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// When it arrived, on the simulator's clock.
    pub timestamp: DateTime<Utc>,
    /// The vendor's operation name (`create_ticket`, …), or a marker such as `unauthorized`
    /// for requests that never reached an operation.
    pub operation: String,
}

/// The request log.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<Vec<LoggedRequest>>,
}

impl RequestLog {
    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<LoggedRequest>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an entry (without a query string).
    pub fn record(&self, method: &str, path: &str, timestamp: DateTime<Utc>, operation: &str) {
        self.record_with_query(method, path, "", timestamp, operation);
    }

    /// Appends an entry that keeps the raw query string.
    pub fn record_with_query(&self, method: &str, path: &str, query: &str, timestamp: DateTime<Utc>, operation: &str) {
        self.entries().push(LoggedRequest {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            timestamp,
            operation: operation.to_string(),
        });
    }

    /// Changes the operation of the most recent entry (a request whose operation is only known
    /// after routing, or that ended up refused).
    pub fn relabel_last(&self, operation: &str) {
        if let Some(last) = self.entries().last_mut() {
            last.operation = operation.to_string();
        }
    }

    /// A snapshot, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.entries().clone()
    }

    /// Number of logged requests.
    pub fn request_count(&self) -> u64 {
        self.entries().len() as u64
    }

    /// Number of entries at or after `since` for which `counts` holds.
    pub fn count_since(&self, since: DateTime<Utc>, counts: impl Fn(&LoggedRequest) -> bool) -> u64 {
        self.entries().iter().filter(|r| r.timestamp >= since && counts(r)).count() as u64
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward_and_the_log_counts_a_window() {
        let clock = SimClock::default();
        let log = RequestLog::default();
        let start = clock.now();
        log.record("GET", "/a", clock.now(), "read");
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() - start >= chrono::Duration::seconds(3600));
        log.record("POST", "/b", clock.now(), "create");
        log.record("POST", "/c", clock.now(), "refused");
        log.relabel_last("unauthorized");
        let since = clock.now() - chrono::Duration::minutes(1);
        assert_eq!(log.count_since(since, |_| true), 2);
        assert_eq!(log.count_since(since, |r| r.operation != "unauthorized"), 1);
        assert_eq!(log.request_count(), 3);
        assert_eq!(log.requests()[0].path, "/a");
        log.clear();
        assert_eq!(log.request_count(), 0);
    }

    #[test]
    fn a_scaled_clock_runs_faster_and_a_frozen_one_stands_still() {
        let clock = SimClock::default();
        clock.set_scale(0.0);
        let frozen = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), frozen);
        clock.set_scale(3600.0);
        std::thread::sleep(Duration::from_millis(50));
        assert!(clock.now() - frozen >= chrono::Duration::seconds(150), "50 ms at 3600x is 3 simulated minutes");
    }
}
