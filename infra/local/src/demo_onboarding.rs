//! The demo's onboarding step: the MSP registers its multi-tenant Entra app once; a new
//! customer, Litware, is onboarded through its consent link (followed to Microsoft — the
//! simulator — whose redirect lands back on Vigil without a token), and the access test shows
//! each capability, one failing with Microsoft's error and the fix; then two customers are
//! discovered from the MSP's partner tenant (GDAP) and onboarded in bulk with a partner
//! technician's delegated credential: Tailspin, whose relationship holds Privileged Role
//! Administrator, directly (its app roles granted through Graph, no link); Woodgrove, with only
//! Security Reader, by consent link — with progress per customer.

use crate::demo::{Api, DemoError, DemoOutcome, fail, settle};
use crate::stack::LocalStack;
use serde_json::{Value, json};
use std::io::Write;
use vigil::ids::MspId;
use vigil::ports::RelationshipStore;
use vigil::services::poll::PollReport;
use vigil_simulators::m365::fixtures::{active_assignment, gdap_relationship};
use vigil_simulators::m365::{ALL_PERMISSIONS, ConsentDecision};

const APP: &str = "3c4d5e6f-0000-4000-8000-00000000d3e0";
const APP_SECRET: &str = "demo-msp-app-secret-value";
const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const LITWARE: &str = "2d3e4f50-6172-4839-8a4b-5c6d7e8f9012";
const WOODGROVE: &str = "3e4f5061-7283-4940-9b5c-6d7e8f901223";
const TAILSPIN: &str = "4f506172-8394-4a51-8c6d-7e8f90122334";
const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// Follows a consent link as the customer administrator's browser does: to Microsoft's
/// `adminconsent`, whose 302 goes back to Vigil's redirect route (no token). Vigil's answer.
async fn follow(link: &str) -> Result<Value, DemoError> {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| fail(e.to_string()))?;
    let consent = browser.get(link).send().await.map_err(|e| fail(e.to_string()))?;
    let back =
        consent.headers().get("location").and_then(|v| v.to_str().ok()).ok_or_else(|| fail("Microsoft did not redirect back"))?.to_owned();
    let answer = reqwest::get(&back).await.map_err(|e| fail(e.to_string()))?;
    answer.json().await.map_err(|e| fail(e.to_string()))
}

/// Prints an access test the way an MSP reads it.
fn print_test(out: &mut dyn Write, test: &Value) {
    for check in test["checks"].as_array().into_iter().flatten() {
        let mark = if check["passed"] == true { "pass" } else { "FAIL" };
        let _ = writeln!(out, "     {mark}  {}", check["capability"].as_str().unwrap_or("?"));
        if let (Some(error), Some(fix)) = (check["error"].as_str(), check["fix"].as_str()) {
            let _ = writeln!(out, "           Microsoft: {}", error.lines().next().unwrap_or(error));
            let _ = writeln!(out, "           fix: {fix}");
        }
    }
}

