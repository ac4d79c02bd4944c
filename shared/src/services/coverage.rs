//! Coverage per tenant and per MSP through the API: for each tenant, the share of the last 24
//! hours in which every stream it has enabled was covered ([`crate::coverage`] defines the
//! figure), read from the poller's ledgers; and the MSP's figure over all its tenants.

use super::admin::{AdminError, AdminService};
use crate::access::{Access, Permission};
use crate::coverage::{msp_coverage, tenant_coverage};
use crate::ids::{AuditStream, MspId, TenantId};
use crate::ports::{StreamKey, StreamState};
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use futures::StreamExt;

/// The most tenants one page lists.
pub const COVERAGE_PAGE_MAX: usize = 500;
/// How many ledgers are read at once for the MSP's figure.
const READS_AT_ONCE: usize = 16;

/// One tenant's coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantCoverage {
    pub tenant_id: TenantId,
    pub name: String,
    /// See [`crate::coverage`]; `None`: no enabled stream.
    pub coverage_24h: Option<f64>,
    /// Enabled streams never polled yet.
    pub streams_not_polled: usize,
    /// Enabled streams with a lost interval that overlaps the window.
    pub streams_with_losses: usize,
}

/// A page of tenants' coverage and the MSP's figure.
#[derive(Debug, Clone, PartialEq)]
pub struct CoveragePage {
    /// When the figures were computed (the window ends here).
    pub at: DateTime<Utc>,
    /// The mean over all the MSP's tenants with a figure (every page gives the same).
    pub msp_coverage_24h: Option<f64>,
    /// How many tenants the MSP has.
    pub tenants_total: usize,
    pub tenants: Vec<TenantCoverage>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next_after: Option<TenantId>,
}

impl AdminService {
    /// One tenant's enabled streams and their ledgers.
    async fn ledgers(&self, tenant: &Tenant, default_streams: &[AuditStream]) -> Result<Vec<Option<StreamState>>, AdminError> {
        let mut ledgers = Vec::new();
        for stream in tenant.streams.clone().unwrap_or_else(|| default_streams.to_vec()) {
            let key = StreamKey { msp_id: tenant.msp_id.clone(), tenant_id: tenant.tenant_id.clone(), stream };
            ledgers.push(self.ingest.get_stream(&key).await?);
        }
        Ok(ledgers)
    }

    fn figure(tenant: &Tenant, ledgers: &[Option<StreamState>], now: DateTime<Utc>) -> TenantCoverage {
        let refs: Vec<Option<&StreamState>> = ledgers.iter().map(Option::as_ref).collect();
        let start = now - crate::coverage::window();
        TenantCoverage {
            tenant_id: tenant.tenant_id.clone(),
            name: tenant.name.clone(),
            coverage_24h: tenant_coverage(&refs, now),
            streams_not_polled: ledgers.iter().filter(|l| l.is_none()).count(),
            streams_with_losses: ledgers.iter().flatten().filter(|l| l.lost.iter().any(|(_, to)| *to > start)).count(),
        }
    }

