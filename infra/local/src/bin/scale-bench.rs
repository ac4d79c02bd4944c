//! scale-bench: one deployment polling 2,000 tenants × 6 streams in a tick, and two MSPs on one
//! dispatcher with one storming.
//!
//! A benchmark, not a test (see `vigil_local::scale` for the parts):
//!
//! 1. **Ticks.** The real poller, evaluator and dispatcher on the in-memory adapters behind
//!    counting decorators, as many instances as their event sources allow, against the
//!    Microsoft 365 simulator over HTTP (`--latency-ms` per request; one tenant in 100 throttled
//!    past 4 requests a minute with `429` + `Retry-After`; one tenant `--slow-ms` late on every
//!    answer; one stream in 10 with a blob; one tenant in 20 with a Graph security alert that
//!    must become a ticket). A cold tick (tokens, subscriptions) then a warm one. Reported:
//!    wall time (real time: the tick's work must end within 5 minutes), streams/s, content
//!    available → ticket created (p50/p95/p99), peak requests in flight towards Microsoft (the
//!    simulator's gauge) and per instance budget, requests to Microsoft and DynamoDB units, SQS
//!    messages and requests, Secrets Manager reads per tenant per tick and per day.
//! 2. **Memory.** Each function's resident-set growth during one invocation.
//! 3. **Storm.** Two MSPs on the dispatcher's 5 × 4 delivery slots (simulated clock): 3,000
//!    alerts of one at once, 30 of the other one every 10 s; the quiet MSP's ticket latency with
//!    each MSP's share (`MSP_DELIVERIES_PER_MINUTE`, 120) and without.
//!
//! `--out FILE` writes the counters as JSON for `infra/scripts/cost-model.py`.
//!
//! ```text
//! cargo run --release -p vigil-local --bin scale-bench -- --tenants 2000 --out target/scale.json
//! cargo run -p vigil-local --bin scale-bench -- --tenants 50
//! ```

use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;
use vigil_local::scale::counting::MeterReading;
use vigil_local::scale::pipeline::{Scale, ScaleArgs, TickResult, quantile, streams_per_tenant};
use vigil_local::scale::storm::{self, StormArgs, StormResult};

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Ticks in a day at the 5-minute tick the figures are for.
const TICKS_PER_DAY: f64 = 288.0;

