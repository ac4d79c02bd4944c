//! Suppression rules: an MSP's way to say "not this again". A rule is scoped (MSP → tenant →
//! user, optionally one policy), may carry conditions over the event's fields and the alert's
//! (`Alert.PolicyId`, `Alert.Name`, `Alert.Severity`, `Alert.Category`, `Alert.Title`,
//! `Alert.GroupKey`), and may expire. A match that a live rule covers raises no alert.

use super::PolicyMatch;
use super::condition::TenantContext;
use super::field::FieldSource;
use crate::alert::Category;
use crate::audit::AuditRecord;
use crate::ids::{PolicyId, TenantId};
use crate::ports::Suppression;
use chrono::{DateTime, Utc};
use serde_json::json;

/// Whether `rule` suppresses this match of `policy_id` in `tenant_id` at `now`.
#[must_use]
pub fn suppresses(
    rule: &Suppression,
    tenant_id: &TenantId,
    policy_id: &PolicyId,
    category: Category,
    found: &PolicyMatch,
    record: &AuditRecord,
    now: DateTime<Utc>,
) -> bool {
    if rule.expires_at.is_some_and(|expiry| expiry <= now) {
        return false;
    }
    if rule.tenant_id.as_ref().is_some_and(|t| t != tenant_id) || rule.policy_id.as_ref().is_some_and(|p| p != policy_id) {
        return false;
    }
    if let Some(user) = &rule.user
        && !user.eq_ignore_ascii_case(&record.user_id)
        && !user.eq_ignore_ascii_case(&found.group_key)
    {
        return false;
    }
    let Some(conditions) = &rule.conditions else { return true };
    let alert = json!({
        "PolicyId": policy_id.as_str(),
        "Name": found.name,
        "Severity": found.severity.as_str(),
        "Category": category.as_str(),
        "Title": found.title,
        "GroupKey": found.group_key,
    });
    conditions.matches(&AlertView { record, alert: crate::tape::Doc::from_value(&alert) }, &TenantContext::default())
}

/// The record's fields, plus the alert's under `Alert`: what suppression conditions see. The
/// record's fields are read where they are, not copied.
struct AlertView<'a> {
    record: &'a AuditRecord,
    alert: crate::tape::Doc,
}

impl FieldSource for AlertView<'_> {
    fn top_field(&self, key: &str, hint: Option<&super::field::FieldHint>) -> Option<crate::tape::NodeRef<'_>> {
        if key.eq_ignore_ascii_case("Alert") { Some(self.alert.root()) } else { self.record.field_node(key, hint) }
    }
}

