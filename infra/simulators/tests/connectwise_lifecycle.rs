//! Wire-level tests of what a two-way ticket lifecycle needs from the ConnectWise Manage
//! simulator: boards with their own statuses, priorities, companies and contacts, batched status
//! reads, technician actions, and signed callbacks. Each test name states the behaviour it pins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use vigil_simulators::connectwise::{
    ConnectWiseCredentials, ConnectWiseSim, ConnectWiseSimHandle, FailureMode, SimOperation, callback_signature,
};

async fn start() -> ConnectWiseSimHandle {
    ConnectWiseSim::start(ConnectWiseCredentials::sample()).await.expect("simulator starts")
}

fn api(sim: &ConnectWiseSimHandle, method: Method, path: &str) -> RequestBuilder {
    let creds = sim.credentials();
    Client::new()
        .request(method, format!("{}{path}", sim.api_root()))
        .header("Authorization", creds.authorization_header())
        .header("clientId", creds.client_id)
}

async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request is sent");
    let status = resp.status();
    let text = resp.text().await.expect("body is read");
    let body =
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}")) };
    (status, body)
}

async fn get(sim: &ConnectWiseSimHandle, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    send(api(sim, Method::GET, path).query(query)).await
}

async fn create(sim: &ConnectWiseSimHandle, body: Value) -> (StatusCode, Value) {
    send(api(sim, Method::POST, "/service/tickets").json(&body)).await
}

async fn create_ok(sim: &ConnectWiseSimHandle, body: Value) -> i64 {
    let (status, ticket) = create(sim, body).await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    ticket["id"].as_i64().unwrap()
}

async fn patch(sim: &ConnectWiseSimHandle, id: i64, ops: Value) -> (StatusCode, Value) {
    send(api(sim, Method::PATCH, &format!("/service/tickets/{id}")).json(&ops)).await
}

async fn control(sim: &ConnectWiseSimHandle, path: &str, body: Value) -> (StatusCode, Value) {
    send(Client::new().post(format!("{}/_sim{path}", sim.base_url())).json(&body)).await
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array().unwrap_or_else(|| panic!("not a list: {list}")).iter().map(|t| t["id"].as_i64().unwrap()).collect()
}

