//! Creates on moto the tables, queues (with redrive policies) and their names that
//! template.yaml declares, and resolves each function's environment to real names and URLs.
//! moto's CloudFormation skips the SAM transform, so the local stack reads the template itself.

use crate::template::{StackModel, TemplateValue};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::{BTreeMap, HashMap};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("creating {resource}: {message}")]
    Aws { resource: String, message: String },
    #[error("template: {0}")]
    Template(String),
}

fn aws_error(resource: &str, error: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Aws { resource: resource.to_owned(), message: error.to_string() }
}

/// What was created, by logical id.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub prefix: String,
    pub parameters: BTreeMap<String, String>,
    pub table_names: HashMap<String, String>,
    pub queue_urls: HashMap<String, String>,
    pub queue_arns: HashMap<String, String>,
}

/// Options for provisioning.
#[derive(Debug, Clone, Default)]
pub struct ProvisionOptions {
    /// Physical names are `{prefix}{LogicalId}`.
    pub prefix: String,
    /// Parameter values overriding the template defaults.
    pub parameters: BTreeMap<String, String>,
    /// Replaces every queue's visibility timeout (tests use seconds instead of minutes, so
    /// retries and redrives happen quickly). `None` keeps the template's values.
    pub visibility_timeout_override: Option<u32>,
}

/// Creates the template's tables and queues.
///
/// # Errors
/// When moto refuses a request or the template uses an unsupported form.
pub async fn provision(model: &StackModel, sdk: &aws_config::SdkConfig, options: &ProvisionOptions) -> Result<Provisioned, ProvisionError> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut parameters = model.parameter_defaults.clone();
    parameters.extend(options.parameters.clone());
    let mut provisioned = Provisioned {
        prefix: options.prefix.clone(),
        parameters,
        table_names: HashMap::new(),
        queue_urls: HashMap::new(),
        queue_arns: HashMap::new(),
    };

    for table in &model.tables {
        let name = format!("{}{}", options.prefix, table.logical_id);
        let mut request = dynamo.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
        for (attribute, kind) in &table.attributes {
            let kind = ScalarAttributeType::from(kind.as_str());
            request = request.attribute_definitions(
                AttributeDefinition::builder().attribute_name(attribute).attribute_type(kind).build().map_err(|e| aws_error(&name, e))?,
            );
        }
        for (attribute, kind) in &table.key_schema {
            request = request.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(attribute)
                    .key_type(KeyType::from(kind.as_str()))
                    .build()
                    .map_err(|e| aws_error(&name, e))?,
            );
        }
        for index in &table.indexes {
            let mut gsi = GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .projection(Projection::builder().projection_type(ProjectionType::All).build());
            for (attribute, kind) in &index.key_schema {
                gsi = gsi.key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(attribute)
                        .key_type(KeyType::from(kind.as_str()))
                        .build()
                        .map_err(|e| aws_error(&name, e))?,
                );
            }
            request = request.global_secondary_indexes(gsi.build().map_err(|e| aws_error(&name, e))?);
        }
        request.send().await.map_err(|e| aws_error(&name, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        if let Some(ttl) = &table.ttl_attribute {
            dynamo
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build().map_err(|e| aws_error(&name, e))?,
                )
                .send()
                .await
                .map_err(|e| aws_error(&name, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        }
        provisioned.table_names.insert(table.logical_id.clone(), name);
    }

    // Dead-letter queues first, so redrive policies can name them.
    let mut queues = model.queues.clone();
    queues.sort_by_key(|q| q.redrive.is_some());
    for queue in &queues {
        let name = format!("{}{}", options.prefix, queue.logical_id);
        let mut request = sqs.create_queue().queue_name(&name);
        if let Some(timeout) = options.visibility_timeout_override.or(queue.visibility_timeout) {
            request = request.attributes(QueueAttributeName::VisibilityTimeout, timeout.to_string());
        }
        if let Some(retention) = queue.message_retention {
            request = request.attributes(QueueAttributeName::MessageRetentionPeriod, retention.to_string());
        }
        if let Some((dlq, max_receive)) = &queue.redrive {
            let arn = provisioned
                .queue_arns
                .get(dlq)
                .ok_or_else(|| ProvisionError::Template(format!("{}: dead-letter queue {dlq} is not declared", queue.logical_id)))?;
            request = request.attributes(
                QueueAttributeName::RedrivePolicy,
                serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive}).to_string(),
            );
        }
        let url = request
            .send()
            .await
            .map_err(|e| aws_error(&name, aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_error(&name, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let arn = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
        provisioned.queue_urls.insert(queue.logical_id.clone(), url);
        provisioned.queue_arns.insert(queue.logical_id.clone(), arn);
    }
    Ok(provisioned)
}

impl Provisioned {
    /// Resolves one template value.
    ///
    /// # Errors
    /// When it names something that was not provisioned.
    pub fn resolve(&self, value: &TemplateValue) -> Result<String, ProvisionError> {
        match value {
            TemplateValue::Literal(text) => Ok(text.clone()),
            TemplateValue::Ref(name) => self
                .parameters
                .get(name)
                .or_else(|| self.table_names.get(name))
                .or_else(|| self.queue_urls.get(name))
                .cloned()
                .ok_or_else(|| ProvisionError::Template(format!("!Ref {name} cannot be resolved locally"))),
            TemplateValue::GetAtt(resource, attribute) if attribute == "Arn" => self
                .queue_arns
                .get(resource)
                .cloned()
                .ok_or_else(|| ProvisionError::Template(format!("!GetAtt {resource}.Arn cannot be resolved locally"))),
            TemplateValue::GetAtt(resource, attribute) => {
                Err(ProvisionError::Template(format!("!GetAtt {resource}.{attribute} cannot be resolved locally")))
            }
            TemplateValue::Sub(text) => {
                let mut result = text.clone();
                let pseudo = [("AWS::Region", "us-east-1"), ("AWS::AccountId", "123456789012"), ("AWS::Partition", "aws")];
                for (name, value) in pseudo
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .chain(self.parameters.iter().map(|(n, v)| (n.clone(), v.clone())))
                {
                    result = result.replace(&format!("${{{name}}}"), &value);
                }
                if result.contains("${") {
                    return Err(ProvisionError::Template(format!("!Sub {text} cannot be resolved locally")));
                }
                Ok(result)
            }
        }
    }

    /// A function's environment, resolved, with local overrides applied last.
    ///
    /// # Errors
    /// When a variable cannot be resolved.
    pub fn environment(
        &self,
        model: &StackModel,
        logical_id: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ProvisionError> {
        let function =
            model.function(logical_id).ok_or_else(|| ProvisionError::Template(format!("function {logical_id} is not declared")))?;
        let mut env = BTreeMap::new();
        for (name, value) in &function.environment {
            // A local override replaces the value before it is resolved: it may name things
            // that only exist on AWS (the HTTP API's id).
            let resolved = match overrides.get(name) {
                Some(local) => local.clone(),
                None => self.resolve(value)?,
            };
            env.insert(name.clone(), resolved);
        }
        Ok(env)
    }
}
