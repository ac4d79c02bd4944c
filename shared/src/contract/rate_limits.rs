//! The [`RateLimiter`] contract, run against memory and DynamoDB on moto: a window admits
//! exactly its limit, even to concurrent callers, says when the next window opens, and keeps
//! callers, route classes and MSPs apart.

use super::unique_msp;
use crate::ports::{RateDecision, RateLimiter};
use chrono::{Duration, TimeZone, Utc};

/// The contract.
///
/// # Panics
/// When the limiter breaks it.
pub async fn rate_limiter_contract(limiter: &dyn RateLimiter) {
    let msp_id = unique_msp();
    let minute = Duration::minutes(1);
    let t0 = Utc.timestamp_opt(1_767_600_000, 0).unwrap() + Duration::seconds(15);
    let admit = |caller: &'static str, class: &'static str, at| {
        let msp_id = msp_id.clone();
        async move { limiter.admit(&msp_id, caller, class, 3, minute, at).await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(admit("token-a", "lookups", t0).await, RateDecision::Allowed);
    }
    assert_eq!(
        admit("token-a", "lookups", t0).await,
        RateDecision::Limited { retry_after: std::time::Duration::from_secs(45) },
        "the fourth in the window waits for the next"
    );
    assert_eq!(admit("token-b", "lookups", t0).await, RateDecision::Allowed, "another token has its own count");
    assert_eq!(admit("token-a", "destination-tests", t0).await, RateDecision::Allowed, "another class has its own count");
    let other = limiter.admit(&unique_msp(), "token-a", "lookups", 3, minute, t0).await.unwrap();
    assert_eq!(other, RateDecision::Allowed, "another MSP has its own count");
    assert_eq!(admit("token-a", "lookups", t0 + Duration::seconds(45)).await, RateDecision::Allowed, "a new window");

    // Concurrent callers: exactly the limit is admitted.
    let at = t0 + Duration::minutes(5);
    let results = futures::future::join_all((0..8).map(|_| admit("token-c", "lookups", at))).await;
    assert_eq!(results.iter().filter(|d| **d == RateDecision::Allowed).count(), 3);
}
