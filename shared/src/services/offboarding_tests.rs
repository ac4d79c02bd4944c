//! Offboarding against in-memory stores: the request, the stop, the retention, the purge, and
//! crashes injected at every write.

use super::*;
use crate::access::{Principal, Role};
use crate::clock::ManualClock;
use crate::contract::{sample_tenant, unique_msp, unique_tenant};
use crate::ids::PrincipalId;
use crate::memory::{MemoryAuditSource, MemoryConfigStore, MemoryOffboardingStore, MemoryQueue, MemorySecretStore, MemoryTenantData};
use crate::offboarding::{DataKey, OffboardingReport};
use crate::secret::SecretString;
use crate::tenant::Msp;
use async_trait::async_trait;
use chrono::TimeZone;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fails the `fail_at`-th save (counting from 0) once, as a crash right before that write would.
struct CrashingStore {
    inner: MemoryOffboardingStore,
    saves: AtomicUsize,
    fail_at: AtomicUsize,
}

#[async_trait]
impl OffboardingStore for CrashingStore {
    async fn create_offboarding(&self, offboarding: &Offboarding) -> Result<bool, StoreError> {
        self.inner.create_offboarding(offboarding).await
    }
    async fn save_offboarding(&self, offboarding: &mut Offboarding) -> Result<(), StoreError> {
        if self.saves.fetch_add(1, Ordering::SeqCst) == self.fail_at.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected crash".into()));
        }
        self.inner.save_offboarding(offboarding).await
    }
    async fn get_offboarding(&self, msp_id: &MspId, tenant_key: &str) -> Result<Option<Offboarding>, StoreError> {
        self.inner.get_offboarding(msp_id, tenant_key).await
    }
    async fn list_unfinished_offboardings(&self) -> Result<Vec<Offboarding>, StoreError> {
        self.inner.list_unfinished_offboardings().await
    }
}

struct Fixture {
    requests: OffboardingRequests,
    runner: OffboardingRunner,
    config: Arc<MemoryConfigStore>,
    store: Arc<CrashingStore>,
    data: Arc<MemoryTenantData>,
    secrets: Arc<MemorySecretStore>,
    source: Arc<MemoryAuditSource>,
    jobs: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    msp: MspId,
    tenant: TenantId,
    neighbour: TenantId,
    other_msp: MspId,
}

const PER_KIND: usize = 7;

async fn fixture() -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let store = Arc::new(CrashingStore {
        inner: MemoryOffboardingStore::default(),
        saves: AtomicUsize::new(0),
        fail_at: AtomicUsize::new(usize::MAX),
    });
    let data = Arc::new(MemoryTenantData::new(3));
    let secrets = Arc::new(MemorySecretStore::default());
    let source = Arc::new(MemoryAuditSource::default());
    let jobs = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()));
    let (msp, other_msp) = (unique_msp(), unique_msp());
    let (tenant, neighbour) = (unique_tenant(), unique_tenant());
    for msp_id in [&msp, &other_msp] {
        config.create_msp(&Msp::new(msp_id.clone(), "MSP".into(), clock.now())).await.unwrap();
    }
    for (msp_id, tenant_id) in [(&msp, &tenant), (&msp, &neighbour), (&other_msp, &tenant)] {
        config.create_tenant(&sample_tenant(msp_id, tenant_id)).await.unwrap();
        let secret = SecretString::new(r#"{"client_id":"app","client_secret":"s3cret"}"#);
        secrets.put_secret(&SecretName::m365_app(msp_id, tenant_id), &secret).await.unwrap();
        for kind in DataKind::ALL {
            data.seed(msp_id, tenant_id, kind, PER_KIND);
        }
    }
    let requests = OffboardingRequests {
        config: config.clone(),
        offboardings: store.clone(),
        audit: config.clone(),
        jobs: jobs.clone(),
        clock: clock.clone(),
    };
    let runner = OffboardingRunner {
        config: config.clone(),
        offboardings: store.clone(),
        data: data.clone(),
        secrets: secrets.clone(),
        subscriptions: source.clone(),
        audit: config.clone(),
        jobs: jobs.clone(),
        clock: clock.clone(),
        settings: OffboardingSettings::default(),
    };
    Fixture { requests, runner, config, store, data, secrets, source, jobs, clock, msp, tenant, neighbour, other_msp }
}

