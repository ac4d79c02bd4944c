//! [`IngestStateStore`] on the state table: coverage ledgers per stream, record claims and
//! finished-blob markers (both kept past Microsoft's content retention, then expired by TTL).

use super::dynamodb::{Item, batch_put, expires_at, from_item, get, key, n, put, s, store_error, to_item};
use crate::error::StoreError;
use crate::ids::{MspId, RecordId, TenantId};
use crate::ports::{ClaimOutcome, IngestStateStore, StreamKey, StreamState};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};

/// [`IngestStateStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoIngestState {
    client: Client,
    table: String,
}

impl DynamoIngestState {
    /// A store on `table`.
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn tenant_pk(msp_id: &MspId, tenant_id: &TenantId) -> String {
    format!("MSP#{msp_id}#TENANT#{tenant_id}")
}

fn claim_key(msp_id: &MspId, tenant_id: &TenantId, record_id: &RecordId) -> Item {
    key(format!("{}#RECORD#{record_id}", tenant_pk(msp_id, tenant_id)), "CLAIM".into())
}

#[async_trait]
impl IngestStateStore for DynamoIngestState {
    async fn get_stream(&self, stream: &StreamKey) -> Result<Option<StreamState>, StoreError> {
        let item_key = key(tenant_pk(&stream.msp_id, &stream.tenant_id), format!("STREAM#{}", stream.stream));
        get(&self.client, &self.table, item_key, "get stream state").await?.map(|i| from_item(i, "stream state")).transpose()
    }
    async fn put_stream(&self, stream: &StreamKey, state: &StreamState) -> Result<(), StoreError> {
        let item = to_item(state, tenant_pk(&stream.msp_id, &stream.tenant_id), format!("STREAM#{}", stream.stream))?;
        put(&self.client, &self.table, item, "put stream state").await
    }
    async fn claim_record(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_id: &RecordId,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut item = claim_key(msp_id, tenant_id, record_id);
        item.insert("state".into(), s("pending"));
        item.insert("lease_until".into(), n((now + lease).timestamp_millis()));
        item.insert("expires_at".into(), expires_at(now));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (#state = :pending AND lease_until < :now)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                let existing = get(&self.client, &self.table, claim_key(msp_id, tenant_id, record_id), "read claim").await?;
                let done = existing.as_ref().and_then(|i| i.get("state")).and_then(|v| v.as_s().ok()).is_some_and(|state| state == "done");
                Ok(if done { ClaimOutcome::AlreadyProcessed } else { ClaimOutcome::InFlight })
            }
            Err(error) => Err(store_error("claim record", error)),
        }
    }
    async fn complete_records(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_ids: &[RecordId],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let items = record_ids
            .iter()
            .map(|id| {
                let mut item = claim_key(msp_id, tenant_id, id);
                item.insert("state".into(), s("done"));
                item.insert("expires_at".into(), expires_at(now));
                item
            })
            .collect();
        batch_put(&self.client, &self.table, items, "complete records").await
    }
    async fn blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str) -> Result<bool, StoreError> {
        Ok(get(
            &self.client,
            &self.table,
            key(format!("{}#BLOB#{content_id}", tenant_pk(msp_id, tenant_id)), "DONE".into()),
            "read blob marker",
        )
        .await?
        .is_some())
    }
    async fn mark_blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key(format!("{}#BLOB#{content_id}", tenant_pk(msp_id, tenant_id)), "DONE".into());
        item.insert("expires_at".into(), expires_at(now));
        put(&self.client, &self.table, item, "mark blob done").await
    }
}
