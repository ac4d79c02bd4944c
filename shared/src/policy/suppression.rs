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
    conditions.matches(&AlertView { record, alert: &alert }, &TenantContext::default())
}

/// The record's fields, plus the alert's under `Alert`: what suppression conditions see. The
/// record's fields are read where they are, not copied.
struct AlertView<'a> {
    record: &'a AuditRecord,
    alert: &'a serde_json::Value,
}

impl FieldSource for AlertView<'_> {
    fn top_field(&self, key: &str) -> Option<&serde_json::Value> {
        if key.eq_ignore_ascii_case("Alert") { Some(self.alert) } else { self.record.field(key) }
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
