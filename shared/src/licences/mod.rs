//! A customer tenant's Microsoft 365 licences as a tenant-scope source: what Graph's
//! `subscribedSkus` (one entry per product, with consumed and prepaid units and its service
//! plans) and `directory/subscriptions` (one entry per purchase, with its status and the date it
//! moves to its next lifecycle state) say, read daily per tenant, kept per tenant as the current
//! snapshot plus the status changes seen ([`TenantLicences`], bounded), and the licence problems
//! that hold or clear ([`findings`]), which become Vigil's own events for the built-in licence
//! policies. AWS-free: the wire format is read in [`wire`], findings are computed against a
//! given clock. Reference: `shared/reference/licences-billing-outputs.md` §1.1–1.4, 1.7.

pub mod findings;
pub mod wire;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Status changes kept per tenant (the oldest go first).
pub const CHANGES_MAX: usize = 50;
/// Products (SKUs) kept per tenant; a tenant with more keeps the first ones Graph lists.
pub const SKUS_MAX: usize = 200;
/// Subscriptions kept per tenant; a tenant with more keeps the first ones Graph lists.
pub const SUBSCRIPTIONS_MAX: usize = 500;
/// Longest SKU part number or subscription id kept (Graph's are far shorter).
pub const TEXT_MAX: usize = 120;

/// `servicePlanId` of Defender for Office 365 Plan 1 (`ATP_ENTERPRISE`).
pub const DEFENDER_P1: &str = "f20fedf3-f3c3-43c3-8267-2bfdd51c0939";
/// `servicePlanId` of Defender for Office 365 Plan 2 (`THREAT_INTELLIGENCE`).
pub const DEFENDER_P2: &str = "8e0c0a52-6a6c-4d40-8370-dd62790dcd70";
/// GCC variants of Plan 1 / Plan 2 (`ATP_ENTERPRISE_GOV` / `THREAT_INTELLIGENCE_GOV`).
pub const DEFENDER_P1_GOV: &str = "493ff600-6a2b-4db6-ad37-a7d4eb214516";
/// See [`DEFENDER_P1_GOV`].
pub const DEFENDER_P2_GOV: &str = "900018f1-0cdb-4ecb-94d4-90281760fdc6";

/// A subscription's or SKU's status, as Graph names it (`status` / `capabilityStatus`), in the
/// order a subscription that is not renewed goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LicenceStatus {
    /// Active.
    Enabled,
    /// Expired, in its grace period: everyone keeps access.
    Warning,
    /// Disabled: users lost access, admins can still reactivate it.
    Suspended,
    /// Cancelled or locked: unavailable to admins and users, data preserved.
    LockedOut,
    /// Deleted: data may be deleted.
    Deleted,
    /// A status Graph added after this was written.
    #[serde(other)]
    Unknown,
}

impl LicenceStatus {
    /// Graph's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Warning => "Warning",
            Self::Suspended => "Suspended",
            Self::LockedOut => "LockedOut",
            Self::Deleted => "Deleted",
            Self::Unknown => "Unknown",
        }
    }

    /// What the status means for the customer, in the admin center's words.
    #[must_use]
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Enabled => "active",
            Self::Warning => "expired, in its grace period: users keep access",
            Self::Suspended => "disabled: users have lost access, admins can still reactivate it",
            Self::LockedOut => "locked out: unavailable to admins and users",
            Self::Deleted => "deleted: its data may be deleted",
            Self::Unknown => "in a state Vigil does not know",
        }
    }

    /// Whether the product still works (its units can be used).
    #[must_use]
    pub fn usable(self) -> bool {
        matches!(self, Self::Enabled | Self::Warning)
    }
}

/// A SKU's prepaid units by state (`prepaidUnits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrepaidUnits {
    pub enabled: i64,
    pub warning: i64,
    pub suspended: i64,
    pub locked_out: i64,
}

