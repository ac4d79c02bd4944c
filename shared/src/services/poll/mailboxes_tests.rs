//! Tests of the daily protected-mailbox count: asked once per day and MSP, counted the
//! documented way, a failed day carrying the last figure over (never zero), a retry replacing
//! it, and a tenant never counted left without a figure.

use super::*;
use crate::billing::mailboxes::{AssignedPlan, EXCHANGE_FOUNDATION, EXCHANGE_PLAN_1, EXCHANGE_PLAN_2};
use crate::billing::{BillingSettings, DirectoryUser};
use crate::clock::{Clock, ManualClock};
use crate::error::SourceError;
use crate::memory::*;
use crate::ports::{ConfigStore, MailboxCountStore, SecretName, SecretStore as _};
use crate::secret::SecretString;
use crate::services::poll::PollSettings;
use crate::tenant::Msp;
use chrono::{Duration, TimeZone, Utc};
use std::sync::Arc;

struct Fixture {
    service: PollService,
    directory: Arc<MemoryMailboxDirectory>,
    counts: Arc<MemoryBillingStore>,
    jobs: Arc<MemoryQueue>,
    billing_jobs: Arc<MemoryQueue>,
    events: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    msp: MspId,
    tenant: TenantId,
}

fn user(id: &str, enabled: bool, plans: &[(&str, &str)]) -> DirectoryUser {
    DirectoryUser {
        id: id.into(),
        account_enabled: Some(enabled),
        user_type: Some("Member".into()),
        assigned_plans: plans
            .iter()
            .map(|(plan, status)| AssignedPlan { service_plan_id: (*plan).into(), capability_status: (*status).into(), service: None })
            .collect(),
    }
}

async fn fixture() -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let secrets = Arc::new(MemorySecretStore::default());
    let msp = MspId::parse("acme").unwrap();
    config.create_msp(&Msp::new(msp.clone(), "Acme".into(), Utc::now())).await.unwrap();
    let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    config.create_tenant(&crate::contract::sample_tenant(&msp, &tenant)).await.unwrap();
    let credentials = serde_json::json!({"client_id": "app", "client_secret": "s3cret"}).to_string();
    secrets.put_secret(&SecretName::m365_app(&msp, &tenant), &SecretString::new(credentials)).await.unwrap();
    let directory = Arc::new(MemoryMailboxDirectory::default());
    directory.set(
        &tenant,
        vec![
            user("a", true, &[(EXCHANGE_PLAN_1, "Enabled"), (EXCHANGE_PLAN_2, "Enabled")]),
            user("b", true, &[(EXCHANGE_PLAN_2, "Enabled")]),
            user("c", false, &[(EXCHANGE_PLAN_1, "Enabled")]),
            user("d", true, &[(EXCHANGE_FOUNDATION, "Enabled")]),
        ],
    );
    let counts = Arc::new(MemoryBillingStore::default());
    let audit = Arc::new(MemoryAuditSource::default());
    let jobs = Arc::new(MemoryQueue::default());
    let billing_jobs = Arc::new(MemoryQueue::default());
    let events = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 6, 0, 5, 0).unwrap()));
    let service = PollService {
        config: config.clone(),
        state: Arc::new(MemoryIngestState::default()),
        secrets,
        source: audit.clone(),
        subscriptions: audit,
        security_alerts: Arc::new(MemorySecurityAlertSource::default()),
        events: events.clone(),
        dead_letters: Arc::new(MemoryQueue::default()),
        jobs: jobs.clone(),
        replays: Arc::new(MemoryReplayStore::default()),
        relationship_source: Arc::new(MemoryRelationshipSource::default()),
        relationships: config.clone(),
        mailbox_directory: directory.clone(),
        mailbox_counts: counts.clone(),
        billing_jobs: billing_jobs.clone(),
        mail: Arc::new(MemoryMailSender::default()),
        licences: crate::services::poll::LicencePorts::in_memory(),
        clock: clock.clone(),
        settings: PollSettings { streams: vec![], ..PollSettings::default() },
    };
    Fixture { service, directory, counts, jobs, billing_jobs, events, clock, msp, tenant }
}

