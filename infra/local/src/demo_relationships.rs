//! The demo's admin-relationship steps: the MSP connects its own partner tenant; the daily read
//! lists four customers' GDAP relationships (Contoso's unused for 100 days, Fabrikam's for 45,
//! Northwind's with Global Administrator and a technician's sign-ins today, per the partner
//! tenant's sign-in logs, Adatum's established 3 days ago); the report shows
//! Partner Center's buckets and recommendations, and the findings become tickets on the MSP's
//! own ConnectWise company. The owner then previews removing Contoso's unused access, confirms
//! it, and Vigil terminates it through Graph, which resolves its findings and closes their
//! tickets.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, FABRIKAM, settle};
use crate::stack::LocalStack;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use std::io::Write;
use vigil::services::poll::PollReport;
use vigil_simulators::m365::fixtures::{active_assignment, gdap_relationship, partner_sign_in};

const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const PARTNER_APP: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const PARTNER_SECRET: &str = "demo-partner-app-secret";
const NORTHWIND: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const ADATUM: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

fn relationship_id(customer: &str) -> String {
    format!("{PARTNER}-{customer}")
}

/// Tickets on the MSP's own company (`own`) in ConnectWise.
fn own_company_tickets(stack: &LocalStack, own: i64) -> Vec<vigil_simulators::connectwise::SimTicket> {
    stack.connectwise.tickets().into_iter().filter(|t| t.body["company"]["id"] == own).collect()
}

