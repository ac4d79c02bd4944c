//! Tickets in a PSA and the per-destination delivery state that makes ticketing exactly-once.
//!
//! Each (alert, destination) pair has one [`Delivery`] record. Before an effect (create a
//! ticket, add a note) the dispatcher records its *intent* under a short lease; after the effect
//! it records the outcome. A crash in between leaves the intent behind, and the next attempt
//! looks the effect up in the PSA (by the alert id the ticket carries, or the note's marker)
//! instead of repeating it. A ticket a technician closed, or one that is gone, is retired into
//! the delivery's earlier tickets; the next hit opens a new ticket that names it.

use crate::ids::{AlertId, DestinationId, MspId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A ticket in a PSA: the PSA's own id, as text (ConnectWise and Autotask use numbers, others
/// do not). Reads the numbers older delivery records stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketRef {
    #[serde(deserialize_with = "text_or_number")]
    pub id: String,
}

impl TicketRef {
    /// A reference to the ticket with this id.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

impl std::fmt::Display for TicketRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.id)
    }
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(i64),
    }
    Ok(match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Text(text) => text,
        TextOrNumber::Number(number) => number.to_string(),
    })
}

/// A note to add to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketNote {
    pub text: String,
    /// A unique marker embedded in the text, used to find the note after a crash.
    pub marker: String,
}

/// What a PSA says of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TicketState {
    /// Open, in this status (its name).
    Open { status: String },
    /// Closed or completed, by whom (a member or resource name, when the PSA says) and when.
    Closed {
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    /// Deleted, or merged into another ticket: it will never change again.
    Gone,
}

impl TicketState {
    /// Whether the ticket is closed or gone (nothing more should be written to it).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        !matches!(self, Self::Open { .. })
    }
}

/// A ticket Vigil filed before this one for the same alert (closed by a technician, or gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EarlierTicket {
    pub ticket: TicketRef,
    /// Why it is no longer the alert's ticket: `closed` or `gone`.
    pub ended: String,
    pub at: DateTime<Utc>,
}

/// The delivery state of one alert to one destination.
///
/// Effects are recorded as intent before and outcome after: `create_attempted`,
/// `pending_note_hits`, `resolution_note_pending` and `close_pending` say an effect may have
/// happened without being recorded, so the next attempt looks it up in the PSA first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub msp_id: MspId,
    pub alert_id: AlertId,
    #[serde(deserialize_with = "destination_or_legacy")]
    pub destination: DestinationId,
    /// The ticket, once known (and while it is the alert's current ticket).
    pub ticket: Option<TicketRef>,
    /// The alert hit count the ticket (and its notes) already describes.
    pub notified_hits: u64,
    /// Ticket creation was attempted at least once (so a ticket may exist unrecorded).
    pub create_attempted: bool,
    /// A note for this hit count was being added (so it may exist unrecorded).
    pub pending_note_hits: Option<u64>,
    /// The ticket was told that the alert resolved.
    #[serde(default)]
    pub resolution_noted: bool,
    /// The resolution note was being added (so it may exist unrecorded).
    #[serde(default)]
    pub resolution_note_pending: bool,
    /// The ticket was closed by Vigil (after its resolution note).
    #[serde(default)]
    pub closed: bool,
    /// Closing was attempted (closing twice is harmless, but it is recorded like every effect).
    #[serde(default)]
    pub close_pending: bool,
    /// The ticket's state as last read from the PSA, and when it was read as such (a
    /// read-back that finds it unchanged writes nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psa_state: Option<TicketState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psa_checked_at: Option<DateTime<Utc>>,
    /// The alert's hit count when its ticket was closed in the PSA (a later hit opens a new
    /// ticket naming this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_in_psa_at_hits: Option<u64>,
    /// Tickets filed before the current one (newest last, at most [`EARLIER_TICKETS_KEPT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_tickets: Vec<EarlierTicket>,
    /// The tenant had no company link and the destination holds such alerts: waiting for one.
    #[serde(default)]
    pub held_unlinked: bool,
    /// Which of the alert's tickets in this destination the current one is (1 for the first);
    /// part of the reference the ticket carries, so a retry never mistakes an earlier, closed
    /// ticket for the one it was creating.
    #[serde(default)]
    pub generation: u32,
    /// For a destination that does not keep tickets: the id of the message being posted (it
    /// may have arrived without being recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_message: Option<String>,
    /// Messages posted to a channel destination.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_posted: u64,
    /// Messages whose post got no answer, on a channel that cannot de-duplicate: not posted
    /// again (they may or may not have arrived).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_uncertain: u64,
    /// Messages not sent because the policy's daily e-mail limit was reached.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_over_limit: u64,
    /// While set and in the future, another invocation owns this delivery.
    pub lease_until: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many earlier tickets a delivery remembers.
pub const EARLIER_TICKETS_KEPT: usize = 20;

