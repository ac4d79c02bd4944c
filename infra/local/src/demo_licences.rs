//! The demo's licence step: Vigil reads each tenant's licences daily (Graph `subscribedSkus` and
//! `directory/subscriptions`); Contoso's Microsoft 365 Business Premium subscription expires
//! into its grace period, which opens a licence alert and a ConnectWise ticket saying what the
//! status was and since when; the customer renews, and the next read resolves the alert, which
//! closes the ticket by itself. [`make_licences_due`] plays the day passing between two reads
//! (shared with the local-stack tests).

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, fail, settle};
use crate::stack::LocalStack;
use std::io::Write;
use vigil::ids::{MspId, TenantId};
use vigil::ports::LicenceStore;
use vigil::services::poll::PollReport;
use vigil_simulators::m365::licences::{DEFENDER_P1_PLAN, LifecycleStep, SimSubscription};

/// `skuId` of Microsoft 365 Business Premium (`SPB`).
pub const BUSINESS_PREMIUM: &str = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46";

/// An active Business Premium subscription of `licences` seats, renewing in 200 days.
#[must_use]
pub fn business_premium(id: &str, licences: i64) -> SimSubscription {
    SimSubscription {
        id: id.into(),
        sku_id: BUSINESS_PREMIUM.into(),
        sku_part_number: "SPB".into(),
        status: "Enabled".into(),
        is_trial: false,
        total_licenses: licences,
        next_lifecycle_date_time: Some(chrono::Utc::now() + chrono::Duration::days(200)),
        service_plans: vec![(DEFENDER_P1_PLAN.into(), "ATP_ENTERPRISE".into())],
        created_date_time: Some(chrono::Utc::now() - chrono::Duration::days(165)),
    }
}

/// Plays a day passing for one tenant's licences: its last read moves a day back, so the next
/// tick reads them again (reads are daily by default).
///
/// # Errors
/// When the config table cannot be read or written.
pub async fn make_licences_due(stack: &LocalStack, msp_id: &str, tenant_id: &str) -> Result<(), String> {
    let store = vigil::aws::config_store::DynamoConfigStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.provisioned.table_names["ConfigTable"].clone(),
    );
    let (msp, tenant) = (MspId::parse(msp_id).map_err(|e| e.to_string())?, TenantId::parse(tenant_id).map_err(|e| e.to_string())?);
    let Some(mut state) = store.licences(&msp, &tenant).await.map_err(|e| e.to_string())? else { return Ok(()) };
    state.read_at = state.read_at.map(|at| at - chrono::Duration::days(1));
    store.put_licences(&msp, &tenant, &state).await.map_err(|e| e.to_string())
}

/// The ConnectWise tickets whose summary contains `text`.
fn tickets_about(stack: &LocalStack, text: &str) -> Vec<vigil_simulators::connectwise::SimTicket> {
    stack.connectwise.tickets().into_iter().filter(|t| t.body["summary"].as_str().is_some_and(|s| s.contains(text))).collect()
}

/// Step 22.
pub(crate) async fn licence_grace_period_and_renewal(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n22. Contoso's Microsoft 365 Business Premium expires: Vigil reads every tenant's licences daily.");
    stack.m365.add_licence_subscription(CONTOSO, business_premium("demo-spb-contoso", 20));
    make_licences_due(stack, "demo-msp", CONTOSO).await.map_err(fail)?;
    settle(stack, out, seen).await?;
    let _ = writeln!(
        out,
        "   GET graph/v1.0/subscribedSkus + directory/subscriptions (Organization.Read.All) → E5 and Business Premium, both Enabled"
    );
    let before = stack.connectwise.tickets().len();

    let _ = writeln!(out, "   A day later the subscription has expired: Graph says Warning (grace period, users keep access for 30 days).");
    stack.m365.move_licence_subscription("demo-spb-contoso", LifecycleStep::Warning);
    make_licences_due(stack, "demo-msp", CONTOSO).await.map_err(fail)?;
    settle(stack, out, seen).await?;
    let alerts = api.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.licence-grace-period", None).await?;
    let alert = alerts["alerts"][0].clone();
    let fact = |name: &str| {
        alert["facts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == name)
            .and_then(|f| f["value"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    let _ = writeln!(out, "   alert: {} ({}, {})", alert["title"].as_str().unwrap_or("?"), alert["category"], alert["severity"]);
    for name in ["Event time (UTC)", "Company", "Company id", "Licence message"] {
        let _ = writeln!(out, "     {name}: {}", fact(name));
    }
    let tickets = tickets_about(stack, "grace period");
    for ticket in &tickets {
        let _ =
            writeln!(out, "   ConnectWise ticket #{} (company {}): {}", ticket.id, ticket.body["company"]["id"], ticket.body["summary"]);
    }
    outcome.check(
        out,
        "the grace period opened one Others alert and one ConnectWise ticket saying it was Enabled, now Warning, since when",
        alerts["alerts"].as_array().map(Vec::len) == Some(1)
            && alert["category"] == "Others"
            && fact("Licence message").contains("was Enabled, now Warning")
            && fact("Company") == "Contoso Ltd"
            && tickets.len() == 1
            && stack.connectwise.tickets().len() == before + 1,
    );

    let _ = writeln!(out, "   Contoso renews: Graph says Enabled again, the next term a year away.");
    stack.m365.move_licence_subscription("demo-spb-contoso", LifecycleStep::Renewed);
    make_licences_due(stack, "demo-msp", CONTOSO).await.map_err(fail)?;
    settle(stack, out, seen).await?;
    let alerts = api.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.licence-grace-period", None).await?;
    let tickets = tickets_about(stack, "grace period");
    for ticket in &tickets {
        let _ = writeln!(out, "   ConnectWise ticket #{} closed: {}", ticket.id, ticket.body["closedFlag"]);
    }
    outcome.check(
        out,
        "the renewal resolved the alert and closed its ticket by itself, and opened nothing new",
        alerts["alerts"][0]["status"] == "Resolved"
            && tickets.len() == 1
            && tickets[0].body["closedFlag"] == true
            && stack.connectwise.tickets().len() == before + 1,
    );
    Ok(())
}
