//! Licence problems of a tenant as conditions that hold or clear, per subject: a subscription
//! whose next lifecycle date is near, one in its grace period, suspended, locked out or
//! deleted; a product with more licences assigned than it has; no working Defender for Office
//! 365 plan while Threat Intelligence policies are on; the licences unreadable for lack of
//! consent. Each read compares the findings that hold now with those raised before
//! ([`transitions`]): a new one becomes a Vigil event the built-in licence policies turn into
//! an alert, one that cleared becomes the event that resolves it. Both events of one finding
//! carry the time it was first seen as their time, so they land on the same alert (one per
//! tenant and subject). AWS-free; computed against a given clock (reference
//! `licences-billing-outputs.md` §1.3, §1.4, §1.7).

use super::{DefenderPlan, LicenceStatus, LicenceSubscription, LicensedSku, TenantLicences, product_name};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The operation of Vigil's event that a licence finding holds.
pub const FINDING_RAISED: &str = "Vigil.LicenceFinding";
/// The operation of Vigil's event that a licence finding cleared.
pub const FINDING_CLEARED: &str = "Vigil.LicenceFindingCleared";
/// The subject of the tenant-wide Defender for Office 365 finding.
pub const DEFENDER_SUBJECT: &str = "defender-for-office-365";
/// The subject of the tenant-wide "needs re-consent" finding.
pub const CONSENT_SUBJECT: &str = "licence-consent";

/// The Threat Intelligence record types (Management Activity API) that need Defender for Office
/// 365, with their names; [`AIR_RECORD_TYPE`] needs Plan 2.
pub const THREAT_RECORD_TYPES: [(u32, &str); 4] =
    [(28, "ThreatIntelligence"), (41, "ThreatIntelligenceUrl"), (47, "ThreatIntelligenceAtpContent"), (64, "AirInvestigation")];
/// Automated investigation and response records: Plan 2 only.
pub const AIR_RECORD_TYPE: u32 = 64;

/// One licence problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FindingKind {
    /// An active, purchased subscription moves to its next state within the MSP's horizon (it
    /// expires, or renews: Graph does not say which).
    LifecycleDateNear,
    /// Expired, in its grace period (`Warning`).
    GracePeriod,
    /// Disabled (`Suspended`).
    Suspended,
    /// `LockedOut` or `Deleted`.
    LockedOutOrDeleted,
    /// A product with more licences assigned than it has usable units.
    OverAssigned,
    /// No working Defender for Office 365 plan for the record types the tenant's Threat
    /// Intelligence policies watch.
    DefenderPlanMissing,
    /// Graph refused to list the licences: `Organization.Read.All` is not consented.
    NeedsReconsent,
}

impl FindingKind {
    /// Every kind, in order.
    pub const ALL: [FindingKind; 7] = [
        Self::LifecycleDateNear,
        Self::GracePeriod,
        Self::Suspended,
        Self::LockedOutOrDeleted,
        Self::OverAssigned,
        Self::DefenderPlanMissing,
        Self::NeedsReconsent,
    ];

    /// The name in events.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LifecycleDateNear => "lifecycle_date_near",
            Self::GracePeriod => "grace_period",
            Self::Suspended => "suspended",
            Self::LockedOutOrDeleted => "locked_out_or_deleted",
            Self::OverAssigned => "over_assigned",
            Self::DefenderPlanMissing => "defender_plan_missing",
            Self::NeedsReconsent => "needs_reconsent",
        }
    }
}

/// A finding raised on a subject, and since when (the read that first saw it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RaisedFinding {
    pub kind: FindingKind,
    pub since: DateTime<Utc>,
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Subscription(LicenceSubscription),
    Sku(LicensedSku),
    /// Tenant-wide (Defender for Office 365, consent).
    Tenant,
}

/// The MSP's and tenant's settings findings depend on.
#[derive(Debug, Clone, Default)]
pub struct FindingSettings {
    /// A subscription's next lifecycle date within this many days raises
    /// [`FindingKind::LifecycleDateNear`].
    pub lifecycle_days: u32,
    /// The record types the tenant's enabled Threat Intelligence policies watch (empty: none on,
    /// so no Defender finding).
    pub threat_record_types: BTreeSet<u32>,
}

