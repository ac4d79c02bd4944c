//! Alert policies and the engine that evaluates audit records against them.
//!
//! A policy ([`model::PolicyDefinition`]) names an activity (record types and operations), the
//! [`condition::Condition`]s under which a record matches, a [`model::Trigger`] (every time,
//! threshold, unusual activity), how matches aggregate into alerts, and how the alert reads.
//! The engine compiles a tenant's policies once (index by record type, conditions compiled) and
//! turns each record into [`PolicyMatch`]es; [`crate::services::evaluate`] applies triggers,
//! suppressions and aggregation.

pub mod catalogue;
pub mod condition;
pub mod field;
pub mod model;
mod plan;
pub mod suppression;
pub mod trigger;

use crate::alert::{ActivityEntry, AggregationWindow, Alert, AlertDetail, AlertStatus, Entities, Fact, HitDetail, Severity, Triage};
use crate::audit::AuditRecord;
use crate::ids::{AlertId, MspId, PolicyId, RecordId, TenantId};
use chrono::{DateTime, Utc};
use condition::TenantContext;
use field::FieldPath;
use model::{PolicyDefinition, Trigger};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The built-in that Microsoft Graph security alerts go through (see [`graph_alert_record`]);
/// the id the pass-through had before it was a catalogue policy, so alert ids stay the same.
pub const DEFENDER_POLICY: &str = "builtin.defender-alert";

/// A title template: text with `{Field.Path}` placeholders.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone)]
enum TemplatePart {
    Text(String),
    /// Alternatives: the first path with a value.
    Field(Vec<FieldPath>),
}

impl Template {
    /// Parses `Mail forwarding to {Parameters.ForwardTo|Parameters.RedirectTo} by {UserId}`
    /// (`|` separates alternatives: the first with a value is used).
    ///
    /// # Errors
    /// An unclosed `{` or an invalid path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("unclosed {{ in {text:?}"))? + open;
            let alternatives = rest[open + 1..close].split('|').map(FieldPath::parse).collect::<Result<Vec<_>, _>>()?;
            parts.push(TemplatePart::Field(alternatives));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The text with each placeholder replaced by the field's values (or `?`).
    #[must_use]
    pub fn render(&self, record: &AuditRecord) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::Field(paths) => {
                    out.push_str(&paths.iter().find_map(|path| joined(path, record)).unwrap_or_else(|| "?".to_owned()));
                }
            }
        }
        out
    }
}

/// Every value of a path joined by ", ".
fn joined(path: &FieldPath, record: &AuditRecord) -> Option<String> {
    let mut out = String::new();
    path.visit(record, &mut |text| {
        if !text.is_empty() {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(text);
        }
        std::ops::ControlFlow::Continue(())
    });
    if out.is_empty() { None } else { Some(out) }
}

/// How a compiled policy decides hits.
#[derive(Debug, Clone)]
pub enum CompiledTrigger {
    EveryTime,
    Threshold { count: u32, window: chrono::Duration, group_by: Vec<FieldPath>, distinct: Option<FieldPath> },
    UnusualActivity { group_by: Vec<FieldPath>, min_count: u32 },
}

/// A policy ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub definition: Arc<PolicyDefinition>,
    operations: Vec<String>,
    resolve_operations: Vec<String>,
    group_by: Vec<FieldPath>,
    pub trigger: CompiledTrigger,
    pub aggregation: AggregationWindow,
    title: Option<Template>,
    facts: Vec<(String, FieldPath, bool)>,
    passthrough: Option<(Option<FieldPath>, FieldPath)>,
}

fn paths(list: &[String]) -> Result<Vec<FieldPath>, String> {
    list.iter().map(|p| FieldPath::parse(p)).collect()
}

