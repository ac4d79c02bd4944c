//! The ports of customer tenants' licences: where each tenant's licence state is kept
//! ([`LicenceStore`]) and Microsoft Graph's licence listings of a tenant ([`LicenceSource`]).

use crate::error::{SourceError, StoreError};
use crate::ids::{MspId, TenantId};
use crate::licences::{LicenceSnapshot, TenantLicences};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Each customer tenant's licence state (snapshot, changes, findings raised, last read). Every
/// key starts with the MSP id.
#[async_trait]
pub trait LicenceStore: Send + Sync {
    /// The tenant's licence state (`None`: never read).
    async fn licences(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<TenantLicences>, StoreError>;
    /// Replaces the tenant's licence state.
    async fn put_licences(&self, msp_id: &MspId, tenant_id: &TenantId, licences: &TenantLicences) -> Result<(), StoreError>;
    /// When each of the MSP's tenants was last read (tenants never read are left out), without
    /// reading their whole state.
    async fn licence_reads(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, DateTime<Utc>>, StoreError>;
}

/// A customer tenant's licences on Microsoft Graph (`Organization.Read.All`).
#[async_trait]
pub trait LicenceSource: Send + Sync {
    /// The tenant's products (`subscribedSkus`) and subscriptions (`directory/subscriptions`).
    async fn licences(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) -> Result<LicenceSnapshot, SourceError>;
}
