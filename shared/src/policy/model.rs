//! The policy model, as MSPs write it and as the built-in catalogue ships it (JSON), after
//! Microsoft 365 alert policies: name, description, category, severity, mode, scope, activity,
//! conditions, trigger, aggregation, notification, plus how the alert reads (title template,
//! facts) and, for Microsoft-raised alerts, where their own name and severity are.

use super::condition::Condition;
use super::field::FieldPath;
use crate::alert::{Category, PolicyMode, Severity};
use crate::ids::{DestinationId, PolicyId, TenantId};
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

fn fifteen() -> u32 {
    15
}

fn by_user() -> Vec<String> {
    vec!["UserId".to_owned()]
}

/// An alert policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyDefinition {
    pub id: PolicyId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub mode: PolicyMode,
    #[serde(default)]
    pub scope: PolicyScope,
    pub activity: ActivityFilter,
    #[serde(default = "Condition::always")]
    pub conditions: Condition,
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default)]
    pub aggregation: Aggregation,
    /// Operations that mean the condition cleared: such a record resolves the alert of its
    /// group instead of adding a hit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolve_operations: Vec<String>,
    /// The alert's one-line title; `{Field.Path}` placeholders are filled from the first
    /// matching record (several values joined by ", ").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Facts shown on the alert and its ticket, besides user, operation, time, IP and record id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<FactTemplate>,
    /// For alerts Microsoft raised itself (record type 40, Graph security alerts): take the
    /// alert's severity, and its name when `name_field` is given, from the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Passthrough>,
    #[serde(default)]
    pub notification: Notification,
}

/// Which tenants and users a policy covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyScope {
    /// `None`: every tenant of the MSP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<TenantId>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_tenants: Vec<TenantId>,
    /// Only these acting users (`UserId`, case-insensitive); empty: everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_users: Vec<String>,
}

impl PolicyScope {
    /// Whether the tenant is covered.
    #[must_use]
    pub fn covers_tenant(&self, tenant: &TenantId) -> bool {
        !self.excluded_tenants.contains(tenant) && self.tenants.as_ref().is_none_or(|list| list.contains(tenant))
    }

    /// Whether the acting user is covered.
    #[must_use]
    pub fn covers_user(&self, user: &str) -> bool {
        (self.users.is_empty() || self.users.iter().any(|u| u.eq_ignore_ascii_case(user)))
            && !self.excluded_users.iter().any(|u| u.eq_ignore_ascii_case(user))
    }
}

/// The activity a policy looks at: record types and operations (empty: any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivityFilter {
    #[serde(default)]
    pub record_types: Vec<i64>,
    /// Compared ignoring case.
    #[serde(default)]
    pub operations: Vec<String>,
}

/// When matches become alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Every match is a hit.
    #[default]
    EveryTime,
    /// Matches are hits once `count` of them (or `count` distinct values of `distinct`) fall
    /// within a sliding `window_minutes`, per group.
    Threshold {
        count: u32,
        window_minutes: u32,
        /// The key matches are counted under (default: the aggregation's group).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        group_by: Vec<String>,
        /// Count distinct values of this field instead of matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        distinct: Option<String>,
    },
    /// Matches are hits when a group's hourly count is unusual against its own 7-day baseline
    /// (see [`super::trigger`] for the margin). No alerts during the 7-day warm-up.
    UnusualActivity {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        group_by: Vec<String>,
        /// Never fire below this many matches in the hour.
        #[serde(default = "UnusualDefaults::min_count")]
        min_count: u32,
    },
}

/// Defaults of the unusual-activity trigger.
pub struct UnusualDefaults;

impl UnusualDefaults {
    fn min_count() -> u32 {
        10
    }
}

/// How matches join alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// Matches of one group within this many minutes (epoch-aligned windows) join one alert.
    #[serde(default = "fifteen")]
    pub window_minutes: u32,
    /// Field paths whose values make the group key (default: the acting user). Empty: one group
    /// per tenant.
    #[serde(default = "by_user")]
    pub group_by: Vec<String>,
}

impl Default for Aggregation {
    fn default() -> Self {
        Self { window_minutes: fifteen(), group_by: by_user() }
    }
}

