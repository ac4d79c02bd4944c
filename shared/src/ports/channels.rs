//! The port of destinations that hear about alerts without keeping tickets: chat channels,
//! signed webhooks, e-mail ([`MessageChannel`]).
//!
//! A channel cannot be asked afterwards whether a message arrived, so a failed post says which
//! side of the wire it failed on ([`PostError`]): refused or never sent (posting again is safe)
//! or sent without an answer (the message may be there). The dispatcher decides what to do with
//! the second kind from [`MessageChannel::deduplicates_by_id`].

use crate::channel::AlertMessage;
use crate::error::SinkError;
use async_trait::async_trait;

/// Why a post failed, and whether the message may have arrived anyway.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The channel answered and did not take the message (refused, throttled, unavailable), or
    /// the request never left: it is not there, and posting again shows it once.
    #[error("not posted: {0}")]
    NotPosted(SinkError),
    /// The request was sent and no answer came (a timeout, a connection lost mid-request): the
    /// message may have been posted.
    #[error("maybe posted: {0}")]
    MaybePosted(SinkError),
}

impl PostError {
    /// The underlying failure (its class decides retry or dead-letter).
    #[must_use]
    pub fn into_sink(self) -> SinkError {
        match self {
            Self::NotPosted(error) | Self::MaybePosted(error) => error,
        }
    }

    /// Whether the message may be there despite the failure.
    #[must_use]
    pub fn maybe_posted(&self) -> bool {
        matches!(self, Self::MaybePosted(_))
    }
}

/// A destination that is told about alert changes: one message per change.
#[async_trait]
pub trait MessageChannel: Send + Sync {
    /// Posts one message, cut to the channel's limits (an oversize alert is truncated with a
    /// marker, never refused for its size).
    async fn post(&self, message: &AlertMessage) -> Result<(), PostError>;
    /// Whether the receiver keeps message ids, so posting a message again after
    /// [`PostError::MaybePosted`] shows it once (signed webhooks carry `webhook-id` for this).
    /// `false`: the dispatcher never posts a message twice, accepting that one lost in flight
    /// stays lost.
    fn deduplicates_by_id(&self) -> bool {
        false
    }
    /// Posts a test message (`POST /v1/destinations/{id}/test`): the only way to know a
    /// channel's address and credentials work. Returns each problem found (empty: it worked).
    async fn test(&self) -> Result<Vec<String>, SinkError>;
}
