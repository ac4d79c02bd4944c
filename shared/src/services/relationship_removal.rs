//! Self-service removal of delegated admin access, safe: a preview first (what will be removed,
//! who loses access, what stops working) with a one-time token, then a confirmation with that
//! token within [`PREVIEW_MINUTES`]. Only the confirmation records a [`Removal`] per removable
//! relationship and queues its job; the audit-poller carries it out through Graph
//! ([`crate::services::poll`]). Both steps need `relationships:remove`; the trail names who
//! previewed and who confirmed.

use super::access::AuditTrail;
use super::admin::AdminError;
use crate::access::{Access, Permission};
use crate::clock::Clock;
use crate::messages::PollJob;
use crate::ports::{MessageQueue, RelationshipStore};
use crate::relationships::removal::{
    MAX_PER_PREVIEW, PREVIEW_MINUTES, Removal, RemovalPreview, RemovalPreviewItem, RemovalStatus, TOKEN_PREFIX,
};
use crate::secret::SecretString;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What to preview.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Relationship ids (1 to 50, as the report lists them).
    pub relationship_ids: Vec<String>,
    /// Whom to tell by e-mail once a relationship is removed: relationship id → the customer
    /// contact's address (optional).
    #[serde(default)]
    pub notify: std::collections::BTreeMap<String, String>,
}

/// A preview and the token that confirms it (shown once).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewResponse {
    /// Confirms this preview once, until `expires_at`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
    pub items: Vec<RemovalPreviewItem>,
    /// How many of the items confirming will remove.
    pub removable: usize,
}

/// A confirmation.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The token of the preview.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: SecretString,
}

