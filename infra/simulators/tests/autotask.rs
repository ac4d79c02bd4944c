//! Wire-level tests of the Autotask PSA simulator: real HTTP requests with reqwest against a
//! simulator started on a random local port. Each test name states the behaviour it pins down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use vigil_simulators::autotask::directory::{CONTOSO_COMPANY_ID, CONTOSO_CONTACT_ID, OWN_COMPANY_ID};
use vigil_simulators::autotask::{AutotaskCredentials, AutotaskOperation, AutotaskSim, AutotaskSimHandle, FailureMode};

async fn start() -> AutotaskSimHandle {
    AutotaskSim::start(AutotaskCredentials::sample()).await.expect("simulator starts")
}

/// A request to an absolute URL with correct credentials.
fn authed(sim: &AutotaskSimHandle, method: Method, url: &str) -> RequestBuilder {
    let creds = sim.credentials();
    Client::new()
        .request(method, url)
        .header("ApiIntegrationCode", creds.integration_code)
        .header("UserName", creds.username)
        .header("Secret", creds.secret)
}

/// A request to `api_root() + path` with correct credentials.
fn api(sim: &AutotaskSimHandle, method: Method, path: &str) -> RequestBuilder {
    authed(sim, method, &format!("{}{path}", sim.api_root()))
}

async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request is sent");
    let status = resp.status();
    let text = resp.text().await.expect("body is read");
    if text.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("response is not JSON ({e}): {text:?}"));
    (status, body)
}

