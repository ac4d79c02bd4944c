//! A tenant's licences for the Microsoft 365 simulator, following
//! `/work/shared/reference/licences-billing-outputs.md` §1.1–1.3:
//!
//! * `GET {base}/graph/v1.0/directory/subscriptions`: one `companySubscription` per
//!   subscription (`id`, `commerceSubscriptionId`, `skuId` as text, `skuPartNumber`, `status`,
//!   `isTrial`, `nextLifecycleDateTime`, `totalLicenses`, `createdDateTime`, `ownerTenantId`,
//!   `serviceStatus`).
//! * `GET {base}/graph/v1.0/subscribedSkus`: one `subscribedSku` per product, aggregated over
//!   its subscriptions (`id` `{tenant}_{skuId}`, `capabilityStatus` the best status of its
//!   subscriptions, `prepaidUnits` the licences of its subscriptions by status, `consumedUnits`
//!   as set, `servicePlans`, `subscriptionIds`). Deleted subscriptions add no units.
//! * Both need a Graph token of a registered tenant (else `401`) carrying
//!   `Organization.Read.All` (consented by default; [`LicenceState::set_role`] takes it away:
//!   `403 Authorization_RequestDenied`). Only `$select` is accepted (`$filter` and the rest are
//!   `400`, as Graph says for `subscribedSkus`); `$select` is not applied. Lists longer than the
//!   simulator's page size are paged with an absolute `@odata.nextLink` (`$skiptoken`; an unknown
//!   one is `400`), which real Graph may never send but clients must follow.
//! * Failures injected with [`super::M365Operation::Licences`] (429 with `Retry-After`, 503, 500).
//!
//! Every tenant starts with one active Microsoft 365 E5 subscription (Defender for Office 365
//! Plan 2 included, 25 licences of which 10 assigned, renewing in a year), so a tenant has
//! nothing to report until a test changes it. Control: subscriptions are added whole (`POST
//! /_sim/tenants/{tenant}/licence-subscriptions`), removed (`DELETE …/{id}`), moved through the
//! lifecycle (`POST /_sim/licence-subscriptions/{id}/lifecycle` `{"to": "Warning" | "Suspended" |
//! "LockedOut" | "Deleted" | "Renewed"}`: each sets the next lifecycle date as Microsoft's
//! default durations would — grace 30 days, disabled 90 days, renewed a year), the assigned
//! units set (`POST /_sim/tenants/{tenant}/licence-units` `{"sku_id", "consumed_units"}`), and
//! the role granted or revoked (`POST /_sim/tenants/{tenant}/licences-role`).

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::graph::{Caller, graph_error, json_response, option};

/// The application permission both listings need (least privileged).
pub(crate) const LICENCES_ROLE: &str = "Organization.Read.All";
/// `skuId` of Microsoft 365 E5 (`SPE_E5`), the product every tenant starts with.
pub const E5_SKU_ID: &str = "06ebc4ee-1bb5-47dd-8120-11324bc54e06";
/// `servicePlanId` of Defender for Office 365 Plan 1 (`ATP_ENTERPRISE`).
pub const DEFENDER_P1_PLAN: &str = "f20fedf3-f3c3-43c3-8267-2bfdd51c0939";
/// `servicePlanId` of Defender for Office 365 Plan 2 (`THREAT_INTELLIGENCE`).
pub const DEFENDER_P2_PLAN: &str = "8e0c0a52-6a6c-4d40-8370-dd62790dcd70";
/// `servicePlanId` of Exchange Online (Plan 1).
pub const EXCHANGE_PLAN_1: &str = "9aaf7827-d63c-4b61-89c3-182f06f82e5c";
/// Subscriptions kept per tenant (a control request past it is refused).
const MAX_SUBSCRIPTIONS: usize = 1000;

/// One subscription as a test describes it (`POST /_sim/tenants/{tenant}/licence-subscriptions`).
#[derive(Debug, Clone, Deserialize)]
pub struct SimSubscription {
    pub id: String,
    pub sku_id: String,
    pub sku_part_number: String,
    /// `Enabled`, `Warning`, `Suspended`, `LockedOut` or `Deleted`.
    #[serde(default = "enabled")]
    pub status: String,
    #[serde(default)]
    pub is_trial: bool,
    pub total_licenses: i64,
    #[serde(default)]
    pub next_lifecycle_date_time: Option<DateTime<Utc>>,
    /// `(servicePlanId, servicePlanName)` of the plans the product carries.
    #[serde(default)]
    pub service_plans: Vec<(String, String)>,
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
}

fn enabled() -> String {
    "Enabled".into()
}

const STATUSES: [&str; 5] = ["Enabled", "Warning", "Suspended", "LockedOut", "Deleted"];

/// A step of a subscription's lifecycle (`{"to": …}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LifecycleStep {
    /// Expired: grace period, 30 days.
    Warning,
    /// Disabled: 90 days before deletion.
    Suspended,
    LockedOut,
    Deleted,
    /// Renewed: `Enabled`, the next term a year away.
    Renewed,
}

