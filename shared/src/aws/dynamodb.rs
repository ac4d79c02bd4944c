//! DynamoDB adapters: [`DynamoConfigStore`], [`DynamoIngestState`], [`DynamoAlertStore`].
//!
//! Key layout (every partition key starts with the MSP id):
//!
//! | table  | pk                                           | sk                      | item                   |
//! |--------|----------------------------------------------|-------------------------|------------------------|
//! | config | `MSP#{msp}`                                  | `PROFILE`               | MSP                    |
//! | config | `MSP#{msp}`                                  | `TOKEN#{sha256}`        | API token hash         |
//! | config | `MSP#{msp}`                                  | `TENANT#{tenant}`       | tenant                 |
//! | config | `MSP#{msp}`                                  | `PSA#connectwise`       | ConnectWise settings   |
//! | state  | `MSP#{msp}#TENANT#{tenant}`                  | `STREAM#{stream}`       | coverage ledger        |
//! | state  | `MSP#{msp}#TENANT#{tenant}#RECORD#{id}`      | `CLAIM`                 | record claim (TTL)     |
//! | state  | `MSP#{msp}#TENANT#{tenant}#BLOB#{id}`        | `DONE`                  | finished blob (TTL)    |
//! | alerts | `MSP#{msp}`                                  | `ALERT#{alert}`         | alert                  |
//! | alerts | `MSP#{msp}`                                  | `DELIVERY#{alert}#{dst}`| delivery state         |
//! | alerts | `MSP#{msp}`                                  | `DAILY#{tenant}#{policy}#{day}` | alerts holding the day's tickets (TTL) |
//! | alerts | `MSP#{msp}#ALERT#{alert}#RECORD#{id}`        | `HIT`                   | record counted (TTL)   |
//!
//! TTL attribute: `expires_at` (epoch seconds). Claims, blob markers and hit markers outlive
//! Microsoft's 7-day content retention, so a record can never be counted twice while it can
//! still be delivered twice.

use crate::alert::{Alert, AlertHits};
use crate::error::StoreError;
use crate::ids::{AlertId, MspId, RecordId, TenantId};
use crate::ports::{AlertPage, AlertStore, ClaimOutcome, ConfigStore, IngestStateStore, StreamKey, StreamState, TenantChange};
use crate::tenant::{ConnectWiseSettings, Msp, Tenant, TokenHash};
use crate::ticket::{Delivery, Destination};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, WriteRequest};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};

pub(super) type Item = HashMap<String, AttributeValue>;

/// How long claims and markers are kept: past the 7-day content retention, with margin.
const MARKER_RETENTION_DAYS: i64 = 8;
/// TransactWriteItems takes at most 100 actions; keep room for the alert write.
const HITS_PER_TRANSACTION: usize = 99;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// Classifies an SDK error: throttling, outages and transaction conflicts are transient
/// (`Unavailable`), a lost condition is a `Conflict`, anything else is `Rejected`.
pub(super) fn store_error<E, R>(operation: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = &error {
        let code = service.err().code().unwrap_or("Unknown");
        let message = format!("{operation}: {code}: {}", service.err().message().unwrap_or_default());
        return match code {
            "ConditionalCheckFailedException" => StoreError::Conflict { what: operation.to_owned() },
            "TransactionCanceledException" if message.contains("ConditionalCheckFailed") => {
                StoreError::Conflict { what: operation.to_owned() }
            }
            "TransactionCanceledException" if message.contains("TransactionConflict") => StoreError::Unavailable(message),
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException" => StoreError::Unavailable(message),
            _ => StoreError::Rejected(message),
        };
    }
    StoreError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error)))
}

fn to_item<T: Serialize>(value: &T, pk: String, sk: String) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt { what: sk.clone(), reason: e.to_string() })?;
    item.extend(key(pk, sk));
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt { what: what.to_owned(), reason: e.to_string() })
}

fn expires_at(now: DateTime<Utc>) -> AttributeValue {
    n((now + Duration::days(MARKER_RETENTION_DAYS)).timestamp())
}

pub(super) async fn get(client: &Client, table: &str, item_key: Item, operation: &str) -> Result<Option<Item>, StoreError> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(item_key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| store_error(operation, e))?;
    Ok(output.item().cloned())
}

/// Puts an item unless its key exists; `false` when it did.
async fn put_if_absent(client: &Client, table: &str, item: Item, operation: &str) -> Result<bool, StoreError> {
    match client.put_item().table_name(table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)").send().await {
        Ok(_) => Ok(true),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(error) => Err(store_error(operation, error)),
    }
}

