//! The demo's second PSA: Fabrikam's security alerts also go to Autotask (routing by tenant and
//! category), and the lifecycle both ways — a technician completes a ticket in Autotask, the
//! alert resolves in Vigil with the technician in its history and its ConnectWise ticket
//! closes; a re-fire after that opens new tickets that name the closed ones.

use crate::demo::{Api, DemoError, DemoOutcome, FABRIKAM, fail, forwarding_record, settle};
use crate::stack::LocalStack;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::io::Write;
use vigil::services::poll::PollReport;
use vigil_simulators::autotask::SimTicket;

/// Autotask's "Complete" status (the simulator's, like most Autotask databases).
pub const AUTOTASK_COMPLETE: i64 = 5;
/// The Autotask queue Fabrikam's security alerts land in ("Security Operations").
const SECURITY_QUEUE: &str = "29683481";
/// The simulated Autotask technician ("Alex Tech").
const TECHNICIAN: i64 = 29_682_886;

/// Creates the Autotask destination (Fabrikam only; threat management and connection problems;
/// the Security Operations queue) and links Fabrikam to its Autotask company.
pub(crate) async fn add_autotask_for_fabrikam(stack: &LocalStack, out: &mut dyn Write, api: &Api) -> Result<(), DemoError> {
    let at = stack.autotask.credentials();
    let company = stack.autotask.add_company("Fabrikam Inc");
    let destination = json!({
        "name": "Autotask (security desk)",
        "settings": {"kind": "autotask", "zone_url": stack.autotask.zone_url()},
        "routing": {"tenants": [FABRIKAM], "categories": ["ThreatManagement", "Others"], "default_place": SECURITY_QUEUE,
                    "priorities": {"High": "1", "Medium": "2", "Low": "3", "Informational": "3"}},
        "requests_per_hour": 1000,
        "credentials": {"kind": "autotask", "username": at.username, "secret": at.secret, "integration_code": at.integration_code}
    });
    api.send(reqwest::Method::PUT, "/v1/destinations/autotask", Some(destination)).await?;
    let _ = writeln!(
        out,
        "   PUT  /v1/destinations/autotask                    → Autotask: Fabrikam's threat and connection alerts, Security Operations queue"
    );
    let test = api.send(reqwest::Method::POST, "/v1/destinations/autotask/test", None).await?;
    let _ = writeln!(out, "   POST /v1/destinations/autotask/test               → ok: {}, problems: {}", test["ok"], test["problems"]);
    let queues = api.send(reqwest::Method::GET, "/v1/destinations/autotask/places", None).await?;
    let names: Vec<&str> = queues["items"].as_array().into_iter().flatten().filter_map(|q| q["name"].as_str()).take(4).collect();
    let _ = writeln!(out, "   GET  /v1/destinations/autotask/places             → queues {names:?} …");
    api.send(
        reqwest::Method::PUT,
        &format!("/v1/tenants/{FABRIKAM}/destinations/autotask/company"),
        Some(json!({"company": company.to_string()})),
    )
    .await?;
    let _ = writeln!(out, "   PUT  /v1/tenants/{{id}}/destinations/autotask/company → Fabrikam → Autotask company {company}");
    Ok(())
}

/// Autotask tickets whose title mentions `what`.
pub(crate) fn autotask_tickets_of(stack: &LocalStack, what: &str) -> Vec<SimTicket> {
    stack.autotask.tickets().into_iter().filter(|t| t.item["title"].as_str().unwrap_or_default().contains(what)).collect()
}

/// One line per Autotask ticket.
pub(crate) fn narrate_autotask(stack: &LocalStack, out: &mut dyn Write) {
    for ticket in stack.autotask.tickets() {
        let _ = writeln!(
            out,
            "   Autotask ticket #{}: \"{}\" company {} queue {} status {}",
            ticket.id,
            ticket.item["title"].as_str().unwrap_or("?"),
            ticket.item["companyID"],
            ticket.item["queueID"],
            ticket.item["status"]
        );
    }
}

