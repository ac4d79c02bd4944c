//! The protected-mailbox routes through the router, on the in-memory stores: the MSP's current
//! figures and their total (a carried-over figure marked), a tenant's series and its CSV, the
//! retention setting bounded and audited, and another MSP seeing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use chrono::{Duration, NaiveDate, Utc};
use serde_json::json;
use support::{api, assert_problem};
use vigil::billing::BillingSettings;
use vigil::ids::{MspId, TenantId};

fn day(n: i64) -> NaiveDate {
    Utc::now().date_naive() - Duration::days(n)
}

async fn seeded() -> support::Api {
    let api = api().await;
    let tenant = json!({"tenant_id": support::TENANT, "name": "Contoso", "domains": ["contoso.com"]});
    assert_eq!(api.send("POST", "/v1/tenants", tenant).await.0, StatusCode::CREATED);
    let (msp, tenant) = (MspId::parse("acme").unwrap(), TenantId::parse(support::TENANT).unwrap());
    let store = &api.state.mailbox_counts.counts;
    let settings = BillingSettings::default();
    for n in (1..=3).rev() {
        store.record_count(&msp, &vigil::contract::sample_count(&tenant, day(n), 40 + n as u32), &settings).await.unwrap();
    }
    let carried = vigil::contract::sample_count(&tenant, day(1), 41).carried_to(day(0), "throttled by the audit source", Utc::now());
    store.record_count(&msp, &carried, &settings).await.unwrap();
    api
}

#[tokio::test]
async fn the_msps_current_figures_total_every_tenants_latest_day_and_mark_a_carried_over_one() {
    let api = seeded().await;
    let (status, _, body) = api.send("GET", "/v1/mailbox-counts", json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_protected_mailboxes"], 41);
    assert_eq!(body["tenants_carried_over"], 1);
    assert_eq!(body["tenants"][0]["tenant_name"], "Contoso");
    assert_eq!(body["tenants"][0]["day"], day(0).to_string());
    assert_eq!(body["tenants"][0]["counted_on"], day(1).to_string());
    assert_eq!(body["tenants"][0]["carried_over"], "throttled by the audit source");
    let (_, _, other) = api.call("GET", "/v1/mailbox-counts", Some(&api.other_token), None).await;
    assert_eq!(other["tenants"], json!([]), "another MSP sees none");
}

#[tokio::test]
async fn a_tenants_series_comes_oldest_first_for_the_range_asked_and_as_csv() {
    let api = seeded().await;
    let path = format!("/v1/tenants/{}/mailbox-counts?from={}&to={}", support::TENANT, day(2), day(0));
    let (status, _, body) = api.send("GET", &path, json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let days: Vec<_> = body["days"].as_array().unwrap().iter().map(|d| d["protected_mailboxes"].as_u64().unwrap()).collect();
    assert_eq!(days, vec![42, 41, 41]);
    let export = format!("/v1/tenants/{}/mailbox-counts/export?from={}&to={}", support::TENANT, day(2), day(0));
    let request = axum::http::Request::builder()
        .uri(&export)
        .header("authorization", format!("Bearer {}", api.acme_token))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(config_api::app(api.state.clone()), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "tenant,tenant_id,day,protected_mailboxes,users,counted_on,carried_over");
    assert_eq!(lines.len(), 4);
    assert!(lines[3].ends_with("throttled by the audit source"), "{text}");
}

#[tokio::test]
async fn a_series_of_an_unknown_tenant_or_a_backward_or_too_long_range_is_refused() {
    let api = seeded().await;
    let unknown = api.send("GET", "/v1/tenants/0e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11/mailbox-counts", json!(null)).await;
    assert_problem(&unknown, StatusCode::NOT_FOUND);
    let backward = format!("/v1/tenants/{}/mailbox-counts?from={}&to={}", support::TENANT, day(0), day(2));
    assert_problem(&api.send("GET", &backward, json!(null)).await, StatusCode::UNPROCESSABLE_ENTITY);
    let long = format!("/v1/tenants/{}/mailbox-counts?from={}&to={}", support::TENANT, day(500), day(0));
    assert_problem(&api.send("GET", &long, json!(null)).await, StatusCode::UNPROCESSABLE_ENTITY);
    let junk = format!("/v1/tenants/{}/mailbox-counts?from=yesterday", support::TENANT);
    assert_problem(&api.send("GET", &junk, json!(null)).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_retention_is_set_within_its_bounds_and_the_change_is_audited() {
    let api = seeded().await;
    assert_eq!(
        api.send("GET", "/v1/billing/settings", json!(null)).await.2,
        json!({"count_retention_days": 400, "sync_schedule": "month_end"})
    );
    let set = api.send("PUT", "/v1/billing/settings", json!({"count_retention_days": 90})).await;
    assert_eq!(set.0, StatusCode::OK, "{}", set.2);
    assert_eq!(api.send("GET", "/v1/billing/settings", json!(null)).await.2["count_retention_days"], 90);
    assert_problem(&api.send("PUT", "/v1/billing/settings", json!({"count_retention_days": 5000})).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &api.send("PUT", "/v1/billing/settings", json!({"count_retention_days": 90, "extra": 1})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let (_, _, log) = api.send("GET", "/v1/audit-log", json!(null)).await;
    assert!(log.to_string().contains("billing.settings.set"), "{log}");
}