fn person(msp: &MspId, role: Role) -> Access {
    let at = Utc.timestamp_opt(1_760_000_000, 0).unwrap();
    Access::of(&Principal {
        msp_id: msp.clone(),
        principal_id: PrincipalId::parse("ann").unwrap(),
        name: "Ann Owner".into(),
        email: None,
        role,
        categories: None,
        scopes: Default::default(),
        created_at: at,
        updated_at: at,
    })
}

fn retention(days: u32) -> OffboardingRequest {
    OffboardingRequest { retention_days: Some(days) }
}

impl Fixture {
    fn owner(&self) -> Access {
        person(&self.msp, Role::Owner)
    }

    fn job(&self) -> OffboardingJob {
        OffboardingJob::OffboardTenant { msp_id: self.msp.clone(), tenant_id: self.tenant.clone() }
    }

    /// Runs every job on the queue until none is left; the last record.
    async fn run_jobs(&self) -> Option<Offboarding> {
        let mut last = None;
        loop {
            let bodies = self.jobs.drain();
            if bodies.is_empty() {
                return last;
            }
            for body in bodies {
                last = self.runner.run(&OffboardingJob::parse(&body).unwrap()).await.unwrap();
            }
        }
    }

    async fn audit_actions(&self) -> Vec<String> {
        use crate::ports::AuditLog;
        // The manual clock stands still, so both entries may carry the same instant.
        let mut actions: Vec<String> =
            self.config.entries(&self.msp, 100, None).await.unwrap().entries.into_iter().map(|e| e.action).collect();
        actions.sort();
        actions
    }

    fn untouched_neighbours(&self) {
        assert_eq!(self.data.count(&self.msp, &self.neighbour), PER_KIND * DataKind::ALL.len(), "the MSP's other tenant is intact");
        assert_eq!(self.data.count(&self.other_msp, &self.tenant), PER_KIND * DataKind::ALL.len(), "another MSP's same tenant is intact");
    }
}

fn expected_report() -> OffboardingReport {
    let mut report: OffboardingReport = DataKind::ALL.iter().map(|k| (k.as_str().to_owned(), PER_KIND as u64)).collect();
    report.insert("company_links".into(), 1);
    report.insert("subscriptions".into(), 5);
    report.insert("credentials".into(), 1);
    report
}

#[tokio::test]
async fn with_retention_zero_one_job_stops_and_purges_everything_of_the_tenant_and_nothing_else() {
    let f = fixture().await;
    let (offboarding, created) = f.requests.request(&f.owner(), &f.tenant, &retention(0)).await.unwrap();
    assert!(created);
    assert_eq!(offboarding.phase, OffboardingPhase::Stopping);
    let tenant = f.config.get_tenant(&f.msp, &f.tenant).await.unwrap().unwrap();
    assert!(tenant.offboarded_at.is_some() && tenant.company_links.is_empty() && tenant.webhook_auth_hash.is_none());

    let done = f.run_jobs().await.unwrap();
    assert_eq!(done.phase, OffboardingPhase::Purged);
    assert_eq!(done.report, expected_report());
    assert_eq!(done.tenant_id, None, "the finished record no longer names the tenant");
    assert_eq!(f.data.count(&f.msp, &f.tenant), 0);
    assert_eq!(f.source.stopped().len(), 5, "each Management Activity content type's subscription stopped");
    assert!(f.secrets.get_secret(&SecretName::m365_app(&f.msp, &f.tenant)).await.unwrap().is_none());
    assert!(f.secrets.get_secret(&SecretName::m365_app(&f.msp, &f.neighbour)).await.unwrap().is_some());
    assert!(f.secrets.get_secret(&SecretName::m365_app(&f.other_msp, &f.tenant)).await.unwrap().is_some());
    f.untouched_neighbours();
    assert_eq!(f.audit_actions().await, ["tenant.offboarded", "tenant.purged"]);
}

