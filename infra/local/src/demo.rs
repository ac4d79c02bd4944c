//! The `make demo` scenario: an MSP onboards a tenant through the config API, the simulated
//! tenant produces forwarding-rule and admin-elevation audit records (later also a Safe Links
//! click-through and a malware detection in a file, see `demo_threats`), and Vigil polls, raises
//! alerts and opens exactly one ConnectWise ticket per alert (later hits become a note; the same
//! content polled again changes nothing). Later steps add destinations, suppressions, staff
//! roles, the MSP's own delegated access to its customers (`demo_relationships`), and a licence
//! expiring into its grace period and renewed (`demo_licences`), and customers onboarded by
//! consent link, tested and found in the partner tenant (`demo_onboarding`), and Contoso's alert
//! queue read from Contoso's own change index (`demo_tenant_queue`). Every step is narrated and
//! checked.

use crate::stack::LocalStack;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use std::io::Write;
use vigil::services::poll::PollReport;

/// The demo customer tenant.
pub const CONTOSO: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const APP_ID: &str = "11111111-2222-4333-8444-555555555555";
const APP_SECRET: &str = "demo-app-secret";
const COMPANY_ID: i64 = 250;
/// The second demo customer.
pub const FABRIKAM: &str = "0b7d4c2e-3f1a-4e8b-9c6d-7a5e2f1b3c4d";
const FABRIKAM_COMPANY_ID: i64 = 251;

/// A failed demo step or check.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DemoError(pub String);

pub(crate) fn fail(message: impl Into<String>) -> DemoError {
    DemoError(message.into())
}

/// What the demo found; `passed()` decides the exit code.
#[derive(Debug, Default)]
pub struct DemoOutcome {
    pub checks: Vec<(String, bool)>,
}

impl DemoOutcome {
    pub(crate) fn check(&mut self, out: &mut dyn Write, what: &str, ok: bool) {
        let _ = writeln!(out, "   [{}] {what}", if ok { "ok" } else { "FAILED" });
        self.checks.push((what.to_owned(), ok));
    }

    /// True when every check passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|(_, ok)| *ok)
    }
}

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// The same API, called with another token.
    pub(crate) fn as_token(&self, token: &str) -> Api {
        Api { http: self.http.clone(), base: self.base.clone(), token: token.to_owned() }
    }

    pub(crate) async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, DemoError> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| fail(format!("{method} {path}: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(fail(format!("{method} {path} answered {status}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The status a request is answered with (for refusals the demo shows).
    pub(crate) async fn status(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<u16, DemoError> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| fail(format!("{method} {path}: {e}")))?;
        Ok(response.status().as_u16())
    }
}

pub(crate) fn forwarding_record(id: &str, at: DateTime<Utc>, target: &str) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "New-InboxRule",
        "OrganizationId": CONTOSO, "RecordType": 1, "ResultStatus": "True", "UserKey": "10032001A2B3C4D5", "UserType": 0,
        "Version": 1, "Workload": "Exchange", "ClientIP": "[2001:db8:12::7]:51544", "UserId": "alice@contoso.com",
        "ObjectId": "contoso.onmicrosoft.com\\alice\\Forward to external", "ExternalAccess": false,
        "OrganizationName": "contoso.onmicrosoft.com", "OriginatingServer": "DB9PR02MB7777 (15.20.8000.010)",
        "Parameters": [{"Name": "ForwardTo", "Value": target}, {"Name": "Name", "Value": "Forward to external"}, {"Name": "StopProcessingRules", "Value": "True"}]
    })
}

fn elevation_record(id: &str, at: DateTime<Utc>) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "Add-RoleGroupMember",
        "OrganizationId": CONTOSO, "RecordType": 1, "ResultStatus": "True", "UserKey": "10032001A2B3C4D6", "UserType": 2,
        "Workload": "Exchange", "ClientIP": "203.0.113.50", "UserId": "bob@contoso.com", "ObjectId": "Organization Management",
        "Parameters": [{"Name": "Identity", "Value": "Organization Management"}, {"Name": "Member", "Value": "mallory@contoso.com"}]
    })
}

