//! Messages between functions (SQS bodies). Versioned JSON; a body that does not parse is an
//! invalid message and ends in the dead-letter queue, never silently dropped.

use crate::ids::{AlertId, AuditStream, ContentType, MspId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// SQS's message size limit, with headroom for attributes.
pub const MAX_MESSAGE_BYTES: usize = 240 * 1024;

/// Audit records (or, for [`AuditStream::GraphAlerts`], Graph alert objects) from one content
/// blob or one alert page of one tenant, on their way to the evaluator.
/// Every `content_id` of an events message Vigil makes itself (connection problems, stuck
/// streams) starts with this; only such messages may carry records of RecordType 0, Vigil's own.
pub const VIGIL_EVENTS_PREFIX: &str = "vigil-";
/// The `content_id` of events messages that carry admin-relationship findings (see
/// [`crate::relationships::findings`]): about the MSP's own access to a customer, which need
/// not be a Vigil tenant.
pub const ADMIN_RELATIONSHIP_EVENTS: &str = "vigil-adminrel";
/// The `content_id` of events messages that carry billing reports (a quantity changed by hand
/// in a PSA, see [`crate::services::billing_sync`]): about the MSP's own PSA, like admin
/// relationships, so their tickets go to the MSP's own company.
pub const BILLING_EVENTS: &str = "vigil-billing";
/// The `content_id` of events messages that carry licence findings (see
/// [`crate::licences::findings`]).
pub const LICENCE_EVENTS: &str = "vigil-licences";
/// The `content_id` of events messages that carry self-monitoring conditions (see
/// [`crate::selfmon`]): about Vigil's own service for the MSP, so their tickets go to the MSP's
/// own company.
pub const SELF_MONITORING_EVENTS: &str = "vigil-selfmon";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEventsMessage {
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    pub stream: AuditStream,
    /// The content blob id, or another label of where the records came from.
    pub content_id: String,
    /// Raw records, as received (already checked to have the common fields).
    pub records: Vec<Value>,
}

/// Work for the audit-poller's job consumer (the poll-jobs queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PollJob {
    /// Poll one stream of one tenant up to now (enqueued by the scheduled fan-out).
    Stream { msp_id: MspId, tenant_id: TenantId, stream: AuditStream },
    /// Fetch content blobs Microsoft announced by webhook (polling remains the safety net; a
    /// blob both announced and listed is processed once).
    Fetch { msp_id: MspId, tenant_id: TenantId, content_type: ContentType, blobs: Vec<AnnouncedBlob> },
    /// Run a stored replay ([`crate::replay::Replay`]): its policy in shadow over the tenant's
    /// listed content, nothing enqueued for evaluation (sent by the config API).
    Replay { msp_id: MspId, tenant_id: TenantId, replay_id: String },
    /// Read the MSP's own partner tenant: its GDAP relationships with customers (sent by the
    /// tick, daily per MSP).
    AdminRelationships {
        msp_id: MspId,
        /// When the tick asked for the read: the time findings raised by it carry, the same on
        /// every retry of the job (`None`: the time it runs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    /// Read one customer tenant's sign-in logs since `since` for partner technicians' sign-ins
    /// (sent by the tick just before its partner tenant's read).
    CustomerSignIns { msp_id: MspId, tenant_id: TenantId, since: DateTime<Utc> },
    /// Read one customer tenant's licences (`subscribedSkus`, `directory/subscriptions`) and
    /// announce the licence findings that start or stop holding (sent by the tick, daily per
    /// tenant by default).
    Licences {
        msp_id: MspId,
        tenant_id: TenantId,
        /// When the tick asked for the read: the time findings raised by it carry, the same on
        /// every retry of the job (`None`: the time it runs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    /// Carry out a confirmed removal of one admin relationship (sent by the config API; sent
    /// again by the job itself, delayed, while Graph is still terminating it).
    RemoveRelationship { msp_id: MspId, relationship_id: String },
    /// Count one tenant's protected mailboxes for `day` (sent by the tick, daily per tenant).
    MailboxCount { msp_id: MspId, tenant_id: TenantId, day: chrono::NaiveDate },
}

/// A content blob from a webhook notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncedBlob {
    pub content_id: String,
    pub content_uri: String,
    pub content_created: DateTime<Utc>,
}

/// "Sync this tenant's billing for this period": sent by the poller each time a tenant's daily
/// figure is recorded on a day the MSP's schedule makes a sync due, to the tickets queue (the
/// ticket-dispatcher holds the PSA credentials). Idempotent: a mapping's period is synced once
/// however often the job is delivered, so a count job retried after sending it (or the job
/// delivered twice) changes nothing, and a send that failed is redone by the count's retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSyncJob {
    pub msp_id: MspId,
    /// The tenant whose figure was recorded (`None`: every mapping of the MSP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// The period synced (a day, or a month).
    pub billing_period: crate::billing::sync::BillingPeriod,
    /// The day whose counts made the sync due.
    pub day: chrono::NaiveDate,
}

