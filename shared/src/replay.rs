//! A replay: one policy run in shadow over a tenant's last hours (at most 7 days) of audit
//! content, listed again from Microsoft's Management Activity API, reporting what it would have
//! raised and never raising, storing or ticketing an alert.
//!
//! A replay is requested through the config API ([`crate::services::replay`]), stored, and run
//! by the audit-poller as a poll job ([`crate::messages::PollJob::Replay`]). Everything kept is
//! bounded: the policy is the one definition the request named (at most a policy's own size),
//! the alerts are summaries of the first [`ALERTS_KEPT`] (titles cut), and the work itself is
//! capped ([`RECORD_CAP`], [`BLOB_CAP`], [`MATCH_CAP`], a time budget), with the cap that ended
//! it reported as `truncated`.

use crate::alert::{Alert, Severity};
use crate::ids::{AlertId, ContentType, MspId, PolicyId, TenantId};
use crate::messages::truncate_to;
use crate::policy::model::PolicyDefinition;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest look-back: Microsoft keeps content listable for 7 days.
pub const HOURS_MAX: u32 = 168;
/// Records read at most; past it the replay ends early, reported as truncated.
pub const RECORD_CAP: u64 = 200_000;
/// Content blobs fetched at most.
pub const BLOB_CAP: u64 = 5_000;
/// Matches kept for the trigger replay at most (each holds the hit's detail).
pub const MATCH_CAP: usize = 20_000;
/// Would-be alerts reported in full; the totals count every one.
pub const ALERTS_KEPT: usize = 100;
/// Characters of an alert's title and group key kept in a summary.
const SUMMARY_TEXT_CHARS: usize = 256;

/// Where a replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReplayStatus {
    Queued,
    Running,
    Done,
    Failed,
}

impl ReplayStatus {
    /// Done or failed: a redelivered job has nothing left to do.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// How far a replay got in one content type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContentProgress {
    pub content_type: ContentType,
    pub windows_listed: u64,
    pub windows_refused: u64,
    pub blobs_fetched: u64,
    pub records_scanned: u64,
    /// Everything before this instant (from the replay's start) has been read.
    pub listed_until: Option<DateTime<Utc>>,
}

impl ContentProgress {
    /// Nothing read yet.
    #[must_use]
    pub fn new(content_type: ContentType) -> Self {
        Self { content_type, windows_listed: 0, windows_refused: 0, blobs_fetched: 0, records_scanned: 0, listed_until: None }
    }
}

/// One alert the policy would have raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WouldBeAlert {
    pub alert_id: AlertId,
    pub title: String,
    pub severity: Severity,
    pub group_key: String,
    pub hit_count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl WouldBeAlert {
    /// The summary of `alert`, its texts cut to a bounded length.
    #[must_use]
    pub fn of(alert: &Alert) -> Self {
        Self {
            alert_id: alert.id.clone(),
            title: truncate_to(&alert.title, SUMMARY_TEXT_CHARS).to_owned(),
            severity: alert.severity,
            group_key: truncate_to(&alert.group_key, SUMMARY_TEXT_CHARS).to_owned(),
            hit_count: alert.hit_count,
            first_seen: alert.first_seen,
            last_seen: alert.last_seen,
        }
    }
}

/// A replay and, once run, what it found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replay {
    /// `rpl-` and 16 hex digits.
    pub id: String,
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    /// The definition replayed, fixed when the replay was requested.
    pub policy: PolicyDefinition,
    pub hours: u32,
    /// The replayed interval, fixed when requested; a run starts no earlier than Microsoft
    /// still lists (and says so in `note`).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub content_types: Vec<ContentType>,
    pub status: ReplayStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Runs started (a redelivered job runs the replay again from the start).
    pub attempts: u32,
    pub progress: Vec<ContentProgress>,
    pub records_scanned: u64,
    pub blobs_fetched: u64,
    /// Records that are not usable audit records (not evaluated).
    pub records_rejected: u64,
    pub matches: u64,
    pub alerts_total: u64,
    pub hits_total: u64,
    /// The first [`ALERTS_KEPT`] would-be alerts by first hit.
    pub alerts: Vec<WouldBeAlert>,
    /// Which cap ended the replay early, and what was left unread.
    pub truncated: Option<String>,
    pub error: Option<String>,
    /// What the request found worth saying (the policy is off for the tenant, …).
    pub note: Option<String>,
    /// What the last run found worth saying (content no longer listed, …).
    #[serde(default)]
    pub run_note: Option<String>,
}

