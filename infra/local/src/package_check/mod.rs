//! `make package-check`: the bundles `sam build` made (`.aws-sam/build/<LogicalId>/bootstrap`,
//! arm64) run as Lambda would run them — each under user-mode emulation
//! (`qemu-aarch64-static`), behind its own local Runtime API ([`runtime_api`]), with exactly the
//! environment template.yaml declares for it, resolved against moto and the simulators — and
//! each handles real events of its triggers, chained as on AWS:
//!
//! 1. **config-api** (HTTP API, [`http_api`]): an unauthenticated request is refused with a
//!    problem+json 401; the MSP's owner registers Contoso, stores its Microsoft credentials
//!    (written to Secrets Manager under the template's `SECRET_PREFIX`), adds a ConnectWise
//!    destination and links Contoso to a company.
//! 2. **audit-poller** (schedule): the tick fans out one poll job per stream onto the poll-jobs
//!    queue and starts Contoso's subscriptions with the webhook address.
//! 3. **webhook-receiver** (HTTP API): Contoso's new audit content makes the Microsoft 365
//!    simulator POST a notification, authenticated by the registered `authId`, through the
//!    gateway; the receiver answers 200 and enqueues a fetch job.
//! 4. **audit-poller** (SQS), **alert-evaluator** (SQS), **ticket-dispatcher** (SQS): this
//!    harness plays each event source mapping (batches up to the template's `BatchSize`, partial
//!    batch responses honoured) until the queues are empty; every batch must answer with no item
//!    failures, and the alert must reach the ConnectWise simulator as exactly one ticket.
//! 5. **ticket-dispatcher** (schedule): the read-back tick answers; **config-api** lists the
//!    alert the evaluator wrote.
//! 6. **EMF**: the functions' output holds the CloudWatch Embedded Metric Format documents the
//!    template's alarms and dashboard read (`StreamsPolled`, `PolicyHits`, `TicketsCreated`, …),
//!    written because the bundles run with Lambda's variables (`AWS_LAMBDA_FUNCTION_NAME`,
//!    `AWS_LAMBDA_LOG_FORMAT=JSON`).
//!
//! A bundle that does not start, a handler that is wired to the wrong event type, a variable the
//! code needs that the template does not declare (or declares under another name), a table or
//! queue the template points at the wrong resource: each fails one of these steps. The only
//! variables not taken from the template are where the outside world is: the Microsoft 365
//! base URLs and the API's own URL (pointed at the simulators and this gateway) and
//! `DESTINATION_ALLOW_LOOPBACK` (the ConnectWise simulator is plain HTTP on 127.0.0.1).
//! IAM is not checked here: moto does not enforce policies (cfn-lint, checkov and the template
//! review cover them).

pub mod http_api;
pub mod runtime_api;

use crate::demo::{CONTOSO, forwarding_record};
use crate::esm::sqs_event;
use crate::provision::{ProvisionOptions, Provisioned, provision};
use crate::template::{EventSpec, StackModel};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use runtime_api::{FunctionProcess, FunctionSpec};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use vigil_simulators::connectwise::{ConnectWiseCredentials, ConnectWiseSim};
use vigil_simulators::m365::M365Sim;

const APP_ID: &str = "11111111-2222-4333-8444-555555555555";
const APP_SECRET: &str = "package-check-app-secret";
const COMPANY_ID: &str = "250";

/// A failed step.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

fn fail(message: impl Into<String>) -> CheckError {
    CheckError(message.into())
}

/// How to run the check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The AWS endpoint (moto), also in `AWS_ENDPOINT_URL` for the functions.
    pub aws_endpoint: String,
    /// `sam build`'s output folder (holding `template.yaml` and `<LogicalId>/bootstrap`).
    pub build_dir: PathBuf,
    /// The source template (the functions' environment and events are read from it).
    pub template: PathBuf,
    /// The command each bootstrap runs under (`qemu-aarch64-static`); empty: run it directly.
    pub runner: Vec<String>,
    /// Extra time per invocation under emulation.
    pub grace: Duration,
    /// Where each function's output goes (`<LogicalId>.log`).
    pub logs: PathBuf,
}

/// What the check measured.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Per function: (logical id, init time, invocations, slowest invocation).
    pub functions: Vec<(String, Option<Duration>, u64, Duration)>,
    /// The steps passed, in order.
    pub steps: Vec<String>,
}

