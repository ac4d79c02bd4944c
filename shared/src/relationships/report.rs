//! The admin-relationship report: per relationship, what Partner Center's security page shows
//! (days enabled, "60+" past 60; partner agents and sign-ins during the last day; last partner
//! sign-in; days inactive and the inactivity bucket; established in the last 7 days) plus GDAP's
//! roles, access assignments and expiry, and what to do about it; and the counts per bucket
//! across every customer. Computed against a given time, so it is the same on every run.
//!
//! Days are whole days elapsed (`floor`). A relationship with no partner sign-in seen counts
//! its inactivity from its activation (or creation, before it is active): access that was never
//! used is unused since it was granted.

use super::{AdminRelationship, PartnerActivity, RelationshipKind, RelationshipStatus};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Past this many days, "days enabled" shows as `60+` (as in Partner Center).
pub const DAYS_ENABLED_SHOWN_UP_TO: i64 = 60;
/// Inactive for more than this many days: remove the relationship.
pub const REMOVE_AFTER_DAYS: i64 = 60;
/// Established within this many days: new.
pub const NEW_WITHIN_DAYS: i64 = 7;

/// How long partner technicians have not used a customer's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InactivityBucket {
    /// Used within the last 30 days (29 days or fewer).
    #[serde(rename = "recent")]
    Recent,
    /// 30 to 60 days.
    #[serde(rename = "30_to_60_days")]
    Days30To60,
    /// 61 to 90 days.
    #[serde(rename = "60_to_90_days")]
    Days60To90,
    /// More than 90 days.
    #[serde(rename = "over_90_days")]
    Over90Days,
}

impl InactivityBucket {
    /// The bucket of `days` inactive.
    #[must_use]
    pub fn of(days: i64) -> Self {
        match days {
            ..30 => Self::Recent,
            30..=60 => Self::Days30To60,
            61..=90 => Self::Days60To90,
            _ => Self::Over90Days,
        }
    }
}

/// What to do about a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Recommendation {
    /// Unused for more than 60 days: remove it.
    Remove,
    /// It includes Global Administrator: grant the least privilege that does the job.
    LeastPrivilege,
    /// Active with no working access assignment: nobody in the partner tenant can use it; add
    /// or fix an assignment.
    FixAccessAssignment,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportRow {
    pub relationship_id: String,
    pub relationship_name: String,
    pub kind: RelationshipKind,
    pub status: RelationshipStatus,
    pub customer_tenant_id: crate::ids::TenantId,
    pub customer_name: String,
    pub roles: Vec<String>,
    pub includes_global_administrator: bool,
    /// Access assignments that are active, of all.
    pub active_assignments: usize,
    pub assignments: usize,
    /// Whole days since activation (`None` before it is active).
    pub days_enabled: Option<i64>,
    /// As Partner Center shows it: the number, or `60+` past 60.
    pub days_enabled_shown: Option<String>,
    pub established_at: DateTime<Utc>,
    pub established_last_7_days: bool,
    pub ends_at: Option<DateTime<Utc>>,
    pub auto_extend: bool,
    pub agents_last_day: u32,
    pub sign_ins_last_day: u32,
    pub last_partner_sign_in: Option<DateTime<Utc>>,
    pub days_inactive: i64,
    pub bucket: InactivityBucket,
    pub recommendations: Vec<Recommendation>,
}

/// Whole days from `from` to `to` (0 when `to` is earlier).
fn whole_days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_days().max(0)
}

