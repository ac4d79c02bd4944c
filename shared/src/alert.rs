//! Alerts: what a policy match becomes. An alert is identified deterministically by
//! (MSP, tenant, policy, group key, aggregation window), so every retry of an evaluation lands
//! on the same alert and later matches in the same window only raise its hit count.

use crate::ids::{AlertId, MspId, PolicyId, RecordId, TenantId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Alert severity, as in Microsoft 365 alert policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

impl Severity {
    /// The display name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "Informational",
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
        }
    }
}

/// Alert category, as in Microsoft 365 alert policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    DataLossPrevention,
    InformationGovernance,
    MailFlow,
    Permissions,
    ThreatManagement,
    Others,
}

impl Category {
    /// The display name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DataLossPrevention => "Data loss prevention",
            Self::InformationGovernance => "Information governance",
            Self::MailFlow => "Mail flow",
            Self::Permissions => "Permissions",
            Self::ThreatManagement => "Threat management",
            Self::Others => "Others",
        }
    }
}

/// Triage status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertStatus {
    New,
    InProgress,
    Resolved,
}

/// One named fact about an alert, shown in tickets and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

impl Fact {
    /// A fact from a name and a value.
    #[must_use]
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), value: value.into() }
    }
}

/// Fixed, epoch-aligned aggregation windows of one length (15 minutes by default).
/// Aligning to the epoch makes the window of an event a pure function of its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregationWindow {
    length_secs: i64,
}

impl AggregationWindow {
    /// A window of `minutes` minutes (at least one).
    #[must_use]
    pub fn minutes(minutes: i64) -> Self {
        Self { length_secs: minutes.max(1) * 60 }
    }

    /// The window length.
    #[must_use]
    pub fn length(self) -> Duration {
        Duration::seconds(self.length_secs)
    }

    /// The half-open window `[start, end)` that contains `at`.
    #[must_use]
    pub fn containing(self, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let secs = at.timestamp();
        let start_secs = secs.div_euclid(self.length_secs) * self.length_secs;
        let start = Utc.timestamp_opt(start_secs, 0).single().unwrap_or(at);
        (start, start + self.length())
    }
}

/// An alert and its aggregated state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub policy_id: PolicyId,
    pub policy_name: String,
    pub category: Category,
    pub severity: Severity,
    /// What matches are grouped by (e.g. the acting user), lowercased.
    pub group_key: String,
    /// One line describing the first match, e.g. "Inbox rule forwarding mail created by alice@contoso.com".
    pub title: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub status: AlertStatus,
    /// How many distinct audit records matched.
    pub hit_count: u64,
    /// Event time of the earliest and latest matching record.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Facts of the first match.
    pub facts: Vec<Fact>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the condition cleared (the alert resolved itself), if it did.
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: u64,
    /// What the alert is made of: mode, activities, entities.
    #[serde(default)]
    pub detail: AlertDetail,
    /// Triage by the MSP's engineers.
    #[serde(default)]
    pub triage: Triage,
}

/// Whether a policy's alerts reach the PSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PolicyMode {
    /// Alerts are raised and dispatched.
    #[default]
    Active,
    /// Alerts are raised and visible, never dispatched: for trying a policy out.
    Shadow,
}

impl PolicyMode {
    /// The display name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Shadow => "Shadow",
        }
    }
}

/// How many activities an alert keeps in full; later ones are only counted.
pub const ACTIVITIES_KEPT: usize = 10;
/// How many values of each entity kind an alert keeps; later ones are only counted.
pub const ENTITIES_KEPT: usize = 25;

/// One matching event, as shown on the alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub record_id: RecordId,
    pub time: DateTime<Utc>,
    pub operation: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// One line about this event.
    pub summary: String,
}

/// The things an alert is about, each kind bounded to [`ENTITIES_KEPT`] values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mailboxes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Values left out because a kind was full.
    #[serde(default)]
    pub omitted: u64,
}

impl Entities {
    /// Adds every value of `other` not yet present (idempotent).
    pub fn merge(&mut self, other: &Entities) {
        let mut omitted = 0;
        for (mine, theirs) in [
            (&mut self.users, &other.users),
            (&mut self.ips, &other.ips),
            (&mut self.mailboxes, &other.mailboxes),
            (&mut self.files, &other.files),
            (&mut self.urls, &other.urls),
        ] {
            for value in theirs {
                if mine.iter().any(|m| m.eq_ignore_ascii_case(value)) {
                    continue;
                }
                if mine.len() < ENTITIES_KEPT {
                    mine.push(value.clone());
                } else {
                    omitted += 1;
                }
            }
        }
        self.omitted = self.omitted.max(omitted);
    }
}

/// The makeup of an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDetail {
    #[serde(default)]
    pub mode: PolicyMode,
    /// The policy's description, for the ticket.
    #[serde(default)]
    pub description: String,
    /// The first [`ACTIVITIES_KEPT`] matching events in full.
    #[serde(default)]
    pub activities: Vec<ActivityEntry>,
    /// Every counted event by operation.
    #[serde(default)]
    pub activity_counts: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub entities: Entities,
    /// The policy's daily ticket limit per tenant, applied by dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u32>,
}

