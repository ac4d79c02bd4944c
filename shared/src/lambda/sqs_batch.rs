//! One SQS batch helper for every queue consumer, always with partial batch responses
//! (`ReportBatchItemFailures`).
//!
//! Each message is handled on its own (concurrently, with a bound) inside its own span. A
//! message that fails, for any class of error, is reported in `batchItemFailures`: SQS makes it
//! visible again after the visibility timeout and, after the queue's `maxReceiveCount`, moves it
//! to the dead-letter queue, where an alarm fires. The class decides the log level and the
//! metric, never whether a message is dropped: nothing is acknowledged unless it succeeded.

use crate::error::Classified;
use crate::lambda::metrics::MetricSet;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use std::fmt::Display;
use std::future::Future;
use tracing::{Instrument, error, info_span, warn};

/// What happened to one message; `T` is what a successful handler returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome<T = ()> {
    pub message_id: String,
    /// The receipt handle, to change the message's visibility.
    pub receipt_handle: Option<String>,
    /// `None` when handled; otherwise the error class label.
    pub failure: Option<&'static str>,
    /// How long the remote asked us to wait before retrying (e.g. `Retry-After`).
    pub retry_after: Option<std::time::Duration>,
    /// The handler's result, when it succeeded.
    pub value: Option<T>,
}

/// Handles every message of `event` with `handler` (at most `concurrency` at once) and returns
/// the partial batch response naming the messages that must be retried. Counts
/// `MessagesProcessed` and `MessagesFailed` (by error class) into `metrics`.
pub async fn process_batch<F, Fut, E>(event: SqsEvent, concurrency: usize, metrics: &MetricSet, handler: F) -> SqsBatchResponse
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Classified + Display,
{
    let outcomes = process_messages(event.records, concurrency, handler).await;
    batch_response(&outcomes, metrics)
}

/// The partial batch response for these outcomes, counting them into `metrics`.
#[must_use]
pub fn batch_response<T>(outcomes: &[MessageOutcome<T>], metrics: &MetricSet) -> SqsBatchResponse {
    for outcome in outcomes {
        match outcome.failure {
            None => metrics.count("MessagesProcessed", None, 1.0),
            Some(class) => metrics.count("MessagesFailed", Some(class), 1.0),
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .map(|o| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = o.message_id.clone();
            failure
        })
        .collect();
    response
}

/// Like [`process_batch`], returning each message's outcome.
pub async fn process_messages<F, Fut, T, E>(messages: Vec<SqsMessage>, concurrency: usize, handler: F) -> Vec<MessageOutcome<T>>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classified + Display,
{
    let handler = &handler;
    futures::stream::iter(messages)
        .map(|message| async move {
            let message_id = message.message_id.clone().unwrap_or_default();
            let receipt_handle = message.receipt_handle.clone();
            let receive_count = message.attributes.get("ApproximateReceiveCount").cloned().unwrap_or_default();
            let span = info_span!("sqs_message", message_id = %message_id, receive_count = %receive_count);
            let Some(body) = message.body else {
                span.in_scope(|| error!(message = "Message has no body; it will be dead-lettered.", error_class = "invalid"));
                return MessageOutcome { message_id, receipt_handle, failure: Some("invalid"), retry_after: None, value: None };
            };
            match handler(body).instrument(span.clone()).await {
                Ok(value) => MessageOutcome { message_id, receipt_handle, failure: None, retry_after: None, value: Some(value) },
                Err(error) => {
                    let class = error.class().as_str();
                    span.in_scope(|| match error.class() {
                        crate::error::ErrorClass::Transient => warn!(message = "Message failed; it will be retried.", error_class = class, %error),
                        _ => error!(message = "Message cannot succeed; it will be dead-lettered after maxReceiveCount.", error_class = class, %error),
                    });
                    MessageOutcome { message_id, receipt_handle, failure: Some(class), retry_after: error.retry_after(), value: None }
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// Like [`process_batch`] for a consumer that handles the batch as a whole (so it can combine
/// work across messages) but still answers per message: `handler` gets every body and returns
/// one result per body, in order. Messages without a body fail as invalid without reaching it.
pub async fn process_batch_together<F, Fut, T, E>(event: SqsEvent, metrics: &MetricSet, handler: F) -> SqsBatchResponse
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Vec<Result<T, E>>>,
    E: Classified + Display,
{
    let mut outcomes: Vec<MessageOutcome<T>> = Vec::with_capacity(event.records.len());
    let mut bodies = Vec::new();
    let mut with_body = Vec::new();
    for message in event.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        match message.body {
            Some(body) => {
                with_body.push((message_id, message.receipt_handle));
                bodies.push(body);
            }
            None => {
                error!(message = "Message has no body; it will be dead-lettered.", message_id = %message_id, error_class = "invalid");
                outcomes.push(MessageOutcome {
                    message_id,
                    receipt_handle: message.receipt_handle,
                    failure: Some("invalid"),
                    retry_after: None,
                    value: None,
                });
            }
        }
    }
    let results = handler(bodies).await;
    for ((message_id, receipt_handle), result) in with_body.into_iter().zip(results) {
        outcomes.push(match result {
            Ok(value) => MessageOutcome { message_id, receipt_handle, failure: None, retry_after: None, value: Some(value) },
            Err(error) => {
                let class = error.class().as_str();
                match error.class() {
                    crate::error::ErrorClass::Transient => {
                        warn!(message = "Message failed; it will be retried.", message_id = %message_id, error_class = class, %error);
                    }
                    _ => error!(
                        message = "Message cannot succeed; it will be dead-lettered after maxReceiveCount.",
                        message_id = %message_id,
                        error_class = class,
                        %error
                    ),
                }
                MessageOutcome { message_id, receipt_handle, failure: Some(class), retry_after: error.retry_after(), value: None }
            }
        });
    }
    batch_response(&outcomes, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::QueueError;

    fn message(id: &str, body: Option<&str>) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = body.map(str::to_owned);
        message
    }

    #[tokio::test]
    async fn only_failed_messages_are_reported_and_a_poison_message_does_not_block_the_rest() {
        let mut event = SqsEvent::default();
        event.records =
            vec![message("ok-1", Some("fine")), message("bad", Some("poison")), message("ok-2", Some("fine")), message("empty", None)];
        let metrics = MetricSet::new("test");
        let response = process_batch(event, 4, &metrics, |body: String| async move {
            if body == "poison" { Err(QueueError::Rejected("bad".into())) } else { Ok(()) }
        })
        .await;
        let mut failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        failed.sort();
        assert_eq!(failed, ["bad", "empty"]);
        let documents = metrics.take_documents(0);
        assert_eq!(documents[0]["MessagesProcessed"], 2.0);
        assert!(documents[1..].iter().any(|d| d["ErrorClass"] == "permanent" && d["MessagesFailed"] == 1.0));
    }

    #[tokio::test]
    async fn a_whole_batch_handler_answers_per_message_in_order() {
        let mut event = SqsEvent::default();
        event.records =
            vec![message("ok", Some("fine")), message("empty", None), message("bad", Some("poison")), message("ok-2", Some("fine"))];
        let metrics = MetricSet::new("test");
        let response = process_batch_together(event, &metrics, |bodies: Vec<String>| async move {
            assert_eq!(bodies, ["fine", "poison", "fine"], "bodies arrive in order, without the empty one");
            bodies.into_iter().map(|b| if b == "poison" { Err(QueueError::Rejected("bad".into())) } else { Ok(()) }).collect::<Vec<_>>()
        })
        .await;
        let mut failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        failed.sort();
        assert_eq!(failed, ["bad", "empty"]);
    }
}
