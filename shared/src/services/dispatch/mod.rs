//! Dispatching alerts to their destinations, exactly once per (alert change, destination), and
//! reading ticket states back.
//!
//! * An alert change without a destination is **fanned out**: one message per destination the
//!   alert goes to (the policy's choice and each destination's routing, plus every destination
//!   that already holds a ticket for it), so a PSA that is down never delays another.
//! * A change for one destination is **delivered** by [`deliver`]: the ticket is created,
//!   noted, closed, or replaced by a new one, with each effect recorded as intent before and
//!   outcome after in the (alert, destination) delivery record.
//! * A change for a destination that does not keep tickets (chat, webhook, e-mail) is
//!   **posted** by [`post`]: one message per change, its id recorded as intent before and the
//!   change as posted after.
//! * The **read-back** ([`readback`]) asks each PSA for the state of the tickets Vigil thinks
//!   are open, in batches: a ticket closed in the PSA resolves the alert (with who and when in
//!   its history), a ticket that is gone is recorded and the next hit opens a new one.
//! * A **billing sync job** ([`crate::messages::BillingSyncJob`], sent by the poller after a
//!   tenant's daily count on a day the MSP's schedule makes a sync due) runs the billing sync
//!   of that tenant's mappings ([`crate::services::billing_sync`]) here, where the PSA
//!   credentials are; a mapping's period is synced once however often the job is delivered.
//! * A destination that refuses Vigil's credentials raises Vigil's own alert once per episode,
//!   cleared by its next answer ([`credentials`]).

pub mod credentials;
mod deliver;
pub mod fairness;
mod post;
#[cfg(test)]
mod post_tests;
pub mod readback;
#[cfg(test)]
mod tests;

use crate::clock::Clock;
use crate::destination::{Destination, destinations_for};
use crate::error::{Classified, ErrorClass, SinkError, StoreError};
use crate::ids::{AlertId, DestinationId, MspId};
use crate::messages::{AlertChangedMessage, BillingSyncJob, TicketChangedMessage};
use crate::ports::{AlertStore, ConfigStore, DestinationStore, MessageQueue, PolicyStore, SinkSetupError, TicketSystemProvider};
use crate::services::billing_sync::{BillingSyncError, BillingSyncService};
use crate::ticket::TicketRef;
use chrono::Duration;
use std::sync::Arc;

/// Why an alert could not be dispatched (this time).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("tickets message is malformed: {0}")]
    MalformedMessage(String),
    #[error("alert {0} does not exist")]
    UnknownAlert(String),
    #[error("tenant {0} is not registered")]
    UnknownTenant(String),
    #[error("another invocation is delivering alert {0}")]
    Busy(String),
    #[error(transparent)]
    Setup(#[from] SinkSetupError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not enqueue deliveries: {0}")]
    Queue(#[from] crate::error::QueueError),
    /// A billing sync job reached a dispatcher built without the billing sync.
    #[error("this dispatcher does not run billing syncs")]
    BillingSyncUnavailable,
    #[error("billing sync: {0}")]
    BillingSync(#[from] BillingSyncError),
}

impl Classified for DispatchError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::MalformedMessage(_) => ErrorClass::Invalid,
            Self::UnknownAlert(_) | Self::UnknownTenant(_) => ErrorClass::Permanent,
            Self::Busy(_) => ErrorClass::Transient,
            Self::Setup(SinkSetupError::NotConfigured(_)) => ErrorClass::Permanent,
            Self::Setup(SinkSetupError::Store(e)) => e.class(),
            Self::Setup(SinkSetupError::Secret(e)) => e.class(),
            Self::Sink(e) => e.class(),
            Self::Store(StoreError::Conflict { .. }) => ErrorClass::Transient,
            Self::Store(e) => e.class(),
            Self::Queue(e) => e.class(),
            Self::BillingSyncUnavailable => ErrorClass::Permanent,
            Self::BillingSync(e) => e.class(),
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Sink(e) => e.retry_after(),
            Self::BillingSync(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// What dispatching did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// The change was split into this many per-destination deliveries.
    FannedOut(usize),
    /// A new ticket was created.
    TicketCreated(TicketRef),
    /// A ticket created by an earlier, interrupted attempt was found and recorded.
    TicketRecovered(TicketRef),
    /// The ticket was finished (closed or gone) and the alert had new hits: a new ticket that
    /// names the earlier one was created.
    TicketReplaced { earlier: TicketRef, ticket: TicketRef },
    /// A note about new hits was added.
    NoteAdded(TicketRef),
    /// The alert is resolved: its ticket got the resolution note and was closed.
    TicketClosed(TicketRef),
    /// The ticket was deleted or merged in the PSA: recorded; the next hit opens a new one.
    TicketGone(TicketRef),
    /// Nothing to do: the ticket already describes the alert (or the alert resolved before it
    /// ever needed one).
    UpToDate,
    /// No ticket: the policy's daily ticket limit for the tenant is used up by other alerts.
    HeldByDailyLimit,
    /// No ticket yet: the tenant has no company in this destination, which holds such alerts
    /// until the tenant is linked.
    HeldUntilLinked,
    /// No ticket: the alert's policy runs in shadow mode.
    Shadow,
    /// No ticket: a suppression rule created after the alert was raised covers it.
    Suppressed,
    /// The destination was deleted or disabled since the change was announced.
    DestinationUnavailable,
    /// A message about this change of the alert was posted to a channel destination.
    MessagePosted(crate::channel::AlertChange),
    /// An earlier post of this change got no answer and the channel cannot de-duplicate: it is
    /// not posted again (it may or may not have arrived) and counted as uncertain.
    MessageUncertain(crate::channel::AlertChange),
    /// A ticket's state was read back (from a PSA callback).
    StatesRead(readback::ReadBackReport),
    /// The destination's hourly request share is used up: the delivery was put back on the
    /// queue as a new message that becomes visible after this delay (waiting for the share never
    /// counts toward the dead-letter queue's receive limit).
    Deferred(std::time::Duration),
    /// A billing sync job ran: the period synced and how many mappings Vigil set this time.
    BillingSynced { period: String, set: usize },
}

/// Tunables of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// How long one invocation owns a delivery; at least the function timeout.
    pub lease: Duration,
    /// Vigil's API address, for links in tickets (`None`: no links).
    pub api_base: Option<String>,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self { lease: Duration::seconds(60), api_base: None }
    }
}

