//! [`crate::ports::CustomerDirectory`] in memory: customer tenants a technician may enter (and
//! whether their roles may grant app roles), refresh tokens that rotate but stay valid (as
//! Microsoft keeps a redeemed refresh token valid until its own expiry), each tenant's service
//! principals and grants, a count of every call, and failures on demand.

use super::lock;
use crate::error::SourceError;
use crate::ids::TenantId;
use crate::onboarding::direct::{GRAPH_APP_ID, MANAGEMENT_APP_ID, REQUIRED_APP_ROLES, RoleGrant, ServicePrincipal};
use crate::ports::{CustomerDirectory, DelegatedSession};
use crate::secret::SecretString;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Tenant {
    can_grant: bool,
    principals: Vec<ServicePrincipal>,
    grants: BTreeMap<String, BTreeSet<RoleGrant>>,
}

#[derive(Debug, Default)]
struct State {
    tenants: BTreeMap<TenantId, Tenant>,
    /// Every refresh token issued and not revoked.
    refresh_tokens: BTreeSet<String>,
    issued: u64,
    /// Calls by name (`redeem`, `service_principal`, `create_service_principal`, `grants`,
    /// `grant`).
    calls: BTreeMap<&'static str, u32>,
    /// Grants that succeed before every later one fails as unavailable (a crash between grants).
    grants_before_failure: Option<u32>,
    /// Service principal lookups that find nothing although the principal exists (it is made
    /// by someone else between Vigil's lookup and its create).
    lookups_missed: u32,
}

/// [`CustomerDirectory`] in memory.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    state: Mutex<State>,
}

impl MemoryDirectory {
    /// A technician's first refresh token (what the MSP stores).
    pub fn issue_refresh_token(&self) -> SecretString {
        let mut state = lock(&self.state);
        state.issued += 1;
        let token = format!("rt-{}", state.issued);
        state.refresh_tokens.insert(token.clone());
        SecretString::new(token)
    }

    /// The technician has an active relationship with `tenant_id`; `can_grant`: its roles
    /// include Privileged Role Administrator or Global Administrator. The tenant has the two
    /// resource service principals with every role Vigil needs.
    pub fn add_customer(&self, tenant_id: &TenantId, can_grant: bool) {
        let resource = |id: &str, app_id: &str| ServicePrincipal {
            id: id.to_owned(),
            app_id: app_id.to_owned(),
            app_roles: REQUIRED_APP_ROLES
                .iter()
                .filter(|(app, _)| *app == app_id)
                .map(|(_, value)| (format!("{id}-{value}"), (*value).to_owned()))
                .collect(),
        };
        let tenant = Tenant {
            can_grant,
            principals: vec![resource("graph-sp", GRAPH_APP_ID), resource("management-sp", MANAGEMENT_APP_ID)],
            grants: BTreeMap::new(),
        };
        lock(&self.state).tenants.insert(tenant_id.clone(), tenant);
    }

    /// The permissions granted to `app_id`'s service principal in `tenant_id`.
    #[must_use]
    pub fn granted(&self, tenant_id: &TenantId, app_id: &str) -> Vec<String> {
        let state = lock(&self.state);
        let Some(tenant) = state.tenants.get(tenant_id) else { return Vec::new() };
        let Some(principal) = tenant.principals.iter().find(|p| p.app_id == app_id) else { return Vec::new() };
        let mut granted: Vec<String> = tenant
            .grants
            .get(&principal.id)
            .into_iter()
            .flatten()
            .filter_map(|g| {
                tenant
                    .principals
                    .iter()
                    .find(|p| p.id == g.resource_id)
                    .and_then(|r| r.app_roles.iter().find(|(id, _)| *id == g.app_role_id).map(|(_, value)| value.clone()))
            })
            .collect();
        granted.sort();
        granted
    }

    /// How many times `call` was made.
    #[must_use]
    pub fn calls(&self, call: &str) -> u32 {
        lock(&self.state).calls.get(call).copied().unwrap_or(0)
    }

    /// After `grants` more successful grants, every grant fails as unavailable (`None`: none
    /// fail).
    pub fn fail_grants_after(&self, grants: Option<u32>) {
        lock(&self.state).grants_before_failure = grants;
    }

