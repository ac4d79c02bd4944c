//! Coverage through the router on the in-memory stores: `GET /v1/coverage` (the MSP's figure
//! and its tenants' in pages) and `coverage_24h` on a tenant's streams, from the poller's
//! ledgers; another MSP's ledgers never count, and a bad page is a 400 problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use chrono::{Duration, DurationRound, Utc};
use serde_json::json;
use support::{Api, api, assert_problem};
use vigil::ids::{AuditStream, MspId, TenantId};
use vigil::ports::{StreamKey, StreamState};

const FABRIKAM: &str = "6e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a12";

/// Writes the ledger of every default stream of `tenant` as covered until `until`.
async fn covered(api: &Api, msp: &str, tenant: &str, until: chrono::DateTime<Utc>) {
    for stream in AuditStream::all() {
        let key = StreamKey { msp_id: MspId::parse(msp).unwrap(), tenant_id: TenantId::parse(tenant).unwrap(), stream };
        api.state.admin.ingest.put_stream(&key, &StreamState::starting_at(until)).await.unwrap();
    }
}

fn near(value: &serde_json::Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 0.01)
}

#[tokio::test]
async fn the_msp_sees_its_coverage_and_each_tenants_a_page_at_a_time() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": support::TENANT, "name": "Contoso"}))).await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": FABRIKAM, "name": "Fabrikam"}))).await;
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    covered(&api, "acme", support::TENANT, now + Duration::minutes(1)).await;
    // Fabrikam's streams were covered only until 12 hours ago.
    covered(&api, "acme", FABRIKAM, now - Duration::hours(12)).await;

    let (status, _, first) = api.acme("GET", "/v1/coverage?limit=1", None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["tenants_total"], 2);
    assert!(near(&first["msp_coverage_24h"], 0.75), "{first}");
    assert_eq!(first["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(first["tenants"][0]["name"], "Contoso");
    assert!(near(&first["tenants"][0]["coverage_24h"], 1.0));
    assert_eq!(first["next_after"], support::TENANT);

    let (_, _, second) = api.acme("GET", &format!("/v1/coverage?limit=1&after={}", support::TENANT), None).await;
    assert_eq!(second["tenants"][0]["name"], "Fabrikam");
    assert!(near(&second["tenants"][0]["coverage_24h"], 0.5), "{second}");
    assert!(second.get("next_after").is_none(), "the last page");

    let (_, _, streams) = api.acme("GET", &format!("/v1/tenants/{FABRIKAM}/streams"), None).await;
    assert!(near(&streams["coverage_24h"], 0.5), "{streams}");
}

#[tokio::test]
async fn a_tenant_never_polled_reads_zero_and_another_msps_ledgers_never_count() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": support::TENANT, "name": "Contoso"}))).await;
    // The other MSP's ledgers for the same tenant id are the other MSP's.
    covered(&api, "other", support::TENANT, Utc::now()).await;
    let (_, _, page) = api.acme("GET", "/v1/coverage", None).await;
    assert_eq!(page["tenants"][0]["coverage_24h"], 0.0);
    assert_eq!(page["tenants"][0]["streams_not_polled"], 6);
    let other = api.other_token.clone();
    let (status, _, theirs) = api.call("GET", "/v1/coverage", Some(&other), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["tenants_total"], 0, "the other MSP has registered no tenant");
    assert!(theirs["msp_coverage_24h"].is_null());
}

#[tokio::test]
async fn a_page_size_out_of_range_or_a_malformed_after_is_refused() {
    let api = api().await;
    for query in ["limit=0", "limit=501", "limit=ten", "after=not-a-guid", "colour=blue"] {
        assert_problem(&api.acme("GET", &format!("/v1/coverage?{query}"), None).await, StatusCode::BAD_REQUEST);
    }
}
