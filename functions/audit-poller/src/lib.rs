//! audit-poller: two entry points in one function.
//!
//! - The EventBridge schedule's tick fans out one poll job per (tenant, audit stream) onto the
//!   poll-jobs queue ([`handle_tick`]).
//! - The poll-jobs queue's batches run those jobs, and the fetch jobs webhook-receiver adds
//!   ([`handle_jobs`]). A job Microsoft throttled is made visible again only after the
//!   `Retry-After` it was given, so it never blocks the others.
//!
//! Glue only: the work is [`vigil::services::poll::PollService`].

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::sync::Arc;
use std::time::Duration;
use vigil::aws::dynamodb::{DynamoConfigStore, DynamoIngestState};
use vigil::aws::offboarding::{DynamoOffboardingStore, DynamoTenantData};
use vigil::aws::secrets::SecretsManagerStore;
use vigil::aws::sqs::SqsQueue;
use vigil::call_budget::{BudgetedMicrosoft, CallBudget};
use vigil::clock::SystemClock;
use vigil::connectors::LazyHttp;
use vigil::connectors::graph::GraphAlertsClient;
use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
use vigil::error::{Classified, ErrorClass};
use vigil::lambda::metrics::MetricSet;
use vigil::lambda::sqs_batch::{batch_response, process_messages};
use vigil::secret_cache::CachingSecretStore;
use vigil::services::offboarding::{OffboardingError, OffboardingJob, OffboardingRunner, OffboardingSettings};
use vigil::services::poll::{PollError, PollReport, PollService, PollSettings};
use vigil::settings::{ConfigError, required};