/// The Defender for Office 365 plans Vigil's Threat Intelligence policies depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DefenderPlan {
    /// `ATP_ENTERPRISE` (or its GCC variant): Threat Intelligence audit records.
    Plan1,
    /// `THREAT_INTELLIGENCE` (or its GCC variant): Plan 1's records and automated investigations.
    Plan2,
}

impl DefenderPlan {
    /// The plan of a `servicePlanId`, when it is one of Defender for Office 365's.
    #[must_use]
    pub fn of_service_plan(id: &str) -> Option<Self> {
        if id.eq_ignore_ascii_case(DEFENDER_P1) || id.eq_ignore_ascii_case(DEFENDER_P1_GOV) {
            Some(Self::Plan1)
        } else if id.eq_ignore_ascii_case(DEFENDER_P2) || id.eq_ignore_ascii_case(DEFENDER_P2_GOV) {
            Some(Self::Plan2)
        } else {
            None
        }
    }
}

/// One product the tenant holds (`subscribedSku`): all its subscriptions together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicensedSku {
    pub sku_id: String,
    pub sku_part_number: String,
    pub capability_status: LicenceStatus,
    /// Licences assigned.
    pub consumed_units: i64,
    pub prepaid_units: PrepaidUnits,
    /// The Defender for Office 365 plans among its service plans that are provisioned
    /// (`provisioningStatus` `Success`).
    #[serde(default)]
    pub defender_plans: Vec<DefenderPlan>,
    /// The subscriptions behind it.
    #[serde(default)]
    pub subscription_ids: Vec<String>,
}

impl LicensedSku {
    /// Units that can be assigned: those of active subscriptions and of those in their grace
    /// period (whose users keep access; the grace period has its own alert).
    #[must_use]
    pub fn usable_units(&self) -> i64 {
        self.prepaid_units.enabled.saturating_add(self.prepaid_units.warning)
    }
}

/// One subscription (purchase) of a product (`companySubscription`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenceSubscription {
    pub id: String,
    pub sku_id: String,
    pub sku_part_number: String,
    pub status: LicenceStatus,
    pub is_trial: bool,
    /// When it moves to its next state if not renewed (term end while Enabled, end of grace
    /// while Warning, deletion while Suspended).
    pub next_lifecycle_at: Option<DateTime<Utc>>,
    pub total_licences: i64,
    pub created_at: Option<DateTime<Utc>>,
}

/// What one read of a tenant's licences found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenceSnapshot {
    pub skus: Vec<LicensedSku>,
    pub subscriptions: Vec<LicenceSubscription>,
}

impl LicenceSnapshot {
    /// The snapshot cut to the kept sizes ([`SKUS_MAX`], [`SUBSCRIPTIONS_MAX`], [`TEXT_MAX`]).
    #[must_use]
    pub fn bounded(mut self) -> Self {
        self.skus.truncate(SKUS_MAX);
        self.subscriptions.truncate(SUBSCRIPTIONS_MAX);
        for sku in &mut self.skus {
            cut(&mut sku.sku_id);
            cut(&mut sku.sku_part_number);
            sku.subscription_ids.truncate(SUBSCRIPTIONS_MAX);
            sku.subscription_ids.iter_mut().for_each(cut);
            sku.defender_plans.sort_unstable();
            sku.defender_plans.dedup();
        }
        for subscription in &mut self.subscriptions {
            cut(&mut subscription.id);
            cut(&mut subscription.sku_id);
            cut(&mut subscription.sku_part_number);
        }
        self
    }

    /// The Defender for Office 365 plans that work in the tenant: provisioned in a product
    /// that is active or in its grace period.
    #[must_use]
    pub fn working_defender_plans(&self) -> Vec<DefenderPlan> {
        let mut plans: Vec<DefenderPlan> =
            self.skus.iter().filter(|s| s.capability_status.usable()).flat_map(|s| s.defender_plans.iter().copied()).collect();
        plans.sort_unstable();
        plans.dedup();
        plans
    }
}

