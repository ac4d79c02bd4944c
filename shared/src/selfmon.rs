//! Self-monitoring: conditions of Vigil's own service for an MSP that the MSP must act on, each
//! raised as Vigil's own event (RecordType 0, Workload `Vigil`, content id
//! [`crate::messages::SELF_MONITORING_EVENTS`]) which the built-in self-monitoring policies
//! (`policy/builtins/self-monitoring.json`, category Others) turn into an alert on the MSP's own
//! company, and cleared by a second event that resolves it (closing its tickets):
//!
//! * [`Condition::LostInterval`]: audit content left Microsoft's 7-day retention before Vigil
//!   fetched it (the stream's ledger records the loss); clears once Vigil has polled the stream
//!   for 24 hours without a new loss;
//! * [`Condition::WebhookDisabled`]: `subscriptions/list` shows the webhook Vigil registered
//!   disabled (too many failed notifications), expired or gone; Vigil registers it again on the
//!   next tick, and the condition clears when the list shows it enabled;
//! * [`Condition::SubscriptionStopped`]: `subscriptions/list` shows a content type's
//!   subscription disabled or absent (someone stopped it; listing then fails with AF20022 or
//!   AF20023); Vigil starts it again, and the condition clears when the list shows it enabled;
//! * [`Condition::ReadsFailing`]: a tenant's licence read failed [`READS_FAILING_AFTER`] times in a row;
//!   clears on the next successful read.
//! * [`Condition::BillingReadsFailing`]: a tenant's daily protected-mailbox count (the figure
//!   billing uses) failed on [`READS_FAILING_AFTER`] days in a row, each carrying the last figure
//!   over; clears at the next successful count (see `services::poll::mailboxes`).
//! * [`Condition::DestinationCredentials`]: a destination of the MSP answered 401/403 to Vigil;
//!   clears at the next successful request to it (see `services::dispatch::credentials`). It is
//!   about the MSP itself, not a customer: its events name [`MSP_ITSELF`] as their tenant.
//!
//! Each condition is tracked per subject as an *episode* ([`step`]): it is raised once, when it
//! starts holding, and cleared once, when it stops; both events carry the episode's start, so
//! their record ids are deterministic (a retried job sends the very same events, which the
//! evaluator counts once) and they land on the same alert. AWS-free.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The operation of the event raising a condition.
pub const CONDITION_RAISED: &str = "Vigil.SelfMonitoring";
/// The operation of the event clearing a condition.
pub const CONDITION_CLEARED: &str = "Vigil.SelfMonitoringCleared";
/// Consecutive failed licence reads that raise [`Condition::ReadsFailing`].
pub const READS_FAILING_AFTER: u32 = 3;

/// The tenant id events about the MSP itself (not one of its customers) carry: the nil GUID,
/// which no Entra tenant has. The evaluator files them like other findings about the MSP's own
/// service, under the MSP's name.
pub const MSP_ITSELF: &str = "00000000-0000-0000-0000-000000000000";

/// [`MSP_ITSELF`] as a tenant id.
#[must_use]
pub fn msp_itself() -> crate::ids::TenantId {
    crate::ids::TenantId::parse(MSP_ITSELF).unwrap_or_else(|_| unreachable!("the nil GUID parses"))
}

/// A condition of Vigil's own service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    LostInterval,
    WebhookDisabled,
    SubscriptionStopped,
    ReadsFailing,
    BillingReadsFailing,
    DestinationCredentials,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 6] = [
        Self::LostInterval,
        Self::WebhookDisabled,
        Self::SubscriptionStopped,
        Self::ReadsFailing,
        Self::BillingReadsFailing,
        Self::DestinationCredentials,
    ];

    /// The name in events (the `Condition` field the built-ins match on).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LostInterval => "lost_interval",
            Self::WebhookDisabled => "webhook_disabled",
            Self::SubscriptionStopped => "subscription_stopped",
            Self::ReadsFailing => "reads_failing",
            Self::BillingReadsFailing => "billing_reads_failing",
            Self::DestinationCredentials => "destination_credentials",
        }
    }

    /// Whether the condition is about the MSP itself ([`MSP_ITSELF`]) rather than a customer.
    #[must_use]
    pub fn about_the_msp(self) -> bool {
        matches!(self, Self::DestinationCredentials)
    }
}

/// The self-monitoring episodes of one stream, kept in its coverage ledger: when each open one
/// began (its alert is open), and when the stream's subscription was last checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamMonitoring {
    /// [`Condition::LostInterval`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_since: Option<DateTime<Utc>>,
    /// When `subscriptions/list` was last read for the stream's content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_checked_at: Option<DateTime<Utc>>,
    /// [`Condition::SubscriptionStopped`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_stopped_since: Option<DateTime<Utc>>,
    /// [`Condition::WebhookDisabled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_disabled_since: Option<DateTime<Utc>>,
}

impl StreamMonitoring {
    /// Whether an episode is open (the subscription is then checked at every poll, so it
    /// clears promptly).
    #[must_use]
    pub fn subscription_episode_open(&self) -> bool {
        self.subscription_stopped_since.is_some() || self.webhook_disabled_since.is_some()
    }
}

/// The open episode of [`Condition::DestinationCredentials`] for one destination of an MSP,
/// stored under the MSP's key ([`crate::ports::CredentialsEpisodeStore`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsEpisode {
    pub destination: crate::ids::DestinationId,
    /// The first refusal of the episode: the time its events carry (so a retry sends the very
    /// same events).
    pub since: DateTime<Utc>,
    /// Whether the raising event was sent (an episode opened by a delivery that crashed before
    /// sending it is raised by the next refusal, or closed silently by the next success).
    pub raised: bool,
    /// The destination's answer to the first refusal (at most [`CREDENTIALS_ERROR_CHARS`]).
    pub error: String,
}

