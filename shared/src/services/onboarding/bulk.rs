//! Discovery and bulk onboarding: the customers of the partner tenant's relationships as last
//! read, and for each one the MSP picks either a direct onboarding (a delegated credential and
//! a relationship whose roles can grant app roles) or a consent link. The job is kept after
//! every customer; a link's progress is read from the link and the tenant's access test, never
//! written by two consents at once.

use super::OnboardingService;
use crate::access::{Access, Permission};
use crate::ids::{MspId, TenantId};
use crate::onboarding::discovery::discover;
use crate::onboarding::{BULK_MAX, BulkItem, BulkJob, BulkMethod, DiscoveredCustomer, LinkStatus};
use crate::services::admin::AdminError;
use std::collections::BTreeSet;

impl OnboardingService {
    /// The partner tenant's customers with their relationships' roles and whether Vigil watches
    /// them (from the last read of the partner tenant; `POST /v1/admin-relationships/refresh`
    /// reads it again).
    ///
    /// # Errors
    /// Forbidden without config:read.
    pub async fn discover(&self, access: &Access) -> Result<Vec<DiscoveredCustomer>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let relationships = self.relationships.relationships(msp_id).await?;
        let tenants = self.config.list_tenants(msp_id).await?;
        Ok(discover(&relationships, &tenants))
    }

    /// Onboards several discovered customers: each directly where the delegated credential and
    /// its roles allow it, else with a consent link bound to its tenant (one audit entry for the
    /// whole job, naming it; each direct onboarding has its own).
    ///
    /// # Errors
    /// Forbidden without credentials:write; Invalid for none, more than [`BULK_MAX`], a repeated
    /// tenant or one not among the discovered customers; Refused before the app is registered.
    pub async fn bulk_onboard(&self, access: &Access, tenant_ids: &[TenantId], hours: Option<u32>) -> Result<BulkJob, AdminError> {
        let msp_id = access.permit(Permission::CredentialsWrite)?.clone();
        if tenant_ids.is_empty() || tenant_ids.len() > BULK_MAX {
            return Err(AdminError::Invalid(format!("tenant_ids: 1 to {BULK_MAX} tenants")));
        }
        if tenant_ids.iter().collect::<BTreeSet<_>>().len() != tenant_ids.len() {
            return Err(AdminError::Invalid("tenant_ids: a tenant is listed twice".into()));
        }
        let customers = self.discover(&Access::operator(&msp_id)).await?;
        let mut picked = Vec::new();
        for tenant_id in tenant_ids {
            let customer = customers
                .iter()
                .find(|c| &c.tenant_id == tenant_id)
                .ok_or_else(|| AdminError::Invalid(format!("tenant {tenant_id} is not a customer of the partner tenant")))?;
            picked.push(customer.clone());
        }
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| AdminError::Random(e.to_string()))?;
        let job_id = format!("bulk-{}", hex::encode(nonce));
        let delegated = self.has_delegated_credential(&msp_id).await?;
        let remaining = picked.iter().map(|c| c.tenant_id.clone()).collect();
        let mut job = BulkJob { id: job_id.clone(), created_at: self.clock.now(), items: Vec::new(), remaining };
        self.store.put_bulk(&msp_id, &job).await?;
        self.audit.record(access, "onboarding.bulk-started", format!("{} ({} customers)", job.id, picked.len())).await?;
        for customer in picked {
            let item = self.bulk_item(access, &msp_id, &customer, delegated, hours, &job_id).await?;
            job.items.push(item);
            job.remaining.retain(|t| t != &customer.tenant_id);
            // Progress is kept per customer: an interrupted job shows what was done.
            self.store.put_bulk(&msp_id, &job).await?;
        }
        Ok(job)
    }

    /// One customer of a bulk onboarding: onboarded directly when the MSP holds a delegated
    /// credential and the customer's relationship allows it, else (or when Microsoft refused a
    /// step) given a consent link.
    async fn bulk_item(
        &self,
        access: &Access,
        msp_id: &MspId,
        customer: &DiscoveredCustomer,
        delegated: bool,
        hours: Option<u32>,
        job_id: &str,
    ) -> Result<BulkItem, AdminError> {
        let mut steps = Vec::new();
        if delegated && customer.direct_possible {
            let attempt = self.onboard_directly(access, msp_id, &customer.tenant_id, &customer.name).await?;
            if let Some((test, _)) = attempt.onboarded {
                return Ok(BulkItem {
                    tenant_id: customer.tenant_id.clone(),
                    name: customer.name.clone(),
                    method: BulkMethod::Direct,
                    link_id: None,
                    url: None,
                    status: LinkStatus::Consented { tenant_id: customer.tenant_id.clone() },
                    steps: attempt.steps,
                    access_test_passed: Some(test.passed),
                });
            }
            steps = attempt.steps;
        }
        let link = self.make_link(access, &customer.name, Some(customer.tenant_id.clone()), hours, Some(job_id.to_owned())).await?;
        Ok(BulkItem {
            tenant_id: customer.tenant_id.clone(),
            name: customer.name.clone(),
            method: BulkMethod::ConsentLink,
            link_id: Some(link.id),
            url: Some(link.url),
            status: LinkStatus::Issued,
            steps,
            access_test_passed: None,
        })
    }

    /// A bulk onboarding with each customer's progress: its link's state and its last access
    /// test.
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound for an unknown job.
    pub async fn bulk(&self, access: &Access, job_id: &str) -> Result<BulkJob, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        if job_id.len() > 64 || !job_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(AdminError::NotFound(format!("bulk onboarding {}", crate::onboarding::clip(job_id, 64))));
        }
        let mut job = self.store.bulk(msp_id, job_id).await?.ok_or_else(|| AdminError::NotFound(format!("bulk onboarding {job_id}")))?;
        for item in &mut job.items {
            if let Some(link_id) = &item.link_id
                && let Some(link) = self.store.link(msp_id, link_id).await?
            {
                item.status = link.status;
            }
            item.access_test_passed = self.store.access_test(msp_id, &item.tenant_id).await?.map(|t| t.passed);
        }
        Ok(job)
    }
}