impl CompiledPolicy {
    /// Compiles a definition.
    ///
    /// # Errors
    /// The definition's validation problems, joined.
    pub fn compile(definition: Arc<PolicyDefinition>) -> Result<Self, String> {
        definition.validate().map_err(|problems| problems.join("; "))?;
        let group_by = paths(&definition.aggregation.group_by)?;
        let trigger = match &definition.trigger {
            Trigger::EveryTime => CompiledTrigger::EveryTime,
            Trigger::Threshold { count, window_minutes, group_by: by, distinct } => CompiledTrigger::Threshold {
                count: *count,
                window: chrono::Duration::minutes(i64::from(*window_minutes)),
                group_by: if by.is_empty() { group_by.clone() } else { paths(by)? },
                distinct: distinct.as_deref().map(FieldPath::parse).transpose()?,
            },
            Trigger::UnusualActivity { group_by: by, min_count } => CompiledTrigger::UnusualActivity {
                group_by: if by.is_empty() { group_by.clone() } else { paths(by)? },
                min_count: *min_count,
            },
        };
        Ok(Self {
            operations: definition.activity.operations.iter().map(|o| o.to_lowercase()).collect(),
            resolve_operations: definition.resolve_operations.iter().map(|o| o.to_lowercase()).collect(),
            group_by,
            trigger,
            aggregation: AggregationWindow::minutes(i64::from(definition.aggregation.window_minutes)),
            title: definition.title.as_deref().map(Template::parse).transpose()?,
            facts: definition
                .facts
                .iter()
                .map(|f| FieldPath::parse(&f.field).map(|p| (f.name.clone(), p, f.format.as_deref() == Some("time"))))
                .collect::<Result<_, _>>()?,
            passthrough: definition
                .passthrough
                .as_ref()
                .map(|p| {
                    Ok::<_, String>((p.name_field.as_deref().map(FieldPath::parse).transpose()?, FieldPath::parse(&p.severity_field)?))
                })
                .transpose()?,
            definition,
        })
    }

    /// The policy id.
    #[must_use]
    pub fn id(&self) -> &PolicyId {
        &self.definition.id
    }

    fn operation_matches(&self, operation: &str) -> bool {
        self.operations.is_empty() || self.operations.iter().any(|o| o.eq_ignore_ascii_case(operation))
    }

    /// Evaluates one record: `None` unless it is in scope, of the activity and meets the
    /// conditions.
    #[must_use]
    pub fn evaluate(&self, scope: &TenantScope<'_>, record: &AuditRecord) -> Option<PolicyMatch> {
        let definition = &*self.definition;
        if !definition.activity.record_types.is_empty() && !definition.activity.record_types.contains(&record.record_type) {
            return None;
        }
        let resolves = self.resolves(record);
        if !resolves && !self.operation_matches(&record.operation) {
            return None;
        }
        self.evaluate_with(record, resolves, || self.definition.conditions.matches(record, &scope.context))
    }

    /// Whether the record's operation is one of the policy's resolve operations.
    fn resolves(&self, record: &AuditRecord) -> bool {
        !self.resolve_operations.is_empty() && self.resolve_operations.iter().any(|o| o.eq_ignore_ascii_case(&record.operation))
    }

