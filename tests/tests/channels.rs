//! Channel destinations end to end on the local stack: a High Permissions alert reaches
//! Microsoft Teams, Slack, a signed webhook and e-mail (moto's SES) once each, another alert
//! only the channels whose routing takes it, and each hears the resolution once; then per kind, an
//! answer lost after the service took the message (a gateway failure after commit) shows the
//! change exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use vigil_local::stack::LocalStack;
use vigil_simulators::channels::ChannelOperation;
use vigil_simulators::kit::FailureMode;
use vigil_tests::{MspClient, forwarding_record, in_current_window, onboard, poll_and_settle, record_id, start_stack};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A Global Administrator assignment (RecordType 8): a High alert.
fn global_admin_added(n: usize, member: &str) -> Value {
    json!({
        "CreationTime": in_current_window(n as i64).format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": record_id(100 + n),
        "Operation": "Add member to role.", "OrganizationId": TENANT, "RecordType": 8, "ResultStatus": "Success",
        "UserKey": "10033FFF8A1B2C3D@contoso.onmicrosoft.com", "UserType": 0, "Version": 1, "Workload": "AzureActiveDirectory",
        "ObjectId": member, "UserId": "admin@contoso.onmicrosoft.com",
        "ModifiedProperties": [{"Name": "Role.DisplayName", "NewValue": "Global Administrator", "OldValue": ""},
                               {"Name": "Role.TemplateId", "NewValue": "62e90394-69f5-4237-9190-012177145e10", "OldValue": ""}],
        "Target": [{"ID": member, "Type": 5}]
    })
}

struct Channels {
    teams: String,
    slack: String,
    hook: String,
    mailbox: String,
}

async fn put(msp: &MspClient, id: &str, body: Value) {
    let created = msp.call(reqwest::Method::PUT, &format!("/v1/destinations/{id}"), Some(body)).await;
    assert!((200..300).contains(&created.0), "{id}: {created:?}");
}

/// An MSP with ConnectWise plus Teams and Slack for High Permissions alerts, a signed webhook
/// and an e-mail destination for every alert.
async fn with_channels(stack: &LocalStack, msp_id: &str) -> (MspClient, Channels) {
    let msp = onboard(stack, msp_id, TENANT, 250).await;
    let (teams, slack) = (stack.channels.teams_flow(), stack.channels.slack_webhook());
    let hook = stack.channels.webhook_endpoint(&[SECRET]);
    let mailbox = format!("soc-{msp_id}@msp.example");
    let high = json!({"min_severity": "High", "categories": ["Permissions"]});
    put(
        &msp,
        "teams",
        json!({"name": "SOC channel", "settings": {"kind": "teams"}, "routing": high,
        "credentials": {"kind": "teams", "workflow_url": teams}}),
    )
    .await;
    put(
        &msp,
        "slack",
        json!({"name": "On call", "settings": {"kind": "slack"}, "routing": high,
        "credentials": {"kind": "slack", "webhook_url": slack}}),
    )
    .await;
    put(
        &msp,
        "hook",
        json!({"name": "Automation", "settings": {"kind": "webhook", "url": hook},
        "credentials": {"kind": "webhook", "secret": SECRET}}),
    )
    .await;
    put(&msp, "mail", json!({"name": "SOC mailbox", "settings": {"kind": "email", "recipients": [mailbox], "subject_prefix": "[SOC]"}}))
        .await;
    (msp, Channels { teams, slack, hook, mailbox })
}

