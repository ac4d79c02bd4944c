//! Evaluating audit records: an events message (records of one blob of one tenant) is run
//! through the tenant's policies (compiled once and cached per warm container until the MSP's
//! policy revision moves); matches covered by a live suppression rule are dropped; every-time
//! matches are hits at once, threshold and unusual-activity matches go through their trigger
//! state (combined per key for the whole message, one read and one conditional write per key);
//! hits are added to their alerts exactly once per record; every touched alert of an active
//! policy is announced on the tickets queue (shadow-mode alerts never are).
//!
//! Order matters for exactly-once: hits are written before the trigger state that marks them
//! reported, so a crash in between repeats the hits (idempotent), never loses them.
//!
//! Backfill: records polled late (after an outage, or a new tenant's first look-back) count
//! toward aggregation and thresholds like any, but an alert whose newest hit is older than the
//! MSP's `backfill_ticket_max_age_hours` is not announced, so it gets no ticket (it is still
//! visible through the API). Vigil's own connection and stuck-stream alerts are always announced.
//!
//! Re-announcing an alert that did not change is deliberate: if a previous attempt stored the
//! hits and crashed before announcing, the retry must still announce. The dispatcher is
//! idempotent, so extra announcements cost a read, never a ticket.

use crate::alert::{Alert, AlertHits, Fact, PolicyMode};
use crate::audit::{AuditRecord, RecordError};
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, QueueError, StoreError};
use crate::ids::{AlertId, AuditStream, MspId, PolicyId, TenantId};
use crate::messages::{ADMIN_RELATIONSHIP_EVENTS, AlertChangedMessage, VIGIL_EVENTS_PREFIX};
use crate::policy::condition::TenantContext;
use crate::policy::suppression::suppresses;
use crate::policy::trigger::{BaselineState, Observation, ThresholdState, TriggerState};
use crate::policy::{
    CompiledTrigger, PolicyEngine, PolicyMatch, TenantScope, effective_definitions, engine_for_tenant, graph_alert_anchor,
    graph_alert_record,
};
use crate::ports::{AlertStore, ConfigStore, MessageQueue, PolicyStore, StoredPolicy, Suppression, TriggerKey, TriggerStateStore};
use crate::tenant::{Msp, Tenant};
use chrono::{DateTime, Duration, Utc};
use envelope::{EventsEnvelope, RawRecord};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// Why an events message could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("events message is malformed: {0}")]
    MalformedMessage(String),
    #[error("events message holds an unusable record: {0}")]
    MalformedRecord(#[from] RecordError),
    #[error("tenant {tenant_id} of MSP {msp_id} is not registered")]
    UnknownTenant { msp_id: String, tenant_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Classified for EvaluateError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::MalformedMessage(_) | Self::MalformedRecord(_) => ErrorClass::Invalid,
            Self::UnknownTenant { .. } => ErrorClass::Permanent,
            Self::Store(e) => e.class(),
            Self::Queue(e) => e.class(),
        }
    }
}

/// What one message produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationReport {
    pub records: usize,
    /// Matches that became (or stayed) hits of an alert.
    pub hits: usize,
    /// Matches a suppression rule held back.
    pub suppressed: usize,
    /// Threshold / unusual-activity matches that did not (yet) trigger.
    pub below_trigger: usize,
    pub alerts: Vec<AlertId>,
}

/// How long compiled policies are kept even while the MSP's policy revision stays the same.
const CACHE_MAX_AGE_SECS: i64 = 300;

struct CachedPolicies {
    /// A revision the policy lists were read after: they are at least that new, so while the
    /// MSP's revision still reads this, they are current.
    revision: u64,
    loaded_at: DateTime<Utc>,
    engine: Arc<PolicyEngine>,
    suppressions: Arc<Vec<Suppression>>,
}

/// Compiled policies per tenant for the life of a warm container; reloaded when the MSP's
/// policy revision changes or after five minutes.
///
/// Round trips: a warm tenant costs one read (the revision), a cold one reads the revision and
/// the three policy lists at once. Lists read alongside a revision may predate it (a write can
/// land between the two), so they are kept under the newest revision this container had read
/// *before* they were requested — never under the one read with them. The first load of an
/// MSP after a cold start has no such revision and is not kept; the next batch loads again,
/// still in one round trip, and keeps it. A revision that moves under a kept entry is
/// followed by the lists in a second round trip, kept under the revision just read.
#[derive(Default)]
pub struct PolicyCache {
    entries: Mutex<HashMap<(MspId, TenantId), CachedPolicies>>,
    /// The newest policy revision read per MSP (the counter only grows).
    seen: Mutex<HashMap<MspId, u64>>,
}