fn destination_or_legacy<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<DestinationId, D::Error> {
    let name = String::deserialize(deserializer)?;
    // Before destinations were data, the one PSA was stored as `connect_wise`; its settings
    // carried over as the destination `connectwise`.
    let name = if name == "connect_wise" { "connectwise".to_owned() } else { name };
    DestinationId::parse(&name).map_err(serde::de::Error::custom)
}

impl Delivery {
    /// The state before anything was delivered.
    #[must_use]
    pub fn new(msp_id: MspId, alert_id: AlertId, destination: DestinationId) -> Self {
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
            closed: false,
            close_pending: false,
            psa_state: None,
            psa_checked_at: None,
            closed_in_psa_at_hits: None,
            earlier_tickets: Vec::new(),
            held_unlinked: false,
            generation: 1,
            pending_message: None,
            messages_posted: 0,
            messages_uncertain: 0,
            messages_over_limit: 0,
            lease_until: None,
            version: 0,
        }
    }

    /// Whether someone else holds an unexpired lease.
    #[must_use]
    pub fn leased_at(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }

    /// Whether the current ticket is open as far as Vigil knows: it exists, Vigil has not
    /// closed it, and the PSA did not say it is closed or gone.
    #[must_use]
    pub fn has_open_ticket(&self) -> bool {
        self.ticket.is_some() && !self.closed && !self.psa_state.as_ref().is_some_and(TicketState::is_finished)
    }

    /// Whether the destination holds a ticket for the alert or heard of it (a channel's posted
    /// or possibly posted message): its resolution must reach it even after routing changed.
    #[must_use]
    pub fn has_told(&self) -> bool {
        self.ticket.is_some() || self.messages_posted > 0 || self.messages_uncertain > 0
    }

    /// Retires the current ticket (closed by a technician, or gone) so the next hit opens a new
    /// one; every per-ticket effect starts over.
    pub fn retire_ticket(&mut self, ended: &str, at: DateTime<Utc>) {
        if let Some(ticket) = self.ticket.take() {
            self.earlier_tickets.push(EarlierTicket { ticket, ended: ended.to_owned(), at });
            if self.earlier_tickets.len() > EARLIER_TICKETS_KEPT {
                self.earlier_tickets.remove(0);
            }
        }
        self.generation = self.generation.max(1) + 1;
        self.create_attempted = false;
        self.pending_note_hits = None;
        self.resolution_noted = false;
        self.resolution_note_pending = false;
        self.closed = false;
        self.close_pending = false;
        self.psa_state = None;
        self.closed_in_psa_at_hits = None;
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

/// The reference a ticket carries so it can be found from its alert: `vigil:<alert id>` for the
/// alert's first ticket in a destination, `vigil:<alert id>:<n>` for the n-th (at most 50
/// characters, Autotask's `externalID` limit).
#[must_use]
pub fn external_reference(alert_id: &AlertId, generation: u32) -> String {
    if generation <= 1 { format!("vigil:{alert_id}") } else { format!("vigil:{alert_id}:{generation}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_stored_before_destinations_were_data_still_reads() {
        let stored = r#"{"msp_id":"acme-msp","alert_id":"0123456789abcdef0123456789abcdef","destination":"connect_wise",
            "ticket":{"id":1001},"notified_hits":3,"create_attempted":true,"pending_note_hits":null,"lease_until":null,"version":4}"#;
        let delivery: Delivery = serde_json::from_str(stored).unwrap();
        assert_eq!(delivery.destination.as_str(), "connectwise");
        assert_eq!(delivery.ticket, Some(TicketRef::new("1001")));
        assert_eq!(delivery.generation, 0, "read as the first ticket");
        assert_eq!(external_reference(&delivery.alert_id, delivery.generation), "vigil:0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn retiring_a_ticket_starts_every_effect_over_for_a_new_one_with_its_own_reference() {
        let alert = AlertId::derive(&["x"]);
        let mut delivery = Delivery::new(MspId::parse("acme-msp").unwrap(), alert.clone(), DestinationId::parse("psa").unwrap());
        delivery.ticket = Some(TicketRef::new("7"));
        delivery.create_attempted = true;
        delivery.resolution_noted = true;
        delivery.closed = true;
        let first = external_reference(&alert, delivery.generation);
        delivery.retire_ticket("closed", Utc::now());
        assert!(delivery.ticket.is_none() && !delivery.create_attempted && !delivery.resolution_noted && !delivery.closed);
        assert_eq!(delivery.earlier_tickets[0].ticket, TicketRef::new("7"));
        let second = external_reference(&alert, delivery.generation);
        assert_ne!(first, second);
        assert!(second.len() <= 50);
        for _ in 0..30 {
            delivery.ticket = Some(TicketRef::new("8"));
            delivery.retire_ticket("gone", Utc::now());
        }
        assert_eq!(delivery.earlier_tickets.len(), EARLIER_TICKETS_KEPT);
    }
}
