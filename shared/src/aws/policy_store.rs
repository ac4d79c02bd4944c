//! DynamoDB adapters for policy configuration ([`DynamoPolicyStore`], config table) and trigger
//! state ([`DynamoTriggerStore`], state table).
//!
//! | table  | pk                                                   | sk                              | item                      |
//! |--------|------------------------------------------------------|---------------------------------|---------------------------|
//! | config | `MSP#{msp}`                                          | `POLICY_REVISION`               | revision counter          |
//! | config | `MSP#{msp}`                                          | `POLICY#{policy}`               | policy (JSON)             |
//! | config | `MSP#{msp}`                                          | `TENANT_POLICY#{tenant}#{policy}` | per-tenant switch       |
//! | config | `MSP#{msp}`                                          | `SUPPRESSION#{id}`              | suppression rule (JSON)   |
//! | state  | `MSP#{msp}#TENANT#{tenant}#TRIGGER#{policy}#{hash}`  | `STATE`                         | trigger state (JSON, TTL) |
//!
//! Every write of policy configuration is one transaction with an increment of the revision, so
//! an evaluator that sees the revision unchanged may keep what it compiled.

use super::dynamodb::{Item, key, msp_pk, s, store_error};
use crate::error::StoreError;
use crate::ids::{MspId, PolicyId, TenantId};
use crate::policy::model::PolicyDefinition;
use crate::policy::trigger::TriggerState;
use crate::ports::{PolicyStore, StoredPolicy, Suppression, TriggerKey, TriggerStateStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt { what: name.to_owned(), reason: "attribute missing or not a string".to_owned() })
}

fn number(item: &Item, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    serde_json::from_str(text(item, name)?).map_err(|e| StoreError::Corrupt { what: name.to_owned(), reason: e.to_string() })
}

/// [`PolicyStore`] on the config table.
#[derive(Debug, Clone)]
pub struct DynamoPolicyStore {
    client: Client,
    table: String,
}

impl DynamoPolicyStore {
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn bump(&self, msp_id: &MspId) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), "POLICY_REVISION".into())))
            .update_expression("ADD revision :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|e| StoreError::Rejected(format!("revision update: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn put_with_revision(&self, msp_id: &MspId, item: Item, operation: &str) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Rejected(format!("{operation}: {e}")))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(self.bump(msp_id)?)
            .send()
            .await
            .map_err(|e| store_error(operation, e))?;
        Ok(())
    }

    async fn delete_with_revision(&self, msp_id: &MspId, sk: String, operation: &str) -> Result<bool, StoreError> {
        let existed = self.get(msp_id, &sk, operation).await?.is_some();
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), sk)))
            .build()
            .map_err(|e| StoreError::Rejected(format!("{operation}: {e}")))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(self.bump(msp_id)?)
            .send()
            .await
            .map_err(|e| store_error(operation, e))?;
        Ok(existed)
    }

    async fn get(&self, msp_id: &MspId, sk: &str, operation: &str) -> Result<Option<Item>, StoreError> {
        super::dynamodb::get(&self.client, &self.table, key(msp_pk(msp_id), sk.to_owned()), operation).await
    }

    async fn query(&self, msp_id: &MspId, prefix: &str, operation: &str) -> Result<Vec<Item>, StoreError> {
        super::dynamodb::query_prefix(&self.client, &self.table, msp_pk(msp_id), prefix, operation).await
    }
}

fn policy_from(item: &Item) -> Result<StoredPolicy, StoreError> {
    let definition: PolicyDefinition = json(item, "definition")?;
    let updated_at = DateTime::parse_from_rfc3339(text(item, "updated_at")?)
        .map_err(|e| StoreError::Corrupt { what: "updated_at".into(), reason: e.to_string() })?
        .with_timezone(&Utc);
    Ok(StoredPolicy { definition, updated_at, updated_by: text(item, "updated_by")?.to_owned() })
}

