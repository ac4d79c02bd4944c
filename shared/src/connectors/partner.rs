//! The MSP's own partner tenant on Microsoft Graph: its GDAP relationships
//! (`GET /v1.0/tenantRelationships/delegatedAdminRelationships`, `$top=300`, every
//! `@odata.nextLink`) and each live relationship's access assignments (`…/{id}/accessAssignments`),
//! read with an app-only token of the partner tenant (`DelegatedAdminRelationship.Read.All`)
//! through the shared [`GraphReader`] (token per MSP and tenant, a `401` retried once with a new
//! token, failures classified as for Graph alerts). A relationship Graph sends that cannot be read
//! (a customer id that is not a GUID) is left out with a warning naming it; the others are kept.
//!
//! Removal (`DelegatedAdminRelationship.ReadWrite.All`): `POST …/{id}/requests` with
//! `{"action": "terminate"}`, `GET …/{id}/requests` to find one already made, and
//! `GET …/{id}` to follow the relationship through `terminationRequested` and `terminating` to
//! `terminated`.
//!
//! Partner activity (`AuditLog.Read.All`): `GET /beta/auditLogs/signIns` filtered on
//! `createdDateTime ge`, every page (`$top=1000`), read in the partner tenant.

use super::LazyHttp;
use super::graph::{GraphRead, GraphReader};
use crate::error::SourceError;
use crate::ids::TenantId;
use crate::ports::AdminRelationshipSource;
use crate::relationships::activity::SignIn;
use crate::relationships::removal::RelationshipRequest;
use crate::relationships::wire::{AssignmentWire, GraphPage, RelationshipWire};
use crate::relationships::{AdminRelationship, RelationshipStatus};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;

const RELATIONSHIPS_PATH: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";
/// Listing stops (as unavailable) after this many pages: a nextLink loop, not real data.
const MAX_PAGES: usize = 200;
const RELATIONSHIPS_READ: GraphRead =
    GraphRead { what: "list admin relationships", missing_role: "the app lacks DelegatedAdminRelationship.Read.All in the partner tenant" };
const ASSIGNMENTS_READ: GraphRead =
    GraphRead { what: "list access assignments", missing_role: "the app lacks DelegatedAdminRelationship.Read.All in the partner tenant" };
const STATUS_READ: GraphRead = GraphRead {
    what: "read an admin relationship",
    missing_role: "the app lacks DelegatedAdminRelationship.Read.All in the partner tenant",
};
const REQUESTS_READ: GraphRead = GraphRead {
    what: "list relationship requests",
    missing_role: "the app lacks DelegatedAdminRelationship.Read.All in the partner tenant",
};
const SIGN_INS_READ: GraphRead = GraphRead {
    what: "list sign-ins",
    missing_role: "the app lacks AuditLog.Read.All (or the tenant lacks Entra ID P1/P2) in the partner tenant",
};
const TERMINATE: GraphRead = GraphRead {
    what: "terminate an admin relationship",
    missing_role: "the app lacks DelegatedAdminRelationship.ReadWrite.All in the partner tenant (needed to remove relationships)",
};

/// The one field of a relationship read to follow its termination.
#[derive(serde::Deserialize)]
struct StatusOnly {
    status: RelationshipStatus,
}

/// A client of partner tenants' GDAP relationships.
#[derive(Debug)]
pub struct PartnerRelationshipsClient {
    reader: GraphReader,
}

impl PartnerRelationshipsClient {
    /// A client for one cloud: `login_base` the token host, `graph_base` the Graph root.
    #[must_use]
    pub fn new(http: impl Into<LazyHttp>, login_base: String, graph_base: String) -> Self {
        Self { reader: GraphReader::new(http, &login_base, &graph_base) }
    }

