//! Microsoft 365 simulator: the Microsoft identity platform token endpoint (OAuth2 client
//! credentials, v1 and v2) and the Office 365 Management Activity API, multi-tenant, in memory.
//!
//! One HTTP server on `127.0.0.1:<random port>` plays both roles:
//!
//! * `{base}/login/{tenant}/oauth2/v2.0/token` and `{base}/login/{tenant}/oauth2/token`
//!   (the `login.microsoftonline.com` role),
//! * `{base}/manage/api/v1.0/{tenant}/activity/feed/...` (the `manage.office.com` role; `/api/v1/`
//!   is accepted too because Microsoft's own `NextPageUri` example uses it),
//! * `{base}/graph/v1.0/security/alerts_v2` (the `graph.microsoft.com` role: Microsoft Graph
//!   security alerts, modelled in `graph.rs`),
//! * `{base}/_sim/...` unauthenticated JSON control endpoints so a shell script or demo can drive it.
//!
//! Wire behaviour follows `/work/shared/reference/microsoft-apis.md` sections 1, 2 and 4. Where the
//! real service is undocumented (HTTP status per AF code, `Retry-After`, `Z` suffix on window
//! times) the simulator picks the documented-ish option and says so in a comment; it is
//! deliberately *stricter* than the real service where that keeps clients honest.
//!
//! Observed live and reproduced by default: a content-list window of 24 hours or more, or one
//! starting more than 7 days (+1 h) back, is refused with 400 `AF20055`; content is listed for 7
//! days but a blob's `contentUri` serves for ~20 days (its `contentExpiration`); the start
//! response spells `Audit.SharePoint` as `Audit.Sharepoint`; the notification history says
//! `Succeeded`/`Failed`. Switches: [`M365SimHandle::set_disabled_after_start`] (AF20023 for the
//! next N listings after a start) and the `ThrottleFractional` / `ThrottleWithoutRetryAfter`
//! failures (`Retry-After: 0.249` / none).
//!
//! Everything is synchronous behind one `std::sync::Mutex`; no lock is ever held across an
//! `.await`.
//!
//! Webhooks (section 3: the validation handshake during `subscriptions/start`, notifications for
//! new blobs, retries, disabling) are modelled in [`crate::webhooks`]; the outbound calls run
//! outside the lock.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use crate::webhooks::{self, Notification, PendingStart, Webhook, WebhookDelivery, WebhookStatus};

/// The five content types the Management Activity API knows.
pub const CONTENT_TYPES: [&str; 5] = ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"];

/// App id of the "Office 365 Management APIs" resource principal (valid as v1 `resource`).
const MANAGEMENT_APP_ID: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
/// Lifetime reported in `expires_in` (real tokens live 60-90 min; clients must use the field).
const TOKEN_LIFETIME_SECS: i64 = 3599;
/// Default content-list page size.
const DEFAULT_PAGE_SIZE: usize = 100;
/// Content is listed, and window starts are accepted, for this many days.
const RETENTION_DAYS: i64 = 7;
/// A blob's `contentUri` keeps serving for this many days (observed live: `contentExpiration`
/// is ~20 days after `contentCreated`, although listing reaches back only [`RETENTION_DAYS`]).
const BLOB_FETCH_DAYS: i64 = 20;
/// Grace on the 7-day start-time rule (Elastic observed ~7 days + ~1 hour).
const START_GRACE_MINUTES: i64 = 60;
/// `PublisherId` shown in throttling messages when no `PublisherIdentifier` was sent.
const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Entry point: `M365Sim::start().await` spawns the server on the current tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct M365Sim;

impl M365Sim {
    /// Binds `127.0.0.1:0`, spawns the server and returns a handle to drive and inspect it.
    pub async fn start() -> std::io::Result<M365SimHandle> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::new(format!("http://127.0.0.1:{}", addr.port())));
        let app = router(Arc::clone(&inner));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = shutdown_rx.await;
            });
            if let Err(err) = server.await {
                tracing::warn!(error = %err, "m365 simulator server stopped with an error");
            }
        });
        tracing::debug!(base_url = %inner.base_url, "m365 simulator started");
        Ok(M365SimHandle { inner, server: Arc::new(Mutex::new(Some(ServerTask { shutdown: shutdown_tx, join }))) })
    }
}

/// Which simulated operation a [`M365SimHandle::fail_next`] injection applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum M365Operation {
    /// Token endpoint (v1 and v2).
    Token,
    /// `GET subscriptions/content`.
    ListContent,
    /// `GET audit/{contentId}`.
    FetchBlob,
    /// `POST subscriptions/start`.
    StartSubscription,
    /// `GET /graph/v1.0/security/alerts_v2` (Microsoft Graph). `Throttle` answers 429 and
    /// `ThrottleForbidden` 503, both with `Retry-After: 1`; `ThrottleFractional` and
    /// `ThrottleWithoutRetryAfter` answer 429 with `Retry-After: 0.249` and none; `ServerError`
    /// answers 500.
    GraphAlerts,
    /// Any request to the token endpoint, the Management API or Graph (including list/stop
    /// subscriptions and notifications, which have no operation of their own).
    Any,
}

/// Failure to inject with [`M365SimHandle::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum M365Failure {
    /// HTTP 429, `Retry-After: 1`, error code `AF429` (token endpoint: 429 `temporarily_unavailable`
    /// AADSTS90055).
    Throttle,
    /// HTTP 403 with `AF429` and no `Retry-After` (the form shown on Microsoft's troubleshooting
    /// page). The token endpoint never answers 403, so there it behaves like [`Self::Throttle`].
    ThrottleForbidden,
    /// HTTP 500 `AF50000` (token endpoint: 500 `server_error` AADSTS50000).
    ServerError,
    /// Like [`Self::Throttle`] with a fractional `Retry-After: 0.249` (Graph has been seen sending
    /// decimal seconds).
    ThrottleFractional,
    /// Like [`Self::Throttle`] without any `Retry-After` (several Graph services, and the
    /// Management API as observed live, send none).
    ThrottleWithoutRetryAfter,
}

/// Error returned when parsing an operation/failure name fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNameError(pub String);

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name: {}", self.0)
    }
}

impl std::error::Error for ParseNameError {}

fn normalise_name(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect()
}

impl FromStr for M365Operation {
    type Err = ParseNameError;

    /// Accepts `token`, `list_content`, `ListContent`, `fetch-blob`, ... (case, `_` and `-`
    /// insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match normalise_name(s).as_str() {
            "token" => Ok(Self::Token),
            "listcontent" => Ok(Self::ListContent),
            "fetchblob" => Ok(Self::FetchBlob),
            "startsubscription" => Ok(Self::StartSubscription),
            "graphalerts" => Ok(Self::GraphAlerts),
            "any" => Ok(Self::Any),
            _ => Err(ParseNameError(s.to_owned())),
        }
    }
}

impl FromStr for M365Failure {
    type Err = ParseNameError;

    /// Accepts `throttle`, `throttle_forbidden`, `ServerError`, ... (case, `_` and `-`
    /// insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match normalise_name(s).as_str() {
            "throttle" => Ok(Self::Throttle),
            "throttleforbidden" => Ok(Self::ThrottleForbidden),
            "servererror" => Ok(Self::ServerError),
            "throttlefractional" => Ok(Self::ThrottleFractional),
            "throttlewithoutretryafter" => Ok(Self::ThrottleWithoutRetryAfter),
            _ => Err(ParseNameError(s.to_owned())),
        }
    }
}

/// One request received on the login or manage role (control requests are not logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Raw request path as received (percent-encoding preserved), e.g.
    /// `/manage/api/v1.0/{tenant}/activity/feed/subscriptions/content`.
    pub path: String,
    /// Raw query string without `?` (empty when none).
    pub query: String,
}