/// An MSP's policies, the tenant's switches and the MSP's suppression rules, as read.
type PolicyLists = (Vec<StoredPolicy>, Vec<(PolicyId, bool)>, Vec<Suppression>);

impl PolicyCache {
    /// The tenant's engine and the MSP's suppression rules.
    ///
    /// # Errors
    /// When the policy store cannot be read (the first failing read in the order revision,
    /// policies, switches, suppressions).
    pub async fn get(
        &self,
        store: &dyn PolicyStore,
        msp_id: &MspId,
        tenant_id: &TenantId,
        now: DateTime<Utc>,
    ) -> Result<TenantPolicies, StoreError> {
        let key = (msp_id.clone(), tenant_id.clone());
        let fresh = {
            let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            entries
                .get(&key)
                .filter(|cached| now - cached.loaded_at < Duration::seconds(CACHE_MAX_AGE_SECS))
                .map(|cached| (cached.revision, cached.engine.clone(), cached.suppressions.clone()))
        };
        if let Some((revision, engine, suppressions)) = fresh {
            // Warm: the revision alone says whether the entry is current.
            let current = store.policy_revision(msp_id).await?;
            self.saw(msp_id, current);
            if current == revision {
                return Ok((engine, suppressions));
            }
            let lists = read_lists(store, msp_id, tenant_id).await?;
            return Ok(self.compile(key, Some(current), now, lists));
        }
        // Cold: the lists are needed whatever the revision reads, so both go out at once.
        let before = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(msp_id).copied();
        let (current, lists) = futures::join!(store.policy_revision(msp_id), read_lists(store, msp_id, tenant_id));
        let current = current?;
        let lists = lists?;
        self.saw(msp_id, current);
        Ok(self.compile(key, before, now, lists))
    }

    fn saw(&self, msp_id: &MspId, revision: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let newest = seen.entry(msp_id.clone()).or_default();
        *newest = (*newest).max(revision);
    }

    /// Compiles what was read and keeps it under `revision` (when one is known to precede it).
    fn compile(&self, key: (MspId, TenantId), revision: Option<u64>, now: DateTime<Utc>, lists: PolicyLists) -> TenantPolicies {
        let (stored, switches, suppressions) = lists;
        let engine = Arc::new(engine_for_tenant(&effective_definitions(&stored), &switches, &key.1));
        let suppressions = Arc::new(suppressions);
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match revision {
            Some(revision) => {
                entries
                    .insert(key, CachedPolicies { revision, loaded_at: now, engine: engine.clone(), suppressions: suppressions.clone() });
            }
            None => {
                entries.remove(&key);
            }
        }
        (engine, suppressions)
    }
}

/// The three policy lists, read at once; the first error in their order wins, as it did when
/// they were read one after another.
async fn read_lists(store: &dyn PolicyStore, msp_id: &MspId, tenant_id: &TenantId) -> Result<PolicyLists, StoreError> {
    let (stored, switches, suppressions) =
        futures::join!(store.list_policies(msp_id), store.tenant_policies(msp_id, tenant_id), store.list_suppressions(msp_id));
    Ok((stored?, switches?, suppressions?))
}

/// The evaluation use case.
pub struct EvaluateService {
    pub config: Arc<dyn ConfigStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub policies: Arc<dyn PolicyStore>,
    pub triggers: Arc<dyn TriggerStateStore>,
    /// Where changed alerts are announced for ticketing.
    pub tickets: Arc<dyn MessageQueue>,
    pub cache: PolicyCache,
    pub clock: Arc<dyn Clock>,
    /// Where partner technicians' actions (audit records of UserType 9) are noted, as activity
    /// on the MSP's delegated access to the tenant.
    pub partner_activity: Arc<dyn crate::ports::RelationshipStore>,
}

