//! The replay routes in process, on in-memory stores: a request answers 202 with the replay's
//! address and queues one job for the audit-poller; bad requests are problem+json; a second
//! while the first is unfinished is 409; another MSP's tenant or replay is 404. (The run itself
//! is tested in `vigil`'s poller tests and end to end in `tests/tests/replay.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

mod support;

use support::{TENANT, api, assert_problem};

#[tokio::test]
async fn a_replay_request_answers_202_with_its_address_and_queues_one_poller_job() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso", "domains": ["contoso.com"]}))).await;
    let path = format!("/v1/tenants/{TENANT}/replays");
    let (status, _, body) = api.acme("POST", &path, Some(json!({"policy_id": "builtin.external-forwarding", "hours": 48}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!((body["status"].as_str(), body["hours"].as_u64()), (Some("queued"), Some(48)));
    assert_eq!(body["policy_id"], "builtin.external-forwarding");
    let id = body["replay_id"].as_str().unwrap();
    let jobs = api.poll_jobs.drain();
    assert_eq!(jobs.len(), 1);
    let job: serde_json::Value = serde_json::from_str(&jobs[0]).unwrap();
    assert_eq!((job["kind"].as_str(), job["replay_id"].as_str()), (Some("replay"), Some(id)));
    assert!(api.tickets.drain().is_empty(), "nothing for the dispatcher");

    let again = api.acme("POST", &path, Some(json!({"policy_id": "builtin.brute-force"}))).await;
    assert_problem(&again, StatusCode::CONFLICT);
    assert!(again.2["detail"].as_str().unwrap().contains(id), "names the unfinished replay: {}", again.2);

    let read = api.acme("GET", &format!("{path}/{id}"), None).await;
    assert_eq!((read.0, read.2["replay_id"].as_str()), (StatusCode::OK, Some(id)));
    let other = api.call("GET", &format!("{path}/{id}"), Some(&api.other_token.clone()), None).await;
    assert_problem(&other, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_replay_request_returns_its_location_header() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso"}))).await;
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/v1/tenants/{TENANT}/replays"))
        .header("authorization", format!("Bearer {}", api.acme_token))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({"policy_id": "builtin.brute-force"}).to_string()))
        .unwrap();
    let response = tower::ServiceExt::oneshot(config_api::app(api.state.clone()), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("/v1/tenants/{TENANT}/replays/rpl-")), "{location}");
    assert_eq!(api.acme("GET", &location, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_replay_requests_are_problems_and_queue_nothing() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso"}))).await;
    let path = format!("/v1/tenants/{TENANT}/replays");
    for body in [
        json!({"policy_id": "builtin.brute-force", "hours": 0}),
        json!({"policy_id": "builtin.brute-force", "hours": 169}),
        json!({"policy_id": "builtin.brute-force", "policy": {"id": "custom.x"}}),
        json!({}),
        json!({"policy": {"id": "custom.x", "name": "no activity"}}),
        json!({"policy": "builtin.brute-force"}),
        json!({"policy_id": "builtin.defender-alert"}),
    ] {
        assert_problem(&api.acme("POST", &path, Some(body.clone())).await, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_problem(
        &api.acme("POST", &path, Some(json!({"policy_id": "builtin.brute-force", "hours": -1}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_problem(&api.acme("POST", &path, Some(json!({"policy_id": "custom.never-made"}))).await, StatusCode::NOT_FOUND);
    assert_problem(
        &api.acme("POST", "/v1/tenants/0c1d2e3f-4a5b-4c6d-8e7f-901234567890/replays", Some(json!({"policy_id": "builtin.brute-force"})))
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &api.acme("POST", "/v1/tenants/not-a-guid/replays", Some(json!({"policy_id": "builtin.brute-force"}))).await,
        StatusCode::BAD_REQUEST,
    );
    assert_problem(&api.acme("GET", &format!("{path}/rpl-0123456789abcdef"), None).await, StatusCode::NOT_FOUND);
    assert_problem(&api.acme("GET", &format!("{path}/nonsense"), None).await, StatusCode::NOT_FOUND);
    let other =
        api.call("POST", &path, Some(&api.other_token.clone()), Some(&json!({"policy_id": "builtin.brute-force"}).to_string())).await;
    assert_problem(&other, StatusCode::NOT_FOUND);
    assert!(api.poll_jobs.drain().is_empty());
}
