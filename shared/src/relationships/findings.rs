//! What is wrong with an MSP's delegated access, per relationship, as conditions that hold or
//! clear: unused for over 60 or 90 days, Global Administrator included, expiring within 30
//! days without auto-extend, approval pending for over 80 days, newly established, terminated by
//! the customer, no working access assignment. Each read of the partner tenant compares the
//! findings that hold now with those raised before ([`transitions`]): a new one becomes a
//! Vigil event the built-in policies turn into an alert, one that cleared becomes the event that
//! resolves it. Both events of one finding carry the day it was first seen as their time, so
//! they land on the same alert. AWS-free; computed against a given clock.

use super::report::{NEW_WITHIN_DAYS, REMOVE_AFTER_DAYS, ReportRow};
use super::{AdminRelationship, PartnerActivity, RelationshipStatus};
use crate::ids::TenantId;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Unused for more than this many days: the stronger of the two inactivity findings.
pub const UNUSED_LONG_DAYS: i64 = 90;
/// Ending within this many days without auto-extend.
pub const EXPIRING_WITHIN_DAYS: i64 = 30;
/// A request still awaiting the customer's approval after this many days (it expires at 90).
pub const APPROVAL_PENDING_DAYS: i64 = 80;

/// The operation of Vigil's event that a finding holds.
pub const FINDING_RAISED: &str = "Vigil.AdminRelationshipFinding";
/// The operation of Vigil's event that a finding cleared.
pub const FINDING_CLEARED: &str = "Vigil.AdminRelationshipFindingCleared";

/// One thing wrong with a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FindingKind {
    /// Access granted and not used by any partner agent for more than 60 days.
    UnusedOver60Days,
    /// … for more than 90 days.
    UnusedOver90Days,
    /// The relationship (live or awaiting approval) includes Global Administrator (DAP always).
    GlobalAdministrator,
    /// Ends within 30 days and will not auto-extend.
    ExpiringWithoutAutoExtend,
    /// The customer has not approved the request for more than 80 days.
    ApprovalPendingTooLong,
    /// Established within the last 7 days.
    NewRelationship,
    /// A relationship that granted access was terminated without Vigil removing it, and the
    /// customer has no other relationship that grants access.
    TerminatedByCustomer,
    /// Access granted but no access assignment works: nobody in the partner tenant can use it.
    NoWorkingAssignment,
}

impl FindingKind {
    /// Every kind, in order.
    pub const ALL: [FindingKind; 8] = [
        Self::UnusedOver60Days,
        Self::UnusedOver90Days,
        Self::GlobalAdministrator,
        Self::ExpiringWithoutAutoExtend,
        Self::ApprovalPendingTooLong,
        Self::NewRelationship,
        Self::TerminatedByCustomer,
        Self::NoWorkingAssignment,
    ];

    /// The name in events and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnusedOver60Days => "unused_over_60_days",
            Self::UnusedOver90Days => "unused_over_90_days",
            Self::GlobalAdministrator => "global_administrator",
            Self::ExpiringWithoutAutoExtend => "expiring_without_auto_extend",
            Self::ApprovalPendingTooLong => "approval_pending_too_long",
            Self::NewRelationship => "new_relationship",
            Self::TerminatedByCustomer => "terminated_by_customer",
            Self::NoWorkingAssignment => "no_working_assignment",
        }
    }
}

/// A finding raised on a relationship, and since when (the read that first saw it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RaisedFinding {
    pub kind: FindingKind,
    pub since: DateTime<Utc>,
}

/// Everything a read knows, to decide which findings hold.
#[derive(Debug, Clone, Copy)]
pub struct FindingInputs<'a> {
    /// The relationships just read.
    pub relationships: &'a [AdminRelationship],
    /// The relationships the read before left (to see what was terminated since).
    pub previous: &'a [AdminRelationship],
    pub activities: &'a BTreeMap<TenantId, PartnerActivity>,
    /// Findings raised before, per relationship id.
    pub raised: &'a BTreeMap<String, Vec<RaisedFinding>>,
    /// Relationships whose termination Vigil requested (not the customer's doing).
    pub removed_by_vigil: &'a BTreeSet<String>,
    pub now: DateTime<Utc>,
}

/// The findings that hold for `relationship` now.
#[must_use]
pub fn holding(relationship: &AdminRelationship, inputs: &FindingInputs<'_>) -> BTreeSet<FindingKind> {
    let now = inputs.now;
    let activity = inputs.activities.get(&relationship.customer_tenant_id).cloned().unwrap_or_default();
    let row = ReportRow::of(relationship, &activity, now);
    let live = relationship.status.grants_access();
    let ended = matches!(relationship.status, RelationshipStatus::Terminated | RelationshipStatus::Expired);
    let mut found = BTreeSet::new();
    if live && row.days_inactive > REMOVE_AFTER_DAYS {
        found.insert(FindingKind::UnusedOver60Days);
    }
    if live && row.days_inactive > UNUSED_LONG_DAYS {
        found.insert(FindingKind::UnusedOver90Days);
    }
    if (live || relationship.status == RelationshipStatus::ApprovalPending) && relationship.includes_global_administrator() {
        found.insert(FindingKind::GlobalAdministrator);
    }
    if live
        && relationship.auto_extend_days == 0
        && relationship.ends_at.is_some_and(|end| end > now && end - now <= Duration::days(EXPIRING_WITHIN_DAYS))
    {
        found.insert(FindingKind::ExpiringWithoutAutoExtend);
    }
    if relationship.status == RelationshipStatus::ApprovalPending && now - relationship.created_at > Duration::days(APPROVAL_PENDING_DAYS) {
        found.insert(FindingKind::ApprovalPendingTooLong);
    }
    if !ended && now - relationship.created_at < Duration::days(NEW_WITHIN_DAYS) {
        found.insert(FindingKind::NewRelationship);
    }
    if live && !relationship.has_working_assignment() {
        found.insert(FindingKind::NoWorkingAssignment);
    }
    if terminated_by_customer(relationship, inputs) {
        found.insert(FindingKind::TerminatedByCustomer);
    }
    found
}

