//! The webhook receiver's contract on in-memory adapters: only a notification carrying the
//! tenant's own `Webhook-AuthID` is enqueued, as one fetch job per content type; everything else
//! is refused with problem+json and enqueues nothing. Items are read as the live service sends
//! them (no `tenantId`: the authenticated address says whose they are); a foreign or unusable
//! item is refused on its own, counted by reason, and the rest of the batch is still enqueued.
//! Ends with the whole loop against the Microsoft 365 simulator: subscription start with
//! validation, then notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::error::SourceError;
use vigil::ids::{ContentType, MspId, TenantId};
use vigil::memory::{MemoryConfigStore, MemoryQueue};
use vigil::messages::PollJob;
use vigil::ports::{ConfigStore, SubscriptionManager, WebhookRegistration};
use vigil::secret::SecretString;
use vigil::tenant::{M365AppCredentials, Tenant};
use vigil_simulators::m365::M365Sim;
use webhook_receiver::{AppState, app, webhook_auth_hash};

const TENANT_A: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const TENANT_B: &str = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const TENANT_NO_HOOK: &str = "0f0e0d0c-0b0a-4909-8807-060504030201";
const AUTH_A: &str = "auth-id-of-tenant-a";
const AUTH_B: &str = "auth-id-of-tenant-b";

struct Receiver {
    state: AppState,
    queue: Arc<MemoryQueue>,
}

fn tenant(tenant_id: &str, auth_id: Option<&str>) -> Tenant {
    Tenant {
        msp_id: MspId::parse("acme").unwrap(),
        tenant_id: TenantId::parse(tenant_id).unwrap(),
        name: "Customer".into(),
        domains: vec![],
        break_glass_accounts: vec![],
        company_links: Default::default(),
        legacy_connectwise_company_id: None,
        m365_credentials_set: true,
        credentials_from_msp_app: false,
        webhook_auth_hash: auth_id.map(webhook_auth_hash),
        webhook_registered: auth_id.is_some(),
        offboarded_at: None,
        streams: None,
        created_at: Utc::now(),
    }
}

async fn receiver() -> Receiver {
    let config = Arc::new(MemoryConfigStore::default());
    config.create_tenant(&tenant(TENANT_A, Some(AUTH_A))).await.unwrap();
    config.create_tenant(&tenant(TENANT_B, Some(AUTH_B))).await.unwrap();
    config.create_tenant(&tenant(TENANT_NO_HOOK, None)).await.unwrap();
    let queue = Arc::new(MemoryQueue::default());
    let callbacks = webhook_receiver::psa_callbacks::CallbackState {
        destinations: config.clone(),
        systems: Arc::new(vigil::memory::MemoryTicketSystemProvider::default()),
        tickets: Arc::new(MemoryQueue::default()),
    };
    Receiver { state: AppState { config, poll_jobs: queue.clone(), callbacks }, queue }
}

impl Receiver {
    async fn post(&self, path: &str, auth_id: Option<&str>, content_type: &str, body: &str) -> (StatusCode, String, String) {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, content_type);
        if let Some(auth_id) = auth_id {
            request = request.header("Webhook-AuthID", auth_id);
        }
        let response = app(self.state.clone()).oneshot(request.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
        let status = response.status();
        let kind = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (status, kind, body)
    }

    async fn notify(&self, tenant_id: &str, auth_id: Option<&str>, body: &str) -> (StatusCode, String, String) {
        self.post(&format!("/webhooks/o365/acme/{tenant_id}"), auth_id, "application/json; utf-8", body).await
    }

    fn jobs(&self) -> Vec<PollJob> {
        self.queue.drain().iter().map(|body| serde_json::from_str(body).unwrap()).collect()
    }
}

fn item(tenant_id: &str, content_type: &str, content_id: &str) -> Value {
    json!({
        "tenantId": tenant_id,
        "clientId": "1b2c3d4e-aaaa-bbbb-cccc-0123456789ab",
        "contentType": content_type,
        "contentId": content_id,
        "contentUri": format!("https://manage.office.com/api/v1.0/{tenant_id}/activity/feed/audit/{content_id}"),
        "contentCreated": "2026-01-05T10:15:00.123Z",
        "contentExpiration": "2026-01-12T10:15:00.123Z",
    })
}

