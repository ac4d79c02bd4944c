//! A customer tenant's licences on Microsoft Graph as a [`LicenceSource`]:
//! `GET /v1.0/subscribedSkus` (one entry per product: units, service plans) and
//! `GET /v1.0/directory/subscriptions` (one entry per subscription: status, next lifecycle
//! date), both every `@odata.nextLink` page (on Graph's origin only), read with the tenant's
//! app-only Graph token (`Organization.Read.All`) through the shared [`GraphReader`] (token per
//! MSP and tenant, a `401` retried once with a new token, failures classified as for Graph
//! alerts: `403` is [`SourceError::AccessRefused`] naming the missing permission, `429`/`503`
//! throttled with `Retry-After`, other `5xx` unavailable). Reference:
//! `shared/reference/licences-billing-outputs.md` §1.1, §1.2, §1.6.

use super::LazyHttp;
use super::graph::{GraphRead, GraphReader};
use crate::error::SourceError;
use crate::ids::TenantId;
use crate::licences::wire::{CompanySubscriptionWire, SubscribedSkuWire};
use crate::licences::{LicenceSnapshot, LicenceSubscription, LicensedSku};
use crate::ports::LicenceSource;
use crate::relationships::wire::GraphPage;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;

/// The application permission both listings need (least privileged).
pub const LICENCES_PERMISSION: &str = "Organization.Read.All";
/// Listing stops (as unavailable) after this many pages: a nextLink loop, not real data.
const MAX_PAGES: usize = 50;
const SKUS_READ: GraphRead =
    GraphRead { what: "list subscribed SKUs", missing_role: "the app lacks Organization.Read.All in the tenant (consent it again)" };
const SUBSCRIPTIONS_READ: GraphRead =
    GraphRead { what: "list subscriptions", missing_role: "the app lacks Organization.Read.All in the tenant (consent it again)" };

/// A client of customer tenants' licences.
#[derive(Debug)]
pub struct GraphLicencesClient {
    reader: GraphReader,
}

impl GraphLicencesClient {
    /// A client for one cloud: `login_base` the token host, `graph_base` the Graph root.
    #[must_use]
    pub fn new(http: impl Into<LazyHttp>, login_base: String, graph_base: String) -> Self {
        Self { reader: GraphReader::new(http, &login_base, &graph_base) }
    }

    async fn every_page<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &TenantId,
        credentials: &M365AppCredentials,
        path: &str,
        read: GraphRead,
    ) -> Result<Vec<T>, SourceError> {
        let mut url = self.reader.url(path, read)?;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = self.reader.get(tenant, credentials, &url, read).await?;
            let page: GraphPage<T> = serde_json::from_str(&body)
                .map_err(|e| SourceError::Unavailable(format!("{}: unexpected response body: {e}", read.what)))?;
            items.extend(page.value);
            match page.next_link.as_deref().map(str::trim).filter(|next| !next.is_empty()) {
                Some(next) => url = self.reader.next_url(next, read)?,
                None => return Ok(items),
            }
        }
        Err(SourceError::Unavailable(format!("{}: more than {MAX_PAGES} pages; the paging does not end", read.what)))
    }
}

#[async_trait]
impl LicenceSource for GraphLicencesClient {
    async fn licences(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) -> Result<LicenceSnapshot, SourceError> {
        let skus: Vec<SubscribedSkuWire> = self.every_page(tenant_id, credentials, "/v1.0/subscribedSkus", SKUS_READ).await?;
        let subscriptions: Vec<CompanySubscriptionWire> =
            self.every_page(tenant_id, credentials, "/v1.0/directory/subscriptions", SUBSCRIPTIONS_READ).await?;
        tracing::debug!(tenant_id = %tenant_id, skus = skus.len(), subscriptions = subscriptions.len(), "listed licences");
        Ok(LicenceSnapshot {
            skus: skus.into_iter().map(LicensedSku::from).collect(),
            subscriptions: subscriptions.into_iter().map(LicenceSubscription::from).collect(),
        }
        .bounded())
    }
}