fn minimal(title: &str) -> Value {
    json!({"companyID": CONTOSO_COMPANY_ID, "title": title, "status": 1, "priority": 2, "dueDateTime": "2026-11-23T00:00:00Z"})
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn create(sim: &AutotaskSimHandle, body: Value) -> (StatusCode, Value) {
    send(api(sim, Method::POST, "/Tickets").json(&body)).await
}

async fn create_ok(sim: &AutotaskSimHandle, body: Value) -> i64 {
    let (status, resp) = create(sim, body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    resp["itemId"].as_i64().expect("itemId")
}

async fn get_ticket(sim: &AutotaskSimHandle, id: i64) -> Value {
    let (status, body) = send(api(sim, Method::GET, &format!("/Tickets/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["item"].clone()
}

async fn query(sim: &AutotaskSimHandle, entity: &str, body: Value) -> (StatusCode, Value) {
    send(api(sim, Method::POST, &format!("/{entity}/query")).json(&body)).await
}

async fn query_ids(sim: &AutotaskSimHandle, filter: Value) -> Vec<i64> {
    let (status, body) = query(sim, "Tickets", json!({"filter": filter})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

/// The single error message of a `{"errors": [...]}` body, joined.
fn errors(body: &Value) -> String {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {body}"))
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn add_note(sim: &AutotaskSimHandle, ticket: i64, body: Value) -> (StatusCode, Value) {
    send(api(sim, Method::POST, &format!("/Tickets/{ticket}/Notes")).json(&body)).await
}

fn note(description: &str) -> Value {
    json!({"title": "Vigil", "description": description, "noteType": 1, "publish": 1})
}

// ---------------------------------------------------------------------------------------------
// Zones and authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn zone_discovery_needs_no_credentials_and_points_at_this_server() {
    let sim = start().await;
    let url = format!("{}/ATServicesRest/V1.0/zoneInformation?user={}", sim.base_url(), sim.credentials().username.to_uppercase());
    let (status, body) = send(Client::new().get(url)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["url"], json!(sim.zone_url()));
    assert!(body["zoneName"].is_string() && body["webUrl"].is_string() && body["ci"].is_i64(), "{body}");
    // The zone URL plus "v1.0/" is a working API root, whatever its case.
    let threshold = format!("{}v1.0/ThresholdInformation", body["url"].as_str().unwrap());
    let (status, _) = send(authed(&sim, Method::GET, &threshold)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn zone_discovery_of_an_unknown_user_answers_404_with_errors() {
    let sim = start().await;
    let url = format!("{}/atservicesrest/v1.0/zoneInformation?user=nobody@example.com", sim.base_url());
    let (status, body) = send(Client::new().get(url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(errors(&body).contains("nobody@example.com"));
}

#[tokio::test]
async fn version_information_lists_version_1_0_without_credentials() {
    let sim = start().await;
    let (status, body) = send(Client::new().get(format!("{}/atservicesrest/versioninformation", sim.base_url()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"apiVersions": ["1.0"]}));
}

#[tokio::test]
async fn an_api_call_without_credentials_is_refused_with_401_and_an_empty_body() {
    let sim = start().await;
    let resp = Client::new().get(format!("{}/Tickets/1", sim.api_root())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.text().await.unwrap(), "");
}

#[tokio::test]
async fn a_wrong_secret_or_integration_code_is_refused_with_401() {
    let sim = start().await;
    let creds = sim.credentials();
    for (code, secret) in [(creds.integration_code.as_str(), "wrong"), ("WRONG", creds.secret.as_str())] {
        let resp = Client::new()
            .get(format!("{}/ThresholdInformation", sim.api_root()))
            .header("ApiIntegrationCode", code)
            .header("UserName", &creds.username)
            .header("Secret", secret)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(sim.tickets().len(), 0);
}

#[tokio::test]
async fn authentication_header_names_are_case_insensitive_and_credentials_debug_is_redacted() {
    let sim = start().await;
    let creds = sim.credentials();
    let resp = Client::new()
        .get(format!("{}/ThresholdInformation", sim.api_root()))
        .header("apiintegrationcode", &creds.integration_code)
        .header("USERNAME", &creds.username)
        .header("secret", &creds.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let debug = format!("{creds:?}");
    assert!(!debug.contains(&creds.secret) && !debug.contains(&creds.integration_code), "{debug}");
}

// ---------------------------------------------------------------------------------------------
// Tickets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_created_ticket_answers_its_item_id_and_reads_back_in_camel_case() {
    let sim = start().await;
    // PascalCase input, as the swagger shows it: accepted.
    let id = create_ok(
        &sim,
        json!({"CompanyID": 174, "Title": "Vigil: risky sign-in", "Status": 1, "Priority": 2, "DueDateTime": "2026-11-23T00:00:00Z",
               "QueueID": 29683354, "ExternalID": "vigil:abc", "ContactID": CONTOSO_CONTACT_ID, "IssueType": 7, "SubIssueType": 101}),
    )
    .await;
    let item = get_ticket(&sim, id).await;
    assert_eq!(item["id"], json!(id));
    assert_eq!(item["companyID"], json!(174));
    assert_eq!(item["title"], json!("Vigil: risky sign-in"));
    assert_eq!(item["externalID"], json!("vigil:abc"));
    assert_eq!(item["queueID"], json!(29683354));
    assert!(item["ticketNumber"].as_str().unwrap().starts_with('T'), "{item}");
    assert!(item["createDate"].is_string() && item["lastActivityDate"].is_string());
    assert_eq!(item["completedDate"], Value::Null);
    assert_eq!(item["ticketCategory"], json!(2), "absent category takes the default");
    assert!(item.get("Title").is_none());
}

#[tokio::test]
async fn an_unknown_ticket_id_reads_as_a_null_item_with_200() {
    let sim = start().await;
    let (status, body) = send(api(&sim, Method::GET, "/Tickets/999999")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"item": null}));
}

#[tokio::test]
async fn patch_changes_only_the_sent_fields_and_records_activity() {
    let sim = start().await;
    let id = create_ok(&sim, with(minimal("Original"), json!({"description": "first"}))).await;
    let before = get_ticket(&sim, id).await;
    sim.advance_clock(Duration::from_secs(60));
    let (status, body) = send(api(&sim, Method::PATCH, "/Tickets").json(&json!({"id": id, "priority": 1}))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"itemId": id})));
    let after = get_ticket(&sim, id).await;
    assert_eq!(after["priority"], json!(1));
    assert_eq!(after["title"], json!("Original"));
    assert_eq!(after["description"], json!("first"));
    assert_ne!(after["lastActivityDate"], before["lastActivityDate"]);
}

#[tokio::test]
async fn completing_through_patch_sets_the_completed_date_and_reopening_clears_it() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("To close")).await;
    send(api(&sim, Method::PATCH, "/Tickets").json(&json!({"id": id, "status": 5}))).await;
    let done = get_ticket(&sim, id).await;
    assert_eq!(done["status"], json!(5));
    assert!(done["completedDate"].is_string(), "{done}");
    send(api(&sim, Method::PATCH, "/Tickets").json(&json!({"id": id, "status": 8}))).await;
    assert_eq!(get_ticket(&sim, id).await["completedDate"], Value::Null);
}

#[tokio::test]
async fn patch_of_an_unknown_ticket_answers_404_and_patch_without_id_answers_500() {
    let sim = start().await;
    let (status, body) = send(api(&sim, Method::PATCH, "/Tickets").json(&json!({"id": 424242, "status": 5}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = send(api(&sim, Method::PATCH, "/Tickets").json(&json!({"status": 5}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("id"));
}

#[tokio::test]
async fn patch_cannot_clear_a_required_field() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("Keep my title")).await;
    let (status, body) = send(api(&sim, Method::PATCH, "/Tickets").json(&json!({"id": id, "title": null}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("title"));
    assert_eq!(get_ticket(&sim, id).await["title"], json!("Keep my title"));
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_ticket_without_a_title_is_refused_with_http_500_and_names_the_field() {
    let sim = start().await;
    let mut body = minimal("x");
    body.as_object_mut().unwrap().remove("title");
    let (status, resp) = create(&sim, body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&resp).contains("title"), "{resp}");
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn every_missing_required_field_is_named_including_the_strict_due_date() {
    let sim = start().await;
    let (status, resp) = create(&sim, json!({"description": "only this"})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = errors(&resp);
    for field in ["companyID", "title", "status", "priority", "dueDateTime"] {
        assert!(text.contains(field), "{field} not named in {text}");
    }
}

#[tokio::test]
async fn text_longer_than_the_field_allows_is_refused_naming_the_field() {
    let sim = start().await;
    for (field, max) in [("title", 255), ("description", 8000), ("externalID", 50), ("purchaseOrderNumber", 50)] {
        let (status, resp) = create(&sim, with(minimal("Long"), json!({ field: "x".repeat(max + 1) }))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{field}");
        let text = errors(&resp);
        assert!(text.contains(field) && text.contains(&max.to_string()), "{text}");
        // Exactly the maximum is fine.
        create_ok(&sim, with(minimal("Long"), json!({ field: "x".repeat(max) }))).await;
    }
}

#[tokio::test]
async fn an_unknown_property_is_refused_naming_it() {
    let sim = start().await;
    let (status, resp) = create(&sim, with(minimal("x"), json!({"summary": "a ConnectWise field"}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&resp).contains("summary"));
}

#[tokio::test]
async fn picklist_fields_only_take_active_values_of_the_picklist() {
    let sim = start().await;
    for (field, bad) in
        [("status", 14), ("status", 99), ("priority", 5), ("queueID", 29683482), ("source", 3), ("ticketType", 42), ("ticketCategory", 6)]
    {
        let (status, resp) = create(&sim, with(minimal("Pick"), json!({ field: bad }))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{field}={bad}");
        assert!(errors(&resp).contains(field), "{resp}");
    }
    create_ok(
        &sim,
        with(minimal("Pick"), json!({"status": 8, "priority": 4, "queueID": 8, "source": -1, "ticketType": 5, "ticketCategory": 3})),
    )
    .await;
}

#[tokio::test]
async fn a_sub_issue_type_must_belong_to_the_issue_type() {
    let sim = start().await;
    let (status, resp) = create(&sim, with(minimal("Sub"), json!({"issueType": 14, "subIssueType": 101}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&resp).contains("subIssueType"));
    let (status, _) = create(&sim, with(minimal("Sub"), json!({"subIssueType": 101}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "a sub-issue type needs its issue type");
    create_ok(&sim, with(minimal("Sub"), json!({"issueType": 14, "subIssueType": 301}))).await;
}

#[tokio::test]
async fn an_unknown_company_or_a_contact_of_another_company_is_refused() {
    let sim = start().await;
    let (status, resp) = create(&sim, with(minimal("x"), json!({"companyID": 999}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&resp).contains("companyID"));
    let other = sim.add_company("Fabrikam Inc");
    let (status, resp) = create(&sim, with(minimal("x"), json!({"companyID": other, "contactID": CONTOSO_CONTACT_ID}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&resp).contains("contactID"));
    let contact = sim.add_contact(other, "ops@fabrikam.example", "Olga", "Ops");
    create_ok(&sim, with(minimal("x"), json!({"companyID": other, "contactID": contact}))).await;
    create_ok(&sim, with(minimal("MSP internal"), json!({"companyID": OWN_COMPANY_ID}))).await;
}

#[tokio::test]
async fn wrong_types_are_refused_naming_the_field() {
    let sim = start().await;
    for (field, value) in [("status", json!("1")), ("title", json!(5)), ("dueDateTime", json!("next tuesday"))] {
        let (status, resp) = create(&sim, with(minimal("Types"), json!({ field: value }))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{field}");
        assert!(errors(&resp).contains(field), "{resp}");
    }
}

#[tokio::test]
async fn malformed_json_answers_400_with_errors() {
    let sim = start().await;
    let (status, body) = send(api(&sim, Method::POST, "/Tickets").header("Content-Type", "application/json").body("{\"title\": ")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!errors(&body).is_empty());
}

#[tokio::test]
async fn read_only_fields_in_a_body_are_ignored() {
    let sim = start().await;
    let id =
        create_ok(&sim, with(minimal("RO"), json!({"id": 0, "ticketNumber": "T-FAKE", "completedDate": "2020-01-01T00:00:00Z"}))).await;
    let item = get_ticket(&sim, id).await;
    assert_ne!(item["ticketNumber"], json!("T-FAKE"));
    assert_eq!(item["completedDate"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Notes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn notes_are_created_through_the_ticket_child_url_only() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("With notes")).await;
    let (status, body) = add_note(&sim, id, note("Sign-in from a new country")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["itemId"].is_i64());
    let (status, body) = send(api(&sim, Method::POST, "/TicketNotes").json(&with(note("root"), json!({"ticketID": id})))).await;
    assert!(status.is_client_error(), "{status}");
    assert!(errors(&body).contains("Tickets/{ticketId}/Notes"));
    let (_, listed) = send(api(&sim, Method::GET, &format!("/Tickets/{id}/Notes"))).await;
    let notes = listed["items"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["ticketID"], json!(id));
    assert_eq!(notes[0]["description"], json!("Sign-in from a new country"));
    assert_eq!(sim.ticket(id).unwrap().notes.len(), 1);
}

#[tokio::test]
async fn a_note_needs_description_note_type_and_publish_within_limits() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("Notes rules")).await;
    let (status, body) = add_note(&sim, id, json!({"title": "t"})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = errors(&body);
    for field in ["description", "noteType", "publish"] {
        assert!(text.contains(field), "{text}");
    }
    let (status, body) = add_note(&sim, id, with(note("d"), json!({"title": "t".repeat(251)}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("250"));
    let (status, _) = add_note(&sim, id, note(&"d".repeat(32001))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, body) = add_note(&sim, id, with(note("d"), json!({"noteType": 18}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "inactive note type");
    assert!(errors(&body).contains("noteType"));
    let (status, _) = add_note(&sim, 987654, note("orphan")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    add_note(&sim, id, note(&"d".repeat(32000))).await;
    assert_eq!(sim.ticket(id).unwrap().notes.len(), 1);
}

#[tokio::test]
async fn ticket_notes_query_filters_on_ticket_id_and_description() {
    let sim = start().await;
    let a = create_ok(&sim, minimal("A")).await;
    let b = create_ok(&sim, minimal("B")).await;
    add_note(&sim, a, note("Mailbox rule forwards to gmail")).await;
    add_note(&sim, a, note("Resolved by the technician")).await;
    add_note(&sim, b, note("Mailbox rule deletes mail")).await;
    let (status, body) = query(
        &sim,
        "TicketNotes",
        json!({"filter": [{"op": "eq", "field": "ticketID", "value": a}, {"op": "contains", "field": "Description", "value": "MAILBOX"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["description"], json!("Mailbox rule forwards to gmail"));
    let (_, count) = send(
        api(&sim, Method::POST, "/TicketNotes/query/count")
            .json(&json!({"filter": [{"op": "contains", "field": "description", "value": "mailbox"}]})),
    )
    .await;
    assert_eq!(count, json!({"queryCount": 2}));
}

// ---------------------------------------------------------------------------------------------
// Query language and paging
// ---------------------------------------------------------------------------------------------

async fn three_tickets(sim: &AutotaskSimHandle) -> (i64, i64, i64) {
    let a = create_ok(sim, with(minimal("Alpha sign-in"), json!({"externalID": "vigil:a", "priority": 1, "queueID": 8}))).await;
    let b = create_ok(sim, with(minimal("Beta mailbox"), json!({"externalID": "vigil:b", "priority": 2}))).await;
    let c = create_ok(sim, with(minimal("Gamma sign-in"), json!({"priority": 3, "status": 5}))).await;
    (a, b, c)
}

#[tokio::test]
async fn the_comparison_operators_filter_tickets() {
    let sim = start().await;
    let (a, b, c) = three_tickets(&sim).await;
    assert_eq!(query_ids(&sim, json!([{"op": "eq", "field": "externalID", "value": "VIGIL:A"}])).await, vec![a]);
    assert_eq!(query_ids(&sim, json!([{"op": "noteq", "field": "status", "value": 5}])).await, vec![a, b]);
    assert_eq!(query_ids(&sim, json!([{"op": "gt", "field": "priority", "value": 1}])).await, vec![b, c]);
    assert_eq!(query_ids(&sim, json!([{"op": "gte", "field": "priority", "value": 2}])).await, vec![b, c]);
    assert_eq!(query_ids(&sim, json!([{"op": "lt", "field": "priority", "value": 2}])).await, vec![a]);
    assert_eq!(query_ids(&sim, json!([{"op": "lte", "field": "priority", "value": 2}])).await, vec![a, b]);
    assert_eq!(query_ids(&sim, json!([{"op": "beginsWith", "field": "title", "value": "alpha"}])).await, vec![a]);
    assert_eq!(query_ids(&sim, json!([{"op": "endsWith", "field": "title", "value": "SIGN-IN"}])).await, vec![a, c]);
    assert_eq!(query_ids(&sim, json!([{"op": "contains", "field": "title", "value": "mail"}])).await, vec![b]);
    assert_eq!(query_ids(&sim, json!([{"op": "exist", "field": "externalID"}])).await, vec![a, b]);
    assert_eq!(query_ids(&sim, json!([{"op": "notExist", "field": "queueID"}])).await, vec![b, c]);
    assert_eq!(query_ids(&sim, json!([{"op": "in", "field": "priority", "value": [1, 3]}])).await, vec![a, c]);
    assert_eq!(query_ids(&sim, json!([{"op": "notIn", "field": "id", "value": [a, c]}])).await, vec![b]);
    assert_eq!(query_ids(&sim, json!([{"op": "gt", "field": "createDate", "value": "2000-01-01T00:00:00Z"}])).await, vec![a, b, c]);
}

#[tokio::test]
async fn and_or_groups_nest_and_top_level_items_are_anded() {
    let sim = start().await;
    let (a, b, c) = three_tickets(&sim).await;
    let ids = query_ids(
        &sim,
        json!([{"op": "or", "items": [
            {"op": "eq", "field": "priority", "value": 3},
            {"op": "and", "items": [{"op": "contains", "field": "title", "value": "beta"}, {"op": "eq", "field": "externalID", "value": "vigil:b"}]}
        ]}]),
    )
    .await;
    assert_eq!(ids, vec![b, c]);
    let ids =
        query_ids(&sim, json!([{"op": "contains", "field": "title", "value": "sign-in"}, {"op": "noteq", "field": "status", "value": 5}]))
            .await;
    assert_eq!(ids, vec![a]);
}

#[tokio::test]
async fn an_unknown_filter_field_or_operator_is_refused_with_http_500() {
    let sim = start().await;
    let (status, body) = query(&sim, "Tickets", json!({"filter": [{"op": "eq", "field": "summary", "value": 1}]})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("summary"));
    let (status, body) = query(&sim, "Tickets", json!({"filter": [{"op": "like", "field": "title", "value": "x"}]})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("like"));
    let (status, _) = query(&sim, "Tickets", json!({"filter": [{"op": "in", "field": "status", "value": 1}]})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "in needs an array");
}

#[tokio::test]
async fn a_filter_may_hold_at_most_500_conditions_and_max_records_is_1_to_500() {
    let sim = start().await;
    let conditions = |n: usize| (0..n).map(|i| json!({"op": "eq", "field": "id", "value": i})).collect::<Vec<_>>();
    let (status, _) = query(&sim, "Tickets", json!({"filter": [{"op": "or", "items": conditions(500)}]})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = query(&sim, "Tickets", json!({"filter": [{"op": "or", "items": conditions(501)}]})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("500"));
    for bad in [0, 501] {
        let (status, _) = query(&sim, "Tickets", json!({"MaxRecords": bad, "filter": [{"op": "exist", "field": "id"}]})).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "MaxRecords {bad}");
    }
    let (status, _) = query(&sim, "Tickets", json!({"MaxRecords": 10, "filter": []})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "a query needs a condition");
}

#[tokio::test]
async fn include_fields_projects_each_item_and_always_keeps_the_id() {
    let sim = start().await;
    three_tickets(&sim).await;
    let (status, body) =
        query(&sim, "Tickets", json!({"IncludeFields": ["Title", "status"], "filter": [{"op": "exist", "field": "id"}]})).await;
    assert_eq!(status, StatusCode::OK);
    for item in body["items"].as_array().unwrap() {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{item}");
        assert!(item["id"].is_i64() && item["title"].is_string() && item["status"].is_i64());
    }
}

#[tokio::test]
async fn paging_follows_next_page_url_until_null() {
    let sim = start().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(create_ok(&sim, minimal(&format!("Page {i}"))).await);
    }
    let (_, mut page) = query(&sim, "Tickets", json!({"MaxRecords": 3, "filter": [{"op": "gt", "field": "id", "value": 0}]})).await;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert_eq!(page["pageDetails"]["count"].as_u64().unwrap() as usize, page["items"].as_array().unwrap().len());
        assert_eq!(page["pageDetails"]["requestCount"], json!(3));
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()));
        let Some(next) = page["pageDetails"]["nextPageUrl"].as_str().map(str::to_string) else { break };
        assert!(next.starts_with(&sim.api_root()), "{next}");
        let (status, body) = send(authed(&sim, Method::GET, &next)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["pageDetails"]["prevPageUrl"].is_string());
        page = body;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);
    // The last page links back to the second.
    let prev = page["pageDetails"]["prevPageUrl"].as_str().unwrap().to_string();
    let (_, second) = send(authed(&sim, Method::GET, &prev)).await;
    let ids: Vec<i64> = second["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, created[3..6].to_vec());
    // Page URLs need credentials like every API call.
    assert_eq!(Client::new().get(prev).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn get_query_takes_the_search_parameter_and_count_answers_query_count() {
    let sim = start().await;
    let (a, _, _) = three_tickets(&sim).await;
    let search = json!({"filter": [{"op": "eq", "field": "externalID", "value": "vigil:a"}]}).to_string();
    let (status, body) = send(api(&sim, Method::GET, "/Tickets/query").query(&[("search", &search)])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["id"], json!(a));
    let (_, count) =
        send(api(&sim, Method::POST, "/Tickets/query/count").json(&json!({"filter": [{"op": "noteq", "field": "status", "value": 5}]})))
            .await;
    assert_eq!(count, json!({"queryCount": 2}));
    let (_, count) = send(api(&sim, Method::GET, "/tickets/QUERY/count").query(&[("search", &search)])).await;
    assert_eq!(count, json!({"queryCount": 1}));
}

// ---------------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ticket_field_information_lists_every_field_with_picklists_and_parents() {
    let sim = start().await;
    let (status, body) = send(api(&sim, Method::GET, "/Tickets/entityInformation/fields")).await;
    assert_eq!(status, StatusCode::OK);
    let fields = body["fields"].as_array().unwrap();
    let field = |name: &str| fields.iter().find(|f| f["name"] == json!(name)).cloned().unwrap_or_else(|| panic!("no field {name}"));
    assert!(fields.len() > 60);
    let status_field = field("status");
    assert_eq!(status_field["isPickList"], json!(true));
    assert_eq!(status_field["isRequired"], json!(true));
    let complete = status_field["picklistValues"].as_array().unwrap().iter().find(|v| v["value"] == json!("5")).unwrap().clone();
    assert_eq!(complete["label"], json!("Complete"));
    for key in ["value", "label", "isDefaultValue", "sortOrder", "parentValue", "isActive", "isSystem"] {
        assert!(complete.get(key).is_some(), "{key}");
    }
    assert_eq!(field("title")["length"], json!(255));
    assert_eq!(field("subIssueType")["picklistParentValueField"], json!("issueType"));
    assert_eq!(field("companyID")["referenceEntityType"], json!("Company"));
    let queues: Vec<String> =
        field("queueID")["picklistValues"].as_array().unwrap().iter().map(|v| v["label"].as_str().unwrap().to_string()).collect();
    assert!(queues.contains(&"Monitoring Alert".to_string()) && queues.contains(&"Client Portal".to_string()));
    assert!(field("ticketNumber")["isReadOnly"].as_bool().unwrap());
    let (_, notes) = send(api(&sim, Method::GET, "/TicketNotes/entityInformation/fields")).await;
    let note_fields = notes["fields"].as_array().unwrap();
    for name in ["noteType", "publish"] {
        let f = note_fields.iter().find(|f| f["name"] == json!(name)).unwrap();
        assert_eq!(f["isPickList"], json!(true));
        assert_eq!(f["isRequired"], json!(true));
    }
}

#[tokio::test]
async fn companies_and_contacts_are_queryable_including_added_ones() {
    let sim = start().await;
    let fabrikam = sim.add_company("Fabrikam Inc");
    let contact = sim.add_contact(fabrikam, "ops@fabrikam.example", "Olga", "Ops");
    let (status, body) = query(&sim, "Companies", json!({"filter": [{"op": "contains", "field": "companyName", "value": "contoso"}, {"op": "eq", "field": "isActive", "value": true}]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["id"], json!(CONTOSO_COMPANY_ID));
    let (_, body) =
        query(&sim, "Contacts", json!({"filter": [{"op": "eq", "field": "emailAddress", "value": "OPS@fabrikam.example"}]})).await;
    let item = &body["items"][0];
    assert_eq!(item["id"], json!(contact));
    assert_eq!(item["companyID"], json!(fabrikam));
    assert_eq!((item["firstName"].clone(), item["lastName"].clone(), item["isActive"].clone()), (json!("Olga"), json!("Ops"), json!(1)));
    let (_, one) = send(api(&sim, Method::GET, &format!("/Companies/{fabrikam}"))).await;
    assert_eq!(one["item"]["companyName"], json!("Fabrikam Inc"));
}

// ---------------------------------------------------------------------------------------------
// Threshold
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn threshold_information_reports_the_limit_and_current_usage() {
    let sim = start().await;
    create_ok(&sim, minimal("one")).await;
    let (status, body) = send(api(&sim, Method::GET, "/ThresholdInformation")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"externalRequestThreshold": 10000, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": 2}));
}

#[tokio::test]
async fn over_the_threshold_requests_are_refused_until_the_rolling_hour_frees_capacity() {
    let sim = start().await;
    sim.set_threshold(5);
    for _ in 0..3 {
        create_ok(&sim, minimal("early")).await;
    }
    sim.advance_clock(Duration::from_secs(30 * 60));
    for _ in 0..2 {
        create_ok(&sim, minimal("later")).await;
    }
    let (status, body) = create(&sim, minimal("one too many")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(errors(&body).contains("threshold"), "{body}");
    assert_eq!(sim.tickets().len(), 5);
    // Zone discovery is exempt.
    let url = format!("{}/atservicesrest/v1.0/zoneInformation?user={}", sim.base_url(), sim.credentials().username);
    assert_eq!(Client::new().get(url).send().await.unwrap().status(), StatusCode::OK);
    // 31 minutes later the first three have left the rolling hour; the last two still count.
    sim.advance_clock(Duration::from_secs(31 * 60));
    assert_eq!(sim.current_timeframe_request_count(), 2);
    create_ok(&sim, minimal("room again")).await;
    let (_, info) = send(api(&sim, Method::GET, "/ThresholdInformation")).await;
    assert_eq!(info["externalRequestThreshold"], json!(5));
    assert_eq!(info["currentTimeframeRequestCount"], json!(4));
}

// ---------------------------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_injected_status_fails_before_any_work() {
    let sim = start().await;
    sim.fail_next(AutotaskOperation::CreateTicket, FailureMode::Status(503), 1);
    let (status, body) = create(&sim, minimal("not stored")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!errors(&body).is_empty());
    assert!(sim.tickets().is_empty());
    create_ok(&sim, minimal("stored")).await;
}

#[tokio::test]
async fn an_after_commit_failure_stores_the_ticket_yet_answers_an_error() {
    let sim = start().await;
    sim.fail_next(AutotaskOperation::CreateTicket, FailureMode::AfterCommit(500), 1);
    // A request that fails validation gets its real error and leaves the failure armed.
    let (status, body) = create(&sim, json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("title"));
    let (status, _) = create(&sim, with(minimal("Committed"), json!({"externalID": "vigil:dup"}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(sim.tickets().len(), 1);
    let ids = query_ids(&sim, json!([{"op": "eq", "field": "externalID", "value": "vigil:dup"}])).await;
    assert_eq!(ids.len(), 1, "the dedupe query finds the committed ticket");
}

#[tokio::test]
async fn a_hang_after_commit_stores_the_note_while_the_caller_times_out() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("Hang")).await;
    sim.fail_next(AutotaskOperation::AddNote, FailureMode::HangAfterCommit(3), 1);
    let result =
        api(&sim, Method::POST, &format!("/Tickets/{id}/Notes")).json(&note("late")).timeout(Duration::from_millis(300)).send().await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(sim.ticket(id).unwrap().notes.len(), 1);
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after_and_latency_only_delays() {
    let sim = start().await;
    sim.fail_next(AutotaskOperation::Any, FailureMode::Throttle { retry_after: 7 }, 1);
    let resp = api(&sim, Method::GET, "/Tickets/1").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    sim.fail_next(AutotaskOperation::GetTicket, FailureMode::Latency(300), 1);
    let started = std::time::Instant::now();
    let (status, _) = send(api(&sim, Method::GET, "/Tickets/1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn failures_armed_through_the_control_route_are_consumed_in_order() {
    let sim = start().await;
    let client = Client::new();
    for (mode, status) in [("status", 502), ("after_commit", 504)] {
        let resp = client
            .post(format!("{}/_sim/fail", sim.base_url()))
            .json(&json!({"operation": "query_tickets", "mode": mode, "status": status, "times": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let body = json!({"filter": [{"op": "exist", "field": "id"}]});
    assert_eq!(query(&sim, "Tickets", body.clone()).await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(query(&sim, "Tickets", body.clone()).await.0, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(query(&sim, "Tickets", body).await.0, StatusCode::OK);
    let resp = client.post(format!("{}/_sim/fail", sim.base_url())).json(&json!({"operation": "nope"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------------------------
// Technician actions and control routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_technician_completes_a_ticket_through_the_control_route() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("Tech closes")).await;
    let resp = Client::new()
        .post(format!("{}/_sim/tickets/{id}/complete", sim.base_url()))
        .json(&json!({"by": "Sam Senior"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let item = get_ticket(&sim, id).await;
    assert_eq!(item["status"], json!(5));
    assert!(item["completedDate"].is_string());
    let by = item["completedByResourceID"].as_i64().unwrap();
    assert_eq!(sim.add_resource("Someone Else"), by + 1, "the named technician became a resource");
    let resp = Client::new().post(format!("{}/_sim/tickets/999/complete", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_ticket_reads_as_null_and_no_query_finds_it() {
    let sim = start().await;
    let id = create_ok(&sim, with(minimal("Doomed"), json!({"externalID": "vigil:gone"}))).await;
    add_note(&sim, id, note("bye")).await;
    let resp = Client::new().post(format!("{}/_sim/tickets/{id}/delete", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(get_ticket(&sim, id).await, Value::Null);
    assert!(query_ids(&sim, json!([{"op": "eq", "field": "externalID", "value": "vigil:gone"}])).await.is_empty());
    let (_, notes) = query(&sim, "TicketNotes", json!({"filter": [{"op": "eq", "field": "ticketID", "value": id}]})).await;
    assert_eq!(notes["items"], json!([]));
}

#[tokio::test]
async fn a_merged_ticket_is_completed_and_both_tickets_record_the_survivor() {
    let sim = start().await;
    let survivor = create_ok(&sim, minimal("Survivor")).await;
    let merged = create_ok(&sim, minimal("Duplicate")).await;
    let resp = Client::new()
        .post(format!("{}/_sim/tickets/{merged}/merge", sim.base_url()))
        .json(&json!({"into": survivor}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let item = get_ticket(&sim, merged).await;
    assert_eq!(item["status"], json!(5));
    assert!(item["completedDate"].is_string());
    let (_, listed) = send(Client::new().get(format!("{}/_sim/tickets", sim.base_url()))).await;
    let tickets = listed["tickets"].as_array().unwrap();
    let merged_entry = tickets.iter().find(|t| t["id"] == json!(merged)).unwrap();
    assert_eq!(merged_entry["merged_into"], json!(survivor));
    assert!(merged_entry["notes"][0]["description"].as_str().unwrap().contains(&format!("id {survivor}")));
    let survivor_entry = tickets.iter().find(|t| t["id"] == json!(survivor)).unwrap();
    assert!(survivor_entry["notes"][0]["description"].as_str().unwrap().contains(&format!("id {merged}")));
    assert_eq!(get_ticket(&sim, survivor).await["status"], json!(1));
    assert!(sim.merge_ticket(merged, survivor).is_err(), "a ticket merges once");
}

#[tokio::test]
async fn the_request_log_records_operations_and_reset_forgets_everything() {
    let sim = start().await;
    create_ok(&sim, minimal("Logged")).await;
    get_ticket(&sim, 1).await;
    let (_, log) = send(Client::new().get(format!("{}/_sim/requests", sim.base_url()))).await;
    assert_eq!(log["count"], json!(2));
    assert_eq!(log["requests"][0]["operation"], json!("create_ticket"));
    assert_eq!(log["requests"][1]["method"], json!("GET"));
    assert!(log["requests"][1]["timestamp"].is_string());
    assert_eq!(sim.request_count(), 2);
    let resp = Client::new().post(format!("{}/_sim/reset", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.request_count(), 0);
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn clones_share_the_server_and_shutdown_stops_it() {
    let sim = start().await;
    let clone = sim.clone();
    let url = format!("{}/atservicesrest/versioninformation", sim.base_url());
    drop(clone);
    assert_eq!(Client::new().get(&url).send().await.unwrap().status(), StatusCode::OK);
    sim.shutdown().await;
    assert!(Client::new().get(&url).timeout(Duration::from_secs(2)).send().await.is_err());
}

// ---------------------------------------------------------------------------------------------
// More routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_defined_fields_are_stored_and_queryable_with_udf_true() {
    let sim = start().await;
    let id = create_ok(&sim, with(minimal("UDF"), json!({"userDefinedFields": [{"name": "Vigil Alert Id", "value": "alert-42"}]}))).await;
    create_ok(&sim, minimal("No UDF")).await;
    assert_eq!(get_ticket(&sim, id).await["userDefinedFields"][0]["value"], json!("alert-42"));
    let ids = query_ids(&sim, json!([{"op": "eq", "field": "vigil alert id", "udf": true, "value": "alert-42"}])).await;
    assert_eq!(ids, vec![id]);
}

#[tokio::test]
async fn single_notes_read_through_the_child_url_and_the_ticket_notes_entity() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("Notes")).await;
    let other = create_ok(&sim, minimal("Other")).await;
    let (_, created) = add_note(&sim, id, note("one")).await;
    let note_id = created["itemId"].as_i64().unwrap();
    let (_, child) = send(api(&sim, Method::GET, &format!("/Tickets/{id}/Notes/{note_id}"))).await;
    assert_eq!(child["item"]["description"], json!("one"));
    assert!(child["item"]["createDateTime"].is_string());
    let (_, wrong_parent) = send(api(&sim, Method::GET, &format!("/Tickets/{other}/Notes/{note_id}"))).await;
    assert_eq!(wrong_parent, json!({"item": null}));
    let (_, root) = send(api(&sim, Method::GET, &format!("/TicketNotes/{note_id}"))).await;
    assert_eq!(root["item"]["ticketID"], json!(id));
}

#[tokio::test]
async fn writes_are_attributed_to_the_impersonated_resource_when_one_is_named() {
    let sim = start().await;
    let tech = sim.add_resource("Pat Helpdesk");
    let (status, body) =
        send(api(&sim, Method::POST, "/Tickets").header("ImpersonationResourceId", tech.to_string()).json(&minimal("On behalf"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let item = get_ticket(&sim, body["itemId"].as_i64().unwrap()).await;
    assert_eq!(item["creatorResourceID"], json!(tech));
    let (status, _) = send(api(&sim, Method::POST, "/Tickets").header("ImpersonationResourceId", "1").json(&minimal("Nobody"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn entity_information_describes_capabilities_and_user_defined_fields() {
    let sim = start().await;
    let (status, info) = send(api(&sim, Method::GET, "/Tickets/entityInformation")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["info"]["name"], json!("Ticket"));
    assert_eq!(info["info"]["canCreate"], json!(true));
    let (_, udfs) = send(api(&sim, Method::GET, "/Tickets/entityInformation/userDefinedFields")).await;
    assert_eq!(udfs, json!({"fields": []}));
}

#[tokio::test]
async fn control_routes_set_the_threshold_move_the_clock_and_add_companies_and_contacts() {
    let sim = start().await;
    let client = Client::new();
    let control = |path: &str| format!("{}/_sim/{path}", sim.base_url());
    assert_eq!(client.post(control("threshold")).json(&json!({"threshold": 1})).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let (_, body) = send(client.post(control("companies")).json(&json!({"name": "Northwind"}))).await;
    let company = body["id"].as_i64().unwrap();
    let (_, body) = send(
        client
            .post(control("contacts"))
            .json(&json!({"companyID": company, "emailAddress": "a@northwind.example", "firstName": "A", "lastName": "B"})),
    )
    .await;
    let contact = body["id"].as_i64().unwrap();
    create_ok(&sim, with(minimal("Northwind"), json!({"companyID": company, "contactID": contact}))).await;
    assert_eq!(create(&sim, minimal("over")).await.0, StatusCode::TOO_MANY_REQUESTS);
    let before = sim.now();
    assert_eq!(
        client.post(control("clock/advance")).json(&json!({"seconds": 3601})).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert!(sim.now() - before >= chrono::Duration::seconds(3601));
    create_ok(&sim, minimal("after an hour")).await;
    assert_eq!(client.post(control("tickets/1/explode")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_server_stops_when_the_last_handle_is_dropped() {
    let sim = start().await;
    let url = format!("{}/atservicesrest/versioninformation", sim.base_url());
    drop(sim);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(Client::new().get(&url).timeout(Duration::from_secs(2)).send().await.is_err());
}

#[tokio::test]
async fn assigning_a_resource_needs_both_the_resource_and_its_role() {
    let sim = start().await;
    let tech = sim.add_resource("Pat Helpdesk");
    let (status, body) = create(&sim, with(minimal("Assign"), json!({"assignedResourceID": tech}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("assignedResourceRoleID"));
    let (status, body) = create(&sim, with(minimal("Assign"), json!({"assignedResourceID": 1, "assignedResourceRoleID": 29683461}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&body).contains("assignedResourceID"));
    create_ok(&sim, with(minimal("Assign"), json!({"assignedResourceID": tech, "assignedResourceRoleID": 29683461}))).await;
}

#[tokio::test]
async fn a_served_path_with_the_wrong_method_answers_405_and_an_unknown_path_404() {
    let sim = start().await;
    let (status, body) = send(api(&sim, Method::GET, "/Tickets")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"Message": "The requested resource does not support http method 'GET'."}));
    let (status, body) = send(api(&sim, Method::DELETE, "/Tickets/5")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let (status, body) = send(api(&sim, Method::GET, "/Widgets/5")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!errors(&body).is_empty());
}

#[tokio::test]
async fn a_scaled_clock_frees_the_threshold_in_real_milliseconds() {
    let sim = start().await;
    sim.set_threshold(2);
    sim.set_clock_scale(0.0);
    create_ok(&sim, minimal("one")).await;
    create_ok(&sim, minimal("two")).await;
    assert_eq!(create(&sim, minimal("three")).await.0, StatusCode::TOO_MANY_REQUESTS);
    // 36,000× real speed: 150 ms real is 90 simulated minutes, past the rolling hour.
    sim.set_clock_scale(36_000.0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    sim.set_clock_scale(0.0);
    create_ok(&sim, minimal("three")).await;
}