/// The dispatch use case.
pub struct DispatchService {
    pub config: Arc<dyn ConfigStore>,
    pub destinations: Arc<dyn DestinationStore>,
    pub alerts: Arc<dyn AlertStore>,
    /// Suppression rules, checked before an alert's first ticket.
    pub policies: Arc<dyn PolicyStore>,
    pub systems: Arc<dyn TicketSystemProvider>,
    /// The tickets queue itself: where fanned-out deliveries go.
    pub tickets: Arc<dyn MessageQueue>,
    /// The billing sync the poller's billing sync jobs run (`None`: such jobs dead-letter).
    pub billing_sync: Option<Arc<BillingSyncService>>,
    /// Watches the destinations' answers for refused credentials (`None`: not watched).
    pub credentials: Option<credentials::CredentialsWatch>,
    pub clock: Arc<dyn Clock>,
    pub settings: DispatchSettings,
}

/// How far deferred deliveries are spread beyond the share's own wait.
pub const DEFER_SPREAD: std::time::Duration = std::time::Duration::from_secs(300);

/// A spread in `[0, DEFER_SPREAD)` that differs between messages and between attempts, without
/// a random source (so tests replay).
fn deterministic_spread(body: &str, now: i64) -> std::time::Duration {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(body.as_bytes()).chain_update(now.to_be_bytes()).finalize();
    let n = u64::from_be_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]]);
    std::time::Duration::from_secs(n % DEFER_SPREAD.as_secs())
}

/// A message of the tickets queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
enum TicketsMessage {
    Alert(AlertChangedMessage),
    Ticket(TicketChangedMessage),
    Billing(BillingSyncJob),
}

impl DispatchService {
    /// Handles one tickets-queue message body.
    ///
    /// # Errors
    /// See [`DispatchError`]; its class decides retry or dead-letter.
    pub async fn handle(&self, body: &str) -> Result<DispatchOutcome, DispatchError> {
        let result = match self.handle_once(body).await {
            Err(DispatchError::Sink(SinkError::OverBudget { retry_after })) => self.defer(body, retry_after).await,
            other => other,
        };
        self.watch_credentials(body, result).await
    }

    /// Puts `body` back on the tickets queue for when the share has room again, spread over
    /// up to [`DEFER_SPREAD`] so a backlog does not wake all at once for the one request that
    /// leaves the window first. A failure to re-send keeps the message for an ordinary retry.
    async fn defer(&self, body: &str, retry_after: std::time::Duration) -> Result<DispatchOutcome, DispatchError> {
        self.defer_spread(body, retry_after, DEFER_SPREAD).await
    }