impl SimRequest {
    /// First value of query parameter `name` (name matched case-insensitively, value decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        Params::parse(self.query.as_bytes()).get_ci(name).map(str::to_owned)
    }

    /// Whether the request carried a non-empty `PublisherIdentifier` (any case).
    pub fn has_publisher_identifier(&self) -> bool {
        self.query_param("PublisherIdentifier").is_some_and(|v| !v.is_empty())
    }
}

/// Handle to a running simulator. Cheap to clone; all clones drive the same server.
#[derive(Clone)]
pub struct M365SimHandle {
    inner: Arc<Inner>,
    server: Arc<Mutex<Option<ServerTask>>>,
}

struct ServerTask {
    shutdown: oneshot::Sender<()>,
    join: JoinHandle<()>,
}

impl fmt::Debug for M365SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("M365SimHandle").field("base_url", &self.inner.base_url).finish_non_exhaustive()
    }
}

impl M365SimHandle {
    /// `http://127.0.0.1:PORT` – serves both the login and the manage role.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `{base_url}/login`; token endpoints are `{login_base}/{tenant}/oauth2/v2.0/token` and
    /// `{login_base}/{tenant}/oauth2/token`.
    pub fn login_base(&self) -> String {
        self.inner.login_base()
    }

    /// `{base_url}/manage`; API root for `{management_base}/api/v1.0/{tenant}/activity/feed/...`.
    /// `{management_base}/.default` is an accepted v2 scope (as is any `https://.../.default`).
    pub fn management_base(&self) -> String {
        self.inner.management_base()
    }

    /// Registers `tenant_id` with the (multi-tenant) app `client_id`/`client_secret` admin-consented
    /// with `ActivityFeed.Read`. Re-adding a tenant replaces its credentials and restores consent
    /// and the role; subscriptions and blobs are kept.
    pub fn add_tenant(&self, tenant_id: &str, client_id: &str, client_secret: &str) {
        self.inner.add_tenant(tenant_id, client_id, client_secret);
    }

    /// Removes the tenant (token requests → AADSTS90002; API calls with an old token → AF20011).
    pub fn remove_tenant(&self, tenant_id: &str) {
        self.inner.lock().tenants.remove(&tenant_key(tenant_id));
    }

    /// Consent removed: token requests now fail 400 `unauthorized_client` AADSTS700016.
    /// Already-issued tokens stay valid until they expire (they are self-contained JWTs).
    pub fn revoke_consent(&self, tenant_id: &str) {
        self.inner.set_consent(tenant_id, false);
    }

    /// Undoes [`Self::revoke_consent`].
    pub fn restore_consent(&self, tenant_id: &str) {
        self.inner.set_consent(tenant_id, true);
    }

    /// Consent without the `ActivityFeed.Read` app role (`granted = false`): token requests still
    /// succeed, but the token has no `roles` claim and every API call fails with AF10001.
    pub fn set_activity_feed_role(&self, tenant_id: &str, granted: bool) {
        if let Some(t) = self.inner.lock().tenants.get_mut(&tenant_key(tenant_id)) {
            t.activity_feed_role = granted;
        }
    }

    /// `{base_url}/graph`, the Microsoft Graph root: `{graph_base}/v1.0/security/alerts_v2`.
    /// `{graph_base}/.default` is an accepted v2 scope; its tokens are refused by the Management API.
    pub fn graph_base(&self) -> String {
        self.inner.graph_base()
    }

    /// Stores a Graph security alert (`alerts_v2` JSON) of the tenant; the tenant does not need to
    /// exist yet. A missing `lastUpdateDateTime` (or `id`, `tenantId`, `createdDateTime`,
    /// `@odata.type`) is filled in, with now for the times. An alert with the `id` of a stored one
    /// replaces it: an update.
    pub fn add_graph_alert(&self, tenant_id: &str, alert: Value) {
        self.inner.lock().graph.add_alert(tenant_id, alert, Utc::now());
    }

    /// Whether `SecurityAlert.Read.All` is consented in the tenant (default: yes). Decided when a
    /// Graph token is issued, like the token's `roles` claim: without it Graph answers 403
    /// `Forbidden`; tokens issued earlier keep what they had.
    pub fn set_graph_role(&self, tenant_id: &str, granted: bool) {
        self.inner.lock().graph.set_role(tenant_id, granted);
    }

    /// Makes every token issued so far expired (API calls with them → 401).
    pub fn expire_tokens(&self) {
        let past = Utc::now() - TimeDelta::seconds(1);
        for t in self.inner.lock().tokens.values_mut() {
            t.expires = past;
        }
    }

    /// Makes one new content blob holding `records` (`contentCreated` = now, ms precision) and
    /// returns its `contentId`. The tenant does not need to exist yet.
    pub fn add_records(&self, tenant_id: &str, content_type: &str, records: Vec<Value>) -> String {
        self.inner.add_blob(tenant_id, content_type, Utc::now(), BlobBody::Records(records))
    }

    /// Like [`Self::add_records`] with an explicit `contentCreated` (e.g. 8 days ago to get an
    /// expired blob, or inside a specific window).
    pub fn add_records_at(&self, tenant_id: &str, content_type: &str, content_created: DateTime<Utc>, records: Vec<Value>) -> String {
        self.inner.add_blob(tenant_id, content_type, content_created, BlobBody::Records(records))
    }

    /// A blob whose body is served verbatim (e.g. invalid JSON). Returns its `contentId`.
    pub fn add_raw_blob(&self, tenant_id: &str, content_type: &str, body: &str) -> String {
        self.inner.add_blob(tenant_id, content_type, Utc::now(), BlobBody::Raw(body.to_owned()))
    }

    /// Content-list page size (default 100; `0` is treated as 1). More results → `NextPageUri`.
    /// Also caps Graph alert pages (`$top`); more results → `@odata.nextLink`.
    pub fn set_page_size(&self, n: usize) {
        self.inner.lock().page_size = n.max(1);
    }

    /// After every successful `subscriptions/start` from now on, the subscription's next
    /// `list_calls` content listings answer AF20023 (disabled), as the live service was seen to do
    /// for a while after a start; later listings succeed. Default 0 (enabled at once).
    pub fn set_disabled_after_start(&self, list_calls: u32) {
        self.inner.lock().disabled_after_start = list_calls;
    }

    /// The next `times` requests matching `op` fail with `failure` (FIFO across injections).
    pub fn fail_next(&self, op: M365Operation, failure: M365Failure, times: u32) {
        self.inner.fail_next(op, failure, times);
    }

    /// Enabled subscriptions (content types) of the tenant, sorted.
    pub fn subscriptions(&self, tenant_id: &str) -> Vec<String> {
        self.inner.subscriptions(tenant_id)
    }

    /// Every login/manage request received so far, oldest first.
    pub fn request_log(&self) -> Vec<SimRequest> {
        self.inner.lock().requests.clone()
    }

    /// Management API requests that arrived without a (non-empty) `PublisherIdentifier` query
    /// parameter. The real API still answers them (from a shared throttling pool); so does the sim.
    pub fn missing_publisher_identifier_count(&self) -> u64 {
        self.inner.lock().missing_publisher
    }

    /// Number of successful (200) content blob fetches.
    pub fn blob_fetch_count(&self) -> u64 {
        self.inner.lock().blob_fetches
    }

