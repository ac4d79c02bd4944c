//! The onboarding routes through the router on the in-memory adapters: the MSP app's secret
//! never returned, a consent link issued and Microsoft's redirect answered without a token —
//! the signed state alone authenticates it (forged, replayed, another MSP's refused as
//! problem+json) — then the tenant's access test readable and runnable again; discovery and a
//! bulk onboarding's progress.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{api, assert_problem};

/// The `state` of a link answered by the API.
fn state_of(link: &serde_json::Value) -> String {
    let url = url::Url::parse(link["url"].as_str().unwrap()).unwrap();
    url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned()
}

#[tokio::test]
async fn a_consent_link_is_answered_by_microsofts_redirect_without_a_token_once() {
    let api = api().await;
    let app = api.acme("PUT", "/v1/onboarding/app", Some(json!({"client_id": "msp-app", "client_secret": "s3cret-value"}))).await;
    assert_eq!(app.0, StatusCode::OK, "{:?}", app.2);
    assert_eq!(app.2["redirect_uri"], "https://vigil.example/v1/consent/acme");
    assert!(!app.2.to_string().contains("s3cret-value"), "the secret is never returned");
    let link =
        api.acme("POST", "/v1/onboarding/consent-links", Some(json!({"customer_name": "Contoso", "tenant_id": support::TENANT}))).await;
    assert_eq!(link.0, StatusCode::CREATED, "{:?}", link.2);
    let state = state_of(&link.2);
    let redirect = format!("/v1/consent/acme?tenant={}&state={state}&admin_consent=True", support::TENANT);
    let outcome = api.call("GET", &redirect, None, None).await;
    assert_eq!(outcome.0, StatusCode::OK, "{:?}", outcome.2);
    assert_eq!(outcome.2["link"]["status"]["status"], "consented");
    assert_eq!(outcome.2["access_test"]["passed"], true);
    assert_eq!(outcome.2["poll_jobs"], vigil::ids::AuditStream::all().len());
    assert_problem(&api.call("GET", &redirect, None, None).await, StatusCode::CONFLICT);
    let tenant = api.acme("GET", &format!("/v1/tenants/{}", support::TENANT), None).await;
    assert_eq!(tenant.2["name"], "Contoso");
    let test = api.acme("GET", &format!("/v1/tenants/{}/access-test", support::TENANT), None).await;
    assert_eq!(test.2["checks"].as_array().unwrap().len(), 5);
    let again = api.acme("POST", &format!("/v1/tenants/{}/access-test", support::TENANT), None).await;
    assert_eq!((again.0, again.2["passed"].clone()), (StatusCode::OK, json!(true)));
}

