//! Dead-letter queues for an operator (`vigil-admin dlq …`, docs/runbook.md): what is waiting on
//! a DLQ, why each message failed as far as the message itself can tell, and redriving chosen
//! messages back to the queue they came from.
//!
//! Why a message failed: SQS keeps no error with a dead-lettered message, so each message is
//! read with the consumer's own message types ([`QueueKind`]) and classified ([`Diagnosis`]):
//! a body the consumer cannot parse fails again on every redrive (keep it for a bug report,
//! then delete it); content the poller quarantined is kept for inspection, not for
//! re-processing; a body that parses failed *while being processed* (a PSA down for hours, a
//! revoked credential, a bug), and the consumer's log lines for its message id say what
//! happened (the printed Logs Insights query finds them: every failure is logged with
//! `error_class` inside the `sqs_message` span that carries the id).
//!
//! Redrive is safe because every effect is idempotent (records claimed by id, deterministic
//! alert ids, per-destination delivery state with intent before and outcome after): a message
//! whose effect already happened changes nothing the second time. A chosen message is sent to
//! the source queue first and deleted from the DLQ only after, so a crash between the two
//! leaves a duplicate (harmless) rather than a loss. Messages not chosen are made visible again
//! at once.

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;
use std::collections::BTreeMap;
use vigil::messages::{AlertChangedMessage, AuditEventsMessage, BillingSyncJob, PollJob, QuarantinedContent, TicketChangedMessage};

/// Which queue's dead letters these are (decides how bodies are read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// Poll jobs for the audit-poller.
    PollJobs,
    /// Audit events for the alert-evaluator (and content the poller quarantined).
    Events,
    /// Ticket work for the ticket-dispatcher.
    Tickets,
}

impl QueueKind {
    /// `poll-jobs`, `events` or `tickets`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "poll-jobs" => Some(Self::PollJobs),
            "events" => Some(Self::Events),
            "tickets" => Some(Self::Tickets),
            _ => None,
        }
    }

    /// The environment variables holding the source queue's and the DLQ's URLs (the stack
    /// outputs `…QueueUrl` and `…DeadLetterQueueUrl`).
    #[must_use]
    pub fn variables(self) -> (&'static str, &'static str) {
        match self {
            Self::PollJobs => ("POLL_JOBS_QUEUE_URL", "POLL_JOBS_DLQ_URL"),
            Self::Events => ("EVENTS_QUEUE_URL", "EVENTS_DLQ_URL"),
            Self::Tickets => ("TICKETS_QUEUE_URL", "TICKETS_DLQ_URL"),
        }
    }

    /// The function that consumes the source queue.
    #[must_use]
    pub fn consumer(self) -> &'static str {
        match self {
            Self::PollJobs => "audit-poller",
            Self::Events => "alert-evaluator",
            Self::Tickets => "ticket-dispatcher",
        }
    }
}

/// What a dead-lettered message says about why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// The consumer cannot read the body: it fails again on every redrive.
    Unreadable(String),
    /// Content the poller set aside (`QuarantinedContent`): for inspection, not re-processing.
    Quarantined(String),
    /// The body is valid work that failed while being processed; redrive once the cause is
    /// fixed.
    ProcessingFailed,
}

impl Diagnosis {
    /// Whether redriving can succeed without changing the message.
    #[must_use]
    pub fn redrivable(&self) -> bool {
        matches!(self, Self::ProcessingFailed)
    }
}

impl std::fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(why) => write!(f, "unreadable body, fails again on every redrive: {why}"),
            Self::Quarantined(reason) => write!(f, "content the poller quarantined (not for redrive): {reason}"),
            Self::ProcessingFailed => write!(f, "valid work that failed while processed: see the consumer's log for this message id"),
        }
    }
}

/// One message waiting on a DLQ.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    /// How many times the consumer received it (the queue's maxReceiveCount when dead-lettered
    /// by redrive).
    pub receive_count: u32,
    /// When it was first sent (to the source queue), epoch ms.
    pub sent_at_ms: Option<i64>,
    /// Who and what it is about (msp, tenant, kind, alert, destination, content).
    pub subject: BTreeMap<&'static str, String>,
    pub diagnosis: Diagnosis,
    receipt_handle: String,
    body: String,
}

