//! DynamoDB adapters and the helpers they share. The adapters live one concern per module:
//! [`DynamoConfigStore`] (MSPs, tenants, tokens in [`super::config_store`]; destinations in
//! `aws/destinations.rs`), [`DynamoIngestState`] ([`super::ingest_state`]),
//! [`DynamoAlertStore`] (alerts in [`super::alert_store`]; deliveries and their indexes in
//! `aws/deliveries.rs`) and [`super::request_budget::DynamoRequestBudget`].
//!
//! Key layout (every partition key starts with the MSP id):
//!
//! | table  | pk                                           | sk                      | item                   |
//! |--------|----------------------------------------------|-------------------------|------------------------|
//! | config | `MSP#{msp}`                                  | `PROFILE`               | MSP                    |
//! | config | `MSP#{msp}`                                  | `TOKEN#{sha256}`        | API token hash         |
//! | config | `MSP#{msp}`                                  | `TENANT#{tenant}`       | tenant (`company_links` map per destination) |
//! | config | `MSP#{msp}`                                  | `DEST#{destination}`    | destination            |
//! | config | `MSP#{msp}`                                  | `PSA#connectwise`       | legacy ConnectWise settings, read as destination `connectwise` while `DEST#connectwise` is absent |
//! | state  | `MSP#{msp}#TENANT#{tenant}`                  | `STREAM#{stream}`       | coverage ledger        |
//! | state  | `MSP#{msp}#TENANT#{tenant}#RECORD#{id}`      | `CLAIM`                 | record claim (TTL)     |
//! | state  | `MSP#{msp}#TENANT#{tenant}#BLOB#{id}`        | `DONE`                  | finished blob (TTL)    |
//! | alerts | `MSP#{msp}`                                  | `ALERT#{alert}`         | alert; `changed` = `{write time ms}#{alert}` keys it in the GSI `by-change` (`pk`, `changed`), `tenant_changes` = `MSP#{msp}#TENANT#{tenant}` in the GSI `by-tenant-change` (`tenant_changes`, `changed`) |
//! | alerts | `MSP#{msp}`                                  | `DELIVERY#{alert}#{dst}`| delivery state (legacy items: `dst` = `connectwise`) |
//! | alerts | `MSP#{msp}`                                  | `OPENTICKET#{dst}#{alert}` | index: the delivery's ticket is open (`alert_id`, `ticket`) |
//! | alerts | `MSP#{msp}`                                  | `HELD#{dst}#{alert}`    | index: the delivery waits for a company link (`alert_id`) |
//! | alerts | `MSP#{msp}`                                  | `DAILY#{tenant}#{policy}#{day}` | alerts holding the day's tickets (TTL) |
//! | alerts | `MSP#{msp}#ALERT#{alert}#RECORD#{id}`        | `HIT`                   | record counted (TTL)   |
//! | alerts | `MSP#{msp}#BUDGET#{dst}`                     | `WINDOW`                | request counts per minute of the last hour (TTL) |
//!
//! TTL attribute: `expires_at` (epoch seconds). Claims, blob markers and hit markers outlive
//! Microsoft's 7-day content retention, so a record can never be counted twice while it can
//! still be delivered twice.

pub use super::alert_store::DynamoAlertStore;
pub use super::config_store::DynamoConfigStore;
pub use super::ingest_state::DynamoIngestState;

use crate::error::StoreError;
use crate::ids::MspId;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

/// How long claims and markers are kept: past the 7-day content retention, with margin.
pub(super) const MARKER_RETENTION_DAYS: i64 = 8;

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

pub(super) fn to_item<T: Serialize>(value: &T, pk: String, sk: String) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt { what: sk.clone(), reason: e.to_string() })?;
    item.extend(key(pk, sk));
    Ok(item)
}

pub(super) fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt { what: what.to_owned(), reason: e.to_string() })
}

pub(super) fn expires_at(now: DateTime<Utc>) -> AttributeValue {
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
pub(super) async fn put_if_absent(client: &Client, table: &str, item: Item, operation: &str) -> Result<bool, StoreError> {
    match client.put_item().table_name(table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)").send().await {
        Ok(_) => Ok(true),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(error) => Err(store_error(operation, error)),
    }
}

/// Deletes an item (nothing to delete is no error).
pub(super) async fn delete(client: &Client, table: &str, item_key: Item, operation: &str) -> Result<(), StoreError> {
    client.delete_item().table_name(table).set_key(Some(item_key)).send().await.map_err(|e| store_error(operation, e))?;
    Ok(())
}

/// Deletes an item and tells whether there was one to delete.
pub(super) async fn delete_existing(client: &Client, table: &str, item_key: Item, operation: &str) -> Result<bool, StoreError> {
    let output = client
        .delete_item()
        .table_name(table)
        .set_key(Some(item_key))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await
        .map_err(|e| store_error(operation, e))?;
    Ok(output.attributes().is_some_and(|old| !old.is_empty()))
}

pub(super) async fn put(client: &Client, table: &str, item: Item, operation: &str) -> Result<(), StoreError> {
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
pub(super) async fn batch_put(client: &Client, table: &str, items: Vec<Item>, operation: &str) -> Result<(), StoreError> {
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

/// Every item of the table whose sort key starts with one of `prefixes` (a paginated Scan).
pub(super) async fn scan_prefixes(client: &Client, table: &str, prefixes: &[&str], operation: &str) -> Result<Vec<Item>, StoreError> {
    let filter = (0..prefixes.len()).map(|i| format!("begins_with(sk, :p{i})")).collect::<Vec<_>>().join(" OR ");
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let mut request = client.scan().table_name(table).filter_expression(&filter).set_exclusive_start_key(start.take());
        for (i, prefix) in prefixes.iter().enumerate() {
            request = request.expression_attribute_values(format!(":p{i}"), s(*prefix));
        }
        let output = request.send().await.map_err(|e| store_error(operation, e))?;
        items.extend(output.items().iter().cloned());
        match output.last_evaluated_key() {
            Some(last) if !last.is_empty() => start = Some(last.clone()),
            _ => return Ok(items),
        }
    }
}

/// The string attribute `name` of an item.
pub(super) fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt { what: name.to_owned(), reason: "attribute missing or not a string".to_owned() })
}

/// Whether an SDK error is a lost `ConditionExpression`.
pub(super) fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}

/// A short random pause before retrying a lost race: up to `max_ms` milliseconds, so
/// contending writers spread out instead of colliding again.
pub(super) async fn jitter(max_ms: u64) {
    let mut bytes = [0u8; 2];
    let random = if getrandom::fill(&mut bytes).is_ok() { u64::from(u16::from_le_bytes(bytes)) } else { 0x7fff };
    tokio::time::sleep(std::time::Duration::from_millis(1 + random * max_ms.max(1) / 0xffff)).await;
}