/// The subject key of a product.
#[must_use]
pub fn sku_subject(sku_id: &str) -> String {
    format!("sku:{sku_id}")
}

/// The record types Vigil cannot see with the tenant's working Defender plans, of those its
/// policies watch.
#[must_use]
pub fn unseen_record_types(plans: &[DefenderPlan], watched: &BTreeSet<u32>) -> Vec<u32> {
    let p2 = plans.contains(&DefenderPlan::Plan2);
    let p1 = p2 || plans.contains(&DefenderPlan::Plan1);
    watched
        .iter()
        .copied()
        .filter(|t| THREAT_RECORD_TYPES.iter().any(|(known, _)| known == t))
        .filter(|t| !p1 || (*t == AIR_RECORD_TYPE && !p2))
        .collect()
}

/// The findings that hold now, per subject, for a successful read.
#[must_use]
pub fn holding(
    state: &TenantLicences,
    settings: &FindingSettings,
    now: DateTime<Utc>,
) -> BTreeMap<String, (Subject, BTreeSet<FindingKind>)> {
    let mut found: BTreeMap<String, (Subject, BTreeSet<FindingKind>)> = BTreeMap::new();
    let horizon = Duration::days(i64::from(settings.lifecycle_days));
    for subscription in &state.snapshot.subscriptions {
        let kind = match subscription.status {
            LicenceStatus::Enabled
                if !subscription.is_trial && subscription.next_lifecycle_at.is_some_and(|at| at > now && at - now <= horizon) =>
            {
                Some(FindingKind::LifecycleDateNear)
            }
            LicenceStatus::Warning => Some(FindingKind::GracePeriod),
            LicenceStatus::Suspended => Some(FindingKind::Suspended),
            LicenceStatus::LockedOut | LicenceStatus::Deleted => Some(FindingKind::LockedOutOrDeleted),
            _ => None,
        };
        if let Some(kind) = kind {
            found.insert(subscription.id.clone(), (Subject::Subscription(subscription.clone()), BTreeSet::from([kind])));
        }
    }
    for sku in &state.snapshot.skus {
        if sku.capability_status.usable() && sku.consumed_units > sku.usable_units() {
            found.insert(sku_subject(&sku.sku_id), (Subject::Sku(sku.clone()), BTreeSet::from([FindingKind::OverAssigned])));
        }
    }
    if !unseen_record_types(&state.snapshot.working_defender_plans(), &settings.threat_record_types).is_empty() {
        found.insert(DEFENDER_SUBJECT.to_owned(), (Subject::Tenant, BTreeSet::from([FindingKind::DefenderPlanMissing])));
    }
    found
}

/// A finding that starts or stops holding with this read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The subject key (subscription id, `sku:{skuId}`, [`DEFENDER_SUBJECT`], [`CONSENT_SUBJECT`]).
    pub key: String,
    pub subject: Subject,
    pub kind: FindingKind,
    /// When it was first seen (now, for a new one).
    pub since: DateTime<Utc>,
    /// `true`: it holds now and did not before; `false`: it held and cleared.
    pub raised: bool,
}

