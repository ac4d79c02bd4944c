//! The daily read of each MSP's own partner tenant: its GDAP relationships with customers
//! ([`crate::ports::AdminRelationshipSource`]) replace what the report is built from
//! ([`crate::ports::RelationshipStore`]), and how the read went is kept beside them. The tick
//! sends one job per MSP whose partner tenant is connected and was last read
//! [`READ_EVERY_HOURS`] ago or more; the job is retried while the failure is transient.

use super::{PollError, PollReport, PollService};
use crate::ids::MspId;
use crate::messages::PollJob;
use crate::ports::SecretName;
use crate::relationships::RelationshipRefreshState;
use crate::tenant::{M365AppCredentials, Tenant};
use chrono::Duration;
use std::collections::BTreeSet;
use tracing::{info, warn};

/// How often a partner tenant is read.
pub const READ_EVERY_HOURS: i64 = 24;

impl PollService {
    /// The jobs the tick sends for partner tenants due for a read: MSPs with at least one
    /// tenant, a partner tenant connected, and no read in the last [`READ_EVERY_HOURS`].
    pub(super) async fn partner_jobs(&self, tenants: &[Tenant]) -> Result<Vec<PollJob>, PollError> {
        let msps: BTreeSet<&MspId> = tenants.iter().map(|t| &t.msp_id).collect();
        let now = self.clock.now();
        let mut jobs = Vec::new();
        for msp_id in msps {
            let Some(msp) = self.config.get_msp(msp_id).await? else { continue };
            if msp.partner_tenant_id.is_none() {
                continue;
            }
            let last = self.relationships.refresh_state(msp_id).await?;
            if last.is_none_or(|read| now - read.at >= Duration::hours(READ_EVERY_HOURS)) {
                jobs.push(PollJob::AdminRelationships { msp_id: msp_id.clone() });
            }
        }
        Ok(jobs)
    }

    /// Reads the MSP's partner tenant and keeps its relationships. An MSP no longer connected
    /// is skipped; a refused read is recorded (the report says so) and not retried until the
    /// next day; a transient one is retried.
    ///
    /// # Errors
    /// Transient failures (throttling, outages) and store failures, for the queue to retry.
    pub async fn read_partner_tenant(&self, msp_id: &MspId) -> Result<PollReport, PollError> {
        let Some(msp) = self.config.get_msp(msp_id).await? else { return Ok(PollReport::default()) };
        let Some(partner) = msp.partner_tenant_id else { return Ok(PollReport::default()) };
        let now = self.clock.now();
        let previous = self.relationships.refresh_state(msp_id).await?;
        let secret = self.secrets.get_secret(&SecretName::partner_app(msp_id)).await?;
        let credentials = secret.and_then(|s| serde_json::from_str::<M365AppCredentials>(s.expose()).ok()).map(|c| c.held_by(msp_id));
        let read = match credentials {
            Some(credentials) => self.relationship_source.relationships(&partner, &credentials).await.map_err(PollError::from),
            None => Err(PollError::MissingCredentials(format!("partner tenant {partner}"))),
        };
        match read {
            Ok(relationships) => {
                self.relationships.replace_relationships(msp_id, &relationships).await?;
                let state = RelationshipRefreshState { at: now, relationships: relationships.len(), error: None, last_success: Some(now) };
                self.relationships.put_refresh(msp_id, &state).await?;
                info!(message = "Partner tenant read.", msp_id = %msp_id, relationships = relationships.len());
                Ok(PollReport::default())
            }
            Err(error) => {
                let state = RelationshipRefreshState {
                    at: now,
                    relationships: previous.as_ref().map_or(0, |p| p.relationships),
                    error: Some(error.to_string()),
                    last_success: previous.and_then(|p| p.last_success),
                };
                self.relationships.put_refresh(msp_id, &state).await?;
                warn!(message = "Could not read the partner tenant.", msp_id = %msp_id, error_class = crate::error::Classified::class(&error).as_str(), %error);
                if crate::error::Classified::class(&error) == crate::error::ErrorClass::Transient {
                    Err(error)
                } else {
                    Ok(PollReport::default())
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "relationships_tests.rs"]
mod tests;