    /// [`Self::evaluate`] for a record whose type and operation are known to be the policy's
    /// (the engine's index chose it), with the conditions answered by `conditions` (the
    /// engine's plan).
    fn evaluate_with(&self, record: &AuditRecord, resolves: bool, conditions: impl FnOnce() -> bool) -> Option<PolicyMatch> {
        let definition = &*self.definition;
        if !definition.scope.covers_user(&record.user_id) || !conditions() {
            return None;
        }
        let key = |paths: &[FieldPath]| -> String {
            if paths.is_empty() {
                return "tenant".to_owned();
            }
            let mut key = String::with_capacity(64);
            for (i, p) in paths.iter().enumerate() {
                if i > 0 {
                    key.push('|');
                }
                // The first value, lowercase; the same address with and without a port is one key.
                p.visit(record, &mut |text| {
                    let text = if p.is_ip_field() { crate::audit::client_ip_text(text).unwrap_or(text) } else { text };
                    if text.is_ascii() {
                        let start = key.len();
                        key.push_str(text);
                        key[start..].make_ascii_lowercase();
                    } else {
                        key.push_str(&text.to_lowercase());
                    }
                    std::ops::ControlFlow::Break(())
                });
            }
            // Keys come from record values of any length; alert ids, trigger state and
            // suppressions see the bounded key only.
            crate::limits::bounded_key(key)
        };
        let group_key = key(&self.group_by);
        // A trigger grouped like the alert (the usual case) has the same key: built once.
        let trigger_key = |paths: &[FieldPath]| if paths == self.group_by.as_slice() { group_key.clone() } else { key(paths) };
        let (trigger_key, distinct) = match &self.trigger {
            CompiledTrigger::EveryTime => (None, None),
            CompiledTrigger::Threshold { group_by, distinct, .. } => (
                Some(trigger_key(group_by)),
                distinct.as_ref().map(|d| crate::limits::bounded_key(d.first_text(record).unwrap_or_default().to_lowercase())),
            ),
            CompiledTrigger::UnusualActivity { group_by, .. } => (Some(trigger_key(group_by)), None),
        };
        let (name, severity) = match &self.passthrough {
            Some((name_path, severity_path)) => (
                name_path
                    .as_ref()
                    .and_then(|path| path.first_text(record))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| definition.name.clone()),
                severity_path.first_text(record).and_then(|s| parse_severity(&s)).unwrap_or(definition.severity),
            ),
            None => (definition.name.clone(), definition.severity),
        };
        let mut found = PolicyMatch {
            group_key,
            trigger_key,
            distinct,
            name,
            severity,
            title: String::new(),
            facts: Vec::new(),
            resolves,
            record_id: record.id.clone(),
            event_time: record.creation_time,
            detail: None,
        };
        // Threshold and unusual-activity matches are only counted until they fire: what an
        // alert shows is built for them when they do (see `describe`).
        if matches!(self.trigger, CompiledTrigger::EveryTime) || resolves {
            self.describe(record, &mut found);
        }
        Some(found)
    }

    /// Like [`Self::evaluate`], with the title, facts and details always built.
    #[must_use]
    pub fn evaluate_described(&self, scope: &TenantScope<'_>, record: &AuditRecord) -> Option<PolicyMatch> {
        let mut found = self.evaluate(scope, record)?;
        self.describe(record, &mut found);
        Some(found)
    }

    /// Builds what the alert shows of a match (title, facts, activity, entities), once.
    pub fn describe(&self, record: &AuditRecord, found: &mut PolicyMatch) {
        if found.detail.is_some() {
            return;
        }
        found.title = match &self.title {
            Some(template) => template.render(record),
            None => format!("{}: {} by {}", found.name, record.operation, actor(record)),
        };
        let mut facts = common_facts(record);
        let insert_at = facts.len() - 1;
        let extra: Vec<Fact> = self
            .facts
            .iter()
            .filter_map(|(fact_name, path, time)| {
                joined(path, record).map(|v| Fact::new(fact_name.clone(), if *time { format_time(&v) } else { v }))
            })
            .collect();
        facts.splice(insert_at..insert_at, extra);
        found.facts = facts;
        found.detail = Some(HitDetail {
            activity: ActivityEntry {
                record_id: record.id.clone(),
                time: record.creation_time,
                operation: record.operation.clone(),
                user: actor(record),
                client_ip: record.client_ip(),
                summary: found.title.clone(),
            },
            entities: entities_of(record),
        });
    }

    /// The alert a match belongs to when its aggregation window is the one containing `anchor`
    /// (the match's own time, or the time a threshold was crossed).
    #[must_use]
    pub fn alert_for(&self, scope: &TenantScope<'_>, found: &PolicyMatch, anchor: DateTime<Utc>, now: DateTime<Utc>) -> Alert {
        let (window_start, window_end) = self.aggregation.containing(anchor);
        let id = AlertId::derive(&[
            scope.msp_id.as_str(),
            scope.tenant_id.as_str(),
            self.id().as_str(),
            &found.group_key,
            &window_start.timestamp().to_string(),
        ]);
        Alert {
            id,
            msp_id: scope.msp_id.clone(),
            tenant_id: scope.tenant_id.clone(),
            tenant_name: scope.tenant_name.to_owned(),
            policy_id: self.id().clone(),
            policy_name: found.name.clone(),
            category: self.definition.category,
            severity: found.severity,
            group_key: found.group_key.clone(),
            title: found.title.clone(),
            window_start,
            window_end,
            status: AlertStatus::New,
            hit_count: 0,
            first_seen: found.event_time,
            last_seen: found.event_time,
            facts: found.facts.clone(),
            created_at: now,
            updated_at: now,
            resolved_at: None,
            version: 0,
            detail: AlertDetail {
                mode: self.definition.mode,
                description: self.definition.description.clone(),
                daily_limit: self.definition.notification.daily_limit,
                daily_email_limit: self.definition.notification.daily_email_limit,
                destinations: self.definition.notification.destinations.clone(),
                ..AlertDetail::default()
            },
            triage: Triage::default(),
        }
    }
}