async fn count_jobs_of_a_tick(f: &Fixture) -> Vec<PollJob> {
    f.service.fan_out().await.unwrap();
    f.jobs
        .drain()
        .iter()
        .map(|body| serde_json::from_str::<PollJob>(body).unwrap())
        .filter(|job| matches!(job, PollJob::MailboxCount { .. }))
        .collect()
}

#[tokio::test]
async fn the_first_tick_of_a_day_asks_once_for_each_tenants_count() {
    let f = fixture().await;
    let today = f.clock.now().date_naive();
    assert_eq!(
        count_jobs_of_a_tick(&f).await,
        vec![PollJob::MailboxCount { msp_id: f.msp.clone(), tenant_id: f.tenant.clone(), day: today }]
    );
    assert!(count_jobs_of_a_tick(&f).await.is_empty(), "later ticks of the day ask nothing");
    f.clock.advance(Duration::days(1));
    assert_eq!(count_jobs_of_a_tick(&f).await.len(), 1, "the next day asks again");
}

#[tokio::test]
async fn a_count_records_enabled_members_with_an_exchange_mailbox_plan_once_each() {
    let f = fixture().await;
    let today = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    let series = f.counts.counts(&f.msp, &f.tenant, today, today).await.unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!((series[0].protected_mailboxes, series[0].users), (2, 4), "a counted once with two plans; c disabled; d foundation only");
    assert!(series[0].is_fresh());
}

#[tokio::test]
async fn a_throttled_count_keeps_yesterdays_figure_says_so_and_is_retried_after_microsofts_delay() {
    let f = fixture().await;
    let yesterday = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, yesterday).await.unwrap();
    f.clock.advance(Duration::days(1));
    let today = f.clock.now().date_naive();
    f.directory.fail_next(SourceError::Throttled { retry_after: Some(std::time::Duration::from_secs(7)) });
    let error = f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(7)));
    let carried = f.counts.latest_counts(&f.msp).await.unwrap()[&f.tenant].clone();
    assert_eq!((carried.day, carried.counted_on, carried.protected_mailboxes), (today, yesterday, 2));
    assert!(carried.carried_over.as_deref().unwrap().contains("throttled"), "{carried:?}");

    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    let retried = f.counts.latest_counts(&f.msp).await.unwrap()[&f.tenant].clone();
    assert!(retried.is_fresh(), "the retry's figure replaces the carried one: {retried:?}");
}

#[tokio::test]
async fn a_refused_count_carries_the_figure_over_and_is_not_retried() {
    let f = fixture().await;
    let yesterday = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, yesterday).await.unwrap();
    f.clock.advance(Duration::days(1));
    let today = f.clock.now().date_naive();
    f.directory.fail_next(SourceError::AccessRefused { code: "Authorization_RequestDenied".into(), message: "User.Read.All".into() });
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    let carried = f.counts.latest_counts(&f.msp).await.unwrap()[&f.tenant].clone();
    assert_eq!((carried.day, carried.protected_mailboxes), (today, 2));
    assert!(carried.carried_over.unwrap().contains("Authorization_RequestDenied"));
}