struct Harness {
    model: StackModel,
    provisioned: Provisioned,
    sqs: aws_sdk_sqs::Client,
    functions: BTreeMap<String, Arc<Mutex<FunctionProcess>>>,
    report: CheckReport,
    /// Where each function's output is (`<LogicalId>.log`).
    logs: PathBuf,
}

impl Harness {
    async fn invoke(&mut self, logical_id: &str, event: &Value) -> Result<Value, CheckError> {
        let function = self.functions.get(logical_id).ok_or_else(|| fail(format!("{logical_id} is not running")))?;
        let answer = function.lock().await.invoke(event).await.map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&answer).map_err(|e| fail(format!("{logical_id} answered with no JSON: {e}")))
    }

    fn queue_url(&self, logical_id: &str) -> Result<String, CheckError> {
        self.provisioned.queue_urls.get(logical_id).cloned().ok_or_else(|| fail(format!("queue {logical_id} not provisioned")))
    }

    /// Plays `function`'s SQS event source mapping until its queue is empty; returns the number
    /// of messages handled. Any reported item failure fails the check.
    async fn drain(&mut self, function: &str) -> Result<usize, CheckError> {
        let spec = self.model.function(function).ok_or_else(|| fail(format!("{function} is not in the template")))?;
        let (queue, batch_size) = spec
            .events
            .iter()
            .find_map(|e| match e {
                EventSpec::Sqs { queue, batch_size, report_batch_item_failures: true } => Some((queue.clone(), *batch_size)),
                _ => None,
            })
            .ok_or_else(|| fail(format!("{function} has no SQS trigger with ReportBatchItemFailures in the template")))?;
        let url = self.queue_url(&queue)?;
        let arn = self.provisioned.queue_arns.get(&queue).cloned().unwrap_or_default();
        let mut handled = 0;
        let mut empty_receives = 0;
        while empty_receives < 2 {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(i32::try_from(batch_size.min(10)).unwrap_or(10))
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .map_err(|e| fail(format!("receive from {queue}: {}", aws_sdk_sqs::error::DisplayErrorContext(e))))?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                empty_receives += 1;
                continue;
            }
            empty_receives = 0;
            let event = serde_json::to_value(sqs_event(&messages, &arn)).map_err(|e| fail(e.to_string()))?;
            let answer = self.invoke(function, &event).await?;
            let response: SqsBatchResponse = serde_json::from_value(answer.clone())
                .map_err(|e| fail(format!("{function} answered an SQS batch with {answer} (not a batch response: {e})")))?;
            if !response.batch_item_failures.is_empty() {
                return Err(fail(format!(
                    "{function} failed {} of {} messages: {answer}",
                    response.batch_item_failures.len(),
                    messages.len()
                )));
            }
            let entries: Vec<DeleteMessageBatchRequestEntry> = messages
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle()?).build().ok()
                })
                .collect();
            self.sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| fail(format!("delete from {queue}: {}", aws_sdk_sqs::error::DisplayErrorContext(e))))?;
            handled += messages.len();
        }
        Ok(handled)
    }

    fn step(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("  [ok] {what}");
        self.report.steps.push(what);
    }
}

/// The EventBridge event a `Schedule` event source delivers.
fn scheduled_event(rule: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "version": "0",
        "id": format!("pc-{}", now.timestamp_millis()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")],
        "detail": {}
    })
}