/// Reads a body as `kind`'s consumer would.
#[must_use]
pub fn diagnose(kind: QueueKind, body: &str) -> (Diagnosis, BTreeMap<&'static str, String>) {
    let mut subject = BTreeMap::new();
    let value: Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(error) => return (Diagnosis::Unreadable(format!("not JSON: {error}")), subject),
    };
    for (key, field) in [
        ("msp", "msp_id"),
        ("tenant", "tenant_id"),
        ("kind", "kind"),
        ("alert", "alert_id"),
        ("destination", "destination"),
        ("stream", "stream"),
        ("content", "content_id"),
    ] {
        if let Some(text) = value.get(field).and_then(Value::as_str) {
            subject.insert(key, text.to_owned());
        }
    }
    let parsed: Result<(), String> = match kind {
        QueueKind::PollJobs => serde_json::from_value::<PollJob>(value.clone()).map(drop).map_err(|e| e.to_string()),
        QueueKind::Events => {
            if value.get("reason").is_some() && value.get("content").is_some() {
                if let Ok(quarantined) = serde_json::from_value::<QuarantinedContent>(value.clone()) {
                    return (Diagnosis::Quarantined(quarantined.reason), subject);
                }
            }
            serde_json::from_value::<AuditEventsMessage>(value.clone()).map(drop).map_err(|e| e.to_string())
        }
        QueueKind::Tickets => serde_json::from_value::<AlertChangedMessage>(value.clone())
            .map(drop)
            .or_else(|first| serde_json::from_value::<TicketChangedMessage>(value.clone()).map(drop).map_err(|_| first))
            .or_else(|first| serde_json::from_value::<BillingSyncJob>(value.clone()).map(drop).map_err(|_| first.to_string())),
    };
    match parsed {
        Ok(()) => (Diagnosis::ProcessingFailed, subject),
        Err(error) => (Diagnosis::Unreadable(format!("not a {} message: {error}", kind.consumer())), subject),
    }
}

/// Why a DLQ operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DlqError(pub String);

fn sqs_error(what: &str, error: impl std::error::Error) -> DlqError {
    DlqError(format!("{what}: {}", aws_sdk_sqs::error::DisplayErrorContext(error)))
}

/// The dead letters of one DLQ, received (and so hidden from other readers) for
/// `hold_seconds`; [`Dlq::release`] or [`Dlq::redrive`] ends the hold.
pub struct Dlq {
    sqs: aws_sdk_sqs::Client,
    kind: QueueKind,
    dlq_url: String,
    pub letters: Vec<DeadLetter>,
}

impl Dlq {
    /// Receives every message on the DLQ (up to `limit`), holding them for `hold_seconds`.
    ///
    /// # Errors
    /// When SQS refuses.
    pub async fn read(sqs: aws_sdk_sqs::Client, kind: QueueKind, dlq_url: &str, limit: usize, hold_seconds: i32) -> Result<Self, DlqError> {
        let mut letters: Vec<DeadLetter> = Vec::new();
        let mut empty = 0;
        while letters.len() < limit && empty < 2 {
            let received = sqs
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(hold_seconds)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .map_err(|e| sqs_error("receive from the DLQ", e))?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                empty += 1;
                continue;
            }
            for message in messages {
                let (Some(id), Some(handle)) = (message.message_id(), message.receipt_handle()) else { continue };
                if letters.iter().any(|l| l.message_id == id) {
                    continue;
                }
                let attribute = |name: MessageSystemAttributeName| message.attributes().and_then(|a| a.get(&name)).cloned();
                let body = message.body().unwrap_or_default().to_owned();
                let (diagnosis, subject) = diagnose(kind, &body);
                letters.push(DeadLetter {
                    message_id: id.to_owned(),
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount).and_then(|c| c.parse().ok()).unwrap_or(0),
                    sent_at_ms: attribute(MessageSystemAttributeName::SentTimestamp).and_then(|t| t.parse().ok()),
                    subject,
                    diagnosis,
                    receipt_handle: handle.to_owned(),
                    body,
                });
            }
        }
        Ok(Self { sqs, kind, dlq_url: dlq_url.to_owned(), letters })
    }

    /// Makes every held message visible again.
    ///
    /// # Errors
    /// When SQS refuses.
    pub async fn release(self) -> Result<(), DlqError> {
        for letter in &self.letters {
            self.sqs
                .change_message_visibility()
                .queue_url(&self.dlq_url)
                .receipt_handle(&letter.receipt_handle)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| sqs_error("release a message", e))?;
        }
        Ok(())
    }

    /// Sends the chosen messages (by id; `all`: every redrivable one) back to `source_url`, then
    /// deletes them from the DLQ; releases the rest. Returns the ids moved. An id that is not
    /// on the DLQ, or a message whose diagnosis says a redrive cannot succeed, is refused unless
    /// `force`.
    ///
    /// # Errors
    /// When SQS refuses or a chosen id is refused (nothing is moved then).
    pub async fn redrive(self, source_url: &str, ids: &[String], all: bool, force: bool) -> Result<Vec<String>, DlqError> {
        let chosen: Vec<&DeadLetter> =
            self.letters.iter().filter(|l| if all { l.diagnosis.redrivable() || force } else { ids.contains(&l.message_id) }).collect();
        let problems: Vec<String> = ids
            .iter()
            .filter_map(|id| match self.letters.iter().find(|l| &l.message_id == id) {
                None => Some(format!("{id} is not on the {} DLQ", self.kind.consumer())),
                Some(letter) if !letter.diagnosis.redrivable() && !force => {
                    Some(format!("{id}: {} (use --force to send it anyway)", letter.diagnosis))
                }
                Some(_) => None,
            })
            .collect();
        if !problems.is_empty() {
            self.release().await?;
            return Err(DlqError(problems.join("; ")));
        }
        let mut moved = Vec::new();
        for letter in &chosen {
            // Send first, delete after: a crash in between leaves a harmless duplicate.
            self.sqs
                .send_message()
                .queue_url(source_url)
                .message_body(&letter.body)
                .send()
                .await
                .map_err(|e| sqs_error("send to the source queue", e))?;
            self.sqs
                .delete_message()
                .queue_url(&self.dlq_url)
                .receipt_handle(&letter.receipt_handle)
                .send()
                .await
                .map_err(|e| sqs_error("delete from the DLQ", e))?;
            moved.push(letter.message_id.clone());
        }
        let rest = Self { letters: self.letters.iter().filter(|l| !moved.contains(&l.message_id)).cloned().collect(), ..self };
        rest.release().await?;
        Ok(moved)
    }

    /// The Logs Insights query that finds the consumer's log lines for `message_id`.
    #[must_use]
    pub fn log_query(&self, message_id: &str) -> String {
        format!(
            "fields @timestamp, level, fields.message, fields.error_class, fields.error | filter @message like '{message_id}' | sort @timestamp asc   (log group /aws/lambda/<{} function name>)",
            self.kind.consumer()
        )
    }
}