/// Steps 18 and 19.
pub(crate) async fn partner_tenant_report_and_removal(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n18. The MSP connects its own partner tenant: Vigil reads its GDAP relationships with every customer daily.");
    stack.m365.add_tenant(PARTNER, PARTNER_APP, PARTNER_SECRET);
    stack.m365.set_partner_write_role(PARTNER, true);
    stack.m365.set_sign_in_role(PARTNER, true);
    for (n, minutes_ago) in [(1, 50), (2, 20)] {
        let when = Utc::now() - Duration::minutes(minutes_ago);
        stack.m365.add_sign_in(PARTNER, partner_sign_in(&format!("demo-sign-in-{n}"), "tech-ann", PARTNER, NORTHWIND, when));
    }
    for (customer, name, age, roles) in [
        (CONTOSO, "Contoso Ltd", 100, vec![HELPDESK_ADMINISTRATOR]),
        (FABRIKAM, "Fabrikam Inc", 45, vec![HELPDESK_ADMINISTRATOR]),
        (NORTHWIND, "Northwind Traders", 20, vec![HELPDESK_ADMINISTRATOR, GLOBAL_ADMINISTRATOR]),
        (ADATUM, "Adatum Corp", 3, vec![HELPDESK_ADMINISTRATOR]),
    ] {
        stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&relationship_id(customer), customer, name, age, &roles));
        stack.m365.add_access_assignment(
            &relationship_id(customer),
            active_assignment(&format!("assignment-{customer}"), &[HELPDESK_ADMINISTRATOR]),
        );
    }
    // The MSP's own company in ConnectWise, where tickets about its own access go.
    let own = stack.connectwise.add_company("DemoMSP", "Demo MSP (internal)");
    let mut destination = api.send(reqwest::Method::GET, "/v1/destinations/connectwise", None).await?;
    destination["routing"]["own_company"] = json!(own.to_string());
    let replace = json!({"name": destination["name"], "enabled": destination["enabled"], "settings": destination["settings"],
                         "routing": destination["routing"], "requests_per_hour": destination["requests_per_hour"]});
    api.send(reqwest::Method::PUT, "/v1/destinations/connectwise", Some(replace)).await?;
    let _ = writeln!(out, "   PUT  /v1/destinations/connectwise (routing.own_company {own}) → tickets about the MSP's own access go there");
    let connect = json!({"tenant_id": PARTNER, "client_id": PARTNER_APP, "client_secret": PARTNER_SECRET});
    api.send(reqwest::Method::PUT, "/v1/msp/partner-tenant", Some(connect)).await?;
    let _ = writeln!(
        out,
        "   PUT  /v1/msp/partner-tenant → app credentials with DelegatedAdminRelationship.ReadWrite.All and AuditLog.Read.All (write-only)"
    );
    settle(stack, out, seen).await?;

    let report = api.send(reqwest::Method::GET, "/v1/admin-relationships?sort=-days_inactive", None).await?;
    let rows = report["relationships"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "   GET  /v1/admin-relationships:");
    for row in &rows {
        let _ = writeln!(
            out,
            "     {:<18} days enabled {:<4} inactive {:>3} days  agents/sign-ins last day {}/{}  bucket {:<14} new {:<5} recommendations {}",
            row["customer_name"].as_str().unwrap_or("?"),
            row["days_enabled_shown"].as_str().unwrap_or("-"),
            row["days_inactive"],
            row["agents_last_day"],
            row["sign_ins_last_day"],
            row["bucket"].as_str().unwrap_or("?"),
            row["established_last_7_days"],
            row["recommendations"]
        );
    }
    let summary = &report["summary"];
    let _ = writeln!(
        out,
        "   summary: {} customers with access; inactive 30–60 days {}, 60–90 {}, over 90 {}; Global Administrator {}; new {}",
        summary["customers_with_access"],
        summary["inactive_30_to_60_days"],
        summary["inactive_60_to_90_days"],
        summary["inactive_over_90_days"],
        summary["with_global_administrator"],
        summary["established_last_7_days"]
    );
    let row_of = |name: &str| rows.iter().find(|r| r["customer_name"] == name).cloned().unwrap_or(Value::Null);
    outcome.check(
        out,
        "the report puts Contoso over 90 days (remove), Fabrikam in 30–60 days, Northwind at least privilege (1 technician, 2 sign-ins today), Adatum new",
        row_of("Contoso Ltd")["bucket"] == "over_90_days"
            && row_of("Contoso Ltd")["recommendations"] == json!(["remove"])
            && row_of("Fabrikam Inc")["bucket"] == "30_to_60_days"
            && row_of("Northwind Traders")["recommendations"] == json!(["least_privilege"])
            && row_of("Northwind Traders")["agents_last_day"] == 1
            && row_of("Northwind Traders")["sign_ins_last_day"] == 2
            && row_of("Adatum Corp")["established_last_7_days"] == true
            && summary["inactive_over_90_days"] == 1,
    );
    let tickets = own_company_tickets(stack, own);
    for ticket in &tickets {
        let _ = writeln!(
            out,
            "   ConnectWise ticket #{} (company {own}, the MSP's own): {}",
            ticket.id,
            ticket.body["summary"].as_str().unwrap_or("?")
        );
    }
    let summaries: Vec<String> = tickets.iter().map(|t| t.body["summary"].as_str().unwrap_or_default().to_owned()).collect();
    let has = |policy: &str, customer: &str| summaries.iter().filter(|s| s.contains(policy) && s.contains(customer)).count() == 1;
    outcome.check(
        out,
        "one ticket per finding on the MSP's own company: Contoso unused over 60 and over 90 days, Northwind's Global Administrator, Adatum's new relationship",
        tickets.len() == 4
            && has("unused for over 60 days", "Contoso Ltd")
            && has("unused for over 90 days", "Contoso Ltd")
            && has("includes Global Administrator", "Northwind Traders")
            && has("New delegated admin relationship", "Adatum Corp"),
    );

    let _ = writeln!(out, "\n19. The owner previews removing Contoso's unused access (telling Contoso's IT contact), then confirms it.");
    let chosen = relationship_id(CONTOSO);
    let preview = api
        .send(
            reqwest::Method::POST,
            "/v1/admin-relationships/removal-previews",
            Some(json!({"relationship_ids": [chosen], "notify": {chosen.clone(): "it@contoso.com"}})),
        )
        .await?;
    for item in preview["items"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "   preview: {} ({}), roles {}", item["customer_name"], item["relationship_name"], item["roles"]);
        for consequence in item["consequences"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "     - {}", consequence.as_str().unwrap_or_default());
        }
    }
    outcome.check(out, "the preview removes nothing", stack.m365.partner_relationship_status(&chosen).as_deref() == Some("active"));
    let token = preview["token"].as_str().unwrap_or_default().to_owned();
    api.send(reqwest::Method::POST, "/v1/admin-relationships/removals", Some(json!({"token": token}))).await?;
    let _ = writeln!(
        out,
        "   POST /v1/admin-relationships/removals {{token}} → 202; the audit-poller asks Graph to terminate it and follows it"
    );
    stack.wait_idle(std::time::Duration::from_secs(60)).await.map_err(|e| crate::demo::fail(format!("removal: {e}")))?;
    let removals = api.send(reqwest::Method::GET, "/v1/admin-relationships/removals", None).await?;
    let removal = removals["removals"][0].clone();
    let _ = writeln!(
        out,
        "   removal of {}: {} (Graph request {}), requested by {}",
        removal["customer_name"], removal["status"], removal["request_id"], removal["requested_by"]
    );
    let _ = writeln!(out, "   e-mail to it@contoso.com: {}", removal["notification"]["status"]);
    outcome.check(out, "Contoso's contact is told by e-mail (SES), once", removal["notification"]["status"] == "sent");
    let terminations = stack.m365.request_log().iter().filter(|r| r.method == "POST" && r.path.ends_with("/requests")).count();
    outcome.check(
        out,
        "Graph terminated Contoso's relationship, once, and no other",
        removal["status"] == "terminated"
            && terminations == 1
            && stack.m365.partner_relationship_status(&chosen).as_deref() == Some("terminated")
            && stack.m365.partner_relationship_status(&relationship_id(FABRIKAM)).as_deref() == Some("active"),
    );
    let contoso: Vec<_> = own_company_tickets(stack, own)
        .into_iter()
        .filter(|t| t.body["summary"].as_str().is_some_and(|s| s.contains("unused") && s.contains("Contoso Ltd")))
        .collect();
    for ticket in &contoso {
        let _ = writeln!(out, "   ConnectWise ticket #{} closed: {}", ticket.id, ticket.body["closedFlag"]);
    }
    outcome.check(
        out,
        "the unused-access findings resolved and their two tickets are closed",
        contoso.len() == 2 && contoso.iter().all(|t| t.body["closedFlag"] == true),
    );
    Ok(())
}
