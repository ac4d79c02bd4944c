//! The config API's contract with its callers, on in-memory stores: authentication, tenancy,
//! write-only credentials, and problem+json for every bad request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

mod support;

use support::{TENANT, api, assert_problem};

#[tokio::test]
async fn registers_lists_and_maps_a_tenant() {
    let api = api().await;
    let created = api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso", "domains": ["contoso.com"]}))).await;
    assert_eq!(created.0, StatusCode::CREATED);
    assert_eq!(created.2["tenant_id"], TENANT);
    assert_eq!(api.acme("PUT", "/v1/destinations/psa", Some(support::connectwise_destination())).await.0, StatusCode::CREATED);
    let mapped = api.acme("PUT", &format!("/v1/tenants/{TENANT}/destinations/psa/company"), Some(json!({"company": "250"}))).await;
    assert_eq!(mapped.2["company_links"], json!({"psa": "250"}), "{:?}", mapped.2);
    let listed = api.acme("GET", "/v1/tenants", None).await;
    assert_eq!(listed.2["tenants"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tenants_come_a_page_at_a_time_with_a_cursor_and_bad_paging_is_a_400_problem() {
    let api = api().await;
    let ids = ["00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"];
    for (i, id) in ids.iter().enumerate() {
        let created = api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": id, "name": format!("Customer {i}")}))).await;
        assert_eq!(created.0, StatusCode::CREATED);
    }
    let names =
        |page: &Value| page["tenants"].as_array().unwrap().iter().map(|t| t["tenant_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let first = api.acme("GET", "/v1/tenants?limit=2", None).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(names(&first.2), vec![ids[1], ids[2]], "in tenant-id order");
    let cursor = first.2["next_cursor"].as_str().expect("a cursor while more follow").to_owned();
    let rest = api.acme("GET", &format!("/v1/tenants?limit=2&cursor={cursor}"), None).await;
    assert_eq!((names(&rest.2), &rest.2["next_cursor"]), (vec![ids[0].to_owned()], &Value::Null), "the last page ends the list");
    let all = api.acme("GET", "/v1/tenants", None).await;
    assert_eq!((all.2["tenants"].as_array().unwrap().len(), &all.2["next_cursor"]), (3, &Value::Null), "without a limit, every tenant");
    for bad in [
        "/v1/tenants?limit=0",
        "/v1/tenants?limit=1001",
        "/v1/tenants?limit=2&cursor=yesterday",
        "/v1/tenants?cursor=x",
        "/v1/tenants?page=2",
    ] {
        let answer = api.acme("GET", bad, None).await;
        assert!(answer.0.is_client_error(), "{bad}: {:?}", answer.0);
        assert_problem(&answer, answer.0);
    }
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_401_problems() {
    let api = api().await;
    assert_problem(&api.call("GET", "/v1/tenants", None, None).await, StatusCode::UNAUTHORIZED);
    assert_problem(&api.call("GET", "/v1/tenants", Some("vgl_acme_0000"), None).await, StatusCode::UNAUTHORIZED);
    let forged = api.acme_token.replacen("vgl_acme_", "vgl_other_", 1);
    assert_problem(&api.call("GET", "/v1/tenants", Some(&forged), None).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_json_missing_fields_and_bad_values_are_4xx_problems() {
    let api = api().await;
    let token = api.acme_token.clone();
    assert_problem(&api.call("POST", "/v1/tenants", Some(&token), Some("{\"tenant_id\": ")).await, StatusCode::BAD_REQUEST);
    assert_problem(&api.acme("POST", "/v1/tenants", Some(json!({"name": "Contoso"}))).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": "contoso.onmicrosoft.com", "name": "Contoso"}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_problem(
        &api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso", "msp_id": "other"}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_problem(
        &api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": " "}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let no_content_type = api.call("POST", "/v1/tenants", Some(&token), None).await;
    assert_problem(&no_content_type, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_problem(&api.acme("GET", "/v1/tenants/not-a-guid", None).await, StatusCode::BAD_REQUEST);
    assert_problem(&api.acme("GET", "/v1/nowhere", None).await, StatusCode::NOT_FOUND);
    assert_problem(&api.acme("DELETE", "/v1/tenants", None).await, StatusCode::METHOD_NOT_ALLOWED);
    assert_problem(&api.acme("GET", "/v1/alerts?limit=lots", None).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_tenants_and_other_msps_tenants_are_404_problems() {
    let api = api().await;
    api.acme("PUT", "/v1/destinations/psa", Some(support::connectwise_destination())).await;
    assert_problem(
        &api.acme("PUT", &format!("/v1/tenants/{TENANT}/destinations/psa/company"), Some(json!({"company": "250"}))).await,
        StatusCode::NOT_FOUND,
    );
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso"}))).await;
    let other = api.other_token.clone();
    assert_problem(&api.call("GET", &format!("/v1/tenants/{TENANT}"), Some(&other), None).await, StatusCode::NOT_FOUND);
    let body = json!({"client_id": "app", "client_secret": "stolen"}).to_string();
    assert_problem(
        &api.call("PUT", &format!("/v1/tenants/{TENANT}/m365-credentials"), Some(&other), Some(&body)).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(&api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Again"}))).await, StatusCode::CONFLICT);
    assert_problem(&api.acme("GET", "/v1/alerts/0123456789abcdef0123456789abcdef", None).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn credentials_are_write_only_and_never_echoed() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso"}))).await;
    let stored = api
        .acme("PUT", &format!("/v1/tenants/{TENANT}/m365-credentials"), Some(json!({"client_id": "app", "client_secret": "s3cret-value"})))
        .await;
    assert_eq!(stored.0, StatusCode::NO_CONTENT);
    let tenant = api.acme("GET", &format!("/v1/tenants/{TENANT}"), None).await;
    assert_eq!(tenant.2["m365_credentials_set"], true);
    assert!(!tenant.2.to_string().contains("s3cret-value"));
}

#[tokio::test]
async fn an_msp_chooses_a_tenants_streams_and_sees_their_health() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso"}))).await;
    let health = api.acme("GET", &format!("/v1/tenants/{TENANT}/streams"), None).await;
    assert_eq!(health.2["streams"].as_array().unwrap().len(), 6, "five content types and Graph alerts by default");
    assert_eq!(health.2["streams"][0]["status"], "not polled yet");
    let narrowed =
        api.acme("PUT", &format!("/v1/tenants/{TENANT}/streams"), Some(json!({"streams": ["Graph.AlertsV2", "Audit.Exchange"]}))).await;
    assert_eq!(narrowed.2["streams"], json!(["Audit.Exchange", "Graph.AlertsV2"]));
    assert_eq!(api.acme("GET", &format!("/v1/tenants/{TENANT}/streams"), None).await.2["streams"].as_array().unwrap().len(), 2);
    assert_problem(
        &api.acme("PUT", &format!("/v1/tenants/{TENANT}/streams"), Some(json!({"streams": ["Audit.Nope"]}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_problem(
        &api.acme("PUT", &format!("/v1/tenants/{TENANT}/streams"), Some(json!({"streams": []}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let other = api.other_token.clone();
    assert_problem(&api.call("GET", &format!("/v1/tenants/{TENANT}/streams"), Some(&other), None).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_msp_sets_its_own_publisher_identifier() {
    let api = api().await;
    assert_eq!(api.acme("GET", "/v1/msp", None).await.2["publisher_identifier"], Value::Null);
    let set = api.acme("PUT", "/v1/msp", Some(json!({"publisher_identifier": "9A1C8F7E-0000-4000-8000-00000000AA02"}))).await;
    assert_eq!(set.2["publisher_identifier"], "9a1c8f7e-0000-4000-8000-00000000aa02");
    assert_eq!(api.acme("GET", "/v1/msp", None).await.2["msp_id"], "acme");
    assert_problem(
        &api.acme("PUT", "/v1/msp", Some(json!({"publisher_identifier": "not-a-guid"}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let other = api.other_token.clone();
    assert_eq!(api.call("GET", "/v1/msp", Some(&other), None).await.2["publisher_identifier"], Value::Null, "one MSP's setting is its own");
}

#[tokio::test]
async fn an_msp_sets_its_first_look_back_and_backfill_ticket_age_and_out_of_range_values_are_422() {
    let api = api().await;
    assert_eq!(api.acme("GET", "/v1/msp", None).await.2["first_lookback_hours"], 24);
    api.acme("PUT", "/v1/msp", Some(json!({"publisher_identifier": "9a1c8f7e-0000-4000-8000-00000000aa02"}))).await;
    let set = api.acme("PUT", "/v1/msp", Some(json!({"first_lookback_hours": 168, "backfill_ticket_max_age_hours": 48}))).await;
    assert_eq!((set.2["first_lookback_hours"].clone(), set.2["backfill_ticket_max_age_hours"].clone()), (json!(168), json!(48)));
    assert_eq!(set.2["publisher_identifier"], "9a1c8f7e-0000-4000-8000-00000000aa02", "absent fields keep their value");
    let cleared = api.acme("PUT", "/v1/msp", Some(json!({"backfill_ticket_max_age_hours": null}))).await;
    assert_eq!(cleared.2["backfill_ticket_max_age_hours"], Value::Null);
    let refused = api.acme("PUT", "/v1/msp", Some(json!({"first_lookback_hours": 169}))).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.2.to_string().contains("first_lookback_hours"), "{}", refused.2);
}

fn custom_policy(id: &str) -> Value {
    json!({
        "id": id, "name": "Legacy protocol sign-in", "category": "ThreatManagement", "severity": "Medium",
        "activity": {"record_types": [15], "operations": ["UserLoggedIn"]},
        "conditions": {"field": "ExtendedProperties.UserAgent", "op": "regex", "value": "^(BAV2ROPC|python-requests)"},
        "title": "{UserId} signed in with {ExtendedProperties.UserAgent}"
    })
}

fn sign_in(id: &str, user: &str, agent: &str, time: &str) -> Value {
    json!({"Id": id, "RecordType": 15, "CreationTime": time, "Operation": "UserLoggedIn", "UserId": user, "Workload": "AzureActiveDirectory",
           "ClientIP": "198.51.100.9", "ExtendedProperties": [{"Name": "UserAgent", "Value": agent}]})
}

#[tokio::test]
async fn policies_are_listed_created_replaced_and_deleted_with_problems_for_bad_ones() {
    let api = api().await;
    let listed = api.acme("GET", "/v1/policies", None).await;
    let builtins = listed.2["policies"].as_array().unwrap().len();
    assert!(builtins >= 20, "the built-in catalogue is listed");
    assert!(listed.2["policies"].as_array().unwrap().iter().all(|p| p["source"] == "builtin"));

    let created = api.acme("POST", "/v1/policies", Some(custom_policy("custom.legacy-sign-in"))).await;
    assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.2);
    assert_eq!(created.2["source"], "custom");
    assert_problem(&api.acme("POST", "/v1/policies", Some(custom_policy("custom.legacy-sign-in"))).await, StatusCode::CONFLICT);
    assert_eq!(api.acme("GET", "/v1/policies", None).await.2["policies"].as_array().unwrap().len(), builtins + 1);
    let other = api.call("GET", "/v1/policies/custom.legacy-sign-in", Some(&api.other_token.clone()), None).await;
    assert_problem(&other, StatusCode::NOT_FOUND);

    let mut bad = custom_policy("custom.bad");
    bad["conditions"] = json!({"all": [{"field": "UserId", "op": "eq", "value": "x"}]});
    let refused = api.acme("POST", "/v1/policies", Some(bad)).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.2["detail"].as_str().unwrap().contains("condition.all[0]: unknown operator"), "{:?}", refused.2);
    let mut bad = custom_policy("custom.bad");
    bad["trigger"] = json!({"type": "threshold", "count": 0, "window_minutes": 5});
    assert!(api.acme("POST", "/v1/policies", Some(bad)).await.2["detail"].as_str().unwrap().contains("trigger.count"));
    assert_problem(&api.acme("POST", "/v1/policies", Some(custom_policy("mine.not-custom"))).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &api.acme("PUT", "/v1/policies/builtin.no-such-thing", Some(custom_policy("builtin.no-such-thing"))).await,
        StatusCode::NOT_FOUND,
    );

    let mut changed = api.acme("GET", "/v1/policies/builtin.brute-force", None).await.2["policy"].clone();
    changed["trigger"]["count"] = json!(20);
    let replaced = api.acme("PUT", "/v1/policies/builtin.brute-force", Some(changed)).await;
    assert_eq!((replaced.0, replaced.2["source"].as_str()), (StatusCode::OK, Some("builtin-changed")));
    assert_eq!(api.acme("DELETE", "/v1/policies/builtin.brute-force", None).await.0, StatusCode::NO_CONTENT);
    let restored = api.acme("GET", "/v1/policies/builtin.brute-force", None).await;
    assert_eq!((restored.2["source"].as_str(), restored.2["policy"]["trigger"]["count"].as_i64()), (Some("builtin"), Some(10)));
    assert_eq!(api.acme("DELETE", "/v1/policies/custom.legacy-sign-in", None).await.0, StatusCode::NO_CONTENT);
    assert_problem(&api.acme("DELETE", "/v1/policies/custom.legacy-sign-in", None).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_test_endpoint_shows_matches_and_resulting_alerts_without_storing_anything() {
    let api = api().await;
    let mut policy = custom_policy("custom.legacy-sign-in");
    policy["trigger"] = json!({"type": "threshold", "count": 2, "window_minutes": 10});
    let records = json!([
        sign_in("r1", "alice@contoso.com", "BAV2ROPC", "2026-01-05T09:31:00"),
        sign_in("r2", "alice@contoso.com", "python-requests/2.31", "2026-01-05T09:35:00"),
        sign_in("r3", "bob@contoso.com", "Mozilla/5.0", "2026-01-05T09:36:00"),
        sign_in("r4", "carol@contoso.com", "BAV2ROPC", "2026-01-05T09:37:00"),
        {"not": "a record"}
    ]);
    let result = api.acme("POST", "/v1/policies/test", Some(json!({"policy": policy, "records": records}))).await;
    assert_eq!(result.0, StatusCode::OK, "{:?}", result.2);
    assert_eq!(result.2["matches"].as_array().unwrap().len(), 3, "bob's browser sign-in does not match");
    let alerts = result.2["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "only alice reaches the threshold of 2");
    assert_eq!((alerts[0]["group_key"].as_str(), alerts[0]["hit_count"].as_i64()), (Some("alice@contoso.com"), Some(2)));
    assert_eq!(result.2["rejected"].as_array().unwrap().len(), 1);
    assert!(api.acme("GET", "/v1/alerts", None).await.2["alerts"].as_array().unwrap().is_empty(), "nothing stored");
    assert!(api.acme("GET", "/v1/policies/custom.legacy-sign-in", None).await.0 == StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn suppressions_are_created_listed_and_deleted_and_refuse_a_past_expiry() {
    let api = api().await;
    api.acme("POST", "/v1/tenants", Some(json!({"tenant_id": TENANT, "name": "Contoso", "domains": ["contoso.com"]}))).await;
    let rule = json!({"tenant_id": TENANT, "user": "svc-scan@contoso.com", "reason": "vulnerability scanner",
                      "conditions": {"field": "ClientIP", "op": "ip_in_cidr", "value": "10.0.0.0/8"}});
    let created = api.acme("POST", "/v1/suppressions", Some(rule)).await;
    assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.2);
    let id = created.2["id"].as_str().unwrap().to_owned();
    assert_eq!(api.acme("GET", "/v1/suppressions", None).await.2["suppressions"].as_array().unwrap().len(), 1);
    assert!(
        api.call("GET", "/v1/suppressions", Some(&api.other_token.clone()), None).await.2["suppressions"].as_array().unwrap().is_empty()
    );
    let past = json!({"user": "x@contoso.com", "reason": "r", "expires_at": "2020-01-01T00:00:00Z"});
    assert_problem(&api.acme("POST", "/v1/suppressions", Some(past)).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&api.acme("POST", "/v1/suppressions", Some(json!({"reason": "everything"}))).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.acme("DELETE", &format!("/v1/suppressions/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_problem(&api.acme("DELETE", &format!("/v1/suppressions/{id}"), None).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn alerts_are_triaged_with_a_history_and_filtered() {
    let api = api().await;
    let alert = vigil::contract::sample_alert(chrono::Utc::now());
    let hits = vigil::alert::AlertHits::of_records(alert.clone(), vec![(vigil::ids::RecordId::parse("r1").unwrap(), chrono::Utc::now())]);
    api.state.admin.alerts.record_hits(&hits, chrono::Utc::now()).await.unwrap();
    let path = format!("/v1/alerts/{}", alert.id);
    let response = api
        .call(
            "PATCH",
            &path,
            Some(&api.acme_token.clone()),
            Some(&json!({"status": "InProgress", "assignee": "dana@msp.example", "comment": "called alice"}).to_string()),
        )
        .await;
    assert_eq!(response.0, StatusCode::OK, "{:?}", response.2);
    let triage = &response.2["triage"];
    assert_eq!(triage["assignee"], "dana@msp.example");
    assert_eq!(triage["comments"][0]["text"], "called alice");
    let fields: Vec<&str> = triage["history"].as_array().unwrap().iter().map(|h| h["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["status", "assignee", "comment"]);
    assert_eq!(api.acme("GET", "/v1/alerts?status=InProgress", None).await.2["alerts"].as_array().unwrap().len(), 1);
    assert!(api.acme("GET", "/v1/alerts?status=New", None).await.2["alerts"].as_array().unwrap().is_empty());
    assert!(api.acme("GET", "/v1/alerts?severity=High", None).await.2["alerts"].as_array().unwrap().is_empty());
    assert_eq!(api.acme("GET", &format!("/v1/alerts?tenant={TENANT}"), None).await.2["alerts"].as_array().unwrap().len(), 1);
    let elsewhere = "00000000-0000-4000-8000-000000000009";
    assert!(api.acme("GET", &format!("/v1/alerts?tenant={elsewhere}"), None).await.2["alerts"].as_array().unwrap().is_empty());
    assert_problem(&api.acme("GET", "/v1/alerts?status=Sleeping", None).await, StatusCode::BAD_REQUEST);
    assert_problem(&api.acme("PATCH", &path, Some(json!({"classification": "Maybe"}))).await, StatusCode::UNPROCESSABLE_ENTITY);
    let other = api.call("PATCH", &path, Some(&api.other_token.clone()), Some(&json!({"status": "Resolved"}).to_string())).await;
    assert_problem(&other, StatusCode::NOT_FOUND);
}
