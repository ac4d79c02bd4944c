//! [`MailboxCountStore`] on the config table, in the MSP's partition: `MBXCOUNT#{tenant}#{day}`
//! per tenant and day (ISO dates sort as days, so a day range is one key-range query),
//! `MBXLATEST#{tenant}` with each tenant's latest figure (the MSP's current figures in one
//! query), and `BILLING-SETTINGS`. Recording a day deletes the tenant's days older than the
//! MSP's retention, so the series never holds more than `count_retention_days` items per tenant.
//! Billing: `BILLMAP#{destination}#{tenant}` per mapping and `BILLSYNC#{destination}#{tenant}`
//! with its one sync record (replaced each period), so billing adds two items per mapping.

use super::config_store::DynamoConfigStore;
use super::dynamodb::{Item, delete, delete_existing, from_item, get, key, msp_pk, put, query_prefix, s, store_error, text, to_item};
use crate::billing::sync::{BillingMapping, SyncRecord};
use crate::billing::{BillingSettings, DailyCount};
use crate::error::StoreError;
use crate::ids::DestinationId;
use crate::ids::{MspId, TenantId};
use crate::ports::BillingStore;
use crate::ports::MailboxCountStore;
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::BTreeMap;

const COUNT_PREFIX: &str = "MBXCOUNT#";
const LATEST_PREFIX: &str = "MBXLATEST#";
const SETTINGS_SK: &str = "BILLING-SETTINGS";
const MAPPING_PREFIX: &str = "BILLMAP#";
const SYNC_PREFIX: &str = "BILLSYNC#";
/// The last day the tick asked for the MSP's counts (`day`, an ISO date).
const REQUESTED_SK: &str = "MBXCOUNT-REQUESTED";

/// An item without its keys, for types that refuse unknown fields (what the API accepts).
fn without_keys(mut item: Item) -> Item {
    item.remove("pk");
    item.remove("sk");
    item
}

fn count_sk(tenant_id: &TenantId, day: NaiveDate) -> String {
    format!("{COUNT_PREFIX}{tenant_id}#{day}")
}

