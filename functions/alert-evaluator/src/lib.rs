//! alert-evaluator: consumes the events queue, evaluates records against the tenant's alert
//! policies, records alert hits and announces changed alerts on the tickets queue. Glue only:
//! the work is [`vigil::services::evaluate::EvaluateService`].

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::sync::Arc;
use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore};
use vigil::aws::policy_store::{DynamoPolicyStore, DynamoTriggerStore};
use vigil::aws::sqs::SqsQueue;
use vigil::clock::SystemClock;
use vigil::lambda::metrics::MetricSet;
use vigil::lambda::sqs_batch::process_batch_together;
use vigil::services::evaluate::{EvaluateService, PolicyCache};
use vigil::settings::{ConfigError, required};

/// The evaluator's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`: tenants.
    pub config_table: String,
    /// `ALERTS_TABLE`: alerts and their hit markers.
    pub alerts_table: String,
    /// `STATE_TABLE`: threshold and baseline state of policies.
    pub state_table: String,
    /// `TICKETS_QUEUE_URL`: where changed alerts are announced.
    pub tickets_queue_url: String,
}

impl Config {
    /// Reads the configuration through `lookup`.
    ///
    /// # Errors
    /// Names the first missing variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config_table: required(lookup, "CONFIG_TABLE")?,
            alerts_table: required(lookup, "ALERTS_TABLE")?,
            state_table: required(lookup, "STATE_TABLE")?,
            tickets_queue_url: required(lookup, "TICKETS_QUEUE_URL")?,
        })
    }
}

/// Builds the service once per container; its policy cache keeps compiled policies per tenant
/// for the life of the container.
#[must_use]
pub fn build(config: &Config, sdk: &SdkConfig) -> EvaluateService {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let config_store = Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone()));
    EvaluateService {
        config: config_store.clone(),
        partner_activity: config_store,
        alerts: Arc::new(DynamoAlertStore::new(dynamo.clone(), config.alerts_table.clone())),
        policies: Arc::new(DynamoPolicyStore::new(dynamo.clone(), config.config_table.clone())),
        triggers: Arc::new(DynamoTriggerStore::new(dynamo, config.state_table.clone())),
        tickets: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), config.tickets_queue_url.clone())),
        cache: PolicyCache::default(),
        clock: Arc::new(SystemClock),
    }
}

/// Handles one SQS batch as a whole (threshold and baseline updates are combined per key across
/// its messages), reporting each failed message for retry (and, eventually, the DLQ).
pub async fn handle(service: &EvaluateService, event: SqsEvent) -> SqsBatchResponse {
    let metrics = MetricSet::new("alert-evaluator");
    let counts = &metrics;
    let response = process_batch_together(event, &metrics, |bodies| async move {
        let results = service.handle_batch(&bodies).await;
        for report in results.iter().flatten() {
            counts.count("RecordsEvaluated", None, report.records as f64);
            counts.count("PolicyHits", None, report.hits as f64);
            counts.count("MatchesSuppressed", None, report.suppressed as f64);
            counts.count("MatchesBelowTrigger", None, report.below_trigger as f64);
        }
        results
    })
    .await;
    metrics.flush();
    response
}
