//! schemathesis fuzzes the config API of the local stack (gateway, Lambda handler, DynamoDB
//! and Secrets Manager on moto, the ConnectWise simulator) from its own OpenAPI document, once
//! per role, with its examples, fuzzing and stateful phases (the document's links: create a
//! tenant → read it, create a principal → issue a token → rotate or revoke it, …): no 5xx, every
//! status, content type, header and body as the document says (so every error is
//! problem+json), within a bounded number of examples per operation. The MSP has a tenant with
//! an alert and a destination, so reads find something.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use vigil_tests::{MspClient, forwarding_record, in_current_window, onboard, poll_and_settle, record_id, start_stack};

/// Examples per operation and phase: enough to walk every operation's schema, few enough to
/// keep `make test` short (all five roles take about two minutes on 2 cores). The seed is
/// fixed, so a run is reproducible; the coverage phase is left out (hypothesis fails on the
/// recursive condition schema while describing its strategies, not on the API).
const MAX_EXAMPLES: &str = "25";
const TENANT: &str = "4b1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a33";

fn schemathesis() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/schemathesis");
    assert!(path.exists(), "schemathesis is not in .tools: run infra/scripts/install-tools.sh");
    path
}

/// A principal of the fuzzed MSP with a token.
async fn token_for(owner: &MspClient, principal: Value) -> String {
    let (status, _, created) = owner.call(reqwest::Method::POST, "/v1/principals", Some(principal)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["principal_id"].as_str().unwrap();
    let (status, _, issued) =
        owner.call(reqwest::Method::POST, &format!("/v1/principals/{id}/tokens"), Some(json!({"name": "schemathesis"}))).await;
    assert_eq!(status, 201, "{issued}");
    issued["token"].as_str().unwrap().to_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document_for_any_role() {
    let stack = start_stack().await;
    let owner = onboard(&stack, "fuzz-msp", TENANT, 250).await;
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    assert!(!owner.alerts().await.is_empty(), "the MSP has an alert to read");

    // The owner goes last: it may delete the other principals (schemathesis follows the ids
    // the API answers with).
    let roles = [
        ("automation", token_for(&owner, json!({"name": "SIEM", "role": "automation", "scopes": ["alerts:read"]})).await),
        ("read-only", token_for(&owner, json!({"name": "Rae", "email": "rae@fuzz.example", "role": "read-only"})).await),
        (
            "analyst",
            token_for(&owner, json!({"name": "Ann", "email": "ann@fuzz.example", "role": "analyst", "categories": ["ThreatManagement"]}))
                .await,
        ),
        ("engineer", token_for(&owner, json!({"name": "Eve", "email": "eve@fuzz.example", "role": "engineer"})).await),
        ("owner", owner.token.clone()),
    ];
    let schema = format!("{}/v1/openapi.json", stack.api_url);
    // schemathesis keeps a cache of crashes in its working directory: a temporary one, so a
    // run leaves nothing in the repository.
    let workdir = std::env::temp_dir().join(format!("vigil-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).unwrap();
    let mut failures = Vec::new();
    for (role, token) in &roles {
        let output = Command::new(schemathesis())
            .current_dir(&workdir)
            .args(["run", &schema, "--url", &stack.api_url])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
            ])
            .args(["--max-examples", MAX_EXAMPLES, "--seed", "20261206", "--workers", "2"])
            .args(["--phases", "examples,fuzzing,stateful", "--generation-database", "none", "--no-color"])
            .args(["--suppress-health-check", "all", "--request-timeout", "30"])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        eprintln!("schemathesis as {role}:\n{}", tail(&text, 12));
        if !output.status.success() {
            failures.push(format!("as {role}:\n{}", tail(&text, 120)));
        }
    }
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&workdir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
