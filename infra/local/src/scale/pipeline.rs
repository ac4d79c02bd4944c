//! The scale run: one deployment's poller, evaluator and dispatcher on the in-memory adapters
//! (behind counting decorators), against the Microsoft 365 simulator over HTTP, polling every
//! tenant's six streams in a tick.
//!
//! Each function runs as "instances" ([`super::queue::worker`]) on simulated SQS queues, as many
//! as its event source allows: the poller [`ScaleArgs::instances`] (the poll-jobs trigger's
//! `MaximumConcurrency`), each with its own Microsoft clients (token cache), call budget (its
//! share) and secret cache (emptied every tick: its 300 s lifetime is the 5-minute tick), batches
//! of 5 jobs at once; the evaluator [`ScaleArgs::evaluators`] with batches of 10; the dispatcher
//! [`ScaleArgs::dispatchers`] with batches of 10, four at once, within each MSP's share. The PSA
//! is the in-memory one (no latency).
//!
//! Content: every tenant's streams are polled each tick; one stream in
//! [`ScaleArgs::blob_every`] gets a blob of [`ScaleArgs::records`] records, one tenant in
//! [`ScaleArgs::alert_every`] a Microsoft Graph security alert (a ticket is expected for each),
//! one tenant in [`ScaleArgs::throttled_every`] has a quota of 4 requests a minute (429 +
//! `Retry-After` past it), and one tenant answers every request [`ScaleArgs::slow_ms`] late.

use super::counting::{Counted, Meter, MeterReading};
use super::queue::{BenchQueue, Verdict, worker};
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil::call_budget::{BudgetSettings, BudgetedMicrosoft, CallBudget};
use vigil::clock::SystemClock;
use vigil::connectors::LazyHttp;
use vigil::connectors::graph::GraphAlertsClient;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::contract::{sample_destination, sample_tenant};
use vigil::error::{Classified, ErrorClass};
use vigil::ids::{AuditStream, DestinationId, MspId, TenantId};
use vigil::memory::{
    MemoryAlertStore, MemoryBillingStore, MemoryConfigStore, MemoryIngestState, MemoryMailSender, MemoryMailboxDirectory,
    MemoryPolicyStore, MemoryQueue, MemoryRateLimiter, MemoryRelationshipSource, MemoryReplayStore, MemorySecretStore,
    MemoryTicketSystemProvider, MemoryTriggerStore,
};
use vigil::messages::AlertChangedMessage;
use vigil::ports::{AlertStore, ConfigStore, DestinationStore, SecretName, SecretStore};
use vigil::secret::SecretString;
use vigil::secret_cache::CachingSecretStore;
use vigil::services::dispatch::fairness::MspShare;
use vigil::services::dispatch::{DispatchOutcome, DispatchService, DispatchSettings};
use vigil::services::evaluate::{EvaluateService, PolicyCache};
use vigil::services::poll::{LicencePorts, PollReport, PollService, PollSettings};
use vigil::tenant::Msp;
use vigil_simulators::m365::{LoadReport, M365Sim, M365SimHandle, TenantLoad};

const PUBLISHER: &str = "9a1c8f7e-0000-4000-8000-00000000b3c4";
const CLIENT_ID: &str = "11111111-2222-4333-8444-555555555555";
const CLIENT_SECRET: &str = "scale-bench-secret";
/// The deployment's budgets (the audit-poller's defaults).
const APP_PER_MINUTE: u32 = 60_000;
const TENANT_PER_MINUTE: u32 = 1_000;
/// A tick that has not drained by then is reported unfinished.
const TICK_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// What the run is made of.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ScaleArgs {
    pub tenants: usize,
    pub msps: usize,
    pub latency_ms: u64,
    pub instances: usize,
    pub evaluators: usize,
    pub dispatchers: usize,
    pub blob_every: usize,
    pub records: usize,
    pub alert_every: usize,
    pub throttled_every: usize,
    pub slow_ms: u64,
    /// How long a failed message without `Retry-After` stays invisible (SQS: the visibility
    /// timeout, 720 s on poll-jobs; shortened here).
    pub visibility_s: u64,
    pub msp_share_per_minute: u32,
    /// Each tenant with its own app secret (the per-tenant registration) instead of one MSP
    /// app secret for all its consented tenants (the consent-link onboarding, the default).
    pub secret_per_tenant: bool,
}

