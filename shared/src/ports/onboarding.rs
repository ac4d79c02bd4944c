//! The ports of onboarding: where the MSP app's public part, consent links, single-use state
//! nonces, access tests and bulk onboardings are kept ([`OnboardingStore`]), and the token probe
//! that tells which tenant issued a token ([`TenantAccessProbe`]).

use crate::error::{SourceError, StoreError};
use crate::ids::{MspId, TenantId};
use crate::onboarding::{AccessTest, BulkJob, ConsentLink, MspApp};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Onboarding records of an MSP. Every key starts with the MSP id.
#[async_trait]
pub trait OnboardingStore: Send + Sync {
    /// Creates or replaces the MSP app's public part.
    async fn put_app(&self, msp_id: &MspId, app: &MspApp) -> Result<(), StoreError>;
    async fn app(&self, msp_id: &MspId) -> Result<Option<MspApp>, StoreError>;
    /// Creates or replaces a consent link (kept until [`crate::onboarding::LINK_RECORD_DAYS`]
    /// after it expires).
    async fn put_link(&self, msp_id: &MspId, link: &ConsentLink) -> Result<(), StoreError>;
    async fn link(&self, msp_id: &MspId, link_id: &str) -> Result<Option<ConsentLink>, StoreError>;
    /// Every kept link of the MSP, by id.
    async fn links(&self, msp_id: &MspId) -> Result<Vec<ConsentLink>, StoreError>;
    /// Uses a state's nonce once: `true` the first time, `false` ever after (until it is purged,
    /// after `expires_at`, when the state is refused as expired anyway).
    async fn claim_nonce(&self, msp_id: &MspId, nonce: &str, expires_at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Replaces the tenant's last access test.
    async fn put_access_test(&self, msp_id: &MspId, test: &AccessTest) -> Result<(), StoreError>;
    async fn access_test(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<AccessTest>, StoreError>;
    /// Creates or replaces a bulk onboarding.
    async fn put_bulk(&self, msp_id: &MspId, job: &BulkJob) -> Result<(), StoreError>;
    async fn bulk(&self, msp_id: &MspId, job_id: &str) -> Result<Option<BulkJob>, StoreError>;
}

/// Obtains an app-only token from a customer tenant and reads which tenant issued it (the
/// token's `tid` claim; the token is not validated, only read).
#[async_trait]
pub trait TenantAccessProbe: Send + Sync {
    /// The `tid` of a fresh Microsoft Graph token of `tenant_id` for `credentials`.
    async fn token_tenant(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) -> Result<String, SourceError>;
}