/// How many messages the DLQ holds (visible and in flight).
///
/// # Errors
/// When SQS refuses.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, DlqError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| sqs_error("read the queue's attributes", e))?;
    let count =
        |name: QueueAttributeName| attributes.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(count(QueueAttributeName::ApproximateNumberOfMessages) + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_the_consumer_cannot_read_is_not_redrivable() {
        let (diagnosis, _) = diagnose(QueueKind::Tickets, "{not json");
        assert!(matches!(diagnosis, Diagnosis::Unreadable(_)));
        assert!(!diagnosis.redrivable());
        let (diagnosis, _) = diagnose(QueueKind::PollJobs, r#"{"kind":"teleport","msp_id":"m"}"#);
        assert!(matches!(diagnosis, Diagnosis::Unreadable(ref why) if why.contains("audit-poller")));
    }

    #[test]
    fn valid_ticket_work_is_redrivable_and_names_its_alert() {
        let (diagnosis, subject) = diagnose(QueueKind::Tickets, r#"{"msp_id":"acme","alert_id":"0123456789abcdef0123456789abcdef"}"#);
        assert_eq!(diagnosis, Diagnosis::ProcessingFailed);
        assert_eq!(subject.get("alert").map(String::as_str), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(subject.get("msp").map(String::as_str), Some("acme"));
    }

    #[test]
    fn a_billing_sync_job_is_ticket_dispatcher_work_and_redrivable() {
        let body = r#"{"msp_id":"acme","billing_period":{"key":"2026-12","effective":"2026-12-31"},"day":"2026-12-31"}"#;
        let (diagnosis, subject) = diagnose(QueueKind::Tickets, body);
        assert_eq!(diagnosis, Diagnosis::ProcessingFailed);
        assert_eq!(subject.get("msp").map(String::as_str), Some("acme"));
    }

    #[test]
    fn quarantined_content_is_kept_for_inspection_not_redrive() {
        let body = r#"{"msp_id":"acme","tenant_id":"5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11","stream":"Audit.Exchange","content_id":"c1","reason":"record without Id","content":"{}"}"#;
        let (diagnosis, _) = diagnose(QueueKind::Events, body);
        assert_eq!(diagnosis, Diagnosis::Quarantined("record without Id".into()));
        assert!(!diagnosis.redrivable());
    }
}