    /// Every webhook notification POST so far (each retry is one entry), oldest first.
    /// Notifications are sent in the background: poll until the expected entries are there.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.inner.lock().webhook_deliveries.clone()
    }

    /// POSTs a notification with `items` now, once, to the webhook registered on the tenant's
    /// `content_type` subscription (whatever its status), with `Webhook-AuthID: auth_id` (no
    /// header for `None`): to simulate duplicated, replayed or forged notifications. Recorded in
    /// [`Self::webhook_deliveries`] with `manual: true`; never counts towards disabling the
    /// webhook. Without a registered webhook an entry with an error and no address is recorded.
    pub fn send_notification_now(&self, tenant_id: &str, content_type: &str, items: Vec<Value>, auth_id: Option<&str>) {
        let address = self
            .inner
            .lock()
            .tenants
            .get(&tenant_key(tenant_id))
            .and_then(|t| t.subscriptions.get(content_type))
            .and_then(|s| s.webhook.as_ref().map(|w| w.target().address));
        let notification = Notification {
            tenant_id: tenant_id.to_owned(),
            content_type: content_type.to_owned(),
            address: address.clone().unwrap_or_default(),
            items,
            manual: true,
        };
        match address {
            Some(address) => {
                let target = webhooks::Target { address, auth_id: auth_id.map(str::to_owned) };
                self.inner.send_notification(notification, target, None);
            }
            None => {
                let (entries, _) = notification.deliveries(vec![webhooks::Attempt::failed("no webhook registered")]);
                self.inner.lock().webhook_deliveries.extend(entries);
            }
        }
    }

    /// The notification item Microsoft would send for an existing blob (for
    /// [`Self::send_notification_now`]), or `None` when the tenant has no such blob.
    pub fn notification_item(&self, tenant_id: &str, content_id: &str) -> Option<Value> {
        let st = self.inner.lock();
        let tkey = tenant_key(tenant_id);
        let blob = st.blobs.get(&tkey)?.iter().find(|b| b.content_id == content_id)?;
        let uri = format!("{}/api/v1.0/{tenant_id}/activity/feed/audit/{}", self.inner.management_base(), blob.content_id);
        Some(webhooks::notification_item(&blob.content_type, &blob.content_id, &uri, blob.created))
    }

    /// The tenant's subscription to `content_type` as `subscriptions/list` shows it (with its
    /// `webhook`), or `None` when it was never started.
    pub fn subscription(&self, tenant_id: &str, content_type: &str) -> Option<Value> {
        let st = self.inner.lock();
        let sub = st.tenants.get(&tenant_key(tenant_id))?.subscriptions.get(content_type)?;
        Some(subscription_json(content_type, sub))
    }

    /// Delays every token, Management Activity API and Graph response by `latency` (default
    /// zero), like a real round trip to Microsoft. Control endpoints answer at once.
    pub fn set_latency(&self, latency: std::time::Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.inner.latency_micros.store(micros, Ordering::Relaxed);
    }

    /// Stops the server (graceful, at most ~2 s, then aborted). Other clones become inert.
    pub async fn shutdown(self) {
        let task = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.shutdown.send(());
            let mut join = task.join;
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut join).await.is_err() {
                join.abort();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct Inner {
    base_url: String,
    state: Mutex<SimState>,
    /// Delay before answering token, Management API and Graph requests, in microseconds.
    latency_micros: AtomicU64,
}

struct SimState {
    /// Keyed by lower-cased tenant id.
    tenants: HashMap<String, Tenant>,
    /// Keyed by lower-cased tenant id; independent of tenant registration.
    blobs: HashMap<String, Vec<Blob>>,
    tokens: HashMap<String, IssuedToken>,
    pages: HashMap<String, PageCursor>,
    failures: Vec<PendingFailure>,
    requests: Vec<SimRequest>,
    page_size: usize,
    blob_fetches: u64,
    missing_publisher: u64,
    seq: u64,
    /// Microsoft Graph security alerts (see `graph.rs`).
    graph: crate::graph::GraphState,
    /// Webhook notification POSTs, oldest first.
    webhook_deliveries: Vec<WebhookDelivery>,
    /// Content listings answered AF20023 after each successful start (default 0).
    disabled_after_start: u32,
}

struct Tenant {
    client_id: String,
    client_secret: String,
    consented: bool,
    activity_feed_role: bool,
    subscriptions: BTreeMap<String, Subscription>,
}

struct Subscription {
    enabled: bool,
    webhook: Option<Webhook>,
    /// Content listings still answered AF20023 after the last successful start (see
    /// [`M365SimHandle::set_disabled_after_start`]).
    disabled_lists_left: u32,
}

struct Blob {
    seq: u64,
    content_id: String,
    content_type: String,
    created: DateTime<Utc>,
    body: BlobBody,
}

enum BlobBody {
    Records(Vec<Value>),
    Raw(String),
}

struct IssuedToken {
    tenant: String,
    audience: String,
    expires: DateTime<Utc>,
    has_role: bool,
}

struct PageCursor {
    tenant: String,
    content_type: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    start_text: String,
    end_text: String,
    /// `(contentCreated, seq)` of the last blob already returned.
    after: (DateTime<Utc>, u64),
}

struct PendingFailure {
    op: M365Operation,
    failure: M365Failure,
    remaining: u32,
}

/// Internal classification of a request for failure injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Token,
    ListContent,
    FetchBlob,
    StartSubscription,
    GraphAlerts,
    Other,
}

impl Op {
    fn matches(self, op: M365Operation) -> bool {
        match op {
            M365Operation::Any => true,
            M365Operation::Token => self == Op::Token,
            M365Operation::ListContent => self == Op::ListContent,
            M365Operation::FetchBlob => self == Op::FetchBlob,
            M365Operation::StartSubscription => self == Op::StartSubscription,
            M365Operation::GraphAlerts => self == Op::GraphAlerts,
        }
    }

    /// `Method=` value used in AF429 messages.
    fn method_name(self) -> &'static str {
        match self {
            Op::Token => "Token",
            Op::ListContent => "GetContents",
            Op::FetchBlob => "GetBlob",
            Op::StartSubscription => "StartSubscription",
            Op::GraphAlerts => "ListAlerts",
            Op::Other => "Subscriptions",
        }
    }
}

fn tenant_key(tenant: &str) -> String {
    tenant.to_ascii_lowercase()
}

impl SimState {
    fn log(&mut self, method: &Method, uri: &Uri) {
        self.requests.push(SimRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
        });
    }

    fn take_failure(&mut self, op: Op) -> Option<M365Failure> {
        let idx = self.failures.iter().position(|f| f.remaining > 0 && op.matches(f.op))?;
        let entry = &mut self.failures[idx];
        entry.remaining -= 1;
        let failure = entry.failure;
        if entry.remaining == 0 {
            self.failures.remove(idx);
        }
        Some(failure)
    }
}

