//! Reads template.yaml (AWS SAM) into the model the local stack needs: tables, queues with
//! their redrive policies, and each function's environment and event sources. Reading the real
//! template is what keeps the local stack and the deployed stack from drifting.

use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Why the template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template: {0}")]
    Unsupported(String),
}

/// A value in the template that the local stack can resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateValue {
    Literal(String),
    /// `!Ref X`: a parameter's value, a table's name or a queue's URL.
    Ref(String),
    /// `!GetAtt X.Attr`.
    GetAtt(String, String),
    /// `!Sub "..."` over parameters and pseudo parameters.
    Sub(String),
}

/// A DynamoDB table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (attribute name, type) pairs.
    pub attributes: Vec<(String, String)>,
    /// (attribute name, HASH|RANGE) pairs.
    pub key_schema: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    /// Global secondary indexes, all attributes projected.
    pub indexes: Vec<IndexSpec>,
}

/// A global secondary index of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub name: String,
    /// (attribute name, HASH|RANGE) pairs.
    pub key_schema: Vec<(String, String)>,
}

/// An SQS queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<u32>,
    pub message_retention: Option<u32>,
    /// (dead-letter queue logical id, maxReceiveCount).
    pub redrive: Option<(String, u32)>,
}

/// An event source of a function.
#[derive(Debug, Clone, PartialEq)]
pub enum EventSpec {
    /// SQS event source mapping.
    Sqs { queue: String, batch_size: u32, report_batch_item_failures: bool },
    /// EventBridge schedule.
    Schedule { expression: TemplateValue },
    /// HTTP API route.
    HttpApi { path: String, method: String },
}

/// A Lambda function.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub code_uri: String,
    pub timeout: u32,
    /// Globals first, then the function's own variables.
    pub environment: BTreeMap<String, TemplateValue>,
    pub events: Vec<EventSpec>,
}

/// What the local stack reads from template.yaml.
#[derive(Debug, Clone)]
pub struct StackModel {
    pub parameter_defaults: BTreeMap<String, String>,
    pub tables: Vec<TableSpec>,
    pub queues: Vec<QueueSpec>,
    pub functions: Vec<FunctionSpec>,
}

fn tagged(value: &Value) -> Result<TemplateValue, TemplateError> {
    match value {
        Value::String(s) => Ok(TemplateValue::Literal(s.clone())),
        Value::Number(n) => Ok(TemplateValue::Literal(n.to_string())),
        Value::Bool(b) => Ok(TemplateValue::Literal(b.to_string())),
        Value::Tagged(t) => {
            let inner = t.value.as_str().ok_or_else(|| TemplateError::Unsupported(format!("{} with a non-scalar argument", t.tag)))?;
            match t.tag.to_string().as_str() {
                "!Ref" => Ok(TemplateValue::Ref(inner.to_owned())),
                "!Sub" => Ok(TemplateValue::Sub(inner.to_owned())),
                "!GetAtt" => {
                    let (resource, attribute) =
                        inner.split_once('.').ok_or_else(|| TemplateError::Unsupported(format!("!GetAtt {inner}")))?;
                    Ok(TemplateValue::GetAtt(resource.to_owned(), attribute.to_owned()))
                }
                other => Err(TemplateError::Unsupported(format!("intrinsic {other} where the local stack needs a value"))),
            }
        }
        other => Err(TemplateError::Unsupported(format!("value {other:?}"))),
    }
}

fn u32_of(value: Option<&Value>) -> Option<u32> {
    value.and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).and_then(|v| u32::try_from(v).ok())
}

fn pairs(list: Option<&Value>, first: &str, second: &str) -> Vec<(String, String)> {
    list.and_then(Value::as_sequence)
        .map(|items| {
            items.iter().filter_map(|item| Some((item.get(first)?.as_str()?.to_owned(), item.get(second)?.as_str()?.to_owned()))).collect()
        })
        .unwrap_or_default()
}

/// A table's GSIs; the local stack creates them with every attribute projected, so it refuses
/// any other projection rather than create an index that reads differently from AWS's.
fn indexes(list: Option<&Value>) -> Result<Vec<IndexSpec>, TemplateError> {
    let mut found = Vec::new();
    for index in list.and_then(Value::as_sequence).into_iter().flatten() {
        let name =
            index.get("IndexName").and_then(Value::as_str).ok_or_else(|| TemplateError::Unsupported("a GSI without IndexName".into()))?;
        let projection = index.get("Projection").and_then(|p| p.get("ProjectionType")).and_then(Value::as_str);
        if projection != Some("ALL") {
            return Err(TemplateError::Unsupported(format!("GSI {name}: only ProjectionType ALL")));
        }
        found.push(IndexSpec { name: name.to_owned(), key_schema: pairs(index.get("KeySchema"), "AttributeName", "KeyType") });
    }
    Ok(found)
}

