//! Alert policies and the engine that evaluates audit records against them.
//!
//! A policy names an activity (record types and operations), the conditions under which it is
//! an alert, its category and severity, and how matches are aggregated (group key + window).
//! This first slice ships two built-ins modelled on Microsoft 365's default alert policies:
//! "Creation of forwarding/redirect rule" and "Elevation of Exchange admin privilege".

use crate::alert::{AggregationWindow, Alert, AlertStatus, Category, Fact, Severity};
use crate::audit::AuditRecord;
use crate::ids::{AlertId, MspId, PolicyId, RecordId, TenantId};
use chrono::{DateTime, Utc};

/// What a policy found in one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMatch {
    /// Matches with the same key (in the same window) join one alert.
    pub group_key: String,
    /// One line about this match.
    pub title: String,
    /// Facts for the ticket.
    pub facts: Vec<Fact>,
    /// The record says the condition cleared: resolve the alert instead of adding a hit.
    pub resolves: bool,
}

/// A built-in policy's condition: a pure function of the record.
pub type Matcher = fn(&AuditRecord) -> Option<PolicyMatch>;

/// An alert policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: PolicyId,
    pub name: &'static str,
    pub description: &'static str,
    pub category: Category,
    pub severity: Severity,
    pub aggregation: AggregationWindow,
    matcher: Matcher,
}

impl Policy {
    /// Evaluates one record.
    #[must_use]
    pub fn evaluate(&self, record: &AuditRecord) -> Option<PolicyMatch> {
        (self.matcher)(record)
    }
}

/// The tenant an evaluation runs for.
#[derive(Debug, Clone)]
pub struct TenantScope<'a> {
    pub msp_id: &'a MspId,
    pub tenant_id: &'a TenantId,
    pub tenant_name: &'a str,
}

/// One record matched one policy: the alert it belongs to, as it would be created.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertHit {
    pub alert: Alert,
    pub record_id: RecordId,
    pub event_time: DateTime<Utc>,
    /// The record resolves the alert rather than adding a hit to it.
    pub resolves: bool,
}

/// Evaluates records against a set of policies.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    policies: Vec<Policy>,
}

impl PolicyEngine {
    /// An engine over the given policies.
    #[must_use]
    pub fn new(policies: Vec<Policy>) -> Self {
        Self { policies }
    }

    /// An engine over Vigil's built-in policies.
    #[must_use]
    pub fn with_builtins() -> Self {
        Self::new(builtin_policies())
    }

    /// The policies, in evaluation order.
    #[must_use]
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Every alert hit of one record.
    #[must_use]
    pub fn evaluate(&self, scope: &TenantScope<'_>, record: &AuditRecord, now: DateTime<Utc>) -> Vec<AlertHit> {
        self.policies
            .iter()
            .filter_map(|policy| {
                let found = policy.evaluate(record)?;
                let (window_start, window_end) = policy.aggregation.containing(record.creation_time);
                let id = AlertId::derive(&[
                    scope.msp_id.as_str(),
                    scope.tenant_id.as_str(),
                    policy.id.as_str(),
                    &found.group_key,
                    &window_start.timestamp().to_string(),
                ]);
                let resolves = found.resolves;
                let alert = Alert {
                    id,
                    msp_id: scope.msp_id.clone(),
                    tenant_id: scope.tenant_id.clone(),
                    tenant_name: scope.tenant_name.to_owned(),
                    policy_id: policy.id.clone(),
                    policy_name: policy.name.to_owned(),
                    category: policy.category,
                    severity: policy.severity,
                    group_key: found.group_key,
                    title: found.title,
                    window_start,
                    window_end,
                    status: AlertStatus::New,
                    hit_count: 0,
                    first_seen: record.creation_time,
                    last_seen: record.creation_time,
                    facts: found.facts,
                    created_at: now,
                    updated_at: now,
                    resolved_at: None,
                    version: 0,
                };
                Some(AlertHit { alert, record_id: record.id.clone(), event_time: record.creation_time, resolves })
            })
            .collect()
    }
}

fn builtin(id: &str) -> PolicyId {
    PolicyId::parse(id).unwrap_or_else(|_| unreachable!("built-in policy ids are valid"))
}

