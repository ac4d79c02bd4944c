//! Deliveries on the alerts table, and the two indexes the read-back and the link release
//! query: `OPENTICKET#{destination}#{alert}` (the delivery's ticket is open) and
//! `HELD#{destination}#{alert}` (the delivery waits for a company link).
//!
//! **Write order.** A delivery and both of its index entries are written in one
//! TransactWriteItems: the delivery put, conditioned on its version, plus a put or a delete of
//! each index entry according to the new state ([`Delivery::has_open_ticket`],
//! [`Delivery::held_unlinked`]). DynamoDB applies all three or none, so an index entry exists
//! exactly when the stored delivery says it should: never missing for an open ticket or a held
//! delivery, and not stale either (readers still check the delivery, as the port allows). A
//! lost version condition cancels the whole transaction ([`StoreError::Conflict`]); a
//! transaction conflict (another writer on the same items at that instant) is retried here,
//! which is safe because the version condition decides again.
//!
//! Deliveries written before these indexes existed are indexed on their next save, or all at
//! once by [`DynamoAlertStore::index_earlier_deliveries`].
//! Delivery keys keep the format of those legacy items (`DELIVERY#{alert}#connectwise`).

use super::alert_store::DynamoAlertStore;
use super::dynamodb::{Item, from_item, get, jitter, key, msp_pk, n, query_prefix, s, scan_prefixes, store_error, text, to_item};
use crate::error::StoreError;
use crate::ids::{AlertId, DestinationId, MspId};
use crate::ticket::{Delivery, TicketRef};
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem};

/// How often a transaction that collided with another one is tried.
const TRANSACTION_ATTEMPTS: u32 = 5;

fn delivery_sk(alert_id: &AlertId, destination: &DestinationId) -> String {
    format!("DELIVERY#{alert_id}#{destination}")
}

fn open_ticket_prefix(destination: &DestinationId) -> String {
    format!("OPENTICKET#{destination}#")
}

fn held_prefix(destination: &DestinationId) -> String {
    format!("HELD#{destination}#")
}

/// The delivery's `OPENTICKET#` entry (with its ticket, when it has one).
fn open_entry(delivery: &Delivery) -> Item {
    let mut entry = key(msp_pk(&delivery.msp_id), format!("{}{}", open_ticket_prefix(&delivery.destination), delivery.alert_id));
    entry.insert("alert_id".into(), s(delivery.alert_id.as_str()));
    if let Some(ticket) = &delivery.ticket {
        entry.insert("ticket".into(), s(ticket.id.clone()));
    }
    entry
}

/// The delivery's `HELD#` entry.
fn held_entry(delivery: &Delivery) -> Item {
    let mut entry = key(msp_pk(&delivery.msp_id), format!("{}{}", held_prefix(&delivery.destination), delivery.alert_id));
    entry.insert("alert_id".into(), s(delivery.alert_id.as_str()));
    entry
}

fn alert_id_of(item: &Item) -> Result<AlertId, StoreError> {
    AlertId::parse(text(item, "alert_id")?).map_err(|e| StoreError::Corrupt { what: "delivery index".into(), reason: e.to_string() })
}