#[tokio::test]
async fn a_tenant_with_its_own_credentials_is_not_access_tested_with_the_msp_app() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": support::TENANT, "name": "Contoso"}))).await;
    let own = json!({"client_id": "tenant-app", "client_secret": "s3cret"});
    api.acme("PUT", &format!("/v1/tenants/{}/m365-credentials", support::TENANT), Some(own)).await;
    assert_problem(&api.acme("POST", &format!("/v1/tenants/{}/access-test", support::TENANT), None).await, StatusCode::CONFLICT);
    assert_problem(&api.acme("GET", &format!("/v1/tenants/{}/access-test", support::TENANT), None).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forged_other_msp_and_stateless_redirects_are_refused_as_problems() {
    let api = api().await;
    api.acme("PUT", "/v1/onboarding/app", Some(json!({"client_id": "msp-app", "client_secret": "s3cret"}))).await;
    let link = api.acme("POST", "/v1/onboarding/consent-links", Some(json!({"customer_name": "Contoso"}))).await;
    let state = state_of(&link.2);
    let t = support::TENANT;
    let flipped = format!("{}{}", &state[..state.len() - 1], if state.ends_with('0') { '1' } else { '0' });
    assert_problem(
        &api.call("GET", &format!("/v1/consent/acme?tenant={t}&state={flipped}&admin_consent=True"), None, None).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &api.call("GET", &format!("/v1/consent/other?tenant={t}&state={state}&admin_consent=True"), None, None).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(&api.call("GET", &format!("/v1/consent/NOT_AN_MSP?tenant={t}&state={state}"), None, None).await, StatusCode::FORBIDDEN);
    assert_problem(&api.call("GET", &format!("/v1/consent/acme?tenant={t}&admin_consent=True"), None, None).await, StatusCode::BAD_REQUEST);
    // The refusals above used nothing up: the real redirect still works once.
    let ok = api.call("GET", &format!("/v1/consent/acme?tenant={t}&state={state}&admin_consent=True"), None, None).await;
    assert_eq!(ok.0, StatusCode::OK, "{:?}", ok.2);
}

#[tokio::test]
async fn a_declined_consent_is_shown_on_the_link() {
    let api = api().await;
    api.acme("PUT", "/v1/onboarding/app", Some(json!({"client_id": "msp-app", "client_secret": "s3cret"}))).await;
    let link = api.acme("POST", "/v1/onboarding/consent-links", Some(json!({"customer_name": "Contoso"}))).await;
    let query = format!("error=permission_denied&error_description=AADSTS65004%3A+declined&state={}", state_of(&link.2));
    let outcome = api.call("GET", &format!("/v1/consent/acme?{query}"), None, None).await;
    assert_eq!(outcome.2["link"]["status"]["status"], "declined");
    let links = api.acme("GET", "/v1/onboarding/consent-links", None).await;
    assert_eq!(links.2["links"][0]["status"]["description"], "AADSTS65004: declined");
}

#[tokio::test]
async fn bulk_onboarding_from_discovery_reports_progress_per_customer() {
    let api = api().await;
    let acme = vigil::ids::MspId::parse("acme").unwrap();
    let tenant = vigil::ids::TenantId::parse(support::TENANT).unwrap();
    let relationship = vigil::contract::sample_relationship("rel-1", &tenant);
    api.state.relationships.store.replace_relationships(&acme, &[relationship]).await.unwrap();
    let refused = api.acme("POST", "/v1/onboarding/bulk", Some(json!({"tenant_ids": [support::TENANT]}))).await;
    assert_problem(&refused, StatusCode::CONFLICT);
    api.acme("PUT", "/v1/onboarding/app", Some(json!({"client_id": "msp-app", "client_secret": "s3cret"}))).await;
    let found = api.acme("GET", "/v1/onboarding/discovery", None).await;
    assert_eq!(found.2["customers"][0]["watched"], false);
    assert_eq!(found.2["customers"][0]["relationships"][0]["roles"][0], "Helpdesk Administrator");
    let job = api.acme("POST", "/v1/onboarding/bulk", Some(json!({"tenant_ids": [support::TENANT]}))).await;
    assert_eq!(job.0, StatusCode::CREATED, "{:?}", job.2);
    let item = &job.2["items"][0];
    let redirect = format!("/v1/consent/acme?tenant={}&state={}&admin_consent=True", support::TENANT, state_of(item));
    assert_eq!(api.call("GET", &redirect, None, None).await.0, StatusCode::OK);
    let progress = api.acme("GET", &format!("/v1/onboarding/bulk/{}", job.2["id"].as_str().unwrap()), None).await;
    assert_eq!(progress.2["items"][0]["status"]["status"], "consented");
    assert_eq!(progress.2["items"][0]["access_test_passed"], true);
    assert_problem(&api.acme("GET", "/v1/onboarding/bulk/..%2Fx", None).await, StatusCode::NOT_FOUND);
    let unknown = api.acme("POST", "/v1/onboarding/bulk", Some(json!({"tenant_ids": ["6f2a3d9b-8e52-4a1f-8b62-3c8e1d0f5b22"]}))).await;
    assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY);
}
