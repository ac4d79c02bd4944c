//! Webhooks of the Microsoft 365 simulator: the validation handshake during `subscriptions/start`,
//! notifications for new blobs, retries and disabling, and hand-made notifications. The webhook
//! is a tiny axum listener on `127.0.0.1` that records what it receives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigil_simulators::m365::{M365Sim, M365SimHandle};
use vigil_simulators::webhooks::{NOTIFICATION_CONTENT_TYPE, WebhookDelivery};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const CLIENT_ID: &str = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6";
const SECRET: &str = "s3cr3t~value";
const PUBLISHER: &str = "aaaa0000-bb11-2222-33cc-444444dddddd";

/// One POST the listener received.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Value,
}

/// A webhook endpoint on `127.0.0.1` that answers a configurable status.
#[derive(Clone)]
struct Listener {
    address: String,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Listener {
    async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let state = (Arc::clone(&received), Arc::clone(&status));
        let app = Router::new().route("/hook", post(record)).with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let address = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, received, status }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn notifications(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.body.is_array()).collect()
    }
}

type ListenerState = (Arc<Mutex<Vec<Received>>>, Arc<AtomicU16>);

async fn record(State((received, status)): State<ListenerState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    received.lock().unwrap().push(Received { headers, body });
    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
}

async fn sim() -> M365SimHandle {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT, CLIENT_ID, SECRET);
    sim
}

async fn token(sim: &M365SimHandle) -> String {
    let response: Value = reqwest::Client::new()
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sim.login_base()))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://manage.office.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"].as_str().unwrap().to_owned()
}