impl Inner {
    fn new(base_url: String) -> Self {
        Self {
            base_url,
            latency_micros: AtomicU64::new(0),
            state: Mutex::new(SimState {
                tenants: HashMap::new(),
                blobs: HashMap::new(),
                tokens: HashMap::new(),
                pages: HashMap::new(),
                failures: Vec::new(),
                requests: Vec::new(),
                page_size: DEFAULT_PAGE_SIZE,
                blob_fetches: 0,
                missing_publisher: 0,
                seq: 0,
                graph: crate::graph::GraphState::default(),
                webhook_deliveries: Vec::new(),
                disabled_after_start: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits the simulated network/service latency. Called before any lock is taken.
    async fn delay(&self) {
        let micros = self.latency_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
        }
    }

    fn login_base(&self) -> String {
        format!("{}/login", self.base_url)
    }

    fn management_base(&self) -> String {
        format!("{}/manage", self.base_url)
    }

    fn port(&self) -> Option<u16> {
        Url::parse(&self.base_url).ok()?.port()
    }

    fn add_tenant(&self, tenant_id: &str, client_id: &str, client_secret: &str) {
        let mut st = self.lock();
        let entry = st.tenants.entry(tenant_key(tenant_id)).or_insert_with(|| Tenant {
            client_id: String::new(),
            client_secret: String::new(),
            consented: true,
            activity_feed_role: true,
            subscriptions: BTreeMap::new(),
        });
        entry.client_id = client_id.to_owned();
        entry.client_secret = client_secret.to_owned();
        entry.consented = true;
        entry.activity_feed_role = true;
    }

    fn set_consent(&self, tenant_id: &str, granted: bool) {
        if let Some(t) = self.lock().tenants.get_mut(&tenant_key(tenant_id)) {
            t.consented = granted;
        }
    }

    fn fail_next(&self, op: M365Operation, failure: M365Failure, times: u32) {
        if times == 0 {
            return;
        }
        self.lock().failures.push(PendingFailure { op, failure, remaining: times });
    }

    fn subscriptions(&self, tenant_id: &str) -> Vec<String> {
        self.lock()
            .tenants
            .get(&tenant_key(tenant_id))
            .map(|t| t.subscriptions.iter().filter(|(_, s)| s.enabled).map(|(ct, _)| ct.clone()).collect())
            .unwrap_or_default()
    }

    /// Adds a blob and, if the subscription has an enabled webhook, notifies it in the background.
    fn add_blob(self: &Arc<Self>, tenant_id: &str, content_type: &str, created: DateTime<Utc>, body: BlobBody) -> String {
        let created = truncate_ms(created);
        let mut st = self.lock();
        st.seq += 1;
        let seq = st.seq;
        let stamp = created.format("%Y%m%d%H%M%S%3f").to_string();
        let content_id = format!("{stamp}${stamp}${}${seq:06}", content_type.to_ascii_lowercase().replace('.', "_"));
        st.blobs.entry(tenant_key(tenant_id)).or_default().push(Blob {
            seq,
            content_id: content_id.clone(),
            content_type: content_type.to_owned(),
            created,
            body,
        });
        let hook = st.tenants.get(&tenant_key(tenant_id)).and_then(|t| {
            let sub = t.subscriptions.get(content_type).filter(|s| s.enabled)?;
            let hook = sub.webhook.as_ref().filter(|w| w.status(Utc::now()) == WebhookStatus::Enabled)?;
            Some((hook.id, hook.target()))
        });
        drop(st);
        if let Some((hook_id, target)) = hook {
            let uri = format!("{}/api/v1.0/{tenant_id}/activity/feed/audit/{content_id}", self.management_base());
            let item = webhooks::notification_item(content_type, &content_id, &uri, created);
            let notification = Notification {
                tenant_id: tenant_id.to_owned(),
                content_type: content_type.to_owned(),
                address: target.address.clone(),
                items: vec![item],
                manual: false,
            };
            self.send_notification(notification, target, Some(hook_id));
        }
        content_id
    }

    /// Sends `notification` in the background and records the outcome; `hook_id` (a service
    /// notification) gets retries and counts towards disabling that webhook registration.
    fn send_notification(self: &Arc<Self>, notification: Notification, target: webhooks::Target, hook_id: Option<u64>) {
        let sim = Arc::clone(self);
        let tries = if hook_id.is_some() { webhooks::ATTEMPTS_PER_NOTIFICATION } else { 1 };
        let items = notification.items.clone();
        webhooks::spawn_notification(target, items, tries, move |attempts| {
            let (entries, delivered) = notification.deliveries(attempts);
            let mut st = sim.lock();
            st.webhook_deliveries.extend(entries);
            let hook = st
                .tenants
                .get_mut(&tenant_key(&notification.tenant_id))
                .and_then(|t| t.subscriptions.get_mut(&notification.content_type))
                .and_then(|s| s.webhook.as_mut())
                .filter(|w| hook_id == Some(w.id));
            if let Some(hook) = hook {
                hook.record_notification(delivered);
            }
        });
    }

    /// Whether a token audience designates the Management Activity API.
    fn is_management_audience(&self, audience: &str) -> bool {
        let aud = audience.trim_end_matches('/');
        if aud.eq_ignore_ascii_case(MANAGEMENT_APP_ID) {
            return true;
        }
        let Ok(url) = Url::parse(aud) else {
            return false;
        };
        match url.scheme() {
            // manage.office.com, manage-gcc.office.com, manage.office365.us,
            // manage.protection.apps.mil, manage.office365.cn
            "https" => url.host_str().is_some_and(|h| h.starts_with("manage")),
            // The simulator itself, under any host name that reaches its port.
            "http" => url.port().is_some() && url.port() == self.port() && url.path() == "/manage",
            _ => false,
        }
    }

    /// Whether `resource` is acceptable at the token endpoint: any `https://` resource (the sim
    /// issues the token; a non-management audience is then rejected by the API with 401, like the
    /// real service), the sim's own manage or graph root, or the Management APIs app id.
    fn is_acceptable_resource(&self, resource: &str) -> bool {
        if resource.is_empty() {
            return false;
        }
        if self.is_management_audience(resource) || crate::graph::is_graph_audience(resource, self.port()) {
            return true;
        }
        Url::parse(resource).ok().is_some_and(|u| u.scheme() == "https" && u.host_str().is_some())
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Decoded `application/x-www-form-urlencoded` pairs (query strings and token request bodies).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// Exact-name lookup (token endpoint form fields).
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Case-insensitive lookup (Management API query parameters; ASP.NET binds them
    /// case-insensitively and Elastic sends `publisherIdentifier`).
    fn get_ci(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        // Fallback: uniqueness is all the simulator needs.
        static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let mut x = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        for b in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
    }
    buf
}

fn new_guid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// `contentCreated` / `contentExpiration` format: `2026-01-05T10:15:00.123Z`.
fn content_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Window time format used when the server fills in `startTime`/`endTime` itself.
fn window_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Parses `startTime`/`endTime`: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, UTC.
///
/// A `Z` suffix, offsets and fractional seconds are rejected (AF20002). Whether the real service
/// accepts them is unconfirmed; rejecting them is stricter than (possibly) real behaviour and
/// keeps clients on the documented formats.
fn parse_window_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(dt.and_utc());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        return Some(dt.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|dt| dt.and_utc())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// Management API error body: `{"error":{"code":"AF20022","message":"..."}}`.
fn af_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({ "error": { "code": code, "message": message } }))
}

/// A Management API error not yet rendered (keeps `Result`s small).
struct AfError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AfError {
    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }
}

impl IntoResponse for AfError {
    fn into_response(self) -> Response {
        af_error(self.status, self.code, &self.message)
    }
}

/// What the (ASP.NET-hosted) Management API answers for a missing, unknown, expired or
/// wrong-audience bearer token: 401, `WWW-Authenticate: Bearer`, `{"Message": "..."}` – no AF
/// code, so clients re-authenticate instead of treating it as a permission problem.
fn unauthorized() -> Response {
    let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({ "Message": "Authorization has been denied for this request." }));
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Identity platform error body (section 1.6 of the reference).
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace_id = new_guid();
    let correlation_id = new_guid();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    let mut resp = json_response(status, &body);
    no_store(&mut resp);
    resp
}

/// The `Retry-After` a throttling failure carries: `1`, `0.249` or none.
pub(crate) fn throttle_retry_after(failure: M365Failure, mut resp: Response) -> Response {
    let value = match failure {
        M365Failure::ThrottleFractional => "0.249",
        M365Failure::ThrottleWithoutRetryAfter => return resp,
        _ => "1",
    };
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(value));
    resp
}

fn token_failure(failure: M365Failure) -> Response {
    match failure {
        M365Failure::Throttle
        | M365Failure::ThrottleForbidden
        | M365Failure::ThrottleFractional
        | M365Failure::ThrottleWithoutRetryAfter => throttle_retry_after(
            failure,
            aad_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                90055,
                "The request has been throttled. Tenant throttling threshold exceeded; retry later.",
            ),
        ),
        M365Failure::ServerError => aad_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "There was an error issuing a token or an issue with our sign-in service.",
        ),
    }
}

