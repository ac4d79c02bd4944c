//! The destinations API on in-memory stores and an in-memory PSA: create, replace, read and
//! delete with write-only credentials, refusals naming their field, tenancy, the PSA `test`
//! and lookups, company links that release held alerts, resolution announced to the
//! dispatcher, and the replaced ConnectWise routes answering 410.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Api, CW_ROOT, TENANT, api, assert_problem, connectwise_destination};
use vigil::alert::{Alert, AlertHits};
use vigil::error::SinkError;
use vigil::ids::{DestinationId, MspId, RecordId, TenantId};
use vigil::memory::{MemoryFailure, MemoryOperation};
use vigil::messages::AlertChangedMessage;
use vigil::ports::{SecretName, SecretStore};
use vigil::ticket::{Delivery, TicketRef, TicketState};

fn acme() -> MspId {
    MspId::parse("acme").unwrap()
}

fn psa() -> DestinationId {
    DestinationId::parse("psa").unwrap()
}

/// A 422 problem whose detail starts with `detail`.
fn assert_refused(result: &(StatusCode, String, Value), detail: &str) {
    assert_problem(result, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(result.2["detail"].as_str().unwrap().starts_with(detail), "{:?} should start with {detail:?}", result.2["detail"]);
}

/// The API with acme's tenant and its ConnectWise destination `psa`.
async fn api_with_psa() -> Api {
    let api = api().await;
    assert_eq!(api.send("POST", "/v1/tenants", json!({"tenant_id": TENANT, "name": "Contoso"})).await.0, StatusCode::CREATED);
    let created = api.send("PUT", "/v1/destinations/psa", connectwise_destination()).await;
    assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.2);
    api
}

/// Stores an alert of `tenant` with one hit.
async fn stored_alert(api: &Api, tenant: &str) -> Alert {
    let alert = vigil::contract::sample_alert_for(&acme(), &TenantId::parse(tenant).unwrap(), chrono::Utc::now());
    let hits = AlertHits::of_records(alert.clone(), vec![(RecordId::parse("r1").unwrap(), chrono::Utc::now())]);
    api.state.admin.alerts.record_hits(&hits, chrono::Utc::now()).await.unwrap()
}

/// Stores `alert`'s delivery to `destination`, changed by `change`.
async fn delivery(api: &Api, alert: &Alert, destination: &str, change: impl FnOnce(&mut Delivery)) {
    let mut delivery = Delivery::new(acme(), alert.id.clone(), DestinationId::parse(destination).unwrap());
    change(&mut delivery);
    delivery.version = 1;
    api.state.admin.alerts.save_delivery(&delivery).await.unwrap();
}

fn announced(api: &Api) -> Vec<AlertChangedMessage> {
    api.tickets.drain().iter().map(|body| serde_json::from_str(body).unwrap()).collect()
}