impl Default for ScaleArgs {
    fn default() -> Self {
        Self {
            tenants: 2_000,
            msps: 10,
            latency_ms: 50,
            instances: 20,
            evaluators: 10,
            dispatchers: 5,
            blob_every: 10,
            records: 20,
            alert_every: 20,
            throttled_every: 100,
            slow_ms: 5_000,
            visibility_s: 10,
            msp_share_per_minute: 120,
            secret_per_tenant: false,
        }
    }
}

/// One tick's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TickResult {
    pub label: &'static str,
    pub wall_seconds: f64,
    pub finished: bool,
    pub jobs_enqueued: usize,
    pub streams_polled: usize,
    pub streams_failed: usize,
    pub blobs_fetched: usize,
    pub records_enqueued: usize,
    pub job_retries: usize,
    pub dead_lettered: usize,
    pub tickets_expected: usize,
    pub tickets_created: usize,
    /// Content available → ticket created, seconds, sorted.
    pub latencies: Vec<f64>,
    pub microsoft_requests: u64,
    pub microsoft_throttled: u64,
    pub microsoft_peak_in_flight: u64,
    pub busiest_tenant_requests: u64,
    /// When the slow tenant's last stream was polled, after the tick started.
    pub poller: MeterReading,
    pub evaluator: MeterReading,
    pub dispatcher: MeterReading,
    pub budget_peak_in_flight: usize,
}

/// One poller instance's lasting parts: Microsoft clients (with their token caches) and budget.
struct Instance {
    microsoft: Arc<BudgetedMicrosoft>,
}

#[derive(Clone)]
struct Daily {
    mailbox_directory: Arc<MemoryMailboxDirectory>,
    mailbox_counts: Arc<MemoryBillingStore>,
    licences: LicencePorts,
    relationships: Arc<MemoryConfigStore>,
    replays: Arc<MemoryReplayStore>,
}

/// The deployment under test.
pub struct Scale {
    pub args: ScaleArgs,
    pub sim: M365SimHandle,
    config: Arc<MemoryConfigStore>,
    state: Arc<MemoryIngestState>,
    secrets: Arc<MemorySecretStore>,
    alerts: Arc<MemoryAlertStore>,
    policies: Arc<MemoryPolicyStore>,
    triggers: Arc<MemoryTriggerStore>,
    limiter: Arc<MemoryRateLimiter>,
    psas: MemoryTicketSystemProvider,
    jobs: Arc<BenchQueue>,
    events: Arc<BenchQueue>,
    tickets: Arc<BenchQueue>,
    dead_letters: Arc<BenchQueue>,
    pub meters: [Arc<Meter>; 3],
    instances: Vec<Instance>,
    /// The daily reads' ports (licences, mailbox counts), shared by every instance and not
    /// counted: they run once a day per tenant, not per tick.
    daily: Daily,
    tenants: Vec<(MspId, TenantId)>,
    pub slow_tenant: usize,
}

type BenchError = Box<dyn std::error::Error + Send + Sync>;

fn tenant_id(i: usize) -> Result<TenantId, BenchError> {
    Ok(TenantId::parse(&format!("{i:08x}-0000-4000-8000-{i:012x}"))?)
}

