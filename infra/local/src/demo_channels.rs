//! The demo's channel step: the MSP adds a Microsoft Teams channel and a Slack channel for High
//! Permissions alerts and a signed webhook for its own automation; someone in Contoso makes a
//! user Global Administrator. The Teams card (valid against the Adaptive Card schema), the Slack
//! message and the webhook event (its Standard Webhooks signature checked by the simulator's
//! receiver) each arrive once.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, settle};
use crate::stack::LocalStack;
use chrono::{DurationRound, Utc};
use serde_json::{Value, json};
use std::io::Write;
use vigil::services::poll::PollReport;

/// The demo webhook's signing secret (Standard Webhooks form).
const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// An administrator makes `member` a Global Administrator (RecordType 8, record `id`).
pub(crate) fn global_admin_added(id: &str, member: &str) -> Value {
    let at = Utc::now().duration_trunc(chrono::Duration::minutes(15)).unwrap_or_else(|_| Utc::now());
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id,
        "Operation": "Add member to role.", "OrganizationId": CONTOSO, "RecordType": 8, "ResultStatus": "Success",
        "UserKey": "10033FFF8A1B2C3D@contoso.onmicrosoft.com", "UserType": 0, "Version": 1, "Workload": "AzureActiveDirectory",
        "ObjectId": member, "UserId": "admin@contoso.onmicrosoft.com",
        "ModifiedProperties": [{"Name": "Role.DisplayName", "NewValue": "Global Administrator", "OldValue": ""},
                               {"Name": "Role.TemplateId", "NewValue": "62e90394-69f5-4237-9190-012177145e10", "OldValue": ""}],
        "Target": [{"ID": member, "Type": 5}]
    })
}

/// Step 20.
pub(crate) async fn chat_and_webhook_channels(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(
        out,
        "\n20. The MSP adds a Teams channel and a Slack channel for High Permissions alerts, and a signed webhook for its automation."
    );
    let (teams, slack) = (stack.channels.teams_flow(), stack.channels.slack_webhook());
    let hook = stack.channels.webhook_endpoint(&[WEBHOOK_SECRET]);
    let high = json!({"min_severity": "High", "categories": ["Permissions"]});
    let put =
        |id: &'static str, body: Value| async move { api.send(reqwest::Method::PUT, &format!("/v1/destinations/{id}"), Some(body)).await };
    put(
        "soc-teams",
        json!({"name": "SOC channel", "settings": {"kind": "teams"}, "routing": high,
        "credentials": {"kind": "teams", "workflow_url": teams}}),
    )
    .await?;
    put(
        "on-call-slack",
        json!({"name": "On call", "settings": {"kind": "slack"}, "routing": high,
        "credentials": {"kind": "slack", "webhook_url": slack}}),
    )
    .await?;
    put(
        "automation",
        json!({"name": "Automation", "settings": {"kind": "webhook", "url": hook},
        "routing": {"categories": ["Permissions"]}, "credentials": {"kind": "webhook", "secret": WEBHOOK_SECRET}}),
    )
    .await?;
    let tested = api.send(reqwest::Method::POST, "/v1/destinations/soc-teams/test", None).await?;
    outcome.check(out, "the Teams destination's test posts a test card", tested["ok"] == true);

    let _ = writeln!(out, "    In Contoso, an administrator makes bob@contoso.com a Global Administrator.");
    stack.m365.add_records(
        CONTOSO,
        "Audit.AzureActiveDirectory",
        vec![global_admin_added("d0a1c1e2-0020-4000-8000-000000000001", "bob@contoso.com")],
    );
    settle(stack, out, seen).await?;
    let cards = stack.channels.received(&teams);
    let card = cards.last().map(|c| c.body["attachments"][0]["content"].clone()).unwrap_or_default();
    let headline = card["body"][0]["text"].as_str().unwrap_or_default().to_owned();
    let _ = writeln!(out, "    Teams shows: {headline}");
    outcome.check(
        out,
        "one Teams card for the alert (plus the test card), valid against the Adaptive Card 1.5 schema",
        cards.len() == 2 && headline.contains("Global Administrator") && vigil_simulators::channels::teams::card_problems(&card).is_empty(),
    );
    let slack_messages = stack.channels.received(&slack);
    let _ = writeln!(out, "    Slack shows: {}", slack_messages.last().map(|m| m.body["text"].to_string()).unwrap_or_default());
    outcome.check(
        out,
        "one Slack message with blocks",
        slack_messages.len() == 1 && slack_messages[0].body["blocks"][0]["type"] == "header",
    );
    let events = stack.channels.received(&hook);
    let signature = events.first().and_then(|e| e.headers.get("webhook-signature").cloned()).unwrap_or_default();
    let _ = writeln!(
        out,
        "    The webhook received {} (webhook-signature {}…)",
        events.first().map(|e| e.body["type"].to_string()).unwrap_or_default(),
        signature.chars().take(12).collect::<String>()
    );
    outcome.check(
        out,
        "one signed webhook event, its Standard Webhooks signature accepted by the receiver",
        events.len() == 1 && events[0].body["type"] == "vigil.alert.raised",
    );
    Ok(())
}
