//! cold-start-bench: each function's cold start, side by side with a minimal Rust Lambda.
//!
//! A benchmark, not a test. It plays the Lambda Runtime API on 127.0.0.1 (a free port) and
//! starts each binary as Lambda would start a new execution environment, `--runs` times,
//! round-robin across the binaries so that machine noise falls on all of them alike:
//!
//! * `GET /2018-06-01/runtime/invocation/next` answers one event (with the
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn` and `-Trace-Id`
//!   headers), and then never answers again;
//! * `POST …/invocation/{id}/response`, `…/invocation/{id}/error` and `…/init/error` record
//!   when they arrive.
//!
//! Per start it measures **init** (spawn → first `/next`: process start, telemetry,
//! configuration, `aws_config::load`, clients) and **first response** (spawn → `/response`:
//! init plus the first invocation), then kills the process. The report gives median and p90 of
//! both per binary, and each median's ratio to the baseline's, measured in the same run.
//!
//! Each function gets its environment from `template.yaml` (via [`vigil_local::template`]:
//! `!Ref` of a parameter is its default, of a queue a URL on the AWS endpoint, of a table its
//! logical id; `!Sub` with parameter defaults), plus what Lambda sets (`AWS_LAMBDA_*`, region,
//! fake credentials) and `AWS_ENDPOINT_URL` (`--aws-endpoint`, else a closed local port:
//! refused at once, never a real AWS call). The event makes the handler do minimal work and
//! return: an SQS batch with no records (audit-poller, alert-evaluator, ticket-dispatcher), an
//! HTTP API `GET /webhooks/health` (webhook-receiver), `GET /v1/health` (config-api), `{}`
//! (the baseline).
//!
//! ```text
//! cold-start-bench --baseline target/release/minimal-lambda \
//!     audit-poller=target/release/audit-poller alert-evaluator=target/release/alert-evaluator
//! ```
//!
//! `FUNCTION@VARIANT=PATH` benches another build of the same function under its own name
//! (e.g. `audit-poller@before=…` beside `audit-poller=…`).
//!
//! Flags: `--runs N` (20), `--warmup N` (2 discarded starts per binary), `--aws-endpoint URL`,
//! `--template PATH` (the repository's `template.yaml`), `--label TEXT` (e.g. the build
//! profile, printed with the table), `--timeout-ms N` (10000 per start), `--logs DIR` (keep
//! each binary's output of its last start; else a temporary directory). `infra/scripts/cold-start-bench.sh`
//! builds everything and runs it. Exit code 1 when any start failed.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use vigil_local::template::{StackModel, TemplateValue};

type BenchError = Box<dyn std::error::Error + Send + Sync>;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

/// What the fake Runtime API saw of the current start.
#[derive(Debug)]
enum Signal {
    Next(Duration),
    Response(Duration),
    Error(Duration, String),
    InitError(Duration, String),
}

/// The start being measured: one at a time.
struct Current {
    started: Instant,
    request_id: String,
    function_arn: String,
    event: Vec<u8>,
    served: bool,
}

#[derive(Clone)]
struct Api {
    current: Arc<Mutex<Option<Current>>>,
    signals: mpsc::UnboundedSender<(String, Signal)>,
}

impl Api {
    fn with_current<T>(&self, f: impl FnOnce(&mut Current) -> T) -> Option<T> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).as_mut().map(f)
    }

    fn signal(&self, request_id: &str, signal: Signal) {
        let _ = self.signals.send((request_id.to_owned(), signal));
    }
}

