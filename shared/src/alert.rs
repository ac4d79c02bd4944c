//! Alerts: what a policy match becomes. An alert is identified deterministically by
//! (MSP, tenant, policy, group key, aggregation window), so every retry of an evaluation lands
//! on the same alert and later matches in the same window only raise its hit count.

use crate::ids::{AlertId, MspId, PolicyId, RecordId, TenantId};
use crate::limits::{TRIAGE_COMMENT_BYTES, TRIAGE_COMMENTS_KEPT, TRIAGE_HISTORY_KEPT};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Alert severity, as in Microsoft 365 alert policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertStatus {
    New,
    InProgress,
    Resolved,
}

/// One named fact about an alert, shown in tickets and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The policy's daily e-mail limit per tenant and e-mail destination, applied by dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_email_limit: Option<u32>,
    /// The destinations the policy chose (empty: every destination whose routing accepts it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<crate::ids::DestinationId>,
    /// The alert is about the MSP's own delegated access to the tenant (an admin-relationship
    /// finding): dispatch files it under the MSP's own company where a destination names one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub about_msp_access: bool,
    /// Whether texts were cut or entries left out to keep the alert within
    /// [`crate::limits::ALERT_BYTES`] (see [`Alert::fit_within`]); the counts stay exact.
    #[serde(default)]
    pub truncated: bool,
}

/// What one matching record brings to its alert beyond being counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitDetail {
    pub activity: ActivityEntry,
    pub entities: Entities,
}

/// An engineer's verdict on an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Classification {
    TruePositive,
    BenignPositive,
    FalsePositive,
}

/// A comment on an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comment {
    pub author: String,
    pub at: DateTime<Utc>,
    pub text: String,
}

/// One change to an alert's triage: who changed what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriageChange {
    pub author: String,
    pub at: DateTime<Utc>,
    pub field: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// Triage state of an alert. Comments and history are bounded (see [`Triage::bound`]); what
/// was dropped is counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Triage {
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub classification: Option<Classification>,
    /// The newest comments, oldest first.
    #[serde(default)]
    pub comments: Vec<Comment>,
    /// The newest changes, oldest first.
    #[serde(default)]
    pub history: Vec<TriageChange>,
    /// Older comments no longer kept.
    #[serde(default)]
    pub comments_dropped: u64,
    /// Older history entries no longer kept.
    #[serde(default)]
    pub history_dropped: u64,
}

