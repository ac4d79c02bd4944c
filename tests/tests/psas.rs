//! HaloPSA and Tigerpaw end to end on the local stack: one alert becomes a HaloPSA ticket and a
//! Tigerpaw service order (routing, company links), a technician completing the service order
//! resolves the alert and Vigil closes the HaloPSA ticket; and per PSA, a create whose response
//! is lost after the PSA committed it leaves exactly one ticket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use vigil_local::stack::LocalStack;
use vigil_simulators::halopsa::HaloOperation;
use vigil_simulators::halopsa::directory::{CONTOSO_CLIENT_ID, SECURITY_TEAM};
use vigil_simulators::kit::FailureMode;
use vigil_simulators::tigerpaw::TigerpawOperation;
use vigil_simulators::tigerpaw::tables::{CONTOSO_ACCOUNT, SECURITY_BOARD};
use vigil_tests::{MspClient, forwarding_record, in_current_window, link_company, onboard, poll_and_settle, record_id, start_stack};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

/// The body of `PUT /v1/destinations/halopsa` for the stack's (hosted) HaloPSA simulator.
#[must_use]
fn halopsa_destination(stack: &LocalStack) -> Value {
    let config = stack.halopsa.config();
    json!({
        "name": "HaloPSA",
        "settings": {"kind": "halopsa", "url": stack.halopsa.base_url(), "tenant": config.tenant},
        "routing": {"default_place": SECURITY_TEAM},
        "credentials": {"kind": "halopsa", "client_id": config.client_id, "client_secret": config.client_secret}
    })
}

/// The body of `PUT /v1/destinations/tigerpaw` for the stack's Tigerpaw simulator (TSI keys).
#[must_use]
fn tigerpaw_destination(stack: &LocalStack) -> Value {
    let keys = stack.tigerpaw.keys();
    json!({
        "name": "Tigerpaw",
        "settings": {"kind": "tigerpaw", "url": stack.tigerpaw.base_url(), "auth": "tsi", "service_order_type": "Security"},
        "routing": {"default_place": SECURITY_BOARD.to_string(), "priorities": {"High": "High"}},
        "credentials": {"kind": "tigerpaw", "public_key": keys.public_key, "private_key": keys.private_key}
    })
}

/// An MSP with ConnectWise, HaloPSA (client 12) and Tigerpaw (Contoso's account).
async fn halo_and_tigerpaw(stack: &LocalStack, msp_id: &str) -> MspClient {
    let msp = onboard(stack, msp_id, TENANT, 250).await;
    for (id, body, company) in [
        ("halopsa", halopsa_destination(stack), CONTOSO_CLIENT_ID.to_string()),
        ("tigerpaw", tigerpaw_destination(stack), CONTOSO_ACCOUNT.to_string()),
    ] {
        let created = msp.call(reqwest::Method::PUT, &format!("/v1/destinations/{id}"), Some(body)).await;
        assert!((200..300).contains(&created.0), "{id}: {created:?}");
        let tested = msp.call(reqwest::Method::POST, &format!("/v1/destinations/{id}/test"), None).await;
        assert_eq!(tested.2["ok"], true, "{id}: {tested:?}");
        let linked = link_company(&msp, TENANT, id, &company).await;
        assert!((200..300).contains(&linked.0), "{id}: {linked:?}");
    }
    msp
}

async fn forward(stack: &LocalStack, ids: std::ops::Range<usize>) {
    let records: Vec<Value> = ids.map(|i| forwarding_record(TENANT, &record_id(i), in_current_window(i as i64))).collect();
    stack.m365.add_records(TENANT, "Audit.Exchange", records);
    poll_and_settle(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_becomes_a_halopsa_ticket_and_a_tigerpaw_order_and_a_technician_completing_the_order_resolves_it() {
    let stack = start_stack().await;
    let msp = halo_and_tigerpaw(&stack, "halo-tiger").await;
    forward(&stack, 0..2).await;
    let alert_id = msp.alerts().await[0]["id"].as_str().unwrap().to_owned();
    let tickets = stack.halopsa.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!((tickets[0].item["client_id"].as_i64(), tickets[0].item["team"].as_str()), (Some(CONTOSO_CLIENT_ID), Some(SECURITY_TEAM)));
    let orders = stack.tigerpaw.orders();
    assert_eq!(orders.len(), 1, "{orders:#?}");
    let order = &orders[0].summary["ServiceOrder"];
    assert_eq!(order["AccountNumber"].as_i64(), Some(CONTOSO_ACCOUNT), "{order:#}");
    assert_eq!(order["Reference"], format!("vigil:{alert_id}"));
    assert_eq!(order["DispatchBoardNumber"].as_i64(), Some(SECURITY_BOARD), "{order:#}");

    stack.tigerpaw.complete_order(orders[0].number, "Alex Tech").unwrap();
    let report = stack.read_back().await.unwrap();
    assert!(report.closed >= 1, "{report:?}");
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    let alert = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{alert_id}"), None).await.2;
    assert_eq!(alert["status"], "Resolved", "the completed service order resolved the alert: {alert:#}");
    let halo = &stack.halopsa.tickets()[0];
    assert!(halo.item["hasbeenclosed"] == true || halo.item["status_id"] == 9, "Vigil closed the HaloPSA ticket: {:#}", halo.item);
    assert!(halo.actions.iter().any(|a| a.to_string().contains("resolved")), "with its resolution note first: {:#?}", halo.actions);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_response_in_halopsa_leaves_exactly_one_ticket() {
    let stack = start_stack().await;
    halo_and_tigerpaw(&stack, "halo-lost").await;
    stack.halopsa.fail_next(HaloOperation::PostTickets, FailureMode::AfterCommit(500), 1);
    forward(&stack, 0..1).await;
    assert_eq!(stack.halopsa.tickets().len(), 1);
    assert_eq!(stack.tigerpaw.orders().len(), 1, "Tigerpaw was not held back");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_response_in_tigerpaw_leaves_exactly_one_service_order() {
    let stack = start_stack().await;
    halo_and_tigerpaw(&stack, "tiger-lost").await;
    stack.tigerpaw.fail_next(TigerpawOperation::CreateOrder, FailureMode::AfterCommit(500), 1);
    forward(&stack, 0..1).await;
    assert_eq!(stack.tigerpaw.orders().len(), 1);
    assert_eq!(stack.halopsa.tickets().len(), 1);
    stack.shutdown().await;
}
