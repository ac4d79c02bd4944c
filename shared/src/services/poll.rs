//! Polling Microsoft 365 at MSP scale.
//!
//! **Fan-out.** The scheduled tick ([`PollService::fan_out`]) enqueues one [`PollJob::Stream`]
//! per (tenant, stream) on the poll-jobs queue; the poller consumes those jobs
//! ([`PollService::run_job`]), so tenants are polled in parallel, retried independently, and one
//! failing tenant never delays another. Webhook-announced blobs arrive as [`PollJob::Fetch`].
//!
//! **Coverage.** Each stream has a ledger ([`StreamState`]): everything before `covered_until`
//! is listed and enqueued. A poll lists windows of at most 24 h from `covered_until - overlap`
//! to now, so an outage is backfilled automatically when polling works again; what left
//! Microsoft's 7-day retention first is recorded as lost. `covered_until` advances only after a
//! window's records are enqueued. Overlapping windows and webhook/poll double announcements
//! are safe: blobs are marked done and records are claimed by `(tenant, record Id)`.
//!
//! **Nothing lost silently.** A blob that is not a JSON array, or a record without the common
//! fields, goes whole to the events dead-letter queue; the rest flows on.
//!
//! **Connection problems are alerts.** Refused access (revoked consent, disabled app, auditing
//! off) at once, or repeated failures beyond a threshold, emit a `Vigil.ConnectionProblem`
//! event that the built-in "Tenant connection problem" policy turns into an alert; the first
//! successful poll afterwards emits `Vigil.ConnectionRestored`, which resolves it.

use crate::audit::AuditRecord;
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, QueueError, SecretError, SourceError, StoreError};
use crate::ids::{AuditStream, ContentType, RecordId};
use crate::messages::{AnnouncedBlob, AuditEventsMessage, PollJob, QuarantinedContent, pack_records, truncate_to};
use crate::ports::{
    AuditSource, ClaimOutcome, ConfigStore, ContentBlob, IngestStateStore, MessageQueue, SecretName, SecretStore, SecurityAlertSource,
    StreamKey, StreamState, TimeWindow,
};
use crate::ports::{SubscriptionManager, TenantChange, WebhookRegistration};
use crate::tenant::{M365AppCredentials, Tenant, new_webhook_auth_id, webhook_auth_hash};
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::{info, warn};

/// The operation names of Vigil's own connection events.
pub const CONNECTION_PROBLEM: &str = "Vigil.ConnectionProblem";
/// See [`CONNECTION_PROBLEM`].
pub const CONNECTION_RESTORED: &str = "Vigil.ConnectionRestored";

/// Tunables of the poller.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Streams polled for every tenant (unless the tenant narrows them).
    pub streams: Vec<AuditStream>,
    /// How far back a brand-new stream starts.
    pub initial_lookback: Duration,
    /// How much of the covered time is listed again (blobs keep appearing late).
    pub overlap: Duration,
    /// How long a record claim is held before another run may take it over.
    pub claim_lease: Duration,
    /// How many blobs of one stream are fetched at once.
    pub blob_concurrency: usize,
    /// Consecutive failures after which a stream's trouble becomes an alert.
    pub failure_threshold: u32,
    /// Base address of Vigil's webhook receiver for Microsoft notifications
    /// (`{base}/{msp}/{tenant}`); `None` polls only.
    pub webhook_base: Option<String>,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            streams: AuditStream::all(),
            initial_lookback: Duration::hours(1),
            overlap: Duration::minutes(30),
            claim_lease: Duration::minutes(5),
            blob_concurrency: 8,
            failure_threshold: 5,
            webhook_base: None,
        }
    }
}