async fn next(State(api): State<Api>) -> Response {
    let first = api.with_current(|run| {
        if run.served {
            return None;
        }
        run.served = true;
        Some((run.started.elapsed(), run.request_id.clone(), run.function_arn.clone(), run.event.clone()))
    });
    let Some(Some((elapsed, request_id, arn, event))) = first else {
        // One event per start: the runtime waits here until the bench kills it.
        return std::future::pending().await;
    };
    api.signal(&request_id, Signal::Next(elapsed));
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(30);
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", request_id);
    put("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
    put("lambda-runtime-invoked-function-arn", arn);
    put("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".into());
    put("content-type", "application/json".into());
    (StatusCode::OK, headers, event).into_response()
}

fn elapsed(api: &Api) -> Duration {
    api.with_current(|run| run.started.elapsed()).unwrap_or_default()
}

async fn response(State(api): State<Api>, Path(id): Path<String>) -> StatusCode {
    api.signal(&id, Signal::Response(elapsed(&api)));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Api>, Path(id): Path<String>, body: String) -> StatusCode {
    api.signal(&id, Signal::Error(elapsed(&api), body));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Api>, body: String) -> StatusCode {
    let id = api.with_current(|run| run.request_id.clone()).unwrap_or_default();
    api.signal(&id, Signal::InitError(elapsed(&api), body));
    StatusCode::ACCEPTED
}

/// One binary under test.
struct Target {
    name: String,
    path: PathBuf,
    env: BTreeMap<String, String>,
    event: Value,
}

/// One start's measurements, in milliseconds.
struct Sample {
    init: f64,
    first_response: f64,
}

struct Args {
    runs: usize,
    warmup: usize,
    aws_endpoint: Option<String>,
    template: PathBuf,
    label: String,
    timeout: Duration,
    logs: Option<PathBuf>,
    baseline: Option<PathBuf>,
    functions: Vec<(String, PathBuf)>,
}

fn parse_args() -> Result<Args, BenchError> {
    let mut args = Args {
        runs: 20,
        warmup: 2,
        aws_endpoint: None,
        template: vigil_local::repo_root().join("template.yaml"),
        label: String::new(),
        timeout: Duration::from_secs(10),
        logs: None,
        baseline: None,
        functions: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => args.runs = value()?.parse()?,
            "--warmup" => args.warmup = value()?.parse()?,
            "--aws-endpoint" => args.aws_endpoint = Some(value()?),
            "--template" => args.template = PathBuf::from(value()?),
            "--label" => args.label = value()?,
            "--timeout-ms" => args.timeout = Duration::from_millis(value()?.parse()?),
            "--logs" => args.logs = Some(PathBuf::from(value()?)),
            "--baseline" => args.baseline = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err("usage: cold-start-bench [--runs N] [--warmup N] [--aws-endpoint URL] [--template PATH] [--label TEXT] [--timeout-ms N] [--logs DIR] --baseline PATH [FUNCTION=PATH ...]".into()),
            other => match other.split_once('=') {
                Some((name, path)) if !name.starts_with('-') => args.functions.push((name.to_owned(), PathBuf::from(path))),
                _ => return Err(format!("unknown argument {other:?} (see --help)").into()),
            },
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}

/// The event that makes `function` do minimal work and return.
fn minimal_event(function: &str) -> Value {
    let http = |path: &str| {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"host": "bench.execute-api.us-east-1.amazonaws.com", "user-agent": "cold-start-bench"},
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "bench",
                "domainName": "bench.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "bench",
                "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "cold-start-bench"},
                "requestId": "bench",
                "routeKey": "$default",
                "stage": "$default",
                "time": "06/Dec/2026:00:00:00 +0000",
                "timeEpoch": 1_796_515_200_000_u64
            },
            "isBase64Encoded": false
        })
    };
    match function {
        "webhook-receiver" => http("/webhooks/health"),
        "config-api" => http("/v1/health"),
        "audit-poller" | "alert-evaluator" | "ticket-dispatcher" => json!({"Records": []}),
        _ => json!({}),
    }
}