/// The poller's configuration, from the variables template.yaml sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`: tenants.
    pub config_table: String,
    /// `STATE_TABLE`: coverage ledgers and record claims.
    pub state_table: String,
    /// `ALERTS_TABLE`: read and purged only for an offboarded tenant.
    pub alerts_table: String,
    /// `EVENTS_QUEUE_URL`: where records go.
    pub events_queue_url: String,
    /// `EVENTS_DLQ_URL`: where unusable content goes, whole.
    pub events_dlq_url: String,
    /// `POLL_JOBS_QUEUE_URL`: the fan-out's jobs.
    pub poll_jobs_queue_url: String,
    /// `TICKETS_QUEUE_URL`: where the billing sync jobs the day's counts make due go (the
    /// ticket-dispatcher runs them with the PSA credentials this function never reads).
    pub tickets_queue_url: String,
    /// `SECRET_PREFIX`: Vigil's Secrets Manager prefix, e.g. `vigil/prod/`.
    pub secret_prefix: String,
    /// `PUBLISHER_IDENTIFIER`: the operator's Entra tenant GUID, sent on every API call.
    pub publisher_identifier: String,
    /// `M365_LOGIN_BASE`, `M365_MANAGEMENT_BASE`: Microsoft endpoints (per cloud).
    pub endpoints: M365Endpoints,
    /// `M365_GRAPH_BASE`: Microsoft Graph root (per cloud).
    pub graph_base: String,
    /// `WEBHOOK_BASE_URL` (optional): where Microsoft sends notifications, e.g.
    /// `https://<api>/webhooks/o365`; empty polls only.
    pub webhook_base: Option<String>,
    /// `STREAM_STUCK_AFTER_MINUTES` (optional, default 360): how long a stream's coverage may
    /// stay put before a "stream stuck" alert.
    pub stream_stuck_after_minutes: Option<u32>,
    /// `REMOVAL_FOLLOW_UP_SECONDS` (optional, default 30): how long a removal job waits before
    /// looking again at an admin relationship Graph is still terminating.
    pub removal_follow_up_seconds: Option<u32>,
    /// `PARTNER_READ_HEAD_START_SECONDS` (optional, default 120): how long after its customers'
    /// sign-in reads a partner tenant is read.
    pub partner_read_head_start_seconds: Option<u32>,
    /// `NOTIFY_FROM_ADDRESS` (optional): the SES-verified address customers are e-mailed from
    /// (a removal of the MSP's access); empty: no e-mail.
    pub notify_from_address: Option<String>,
    /// This instance's share of the calls to Microsoft (see [`vigil::call_budget`]), from
    /// `POLLER_MAXIMUM_CONCURRENCY` (the poll-jobs trigger's, default 20),
    /// `MICROSOFT_APP_CALLS_PER_MINUTE` (the deployment's per app, default 60,000) and
    /// `MICROSOFT_TENANT_CALLS_PER_MINUTE` (per tenant, default 1,000: half Microsoft's baseline).
    pub budget: vigil::call_budget::BudgetSettings,
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
            alerts_table: required(lookup, "ALERTS_TABLE")?,
            events_queue_url: required(lookup, "EVENTS_QUEUE_URL")?,
            events_dlq_url: required(lookup, "EVENTS_DLQ_URL")?,
            poll_jobs_queue_url: required(lookup, "POLL_JOBS_QUEUE_URL")?,
            tickets_queue_url: required(lookup, "TICKETS_QUEUE_URL")?,
            secret_prefix: required(lookup, "SECRET_PREFIX")?,
            publisher_identifier: required(lookup, "PUBLISHER_IDENTIFIER")?,
            endpoints: M365Endpoints {
                login_base: required(lookup, "M365_LOGIN_BASE")?,
                management_base: required(lookup, "M365_MANAGEMENT_BASE")?,
            },
            graph_base: required(lookup, "M365_GRAPH_BASE")?,
            webhook_base: lookup("WEBHOOK_BASE_URL").filter(|v| !v.trim().is_empty()),
            stream_stuck_after_minutes: match lookup("STREAM_STUCK_AFTER_MINUTES").filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(raw) => Some(raw.trim().parse::<u32>().ok().filter(|m| *m > 0).ok_or_else(|| ConfigError::Invalid {
                    name: "STREAM_STUCK_AFTER_MINUTES",
                    reason: format!("{raw:?} is not a positive number of minutes"),
                })?),
            },
            removal_follow_up_seconds: seconds(lookup, "REMOVAL_FOLLOW_UP_SECONDS")?,
            partner_read_head_start_seconds: seconds(lookup, "PARTNER_READ_HEAD_START_SECONDS")?,
            notify_from_address: lookup("NOTIFY_FROM_ADDRESS").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
            budget: vigil::call_budget::BudgetSettings::share_of(
                positive(lookup, "MICROSOFT_APP_CALLS_PER_MINUTE", 60_000)?,
                positive(lookup, "MICROSOFT_TENANT_CALLS_PER_MINUTE", 1_000)?,
                positive(lookup, "POLLER_MAXIMUM_CONCURRENCY", 20)?,
                u32::try_from(vigil::ids::AuditStream::all().len()).unwrap_or(1),
            ),
        })
    }

    /// The poller's tunables from this configuration.
    #[must_use]
    pub fn poll_settings(&self) -> PollSettings {
        let defaults = PollSettings::default();
        PollSettings {
            webhook_base: self.webhook_base.clone(),
            stuck_after: self.stream_stuck_after_minutes.map_or(defaults.stuck_after, |m| chrono::Duration::minutes(i64::from(m))),
            removal_follow_up: self
                .removal_follow_up_seconds
                .map_or(defaults.removal_follow_up, |s| std::time::Duration::from_secs(u64::from(s))),
            partner_read_head_start: self
                .partner_read_head_start_seconds
                .map_or(defaults.partner_read_head_start, |s| std::time::Duration::from_secs(u64::from(s))),
            ..defaults
        }
    }
}

/// An optional positive number, `default` when unset.
fn positive(lookup: &dyn Fn(&str) -> Option<String>, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::Invalid { name, reason: format!("{raw:?} is not a positive number") }),
    }
}

