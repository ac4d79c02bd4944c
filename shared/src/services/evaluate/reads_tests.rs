//! The evaluator's reads before it can evaluate a message, as round trips: stores whose reads
//! each wait until a set number of reads are in flight together (a round), so a test sees which
//! reads went out at once and how many rounds a batch waited for. Reads issued one after
//! another each wait alone until [`PATIENCE`] runs out and fall in rounds of their own.

use super::*;
use crate::ids::{MspId, PolicyId, TenantId};
use crate::memory::*;
use crate::ports::{StoredPolicy, TenantChange};
use serde_json::json;

/// How long a read waits for the rest of its round before it goes alone.
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(300);

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

#[derive(Default)]
struct Round {
    number: usize,
    waiting: usize,
}

/// Releases reads in rounds of `size`; remembers each read's round.
struct Rounds {
    state: tokio::sync::watch::Sender<Round>,
    size: std::sync::atomic::AtomicUsize,
    log: Mutex<Vec<(&'static str, usize)>>,
}

impl Rounds {
    fn new() -> Self {
        Self { state: tokio::sync::watch::Sender::new(Round::default()), size: 1.into(), log: Mutex::default() }
    }

    /// From now on a round is `size` reads; forgets the reads so far.
    fn expect(&self, size: usize) {
        self.size.store(size, std::sync::atomic::Ordering::SeqCst);
        self.state.send_modify(|round| {
            round.number += 1;
            round.waiting = 0;
        });
        self.log.lock().unwrap().clear();
    }

    /// Waits until the read's round is full (or [`PATIENCE`] runs out).
    async fn pass(&self, read: &'static str) {
        let size = self.size.load(std::sync::atomic::Ordering::SeqCst);
        let mut mine = 0;
        self.state.send_modify(|round| {
            mine = round.number;
            round.waiting += 1;
            if round.waiting >= size {
                round.number += 1;
                round.waiting = 0;
            }
        });
        self.log.lock().unwrap().push((read, mine));
        let mut watching = self.state.subscribe();
        if tokio::time::timeout(PATIENCE, watching.wait_for(|round| round.number != mine)).await.is_err() {
            self.state.send_modify(|round| {
                if round.number == mine {
                    round.number += 1;
                    round.waiting = 0;
                }
            });
        }
    }

    /// The reads since [`Rounds::expect`], sorted, and how many rounds they took.
    fn taken(&self) -> (Vec<&'static str>, usize) {
        let log = self.log.lock().unwrap();
        let mut reads: Vec<&'static str> = log.iter().map(|(read, _)| *read).collect();
        reads.sort_unstable();
        let rounds: std::collections::BTreeSet<usize> = log.iter().map(|(_, round)| *round).collect();
        (reads, rounds.len())
    }
}

/// In-memory stores whose evaluator reads go through [`Rounds`].
struct Gated<T> {
    inner: T,
    rounds: Arc<Rounds>,
    /// A tenant switch that lands while the next revision read is on its way: after the round's
    /// other reads were answered, before the revision is.
    switch_off_during_revision_read: Mutex<Option<PolicyId>>,
    /// Policy lists fail as DynamoDB fails when throttled.
    lists_unavailable: std::sync::atomic::AtomicBool,
}

impl<T> Gated<T> {
    fn new(inner: T, rounds: Arc<Rounds>) -> Self {
        Self { inner, rounds, switch_off_during_revision_read: Mutex::default(), lists_unavailable: false.into() }
    }
}

#[async_trait::async_trait]
impl ConfigStore for Gated<MemoryConfigStore> {
    async fn create_msp(&self, msp: &Msp) -> Result<bool, StoreError> {
        self.inner.create_msp(msp).await
    }
    async fn get_msp(&self, msp_id: &MspId) -> Result<Option<Msp>, StoreError> {
        let answer = self.inner.get_msp(msp_id).await;
        self.rounds.pass("msp").await;
        answer
    }
    async fn put_msp(&self, msp: &Msp) -> Result<(), StoreError> {
        self.inner.put_msp(msp).await
    }
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        self.inner.create_tenant(tenant).await
    }
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.inner.put_tenant(tenant).await
    }
    async fn update_tenant(&self, msp_id: &MspId, tenant_id: &TenantId, change: &TenantChange) -> Result<Option<Tenant>, StoreError> {
        self.inner.update_tenant(msp_id, tenant_id, change).await
    }
    async fn get_tenant(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let answer = self.inner.get_tenant(msp_id, tenant_id).await;
        self.rounds.pass("tenant").await;
        answer
    }
    async fn list_tenants(&self, msp_id: &MspId) -> Result<Vec<Tenant>, StoreError> {
        self.inner.list_tenants(msp_id).await
    }
    async fn tenants_page(&self, msp_id: &MspId, limit: usize, after: Option<&TenantId>) -> Result<crate::ports::TenantPage, StoreError> {
        self.inner.tenants_page(msp_id, limit, after).await
    }
    async fn list_all_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.inner.list_all_tenants().await
    }
}