fn cut(text: &mut String) {
    let kept = crate::messages::truncate_to(text, TEXT_MAX).len();
    text.truncate(kept);
}

/// A subscription's status changing between two reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusChange {
    pub subscription_id: String,
    pub sku_part_number: String,
    /// `None`: first seen.
    pub from: Option<LicenceStatus>,
    /// `None`: no longer listed.
    pub to: Option<LicenceStatus>,
    /// The read that saw it.
    pub at: DateTime<Utc>,
}

/// Everything Vigil keeps about one tenant's licences (one record per tenant, under its MSP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantLicences {
    /// The last read, successful or not.
    pub read_at: Option<DateTime<Utc>>,
    /// The last successful read (the snapshot's time).
    pub last_success: Option<DateTime<Utc>>,
    /// Why the last read failed; `None`: it worked.
    pub error: Option<String>,
    /// The last read was refused (403 / consent missing): `Organization.Read.All` must be
    /// consented again. The snapshot is the last one read, not "no licences".
    pub needs_reconsent: bool,
    pub snapshot: LicenceSnapshot,
    /// Since when each subscription has its current status (by subscription id).
    pub status_since: BTreeMap<String, DateTime<Utc>>,
    /// Status changes seen, oldest first, at most [`CHANGES_MAX`].
    pub changes: Vec<StatusChange>,
    /// Findings raised, by subject (subscription id, `sku:{skuId}`, or a tenant-wide subject).
    pub raised: BTreeMap<String, Vec<findings::RaisedFinding>>,
    /// Failed reads since the last successful one (refused access excepted: consent and
    /// connection problems have their own alerts).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// When the open "licence reads failing" episode began ([`crate::selfmon`]), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
}

impl TenantLicences {
    /// Takes a fresh snapshot read at `at`: records the status changes against the one before
    /// (bounded), the time each subscription entered its status, and clears the read's error.
    pub fn take_snapshot(&mut self, snapshot: LicenceSnapshot, at: DateTime<Utc>) {
        let snapshot = snapshot.bounded();
        let first_read = self.last_success.is_none();
        let mut since = BTreeMap::new();
        for subscription in &snapshot.subscriptions {
            let before = self.snapshot.subscriptions.iter().find(|s| s.id == subscription.id).map(|s| s.status);
            if before != Some(subscription.status) {
                if !first_read || subscription.status != LicenceStatus::Enabled {
                    self.changes.push(StatusChange {
                        subscription_id: subscription.id.clone(),
                        sku_part_number: subscription.sku_part_number.clone(),
                        from: before,
                        to: Some(subscription.status),
                        at,
                    });
                }
                since.insert(subscription.id.clone(), at);
            } else {
                since.insert(subscription.id.clone(), self.status_since.get(&subscription.id).copied().unwrap_or(at));
            }
        }
        for gone in self.snapshot.subscriptions.iter().filter(|old| !snapshot.subscriptions.iter().any(|s| s.id == old.id)) {
            self.changes.push(StatusChange {
                subscription_id: gone.id.clone(),
                sku_part_number: gone.sku_part_number.clone(),
                from: Some(gone.status),
                to: None,
                at,
            });
        }
        if self.changes.len() > CHANGES_MAX {
            let excess = self.changes.len() - CHANGES_MAX;
            self.changes.drain(..excess);
        }
        self.snapshot = snapshot;
        self.status_since = since;
        self.read_at = Some(at);
        self.last_success = Some(at);
        self.error = None;
        self.needs_reconsent = false;
    }

    /// Records a failed read: the snapshot stays as it was.
    pub fn read_failed(&mut self, at: DateTime<Utc>, error: String, needs_reconsent: bool) {
        self.read_at = Some(at);
        self.error = Some(crate::messages::truncate_to(&error, 400).to_owned());
        self.needs_reconsent = needs_reconsent;
    }