/// Plays the partner tenant's daily read being due: its last read moves a day back.
async fn make_partner_read_due(stack: &LocalStack) -> Result<(), DemoError> {
    let store = vigil::aws::config_store::DynamoConfigStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.provisioned.table_names["ConfigTable"].clone(),
    );
    let msp = MspId::parse("demo-msp").map_err(|e| fail(e.to_string()))?;
    if let Some(mut state) = store.refresh_state(&msp).await.map_err(|e| fail(e.to_string()))? {
        state.at -= chrono::Duration::days(1);
        state.last_success = state.last_success.map(|at| at - chrono::Duration::days(1));
        store.put_refresh(&msp, &state).await.map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Step 24.
pub(crate) async fn consent_link_and_bulk_onboarding(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(
        out,
        "\n24. Onboarding by consent link or, where GDAP allows it, directly: one multi-tenant app for every customer, an access test per capability."
    );
    let app = api.send(reqwest::Method::PUT, "/v1/onboarding/app", Some(json!({"client_id": APP, "client_secret": APP_SECRET}))).await?;
    let redirect_uri = app["redirect_uri"].as_str().unwrap_or_default().to_owned();
    let _ = writeln!(out, "   PUT  /v1/onboarding/app → client id {APP} (secret write-only: one secret for every consenting tenant)");
    let _ = writeln!(out, "        register this redirect URI on the app in Entra: {redirect_uri}");
    stack.m365.register_app(APP, APP_SECRET, vec![redirect_uri], None);

    // Litware's administrator grants everything but the sign-in log permission.
    let grant: Vec<String> = ALL_PERMISSIONS.iter().filter(|p| **p != "AuditLog.Read.All").map(|p| (*p).to_owned()).collect();
    stack.m365.set_consent_decision(LITWARE, ConsentDecision::Grant(Some(grant)));
    let link = api
        .send(reqwest::Method::POST, "/v1/onboarding/consent-links", Some(json!({"customer_name": "Litware Inc", "tenant_id": LITWARE})))
        .await?;
    let url = link["url"].as_str().unwrap_or_default().to_owned();
    let _ = writeln!(out, "   POST /v1/onboarding/consent-links → a signed, single-use link valid until {}:", link["expires_at"]);
    let _ = writeln!(out, "        {}…", url.chars().take(110).collect::<String>());
    let _ =
        writeln!(out, "   Litware's administrator opens it and accepts (without AuditLog.Read.All); Microsoft redirects back to Vigil:");
    let consent = follow(&url).await?;
    let _ = writeln!(out, "   GET  /v1/consent/demo-msp?tenant=…&state=…&admin_consent=True → {}", consent["link"]["status"]["status"]);
    print_test(out, &consent["access_test"]);
    let _ = writeln!(out, "   {} poll jobs queued: the first poll runs now.", consent["poll_jobs"]);
    settle(stack, out, seen).await?;
    let tenant = api.send(reqwest::Method::GET, &format!("/v1/tenants/{LITWARE}"), None).await?;
    let failing: Vec<&str> = consent["access_test"]["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] == false)
        .filter_map(|c| c["capability"].as_str())
        .collect();
    outcome.check(
        out,
        "Litware consented through its link, is watched with the MSP app, and only sign-ins failed, naming AuditLog.Read.All",
        consent["link"]["status"]["status"] == "consented"
            && tenant["m365_credentials_set"] == true
            && failing == ["sign_ins"]
            && consent["access_test"]["checks"][4]["fix"].as_str().is_some_and(|f| f.contains("AuditLog.Read.All"))
            && !stack.m365.subscriptions(LITWARE).is_empty(),
    );
    let replay = reqwest::get(format!("{}/v1/consent/demo-msp?{}", stack.api_url, url.split_once('?').map_or("", |(_, q)| q)))
        .await
        .map_err(|e| fail(e.to_string()))?
        .status()
        .as_u16();
    let _ = writeln!(
        out,
        "   The link's state sent again (without Microsoft) → {replay}: a link is used once and only Microsoft's answer counts."
    );

    let _ = writeln!(out, "   Two customers appear in the partner tenant (GDAP): Woodgrove Bank and Tailspin Toys.");
    for (customer, name, role) in
        [(WOODGROVE, "Woodgrove Bank", SECURITY_READER), (TAILSPIN, "Tailspin Toys", PRIVILEGED_ROLE_ADMINISTRATOR)]
    {
        let id = format!("{PARTNER}-{customer}");
        stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&id, customer, name, 10, &[role]));
        stack.m365.add_access_assignment(&id, active_assignment(&format!("demo-assign-{customer}"), &[role]));
    }
    make_partner_read_due(stack).await?;
    settle(stack, out, seen).await?;
    let found = api.send(reqwest::Method::GET, "/v1/onboarding/discovery", None).await?;
    let _ = writeln!(out, "   GET  /v1/onboarding/discovery →");
    for customer in found["customers"].as_array().into_iter().flatten() {
        let roles: Vec<&str> = customer["relationships"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["roles"].as_array().into_iter().flatten().filter_map(Value::as_str))
            .collect();
        let _ = writeln!(
            out,
            "     {:<16} watched: {:<5} direct grant possible: {:<5} roles: {}",
            customer["name"].as_str().unwrap_or("?"),
            customer["watched"],
            customer["direct_possible"],
            roles.join(", ")
        );
    }
    let refresh_token = stack.m365.issue_refresh_token(PARTNER, "tech@partner.example", APP);
    api.send(reqwest::Method::PUT, "/v1/msp/delegated-credential", Some(json!({"refresh_token": refresh_token}))).await?;
    let _ = writeln!(out, "   A partner technician signs in to the MSP app once (device code); the owner stores the refresh token:");
    let _ = writeln!(out, "   PUT  /v1/msp/delegated-credential → 204 (write-only; it rotates on every use)");
    let job = api.send(reqwest::Method::POST, "/v1/onboarding/bulk", Some(json!({"tenant_ids": [WOODGROVE, TAILSPIN]}))).await?;
    let _ = writeln!(
        out,
        "   POST /v1/onboarding/bulk {{Woodgrove, Tailspin}} → job {}: directly where the technician's roles allow it, else a link",
        job["id"].as_str().unwrap_or("?")
    );
    for item in job["items"].as_array().into_iter().flatten() {
        let steps: Vec<String> = item["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{} {}", s["step"].as_str().unwrap_or("?"), s["result"].as_str().unwrap_or("?")))
            .collect();
        let _ = writeln!(
            out,
            "     {:<16} {:<12} {}",
            item["name"].as_str().unwrap_or("?"),
            item["method"].as_str().unwrap_or("?"),
            steps.join(", ")
        );
        if let Some(url) = item["url"].as_str() {
            follow(url).await?;
        }
    }
    settle(stack, out, seen).await?;
    let progress = api.send(reqwest::Method::GET, &format!("/v1/onboarding/bulk/{}", job["id"].as_str().unwrap_or_default()), None).await?;
    let _ = writeln!(out, "   Woodgrove's administrator accepts its link; GET /v1/onboarding/bulk/{} →", job["id"].as_str().unwrap_or("?"));
    let items = progress["items"].as_array().cloned().unwrap_or_default();
    for item in &items {
        let _ = writeln!(
            out,
            "     {:<16} {:<12} {} (access test passed: {})",
            item["name"].as_str().unwrap_or("?"),
            item["method"].as_str().unwrap_or("?"),
            item["status"]["status"],
            item["access_test_passed"]
        );
    }
    let watched = found["customers"].as_array().into_iter().flatten().filter(|c| c["watched"] == false).count();
    let method =
        |tenant: &str| items.iter().find(|i| i["tenant_id"] == tenant).and_then(|i| i["method"].as_str()).unwrap_or_default().to_owned();
    outcome.check(
        out,
        "two customers discovered in the partner tenant were onboarded in bulk: Tailspin directly (PRA), Woodgrove by link; both pass the access test",
        replay == 409
            && watched >= 2
            && items.len() == 2
            && method(TAILSPIN) == "direct"
            && method(WOODGROVE) == "consent_link"
            && stack.m365.app_roles_granted(TAILSPIN, APP).len() == 6
            && items.iter().all(|i| i["status"]["status"] == "consented" && i["access_test_passed"] == true),
    );
    Ok(())
}
