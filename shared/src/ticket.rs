//! Tickets in a PSA and the per-destination delivery state that makes ticketing exactly-once.
//!
//! Each (alert, destination) pair has one [`Delivery`] record. Before an effect (create a
//! ticket, add a note) the dispatcher records its *intent* under a short lease; after the effect
//! it records the outcome. A crash in between leaves the intent behind, and the next attempt
//! looks the effect up in the PSA (by the alert id the ticket carries, or the note's marker)
//! instead of repeating it.

use crate::ids::{AlertId, MspId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A ticket in a PSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// The PSA's ticket id.
    pub id: i64,
}

/// A note to add to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketNote {
    pub text: String,
    /// A unique marker embedded in the text, used to find the note after a crash.
    pub marker: String,
}

/// Where an alert is delivered. One variant per PSA or channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    ConnectWise,
}

impl Destination {
    /// Stable name used in keys.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectWise => "connectwise",
        }
    }
}

/// The delivery state of one alert to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub msp_id: MspId,
    pub alert_id: AlertId,
    pub destination: Destination,
    /// The ticket, once known.
    pub ticket: Option<TicketRef>,
    /// The alert hit count the ticket (and its notes) already describes.
    pub notified_hits: u64,
    /// Ticket creation was attempted at least once (so a ticket may exist unrecorded).
    pub create_attempted: bool,
    /// A note for this hit count was being added (so it may exist unrecorded).
    pub pending_note_hits: Option<u64>,
    /// The ticket was told that the alert resolved itself.
    #[serde(default)]
    pub resolution_noted: bool,
    /// The resolution note was being added (so it may exist unrecorded).
    #[serde(default)]
    pub resolution_note_pending: bool,
    /// While set and in the future, another invocation owns this delivery.
    pub lease_until: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: u64,
}

impl Delivery {
    /// The state before anything was delivered.
    #[must_use]
    pub fn new(msp_id: MspId, alert_id: AlertId, destination: Destination) -> Self {
        Self {
            msp_id,
            alert_id,
            destination,
            ticket: None,
            notified_hits: 0,
            create_attempted: false,
            pending_note_hits: None,
            resolution_noted: false,
            resolution_note_pending: false,
            lease_until: None,
            version: 0,
        }
    }

    /// Whether someone else holds an unexpired lease.
    #[must_use]
    pub fn leased_at(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }
}

/// The marker that identifies the note for `hits` on `alert`.
#[must_use]
pub fn note_marker(alert_id: &AlertId, hits: u64) -> String {
    format!("[vigil:{alert_id}:hits={hits}]")
}

/// The marker of the note saying `alert` resolved itself.
#[must_use]
pub fn resolution_marker(alert_id: &AlertId) -> String {
    format!("[vigil:{alert_id}:resolved]")
}

/// The reference a ticket carries so it can be found from its alert.
#[must_use]
pub fn external_reference(alert_id: &AlertId) -> String {
    format!("vigil:{alert_id}")
}
