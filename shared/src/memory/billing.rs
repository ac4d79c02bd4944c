//! Protected-mailbox billing in memory: the daily series, settings, mappings and sync records
//! ([`MemoryBillingStore`]), a customer directory with failures on demand
//! ([`MemoryMailboxDirectory`]) and a PSA's agreement lines ([`MemoryBillingTarget`]) with hand
//! edits, cancelled agreements and a write whose answer is lost.

use super::lock;
use crate::billing::sync::{BillingLine, BillingMapping, BillingPeriod, SyncRecord};
use crate::billing::{BillingSettings, DailyCount, DirectoryUser};
use crate::destination::Destination;
use crate::error::{SinkError, SourceError, StoreError};
use crate::ids::{DestinationId, MspId, TenantId};
use crate::ports::{BillingStore, BillingTarget, BillingTargets, MailboxCountStore, MailboxDirectory, SinkSetupError};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;

/// [`MailboxCountStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryBillingStore {
    counts: Mutex<BTreeMap<(MspId, TenantId, NaiveDate), DailyCount>>,
    settings: Mutex<HashMap<MspId, BillingSettings>>,
    requested: Mutex<HashMap<MspId, NaiveDate>>,
    mappings: Mutex<BTreeMap<(MspId, DestinationId, TenantId), BillingMapping>>,
    records: Mutex<HashMap<(MspId, DestinationId, TenantId), SyncRecord>>,
}

#[async_trait]
impl BillingStore for MemoryBillingStore {
    async fn put_mapping(&self, msp_id: &MspId, mapping: &BillingMapping) -> Result<(), StoreError> {
        lock(&self.mappings).insert((msp_id.clone(), mapping.destination_id.clone(), mapping.tenant_id.clone()), mapping.clone());
        Ok(())
    }
    async fn delete_mapping(&self, msp_id: &MspId, destination_id: &DestinationId, tenant_id: &TenantId) -> Result<bool, StoreError> {
        let key = (msp_id.clone(), destination_id.clone(), tenant_id.clone());
        lock(&self.records).remove(&key);
        Ok(lock(&self.mappings).remove(&key).is_some())
    }
    async fn mappings(&self, msp_id: &MspId) -> Result<Vec<BillingMapping>, StoreError> {
        Ok(lock(&self.mappings).iter().filter(|((msp, _, _), _)| msp == msp_id).map(|(_, m)| m.clone()).collect())
    }
    async fn sync_record(
        &self,
        msp_id: &MspId,
        destination_id: &DestinationId,
        tenant_id: &TenantId,
    ) -> Result<Option<SyncRecord>, StoreError> {
        Ok(lock(&self.records).get(&(msp_id.clone(), destination_id.clone(), tenant_id.clone())).cloned())
    }
    async fn put_sync_record(&self, msp_id: &MspId, record: &SyncRecord) -> Result<(), StoreError> {
        lock(&self.records).insert((msp_id.clone(), record.destination_id.clone(), record.tenant_id.clone()), record.clone());
        Ok(())
    }
}

/// [`BillingTarget`] in memory: quantities per line, agreements that exist (and cancelled
/// ones), every write counted, and faults on demand.
#[derive(Debug)]
pub struct MemoryBillingTarget {
    writes: bool,
    quantities: Mutex<HashMap<BillingLine, u32>>,
    agreements: Mutex<HashMap<String, bool>>,
    writes_made: Mutex<Vec<(BillingLine, Option<u32>, u32)>>,
    lose_next_answer: Mutex<bool>,
    failures: Mutex<Vec<SinkError>>,
    write_failures: Mutex<Vec<SinkError>>,
}

impl MemoryBillingTarget {
    /// A PSA Vigil writes to (`writes`) or only reports for.
    #[must_use]
    pub fn new(writes: bool) -> Self {
        Self {
            writes,
            quantities: Mutex::default(),
            agreements: Mutex::default(),
            writes_made: Mutex::default(),
            lose_next_answer: Mutex::new(false),
            failures: Mutex::default(),
            write_failures: Mutex::default(),
        }
    }

    /// An agreement that exists (`cancelled`: it does, cancelled).
    pub fn add_agreement(&self, agreement_id: &str, cancelled: bool) {
        lock(&self.agreements).insert(agreement_id.to_owned(), cancelled);
    }

    /// A technician sets a line's quantity in the PSA.
    pub fn set_by_hand(&self, line: &BillingLine, quantity: u32) {
        lock(&self.quantities).insert(line.clone(), quantity);
    }

    /// The line's quantity now.
    #[must_use]
    pub fn quantity_of(&self, line: &BillingLine) -> Option<u32> {
        lock(&self.quantities).get(line).copied()
    }

    /// Every write so far: (line, quantity found, quantity set).
    #[must_use]
    pub fn writes_made(&self) -> Vec<(BillingLine, Option<u32>, u32)> {
        lock(&self.writes_made).clone()
    }

    /// The next write is made and its answer lost (the caller sees a timeout).
    pub fn lose_next_answer(&self) {
        *lock(&self.lose_next_answer) = true;
    }

    /// The next call fails with `error`.
    pub fn fail_next(&self, error: SinkError) {
        lock(&self.failures).push(error);
    }

    /// The next write fails with `error` before reaching the PSA (nothing is written).
    pub fn fail_next_write(&self, error: SinkError) {
        lock(&self.write_failures).push(error);
    }

    fn failure(&self) -> Result<(), SinkError> {
        lock(&self.failures).pop().map_or(Ok(()), Err)
    }
}

