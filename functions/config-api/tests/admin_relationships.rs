//! The admin-relationship report through the router, on the in-memory stores: JSON pages with
//! the summary, the CSV export, and bad queries as problem+json.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use support::{api, assert_problem};
use vigil::ids::{MspId, TenantId};

#[tokio::test]
async fn the_report_answers_json_pages_with_the_summary_and_a_csv_export() {
    let api = api().await;
    let tenant = TenantId::parse(support::TENANT).unwrap();
    let relationships: Vec<_> = (1..=3).map(|n| vigil::contract::sample_relationship(&format!("rel-{n}"), &tenant)).collect();
    api.state.relationships.store.replace_relationships(&MspId::parse("acme").unwrap(), &relationships).await.unwrap();

    let (status, content_type, page) = api.acme("GET", "/v1/admin-relationships?limit=2&sort=-days_enabled", None).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
    assert_eq!(page["relationships"].as_array().unwrap().len(), 2);
    assert_eq!(page["summary"]["relationships"], 3);
    assert_eq!(page["relationships"][0]["kind"], "gdap");
    assert!(page["last_read"].is_null(), "the partner tenant was never read");
    let next = page["next_cursor"].as_str().unwrap();
    let rest = api.acme("GET", &format!("/v1/admin-relationships?limit=2&sort=-days_enabled&cursor={next}"), None).await.2;
    assert_eq!((rest["relationships"].as_array().unwrap().len(), rest["next_cursor"].is_null()), (1, true));
    assert_eq!(api.acme("GET", "/v1/admin-relationships/summary", None).await.2["customers_with_access"], 1);
    assert_eq!(api.call("GET", "/v1/admin-relationships", Some(&api.other_token.clone()), None).await.2["summary"]["relationships"], 0);

    let request = axum::http::Request::builder()
        .uri("/v1/admin-relationships/export")
        .header("authorization", format!("Bearer {}", api.acme_token))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(config_api::app(api.state.clone()), request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let csv = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");

    assert_problem(&api.acme("GET", "/v1/admin-relationships?sort=name", None).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&api.acme("GET", "/v1/admin-relationships?bucket=ancient", None).await, StatusCode::BAD_REQUEST);
    assert_problem(&api.acme("GET", "/v1/admin-relationships?cursor=7", None).await, StatusCode::UNPROCESSABLE_ENTITY);
}
