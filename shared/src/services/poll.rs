//! Polling the Office 365 Management Activity API: for each tenant and content type, list the
//! content blobs since the stream's cursor (windows of at most 24 h inside the last 7 days),
//! fetch each blob, claim each record by `(tenant, record Id)`, enqueue the claimed records for
//! evaluation, and only then mark them done and advance the cursor.
//!
//! Nothing is lost silently: a blob that is not a JSON array, or a record without the common
//! fields, is sent whole to the events dead-letter queue (where an alarm watches) and the rest
//! of the blob goes on. A crash anywhere leaves claims pending and the cursor behind, so the
//! next run redoes the work; claims and the evaluator's own idempotency stop duplicates.

use crate::audit::AuditRecord;
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, QueueError, SecretError, SourceError, StoreError};
use crate::ids::{ContentType, RecordId};
use crate::messages::{AuditEventsMessage, QuarantinedContent, pack_records, truncate_to};
use crate::ports::{
    AuditSource, ClaimOutcome, ConfigStore, ContentBlob, IngestStateStore, MessageQueue, SecretName, SecretStore, StreamKey, TimeWindow,
};
use crate::tenant::{M365AppCredentials, Tenant};
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use tracing::{Instrument, info, info_span, warn};

/// Tunables of the poller.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Content types polled for every tenant.
    pub content_types: Vec<ContentType>,
    /// How far back a brand-new stream starts.
    pub initial_lookback: Duration,
    /// How much of the previous window is listed again (blobs keep appearing late).
    pub overlap: Duration,
    /// How long a record claim is held before another run may take it over.
    pub claim_lease: Duration,
    /// How many streams are polled at once.
    pub concurrency: usize,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            content_types: vec![ContentType::Exchange],
            initial_lookback: Duration::hours(1),
            overlap: Duration::minutes(30),
            claim_lease: Duration::minutes(5),
            concurrency: 8,
        }
    }
}

/// Why one stream could not be polled.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("no Microsoft app credentials are stored for tenant {0}")]
    MissingCredentials(String),
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
            Self::MissingCredentials(_) => ErrorClass::Permanent,
            Self::Store(e) => e.class(),
            Self::Secret(e) => e.class(),
            Self::Source(e) => e.class(),
            Self::Queue(e) => e.class(),
        }
    }
}

/// What one polling run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub streams_polled: usize,
    pub streams_failed: usize,
    pub blobs_fetched: usize,
    pub records_enqueued: usize,
    pub records_skipped: usize,
    pub quarantined: usize,
}

impl PollReport {
    fn add(&mut self, other: &PollReport) {
        self.streams_polled += other.streams_polled;
        self.streams_failed += other.streams_failed;
        self.blobs_fetched += other.blobs_fetched;
        self.records_enqueued += other.records_enqueued;
        self.records_skipped += other.records_skipped;
        self.quarantined += other.quarantined;
    }
}

/// The polling use case.
pub struct PollService {
    pub config: Arc<dyn ConfigStore>,
    pub state: Arc<dyn IngestStateStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub source: Arc<dyn AuditSource>,
    /// Where records go for evaluation.
    pub events: Arc<dyn MessageQueue>,
    /// Where unusable content goes, whole, for an operator.
    pub dead_letters: Arc<dyn MessageQueue>,
    pub clock: Arc<dyn Clock>,
    pub settings: PollSettings,
}

