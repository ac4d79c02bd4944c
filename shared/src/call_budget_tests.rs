//! The budget's decisions on a clock the tests move: buckets, holds, in-flight caps, and the
//! decorator giving a far-off wait back to the queue without calling Microsoft.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::clock::ManualClock;
use crate::memory::{MemoryAuditSource, MemorySecurityAlertSource};
use crate::secret::SecretString;
use std::sync::atomic::AtomicU32;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().with_timezone(&Utc)
}

fn tenant(n: u8) -> TenantId {
    TenantId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
}

fn budget(settings: BudgetSettings) -> (Arc<ManualClock>, CallBudget) {
    let clock = Arc::new(ManualClock::at(start()));
    (clock.clone(), CallBudget::new(settings, clock))
}

fn settings(app_per_minute: u32, tenant_per_minute: u32, tenant_in_flight: usize) -> BudgetSettings {
    BudgetSettings {
        app_per_minute,
        tenant_per_minute,
        tenant_in_flight,
        max_wait: Duration::ZERO,
        default_backoff: Duration::from_secs(30),
    }
}

fn credentials(client_id: &str) -> M365AppCredentials {
    M365AppCredentials { client_id: client_id.into(), client_secret: SecretString::new("s"), publisher_identifier: None, msp_id: None }
}

#[test]
fn a_bucket_allows_a_tenth_of_a_minute_at_once_then_refills_at_its_rate() {
    let mut bucket = TokenBucket::per_minute(600);
    let now = start();
    for _ in 0..60 {
        assert!(bucket.take(now));
    }
    assert!(!bucket.take(now), "the burst is 60 of 600 a minute");
    assert_eq!(bucket.wait(now), Duration::from_millis(100));
    assert!(bucket.take(now + chrono::Duration::milliseconds(100)));
    assert!(!bucket.take(now + chrono::Duration::milliseconds(100)));
    // A long idle refills to capacity, not beyond.
    let later = now + chrono::Duration::hours(1);
    assert_eq!((0..100).filter(|_| bucket.take(later)).count(), 60);
}

#[test]
fn a_tenant_over_its_budget_waits_while_another_tenant_is_served() {
    let (_clock, budget) = budget(settings(6_000, 60, 100));
    let mut permits = Vec::new();
    for _ in 0..6 {
        permits.push(budget.try_acquire("app", &tenant(1)).unwrap());
    }
    assert_eq!(budget.try_acquire("app", &tenant(1)).unwrap_err(), Duration::from_secs(1));
    assert!(budget.try_acquire("app", &tenant(2)).is_ok(), "another tenant has its own budget");
}

#[test]
fn the_app_budget_is_shared_by_every_tenant_of_the_app_and_not_by_other_apps() {
    let (clock, budget) = budget(settings(120, 6_000, 100));
    let taken: Vec<_> = (0..12).map(|n| budget.try_acquire("app-a", &tenant(n)).unwrap()).collect();
    assert_eq!(taken.len(), 12);
    let refused = budget.try_acquire("app-a", &tenant(20)).unwrap_err();
    assert_eq!(refused, Duration::from_millis(500), "120 a minute: one token every half second");
    assert!(budget.try_acquire("app-b", &tenant(20)).is_ok());
    clock.advance(chrono::Duration::milliseconds(500));
    assert!(budget.try_acquire("app-a", &tenant(20)).is_ok());
}

#[test]
fn a_refused_call_takes_no_token_from_either_budget() {
    let (_clock, budget) = budget(settings(6_000, 60, 100));
    // Tenant 1 spends its burst; its refused calls must not drain the app's bucket.
    let _permits: Vec<_> = (0..6).map(|_| budget.try_acquire("app", &tenant(1)).unwrap()).collect();
    for _ in 0..1_000 {
        assert!(budget.try_acquire("app", &tenant(1)).is_err());
    }
    let others = (2..=100).filter(|n| budget.try_acquire("app", &tenant(*n)).is_ok()).count();
    assert_eq!(others, 99, "the app's burst of 600 less the 6 taken serves them all: {others}");
}

#[test]
fn a_tenant_at_its_in_flight_cap_waits_until_a_call_returns() {
    let (_clock, budget) = budget(settings(6_000, 6_000, 2));
    let first = budget.try_acquire("app", &tenant(1)).unwrap();
    let _second = budget.try_acquire("app", &tenant(1)).unwrap();
    assert_eq!(budget.try_acquire("app", &tenant(1)).unwrap_err(), SLOT_POLL);
    assert!(budget.try_acquire("app", &tenant(2)).is_ok());
    drop(first);
    assert!(budget.try_acquire("app", &tenant(1)).is_ok());
    assert_eq!(budget.peak_in_flight(), 3);
}

