//! A local Lambda Runtime API (the `2018-06-01` interface every custom runtime speaks) in front of
//! one function process: the process is started as Lambda starts an execution environment
//! (`AWS_LAMBDA_RUNTIME_API` and the other variables Lambda sets, plus the function's own
//! environment, nothing inherited), and [`FunctionProcess::invoke`] hands it one event through
//! `GET /runtime/invocation/next` and waits for `POST …/{id}/response` or `…/{id}/error`.
//!
//! The process stays up between invocations (a warm container), so one start serves every event
//! of a check. `POST /runtime/init/error`, an exit, or no answer within the deadline fail the
//! invocation with the reason and the tail of the process's output.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};

/// Why an invocation did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("{function}: the handler returned an error: {body}")]
    Handler { function: String, body: String },
    #[error("{function}: initialisation failed: {body}")]
    Init { function: String, body: String },
    #[error("{function}: the process exited ({status}); output tail:\n{tail}")]
    Exited { function: String, status: String, tail: String },
    #[error("{function}: no answer within {timeout:?}; output tail:\n{tail}")]
    Timeout { function: String, timeout: Duration, tail: String },
    #[error("{function}: cannot start {path}: {source}")]
    Spawn { function: String, path: String, source: std::io::Error },
    #[error("{function}: i/o: {source}")]
    Io { function: String, source: std::io::Error },
}

/// An invocation's outcome as the runtime reported it: the response body, or the error body.
type Outcome = Result<Vec<u8>, Failure>;

#[derive(Debug)]
enum Failure {
    Handler(String),
    Init(String),
}

struct Pending {
    request_id: String,
    event: Vec<u8>,
    deadline_ms: u128,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Pending>,
    in_flight: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<String>,
    /// When the process first asked for an event (end of its initialisation).
    first_next: Option<Instant>,
}

#[derive(Clone)]
struct Api {
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
    function_arn: String,
}

