//! A destination refusing Vigil's credentials, on in-memory adapters: one event per episode
//! however many deliveries are refused, one clear at the next answer, and crashes injected
//! between the episode's writes and its events.

use super::*;
use crate::alert::AlertHits;
use crate::clock::Clock;
use crate::error::Classified;
use crate::error::QueueError;
use crate::ids::{AlertId, RecordId};
use crate::memory::{MemoryCredentialsEpisodes, MemoryQueue};
use crate::ports::AlertStore;
use crate::selfmon::CONDITION_CLEARED;
use crate::services::dispatch::tests::{Fixture, fixture};
use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The evaluator's queue, failing the next `failures` sends.
#[derive(Default)]
struct Events {
    inner: MemoryQueue,
    failures: AtomicUsize,
}

#[async_trait]
impl MessageQueue for Events {
    async fn send_all(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.fail()?;
        self.inner.send_all(bodies).await
    }
    async fn send_delayed(&self, bodies: &[String], delay: std::time::Duration) -> Result<(), QueueError> {
        self.fail()?;
        self.inner.send_delayed(bodies, delay).await
    }
}

impl Events {
    fn fail(&self) -> Result<(), QueueError> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable("injected".into()));
        }
        Ok(())
    }
}

struct Watched {
    f: Fixture,
    episodes: Arc<MemoryCredentialsEpisodes>,
    events: Arc<Events>,
}

async fn watched() -> Watched {
    let mut f = fixture().await;
    let episodes = Arc::new(MemoryCredentialsEpisodes::default());
    let events = Arc::new(Events::default());
    f.service.credentials = Some(CredentialsWatch { episodes: episodes.clone(), events: events.clone() });
    Watched { f, episodes, events }
}

impl Watched {
    /// A new alert of the fixture's tenant with one hit (its own ticket to create).
    async fn alert(&self, n: usize) -> AlertId {
        let mut alert = self.f.alert.clone();
        alert.id = AlertId::derive(&["credentials-test", &n.to_string()]);
        let hits = AlertHits::of_records(alert.clone(), vec![(RecordId::parse(&format!("r{n}")).unwrap(), alert.first_seen)]);
        self.f.alerts.record_hits(&hits, Utc::now()).await.unwrap();
        alert.id
    }
    async fn deliver(&self, alert_id: &AlertId) -> Result<DispatchOutcome, DispatchError> {
        let message =
            AlertChangedMessage { msp_id: self.f.alert.msp_id.clone(), alert_id: alert_id.clone(), destination: Some(self.f.psa.clone()) };
        self.f.service.handle(&serde_json::to_string(&message).unwrap()).await
    }
    fn refuse_next_create(&self) {
        self.f.system().fail_next_create(SinkError::Unauthorized("401 UserNotAuthenticated".into()));
    }
    /// The self-monitoring records sent so far.
    fn sent(&self) -> Vec<Value> {
        let delayed = self.events.inner.drain_delayed();
        assert!(delayed.iter().all(|(_, delay)| *delay == CLEAR_DELAY), "only clears wait");
        self.events
            .inner
            .drain()
            .iter()
            .chain(delayed.iter().map(|(body, _)| body))
            .flat_map(|body| {
                let message: AuditEventsMessage = serde_json::from_str(body).unwrap();
                assert_eq!(message.content_id, SELF_MONITORING_EVENTS);
                assert_eq!(message.tenant_id, msp_itself(), "about the MSP itself");
                assert_eq!(message.msp_id, self.f.alert.msp_id, "under the MSP whose destination refused");
                message.records
            })
            .collect()
    }
}

#[tokio::test]
async fn a_destination_refusing_credentials_for_every_ticket_raises_one_event_and_its_next_answer_one_clear() {
    let w = watched().await;
    for n in 0..4 {
        let alert = w.alert(n).await;
        w.refuse_next_create();
        w.f.clock.advance(chrono::Duration::minutes(1));
        let error = w.deliver(&alert).await.unwrap_err();
        assert!(matches!(error, DispatchError::Sink(SinkError::Unauthorized(_))), "the delivery itself still fails: {error}");
        assert_eq!(error.class(), crate::error::ErrorClass::Permanent, "and is dead-lettered");
    }
    let raised = w.sent();
    assert_eq!(raised.len(), 1, "one event for four refused tickets: {raised:#?}");
    assert_eq!(raised[0]["Operation"], crate::selfmon::CONDITION_RAISED);
    assert_eq!(raised[0]["Condition"], "destination_credentials");
    assert_eq!(raised[0]["Subject"], "psa");
    assert_eq!(raised[0]["DestinationName"], "PSA psa");
    assert_eq!(raised[0]["DestinationKind"], "connectwise");
    assert!(raised[0]["Error"].as_str().unwrap().contains("401 UserNotAuthenticated"));
    let episode = w.episodes.credentials_episode(&w.f.alert.msp_id, &w.f.psa).await.unwrap().unwrap();
    assert!(episode.raised);

    let alert = w.alert(9).await;
    assert!(matches!(w.deliver(&alert).await.unwrap(), DispatchOutcome::TicketCreated(_)));
    let cleared = w.sent();
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["Operation"], CONDITION_CLEARED);
    assert_eq!(cleared[0]["SubjectKey"], raised[0]["SubjectKey"], "lands on the same alert");
    assert_eq!(cleared[0]["CreationTime"], raised[0]["CreationTime"], "in the same window");
    assert_eq!(w.episodes.credentials_episode(&w.f.alert.msp_id, &w.f.psa).await.unwrap(), None);

    let alert = w.alert(10).await;
    w.deliver(&alert).await.unwrap();
    assert!(w.sent().is_empty(), "later answers clear nothing more");
}

