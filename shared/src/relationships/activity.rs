//! Partner technicians' sign-in activity per customer, from Entra ID sign-in logs
//! (`GET /beta/auditLogs/signIns`, the cross-tenant fields being documented on the beta
//! resource). Read in the MSP's partner tenant, a partner sign-in into a customer is one whose
//! `homeTenantId` is the partner and whose `resourceTenantId` is the customer; read in a
//! customer tenant it also carries `crossTenantAccessType` `serviceProvider`. Partner sign-ins are
//! told apart by tenant ids only, never by display names. Failed sign-ins are not activity.
//! AWS-free: the wire format is read here, the activity computed against a given clock.

use super::PartnerActivity;
use crate::ids::TenantId;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Sign-in logs are kept 30 days (Entra ID P1/P2): the first read looks back this far.
pub const SIGN_IN_RETENTION_DAYS: i64 = 30;

/// One sign-in as Graph lists it (the fields Vigil reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    pub created_date_time: DateTime<Utc>,
    /// The user's object id in their home tenant.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub home_tenant_id: Option<String>,
    #[serde(default)]
    pub resource_tenant_id: Option<String>,
    #[serde(default)]
    pub cross_tenant_access_type: Option<String>,
    #[serde(default)]
    pub status: Option<SignInStatus>,
}

/// A sign-in's outcome: `errorCode` 0 is success.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    #[serde(default)]
    pub error_code: Option<i64>,
}

impl SignIn {
    fn succeeded(&self) -> bool {
        self.status.as_ref().and_then(|s| s.error_code).unwrap_or(0) == 0
    }

    /// The customer this is a partner technician's sign-in into, when it is one: a user of
    /// `partner` signing in to another tenant.
    #[must_use]
    pub fn partner_sign_in_into(&self, partner: &TenantId) -> Option<TenantId> {
        let home = TenantId::parse(self.home_tenant_id.as_deref()?).ok()?;
        let resource = TenantId::parse(self.resource_tenant_id.as_deref()?).ok()?;
        (home == *partner && resource != *partner && self.succeeded()).then_some(resource)
    }
}

/// Partner activity per customer from the sign-ins of a read, merged with what was known:
/// the later last sign-in; agents and sign-ins of the last day counted from this read (which
/// always covers the last day). Customers known before and not seen now keep their last
/// sign-in and count none in the last day.
#[must_use]
pub fn activity_from_sign_ins(
    sign_ins: &[SignIn],
    partner: &TenantId,
    known: &BTreeMap<TenantId, PartnerActivity>,
    now: DateTime<Utc>,
) -> BTreeMap<TenantId, PartnerActivity> {
    let day_ago = now - Duration::days(1);
    /// What one read saw of one customer.
    #[derive(Default)]
    struct Seen {
        last: Option<DateTime<Utc>>,
        agents: BTreeSet<String>,
        sign_ins: u32,
    }
    let mut seen: BTreeMap<TenantId, Seen> = BTreeMap::new();
    for sign_in in sign_ins {
        let Some(customer) = sign_in.partner_sign_in_into(partner) else { continue };
        let entry = seen.entry(customer).or_default();
        entry.last = entry.last.max(Some(sign_in.created_date_time));
        if sign_in.created_date_time > day_ago && sign_in.created_date_time <= now {
            entry.sign_ins += 1;
            let agent = sign_in.user_id.clone().or_else(|| sign_in.user_principal_name.clone()).unwrap_or_default();
            entry.agents.insert(agent.to_ascii_lowercase());
        }
    }
    let mut merged: BTreeMap<TenantId, PartnerActivity> = known
        .iter()
        .map(|(customer, before)| (customer.clone(), PartnerActivity { agents_last_day: 0, sign_ins_last_day: 0, ..before.clone() }))
        .collect();
    for (customer, Seen { last, agents, sign_ins }) in seen {
        let entry = merged.entry(customer).or_default();
        entry.last_sign_in = entry.last_sign_in.max(last);
        entry.agents_last_day = u32::try_from(agents.len()).unwrap_or(u32::MAX);
        entry.sign_ins_last_day = sign_ins;
    }
    merged
}

