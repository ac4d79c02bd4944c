//! Offboarding a customer tenant: the record that drives it (phase, what is done, the report)
//! and the kinds of tenant data a purge removes.
//!
//! An offboarding runs in three phases. **Stopping**: the tenant is marked offboarded (the tick
//! skips it, webhooks for it are refused, its company links go), Microsoft's subscriptions (and
//! with them the webhooks) are stopped and the tenant's credentials deleted. **Retained**: its
//! data stays for the retention the MSP chose (default [`RETENTION_DAYS_DEFAULT`], 0 allowed, at
//! most [`RETENTION_DAYS_MAX`]). **Purging**: every kind of data keyed by the tenant
//! ([`DataKind::ALL`]) is deleted page by page, then the tenant itself; the record then keeps
//! only the counts and a hash of the tenant id ([`tenant_key`]), so nothing names the tenant.
//!
//! Every step is safe to repeat: a page's keys are written into the record ([`PendingPage`])
//! before they are deleted, so a crash between the delete and the record's next write repeats
//! the delete (nothing left to delete) and counts the page once — the report does not depend
//! on where a crash fell.

use crate::access::Actor;
use crate::ids::{ContentType, MspId, TenantId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The retention when the MSP names none, in days.
pub const RETENTION_DAYS_DEFAULT: u32 = 30;
/// The longest retention, in days.
pub const RETENTION_DAYS_MAX: u32 = 365;
/// Most keys one page of a purge lists (and so most keys a record holds while it deletes them).
pub const PAGE_KEYS_MAX: usize = 100;

/// Where an offboarding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OffboardingPhase {
    /// Polling is off; subscriptions are being stopped and credentials deleted.
    Stopping,
    /// Stopped; the data stays until `purge_after`.
    Retained,
    /// The data is being deleted.
    Purging,
    /// Everything keyed by the tenant is gone.
    Purged,
}

/// One kind of data keyed by a tenant, in the order a purge deletes them: what refers to alerts
/// before the alerts (their ids find it), the tenant itself last (its mark keeps polling off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Per-record hit markers of the tenant's alerts.
    HitMarkers,
    /// Open-ticket and held-delivery index entries of the tenant's alerts.
    TicketIndex,
    /// Delivery states (per alert and destination) of the tenant's alerts.
    Deliveries,
    /// Daily ticket places of the tenant's policies.
    DailyPlaces,
    /// Alerts (with their triage: status, assignee, classification, comments).
    Alerts,
    /// Stream coverage ledgers.
    StreamLedgers,
    /// Record claims, finished-blob markers, trigger state (thresholds, unusual-activity
    /// baselines) and replays: everything under the tenant's partition prefix in the state table.
    IngestState,
    /// Per-tenant policy switches.
    TenantPolicies,
    /// Suppression rules limited to the tenant.
    Suppressions,
    /// Licence state and its last read.
    Licences,
    /// Daily protected-mailbox counts and the latest one.
    MailboxCounts,
    /// Billing mappings and sync records of the tenant.
    Billing,
    /// Partner technicians' activity in the tenant.
    PartnerActivity,
    /// The tenant's registration.
    Tenant,
}

impl DataKind {
    /// Every kind, in purge order.
    pub const ALL: [DataKind; 14] = [
        Self::HitMarkers,
        Self::TicketIndex,
        Self::Deliveries,
        Self::DailyPlaces,
        Self::Alerts,
        Self::StreamLedgers,
        Self::IngestState,
        Self::TenantPolicies,
        Self::Suppressions,
        Self::Licences,
        Self::MailboxCounts,
        Self::Billing,
        Self::PartnerActivity,
        Self::Tenant,
    ];

    /// The kind's name in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HitMarkers => "hit_markers",
            Self::TicketIndex => "ticket_index",
            Self::Deliveries => "deliveries",
            Self::DailyPlaces => "daily_places",
            Self::Alerts => "alerts",
            Self::StreamLedgers => "stream_ledgers",
            Self::IngestState => "ingest_state",
            Self::TenantPolicies => "tenant_policies",
            Self::Suppressions => "suppressions",
            Self::Licences => "licences",
            Self::MailboxCounts => "mailbox_counts",
            Self::Billing => "billing",
            Self::PartnerActivity => "partner_activity",
            Self::Tenant => "tenant",
        }
    }
}

/// Where one stored item is: opaque to the service, which only checks that it lies under the
/// MSP being purged ([`DataKey::within`]) and hands it back to the store to delete.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DataKey {
    /// The table (or other container) holding it.
    pub table: String,
    pub pk: String,
    pub sk: String,
}

impl DataKey {
    /// Whether the item's partition belongs to `msp_id` (`MSP#{msp}` or `MSP#{msp}#…`).
    #[must_use]
    pub fn within(&self, msp_id: &MspId) -> bool {
        let own = format!("MSP#{msp_id}");
        self.pk == own || self.pk.strip_prefix(&own).is_some_and(|rest| rest.starts_with('#'))
    }
}

/// One page of a kind's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataPage {
    pub keys: Vec<DataKey>,
    /// Where the next page starts; `None`: this was the last.
    pub next: Option<String>,
}

/// A page listed and written down, being deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPage {
    pub kind: DataKind,
    pub keys: Vec<DataKey>,
    pub next: Option<String>,
}

/// What an offboarding removed (or will remove, for the stop phase's counts fixed at request).
pub type OffboardingReport = BTreeMap<String, u64>;

