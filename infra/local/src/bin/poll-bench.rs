//! poll-bench: how fast one audit-poller instance polls, with simulated Microsoft latency.
//!
//! A benchmark, not a test: it measures the poller itself — the real `audit_poller::Poller`
//! (tick fan-out, then poll jobs taken from the poll-jobs queue in batches of 5, the template's
//! `BatchSize`, one batch at a time as one Lambda instance would) — against moto (DynamoDB, SQS,
//! Secrets Manager) and the Microsoft 365 simulator answering every token, Management Activity
//! API and Graph request after `--latency-ms`. The evaluator and the dispatcher do not run.
//!
//! It creates `--tenants` tenants (registered and given Microsoft credentials directly through
//! the stores), gives each of the five content types `--blobs` blobs of `--records`
//! Exchange-admin-shaped records, and runs two polls:
//!
//! * **cold**: the first poll — subscriptions are started, tokens and secrets fetched;
//! * **warm**: the same tenants with new blobs — tokens and secrets cached.
//!
//! For each it reports wall time (tick plus draining the poll-jobs queue), streams (jobs run)
//! per minute and records enqueued per second, with the machine noted, and checks that every
//! record reached the events queue exactly once (exit code 1 if not).
//!
//! Run (release recommended; a debug build works too, only slower):
//!
//! ```text
//! cargo run --release -p vigil-local --bin poll-bench -- --tenants 50 --latency-ms 100
//! cargo run -p vigil-local --bin poll-bench -- --tenants 5 --blobs 1 --records 10
//! ```
//!
//! Flags: `--tenants N` (50), `--blobs B` per tenant and content type (2), `--records R` per
//! blob (50), `--latency-ms L` (100). moto is started from `.tools/bin/moto_server` (`make
//! tools`) unless `AWS_ENDPOINT_URL` names a running one. Poller logs: `RUST_LOG=info`.

use audit_poller::{Config, Poller};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use vigil::aws::dynamodb::DynamoConfigStore;
use vigil::aws::secrets::SecretsManagerStore;
use vigil::ids::{MspId, TenantId};
use vigil::messages::AuditEventsMessage;
use vigil::ports::{ConfigStore, SecretName, SecretStore};
use vigil::secret::SecretString;
use vigil::services::poll::PollReport;
use vigil::tenant::{Msp, Tenant};
use vigil_local::moto::{MotoServer, wait_ready};
use vigil_local::provision::{ProvisionOptions, Provisioned, provision};
use vigil_local::template::StackModel;
use vigil_simulators::m365::{CONTENT_TYPES, M365Sim, M365SimHandle};

type BenchError = Box<dyn std::error::Error + Send + Sync>;

const PUBLISHER_IDENTIFIER: &str = "9a1c8f7e-0000-4000-8000-00000000b3c4";
const CLIENT_ID: &str = "11111111-2222-4333-8444-555555555555";
const CLIENT_SECRET: &str = "bench-app-secret";
/// Jobs per `handle_jobs` call: the template's `BatchSize` of the poll-jobs trigger.
const BATCH_SIZE: usize = 5;
/// A run that has not drained by then is reported as failed.
const RUN_DEADLINE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Copy)]
struct Args {
    tenants: usize,
    blobs: usize,
    records: usize,
    latency_ms: u64,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = Self { tenants: 50, blobs: 2, records: 50, latency_ms: 100 };
        let mut iter = args.iter();
        while let Some(flag) = iter.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
            let as_count = |v: &str| number(v).and_then(|n| usize::try_from(n).map_err(|e| e.to_string()));
            match flag.as_str() {
                "--tenants" => parsed.tenants = as_count(value)?,
                "--blobs" => parsed.blobs = as_count(value)?,
                "--records" => parsed.records = as_count(value)?,
                "--latency-ms" => parsed.latency_ms = number(value)?,
                other => return Err(format!("unknown flag {other}")),
            }
        }
        if parsed.tenants == 0 || parsed.blobs == 0 || parsed.records == 0 {
            return Err("--tenants, --blobs and --records must be at least 1".into());
        }
        Ok(parsed)
    }

    /// The command that reproduces this run.
    fn command(&self) -> String {
        let release = if cfg!(debug_assertions) { "" } else { " --release" };
        format!(
            "cargo run{release} -p vigil-local --bin poll-bench -- --tenants {} --blobs {} --records {} --latency-ms {}",
            self.tenants, self.blobs, self.records, self.latency_ms
        )
    }
}