/// An optional number of seconds, 1 to 900 (an SQS delay's range).
fn seconds(lookup: &dyn Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<u32>, ConfigError> {
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|s| (1..=900).contains(s))
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid { name, reason: format!("{raw:?} is not 1 to 900 seconds") }),
    }
}

pub use vigil::lambda::retry::RetryDelay;

/// [`RetryDelay`] on the poll-jobs queue.
pub struct SqsRetryDelay(pub vigil::aws::sqs::SqsVisibility);

#[async_trait]
impl RetryDelay for SqsRetryDelay {
    async fn delay(&self, receipt_handle: &str, delay: Duration) {
        self.0.delay(receipt_handle, delay).await;
    }
}

/// Everything the poller's handlers need, built once per container.
pub struct Poller {
    pub service: PollService,
    /// Offboarding jobs (on the same queue) and the tick's look for due purges.
    pub offboarding: OffboardingRunner,
    pub retry: Arc<dyn RetryDelay>,
}

/// Builds the poller once per container.
///
/// Only cheap work here: the SDK clients share `sdk`'s HTTP client, and the Microsoft clients
/// share one [`LazyHttp`], built on the first Microsoft request rather than at cold start (an
/// empty batch or a tick with no tenants never pays for it).
#[must_use]
pub fn build(config: &Config, sdk: &SdkConfig) -> Poller {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let secrets = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), config.secret_prefix.clone());
    let http = LazyHttp::new();
    let management = Arc::new(ManagementActivityClient::new(http.clone(), config.endpoints.clone(), config.publisher_identifier.clone()));
    // Every stream call to Microsoft within this instance's share (per app, per tenant, holds
    // after a 429).
    let microsoft = Arc::new(BudgetedMicrosoft {
        budget: Arc::new(CallBudget::new(config.budget.clone(), Arc::new(SystemClock))),
        audit: management.clone(),
        subscriptions: management,
        alerts: Arc::new(GraphAlertsClient::new(http.clone(), config.endpoints.login_base.clone(), config.graph_base.clone())),
    });
    let service = PollService {
        config: Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone())),
        state: Arc::new(DynamoIngestState::new(dynamo.clone(), config.state_table.clone())),
        secrets: Arc::new(CachingSecretStore::new(Arc::new(secrets), Duration::from_secs(300))),
        source: microsoft.clone(),
        subscriptions: microsoft.clone(),
        security_alerts: microsoft,
        mailbox_directory: Arc::new(vigil::connectors::mailboxes::DirectoryClient::new(
            http.clone(),
            config.endpoints.login_base.clone(),
            config.graph_base.clone(),
        )),
        mailbox_counts: Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone())),
        billing_jobs: Arc::new(SqsQueue::new(sqs.clone(), config.tickets_queue_url.clone())),
        relationship_source: Arc::new(vigil::connectors::partner::PartnerRelationshipsClient::new(
            http.clone(),
            config.endpoints.login_base.clone(),
            config.graph_base.clone(),
        )),
        relationships: Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone())),
        mail: Arc::new(vigil::aws::mail::SesMailSender::new(aws_sdk_sesv2::Client::new(sdk), config.notify_from_address.clone())),
        licences: vigil::services::poll::LicencePorts {
            source: Arc::new(vigil::connectors::licences::GraphLicencesClient::new(
                http,
                config.endpoints.login_base.clone(),
                config.graph_base.clone(),
            )),
            store: Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone())),
            policies: Arc::new(vigil::aws::policy_store::DynamoPolicyStore::new(dynamo.clone(), config.config_table.clone())),
        },
        events: Arc::new(SqsQueue::new(sqs.clone(), config.events_queue_url.clone())),
        dead_letters: Arc::new(SqsQueue::new(sqs.clone(), config.events_dlq_url.clone())),
        jobs: Arc::new(SqsQueue::new(sqs.clone(), config.poll_jobs_queue_url.clone())),
        replays: Arc::new(vigil::aws::replays::DynamoReplayStore::new(dynamo.clone(), config.state_table.clone())),
        clock: Arc::new(SystemClock),
        settings: config.poll_settings(),
    };
    let offboarding = OffboardingRunner {
        config: service.config.clone(),
        offboardings: Arc::new(DynamoOffboardingStore::new(dynamo.clone(), config.config_table.clone())),
        data: Arc::new(DynamoTenantData::new(
            dynamo.clone(),
            config.config_table.clone(),
            config.state_table.clone(),
            config.alerts_table.clone(),
        )),
        secrets: service.secrets.clone(),
        subscriptions: service.subscriptions.clone(),
        audit: Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone())),
        jobs: service.jobs.clone(),
        clock: service.clock.clone(),
        settings: OffboardingSettings::default(),
    };
    Poller {
        service,
        offboarding,
        retry: Arc::new(SqsRetryDelay(vigil::aws::sqs::SqsVisibility { client: sqs, queue_url: config.poll_jobs_queue_url.clone() })),
    }
}

