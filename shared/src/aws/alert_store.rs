//! [`AlertStore`] on the alerts table: alerts (optimistic concurrency on `version`), the
//! per-record hit markers that make counting idempotent, and the daily ticket places. The
//! deliveries and their indexes are in `aws/deliveries.rs`, the change indexes (the `by-change`
//! and `by-tenant-change` GSIs every alert write stamps) in `aws/alert_changes.rs`.

use super::alert_changes;
use super::dynamodb::{Item, expires_at, from_item, get, key, msp_pk, n, s, store_error, to_item};
use crate::alert::{Alert, AlertHits};
use crate::changes::{ChangeKey, ChangePage, ChangeQuery};
use crate::error::StoreError;
use crate::ids::{AlertId, DestinationId, MspId, RecordId};
use crate::ports::{AlertPage, AlertStore};
use crate::ticket::{Delivery, TicketRef};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// TransactWriteItems takes at most 100 actions; keep room for the alert write.
const HITS_PER_TRANSACTION: usize = 99;

/// [`AlertStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoAlertStore {
    pub(super) client: Client,
    pub(super) table: String,
}

impl DynamoAlertStore {
    /// Adds `holder` to the string set `set` of the day's item `sk` when it holds fewer than
    /// `limit` (or already holds `holder`): `true` when `holder` has a place. Expires three
    /// days after `day`.
    async fn take_daily_place(
        &self,
        msp_id: &MspId,
        sk: String,
        set: &str,
        holder: &str,
        day: chrono::NaiveDate,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let expires = day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp()) + 3 * 86_400;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), sk)))
            .update_expression("ADD #set :holder SET expires_at = :expires")
            .condition_expression("attribute_not_exists(#set) OR size(#set) < :limit OR contains(#set, :id)")
            .expression_attribute_names("#set", set)
            .expression_attribute_values(":holder", AttributeValue::Ss(vec![holder.to_owned()]))
            .expression_attribute_values(":id", s(holder.to_owned()))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(error) => Err(store_error("take a daily place", error)),
        }
    }

    /// A store on `table`.
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn alert_key(msp_id: &MspId, alert_id: &AlertId) -> Item {
        key(msp_pk(msp_id), format!("ALERT#{alert_id}"))
    }

    /// The alert's item, stamped with its change key and its tenant's index key (see
    /// `aws/alert_changes.rs`): every write of an alert goes through here, so every write moves
    /// it in both change indexes.
    fn alert_item(alert: &Alert) -> Result<Item, StoreError> {
        let mut item = to_item(alert, msp_pk(&alert.msp_id), format!("ALERT#{}", alert.id))?;
        item.insert(alert_changes::CHANGED.into(), s(ChangeKey::new(Utc::now(), &alert.id).as_str()));
        item.insert(alert_changes::TENANT_CHANGES.into(), s(alert_changes::tenant_changes_key(&alert.msp_id, &alert.tenant_id)));
        Ok(item)
    }

    fn hit_key(msp_id: &MspId, alert_id: &AlertId, record_id: &RecordId) -> Item {
        key(format!("MSP#{msp_id}#ALERT#{alert_id}#RECORD#{record_id}"), "HIT".into())
    }

    /// Which of these records were already counted for the alert.
    async fn counted(&self, msp_id: &MspId, alert_id: &AlertId, records: &[RecordId]) -> Result<HashSet<RecordId>, StoreError> {
        let mut counted = HashSet::new();
        for chunk in records.chunks(100) {
            let mut keys: Vec<Item> = chunk.iter().map(|id| Self::hit_key(msp_id, alert_id, id)).collect();
            for attempt in 0..8u32 {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys.clone()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Rejected(format!("read hits: {e}")))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| store_error("read hits", e))?;
                for item in output.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let Some(id) = item
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|pk| pk.rsplit_once("#RECORD#"))
                        .and_then(|(_, id)| RecordId::parse(id).ok())
                    {
                        counted.insert(id);
                    }
                }
                keys = output.unprocessed_keys().and_then(|u| u.get(&self.table)).map(|k| k.keys().to_vec()).unwrap_or_default();
                if keys.is_empty() {
                    break;
                }
                if attempt == 7 {
                    return Err(StoreError::Unavailable("read hits: keys left unprocessed".into()));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(counted)
    }

    /// One transaction: the hit markers (each must not exist) and the alert (at its version).
    async fn write_hits(
        &self,
        alert: &Alert,
        previous_version: u64,
        records: &[(RecordId, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut actions = Vec::with_capacity(records.len() + 1);
        for (id, _) in records {
            let mut item = Self::hit_key(&alert.msp_id, &alert.id, id);
            item.insert("expires_at".into(), expires_at(now));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        let item = Self::alert_item(alert)?;
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = if previous_version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(i64::try_from(previous_version).unwrap_or(i64::MAX)))
        };
        actions.push(TransactWriteItem::builder().put(put.build().map_err(|e| StoreError::Rejected(e.to_string()))?).build());
        match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => Ok(false),
            Err(error) => Err(store_error("record hits", error)),
        }
    }
}