/// A terminated (or terminating) relationship that Vigil did not remove, seen granting access
/// by the read before (or already raised), while the customer has no other live relationship.
fn terminated_by_customer(relationship: &AdminRelationship, inputs: &FindingInputs<'_>) -> bool {
    let terminating = matches!(
        relationship.status,
        RelationshipStatus::Terminated | RelationshipStatus::Terminating | RelationshipStatus::TerminationRequested
    );
    if !terminating || inputs.removed_by_vigil.contains(&relationship.id) {
        return false;
    }
    let was_live = inputs.previous.iter().any(|p| p.id == relationship.id && p.status.grants_access());
    let already_raised =
        inputs.raised.get(&relationship.id).is_some_and(|raised| raised.iter().any(|r| r.kind == FindingKind::TerminatedByCustomer));
    let other_access = inputs.relationships.iter().any(|other| {
        other.id != relationship.id && other.customer_tenant_id == relationship.customer_tenant_id && other.status.grants_access()
    });
    (was_live || already_raised) && !other_access
}

/// A finding that starts or stops holding with this read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition<'a> {
    pub relationship: &'a AdminRelationship,
    pub kind: FindingKind,
    /// When it was first seen (now, for a new one).
    pub since: DateTime<Utc>,
    /// `true`: it holds now and did not before; `false`: it held and cleared.
    pub raised: bool,
}

/// What changed since the findings raised before, and the findings raised after this read, per
/// relationship id (relationships with none are left out). A relationship no longer listed
/// clears its findings; its event names it as last stored (from `previous`).
#[must_use]
pub fn transitions<'a>(inputs: &FindingInputs<'a>) -> (Vec<Transition<'a>>, BTreeMap<String, Vec<RaisedFinding>>) {
    let mut changes = Vec::new();
    let mut after = BTreeMap::new();
    let mut listed = BTreeSet::new();
    for relationship in inputs.relationships {
        listed.insert(relationship.id.as_str());
        let before = inputs.raised.get(&relationship.id).map(Vec::as_slice).unwrap_or_default();
        let now_holding = holding(relationship, inputs);
        let mut kept = Vec::new();
        for kind in FindingKind::ALL {
            let earlier = before.iter().find(|r| r.kind == kind);
            match (earlier, now_holding.contains(&kind)) {
                (Some(earlier), true) => kept.push(*earlier),
                (None, true) => {
                    changes.push(Transition { relationship, kind, since: inputs.now, raised: true });
                    kept.push(RaisedFinding { kind, since: inputs.now });
                }
                (Some(earlier), false) => changes.push(Transition { relationship, kind, since: earlier.since, raised: false }),
                (None, false) => {}
            }
        }
        if !kept.is_empty() {
            after.insert(relationship.id.clone(), kept);
        }
    }
    for (id, raised) in inputs.raised {
        if listed.contains(id.as_str()) {
            continue;
        }
        if let Some(relationship) = inputs.previous.iter().find(|p| &p.id == id) {
            changes.extend(raised.iter().map(|r| Transition { relationship, kind: r.kind, since: r.since, raised: false }));
        }
    }
    (changes, after)
}

/// The event of a transition, as a record of Vigil's own (RecordType 0, Workload `Vigil`) the
/// built-in policies read: `Finding` names the kind, `RelationshipId` groups the alert, and the
/// relationship's figures are facts for the ticket.
#[must_use]
pub fn finding_event(transition: &Transition<'_>, activity: &PartnerActivity, now: DateTime<Utc>) -> serde_json::Value {
    let relationship = transition.relationship;
    let row = ReportRow::of(relationship, activity, now);
    let state = if transition.raised { "raised" } else { "cleared" };
    serde_json::json!({
        "Id": format!("vigil-adminrel:{}:{}:{}:{state}", relationship.id, transition.kind.as_str(), transition.since.timestamp()),
        "RecordType": 0,
        "CreationTime": transition.since.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "Operation": if transition.raised { FINDING_RAISED } else { FINDING_CLEARED },
        "OrganizationId": relationship.customer_tenant_id.as_str(),
        "OrganizationName": relationship.customer_name,
        "UserId": "Vigil",
        "Workload": "Vigil",
        "ObservedAt": now.to_rfc3339(),
        "Finding": transition.kind.as_str(),
        "RelationshipId": relationship.id,
        "RelationshipName": relationship.display_name,
        "RelationshipType": match relationship.kind { super::RelationshipKind::Gdap => "GDAP", super::RelationshipKind::Dap => "DAP" },
        "RelationshipStatus": serde_json::to_value(relationship.status).unwrap_or_default(),
        "Roles": relationship.roles.iter().map(|r| super::role_name(r)).collect::<Vec<_>>().join(", "),
        "IncludesGlobalAdministrator": row.includes_global_administrator,
        "DaysInactive": row.days_inactive,
        "LastPartnerSignIn": row.last_partner_sign_in.map(|at| at.to_rfc3339()),
        "EstablishedAt": row.established_at.to_rfc3339(),
        "EndsAt": row.ends_at.map(|at| at.to_rfc3339()),
        "AutoExtend": row.auto_extend,
        "ActiveAssignments": row.active_assignments,
    })
}

#[cfg(test)]
#[path = "findings_tests.rs"]
mod tests;
