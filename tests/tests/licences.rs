//! Licence problems on the local stack (moto, the Microsoft 365 simulator's `subscribedSkus` and
//! `directory/subscriptions`, ConnectWise and Autotask, every handler): a subscription moving
//! Enabled → Warning → Suspended → renewed opens one alert per state with one ticket in each
//! destination, and each state's alert resolves itself (closing its tickets) when the next read
//! sees the subscription move on; the Defender for Office 365 plan lapsing raises its alert
//! naming the record types Vigil can no longer see; a missing `Organization.Read.All` raises
//! "needs re-consent" and keeps the licences.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use vigil_local::demo_licences::{business_premium, make_licences_due};
use vigil_local::stack::LocalStack;
use vigil_simulators::m365::licences::LifecycleStep;
use vigil_tests::{MspClient, link_company, onboard, poll_and_settle, start_stack};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
/// Autotask's simulated "Contoso Ltd".
const AUTOTASK_COMPANY: &str = "174";
/// Autotask's "Security Operations" queue.
const SECURITY_QUEUE: i64 = 29_683_481;
/// Autotask's "Complete" ticket status.
const AUTOTASK_COMPLETE: i64 = 5;

/// An MSP with the ConnectWise destination (company 250) and an Autotask one taking Others
/// alerts (company 174).
async fn both_psas(stack: &LocalStack) -> MspClient {
    let msp = onboard(stack, MSP, TENANT, 250).await;
    let at = stack.autotask.credentials();
    let autotask = json!({
        "name": "Autotask",
        "settings": {"kind": "autotask", "zone_url": stack.autotask.zone_url()},
        "routing": {"categories": ["Others"], "default_place": SECURITY_QUEUE.to_string()},
        "credentials": {"kind": "autotask", "username": at.username, "secret": at.secret, "integration_code": at.integration_code}
    });
    let created = msp.call(reqwest::Method::PUT, "/v1/destinations/autotask", Some(autotask)).await;
    assert!((200..300).contains(&created.0), "{created:?}");
    let linked = link_company(&msp, TENANT, "autotask", AUTOTASK_COMPANY).await;
    assert!((200..300).contains(&linked.0), "{linked:?}");
    msp
}

/// A day passes and the tick reads the tenant's licences again.
async fn next_day(stack: &LocalStack) {
    make_licences_due(stack, MSP, TENANT).await.unwrap();
    poll_and_settle(stack).await;
}

async fn licence_alerts(msp: &MspClient, policy: &str) -> Vec<Value> {
    msp.alerts().await.into_iter().filter(|a| a["policy_id"] == policy).collect()
}

fn fact(alert: &Value, name: &str) -> String {
    alert["facts"].as_array().into_iter().flatten().find(|f| f["name"] == name).and_then(|f| f["value"].as_str()).unwrap_or("").to_owned()
}

