//! The delivery core end to end on the local stack, with both PSA simulators: routing into
//! ConnectWise and Autotask, the lifecycle both ways (Vigil closes, a technician closes, a hit
//! after a close opens a new ticket, a deleted ticket), failures injected between a PSA's
//! commit and Vigil's record, `Retry-After` honoured, and one PSA's outage not holding back the
//! other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use vigil_local::stack::LocalStack;
use vigil_simulators::autotask::AutotaskOperation;
use vigil_simulators::kit::FailureMode as KitFailure;
use vigil_tests::{MspClient, forwarding_record, in_current_window, link_company, onboard, poll_and_settle, record_id, start_stack};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
/// Autotask's simulated "Contoso Ltd".
const AUTOTASK_COMPANY: &str = "174";
/// Autotask's "Security Operations" queue.
const SECURITY_QUEUE: i64 = 29_683_481;

/// The body of `PUT /v1/destinations/autotask` for the stack's Autotask simulator: threat
/// management alerts and connection problems, into the security queue.
fn autotask_destination(stack: &LocalStack, requests_per_hour: Option<u32>) -> Value {
    let at = stack.autotask.credentials();
    let mut body = json!({
        "name": "Autotask",
        "settings": {"kind": "autotask", "zone_url": stack.autotask.zone_url()},
        "routing": {"categories": ["ThreatManagement", "Others"], "default_place": SECURITY_QUEUE.to_string()},
        "credentials": {"kind": "autotask", "username": at.username, "secret": at.secret, "integration_code": at.integration_code}
    });
    if let Some(share) = requests_per_hour {
        body["requests_per_hour"] = json!(share);
    }
    body
}

/// An MSP with the ConnectWise destination (company 250) and the Autotask one (company 174).
async fn both_psas(stack: &LocalStack) -> MspClient {
    let msp = onboard(stack, "acme", TENANT, 250).await;
    let created = msp.call(reqwest::Method::PUT, "/v1/destinations/autotask", Some(autotask_destination(stack, None))).await;
    assert!((200..300).contains(&created.0), "{created:?}");
    let linked = link_company(&msp, TENANT, "autotask", AUTOTASK_COMPANY).await;
    assert!((200..300).contains(&linked.0), "{linked:?}");
    msp
}

fn autotask_tickets(stack: &LocalStack) -> Vec<vigil_simulators::autotask::SimTicket> {
    stack.autotask.tickets()
}

