//! Unit tests of the poller: fan-out, coverage, claims, connection problems.

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
        replays: Arc::new(MemoryReplayStore::default()),
        relationship_source: Arc::new(crate::memory::MemoryRelationshipSource::default()),
        relationships: Arc::new(MemoryConfigStore::default()),
        mailbox_directory: Arc::new(crate::memory::MemoryMailboxDirectory::default()),
        mailbox_counts: Arc::new(crate::memory::MemoryBillingStore::default()),
        billing_jobs: Arc::new(crate::memory::MemoryQueue::default()),
        mail: Arc::new(MemoryMailSender::default()),
        licences: crate::services::poll::LicencePorts::in_memory(),
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
async fn the_tick_enqueues_one_job_per_tenant_and_stream_and_on_the_days_first_tick_one_mailbox_count_per_tenant() {
    let f = fixture().await;
    f.service.config.create_tenant(&tenant("0e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11")).await.unwrap();
    assert_eq!(f.service.fan_out().await.unwrap(), 6);
    let jobs: Vec<PollJob> = f.jobs.drain().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    assert_eq!(jobs.iter().filter(|j| matches!(j, PollJob::Stream { .. })).count(), 4);
    assert_eq!(jobs.iter().filter(|j| matches!(j, PollJob::MailboxCount { .. })).count(), 2);
    assert!(jobs.iter().any(|j| matches!(j, PollJob::Stream { stream: AuditStream::GraphAlerts, .. })));
    assert_eq!(f.service.fan_out().await.unwrap(), 4, "the next tick of the day: streams only");
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
    f.service.fan_out().await.unwrap();
    let jobs: Vec<PollJob> = f.jobs.drain().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    assert_eq!(jobs.iter().filter(|j| matches!(j, PollJob::Stream { .. })).count(), 1);
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
async fn windows_are_always_shorter_than_24_hours_and_an_outage_is_backfilled() {
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
    assert!(f.source.windows().iter().all(|w| w.end - w.start < Duration::hours(24)), "Microsoft refuses 24 hours exactly");
    assert_eq!(report.windows_refused, 0);
}

#[tokio::test]
async fn coverage_older_than_the_retention_is_recorded_as_lost_not_requested() {
    let f = fixture().await;
    let key = StreamKey { msp_id: f.tenant.msp_id.clone(), tenant_id: f.tenant.tenant_id.clone(), stream: ContentType::Exchange.into() };
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
    f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, f.clock.now() - Duration::minutes(1), json!([record("a")]).to_string());
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
async fn a_tenant_consented_to_the_msp_app_is_polled_with_the_msp_apps_one_secret() {
    let f = fixture().await;
    let consented = Tenant { credentials_from_msp_app: true, ..tenant("0e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11") };
    f.service.config.create_tenant(&consented).await.unwrap();
    f.source.publish(&consented.tenant_id, ContentType::Exchange, f.clock.now() - Duration::minutes(1), json!([record("m")]).to_string());
    let (report, _) = tick(&f).await;
    assert_eq!(report.streams_failed, 2, "no MSP app registered yet: its two streams fail");
    let app = json!({"client_id": "msp-app", "client_secret": "one-secret"}).to_string();
    f.service.secrets.put_secret(&SecretName::msp_app(&consented.msp_id), &SecretString::new(app)).await.unwrap();
    let (report, failures) = tick(&f).await;
    assert_eq!((report.streams_failed, failures), (0, 0), "the MSP app's secret reaches the tenant");
    assert!(ids(&enqueued(&f.events)).contains(&"m".to_owned()));
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
        blobs: vec![AnnouncedBlob { content_id: content_id.clone(), content_uri: format!("memory://{content_id}"), content_created: at }],
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

fn exchange_key(f: &Fixture) -> StreamKey {
    StreamKey { msp_id: f.tenant.msp_id.clone(), tenant_id: f.tenant.tenant_id.clone(), stream: ContentType::Exchange.into() }
}

/// The in-memory source, but refusing windows longer than `longest` (as a Microsoft that has
/// grown stricter would).
struct Strict {
    inner: Arc<MemoryAuditSource>,
    longest: std::sync::Mutex<Duration>,
}

#[async_trait::async_trait]
impl AuditSource for Strict {
    async fn list_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        window: TimeWindow,
    ) -> Result<Vec<ContentBlob>, SourceError> {
        if window.end - window.start > *self.longest.lock().unwrap() {
            return Err(SourceError::WindowRefused { code: "AF20055".into(), message: "window too long".into() });
        }
        self.inner.list_content(tenant_id, credentials, content_type, window).await
    }
    async fn fetch_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        blob: &ContentBlob,
    ) -> Result<String, SourceError> {
        self.inner.fetch_content(tenant_id, credentials, blob).await
    }
}