/// A fact on the alert, read from a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FactTemplate {
    pub name: String,
    pub field: String,
    /// `time`: shown as `YYYY-MM-DD HH:MM:SS` UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Where a Microsoft-raised alert keeps its own name and severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Passthrough {
    /// Where the alert's own name is; absent: the policy's name (e.g. Graph alerts, whose title
    /// is the alert's title and whose name stays the policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_field: Option<String>,
    pub severity_field: String,
}

/// Where alerts go and how many tickets a day a policy may open per tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// The MSP's destinations this policy's alerts go to, each subject to its own routing;
    /// empty (the default): every destination whose routing accepts the alert.
    /// The legacy value `connect_wise` (a PSA, before destinations were data) means the default.
    #[serde(default, deserialize_with = "destination_choice", skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<DestinationId>,
    /// At most this many new tickets per tenant per UTC day; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u32>,
    /// Microsoft's "daily notification limit": at most this many e-mails a day (UTC) per tenant
    /// to each e-mail destination; after it, no more e-mails that day for this policy (the
    /// alerts are still raised and ticketed). `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_email_limit: Option<u32>,
}

/// Reads `notification.destinations`: destination ids, with the legacy `connect_wise` dropped.
fn destination_choice<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<DestinationId>, D::Error> {
    let names: Vec<String> = Vec::deserialize(deserializer)?;
    names
        .into_iter()
        .filter(|name| name != "connect_wise")
        .map(|name| DestinationId::parse(&name).map_err(serde::de::Error::custom))
        .collect()
}

