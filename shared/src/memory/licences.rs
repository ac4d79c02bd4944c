//! Licences in memory: a tenant's side on Graph ([`MemoryLicenceSource`]: a snapshot per
//! tenant, failures on demand) and Vigil's store of each tenant's licence state
//! ([`MemoryLicenceStore`]).

use super::lock;
use crate::error::{SourceError, StoreError};
use crate::ids::{MspId, TenantId};
use crate::licences::{LicenceSnapshot, TenantLicences};
use crate::ports::{LicenceSource, LicenceStore};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// [`LicenceStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryLicenceStore {
    states: Mutex<BTreeMap<(MspId, TenantId), TenantLicences>>,
}

#[async_trait]
impl LicenceStore for MemoryLicenceStore {
    async fn licences(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<TenantLicences>, StoreError> {
        Ok(lock(&self.states).get(&(msp_id.clone(), tenant_id.clone())).cloned())
    }
    async fn put_licences(&self, msp_id: &MspId, tenant_id: &TenantId, licences: &TenantLicences) -> Result<(), StoreError> {
        lock(&self.states).insert((msp_id.clone(), tenant_id.clone()), licences.clone());
        Ok(())
    }
    async fn licence_reads(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, DateTime<Utc>>, StoreError> {
        Ok(lock(&self.states)
            .iter()
            .filter(|((msp, _), _)| msp == msp_id)
            .filter_map(|((_, tenant), state)| state.read_at.map(|at| (tenant.clone(), at)))
            .collect())
    }
}

/// [`LicenceSource`] in memory: a snapshot per tenant (none set: the default one, empty unless
/// [`MemoryLicenceSource::healthy`]), and failures to answer with, one per call.
#[derive(Debug, Default)]
pub struct MemoryLicenceSource {
    snapshots: Mutex<HashMap<TenantId, LicenceSnapshot>>,
    default: LicenceSnapshot,
    failures: Mutex<Vec<SourceError>>,
    reads: Mutex<usize>,
}

impl MemoryLicenceSource {
    /// A source whose tenants all hold one active Microsoft 365 E5 subscription (Defender for
    /// Office 365 Plan 2 included, renewal a year away): nothing to report, for tests of other
    /// capabilities.
    #[must_use]
    pub fn healthy() -> Self {
        Self { default: crate::licences::healthy_snapshot(chrono::Utc::now()), ..Self::default() }
    }
    /// Sets what the tenant's licence listings answer.
    pub fn set(&self, tenant_id: &TenantId, snapshot: LicenceSnapshot) {
        lock(&self.snapshots).insert(tenant_id.clone(), snapshot);
    }
    /// The next read fails with `error` (queued).
    pub fn fail_next(&self, error: SourceError) {
        lock(&self.failures).push(error);
    }
    /// Reads so far.
    #[must_use]
    pub fn reads(&self) -> usize {
        *lock(&self.reads)
    }
}

#[async_trait]
impl LicenceSource for MemoryLicenceSource {
    async fn licences(&self, tenant_id: &TenantId, _credentials: &M365AppCredentials) -> Result<LicenceSnapshot, SourceError> {
        *lock(&self.reads) += 1;
        let mut failures = lock(&self.failures);
        if !failures.is_empty() {
            return Err(failures.remove(0));
        }
        Ok(lock(&self.snapshots).get(tenant_id).cloned().unwrap_or_else(|| self.default.clone()))
    }
}