/// The latest creation time among records of partner technicians (UserType 9, acting through
/// GDAP) in a message, found without parsing the records that do not mention it.
fn latest_partner_action(raw: &[RawRecord<'_>], records: &[AuditRecord]) -> Option<DateTime<Utc>> {
    let finder = memchr::memmem::Finder::new(b"\"UserType\"");
    // Nearly every record has a UserType: look at the value's first digit before asking the
    // record (`"UserType": 9`, `"UserType":"9"`).
    let says_nine = |text: &[u8]| {
        finder.find_iter(text).any(|at| {
            let mut rest = text[at + 10..].iter().skip_while(|b| b.is_ascii_whitespace() || **b == b':' || **b == b'"');
            rest.next() == Some(&b'9') && !rest.next().is_some_and(u8::is_ascii_digit)
        })
    };
    raw.iter()
        .zip(records)
        .filter(|(raw, _)| says_nine(raw.get().as_bytes()))
        .filter(|(_, record)| record.field("UserType").and_then(crate::audit::int_or_string) == Some(PARTNER_TECHNICIAN))
        .map(|(_, record)| record.creation_time)
        .max()
}

/// `UserType` of a partner technician acting in a customer tenant through GDAP.
const PARTNER_TECHNICIAN: i64 = 9;

/// Hits gathered per alert.
#[derive(Default)]
struct HitBatch {
    alerts: BTreeMap<AlertId, AlertHits>,
}

impl HitBatch {
    fn add(&mut self, alert: Alert, found: &PolicyMatch) {
        let hits = self.alerts.entry(alert.id.clone()).or_insert_with(|| AlertHits::new(alert));
        hits.records.push((found.record_id.clone(), found.event_time));
        if let Some(detail) = &found.detail {
            hits.details.insert(found.record_id.clone(), detail.clone());
        }
    }
}

/// How often a trigger-state write is retried after losing a race.
const TRIGGER_ATTEMPTS: usize = 8;

type TenantKey = (MspId, TenantId);
/// A tenant's compiled policies and its MSP's suppression rules.
type TenantPolicies = (Arc<PolicyEngine>, Arc<Vec<Suppression>>);

/// What the messages of one batch share: each tenant and its compiled policies are read once
/// per batch, however many of its messages the batch holds.
#[derive(Default)]
struct BatchLookups {
    tenants: Mutex<HashMap<TenantKey, Arc<tokio::sync::OnceCell<Option<Tenant>>>>>,
    policies: Mutex<HashMap<TenantKey, Arc<tokio::sync::OnceCell<TenantPolicies>>>>,
    msps: Mutex<HashMap<MspId, Arc<tokio::sync::OnceCell<Option<Msp>>>>>,
}

impl BatchLookups {
    fn tenant(&self, key: &TenantKey) -> Arc<tokio::sync::OnceCell<Option<Tenant>>> {
        self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key.clone()).or_default().clone()
    }

    fn policies(&self, key: &TenantKey) -> Arc<tokio::sync::OnceCell<TenantPolicies>> {
        self.policies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key.clone()).or_default().clone()
    }

    fn msp(&self, msp_id: &MspId) -> Arc<tokio::sync::OnceCell<Option<Msp>>> {
        self.msps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(msp_id.clone()).or_default().clone()
    }
}

/// Policies on Vigil's own events, whose alerts are always announced: their event time is an
/// episode's start, which may well be older than the backfill ticket age.
const ALWAYS_ANNOUNCED: [&str; 2] = ["builtin.tenant-connection-problem", "builtin.stream-stuck"];

