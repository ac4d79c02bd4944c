//! The demo's HaloPSA and Tigerpaw step: the MSP adds both PSAs for Contoso's High Permissions
//! alerts (Contoso is client 12 in HaloPSA, account 1053145 in Tigerpaw); a new Global
//! Administrator becomes a HaloPSA ticket and a Tigerpaw service order; a technician completes
//! the service order, the alert resolves, and Vigil closes the HaloPSA ticket.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, fail, settle};
use crate::demo_channels::global_admin_added;
use crate::stack::LocalStack;
use serde_json::json;
use std::io::Write;
use vigil::services::poll::PollReport;
use vigil_simulators::halopsa::directory::{CONTOSO_CLIENT_ID, SECURITY_TEAM};
use vigil_simulators::tigerpaw::tables::{CONTOSO_ACCOUNT, SECURITY_BOARD};

/// Step 21.
pub(crate) async fn halopsa_and_tigerpaw(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n21. The MSP also files Contoso's High Permissions alerts in HaloPSA (hosted) and Tigerpaw.");
    let routing = json!({"categories": ["Permissions"], "min_severity": "High", "tenants": [CONTOSO]});
    let halo = stack.halopsa.config();
    let keys = stack.tigerpaw.keys();
    let destinations = [
        (
            "halopsa",
            CONTOSO_CLIENT_ID.to_string(),
            json!({"name": "HaloPSA",
            "settings": {"kind": "halopsa", "url": stack.halopsa.base_url(), "tenant": halo.tenant},
            "routing": {"default_place": SECURITY_TEAM, "categories": routing["categories"], "min_severity": "High", "tenants": routing["tenants"]},
            "credentials": {"kind": "halopsa", "client_id": halo.client_id, "client_secret": halo.client_secret}}),
        ),
        (
            "tigerpaw",
            CONTOSO_ACCOUNT.to_string(),
            json!({"name": "Tigerpaw",
            "settings": {"kind": "tigerpaw", "url": stack.tigerpaw.base_url(), "auth": "tsi", "service_order_type": "Security"},
            "routing": {"default_place": SECURITY_BOARD.to_string(), "priorities": {"High": "High"}, "categories": routing["categories"],
                        "min_severity": "High", "tenants": routing["tenants"]},
            "credentials": {"kind": "tigerpaw", "public_key": keys.public_key, "private_key": keys.private_key}}),
        ),
    ];
    for (id, company, body) in destinations {
        api.send(reqwest::Method::PUT, &format!("/v1/destinations/{id}"), Some(body)).await?;
        let tested = api.send(reqwest::Method::POST, &format!("/v1/destinations/{id}/test"), None).await?;
        outcome.check(out, &format!("the {id} destination's test finds the credentials, places and statuses"), tested["ok"] == true);
        api.send(reqwest::Method::PUT, &format!("/v1/tenants/{CONTOSO}/destinations/{id}/company"), Some(json!({"company": company})))
            .await?;
    }

    let _ = writeln!(out, "    In Contoso, an administrator makes carol@contoso.com a Global Administrator.");
    stack.m365.add_records(
        CONTOSO,
        "Audit.AzureActiveDirectory",
        vec![global_admin_added("d0a1c1e2-0021-4000-8000-000000000001", "carol@contoso.com")],
    );
    settle(stack, out, seen).await?;
    let tickets = stack.halopsa.tickets();
    for ticket in &tickets {
        let _ = writeln!(
            out,
            "   HaloPSA ticket #{}: \"{}\" client {} team {}",
            ticket.id,
            ticket.item["summary"].as_str().unwrap_or("?"),
            ticket.item["client_id"],
            ticket.item["team"]
        );
    }
    let orders = stack.tigerpaw.orders();
    for order in &orders {
        let so = &order.summary["ServiceOrder"];
        let _ = writeln!(
            out,
            "   Tigerpaw service order #{}: \"{}\" account {} board {} priority {}",
            order.number,
            so["BriefDescription"].as_str().unwrap_or("?"),
            so["AccountNumber"],
            so["DispatchBoardNumber"],
            so["Priority"]
        );
    }
    outcome.check(
        out,
        "one HaloPSA ticket and one Tigerpaw service order, under Contoso's client and account",
        tickets.len() == 1
            && orders.len() == 1
            && tickets[0].item["client_id"] == CONTOSO_CLIENT_ID
            && orders[0].summary["ServiceOrder"]["AccountNumber"] == CONTOSO_ACCOUNT,
    );

    let order = orders.first().ok_or_else(|| fail("no Tigerpaw service order"))?;
    let _ = writeln!(out, "    A technician completes service order #{} in Tigerpaw; Vigil reads ticket states back.", order.number);
    stack.tigerpaw.complete_order(order.number, "Alex Tech").map_err(fail)?;
    stack.read_back().await.map_err(|e| fail(e.to_string()))?;
    stack.wait_idle(std::time::Duration::from_secs(60)).await.map_err(|e| fail(e.to_string()))?;
    let reference = order.summary["ServiceOrder"]["Reference"].as_str().unwrap_or_default();
    let alert_id = reference.trim_start_matches("vigil:");
    let alert = api.send(reqwest::Method::GET, &format!("/v1/alerts/{alert_id}"), None).await?;
    let halo_ticket = stack.halopsa.tickets().into_iter().next().ok_or_else(|| fail("no HaloPSA ticket"))?;
    let _ = writeln!(
        out,
        "   alert {alert_id}: status {}; HaloPSA ticket #{} status {}",
        alert["status"], halo_ticket.id, halo_ticket.item["status_id"]
    );
    outcome.check(
        out,
        "the completed service order resolved the alert and Vigil closed its HaloPSA ticket",
        alert["status"] == "Resolved" && (halo_ticket.item["hasbeenclosed"] == true),
    );
    Ok(())
}
