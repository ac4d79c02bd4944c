//! Removing delegated admin access safely: a **preview** says, per chosen relationship, what
//! will be removed, who loses access and what stops working, and carries a one-time token; only
//! a **confirmation** with that token, within [`PREVIEW_MINUTES`], records a [`Removal`] per
//! relationship, which the poller then carries out through Graph (a `terminate` request, followed
//! until the relationship is terminated). AWS-free.

use super::{AdminRelationship, RelationshipKind, RelationshipStatus, role_name};
use crate::ids::{MspId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long a preview's token can confirm it.
pub const PREVIEW_MINUTES: i64 = 10;
/// At most this many relationships per preview.
pub const MAX_PER_PREVIEW: usize = 50;
/// The prefix of preview tokens.
pub const TOKEN_PREFIX: &str = "vrp_";

/// One relationship in a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemovalPreviewItem {
    pub relationship_id: String,
    pub relationship_name: String,
    pub kind: RelationshipKind,
    pub status: RelationshipStatus,
    pub customer_tenant_id: TenantId,
    pub customer_name: String,
    /// The roles that will be removed, by name.
    pub roles: Vec<String>,
    /// The partner tenant's security groups whose members lose access (active assignments).
    pub groups_losing_access: Vec<String>,
    /// What stops working once it is removed.
    pub consequences: Vec<String>,
    /// Who is told by e-mail once it is removed (`None`: nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// Whether Vigil can remove it; when not, `refusal` says why and confirming leaves it alone.
    pub removable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl RemovalPreviewItem {
    /// The preview of removing `relationship`; `others_live` says whether the customer keeps
    /// access through another relationship.
    #[must_use]
    pub fn of(relationship: &AdminRelationship, others_live: bool) -> Self {
        let roles: Vec<String> = relationship.roles.iter().map(|r| role_name(r).to_owned()).collect();
        let groups: Vec<String> = relationship
            .access_assignments
            .iter()
            .filter(|a| a.status == super::AssignmentStatus::Active)
            .map(|a| a.group_id.clone())
            .collect();
        let mut consequences = Vec::new();
        let refusal = match (relationship.kind, relationship.status) {
            (RelationshipKind::Dap, _) => Some(
                "DAP is removed in Partner Center (or its customer API with an app+user token); Vigil's app-only credentials cannot remove it"
                    .to_owned(),
            ),
            (_, RelationshipStatus::Active | RelationshipStatus::Expiring | RelationshipStatus::ApprovalPending) => None,
            (_, status) => Some(format!("the relationship is {} and cannot be terminated", serde_json::to_value(status).unwrap_or_default())),
        };
        if refusal.is_none() {
            if groups.is_empty() {
                consequences.push("No access assignment is active: no partner technician loses access through it.".to_owned());
            } else {
                consequences.push(format!(
                    "Members of {} partner security group(s) lose {} in {}.",
                    groups.len(),
                    if roles.is_empty() { "every role".to_owned() } else { roles.join(", ") },
                    relationship.customer_name
                ));
            }
            if others_live {
                consequences.push("The customer keeps another relationship; access through it is unchanged.".to_owned());
            } else {
                consequences.push(format!(
                    "No delegated admin access to {} remains: admin-on-behalf-of links, Partner Center service requests for it and any tool that signs in through GDAP stop working until the customer approves a new relationship.",
                    relationship.customer_name
                ));
            }
            consequences.push("Termination cannot be undone; the customer is told by Microsoft that the relationship ended.".to_owned());
        }
        Self {
            relationship_id: relationship.id.clone(),
            relationship_name: relationship.display_name.clone(),
            kind: relationship.kind,
            status: relationship.status,
            customer_tenant_id: relationship.customer_tenant_id.clone(),
            customer_name: relationship.customer_name.clone(),
            roles,
            groups_losing_access: groups,
            consequences,
            notify: None,
            removable: refusal.is_none(),
            refusal,
        }
    }
}

/// A preview waiting for its confirmation (stored under the hash of its token only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalPreview {
    pub msp_id: MspId,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub items: Vec<RemovalPreviewItem>,
    /// Who asked for it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Where a removal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RemovalStatus {
    /// Confirmed; the terminate request is not known to have reached Graph yet.
    Requested,
    /// Graph accepted the terminate request; following it to its end.
    Terminating,
    /// The relationship is terminated.
    Terminated,
    /// Graph refused or failed it (`error` says why).
    Failed,
}

/// The removal of one relationship, from confirmation to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Removal {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub msp_id: MspId,
    pub relationship_id: String,
    pub relationship_name: String,
    pub customer_tenant_id: TenantId,
    pub customer_name: String,
    pub status: RemovalStatus,
    /// Who confirmed it (and who previewed it, when someone else).
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// Graph's terminate request, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who is told by e-mail once it is terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// How telling them went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<RemovalNotification>,
}

/// Where an e-mail notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RemovalNotificationStatus {
    /// About to be sent (recorded before sending).
    Sending,
    Sent,
    /// Refused by the mail service, or e-mail is off (`error` says which).
    Failed,
    /// An attempt stopped between sending and recording the outcome: it may have gone out. Not
    /// sent again (a customer is not mailed twice).
    Unknown,
}

/// The e-mail telling the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemovalNotification {
    pub status: RemovalNotificationStatus,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The e-mail that tells a customer its delegated admin access was removed.
#[must_use]
pub fn removal_mail(removal: &Removal, msp_name: &str, to: &str) -> crate::mail::OutgoingMail {
    let when = removal.completed_at.unwrap_or(removal.requested_at).format("%Y-%m-%d %H:%M UTC");
    crate::mail::OutgoingMail {
        to: vec![to.to_owned()],
        html: None,
        subject: format!("{msp_name} removed its delegated admin access to {}", removal.customer_name),
        text: format!(
            "Hello,\n\n{msp_name} has ended its delegated admin relationship \"{}\" with {} ({}) on {when}. \
             Its technicians no longer have administrative access to your Microsoft 365 tenant through it.\n\n\
             This was done because the access was no longer needed. If you need {msp_name} to administer your tenant again, \
             they will send you a new request to approve in the Microsoft 365 admin center.\n\n\
             Relationship id: {}\n",
            removal.relationship_name, removal.customer_name, removal.customer_tenant_id, removal.relationship_id
        ),
    }
}

impl Removal {
    /// Whether it is over (terminated or failed).
    #[must_use]
    pub fn finished(&self) -> bool {
        matches!(self.status, RemovalStatus::Terminated | RemovalStatus::Failed)
    }
}

/// A relationship request's status, as Graph names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestStatus {
    Created,
    Pending,
    Succeeded,
    Failed,
    #[serde(other)]
    UnknownFutureValue,
}

/// A lifecycle request on a relationship (`delegatedAdminRelationshipRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipRequest {
    pub id: String,
    /// `lockForApproval`, `approve`, `terminate`, …
    pub action: String,
    pub status: RequestStatus,
}