impl PollService {
    /// Polls every stream of every tenant of every MSP. One failing stream never stops the others.
    ///
    /// # Errors
    /// Only when the tenant list itself cannot be read.
    pub async fn poll_all(&self) -> Result<PollReport, StoreError> {
        let tenants = self.config.list_all_tenants().await?;
        let streams: Vec<(Tenant, ContentType)> =
            tenants.into_iter().flat_map(|t| self.settings.content_types.iter().map(move |ct| (t.clone(), *ct))).collect();
        let reports: Vec<PollReport> = futures::stream::iter(streams)
            .map(|(tenant, content_type)| async move {
                let span = info_span!("poll_stream", msp_id = %tenant.msp_id, tenant_id = %tenant.tenant_id, content_type = %content_type);
                match self.poll_stream(&tenant, content_type).instrument(span.clone()).await {
                    Ok(report) => report,
                    Err(error) => {
                        span.in_scope(|| warn!(message = "Polling a stream failed.", error_class = error.class().as_str(), %error));
                        PollReport { streams_failed: 1, ..PollReport::default() }
                    }
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut total = PollReport::default();
        for report in &reports {
            total.add(report);
        }
        Ok(total)
    }

    /// Polls one (tenant, content type) stream up to now.
    ///
    /// # Errors
    /// When credentials are missing, or a store, queue or the source fails; the cursor then
    /// stays where the last fully enqueued window ended.
    pub async fn poll_stream(&self, tenant: &Tenant, content_type: ContentType) -> Result<PollReport, PollError> {
        let credentials = self.credentials(tenant).await?;
        let stream = StreamKey { msp_id: tenant.msp_id.clone(), tenant_id: tenant.tenant_id.clone(), content_type };
        let now = truncate_to_second(self.clock.now());
        let oldest_allowed = now - Duration::days(7) + Duration::minutes(10);
        let cursor = self.state.get_cursor(&stream).await?;
        let mut start =
            truncate_to_second(cursor.map_or(now - self.settings.initial_lookback, |c| c - self.settings.overlap).max(oldest_allowed));
        let mut report = PollReport { streams_polled: 1, ..PollReport::default() };
        while start < now {
            let end = (start + Duration::hours(24)).min(now);
            let window = TimeWindow { start, end };
            let mut blobs = self.source.list_content(&tenant.tenant_id, &credentials, content_type, window).await?;
            blobs.sort_by(|a, b| (a.content_created, &a.content_id).cmp(&(b.content_created, &b.content_id)));
            for blob in &blobs {
                self.process_blob(tenant, &credentials, content_type, blob, &mut report).await?;
            }
            self.state.put_cursor(&stream, end).await?;
            start = end;
        }
        info!(
            message = "Stream polled.",
            blobs = report.blobs_fetched,
            enqueued = report.records_enqueued,
            skipped = report.records_skipped,
            quarantined = report.quarantined
        );
        Ok(report)
    }

    async fn credentials(&self, tenant: &Tenant) -> Result<M365AppCredentials, PollError> {
        let name = SecretName::m365_app(&tenant.msp_id, &tenant.tenant_id);
        let secret = self.secrets.get_secret(&name).await?.ok_or_else(|| PollError::MissingCredentials(tenant.tenant_id.to_string()))?;
        serde_json::from_str(secret.expose()).map_err(|_| PollError::Secret(SecretError::Malformed { name: name.as_str().to_owned() }))
    }

    async fn process_blob(
        &self,
        tenant: &Tenant,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        blob: &ContentBlob,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        if self.state.blob_done(&tenant.msp_id, &tenant.tenant_id, &blob.content_id).await? {
            return Ok(());
        }
        let body = self.source.fetch_content(&tenant.tenant_id, credentials, blob).await?;
        report.blobs_fetched += 1;
        let quarantine = |reason: String, content: &str| QuarantinedContent {
            msp_id: tenant.msp_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            content_type,
            content_id: blob.content_id.clone(),
            reason,
            content: truncate_to(content, 200 * 1024).to_owned(),
        };
        let mut quarantined = Vec::new();
        let mut records: Vec<(RecordId, Value)> = Vec::new();
        match serde_json::from_str::<Value>(&body) {
            Ok(Value::Array(items)) => {
                for item in items {
                    match AuditRecord::from_value(item.clone()) {
                        Ok(record) => records.push((record.id, item)),
                        Err(error) => quarantined.push(quarantine(format!("unusable record: {error}"), &item.to_string())),
                    }
                }
            }
            Ok(_) => quarantined.push(quarantine("content blob is not a JSON array".into(), &body)),
            Err(error) => quarantined.push(quarantine(format!("content blob is not valid JSON: {error}"), &body)),
        }

        let now = self.clock.now();
        let mut claimed_ids = Vec::new();
        let mut claimed_records = Vec::new();
        for (id, record) in records {
            match self.state.claim_record(&tenant.msp_id, &tenant.tenant_id, &id, now, self.settings.claim_lease).await? {
                ClaimOutcome::Claimed => {
                    claimed_ids.push(id);
                    claimed_records.push(record);
                }
                ClaimOutcome::AlreadyProcessed | ClaimOutcome::InFlight => report.records_skipped += 1,
            }
        }
        if !claimed_records.is_empty() {
            let template = AuditEventsMessage {
                msp_id: tenant.msp_id.clone(),
                tenant_id: tenant.tenant_id.clone(),
                content_type,
                content_id: blob.content_id.clone(),
                records: Vec::new(),
            };
            let bodies = pack_records(&template, claimed_records).iter().map(to_json).collect::<Vec<_>>();
            self.events.send_all(&bodies).await?;
            self.state.complete_records(&tenant.msp_id, &tenant.tenant_id, &claimed_ids, now).await?;
            report.records_enqueued += claimed_ids.len();
        }
        if !quarantined.is_empty() {
            warn!(message = "Unusable audit content sent to the dead-letter queue.", content_id = %blob.content_id, count = quarantined.len());
            let bodies = quarantined.iter().map(to_json).collect::<Vec<_>>();
            self.dead_letters.send_all(&bodies).await?;
            report.quarantined += quarantined.len();
        }
        self.state.mark_blob_done(&tenant.msp_id, &tenant.tenant_id, &blob.content_id, now).await?;
        Ok(())
    }
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
        events: Arc<MemoryQueue>,
        dead_letters: Arc<MemoryQueue>,
        clock: Arc<ManualClock>,
        tenant: Tenant,
    }

    async fn fixture() -> Fixture {
        let config = Arc::new(MemoryConfigStore::default());
        let secrets = Arc::new(MemorySecretStore::default());
        let tenant = Tenant {
            msp_id: MspId::parse("acme").unwrap(),
            tenant_id: TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
            name: "Contoso".into(),
            domains: vec![],
            connectwise_company_id: Some(250),
            m365_credentials_set: true,
            created_at: Utc::now(),
        };
        config.create_tenant(&tenant).await.unwrap();
        let credentials = json!({"client_id": "app", "client_secret": "s3cret"}).to_string();
        secrets.put_secret(&SecretName::m365_app(&tenant.msp_id, &tenant.tenant_id), &SecretString::new(credentials)).await.unwrap();
        let source = Arc::new(MemoryAuditSource::default());
        let events = Arc::new(MemoryQueue::default());
        let dead_letters = Arc::new(MemoryQueue::default());
        let clock = Arc::new(ManualClock::at(Utc::now()));
        let service = PollService {
            config,
            state: Arc::new(MemoryIngestState::default()),
            secrets,
            source: source.clone(),
            events: events.clone(),
            dead_letters: dead_letters.clone(),
            clock: clock.clone(),
            settings: PollSettings::default(),
        };
        Fixture { service, source, events, dead_letters, clock, tenant }
    }

    fn record(id: &str) -> Value {
        json!({"Id": id, "RecordType": 1, "CreationTime": "2026-01-05T09:41:27", "Operation": "New-InboxRule", "UserId": "alice@contoso.com", "Workload": "Exchange"})
    }

    fn enqueued_ids(queue: &MemoryQueue) -> Vec<String> {
        queue
            .drain()
            .iter()
            .flat_map(|body| serde_json::from_str::<AuditEventsMessage>(body).unwrap().records)
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn records_are_enqueued_once_even_when_listed_again_or_duplicated_across_blobs() {
        let f = fixture().await;
        let at = f.clock.now() - Duration::minutes(5);
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("a"), record("b")]).to_string());
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("b"), record("c")]).to_string());
        let report = f.service.poll_all().await.unwrap();
        assert_eq!(report.records_enqueued, 3);
        assert_eq!(report.records_skipped, 1);
        let mut ids = enqueued_ids(&f.events);
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);

        f.clock.advance(Duration::minutes(1));
        let again = f.service.poll_all().await.unwrap();
        assert_eq!(again.records_enqueued, 0);
        assert!(f.events.drain().is_empty(), "polling the same content again enqueues nothing");
        assert_eq!(f.source.fetch_count(), 2, "finished blobs are not fetched again");
    }

    #[tokio::test]
    async fn an_invalid_blob_is_dead_lettered_and_the_others_still_flow() {
        let f = fixture().await;
        let at = f.clock.now() - Duration::minutes(5);
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, "[{\"Id\": \"x\",".into());
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, at, json!([record("good"), {"RecordType": 1}]).to_string());
        let report = f.service.poll_all().await.unwrap();
        assert_eq!(report.records_enqueued, 1);
        assert_eq!(report.quarantined, 2);
        assert_eq!(enqueued_ids(&f.events), ["good"]);
        let dead: Vec<QuarantinedContent> = f.dead_letters.drain().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
        assert!(dead.iter().any(|q| q.reason.contains("not valid JSON") && q.content.starts_with("[{")));
        assert!(dead.iter().any(|q| q.reason.contains("Id")));
    }

    #[tokio::test]
    async fn a_tenant_without_credentials_fails_alone() {
        let f = fixture().await;
        let orphan = Tenant { tenant_id: TenantId::parse("0e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(), ..f.tenant.clone() };
        f.service.config.create_tenant(&orphan).await.unwrap();
        f.source.publish(
            &f.tenant.tenant_id,
            ContentType::Exchange,
            f.clock.now() - Duration::minutes(1),
            json!([record("a")]).to_string(),
        );
        let report = f.service.poll_all().await.unwrap();
        assert_eq!((report.streams_polled, report.streams_failed, report.records_enqueued), (1, 1, 1));
    }

    #[tokio::test]
    async fn windows_never_exceed_24_hours_or_reach_back_past_7_days() {
        let f = fixture().await;
        let stream =
            StreamKey { msp_id: f.tenant.msp_id.clone(), tenant_id: f.tenant.tenant_id.clone(), content_type: ContentType::Exchange };
        f.service.state.put_cursor(&stream, f.clock.now() - Duration::days(30)).await.unwrap();
        let old = f.clock.now() - Duration::days(3);
        f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, old, json!([record("old")]).to_string());
        let report = f.service.poll_all().await.unwrap();
        assert_eq!(report.records_enqueued, 1, "content from 3 days ago is found by walking day-sized windows");
        let cursor = f.service.state.get_cursor(&stream).await.unwrap().unwrap();
        assert_eq!(cursor, truncate_to_second(f.clock.now()));
    }
}