    async fn assignments(
        &self,
        partner: &TenantId,
        credentials: &M365AppCredentials,
        id: &str,
    ) -> Result<Vec<AssignmentWire>, SourceError> {
        let url = self.reader.url(&format!("{RELATIONSHIPS_PATH}/{}/accessAssignments?$top=100", path_segment(id)), ASSIGNMENTS_READ)?;
        self.every_page(partner, credentials, url, ASSIGNMENTS_READ).await
    }

    /// The items of every page of a Graph collection, from `url` on (`@odata.nextLink`, on
    /// Graph's origin only), at most [`MAX_PAGES`] pages.
    async fn every_page<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &TenantId,
        credentials: &M365AppCredentials,
        mut url: url::Url,
        read: GraphRead,
    ) -> Result<Vec<T>, SourceError> {
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

/// A relationship id as one path segment (ids are two GUIDs joined; anything else is escaped).
fn path_segment(id: &str) -> String {
    id.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'-' { char::from(b).to_string() } else { format!("%{b:02X}") }).collect()
}

#[async_trait]
impl AdminRelationshipSource for PartnerRelationshipsClient {
    async fn relationships(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
    ) -> Result<Vec<AdminRelationship>, SourceError> {
        let url = self.reader.url(&format!("{RELATIONSHIPS_PATH}?$top=300"), RELATIONSHIPS_READ)?;
        let listed: Vec<RelationshipWire> = self.every_page(partner_tenant, credentials, url, RELATIONSHIPS_READ).await?;
        let mut relationships = Vec::with_capacity(listed.len());
        for wire in listed {
            let ended = matches!(wire.status, RelationshipStatus::Terminated | RelationshipStatus::Expired);
            let assignments = if ended { Vec::new() } else { self.assignments(partner_tenant, credentials, &wire.id).await? };
            match wire.into_relationship(assignments) {
                Ok(relationship) => relationships.push(relationship),
                Err(reason) => tracing::warn!(partner_tenant = %partner_tenant, %reason, "Left out an admin relationship Graph listed"),
            }
        }
        tracing::debug!(partner_tenant = %partner_tenant, relationships = relationships.len(), "listed admin relationships");
        Ok(relationships)
    }

    async fn relationship_status(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<Option<RelationshipStatus>, SourceError> {
        let url = self.reader.url(&format!("{RELATIONSHIPS_PATH}/{}", path_segment(relationship_id)), STATUS_READ)?;
        let Some(body) = self.reader.get_if_found(partner_tenant, credentials, &url, STATUS_READ).await? else { return Ok(None) };
        let read: StatusOnly = serde_json::from_str(&body)
            .map_err(|e| SourceError::Unavailable(format!("read an admin relationship: unexpected response body: {e}")))?;
        Ok(Some(read.status))
    }

    async fn requests(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<Vec<RelationshipRequest>, SourceError> {
        let url = self.reader.url(&format!("{RELATIONSHIPS_PATH}/{}/requests", path_segment(relationship_id)), REQUESTS_READ)?;
        self.every_page(partner_tenant, credentials, url, REQUESTS_READ).await
    }

    async fn sign_ins(
        &self,
        tenant: &TenantId,
        credentials: &M365AppCredentials,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SignIn>, SourceError> {
        let filter = format!("createdDateTime ge {}", since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let query: String =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("$filter", &filter).append_pair("$top", "1000").finish();
        let url = self.reader.url(&format!("/beta/auditLogs/signIns?{query}"), SIGN_INS_READ)?;
        self.every_page(tenant, credentials, url, SIGN_INS_READ).await
    }

    async fn request_termination(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<RelationshipRequest, SourceError> {
        let url = self.reader.url(&format!("{RELATIONSHIPS_PATH}/{}/requests", path_segment(relationship_id)), TERMINATE)?;
        let body = self.reader.post(partner_tenant, credentials, &url, &serde_json::json!({"action": "terminate"}), TERMINATE).await?;
        serde_json::from_str(&body)
            .map_err(|e| SourceError::Unavailable(format!("terminate an admin relationship: unexpected response body: {e}")))
    }
}