/// The hash a finished offboarding keeps instead of the tenant id (hex SHA-256 of MSP and
/// tenant): the record can be found by the tenant id, but no longer names it.
#[must_use]
pub fn tenant_key(msp_id: &MspId, tenant_id: &TenantId) -> String {
    hex::encode(Sha256::digest(format!("{msp_id}\n{tenant_id}").as_bytes()))
}

/// One tenant's offboarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offboarding {
    pub msp_id: MspId,
    /// [`tenant_key`] of the tenant.
    pub tenant_key: String,
    /// The tenant, until the purge is done.
    pub tenant_id: Option<TenantId>,
    pub requested_at: DateTime<Utc>,
    pub requested_by: Actor,
    pub retention_days: u32,
    pub purge_after: DateTime<Utc>,
    pub phase: OffboardingPhase,
    /// The content types whose subscriptions are stopped (fixed at request).
    pub content_types: Vec<ContentType>,
    /// Whether the tenant had Microsoft credentials to delete.
    pub had_credentials: bool,
    /// Subscriptions stopped (or found stopped).
    #[serde(default)]
    pub subscriptions_stopped: bool,
    /// Why subscriptions could not be stopped (access already refused), if so.
    #[serde(default)]
    pub subscriptions_note: Option<String>,
    #[serde(default)]
    pub credentials_deleted: bool,
    /// Counts per kind: the stop phase's fixed at request, each purged kind's added when done.
    pub report: OffboardingReport,
    /// Kinds fully purged.
    #[serde(default)]
    pub purged: Vec<DataKind>,
    /// Where the current kind's listing continues.
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub pending: Option<PendingPage>,
    /// Removed so far of the kind being purged.
    #[serde(default)]
    pub kind_count: u64,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: u64,
}

impl Offboarding {
    /// Whether the purge is due at `now`.
    #[must_use]
    pub fn purge_due(&self, now: DateTime<Utc>) -> bool {
        self.phase == OffboardingPhase::Retained && now >= self.purge_after
    }

    /// Whether the tick should send the job again: the purge is due, or an unfinished phase has
    /// not moved for `stalled_after` (its job failed for good or was lost).
    #[must_use]
    pub fn needs_a_job(&self, now: DateTime<Utc>, stalled_after: Duration) -> bool {
        match self.phase {
            OffboardingPhase::Retained => self.purge_due(now),
            OffboardingPhase::Stopping | OffboardingPhase::Purging => now - self.updated_at >= stalled_after,
            OffboardingPhase::Purged => false,
        }
    }

    /// The next kind to purge, if any.
    #[must_use]
    pub fn next_kind(&self) -> Option<DataKind> {
        DataKind::ALL.into_iter().find(|k| !self.purged.contains(k))
    }

    /// The view the API returns.
    #[must_use]
    pub fn view(&self, tenant_id: &TenantId) -> OffboardingView {
        OffboardingView {
            tenant_id: tenant_id.clone(),
            phase: self.phase,
            requested_at: self.requested_at,
            requested_by: self.requested_by.name.clone(),
            retention_days: self.retention_days,
            purge_after: self.purge_after,
            subscriptions_stopped: self.subscriptions_stopped,
            subscriptions_note: self.subscriptions_note.clone(),
            credentials_deleted: self.credentials_deleted,
            removed: self.report.clone(),
            completed_at: self.completed_at,
        }
    }
}

/// An offboarding as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OffboardingView {
    pub tenant_id: TenantId,
    pub phase: OffboardingPhase,
    pub requested_at: DateTime<Utc>,
    /// Who asked for it.
    pub requested_by: String,
    pub retention_days: u32,
    /// When the data is deleted (the tick starts the purge after this).
    pub purge_after: DateTime<Utc>,
    pub subscriptions_stopped: bool,
    /// Why Microsoft's subscriptions could not be stopped (the tenant had already refused
    /// access), if so.
    pub subscriptions_note: Option<String>,
    pub credentials_deleted: bool,
    /// What was removed, per kind: `subscriptions`, `credentials`, `company_links` at the stop;
    /// each data kind (`alerts`, `deliveries`, `stream_ledgers`, …) once purged.
    pub removed: BTreeMap<String, u64>,
    /// When the purge finished.
    pub completed_at: Option<DateTime<Utc>>,
}

/// The body of `POST /v1/tenants/{t}/offboarding`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OffboardingRequest {
    /// Days the tenant's data is kept before it is deleted (0 to 365; default 30).
    #[serde(default)]
    pub retention_days: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_another_msp_whose_id_extends_this_one_is_not_within_it() {
        let acme = MspId::parse("acme").unwrap();
        let key = |pk: &str| DataKey { table: "t".into(), pk: pk.into(), sk: "s".into() };
        assert!(key("MSP#acme").within(&acme));
        assert!(key("MSP#acme#TENANT#x").within(&acme));
        assert!(!key("MSP#acme2").within(&acme));
        assert!(!key("MSP#acme2#TENANT#x").within(&acme));
        assert!(!key("MSP#other#TENANT#x").within(&acme));
        assert!(!key("XMSP#acme").within(&acme));
    }

    #[test]
    fn the_tenant_key_differs_per_msp_and_per_tenant() {
        let t1 = TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        let t2 = TenantId::parse("22222222-2222-4222-8222-222222222222").unwrap();
        let a = MspId::parse("acme").unwrap();
        let b = MspId::parse("bravo").unwrap();
        assert_ne!(tenant_key(&a, &t1), tenant_key(&a, &t2));
        assert_ne!(tenant_key(&a, &t1), tenant_key(&b, &t1));
        assert!(!tenant_key(&a, &t1).contains("1111"));
    }
}
