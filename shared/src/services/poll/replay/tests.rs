//! Unit tests of replays on the in-memory adapters: requested through [`ReplayService`], run as
//! a poll job by the poller, over content the in-memory source lists with Microsoft's window
//! rules.

use super::super::*;
use super::*;
use crate::clock::ManualClock;
use crate::ids::{MspId, PolicyId, TenantId};
use crate::memory::*;
use crate::ports::AlertStore;
use crate::ports::PolicyStore;
use crate::secret::SecretString;
use crate::services::admin::AdminError;
use crate::services::replay::{ReplayRequest, ReplayService};
use crate::services::tuning::TuningService;
use serde_json::json;

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

struct Fixture {
    poller: PollService,
    api: ReplayService,
    source: Arc<MemoryAuditSource>,
    state: Arc<MemoryIngestState>,
    events: Arc<MemoryQueue>,
    dead_letters: Arc<MemoryQueue>,
    jobs: Arc<MemoryQueue>,
    replays: Arc<MemoryReplayStore>,
    alerts: Arc<MemoryAlertStore>,
    tickets: Arc<MemoryQueue>,
    policies: Arc<MemoryPolicyStore>,
    msp: MspId,
    tenant: TenantId,
    now: DateTime<Utc>,
}

async fn fixture() -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let secrets = Arc::new(MemorySecretStore::default());
    let (msp, tenant) = (MspId::parse("acme").unwrap(), TenantId::parse(TENANT).unwrap());
    let mut registered = crate::contract::sample_tenant(&msp, &tenant);
    registered.domains = vec!["contoso.com".into()];
    config.create_tenant(&registered).await.unwrap();
    let credentials = json!({"client_id": "app", "client_secret": "s3cret"}).to_string();
    secrets.put_secret(&SecretName::m365_app(&msp, &tenant), &SecretString::new(credentials)).await.unwrap();
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let clock = Arc::new(ManualClock::at(now));
    let (source, state, replays) =
        (Arc::new(MemoryAuditSource::default()), Arc::new(MemoryIngestState::default()), Arc::new(MemoryReplayStore::default()));
    let (events, dead_letters, jobs, tickets) = (
        Arc::new(MemoryQueue::default()),
        Arc::new(MemoryQueue::default()),
        Arc::new(MemoryQueue::default()),
        Arc::new(MemoryQueue::default()),
    );
    let (alerts, policies) = (Arc::new(MemoryAlertStore::default()), Arc::new(MemoryPolicyStore::default()));
    let poller = PollService {
        config: config.clone(),
        state: state.clone(),
        secrets,
        source: source.clone(),
        subscriptions: source.clone(),
        security_alerts: Arc::new(MemorySecurityAlertSource::default()),
        events: events.clone(),
        dead_letters: dead_letters.clone(),
        jobs: jobs.clone(),
        replays: replays.clone(),
        relationship_source: Arc::new(crate::memory::MemoryRelationshipSource::default()),
        relationships: Arc::new(crate::memory::MemoryConfigStore::default()),
        mailbox_directory: Arc::new(crate::memory::MemoryMailboxDirectory::default()),
        mailbox_counts: Arc::new(crate::memory::MemoryBillingStore::default()),
        billing_jobs: Arc::new(crate::memory::MemoryQueue::default()),
        mail: Arc::new(MemoryMailSender::default()),
        licences: crate::services::poll::LicencePorts::in_memory(),
        clock: clock.clone(),
        settings: PollSettings::default(),
    };
    let tuning = Arc::new(TuningService {
        config,
        policies: policies.clone(),
        alerts: alerts.clone(),
        tickets: tickets.clone(),
        clock: clock.clone(),
        audit: crate::services::access::AuditTrail {
            log: Arc::new(crate::memory::MemoryConfigStore::default()),
            clock: Arc::new(crate::clock::SystemClock),
        },
    });
    let api = ReplayService { tuning, replays: replays.clone(), jobs: jobs.clone(), clock };
    Fixture { poller, api, source, state, events, dead_letters, jobs, replays, alerts, tickets, policies, msp, tenant, now }
}