/// What changed against the findings raised before, and the findings raised after this read.
/// `read_ok`: the read succeeded (else only the consent finding may change, the others are kept
/// as they were: a refused read says nothing about the licences). A subject no longer listed
/// clears its findings; its event describes it from `previous` (the snapshot before).
#[must_use]
pub fn transitions(
    state: &TenantLicences,
    previous: &super::LicenceSnapshot,
    settings: &FindingSettings,
    read_ok: bool,
    now: DateTime<Utc>,
) -> (Vec<Transition>, BTreeMap<String, Vec<RaisedFinding>>) {
    let mut holding = if read_ok { holding(state, settings, now) } else { BTreeMap::new() };
    if state.needs_reconsent {
        holding.insert(CONSENT_SUBJECT.to_owned(), (Subject::Tenant, BTreeSet::from([FindingKind::NeedsReconsent])));
    }
    let mut changes = Vec::new();
    let mut after = BTreeMap::new();
    let mut keys: BTreeSet<&String> = holding.keys().collect();
    keys.extend(state.raised.keys());
    for key in keys {
        let before = state.raised.get(key).map(Vec::as_slice).unwrap_or_default();
        let now_holding = holding.get(key);
        if !read_ok && key != CONSENT_SUBJECT {
            // Unknown this time: kept as raised.
            if !before.is_empty() {
                after.insert(key.clone(), before.to_vec());
            }
            continue;
        }
        let subject = now_holding.map(|(s, _)| s.clone()).unwrap_or_else(|| describe(key, state, previous));
        let mut kept = Vec::new();
        for kind in FindingKind::ALL {
            let earlier = before.iter().find(|r| r.kind == kind);
            let holds = now_holding.is_some_and(|(_, kinds)| kinds.contains(&kind));
            match (earlier, holds) {
                (Some(earlier), true) => kept.push(*earlier),
                (None, true) => {
                    changes.push(Transition { key: key.clone(), subject: subject.clone(), kind, since: now, raised: true });
                    kept.push(RaisedFinding { kind, since: now });
                }
                (Some(earlier), false) => {
                    changes.push(Transition { key: key.clone(), subject: subject.clone(), kind, since: earlier.since, raised: false });
                }
                (None, false) => {}
            }
        }
        if !kept.is_empty() {
            after.insert(key.clone(), kept);
        }
    }
    (changes, after)
}

/// The subject of a key no longer holding, from the current snapshot or the one before.
fn describe(key: &str, state: &TenantLicences, previous: &super::LicenceSnapshot) -> Subject {
    if let Some(sku_id) = key.strip_prefix("sku:") {
        let sku = state.snapshot.skus.iter().chain(&previous.skus).find(|s| s.sku_id == sku_id);
        return sku.map_or(Subject::Tenant, |s| Subject::Sku(s.clone()));
    }
    let subscription = state.snapshot.subscriptions.iter().chain(&previous.subscriptions).find(|s| s.id == key);
    subscription.map_or(Subject::Tenant, |s| Subject::Subscription(s.clone()))
}

/// Who the event is about: the customer tenant as Vigil knows it.
#[derive(Debug, Clone, Copy)]
pub struct EventTenant<'a> {
    pub tenant_id: &'a str,
    pub name: &'a str,
}

/// The event of a transition, as a record of Vigil's own (RecordType 0, Workload `Vigil`) the
/// built-in licence policies read: `Finding` names the kind, `SubscriptionId` (the subject key)
/// groups the alert, `LicenceMessage` says what is wrong in words, and the figures are facts
/// for the ticket.
#[must_use]
pub fn finding_event(
    transition: &Transition,
    tenant: EventTenant<'_>,
    state: &TenantLicences,
    settings: &FindingSettings,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let cleared = if transition.raised { "raised" } else { "cleared" };
    let mut event = serde_json::json!({
        "Id": format!("vigil-licence:{}:{}:{}:{}:{cleared}", tenant.tenant_id, transition.key, transition.kind.as_str(), transition.since.timestamp()),
        "RecordType": 0,
        "CreationTime": transition.since.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "Operation": if transition.raised { FINDING_RAISED } else { FINDING_CLEARED },
        "OrganizationId": tenant.tenant_id,
        "OrganizationName": tenant.name,
        "UserId": "Vigil",
        "Workload": "Vigil",
        "ObservedAt": now.to_rfc3339(),
        "Finding": transition.kind.as_str(),
        "SubscriptionId": transition.key,
        "LicenceMessage": message(transition, state, settings),
    });
    let fields = match &transition.subject {
        Subject::Subscription(s) => serde_json::json!({
            "Product": product_name(&s.sku_part_number),
            "SkuId": s.sku_id,
            "Status": s.status.as_str(),
            "PreviousStatus": state.previous_status(&s.id).map(LicenceStatus::as_str),
            "StatusSince": state.status_since.get(&s.id).map(DateTime::to_rfc3339),
            "NextLifecycleDateTime": s.next_lifecycle_at.map(|at| at.to_rfc3339()),
            "IsTrial": s.is_trial,
            "TotalLicences": s.total_licences,
        }),
        Subject::Sku(s) => serde_json::json!({
            "Product": product_name(&s.sku_part_number),
            "SkuId": s.sku_id,
            "Status": s.capability_status.as_str(),
            "ConsumedUnits": s.consumed_units,
            "UsableUnits": s.usable_units(),
        }),
        Subject::Tenant => {
            let unseen = unseen_record_types(&state.snapshot.working_defender_plans(), &settings.threat_record_types);
            serde_json::json!({
                "Product": "Microsoft Defender for Office 365",
                "MissingRecordTypes": record_type_names(&unseen),
                "ReadError": state.error,
            })
        }
    };
    if let (Some(event), serde_json::Value::Object(fields)) = (event.as_object_mut(), fields) {
        event.extend(fields);
    }
    event
}