/// "This alert changed; bring its tickets up to date."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertChangedMessage {
    pub msp_id: MspId,
    pub alert_id: AlertId,
    /// `None`: the change is fanned out, one message per destination the alert goes to;
    /// `Some`: the delivery of the alert to this one destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<crate::ids::DestinationId>,
}

impl AlertChangedMessage {
    /// The message announcing a change of `alert_id` to every destination.
    #[must_use]
    pub fn fan_out(msp_id: MspId, alert_id: AlertId) -> Self {
        Self { msp_id, alert_id, destination: None }
    }
}

/// A PSA said one of its tickets changed (a callback): read its state back now instead of
/// waiting for the next scheduled read-back. Sent to the tickets queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketChangedMessage {
    pub msp_id: MspId,
    pub destination: crate::ids::DestinationId,
    pub ticket_id: String,
}

/// Something the poller could not use, kept whole for an operator (sent to the events DLQ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedContent {
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    pub stream: AuditStream,
    pub content_id: String,
    pub reason: String,
    /// The offending record or blob body (truncated to fit a message).
    pub content: String,
}

/// Packs records into as few messages as fit under [`MAX_MESSAGE_BYTES`] each.
#[must_use]
pub fn pack_records(template: &AuditEventsMessage, records: Vec<Value>) -> Vec<AuditEventsMessage> {
    let envelope = serde_json::to_string(&AuditEventsMessage { records: Vec::new(), ..template.clone() }).map_or(512, |s| s.len());
    let mut messages = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut size = envelope;
    for record in records {
        let record_size = serde_json::to_string(&record).map_or(0, |s| s.len()) + 1;
        if !current.is_empty() && size + record_size > MAX_MESSAGE_BYTES {
            messages.push(AuditEventsMessage { records: std::mem::take(&mut current), ..template.clone() });
            size = envelope;
        }
        size += record_size;
        current.push(record);
    }
    if !current.is_empty() {
        messages.push(AuditEventsMessage { records: current, ..template.clone() });
    }
    messages
}

/// Truncates text to at most `max` bytes on a character boundary.
#[must_use]
pub fn truncate_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_packed_under_the_sqs_limit_without_loss() {
        let template = AuditEventsMessage {
            msp_id: MspId::parse("acme").unwrap(),
            tenant_id: TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
            stream: ContentType::Exchange.into(),
            content_id: "c1".into(),
            records: vec![],
        };
        let records: Vec<Value> = (0..1000).map(|i| json!({"Id": i.to_string(), "Padding": "x".repeat(1000)})).collect();
        let messages = pack_records(&template, records);
        assert!(messages.len() > 1);
        for message in &messages {
            assert!(serde_json::to_string(message).unwrap().len() <= MAX_MESSAGE_BYTES);
        }
        assert_eq!(messages.iter().map(|m| m.records.len()).sum::<usize>(), 1000);
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate_to("héllo", 2), "h");
        assert_eq!(truncate_to("abc", 10), "abc");
    }
}