async fn put(client: &Client, table: &str, item: Item, operation: &str) -> Result<(), StoreError> {
    client.put_item().table_name(table).set_item(Some(item)).send().await.map_err(|e| store_error(operation, e))?;
    Ok(())
}

/// Every item of a partition whose sort key starts with `prefix`.
pub(super) async fn query_prefix(client: &Client, table: &str, pk: String, prefix: &str, operation: &str) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":prefix", s(prefix))
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

/// Writes items in batches of 25, retrying what DynamoDB leaves unprocessed.
async fn batch_put(client: &Client, table: &str, items: Vec<Item>, operation: &str) -> Result<(), StoreError> {
    for chunk in items.chunks(25) {
        let mut requests = chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .map_err(|e| StoreError::Rejected(format!("{operation}: {e}")))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for attempt in 0..8u32 {
            let output =
                client.batch_write_item().request_items(table, requests.clone()).send().await.map_err(|e| store_error(operation, e))?;
            requests = output.unprocessed_items().and_then(|u| u.get(table)).cloned().unwrap_or_default();
            if requests.is_empty() {
                break;
            }
            if attempt == 7 {
                return Err(StoreError::Unavailable(format!("{operation}: items left unprocessed")));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
    }
    Ok(())
}

pub(super) fn msp_pk(msp_id: &MspId) -> String {
    format!("MSP#{msp_id}")
}

/// [`ConfigStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoConfigStore {
    client: Client,
    table: String,
}

impl DynamoConfigStore {
    /// A store on `table`.
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[async_trait]
impl ConfigStore for DynamoConfigStore {
    async fn create_msp(&self, msp: &Msp) -> Result<bool, StoreError> {
        put_if_absent(&self.client, &self.table, to_item(msp, msp_pk(&msp.id), "PROFILE".into())?, "create MSP").await
    }
    async fn get_msp(&self, msp_id: &MspId) -> Result<Option<Msp>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), "PROFILE".into()), "get MSP").await?.map(|i| from_item(i, "MSP")).transpose()
    }
    async fn put_msp(&self, msp: &Msp) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(msp, msp_pk(&msp.id), "PROFILE".into())?, "put MSP").await
    }
    async fn add_api_token(&self, msp_id: &MspId, hash: &TokenHash, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key(msp_pk(msp_id), format!("TOKEN#{}", hash.0));
        item.insert("created_at".into(), s(now.to_rfc3339()));
        put(&self.client, &self.table, item, "add API token").await
    }
    async fn api_token_exists(&self, msp_id: &MspId, hash: &TokenHash) -> Result<bool, StoreError> {
        Ok(get(&self.client, &self.table, key(msp_pk(msp_id), format!("TOKEN#{}", hash.0)), "check API token").await?.is_some())
    }
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        put_if_absent(
            &self.client,
            &self.table,
            to_item(tenant, msp_pk(&tenant.msp_id), format!("TENANT#{}", tenant.tenant_id))?,
            "create tenant",
        )
        .await
    }
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(tenant, msp_pk(&tenant.msp_id), format!("TENANT#{}", tenant.tenant_id))?, "put tenant").await
    }
    async fn update_tenant(&self, msp_id: &MspId, tenant_id: &TenantId, change: &TenantChange) -> Result<Option<Tenant>, StoreError> {
        let value = |v: serde_json::Value| -> Result<AttributeValue, StoreError> {
            serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Corrupt { what: "tenant change".into(), reason: e.to_string() })
        };
        let assignments: Vec<(&str, AttributeValue)> = match change {
            TenantChange::ConnectWiseCompany(id) => vec![("connectwise_company_id", n(*id))],
            TenantChange::M365CredentialsSet => vec![("m365_credentials_set", AttributeValue::Bool(true))],
            TenantChange::Streams(streams) => {
                vec![
                    ("streams", value(serde_json::to_value(streams).unwrap_or_default())?),
                    ("webhook_registered", AttributeValue::Bool(false)),
                ]
            }
            TenantChange::Webhook { auth_hash, registered } => {
                vec![("webhook_auth_hash", s(auth_hash.clone())), ("webhook_registered", AttributeValue::Bool(*registered))]
            }
            TenantChange::PolicyContext { domains, break_glass_accounts } => vec![
                ("domains", AttributeValue::L(domains.iter().map(|d| s(d.clone())).collect())),
                ("break_glass_accounts", AttributeValue::L(break_glass_accounts.iter().map(|d| s(d.clone())).collect())),
            ],
        };
        let expression = assignments.iter().enumerate().map(|(i, _)| format!("#a{i} = :v{i}")).collect::<Vec<_>>().join(", ");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), format!("TENANT#{tenant_id}"))))
            .update_expression(format!("SET {expression}"))
            .condition_expression("attribute_exists(pk)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        for (i, (name, attribute)) in assignments.into_iter().enumerate() {
            request = request.expression_attribute_names(format!("#a{i}"), name).expression_attribute_values(format!(":v{i}"), attribute);
        }
        match request.send().await {
            Ok(output) => output.attributes().cloned().map(|item| from_item(item, "tenant")).transpose(),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(error) => Err(store_error("update tenant", error)),
        }
    }
    async fn get_tenant(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("TENANT#{tenant_id}")), "get tenant")
            .await?
            .map(|i| from_item(i, "tenant"))
            .transpose()
    }
    async fn list_tenants(&self, msp_id: &MspId) -> Result<Vec<Tenant>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), "TENANT#", "list tenants")
            .await?
            .into_iter()
            .map(|i| from_item(i, "tenant"))
            .collect()
    }
    async fn list_all_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut tenants = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s("TENANT#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("scan tenants", e))?;
            for item in output.items() {
                tenants.push(from_item(item.clone(), "tenant")?);
            }
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => return Ok(tenants),
            }
        }
    }
    async fn put_connectwise_settings(&self, msp_id: &MspId, settings: &ConnectWiseSettings) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(settings, msp_pk(msp_id), "PSA#connectwise".into())?, "put ConnectWise settings").await
    }
    async fn get_connectwise_settings(&self, msp_id: &MspId) -> Result<Option<ConnectWiseSettings>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), "PSA#connectwise".into()), "get ConnectWise settings")
            .await?
            .map(|i| from_item(i, "ConnectWise settings"))
            .transpose()
    }
}

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

