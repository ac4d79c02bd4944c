//! Billing mappings and sync runs through the router, on the in-memory stores and an in-memory
//! PSA: a mapping checked in the PSA (one to an agreement that does not exist or is cancelled
//! refused naming it, one to a destination without billing refused), a dry run showing the
//! current and the new quantity, a sync setting it once per period, a hand edit reported, and
//! the destination test naming a mapped agreement cancelled since.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use std::sync::Arc;
use support::{api, assert_problem};
use vigil::billing::BillingSettings;
use vigil::billing::sync::BillingLine;
use vigil::ids::{DestinationId, MspId, TenantId};
use vigil::memory::MemoryBillingTarget;

async fn seeded() -> (support::Api, Arc<MemoryBillingTarget>) {
    let api = api().await;
    let tenant = json!({"tenant_id": support::TENANT, "name": "Contoso", "domains": ["contoso.com"]});
    assert_eq!(api.send("POST", "/v1/tenants", tenant).await.0, StatusCode::CREATED);
    assert_eq!(api.send("PUT", "/v1/destinations/psa", support::connectwise_destination()).await.0, StatusCode::CREATED);
    let psa = Arc::new(MemoryBillingTarget::new(true));
    psa.add_agreement("7", false);
    psa.add_agreement("8", true);
    api.billing_targets.set(&DestinationId::parse("psa").unwrap(), psa.clone());
    let (msp, tenant) = (MspId::parse("acme").unwrap(), TenantId::parse(support::TENANT).unwrap());
    let today = Utc::now().date_naive();
    api.state
        .mailbox_counts
        .counts
        .record_count(&msp, &vigil::contract::sample_count(&tenant, today, 42), &BillingSettings::default())
        .await
        .unwrap();
    (api, psa)
}

fn path() -> String {
    format!("/v1/tenants/{}/billing/psa", support::TENANT)
}

#[tokio::test]
async fn a_mapping_to_an_agreement_that_does_not_exist_or_is_cancelled_is_refused_naming_it() {
    let (api, _psa) = seeded().await;
    let missing = api.send("PUT", &path(), json!({"agreement_id": "99", "product_id": "VIGIL-MBX"})).await;
    assert_problem(&missing, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.2["detail"].as_str().unwrap().contains("99"), "{}", missing.2);
    let cancelled = api.send("PUT", &path(), json!({"agreement_id": "8", "product_id": "VIGIL-MBX"})).await;
    assert_problem(&cancelled, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(cancelled.2["detail"].as_str().unwrap().contains("cancelled"), "{}", cancelled.2);
    assert_problem(&api.send("PUT", &path(), json!({"agreement_id": "", "product_id": "X"})).await, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = format!("/v1/tenants/{}/billing/nowhere", support::TENANT);
    assert_problem(&api.send("PUT", &unknown, json!({"agreement_id": "7", "product_id": "X"})).await, StatusCode::NOT_FOUND);
    assert_eq!(api.send("GET", "/v1/billing/mappings", json!(null)).await.2["mappings"], json!([]), "nothing kept");
}

#[tokio::test]
async fn a_dry_run_shows_the_current_and_new_quantity_then_a_sync_sets_it_once_per_period() {
    let (api, psa) = seeded().await;
    let line = BillingLine { agreement_id: "7".into(), product_id: "VIGIL-MBX".into() };
    psa.set_by_hand(&line, 30);
    let put = api.send("PUT", &path(), json!({"agreement_id": "7", "product_id": "VIGIL-MBX"})).await;
    assert_eq!(put.0, StatusCode::OK, "{}", put.2);
    let dry = api.send("POST", "/v1/billing/dry-run", json!({})).await;
    assert_eq!(dry.0, StatusCode::OK, "{}", dry.2);
    assert_eq!((dry.2["lines"][0]["current"].as_u64(), dry.2["lines"][0]["new"].as_u64()), (Some(30), Some(42)));
    assert_eq!(dry.2["lines"][0]["result"], "would_set");
    assert_eq!(psa.quantity_of(&line), Some(30), "the dry run wrote nothing");

    let run = api.send("POST", "/v1/billing/sync", json!({})).await;
    assert_eq!(run.2["lines"][0]["result"], "set", "{}", run.2);
    assert_eq!(psa.quantity_of(&line), Some(42));
    let again = api.send("POST", "/v1/billing/sync", json!({})).await;
    assert_eq!(again.2["lines"][0]["result"], "done_before");
    assert_eq!(psa.writes_made().len(), 1);
    let listed = api.send("GET", "/v1/billing/mappings", json!(null)).await.2;
    assert_eq!(listed["mappings"][0]["last_sync"]["last_set"], 42);

    psa.set_by_hand(&line, 50);
    let next_month = (Utc::now().date_naive() + chrono::Duration::days(40)).to_string();
    let edited = api.send("POST", "/v1/billing/sync", json!({"day": next_month})).await;
    assert_eq!(edited.2["lines"][0]["result"], "hand_edit_kept", "{}", edited.2);
    assert_eq!(api.events.drain().len(), 1, "the hand edit is reported to the evaluator");
    assert_eq!(api.send("DELETE", &path(), json!(null)).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_destination_test_names_a_mapped_agreement_cancelled_since() {
    let (api, psa) = seeded().await;
    assert_eq!(api.send("PUT", &path(), json!({"agreement_id": "7", "product_id": "VIGIL-MBX"})).await.0, StatusCode::OK);
    let test = api.send("POST", "/v1/destinations/psa/test", json!(null)).await;
    assert_eq!(test.2["ok"], true, "{}", test.2);
    psa.add_agreement("7", true);
    let test = api.send("POST", "/v1/destinations/psa/test", json!(null)).await;
    assert_eq!(test.2["ok"], false, "{}", test.2);
    assert!(test.2["problems"].to_string().contains("agreement 7 is cancelled"), "{}", test.2);
}