/// Vigil's built-in policies.
#[must_use]
pub fn builtin_policies() -> Vec<Policy> {
    vec![
        Policy {
            id: builtin("builtin.forwarding-rule"),
            name: "Creation of forwarding/redirect rule",
            description: "A user created or changed an inbox rule that forwards or redirects mail, or set mailbox forwarding (New-InboxRule / Set-InboxRule with ForwardTo, ForwardAsAttachmentTo or RedirectTo; Set-Mailbox with ForwardingSmtpAddress).",
            category: Category::ThreatManagement,
            severity: Severity::Informational,
            aggregation: AggregationWindow::minutes(15),
            matcher: forwarding_rule,
        },
        Policy {
            id: builtin("builtin.exchange-admin-elevation"),
            name: "Elevation of Exchange admin privilege",
            description: "Someone was added to the Organization Management role group in Exchange Online (Add-RoleGroupMember).",
            category: Category::Permissions,
            severity: Severity::Low,
            aggregation: AggregationWindow::minutes(15),
            matcher: exchange_admin_elevation,
        },
        Policy {
            id: builtin("builtin.tenant-connection-problem"),
            name: "Tenant connection problem",
            description: "Vigil cannot read a tenant's audit data: consent revoked or app disabled (AADSTS errors), auditing disabled, subscription disabled, or repeated failures. Resolves itself when polling succeeds again.",
            category: Category::Others,
            severity: Severity::Medium,
            aggregation: AggregationWindow::minutes(15),
            matcher: tenant_connection_problem,
        },
    ]
}

/// Vigil's own connection events (see `services::poll`): RecordType 0 and Workload `Vigil`,
/// which Microsoft never emits.
fn tenant_connection_problem(record: &AuditRecord) -> Option<PolicyMatch> {
    use crate::services::poll::{CONNECTION_PROBLEM, CONNECTION_RESTORED};
    if record.record_type != 0 || record.workload != "Vigil" {
        return None;
    }
    let resolves = match record.operation.as_str() {
        CONNECTION_PROBLEM => false,
        CONNECTION_RESTORED => true,
        _ => return None,
    };
    let text = |key: &str| record.field_str(key).unwrap_or_default().to_owned();
    let stream = text("Stream");
    let organisation = text("OrganizationName");
    let mut facts = vec![
        Fact::new(
            "Time (UTC)",
            record
                .field_str("ObservedAt")
                .and_then(crate::audit::parse_creation_time)
                .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        ),
        Fact::new("Organization", organisation.clone()),
        Fact::new("Organization id", text("OrganizationId")),
        Fact::new("Audit source", stream.clone()),
        Fact::new("Error", text("ErrorMessage")),
    ];
    if let Some(failures) = record.raw.get("ConsecutiveFailures").and_then(crate::audit::int_or_string) {
        facts.push(Fact::new("Consecutive failures", failures.to_string()));
    }
    // One alert per tenant and episode, not per stream: revoked consent breaks every stream
    // at once, and an MSP wants one ticket for it. Each failing stream is a hit.
    Some(PolicyMatch {
        group_key: "tenant-connection".to_owned(),
        title: format!("Vigil lost its connection to {organisation}"),
        facts,
        resolves,
    })
}

/// A Microsoft Graph security alert (`alerts_v2`) passed through as a Vigil alert with its own
/// title and severity. All updates of one Graph alert join one Vigil alert (windowed by its
/// creation time); each update is a hit.
#[must_use]
pub fn graph_alert_hit(scope: &TenantScope<'_>, alert: &serde_json::Value, now: DateTime<Utc>) -> Option<AlertHit> {
    let text = |key: &str| alert.get(key).and_then(serde_json::Value::as_str);
    let id = text("id")?;
    let updated = text("lastUpdateDateTime").and_then(crate::audit::parse_creation_time)?;
    let created = text("createdDateTime").and_then(crate::audit::parse_creation_time).unwrap_or(updated);
    let severity = match text("severity").unwrap_or_default().to_ascii_lowercase().as_str() {
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        _ => Severity::Informational,
    };
    let policy = builtin("builtin.defender-alert");
    let window = AggregationWindow::minutes(15).containing(created);
    let title = text("title").unwrap_or("Microsoft 365 Defender alert").to_owned();
    let mut facts = vec![Fact::new("Microsoft alert id", id), Fact::new("Severity (Microsoft)", text("severity").unwrap_or("unknown"))];
    for (name, key) in [
        ("Status", "status"),
        ("Category", "category"),
        ("Service", "serviceSource"),
        ("Detection source", "detectionSource"),
        ("Link", "alertWebUrl"),
    ] {
        if let Some(value) = text(key) {
            facts.push(Fact::new(name, value));
        }
    }
    facts.push(Fact::new("Created (UTC)", created.format("%Y-%m-%d %H:%M:%S").to_string()));
    let record_id = RecordId::parse(&format!("graph:{id}:{}", text("lastUpdateDateTime")?)).ok()?;
    let alert_id = AlertId::derive(&[
        scope.msp_id.as_str(),
        scope.tenant_id.as_str(),
        policy.as_str(),
        &id.to_lowercase(),
        &window.0.timestamp().to_string(),
    ]);
    Some(AlertHit {
        alert: Alert {
            id: alert_id,
            msp_id: scope.msp_id.clone(),
            tenant_id: scope.tenant_id.clone(),
            tenant_name: scope.tenant_name.to_owned(),
            policy_id: policy,
            policy_name: "Microsoft 365 Defender alert".to_owned(),
            category: Category::ThreatManagement,
            severity,
            group_key: id.to_lowercase(),
            title,
            window_start: window.0,
            window_end: window.1,
            status: AlertStatus::New,
            hit_count: 0,
            first_seen: updated,
            last_seen: updated,
            facts,
            created_at: now,
            updated_at: now,
            resolved_at: None,
            version: 0,
        },
        record_id,
        event_time: updated,
        resolves: false,
    })
}