/// Whether `rule` keeps an alert that has no ticket yet from getting one: a live rule without
/// event conditions whose scope (tenant, policy, user or group key) covers the alert. Rules with
/// conditions over event fields only act at evaluation, where the events are.
#[must_use]
pub fn holds_back_ticket(rule: &Suppression, alert: &crate::alert::Alert, now: DateTime<Utc>) -> bool {
    rule.conditions.is_none()
        && rule.expires_at.is_none_or(|expiry| expiry > now)
        && rule.tenant_id.as_ref().is_none_or(|t| *t == alert.tenant_id)
        && rule.policy_id.as_ref().is_none_or(|p| *p == alert.policy_id)
        && rule.user.as_ref().is_none_or(|u| u.eq_ignore_ascii_case(&alert.group_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MspId;

    fn rule() -> Suppression {
        let alert = crate::contract::sample_alert(Utc::now());
        Suppression {
            id: "s".into(),
            msp_id: MspId::parse("acme").unwrap(),
            tenant_id: Some(alert.tenant_id.clone()),
            user: Some("ALICE@contoso.com".into()),
            policy_id: Some(alert.policy_id.clone()),
            conditions: None,
            expires_at: None,
            reason: "r".into(),
            author: "a".into(),
            created_at: Utc::now(),
        }
    }

    /// The tenant of `crate::contract::sample_alert`.
    const SAMPLE_TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
    const OTHER_TENANT: &str = "0badc0de-7d41-4f0e-9a51-2b7d0c9e4a11";

    fn alert_in(tenant: &str) -> crate::alert::Alert {
        crate::contract::sample_alert_for(&MspId::parse("acme").unwrap(), &TenantId::parse(tenant).unwrap(), Utc::now())
    }

    fn found(group_key: &str) -> PolicyMatch {
        PolicyMatch {
            group_key: group_key.into(),
            trigger_key: None,
            distinct: None,
            name: "Creation of forwarding/redirect rule".into(),
            severity: crate::alert::Severity::Informational,
            title: "Forwarding rule".into(),
            facts: Vec::new(),
            resolves: false,
            record_id: crate::ids::RecordId::parse("r-1").unwrap(),
            event_time: Utc::now(),
            detail: None,
        }
    }

    fn record(user: &str) -> AuditRecord {
        AuditRecord::from_value(json!({"Id": "r-1", "RecordType": 1, "CreationTime": "2026-01-05T10:00:00", "Operation": "New-InboxRule",
            "UserId": user, "ClientIP": "203.0.113.7"}))
        .unwrap()
    }

    fn suppresses_in(rule: &Suppression, tenant: &str, policy: &str, user: &str, now: DateTime<Utc>) -> bool {
        let tenant = TenantId::parse(tenant).unwrap();
        let policy = PolicyId::parse(policy).unwrap();
        suppresses(rule, &tenant, &policy, Category::ThreatManagement, &found(user), &record(user), now)
    }

    #[test]
    fn a_rule_scoped_to_one_tenant_never_suppresses_another_tenants_matches() {
        let alert = alert_in(SAMPLE_TENANT);
        let now = Utc::now();
        let policy = alert.policy_id.as_str();
        assert!(suppresses_in(&rule(), SAMPLE_TENANT, policy, "alice@contoso.com", now));
        assert!(!suppresses_in(&rule(), OTHER_TENANT, policy, "alice@contoso.com", now), "another tenant's alice is not covered");
        assert!(holds_back_ticket(&rule(), &alert, now));
        assert!(!holds_back_ticket(&rule(), &alert_in(OTHER_TENANT), now), "nor are another tenant's tickets held back");
        let tenant_wide = Suppression { user: None, policy_id: None, ..rule() };
        assert!(!suppresses_in(&tenant_wide, OTHER_TENANT, policy, "bob@fabrikam.com", now));
        assert!(!holds_back_ticket(&tenant_wide, &alert_in(OTHER_TENANT), now));
        let msp_wide = Suppression { tenant_id: None, user: None, ..rule() };
        assert!(suppresses_in(&msp_wide, OTHER_TENANT, policy, "bob@fabrikam.com", now), "no tenant: every tenant of the MSP");
        assert!(holds_back_ticket(&msp_wide, &alert_in(OTHER_TENANT), now));
    }

    #[test]
    fn a_rule_scoped_to_one_policy_or_user_leaves_the_others_alone() {
        let now = Utc::now();
        let tenant = SAMPLE_TENANT;
        let policy = rule().policy_id.unwrap();
        assert!(!suppresses_in(&rule(), tenant, "builtin.brute-force", "alice@contoso.com", now), "another policy");
        assert!(!suppresses_in(&rule(), tenant, policy.as_str(), "bob@contoso.com", now), "another user");
        let mut other_policy_alert = alert_in(tenant);
        other_policy_alert.policy_id = PolicyId::parse("builtin.brute-force").unwrap();
        assert!(!holds_back_ticket(&rule(), &other_policy_alert, now));
        let by_group_key = Suppression { user: Some("ALICE@CONTOSO.COM".into()), ..rule() };
        assert!(suppresses_in(&by_group_key, tenant, policy.as_str(), "alice@contoso.com", now), "users match in any case");
    }

    #[test]
    fn a_rule_stops_at_its_expiry() {
        let now = Utc::now();
        let tenant = SAMPLE_TENANT;
        let policy = rule().policy_id.unwrap();
        let expiring = |at| Suppression { expires_at: Some(at), ..rule() };
        assert!(suppresses_in(&expiring(now + chrono::Duration::seconds(1)), tenant, policy.as_str(), "alice@contoso.com", now));
        assert!(!suppresses_in(&expiring(now), tenant, policy.as_str(), "alice@contoso.com", now), "expired at the instant");
        assert!(holds_back_ticket(&expiring(now + chrono::Duration::seconds(1)), &alert_in(tenant), now));
    }

    #[test]
    fn conditions_decide_over_the_event_and_the_alert() {
        let now = Utc::now();
        let tenant = SAMPLE_TENANT;
        let policy = rule().policy_id.unwrap();
        let with =
            |condition| Suppression { conditions: Some(crate::policy::condition::Condition::from_json(&condition).unwrap()), ..rule() };
        let ip = with(json!({"field": "ClientIP", "op": "equals", "value": "203.0.113.7"}));
        assert!(suppresses_in(&ip, tenant, policy.as_str(), "alice@contoso.com", now));
        let other_ip = with(json!({"field": "ClientIP", "op": "equals", "value": "198.51.100.1"}));
        assert!(!suppresses_in(&other_ip, tenant, policy.as_str(), "alice@contoso.com", now));
        let by_alert = with(json!({"field": "Alert.GroupKey", "op": "equals", "value": "alice@contoso.com"}));
        assert!(suppresses_in(&by_alert, tenant, policy.as_str(), "alice@contoso.com", now));
        let by_severity = with(json!({"field": "Alert.Severity", "op": "equals", "value": "High"}));
        assert!(!suppresses_in(&by_severity, tenant, policy.as_str(), "alice@contoso.com", now));
    }

    #[test]
    fn a_rule_without_event_conditions_holds_back_the_tickets_of_alerts_it_covers() {
        let alert = crate::contract::sample_alert(Utc::now());
        let now = Utc::now();
        assert!(holds_back_ticket(&rule(), &alert, now));
        assert!(!holds_back_ticket(&Suppression { user: Some("bob@contoso.com".into()), ..rule() }, &alert, now));
        assert!(!holds_back_ticket(&Suppression { expires_at: Some(now), ..rule() }, &alert, now), "expired");
        let conditions = crate::policy::condition::Condition::from_json(&json!({"field": "ClientIP", "op": "exists"})).unwrap();
        assert!(
            !holds_back_ticket(&Suppression { conditions: Some(conditions), ..rule() }, &alert, now),
            "event conditions act at evaluation only"
        );
        assert!(holds_back_ticket(&Suppression { user: None, policy_id: None, ..rule() }, &alert, now), "a tenant-wide rule");
    }
}
