//! [`MessageQueue`] on SQS: `SendMessageBatch` in batches that respect both of SQS's limits
//! (10 entries, 256 KiB per request), retrying entries SQS reports as failed on its side.

use crate::error::QueueError;
use crate::ports::MessageQueue;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// An SQS queue, by URL.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// A queue at `queue_url`.
    #[must_use]
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    /// The queue URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.queue_url
    }
}

fn queue_error<E, R>(error: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = &error {
        let code = service.err().code().unwrap_or("Unknown");
        let message = format!("{code}: {}", service.err().message().unwrap_or_default());
        return match code {
            "ThrottlingException" | "RequestThrottled" | "InternalError" | "ServiceUnavailable" | "KmsThrottled" => {
                QueueError::Unavailable(message)
            }
            _ => QueueError::Rejected(message),
        };
    }
    QueueError::Unavailable(DisplayErrorContext(&error).to_string())
}

/// Splits bodies into batches of at most 10 entries and 256 KiB.
fn batches(bodies: &[String]) -> Result<Vec<Vec<&String>>, QueueError> {
    let mut result: Vec<Vec<&String>> = Vec::new();
    let mut current: Vec<&String> = Vec::new();
    let mut size = 0;
    for body in bodies {
        if body.len() > MAX_BATCH_BYTES {
            return Err(QueueError::Rejected(format!("message of {} bytes exceeds the SQS limit", body.len())));
        }
        if current.len() == MAX_BATCH_ENTRIES || size + body.len() > MAX_BATCH_BYTES {
            result.push(std::mem::take(&mut current));
            size = 0;
        }
        size += body.len();
        current.push(body);
    }
    if !current.is_empty() {
        result.push(current);
    }
    Ok(result)
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn send_all(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.send(bodies, None).await
    }

    async fn send_delayed(&self, bodies: &[String], delay: std::time::Duration) -> Result<(), QueueError> {
        let seconds = i32::try_from(delay.min(crate::ports::MAX_MESSAGE_DELAY).as_secs()).unwrap_or(900);
        self.send(bodies, Some(seconds)).await
    }
}

impl SqsQueue {
    /// Sends in batches of SQS's size limits, retrying entries SQS failed on its side.
    async fn send(&self, bodies: &[String], delay_seconds: Option<i32>) -> Result<(), QueueError> {
        for batch in batches(bodies)? {
            let mut pending: Vec<(String, &String)> = batch.into_iter().enumerate().map(|(i, body)| (i.to_string(), body)).collect();
            for attempt in 0..5u32 {
                let entries = pending
                    .iter()
                    .map(|(id, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(id)
                            .message_body(body.as_str())
                            .set_delay_seconds(delay_seconds)
                            .build()
                            .map_err(|e| QueueError::Rejected(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let output = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(queue_error)?;
                let failed = output.failed();
                if let Some(sender_fault) = failed.iter().find(|f| f.sender_fault()) {
                    return Err(QueueError::Rejected(format!("{}: {}", sender_fault.code(), sender_fault.message().unwrap_or_default())));
                }
                let failed_ids: Vec<&str> = failed.iter().map(|f| f.id()).collect();
                pending.retain(|(id, _)| failed_ids.contains(&id.as_str()));
                if pending.is_empty() {
                    break;
                }
                if attempt == 4 {
                    return Err(QueueError::Unavailable(format!("{} messages could not be sent", pending.len())));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_entry_and_byte_limits() {
        let small: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(batches(&small).unwrap().iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        let big: Vec<String> = (0..5).map(|_| "x".repeat(100 * 1024)).collect();
        let split = batches(&big).unwrap();
        assert!(split.iter().all(|b| b.iter().map(|s| s.len()).sum::<usize>() <= MAX_BATCH_BYTES));
        assert_eq!(split.iter().map(Vec::len).sum::<usize>(), 5);
        assert!(batches(&["x".repeat(MAX_BATCH_BYTES + 1)]).is_err());
    }
}

/// Delays a message of one queue (`ChangeMessageVisibility`), for the consumers' retry delays
/// ([`crate::ports`]-free: the Lambda glue uses it through its own `RetryDelay` trait).
#[derive(Debug, Clone)]
pub struct SqsVisibility {
    pub client: Client,
    pub queue_url: String,
}

impl SqsVisibility {
    /// Makes the message visible again only after `delay` (1 s to 12 h). A failure is logged:
    /// the message still returns after the queue's visibility timeout — later, not lost.
    pub async fn delay(&self, receipt_handle: &str, delay: std::time::Duration) {
        let seconds = i32::try_from(delay.as_secs().clamp(1, 43_200)).unwrap_or(60);
        if let Err(error) = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
        {
            tracing::warn!(message = "Could not delay a message's retry.", error = %aws_sdk_sqs::error::DisplayErrorContext(error));
        }
    }
}
