//! Fixtures of the admin-relationship tests: a fixed clock and relationships of numbered
//! customers.

use super::{AccessAssignment, AdminRelationship, AssignmentStatus, RelationshipKind, RelationshipStatus};
use crate::ids::TenantId;
use chrono::{DateTime, Duration, TimeZone, Utc};

/// The tests' now.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
}

/// Customer `n`'s tenant id.
pub(crate) fn customer(n: u32) -> TenantId {
    TenantId::parse(&format!("5e1f2c8a-7d41-4f0e-9a51-{n:012}")).unwrap()
}

/// An active GDAP relationship of customer `n`, activated `age` days before [`now`],
/// auto-extending, with one active assignment and Helpdesk Administrator.
pub(crate) fn relationship(n: u32, age: i64) -> AdminRelationship {
    let activated = now() - Duration::days(age);
    AdminRelationship {
        id: format!("rel-{n}"),
        display_name: format!("Customer {n} standard access"),
        kind: RelationshipKind::Gdap,
        status: RelationshipStatus::Active,
        customer_tenant_id: customer(n),
        customer_name: format!("Customer {n}"),
        roles: vec!["729827e3-9c14-49f7-bb1b-9608f156bbb8".into()],
        duration_days: Some(730),
        auto_extend_days: 180,
        created_at: activated - Duration::hours(1),
        activated_at: Some(activated),
        ends_at: Some(activated + Duration::days(730)),
        access_assignments: vec![AccessAssignment {
            id: "a".into(),
            status: AssignmentStatus::Active,
            group_id: "g".into(),
            roles: vec!["729827e3-9c14-49f7-bb1b-9608f156bbb8".into()],
        }],
    }
}
