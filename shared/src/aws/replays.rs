//! [`ReplayStore`] on the state table: one item per replay, the replay as JSON, expired by TTL
//! a week after it was requested.
//!
//! | table | pk                                          | sk       | item                      |
//! |-------|---------------------------------------------|----------|---------------------------|
//! | state | `MSP#{msp}#TENANT#{tenant}#REPLAY#{replay}` | `REPLAY` | replay (JSON), expires_at |
//! | state | `MSP#{msp}#TENANT#{tenant}#REPLAY`          | `LATEST` | replay_id, expires_at     |

use super::dynamodb::{Item, get, key, n, put, s, text};
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::ports::ReplayStore;
use crate::replay::Replay;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{Duration, Utc};

/// How long a replay stays readable after it was requested.
const KEPT_FOR_DAYS: i64 = 7;

/// [`ReplayStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoReplayStore {
    client: Client,
    table: String,
}

impl DynamoReplayStore {
    /// A store on `table` (the state table).
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn latest_key(msp_id: &MspId, tenant_id: &TenantId) -> Item {
    key(format!("MSP#{msp_id}#TENANT#{tenant_id}#REPLAY"), "LATEST".into())
}

fn replay_key(msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Item {
    key(format!("MSP#{msp_id}#TENANT#{tenant_id}#REPLAY#{replay_id}"), "REPLAY".into())
}

#[async_trait]
impl ReplayStore for DynamoReplayStore {
    async fn put_replay(&self, replay: &Replay) -> Result<(), StoreError> {
        let json = serde_json::to_string(replay).map_err(|e| StoreError::Corrupt { what: "replay".into(), reason: e.to_string() })?;
        let mut item = replay_key(&replay.msp_id, &replay.tenant_id, &replay.id);
        item.insert("replay".into(), s(json));
        item.insert("expires_at".into(), n((replay.created_at + Duration::days(KEPT_FOR_DAYS)).timestamp()));
        put(&self.client, &self.table, item, "put replay").await
    }
    async fn get_replay(&self, msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Result<Option<Replay>, StoreError> {
        let Some(item) = get(&self.client, &self.table, replay_key(msp_id, tenant_id, replay_id), "get replay").await? else {
            return Ok(None);
        };
        let replay: Replay = serde_json::from_str(text(&item, "replay")?)
            .map_err(|e| StoreError::Corrupt { what: "replay".into(), reason: e.to_string() })?;
        Ok(Some(replay))
    }
    async fn set_latest_replay(&self, msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Result<(), StoreError> {
        let mut item = latest_key(msp_id, tenant_id);
        item.insert("replay_id".into(), s(replay_id));
        item.insert("expires_at".into(), n((Utc::now() + Duration::days(KEPT_FOR_DAYS)).timestamp()));
        put(&self.client, &self.table, item, "put latest replay").await
    }
    async fn latest_replay(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<String>, StoreError> {
        let item = get(&self.client, &self.table, latest_key(msp_id, tenant_id), "get latest replay").await?;
        item.map(|item| text(&item, "replay_id").map(str::to_owned)).transpose()
    }
}
