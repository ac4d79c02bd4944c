//! ticket-dispatcher: consumes the tickets queue and brings each alert's tickets up to date in
//! every destination (fan-out, create, notes, close, replace), and on its schedule reads the
//! state of open tickets back from each PSA; the billing sync jobs the poller sends on the
//! tickets queue (after an MSP's daily counts, on its schedule) run the billing sync here, where
//! the PSA credentials are. Glue only: the work is
//! [`vigil::services::dispatch::DispatchService`].
//!
//! A failed delivery is retried after the PSA's `Retry-After`, or, for a transient failure,
//! after an exponential backoff on the receive count ([`Backoff::TICKETS`] by default): with the queue's
//! `maxReceiveCount` of 20, a delivery outlives hours of PSA outage instead of reaching the
//! dead-letter queue. The HTTP client (and its TLS roots) is built on the first PSA call, not
//! at start.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore};
use vigil::aws::policy_store::DynamoPolicyStore;
use vigil::aws::request_budget::DynamoRequestBudget;
use vigil::aws::secrets::SecretsManagerStore;
use vigil::aws::sqs::{SqsQueue, SqsVisibility};
use vigil::clock::SystemClock;
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::connectors::psa::PsaProvider;
use vigil::lambda::metrics::MetricSet;
use vigil::lambda::retry::{Backoff, RetryDelay, retry_delay_for};
use vigil::lambda::sqs_batch::{batch_response, process_messages};
use vigil::secret_cache::CachingSecretStore;
use vigil::services::billing_sync::BillingSyncService;
use vigil::services::dispatch::credentials::CredentialsWatch;
use vigil::services::dispatch::fairness::MspShare;
use vigil::services::dispatch::readback::ReadBackReport;
use vigil::services::dispatch::{DispatchError, DispatchOutcome, DispatchService, DispatchSettings};
use vigil::settings::{ConfigError, parsed_or, required};

/// The dispatcher's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`: tenants (company links) and destinations.
    pub config_table: String,
    /// `ALERTS_TABLE`: alerts, delivery state and the destinations' request budgets.
    pub alerts_table: String,
    /// `TICKETS_QUEUE_URL`: the queue this function consumes (fan-out sends to it).
    pub tickets_queue_url: String,
    /// `EVENTS_QUEUE_URL`: the evaluator's queue, where the billing sync reports quantities
    /// changed by hand in a PSA.
    pub events_queue_url: String,
    /// `SECRET_PREFIX`: Vigil's Secrets Manager prefix.
    pub secret_prefix: String,
    /// `DELIVERY_LEASE_SECONDS` (default 60): how long one invocation owns a delivery;
    /// at least the function timeout.
    pub lease_seconds: i64,
    /// `API_BASE_URL` (optional): Vigil's API address, for links in tickets.
    pub api_base: Option<String>,
    /// `RETRY_FIRST_SECONDS` / `RETRY_MAX_SECONDS` (default 30 / 900): the backoff of a
    /// transient failure without `Retry-After` (the local stack's tests shorten it).
    pub backoff: Backoff,
    /// `DESTINATION_ALLOW_LOOPBACK` (default `false`; only the local stack sets it): which PSA
    /// addresses the dispatcher will call.
    pub destination_policy: DestinationPolicy,
    /// `NOTIFY_FROM_ADDRESS` (optional): the SES-verified address e-mail destinations send
    /// from; unset: e-mail destinations cannot be delivered (their deliveries dead-letter).
    pub notify_from_address: Option<String>,
    /// `MSP_DELIVERIES_PER_MINUTE` (default 120; `0`: no share): deliveries one MSP may make
    /// per minute across all instances, so one MSP's storm does not delay another's tickets
    /// ([`vigil::services::dispatch::fairness`]).
    pub msp_deliveries_per_minute: u32,
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
            tickets_queue_url: required(lookup, "TICKETS_QUEUE_URL")?,
            events_queue_url: required(lookup, "EVENTS_QUEUE_URL")?,
            secret_prefix: required(lookup, "SECRET_PREFIX")?,
            lease_seconds: parsed_or(lookup, "DELIVERY_LEASE_SECONDS", 60)?,
            api_base: lookup("API_BASE_URL").filter(|v| !v.trim().is_empty()),
            backoff: Backoff {
                first: Duration::from_secs(parsed_or(lookup, "RETRY_FIRST_SECONDS", Backoff::TICKETS.first.as_secs())?.max(1)),
                max: Duration::from_secs(parsed_or(lookup, "RETRY_MAX_SECONDS", Backoff::TICKETS.max.as_secs())?.max(1)),
            },
            destination_policy: DestinationPolicy::from_lookup(lookup)?,
            notify_from_address: lookup("NOTIFY_FROM_ADDRESS").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
            msp_deliveries_per_minute: parsed_or(lookup, "MSP_DELIVERIES_PER_MINUTE", 120)?,
        })
    }
}