#[async_trait]
impl AlertStore for DynamoAlertStore {
    async fn record_hits(&self, hits: &AlertHits, now: DateTime<Utc>) -> Result<Alert, StoreError> {
        let msp_id = &hits.alert.msp_id;
        let alert_id = &hits.alert.id;
        // Optimistic concurrency: read, add the uncounted records, write markers + alert in one
        // transaction conditioned on the version read; on a lost race, read again.
        for attempt in 0..10u32 {
            let stored: Option<Alert> = self.get_alert(msp_id, alert_id).await?;
            // BatchGetItem refuses duplicate keys: ask for each record once.
            let ids: Vec<RecordId> = hits.records.iter().map(|(id, _)| id.clone()).collect::<HashSet<_>>().into_iter().collect();
            let counted = self.counted(msp_id, alert_id, &ids).await?;
            let mut seen = HashSet::new();
            let fresh: Vec<(RecordId, DateTime<Utc>)> =
                hits.records.iter().filter(|(id, _)| !counted.contains(id) && seen.insert(id.clone())).cloned().collect();
            let mut alert = stored.unwrap_or_else(|| hits.alert.clone());
            if fresh.is_empty() {
                return Ok(alert);
            }
            let mut lost_race = false;
            for chunk in fresh.chunks(HITS_PER_TRANSACTION) {
                let previous_version = alert.version;
                let mut next = alert.clone();
                next.absorb(chunk, &hits.details, now);
                next.version += 1;
                if self.write_hits(&next, previous_version, chunk, now).await? {
                    alert = next;
                } else {
                    lost_race = true;
                    break;
                }
            }
            if !lost_race {
                return Ok(alert);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt + 1))).await;
        }
        Err(StoreError::Conflict { what: format!("alert {alert_id}") })
    }
    async fn get_alert(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Option<Alert>, StoreError> {
        get(&self.client, &self.table, Self::alert_key(msp_id, alert_id), "get alert").await?.map(|i| from_item(i, "alert")).transpose()
    }
    async fn resolve_alert(&self, msp_id: &MspId, alert_id: &AlertId, at: DateTime<Utc>) -> Result<Option<Alert>, StoreError> {
        for _ in 0..10 {
            let Some(mut alert) = self.get_alert(msp_id, alert_id).await? else { return Ok(None) };
            let previous_version = alert.version;
            if !alert.resolve(at) {
                return Ok(Some(alert));
            }
            alert.version += 1;
            let item = Self::alert_item(&alert)?;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(i64::try_from(previous_version).unwrap_or(i64::MAX)))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Some(alert)),
                Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(error) => return Err(store_error("resolve alert", error)),
            }
        }
        Err(StoreError::Conflict { what: format!("alert {alert_id}") })
    }
    async fn update_alert(&self, alert: &Alert) -> Result<(), StoreError> {
        let item = Self::alert_item(alert)?;
        let previous = i64::try_from(alert.version.saturating_sub(1)).unwrap_or(i64::MAX);
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :previous")
            .expression_attribute_values(":previous", n(previous))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict { what: format!("alert {}", alert.id) })
            }
            Err(error) => Err(store_error("update alert", error)),
        }
    }
    async fn list_alerts(&self, msp_id: &MspId, limit: usize, after: Option<&str>) -> Result<AlertPage, StoreError> {
        let start = after.map(|after| key(msp_pk(msp_id), format!("ALERT#{after}")));
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(msp_pk(msp_id)))
            .expression_attribute_values(":prefix", s("ALERT#"))
            .limit(i32::try_from(limit.max(1)).unwrap_or(100))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| store_error("list alerts", e))?;
        let alerts = output.items().iter().map(|i| from_item(i.clone(), "alert")).collect::<Result<Vec<Alert>, _>>()?;
        let next = output
            .last_evaluated_key()
            .and_then(|k| k.get("sk"))
            .and_then(|v| v.as_s().ok())
            .and_then(|sk| sk.strip_prefix("ALERT#"))
            .map(str::to_owned);
        Ok(AlertPage { alerts, next })
    }
    async fn alerts_by_change(&self, msp_id: &MspId, query: &ChangeQuery) -> Result<ChangePage, StoreError> {
        self.read_changes(msp_id, query).await
    }
    async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError> {
        let sk = format!("DAILY#{}#{}#{day}", alert.tenant_id, alert.policy_id);
        self.take_daily_place(&alert.msp_id, sk, "alert_ids", &alert.id.to_string(), day, limit).await
    }
    async fn take_daily_message(
        &self,
        alert: &Alert,
        destination: &DestinationId,
        day: chrono::NaiveDate,
        limit: u32,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let sk = format!("DAILYMSG#{}#{}#{destination}#{day}", alert.tenant_id, alert.policy_id);
        self.take_daily_place(&alert.msp_id, sk, "message_ids", message_id, day, limit).await
    }
    async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: &DestinationId) -> Result<Option<Delivery>, StoreError> {
        self.read_delivery(msp_id, alert_id, destination).await
    }
    async fn list_deliveries(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<Delivery>, StoreError> {
        self.read_deliveries(msp_id, alert_id).await
    }
    async fn list_open_tickets(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<(AlertId, TicketRef)>, StoreError> {
        self.read_open_tickets(msp_id, destination).await
    }
    async fn list_held_deliveries(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<AlertId>, StoreError> {
        self.read_held(msp_id, destination).await
    }
    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.write_delivery(delivery).await
    }
}