impl DynamoConfigStore {
    /// The items of the partition whose sort keys lie from `low` to `high` (both included).
    async fn query_between(&self, pk: String, low: String, high: String, operation: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":low", s(low.clone()))
                .expression_attribute_values(":high", s(high.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error(operation, e))?;
            items.extend(output.items().iter().cloned());
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl MailboxCountStore for DynamoConfigStore {
    async fn record_count(&self, msp_id: &MspId, count: &DailyCount, settings: &BillingSettings) -> Result<(), StoreError> {
        let pk = msp_pk(msp_id);
        put(&self.client, &self.table, to_item(count, pk.clone(), count_sk(&count.tenant_id, count.day))?, "record mailbox count").await?;
        // The latest figure moves forward only (a late write of an older day leaves it).
        let latest = to_item(count, pk.clone(), format!("{LATEST_PREFIX}{}", count.tenant_id))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(latest))
            .condition_expression("attribute_not_exists(pk) OR #day <= :day")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":day", s(count.day.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(error) => return Err(store_error("record latest mailbox count", error)),
        }
        let oldest = settings.oldest_kept(count.day);
        let Some(before_oldest) = oldest.pred_opt() else { return Ok(()) };
        let expired = self
            .query_between(
                pk.clone(),
                format!("{COUNT_PREFIX}{}#", count.tenant_id),
                count_sk(&count.tenant_id, before_oldest),
                "list expired mailbox counts",
            )
            .await?;
        for item in expired {
            let sk = text(&item, "sk")?.to_owned();
            delete(&self.client, &self.table, key(pk.clone(), sk), "delete expired mailbox count").await?;
        }
        Ok(())
    }

    async fn counts(&self, msp_id: &MspId, tenant_id: &TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyCount>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        self.query_between(msp_pk(msp_id), count_sk(tenant_id, from), count_sk(tenant_id, to), "list mailbox counts")
            .await?
            .into_iter()
            .map(|item| from_item(item, "mailbox count"))
            .collect()
    }

    async fn latest_counts(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, DailyCount>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), LATEST_PREFIX, "list latest mailbox counts")
            .await?
            .into_iter()
            .map(|item| from_item::<DailyCount>(item, "latest mailbox count").map(|count| (count.tenant_id.clone(), count)))
            .collect()
    }

    async fn billing_settings(&self, msp_id: &MspId) -> Result<BillingSettings, StoreError> {
        Ok(get(&self.client, &self.table, key(msp_pk(msp_id), SETTINGS_SK.into()), "get billing settings")
            .await?
            .map(|item| from_item(without_keys(item), "billing settings"))
            .transpose()?
            .unwrap_or_default())
    }

    async fn put_billing_settings(&self, msp_id: &MspId, settings: &BillingSettings) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(settings, msp_pk(msp_id), SETTINGS_SK.into())?, "put billing settings").await
    }

    async fn counts_requested_on(&self, msp_id: &MspId) -> Result<Option<NaiveDate>, StoreError> {
        let Some(item) = get(&self.client, &self.table, key(msp_pk(msp_id), REQUESTED_SK.into()), "get mailbox counts requested").await?
        else {
            return Ok(None);
        };
        let day = text(&item, "day")?;
        day.parse()
            .map(Some)
            .map_err(|e: chrono::ParseError| StoreError::Corrupt { what: "mailbox counts requested".into(), reason: e.to_string() })
    }

    async fn set_counts_requested_on(&self, msp_id: &MspId, day: NaiveDate) -> Result<(), StoreError> {
        let mut item = key(msp_pk(msp_id), REQUESTED_SK.into());
        item.insert("day".into(), s(day.to_string()));
        put(&self.client, &self.table, item, "put mailbox counts requested").await
    }
}

#[async_trait]
impl BillingStore for DynamoConfigStore {
    async fn put_mapping(&self, msp_id: &MspId, mapping: &BillingMapping) -> Result<(), StoreError> {
        let sk = format!("{MAPPING_PREFIX}{}#{}", mapping.destination_id, mapping.tenant_id);
        put(&self.client, &self.table, to_item(mapping, msp_pk(msp_id), sk)?, "put billing mapping").await
    }
    async fn delete_mapping(&self, msp_id: &MspId, destination_id: &DestinationId, tenant_id: &TenantId) -> Result<bool, StoreError> {
        let existed = delete_existing(
            &self.client,
            &self.table,
            key(msp_pk(msp_id), format!("{MAPPING_PREFIX}{destination_id}#{tenant_id}")),
            "delete billing mapping",
        )
        .await?;
        delete(&self.client, &self.table, key(msp_pk(msp_id), format!("{SYNC_PREFIX}{destination_id}#{tenant_id}")), "delete sync record")
            .await?;
        Ok(existed)
    }
    async fn mappings(&self, msp_id: &MspId) -> Result<Vec<BillingMapping>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), MAPPING_PREFIX, "list billing mappings")
            .await?
            .into_iter()
            .map(|item| from_item(without_keys(item), "billing mapping"))
            .collect()
    }
    async fn sync_record(
        &self,
        msp_id: &MspId,
        destination_id: &DestinationId,
        tenant_id: &TenantId,
    ) -> Result<Option<SyncRecord>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{SYNC_PREFIX}{destination_id}#{tenant_id}")), "get sync record")
            .await?
            .map(|item| from_item(item, "sync record"))
            .transpose()
    }
    async fn put_sync_record(&self, msp_id: &MspId, record: &SyncRecord) -> Result<(), StoreError> {
        let sk = format!("{SYNC_PREFIX}{}#{}", record.destination_id, record.tenant_id);
        put(&self.client, &self.table, to_item(record, msp_pk(msp_id), sk)?, "put sync record").await
    }
}
