//! Running a replay ([`crate::replay`]) on the poller: the replay's policy over the tenant's
//! content as Microsoft lists it again, in shadow.
//!
//! Each content type is listed from the replay's start (no earlier than Microsoft still lists)
//! to its end in the poller's windows (under 24 h; a refused window halved down to the floor),
//! blobs fetched in order, each record read once (Microsoft repeats records across blobs) and
//! matched with the engine the test bench uses ([`crate::services::shadow`]); the matches become
//! would-be alerts at the end. Nothing is claimed, marked done, enqueued or quarantined, so
//! live polling is untouched and no alert or ticket can result.
//!
//! **Idempotent under redelivery.** A run starts from nothing and overwrites the stored replay
//! (progress after each window, the result at the end); a redelivered job of a finished replay
//! does nothing. **Bounded.** Records, blobs, kept matches and wall time are capped; the cap
//! that ended a run early is reported as `truncated`, with how far each content type got.

use super::{PollError, PollReport, PollService, truncate_to_second};
use crate::audit::AuditRecord;
use crate::error::{Classified, ErrorClass, SourceError};
use crate::ids::{MspId, RecordId, TenantId};
use crate::policy::{CompiledPolicy, PolicyMatch};
use crate::ports::{ContentBlob, TimeWindow};
use crate::replay::{self, Replay, ReplayStatus};
use crate::services::shadow::{self, ShadowTenant};
use crate::tenant::M365AppCredentials;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

/// Runs a job is given before a failure ends the replay as failed instead of being retried (the
/// poll-jobs queue dead-letters after five receives).
const ATTEMPTS_MAX: u32 = 4;

/// What one run has read so far.
struct Scan {
    seen: HashSet<RecordId>,
    found: Vec<PolicyMatch>,
    started: Instant,
    truncated: Option<String>,
}

