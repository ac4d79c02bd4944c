//! The port of direct onboarding ([`CustomerDirectory`]): a partner technician's delegated
//! session in a customer tenant, redeemed from the stored refresh token, and the directory
//! calls that grant the MSP app its app roles there (`crate::onboarding::direct`).

use crate::error::SourceError;
use crate::ids::TenantId;
use crate::onboarding::direct::{RoleGrant, ServicePrincipal};
use crate::secret::SecretString;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;

/// A delegated session in one customer tenant: the access token, and the refresh token that
/// replaced the one redeemed (refresh tokens rotate on every use).
pub struct DelegatedSession {
    pub tenant_id: TenantId,
    pub access_token: SecretString,
    pub refresh_token: SecretString,
}

impl std::fmt::Debug for DelegatedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegatedSession").field("tenant_id", &self.tenant_id).finish_non_exhaustive()
    }
}

/// A customer tenant's directory, as a partner technician reaches it.
#[async_trait]
pub trait CustomerDirectory: Send + Sync {
    /// Redeems `refresh_token` (issued to `app`) for a session in `tenant_id`. Refused
    /// ([`SourceError::AccessRefused`] / [`SourceError::Rejected`], with the AADSTS code) when
    /// the technician has no active relationship with the tenant or the token expired.
    async fn redeem(
        &self,
        tenant_id: &TenantId,
        app: &M365AppCredentials,
        refresh_token: &SecretString,
    ) -> Result<DelegatedSession, SourceError>;
    /// The tenant's service principal of `app_id`, if there is one.
    async fn service_principal(&self, session: &DelegatedSession, app_id: &str) -> Result<Option<ServicePrincipal>, SourceError>;
    /// Creates the tenant's service principal of `app_id`; `None` when one exists already.
    async fn create_service_principal(&self, session: &DelegatedSession, app_id: &str) -> Result<Option<ServicePrincipal>, SourceError>;
    /// The app roles granted to the service principal `principal_id`.
    async fn grants(&self, session: &DelegatedSession, principal_id: &str) -> Result<Vec<RoleGrant>, SourceError>;
    /// Grants the app role `app_role_id` of the resource `resource_id` to `principal_id`
    /// (a grant that exists already is success). Refused with `Authorization_RequestDenied`
    /// when the technician's roles do not allow it.
    async fn grant(&self, session: &DelegatedSession, principal_id: &str, resource_id: &str, app_role_id: &str) -> Result<(), SourceError>;
}