/// An item as the live service sends it: no `tenantId`, no `clientId`.
fn live_item(content_type: &str, content_id: &str, status: &str) -> Value {
    json!({
        "contentType": content_type,
        "contentId": content_id,
        "contentUri": format!("https://manage.office.com/api/v1.0/{TENANT_A}/activity/feed/audit/{content_id}"),
        "notificationStatus": status,
        "contentCreated": "2026-01-05T10:15:00.123Z",
        "notificationSent": "2026-01-05T10:16:02.456Z",
        "contentExpiration": "2026-01-12T10:15:00.123Z",
    })
}

/// The content ids of the fetch jobs, by content type, all for `acme` and tenant A.
fn enqueued_for_tenant_a(jobs: Vec<PollJob>) -> Vec<(ContentType, Vec<String>)> {
    jobs.into_iter()
        .map(|job| {
            let PollJob::Fetch { msp_id, tenant_id, content_type, blobs } = job else { panic!("not a fetch job") };
            assert_eq!((msp_id.as_str(), tenant_id.as_str()), ("acme", TENANT_A));
            (content_type, blobs.into_iter().map(|b| b.content_id).collect())
        })
        .collect()
}

fn assert_problem(status: StatusCode, kind: &str, body: &str, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(kind, "application/problem+json");
    let problem: Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["status"], expected.as_u16());
    assert!(!body.contains(AUTH_A) && !body.contains(AUTH_B), "no secret in a problem: {body}");
}

#[tokio::test]
async fn a_notification_with_the_right_auth_id_becomes_one_fetch_job_per_content_type() {
    let receiver = receiver().await;
    let body = json!([
        item(TENANT_A, "Audit.Exchange", "20260105$ex$1"),
        item(TENANT_A, "Audit.General", "20260105$gen$1"),
        // Upper-case tenant id and content type: still this tenant's.
        item(&TENANT_A.to_ascii_uppercase(), "audit.exchange", "20260105$ex$2"),
        // Duplicated in the same notification.
        item(TENANT_A, "Audit.Exchange", "20260105$ex$1"),
    ])
    .to_string();
    let (status, _, response) = receiver.notify(TENANT_A, Some(AUTH_A), &body).await;
    assert_eq!(status, StatusCode::OK, "{response}");

    let jobs = receiver.jobs();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let created: DateTime<Utc> = "2026-01-05T10:15:00.123Z".parse().unwrap();
    for job in jobs {
        let PollJob::Fetch { msp_id, tenant_id, content_type, blobs } = job else { panic!("not a fetch job") };
        assert_eq!((msp_id.as_str(), tenant_id.as_str()), ("acme", TENANT_A));
        let ids: Vec<&str> = blobs.iter().map(|b| b.content_id.as_str()).collect();
        match content_type {
            ContentType::Exchange => assert_eq!(ids, ["20260105$ex$1", "20260105$ex$2"]),
            ContentType::General => assert_eq!(ids, ["20260105$gen$1"]),
            other => panic!("unexpected {other}"),
        }
        assert!(blobs.iter().all(|b| b.content_created == created && b.content_uri.ends_with(&b.content_id)));
    }
}

#[tokio::test]
async fn the_validation_handshake_is_answered_and_enqueues_nothing() {
    let receiver = receiver().await;
    let (status, _, body) = receiver
        .post(
            &format!("/webhooks/o365/acme/{TENANT_A}"),
            Some(AUTH_A),
            "application/json; charset=utf-8",
            r#"{"validationCode":"3c0a5b1e9f"}"#,
        )
        .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    assert!(receiver.jobs().is_empty());
}