impl Triage {
    /// Drops the oldest comments and history entries beyond what an alert keeps: at most
    /// [`TRIAGE_COMMENTS_KEPT`] comments whose texts together fit [`TRIAGE_COMMENT_BYTES`], and
    /// [`TRIAGE_HISTORY_KEPT`] history entries. Counts what it drops.
    pub fn bound(&mut self) {
        let mut total = 0;
        let kept = self
            .comments
            .iter()
            .rev()
            .take(TRIAGE_COMMENTS_KEPT)
            .take_while(|c| {
                total += c.text.len();
                total <= TRIAGE_COMMENT_BYTES
            })
            .count();
        let dropped = self.comments.len() - kept;
        self.comments.drain(..dropped);
        self.comments_dropped += dropped as u64;
        let dropped = self.history.len().saturating_sub(TRIAGE_HISTORY_KEPT);
        self.history.drain(..dropped);
        self.history_dropped += dropped as u64;
    }
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
        if self.status == AlertStatus::Resolved {
            // New activity after the alert was resolved (its condition cleared, or a technician
            // closed its ticket): the alert is open again, and its destinations open a new
            // ticket that names the closed one.
            self.status = AlertStatus::New;
            self.resolved_at = None;
            self.triage.history.push(TriageChange {
                author: "vigil".into(),
                at: now,
                field: "status".into(),
                from: Some("Resolved".into()),
                to: Some("New".into()),
            });
            self.triage.bound();
        }
        // Every store writes what `absorb` leaves, so no record's hit is lost to the item size.
        self.fit_within(crate::limits::ALERT_BYTES);
        true
    }

    /// The size of the alert's JSON form, in bytes.
    #[must_use]
    pub fn json_size(&self) -> usize {
        /// Counts what would be written, keeping none of it: sizing an alert on every write
        /// must not copy up to 300 KB of JSON each time.
        struct ByteCount(usize);
        impl std::io::Write for ByteCount {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0 += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = ByteCount(0);
        serde_json::to_writer(&mut count, self).map_or(usize::MAX, |()| count.0)
    }

    /// Shrinks the alert until its JSON form has at most `max_bytes` bytes, deterministically:
    /// long texts of the title, facts, activities, entities and activity counts are cut (each
    /// ending in [`CUT_MARKER`]) to ever shorter lengths; then the latest activities, the entity
    /// values, the facts beyond the first, and the oldest comments and history entries go.
    /// Identity, hit count, times and what was dropped stay; `detail.truncated` tells it
    /// happened. Returns whether anything was cut.
    pub fn fit_within(&mut self, max_bytes: usize) -> bool {
        if self.json_size() <= max_bytes {
            return false;
        }
        self.detail.truncated = true;
        for cap in [4096, 1024, 256, 64] {
            self.cut_texts(cap);
            if self.json_size() <= max_bytes {
                return true;
            }
        }
        // Then entries go, each estimated by its own size (one serialisation of the alert per
        // round, not per entry); a round repeats while the estimate fell short.
        loop {
            let mut size = self.json_size();
            if size <= max_bytes {
                return true;
            }
            let mut left_out = shed(&mut self.detail.activities, End::Last, 1, &mut size, max_bytes);
            if size > max_bytes {
                let entities = &mut self.detail.entities;
                for list in [&mut entities.users, &mut entities.ips, &mut entities.mailboxes, &mut entities.files, &mut entities.urls] {
                    size = size.saturating_sub(json_len(&*list));
                    left_out += list.len() as u64;
                    entities.omitted += list.len() as u64;
                    list.clear();
                }
            }
            left_out += shed(&mut self.facts, End::Last, 1, &mut size, max_bytes);
            let comments = shed(&mut self.triage.comments, End::First, 0, &mut size, max_bytes);
            self.triage.comments_dropped += comments;
            let history = shed(&mut self.triage.history, End::First, 0, &mut size, max_bytes);
            self.triage.history_dropped += history;
            if left_out + comments + history == 0 {
                // Nothing left to leave out: the alert is as small as it gets.
                return true;
            }
        }
    }

    /// Cuts every free text Vigil copied from records or policies to at most `cap` bytes.
    fn cut_texts(&mut self, cap: usize) {
        for text in [&mut self.title, &mut self.policy_name, &mut self.tenant_name, &mut self.detail.description] {
            cut(text, cap);
        }
        for fact in &mut self.facts {
            cut(&mut fact.name, cap);
            cut(&mut fact.value, cap);
        }
        for activity in &mut self.detail.activities {
            for text in [&mut activity.operation, &mut activity.user, &mut activity.summary] {
                cut(text, cap);
            }
            if let Some(ip) = &mut activity.client_ip {
                cut(ip, cap);
            }
        }
        let entities = &mut self.detail.entities;
        for list in [&mut entities.users, &mut entities.ips, &mut entities.mailboxes, &mut entities.files, &mut entities.urls] {
            list.iter_mut().for_each(|value| cut(value, cap));
        }
        if self.detail.activity_counts.keys().any(|k| k.len() > cap) {
            let counts = std::mem::take(&mut self.detail.activity_counts);
            for (mut operation, count) in counts {
                cut(&mut operation, cap);
                *self.detail.activity_counts.entry(operation).or_default() += count;
            }
        }
    }
}

/// Which end of a list entries leave from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    First,
    Last,
}

/// Removes entries from `end` of `list` (keeping `keep`) while `size` exceeds `max`, lowering
/// `size` by each entry's JSON size and its comma; returns how many went.
fn shed<T: Serialize>(list: &mut Vec<T>, end: End, keep: usize, size: &mut usize, max: usize) -> u64 {
    let mut count = 0;
    while list.len() - count > keep && *size > max {
        let index = if end == End::First { count } else { list.len() - 1 - count };
        *size = size.saturating_sub(json_len(&list[index]) + 1);
        count += 1;
    }
    match end {
        End::First => {
            list.drain(..count);
        }
        End::Last => list.truncate(list.len() - count),
    }
    count as u64
}

fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

/// Ends a text that was cut to fit.
pub const CUT_MARKER: &str = "… [truncated]";

