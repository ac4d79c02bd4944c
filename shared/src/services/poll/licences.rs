//! The daily read of each customer tenant's licences, a tenant-scope source: the tick sends one
//! [`PollJob::Licences`] per tenant with app credentials whose licences were last read
//! `licence_read_every_hours` ago or more (default daily); the job reads Graph's
//! `subscribedSkus` and `directory/subscriptions` ([`crate::ports::LicenceSource`]), keeps the
//! snapshot and the status changes ([`crate::ports::LicenceStore`]), and compares the licence
//! findings that hold now with those raised before ([`crate::licences::findings`]): new and
//! cleared ones go to the evaluator as Vigil's own events, which the built-in licence policies
//! turn into alerts and resolve (closing their tickets through the delivery core).
//!
//! A refused read (`403`: `Organization.Read.All` not consented) is "needs re-consent", never
//! "no licences": the last snapshot and its findings stay as they were. A token the identity
//! platform refuses (consent revoked, wrong secret) is the tenant's connection problem, reported
//! by its own alert; the licences then stay as they were, without a second alert. A transient failure is
//! recorded and the job retried; reads that keep failing (not for refused access) are a
//! self-monitoring condition ([`crate::selfmon`]). The events are sent before the findings are stored and carry
//! the tick's time, so a retried job sends the same events again (the evaluator counts a record
//! once) rather than losing or doubling one.

use super::to_json;
use super::{PollError, PollReport, PollService};
use crate::error::{Classified, ErrorClass, SourceError};
use crate::ids::{AuditStream, ContentType, MspId, TenantId};
use crate::licences::findings::{EventTenant, FindingSettings, THREAT_RECORD_TYPES, finding_event, transitions};
use crate::messages::{AuditEventsMessage, LICENCE_EVENTS, PollJob, pack_records};
use crate::ports::{LicenceSource, LicenceStore, PolicyStore};
use crate::tenant::Tenant;
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{info, warn};

/// What the licence reads need: Graph's licence listings, where each tenant's licence state is
/// kept, and the MSP's policies (to know whether Threat Intelligence policies are on).
#[derive(Clone)]
pub struct LicencePorts {
    pub source: Arc<dyn LicenceSource>,
    pub store: Arc<dyn LicenceStore>,
    pub policies: Arc<dyn PolicyStore>,
}

impl LicencePorts {
    /// Every port in memory, every tenant's licences healthy (for tests of other capabilities).
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            source: Arc::new(crate::memory::MemoryLicenceSource::healthy()),
            store: Arc::new(crate::memory::MemoryLicenceStore::default()),
            policies: Arc::new(crate::memory::MemoryPolicyStore::default()),
        }
    }
}

impl PollService {
    /// The licence jobs of a tick: one per tenant with app credentials not read for its MSP's
    /// `licence_read_every_hours`.
    pub(super) async fn licence_jobs(&self, tenants: &[Tenant]) -> Result<Vec<PollJob>, PollError> {
        let now = self.clock.now();
        let mut by_msp: BTreeMap<&MspId, Vec<&Tenant>> = BTreeMap::new();
        for tenant in tenants.iter().filter(|t| t.m365_credentials_set) {
            by_msp.entry(&tenant.msp_id).or_default().push(tenant);
        }
        let mut jobs = Vec::new();
        for (msp_id, tenants) in by_msp {
            let Some(msp) = self.config.get_msp(msp_id).await? else { continue };
            let every = Duration::hours(i64::from(msp.licence_read_every_hours));
            let reads = self.licences.store.licence_reads(msp_id).await?;
            // Findings carry the hour the tick asked in: a job sent again by the next ticks
            // (while the first still waits in the queue) raises the very same events.
            let at = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
            jobs.extend(
                tenants
                    .into_iter()
                    .filter(|t| reads.get(&t.tenant_id).is_none_or(|last| now - *last >= every))
                    .map(|t| PollJob::Licences { msp_id: msp_id.clone(), tenant_id: t.tenant_id.clone(), at: Some(at) }),
            );
        }
        Ok(jobs)
    }