    /// The status a subscription had before its current one (the latest change into it).
    #[must_use]
    pub fn previous_status(&self, subscription_id: &str) -> Option<LicenceStatus> {
        self.changes.iter().rev().find(|c| c.subscription_id == subscription_id && c.to.is_some()).and_then(|c| c.from)
    }
}

/// One active Microsoft 365 E5 subscription (`SPE_E5`, Microsoft's published SKU id, not in the
/// reference; Defender for Office 365 Plan 2 included), renewing
/// a year after `now`, 25 licences of which 10 assigned: a tenant with nothing to report.
#[must_use]
pub fn healthy_snapshot(now: DateTime<Utc>) -> LicenceSnapshot {
    let sku_id = "06ebc4ee-1bb5-47dd-8120-11324bc54e06";
    let id = "e5e5e5e5-0000-4000-8000-000000000001";
    LicenceSnapshot {
        skus: vec![LicensedSku {
            sku_id: sku_id.into(),
            sku_part_number: "SPE_E5".into(),
            capability_status: LicenceStatus::Enabled,
            consumed_units: 10,
            prepaid_units: PrepaidUnits { enabled: 25, ..PrepaidUnits::default() },
            defender_plans: vec![DefenderPlan::Plan2],
            subscription_ids: vec![id.into()],
        }],
        subscriptions: vec![LicenceSubscription {
            id: id.into(),
            sku_id: sku_id.into(),
            sku_part_number: "SPE_E5".into(),
            status: LicenceStatus::Enabled,
            is_trial: false,
            next_lifecycle_at: Some(now + chrono::Duration::days(365)),
            total_licences: 25,
            created_at: Some(now - chrono::Duration::days(30)),
        }],
    }
}

/// Display names of a few products, for tickets (the part number otherwise).
const PRODUCT_NAMES: [(&str, &str); 9] = [
    ("SPE_E5", "Microsoft 365 E5"),
    ("SPB", "Microsoft 365 Business Premium"),
    ("O365_BUSINESS_PREMIUM", "Microsoft 365 Business Standard"),
    ("O365_BUSINESS_ESSENTIALS", "Microsoft 365 Business Basic"),
    ("ENTERPRISEPACK", "Office 365 E3"),
    ("EXCHANGESTANDARD", "Exchange Online (Plan 1)"),
    ("EXCHANGEENTERPRISE", "Exchange Online (Plan 2)"),
    ("ATP_ENTERPRISE", "Microsoft Defender for Office 365 (Plan 1)"),
    ("THREAT_INTELLIGENCE", "Microsoft Defender for Office 365 (Plan 2)"),
];