/// (ConnectWise, Autotask) tickets whose summary or title contains `text`, with whether each is
/// closed.
fn tickets_about(stack: &LocalStack, text: &str) -> (Vec<bool>, Vec<bool>) {
    let cw = stack
        .connectwise
        .tickets()
        .into_iter()
        .filter(|t| t.body["summary"].as_str().is_some_and(|s| s.contains(text)))
        .map(|t| t.body["closedFlag"] == true)
        .collect();
    let at = stack
        .autotask
        .tickets()
        .into_iter()
        .filter(|t| t.item["title"].as_str().is_some_and(|s| s.contains(text)))
        .map(|t| t.item["status"] == AUTOTASK_COMPLETE)
        .collect();
    (cw, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_through_grace_and_suspension_to_renewal_opens_one_alert_and_one_ticket_per_destination_per_state_and_closes_them() {
    let stack = start_stack().await;
    let msp = both_psas(&stack).await;
    stack.m365.add_licence_subscription(TENANT, business_premium("spb-1", 20));
    poll_and_settle(&stack).await;
    let licence_tickets = |stack: &LocalStack| stack.connectwise.tickets().len() + stack.autotask.tickets().len();
    assert_eq!(licence_tickets(&stack), 0, "healthy licences: nothing to say");
    let reads = stack.m365.request_log().iter().filter(|r| r.path.ends_with("/subscribedSkus")).count();
    assert_eq!(reads, 1, "read once on the first tick");
    poll_and_settle(&stack).await;
    assert_eq!(stack.m365.request_log().iter().filter(|r| r.path.ends_with("/subscribedSkus")).count(), 1, "not again the same day");

    stack.m365.move_licence_subscription("spb-1", LifecycleStep::Warning).unwrap();
    next_day(&stack).await;
    let grace = licence_alerts(&msp, "builtin.licence-grace-period").await;
    assert_eq!(grace.len(), 1, "{grace:#?}");
    assert_eq!((grace[0]["category"].as_str(), grace[0]["status"].as_str()), (Some("Others"), Some("New")));
    assert!(fact(&grace[0], "Licence message").contains("was Enabled, now Warning"), "{:#}", grace[0]);
    assert_eq!(fact(&grace[0], "Company"), "Contoso Ltd");
    assert_eq!(fact(&grace[0], "Company id"), TENANT);
    assert!(!fact(&grace[0], "Event time (UTC)").is_empty());
    assert_eq!(tickets_about(&stack, "grace period"), (vec![false], vec![false]), "one open ticket in each destination");
    next_day(&stack).await;
    assert_eq!(licence_tickets(&stack), 2, "still in grace: nothing new");
    assert!(stack.connectwise.tickets().iter().all(|t| t.notes.is_empty()), "not even a note");

    stack.m365.move_licence_subscription("spb-1", LifecycleStep::Suspended).unwrap();
    next_day(&stack).await;
    assert_eq!(licence_alerts(&msp, "builtin.licence-grace-period").await[0]["status"], "Resolved");
    assert_eq!(tickets_about(&stack, "grace period"), (vec![true], vec![true]), "the grace tickets closed themselves");
    let suspended = licence_alerts(&msp, "builtin.licence-suspended").await;
    assert_eq!((suspended.len(), suspended[0]["severity"].as_str()), (1, Some("High")));
    assert!(fact(&suspended[0], "Licence message").contains("was Warning, now Suspended"));
    assert_eq!(tickets_about(&stack, "disabled"), (vec![false], vec![false]));

    stack.m365.move_licence_subscription("spb-1", LifecycleStep::Renewed).unwrap();
    next_day(&stack).await;
    assert_eq!(licence_alerts(&msp, "builtin.licence-suspended").await[0]["status"], "Resolved");
    assert_eq!(tickets_about(&stack, "disabled"), (vec![true], vec![true]), "renewed: closed");
    assert_eq!(licence_tickets(&stack), 4, "two states, one ticket per destination each");
    let state = msp.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/licences"), None).await;
    assert_eq!(state.0, 200, "{state:?}");
    let changes: Vec<(&str, &str)> = state.2["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from"].as_str().unwrap_or("-"), c["to"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(changes, vec![("Enabled", "Warning"), ("Warning", "Suspended"), ("Suspended", "Enabled")], "{:#}", state.2);
    assert!(state.2["raised"].as_object().unwrap().is_empty());
    for queue in ["EventsDeadLetterQueue", "TicketsDeadLetterQueue", "PollJobsDeadLetterQueue"] {
        assert!(stack.peek(queue).await.unwrap().is_empty(), "{queue}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defender_plan_lapsing_names_the_record_types_vigil_no_longer_sees_and_a_refused_read_asks_for_consent() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    poll_and_settle(&stack).await;
    assert!(msp.alerts().await.is_empty(), "the default E5 carries Defender for Office 365 Plan 2");

    // The E5 is replaced by Business Premium, whose Plan 1 gives no automated investigations.
    stack.m365.clear_licences(TENANT);
    stack.m365.add_licence_subscription(TENANT, business_premium("spb-1", 20));
    next_day(&stack).await;
    let defender = licence_alerts(&msp, "builtin.defender-plan-missing").await;
    assert_eq!(defender.len(), 1, "{:#?}", msp.alerts().await);
    assert_eq!(fact(&defender[0], "Record types Vigil cannot see"), "64 (AirInvestigation)");
    let ticket = &stack.connectwise.tickets()[0];
    assert!(ticket.body["summary"].as_str().unwrap().contains("Defender for Office 365"), "{}", ticket.body["summary"]);

    // Then Business Premium lapses too: nothing Threat Intelligence arrives any more.
    stack.m365.move_licence_subscription("spb-1", LifecycleStep::Suspended).unwrap();
    next_day(&stack).await;
    let defender = licence_alerts(&msp, "builtin.defender-plan-missing").await;
    assert_eq!(defender.len(), 1, "one alert per tenant: the same finding still holds");
    assert_eq!(defender[0]["status"], "New");

    // Consent for Organization.Read.All is taken away: "needs re-consent", never "no licences".
    stack.m365.set_licences_role(TENANT, false);
    stack.m365.expire_tokens();
    next_day(&stack).await;
    let consent = licence_alerts(&msp, "builtin.licences-need-reconsent").await;
    assert_eq!(consent.len(), 1);
    assert!(fact(&consent[0], "Licence message").contains("Organization.Read.All"));
    assert_eq!(licence_alerts(&msp, "builtin.defender-plan-missing").await[0]["status"], "New", "kept while unreadable");
    assert_eq!(licence_alerts(&msp, "builtin.licence-suspended").await[0]["status"], "New");

    // Consent back, the E5 back: everything resolves and every ticket closes.
    stack.m365.set_licences_role(TENANT, true);
    stack.m365.expire_tokens();
    stack.m365.remove_licence_subscription(TENANT, "spb-1");
    stack.m365.add_licence_subscription(
        TENANT,
        vigil_simulators::m365::licences::SimSubscription {
            service_plans: vec![(vigil_simulators::m365::licences::DEFENDER_P2_PLAN.into(), "THREAT_INTELLIGENCE".into())],
            ..business_premium("e5-back", 25)
        },
    );
    next_day(&stack).await;
    let open: Vec<Value> = msp.alerts().await.into_iter().filter(|a| a["status"] != "Resolved").collect();
    assert!(open.is_empty(), "{open:#?}");
    assert!(stack.connectwise.tickets().iter().all(|t| t.body["closedFlag"] == true), "{:#?}", stack.connectwise.tickets());
    stack.shutdown().await;
}