/// The removal use cases.
pub struct RelationshipRemovalService {
    pub store: Arc<dyn RelationshipStore>,
    /// The poll-jobs queue, where each confirmed removal goes.
    pub jobs: Arc<dyn MessageQueue>,
    pub audit: AuditTrail,
    pub clock: Arc<dyn Clock>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

impl RelationshipRemovalService {
    /// Previews removing the chosen relationships (each once, in the order given).
    ///
    /// # Errors
    /// Forbidden without `relationships:remove`; Invalid for an empty or too long list;
    /// NotFound for an id the MSP's partner tenant did not list (also another MSP's).
    pub async fn preview(&self, access: &Access, request: &PreviewRequest) -> Result<PreviewResponse, AdminError> {
        access.permit(Permission::RelationshipsRemove)?;
        let mut ids: Vec<&str> = Vec::new();
        for id in &request.relationship_ids {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        if ids.is_empty() || ids.len() > MAX_PER_PREVIEW {
            return Err(AdminError::Invalid(format!("relationship_ids: give 1 to {MAX_PER_PREVIEW} relationship ids")));
        }
        for (id, address) in &request.notify {
            if !ids.contains(&id.as_str()) {
                return Err(AdminError::Invalid(format!("notify: {id:?} is not one of relationship_ids")));
            }
            crate::mail::check_address(address).map_err(|reason| AdminError::Invalid(format!("notify.{id}: {reason}")))?;
        }
        let relationships = self.store.relationships(access.msp_id()).await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let relationship =
                relationships.iter().find(|r| r.id == id).ok_or_else(|| AdminError::NotFound(format!("admin relationship {id:?}")))?;
            let others_live = relationships.iter().any(|other| {
                other.id != relationship.id && other.customer_tenant_id == relationship.customer_tenant_id && other.status.grants_access()
            });
            let mut item = RemovalPreviewItem::of(relationship, others_live);
            item.notify = request.notify.get(id).cloned().filter(|_| item.removable);
            if let Some(address) = &item.notify {
                item.consequences.push(format!("{address} is told by e-mail once it is removed."));
            }
            items.push(item);
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AdminError::Random(e.to_string()))?;
        let token = SecretString::new(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)));
        let now = self.clock.now();
        let preview = RemovalPreview {
            msp_id: access.msp_id().clone(),
            token_hash: token_hash(token.expose()),
            items: items.clone(),
            created_by: access.actor(),
            created_at: now,
            expires_at: now + Duration::minutes(PREVIEW_MINUTES),
        };
        self.store.put_preview(&preview).await?;
        let chosen: Vec<&str> = items.iter().map(|i| i.relationship_id.as_str()).collect();
        self.audit.record(access, "admin-relationship.removal-previewed", chosen.join(", ")).await?;
        let removable = items.iter().filter(|i| i.removable).count();
        Ok(PreviewResponse { token, expires_at: preview.expires_at, items, removable })
    }

    /// Confirms a preview: records a removal per removable relationship not already being
    /// removed and queues its job. The token is used up whatever happens next; a removal whose
    /// job could not be queued is picked up by the poller's tick
    /// ([`crate::services::poll::RESUME_REMOVALS_AFTER_MINUTES`]).
    ///
    /// # Errors
    /// Forbidden without `relationships:remove`; NotFound for a token this MSP never got (or
    /// one already used); Refused (409) for an expired one.
    pub async fn confirm(&self, access: &Access, request: &ConfirmRequest) -> Result<Vec<Removal>, AdminError> {
        access.permit(Permission::RelationshipsRemove)?;
        let preview = self
            .store
            .take_preview(access.msp_id(), &token_hash(request.token.expose()))
            .await?
            .ok_or_else(|| AdminError::NotFound("removal preview (the token is unknown or was used)".into()))?;
        let now = self.clock.now();
        if now > preview.expires_at {
            return Err(AdminError::Refused(format!(
                "the preview expired at {} ({PREVIEW_MINUTES} minutes after it was made); ask for a new one",
                preview.expires_at.to_rfc3339()
            )));
        }
        let confirmer = access.actor();
        let requested_by =
            if preview.created_by == confirmer { confirmer } else { format!("{confirmer}, previewed by {}", preview.created_by) };
        let mut removals = Vec::new();
        let mut jobs = Vec::new();
        for item in preview.items.iter().filter(|i| i.removable) {
            let removal = Removal {
                msp_id: access.msp_id().clone(),
                relationship_id: item.relationship_id.clone(),
                relationship_name: item.relationship_name.clone(),
                customer_tenant_id: item.customer_tenant_id.clone(),
                customer_name: item.customer_name.clone(),
                status: RemovalStatus::Requested,
                requested_by: requested_by.clone(),
                requested_at: now,
                request_id: None,
                completed_at: None,
                error: None,
                notify: item.notify.clone(),
                notification: None,
            };
            let (recorded, fresh) = match self.store.removal(access.msp_id(), &item.relationship_id).await? {
                // A failed removal may be asked for again; one under way or done is left alone.
                Some(earlier) if earlier.status == RemovalStatus::Failed => {
                    self.store.put_removal(&removal).await?;
                    (removal, true)
                }
                Some(earlier) => (earlier, false),
                None if self.store.create_removal(&removal).await? => (removal, true),
                None => (self.store.removal(access.msp_id(), &item.relationship_id).await?.unwrap_or(removal), false),
            };
            if fresh {
                jobs.push(
                    serde_json::to_string(&PollJob::RemoveRelationship {
                        msp_id: access.msp_id().clone(),
                        relationship_id: recorded.relationship_id.clone(),
                    })
                    .unwrap_or_else(|_| unreachable!("jobs always serialise")),
                );
                self.audit
                    .record(
                        access,
                        "admin-relationship.removal-confirmed",
                        format!("{} ({}, customer {})", recorded.relationship_id, recorded.relationship_name, recorded.customer_name),
                    )
                    .await?;
            }
            removals.push(recorded);
        }
        self.jobs.send_all(&jobs).await?;
        Ok(removals)
    }

    /// Every removal of the MSP, newest first.
    ///
    /// # Errors
    /// Forbidden without config:read, or for a principal limited to categories other than
    /// Permissions (as the report).
    pub async fn removals(&self, access: &Access) -> Result<Vec<Removal>, AdminError> {
        access.permit(Permission::ConfigRead)?;
        if !access.sees(crate::alert::Category::Permissions) {
            return Err(AdminError::Forbidden("admin-relationship removals need the Permissions alert category".into()));
        }
        let mut removals = self.store.removals(access.msp_id()).await?;
        removals.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then_with(|| a.relationship_id.cmp(&b.relationship_id)));
        Ok(removals)
    }
}

#[cfg(test)]
#[path = "relationship_removal_tests.rs"]
mod tests;
