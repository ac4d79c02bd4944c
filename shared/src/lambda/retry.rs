//! Delaying a failed SQS message's next delivery, for every queue consumer: by the remote's
//! `Retry-After` when it gave one, else (for transient failures) by an exponential backoff on
//! the message's receive count, so a dependency that is down for an hour sees a handful of
//! attempts instead of one every visibility timeout, and the message outlives the outage
//! instead of reaching the dead-letter queue.

use super::sqs_batch::MessageOutcome;
use async_trait::async_trait;
use std::time::Duration;

/// Delays a message's next delivery (SQS `ChangeMessageVisibility`).
#[async_trait]
pub trait RetryDelay: Send + Sync {
    /// Makes the message visible again only after `delay`.
    async fn delay(&self, receipt_handle: &str, delay: Duration);
}

/// How long a failed message waits before its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; doubled after each further one.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The tickets queue's: 30 s, 1, 2, 4, 8 min, then 15 min — with the queue's
    /// `maxReceiveCount` of 20, a message survives about four hours of failures.
    pub const TICKETS: Backoff = Backoff { first: Duration::from_secs(30), max: Duration::from_secs(900) };

    /// The wait after the `receive_count`-th failed attempt (1-based).
    #[must_use]
    pub fn after(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(16);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// The delay a failed message should get: the remote's `Retry-After` if it named one, else the
/// backoff for a transient failure; `None` (the queue's own visibility timeout) otherwise.
#[must_use]
pub fn retry_delay_for<T>(outcome: &MessageOutcome<T>, receive_count: u32, backoff: Backoff) -> Option<Duration> {
    match (outcome.failure, outcome.retry_after) {
        (None, _) => None,
        (Some(_), Some(after)) => Some(after.max(Duration::from_secs(1))),
        (Some("transient"), None) => Some(backoff.after(receive_count)),
        (Some(_), None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(class: &'static str, retry_after: Option<Duration>) -> MessageOutcome<()> {
        MessageOutcome { message_id: "m".into(), receipt_handle: Some("r".into()), failure: Some(class), retry_after, value: None }
    }

    #[test]
    fn the_backoff_doubles_from_thirty_seconds_to_fifteen_minutes() {
        let waits: Vec<u64> = (1..=8).map(|n| Backoff::TICKETS.after(n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(Backoff::TICKETS.after(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn twenty_receives_outlive_an_hour_long_outage() {
        let total: Duration = (1..20).map(|n| Backoff::TICKETS.after(n)).sum();
        assert!(total > Duration::from_secs(3 * 3600), "{total:?}");
    }

    #[test]
    fn a_retry_after_wins_and_only_transient_failures_back_off() {
        assert_eq!(retry_delay_for(&failed("transient", Some(Duration::from_secs(7))), 3, Backoff::TICKETS), Some(Duration::from_secs(7)));
        assert_eq!(retry_delay_for(&failed("transient", None), 3, Backoff::TICKETS), Some(Duration::from_secs(120)));
        assert_eq!(retry_delay_for(&failed("permanent", None), 3, Backoff::TICKETS), None);
        let ok = MessageOutcome::<()> { failure: None, ..failed("transient", None) };
        assert_eq!(retry_delay_for(&ok, 3, Backoff::TICKETS), None);
    }
}