#[tokio::test]
async fn a_destination_is_created_read_listed_replaced_and_deleted() {
    let api = api_with_psa().await;
    let shown = api.send("GET", "/v1/destinations/psa", Value::Null).await;
    assert_eq!(shown.0, StatusCode::OK);
    assert_eq!(
        (shown.2["id"].clone(), shown.2["kind"].clone(), shown.2["enabled"].clone()),
        (json!("psa"), json!("connectwise"), json!(true))
    );
    assert_eq!(shown.2["settings"], json!({"kind": "connectwise", "api_root": CW_ROOT}));
    assert_eq!(shown.2["routing"]["priorities"], json!({"High": "8"}));
    let replacement = json!({"name": "Service desk", "enabled": false, "settings": {"kind": "connectwise", "api_root": CW_ROOT},
                             "requests_per_hour": 500});
    let replaced = api.send("PUT", "/v1/destinations/psa", replacement).await;
    assert_eq!(replaced.0, StatusCode::OK, "{:?}", replaced.2);
    assert_eq!((replaced.2["name"].clone(), replaced.2["requests_per_hour"].clone()), (json!("Service desk"), json!(500)));
    assert_eq!(replaced.2["credentials_set"], true, "the stored credentials stay");
    assert_eq!(replaced.2["created_at"], shown.2["created_at"]);
    let listed = api.send("GET", "/v1/destinations", Value::Null).await;
    assert_eq!(listed.2["destinations"].as_array().unwrap().len(), 1);
    assert_eq!(listed.2["destinations"][0]["name"], "Service desk");
    assert_eq!(api.send("DELETE", "/v1/destinations/psa", Value::Null).await.0, StatusCode::NO_CONTENT);
    assert_problem(&api.send("GET", "/v1/destinations/psa", Value::Null).await, StatusCode::NOT_FOUND);
    assert!(api.send("GET", "/v1/destinations", Value::Null).await.2["destinations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn credentials_are_never_returned_and_are_stored_only_in_the_secret_store() {
    let api = api_with_psa().await;
    for path in ["/v1/destinations/psa", "/v1/destinations"] {
        let shown = api.send("GET", path, Value::Null).await;
        assert!(!shown.2.to_string().contains("priv-secret"), "{path}: {}", shown.2);
        assert!(shown.2.to_string().contains("\"credentials_set\":true"), "{path}: {}", shown.2);
    }
    let secret = api.secrets.get_secret(&SecretName::destination(&acme(), &psa())).await.unwrap().unwrap();
    assert!(secret.expose().contains("priv-secret"));
    let without = json!({"name": "New", "settings": {"kind": "connectwise", "api_root": CW_ROOT}});
    assert_refused(&api.send("PUT", "/v1/destinations/fresh", without).await, "credentials: required when creating a destination");
}

#[tokio::test]
async fn a_connectwise_destination_with_autotask_credentials_is_422() {
    let api = api().await;
    let mut body = connectwise_destination();
    body["credentials"] = json!({"kind": "autotask", "username": "api@acme.example", "secret": "at-secret", "integration_code": "code"});
    let refused = api.send("PUT", "/v1/destinations/psa", body).await;
    assert_refused(&refused, "credentials.kind: autotask credentials for a connectwise destination");
    assert!(!refused.2.to_string().contains("at-secret"));
    assert_eq!(api.secrets.get_secret(&SecretName::destination(&acme(), &psa())).await.unwrap(), None, "nothing was stored");
}

#[tokio::test]
async fn a_refused_address_or_value_is_422_naming_the_field_and_saves_nothing() {
    let api = api().await;
    let with_root = |api_root: &str| {
        let mut body = connectwise_destination();
        body["settings"]["api_root"] = json!(api_root);
        body
    };
    for (api_root, reason) in [
        ("http://api-na.myconnectwise.net/v4_6_release/apis/3.0", "must use https"),
        ("https://127.0.0.1/v4_6_release/apis/3.0", "not a public address"),
        ("https://[::ffff:10.0.0.5]/v4_6_release/apis/3.0", "not a public address"),
        ("https://169.254.169.254/v4_6_release/apis/3.0", "not a public address"),
        ("https://api-na.myconnectwise.net:22/v4_6_release/apis/3.0", "port 22 is not allowed"),
        ("https://user:pw@api-na.myconnectwise.net/v4_6_release/apis/3.0", "must not contain a user name or password"),
        ("https://localhost/v4_6_release/apis/3.0", "names this machine"),
        ("https://cw/v4_6_release/apis/3.0", "not a fully qualified host name"),
        ("https://api-na.myconnectwise.net/v4_6_release/", "must be the REST API root"),
    ] {
        let refused = api.send("PUT", "/v1/destinations/psa", with_root(api_root)).await;
        assert_refused(&refused, "settings.api_root: ");
        assert!(refused.2["detail"].as_str().unwrap().contains(reason), "{api_root}: {:?}", refused.2["detail"]);
        assert!(!refused.2.to_string().contains("priv-secret"));
    }
    let zone = json!({"name": "Autotask", "settings": {"kind": "autotask", "zone_url": "https://10.1.2.3/atservicesrest/"},
                      "credentials": {"kind": "autotask", "username": "api@acme.example", "secret": "s", "integration_code": "c"}});
    assert_refused(&api.send("PUT", "/v1/destinations/at", zone).await, "settings.zone_url: ");
    let mut long_place = connectwise_destination();
    long_place["routing"]["places"] = json!({"ThreatManagement": "p".repeat(65)});
    assert_refused(&api.send("PUT", "/v1/destinations/psa", long_place).await, "routing.places.ThreatManagement: at most 64 characters");
    let mut share = connectwise_destination();
    share["requests_per_hour"] = json!(0);
    assert_refused(&api.send("PUT", "/v1/destinations/psa", share).await, "requests_per_hour: 1 to 10000");
    let mut blank = connectwise_destination();
    blank["name"] = json!(" ");
    assert_refused(&api.send("PUT", "/v1/destinations/psa", blank).await, "name: must not be blank");
    let mut unknown = connectwise_destination();
    unknown["msp_id"] = json!("other");
    assert_refused(&api.send("PUT", "/v1/destinations/psa", unknown).await, "");
    assert_problem(&api.send("GET", "/v1/destinations/psa", Value::Null).await, StatusCode::NOT_FOUND);
    assert_eq!(api.secrets.get_secret(&SecretName::destination(&acme(), &psa())).await.unwrap(), None, "nothing was stored");
    assert_problem(&api.send("PUT", "/v1/destinations/Not_An_Id", connectwise_destination()).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_destination_and_another_msps_destination_are_404() {
    let api = api_with_psa().await;
    let other = api.other_token.clone();
    for (method, path) in [
        ("GET", "/v1/destinations/nowhere"),
        ("DELETE", "/v1/destinations/nowhere"),
        ("POST", "/v1/destinations/nowhere/test"),
        ("GET", "/v1/destinations/nowhere/places"),
    ] {
        assert_problem(&api.send(method, path, Value::Null).await, StatusCode::NOT_FOUND);
    }
    for (method, path) in [
        ("GET", "/v1/destinations/psa"),
        ("DELETE", "/v1/destinations/psa"),
        ("POST", "/v1/destinations/psa/test"),
        ("GET", "/v1/destinations/psa/companies"),
        ("GET", "/v1/destinations/psa/statuses?place=1"),
    ] {
        assert_problem(&api.call(method, path, Some(&other), None).await, StatusCode::NOT_FOUND);
    }
    assert!(api.call("GET", "/v1/destinations", Some(&other), None).await.2["destinations"].as_array().unwrap().is_empty());
    let link = json!({"company": "9"}).to_string();
    let stolen = api.call("PUT", &format!("/v1/tenants/{TENANT}/destinations/psa/company"), Some(&other), Some(&link)).await;
    assert_problem(&stolen, StatusCode::NOT_FOUND);
    assert_eq!(api.send("GET", "/v1/destinations/psa", Value::Null).await.0, StatusCode::OK, "still there for acme");
}

#[tokio::test]
async fn a_test_returns_the_psas_problems_and_a_credential_failure_as_a_result() {
    let api = api_with_psa().await;
    let fine = api.send("POST", "/v1/destinations/psa/test", Value::Null).await;
    assert_eq!((fine.0, fine.2.clone()), (StatusCode::OK, json!({"ok": true, "problems": []})));
    api.psa.system(&psa()).report_problems(vec!["board 1 does not exist".into(), "priority 8 does not exist".into()]);
    let problems = api.send("POST", "/v1/destinations/psa/test", Value::Null).await;
    assert_eq!(problems.2, json!({"ok": false, "problems": ["board 1 does not exist", "priority 8 does not exist"]}));
    let refused = SinkError::Unauthorized("401 the API member's keys are invalid".into());
    api.psa.system(&psa()).fail_next(MemoryOperation::Check, MemoryFailure::Before(refused));
    let failed = api.send("POST", "/v1/destinations/psa/test", Value::Null).await;
    assert_eq!(failed.0, StatusCode::OK);
    assert_eq!(failed.2, json!({"ok": false, "problems": ["credentials refused: 401 the API member's keys are invalid"]}));
    api.psa.refuse_setup(&psa(), "destination psa has no credentials");
    assert_eq!(
        api.send("POST", "/v1/destinations/psa/test", Value::Null).await.2["problems"],
        json!(["destination psa has no credentials"])
    );
    assert!(api.psa.system(&psa()).tickets().is_empty(), "a test creates nothing");
}

#[tokio::test]
async fn lookups_answer_the_psas_items_a_psa_failure_is_a_502_naming_its_complaint_and_a_parameter_it_cannot_take_a_422() {
    let api = api_with_psa().await;
    let companies = api.send("GET", "/v1/destinations/psa/companies?search=Con", Value::Null).await;
    assert_eq!(companies.2, json!({"items": [{"id": "250", "name": "Contoso", "default": false}]}));
    assert_eq!(api.send("GET", "/v1/destinations/psa/places", Value::Null).await.2["items"][0]["name"], "Service Desk");
    assert_eq!(api.send("GET", "/v1/destinations/psa/priorities", Value::Null).await.2["items"][0]["id"], "8");
    assert_eq!(api.send("GET", "/v1/destinations/psa/statuses?place=1", Value::Null).await.2["items"][0]["closes"], true);
    let contacts = api.send("GET", "/v1/destinations/psa/contacts?company=250&email=alice%40contoso.com", Value::Null).await;
    assert_eq!((contacts.0, contacts.2), (StatusCode::OK, json!({"items": []})));
    assert_problem(&api.send("GET", "/v1/destinations/psa/contacts", Value::Null).await, StatusCode::BAD_REQUEST);
    assert_problem(&api.send("GET", "/v1/destinations/psa/places?color=red", Value::Null).await, StatusCode::BAD_REQUEST);
    let long = format!("/v1/destinations/psa/companies?search={}", "s".repeat(101));
    assert_refused(&api.send("GET", &long, Value::Null).await, "search: at most 100 characters");
    let complaint = SinkError::Rejected(format!("400 conditions: unknown field 'nmae' {}", "x".repeat(5_000)));
    api.psa.system(&psa()).fail_next(MemoryOperation::Lookup, MemoryFailure::Before(complaint));
    let failed = api.send("GET", "/v1/destinations/psa/companies", Value::Null).await;
    assert_problem(&failed, StatusCode::BAD_GATEWAY);
    let detail = failed.2["detail"].as_str().unwrap();
    assert!(detail.starts_with("the PSA answered: request rejected: 400 conditions: unknown field 'nmae'"), "{detail}");
    assert!(detail.chars().count() < 400, "bounded: {} characters", detail.chars().count());
    let invalid = SinkError::Invalid("\"Contoso\" is not a ConnectWise company id".into());
    api.psa.system(&psa()).fail_next(MemoryOperation::Lookup, MemoryFailure::Before(invalid));
    let caller_error = api.send("GET", "/v1/destinations/psa/contacts?company=Contoso", Value::Null).await;
    assert_refused(&caller_error, "\"Contoso\" is not a ConnectWise company id");
    api.psa.refuse_setup(&psa(), "destination psa has a refused address");
    assert_refused(&api.send("GET", "/v1/destinations/psa/places", Value::Null).await, "destination psa has a refused address");
}

#[tokio::test]
async fn linking_a_tenant_re_announces_its_held_alert_for_that_destination_only() {
    let api = api_with_psa().await;
    let fabrikam = "6e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
    api.send("POST", "/v1/tenants", json!({"tenant_id": fabrikam, "name": "Fabrikam"})).await;
    let mut second = connectwise_destination();
    second["name"] = json!("Second PSA");
    api.send("PUT", "/v1/destinations/second", second).await;
    let held = stored_alert(&api, TENANT).await;
    delivery(&api, &held, "psa", |d| d.held_unlinked = true).await;
    delivery(&api, &held, "second", |d| d.held_unlinked = true).await;
    let elsewhere = stored_alert(&api, fabrikam).await;
    delivery(&api, &elsewhere, "psa", |d| d.held_unlinked = true).await;
    let linked = api.send("PUT", &format!("/v1/tenants/{TENANT}/destinations/psa/company"), json!({"company": "250"})).await;
    assert_eq!(linked.0, StatusCode::OK, "{:?}", linked.2);
    assert_eq!(linked.2["company_links"], json!({"psa": "250"}));
    assert_eq!(announced(&api), [AlertChangedMessage { msp_id: acme(), alert_id: held.id.clone(), destination: Some(psa()) }]);
    assert_eq!(api.send("GET", &format!("/v1/tenants/{TENANT}"), Value::Null).await.2["company_links"], json!({"psa": "250"}));
    let unlinked = api.send("PUT", &format!("/v1/tenants/{TENANT}/destinations/psa/company"), json!({"company": null})).await;
    assert_eq!(unlinked.2["company_links"], json!({}));
    assert!(announced(&api).is_empty(), "unlinking announces nothing");
    let path = format!("/v1/tenants/{TENANT}/destinations/psa/company");
    assert_problem(&api.send("PUT", &path, json!({})).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_refused(&api.send("PUT", &path, json!({"company": " "})).await, "company: must not be blank");
    assert_refused(&api.send("PUT", &path, json!({"company": "1".repeat(65)})).await, "company: at most 64 characters");
    let nowhere = format!("/v1/tenants/{TENANT}/destinations/nowhere/company");
    assert_problem(&api.send("PUT", &nowhere, json!({"company": "1"})).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_alert_shows_each_destinations_delivery() {
    let api = api_with_psa().await;
    let alert = stored_alert(&api, TENANT).await;
    delivery(&api, &alert, "psa", |d| {
        d.ticket = Some(TicketRef::new("1002"));
        d.psa_state = Some(TicketState::Open { status: "New".into() });
        d.psa_checked_at = Some("2026-05-01T10:00:00Z".parse().unwrap());
        d.earlier_tickets.push(vigil::ticket::EarlierTicket {
            ticket: TicketRef::new("1001"),
            ended: "closed".into(),
            at: chrono::Utc::now(),
        });
    })
    .await;
    delivery(&api, &alert, "second", |d| d.held_unlinked = true).await;
    let shown = api.send("GET", &format!("/v1/alerts/{}", alert.id), Value::Null).await;
    assert_eq!(shown.0, StatusCode::OK);
    let deliveries = shown.2["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    let first = deliveries.iter().find(|d| d["destination"] == "psa").unwrap();
    assert_eq!(
        (first["ticket"].clone(), first["closed"].clone(), first["held_until_linked"].clone()),
        (json!("1002"), json!(false), json!(false))
    );
    assert_eq!(first["psa_state"], json!({"state": "open", "status": "New"}));
    assert_eq!(first["psa_checked_at"], "2026-05-01T10:00:00Z");
    assert_eq!((first["destination_name"].clone(), first["destination_kind"].clone()), (json!("ConnectWise"), json!("connectwise")));
    assert_eq!(first["earlier_tickets"][0]["ticket"], "1001");
    let held = deliveries.iter().find(|d| d["destination"] == "second").unwrap();
    assert_eq!((held["ticket"].clone(), held["held_until_linked"].clone()), (Value::Null, json!(true)));
    // "second" was never created (or was deleted): its delivery keeps showing, without a name.
    assert!(held.get("destination_name").is_none() && held.get("destination_kind").is_none(), "{held}");
}

#[tokio::test]
async fn patching_an_alert_resolved_announces_it_to_every_destination() {
    let api = api_with_psa().await;
    let alert = stored_alert(&api, TENANT).await;
    let path = format!("/v1/alerts/{}", alert.id);
    assert_eq!(api.send("PATCH", &path, json!({"status": "InProgress"})).await.0, StatusCode::OK);
    assert!(announced(&api).is_empty(), "only Resolved closes tickets");
    let resolved = api.send("PATCH", &path, json!({"status": "Resolved"})).await;
    assert_eq!((resolved.0, resolved.2["status"].clone()), (StatusCode::OK, json!("Resolved")));
    assert_eq!(announced(&api), [AlertChangedMessage::fan_out(acme(), alert.id.clone())]);
    assert_eq!(api.send("PATCH", &path, json!({"status": "New"})).await.0, StatusCode::OK);
    assert_eq!(announced(&api), [AlertChangedMessage::fan_out(acme(), alert.id)], "reopening is announced too");
}

#[tokio::test]
async fn the_replaced_connectwise_routes_answer_410_naming_the_new_route() {
    let api = api().await;
    let old_settings =
        json!({"api_root": CW_ROOT, "company_id": "acme", "public_key": "pub", "private_key": "priv-secret", "client_id": "c"});
    for (method, path, body, successor) in [
        ("PUT", "/v1/psa/connectwise".to_owned(), old_settings, "PUT /v1/destinations/{destination_id}"),
        ("GET", "/v1/psa/connectwise".to_owned(), Value::Null, "PUT /v1/destinations/{destination_id}"),
        (
            "PUT",
            format!("/v1/tenants/{TENANT}/connectwise-company"),
            json!({"company_id": 250}),
            "PUT /v1/tenants/{tenant_id}/destinations/{destination_id}/company",
        ),
    ] {
        let gone = api.send(method, &path, body).await;
        assert_problem(&gone, StatusCode::GONE);
        assert!(gone.2["detail"].as_str().unwrap().contains(successor), "{method} {path}: {:?}", gone.2["detail"]);
    }
    assert_eq!(api.secrets.get_secret(&SecretName::legacy_connectwise(&acme())).await.unwrap(), None, "nothing was stored");
}
