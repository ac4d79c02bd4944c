//! One alert to one destination: decide what the ticket needs, take the delivery's lease with
//! the intent recorded, do the effects, record their outcomes.
//!
//! What is due follows from the alert and the delivery alone:
//! * no ticket yet → create one (or, after an interrupted create, find it by its reference);
//!   never for an alert that resolved before it needed one;
//! * an open ticket and new hits → one note (after checking the ticket is still open: never a
//!   note on a ticket a technician closed);
//! * an open ticket and a resolved alert → the resolution note, then close it;
//! * a finished ticket (closed by Vigil or in the PSA, or gone) and new hits on an alert that is
//!   open again → a new ticket naming the earlier one.

use super::readback::note_on_alert;
use super::{DispatchError, DispatchOutcome, DispatchService};
use crate::alert::{Alert, AlertStatus, PolicyMode};
use crate::destination::{Destination, UnlinkedTenant};
use crate::error::{SinkError, StoreError};
use crate::ids::{AlertId, DestinationId, MspId};
use crate::policy::suppression::holds_back_ticket;
use crate::ports::{NewTicket, TicketSystem};
use crate::render::{hits_note, render_ticket, resolution_note, resolution_text};
use crate::ticket::{Delivery, TicketRef, TicketState, external_reference, note_marker};
use tracing::{info, warn};

/// What the delivery needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Nothing,
    /// Create the first (or a recovered) ticket.
    Create,
    /// Retire the finished ticket and create a new one naming it.
    Replace,
    /// Bring the open ticket up to date (notes, resolution, close).
    Update,
}

fn due(alert: &Alert, delivery: &Delivery) -> Due {
    let resolved = alert.status == AlertStatus::Resolved;
    match &delivery.ticket {
        None if resolved && !delivery.create_attempted => Due::Nothing,
        None => Due::Create,
        Some(_) if !delivery.has_open_ticket() => {
            if !resolved && alert.hit_count > delivery.notified_hits {
                Due::Replace
            } else {
                Due::Nothing
            }
        }
        // An open ticket: a resolved alert's is always to be noted and closed (Vigil's own close
        // makes it not open), else a pending note or new hits need a note.
        Some(_) => {
            if resolved || delivery.pending_note_hits.is_some() || alert.hit_count > delivery.notified_hits {
                Due::Update
            } else {
                Due::Nothing
            }
        }
    }
}