fn wire_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// alice forwards her mail outside the tenant (`builtin.external-forwarding` matches).
fn forwarding(id: &str, at: DateTime<Utc>) -> Value {
    json!({"Id": id, "RecordType": 1, "CreationTime": wire_time(at), "Operation": "New-InboxRule", "UserId": "alice@contoso.com",
           "Workload": "Exchange", "OrganizationId": TENANT, "ClientIP": "203.0.113.7",
           "Parameters": [{"Name": "ForwardTo", "Value": "drop@mail-collector.example"}, {"Name": "Name", "Value": "Forward"}]})
}

/// A record no forwarding policy matches.
fn quiet(id: &str, at: DateTime<Utc>) -> Value {
    json!({"Id": id, "RecordType": 15, "CreationTime": wire_time(at), "Operation": "UserLoggedIn", "UserId": "bob@contoso.com",
           "Workload": "AzureActiveDirectory", "OrganizationId": TENANT})
}

fn by_id(id: &str) -> ReplayRequest {
    ReplayRequest { policy_id: Some(id.into()), ..ReplayRequest::default() }
}

/// Runs every queued poll job (as the job consumer would); the results in order.
async fn run_jobs(f: &Fixture) -> Vec<Result<PollReport, PollError>> {
    let mut results = Vec::new();
    for job in f.jobs.drain() {
        results.push(f.poller.handle_job(&job).await);
    }
    results
}

/// Six days, each with one forwarding record (and a duplicate of it in a second blob, as
/// Microsoft sometimes does) beside quiet sign-ins.
fn publish_a_week(f: &Fixture) -> Vec<DateTime<Utc>> {
    let mut times = Vec::new();
    for day in 1..=6 {
        let at = f.now - Duration::days(day) + Duration::minutes(7);
        let record = forwarding(&format!("aaaaaaaa-0000-4000-8000-{day:012}"), at);
        f.source.publish(&f.tenant, ContentType::Exchange, at, json!([record.clone(), quiet(&format!("q-{day}"), at)]).to_string());
        f.source.publish(&f.tenant, ContentType::Exchange, at + Duration::minutes(20), json!([record]).to_string());
        f.source.publish(&f.tenant, ContentType::AzureActiveDirectory, at, json!([quiet(&format!("aad-{day}"), at)]).to_string());
        times.push(at);
    }
    times
}

#[tokio::test]
async fn a_replay_over_seven_days_reports_one_would_be_alert_per_forwarding_day_and_raises_nothing() {
    let f = fixture().await;
    let times = publish_a_week(&f);
    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    assert_eq!((queued.status, queued.hours), (ReplayStatus::Queued, 168));
    let results = run_jobs(&f).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let done = f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap();
    assert_eq!(done.status, ReplayStatus::Done, "{done:#?}");
    assert_eq!((done.alerts_total, done.hits_total, done.matches), (6, 6, 6), "a duplicated record counts once: {done:#?}");
    let firsts: Vec<DateTime<Utc>> = done.alerts.iter().map(|a| a.first_seen).collect();
    let mut expected = times.clone();
    expected.sort();
    assert_eq!(firsts, expected, "ordered by first hit");
    assert!(done.alerts.iter().all(|a| a.title.contains("drop@mail-collector.example")), "{:#?}", done.alerts);
    assert_eq!(done.records_scanned, 6 + 6 + 6, "forwarding, quiet and sign-in records, each once");
    assert_eq!(done.blobs_fetched, 18);
    assert!(done.truncated.is_none() && done.error.is_none());
    let exchange = done.progress.iter().find(|p| p.content_type == ContentType::Exchange).unwrap();
    assert_eq!((exchange.blobs_fetched, exchange.records_scanned, exchange.listed_until), (12, 12, Some(done.to)));

    // Every window is one Microsoft accepts: under 24 hours, starting within its 7 days.
    let windows = f.source.windows();
    assert_eq!(windows.len(), 5 * 8, "five content types, 168 h in windows of 23 h 50 min");
    assert!(windows.iter().all(|w| w.end - w.start < Duration::hours(24) && w.start >= f.now - Duration::days(7)), "{windows:?}");
    // Shadow: nothing claimed, enqueued, quarantined, raised or announced.
    assert!(f.events.drain().is_empty() && f.dead_letters.drain().is_empty() && f.tickets.drain().is_empty());
    assert!(f.alerts.list_alerts(&f.msp, 100, None).await.unwrap().alerts.is_empty());
    assert!(!f.state.blob_done(&f.msp, &f.tenant, "blob-1").await.unwrap(), "live polling still reads the blob");
}

