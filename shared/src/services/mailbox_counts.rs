//! The protected-mailbox figures behind the config API: each tenant's daily series and the
//! MSP's current figures (the latest day of every tenant, and their total), as JSON or CSV,
//! and the MSP's billing settings (how many days the series keeps). Reads need config:read,
//! the settings config:write (and are recorded in the audit log).

use super::access::AuditTrail;
use super::admin::AdminError;
use crate::access::{Access, Permission};
use crate::billing::{BillingSettings, DailyCount};
use crate::clock::Clock;
use crate::ids::TenantId;
use crate::ports::{ConfigStore, MailboxCountStore};
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Days a series shows when no range is asked for.
pub const DEFAULT_SERIES_DAYS: i64 = 31;

/// The days of a series to show (both included; default: the last 31 days to today).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// First day (`YYYY-MM-DD`, UTC).
    pub from: Option<NaiveDate>,
    /// Last day (`YYYY-MM-DD`, UTC); default today.
    pub to: Option<NaiveDate>,
}

/// One tenant's daily series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailboxSeries {
    pub tenant_id: TenantId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The days recorded in the range, oldest first (a day never counted is absent).
    pub days: Vec<DailyCount>,
}

/// One tenant's current figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantFigure {
    pub tenant_name: String,
    #[serde(flatten)]
    pub count: DailyCount,
}

/// The MSP's current figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MspMailboxFigures {
    /// Protected mailboxes across every tenant with a figure.
    pub total_protected_mailboxes: u64,
    /// Tenants whose latest figure was carried over from an earlier day (their count failed).
    pub tenants_carried_over: usize,
    /// Each tenant's latest figure, by tenant name (tenants never counted are absent).
    pub tenants: Vec<TenantFigure>,
}

/// The figures' use cases.
pub struct MailboxCountService {
    pub counts: Arc<dyn MailboxCountStore>,
    pub config: Arc<dyn ConfigStore>,
    pub audit: AuditTrail,
    pub clock: Arc<dyn Clock>,
}

impl MailboxCountService {
    /// A tenant's series over the range asked (at most the MSP's retention).
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound for a tenant not of the MSP; Invalid range.
    pub async fn series(&self, access: &Access, tenant_id: &TenantId, query: &SeriesQuery) -> Result<MailboxSeries, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        if self.config.get_tenant(msp_id, tenant_id).await?.is_none() {
            return Err(AdminError::NotFound(format!("tenant {tenant_id}")));
        }
        let settings = self.counts.billing_settings(msp_id).await?;
        let to = query.to.unwrap_or_else(|| self.clock.now().date_naive());
        let from = query.from.unwrap_or(to - Duration::days(DEFAULT_SERIES_DAYS - 1));
        if from > to {
            return Err(AdminError::Invalid(format!("from ({from}) is after to ({to})")));
        }
        if (to - from).num_days() >= i64::from(settings.count_retention_days) {
            return Err(AdminError::Invalid(format!(
                "the range is longer than the {} days the series keeps (count_retention_days)",
                settings.count_retention_days
            )));
        }
        let days = self.counts.counts(msp_id, tenant_id, from, to).await?;
        Ok(MailboxSeries { tenant_id: tenant_id.clone(), from, to, days })
    }

    /// The series as CSV (RFC 4180, a header row).
    ///
    /// # Errors
    /// As [`Self::series`].
    pub async fn series_csv(&self, access: &Access, tenant_id: &TenantId, query: &SeriesQuery) -> Result<String, AdminError> {
        let series = self.series(access, tenant_id, query).await?;
        let name = self.config.get_tenant(access.msp_id(), tenant_id).await?.map(|t| t.name).unwrap_or_default();
        let mut out = String::from(HEADER);
        for day in &series.days {
            push_row(&mut out, &name, day);
        }
        Ok(out)
    }

    /// The MSP's current figures.
    ///
    /// # Errors
    /// Forbidden without config:read.
    pub async fn current(&self, access: &Access) -> Result<MspMailboxFigures, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let latest = self.counts.latest_counts(msp_id).await?;
        let tenants = self.config.list_tenants(msp_id).await?;
        let mut figures: Vec<TenantFigure> = tenants
            .into_iter()
            .filter_map(|tenant| latest.get(&tenant.tenant_id).map(|count| TenantFigure { tenant_name: tenant.name, count: count.clone() }))
            .collect();
        figures.sort_by(|a, b| {
            a.tenant_name.to_lowercase().cmp(&b.tenant_name.to_lowercase()).then(a.count.tenant_id.cmp(&b.count.tenant_id))
        });
        Ok(MspMailboxFigures {
            total_protected_mailboxes: figures.iter().map(|f| u64::from(f.count.protected_mailboxes)).sum(),
            tenants_carried_over: figures.iter().filter(|f| f.count.carried_over.is_some()).count(),
            tenants: figures,
        })
    }

    /// The current figures as CSV, one row per tenant.
    ///
    /// # Errors
    /// As [`Self::current`].
    pub async fn current_csv(&self, access: &Access) -> Result<String, AdminError> {
        let mut out = String::from(HEADER);
        for figure in self.current(access).await?.tenants {
            push_row(&mut out, &figure.tenant_name, &figure.count);
        }
        Ok(out)
    }

    /// The MSP's billing settings.
    ///
    /// # Errors
    /// Forbidden without config:read.
    pub async fn settings(&self, access: &Access) -> Result<BillingSettings, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        Ok(self.counts.billing_settings(msp_id).await?)
    }

    /// Replaces the MSP's billing settings (a shorter retention deletes older days as each
    /// tenant's next day is recorded).
    ///
    /// # Errors
    /// Forbidden without config:write; Invalid values.
    pub async fn set_settings(&self, access: &Access, settings: BillingSettings) -> Result<BillingSettings, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let settings = settings.validated().map_err(AdminError::Invalid)?;
        self.counts.put_billing_settings(msp_id, &settings).await?;
        let schedule = serde_json::to_value(settings.sync_schedule).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        self.audit
            .record(
                access,
                "billing.settings.set",
                format!("count_retention_days={} sync_schedule={schedule}", settings.count_retention_days),
            )
            .await?;
        Ok(settings)
    }
}

const HEADER: &str = "tenant,tenant_id,day,protected_mailboxes,users,counted_on,carried_over\r\n";

fn push_row(out: &mut String, tenant_name: &str, count: &DailyCount) {
    use super::relationships::csv_cell;
    let cells = [
        csv_cell(tenant_name),
        csv_cell(count.tenant_id.as_str()),
        count.day.to_string(),
        count.protected_mailboxes.to_string(),
        count.users.to_string(),
        count.counted_on.to_string(),
        csv_cell(count.carried_over.as_deref().unwrap_or_default()),
    ];
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}