impl DynamoAlertStore {
    pub(super) async fn read_delivery(
        &self,
        msp_id: &MspId,
        alert_id: &AlertId,
        destination: &DestinationId,
    ) -> Result<Option<Delivery>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), delivery_sk(alert_id, destination)), "get delivery")
            .await?
            .map(|item| from_item(item, "delivery"))
            .transpose()
    }

    pub(super) async fn read_deliveries(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<Delivery>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), &format!("DELIVERY#{alert_id}#"), "list deliveries")
            .await?
            .into_iter()
            .map(|item| from_item(item, "delivery"))
            .collect()
    }

    pub(super) async fn read_open_tickets(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
    ) -> Result<Vec<(AlertId, TicketRef)>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), &open_ticket_prefix(destination), "list open tickets")
            .await?
            .iter()
            .map(|item| Ok((alert_id_of(item)?, TicketRef::new(text(item, "ticket")?))))
            .collect()
    }

    pub(super) async fn read_held(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<AlertId>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), &held_prefix(destination), "list held deliveries")
            .await?
            .iter()
            .map(alert_id_of)
            .collect()
    }

    /// The put of an index entry when it should be `present`, else the delete of its key.
    fn index_action(&self, present: bool, mut item: Item) -> Result<TransactWriteItem, StoreError> {
        let rejected = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Rejected(format!("save delivery: {e}"));
        Ok(if present {
            TransactWriteItem::builder().put(Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(rejected)?).build()
        } else {
            item.retain(|name, _| name == "pk" || name == "sk");
            TransactWriteItem::builder()
                .delete(Delete::builder().table_name(&self.table).set_key(Some(item)).build().map_err(rejected)?)
                .build()
        })
    }

    fn delivery_transaction(&self, delivery: &Delivery) -> Result<Vec<TransactWriteItem>, StoreError> {
        let item = to_item(delivery, msp_pk(&delivery.msp_id), delivery_sk(&delivery.alert_id, &delivery.destination))?;
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = if delivery.version <= 1 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(i64::try_from(delivery.version - 1).unwrap_or(i64::MAX)))
        };
        let put = put.build().map_err(|e| StoreError::Rejected(format!("save delivery: {e}")))?;

        Ok(vec![
            TransactWriteItem::builder().put(put).build(),
            self.index_action(delivery.has_open_ticket(), open_entry(delivery))?,
            self.index_action(delivery.held_unlinked, held_entry(delivery))?,
        ])
    }

    /// Indexes the deliveries saved before the indexes existed (run once after deploying this
    /// layout, e.g. from the admin tool): every open or held delivery gets its entries, in a
    /// transaction conditioned on the version read, so a delivery saved meanwhile (which wrote
    /// its own entries) is left alone. One Scan of the alerts table; repeating it is harmless.
    /// Returns how many deliveries were indexed.
    ///
    /// # Errors
    /// When the table cannot be read or written, or holds a delivery it cannot read.
    pub async fn index_earlier_deliveries(&self) -> Result<usize, StoreError> {
        let mut indexed = 0;
        for item in scan_prefixes(&self.client, &self.table, &["DELIVERY#"], "scan deliveries").await? {
            let delivery: Delivery = from_item(item, "delivery")?;
            let entries: Vec<Item> =
                [delivery.has_open_ticket().then(|| open_entry(&delivery)), delivery.held_unlinked.then(|| held_entry(&delivery))]
                    .into_iter()
                    .flatten()
                    .collect();
            if entries.is_empty() {
                continue;
            }
            let unchanged = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(msp_pk(&delivery.msp_id), delivery_sk(&delivery.alert_id, &delivery.destination))))
                .condition_expression("version = :read")
                .expression_attribute_values(":read", n(i64::try_from(delivery.version).unwrap_or(i64::MAX)))
                .build()
                .map_err(|e| StoreError::Rejected(format!("index deliveries: {e}")))?;
            let mut actions = vec![TransactWriteItem::builder().condition_check(unchanged).build()];
            for entry in entries {
                actions.push(self.index_action(true, entry)?);
            }
            match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
                Ok(_) => indexed += 1,
                // Saved (and indexed) meanwhile, or being saved right now: its own write indexes it.
                Err(error) if error.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => {}
                Err(error) => return Err(store_error("index deliveries", error)),
            }
        }
        Ok(indexed)
    }

    /// Writes the delivery and its index entries in one transaction (see the module docs).
    pub(super) async fn write_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let actions = self.delivery_transaction(delivery)?;
        let what = || format!("delivery {} to {}", delivery.alert_id, delivery.destination);
        for attempt in 1..=TRANSACTION_ATTEMPTS {
            let error = match self.client.transact_write_items().set_transact_items(Some(actions.clone())).send().await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let Some(canceled) = error.as_service_error().and_then(|e| match e {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                _ => None,
            }) else {
                return Err(store_error("save delivery", error));
            };
            let codes: Vec<&str> = canceled.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
            let message = canceled.message().unwrap_or_default();
            if codes.contains(&"ConditionalCheckFailed") || (codes.is_empty() && message.contains("ConditionalCheckFailed")) {
                return Err(StoreError::Conflict { what: what() });
            }
            let collided = codes.contains(&"TransactionConflict") || message.contains("TransactionConflict");
            if !collided || attempt == TRANSACTION_ATTEMPTS {
                return Err(store_error("save delivery", error));
            }
            jitter(25 * u64::from(attempt)).await;
        }
        Err(StoreError::Unavailable(format!("save {}: transaction kept colliding", what())))
    }
}