#[tokio::test]
async fn a_redelivered_replay_job_never_counts_a_record_twice() {
    let f = fixture().await;
    publish_a_week(&f);
    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    let job = f.jobs.drain().pop().unwrap();
    // The first run was killed mid-way: the stored replay says running with partial counts.
    let mut crashed = queued.clone();
    crashed.restart(f.now);
    crashed.records_scanned = 7;
    crashed.alerts_total = 2;
    f.replays.put_replay(&crashed).await.unwrap();
    f.poller.handle_job(&job).await.unwrap();
    let first = f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap();
    assert_eq!((first.status, first.attempts, first.records_scanned, first.alerts_total), (ReplayStatus::Done, 2, 18, 6));
    // Delivered once more after it finished: nothing changes, nothing is listed again.
    let listed = f.source.windows().len();
    f.poller.handle_job(&job).await.unwrap();
    assert_eq!(f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap().view(), first.view());
    assert_eq!(f.source.windows().len(), listed);
}

#[tokio::test]
async fn a_replay_that_runs_out_of_time_stops_and_says_what_it_did_not_read() {
    let mut f = fixture().await;
    publish_a_week(&f);
    f.poller.settings.replay_budget = std::time::Duration::ZERO;
    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    run_jobs(&f).await;
    let done = f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap();
    assert_eq!(done.status, ReplayStatus::Done);
    let truncated = done.truncated.unwrap();
    assert!(truncated.contains("time budget") && truncated.contains("not read"), "{truncated}");
    assert_eq!(done.records_scanned, 0);
}

#[tokio::test]
async fn a_replay_of_a_given_threshold_definition_over_fewer_hours_reads_only_those_hours() {
    let f = fixture().await;
    publish_a_week(&f);
    // Three forwarding changes in five minutes, two hours ago.
    let recent = f.now - Duration::hours(2);
    let records: Vec<Value> =
        (0..3).map(|i| forwarding(&format!("bbbbbbbb-0000-4000-8000-{i:012}"), recent + Duration::minutes(i))).collect();
    f.source.publish(&f.tenant, ContentType::Exchange, recent, Value::Array(records).to_string());
    let policy = json!({"id": "custom.forwarding-burst", "name": "Forwarding burst", "category": "ThreatManagement", "severity": "High",
                        "activity": {"record_types": [1], "operations": ["New-InboxRule"]},
                        "trigger": {"type": "threshold", "count": 3, "window_minutes": 10, "group_by": ["UserId"]}});
    let request = ReplayRequest { policy: Some(policy), hours: Some(24), ..ReplayRequest::default() };
    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, request).await.unwrap();
    run_jobs(&f).await;
    let done = f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap();
    assert_eq!((done.status, done.matches, done.alerts_total, done.hits_total), (ReplayStatus::Done, 4, 1, 3), "{done:#?}");
    assert_eq!(done.alerts[0].group_key, "alice@contoso.com");
    assert!(f.source.windows().iter().all(|w| w.start >= f.now - Duration::hours(24)));
}

#[tokio::test]
async fn a_tenant_that_refuses_access_ends_the_replay_as_failed_without_a_retry() {
    let f = fixture().await;
    f.source.set_failure(SourceFailure::AccessRefused);
    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    let results = run_jobs(&f).await;
    assert!(results.iter().all(Result::is_ok), "a refusal is not retried: {results:?}");
    let failed = f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap();
    assert_eq!(failed.status, ReplayStatus::Failed);
    assert!(failed.error.unwrap().contains("AADSTS700016"));
}