/// Calls the gateway; returns (status, content type, JSON body).
async fn call(http: &reqwest::Client, request: reqwest::RequestBuilder) -> Result<(u16, String, Value), CheckError> {
    let _ = http;
    let response = request.send().await.map_err(|e| fail(format!("gateway: {e}")))?;
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.unwrap_or_default();
    Ok((status, content_type, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// Runs the whole check.
///
/// # Errors
/// The first step that failed, with the function's output tail where one is involved.
pub async fn run(options: &CheckOptions) -> Result<CheckReport, CheckError> {
    let model = StackModel::load(&options.template).map_err(|e| fail(e.to_string()))?;
    let sdk = vigil::aws::sdk_config_for_emulator(&options.aws_endpoint).await;
    let m365 = M365Sim::start().await.map_err(|e| fail(format!("Microsoft 365 simulator: {e}")))?;
    let connectwise =
        ConnectWiseSim::start(ConnectWiseCredentials::sample()).await.map_err(|e| fail(format!("ConnectWise simulator: {e}")))?;
    let prefix = format!("vigil-pc-{}-", vigil::contract::unique_suffix());
    let stage = format!("pc{}", &prefix[9..15]).to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let provisioned = provision(
        &model,
        &sdk,
        &ProvisionOptions {
            prefix,
            parameters: BTreeMap::from([
                ("Stage".to_owned(), stage),
                ("PublisherIdentifier".to_owned(), "9a1c8f7e-0000-4000-8000-00000000aa01".to_owned()),
            ]),
            visibility_timeout_override: None,
        },
    )
    .await
    .map_err(|e| fail(format!("provisioning from template.yaml: {e}")))?;

    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| fail(e.to_string()))?;
    let api_url = format!("http://{}", gateway_listener.local_addr().map_err(|e| fail(e.to_string()))?);
    // Where the outside world is; everything else comes from the template.
    let overrides = BTreeMap::from([
        ("M365_LOGIN_BASE".to_owned(), m365.login_base()),
        ("M365_MANAGEMENT_BASE".to_owned(), m365.management_base()),
        ("M365_GRAPH_BASE".to_owned(), m365.graph_base()),
        ("WEBHOOK_BASE_URL".to_owned(), format!("{api_url}/webhooks/o365")),
        ("API_BASE_URL".to_owned(), api_url.clone()),
    ]);

    std::fs::create_dir_all(&options.logs).map_err(|e| fail(format!("{}: {e}", options.logs.display())))?;
    let mut functions = BTreeMap::new();
    let mut routes = Vec::new();
    for spec in &model.functions {
        let bootstrap = options.build_dir.join(&spec.logical_id).join("bootstrap");
        if !bootstrap.is_file() {
            return Err(fail(format!("{} has no bundle at {} (run make sam-build)", spec.logical_id, bootstrap.display())));
        }
        let mut environment = provisioned.environment(&model, &spec.logical_id, &overrides).map_err(|e| fail(e.to_string()))?;
        environment.insert(vigil::connectors::destination_url::ALLOW_LOOPBACK_VARIABLE.to_owned(), "true".to_owned());
        let process = FunctionProcess::start(FunctionSpec {
            name: spec.logical_id.clone(),
            bootstrap,
            runner: options.runner.clone(),
            environment,
            timeout: Duration::from_secs(u64::from(spec.timeout)),
            grace: options.grace,
            log: options.logs.join(format!("{}.log", spec.logical_id)),
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
        let process = Arc::new(Mutex::new(process));
        for event in &spec.events {
            if let EventSpec::HttpApi { path, method } = event {
                routes.push(http_api::HttpRoute { path: path.clone(), method: method.to_uppercase(), function: process.clone() });
            }
        }
        functions.insert(spec.logical_id.clone(), process);
    }
    let gateway = http_api::gateway(routes);
    let gateway_task = tokio::spawn(async move {
        let _ = axum::serve(gateway_listener, gateway).await;
    });

    let mut harness = Harness {
        model,
        provisioned,
        sqs: aws_sdk_sqs::Client::new(&sdk),
        functions,
        report: CheckReport::default(),
        logs: options.logs.clone(),
    };
    let outcome = scenario(&mut harness, &sdk, &api_url, &m365, &connectwise).await;
    gateway_task.abort();
    for (name, function) in std::mem::take(&mut harness.functions) {
        let (init, invocations, slowest) = {
            let process = function.lock().await;
            (process.init_time(), process.invocations(), process.slowest())
        };
        harness.report.functions.push((name, init, invocations, slowest));
        if let Ok(process) = Arc::try_unwrap(function) {
            process.into_inner().stop().await;
        }
    }
    outcome.map(|()| harness.report)
}

async fn scenario(
    h: &mut Harness,
    sdk: &aws_config::SdkConfig,
    api_url: &str,
    m365: &vigil_simulators::m365::M365SimHandle,
    connectwise: &vigil_simulators::connectwise::ConnectWiseSimHandle,
) -> Result<(), CheckError> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().map_err(|e| fail(e.to_string()))?;

    // The operator's step (vigil-admin create-msp), straight to the config table.
    let config_table = h.provisioned.table_names.get("ConfigTable").cloned().ok_or_else(|| fail("ConfigTable not provisioned"))?;
    let store = Arc::new(vigil::aws::dynamodb::DynamoConfigStore::new(aws_sdk_dynamodb::Client::new(sdk), config_table));
    let access = vigil::services::access::AccessService {
        config: store.clone(),
        principals: store.clone(),
        audit: vigil::services::access::AuditTrail { log: store, clock: Arc::new(vigil::clock::SystemClock) },
        clock: Arc::new(vigil::clock::SystemClock),
    };
    let msp = vigil::ids::MspId::parse("package-check").map_err(|e| fail(e.to_string()))?;
    let (_, issued) = access
        .create_msp_with_owner(&msp, "Package check MSP", "Owner", "owner@package-check.example")
        .await
        .map_err(|e| fail(e.to_string()))?;
    let token = issued.token.expose().to_owned();

    // 1. config-api over the HTTP API.
    let (status, content_type, _) = call(&http, http.get(format!("{api_url}/v1/tenants"))).await?;
    if status != 401 || !content_type.starts_with("application/problem+json") {
        return Err(fail(format!(
            "config-api: GET /v1/tenants without a token answered {status} {content_type}, expected 401 problem+json"
        )));
    }
    h.step("config-api: a request without a token is refused (401 problem+json)");
    m365.add_tenant(CONTOSO, APP_ID, APP_SECRET);
    let cw = connectwise.credentials();
    let setup = [
        ("POST", "/v1/tenants".to_owned(), json!({"tenant_id": CONTOSO, "name": "Contoso Ltd", "domains": ["contoso.com"]})),
        ("PUT", format!("/v1/tenants/{CONTOSO}/m365-credentials"), json!({"client_id": APP_ID, "client_secret": APP_SECRET})),
        (
            "PUT",
            "/v1/destinations/connectwise".to_owned(),
            json!({
                "name": "ConnectWise Manage",
                "settings": {"kind": "connectwise", "api_root": connectwise.api_root()},
                "routing": {"default_place": "1", "priorities": {"High": "8", "Medium": "9", "Low": "10", "Informational": "11"}},
                "credentials": {"kind": "connectwise", "company_id": cw.company_id, "public_key": cw.public_key, "private_key": cw.private_key, "client_id": cw.client_id}
            }),
        ),
        ("PUT", format!("/v1/tenants/{CONTOSO}/destinations/connectwise/company"), json!({"company": COMPANY_ID})),
    ];
    for (method, path, body) in setup {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let (status, _, answer) =
            call(&http, http.request(method.clone(), format!("{api_url}{path}")).bearer_auth(&token).json(&body)).await?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("config-api: {method} {path} answered {status}: {answer}")));
        }
        h.step(format!("config-api: {method} {path} → {status}"));
    }

    // 2. audit-poller's schedule.
    let answer = h.invoke("AuditPollerFunction", &scheduled_event("PollSchedule")).await?;
    let jobs = answer["jobs"].as_u64().unwrap_or(0);
    if jobs == 0 {
        return Err(fail(format!("audit-poller: the tick answered {answer}, expected poll jobs for Contoso")));
    }
    h.step(format!("audit-poller (schedule): the tick fanned out {jobs} poll job(s)"));
    let subscribed = m365.subscription(CONTOSO, "Audit.Exchange");
    if subscribed.as_ref().and_then(|s| s.get("webhook")).is_none_or(Value::is_null) {
        // Subscriptions may be started by the jobs rather than the tick: play the jobs first.
        let handled = h.drain("AuditPollerFunction").await?;
        h.step(format!("audit-poller (SQS): {handled} poll job(s) handled"));
    }

    // 3. New content: the simulator notifies the webhook through the gateway.
    let now = chrono::Utc::now();
    let records = vec![
        forwarding_record("c4e1a7d0-0001-4000-8000-000000000001", now - chrono::Duration::seconds(5), "drop@mail-collector.example"),
        forwarding_record("c4e1a7d0-0001-4000-8000-000000000002", now - chrono::Duration::seconds(4), "drop@mail-collector.example"),
        forwarding_record("c4e1a7d0-0001-4000-8000-000000000003", now - chrono::Duration::seconds(3), "drop@mail-collector.example"),
    ];
    let content_id = m365.add_records(CONTOSO, "Audit.Exchange", records);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let deliveries = m365.webhook_deliveries();
        if deliveries.iter().any(|d| d.content_ids.contains(&content_id) && d.status == Some(200)) {
            break;
        }
        if Instant::now() > deadline {
            return Err(fail(format!("webhook-receiver: no notification of the new content answered 200: {deliveries:?}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.step("webhook-receiver (HTTP API): Microsoft's notification, authenticated by its authId, answered 200");
    // Listing windows have one-second resolution: let the second pass, as a schedule would.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // 4. The queues, as the event source mappings play them.
    let handled = h.drain("AuditPollerFunction").await?;
    if handled == 0 {
        return Err(fail("audit-poller: the webhook's fetch job never reached the poll-jobs queue"));
    }
    h.step(format!("audit-poller (SQS): {handled} poll job(s) handled, no item failures"));
    let handled = h.drain("AlertEvaluatorFunction").await?;
    if handled == 0 {
        return Err(fail("alert-evaluator: no audit event reached the events queue"));
    }
    h.step(format!("alert-evaluator (SQS): {handled} audit event(s) handled, no item failures"));
    let handled = h.drain("TicketDispatcherFunction").await?;
    if handled == 0 {
        return Err(fail("ticket-dispatcher: no ticket work reached the tickets queue"));
    }
    h.step(format!("ticket-dispatcher (SQS): {handled} ticket message(s) handled, no item failures"));
    let tickets = connectwise.tickets();
    if tickets.len() != 1 {
        return Err(fail(format!("ConnectWise: expected exactly one ticket, found {}", tickets.len())));
    }
    h.step(format!("ConnectWise: one ticket \"{}\"", tickets[0].body["summary"].as_str().unwrap_or("?")));

    // 5. The dispatcher's read-back schedule and the API reading the alert back.
    let answer = h.invoke("TicketDispatcherFunction", &scheduled_event("ReadBackSchedule")).await?;
    if answer.get("checked").and_then(Value::as_u64).is_none() {
        return Err(fail(format!("ticket-dispatcher: the read-back tick answered {answer}")));
    }
    h.step(format!("ticket-dispatcher (schedule): read back {} open ticket(s)", answer["checked"]));
    let (status, _, alerts) = call(&http, http.get(format!("{api_url}/v1/alerts")).bearer_auth(&token)).await?;
    let count = alerts["alerts"].as_array().map_or(0, Vec::len);
    if status != 200 || count == 0 {
        return Err(fail(format!("config-api: GET /v1/alerts answered {status} with {count} alert(s): {alerts}")));
    }
    h.step(format!("config-api: GET /v1/alerts lists {count} alert(s)"));

    // 6. The EMF metrics the template's alarms and dashboard read were written by the bundles.
    for (function, service, metrics) in ALARMED_METRICS {
        let log = h.logs.join(format!("{function}.log"));
        let written = emf_metrics(&std::fs::read_to_string(&log).unwrap_or_default(), service);
        let missing: Vec<&str> = metrics.iter().copied().filter(|m| !written.contains(*m)).collect();
        if !missing.is_empty() {
            return Err(fail(format!(
                "{function}: no EMF metric {missing:?} (Namespace Vigil, Service {service}) in its output {}",
                log.display()
            )));
        }
        h.step(format!("{function}: wrote the EMF metrics {metrics:?} the alarms and dashboard read"));
    }
    Ok(())
}

/// Per function: the `Service` dimension and the EMF metrics template.yaml's alarms and
/// dashboard use that the scenario above makes it write.
const ALARMED_METRICS: [(&str, &str, &[&str]); 3] = [
    ("AuditPollerFunction", "audit-poller", &["StreamsPolled", "StreamsFailed", "RecordsEnqueued"]),
    ("AlertEvaluatorFunction", "alert-evaluator", &["PolicyHits", "RecordsEvaluated"]),
    ("TicketDispatcherFunction", "ticket-dispatcher", &["TicketsCreated"]),
];

/// Names of the metrics in the EMF documents (namespace `Vigil`, dimension `Service` =
/// `service`) among a function's output lines.
fn emf_metrics(output: &str, service: &str) -> std::collections::BTreeSet<String> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc["Service"] == service)
        .flat_map(|doc| {
            doc["_aws"]["CloudWatchMetrics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|set| set["Namespace"] == vigil::lambda::metrics::NAMESPACE)
                .flat_map(|set| set["Metrics"].as_array().cloned().unwrap_or_default())
                .filter_map(|m| m["Name"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}