fn actor(record: &AuditRecord) -> String {
    if record.user_id.is_empty() { "unknown user".to_owned() } else { record.user_id.clone() }
}

fn common_facts(record: &AuditRecord) -> Vec<Fact> {
    let mut facts = vec![
        Fact::new("User", actor(record)),
        Fact::new("Operation", record.operation.clone()),
        Fact::new("Time (UTC)", record.creation_time.format("%Y-%m-%d %H:%M:%S").to_string()),
    ];
    if let Some(ip) = record.client_ip() {
        facts.push(Fact::new("Client IP", ip));
    }
    facts.push(Fact::new("Record id", record.id.as_str()));
    facts
}

const FORWARDING_PARAMETERS: [&str; 3] = ["ForwardTo", "ForwardAsAttachmentTo", "RedirectTo"];

fn forwarding_rule(record: &AuditRecord) -> Option<PolicyMatch> {
    if record.record_type != 1 || record.failed() {
        return None;
    }
    let operation = record.operation.as_str();
    let targets: Vec<(String, String)> =
        if operation.eq_ignore_ascii_case("New-InboxRule") || operation.eq_ignore_ascii_case("Set-InboxRule") {
            record
                .parameters()
                .into_iter()
                .filter(|(name, value)| FORWARDING_PARAMETERS.iter().any(|p| p.eq_ignore_ascii_case(name)) && !value.trim().is_empty())
                .collect()
        } else if operation.eq_ignore_ascii_case("Set-Mailbox") {
            record
                .parameter("ForwardingSmtpAddress")
                .filter(|value| !value.trim().is_empty())
                .map(|value| vec![("ForwardingSmtpAddress".to_owned(), value)])
                .unwrap_or_default()
        } else {
            return None;
        };
    if targets.is_empty() {
        return None;
    }
    let mut facts = common_facts(record);
    if let Some(rule) = record.parameter("Name") {
        facts.insert(2, Fact::new("Rule name", rule));
    }
    if let Some(identity) = record.parameter("Identity").or_else(|| record.field_str("ObjectId").map(str::to_owned)) {
        facts.insert(2, Fact::new("Mailbox", identity));
    }
    for (name, value) in &targets {
        facts.insert(2, Fact::new(name.clone(), value.clone()));
    }
    let destination = targets.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", ");
    Some(PolicyMatch {
        group_key: actor(record).to_lowercase(),
        title: format!("Mail forwarding to {destination} set up by {}", actor(record)),
        facts,
        resolves: false,
    })
}

const ORGANIZATION_MANAGEMENT: &str = "Organization Management";