/// [`AlertStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoAlertStore {
    client: Client,
    table: String,
}

impl DynamoAlertStore {
    /// A store on `table`.
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn alert_key(msp_id: &MspId, alert_id: &AlertId) -> Item {
        key(msp_pk(msp_id), format!("ALERT#{alert_id}"))
    }

    fn hit_key(msp_id: &MspId, alert_id: &AlertId, record_id: &RecordId) -> Item {
        key(format!("MSP#{msp_id}#ALERT#{alert_id}#RECORD#{record_id}"), "HIT".into())
    }

    fn delivery_key(msp_id: &MspId, alert_id: &AlertId, destination: Destination) -> Item {
        key(msp_pk(msp_id), format!("DELIVERY#{alert_id}#{}", destination.as_str()))
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
        let item = to_item(alert, msp_pk(&alert.msp_id), format!("ALERT#{}", alert.id))?;
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
            let item = to_item(&alert, msp_pk(msp_id), format!("ALERT#{alert_id}"))?;
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
        let item = to_item(alert, msp_pk(&alert.msp_id), format!("ALERT#{}", alert.id))?;
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
    async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError> {
        let sk = format!("DAILY#{}#{}#{day}", alert.tenant_id, alert.policy_id);
        let expires = day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp()) + 3 * 86_400;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(&alert.msp_id), sk)))
            .update_expression("ADD alert_ids :alert SET expires_at = :expires")
            .condition_expression("attribute_not_exists(alert_ids) OR size(alert_ids) < :limit OR contains(alert_ids, :id)")
            .expression_attribute_values(":alert", AttributeValue::Ss(vec![alert.id.to_string()]))
            .expression_attribute_values(":id", s(alert.id.to_string()))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(error) => Err(store_error("take daily ticket", error)),
        }
    }
    async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: Destination) -> Result<Option<Delivery>, StoreError> {
        get(&self.client, &self.table, Self::delivery_key(msp_id, alert_id, destination), "get delivery")
            .await?
            .map(|i| from_item(i, "delivery"))
            .transpose()
    }
    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let item_key = Self::delivery_key(&delivery.msp_id, &delivery.alert_id, delivery.destination);
        let pk = item_key.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let sk = item_key.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let item = to_item(delivery, pk, sk)?;
        let mut request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        request = if delivery.version <= 1 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(i64::try_from(delivery.version - 1).unwrap_or(i64::MAX)))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict { what: format!("delivery {}", delivery.alert_id) })
            }
            Err(error) => Err(store_error("save delivery", error)),
        }
    }
}
