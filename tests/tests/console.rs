//! The web console in a real browser: headless Debian Chromium driven by Playwright's Python
//! package (`tests/console/console_test.py`) against the local stack (moto, the Microsoft 365,
//! ConnectWise and Autotask simulators, every handler). The stack is seeded through the real
//! config API and simulators; the script signs in, triages an alert and sees its history change
//! and its ticket's link into the PSA, creates a ConnectWise and an Autotask destination through
//! their typed forms (the API's refusal shown on the field it names) and tests them against the
//! simulators, maps tenants to PSA companies (one by search, two by name similarity), previews
//! and confirms an admin-relationship removal, runs axe-core on every page (no serious or
//! critical violation), checks that no page scrolls sideways on a phone-sized screen, and that
//! an analyst limited to one category sees no other category anywhere. Then this test checks
//! the effects the clicks had — in the API and in the simulators, not only on screen.
//!
//! Screenshots go to `$CARGO_TARGET_DIR/console-screenshots/` (or `VIGIL_CONSOLE_SCREENSHOTS`,
//! e.g. `docs/console` to refresh the README's pictures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration as StdDuration;
use vigil_simulators::m365::fixtures::{active_assignment, gdap_relationship};
use vigil_tests::{CONNECTWISE, MspClient, forwarding_record, in_current_window, onboard, poll_and_settle, start_stack};

const MSP: &str = "console-msp";
const CONTOSO: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const FABRIKAM: &str = "5e1f2c8a-7d41-4f0e-9a51-000000000251";
const NORTHWIND: &str = "5e1f2c8a-7d41-4f0e-9a51-000000000260";
const TAILSPIN: &str = "5e1f2c8a-7d41-4f0e-9a51-000000000270";
const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const PARTNER_APP: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const PARTNER_SECRET: &str = "partner-app-secret-value-123";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
/// The Autotask simulator's "Security Operations" queue.
const AUTOTASK_QUEUE: &str = "29683481";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// An `Add-RoleGroupMember` to Organization Management: a Permissions-category alert.
fn elevation_record(id: &str, at: chrono::DateTime<Utc>) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "Add-RoleGroupMember",
        "OrganizationId": CONTOSO, "RecordType": 1, "ResultStatus": "True", "UserKey": "10032001A2B3C4D6", "UserType": 2,
        "Workload": "Exchange", "ClientIP": "203.0.113.50", "UserId": "bob@contoso.com", "ObjectId": "Organization Management",
        "Parameters": [{"Name": "Identity", "Value": "Organization Management"}, {"Name": "Member", "Value": "mallory@contoso.com"}]
    })
}

fn ok(result: &(u16, String, Value)) {
    assert!((200..300).contains(&result.0), "{result:?}");
}

/// An analyst of the MSP limited to Threat Management, and a token for it (made by the owner).
async fn analyst_token(owner: &MspClient) -> String {
    let body = json!({"name": "Tess Analyst", "email": "tess@console-msp.example", "role": "analyst", "categories": ["ThreatManagement"]});
    let created = owner.call(Method::POST, "/v1/principals", Some(body)).await;
    ok(&created);
    let id = created.2["principal_id"].as_str().unwrap().to_owned();
    let token = owner.call(Method::POST, &format!("/v1/principals/{id}/tokens"), Some(json!({"name": "console test"}))).await;
    ok(&token);
    token.2["token"].as_str().unwrap().to_owned()
}

