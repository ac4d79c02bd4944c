//! Partner-side objects as Graph sends them, for tests and the demo to seed the simulator with:
//! an active GDAP relationship, an active access assignment, a partner technician's sign-in.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

fn at(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An active, auto-extending (P180D) two-year GDAP relationship `id` with customer
/// `customer_tenant` named `customer_name`, activated `age_days` ago, granting `roles` (Entra
/// role template ids).
#[must_use]
pub fn gdap_relationship(id: &str, customer_tenant: &str, customer_name: &str, age_days: i64, roles: &[&str]) -> Value {
    let activated = Utc::now() - Duration::days(age_days);
    let roles: Vec<Value> = roles.iter().map(|r| json!({"roleDefinitionId": r})).collect();
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
        "id": id, "displayName": format!("{customer_name} support"), "duration": "P730D",
        "customer": {"tenantId": customer_tenant, "displayName": customer_name}, "accessDetails": {"unifiedRoles": roles},
        "status": "active", "autoExtendDuration": "P180D",
        "createdDateTime": at(activated - Duration::hours(2)), "lastModifiedDateTime": at(activated),
        "activatedDateTime": at(activated), "endDateTime": at(activated + Duration::days(730)),
    })
}

/// An active access assignment `id` giving one partner security group `roles`.
#[must_use]
pub fn active_assignment(id: &str, roles: &[&str]) -> Value {
    let roles: Vec<Value> = roles.iter().map(|r| json!({"roleDefinitionId": r})).collect();
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
        "id": id, "status": "active",
        "accessContainer": {"accessContainerId": "9b0e3a1c-0000-4000-8000-000000000001", "accessContainerType": "securityGroup"},
        "accessDetails": {"unifiedRoles": roles},
        "createdDateTime": at(Utc::now()), "lastModifiedDateTime": at(Utc::now())
    })
}

/// A successful sign-in `id` of technician `user` of `partner_tenant` into `customer_tenant`
/// at `when`, as both tenants' sign-in logs show it.
#[must_use]
pub fn partner_sign_in(id: &str, user: &str, partner_tenant: &str, customer_tenant: &str, when: DateTime<Utc>) -> Value {
    json!({
        "id": id, "createdDateTime": at(when), "userId": user, "userPrincipalName": format!("{user}@partner.example"),
        "homeTenantId": partner_tenant, "resourceTenantId": customer_tenant, "crossTenantAccessType": "serviceProvider",
        "status": {"errorCode": 0}
    })
}
