//! delivery-storm: how a backlog of alerts drains through one Autotask destination's
//! `requests_per_hour` share, and whether Vigil keeps to the share while it does.
//!
//! A benchmark, not a test: in process, the real `DispatchService` on in-memory stores, the real
//! `PsaProvider` and Autotask connector against the Autotask simulator, one destination with
//! `requests_per_hour = --share`, the tenant linked to the simulator's company 174, and
//! `--alerts` distinct alerts at once. The simulator's own threshold stays at Autotask's default
//! (10,000 an hour), so only Vigil's share can hold requests back. The driver
//! (`vigil::contract::delivery_storm`) handles messages as the tickets queue would deliver them:
//! each alert's fan-out, then its delivery, and a throttled delivery again after its
//! `retry_after`. Both clocks — Vigil's (`ManualClock`, which the request budget reads) and the
//! simulator's (frozen, moved with `advance_clock`) — advance together: `--pace-ms` per handled
//! message, and to the next due message when none is due. Nothing waits on the wall clock.
//!
//! It reports simulated hours to drain, tickets per simulated hour (and per hour, the drain
//! curve), requests per ticket, the most requests in any rolling hour of the simulator's request
//! log against the share, the most receives one message needed against the tickets queue's
//! `maxReceiveCount`, and wall time; it exits 1 when a rolling hour exceeded the share, an alert
//! has no ticket or more than one, or a message needed more receives than the queue allows
//! (it would have been dead-lettered).
//!
//! Run (release recommended; a debug build works too, only slower):
//!
//! ```text
//! cargo run --release -p vigil-local --bin delivery-storm -- --alerts 2000 --share 1000
//! ```
//!
//! Flags: `--alerts N` (2000), `--share S` requests an hour (1000), `--pace-ms P` simulated
//! milliseconds one handled message takes (0: every attempt at the same instant),
//! `--max-receives R` after which a message counts as dead-lettered (20, the tickets queue's;
//! the run always ends after at most that many attempts per message). Logs: `RUST_LOG=info`.

use std::process::ExitCode;
use std::time::{Duration, Instant};
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::contract::delivery_storm::{Storm, StormCheck, StormSetup, TICKETS_MAX_RECEIVES};
use vigil::destination::{DestinationCredentials, DestinationSettings};
use vigil::secret::SecretString;
use vigil_simulators::autotask::directory::CONTOSO_COMPANY_ID;
use vigil_simulators::autotask::{AutotaskCredentials, AutotaskSim, DEFAULT_THRESHOLD};

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The simulator's active "Security Operations" queue.
const SECURITY_OPERATIONS_QUEUE: &str = "29683481";

#[derive(Debug, Clone, Copy)]
struct Args {
    alerts: usize,
    share: u32,
    pace_ms: u64,
    max_receives: u32,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = Self { alerts: 2000, share: 1000, pace_ms: 0, max_receives: TICKETS_MAX_RECEIVES };
        let mut iter = args.iter();
        while let Some(flag) = iter.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
            match flag.as_str() {
                "--alerts" => parsed.alerts = usize::try_from(number(value)?).map_err(|e| e.to_string())?,
                "--share" => parsed.share = u32::try_from(number(value)?).map_err(|e| e.to_string())?,
                "--pace-ms" => parsed.pace_ms = number(value)?,
                "--max-receives" => parsed.max_receives = u32::try_from(number(value)?).map_err(|e| e.to_string())?,
                other => return Err(format!("unknown flag {other}")),
            }
        }
        if parsed.alerts == 0 || parsed.share == 0 || parsed.max_receives == 0 {
            return Err("--alerts, --share and --max-receives must be at least 1".into());
        }
        Ok(parsed)
    }

    /// The command that reproduces this run.
    fn command(&self) -> String {
        let release = if cfg!(debug_assertions) { "" } else { " --release" };
        format!(
            "cargo run{release} -p vigil-local --bin delivery-storm -- --alerts {} --share {} --pace-ms {} --max-receives {}",
            self.alerts, self.share, self.pace_ms, self.max_receives
        )
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: usize, b: f64) -> f64 {
    if b > 0.0 { a as f64 / b } else { 0.0 }
}

async fn bench(args: Args) -> Result<bool, BenchError> {
    let sim = AutotaskSim::start(AutotaskCredentials::sample()).await?;
    sim.set_threshold(DEFAULT_THRESHOLD);
    sim.set_clock_scale(0.0);
    let c = sim.credentials();
    let storm = Storm::new(StormSetup {
        alerts: args.alerts,
        share: args.share,
        settings: DestinationSettings::autotask(Some(sim.zone_url())),
        credentials: DestinationCredentials::Autotask {
            username: c.username,
            secret: SecretString::new(c.secret),
            integration_code: SecretString::new(c.integration_code),
        },
        company: CONTOSO_COMPANY_ID.to_string(),
        place: Some(SECURITY_OPERATIONS_QUEUE.into()),
        policy: DestinationPolicy::LOOPBACK_ALLOWED,
        start: sim.now(),
        pace: Duration::from_millis(args.pace_ms),
        max_receives: args.max_receives,
    })
    .await?;

    let started = Instant::now();
    let report = storm.drain(|by| sim.advance_clock(by)).await;
    let wall = started.elapsed();

    let requests: Vec<_> = sim.requests().iter().map(|r| r.timestamp).collect();
    let references: Vec<String> = sim.tickets().iter().map(|t| t.item["externalID"].as_str().unwrap_or_default().to_owned()).collect();
    let check = StormCheck::of(&storm, &report, &requests, &references);

    #[allow(clippy::cast_precision_loss)]
    let hours = report.simulated.num_milliseconds() as f64 / 3_600_000.0;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!("delivery-storm: {} ({} build, {cores} cores)", args.command(), if cfg!(debug_assertions) { "debug" } else { "release" });
    println!("  alerts                      {}", args.alerts);
    println!("  share                       {} requests / hour", args.share);
    println!("  simulated hours to drain    {hours:.2}");
    println!("  tickets per simulated hour  {:.0}", ratio(report.delivered_after.len(), hours));
    println!("  tickets by simulated hour   {:?}", report.tickets_by_hour());
    println!(
        "  requests                    {} ({:.2} per ticket)",
        requests.len(),
        ratio(requests.len(), report.delivered_after.len() as f64)
    );
    let mut by_operation = std::collections::BTreeMap::<String, usize>::new();
    for request in sim.requests() {
        *by_operation.entry(request.operation).or_default() += 1;
    }
    println!("  requests by operation       {by_operation:?}");
    println!("  max requests in a rolling hour  {} (share {})", check.max_in_hour, args.share);
    println!("  messages handled            {} ({} throttled)", report.attempts, report.throttled);
    println!("  most receives of a message  {} (tickets queue maxReceiveCount {TICKETS_MAX_RECEIVES})", report.max_receives);
    println!("  tickets                     {}", check.tickets);
    println!("  wall time                   {:.1} s", wall.as_secs_f64());
    for problem in &check.problems {
        println!("  PROBLEM: {problem}");
    }
    sim.shutdown().await;
    Ok(check.passed())
}

#[tokio::main]
async fn main() -> ExitCode {
    let verdicts = vigil_local::bench_cli::Verdicts {
        passed: "no rolling hour over the share; every alert has exactly one ticket.",
        failed: "see the problems above.",
    };
    vigil_local::bench_cli::run(
        "delivery-storm",
        "delivery-storm [--alerts 2000] [--share 1000] [--pace-ms 0] [--max-receives 20]",
        "error",
        Args::parse,
        bench,
        verdicts,
    )
    .await
}
