//! Microsoft Graph security alerts (`alerts_v2`) through the whole lifecycle on the local stack
//! (moto, the Microsoft 365 and ConnectWise simulators, every handler): Microsoft resolving an
//! alert resolves Vigil's and closes its ticket through the dispatcher; Microsoft reopening it
//! reopens Vigil's alert and opens a new ticket (a closed ticket is never reused); alerts that
//! arrive resolved or classified false or benign positive open nothing; a tenant's switch-off
//! and a suppression hold Graph alerts back like any other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use vigil_tests::{onboard, poll_and_settle, start_stack};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

fn graph_alert(id: &str, created: DateTime<Utc>, updated: DateTime<Utc>, status: &str) -> Value {
    json!({
        "id": id, "title": "Suspicious inbox forwarding", "severity": "high", "status": status, "category": "Exfiltration",
        "serviceSource": "microsoftDefenderForOffice365", "detectionSource": "microsoftDefenderForOffice365",
        "createdDateTime": created.to_rfc3339(), "lastUpdateDateTime": updated.to_rfc3339(),
    })
}

fn now_s() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

fn ticket_text(ticket: &vigil_simulators::connectwise::SimTicket) -> String {
    format!("{} {}", ticket.body["summary"], ticket.body["initialDescription"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_resolving_a_graph_alert_closes_its_ticket_and_reopening_it_reopens_the_alert_with_a_new_ticket() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let id = "da637551227677560813_-961444813";
    let created = now_s() - Duration::minutes(10);
    stack.m365.add_graph_alert(TENANT, graph_alert(id, created, created + Duration::minutes(1), "new"));
    assert_eq!(poll_and_settle(&stack).await.records_enqueued, 1);
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1);
    let first = tickets[0].id;

    // Microsoft resolves it: Vigil's alert resolves and the dispatcher closes the ticket.
    stack.m365.add_graph_alert(TENANT, graph_alert(id, created, now_s() - Duration::seconds(2), "resolved"));
    assert_eq!(poll_and_settle(&stack).await.records_enqueued, 1);
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!((alerts[0]["status"].as_str(), alerts[0]["hit_count"].as_u64()), (Some("Resolved"), Some(1)), "the resolution is no hit");
    let closed = &stack.connectwise.tickets()[0];
    assert_eq!(closed.body["closedFlag"], true, "Vigil closed the ticket: {:#}", closed.body);
    assert!(closed.notes.iter().any(|n| n["text"].as_str().unwrap_or_default().contains("resolved")), "{:#?}", closed.notes);
    let notes_on_closed = closed.notes.len();

    // Microsoft reopens it (back in progress): Vigil's alert reopens, and as its ticket is
    // closed, a new ticket continues it.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    stack.m365.add_graph_alert(TENANT, graph_alert(id, created, now_s(), "inProgress"));
    assert_eq!(poll_and_settle(&stack).await.records_enqueued, 1);
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "the same Vigil alert: {alerts:#?}");
    assert_eq!((alerts[0]["status"].as_str(), alerts[0]["hit_count"].as_u64()), (Some("New"), Some(2)), "{:#}", alerts[0]);
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 2, "a new ticket, never the closed one: {tickets:#?}");
    assert_eq!(tickets[0].notes.len(), notes_on_closed, "nothing more on the closed ticket");
    assert_eq!(tickets[0].body["closedFlag"], true);
    assert_eq!(tickets[1].body["closedFlag"], false);
    assert!(ticket_text(&tickets[1]).contains(&first.to_string()), "the new ticket names the closed one: {:#}", tickets[1].body);

    // And resolved again: the new ticket closes too.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    stack.m365.add_graph_alert(TENANT, graph_alert(id, created, now_s(), "resolved"));
    poll_and_settle(&stack).await;
    assert_eq!(msp.alerts().await[0]["status"], "Resolved");
    assert_eq!(stack.connectwise.tickets()[1].body["closedFlag"], true);
    assert_eq!(stack.connectwise.tickets().len(), 2);
    for queue in ["EventsDeadLetterQueue", "TicketsDeadLetterQueue", "PollJobsDeadLetterQueue"] {
        assert!(stack.peek(queue).await.unwrap().is_empty(), "{queue}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_alerts_arriving_resolved_or_classified_false_or_benign_positive_open_no_alert_and_no_ticket() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let created = now_s() - Duration::minutes(10);
    let updated = created + Duration::minutes(2);
    stack.m365.add_graph_alert(TENANT, graph_alert("da-resolved", created, updated, "resolved"));
    let mut false_positive = graph_alert("da-false-positive", created, updated, "new");
    false_positive["classification"] = json!("falsePositive");
    stack.m365.add_graph_alert(TENANT, false_positive);
    let mut benign = graph_alert("da-benign", created, updated, "inProgress");
    benign["classification"] = json!("informationalExpectedActivity");
    stack.m365.add_graph_alert(TENANT, benign);
    let report = poll_and_settle(&stack).await;
    assert_eq!(report.records_enqueued, 3, "all three reach the evaluator: {report:?}");
    assert!(msp.alerts().await.is_empty(), "{:#?}", msp.alerts().await);
    assert!(stack.connectwise.tickets().is_empty());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_switch_off_and_a_suppression_hold_graph_alerts_back_and_other_graph_alerts_still_ticket() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let created = now_s() - Duration::minutes(10);
    let path = format!("/v1/tenants/{TENANT}/policies/builtin.defender-alert");
    let switch = |enabled: bool| msp.call(reqwest::Method::PUT, &path, Some(json!({"enabled": enabled})));
    assert_eq!(switch(false).await.0, 200);
    stack.m365.add_graph_alert(TENANT, graph_alert("da-while-off", created, created + Duration::minutes(1), "new"));
    assert_eq!(poll_and_settle(&stack).await.records_enqueued, 1);
    assert!(msp.alerts().await.is_empty(), "switched off for the tenant: {:#?}", msp.alerts().await);
    assert!(stack.connectwise.tickets().is_empty());

    assert_eq!(switch(true).await.0, 200);
    let suppression = json!({"tenant_id": TENANT, "policy_id": "builtin.defender-alert", "reason": "the customer handles Identity alerts",
                             "conditions": {"field": "serviceSource", "op": "equals", "value": "microsoftDefenderForIdentity"}});
    let created_suppression = msp.call(reqwest::Method::POST, "/v1/suppressions", Some(suppression)).await;
    assert_eq!(created_suppression.0, 201, "{created_suppression:?}");
    let mut identity = graph_alert("da-identity", created, now_s() - Duration::seconds(3), "new");
    identity["serviceSource"] = json!("microsoftDefenderForIdentity");
    stack.m365.add_graph_alert(TENANT, identity);
    stack.m365.add_graph_alert(TENANT, graph_alert("da-office", created, now_s() - Duration::seconds(3), "new"));
    assert_eq!(poll_and_settle(&stack).await.records_enqueued, 2);
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "only the unsuppressed one: {alerts:#?}");
    let facts = alerts[0]["facts"].to_string();
    assert!(facts.contains("da-office") && !facts.contains("da-identity"), "{facts}");
    assert_eq!(stack.connectwise.tickets().len(), 1);
    stack.shutdown().await;
}