pub(super) async fn deliver(
    svc: &DispatchService,
    msp_id: &MspId,
    alert_id: &AlertId,
    destination_id: &DestinationId,
) -> Result<DispatchOutcome, DispatchError> {
    let alert = svc.alerts.get_alert(msp_id, alert_id).await?.ok_or_else(|| DispatchError::UnknownAlert(alert_id.to_string()))?;
    let Some(destination) = svc.destinations.get_destination(msp_id, destination_id).await?.filter(|d| d.enabled) else {
        info!(message = "Destination deleted or disabled; delivery dropped.", alert_id = %alert.id, destination = %destination_id);
        return Ok(DispatchOutcome::DestinationUnavailable);
    };
    if alert.detail.mode == PolicyMode::Shadow {
        return Ok(DispatchOutcome::Shadow);
    }
    let current = svc
        .alerts
        .get_delivery(msp_id, alert_id, destination_id)
        .await?
        .unwrap_or_else(|| Delivery::new(msp_id.clone(), alert_id.clone(), destination_id.clone()));
    if !destination.kind().keeps_tickets() {
        return super::post::post(svc, &alert, &destination, current).await;
    }
    let due = due(&alert, &current);
    if due == Due::Nothing {
        return Ok(DispatchOutcome::UpToDate);
    }
    let first_ticket = matches!(due, Due::Create | Due::Replace) && (due == Due::Replace || !current.create_attempted);
    if first_ticket {
        let now = svc.clock.now();
        let rules = svc.policies.list_suppressions(msp_id).await?;
        if let Some(rule) = rules.iter().find(|rule| holds_back_ticket(rule, &alert, now)) {
            info!(message = "Alert suppressed before its ticket.", alert_id = %alert.id, suppression_id = %rule.id);
            return Ok(DispatchOutcome::Suppressed);
        }
        if let Some(limit) = alert.detail.daily_limit
            && !svc.alerts.take_daily_ticket(&alert, alert.window_start.date_naive(), limit).await?
        {
            info!(message = "Daily ticket limit reached; alert kept without a ticket.", alert_id = %alert.id, policy_id = %alert.policy_id, limit);
            return Ok(DispatchOutcome::HeldByDailyLimit);
        }
    }
    let now = svc.clock.now();
    if current.leased_at(now) {
        return Err(DispatchError::Busy(alert_id.to_string()));
    }
    let company = if matches!(due, Due::Create | Due::Replace) {
        match company_for(svc, &alert, &destination).await? {
            Some(company) => Some(company),
            None => {
                if !current.held_unlinked {
                    let mut held = current.clone();
                    held.held_unlinked = true;
                    save(svc, &mut held).await?;
                }
                info!(message = "Tenant not linked in this destination; alert held until it is.", alert_id = %alert.id, destination = %destination_id);
                return Ok(DispatchOutcome::HeldUntilLinked);
            }
        }
    } else {
        None
    };
    let system = svc.systems.system_for(&destination).await?;

    // Take the lease and record the intent in one conditional write.
    let mut delivery = current.clone();
    let mut replaced = None;
    if due == Due::Replace {
        let ended = if matches!(delivery.psa_state, Some(TicketState::Gone)) { "gone" } else { "closed" };
        replaced = delivery.ticket.clone();
        delivery.retire_ticket(ended, now);
    }
    let may_have_unrecorded_ticket = delivery.ticket.is_none() && delivery.create_attempted;
    if delivery.ticket.is_none() {
        delivery.create_attempted = true;
        delivery.held_unlinked = false;
    }
    delivery.lease_until = Some(now + svc.settings.lease);
    save(svc, &mut delivery).await?;

    let work = Work { svc, alert: &alert, destination: &destination, system: system.as_ref() };
    let result = match company {
        Some(company) => work.create(&mut delivery, &company, may_have_unrecorded_ticket, replaced).await,
        None => work.update(&mut delivery).await,
    };
    let result = match result {
        Err(DispatchError::Sink(SinkError::Gone(reason))) => work.gone(&mut delivery, &reason).await,
        other => other,
    };
    // Release the lease whatever happened, so a retry need not wait for it to expire.
    delivery.lease_until = None;
    match result {
        Ok(outcome) => {
            save(svc, &mut delivery).await?;
            info!(message = "Alert delivered.", alert_id = %alert.id, destination = %destination_id, outcome = ?outcome, hit_count = alert.hit_count);
            Ok(outcome)
        }
        Err(error) => {
            if let Err(release) = save(svc, &mut delivery).await {
                warn!(message = "Could not release a delivery lease; it will expire.", alert_id = %alert.id, error = %release);
            }
            Err(error)
        }
    }
}

/// The effects on one destination's ticket for one alert.
struct Work<'a> {
    svc: &'a DispatchService,
    alert: &'a Alert,
    destination: &'a Destination,
    system: &'a dyn TicketSystem,
}