/// A customer the partner tenant lists that is not a Vigil tenant of the MSP, named as the
/// findings name it.
fn unregistered_customer(message: &EventsEnvelope<'_>) -> Tenant {
    let name = message
        .records
        .iter()
        .find_map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok()?.get("OrganizationName")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| message.tenant_id.to_string());
    Tenant {
        msp_id: message.msp_id.clone(),
        tenant_id: message.tenant_id.clone(),
        name,
        domains: Vec::new(),
        break_glass_accounts: Vec::new(),
        company_links: BTreeMap::new(),
        legacy_connectwise_company_id: None,
        m365_credentials_set: false,
        credentials_from_msp_app: false,
        webhook_auth_hash: None,
        webhook_registered: false,
        offboarded_at: None,
        streams: Some(Vec::new()),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

/// Whether a message's self-monitoring events are evaluated: those about a customer only while
/// Vigil watches it (registered and not offboarded: an event sent before the tenant was
/// offboarded, or purged, raises nothing), those about the MSP itself
/// ([`crate::selfmon::MSP_ITSELF`]) always. Other messages are not concerned.
fn self_monitoring_applies(content_id: &str, tenant_id: &crate::ids::TenantId, tenant: Option<&Tenant>) -> bool {
    if content_id != crate::messages::SELF_MONITORING_EVENTS || tenant_id.as_str() == crate::selfmon::MSP_ITSELF {
        return true;
    }
    tenant.is_some_and(|t| t.offboarded_at.is_none())
}

/// One message, evaluated but not yet written.
struct Prepared {
    tenant: Tenant,
    domains: Vec<String>,
    break_glass: Vec<String>,
    engine: Option<Arc<PolicyEngine>>,
    records: Vec<AuditRecord>,
    content_id: String,
    /// The message is about the MSP's own delegated access to the tenant (admin-relationship
    /// findings), not about activity in it: its alerts say so, for dispatch to file them.
    about_msp_access: bool,
    /// The latest action of a partner technician among the message's records.
    partner_action: Option<DateTime<Utc>>,
    batch: HitBatch,
    resolutions: Vec<AlertId>,
    /// Alerts whose newest hit is older than this get no ticket (the MSP's backfill setting).
    ticket_max_age: Option<Duration>,
    /// Threshold / unusual-activity matches by (policy index in `engine`, trigger key).
    triggered: BTreeMap<(usize, String), Vec<PolicyMatch>>,
    report: EvaluationReport,
}

impl Prepared {
    fn scope(&self) -> TenantScope<'_> {
        TenantScope {
            msp_id: &self.tenant.msp_id,
            tenant_id: &self.tenant.tenant_id,
            tenant_name: &self.tenant.name,
            context: TenantContext { domains: &self.domains, break_glass_accounts: &self.break_glass },
        }
    }
}

/// One trigger key's matches in a batch, from the messages (by position) that brought them.
struct TriggerWork {
    /// The message whose engine and scope are used.
    lead: usize,
    index: usize,
    key: String,
    parts: Vec<usize>,
}

impl EvaluateService {
    /// Evaluates one events-queue message body.
    ///
    /// # Errors
    /// Invalid for a malformed message, permanent for an unknown tenant, transient when a
    /// store or queue fails (the whole message is then retried; repeating it is harmless).
    pub async fn handle(&self, body: &str) -> Result<EvaluationReport, EvaluateError> {
        let mut results = self.handle_batch(std::slice::from_ref(&body.to_owned())).await;
        results.pop().unwrap_or_else(|| Err(EvaluateError::MalformedMessage("no message".into())))
    }

    /// Evaluates one SQS batch. Each message succeeds or fails on its own, but the threshold
    /// and unusual-activity matches of the whole batch are combined per (tenant, policy, key):
    /// one state read and one conditional write per key per batch. When a key's update fails,
    /// every message that contributed to it fails (and is retried; nothing is counted twice).
    pub async fn handle_batch(&self, bodies: &[String]) -> Vec<Result<EvaluationReport, EvaluateError>> {
        let now = self.clock.now();
        let lookups = BatchLookups::default();
        let mut prepared: Vec<Result<Prepared, EvaluateError>> =
            futures::future::join_all(bodies.iter().map(|body| self.prepare(body, &lookups, now))).await;
        // Group trigger work across messages of the same tenant, policy and key.
        let mut work: BTreeMap<(MspId, TenantId, String, String), TriggerWork> = BTreeMap::new();
        for (position, message) in prepared.iter().enumerate() {
            let Ok(message) = message else { continue };
            let Some(engine) = &message.engine else { continue };
            for (index, key) in message.triggered.keys() {
                let policy_id = engine.policy(*index).id().to_string();
                let entry = (message.tenant.msp_id.clone(), message.tenant.tenant_id.clone(), policy_id, key.clone());
                work.entry(entry)
                    .or_insert_with(|| TriggerWork { lead: position, index: *index, key: key.clone(), parts: Vec::new() })
                    .parts
                    .push(position);
            }
        }
        let mut trigger_alerts: Vec<Vec<Alert>> = vec![Vec::new(); bodies.len()];
        let mut trigger_failures: Vec<Option<EvaluateError>> = (0..bodies.len()).map(|_| None).collect();
        // Trigger keys are applied one after another: messages of one batch often share a key.
        for job in work.values() {
            match self.apply_trigger(&prepared, job, now).await {
                Ok((alerts, counts)) => {
                    for (position, hits, below) in counts {
                        if let Ok(message) = &mut prepared[position] {
                            message.report.hits += hits;
                            message.report.below_trigger += below;
                        }
                        trigger_alerts[position].extend(alerts.iter().cloned());
                    }
                }
                Err(error) => {
                    for position in &job.parts {
                        if trigger_failures[*position].is_none() {
                            trigger_failures[*position] = Some(copy_error(&error));
                        }
                    }
                }
            }
        }
        let finishing = prepared.into_iter().zip(trigger_failures).zip(trigger_alerts).map(|((message, failure), alerts)| async move {
            match (message, failure) {
                (Err(error), _) | (Ok(_), Some(error)) => Err(error),
                (Ok(message), None) => self.finish(message, alerts, now).await,
            }
        });
        futures::future::join_all(finishing).await
    }