/// Where a read of sign-ins starts: a day before the last successful read (so the last day is
/// always covered, with an overlap), never further back than the logs are kept.
#[must_use]
pub fn read_since(last_success: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let oldest = now - Duration::days(SIGN_IN_RETENTION_DAYS);
    last_success.map_or(oldest, |at| (at - Duration::days(1)).min(now - Duration::days(1))).max(oldest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const CONTOSO: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
    const FABRIKAM: &str = "0b7d4c2e-3f1a-4e8b-9c6d-7a5e2f1b3c4d";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    fn sign_in(user: &str, home: &str, resource: &str, hours_ago: i64, error: i64) -> SignIn {
        serde_json::from_value(json!({
            "id": format!("{user}-{hours_ago}"), "createdDateTime": (now() - Duration::hours(hours_ago)).to_rfc3339(),
            "userId": user, "userPrincipalName": format!("{user}@partner.example"), "userDisplayName": "Contoso Technician",
            "homeTenantId": home, "resourceTenantId": resource, "crossTenantAccessType": "serviceProvider",
            "status": {"errorCode": error, "failureReason": null}
        }))
        .unwrap()
    }

    fn id(text: &str) -> TenantId {
        TenantId::parse(text).unwrap()
    }

    #[test]
    fn partner_sign_ins_are_told_apart_by_tenant_ids_and_counted_per_customer_for_the_last_day() {
        let sign_ins = vec![
            sign_in("ann", PARTNER, CONTOSO, 2, 0),
            sign_in("ann", PARTNER, CONTOSO, 3, 0),
            sign_in("bob", PARTNER, CONTOSO, 20, 0),
            sign_in("bob", PARTNER, CONTOSO, 30, 0),
            sign_in("eve", PARTNER, FABRIKAM, 200, 0),
            sign_in("carl", PARTNER, FABRIKAM, 1, 50126),
            sign_in("dan", CONTOSO, CONTOSO, 1, 0),
            sign_in("ann", PARTNER, PARTNER, 1, 0),
        ];
        let activity = activity_from_sign_ins(&sign_ins, &id(PARTNER), &BTreeMap::new(), now());
        assert_eq!(activity.len(), 2, "{activity:?}");
        let contoso = &activity[&id(CONTOSO)];
        assert_eq!(contoso.last_sign_in, Some(now() - Duration::hours(2)));
        assert_eq!((contoso.agents_last_day, contoso.sign_ins_last_day), (2, 3), "ann twice and bob once in 24 hours");
        let fabrikam = &activity[&id(FABRIKAM)];
        assert_eq!(fabrikam.last_sign_in, Some(now() - Duration::hours(200)), "a failed sign-in is not activity");
        assert_eq!((fabrikam.agents_last_day, fabrikam.sign_ins_last_day), (0, 0));
    }

    #[test]
    fn what_was_known_keeps_its_last_sign_in_and_a_later_one_wins() {
        let earlier = PartnerActivity { last_sign_in: Some(now() - Duration::days(40)), agents_last_day: 3, sign_ins_last_day: 9 };
        let later = PartnerActivity { last_sign_in: Some(now() - Duration::hours(1)), agents_last_day: 1, sign_ins_last_day: 1 };
        let known = BTreeMap::from([(id(CONTOSO), earlier.clone()), (id(FABRIKAM), later)]);
        let activity = activity_from_sign_ins(&[sign_in("ann", PARTNER, CONTOSO, 5, 0)], &id(PARTNER), &known, now());
        assert_eq!(activity[&id(CONTOSO)].last_sign_in, Some(now() - Duration::hours(5)));
        assert_eq!(
            activity[&id(FABRIKAM)],
            PartnerActivity { last_sign_in: Some(now() - Duration::hours(1)), ..PartnerActivity::default() }
        );
    }

    #[test]
    fn a_read_covers_the_last_day_overlaps_the_one_before_and_never_goes_past_the_logs_retention() {
        assert_eq!(read_since(None, now()), now() - Duration::days(30));
        assert_eq!(read_since(Some(now() - Duration::hours(25)), now()), now() - Duration::hours(49));
        assert_eq!(read_since(Some(now() - Duration::minutes(10)), now()), now() - Duration::days(1) - Duration::minutes(10));
        assert_eq!(read_since(Some(now() - Duration::days(90)), now()), now() - Duration::days(30));
    }
}
