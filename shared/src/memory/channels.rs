//! An in-memory message channel ([`MemoryChannel`]): what it received, whether it keeps message
//! ids (a signed-webhook receiver) or shows every post (a chat channel), and failures on demand
//! (a post that arrives without an answer, throttling, a revoked endpoint). For fast unit tests
//! of the dispatcher; each real channel proves the same port against its simulator in the
//! message-port contract suite.

use super::lock;
use crate::channel::AlertMessage;
use crate::error::SinkError;
use crate::ports::{MessageChannel, PostError};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;

/// A failure [`MemoryChannel`] injects into its next post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelFault {
    /// The message arrives, the answer is lost.
    LoseAnswer,
    /// Refused with `429` and this `Retry-After` (seconds).
    Throttle(u64),
    /// The endpoint was revoked: refused, permanently.
    Revoked,
    /// The request never left (connection refused).
    Unreachable,
}

/// A channel in memory.
#[derive(Debug, Default)]
pub struct MemoryChannel {
    /// Whether posting a message id again shows it once.
    pub deduplicates: bool,
    shown: Mutex<Vec<AlertMessage>>,
    faults: Mutex<VecDeque<ChannelFault>>,
    tests: Mutex<usize>,
}

impl MemoryChannel {
    /// A chat-like channel (every post shows).
    #[must_use]
    pub fn chat() -> Self {
        Self::default()
    }

    /// A receiver that keeps message ids (a signed-webhook consumer).
    #[must_use]
    pub fn deduplicating() -> Self {
        Self { deduplicates: true, ..Self::default() }
    }

    /// The messages shown, in order (a de-duplicating receiver shows an id once).
    pub fn shown(&self) -> Vec<AlertMessage> {
        lock(&self.shown).clone()
    }

    /// Injects `fault` into the next post (faults queue up in order).
    pub fn fail_next(&self, fault: ChannelFault) {
        lock(&self.faults).push_back(fault);
    }

    /// How many test messages were posted.
    pub fn tests_posted(&self) -> usize {
        *lock(&self.tests)
    }

    fn show(&self, message: &AlertMessage) {
        let mut shown = lock(&self.shown);
        if !(self.deduplicates && shown.iter().any(|m| m.id == message.id)) {
            shown.push(message.clone());
        }
    }
}

#[async_trait]
impl MessageChannel for MemoryChannel {
    async fn post(&self, message: &AlertMessage) -> Result<(), PostError> {
        let fault = lock(&self.faults).pop_front();
        match fault {
            None => {
                self.show(message);
                Ok(())
            }
            Some(ChannelFault::LoseAnswer) => {
                self.show(message);
                Err(PostError::MaybePosted(SinkError::Unavailable("injected: the answer was lost".into())))
            }
            Some(ChannelFault::Throttle(seconds)) => {
                Err(PostError::NotPosted(SinkError::Throttled { retry_after: Some(std::time::Duration::from_secs(seconds)) }))
            }
            Some(ChannelFault::Revoked) => Err(PostError::NotPosted(SinkError::Unauthorized("injected: the webhook was revoked".into()))),
            Some(ChannelFault::Unreachable) => Err(PostError::NotPosted(SinkError::Unavailable("injected: connection refused".into()))),
        }
    }

    fn deduplicates_by_id(&self) -> bool {
        self.deduplicates
    }

    async fn test(&self) -> Result<Vec<String>, SinkError> {
        *lock(&self.tests) += 1;
        Ok(Vec::new())
    }
}
