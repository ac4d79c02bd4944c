//! Offboarding a customer tenant (see [`crate::offboarding`] for the phases and the record).
//!
//! - [`OffboardingRequests`] is the config API's side: `POST /v1/tenants/{t}/offboarding`
//!   stores the record (once), marks the tenant offboarded (the tick skips it, webhooks for it
//!   are refused, its company links go), writes one entry in the MSP's audit log and sends an
//!   [`OffboardingJob`] to the audit-poller, which holds the tenant's Microsoft credentials.
//!   `GET` shows how far it got and what was removed.
//! - [`OffboardingRunner`] is the audit-poller's: the job stops Microsoft's subscriptions
//!   (and with them the webhooks), deletes the credentials, and once the retention has passed
//!   purges every kind of the tenant's data page by page; the tick sends the job again for
//!   purges that fell due and for work that stalled.
//!
//! Each step is written down in the record before the next begins, so a job retried after a
//! crash goes on where the last write left it; a purge page's keys are written before they are
//! deleted, so the counts are the same wherever a crash fell. Every key deleted is checked to
//! lie under the MSP's own partition first.

use super::admin::AdminError;
use crate::access::{Access, AuditEntry, Permission};
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, QueueError, SecretError, SourceError, StoreError};
use crate::ids::{AuditStream, ContentType, MspId, TenantId};
use crate::offboarding::{
    DataKind, Offboarding, OffboardingPhase, OffboardingRequest, PendingPage, RETENTION_DAYS_DEFAULT, RETENTION_DAYS_MAX, tenant_key,
};
use crate::ports::{
    AuditLog, ConfigStore, MessageQueue, OffboardingStore, SecretName, SecretStore, SubscriptionManager, TenantChange, TenantData,
};
use crate::tenant::M365AppCredentials;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tracing::{info, warn};

/// Work for the audit-poller (on the poll-jobs queue): carry the tenant's offboarding as far as
/// it is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OffboardingJob {
    OffboardTenant { msp_id: MspId, tenant_id: TenantId },
}

impl OffboardingJob {
    /// The job as a queue message body.
    #[must_use]
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("jobs always serialise"))
    }

    /// The job in a poll-jobs message body, if the body is one (any other body is a poll job).
    #[must_use]
    pub fn parse(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }
}

/// The audit log entry of an offboarding step: its id is fixed by the record (time, tenant key
/// and action), so writing it again on a retry replaces the same entry instead of adding one.
fn audit_entry(offboarding: &Offboarding, at: DateTime<Utc>, action: &str, target: String) -> AuditEntry {
    AuditEntry {
        msp_id: offboarding.msp_id.clone(),
        entry_id: format!(
            "{:013}-{}",
            at.timestamp_millis().max(0),
            &hex::encode(Sha256::digest(format!("{}:{action}", offboarding.tenant_key)))[..12]
        ),
        at,
        actor: offboarding.requested_by.clone(),
        action: action.to_owned(),
        target,
    }
}

/// The content types whose subscriptions an offboarding stops.
fn content_types(streams: Option<&Vec<AuditStream>>) -> Vec<ContentType> {
    streams.cloned().unwrap_or_else(AuditStream::all).into_iter().filter_map(AuditStream::content_type).collect()
}

/// The config API's offboarding use cases.
pub struct OffboardingRequests {
    pub config: Arc<dyn ConfigStore>,
    pub offboardings: Arc<dyn OffboardingStore>,
    pub audit: Arc<dyn AuditLog>,
    /// The poll-jobs queue.
    pub jobs: Arc<dyn MessageQueue>,
    pub clock: Arc<dyn Clock>,
}

