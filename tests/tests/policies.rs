//! The alert-policy engine end to end on the local stack: a storm of matching records becomes
//! one alert and one ticket, a suppression holds alerts back until it expires, and a shadow
//! policy raises alerts that are never dispatched. Microsoft 365 and ConnectWise are the
//! simulators; AWS is moto over the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use vigil_local::{LocalOptions, LocalStack};
use vigil_tests::{forwarding_record, in_current_window, onboard, poll_and_settle, record_id, start_stack};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

/// A failed sign-in of `user` (RecordType 15, `UserLoginFailed`, bad password).
fn failed_sign_in(id: &str, user: &str, at: chrono::DateTime<Utc>) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "UserLoginFailed",
        "OrganizationId": TENANT, "RecordType": 15, "ResultStatus": "Failed", "UserKey": "10032001A2B3C4D5", "UserType": 0,
        "Version": 1, "Workload": "AzureActiveDirectory", "ClientIP": "198.51.100.23", "ObjectId": "00000002-0000-0000-c000-000000000000",
        "UserId": user, "AzureActiveDirectoryEventType": 1, "LogonError": "InvalidUserNameOrPassword",
        "ExtendedProperties": [{"Name": "RequestType", "Value": "OAuth2:Token"}, {"Name": "ResultStatusDetail", "Value": "Success"}],
        "ErrorNumber": "50126", "ActorIpAddress": "198.51.100.23"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_ten_thousand_failed_sign_ins_becomes_one_brute_force_alert_and_one_ticket() {
    // The template's function timeouts (the poller claims 10,000 records one by one, which moto
    // serves far slower than DynamoDB) and visibility timeouts long enough not to redeliver a
    // job that is still running.
    vigil_tests::init_logs();
    let options = LocalOptions { function_timeout_override: None, visibility_timeout_override: Some(180), ..LocalOptions::for_tests() };
    let stack = LocalStack::start(options).await.unwrap();
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    let n: usize = std::env::var("STORM").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let records: Vec<Value> =
        (0..n).map(|i| failed_sign_in(&record_id(i), "alice@contoso.com", in_current_window((i as i64 * 800) / n as i64))).collect();
    for chunk in records.chunks(1000) {
        stack.m365.add_records(TENANT, "Audit.AzureActiveDirectory", chunk.to_vec());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let report = stack.poll_and_settle(std::time::Duration::from_secs(600)).await.unwrap();
    assert_eq!(report.records_enqueued, n, "{report:?}");

    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["policy_id"], "builtin.brute-force");
    assert_eq!(alert["hit_count"], n, "every failed sign-in is one hit of the one alert");
    assert_eq!(alert["group_key"], "alice@contoso.com");
    assert!(alert["detail"]["activities"].as_array().unwrap().len() <= 10, "the activity list is bounded");
    assert_eq!(alert["detail"]["activity_counts"]["UserLoginFailed"], n);
    assert_eq!(alert["detail"]["entities"]["ips"], json!(["198.51.100.23"]));
    assert!(alert["facts"].as_array().unwrap().iter().any(|f| f["name"] == "Trigger"), "{alert}");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "one ticket for the storm");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppression_holds_matching_alerts_back_until_it_expires() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    let expires = Utc::now() + Duration::seconds(30);
    let created = msp
        .call(
            Method::POST,
            "/v1/suppressions",
            Some(json!({"tenant_id": TENANT, "user": "Alice@Contoso.com", "policy_id": "builtin.external-forwarding",
                        "expires_at": expires, "reason": "migration to the new mail archive this week"})),
        )
        .await;
    assert_eq!(created.0, 201, "{created:?}");

    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    assert!(msp.alerts().await.is_empty(), "suppressed while the rule lives");
    assert!(stack.connectwise.tickets().is_empty());

    let wait = (expires - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_millis(200)).await;
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(2), in_current_window(2))]);
    poll_and_settle(&stack).await;
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "raised once the rule expired");
    assert_eq!(alerts[0]["policy_id"], "builtin.external-forwarding");
    assert_eq!(alerts[0]["hit_count"], 1, "the suppressed record is not counted later");
    assert_eq!(stack.connectwise.tickets().len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_policy_raises_visible_alerts_that_are_never_dispatched() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    let policy = json!({
        "id": "custom.rule-hides-mail-in-rss",
        "name": "Inbox rule hides mail in RSS folders",
        "description": "Attackers hide replies in rarely opened folders; trying it out in shadow mode first.",
        "category": "ThreatManagement", "severity": "Medium", "mode": "Shadow",
        "activity": {"record_types": [1], "operations": ["New-InboxRule", "Set-InboxRule"]},
        "conditions": {"field": "Parameters.MoveToFolder", "op": "in", "value": ["RSS Feeds", "RSS Subscriptions", "Conversation History"]},
        "title": "{UserId} moves mail to {Parameters.MoveToFolder}"
    });
    let created = msp.call(Method::POST, "/v1/policies", Some(policy)).await;
    assert_eq!(created.0, 201, "{created:?}");
    // The MSP tries its own variant of the built-in in shadow, with the built-in off for the
    // tenant meanwhile (otherwise the built-in would ticket the same record).
    let off = msp
        .call(Method::PUT, &format!("/v1/tenants/{TENANT}/policies/builtin.inbox-rule-hides-mail"), Some(json!({"enabled": false})))
        .await;
    assert_eq!(off.0, 200, "{off:?}");

    let mut record = forwarding_record(TENANT, &record_id(7), in_current_window(7));
    record["Parameters"] = json!([{"Name": "MoveToFolder", "Value": "RSS Feeds"}, {"Name": "Name", "Value": "."}]);
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![record]);
    poll_and_settle(&stack).await;

    let shadow = msp.call(Method::GET, "/v1/alerts?mode=Shadow", None).await.2["alerts"].as_array().cloned().unwrap();
    assert_eq!(shadow.len(), 1);
    assert_eq!(shadow[0]["title"], "alice@contoso.com moves mail to RSS Feeds");
    assert_eq!(shadow[0]["detail"]["mode"], "Shadow");
    assert!(stack.connectwise.tickets().is_empty(), "shadow alerts never reach the PSA");
    assert_eq!(stack.queue_depth("TicketsDeadLetterQueue").await.unwrap(), 0);
    stack.shutdown().await;
}
