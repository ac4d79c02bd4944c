//! The demo's Defender for Office 365 step: in Contoso, a user clicks through a Safe Links
//! warning (a Threat Intelligence URL record, RecordType 41) and malware is found in a file
//! synced to OneDrive, reported both by Safe Attachments (RecordType 47) and by SharePoint's own
//! scan (RecordType 6 `FileMalwareDetected`); each threat becomes one alert and one ticket.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, settle};
use crate::stack::LocalStack;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::io::Write;
use vigil::services::poll::PollReport;

const SETUP_EXE: &str = "https://contoso-my.sharepoint.com/personal/frank_contoso_com/Documents/tools/setup.exe";

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// erin overrides the Safe Links block page (UrlClickAction 4), as in the reference's example.
fn click_through(at: DateTime<Utc>) -> Value {
    json!({
        "CreationTime": time(at), "Id": "d0a1c1e2-0006-4000-8000-000000000001", "Operation": "TIUrlClickData",
        "OrganizationId": CONTOSO, "RecordType": 41, "UserKey": "ThreatIntel", "UserType": 4, "Version": 1,
        "Workload": "ThreatIntelligence", "UserId": "erin@contoso.com", "AppName": "Mail", "AppVersion": "0.0.0000",
        "EventDeepLink": "https://security.microsoft.com/threatexplorer?...&query-NetworkMessageId=2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
        "SourceId": "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a", "TimeOfClick": time(at),
        "Url": "https://login-contoso.account-verify.example/session", "UrlClickAction": 4, "UserIp": "203.0.113.15"
    })
}

/// Safe Attachments for OneDrive flags setup.exe (the reference's example).
fn atp_detection(at: DateTime<Utc>) -> Value {
    json!({
        "CreationTime": time(at), "Id": "d0a1c1e2-0006-4000-8000-000000000002", "Operation": "AtpDetection",
        "OrganizationId": CONTOSO, "RecordType": 47, "UserKey": "ThreatIntel", "UserType": 4, "Version": 1,
        "Workload": "ThreatIntelligence", "UserId": "ThreatIntel", "ObjectId": SETUP_EXE, "DetectionMethod": "AntiMalware",
        "EventDeepLink": "https://security.microsoft.com/threatexplorer?...&viewid=MalwareContent",
        "FileData": {"DocumentId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "FileName": "setup.exe", "FilePath": SETUP_EXE,
                     "FileSize": "482304", "FileVerdict": 1, "MalwareFamily": "HackTool:Win32/Mimikatz",
                     "SHA256": "2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE"},
        "LastModifiedBy": "frank@contoso.com", "LastModifiedDate": time(at), "SourceWorkload": 1
    })
}

/// SharePoint's own virus scan reports the same file (common file-operation schema).
fn sharepoint_detection(at: DateTime<Utc>) -> Value {
    json!({
        "CreationTime": time(at), "Id": "d0a1c1e2-0006-4000-8000-000000000003", "Operation": "FileMalwareDetected",
        "OrganizationId": CONTOSO, "RecordType": 6, "UserKey": "i:0h.f|membership|10032001a2b3c4d8@live.com", "UserType": 0,
        "Version": 1, "Workload": "OneDrive", "ClientIP": "203.0.113.77", "ObjectId": SETUP_EXE, "UserId": "frank@contoso.com",
        "EventSource": "SharePoint", "ItemType": "File", "SiteUrl": "https://contoso-my.sharepoint.com/personal/frank_contoso_com/",
        "SourceRelativeUrl": "Documents/tools", "SourceFileName": "setup.exe", "SourceFileExtension": "exe"
    })
}

/// Alerts of one policy.
async fn alerts_of(api: &Api, policy: &str) -> Result<Vec<Value>, DemoError> {
    let alerts = api.send(reqwest::Method::GET, &format!("/v1/alerts?policy={policy}&limit=100"), None).await?;
    Ok(alerts["alerts"].as_array().into_iter().flatten().filter(|a| a["policy_id"] == policy).cloned().collect())
}

/// Step 15.
pub(crate) async fn defender_threats(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(
        out,
        "\n15. Defender for Office 365 in Contoso: erin clicks through a Safe Links warning, and malware turns up in a file frank synced to OneDrive (Safe Attachments and SharePoint's scan both report it)."
    );
    let before = stack.connectwise.tickets();
    let now = Utc::now();
    stack.m365.add_records(CONTOSO, "Audit.General", vec![click_through(now), atp_detection(now)]);
    stack.m365.add_records(CONTOSO, "Audit.SharePoint", vec![sharepoint_detection(now)]);
    settle(stack, out, seen).await?;

    let clicks = alerts_of(api, "builtin.malicious-url-click-through").await?;
    let blocked = alerts_of(api, "builtin.malicious-url-click").await?;
    let malware = alerts_of(api, "builtin.malware-in-file").await?;
    for alert in clicks.iter().chain(&malware) {
        let _ = writeln!(
            out,
            "   alert \"{}\" severity {} hits {}",
            alert["policy_name"].as_str().unwrap_or("?"),
            alert["severity"].as_str().unwrap_or("?"),
            alert["hit_count"]
        );
    }
    let new: Vec<_> = stack.connectwise.tickets().into_iter().filter(|t| !before.iter().any(|b| b.id == t.id)).collect();
    for ticket in &new {
        let _ = writeln!(
            out,
            "   ConnectWise ticket #{}: \"{}\" company {} priority {}",
            ticket.id,
            ticket.body["summary"].as_str().unwrap_or("?"),
            ticket.body["company"]["id"],
            ticket.body["priority"]["id"]
        );
    }
    let summary_has = |what: &str| new.iter().filter(|t| t.body["summary"].as_str().unwrap_or_default().contains(what)).count();
    outcome.check(
        out,
        "the click-through (RT41, action 4) is one High alert and one ticket, and not also a blocked-click alert",
        clicks.len() == 1 && clicks[0]["severity"] == "High" && blocked.is_empty() && summary_has("clicked through") == 1,
    );
    outcome.check(
        out,
        "both reports of setup.exe (RT47 and RT6 FileMalwareDetected) joined one High alert with 2 hits and one ticket",
        malware.len() == 1 && malware[0]["severity"] == "High" && malware[0]["hit_count"] == 2 && summary_has("Malware detected") == 1,
    );
    outcome.check(
        out,
        "two new ConnectWise tickets, Contoso's company at High priority",
        new.len() == 2 && new.iter().all(|t| t.body["company"]["id"] == 250 && t.body["priority"]["id"] == 8),
    );
    Ok(())
}
