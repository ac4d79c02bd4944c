//! The demo's billing step: Fabrikam's directory gains licensed mailboxes, the day's count (Graph
//! `users`, `User.Read.All`) records its protected mailboxes, the MSP maps Fabrikam to a
//! recurring-service contract in Autotask, a dry run shows the units there and the count, the
//! sync posts one contract service adjustment (a delta), and a re-run of the period changes
//! nothing; then Fabrikam is also mapped to a ConnectWise agreement and the next sync adds its
//! count there as an agreement addition. [`make_counts_due`] plays the day passing between two counts.

use crate::demo::{Api, DemoError, DemoOutcome, FABRIKAM, fail, settle};
use crate::stack::LocalStack;
use serde_json::json;
use std::io::Write;
use vigil::ids::MspId;
use vigil::ports::MailboxCountStore;
use vigil::services::poll::PollReport;

/// Fabrikam's company in the ConnectWise simulator (seeded).
const FABRIKAM_COMPANY_ID: i64 = 251;
/// The Autotask service billed per protected mailbox in the demo.
const MAILBOX_SERVICE: i64 = 410;

/// Plays a day passing for the MSP's mailbox counts: the tick asks for them again.
///
/// # Errors
/// When the config table cannot be written.
pub async fn make_counts_due(stack: &LocalStack, msp_id: &str) -> Result<(), String> {
    let store = vigil::aws::config_store::DynamoConfigStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.provisioned.table_names["ConfigTable"].clone(),
    );
    let msp = MspId::parse(msp_id).map_err(|e| e.to_string())?;
    let yesterday = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    store.set_counts_requested_on(&msp, yesterday).await.map_err(|e| e.to_string())
}

/// Step 23.
pub(crate) async fn count_and_bill(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n23. Protected mailboxes, counted daily and billed in Autotask and ConnectWise.");
    stack.m365.add_licensed_mailboxes(FABRIKAM, 37);
    stack.m365.add_user(
        FABRIKAM,
        json!({"id": "fabrikam-guest", "accountEnabled": true, "userType": "Guest",
        "assignedPlans": [{"capabilityStatus": "Enabled", "servicePlanId": "9aaf7827-d63c-4b61-89c3-182f06f82e5c"}]}),
    );
    make_counts_due(stack, "demo-msp").await.map_err(fail)?;
    settle(stack, out, seen).await?;
    let figures = api.send(reqwest::Method::GET, "/v1/mailbox-counts", None).await?;
    let fabrikam = figures["tenants"].as_array().into_iter().flatten().find(|t| t["tenant_id"] == FABRIKAM).cloned().unwrap_or_default();
    let _ = writeln!(
        out,
        "   GET graph/v1.0/users?$select=id,accountEnabled,userType,assignedPlans (ConsistencyLevel: eventual) → {} users",
        fabrikam["users"]
    );
    let _ = writeln!(
        out,
        "   GET /v1/mailbox-counts → Fabrikam: {} protected mailboxes on {}",
        fabrikam["protected_mailboxes"], fabrikam["day"]
    );
    outcome.check(out, "the count left out the guest: 37 protected mailboxes", fabrikam["protected_mailboxes"] == 37);

    let today = chrono::Utc::now().date_naive();
    let year_start = chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), 1, 1).unwrap_or(today);
    let year_end = chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), 12, 31).unwrap_or(today);
    let contract = stack.autotask.add_contract("Fabrikam managed security", 0, year_start, year_end);
    stack.autotask.add_contract_service(contract, MAILBOX_SERVICE, 30).ok_or_else(|| fail("no contract service".to_owned()))?;
    let path = format!("/v1/tenants/{FABRIKAM}/billing/autotask");
    let missing =
        api.status(reqwest::Method::PUT, &path, Some(json!({"agreement_id": "4040", "product_id": MAILBOX_SERVICE.to_string()}))).await?;
    let _ = writeln!(out, "   PUT {path} (contract 4040) → {missing}: no such contract");
    api.send(reqwest::Method::PUT, &path, Some(json!({"agreement_id": contract.to_string(), "product_id": MAILBOX_SERVICE.to_string()})))
        .await?;
    let _ = writeln!(out, "   PUT {path} → contract {contract}, service {MAILBOX_SERVICE} (checked in Autotask)");
    let dry = api.send(reqwest::Method::POST, "/v1/billing/dry-run", Some(json!({}))).await?;
    let _ = writeln!(
        out,
        "   POST /v1/billing/dry-run → units in Autotask {}, to set {} ({})",
        dry["lines"][0]["current"], dry["lines"][0]["new"], dry["lines"][0]["result"]
    );
    let run = api.send(reqwest::Method::POST, "/v1/billing/sync", Some(json!({}))).await?;
    let adjustments = stack.autotask.adjustments(contract);
    let _ = writeln!(
        out,
        "   POST /v1/billing/sync → {}: ContractServiceAdjustments unitChange {} effective {}",
        run["lines"][0]["result"],
        adjustments.first().map_or(json!(null), |a| a["unitChange"].clone()),
        adjustments.first().map_or(json!(null), |a| a["effectiveDate"].clone())
    );
    let rerun = api.send(reqwest::Method::POST, "/v1/billing/sync", Some(json!({}))).await?;
    let _ = writeln!(out, "   POST /v1/billing/sync again → {}", rerun["lines"][0]["result"]);
    outcome.check(
        out,
        "the mapping to a missing contract was refused, the sync set 37 units with one +7 delta and the re-run changed nothing",
        missing == 422
            && stack.autotask.adjustments(contract).len() == 1
            && stack.autotask.adjustments(contract)[0]["unitChange"] == 7
            && stack.autotask.units_on(contract, MAILBOX_SERVICE, today) == Some(37)
            && rerun["lines"][0]["result"] == "done_before",
    );
    bill_in_connectwise(stack, out, outcome, api, fabrikam["protected_mailboxes"].as_f64(), year_start).await?;
    let _ = writeln!(out, "   (Tigerpaw and HaloPSA are report-only.)");
    Ok(())
}

