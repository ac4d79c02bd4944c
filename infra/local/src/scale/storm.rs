//! Two MSPs on one dispatcher, one storming: the quiet MSP's ticket latency with and without
//! each MSP's share ([`vigil::services::dispatch::fairness`]).
//!
//! The real [`DispatchService`] on in-memory stores, the in-memory PSA and the
//! [`MemoryRateLimiter`], on a [`ManualClock`] the driver moves (no waiting): the tickets queue is
//! a list of messages with due times, taken oldest first (SQS hands out roughly in order) by
//! `slots` at once (`DispatcherMaximumConcurrency` × 4 messages of a batch at once), a message
//! holding its slot for `pace` of simulated time when it creates a ticket (a PSA's two
//! requests) and `light_pace` when it only fans out or is deferred. The storming MSP
//! raises `storm` alerts at once; the quiet MSP one alert every `quiet_every` from
//! `quiet_after`, `quiet` in all. A fan-out becomes a delivery at once; a deferred delivery comes
//! back after its delay as a new message.

use chrono::{DateTime, TimeDelta, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;
use vigil::alert::AlertHits;
use vigil::clock::{Clock, ManualClock};
use vigil::contract::{sample_alert_for, sample_destination, sample_tenant};
use vigil::ids::{AlertId, DestinationId, MspId, RecordId, TenantId};
use vigil::memory::{MemoryAlertStore, MemoryConfigStore, MemoryPolicyStore, MemoryQueue, MemoryRateLimiter, MemoryTicketSystemProvider};
use vigil::messages::AlertChangedMessage;
use vigil::ports::{AlertStore, ConfigStore, DestinationStore};
use vigil::services::dispatch::fairness::MspShare;
use vigil::services::dispatch::{DispatchOutcome, DispatchService, DispatchSettings};

/// The storm's shape.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StormArgs {
    pub storm: usize,
    pub quiet: usize,
    pub quiet_after: Duration,
    pub quiet_every: Duration,
    pub slots: usize,
    /// How long a delivery that creates a ticket holds its slot (the PSA's requests).
    pub pace: Duration,
    /// How long a fan-out or a deferral holds its slot (a store read or write, a queue send).
    pub light_pace: Duration,
    /// Each MSP's share per minute; `None`: no share.
    pub share: Option<u32>,
}