#[tokio::test]
async fn a_wrong_or_missing_auth_id_is_refused_and_enqueues_nothing() {
    let receiver = receiver().await;
    let body = json!([item(TENANT_A, "Audit.Exchange", "c1")]).to_string();
    for auth_id in [None, Some(""), Some("guess"), Some(&AUTH_A[..AUTH_A.len() - 1]), Some(AUTH_B)] {
        let (status, kind, response) = receiver.notify(TENANT_A, auth_id, &body).await;
        assert_problem(status, &kind, &response, StatusCode::UNAUTHORIZED);
    }
    // Validation messages are authenticated the same way.
    let (status, kind, response) = receiver.notify(TENANT_A, Some(AUTH_B), r#"{"validationCode":"x"}"#).await;
    assert_problem(status, &kind, &response, StatusCode::UNAUTHORIZED);
    // A tenant without a registered webhook accepts nothing, whatever is sent.
    let (status, kind, response) = receiver.notify(TENANT_NO_HOOK, Some(AUTH_A), &body).await;
    assert_problem(status, &kind, &response, StatusCode::UNAUTHORIZED);
    let (status, kind, response) = receiver.notify(TENANT_NO_HOOK, None, &body).await;
    assert_problem(status, &kind, &response, StatusCode::UNAUTHORIZED);
    // Authentication comes before the body is read: a forger cannot probe the parser.
    let (status, kind, response) = receiver.notify(TENANT_A, Some("guess"), "not json").await;
    assert_problem(status, &kind, &response, StatusCode::UNAUTHORIZED);
    assert!(receiver.jobs().is_empty());
}

#[tokio::test]
async fn items_for_another_tenant_or_of_unknown_content_types_are_dropped() {
    let receiver = receiver().await;
    let mut incomplete = item(TENANT_A, "Audit.General", "no-date");
    incomplete["contentCreated"] = json!("soon");
    let body = json!([
        item(TENANT_B, "Audit.Exchange", "other-tenant"),
        item(TENANT_A, "Audit.Bogus", "bogus"),
        json!({"tenantId": TENANT_A, "contentType": "Audit.General"}),
        incomplete,
        json!("not an object"),
        item(TENANT_A, "DLP.All", "mine"),
    ])
    .to_string();
    let (status, _, _) = receiver.notify(TENANT_A, Some(AUTH_A), &body).await;
    assert_eq!(status, StatusCode::OK);
    let jobs = receiver.jobs();
    assert_eq!(jobs.len(), 1);
    let PollJob::Fetch { content_type, blobs, .. } = &jobs[0] else { panic!("not a fetch job") };
    assert_eq!(*content_type, ContentType::Dlp);
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].content_id, "mine");

    // Only foreign items: accepted, nothing to do.
    let body = json!([item(TENANT_B, "Audit.Exchange", "other-tenant")]).to_string();
    let (status, _, _) = receiver.notify(TENANT_A, Some(AUTH_A), &body).await;
    assert_eq!(status, StatusCode::OK);
    assert!(receiver.jobs().is_empty());
}

#[tokio::test]
async fn an_item_without_tenant_id_is_enqueued_for_the_tenant_the_authenticated_address_names() {
    let receiver = receiver().await;
    // A captured live body: Microsoft's own casing of SharePoint, no tenantId, no clientId.
    let body =
        json!([live_item("Audit.Sharepoint", "20260105$sp$1", "Succeeded"), live_item("Audit.Exchange", "20260105$ex$1", "Succeeded")]);
    let (status, _, response) = receiver.notify(TENANT_A, Some(AUTH_A), &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let summary: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(summary, json!({"received": 2, "enqueued": 2, "duplicates": 0, "dropped": {}}));
    let mut enqueued = enqueued_for_tenant_a(receiver.jobs());
    enqueued.sort();
    assert_eq!(
        enqueued,
        [(ContentType::Exchange, vec!["20260105$ex$1".to_owned()]), (ContentType::SharePoint, vec!["20260105$sp$1".to_owned()])]
    );

    // A blank or null tenantId says nothing either.
    let mut blank = live_item("Audit.General", "blank", "Succeeded");
    blank["tenantId"] = json!(" ");
    let mut unset = live_item("Audit.General", "null", "Succeeded");
    unset["tenantId"] = Value::Null;
    let (status, _, response) = receiver.notify(TENANT_A, Some(AUTH_A), &json!([blank, unset]).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&response).unwrap()["enqueued"], 2, "{response}");
    assert_eq!(enqueued_for_tenant_a(receiver.jobs()), [(ContentType::General, vec!["blank".to_owned(), "null".to_owned()])]);
}

