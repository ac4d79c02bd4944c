//! The demo's staff step: the MSP's owner creates an analyst limited to Threat management
//! alerts and gives it a token; a Contoso user then downloads 60 files (a Data loss prevention
//! alert). The analyst sees the Threat management alerts but not that one — not in the list,
//! not by its id, not in the SIEM feed — and cannot change configuration; the owner's audit
//! log names who created the analyst.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, settle};
use crate::stack::LocalStack;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::io::Write;
use vigil::services::poll::PollReport;

const DOWNLOADS: usize = 60;

/// gina downloads file `n` of a finance site (the common file-operation schema).
fn download(n: usize, at: DateTime<Utc>) -> Value {
    let file = format!("https://contoso.sharepoint.com/sites/finance/Shared Documents/ledger-{n:03}.xlsx");
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": format!("d0a1c1e2-0007-4000-8000-{n:012}"),
        "Operation": "FileDownloaded", "OrganizationId": CONTOSO, "RecordType": 6, "UserKey": "i:0h.f|membership|10032001a2b3c4d9@live.com",
        "UserType": 0, "Version": 1, "Workload": "SharePoint", "ClientIP": "198.51.100.23", "ObjectId": file, "UserId": "gina@contoso.com",
        "EventSource": "SharePoint", "ItemType": "File", "SiteUrl": "https://contoso.sharepoint.com/sites/finance/",
        "SourceRelativeUrl": "Shared Documents", "SourceFileName": format!("ledger-{n:03}.xlsx"), "SourceFileExtension": "xlsx"
    })
}

fn categories(alerts: &Value) -> Vec<String> {
    let mut seen: Vec<String> =
        alerts["alerts"].as_array().into_iter().flatten().filter_map(|a| a["category"].as_str().map(str::to_owned)).collect();
    seen.sort();
    seen.dedup();
    seen
}

/// Step 17.
pub(crate) async fn analyst_limited_to_threat_management(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    owner: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(
        out,
        "\n17. The owner adds Ann, an analyst who handles Threat management only; then gina in Contoso downloads {DOWNLOADS} finance files (Data loss prevention)."
    );
    let ann = owner
        .send(
            reqwest::Method::POST,
            "/v1/principals",
            Some(json!({"name": "Ann Analyst", "email": "ann@demo-msp.example", "role": "analyst", "categories": ["ThreatManagement"]})),
        )
        .await?;
    let ann_id = ann["principal_id"].as_str().unwrap_or_default().to_owned();
    let token =
        owner.send(reqwest::Method::POST, &format!("/v1/principals/{ann_id}/tokens"), Some(json!({"name": "Ann's laptop"}))).await?;
    let analyst = owner.as_token(token["token"].as_str().unwrap_or_default());
    let _ = writeln!(out, "   POST /v1/principals → {ann_id} ({}), permissions {}", ann["role"], ann["permissions"]);

    let now = Utc::now();
    stack.m365.add_records(CONTOSO, "Audit.SharePoint", (0..DOWNLOADS).map(|n| download(n, now)).collect());
    settle(stack, out, seen).await?;

    let everything = owner.send(reqwest::Method::GET, "/v1/alerts?limit=100", None).await?;
    let dlp: Vec<&Value> =
        everything["alerts"].as_array().into_iter().flatten().filter(|a| a["category"] == "DataLossPrevention").collect();
    let dlp_id = dlp.first().and_then(|a| a["id"].as_str()).unwrap_or_default().to_owned();
    let _ = writeln!(out, "   the owner's alert list holds the categories {:?}", categories(&everything));
    outcome.check(
        out,
        "the downloads are one Data loss prevention alert (Mass file download)",
        dlp.len() == 1 && dlp[0]["policy_id"] == "builtin.mass-download",
    );

    let visible = analyst.send(reqwest::Method::GET, "/v1/alerts?limit=100", None).await?;
    let feed = analyst.send(reqwest::Method::GET, "/v1/siem/alerts?limit=500", None).await?;
    let _ = writeln!(out, "   Ann's alert list holds the categories {:?}", categories(&visible));
    let by_id = analyst.send(reqwest::Method::GET, &format!("/v1/alerts/{dlp_id}"), None).await.err().map(|e| e.0).unwrap_or_default();
    let status = by_id.split("answered ").nth(1).and_then(|rest| rest.split(':').next()).unwrap_or("?");
    let _ = writeln!(out, "   Ann: GET /v1/alerts/{dlp_id} (the Data loss prevention alert) → {status}");
    outcome.check(
        out,
        "Ann sees Threat management alerts and no Data loss prevention alert: not listed, not in the SIEM feed, 404 by id",
        categories(&visible) == ["ThreatManagement"] && categories(&feed) == ["ThreatManagement"] && by_id.contains("404"),
    );
    let config = analyst.send(reqwest::Method::DELETE, "/v1/destinations/psa", None).await.err().map(|e| e.0).unwrap_or_default();
    outcome.check(out, "Ann cannot change configuration (DELETE /v1/destinations/psa → 403)", config.contains("403"));

    let audit = owner.send(reqwest::Method::GET, "/v1/audit-log?limit=5", None).await?;
    let created = audit["entries"].as_array().into_iter().flatten().find(|e| e["action"] == "principal.created");
    if let Some(entry) = created {
        let _ = writeln!(out, "   audit log: {} {} by {}", entry["action"], entry["target"], entry["actor"]["name"]);
    }
    outcome.check(out, "the audit log names who created Ann", created.is_some_and(|e| e["actor"]["name"] == "Owner"));
    Ok(())
}
