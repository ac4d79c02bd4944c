//! Microsoft Graph's wire format of a tenant's licences: `GET /v1.0/subscribedSkus` (one
//! `subscribedSku` per product) and `GET /v1.0/directory/subscriptions` (one
//! `companySubscription` per purchase), as documented
//! (`shared/reference/licences-billing-outputs.md` §1.1–1.2), read into [`LicensedSku`] and
//! [`LicenceSubscription`]. Unknown statuses read as [`LicenceStatus::Unknown`]; of the service
//! plans only Defender for Office 365's, provisioned, are kept.

use super::{DefenderPlan, LicenceStatus, LicenceSubscription, LicensedSku, PrepaidUnits};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A `subscribedSku` as Graph sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSkuWire {
    pub sku_id: String,
    #[serde(default)]
    pub sku_part_number: String,
    pub capability_status: LicenceStatus,
    #[serde(default)]
    pub consumed_units: i64,
    #[serde(default)]
    pub prepaid_units: PrepaidUnitsWire,
    #[serde(default)]
    pub service_plans: Vec<ServicePlanWire>,
    #[serde(default)]
    pub subscription_ids: Vec<String>,
}

/// `prepaidUnits` (`licenseUnitsDetail`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepaidUnitsWire {
    #[serde(default)]
    pub enabled: i64,
    #[serde(default)]
    pub warning: i64,
    #[serde(default)]
    pub suspended: i64,
    #[serde(default)]
    pub locked_out: i64,
}

/// A `servicePlanInfo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlanWire {
    pub service_plan_id: String,
    #[serde(default)]
    pub provisioning_status: Option<String>,
}

/// A `companySubscription` as Graph sends it (`skuId` is text here, a GUID in
/// `subscribedSku`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanySubscriptionWire {
    pub id: String,
    #[serde(default)]
    pub sku_id: String,
    #[serde(default)]
    pub sku_part_number: String,
    pub status: LicenceStatus,
    #[serde(default)]
    pub is_trial: bool,
    #[serde(default)]
    pub next_lifecycle_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub total_licenses: i64,
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
}

impl From<SubscribedSkuWire> for LicensedSku {
    fn from(wire: SubscribedSkuWire) -> Self {
        let mut defender_plans: Vec<DefenderPlan> = wire
            .service_plans
            .iter()
            .filter(|p| p.provisioning_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("Success")))
            .filter_map(|p| DefenderPlan::of_service_plan(&p.service_plan_id))
            .collect();
        defender_plans.sort_unstable();
        defender_plans.dedup();
        let units = wire.prepaid_units;
        LicensedSku {
            sku_id: wire.sku_id,
            sku_part_number: wire.sku_part_number,
            capability_status: wire.capability_status,
            consumed_units: wire.consumed_units,
            prepaid_units: PrepaidUnits {
                enabled: units.enabled,
                warning: units.warning,
                suspended: units.suspended,
                locked_out: units.locked_out,
            },
            defender_plans,
            subscription_ids: wire.subscription_ids,
        }
    }
}

impl From<CompanySubscriptionWire> for LicenceSubscription {
    fn from(wire: CompanySubscriptionWire) -> Self {
        LicenceSubscription {
            id: wire.id,
            sku_id: wire.sku_id,
            sku_part_number: wire.sku_part_number,
            status: wire.status,
            is_trial: wire.is_trial,
            next_lifecycle_at: wire.next_lifecycle_date_time,
            total_licences: wire.total_licenses,
            created_at: wire.created_date_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relationships::wire::GraphPage;

    /// The reference's examples (§1.1, §1.2), as Graph documents them.
    const SKUS: &str = r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#subscribedSkus","value":[{"id":"0b1c_cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46","appliesTo":"User",
      "capabilityStatus":"Warning","consumedUnits":18,"skuId":"cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
      "skuPartNumber":"SPB","prepaidUnits":{"enabled":0,"warning":20,"suspended":0,"lockedOut":0},
      "servicePlans":[{"servicePlanId":"f20fedf3-f3c3-43c3-8267-2bfdd51c0939","servicePlanName":"ATP_ENTERPRISE",
        "provisioningStatus":"Success","appliesTo":"User"},{"servicePlanId":"8e0c0a52-6a6c-4d40-8370-dd62790dcd70",
        "servicePlanName":"THREAT_INTELLIGENCE","provisioningStatus":"PendingProvisioning","appliesTo":"User"}],
      "subscriptionIds":["5a1e"]}]}"#;
    const SUBSCRIPTIONS: &str = r#"{"value":[{"id":"5a1e","commerceSubscriptionId":"9f0c","createdDateTime":"2025-03-01T00:00:00Z","isTrial":false,
      "nextLifecycleDateTime":"2026-12-01T00:00:00Z","ownerTenantId":"77aa","skuId":"cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
      "skuPartNumber":"SPB","status":"Warning","totalLicenses":20,"serviceStatus":[{"servicePlanName":"EXCHANGE_S_STANDARD",
      "servicePlanId":"9aaf7827-d63c-4b61-89c3-182f06f82e5c","provisioningStatus":"Success","appliesTo":"User"}]},
      {"id":"77","status":"SomethingNew","nextLifecycleDateTime":null}]}"#;

    #[test]
    fn the_documented_subscribed_skus_read_with_units_and_only_provisioned_defender_plans() {
        let page: GraphPage<SubscribedSkuWire> = serde_json::from_str(SKUS).unwrap();
        let sku = LicensedSku::from(page.value[0].clone());
        assert_eq!(sku.capability_status, LicenceStatus::Warning);
        assert_eq!((sku.consumed_units, sku.prepaid_units.warning, sku.usable_units()), (18, 20, 20));
        assert_eq!(sku.defender_plans, vec![DefenderPlan::Plan1], "Plan 2 is still being provisioned");
        assert_eq!(sku.subscription_ids, vec!["5a1e".to_owned()]);
    }

    #[test]
    fn the_documented_subscriptions_read_and_an_unknown_status_is_kept_as_unknown() {
        let page: GraphPage<CompanySubscriptionWire> = serde_json::from_str(SUBSCRIPTIONS).unwrap();
        let subscriptions: Vec<LicenceSubscription> = page.value.into_iter().map(Into::into).collect();
        assert_eq!(subscriptions[0].status, LicenceStatus::Warning);
        assert_eq!(subscriptions[0].next_lifecycle_at.unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!((subscriptions[0].total_licences, subscriptions[0].is_trial), (20, false));
        assert_eq!((subscriptions[1].status, subscriptions[1].next_lifecycle_at), (LicenceStatus::Unknown, None));
    }
}