impl PolicyDefinition {
    /// Checks what serde cannot: bounds and field paths. Every problem is listed.
    ///
    /// # Errors
    /// The problems found, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("name: must not be empty".to_owned());
        }
        if self.notification.daily_email_limit == Some(0) {
            problems.push("notification.daily_email_limit: at least 1 (leave it out for no limit)".to_owned());
        }
        if !(1..=1440).contains(&self.aggregation.window_minutes) {
            problems.push("aggregation.window_minutes: must be between 1 and 1440".to_owned());
        }
        let mut paths: Vec<(&str, &str)> = self.aggregation.group_by.iter().map(|p| ("aggregation.group_by", p.as_str())).collect();
        match &self.trigger {
            Trigger::EveryTime => {}
            Trigger::Threshold { count, window_minutes, group_by, distinct } => {
                if !(1..=1000).contains(count) {
                    problems.push("trigger.count: must be between 1 and 1000".to_owned());
                }
                if !(1..=1440).contains(window_minutes) {
                    problems.push("trigger.window_minutes: must be between 1 and 1440".to_owned());
                }
                paths.extend(group_by.iter().map(|p| ("trigger.group_by", p.as_str())));
                paths.extend(distinct.iter().map(|p| ("trigger.distinct", p.as_str())));
            }
            Trigger::UnusualActivity { group_by, min_count } => {
                if *min_count == 0 {
                    problems.push("trigger.min_count: must be at least 1".to_owned());
                }
                paths.extend(group_by.iter().map(|p| ("trigger.group_by", p.as_str())));
            }
        }
        paths.extend(self.facts.iter().map(|f| ("facts.field", f.field.as_str())));
        if let Some(passthrough) = &self.passthrough {
            if let Some(name_field) = &passthrough.name_field {
                paths.push(("passthrough.name_field", name_field));
            }
            paths.push(("passthrough.severity_field", &passthrough.severity_field));
        }
        for (at, path) in paths {
            if let Err(e) = FieldPath::parse(path) {
                problems.push(format!("{at}: {e}"));
            }
        }
        if let Some(title) = &self.title
            && let Err(e) = super::Template::parse(title)
        {
            problems.push(format!("title: {e}"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// Checks the size limits of [`crate::limits`] on what an MSP writes: every text and list,
    /// the conditions, and the whole policy. Every problem is listed. Kept apart from
    /// [`Self::validate`] so that policies stored before a limit existed still compile.
    ///
    /// # Errors
    /// The limits exceeded, each naming its field.
    pub fn check_limits(&self) -> Result<(), Vec<String>> {
        use crate::limits::{self as l, LimitError};
        let scope = &self.scope;
        let tenants = scope.tenants.as_deref().unwrap_or_default();
        let mut checks: Vec<Result<(), LimitError>> = vec![
            l::chars("name", &self.name, l::POLICY_NAME_CHARS),
            l::chars("description", &self.description, l::POLICY_DESCRIPTION_CHARS),
            l::chars("title", self.title.as_deref().unwrap_or_default(), l::POLICY_TITLE_CHARS),
            l::entries("scope.tenants", tenants, l::POLICY_LIST_MAX),
            l::entries("scope.excluded_tenants", &scope.excluded_tenants, l::POLICY_LIST_MAX),
            l::list("scope.users", &scope.users, l::POLICY_LIST_MAX, l::USER_CHARS),
            l::list("scope.excluded_users", &scope.excluded_users, l::POLICY_LIST_MAX, l::USER_CHARS),
            l::entries("activity.record_types", &self.activity.record_types, l::POLICY_LIST_MAX),
            l::list("activity.operations", &self.activity.operations, l::POLICY_LIST_MAX, l::OPERATION_CHARS),
            l::list("resolve_operations", &self.resolve_operations, l::POLICY_LIST_MAX, l::OPERATION_CHARS),
            l::condition("conditions", &self.conditions, l::CONDITION_BYTES),
            l::list("aggregation.group_by", &self.aggregation.group_by, l::GROUP_BY_MAX, l::FIELD_PATH_CHARS),
            l::entries("facts", &self.facts, l::POLICY_FACTS_MAX),
            l::entries("notification.destinations", &self.notification.destinations, l::POLICY_LIST_MAX),
        ];
        match &self.trigger {
            Trigger::EveryTime => {}
            Trigger::Threshold { group_by, distinct, .. } => {
                checks.push(l::list("trigger.group_by", group_by, l::GROUP_BY_MAX, l::FIELD_PATH_CHARS));
                checks.push(l::chars("trigger.distinct", distinct.as_deref().unwrap_or_default(), l::FIELD_PATH_CHARS));
            }
            Trigger::UnusualActivity { group_by, .. } => {
                checks.push(l::list("trigger.group_by", group_by, l::GROUP_BY_MAX, l::FIELD_PATH_CHARS));
            }
        }
        for (i, fact) in self.facts.iter().enumerate() {
            checks.push(l::chars(&format!("facts[{i}].name"), &fact.name, l::FACT_NAME_CHARS));
            checks.push(l::chars(&format!("facts[{i}].field"), &fact.field, l::FIELD_PATH_CHARS));
            checks.push(l::chars(&format!("facts[{i}].format"), fact.format.as_deref().unwrap_or_default(), l::FACT_NAME_CHARS));
        }
        if let Some(passthrough) = &self.passthrough {
            checks.push(l::chars("passthrough.name_field", passthrough.name_field.as_deref().unwrap_or_default(), l::FIELD_PATH_CHARS));
            checks.push(l::chars("passthrough.severity_field", &passthrough.severity_field, l::FIELD_PATH_CHARS));
        }
        let mut problems: Vec<String> = checks.into_iter().filter_map(Result::err).map(|e| e.to_string()).collect();
        // Multi-byte text at every limit could still add up: the whole is bounded too.
        if problems.is_empty()
            && let Err(e) = l::json_bytes("policy", self, l::POLICY_BYTES)
        {
            problems.push(e.to_string());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::*;
    use serde_json::json;

    /// A policy with every text and list at its limit (ASCII).
    fn at_every_limit() -> serde_json::Value {
        let text = |n: usize| "x".repeat(n);
        let path = |i: usize| format!("F{i:03}{}", "a".repeat(FIELD_PATH_CHARS - 4));
        let tenant = |i: usize| format!("5e1f2c8a-7d41-4f0e-9a51-{i:012}");
        let user = |i: usize| format!("{i:03}{}", "u".repeat(USER_CHARS - 3));
        let operation = |i: usize| format!("{i:03}{}", "o".repeat(OPERATION_CHARS - 3));
        let values: Vec<String> = (0..CONDITION_VALUES).map(|i| format!("{i:04}{}", "v".repeat(24))).collect();
        json!({
            "id": "custom.at-every-limit", "name": text(POLICY_NAME_CHARS), "description": text(POLICY_DESCRIPTION_CHARS),
            "category": "ThreatManagement", "severity": "High",
            "scope": {"tenants": (0..POLICY_LIST_MAX).map(tenant).collect::<Vec<_>>(),
                      "excluded_tenants": (0..POLICY_LIST_MAX).map(|i| tenant(i + 1000)).collect::<Vec<_>>(),
                      "users": (0..POLICY_LIST_MAX).map(user).collect::<Vec<_>>(),
                      "excluded_users": (0..POLICY_LIST_MAX).map(user).collect::<Vec<_>>()},
            "activity": {"record_types": (0..POLICY_LIST_MAX).collect::<Vec<_>>(),
                         "operations": (0..POLICY_LIST_MAX).map(operation).collect::<Vec<_>>()},
            "conditions": {"all": [{"field": "UserId", "op": "in", "value": values}]},
            "trigger": {"type": "threshold", "count": 10, "window_minutes": 60,
                        "group_by": (0..GROUP_BY_MAX).map(path).collect::<Vec<_>>(), "distinct": path(99)},
            "aggregation": {"window_minutes": 15, "group_by": (0..GROUP_BY_MAX).map(|i| path(i + 10)).collect::<Vec<_>>()},
            "resolve_operations": (0..POLICY_LIST_MAX).map(|i| operation(i + 100)).collect::<Vec<_>>(),
            "title": text(POLICY_TITLE_CHARS),
            "facts": (0..POLICY_FACTS_MAX).map(|i| json!({"name": format!("{i:03}{}", "n".repeat(FACT_NAME_CHARS - 3)),
                                                           "field": path(i + 20), "format": "time"})).collect::<Vec<_>>(),
            "passthrough": {"name_field": path(200), "severity_field": path(201)}
        })
    }

    #[test]
    fn a_policy_at_every_limit_is_accepted_and_stays_well_under_the_item_limit() {
        let definition: PolicyDefinition = serde_json::from_value(at_every_limit()).unwrap();
        assert_eq!(definition.validate(), Ok(()));
        assert_eq!(definition.check_limits(), Ok(()));
        let size = serde_json::to_vec(&definition).unwrap().len();
        assert!(size <= POLICY_BYTES, "{size} bytes");
        const { assert!(POLICY_BYTES < 400 * 1024 / 2, "well under DynamoDB's 400 KB item limit") };
    }

    #[test]
    fn every_field_over_its_limit_is_named() {
        let mut policy = at_every_limit();
        policy["name"] = json!("x".repeat(POLICY_NAME_CHARS + 1));
        policy["facts"].as_array_mut().unwrap().push(json!({"name": "one more", "field": "UserId"}));
        policy["scope"]["users"].as_array_mut().unwrap().push(json!("bob@contoso.com"));
        policy["activity"]["operations"][3] = json!("o".repeat(OPERATION_CHARS + 1));
        policy["conditions"]["all"][0]["value"].as_array_mut().unwrap().push(json!("one-too-many"));
        let definition: PolicyDefinition = serde_json::from_value(policy).unwrap();
        assert_eq!(
            definition.check_limits().unwrap_err(),
            [
                "name: at most 256 characters",
                "scope.users: at most 100 entries",
                "activity.operations[3]: at most 128 characters",
                "conditions.all[0].value: at most 1000 entries",
                "facts: at most 30 entries",
            ]
        );
    }

    #[test]
    fn multi_byte_text_at_every_limit_is_stopped_by_the_policy_size_limit() {
        let mut policy = at_every_limit();
        let wide = |n: usize| "日".repeat(n);
        policy["description"] = json!(wide(POLICY_DESCRIPTION_CHARS));
        for list in ["users", "excluded_users"] {
            policy["scope"][list] = json!((0..POLICY_LIST_MAX).map(|i| format!("{i:03}{}", wide(USER_CHARS - 3))).collect::<Vec<_>>());
        }
        let definition: PolicyDefinition = serde_json::from_value(policy).unwrap();
        assert_eq!(definition.check_limits().unwrap_err(), [format!("policy: at most {POLICY_BYTES} bytes")]);
    }

    #[test]
    fn the_built_in_policies_are_within_the_limits() {
        for definition in crate::policy::catalogue::builtin_definitions() {
            assert_eq!(definition.check_limits(), Ok(()), "{}", definition.id);
        }
    }
}