#[tokio::test]
async fn a_tenant_never_counted_gets_no_figure_from_a_failed_count_never_zero() {
    let f = fixture().await;
    let today = f.clock.now().date_naive();
    f.directory.fail_next(SourceError::Unavailable("503".into()));
    assert!(f.service.count_mailboxes(&f.msp, &f.tenant, today).await.is_err());
    assert!(f.counts.latest_counts(&f.msp).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_duplicate_job_failing_after_todays_count_leaves_the_figure_as_counted() {
    let f = fixture().await;
    let today = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    f.directory.fail_next(SourceError::Unavailable("503".into()));
    let _ = f.service.count_mailboxes(&f.msp, &f.tenant, today).await;
    assert!(f.counts.latest_counts(&f.msp).await.unwrap()[&f.tenant].is_fresh());
}

#[tokio::test]
async fn the_series_keeps_only_the_days_the_msp_chose() {
    let f = fixture().await;
    f.counts.put_billing_settings(&f.msp, &BillingSettings { count_retention_days: 7, ..BillingSettings::default() }).await.unwrap();
    let first = f.clock.now().date_naive();
    for _ in 0..10 {
        let day = f.clock.now().date_naive();
        f.service.count_mailboxes(&f.msp, &f.tenant, day).await.unwrap();
        f.clock.advance(Duration::days(1));
    }
    let kept = f.counts.counts(&f.msp, &f.tenant, first, first + Duration::days(20)).await.unwrap();
    assert_eq!(kept.len(), 7);
    assert_eq!(kept[0].day, first + Duration::days(3));
}

fn billing_jobs_sent(f: &Fixture) -> Vec<crate::messages::BillingSyncJob> {
    f.billing_jobs.drain().iter().map(|body| serde_json::from_str(body).unwrap()).collect()
}

fn daily() -> BillingSettings {
    BillingSettings { sync_schedule: crate::billing::sync::SyncSchedule::Daily, ..BillingSettings::default() }
}

#[tokio::test]
async fn on_a_daily_schedule_each_count_asks_for_its_tenants_sync_of_the_day() {
    let f = fixture().await;
    f.counts.put_billing_settings(&f.msp, &daily()).await.unwrap();
    let today = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    let sent = billing_jobs_sent(&f);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (&sent[0].msp_id, sent[0].tenant_id.as_ref(), sent[0].billing_period.key.as_str(), sent[0].day),
        (&f.msp, Some(&f.tenant), "2026-12-06", today)
    );
    // The same job delivered again asks again: the sync of a period happens once downstream.
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    assert_eq!(billing_jobs_sent(&f).len(), 1);
    f.clock.advance(Duration::days(1));
    f.service.count_mailboxes(&f.msp, &f.tenant, today + Duration::days(1)).await.unwrap();
    assert_eq!(billing_jobs_sent(&f)[0].billing_period.key, "2026-12-07");
}

#[tokio::test]
async fn a_month_end_schedule_asks_for_the_sync_only_after_the_months_last_count() {
    let f = fixture().await;
    let today = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    assert!(billing_jobs_sent(&f).is_empty(), "the 6th is not the month's last day");
    let last = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
    f.service.count_mailboxes(&f.msp, &f.tenant, last).await.unwrap();
    let sent = billing_jobs_sent(&f);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].billing_period.key.as_str(), sent[0].tenant_id.as_ref()), ("2026-12", Some(&f.tenant)));
}

#[tokio::test]
async fn a_tenants_sync_is_asked_at_its_own_count_without_waiting_for_another_tenants() {
    let f = fixture().await;
    f.counts.put_billing_settings(&f.msp, &daily()).await.unwrap();
    let other = TenantId::parse("6f2a3d9b-8e52-4a1f-8b62-3c8e1d0f5b22").unwrap();
    f.service.config.create_tenant(&crate::contract::sample_tenant(&f.msp, &other)).await.unwrap();
    let credentials = serde_json::json!({"client_id": "app", "client_secret": "s3cret"}).to_string();
    f.service.secrets.put_secret(&SecretName::m365_app(&f.msp, &other), &SecretString::new(credentials)).await.unwrap();
    f.directory.set(&other, vec![user("e", true, &[(EXCHANGE_PLAN_1, "Enabled")])]);
    let today = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    let first = billing_jobs_sent(&f);
    assert_eq!(first.iter().map(|j| j.tenant_id.clone()).collect::<Vec<_>>(), vec![Some(f.tenant.clone())]);
    f.service.count_mailboxes(&f.msp, &other, today).await.unwrap();
    let second = billing_jobs_sent(&f);
    assert_eq!(second.iter().map(|j| j.tenant_id.clone()).collect::<Vec<_>>(), vec![Some(other)]);
}

/// A queue whose sends fail while `down` is set.
#[derive(Default)]
struct FlakyQueue {
    down: std::sync::atomic::AtomicBool,
    inner: MemoryQueue,
}

#[async_trait::async_trait]
impl crate::ports::MessageQueue for FlakyQueue {
    async fn send_all(&self, bodies: &[String]) -> Result<(), crate::error::QueueError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::error::QueueError::Unavailable("throttled".into()));
        }
        self.inner.send_all(bodies).await
    }
    async fn send_delayed(&self, bodies: &[String], delay: std::time::Duration) -> Result<(), crate::error::QueueError> {
        self.inner.send_delayed(bodies, delay).await
    }
}