fn fabrikam_forwarding(alerts: &Value) -> Option<Value> {
    alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["tenant_id"] == FABRIKAM && a["policy_id"] == "builtin.external-forwarding")
        .cloned()
}

/// Steps 13 and 14.
pub(crate) async fn technician_closes_then_refire(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
    window_start: DateTime<Utc>,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n13. A technician completes Fabrikam's forwarding ticket in Autotask; Vigil reads ticket states back.");
    let ticket = autotask_tickets_of(stack, "Mail forwarding").into_iter().next().ok_or_else(|| fail("no Autotask forwarding ticket"))?;
    stack.autotask.complete_ticket(ticket.id, Some(TECHNICIAN)).map_err(fail)?;
    let report = stack.read_back().await.map_err(|e| fail(e.to_string()))?;
    stack.wait_idle(std::time::Duration::from_secs(60)).await.map_err(|e| fail(e.to_string()))?;
    let _ = writeln!(
        out,
        "   ticket-dispatcher read-back: {} ticket(s) read, {} closed in a PSA, {} gone",
        report.checked, report.closed, report.gone
    );
    let alerts = api.send(reqwest::Method::GET, "/v1/alerts?limit=100", None).await?;
    let alert = fabrikam_forwarding(&alerts).ok_or_else(|| fail("no Fabrikam forwarding alert"))?;
    let id = alert["id"].as_str().unwrap_or_default().to_owned();
    let detail = api.send(reqwest::Method::GET, &format!("/v1/alerts/{id}"), None).await?;
    let closer = detail["triage"]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["field"] == "status" && c["to"] == "Resolved")
        .and_then(|c| c["author"].as_str())
        .unwrap_or("?")
        .to_owned();
    let _ = writeln!(out, "   alert {id}: status {}, resolved by {closer}", detail["status"]);
    outcome.check(
        out,
        "the alert is Resolved in Vigil, with the technician in its history",
        detail["status"] == "Resolved" && closer.contains("Alex"),
    );
    let cw = stack
        .connectwise
        .tickets()
        .into_iter()
        .filter(|t| t.body["company"]["id"] == 251 && t.body["summary"].as_str().unwrap_or_default().contains("forwarding"))
        .collect::<Vec<_>>();
    outcome.check(out, "and Vigil closed the alert's ConnectWise ticket", cw.len() == 1 && cw[0].body["closedFlag"] == true);

    let _ = writeln!(out, "\n14. carol changes the forwarding again in the same window: the alert re-fires.");
    // The window of Fabrikam's first forwarding record (step 9), not the current one: a demo
    // that crossed a quarter hour since then would otherwise open a second alert.
    let mut again =
        forwarding_record("f0a1c1e2-0002-4000-8000-000000000002", window_start + Duration::seconds(80), "exfil@mail-collector.example");
    again["OrganizationId"] = json!(FABRIKAM);
    again["UserId"] = json!("carol@fabrikam.com");
    stack.m365.add_records(FABRIKAM, "Audit.Exchange", vec![again]);
    settle(stack, out, seen).await?;
    let forwarding = autotask_tickets_of(stack, "Mail forwarding");
    for ticket in &forwarding {
        let _ = writeln!(out, "   Autotask ticket #{}: status {}", ticket.id, ticket.item["status"]);
    }
    let newest = forwarding.iter().max_by_key(|t| t.id);
    let names_old = newest
        .is_some_and(|t| t.id != ticket.id && t.item["description"].as_str().unwrap_or_default().contains(&format!("#{}", ticket.id)));
    outcome.check(
        out,
        "a new Autotask ticket names the completed one (never a note on a closed ticket)",
        forwarding.len() == 2 && names_old,
    );
    let old_notes = forwarding.iter().find(|t| t.id == ticket.id).map_or(0, |t| t.notes.len());
    outcome.check(out, "the completed ticket got nothing after its close", old_notes == ticket.notes.len());
    let alerts = api.send(reqwest::Method::GET, "/v1/alerts?limit=100", None).await?;
    let reopened = fabrikam_forwarding(&alerts).is_some_and(|a| a["status"] == "New");
    outcome.check(out, "the alert is open again in Vigil", reopened);
    Ok(())
}