#[derive(Debug, Clone)]
struct Args {
    scale: ScaleArgs,
    out: Option<String>,
    storm: usize,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args { scale: ScaleArgs::default(), out: None, storm: 3_000 };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let count = || value.parse::<usize>().map_err(|_| format!("{flag}: not a number: {value}"));
        let s = &mut parsed.scale;
        match flag.as_str() {
            "--tenants" => s.tenants = count()?,
            "--msps" => s.msps = count()?,
            "--latency-ms" => s.latency_ms = count()? as u64,
            "--slow-ms" => s.slow_ms = count()? as u64,
            "--instances" => s.instances = count()?,
            "--evaluators" => s.evaluators = count()?,
            "--dispatchers" => s.dispatchers = count()?,
            "--records" => s.records = count()?,
            "--storm" => parsed.storm = count()?,
            "--out" => parsed.out = Some(value.clone()),
            "--secrets" => {
                s.secret_per_tenant = match value.as_str() {
                    "msp-app" => false,
                    "per-tenant" => true,
                    _ => return Err(format!("--secrets: msp-app or per-tenant, not {value}")),
                }
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if parsed.scale.tenants < 10 || parsed.scale.instances == 0 {
        return Err("--tenants must be at least 10 and --instances at least 1".into());
    }
    Ok(parsed)
}

/// Each function's `MemorySize` in template.yaml (its own, else the Globals'), read from the
/// text (the CloudFormation tags keep a YAML parser from reading the template as is).
fn memory_sizes() -> Result<serde_json::Value, BenchError> {
    let text = std::fs::read_to_string(vigil_local::repo_root().join("template.yaml"))?;
    let lines: Vec<&str> = text.lines().collect();
    // The first `MemorySize:` in the block that starts at `header` (indented `indent` spaces).
    let size_in = |header: &str, indent: usize| -> Option<u64> {
        let start = lines.iter().position(|l| l.trim_end() == header)?;
        lines[start + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .find_map(|l| l.trim().strip_prefix("MemorySize:").and_then(|v| v.trim().parse().ok()))
    };
    let global = size_in("Globals:", 0).unwrap_or(128);
    let size = |id: &str| size_in(&format!("  {id}:"), 2).unwrap_or(global);
    Ok(json!({
        "audit-poller": size("AuditPollerFunction"),
        "alert-evaluator": size("AlertEvaluatorFunction"),
        "ticket-dispatcher": size("TicketDispatcherFunction"),
    }))
}

fn print_tick(t: &TickResult, tenants: usize) {
    let q = |p| quantile(&t.latencies, p).map_or_else(|| "-".into(), |v| format!("{v:.1}s"));
    #[allow(clippy::cast_precision_loss)]
    let per_tenant = |n: u64| n as f64 / tenants as f64;
    println!(
        "{:<5} {:>7.1}s {:>5} {:>7} {:>6} {:>8.1} {:>6}/{:<6} {:>6} {:>6} {:>6} {:>6}  {:>5} {:>7.2} {:>6.2} {:>6.2} {:>6.2}",
        t.label,
        t.wall_seconds,
        if t.finished && t.wall_seconds <= 300.0 { "yes" } else { "NO" },
        t.streams_polled,
        t.streams_failed,
        t.streams_polled as f64 / t.wall_seconds.max(f64::EPSILON),
        t.tickets_created,
        t.tickets_expected,
        q(0.5),
        q(0.95),
        q(0.99),
        t.microsoft_peak_in_flight,
        t.microsoft_throttled,
        per_tenant(t.microsoft_requests),
        per_tenant(t.poller.dynamodb_read_units + t.evaluator.dynamodb_read_units + t.dispatcher.dynamodb_read_units),
        per_tenant(t.poller.dynamodb_write_units + t.evaluator.dynamodb_write_units + t.dispatcher.dynamodb_write_units),
        per_tenant(t.poller.sqs_requests + t.evaluator.sqs_requests + t.dispatcher.sqs_requests),
    );
}

fn print_storm(r: &StormResult) {
    let q = |p| quantile(&r.quiet_latencies, p).map_or_else(|| "-".into(), |v| format!("{v:.0}s"));
    println!(
        "share {:<9} quiet MSP: {:>2} tickets, latency p50 {:>6} p95 {:>6} max {:>6}; storming MSP: {} tickets, drained after {:.0}s; {} deferrals",
        r.share.map_or_else(|| "none".into(), |s| format!("{s}/min")),
        r.quiet_tickets,
        q(0.5),
        q(0.95),
        q(1.0),
        r.storm_tickets,
        r.storm_drained_after,
        r.deferrals
    );
}

fn reading_json(r: &MeterReading, tenants: usize) -> serde_json::Value {
    #[allow(clippy::cast_precision_loss)]
    let day = |n: f64| n * TICKS_PER_DAY / tenants as f64;
    #[allow(clippy::cast_precision_loss)]
    let to_f = |n: u64| n as f64;
    json!({
        "per_tick": r,
        "per_tenant_day": {
            "dynamodb_read_units": day(to_f(r.dynamodb_read_units)),
            "dynamodb_write_units": day(to_f(r.dynamodb_write_units)),
            "sqs_requests": day(to_f(r.sqs_requests)),
            "sqs_messages_sent": day(to_f(r.sqs_messages_sent)),
            "secret_gets": day(to_f(r.secret_gets)),
            "invocations": day(to_f(r.invocations)),
            "busy_seconds": day(r.busy_seconds),
        }
    })
}

async fn bench(args: Args) -> Result<bool, BenchError> {
    let s = args.scale;
    // Memory first, in a small deployment: a process that already holds 2,000 tenants reuses
    // freed memory, and an invocation's growth would not show.
    eprintln!("scale-bench: memory probe…");
    let memory = {
        let probe = Scale::setup(ScaleArgs { tenants: 10, msps: 1, ..s }).await?;
        probe.tick("probe", 0).await?;
        probe.probe_memory().await?
    };
    eprintln!("scale-bench: {} tenants of {} MSPs, {} poller instances, latency {} ms…", s.tenants, s.msps, s.instances, s.latency_ms);
    let scale = Scale::setup(s).await?;
    let mut ticks = Vec::new();
    for (run, label) in ["cold", "warm"].into_iter().enumerate() {
        eprintln!("scale-bench: {label} tick…");
        ticks.push(scale.tick(label, run).await?);
    }
    let peak_rss = vigil_local::scale::memory::resident().map(|(_, peak)| peak);
    eprintln!("scale-bench: storm…");
    let storm_args = |share| StormArgs {
        storm: args.storm,
        quiet: 30,
        quiet_after: Duration::from_secs(5),
        quiet_every: Duration::from_secs(10),
        slots: 20,
        pace: Duration::from_millis(500),
        light_pace: Duration::from_millis(30),
        share,
    };
    let storms = [storm::run(storm_args(Some(s.msp_share_per_minute))).await?, storm::run(storm_args(None)).await?];

    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!();
    println!("Vigil scale benchmark ({profile} build): {} tenants x {} streams, {} MSPs", s.tenants, streams_per_tenant(), s.msps);
    println!("machine: {} (shared with other builds)", vigil_local::bench_cli::machine());
    println!(
        "credentials: {}",
        if s.secret_per_tenant { "one app secret per tenant" } else { "one MSP app secret per MSP, every tenant consented to it" }
    );
    println!(
        "Microsoft: simulator over HTTP, {} ms a request, 1 tenant {} ms slower, 1 in {} tenants throttled past 4 requests/min; poller {} instances x 5 jobs, evaluator {} x 10, dispatcher {} x 10 (4 at once)",
        s.latency_ms, s.slow_ms, s.throttled_every, s.instances, s.evaluators, s.dispatchers
    );
    println!();
    println!(
        "tick  wall      <5min streams failed streams/s tickets       p50    p95    p99    MS-peak  429s  MS/ten  RRU/ten WRU/ten SQS/ten"
    );
    for t in &ticks {
        print_tick(t, s.tenants);
    }
    println!("(per tenant per tick; latency = content available at Microsoft -> ticket created, the tick starting 1.1 s after)");
    let warm = &ticks[1];
    println!(
        "warm tick: {} jobs, {} blobs, {} records, {} job retries, {} dead-lettered, busiest tenant {} requests, budget peak {} in flight per instance",
        warm.jobs_enqueued,
        warm.blobs_fetched,
        warm.records_enqueued,
        warm.job_retries,
        warm.dead_lettered,
        warm.busiest_tenant_requests,
        warm.budget_peak_in_flight
    );
    let mb = |b: Option<u64>| b.map_or_else(|| "n/a".into(), |b| format!("{:.1} MB", b as f64 / 1_048_576.0));
    println!(
        "memory (resident growth in one invocation): audit-poller {}, alert-evaluator {}, ticket-dispatcher {}; bench process peak {}",
        mb(memory[0]),
        mb(memory[1]),
        mb(memory[2]),
        mb(peak_rss)
    );
    println!();
    println!(
        "storm: {} alerts of one MSP at once, 30 of another one every 10 s from 5 s; 20 delivery slots, 0.5 s a ticket, 30 ms a fan-out or deferral (simulated clock)",
        args.storm
    );
    for r in &storms {
        print_storm(r);
    }

    if let Some(path) = &args.out {
        #[allow(clippy::cast_precision_loss)]
        let ms_per_tenant_day = warm.microsoft_requests as f64 * TICKS_PER_DAY / s.tenants as f64;
        let document = json!({
            "bench": "scale-bench",
            "profile": profile,
            "machine": vigil_local::bench_cli::machine(),
            "args": s,
            "tenants": s.tenants,
            "streams_per_tenant": streams_per_tenant(),
            "ticks_per_day": TICKS_PER_DAY,
            "memory_mb": memory_sizes()?,
            "ticks": ticks,
            "warm": {
                "microsoft_requests_per_tenant_day": ms_per_tenant_day,
                "audit-poller": reading_json(&warm.poller, s.tenants),
                "alert-evaluator": reading_json(&warm.evaluator, s.tenants),
                "ticket-dispatcher": reading_json(&warm.dispatcher, s.tenants),
            },
            "memory_growth_bytes": {"audit-poller": memory[0], "alert-evaluator": memory[1], "ticket-dispatcher": memory[2]},
            "storms": storms,
        });
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
        eprintln!("scale-bench: counters written to {path}");
    }
    let all_ticketed = ticks.iter().all(|t| t.finished && t.tickets_created == t.tickets_expected && t.dead_lettered == 0);
    let fair = storms[0].quiet_tickets == 30 && storms[1].quiet_tickets == 30;
    Ok(all_ticketed && fair)
}

#[tokio::main]
async fn main() -> ExitCode {
    let verdicts = vigil_local::bench_cli::Verdicts {
        passed: "every tick drained, every expected ticket was created and nothing was dead-lettered.",
        failed: "a tick did not drain, tickets were missing or messages were dead-lettered (see above).",
    };
    vigil_local::bench_cli::run(
        "scale-bench",
        "scale-bench [--tenants 2000] [--msps 10] [--latency-ms 50] [--slow-ms 5000] [--instances 20] [--evaluators 10] [--dispatchers 5] [--records 20] [--storm 3000] [--secrets msp-app|per-tenant] [--out FILE]",
        "warn",
        parse,
        bench,
        verdicts,
    )
    .await
}