#[tokio::test]
async fn a_sync_request_that_could_not_be_sent_fails_the_count_job_and_its_retry_sends_it() {
    let mut f = fixture().await;
    f.counts.put_billing_settings(&f.msp, &daily()).await.unwrap();
    let queue = Arc::new(FlakyQueue::default());
    queue.down.store(true, std::sync::atomic::Ordering::SeqCst);
    f.service.billing_jobs = queue.clone();
    let today = f.clock.now().date_naive();
    let error = f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "{error:?}");
    assert!(queue.inner.drain().is_empty());
    // The queue retries the count job: the same figure, and this time the request goes out.
    queue.down.store(false, std::sync::atomic::Ordering::SeqCst);
    f.service.count_mailboxes(&f.msp, &f.tenant, today).await.unwrap();
    let sent: Vec<crate::messages::BillingSyncJob> =
        queue.inner.drain().iter().map(|body| serde_json::from_str(body).unwrap()).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].tenant_id.as_ref(), Some(&f.tenant));
}

/// The "billing reads failing" events sent so far.
fn billing_read_events(f: &Fixture) -> Vec<serde_json::Value> {
    f.events
        .drain()
        .iter()
        .flat_map(|body| serde_json::from_str::<crate::messages::AuditEventsMessage>(body).unwrap().records)
        .filter(|record| record["Condition"] == "billing_reads_failing")
        .collect()
}

#[tokio::test]
async fn counts_failing_three_days_in_a_row_raise_billing_reads_failing_once_and_the_next_count_clears_it() {
    let f = fixture().await;
    let first = f.clock.now().date_naive();
    f.service.count_mailboxes(&f.msp, &f.tenant, first).await.unwrap();
    let mut raised = Vec::new();
    for n in 1..=4 {
        f.clock.advance(Duration::days(1));
        let day = f.clock.now().date_naive();
        f.directory.fail_next(SourceError::Unavailable("503".into()));
        assert!(f.service.count_mailboxes(&f.msp, &f.tenant, day).await.is_err(), "retried while transient");
        let sent = billing_read_events(&f);
        assert_eq!(sent.len(), usize::from(n == 3), "raised on the third carried day only (day {n}): {sent:#?}");
        if n == 3 {
            // The job's retry fails again the same day: the very same event.
            f.directory.fail_next(SourceError::Unavailable("503".into()));
            assert!(f.service.count_mailboxes(&f.msp, &f.tenant, day).await.is_err());
            let again = billing_read_events(&f);
            assert_eq!(again.len(), 1);
            assert_eq!(again[0]["Id"], sent[0]["Id"], "a retry sends the same event");
        }
        raised.extend(sent);
    }
    assert_eq!(raised[0]["Operation"], crate::selfmon::CONDITION_RAISED);
    assert_eq!(raised[0]["DaysCarried"], 3);
    assert_eq!(raised[0]["CarriedFigure"], 2, "the figure billing still uses");
    assert_eq!(raised[0]["CountedOn"], first.to_string());
    assert_eq!(raised[0]["Since"], "2026-12-07T00:00:00+00:00", "the run's first day");
    assert_eq!(raised[0]["OrganizationId"], f.tenant.as_str());

    f.clock.advance(Duration::days(1));
    f.service.count_mailboxes(&f.msp, &f.tenant, f.clock.now().date_naive()).await.unwrap();
    let cleared = billing_read_events(&f);
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["Operation"], crate::selfmon::CONDITION_CLEARED);
    assert_eq!(cleared[0]["Since"], raised[0]["Since"], "it clears the same episode");
    f.clock.advance(Duration::days(1));
    f.service.count_mailboxes(&f.msp, &f.tenant, f.clock.now().date_naive()).await.unwrap();
    assert!(billing_read_events(&f).is_empty(), "a second good day clears nothing more");
}

#[tokio::test]
async fn two_failed_days_then_a_count_raise_nothing() {
    let f = fixture().await;
    f.service.count_mailboxes(&f.msp, &f.tenant, f.clock.now().date_naive()).await.unwrap();
    for _ in 0..2 {
        f.clock.advance(Duration::days(1));
        f.directory.fail_next(SourceError::Unavailable("503".into()));
        f.service.count_mailboxes(&f.msp, &f.tenant, f.clock.now().date_naive()).await.unwrap_err();
    }
    f.clock.advance(Duration::days(1));
    f.service.count_mailboxes(&f.msp, &f.tenant, f.clock.now().date_naive()).await.unwrap();
    assert!(billing_read_events(&f).is_empty());
}