impl OffboardingRequests {
    /// Starts offboarding the tenant, or returns the offboarding already under way (then
    /// `false`: nothing new is recorded; the first request's retention holds). Any step of an
    /// earlier request that a crash cut short (the mark, the audit entry, the job) is done again.
    ///
    /// # Errors
    /// Forbidden without `tenants:offboard`; Invalid retention (more than 365 days); NotFound
    /// for a tenant the MSP does not have (and never offboarded); store and queue failures.
    pub async fn request(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        request: &OffboardingRequest,
    ) -> Result<(Offboarding, bool), AdminError> {
        let msp_id = access.permit(Permission::TenantsOffboard)?;
        let retention_days = request.retention_days.unwrap_or(RETENTION_DAYS_DEFAULT);
        if retention_days > RETENTION_DAYS_MAX {
            return Err(AdminError::Invalid(format!("retention_days: 0 to {RETENTION_DAYS_MAX}")));
        }
        let key = tenant_key(msp_id, tenant_id);
        let existing = self.offboardings.get_offboarding(msp_id, &key).await?;
        let tenant = self.config.get_tenant(msp_id, tenant_id).await?;
        let (offboarding, created) = match (existing, tenant) {
            (Some(existing), _) if existing.phase != OffboardingPhase::Purged => (existing, false),
            // Purged, and the tenant not registered again since (a tenant still marked is the
            // one this record purged).
            (Some(existing), None) => return Ok((existing, false)),
            (Some(existing), Some(tenant)) if tenant.offboarded_at.is_some() => return Ok((existing, false)),
            (None, None) => return Err(AdminError::NotFound(format!("tenant {tenant_id}"))),
            (previous, Some(tenant)) => {
                let now = self.clock.now();
                let types = if tenant.m365_credentials_set { content_types(tenant.streams.as_ref()) } else { Vec::new() };
                let links = tenant.company_links.len() + usize::from(tenant.legacy_connectwise_company_id.is_some());
                let mut offboarding = Offboarding {
                    msp_id: msp_id.clone(),
                    tenant_key: key.clone(),
                    tenant_id: Some(tenant_id.clone()),
                    requested_at: now,
                    requested_by: access.actor_ref(),
                    retention_days,
                    purge_after: now + Duration::days(i64::from(retention_days)),
                    phase: OffboardingPhase::Stopping,
                    content_types: types,
                    had_credentials: tenant.m365_credentials_set,
                    subscriptions_stopped: false,
                    subscriptions_note: None,
                    credentials_deleted: false,
                    report: [("company_links".to_owned(), links as u64)].into_iter().collect(),
                    purged: Vec::new(),
                    cursor: None,
                    pending: None,
                    kind_count: 0,
                    updated_at: now,
                    completed_at: None,
                    version: previous.as_ref().map_or(0, |p| p.version),
                };
                let created = match previous {
                    // The tenant came back after an earlier purge: its new offboarding replaces
                    // that record (conditional on its version).
                    Some(_) => {
                        self.offboardings.save_offboarding(&mut offboarding).await?;
                        true
                    }
                    None => {
                        offboarding.version = 1;
                        self.offboardings.create_offboarding(&offboarding).await?
                    }
                };
                if created {
                    (offboarding, true)
                } else {
                    // Another request made it a moment ago: that one holds.
                    let stored = self.offboardings.get_offboarding(msp_id, &key).await?;
                    (stored.ok_or_else(|| StoreError::Conflict { what: "offboarding".into() })?, false)
                }
            }
        };
        if offboarding.phase == OffboardingPhase::Purged {
            return Ok((offboarding, created));
        }
        self.config.update_tenant(msp_id, tenant_id, &TenantChange::Offboarded(offboarding.requested_at)).await?;
        let target = format!("tenant {tenant_id} (retention {} days)", offboarding.retention_days);
        self.audit.append(&audit_entry(&offboarding, offboarding.requested_at, "tenant.offboarded", target)).await?;
        self.jobs.send_all(&[OffboardingJob::OffboardTenant { msp_id: msp_id.clone(), tenant_id: tenant_id.clone() }.body()]).await?;
        if created {
            info!(message = "Tenant offboarding requested.", msp_id = %msp_id, tenant_id = %tenant_id, retention_days = offboarding.retention_days);
        }
        Ok((offboarding, created))
    }

    /// The tenant's offboarding.
    ///
    /// # Errors
    /// Forbidden without `config:read`; NotFound when the tenant was never offboarded.
    pub async fn status(&self, access: &Access, tenant_id: &TenantId) -> Result<Offboarding, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        self.offboardings
            .get_offboarding(msp_id, &tenant_key(msp_id, tenant_id))
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("offboarding of tenant {tenant_id}")))
    }
}

/// Why an offboarding step failed; the job is retried or dead-lettered by its class.
#[derive(Debug, thiserror::Error)]
pub enum OffboardingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A store listed a key outside the MSP's partition: nothing of the page is deleted.
    #[error("refusing to delete {key}: it is not under MSP {msp_id}")]
    ForeignKey { msp_id: String, key: String },
}

