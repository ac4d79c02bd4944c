//! Polling Microsoft 365 at MSP scale.
//!
//! **Fan-out.** The scheduled tick ([`PollService::fan_out`]) enqueues one [`PollJob::Stream`]
//! per (tenant, stream) on the poll-jobs queue; the poller consumes those jobs
//! ([`PollService::run_job`]), so tenants are polled in parallel, retried independently, and one
//! failing tenant never delays another. Webhook-announced blobs arrive as [`PollJob::Fetch`].
//!
//! **Coverage.** Each stream has a ledger ([`StreamState`]): everything before `covered_until`
//! is listed and enqueued. A poll lists windows strictly shorter than 24 h (Microsoft refuses
//! 24 h with `AF20055`) from `covered_until - overlap` to now, so an outage is backfilled
//! automatically when polling works again; what left Microsoft's 7-day retention first is
//! recorded as lost (merged, bounded). A refused window is halved and listed again, down to a
//! floor; past it the job is retried later. `covered_until` advances only after a window's
//! records are enqueued. A new stream starts the MSP's `first_lookback_hours` back. Overlapping
//! windows and webhook/poll double announcements are safe: blobs are marked done and records
//! are claimed by `(tenant, record Id)`.
//!
//! **Nothing lost silently.** A blob that is not a JSON array, or a record without the common
//! fields, goes whole to the events dead-letter queue; the rest flows on.
//!
//! **Connection problems are alerts.** Refused access (revoked consent, disabled app, auditing
//! off) at once, or repeated failures beyond a threshold, emit a `Vigil.ConnectionProblem`
//! event that the built-in "Tenant connection problem" policy turns into an alert; the first
//! successful poll afterwards emits `Vigil.ConnectionRestored`, which resolves it. A stream
//! whose coverage has not moved for [`PollSettings::stuck_after`] (Microsoft answers, but not
//! with content) emits `Vigil.StreamStuck` instead, and `Vigil.StreamMoving` once it moves.
//! Lost intervals, stopped subscriptions and disabled webhooks are self-monitoring conditions
//! (`selfmon`, [`crate::selfmon`]).

use crate::audit::AuditRecord;
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, QueueError, SecretError, SourceError, StoreError};
use crate::ids::{AuditStream, ContentType, RecordId};
use crate::messages::{AnnouncedBlob, AuditEventsMessage, PollJob, QuarantinedContent, pack_records, truncate_to};
use crate::ports::{
    AuditSource, ClaimOutcome, ConfigStore, ContentBlob, IngestStateStore, MessageQueue, ReplayStore, SecretName, SecretStore,
    SecurityAlertSource, StreamKey, StreamState, TimeWindow,
};
use crate::ports::{SubscriptionManager, TenantChange, WebhookRegistration};
use crate::tenant::{M365AppCredentials, Msp, Tenant, new_webhook_auth_id, webhook_auth_hash};
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use tracing::{info, warn};

mod events;
mod licences;
mod mailboxes;
pub mod order;
mod relationships;
mod removal;
pub use removal::{FOLLOW_UP_DELAY, RESUME_REMOVALS_AFTER_MINUTES};
mod replay;
mod selfmon;
pub use events::{CONNECTION_PROBLEM, CONNECTION_RESTORED, STREAM_MOVING, STREAM_STUCK};
pub use licences::LicencePorts;
pub use relationships::READ_EVERY_HOURS;