/// What one matching record brings to its alert beyond being counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitDetail {
    pub activity: ActivityEntry,
    pub entities: Entities,
}

/// An engineer's verdict on an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Classification {
    TruePositive,
    BenignPositive,
    FalsePositive,
}

/// A comment on an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub author: String,
    pub at: DateTime<Utc>,
    pub text: String,
}

/// One change to an alert's triage: who changed what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageChange {
    pub author: String,
    pub at: DateTime<Utc>,
    pub field: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// How many history entries and comments an alert keeps (the oldest go first).
pub const TRIAGE_KEPT: usize = 100;

/// Triage state of an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub classification: Option<Classification>,
    #[serde(default)]
    pub comments: Vec<Comment>,
    #[serde(default)]
    pub history: Vec<TriageChange>,
}

impl Alert {
    /// Marks the alert resolved (the condition cleared); `false` when it already was.
    pub fn resolve(&mut self, at: DateTime<Utc>) -> bool {
        if self.status == AlertStatus::Resolved {
            return false;
        }
        self.status = AlertStatus::Resolved;
        self.resolved_at = Some(at);
        self.updated_at = at;
        true
    }
}

/// Matching records for one alert, to be added to it exactly once each.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertHits {
    /// The alert as it would be created by these hits alone (hit count 0, version 0).
    pub alert: Alert,
    /// The matching records and their event times.
    pub records: Vec<(RecordId, DateTime<Utc>)>,
    /// What each record shows on the alert (activity, entities), where known.
    pub details: std::collections::HashMap<RecordId, HitDetail>,
}

impl AlertHits {
    /// Hits for `alert` with no records yet.
    #[must_use]
    pub fn new(alert: Alert) -> Self {
        Self { alert, records: Vec::new(), details: std::collections::HashMap::new() }
    }

    /// Hits of bare records (no details), as in tests and replays.
    #[must_use]
    pub fn of_records(alert: Alert, records: Vec<(RecordId, DateTime<Utc>)>) -> Self {
        Self { alert, records, details: std::collections::HashMap::new() }
    }
}

impl Alert {
    /// Adds records that were not counted before (with their details, where given); returns
    /// whether anything changed.
    pub fn absorb(
        &mut self,
        new_records: &[(RecordId, DateTime<Utc>)],
        details: &std::collections::HashMap<RecordId, HitDetail>,
        now: DateTime<Utc>,
    ) -> bool {
        if new_records.is_empty() {
            return false;
        }
        for (id, at) in new_records {
            if let Some(detail) = details.get(id) {
                *self.detail.activity_counts.entry(detail.activity.operation.clone()).or_default() += 1;
                let listed = self.detail.activities.iter().any(|a| a.record_id == *id);
                if !listed && self.detail.activities.len() < ACTIVITIES_KEPT {
                    self.detail.activities.push(detail.activity.clone());
                }
                self.detail.entities.merge(&detail.entities);
            }
            if self.hit_count == 0 || *at < self.first_seen {
                self.first_seen = *at;
            }
            if self.hit_count == 0 || *at > self.last_seen {
                self.last_seen = *at;
            }
            self.hit_count += 1;
        }
        self.updated_at = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn windows_are_aligned_and_half_open() {
        let window = AggregationWindow::minutes(15);
        assert_eq!(window.containing(at("2026-01-05T09:41:27Z")), (at("2026-01-05T09:30:00Z"), at("2026-01-05T09:45:00Z")));
        assert_eq!(
            window.containing(at("2026-01-05T09:45:00Z")).0,
            at("2026-01-05T09:45:00Z"),
            "an event at the end belongs to the next window"
        );
        assert_eq!(window.containing(at("2026-01-05T09:44:59Z")).0, at("2026-01-05T09:30:00Z"));
    }

    #[test]
    fn one_minute_windows_are_possible() {
        let window = AggregationWindow::minutes(1);
        assert_eq!(window.containing(at("2026-01-05T09:41:27Z")).0, at("2026-01-05T09:41:00Z"));
    }

    #[test]
    fn absorbing_hits_tracks_count_and_first_and_last_seen_out_of_order() {
        let t0 = at("2026-01-05T09:40:00Z");
        let mut alert = crate::contract::sample_alert(t0);
        let id = |s: &str| RecordId::parse(s).unwrap();
        assert!(alert.absorb(&[(id("b"), at("2026-01-05T09:42:00Z")), (id("a"), at("2026-01-05T09:31:00Z"))], &Default::default(), t0));
        assert_eq!(alert.hit_count, 2);
        assert_eq!(alert.first_seen, at("2026-01-05T09:31:00Z"));
        assert_eq!(alert.last_seen, at("2026-01-05T09:42:00Z"));
        assert!(!alert.absorb(&[], &Default::default(), t0));
    }
}
