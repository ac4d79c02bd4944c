//! Plays the Lambda SQS event source mapping: receives batches (up to the template's
//! `BatchSize`), invokes the real handler with an `SqsEvent`, deletes the messages the handler
//! did not report as failed, and leaves failed ones to reappear after the visibility timeout.
//! After the queue's `maxReceiveCount`, SQS (moto) moves them to the dead-letter queue — the
//! same redrive that happens on AWS.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The `SqsEvent` Lambda would deliver for these received messages.
#[must_use]
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_owned);
            record.receipt_handle = m.receipt_handle().map(str::to_owned);
            record.body = m.body().map(str::to_owned);
            record.attributes =
                m.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect()).unwrap_or_default();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = Some("us-east-1".into());
            record
        })
        .collect();
    event
}

/// The real handler of one function, as the event source mapping invokes it.
pub type BatchHandler = Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

/// Counters of one mapping.
#[derive(Debug, Default)]
pub struct MappingStats {
    pub batches: AtomicU64,
    pub messages: AtomicU64,
    pub failures: AtomicU64,
    pub timeouts: AtomicU64,
}

/// One event source mapping (queue → function).
pub struct EventSourceMapping {
    pub function: String,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: u32,
    /// The function's timeout: an invocation still running after it is killed, and its whole
    /// batch returns to the queue (as on Lambda).
    pub timeout: Duration,
    pub handler: BatchHandler,
    pub stats: Arc<MappingStats>,
}

impl EventSourceMapping {
    /// Runs until `shutdown` turns true.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    result = self.poll_once() => {
                        if let Err(error) = result {
                            tracing::warn!(message = "Event source mapping could not poll.", function = %self.function, %error);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }
        })
    }

    async fn poll_once(&self) -> Result<(), String> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(self.batch_size.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(());
        }
        let event = sqs_event(messages, &self.queue_arn);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.messages.fetch_add(messages.len() as u64, Ordering::Relaxed);
        let failed: HashSet<String> = match tokio::time::timeout(self.timeout, (self.handler)(event)).await {
            Ok(response) => response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
            Err(_) => {
                tracing::warn!(message = "Invocation timed out and was killed; its batch returns to the queue.", function = %self.function, timeout = ?self.timeout);
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                messages.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect()
            }
        };
        self.stats.failures.fetch_add(failed.len() as u64, Ordering::Relaxed);
        let entries = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle()?).build().ok()
            })
            .collect::<Vec<_>>();
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        }
        Ok(())
    }
}
