//! audit-poller: on the schedule, polls the Office 365 Management Activity API for every
//! registered tenant and sends new audit records to the events queue. Glue only: the work is
//! [`vigil::services::poll::PollService`].

use aws_config::SdkConfig;
use std::sync::Arc;
use std::time::Duration;
use vigil::aws::dynamodb::{DynamoConfigStore, DynamoIngestState};
use vigil::aws::secrets::SecretsManagerStore;
use vigil::aws::sqs::SqsQueue;
use vigil::clock::SystemClock;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::lambda::metrics::MetricSet;
use vigil::secret_cache::CachingSecretStore;
use vigil::services::poll::{PollReport, PollService, PollSettings};
use vigil::settings::{ConfigError, required};

/// The poller's configuration, from the variables template.yaml sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`: tenants.
    pub config_table: String,
    /// `STATE_TABLE`: cursors and record claims.
    pub state_table: String,
    /// `EVENTS_QUEUE_URL`: where records go.
    pub events_queue_url: String,
    /// `EVENTS_DLQ_URL`: where unusable content goes, whole.
    pub events_dlq_url: String,
    /// `SECRET_PREFIX`: Vigil's Secrets Manager prefix, e.g. `vigil/prod/`.
    pub secret_prefix: String,
    /// `PUBLISHER_IDENTIFIER`: the operator's Entra tenant GUID, sent on every API call.
    pub publisher_identifier: String,
    /// `M365_LOGIN_BASE`, `M365_MANAGEMENT_BASE`: Microsoft endpoints (per cloud).
    pub endpoints: M365Endpoints,
}

impl Config {
    /// Reads the configuration through `lookup`.
    ///
    /// # Errors
    /// Names the first missing variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config_table: required(lookup, "CONFIG_TABLE")?,
            state_table: required(lookup, "STATE_TABLE")?,
            events_queue_url: required(lookup, "EVENTS_QUEUE_URL")?,
            events_dlq_url: required(lookup, "EVENTS_DLQ_URL")?,
            secret_prefix: required(lookup, "SECRET_PREFIX")?,
            publisher_identifier: required(lookup, "PUBLISHER_IDENTIFIER")?,
            endpoints: M365Endpoints {
                login_base: required(lookup, "M365_LOGIN_BASE")?,
                management_base: required(lookup, "M365_MANAGEMENT_BASE")?,
            },
        })
    }
}

/// Builds the service once per container.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn build(config: &Config, sdk: &SdkConfig) -> Result<PollService, reqwest::Error> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let secrets = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), config.secret_prefix.clone());
    Ok(PollService {
        config: Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone())),
        state: Arc::new(DynamoIngestState::new(dynamo, config.state_table.clone())),
        secrets: Arc::new(CachingSecretStore::new(Arc::new(secrets), Duration::from_secs(300))),
        source: Arc::new(ManagementActivityClient::new(
            vigil::connectors::http_client()?,
            config.endpoints.clone(),
            config.publisher_identifier.clone(),
        )),
        events: Arc::new(SqsQueue::new(sqs.clone(), config.events_queue_url.clone())),
        dead_letters: Arc::new(SqsQueue::new(sqs, config.events_dlq_url.clone())),
        clock: Arc::new(SystemClock),
        settings: PollSettings::default(),
    })
}

/// Handles one scheduled invocation (the EventBridge payload is not needed).
///
/// # Errors
/// When the tenant list cannot be read; per-stream failures are logged and reported, not raised,
/// so one tenant never fails the others.
pub async fn handle(service: &PollService) -> Result<PollReport, vigil::error::StoreError> {
    let report = service.poll_all().await?;
    let metrics = MetricSet::new("audit-poller");
    metrics.count("StreamsPolled", None, report.streams_polled as f64);
    metrics.count("StreamsFailed", None, report.streams_failed as f64);
    metrics.count("BlobsFetched", None, report.blobs_fetched as f64);
    metrics.count("RecordsEnqueued", None, report.records_enqueued as f64);
    metrics.count("RecordsSkipped", None, report.records_skipped as f64);
    metrics.count("ContentQuarantined", None, report.quarantined as f64);
    metrics.flush();
    Ok(report)
}
