//! The daily read of each MSP's own partner tenant: its GDAP relationships with customers
//! ([`crate::ports::AdminRelationshipSource`]) replace what the report is built from
//! ([`crate::ports::RelationshipStore`]), and how the read went is kept beside them. The tick
//! sends one job per MSP whose partner tenant is connected and was last read
//! `partner_read_every_hours` ago or more (default [`READ_EVERY_HOURS`]); the job is retried while the failure is transient.
//!
//! Each successful read also compares the findings that hold now with those raised before
//! ([`crate::relationships::findings`]) and sends the new and cleared ones to the evaluator as
//! Vigil's own events, one message per customer tenant: the built-in admin-relationship
//! policies turn them into alerts and resolve them. The events are sent before the findings
//! are stored, and they carry the tick's time, so a retried job sends the same events again
//! (the evaluator counts a record once) rather than losing or doubling one.

use super::to_json;
use super::{PollError, PollReport, PollService};
use crate::error::{Classified, ErrorClass};
use crate::ids::{AuditStream, ContentType, MspId, TenantId};
use crate::messages::{ADMIN_RELATIONSHIP_EVENTS, AuditEventsMessage, PollJob};
use crate::ports::SecretName;
use crate::relationships::activity::{activity_from_sign_ins, read_since};
use crate::relationships::findings::{FindingInputs, Transition, finding_event, transitions};
use crate::relationships::removal::RemovalStatus;
use crate::relationships::{AdminRelationship, PartnerActivity, RelationshipRefreshState};
use crate::tenant::{M365AppCredentials, Tenant};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

/// How often a partner tenant is read by default ([`crate::tenant::Msp::partner_read_every_hours`]).
pub const READ_EVERY_HOURS: i64 = crate::tenant::Msp::DEFAULT_PARTNER_READ_EVERY_HOURS as i64;
/// The partner-tenant jobs of a tick: those sent at once, and those sent after the head start.
#[derive(Debug, Default)]
pub(super) struct PartnerJobs {
    pub(super) now: Vec<PollJob>,
    pub(super) after_head_start: Vec<PollJob>,
}

/// Findings events per message (each is about 1 KB).
const EVENTS_PER_MESSAGE: usize = 100;

impl PollService {
    /// The jobs the tick sends for partner tenants due for a read (MSPs with at least one
    /// tenant, a partner tenant connected, and no read in the last `partner_read_every_hours`):
    /// first, one read of each of the MSP's tenants' sign-in logs; then, delayed by
    /// [`super::PollSettings::partner_read_head_start`] so they are done, the read of the
    /// partner tenant. Removals to resume go at once too.
    pub(super) async fn partner_jobs(&self, tenants: &[Tenant]) -> Result<PartnerJobs, PollError> {
        let msps: BTreeSet<&MspId> = tenants.iter().map(|t| &t.msp_id).collect();
        let now = self.clock.now();
        let mut jobs = PartnerJobs::default();
        for msp_id in msps {
            let Some(msp) = self.config.get_msp(msp_id).await? else { continue };
            if msp.partner_tenant_id.is_none() {
                continue;
            }
            let last = self.relationships.refresh_state(msp_id).await?;
            if last.as_ref().is_none_or(|read| now - read.at >= Duration::hours(i64::from(msp.partner_read_every_hours))) {
                let since = read_since(last.and_then(|read| read.last_success), now);
                jobs.now.extend(
                    tenants.iter().filter(|t| &t.msp_id == msp_id && t.m365_credentials_set).map(|t| PollJob::CustomerSignIns {
                        msp_id: msp_id.clone(),
                        tenant_id: t.tenant_id.clone(),
                        since,
                    }),
                );
                jobs.after_head_start.push(PollJob::AdminRelationships { msp_id: msp_id.clone(), at: Some(now) });
            }
            jobs.now.extend(self.removals_to_resume(msp_id, now).await?);
        }
        Ok(jobs)
    }