    /// Reads and evaluates one message: every-time hits, resolutions and trigger matches.
    async fn prepare(&self, body: &str, lookups: &BatchLookups, now: DateTime<Utc>) -> Result<Prepared, EvaluateError> {
        let mut message = envelope::read(body).map_err(EvaluateError::MalformedMessage)?;
        let key = (message.msp_id.clone(), message.tenant_id.clone());
        // The tenant, its MSP and its policies are independent reads: one round trip for all
        // (on a warm container the policies are one revision read). Their results are looked
        // at in the order they used to be read, so the same failure wins as before.
        let (tenant, msp, policies) = futures::join!(
            async { lookups.tenant(&key).get_or_try_init(|| self.config.get_tenant(&message.msp_id, &message.tenant_id)).await.cloned() },
            async { lookups.msp(&message.msp_id).get_or_try_init(|| self.config.get_msp(&message.msp_id)).await.cloned() },
            async { lookups.policies(&key).get_or_try_init(|| self.cache.get(self.policies.as_ref(), &key.0, &key.1, now)).await.cloned() },
        );
        // Admin-relationship findings are about every customer the partner tenant lists,
        // monitored by Vigil or not: an unregistered customer is a tenant with nothing but its
        // name (no domains, no company links).
        let about_msp_access = [ADMIN_RELATIONSHIP_EVENTS, crate::messages::BILLING_EVENTS, crate::messages::SELF_MONITORING_EVENTS]
            .contains(&message.content_id.as_str());
        let tenant = tenant?;
        let watched = self_monitoring_applies(&message.content_id, &message.tenant_id, tenant.as_ref());
        let tenant = match tenant {
            Some(tenant) => tenant,
            None if about_msp_access => unregistered_customer(&message),
            None => {
                return Err(EvaluateError::UnknownTenant { msp_id: message.msp_id.to_string(), tenant_id: message.tenant_id.to_string() });
            }
        };
        let ticket_max_age = msp?.as_ref().and_then(|msp| msp.backfill_ticket_max_age_hours).map(|hours| Duration::hours(i64::from(hours)));
        let (engine, suppressions) = policies?;
        let mut prepared = Prepared {
            domains: tenant.domains.iter().map(|d| d.to_lowercase()).collect(),
            break_glass: tenant.break_glass_accounts.iter().map(|a| a.to_lowercase()).collect(),
            tenant,
            engine: None,
            records: Vec::new(),
            content_id: message.content_id.clone(),
            about_msp_access,
            partner_action: None,
            batch: HitBatch::default(),
            resolutions: Vec::new(),
            ticket_max_age,
            triggered: BTreeMap::new(),
            report: EvaluationReport { records: message.records.len(), ..EvaluationReport::default() },
        };
        // Graph security alerts go through the engine as pseudo-records (see
        // `graph_alert_record`), their alert windows anchored at the Graph alert's creation.
        let graph = message.stream == AuditStream::GraphAlerts;
        prepared.records = if graph {
            let mut records = Vec::with_capacity(message.records.len());
            for raw in &message.records {
                let value: serde_json::Value =
                    serde_json::from_str(raw.get()).map_err(|e| EvaluateError::MalformedMessage(e.to_string()))?;
                records.extend(graph_alert_record(&value));
            }
            records
        } else {
            let records: Vec<AuditRecord> = message.records.iter_mut().map(RawRecord::record).collect::<Result<_, _>>()?;
            prepared.partner_action = latest_partner_action(&message.records, &records);
            // RecordType 0 is Vigil's own (connection problems, stuck streams, Graph alerts):
            // only messages Vigil made itself may carry it, never content fetched from Microsoft.
            let vigils_own = message.content_id.starts_with(VIGIL_EVENTS_PREFIX);
            records.into_iter().filter(|record| vigils_own || record.record_type != 0).collect()
        };
        if !watched {
            tracing::info!(
                message = "Self-monitoring events about a tenant no longer watched (offboarded or gone) are not evaluated.",
                records = prepared.records.len()
            );
            prepared.records.clear();
        }
        let mut batch = HitBatch::default();
        let mut resolutions = Vec::new();
        let mut triggered: BTreeMap<(usize, String), Vec<PolicyMatch>> = BTreeMap::new();
        let (mut hits, mut suppressed) = (0, 0);
        {
            let scope = prepared.scope();
            for record in &prepared.records {
                for (index, found) in engine.evaluate(&scope, record) {
                    let policy = engine.policy(index);
                    let anchor = if graph { graph_alert_anchor(record) } else { found.event_time };
                    if found.resolves {
                        resolutions.push(policy.alert_for(&scope, &found, anchor, now).id);
                        continue;
                    }
                    let held_back = suppressions
                        .iter()
                        .any(|rule| suppresses(rule, scope.tenant_id, policy.id(), policy.definition.category, &found, record, now));
                    if held_back {
                        suppressed += 1;
                        continue;
                    }
                    match &policy.trigger {
                        CompiledTrigger::EveryTime => {
                            hits += 1;
                            let mut alert = policy.alert_for(&scope, &found, anchor, now);
                            alert.detail.about_msp_access = about_msp_access;
                            batch.add(alert, &found);
                        }
                        _ => triggered.entry((index, found.trigger_key.clone().unwrap_or_default())).or_default().push(found),
                    }
                }
            }
        }
        prepared.batch = batch;
        prepared.resolutions = resolutions;
        prepared.triggered = triggered;
        prepared.report.hits += hits;
        prepared.report.suppressed += suppressed;
        prepared.engine = Some(engine);
        Ok(prepared)
    }