fn parse_severity(text: &str) -> Option<Severity> {
    match text.trim().to_ascii_lowercase().as_str() {
        "high" | "critical" => Some(Severity::High),
        "medium" => Some(Severity::Medium),
        "low" => Some(Severity::Low),
        "informational" | "info" => Some(Severity::Informational),
        _ => None,
    }
}

fn format_time(text: &str) -> String {
    crate::audit::parse_creation_time(text).map_or_else(|| text.to_owned(), crate::audit::plain_utc)
}

struct EntityPaths {
    users: Vec<FieldPath>,
    ips: Vec<FieldPath>,
    mailboxes: Vec<FieldPath>,
    files: Vec<FieldPath>,
    urls: Vec<FieldPath>,
}

fn entity_paths() -> &'static EntityPaths {
    static PATHS: OnceLock<EntityPaths> = OnceLock::new();
    PATHS.get_or_init(|| {
        let list = |items: &[&str]| items.iter().filter_map(|p| FieldPath::parse(p).ok()).collect();
        EntityPaths {
            users: list(&["UserId"]),
            ips: list(&["ClientIP", "ActorIpAddress", "ClientIPAddress", "SenderIp"]),
            mailboxes: list(&["MailboxOwnerUPN", "Recipients", "P1Sender", "P2Sender"]),
            files: list(&["SourceFileName", "AttachmentData.FileName", "FileData.FileName"]),
            urls: list(&["Url", "URL"]),
        }
    })
}

/// The users, IPs, mailboxes, files and URLs a record names.
fn entities_of(record: &AuditRecord) -> Entities {
    let paths = entity_paths();
    let collect = |list: &[FieldPath], ip: bool| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in list {
            path.visit(record, &mut |text| {
                let text = if ip { crate::audit::client_ip_text(text) } else { Some(text.trim()) };
                if let Some(text) = text.filter(|t| !t.is_empty())
                    && !out.iter().any(|o| o.eq_ignore_ascii_case(text))
                {
                    out.push(text.to_owned());
                }
                std::ops::ControlFlow::Continue(())
            });
        }
        out
    };
    Entities {
        users: collect(&paths.users, false),
        ips: collect(&paths.ips, true),
        mailboxes: collect(&paths.mailboxes, false),
        files: collect(&paths.files, false),
        urls: collect(&paths.urls, false),
        omitted: 0,
    }
}

/// What a policy found in one record.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyMatch {
    /// Matches with the same key (in the same window) join one alert.
    pub group_key: String,
    /// The key a threshold or baseline is kept under (`None` for every-time policies).
    pub trigger_key: Option<String>,
    /// The value counted by a distinct-count threshold.
    pub distinct: Option<String>,
    /// The alert's name (the policy's, or a passed-through alert's own).
    pub name: String,
    pub severity: Severity,
    /// One line about this match (once described).
    pub title: String,
    /// Facts for the ticket (once described).
    pub facts: Vec<Fact>,
    /// The record says the condition cleared: resolve the alert instead of adding a hit.
    pub resolves: bool,
    pub record_id: RecordId,
    pub event_time: DateTime<Utc>,
    /// What the alert shows of this match; `None` until [`CompiledPolicy::describe`] ran (every
    /// match of an every-time policy is described at once).
    pub detail: Option<HitDetail>,
}

/// The tenant an evaluation runs for.
#[derive(Debug, Clone)]
pub struct TenantScope<'a> {
    pub msp_id: &'a MspId,
    pub tenant_id: &'a TenantId,
    pub tenant_name: &'a str,
    pub context: TenantContext<'a>,
}