fn strict(f: &mut Fixture, longest: Duration) -> Arc<Strict> {
    let source = Arc::new(Strict { inner: f.source.clone(), longest: std::sync::Mutex::new(longest) });
    f.service.source = source.clone();
    source
}

#[tokio::test]
async fn a_refused_window_is_halved_and_listed_again_within_the_job() {
    let mut f = fixture().await;
    strict(&mut f, Duration::hours(5));
    f.service.state.put_stream(&exchange_key(&f), &StreamState::starting_at(f.clock.now() - Duration::hours(30))).await.unwrap();
    f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, f.clock.now() - Duration::hours(29), json!([record("early")]).to_string());
    f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, f.clock.now() - Duration::hours(1), json!([record("late")]).to_string());
    let (report, failures) = tick(&f).await;
    assert_eq!(failures, 0);
    assert_eq!(report.windows_refused, 3, "23h50 → 11h55 → 5h57'30 → 2h58'45");
    assert_eq!(ids(&enqueued(&f.events)), ["early", "late"]);
    let ledger = f.service.state.get_stream(&exchange_key(&f)).await.unwrap().unwrap();
    assert_eq!(ledger.covered_until, truncate_to_second(f.clock.now()));
}

#[tokio::test]
async fn a_window_refused_even_at_the_floor_retries_the_job_later_and_raises_no_connection_problem() {
    let mut f = fixture().await;
    strict(&mut f, Duration::minutes(5));
    let stuck_at = truncate_to_second(f.clock.now() - Duration::hours(2));
    f.service.state.put_stream(&exchange_key(&f), &StreamState::starting_at(stuck_at)).await.unwrap();
    let job =
        PollJob::Stream { msp_id: f.tenant.msp_id.clone(), tenant_id: f.tenant.tenant_id.clone(), stream: ContentType::Exchange.into() };
    for _ in 0..6 {
        let error = f.service.run_job(job.clone()).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Transient, "the job is retried, not ended: {error}");
        assert_eq!(error.retry_after(), Some(WINDOW_RETRY_AFTER));
        assert!(error.to_string().contains("AF20055"));
    }
    assert!(connection_events(&f.events).is_empty(), "Microsoft answers: the connection is fine");
    let ledger = f.service.state.get_stream(&exchange_key(&f)).await.unwrap().unwrap();
    assert_eq!(ledger.covered_until, stuck_at);
    assert!(ledger.last_error.unwrap().contains("AF20055"));
}

#[tokio::test]
async fn a_stream_that_stops_moving_raises_stream_stuck_once_and_moving_again_resolves_it() {
    let mut f = fixture().await;
    tick(&f).await;
    let refusing = strict(&mut f, Duration::zero());
    for _ in 0..5 {
        f.clock.advance(Duration::hours(1));
        tick(&f).await;
    }
    assert!(connection_events(&f.events).is_empty(), "five hours: not yet");
    for _ in 0..3 {
        f.clock.advance(Duration::hours(1));
        tick(&f).await;
    }
    let stuck = connection_events(&f.events);
    assert_eq!(stuck.len(), 1, "one event per episode: {stuck:?}");
    assert_eq!(stuck[0]["Operation"], STREAM_STUCK);
    assert_eq!(stuck[0]["Stream"], "Audit.Exchange");
    assert_eq!(stuck[0]["OrganizationName"], "Contoso");
    assert!(stuck[0]["ErrorMessage"].as_str().unwrap().contains("AF20055"), "names Microsoft's last error");

    *refusing.longest.lock().unwrap() = Duration::hours(24);
    f.clock.advance(Duration::minutes(10));
    let (report, _) = tick(&f).await;
    assert_eq!(report.stuck_streams_moving, 1);
    let moving = connection_events(&f.events);
    assert_eq!(moving.len(), 1);
    assert_eq!(moving[0]["Operation"], STREAM_MOVING);
    assert_eq!(moving[0]["CreationTime"], stuck[0]["CreationTime"], "both events of an episode share its start");
}