fn python() -> PathBuf {
    let venv = repo_root().join(".tools/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `make tools` (installs Playwright, chromium and the console's npm packages)",
        venv.display()
    );
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_triage_configure_map_and_remove_access_in_a_real_browser_and_an_analyst_sees_only_their_category() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian's chromium is missing: run `make tools`");
    let axe = repo_root().join("functions/config-api/console/node_modules/axe-core/axe.min.js");
    assert!(axe.exists(), "{} is missing: run `make tools` (npm ci)", axe.display());

    let stack = start_stack().await;
    let owner = onboard(&stack, MSP, CONTOSO, 250).await;
    // Three tenants without a company link: one to map by search, two by name similarity.
    for (id, name) in [(FABRIKAM, "Fabrikam"), (NORTHWIND, "Northwind Traders Inc"), (TAILSPIN, "Tailspin Toys Ltd")] {
        ok(&owner.call(Method::POST, "/v1/tenants", Some(json!({"tenant_id": id, "name": name}))).await);
    }
    // Fabrikam's app, whose credentials the console will save (checked against the simulator).
    stack.m365.add_tenant(FABRIKAM, "22222222-3333-4444-8555-666666666666", "fabrikam-app-secret");
    // Alerts of two categories: mail forwarding (Threat Management), an admin elevation (Permissions).
    stack.m365.add_records(
        CONTOSO,
        "Audit.Exchange",
        vec![
            forwarding_record(CONTOSO, "aaaaaaaa-0000-4000-8000-000000000001", in_current_window(1)),
            elevation_record("aaaaaaaa-0000-4000-8000-000000000002", in_current_window(2)),
        ],
    );
    // The partner tenant: Contoso's delegated access unused for 100 days, Fabrikam's used.
    stack.m365.add_tenant(PARTNER, PARTNER_APP, PARTNER_SECRET);
    stack.m365.set_partner_write_role(PARTNER, true);
    stack.m365.set_sign_in_role(PARTNER, true);
    let unused = format!("{PARTNER}-{CONTOSO}");
    let kept = format!("{PARTNER}-{FABRIKAM}");
    stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&unused, CONTOSO, "Contoso", 100, &[HELPDESK_ADMINISTRATOR]));
    stack.m365.add_access_assignment(&unused, active_assignment("assignment-1", &[HELPDESK_ADMINISTRATOR]));
    stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&kept, FABRIKAM, "Fabrikam", 100, &[HELPDESK_ADMINISTRATOR]));
    stack.m365.add_access_assignment(&kept, active_assignment("assignment-2", &[HELPDESK_ADMINISTRATOR]));
    let connect = json!({"tenant_id": PARTNER, "client_id": PARTNER_APP, "client_secret": PARTNER_SECRET});
    ok(&owner.call(Method::PUT, "/v1/msp/partner-tenant", Some(connect)).await);
    poll_and_settle(&stack).await;

    let alerts = owner.alerts().await;
    let alert_of = |policy: &str| {
        alerts.iter().find(|a| a["policy_id"] == policy).unwrap_or_else(|| panic!("no {policy} alert in {alerts:#?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let triaged = alert_of("builtin.external-forwarding");
    let permissions_alert = alert_of("builtin.exchange-admin-elevation");
    let analyst = analyst_token(&owner).await;

    let shots = std::env::var("VIGIL_CONSOLE_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
        target.join("console-screenshots")
    });
    let shots = if shots.is_relative() { repo_root().join(shots) } else { shots };
    std::fs::create_dir_all(&shots).unwrap();
    let cw = stack.connectwise.credentials();
    let at = stack.autotask.credentials();
    let args = json!({
        "base": stack.api_url,
        "owner_token": owner.token,
        "analyst_token": analyst,
        "axe": axe,
        "screenshots": shots,
        "triage_alert": triaged,
        "permissions_alert": permissions_alert,
        "removal_customer": "Contoso",
        "connectwise": {"api_root": stack.connectwise.api_root(), "company_id": cw.company_id, "public_key": cw.public_key,
                        "private_key": cw.private_key, "client_id": cw.client_id},
        "autotask": {"zone_url": stack.autotask.zone_url(), "username": at.username, "secret": at.secret,
                     "integration_code": at.integration_code, "queue": AUTOTASK_QUEUE},
    });
    let script = repo_root().join("tests/console/console_test.py");
    // The browser and the stack share this process's runtime: run the script on a blocking thread.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python()).arg(&script).arg(args.to_string()).current_dir(repo_root()).output().expect("the console script runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "the browser script failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("CONSOLE BROWSER TEST PASSED"), "{stdout}");

    // What the clicks did, read back from the API and the simulators.
    let alert = owner.call(Method::GET, &format!("/v1/alerts/{triaged}"), None).await.2;
    assert_eq!(alert["status"], "InProgress", "{alert:#}");
    assert_eq!(alert["triage"]["assignee"], "jsmith");
    let history = alert["triage"]["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h["field"] == "status" && h["to"] == "InProgress"), "{history:#?}");
    assert!(alert["triage"]["comments"].as_array().unwrap().iter().any(|c| c["text"] == "Checked with the user: not theirs."));
    let suppressions = owner.call(Method::GET, "/v1/suppressions", None).await.2;
    assert!(
        suppressions["suppressions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["policy_id"] == "builtin.external-forwarding" && s["tenant_id"] == CONTOSO),
        "{suppressions:#}"
    );

    let destination = owner.call(Method::GET, "/v1/destinations/cw-console", None).await;
    assert_eq!(destination.0, 200, "{destination:?}");
    assert_eq!(destination.2["routing"]["default_place"], "7");
    assert_eq!(destination.2["credentials_set"], true);

    let autotask = owner.call(Method::GET, "/v1/destinations/sec-autotask", None).await;
    assert_eq!(autotask.0, 200, "the Autotask form saved nothing: {autotask:?}");
    assert_eq!(autotask.2["settings"]["kind"], "autotask");
    assert_eq!(autotask.2["settings"]["zone_url"], stack.autotask.zone_url());
    assert_eq!(autotask.2["routing"]["default_place"], AUTOTASK_QUEUE);
    assert_eq!(autotask.2["routing"]["categories"], json!(["ThreatManagement"]));
    assert_eq!(autotask.2["routing"]["priorities"], json!({"High": "1"}));
    assert_eq!(autotask.2["credentials_set"], true);

    let tenants = owner.call(Method::GET, "/v1/tenants", None).await.2;
    let link = |id: &str| {
        tenants["tenants"].as_array().unwrap().iter().find(|t| t["tenant_id"] == id).unwrap()["company_links"][CONNECTWISE].clone()
    };
    assert_eq!(link(FABRIKAM), json!("251"), "mapped by search");
    assert_eq!(link(NORTHWIND), json!("260"), "mapped by name similarity");
    assert_eq!(link(TAILSPIN), json!("270"), "mapped by name similarity");
    assert_eq!(link(CONTOSO), json!("250"), "untouched");
    let fabrikam = tenants["tenants"].as_array().unwrap().iter().find(|t| t["tenant_id"] == FABRIKAM).unwrap();
    assert_eq!(fabrikam["m365_credentials_set"], true, "credentials saved from the console");
    let switches = owner.call(Method::GET, &format!("/v1/tenants/{CONTOSO}/policies"), None).await.2;
    assert_eq!(switches["switches"], json!([{"tenant_id": CONTOSO, "policy_id": "builtin.external-forwarding", "enabled": false}]));

    stack.wait_idle(StdDuration::from_secs(90)).await.unwrap();
    assert_eq!(stack.m365.partner_relationship_status(&unused).as_deref(), Some("terminated"));
    assert_eq!(stack.m365.partner_relationship_status(&kept).as_deref(), Some("active"), "only the chosen relationship");
    let removals = owner.call(Method::GET, "/v1/admin-relationships/removals", None).await.2;
    assert_eq!(removals["removals"].as_array().unwrap().len(), 1, "{removals:#}");
    stack.shutdown().await;
}
