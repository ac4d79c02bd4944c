//! [`RelationshipStore`] on the config table, in the MSP's partition: `ADMINREL#{relationship
//! id}` per admin relationship (a relationship is small; an MSP with thousands of customers has
//! thousands of items, never one large one) and `PARTNERACT#{tenant id}` per customer's partner
//! activity; `ADMINREL-FINDINGS#{relationship id}` for the findings raised on a relationship,
//! `PARTNERACTION#{tenant id}` for the latest partner technician action seen in a customer's
//! audit records, `ADMINREL-PREVIEW#{token hash}` for a removal preview (purged by the table's TTL a day after
//! it expired) and `ADMINREL-REMOVAL#{relationship id}` per removal.

use super::config_store::DynamoConfigStore;
use super::dynamodb::{batch_put, delete, from_item, get, key, msp_pk, n, put, put_if_absent, query_prefix, store_error, text, to_item};
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::ports::RelationshipStore;
use crate::relationships::findings::RaisedFinding;
use crate::relationships::removal::{Removal, RemovalPreview};
use crate::relationships::{AdminRelationship, PartnerActivity, RelationshipRefreshState};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};

const RELATIONSHIP_PREFIX: &str = "ADMINREL#";
const ACTIVITY_PREFIX: &str = "PARTNERACT#";
/// How the last read of the partner tenant went (one item per MSP).
const REFRESH_SK: &str = "ADMINREL-REFRESH";
const FINDINGS_PREFIX: &str = "ADMINREL-FINDINGS#";
/// The latest partner technician action per customer (`at_ms`, epoch milliseconds).
const ACTION_PREFIX: &str = "PARTNERACTION#";
const PREVIEW_PREFIX: &str = "ADMINREL-PREVIEW#";
const REMOVAL_PREFIX: &str = "ADMINREL-REMOVAL#";

/// The findings of one relationship, as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredFindings {
    relationship_id: String,
    findings: Vec<RaisedFinding>,
}

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
                delete(&self.client, &self.table, key(msp_pk(msp_id), sk), "delete admin relationship").await?;
            }
        }
        Ok(())
    }
    async fn put_relationship(&self, msp_id: &MspId, relationship: &AdminRelationship) -> Result<(), StoreError> {
        let item = to_item(relationship, msp_pk(msp_id), format!("{RELATIONSHIP_PREFIX}{}", relationship.id))?;
        put(&self.client, &self.table, item, "put admin relationship").await
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
    async fn note_partner_action(&self, msp_id: &MspId, tenant_id: &TenantId, at: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), format!("{ACTION_PREFIX}{tenant_id}"))))
            .update_expression("SET at_ms = :at")
            .condition_expression("attribute_not_exists(at_ms) OR at_ms < :at")
            .expression_attribute_values(":at", n(at.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A later action was noted already.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(error) => Err(store_error("note partner action", error)),
        }
    }
    async fn partner_actions(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, chrono::DateTime<chrono::Utc>>, StoreError> {
        let mut actions = BTreeMap::new();
        for item in query_prefix(&self.client, &self.table, msp_pk(msp_id), ACTION_PREFIX, "list partner actions").await? {
            let corrupt = |reason: String| StoreError::Corrupt { what: "partner action".into(), reason };
            let tenant = TenantId::parse(text(&item, "sk")?.trim_start_matches(ACTION_PREFIX)).map_err(|e| corrupt(e.to_string()))?;
            let millis = item.get("at_ms").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
            let at = millis.and_then(chrono::DateTime::from_timestamp_millis).ok_or_else(|| corrupt("at_ms is not a time".into()))?;
            actions.insert(tenant, at);
        }
        Ok(actions)
    }
    async fn put_findings(&self, msp_id: &MspId, relationship_id: &str, findings: &[RaisedFinding]) -> Result<(), StoreError> {
        let sk = format!("{FINDINGS_PREFIX}{relationship_id}");
        if findings.is_empty() {
            return delete(&self.client, &self.table, key(msp_pk(msp_id), sk), "delete relationship findings").await;
        }
        let stored = StoredFindings { relationship_id: relationship_id.to_owned(), findings: findings.to_vec() };
        put(&self.client, &self.table, to_item(&stored, msp_pk(msp_id), sk)?, "put relationship findings").await
    }
    async fn findings(&self, msp_id: &MspId) -> Result<BTreeMap<String, Vec<RaisedFinding>>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), FINDINGS_PREFIX, "list relationship findings")
            .await?
            .into_iter()
            .map(|item| from_item::<StoredFindings>(item, "relationship findings").map(|s| (s.relationship_id, s.findings)))
            .collect()
    }
    async fn put_preview(&self, preview: &RemovalPreview) -> Result<(), StoreError> {
        let mut item = to_item(preview, msp_pk(&preview.msp_id), format!("{PREVIEW_PREFIX}{}", preview.token_hash))?;
        item.insert("purge_at".into(), n((preview.expires_at + chrono::Duration::days(1)).timestamp()));
        put(&self.client, &self.table, item, "put removal preview").await
    }
    async fn take_preview(&self, msp_id: &MspId, token_hash: &str) -> Result<Option<RemovalPreview>, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), format!("{PREVIEW_PREFIX}{token_hash}"))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("take removal preview", e))?;
        output.attributes.filter(|old| !old.is_empty()).map(|old| from_item(old, "removal preview")).transpose()
    }
    async fn create_removal(&self, removal: &Removal) -> Result<bool, StoreError> {
        let item = to_item(removal, msp_pk(&removal.msp_id), format!("{REMOVAL_PREFIX}{}", removal.relationship_id))?;
        put_if_absent(&self.client, &self.table, item, "create removal").await
    }
    async fn put_removal(&self, removal: &Removal) -> Result<(), StoreError> {
        let item = to_item(removal, msp_pk(&removal.msp_id), format!("{REMOVAL_PREFIX}{}", removal.relationship_id))?;
        put(&self.client, &self.table, item, "put removal").await
    }
    async fn removal(&self, msp_id: &MspId, relationship_id: &str) -> Result<Option<Removal>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{REMOVAL_PREFIX}{relationship_id}")), "get removal")
            .await?
            .map(|item| from_item(item, "removal"))
            .transpose()
    }
    async fn removals(&self, msp_id: &MspId) -> Result<Vec<Removal>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), REMOVAL_PREFIX, "list removals")
            .await?
            .into_iter()
            .map(|item| from_item(item, "removal"))
            .collect()
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