/// How long a job whose window Microsoft keeps refusing waits before it is retried.
pub const WINDOW_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// Tunables of the poller.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Streams polled for every tenant (unless the tenant narrows them).
    pub streams: Vec<AuditStream>,
    /// The longest listing window: Microsoft refuses 24 hours (`AF20055`), so a margin less.
    pub max_window: Duration,
    /// The shortest window a refused one is halved down to before the job is retried later.
    pub min_window: Duration,
    /// How far back a window may start: Microsoft's 7 days minus a margin for clock skew.
    pub retention: Duration,
    /// How long a stream's coverage may stay put before a "stream stuck" alert.
    pub stuck_after: Duration,
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
    /// How long one replay run may read before it stops and reports itself truncated (under
    /// the poller's timeout).
    pub replay_budget: std::time::Duration,
    /// How long a removal job waits before looking again at a relationship Graph is still
    /// terminating.
    pub removal_follow_up: std::time::Duration,
    /// How long after its customers' sign-in reads the partner tenant is read (so their
    /// activity counts in the findings of the same read).
    pub partner_read_head_start: std::time::Duration,
    /// How often a stream's subscription and webhook are checked (`subscriptions/list`) while
    /// no self-monitoring episode of theirs is open ([`crate::selfmon`]).
    pub subscription_check_every: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            streams: AuditStream::all(),
            max_window: Duration::hours(24) - Duration::minutes(10),
            min_window: Duration::minutes(15),
            retention: Duration::days(7) - Duration::minutes(15),
            stuck_after: Duration::hours(6),
            overlap: Duration::minutes(30),
            claim_lease: Duration::minutes(5),
            blob_concurrency: 8,
            failure_threshold: 5,
            webhook_base: None,
            replay_budget: std::time::Duration::from_secs(80),
            removal_follow_up: FOLLOW_UP_DELAY,
            partner_read_head_start: std::time::Duration::from_secs(120),
            subscription_check_every: Duration::hours(1),
        }
    }
}

/// Why a poll job could not be done.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("no Microsoft app credentials are stored for tenant {0}")]
    MissingCredentials(String),
    #[error(transparent)]
    Mail(crate::mail::MailError),
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
    /// Listing a window failed for a reason other than refused access; the job is retried.
    #[error("listing {from} to {to} failed: {source}")]
    Window { from: DateTime<Utc>, to: DateTime<Utc>, source: SourceError },
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
            // Retrying a stream is cheap and the next window may well work: never give up on it.
            Self::Window { .. } => ErrorClass::Transient,
            Self::Queue(e) => e.class(),
            Self::Mail(e) => e.class(),
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Source(e) => e.retry_after(),
            // Refused windows wait a while rather than the queue's visibility timeout.
            Self::Window { source, .. } => source.retry_after().or_else(|| self.window_refused().then_some(WINDOW_RETRY_AFTER)),
            _ => None,
        }
    }
}

impl PollError {
    /// Whether this failure means the tenant no longer lets Vigil in (alert at once).
    fn access_refused(&self) -> bool {
        matches!(self, Self::MissingCredentials(_) | Self::Source(SourceError::AccessRefused { .. }))
    }