#[async_trait]
impl PolicyStore for DynamoPolicyStore {
    async fn policy_revision(&self, msp_id: &MspId) -> Result<u64, StoreError> {
        Ok(self.get(msp_id, "POLICY_REVISION", "read policy revision").await?.map_or(0, |item| number(&item, "revision")))
    }
    async fn put_policy(&self, msp_id: &MspId, policy: &StoredPolicy) -> Result<(), StoreError> {
        let definition =
            serde_json::to_string(&policy.definition).map_err(|e| StoreError::Corrupt { what: "policy".into(), reason: e.to_string() })?;
        let mut item = key(msp_pk(msp_id), format!("POLICY#{}", policy.definition.id));
        item.insert("definition".into(), s(definition));
        item.insert("updated_at".into(), s(policy.updated_at.to_rfc3339()));
        item.insert("updated_by".into(), s(policy.updated_by.clone()));
        self.put_with_revision(msp_id, item, "put policy").await
    }
    async fn get_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<Option<StoredPolicy>, StoreError> {
        self.get(msp_id, &format!("POLICY#{policy_id}"), "get policy").await?.map(|item| policy_from(&item)).transpose()
    }
    async fn delete_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<bool, StoreError> {
        self.delete_with_revision(msp_id, format!("POLICY#{policy_id}"), "delete policy").await
    }
    async fn list_policies(&self, msp_id: &MspId) -> Result<Vec<StoredPolicy>, StoreError> {
        self.query(msp_id, "POLICY#", "list policies").await?.iter().map(policy_from).collect()
    }
    async fn set_tenant_policy(&self, msp_id: &MspId, tenant_id: &TenantId, policy_id: &PolicyId, enabled: bool) -> Result<(), StoreError> {
        let mut item = key(msp_pk(msp_id), format!("TENANT_POLICY#{tenant_id}#{policy_id}"));
        item.insert("policy_id".into(), s(policy_id.as_str()));
        item.insert("enabled".into(), AttributeValue::Bool(enabled));
        self.put_with_revision(msp_id, item, "switch policy for tenant").await
    }
    async fn tenant_policies(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Vec<(PolicyId, bool)>, StoreError> {
        self.query(msp_id, &format!("TENANT_POLICY#{tenant_id}#"), "list tenant policy switches")
            .await?
            .iter()
            .map(|item| {
                let id = PolicyId::parse(text(item, "policy_id")?)
                    .map_err(|e| StoreError::Corrupt { what: "policy_id".into(), reason: e.reason })?;
                Ok((id, item.get("enabled").and_then(|v| v.as_bool().ok()).copied().unwrap_or(true)))
            })
            .collect()
    }
    async fn put_suppression(&self, suppression: &Suppression) -> Result<(), StoreError> {
        let body =
            serde_json::to_string(suppression).map_err(|e| StoreError::Corrupt { what: "suppression".into(), reason: e.to_string() })?;
        let mut item = key(msp_pk(&suppression.msp_id), format!("SUPPRESSION#{}", suppression.id));
        item.insert("body".into(), s(body));
        self.put_with_revision(&suppression.msp_id, item, "put suppression").await
    }
    async fn list_suppressions(&self, msp_id: &MspId) -> Result<Vec<Suppression>, StoreError> {
        self.query(msp_id, "SUPPRESSION#", "list suppressions").await?.iter().map(|item| json(item, "body")).collect()
    }
    async fn delete_suppression(&self, msp_id: &MspId, id: &str) -> Result<bool, StoreError> {
        self.delete_with_revision(msp_id, format!("SUPPRESSION#{id}"), "delete suppression").await
    }
}

/// [`TriggerStateStore`] on the state table.
#[derive(Debug, Clone)]
pub struct DynamoTriggerStore {
    client: Client,
    table: String,
}

impl DynamoTriggerStore {
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn item_key(key: &TriggerKey) -> Item {
        // The group key is free text (user names, IPs): hashed to keep the key short and safe.
        let hash = hex::encode(&Sha256::digest(key.key.as_bytes())[..16]);
        self::key(format!("MSP#{}#TENANT#{}#TRIGGER#{}#{hash}", key.msp_id, key.tenant_id, key.policy_id), "STATE".into())
    }
}

#[async_trait]
impl TriggerStateStore for DynamoTriggerStore {
    async fn load_trigger(&self, key: &TriggerKey) -> Result<Option<(TriggerState, u64)>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("load trigger state", e))?;
        output.item().map(|item| Ok((json(item, "state")?, number(item, "version")))).transpose()
    }
    async fn save_trigger(&self, key: &TriggerKey, state: &TriggerState, version: u64, expires: DateTime<Utc>) -> Result<(), StoreError> {
        let body = serde_json::to_string(state).map_err(|e| StoreError::Corrupt { what: "trigger state".into(), reason: e.to_string() })?;
        let mut item = Self::item_key(key);
        item.insert("state".into(), s(body));
        item.insert("version".into(), AttributeValue::N((version + 1).to_string()));
        item.insert("expires_at".into(), AttributeValue::N(expires.timestamp().to_string()));
        let request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let request = if version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", AttributeValue::N(version.to_string()))
        };
        request.send().await.map_err(|e| store_error("save trigger state", e))?;
        Ok(())
    }
}
