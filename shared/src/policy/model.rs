//! The policy model, as MSPs write it and as the built-in catalogue ships it (JSON), after
//! Microsoft 365 alert policies: name, description, category, severity, mode, scope, activity,
//! conditions, trigger, aggregation, notification, plus how the alert reads (title template,
//! facts) and, for Microsoft-raised alerts, where their own name and severity are.

use super::condition::Condition;
use super::field::FieldPath;
use crate::alert::{Category, PolicyMode, Severity};
use crate::ids::{PolicyId, TenantId};
use crate::ticket::Destination;
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
    /// For alerts Microsoft raised itself (record type 40): take the alert's name and severity
    /// from the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Passthrough>,
    #[serde(default)]
    pub notification: Notification,
}

/// Which tenants and users a policy covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[serde(deny_unknown_fields)]
pub struct Passthrough {
    pub name_field: String,
    pub severity_field: String,
}

/// Where alerts go and how many tickets a day a policy may open per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    #[serde(default = "Notification::default_destinations")]
    pub destinations: Vec<Destination>,
    /// At most this many new tickets per tenant per UTC day; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u32>,
}

impl Notification {
    fn default_destinations() -> Vec<Destination> {
        vec![Destination::ConnectWise]
    }
}

impl Default for Notification {
    fn default() -> Self {
        Self { destinations: Self::default_destinations(), daily_limit: None }
    }
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
            paths.push(("passthrough.name_field", &passthrough.name_field));
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
        if self.notification.destinations.is_empty() {
            problems.push("notification.destinations: name at least one destination".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}