    /// Whether Microsoft answered but would not list the window (a stream problem, not a
    /// connection problem: it becomes a "stream stuck" alert if it lasts).
    fn window_refused(&self) -> bool {
        matches!(self, Self::Window { source: SourceError::WindowRefused { .. } | SourceError::Rejected { .. }, .. })
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
    /// Windows Microsoft refused, each listed again halved.
    pub windows_refused: usize,
    pub connection_problems_resolved: usize,
    pub streams_stuck: usize,
    pub stuck_streams_moving: usize,
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
        self.windows_refused += other.windows_refused;
        self.connection_problems_resolved += other.connection_problems_resolved;
        self.streams_stuck += other.streams_stuck;
        self.stuck_streams_moving += other.stuck_streams_moving;
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
    /// Replays requested through the API, run as poll jobs.
    pub replays: Arc<dyn ReplayStore>,
    /// The MSPs' own partner tenants (GDAP relationships).
    pub relationship_source: Arc<dyn crate::ports::AdminRelationshipSource>,
    /// Where partner tenants' relationships are kept for the report.
    pub relationships: Arc<dyn crate::ports::RelationshipStore>,
    /// Customer tenants' directories, listed for the daily protected-mailbox count.
    pub mailbox_directory: Arc<dyn crate::ports::MailboxDirectory>,
    /// Where the daily counts are kept.
    pub mailbox_counts: Arc<dyn crate::ports::MailboxCountStore>,
    /// The tickets queue: the billing sync jobs the day's counts make due (the dispatcher holds
    /// the PSA credentials; the poller none).
    pub billing_jobs: Arc<dyn MessageQueue>,
    /// E-mail to customers (a removal of the MSP's access, when asked for).
    pub mail: Arc<dyn crate::ports::MailSender>,
    /// Customer tenants' licences (read daily, findings announced).
    pub licences: LicencePorts,
    pub clock: Arc<dyn Clock>,
    pub settings: PollSettings,
}

impl PollService {
    /// The scheduled tick: one job per (tenant, stream) of every MSP, onto the poll-jobs queue.
    ///
    /// # Errors
    /// When the tenant list cannot be read or the jobs cannot be enqueued.
    pub async fn fan_out(&self) -> Result<usize, PollError> {
        // An offboarded tenant is not polled (its offboarding stops and later purges it).
        let tenants: Vec<Tenant> = self.config.list_all_tenants().await?.into_iter().filter(|t| t.offboarded_at.is_none()).collect();
        if let Some(base) = &self.settings.webhook_base {
            self.register_webhooks(&tenants, base).await;
        }
        let partner = self.partner_jobs(&tenants).await?;
        let counts = self.mailbox_count_jobs(&tenants).await?;
        let licences = self.licence_jobs(&tenants).await?;
        // Fair between MSPs and tenants, and rotated every minute (see `order`).
        let rotation = u64::try_from(self.clock.now().timestamp() / 60).unwrap_or(0);
        let jobs: Vec<String> = order::stream_jobs(&tenants, rotation, |tenant| self.streams_of(tenant))
            .into_iter()
            .chain(partner.now)
            .chain(counts)
            .chain(licences)
            .map(|job| to_json(&job))
            .collect();
        self.jobs.send_all(&jobs).await?;
        let later: Vec<String> = partner.after_head_start.iter().map(to_json).collect();
        if !later.is_empty() {
            self.jobs.send_delayed(&later, self.settings.partner_read_head_start).await?;
        }
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
                if tenant.offboarded_at.is_some() {
                    info!(message = "Tenant offboarded: job acknowledged, nothing polled.", msp_id = %msp_id, tenant_id = %tenant_id);
                    return Ok(PollReport::default());
                }
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
                if tenant.offboarded_at.is_some() {
                    info!(message = "Tenant offboarded: job acknowledged, nothing polled.", msp_id = %msp_id, tenant_id = %tenant_id);
                    return Ok(PollReport::default());
                }
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
            PollJob::Replay { msp_id, tenant_id, replay_id } => {
                let span = tracing::info_span!("replay", msp_id = %msp_id, tenant_id = %tenant_id, replay_id = %replay_id);
                tracing::Instrument::instrument(self.run_replay(&msp_id, &tenant_id, &replay_id), span).await
            }
            PollJob::AdminRelationships { msp_id, at } => {
                let span = tracing::info_span!("partner_tenant", msp_id = %msp_id);
                tracing::Instrument::instrument(self.read_partner_tenant(&msp_id, at), span).await
            }
            PollJob::CustomerSignIns { msp_id, tenant_id, since } => {
                let span = tracing::info_span!("customer_sign_ins", msp_id = %msp_id, tenant_id = %tenant_id);
                tracing::Instrument::instrument(self.read_customer_sign_ins(&msp_id, &tenant_id, since), span).await
            }
            PollJob::Licences { msp_id, tenant_id, at } => {
                let span = tracing::info_span!("licences", msp_id = %msp_id, tenant_id = %tenant_id);
                tracing::Instrument::instrument(self.read_licences(&msp_id, &tenant_id, at), span).await
            }
            PollJob::RemoveRelationship { msp_id, relationship_id } => {
                let span = tracing::info_span!("relationship_removal", msp_id = %msp_id, relationship_id = %relationship_id);
                tracing::Instrument::instrument(self.remove_relationship(&msp_id, &relationship_id), span).await
            }
            PollJob::MailboxCount { msp_id, tenant_id, day } => {
                let span = tracing::info_span!("mailbox_count", msp_id = %msp_id, tenant_id = %tenant_id, %day);
                tracing::Instrument::instrument(self.count_mailboxes(&msp_id, &tenant_id, day), span).await
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
        let mut ledger = match self.state.get_stream(&key).await? {
            Some(ledger) => ledger,
            None => StreamState::starting_at(self.first_start(tenant, now).await?),
        };
        // Coverage that is only written off as lost is not progress.
        let before =
            if stream.content_type().is_some() { ledger.covered_until.max(self.oldest_listable(now)) } else { ledger.covered_until };
        let result = match stream.content_type() {
            Some(content_type) => self.poll_content(tenant, content_type, &key, &mut ledger, now).await,
            None => self.poll_security_alerts(tenant, &key, &mut ledger, now).await,
        };
        if let Some(content_type) = stream.content_type() {
            self.check_subscription(tenant, content_type, &mut ledger, result.is_err(), now).await?;
        }
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
                self.watch_progress(tenant, stream, &mut ledger, true, before, now, &mut report).await?;
                self.watch_losses(tenant, stream, &mut ledger, now).await?;
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
                // A refused window is Microsoft answering: the stream, not the connection, is in
                // trouble, and the stuck-stream alert speaks for it.
                let raise = ledger.problem_since.is_none()
                    && (error.access_refused()
                        || (!error.window_refused() && ledger.consecutive_failures >= self.settings.failure_threshold));
                if raise {
                    let since = truncate_to_second(self.clock.now());
                    self.emit_connection_event(tenant, stream, &ledger, CONNECTION_PROBLEM, since, Some(&error)).await?;
                    ledger.problem_since = Some(since);
                }
                self.watch_progress(tenant, stream, &mut ledger, false, before, now, &mut PollReport::default()).await?;
                self.watch_losses(tenant, stream, &mut ledger, now).await?;
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
        let oldest_available = self.oldest_listable(now);
        let mut report = PollReport::default();
        if ledger.covered_until < oldest_available {
            warn!(message = "Audit content was lost: it left Microsoft's retention before it could be polled.", from = %ledger.covered_until, to = %oldest_available);
            ledger.record_lost(ledger.covered_until, oldest_available);
            ledger.covered_until = oldest_available;
            report.intervals_lost += 1;
        }
        let mut start = truncate_to_second((ledger.covered_until - self.settings.overlap).max(oldest_available));
        let mut span = self.settings.max_window;
        while start < now {
            let end = (start + span).min(now);
            let window = TimeWindow { start, end };
            let mut blobs = match self.source.list_content(&tenant.tenant_id, &credentials, content_type, window).await {
                Ok(blobs) => blobs,
                Err(SourceError::WindowRefused { code, message }) if end - start > self.settings.min_window => {
                    span = ((end - start) / 2).max(self.settings.min_window);
                    report.windows_refused += 1;
                    warn!(message = "Microsoft refused a listing window; listing it again halved.", %start, %end, %code, %message);
                    continue;
                }
                Err(error @ SourceError::AccessRefused { .. }) => return Err(error.into()),
                Err(source) => return Err(PollError::Window { from: start, to: end, source }),
            };
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

    /// The earliest instant a listing window may start.
    fn oldest_listable(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        truncate_to_second(now - self.settings.retention)
    }

    /// Where a new stream starts: the MSP's first look-back (within Microsoft's retention).
    async fn first_start(&self, tenant: &Tenant, now: DateTime<Utc>) -> Result<DateTime<Utc>, PollError> {
        let hours = self.config.get_msp(&tenant.msp_id).await?.map_or(Msp::DEFAULT_FIRST_LOOKBACK_HOURS, |m| m.first_lookback_hours);
        Ok((now - Duration::hours(i64::from(hours))).max(self.oldest_listable(now)))
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
        // A tenant that consented to the MSP app uses its one secret; others have their own.
        let name = if tenant.credentials_from_msp_app {
            SecretName::msp_app(&tenant.msp_id)
        } else {
            SecretName::m365_app(&tenant.msp_id, &tenant.tenant_id)
        };
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
mod tests;
