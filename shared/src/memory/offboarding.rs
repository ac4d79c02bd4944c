//! [`OffboardingStore`] and [`TenantData`] in memory. The tenant data is a set of keys, each
//! with the (MSP, tenant, kind) it belongs to, that tests seed; listing pages through a kind in
//! key order, like the DynamoDB adapter's queries.

use super::lock;
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::offboarding::{DataKey, DataKind, DataPage, Offboarding, OffboardingPhase};
use crate::ports::{OffboardingStore, TenantData};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// [`OffboardingStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryOffboardingStore {
    records: Mutex<HashMap<(MspId, String), Offboarding>>,
}

#[async_trait]
impl OffboardingStore for MemoryOffboardingStore {
    async fn create_offboarding(&self, offboarding: &Offboarding) -> Result<bool, StoreError> {
        let mut records = lock(&self.records);
        let key = (offboarding.msp_id.clone(), offboarding.tenant_key.clone());
        if records.contains_key(&key) {
            return Ok(false);
        }
        let mut stored = offboarding.clone();
        stored.version = 1;
        records.insert(key, stored);
        Ok(true)
    }
    async fn save_offboarding(&self, offboarding: &mut Offboarding) -> Result<(), StoreError> {
        let mut records = lock(&self.records);
        let key = (offboarding.msp_id.clone(), offboarding.tenant_key.clone());
        let stored_version = records.get(&key).map_or(0, |r| r.version);
        if stored_version != offboarding.version {
            return Err(StoreError::Conflict { what: "offboarding".into() });
        }
        offboarding.version += 1;
        records.insert(key, offboarding.clone());
        Ok(())
    }
    async fn get_offboarding(&self, msp_id: &MspId, tenant_key: &str) -> Result<Option<Offboarding>, StoreError> {
        Ok(lock(&self.records).get(&(msp_id.clone(), tenant_key.to_owned())).cloned())
    }
    async fn list_unfinished_offboardings(&self) -> Result<Vec<Offboarding>, StoreError> {
        Ok(lock(&self.records).values().filter(|r| r.phase != OffboardingPhase::Purged).cloned().collect())
    }
}

/// [`TenantData`] in memory: keys seeded per (MSP, tenant, kind).
#[derive(Debug)]
pub struct MemoryTenantData {
    items: Mutex<BTreeMap<DataKey, (MspId, TenantId, DataKind)>>,
    page_size: usize,
}

impl MemoryTenantData {
    /// An empty store listing `page_size` keys a page.
    #[must_use]
    pub fn new(page_size: usize) -> Self {
        Self { items: Mutex::new(BTreeMap::new()), page_size: page_size.max(1) }
    }

    /// Adds `count` items of `kind` for the tenant (keys under the MSP's partition).
    pub fn seed(&self, msp_id: &MspId, tenant_id: &TenantId, kind: DataKind, count: usize) {
        let mut items = lock(&self.items);
        for i in 0..count {
            let key =
                DataKey { table: "memory".into(), pk: format!("MSP#{msp_id}#TENANT#{tenant_id}"), sk: format!("{}#{i:06}", kind.as_str()) };
            items.insert(key, (msp_id.clone(), tenant_id.clone(), kind));
        }
    }

    /// Adds one item under any key (e.g. one outside the MSP's partition, which a purge must
    /// refuse to delete).
    pub fn seed_key(&self, key: DataKey, msp_id: &MspId, tenant_id: &TenantId, kind: DataKind) {
        lock(&self.items).insert(key, (msp_id.clone(), tenant_id.clone(), kind));
    }

    /// How many items the tenant still has, over every kind.
    #[must_use]
    pub fn count(&self, msp_id: &MspId, tenant_id: &TenantId) -> usize {
        lock(&self.items).values().filter(|(m, t, _)| m == msp_id && t == tenant_id).count()
    }
}

#[async_trait]
impl TenantData for MemoryTenantData {
    async fn page(&self, msp_id: &MspId, tenant_id: &TenantId, kind: DataKind, cursor: Option<&str>) -> Result<DataPage, StoreError> {
        let items = lock(&self.items);
        let mut matching = items
            .iter()
            .filter(|(_, (m, t, k))| m == msp_id && t == tenant_id && *k == kind)
            .map(|(key, _)| key)
            .filter(|key| cursor.is_none_or(|c| format!("{}\n{}", key.pk, key.sk).as_str() > c));
        let keys: Vec<DataKey> = matching.by_ref().take(self.page_size).cloned().collect();
        let next = match (keys.last(), matching.next()) {
            (Some(last), Some(_)) => Some(format!("{}\n{}", last.pk, last.sk)),
            _ => None,
        };
        Ok(DataPage { keys, next })
    }
    async fn delete(&self, keys: &[DataKey]) -> Result<(), StoreError> {
        let mut items = lock(&self.items);
        for key in keys {
            items.remove(key);
        }
        Ok(())
    }
}