    /// Reads one customer tenant's sign-in logs for sign-ins of the MSP's partner technicians
    /// (`homeTenantId` the partner tenant, `crossTenantAccessType` `serviceProvider`, successful)
    /// and notes the latest as partner activity. A tenant that does not allow it (no
    /// `AuditLog.Read.All` consented, no Entra ID P1/P2) is skipped: the partner tenant's own
    /// sign-in logs and the audit records still count.
    ///
    /// # Errors
    /// Transient failures, for the queue to retry.
    pub async fn read_customer_sign_ins(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<PollReport, PollError> {
        let Some(partner) = self.config.get_msp(msp_id).await?.and_then(|msp| msp.partner_tenant_id) else {
            return Ok(PollReport::default());
        };
        let Some(tenant) = self.config.get_tenant(msp_id, tenant_id).await?.filter(|t| t.offboarded_at.is_none()) else {
            return Ok(PollReport::default());
        };
        let credentials = match self.credentials(&tenant).await {
            Ok(credentials) => credentials,
            Err(PollError::MissingCredentials(_)) => return Ok(PollReport::default()),
            Err(error) => return Err(error),
        };
        match self.relationship_source.sign_ins(tenant_id, &credentials, since).await {
            Ok(sign_ins) => {
                let latest = sign_ins
                    .iter()
                    .filter(|s| s.cross_tenant_access_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("serviceProvider")))
                    .filter(|s| s.partner_sign_in_into(&partner).as_ref() == Some(tenant_id))
                    .map(|s| s.created_date_time)
                    .max();
                if let Some(at) = latest {
                    self.relationships.note_partner_action(msp_id, tenant_id, at).await?;
                }
                Ok(PollReport::default())
            }
            Err(error) if error.class() == ErrorClass::Transient => Err(error.into()),
            Err(error) => {
                info!(message = "A customer's sign-in logs are not readable; its partner activity comes from the other signals.", msp_id = %msp_id, tenant_id = %tenant_id, %error);
                Ok(PollReport::default())
            }
        }
    }

    /// Reads the MSP's partner tenant and keeps its relationships. An MSP no longer connected
    /// is skipped; a refused read is recorded (the report says so) and not retried until the
    /// next day; a transient one is retried.
    ///
    /// # Errors
    /// Transient failures (throttling, outages) and store failures, for the queue to retry.
    pub async fn read_partner_tenant(&self, msp_id: &MspId, at: Option<DateTime<Utc>>) -> Result<PollReport, PollError> {
        let Some(msp) = self.config.get_msp(msp_id).await? else { return Ok(PollReport::default()) };
        let Some(partner) = msp.partner_tenant_id else { return Ok(PollReport::default()) };
        let now = self.clock.now();
        let previous = self.relationships.refresh_state(msp_id).await?;
        let read = match self.partner_credentials(msp_id).await? {
            Some(credentials) => match self.relationship_source.relationships(&partner, &credentials).await {
                Ok(relationships) => Ok((relationships, credentials)),
                Err(error) => Err(PollError::from(error)),
            },
            None => Err(PollError::MissingCredentials(format!("partner tenant {partner}"))),
        };
        match read {
            Ok((relationships, credentials)) => {
                let last_success = previous.as_ref().and_then(|p| p.last_success);
                let activity_error = self.read_partner_activity(msp_id, &partner, &credentials, last_success, now).await?;
                self.announce_findings(msp_id, &relationships, at.unwrap_or(now)).await?;
                self.relationships.replace_relationships(msp_id, &relationships).await?;
                let state = RelationshipRefreshState {
                    at: now,
                    relationships: relationships.len(),
                    error: None,
                    last_success: Some(now),
                    activity_error,
                };
                self.relationships.put_refresh(msp_id, &state).await?;
                info!(message = "Partner tenant read.", msp_id = %msp_id, relationships = relationships.len());
                Ok(PollReport::default())
            }
            Err(error) => {
                let state = RelationshipRefreshState {
                    at: now,
                    relationships: previous.as_ref().map_or(0, |p| p.relationships),
                    error: Some(error.to_string()),
                    activity_error: previous.as_ref().and_then(|p| p.activity_error.clone()),
                    last_success: previous.and_then(|p| p.last_success),
                };
                self.relationships.put_refresh(msp_id, &state).await?;
                warn!(message = "Could not read the partner tenant.", msp_id = %msp_id, error_class = error.class().as_str(), %error);
                if error.class() == ErrorClass::Transient { Err(error) } else { Ok(PollReport::default()) }
            }
        }
    }