/// A tenant's compiled policies, indexed by record type and operation.
#[derive(Debug, Clone, Default)]
pub struct PolicyEngine {
    policies: Vec<CompiledPolicy>,
    by_record_type: HashMap<i64, Candidates, FastHash>,
    any_record_type: Candidates,
    plans: plan::Plans,
}

/// FNV-1a: the engine's maps have short keys (a record type, an operation name) chosen by
/// Vigil and the MSP's own policies, looked up once per record, so a fast hash beats SipHash's
/// flooding resistance here.
#[derive(Debug, Clone, Copy, Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type FastHash = std::hash::BuildHasherDefault<Fnv>;

/// The policies that may match a record with a given operation: those without an operation
/// list, and those naming the operation (lowercase) among their operations or resolve
/// operations. Each policy is in one list or under each of its operations, once.
#[derive(Debug, Clone, Default)]
struct Candidates {
    any_operation: Vec<usize>,
    by_operation: HashMap<String, Vec<usize>, FastHash>,
}

impl Candidates {
    fn add(&mut self, index: usize, policy: &CompiledPolicy) {
        if policy.operations.is_empty() {
            self.any_operation.push(index);
            return;
        }
        for operation in policy.operations.iter().chain(&policy.resolve_operations) {
            let list = self.by_operation.entry(operation.clone()).or_default();
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
    }

    /// The candidates for `operation` (lowercase), in policy order: the two sorted lists merged.
    fn for_operation<'a>(&'a self, operation: &str) -> impl Iterator<Item = usize> + 'a {
        let (any, named) = (&self.any_operation[..], self.by_operation.get(operation).map_or(&[][..], Vec::as_slice));
        let (mut i, mut j) = (0, 0);
        std::iter::from_fn(move || match (any.get(i), named.get(j)) {
            (Some(a), Some(n)) if a <= n => {
                i += 1;
                Some(*a)
            }
            (_, Some(n)) => {
                j += 1;
                Some(*n)
            }
            (Some(a), None) => {
                i += 1;
                Some(*a)
            }
            (None, None) => None,
        })
    }
}

impl PolicyEngine {
    /// An engine over compiled policies (disabled ones are left out).
    #[must_use]
    pub fn new(policies: Vec<CompiledPolicy>) -> Self {
        let policies: Vec<CompiledPolicy> = policies.into_iter().filter(|p| p.definition.enabled).collect();
        let mut by_record_type: HashMap<i64, Candidates, FastHash> = HashMap::default();
        let mut any_record_type = Candidates::default();
        for (index, policy) in policies.iter().enumerate() {
            if policy.definition.activity.record_types.is_empty() {
                any_record_type.add(index, policy);
            }
            for record_type in &policy.definition.activity.record_types {
                by_record_type.entry(*record_type).or_default().add(index, policy);
            }
        }
        let plans = plan::Plans::new(policies.iter().map(|p| &p.definition.conditions));
        Self { policies, by_record_type, any_record_type, plans }
    }

    /// The policies, in evaluation order.
    #[must_use]
    pub fn policies(&self) -> &[CompiledPolicy] {
        &self.policies
    }

    /// The policy at an index of [`Self::policies`].
    #[must_use]
    pub fn policy(&self, index: usize) -> &CompiledPolicy {
        &self.policies[index]
    }

    /// Every match of one record, with the index of its policy.
    #[must_use]
    pub fn evaluate(&self, scope: &TenantScope<'_>, record: &AuditRecord) -> Vec<(usize, PolicyMatch)> {
        let mut buffer = [0u8; 64];
        let operation = lowercase(&record.operation, &mut buffer);
        let typed = self.by_record_type.get(&record.record_type).into_iter().flat_map(|typed| typed.for_operation(&operation));
        let candidates = typed.chain(self.any_record_type.for_operation(&operation));
        let mut memo = self.plans.memo();
        let mut found = Vec::new();
        for index in candidates {
            let policy = &self.policies[index];
            let matches = || self.plans.matches(index, record, &scope.context, &mut memo);
            if let Some(one) = policy.evaluate_with(record, policy.resolves(record), matches) {
                found.push((index, one));
            }
        }
        found
    }
}