impl ReportRow {
    /// The row of `relationship`, with its customer's partner `activity`, at `now`.
    #[must_use]
    pub fn of(relationship: &AdminRelationship, activity: &PartnerActivity, now: DateTime<Utc>) -> Self {
        let days_enabled = relationship.activated_at.map(|at| whole_days(at, now));
        let granted = relationship.activated_at.unwrap_or(relationship.created_at);
        let days_inactive = whole_days(activity.last_sign_in.map_or(granted, |at| at.max(granted)), now);
        let grants_access = relationship.status.grants_access();
        let mut recommendations = Vec::new();
        if grants_access && days_inactive > REMOVE_AFTER_DAYS {
            recommendations.push(Recommendation::Remove);
        }
        if relationship.includes_global_administrator() {
            recommendations.push(Recommendation::LeastPrivilege);
        }
        if grants_access && !relationship.has_working_assignment() {
            recommendations.push(Recommendation::FixAccessAssignment);
        }
        Self {
            relationship_id: relationship.id.clone(),
            relationship_name: relationship.display_name.clone(),
            kind: relationship.kind,
            status: relationship.status,
            customer_tenant_id: relationship.customer_tenant_id.clone(),
            customer_name: relationship.customer_name.clone(),
            roles: relationship.roles.clone(),
            includes_global_administrator: relationship.includes_global_administrator(),
            active_assignments: relationship.access_assignments.iter().filter(|a| a.status == super::AssignmentStatus::Active).count(),
            assignments: relationship.access_assignments.len(),
            days_enabled,
            days_enabled_shown: days_enabled
                .map(|days| if days > DAYS_ENABLED_SHOWN_UP_TO { format!("{DAYS_ENABLED_SHOWN_UP_TO}+") } else { days.to_string() }),
            established_at: relationship.created_at,
            established_last_7_days: now - relationship.created_at < Duration::days(NEW_WITHIN_DAYS),
            ends_at: relationship.ends_at,
            auto_extend: relationship.auto_extend_days > 0,
            agents_last_day: activity.agents_last_day,
            sign_ins_last_day: activity.sign_ins_last_day,
            last_partner_sign_in: activity.last_sign_in,
            days_inactive,
            bucket: InactivityBucket::of(days_inactive),
            recommendations,
        }
    }
}

/// Counts across every customer, as Partner Center's summary shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportSummary {
    /// Customers with at least one relationship that grants access now.
    pub customers_with_access: usize,
    pub relationships: usize,
    pub inactive_30_to_60_days: usize,
    pub inactive_60_to_90_days: usize,
    pub inactive_over_90_days: usize,
    pub established_last_7_days: usize,
    pub with_global_administrator: usize,
    pub without_working_assignment: usize,
    pub dap: usize,
}

