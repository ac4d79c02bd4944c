//! The local stack: moto server, the Microsoft 365, ConnectWise and Autotask simulators, the resources
//! template.yaml declares, and the real handlers of all five functions — a timer plays the
//! EventBridge schedule, event source mappings play SQS → Lambda, a gateway plays the HTTP API.
//! Everything listens on 127.0.0.1 only.

use crate::esm::{BatchHandler, EventSourceMapping, MappingStats};
use crate::gateway::{Route, gateway, route_prefix};
use crate::moto::{MotoServer, free_port, wait_ready};
use crate::provision::{ProvisionOptions, Provisioned, provision};
use crate::template::{EventSpec, StackModel, rate_seconds};
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil::ids::MspId;
use vigil::secret::SecretString;
use vigil::services::poll::PollReport;
use vigil_simulators::autotask::{AutotaskCredentials, AutotaskSim, AutotaskSimHandle};
use vigil_simulators::channels::{ChannelsSim, ChannelsSimHandle};
use vigil_simulators::connectwise::{ConnectWiseCredentials, ConnectWiseSim, ConnectWiseSimHandle};
use vigil_simulators::halopsa::{HaloSim, HaloSimConfig, HaloSimHandle};
use vigil_simulators::m365::{M365Sim, M365SimHandle};
use vigil_simulators::tigerpaw::{AuthForm, TigerpawKeys, TigerpawSim, TigerpawSimHandle};

/// Why the stack could not start or settle.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    #[error(transparent)]
    Moto(#[from] crate::moto::MotoError),
    #[error(transparent)]
    Provision(#[from] crate::provision::ProvisionError),
    #[error("function configuration: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the stack did not settle within {0:?}")]
    NotIdle(Duration),
    #[error("{0}")]
    Other(String),
}

/// How to run the stack.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Use this AWS endpoint (a running moto); `None` starts a private moto server.
    pub aws_endpoint: Option<String>,
    /// Run the schedule timer. Tests turn it off and call [`LocalStack::poll_and_settle`].
    pub run_schedule: bool,
    /// Replace the template's schedule rate (e.g. seconds for a demo).
    pub schedule_interval: Option<Duration>,
    /// Replace every queue's visibility timeout (seconds), so retries happen quickly.
    pub visibility_timeout_override: Option<u32>,
    /// The dispatcher's delivery lease in seconds (`DELIVERY_LEASE_SECONDS`).
    pub delivery_lease_seconds: Option<u32>,
    /// Replace every function's timeout (the event source mappings kill invocations after it).
    pub function_timeout_override: Option<Duration>,
    /// Gateway port; `None` picks a free one.
    pub gateway_port: Option<u16>,
    /// The dispatcher's first retry delay in seconds (`RETRY_FIRST_SECONDS`; the backoff's
    /// longest is four times it); `None`: the template's 30 s doubling to 15 min.
    pub retry_first_seconds: Option<u64>,
    /// The operator's publisher identifier (a GUID).
    pub publisher_identifier: String,
}

impl LocalOptions {
    /// What `make up` / `make demo` use: template values, a schedule every few seconds.
    #[must_use]
    pub fn interactive() -> Self {
        Self {
            aws_endpoint: std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()),
            run_schedule: true,
            schedule_interval: Some(Duration::from_secs(5)),
            visibility_timeout_override: Some(10),
            delivery_lease_seconds: Some(30),
            function_timeout_override: None,
            gateway_port: None,
            retry_first_seconds: Some(2),
            publisher_identifier: "9a1c8f7e-0000-4000-8000-00000000aa01".into(),
        }
    }

    /// What integration tests use: a shared moto if `AWS_ENDPOINT_URL` is set, no timer,
    /// short visibility timeouts and leases so retries and redrives take seconds.
    #[must_use]
    pub fn for_tests() -> Self {
        Self {
            run_schedule: false,
            schedule_interval: None,
            visibility_timeout_override: Some(2),
            delivery_lease_seconds: Some(2),
            function_timeout_override: Some(Duration::from_secs(8)),
            retry_first_seconds: Some(1),
            ..Self::interactive()
        }
    }
}

/// Counters across the stack.
#[derive(Debug, Default)]
pub struct StackStats {
    pub ticks: AtomicU64,
    /// Everything the poll jobs did so far.
    pub polling: std::sync::Mutex<PollReport>,
}