fn management_failure(failure: M365Failure, op: Op, publisher: Option<&str>) -> Response {
    let publisher = publisher.filter(|p| !p.is_empty()).unwrap_or(ZERO_GUID);
    let throttled = format!("Too many requests. Method={}, PublisherId={publisher}", op.method_name());
    match failure {
        M365Failure::Throttle | M365Failure::ThrottleFractional | M365Failure::ThrottleWithoutRetryAfter => {
            throttle_retry_after(failure, af_error(StatusCode::TOO_MANY_REQUESTS, "AF429", &throttled))
        }
        // Microsoft's troubleshooting page shows 403 + AF429; whether Retry-After is sent is
        // unconfirmed, so this variant omits it (clients must back off on their own).
        M365Failure::ThrottleForbidden => af_error(StatusCode::FORBIDDEN, "AF429", &throttled),
        M365Failure::ServerError => {
            af_error(StatusCode::INTERNAL_SERVER_ERROR, "AF50000", "An internal error occurred. Retry the request.")
        }
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// `client_id`/`client_secret` from the form body, falling back to HTTP Basic (RFC 6749 2.3.1:
/// both parts form-urlencoded before base64).
fn client_credentials(form: &Params, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let mut id = form.get("client_id").map(str::to_owned);
    let mut secret = form.get("client_secret").map(str::to_owned);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    if let Some((u, p)) = basic.as_deref().and_then(|d| d.split_once(':')) {
        let decode =
            |s: &str| url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
        if id.is_none() {
            id = Some(decode(u));
        }
        if secret.is_none() {
            secret = Some(decode(p));
        }
    }
    (id.filter(|s| !s.is_empty()), secret.filter(|s| !s.is_empty()))
}

/// An unsigned, JWT-shaped opaque token (header.payload.garbage-signature).
fn make_access_token(tenant: &str, client_id: &str, audience: &str, now: DateTime<Utc>, role: Option<&str>) -> String {
    let header = json!({ "typ": "JWT", "alg": "RS256", "x5t": "vigil-sim", "kid": "vigil-sim" });
    let iat = now.timestamp() - 300;
    let issuer = format!("https://sts.windows.net/{tenant}/");
    let oid = new_guid();
    let mut claims = json!({
        "aud": audience,
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": now.timestamp() + TOKEN_LIFETIME_SECS,
        "appid": client_id,
        "appidacr": "1",
        "idp": issuer,
        "idtyp": "app",
        "oid": oid,
        "sub": oid,
        "tid": tenant,
        "uti": URL_SAFE_NO_PAD.encode(random_bytes::<16>()),
        "ver": "1.0",
    });
    if let Some(role) = role {
        if let Some(obj) = claims.as_object_mut() {
            obj.insert("roles".to_owned(), json!([role]));
        }
    }
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(random_bytes::<64>())
    )
}

// ---------------------------------------------------------------------------------------------
// Token endpoint
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenVersion {
    V1,
    V2,
}

impl Inner {
    fn handle_token(&self, version: TokenVersion, tenant: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = Utc::now();
        let form = Params::parse(body);
        let mut guard = self.lock();
        let st = &mut *guard;
        st.log(&Method::POST, uri);
        if let Some(failure) = st.take_failure(Op::Token) {
            return token_failure(failure);
        }

        let tkey = tenant_key(tenant);
        if tkey == "common" || tkey == "consumers" {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                9001023,
                "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            );
        }
        let Some(registered) = st.tenants.get(&tkey) else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                &format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                ),
            );
        };

        match form.get("grant_type") {
            None | Some("") => {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'grant_type'.",
                );
            }
            Some("client_credentials") => {}
            Some(other) => {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    70003,
                    &format!("The app requested an unsupported grant type '{other}'."),
                );
            }
        }

        let (client_id, client_secret) = client_credentials(&form, headers);
        let Some(client_id) = client_id else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        };

        // Resource (v1) / scope (v2).
        let resource = match version {
            TokenVersion::V2 => {
                let Some(scope) = form.get("scope").map(str::trim).filter(|s| !s.is_empty()) else {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        70011,
                        "The provided request must include a 'scope' input parameter.",
                    );
                };
                let resource = scope.strip_suffix("/.default").unwrap_or_default();
                if scope.split_whitespace().count() != 1 || !self.is_acceptable_resource(resource) {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        70011,
                        &format!(
                            "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. For the client credentials flow the scope must be a single '<resource>/.default' value."
                        ),
                    );
                }
                resource.to_owned()
            }
            TokenVersion::V1 => {
                let Some(resource) = form.get("resource").map(str::trim).filter(|s| !s.is_empty()) else {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'resource'.",
                    );
                };
                if !self.is_acceptable_resource(resource) {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_resource",
                        500011,
                        &format!(
                            "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
                        ),
                    );
                }
                resource.to_owned()
            }
        };

        if !registered.client_id.eq_ignore_ascii_case(&client_id) || !registered.consented {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            );
        }
        match client_secret {
            None => {
                return aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                );
            }
            Some(secret) if secret != registered.client_secret => {
                return aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    &format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                );
            }
            Some(_) => {}
        }

        // The app role in the token depends on its resource, like the real `roles` claim.
        let (has_role, role) = if crate::graph::is_graph_audience(&resource, self.port()) {
            (st.graph.role_granted(&tkey), crate::graph::ALERTS_ROLE)
        } else {
            (registered.activity_feed_role, "ActivityFeed.Read")
        };
        let access_token = make_access_token(tenant, &client_id, &resource, now, has_role.then_some(role));
        st.tokens.insert(
            access_token.clone(),
            IssuedToken { tenant: tkey, audience: resource.clone(), expires: now + TimeDelta::seconds(TOKEN_LIFETIME_SECS), has_role },
        );

        let body = match version {
            TokenVersion::V2 => json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS,
                "ext_expires_in": TOKEN_LIFETIME_SECS,
                "access_token": access_token,
            }),
            // v1 returns the numeric fields as strings.
            TokenVersion::V1 => json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS.to_string(),
                "ext_expires_in": TOKEN_LIFETIME_SECS.to_string(),
                "expires_on": (now.timestamp() + TOKEN_LIFETIME_SECS).to_string(),
                "not_before": (now.timestamp() - 300).to_string(),
                "resource": resource,
                "access_token": access_token,
            }),
        };
        let mut resp = json_response(StatusCode::OK, &body);
        no_store(&mut resp);
        resp
    }
}

// ---------------------------------------------------------------------------------------------
// Management Activity API
// ---------------------------------------------------------------------------------------------

/// Per-request context for the Management API handlers.
struct Ctx<'a> {
    /// Tenant exactly as written in the URL.
    tenant: &'a str,
    /// Lower-cased tenant.
    tkey: String,
    management_base: String,
    query: Params,
    body: &'a [u8],
    now: DateTime<Utc>,
}

fn classify(method: &Method, segments: &[&str]) -> Op {
    let is = |seg: &str, name: &str| seg.eq_ignore_ascii_case(name);
    match segments {
        [s, op] if is(s, "subscriptions") && is(op, "start") && method == Method::POST => Op::StartSubscription,
        [s, op] if is(s, "subscriptions") && is(op, "content") => Op::ListContent,
        [a, _] if is(a, "audit") => Op::FetchBlob,
        _ => Op::Other,
    }
}

fn method_not_allowed(method: &Method) -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "Message": format!("The requested resource does not support http method '{method}'.") }),
    )
}

