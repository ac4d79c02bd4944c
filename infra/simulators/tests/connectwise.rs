//! Wire-level tests of the ConnectWise Manage simulator: real HTTP requests with reqwest against
//! a simulator started on a random local port. Each test name states the behaviour it pins down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use vigil_simulators::connectwise::{ConnectWiseCredentials, ConnectWiseSim, ConnectWiseSimHandle, FailureMode, SimOperation};

async fn start() -> ConnectWiseSimHandle {
    ConnectWiseSim::start(ConnectWiseCredentials::sample()).await.expect("simulator starts")
}

/// A request to `api_root() + path` with correct credentials.
fn api(sim: &ConnectWiseSimHandle, method: Method, path: &str) -> RequestBuilder {
    let creds = sim.credentials();
    Client::new()
        .request(method, format!("{}{path}", sim.api_root()))
        .header("Authorization", creds.authorization_header())
        .header("clientId", creds.client_id)
        .header("Accept", "application/vnd.connectwise.com+json; version=2026.4")
}

async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request is sent");
    let status = resp.status();
    let text = resp.text().await.expect("body is read");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("response is not JSON ({e}): {text:?}"));
    (status, body)
}

async fn create(sim: &ConnectWiseSimHandle, body: Value) -> (StatusCode, Value) {
    send(api(sim, Method::POST, "/service/tickets").json(&body)).await
}

fn minimal(summary: &str) -> Value {
    json!({"summary": summary, "company": {"id": 250}})
}

async fn create_ok(sim: &ConnectWiseSimHandle, body: Value) -> i64 {
    let (status, ticket) = create(sim, body).await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    ticket["id"].as_i64().unwrap()
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect()
}

async fn search(sim: &ConnectWiseSimHandle, conditions: &str) -> Vec<i64> {
    let (status, list) = send(api(sim, Method::GET, "/service/tickets").query(&[("conditions", conditions)])).await;
    assert_eq!(status, StatusCode::OK, "{conditions}: {list}");
    ids(&list)
}

fn error_fields(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_string(), e["code"].as_str().unwrap().to_string()))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Discovery and authentication
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn companyinfo_returns_codebase() {
    let sim = start().await;
    let url = format!("{}/login/companyinfo/VIGILSIM", sim.base_url());
    let (status, info) = send(Client::new().get(url)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["Codebase"], "v4_6_release/");
    assert_eq!(info["VersionCode"], "v2026.4");
    assert_eq!(info["CompanyID"], "vigilsim");
    assert_eq!(info["IsCloud"], false);
    let site = info["SiteUrl"].as_str().unwrap();
    assert_eq!(format!("http://{site}/{}apis/3.0", info["Codebase"].as_str().unwrap()), sim.api_root());
}

#[tokio::test]
async fn companyinfo_answers_null_for_unknown_company() {
    let sim = start().await;
    let url = format!("{}/login/companyinfo/someoneelse", sim.base_url());
    let (status, info) = send(Client::new().get(url)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info, Value::Null);
}

#[tokio::test]
async fn creates_ticket_with_valid_body_and_auth() {
    let sim = start().await;
    let body = json!({
        "summary": "Vigil: Impossible travel for alice@contoso.com",
        "company": {"id": 250}, "board": {"id": 1}, "priority": {"id": 8},
        "severity": "High", "impact": "Medium", "recordType": "ServiceTicket",
        "initialDescription": "alert details", "externalXRef": "vigil:alert:abc123",
        "processNotifications": false
    });
    let resp = api(&sim, Method::POST, "/service/tickets").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(resp.headers()["api-current-version"], "2026.4");
    let ticket: Value = resp.json().await.unwrap();
    assert_eq!(ticket["id"], 1001);
    assert_eq!(ticket["summary"], body["summary"]);
    assert_eq!(ticket["company"], json!({"id": 250}));
    assert_eq!(ticket["closedFlag"], false);
    assert_eq!(ticket["status"], json!({"id": 1, "name": "New"}));
    assert!(ticket["_info"]["lastUpdated"].as_str().unwrap().ends_with('Z'));
    assert!(ticket.get("initialDescription").is_none(), "CW never returns initialDescription");

    let stored = sim.tickets();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, 1001);
    assert_eq!(stored[0].body["initialDescription"], "alert details");
    assert!(stored[0].notes.is_empty());

    assert_eq!(create_ok(&sim, minimal("second")).await, 1002);
}

