//! The console's onboarding screens in a real browser (`tests/console/onboarding_test.py`,
//! headless Debian Chromium driven by Playwright) against the local stack: the owner registers
//! the MSP app, creates Litware's consent link and follows it to the Microsoft 365 simulator,
//! whose consent page redirects back to Vigil; sees Litware's access test per capability (one
//! failing with Microsoft's error and the fix) and runs it again; onboards two customers the
//! partner tenant's GDAP relationships show in bulk; offboards Litware through the confirmation
//! dialog. An engineer sees the same pages without the actions their role lacks. axe-core runs
//! on each new page. Then this test checks what the clicks did — in the API and in the
//! simulator, not only on screen.
//!
//! Screenshots go to `$CARGO_TARGET_DIR/console-screenshots/` (or `VIGIL_CONSOLE_SCREENSHOTS`,
//! e.g. `docs/console` to refresh the README's pictures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_simulators::m365::fixtures::{active_assignment, gdap_relationship};
use vigil_simulators::m365::{ALL_PERMISSIONS, ConsentDecision};
use vigil_tests::{MspClient, onboard, poll_and_settle, start_stack};

const MSP: &str = "onboarding-msp";
const CONTOSO: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const LITWARE: &str = "2d3e4f50-6172-4839-8a4b-5c6d7e8f9012";
const WOODGROVE: &str = "3e4f5061-7283-4940-9b5c-6d7e8f901223";
const TAILSPIN: &str = "4f506172-8394-4a51-8c6d-7e8f90122334";
const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const PARTNER_APP: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const PARTNER_SECRET: &str = "partner-app-secret-value-123";
const MSP_APP: &str = "3c4d5e6f-0000-4000-8000-0000000c0501";
const MSP_APP_SECRET: &str = "console-msp-app-secret-value";
const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
const RETENTION_DAYS: u32 = 7;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn ok(result: &(u16, String, Value)) {
    assert!((200..300).contains(&result.0), "{result:?}");
}