/// Cuts `text` to at most `cap` bytes (at a character boundary), ending in [`CUT_MARKER`].
fn cut(text: &mut String, cap: usize) {
    if text.len() > cap {
        let keep = crate::limits::prefix(text, cap.saturating_sub(CUT_MARKER.len())).len();
        text.truncate(keep);
        text.push_str(CUT_MARKER);
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

    type Hits = (Vec<(RecordId, DateTime<Utc>)>, std::collections::HashMap<RecordId, HitDetail>);

    /// `count` records, each with a summary and a URL of about `bytes` bytes.
    fn big_hits(t0: DateTime<Utc>, count: u32, bytes: usize) -> Hits {
        let mut records = Vec::new();
        let mut details = std::collections::HashMap::new();
        for n in 0..count {
            let id = RecordId::parse(&format!("r{n}")).unwrap();
            let activity = ActivityEntry {
                record_id: id.clone(),
                time: t0,
                operation: "Set-InboxRule".into(),
                user: "alice@contoso.com".into(),
                client_ip: Some("203.0.113.7".into()),
                summary: format!("{n} {}", "€".repeat(bytes / 3)),
            };
            details.insert(
                id.clone(),
                HitDetail {
                    activity,
                    entities: Entities { urls: vec![format!("https://{n}.example/{}", "p".repeat(bytes))], ..Entities::default() },
                },
            );
            records.push((id, t0));
        }
        (records, details)
    }

    #[test]
    fn an_alert_within_its_budget_is_left_as_it_is() {
        let t0 = at("2026-01-05T09:40:00Z");
        let mut alert = crate::contract::sample_alert(t0);
        let (records, details) = big_hits(t0, 3, 100);
        alert.absorb(&records, &details, t0);
        let before = alert.clone();
        assert!(!alert.fit_within(crate::limits::ALERT_BYTES));
        assert_eq!(alert, before);
        assert!(!alert.detail.truncated);
    }

    #[test]
    fn an_alerts_size_is_the_length_of_its_json() {
        let alert = crate::contract::sample_alert(at("2026-01-05T09:40:00Z"));
        assert_eq!(alert.json_size(), serde_json::to_vec(&alert).unwrap().len());
    }

    #[test]
    fn an_alert_of_ten_100_kb_activities_is_cut_to_its_budget_with_every_hit_counted() {
        let t0 = at("2026-01-05T09:40:00Z");
        let mut alert = crate::contract::sample_alert(t0);
        let (records, details) = big_hits(t0, 10, 100_000);
        assert!(alert.absorb(&records, &details, t0));
        assert_eq!(alert.hit_count, 10);
        assert!(alert.detail.truncated);
        assert!(alert.json_size() <= crate::limits::ALERT_BYTES, "{} bytes", alert.json_size());
        assert_eq!(alert.detail.activities.len(), ACTIVITIES_KEPT, "cutting texts was enough");
        assert!(alert.detail.activities.iter().all(|a| a.summary.ends_with(CUT_MARKER) && a.summary.len() <= 4096));
        assert_eq!(alert.detail.activity_counts["Set-InboxRule"], 10);
        let mut again = alert.clone();
        assert!(!again.fit_within(crate::limits::ALERT_BYTES), "a fitted alert fits");
        let mut replay = crate::contract::sample_alert(t0);
        replay.absorb(&records, &details, t0);
        assert_eq!(replay, alert, "deterministic");
    }

    #[test]
    fn when_cutting_texts_is_not_enough_entries_go_until_the_alert_fits() {
        let t0 = at("2026-01-05T09:40:00Z");
        let mut alert = crate::contract::sample_alert(t0);
        alert.facts = (0..20_000).map(|n| Fact::new(format!("fact {n}"), "v".repeat(1000))).collect();
        alert.triage.comments =
            (0..100).map(|n| Comment { author: "dana".into(), at: t0, text: format!("{n} {}", "c".repeat(3990)) }).collect();
        assert!(alert.fit_within(crate::limits::ALERT_BYTES));
        assert!(alert.json_size() <= crate::limits::ALERT_BYTES, "{} bytes", alert.json_size());
        assert_eq!(alert.facts.len(), 1, "facts beyond the first go before the engineers' comments");
        assert_eq!(alert.facts[0].name, "fact 0");
        let kept = alert.triage.comments.len();
        assert!(kept > 50 && kept < 100, "{kept}");
        assert_eq!(alert.triage.comments_dropped, 100 - kept as u64, "the oldest comments go, counted");
        assert!(alert.triage.comments.last().unwrap().text.starts_with("99 "));
    }

    #[test]
    fn triage_keeps_its_newest_entries_and_counts_the_dropped() {
        let t0 = at("2026-01-05T09:40:00Z");
        let mut triage = Triage::default();
        for n in 0..120 {
            triage.comments.push(Comment { author: "dana".into(), at: t0, text: format!("{n:03}{}", "x".repeat(997)) });
            triage.history.push(TriageChange {
                author: "dana".into(),
                at: t0,
                field: "comment".into(),
                from: None,
                to: Some(n.to_string()),
            });
            triage.bound();
        }
        assert_eq!((triage.comments.len(), triage.comments_dropped), (32, 88), "32 KB of 1000-byte comments");
        assert_eq!(triage.comments[0].text[..3], *"088");
        assert_eq!((triage.history.len(), triage.history_dropped), (TRIAGE_HISTORY_KEPT, 70));
        assert_eq!(triage.history[0].to.as_deref(), Some("70"));
    }
}