fn failed_sign_in(id: &str, at: DateTime<Utc>, user: &str) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "UserLoginFailed",
        "OrganizationId": CONTOSO, "RecordType": 15, "ResultStatus": "Failed", "UserKey": "10032001A2B3C4D7", "UserType": 0,
        "Version": 1, "Workload": "AzureActiveDirectory", "ClientIP": "198.51.100.23", "ActorIpAddress": "198.51.100.23",
        "UserId": user, "ObjectId": "00000002-0000-0000-c000-000000000000", "AzureActiveDirectoryEventType": 1,
        "LogonError": "InvalidUserNameOrPassword", "ErrorNumber": "50126",
        "ExtendedProperties": [{"Name": "RequestType", "Value": "OAuth2:Token"}, {"Name": "UserAgent", "Value": "python-requests/2.31"}]
    })
}

fn connection_tickets(tickets: &[vigil_simulators::connectwise::SimTicket]) -> Vec<vigil_simulators::connectwise::SimTicket> {
    tickets.iter().filter(|t| t.body["summary"].as_str().unwrap_or_default().contains("Tenant connection problem")).cloned().collect()
}

/// Polls, waits until everything has flowed, and narrates what polling did since the last
/// narration (webhook notifications may have fetched new content before the tick).
pub(crate) async fn settle(stack: &LocalStack, out: &mut dyn Write, seen: &mut PollReport) -> Result<(), DemoError> {
    // Listing windows have one-second resolution and are half-open: content created in the
    // current second is listed by the next poll. Let the second pass, as a schedule would.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    stack.poll_and_settle(std::time::Duration::from_secs(60)).await.map_err(|e| fail(format!("poll: {e}")))?;
    let now = stack.stats.polling();
    let report = crate::stack::report_since(&now, seen);
    *seen = now;
    let _ = writeln!(
        out,
        "   audit-poller: {} stream(s) polled, {} blob(s) fetched, {} record(s) enqueued, {} already seen, {} quarantined",
        report.streams_polled, report.blobs_fetched, report.records_enqueued, report.records_skipped, report.quarantined
    );
    Ok(())
}