/// What one measured poll did.
struct RunResult {
    label: &'static str,
    /// Jobs the tick enqueued.
    jobs_enqueued: usize,
    /// `handle_jobs` outcomes: successes plus failures (failures are retried at once).
    jobs_run: usize,
    job_failures: usize,
    tick: Duration,
    wall: Duration,
    report: PollReport,
    microsoft_calls: usize,
    check: Check,
}

/// Exactly-once check of the records that reached the events queue.
#[derive(Default)]
struct Check {
    expected: usize,
    seen: usize,
    duplicates: usize,
    missing: usize,
    unexpected: usize,
    dead_letters: u64,
}

impl Check {
    fn passed(&self) -> bool {
        self.seen == self.expected && self.duplicates == 0 && self.missing == 0 && self.unexpected == 0 && self.dead_letters == 0
    }
}

struct Bench {
    args: Args,
    sqs: aws_sdk_sqs::Client,
    provisioned: Provisioned,
    poller: Poller,
    sim: M365SimHandle,
    tenants: Vec<TenantId>,
}

fn queue_url<'a>(provisioned: &'a Provisioned, logical_id: &str) -> Result<&'a String, BenchError> {
    provisioned.queue_urls.get(logical_id).ok_or_else(|| format!("the template has no queue {logical_id}").into())
}

fn table_name<'a>(provisioned: &'a Provisioned, logical_id: &str) -> Result<&'a String, BenchError> {
    provisioned.table_names.get(logical_id).ok_or_else(|| format!("the template has no table {logical_id}").into())
}

fn sqs_error(error: impl std::error::Error + 'static) -> BenchError {
    aws_sdk_sqs::error::DisplayErrorContext(error).to_string().into()
}

/// A GUID-shaped record id, unique per (run, tenant, content type, blob, record).
fn record_id(run: usize, tenant: usize, content_type: usize, blob: usize, record: usize) -> String {
    format!("{run:08x}-{tenant:04x}-4{content_type:03x}-8{blob:03x}-{record:012x}")
}

/// An Exchange admin audit record (`RecordType` 1, `ExchangeAdmin`) as the Management Activity
/// API delivers it.
fn exchange_admin_record(tenant_id: &str, id: &str, n: usize, at: &str) -> Value {
    json!({
        "CreationTime": at, "Id": id, "Operation": "Set-Mailbox", "OrganizationId": tenant_id, "RecordType": 1,
        "ResultStatus": "True", "UserKey": "10032001A2B3C4D5", "UserType": 2, "Version": 1, "Workload": "Exchange",
        "ClientIP": "203.0.113.7:51544", "UserId": format!("admin{}@contoso.com", n % 7),
        "ObjectId": format!("contoso.onmicrosoft.com\\user{n}"), "OrganizationName": "contoso.onmicrosoft.com",
        "OriginatingServer": "DM6PR11MB4321 (15.20.7452.020)", "ExternalAccess": false,
        "Parameters": [{"Name": "Identity", "Value": format!("user{n}@contoso.com")}, {"Name": "HiddenFromAddressListsEnabled", "Value": "True"}]
    })
}

