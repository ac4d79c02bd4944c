//! [`LicenceStore`] on the config table, in the MSP's partition: `LICSTATE#{tenant id}` per
//! tenant (its licence state: bounded snapshot, changes capped, findings raised; tens of KB at
//! most, far under DynamoDB's 400 KB) and `LICREAD#{tenant id}` with only the last read's time
//! (`at_ms`), so the tick learns which tenants are due without reading every state.

use super::config_store::DynamoConfigStore;
use super::dynamodb::{from_item, get, key, msp_pk, n, put, query_prefix, s, text, to_item};
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::licences::TenantLicences;
use crate::ports::LicenceStore;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;

const STATE_PREFIX: &str = "LICSTATE#";
const READ_PREFIX: &str = "LICREAD#";

#[async_trait]
impl LicenceStore for DynamoConfigStore {
    async fn licences(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<TenantLicences>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{STATE_PREFIX}{tenant_id}")), "get licences")
            .await?
            .map(|item| from_item(item, "tenant licences"))
            .transpose()
    }
    async fn put_licences(&self, msp_id: &MspId, tenant_id: &TenantId, licences: &TenantLicences) -> Result<(), StoreError> {
        let item = to_item(licences, msp_pk(msp_id), format!("{STATE_PREFIX}{tenant_id}"))?;
        put(&self.client, &self.table, item, "put licences").await?;
        if let Some(at) = licences.read_at {
            let mut read = key(msp_pk(msp_id), format!("{READ_PREFIX}{tenant_id}"));
            read.insert("tenant_id".into(), s(tenant_id.as_str()));
            read.insert("at_ms".into(), n(at.timestamp_millis()));
            put(&self.client, &self.table, read, "put licence read").await?;
        }
        Ok(())
    }
    async fn licence_reads(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, DateTime<Utc>>, StoreError> {
        let items = query_prefix(&self.client, &self.table, msp_pk(msp_id), READ_PREFIX, "list licence reads").await?;
        let mut reads = BTreeMap::new();
        for item in items {
            let tenant = TenantId::parse(text(&item, "tenant_id")?)
                .map_err(|e| StoreError::Corrupt { what: "licence read".into(), reason: e.to_string() })?;
            let millis = item.get("at_ms").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
            let at = millis
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                .ok_or_else(|| StoreError::Corrupt { what: "licence read".into(), reason: "at_ms is missing or not a time".into() })?;
            reads.insert(tenant, at);
        }
        Ok(reads)
    }
}
