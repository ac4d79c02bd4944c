//! console-bench: how fast the web console renders its first page with real volumes.
//!
//! A benchmark, not a test. It starts the local stack (moto, the simulators, every handler; no
//! schedule), creates an MSP, registers `--tenants` tenants through the config API, stores
//! `--alerts` alerts of ONE of them straight into the alerts table (spread over 30 days, every
//! severity and category: seeding that many through the poller would take hours), and then runs
//! `tests/console/bench.py`, which opens the console in headless Chromium and reads, with the
//! Performance API, how long after navigation the first page of the alert queue (filtered to
//! that tenant) and of the tenants page is on screen.
//!
//! ```text
//! cargo run --release -p vigil-local --bin console-bench -- --tenants 2000 --alerts 10000
//! ```
//!
//! Flags: `--tenants N` (2000), `--alerts A` (10000), `--runs R` page loads per figure (5).
//! `VIGIL_MOTO_QUERY=stock` runs moto with its own Query (see `infra/scripts/moto_query.py`).
//! Needs `make tools` (moto, Playwright, chromium).

use chrono::{Duration, Utc};
use futures::StreamExt;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;
use vigil::alert::{AlertHits, Category, Severity};
use vigil::aws::dynamodb::DynamoAlertStore;
use vigil::ids::{AlertId, MspId, PolicyId, RecordId, TenantId};
use vigil::ports::AlertStore;
use vigil_local::{LocalOptions, LocalStack};

type BenchError = Box<dyn std::error::Error + Send + Sync>;

const MSP: &str = "bench-msp";
/// Requests or writes in flight while seeding.
const SEED_CONCURRENCY: usize = 8;

struct Args {
    tenants: usize,
    alerts: usize,
    runs: usize,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args { tenants: 2000, alerts: 10_000, runs: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: usize = value.parse().map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--tenants" => parsed.tenants = n.max(1),
            "--alerts" => parsed.alerts = n,
            "--runs" => parsed.runs = n.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(parsed)
}

fn tenant_id(i: usize) -> String {
    format!("7e57e000-0000-4000-8000-{i:012}")
}

async fn register_tenants(stack: &LocalStack, token: &str, count: usize) -> Result<(), BenchError> {
    let http = reqwest::Client::new();
    let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..count)
        .map(|i| {
            let http = http.clone();
            let url = format!("{}/v1/tenants", stack.api_url);
            async move {
                let body =
                    json!({"tenant_id": tenant_id(i), "name": format!("Customer {i:04} Ltd"), "domains": [format!("customer{i}.example")]});
                let response = http.post(url).bearer_auth(token).json(&body).send().await?;
                if response.status().as_u16() != 201 {
                    return Err(format!("register tenant {i}: {}", response.status()).into());
                }
                Ok(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn store_alerts(stack: &LocalStack, count: usize) -> Result<(), BenchError> {
    let store = DynamoAlertStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.provisioned.table_names["AlertsTable"].clone());
    let msp = MspId::parse(MSP)?;
    let tenant = TenantId::parse(&tenant_id(0))?;
    let severities = [Severity::High, Severity::Medium, Severity::Low, Severity::Informational];
    let categories = [Category::ThreatManagement, Category::Permissions, Category::DataLossPrevention, Category::MailFlow];
    let now = Utc::now();
    let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..count)
        .map(|i| {
            let store = &store;
            let (msp, tenant) = (&msp, &tenant);
            async move {
                // Spread over 30 days, newest first.
                let at = now - Duration::seconds(i64::try_from(i).unwrap_or(0) * 30 * 86_400 / i64::try_from(count.max(1)).unwrap_or(1));
                let mut alert = vigil::contract::sample_alert_for(msp, tenant, at);
                alert.id = AlertId::derive(&[MSP, "bench", &i.to_string()]);
                alert.tenant_name = "Customer 0000 Ltd".into();
                alert.severity = severities[i % severities.len()];
                alert.category = categories[(i / 4) % categories.len()];
                alert.policy_id = PolicyId::parse("builtin.forwarding-rule")?;
                alert.title = format!("Bench alert {i}: mail forwarding set up by user{}@customer0.example", i % 97);
                alert.group_key = format!("user{}@customer0.example", i % 97);
                let hits = AlertHits::of_records(alert, vec![(RecordId::parse(&format!("bench-{i}"))?, at)]);
                store.record_hits(&hits, at).await?;
                Ok(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn run(args: &Args) -> Result<bool, BenchError> {
    let stack = LocalStack::start(LocalOptions::for_tests()).await?;
    let token = stack.create_msp(MSP, "Bench MSP").await?;
    let token = token.expose().to_owned();
    let started = Instant::now();
    register_tenants(&stack, &token, args.tenants).await?;
    println!("console-bench: {} tenants registered in {:.1} s", args.tenants, started.elapsed().as_secs_f64());
    let started = Instant::now();
    store_alerts(&stack, args.alerts).await?;
    println!("console-bench: {} alerts of tenant {} stored in {:.1} s", args.alerts, tenant_id(0), started.elapsed().as_secs_f64());

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".tools/bin/python");
    let script = root.join("tests/console/bench.py");
    let base = stack.api_url.clone();
    let runs = args.runs.to_string();
    let tenant = tenant_id(0);
    let tables = &stack.provisioned.table_names;
    let emulator = [
        "--aws-endpoint".to_owned(),
        stack.aws_endpoint.clone(),
        "--alerts-table".to_owned(),
        tables["AlertsTable"].clone(),
        "--config-table".to_owned(),
        tables["ConfigTable"].clone(),
        "--msp".to_owned(),
        MSP.to_owned(),
    ];
    let status = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(["--base", &base, "--token", &token, "--tenant", &tenant, "--runs", &runs])
            .args(emulator)
            .status()
    })
    .await??;
    stack.shutdown().await;
    Ok(status.success())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("console-bench: {e}\nusage: console-bench [--tenants N] [--alerts A] [--runs R]");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("console-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
