//! Admin relationships in memory: the partner tenant's side ([`MemoryRelationshipSource`]:
//! relationships, terminate requests going through `terminationRequested` → `terminating` →
//! `terminated` one status read at a time, failures on demand) and Vigil's store of them.

use super::{MemoryConfigStore, lock};
use crate::error::{SourceError, StoreError};
use crate::ids::{MspId, TenantId};
use crate::ports::RelationshipStore;
use crate::relationships::activity::SignIn;
use crate::relationships::findings::RaisedFinding;
use crate::relationships::removal::{RelationshipRequest, Removal, RemovalPreview, RequestStatus};
use crate::relationships::{AdminRelationship, PartnerActivity, RelationshipRefreshState, RelationshipStatus};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// [`crate::ports::AdminRelationshipSource`] in memory: relationships per partner tenant, and
/// failures to answer with, one per call.
#[derive(Debug, Default)]
pub struct MemoryRelationshipSource {
    relationships: Mutex<HashMap<TenantId, Vec<AdminRelationship>>>,
    requests: Mutex<HashMap<String, Vec<RelationshipRequest>>>,
    sign_ins: Mutex<HashMap<TenantId, Vec<SignIn>>>,
    sign_in_failures: Mutex<Vec<SourceError>>,
    termination_failures: Mutex<Vec<SourceError>>,
    failures: Mutex<Vec<SourceError>>,
    reads: Mutex<usize>,
    terminations: Mutex<usize>,
}

impl MemoryRelationshipSource {
    /// What `partner` lists from now on.
    pub fn set(&self, partner: &TenantId, relationships: Vec<AdminRelationship>) {
        lock(&self.relationships).insert(partner.clone(), relationships);
    }

    /// The sign-ins `tenant` lists from now on.
    pub fn set_sign_ins(&self, tenant: &TenantId, sign_ins: Vec<SignIn>) {
        lock(&self.sign_ins).insert(tenant.clone(), sign_ins);
    }

    /// The next sign-in read fails with `error` (other calls are not affected).
    pub fn fail_sign_ins_next(&self, error: SourceError) {
        lock(&self.sign_in_failures).push(error);
    }

    /// The next terminate request fails with `error` (nothing is requested).
    pub fn fail_terminations_next(&self, error: SourceError) {
        lock(&self.termination_failures).push(error);
    }

    /// Graph gives up on the relationship's terminate request: the request fails and the
    /// relationship stays as it was before it.
    pub fn fail_request(&self, relationship_id: &str, status_before: RelationshipStatus) {
        for request in lock(&self.requests).get_mut(relationship_id).into_iter().flatten() {
            request.status = RequestStatus::Failed;
        }
        for relationship in lock(&self.relationships).values_mut().flatten().filter(|r| r.id == relationship_id) {
            relationship.status = status_before;
        }
    }

    /// Adds a lifecycle request made outside Vigil (e.g. `lockForApproval`).
    pub fn add_request(&self, relationship_id: &str, request: RelationshipRequest) {
        lock(&self.requests).entry(relationship_id.to_owned()).or_default().push(request);
    }

    /// The next call fails with `error`.
    pub fn fail_next(&self, error: SourceError) {
        lock(&self.failures).push(error);
    }

    /// Reads of the relationship list so far.
    #[must_use]
    pub fn reads(&self) -> usize {
        *lock(&self.reads)
    }

    /// Terminate requests made so far.
    #[must_use]
    pub fn terminations(&self) -> usize {
        *lock(&self.terminations)
    }

    fn failure(&self) -> Result<(), SourceError> {
        lock(&self.failures).pop().map_or(Ok(()), Err)
    }
}

#[async_trait]
impl crate::ports::AdminRelationshipSource for MemoryRelationshipSource {
    async fn relationships(
        &self,
        partner_tenant: &TenantId,
        _credentials: &M365AppCredentials,
    ) -> Result<Vec<AdminRelationship>, SourceError> {
        *lock(&self.reads) += 1;
        self.failure()?;
        Ok(lock(&self.relationships).get(partner_tenant).cloned().unwrap_or_default())
    }