/// Why a poll job could not be done.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("no Microsoft app credentials are stored for tenant {0}")]
    MissingCredentials(String),
    #[error("tenant {0} is not registered")]
    UnknownTenant(String),
    #[error("poll job is malformed: {0}")]
    MalformedJob(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Classified for PollError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::MissingCredentials(_) | Self::UnknownTenant(_) => ErrorClass::Permanent,
            Self::MalformedJob(_) => ErrorClass::Invalid,
            Self::Store(e) => e.class(),
            Self::Secret(e) => e.class(),
            Self::Source(e) => e.class(),
            Self::Queue(e) => e.class(),
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Source(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl PollError {
    /// Whether this failure means the tenant no longer lets Vigil in (alert at once).
    fn access_refused(&self) -> bool {
        matches!(self, Self::MissingCredentials(_) | Self::Source(SourceError::AccessRefused { .. }))
    }

    /// A short, secret-free description for the ledger and the alert.
    fn summary(&self) -> String {
        truncate_to(&self.to_string(), 400).to_owned()
    }
}

/// What polling did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub streams_polled: usize,
    pub streams_failed: usize,
    pub windows_listed: usize,
    pub blobs_fetched: usize,
    pub records_enqueued: usize,
    pub records_skipped: usize,
    pub quarantined: usize,
    /// Intervals recorded as lost (older than Microsoft's retention when reached).
    pub intervals_lost: usize,
    pub connection_problems_resolved: usize,
}

impl PollReport {
    /// Adds another report's counters to this one.
    pub fn add(&mut self, other: &PollReport) {
        self.streams_polled += other.streams_polled;
        self.streams_failed += other.streams_failed;
        self.windows_listed += other.windows_listed;
        self.blobs_fetched += other.blobs_fetched;
        self.records_enqueued += other.records_enqueued;
        self.records_skipped += other.records_skipped;
        self.quarantined += other.quarantined;
        self.intervals_lost += other.intervals_lost;
        self.connection_problems_resolved += other.connection_problems_resolved;
    }
}

/// The polling use cases: fan-out and jobs.
pub struct PollService {
    pub config: Arc<dyn ConfigStore>,
    pub state: Arc<dyn IngestStateStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub source: Arc<dyn AuditSource>,
    pub subscriptions: Arc<dyn SubscriptionManager>,
    pub security_alerts: Arc<dyn SecurityAlertSource>,
    /// Where records go for evaluation.
    pub events: Arc<dyn MessageQueue>,
    /// Where unusable content goes, whole, for an operator.
    pub dead_letters: Arc<dyn MessageQueue>,
    /// The poll-jobs queue.
    pub jobs: Arc<dyn MessageQueue>,
    pub clock: Arc<dyn Clock>,
    pub settings: PollSettings,
}

impl PollService {
    /// The scheduled tick: one job per (tenant, stream) of every MSP, onto the poll-jobs queue.
    ///
    /// # Errors
    /// When the tenant list cannot be read or the jobs cannot be enqueued.
    pub async fn fan_out(&self) -> Result<usize, PollError> {
        let tenants = self.config.list_all_tenants().await?;
        if let Some(base) = &self.settings.webhook_base {
            self.register_webhooks(&tenants, base).await;
        }
        let jobs: Vec<String> = tenants
            .iter()
            .flat_map(|tenant| {
                self.streams_of(tenant).into_iter().map(|stream| PollJob::Stream {
                    msp_id: tenant.msp_id.clone(),
                    tenant_id: tenant.tenant_id.clone(),
                    stream,
                })
            })
            .map(|job| to_json(&job))
            .collect();
        self.jobs.send_all(&jobs).await?;
        info!(message = "Poll jobs enqueued.", tenants = tenants.len(), jobs = jobs.len());
        Ok(jobs.len())
    }

    /// The streams polled for a tenant: its own choice, or the defaults.
    #[must_use]
    pub fn streams_of(&self, tenant: &Tenant) -> Vec<AuditStream> {
        tenant.streams.clone().unwrap_or_else(|| self.settings.streams.clone())
    }

    /// Registers Vigil's webhook on the subscriptions of every tenant that lacks it. Runs in
    /// the tick (one invocation, so one writer per tenant); a tenant that fails is retried on
    /// the next tick, and polling covers it meanwhile.
    async fn register_webhooks(&self, tenants: &[Tenant], base: &str) {
        let pending: Vec<_> =
            tenants.iter().filter(|t| !t.webhook_registered && t.m365_credentials_set).map(|t| self.register_webhook(t, base)).collect();
        let results: Vec<Result<(), PollError>> = futures::stream::iter(pending).buffer_unordered(4).collect().await;
        for error in results.into_iter().filter_map(Result::err) {
            warn!(message = "Could not register the webhook; polling continues.", error_class = error.class().as_str(), %error);
        }
    }

    async fn register_webhook(&self, tenant: &Tenant, base: &str) -> Result<(), PollError> {
        let credentials = self.credentials(tenant).await?;
        let auth_id = new_webhook_auth_id().map_err(|e| PollError::Store(StoreError::Unavailable(format!("random source: {e}"))))?;
        // The hash must be stored before Microsoft's validation request arrives.
        let auth_hash = webhook_auth_hash(auth_id.expose());
        self.config
            .update_tenant(&tenant.msp_id, &tenant.tenant_id, &TenantChange::Webhook { auth_hash: auth_hash.clone(), registered: false })
            .await?;
        let registration =
            WebhookRegistration { address: format!("{}/{}/{}", base.trim_end_matches('/'), tenant.msp_id, tenant.tenant_id), auth_id };
        for content_type in self.streams_of(tenant).into_iter().filter_map(AuditStream::content_type) {
            self.subscriptions.start_subscription(&tenant.tenant_id, &credentials, content_type, Some(&registration)).await?;
        }
        self.config.update_tenant(&tenant.msp_id, &tenant.tenant_id, &TenantChange::Webhook { auth_hash, registered: true }).await?;
        info!(message = "Webhook registered.", msp_id = %tenant.msp_id, tenant_id = %tenant.tenant_id);
        Ok(())
    }

    /// Handles one poll-jobs queue message body.
    ///
    /// # Errors
    /// See [`PollError`]; its class (and `retry_after`) decide retry or dead-letter.
    pub async fn handle_job(&self, body: &str) -> Result<PollReport, PollError> {
        let job: PollJob = serde_json::from_str(body).map_err(|e| PollError::MalformedJob(e.to_string()))?;
        self.run_job(job).await
    }

    /// Runs one job.
    ///
    /// # Errors
    /// See [`PollError`].
    pub async fn run_job(&self, job: PollJob) -> Result<PollReport, PollError> {
        match job {
            PollJob::Stream { msp_id, tenant_id, stream } => {
                let tenant =
                    self.config.get_tenant(&msp_id, &tenant_id).await?.ok_or_else(|| PollError::UnknownTenant(tenant_id.to_string()))?;
                let span = tracing::info_span!("poll_stream", msp_id = %msp_id, tenant_id = %tenant_id, stream = %stream);
                match tracing::Instrument::instrument(self.poll_stream(&tenant, stream), span).await {
                    // A failure that retrying cannot fix is already in the stream's ledger and,
                    // past the threshold, an alert: the job is done. The next tick tries again.
                    Err(error) if error.class() != ErrorClass::Transient => Ok(PollReport { streams_failed: 1, ..PollReport::default() }),
                    other => other,
                }
            }
            PollJob::Fetch { msp_id, tenant_id, content_type, blobs } => {
                let tenant =
                    self.config.get_tenant(&msp_id, &tenant_id).await?.ok_or_else(|| PollError::UnknownTenant(tenant_id.to_string()))?;
                let credentials = self.credentials(&tenant).await?;
                let blobs: Vec<ContentBlob> = blobs
                    .into_iter()
                    .map(|AnnouncedBlob { content_id, content_uri, content_created }| ContentBlob {
                        content_id,
                        content_uri,
                        content_created,
                    })
                    .collect();
                self.process_blobs(&tenant, &credentials, content_type, &blobs).await
            }
        }
    }

    /// Polls one stream of one tenant up to now, keeping its ledger.
    ///
    /// # Errors
    /// When credentials are missing or a store, queue or Microsoft fails; the ledger then keeps
    /// the coverage reached and counts the failure.
    pub async fn poll_stream(&self, tenant: &Tenant, stream: AuditStream) -> Result<PollReport, PollError> {
        let key = StreamKey { msp_id: tenant.msp_id.clone(), tenant_id: tenant.tenant_id.clone(), stream };
        let now = truncate_to_second(self.clock.now());
        let mut ledger =
            self.state.get_stream(&key).await?.unwrap_or_else(|| StreamState::starting_at(now - self.settings.initial_lookback));
        let result = match stream.content_type() {
            Some(content_type) => self.poll_content(tenant, content_type, &key, &mut ledger, now).await,
            None => self.poll_security_alerts(tenant, &key, &mut ledger, now).await,
        };
        match result {
            Ok(mut report) => {
                if let Some(since) = ledger.problem_since {
                    self.emit_connection_event(tenant, stream, &ledger, CONNECTION_RESTORED, since, None).await?;
                    ledger.problem_since = None;
                    report.connection_problems_resolved += 1;
                }
                ledger.consecutive_failures = 0;
                ledger.last_error = None;
                ledger.last_success = Some(self.clock.now());
                self.state.put_stream(&key, &ledger).await?;
                report.streams_polled += 1;
                info!(
                    message = "Stream polled.",
                    windows = report.windows_listed,
                    blobs = report.blobs_fetched,
                    enqueued = report.records_enqueued,
                    skipped = report.records_skipped,
                    quarantined = report.quarantined
                );
                Ok(report)
            }
            Err(error) => {
                ledger.consecutive_failures += 1;
                ledger.last_error = Some(error.summary());
                let raise = ledger.problem_since.is_none()
                    && (error.access_refused() || ledger.consecutive_failures >= self.settings.failure_threshold);
                if raise {
                    let since = truncate_to_second(self.clock.now());
                    self.emit_connection_event(tenant, stream, &ledger, CONNECTION_PROBLEM, since, Some(&error)).await?;
                    ledger.problem_since = Some(since);
                }
                self.state.put_stream(&key, &ledger).await?;
                warn!(message = "Polling a stream failed.", error_class = error.class().as_str(), failures = ledger.consecutive_failures, alerted = raise, %error);
                Err(error)
            }
        }
    }

    async fn poll_content(
        &self,
        tenant: &Tenant,
        content_type: ContentType,
        key: &StreamKey,
        ledger: &mut StreamState,
        now: DateTime<Utc>,
    ) -> Result<PollReport, PollError> {
        let credentials = self.credentials(tenant).await?;
        let oldest_available = now - Duration::days(7) + Duration::minutes(10);
        let mut report = PollReport::default();
        if ledger.covered_until < oldest_available {
            warn!(message = "Audit content was lost: it left Microsoft's retention before it could be polled.", from = %ledger.covered_until, to = %oldest_available);
            ledger.lost.push((ledger.covered_until, oldest_available));
            ledger.covered_until = oldest_available;
            report.intervals_lost += 1;
        }
        let mut start = truncate_to_second((ledger.covered_until - self.settings.overlap).max(oldest_available));
        while start < now {
            let end = (start + Duration::hours(24)).min(now);
            let mut blobs = self.source.list_content(&tenant.tenant_id, &credentials, content_type, TimeWindow { start, end }).await?;
            blobs.sort_by(|a, b| (a.content_created, &a.content_id).cmp(&(b.content_created, &b.content_id)));
            report.windows_listed += 1;
            report.add(&self.process_blobs(tenant, &credentials, content_type, &blobs).await?);
            if end > ledger.covered_until {
                ledger.covered_until = end;
                self.state.put_stream(key, ledger).await?;
            }
            start = end;
        }
        Ok(report)
    }

    async fn poll_security_alerts(
        &self,
        tenant: &Tenant,
        key: &StreamKey,
        ledger: &mut StreamState,
        now: DateTime<Utc>,
    ) -> Result<PollReport, PollError> {
        let credentials = self.credentials(tenant).await?;
        let since = ledger.covered_until - self.settings.overlap;
        let alerts = self.security_alerts.alerts_updated_since(&tenant.tenant_id, &credentials, since).await?;
        let mut report = PollReport { windows_listed: 1, ..PollReport::default() };
        let claimed_at = self.clock.now();
        let mut claimed_ids = Vec::new();
        let mut claimed = Vec::new();
        let mut latest = ledger.covered_until;
        for alert in alerts {
            let (Some(id), Some(updated)) =
                (alert.get("id").and_then(Value::as_str), alert.get("lastUpdateDateTime").and_then(Value::as_str))
            else {
                self.quarantine(
                    tenant,
                    AuditStream::GraphAlerts,
                    "graph",
                    "Graph alert without id or lastUpdateDateTime".into(),
                    &alert.to_string(),
                )
                .await?;
                report.quarantined += 1;
                continue;
            };
            if let Ok(at) = DateTime::parse_from_rfc3339(updated) {
                latest = latest.max(at.with_timezone(&Utc));
            }
            // Each update of an alert is one event; the same update seen twice is one.
            let Ok(record_id) = RecordId::parse(&format!("graph:{id}:{updated}")) else {
                continue;
            };
            match self.state.claim_record(&tenant.msp_id, &tenant.tenant_id, &record_id, claimed_at, self.settings.claim_lease).await? {
                ClaimOutcome::Claimed => {
                    claimed_ids.push(record_id);
                    claimed.push(alert);
                }
                ClaimOutcome::AlreadyProcessed | ClaimOutcome::InFlight => report.records_skipped += 1,
            }
        }
        self.enqueue(tenant, AuditStream::GraphAlerts, "graph-alerts", claimed, &claimed_ids, claimed_at, &mut report).await?;
        ledger.covered_until = latest.max(ledger.covered_until).min(now);
        self.state.put_stream(key, ledger).await?;
        Ok(report)
    }

    async fn credentials(&self, tenant: &Tenant) -> Result<M365AppCredentials, PollError> {
        let name = SecretName::m365_app(&tenant.msp_id, &tenant.tenant_id);
        let secret = self.secrets.get_secret(&name).await?.ok_or_else(|| PollError::MissingCredentials(tenant.tenant_id.to_string()))?;
        let credentials: M365AppCredentials = serde_json::from_str(secret.expose())
            .map_err(|_| PollError::Secret(SecretError::Malformed { name: name.as_str().to_owned() }))?;
        // Tokens these credentials earn are cached for this MSP alone.
        let mut credentials = credentials.held_by(&tenant.msp_id);
        // Each MSP's calls count against its own PublisherIdentifier quota when it set one.
        credentials.publisher_identifier =
            self.config.get_msp(&tenant.msp_id).await?.and_then(|m| m.publisher_identifier).map(|p| p.to_string());
        Ok(credentials)
    }

    /// Fetches and processes blobs, a bounded number at once.
    async fn process_blobs(
        &self,
        tenant: &Tenant,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        blobs: &[ContentBlob],
    ) -> Result<PollReport, PollError> {
        // Collect the futures first: a closure over `&ContentBlob` inside the stream would make
        // the whole future fail the `Send` check Lambda runtimes need.
        let fetches: Vec<_> = blobs.iter().map(|blob| self.process_blob(tenant, credentials, content_type, blob)).collect();
        let results: Vec<Result<(PollReport, Option<PendingBlob>), PollError>> =
            futures::stream::iter(fetches).buffer_unordered(self.settings.blob_concurrency.max(1)).collect().await;
        let mut report = PollReport::default();
        let mut pending = Vec::new();
        for result in results {
            let (blob_report, open) = result?;
            report.add(&blob_report);
            pending.extend(open);
        }
        // Records that were in flight may have been claimed by a sibling blob of this very job
        // (Microsoft repeats records across blobs): now that the pass is over, claim again.
        for blob in pending {
            self.settle_pending(tenant, AuditStream::from(content_type), blob, &mut report).await?;
        }
        Ok(report)
    }

    /// Second chance for records another claim held during the first pass: claim what is free
    /// now, and close the blob unless a claim is still held (by a run that may have crashed;
    /// a later poll takes it over once its lease has passed).
    async fn settle_pending(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        blob: PendingBlob,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let now = self.clock.now();
        let mut claimed_ids = Vec::new();
        let mut claimed = Vec::new();
        let mut still_held = 0;
        for (id, record) in blob.records {
            match self.state.claim_record(&tenant.msp_id, &tenant.tenant_id, &id, now, self.settings.claim_lease).await? {
                ClaimOutcome::Claimed => {
                    report.records_skipped -= 1;
                    claimed_ids.push(id);
                    claimed.push(record);
                }
                ClaimOutcome::AlreadyProcessed => {}
                ClaimOutcome::InFlight => still_held += 1,
            }
        }
        self.enqueue(tenant, stream, &blob.content_id, claimed, &claimed_ids, now, report).await?;
        if still_held == 0 {
            self.state.mark_blob_done(&tenant.msp_id, &tenant.tenant_id, &blob.content_id, now).await?;
        }
        Ok(())
    }

    async fn process_blob(
        &self,
        tenant: &Tenant,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        blob: &ContentBlob,
    ) -> Result<(PollReport, Option<PendingBlob>), PollError> {
        let mut report = PollReport::default();
        if self.state.blob_done(&tenant.msp_id, &tenant.tenant_id, &blob.content_id).await? {
            return Ok((report, None));
        }
        let body = self.source.fetch_content(&tenant.tenant_id, credentials, blob).await?;
        report.blobs_fetched += 1;
        let stream = AuditStream::from(content_type);
        let mut records: Vec<(RecordId, Value)> = Vec::new();
        match serde_json::from_str::<Value>(&body) {
            Ok(Value::Array(items)) => {
                for item in items {
                    match AuditRecord::from_value(item.clone()) {
                        Ok(record) => records.push((record.id, item)),
                        Err(error) => {
                            self.quarantine(tenant, stream, &blob.content_id, format!("unusable record: {error}"), &item.to_string())
                                .await?;
                            report.quarantined += 1;
                        }
                    }
                }
            }
            Ok(_) => {
                self.quarantine(tenant, stream, &blob.content_id, "content blob is not a JSON array".into(), &body).await?;
                report.quarantined += 1;
            }
            Err(error) => {
                self.quarantine(tenant, stream, &blob.content_id, format!("content blob is not valid JSON: {error}"), &body).await?;
                report.quarantined += 1;
            }
        }

        let now = self.clock.now();
        let claims: Vec<Result<(ClaimOutcome, RecordId, Value), StoreError>> = futures::stream::iter(records)
            .map(|(id, record)| async move {
                let outcome = self.state.claim_record(&tenant.msp_id, &tenant.tenant_id, &id, now, self.settings.claim_lease).await?;
                Ok((outcome, id, record))
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut claimed_ids = Vec::new();
        let mut claimed = Vec::new();
        let mut in_flight = Vec::new();
        for claim in claims {
            match claim? {
                (ClaimOutcome::Claimed, id, record) => {
                    claimed_ids.push(id);
                    claimed.push(record);
                }
                (ClaimOutcome::InFlight, id, record) => {
                    in_flight.push((id, record));
                    report.records_skipped += 1;
                }
                (ClaimOutcome::AlreadyProcessed, _, _) => report.records_skipped += 1,
            }
        }
        self.enqueue(tenant, stream, &blob.content_id, claimed, &claimed_ids, now, &mut report).await?;
        // A record another run claimed but has not enqueued yet may never be enqueued (that run
        // may have crashed): the blob stays open, so a later poll takes the claim over once its
        // lease has passed.
        if in_flight.is_empty() {
            self.state.mark_blob_done(&tenant.msp_id, &tenant.tenant_id, &blob.content_id, now).await?;
            return Ok((report, None));
        }
        Ok((report, Some(PendingBlob { content_id: blob.content_id.clone(), records: in_flight })))
    }

    /// Sends claimed records for evaluation, then marks the claims done.
    #[allow(clippy::too_many_arguments)]
    async fn enqueue(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        content_id: &str,
        records: Vec<Value>,
        ids: &[RecordId],
        now: DateTime<Utc>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        if records.is_empty() {
            return Ok(());
        }
        let template = AuditEventsMessage {
            msp_id: tenant.msp_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            stream,
            content_id: content_id.to_owned(),
            records: Vec::new(),
        };
        let bodies = pack_records(&template, records).iter().map(to_json).collect::<Vec<_>>();
        self.events.send_all(&bodies).await?;
        self.state.complete_records(&tenant.msp_id, &tenant.tenant_id, ids, now).await?;
        report.records_enqueued += ids.len();
        Ok(())
    }

    async fn quarantine(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        content_id: &str,
        reason: String,
        content: &str,
    ) -> Result<(), PollError> {
        warn!(message = "Unusable audit content sent to the dead-letter queue.", content_id = %content_id, %reason);
        let quarantined = QuarantinedContent {
            msp_id: tenant.msp_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            stream,
            content_id: content_id.to_owned(),
            reason,
            content: truncate_to(content, 200 * 1024).to_owned(),
        };
        self.dead_letters.send_all(&[to_json(&quarantined)]).await?;
        Ok(())
    }

    /// Emits a connection event for the evaluator. Both events of one episode carry the
    /// episode's start as `CreationTime`, so they land on the same alert.
    #[allow(clippy::too_many_arguments)]
    async fn emit_connection_event(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        ledger: &StreamState,
        operation: &str,
        episode_start: DateTime<Utc>,
        error: Option<&PollError>,
    ) -> Result<(), PollError> {
        let now = self.clock.now();
        // Streams that break together (revoked consent breaks them all) form one episode: the
        // event is keyed by the 15-minute window the episode began in, so they count once.
        let (episode_start, _) = crate::alert::AggregationWindow::minutes(15).containing(episode_start);
        let record = json!({
            "Id": format!("vigil-connection:{}:{}:{}", tenant.tenant_id, episode_start.timestamp(), if operation == CONNECTION_PROBLEM { "problem" } else { "restored" }),
            "RecordType": 0,
            "CreationTime": episode_start.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "Operation": operation,
            "OrganizationId": tenant.tenant_id.as_str(),
            "OrganizationName": tenant.name,
            "UserId": "Vigil",
            "Workload": "Vigil",
            "Stream": stream.as_str(),
            "ObservedAt": now.to_rfc3339(),
            "ErrorClass": error.map(|e| e.class().as_str()),
            "ErrorMessage": error.map(PollError::summary).or_else(|| ledger.last_error.clone()),
            "ConsecutiveFailures": ledger.consecutive_failures,
        });
        let message = AuditEventsMessage {
            msp_id: tenant.msp_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            stream,
            content_id: "vigil-connection".into(),
            records: vec![record],
        };
        self.events.send_all(&[to_json(&message)]).await?;
        Ok(())
    }
}

/// A blob left open because some of its records were claimed elsewhere.
struct PendingBlob {
    content_id: String,
    records: Vec<(RecordId, Value)>,
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| unreachable!("messages always serialise"))
}

fn truncate_to_second(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::seconds(1)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::{MspId, TenantId};
    use crate::memory::*;
    use crate::secret::SecretString;
    use serde_json::json;

    struct Fixture {
        service: PollService,
        source: Arc<MemoryAuditSource>,
        graph: Arc<MemorySecurityAlertSource>,
        events: Arc<MemoryQueue>,
        dead_letters: Arc<MemoryQueue>,
        jobs: Arc<MemoryQueue>,
        clock: Arc<ManualClock>,
        tenant: Tenant,
    }

    fn tenant(id: &str) -> Tenant {
        crate::contract::sample_tenant(&MspId::parse("acme").unwrap(), &TenantId::parse(id).unwrap())
    }

    async fn fixture() -> Fixture {
        let config = Arc::new(MemoryConfigStore::default());
        let secrets = Arc::new(MemorySecretStore::default());
        let tenant = tenant("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11");
        config.create_tenant(&tenant).await.unwrap();
        let credentials = json!({"client_id": "app", "client_secret": "s3cret"}).to_string();
        secrets.put_secret(&SecretName::m365_app(&tenant.msp_id, &tenant.tenant_id), &SecretString::new(credentials)).await.unwrap();
        let source = Arc::new(MemoryAuditSource::default());
        let graph = Arc::new(MemorySecurityAlertSource::default());
        let events = Arc::new(MemoryQueue::default());
        let dead_letters = Arc::new(MemoryQueue::default());
        let jobs = Arc::new(MemoryQueue::default());
        let clock = Arc::new(ManualClock::at(Utc::now()));
        let service = PollService {
            config,
            state: Arc::new(MemoryIngestState::default()),
            secrets,
            source: source.clone(),
            subscriptions: source.clone(),
            security_alerts: graph.clone(),
            events: events.clone(),
            dead_letters: dead_letters.clone(),
            jobs: jobs.clone(),
            clock: clock.clone(),
            settings: PollSettings { streams: vec![ContentType::Exchange.into(), AuditStream::GraphAlerts], ..PollSettings::default() },
        };
        Fixture { service, source, graph, events, dead_letters, jobs, clock, tenant }
    }

    /// One scheduled tick: fan out, then run every job (as the job consumer would).
    async fn tick(f: &Fixture) -> (PollReport, usize) {
        f.service.fan_out().await.unwrap();
        let mut report = PollReport::default();
        let mut failures = 0;
        for job in f.jobs.drain() {
            match f.service.handle_job(&job).await {
                Ok(r) => report.add(&r),
                Err(_) => failures += 1,
            }
        }
        (report, failures)
    }

    fn record(id: &str) -> Value {
        json!({"Id": id, "RecordType": 1, "CreationTime": "2026-01-05T09:41:27", "Operation": "New-InboxRule", "UserId": "alice@contoso.com", "Workload": "Exchange"})
    }

    fn enqueued(queue: &MemoryQueue) -> Vec<Value> {
        queue.drain().iter().flat_map(|body| serde_json::from_str::<AuditEventsMessage>(body).unwrap().records).collect()
    }

    fn ids(records: &[Value]) -> Vec<String> {
        let mut ids: Vec<String> = records.iter().map(|r| r["Id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn the_tick_enqueues_one_job_per_tenant_and_stream() {
        let f = fixture().await;
        f.service.config.create_tenant(&tenant("0e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11")).await.unwrap();
        assert_eq!(f.service.fan_out().await.unwrap(), 4);
        let jobs: Vec<PollJob> = f.jobs.drain().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
        assert!(jobs.iter().any(|j| matches!(j, PollJob::Stream { stream: AuditStream::GraphAlerts, .. })));
    }

    #[tokio::test]
    async fn the_tick_registers_the_webhook_once_per_tenant_with_a_stored_auth_hash() {
        let mut f = fixture().await;
        f.service.settings.webhook_base = Some("https://hooks.example/webhooks/o365".into());
        tick(&f).await;
        tick(&f).await;
        let registrations = f.source.registrations();
        assert_eq!(registrations.len(), 1, "only the tenant's content-type streams, once: {registrations:?}");
        let (content_type, address, auth_id) = &registrations[0];
        assert_eq!(*content_type, ContentType::Exchange);
        assert_eq!(address, &format!("https://hooks.example/webhooks/o365/acme/{}", f.tenant.tenant_id));
        let stored = f.service.config.get_tenant(&f.tenant.msp_id, &f.tenant.tenant_id).await.unwrap().unwrap();
        assert!(stored.webhook_registered);
        assert_eq!(stored.webhook_auth_hash.as_deref(), Some(webhook_auth_hash(auth_id).as_str()));
    }

    #[tokio::test]
    async fn a_tenant_can_narrow_its_streams() {
        let f = fixture().await;
        let mut narrowed = f.tenant.clone();
        narrowed.streams = Some(vec![AuditStream::GraphAlerts]);
        f.service.config.put_tenant(&narrowed).await.unwrap();
        assert_eq!(f.service.fan_out().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn records_are_enqueued_once_even_when_listed_again_or_duplicated_across_blobs() {
        let f = fixture().await;
        let at = f.clock.now() - Duration::minutes(5);
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("a"), record("b")]).to_string());
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("b"), record("c")]).to_string());
        let (report, _) = tick(&f).await;
        assert_eq!((report.records_enqueued, report.records_skipped), (3, 1));
        assert_eq!(ids(&enqueued(&f.events)), ["a", "b", "c"]);

        f.clock.advance(Duration::minutes(1));
        let (again, _) = tick(&f).await;
        assert_eq!(again.records_enqueued, 0);
        assert!(f.events.drain().is_empty(), "polling the same content again enqueues nothing");
        assert_eq!(f.source.fetch_count(), 2, "finished blobs are not fetched again");
    }

    #[tokio::test]
    async fn a_record_claimed_by_a_run_that_crashed_is_enqueued_once_its_lease_has_passed() {
        let f = fixture().await;
        let at = f.clock.now() - Duration::minutes(2);
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("stuck"), record("fine")]).to_string());
        // A run claimed "stuck" and died before enqueueing it.
        let stuck = RecordId::parse("stuck").unwrap();
        f.service
            .state
            .claim_record(&f.tenant.msp_id, &f.tenant.tenant_id, &stuck, f.clock.now(), f.service.settings.claim_lease)
            .await
            .unwrap();
        let (first, _) = tick(&f).await;
        assert_eq!((first.records_enqueued, first.records_skipped), (1, 1));
        f.clock.advance(Duration::minutes(6));
        let (second, _) = tick(&f).await;
        assert_eq!(second.records_enqueued, 1, "the abandoned claim is taken over; the blob was left open for it");
        assert_eq!(ids(&enqueued(&f.events)), ["fine", "stuck"]);
        f.clock.advance(Duration::minutes(1));
        let (third, _) = tick(&f).await;
        assert_eq!((third.records_enqueued, third.blobs_fetched), (0, 0), "now the blob is done");
    }

    #[tokio::test]
    async fn an_invalid_blob_is_dead_lettered_and_the_others_still_flow() {
        let f = fixture().await;
        let at = f.clock.now() - Duration::minutes(5);
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, "[{\"Id\": \"x\",".into());
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("good"), {"RecordType": 1}]).to_string());
        let (report, _) = tick(&f).await;
        assert_eq!((report.records_enqueued, report.quarantined), (1, 2));
        assert_eq!(ids(&enqueued(&f.events)), ["good"]);
        let dead: Vec<QuarantinedContent> = f.dead_letters.drain().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
        assert!(dead.iter().any(|q| q.reason.contains("not valid JSON") && q.content.starts_with("[{")));
        assert!(dead.iter().any(|q| q.reason.contains("Id")));
    }

    #[tokio::test]
    async fn windows_never_exceed_24_hours_and_an_outage_is_backfilled() {
        let f = fixture().await;
        tick(&f).await;
        let outage_start = f.clock.now();
        f.source.set_failure(SourceFailure::Unavailable);
        for _ in 0..3 {
            f.clock.advance(Duration::hours(1));
            tick(&f).await;
        }
        // Content that appeared during the outage is still held by Microsoft.
        f.source.publish(
            &f.tenant.tenant_id,
            ContentType::Exchange,
            outage_start + Duration::minutes(90),
            json!([record("during-outage")]).to_string(),
        );
        f.clock.advance(Duration::days(2));
        f.source.set_failure(SourceFailure::None);
        let (report, _) = tick(&f).await;
        assert!(ids(&enqueued(&f.events)).contains(&"during-outage".to_owned()), "the gap is backfilled");
        assert!(report.windows_listed >= 3, "two days and three hours take three windows or more");
        assert!(f.source.windows().iter().all(|w| w.end - w.start <= Duration::hours(24)));
    }

    #[tokio::test]
    async fn coverage_older_than_the_retention_is_recorded_as_lost_not_requested() {
        let f = fixture().await;
        let key =
            StreamKey { msp_id: f.tenant.msp_id.clone(), tenant_id: f.tenant.tenant_id.clone(), stream: ContentType::Exchange.into() };
        f.service.state.put_stream(&key, &StreamState::starting_at(f.clock.now() - Duration::days(30))).await.unwrap();
        let (report, _) = tick(&f).await;
        assert_eq!(report.intervals_lost, 1);
        let ledger = f.service.state.get_stream(&key).await.unwrap().unwrap();
        assert_eq!(ledger.lost.len(), 1);
        assert_eq!(ledger.covered_until, truncate_to_second(f.clock.now()));
        assert!(f.source.windows().iter().all(|w| w.start >= f.clock.now() - Duration::days(7)));
    }

    fn connection_events(events: &MemoryQueue) -> Vec<Value> {
        enqueued(events).into_iter().filter(|r| r["Workload"] == "Vigil").collect()
    }

    #[tokio::test]
    async fn revoked_consent_raises_one_connection_problem_and_recovery_resolves_it() {
        let f = fixture().await;
        f.source.set_failure(SourceFailure::AccessRefused);
        tick(&f).await;
        tick(&f).await;
        let problems = connection_events(&f.events);
        assert_eq!(problems.len(), 1, "one event per episode, not per failed poll");
        assert_eq!(problems[0]["Operation"], CONNECTION_PROBLEM);
        assert!(problems[0]["ErrorMessage"].as_str().unwrap().contains("AADSTS700016"));
        assert_eq!(problems[0]["OrganizationName"], "Contoso");

        f.source.set_failure(SourceFailure::None);
        f.clock.advance(Duration::minutes(30));
        let (report, _) = tick(&f).await;
        assert_eq!(report.connection_problems_resolved, 1);
        let restored = connection_events(&f.events);
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0]["Operation"], CONNECTION_RESTORED);
        assert_eq!(restored[0]["CreationTime"], problems[0]["CreationTime"], "both events of an episode share its start");
    }

    #[tokio::test]
    async fn transient_failures_become_a_problem_only_past_the_threshold() {
        let f = fixture().await;
        f.source.set_failure(SourceFailure::Unavailable);
        for _ in 0..4 {
            tick(&f).await;
        }
        assert!(connection_events(&f.events).is_empty());
        tick(&f).await;
        assert_eq!(connection_events(&f.events).len(), 1);
    }

    #[tokio::test]
    async fn a_tenant_without_credentials_fails_alone_and_says_so() {
        let f = fixture().await;
        let orphan = tenant("0e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11");
        f.service.config.create_tenant(&orphan).await.unwrap();
        f.source.publish(
            &f.tenant.tenant_id,
            ContentType::Exchange,
            f.clock.now() - Duration::minutes(1),
            json!([record("a")]).to_string(),
        );
        let (report, failures) = tick(&f).await;
        assert_eq!(
            (report.records_enqueued, report.streams_failed, failures),
            (1, 2, 0),
            "the orphan's two streams fail (recorded, not retried), the other tenant's work is done"
        );
        let events = connection_events(&f.events);
        assert!(events.iter().all(|e| e["OrganizationId"] == orphan.tenant_id.as_str()));
        assert_eq!(events.len(), 2, "one event per broken stream");
        assert_eq!(events[0]["Id"], events[1]["Id"], "but one episode: they count once");
    }

    #[tokio::test]
    async fn a_blob_announced_by_webhook_and_also_listed_is_processed_once() {
        let f = fixture().await;
        let at = f.clock.now() - Duration::minutes(2);
        let content_id = f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("a")]).to_string());
        let job = PollJob::Fetch {
            msp_id: f.tenant.msp_id.clone(),
            tenant_id: f.tenant.tenant_id.clone(),
            content_type: ContentType::Exchange,
            blobs: vec![AnnouncedBlob {
                content_id: content_id.clone(),
                content_uri: format!("memory://{content_id}"),
                content_created: at,
            }],
        };
        let fetched = f.service.run_job(job).await.unwrap();
        assert_eq!(fetched.records_enqueued, 1);
        let (listed, _) = tick(&f).await;
        assert_eq!(listed.records_enqueued, 0);
        assert_eq!(f.source.fetch_count(), 1);
        assert_eq!(ids(&enqueued(&f.events)), ["a"]);
    }

    #[tokio::test]
    async fn each_graph_alert_update_is_one_event_and_repeats_are_skipped() {
        let f = fixture().await;
        let t0 = f.clock.now() - Duration::minutes(10);
        let alert = |updated: DateTime<Utc>| json!({"id": "da637", "title": "Suspicious inbox rule", "severity": "high", "lastUpdateDateTime": updated.to_rfc3339()});
        f.graph.upsert(&f.tenant.tenant_id, alert(t0));
        tick(&f).await;
        assert_eq!(enqueued(&f.events).len(), 1);
        tick(&f).await;
        assert!(enqueued(&f.events).is_empty(), "the same update is not enqueued twice");
        f.graph.upsert(&f.tenant.tenant_id, alert(t0 + Duration::minutes(5)));
        tick(&f).await;
        assert_eq!(enqueued(&f.events).len(), 1, "an update is a new event");
    }
}
