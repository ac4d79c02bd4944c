//! The OpenAPI 3.1 document: generated from the code, served at `/v1/openapi.json` without a
//! token, identical to the checked-in `functions/config-api/openapi.json` (so a change to the
//! API shows in review), valid against the OpenAPI 3.1 schema (openapi-spec-validator from the
//! tools venv), every operation routed, and every error an RFC 7807 problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use support::api;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

fn generated() -> String {
    let mut text = serde_json::to_string_pretty(&config_api::openapi::document()).unwrap();
    text.push('\n');
    text
}

#[test]
fn the_checked_in_document_is_the_one_the_code_generates() {
    let generated = generated();
    if std::env::var_os("VIGIL_UPDATE_OPENAPI").is_some() {
        std::fs::write(checked_in(), &generated).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        stored == generated,
        "functions/config-api/openapi.json differs from the API; run `VIGIL_UPDATE_OPENAPI=1 cargo test -p config-api --test openapi` and commit it"
    );
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let document: Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let validator = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/openapi-spec-validator");
    assert!(validator.exists(), "openapi-spec-validator is not in .tools: run infra/scripts/install-tools.sh");
    let dir = tempfile_dir();
    let file = dir.join("openapi.json");
    std::fs::write(&file, generated()).unwrap();
    let output = std::process::Command::new(&validator).arg(&file).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-openapi-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_error_response_is_a_problem_and_every_route_needs_a_token_but_health_this_document_and_microsofts_consent_redirect() {
    let document: Value = serde_json::from_str(&generated()).unwrap();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            // Microsoft's consent redirect carries no token: its signed single-use state is checked.
            let public = path == "/v1/health" || path == "/v1/openapi.json" || path == "/v1/consent/{msp_id}";
            assert_eq!(operation["security"] == serde_json::json!([]), public, "{method} {path}");
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}");
                }
            }
            if !public {
                for status in ["400", "401", "403", "404", "422", "429", "500", "503"] {
                    assert!(operation["responses"][status].is_object(), "{method} {path} documents {status}");
                }
            }
        }
    }
    assert!(operations >= 50, "{operations} operations");
    // Every link names an operation of the document, with the parameters it takes.
    let ids: std::collections::BTreeMap<String, Vec<String>> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| {
            let names = op["parameters"].as_array().into_iter().flatten().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
            (op["operationId"].as_str().unwrap().to_owned(), names)
        })
        .collect();
    let mut links = 0;
    for item in document["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for response in op["responses"].as_object().unwrap().values() {
                for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    links += 1;
                    let target = &ids[link["operationId"].as_str().unwrap()];
                    for parameter in link["parameters"].as_object().unwrap().keys() {
                        assert!(target.contains(parameter), "{link}");
                    }
                }
            }
        }
    }
    assert!(links >= 10, "{links} links");
}

/// A concrete path for a templated one.
fn concrete(template: &str) -> String {
    template
        .replace("{tenant_id}", support::TENANT)
        .replace("{alert_id}", "0123456789abcdef0123456789abcdef")
        .replace("{replay_id}", "rpl-0000000000000000")
        .replace('{', "x-")
        .replace('}', "")
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_the_document_is_served_without_a_token() {
    let api = api().await;
    let (status, content_type, served) = api.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
    assert_eq!(served, serde_json::from_str::<Value>(&generated()).unwrap());
    for (path, item) in served["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let (status, _, body) = api.acme(&method.to_uppercase(), &concrete(path), None).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(body["detail"] != "no such route", "{method} {path} is documented but not routed");
        }
    }
}