    /// Reads one tenant's licences and announces the findings that start or stop holding. A
    /// tenant no longer registered, or without credentials, is skipped (the connection-problem
    /// alert speaks for the latter).
    ///
    /// # Errors
    /// Transient failures (throttling, outages) and store or queue failures, for the queue to
    /// retry.
    pub async fn read_licences(&self, msp_id: &MspId, tenant_id: &TenantId, at: Option<DateTime<Utc>>) -> Result<PollReport, PollError> {
        let Some(tenant) = self.config.get_tenant(msp_id, tenant_id).await?.filter(|t| t.offboarded_at.is_none()) else {
            return Ok(PollReport::default());
        };
        let Some(msp) = self.config.get_msp(msp_id).await? else { return Ok(PollReport::default()) };
        let credentials = match self.credentials(&tenant).await {
            Ok(credentials) => credentials,
            Err(PollError::MissingCredentials(_)) => return Ok(PollReport::default()),
            Err(error) => return Err(error),
        };
        let now = self.clock.now();
        let at = at.unwrap_or(now);
        let mut state = self.licences.store.licences(msp_id, tenant_id).await?.unwrap_or_default();
        let previous = state.snapshot.clone();
        let read_ok = match self.licences.source.licences(tenant_id, &credentials).await {
            Ok(snapshot) => {
                state.take_snapshot(snapshot, now);
                state.consecutive_failures = 0;
                true
            }
            Err(error) if error.class() == ErrorClass::Transient => {
                let reconsent = state.needs_reconsent;
                state.read_failed(now, error.to_string(), reconsent);
                state.consecutive_failures += 1;
                self.watch_licence_reads(&tenant, &mut state, at).await?;
                self.licences.store.put_licences(msp_id, tenant_id, &state).await?;
                warn!(message = "Could not read a tenant's licences; the job is retried.", %error);
                return Err(error.into());
            }
            Err(error) => {
                // Graph refusing a token it accepted: the role is missing. A token the identity
                // platform refused (AADSTS…: consent revoked, bad secret) is the tenant's
                // connection problem, which its own alert already reports.
                let refused = matches!(&error, SourceError::AccessRefused { code, .. } if !code.starts_with("AADSTS"));
                warn!(message = "A tenant's licences were refused; the last ones read are kept.", needs_reconsent = refused, %error);
                state.read_failed(now, error.to_string(), refused);
                if !matches!(error, SourceError::AccessRefused { .. }) {
                    state.consecutive_failures += 1;
                }
                false
            }
        };
        let settings = FindingSettings {
            lifecycle_days: msp.licence_lifecycle_days,
            threat_record_types: self.threat_record_types(msp_id, tenant_id).await?,
        };
        let (changes, after) = transitions(&state, &previous, &settings, read_ok, at);
        if !changes.is_empty() {
            let who = EventTenant { tenant_id: tenant_id.as_str(), name: &tenant.name };
            let records = changes.iter().map(|change| finding_event(change, who, &state, &settings, now)).collect();
            let template = AuditEventsMessage {
                msp_id: msp_id.clone(),
                tenant_id: tenant_id.clone(),
                // Licences are a directory matter; the stream only labels the message (Vigil's
                // own events are told apart by their label).
                stream: AuditStream::Content(ContentType::AzureActiveDirectory),
                content_id: LICENCE_EVENTS.to_owned(),
                records: Vec::new(),
            };
            let bodies: Vec<String> = pack_records(&template, records).iter().map(to_json).collect();
            self.events.send_all(&bodies).await?;
            let raised = changes.iter().filter(|c| c.raised).count();
            info!(message = "Licence findings changed.", raised, cleared = changes.len() - raised);
        }
        state.raised = after;
        self.watch_licence_reads(&tenant, &mut state, at).await?;
        self.licences.store.put_licences(msp_id, tenant_id, &state).await?;
        info!(
            message = "Licences read.",
            ok = read_ok,
            skus = state.snapshot.skus.len(),
            subscriptions = state.snapshot.subscriptions.len()
        );
        Ok(PollReport::default())
    }

    /// The Threat Intelligence record types (28, 41, 47, 64) that the tenant's enabled policies
    /// (built-in or the MSP's own) name in their activity.
    async fn threat_record_types(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<BTreeSet<u32>, PollError> {
        let stored = self.licences.policies.list_policies(msp_id).await?;
        let switches = self.licences.policies.tenant_policies(msp_id, tenant_id).await?;
        let mut types = BTreeSet::new();
        for definition in crate::policy::effective_definitions(&stored) {
            let on = switches.iter().find(|(id, _)| *id == definition.id).map_or(definition.enabled, |(_, on)| *on);
            if !on || !definition.scope.covers_tenant(tenant_id) {
                continue;
            }
            for record_type in &definition.activity.record_types {
                if let Some((known, _)) = THREAT_RECORD_TYPES.iter().find(|(known, _)| i64::from(*known) == *record_type) {
                    types.insert(*known);
                }
            }
        }
        Ok(types)
    }
}

#[cfg(test)]
#[path = "licences_tests.rs"]
mod tests;