/// A product's name for people: `Microsoft 365 Business Premium (SPB)`, or the part number.
#[must_use]
pub fn product_name(sku_part_number: &str) -> String {
    PRODUCT_NAMES
        .iter()
        .find(|(part, _)| part.eq_ignore_ascii_case(sku_part_number))
        .map_or_else(|| sku_part_number.to_owned(), |(part, name)| format!("{name} ({part})"))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn at(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap() + chrono::Duration::days(days)
    }

    pub(crate) fn subscription(id: &str, status: LicenceStatus, next_in_days: i64) -> LicenceSubscription {
        LicenceSubscription {
            id: id.into(),
            sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46".into(),
            sku_part_number: "SPB".into(),
            status,
            is_trial: false,
            next_lifecycle_at: Some(at(next_in_days)),
            total_licences: 20,
            created_at: Some(at(-300)),
        }
    }

    pub(crate) fn sku(status: LicenceStatus, consumed: i64, enabled: i64, plans: &[DefenderPlan]) -> LicensedSku {
        LicensedSku {
            sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46".into(),
            sku_part_number: "SPB".into(),
            capability_status: status,
            consumed_units: consumed,
            prepaid_units: PrepaidUnits { enabled, ..PrepaidUnits::default() },
            defender_plans: plans.to_vec(),
            subscription_ids: vec!["sub-1".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn a_status_change_is_recorded_with_when_it_happened_and_the_history_stays_bounded() {
        let mut state = TenantLicences::default();
        let enabled = LicenceSnapshot { skus: vec![], subscriptions: vec![subscription("sub-1", LicenceStatus::Enabled, 40)] };
        state.take_snapshot(enabled.clone(), at(0));
        assert!(state.changes.is_empty(), "an active subscription first seen is not a change");
        let warning = LicenceSnapshot { skus: vec![], subscriptions: vec![subscription("sub-1", LicenceStatus::Warning, 70)] };
        state.take_snapshot(warning.clone(), at(1));
        state.take_snapshot(warning, at(2));
        assert_eq!(state.changes.len(), 1);
        assert_eq!((state.changes[0].from, state.changes[0].to), (Some(LicenceStatus::Enabled), Some(LicenceStatus::Warning)));
        assert_eq!(state.status_since["sub-1"], at(1), "since the read that saw it, not the latest");
        assert_eq!(state.previous_status("sub-1"), Some(LicenceStatus::Enabled));
        for day in 0..(CHANGES_MAX as i64 * 2) {
            let status = if day % 2 == 0 { LicenceStatus::Enabled } else { LicenceStatus::Warning };
            state.take_snapshot(LicenceSnapshot { skus: vec![], subscriptions: vec![subscription("sub-1", status, 40)] }, at(3 + day));
        }
        assert_eq!(state.changes.len(), CHANGES_MAX, "capped");
        state.take_snapshot(LicenceSnapshot::default(), at(400));
        assert_eq!(state.changes.last().unwrap().to, None, "a subscription no longer listed is a change");
    }

    #[test]
    fn a_snapshot_is_cut_to_the_kept_sizes() {
        let many = LicenceSnapshot {
            skus: (0..SKUS_MAX + 5).map(|_| sku(LicenceStatus::Enabled, 1, 1, &[])).collect(),
            subscriptions: (0..SUBSCRIPTIONS_MAX + 5)
                .map(|i| LicenceSubscription { id: format!("{i}{}", "x".repeat(500)), ..subscription("s", LicenceStatus::Enabled, 1) })
                .collect(),
        }
        .bounded();
        assert_eq!((many.skus.len(), many.subscriptions.len()), (SKUS_MAX, SUBSCRIPTIONS_MAX));
        assert!(many.subscriptions.iter().all(|s| s.id.len() <= TEXT_MAX));
    }

    #[test]
    fn a_failed_read_keeps_the_last_snapshot() {
        let mut state = TenantLicences::default();
        state
            .take_snapshot(LicenceSnapshot { skus: vec![], subscriptions: vec![subscription("sub-1", LicenceStatus::Enabled, 40)] }, at(0));
        state.read_failed(at(1), "refused".into(), true);
        assert_eq!(state.snapshot.subscriptions.len(), 1, "never \"no licences\"");
        assert!(state.needs_reconsent);
        assert_eq!((state.read_at, state.last_success), (Some(at(1)), Some(at(0))));
    }

    #[test]
    fn only_provisioned_defender_plans_of_usable_products_work() {
        let snapshot = LicenceSnapshot {
            skus: vec![
                sku(LicenceStatus::Suspended, 1, 0, &[DefenderPlan::Plan2]),
                sku(LicenceStatus::Warning, 1, 0, &[DefenderPlan::Plan1]),
            ],
            subscriptions: vec![],
        };
        assert_eq!(snapshot.working_defender_plans(), vec![DefenderPlan::Plan1]);
        assert_eq!(DefenderPlan::of_service_plan("8E0C0A52-6A6C-4D40-8370-DD62790DCD70"), Some(DefenderPlan::Plan2));
        assert_eq!(DefenderPlan::of_service_plan("9aaf7827-d63c-4b61-89c3-182f06f82e5c"), None, "an Exchange plan");
        assert_eq!(product_name("spb"), "Microsoft 365 Business Premium (SPB)");
    }
}