#[tokio::test]
async fn accepts_header_names_in_any_case() {
    let sim = start().await;
    let creds = sim.credentials();
    let (status, _) = send(
        Client::new()
            .post(format!("{}/service/tickets", sim.api_root()))
            .header("AUTHORIZATION", creds.authorization_header())
            .header("ClientID", creds.client_id.to_uppercase())
            .json(&minimal("x")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn rejects_missing_client_id_header() {
    let sim = start().await;
    let (status, body) = send(
        Client::new()
            .post(format!("{}/service/tickets", sim.api_root()))
            .header("Authorization", sim.credentials().authorization_header())
            .json(&minimal("x")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "Unauthorized");
    assert!(body["message"].as_str().unwrap().contains("clientId"));
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn rejects_wrong_client_id() {
    let sim = start().await;
    let (status, body) = send(
        Client::new()
            .get(format!("{}/service/tickets", sim.api_root()))
            .header("Authorization", sim.credentials().authorization_header())
            .header("clientId", "11111111-1111-1111-1111-111111111111"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("clientId"));
}

#[tokio::test]
async fn rejects_wrong_basic_auth() {
    let sim = start().await;
    let good = sim.credentials();
    let mut wrong_key = good.clone();
    wrong_key.private_key = "nope".into();
    let mut wrong_company = good.clone();
    wrong_company.company_id = "other".into();
    let url = format!("{}/service/tickets", sim.api_root());
    for auth in [
        wrong_key.authorization_header(),
        wrong_company.authorization_header(),
        // Missing the "{company}+" prefix.
        format!("Basic {}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", good.public_key, good.private_key))
        }),
        "Bearer abc".to_string(),
        "Basic !!!not-base64".to_string(),
    ] {
        let (status, body) =
            send(Client::new().post(&url).header("Authorization", &auth).header("clientId", &good.client_id).json(&minimal("x"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(body["code"], "Unauthorized");
    }
    let (status, _) = send(Client::new().get(&url).header("clientId", &good.client_id)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(sim.tickets().is_empty());
}

// ------------------------------------------------------------------------------------------
// Ticket validation
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn rejects_summary_longer_than_100() {
    let sim = start().await;
    let (status, body) = create(&sim, minimal(&"a".repeat(101))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "InvalidObject");
    assert_eq!(body["message"], "ticket object is invalid");
    assert_eq!(body["errors"][0]["code"], "MaxLength");
    assert_eq!(body["errors"][0]["field"], "summary");
    assert_eq!(body["errors"][0]["resource"], "ticket");
    assert!(sim.tickets().is_empty());

    create_ok(&sim, minimal(&"a".repeat(100))).await;
}

#[tokio::test]
async fn rejects_missing_summary_with_null_value() {
    let sim = start().await;
    let (status, body) = create(&sim, json!({"company": {"id": 250}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("summary".into(), "NullValue".into())]);
    let (status, body) = create(&sim, json!({"summary": "  ", "company": {"id": 250}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("summary".into(), "NullValue".into())]);
}

#[tokio::test]
async fn rejects_missing_company() {
    let sim = start().await;
    let (status, body) = create(&sim, json!({"summary": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("company".into(), "NullValue".into())]);
    let (status, body) = create(&sim, json!({"summary": "x", "company": null})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("company".into(), "NullValue".into())]);
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn rejects_company_without_id_or_identifier() {
    let sim = start().await;
    let (status, body) = create(&sim, json!({"summary": "x", "company": {"name": "Contoso"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("company".into(), "NullValue".into())]);
    create_ok(&sim, json!({"summary": "x", "company": {"identifier": "Contoso"}})).await;
}

#[tokio::test]
async fn unknown_members_in_a_body_are_refused_as_the_live_api_does() {
    let sim = start().await;
    let (status, body) = create(&sim, json!({"summary": "x", "company": {"id": 250}, "externalXref": "typo"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("externalXref".into(), "InvalidField".into())]);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("externalXRef"));
}

#[tokio::test]
async fn rejects_wrong_types_and_enum_values() {
    let sim = start().await;
    let (status, body) = create(
        &sim,
        json!({"summary": "x", "company": {"id": "250"}, "severity": "Critical",
               "processNotifications": "no"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut fields = error_fields(&body);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            ("company/id".into(), "InvalidField".into()),
            ("processNotifications".into(), "InvalidField".into()),
            ("severity".into(), "InvalidField".into()),
        ]
    );
}

#[tokio::test]
async fn rejects_malformed_json_with_connectwise_error_body() {
    let sim = start().await;
    for raw in ["{\"summary\": ", "", "[1,2]"] {
        let (status, body) = send(api(&sim, Method::POST, "/service/tickets").header("Content-Type", "application/json").body(raw)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?}");
        assert_eq!(body["code"], "InvalidObject", "{raw:?}");
        assert!(body["errors"][0]["message"].is_string(), "{raw:?}");
    }
}

#[tokio::test]
async fn rejects_body_that_is_not_sent_as_json() {
    let sim = start().await;
    let (status, body) =
        send(api(&sim, Method::POST, "/service/tickets").header("Content-Type", "text/plain").body(minimal("x").to_string())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "UnsupportedMediaType");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_the_servers_html_404_page() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("x")).await;
    for req in [
        api(&sim, Method::GET, "/service/nothing"),
        api(&sim, Method::DELETE, &format!("/service/tickets/{id}")),
        Client::new().get(format!("{}/elsewhere", sim.base_url())),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = resp.text().await.unwrap();
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("404"), "{page}");
    }
    // An unknown ticket on a known route is still ConnectWise's JSON `NotFound`.
    let (status, body) = send(api(&sim, Method::GET, "/service/tickets/999999")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
}

#[tokio::test]
async fn injected_server_errors_have_the_connectwiseapi_exception_shape() {
    let sim = start().await;
    sim.fail_next(SimOperation::CreateTicket, FailureMode::Status(500), 1);
    let (status, body) = create(&sim, minimal("x")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "ConnectWiseApi");
    assert!(body["message"].is_string());
    assert!(body.get("errors").is_some_and(Value::is_null), "{body}");
}

#[tokio::test]
async fn get_returns_a_ticket_in_the_full_live_shape() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("full")).await;
    let (status, ticket) = send(api(&sim, Method::GET, &format!("/service/tickets/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["status"]["name"], "New");
    assert!(ticket["status"]["Sort"].is_number(), "{ticket}");
    assert!(ticket["status"]["_info"]["status_href"].as_str().unwrap().contains("/statuses/1"));
    assert!(ticket["company"]["_info"]["company_href"].as_str().unwrap().ends_with("/company/companies/250"));
    assert!(ticket["_info"]["notes_href"].as_str().unwrap().ends_with(&format!("/service/tickets/{id}/notes")));
    assert!(ticket["_info"]["lastUpdated"].is_string());
    // The decorations are output only: the ticket still patches.
    let (status, _) = send(
        api(&sim, Method::PATCH, &format!("/service/tickets/{id}"))
            .json(&json!([{"op": "replace", "path": "/status", "value": {"id": 2}}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

// ------------------------------------------------------------------------------------------
// Reading and searching
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn gets_ticket_by_id_or_404() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("hello")).await;
    let (status, ticket) = send(api(&sim, Method::GET, &format!("/service/tickets/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["summary"], "hello");
    let (status, ticket) = send(api(&sim, Method::GET, &format!("/service/tickets/{id}?fields=id,status/name"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket, json!({"id": id, "status": {"name": "New"}}));
    let (status, body) = send(api(&sim, Method::GET, "/service/tickets/999999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NotFound");
}

#[tokio::test]
async fn finds_ticket_by_external_xref_condition() {
    let sim = start().await;
    create_ok(&sim, json!({"summary": "a", "company": {"id": 250}, "externalXRef": "vigil:other"})).await;
    let wanted = create_ok(&sim, json!({"summary": "b", "company": {"id": 250}, "externalXRef": "vigil:abc"})).await;
    create_ok(&sim, json!({"summary": "c", "company": {"id": 251}, "externalXRef": "vigil:abc"})).await;

    let conditions = r#"company/id=250 and closedFlag=false and externalXRef="vigil:abc""#;
    let (status, found) = send(api(&sim, Method::GET, "/service/tickets").query(&[
        ("conditions", conditions),
        ("fields", "id,summary,status/name"),
        ("pageSize", "1"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found, json!([{"id": wanted, "summary": "b", "status": {"name": "New"}}]));

    let (status, count) = send(api(&sim, Method::GET, "/service/tickets/count").query(&[("conditions", "externalXRef='vigil:abc'")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count, json!({"count": 2}));
}

#[tokio::test]
async fn search_supports_contains_like_or_and_not() {
    let sim = start().await;
    let a = create_ok(&sim, minimal("Vigil: Impossible travel for alice")).await;
    let b = create_ok(&sim, minimal("Vigil: Mailbox rule created by bob")).await;
    let c = create_ok(&sim, minimal("Printer on fire")).await;
    assert_eq!(search(&sim, r#"summary contains "IMPOSSIBLE""#).await, vec![a]);
    assert_eq!(search(&sim, r#"summary like "Vigil:*""#).await, vec![a, b]);
    assert_eq!(search(&sim, r#"summary not like "Vigil:*""#).await, vec![c]);
    assert_eq!(search(&sim, &format!("id = {a} OR id = {c}")).await, vec![a, c]);
    assert_eq!(search(&sim, &format!("id in ({b},{c})")).await, vec![b, c]);
    assert_eq!(search(&sim, "lastUpdated > [2000-01-01T00:00:00Z]").await, vec![a, b, c]);
}

#[tokio::test]
async fn search_rejects_bad_conditions_with_400() {
    let sim = start().await;
    for cond in ["summary = unquoted", "summary ==", "(id = 1", "nosuchfield = 1", "externalXRef = \"unterminated"] {
        let (status, body) = send(api(&sim, Method::GET, "/service/tickets").query(&[("conditions", cond)])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cond}");
        assert_eq!(body["code"], "InvalidObject", "{cond}");
        assert!(body["message"].as_str().unwrap().starts_with("conditions:"), "{cond}: {body}");
    }
}

#[tokio::test]
async fn search_pages_with_link_header() {
    let sim = start().await;
    for i in 0..5 {
        create_ok(&sim, minimal(&format!("t{i}"))).await;
    }
    let resp = api(&sim, Method::GET, "/service/tickets")
        .query(&[("pageSize", "2"), ("page", "2"), ("conditions", "id > 0")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    let list: Value = resp.json().await.unwrap();
    assert_eq!(ids(&list), vec![1003, 1004]);
    assert!(link.contains("page=3>; rel=\"next\""), "{link}");
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    assert!(link.contains("page=1>; rel=\"prev\""), "{link}");
    assert!(link.contains("conditions=id"), "{link}");

    // Default page size is 25: everything fits, no Link header.
    let resp = api(&sim, Method::GET, "/service/tickets").send().await.unwrap();
    assert!(resp.headers().get("link").is_none());
    assert_eq!(ids(&resp.json().await.unwrap()).len(), 5);

    let (_, desc) = send(api(&sim, Method::GET, "/service/tickets").query(&[("orderBy", "id desc")])).await;
    assert_eq!(ids(&desc), vec![1005, 1004, 1003, 1002, 1001]);

    let (status, _) = send(api(&sim, Method::GET, "/service/tickets").query(&[("pageSize", "zero")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn forward_only_paging_follows_the_link_header() {
    let sim = start().await;
    for i in 0..5 {
        create_ok(&sim, minimal(&format!("t{i}"))).await;
    }
    let creds = sim.credentials();
    let mut url = format!("{}/service/tickets?pageSize=2", sim.api_root());
    let mut seen = Vec::new();
    for _ in 0..10 {
        let resp = Client::new()
            .get(&url)
            .header("Authorization", creds.authorization_header())
            .header("clientId", &creds.client_id)
            .header("pagination-type", "forward-only")
            .send()
            .await
            .unwrap();
        let next = resp.headers().get("link").map(|l| l.to_str().unwrap().to_string());
        seen.extend(ids(&resp.json().await.unwrap()));
        match next {
            Some(link) => {
                let start = link.find('<').unwrap() + 1;
                let end = link.find('>').unwrap();
                url = link[start..end].to_string();
                assert!(url.contains("pageId="), "{url}");
            }
            None => break,
        }
    }
    assert_eq!(seen, vec![1001, 1002, 1003, 1004, 1005]);
}

// ------------------------------------------------------------------------------------------
// Notes and updates
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn adds_note_to_existing_ticket() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("x")).await;
    let (status, note) = send(api(&sim, Method::POST, &format!("/service/tickets/{id}/notes")).json(&json!({
        "text": "Alert re-fired", "internalAnalysisFlag": true, "processNotifications": false
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["ticketId"], id);
    assert_eq!(note["text"], "Alert re-fired");
    assert_eq!(note["internalAnalysisFlag"], true);
    assert_eq!(note["detailDescriptionFlag"], false);
    assert!(note["id"].is_i64());
    assert!(note["dateCreated"].is_string());

    let (status, notes) = send(api(&sim, Method::GET, &format!("/service/tickets/{id}/notes"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(notes, json!([note.clone()]));
    let (_, count) = send(api(&sim, Method::GET, &format!("/service/tickets/{id}/notes/count"))).await;
    assert_eq!(count, json!({"count": 1}));
    assert_eq!(sim.tickets()[0].notes, vec![note]);
}

#[tokio::test]
async fn rejects_note_without_text_or_flags() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("x")).await;
    let path = format!("/service/tickets/{id}/notes");
    let cases = [
        (json!({"internalAnalysisFlag": true}), "text", "NullValue"),
        (json!({"text": "", "internalAnalysisFlag": true}), "text", "NullValue"),
        (json!({"text": "x"}), "detailDescriptionFlag", "InvalidField"),
        (json!({"text": "x", "internalAnalysisFlag": true, "internalFlagg": true}), "internalFlagg", "InvalidField"),
    ];
    for (body, field, code) in cases {
        let (status, resp) = send(api(&sim, Method::POST, &path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["code"], "InvalidObject");
        assert_eq!(error_fields(&resp), vec![(field.to_string(), code.to_string())], "{body}");
    }
    assert!(sim.tickets()[0].notes.is_empty());
}

#[tokio::test]
async fn adding_note_to_unknown_ticket_is_404() {
    let sim = start().await;
    let (status, body) =
        send(api(&sim, Method::POST, "/service/tickets/4242/notes").json(&json!({"text": "x", "detailDescriptionFlag": true}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NotFound");
}

#[tokio::test]
async fn patch_to_closed_status_closes_ticket() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("x")).await;
    let path = format!("/service/tickets/{id}");
    let (status, ticket) = send(api(&sim, Method::PATCH, &path).json(&json!([
        {"op": "replace", "path": "/status", "value": {"id": 99}},
        {"op": "replace", "path": "/summary", "value": "resolved"},
        {"op": "replace", "path": "/priority", "value": {"id": 3}}
    ])))
    .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["closedFlag"], true);
    assert_eq!(ticket["status"], json!({"id": 99, "name": ">Closed"}));
    assert_eq!(ticket["summary"], "resolved");
    assert_eq!(ticket["priority"], json!({"id": 3}));
    assert!(ticket["closedDate"].is_string());

    let (_, open) = send(api(&sim, Method::GET, "/service/tickets").query(&[("conditions", "closedFlag=false")])).await;
    assert_eq!(open, json!([]));

    // Reopen via the "status/id" path variant some clients use.
    let (status, ticket) = send(api(&sim, Method::PATCH, &path).json(&json!([
        {"op": "replace", "path": "status/id", "value": 1}
    ])))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["closedFlag"], false);
    assert_eq!(ticket["status"], json!({"id": 1, "name": "New"}));

    let (status, ticket) = send(api(&sim, Method::PATCH, &path).json(&json!([
        {"op": "replace", "path": "/status", "value": {"name": "Closed"}}
    ])))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["closedFlag"], true);
}

#[tokio::test]
async fn patch_is_validated_and_atomic() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("x")).await;
    let path = format!("/service/tickets/{id}");
    let (status, body) = send(api(&sim, Method::PATCH, &path).json(&json!([
        {"op": "replace", "path": "/status", "value": {"id": 99}},
        {"op": "replace", "path": "/summary", "value": "a".repeat(101)}
    ])))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("summary".into(), "MaxLength".into())]);
    for bad in [
        json!({"op": "replace", "path": "/summary", "value": "x"}),
        json!([{"op": "replace", "path": "/nosuch", "value": 1}]),
        json!([{"op": "replace", "path": "/id", "value": 1}]),
        json!([{"op": "move", "path": "/summary", "from": "/x"}]),
    ] {
        let (status, _) = send(api(&sim, Method::PATCH, &path).json(&bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let stored = &sim.tickets()[0].body;
    assert_eq!(stored["summary"], "x");
    assert_eq!(stored["closedFlag"], false);

    let (status, _) =
        send(api(&sim, Method::PATCH, "/service/tickets/77").json(&json!([{"op": "replace", "path": "/summary", "value": "x"}]))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_board_statuses_with_a_closed_status() {
    let sim = start().await;
    let (status, list) = send(api(&sim, Method::GET, "/service/boards/1/statuses").query(&[("conditions", "closedStatus=true")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list), vec![99]);
}

// ------------------------------------------------------------------------------------------
// Failure injection and control
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn fail_after_commit_stores_ticket_but_answers_500() {
    let sim = start().await;
    sim.fail_next(SimOperation::CreateTicket, FailureMode::AfterCommit(500), 1);
    let (status, body) = create(&sim, minimal("x")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body["code"].is_string());
    let stored = sim.tickets();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body["summary"], "x");
    // One-shot: the retry succeeds (and creates a duplicate, which is what clients must avoid).
    assert_eq!(create_ok(&sim, minimal("x")).await, 1002);
}

#[tokio::test]
async fn fail_after_commit_waits_for_a_request_that_succeeds() {
    let sim = start().await;
    sim.fail_next(SimOperation::CreateTicket, FailureMode::AfterCommit(502), 1);
    let (status, _) = create(&sim, json!({"summary": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = create(&sim, minimal("x")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(sim.tickets().len(), 1);
}

#[tokio::test]
async fn fail_status_rejects_without_storing() {
    let sim = start().await;
    sim.fail_next(SimOperation::CreateTicket, FailureMode::Status(503), 2);
    for _ in 0..2 {
        let (status, _) = create(&sim, minimal("x")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(sim.tickets().is_empty());
    // Other operations are unaffected.
    let (status, _) = send(api(&sim, Method::GET, "/service/tickets")).await;
    assert_eq!(status, StatusCode::OK);
    create_ok(&sim, minimal("x")).await;
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after() {
    let sim = start().await;
    sim.fail_next(SimOperation::SearchTickets, FailureMode::Throttle, 1);
    let resp = api(&sim, Method::GET, "/service/tickets").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "TooManyRequests");
    let (status, _) = send(api(&sim, Method::GET, "/service/tickets")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn fail_any_applies_to_every_operation_and_note_failures_to_notes() {
    let sim = start().await;
    let id = create_ok(&sim, minimal("x")).await;
    sim.fail_next(SimOperation::AddNote, FailureMode::AfterCommit(500), 1);
    let (status, _) =
        send(api(&sim, Method::POST, &format!("/service/tickets/{id}/notes")).json(&json!({"text": "n", "detailDescriptionFlag": true})))
            .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(sim.tickets()[0].notes.len(), 1);

    sim.fail_next(SimOperation::Any, FailureMode::Status(500), 1);
    let (status, _) = send(api(&sim, Method::GET, &format!("/service/tickets/{id}"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _) = send(api(&sim, Method::GET, &format!("/service/tickets/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn control_endpoints_work_over_http() {
    let sim = start().await;
    let client = Client::new();
    let resp = client
        .post(format!("{}/_sim/fail", sim.base_url()))
        .json(&json!({"operation": "create_ticket", "mode": "after_commit", "status": 500, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = create(&sim, minimal("x")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let (status, tickets) = send(client.get(format!("{}/_sim/tickets", sim.base_url()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tickets[0]["id"], 1001);
    assert_eq!(tickets[0]["body"]["summary"], "x");
    assert_eq!(tickets[0]["notes"], json!([]));

    let (status, _) =
        send(client.post(format!("{}/_sim/fail", sim.base_url())).json(&json!({"operation": "nope", "mode": "status"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(sim.request_count(), 1);
    let (status, _) = send(client.post(format!("{}/_sim/reset", sim.base_url()))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(sim.tickets().is_empty());
    assert_eq!(sim.request_count(), 0);
    assert_eq!(create_ok(&sim, minimal("y")).await, 1001);
}

#[tokio::test]
async fn reset_forgets_tickets_and_armed_failures() {
    let sim = start().await;
    create_ok(&sim, minimal("x")).await;
    sim.fail_next(SimOperation::Any, FailureMode::Status(500), 5);
    sim.reset();
    assert!(sim.tickets().is_empty());
    assert_eq!(create_ok(&sim, minimal("x")).await, 1001);
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start().await;
    let url = format!("{}/login/companyinfo/vigilsim", sim.base_url());
    let clone = sim.clone();
    assert!(Client::new().get(&url).send().await.is_ok());
    sim.shutdown().await;
    drop(clone);
    assert!(Client::new().get(&url).send().await.is_err());
}
