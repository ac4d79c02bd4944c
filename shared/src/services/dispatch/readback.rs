//! PSA → Vigil: reading back the state of the tickets Vigil thinks are open.
//!
//! On a schedule, every ticketing destination is asked for the state of its open tickets in
//! batches ([`READBACK_BATCH`] per request where the PSA allows it). A ticket closed or
//! completed in the PSA resolves its alert, with the closer and time in the alert's triage
//! history, and a later hit opens a new ticket that names it. A ticket that is gone (deleted,
//! merged) is recorded on the alert and in the delivery; the next hit opens a new one. A PSA
//! callback (e.g. ConnectWise's) only makes the same read happen sooner for one ticket:
//! polling alone is enough.

use super::deliver::save;
use super::{DispatchError, DispatchService};
use crate::alert::{AlertStatus, TriageChange};
use crate::destination::Destination;
use crate::error::StoreError;
use crate::ids::{AlertId, DestinationId, MspId};
use crate::ticket::{TicketRef, TicketState};
use std::collections::HashMap;
use tracing::{info, warn};

/// Tickets asked about per read-back request.
pub const READBACK_BATCH: usize = 50;

/// What a read-back found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBackReport {
    /// Tickets whose state was read.
    pub checked: usize,
    /// Tickets found closed in the PSA (their alerts resolved).
    pub closed: usize,
    /// Tickets found gone.
    pub gone: usize,
    /// Destinations that could not be read this time (they are read again next time).
    pub failed_destinations: usize,
}

impl ReadBackReport {
    /// Adds one destination's findings (a destination's own report never counts failures).
    fn add(&mut self, other: &ReadBackReport) {
        self.checked += other.checked;
        self.closed += other.closed;
        self.gone += other.gone;
    }
}

impl DispatchService {
    /// Reads back every ticketing destination of every MSP. One destination that fails is
    /// counted and skipped; the others are still read.
    ///
    /// # Errors
    /// Only when the destinations cannot be listed.
    pub async fn read_back_all(&self) -> Result<ReadBackReport, DispatchError> {
        let mut report = ReadBackReport::default();
        for destination in self.destinations.list_all_destinations().await? {
            if !destination.enabled || !destination.kind().keeps_tickets() {
                continue;
            }
            match self.read_back_destination(&destination).await {
                Ok(done) => report.add(&done),
                Err(error) => {
                    warn!(message = "Could not read ticket states back from a destination.", msp_id = %destination.msp_id, destination = %destination.id, error = %error);
                    report.failed_destinations += 1;
                }
            }
        }
        Ok(report)
    }

    /// Reads back the open tickets of one destination, in batches.
    ///
    /// # Errors
    /// When the index cannot be read or the PSA cannot be asked.
    pub async fn read_back_destination(&self, destination: &Destination) -> Result<ReadBackReport, DispatchError> {
        let open = self.alerts.list_open_tickets(&destination.msp_id, &destination.id).await?;
        if open.is_empty() {
            return Ok(ReadBackReport::default());
        }
        let system = self.systems.system_for(destination).await?;
        let mut report = ReadBackReport::default();
        for batch in open.chunks(READBACK_BATCH) {
            let alerts_by_ticket: HashMap<&TicketRef, &AlertId> = batch.iter().map(|(alert, ticket)| (ticket, alert)).collect();
            let tickets: Vec<TicketRef> = batch.iter().map(|(_, ticket)| ticket.clone()).collect();
            for (ticket, state) in system.ticket_states(&tickets).await? {
                if let Some(alert_id) = alerts_by_ticket.get(&ticket) {
                    report.checked += 1;
                    self.apply_state(destination, alert_id, &ticket, state, &mut report).await?;
                }
            }
        }
        Ok(report)
    }

    /// Reads back one ticket (after a PSA callback named it).
    ///
    /// # Errors
    /// When stores or the PSA cannot be read.
    pub async fn read_back_ticket(
        &self,
        msp_id: &MspId,
        destination_id: &DestinationId,
        ticket: &TicketRef,
    ) -> Result<ReadBackReport, DispatchError> {
        let Some(destination) = self.destinations.get_destination(msp_id, destination_id).await?.filter(|d| d.enabled) else {
            return Ok(ReadBackReport::default());
        };
        let open = self.alerts.list_open_tickets(msp_id, destination_id).await?;
        let Some((alert_id, _)) = open.into_iter().find(|(_, t)| t == ticket) else {
            // Not a ticket Vigil holds open (another integration's, or already known closed).
            return Ok(ReadBackReport::default());
        };
        let system = self.systems.system_for(&destination).await?;
        let mut report = ReadBackReport::default();
        for (read, state) in system.ticket_states(std::slice::from_ref(ticket)).await? {
            if &read == ticket {
                report.checked += 1;
                self.apply_state(&destination, &alert_id, ticket, state, &mut report).await?;
            }
        }
        Ok(report)
    }

