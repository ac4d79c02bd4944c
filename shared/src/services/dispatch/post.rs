//! One alert to one destination that does not keep tickets (a chat channel, a signed webhook,
//! e-mail): one message per change of the alert, posted once.
//!
//! What is due follows from the alert and the delivery ([`change_due`]): raised, fired again,
//! resolved. The message's id is recorded as intent before the post and the change as posted
//! after. A channel cannot be asked whether a message arrived, so an intent left behind (a
//! crash, or a post that got no answer) is settled by the channel's nature: a receiver that
//! keeps ids gets the same message again under the same id; any other is not posted to twice
//! and the message is counted as uncertain. A post the channel refused or never received
//! leaves no intent, so its retry posts it.
//!
//! The first message honours the suppressions like a first ticket; the policy's daily e-mail
//! limit holds back e-mails beyond it (counted, never retried).

use super::deliver::save;
use super::{DispatchError, DispatchOutcome, DispatchService};
use crate::alert::Alert;
use crate::channel::{AlertChange, AlertMessage, change_due, render_message};
use crate::destination::Destination;
use crate::policy::suppression::holds_back_ticket;
use crate::ticket::Delivery;
use tracing::{info, warn};

/// Records `change` as told to the channel (posted, or settled without a post).
fn record_told(delivery: &mut Delivery, message: &AlertMessage) {
    match message.change {
        AlertChange::Resolved => delivery.resolution_noted = true,
        AlertChange::Raised | AlertChange::Refired => {
            delivery.notified_hits = message.hit_count;
            // Fired again after a resolution: the next resolution is a new message.
            delivery.resolution_noted = false;
        }
    }
    delivery.pending_message = None;
}

pub(super) async fn post(
    svc: &DispatchService,
    alert: &Alert,
    destination: &Destination,
    current: Delivery,
) -> Result<DispatchOutcome, DispatchError> {
    let Some(change) = change_due(alert, &current) else { return Ok(DispatchOutcome::UpToDate) };
    let now = svc.clock.now();
    if current.notified_hits == 0 && current.pending_message.is_none() {
        let rules = svc.policies.list_suppressions(&alert.msp_id).await?;
        if let Some(rule) = rules.iter().find(|rule| holds_back_ticket(rule, alert, now)) {
            info!(message = "Alert suppressed before its first message.", alert_id = %alert.id, suppression_id = %rule.id);
            return Ok(DispatchOutcome::Suppressed);
        }
    }
    if current.leased_at(now) {
        return Err(DispatchError::Busy(alert.id.to_string()));
    }
    let channel = svc.systems.channel_for(destination).await?;
    let message = render_message(alert, change, svc.settings.api_base.as_deref());
    let mut delivery = current;

    if let Some(pending) = delivery.pending_message.clone() {
        let same_message = pending == message.id;
        if !(same_message && channel.deduplicates_by_id()) {
            // The earlier post may have arrived; this channel would show it twice.
            warn!(message = "A message may or may not have been posted; it is not posted again.", alert_id = %alert.id, destination = %destination.id);
            delivery.messages_uncertain += 1;
            delivery.pending_message = None;
            if same_message {
                record_told(&mut delivery, &message);
                save(svc, &mut delivery).await?;
                return Ok(DispatchOutcome::MessageUncertain(change));
            }
        }
    }

    if destination.kind().is_mail()
        && let Some(limit) = alert.detail.daily_email_limit
        && !svc.alerts.take_daily_message(alert, &destination.id, now.date_naive(), limit, &message.id).await?
    {
        info!(message = "Daily e-mail limit reached; no e-mail for this change.", alert_id = %alert.id, policy_id = %alert.policy_id, limit);
        delivery.messages_over_limit += 1;
        record_told(&mut delivery, &message);
        save(svc, &mut delivery).await?;
        return Ok(DispatchOutcome::HeldByDailyLimit);
    }

    // Take the lease and record the intent in one conditional write.
    delivery.pending_message = Some(message.id.clone());
    delivery.lease_until = Some(now + svc.settings.lease);
    save(svc, &mut delivery).await?;
    let posted = channel.post(&message).await;
    delivery.lease_until = None;
    match posted {
        Ok(()) => {
            delivery.messages_posted += 1;
            record_told(&mut delivery, &message);
            save(svc, &mut delivery).await?;
            info!(message = "Alert change posted.", alert_id = %alert.id, destination = %destination.id, change = ?change, hit_count = alert.hit_count);
            Ok(DispatchOutcome::MessagePosted(change))
        }
        Err(failure) => {
            if !failure.maybe_posted() {
                delivery.pending_message = None;
            }
            if let Err(release) = save(svc, &mut delivery).await {
                warn!(message = "Could not release a delivery lease; it will expire.", alert_id = %alert.id, error = %release);
            }
            Err(DispatchError::Sink(failure.into_sink()))
        }
    }
}