#[tokio::test]
async fn a_refusal_whose_event_cannot_be_sent_is_retried_until_it_is_and_sends_the_same_event() {
    let w = watched().await;
    let alert = w.alert(0).await;
    w.events.failures.store(1, Ordering::SeqCst);
    w.refuse_next_create();
    let error = w.deliver(&alert).await.unwrap_err();
    assert_eq!(error.class(), crate::error::ErrorClass::Transient, "retried, not dead-lettered, while the event is not out: {error}");
    assert!(w.sent().is_empty());
    w.f.clock.advance(chrono::Duration::minutes(3));
    let other = w.alert(1).await;
    w.refuse_next_create();
    assert!(matches!(w.deliver(&other).await.unwrap_err(), DispatchError::Sink(SinkError::Unauthorized(_))));
    let raised = w.sent();
    assert_eq!(raised.len(), 1);
    let first = w.episodes.credentials_episode(&w.f.alert.msp_id, &w.f.psa).await.unwrap().unwrap();
    assert_eq!(raised[0]["Since"], first.since.to_rfc3339(), "the episode's start, from the first refusal");
}

#[tokio::test]
async fn an_episode_closed_before_it_was_announced_is_closed_without_events() {
    let w = watched().await;
    let since = w.f.clock.now();
    let episode = CredentialsEpisode { destination: w.f.psa.clone(), since, raised: false, error: "401".into() };
    w.episodes.open_credentials_episode(&w.f.alert.msp_id, &episode).await.unwrap();
    let alert = w.alert(0).await;
    assert!(matches!(w.deliver(&alert).await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert!(w.sent().is_empty(), "never raised, so nothing to clear");
    assert_eq!(w.episodes.credentials_episode(&w.f.alert.msp_id, &w.f.psa).await.unwrap(), None);
}

#[tokio::test]
async fn a_clear_that_cannot_be_sent_keeps_the_episode_for_the_next_answer_and_the_delivery_done() {
    let w = watched().await;
    let alert = w.alert(0).await;
    w.refuse_next_create();
    w.deliver(&alert).await.unwrap_err();
    assert_eq!(w.sent().len(), 1);
    w.events.failures.store(1, Ordering::SeqCst);
    let second = w.alert(1).await;
    assert!(matches!(w.deliver(&second).await.unwrap(), DispatchOutcome::TicketCreated(_)), "the ticket is created all the same");
    assert!(w.episodes.credentials_episode(&w.f.alert.msp_id, &w.f.psa).await.unwrap().is_some(), "still open");
    let third = w.alert(2).await;
    w.deliver(&third).await.unwrap();
    let cleared = w.sent();
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["Operation"], CONDITION_CLEARED);
}

#[tokio::test]
async fn outcomes_that_never_reached_the_destination_neither_raise_nor_clear() {
    let w = watched().await;
    let alert = w.alert(0).await;
    w.refuse_next_create();
    w.deliver(&alert).await.unwrap_err();
    w.sent();
    w.f.system().fail_next_create(SinkError::Unavailable("503".into()));
    let other = w.alert(1).await;
    w.deliver(&other).await.unwrap_err();
    assert!(w.sent().is_empty(), "an outage is not a refusal, and not an answer");
    assert!(w.episodes.credentials_episode(&w.f.alert.msp_id, &w.f.psa).await.unwrap().is_some());
    assert!(!DispatchOutcome::UpToDate.reached_destination());
    assert!(!DispatchOutcome::HeldUntilLinked.reached_destination());
    assert!(!DispatchOutcome::FannedOut(2).reached_destination());
}

#[tokio::test]
async fn another_msps_destination_of_the_same_id_keeps_its_own_episode() {
    let w = watched().await;
    let alert = w.alert(0).await;
    w.refuse_next_create();
    w.deliver(&alert).await.unwrap_err();
    let other = crate::contract::unique_msp();
    assert_eq!(w.episodes.credentials_episode(&other, &w.f.psa).await.unwrap(), None);
}