/// `template.yaml`'s environment of `functions/<function>`, resolved as described above.
fn template_env(model: &StackModel, function: &str, aws_endpoint: &str) -> Result<BTreeMap<String, String>, BenchError> {
    let code_uri = format!("functions/{function}");
    let spec = model
        .functions
        .iter()
        .find(|f| f.code_uri.trim_end_matches('/') == code_uri)
        .ok_or_else(|| format!("template.yaml has no function with CodeUri {code_uri}"))?;
    let reference = |name: &str| -> String {
        if let Some(value) = model.parameter_defaults.get(name) {
            value.clone()
        } else if model.queues.iter().any(|q| q.logical_id == name) {
            format!("{}/{ACCOUNT}/{name}", aws_endpoint.trim_end_matches('/'))
        } else {
            name.to_owned()
        }
    };
    let pseudo = |name: &str| -> String {
        match name {
            "AWS::Region" => REGION.to_owned(),
            "AWS::AccountId" => ACCOUNT.to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            "AWS::Partition" => "aws".to_owned(),
            other if other.starts_with("AWS::") => "bench".to_owned(),
            other => reference(other),
        }
    };
    let mut env = BTreeMap::new();
    for (name, value) in &spec.environment {
        let resolved = match value {
            TemplateValue::Literal(text) => text.clone(),
            TemplateValue::Ref(target) => reference(target),
            TemplateValue::GetAtt(resource, _) => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{resource}"),
            TemplateValue::Sub(text) => {
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let after = &rest[start + 2..];
                    let end = after.find('}').ok_or_else(|| format!("unclosed ${{ in !Sub {text:?}"))?;
                    out.push_str(&pseudo(&after[..end]));
                    rest = &after[end + 1..];
                }
                out.push_str(rest);
                out
            }
        };
        env.insert(name.clone(), resolved);
    }
    Ok(env)
}