/// An open `$skiptoken`.
struct Cursor {
    tenant: String,
    path: &'static str,
    offset: usize,
}

/// Licences per tenant; lives in the M365 simulator's state, behind its lock.
#[derive(Default)]
pub(crate) struct LicenceState {
    /// Subscriptions by lower-cased tenant id, in insertion order.
    subscriptions: HashMap<String, Vec<SimSubscription>>,
    /// Assigned units by (tenant, lower-cased skuId).
    consumed: HashMap<(String, String), i64>,
    /// Tenants whose default product was set up (or deliberately left out).
    initialised: HashSet<String>,
    /// Tenants where `Organization.Read.All` is not consented.
    revoked: HashSet<String>,
    pages: HashMap<String, Cursor>,
    seq: u64,
}

impl LicenceState {
    pub(crate) fn role_granted(&self, tenant_key: &str) -> bool {
        !self.revoked.contains(tenant_key)
    }

    pub(crate) fn set_role(&mut self, tenant_id: &str, granted: bool) {
        crate::graph::set_tenant(&mut self.revoked, tenant_id, !granted);
    }

    /// The tenant's subscriptions, with the default E5 product on first use.
    fn of(&mut self, tenant: &str, now: DateTime<Utc>) -> &mut Vec<SimSubscription> {
        let key = tenant.to_ascii_lowercase();
        if self.initialised.insert(key.clone()) {
            let e5 = SimSubscription {
                id: format!("e5e5e5e5-0000-4000-8000-{:012}", self.seq),
                sku_id: E5_SKU_ID.into(),
                sku_part_number: "SPE_E5".into(),
                status: "Enabled".into(),
                is_trial: false,
                total_licenses: 25,
                next_lifecycle_date_time: Some(now + Duration::days(365)),
                service_plans: vec![
                    (EXCHANGE_PLAN_1.into(), "EXCHANGE_S_ENTERPRISE".into()),
                    (DEFENDER_P2_PLAN.into(), "THREAT_INTELLIGENCE".into()),
                ],
                created_date_time: Some(now - Duration::days(30)),
            };
            self.seq += 1;
            self.consumed.insert((key.clone(), E5_SKU_ID.into()), 10);
            self.subscriptions.entry(key.clone()).or_default().push(e5);
        }
        self.subscriptions.entry(key).or_default()
    }

    /// Removes every subscription of the tenant, the default one included.
    pub(crate) fn clear(&mut self, tenant_id: &str) {
        let key = tenant_id.to_ascii_lowercase();
        self.initialised.insert(key.clone());
        self.subscriptions.remove(&key);
        self.consumed.retain(|(tenant, _), _| *tenant != key);
    }

    /// Adds a subscription, replacing one with the same id.
    pub(crate) fn add(&mut self, tenant_id: &str, subscription: SimSubscription, now: DateTime<Utc>) -> Result<(), String> {
        if !STATUSES.contains(&subscription.status.as_str()) {
            return Err(format!("status must be one of {STATUSES:?}"));
        }
        let list = self.of(tenant_id, now);
        list.retain(|s| s.id != subscription.id);
        if list.len() >= MAX_SUBSCRIPTIONS {
            return Err(format!("at most {MAX_SUBSCRIPTIONS} subscriptions per tenant"));
        }
        list.push(subscription);
        Ok(())
    }

    /// Removes a subscription; whether it was there.
    pub(crate) fn remove(&mut self, tenant_id: &str, id: &str, now: DateTime<Utc>) -> bool {
        let list = self.of(tenant_id, now);
        let before = list.len();
        list.retain(|s| s.id != id);
        list.len() != before
    }

    /// Moves a subscription (of any tenant) one step; its new status, or `None`: no such one.
    pub(crate) fn step(&mut self, id: &str, step: LifecycleStep, now: DateTime<Utc>) -> Option<String> {
        let subscription = self.subscriptions.values_mut().flatten().find(|s| s.id == id)?;
        let (status, next) = match step {
            LifecycleStep::Warning => ("Warning", Some(now + Duration::days(30))),
            LifecycleStep::Suspended => ("Suspended", Some(now + Duration::days(90))),
            LifecycleStep::LockedOut => ("LockedOut", Some(now + Duration::days(90))),
            LifecycleStep::Deleted => ("Deleted", None),
            LifecycleStep::Renewed => ("Enabled", Some(now + Duration::days(365))),
        };
        subscription.status = status.into();
        subscription.next_lifecycle_date_time = next;
        Some(status.into())
    }

    /// Sets the licences assigned of a product.
    pub(crate) fn set_consumed(&mut self, tenant_id: &str, sku_id: &str, units: i64, now: DateTime<Utc>) {
        self.of(tenant_id, now);
        self.consumed.insert((tenant_id.to_ascii_lowercase(), sku_id.to_ascii_lowercase()), units);
    }

    /// The subscription's status now (`None`: unknown).
    pub(crate) fn status(&self, id: &str) -> Option<String> {
        self.subscriptions.values().flatten().find(|s| s.id == id).map(|s| s.status.clone())
    }

