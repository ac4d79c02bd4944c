//! The port of self-monitoring state kept outside the streams' ledgers: each destination's open
//! episode of "the destination refuses Vigil's credentials" ([`crate::selfmon::CredentialsEpisode`]).

use crate::error::StoreError;
use crate::ids::{DestinationId, MspId};
use crate::selfmon::CredentialsEpisode;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The open credentials episodes, at most one per (MSP, destination), every key under the MSP.
/// Each write is conditional, so deliveries racing on one destination open one episode and
/// announce it once.
#[async_trait]
pub trait CredentialsEpisodeStore: Send + Sync {
    /// The destination's open episode, if any.
    async fn credentials_episode(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Option<CredentialsEpisode>, StoreError>;
    /// Opens `episode` unless one is open for its destination; returns the open one (the one
    /// stored before, when there was one).
    async fn open_credentials_episode(&self, msp_id: &MspId, episode: &CredentialsEpisode) -> Result<CredentialsEpisode, StoreError>;
    /// Records that the episode begun at `since` was announced; `false` when no episode with
    /// that start is open (a success closed it meanwhile).
    async fn mark_credentials_raised(&self, msp_id: &MspId, destination: &DestinationId, since: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Closes the episode begun at `since`; `false` when no episode with that start is open.
    async fn close_credentials_episode(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