impl Work<'_> {
    async fn create(
        &self,
        delivery: &mut Delivery,
        company: &str,
        may_have_unrecorded_ticket: bool,
        replaced: Option<TicketRef>,
    ) -> Result<DispatchOutcome, DispatchError> {
        let alert = self.alert;
        let reference = external_reference(&alert.id, delivery.generation);
        let found = if may_have_unrecorded_ticket { self.system.find_ticket(&reference).await? } else { None };
        let (ticket, outcome) = match found {
            Some(found) => (found.clone(), DispatchOutcome::TicketRecovered(found)),
            None if alert.status == AlertStatus::Resolved => {
                // The alert resolved before its interrupted ticket could be found: none is needed.
                delivery.create_attempted = false;
                return Ok(DispatchOutcome::UpToDate);
            }
            None => {
                let content = render_ticket(alert, self.svc.settings.api_base.as_deref(), delivery.earlier_tickets.last());
                let ticket = NewTicket {
                    content,
                    reference,
                    company: company.to_owned(),
                    place: self.destination.place_for(alert.category).map(str::to_owned),
                    priority: self.destination.priority_for(alert.severity).map(str::to_owned),
                };
                let created = match self.system.create_ticket(&ticket).await {
                    Ok(created) => created,
                    Err(refused @ SinkError::OverBudget { .. }) => {
                        // Vigil's own share refused a request of the create: the create itself
                        // was not sent, so no ticket can exist unrecorded from this attempt.
                        delivery.create_attempted = may_have_unrecorded_ticket;
                        return Err(refused.into());
                    }
                    Err(other) => return Err(other.into()),
                };
                let outcome = match replaced {
                    Some(earlier) => DispatchOutcome::TicketReplaced { earlier, ticket: created.clone() },
                    None => DispatchOutcome::TicketCreated(created.clone()),
                };
                (created, outcome)
            }
        };
        delivery.ticket = Some(ticket);
        delivery.notified_hits = alert.hit_count;
        delivery.pending_note_hits = None;
        if alert.status == AlertStatus::Resolved {
            self.resolve(delivery).await?;
        }
        Ok(outcome)
    }

    async fn update(&self, delivery: &mut Delivery) -> Result<DispatchOutcome, DispatchError> {
        let alert = self.alert;
        let Some(ticket) = delivery.ticket.clone() else { return Ok(DispatchOutcome::UpToDate) };
        if let Some(pending) = delivery.pending_note_hits.take()
            && self.system.has_note(&ticket, &note_marker(&alert.id, pending)).await?
        {
            delivery.notified_hits = delivery.notified_hits.max(pending);
        }
        let mut outcome = DispatchOutcome::UpToDate;
        if alert.hit_count > delivery.notified_hits && alert.status != AlertStatus::Resolved {
            // Never a note on a ticket a technician closed: look first.
            let state = self.system.ticket_states(std::slice::from_ref(&ticket)).await?.into_iter().next().map(|(_, state)| state);
            match state {
                Some(TicketState::Gone) => return Err(DispatchError::Sink(SinkError::Gone(format!("ticket {ticket}")))),
                Some(finished @ TicketState::Closed { .. }) => {
                    // Closed in the PSA since the last read-back: this hit opens a new ticket.
                    delivery.psa_state = Some(finished);
                    delivery.psa_checked_at = Some(self.svc.clock.now());
                    let earlier = ticket.clone();
                    delivery.retire_ticket("closed", self.svc.clock.now());
                    delivery.create_attempted = true;
                    save(self.svc, delivery).await?;
                    let company = self.company().await?;
                    return match company {
                        Some(company) => self.create(delivery, &company, false, Some(earlier)).await,
                        None => {
                            delivery.create_attempted = false;
                            delivery.held_unlinked = true;
                            Ok(DispatchOutcome::HeldUntilLinked)
                        }
                    };
                }
                Some(open @ TicketState::Open { .. }) => {
                    delivery.psa_state = Some(open);
                    delivery.psa_checked_at = Some(self.svc.clock.now());
                }
                None => {}
            }
            let note = hits_note(alert, delivery.notified_hits);
            delivery.pending_note_hits = Some(alert.hit_count);
            save(self.svc, delivery).await?;
            if let Err(error) = self.system.add_note(&ticket, &note).await {
                if matches!(error, SinkError::OverBudget { .. }) {
                    // Refused before it was sent: no note can exist from this attempt.
                    delivery.pending_note_hits = None;
                }
                return Err(error.into());
            }
            delivery.notified_hits = alert.hit_count;
            delivery.pending_note_hits = None;
            outcome = DispatchOutcome::NoteAdded(ticket.clone());
        }
        if alert.status == AlertStatus::Resolved && self.resolve(delivery).await? {
            outcome = DispatchOutcome::TicketClosed(ticket);
        }
        Ok(outcome)
    }

    /// The company the alert's ticket goes to in this destination (see [`company_for`]).
    async fn company(&self) -> Result<Option<String>, DispatchError> {
        company_for(self.svc, self.alert, self.destination).await
    }

    /// The resolution note (once), then the close (once). Returns whether anything was done.
    async fn resolve(&self, delivery: &mut Delivery) -> Result<bool, DispatchError> {
        let Some(ticket) = delivery.ticket.clone() else { return Ok(false) };
        let mut acted = false;
        if !delivery.resolution_noted {
            let note = resolution_note(self.alert);
            if delivery.resolution_note_pending && self.system.has_note(&ticket, &note.marker).await? {
                delivery.resolution_noted = true;
            } else {
                delivery.resolution_note_pending = true;
                save(self.svc, delivery).await?;
                if let Err(error) = self.system.add_note(&ticket, &note).await {
                    if matches!(error, SinkError::OverBudget { .. }) {
                        delivery.resolution_note_pending = false;
                    }
                    return Err(error.into());
                }
                delivery.resolution_noted = true;
                acted = true;
            }
            delivery.resolution_note_pending = false;
        }
        if !delivery.closed {
            delivery.close_pending = true;
            save(self.svc, delivery).await?;
            self.system.close_ticket(&ticket, self.destination.routing.closed_status.as_deref(), &resolution_text(self.alert)).await?;
            delivery.closed = true;
            delivery.close_pending = false;
            acted = true;
        }
        Ok(acted)
    }

    /// The ticket is gone from the PSA: recorded in the delivery and on the alert; the next hit
    /// opens a new ticket.
    async fn gone(&self, delivery: &mut Delivery, reason: &str) -> Result<DispatchOutcome, DispatchError> {
        let Some(ticket) = delivery.ticket.clone() else { return Ok(DispatchOutcome::UpToDate) };
        warn!(message = "Ticket gone from the PSA; recorded.", alert_id = %self.alert.id, destination = %self.destination.id, reason);
        delivery.psa_state = Some(TicketState::Gone);
        delivery.psa_checked_at = Some(self.svc.clock.now());
        // Remember how far the gone ticket described the alert: only a later hit opens another.
        delivery.notified_hits = delivery.notified_hits.max(self.alert.hit_count);
        delivery.pending_note_hits = None;
        delivery.resolution_note_pending = false;
        delivery.close_pending = false;
        note_on_alert(
            self.svc,
            &self.alert.msp_id,
            &self.alert.id,
            "vigil",
            &format!("{} ticket {ticket}", self.destination.name),
            "gone (deleted or merged in the PSA)",
        )
        .await?;
        Ok(DispatchOutcome::TicketGone(ticket))
    }
}

