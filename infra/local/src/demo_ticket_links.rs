//! The demo's ticket-links step: the console's alert page for Contoso's new Global
//! Administrator (step 21) — each destination's ticket with its status as the PSA last reported
//! it and a link into the PSA built from the destination's settings (ConnectWise's
//! `openrecord.rails`, HaloPSA's `/tickets?id=`; Tigerpaw names no web page for a service order,
//! so its order shows its status without a link), and for the Teams, Slack and webhook
//! destinations what was posted. Opening the alert makes no PSA request.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome};
use serde_json::Value;
use std::io::Write;

/// The first of Contoso's alerts whose deliveries include a HaloPSA ticket, as `GET
/// /v1/alerts/{id}` shows it.
async fn contoso_alert_in_halopsa(api: &Api) -> Result<Option<Value>, DemoError> {
    let alerts = api.send(reqwest::Method::GET, "/v1/alerts?category=Permissions&limit=100", None).await?;
    for alert in alerts["alerts"].as_array().into_iter().flatten().filter(|a| a["tenant_id"] == CONTOSO) {
        let detail = api.send(reqwest::Method::GET, &format!("/v1/alerts/{}", alert["id"].as_str().unwrap_or_default()), None).await?;
        if detail["deliveries"].as_array().into_iter().flatten().any(|d| d["destination_kind"] == "halopsa" && d["ticket"].is_string()) {
            return Ok(Some(detail));
        }
    }
    Ok(None)
}

fn psa_status(d: &Value) -> String {
    match d["psa_state"]["state"].as_str() {
        Some("open") => format!("open: {}", d["psa_state"]["status"].as_str().unwrap_or_default()),
        Some("closed") => format!("closed ({})", d["psa_state"]["status"].as_str().unwrap_or_default()),
        Some(other) => other.to_owned(),
        None => "not read yet".to_owned(),
    }
}

/// Step 27.
pub(crate) async fn alert_tickets_with_links(out: &mut dyn Write, outcome: &mut DemoOutcome, api: &Api) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n27. The console's alert page: each destination's ticket, its PSA status and a link into the PSA.");
    let detail = contoso_alert_in_halopsa(api).await?.unwrap_or(Value::Null);
    let deliveries = detail["deliveries"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "   GET /v1/alerts/{{id}} → \"{}\"", detail["title"].as_str().unwrap_or_default());
    for d in &deliveries {
        let name = d["destination_name"].as_str().unwrap_or_default();
        let kind = d["destination_kind"].as_str().unwrap_or_default();
        if let Some(ticket) = d["ticket"].as_str() {
            let link = d["ticket_url"].as_str().unwrap_or("(no link)");
            let _ = writeln!(out, "   {name} ({kind}): ticket #{ticket} · PSA status {} → {link}", psa_status(d));
        } else {
            let _ = writeln!(out, "   {name} ({kind}): {} message(s) posted", d["messages_posted"].as_u64().unwrap_or(0));
        }
    }
    let of_kind = |kind: &str| deliveries.iter().find(|d| d["destination_kind"] == kind);
    let links_to_its_ticket = |d: &Value, form: &str, parameter: &str| {
        let url = d["ticket_url"].as_str().unwrap_or_default();
        d["ticket"].as_str().is_some_and(|t| url.contains(form) && url.ends_with(&format!("{parameter}={t}")))
    };
    outcome.check(
        out,
        "the ConnectWise ticket links to its record (openrecord.rails, recordType=ServiceFv)",
        of_kind("connectwise").is_some_and(|d| links_to_its_ticket(d, "/services/system_io/router/openrecord.rails?", "recid")),
    );
    outcome.check(
        out,
        "the HaloPSA ticket links to its page on the instance (/tickets?id=) and shows its PSA status",
        of_kind("halopsa").is_some_and(|d| links_to_its_ticket(d, "/tickets?", "id") && d["psa_state"].is_object()),
    );
    outcome.check(
        out,
        "the Tigerpaw service order the technician completed shows it closed, without a link",
        of_kind("tigerpaw").is_some_and(|d| d["psa_state"]["state"] == "closed" && d.get("ticket_url").is_none()),
    );
    let channels: Vec<&Value> =
        deliveries.iter().filter(|d| matches!(d["destination_kind"].as_str(), Some("teams" | "slack" | "webhook"))).collect();
    outcome.check(
        out,
        "the Teams, Slack and webhook destinations show what was posted, no ticket",
        !channels.is_empty() && channels.iter().all(|d| d["ticket"].is_null() && d["messages_posted"].as_u64().unwrap_or(0) >= 1),
    );
    Ok(())
}