/// True when an invocation's payload is an SQS batch (else it is the schedule's tick).
#[must_use]
pub fn is_sqs_batch(payload: &serde_json::Value) -> bool {
    payload.get("Records").is_some_and(serde_json::Value::is_array)
}

/// The schedule's tick: enqueue one job per (tenant, stream).
///
/// # Errors
/// When tenants cannot be listed or jobs cannot be enqueued (the tick is then retried by
/// EventBridge's asynchronous invocation retries, and the next tick comes anyway).
pub async fn handle_tick(poller: &Poller) -> Result<usize, JobError> {
    let jobs = poller.service.fan_out().await?;
    // Offboardings whose retention ended (or whose work stalled) get their job.
    let offboardings = poller.offboarding.send_due_jobs().await?;
    let jobs = jobs + offboardings;
    let metrics = MetricSet::new("audit-poller");
    metrics.count("PollJobsEnqueued", None, jobs as f64);
    metrics.flush();
    Ok(jobs)
}

/// Why a job (or the tick) failed: polling's or offboarding's error, classified as it is.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Poll(#[from] PollError),
    #[error(transparent)]
    Offboarding(#[from] OffboardingError),
}

impl Classified for JobError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Poll(e) => e.class(),
            Self::Offboarding(e) => e.class(),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Poll(e) => e.retry_after(),
            Self::Offboarding(e) => e.retry_after(),
        }
    }
}

