//! Per-MSP fairness on the tickets queue: one MSP's storm does not delay another MSP's tickets.
//!
//! All MSPs share one tickets queue and the dispatcher's `MaximumConcurrency`. Without a limit
//! an MSP whose tenants raise thousands of alerts at once fills every batch until its backlog
//! is gone, and another MSP's ticket waits behind all of it. So each MSP has a share of
//! deliveries per minute ([`MspShare::per_minute`]), counted across every dispatcher instance
//! by the [`RateLimiter`] (on DynamoDB, one conditional `ADD` per delivery). A delivery over
//! its MSP's share is not made: it goes back on the queue as a new message delayed past the
//! minute (spread over the next minute; a new message, so waiting never counts toward the
//! queue's receive limit), and the batch slot serves whoever is next. An MSP under its share
//! is never held back, so a quiet MSP's ticket waits only for what is in flight.
//!
//! Only deliveries to a destination count (the messages that call a PSA); fan-outs, PSA
//! callbacks and billing jobs pass. The share is not work-conserving: a storming MSP alone is
//! still held to its share, which also keeps its PSA inside typical vendor limits.

use super::{DispatchError, DispatchOutcome, DispatchService};
use crate::ids::MspId;
use crate::messages::AlertChangedMessage;
use crate::ports::{RateDecision, RateLimiter};
use std::sync::Arc;

/// The route class the deliveries are counted under.
pub const DELIVERIES: &str = "deliveries";
/// How far deferred deliveries are spread beyond the minute's end (over one more minute, so
/// a storm's backlog comes back at about its share and not all at once).
const SPREAD: std::time::Duration = std::time::Duration::from_secs(60);
/// The caller the deliveries are counted as.
const DISPATCHER: &str = "ticket-dispatcher";

/// Each MSP's share of the dispatcher.
#[derive(Clone)]
pub struct MspShare {
    pub limiter: Arc<dyn RateLimiter>,
    /// Deliveries one MSP may make per minute, across all instances.
    pub per_minute: u32,
}

impl std::fmt::Debug for MspShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MspShare").field("per_minute", &self.per_minute).finish_non_exhaustive()
    }
}

/// The MSP whose delivery `body` is, if it is a delivery.
fn delivery_of(body: &str) -> Option<MspId> {
    match serde_json::from_str::<AlertChangedMessage>(body) {
        Ok(AlertChangedMessage { msp_id, destination: Some(_), .. }) => Some(msp_id),
        _ => None,
    }
}

impl DispatchService {
    /// [`Self::handle`] within the MSP's share (`None`: no share, every message handled).
    ///
    /// # Errors
    /// As [`Self::handle`]; a share that cannot be counted is a transient store error.
    pub async fn handle_within_share(&self, share: Option<&MspShare>, body: &str) -> Result<DispatchOutcome, DispatchError> {
        if let (Some(share), Some(msp_id)) = (share, delivery_of(body)) {
            let now = self.clock.now();
            let window = chrono::Duration::minutes(1);
            if let RateDecision::Limited { retry_after } =
                share.limiter.admit(&msp_id, DISPATCHER, DELIVERIES, share.per_minute, window, now).await?
            {
                tracing::info!(message = "Delivery over its MSP's share of the dispatcher; deferred.", msp_id = %msp_id);
                return self.defer_spread(body, retry_after, SPREAD).await;
            }
        }
        self.handle(body).await
    }
}

#[cfg(test)]
#[path = "fairness_tests.rs"]
mod tests;