impl StackStats {
    /// A copy of the polling totals.
    #[must_use]
    pub fn polling(&self) -> PollReport {
        self.polling.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// `after - before`, counter by counter.
#[must_use]
pub fn report_since(after: &PollReport, before: &PollReport) -> PollReport {
    PollReport {
        streams_polled: after.streams_polled - before.streams_polled,
        streams_failed: after.streams_failed - before.streams_failed,
        windows_listed: after.windows_listed - before.windows_listed,
        blobs_fetched: after.blobs_fetched - before.blobs_fetched,
        records_enqueued: after.records_enqueued - before.records_enqueued,
        records_skipped: after.records_skipped - before.records_skipped,
        quarantined: after.quarantined - before.quarantined,
        intervals_lost: after.intervals_lost - before.intervals_lost,
        windows_refused: after.windows_refused - before.windows_refused,
        connection_problems_resolved: after.connection_problems_resolved - before.connection_problems_resolved,
        streams_stuck: after.streams_stuck - before.streams_stuck,
        stuck_streams_moving: after.stuck_streams_moving - before.stuck_streams_moving,
    }
}

/// A running local stack.
pub struct LocalStack {
    pub model: StackModel,
    pub provisioned: Provisioned,
    pub sdk: SdkConfig,
    pub aws_endpoint: String,
    pub m365: M365SimHandle,
    pub connectwise: ConnectWiseSimHandle,
    pub autotask: AutotaskSimHandle,
    /// A Halo-hosted HaloPSA instance.
    pub halopsa: HaloSimHandle,
    /// A Tigerpaw server taking TSI authorization.
    pub tigerpaw: TigerpawSimHandle,
    /// Teams Workflows, Slack webhooks and a signed-webhook receiver.
    pub channels: ChannelsSimHandle,
    /// Base URL of the gateway (config API under `/v1`, webhooks under `/webhooks`).
    pub api_url: String,
    pub stats: Arc<StackStats>,
    pub mappings: BTreeMap<String, Arc<MappingStats>>,
    /// The operator's side of the config store (creating MSPs and their first owners).
    pub operator: Arc<vigil::services::access::AccessService>,
    poller: Arc<audit_poller::Poller>,
    dispatcher: Arc<ticket_dispatcher::Dispatcher>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    moto: Option<MotoServer>,
}

fn config_error(error: impl std::fmt::Display) -> StackError {
    StackError::Config(error.to_string())
}

impl LocalStack {
    /// Starts everything and returns once it all answers.
    ///
    /// # Errors
    /// When moto, a simulator, provisioning or a function's configuration fails.
    pub async fn start(options: LocalOptions) -> Result<Self, StackError> {
        let model = StackModel::load(&crate::repo_root().join("template.yaml"))?;
        let (moto, aws_endpoint) = match &options.aws_endpoint {
            Some(endpoint) => {
                wait_ready(endpoint).await?;
                (None, endpoint.clone())
            }
            None => {
                let server = MotoServer::start().await?;
                let endpoint = server.endpoint().to_owned();
                (Some(server), endpoint)
            }
        };
        let sdk = vigil::aws::sdk_config_for_emulator(&aws_endpoint).await;
        let m365 = M365Sim::start().await?;
        let connectwise = ConnectWiseSim::start(ConnectWiseCredentials::sample()).await?;
        let autotask = AutotaskSim::start(AutotaskCredentials::sample()).await?;
        let halopsa = HaloSim::start(HaloSimConfig::hosted()).await?;
        let tigerpaw = TigerpawSim::start(TigerpawKeys::sample(), AuthForm::Tsi).await?;
        let channels = ChannelsSim::start().await?;

        let prefix = format!("vigil-{}-", vigil::contract::unique_suffix());
        let stage = format!("local{}", &prefix[6..12]);
        let provision_options = ProvisionOptions {
            prefix,
            parameters: BTreeMap::from([
                ("Stage".to_owned(), stage),
                ("PublisherIdentifier".to_owned(), options.publisher_identifier.clone()),
            ]),
            visibility_timeout_override: options.visibility_timeout_override,
        };
        let provisioned = provision(&model, &sdk, &provision_options).await?;
        let port = match options.gateway_port {
            Some(port) => port,
            None => free_port()?,
        };
        let api_url = format!("http://127.0.0.1:{port}");
        let mut overrides = BTreeMap::from([
            ("WEBHOOK_BASE_URL".to_owned(), format!("{api_url}/webhooks/o365")),
            ("M365_LOGIN_BASE".to_owned(), m365.login_base()),
            ("M365_MANAGEMENT_BASE".to_owned(), m365.management_base()),
            ("M365_GRAPH_BASE".to_owned(), m365.graph_base()),
            // The ConnectWise simulator listens on 127.0.0.1 over http: an explicit opt-in that
            // template.yaml never makes (see vigil::connectors::destination_url).
            (vigil::connectors::destination_url::ALLOW_LOOPBACK_VARIABLE.to_owned(), "true".to_owned()),
        ]);
        if let Some(lease) = options.delivery_lease_seconds {
            overrides.insert("DELIVERY_LEASE_SECONDS".into(), lease.to_string());
        }
        if let Some(first) = options.retry_first_seconds {
            overrides.insert("RETRY_FIRST_SECONDS".into(), first.to_string());
            overrides.insert("RETRY_MAX_SECONDS".into(), (first * 4).to_string());
        }
        // Customers are e-mailed from a sender verified in (moto's) SES.
        let sender = "vigil@local.example";
        match aws_sdk_sesv2::Client::new(&sdk).create_email_identity().email_identity(sender).send().await {
            Ok(_) => {}
            // Another stack on the same moto verified it already.
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_sesv2::operation::create_email_identity::CreateEmailIdentityError::is_already_exists_exception,
                ) => {}
            Err(e) => return Err(StackError::Other(format!("verify the SES sender: {}", aws_sdk_sesv2::error::DisplayErrorContext(e)))),
        }
        overrides.insert("NOTIFY_FROM_ADDRESS".into(), sender.into());
        // Removals are followed every second here (the simulator terminates in three reads).
        overrides.insert("REMOVAL_FOLLOW_UP_SECONDS".into(), "1".into());
        // The partner tenant is read a second after its customers' sign-in logs here.
        overrides.insert("PARTNER_READ_HEAD_START_SECONDS".into(), "1".into());
        overrides.insert("API_BASE_URL".into(), api_url.clone());
        overrides.insert("PSA_CALLBACK_BASE_URL".into(), format!("{api_url}/webhooks/psa"));
        let env_of = |id: &str| -> Result<BTreeMap<String, String>, StackError> {
            let mut env = provisioned.environment(&model, id, &overrides)?;
            for (k, v) in &overrides {
                env.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Ok(env)
        };
        let lookup = |env: BTreeMap<String, String>| move |name: &str| env.get(name).cloned();

        // Build every function exactly as its main.rs does, from the template's environment.
        let poller_config = audit_poller::Config::from_lookup(&lookup(env_of("AuditPollerFunction")?)).map_err(config_error)?;
        let poller = Arc::new(audit_poller::build(&poller_config, &sdk));
        // Poll jobs whose stream fails are retried by SQS; one failing stream must not make the
        // others wait, and the local clock of retries follows the visibility timeout.
        let evaluator_config = alert_evaluator::Config::from_lookup(&lookup(env_of("AlertEvaluatorFunction")?)).map_err(config_error)?;
        let evaluator = Arc::new(alert_evaluator::build(&evaluator_config, &sdk));
        let dispatcher_config =
            ticket_dispatcher::Config::from_lookup(&lookup(env_of("TicketDispatcherFunction")?)).map_err(config_error)?;
        let dispatcher = Arc::new(ticket_dispatcher::build(&dispatcher_config, &sdk));
        let api_config = config_api::Config::from_lookup(&lookup(env_of("ConfigApiFunction")?)).map_err(config_error)?;
        let api_state = config_api::build(&api_config, &sdk);
        let webhook_config = webhook_receiver::Config::from_lookup(&lookup(env_of("WebhookReceiverFunction")?)).map_err(config_error)?;
        let webhook_state = webhook_receiver::build(&webhook_config, &sdk);
        let operator = api_state.access.clone();

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let stats = Arc::new(StackStats::default());
        let mut mappings = BTreeMap::new();
        let mut routes = Vec::new();
        let sqs = aws_sdk_sqs::Client::new(&sdk);

        for function in &model.functions {
            for event in &function.events {
                match event {
                    EventSpec::Sqs { queue, batch_size, .. } => {
                        let handler: BatchHandler = match function.logical_id.as_str() {
                            "AuditPollerFunction" => {
                                let poller = poller.clone();
                                let stats = stats.clone();
                                Arc::new(move |event| {
                                    let poller = poller.clone();
                                    let stats = stats.clone();
                                    Box::pin(async move {
                                        let (response, report) = audit_poller::handle_jobs(&poller, event).await;
                                        stats.polling.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(&report);
                                        response
                                    })
                                })
                            }
                            "AlertEvaluatorFunction" => {
                                let service = evaluator.clone();
                                Arc::new(move |event| {
                                    let service = service.clone();
                                    Box::pin(async move { alert_evaluator::handle(&service, event).await })
                                })
                            }
                            "TicketDispatcherFunction" => {
                                let service = dispatcher.clone();
                                Arc::new(move |event| {
                                    let service = service.clone();
                                    Box::pin(async move { ticket_dispatcher::handle(&service, event).await })
                                })
                            }
                            other => return Err(StackError::Config(format!("the local stack does not know how to run {other} on SQS"))),
                        };
                        let mapping_stats = Arc::new(MappingStats::default());
                        mappings.insert(function.logical_id.clone(), mapping_stats.clone());
                        let mapping = EventSourceMapping {
                            function: function.logical_id.clone(),
                            sqs: sqs.clone(),
                            queue_url: provisioned
                                .queue_urls
                                .get(queue)
                                .cloned()
                                .ok_or_else(|| StackError::Config(format!("queue {queue} not provisioned")))?,
                            queue_arn: provisioned.queue_arns.get(queue).cloned().unwrap_or_default(),
                            batch_size: *batch_size,
                            timeout: options.function_timeout_override.unwrap_or(Duration::from_secs(u64::from(function.timeout))),
                            handler,
                            stats: mapping_stats,
                        };
                        tasks.push(mapping.spawn(shutdown_rx.clone()));
                    }
                    EventSpec::Schedule { expression } => {
                        let interval = match options.schedule_interval {
                            Some(interval) => interval,
                            None => Duration::from_secs(rate_seconds(&provisioned.resolve(expression)?)?),
                        };
                        let tick: Tick = match function.logical_id.as_str() {
                            "AuditPollerFunction" => {
                                let poller = poller.clone();
                                let stats = stats.clone();
                                Arc::new(move || {
                                    let poller = poller.clone();
                                    let stats = stats.clone();
                                    Box::pin(async move {
                                        stats.ticks.fetch_add(1, Ordering::Relaxed);
                                        audit_poller::handle_tick(&poller).await.map(|_| ()).map_err(|e| e.to_string())
                                    })
                                })
                            }
                            "TicketDispatcherFunction" => {
                                let dispatcher = dispatcher.clone();
                                Arc::new(move || {
                                    let dispatcher = dispatcher.clone();
                                    Box::pin(async move {
                                        ticket_dispatcher::handle_tick(&dispatcher).await.map(|_| ()).map_err(|e| e.to_string())
                                    })
                                })
                            }
                            other => return Err(StackError::Config(format!("the local stack does not know how to schedule {other}"))),
                        };
                        if options.run_schedule {
                            tasks.push(spawn_schedule(function.logical_id.clone(), tick, interval, shutdown_rx.clone()));
                        }
                    }
                    EventSpec::HttpApi { path, .. } => {
                        let router = match function.logical_id.as_str() {
                            "ConfigApiFunction" => config_api::app(api_state.clone()),
                            "WebhookReceiverFunction" => webhook_receiver::app(webhook_state.clone()),
                            other => return Err(StackError::Config(format!("the local stack does not know how to serve {other}"))),
                        };
                        routes.push(Route { prefix: route_prefix(path), router });
                    }
                }
            }
        }

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let app = gateway(routes);
        let mut gateway_shutdown = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = gateway_shutdown.changed().await;
                })
                .await;
        }));

        Ok(Self {
            model,
            provisioned,
            sdk,
            aws_endpoint,
            m365,
            connectwise,
            autotask,
            halopsa,
            tigerpaw,
            channels,
            api_url,
            stats,
            mappings,
            operator,
            poller,
            dispatcher,
            shutdown,
            tasks,
            moto,
        })
    }

    /// Plays one tick of the schedule now: the fan-out enqueues one job per (tenant, stream).
    ///
    /// # Errors
    /// When the tenant list cannot be read or the jobs cannot be enqueued.
    pub async fn tick(&self) -> Result<usize, StackError> {
        self.stats.ticks.fetch_add(1, Ordering::Relaxed);
        audit_poller::handle_tick(&self.poller).await.map_err(|e| StackError::Other(e.to_string()))
    }

    /// Plays one tick, waits until every job and its consequences are done, and returns what
    /// the poll jobs did meanwhile.
    ///
    /// # Errors
    /// When the tick fails or the stack does not settle within `timeout`.
    pub async fn poll_and_settle(&self, timeout: Duration) -> Result<PollReport, StackError> {
        let before = self.stats.polling();
        self.tick().await?;
        self.wait_idle(timeout).await?;
        Ok(report_since(&self.stats.polling(), &before))
    }

    /// Operator action (as `vigil-admin create-msp`): creates an MSP and its first owner, and
    /// returns the owner's API token.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn create_msp(&self, msp_id: &str, name: &str) -> Result<SecretString, StackError> {
        let id = MspId::parse(msp_id).map_err(|e| StackError::Other(e.to_string()))?;
        let email = format!("owner@{msp_id}.example");
        let (_, issued) =
            self.operator.create_msp_with_owner(&id, name, "Owner", &email).await.map_err(|e| StackError::Other(e.to_string()))?;
        Ok(issued.token)
    }

    /// Plays one tick of the dispatcher's read-back schedule now: every destination's open
    /// tickets are read back from its PSA.
    ///
    /// # Errors
    /// When the destinations cannot be listed.
    pub async fn read_back(&self) -> Result<vigil::services::dispatch::readback::ReadBackReport, StackError> {
        ticket_dispatcher::handle_tick(&self.dispatcher).await.map_err(|e| StackError::Other(e.to_string()))
    }

    /// Waits until the events and tickets queues are empty and nothing is in flight.
    ///
    /// # Errors
    /// [`StackError::NotIdle`] after `timeout`.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), StackError> {
        let deadline = Instant::now() + timeout;
        let mut quiet_checks = 0;
        while Instant::now() < deadline {
            let busy = self.queue_depth("PollJobsQueue").await?
                + self.queue_depth("EventsQueue").await?
                + self.queue_depth("TicketsQueue").await?
                > 0;
            quiet_checks = if busy { 0 } else { quiet_checks + 1 };
            if quiet_checks >= 3 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(StackError::NotIdle(timeout))
    }

    /// Visible, in-flight and delayed messages of a queue.
    ///
    /// # Errors
    /// When SQS cannot be asked.
    pub async fn queue_depth(&self, logical_id: &str) -> Result<u64, StackError> {
        let url = self.provisioned.queue_urls.get(logical_id).ok_or_else(|| StackError::Other(format!("no queue {logical_id}")))?;
        let output = aws_sdk_sqs::Client::new(&self.sdk)
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| StackError::Other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        let attributes = output.attributes().cloned().unwrap_or_default();
        let count = |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed))
    }

    /// Reads (without deleting) the bodies waiting in a queue, e.g. a dead-letter queue.
    ///
    /// # Errors
    /// When SQS cannot be asked.
    pub async fn peek(&self, logical_id: &str) -> Result<Vec<String>, StackError> {
        let url = self.provisioned.queue_urls.get(logical_id).ok_or_else(|| StackError::Other(format!("no queue {logical_id}")))?;
        let output = aws_sdk_sqs::Client::new(&self.sdk)
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| StackError::Other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(output.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect())
    }

    /// Stops every task, the simulators and (if started here) moto.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.m365.shutdown().await;
        self.connectwise.shutdown().await;
        self.autotask.shutdown().await;
        self.halopsa.shutdown().await;
        self.tigerpaw.shutdown().await;
        self.channels.shutdown().await;
        if let Some(moto) = self.moto {
            moto.stop().await;
        }
    }
}

/// One scheduled invocation of a function (its handler for an EventBridge tick).
type Tick = Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> + Send + Sync>;

fn spawn_schedule(function: String, tick: Tick, interval: Duration, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {
                    if let Err(error) = tick().await {
                        tracing::warn!(message = "Scheduled tick failed.", function = %function, %error);
                    }
                }
            }
        }
    })
}
