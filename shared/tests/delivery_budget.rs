//! A storm of alerts for an Autotask destination with a small `requests_per_hour` share, through
//! the real dispatcher, provider and connector against the Autotask simulator, on clocks the
//! test moves (no waiting): the simulator's request log never holds more than the share in a
//! rolling hour, and every alert gets exactly one ticket as the budget allows. The bench
//! `delivery-storm` (package `vigil-local`) runs the same driver
//! (`vigil::contract::delivery_storm`) at scale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::contract::delivery_storm::{DrainReport, Storm, StormCheck, StormSetup, TICKETS_MAX_RECEIVES};
use vigil::destination::{DestinationCredentials, DestinationSettings};
use vigil::secret::SecretString;
use vigil_simulators::autotask::directory::CONTOSO_COMPANY_ID;
use vigil_simulators::autotask::{AutotaskCredentials, AutotaskSim, DEFAULT_THRESHOLD};

/// Sixty alerts at once on a share of 100 requests an hour (the simulator's own threshold at
/// Autotask's default, so only Vigil's share holds requests back), drained; the check of the
/// simulator's request log and tickets, and how it drained.
async fn storm_of_sixty(pace: Duration, max_receives: u32) -> (StormCheck, DrainReport, usize) {
    let sim = AutotaskSim::start(AutotaskCredentials::sample()).await.unwrap();
    sim.set_threshold(DEFAULT_THRESHOLD);
    sim.set_clock_scale(0.0);
    let c = sim.credentials();
    let storm = Storm::new(StormSetup {
        alerts: 60,
        share: 100,
        settings: DestinationSettings::autotask(Some(sim.zone_url())),
        credentials: DestinationCredentials::Autotask {
            username: c.username,
            secret: SecretString::new(c.secret),
            integration_code: SecretString::new(c.integration_code),
        },
        company: CONTOSO_COMPANY_ID.to_string(),
        place: Some("29683481".into()),
        policy: DestinationPolicy::LOOPBACK_ALLOWED,
        start: sim.now(),
        pace,
        max_receives,
    })
    .await
    .unwrap();
    let report = storm.drain(|by| sim.advance_clock(by)).await;
    let requests: Vec<_> = sim.requests().iter().map(|r| r.timestamp).collect();
    let references: Vec<String> = sim.tickets().iter().map(|t| t.item["externalID"].as_str().unwrap_or_default().to_owned()).collect();
    (StormCheck::of(&storm, &report, &requests, &references), report, requests.len())
}

#[tokio::test]
async fn sixty_alerts_on_a_share_of_a_hundred_an_hour_each_get_one_ticket_and_no_rolling_hour_exceeds_the_share() {
    // Every attempt at the same instant: the share is spent in one burst an hour, and each
    // throttled delivery comes back when the hour has passed, within the queue's receives.
    let (check, report, requests) = storm_of_sixty(Duration::ZERO, TICKETS_MAX_RECEIVES).await;
    assert!(check.passed(), "{:#?}\n{report:#?}", check.problems);
    assert!(requests > 100, "the storm needs more than one hour's share ({requests} requests)");
    assert!(report.throttled > 0 && report.simulated >= chrono::TimeDelta::hours(1), "the share held the backlog back: {report:?}");
    assert_eq!(report.tickets_by_hour().iter().sum::<usize>(), 60);
}

#[tokio::test]
async fn with_attempts_spread_over_the_hour_no_rolling_hour_exceeds_the_share_and_no_delivery_nears_the_dlq() {
    // Twenty simulated seconds per attempt, as Lambda takes time: grants spread out, so rolling
    // windows do not line up with bursts. A delivery the share refuses is re-sent as a new,
    // delayed message, so waiting never counts toward the tickets queue's receive limit, and a
    // refused create is not an attempted one (no find query before every retry).
    let (check, report, requests) = storm_of_sixty(Duration::from_secs(20), TICKETS_MAX_RECEIVES).await;
    assert!(check.passed(), "{:#?}\n{report:#?}", check.problems);
    assert_eq!(check.max_in_hour, 100, "the share is used, never exceeded");
    assert_eq!(report.max_receives, 1, "every message is received once: waits are new messages");
    assert!(requests <= 60 * 2 + 10, "about two requests per ticket (a contact query and the create), not {requests}");
}
