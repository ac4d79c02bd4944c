//! An MSP's delegated admin access to its customers (GDAP relationships, and legacy DAP where
//! it is still listed), read from the MSP's own partner tenant, and the hygiene report built
//! from it: per customer the relationship's roles, access assignments, age and expiry, partner
//! technicians' sign-in activity, the inactivity bucket and what to do about it — the figures
//! Partner Center's security page shows, for every customer at once. AWS-free: the wire format
//! is read in [`wire`], the report computed in [`report`] against a given clock.

pub mod report;
pub mod wire;

use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The Entra role template id of Global Administrator.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

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
