//! Billing mappings and sync runs behind the config API: which agreement or contract and which
//! product or service bill a tenant in a PSA destination (checked in the PSA before it is kept:
//! an agreement, contract or product that does not exist or is cancelled is refused, naming
//! it), and the sync of the current period, for real or as a dry run showing, per tenant and
//! destination, the quantity in the PSA and the one Vigil would set.

use super::access::AuditTrail;
use super::admin::AdminError;
use super::billing_sync::{BillingSyncError, BillingSyncService, SyncLine};
use crate::access::{Access, Permission};
use crate::billing::sync::{BillingMapping, SyncRecord};
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, SinkError};
use crate::ids::{DestinationId, TenantId};
use crate::ports::{BillingStore, BillingTargets, ConfigStore, DestinationStore, MailboxCountStore, SinkSetupError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A mapping as the API takes it (tenant and destination come from the path).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MappingRequest {
    /// ConnectWise agreement id, Autotask contract id, Tigerpaw agreement number or HaloPSA
    /// recurring invoice id.
    pub agreement_id: String,
    /// ConnectWise product identifier, Autotask service id, or the line's product.
    pub product_id: String,
    /// Whether a quantity changed by hand in the PSA is set back to the count (default: kept
    /// for its period and reported).
    #[serde(default)]
    pub restore_hand_edits: bool,
}

/// A mapping with its last sync.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MappingView {
    #[serde(flatten)]
    pub mapping: BillingMapping,
    /// The mapping's latest period's sync (`null`: never synced).
    pub last_sync: Option<SyncRecord>,
}

/// A sync run asked for through the API.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// The day whose period is synced (default today, UTC).
    #[serde(default)]
    pub day: Option<NaiveDate>,
}

/// What a run did or would do.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRun {
    pub period: String,
    pub dry_run: bool,
    pub lines: Vec<SyncLine>,
}

/// The billing use cases.
pub struct BillingService {
    pub billing: Arc<dyn BillingStore>,
    pub counts: Arc<dyn MailboxCountStore>,
    pub config: Arc<dyn ConfigStore>,
    pub destinations: Arc<dyn DestinationStore>,
    pub targets: Arc<dyn BillingTargets>,
    pub sync: Arc<BillingSyncService>,
    pub audit: AuditTrail,
    pub clock: Arc<dyn Clock>,
}

fn psa_refusal(error: &SinkError) -> AdminError {
    match error {
        SinkError::Rejected(why) | SinkError::Invalid(why) | SinkError::Gone(why) => AdminError::Invalid(why.clone()),
        other if other.class() == ErrorClass::Transient => AdminError::Upstream(format!("{other}; try again")),
        other => AdminError::Upstream(other.to_string()),
    }
}

impl BillingService {
    /// Keeps a mapping after checking its agreement and product in the PSA.
    ///
    /// # Errors
    /// Forbidden without config:write; NotFound for an unknown tenant or destination; Invalid
    /// (422) for an unusable reference, a destination that does not bill, or an agreement,
    /// contract or product the PSA says does not exist or is cancelled (named); Upstream when
    /// the PSA cannot be asked.
    pub async fn put_mapping(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        destination_id: &DestinationId,
        request: MappingRequest,
    ) -> Result<BillingMapping, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        if self.config.get_tenant(msp_id, tenant_id).await?.is_none() {
            return Err(AdminError::NotFound(format!("tenant {tenant_id}")));
        }
        let destination = self
            .destinations
            .get_destination(msp_id, destination_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("destination {destination_id}")))?;
        let mapping = BillingMapping {
            tenant_id: tenant_id.clone(),
            destination_id: destination_id.clone(),
            agreement_id: request.agreement_id.trim().to_owned(),
            product_id: request.product_id.trim().to_owned(),
            restore_hand_edits: request.restore_hand_edits,
        }
        .validated()
        .map_err(AdminError::Invalid)?;
        let target = match self.targets.billing_for(&destination).await {
            Ok(target) => target,
            Err(SinkSetupError::NotConfigured(why)) => return Err(AdminError::Invalid(why)),
            Err(SinkSetupError::Store(e)) => return Err(e.into()),
            Err(SinkSetupError::Secret(e)) => return Err(e.into()),
        };
        target.check_line(&mapping.line()).await.map_err(|e| psa_refusal(&e))?;
        self.billing.put_mapping(msp_id, &mapping).await?;
        self.audit
            .record(
                access,
                "billing.mapping.set",
                format!("{destination_id}/{tenant_id} agreement={} product={}", mapping.agreement_id, mapping.product_id),
            )
            .await?;
        Ok(mapping)
    }

    /// Forgets a mapping (and its sync record).
    ///
    /// # Errors
    /// Forbidden without config:write; NotFound when there is none.
    pub async fn delete_mapping(&self, access: &Access, tenant_id: &TenantId, destination_id: &DestinationId) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        if !self.billing.delete_mapping(msp_id, destination_id, tenant_id).await? {
            return Err(AdminError::NotFound(format!("billing mapping {destination_id}/{tenant_id}")));
        }
        self.audit.record(access, "billing.mapping.delete", format!("{destination_id}/{tenant_id}")).await
    }

    /// Every mapping with its last sync.
    ///
    /// # Errors
    /// Forbidden without config:read.
    pub async fn mappings(&self, access: &Access) -> Result<Vec<MappingView>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let mut views = Vec::new();
        for mapping in self.billing.mappings(msp_id).await? {
            let last_sync = self.billing.sync_record(msp_id, &mapping.destination_id, &mapping.tenant_id).await?;
            views.push(MappingView { mapping, last_sync });
        }
        Ok(views)
    }

    /// Syncs the period of `request.day` (default today) under the MSP's schedule; a dry run
    /// writes nothing and records nothing.
    ///
    /// # Errors
    /// Forbidden without config:write (config:read for a dry run); Upstream when a PSA failed
    /// transiently (what could be done is done; run it again).
    pub async fn run(&self, access: &Access, request: &SyncRequest, dry_run: bool) -> Result<SyncRun, AdminError> {
        let msp_id = access.permit(if dry_run { Permission::ConfigRead } else { Permission::ConfigWrite })?;
        let settings = self.counts.billing_settings(msp_id).await?;
        let day = request.day.unwrap_or_else(|| self.clock.now().date_naive());
        let period = settings.sync_schedule.period_of(day);
        let lines = match self.sync.sync(msp_id, &period, dry_run).await {
            Ok(lines) => lines,
            Err(BillingSyncError::Store(e)) => return Err(e.into()),
            Err(BillingSyncError::Queue(e)) => return Err(e.into()),
            Err(BillingSyncError::Psa { destination, source }) => {
                return Err(AdminError::Upstream(format!("destination {destination}: {source}; run the sync again")));
            }
        };
        if !dry_run {
            self.audit.record(access, "billing.sync", format!("period={}", period.key)).await?;
        }
        Ok(SyncRun { period: period.key, dry_run, lines })
    }
}
