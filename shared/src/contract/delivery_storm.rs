//! A storm of alerts for one PSA destination whose `requests_per_hour` share is far below the
//! backlog: the real [`DispatchService`] on in-memory stores, the real
//! [`PsaProvider`](crate::connectors::psa::PsaProvider) and the destination's PSA (in the bench
//! and the test, the Autotask simulator), driven the way the tickets queue would drive it, on a
//! [`ManualClock`] that the driver moves (and makes the PSA move in step), never on the wall
//! clock.
//!
//! * [`Storm::new`] builds the service: one destination with the share, its credentials in the
//!   secret store, one tenant linked to the PSA company, and N distinct alerts recorded through
//!   [`AlertStore::record_hits`]; the request budget is a [`MemoryRequestBudget`] on the same
//!   clock.
//! * [`Storm::drain`] is the queue: every alert starts as a fan-out message; a due message is
//!   handled ([`DispatchService::handle`]); a fan-out's per-destination messages (sent to a
//!   [`MemoryQueue`]) become due at once; a failure with a `retry_after` comes back that much
//!   later, like a changed visibility timeout; each attempt takes [`StormSetup::pace`] of
//!   simulated time; when nothing is due both clocks jump to the next due time. A message
//!   received more than [`StormSetup::max_receives`] times is dead-lettered, so the drain ends
//!   after a bounded number of attempts whatever happens.
//! * [`StormCheck::of`] holds the storm to the issue: no rolling hour of the PSA's request log
//!   holds more than the share ([`max_in_rolling_hour`]), and every alert has exactly one
//!   ticket (by its external reference).

use crate::alert::AlertHits;
use crate::clock::{Clock, ManualClock};
use crate::connectors::destination_url::{DestinationPolicy, destination_http_client};
use crate::connectors::psa::PsaProvider;
use crate::contract::{sample_alert_for, sample_tenant};
use crate::destination::{Destination, DestinationCredentials, DestinationSettings, Routing};
use crate::ids::{AlertId, DestinationId, MspId, RecordId, TenantId};
use crate::memory::{MemoryAlertStore, MemoryConfigStore, MemoryPolicyStore, MemoryQueue, MemoryRequestBudget, MemorySecretStore};
use crate::messages::AlertChangedMessage;
use crate::ports::{AlertStore, ConfigStore, DestinationStore, SecretName, SecretStore};
use crate::secret::SecretString;
use crate::services::dispatch::{DispatchError, DispatchOutcome, DispatchService, DispatchSettings};
use crate::ticket::external_reference;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

/// The tickets queue's `maxReceiveCount` (template.yaml): a message received more often goes to
/// the dead-letter queue.
pub const TICKETS_MAX_RECEIVES: u32 = 20;

/// The rolling window of a PSA's request share.
pub const HOUR: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What the storm is made of.
#[derive(Debug, Clone)]
pub struct StormSetup {
    /// How many distinct alerts arrive at once.
    pub alerts: usize,
    /// The destination's `requests_per_hour`.
    pub share: u32,
    /// The PSA's settings (an Autotask zone URL, for the simulator).
    pub settings: DestinationSettings,
    /// The destination's credentials.
    pub credentials: DestinationCredentials,
    /// The PSA company the tenant is linked to.
    pub company: String,
    /// The queue (board) tickets are filed in.
    pub place: Option<String>,
    /// Where the PSA may be reached ([`DestinationPolicy::LOOPBACK_ALLOWED`] for a simulator).
    pub policy: DestinationPolicy,
    /// When the storm starts: the PSA's clock at that moment.
    pub start: DateTime<Utc>,
    /// Simulated time one attempt (one handled message) takes.
    pub pace: Duration,
    /// Receives after which a message is dead-lettered.
    pub max_receives: u32,
}

/// A storm ready to drain.
pub struct Storm {
    service: DispatchService,
    queue: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    msp_id: MspId,
    alert_ids: Vec<AlertId>,
    setup: StormSetup,
}

impl std::fmt::Debug for Storm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storm").field("alerts", &self.alert_ids.len()).field("share", &self.setup.share).finish_non_exhaustive()
    }
}

/// How the backlog drained.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    /// Messages handled (fan-outs included).
    pub attempts: usize,
    /// Attempts that failed with a `retry_after` (the share, or the PSA, said wait).
    pub throttled: usize,
    /// When each alert's ticket was created, after the start, in order.
    pub delivered_after: Vec<chrono::TimeDelta>,
    /// Messages dead-lettered (over [`StormSetup::max_receives`]) or failed for good, with why.
    pub failed: Vec<String>,
    /// The most receives one message needed.
    pub max_receives: u32,
    /// Simulated time from the start to the last ticket.
    pub simulated: chrono::TimeDelta,
}