impl Scale {
    /// Registers the MSPs, their tenants (credentials, a PSA destination and company link each)
    /// in the stores and the simulator.
    ///
    /// # Errors
    /// When the simulator cannot start or a store refuses the set-up.
    pub async fn setup(args: ScaleArgs) -> Result<Self, BenchError> {
        let sim = M365Sim::start().await?;
        sim.set_latency(Duration::from_millis(args.latency_ms));
        let config = Arc::new(MemoryConfigStore::default());
        let secrets = Arc::new(MemorySecretStore::default());
        let psa = DestinationId::parse("psa")?;
        let credentials = SecretString::new(json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).to_string());
        let msps: Vec<MspId> = (0..args.msps.max(1)).map(|m| MspId::parse(&format!("scale-msp-{m:03}"))).collect::<Result<_, _>>()?;
        for msp_id in &msps {
            let msp: Msp =
                serde_json::from_value(json!({"id": msp_id, "name": format!("MSP {msp_id}"), "created_at": chrono::Utc::now()}))?;
            config.create_msp(&msp).await?;
            config.put_destination(&sample_destination(msp_id, "psa")).await?;
            if !args.secret_per_tenant {
                secrets.put_secret(&SecretName::msp_app(msp_id), &credentials).await?;
            }
        }
        let mut tenants = Vec::with_capacity(args.tenants);
        for i in 0..args.tenants {
            let msp_id = msps[i % msps.len()].clone();
            let id = tenant_id(i)?;
            let mut tenant = sample_tenant(&msp_id, &id);
            tenant.m365_credentials_set = true;
            tenant.credentials_from_msp_app = !args.secret_per_tenant;
            tenant.company_links = [(psa.clone(), format!("company-{i}"))].into();
            config.create_tenant(&tenant).await?;
            if args.secret_per_tenant {
                secrets.put_secret(&SecretName::m365_app(&msp_id, &id), &credentials).await?;
            }
            sim.add_tenant(id.as_str(), CLIENT_ID, CLIENT_SECRET);
            if args.throttled_every > 0 && i % args.throttled_every == args.throttled_every - 1 {
                sim.set_tenant_load(id.as_str(), TenantLoad { per_minute: Some(4), ..TenantLoad::default() });
            }
            tenants.push((msp_id, id));
        }
        let slow_tenant = 7 % args.tenants.max(1);
        sim.set_tenant_load(
            tenants[slow_tenant].1.as_str(),
            TenantLoad { extra_latency: Duration::from_millis(args.slow_ms), per_minute: None },
        );

