//! Messages about alert changes, for destinations that hear about alerts without keeping
//! tickets: chat channels, signed webhooks and e-mail.
//!
//! An alert has three kinds of change worth a message ([`AlertChange`]): it was raised, it
//! fired again (with its new hit count), it resolved. Each change has a stable id
//! ([`message_id`]) that every retry of its message carries, so a receiver that keeps ids (a
//! signed-webhook consumer) shows it once, and the dispatcher records it as intent before the
//! post and outcome after. The content is rendered once, vendor-neutrally ([`render_message`]):
//! a headline, the neutral ticket text, a few facts, a link, and the versioned event a webhook
//! sends ([`AlertEvent`], documented by `infra/schemas/webhook-event.v1.schema.json`). Connectors only map it
//! to their wire format and cut it to their limits with [`fit`].

use crate::alert::{Alert, AlertStatus, Category, Severity};
use crate::render::{RenderedTicket, render_ticket};
use crate::ticket::Delivery;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The version of [`AlertEvent`]'s `data`; bumped only by a change a consumer must know about.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// What a cut text ends with, so a reader knows there is more in Vigil.
pub const TRUNCATION_MARKER: &str = "… (cut to fit; the whole alert is in Vigil)";

/// A change of an alert that a channel hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    /// The alert's first message.
    Raised,
    /// More hits since the last message (or hits again after it resolved).
    Refired,
    /// The condition cleared, or someone resolved it.
    Resolved,
}

impl AlertChange {
    /// The event type a webhook sends (`vigil.alert.raised`, …).
    #[must_use]
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Raised => "vigil.alert.raised",
            Self::Refired => "vigil.alert.refired",
            Self::Resolved => "vigil.alert.resolved",
        }
    }

    /// One word for people (`Raised`, `Fired again`, `Resolved`).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Raised => "Raised",
            Self::Refired => "Fired again",
            Self::Resolved => "Resolved",
        }
    }
}

/// The change of `alert` a channel has not heard about yet, given what its delivery says was
/// posted: nothing before the first hit; a resolution only once something was posted (an alert
/// that resolved before its first message needs none); hits beyond the last posted count.
#[must_use]
pub fn change_due(alert: &Alert, delivery: &Delivery) -> Option<AlertChange> {
    let nothing_posted = delivery.notified_hits == 0;
    if alert.status == AlertStatus::Resolved {
        return (!nothing_posted && !delivery.resolution_noted).then_some(AlertChange::Resolved);
    }
    if alert.hit_count > delivery.notified_hits {
        return Some(if nothing_posted { AlertChange::Raised } else { AlertChange::Refired });
    }
    None
}

/// The stable id of one change's message: the same for every retry, different for every change
/// (a re-fire carries its hit count; a resolution the hit count it resolved at, so a second
/// resolution after the alert fired again is a new message). Letters, digits and `_` only
/// (Standard Webhooks ids may not contain `.`).
#[must_use]
pub fn message_id(alert: &Alert, change: AlertChange) -> String {
    match change {
        AlertChange::Raised | AlertChange::Refired => format!("vigil_{}_hits_{}", alert.id, alert.hit_count),
        AlertChange::Resolved => format!("vigil_{}_resolved_{}", alert.id, alert.hit_count),
    }
}

/// The versioned event a signed webhook sends: `{"type", "timestamp", "data"}` as the Standard
/// Webhooks specification recommends. Its JSON Schema is `infra/schemas/webhook-event.v1.schema.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// `vigil.alert.raised`, `vigil.alert.refired` or `vigil.alert.resolved`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change happened (the last hit, or the resolution), RFC 3339 UTC.
    pub timestamp: String,
    pub data: AlertEventData,
}

/// What an [`AlertEvent`] says of the alert. Thin on purpose: ids, names and counts, and a link
/// to the rest (activities and user details stay in Vigil).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEventData {
    pub schema_version: u32,
    pub msp_id: String,
    pub alert_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub policy_id: String,
    pub policy_name: String,
    pub category: String,
    pub severity: String,
    pub status: AlertStatus,
    pub title: String,
    pub hit_count: u64,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// The alert in Vigil's API, when the deployment has an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One message about one change of one alert, rendered once for every channel kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertMessage {
    /// The change's stable id ([`message_id`]).
    pub id: String,
    pub change: AlertChange,
    /// One line: `Raised: [Vigil] policy: title (tenant)`.
    pub headline: String,
    /// The neutral ticket text (summary, sections, footer), for kinds that show it whole.
    pub body: RenderedTicket,
    /// A few facts for compact layouts (name, value).
    pub facts: Vec<(String, String)>,
    /// The alert in Vigil, when the deployment has an address.
    pub link: Option<String>,
    pub severity: Severity,
    pub category: Category,
    pub hit_count: u64,
    /// When the change happened (stable across retries).
    pub occurred_at: DateTime<Utc>,
    /// The webhook event.
    pub event: AlertEvent,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Renders the message for `change` of `alert`. `api_base` adds a link to the alert.
