//! Suppression rules: an MSP's way to say "not this again". A rule is scoped (MSP → tenant →
//! user, optionally one policy), may carry conditions over the event's fields and the alert's
//! (`Alert.PolicyId`, `Alert.Name`, `Alert.Severity`, `Alert.Category`, `Alert.Title`,
//! `Alert.GroupKey`), and may expire. A match that a live rule covers raises no alert.

use super::PolicyMatch;
use super::condition::TenantContext;
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
    let mut view = record.raw().clone();
    view.insert(
        "Alert".to_owned(),
        json!({
            "PolicyId": policy_id.as_str(),
            "Name": found.name,
            "Severity": found.severity.as_str(),
            "Category": category.as_str(),
            "Title": found.title,
            "GroupKey": found.group_key,
        }),
    );
    conditions.matches(&view, &TenantContext::default())
}