#[test]
fn a_throttled_tenant_is_held_for_its_retry_after_and_only_that_tenant() {
    let (clock, budget) = budget(settings(6_000, 6_000, 10));
    drop(budget.try_acquire("app", &tenant(1)).unwrap());
    budget.throttled(&tenant(1), Some(Duration::from_secs(7)));
    assert_eq!(budget.try_acquire("app", &tenant(1)).unwrap_err(), Duration::from_secs(7));
    assert!(budget.try_acquire("app", &tenant(2)).is_ok());
    clock.advance(chrono::Duration::seconds(6));
    assert_eq!(budget.try_acquire("app", &tenant(1)).unwrap_err(), Duration::from_secs(1));
    clock.advance(chrono::Duration::seconds(1));
    assert!(budget.try_acquire("app", &tenant(1)).is_ok());
    // No Retry-After: the default backoff; a shorter hold never shortens a longer one.
    budget.throttled(&tenant(1), None);
    budget.throttled(&tenant(1), Some(Duration::from_secs(2)));
    assert_eq!(budget.try_acquire("app", &tenant(1)).unwrap_err(), Duration::from_secs(30));
}

#[test]
fn shares_split_the_app_budget_over_instances_and_the_tenant_budget_over_streams() {
    let share = BudgetSettings::share_of(60_000, 1_200, 20, 6);
    assert_eq!((share.app_per_minute, share.tenant_per_minute), (3_000, 200));
    let tiny = BudgetSettings::share_of(1, 1, 0, 0);
    assert_eq!((tiny.app_per_minute, tiny.tenant_per_minute), (1, 1));
}

#[test]
fn idle_tenants_are_dropped_once_the_map_is_large_and_busy_ones_kept() {
    let (clock, budget) = budget(settings(1_000_000, 60, 10));
    let busy = budget.try_acquire("app", &tenant(0)).unwrap();
    for n in 0..=PRUNE_ABOVE {
        let id = TenantId::parse(&format!("00000000-0000-4000-8000-{n:012x}")).unwrap();
        drop(budget.try_acquire("app", &id).unwrap());
    }
    clock.advance(chrono::Duration::minutes(5));
    drop(budget.try_acquire("app", &tenant(1)).unwrap());
    let tenants = budget.lock().tenants.len();
    assert!(tenants <= 3, "idle tenants kept: {tenants}");
    assert_eq!(budget.lock().tenants.get(&tenant(0)).map(|t| t.in_flight), Some(1));
    drop(busy);
}

/// A source that answers every listing "throttled, retry after 5 s" and counts calls.
#[derive(Default)]
struct Throttling {
    calls: AtomicU32,
}

#[async_trait]
impl AuditSource for Throttling {
    async fn list_content(
        &self,
        _: &TenantId,
        _: &M365AppCredentials,
        _: ContentType,
        _: TimeWindow,
    ) -> Result<Vec<ContentBlob>, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(SourceError::Throttled { retry_after: Some(Duration::from_secs(5)) })
    }
    async fn fetch_content(&self, _: &TenantId, _: &M365AppCredentials, _: &ContentBlob) -> Result<String, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok("[]".into())
    }
}

fn window() -> TimeWindow {
    TimeWindow { start: start() - chrono::Duration::hours(1), end: start() }
}

#[tokio::test]
async fn after_a_429_the_tenants_next_call_goes_back_to_the_queue_without_reaching_microsoft() {
    let (_clock, budget) = budget(settings(6_000, 6_000, 10));
    let source = Arc::new(Throttling::default());
    let budgeted = BudgetedMicrosoft {
        budget: Arc::new(budget),
        audit: source.clone(),
        subscriptions: Arc::new(MemoryAuditSource::default()),
        alerts: Arc::new(MemorySecurityAlertSource::default()),
    };
    let first = budgeted.list_content(&tenant(1), &credentials("app"), ContentType::Exchange, window()).await;
    assert!(matches!(first, Err(SourceError::Throttled { retry_after: Some(d) }) if d == Duration::from_secs(5)));
    let blob = ContentBlob { content_id: "b".into(), content_uri: "memory://b".into(), content_created: start() };
    let second = budgeted.fetch_content(&tenant(1), &credentials("app"), &blob).await;
    assert!(matches!(second, Err(SourceError::Throttled { retry_after: Some(d) }) if d == Duration::from_secs(5)), "{second:?}");
    assert_eq!(source.calls.load(Ordering::SeqCst), 1, "the held tenant's second call never reached Microsoft");
    assert_eq!(budgeted.fetch_content(&tenant(2), &credentials("app"), &blob).await.unwrap(), "[]");
    assert_eq!(budgeted.budget.in_flight(), 0, "every permit was returned");
}

#[tokio::test]
async fn a_short_wait_is_waited_in_process_and_a_long_one_is_not() {
    let clock = Arc::new(crate::clock::SystemClock);
    let patient = CallBudget::new(BudgetSettings { max_wait: Duration::from_secs(2), ..settings(6_000, 6_000, 1) }, clock.clone());
    let held = patient.try_acquire("app", &tenant(1)).unwrap();
    let one = tenant(1);
    let waiter = patient.acquire("app", &one);
    let release = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
    };
    let (permit, ()) = tokio::join!(waiter, release);
    assert!(permit.is_ok(), "the slot came back within the wait");
    drop(permit);
    patient.throttled(&tenant(1), Some(Duration::from_secs(60)));
    match patient.acquire("app", &tenant(1)).await {
        Err(SourceError::Throttled { retry_after: Some(d) }) => assert!(d > Duration::from_secs(58), "{d:?}"),
        other => panic!("expected the job given back, got {other:?}"),
    }
}
