//! ticket-dispatcher: consumes the tickets queue and brings each announced alert's ConnectWise
//! ticket up to date (create once, then notes). Glue only: the work is
//! [`vigil::services::dispatch::DispatchService`].

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::sync::Arc;
use std::time::Duration;
use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore};
use vigil::aws::policy_store::DynamoPolicyStore;
use vigil::aws::secrets::SecretsManagerStore;
use vigil::clock::SystemClock;
use vigil::connectors::connectwise::ConnectWiseSinkProvider;
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::lambda::metrics::MetricSet;
use vigil::lambda::sqs_batch::process_batch;
use vigil::secret_cache::CachingSecretStore;
use vigil::services::dispatch::{DispatchOutcome, DispatchService, DispatchSettings};
use vigil::settings::{ConfigError, parsed_or, required};

/// The dispatcher's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`: tenants (company mapping) and PSA settings.
    pub config_table: String,
    /// `ALERTS_TABLE`: alerts and delivery state.
    pub alerts_table: String,
    /// `SECRET_PREFIX`: Vigil's Secrets Manager prefix.
    pub secret_prefix: String,
    /// `DELIVERY_LEASE_SECONDS` (default 60): how long one invocation owns a delivery;
    /// at least the function timeout.
    pub lease_seconds: i64,
    /// `DESTINATION_ALLOW_LOOPBACK` (default `false`; only the local stack sets it): which PSA
    /// addresses the dispatcher will call.
    pub destination_policy: DestinationPolicy,
}

impl Config {
    /// Reads the configuration through `lookup`.
    ///
    /// # Errors
    /// Names the first missing or invalid variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config_table: required(lookup, "CONFIG_TABLE")?,
            alerts_table: required(lookup, "ALERTS_TABLE")?,
            secret_prefix: required(lookup, "SECRET_PREFIX")?,
            lease_seconds: parsed_or(lookup, "DELIVERY_LEASE_SECONDS", 60)?,
            destination_policy: DestinationPolicy::from_lookup(lookup)?,
        })
    }
}

/// Builds the service once per container.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn build(config: &Config, sdk: &SdkConfig) -> Result<DispatchService, reqwest::Error> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let config_store = Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone()));
    let secrets = Arc::new(CachingSecretStore::new(
        Arc::new(SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), config.secret_prefix.clone())),
        Duration::from_secs(300),
    ));
    Ok(DispatchService {
        config: config_store.clone(),
        alerts: Arc::new(DynamoAlertStore::new(dynamo.clone(), config.alerts_table.clone())),
        policies: Arc::new(DynamoPolicyStore::new(dynamo, config.config_table.clone())),
        sinks: Arc::new(
            ConnectWiseSinkProvider::new(config_store, secrets, destination_http_client(config.destination_policy)?)
                .with_destination_policy(config.destination_policy),
        ),
        clock: Arc::new(SystemClock),
        settings: DispatchSettings { lease: chrono::Duration::seconds(config.lease_seconds.max(1)) },
    })
}

/// Handles one SQS batch, reporting each failed message for retry (and, eventually, the DLQ).
pub async fn handle(service: &DispatchService, event: SqsEvent) -> SqsBatchResponse {
    let metrics = MetricSet::new("ticket-dispatcher");
    let response = process_batch(event, 4, &metrics, |body| {
        let metrics = &metrics;
        async move {
            let metric = match service.handle(&body).await? {
                DispatchOutcome::TicketCreated(_) => "TicketsCreated",
                DispatchOutcome::TicketRecovered(_) => "TicketsRecovered",
                DispatchOutcome::NoteAdded(_) => "NotesAdded",
                DispatchOutcome::ResolutionNoted(_) => "ResolutionsNoted",
                DispatchOutcome::UpToDate => "AlreadyUpToDate",
                DispatchOutcome::HeldByDailyLimit => "HeldByDailyLimit",
                DispatchOutcome::Shadow => "ShadowNotDispatched",
                DispatchOutcome::Suppressed => "SuppressedBeforeTicket",
            };
            metrics.count(metric, None, 1.0);
            Ok::<(), vigil::services::dispatch::DispatchError>(())
        }
    })
    .await;
    metrics.flush();
    response
}
