//! An MSP's delegated admin access to its customers (GDAP relationships, and legacy DAP where
//! it is still listed), read from the MSP's own partner tenant, and the hygiene report built
//! from it: per customer the relationship's roles, access assignments, age and expiry, partner
//! technicians' sign-in activity, the inactivity bucket and what to do about it — the figures
//! Partner Center's security page shows, for every customer at once. AWS-free: the wire format
//! is read in [`wire`], the report computed in [`report`] against a given clock.

pub mod activity;
pub mod findings;
pub mod removal;
pub mod report;
#[cfg(test)]
mod test_support;
pub mod wire;

use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The Entra role template id of Global Administrator.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Names of well-known Entra built-in role template ids (the same in every tenant), for reports
/// and tickets; a role not listed shows as its id.
const ROLE_NAMES: [(&str, &str); 20] = [
    (GLOBAL_ADMINISTRATOR, "Global Administrator"),
    ("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator"),
    ("7be44c8a-adaf-4e2a-84d6-ab2649e08a13", "Privileged Authentication Administrator"),
    ("194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator"),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader"),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator"),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    ("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator"),
    ("f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "SharePoint Administrator"),
    ("69091246-20e8-4a56-aa4d-066075b2a7a8", "Teams Administrator"),
    ("3a2c62db-5318-420d-8d74-23affee5d9d5", "Intune Administrator"),
    ("b0f54661-2d74-4c50-afa3-1ec803f12efe", "Billing Administrator"),
    ("4d6ac14f-3453-41d0-bef9-a3e0c569773a", "License Administrator"),
    ("f023fd81-a637-4b56-95fd-791ac0226033", "Service Support Administrator"),
    ("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator"),
    ("158c047a-c907-4556-b7ef-446551a6b5f7", "Cloud Application Administrator"),
    ("c4e39bd9-1100-46d3-8c65-fb160da0071f", "Authentication Administrator"),
    ("b1be1c3e-b65d-4f19-8427-f6fa0d97feb9", "Conditional Access Administrator"),
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
];

/// The name of an Entra role template id, or the id itself when it is not a well-known one.
#[must_use]
pub fn role_name(role_id: &str) -> &str {
    ROLE_NAMES.iter().find(|(id, _)| id.eq_ignore_ascii_case(role_id)).map_or(role_id, |(_, name)| name)
}

/// How the MSP holds admin access to a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RelationshipKind {
    /// Granular delegated admin privileges: named roles, a duration, access assignments.
    Gdap,
    /// Legacy delegated admin privileges: Global Administrator-equivalent for every admin agent.
    Dap,
}

/// A GDAP relationship's status, as Graph names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RelationshipStatus {
    Activating,
    Active,
    ApprovalPending,
    Approved,
    Created,
    Expired,
    Expiring,
    Terminated,
    Terminating,
    TerminationRequested,
    /// A status Graph added after this was written.
    #[serde(other)]
    UnknownFutureValue,
}

impl RelationshipStatus {
    /// Whether the relationship grants access now.
    #[must_use]
    pub fn grants_access(self) -> bool {
        matches!(self, Self::Active | Self::Expiring)
    }
}

/// An access assignment's status, as Graph names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AssignmentStatus {
    Pending,
    Active,
    Deleting,
    Deleted,
    Error,
    #[serde(other)]
    UnknownFutureValue,
}

/// Which of the partner's security groups gets which roles in the customer tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessAssignment {
    pub id: String,
    pub status: AssignmentStatus,
    /// The partner tenant's security group (object id).
    pub group_id: String,
    /// Entra role template ids.
    pub roles: Vec<String>,
}

/// One delegated admin relationship of the MSP with a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminRelationship {
    /// Graph's id (`{guid}-{guid}`); for DAP, `dap-{customer tenant id}`.
    pub id: String,
    pub display_name: String,
    pub kind: RelationshipKind,
    pub status: RelationshipStatus,
    pub customer_tenant_id: TenantId,
    pub customer_name: String,
    /// Entra role template ids the relationship grants (DAP: none listed; it is Global
    /// Administrator-equivalent).
    pub roles: Vec<String>,
    /// The relationship's length, in days (`duration`), when known.
    pub duration_days: Option<u32>,
    /// Days added at each auto-extension; 0: no auto-extend.
    pub auto_extend_days: u32,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub access_assignments: Vec<AccessAssignment>,
}

impl AdminRelationship {
    /// Whether the relationship includes Global Administrator (DAP always does).
    #[must_use]
    pub fn includes_global_administrator(&self) -> bool {
        self.kind == RelationshipKind::Dap || self.roles.iter().any(|role| role.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR))
    }

    /// Whether someone in the partner tenant actually gets access: an access assignment that
    /// is active (DAP needs none).
    #[must_use]
    pub fn has_working_assignment(&self) -> bool {
        self.kind == RelationshipKind::Dap || self.access_assignments.iter().any(|a| a.status == AssignmentStatus::Active)
    }
}

/// How the last read of the MSP's partner tenant went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelationshipRefreshState {
    /// When the read ended.
    pub at: DateTime<Utc>,
    /// Relationships read (the last successful read's count when this one failed).
    pub relationships: usize,
    /// Why it failed; `None`: it worked.
    pub error: Option<String>,
    /// When the last successful read ended.
    pub last_success: Option<DateTime<Utc>>,
    /// Why partner sign-ins could not be read (the app lacks `AuditLog.Read.All`, the tenant
    /// lacks Entra ID P1/P2); `None`: they were, or never tried.
    #[serde(default)]
    pub activity_error: Option<String>,
}

/// Partner technicians' activity in one customer tenant, from whatever signals Vigil has
/// (customer sign-in logs, the partner's outbound sign-ins, audit records of partner
/// technicians), merged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartnerActivity {
    /// The latest partner sign-in (or technician action) seen.
    pub last_sign_in: Option<DateTime<Utc>>,
    /// Distinct partner agents who signed in during the last day.
    pub agents_last_day: u32,
    /// Partner sign-ins during the last day.
    pub sign_ins_last_day: u32,
}

impl PartnerActivity {
    /// Both signals together: the later last sign-in, and the larger of the last day's counts
    /// (two views of the same sign-ins are not added up).
    #[must_use]
    pub fn merged(self, other: &PartnerActivity) -> PartnerActivity {
        PartnerActivity {
            last_sign_in: self.last_sign_in.max(other.last_sign_in),
            agents_last_day: self.agents_last_day.max(other.agents_last_day),
            sign_ins_last_day: self.sign_ins_last_day.max(other.sign_ins_last_day),
        }
    }
}
