//! Ports of offboarding: the offboarding records, and the tenant data a purge lists and deletes.

use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::offboarding::{DataKey, DataKind, DataPage, Offboarding};
use async_trait::async_trait;

/// Offboarding records, one per (MSP, tenant), keyed by [`crate::offboarding::tenant_key`].
#[async_trait]
pub trait OffboardingStore: Send + Sync {
    /// Stores a new record (version 1) unless one exists for the tenant; `false` when one does.
    async fn create_offboarding(&self, offboarding: &Offboarding) -> Result<bool, StoreError>;
    /// Replaces the record, bumping its version, if the stored version is `offboarding.version`;
    /// otherwise [`StoreError::Conflict`]. The passed record gets its new version.
    async fn save_offboarding(&self, offboarding: &mut Offboarding) -> Result<(), StoreError>;
    /// The record of the tenant with this [`crate::offboarding::tenant_key`].
    async fn get_offboarding(&self, msp_id: &MspId, tenant_key: &str) -> Result<Option<Offboarding>, StoreError>;
    /// Every MSP's records not yet purged (the tick's look for purges due and stalled work).
    async fn list_unfinished_offboardings(&self) -> Result<Vec<Offboarding>, StoreError>;
}

/// Everything stored under one tenant, by kind: listed a page at a time and deleted by key.
/// Listing finds a kind's items by the MSP's and the tenant's key prefixes (a table's sweep only
/// where the key layout gives each item its own partition; see the DynamoDB adapter).
#[async_trait]
pub trait TenantData: Send + Sync {
    /// One page (at most [`crate::offboarding::PAGE_KEYS_MAX`] keys) of the tenant's items of
    /// `kind`, from `cursor` (`None`: the start).
    async fn page(&self, msp_id: &MspId, tenant_id: &TenantId, kind: DataKind, cursor: Option<&str>) -> Result<DataPage, StoreError>;
    /// Deletes these items; deleting an item already gone succeeds.
    async fn delete(&self, keys: &[DataKey]) -> Result<(), StoreError>;
}
