//! Direct onboarding of a customer with the MSP's delegated credential (a partner
//! technician's refresh token for the MSP app, write-only): the token redeemed for the customer
//! tenant, the rotated one stored, the MSP app's service principal made if missing and each app
//! role Vigil needs granted if not granted yet; then the same as after a consent (the tenant
//! watched with the MSP app, tested, its subscriptions started and first poll queued).
//!
//! Exactly once: every step reads before it writes (a service principal or grant that exists
//! is not made again), so a retry after a crash anywhere finishes the rest; tenant creation,
//! the access test and subscription starts are idempotent. Refresh tokens rotate: the new one
//! is stored after each redemption, and when that write fails the stored one still works —
//! Microsoft keeps a redeemed refresh token valid until its own expiry — so the next attempt
//! redeems it again.

use super::OnboardingService;
use crate::access::{Access, Permission, Role};
use crate::ids::{MspId, TenantId};
use crate::onboarding::direct::{DirectStep, GRAPH_APP_ID, MANAGEMENT_APP_ID, REFRESH_TOKEN_CHARS, ServicePrincipal, missing_grants};
use crate::onboarding::{AccessTest, Capability};
use crate::ports::{DelegatedSession, SecretName};
use crate::secret::SecretString;
use crate::services::admin::AdminError;
use crate::tenant::M365AppCredentials;

/// What a direct onboarding of one customer did.
#[derive(Debug, Clone)]
pub struct DirectAttempt {
    /// Each step and its result, in order; the last failed one says why it stopped.
    pub steps: Vec<DirectStep>,
    /// The access test and poll jobs queued, when the tenant is now watched.
    pub onboarded: Option<(AccessTest, usize)>,
}

impl DirectAttempt {
    fn stopped(steps: Vec<DirectStep>) -> Self {
        Self { steps, onboarded: None }
    }
}

impl OnboardingService {
    /// Stores (or replaces) the MSP's delegated credential: a partner technician's refresh
    /// token for the MSP app. Write-only: it is never returned.
    ///
    /// # Errors
    /// Forbidden for anyone but an owner; Invalid for a blank or too long token; Refused before
    /// the MSP app is registered (the token is the app's).
    pub async fn store_delegated_credential(&self, access: &Access, refresh_token: SecretString) -> Result<(), AdminError> {
        let msp_id = owner(access)?;
        if refresh_token.is_blank() {
            return Err(AdminError::Invalid("refresh_token is required".into()));
        }
        crate::limits::chars("refresh_token", refresh_token.expose(), REFRESH_TOKEN_CHARS)?;
        if self.store.app(msp_id).await?.is_none() {
            return Err(AdminError::Refused("register the MSP app first (PUT /v1/onboarding/app): the refresh token is the app's".into()));
        }
        self.secrets.put_secret(&SecretName::delegated_credential(msp_id), &refresh_token).await?;
        self.audit.record(access, "onboarding.delegated-credential-stored", "the MSP app's delegated credential").await
    }

    /// Forgets the MSP's delegated credential (nothing to forget is fine).
    ///
    /// # Errors
    /// Forbidden for anyone but an owner.
    pub async fn forget_delegated_credential(&self, access: &Access) -> Result<(), AdminError> {
        let msp_id = owner(access)?;
        self.secrets.delete_secret(&SecretName::delegated_credential(msp_id)).await?;
        self.audit.record(access, "onboarding.delegated-credential-deleted", "the MSP app's delegated credential").await
    }

    /// Whether the MSP holds a delegated credential.
    pub(super) async fn has_delegated_credential(&self, msp_id: &MspId) -> Result<bool, AdminError> {
        Ok(self.secrets.get_secret(&SecretName::delegated_credential(msp_id)).await?.is_some())
    }