        let http = LazyHttp::new();
        let endpoints = M365Endpoints { login_base: sim.login_base(), management_base: sim.management_base() };
        let budget = BudgetSettings::share_of(APP_PER_MINUTE, TENANT_PER_MINUTE, u32::try_from(args.instances).unwrap_or(1), 6);
        let instances = (0..args.instances.max(1))
            .map(|_| {
                let management = Arc::new(ManagementActivityClient::new(http.clone(), endpoints.clone(), PUBLISHER.into()));
                Instance {
                    microsoft: Arc::new(BudgetedMicrosoft {
                        budget: Arc::new(CallBudget::new(budget.clone(), Arc::new(SystemClock))),
                        audit: management.clone(),
                        subscriptions: management,
                        alerts: Arc::new(GraphAlertsClient::new(http.clone(), sim.login_base(), sim.graph_base())),
                    }),
                }
            })
            .collect();
        Ok(Self {
            args,
            sim,
            config,
            state: Arc::new(MemoryIngestState::default()),
            secrets,
            alerts: Arc::new(MemoryAlertStore::default()),
            policies: Arc::new(MemoryPolicyStore::default()),
            triggers: Arc::new(MemoryTriggerStore::default()),
            limiter: Arc::new(MemoryRateLimiter::default()),
            psas: MemoryTicketSystemProvider::default(),
            jobs: Arc::new(BenchQueue::default()),
            events: Arc::new(BenchQueue::default()),
            tickets: Arc::new(BenchQueue::default()),
            dead_letters: Arc::new(BenchQueue::default()),
            meters: [Arc::new(Meter::default()), Arc::new(Meter::default()), Arc::new(Meter::default())],
            instances,
            daily: Daily {
                mailbox_directory: Arc::new(MemoryMailboxDirectory::default()),
                mailbox_counts: Arc::new(MemoryBillingStore::default()),
                licences: LicencePorts::in_memory(),
                relationships: Arc::new(MemoryConfigStore::default()),
                replays: Arc::new(MemoryReplayStore::default()),
            },
            tenants,
            slow_tenant,
        })
    }

    /// A poller instance's service for one tick (a fresh secret cache).
    fn poll_service(&self, instance: &Instance) -> PollService {
        let meter = &self.meters[0];
        PollService {
            config: Counted::new(self.config.clone(), meter.clone()),
            state: Counted::new(self.state.clone(), meter.clone()),
            secrets: Arc::new(CachingSecretStore::new(Counted::new(self.secrets.clone(), meter.clone()), Duration::from_secs(300))),
            source: instance.microsoft.clone(),
            subscriptions: instance.microsoft.clone(),
            security_alerts: instance.microsoft.clone(),
            events: Counted::new(self.events.clone(), meter.clone()),
            dead_letters: Counted::new(self.dead_letters.clone(), meter.clone()),
            jobs: Counted::new(self.jobs.clone(), meter.clone()),
            replays: self.daily.replays.clone(),
            relationship_source: Arc::new(MemoryRelationshipSource::default()),
            relationships: self.daily.relationships.clone(),
            mailbox_directory: self.daily.mailbox_directory.clone(),
            mailbox_counts: self.daily.mailbox_counts.clone(),
            billing_jobs: Arc::new(MemoryQueue::default()),
            mail: Arc::new(MemoryMailSender::default()),
            licences: self.daily.licences.clone(),
            clock: Arc::new(SystemClock),
            settings: PollSettings::default(),
        }
    }

    fn evaluate_service(&self) -> EvaluateService {
        let meter = &self.meters[1];
        EvaluateService {
            config: Counted::new(self.config.clone(), meter.clone()),
            alerts: Counted::new(self.alerts.clone(), meter.clone()),
            policies: Counted::new(self.policies.clone(), meter.clone()),
            triggers: Counted::new(self.triggers.clone(), meter.clone()),
            tickets: Counted::new(self.tickets.clone(), meter.clone()),
            cache: PolicyCache::default(),
            clock: Arc::new(SystemClock),
            partner_activity: Arc::new(MemoryConfigStore::default()),
        }
    }

    fn dispatch_service(&self) -> DispatchService {
        let meter = &self.meters[2];
        DispatchService {
            config: Counted::new(self.config.clone(), meter.clone()),
            destinations: Counted::new(self.config.clone() as Arc<dyn DestinationStore>, meter.clone()),
            alerts: Counted::new(self.alerts.clone(), meter.clone()),
            policies: Counted::new(self.policies.clone(), meter.clone()),
            systems: Arc::new(self.psas.clone()),
            tickets: Counted::new(self.tickets.clone(), meter.clone()),
            billing_sync: None,
            credentials: None,
            clock: Arc::new(SystemClock),
            settings: DispatchSettings::default(),
        }
    }

    /// New content for tick `run`; the tenants that must get a ticket.
    fn add_content(&self, run: usize) -> Vec<TenantId> {
        let now = chrono::Utc::now();
        let at = now.format("%Y-%m-%dT%H:%M:%S").to_string();
        let content_types = vigil_simulators::m365::CONTENT_TYPES;
        let mut alerting = Vec::new();
        for (t, (_, tenant)) in self.tenants.iter().enumerate() {
            for (c, content_type) in content_types.iter().enumerate() {
                if self.args.blob_every > 0 && (t * 6 + c + run) % self.args.blob_every == 0 {
                    let records = (0..self.args.records)
                        .map(|r| {
                            let id = format!("{run:08x}-{t:04x}-4{c:03x}-8000-{r:012x}");
                            json!({"CreationTime": at, "Id": id, "Operation": "MailItemsAccessed", "OrganizationId": tenant.as_str(),
                                "RecordType": 50, "ResultStatus": "Succeeded", "UserKey": "10032001A2B3C4D5", "UserType": 0, "Version": 1,
                                "Workload": "Exchange", "UserId": format!("user{}@contoso.com", r % 9), "ClientIPAddress": "203.0.113.7"})
                        })
                        .collect();
                    self.sim.add_records(tenant.as_str(), content_type, records);
                }
            }
            if self.args.alert_every > 0 && t % self.args.alert_every == run % self.args.alert_every {
                let created = now - chrono::Duration::seconds(5);
                self.sim.add_graph_alert(
                    tenant.as_str(),
                    json!({"id": format!("scale-{run}-{t}"), "title": "Suspicious inbox forwarding", "severity": "high", "status": "new",
                        "category": "Exfiltration", "serviceSource": "microsoftDefenderForOffice365",
                        "detectionSource": "microsoftDefenderForOffice365", "createdDateTime": created.to_rfc3339(),
                        "lastUpdateDateTime": now.to_rfc3339()}),
                );
                alerting.push(tenant.clone());
            }
        }
        alerting
    }

    /// One tick: new content, the fan-out, and every queue drained by the functions' instances.
    ///
    /// # Errors
    /// When the fan-out fails.
    pub async fn tick(&self, label: &'static str, run: usize) -> Result<TickResult, BenchError> {
        let alerting = self.add_content(run);
        let available = Instant::now();
        // Listing windows have one-second resolution: let the content's second pass.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let before: Vec<MeterReading> = self.meters.iter().map(|m| m.reading()).collect();
        self.sim.take_load_report();
        let stop = Arc::new(AtomicBool::new(false));
        let dead = Arc::new(Mutex::new(Vec::new()));
        let report = Arc::new(Mutex::new(PollReport::default()));
        let retries = Arc::new(AtomicUsize::new(0));
        let created: Arc<Mutex<Vec<(TenantId, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let visibility = Duration::from_secs(self.args.visibility_s);
        let mut tasks = Vec::new();
        let services: Vec<Arc<PollService>> = self.instances.iter().map(|i| Arc::new(self.poll_service(i))).collect();
        for service in &services {
            let (service, report, retries) = (service.clone(), report.clone(), retries.clone());
            tasks.push(tokio::spawn(worker(self.jobs.clone(), 5, self.meters[0].clone(), stop.clone(), dead.clone(), move |bodies| {
                let (service, report, retries) = (service.clone(), report.clone(), retries.clone());
                async move { poll_batch(&service, &bodies, &report, &retries, visibility).await }
            })));
        }
        for _ in 0..self.args.evaluators.max(1) {
            let service = Arc::new(self.evaluate_service());
            tasks.push(tokio::spawn(worker(self.events.clone(), 10, self.meters[1].clone(), stop.clone(), dead.clone(), move |bodies| {
                let service = service.clone();
                async move {
                    service
                        .handle_batch(&bodies)
                        .await
                        .into_iter()
                        .map(|r| match r {
                            Ok(_) => Verdict::Done,
                            Err(e) if e.class() == ErrorClass::Transient => Verdict::Retry(visibility),
                            Err(_) => Verdict::Dead,
                        })
                        .collect()
                }
            })));
        }
        let share = (self.args.msp_share_per_minute > 0).then(|| MspShare {
            limiter: Counted::new(self.limiter.clone(), self.meters[2].clone()),
            per_minute: self.args.msp_share_per_minute,
        });
        for _ in 0..self.args.dispatchers.max(1) {
            let service = Arc::new(self.dispatch_service());
            let (share, alerts, created, retries) = (share.clone(), self.alerts.clone(), created.clone(), retries.clone());
            tasks.push(tokio::spawn(worker(self.tickets.clone(), 10, self.meters[2].clone(), stop.clone(), dead.clone(), move |bodies| {
                let (service, share, alerts, created, retries) =
                    (service.clone(), share.clone(), alerts.clone(), created.clone(), retries.clone());
                async move { dispatch_batch(&service, share.as_ref(), &alerts, &bodies, &created, &retries, visibility).await }
            })));
        }
        let started = Instant::now();
        let jobs_enqueued = services[0].fan_out().await?;
        let mut finished = true;
        while !(self.jobs.is_idle() && self.events.is_idle() && self.tickets.is_idle()) {
            if started.elapsed() > TICK_DEADLINE {
                finished = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = started.elapsed();
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await?;
        }
        let load = self.sim.take_load_report();
        let report = report.lock().map_or_else(|e| e.into_inner().clone(), |r| r.clone());
        let created = created.lock().map_or_else(|e| e.into_inner().clone(), |c| c.clone());
        let mut first: HashMap<TenantId, Instant> = HashMap::new();
        for (tenant, at) in created {
            first.entry(tenant).and_modify(|t| *t = (*t).min(at)).or_insert(at);
        }
        let mut latencies: Vec<f64> = alerting.iter().filter_map(|t| first.get(t)).map(|at| (*at - available).as_secs_f64()).collect();
        latencies.sort_by(f64::total_cmp);
        let after: Vec<MeterReading> = self.meters.iter().map(|m| m.reading()).collect();
        let dead_lettered = dead.lock().map_or(0, |d| d.len());
        Ok(TickResult {
            label,
            wall_seconds: wall.as_secs_f64(),
            finished,
            jobs_enqueued,
            streams_polled: report.streams_polled,
            streams_failed: report.streams_failed,
            blobs_fetched: report.blobs_fetched,
            records_enqueued: report.records_enqueued,
            job_retries: retries.load(Ordering::SeqCst),
            dead_lettered,
            tickets_expected: alerting.len(),
            tickets_created: latencies.len(),
            latencies,
            microsoft_requests: load.requests.values().sum(),
            microsoft_throttled: load.throttled,
            microsoft_peak_in_flight: load.peak_in_flight,
            busiest_tenant_requests: load.requests.values().copied().max().unwrap_or(0),
            poller: after[0].since(&before[0]),
            evaluator: after[1].since(&before[1]),
            dispatcher: after[2].since(&before[2]),
            budget_peak_in_flight: self.instances.iter().map(|i| i.microsoft.budget.peak_in_flight()).max().unwrap_or(0),
        })
    }

    /// Each function's resident-memory growth during one invocation, in bytes (`None` where it
    /// cannot be read): a poll batch of 5 jobs (three streams with a blob, two with a Graph
    /// alert), then the evaluator's batches of the events they made, then the dispatcher's
    /// batches (fan-outs, then deliveries); the largest batch of each function counts.
    ///
    /// # Errors
    /// When a job cannot be serialised.
    pub async fn probe_memory(&self) -> Result<[Option<u64>; 3], BenchError> {
        let content_types = vigil_simulators::m365::CONTENT_TYPES;
        let now = chrono::Utc::now();
        let at = now.format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut bodies = Vec::new();
        for (n, (msp_id, tenant)) in self.tenants.iter().take(5).enumerate() {
            let stream = if n < 3 {
                let records = (0..self.args.records.max(50))
                    .map(|r| {
                        json!({"CreationTime": at, "Id": format!("ffffffff-{n:04x}-4000-8000-{r:012x}"), "Operation": "MailItemsAccessed",
                            "OrganizationId": tenant.as_str(), "RecordType": 50, "ResultStatus": "Succeeded", "UserKey": "10032001A2B3C4D5",
                            "UserType": 0, "Version": 1, "Workload": "Exchange", "UserId": format!("user{r}@contoso.com")})
                    })
                    .collect();
                self.sim.add_records(tenant.as_str(), content_types[1], records);
                AuditStream::Content(vigil::ids::ContentType::Exchange)
            } else {
                self.sim.add_graph_alert(
                    tenant.as_str(),
                    json!({"id": format!("probe-{n}"), "title": "Suspicious inbox forwarding", "severity": "high", "status": "new",
                        "category": "Exfiltration", "serviceSource": "microsoftDefenderForOffice365", "createdDateTime": now.to_rfc3339(),
                        "lastUpdateDateTime": now.to_rfc3339()}),
                );
                AuditStream::GraphAlerts
            };
            bodies.push(serde_json::to_string(&vigil::messages::PollJob::Stream {
                msp_id: msp_id.clone(),
                tenant_id: tenant.clone(),
                stream,
            })?);
        }
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let visibility = Duration::from_secs(self.args.visibility_s);
        let service = self.poll_service(&self.instances[0]);
        let (report, retries) = (Mutex::new(PollReport::default()), AtomicUsize::new(0));
        let (_, poller) = super::memory::peak_growth(poll_batch(&service, &bodies, &report, &retries, visibility)).await;

        let evaluate = self.evaluate_service();
        let mut evaluator = None;
        loop {
            let batch = self.events.receive(10);
            if batch.is_empty() {
                break;
            }
            let bodies: Vec<String> = batch.iter().map(|m| m.body.clone()).collect();
            let (_, growth) = super::memory::peak_growth(evaluate.handle_batch(&bodies)).await;
            evaluator = evaluator.max(growth);
            batch.iter().for_each(|_| self.events.delete());
        }
        let dispatch = self.dispatch_service();
        let mut dispatcher = None;
        let created = Mutex::new(Vec::new());
        loop {
            let batch = self.tickets.receive(10);
            if batch.is_empty() {
                break;
            }
            let bodies: Vec<String> = batch.iter().map(|m| m.body.clone()).collect();
            let work = dispatch_batch(&dispatch, None, &self.alerts, &bodies, &created, &retries, visibility);
            let (_, growth) = super::memory::peak_growth(work).await;
            dispatcher = dispatcher.max(growth);
            batch.iter().for_each(|_| self.tickets.delete());
        }
        Ok([poller, evaluator, dispatcher])
    }

    /// The tenants, in registration order.
    #[must_use]
    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    /// Requests per tenant the simulator counted since the last report (a probe's own use).
    pub fn load_report(&self) -> LoadReport {
        self.sim.take_load_report()
    }
}

/// One poll-jobs batch: its jobs at once, as `handle_jobs` runs them.
async fn poll_batch(
    service: &PollService,
    bodies: &[String],
    report: &Mutex<PollReport>,
    retries: &AtomicUsize,
    visibility: Duration,
) -> Vec<Verdict> {
    let results = futures::future::join_all(bodies.iter().map(|body| service.handle_job(body))).await;
    results
        .into_iter()
        .map(|result| match result {
            Ok(done) => {
                report.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(&done);
                Verdict::Done
            }
            Err(error) if error.class() == ErrorClass::Transient => {
                retries.fetch_add(1, Ordering::SeqCst);
                Verdict::Retry(error.retry_after().unwrap_or(visibility).max(Duration::from_secs(1)))
            }
            Err(_) => Verdict::Dead,
        })
        .collect()
}

/// One tickets batch, four messages at once, each within its MSP's share; a created ticket is
/// timed for its tenant.
async fn dispatch_batch(
    service: &DispatchService,
    share: Option<&MspShare>,
    alerts: &MemoryAlertStore,
    bodies: &[String],
    created: &Mutex<Vec<(TenantId, Instant)>>,
    retries: &AtomicUsize,
    visibility: Duration,
) -> Vec<Verdict> {
    // The futures collected first: a closure inside the stream would fail the `Send` check.
    let handling: Vec<_> = bodies.iter().map(|body| service.handle_within_share(share, body)).collect();
    let outcomes: Vec<_> = futures::stream::iter(handling).buffered(4).collect().await;
    let mut verdicts = Vec::with_capacity(bodies.len());
    for (body, outcome) in bodies.iter().zip(outcomes) {
        verdicts.push(match outcome {
            Ok(DispatchOutcome::TicketCreated(_)) => {
                let at = Instant::now();
                if let Ok(message) = serde_json::from_str::<AlertChangedMessage>(body)
                    && let Ok(Some(alert)) = alerts.get_alert(&message.msp_id, &message.alert_id).await
                {
                    created.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((alert.tenant_id, at));
                }
                Verdict::Done
            }
            Ok(_) => Verdict::Done,
            Err(error) if error.class() == ErrorClass::Transient => {
                retries.fetch_add(1, Ordering::SeqCst);
                Verdict::Retry(error.retry_after().unwrap_or(visibility).max(Duration::from_secs(1)))
            }
            Err(_) => Verdict::Dead,
        });
    }
    verdicts
}

/// The value at quantile `q` of sorted `values` (nearest rank).
#[must_use]
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// Streams a tenant has: the five content types and Graph security alerts.
#[must_use]
pub fn streams_per_tenant() -> usize {
    AuditStream::all().len()
}
