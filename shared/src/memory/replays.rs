//! [`ReplayStore`] in memory, keyed like the DynamoDB adapter by (MSP, tenant, replay id).

use super::lock;
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::ports::ReplayStore;
use crate::replay::Replay;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// [`ReplayStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryReplayStore {
    replays: Mutex<HashMap<(MspId, TenantId, String), Replay>>,
    latest: Mutex<HashMap<(MspId, TenantId), String>>,
}

impl MemoryReplayStore {
    /// Every stored replay (tests).
    #[must_use]
    pub fn all(&self) -> Vec<Replay> {
        lock(&self.replays).values().cloned().collect()
    }
}

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn put_replay(&self, replay: &Replay) -> Result<(), StoreError> {
        lock(&self.replays).insert((replay.msp_id.clone(), replay.tenant_id.clone(), replay.id.clone()), replay.clone());
        Ok(())
    }
    async fn get_replay(&self, msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Result<Option<Replay>, StoreError> {
        Ok(lock(&self.replays).get(&(msp_id.clone(), tenant_id.clone(), replay_id.to_owned())).cloned())
    }
    async fn set_latest_replay(&self, msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Result<(), StoreError> {
        lock(&self.latest).insert((msp_id.clone(), tenant_id.clone()), replay_id.to_owned());
        Ok(())
    }
    async fn latest_replay(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.latest).get(&(msp_id.clone(), tenant_id.clone())).cloned())
    }
}