    async fn relationship_status(
        &self,
        partner_tenant: &TenantId,
        _credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<Option<RelationshipStatus>, SourceError> {
        self.failure()?;
        let mut all = lock(&self.relationships);
        let Some(relationship) = all.get_mut(partner_tenant).and_then(|list| list.iter_mut().find(|r| r.id == relationship_id)) else {
            return Ok(None);
        };
        let seen = relationship.status;
        relationship.status = match seen {
            RelationshipStatus::TerminationRequested => RelationshipStatus::Terminating,
            RelationshipStatus::Terminating => RelationshipStatus::Terminated,
            other => other,
        };
        if relationship.status == RelationshipStatus::Terminated
            && let Some(requests) = lock(&self.requests).get_mut(relationship_id)
        {
            requests.iter_mut().filter(|r| r.action == "terminate").for_each(|r| r.status = RequestStatus::Succeeded);
        }
        Ok(Some(seen))
    }

    async fn sign_ins(
        &self,
        tenant: &TenantId,
        _credentials: &M365AppCredentials,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SignIn>, SourceError> {
        if let Some(error) = lock(&self.sign_in_failures).pop() {
            return Err(error);
        }
        self.failure()?;
        Ok(lock(&self.sign_ins).get(tenant).into_iter().flatten().filter(|s| s.created_date_time >= since).cloned().collect())
    }

    async fn requests(
        &self,
        _partner_tenant: &TenantId,
        _credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<Vec<RelationshipRequest>, SourceError> {
        self.failure()?;
        Ok(lock(&self.requests).get(relationship_id).cloned().unwrap_or_default())
    }

    async fn request_termination(
        &self,
        partner_tenant: &TenantId,
        _credentials: &M365AppCredentials,
        relationship_id: &str,
    ) -> Result<RelationshipRequest, SourceError> {
        if let Some(error) = lock(&self.termination_failures).pop() {
            return Err(error);
        }
        self.failure()?;
        let mut all = lock(&self.relationships);
        let relationship = all
            .get_mut(partner_tenant)
            .and_then(|list| list.iter_mut().find(|r| r.id == relationship_id))
            .ok_or_else(|| SourceError::Unavailable(format!("terminate {relationship_id}: no such relationship")))?;
        if !matches!(relationship.status, RelationshipStatus::Active | RelationshipStatus::Expiring | RelationshipStatus::ApprovalPending) {
            return Err(SourceError::Rejected {
                code: "badRequest".into(),
                message: format!("terminate {relationship_id}: the relationship is {:?}", relationship.status),
            });
        }
        relationship.status = RelationshipStatus::TerminationRequested;
        *lock(&self.terminations) += 1;
        let mut requests = lock(&self.requests);
        let made = requests.entry(relationship_id.to_owned()).or_default();
        let id = if made.is_empty() { format!("req-{relationship_id}") } else { format!("req-{relationship_id}-{}", made.len() + 1) };
        let request = RelationshipRequest { id, action: "terminate".into(), status: RequestStatus::Created };
        made.push(request.clone());
        Ok(request)
    }
}

#[async_trait]
impl RelationshipStore for MemoryConfigStore {
    async fn replace_relationships(&self, msp_id: &MspId, relationships: &[AdminRelationship]) -> Result<(), StoreError> {
        let mut sorted = relationships.to_vec();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        lock(&self.relationships).insert(msp_id.clone(), sorted);
        Ok(())
    }
    async fn put_relationship(&self, msp_id: &MspId, relationship: &AdminRelationship) -> Result<(), StoreError> {
        let mut all = lock(&self.relationships);
        let list = all.entry(msp_id.clone()).or_default();
        match list.binary_search_by(|r| r.id.cmp(&relationship.id)) {
            Ok(at) => list[at] = relationship.clone(),
            Err(at) => list.insert(at, relationship.clone()),
        }
        Ok(())
    }
    async fn relationships(&self, msp_id: &MspId) -> Result<Vec<AdminRelationship>, StoreError> {
        Ok(lock(&self.relationships).get(msp_id).cloned().unwrap_or_default())
    }
    async fn put_activity(&self, msp_id: &MspId, tenant_id: &TenantId, activity: &PartnerActivity) -> Result<(), StoreError> {
        lock(&self.activities).insert((msp_id.clone(), tenant_id.clone()), activity.clone());
        Ok(())
    }
    async fn activities(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, PartnerActivity>, StoreError> {
        Ok(lock(&self.activities)
            .iter()
            .filter(|((msp, _), _)| msp == msp_id)
            .map(|((_, tenant), a)| (tenant.clone(), a.clone()))
            .collect())
    }
    async fn put_refresh(&self, msp_id: &MspId, refresh: &RelationshipRefreshState) -> Result<(), StoreError> {
        lock(&self.refreshes).insert(msp_id.clone(), refresh.clone());
        Ok(())
    }
    async fn refresh_state(&self, msp_id: &MspId) -> Result<Option<RelationshipRefreshState>, StoreError> {
        Ok(lock(&self.refreshes).get(msp_id).cloned())
    }
    async fn note_partner_action(&self, msp_id: &MspId, tenant_id: &TenantId, at: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        let mut actions = lock(&self.partner_actions);
        let noted = actions.entry((msp_id.clone(), tenant_id.clone())).or_insert(at);
        *noted = (*noted).max(at);
        Ok(())
    }
    async fn partner_actions(&self, msp_id: &MspId) -> Result<BTreeMap<TenantId, chrono::DateTime<chrono::Utc>>, StoreError> {
        Ok(lock(&self.partner_actions).iter().filter(|((msp, _), _)| msp == msp_id).map(|((_, t), at)| (t.clone(), *at)).collect())
    }
    async fn put_findings(&self, msp_id: &MspId, relationship_id: &str, findings: &[RaisedFinding]) -> Result<(), StoreError> {
        let key = (msp_id.clone(), relationship_id.to_owned());
        if findings.is_empty() {
            lock(&self.findings).remove(&key);
        } else {
            lock(&self.findings).insert(key, findings.to_vec());
        }
        Ok(())
    }
    async fn findings(&self, msp_id: &MspId) -> Result<BTreeMap<String, Vec<RaisedFinding>>, StoreError> {
        Ok(lock(&self.findings).iter().filter(|((msp, _), _)| msp == msp_id).map(|((_, id), f)| (id.clone(), f.clone())).collect())
    }
    async fn put_preview(&self, preview: &RemovalPreview) -> Result<(), StoreError> {
        lock(&self.previews).insert((preview.msp_id.clone(), preview.token_hash.clone()), preview.clone());
        Ok(())
    }
    async fn take_preview(&self, msp_id: &MspId, token_hash: &str) -> Result<Option<RemovalPreview>, StoreError> {
        Ok(lock(&self.previews).remove(&(msp_id.clone(), token_hash.to_owned())))
    }
    async fn create_removal(&self, removal: &Removal) -> Result<bool, StoreError> {
        let mut removals = lock(&self.removals);
        let key = (removal.msp_id.clone(), removal.relationship_id.clone());
        if removals.contains_key(&key) {
            return Ok(false);
        }
        removals.insert(key, removal.clone());
        Ok(true)
    }
    async fn put_removal(&self, removal: &Removal) -> Result<(), StoreError> {
        lock(&self.removals).insert((removal.msp_id.clone(), removal.relationship_id.clone()), removal.clone());
        Ok(())
    }
    async fn removal(&self, msp_id: &MspId, relationship_id: &str) -> Result<Option<Removal>, StoreError> {
        Ok(lock(&self.removals).get(&(msp_id.clone(), relationship_id.to_owned())).cloned())
    }
    async fn removals(&self, msp_id: &MspId) -> Result<Vec<Removal>, StoreError> {
        Ok(lock(&self.removals).iter().filter(|((msp, _), _)| msp == msp_id).map(|(_, r)| r.clone()).collect())
    }
}