/// `text` lowercased, in `buffer` when it is short ASCII (an operation name nearly always is).
fn lowercase<'a>(text: &'a str, buffer: &'a mut [u8; 64]) -> std::borrow::Cow<'a, str> {
    if text.len() <= buffer.len() && text.is_ascii() {
        let lower = &mut buffer[..text.len()];
        lower.copy_from_slice(text.as_bytes());
        lower.make_ascii_lowercase();
        if let Ok(lower) = std::str::from_utf8(lower) {
            return std::borrow::Cow::Borrowed(lower);
        }
    }
    std::borrow::Cow::Owned(text.to_lowercase())
}

/// The record type of Graph security alert pseudo-records: 0, the record type of Vigil's own
/// events (Microsoft's record types start at 1), told apart by their `Graph.` operations.
pub const GRAPH_ALERT_RECORD_TYPE: i64 = 0;
/// The operation of a Graph alert update that leaves the alert open.
pub const GRAPH_ALERT_UPDATED: &str = "Graph.AlertUpdated";
/// The operation of a Graph alert update whose status is `resolved`.
pub const GRAPH_ALERT_RESOLVED: &str = "Graph.AlertResolved";

/// A Microsoft Graph security alert update (`alerts_v2`, the Graph JSON object) as a
/// pseudo audit record, so it goes through the policy engine ([`DEFENDER_POLICY`] and any MSP
/// policy on record type [`GRAPH_ALERT_RECORD_TYPE`]): the alert's own fields unchanged
/// (`id`, `title`, `severity`, `status`, `classification`, `serviceSource`, …) plus `Id`
/// (`graph:{id}:{lastUpdateDateTime}`, one per update), `RecordType`, `CreationTime` (the
/// update's time) and `Operation` ([`GRAPH_ALERT_RESOLVED`] when Microsoft resolved it, else
/// [`GRAPH_ALERT_UPDATED`]). `None` without an id or update time.
#[must_use]
pub fn graph_alert_record(alert: &serde_json::Value) -> Option<AuditRecord> {
    let mut object = alert.as_object()?.clone();
    let text = |key: &str| object.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    let (id, updated) = (text("id")?, text("lastUpdateDateTime")?);
    let resolved = text("status").is_some_and(|s| s.eq_ignore_ascii_case("resolved"));
    object.insert("Id".into(), format!("graph:{id}:{updated}").into());
    object.insert("RecordType".into(), GRAPH_ALERT_RECORD_TYPE.into());
    object.insert("CreationTime".into(), updated.into());
    object.insert("Operation".into(), if resolved { GRAPH_ALERT_RESOLVED } else { GRAPH_ALERT_UPDATED }.into());
    object.insert("Workload".into(), "MicrosoftGraphSecurity".into());
    AuditRecord::from_value(serde_json::Value::Object(object)).ok()
}

/// The time a Graph alert pseudo-record's alert window is anchored at: the alert's creation
/// (so every update of one Graph alert, and its resolution, joins one Vigil alert), else the
/// update's own time.
#[must_use]
pub fn graph_alert_anchor(record: &AuditRecord) -> DateTime<Utc> {
    record.field_str("createdDateTime").and_then(crate::audit::parse_creation_time).unwrap_or(record.creation_time)
}

fn actor(record: &AuditRecord) -> String {
    if record.user_id.is_empty() { "unknown user".to_owned() } else { record.user_id.clone() }
}

fn common_facts(record: &AuditRecord) -> Vec<Fact> {
    let mut facts = vec![
        Fact::new("User", actor(record)),
        Fact::new("Operation", record.operation.clone()),
        Fact::new("Time (UTC)", crate::audit::plain_utc(record.creation_time)),
    ];
    if let Some(ip) = record.client_ip() {
        facts.push(Fact::new("Client IP", ip));
    }
    facts.push(Fact::new("Record id", record.id.as_str()));
    facts
}

