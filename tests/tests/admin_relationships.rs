//! Admin-relationship monitoring on the local stack (moto, the Microsoft 365 simulator's
//! partner side, ConnectWise, every handler): the daily read of the MSP's partner tenant turns
//! unused delegated access into one ticket per finding (access a technician signed in with an
//! hour ago, per the partner tenant's sign-in logs, raises none), a second read adds nothing, and a
//! previewed and confirmed removal terminates exactly the chosen relationship once (through a
//! throttled first attempt), which resolves the findings and closes their tickets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::json;
use std::time::Duration as StdDuration;
use vigil_simulators::m365::fixtures::{active_assignment, gdap_relationship, partner_sign_in};
use vigil_simulators::m365::{M365Failure, M365Operation};
use vigil_tests::{onboard, poll_and_settle, start_stack};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const OTHER_CUSTOMER: &str = "5e1f2c8a-7d41-4f0e-9a51-000000000077";
const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const PARTNER_APP: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const PARTNER_SECRET: &str = "partner-app-secret-value-123";

const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_delegated_access_becomes_one_ticket_per_finding_and_a_confirmed_removal_terminates_it_once_and_closes_them() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    stack.m365.add_tenant(PARTNER, PARTNER_APP, PARTNER_SECRET);
    stack.m365.set_partner_write_role(PARTNER, true);
    stack.m365.set_sign_in_role(PARTNER, true);
    let unused = format!("{PARTNER}-{TENANT}");
    let used = format!("{PARTNER}-{OTHER_CUSTOMER}");
    stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&unused, TENANT, "Contoso", 100, &[HELPDESK_ADMINISTRATOR]));
    stack.m365.add_access_assignment(&unused, active_assignment("assignment-1", &[HELPDESK_ADMINISTRATOR]));
    stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&used, OTHER_CUSTOMER, "Fabrikam", 20, &[HELPDESK_ADMINISTRATOR]));
    stack.m365.add_access_assignment(&used, active_assignment("assignment-2", &[HELPDESK_ADMINISTRATOR]));
    // A technician signed in to Fabrikam an hour ago (the partner tenant's outbound sign-ins).
    stack.m365.add_sign_in(PARTNER, partner_sign_in("s-1", "tech-1", PARTNER, OTHER_CUSTOMER, Utc::now() - Duration::hours(1)));
    let connect = json!({"tenant_id": PARTNER, "client_id": PARTNER_APP, "client_secret": PARTNER_SECRET});
    assert_eq!(msp.call(Method::PUT, "/v1/msp/partner-tenant", Some(connect)).await.0, 200);

    // The first tick reads the partner tenant: Contoso's access is unused for 100 days.
    poll_and_settle(&stack).await;
    let tickets = stack.connectwise.tickets();
    let summaries: Vec<&str> = tickets.iter().map(|t| t.body["summary"].as_str().unwrap()).collect();
    assert_eq!(summaries.len(), 2, "{summaries:#?}");
    assert!(summaries.iter().any(|s| s.contains("unused for over 60 days")) && summaries.iter().any(|s| s.contains("over 90 days")));
    assert!(tickets.iter().all(|t| t.body["company"]["id"] == 250), "on the customer's company");
    let report = msp.call(Method::GET, "/v1/admin-relationships?sort=-days_inactive", None).await.2;
    assert_eq!(report["relationships"][0]["bucket"], "over_90_days");
    assert_eq!(report["relationships"][0]["recommendations"], json!(["remove"]));
    assert_eq!(report["summary"]["inactive_over_90_days"], 1);
    let fabrikam = &report["relationships"][1];
    assert_eq!((fabrikam["customer_name"].as_str(), fabrikam["days_inactive"].as_i64()), (Some("Fabrikam"), Some(0)), "{fabrikam:#}");
    assert_eq!((fabrikam["agents_last_day"].as_u64(), fabrikam["sign_ins_last_day"].as_u64()), (Some(1), Some(1)));

    // Another tick adds nothing; a read on request is refused so soon after the last.
    poll_and_settle(&stack).await;
    assert_eq!(msp.call(Method::POST, "/v1/admin-relationships/refresh", None).await.0, 409);
    assert_eq!(stack.connectwise.tickets().len(), 2);
    assert!(stack.connectwise.tickets().iter().all(|t| t.notes.is_empty()), "nothing added to the tickets");

    // Preview, then confirm: the first Graph call of the removal is throttled and retried.
    let preview = msp.call(Method::POST, "/v1/admin-relationships/removal-previews", Some(json!({"relationship_ids": [unused]}))).await;
    assert_eq!(preview.0, 201, "{preview:?}");
    assert_eq!(preview.2["items"][0]["customer_name"], "Contoso");
    assert!(preview.2["items"][0]["consequences"].as_array().unwrap().len() >= 2, "{:#}", preview.2);
    assert_eq!(stack.m365.partner_relationship_status(&unused).as_deref(), Some("active"), "a preview removes nothing");
    stack.m365.fail_next(M365Operation::PartnerRelationships, M365Failure::Throttle, 1);
    let token = preview.2["token"].as_str().unwrap().to_owned();
    let confirmed = msp.call(Method::POST, "/v1/admin-relationships/removals", Some(json!({"token": token}))).await;
    assert_eq!(confirmed.0, 202, "{confirmed:?}");
    stack.wait_idle(StdDuration::from_secs(90)).await.unwrap();
    let removals = msp.call(Method::GET, "/v1/admin-relationships/removals", None).await.2;
    assert_eq!(removals["removals"][0]["status"], "terminated", "{removals:#}");
    assert!(removals["removals"][0]["requested_by"].as_str().unwrap().contains("Owner"));
    assert_eq!(stack.m365.partner_relationship_status(&unused).as_deref(), Some("terminated"));
    assert_eq!(stack.m365.partner_relationship_status(&used).as_deref(), Some("active"), "only the chosen relationship");
    let terminations = stack.m365.request_log().iter().filter(|r| r.method == "POST" && r.path.ends_with("/requests")).count();
    assert_eq!(terminations, 1, "terminated once");
    let tickets = stack.connectwise.tickets();
    assert!(tickets.iter().all(|t| t.body["closedFlag"] == true), "both findings cleared: {:#?}", tickets);
    let again = msp.call(Method::POST, "/v1/admin-relationships/removals", Some(json!({"token": token}))).await;
    assert_eq!(again.0, 404, "a token confirms once");
    for queue in ["EventsDeadLetterQueue", "TicketsDeadLetterQueue", "PollJobsDeadLetterQueue"] {
        assert!(stack.peek(queue).await.unwrap().is_empty(), "{queue}");
    }
    stack.shutdown().await;
}