    /// Writes one message's every-time hits and resolutions, and announces every alert it
    /// touched (shadow-mode alerts excepted).
    async fn finish(&self, message: Prepared, trigger_alerts: Vec<Alert>, now: DateTime<Utc>) -> Result<EvaluationReport, EvaluateError> {
        let mut report = message.report;
        if let Some(at) = message.partner_action {
            self.partner_activity.note_partner_action(&message.tenant.msp_id, &message.tenant.tenant_id, at).await?;
        }
        let mut changed: Vec<Alert> = trigger_alerts;
        // One alert that cannot be written must not keep the message's other alerts from being
        // raised: write them all, announce what was written, then fail the message so it is
        // retried (hits already written are not counted again).
        let mut failed_write = None;
        for hits in message.batch.alerts.values() {
            match self.alerts.record_hits(hits, now).await {
                Ok(alert) => changed.push(alert),
                Err(error) => {
                    warn!(message = "An alert could not be written; the message's other alerts go on and it will be retried.", alert_id = %hits.alert.id, error = %error);
                    failed_write.get_or_insert(error);
                }
            }
        }
        // Backfilled alerts (newest hit older than the MSP's limit) are raised without a ticket.
        let backfilled = |alert: &Alert| {
            message.ticket_max_age.is_some_and(|age| now - alert.last_seen > age)
                && !ALWAYS_ANNOUNCED.contains(&alert.policy_id.as_str())
                && !alert.detail.about_msp_access
        };
        let held_back: std::collections::HashSet<AlertId> =
            changed.iter().filter(|alert| backfilled(alert)).map(|alert| alert.id.clone()).collect();
        for alert_id in &held_back {
            info!(message = "Alert raised from backfilled records; no ticket (older than the MSP's backfill ticket age).", alert_id = %alert_id);
        }
        for alert_id in &message.resolutions {
            if let Some(alert) = self.alerts.resolve_alert(&message.tenant.msp_id, alert_id, now).await? {
                info!(message = "Alert resolved: its condition cleared.", alert_id = %alert.id);
                changed.push(alert);
            }
        }
        let mut seen = std::collections::HashSet::new();
        changed.retain(|alert| seen.insert(alert.id.clone()));
        let announcements: Vec<String> = changed
            .iter()
            .filter(|alert| alert.detail.mode == PolicyMode::Active && !held_back.contains(&alert.id))
            .map(|alert| {
                serde_json::to_string(&AlertChangedMessage::fan_out(alert.msp_id.clone(), alert.id.clone()))
                    .unwrap_or_else(|_| unreachable!("messages always serialise"))
            })
            .collect();
        self.tickets.send_all(&announcements).await?;
        for alert in &changed {
            info!(message = "Alert updated.", alert_id = %alert.id, policy_id = %alert.policy_id, hit_count = alert.hit_count, mode = alert.detail.mode.as_str());
        }
        if let Some(error) = failed_write {
            return Err(error.into());
        }
        report.alerts = changed.into_iter().map(|a| a.id).collect();
        Ok(report)
    }