    async fn apply_state(
        &self,
        destination: &Destination,
        alert_id: &AlertId,
        ticket: &TicketRef,
        state: TicketState,
        report: &mut ReadBackReport,
    ) -> Result<(), DispatchError> {
        let msp_id = &destination.msp_id;
        let now = self.clock.now();
        let Some(mut delivery) = self.alerts.get_delivery(msp_id, alert_id, &destination.id).await? else { return Ok(()) };
        if delivery.ticket.as_ref() != Some(ticket) || !delivery.has_open_ticket() {
            return Ok(());
        }
        if delivery.leased_at(now) {
            // A delivery is in flight; the next read-back sees the ticket again.
            return Ok(());
        }
        if delivery.psa_state.as_ref() == Some(&state) {
            // Unchanged since the last read-back: nothing to write (every open ticket is read
            // every few minutes; a write each time would cost more than the read).
            return Ok(());
        }
        delivery.psa_checked_at = Some(now);
        if let TicketState::Open { .. } = state {
            delivery.psa_state = Some(state);
            return save(self, &mut delivery).await;
        }
        let hits = self.alerts.get_alert(msp_id, alert_id).await?.map_or(0, |a| a.hit_count);
        match &state {
            TicketState::Open { .. } => {}
            TicketState::Closed { by, at, status } => {
                delivery.closed_in_psa_at_hits = Some(hits);
                delivery.notified_hits = delivery.notified_hits.max(hits);
                let by = by.clone().unwrap_or_else(|| format!("{} (PSA)", destination.name));
                let at = at.unwrap_or(now);
                let status = status.clone();
                delivery.psa_state = Some(state);
                save(self, &mut delivery).await?;
                report.closed += 1;
                if resolve_from_ticket(self, msp_id, alert_id, &by, at, &format!("{} ticket {ticket} {status}", destination.name)).await? {
                    // The alert is resolved: its tickets in other destinations close too.
                    self.fan_out(msp_id, alert_id).await?;
                }
                info!(message = "Ticket closed in the PSA; alert resolved.", alert_id = %alert_id, destination = %destination.id, ticket = %ticket);
            }
            TicketState::Gone => {
                delivery.notified_hits = delivery.notified_hits.max(hits);
                delivery.psa_state = Some(state);
                save(self, &mut delivery).await?;
                report.gone += 1;
                note_on_alert(
                    self,
                    msp_id,
                    alert_id,
                    "vigil",
                    &format!("{} ticket {ticket}", destination.name),
                    "gone (deleted or merged in the PSA)",
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// How often a read-modify-write of an alert is retried when another writer got there first.
const ALERT_WRITE_ATTEMPTS: usize = 5;

/// Resolves the alert because its ticket was closed in the PSA: status Resolved, the closer and
/// time in its triage history. Repeating it changes nothing. Returns whether it resolved it.
async fn resolve_from_ticket(
    svc: &DispatchService,
    msp_id: &MspId,
    alert_id: &AlertId,
    by: &str,
    at: chrono::DateTime<chrono::Utc>,
    what: &str,
) -> Result<bool, DispatchError> {
    change_alert(svc, msp_id, alert_id, |alert| {
        if alert.status == AlertStatus::Resolved {
            return false;
        }
        let from = format!("{:?}", alert.status);
        alert.resolve(at);
        alert.triage.history.push(TriageChange {
            author: by.to_owned(),
            at,
            field: "status".into(),
            from: Some(from),
            to: Some("Resolved".into()),
        });
        alert.triage.history.push(TriageChange {
            author: by.to_owned(),
            at,
            field: "ticket".into(),
            from: None,
            to: Some(format!("closed: {what}")),
        });
        alert.triage.bound();
        true
    })
    .await
}

/// Records something that happened to one of the alert's tickets in its triage history.
pub(super) async fn note_on_alert(
    svc: &DispatchService,
    msp_id: &MspId,
    alert_id: &AlertId,
    author: &str,
    ticket: &str,
    what: &str,
) -> Result<(), DispatchError> {
    let at = svc.clock.now();
    change_alert(svc, msp_id, alert_id, |alert| {
        alert.triage.history.push(TriageChange {
            author: author.to_owned(),
            at,
            field: "ticket".into(),
            from: Some(ticket.to_owned()),
            to: Some(what.to_owned()),
        });
        alert.triage.bound();
        true
    })
    .await
    .map(|_| ())
}

/// Applies `change` to the stored alert with optimistic concurrency; `false` when the change
/// had nothing to do (or the alert does not exist).
async fn change_alert(
    svc: &DispatchService,
    msp_id: &MspId,
    alert_id: &AlertId,
    change: impl Fn(&mut crate::alert::Alert) -> bool,
) -> Result<bool, DispatchError> {
    for _ in 0..ALERT_WRITE_ATTEMPTS {
        let Some(mut alert) = svc.alerts.get_alert(msp_id, alert_id).await? else { return Ok(false) };
        if !change(&mut alert) {
            return Ok(false);
        }
        alert.version += 1;
        match svc.alerts.update_alert(&alert).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(DispatchError::Busy(alert_id.to_string()))
}