    /// Reads the partner tenant's sign-ins since the last read (a day's overlap) and keeps each
    /// customer's partner activity. A refusal (no `AuditLog.Read.All`, no Entra ID P1/P2) is
    /// returned as text for the report, the relationships are still read; throttling and outages
    /// fail the job, which is retried.
    async fn read_partner_activity(
        &self,
        msp_id: &MspId,
        partner: &TenantId,
        credentials: &M365AppCredentials,
        last_success: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, PollError> {
        let since = read_since(last_success, now);
        match self.relationship_source.sign_ins(partner, credentials, since).await {
            Ok(sign_ins) => {
                let known = self.relationships.activities(msp_id).await?;
                let merged = activity_from_sign_ins(&sign_ins, partner, &known, now);
                for (customer, activity) in &merged {
                    if known.get(customer) != Some(activity) {
                        self.relationships.put_activity(msp_id, customer, activity).await?;
                    }
                }
                info!(message = "Partner sign-ins read.", msp_id = %msp_id, sign_ins = sign_ins.len(), customers = merged.len());
                Ok(None)
            }
            Err(error) if error.class() == ErrorClass::Transient => Err(error.into()),
            Err(error) => {
                warn!(message = "Could not read the partner tenant's sign-ins; inactivity counts from the last activity known.", msp_id = %msp_id, %error);
                Ok(Some(error.to_string()))
            }
        }
    }

    /// The MSP's partner-tenant app credentials (`None`: none usable are stored).
    pub(super) async fn partner_credentials(&self, msp_id: &MspId) -> Result<Option<M365AppCredentials>, PollError> {
        let secret = self.secrets.get_secret(&SecretName::partner_app(msp_id)).await?;
        Ok(secret.and_then(|s| serde_json::from_str::<M365AppCredentials>(s.expose()).ok()).map(|c| c.held_by(msp_id)))
    }

    /// Sends the findings that start or stop holding with this read, then stores what is
    /// raised.
    async fn announce_findings(&self, msp_id: &MspId, relationships: &[AdminRelationship], at: DateTime<Utc>) -> Result<(), PollError> {
        let previous = self.relationships.relationships(msp_id).await?;
        let activities = self.relationships.activity_by_customer(msp_id).await?;
        let raised = self.relationships.findings(msp_id).await?;
        // Removals under way (finished by their own jobs, resumed by the tick) are Vigil's doing.
        let removals = self.relationships.removals(msp_id).await?;
        let removed_by_vigil: BTreeSet<String> =
            removals.into_iter().filter(|r| r.status != RemovalStatus::Failed).map(|r| r.relationship_id).collect();
        let inputs = FindingInputs {
            relationships,
            previous: &previous,
            activities: &activities,
            raised: &raised,
            removed_by_vigil: &removed_by_vigil,
            now: at,
        };
        let (changes, after) = transitions(&inputs);
        self.send_findings(msp_id, &changes, &activities, at).await?;
        let touched: BTreeSet<&str> = changes.iter().map(|t| t.relationship.id.as_str()).collect();
        for id in touched {
            self.relationships.put_findings(msp_id, id, after.get(id).map(Vec::as_slice).unwrap_or_default()).await?;
        }
        if !changes.is_empty() {
            let raised = changes.iter().filter(|t| t.raised).count();
            info!(message = "Admin-relationship findings changed.", msp_id = %msp_id, raised, cleared = changes.len() - raised);
        }
        Ok(())
    }

    /// Sends findings events: one message per customer tenant (split past
    /// [`EVENTS_PER_MESSAGE`]).
    pub(super) async fn send_findings(
        &self,
        msp_id: &MspId,
        changes: &[Transition<'_>],
        activities: &BTreeMap<TenantId, PartnerActivity>,
        at: DateTime<Utc>,
    ) -> Result<(), PollError> {
        let mut by_customer: BTreeMap<&TenantId, Vec<serde_json::Value>> = BTreeMap::new();
        for change in changes {
            let customer = &change.relationship.customer_tenant_id;
            let activity = activities.get(customer).cloned().unwrap_or_default();
            by_customer.entry(customer).or_default().push(finding_event(change, &activity, at));
        }
        let mut messages = Vec::new();
        for (customer, records) in by_customer {
            for chunk in records.chunks(EVENTS_PER_MESSAGE) {
                messages.push(to_json(&AuditEventsMessage {
                    msp_id: msp_id.clone(),
                    tenant_id: customer.clone(),
                    // Delegated admin access is an Entra ID matter; the stream only labels the
                    // message (Vigil's own events are told apart by their label).
                    stream: AuditStream::Content(ContentType::AzureActiveDirectory),
                    content_id: ADMIN_RELATIONSHIP_EVENTS.to_owned(),
                    records: chunk.to_vec(),
                }));
            }
        }
        if !messages.is_empty() {
            self.events.send_all(&messages).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "relationships_tests.rs"]
mod tests;