impl Bench {
    async fn setup(args: Args, sdk: &aws_config::SdkConfig) -> Result<Self, BenchError> {
        let model = StackModel::load(&vigil_local::repo_root().join("template.yaml"))?;
        let suffix = vigil::contract::unique_suffix();
        let options = ProvisionOptions {
            prefix: format!("vigil-bench-{suffix}-"),
            parameters: BTreeMap::from([("PublisherIdentifier".to_owned(), PUBLISHER_IDENTIFIER.to_owned())]),
            visibility_timeout_override: Some(600),
        };
        let provisioned = provision(&model, sdk, &options).await?;

        let sim = M365Sim::start().await?;
        sim.set_latency(Duration::from_millis(args.latency_ms));

        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let config_table = table_name(&provisioned, "ConfigTable")?.clone();
        let secret_prefix = format!("vigil/bench-{suffix}/");
        let config_store = DynamoConfigStore::new(dynamo, config_table.clone());
        let secrets = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), secret_prefix.clone());

        let msp_id = MspId::parse(&format!("bench-{suffix}"))?;
        let msp: Msp = serde_json::from_value(json!({"id": msp_id, "name": "Benchmark MSP", "created_at": Utc::now()}))?;
        config_store.create_msp(&msp).await?;
        let tenants: Vec<TenantId> =
            (0..args.tenants).map(|i| TenantId::parse(&format!("{}-0000-4000-8000-{i:012x}", &suffix[..8]))).collect::<Result<_, _>>()?;
        let credentials = SecretString::new(json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).to_string());
        let registrations: Vec<_> = tenants
            .iter()
            .enumerate()
            .map(|(i, tenant_id)| {
                let (config_store, secrets, credentials, sim) = (&config_store, &secrets, &credentials, &sim);
                let msp_id = msp_id.clone();
                async move {
                    sim.add_tenant(tenant_id.as_str(), CLIENT_ID, CLIENT_SECRET);
                    // Through serde, so fields added to `Tenant` later take their defaults.
                    let tenant: Tenant = serde_json::from_value(json!({
                        "msp_id": msp_id, "tenant_id": tenant_id, "name": format!("Bench tenant {i}"),
                        "domains": [format!("tenant{i}.example")], "m365_credentials_set": true, "created_at": Utc::now()
                    }))?;
                    config_store.create_tenant(&tenant).await?;
                    secrets.put_secret(&SecretName::m365_app(&msp_id, tenant_id), credentials).await?;
                    Ok::<(), BenchError>(())
                }
            })
            .collect();
        let results: Vec<Result<(), BenchError>> = futures::stream::iter(registrations).buffer_unordered(8).collect().await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;

        // The environment template.yaml gives the function, resolved as the local stack resolves
        // it, with Microsoft pointed at the simulator; no `WEBHOOK_BASE_URL`: this measures polling.
        let overrides = BTreeMap::from([
            ("SECRET_PREFIX".to_owned(), secret_prefix),
            ("WEBHOOK_BASE_URL".to_owned(), String::new()),
            ("M365_LOGIN_BASE".to_owned(), sim.login_base()),
            ("M365_MANAGEMENT_BASE".to_owned(), sim.management_base()),
            ("M365_GRAPH_BASE".to_owned(), sim.graph_base()),
        ]);
        let mut environment = provisioned.environment(&model, "AuditPollerFunction", &overrides)?;
        environment.remove("WEBHOOK_BASE_URL");
        let config = Config::from_lookup(&|name| environment.get(name).cloned())?;
        let poller = audit_poller::build(&config, sdk);
        Ok(Self { args, sqs: aws_sdk_sqs::Client::new(sdk), provisioned, poller, sim, tenants })
    }

    /// Gives every (tenant, content type) `blobs` new blobs; returns the record ids.
    fn add_blobs(&self, run: usize) -> HashSet<String> {
        let mut ids = HashSet::new();
        let at = Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        for (t, tenant_id) in self.tenants.iter().enumerate() {
            for (c, content_type) in CONTENT_TYPES.iter().enumerate() {
                for b in 0..self.args.blobs {
                    let records = (0..self.args.records)
                        .map(|r| {
                            let id = record_id(run, t, c, b, r);
                            let record = exchange_admin_record(tenant_id.as_str(), &id, r, &at);
                            ids.insert(id);
                            record
                        })
                        .collect();
                    self.sim.add_records(tenant_id.as_str(), content_type, records);
                }
            }
        }
        ids
    }

    async fn depth(&self, url: &str) -> Result<u64, BenchError> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(sqs_error)?;
        let attributes = output.attributes().cloned().unwrap_or_default();
        let count = |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages) + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    async fn receive(&self, url: &str) -> Result<Vec<aws_sdk_sqs::types::Message>, BenchError> {
        let output = self.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.map_err(sqs_error)?;
        Ok(output.messages().to_vec())
    }

    async fn delete(&self, url: &str, receipt_handles: &[String]) -> Result<(), BenchError> {
        if receipt_handles.is_empty() {
            return Ok(());
        }
        let entries = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, handle)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build())
            .collect::<Result<Vec<_>, _>>()?;
        self.sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await.map_err(sqs_error)?;
        Ok(())
    }

    /// One measured poll: the tick, then the poll-jobs queue drained by this one instance.
    async fn run(&self, label: &'static str, run: usize) -> Result<RunResult, BenchError> {
        let expected = self.add_blobs(run);
        // Listing windows have one-second resolution: let the blobs' second pass.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let jobs_url = queue_url(&self.provisioned, "PollJobsQueue")?;
        let calls_before = self.sim.request_log().len();
        let mut report = PollReport::default();
        let (mut jobs_run, mut job_failures) = (0, 0);

        let started = Instant::now();
        let jobs_enqueued = audit_poller::handle_tick(&self.poller).await?;
        let tick = started.elapsed();
        loop {
            let messages = self.receive(jobs_url).await?;
            if messages.is_empty() {
                if self.depth(jobs_url).await? == 0 {
                    break;
                }
                if started.elapsed() > RUN_DEADLINE {
                    return Err(format!("{label}: the poll-jobs queue did not drain within {RUN_DEADLINE:?}").into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            for batch in messages.chunks(BATCH_SIZE) {
                let event = vigil_local::esm::sqs_event(batch, "");
                let (response, done) = audit_poller::handle_jobs(&self.poller, event).await;
                report.add(&done);
                let failed: HashSet<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
                jobs_run += batch.len();
                job_failures += failed.len();
                let (retry, succeeded): (Vec<_>, Vec<_>) = batch.iter().partition(|m| failed.contains(m.message_id().unwrap_or_default()));
                let handles: Vec<String> = succeeded.iter().filter_map(|m| m.receipt_handle().map(str::to_owned)).collect();
                self.delete(jobs_url, &handles).await?;
                // A failed job would come back after the visibility timeout; here it is retried at once.
                for message in retry {
                    if let Some(handle) = message.receipt_handle() {
                        self.sqs
                            .change_message_visibility()
                            .queue_url(jobs_url)
                            .receipt_handle(handle)
                            .visibility_timeout(0)
                            .send()
                            .await
                            .map_err(sqs_error)?;
                    }
                }
            }
        }
        let wall = started.elapsed();
        let microsoft_calls = self.sim.request_log().len() - calls_before;
        let check = self.check_events(&expected).await?;
        Ok(RunResult { label, jobs_enqueued, jobs_run, job_failures, tick, wall, report, microsoft_calls, check })
    }

    /// Drains the events queue and checks that each expected record arrived exactly once.
    async fn check_events(&self, expected: &HashSet<String>) -> Result<Check, BenchError> {
        let events_url = queue_url(&self.provisioned, "EventsQueue")?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut check = Check { expected: expected.len(), ..Check::default() };
        loop {
            let messages = self.receive(events_url).await?;
            if messages.is_empty() {
                if self.depth(events_url).await? == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            for message in &messages {
                let body: AuditEventsMessage = serde_json::from_str(message.body().unwrap_or_default())?;
                for record in body.records {
                    check.seen += 1;
                    let id = record.get("Id").and_then(Value::as_str).unwrap_or_default().to_owned();
                    *seen.entry(id).or_default() += 1;
                }
            }
            let handles: Vec<String> = messages.iter().filter_map(|m| m.receipt_handle().map(str::to_owned)).collect();
            self.delete(events_url, &handles).await?;
        }
        check.duplicates = seen.values().map(|n| n - 1).sum();
        check.missing = expected.iter().filter(|id| !seen.contains_key(*id)).count();
        check.unexpected = seen.keys().filter(|id| !expected.contains(*id)).count();
        check.dead_letters = self.depth(queue_url(&self.provisioned, "EventsDeadLetterQueue")?).await?
            + self.depth(queue_url(&self.provisioned, "PollJobsDeadLetterQueue")?).await?;
        Ok(check)
    }
}

#[allow(clippy::cast_precision_loss)]
fn per(count: usize, duration: Duration, unit: Duration) -> f64 {
    count as f64 * unit.as_secs_f64() / duration.as_secs_f64().max(f64::EPSILON)
}

fn print_results(args: &Args, endpoint: &str, results: &[RunResult]) {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!();
    println!("Vigil audit-poller benchmark: one poller instance, poll jobs in batches of {BATCH_SIZE} (5 jobs at once per batch)");
    println!("machine: {}", vigil_local::bench_cli::machine());
    println!("build: {profile}; AWS: moto at {endpoint}; Microsoft: simulator with {} ms latency per request", args.latency_ms);
    println!();
    println!(
        "{:<5} {:>7} {:>7} {:>6} {:>8} {:>8} {:>10} {:>11} {:>10} {:>9} {:>8}",
        "run", "tenants", "streams", "blobs", "records", "latency", "wall time", "streams/min", "records/s", "MS calls", "check"
    );
    for r in results {
        println!(
            "{:<5} {:>7} {:>7} {:>6} {:>8} {:>6}ms {:>9.2}s {:>11.1} {:>10.1} {:>9} {:>8}",
            r.label,
            args.tenants,
            r.jobs_run,
            r.report.blobs_fetched,
            r.report.records_enqueued,
            args.latency_ms,
            r.wall.as_secs_f64(),
            per(r.jobs_run, r.wall, Duration::from_secs(60)),
            per(r.report.records_enqueued, r.wall, Duration::from_secs(1)),
            r.microsoft_calls,
            if r.check.passed() { "ok" } else { "FAILED" }
        );
    }
    println!();
    for r in results {
        let c = &r.check;
        println!(
            "{}: tick {:.2}s enqueued {} jobs; {} job runs ({} failed and retried), {} streams polled, {} failed; {} windows listed; \
             {} records skipped, {} quarantined. Events queue: {} records for {} expected, {} duplicates, {} missing, {} unexpected; \
             {} messages in dead-letter queues.",
            r.label,
            r.tick.as_secs_f64(),
            r.jobs_enqueued,
            r.jobs_run,
            r.job_failures,
            r.report.streams_polled,
            r.report.streams_failed,
            r.report.windows_listed,
            r.report.records_skipped,
            r.report.quarantined,
            c.seen,
            c.expected,
            c.duplicates,
            c.missing,
            c.unexpected,
            c.dead_letters
        );
    }
    println!();
    println!("streams = poll jobs run (tenant x stream); records/s = records enqueued / wall time; wall time = tick + draining the");
    println!("poll-jobs queue. moto (a Python emulator) stands in for DynamoDB and SQS: its per-call cost is part of the figures.");
    println!();
    println!("command: {}", args.command());
}

async fn bench(args: Args) -> Result<bool, BenchError> {
    let (moto, endpoint) = match std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()) {
        Some(endpoint) => {
            wait_ready(&endpoint).await?;
            (None, endpoint)
        }
        None => {
            let server = MotoServer::start().await?;
            let endpoint = server.endpoint().to_owned();
            (Some(server), endpoint)
        }
    };
    let sdk = vigil::aws::sdk_config_for_emulator(&endpoint).await;
    eprintln!(
        "poll-bench: setting up {} tenants x {} content types x {} blobs x {} records, latency {} ms…",
        args.tenants,
        CONTENT_TYPES.len(),
        args.blobs,
        args.records,
        args.latency_ms
    );
    let bench = Bench::setup(args, &sdk).await?;
    let mut results = Vec::new();
    for (run, label) in ["cold", "warm"].into_iter().enumerate() {
        eprintln!("poll-bench: {label} run…");
        let result = bench.run(label, run).await?;
        eprintln!("poll-bench: {label} run took {:.2}s", result.wall.as_secs_f64());
        results.push(result);
    }
    print_results(&args, &endpoint, &results);
    let passed = results
        .iter()
        .all(|r| r.check.passed() && r.report.records_enqueued == r.check.expected && r.report.streams_failed == 0 && r.job_failures == 0);
    bench.sim.shutdown().await;
    if let Some(moto) = moto {
        moto.stop().await;
    }
    Ok(passed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let verdicts = vigil_local::bench_cli::Verdicts {
        passed: "every record was enqueued exactly once.",
        failed: "records were lost, duplicated or dead-lettered, or jobs failed (see above).",
    };
    vigil_local::bench_cli::run(
        "poll-bench",
        "poll-bench [--tenants 50] [--blobs 2] [--records 50] [--latency-ms 100]",
        "warn",
        Args::parse,
        bench,
        verdicts,
    )
    .await
}