/// The e-mails moto's SES took for `to` (subject, body).
async fn mails_to(stack: &LocalStack, to: &str) -> Vec<(String, String)> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", stack.aws_endpoint)).await.unwrap().json().await.unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["destinations"]["ToAddresses"].as_array().is_some_and(|a| a.iter().any(|x| x == to)))
        .map(|m| (m["subject"].as_str().unwrap_or_default().to_owned(), m["body"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_alert_reaches_every_channel_once_and_each_hears_its_resolution_once() {
    let stack = start_stack().await;
    let (msp, ch) = with_channels(&stack, "chan-all").await;
    stack.m365.add_records(TENANT, "Audit.AzureActiveDirectory", vec![global_admin_added(0, "bob@contoso.com")]);
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(1))]);
    poll_and_settle(&stack).await;
    let alerts = msp.alerts().await;
    let high = alerts.iter().find(|a| a["severity"] == "High" && a["category"] == "Permissions").expect("a High Permissions alert");
    assert!(alerts.iter().any(|a| a["category"] == "ThreatManagement"), "{alerts:#?}");

    let cards = stack.channels.received(&ch.teams);
    assert_eq!(cards.len(), 1, "Teams takes the High Permissions alert only");
    let card = &cards[0].body["attachments"][0]["content"];
    assert!(card["body"][0]["text"].as_str().unwrap().contains("Global Administrator"), "{card:#}");
    let slack = stack.channels.received(&ch.slack);
    assert_eq!(slack.len(), 1, "Slack takes the High Permissions alert only");
    assert_eq!(slack[0].body["blocks"][0]["type"], "header");
    let events = stack.channels.received(&ch.hook);
    assert_eq!(events.len(), 2, "the webhook takes every alert");
    assert!(events.iter().all(|e| e.body["type"] == "vigil.alert.raised" && e.headers.contains_key("webhook-signature")));
    let mails = mails_to(&stack, &ch.mailbox).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().all(|(subject, _)| subject.starts_with("[SOC] Raised: [Vigil]")), "{mails:?}");

    let resolved = msp
        .call(reqwest::Method::PATCH, &format!("/v1/alerts/{}", high["id"].as_str().unwrap()), Some(json!({"status": "Resolved"})))
        .await;
    assert!((200..300).contains(&resolved.0), "{resolved:?}");
    stack.wait_idle(std::time::Duration::from_secs(30)).await.unwrap();
    let last = |url: &str| stack.channels.received(url).last().map(|r| r.body.clone()).unwrap();
    assert_eq!(stack.channels.received(&ch.teams).len(), 2);
    assert!(last(&ch.teams)["attachments"][0]["content"]["body"][0]["text"].as_str().unwrap().starts_with("Resolved:"));
    assert_eq!(stack.channels.received(&ch.slack).len(), 2);
    assert_eq!(stack.channels.received(&ch.hook).len(), 3);
    assert_eq!(last(&ch.hook)["type"], "vigil.alert.resolved");
    assert_eq!(mails_to(&stack, &ch.mailbox).await.len(), 3);
    let detail = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{}", high["id"].as_str().unwrap()), None).await.2;
    let posted: Vec<u64> = detail["deliveries"].as_array().unwrap().iter().filter_map(|d| d["messages_posted"].as_u64()).collect();
    assert_eq!(posted, [2, 2, 2, 2], "each channel's delivery counts its two messages: {detail:#}");
    stack.shutdown().await;
}

/// The service takes the message, then a gateway fails (504): the change still shows once.
async fn lost_answer_shows_once(operation: ChannelOperation, url: impl Fn(&Channels) -> String) {
    let stack = start_stack().await;
    let (msp, ch) = with_channels(&stack, &format!("chan-{}", operation_name(operation))).await;
    stack.channels.fail(operation, FailureMode::AfterCommit(504), 1);
    stack.m365.add_records(TENANT, "Audit.AzureActiveDirectory", vec![global_admin_added(0, "bob@contoso.com")]);
    poll_and_settle(&stack).await;
    let url = url(&ch);
    assert_eq!(stack.channels.received(&url).len(), 1, "shown once");
    let alert = &msp.alerts().await[0];
    let detail = msp.call(reqwest::Method::GET, &format!("/v1/alerts/{}", alert["id"].as_str().unwrap()), None).await.2;
    let uncertain: u64 = detail["deliveries"].as_array().unwrap().iter().filter_map(|d| d["messages_uncertain"].as_u64()).sum();
    if operation == ChannelOperation::WebhookPost {
        assert_eq!(stack.channels.attempts(&url), 2, "sent again under the same webhook-id, which the receiver keeps");
        assert_eq!(uncertain, 0);
    } else {
        assert_eq!(stack.channels.attempts(&url), 1, "never posted twice");
        assert_eq!(uncertain, 1, "and counted as uncertain: {detail:#}");
    }
    stack.shutdown().await;
}

fn operation_name(operation: ChannelOperation) -> &'static str {
    use vigil_simulators::kit::Operation as _;
    match operation.name() {
        "teams_post" => "teams",
        "slack_post" => "slack",
        _ => "hook",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_card_whose_answer_is_lost_shows_once() {
    lost_answer_shows_once(ChannelOperation::TeamsPost, |c| c.teams.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_message_whose_answer_is_lost_shows_once() {
    lost_answer_shows_once(ChannelOperation::SlackPost, |c| c.slack.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_whose_answer_is_lost_is_sent_again_and_kept_once() {
    lost_answer_shows_once(ChannelOperation::WebhookPost, |c| c.hook.clone()).await;
}
