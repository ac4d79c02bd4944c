//! The HaloPSA simulator over HTTP: the token endpoint (tenant, credentials, expiry on the
//! simulator's clock and through the control route), array bodies, `record_count` paging and
//! the technician's close.

use std::time::Duration;

use serde_json::{Value, json};

use super::directory::{CLOSED_STATUS_ID, CONTOSO_CLIENT_ID};
use super::{HaloSim, HaloSimConfig, HaloSimHandle};

async fn token(sim: &HaloSimHandle, tenant: Option<&str>, secret: &str) -> reqwest::Response {
    let config = sim.config();
    let url = match tenant {
        Some(t) => format!("{}/auth/token?tenant={t}", sim.base_url()),
        None => format!("{}/auth/token", sim.base_url()),
    };
    let form =
        [("grant_type", "client_credentials"), ("client_id", config.client_id.as_str()), ("client_secret", secret), ("scope", "all")];
    reqwest::Client::new().post(url).form(&form).send().await.unwrap_or_else(|e| panic!("{e}"))
}

async fn bearer(sim: &HaloSimHandle) -> String {
    let config = sim.config();
    let answer: Value = token(sim, config.tenant.as_deref(), &config.client_secret).await.json().await.unwrap_or_default();
    format!("Bearer {}", answer["access_token"].as_str().unwrap_or_default())
}

async fn get(sim: &HaloSimHandle, auth: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("Authorization", auth)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(sim: &HaloSimHandle, auth: &str, path: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("Authorization", auth)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn started(config: HaloSimConfig) -> HaloSimHandle {
    HaloSim::start(config).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_hosted_instance_needs_its_tenant_and_the_right_secret() {
    let sim = started(HaloSimConfig::hosted()).await;
    let secret = sim.config().client_secret;
    assert_eq!(token(&sim, None, &secret).await.status(), 400, "no tenant");
    assert_eq!(token(&sim, Some("other"), &secret).await.status(), 400, "another tenant");
    assert_eq!(token(&sim, Some("vigilsim"), "wrong").await.status(), 401);
    let ok: Value = token(&sim, Some("vigilsim"), &secret).await.json().await.unwrap_or_default();
    assert_eq!((ok["token_type"].clone(), ok["expires_in"].clone()), (json!("Bearer"), json!(3600)));
    let self_hosted = started(HaloSimConfig::self_hosted()).await;
    assert_eq!(token(&self_hosted, None, &secret).await.status(), 200);
}

#[tokio::test]
async fn tokens_expire_with_the_clock_or_the_control_route() {
    let sim = started(HaloSimConfig::hosted()).await;
    let auth = bearer(&sim).await;
    assert_eq!(get(&sim, &auth, "/api/Status").await.0, 200);
    assert_eq!(get(&sim, "Bearer nonsense", "/api/Status").await.0, 401);
    sim.advance_clock(Duration::from_secs(3601));
    assert_eq!(get(&sim, &auth, "/api/Status").await.0, 401, "expired");
    let fresh = bearer(&sim).await;
    let resp = reqwest::Client::new().post(format!("{}/_sim/tokens/expire", sim.base_url())).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(get(&sim, &fresh, "/api/Status").await.0, 401);
    assert!(sim.requests().iter().any(|r| r.operation == "unauthorized"));
}

#[tokio::test]
async fn tickets_come_only_as_arrays_and_lists_page_by_record_count() {
    let sim = started(HaloSimConfig::self_hosted()).await;
    let auth = bearer(&sim).await;
    let (status, body) = post(&sim, &auth, "/api/Tickets", &json!({"summary": "x", "client_id": CONTOSO_CLIENT_ID})).await;
    assert_eq!(status, 400);
    assert!(body["body"].as_str().unwrap_or_default().contains("array"));
    let (status, body) =
        post(&sim, &auth, "/api/Tickets", &json!([{"summary": "x", "client_id": CONTOSO_CLIENT_ID, "status_id": 77}])).await;
    assert_eq!((status, body.get("[0].status_id").is_some()), (400, true), "{body}");
    let many: Vec<Value> = (0..5).map(|i| json!({"summary": format!("t{i}"), "client_id": CONTOSO_CLIENT_ID})).collect();
    let (status, body) = post(&sim, &auth, "/api/Tickets", &Value::Array(many)).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(5)), "several elements answer an array");
    let (_, page) = get(&sim, &auth, "/api/Tickets?pageinate=true&page_size=2&page_no=3").await;
    assert_eq!(page["record_count"], 5);
    assert_eq!(page["tickets"].as_array().map(Vec::len), Some(1));
    let (_, all) = get(&sim, &auth, "/api/Tickets").await;
    assert_eq!(all["tickets"].as_array().map(Vec::len), Some(5), "unpaged: everything");
}

#[tokio::test]
async fn a_technicians_close_logs_an_action_and_marks_the_ticket_closed() {
    let sim = started(HaloSimConfig::hosted()).await;
    let auth = bearer(&sim).await;
    let (_, ticket) = post(&sim, &auth, "/api/Tickets", &json!([{"summary": "x", "client_id": CONTOSO_CLIENT_ID}])).await;
    let id = ticket["id"].as_i64().unwrap_or_default();
    sim.close_ticket(id, "jsmith").unwrap_or_else(|e| panic!("{e}"));
    let (_, item) = get(&sim, &auth, &format!("/api/Tickets/{id}")).await;
    assert_eq!((item["status_id"].clone(), item["hasbeenclosed"].clone()), (json!(CLOSED_STATUS_ID), json!(true)));
    let (_, actions) = get(&sim, &auth, &format!("/api/Actions?ticket_id={id}")).await;
    assert_eq!(actions["actions"][0]["who"], "jsmith");
    assert_eq!(actions["actions"][0]["new_status"], CLOSED_STATUS_ID);
    sim.delete_ticket(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(&sim, &auth, &format!("/api/Tickets/{id}")).await.0, 404);
}
