//! The demo's last step: Fabrikam leaves the MSP, which offboards it with a retention of 0 days.
//! Vigil stops polling it, stops its Management Activity subscriptions (and so their webhooks),
//! deletes its credentials and company links, and purges every record of it; the report says
//! what was removed, per kind. Asking again changes nothing, and Contoso keeps everything.

use crate::demo::{Api, DemoError, DemoOutcome, FABRIKAM, settle};
use crate::stack::LocalStack;
use serde_json::{Value, json};
use std::io::Write;
use vigil::services::poll::PollReport;

/// Step 26 (the last).
pub(crate) async fn offboard_fabrikam(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n26. Fabrikam leaves the MSP: the owner offboards it, keeping its data 0 days.");
    let tenant_alerts =
        |alerts: &Value, tenant: &str| alerts["alerts"].as_array().into_iter().flatten().filter(|a| a["tenant_id"] == tenant).count();
    let alerts_before = api.send(reqwest::Method::GET, "/v1/alerts?limit=100", None).await?;
    let others_before = alerts_before["alerts"].as_array().map_or(0, Vec::len) - tenant_alerts(&alerts_before, FABRIKAM);
    let path = format!("/v1/tenants/{FABRIKAM}/offboarding");
    let started = api.send(reqwest::Method::POST, &path, Some(json!({"retention_days": 0}))).await?;
    let _ = writeln!(out, "   POST {path} {{\"retention_days\": 0}} → phase {}, purge after {}", started["phase"], started["purge_after"]);
    settle(stack, out, seen).await?;
    let done = api.send(reqwest::Method::GET, &path, None).await?;
    let removed: Vec<String> = done["removed"].as_object().into_iter().flatten().map(|(kind, n)| format!("{kind} {n}")).collect();
    let _ = writeln!(out, "   GET {path} → phase {}, removed: {}", done["phase"], removed.join(", "));
    let stopped = ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"]
        .iter()
        .all(|ct| stack.m365.subscription(FABRIKAM, ct).is_some_and(|s| s["status"] == "disabled"));
    let _ = writeln!(
        out,
        "   Microsoft 365: Fabrikam's five Management Activity subscriptions are {}",
        if stopped { "stopped" } else { "NOT stopped" }
    );
    let alerts_after = api.send(reqwest::Method::GET, "/v1/alerts?limit=100", None).await?;
    let tenant = api.status(reqwest::Method::GET, &format!("/v1/tenants/{FABRIKAM}"), None).await?;
    outcome.check(
        out,
        "Fabrikam is purged: its subscriptions stopped, its credentials, company links, alerts and deliveries gone, Contoso's untouched",
        done["phase"] == "purged"
            && stopped
            && done["removed"]["credentials"] == 1
            && done["removed"]["alerts"].as_u64().is_some_and(|n| n > 0)
            && tenant_alerts(&alerts_after, FABRIKAM) == 0
            && alerts_after["alerts"].as_array().map_or(0, Vec::len) == others_before
            && tenant == 404,
    );
    let again = api.send(reqwest::Method::POST, &path, Some(json!({"retention_days": 30}))).await?;
    let log = api.send(reqwest::Method::GET, "/v1/audit-log?limit=100", None).await?;
    let entries: Vec<&Value> = log["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("tenant.offboarded")))
        .collect();
    outcome.check(
        out,
        "offboarding again changes nothing: the same report, one audit entry",
        again["removed"] == done["removed"] && again["retention_days"] == 0 && entries.len() == 1,
    );
    Ok(())
}
