//! Per-token rate limits on the routes that call a PSA: destination tests and lookups are
//! counted per API token per minute; over the limit the answer is 429 problem+json with
//! `Retry-After`, and another token (another MSP's, or the MSP's second) keeps its own count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::{StatusCode, header};
use config_api::rate_limits::{DestinationTests, Lookups, RouteClass};
use serde_json::json;
use support::{api, connectwise_destination};

/// Counts are per minute of the clock: start a test early enough in a minute to finish in it.
async fn early_in_a_minute() {
    let second = chrono::Timelike::second(&chrono::Utc::now());
    if second >= 55 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - second))).await;
    }
}

#[tokio::test]
async fn destination_tests_past_the_per_token_limit_are_429_with_retry_after() {
    let api = api().await;
    assert_eq!(api.send("PUT", "/v1/destinations/psa", connectwise_destination()).await.0, StatusCode::CREATED);
    let token = api.acme_token.clone();
    early_in_a_minute().await;
    for _ in 0..DestinationTests::PER_MINUTE {
        assert_eq!(api.call_with_headers("POST", "/v1/destinations/psa/test", &token).await.0, StatusCode::OK);
    }
    let (status, headers, body) = api.call_with_headers("POST", "/v1/destinations/psa/test", &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let wait: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(body["status"], 429);
    assert!(body["detail"].as_str().unwrap().contains("per minute per API token"));

    // The MSP's second token, and another MSP, have their own counts.
    let owner = api.state.access.authenticate(&token).await.unwrap();
    let second = api.token_for("acme", owner.principal_id()).await;
    assert_eq!(api.call_with_headers("POST", "/v1/destinations/psa/test", &second).await.0, StatusCode::OK);
    let other = api.other_token.clone();
    assert_eq!(
        api.call_with_headers("POST", "/v1/destinations/psa/test", &other).await.0,
        StatusCode::NOT_FOUND,
        "not limited, not theirs"
    );
    // Lookups are a class of their own.
    assert_eq!(api.call_with_headers("GET", "/v1/destinations/psa/places", &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn lookups_past_the_per_token_limit_are_429_whichever_lookup_is_asked() {
    let api = api().await;
    assert_eq!(api.send("PUT", "/v1/destinations/psa", connectwise_destination()).await.0, StatusCode::CREATED);
    let token = api.acme_token.clone();
    early_in_a_minute().await;
    let routes = ["/v1/destinations/psa/places", "/v1/destinations/psa/priorities", "/v1/destinations/psa/companies?search=a"];
    for n in 0..Lookups::PER_MINUTE {
        let status = api.call_with_headers("GET", routes[n as usize % routes.len()], &token).await.0;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, _) = api.call_with_headers("GET", "/v1/destinations/psa/statuses?place=1", &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Routes that call no PSA are not counted.
    assert_eq!(api.call_with_headers("GET", "/v1/destinations/psa", &token).await.0, StatusCode::OK);
    assert_eq!(api.send("GET", "/v1/alerts", json!(null)).await.0, StatusCode::OK);
}