impl DrainReport {
    /// Tickets created in each simulated hour since the start.
    #[must_use]
    pub fn tickets_by_hour(&self) -> Vec<usize> {
        let mut hours = Vec::new();
        for after in &self.delivered_after {
            let hour = usize::try_from(after.num_seconds() / 3600).unwrap_or(0);
            if hours.len() <= hour {
                hours.resize(hour + 1, 0);
            }
            hours[hour] += 1;
        }
        hours
    }
}

/// One message of the simulated tickets queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    due: DateTime<Utc>,
    /// Arrival order, so equal due times keep it.
    seq: u64,
    receives: u32,
    body: String,
}

impl Storm {
    /// Builds the service and records the alerts.
    ///
    /// # Errors
    /// When a store refuses the set-up or no HTTP client can be built.
    pub async fn new(setup: StormSetup) -> Result<Self, String> {
        let msp_id = MspId::parse("storm").map_err(|e| e.to_string())?;
        let tenant_id = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").map_err(|e| e.to_string())?;
        let destination_id = DestinationId::parse("autotask").map_err(|e| e.to_string())?;
        let clock = Arc::new(ManualClock::at(setup.start));
        let config = Arc::new(MemoryConfigStore::default());
        let alerts = Arc::new(MemoryAlertStore::default());
        let secrets = Arc::new(MemorySecretStore::default());
        let queue = Arc::new(MemoryQueue::default());

        let destination = Destination {
            msp_id: msp_id.clone(),
            id: destination_id.clone(),
            name: "Autotask".into(),
            enabled: true,
            settings: setup.settings.clone(),
            routing: Routing { default_place: setup.place.clone(), ..Routing::default() },
            requests_per_hour: Some(setup.share),
            credentials_set: true,
            created_at: setup.start,
            updated_at: setup.start,
        };
        config.put_destination(&destination).await.map_err(|e| e.to_string())?;
        let stored = serde_json::to_string(&setup.credentials).map_err(|e| e.to_string())?;
        secrets
            .put_secret(&SecretName::destination(&msp_id, &destination_id), &SecretString::new(stored))
            .await
            .map_err(|e| e.to_string())?;
        let mut tenant = sample_tenant(&msp_id, &tenant_id);
        tenant.company_links = [(destination_id, setup.company.clone())].into();
        config.create_tenant(&tenant).await.map_err(|e| e.to_string())?;

        let mut alert_ids = Vec::with_capacity(setup.alerts);
        for n in 0..setup.alerts {
            let mut alert = sample_alert_for(&msp_id, &tenant_id, setup.start);
            alert.id = AlertId::derive(&[msp_id.as_str(), "storm", &n.to_string()]);
            alert.group_key = format!("user{n}@contoso.com");
            let record = RecordId::parse(&format!("storm-record-{n}")).map_err(|e| e.to_string())?;
            alerts
                .record_hits(&AlertHits::of_records(alert.clone(), vec![(record, setup.start)]), setup.start)
                .await
                .map_err(|e| e.to_string())?;
            alert_ids.push(alert.id);
        }

        let http = destination_http_client(setup.policy).map_err(|e| e.to_string())?;
        let provider = PsaProvider::new(secrets, setup.policy, Arc::new(MemoryRequestBudget::default()), clock.clone()).with_http(http);
        let service = DispatchService {
            config: config.clone(),
            destinations: config,
            alerts,
            policies: Arc::new(MemoryPolicyStore::default()),
            systems: Arc::new(provider),
            tickets: queue.clone(),
            billing_sync: None,
            credentials: None,
            clock: clock.clone(),
            settings: DispatchSettings::default(),
        };
        Ok(Self { service, queue, clock, msp_id, alert_ids, setup })
    }

    /// The external reference each alert's ticket must carry, one per alert.
    #[must_use]
    pub fn expected_references(&self) -> BTreeSet<String> {
        self.alert_ids.iter().map(|id| external_reference(id, 0)).collect()
    }

