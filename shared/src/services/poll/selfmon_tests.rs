//! Unit tests of the poller's self-monitoring: lost intervals, stopped subscriptions and
//! disabled webhooks, each raised once per episode and cleared once.

use super::super::*;
use crate::clock::ManualClock;
use crate::ids::{MspId, TenantId};
use crate::memory::*;
use crate::messages::SELF_MONITORING_EVENTS;
use crate::ports::WebhookState;
use crate::secret::SecretString;
use crate::selfmon::{CONDITION_CLEARED, CONDITION_RAISED};
use serde_json::json;

struct Fixture {
    service: PollService,
    source: Arc<MemoryAuditSource>,
    events: Arc<MemoryQueue>,
    jobs: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    tenant: Tenant,
}

const EXCHANGE: AuditStream = AuditStream::Content(ContentType::Exchange);

async fn fixture(webhooks: bool) -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let secrets = Arc::new(MemorySecretStore::default());
    let tenant =
        crate::contract::sample_tenant(&MspId::parse("acme").unwrap(), &TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap());
    config.create_tenant(&tenant).await.unwrap();
    let credentials = json!({"client_id": "app", "client_secret": "s3cret"}).to_string();
    secrets.put_secret(&SecretName::m365_app(&tenant.msp_id, &tenant.tenant_id), &SecretString::new(credentials)).await.unwrap();
    let source = Arc::new(MemoryAuditSource::default());
    let events = Arc::new(MemoryQueue::default());
    let jobs = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let service = PollService {
        config,
        state: Arc::new(MemoryIngestState::default()),
        secrets,
        source: source.clone(),
        subscriptions: source.clone(),
        security_alerts: Arc::new(MemorySecurityAlertSource::default()),
        events: events.clone(),
        dead_letters: Arc::new(MemoryQueue::default()),
        jobs: jobs.clone(),
        replays: Arc::new(MemoryReplayStore::default()),
        relationship_source: Arc::new(MemoryRelationshipSource::default()),
        relationships: Arc::new(MemoryConfigStore::default()),
        mailbox_directory: Arc::new(MemoryMailboxDirectory::default()),
        mailbox_counts: Arc::new(MemoryBillingStore::default()),
        billing_jobs: Arc::new(MemoryQueue::default()),
        mail: Arc::new(MemoryMailSender::default()),
        licences: LicencePorts::in_memory(),
        clock: clock.clone(),
        settings: PollSettings {
            streams: vec![EXCHANGE],
            webhook_base: webhooks.then(|| "https://hooks.example/webhooks/o365".to_owned()),
            ..PollSettings::default()
        },
    };
    Fixture { service, source, events, jobs, clock, tenant }
}

impl Fixture {
    /// One tick and its jobs; returns Vigil's self-monitoring events sent meanwhile.
    async fn tick(&self) -> Vec<Value> {
        self.service.fan_out().await.unwrap();
        for job in self.jobs.drain() {
            // A failing poll is part of some scenarios; its ledger speaks for it.
            let _ = self.service.handle_job(&job).await;
        }
        self.conditions()
    }

    fn conditions(&self) -> Vec<Value> {
        self.events
            .drain()
            .iter()
            .map(|body| serde_json::from_str::<AuditEventsMessage>(body).unwrap())
            .filter(|m| m.content_id == SELF_MONITORING_EVENTS)
            .flat_map(|m| m.records)
            .collect()
    }

    fn key(&self) -> StreamKey {
        StreamKey { msp_id: self.tenant.msp_id.clone(), tenant_id: self.tenant.tenant_id.clone(), stream: EXCHANGE }
    }

    async fn ledger(&self) -> StreamState {
        self.service.state.get_stream(&self.key()).await.unwrap().unwrap()
    }

    async fn put_ledger(&self, ledger: &StreamState) {
        self.service.state.put_stream(&self.key(), ledger).await.unwrap();
    }

    /// An hour passes: the subscription is due for its check.
    fn an_hour_passes(&self) {
        self.clock.advance(Duration::minutes(61));
    }
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events.iter().map(|e| (e["Condition"].as_str().unwrap().to_owned(), e["Operation"].as_str().unwrap().to_owned())).collect()
}

fn raised(condition: &str) -> (String, String) {
    (condition.to_owned(), CONDITION_RAISED.to_owned())
}

fn cleared(condition: &str) -> (String, String) {
    (condition.to_owned(), CONDITION_CLEARED.to_owned())
}

#[tokio::test]
async fn a_healthy_tenant_raises_nothing_tick_after_tick() {
    let f = fixture(true).await;
    for _ in 0..3 {
        assert!(f.tick().await.is_empty());
        f.an_hour_passes();
    }
}