/// The same sync sets Fabrikam's count (`counted`) on its agreement in the other PSA,
/// ConnectWise: a mapping to a product not in the catalog refused, then the mailbox product
/// added to the agreement (an addition), and the Autotask line already done.
async fn bill_in_connectwise(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    counted: Option<f64>,
    start: chrono::NaiveDate,
) -> Result<(), DemoError> {
    let product = stack.connectwise.add_product("VIGIL-MBX", "Vigil protected mailbox");
    let agreement = stack.connectwise.add_agreement("Fabrikam managed services", FABRIKAM_COMPANY_ID, start, None);
    let path = format!("/v1/tenants/{FABRIKAM}/billing/connectwise");
    let unknown =
        api.status(reqwest::Method::PUT, &path, Some(json!({"agreement_id": agreement.to_string(), "product_id": "NOT-A-SKU"}))).await?;
    let _ = writeln!(out, "   PUT {path} (product NOT-A-SKU) → {unknown}: not in the ConnectWise catalog");
    api.send(reqwest::Method::PUT, &path, Some(json!({"agreement_id": agreement.to_string(), "product_id": product.to_string()}))).await?;
    let _ = writeln!(out, "   PUT {path} → agreement {agreement}, catalog item {product} VIGIL-MBX (checked in ConnectWise)");
    let run = api.send(reqwest::Method::POST, "/v1/billing/sync", Some(json!({}))).await?;
    let lines = run["lines"].as_array().cloned().unwrap_or_default();
    let result_of =
        |destination: &str| lines.iter().find(|l| l["destination_id"] == destination).map_or(json!(null), |l| l["result"].clone());
    let additions = stack.connectwise.additions(agreement);
    let _ = writeln!(
        out,
        "   POST /v1/billing/sync → connectwise {}: POST finance/agreements/{agreement}/additions quantity {}; autotask {}",
        result_of("connectwise"),
        additions.first().map_or(json!(null), |a| a["quantity"].clone()),
        result_of("autotask"),
    );
    outcome.check(
        out,
        "the mapping to a product not in the catalog was refused and the sync added Fabrikam's 37 mailboxes to its ConnectWise agreement",
        unknown == 422
            && counted == Some(37.0)
            && additions.len() == 1
            && additions[0]["quantity"].as_f64() == counted
            && result_of("connectwise") == "set"
            && result_of("autotask") == "done_before",
    );
    Ok(())
}
