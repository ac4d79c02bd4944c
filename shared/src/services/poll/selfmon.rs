//! The poller's self-monitoring ([`crate::selfmon`]): per stream, a lost interval (content that
//! left Microsoft's retention before Vigil fetched it), and for Management Activity streams the
//! subscription (stopped) and Vigil's webhook on it (disabled, expired or gone) as
//! `subscriptions/list` shows them, read after the stream's poll: every
//! [`super::PollSettings::subscription_check_every`] while all is well, and after every failed
//! poll and every poll while an episode is open (so a stop that makes listing fail is seen at
//! once, and an episode clears promptly). A subscription someone stopped and Vigil's next
//! listing started again between two checks is not alerted: polling restarted it within one
//! interval.
//!
//! Each condition's episode is kept in the stream's ledger ([`StreamMonitoring`]); its events
//! are sent before the ledger is written, and carry the episode's start, so a job retried after
//! a crash sends the very same events (the evaluator counts a record once).
//!
//! **Webhook renewal.** Vigil registers its webhooks without an expiration (`"expiration": ""`),
//! so they never lapse by date. A webhook Microsoft disabled (failed notifications), one that
//! expired all the same, or one that is gone (a subscription started again without it) marks
//! the tenant's webhook unregistered, so the next tick registers it again with a new `authId`;
//! the alert clears when the list shows it enabled.
//!
//! **Reads failing.** Licence reads ([`PollService::watch_licence_reads`]) and the daily
//! protected-mailbox count billing uses ([`PollService::watch_billing_reads`]).
//!
//! [`StreamMonitoring`]: crate::selfmon::StreamMonitoring

use super::{PollError, PollService, to_json};
use crate::ids::{AuditStream, ContentType};
use crate::messages::{AuditEventsMessage, SELF_MONITORING_EVENTS};
use crate::ports::{ListedSubscription, StreamState, TenantChange, WebhookState};
use crate::selfmon::{Condition, Subject, Transition, event, step};
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::{info, warn};

fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn webhook_word(state: Option<&WebhookState>) -> String {
    match state {
        None => "gone (none registered)".to_owned(),
        Some(WebhookState::Enabled) => "enabled".to_owned(),
        Some(WebhookState::Disabled) => "disabled".to_owned(),
        Some(WebhookState::Expired) => "expired".to_owned(),
        Some(WebhookState::Other(other)) => other.clone(),
    }
}

impl PollService {
    /// Raises a lost interval when a poll recorded a loss in the stream's ledger and none is
    /// open, and clears the open one once the stream has been polled for 24 hours without a new
    /// loss.
    pub(super) async fn watch_losses(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        ledger: &mut StreamState,
        now: DateTime<Utc>,
    ) -> Result<(), PollError> {
        // A loss is recorded when the poll finds coverage older than the retention: its end is
        // the retention's edge at that poll, so "recorded within the last 24 hours" is "ends
        // after now − retention − 24 h".
        let recorded_since = now - self.settings.retention - crate::coverage::window();
        let recent: Vec<&(DateTime<Utc>, DateTime<Utc>)> = ledger.lost.iter().filter(|(_, to)| *to > recorded_since).collect();
        let from = recent.iter().map(|(from, _)| *from).min();
        let until = recent.iter().map(|(_, to)| *to).max();
        let (open, transition) = step(ledger.monitoring.loss_since, from.is_some(), from.unwrap_or(now));
        let Some(transition) = transition else { return Ok(()) };
        let message = match (transition, from, until) {
            (Transition::Raised { .. }, Some(from), Some(until)) => format!(
                "{stream} content from {} to {} left Microsoft's 7-day retention before Vigil could fetch it: the activity of that interval was never evaluated and can no longer be fetched.",
                minute(from),
                minute(until)
            ),
            _ => format!(
                "Vigil has polled {stream} for 24 hours without losing content; the loss itself stays listed in the stream's ledger."
            ),
        };
        let details = json!({ "LostFrom": from.map(|at| at.to_rfc3339()), "LostUntil": until.map(|at| at.to_rfc3339()) });
        self.send_condition(tenant, Condition::LostInterval, stream.as_str(), transition, &message, details).await?;
        ledger.monitoring.loss_since = open;
        Ok(())
    }

