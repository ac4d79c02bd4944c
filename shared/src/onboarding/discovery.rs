//! Customers found in the MSP's partner tenant: one per customer tenant of its GDAP (and DAP)
//! relationships as last read, with each relationship's status and roles by name, and whether
//! Vigil already watches the tenant; and the bulk onboarding of several of them, whose progress
//! per customer is the path taken, each direct step's result and the state of its consent link.
//!
//! Which GDAP roles would let Vigil skip the consent link: granting the MSP app its app roles
//! in a customer tenant (an `appRoleAssignment` through Graph) needs Privileged Role
//! Administrator or Global Administrator (`shared/reference/microsoft-apis.md` §7, the
//! conservative assumption), held by an *active* relationship with an *active* access
//! assignment. Discovery marks such customers `direct_possible`; when the MSP has stored a
//! technician's delegated credential, a bulk onboarding onboards them directly
//! ([`super::direct`]) and gives the others — and any whose direct attempt Microsoft refused —
//! a consent link.

use super::LinkStatus;
use crate::ids::TenantId;
use crate::relationships::{AdminRelationship, GLOBAL_ADMINISTRATOR, RelationshipStatus, role_name};
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The Entra role template id of Privileged Role Administrator.
pub const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// One relationship of a discovered customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveredRelationship {
    pub id: String,
    pub display_name: String,
    pub status: RelationshipStatus,
    /// The roles by name (an unknown role by its template id).
    pub roles: Vec<String>,
}

/// A customer of the MSP's partner tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveredCustomer {
    pub tenant_id: TenantId,
    pub name: String,
    pub relationships: Vec<DiscoveredRelationship>,
    /// Vigil already watches the tenant.
    pub watched: bool,
    /// An active relationship with an active assignment holds Privileged Role Administrator or
    /// Global Administrator: the MSP app could be granted its roles without the customer.
    pub direct_possible: bool,
}

/// The customers of `relationships`, by name then tenant id, each marked watched when it is
/// one of `tenants`.
#[must_use]
pub fn discover(relationships: &[AdminRelationship], tenants: &[Tenant]) -> Vec<DiscoveredCustomer> {
    let watched: BTreeSet<&TenantId> = tenants.iter().map(|t| &t.tenant_id).collect();
    let mut customers: BTreeMap<TenantId, DiscoveredCustomer> = BTreeMap::new();
    for relationship in relationships {
        let customer = customers.entry(relationship.customer_tenant_id.clone()).or_insert_with(|| DiscoveredCustomer {
            tenant_id: relationship.customer_tenant_id.clone(),
            name: relationship.customer_name.clone(),
            relationships: Vec::new(),
            watched: watched.contains(&relationship.customer_tenant_id),
            direct_possible: false,
        });
        customer.direct_possible |= allows_direct_grant(relationship);
        customer.relationships.push(DiscoveredRelationship {
            id: relationship.id.clone(),
            display_name: relationship.display_name.clone(),
            status: relationship.status,
            roles: relationship.roles.iter().map(|r| role_name(r).to_owned()).collect(),
        });
    }
    let mut list: Vec<DiscoveredCustomer> = customers.into_values().collect();
    list.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.tenant_id.cmp(&b.tenant_id)));
    list
}

/// Whether the relationship lets a partner technician grant app roles in the customer tenant.
#[must_use]
pub fn allows_direct_grant(relationship: &AdminRelationship) -> bool {
    let privileged =
        |role: &String| role.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR) || role.eq_ignore_ascii_case(PRIVILEGED_ROLE_ADMINISTRATOR);
    relationship.status.grants_access()
        && relationship.has_working_assignment()
        && (relationship.kind == crate::relationships::RelationshipKind::Dap
            || relationship
                .access_assignments
                .iter()
                .any(|a| a.status == crate::relationships::AssignmentStatus::Active && a.roles.iter().any(privileged)))
}

/// How one customer of a bulk onboarding is onboarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BulkMethod {
    /// A consent link for its administrator.
    ConsentLink,
    /// Its app roles granted by the MSP's technician (GDAP), no link needed.
    Direct,
}