/// The policies in force for an MSP: the built-ins (replaced by the MSP's changed copy where it
/// has one) followed by the MSP's own policies.
#[must_use]
pub fn effective_definitions(stored: &[crate::ports::StoredPolicy]) -> Vec<Arc<PolicyDefinition>> {
    let mut definitions: Vec<Arc<PolicyDefinition>> = catalogue::builtin_definitions()
        .iter()
        .map(|builtin| {
            stored.iter().find(|s| s.definition.id == builtin.id).map_or_else(|| builtin.clone(), |s| Arc::new(s.definition.clone()))
        })
        .collect();
    definitions.extend(stored.iter().filter(|s| !catalogue::is_builtin(s.definition.id.as_str())).map(|s| Arc::new(s.definition.clone())));
    definitions
}

/// The engine for one tenant: effective policies in the tenant's scope, with its per-tenant
/// switches applied. Policies that do not compile are left out (they were validated on write).
#[must_use]
pub fn engine_for_tenant(definitions: &[Arc<PolicyDefinition>], switches: &[(PolicyId, bool)], tenant_id: &TenantId) -> PolicyEngine {
    let compiled = definitions
        .iter()
        .filter(|d| d.scope.covers_tenant(tenant_id))
        .filter_map(|d| {
            let switched = switches.iter().find(|(id, _)| *id == d.id).map(|(_, on)| *on);
            let definition = match switched {
                Some(on) if on != d.enabled => Arc::new(PolicyDefinition { enabled: on, ..(**d).clone() }),
                _ => d.clone(),
            };
            CompiledPolicy::compile(definition)
                .map_err(|e| tracing::warn!(message = "Policy does not compile; skipped.", policy_id = %d.id, error = %e))
                .ok()
        })
        .collect();
    PolicyEngine::new(compiled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_reaches_the_policies_of_its_type_and_operation_in_policy_order() {
        let policy = |id: &str, activity: serde_json::Value, resolve: &[&str]| {
            let definition: PolicyDefinition = serde_json::from_value(json!({"id": id, "name": id, "category": "Others",
                "severity": "Low", "activity": activity, "resolve_operations": resolve}))
            .unwrap();
            CompiledPolicy::compile(Arc::new(definition)).unwrap()
        };
        let engine = PolicyEngine::new(vec![
            policy("custom.typed-named", json!({"record_types": [1], "operations": ["New-InboxRule", "Set-InboxRule"]}), &[]),
            policy("custom.any-type-named", json!({"operations": ["new-inboxrule"]}), &[]),
            policy("custom.typed-any-op", json!({"record_types": [1]}), &[]),
            policy("custom.other-op", json!({"record_types": [1], "operations": ["Set-Mailbox"]}), &[]),
            policy("custom.other-type", json!({"record_types": [2], "operations": ["New-InboxRule"]}), &[]),
            policy("custom.resolves", json!({"record_types": [1], "operations": ["Set-Mailbox"]}), &["New-InboxRule"]),
            policy("custom.any-type-any-op", json!({}), &[]),
        ]);
        let msp = MspId::parse("acme").unwrap();
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let scope = TenantScope { msp_id: &msp, tenant_id: &tenant, tenant_name: "Contoso", context: TenantContext::default() };
        let record = AuditRecord::from_value(json!({"Id": "r-1", "RecordType": 1, "CreationTime": "2026-01-05T09:31:00",
            "Operation": "NEW-InboxRule", "UserId": "alice@contoso.com"}))
        .unwrap();
        let reached: Vec<&str> = engine.evaluate(&scope, &record).iter().map(|(index, _)| engine.policy(*index).id().as_str()).collect();
        assert_eq!(
            reached,
            ["custom.typed-named", "custom.typed-any-op", "custom.resolves", "custom.any-type-named", "custom.any-type-any-op"],
            "the record type's policies first, then those of any type, each in policy order; operations compared ignoring case"
        );
    }

    #[test]
    fn an_address_in_a_group_key_is_one_key_with_or_without_port_and_other_fields_are_kept_as_they_are() {
        let grouped = |by: &str| {
            let definition: PolicyDefinition = serde_json::from_value(json!({"id": "custom.grouped", "name": "Grouped",
                "category": "Others", "severity": "Low", "activity": {}, "aggregation": {"window_minutes": 60, "group_by": [by]}}))
            .unwrap();
            CompiledPolicy::compile(Arc::new(definition)).unwrap()
        };
        let msp = MspId::parse("acme").unwrap();
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let scope = TenantScope { msp_id: &msp, tenant_id: &tenant, tenant_name: "Contoso", context: TenantContext::default() };
        let key = |policy: &CompiledPolicy, field: &str, value: &str| {
            let record = AuditRecord::from_value(json!({"Id": "r-1", "RecordType": 15, "CreationTime": "2026-01-05T09:31:00",
                "Operation": "UserLoggedIn", field: value}))
            .unwrap();
            policy.evaluate(&scope, &record).unwrap().group_key
        };
        let by_ip = grouped("ClientIP");
        assert_eq!(key(&by_ip, "ClientIP", "[2001:DB8::1]:443"), "2001:db8::1");
        assert_eq!(key(&by_ip, "ClientIP", "2001:db8::1"), "2001:db8::1");
        assert_eq!(key(&grouped("ActorIpAddress"), "ActorIpAddress", "10.1.2.3:5000"), "10.1.2.3");
        assert_eq!(key(&grouped("UserId"), "UserId", "Svc:5000"), "svc:5000", "not an address field: only lowercased");
    }

    #[test]
    fn matches_in_one_window_share_an_alert_id_and_the_next_window_does_not() {
        let engine = PolicyEngine::new(catalogue::compiled_builtins().to_vec());
        let msp = MspId::parse("acme").unwrap();
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let scope = TenantScope { msp_id: &msp, tenant_id: &tenant, tenant_name: "Contoso", context: TenantContext::default() };
        let alert_at = |time: &str| {
            let record = AuditRecord::from_value(json!({"Id": format!("r-{time}"), "RecordType": 1, "CreationTime": time,
                "Operation": "New-InboxRule", "UserId": "Alice@contoso.com", "Workload": "Exchange", "ResultStatus": "True",
                "Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}]}))
            .unwrap();
            let (index, found) = engine.evaluate(&scope, &record).into_iter().next().unwrap();
            engine.policy(index).alert_for(&scope, &found, found.event_time, Utc::now())
        };
        let first = alert_at("2026-01-05T09:31:00");
        assert_eq!(first.id, alert_at("2026-01-05T09:44:59").id, "same 15-minute window, same alert");
        assert_ne!(first.id, alert_at("2026-01-05T09:45:00").id, "the next window starts a new alert");
        assert_eq!(first.group_key, "alice@contoso.com");
        assert_eq!(first.title, "Mail forwarding to x@evil.example set up by Alice@contoso.com");
    }

    #[test]
    fn a_group_key_from_a_10_kb_value_is_bounded_and_still_names_one_alert() {
        let engine = PolicyEngine::new(catalogue::compiled_builtins().to_vec());
        let msp = MspId::parse("acme").unwrap();
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let scope = TenantScope { msp_id: &msp, tenant_id: &tenant, tenant_name: "Contoso", context: TenantContext::default() };
        let user = format!("{}@contoso.com", "Ünïcode".repeat(1100));
        let alert_of = |id: &str, user: &str| {
            let record = AuditRecord::from_value(json!({"Id": id, "RecordType": 1, "CreationTime": "2026-01-05T09:31:00",
                "Operation": "New-InboxRule", "UserId": user, "Workload": "Exchange", "ResultStatus": "True",
                "Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}]}))
            .unwrap();
            let (index, found) = engine.evaluate(&scope, &record).into_iter().next().unwrap();
            engine.policy(index).alert_for(&scope, &found, found.event_time, Utc::now())
        };
        let first = alert_of("r1", &user);
        assert!(first.group_key.len() <= crate::limits::GROUP_KEY_BYTES, "{} bytes", first.group_key.len());
        assert!(first.group_key.starts_with("ünïcodeünïcode"));
        assert_eq!(alert_of("r2", &user).id, first.id, "the same long key names the same alert");
        assert_ne!(alert_of("r3", &format!("x{user}")).id, first.id);
    }
}