impl ReportSummary {
    /// The counts of `rows`; the buckets count relationships that grant access now.
    #[must_use]
    pub fn of(rows: &[ReportRow]) -> Self {
        let live: Vec<&ReportRow> = rows.iter().filter(|r| r.status.grants_access()).collect();
        let mut customers: Vec<&crate::ids::TenantId> = live.iter().map(|r| &r.customer_tenant_id).collect();
        customers.sort();
        customers.dedup();
        let in_bucket = |bucket| live.iter().filter(|r| r.bucket == bucket).count();
        Self {
            customers_with_access: customers.len(),
            relationships: rows.len(),
            inactive_30_to_60_days: in_bucket(InactivityBucket::Days30To60),
            inactive_60_to_90_days: in_bucket(InactivityBucket::Days60To90),
            inactive_over_90_days: in_bucket(InactivityBucket::Over90Days),
            established_last_7_days: rows.iter().filter(|r| r.established_last_7_days).count(),
            with_global_administrator: live.iter().filter(|r| r.includes_global_administrator).count(),
            without_working_assignment: live.iter().filter(|r| r.recommendations.contains(&Recommendation::FixAccessAssignment)).count(),
            dap: rows.iter().filter(|r| r.kind == RelationshipKind::Dap).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relationships::test_support::{now, relationship};
    use crate::relationships::{AssignmentStatus, GLOBAL_ADMINISTRATOR};

    fn last_seen(days_ago: i64) -> PartnerActivity {
        PartnerActivity {
            last_sign_in: Some(now() - Duration::days(days_ago) - Duration::minutes(1)),
            agents_last_day: 0,
            sign_ins_last_day: 0,
        }
    }

    #[test]
    fn inactivity_falls_in_the_partner_center_buckets_at_their_edges_and_over_60_days_means_remove() {
        for (days, bucket, remove) in [
            (29, InactivityBucket::Recent, false),
            (30, InactivityBucket::Days30To60, false),
            (60, InactivityBucket::Days30To60, false),
            (61, InactivityBucket::Days60To90, true),
            (90, InactivityBucket::Days60To90, true),
            (91, InactivityBucket::Over90Days, true),
        ] {
            let row = ReportRow::of(&relationship(1, 400), &last_seen(days), now());
            assert_eq!((row.days_inactive, row.bucket), (days, bucket), "{days} days");
            assert_eq!(row.recommendations.contains(&Recommendation::Remove), remove, "{days} days");
        }
    }

    #[test]
    fn days_enabled_show_60_plus_past_60_with_the_exact_number_alongside() {
        let at_60 = ReportRow::of(&relationship(1, 60), &last_seen(0), now());
        assert_eq!((at_60.days_enabled, at_60.days_enabled_shown.as_deref()), (Some(60), Some("60")));
        let at_61 = ReportRow::of(&relationship(1, 61), &last_seen(0), now());
        assert_eq!((at_61.days_enabled, at_61.days_enabled_shown.as_deref()), (Some(61), Some("60+")));
    }

    #[test]
    fn a_relationship_established_6_days_ago_is_new_and_one_of_8_days_is_not_and_never_used_access_is_inactive_since_granted() {
        let six = ReportRow::of(&relationship(1, 6), &PartnerActivity::default(), now());
        let eight = ReportRow::of(&relationship(2, 8), &PartnerActivity::default(), now());
        assert!(six.established_last_7_days && !eight.established_last_7_days);
        assert_eq!((six.days_inactive, eight.days_inactive), (6, 8), "counted from activation when no sign-in was seen");
        let old = ReportRow::of(&relationship(3, 100), &PartnerActivity::default(), now());
        assert_eq!((old.bucket, old.last_partner_sign_in), (InactivityBucket::Over90Days, None));
    }

    #[test]
    fn global_administrator_asks_for_least_privilege_and_a_missing_assignment_for_a_fix_only_while_access_is_granted() {
        let mut admin = relationship(1, 10);
        admin.roles.push(GLOBAL_ADMINISTRATOR.into());
        assert_eq!(ReportRow::of(&admin, &last_seen(1), now()).recommendations, vec![Recommendation::LeastPrivilege]);
        let mut unassigned = relationship(2, 10);
        unassigned.access_assignments[0].status = AssignmentStatus::Error;
        assert_eq!(ReportRow::of(&unassigned, &last_seen(1), now()).recommendations, vec![Recommendation::FixAccessAssignment]);
        unassigned.status = RelationshipStatus::ApprovalPending;
        unassigned.activated_at = None;
        let pending = ReportRow::of(&unassigned, &PartnerActivity::default(), now());
        assert!(pending.recommendations.is_empty(), "a pending relationship grants nothing yet: {:?}", pending.recommendations);
        assert_eq!(pending.days_enabled, None);
        let dap = AdminRelationship { kind: RelationshipKind::Dap, roles: vec![], access_assignments: vec![], ..relationship(3, 400) };
        let dap_row = ReportRow::of(&dap, &last_seen(100), now());
        assert_eq!(
            dap_row.recommendations,
            vec![Recommendation::Remove, Recommendation::LeastPrivilege],
            "DAP is Global Administrator-equivalent"
        );
    }

    #[test]
    fn the_summary_counts_customers_buckets_and_findings_as_partner_center_does() {
        let mut admin = relationship(4, 20);
        admin.roles.push(GLOBAL_ADMINISTRATOR.into());
        let mut terminated = relationship(5, 200);
        terminated.status = RelationshipStatus::Terminated;
        let mut second_of_1 = relationship(1, 45);
        second_of_1.id = "rel-1b".into();
        let rows = vec![
            ReportRow::of(&relationship(1, 45), &last_seen(45), now()),
            ReportRow::of(&second_of_1, &last_seen(45), now()),
            ReportRow::of(&relationship(2, 75), &last_seen(75), now()),
            ReportRow::of(&relationship(3, 120), &PartnerActivity::default(), now()),
            ReportRow::of(&admin, &last_seen(2), now()),
            ReportRow::of(&terminated, &PartnerActivity::default(), now()),
            ReportRow::of(&relationship(6, 3), &PartnerActivity::default(), now()),
        ];
        let summary = ReportSummary::of(&rows);
        assert_eq!(
            summary,
            ReportSummary {
                customers_with_access: 5,
                relationships: 7,
                inactive_30_to_60_days: 2,
                inactive_60_to_90_days: 1,
                inactive_over_90_days: 1,
                established_last_7_days: 1,
                with_global_administrator: 1,
                without_working_assignment: 0,
                dap: 0,
            },
            "a terminated relationship is listed but counts in no bucket"
        );
    }

    #[test]
    fn activity_from_two_signals_keeps_the_latest_sign_in_and_does_not_add_up_the_same_sign_ins() {
        let customer_logs = PartnerActivity { last_sign_in: Some(now() - Duration::days(3)), agents_last_day: 2, sign_ins_last_day: 5 };
        let audit = PartnerActivity { last_sign_in: Some(now() - Duration::hours(2)), agents_last_day: 1, sign_ins_last_day: 1 };
        assert_eq!(
            customer_logs.merged(&audit),
            PartnerActivity { last_sign_in: Some(now() - Duration::hours(2)), agents_last_day: 2, sign_ins_last_day: 5 }
        );
    }
}
