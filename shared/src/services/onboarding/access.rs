//! The access test: each capability Vigil needs in a customer tenant tried against Microsoft
//! with the tenant's credentials, in order (a token first; without one the rest are not tried),
//! each outcome with Microsoft's error text and the fix ([`crate::onboarding::access_test`]).
//! After a consent, a passing tenant's subscriptions start and its first poll jobs are queued.

use super::OnboardingService;
use crate::access::{Access, Permission};
use crate::ids::{AuditStream, ContentType, MspId, TenantId};
use crate::messages::PollJob;
use crate::onboarding::{AccessTest, Capability, CapabilityCheck};
use crate::ports::TenantChange;
use crate::services::admin::AdminError;
use crate::tenant::{M365AppCredentials, Tenant};
use chrono::Duration;
use tracing::{info, warn};

/// An access test and the tenant that issued its token (`None`: no token).
pub(super) struct TestRun {
    pub(super) result: AccessTest,
    pub(super) token_issuer: Option<String>,
}

impl OnboardingService {
    /// Tries every capability for `tenant_id` with `credentials`.
    pub(super) async fn test_tenant(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
    ) -> Result<TestRun, AdminError> {
        let now = self.clock.now();
        let skipped = || Capability::ALL[1..].iter().copied().map(CapabilityCheck::skipped);
        let issuer = match self.apis.probe.token_tenant(tenant_id, credentials).await {
            Ok(issuer) => issuer,
            Err(error) => {
                let checks = std::iter::once(CapabilityCheck::from_result(Capability::Token, Some(&error))).chain(skipped()).collect();
                return Ok(TestRun { result: AccessTest::new(tenant_id.clone(), now, checks), token_issuer: None });
            }
        };
        if !issuer.eq_ignore_ascii_case(tenant_id.as_str()) {
            let checks = std::iter::once(CapabilityCheck::wrong_tenant(tenant_id, &issuer)).chain(skipped()).collect();
            return Ok(TestRun { result: AccessTest::new(tenant_id.clone(), now, checks), token_issuer: Some(issuer) });
        }
        let since = now - Duration::minutes(5);
        let apis = &self.apis;
        let management = apis.subscriptions.start_subscription(tenant_id, credentials, ContentType::General, None).await;
        if management.is_ok() {
            self.webhook_replaced(msp_id, tenant_id).await?;
        }
        let alerts = apis.alerts.alerts_updated_since(tenant_id, credentials, since).await.map(drop);
        let licences = apis.licences.licences(tenant_id, credentials).await.map(drop);
        let sign_ins = apis.sign_ins.sign_ins(tenant_id, credentials, since).await.map(drop);
        let checks = vec![
            CapabilityCheck::pass(Capability::Token),
            CapabilityCheck::from_result(Capability::ManagementActivity, management.as_ref().err()),
            CapabilityCheck::from_result(Capability::SecurityAlerts, alerts.as_ref().err()),
            CapabilityCheck::from_result(Capability::Licences, licences.as_ref().err()),
            CapabilityCheck::from_result(Capability::SignIns, sign_ins.as_ref().err()),
        ];
        Ok(TestRun { result: AccessTest::new(tenant_id.clone(), now, checks), token_issuer: Some(issuer) })
    }

    /// A subscription start without a webhook replaces the one the tenant had: the next tick
    /// registers it again.
    async fn webhook_replaced(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<(), AdminError> {
        if let Some(tenant) = self.config.get_tenant(msp_id, tenant_id).await?
            && tenant.webhook_registered
            && let Some(auth_hash) = tenant.webhook_auth_hash
        {
            self.config.update_tenant(msp_id, tenant_id, &TenantChange::Webhook { auth_hash, registered: false }).await?;
        }
        Ok(())
    }

    /// Starts the subscriptions of a consented tenant's content streams and queues one poll
    /// job per stream the test says works (as the tick does). The number of jobs queued.
    pub(super) async fn start_polling(
        &self,
        tenant: &Tenant,
        credentials: &M365AppCredentials,
        test: &AccessTest,
    ) -> Result<usize, AdminError> {
        let streams = tenant.streams.clone().unwrap_or_else(|| self.default_streams.clone());
        let mut ready = Vec::new();
        for stream in streams {
            let works = match stream.content_type() {
                Some(content_type) => {
                    test.passed(Capability::ManagementActivity)
                        && (content_type == ContentType::General
                            || match self.apis.subscriptions.start_subscription(&tenant.tenant_id, credentials, content_type, None).await {
                                Ok(()) => true,
                                Err(error) => {
                                    // The poller starts a missing subscription itself on its listing.
                                    warn!(message = "Could not start a subscription; the first poll will.", tenant_id = %tenant.tenant_id, content_type = content_type.as_str(), %error);
                                    true
                                }
                            })
                }
                None => stream == AuditStream::GraphAlerts && test.passed(Capability::SecurityAlerts),
            };
            if works {
                ready.push(stream);
            }
        }
        let jobs: Vec<String> = ready
            .into_iter()
            .map(|stream| PollJob::Stream { msp_id: tenant.msp_id.clone(), tenant_id: tenant.tenant_id.clone(), stream })
            .map(|job| serde_json::to_string(&job).unwrap_or_default())
            .collect();
        if !jobs.is_empty() {
            self.jobs.send_all(&jobs).await?;
        }
        info!(message = "Consented tenant's first poll queued.", msp_id = %tenant.msp_id, tenant_id = %tenant.tenant_id, jobs = jobs.len());
        Ok(jobs.len())
    }

    /// Runs the access test of a tenant watched through the MSP app now, keeps it as the
    /// tenant's last, and returns it.
    ///
    /// # Errors
    /// Forbidden without config:write; NotFound for an unknown tenant; Refused for a tenant
    /// with its own credentials.
    pub async fn run_access_test(&self, access: &Access, tenant_id: &TenantId) -> Result<AccessTest, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let tenant = self.config.get_tenant(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))?;
        // The config API reads the MSP app's secret only; a tenant's own credentials stay
        // unreadable here (the poller's connection problems report on those).
        if !tenant.credentials_from_msp_app {
            return Err(AdminError::Refused(format!(
                "tenant {tenant_id} uses its own app credentials; the access test runs with the MSP app (send the tenant a consent link)"
            )));
        }
        let credentials = self.msp_app_credentials(msp_id).await?;
        let test = self.test_tenant(msp_id, tenant_id, &credentials).await?.result;
        self.store.put_access_test(msp_id, &test).await?;
        self.audit
            .record(access, "onboarding.access-tested", format!("tenant {tenant_id}: {}", if test.passed { "passed" } else { "failed" }))
            .await?;
        Ok(test)
    }

    /// The tenant's last access test.
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound when the tenant was never tested.
    pub async fn last_access_test(&self, access: &Access, tenant_id: &TenantId) -> Result<AccessTest, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        self.store.access_test(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("access test of tenant {tenant_id}")))
    }
}
