//! The Microsoft 365 simulator under load, over real HTTP: a tenant's per-minute quota answered
//! `429` `AF429` with `Retry-After` (Graph: `TooManyRequests`), only for that tenant; requests
//! counted per tenant; the peak of requests in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeDelta, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use vigil_simulators::m365::{M365Sim, M365SimHandle, TenantLoad};

const TENANT_A: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const TENANT_B: &str = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const CLIENT_ID: &str = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6";
const SECRET: &str = "s3cr3t~value";

async fn token(sim: &M365SimHandle, tenant: &str, scope: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.login_base()))
        .form(&[("client_id", CLIENT_ID), ("client_secret", SECRET), ("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn list(sim: &M365SimHandle, tenant: &str, token: &str) -> reqwest::Response {
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    reqwest::Client::new()
        .get(format!("{}/api/v1.0/{tenant}/activity/feed/subscriptions/content", sim.management_base()))
        .bearer_auth(token)
        .query(&[("contentType", "Audit.Exchange"), ("startTime", &fmt(now - TimeDelta::hours(1))), ("endTime", &fmt(now))])
        .send()
        .await
        .unwrap()
}

async fn graph_alerts(sim: &M365SimHandle, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(format!("{}/v1.0/security/alerts_v2", sim.graph_base())).bearer_auth(token).send().await.unwrap()
}

/// Waits out the end of a minute, so a quota's minute does not roll over mid-test.
async fn early_in_a_minute() {
    let second = Utc::now().second();
    if second > 50 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
}

#[tokio::test]
async fn a_tenant_past_its_quota_gets_429_with_retry_after_and_another_tenant_does_not() {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT_A, CLIENT_ID, SECRET);
    sim.add_tenant(TENANT_B, CLIENT_ID, SECRET);
    sim.set_tenant_load(TENANT_A, TenantLoad { per_minute: Some(2), ..TenantLoad::default() });
    let (manage_a, graph_a) = (
        token(&sim, TENANT_A, "https://manage.office.com/.default").await,
        token(&sim, TENANT_A, "https://graph.microsoft.com/.default").await,
    );
    let manage_b = token(&sim, TENANT_B, "https://manage.office.com/.default").await;
    early_in_a_minute().await;
    assert_ne!(list(&sim, TENANT_A, &manage_a).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_ne!(graph_alerts(&sim, &graph_a).await.status(), StatusCode::TOO_MANY_REQUESTS, "Graph counts for the same tenant");

    let refused = list(&sim, TENANT_A, &manage_a).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AF429");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("Too many requests. Method=GetContents"));
    let graph_refused = graph_alerts(&sim, &graph_a).await;
    assert_eq!(graph_refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(graph_refused.headers().contains_key("retry-after"));
    assert_eq!(graph_refused.json::<Value>().await.unwrap()["error"]["code"], "TooManyRequests");

    for _ in 0..3 {
        assert_ne!(list(&sim, TENANT_B, &manage_b).await.status(), StatusCode::TOO_MANY_REQUESTS, "tenant B has no quota set");
    }
    let report = sim.take_load_report();
    assert_eq!(report.throttled, 2);
    assert_eq!(report.requests.get(TENANT_A), Some(&6), "two tokens, two answered, two refused: {:?}", report.requests);
    assert_eq!(report.requests.get(TENANT_B), Some(&4));
    assert_eq!(sim.take_load_report().throttled, 0, "taking the report starts counting again");
}

#[tokio::test]
async fn the_peak_of_requests_in_flight_is_gauged_across_tenants() {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT_A, CLIENT_ID, SECRET);
    sim.add_tenant(TENANT_B, CLIENT_ID, SECRET);
    let (a, b) = (
        token(&sim, TENANT_A, "https://manage.office.com/.default").await,
        token(&sim, TENANT_B, "https://manage.office.com/.default").await,
    );
    sim.take_load_report();
    // A slow tenant holds its requests open, so four at once overlap.
    sim.set_tenant_load(TENANT_A, TenantLoad { extra_latency: Duration::from_millis(300), per_minute: None });
    sim.set_tenant_load(TENANT_B, TenantLoad { extra_latency: Duration::from_millis(300), per_minute: None });
    let (r1, r2, r3, r4) =
        tokio::join!(list(&sim, TENANT_A, &a), list(&sim, TENANT_A, &a), list(&sim, TENANT_B, &b), list(&sim, TENANT_B, &b));
    assert!([r1, r2, r3, r4].iter().all(|r| r.status() != StatusCode::TOO_MANY_REQUESTS));
    let report = sim.take_load_report();
    assert_eq!(report.peak_in_flight, 4);
    assert_eq!(report.throttled, 0);
}