    /// Drains the backlog: handles every due message, puts a throttled one back for its
    /// `retry_after`, and moves Vigil's clock, and the PSA's through `advance_psa`, by the same
    /// amounts. Ends when the queue is empty (every message delivered, dead-lettered or failed).
    pub async fn drain(&self, mut advance_psa: impl FnMut(Duration)) -> DrainReport {
        let start = self.clock.now();
        let mut report = DrainReport::default();
        let mut seq = 0u64;
        let mut queue = BinaryHeap::new();
        for alert_id in &self.alert_ids {
            let message = AlertChangedMessage::fan_out(self.msp_id.clone(), alert_id.clone());
            let body = serde_json::to_string(&message).unwrap_or_default();
            queue.push(Reverse(Queued { due: start, seq, receives: 0, body }));
            seq += 1;
        }
        while let Some(Reverse(mut message)) = queue.pop() {
            let now = self.clock.now();
            if message.due > now {
                let wait = (message.due - now).to_std().unwrap_or_default();
                self.advance(wait, &mut advance_psa);
            }
            message.receives += 1;
            report.attempts += 1;
            report.max_receives = report.max_receives.max(message.receives);
            let result = self.service.handle(&message.body).await;
            let handled_at = self.clock.now();
            match result {
                Ok(DispatchOutcome::FannedOut(_)) => {
                    for body in self.queue.drain() {
                        queue.push(Reverse(Queued { due: handled_at, seq, receives: 0, body }));
                        seq += 1;
                    }
                }
                Ok(DispatchOutcome::Deferred(_)) => {
                    // Put back as a new message (its receive count starts over), as SQS does.
                    report.throttled += 1;
                    for (body, delay) in self.queue.drain_delayed() {
                        let due = handled_at + chrono::TimeDelta::from_std(delay).unwrap_or(HOUR);
                        queue.push(Reverse(Queued { due, seq, receives: 0, body }));
                        seq += 1;
                    }
                }
                Ok(DispatchOutcome::TicketCreated(_) | DispatchOutcome::TicketRecovered(_)) => {
                    report.delivered_after.push(handled_at - start);
                    report.simulated = handled_at - start;
                }
                Ok(other) => report.failed.push(format!("{}: unexpected outcome {other:?}", message.body)),
                Err(error) => match retry_after(&error) {
                    Some(wait) if message.receives < self.setup.max_receives => {
                        report.throttled += 1;
                        let due = handled_at + chrono::TimeDelta::from_std(wait).unwrap_or(HOUR);
                        queue.push(Reverse(Queued { due, ..message }));
                    }
                    Some(_) => report.failed.push(format!("{}: dead-lettered after {} receives: {error}", message.body, message.receives)),
                    None => report.failed.push(format!("{}: {error}", message.body)),
                },
            }
            self.advance(self.setup.pace, &mut advance_psa);
        }
        report
    }

    fn advance(&self, by: Duration, advance_psa: &mut impl FnMut(Duration)) {
        if by.is_zero() {
            return;
        }
        self.clock.advance(chrono::TimeDelta::from_std(by).unwrap_or(HOUR));
        advance_psa(by);
    }
}

/// The delay the tickets queue gives a failed message before its next receive: the error's
/// `retry_after`, at least a second (as `vigil::lambda::retry::retry_delay_for` does).
fn retry_after(error: &DispatchError) -> Option<Duration> {
    use crate::error::Classified;
    error.retry_after().map(|wait| wait.max(Duration::from_secs(1)))
}

/// The most requests any rolling hour `[t, t + 1 h)` holds.
#[must_use]
pub fn max_in_rolling_hour(timestamps: &[DateTime<Utc>]) -> usize {
    let mut sorted = timestamps.to_vec();
    sorted.sort_unstable();
    let mut most = 0;
    let mut first = 0;
    for (last, at) in sorted.iter().enumerate() {
        while *at - sorted[first] >= HOUR {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

/// The storm's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormCheck {
    /// The most requests the PSA saw in any rolling hour.
    pub max_in_hour: usize,
    /// The PSA's tickets.
    pub tickets: usize,
    /// What is wrong; empty when the storm kept to the share and every alert got one ticket.
    pub problems: Vec<String>,
}

impl StormCheck {
    /// Checks the PSA's request log (`requests`, on the PSA's clock) against the share and its
    /// tickets' external references (`references`) against the alerts.
    #[must_use]
    pub fn of(storm: &Storm, report: &DrainReport, requests: &[DateTime<Utc>], references: &[String]) -> Self {
        let share = storm.setup.share as usize;
        let max_in_hour = max_in_rolling_hour(requests);
        let mut problems = Vec::new();
        if max_in_hour > share {
            problems.push(format!("{max_in_hour} requests in one rolling hour, over the share of {share}"));
        }
        let expected = storm.expected_references();
        let found: BTreeSet<String> = references.iter().cloned().collect();
        if found.len() != references.len() {
            problems.push(format!("{} tickets share an external reference", references.len() - found.len()));
        }
        let missing = expected.difference(&found).count();
        if missing > 0 {
            problems.push(format!("{missing} alerts have no ticket"));
        }
        let strangers = found.difference(&expected).count();
        if strangers > 0 {
            problems.push(format!("{strangers} tickets belong to no alert"));
        }
        if references.len() != storm.alert_ids.len() {
            problems.push(format!("{} tickets for {} alerts", references.len(), storm.alert_ids.len()));
        }
        problems.extend(report.failed.iter().take(5).cloned());
        Self { max_in_hour, tickets: references.len(), problems }
    }

    /// Whether nothing is wrong.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_rolling_hour_counts_requests_less_than_an_hour_apart_together() {
        assert_eq!(max_in_rolling_hour(&[]), 0);
        assert_eq!(max_in_rolling_hour(&[at(0), at(3599), at(3600)]), 2, "an hour apart is another window");
        assert_eq!(
            max_in_rolling_hour(&[at(7000), at(0), at(3000), at(3100), at(5000), at(6599)]),
            4,
            "unsorted input, a window not aligned to the first"
        );
    }
}
