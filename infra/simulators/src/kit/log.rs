//! The request log and the simulator clock.
//!
//! Every request a simulator receives (control routes excluded) is logged with the
//! simulator's notion of "now" ([`SimClock`]). Tests move the clock forward with
//! [`SimClock::advance`] to show time-based behaviour, such as a rolling-hour request
//! threshold, without waiting.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The simulator's clock: real time plus an offset that only grows.
#[derive(Debug, Default)]
pub struct SimClock {
    offset: Mutex<chrono::Duration>,
}

impl SimClock {
    /// Real time shifted by everything [`advance`](Self::advance)d so far.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the simulator's "now" forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset = offset.checked_add(&by).unwrap_or(chrono::Duration::MAX);
    }
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// Path as received (no query string).
    pub path: String,
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

    /// Appends an entry.
    pub fn record(&self, method: &str, path: &str, timestamp: DateTime<Utc>, operation: &str) {
        self.entries().push(LoggedRequest {
            method: method.to_string(),
            path: path.to_string(),
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
}
