//! A storm of alerts for an Autotask destination with a small `requests_per_hour` share, through
//! the real dispatcher, provider and connector against the Autotask simulator, on clocks the
//! test moves (no waiting): the simulator's request log never holds more than the share in a
//! rolling hour, and every alert gets exactly one ticket as the budget allows, within the tickets
//! queue's `maxReceiveCount`. The bench `delivery-storm` (package `vigil-local`) runs the same
//! driver at scale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::contract::delivery_storm::{Storm, StormCheck, StormSetup, TICKETS_MAX_RECEIVES};
use vigil::destination::{DestinationCredentials, DestinationSettings};
use vigil::secret::SecretString;
use vigil_simulators::autotask::directory::CONTOSO_COMPANY_ID;
use vigil_simulators::autotask::{AutotaskCredentials, AutotaskSim, DEFAULT_THRESHOLD};

#[tokio::test]
async fn sixty_alerts_on_a_share_of_a_hundred_an_hour_each_get_one_ticket_and_no_rolling_hour_exceeds_the_share() {
    let sim = AutotaskSim::start(AutotaskCredentials::sample()).await.unwrap();
    sim.set_threshold(DEFAULT_THRESHOLD);
    sim.set_clock_scale(0.0);
    let c = sim.credentials();
    let storm = Storm::new(StormSetup {
        alerts: 60,
        share: 100,
        settings: DestinationSettings::Autotask {
            zone_url: Some(sim.zone_url()),
            source: None,
            issue_type: None,
            sub_issue_type: None,
            ticket_type: None,
            ticket_category: None,
            new_status: None,
            note_type: None,
            note_publish: None,
            due_in_hours: 24,
        },
        credentials: DestinationCredentials::Autotask {
            username: c.username,
            secret: SecretString::new(c.secret),
            integration_code: SecretString::new(c.integration_code),
        },
        company: CONTOSO_COMPANY_ID.to_string(),
        place: Some("29683481".into()),
        policy: DestinationPolicy::LOOPBACK_ALLOWED,
        start: sim.now(),
        // Every attempt at the same instant: the share is spent in one burst an hour, and each
        // throttled delivery comes back when the whole hour has passed.
        pace: Duration::ZERO,
        max_receives: TICKETS_MAX_RECEIVES,
    })
    .await
    .unwrap();

    let report = storm.drain(|by| sim.advance_clock(by)).await;

    let requests: Vec<_> = sim.requests().iter().map(|r| r.timestamp).collect();
    let references: Vec<String> = sim.tickets().iter().map(|t| t.item["externalID"].as_str().unwrap_or_default().to_owned()).collect();
    let check = StormCheck::of(&storm, &report, &requests, &references);
    assert!(check.passed(), "{:#?}\n{report:#?}", check.problems);
    assert!(requests.len() > 100, "the storm needs more than one hour's share ({} requests)", requests.len());
    assert!(report.throttled > 0 && report.simulated >= chrono::TimeDelta::hours(1), "the share held the backlog back: {report:?}");
    assert_eq!(report.tickets_by_hour().iter().sum::<usize>(), 60);
}
