//! The ports of the MSP's own delegated admin access: where its partner tenant's relationships,
//! partner activity, findings and removals are kept ([`RelationshipStore`]), the partner tenant
//! itself on Graph ([`AdminRelationshipSource`]), and the e-mail that tells a customer
//! ([`MailSender`]).

use crate::error::{SourceError, StoreError};
use crate::ids::{MspId, TenantId};
use crate::relationships::findings::RaisedFinding;
use crate::relationships::removal::{RelationshipRequest, Removal, RemovalPreview};
use crate::relationships::{AdminRelationship, PartnerActivity, RelationshipRefreshState, RelationshipStatus};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;

/// What the MSP's partner tenant last said about its admin relationships with customers, and
/// partner technicians' activity per customer. Every key starts with the MSP id.
#[async_trait]
pub trait RelationshipStore: Send + Sync {
    /// Makes `relationships` the MSP's relationships (a fresh read of the partner tenant):
    /// each is written, and any stored one no longer listed is deleted.
    async fn replace_relationships(&self, msp_id: &MspId, relationships: &[AdminRelationship]) -> Result<(), StoreError>;
    /// Writes one relationship (e.g. terminated by Vigil), leaving the others as they are.
    async fn put_relationship(&self, msp_id: &MspId, relationship: &AdminRelationship) -> Result<(), StoreError>;
    /// The MSP's relationships, by id.
    async fn relationships(&self, msp_id: &MspId) -> Result<Vec<AdminRelationship>, StoreError>;
    /// Replaces what is known of partner activity in one customer tenant.
    async fn put_activity(&self, msp_id: &MspId, tenant_id: &TenantId, activity: &PartnerActivity) -> Result<(), StoreError>;
    /// Partner activity per customer tenant.
    async fn activities(&self, msp_id: &MspId) -> Result<std::collections::BTreeMap<TenantId, PartnerActivity>, StoreError>;
    /// Records how the last read of the partner tenant went.
    async fn put_refresh(&self, msp_id: &MspId, refresh: &RelationshipRefreshState) -> Result<(), StoreError>;
    async fn refresh_state(&self, msp_id: &MspId) -> Result<Option<RelationshipRefreshState>, StoreError>;
    /// Notes that a partner technician acted in the customer tenant at `at` (an audit record of
    /// UserType 9): kept only when later than the one noted (concurrent notes keep the latest).
    async fn note_partner_action(&self, msp_id: &MspId, tenant_id: &TenantId, at: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError>;
    /// The latest partner technician action noted per customer tenant.
    async fn partner_actions(
        &self,
        msp_id: &MspId,
    ) -> Result<std::collections::BTreeMap<TenantId, chrono::DateTime<chrono::Utc>>, StoreError>;
    /// Partner activity per customer from every signal: the sign-in activity, its last sign-in
    /// moved to a later technician action where one was noted.
    async fn activity_by_customer(&self, msp_id: &MspId) -> Result<std::collections::BTreeMap<TenantId, PartnerActivity>, StoreError> {
        let mut activity = self.activities(msp_id).await?;
        for (tenant, at) in self.partner_actions(msp_id).await? {
            let entry = activity.entry(tenant).or_default();
            entry.last_sign_in = entry.last_sign_in.max(Some(at));
        }
        Ok(activity)
    }
    /// Makes `findings` the ones raised on one relationship (none: forgets it).
    async fn put_findings(&self, msp_id: &MspId, relationship_id: &str, findings: &[RaisedFinding]) -> Result<(), StoreError>;
    /// The findings raised, per relationship id (relationships with none left out).
    async fn findings(&self, msp_id: &MspId) -> Result<std::collections::BTreeMap<String, Vec<RaisedFinding>>, StoreError>;
    /// Keeps a removal preview until it is taken or expires.
    async fn put_preview(&self, preview: &RemovalPreview) -> Result<(), StoreError>;
    /// Takes the MSP's preview with this token hash: it is gone afterwards, so one preview
    /// confirms once (of two concurrent takers, one gets it). Expired previews are returned;
    /// the caller refuses them.
    async fn take_preview(&self, msp_id: &MspId, token_hash: &str) -> Result<Option<RemovalPreview>, StoreError>;
    /// Records a new removal; `false` (nothing written) when one of the relationship exists.
    async fn create_removal(&self, removal: &Removal) -> Result<bool, StoreError>;
    /// Replaces a removal (its one executor moves it on).
    async fn put_removal(&self, removal: &Removal) -> Result<(), StoreError>;
    async fn removal(&self, msp_id: &MspId, relationship_id: &str) -> Result<Option<Removal>, StoreError>;
    /// Every removal of the MSP, by relationship id.
    async fn removals(&self, msp_id: &MspId) -> Result<Vec<Removal>, StoreError>;
}

/// The GDAP relationships of an MSP's own partner tenant (the first source whose credentials
/// belong to the MSP rather than to a customer tenant).
#[async_trait]
pub trait AdminRelationshipSource: Send + Sync {
    /// Every delegated admin relationship of `partner_tenant`, with its access assignments
    /// (fetched for relationships that are not terminated or expired).
    async fn relationships(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
    ) -> Result<Vec<AdminRelationship>, SourceError>;
    /// One relationship's status now (`None`: Graph no longer has it).
    async fn relationship_status(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<Option<RelationshipStatus>, SourceError>;
    /// The lifecycle requests made on a relationship (to find a terminate request already made).
    async fn requests(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<Vec<RelationshipRequest>, SourceError>;
    /// The tenant's Entra ID sign-ins since `since` (`AuditLog.Read.All`; the tenant needs Entra
    /// ID P1/P2): read in the partner tenant, its users' sign-ins into customers.
    async fn sign_ins(
        &self,
        tenant: &TenantId,
        credentials: &M365AppCredentials,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::relationships::activity::SignIn>, SourceError>;
    /// Asks Graph to terminate a relationship (`DelegatedAdminRelationship.ReadWrite.All`).
    async fn request_termination(
        &self,
        partner_tenant: &TenantId,
        credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<RelationshipRequest, SourceError>;
}

/// Sends e-mail (Amazon SES in production).
#[async_trait]
pub trait MailSender: Send + Sync {
    /// Sends one message; the provider's message id.
    async fn send(&self, mail: &crate::mail::OutgoingMail) -> Result<String, crate::mail::MailError>;
}
