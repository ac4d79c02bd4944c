//! The demo's self-monitoring step: Microsoft disables Vigil's webhook on one of Contoso's
//! subscriptions (too many failed notifications, played through the simulator's control route).
//! Vigil's hourly subscription check sees it and raises its own alert, with a ticket on the MSP's
//! own company in ConnectWise; the next tick registers the webhook again, the check after the
//! poll sees it enabled, and the alert resolves itself, closing its ticket.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, fail, settle};
use crate::stack::LocalStack;
use chrono::{Duration, Utc};
use serde_json::Value;
use std::io::Write;
use vigil::ids::{AuditStream, ContentType, MspId, TenantId};
use vigil::ports::{IngestStateStore, StreamKey};
use vigil::services::poll::PollReport;

const POLICY: &str = "builtin.selfmon-webhook-disabled";

/// Plays an hour passing for the stream's subscription check (it runs hourly while all is well).
async fn subscription_check_due(stack: &LocalStack, content_type: ContentType) -> Result<(), DemoError> {
    let state = vigil::aws::ingest_state::DynamoIngestState::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.provisioned.table_names["StateTable"].clone(),
    );
    let key = StreamKey {
        msp_id: MspId::parse("demo-msp").map_err(|e| fail(e.to_string()))?,
        tenant_id: TenantId::parse(CONTOSO).map_err(|e| fail(e.to_string()))?,
        stream: AuditStream::from(content_type),
    };
    let mut ledger =
        state.get_stream(&key).await.map_err(|e| fail(e.to_string()))?.ok_or_else(|| fail("Contoso's stream has no ledger"))?;
    ledger.monitoring.subscription_checked_at = Some(Utc::now() - Duration::hours(2));
    state.put_stream(&key, &ledger).await.map_err(|e| fail(e.to_string()))
}

/// The self-monitoring alert about Contoso's Audit.General webhook.
async fn webhook_alert(api: &Api) -> Result<Option<Value>, DemoError> {
    let alerts = api.send(reqwest::Method::GET, &format!("/v1/alerts?policy={POLICY}&limit=100"), None).await?;
    Ok(alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["tenant_id"] == CONTOSO && a["title"].as_str().is_some_and(|t| t.contains("Audit.General")))
        .cloned())
}

/// ConnectWise tickets about the webhook: (company id, closed).
fn webhook_tickets(stack: &LocalStack) -> Vec<(i64, bool)> {
    stack
        .connectwise
        .tickets()
        .into_iter()
        .filter(|t| t.body["summary"].as_str().is_some_and(|s| s.contains("webhook for Audit.General disabled")))
        .map(|t| (t.body["company"]["id"].as_i64().unwrap_or_default(), t.body["closedFlag"] == true))
        .collect()
}

/// Step 25.
pub(crate) async fn webhook_disabled_and_renewed(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n25. Self-monitoring: Microsoft disables Vigil's webhook on Contoso's Audit.General subscription.");
    let destination = api.send(reqwest::Method::GET, "/v1/destinations/connectwise", None).await?;
    let own: i64 = destination["routing"]["own_company"].as_str().and_then(|c| c.parse().ok()).unwrap_or_default();
    let control = format!("{}/_sim/tenants/{CONTOSO}/subscriptions/Audit.General/disable-webhook", stack.m365.base_url());
    let answer = reqwest::Client::new().post(&control).send().await.map_err(|e| fail(format!("simulator control: {e}")))?;
    let _ = writeln!(out, "   POST {control} → {} (as after too many failed notifications)", answer.status().as_u16());
    subscription_check_due(stack, ContentType::General).await?;
    let _ = writeln!(out, "   an hour passes: the hourly subscriptions/list check of the stream is due");
    settle(stack, out, seen).await?;
    let raised = webhook_alert(api).await?;
    let tickets = webhook_tickets(stack);
    if let Some(alert) = &raised {
        let _ = writeln!(
            out,
            "   GET /v1/alerts?policy={POLICY} → \"{}\" ({}, {})",
            alert["title"].as_str().unwrap_or_default(),
            alert["category"],
            alert["status"]
        );
    }
    let _ = writeln!(out, "   ConnectWise: {} ticket(s) on the MSP's own company {own}", tickets.iter().filter(|(c, _)| *c == own).count());
    outcome.check(
        out,
        "Vigil's own alert (category Others) opened with one ticket on the MSP's own company",
        raised.as_ref().is_some_and(|a| a["status"] == "New" && a["category"] == "Others") && tickets == [(own, false)],
    );

    let _ = writeln!(out, "   the next tick registers the webhook again (a new authId); the check after the poll sees it enabled");
    settle(stack, out, seen).await?;
    settle(stack, out, seen).await?;
    let status = stack.m365.subscription(CONTOSO, "Audit.General").map(|s| s["webhook"]["status"].clone()).unwrap_or(Value::Null);
    let resolved = webhook_alert(api).await?;
    let tickets = webhook_tickets(stack);
    let _ = writeln!(
        out,
        "   Microsoft 365: webhook {status}; alert {}; ConnectWise ticket {}",
        resolved.as_ref().map_or(Value::Null, |a| a["status"].clone()),
        if tickets.iter().all(|(_, closed)| *closed) { "closed" } else { "still open" }
    );
    outcome.check(
        out,
        "the webhook is registered again, the alert resolved itself and its ticket is closed",
        status == "enabled" && resolved.is_some_and(|a| a["status"] == "Resolved") && tickets == [(own, true)],
    );
    Ok(())
}