/// An engineer of the MSP (config, no credentials, no offboarding) and a token for it.
async fn engineer_token(owner: &MspClient) -> String {
    let body = json!({"name": "Eve Engineer", "email": "eve@onboarding-msp.example", "role": "engineer"});
    let created = owner.call(Method::POST, "/v1/principals", Some(body)).await;
    ok(&created);
    let id = created.2["principal_id"].as_str().unwrap().to_owned();
    let token = owner.call(Method::POST, &format!("/v1/principals/{id}/tokens"), Some(json!({"name": "console test"}))).await;
    ok(&token);
    token.2["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_onboards_by_consent_link_and_in_bulk_tests_access_and_offboards_in_a_real_browser_and_an_engineer_is_offered_none_of_it()
{
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian's chromium is missing: run `make tools`");
    let axe = repo_root().join("functions/config-api/console/node_modules/axe-core/axe.min.js");
    assert!(axe.exists(), "{} is missing: run `make tools` (npm ci)", axe.display());
    let python = repo_root().join(".tools/bin/python");
    assert!(python.exists(), "{} is missing: run `make tools`", python.display());

    let stack = start_stack().await;
    let owner = onboard(&stack, MSP, CONTOSO, 250).await;
    // Microsoft's side: the MSP's multi-tenant app with Vigil's redirect URI; Litware's
    // administrator grants everything but the sign-in log permission.
    let redirect_uri = format!("{}/v1/consent/{MSP}", stack.api_url);
    stack.m365.register_app(MSP_APP, MSP_APP_SECRET, vec![redirect_uri], None);
    let grant = ALL_PERMISSIONS.iter().filter(|p| **p != "AuditLog.Read.All").map(|p| (*p).to_owned()).collect();
    stack.m365.set_consent_decision(LITWARE, ConsentDecision::Grant(Some(grant)));
    // The partner tenant: Contoso (watched already), Woodgrove and Tailspin (not yet).
    stack.m365.add_tenant(PARTNER, PARTNER_APP, PARTNER_SECRET);
    stack.m365.set_partner_role(PARTNER, true);
    for (customer, name) in [(CONTOSO, "Contoso"), (WOODGROVE, "Woodgrove Bank"), (TAILSPIN, "Tailspin Toys")] {
        let id = format!("{PARTNER}-{customer}");
        stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&id, customer, name, 10, &[SECURITY_READER]));
        stack.m365.add_access_assignment(&id, active_assignment(&format!("assignment-{customer}"), &[SECURITY_READER]));
    }
    let connect = json!({"tenant_id": PARTNER, "client_id": PARTNER_APP, "client_secret": PARTNER_SECRET});
    ok(&owner.call(Method::PUT, "/v1/msp/partner-tenant", Some(connect)).await);
    poll_and_settle(&stack).await;
    let discovered = owner.call(Method::GET, "/v1/onboarding/discovery", None).await.2;
    assert_eq!(discovered["customers"].as_array().map(Vec::len), Some(3), "the partner tenant was read: {discovered:#}");
    let engineer = engineer_token(&owner).await;

    let shots = std::env::var("VIGIL_CONSOLE_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
        target.join("console-screenshots")
    });
    let shots = if shots.is_relative() { repo_root().join(shots) } else { shots };
    let args = json!({
        "base": stack.api_url,
        "msp": MSP,
        "owner_token": owner.token,
        "engineer_token": engineer,
        "app_id": MSP_APP,
        "app_secret": MSP_APP_SECRET,
        "litware": LITWARE,
        "discovered": [[WOODGROVE, "Woodgrove Bank"], [TAILSPIN, "Tailspin Toys"]],
        "watched": CONTOSO,
        "retention_days": RETENTION_DAYS,
        "axe": axe,
        "screenshots": shots,
    });
    let script = repo_root().join("tests/console/onboarding_test.py");
    // The browser and the stack share this process's runtime: run the script on a blocking thread.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(&script).arg(args.to_string()).current_dir(repo_root()).output().expect("the onboarding script runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "the browser script failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("ONBOARDING BROWSER TEST PASSED"), "{stdout}");

    // What the clicks did, read back from the API and the simulator.
    let app = owner.call(Method::GET, "/v1/onboarding/app", None).await;
    assert_eq!(app.2["client_id"], MSP_APP, "{app:?}");
    let links = owner.call(Method::GET, "/v1/onboarding/consent-links", None).await.2;
    let links = links["links"].as_array().unwrap();
    assert_eq!(links.len(), 3, "Litware's link and one per customer onboarded in bulk: {links:#?}");
    let litware = links.iter().find(|l| l["customer_name"] == "Litware Inc").unwrap();
    assert_eq!(litware["status"], json!({"status": "consented", "tenant_id": LITWARE}));
    for customer in [WOODGROVE, TAILSPIN] {
        let bulk = links.iter().find(|l| l["expected_tenant"] == customer).unwrap_or_else(|| panic!("no link for {customer}"));
        assert!(bulk["bulk_job"].is_string() && bulk["status"]["status"] == "issued", "{bulk:#}");
    }
    let test = owner.call(Method::GET, &format!("/v1/tenants/{LITWARE}/access-test"), None).await.2;
    let failing: Vec<&Value> =
        test["checks"].as_array().unwrap().iter().filter(|c| c["passed"] == false).map(|c| &c["capability"]).collect();
    assert_eq!(failing, [&json!("sign_ins")], "{test:#}");
    let offboarding = owner.call(Method::GET, &format!("/v1/tenants/{LITWARE}/offboarding"), None).await;
    assert_eq!(offboarding.0, 200, "{offboarding:?}");
    assert_eq!(offboarding.2["retention_days"], RETENTION_DAYS);
    assert_eq!(offboarding.2["requested_by"].as_str().map(|by| by.is_empty()), Some(false));
    let contoso = owner.call(Method::GET, &format!("/v1/tenants/{CONTOSO}/offboarding"), None).await;
    assert_eq!(contoso.0, 404, "only the tenant offboarded in the dialog: {contoso:?}");
    stack.shutdown().await;
}