/// `subscriptions/start` with an optional body; returns the status and the JSON body.
async fn start(sim: &M365SimHandle, token: &str, content_type: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1.0/{TENANT}/activity/feed/subscriptions/start", sim.management_base()))
        .bearer_auth(token)
        .query(&[("contentType", content_type), ("PublisherIdentifier", PUBLISHER)]);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn hook(address: &str, auth_id: &str) -> Value {
    json!({ "webhook": { "address": address, "authId": auth_id, "expiration": "" } })
}

/// Waits until the simulator has recorded at least `count` deliveries.
async fn deliveries(sim: &M365SimHandle, count: usize) -> Vec<WebhookDelivery> {
    for _ in 0..200 {
        let deliveries = sim.webhook_deliveries();
        if deliveries.len() >= count {
            return deliveries;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {count} deliveries, got {:?}", sim.webhook_deliveries());
}

#[tokio::test]
async fn start_validates_the_webhook_and_the_subscription_shows_it() {
    let sim = sim().await;
    let listener = Listener::start().await;
    let token = token(&sim).await;

    let (status, body) = start(&sim, &token, "Audit.General", Some(hook(&listener.address, "auth-1"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "enabled");
    assert_eq!(body["webhook"], json!({ "status": "enabled", "address": listener.address, "authId": "auth-1", "expiration": null }));
    assert_eq!(sim.subscription(TENANT, "Audit.General").unwrap()["webhook"]["status"], "enabled");

    let received = listener.received();
    assert_eq!(received.len(), 1, "exactly one validation POST");
    let validation = &received[0];
    let code = validation.headers["webhook-validationcode"].to_str().unwrap();
    assert!(!code.is_empty());
    assert_eq!(validation.body, json!({ "validationCode": code }));
    assert_eq!(validation.headers["webhook-authid"], "auth-1");

    // Same webhook again: nothing changes (AF20024), no second validation.
    let (status, body) = start(&sim, &token, "Audit.General", Some(hook(&listener.address, "auth-1"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("AF20024")));
    assert_eq!(listener.received().len(), 1);

    // A different webhook on the enabled subscription: validated again, then updated.
    let (status, body) = start(&sim, &token, "Audit.General", Some(hook(&listener.address, "auth-2"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhook"]["authId"], "auth-2");
    assert_eq!(listener.received().len(), 2);
    assert_eq!(listener.received()[1].headers["webhook-authid"], "auth-2");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_webhook_that_does_not_answer_200_fails_the_start_with_af20021() {
    let sim = sim().await;
    let listener = Listener::start().await;
    let token = token(&sim).await;

    listener.answer(401);
    let (status, body) = start(&sim, &token, "Audit.Exchange", Some(hook(&listener.address, "a"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("AF20021")));
    assert!(!body.to_string().contains("\"a\""), "the authId is not echoed: {body}");
    assert_eq!(sim.subscription(TENANT, "Audit.Exchange"), None, "the subscription is not created");
    assert!(sim.subscriptions(TENANT).is_empty());

    // Nothing listening.
    let closed = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/hook", socket.local_addr().unwrap().port())
    };
    let (status, body) = start(&sim, &token, "Audit.Exchange", Some(hook(&closed, "a"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("AF20021")));

    // Not http(s): refused without a validation attempt.
    let before = listener.received().len();
    let (status, body) = start(&sim, &token, "Audit.Exchange", Some(hook("ftp://127.0.0.1/hook", "a"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("AF20021")));
    let past = (Utc::now() - TimeDelta::hours(1)).to_rfc3339();
    let expired = json!({ "webhook": { "address": listener.address, "expiration": past } });
    let (status, body) = start(&sim, &token, "Audit.Exchange", Some(expired)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("AF20003")));
    assert_eq!(listener.received().len(), before);

    // An existing subscription keeps its webhook when an update fails validation.
    listener.answer(200);
    assert_eq!(start(&sim, &token, "Audit.Exchange", Some(hook(&listener.address, "good"))).await.0, 200);
    listener.answer(500);
    let (status, _) = start(&sim, &token, "Audit.Exchange", Some(hook(&listener.address, "other"))).await;
    assert_eq!(status, 400);
    let subscription = sim.subscription(TENANT, "Audit.Exchange").unwrap();
    assert_eq!(subscription["webhook"]["authId"], "good");
    sim.shutdown().await;
}

#[tokio::test]
async fn new_blobs_are_notified_with_microsofts_headers_and_fields() {
    let sim = sim().await;
    let listener = Listener::start().await;
    let token = token(&sim).await;
    assert_eq!(start(&sim, &token, "Audit.Exchange", Some(hook(&listener.address, "auth-x"))).await.0, 200);
    assert_eq!(start(&sim, &token, "Audit.SharePoint", None).await.0, 200);

    let first = sim.add_records(TENANT, "Audit.Exchange", vec![json!({"Id": "r1"})]);
    let second = sim.add_records_at(TENANT, "Audit.Exchange", Utc::now() - TimeDelta::minutes(5), vec![json!({"Id": "r2"})]);
    let third = sim.add_raw_blob(TENANT, "Audit.Exchange", "not json");
    // No webhook on this subscription, and no subscription at all for DLP: no notification.
    sim.add_records(TENANT, "Audit.SharePoint", vec![json!({"Id": "r3"})]);
    sim.add_records(TENANT, "DLP.All", vec![json!({"Id": "r4"})]);

    let deliveries = deliveries(&sim, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.webhook_deliveries().len(), 3, "only the Exchange blobs are notified");
    let mut notified: Vec<String> = deliveries.iter().flat_map(|d| d.content_ids.clone()).collect();
    notified.sort();
    let mut expected = vec![first.clone(), second, third];
    expected.sort();
    assert_eq!(notified, expected);
    assert!(deliveries.iter().all(|d| d.succeeded() && d.attempt == 1 && !d.manual && d.address == listener.address));

    let notifications = listener.notifications();
    assert_eq!(notifications.len(), 3);
    let first_notification = notifications.iter().find(|n| n.body[0]["contentId"] == first.as_str()).unwrap();
    assert_eq!(first_notification.headers["content-type"], NOTIFICATION_CONTENT_TYPE);
    assert_eq!(first_notification.headers["webhook-authid"], "auth-x");
    let item = &first_notification.body[0];
    assert_eq!(first_notification.body.as_array().unwrap().len(), 1);
    // As the live service sends them: no tenantId or clientId (the address says whose it is).
    let mut fields: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["contentCreated", "contentExpiration", "contentId", "contentType", "contentUri", "notificationSent", "notificationStatus"]
    );
    assert_eq!(item["contentType"], "Audit.Exchange");
    assert_eq!(item["notificationStatus"], "Succeeded", "a first try");
    assert!(item["contentUri"].as_str().unwrap().ends_with(&format!("/activity/feed/audit/{first}")));
    for time in ["contentCreated", "contentExpiration", "notificationSent"] {
        assert!(item[time].as_str().unwrap().ends_with('Z'), "{time}: {item}");
    }
    let mut expected_item = sim.notification_item(TENANT, &first).unwrap();
    assert!(expected_item.get("tenantId").is_none() && expected_item.get("clientId").is_none());
    expected_item["notificationStatus"] = item["notificationStatus"].clone();
    expected_item["notificationSent"] = item["notificationSent"].clone();
    assert_eq!(&expected_item, item);
    assert_eq!(
        first_notification.body,
        json!(deliveries.iter().find(|d| d.content_ids == [first.clone()]).unwrap().items),
        "the log keeps what was sent"
    );

    // The notification history of the subscription.
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let history: Value = reqwest::Client::new()
        .get(format!("{}/api/v1.0/{TENANT}/activity/feed/subscriptions/notifications", sim.management_base()))
        .bearer_auth(&token)
        .query(&[
            ("contentType", "Audit.Exchange"),
            ("startTime", &fmt(now - TimeDelta::hours(1))),
            ("endTime", &fmt(now + TimeDelta::hours(1))),
            ("PublisherIdentifier", PUBLISHER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 3);
    assert!(history.as_array().unwrap().iter().all(|h| h["notificationStatus"] == "Succeeded" && h["notificationSent"].is_string()));
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_notifications_are_retried_and_then_disable_the_webhook() {
    let sim = sim().await;
    let listener = Listener::start().await;
    let token = token(&sim).await;
    assert_eq!(start(&sim, &token, "Audit.General", Some(hook(&listener.address, "a"))).await.0, 200);
    listener.answer(503);

    for round in 1..=3 {
        sim.add_records(TENANT, "Audit.General", vec![json!({"Id": format!("r{round}")})]);
        let deliveries = deliveries(&sim, round * 3).await;
        let attempts: Vec<u32> = deliveries[(round - 1) * 3..].iter().map(|d| d.attempt).collect();
        assert_eq!(attempts, vec![1, 2, 3], "one try and two retries");
        assert!(deliveries.iter().all(|d| d.status == Some(503)));
        let statuses: Vec<&Value> = deliveries[(round - 1) * 3..].iter().map(|d| &d.items[0]["notificationStatus"]).collect();
        assert_eq!(statuses, [&json!("Succeeded"), &json!("Failed"), &json!("Failed")], "a retry says the previous try failed");
    }
    assert_eq!(sim.subscription(TENANT, "Audit.General").unwrap()["webhook"]["status"], "disabled");
    assert_eq!(sim.subscription(TENANT, "Audit.General").unwrap()["status"], "enabled", "the subscription itself stays enabled");

    // Disabled: new blobs are not notified.
    sim.add_records(TENANT, "Audit.General", vec![json!({"Id": "r4"})]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.webhook_deliveries().len(), 9);

    // Starting again with the same webhook re-enables it.
    listener.answer(200);
    let (status, body) = start(&sim, &token, "Audit.General", Some(hook(&listener.address, "a"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhook"]["status"], "enabled");
    sim.add_records(TENANT, "Audit.General", vec![json!({"Id": "r5"})]);
    let deliveries = deliveries(&sim, 10).await;
    assert!(deliveries[9].succeeded());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_retry_that_succeeds_resets_the_failure_count() {
    let sim = sim().await;
    let listener = Listener::start().await;
    let token = token(&sim).await;
    assert_eq!(start(&sim, &token, "Audit.General", Some(hook(&listener.address, "a"))).await.0, 200);
    listener.answer(500);
    sim.add_records(TENANT, "Audit.General", vec![json!({"Id": "r1"})]);
    sim.add_records(TENANT, "Audit.General", vec![json!({"Id": "r2"})]);
    deliveries(&sim, 6).await;
    listener.answer(200);
    sim.add_records(TENANT, "Audit.General", vec![json!({"Id": "r3"})]);
    deliveries(&sim, 7).await;
    listener.answer(500);
    sim.add_records(TENANT, "Audit.General", vec![json!({"Id": "r4"})]);
    deliveries(&sim, 10).await;
    assert_eq!(sim.subscription(TENANT, "Audit.General").unwrap()["webhook"]["status"], "enabled", "only 1 consecutive failure");
    sim.shutdown().await;
}

#[tokio::test]
async fn hand_made_notifications_can_be_duplicated_or_forged() {
    let sim = sim().await;
    let listener = Listener::start().await;
    let token = token(&sim).await;
    assert_eq!(start(&sim, &token, "Audit.Exchange", Some(hook(&listener.address, "real"))).await.0, 200);
    let content_id = sim.add_records(TENANT, "Audit.Exchange", vec![json!({"Id": "r1"})]);
    deliveries(&sim, 1).await;
    let item = sim.notification_item(TENANT, &content_id).unwrap();

    sim.send_notification_now(TENANT, "Audit.Exchange", vec![item.clone(), item.clone()], Some("real"));
    sim.send_notification_now(TENANT, "Audit.Exchange", vec![item.clone()], Some("forged"));
    sim.send_notification_now(TENANT, "Audit.Exchange", vec![item.clone()], None);
    let deliveries = deliveries(&sim, 4).await;
    assert!(deliveries[1..].iter().all(|d| d.manual && d.attempt == 1 && d.content_ids.iter().all(|id| *id == content_id)));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let notifications = listener.notifications();
    assert_eq!(notifications.len(), 4);
    let auth_ids: Vec<Option<&str>> = notifications.iter().map(|n| n.headers.get("webhook-authid").map(|v| v.to_str().unwrap())).collect();
    assert!(auth_ids.contains(&Some("forged")));
    assert!(auth_ids.contains(&None));
    assert!(notifications.iter().any(|n| n.body.as_array().unwrap().len() == 2), "the duplicated notification");

    // A hand-made item keeps the notification fields it has: a test can send `Failed`, or the
    // documented shape with tenantId and clientId.
    let mut documented = item.clone();
    documented["tenantId"] = json!(TENANT);
    documented["clientId"] = json!(CLIENT_ID);
    documented["notificationStatus"] = json!("Failed");
    sim.send_notification_now(TENANT, "Audit.Exchange", vec![documented.clone()], Some("real"));
    let sent = crate::deliveries(&sim, 5).await.pop().unwrap();
    assert_eq!(sent.items[0]["notificationStatus"], "Failed");
    assert_eq!((&sent.items[0]["tenantId"], &sent.items[0]["clientId"]), (&json!(TENANT), &json!(CLIENT_ID)));
    assert!(sent.items[0]["notificationSent"].is_string());

    // Without a webhook the attempt is recorded as an error.
    sim.send_notification_now(TENANT, "Audit.General", vec![item], None);
    let last = sim.webhook_deliveries().pop().unwrap();
    assert_eq!((last.address.as_str(), last.status, last.error.is_some()), ("", None, true));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_webhook_microsoft_disabled_lists_as_disabled_and_a_start_with_it_enables_it_again() {
    let sim = sim().await;
    let listener = Listener::start().await;
    let token = token(&sim).await;
    let (status, _) = start(&sim, &token, "Audit.General", Some(hook(&listener.address, "auth-1"))).await;
    assert_eq!(status, 200);
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/tenants/{TENANT}/subscriptions/Audit.General/disable-webhook", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(sim.subscription(TENANT, "Audit.General").unwrap()["webhook"]["status"], "disabled");
    assert_eq!(sim.subscription(TENANT, "Audit.General").unwrap()["status"], "enabled", "the subscription itself is unaffected");
    let (status, body) = start(&sim, &token, "Audit.General", Some(hook(&listener.address, "auth-1"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.subscription(TENANT, "Audit.General").unwrap()["webhook"]["status"], "enabled");
    assert!(!sim.disable_webhook(TENANT, "Audit.Exchange"), "no webhook there");
    sim.shutdown().await;
}
