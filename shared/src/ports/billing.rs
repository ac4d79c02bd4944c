//! The ports of protected-mailbox billing: where each tenant's daily counts are kept
//! ([`MailboxCountStore`]) and the customer tenant's directory they are counted from
//! ([`MailboxDirectory`]); the billing mappings and the sync's records ([`BillingStore`]), and a
//! PSA's agreements or contracts as a place to set a quantity ([`BillingTarget`], one adapter
//! per PSA, built per destination by a [`BillingTargets`]).

use crate::billing::sync::{BillingLine, BillingMapping, BillingPeriod, SyncRecord};
use crate::billing::{BillingSettings, DailyCount, DirectoryUser};
use crate::destination::Destination;
use crate::error::{SinkError, SourceError, StoreError};
use crate::ids::DestinationId;
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

/// Billing mappings per (destination, tenant) and each mapping's one sync record. Every key
/// starts with the MSP id.
#[async_trait]
pub trait BillingStore: Send + Sync {
    async fn put_mapping(&self, msp_id: &MspId, mapping: &BillingMapping) -> Result<(), StoreError>;
    /// Deletes a mapping and its record; whether there was one.
    async fn delete_mapping(&self, msp_id: &MspId, destination_id: &DestinationId, tenant_id: &TenantId) -> Result<bool, StoreError>;
    /// Every mapping of the MSP, by destination then tenant.
    async fn mappings(&self, msp_id: &MspId) -> Result<Vec<BillingMapping>, StoreError>;
    async fn sync_record(
        &self,
        msp_id: &MspId,
        destination_id: &DestinationId,
        tenant_id: &TenantId,
    ) -> Result<Option<SyncRecord>, StoreError>;
    /// Replaces the mapping's record (its intent, then its outcome).
    async fn put_sync_record(&self, msp_id: &MspId, record: &SyncRecord) -> Result<(), StoreError>;
}

/// A PSA's agreements or contracts, as places to set a product's quantity.
#[async_trait]
pub trait BillingTarget: Send + Sync {
    /// Whether Vigil writes quantities in this PSA (`false`: report-only, its write path is
    /// unconfirmed).
    fn writes(&self) -> bool;
    /// Refuses a line whose agreement or product does not exist or is cancelled, naming it.
    async fn check_line(&self, line: &BillingLine) -> Result<(), SinkError>;
    /// The quantity on the line for the period (`None`: the product is not on it yet).
    async fn quantity(&self, line: &BillingLine, period: &BillingPeriod) -> Result<Option<u32>, SinkError>;
    /// Makes the line's quantity `target` for the period, `found` being what
    /// [`Self::quantity`] just read (a PSA that takes changes as deltas needs it).
    async fn set_quantity(&self, line: &BillingLine, period: &BillingPeriod, found: Option<u32>, target: u32) -> Result<(), SinkError>;
}

/// Builds the billing side of a PSA destination.
#[async_trait]
pub trait BillingTargets: Send + Sync {
    async fn billing_for(&self, destination: &Destination) -> Result<std::sync::Arc<dyn BillingTarget>, crate::ports::SinkSetupError>;
}