fn environment(properties: Option<&Value>) -> Result<BTreeMap<String, TemplateValue>, TemplateError> {
    let mut env = BTreeMap::new();
    if let Some(vars) = properties.and_then(|p| p.get("Environment")).and_then(|e| e.get("Variables")).and_then(Value::as_mapping) {
        for (name, value) in vars {
            let name = name.as_str().ok_or_else(|| TemplateError::Unsupported("non-string variable name".into()))?;
            env.insert(name.to_owned(), tagged(value)?);
        }
    }
    Ok(env)
}

impl StackModel {
    /// Reads and interprets a template file.
    ///
    /// # Errors
    /// When the file cannot be read, is not YAML, or uses a form the local stack cannot follow.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    /// Interprets template text.
    ///
    /// # Errors
    /// See [`StackModel::load`].
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let root: Value = serde_yaml::from_str(text)?;
        let mut parameter_defaults = BTreeMap::new();
        if let Some(parameters) = root.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in parameters {
                if let (Some(name), Some(default)) = (name.as_str(), spec.get("Default")) {
                    let default = match default {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)?.trim().to_owned(),
                    };
                    parameter_defaults.insert(name.to_owned(), default);
                }
            }
        }
        let globals = root.get("Globals").and_then(|g| g.get("Function"));
        let global_env = environment(globals)?;
        let global_timeout = u32_of(globals.and_then(|g| g.get("Timeout"))).unwrap_or(3);
        let resources =
            root.get("Resources").and_then(Value::as_mapping).ok_or_else(|| TemplateError::Unsupported("no Resources".into()))?;
        let (mut tables, mut queues, mut functions) = (Vec::new(), Vec::new(), Vec::new());
        for (id, resource) in resources {
            let logical_id = id.as_str().unwrap_or_default().to_owned();
            let properties = resource.get("Properties");
            match resource.get("Type").and_then(Value::as_str).unwrap_or_default() {
                "AWS::DynamoDB::Table" => {
                    let ttl = properties.and_then(|p| p.get("TimeToLiveSpecification"));
                    let ttl_enabled = ttl.and_then(|t| t.get("Enabled")).and_then(Value::as_bool).unwrap_or(false);
                    tables.push(TableSpec {
                        logical_id,
                        attributes: pairs(properties.and_then(|p| p.get("AttributeDefinitions")), "AttributeName", "AttributeType"),
                        key_schema: pairs(properties.and_then(|p| p.get("KeySchema")), "AttributeName", "KeyType"),
                        ttl_attribute: ttl
                            .filter(|_| ttl_enabled)
                            .and_then(|t| t.get("AttributeName"))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        indexes: indexes(properties.and_then(|p| p.get("GlobalSecondaryIndexes")))?,
                    });
                }
                "AWS::SQS::Queue" => {
                    let redrive = match properties.and_then(|p| p.get("RedrivePolicy")) {
                        Some(policy) => {
                            let TemplateValue::GetAtt(dlq, _) = tagged(policy.get("deadLetterTargetArn").unwrap_or(&Value::Null))? else {
                                return Err(TemplateError::Unsupported(format!(
                                    "{logical_id}: deadLetterTargetArn must be !GetAtt <Queue>.Arn"
                                )));
                            };
                            Some((dlq, u32_of(policy.get("maxReceiveCount")).unwrap_or(5)))
                        }
                        None => None,
                    };
                    queues.push(QueueSpec {
                        visibility_timeout: u32_of(properties.and_then(|p| p.get("VisibilityTimeout"))),
                        message_retention: u32_of(properties.and_then(|p| p.get("MessageRetentionPeriod"))),
                        redrive,
                        logical_id,
                    });
                }
                "AWS::Serverless::Function" => {
                    let mut env = global_env.clone();
                    env.extend(environment(properties)?);
                    let mut events = Vec::new();
                    if let Some(map) = properties.and_then(|p| p.get("Events")).and_then(Value::as_mapping) {
                        for (_, event) in map {
                            let props = event.get("Properties");
                            match event.get("Type").and_then(Value::as_str).unwrap_or_default() {
                                "SQS" => {
                                    let TemplateValue::GetAtt(queue, _) =
                                        tagged(props.and_then(|p| p.get("Queue")).unwrap_or(&Value::Null))?
                                    else {
                                        return Err(TemplateError::Unsupported(format!(
                                            "{logical_id}: SQS Queue must be !GetAtt <Queue>.Arn"
                                        )));
                                    };
                                    let report = props
                                        .and_then(|p| p.get("FunctionResponseTypes"))
                                        .and_then(Value::as_sequence)
                                        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures")));
                                    events.push(EventSpec::Sqs {
                                        queue,
                                        batch_size: u32_of(props.and_then(|p| p.get("BatchSize"))).unwrap_or(10),
                                        report_batch_item_failures: report,
                                    });
                                }
                                "Schedule" => events.push(EventSpec::Schedule {
                                    expression: tagged(props.and_then(|p| p.get("Schedule")).unwrap_or(&Value::Null))?,
                                }),
                                "HttpApi" => events.push(EventSpec::HttpApi {
                                    path: props.and_then(|p| p.get("Path")).and_then(Value::as_str).unwrap_or("/").to_owned(),
                                    method: props.and_then(|p| p.get("Method")).and_then(Value::as_str).unwrap_or("ANY").to_owned(),
                                }),
                                other => return Err(TemplateError::Unsupported(format!("{logical_id}: event type {other}"))),
                            }
                        }
                    }
                    functions.push(FunctionSpec {
                        code_uri: properties.and_then(|p| p.get("CodeUri")).and_then(Value::as_str).unwrap_or_default().to_owned(),
                        timeout: u32_of(properties.and_then(|p| p.get("Timeout"))).unwrap_or(global_timeout),
                        environment: env,
                        events,
                        logical_id,
                    });
                }
                _ => {}
            }
        }
        Ok(Self { parameter_defaults, tables, queues, functions })
    }

    /// The function with this logical id.
    #[must_use]
    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