impl Replay {
    /// A replay of `policy` over the `hours` before `now`, queued, nothing found yet.
    #[must_use]
    #[allow(clippy::too_many_arguments)] // One constructor for the service and its contract.
    pub fn queued(
        id: String,
        msp_id: MspId,
        tenant_id: TenantId,
        policy: PolicyDefinition,
        hours: u32,
        content_types: Vec<ContentType>,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            msp_id,
            tenant_id,
            policy,
            hours,
            from: now - chrono::Duration::hours(i64::from(hours)),
            to: now,
            content_types,
            status: ReplayStatus::Queued,
            created_at: now,
            updated_at: now,
            attempts: 0,
            progress: Vec::new(),
            records_scanned: 0,
            blobs_fetched: 0,
            records_rejected: 0,
            matches: 0,
            alerts_total: 0,
            hits_total: 0,
            alerts: Vec::new(),
            truncated: None,
            error: None,
            note,
            run_note: None,
        }
    }

    /// Forgets what an earlier run found: a run always recomputes from the start, so a
    /// redelivered job never counts anything twice.
    pub fn restart(&mut self, now: DateTime<Utc>) {
        self.status = ReplayStatus::Running;
        self.attempts += 1;
        self.updated_at = now;
        self.progress = self.content_types.iter().copied().map(ContentProgress::new).collect();
        self.records_scanned = 0;
        self.blobs_fetched = 0;
        self.records_rejected = 0;
        self.matches = 0;
        self.alerts_total = 0;
        self.hits_total = 0;
        self.alerts.clear();
        self.truncated = None;
        self.error = None;
        self.run_note = None;
    }

    /// Adds to what the run says.
    pub fn add_run_note(&mut self, note: &str) {
        self.run_note = Some(match self.run_note.take() {
            Some(earlier) => format!("{earlier}; {note}"),
            None => note.to_owned(),
        });
    }

    /// Records the would-be alerts: totals over all, summaries of the first by first hit.
    pub fn set_alerts(&mut self, alerts: &[Alert]) {
        self.alerts_total = alerts.len() as u64;
        self.hits_total = alerts.iter().map(|a| a.hit_count).sum();
        let mut summaries: Vec<WouldBeAlert> = alerts.iter().map(WouldBeAlert::of).collect();
        summaries.sort_by(|a, b| (a.first_seen, &a.alert_id).cmp(&(b.first_seen, &b.alert_id)));
        summaries.truncate(ALERTS_KEPT);
        self.alerts = summaries;
    }

    /// What the API answers: everything but the whole definition (its id and name instead).
    #[must_use]
    pub fn view(&self) -> ReplayView {
        let notes: Vec<&str> = [self.note.as_deref(), self.run_note.as_deref()].into_iter().flatten().collect();
        ReplayView {
            replay_id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            policy_id: self.policy.id.clone(),
            policy_name: self.policy.name.clone(),
            hours: self.hours,
            from: self.from,
            to: self.to,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            attempts: self.attempts,
            records_scanned: self.records_scanned,
            blobs_fetched: self.blobs_fetched,
            records_rejected: self.records_rejected,
            matches: self.matches,
            progress: self.progress.clone(),
            alerts_total: self.alerts_total,
            hits_total: self.hits_total,
            alerts_shown: self.alerts.len(),
            alerts: self.alerts.clone(),
            truncated: self.truncated.clone(),
            error: self.error.clone(),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }
}

/// A replay as the API shows it: everything but the whole definition (its id and name
/// instead).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayView {
    pub replay_id: String,
    pub tenant_id: TenantId,
    pub policy_id: PolicyId,
    pub policy_name: String,
    pub hours: u32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub status: ReplayStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempts: u32,
    pub records_scanned: u64,
    pub blobs_fetched: u64,
    pub records_rejected: u64,
    pub matches: u64,
    pub progress: Vec<ContentProgress>,
    pub alerts_total: u64,
    pub hits_total: u64,
    pub alerts_shown: usize,
    /// The first [`ALERTS_KEPT`] would-be alerts by first hit.
    pub alerts: Vec<WouldBeAlert>,
    pub truncated: Option<String>,
    pub error: Option<String>,
    /// What the request and the last run found worth saying.
    pub note: Option<String>,
}

/// Whether `id` has the shape of a replay id (anything else is unknown without a store read).
#[must_use]
pub fn is_replay_id(id: &str) -> bool {
    id.strip_prefix("rpl-").is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}