impl Inner {
    #[allow(clippy::too_many_arguments)]
    fn handle_manage(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        version: &str,
        tenant: &str,
        rest: &str,
        body: &[u8],
    ) -> Response {
        let ctx = Ctx {
            tenant,
            tkey: tenant_key(tenant),
            management_base: self.management_base(),
            query: Params::parse(uri.query().unwrap_or_default().as_bytes()),
            body,
            now: Utc::now(),
        };
        let segments: Vec<&str> = rest.splitn(2, '/').collect();
        let mut guard = self.lock();
        let st = &mut *guard;
        st.log(method, uri);
        let publisher = ctx.query.get_ci("PublisherIdentifier").filter(|p| !p.is_empty());
        if publisher.is_none() {
            st.missing_publisher += 1;
        }
        if !(version.eq_ignore_ascii_case("v1.0") || version.eq_ignore_ascii_case("v1")) {
            return not_found(uri);
        }

        let op = classify(method, &segments);
        if let Some(failure) = st.take_failure(op) {
            return management_failure(failure, op, publisher);
        }

        // Authentication.
        let Some(token) = bearer_token(headers).and_then(|t| st.tokens.get(t)) else {
            return unauthorized();
        };
        if token.expires <= ctx.now || !self.is_management_audience(&token.audience) {
            return unauthorized();
        }
        // Authorization. HTTP statuses for AF codes are undocumented; 403 for "not yours".
        if token.tenant != ctx.tkey {
            return af_error(
                StatusCode::FORBIDDEN,
                "AF20010",
                &format!(
                    "The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the access token ({}).",
                    token.tenant
                ),
            );
        }
        if !token.has_role {
            return af_error(
                StatusCode::FORBIDDEN,
                "AF10001",
                "The permission set () sent in the request does not include the expected permission ActivityFeed.Read.",
            );
        }
        if !st.tenants.contains_key(&ctx.tkey) {
            return af_error(
                StatusCode::BAD_REQUEST,
                "AF20011",
                &format!("Specified tenant ID ({tenant}) does not exist in the system or has been deleted."),
            );
        }

        match segments.as_slice() {
            [s, op] if s.eq_ignore_ascii_case("subscriptions") => {
                let op = op.to_ascii_lowercase();
                match (op.as_str(), method) {
                    ("start", &Method::POST) => start_subscription(st, &ctx),
                    ("stop", &Method::POST) => stop_subscription(st, &ctx),
                    ("list", &Method::GET) => list_subscriptions(st, &ctx),
                    ("content", &Method::GET) => list_content(st, &ctx),
                    ("notifications", &Method::GET) => list_notifications(st, &ctx),
                    ("start" | "stop" | "list" | "content" | "notifications", _) => method_not_allowed(method),
                    _ => not_found(uri),
                }
            }
            [a, content_id] if a.eq_ignore_ascii_case("audit") => {
                if method == Method::GET {
                    fetch_blob(st, &ctx, content_id)
                } else {
                    method_not_allowed(method)
                }
            }
            _ => not_found(uri),
        }
    }
}

fn not_found(uri: &Uri) -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({ "Message": format!("No HTTP resource was found that matches the request URI '{uri}'.") }))
}

/// Validates `contentType` (AF20001 missing, AF20020 unknown) and returns its canonical form.
fn content_type_param<'q>(ctx: &'q Ctx<'_>) -> Result<&'q str, AfError> {
    match ctx.query.get_ci("contentType") {
        None | Some("") => Err(AfError::bad_request("AF20001", "A required parameter is missing: contentType.")),
        Some(ct) if CONTENT_TYPES.contains(&ct) => Ok(ct),
        Some(ct) => Err(AfError::bad_request("AF20020", format!("The specified content type is not valid: {ct}."))),
    }
}

/// The start response: like [`subscription_json`], but with `contentType` cased the way the live
/// service answers a start (`Audit.Sharepoint` for `Audit.SharePoint`): clients must compare
/// content types case-insensitively.
fn start_response_json(content_type: &str, sub: &Subscription) -> Value {
    let mut body = subscription_json(content_type, sub);
    if content_type == "Audit.SharePoint" {
        body["contentType"] = json!("Audit.Sharepoint");
    }
    body
}

fn subscription_json(content_type: &str, sub: &Subscription) -> Value {
    json!({
        "contentType": content_type,
        "status": if sub.enabled { "enabled" } else { "disabled" },
        "webhook": sub.webhook.as_ref().map_or(Value::Null, Webhook::to_json),
    })
}

/// Requires an enabled subscription for `content_type` (AF20022 none, AF20023 disabled).
fn require_subscription(st: &SimState, ctx: &Ctx<'_>, content_type: &str) -> Result<(), AfError> {
    match st.tenants.get(&ctx.tkey).and_then(|t| t.subscriptions.get(content_type)) {
        None => Err(AfError::bad_request("AF20022", "No subscription found for the specified content type.")),
        Some(sub) if !sub.enabled => {
            Err(AfError::bad_request("AF20023", "The subscription was disabled by the tenant administrator or service administrator."))
        }
        Some(_) => Ok(()),
    }
}

fn start_subscription(st: &mut SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    // Optional body `{"webhook": {"address": ..., "authId": ..., "expiration": ...}}`.
    let webhook = match webhooks::parse_start_body(ctx.body, ctx.now) {
        Ok(webhook) => webhook,
        Err(err) => return af_error(StatusCode::BAD_REQUEST, err.code, &err.message),
    };
    let disabled_after_start = st.disabled_after_start;
    let Some(tenant) = st.tenants.get_mut(&ctx.tkey) else {
        return af_error(StatusCode::BAD_REQUEST, "AF20011", "Specified tenant ID does not exist in the system or has been deleted.");
    };
    // The real service also asks for 15 minutes between starts; not enforced here.
    let current = tenant.subscriptions.get(&content_type);
    let unchanged = match (current.and_then(|s| s.webhook.as_ref()), &webhook) {
        (None, None) => true,
        // A disabled or expired webhook is re-enabled by starting with it again.
        (Some(hook), Some(request)) => hook.registers(request) && hook.status(ctx.now) == WebhookStatus::Enabled,
        _ => false,
    };
    if current.is_some_and(|s| s.enabled) && unchanged {
        return af_error(StatusCode::BAD_REQUEST, "AF20024", "The subscription is already enabled. No property change.");
    }
    if let Some(request) = webhook {
        // The validation handshake needs the network: `manage` runs it without the lock, then
        // commits through `Inner::finish_start`. Nothing changes until it succeeds.
        let mut pending = StatusCode::ACCEPTED.into_response();
        pending.extensions_mut().insert(PendingStart { tkey: ctx.tkey.clone(), content_type, request });
        return pending;
    }
    let sub =
        tenant.subscriptions.entry(content_type.clone()).or_insert(Subscription { enabled: false, webhook: None, disabled_lists_left: 0 });
    sub.enabled = true;
    sub.webhook = None;
    sub.disabled_lists_left = disabled_after_start;
    json_response(StatusCode::OK, &start_response_json(&content_type, sub))
}