/// Parses an EventBridge `rate(...)` expression into seconds.
///
/// # Errors
/// For `cron(...)` or malformed expressions.
pub fn rate_seconds(expression: &str) -> Result<u64, TemplateError> {
    let inner = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| TemplateError::Unsupported(format!("schedule {expression}")))?;
    let (amount, unit) = inner.trim().split_once(' ').ok_or_else(|| TemplateError::Unsupported(format!("schedule {expression}")))?;
    let amount: u64 = amount.parse().map_err(|_| TemplateError::Unsupported(format!("schedule {expression}")))?;
    let unit_seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        other => return Err(TemplateError::Unsupported(format!("schedule unit {other}"))),
    };
    Ok(amount * unit_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> StackModel {
        StackModel::load(&crate::repo_root().join("template.yaml")).unwrap()
    }

    #[test]
    fn the_real_template_declares_every_function_the_local_stack_runs() {
        let model = model();
        for id in
            ["AuditPollerFunction", "AlertEvaluatorFunction", "TicketDispatcherFunction", "ConfigApiFunction", "WebhookReceiverFunction"]
        {
            assert!(model.function(id).is_some(), "{id}");
        }
        assert_eq!(model.tables.len(), 3);
        assert!(model.tables.iter().all(|t| t.key_schema.len() == 2));
    }

    #[test]
    fn every_sqs_trigger_reports_batch_item_failures_and_has_a_dead_letter_queue_and_six_times_the_timeout() {
        let model = model();
        let mut triggers = 0;
        for function in &model.functions {
            for event in &function.events {
                if let EventSpec::Sqs { queue, report_batch_item_failures, .. } = event {
                    triggers += 1;
                    assert!(report_batch_item_failures, "{}", function.logical_id);
                    let spec = model.queues.iter().find(|q| &q.logical_id == queue).unwrap();
                    assert!(spec.redrive.is_some(), "{queue} has a DLQ");
                    assert!(
                        spec.visibility_timeout.unwrap_or(30) >= 6 * function.timeout,
                        "{queue} visibility >= 6x {}",
                        function.logical_id
                    );
                }
            }
        }
        assert_eq!(triggers, 3, "poll jobs, events, tickets");
    }

    #[test]
    fn function_environments_match_what_the_functions_read() {
        let model = model();
        let env = |id: &str| {
            let vars = model.function(id).unwrap().environment.clone();
            // Durations, rates and concurrencies are numbers; every other variable is some text.
            let numeric = |name: &str| ["_MINUTES", "_PER_MINUTE", "_CONCURRENCY"].iter().any(|suffix| name.ends_with(suffix));
            move |name: &str| vars.get(name).map(|_| if numeric(name) { "60".to_owned() } else { "x".to_owned() })
        };
        audit_poller::Config::from_lookup(&env("AuditPollerFunction")).unwrap();
        alert_evaluator::Config::from_lookup(&env("AlertEvaluatorFunction")).unwrap();
        ticket_dispatcher::Config::from_lookup(&env("TicketDispatcherFunction")).unwrap();
        config_api::Config::from_lookup(&env("ConfigApiFunction")).unwrap();
    }

    #[test]
    fn the_alerts_table_orders_each_msps_and_each_tenants_alerts_by_change_in_gsis_the_local_stack_creates() {
        let model = model();
        let alerts = model.tables.iter().find(|t| t.logical_id == "AlertsTable").unwrap();
        let keys = |hash: &str| vec![(hash.to_owned(), "HASH".to_owned()), ("changed".to_owned(), "RANGE".to_owned())];
        assert_eq!(
            alerts.indexes,
            vec![
                IndexSpec { name: "by-change".into(), key_schema: keys("pk") },
                IndexSpec { name: "by-tenant-change".into(), key_schema: keys("tenant_changes") }
            ]
        );
        assert!(alerts.attributes.contains(&("changed".to_owned(), "S".to_owned())));
        assert!(alerts.attributes.contains(&("tenant_changes".to_owned(), "S".to_owned())));
    }

    #[test]
    fn rate_expressions_are_understood() {
        assert_eq!(rate_seconds("rate(1 minute)").unwrap(), 60);
        assert_eq!(rate_seconds("rate(5 minutes)").unwrap(), 300);
        assert!(rate_seconds("cron(0 * * * ? *)").is_err());
    }
}
