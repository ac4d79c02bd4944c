//! End to end on the local stack: simulated Microsoft 365 tenant → audit-poller → events queue
//! → alert-evaluator → alerts table + tickets queue → ticket-dispatcher → simulated ConnectWise,
//! all through the real handlers, moto over the wire, and the simulators' wire formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use vigil_simulators::connectwise::{FailureMode, SimOperation};
use vigil_tests::{forwarding_record, in_current_window, onboard, poll_and_settle, record_id, start_stack};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_forwarding_records_in_one_window_become_exactly_one_ticket_with_hit_count_n() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    let n = 25;
    // Spread over several blobs and pages, with a duplicate of each record in a later blob.
    stack.m365.set_page_size(2);
    let records: Vec<Value> = (0..n).map(|i| forwarding_record(TENANT, &record_id(i), in_current_window(i as i64))).collect();
    for chunk in records.chunks(5) {
        stack.m365.add_records(TENANT, "Audit.Exchange", chunk.to_vec());
    }
    stack.m365.add_records(TENANT, "Audit.Exchange", records[..10].to_vec());
    let report = poll_and_settle(&stack).await;
    assert_eq!((report.records_enqueued, report.records_skipped), (n, 10));

    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["hit_count"], n);
    // The queue filtered to the tenant reads the tenant's change index the template creates.
    let of_tenant = msp.call(reqwest::Method::GET, &format!("/v1/alerts?tenant={TENANT}"), None).await.2;
    let ids = |list: &Value| list.as_array().unwrap().iter().map(|a| a["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&of_tenant["alerts"]), vec![alerts[0]["id"].clone()], "the tenant's queue holds its alert");
    let of_other = msp.call(reqwest::Method::GET, "/v1/alerts?tenant=6e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", None).await.2;
    assert_eq!(of_other["alerts"], json!([]), "another tenant's queue does not");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let body = &tickets[0].body;
    assert_eq!(body["company"]["id"], 250);
    assert_eq!(body["board"]["id"], 7);
    assert_eq!(body["priority"]["id"], 1, "external forwarding is High, mapped to the configured priority");
    assert!(body["summary"].as_str().unwrap().chars().count() <= 100);
    assert_eq!(body["externalXRef"], format!("vigil:{}", alerts[0]["id"].as_str().unwrap()));
    assert!(body["initialDescription"].as_str().unwrap().contains("alice@contoso.com"));
    let detail = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{}", alerts[0]["id"].as_str().unwrap()), None).await;
    assert_eq!(detail.2["deliveries"][0]["ticket"], tickets[0].id.to_string());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_the_same_content_again_creates_no_ticket_and_no_note() {
    let stack = start_stack().await;
    onboard(&stack, "acme", TENANT, 250).await;
    let records: Vec<Value> = (0..3).map(|i| forwarding_record(TENANT, &record_id(i), in_current_window(i as i64))).collect();
    stack.m365.add_records(TENANT, "Audit.Exchange", records.clone());
    poll_and_settle(&stack).await;
    let fetched = stack.m365.blob_fetch_count();

    let again = poll_and_settle(&stack).await;
    assert_eq!(again.records_enqueued, 0);
    assert_eq!(stack.m365.blob_fetch_count(), fetched, "a finished blob is not fetched again");
    // Microsoft delivers the same records again in a new blob. Since the first tick, the
    // tenant's subscriptions carry Vigil's webhook, so the blob may be fetched on notification
    // before the tick lists it: count from before it appeared.
    let before = stack.stats.polling();
    stack.m365.add_records(TENANT, "Audit.Exchange", records);
    poll_and_settle(&stack).await;
    let duplicates = vigil_local::stack::report_since(&stack.stats.polling(), &before);
    assert_eq!((duplicates.records_enqueued, duplicates.records_skipped), (0, 3));

    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1);
    assert!(tickets[0].notes.is_empty());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_hits_in_the_window_become_one_note_on_the_same_ticket() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    stack.m365.add_records(
        TENANT,
        "Audit.Exchange",
        vec![
            forwarding_record(TENANT, &record_id(2), in_current_window(2)),
            forwarding_record(TENANT, &record_id(3), in_current_window(3)),
        ],
    );
    poll_and_settle(&stack).await;
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].notes.len(), 1);
    assert!(tickets[0].notes[0]["text"].as_str().unwrap().contains("Hits: 3 (+2"));
    assert_eq!(msp.alerts().await[0]["hit_count"], 3);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise_answering_500_then_201_leaves_exactly_one_ticket() {
    let stack = start_stack().await;
    onboard(&stack, "acme", TENANT, 250).await;
    stack.connectwise.fail_next(SimOperation::CreateTicket, FailureMode::Status(500), 1);
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    assert_eq!(stack.connectwise.tickets().len(), 1);
    assert!(
        stack.mappings["TicketDispatcherFunction"].failures.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "the 500 was seen and retried"
    );
    assert!(stack.peek("TicketsDeadLetterQueue").await.unwrap().is_empty());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_created_but_never_acknowledged_is_recovered_not_duplicated() {
    let stack = start_stack().await;
    onboard(&stack, "acme", TENANT, 250).await;
    // ConnectWise stores the ticket, then the response is lost (500 after commit).
    stack.connectwise.fail_next(SimOperation::CreateTicket, FailureMode::AfterCommit(500), 1);
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    assert_eq!(stack.connectwise.tickets().len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_after_ticket_creation_and_before_the_state_write_leaves_exactly_one_ticket() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    // ConnectWise stores the ticket and holds the answer past the function timeout: the
    // invocation is killed between "ticket created" and "ticket id stored".
    stack.connectwise.fail_next(SimOperation::CreateTicket, FailureMode::HangAfterCommit(30), 1);
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    assert_eq!(
        stack.mappings["TicketDispatcherFunction"].timeouts.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the first invocation was killed"
    );
    assert_eq!(stack.connectwise.tickets().len(), 1);
    let alert_id = msp.alerts().await[0]["id"].as_str().unwrap().to_owned();
    let detail = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{alert_id}"), None).await;
    assert_eq!(detail.2["deliveries"][0]["ticket"], stack.connectwise.tickets()[0].id.to_string(), "the recovered ticket id is stored");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_json_blob_is_dead_lettered_while_the_other_records_flow() {
    let stack = start_stack().await;
    onboard(&stack, "acme", TENANT, 250).await;
    stack.m365.add_raw_blob(TENANT, "Audit.Exchange", "[{\"Id\": \"broken\", \"RecordType\": 1,");
    stack.m365.add_records(
        TENANT,
        "Audit.Exchange",
        vec![forwarding_record(TENANT, &record_id(1), in_current_window(1)), json!({"RecordType": 1, "Operation": "no id"})],
    );
    let report = poll_and_settle(&stack).await;
    assert_eq!((report.records_enqueued, report.quarantined), (1, 2));
    assert_eq!(stack.connectwise.tickets().len(), 1, "the good record still became a ticket");
    let dead = stack.peek("EventsDeadLetterQueue").await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().any(|body| body.contains("not valid JSON") && body.contains("broken")));
    assert!(dead.iter().any(|body| body.contains("no id")));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_events_message_is_redriven_to_the_dlq_after_max_receive_count_without_blocking_others() {
    let stack = start_stack().await;
    onboard(&stack, "acme", TENANT, 250).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let events = &stack.provisioned.queue_urls["EventsQueue"];
    sqs.send_message().queue_url(events).message_body("{\"this is\": \"not an events message\"}").send().await.unwrap();
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    assert_eq!(stack.connectwise.tickets().len(), 1);
    let dead = stack.peek("EventsDeadLetterQueue").await.unwrap();
    assert_eq!(dead, ["{\"this is\": \"not an events message\"}"]);
    assert!(
        stack.mappings["AlertEvaluatorFunction"].failures.load(std::sync::atomic::Ordering::Relaxed) >= 5,
        "retried maxReceiveCount times first"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_api_over_the_wire_answers_bad_requests_with_problem_json() {
    let stack = start_stack().await;
    let acme = onboard(&stack, "acme", TENANT, 250).await;
    let other_token = stack.create_msp("other-msp", "Other").await.unwrap();
    let other =
        vigil_tests::MspClient { http: reqwest::Client::new(), base: stack.api_url.clone(), token: other_token.expose().to_owned() };
    let nobody = vigil_tests::MspClient { http: reqwest::Client::new(), base: stack.api_url.clone(), token: String::new() };
    let cases = [
        (nobody.call(reqwest::Method::GET, "/v1/tenants", None).await, 401),
        (other.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}"), None).await, 404),
        (vigil_tests::link_company(&other, TENANT, vigil_tests::CONNECTWISE, "1").await, 404),
        (acme.call(reqwest::Method::POST, "/v1/tenants", Some(json!({"name": "no id"}))).await, 422),
        (vigil_tests::link_company(&acme, "6e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", vigil_tests::CONNECTWISE, "1").await, 404),
        (acme.call(reqwest::Method::POST, "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "again"}))).await, 409),
    ];
    for (i, (response, status)) in cases.iter().enumerate() {
        assert_eq!(response.0, *status, "case {i}: {response:?}");
        assert_eq!(response.1, "application/problem+json", "case {i}");
    }
    let malformed = reqwest::Client::new()
        .post(format!("{}/v1/tenants", stack.api_url))
        .bearer_auth(&acme.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(other.call(reqwest::Method::GET, "/v1/alerts", None).await.2["alerts"], json!([]));
    let health = reqwest::get(format!("{}/webhooks/health", stack.api_url)).await.unwrap();
    assert_eq!(health.status(), 200);
    stack.shutdown().await;
}