#[tokio::test]
async fn microsoft_being_down_retries_the_replay_job_a_few_times_then_fails_it() {
    let f = fixture().await;
    f.source.set_failure(SourceFailure::Unavailable);
    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    let job = f.jobs.drain().pop().unwrap();
    for attempt in 1..super::ATTEMPTS_MAX {
        assert!(f.poller.handle_job(&job).await.is_err(), "attempt {attempt} is retried");
        assert_eq!(f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap().status, ReplayStatus::Running);
    }
    assert!(f.poller.handle_job(&job).await.is_ok(), "the last attempt ends it");
    assert_eq!(f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap().status, ReplayStatus::Failed);
}

#[tokio::test]
async fn replay_requests_are_checked_before_anything_is_stored_or_queued() {
    let f = fixture().await;
    let invalid = |result: Result<Replay, AdminError>| matches!(result, Err(AdminError::Invalid(_)));
    let not_found = |result: Result<Replay, AdminError>| matches!(result, Err(AdminError::NotFound(_)));
    for hours in [0, 169, 10_000] {
        let request = ReplayRequest { hours: Some(hours), ..by_id("builtin.external-forwarding") };
        assert!(invalid(f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, request).await), "hours {hours}");
    }
    let both = ReplayRequest { policy: Some(json!({})), ..by_id("builtin.external-forwarding") };
    assert!(invalid(f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, both).await));
    assert!(invalid(f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, ReplayRequest::default()).await));
    let not_a_definition = ReplayRequest { policy: Some(json!([1])), ..ReplayRequest::default() };
    assert!(invalid(f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, not_a_definition).await));
    let graph_only = by_id("builtin.defender-alert");
    assert!(
        invalid(f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, graph_only).await),
        "Graph alerts are not audit content"
    );
    assert!(not_found(f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("custom.nothing-here")).await));
    let unknown_tenant = TenantId::parse("0c1d2e3f-4a5b-4c6d-8e7f-901234567890").unwrap();
    assert!(not_found(f.api.start(&crate::access::Access::operator(&f.msp), &unknown_tenant, by_id("builtin.external-forwarding")).await));
    let other_msp = MspId::parse("other").unwrap();
    assert!(
        not_found(f.api.start(&crate::access::Access::operator(&other_msp), &f.tenant, by_id("builtin.external-forwarding")).await),
        "another MSP's tenant"
    );
    assert!(f.jobs.drain().is_empty() && f.replays.all().is_empty());

    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    assert!(f.api.get(&crate::access::Access::operator(&other_msp), &f.tenant, &queued.id).await.is_err(), "another MSP never reads it");
    assert!(not_found(f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, "rpl-0000000000000000").await));
    assert!(not_found(f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, "../../etc").await));
}

#[tokio::test]
async fn a_replay_of_a_policy_switched_off_for_the_tenant_runs_and_says_so() {
    let f = fixture().await;
    let policy = PolicyId::parse("builtin.external-forwarding").unwrap();
    f.policies.set_tenant_policy(&f.msp, &f.tenant, &policy, false).await.unwrap();
    let queued = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    assert!(queued.note.as_deref().unwrap().contains("switched off"));
    run_jobs(&f).await;
    let done = f.api.get(&crate::access::Access::operator(&f.msp), &f.tenant, &queued.id).await.unwrap();
    assert_eq!(done.status, ReplayStatus::Done);
    let note = done.view().note.unwrap();
    assert!(note.contains("switched off") && note.contains("no longer listed"), "the run keeps the request's note: {note}");
}

#[tokio::test]
async fn a_tenant_has_one_unfinished_replay_at_a_time_unless_it_has_stalled() {
    let f = fixture().await;
    let first = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.external-forwarding")).await.unwrap();
    let second = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.brute-force")).await;
    assert!(matches!(&second, Err(AdminError::Conflict(what)) if what.contains(&first.id) && what.contains("queued")), "{second:?}");
    run_jobs(&f).await;
    let after_done = f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.brute-force")).await.unwrap();
    assert_eq!(f.replays.all().len(), 2);

    // Its job was lost: once it has not moved for a while, it no longer blocks.
    let mut stalled = after_done.clone();
    stalled.updated_at = f.now - Duration::minutes(crate::services::replay::STALLED_AFTER_MINUTES + 1);
    f.replays.put_replay(&stalled).await.unwrap();
    assert!(f.api.start(&crate::access::Access::operator(&f.msp), &f.tenant, by_id("builtin.brute-force")).await.is_ok());
}