    /// Onboards `tenant_id` with the delegated credential. A step Microsoft refuses (no active
    /// relationship, roles that cannot grant app roles, …) stops the attempt with its error;
    /// the caller then gives the customer a consent link.
    ///
    /// # Errors
    /// Refused without a delegated credential or MSP app; store, secret or queue failures
    /// after the tenant's grants are complete.
    pub(super) async fn onboard_directly(
        &self,
        access: &Access,
        msp_id: &MspId,
        tenant_id: &TenantId,
        name: &str,
    ) -> Result<DirectAttempt, AdminError> {
        let name_of_secret = SecretName::delegated_credential(msp_id);
        let refresh_token = self
            .secrets
            .get_secret(&name_of_secret)
            .await?
            .ok_or_else(|| AdminError::Refused("no delegated credential (PUT /v1/msp/delegated-credential)".into()))?;
        let app = self.msp_app_credentials(msp_id).await?;
        let directory = &self.apis.directory;
        let mut steps = Vec::new();
        let session = match directory.redeem(tenant_id, &app, &refresh_token).await {
            Ok(session) => session,
            Err(error) => {
                steps.push(DirectStep::failed("token", &error));
                return Ok(DirectAttempt::stopped(steps));
            }
        };
        steps.push(DirectStep::done("token"));
        // The stored token stays valid when this write fails: the next attempt redeems it.
        match self.secrets.put_secret(&name_of_secret, &session.refresh_token).await {
            Ok(()) => steps.push(DirectStep::done("store-refresh-token")),
            Err(error) => steps.push(DirectStep::failed("store-refresh-token", &error)),
        }
        let Some(principal) = self.ensure_principal(&session, &app.client_id, "service-principal", &mut steps).await else {
            return Ok(DirectAttempt::stopped(steps));
        };
        let mut resources = Vec::new();
        for (app_id, step) in [(GRAPH_APP_ID, "resource Microsoft Graph"), (MANAGEMENT_APP_ID, "resource Office 365 Management APIs")] {
            let Some(resource) = self.ensure_principal(&session, app_id, step, &mut steps).await else {
                return Ok(DirectAttempt::stopped(steps));
            };
            resources.push(resource);
        }
        let granted = match directory.grants(&session, &principal.id).await {
            Ok(granted) => granted,
            Err(error) => {
                steps.push(DirectStep::failed("read grants", &error));
                return Ok(DirectAttempt::stopped(steps));
            }
        };
        let missing = match missing_grants(&resources, &granted) {
            Ok(missing) => missing,
            Err(permission) => {
                steps.push(DirectStep::failed(format!("grant {permission}"), &"the tenant's resource defines no such app role"));
                return Ok(DirectAttempt::stopped(steps));
            }
        };
        for (_, permission) in crate::onboarding::direct::REQUIRED_APP_ROLES {
            if !missing.iter().any(|(p, _, _)| *p == permission) {
                steps.push(DirectStep::already(format!("grant {permission}")));
            }
        }
        for (permission, resource_id, role_id) in missing {
            match directory.grant(&session, &principal.id, resource_id, role_id).await {
                Ok(()) => steps.push(DirectStep::done(format!("grant {permission}"))),
                Err(error) => {
                    steps.push(DirectStep::failed(format!("grant {permission}"), &error));
                    return Ok(DirectAttempt::stopped(steps));
                }
            }
        }
        let (test, poll_jobs) = self.finish_direct(access, msp_id, tenant_id, name, &app).await?;
        steps.push(match test.checks.iter().find(|c| c.error.is_some()) {
            None => DirectStep::done("access-test"),
            Some(check) => DirectStep::failed("access-test", &check.error.clone().unwrap_or_default()),
        });
        Ok(DirectAttempt { steps, onboarded: Some((test, poll_jobs)) })
    }

    /// The tenant's service principal of `app_id`, made when missing (one made meanwhile by
    /// someone else is looked up again). `None` after a failed step.
    async fn ensure_principal(
        &self,
        session: &DelegatedSession,
        app_id: &str,
        step: &str,
        steps: &mut Vec<DirectStep>,
    ) -> Option<ServicePrincipal> {
        let directory = &self.apis.directory;
        let found = match directory.service_principal(session, app_id).await {
            Ok(found) => found,
            Err(error) => {
                steps.push(DirectStep::failed(step, &error));
                return None;
            }
        };
        if let Some(principal) = found {
            steps.push(DirectStep::already(step));
            return Some(principal);
        }
        // "Already exists" (someone made it since the lookup) is success: look it up again.
        let (created, made_now) = match directory.create_service_principal(session, app_id).await {
            Ok(Some(principal)) => (Ok(Some(principal)), true),
            Ok(None) => (directory.service_principal(session, app_id).await, false),
            Err(error) => (Err(error), false),
        };
        match created {
            Ok(Some(principal)) => {
                steps.push(if made_now { DirectStep::done(step) } else { DirectStep::already(step) });
                Some(principal)
            }
            Ok(None) => {
                steps.push(DirectStep::failed(step, &format!("the service principal of {app_id} exists but cannot be read")));
                None
            }
            Err(error) => {
                steps.push(DirectStep::failed(step, &error));
                None
            }
        }
    }

    /// After the grants: the tenant tested with the MSP app and, as after a consent, watched
    /// and polled.
    async fn finish_direct(
        &self,
        access: &Access,
        msp_id: &MspId,
        tenant_id: &TenantId,
        name: &str,
        app: &M365AppCredentials,
    ) -> Result<(AccessTest, usize), AdminError> {
        let test = self.test_tenant(msp_id, tenant_id, app).await?.result;
        let audit = ("onboarding.onboarded-directly", format!("tenant {tenant_id}"));
        let poll_jobs = self.onboarded(access, msp_id, name, app, &test, audit).await?;
        if !test.passed(Capability::Token) {
            tracing::warn!(message = "A directly onboarded tenant issues no token yet (grants may take minutes to apply).", %tenant_id);
        }
        Ok((test, poll_jobs))
    }
}

/// The caller's MSP, if the caller is an owner allowed to write credentials.
fn owner(access: &Access) -> Result<&MspId, AdminError> {
    let msp_id = access.permit(Permission::CredentialsWrite)?;
    if access.role() != Role::Owner {
        return Err(AdminError::Forbidden(
            "the delegated credential is an owner's to store or delete: the credentials:write permission of another role is not enough"
                .into(),
        ));
    }
    Ok(msp_id)
}