impl Api {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn next(State(api): State<Api>) -> Response {
    loop {
        let notified = api.arrived.notified();
        let pending = {
            let mut inner = api.lock();
            inner.first_next.get_or_insert_with(Instant::now);
            inner.queue.pop_front().map(|p| {
                inner.in_flight.insert(p.request_id.clone(), p.done);
                (p.request_id, p.event, p.deadline_ms)
            })
        };
        if let Some((request_id, event, deadline_ms)) = pending {
            let mut headers = HeaderMap::new();
            let mut put = |name: &'static str, value: String| {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            };
            put("lambda-runtime-aws-request-id", request_id);
            put("lambda-runtime-deadline-ms", deadline_ms.to_string());
            put("lambda-runtime-invoked-function-arn", api.function_arn.clone());
            put("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".into());
            put("content-type", "application/json".into());
            return (StatusCode::OK, headers, event).into_response();
        }
        notified.await;
    }
}

async fn response(State(api): State<Api>, Path(id): Path<String>, body: axum::body::Bytes) -> StatusCode {
    match api.lock().in_flight.remove(&id) {
        Some(done) => {
            let _ = done.send(Ok(body.to_vec()));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn error(State(api): State<Api>, Path(id): Path<String>, body: String) -> StatusCode {
    match api.lock().in_flight.remove(&id) {
        Some(done) => {
            let _ = done.send(Err(Failure::Handler(body)));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(State(api): State<Api>, body: String) -> StatusCode {
    let mut inner = api.lock();
    inner.init_error = Some(body.clone());
    for (_, done) in inner.in_flight.drain() {
        let _ = done.send(Err(Failure::Init(body.clone())));
    }
    while let Some(pending) = inner.queue.pop_front() {
        let _ = pending.done.send(Err(Failure::Init(body.clone())));
    }
    StatusCode::ACCEPTED
}

/// How to start one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The template's logical id (e.g. `AuditPollerFunction`).
    pub name: String,
    /// The bundle's `bootstrap`.
    pub bootstrap: PathBuf,
    /// A command the bootstrap is started under (e.g. `qemu-aarch64-static`); empty: run it.
    pub runner: Vec<String>,
    /// The function's environment (the template's, resolved); Lambda's own variables are added.
    pub environment: BTreeMap<String, String>,
    /// The function's timeout (the deadline every event carries).
    pub timeout: Duration,
    /// Extra time allowed under emulation before an invocation is declared lost.
    pub grace: Duration,
    /// Where the process's stdout and stderr go.
    pub log: PathBuf,
}

/// A running function behind its own Runtime API.
pub struct FunctionProcess {
    spec: FunctionSpec,
    api: Api,
    child: tokio::process::Child,
    started: Instant,
    invocations: u64,
    slowest: Duration,
    server: tokio::task::JoinHandle<()>,
}

/// What Lambda sets in every execution environment (region and credentials come from the
/// caller's environment: the AWS endpoint's).
fn lambda_environment(spec: &FunctionSpec, runtime_api: &str) -> BTreeMap<String, String> {
    let memory = "512".to_owned();
    let mut env: BTreeMap<String, String> = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("vigil-package-check-{}", spec.name)),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/vigil-package-check-{}", spec.name)),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/06/[$LATEST]package-check".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        // What the template's Globals LoggingConfig (LogFormat JSON, LogLevel's default info)
        // makes Lambda set: the runtime's subscriber then writes the JSON lines CloudWatch gets.
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // The AWS endpoint (moto) and its credentials, and the emulator's library prefix.
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EC2_METADATA_DISABLED",
        "QEMU_LD_PREFIX",
    ] {
        if let Ok(value) = std::env::var(name) {
            env.insert(name.to_owned(), value);
        }
    }
    env
}

impl FunctionProcess {
    /// Starts the Runtime API and the process; returns at once (the process initialises while
    /// the first event waits).
    ///
    /// # Errors
    /// When the port cannot be bound, the log cannot be created, or the process cannot start.
    pub async fn start(spec: FunctionSpec) -> Result<Self, InvokeError> {
        let io = |source| InvokeError::Io { function: spec.name.clone(), source };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
        let runtime_api = listener.local_addr().map_err(io)?.to_string();
        let api = Api {
            inner: Arc::new(Mutex::new(Inner::default())),
            arrived: Arc::new(Notify::new()),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:vigil-package-check-{}", spec.name),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let output = std::fs::File::create(&spec.log).map_err(io)?;
        let errors = output.try_clone().map_err(io)?;
        let (program, args) = match spec.runner.split_first() {
            Some((runner, runner_args)) => {
                let mut args: Vec<String> = runner_args.to_vec();
                args.push(spec.bootstrap.display().to_string());
                (runner.clone(), args)
            }
            None => (spec.bootstrap.display().to_string(), Vec::new()),
        };
        let mut environment = spec.environment.clone();
        environment.extend(lambda_environment(&spec, &runtime_api));
        let child = tokio::process::Command::new(&program)
            .args(&args)
            .env_clear()
            .envs(&environment)
            .current_dir(spec.bootstrap.parent().unwrap_or_else(|| std::path::Path::new("/")))
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| InvokeError::Spawn { function: spec.name.clone(), path: program.clone(), source })?;
        Ok(Self { spec, api, child, started: Instant::now(), invocations: 0, slowest: Duration::ZERO, server })
    }

    /// The function's logical id.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Time from the start to the first `next` (the function's initialisation), once known.
    #[must_use]
    pub fn init_time(&self) -> Option<Duration> {
        self.api.lock().first_next.map(|at| at.duration_since(self.started))
    }

    /// Events handed to the function so far.
    #[must_use]
    pub fn invocations(&self) -> u64 {
        self.invocations
    }

    /// The longest time an event took, from hand-over to answer.
    #[must_use]
    pub fn slowest(&self) -> Duration {
        self.slowest
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.spec.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Hands `event` to the function and returns its response body.
    ///
    /// # Errors
    /// See [`InvokeError`].
    pub async fn invoke(&mut self, event: &serde_json::Value) -> Result<Vec<u8>, InvokeError> {
        let function = self.spec.name.clone();
        if let Some(body) = self.api.lock().init_error.clone() {
            return Err(InvokeError::Init { function, body });
        }
        self.invocations += 1;
        let request_id = format!("{}-{}", self.spec.name, self.invocations);
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + self.spec.timeout;
        let (done, outcome) = oneshot::channel();
        let event = serde_json::to_vec(event).map_err(|e| InvokeError::Io { function: function.clone(), source: e.into() })?;
        self.api.lock().queue.push_back(Pending { request_id, event, deadline_ms: deadline.as_millis(), done });
        self.api.arrived.notify_waiters();
        let limit = self.spec.timeout + self.spec.grace;
        let handed = Instant::now();
        let outcome = tokio::select! {
            outcome = outcome => match outcome {
                Ok(Ok(body)) => Ok(body),
                Ok(Err(Failure::Handler(body))) => Err(InvokeError::Handler { function, body }),
                Ok(Err(Failure::Init(body))) => Err(InvokeError::Init { function, body }),
                Err(_) => Err(InvokeError::Exited { function, status: "the runtime dropped the event".into(), tail: self.tail() }),
            },
            status = self.child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                // Give the log a moment to flush.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(InvokeError::Exited { function, status, tail: self.tail() })
            }
            () = tokio::time::sleep(limit) => Err(InvokeError::Timeout { function, timeout: limit, tail: self.tail() }),
        };
        self.slowest = self.slowest.max(handed.elapsed());
        outcome
    }

    /// Stops the process and its Runtime API.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.server.abort();
    }
}