/// Everything the dispatcher's handlers need, built once per container.
pub struct Dispatcher {
    pub service: DispatchService,
    /// Each MSP's share of deliveries (`None`: unlimited).
    pub share: Option<MspShare>,
    pub retry: Arc<dyn RetryDelay>,
    pub backoff: Backoff,
}

struct SqsRetryDelay(SqsVisibility);

#[async_trait]
impl RetryDelay for SqsRetryDelay {
    async fn delay(&self, receipt_handle: &str, delay: Duration) {
        self.0.delay(receipt_handle, delay).await;
    }
}

/// Builds the dispatcher once per container. Makes no network call and loads no TLS roots:
/// the PSA client is built on first use.
#[must_use]
pub fn build(config: &Config, sdk: &SdkConfig) -> Dispatcher {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let config_store = Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone()));
    let secrets = Arc::new(CachingSecretStore::new(
        Arc::new(SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), config.secret_prefix.clone())),
        Duration::from_secs(300),
    ));
    let clock = Arc::new(SystemClock);
    // The destinations' request budgets live beside the deliveries.
    let budget = Arc::new(DynamoRequestBudget::new(dynamo.clone(), config.alerts_table.clone()));
    let systems = Arc::new(
        PsaProvider::new(secrets, config.destination_policy, budget, clock.clone())
            .with_mail(Arc::new(vigil::aws::mail::SesMailSender::new(aws_sdk_sesv2::Client::new(sdk), config.notify_from_address.clone()))),
    );
    let events: Arc<SqsQueue> = Arc::new(SqsQueue::new(sqs.clone(), config.events_queue_url.clone()));
    let billing_sync = Arc::new(BillingSyncService {
        billing: config_store.clone(),
        counts: config_store.clone(),
        destinations: config_store.clone(),
        targets: systems.clone(),
        events: events.clone(),
        clock: clock.clone(),
    });
    let service = DispatchService {
        config: config_store.clone(),
        destinations: config_store.clone(),
        alerts: Arc::new(DynamoAlertStore::new(dynamo.clone(), config.alerts_table.clone())),
        policies: Arc::new(DynamoPolicyStore::new(dynamo.clone(), config.config_table.clone())),
        systems,
        tickets: Arc::new(SqsQueue::new(sqs.clone(), config.tickets_queue_url.clone())),
        billing_sync: Some(billing_sync),
        // A destination refusing Vigil's credentials raises Vigil's own alert (the evaluator's
        // queue, as for the billing reports).
        credentials: Some(CredentialsWatch { episodes: config_store.clone(), events }),
        clock,
        settings: DispatchSettings { lease: chrono::Duration::seconds(config.lease_seconds.max(1)), api_base: config.api_base.clone() },
    };
    let share = (config.msp_deliveries_per_minute > 0).then(|| MspShare {
        limiter: Arc::new(vigil::aws::rate_limits::DynamoRateLimiter::new(dynamo.clone(), config.alerts_table.clone())),
        per_minute: config.msp_deliveries_per_minute,
    });
    Dispatcher {
        service,
        share,
        retry: Arc::new(SqsRetryDelay(SqsVisibility { client: sqs, queue_url: config.tickets_queue_url.clone() })),
        backoff: config.backoff,
    }
}