    /// The next `lookups` service principal lookups find nothing, as if the principal were
    /// made by someone else right after them.
    pub fn miss_lookups(&self, lookups: u32) {
        lock(&self.state).lookups_missed = lookups;
    }

    /// Whether `token` is a refresh token Microsoft would still take.
    #[must_use]
    pub fn accepts(&self, token: &SecretString) -> bool {
        lock(&self.state).refresh_tokens.contains(token.expose())
    }

    fn call(&self, name: &'static str) {
        *lock(&self.state).calls.entry(name).or_default() += 1;
    }
}

fn refused(code: &str, message: &str) -> SourceError {
    SourceError::AccessRefused { code: code.to_owned(), message: message.to_owned() }
}

#[async_trait]
impl CustomerDirectory for MemoryDirectory {
    async fn redeem(
        &self,
        tenant_id: &TenantId,
        _app: &M365AppCredentials,
        refresh_token: &SecretString,
    ) -> Result<DelegatedSession, SourceError> {
        self.call("redeem");
        let mut state = lock(&self.state);
        if !state.refresh_tokens.contains(refresh_token.expose()) {
            return Err(refused("AADSTS700082", "The refresh token has expired or been revoked."));
        }
        if !state.tenants.contains_key(tenant_id) {
            return Err(refused("AADSTS50020", "User account does not exist in the tenant and cannot access the application."));
        }
        state.issued += 1;
        let rotated = format!("rt-{}", state.issued);
        state.refresh_tokens.insert(rotated.clone());
        Ok(DelegatedSession {
            tenant_id: tenant_id.clone(),
            access_token: SecretString::new(format!("at-{tenant_id}")),
            refresh_token: SecretString::new(rotated),
        })
    }

    async fn service_principal(&self, session: &DelegatedSession, app_id: &str) -> Result<Option<ServicePrincipal>, SourceError> {
        self.call("service_principal");
        let mut state = lock(&self.state);
        if state.lookups_missed > 0 {
            state.lookups_missed -= 1;
            return Ok(None);
        }
        Ok(state.tenants.get(&session.tenant_id).and_then(|t| t.principals.iter().find(|p| p.app_id == app_id).cloned()))
    }

    async fn create_service_principal(&self, session: &DelegatedSession, app_id: &str) -> Result<Option<ServicePrincipal>, SourceError> {
        self.call("create_service_principal");
        let mut state = lock(&self.state);
        let tenant = state.tenants.get_mut(&session.tenant_id).ok_or_else(|| refused("InvalidAuthenticationToken", "no such tenant"))?;
        if tenant.principals.iter().any(|p| p.app_id == app_id) {
            return Ok(None);
        }
        let principal =
            ServicePrincipal { id: format!("sp-{}", tenant.principals.len()), app_id: app_id.to_owned(), app_roles: Vec::new() };
        tenant.principals.push(principal.clone());
        Ok(Some(principal))
    }

    async fn grants(&self, session: &DelegatedSession, principal_id: &str) -> Result<Vec<RoleGrant>, SourceError> {
        self.call("grants");
        let state = lock(&self.state);
        Ok(state.tenants.get(&session.tenant_id).and_then(|t| t.grants.get(principal_id)).into_iter().flatten().cloned().collect())
    }

    async fn grant(&self, session: &DelegatedSession, principal_id: &str, resource_id: &str, app_role_id: &str) -> Result<(), SourceError> {
        self.call("grant");
        let mut state = lock(&self.state);
        match &mut state.grants_before_failure {
            Some(0) => return Err(SourceError::Unavailable("injected: the directory went away between grants".into())),
            Some(left) => *left -= 1,
            None => {}
        }
        let tenant = state.tenants.get_mut(&session.tenant_id).ok_or_else(|| refused("InvalidAuthenticationToken", "no such tenant"))?;
        if !tenant.can_grant {
            return Err(refused("Authorization_RequestDenied", "Insufficient privileges to complete the operation."));
        }
        let grant = RoleGrant { resource_id: resource_id.to_owned(), app_role_id: app_role_id.to_owned() };
        tenant.grants.entry(principal_id.to_owned()).or_default().insert(grant);
        Ok(())
    }
}