#[tokio::test]
async fn content_that_aged_out_unfetched_raises_one_lost_interval_which_clears_when_the_loss_leaves_the_24_hours() {
    let f = fixture(false).await;
    f.tick().await;
    // Vigil could not poll for 8 days.
    let mut ledger = f.ledger().await;
    let outage_start = f.clock.now() - Duration::days(8);
    ledger.covered_until = outage_start;
    f.put_ledger(&ledger).await;

    let events = f.tick().await;
    assert_eq!(summary(&events), [raised("lost_interval")]);
    assert_eq!(events[0]["Subject"], "Audit.Exchange");
    assert_eq!(events[0]["LostFrom"], outage_start.to_rfc3339());
    assert!(events[0]["Message"].as_str().unwrap().contains("left Microsoft's 7-day retention"));
    assert!(f.ledger().await.monitoring.loss_since.is_some());

    // Later polls within 24 hours of the loss: nothing new.
    for _ in 0..3 {
        f.clock.advance(Duration::hours(5));
        assert!(f.tick().await.is_empty());
    }
    // The loss ended more than 24 hours ago: cleared, once, with the episode's time.
    f.clock.advance(Duration::hours(10));
    let events = f.tick().await;
    assert_eq!(summary(&events), [cleared("lost_interval")]);
    assert_eq!(events[0]["Since"], outage_start.to_rfc3339());
    assert!(f.tick().await.is_empty());
    assert_eq!(f.ledger().await.monitoring.loss_since, None);
}

#[tokio::test]
async fn a_poll_retried_after_a_crash_sends_the_very_same_lost_interval_event() {
    let f = fixture(false).await;
    f.tick().await;
    let mut ledger = f.ledger().await;
    ledger.covered_until = f.clock.now() - Duration::days(8);
    f.put_ledger(&ledger).await;
    let first = f.tick().await;
    // As if the ledger write never happened: the job runs again.
    f.put_ledger(&ledger).await;
    let again = f.tick().await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["Id"], again[0]["Id"], "the evaluator counts it once");
}

#[tokio::test]
async fn a_subscription_an_admin_keeps_disabled_is_raised_at_the_failing_poll_and_cleared_once_it_starts_again() {
    let f = fixture(false).await;
    assert!(f.tick().await.is_empty(), "a new tenant's subscription is not 'stopped': its first listing starts it");
    f.source.hold_subscription_disabled(&f.tenant.tenant_id, ContentType::Exchange, true);
    // The listing fails (AF20023 on the start), so the list is read at once.
    let events = f.tick().await;
    assert_eq!(summary(&events), [raised("subscription_stopped")]);
    assert_eq!(events[0]["SubscriptionStatus"], "disabled");
    assert_eq!(events[0]["Subject"], "Audit.Exchange");
    // It stays disabled: one alert, however many polls fail.
    for _ in 0..3 {
        assert!(f.tick().await.is_empty());
    }
    f.source.hold_subscription_disabled(&f.tenant.tenant_id, ContentType::Exchange, false);
    let events = f.tick().await;
    assert_eq!(summary(&events), [cleared("subscription_stopped")], "the poll started it again and the list shows it");
    assert!(f.tick().await.is_empty());
}

#[tokio::test]
async fn a_webhook_microsoft_disabled_is_raised_registered_again_by_the_next_tick_and_cleared() {
    let f = fixture(true).await;
    assert!(f.tick().await.is_empty());
    assert_eq!(f.source.registrations().len(), 1);
    f.source.set_webhook_state(&f.tenant.tenant_id, ContentType::Exchange, Some(WebhookState::Disabled));
    f.an_hour_passes();
    let events = f.tick().await;
    assert_eq!(summary(&events), [raised("webhook_disabled")]);
    assert_eq!(events[0]["WebhookStatus"], "disabled");
    let tenant = f.service.config.get_tenant(&f.tenant.msp_id, &f.tenant.tenant_id).await.unwrap().unwrap();
    assert!(!tenant.webhook_registered, "marked for registration again");

    // The next tick registers it again (a new authId) and its poll sees it enabled.
    let events = f.tick().await;
    assert_eq!(f.source.registrations().len(), 2, "renewed");
    assert_eq!(summary(&events), [cleared("webhook_disabled")]);
    assert!(f.tick().await.is_empty());
}

#[tokio::test]
async fn an_expired_or_vanished_webhook_counts_as_lapsed_too() {
    for state in [Some(WebhookState::Expired), None] {
        let f = fixture(true).await;
        f.tick().await;
        f.source.set_webhook_state(&f.tenant.tenant_id, ContentType::Exchange, state.clone());
        f.an_hour_passes();
        assert_eq!(summary(&f.tick().await), [raised("webhook_disabled")], "{state:?}");
    }
}

#[tokio::test]
async fn without_webhooks_in_use_no_webhook_is_expected() {
    let f = fixture(false).await;
    f.tick().await;
    f.an_hour_passes();
    assert!(f.tick().await.is_empty(), "the subscription has no webhook, and none is expected");
}

#[tokio::test]
async fn a_subscription_list_that_fails_does_not_stop_polling_and_is_read_again_next_poll() {
    let f = fixture(false).await;
    f.tick().await;
    let checked = f.ledger().await.monitoring.subscription_checked_at;
    f.an_hour_passes();
    f.source.set_failure(SourceFailure::Unavailable);
    assert!(f.tick().await.is_empty());
    assert_eq!(f.ledger().await.monitoring.subscription_checked_at, checked, "not counted as checked");
    f.source.set_failure(SourceFailure::None);
    f.source.hold_subscription_disabled(&f.tenant.tenant_id, ContentType::Exchange, true);
    assert_eq!(summary(&f.tick().await), [raised("subscription_stopped")]);
}