#[tokio::test]
async fn data_is_kept_until_the_retention_ends_and_then_the_tick_sends_the_purge() {
    let f = fixture().await;
    f.requests.request(&f.owner(), &f.tenant, &retention(2)).await.unwrap();
    let stopped = f.run_jobs().await.unwrap();
    assert_eq!(stopped.phase, OffboardingPhase::Retained);
    assert_eq!(f.data.count(&f.msp, &f.tenant), PER_KIND * DataKind::ALL.len(), "nothing purged during the retention");
    assert!(f.secrets.get_secret(&SecretName::m365_app(&f.msp, &f.tenant)).await.unwrap().is_none(), "credentials go at once");

    f.clock.advance(Duration::days(2) - Duration::seconds(1));
    assert_eq!(f.runner.send_due_jobs().await.unwrap(), 0, "a second early: not due");
    assert_eq!(f.runner.run(&f.job()).await.unwrap().unwrap().phase, OffboardingPhase::Retained, "a job before the end purges nothing");
    assert_eq!(f.data.count(&f.msp, &f.tenant), PER_KIND * DataKind::ALL.len());

    f.clock.advance(Duration::seconds(1));
    assert_eq!(f.runner.send_due_jobs().await.unwrap(), 1);
    assert_eq!(f.run_jobs().await.unwrap().report, expected_report());
    assert_eq!(f.data.count(&f.msp, &f.tenant), 0);
    assert_eq!(f.runner.send_due_jobs().await.unwrap(), 0, "a purged offboarding needs no more jobs");
    f.untouched_neighbours();
}

#[tokio::test]
async fn offboarding_twice_gives_one_audit_entry_and_the_same_result() {
    let f = fixture().await;
    let (first, created) = f.requests.request(&f.owner(), &f.tenant, &retention(0)).await.unwrap();
    assert!(created);
    let (again, created_again) = f.requests.request(&f.owner(), &f.tenant, &retention(9)).await.unwrap();
    assert!(!created_again);
    assert_eq!(again.retention_days, 0, "the first request's retention holds");
    assert_eq!(again.requested_at, first.requested_at);
    let done = f.run_jobs().await.unwrap();
    let (after, created_after) = f.requests.request(&f.owner(), &f.tenant, &retention(0)).await.unwrap();
    assert!(!created_after);
    assert_eq!(after.report, done.report);
    assert_eq!(after.phase, OffboardingPhase::Purged);
    assert!(f.jobs.drain().is_empty(), "a finished offboarding sends no job");
    assert_eq!(f.audit_actions().await, ["tenant.offboarded", "tenant.purged"]);
}

#[tokio::test]
async fn a_crash_before_any_write_is_resumed_by_the_retry_with_the_same_report() {
    // Saves in a run without faults: stop (2), the phase change, then per kind its pages.
    let baseline = {
        let f = fixture().await;
        f.requests.request(&f.owner(), &f.tenant, &retention(0)).await.unwrap();
        let done = f.run_jobs().await.unwrap();
        (done.report, f.store.saves.load(Ordering::SeqCst))
    };
    assert_eq!(baseline.0, expected_report());
    for fail_at in 0..baseline.1 {
        let f = fixture().await;
        f.requests.request(&f.owner(), &f.tenant, &retention(0)).await.unwrap();
        f.store.fail_at.store(fail_at, Ordering::SeqCst);
        let body = f.jobs.drain().pop().unwrap();
        let error = f.runner.run(&OffboardingJob::parse(&body).unwrap()).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Transient, "crash at write {fail_at}: the job is retried");
        // The queue redelivers the job.
        let done = f.runner.run(&f.job()).await.unwrap().unwrap();
        let done = if done.phase == OffboardingPhase::Purged { done } else { f.run_jobs().await.unwrap() };
        assert_eq!(done.report, baseline.0, "crash at write {fail_at}");
        assert_eq!(f.data.count(&f.msp, &f.tenant), 0, "crash at write {fail_at}");
        f.untouched_neighbours();
        assert_eq!(f.audit_actions().await, ["tenant.offboarded", "tenant.purged"], "crash at write {fail_at}");
    }
}