/// Runs the scenario against a started stack, narrating to `out`.
///
/// # Errors
/// When a step cannot be carried out (a failed *check* is reported in the outcome instead).
pub async fn run(stack: &LocalStack, out: &mut dyn Write) -> Result<DemoOutcome, DemoError> {
    let mut outcome = DemoOutcome::default();
    let mut seen = stack.stats.polling();
    let _ = writeln!(out, "Vigil demo — local stack at {} (AWS on moto at {})", stack.api_url, stack.aws_endpoint);

    let _ = writeln!(out, "\n1. The operator creates the MSP \"demo-msp\" and issues its API token (vigil-admin).");
    let token = stack.create_msp("demo-msp", "Demo MSP").await.map_err(|e| fail(e.to_string()))?;
    let api = Api { http: reqwest::Client::new(), base: stack.api_url.clone(), token: token.expose().to_owned() };

    let _ = writeln!(out, "\n2. The MSP onboards Contoso through the config API.");
    api.send(reqwest::Method::POST, "/v1/tenants", Some(json!({"tenant_id": CONTOSO, "name": "Contoso Ltd", "domains": ["contoso.com"]})))
        .await?;
    let _ = writeln!(out, "   POST /v1/tenants                                  → Contoso registered");
    stack.m365.add_tenant(CONTOSO, APP_ID, APP_SECRET);
    api.send(
        reqwest::Method::PUT,
        &format!("/v1/tenants/{CONTOSO}/m365-credentials"),
        Some(json!({"client_id": APP_ID, "client_secret": APP_SECRET})),
    )
    .await?;
    let _ = writeln!(out, "   PUT  /v1/tenants/{{id}}/m365-credentials            → stored in Secrets Manager (write-only)");
    let cw = stack.connectwise.credentials();
    let connectwise = json!({
        "name": "ConnectWise Manage",
        "settings": {"kind": "connectwise", "api_root": stack.connectwise.api_root()},
        "routing": {"default_place": "1", "priorities": {"High": "8", "Medium": "9", "Low": "10", "Informational": "11"}},
        "credentials": {"kind": "connectwise", "company_id": cw.company_id, "public_key": cw.public_key, "private_key": cw.private_key, "client_id": cw.client_id}
    });
    api.send(reqwest::Method::PUT, "/v1/destinations/connectwise", Some(connectwise)).await?;
    let _ =
        writeln!(out, "   PUT  /v1/destinations/connectwise                 → ConnectWise Manage: every alert, board 1 (keys write-only)");
    api.send(
        reqwest::Method::PUT,
        &format!("/v1/tenants/{CONTOSO}/destinations/connectwise/company"),
        Some(json!({"company": COMPANY_ID.to_string()})),
    )
    .await?;
    let _ = writeln!(out, "   PUT  /v1/tenants/{{id}}/destinations/connectwise/company → Contoso → ConnectWise company {COMPANY_ID}");

    let now = Utc::now();
    let window_start = now.duration_trunc(Duration::minutes(15)).unwrap_or(now);
    let at = |seconds: i64| window_start + Duration::seconds(seconds);
    let _ = writeln!(out, "\n3. In Contoso, alice creates a forwarding rule three times and bob adds mallory to Organization Management.");
    let first_blob = vec![
        forwarding_record("d0a1c1e2-0001-4000-8000-000000000001", at(10), "drop@mail-collector.example"),
        forwarding_record("d0a1c1e2-0001-4000-8000-000000000002", at(20), "drop@mail-collector.example"),
        forwarding_record("d0a1c1e2-0001-4000-8000-000000000003", at(30), "drop@mail-collector.example"),
        elevation_record("d0a1c1e2-0001-4000-8000-000000000004", at(40)),
    ];
    stack.m365.add_records(CONTOSO, "Audit.Exchange", first_blob.clone());
    settle(stack, out, &mut seen).await?;

    let alerts = api.send(reqwest::Method::GET, "/v1/alerts", None).await?;
    let alerts = alerts["alerts"].as_array().cloned().unwrap_or_default();
    for alert in &alerts {
        let _ = writeln!(
            out,
            "   alert {} \"{}\" severity {} hits {}",
            alert["id"].as_str().unwrap_or("?"),
            alert["policy_name"].as_str().unwrap_or("?"),
            alert["severity"].as_str().unwrap_or("?"),
            alert["hit_count"]
        );
    }
    let tickets = stack.connectwise.tickets();
    for ticket in &tickets {
        let _ = writeln!(
            out,
            "   ConnectWise ticket #{}: \"{}\" company {} board {} priority {}",
            ticket.id,
            ticket.body["summary"].as_str().unwrap_or("?"),
            ticket.body["company"]["id"],
            ticket.body["board"]["id"],
            ticket.body["priority"]["id"]
        );
    }
    outcome.check(out, "two alerts raised (forwarding rule ×3 aggregated, admin elevation ×1)", alerts.len() == 2);
    outcome.check(
        out,
        "two ConnectWise tickets, under company 250 on board 1",
        tickets.len() == 2 && tickets.iter().all(|t| t.body["company"]["id"] == COMPANY_ID && t.body["board"]["id"] == 1),
    );

    let _ = writeln!(out, "\n4. alice changes the rule twice more in the same 15-minute window.");
    stack.m365.add_records(
        CONTOSO,
        "Audit.Exchange",
        vec![
            forwarding_record("d0a1c1e2-0001-4000-8000-000000000005", at(50), "second@mail-collector.example"),
            forwarding_record("d0a1c1e2-0001-4000-8000-000000000006", at(60), "second@mail-collector.example"),
        ],
    );
    settle(stack, out, &mut seen).await?;
    let tickets = stack.connectwise.tickets();
    for ticket in tickets.iter().filter(|t| !t.notes.is_empty()) {
        for note in &ticket.notes {
            let _ = writeln!(
                out,
                "   note on ticket #{}: {}",
                ticket.id,
                note["text"].as_str().unwrap_or("?").lines().take(2).collect::<Vec<_>>().join(" | ")
            );
        }
    }
    outcome.check(
        out,
        "still two tickets; the forwarding ticket got one note",
        tickets.len() == 2 && tickets.iter().map(|t| t.notes.len()).sum::<usize>() == 1,
    );

    let _ = writeln!(out, "\n5. Microsoft delivers the first blob's records again (duplicates happen), and Vigil polls again.");
    stack.m365.add_records(CONTOSO, "Audit.Exchange", first_blob);
    settle(stack, out, &mut seen).await?;
    let after = stack.connectwise.tickets();
    outcome.check(out, "no new ticket and no new note", after.len() == 2 && after.iter().map(|t| t.notes.len()).sum::<usize>() == 1);

    let alerts = api.send(reqwest::Method::GET, "/v1/alerts", None).await?;
    let mut hits: Vec<i64> = alerts["alerts"].as_array().into_iter().flatten().filter_map(|a| a["hit_count"].as_i64()).collect();
    hits.sort_unstable();
    let _ = writeln!(out, "\n6. Final state: alert hit counts {hits:?}; ConnectWise holds {} tickets.", after.len());
    outcome.check(out, "hit counts are 5 (forwarding) and 1 (elevation)", hits == [1, 5]);
    let mut references: Vec<&str> = after.iter().filter_map(|t| t.body["externalXRef"].as_str()).collect();
    references.sort_unstable();
    references.dedup();
    outcome.check(out, "every ticket carries a distinct alert reference", references.len() == after.len());
    let _ = writeln!(
        out,
        "\n7. The MSP onboards a second customer, Fabrikam: ConnectWise company {FABRIKAM_COMPANY_ID}, and its security alerts also go to Autotask."
    );
    stack.m365.add_tenant(FABRIKAM, APP_ID, APP_SECRET);
    api.send(
        reqwest::Method::POST,
        "/v1/tenants",
        Some(json!({"tenant_id": FABRIKAM, "name": "Fabrikam Inc", "domains": ["fabrikam.com"]})),
    )
    .await?;
    api.send(
        reqwest::Method::PUT,
        &format!("/v1/tenants/{FABRIKAM}/m365-credentials"),
        Some(json!({"client_id": APP_ID, "client_secret": APP_SECRET})),
    )
    .await?;
    api.send(
        reqwest::Method::PUT,
        &format!("/v1/tenants/{FABRIKAM}/destinations/connectwise/company"),
        Some(json!({"company": FABRIKAM_COMPANY_ID.to_string()})),
    )
    .await?;
    crate::demo_psa::add_autotask_for_fabrikam(stack, out, &api).await?;
    let mut fabrikam_rule = forwarding_record("f0a1c1e2-0002-4000-8000-000000000001", at(70), "exfil@mail-collector.example");
    fabrikam_rule["OrganizationId"] = json!(FABRIKAM);
    fabrikam_rule["UserId"] = json!("carol@fabrikam.com");
    stack.m365.add_records(FABRIKAM, "Audit.Exchange", vec![fabrikam_rule]);
    settle(stack, out, &mut seen).await?;
    let fabrikam_tickets: Vec<_> =
        stack.connectwise.tickets().into_iter().filter(|t| t.body["company"]["id"] == FABRIKAM_COMPANY_ID).collect();
    for ticket in &fabrikam_tickets {
        let _ = writeln!(
            out,
            "   ConnectWise ticket #{} for company {}: \"{}\"",
            ticket.id,
            FABRIKAM_COMPANY_ID,
            ticket.body["summary"].as_str().unwrap_or("?")
        );
    }
    outcome.check(out, "Fabrikam's alert became one ticket under its own company", fabrikam_tickets.len() == 1);
    crate::demo_psa::narrate_autotask(stack, out);
    outcome.check(
        out,
        "and one Autotask ticket in the Security Operations queue (Contoso's alerts stay out of Autotask)",
        crate::demo_psa::autotask_tickets_of(stack, "Mail forwarding").len() == 1 && stack.autotask.tickets().len() == 1,
    );

    let _ = writeln!(out, "\n8. A Fabrikam admin removes Vigil's app (consent revoked); Vigil loses sight of the tenant.");
    stack.m365.revoke_consent(FABRIKAM);
    stack.m365.expire_tokens();
    settle(stack, out, &mut seen).await?;
    let problem = connection_tickets(&stack.connectwise.tickets());
    for ticket in &problem {
        let _ = writeln!(out, "   ConnectWise ticket #{}: \"{}\"", ticket.id, ticket.body["summary"].as_str().unwrap_or("?"));
    }
    let description = problem.first().and_then(|t| t.body["initialDescription"].as_str()).unwrap_or_default().to_owned();
    outcome.check(
        out,
        "one connection-problem ticket for Fabrikam, with the error, the organisation and the UTC time",
        problem.len() == 1
            && problem[0].body["company"]["id"] == FABRIKAM_COMPANY_ID
            && description.contains("AADSTS700016")
            && description.contains("Fabrikam Inc")
            && description.contains("Time (UTC)"),
    );
    outcome.check(
        out,
        "the connection problem is also an Autotask ticket",
        crate::demo_psa::autotask_tickets_of(stack, "Tenant connection problem").len() == 1,
    );
    settle(stack, out, &mut seen).await?;
    outcome.check(out, "polling on while it is broken adds no second ticket", connection_tickets(&stack.connectwise.tickets()).len() == 1);

    let _ = writeln!(out, "\n9. Consent is granted again; the next poll succeeds and the alert resolves itself.");
    stack.m365.restore_consent(FABRIKAM);
    settle(stack, out, &mut seen).await?;
    let resolved = connection_tickets(&stack.connectwise.tickets());
    for note in resolved.iter().flat_map(|t| t.notes.iter()) {
        let _ = writeln!(out, "   note: {}", note["text"].as_str().unwrap_or("?").lines().next().unwrap_or_default());
    }
    outcome.check(
        out,
        "the connection-problem ticket got a 'resolved' note and Vigil closed it",
        resolved.len() == 1
            && resolved[0].notes.iter().any(|n| n["text"].as_str().unwrap_or_default().contains("resolved"))
            && resolved[0].body["closedFlag"] == true,
    );
    let autotask_problem = crate::demo_psa::autotask_tickets_of(stack, "Tenant connection problem");
    outcome.check(
        out,
        "and closed its Autotask ticket (status Complete)",
        autotask_problem.len() == 1 && autotask_problem[0].item["status"] == crate::demo_psa::AUTOTASK_COMPLETE,
    );

    let _ = writeln!(out, "\n10. Someone guesses dave's password: 9 failed sign-ins, then 3 more, within ten minutes.");
    let before = stack.connectwise.tickets().len();
    let guesses: Vec<Value> =
        (1..=12).map(|i| failed_sign_in(&format!("d0a1c1e2-0003-4000-8000-{i:012}"), at(100 + i * 20), "dave@contoso.com")).collect();
    stack.m365.add_records(CONTOSO, "Audit.AzureActiveDirectory", guesses[..9].to_vec());
    settle(stack, out, &mut seen).await?;
    let brute = |alerts: &Value| -> Vec<Value> {
        alerts["alerts"].as_array().into_iter().flatten().filter(|a| a["policy_id"] == "builtin.brute-force").cloned().collect()
    };
    let after_nine = brute(&api.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.brute-force", None).await?);
    outcome.check(out, "9 failures stay below the threshold of 10: no alert", after_nine.is_empty());
    stack.m365.add_records(CONTOSO, "Audit.AzureActiveDirectory", guesses[9..].to_vec());
    settle(stack, out, &mut seen).await?;
    let fired = brute(&api.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.brute-force", None).await?);
    for alert in &fired {
        let trigger = alert["facts"].as_array().into_iter().flatten().find(|f| f["name"] == "Trigger").and_then(|f| f["value"].as_str());
        let _ = writeln!(
            out,
            "   alert \"{}\" for {} hits {} ({})",
            alert["policy_name"].as_str().unwrap_or("?"),
            alert["group_key"].as_str().unwrap_or("?"),
            alert["hit_count"],
            trigger.unwrap_or("?")
        );
    }
    let new_tickets = stack.connectwise.tickets().len() - before;
    outcome.check(
        out,
        "the 10th failure fires the threshold: one alert holding all 12 failures, one new ticket",
        fired.len() == 1 && fired[0]["hit_count"] == 12 && new_tickets == 1,
    );

    let _ = writeln!(
        out,
        "\n11. Contoso's archiving service account forwards mail to its vendor on purpose; the MSP suppresses that for 30 days."
    );
    let rule = json!({"tenant_id": CONTOSO, "user": "svc-archive@contoso.com", "policy_id": "builtin.external-forwarding",
                      "expires_at": Utc::now() + Duration::days(30), "reason": "archiving vendor, approved by Contoso's IT manager"});
    let created = api.send(reqwest::Method::POST, "/v1/suppressions", Some(rule)).await?;
    let _ = writeln!(
        out,
        "   POST /v1/suppressions                             → {} (expires {})",
        created["id"].as_str().unwrap_or("?"),
        created["expires_at"].as_str().unwrap_or("?")
    );
    let before = stack.connectwise.tickets().len();
    let mut archive = forwarding_record("d0a1c1e2-0004-4000-8000-000000000001", at(400), "journal@archive-vendor.example");
    archive["UserId"] = json!("svc-archive@contoso.com");
    stack.m365.add_records(CONTOSO, "Audit.Exchange", vec![archive]);
    settle(stack, out, &mut seen).await?;
    let alerts = api.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.external-forwarding", None).await?;
    let archive_alerts = alerts["alerts"].as_array().into_iter().flatten().filter(|a| a["group_key"] == "svc-archive@contoso.com").count();
    outcome.check(
        out,
        "the archive account's forwarding matched but was suppressed: no alert, no ticket",
        archive_alerts == 0 && stack.connectwise.tickets().len() == before,
    );

    let _ = writeln!(out, "\n12. The MSP lifts the suppression; the archive account's next change raises the alert again.");
    let id = created["id"].as_str().unwrap_or_default();
    api.send(reqwest::Method::DELETE, &format!("/v1/suppressions/{id}"), None).await?;
    let _ = writeln!(out, "   DELETE /v1/suppressions/{id}");
    let mut again = forwarding_record("d0a1c1e2-0004-4000-8000-000000000002", at(410), "journal@archive-vendor.example");
    again["UserId"] = json!("svc-archive@contoso.com");
    stack.m365.add_records(CONTOSO, "Audit.Exchange", vec![again]);
    settle(stack, out, &mut seen).await?;
    let alerts = api.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.external-forwarding", None).await?;
    let archive: Vec<&Value> =
        alerts["alerts"].as_array().into_iter().flatten().filter(|a| a["group_key"] == "svc-archive@contoso.com").collect();
    outcome.check(
        out,
        "one alert with one hit (the suppressed record was held back, not counted later) and one new ticket",
        archive.len() == 1 && archive[0]["hit_count"] == 1 && stack.connectwise.tickets().len() == before + 1,
    );

    crate::demo_psa::technician_closes_then_refire(stack, out, &mut outcome, &api, &mut seen, window_start).await?;
    crate::demo_threats::defender_threats(stack, out, &mut outcome, &api, &mut seen).await?;
    rival_msp_claims_contoso(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_roles::analyst_limited_to_threat_management(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_relationships::partner_tenant_report_and_removal(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_channels::chat_and_webhook_channels(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_halo_tigerpaw::halopsa_and_tigerpaw(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_licences::licence_grace_period_and_renewal(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_billing::count_and_bill(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_onboarding::consent_link_and_bulk_onboarding(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_self_monitoring::webhook_disabled_and_renewed(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_offboarding::offboard_fabrikam(stack, out, &mut outcome, &api, &mut seen).await?;
    crate::demo_ticket_links::alert_tickets_with_links(out, &mut outcome, &api).await?;
    crate::demo_tenant_queue::tenant_queue_by_key(stack, out, &mut outcome, &api).await?;

    let mut dead = 0;
    for queue in ["PollJobsDeadLetterQueue", "EventsDeadLetterQueue", "TicketsDeadLetterQueue"] {
        dead += stack.peek(queue).await.map_err(|e| fail(e.to_string()))?.len();
    }
    outcome.check(out, "dead-letter queues are empty", dead == 0);
    Ok(outcome)
}

/// Step 16: another MSP names Contoso's tenant with Contoso's (public) app id and a guessed
/// secret, and first tries to point its PSA at the cloud metadata address. It sees nothing.
async fn rival_msp_claims_contoso(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    demo_msp: &Api,
    seen: &mut PollReport,
) -> Result<(), DemoError> {
    let _ = writeln!(
        out,
        "\n16. A rival MSP registers Contoso's tenant id with Contoso's app id (public: it is in every consent link) and a guessed secret."
    );
    let token = stack.create_msp("rival-msp", "Rival MSP").await.map_err(|e| fail(e.to_string()))?;
    let rival = Api { http: reqwest::Client::new(), base: stack.api_url.clone(), token: token.expose().to_owned() };
    rival.send(reqwest::Method::POST, "/v1/tenants", Some(json!({"tenant_id": CONTOSO, "name": "Contoso (claimed)"}))).await?;
    let credentials = json!({"client_id": APP_ID, "client_secret": "guessed-secret"});
    rival.send(reqwest::Method::PUT, &format!("/v1/tenants/{CONTOSO}/m365-credentials"), Some(credentials)).await?;
    let cw = stack.connectwise.credentials();
    let destination = |api_root: &str| {
        json!({"name": "Rival PSA", "settings": {"kind": "connectwise", "api_root": api_root},
               "credentials": {"kind": "connectwise", "company_id": cw.company_id, "public_key": cw.public_key, "private_key": cw.private_key, "client_id": cw.client_id}})
    };
    let metadata = destination("https://169.254.169.254/latest/meta-data/apis/3.0");
    let refused = rival.send(reqwest::Method::PUT, "/v1/destinations/psa", Some(metadata)).await.err().map(|e| e.0).unwrap_or_default();
    let detail = refused.find('{').and_then(|i| serde_json::from_str::<Value>(&refused[i..]).ok()).map(|p| p["detail"].clone());
    let _ = writeln!(out, "   PUT /v1/destinations/psa at 169.254.169.254 → {}", detail.unwrap_or(Value::Null));
    outcome.check(out, "a PSA address on the cloud metadata service is refused (422)", refused.contains("422"));
    rival.send(reqwest::Method::PUT, "/v1/destinations/psa", Some(destination(&stack.connectwise.api_root()))).await?;
    rival.send(reqwest::Method::PUT, &format!("/v1/tenants/{CONTOSO}/destinations/psa/company"), Some(json!({"company": "299"}))).await?;

    let before = demo_msp.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.external-forwarding&limit=100", None).await?;
    let hits_of = |alerts: &Value| alerts["alerts"].as_array().into_iter().flatten().filter_map(|a| a["hit_count"].as_u64()).sum::<u64>();
    let at = Utc::now().duration_trunc(Duration::minutes(15)).unwrap_or_else(|_| Utc::now());
    stack.m365.add_records(
        CONTOSO,
        "Audit.Exchange",
        vec![forwarding_record("d0a1c1e2-0005-4000-8000-000000000001", at, "drop@mail-collector.example")],
    );
    settle(stack, out, seen).await?;

    let rival_alerts = rival.send(reqwest::Method::GET, "/v1/alerts", None).await?;
    let names: Vec<&str> = rival_alerts["alerts"].as_array().into_iter().flatten().filter_map(|a| a["policy_name"].as_str()).collect();
    let _ = writeln!(out, "   the rival's alerts: {names:?}");
    outcome.check(
        out,
        "the rival sees none of Contoso's activity, only that it cannot connect (its own token request was refused)",
        !names.is_empty() && names.iter().all(|n| *n == "Tenant connection problem"),
    );
    let after = demo_msp.send(reqwest::Method::GET, "/v1/alerts?policy=builtin.external-forwarding&limit=100", None).await?;
    outcome.check(out, "the MSP that holds Contoso's consent still got the new record", hits_of(&after) == hits_of(&before) + 1);
    Ok(())
}