/// How the storm drained.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StormResult {
    pub share: Option<u32>,
    /// The quiet MSP's alert raised → ticket created, seconds, sorted.
    pub quiet_latencies: Vec<f64>,
    pub quiet_tickets: usize,
    pub storm_tickets: usize,
    /// Simulated seconds until the storming MSP's last ticket.
    pub storm_drained_after: f64,
    pub deferrals: usize,
    pub messages_handled: usize,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    due: DateTime<Utc>,
    seq: u64,
    body: String,
}

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the storm.
///
/// # Errors
/// When the set-up is refused or a delivery fails for good.
pub async fn run(args: StormArgs) -> Result<StormResult, BenchError> {
    let start = DateTime::parse_from_rfc3339("2026-12-07T09:00:00Z")?.with_timezone(&Utc);
    let clock = Arc::new(ManualClock::at(start));
    let config = Arc::new(MemoryConfigStore::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let psa = DestinationId::parse("psa")?;
    let storming = MspId::parse("storming-msp")?;
    let quiet = MspId::parse("quiet-msp")?;
    for (msp, tenant) in [(&storming, "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11"), (&quiet, "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d")] {
        config.put_destination(&sample_destination(msp, "psa")).await?;
        let mut tenant = sample_tenant(msp, &TenantId::parse(tenant)?);
        tenant.company_links = [(psa.clone(), "250".to_owned())].into();
        config.create_tenant(&tenant).await?;
    }
    let service = DispatchService {
        config: config.clone(),
        destinations: config.clone() as Arc<dyn DestinationStore>,
        alerts: alerts.clone(),
        policies: Arc::new(MemoryPolicyStore::default()),
        systems: Arc::new(MemoryTicketSystemProvider::default()),
        tickets: queue.clone(),
        billing_sync: None,
        credentials: None,
        clock: clock.clone(),
        settings: DispatchSettings::default(),
    };
    let share = args.share.map(|per_minute| MspShare { limiter: Arc::new(MemoryRateLimiter::default()), per_minute });

    // Alerts: the storm's at the start, the quiet MSP's spread; each announced when raised.
    let mut arrivals: Vec<(DateTime<Utc>, MspId, AlertId)> = Vec::new();
    for (msp, count, first, every) in
        [(&storming, args.storm, Duration::ZERO, Duration::ZERO), (&quiet, args.quiet, args.quiet_after, args.quiet_every)]
    {
        let tenant = config.list_tenants(msp).await?.remove(0).tenant_id;
        for n in 0..count {
            let at = start + TimeDelta::from_std(first + every * u32::try_from(n)?)?;
            let mut alert = sample_alert_for(msp, &tenant, at);
            alert.id = AlertId::derive(&[msp.as_str(), "storm", &n.to_string()]);
            alert.group_key = format!("user{n}@contoso.com");
            alerts.record_hits(&AlertHits::of_records(alert.clone(), vec![(RecordId::parse(&format!("{msp}-{n}"))?, at)]), at).await?;
            arrivals.push((at, msp.clone(), alert.id));
        }
    }
    let raised: BTreeMap<AlertId, DateTime<Utc>> = arrivals.iter().map(|(at, _, id)| (id.clone(), *at)).collect();
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    for (at, msp, id) in arrivals {
        let body = serde_json::to_string(&AlertChangedMessage::fan_out(msp, id))?;
        heap.push(Reverse(Queued { due: at, seq, body }));
        seq += 1;
    }

    let mut result = StormResult {
        share: args.share,
        quiet_latencies: Vec::new(),
        quiet_tickets: 0,
        storm_tickets: 0,
        storm_drained_after: 0.0,
        deferrals: 0,
        messages_handled: 0,
    };
    // Each slot is free again at its time; a message goes to the slot free first, when due.
    let mut slots = vec![start; args.slots.max(1)];
    while let Some(due) = heap.peek().map(|Reverse(q)| q.due) {
        let (slot, free) = slots.iter().enumerate().min_by_key(|(_, at)| **at).map(|(i, at)| (i, *at)).unwrap_or((0, start));
        let at = free.max(due);
        if at > clock.now() {
            clock.advance(at - clock.now());
        }
        let now = clock.now();
        let Some(Reverse(message)) = heap.pop() else { break };
        result.messages_handled += 1;
        let outcome = service.handle_within_share(share.as_ref(), &message.body).await?;
        // A ticket takes the PSA's time; a fan-out or a deferral only Vigil's own.
        let took = if matches!(outcome, DispatchOutcome::TicketCreated(_)) { args.pace } else { args.light_pace };
        let finished = now + TimeDelta::from_std(took)?;
        slots[slot] = finished;
        match outcome {
            DispatchOutcome::FannedOut(_) => {
                for body in queue.drain() {
                    heap.push(Reverse(Queued { due: finished, seq, body }));
                    seq += 1;
                }
            }
            DispatchOutcome::Deferred(_) => {
                result.deferrals += 1;
                for (body, delay) in queue.drain_delayed() {
                    heap.push(Reverse(Queued { due: finished + TimeDelta::from_std(delay)?, seq, body }));
                    seq += 1;
                }
            }
            DispatchOutcome::TicketCreated(_) => {
                let message: AlertChangedMessage = serde_json::from_str(&message.body)?;
                let after = (finished - raised[&message.alert_id]).as_seconds_f64();
                if message.msp_id == quiet {
                    result.quiet_tickets += 1;
                    result.quiet_latencies.push(after);
                } else {
                    result.storm_tickets += 1;
                    result.storm_drained_after = (finished - start).as_seconds_f64();
                }
            }
            other => return Err(format!("unexpected outcome {other:?}").into()),
        }
    }
    result.quiet_latencies.sort_by(f64::total_cmp);
    Ok(result)
}