impl Inner {
    /// Second half of a start with a webhook: the validation POST (no lock held), then the
    /// subscription is enabled with the webhook, or the start fails with AF20021 and nothing
    /// changes.
    async fn finish_start(&self, pending: PendingStart) -> Response {
        let validated = webhooks::validate(&pending.request.target()).await;
        if let Err(reason) = validated {
            tracing::debug!(address = pending.request.address(), reason = %reason, "m365 simulator: webhook validation failed");
            let address = pending.request.address();
            return af_error(
                StatusCode::BAD_REQUEST,
                "AF20021",
                &format!("The webhook endpoint {{{address}}} could not be validated. {reason}"),
            );
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        st.seq += 1;
        let id = st.seq;
        let disabled_after_start = st.disabled_after_start;
        let Some(tenant) = st.tenants.get_mut(&pending.tkey) else {
            return af_error(StatusCode::BAD_REQUEST, "AF20011", "Specified tenant ID does not exist in the system or has been deleted.");
        };
        let sub = tenant.subscriptions.entry(pending.content_type.clone()).or_insert(Subscription {
            enabled: false,
            webhook: None,
            disabled_lists_left: 0,
        });
        sub.enabled = true;
        sub.webhook = Some(Webhook::new(id, pending.request));
        sub.disabled_lists_left = disabled_after_start;
        json_response(StatusCode::OK, &start_response_json(&pending.content_type, sub))
    }
}

fn stop_subscription(st: &mut SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    let sub = st.tenants.get_mut(&ctx.tkey).and_then(|t| t.subscriptions.get_mut(&content_type));
    match sub {
        None => af_error(StatusCode::BAD_REQUEST, "AF20022", "No subscription found for the specified content type."),
        Some(sub) => {
            sub.enabled = false;
            // Documented as 200 with no body.
            StatusCode::OK.into_response()
        }
    }
}

fn list_subscriptions(st: &SimState, ctx: &Ctx<'_>) -> Response {
    let list: Vec<Value> =
        st.tenants.get(&ctx.tkey).map(|t| t.subscriptions.iter().map(|(ct, sub)| subscription_json(ct, sub)).collect()).unwrap_or_default();
    json_response(StatusCode::OK, &Value::Array(list))
}

/// Parses and validates the `startTime`/`endTime` window (section 2.3).
fn window(ctx: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>, String, String), AfError> {
    let start = ctx.query.get_ci("startTime").filter(|s| !s.is_empty());
    let end = ctx.query.get_ci("endTime").filter(|s| !s.is_empty());
    let (start, end, start_text, end_text) = match (start, end) {
        (None, None) => {
            let end = ctx.now;
            let start = end - TimeDelta::hours(24);
            return Ok((start, end, window_time(start), window_time(end)));
        }
        (Some(s), Some(e)) => {
            let parse = |name: &str, v: &str| {
                parse_window_time(v).ok_or_else(|| {
                    AfError::bad_request(
                        "AF20002",
                        format!(
                            "Invalid parameter type: {name}={v}. Expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS (UTC, no 'Z', no fractional seconds)."
                        ),
                    )
                })
            };
            (parse("startTime", s)?, parse("endTime", e)?, s.to_owned(), e.to_owned())
        }
        _ => {
            return Err(AfError::bad_request(
                "AF20001",
                "A required parameter is missing: startTime and endTime must both be specified or both be omitted.",
            ));
        }
    };
    // Documented as "less than or equal to 24 hours apart", but the live service refuses a window
    // of exactly 24 hours with AF20055 (observed), and a start more than 7 days back with AF20055
    // too (observed: -9 days). AF20030 (same message) is kept for an end not after the start.
    let oldest = ctx.now - TimeDelta::days(RETENTION_DAYS) - TimeDelta::minutes(START_GRACE_MINUTES);
    let code = if end <= start {
        "AF20030"
    } else if end - start >= TimeDelta::hours(24) || start < oldest {
        "AF20055"
    } else {
        return Ok((start, end, start_text, end_text));
    };
    Err(AfError::bad_request(
        code,
        "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.",
    ))
}

fn new_page_token(now: DateTime<Utc>) -> String {
    let r = u64::from_be_bytes(random_bytes::<8>()) % 10_000_000_000_000;
    format!("{}R{r:013}", now.format("%Y%m%d%H"))
}

fn list_content(st: &mut SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    if let Err(resp) = require_subscription(st, ctx, &content_type) {
        return resp.into_response();
    }
    // Observed live: a freshly started subscription can keep answering AF20023 for a while.
    if let Some(sub) =
        st.tenants.get_mut(&ctx.tkey).and_then(|t| t.subscriptions.get_mut(&content_type)).filter(|s| s.disabled_lists_left > 0)
    {
        sub.disabled_lists_left -= 1;
        return AfError::bad_request("AF20023", "The subscription was disabled by the tenant administrator or service administrator.")
            .into_response();
    }

    let (start, end, start_text, end_text, after) = match ctx.query.get_ci("nextPage").filter(|p| !p.is_empty()) {
        Some(token) => match st.pages.get(token) {
            Some(c) if c.tenant == ctx.tkey && c.content_type == content_type => {
                (c.start, c.end, c.start_text.clone(), c.end_text.clone(), Some(c.after))
            }
            _ => {
                return af_error(StatusCode::BAD_REQUEST, "AF20031", "Invalid nextPage Input: the value is not valid for this request.");
            }
        },
        None => match window(ctx) {
            Ok((s, e, st_text, en_text)) => (s, e, st_text, en_text, None),
            Err(err) => return err.into_response(),
        },
    };

    let expiry_cutoff = ctx.now - TimeDelta::days(RETENTION_DAYS);
    let mut matching: Vec<&Blob> = st
        .blobs
        .get(&ctx.tkey)
        .map(|blobs| {
            blobs
                .iter()
                .filter(|b| b.content_type == content_type)
                .filter(|b| b.created >= start && b.created < end)
                .filter(|b| b.created > expiry_cutoff)
                .filter(|b| after.is_none_or(|a| (b.created, b.seq) > a))
                .collect()
        })
        .unwrap_or_default();
    matching.sort_by_key(|b| (b.created, b.seq));

    let page_size = st.page_size.max(1);
    let has_more = matching.len() > page_size;
    matching.truncate(page_size);
    let last = matching.last().map(|b| (b.created, b.seq));
    let items: Vec<Value> = matching
        .iter()
        .map(|b| {
            json!({
                "contentType": b.content_type,
                "contentId": b.content_id,
                "contentUri": format!(
                    "{}/api/v1.0/{}/activity/feed/audit/{}",
                    ctx.management_base, ctx.tenant, b.content_id
                ),
                "contentCreated": content_time(b.created),
                "contentExpiration": content_time(b.created + TimeDelta::days(BLOB_FETCH_DAYS)),
            })
        })
        .collect();

    let mut resp = json_response(StatusCode::OK, &Value::Array(items));
    if let Some(last) = last.filter(|_| has_more) {
        let token = new_page_token(ctx.now);
        // Like Microsoft's example: `/api/v1/`, original window, no PublisherIdentifier.
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("contentType", &content_type)
            .append_pair("startTime", &start_text)
            .append_pair("endTime", &end_text)
            .append_pair("nextPage", &token)
            .finish();
        let next = format!("{}/api/v1/{}/activity/feed/subscriptions/content?{query}", ctx.management_base, ctx.tenant);
        st.pages.insert(token, PageCursor { tenant: ctx.tkey.clone(), content_type, start, end, start_text, end_text, after: last });
        if let Ok(value) = HeaderValue::from_str(&next) {
            resp.headers_mut().insert(HeaderName::from_static("nextpageuri"), value);
        }
    }
    resp
}

fn list_notifications(st: &SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    if let Err(resp) = require_subscription(st, ctx, &content_type) {
        return resp.into_response();
    }
    let (start, end) = match window(ctx) {
        Ok((start, end, _, _)) => (start, end),
        Err(resp) => return resp.into_response(),
    };
    // Service notifications sent in the window (not `send_notification_now`), with the
    // `notificationStatus` values the live service uses.
    let mut history = webhooks::history(&st.webhook_deliveries, &ctx.tkey, &content_type, start, end);
    for entry in &mut history {
        let live = match entry["notificationStatus"].as_str() {
            Some("success") => "Succeeded",
            Some("failed") => "Failed",
            _ => continue,
        };
        entry["notificationStatus"] = json!(live);
    }
    json_response(StatusCode::OK, &Value::Array(history))
}

fn fetch_blob(st: &mut SimState, ctx: &Ctx<'_>, content_id: &str) -> Response {
    // axum has already percent-decoded the path, so `%24` and a raw `$` both arrive as `$`.
    let Some(blob) = st.blobs.get(&ctx.tkey).and_then(|blobs| blobs.iter().find(|b| b.content_id == content_id)) else {
        return af_error(StatusCode::NOT_FOUND, "AF20050", "The specified content does not exist.");
    };
    // Listing stops after 7 days, but the URI keeps serving until `contentExpiration`.
    if blob.created <= ctx.now - TimeDelta::days(BLOB_FETCH_DAYS) {
        return af_error(StatusCode::NOT_FOUND, "AF20051", "Content requested with the content ID has already expired.");
    }
    let disabled = st.tenants.get(&ctx.tkey).and_then(|t| t.subscriptions.get(&blob.content_type)).is_some_and(|s| !s.enabled);
    if disabled {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20023",
            "The subscription was disabled by the tenant administrator or service administrator.",
        );
    }
    let body = match &blob.body {
        BlobBody::Records(records) => Value::Array(records.clone()).to_string(),
        BlobBody::Raw(raw) => raw.clone(),
    };
    st.blob_fetches += 1;
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

// ---------------------------------------------------------------------------------------------
// Microsoft Graph (security alerts; the rest is in `graph.rs`)
// ---------------------------------------------------------------------------------------------

async fn graph_alerts(State(sim): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    sim.delay().await;
    sim.handle_graph_alerts(&uri, &headers)
}

impl Inner {
    fn graph_base(&self) -> String {
        format!("{}/graph", self.base_url)
    }