    /// Runs one trigger key's matches from every message of the batch that has some through its
    /// state: load, decide, write the hits, then store the state at its version (again from the
    /// top when another writer won). Returns the alerts the hits went to (as stored) and, per
    /// contributing message, how many of its matches became hits and how many stayed below.
    async fn apply_trigger(
        &self,
        prepared: &[Result<Prepared, EvaluateError>],
        job: &TriggerWork,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Alert>, Vec<(usize, usize, usize)>), EvaluateError> {
        let Ok(lead) = &prepared[job.lead] else { return Ok((Vec::new(), Vec::new())) };
        let Some(engine) = &lead.engine else { return Ok((Vec::new(), Vec::new())) };
        let policy = engine.policy(job.index);
        let scope = lead.scope();
        // Each contributing message's matches of this policy and key.
        let parts: Vec<(usize, &Prepared, &[PolicyMatch])> = job
            .parts
            .iter()
            .filter_map(|position| {
                let message = prepared[*position].as_ref().ok()?;
                let engine = message.engine.as_ref()?;
                let matches = message
                    .triggered
                    .iter()
                    .find(|((index, key), _)| *key == job.key && engine.policy(*index).id() == policy.id())
                    .map(|(_, matches)| matches.as_slice())?;
                Some((*position, message, matches))
            })
            .collect();
        let trigger_key = TriggerKey {
            msp_id: scope.msp_id.clone(),
            tenant_id: scope.tenant_id.clone(),
            policy_id: policy.id().clone(),
            key: job.key.clone(),
        };
        let by_record: HashMap<&str, &PolicyMatch> =
            parts.iter().flat_map(|(_, _, m)| m.iter()).map(|m| (m.record_id.as_str(), m)).collect();
        let record_of: HashMap<&str, &AuditRecord> =
            parts.iter().flat_map(|(_, p, _)| p.records.iter()).map(|r| (r.id.as_str(), r)).collect();
        // What an alert shows of a match is built only for matches that fire.
        let described = |found: &PolicyMatch| -> PolicyMatch {
            let mut found = found.clone();
            if let Some(record) = record_of.get(found.record_id.as_str()) {
                policy.describe(record, &mut found);
            }
            found
        };
        for _ in 0..TRIGGER_ATTEMPTS {
            let (stored, version) = self.triggers.load_trigger(&trigger_key).await?.map_or((None, 0), |(s, v)| (Some(s), v));
            let mut batch = HitBatch::default();
            let (state, expires) = match &policy.trigger {
                CompiledTrigger::Threshold { count, window, distinct, .. } => {
                    let mut state = match stored {
                        Some(TriggerState::Threshold(state)) => state,
                        _ => ThresholdState::default(),
                    };
                    let observations: Vec<Observation> = by_record
                        .values()
                        .map(|m| Observation { record_id: m.record_id.clone(), at: m.event_time, distinct: m.distinct.clone() })
                        .collect();
                    for firing in state.observe(&observations, *count, *window, distinct.is_some()) {
                        let Some(anchor) = by_record.get(firing.anchor.as_str()) else { continue };
                        let mut alert = policy.alert_for(&scope, &described(anchor), firing.anchor_time, now);
                        alert.detail.about_msp_access = lead.about_msp_access;
                        let what = if distinct.is_some() { "distinct values" } else { "matches" };
                        alert.facts.push(Fact::new(
                            "Trigger",
                            format!("{} {what} within {} minutes (threshold {count})", firing.measured, window.num_minutes()),
                        ));
                        let hits = batch.alerts.entry(alert.id.clone()).or_insert_with(|| AlertHits::new(alert));
                        for (record_id, at) in firing.records {
                            if let Some(detail) = by_record.get(record_id.as_str()).and_then(|found| described(found).detail) {
                                hits.details.insert(record_id.clone(), detail);
                            }
                            hits.records.push((record_id, at));
                        }
                    }
                    let expires = state.expires(*window);
                    (TriggerState::Threshold(state), expires)
                }
                CompiledTrigger::UnusualActivity { min_count, .. } => {
                    let mut state = match stored {
                        Some(TriggerState::Baseline(state)) => state,
                        _ => BaselineState::default(),
                    };
                    // Counted once per message, so a message retried in another batch adds nothing.
                    for (_, message, matches) in &parts {
                        let times: Vec<DateTime<Utc>> = matches.iter().map(|m| m.event_time).collect();
                        state.apply(&message_token(&message.content_id, matches), &times);
                    }
                    for found in by_record.values() {
                        if let Some(unusual) = state.unusual_at(found.event_time, *min_count) {
                            let found = &described(found);
                            let mut alert = policy.alert_for(&scope, found, found.event_time, now);
                            alert.detail.about_msp_access = lead.about_msp_access;
                            alert.facts.push(Fact::new("Trigger", unusual.describe()));
                            batch.add(alert, found);
                        }
                    }
                    let expires = state.expires();
                    (TriggerState::Baseline(state), expires)
                }
                CompiledTrigger::EveryTime => return Ok((Vec::new(), Vec::new())),
            };
            let mut alerts = Vec::with_capacity(batch.alerts.len());
            for hits in batch.alerts.values() {
                alerts.push(self.alerts.record_hits(hits, now).await?);
            }
            match self.triggers.save_trigger(&trigger_key, &state, version, expires).await {
                Ok(()) => {
                    let hit_records: std::collections::HashSet<&str> =
                        batch.alerts.values().flat_map(|h| h.records.iter().map(|(id, _)| id.as_str())).collect();
                    let counts = parts
                        .iter()
                        .map(|(position, _, matches)| {
                            let hits = matches.iter().filter(|m| hit_records.contains(m.record_id.as_str())).count();
                            (*position, hits, matches.len() - hits)
                        })
                        .collect();
                    return Ok((alerts, counts));
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::Conflict { what: format!("trigger state of {}", policy.id()) }.into())
    }
}

/// The same error again, for every message that shared a failed trigger update.
fn copy_error(error: &EvaluateError) -> EvaluateError {
    match error {
        EvaluateError::Store(e) => EvaluateError::Store(e.clone()),
        EvaluateError::Queue(e) => EvaluateError::Queue(e.clone()),
        other => EvaluateError::Store(StoreError::Unavailable(other.to_string())),
    }
}

/// A deterministic id for one message's matches of one key, so a redelivered message adds to
/// a baseline once.
fn message_token(content_id: &str, matches: &[PolicyMatch]) -> String {
    let mut digest = Sha256::new();
    digest.update(content_id.as_bytes());
    for found in matches {
        digest.update(b"\0");
        digest.update(found.record_id.as_str().as_bytes());
    }
    hex::encode(&digest.finalize()[..12])
}

mod envelope;
#[cfg(test)]
mod reads_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod self_monitoring_tests {
    use super::*;

    #[test]
    fn self_monitoring_events_are_evaluated_only_for_a_watched_tenant_or_the_msp_itself() {
        let msp = crate::ids::MspId::parse("acme").unwrap();
        let customer = crate::ids::TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let mut tenant = crate::contract::sample_tenant(&msp, &customer);
        let selfmon = crate::messages::SELF_MONITORING_EVENTS;
        assert!(self_monitoring_applies(selfmon, &customer, Some(&tenant)), "a watched tenant");
        assert!(!self_monitoring_applies(selfmon, &customer, None), "a tenant purged (or never registered)");
        tenant.offboarded_at = Some(Utc::now());
        assert!(!self_monitoring_applies(selfmon, &customer, Some(&tenant)), "an offboarded tenant");
        assert!(self_monitoring_applies(selfmon, &crate::selfmon::msp_itself(), None), "the MSP itself is no tenant");
        assert!(self_monitoring_applies(crate::messages::ADMIN_RELATIONSHIP_EVENTS, &customer, None), "other findings are not concerned");
        assert!(self_monitoring_applies("blob-1", &customer, Some(&tenant)), "nor is content");
    }
}
