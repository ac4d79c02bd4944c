//! Microsoft Graph's wire format of GDAP relationships
//! (`tenantRelationships/delegatedAdminRelationships`) and their access assignments
//! (`…/{id}/accessAssignments`), as documented (`shared/reference/microsoft-apis.md` §6.1),
//! read into [`AdminRelationship`]. Unknown statuses read as `UnknownFutureValue`; a
//! relationship whose customer tenant id is not a GUID is refused with the reason.

use super::{AccessAssignment, AdminRelationship, AssignmentStatus, RelationshipKind, RelationshipStatus};
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One page of a Graph collection (`delegatedAdminRelationships`, `accessAssignments`,
/// `requests`, `signIns`).
#[derive(Debug, Deserialize)]
pub struct GraphPage<T> {
    pub value: Vec<T>,
    /// The next page, when there is one.
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// A relationship as Graph sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipWire {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    pub status: RelationshipStatus,
    pub customer: CustomerWire,
    #[serde(default)]
    pub access_details: Option<AccessDetailsWire>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub auto_extend_duration: Option<String>,
    pub created_date_time: DateTime<Utc>,
    #[serde(default)]
    pub activated_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerWire {
    pub tenant_id: String,
    #[serde(default)]
    pub display_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessDetailsWire {
    #[serde(default)]
    pub unified_roles: Vec<RoleWire>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleWire {
    pub role_definition_id: String,
}

/// An access assignment as Graph sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentWire {
    pub id: String,
    pub status: AssignmentStatus,
    pub access_container: AccessContainerWire,
    #[serde(default)]
    pub access_details: Option<AccessDetailsWire>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessContainerWire {
    pub access_container_id: String,
}

/// The whole days of an ISO-8601 duration as Graph writes them (`P730D`, `P2Y`, `P180D`,
/// `PT0S`); years count 365 days and months 30. `None` for anything else.
#[must_use]
pub fn duration_days(text: &str) -> Option<u32> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut days: u64 = 0;
    let mut number = String::new();
    for c in date.chars() {
        match c {
            '0'..='9' => number.push(c),
            'Y' | 'M' | 'W' | 'D' => {
                let n: u64 = number.parse().ok()?;
                number.clear();
                days += n * match c {
                    'Y' => 365,
                    'M' => 30,
                    'W' => 7,
                    _ => 1,
                };
            }
            _ => return None,
        }
    }
    if !number.is_empty() {
        return None;
    }
    // The time part only counts whole days of hours (Graph writes PT0S for none).
    let mut seconds: u64 = 0;
    for c in time.chars() {
        match c {
            '0'..='9' => number.push(c),
            'H' | 'M' | 'S' => {
                let n: u64 = number.parse().ok()?;
                number.clear();
                seconds += n * match c {
                    'H' => 3600,
                    'M' => 60,
                    _ => 1,
                };
            }
            _ => return None,
        }
    }
    if !number.is_empty() || (date.is_empty() && time.is_empty()) {
        return None;
    }
    u32::try_from(days + seconds / 86_400).ok()
}

impl RelationshipWire {
    /// The relationship with its access assignments.
    ///
    /// # Errors
    /// When the customer's tenant id is not a GUID.
    pub fn into_relationship(self, assignments: Vec<AssignmentWire>) -> Result<AdminRelationship, String> {
        let customer_tenant_id =
            TenantId::parse(&self.customer.tenant_id).map_err(|e| format!("relationship {}: customer.tenantId: {e}", self.id))?;
        let roles =
            self.access_details.unwrap_or_default().unified_roles.into_iter().map(|r| r.role_definition_id.to_lowercase()).collect();
        let access_assignments = assignments
            .into_iter()
            .map(|a| AccessAssignment {
                id: a.id,
                status: a.status,
                group_id: a.access_container.access_container_id,
                roles: a
                    .access_details
                    .unwrap_or_default()
                    .unified_roles
                    .into_iter()
                    .map(|r| r.role_definition_id.to_lowercase())
                    .collect(),
            })
            .collect();
        Ok(AdminRelationship {
            id: self.id,
            display_name: self.display_name,
            kind: RelationshipKind::Gdap,
            status: self.status,
            customer_tenant_id,
            customer_name: self.customer.display_name,
            roles,
            duration_days: self.duration.as_deref().and_then(duration_days),
            auto_extend_days: self.auto_extend_duration.as_deref().and_then(duration_days).unwrap_or(0),
            created_at: self.created_date_time,
            activated_at: self.activated_date_time,
            ends_at: self.end_date_time,
            access_assignments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example (microsoft-apis.md §6.1), verbatim.
    const DOCUMENTED: &str = r##"{
      "@odata.context": "https://graph.microsoft.com/v1.0/tenantRelationships/$metadata#delegatedAdminRelationships",
      "value": [
        {
          "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
          "@odata.etag": "W/\"JyIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiJw==\"",
          "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11",
          "displayName": "Contoso - Vigil MSP standard access",
          "duration": "P730D",
          "customer": { "tenantId": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "displayName": "Contoso Ltd" },
          "accessDetails": { "unifiedRoles": [
            { "roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451" },
            { "roleDefinitionId": "5d6b6bb7-de71-4623-b4af-96380a352509" }
          ] },
          "status": "active",
          "autoExtendDuration": "P180D",
          "createdDateTime": "2025-03-01T10:00:00.0000000Z",
          "lastModifiedDateTime": "2025-03-02T08:15:00.0000000Z",
          "activatedDateTime": "2025-03-02T08:15:00.0000000Z",
          "endDateTime": "2027-03-02T08:15:00.0000000Z"
        }
      ]
    }"##;

    #[test]
    fn the_documented_relationship_reads_whole() {
        let page: GraphPage<RelationshipWire> = serde_json::from_str(DOCUMENTED).unwrap();
        assert_eq!(page.next_link, None);
        let assignment: AssignmentWire = serde_json::from_value(serde_json::json!({
            "id": "a1", "status": "active",
            "accessContainer": {"accessContainerId": "9b0e3a1c-0000-4000-8000-000000000001", "accessContainerType": "securityGroup"},
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": "F2EF992C-3AFB-46B9-B7CF-A126EE74C451"}]},
            "createdDateTime": "2025-03-02T08:20:00Z", "lastModifiedDateTime": "2025-03-02T08:20:00Z"
        }))
        .unwrap();
        let relationship = page.value[0].clone().into_relationship(vec![assignment]).unwrap();
        assert_eq!(relationship.customer_name, "Contoso Ltd");
        assert_eq!(relationship.status, RelationshipStatus::Active);
        assert_eq!((relationship.duration_days, relationship.auto_extend_days), (Some(730), 180));
        assert_eq!(relationship.roles.len(), 2);
        assert!(!relationship.includes_global_administrator());
        assert!(relationship.has_working_assignment());
        assert_eq!(relationship.access_assignments[0].roles, vec!["f2ef992c-3afb-46b9-b7cf-a126ee74c451"], "role ids compare lowercase");
        assert_eq!(relationship.ends_at.unwrap().to_rfc3339(), "2027-03-02T08:15:00+00:00");
    }

    #[test]
    fn a_status_graph_adds_later_reads_as_unknown_and_a_bad_customer_id_is_refused_with_its_reason() {
        let mut value: serde_json::Value = serde_json::from_str::<serde_json::Value>(DOCUMENTED).unwrap()["value"][0].clone();
        value["status"] = "somethingNew".into();
        let wire: RelationshipWire = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(wire.status, RelationshipStatus::UnknownFutureValue);
        value["customer"]["tenantId"] = "contoso".into();
        let refused = serde_json::from_value::<RelationshipWire>(value).unwrap().into_relationship(vec![]).unwrap_err();
        assert!(refused.contains("customer.tenantId"), "{refused}");
    }

    #[test]
    fn iso_durations_read_as_whole_days() {
        for (text, days) in
            [("P730D", Some(730)), ("P2Y", Some(730)), ("P180D", Some(180)), ("PT0S", Some(0)), ("P0D", Some(0)), ("P1DT24H", Some(2))]
        {
            assert_eq!(duration_days(text), days, "{text}");
        }
        for bad in ["", "P", "730D", "P7X", "P1.5D", "PT"] {
            assert_eq!(duration_days(bad), None, "{bad}");
        }
    }
}