/// The most characters of a destination's answer an episode keeps.
pub const CREDENTIALS_ERROR_CHARS: usize = 500;

/// What one observation does to an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The condition started holding: raise it, as of `since`.
    Raised { since: DateTime<Utc> },
    /// The condition that held since `since` stopped: clear it.
    Cleared { since: DateTime<Utc> },
}

impl Transition {
    /// The episode's start.
    #[must_use]
    pub fn since(self) -> DateTime<Utc> {
        match self {
            Self::Raised { since } | Self::Cleared { since } => since,
        }
    }

    /// Whether it raises.
    #[must_use]
    pub fn raised(self) -> bool {
        matches!(self, Self::Raised { .. })
    }
}

/// One observation of a condition: `open` is the start of the episode raised before (`None`:
/// none is open), `holds` whether the condition holds now, `started` when it began holding (the
/// new episode's start if one opens). Returns the episode open afterwards and the transition to
/// announce, if any: raised once when it starts holding, cleared once when it stops.
#[must_use]
pub fn step(open: Option<DateTime<Utc>>, holds: bool, started: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<Transition>) {
    match (open, holds) {
        (None, true) => (Some(started), Some(Transition::Raised { since: started })),
        (Some(since), false) => (None, Some(Transition::Cleared { since })),
        (open, _) => (open, None),
    }
}

/// Who and what an event is about.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The customer tenant the condition is about.
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    pub condition: Condition,
    /// What within the tenant: a stream, a content type, a read.
    pub key: &'a str,
}

/// The event announcing `transition` of `subject`, as a record of Vigil's own: `Condition`
/// names the condition, `SubjectKey` (condition and key) groups the alert, `Message` says what
/// is wrong and what to do, `details` adds facts for the ticket (an object; other values are
/// ignored).
#[must_use]
pub fn event(subject: &Subject<'_>, transition: Transition, message: &str, details: Value, now: DateTime<Utc>) -> Value {
    let state = if transition.raised() { "raised" } else { "cleared" };
    let since = transition.since();
    let mut event = json!({
        "Id": format!("vigil-selfmon:{}:{}:{}:{}:{state}", subject.tenant_id, subject.condition.as_str(), subject.key, since.timestamp()),
        "RecordType": 0,
        "CreationTime": since.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "Operation": if transition.raised() { CONDITION_RAISED } else { CONDITION_CLEARED },
        "OrganizationId": subject.tenant_id,
        "OrganizationName": subject.tenant_name,
        "UserId": "Vigil",
        "Workload": "Vigil",
        "ObservedAt": now.to_rfc3339(),
        "Since": since.to_rfc3339(),
        "Condition": subject.condition.as_str(),
        "Subject": subject.key,
        "SubjectKey": format!("{}:{}", subject.condition.as_str(), subject.key),
        "Message": crate::messages::truncate_to(message, 1000),
    });
    if let (Some(event), Value::Object(details)) = (event.as_object_mut(), details) {
        for (name, value) in details {
            event.entry(name).or_insert(value);
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn a_condition_is_raised_once_per_episode_and_cleared_once() {
        let observations = [false, true, true, true, false, false, true, false];
        let mut open = None;
        let mut transitions = Vec::new();
        for (minute, holds) in (0..).zip(observations) {
            let (after, transition) = step(open, holds, t(minute));
            open = after;
            transitions.extend(transition);
        }
        assert_eq!(
            transitions,
            [
                Transition::Raised { since: t(1) },
                Transition::Cleared { since: t(1) },
                Transition::Raised { since: t(6) },
                Transition::Cleared { since: t(6) },
            ]
        );
        assert_eq!(open, None);
    }

    #[test]
    fn an_open_episode_keeps_its_start_however_often_it_is_observed() {
        let (open, transition) = step(Some(t(0)), true, t(30));
        assert_eq!((open, transition), (Some(t(0)), None));
    }

    #[test]
    fn both_events_of_an_episode_share_the_time_and_differ_only_in_state() {
        let subject = Subject { tenant_id: "t1", tenant_name: "Contoso", condition: Condition::WebhookDisabled, key: "Audit.Exchange" };
        let raised = event(&subject, Transition::Raised { since: t(0) }, "disabled", json!({"WebhookStatus": "disabled"}), t(5));
        let cleared = event(&subject, Transition::Cleared { since: t(0) }, "enabled", json!({}), t(50));
        assert_eq!(raised["Id"], "vigil-selfmon:t1:webhook_disabled:Audit.Exchange:1796558400:raised");
        assert_eq!(cleared["Id"], "vigil-selfmon:t1:webhook_disabled:Audit.Exchange:1796558400:cleared");
        assert_eq!(raised["CreationTime"], cleared["CreationTime"]);
        assert_eq!(raised["SubjectKey"], cleared["SubjectKey"]);
        assert_eq!(raised["Operation"], CONDITION_RAISED);
        assert_eq!(cleared["Operation"], CONDITION_CLEARED);
        assert_eq!(raised["WebhookStatus"], "disabled");
        assert_eq!(raised["RecordType"], 0);
        assert!(crate::audit::AuditRecord::from_value(raised).is_ok(), "a record the evaluator reads");
    }

    #[test]
    fn details_never_overwrite_the_fields_the_policies_match_on() {
        let subject = Subject { tenant_id: "t1", tenant_name: "Contoso", condition: Condition::LostInterval, key: "Audit.General" };
        let e = event(&subject, Transition::Raised { since: t(0) }, "lost", json!({"Workload": "Exchange", "Condition": "x"}), t(0));
        assert_eq!(e["Workload"], "Vigil");
        assert_eq!(e["Condition"], "lost_interval");
    }
}
