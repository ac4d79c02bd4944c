//! A customer tenant's directory on Microsoft Graph, listed for the protected-mailbox count
//! (`shared/reference/licences-billing-outputs.md` §1.5, option B's de-duplicated listing):
//! `GET /v1.0/users?$select=id,accountEnabled,userType,assignedPlans&$top=999&$count=true`
//! with `ConsistencyLevel: eventual` (`$count` is an advanced query), then every
//! `@odata.nextLink` on Graph's origin. The app needs `User.Read.All` (a `403` says so).
//! Throttling (`429` with `Retry-After`), outages and token renewal are the shared
//! [`GraphReader`]'s. Only the Exchange mailbox plans of each user are kept
//! ([`DirectoryUser::trimmed`]), so a large tenant's listing stays small in memory.
//!
//! `$top=999` as the users maximum is unconfirmed in the reference; Graph answers a smaller
//! page and a nextLink if it caps it lower, so the count is right either way.

use super::LazyHttp;
use super::graph::{GraphRead, GraphReader};
use crate::billing::DirectoryUser;
use crate::error::SourceError;
use crate::ids::TenantId;
use crate::ports::MailboxDirectory;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use serde::Deserialize;

/// The first page of the listing.
pub const USERS_QUERY: &str = "/v1.0/users?$select=id,accountEnabled,userType,assignedPlans&$top=999&$count=true";
/// Listing stops (as unavailable) after this many pages: a nextLink loop, not a directory.
const MAX_PAGES: usize = 1000;
const USERS_READ: GraphRead = GraphRead { what: "list users", missing_role: "the app lacks User.Read.All in the tenant" };

#[derive(Deserialize)]
struct UsersPage {
    value: Vec<DirectoryUser>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.count", default)]
    count: Option<u64>,
}

/// A client of customer tenants' directories for the mailbox count.
#[derive(Debug)]
pub struct DirectoryClient {
    reader: GraphReader,
}

impl DirectoryClient {
    /// A client for one cloud: `login_base` the token host, `graph_base` the Graph root.
    #[must_use]
    pub fn new(http: impl Into<LazyHttp>, login_base: String, graph_base: String) -> Self {
        Self { reader: GraphReader::new(http, &login_base, &graph_base) }
    }
}

#[async_trait]
impl MailboxDirectory for DirectoryClient {
    async fn users(&self, tenant_id: &TenantId, credentials: &M365AppCredentials) -> Result<Vec<DirectoryUser>, SourceError> {
        let mut url = self.reader.url(USERS_QUERY, USERS_READ)?;
        let mut users = Vec::new();
        let mut announced = None;
        for _ in 0..MAX_PAGES {
            let body = self.reader.get_eventual(tenant_id, credentials, &url, USERS_READ).await?;
            let page: UsersPage = serde_json::from_str(&body)
                .map_err(|e| SourceError::Unavailable(format!("{}: unexpected response body: {e}", USERS_READ.what)))?;
            announced = announced.or(page.count);
            users.extend(page.value.into_iter().map(DirectoryUser::trimmed));
            match page.next_link.as_deref().map(str::trim).filter(|next| !next.is_empty()) {
                Some(next) => url = self.reader.next_url(next, USERS_READ)?,
                None => {
                    if let Some(count) = announced.filter(|c| *c != users.len() as u64) {
                        // Eventual consistency: the count may lag a change made while listing.
                        tracing::info!(tenant_id = %tenant_id, announced = count, listed = users.len(), "The directory's count and its listing differ");
                    }
                    return Ok(users);
                }
            }
        }
        Err(SourceError::Unavailable(format!("{}: more than {MAX_PAGES} pages; the paging does not end", USERS_READ.what)))
    }
}