    /// `GET /graph/v1.0/security/alerts_v2`: the bearer token decides the tenant.
    fn handle_graph_alerts(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.log(&Method::GET, uri);
        if let Some(failure) = st.take_failure(Op::GraphAlerts) {
            return crate::graph::failure(failure);
        }
        let caller = bearer_token(headers).and_then(|t| st.tokens.get(t)).map(|t| crate::graph::Caller {
            tenant: t.tenant.clone(),
            audience: t.audience.clone(),
            expires: t.expires,
            has_role: t.has_role,
            tenant_exists: st.tenants.contains_key(&t.tenant),
        });
        let page_size = st.page_size;
        st.graph.list_alerts(caller, self.port(), uri.query().unwrap_or_default(), &self.graph_base(), page_size, Utc::now())
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP wiring
// ---------------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/login/{tenant}/oauth2/v2.0/token", post(token_v2))
        .route("/login/{tenant}/oauth2/token", post(token_v1))
        .route("/manage/api/{version}/{tenant}/activity/feed/{*rest}", any(manage))
        .route("/graph/v1.0/security/alerts_v2", get(graph_alerts))
        .route("/_sim/tenants", post(ctl_add_tenant))
        .route("/_sim/tenants/{tenant}/records", post(ctl_add_records))
        .route("/_sim/tenants/{tenant}/raw-blob", post(ctl_add_raw_blob))
        .route("/_sim/tenants/{tenant}/consent", post(ctl_consent))
        .route("/_sim/tenants/{tenant}/subscriptions", get(ctl_subscriptions))
        .route("/_sim/fail", post(ctl_fail))
        .route("/_sim/page-size", post(ctl_page_size))
        .route("/_sim/disabled-after-start", post(ctl_disabled_after_start))
        .route("/_sim/requests", get(ctl_requests))
        .with_state(inner)
}

async fn token_v2(State(sim): State<Shared>, Path(tenant): Path<String>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    sim.delay().await;
    sim.handle_token(TokenVersion::V2, &tenant, &uri, &headers, &body)
}

async fn token_v1(State(sim): State<Shared>, Path(tenant): Path<String>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    sim.delay().await;
    sim.handle_token(TokenVersion::V1, &tenant, &uri, &headers, &body)
}

async fn manage(
    State(sim): State<Shared>,
    Path((version, tenant, rest)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.delay().await;
    let mut resp = sim.handle_manage(&method, &uri, &headers, &version, &tenant, &rest, &body);
    match resp.extensions_mut().remove::<PendingStart>() {
        Some(pending) => sim.finish_start(pending).await,
        None => resp,
    }
}

#[derive(Deserialize)]
struct CtlTenant {
    tenant_id: String,
    client_id: String,
    client_secret: String,
}

async fn ctl_add_tenant(State(sim): State<Shared>, Json(req): Json<CtlTenant>) -> Response {
    sim.add_tenant(&req.tenant_id, &req.client_id, &req.client_secret);
    json_response(StatusCode::CREATED, &json!({ "tenant_id": req.tenant_id, "client_id": req.client_id }))
}

#[derive(Deserialize)]
struct CtlRecords {
    content_type: String,
    records: Vec<Value>,
}

async fn ctl_add_records(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlRecords>) -> Response {
    let id = sim.add_blob(&tenant, &req.content_type, Utc::now(), BlobBody::Records(req.records));
    json_response(StatusCode::CREATED, &json!({ "contentId": id }))
}

#[derive(Deserialize)]
struct CtlRawBlob {
    content_type: String,
    body: String,
}

async fn ctl_add_raw_blob(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlRawBlob>) -> Response {
    let id = sim.add_blob(&tenant, &req.content_type, Utc::now(), BlobBody::Raw(req.body));
    json_response(StatusCode::CREATED, &json!({ "contentId": id }))
}

#[derive(Deserialize)]
struct CtlConsent {
    granted: bool,
}

async fn ctl_consent(State(sim): State<Shared>, Path(tenant): Path<String>, Json(req): Json<CtlConsent>) -> Response {
    if !sim.lock().tenants.contains_key(&tenant_key(&tenant)) {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": format!("unknown tenant {tenant}") }));
    }
    sim.set_consent(&tenant, req.granted);
    json_response(StatusCode::OK, &json!({ "granted": req.granted }))
}

async fn ctl_subscriptions(State(sim): State<Shared>, Path(tenant): Path<String>) -> Response {
    json_response(StatusCode::OK, &json!(sim.subscriptions(&tenant)))
}

#[derive(Deserialize)]
struct CtlFail {
    operation: String,
    failure: String,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

async fn ctl_fail(State(sim): State<Shared>, Json(req): Json<CtlFail>) -> Response {
    let op = match req.operation.parse::<M365Operation>() {
        Ok(op) => op,
        Err(e) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({ "error": e.to_string() }));
        }
    };
    let failure = match req.failure.parse::<M365Failure>() {
        Ok(f) => f,
        Err(e) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({ "error": e.to_string() }));
        }
    };
    sim.fail_next(op, failure, req.times);
    json_response(StatusCode::OK, &json!({ "operation": format!("{op:?}"), "failure": format!("{failure:?}"), "times": req.times }))
}

#[derive(Deserialize)]
struct CtlPageSize {
    page_size: usize,
}

async fn ctl_page_size(State(sim): State<Shared>, Json(req): Json<CtlPageSize>) -> Response {
    sim.lock().page_size = req.page_size.max(1);
    json_response(StatusCode::OK, &json!({ "page_size": req.page_size.max(1) }))
}

#[derive(Deserialize)]
struct CtlDisabledAfterStart {
    list_calls: u32,
}

async fn ctl_disabled_after_start(State(sim): State<Shared>, Json(req): Json<CtlDisabledAfterStart>) -> Response {
    sim.lock().disabled_after_start = req.list_calls;
    json_response(StatusCode::OK, &json!({ "list_calls": req.list_calls }))
}

async fn ctl_requests(State(sim): State<Shared>) -> Response {
    let requests = sim.lock().requests.clone();
    json_response(StatusCode::OK, &json!(requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_time_formats() {
        assert!(parse_window_time("2026-01-05").is_some());
        assert!(parse_window_time("2026-01-05T10:15").is_some());
        assert!(parse_window_time("2026-01-05T10:15:00").is_some());
        assert!(parse_window_time("2026-01-05T10:15:00Z").is_none());
        assert!(parse_window_time("2026-01-05T10:15:00.123").is_none());
        assert!(parse_window_time("2026-01-05T10:15:00+00:00").is_none());
    }

    #[test]
    fn names_parse_leniently() {
        assert_eq!("list_content".parse::<M365Operation>(), Ok(M365Operation::ListContent));
        assert_eq!("ThrottleForbidden".parse::<M365Failure>(), Ok(M365Failure::ThrottleForbidden));
        assert!("nope".parse::<M365Failure>().is_err());
    }

    #[test]
    fn guid_shape() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
    }
}