#[must_use]
pub fn render_message(alert: &Alert, change: AlertChange, api_base: Option<&str>) -> AlertMessage {
    let body = render_ticket(alert, api_base, None);
    let link = api_base.map(|base| format!("{}/v1/alerts/{}", base.trim_end_matches('/'), alert.id));
    let occurred_at = match change {
        AlertChange::Resolved => alert.resolved_at.unwrap_or(alert.updated_at),
        AlertChange::Raised | AlertChange::Refired => alert.last_seen,
    };
    let mut facts = vec![
        ("Tenant".to_owned(), alert.tenant_name.clone()),
        ("Policy".to_owned(), alert.policy_name.clone()),
        ("Severity".to_owned(), alert.severity.as_str().to_owned()),
        ("Category".to_owned(), alert.category.as_str().to_owned()),
        ("Hits".to_owned(), alert.hit_count.to_string()),
        ("Last seen".to_owned(), alert.last_seen.format("%Y-%m-%d %H:%M UTC").to_string()),
    ];
    if let Some(user) = &body.affected_user {
        facts.insert(1, ("User".to_owned(), user.clone()));
    }
    let event = AlertEvent {
        event_type: change.event_type().to_owned(),
        timestamp: rfc3339(occurred_at),
        data: AlertEventData {
            schema_version: EVENT_SCHEMA_VERSION,
            msp_id: alert.msp_id.to_string(),
            alert_id: alert.id.to_string(),
            tenant_id: alert.tenant_id.to_string(),
            tenant_name: alert.tenant_name.clone(),
            policy_id: alert.policy_id.to_string(),
            policy_name: alert.policy_name.clone(),
            category: alert.category.as_str().to_owned(),
            severity: alert.severity.as_str().to_owned(),
            status: alert.status,
            title: alert.title.clone(),
            hit_count: alert.hit_count,
            first_seen: rfc3339(alert.first_seen),
            last_seen: rfc3339(alert.last_seen),
            resolved_at: alert.resolved_at.map(rfc3339),
            link: link.clone(),
        },
    };
    AlertMessage {
        id: message_id(alert, change),
        change,
        headline: format!("{}: {}", change.label(), body.title),
        body,
        facts,
        link,
        severity: alert.severity,
        category: alert.category,
        hit_count: alert.hit_count,
        occurred_at,
        event,
    }
}

/// `text` within `max` characters: whole when it fits, else cut and ended with
/// [`TRUNCATION_MARKER`] (never failing, however small `max` is).
#[must_use]
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let marker_chars = TRUNCATION_MARKER.chars().count();
    if max <= marker_chars {
        return TRUNCATION_MARKER.chars().take(max).collect();
    }
    let mut out: String = text.chars().take(max - marker_chars).collect();
    out.push_str(TRUNCATION_MARKER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::sample_alert;
    use crate::ids::{AlertId, DestinationId, MspId};

    fn delivery(alert: &Alert) -> Delivery {
        Delivery::new(MspId::parse("acme-msp").unwrap(), alert.id.clone(), DestinationId::parse("chat").unwrap())
    }

    #[test]
    fn a_channel_hears_raised_then_refired_then_resolved_and_nothing_twice() {
        let mut alert = sample_alert(Utc::now());
        alert.hit_count = 1;
        let mut posted = delivery(&alert);
        assert_eq!(change_due(&alert, &posted), Some(AlertChange::Raised));
        posted.notified_hits = 1;
        assert_eq!(change_due(&alert, &posted), None);
        alert.hit_count = 4;
        assert_eq!(change_due(&alert, &posted), Some(AlertChange::Refired));
        posted.notified_hits = 4;
        alert.status = AlertStatus::Resolved;
        assert_eq!(change_due(&alert, &posted), Some(AlertChange::Resolved));
        posted.resolution_noted = true;
        assert_eq!(change_due(&alert, &posted), None);
    }

    #[test]
    fn an_alert_that_resolved_before_its_first_message_needs_none() {
        let mut alert = sample_alert(Utc::now());
        alert.status = AlertStatus::Resolved;
        assert_eq!(change_due(&alert, &delivery(&alert)), None);
    }

    #[test]
    fn every_change_has_its_own_id_and_every_retry_the_same() {
        let mut alert = sample_alert(Utc::now());
        alert.id = AlertId::derive(&["message-ids"]);
        alert.hit_count = 2;
        let raised = message_id(&alert, AlertChange::Raised);
        assert_eq!(raised, message_id(&alert, AlertChange::Raised));
        let resolved_at_two = message_id(&alert, AlertChange::Resolved);
        alert.hit_count = 3;
        assert_ne!(message_id(&alert, AlertChange::Refired), raised);
        assert_ne!(message_id(&alert, AlertChange::Resolved), resolved_at_two, "a second resolution is a new message");
        assert!(raised.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{raised}");
    }

    #[test]
    fn the_event_is_the_versioned_documented_shape_with_a_stable_timestamp() {
        let mut alert = sample_alert(Utc::now());
        alert.hit_count = 3;
        let message = render_message(&alert, AlertChange::Refired, Some("https://vigil.example/"));
        let event = serde_json::to_value(&message.event).unwrap();
        assert_eq!(event["type"], "vigil.alert.refired");
        assert_eq!(event["data"]["schema_version"], 1);
        assert_eq!(event["data"]["hit_count"], 3);
        assert_eq!(event["data"]["link"], format!("https://vigil.example/v1/alerts/{}", alert.id));
        assert_eq!(message.occurred_at, alert.last_seen, "every retry renders the same time");
        assert_eq!(event["timestamp"], alert.last_seen.to_rfc3339_opts(SecondsFormat::Secs, true));
        assert!(event["timestamp"].as_str().unwrap().ends_with('Z'), "RFC 3339 in UTC");
        assert!(message.headline.starts_with("Fired again: [Vigil]"), "{}", message.headline);
    }

    #[test]
    fn fitting_cuts_with_the_marker_and_never_exceeds_the_limit() {
        assert_eq!(fit("short", 10), "short");
        let long = "x".repeat(500);
        for max in [0, 5, 40, 100, 499] {
            let fitted = fit(&long, max);
            assert!(fitted.chars().count() <= max, "{max}");
        }
        assert!(fit(&long, 100).ends_with(TRUNCATION_MARKER));
        assert_eq!(fit(&long, 100).chars().count(), 100, "a cut text uses all the room it has");
    }
}
