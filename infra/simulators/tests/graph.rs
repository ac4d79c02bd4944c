//! Wire-level tests of the simulator's Microsoft Graph security alerts
//! (`GET /graph/v1.0/security/alerts_v2`), driven over real HTTP with reqwest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vigil_simulators::m365::{M365Failure, M365Operation, M365Sim, M365SimHandle};

const TENANT_A: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const TENANT_B: &str = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const CLIENT_ID: &str = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6";
const SECRET: &str = "s3cr3t~value";

async fn sim() -> M365SimHandle {
    let sim = M365Sim::start().await.expect("sim starts");
    sim.add_tenant(TENANT_A, CLIENT_ID, SECRET);
    sim.add_tenant(TENANT_B, CLIENT_ID, SECRET);
    sim
}

async fn token_for(sim: &M365SimHandle, tenant: &str, scope: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.login_base()))
        .form(&[("client_id", CLIENT_ID), ("client_secret", SECRET), ("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "scope {scope}");
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn graph_token(sim: &M365SimHandle, tenant: &str) -> String {
    token_for(sim, tenant, &format!("{}/.default", sim.graph_base())).await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn alerts_url(sim: &M365SimHandle) -> String {
    format!("{}/v1.0/security/alerts_v2", sim.graph_base())
}

/// GET with optional bearer token; returns status, `Retry-After` and JSON body.
async fn get(url: &str, token: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

async fn list(sim: &M365SimHandle, token: &str, query: &str) -> (StatusCode, Value) {
    let (status, _, body) = get(&format!("{}?{query}", alerts_url(sim)), Some(token)).await;
    (status, body)
}

fn ids(body: &Value) -> Vec<String> {
    body["value"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

fn at(base: DateTime<Utc>, seconds: i64) -> String {
    let t = base + TimeDelta::seconds(seconds);
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

fn alert(id: &str, updated: &str) -> Value {
    json!({"id": id, "title": format!("alert {id}"), "severity": "high", "status": "new", "lastUpdateDateTime": updated})
}

#[tokio::test]
async fn graph_tokens_carry_the_alerts_role_and_management_tokens_are_refused() {
    let sim = sim().await;
    let graph = graph_token(&sim, TENANT_A).await;
    let roles = claims(&graph)["roles"].clone();
    assert_eq!(roles[0], "SecurityAlert.Read.All", "{roles}");
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .all(|r| ["SecurityAlert.Read.All", "User.Read.All", "Organization.Read.All"].contains(&r.as_str().unwrap())),
        "{roles}"
    );
    assert_eq!(claims(&graph)["tid"], TENANT_A);

    let manage = token_for(&sim, TENANT_A, &format!("{}/.default", sim.management_base())).await;
    let (status, _, body) = get(&alerts_url(&sim), Some(&manage)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    // The other way round: a Graph token is no good on the Management API.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1.0/{TENANT_A}/activity/feed/subscriptions/list", sim.management_base()))
        .bearer_auth(&graph)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // The public Graph audience is accepted too.
    let public = token_for(&sim, TENANT_A, "https://graph.microsoft.com/.default").await;
    assert_eq!(get(&alerts_url(&sim), Some(&public)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_are_401_with_a_graph_error_body() {
    let sim = sim().await;
    let (status, _, body) = get(&alerts_url(&sim), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string(), "{body}");

    assert_eq!(get(&alerts_url(&sim), Some("eyJ.not.issued")).await.0, StatusCode::UNAUTHORIZED);

    let token = graph_token(&sim, TENANT_A).await;
    assert_eq!(get(&alerts_url(&sim), Some(&token)).await.0, StatusCode::OK);
    sim.expire_tokens();
    let (status, _, body) = get(&alerts_url(&sim), Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");

    let token = graph_token(&sim, TENANT_A).await;
    sim.remove_tenant(TENANT_A);
    assert_eq!(get(&alerts_url(&sim), Some(&token)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_decides_whose_alerts_are_listed() {
    let sim = sim().await;
    let base = Utc::now() - TimeDelta::hours(1);
    sim.add_graph_alert(TENANT_A, alert("a1", &at(base, 1)));
    sim.add_graph_alert(TENANT_B, alert("b1", &at(base, 2)));
    let (status, body) = list(&sim, &graph_token(&sim, TENANT_A).await, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), ["a1"]);
    assert_eq!(body["@odata.context"], format!("{}/v1.0/$metadata#security/alerts_v2", sim.graph_base()));
    assert_eq!(ids(&list(&sim, &graph_token(&sim, TENANT_B).await, "").await.1), ["b1"]);
}

#[tokio::test]
async fn pages_follow_absolute_next_links_in_update_order() {
    let sim = sim().await;
    let base = Utc::now() - TimeDelta::hours(2);
    for i in 0..25 {
        sim.add_graph_alert(TENANT_A, alert(&format!("x{i:02}"), &at(base, 100 - i)));
    }
    let token = graph_token(&sim, TENANT_A).await;
    let filter = format!("lastUpdateDateTime ge {}", at(base, 80));
    let query = format!("$filter={}&$orderby=lastUpdateDateTime%20asc&$top=10", filter.replace(' ', "%20").replace(':', "%3A"));
    let mut url = format!("{}?{query}", alerts_url(&sim));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, _, body) = get(&url, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        seen.extend(ids(&body));
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&alerts_url(&sim)), "absolute: {next}");
                assert!(next.contains("$skiptoken="), "{next}");
                assert!(next.contains("$filter=lastUpdateDateTime%20ge%20"), "the query is repeated: {next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    // x00 is updated last (base+100) … x20 at base+80 (included by `ge`).
    let expected: Vec<String> = (0..=20).rev().map(|i| format!("x{i:02}")).collect();
    assert_eq!(seen, expected, "oldest update first, each once");
    assert_eq!(pages, 3);
    let graph_requests = sim.request_log().into_iter().filter(|r| r.path == "/graph/v1.0/security/alerts_v2").count();
    assert_eq!(graph_requests, 3);
}

#[tokio::test]
async fn gt_filters_default_order_and_the_sim_page_size() {
    let sim = sim().await;
    let base = Utc::now() - TimeDelta::hours(1);
    for i in 0..5 {
        sim.add_graph_alert(TENANT_A, alert(&format!("y{i}"), &at(base, i)));
    }
    let token = graph_token(&sim, TENANT_A).await;
    let gt = format!("$filter=lastUpdateDateTime%20gt%20{}", at(base, 2));
    assert_eq!(ids(&list(&sim, &token, &format!("{gt}&$orderby=lastUpdateDateTime%20asc")).await.1), ["y3", "y4"]);
    assert_eq!(ids(&list(&sim, &token, "").await.1), ["y4", "y3", "y2", "y1", "y0"], "most recent first by default");
    let (_, body) = list(&sim, &token, "$filter=severity%20eq%20'low'").await;
    assert!(ids(&body).is_empty());

    sim.set_page_size(2);
    let (_, body) = list(&sim, &token, "$orderby=lastUpdateDateTime&$top=50").await;
    assert_eq!(ids(&body), ["y0", "y1"], "$top is capped by the simulator's page size");
    assert!(body["@odata.nextLink"].is_string());
}

#[tokio::test]
async fn an_updated_alert_replaces_the_old_one_and_shows_up_again() {
    let sim = sim().await;
    let base = Utc::now() - TimeDelta::hours(1);
    sim.add_graph_alert(TENANT_A, alert("u1", &at(base, 0)));
    sim.add_graph_alert(TENANT_A, alert("u2", &at(base, 10)));
    let token = graph_token(&sim, TENANT_A).await;
    let since = format!("$filter=lastUpdateDateTime%20ge%20{}&$orderby=lastUpdateDateTime%20asc", at(base, 5));
    assert_eq!(ids(&list(&sim, &token, &since).await.1), ["u2"]);

    let mut resolved = alert("u1", &at(base, 20));
    resolved["status"] = json!("resolved");
    sim.add_graph_alert(TENANT_A, resolved);
    let (_, body) = list(&sim, &token, &since).await;
    assert_eq!(ids(&body), ["u2", "u1"]);
    assert_eq!(body["value"][1]["status"], "resolved");
    assert_eq!(body["value"][1]["lastUpdateDateTime"], at(base, 20));
    assert_eq!(body["value"][1]["createdDateTime"], at(base, 0), "an update keeps its creation time");
    assert_eq!(ids(&list(&sim, &token, "").await.1).len(), 2, "replaced, not added");
}

#[tokio::test]
async fn missing_fields_are_filled_in() {
    let sim = sim().await;
    let before = Utc::now();
    sim.add_graph_alert(TENANT_A, json!({"title": "no id, no times"}));
    let (_, body) = list(&sim, &graph_token(&sim, TENANT_A).await, "").await;
    let stored = &body["value"][0];
    assert_eq!(stored["@odata.type"], "#microsoft.graph.security.alert");
    assert_eq!(stored["tenantId"], TENANT_A);
    assert!(!stored["id"].as_str().unwrap().is_empty());
    let updated = stored["lastUpdateDateTime"].as_str().unwrap();
    assert_eq!(updated.len(), "2026-01-05T12:19:27.7211305Z".len(), "7 fractional digits: {updated}");
    assert!(DateTime::parse_from_rfc3339(updated).unwrap() >= before - TimeDelta::milliseconds(1));
    assert_eq!(stored["createdDateTime"], stored["lastUpdateDateTime"]);
}

#[tokio::test]
async fn without_the_alerts_role_graph_answers_403_forbidden() {
    let sim = sim().await;
    let granted = graph_token(&sim, TENANT_A).await;
    sim.set_graph_role(TENANT_A, false);
    let denied = graph_token(&sim, TENANT_A).await;
    let roles = claims(&denied).get("roles").cloned().unwrap_or_default();
    assert!(!roles.to_string().contains("SecurityAlert.Read.All"), "{}", claims(&denied));
    let (status, _, body) = get(&alerts_url(&sim), Some(&denied)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "Forbidden");
    assert_eq!(get(&alerts_url(&sim), Some(&granted)).await.0, StatusCode::OK, "the role is decided at issue time");
    assert_eq!(get(&alerts_url(&sim), Some(&graph_token(&sim, TENANT_B).await)).await.0, StatusCode::OK, "other tenants unaffected");

    sim.set_graph_role(TENANT_A, true);
    assert_eq!(get(&alerts_url(&sim), Some(&graph_token(&sim, TENANT_A).await)).await.0, StatusCode::OK);
    // The Management API's role is a different one.
    let manage = token_for(&sim, TENANT_A, &format!("{}/.default", sim.management_base())).await;
    assert_eq!(claims(&manage)["roles"], json!(["ActivityFeed.Read"]));
}

#[tokio::test]
async fn injected_failures_throttle_and_fail() {
    let sim = sim().await;
    let token = graph_token(&sim, TENANT_A).await;
    sim.fail_next(M365Operation::GraphAlerts, M365Failure::Throttle, 1);
    let (status, retry, body) = get(&alerts_url(&sim), Some(&token)).await;
    assert_eq!((status, retry.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("1")));
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(get(&alerts_url(&sim), Some(&token)).await.0, StatusCode::OK, "only once");

    sim.fail_next("graph_alerts".parse().unwrap(), M365Failure::ThrottleForbidden, 1);
    let (status, retry, _) = get(&alerts_url(&sim), Some(&token)).await;
    assert_eq!((status, retry.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("1")));

    sim.fail_next(M365Operation::GraphAlerts, M365Failure::ServerError, 1);
    assert_eq!(get(&alerts_url(&sim), Some(&token)).await.0, StatusCode::INTERNAL_SERVER_ERROR);

    // Graph has been seen advising fractional seconds, and some services advise nothing.
    sim.fail_next(M365Operation::GraphAlerts, M365Failure::ThrottleFractional, 1);
    let (status, retry, body) = get(&alerts_url(&sim), Some(&token)).await;
    assert_eq!((status, retry.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("0.249")));
    assert_eq!(body["error"]["code"], "TooManyRequests");
    sim.fail_next(M365Operation::GraphAlerts, M365Failure::ThrottleWithoutRetryAfter, 1);
    let (status, retry, _) = get(&alerts_url(&sim), Some(&token)).await;
    assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, None));

    // Failures for the Management API do not hit Graph.
    sim.fail_next(M365Operation::ListContent, M365Failure::Throttle, 1);
    assert_eq!(get(&alerts_url(&sim), Some(&token)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_queries_and_altered_next_links_are_400() {
    let sim = sim().await;
    let base = Utc::now() - TimeDelta::hours(1);
    for i in 0..3 {
        sim.add_graph_alert(TENANT_A, alert(&format!("z{i}"), &at(base, i)));
    }
    let token = graph_token(&sim, TENANT_A).await;
    for query in [
        "$filter=investigationState%20eq%20'x'",
        "$filter=lastUpdateDateTime%20ge%20'2026-01-05T10:00:00Z'",
        "$filter=lastUpdateDateTime%20ge%202026-01-05T10:00:00Z%20or%20severity%20eq%20'high'",
        "$orderby=title",
        "$top=many",
    ] {
        let (status, body) = list(&sim, &token, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest");
    }

    let (_, body) = list(&sim, &token, "$orderby=lastUpdateDateTime%20asc&$top=1").await;
    let next = body["@odata.nextLink"].as_str().unwrap().to_owned();
    assert_eq!(get(&next.replace("$top=1", "$top=2"), Some(&token)).await.0, StatusCode::BAD_REQUEST, "$top changed");
    assert_eq!(get(&next, Some(&graph_token(&sim, TENANT_B).await)).await.0, StatusCode::BAD_REQUEST, "another tenant's skip token");
    let (status, _, body) = get(&next, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), ["z1"]);
    assert_eq!(get(&format!("{}?$skiptoken=nope", alerts_url(&sim)), Some(&token)).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn partner_relationships_and_sign_ins_are_set_up_through_the_control_routes_and_aged_on_request() {
    let sim = sim().await;
    sim.set_partner_role(TENANT_A, true);
    sim.set_sign_in_role(TENANT_A, true);
    let http = reqwest::Client::new();
    let relationship = json!({"id": "rel-1", "displayName": "Contoso access", "status": "active",
        "customer": {"tenantId": TENANT_B, "displayName": "Contoso"}, "createdDateTime": "2026-12-01T10:00:00Z",
        "activatedDateTime": "2026-12-01T11:00:00Z", "accessAssignments": [{"id": "a-1", "status": "active"}]});
    let added = http.post(format!("{}/_sim/partner/{TENANT_A}/relationships", sim.base_url())).json(&relationship).send().await.unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let aged =
        http.post(format!("{}/_sim/partner/relationships/rel-1/age", sim.base_url())).json(&json!({"days": 100})).send().await.unwrap();
    assert_eq!(aged.status(), StatusCode::OK);
    let unknown =
        http.post(format!("{}/_sim/partner/relationships/nope/age", sim.base_url())).json(&json!({"days": 1})).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let sign_ins =
        json!([{"id": "s-1", "createdDateTime": Utc::now().to_rfc3339(), "homeTenantId": TENANT_A, "resourceTenantId": TENANT_B}]);
    let posted = http.post(format!("{}/_sim/tenants/{TENANT_A}/sign-ins", sim.base_url())).json(&sign_ins).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::CREATED);

    let token = graph_token(&sim, TENANT_A).await;
    let base = sim.graph_base();
    let (status, _, read) = get(&format!("{base}/v1.0/tenantRelationships/delegatedAdminRelationships/rel-1"), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["createdDateTime"], "2026-08-23T10:00:00Z", "100 days earlier");
    let (_, _, assignments) =
        get(&format!("{base}/v1.0/tenantRelationships/delegatedAdminRelationships/rel-1/accessAssignments"), Some(&token)).await;
    assert_eq!(assignments["value"][0]["id"], "a-1", "assignments are kept apart, as Graph lists them");
    let since = (Utc::now() - TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, _, listed) = get(&format!("{base}/beta/auditLogs/signIns?$filter=createdDateTime ge {since}"), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    let (status, _, refused) = get(&format!("{base}/beta/auditLogs/signIns?$orderby=createdDateTime"), Some(&token)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BadRequest")));
    let other = graph_token(&sim, TENANT_B).await;
    let (status, _, _) = get(&format!("{base}/v1.0/tenantRelationships/delegatedAdminRelationships/rel-1"), Some(&other)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a tenant without the role");
}