    /// Answers `GET subscribedSkus` or `GET directory/subscriptions` (`path` relative to the
    /// Graph root) for the caller.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn list(
        &mut self,
        caller: Option<Caller>,
        sim_port: Option<u16>,
        path: &'static str,
        raw_query: &str,
        graph_base: &str,
        page_size: usize,
        now: DateTime<Utc>,
    ) -> Response {
        let tenant = match crate::graph::authenticate_directory_read(caller, sim_port, now, LICENCES_ROLE) {
            Ok(tenant) => tenant,
            Err(refusal) => return *refusal,
        };
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if let Some((name, _)) =
            params.iter().find(|(k, _)| !matches!(k.trim_start_matches('$').to_ascii_lowercase().as_str(), "select" | "skiptoken"))
        {
            return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &format!("Query option '{name}' is not supported."));
        }
        let offset = match option(&params, "skiptoken") {
            None => 0,
            Some(token) => match self.pages.get(&token) {
                Some(cursor) if cursor.tenant == tenant && cursor.path == path => cursor.offset,
                _ => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The $skiptoken is invalid or has expired."),
            },
        };
        let items = if path == SKUS_PATH { self.skus(&tenant, now) } else { self.companies(&tenant, now) };
        let end = (offset + page_size.max(1)).min(items.len());
        let mut body = json!({
            "@odata.context": format!("{graph_base}/v1.0/$metadata#{}", if path == SKUS_PATH { "subscribedSkus" } else { "directory/subscriptions" }),
            "value": items.get(offset..end).unwrap_or_default(),
        });
        if end < items.len() {
            self.seq += 1;
            let token = format!("lic{}", self.seq);
            self.pages.insert(token.clone(), Cursor { tenant, path, offset: end });
            body["@odata.nextLink"] = json!(format!("{graph_base}{path}?$skiptoken={token}"));
        }
        json_response(StatusCode::OK, &body)
    }

    fn companies(&mut self, tenant: &str, now: DateTime<Utc>) -> Vec<Value> {
        self.of(tenant, now)
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "commerceSubscriptionId": format!("c-{}", s.id),
                    "createdDateTime": s.created_date_time.map(time),
                    "isTrial": s.is_trial,
                    "nextLifecycleDateTime": s.next_lifecycle_date_time.map(time),
                    "ownerId": null,
                    "ownerTenantId": null,
                    "ownerType": null,
                    "serviceStatus": plans(s),
                    "skuId": s.sku_id,
                    "skuPartNumber": s.sku_part_number,
                    "status": s.status,
                    "totalLicenses": s.total_licenses,
                })
            })
            .collect()
    }

    fn skus(&mut self, tenant: &str, now: DateTime<Utc>) -> Vec<Value> {
        let subscriptions = self.of(tenant, now).clone();
        let mut order: Vec<String> = Vec::new();
        for s in &subscriptions {
            if !order.iter().any(|id| id.eq_ignore_ascii_case(&s.sku_id)) {
                order.push(s.sku_id.clone());
            }
        }
        order
            .iter()
            .map(|sku_id| {
                let mine: Vec<&SimSubscription> = subscriptions.iter().filter(|s| s.sku_id.eq_ignore_ascii_case(sku_id)).collect();
                let units = |status: &str| mine.iter().filter(|s| s.status == status).map(|s| s.total_licenses).sum::<i64>();
                let best = STATUSES.iter().find(|status| mine.iter().any(|s| s.status == **status)).copied().unwrap_or("Deleted");
                let consumed = self.consumed.get(&(tenant.to_ascii_lowercase(), sku_id.to_ascii_lowercase())).copied().unwrap_or(0);
                json!({
                    "id": format!("{tenant}_{sku_id}"),
                    "accountId": tenant,
                    "accountName": "Simulated billing account",
                    "appliesTo": "User",
                    "capabilityStatus": best,
                    "consumedUnits": consumed,
                    "prepaidUnits": {
                        "enabled": units("Enabled"),
                        "warning": units("Warning"),
                        "suspended": units("Suspended"),
                        "lockedOut": units("LockedOut"),
                    },
                    "servicePlans": plans(mine[0]),
                    "skuId": sku_id,
                    "skuPartNumber": mine[0].sku_part_number,
                    "subscriptionIds": mine.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
                })
            })
            .collect()
    }
}

/// `subscribedSkus`, relative to the Graph root.
pub(crate) const SKUS_PATH: &str = "/v1.0/subscribedSkus";
/// `directory/subscriptions`, relative to the Graph root.
pub(crate) const SUBSCRIPTIONS_PATH: &str = "/v1.0/directory/subscriptions";

fn plans(subscription: &SimSubscription) -> Vec<Value> {
    subscription
        .service_plans
        .iter()
        .map(|(id, name)| json!({"servicePlanId": id, "servicePlanName": name, "provisioningStatus": "Success", "appliesTo": "User"}))
        .collect()
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