impl PollService {
    /// Runs replay `replay_id` of the tenant, or does nothing when it is finished or gone.
    ///
    /// # Errors
    /// A transient failure (store, queue, Microsoft) while attempts remain: the job is retried
    /// and the replay recomputed. Anything else ends the replay as `failed`, with why.
    pub(super) async fn run_replay(&self, msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Result<PollReport, PollError> {
        let Some(mut replay) = self.replays.get_replay(msp_id, tenant_id, replay_id).await? else {
            warn!(message = "A replay job names no stored replay (expired?); nothing to do.", %msp_id, %tenant_id, replay_id);
            return Ok(PollReport::default());
        };
        if replay.status.is_final() {
            info!(message = "A finished replay's job was delivered again; nothing to do.", replay_id);
            return Ok(PollReport::default());
        }
        let now = self.clock.now();
        replay.restart(now);
        self.replays.put_replay(&replay).await?;
        let mut report = PollReport::default();
        match self.replay_content(&mut replay, &mut report).await {
            Ok(()) => {
                replay.status = ReplayStatus::Done;
                replay.updated_at = self.clock.now();
                self.replays.put_replay(&replay).await?;
                info!(message = "Replay done.", replay_id, records = replay.records_scanned, alerts = replay.alerts_total);
                Ok(report)
            }
            Err(error) => {
                replay.error = Some(error.to_string());
                replay.updated_at = self.clock.now();
                let retry = error.class() == ErrorClass::Transient && replay.attempts < ATTEMPTS_MAX;
                if !retry {
                    replay.status = ReplayStatus::Failed;
                }
                self.replays.put_replay(&replay).await?;
                warn!(message = "Replay run failed.", replay_id, retried = retry, error_class = error.class().as_str(), %error);
                if retry { Err(error) } else { Ok(report) }
            }
        }
    }

    async fn replay_content(&self, replay: &mut Replay, report: &mut PollReport) -> Result<(), PollError> {
        let tenant = self
            .config
            .get_tenant(&replay.msp_id, &replay.tenant_id)
            .await?
            .ok_or_else(|| PollError::UnknownTenant(replay.tenant_id.to_string()))?;
        let compiled = CompiledPolicy::compile(Arc::new(replay.policy.clone())).map_err(PollError::MalformedJob)?;
        let credentials = self.credentials(&tenant).await?;
        let now = self.clock.now();
        let oldest = self.oldest_listable(now);
        let from = truncate_to_second(replay.from.max(oldest));
        let to = truncate_to_second(replay.to.min(now));
        if from > replay.from {
            replay.add_run_note(&format!("content before {from} is no longer listed by Microsoft (7 days): replayed from there"));
        }
        let mut scan = Scan { seen: HashSet::new(), found: Vec::new(), started: Instant::now(), truncated: None };
        for index in 0..replay.progress.len() {
            if scan.truncated.is_some() {
                break;
            }
            self.replay_content_type(replay, index, &compiled, &tenant, &credentials, from, to, &mut scan, report).await?;
        }
        let shadow_tenant = ShadowTenant::of(&tenant);
        let scope = shadow_tenant.scope(&replay.msp_id);
        let alerts = shadow::alerts_from_matches(&compiled, &scope, &scan.found, self.clock.now());
        replay.set_alerts(&alerts);
        replay.truncated = scan.truncated;
        if matches!(compiled.trigger, crate::policy::CompiledTrigger::UnusualActivity { .. }) {
            replay.add_run_note(shadow::UNUSUAL_ACTIVITY_NOTE);
        }
        Ok(())
    }

    /// Lists and reads one content type of the replay, saving progress after each window.
    #[allow(clippy::too_many_arguments)]
    async fn replay_content_type(
        &self,
        replay: &mut Replay,
        index: usize,
        compiled: &CompiledPolicy,
        tenant: &crate::tenant::Tenant,
        credentials: &M365AppCredentials,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        scan: &mut Scan,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let content_type = replay.progress[index].content_type;
        let shadow_tenant = ShadowTenant::of(tenant);
        let mut start = from;
        let mut span = self.settings.max_window;
        while start < to {
            if let Some(cap) = self.replay_cap(replay, scan) {
                scan.truncated = Some(format!("{cap}: {content_type} read up to {start}, later content types not read"));
                return Ok(());
            }
            let end = (start + span).min(to);
            let window = TimeWindow { start, end };
            let mut blobs = match self.source.list_content(&tenant.tenant_id, credentials, content_type, window).await {
                Ok(blobs) => blobs,
                Err(SourceError::WindowRefused { code, message }) if end - start > self.settings.min_window => {
                    span = ((end - start) / 2).max(self.settings.min_window);
                    replay.progress[index].windows_refused += 1;
                    warn!(message = "Microsoft refused a replay's listing window; listing it again halved.", %start, %end, %code, %message);
                    continue;
                }
                Err(error @ SourceError::AccessRefused { .. }) => return Err(error.into()),
                Err(source) => return Err(PollError::Window { from: start, to: end, source }),
            };
            blobs.sort_by(|a, b| (a.content_created, &a.content_id).cmp(&(b.content_created, &b.content_id)));
            replay.progress[index].windows_listed += 1;
            report.windows_listed += 1;
            for chunk in blobs.chunks(self.settings.blob_concurrency.max(1)) {
                if let Some(cap) = self.replay_cap(replay, scan) {
                    scan.truncated = Some(format!("{cap}: {content_type} read partly from {start}, later content not read"));
                    break;
                }
                let bodies = self.fetch_all(tenant, credentials, chunk).await?;
                for body in bodies {
                    replay.progress[index].blobs_fetched += 1;
                    replay.blobs_fetched += 1;
                    report.blobs_fetched += 1;
                    scan_blob(replay, index, compiled, &shadow_tenant, &body, scan);
                }
            }
            if scan.truncated.is_some() {
                self.replays.put_replay(replay).await?;
                return Ok(());
            }
            replay.progress[index].listed_until = Some(end);
            replay.updated_at = self.clock.now();
            self.replays.put_replay(replay).await?;
            start = end;
        }
        Ok(())
    }

    /// The cap a run has reached, if any.
    fn replay_cap(&self, replay: &Replay, scan: &Scan) -> Option<String> {
        if replay.records_scanned >= replay::RECORD_CAP {
            Some(format!("the record cap of {} was reached", replay::RECORD_CAP))
        } else if replay.blobs_fetched >= replay::BLOB_CAP {
            Some(format!("the cap of {} content blobs was reached", replay::BLOB_CAP))
        } else if scan.started.elapsed() >= self.settings.replay_budget {
            Some(format!("the run's time budget of {} s was used up", self.settings.replay_budget.as_secs()))
        } else {
            None
        }
    }

    /// Fetches blobs a few at once, keeping their order.
    async fn fetch_all(
        &self,
        tenant: &crate::tenant::Tenant,
        credentials: &M365AppCredentials,
        blobs: &[ContentBlob],
    ) -> Result<Vec<String>, PollError> {
        let fetches: Vec<_> = blobs.iter().map(|blob| self.source.fetch_content(&tenant.tenant_id, credentials, blob)).collect();
        let bodies: Vec<Result<String, SourceError>> = futures::stream::iter(fetches).buffered(blobs.len().max(1)).collect().await;
        Ok(bodies.into_iter().collect::<Result<Vec<_>, _>>()?)
    }
}

/// Reads one blob's records into the scan: each record once, unusable ones counted.
fn scan_blob(replay: &mut Replay, index: usize, compiled: &CompiledPolicy, tenant: &ShadowTenant, body: &str, scan: &mut Scan) {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(body) else {
        replay.records_rejected += 1;
        return;
    };
    let scope = tenant.scope(&replay.msp_id);
    for item in items {
        let record = match AuditRecord::from_value(item) {
            Ok(record) => record,
            Err(_) => {
                replay.records_rejected += 1;
                continue;
            }
        };
        if !scan.seen.insert(record.id.clone()) {
            continue;
        }
        replay.records_scanned += 1;
        replay.progress[index].records_scanned += 1;
        if let Some(found) = compiled.evaluate_described(&scope, &record) {
            replay.matches += 1;
            if scan.found.len() < replay::MATCH_CAP {
                scan.found.push(found);
            } else if scan.truncated.is_none() {
                scan.truncated =
                    Some(format!("more than {} matches: reading stopped, alerts are computed from the first", replay::MATCH_CAP));
            }
        }
    }
}

#[cfg(test)]
mod tests;