fn exchange_admin_elevation(record: &AuditRecord) -> Option<PolicyMatch> {
    if record.record_type != 1 || record.failed() || !record.operation.eq_ignore_ascii_case("Add-RoleGroupMember") {
        return None;
    }
    let group = record.parameter("Identity").or_else(|| record.field_str("ObjectId").map(str::to_owned))?;
    // The identity may be the bare name or a path ending in it.
    let is_org_management = group.rsplit(['\\', '/']).next().is_some_and(|name| name.trim().eq_ignore_ascii_case(ORGANIZATION_MANAGEMENT));
    if !is_org_management {
        return None;
    }
    let member = record.parameter("Member").unwrap_or_else(|| "unknown member".to_owned());
    let mut facts = common_facts(record);
    facts.insert(2, Fact::new("Role group", group));
    facts.insert(2, Fact::new("Member added", member.clone()));
    Some(PolicyMatch {
        group_key: actor(record).to_lowercase(),
        title: format!("{member} added to Organization Management by {}", actor(record)),
        facts,
        resolves: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn exchange_record(operation: &str, parameters: Value) -> AuditRecord {
        AuditRecord::from_value(json!({
            "CreationTime": "2026-01-05T09:41:27", "Id": "8d3c1f0a-5b62-4e8c-9a1d-3f7e2b6c4d10",
            "Operation": operation, "OrganizationId": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11",
            "RecordType": 1, "ResultStatus": "True", "UserKey": "10032001A2B3C4D5", "UserType": 2,
            "Workload": "Exchange", "ClientIP": "203.0.113.7:51544", "UserId": "Alice@contoso.com",
            "ObjectId": "contoso.onmicrosoft.com\\alice\\Rule", "Parameters": parameters
        }))
        .unwrap()
    }

    fn matches(policy_id: &str, record: &AuditRecord) -> bool {
        builtin_policies().iter().find(|p| p.id.as_str() == policy_id).unwrap().evaluate(record).is_some()
    }

    #[test]
    fn forwarding_rule_policy_cases() {
        let cases: Vec<(&str, &str, Value, bool)> = vec![
            ("new rule forwarding", "New-InboxRule", json!([{"Name": "ForwardTo", "Value": "x@evil.example"}]), true),
            (
                "new rule forwarding as attachment",
                "New-InboxRule",
                json!([{"Name": "ForwardAsAttachmentTo", "Value": "x@evil.example"}]),
                true,
            ),
            ("changed rule redirecting", "Set-InboxRule", json!([{"Name": "RedirectTo", "Value": "x@evil.example"}]), true),
            ("cmdlet-line parameters", "Set-InboxRule", json!("-Identity \"r\" -RedirectTo \"x@evil.example\""), true),
            ("mailbox forwarding", "Set-Mailbox", json!([{"Name": "ForwardingSmtpAddress", "Value": "smtp:x@evil.example"}]), true),
            ("rule that only moves mail", "New-InboxRule", json!([{"Name": "MoveToFolder", "Value": "Archive"}]), false),
            ("forwarding cleared", "Set-InboxRule", json!([{"Name": "ForwardTo", "Value": ""}]), false),
            ("mailbox forwarding cleared", "Set-Mailbox", json!([{"Name": "ForwardingSmtpAddress", "Value": ""}]), false),
            ("unrelated cmdlet", "Set-MailboxFolderPermission", json!([{"Name": "ForwardTo", "Value": "x"}]), false),
        ];
        for (name, operation, parameters, expected) in cases {
            assert_eq!(matches("builtin.forwarding-rule", &exchange_record(operation, parameters)), expected, "{name}");
        }
    }

    #[test]
    fn failed_cmdlets_do_not_alert() {
        let mut value = exchange_record("New-InboxRule", json!([{"Name": "ForwardTo", "Value": "x@evil.example"}])).raw;
        value.insert("ResultStatus".into(), json!("False"));
        let record = AuditRecord::from_value(Value::Object(value)).unwrap();
        assert!(!matches("builtin.forwarding-rule", &record));
    }

    #[test]
    fn exchange_admin_elevation_policy_cases() {
        let cases: Vec<(&str, Value, bool)> = vec![
            (
                "into organization management",
                json!([{"Name": "Identity", "Value": "Organization Management"}, {"Name": "Member", "Value": "mallory"}]),
                true,
            ),
            (
                "identity given as a path",
                json!([{"Name": "Identity", "Value": "contoso.onmicrosoft.com\\Organization Management"}, {"Name": "Member", "Value": "m"}]),
                true,
            ),
            ("case differs", json!([{"Name": "Identity", "Value": "organization management"}]), true),
            ("another role group", json!([{"Name": "Identity", "Value": "Help Desk"}, {"Name": "Member", "Value": "m"}]), false),
        ];
        for (name, parameters, expected) in cases {
            assert_eq!(
                matches("builtin.exchange-admin-elevation", &exchange_record("Add-RoleGroupMember", parameters)),
                expected,
                "{name}"
            );
        }
        let removal = exchange_record("Remove-RoleGroupMember", json!([{"Name": "Identity", "Value": "Organization Management"}]));
        assert!(!matches("builtin.exchange-admin-elevation", &removal));
    }

    #[test]
    fn hits_in_one_window_share_an_alert_id_and_the_next_window_does_not() {
        let engine = PolicyEngine::with_builtins();
        let msp = MspId::parse("acme").unwrap();
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let scope = TenantScope { msp_id: &msp, tenant_id: &tenant, tenant_name: "Contoso" };
        let record_at = |time: &str| {
            let mut raw = exchange_record("New-InboxRule", json!([{"Name": "ForwardTo", "Value": "x@evil.example"}])).raw;
            raw.insert("CreationTime".into(), json!(time));
            AuditRecord::from_value(Value::Object(raw)).unwrap()
        };
        let now = Utc::now();
        let first = engine.evaluate(&scope, &record_at("2026-01-05T09:31:00"), now);
        let same_window = engine.evaluate(&scope, &record_at("2026-01-05T09:44:59"), now);
        let next_window = engine.evaluate(&scope, &record_at("2026-01-05T09:45:00"), now);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].alert.id, same_window[0].alert.id);
        assert_ne!(first[0].alert.id, next_window[0].alert.id);
        assert_eq!(first[0].alert.group_key, "alice@contoso.com");
        assert!(first[0].alert.title.contains("x@evil.example"));
    }
}
