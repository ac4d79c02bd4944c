//! [`OnboardingStore`] in memory, for unit tests and the config API's route tests.

use super::lock;
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::onboarding::{AccessTest, BulkJob, ConsentLink, MspApp};
use crate::ports::OnboardingStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// [`OnboardingStore`] in memory (used nonces are kept for the store's life).
#[derive(Debug, Default)]
pub struct MemoryOnboardingStore {
    apps: Mutex<BTreeMap<MspId, MspApp>>,
    links: Mutex<BTreeMap<(MspId, String), ConsentLink>>,
    nonces: Mutex<BTreeSet<(MspId, String)>>,
    tests: Mutex<BTreeMap<(MspId, TenantId), AccessTest>>,
    bulk: Mutex<BTreeMap<(MspId, String), BulkJob>>,
}

#[async_trait]
impl OnboardingStore for MemoryOnboardingStore {
    async fn put_app(&self, msp_id: &MspId, app: &MspApp) -> Result<(), StoreError> {
        lock(&self.apps).insert(msp_id.clone(), app.clone());
        Ok(())
    }
    async fn app(&self, msp_id: &MspId) -> Result<Option<MspApp>, StoreError> {
        Ok(lock(&self.apps).get(msp_id).cloned())
    }
    async fn put_link(&self, msp_id: &MspId, link: &ConsentLink) -> Result<(), StoreError> {
        lock(&self.links).insert((msp_id.clone(), link.id.clone()), link.clone());
        Ok(())
    }
    async fn link(&self, msp_id: &MspId, link_id: &str) -> Result<Option<ConsentLink>, StoreError> {
        Ok(lock(&self.links).get(&(msp_id.clone(), link_id.to_owned())).cloned())
    }
    async fn links(&self, msp_id: &MspId) -> Result<Vec<ConsentLink>, StoreError> {
        Ok(lock(&self.links).iter().filter(|((msp, _), _)| msp == msp_id).map(|(_, link)| link.clone()).collect())
    }
    async fn claim_nonce(&self, msp_id: &MspId, nonce: &str, _expires_at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(lock(&self.nonces).insert((msp_id.clone(), nonce.to_owned())))
    }
    async fn put_access_test(&self, msp_id: &MspId, test: &AccessTest) -> Result<(), StoreError> {
        lock(&self.tests).insert((msp_id.clone(), test.tenant_id.clone()), test.clone());
        Ok(())
    }
    async fn access_test(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<AccessTest>, StoreError> {
        Ok(lock(&self.tests).get(&(msp_id.clone(), tenant_id.clone())).cloned())
    }
    async fn put_bulk(&self, msp_id: &MspId, job: &BulkJob) -> Result<(), StoreError> {
        lock(&self.bulk).insert((msp_id.clone(), job.id.clone()), job.clone());
        Ok(())
    }
    async fn bulk(&self, msp_id: &MspId, job_id: &str) -> Result<Option<BulkJob>, StoreError> {
        Ok(lock(&self.bulk).get(&(msp_id.clone(), job_id.to_owned())).cloned())
    }
}

/// [`crate::ports::TenantAccessProbe`] in memory: every tenant issues its own tokens unless a
/// test makes it refuse (an AADSTS code) or issue as another tenant.
#[derive(Debug, Default)]
pub struct MemoryAccessProbe {
    issuers: Mutex<BTreeMap<TenantId, String>>,
    refusals: Mutex<BTreeMap<TenantId, String>>,
}

impl MemoryAccessProbe {
    /// Tokens asked of `tenant_id` say they were issued by `issuer`.
    pub fn issue_as(&self, tenant_id: &TenantId, issuer: &str) {
        lock(&self.issuers).insert(tenant_id.clone(), issuer.to_owned());
    }

    /// Token requests for `tenant_id` are refused with `code` (e.g. `AADSTS700016`).
    pub fn refuse(&self, tenant_id: &TenantId, code: &str) {
        lock(&self.refusals).insert(tenant_id.clone(), code.to_owned());
    }
}

#[async_trait]
impl crate::ports::TenantAccessProbe for MemoryAccessProbe {
    async fn token_tenant(
        &self,
        tenant_id: &TenantId,
        _credentials: &crate::tenant::M365AppCredentials,
    ) -> Result<String, crate::error::SourceError> {
        if let Some(code) = lock(&self.refusals).get(tenant_id) {
            return Err(crate::error::SourceError::AccessRefused { code: code.clone(), message: "refused by the memory probe".into() });
        }
        Ok(lock(&self.issuers).get(tenant_id).cloned().unwrap_or_else(|| tenant_id.to_string()))
    }
}
