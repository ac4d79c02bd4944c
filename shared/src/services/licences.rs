//! A tenant's licences behind the config API: the snapshot Vigil read last (products with their
//! units and Defender plans, subscriptions with their status and next lifecycle date), since
//! when each subscription has its status, the status changes seen, the findings raised, and how
//! the last read went ("needs re-consent" included). Needs config:read.

use super::admin::AdminError;
use crate::access::{Access, Permission};
use crate::ids::TenantId;
use crate::licences::TenantLicences;
use crate::ports::{ConfigStore, LicenceStore};
use std::sync::Arc;

/// The licence use cases of the config API.
pub struct LicenceService {
    pub config: Arc<dyn ConfigStore>,
    pub store: Arc<dyn LicenceStore>,
}

impl LicenceService {
    /// The caller's tenant's licence state (empty, `read_at` null, before the first read).
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound when the MSP has no such tenant.
    pub async fn tenant_licences(&self, access: &Access, tenant_id: &TenantId) -> Result<TenantLicences, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        if self.config.get_tenant(msp_id, tenant_id).await?.is_none() {
            return Err(AdminError::NotFound(format!("tenant {tenant_id}")));
        }
        Ok(self.store.licences(msp_id, tenant_id).await?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MspId;
    use crate::memory::{MemoryConfigStore, MemoryLicenceStore};
    use chrono::Utc;

    #[tokio::test]
    async fn a_tenant_shows_its_last_read_and_another_msps_tenant_is_not_found() {
        let config = Arc::new(MemoryConfigStore::default());
        let store = Arc::new(MemoryLicenceStore::default());
        let (acme, other) = (MspId::parse("acme").unwrap(), MspId::parse("other").unwrap());
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        config.create_tenant(&crate::contract::sample_tenant(&acme, &tenant)).await.unwrap();
        let service = LicenceService { config, store: store.clone() };
        let never = service.tenant_licences(&Access::operator(&acme), &tenant).await.unwrap();
        assert_eq!(never.read_at, None, "not read yet");
        let mut state = TenantLicences::default();
        state.take_snapshot(crate::licences::healthy_snapshot(Utc::now()), Utc::now());
        store.put_licences(&acme, &tenant, &state).await.unwrap();
        assert_eq!(service.tenant_licences(&Access::operator(&acme), &tenant).await.unwrap(), state);
        let refused = service.tenant_licences(&Access::operator(&other), &tenant).await.unwrap_err();
        assert!(matches!(refused, AdminError::NotFound(_)), "{refused}");
    }
}