/// One batch of poll jobs. Failed jobs are reported for retry; a throttled one is delayed by
/// Microsoft's `Retry-After`.
pub async fn handle_jobs(poller: &Poller, event: SqsEvent) -> (SqsBatchResponse, PollReport) {
    let metrics = MetricSet::new("audit-poller");
    let outcomes = process_messages(event.records, 5, |body| async move {
        match OffboardingJob::parse(&body) {
            Some(job) => {
                poller.offboarding.run(&job).await?;
                Ok::<_, JobError>(PollReport::default())
            }
            None => Ok(poller.service.handle_job(&body).await?),
        }
    })
    .await;
    let mut report = PollReport::default();
    for done in outcomes.iter().filter_map(|o| o.value.as_ref()) {
        report.add(done);
    }
    for outcome in &outcomes {
        if let (Some(delay), Some(handle)) = (outcome.retry_after, outcome.receipt_handle.as_deref()) {
            poller.retry.delay(handle, delay).await;
        }
    }
    metrics.count("BlobsFetched", None, report.blobs_fetched as f64);
    metrics.count("RecordsEnqueued", None, report.records_enqueued as f64);
    metrics.count("RecordsSkipped", None, report.records_skipped as f64);
    metrics.count("ContentQuarantined", None, report.quarantined as f64);
    metrics.count("IntervalsLost", None, report.intervals_lost as f64);
    // Coverage: streams polled to date vs streams whose poll failed for good (template.yaml's
    // PollCoverageAlarm and dashboard compute 100 × polled ÷ (polled + failed)).
    metrics.count("StreamsPolled", None, report.streams_polled as f64);
    metrics.count("StreamsFailed", None, report.streams_failed as f64);
    metrics.count("StreamsStuck", None, report.streams_stuck as f64);
    let response = batch_response(&outcomes, &metrics);
    metrics.flush();
    (response, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(extra: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            let optional = [
                "STREAM_STUCK_AFTER_MINUTES",
                "REMOVAL_FOLLOW_UP_SECONDS",
                "PARTNER_READ_HEAD_START_SECONDS",
                "WEBHOOK_BASE_URL",
                "MICROSOFT_APP_CALLS_PER_MINUTE",
                "MICROSOFT_TENANT_CALLS_PER_MINUTE",
                "POLLER_MAXIMUM_CONCURRENCY",
            ];
            extra
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| (!optional.contains(&name)).then(|| format!("{name}-value")))
        }
    }

    #[test]
    fn the_stuck_stream_delay_defaults_to_six_hours_and_can_be_set_in_minutes() {
        let defaults = Config::from_lookup(&lookup(&[("STREAM_STUCK_AFTER_MINUTES", ""), ("WEBHOOK_BASE_URL", "")])).unwrap();
        assert_eq!(defaults.poll_settings().stuck_after, chrono::Duration::hours(6));
        let set = Config::from_lookup(&lookup(&[("STREAM_STUCK_AFTER_MINUTES", "90")])).unwrap();
        assert_eq!(set.poll_settings().stuck_after, chrono::Duration::minutes(90));
        assert!(matches!(
            Config::from_lookup(&lookup(&[("STREAM_STUCK_AFTER_MINUTES", "soon")])),
            Err(ConfigError::Invalid { name: "STREAM_STUCK_AFTER_MINUTES", .. })
        ));
    }

    #[test]
    fn removals_are_followed_every_30_seconds_unless_set_between_1_and_900() {
        let defaults = Config::from_lookup(&lookup(&[])).unwrap();
        assert_eq!(defaults.poll_settings().removal_follow_up, std::time::Duration::from_secs(30));
        assert_eq!(defaults.poll_settings().partner_read_head_start, std::time::Duration::from_secs(120));
        let head_start = Config::from_lookup(&lookup(&[("PARTNER_READ_HEAD_START_SECONDS", "5")])).unwrap();
        assert_eq!(head_start.poll_settings().partner_read_head_start, std::time::Duration::from_secs(5));
        let set = Config::from_lookup(&lookup(&[("REMOVAL_FOLLOW_UP_SECONDS", "1")])).unwrap();
        assert_eq!(set.poll_settings().removal_follow_up, std::time::Duration::from_secs(1));
        for bad in
            [&[("REMOVAL_FOLLOW_UP_SECONDS", "0")], &[("REMOVAL_FOLLOW_UP_SECONDS", "901")], &[("REMOVAL_FOLLOW_UP_SECONDS", "soon")]]
        {
            assert!(matches!(Config::from_lookup(&lookup(bad)), Err(ConfigError::Invalid { name: "REMOVAL_FOLLOW_UP_SECONDS", .. })));
        }
    }

    #[test]
    fn each_instance_takes_its_share_of_the_microsoft_budgets() {
        let defaults = Config::from_lookup(&lookup(&[])).unwrap();
        assert_eq!((defaults.budget.app_per_minute, defaults.budget.tenant_per_minute), (3_000, 166));
        let set = Config::from_lookup(&lookup(&[
            ("MICROSOFT_APP_CALLS_PER_MINUTE", "10000"),
            ("MICROSOFT_TENANT_CALLS_PER_MINUTE", "600"),
            ("POLLER_MAXIMUM_CONCURRENCY", "50"),
        ]))
        .unwrap();
        assert_eq!((set.budget.app_per_minute, set.budget.tenant_per_minute), (200, 100));
        assert!(matches!(
            Config::from_lookup(&lookup(&[("POLLER_MAXIMUM_CONCURRENCY", "0")])),
            Err(ConfigError::Invalid { name: "POLLER_MAXIMUM_CONCURRENCY", .. })
        ));
    }
}
