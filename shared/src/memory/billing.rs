//! Protected-mailbox billing in memory: the daily series and settings ([`MemoryBillingStore`])
//! and a customer directory with failures on demand ([`MemoryMailboxDirectory`]).

use super::lock;
use crate::billing::{BillingSettings, DailyCount, DirectoryUser};
use crate::error::{SourceError, StoreError};
use crate::ids::{MspId, TenantId};
use crate::ports::{MailboxCountStore, MailboxDirectory};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// [`MailboxCountStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryBillingStore {
    counts: Mutex<BTreeMap<(MspId, TenantId, NaiveDate), DailyCount>>,
    settings: Mutex<HashMap<MspId, BillingSettings>>,
    requested: Mutex<HashMap<MspId, NaiveDate>>,
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
