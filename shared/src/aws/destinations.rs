//! [`DestinationStore`] on the config table: one item per destination, `DEST#{id}` in the
//! MSP's partition.
//!
//! **Legacy carry-over.** An MSP configured before destinations were data has its ConnectWise
//! settings under `PSA#connectwise`. While `DEST#connectwise` does not exist, that item reads
//! as the destination `connectwise` ([`Destination::from_legacy`]) wherever destinations are
//! read; once `DEST#connectwise` is written it wins (the legacy item is kept, shadowed, so a
//! rollback still finds it). Deleting `connectwise` deletes both, or the legacy item would
//! come back as the destination.

use super::config_store::DynamoConfigStore;
use super::dynamodb::{Item, from_item, get, key, msp_pk, query_prefix, scan_prefixes, store_error, text, to_item};
use crate::destination::{Destination, LEGACY_DESTINATION_ID};
use crate::error::StoreError;
use crate::ids::{DestinationId, MspId};
use crate::ports::DestinationStore;
use crate::tenant::LegacyConnectWiseSettings;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use std::collections::{BTreeMap, HashSet};

const DESTINATION_PREFIX: &str = "DEST#";
/// The sort key of the ConnectWise settings stored before destinations were data.
pub(super) const LEGACY_SETTINGS_SK: &str = "PSA#connectwise";

fn destination_sk(id: &DestinationId) -> String {
    format!("{DESTINATION_PREFIX}{id}")
}

fn is_legacy_id(id: &DestinationId) -> bool {
    id.as_str() == LEGACY_DESTINATION_ID
}

/// The destination a legacy `PSA#connectwise` item of `msp_id` stands for.
fn from_legacy_item(msp_id: &MspId, item: Item) -> Result<Destination, StoreError> {
    let legacy: LegacyConnectWiseSettings = from_item(item, "legacy ConnectWise settings")?;
    Ok(Destination::from_legacy(msp_id, &legacy))
}

/// The MSP whose partition an item is in.
fn msp_of(item: &Item) -> Result<MspId, StoreError> {
    let pk = text(item, "pk")?;
    pk.strip_prefix("MSP#")
        .and_then(|msp| MspId::parse(msp).ok())
        .ok_or_else(|| StoreError::Corrupt { what: "config item".into(), reason: format!("not an MSP partition: {pk}") })
}

impl DynamoConfigStore {
    async fn legacy_destination(&self, msp_id: &MspId) -> Result<Option<Destination>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), LEGACY_SETTINGS_SK.into()), "get legacy ConnectWise settings")
            .await?
            .map(|item| from_legacy_item(msp_id, item))
            .transpose()
    }

    async fn delete_item(&self, msp_id: &MspId, sk: String) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), sk)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("delete destination", e))?;
        Ok(output.attributes().is_some_and(|old| !old.is_empty()))
    }
}

#[async_trait]
impl DestinationStore for DynamoConfigStore {
    async fn put_destination(&self, destination: &Destination) -> Result<(), StoreError> {
        let item = to_item(destination, msp_pk(&destination.msp_id), destination_sk(&destination.id))?;
        super::dynamodb::put(&self.client, &self.table, item, "put destination").await
    }

    async fn get_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<Option<Destination>, StoreError> {
        let stored = get(&self.client, &self.table, key(msp_pk(msp_id), destination_sk(id)), "get destination").await?;
        match stored {
            Some(item) => Ok(Some(from_item(item, "destination")?)),
            None if is_legacy_id(id) => self.legacy_destination(msp_id).await,
            None => Ok(None),
        }
    }

    async fn list_destinations(&self, msp_id: &MspId) -> Result<Vec<Destination>, StoreError> {
        let mut destinations = query_prefix(&self.client, &self.table, msp_pk(msp_id), DESTINATION_PREFIX, "list destinations")
            .await?
            .into_iter()
            .map(|item| from_item::<Destination>(item, "destination"))
            .collect::<Result<Vec<_>, _>>()?;
        if !destinations.iter().any(|d| is_legacy_id(&d.id))
            && let Some(legacy) = self.legacy_destination(msp_id).await?
        {
            destinations.push(legacy);
            destinations.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(destinations)
    }

    async fn delete_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<bool, StoreError> {
        let deleted = self.delete_item(msp_id, destination_sk(id)).await?;
        if is_legacy_id(id) {
            let legacy_deleted = self.delete_item(msp_id, LEGACY_SETTINGS_SK.into()).await?;
            return Ok(deleted || legacy_deleted);
        }
        Ok(deleted)
    }

    /// One paginated Scan of the config table for `DEST#` and `PSA#` items. The config table
    /// holds a few hundred items per MSP (profile, tokens, tenants, destinations, policies), the
    /// scan runs once per read-back round (minutes apart), and `list_all_tenants` already scans
    /// the same way; an index (GSI) would need a template change for no measurable gain.
    async fn list_all_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let items = scan_prefixes(&self.client, &self.table, &[DESTINATION_PREFIX, LEGACY_SETTINGS_SK], "scan destinations").await?;
        let mut destinations = Vec::new();
        let mut legacy: BTreeMap<MspId, Item> = BTreeMap::new();
        for item in items {
            if text(&item, "sk")? == LEGACY_SETTINGS_SK {
                legacy.insert(msp_of(&item)?, item);
            } else {
                destinations.push(from_item::<Destination>(item, "destination")?);
            }
        }
        let carried_over: HashSet<MspId> = destinations.iter().filter(|d| is_legacy_id(&d.id)).map(|d| d.msp_id.clone()).collect();
        for (msp_id, item) in legacy {
            if !carried_over.contains(&msp_id) {
                destinations.push(from_legacy_item(&msp_id, item)?);
            }
        }
        Ok(destinations)
    }
}