/// What Lambda sets in every execution environment, plus fake credentials.
fn lambda_env(name: &str, runtime_api: &str, aws_endpoint: &str) -> BTreeMap<String, String> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("vigil-bench-{name}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/vigil-bench-{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/06/[$LATEST]bench".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_rust".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "ASIABENCHBENCHBENCH0".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret-access-key".to_owned()),
        ("AWS_SESSION_TOKEN", "bench-session-token".to_owned()),
        ("AWS_ENDPOINT_URL", aws_endpoint.to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Starts `target` once; its measurements, or why the start failed.
async fn start_once(
    api: &Api,
    signals: &mut mpsc::UnboundedReceiver<(String, Signal)>,
    target: &Target,
    request_id: String,
    timeout: Duration,
    log: &std::path::Path,
) -> Result<Sample, String> {
    while signals.try_recv().is_ok() {}
    let function_arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:vigil-bench-{}", target.name);
    let event = serde_json::to_vec(&target.event).map_err(|e| e.to_string())?;
    let output = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let errors = output.try_clone().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(&target.path);
    // A process group of its own, killed whole: a wrapper (`strace -f`, a shell script) must
    // not leave the real process behind to take the next start's event.
    command.env_clear().envs(&target.env).stdin(Stdio::null()).stdout(output).stderr(errors).kill_on_drop(true).process_group(0);
    let started = Instant::now();
    *api.current.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(Current { started, request_id: request_id.clone(), function_arn, event, served: false });
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", target.path.display()))?;
    let mut init = None;
    let outcome = tokio::time::timeout(timeout, async {
        loop {
            tokio::select! {
                signal = signals.recv() => match signal {
                    Some((id, _)) if id != request_id => {}
                    Some((_, Signal::Next(at))) => init = Some(at),
                    Some((_, Signal::Response(at))) => return Ok(at),
                    Some((_, Signal::Error(at, body))) => return Err(format!("the handler failed after {at:?}: {body}")),
                    Some((_, Signal::InitError(at, body))) => return Err(format!("init failed after {at:?}: {body}")),
                    None => return Err("the fake Runtime API stopped".to_owned()),
                },
                status = child.wait() => return Err(format!("exited before answering ({})", status.map_or_else(|e| e.to_string(), |s| s.to_string()))),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no response within {timeout:?}")));
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
    }
    let _ = child.kill().await;
    *api.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
    let first_response = outcome.map_err(|e| format!("{e} (output: {})", log.display()))?;
    let init = init.ok_or("answered without asking for an event")?;
    Ok(Sample { init: init.as_secs_f64() * 1000.0, first_response: first_response.as_secs_f64() * 1000.0 })
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load =
        std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default();
    format!("{cpus} vCPU, {model}, load average {load}")
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cold-start-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, BenchError> {
    let args = parse_args()?;
    let baseline = args.baseline.clone().ok_or("--baseline PATH is required (see --help)")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    // A port nothing listens on: SDK calls, if any, are refused at once.
    let aws_endpoint = match &args.aws_endpoint {
        Some(url) => url.clone(),
        None => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
            format!("http://{}", closed.local_addr()?)
        }
    };
    let (tx, mut signals) = mpsc::unbounded_channel();
    let api = Api { current: Arc::new(Mutex::new(None)), signals: tx };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let model = StackModel::load(&args.template)?;
    let mut targets = vec![Target {
        name: "baseline".to_owned(),
        path: baseline,
        env: lambda_env("baseline", &runtime_api, &aws_endpoint),
        event: minimal_event("baseline"),
    }];
    for (name, path) in &args.functions {
        // `audit-poller@before=PATH`: another build of the same function, side by side.
        let function = name.split('@').next().unwrap_or(name);
        let mut env = template_env(&model, function, &aws_endpoint)?;
        env.extend(lambda_env(function, &runtime_api, &aws_endpoint));
        targets.push(Target { name: name.clone(), path: path.clone(), env, event: minimal_event(function) });
    }
    let logs = match &args.logs {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("cold-start-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&logs)?;

    println!("cold-start-bench: {} starts per binary after {} discarded, round-robin; {}", args.runs, args.warmup, machine());
    let mut samples: Vec<Vec<Sample>> = targets.iter().map(|_| Vec::new()).collect();
    let mut failures: Vec<Vec<String>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..args.warmup + args.runs {
        // Rotate the order each round: no binary always runs right after the same one.
        for k in 0..targets.len() {
            let i = (round + k) % targets.len();
            let target = &targets[i];
            let log = logs.join(format!("{}.log", target.name.replace('@', "-")));
            let request_id = format!("bench-{}-{round}", target.name);
            let result = start_once(&api, &mut signals, target, request_id, args.timeout, &log).await;
            match result {
                Ok(sample) if round >= args.warmup => samples[i].push(sample),
                Ok(_) => {}
                Err(why) => failures[i].push(why),
            }
        }
    }

    let label = if args.label.is_empty() { String::new() } else { format!(" ({})", args.label) };
    let base_init = median(&sorted(samples[0].iter().map(|s| s.init)));
    let base_first = median(&sorted(samples[0].iter().map(|s| s.first_response)));
    println!();
    println!(
        "| binary{label} | ok | init median ms | init p90 ms | first response median ms | first response p90 ms | init ÷ baseline | first response ÷ baseline |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, target) in targets.iter().enumerate() {
        let init = sorted(samples[i].iter().map(|s| s.init));
        let first = sorted(samples[i].iter().map(|s| s.first_response));
        println!(
            "| {} | {}/{} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            target.name,
            samples[i].len(),
            args.runs,
            median(&init),
            percentile(&init, 90.0),
            median(&first),
            percentile(&first, 90.0),
            median(&init) / base_init,
            median(&first) / base_first,
        );
    }
    let mut ok = true;
    for (i, target) in targets.iter().enumerate() {
        if let Some(first) = failures[i].first() {
            ok = false;
            eprintln!("{}: {} failed start(s); first: {first}", target.name, failures[i].len());
        }
    }
    Ok(ok)
}