    /// The coverage of one tenant's enabled streams over the last 24 hours.
    ///
    /// # Errors
    /// NotFound for an unknown tenant; store failures.
    pub async fn tenant_coverage(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        default_streams: &[AuditStream],
    ) -> Result<TenantCoverage, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let tenant = self.config.get_tenant(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))?;
        let ledgers = self.ledgers(&tenant, default_streams).await?;
        Ok(Self::figure(&tenant, &ledgers, self.clock.now()))
    }

    /// A page of the caller's tenants (in tenant id order, after `after`) with their coverage,
    /// and the MSP's figure over all of them.
    ///
    /// # Errors
    /// Invalid for a limit outside 1 to [`COVERAGE_PAGE_MAX`]; store failures.
    pub async fn coverage(
        &self,
        access: &Access,
        default_streams: &[AuditStream],
        limit: usize,
        after: Option<&TenantId>,
    ) -> Result<CoveragePage, AdminError> {
        let msp_id: &MspId = access.permit(Permission::ConfigRead)?;
        if !(1..=COVERAGE_PAGE_MAX).contains(&limit) {
            return Err(AdminError::Invalid(format!("limit: 1 to {COVERAGE_PAGE_MAX}")));
        }
        let now = self.clock.now();
        let mut tenants = self.config.list_tenants(msp_id).await?;
        tenants.sort_by(|a, b| a.tenant_id.as_str().cmp(b.tenant_id.as_str()));
        let reads: Vec<_> = tenants.iter().map(|tenant| self.ledgers(tenant, default_streams)).collect();
        let ledgers: Vec<Result<Vec<Option<StreamState>>, AdminError>> =
            futures::stream::iter(reads).buffered(READS_AT_ONCE).collect().await;
        let mut figures = Vec::with_capacity(tenants.len());
        for (tenant, ledgers) in tenants.iter().zip(ledgers) {
            figures.push(Self::figure(tenant, &ledgers?, now));
        }
        let msp_figure = msp_coverage(&figures.iter().map(|f| f.coverage_24h).collect::<Vec<_>>());
        let tenants_total = figures.len();
        let mut page: Vec<TenantCoverage> =
            figures.into_iter().filter(|f| after.is_none_or(|after| f.tenant_id.as_str() > after.as_str())).take(limit + 1).collect();
        let next_after = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|f| f.tenant_id.clone())
        } else {
            None
        };
        Ok(CoveragePage { at: now, msp_coverage_24h: msp_figure, tenants_total, tenants: page, next_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Access;
    use crate::clock::ManualClock;
    use crate::memory::{MemoryAlertStore, MemoryConfigStore, MemoryIngestState, MemorySecretStore};
    use crate::services::access::AuditTrail;
    use chrono::{Duration, TimeZone};
    use std::sync::Arc;

    const A: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
    const B: &str = "6e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a12";
    const C: &str = "7e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a13";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    async fn service() -> AdminService {
        let clock = Arc::new(ManualClock::at(now()));
        AdminService {
            ingest: Arc::new(MemoryIngestState::default()),
            config: Arc::new(MemoryConfigStore::default()),
            alerts: Arc::new(MemoryAlertStore::default()),
            secrets: Arc::new(MemorySecretStore::default()),
            clock: clock.clone(),
            audit: AuditTrail { log: Arc::new(MemoryConfigStore::default()), clock },
        }
    }

    async fn tenant(admin: &AdminService, msp: &str, id: &str, name: &str) {
        let access = Access::operator(&MspId::parse(msp).unwrap());
        admin.register_tenant(&access, TenantId::parse(id).unwrap(), name, Vec::new()).await.unwrap();
    }

    async fn ledger(admin: &AdminService, msp: &str, id: &str, stream: AuditStream, state: StreamState) {
        let key = StreamKey { msp_id: MspId::parse(msp).unwrap(), tenant_id: TenantId::parse(id).unwrap(), stream };
        admin.ingest.put_stream(&key, &state).await.unwrap();
    }

    #[tokio::test]
    async fn the_msp_figure_covers_every_tenant_while_a_page_lists_some() {
        let admin = service().await;
        let streams = [AuditStream::GraphAlerts];
        for (id, name) in [(A, "Contoso"), (B, "Fabrikam"), (C, "Northwind")] {
            tenant(&admin, "acme", id, name).await;
        }
        ledger(&admin, "acme", A, AuditStream::GraphAlerts, StreamState::starting_at(now())).await;
        ledger(&admin, "acme", B, AuditStream::GraphAlerts, StreamState::starting_at(now() - Duration::hours(12))).await;
        let access = Access::operator(&MspId::parse("acme").unwrap());

        let first = admin.coverage(&access, &streams, 2, None).await.unwrap();
        assert_eq!(first.tenants.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["Contoso", "Fabrikam"]);
        assert_eq!(first.tenants[0].coverage_24h, Some(1.0));
        assert_eq!(first.tenants[1].coverage_24h, Some(0.5));
        assert_eq!(first.tenants_total, 3);
        assert_eq!(first.msp_coverage_24h, Some(0.5), "(1 + 0.5 + 0) / 3");
        let second = admin.coverage(&access, &streams, 2, first.next_after.as_ref()).await.unwrap();
        assert_eq!(second.tenants.len(), 1);
        assert_eq!(second.tenants[0].streams_not_polled, 1);
        assert_eq!(second.tenants[0].coverage_24h, Some(0.0));
        assert_eq!(second.next_after, None);
        assert_eq!(second.msp_coverage_24h, first.msp_coverage_24h);
    }

    #[tokio::test]
    async fn another_msps_tenants_and_ledgers_never_count() {
        let admin = service().await;
        tenant(&admin, "acme", A, "Contoso").await;
        tenant(&admin, "rival", B, "Rival's").await;
        ledger(&admin, "rival", B, AuditStream::GraphAlerts, StreamState::starting_at(now())).await;
        // The rival's ledger of acme's tenant id says nothing about acme's coverage.
        ledger(&admin, "rival", A, AuditStream::GraphAlerts, StreamState::starting_at(now())).await;
        let access = Access::operator(&MspId::parse("acme").unwrap());
        let page = admin.coverage(&access, &[AuditStream::GraphAlerts], 10, None).await.unwrap();
        assert_eq!(page.tenants.len(), 1);
        assert_eq!(page.tenants[0].coverage_24h, Some(0.0));
        assert_eq!(page.msp_coverage_24h, Some(0.0));
    }

    #[tokio::test]
    async fn a_limit_outside_the_bounds_is_refused() {
        let admin = service().await;
        let access = Access::operator(&MspId::parse("acme").unwrap());
        for limit in [0, COVERAGE_PAGE_MAX + 1] {
            assert!(matches!(admin.coverage(&access, &[], limit, None).await, Err(AdminError::Invalid(_))));
        }
    }
}
