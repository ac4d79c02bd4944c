//! The ports of protected-mailbox billing: where each tenant's daily counts are kept
//! ([`MailboxCountStore`]) and the customer tenant's directory they are counted from
//! ([`MailboxDirectory`]).

use crate::billing::{BillingSettings, DailyCount, DirectoryUser};
use crate::error::{SourceError, StoreError};
use crate::ids::{MspId, TenantId};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// The daily series of protected-mailbox counts per tenant, and the MSP's billing settings.
/// Every key starts with the MSP id.
#[async_trait]
pub trait MailboxCountStore: Send + Sync {
    /// Records a tenant's figure for its day (replacing one already recorded for that day) and
    /// deletes the tenant's days older than `settings` keeps, so the series stays bounded.
    async fn record_count(&self, msp_id: &MspId, count: &DailyCount, settings: &BillingSettings) -> Result<(), StoreError>;
    /// A tenant's figures from `from` to `to` (both included), oldest first.
    async fn counts(&self, msp_id: &MspId, tenant_id: &TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyCount>, StoreError>;
    /// Each tenant's latest figure (tenants never counted left out).
    async fn latest_counts(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, DailyCount>, StoreError>;
    /// The MSP's billing settings (defaults when never set).
    async fn billing_settings(&self, msp_id: &MspId) -> Result<BillingSettings, StoreError>;
    async fn put_billing_settings(&self, msp_id: &MspId, settings: &BillingSettings) -> Result<(), StoreError>;
    /// The last day the tick asked for the MSP's counts (`None`: never).
    async fn counts_requested_on(&self, msp_id: &MspId) -> Result<Option<NaiveDate>, StoreError>;
    /// Notes that the tick asked for the MSP's counts of `day`.
    async fn set_counts_requested_on(&self, msp_id: &MspId, day: NaiveDate) -> Result<(), StoreError>;
}

/// A customer tenant's directory, listed for the count (`User.Read.All`).
#[async_trait]
pub trait MailboxDirectory: Send + Sync {
    /// Every user of the tenant with its account state, type and Exchange plans.
    async fn users(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) -> Result<Vec<DirectoryUser>, SourceError>;
}
