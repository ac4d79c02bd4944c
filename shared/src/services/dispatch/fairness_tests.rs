//! Each MSP's share of the dispatcher on in-memory adapters and a clock the tests move.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::clock::Clock;
use crate::memory::{MemoryOperation, MemoryRateLimiter};
use crate::services::dispatch::tests::{Fixture, fixture};

fn share(limiter: &Arc<MemoryRateLimiter>, per_minute: u32) -> MspShare {
    MspShare { limiter: limiter.clone(), per_minute }
}

fn delivery(f: &Fixture) -> String {
    let message = AlertChangedMessage { msp_id: f.alert.msp_id.clone(), alert_id: f.alert.id.clone(), destination: Some(f.psa.clone()) };
    serde_json::to_string(&message).unwrap()
}

#[tokio::test]
async fn a_delivery_over_its_msps_share_is_deferred_past_the_minute_and_calls_no_psa() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let limiter = Arc::new(MemoryRateLimiter::default());
    let share = share(&limiter, 1);
    assert!(matches!(f.service.handle_within_share(Some(&share), &delivery(&f)).await.unwrap(), DispatchOutcome::TicketCreated(_)));
    let calls = || [MemoryOperation::Find, MemoryOperation::Create].map(|o| f.system().calls(o));
    let before = calls();
    let outcome = f.service.handle_within_share(Some(&share), &delivery(&f)).await.unwrap();
    let DispatchOutcome::Deferred(delay) = outcome else { panic!("expected a deferral, got {outcome:?}") };
    let left_in_minute = 60 - u64::try_from(f.clock.now().timestamp() % 60).unwrap();
    assert!(delay.as_secs() >= left_in_minute, "deferred past the minute: {delay:?}, {left_in_minute} s left");
    assert!(delay.as_secs() < left_in_minute + 60, "spread over the next minute only: {delay:?}");
    assert_eq!(f.queue.drain_delayed(), vec![(delivery(&f), delay)], "the same delivery, re-sent once, delayed");
    assert_eq!(f.system().tickets().len(), 1);
    assert_eq!(calls(), before, "the deferred delivery made no PSA call");
}

#[tokio::test]
async fn another_msps_delivery_is_made_while_one_msp_storms() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let limiter = Arc::new(MemoryRateLimiter::default());
    let share = share(&limiter, 5);
    let storm = MspId::parse("storming-msp").unwrap();
    for _ in 0..5 {
        limiter.admit(&storm, DISPATCHER, DELIVERIES, 5, chrono::Duration::minutes(1), f.clock.now()).await.unwrap();
    }
    assert!(matches!(
        limiter.admit(&storm, DISPATCHER, DELIVERIES, 5, chrono::Duration::minutes(1), f.clock.now()).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    assert!(matches!(f.service.handle_within_share(Some(&share), &delivery(&f)).await.unwrap(), DispatchOutcome::TicketCreated(_)));
}

#[tokio::test]
async fn the_share_opens_again_the_next_minute() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let limiter = Arc::new(MemoryRateLimiter::default());
    let share = share(&limiter, 1);
    limiter.admit(&f.alert.msp_id, DISPATCHER, DELIVERIES, 1, chrono::Duration::minutes(1), f.clock.now()).await.unwrap();
    assert!(matches!(f.service.handle_within_share(Some(&share), &delivery(&f)).await.unwrap(), DispatchOutcome::Deferred(_)));
    f.clock.advance(chrono::Duration::seconds(60));
    assert!(matches!(f.service.handle_within_share(Some(&share), &delivery(&f)).await.unwrap(), DispatchOutcome::TicketCreated(_)));
}

#[tokio::test]
async fn fan_outs_are_not_counted_and_without_a_share_every_delivery_is_made() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let limiter = Arc::new(MemoryRateLimiter::default());
    let closed = share(&limiter, 0);
    let fan_out = serde_json::to_string(&AlertChangedMessage::fan_out(f.alert.msp_id.clone(), f.alert.id.clone())).unwrap();
    assert_eq!(f.service.handle_within_share(Some(&closed), &fan_out).await.unwrap(), DispatchOutcome::FannedOut(1));
    assert!(matches!(f.service.handle_within_share(Some(&closed), &delivery(&f)).await.unwrap(), DispatchOutcome::Deferred(_)));
    assert!(matches!(f.service.handle_within_share(None, &delivery(&f)).await.unwrap(), DispatchOutcome::TicketCreated(_)));
}
