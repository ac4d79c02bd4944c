//! [`CredentialsEpisodeStore`] in memory.

use super::lock;
use crate::error::StoreError;
use crate::ids::{DestinationId, MspId};
use crate::ports::CredentialsEpisodeStore;
use crate::selfmon::CredentialsEpisode;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// [`CredentialsEpisodeStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryCredentialsEpisodes {
    open: Mutex<HashMap<(MspId, DestinationId), CredentialsEpisode>>,
}

#[async_trait]
impl CredentialsEpisodeStore for MemoryCredentialsEpisodes {
    async fn credentials_episode(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Option<CredentialsEpisode>, StoreError> {
        Ok(lock(&self.open).get(&(msp_id.clone(), destination.clone())).cloned())
    }
    async fn open_credentials_episode(&self, msp_id: &MspId, episode: &CredentialsEpisode) -> Result<CredentialsEpisode, StoreError> {
        Ok(lock(&self.open).entry((msp_id.clone(), episode.destination.clone())).or_insert_with(|| episode.clone()).clone())
    }
    async fn mark_credentials_raised(&self, msp_id: &MspId, destination: &DestinationId, since: DateTime<Utc>) -> Result<bool, StoreError> {
        match lock(&self.open).get_mut(&(msp_id.clone(), destination.clone())) {
            Some(open) if open.since == since => {
                open.raised = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn close_credentials_episode(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut open = lock(&self.open);
        let key = (msp_id.clone(), destination.clone());
        if open.get(&key).is_some_and(|e| e.since == since) {
            open.remove(&key);
            return Ok(true);
        }
        Ok(false)
    }
}