async fn forward(stack: &LocalStack, ids: std::ops::Range<usize>) {
    let records: Vec<Value> = ids.map(|i| forwarding_record(TENANT, &record_id(i), in_current_window(i as i64))).collect();
    stack.m365.add_records(TENANT, "Audit.Exchange", records);
    poll_and_settle(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_becomes_one_ticket_in_each_psa_whose_routing_takes_it() {
    let stack = start_stack().await;
    let msp = both_psas(&stack).await;
    forward(&stack, 0..3).await;
    let cw = stack.connectwise.tickets();
    let at = autotask_tickets(&stack);
    assert_eq!((cw.len(), at.len()), (1, 1), "{cw:#?}\n{at:#?}");
    assert_eq!(at[0].item["companyID"], 174);
    assert_eq!(at[0].item["queueID"], SECURITY_QUEUE);
    assert!(at[0].item["title"].as_str().unwrap().chars().count() <= 255);
    let alert_id = msp.alerts().await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(at[0].item["externalID"], format!("vigil:{alert_id}"));
    let detail = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{alert_id}"), None).await.2;
    assert_eq!(detail["deliveries"].as_array().map(Vec::len), Some(2), "the alert shows each destination's ticket: {detail:#}");

    // An alert of another category goes to ConnectWise only.
    let elevation = json!({
        "CreationTime": in_current_window(20).format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": record_id(50), "Operation": "Add-RoleGroupMember",
        "OrganizationId": TENANT, "RecordType": 1, "ResultStatus": "True", "UserKey": "1", "UserType": 2, "Version": 1, "Workload": "Exchange",
        "UserId": "admin@contoso.com", "ObjectId": "Organization Management",
        "Parameters": [{"Name": "Identity", "Value": "Organization Management"}, {"Name": "Member", "Value": "mallory@contoso.com"}]
    });
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![elevation]);
    poll_and_settle(&stack).await;
    let permissions = msp.alerts().await.into_iter().filter(|a| a["category"] == "Permissions").count();
    assert_eq!(permissions, 1, "the elevation raised a Permissions alert");
    assert_eq!(stack.connectwise.tickets().len(), 2);
    assert_eq!(autotask_tickets(&stack).len(), 1, "Autotask's routing does not take Permissions alerts");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_completing_the_autotask_ticket_resolves_the_alert_closes_the_other_psas_ticket_and_a_refire_opens_a_new_one() {
    let stack = start_stack().await;
    let msp = both_psas(&stack).await;
    forward(&stack, 0..1).await;
    let first = autotask_tickets(&stack)[0].id;
    stack.autotask.complete_ticket(first, Some(29_682_886)).unwrap();
    let report = stack.read_back().await.unwrap();
    assert_eq!(report.closed, 1, "{report:?}");
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    let alert = &msp.alerts().await[0];
    assert_eq!(alert["status"], "Resolved");
    let detail = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{}", alert["id"].as_str().unwrap()), None).await.2;
    let history = detail["triage"]["history"].to_string();
    assert!(history.contains("Alex Tech"), "the closer is in the alert's history: {history}");
    let cw = &stack.connectwise.tickets()[0];
    assert_eq!(cw.body["closedFlag"], true, "resolving the alert closed its ConnectWise ticket too: {:#}", cw.body);

    forward(&stack, 1..2).await;
    let at = autotask_tickets(&stack);
    assert_eq!(at.len(), 2, "a hit after the close opens a new ticket");
    assert!(
        at[0].notes.iter().all(|n| !n["description"].as_str().unwrap_or_default().contains("matched again")),
        "never a note on the closed one"
    );
    assert!(at[1].item["description"].as_str().unwrap().contains(&format!("#{first}")), "the new ticket names the old: {:#}", at[1].item);
    assert_eq!(stack.connectwise.tickets().len(), 2, "ConnectWise also gets a new ticket, as its old one was closed");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_closing_the_connectwise_ticket_resolves_the_alert_with_the_member_in_its_history() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    forward(&stack, 0..1).await;
    let ticket = stack.connectwise.tickets()[0].id;
    stack.connectwise.close_ticket(ticket, "jsmith", None).unwrap();
    assert_eq!(stack.read_back().await.unwrap().closed, 1);
    let alert = &msp.alerts().await[0];
    assert_eq!(alert["status"], "Resolved");
    let detail = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{}", alert["id"].as_str().unwrap()), None).await.2;
    assert!(detail["triage"]["history"].to_string().contains("jsmith"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_deleted_in_the_psa_is_recorded_and_the_next_hit_opens_a_new_one() {
    let stack = start_stack().await;
    let msp = both_psas(&stack).await;
    forward(&stack, 0..1).await;
    let deleted = autotask_tickets(&stack)[0].id;
    stack.autotask.delete_ticket(deleted).unwrap();
    assert_eq!(stack.read_back().await.unwrap().gone, 1);
    let alert = &msp.alerts().await[0];
    assert_ne!(alert["status"], "Resolved", "a deleted ticket does not resolve the alert");
    forward(&stack, 1..2).await;
    let live: Vec<_> = autotask_tickets(&stack).into_iter().filter(|t| t.id != deleted).collect();
    assert_eq!(live.len(), 1, "the next hit opened a new ticket");
    assert_eq!(stack.peek("TicketsDeadLetterQueue").await.unwrap(), Vec::<String>::new(), "nothing loops into the DLQ");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_response_in_autotask_leaves_exactly_one_ticket() {
    let stack = start_stack().await;
    both_psas(&stack).await;
    stack.autotask.fail_next(AutotaskOperation::CreateTicket, KitFailure::AfterCommit(500), 1);
    forward(&stack, 0..1).await;
    assert_eq!(autotask_tickets(&stack).len(), 1);
    assert_eq!(stack.connectwise.tickets().len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autotask_create_that_hangs_past_the_function_timeout_after_commit_leaves_exactly_one_ticket() {
    let stack = start_stack().await;
    both_psas(&stack).await;
    stack.autotask.fail_next(AutotaskOperation::CreateTicket, KitFailure::HangAfterCommit(30), 1);
    forward(&stack, 0..1).await;
    assert_eq!(autotask_tickets(&stack).len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autotask_note_committed_then_failed_is_not_added_twice() {
    let stack = start_stack().await;
    both_psas(&stack).await;
    forward(&stack, 0..1).await;
    stack.autotask.fail_next(AutotaskOperation::AddNote, KitFailure::AfterCommit(500), 1);
    forward(&stack, 1..3).await;
    let notes = &autotask_tickets(&stack)[0].notes;
    let hits: Vec<_> = notes.iter().filter(|n| n["description"].as_str().unwrap_or_default().contains("matched again")).collect();
    assert_eq!(hits.len(), 1, "{notes:#?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_autotask_create_is_retried_no_sooner_than_its_retry_after() {
    let stack = start_stack().await;
    both_psas(&stack).await;
    stack.autotask.fail_next(AutotaskOperation::CreateTicket, KitFailure::Throttle { retry_after: 4 }, 1);
    forward(&stack, 0..1).await;
    let creates: Vec<_> =
        stack.autotask.requests().into_iter().filter(|r| r.method == "POST" && r.path.to_ascii_lowercase().ends_with("/tickets")).collect();
    assert_eq!(creates.len(), 2, "throttled once, then created: {creates:#?}");
    let waited = (creates[1].timestamp - creates[0].timestamp).num_milliseconds();
    assert!(waited >= 4_000, "the retry came {waited} ms after a Retry-After of 4 s");
    assert_eq!(autotask_tickets(&stack).len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autotask_outage_holds_back_only_autotask_and_its_backlog_is_delivered_once_it_returns() {
    let stack = start_stack().await;
    let msp = both_psas(&stack).await;
    stack.autotask.fail_next(AutotaskOperation::Any, KitFailure::Status(503), 6);
    let records: Vec<Value> = (0..3).map(|i| forwarding_record(TENANT, &record_id(i), in_current_window(i as i64))).collect();
    stack.m365.add_records(TENANT, "Audit.Exchange", records);
    // Content is listed once its second has passed (windows are half-open, one-second resolution).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack.tick().await.unwrap();
    // ConnectWise gets its ticket while Autotask is down.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stack.connectwise.tickets().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stack.connectwise.tickets().len(), 1, "the healthy PSA is not held back");
    stack.wait_idle(Duration::from_secs(90)).await.unwrap();
    assert_eq!(autotask_tickets(&stack).len(), 1, "the backlog is delivered once Autotask is back, once");
    assert_eq!(stack.connectwise.tickets().len(), 1);
    assert_eq!(msp.alerts().await.len(), 1);
    assert_eq!(stack.peek("TicketsDeadLetterQueue").await.unwrap(), Vec::<String>::new(), "an outage sends nothing to the DLQ");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_a_company_link_is_held_and_delivered_when_linked() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    let created = msp.call(reqwest::Method::PUT, "/v1/destinations/autotask", Some(autotask_destination(&stack, None))).await;
    assert!((200..300).contains(&created.0), "{created:?}");
    forward(&stack, 0..1).await;
    assert!(autotask_tickets(&stack).is_empty(), "held: the tenant has no Autotask company yet");
    assert_eq!(stack.connectwise.tickets().len(), 1);
    link_company(&msp, TENANT, "autotask", AUTOTASK_COMPANY).await;
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    assert_eq!(autotask_tickets(&stack).len(), 1, "linking the tenant delivered the held alert");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connectwise_callback_resolves_the_alert_without_waiting_for_the_read_back_and_a_forged_one_is_refused() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    assert_eq!(
        stack.connectwise.callbacks().len(),
        1,
        "saving the destination registered Vigil's callback: {:#?}",
        stack.connectwise.callbacks()
    );
    forward(&stack, 0..1).await;
    let ticket = stack.connectwise.tickets()[0].id;

    let forged = reqwest::Client::new()
        .post(format!("{}/webhooks/psa/acme/connectwise?recordId={ticket}", stack.api_url))
        .header("x-content-signature", "bm90IGEgc2lnbmF0dXJl")
        .json(&json!({"ID": ticket, "Action": "updated", "Type": "ticket", "Metadata": {"key_url": "https://evil.example/key"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "a callback not signed by the destination's PSA is refused");

    stack.connectwise.close_ticket(ticket, "jsmith", None).unwrap();
    stack.connectwise.wait_for_callbacks().await;
    let delivered = stack.connectwise.callback_deliveries();
    assert!(delivered.iter().any(|d| d.status == Some(200)), "the receiver accepted the signed callback: {delivered:#?}");
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    assert_eq!(msp.alerts().await[0]["status"], "Resolved", "the callback made the dispatcher read the ticket back");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connectwise_note_committed_then_failed_is_not_added_twice() {
    let stack = start_stack().await;
    onboard(&stack, "acme", TENANT, 250).await;
    forward(&stack, 0..1).await;
    stack.connectwise.fail_next(
        vigil_simulators::connectwise::SimOperation::AddNote,
        vigil_simulators::connectwise::FailureMode::AfterCommit(500),
        1,
    );
    forward(&stack, 1..3).await;
    let notes = &stack.connectwise.tickets()[0].notes;
    let hits: Vec<_> = notes.iter().filter(|n| n["text"].as_str().unwrap_or_default().contains("matched again")).collect();
    assert_eq!(hits.len(), 1, "{notes:#?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_connectwise_create_is_retried_no_sooner_than_its_retry_after() {
    let stack = start_stack().await;
    onboard(&stack, "acme", TENANT, 250).await;
    // ConnectWise's throttle answers 429 with `Retry-After: 1`.
    stack.connectwise.fail_next(
        vigil_simulators::connectwise::SimOperation::CreateTicket,
        vigil_simulators::connectwise::FailureMode::Throttle,
        1,
    );
    forward(&stack, 0..1).await;
    let creates: Vec<_> =
        stack.connectwise.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/service/tickets")).collect();
    assert_eq!(creates.len(), 2, "throttled once, then created: {creates:#?}");
    let waited = (creates[1].timestamp - creates[0].timestamp).num_milliseconds();
    assert!(waited >= 1_000, "the retry came {waited} ms after a Retry-After of 1 s");
    assert_eq!(stack.connectwise.tickets().len(), 1);
    stack.shutdown().await;
}