    /// After the stream's poll, reads the tenant's subscriptions when due (hourly, after a failed
    /// poll, and while an episode is open) and raises or clears "subscription stopped" and
    /// "webhook disabled" for the stream's content type. A list that cannot be read is logged
    /// and tried again at the next poll (polling itself goes on).
    pub(super) async fn check_subscription(
        &self,
        tenant: &Tenant,
        content_type: ContentType,
        ledger: &mut StreamState,
        poll_failed: bool,
        now: DateTime<Utc>,
    ) -> Result<(), PollError> {
        let due = poll_failed
            || ledger.monitoring.subscription_episode_open()
            || ledger.monitoring.subscription_checked_at.is_none_or(|at| now - at >= self.settings.subscription_check_every);
        if !due {
            return Ok(());
        }
        let Ok(credentials) = self.credentials(tenant).await else { return Ok(()) };
        let listed = match self.subscriptions.list_subscriptions(&tenant.tenant_id, &credentials).await {
            Ok(listed) => listed,
            Err(error) => {
                warn!(message = "Could not list the tenant's subscriptions; checked again at the next poll.", %error);
                return Ok(());
            }
        };
        ledger.monitoring.subscription_checked_at = Some(now);
        let mine: Option<&ListedSubscription> = listed.iter().find(|s| s.content_type == content_type);
        let key = content_type.as_str();

        // A stream never polled successfully has no subscription of Vigil's yet to have stopped
        // (its first listing starts it).
        let stopped = ledger.last_success.is_some() && !mine.is_some_and(|s| s.enabled);
        let status = mine.map_or("absent", |s| if s.enabled { "enabled" } else { "disabled" });
        let (open, transition) = step(ledger.monitoring.subscription_stopped_since, stopped, now);
        if let Some(transition) = transition {
            let message = if transition.raised() {
                format!(
                    "Microsoft lists the tenant's {key} subscription as {status}: no {key} content reaches Vigil until it is started again. Vigil starts it again at its next poll; if it stays stopped, check that unified audit logging is on."
                )
            } else {
                format!("The tenant's {key} subscription is enabled again.")
            };
            self.send_condition(tenant, Condition::SubscriptionStopped, key, transition, &message, json!({ "SubscriptionStatus": status }))
                .await?;
        }
        ledger.monitoring.subscription_stopped_since = open;

        // Vigil's webhook is expected once it was registered (its authId hash kept), when
        // webhooks are in use.
        let expected = self.settings.webhook_base.is_some() && tenant.webhook_auth_hash.is_some();
        let webhook = mine.and_then(|s| s.webhook.as_ref());
        let lapsed = expected && webhook != Some(&WebhookState::Enabled);
        let state = webhook_word(webhook);
        let (open, transition) = step(ledger.monitoring.webhook_disabled_since, lapsed, now);
        if let Some(transition) = transition {
            let message = if transition.raised() {
                format!(
                    "Microsoft lists Vigil's webhook on the tenant's {key} subscription as {state}: new content is no longer announced and reaches Vigil only at its next poll. Vigil registers the webhook again at its next tick; if that keeps failing, check that the webhook receiver is reachable over HTTPS from Microsoft."
                )
            } else {
                format!("Vigil's webhook on the tenant's {key} subscription is enabled again.")
            };
            self.send_condition(tenant, Condition::WebhookDisabled, key, transition, &message, json!({ "WebhookStatus": state })).await?;
        }
        ledger.monitoring.webhook_disabled_since = open;
        if lapsed && tenant.webhook_registered {
            // Renewal: the next tick registers the webhook again.
            if let Some(auth_hash) = &tenant.webhook_auth_hash {
                let change = TenantChange::Webhook { auth_hash: auth_hash.clone(), registered: false };
                self.config.update_tenant(&tenant.msp_id, &tenant.tenant_id, &change).await?;
                info!(message = "Vigil's webhook is not enabled on a subscription; the next tick registers it again.", content_type = key, webhook = %state);
            }
        }
        Ok(())
    }