/// True when an invocation's payload is an SQS batch (else it is the read-back schedule's tick).
#[must_use]
pub fn is_sqs_batch(payload: &serde_json::Value) -> bool {
    payload.get("Records").is_some_and(serde_json::Value::is_array)
}

fn metric_of(outcome: &DispatchOutcome) -> &'static str {
    match outcome {
        DispatchOutcome::FannedOut(_) => "ChangesFannedOut",
        DispatchOutcome::TicketCreated(_) => "TicketsCreated",
        DispatchOutcome::TicketRecovered(_) => "TicketsRecovered",
        DispatchOutcome::TicketReplaced { .. } => "TicketsReplaced",
        DispatchOutcome::NoteAdded(_) => "NotesAdded",
        DispatchOutcome::TicketClosed(_) => "TicketsClosed",
        DispatchOutcome::TicketGone(_) => "TicketsGone",
        DispatchOutcome::UpToDate => "AlreadyUpToDate",
        DispatchOutcome::HeldByDailyLimit => "HeldByDailyLimit",
        DispatchOutcome::HeldUntilLinked => "HeldUntilLinked",
        DispatchOutcome::Shadow => "ShadowNotDispatched",
        DispatchOutcome::Suppressed => "SuppressedBeforeTicket",
        DispatchOutcome::DestinationUnavailable => "DestinationUnavailable",
        DispatchOutcome::StatesRead(_) => "TicketCallbacksRead",
        DispatchOutcome::Deferred(_) => "DeliveriesDeferredOverShare",
        DispatchOutcome::MessagePosted(_) => "MessagesPosted",
        DispatchOutcome::MessageUncertain(_) => "MessagesUncertain",
        DispatchOutcome::BillingSynced { .. } => "BillingSyncsRun",
    }
}

/// Handles one SQS batch: each failed message is reported for retry and delayed by the PSA's
/// `Retry-After` or the backoff.
pub async fn handle(dispatcher: &Dispatcher, event: SqsEvent) -> SqsBatchResponse {
    let metrics = MetricSet::new("ticket-dispatcher");
    let receive_counts: HashMap<String, u32> = event
        .records
        .iter()
        .map(|m| {
            let count = m.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
            (m.message_id.clone().unwrap_or_default(), count)
        })
        .collect();
    let outcomes =
        process_messages(
            event.records,
            4,
            |body| async move { dispatcher.service.handle_within_share(dispatcher.share.as_ref(), &body).await },
        )
        .await;
    for outcome in &outcomes {
        if let Some(value) = &outcome.value {
            metrics.count(metric_of(value), None, 1.0);
        }
        let receive_count = receive_counts.get(&outcome.message_id).copied().unwrap_or(1);
        if let (Some(delay), Some(handle)) =
            (retry_delay_for(outcome, receive_count, dispatcher.backoff), outcome.receipt_handle.as_deref())
        {
            dispatcher.retry.delay(handle, delay).await;
        }
    }
    let response = batch_response(&outcomes, &metrics);
    metrics.flush();
    response
}

/// The schedule's tick: reads back the open tickets of every destination.
///
/// # Errors
/// When destinations cannot be listed (one failing PSA is counted, not an error).
pub async fn handle_tick(dispatcher: &Dispatcher) -> Result<ReadBackReport, DispatchError> {
    let report = dispatcher.service.read_back_all().await?;
    let metrics = MetricSet::new("ticket-dispatcher");
    metrics.count("TicketStatesRead", None, report.checked as f64);
    metrics.count("TicketsClosedInPsa", None, report.closed as f64);
    metrics.count("TicketsGoneFromPsa", None, report.gone as f64);
    metrics.count("ReadBackFailures", None, report.failed_destinations as f64);
    metrics.flush();
    Ok(report)
}