#[async_trait]
impl BillingTarget for MemoryBillingTarget {
    fn writes(&self) -> bool {
        self.writes
    }
    async fn check_line(&self, line: &BillingLine) -> Result<(), SinkError> {
        self.failure()?;
        match lock(&self.agreements).get(&line.agreement_id) {
            None => Err(SinkError::Rejected(format!("agreement {} does not exist", line.agreement_id))),
            Some(true) => Err(SinkError::Rejected(format!("agreement {} is cancelled", line.agreement_id))),
            Some(false) => Ok(()),
        }
    }
    async fn quantity(&self, line: &BillingLine, _period: &BillingPeriod) -> Result<Option<u32>, SinkError> {
        self.failure()?;
        Ok(self.quantity_of(line))
    }
    async fn set_quantity(&self, line: &BillingLine, _period: &BillingPeriod, found: Option<u32>, target: u32) -> Result<(), SinkError> {
        self.failure()?;
        if let Some(error) = lock(&self.write_failures).pop() {
            return Err(error);
        }
        if !self.writes {
            return Err(SinkError::Invalid("this PSA is report-only".into()));
        }
        lock(&self.quantities).insert(line.clone(), target);
        lock(&self.writes_made).push((line.clone(), found, target));
        if std::mem::take(&mut *lock(&self.lose_next_answer)) {
            return Err(SinkError::Unavailable("timed out waiting for the PSA's answer".into()));
        }
        Ok(())
    }
}

/// [`BillingTargets`] in memory: one [`MemoryBillingTarget`] per destination id.
#[derive(Debug, Default)]
pub struct MemoryBillingTargets {
    targets: Mutex<HashMap<DestinationId, Arc<MemoryBillingTarget>>>,
}

impl MemoryBillingTargets {
    /// The billing side of destination `id` from now on.
    pub fn set(&self, id: &DestinationId, target: Arc<MemoryBillingTarget>) {
        lock(&self.targets).insert(id.clone(), target);
    }
}

#[async_trait]
impl BillingTargets for MemoryBillingTargets {
    async fn billing_for(&self, destination: &Destination) -> Result<Arc<dyn BillingTarget>, SinkSetupError> {
        lock(&self.targets)
            .get(&destination.id)
            .cloned()
            .map(|t| t as Arc<dyn BillingTarget>)
            .ok_or_else(|| SinkSetupError::NotConfigured(format!("destination {} does not bill", destination.id)))
    }
}

#[async_trait]
impl MailboxCountStore for MemoryBillingStore {
    async fn record_count(&self, msp_id: &MspId, count: &DailyCount, settings: &BillingSettings) -> Result<(), StoreError> {
        let mut counts = lock(&self.counts);
        counts.insert((msp_id.clone(), count.tenant_id.clone(), count.day), count.clone());
        let oldest = settings.oldest_kept(count.day);
        counts.retain(|(msp, tenant, day), _| msp != msp_id || *tenant != count.tenant_id || *day >= oldest);
        Ok(())
    }
    async fn counts(&self, msp_id: &MspId, tenant_id: &TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyCount>, StoreError> {
        Ok(lock(&self.counts)
            .iter()
            .filter(|((msp, tenant, day), _)| msp == msp_id && tenant == tenant_id && (from..=to).contains(day))
            .map(|(_, count)| count.clone())
            .collect())
    }
    async fn latest_counts(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, DailyCount>, StoreError> {
        let mut latest = BTreeMap::new();
        // Ordered by day within a tenant: the last one written per tenant is the latest.
        for ((msp, tenant, _), count) in lock(&self.counts).iter() {
            if msp == msp_id {
                latest.insert(tenant.clone(), count.clone());
            }
        }
        Ok(latest)
    }
    async fn billing_settings(&self, msp_id: &MspId) -> Result<BillingSettings, StoreError> {
        Ok(lock(&self.settings).get(msp_id).copied().unwrap_or_default())
    }
    async fn put_billing_settings(&self, msp_id: &MspId, settings: &BillingSettings) -> Result<(), StoreError> {
        lock(&self.settings).insert(msp_id.clone(), *settings);
        Ok(())
    }
    async fn counts_requested_on(&self, msp_id: &MspId) -> Result<Option<NaiveDate>, StoreError> {
        Ok(lock(&self.requested).get(msp_id).copied())
    }
    async fn set_counts_requested_on(&self, msp_id: &MspId, day: NaiveDate) -> Result<(), StoreError> {
        lock(&self.requested).insert(msp_id.clone(), day);
        Ok(())
    }
}

/// [`MailboxDirectory`] in memory: users per tenant, and failures to answer with, one per call.
#[derive(Debug, Default)]
pub struct MemoryMailboxDirectory {
    users: Mutex<HashMap<TenantId, Vec<DirectoryUser>>>,
    failures: Mutex<Vec<SourceError>>,
    reads: Mutex<usize>,
}

impl MemoryMailboxDirectory {
    /// What `tenant` lists from now on.
    pub fn set(&self, tenant: &TenantId, users: Vec<DirectoryUser>) {
        lock(&self.users).insert(tenant.clone(), users);
    }

    /// The next listing fails with `error`.
    pub fn fail_next(&self, error: SourceError) {
        lock(&self.failures).push(error);
    }

    /// Listings so far.
    #[must_use]
    pub fn reads(&self) -> usize {
        *lock(&self.reads)
    }
}

#[async_trait]
impl MailboxDirectory for MemoryMailboxDirectory {
    async fn users(&self, tenant_id: &TenantId, _credentials: &M365AppCredentials) -> Result<Vec<DirectoryUser>, SourceError> {
        *lock(&self.reads) += 1;
        if let Some(error) = lock(&self.failures).pop() {
            return Err(error);
        }
        Ok(lock(&self.users).get(tenant_id).cloned().unwrap_or_default())
    }
}