    /// Raises "reads failing" once a tenant's licence reads failed
    /// [`crate::selfmon::READS_FAILING_AFTER`] times in a row, and clears it at the next
    /// successful read. `at` is the job's time (the same on every retry of it).
    pub(super) async fn watch_licence_reads(
        &self,
        tenant: &Tenant,
        state: &mut crate::licences::TenantLicences,
        at: DateTime<Utc>,
    ) -> Result<(), PollError> {
        let failing = state.consecutive_failures >= crate::selfmon::READS_FAILING_AFTER;
        let (open, transition) = step(state.failing_since, failing, at);
        if let Some(transition) = transition {
            let message = if transition.raised() {
                format!(
                    "Vigil's read of the tenant's licences failed {} times in a row: {}. Licence findings stay as last read until a read works.",
                    state.consecutive_failures,
                    state.error.as_deref().unwrap_or("no detail")
                )
            } else {
                "The tenant's licences were read again.".to_owned()
            };
            let details = json!({ "ConsecutiveFailures": state.consecutive_failures, "Error": state.error });
            self.send_condition(tenant, Condition::ReadsFailing, "licences", transition, &message, details).await?;
        }
        state.failing_since = open;
        Ok(())
    }

    /// Raises "billing reads failing" when the tenant's mailbox count has just been carried
    /// over for the [`crate::selfmon::READS_FAILING_AFTER`]th day in a row, and clears it when
    /// a count succeeds after such a run. `series` is the tenant's counts in day order: up to
    /// and including today's carried entry (`counted_today` false), or the days before today's
    /// successful count (`counted_today` true). The episode's start is the run's first day.
    pub(super) async fn watch_billing_reads(
        &self,
        tenant: &Tenant,
        series: &[crate::billing::DailyCount],
        counted_today: bool,
    ) -> Result<(), PollError> {
        let after = crate::selfmon::READS_FAILING_AFTER;
        let (run, start) = crate::billing::carried_run(series);
        let Some(since) = start.and_then(|day| day.and_hms_opt(0, 0, 0)).map(|at| at.and_utc()) else { return Ok(()) };
        let transition = match (counted_today, run) {
            (false, run) if run == after => Transition::Raised { since },
            (true, run) if run >= after => Transition::Cleared { since },
            _ => return Ok(()),
        };
        let last = series.last();
        let message = if transition.raised() {
            format!(
                "Vigil's daily count of the tenant's protected mailboxes failed on {run} days in a row ({}): billing carries the figure counted on {} ({}) meanwhile.",
                last.and_then(|c| c.carried_over.as_deref()).unwrap_or("no detail"),
                last.map_or_else(String::new, |c| c.counted_on.to_string()),
                last.map_or(0, |c| c.protected_mailboxes)
            )
        } else {
            "The tenant's protected mailboxes were counted again.".to_owned()
        };
        let details = json!({
            "DaysCarried": run,
            "CarriedFigure": last.map(|c| c.protected_mailboxes),
            "CountedOn": last.map(|c| c.counted_on.to_string()),
            "Error": last.and_then(|c| c.carried_over.clone()),
        });
        self.send_condition(tenant, Condition::BillingReadsFailing, "mailbox_counts", transition, &message, details).await
    }

    /// Sends one self-monitoring event about `tenant` to the evaluator.
    pub(super) async fn send_condition(
        &self,
        tenant: &Tenant,
        condition: Condition,
        key: &str,
        transition: Transition,
        message: &str,
        details: Value,
    ) -> Result<(), PollError> {
        let subject = Subject { tenant_id: tenant.tenant_id.as_str(), tenant_name: &tenant.name, condition, key };
        let record = event(&subject, transition, message, details, self.clock.now());
        let body = AuditEventsMessage {
            msp_id: tenant.msp_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            // Vigil's own events are told apart by their label; the stream only labels them.
            stream: AuditStream::Content(ContentType::General),
            content_id: SELF_MONITORING_EVENTS.to_owned(),
            records: vec![record],
        };
        self.events.send_all(&[to_json(&body)]).await?;
        if transition.raised() {
            warn!(message = "Self-monitoring condition raised.", condition = condition.as_str(), subject = key, since = %transition.since());
        } else {
            info!(message = "Self-monitoring condition cleared.", condition = condition.as_str(), subject = key, since = %transition.since());
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "selfmon_tests.rs"]
mod tests;