    /// [`Self::defer`] spread over `spread` rather than [`DEFER_SPREAD`].
    async fn defer_spread(
        &self,
        body: &str,
        retry_after: std::time::Duration,
        spread: std::time::Duration,
    ) -> Result<DispatchOutcome, DispatchError> {
        let spread =
            std::time::Duration::from_secs(deterministic_spread(body, self.clock.now().timestamp()).as_secs() % spread.as_secs().max(1));
        let delay = (retry_after + spread).min(crate::ports::MAX_MESSAGE_DELAY).max(std::time::Duration::from_secs(1));
        match self.tickets.send_delayed(&[body.to_owned()], delay).await {
            Ok(()) => Ok(DispatchOutcome::Deferred(delay)),
            Err(error) => {
                tracing::warn!(message = "Could not defer a delivery over its request share; it is retried instead.", %error);
                Err(DispatchError::Sink(SinkError::OverBudget { retry_after }))
            }
        }
    }

    async fn handle_once(&self, body: &str) -> Result<DispatchOutcome, DispatchError> {
        let message: TicketsMessage = serde_json::from_str(body).map_err(|e| DispatchError::MalformedMessage(e.to_string()))?;
        match message {
            TicketsMessage::Alert(AlertChangedMessage { msp_id, alert_id, destination: None }) => self.fan_out(&msp_id, &alert_id).await,
            TicketsMessage::Alert(AlertChangedMessage { msp_id, alert_id, destination: Some(destination) }) => {
                self.dispatch(&msp_id, &alert_id, &destination).await
            }
            TicketsMessage::Ticket(changed) => {
                let report = self.read_back_ticket(&changed.msp_id, &changed.destination, &TicketRef::new(changed.ticket_id)).await?;
                Ok(DispatchOutcome::StatesRead(report))
            }
            TicketsMessage::Billing(job) => {
                let sync = self.billing_sync.as_ref().ok_or(DispatchError::BillingSyncUnavailable)?;
                let lines = sync.sync_mappings(&job.msp_id, job.tenant_id.as_ref(), &job.billing_period, false).await?;
                let set = lines.iter().filter(|line| line.result == "set").count();
                tracing::info!(message = "Billing synced.", msp_id = %job.msp_id, period = %job.billing_period.key, set, mappings = lines.len());
                Ok(DispatchOutcome::BillingSynced { period: job.billing_period.key, set })
            }
        }
    }

    /// The destinations a change of the alert goes to: those its policy and their routing
    /// choose, and every one that already has a ticket for it or heard of it (so a resolution
    /// reaches them even after routing changed).
    ///
    /// # Errors
    /// When a store cannot be read.
    pub async fn destinations_of(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<Destination>, DispatchError> {
        let alert = self.alerts.get_alert(msp_id, alert_id).await?.ok_or_else(|| DispatchError::UnknownAlert(alert_id.to_string()))?;
        let all = self.destinations.list_destinations(msp_id).await?;
        let mut chosen: Vec<Destination> = destinations_for(&all, &alert, &alert.detail.destinations).into_iter().cloned().collect();
        for delivery in self.alerts.list_deliveries(msp_id, alert_id).await? {
            if delivery.has_told()
                && !chosen.iter().any(|d| d.id == delivery.destination)
                && let Some(destination) = all.iter().find(|d| d.id == delivery.destination && d.enabled)
            {
                chosen.push(destination.clone());
            }
        }
        Ok(chosen)
    }

    /// Splits an alert change into one message per destination.
    ///
    /// # Errors
    /// When stores cannot be read or the messages cannot be sent.
    pub async fn fan_out(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<DispatchOutcome, DispatchError> {
        let destinations = self.destinations_of(msp_id, alert_id).await?;
        let bodies: Vec<String> = destinations
            .iter()
            .map(|d| AlertChangedMessage { msp_id: msp_id.clone(), alert_id: alert_id.clone(), destination: Some(d.id.clone()) })
            .map(|m| serde_json::to_string(&m).unwrap_or_default())
            .collect();
        if !bodies.is_empty() {
            self.tickets.send_all(&bodies).await?;
        }
        Ok(DispatchOutcome::FannedOut(bodies.len()))
    }

    /// Brings the alert's ticket in one destination up to date.
    ///
    /// # Errors
    /// See [`DispatchError`].
    pub async fn dispatch(
        &self,
        msp_id: &MspId,
        alert_id: &AlertId,
        destination_id: &DestinationId,
    ) -> Result<DispatchOutcome, DispatchError> {
        deliver::deliver(self, msp_id, alert_id, destination_id).await
    }
}