impl Classified for OffboardingError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Store(e) => e.class(),
            Self::Secret(e) => e.class(),
            Self::Source(e) => e.class(),
            Self::Queue(e) => e.class(),
            Self::ForeignKey { .. } => ErrorClass::Permanent,
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Source(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Tunables of the runner.
#[derive(Debug, Clone)]
pub struct OffboardingSettings {
    /// How long one job purges before it hands on to a follow-up job (under the poller's
    /// timeout).
    pub run_budget: std::time::Duration,
    /// How long an unfinished phase may stay unchanged before the tick sends its job again.
    pub stalled_after: Duration,
}

impl Default for OffboardingSettings {
    fn default() -> Self {
        Self { run_budget: std::time::Duration::from_secs(80), stalled_after: Duration::minutes(15) }
    }
}

/// The audit-poller's offboarding use cases: the job, and the tick's look for due work.
pub struct OffboardingRunner {
    pub config: Arc<dyn ConfigStore>,
    pub offboardings: Arc<dyn OffboardingStore>,
    pub data: Arc<dyn TenantData>,
    pub secrets: Arc<dyn SecretStore>,
    pub subscriptions: Arc<dyn SubscriptionManager>,
    pub audit: Arc<dyn AuditLog>,
    /// The poll-jobs queue (follow-up jobs, and the tick's).
    pub jobs: Arc<dyn MessageQueue>,
    pub clock: Arc<dyn Clock>,
    pub settings: OffboardingSettings,
}

impl OffboardingRunner {
    /// The tick: sends the job of every offboarding whose purge fell due or whose work stalled.
    ///
    /// # Errors
    /// When the records cannot be listed or the jobs sent.
    pub async fn send_due_jobs(&self) -> Result<usize, OffboardingError> {
        let now = self.clock.now();
        let jobs: Vec<String> = self
            .offboardings
            .list_unfinished_offboardings()
            .await?
            .into_iter()
            .filter(|o| o.needs_a_job(now, self.settings.stalled_after))
            .filter_map(|o| o.tenant_id.map(|tenant_id| OffboardingJob::OffboardTenant { msp_id: o.msp_id, tenant_id }.body()))
            .collect();
        if !jobs.is_empty() {
            self.jobs.send_all(&jobs).await?;
            info!(message = "Offboarding jobs sent.", jobs = jobs.len());
        }
        Ok(jobs.len())
    }

    /// Runs one job: carries the offboarding as far as it is due and returns the record.
    /// `None` when the tenant has no offboarding (nothing to do).
    ///
    /// # Errors
    /// See [`OffboardingError`]; a conflict with another run of the same job is transient.
    pub async fn run(&self, job: &OffboardingJob) -> Result<Option<Offboarding>, OffboardingError> {
        let OffboardingJob::OffboardTenant { msp_id, tenant_id } = job;
        let Some(mut offboarding) = self.offboardings.get_offboarding(msp_id, &tenant_key(msp_id, tenant_id)).await? else {
            warn!(message = "No offboarding for this job; nothing to do.", msp_id = %msp_id, tenant_id = %tenant_id);
            return Ok(None);
        };
        let deadline = std::time::Instant::now() + self.settings.run_budget;
        loop {
            match offboarding.phase {
                OffboardingPhase::Stopping => self.stop(&mut offboarding, tenant_id).await?,
                OffboardingPhase::Retained if offboarding.purge_due(self.clock.now()) => {
                    offboarding.phase = OffboardingPhase::Purging;
                    self.save(&mut offboarding).await?;
                }
                OffboardingPhase::Retained => return Ok(Some(offboarding)),
                OffboardingPhase::Purging => {
                    if !self.purge(&mut offboarding, tenant_id, deadline).await? {
                        self.jobs.send_all(&[job.body()]).await?;
                        info!(message = "Purge continues in a follow-up job.", msp_id = %msp_id, tenant_id = %tenant_id);
                        return Ok(Some(offboarding));
                    }
                }
                OffboardingPhase::Purged => {
                    let at = offboarding.completed_at.unwrap_or(offboarding.updated_at);
                    let removed: Vec<String> = offboarding.report.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
                    let target = format!("tenant {tenant_id}: removed {}", removed.join(", "));
                    self.audit.append(&audit_entry(&offboarding, at, "tenant.purged", target)).await?;
                    return Ok(Some(offboarding));
                }
            }
        }
    }

    async fn save(&self, offboarding: &mut Offboarding) -> Result<(), OffboardingError> {
        offboarding.updated_at = self.clock.now();
        self.offboardings.save_offboarding(offboarding).await?;
        Ok(())
    }

    /// The stop phase: the mark (again, in case the request was cut short), Microsoft's
    /// subscriptions, the credentials.
    async fn stop(&self, offboarding: &mut Offboarding, tenant_id: &TenantId) -> Result<(), OffboardingError> {
        let msp_id = offboarding.msp_id.clone();
        self.config.update_tenant(&msp_id, tenant_id, &TenantChange::Offboarded(offboarding.requested_at)).await?;
        let name = SecretName::m365_app(&msp_id, tenant_id);
        if !offboarding.subscriptions_stopped {
            let (stopped, note) = self.stop_subscriptions(offboarding, tenant_id, &name).await?;
            offboarding.report.insert("subscriptions".into(), stopped);
            offboarding.subscriptions_note = note;
            offboarding.subscriptions_stopped = true;
            self.save(offboarding).await?;
        }
        if !offboarding.credentials_deleted {
            self.secrets.delete_secret(&name).await?;
            offboarding.report.insert("credentials".into(), u64::from(offboarding.had_credentials));
            offboarding.credentials_deleted = true;
        }
        offboarding.phase = OffboardingPhase::Retained;
        self.save(offboarding).await?;
        info!(message = "Tenant stopped; its data is kept until the purge.", msp_id = %msp_id, tenant_id = %tenant_id, purge_after = %offboarding.purge_after);
        Ok(())
    }

    /// Stops each content type's subscription; how many, and why none could be if so.
    async fn stop_subscriptions(
        &self,
        offboarding: &Offboarding,
        tenant_id: &TenantId,
        name: &SecretName,
    ) -> Result<(u64, Option<String>), OffboardingError> {
        let types = offboarding.content_types.clone();
        if types.is_empty() {
            return Ok((0, None));
        }
        let Some(secret) = self.secrets.get_secret(name).await? else {
            return Ok((0, Some("no Microsoft credentials were stored: Vigil could not stop the subscriptions".into())));
        };
        let credentials: M365AppCredentials =
            serde_json::from_str(secret.expose()).map_err(|_| SecretError::Malformed { name: name.as_str().to_owned() })?;
        let mut credentials = credentials.held_by(&offboarding.msp_id);
        credentials.publisher_identifier =
            self.config.get_msp(&offboarding.msp_id).await?.and_then(|m| m.publisher_identifier).map(|p| p.to_string());
        let mut stopped = 0;
        for content_type in types {
            match self.subscriptions.stop_subscription(tenant_id, &credentials, content_type).await {
                Ok(()) => stopped += 1,
                Err(SourceError::AccessRefused { code, message }) => {
                    // The customer already removed Vigil's access: Microsoft ends the
                    // subscriptions itself; nothing more Vigil can do.
                    let note = format!("Microsoft refused access ({code}: {message}); the subscriptions could not be stopped");
                    return Ok((stopped, Some(crate::messages::truncate_to(&note, 300).to_owned())));
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok((stopped, None))
    }

    /// Purges kind after kind until done (`true`) or the run's budget is spent (`false`).
    async fn purge(
        &self,
        offboarding: &mut Offboarding,
        tenant_id: &TenantId,
        deadline: std::time::Instant,
    ) -> Result<bool, OffboardingError> {
        let msp_id = offboarding.msp_id.clone();
        while let Some(kind) = offboarding.next_kind() {
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            if let Some(pending) = offboarding.pending.take() {
                self.delete_page(&msp_id, &pending).await?;
                offboarding.kind_count += pending.keys.len() as u64;
                offboarding.cursor = pending.next;
                if offboarding.cursor.is_none() {
                    Self::finish_kind(offboarding, pending.kind);
                }
                self.save(offboarding).await?;
                continue;
            }
            let page = self.data.page(&msp_id, tenant_id, kind, offboarding.cursor.as_deref()).await?;
            match (page.keys.is_empty(), page.next) {
                (true, None) => {
                    Self::finish_kind(offboarding, kind);
                    self.save(offboarding).await?;
                }
                // A page of a sweep that matched nothing: go on (a crash repeats the listing).
                (true, next) => offboarding.cursor = next,
                (false, next) => {
                    // Written down before anything is deleted.
                    offboarding.pending = Some(PendingPage { kind, keys: page.keys, next });
                    self.save(offboarding).await?;
                }
            }
        }
        offboarding.phase = OffboardingPhase::Purged;
        offboarding.tenant_id = None;
        offboarding.completed_at = Some(self.clock.now());
        self.save(offboarding).await?;
        info!(message = "Tenant data purged.", msp_id = %msp_id, tenant_id = %tenant_id, removed = ?offboarding.report);
        Ok(true)
    }

    fn finish_kind(offboarding: &mut Offboarding, kind: DataKind) {
        offboarding.report.insert(kind.as_str().to_owned(), offboarding.kind_count);
        offboarding.purged.push(kind);
        offboarding.kind_count = 0;
        offboarding.cursor = None;
    }

    async fn delete_page(&self, msp_id: &MspId, pending: &PendingPage) -> Result<(), OffboardingError> {
        if let Some(foreign) = pending.keys.iter().find(|k| !k.within(msp_id)) {
            return Err(OffboardingError::ForeignKey { msp_id: msp_id.to_string(), key: format!("{}/{}", foreign.table, foreign.pk) });
        }
        self.data.delete(&pending.keys).await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "offboarding_tests.rs"]
mod tests;