#[async_trait::async_trait]
impl PolicyStore for Gated<MemoryPolicyStore> {
    async fn policy_revision(&self, msp_id: &MspId) -> Result<u64, StoreError> {
        self.rounds.pass("revision").await;
        let switch = self.switch_off_during_revision_read.lock().unwrap().take();
        if let Some(policy_id) = switch {
            self.inner.set_tenant_policy(msp_id, &TenantId::parse(TENANT).unwrap(), &policy_id, false).await?;
        }
        self.inner.policy_revision(msp_id).await
    }
    async fn put_policy(&self, msp_id: &MspId, policy: &StoredPolicy) -> Result<(), StoreError> {
        self.inner.put_policy(msp_id, policy).await
    }
    async fn get_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<Option<StoredPolicy>, StoreError> {
        self.inner.get_policy(msp_id, policy_id).await
    }
    async fn delete_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<bool, StoreError> {
        self.inner.delete_policy(msp_id, policy_id).await
    }
    async fn list_policies(&self, msp_id: &MspId) -> Result<Vec<StoredPolicy>, StoreError> {
        let answer = self.inner.list_policies(msp_id).await;
        self.rounds.pass("policies").await;
        if self.lists_unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("throttled".into()));
        }
        answer
    }
    async fn set_tenant_policy(&self, msp_id: &MspId, tenant_id: &TenantId, policy_id: &PolicyId, enabled: bool) -> Result<(), StoreError> {
        self.inner.set_tenant_policy(msp_id, tenant_id, policy_id, enabled).await
    }
    async fn tenant_policies(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Vec<(PolicyId, bool)>, StoreError> {
        let answer = self.inner.tenant_policies(msp_id, tenant_id).await;
        self.rounds.pass("switches").await;
        answer
    }
    async fn put_suppression(&self, suppression: &Suppression) -> Result<(), StoreError> {
        self.inner.put_suppression(suppression).await
    }
    async fn list_suppressions(&self, msp_id: &MspId) -> Result<Vec<Suppression>, StoreError> {
        let answer = self.inner.list_suppressions(msp_id).await;
        self.rounds.pass("suppressions").await;
        answer
    }
    async fn delete_suppression(&self, msp_id: &MspId, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_suppression(msp_id, id).await
    }
}

struct Fixture {
    service: EvaluateService,
    policies: Arc<Gated<MemoryPolicyStore>>,
    rounds: Arc<Rounds>,
}

async fn fixture() -> Fixture {
    let rounds = Arc::new(Rounds::new());
    let config = Gated::new(MemoryConfigStore::default(), rounds.clone());
    let acme = MspId::parse("acme").unwrap();
    config.create_tenant(&crate::contract::sample_tenant(&acme, &TenantId::parse(TENANT).unwrap())).await.unwrap();
    let policies = Arc::new(Gated::new(MemoryPolicyStore::default(), rounds.clone()));
    let clock = Arc::new(crate::clock::ManualClock::at(
        chrono::DateTime::parse_from_rfc3339("2026-01-05T10:00:00Z").unwrap().with_timezone(&chrono::Utc),
    ));
    let service = EvaluateService {
        config: Arc::new(config),
        alerts: Arc::new(MemoryAlertStore::default()),
        policies: policies.clone(),
        triggers: Arc::new(MemoryTriggerStore::default()),
        tickets: Arc::new(MemoryQueue::default()),
        cache: PolicyCache::default(),
        clock,
        partner_activity: Arc::new(MemoryConfigStore::default()),
    };
    Fixture { service, policies, rounds }
}