/// One customer of a bulk onboarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkItem {
    pub tenant_id: TenantId,
    pub name: String,
    pub method: BulkMethod,
    /// The consent link's id (none for a customer onboarded directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_id: Option<String>,
    /// The consent link to send to the customer's administrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The link's state (filled in when the job is read); `consented` for a customer onboarded
    /// directly.
    pub status: LinkStatus,
    /// The direct attempt's steps, each with Microsoft's error text when it failed (empty when
    /// none was made: no delegated credential, or roles that cannot grant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<super::direct::DirectStep>,
    /// Whether the tenant's last access test passed (`None`: not run yet).
    #[serde(default)]
    pub access_test_passed: Option<bool>,
}

/// A bulk onboarding and its progress per customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkJob {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The customers handled so far, each kept as soon as it is done.
    pub items: Vec<BulkItem>,
    /// The customers not handled yet (a job interrupted midway lists the rest here).
    #[serde(default)]
    pub remaining: Vec<TenantId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relationships::{AccessAssignment, AssignmentStatus, RelationshipKind};

    fn tenant(n: u8) -> TenantId {
        TenantId::parse(&format!("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a{n:02}")).unwrap()
    }

    fn relationship(id: &str, customer: &TenantId, name: &str, status: RelationshipStatus, roles: &[&str]) -> AdminRelationship {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        AdminRelationship {
            id: id.into(),
            display_name: format!("{name} access"),
            kind: RelationshipKind::Gdap,
            status,
            customer_tenant_id: customer.clone(),
            customer_name: name.into(),
            roles: roles.clone(),
            duration_days: Some(730),
            auto_extend_days: 0,
            created_at: Utc::now(),
            activated_at: None,
            ends_at: None,
            access_assignments: vec![AccessAssignment { id: "a".into(), status: AssignmentStatus::Active, group_id: "g".into(), roles }],
        }
    }

    fn watched_tenant(id: &TenantId) -> Tenant {
        serde_json::from_value(serde_json::json!({
            "msp_id": "acme", "tenant_id": id.to_string(), "name": "x", "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn customers_are_listed_once_with_every_relationship_and_role_names_and_whether_watched() {
        let (a, b) = (tenant(1), tenant(2));
        let relationships = vec![
            relationship("r1", &b, "Fabrikam", RelationshipStatus::Active, &["5d6b6bb7-de71-4623-b4af-96380a352509"]),
            relationship("r2", &a, "Contoso", RelationshipStatus::Active, &["f2ef992c-3afb-46b9-b7cf-a126ee74c451"]),
            relationship("r3", &b, "Fabrikam", RelationshipStatus::Expired, &["00000000-0000-0000-0000-000000000001"]),
        ];
        let found = discover(&relationships, &[watched_tenant(&a)]);
        assert_eq!(found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Contoso", "Fabrikam"]);
        assert!(found[0].watched && !found[1].watched);
        assert_eq!(found[1].relationships.len(), 2);
        assert_eq!(found[1].relationships[0].roles, ["Security Reader"]);
        assert_eq!(found[1].relationships[1].roles, ["00000000-0000-0000-0000-000000000001"], "an unknown role by id");
    }

    #[test]
    fn only_an_active_relationship_with_an_active_privileged_assignment_allows_a_direct_grant() {
        let t = tenant(3);
        assert!(allows_direct_grant(&relationship("r", &t, "C", RelationshipStatus::Active, &[PRIVILEGED_ROLE_ADMINISTRATOR])));
        assert!(allows_direct_grant(&relationship("r", &t, "C", RelationshipStatus::Active, &[GLOBAL_ADMINISTRATOR])));
        assert!(!allows_direct_grant(&relationship("r", &t, "C", RelationshipStatus::Expired, &[GLOBAL_ADMINISTRATOR])));
        assert!(!allows_direct_grant(&relationship("r", &t, "C", RelationshipStatus::Active, &["5d6b6bb7-de71-4623-b4af-96380a352509"])));
        let mut pending = relationship("r", &t, "C", RelationshipStatus::Active, &[GLOBAL_ADMINISTRATOR]);
        pending.access_assignments[0].status = AssignmentStatus::Pending;
        assert!(!allows_direct_grant(&pending), "nobody holds the role yet");
    }
}