#[tokio::test]
async fn an_unreachable_tenant_is_a_connection_problem_not_also_a_stuck_stream() {
    let f = fixture().await;
    tick(&f).await;
    f.source.set_failure(SourceFailure::AccessRefused);
    for _ in 0..10 {
        f.clock.advance(Duration::hours(1));
        tick(&f).await;
    }
    let events = connection_events(&f.events);
    assert!(events.iter().all(|e| e["Operation"] == CONNECTION_PROBLEM), "{events:?}");
}

#[tokio::test]
async fn a_stream_wedged_beyond_the_retention_keeps_one_merged_lost_interval() {
    let mut f = fixture().await;
    strict(&mut f, Duration::zero());
    f.service.state.put_stream(&exchange_key(&f), &StreamState::starting_at(f.clock.now() - Duration::days(30))).await.unwrap();
    for _ in 0..20 {
        tick(&f).await;
        f.clock.advance(Duration::minutes(1));
    }
    let ledger = f.service.state.get_stream(&exchange_key(&f)).await.unwrap().unwrap();
    assert_eq!(ledger.lost.len(), 1, "one interval, not one per tick: {:?}", ledger.lost);
    let (from, to) = ledger.lost[0];
    assert_eq!(to, ledger.covered_until);
    assert!(to - from > Duration::days(23));
}

#[test]
fn lost_intervals_merge_when_they_touch_and_stay_bounded() {
    let t0 = Utc::now();
    let mut ledger = StreamState::starting_at(t0);
    ledger.record_lost(t0, t0 + Duration::hours(1));
    ledger.record_lost(t0 + Duration::hours(1), t0 + Duration::hours(2));
    ledger.record_lost(t0 + Duration::minutes(30), t0 + Duration::minutes(90));
    assert_eq!(ledger.lost, [(t0, t0 + Duration::hours(2))]);
    for i in 0..200 {
        let at = t0 + Duration::hours(10 + 2 * i);
        ledger.record_lost(at, at + Duration::hours(1));
    }
    assert_eq!(ledger.lost.len(), StreamState::LOST_INTERVALS_MAX);
    assert_eq!(ledger.lost[0].0, t0, "the oldest are merged, never dropped");
    assert_eq!(ledger.lost.last().unwrap().1, t0 + Duration::hours(10 + 2 * 199 + 1));
}

async fn first_window_start(f: &Fixture) -> DateTime<Utc> {
    tick(f).await;
    f.source.windows().iter().map(|w| w.start).min().unwrap()
}

#[tokio::test]
async fn a_new_stream_looks_back_24_hours_by_default() {
    let f = fixture().await;
    f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, f.clock.now() - Duration::hours(23), json!([record("old")]).to_string());
    f.source.publish(&f.tenant.tenant_id, ContentType::Exchange, f.clock.now() - Duration::hours(25), json!([record("older")]).to_string());
    let start = first_window_start(&f).await;
    assert_eq!(truncate_to_second(f.clock.now()) - start, Duration::hours(24) + Duration::minutes(30), "24 hours and the overlap");
    assert_eq!(ids(&enqueued(&f.events)), ["old"]);
    assert!(f.source.windows().iter().all(|w| w.end - w.start < Duration::hours(24)));
}

#[tokio::test]
async fn a_new_stream_looks_back_as_far_as_the_msp_chose_within_microsofts_seven_days() {
    let f = fixture().await;
    let mut msp = Msp::new(f.tenant.msp_id.clone(), "Acme".into(), f.clock.now());
    msp.first_lookback_hours = 168;
    f.service.config.put_msp(&msp).await.unwrap();
    f.source.publish(
        &f.tenant.tenant_id,
        ContentType::Exchange,
        f.clock.now() - Duration::days(6) - Duration::hours(23),
        json!([record("a-week-ago")]).to_string(),
    );
    let start = first_window_start(&f).await;
    assert_eq!(start, truncate_to_second(f.clock.now() - f.service.settings.retention), "no further back than Microsoft allows");
    assert_eq!(ids(&enqueued(&f.events)), ["a-week-ago"]);
    let ledger = f.service.state.get_stream(&exchange_key(&f)).await.unwrap().unwrap();
    assert!(ledger.lost.is_empty(), "a first look-back loses nothing");
    assert!(f.source.windows().len() >= 8, "seven days take eight windows or more");
}