pub(super) async fn save(svc: &DispatchService, delivery: &mut Delivery) -> Result<(), DispatchError> {
    delivery.version += 1;
    let result = svc.alerts.save_delivery(delivery).await;
    if result.is_err() {
        delivery.version -= 1;
    }
    match result {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict { .. }) => Err(DispatchError::Busy(delivery.alert_id.to_string())),
        Err(other) => Err(other.into()),
    }
}

/// The company an alert's ticket is filed under in a destination: the MSP's own company for an
/// alert about the MSP's own access when the destination names one, else the tenant's linked
/// company, else the catch-all; `None`: held until the tenant is linked. A customer that is not
/// a Vigil tenant (admin-relationship alerts only) has no link.
///
/// # Errors
/// UnknownTenant for any other alert of an unregistered tenant; store failures.
async fn company_for(svc: &DispatchService, alert: &Alert, destination: &Destination) -> Result<Option<String>, DispatchError> {
    if alert.detail.about_msp_access
        && let Some(own) = &destination.routing.own_company
    {
        return Ok(Some(own.clone()));
    }
    let link = match svc.config.get_tenant(&alert.msp_id, &alert.tenant_id).await? {
        Some(tenant) => tenant.company_link(&destination.id),
        None if alert.detail.about_msp_access => None,
        None => return Err(DispatchError::UnknownTenant(alert.tenant_id.to_string())),
    };
    Ok(match (link, &destination.routing.unlinked_tenant) {
        (Some(company), _) => Some(company),
        (None, UnlinkedTenant::CatchAll { company }) => Some(company.clone()),
        (None, UnlinkedTenant::Hold) => None,
    })
}