#[tokio::test]
async fn an_item_naming_another_tenant_is_refused_and_counted_while_the_rest_is_enqueued() {
    let receiver = receiver().await;
    let body = json!([
        item(TENANT_B, "Audit.Exchange", "of-tenant-b"),
        live_item("Audit.Exchange", "ours", "Succeeded"),
        item(&TENANT_A.to_ascii_uppercase(), "Audit.Exchange", "ours-documented-shape"),
    ]);
    let (status, _, response) = receiver.notify(TENANT_A, Some(AUTH_A), &body.to_string()).await;
    // 200: a retry of the same body could never succeed and would end with the webhook disabled.
    assert_eq!(status, StatusCode::OK, "{response}");
    let summary: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(summary["dropped"], json!({"foreign_tenant": 1}));
    assert_eq!((summary["received"].as_u64(), summary["enqueued"].as_u64()), (Some(3), Some(2)));
    assert_eq!(
        enqueued_for_tenant_a(receiver.jobs()),
        [(ContentType::Exchange, vec!["ours".to_owned(), "ours-documented-shape".to_owned()])]
    );
}

#[tokio::test]
async fn an_item_whose_notification_status_is_failed_is_still_processed() {
    let receiver = receiver().await;
    let body = json!([live_item("Audit.General", "after-a-failed-delivery", "Failed")]);
    let (status, _, response) = receiver.notify(TENANT_A, Some(AUTH_A), &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(enqueued_for_tenant_a(receiver.jobs()), [(ContentType::General, vec!["after-a-failed-delivery".to_owned()])]);
}

#[tokio::test]
async fn unusable_items_are_counted_by_reason_and_the_rest_of_the_batch_is_still_enqueued() {
    let receiver = receiver().await;
    let without = |field: &str, content_id: &str| {
        let mut item = live_item("Audit.General", content_id, "Succeeded");
        item.as_object_mut().unwrap().remove(field);
        item
    };
    let with = |field: &str, value: Value, content_id: &str| {
        let mut item = live_item("Audit.General", content_id, "Succeeded");
        item[field] = value;
        item
    };
    let body = json!([
        without("contentId", "no-id"),
        with("contentId", json!(""), "empty-id"),
        without("contentUri", "no-uri"),
        with("contentUri", json!(42), "numeric-uri"),
        with("contentCreated", json!("yesterday"), "bad-time"),
        without("contentCreated", "no-time"),
        without("contentType", "no-type"),
        with("contentType", json!("Audit.Bogus"), "bogus-type"),
        json!("not an object"),
        live_item("Audit.General", "good-1", "Succeeded"),
        live_item("Audit.General", "good-1", "Succeeded"),
        live_item("DLP.All", "good-2", "Failed"),
    ]);
    let (status, _, response) = receiver.notify(TENANT_A, Some(AUTH_A), &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let summary: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(
        summary,
        json!({
            "received": 12,
            "enqueued": 2,
            "duplicates": 1,
            "dropped": {
                "missing_content_id": 2,
                "missing_content_uri": 2,
                "invalid_content_created": 2,
                "missing_content_type": 1,
                "unknown_content_type": 1,
                "not_an_object": 1,
            },
        })
    );
    let mut enqueued = enqueued_for_tenant_a(receiver.jobs());
    enqueued.sort();
    assert_eq!(enqueued, [(ContentType::General, vec!["good-1".to_owned()]), (ContentType::Dlp, vec!["good-2".to_owned()])]);

    // Nothing usable at all: still 200 (nothing a retry could fix), nothing enqueued.
    let body = json!([without("contentId", "no-id"), item(TENANT_B, "Audit.Exchange", "of-tenant-b")]);
    let (status, _, response) = receiver.notify(TENANT_A, Some(AUTH_A), &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(serde_json::from_str::<Value>(&response).unwrap()["dropped"], json!({"missing_content_id": 1, "foreign_tenant": 1}));
    assert!(receiver.jobs().is_empty());
}

#[tokio::test]
async fn a_malformed_body_is_a_bad_request_after_authentication() {
    let receiver = receiver().await;
    for body in ["not json", "", "{\"hello\":1}", "42", "\"text\""] {
        let (status, kind, response) = receiver.notify(TENANT_A, Some(AUTH_A), body).await;
        assert_problem(status, &kind, &response, StatusCode::BAD_REQUEST);
    }
    assert!(receiver.jobs().is_empty());
}

#[tokio::test]
async fn unknown_tenants_are_unauthorized_like_a_wrong_auth_id_and_unknown_routes_are_not_found() {
    let receiver = receiver().await;
    let body = json!([item(TENANT_A, "Audit.Exchange", "c1")]).to_string();
    for path in [
        "/webhooks/o365/other/5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11".to_owned(),
        "/webhooks/o365/acme/11111111-2222-4333-8444-555555555555".to_owned(),
        format!("/webhooks/o365/ACME/{TENANT_A}"),
        "/webhooks/o365/acme/not-a-guid".to_owned(),
    ] {
        let (status, kind, response) = receiver.post(&path, Some(AUTH_A), "application/json", &body).await;
        assert_problem(status, &kind, &response, StatusCode::UNAUTHORIZED);
    }
    let (status, kind, response) = receiver.post("/webhooks/o365", Some(AUTH_A), "application/json", &body).await;
    assert_problem(status, &kind, &response, StatusCode::NOT_FOUND);
    assert!(receiver.jobs().is_empty());
    let health = app(receiver.state.clone()).oneshot(Request::get("/webhooks/health").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// Polls the queue until a job arrives (the simulator notifies in the background).
async fn next_jobs(queue: &MemoryQueue) -> Vec<PollJob> {
    for _ in 0..200 {
        let sent = queue.drain();
        if !sent.is_empty() {
            return sent.iter().map(|body| serde_json::from_str(body).unwrap()).collect();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no job was enqueued");
}

#[tokio::test]
async fn the_simulator_validates_and_notifies_a_served_receiver() {
    const CLIENT_ID: &str = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6";
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT_A, CLIENT_ID, "s3cret");
    let receiver = receiver().await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let served = app(receiver.state.clone());
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });

    let client = ManagementActivityClient::new(
        vigil::connectors::http_client().unwrap(),
        M365Endpoints { login_base: sim.login_base(), management_base: sim.management_base() },
        "aaaa0000-bb11-2222-33cc-444444dddddd".into(),
    );
    let tenant_id = TenantId::parse(TENANT_A).unwrap();
    let credentials = M365AppCredentials::new(CLIENT_ID, SecretString::new("s3cret"));
    let address = format!("{base}/webhooks/o365/acme/{TENANT_A}");
    let registration = WebhookRegistration { address: address.clone(), auth_id: SecretString::new(AUTH_A) };

    // Start with the webhook: the simulator's validation POST reaches the receiver and passes.
    client.start_subscription(&tenant_id, &credentials, ContentType::Exchange, Some(&registration)).await.unwrap();
    let subscription = sim.subscription(TENANT_A, "Audit.Exchange").unwrap();
    assert_eq!(subscription["webhook"]["address"], address.as_str());
    assert_eq!(subscription["webhook"]["status"], "enabled");
    assert!(receiver.jobs().is_empty(), "validation enqueues nothing");
    // Again: already enabled (AF20024) is success.
    client.start_subscription(&tenant_id, &credentials, ContentType::Exchange, Some(&registration)).await.unwrap();

    // A registration whose authId the receiver does not know fails validation: AF20021.
    let wrong = WebhookRegistration { address: address.clone(), auth_id: SecretString::new("not-the-stored-one") };
    let error = client.start_subscription(&tenant_id, &credentials, ContentType::General, Some(&wrong)).await.unwrap_err();
    assert!(matches!(&error, SourceError::Rejected { code, .. } if code == "AF20021"), "{error:?}");
    assert!(!error.to_string().contains("not-the-stored-one"));
    assert_eq!(sim.subscription(TENANT_A, "Audit.General"), None);

    // A new blob is notified and becomes a fetch job.
    let content_id = sim.add_records(TENANT_A, "Audit.Exchange", vec![json!({"Id": "r1"})]);
    let jobs = next_jobs(&receiver.queue).await;
    let [PollJob::Fetch { msp_id, tenant_id: job_tenant, content_type, blobs }] = jobs.as_slice() else { panic!("{jobs:?}") };
    assert_eq!((msp_id.as_str(), job_tenant, *content_type), ("acme", &tenant_id, ContentType::Exchange));
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].content_id, content_id);
    assert!(blobs[0].content_uri.starts_with(&sim.management_base()));

    // A forged notification (right shape, wrong AuthID) is refused and enqueues nothing.
    let item = sim.notification_item(TENANT_A, &content_id).unwrap();
    sim.send_notification_now(TENANT_A, "Audit.Exchange", vec![item], Some("forged"));
    for _ in 0..200 {
        if sim.webhook_deliveries().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let deliveries = sim.webhook_deliveries();
    assert_eq!(deliveries.iter().map(|d| d.status).collect::<Vec<_>>(), [Some(200), Some(401)]);
    assert!(receiver.jobs().is_empty());
    sim.shutdown().await;
}