#[tokio::test]
async fn a_key_outside_the_msp_is_never_deleted_and_stops_the_purge() {
    let f = fixture().await;
    let foreign = DataKey { table: "memory".into(), pk: format!("MSP#{}#TENANT#{}", f.other_msp, f.tenant), sk: "alerts#zzz".into() };
    // A store that lists another MSP's item under this tenant's alerts.
    f.data.seed_key(foreign.clone(), &f.msp, &f.tenant, DataKind::HitMarkers);
    f.requests.request(&f.owner(), &f.tenant, &retention(0)).await.unwrap();
    let body = f.jobs.drain().pop().unwrap();
    let mut result = f.runner.run(&OffboardingJob::parse(&body).unwrap()).await;
    // The pages before the one holding the foreign key go; that page stays whole.
    while let Ok(Some(o)) = &result {
        assert_ne!(o.phase, OffboardingPhase::Purged);
        result = f.runner.run(&f.job()).await;
    }
    let error = result.unwrap_err();
    assert!(matches!(error, OffboardingError::ForeignKey { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(f.data.count(&f.msp, &f.tenant) > 0);
    assert_eq!(f.data.count(&f.other_msp, &f.tenant), PER_KIND * DataKind::ALL.len());
}

#[tokio::test]
async fn a_tenant_that_already_refused_access_is_stopped_with_a_note() {
    let f = fixture().await;
    f.source.set_failure(crate::memory::SourceFailure::AccessRefused);
    f.requests.request(&f.owner(), &f.tenant, &retention(1)).await.unwrap();
    let stopped = f.run_jobs().await.unwrap();
    assert_eq!(stopped.phase, OffboardingPhase::Retained);
    assert_eq!(stopped.report["subscriptions"], 0);
    assert!(stopped.subscriptions_note.as_deref().unwrap().contains("AADSTS700016"));
    assert!(stopped.credentials_deleted);
}

#[tokio::test]
async fn microsoft_being_down_retries_the_stop() {
    let f = fixture().await;
    f.source.set_failure(crate::memory::SourceFailure::Unavailable);
    f.requests.request(&f.owner(), &f.tenant, &retention(1)).await.unwrap();
    let error = f.runner.run(&f.job()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(f.secrets.get_secret(&SecretName::m365_app(&f.msp, &f.tenant)).await.unwrap().is_some(), "kept until the stop is done");
    f.source.set_failure(crate::memory::SourceFailure::None);
    assert_eq!(f.runner.run(&f.job()).await.unwrap().unwrap().phase, OffboardingPhase::Retained);
}

#[tokio::test]
async fn only_owners_offboard_within_365_days_of_retention_and_only_their_own_tenants() {
    let f = fixture().await;
    let engineer = person(&f.msp, Role::Engineer);
    assert!(matches!(f.requests.request(&engineer, &f.tenant, &retention(0)).await, Err(AdminError::Forbidden(_))));
    assert!(matches!(f.requests.request(&f.owner(), &f.tenant, &retention(366)).await, Err(AdminError::Invalid(_))));
    assert!(f.requests.request(&f.owner(), &f.tenant, &retention(365)).await.is_ok());
    let stranger = unique_tenant();
    assert!(matches!(f.requests.request(&f.owner(), &stranger, &retention(0)).await, Err(AdminError::NotFound(_))));
    assert!(matches!(f.requests.status(&f.owner(), &stranger).await, Err(AdminError::NotFound(_))));
    // Another MSP sees no offboarding of its own tenant with the same id.
    assert!(matches!(f.requests.status(&person(&f.other_msp, Role::Owner), &f.tenant).await, Err(AdminError::NotFound(_))));
    assert!(f.requests.status(&engineer, &f.tenant).await.is_ok());
}

#[tokio::test]
async fn the_default_retention_is_30_days() {
    let f = fixture().await;
    let (offboarding, _) = f.requests.request(&f.owner(), &f.tenant, &OffboardingRequest::default()).await.unwrap();
    assert_eq!(offboarding.retention_days, 30);
    assert_eq!(offboarding.purge_after, f.clock.now() + Duration::days(30));
}

#[tokio::test]
async fn a_stalled_stop_is_sent_again_by_the_tick() {
    let f = fixture().await;
    f.requests.request(&f.owner(), &f.tenant, &retention(5)).await.unwrap();
    f.jobs.drain();
    assert_eq!(f.runner.send_due_jobs().await.unwrap(), 0);
    f.clock.advance(Duration::minutes(15));
    assert_eq!(f.runner.send_due_jobs().await.unwrap(), 1, "the job was lost: the tick sends it again");
    assert_eq!(f.run_jobs().await.unwrap().phase, OffboardingPhase::Retained);
}
