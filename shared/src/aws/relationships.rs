//! [`RelationshipStore`] on the config table, in the MSP's partition: `ADMINREL#{relationship
//! id}` per admin relationship (a relationship is small; an MSP with thousands of customers has
//! thousands of items, never one large one) and `PARTNERACT#{tenant id}` per customer's partner
//! activity.

use super::config_store::DynamoConfigStore;
use super::dynamodb::{batch_put, from_item, get, key, msp_pk, put, query_prefix, store_error, text, to_item};
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::ports::RelationshipStore;
use crate::relationships::{AdminRelationship, PartnerActivity, RelationshipRefreshState};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};

const RELATIONSHIP_PREFIX: &str = "ADMINREL#";
const ACTIVITY_PREFIX: &str = "PARTNERACT#";
/// How the last read of the partner tenant went (one item per MSP).
const REFRESH_SK: &str = "ADMINREL-REFRESH";

#[async_trait]
impl RelationshipStore for DynamoConfigStore {
    async fn replace_relationships(&self, msp_id: &MspId, relationships: &[AdminRelationship]) -> Result<(), StoreError> {
        let stored = query_prefix(&self.client, &self.table, msp_pk(msp_id), RELATIONSHIP_PREFIX, "list admin relationships").await?;
        let items = relationships
            .iter()
            .map(|r| to_item(r, msp_pk(msp_id), format!("{RELATIONSHIP_PREFIX}{}", r.id)))
            .collect::<Result<Vec<_>, _>>()?;
        batch_put(&self.client, &self.table, items, "put admin relationships").await?;
        let listed: HashSet<String> = relationships.iter().map(|r| format!("{RELATIONSHIP_PREFIX}{}", r.id)).collect();
        for item in stored {
            let sk = text(&item, "sk")?.to_owned();
            if !listed.contains(&sk) {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(msp_pk(msp_id), sk)))
                    .send()
                    .await
                    .map_err(|e| store_error("delete admin relationship", e))?;
            }
        }
        Ok(())
    }
    async fn relationships(&self, msp_id: &MspId) -> Result<Vec<AdminRelationship>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), RELATIONSHIP_PREFIX, "list admin relationships")
            .await?
            .into_iter()
            .map(|item| from_item(item, "admin relationship"))
            .collect()
    }
    async fn put_activity(&self, msp_id: &MspId, tenant_id: &TenantId, activity: &PartnerActivity) -> Result<(), StoreError> {
        let item = to_item(activity, msp_pk(msp_id), format!("{ACTIVITY_PREFIX}{tenant_id}"))?;
        put(&self.client, &self.table, item, "put partner activity").await
    }
    async fn put_refresh(&self, msp_id: &MspId, refresh: &RelationshipRefreshState) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(refresh, msp_pk(msp_id), REFRESH_SK.into())?, "put admin-relationship refresh").await
    }
    async fn refresh_state(&self, msp_id: &MspId) -> Result<Option<RelationshipRefreshState>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), REFRESH_SK.into()), "get admin-relationship refresh")
            .await?
            .map(|item| from_item(item, "admin-relationship refresh"))
            .transpose()
    }
    async fn activities(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, PartnerActivity>, StoreError> {
        let mut activities = BTreeMap::new();
        for item in query_prefix(&self.client, &self.table, msp_pk(msp_id), ACTIVITY_PREFIX, "list partner activity").await? {
            let tenant = text(&item, "sk")?.trim_start_matches(ACTIVITY_PREFIX).to_owned();
            let tenant =
                TenantId::parse(&tenant).map_err(|e| StoreError::Corrupt { what: "partner activity".into(), reason: e.to_string() })?;
            activities.insert(tenant, from_item(item, "partner activity")?);
        }
        Ok(activities)
    }
}