/// acme's tenant creating a forwarding rule (`builtin.forwarding-rule` matches it).
fn forwarding(id: &str) -> String {
    let record = json!({"Id": id, "RecordType": 1, "CreationTime": "2026-01-05T09:31:00", "Operation": "New-InboxRule",
                        "UserId": "alice@contoso.com", "Workload": "Exchange", "ResultStatus": "True",
                        "Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}]});
    json!({"msp_id": "acme", "tenant_id": TENANT, "stream": "Audit.Exchange", "content_id": id, "records": [record]}).to_string()
}

const COLD: [&str; 6] = ["msp", "policies", "revision", "suppressions", "switches", "tenant"];
const WARM: [&str; 3] = ["msp", "revision", "tenant"];

/// Runs one batch of one message, expecting rounds of `size` reads.
async fn batch(f: &Fixture, size: usize, id: &str) -> (EvaluationReport, (Vec<&'static str>, usize)) {
    f.rounds.expect(size);
    let report = f.service.handle(&forwarding(id)).await.unwrap();
    (report, f.rounds.taken())
}

#[tokio::test]
async fn a_cold_batch_reads_the_tenant_the_msp_the_revision_and_the_three_policy_lists_in_one_round_trip() {
    let f = fixture().await;
    let (report, (reads, rounds)) = batch(&f, COLD.len(), "a").await;
    assert_eq!(report.hits, 1);
    assert_eq!((reads, rounds), (COLD.to_vec(), 1), "all six reads in flight at once");
}

#[tokio::test]
async fn a_warm_batch_reads_only_the_tenant_the_msp_and_the_revision_in_one_round_trip() {
    let f = fixture().await;
    batch(&f, COLD.len(), "a").await;
    // The lists of the first load went out with the container's first revision read, so they
    // are loaded once more (still one round trip) before they are kept.
    assert_eq!(batch(&f, COLD.len(), "b").await.1, (COLD.to_vec(), 1));
    for id in ["c", "d"] {
        let (report, taken) = batch(&f, WARM.len(), id).await;
        assert_eq!(report.hits, 1);
        assert_eq!(taken, (WARM.to_vec(), 1), "batch {id}: no list read, the three reads at once");
    }
}

#[tokio::test]
async fn a_moved_revision_reloads_the_lists_in_a_second_round_trip() {
    let f = fixture().await;
    batch(&f, COLD.len(), "a").await;
    batch(&f, COLD.len(), "b").await;
    let forwarding_rule = PolicyId::parse("builtin.forwarding-rule").unwrap();
    f.policies.set_tenant_policy(&MspId::parse("acme").unwrap(), &TenantId::parse(TENANT).unwrap(), &forwarding_rule, false).await.unwrap();
    let (report, taken) = batch(&f, 3, "c").await;
    assert_eq!(report.hits, 0, "the switch took effect");
    assert_eq!(taken, (COLD.to_vec(), 2), "tenant, MSP and revision, then the three lists");
    assert_eq!(batch(&f, WARM.len(), "d").await.1, (WARM.to_vec(), 1), "kept under the revision read before them");
}

#[tokio::test]
async fn lists_read_alongside_a_revision_are_not_kept_under_it_when_a_write_lands_between_them() {
    let f = fixture().await;
    *f.policies.switch_off_during_revision_read.lock().unwrap() = Some(PolicyId::parse("builtin.forwarding-rule").unwrap());
    // The lists are answered before the switch, the revision after it: this batch may use
    // either, but the lists must not pass for the new revision's.
    batch(&f, COLD.len(), "a").await;
    let (report, _) = batch(&f, COLD.len(), "b").await;
    assert_eq!(report.hits, 0, "the next batch saw the switch");
    assert_eq!(batch(&f, WARM.len(), "c").await.0.hits, 0);
}

#[tokio::test]
async fn lists_read_after_another_tenants_revision_read_are_kept_at_once() {
    let f = fixture().await;
    batch(&f, COLD.len(), "a").await;
    // A second tenant of the same MSP: its first load already follows a revision read.
    let other = "6e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
    let acme = MspId::parse("acme").unwrap();
    f.service.config.create_tenant(&crate::contract::sample_tenant(&acme, &TenantId::parse(other).unwrap())).await.unwrap();
    let body = forwarding("b").replace(TENANT, other);
    f.rounds.expect(COLD.len());
    f.service.handle(&body).await.unwrap();
    assert_eq!(f.rounds.taken(), (COLD.to_vec(), 1));
    f.rounds.expect(WARM.len());
    f.service.handle(&forwarding("c").replace(TENANT, other)).await.unwrap();
    assert_eq!(f.rounds.taken(), (WARM.to_vec(), 1), "warm from its second batch");
}

#[tokio::test]
async fn read_failures_classify_as_when_the_reads_went_one_after_another() {
    let f = fixture().await;
    f.policies.lists_unavailable.store(true, std::sync::atomic::Ordering::SeqCst);
    f.rounds.expect(COLD.len());
    let unknown = forwarding("a").replace("5e1f2c8a", "6e1f2c8a");
    let error = f.service.handle(&unknown).await.unwrap_err();
    assert!(matches!(error, EvaluateError::UnknownTenant { .. }), "the tenant is looked at first: {error}");
    assert_eq!(error.class(), ErrorClass::Permanent);
    f.rounds.expect(COLD.len());
    let error = f.service.handle(&forwarding("b")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "a known tenant whose policies cannot be read is retried: {error}");
}