fn error_fields(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {body}"))
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_string(), e["code"].as_str().unwrap().to_string()))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Boards, statuses, priorities
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_board_has_its_own_statuses_and_types() {
    let sim = start().await;
    let (status, boards) = get(&sim, "/service/boards", &[("fields", "id,name")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(boards, json!([{"id": 1, "name": "Service Desk"}, {"id": 2, "name": "Security Alerts"}, {"id": 7, "name": "Vigil Alerts"}]));

    let (_, statuses) = get(&sim, "/service/boards/2/statuses", &[]).await;
    assert_eq!(ids(&statuses), vec![11, 12, 19, 20]);
    let s19 = &statuses[2];
    assert_eq!(s19["name"], "Completed");
    assert_eq!(s19["board"], json!({"id": 2, "name": "Security Alerts"}));
    assert_eq!(
        (s19["closedStatus"].clone(), s19["defaultFlag"].clone(), s19["inactive"].clone()),
        (json!(true), json!(false), json!(false))
    );
    assert!(s19["sortOrder"].is_number());
    let (_, closed) = get(&sim, "/service/boards/2/statuses", &[("conditions", "closedStatus=true")]).await;
    assert_eq!(ids(&closed), vec![19, 20]);
    let (_, default) = get(&sim, "/service/boards/1/statuses", &[("conditions", "defaultFlag=true")]).await;
    assert_eq!(ids(&default), vec![1]);

    let (_, one) = get(&sim, "/service/boards/2/statuses/20", &[]).await;
    assert_eq!(one["name"], ">Closed - Resolved");
    let (_, types) = get(&sim, "/service/boards/2/types", &[("fields", "id,name")]).await;
    assert_eq!(types, json!([{"id": 21, "name": "Security Incident"}, {"id": 22, "name": "Suspicious Sign-in"}]));

    let (status, body) = get(&sim, "/service/boards/5/statuses", &[]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
}

#[tokio::test]
async fn a_ticket_status_must_be_one_of_its_boards_statuses() {
    let sim = start().await;
    let (status, body) = create(&sim, json!({"summary": "x", "company": {"id": 250}, "board": {"id": 2}, "status": {"id": 99}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "InvalidObject");
    assert_eq!(error_fields(&body), vec![("status".into(), "InvalidObject".into())]);
    assert!(sim.tickets().is_empty());

    // Without a status the board's default; by name the board's own status.
    let (_, ticket) = create(&sim, json!({"summary": "x", "company": {"id": 250}, "board": {"id": 2}})).await;
    assert_eq!(ticket["status"], json!({"id": 11, "name": "New"}));
    let id = ticket["id"].as_i64().unwrap();
    let (_, named) =
        create(&sim, json!({"summary": "y", "company": {"id": 250}, "board": {"name": "security alerts"}, "status": {"name": "Assigned"}}))
            .await;
    assert_eq!((named["board"]["id"].clone(), named["status"].clone()), (json!(2), json!({"id": 12, "name": "Assigned"})));

    let (status, body) = patch(&sim, id, json!([{"op": "replace", "path": "/status", "value": {"id": 1}}])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("status".into(), "InvalidObject".into())]);

    // "Completed" is closed on board 2 although its name is not "Closed".
    let (status, ticket) = patch(&sim, id, json!([{"op": "replace", "path": "/status", "value": {"id": 19}}])).await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["status"], json!({"id": 19, "name": "Completed"}));
    assert_eq!((ticket["closedFlag"].clone(), ticket["closedBy"].clone()), (json!(true), json!("VigilSimApi")));
    assert!(ticket["closedDate"].is_string());

    // Board-less tickets keep the global table.
    let loose = create_ok(&sim, json!({"summary": "z", "company": {"id": 250}})).await;
    let (status, ticket) = patch(&sim, loose, json!([{"op": "replace", "path": "/status", "value": {"id": 99}}])).await;
    assert_eq!((status, ticket["closedFlag"].clone()), (StatusCode::OK, json!(true)));
}

#[tokio::test]
async fn unknown_boards_and_priorities_are_refused_and_priorities_are_listed() {
    let sim = start().await;
    let (status, body) = create(&sim, json!({"summary": "x", "company": {"id": 250}, "board": {"id": 999}, "priority": {"id": 77}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("board".into(), "InvalidObject".into()), ("priority".into(), "InvalidObject".into())]);

    let (_, ticket) = create(&sim, json!({"summary": "x", "company": {"id": 250}, "priority": {"name": "Security - High"}})).await;
    assert_eq!(ticket["priority"]["id"], 8);
    let (_, full) = get(&sim, &format!("/service/tickets/{}", ticket["id"]), &[]).await;
    assert_eq!(full["priority"]["name"], "Security - High");
    assert_eq!(full["company"]["identifier"], "Contoso");

    let (status, priorities) = get(&sim, "/service/priorities", &[("orderBy", "sortOrder")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&priorities), vec![1, 2, 3, 4, 8, 9, 10, 11]);
    for p in priorities.as_array().unwrap() {
        for field in ["id", "name", "sortOrder", "level", "defaultFlag"] {
            assert!(!p[field].is_null(), "{field} in {p}");
        }
    }
    let (_, default) = get(&sim, "/service/priorities", &[("conditions", "defaultFlag=true")]).await;
    assert_eq!(ids(&default), vec![3]);
    let (_, one) = get(&sim, "/service/priorities/1", &[]).await;
    assert_eq!(one["level"], "Critical");
}

// ------------------------------------------------------------------------------------------
// Companies and contacts
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn companies_are_looked_up_by_identifier_name_pattern_and_id() {
    let sim = start().await;
    let (_, by_identifier) = get(&sim, "/company/companies", &[("conditions", "identifier=\"Contoso\"")]).await;
    assert_eq!(ids(&by_identifier), vec![250]);
    let (_, by_name) = get(&sim, "/company/companies", &[("conditions", "name like \"Con*\" and deletedFlag=false")]).await;
    assert_eq!(ids(&by_name), vec![250]);
    let (_, adventure) = get(&sim, "/company/companies", &[("conditions", "name like \"Adventure*\"")]).await;
    assert_eq!(adventure[0]["deletedFlag"], true);
    let (_, live) = get(&sim, "/company/companies", &[("conditions", "name like \"Adventure*\" and deletedFlag=false")]).await;
    assert_eq!(live, json!([]));
    let (_, own) = get(&sim, "/company/companies/19297", &[("fields", "id,identifier,name")]).await;
    assert_eq!(own["name"], "Vigil MSP (own)");
    let (status, body) = get(&sim, "/company/companies/4242", &[]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));

    let added = sim.add_company("Globex", "Globex Corporation");
    let (_, found) = get(&sim, "/company/companies", &[("conditions", "identifier=\"globex\"")]).await;
    assert_eq!(ids(&found), vec![added]);
    let (_, count) = get(&sim, "/company/companies/count", &[("conditions", "identifier=\"Globex\"")]).await;
    assert_eq!(count, json!({"count": 1}));
    create_ok(&sim, json!({"summary": "x", "company": {"id": added}})).await;
}

#[tokio::test]
async fn a_ticket_company_must_exist_and_not_be_deleted() {
    let sim = start().await;
    for company in [json!({"id": 4242}), json!({"identifier": "Nobody"}), json!({"id": 252})] {
        let (status, body) = create(&sim, json!({"summary": "x", "company": company})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{company}");
        assert_eq!(error_fields(&body), vec![("company".into(), "InvalidObject".into())], "{company}");
    }
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn contacts_are_found_by_email_through_child_conditions() {
    let sim = start().await;
    let carol = sim.add_contact(250, "Carol", "Cole", "carol@contoso.com");
    sim.add_contact(251, "Carl", "Cole", "carol@fabrikam.com");
    let query = [
        ("conditions", "company/id=250"),
        ("childConditions", "communicationItems/value=\"CAROL@contoso.com\" and communicationItems/communicationType=\"Email\""),
    ];
    let (status, found) = get(&sim, "/company/contacts", &query).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), vec![carol]);
    let contact = &found[0];
    assert_eq!((contact["firstName"].as_str(), contact["lastName"].as_str()), (Some("Carol"), Some("Cole")));
    assert_eq!(contact["company"], json!({"id": 250, "identifier": "Contoso", "name": "Contoso"}));
    let item = &contact["communicationItems"][0];
    assert_eq!((item["type"]["name"].as_str(), item["value"].as_str()), (Some("Email"), Some("carol@contoso.com")));
    assert_eq!((item["defaultFlag"].clone(), item["communicationType"].clone()), (json!(true), json!("Email")));

    // The whole child expression must hold for one item.
    let (_, none) = get(
        &sim,
        "/company/contacts",
        &[("childConditions", "communicationItems/value=\"carol@contoso.com\" and communicationItems/communicationType=\"Phone\"")],
    )
    .await;
    assert_eq!(none, json!([]));
    let (_, seeded) = get(&sim, "/company/contacts", &[("childConditions", "communicationItems/value like \"*@fabrikam.com\"")]).await;
    assert_eq!(ids(&seeded).len(), 2);
    let (_, one) = get(&sim, &format!("/company/contacts/{carol}"), &[]).await;
    assert_eq!(one["id"], carol);

    // E-mail lives in a child collection: `conditions` cannot reach it.
    let (status, body) = get(&sim, "/company/contacts", &[("conditions", "communicationItems/value=\"carol@contoso.com\"")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("childConditions"), "{body}");
    // Tickets have no child collection the simulator filters on.
    let (status, _) = get(&sim, "/service/tickets", &[("childConditions", "x/y=1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_contact_of_another_company_is_refused_on_a_ticket() {
    let sim = start().await;
    let fabrikam_contact = sim.add_contact(251, "Fay", "Fisher", "fay@fabrikam.com");
    let (status, body) = create(&sim, json!({"summary": "x", "company": {"id": 250}, "contact": {"id": fabrikam_contact}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), vec![("contact".into(), "InvalidObject".into())]);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("251"), "{body}");
    let (status, _) = create(&sim, json!({"summary": "x", "company": {"id": 250}, "contact": {"id": 999_999}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Same company (also when the company is given by identifier) is fine.
    create_ok(&sim, json!({"summary": "x", "company": {"identifier": "Fabrikam"}, "contact": {"id": fabrikam_contact}})).await;
    let id = create_ok(&sim, json!({"summary": "x", "company": {"id": 250}, "contact": {"id": 1}})).await;
    let (status, _) = patch(&sim, id, json!([{"op": "replace", "path": "/contact", "value": {"id": fabrikam_contact}}])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// ------------------------------------------------------------------------------------------
// Reading back, technician actions
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn statuses_of_several_tickets_are_read_in_one_request_with_id_in() {
    let sim = start().await;
    let a = create_ok(&sim, json!({"summary": "a", "company": {"id": 250}, "board": {"id": 1}})).await;
    let b = create_ok(&sim, json!({"summary": "b", "company": {"id": 250}, "board": {"id": 1}})).await;
    let c = create_ok(&sim, json!({"summary": "c", "company": {"id": 250}})).await;
    sim.close_ticket(b, "jsmith", None).unwrap();
    let conditions = format!("id in ({a},{b})");
    let (status, list) = get(
        &sim,
        "/service/tickets",
        &[("conditions", &conditions), ("fields", "id,status/name,closedFlag,closedBy,closedDate,_info/lastUpdated")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list), vec![a, b]);
    assert!(!ids(&list).contains(&c));
    assert_eq!(list[0]["status"], json!({"name": "New"}));
    assert_eq!(list[0]["closedFlag"], false);
    assert!(list[0].get("closedBy").is_none() && list[0].get("summary").is_none());
    assert_eq!(list[1]["status"], json!({"name": ">Closed"}));
    assert_eq!((list[1]["closedFlag"].clone(), list[1]["closedBy"].clone()), (json!(true), json!("jsmith")));
    assert!(list[1]["closedDate"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&String> = list[1]["_info"].as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["lastUpdated"]);
}

#[tokio::test]
async fn a_technician_closes_and_reopens_a_ticket_through_the_control_routes() {
    let sim = start().await;
    let id = create_ok(&sim, json!({"summary": "x", "company": {"id": 250}, "board": {"id": 2}})).await;
    let (status, closed) = control(&sim, &format!("/tickets/{id}/close"), json!({"by": "jsmith", "status_id": 20})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let (_, ticket) = get(&sim, &format!("/service/tickets/{id}"), &[]).await;
    assert_eq!(ticket["status"]["name"], ">Closed - Resolved");
    assert_eq!((ticket["closedFlag"].clone(), ticket["closedBy"].clone()), (json!(true), json!("jsmith")));
    assert!(ticket["closedDate"].is_string());
    assert_eq!(ticket["_info"]["updatedBy"], "jsmith");

    let (status, reopened) = control(&sim, &format!("/tickets/{id}/reopen"), json!({"by": "jsmith"})).await;
    assert_eq!(status, StatusCode::OK, "{reopened}");
    let (_, ticket) = get(&sim, &format!("/service/tickets/{id}"), &[]).await;
    assert_eq!(ticket["status"]["id"], 11);
    assert_eq!(ticket["closedFlag"], false);
    assert!(ticket.get("closedBy").is_none() && ticket.get("closedDate").is_none());

    // Without status_id: the board's first closed status. An open status or another board's
    // status is refused; an unknown ticket is 404.
    let closed = sim.close_ticket(id, "asmith", None).unwrap();
    assert_eq!(closed["status"], json!({"id": 19, "name": "Completed"}));
    let (status, _) = control(&sim, &format!("/tickets/{id}/close"), json!({"by": "jsmith", "status_id": 12})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = control(&sim, &format!("/tickets/{id}/close"), json!({"by": "jsmith", "status_id": 99})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = control(&sim, "/tickets/4242/close", json!({"by": "jsmith"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_ticket_answers_404_and_leaves_searches() {
    let sim = start().await;
    let keep = create_ok(&sim, json!({"summary": "keep", "company": {"id": 250}})).await;
    let gone = create_ok(&sim, json!({"summary": "gone", "company": {"id": 250}})).await;
    let (status, body) = control(&sim, &format!("/tickets/{gone}/delete"), json!({"by": "jsmith"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"deleted": gone})));

    let (status, body) = get(&sim, &format!("/service/tickets/{gone}"), &[]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
    let (status, _) = get(&sim, &format!("/service/tickets/{gone}/notes"), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, all) = get(&sim, "/service/tickets", &[]).await;
    assert_eq!(ids(&all), vec![keep]);
    let (_, count) = get(&sim, "/service/tickets/count", &[("conditions", &format!("id={gone}"))]).await;
    assert_eq!(count, json!({"count": 0}));
    let (status, _) = patch(&sim, gone, json!([{"op": "replace", "path": "/summary", "value": "x"}])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sim.tickets().iter().map(|t| t.id).collect::<Vec<_>>(), vec![keep]);
    assert_eq!(sim.deleted_tickets()[0].id, gone);
    assert!(sim.delete_ticket(gone, "jsmith").is_err());
}

#[tokio::test]
async fn a_merged_ticket_is_closed_with_a_note_and_then_gone_like_a_deleted_one() {
    let sim = start().await;
    let parent = create_ok(&sim, json!({"summary": "parent", "company": {"id": 250}, "board": {"id": 1}})).await;
    let child = create_ok(&sim, json!({"summary": "child", "company": {"id": 250}, "board": {"id": 1}})).await;
    let (status, body) = control(&sim, &format!("/tickets/{child}/merge"), json!({"into": parent, "by": "jsmith"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"merged": child, "into": parent})));

    let (status, _) = get(&sim, &format!("/service/tickets/{child}"), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, open) = get(&sim, "/service/tickets", &[]).await;
    assert_eq!(ids(&open), vec![parent]);
    let (_, p) = get(&sim, &format!("/service/tickets/{parent}"), &[]).await;
    assert_eq!(p["hasMergedChildTicketFlag"], true);

    let merged = sim.deleted_tickets().into_iter().find(|t| t.id == child).unwrap();
    assert_eq!(merged.body["closedFlag"], true);
    assert_eq!(merged.body["closedBy"], "jsmith");
    assert_eq!(merged.body["status"]["id"], 99);
    assert_eq!(merged.body["mergedParentTicket"], json!({"id": parent}));
    assert_eq!(merged.notes.last().unwrap()["text"], format!("Merged into ticket #{parent}"));

    let (status, _) = control(&sim, &format!("/tickets/{parent}/merge"), json!({"into": parent})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = control(&sim, &format!("/tickets/{parent}/merge"), json!({"into": child})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------------------------------
// Callbacks
// ------------------------------------------------------------------------------------------

/// What the receiver saw: path and query, `x-content-signature`, raw body.
type Received = (String, String, Bytes);

async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    async fn record(State(tx): State<mpsc::UnboundedSender<Received>>, uri: Uri, headers: HeaderMap, body: Bytes) -> &'static str {
        let signature = headers.get("x-content-signature").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let _ = tx.send((uri.to_string(), signature, body));
        "ok"
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(record).with_state(tx);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> (String, String, Value, Bytes) {
    let (uri, signature, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a callback arrives").unwrap();
    let json: Value = serde_json::from_slice(&body).unwrap();
    (uri, signature, json, body)
}

async fn register(sim: &ConnectWiseSimHandle, entry: Value) -> i64 {
    let (status, created) = send(api(sim, Method::POST, "/system/callbacks").json(&entry)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_i64().unwrap()
}

#[tokio::test]
async fn callbacks_are_delivered_with_a_signature_verifiable_through_the_key_url() {
    let sim = start().await;
    let (base, mut rx) = receiver().await;
    let entry = json!({"url": format!("{base}/cw?recordId="), "objectId": 0, "type": "ticket", "level": "owner",
                       "description": "Vigil ticket sync", "inactiveFlag": false});
    let cb = register(&sim, entry).await;
    let (_, listed) = get(&sim, "/system/callbacks", &[]).await;
    assert_eq!(ids(&listed), vec![cb]);
    assert_eq!((listed[0]["level"].as_str(), listed[0]["type"].as_str()), (Some("owner"), Some("ticket")));

    let id = create_ok(&sim, json!({"summary": "x", "company": {"id": 250}, "board": {"id": 2}})).await;
    let (uri, _, added, _) = next(&mut rx).await;
    assert_eq!(uri, format!("/cw?recordId={id}"));
    assert_eq!((added["Action"].as_str(), added["MemberId"].as_str()), (Some("added"), Some("VigilSimApi")));

    sim.close_ticket(id, "jsmith", None).unwrap();
    let (_, signature, message, raw) = next(&mut rx).await;
    assert_eq!(message["Action"], "updated");
    assert_eq!(message["Type"], "ticket");
    assert_eq!(message["ID"], id);
    assert_eq!(message["MemberId"], "jsmith");
    assert_eq!(message["CompanyId"], "vigilsim");
    assert_eq!(message["CallbackObjectRecId"], cb);
    for field in ["MessageId", "FromUrl", "ProductInstanceId", "PartnerId"] {
        assert!(message[field].is_string(), "{field}: {message}");
    }
    let entity: Value = serde_json::from_str(message["Entity"].as_str().expect("Entity is a JSON string")).unwrap();
    assert_eq!((entity["id"].clone(), entity["closedFlag"].clone(), entity["closedBy"].clone()), (json!(id), json!(true), json!("jsmith")));
    assert_eq!(entity["status"]["name"], "Completed");

    // The receiver's side: fetch the key from Metadata.key_url, recompute the signature.
    let key_url = message["Metadata"]["key_url"].as_str().unwrap();
    assert!(key_url.contains("/system/callbackkey/index.rails?companyName=vigilsim&id="), "{key_url}");
    let key: Value = Client::new().get(key_url).send().await.unwrap().json().await.unwrap();
    let signing_key = key["signing_key"].as_str().unwrap();
    assert_eq!(Some(signing_key.to_string()), sim.callback_signing_key(cb));
    assert_eq!(signature, callback_signature(signing_key, &raw));
    assert_ne!(signature, callback_signature("another key", &raw));

    // A PATCH of the status is announced too; a technician delete says "deleted" without Entity.
    patch(&sim, id, json!([{"op": "replace", "path": "/status", "value": {"id": 11}}])).await;
    let (_, _, patched, _) = next(&mut rx).await;
    assert_eq!((patched["Action"].as_str(), patched["MemberId"].as_str()), (Some("updated"), Some("VigilSimApi")));
    sim.delete_ticket(id, "jsmith").unwrap();
    let (_, signature, deleted, raw) = next(&mut rx).await;
    assert_eq!((deleted["Action"].as_str(), deleted["Entity"].clone()), (Some("deleted"), Value::Null));
    assert_eq!(signature, callback_signature(signing_key, &raw));

    sim.wait_for_callbacks().await;
    let log = sim.callback_deliveries();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|d| d.status == Some(200) && d.callback_id == cb), "{log:?}");
}

#[tokio::test]
async fn board_and_company_level_callbacks_only_fire_for_their_board_or_company() {
    let sim = start().await;
    let (base, mut rx) = receiver().await;
    register(&sim, json!({"url": format!("{base}/board2/"), "objectId": 2, "type": "ticket", "level": "board"})).await;
    register(&sim, json!({"url": format!("{base}/fabrikam/"), "objectId": 251, "type": "Ticket", "level": "company"})).await;
    register(&sim, json!({"url": format!("{base}/off/"), "objectId": 0, "type": "ticket", "level": "owner", "inactiveFlag": true})).await;

    create_ok(&sim, json!({"summary": "board 1, Contoso", "company": {"id": 250}, "board": {"id": 1}})).await;
    let on_board_2 = create_ok(&sim, json!({"summary": "board 2", "company": {"id": 250}, "board": {"id": 2}})).await;
    let fabrikam = create_ok(&sim, json!({"summary": "Fabrikam", "company": {"identifier": "Fabrikam"}})).await;
    sim.wait_for_callbacks().await;
    let (first, _, _, _) = next(&mut rx).await;
    let (second, _, _, _) = next(&mut rx).await;
    assert_eq!(vec![first, second], vec![format!("/board2/{on_board_2}"), format!("/fabrikam/{fabrikam}")]);
    assert!(rx.try_recv().is_err(), "nothing else was delivered");
}

#[tokio::test]
async fn no_callback_is_sent_after_the_entry_is_deleted() {
    let sim = start().await;
    let (base, mut rx) = receiver().await;
    let id = create_ok(&sim, json!({"summary": "x", "company": {"id": 250}})).await;
    let cb = register(&sim, json!({"url": format!("{base}/cw/"), "objectId": 0, "type": "ticket", "level": "owner"})).await;
    let (status, _) = send(api(&sim, Method::DELETE, &format!("/system/callbacks/{cb}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = get(&sim, &format!("/system/callbacks/{cb}"), &[]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
    let (status, _) = send(api(&sim, Method::DELETE, &format!("/system/callbacks/{cb}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    sim.close_ticket(id, "jsmith", None).unwrap();
    patch(&sim, id, json!([{"op": "replace", "path": "/summary", "value": "y"}])).await;
    sim.wait_for_callbacks().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "no callback after DELETE");
    assert!(sim.callback_deliveries().is_empty());
    assert!(sim.callbacks().is_empty());
}

#[tokio::test]
async fn callback_entries_are_validated_like_the_live_api() {
    let sim = start().await;
    let good = json!({"url": "https://vigil.example/cw?recordId=", "objectId": 0, "type": "ticket", "level": "owner"});
    let cases = [
        (json!({"url": "not a url", "objectId": 0, "type": "ticket", "level": "owner"}), vec![("url", "InvalidField")]),
        (json!({"url": "https://x.example/", "objectId": 0, "type": "ticket", "level": "everything"}), vec![("level", "InvalidObject")]),
        (json!({"url": "https://x.example/", "type": "ticket", "level": "owner"}), vec![("objectId", "NullValue")]),
        (
            json!({"url": "https://x.example/", "objectId": 0, "type": "ticket", "level": "owner", "secret": "x"}),
            vec![("secret", "InvalidField")],
        ),
    ];
    for (body, expected) in cases {
        let (status, resp) = send(api(&sim, Method::POST, "/system/callbacks").json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["message"], "callbackEntry object is invalid");
        let expected: Vec<(String, String)> = expected.into_iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
        assert_eq!(error_fields(&resp), expected, "{body}");
    }
    register(&sim, good.clone()).await;
    let (status, resp) = send(api(&sim, Method::POST, "/system/callbacks").json(&good)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&resp), vec![("objectId".into(), "ObjectExists".into())]);
    assert_eq!(sim.callbacks().len(), 1);
}

#[tokio::test]
async fn failures_can_be_injected_into_lookups_and_callbacks() {
    let sim = start().await;
    sim.fail_next(SimOperation::Lookup, FailureMode::Status(503), 1);
    let (status, _) = get(&sim, "/company/contacts", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = get(&sim, "/service/boards", &[]).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = control(&sim, "/fail", json!({"operation": "callbacks", "mode": "throttle"})).await;
    assert_eq!(status, StatusCode::OK);
    let entry = json!({"url": "https://vigil.example/cw/", "objectId": 0, "type": "ticket", "level": "owner"});
    let (status, _) = send(api(&sim, Method::POST, "/system/callbacks").json(&entry)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(sim.callbacks().is_empty());
    register(&sim, entry).await;

    // reset forgets callbacks and added contacts; the seed data is back.
    sim.add_contact(250, "Dan", "Dunn", "dan@contoso.com");
    sim.reset();
    assert!(sim.callbacks().is_empty());
    let (_, contacts) = get(&sim, "/company/contacts", &[]).await;
    assert_eq!(ids(&contacts), vec![1, 2]);
}

#[tokio::test]
async fn companies_contacts_and_deliveries_are_reachable_over_the_control_routes() {
    let sim = start().await;
    let (status, company) = control(&sim, "/companies", json!({"identifier": "Initech", "name": "Initech"})).await;
    assert_eq!(status, StatusCode::OK);
    let company_id = company["id"].as_i64().unwrap();
    let (status, contact) = control(
        &sim,
        "/contacts",
        json!({"company_id": company_id, "first_name": "Peter", "last_name": "Gibbons", "email": "peter@initech.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, found) = get(&sim, "/company/contacts", &[("childConditions", "communicationItems/value=\"peter@initech.example\"")]).await;
    assert_eq!(ids(&found), vec![contact["id"].as_i64().unwrap()]);
    assert_eq!(found[0]["company"]["identifier"], "Initech");
    let (status, _) = control(&sim, "/contacts", json!({"company_id": company_id})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (base, mut rx) = receiver().await;
    register(&sim, json!({"url": format!("{base}/cw/"), "objectId": company_id, "type": "ticket", "level": "company"})).await;
    create_ok(&sim, json!({"summary": "x", "company": {"id": company_id}})).await;
    next(&mut rx).await;
    sim.wait_for_callbacks().await;
    let (status, log) = send(Client::new().get(format!("{}/_sim/callback-deliveries", sim.base_url()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log[0]["status"], 200);
    assert!(log[0]["signature"].is_string() && log[0]["body"].is_string());
}

#[tokio::test]
async fn a_self_suppressed_callback_skips_changes_made_with_the_api_members_own_keys() {
    let sim = start().await;
    let (base, mut rx) = receiver().await;
    register(&sim, json!({"url": format!("{base}/cw/"), "objectId": 0, "type": "ticket", "level": "owner", "isSelfSuppressedFlag": true}))
        .await;
    let id = create_ok(&sim, json!({"summary": "x", "company": {"id": 250}})).await;
    patch(&sim, id, json!([{"op": "replace", "path": "/summary", "value": "y"}])).await;
    sim.close_ticket(id, "jsmith", None).unwrap();
    let (uri, _, message, _) = next(&mut rx).await;
    assert_eq!((uri, message["MemberId"].as_str()), (format!("/cw/{id}"), Some("jsmith")));
    sim.wait_for_callbacks().await;
    assert_eq!(sim.callback_deliveries().len(), 1, "only the technician's change was announced");
}