/// `28 (ThreatIntelligence), 41 (ThreatIntelligenceUrl)`.
fn record_type_names(types: &[u32]) -> String {
    types
        .iter()
        .map(|t| {
            let name = THREAT_RECORD_TYPES.iter().find(|(known, _)| known == t).map_or("", |(_, name)| name);
            format!("{t} ({name})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The licence message of a transition (the seed's "licence-expiry message").
fn message(transition: &Transition, state: &TenantLicences, settings: &FindingSettings) -> String {
    let text = match &transition.subject {
        Subject::Subscription(s) => {
            let product = product_name(&s.sku_part_number);
            let was = state.previous_status(&s.id).map(|p| format!("was {}, ", p.as_str())).unwrap_or_default();
            let since = state.status_since.get(&s.id).map(|at| format!(" since {}", minute(*at))).unwrap_or_default();
            let next = s.next_lifecycle_at.map(day);
            match transition.kind {
                FindingKind::LifecycleDateNear => format!(
                    "{product}, {} licences: expires or renews on {} (Microsoft does not say whether it renews automatically; check its renewal setting).",
                    s.total_licences,
                    next.unwrap_or_default()
                ),
                _ => {
                    let then = match (s.status, next) {
                        (LicenceStatus::Warning, Some(next)) => format!(" It is disabled on {next} unless renewed."),
                        (LicenceStatus::Suspended, Some(next)) => format!(" Its data may be deleted from {next} unless it is reactivated."),
                        _ => String::new(),
                    };
                    format!(
                        "{product}, {} licences: {was}now {} ({}){since}.{then}",
                        s.total_licences,
                        s.status.as_str(),
                        s.status.meaning()
                    )
                }
            }
        }
        Subject::Sku(s) => format!(
            "{}: {} licences assigned, {} available (active and grace-period units).",
            product_name(&s.sku_part_number),
            s.consumed_units,
            s.usable_units()
        ),
        Subject::Tenant if transition.kind == FindingKind::NeedsReconsent => format!(
            "Microsoft refused to list the tenant's licences: consent for Organization.Read.All is missing; grant admin consent again. The licences last read are kept ({}).",
            state.error.as_deref().unwrap_or("access refused")
        ),
        Subject::Tenant => {
            let unseen = unseen_record_types(&state.snapshot.working_defender_plans(), &settings.threat_record_types);
            if unseen.is_empty() {
                "A Defender for Office 365 plan is working again.".to_owned()
            } else {
                format!(
                    "No working Defender for Office 365 plan for what the tenant's Threat Intelligence policies watch: Vigil can no longer see record types {}.",
                    record_type_names(&unseen)
                )
            }
        }
    };
    crate::messages::truncate_to(&text, 1000).to_owned()
}

#[cfg(test)]
#[path = "findings_tests.rs"]
mod tests;
