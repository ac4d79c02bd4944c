//! Webhooks of the simulated Office 365 Management Activity API (reference §3): the
//! `{"webhook": {...}}` body of `subscriptions/start`, the validation handshake, notifications
//! with retries, and disabling a webhook after repeated failed notifications.
//!
//! The HTTP wiring and the state live in [`crate::m365`]; this module holds the webhook model and
//! the outbound HTTP. Nothing here runs under the simulator's state mutex: the simulator gathers
//! what to send under the lock, releases it, and a spawned task reports the outcome through a
//! callback that takes the lock again.
//!
//! Behaviour (real values are undocumented where marked):
//!
//! * Start with a webhook: the address must be an absolute `http(s)` URL, else AF20021. **The real
//!   service requires HTTPS**; the simulator also accepts `http://` so tests can listen on
//!   `http://127.0.0.1`. A past `expiration` is AF20003. During start the simulator POSTs
//!   `{"validationCode": "..."}` (headers `Webhook-ValidationCode`, `Webhook-AuthID` when an
//!   `authId` was given) and fails start with AF20021 unless the answer is `200`.
//! * Notifications: one POST per new blob of a subscription whose webhook is enabled, body a
//!   one-item array, `Content-Type: application/json; utf-8` (Microsoft's non-standard value),
//!   `Webhook-AuthID` when set. The items have the shape of a captured live notification:
//!   `contentType`, `contentId`, `contentUri`, `contentCreated`, `contentExpiration`,
//!   `notificationStatus` and `notificationSent`, and **no** `tenantId` or `clientId` (the
//!   reference's §3.3 example shows them; the live service does not send them). Each try stamps
//!   the two `notification…` fields afresh: `notificationSent` is the time of the try,
//!   `notificationStatus` is `Succeeded` on the first try and `Failed` on a retry (the previous
//!   try failed; the live values are unconfirmed). A hand-made item
//!   (`M365SimHandle::send_notification_now`) keeps whatever of these fields it already has, so a
//!   test can send `Failed` — or the documented shape with `tenantId` — on purpose. Anything but `200` fails the attempt; a notification is tried
//!   [`ATTEMPTS_PER_NOTIFICATION`] times with a short, doubling delay (Microsoft: "exponentially
//!   increasing intervals", counts undocumented). After [`DISABLE_AFTER_FAILURES`] consecutive
//!   failed notifications the webhook's status becomes `disabled` (threshold undocumented); a
//!   start with the webhook re-enables it.
//! * An `expiration` in the past makes the webhook `expired`: no more notifications.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

/// Consecutive failed notifications after which a webhook is disabled.
pub const DISABLE_AFTER_FAILURES: u32 = 3;
/// Tries per notification: the first POST and two retries.
pub const ATTEMPTS_PER_NOTIFICATION: u32 = 3;
/// The `Content-Type` of notifications, exactly as Microsoft sends it.
pub const NOTIFICATION_CONTENT_TYPE: &str = "application/json; utf-8";
/// The `Content-Type` of the validation message.
const VALIDATION_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Delay before the first retry; doubles for each further one.
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// Time allowed for one validation or notification POST.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Content expires this long after it became available.
const RETENTION_DAYS: i64 = 7;

/// One notification POST the simulator made (every retry is its own entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookDelivery {
    /// The tenant as written when the blob was added.
    pub tenant_id: String,
    pub content_type: String,
    /// Where the notification was POSTed (empty when no webhook was registered).
    pub address: String,
    /// 1 for the first try, then 2, 3 for the retries.
    pub attempt: u32,
    /// The HTTP status the webhook answered, if it answered.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout …).
    pub error: Option<String>,
    /// `contentId` of each item sent.
    pub content_ids: Vec<String>,
    /// The notification body as this try sent it (the array's items; for an attempt that sent
    /// nothing, the items it would have sent).
    pub items: Vec<Value>,
    pub sent_at: DateTime<Utc>,
    /// Sent by `M365SimHandle::send_notification_now`: not a service notification, never retried,
    /// never counted towards disabling the webhook.
    pub manual: bool,
}

impl WebhookDelivery {
    /// Whether the webhook answered `200` (the only success Microsoft accepts).
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.status == Some(200)
    }
}

/// Status of a registered webhook, as `subscriptions/list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    Enabled,
    /// Too many failed notifications.
    Disabled,
    /// Past its `expiration`.
    Expired,
}

impl WebhookStatus {
    /// The wire value: `enabled`, `disabled` or `expired`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }
}

/// The `webhook` object of a start body, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookRequest {
    address: String,
    auth_id: Option<String>,
    expiration: Option<DateTime<Utc>>,
}

impl WebhookRequest {
    pub(crate) fn target(&self) -> Target {
        Target { address: self.address.clone(), auth_id: self.auth_id.clone() }
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }
}

/// Where and how to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) address: String,
    pub(crate) auth_id: Option<String>,
}

/// A refused start body: the AF code and message to answer with (HTTP 400).
#[derive(Debug)]
pub(crate) struct StartBodyError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl StartBodyError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// A start with a webhook that passed the checks and still needs the validation handshake. The
/// (synchronous) start handler returns it in the response's extensions; the async route
/// validates outside the lock and then commits.
#[derive(Debug, Clone)]
pub(crate) struct PendingStart {
    /// Lower-cased tenant id.
    pub(crate) tkey: String,
    pub(crate) content_type: String,
    pub(crate) request: WebhookRequest,
}

/// Reads the optional start body: nothing, `null`, `{}` or `{"webhook": null}` register no
/// webhook; `{"webhook": {...}}` is checked.
pub(crate) fn parse_start_body(body: &[u8], now: DateTime<Utc>) -> Result<Option<WebhookRequest>, StartBodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let invalid = || StartBodyError::new("AF20002", "The request body is not a valid subscription definition.");
    let hook = match serde_json::from_slice::<Value>(body).map_err(|_| invalid())? {
        Value::Null => return Ok(None),
        Value::Object(mut body) => match body.remove("webhook") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(hook)) => hook,
            Some(_) => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    let address = match hook.get("address") {
        Some(Value::String(address)) if !address.trim().is_empty() => address.trim().to_owned(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(StartBodyError::new("AF20001", "A required parameter is missing: webhook.address."));
        }
        Some(_) => return Err(invalid()),
    };
    let usable = Url::parse(&address).ok().is_some_and(|url| matches!(url.scheme(), "https" | "http") && url.host_str().is_some());
    if !usable {
        return Err(StartBodyError::new(
            "AF20021",
            format!("The webhook endpoint {{{address}}} could not be validated. The address must be an absolute HTTPS URL."),
        ));
    }
    let auth_id = match hook.get("authId") {
        None | Some(Value::Null) => None,
        Some(Value::String(auth_id)) if auth_id.is_empty() => None,
        Some(Value::String(auth_id)) => Some(auth_id.clone()),
        Some(_) => return Err(invalid()),
    };
    let expiration = match hook.get("expiration") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => {
            let at = parse_expiration(text)
                .ok_or_else(|| StartBodyError::new("AF20002", format!("Invalid parameter type: webhook.expiration={text}.")))?;
            if at <= now {
                return Err(StartBodyError::new("AF20003", "The expiration date provided for the webhook is in the past."));
            }
            Some(at)
        }
        Some(_) => return Err(invalid()),
    };
    Ok(Some(WebhookRequest { address, auth_id, expiration }))
}

/// RFC 3339, or a UTC date-time without offset (`2026-01-05T10:15:00`).
fn parse_expiration(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|at| at.and_utc()))
}

/// A webhook registered on a subscription (after a successful validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Webhook {
    /// Unique per registration, so a late delivery outcome never counts against a newer one.
    pub(crate) id: u64,
    request: WebhookRequest,
    disabled: bool,
    consecutive_failures: u32,
}

impl Webhook {
    pub(crate) fn new(id: u64, request: WebhookRequest) -> Self {
        Self { id, request, disabled: false, consecutive_failures: 0 }
    }

    /// Disables the webhook, as Microsoft does after failed notifications (a start with it
    /// enables it again).
    pub(crate) fn disable(&mut self) {
        self.disabled = true;
    }

    /// Whether `request` asks for exactly this registration (address, authId, expiration).
    pub(crate) fn registers(&self, request: &WebhookRequest) -> bool {
        self.request == *request
    }

    pub(crate) fn status(&self, now: DateTime<Utc>) -> WebhookStatus {
        if self.disabled {
            WebhookStatus::Disabled
        } else if self.request.expiration.is_some_and(|at| at <= now) {
            WebhookStatus::Expired
        } else {
            WebhookStatus::Enabled
        }
    }

    pub(crate) fn target(&self) -> Target {
        self.request.target()
    }

    /// The `webhook` object of the subscription JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "status": self.status(Utc::now()).as_str(),
            "address": self.request.address,
            "authId": self.request.auth_id,
            "expiration": self.request.expiration.map(content_time),
        })
    }

    /// Counts a notification that was (or, after every retry, was not) delivered.
    pub(crate) fn record_notification(&mut self, delivered: bool) {
        if delivered {
            self.consecutive_failures = 0;
            return;
        }
        self.consecutive_failures += 1;
        if self.consecutive_failures >= DISABLE_AFTER_FAILURES && !self.disabled {
            self.disabled = true;
            tracing::debug!(address = %self.request.address, failures = self.consecutive_failures, "m365 simulator disabled a webhook");
        }
    }
}

/// One notification item as the live service sends it: no `tenantId`, no `clientId` (module
/// doc); [`stamp`] adds `notificationStatus` and `notificationSent` on each try.
pub(crate) fn notification_item(content_type: &str, content_id: &str, content_uri: &str, created: DateTime<Utc>) -> Value {
    json!({
        "contentType": content_type,
        "contentId": content_id,
        "contentUri": content_uri,
        "contentCreated": content_time(created),
        "contentExpiration": content_time(created + TimeDelta::days(RETENTION_DAYS)),
    })
}

/// The items as try number `attempt` sends them: `notificationSent` (the time of the try) and
/// `notificationStatus` (`Succeeded` on the first try, `Failed` on a retry) added to every
/// object item that does not carry them already.
fn stamp(items: &[Value], attempt: u32, sent: DateTime<Utc>) -> Vec<Value> {
    let status = if attempt > 1 { "Failed" } else { "Succeeded" };
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            if let Some(object) = item.as_object_mut() {
                object.entry("notificationStatus").or_insert_with(|| json!(status));
                object.entry("notificationSent").or_insert_with(|| json!(content_time(sent)));
            }
            item
        })
        .collect()
}

/// `2026-01-05T10:15:00.123Z`.
fn content_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The outcome of one POST.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    attempt: u32,
    status: Option<u16>,
    error: Option<String>,
    at: DateTime<Utc>,
    /// The items this try POSTed (`None`: nothing was sent).
    sent: Option<Vec<Value>>,
}

impl Attempt {
    pub(crate) fn failed(error: impl Into<String>) -> Self {
        Self { attempt: 1, status: None, error: Some(error.into()), at: Utc::now(), sent: None }
    }

    fn succeeded(&self) -> bool {
        self.status == Some(200)
    }
}

/// What one notification was, for the delivery log.
#[derive(Debug, Clone)]
pub(crate) struct Notification {
    pub(crate) tenant_id: String,
    pub(crate) content_type: String,
    pub(crate) address: String,
    pub(crate) items: Vec<Value>,
    pub(crate) manual: bool,
}

impl Notification {
    /// Log entries for the attempts, and whether the last one was delivered.
    pub(crate) fn deliveries(&self, attempts: Vec<Attempt>) -> (Vec<WebhookDelivery>, bool) {
        let delivered = attempts.last().is_some_and(Attempt::succeeded);
        let content_ids: Vec<String> =
            self.items.iter().filter_map(|item| item.get("contentId").and_then(Value::as_str)).map(str::to_owned).collect();
        let entries = attempts
            .into_iter()
            .map(|attempt| WebhookDelivery {
                tenant_id: self.tenant_id.clone(),
                content_type: self.content_type.clone(),
                address: self.address.clone(),
                attempt: attempt.attempt,
                status: attempt.status,
                error: attempt.error,
                content_ids: content_ids.clone(),
                items: attempt.sent.unwrap_or_else(|| self.items.clone()),
                sent_at: attempt.at,
                manual: self.manual,
            })
            .collect();
        (entries, delivered)
    }
}

/// `/subscriptions/notifications` history: every item of every service notification sent in
/// `[start, end)`, with `notificationSent` and `notificationStatus`.
pub(crate) fn history(
    deliveries: &[WebhookDelivery],
    tkey: &str,
    content_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<Value> {
    deliveries
        .iter()
        .filter(|d| !d.manual && d.tenant_id.eq_ignore_ascii_case(tkey) && d.content_type == content_type)
        .filter(|d| d.sent_at >= start && d.sent_at < end)
        .flat_map(|d| {
            d.items.iter().map(move |item| {
                let mut entry = item.clone();
                if let Some(object) = entry.as_object_mut() {
                    object.insert("notificationSent".into(), json!(content_time(d.sent_at)));
                    object.insert("notificationStatus".into(), json!(if d.succeeded() { "success" } else { "failed" }));
                }
                entry
            })
        })
        .collect()
}

/// One client for every simulator instance. Idle connections are not pooled: tests run each
/// simulator on its own runtime, and a pooled connection would outlive the runtime it lives on.
fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .pool_max_idle_per_host(0)
            .user_agent("vigil-simulator (Microsoft 365 webhooks)")
            .build()
            .unwrap_or_default()
    })
}

fn random_code() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Uniqueness is all a validation code needs.
        bytes = Utc::now().timestamp_nanos_opt().unwrap_or_default().to_le_bytes().repeat(2).try_into().unwrap_or_default();
    }
    hex::encode(bytes)
}

fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The validation handshake: `Ok` when the address answered `200`, else why not.
pub(crate) async fn validate(target: &Target) -> Result<(), String> {
    let code = random_code();
    let mut request = http()
        .post(&target.address)
        .header(reqwest::header::CONTENT_TYPE, VALIDATION_CONTENT_TYPE)
        .header("Webhook-ValidationCode", &code)
        .body(json!({ "validationCode": code }).to_string());
    if let Some(auth_id) = &target.auth_id {
        request = request.header("Webhook-AuthID", auth_id);
    }
    match request.send().await {
        Ok(response) if response.status().as_u16() == 200 => Ok(()),
        Ok(response) => Err(format!("The endpoint answered HTTP {}.", response.status().as_u16())),
        Err(error) => Err(format!("The endpoint could not be reached ({}).", describe(&error))),
    }
}

/// POSTs one notification, trying up to `tries` times until a `200`; each try is [`stamp`]ed.
async fn notify(target: &Target, items: &[Value], tries: u32) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    let mut delay = RETRY_DELAY;
    for attempt in 1..=tries.max(1) {
        if attempt > 1 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        let at = Utc::now();
        let sent = stamp(items, attempt, at);
        let body = Value::Array(sent.clone()).to_string();
        let mut request = http().post(&target.address).header(reqwest::header::CONTENT_TYPE, NOTIFICATION_CONTENT_TYPE).body(body);
        if let Some(auth_id) = &target.auth_id {
            request = request.header("Webhook-AuthID", auth_id);
        }
        let outcome = match request.send().await {
            Ok(response) => Attempt { attempt, status: Some(response.status().as_u16()), error: None, at, sent: Some(sent) },
            Err(error) => Attempt { attempt, status: None, error: Some(describe(&error)), at, sent: Some(sent) },
        };
        let delivered = outcome.succeeded();
        attempts.push(outcome);
        if delivered {
            break;
        }
    }
    attempts
}

/// Sends a notification in the background on the current tokio runtime and hands the attempts
/// to `done` (which may lock the simulator's state). Without a runtime `done` runs at once with
/// one failed attempt.
pub(crate) fn spawn_notification(target: Target, items: Vec<Value>, tries: u32, done: impl FnOnce(Vec<Attempt>) + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                let attempts = notify(&target, &items, tries).await;
                done(attempts);
            });
        }
        Err(_) => done(vec![Attempt::failed("no tokio runtime to send the notification on")]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_bodies_are_checked() {
        let now = Utc::now();
        let parse = |body: &str| parse_start_body(body.as_bytes(), now);
        for none in ["", "  ", "null", "{}", r#"{"webhook":null}"#] {
            assert!(matches!(parse(none), Ok(None)), "{none}");
        }
        let hook = parse(r#"{"webhook":{"address":"https://hooks.example/o365","authId":"a1","expiration":""}}"#).unwrap().unwrap();
        assert_eq!(hook.target(), Target { address: "https://hooks.example/o365".into(), auth_id: Some("a1".into()) });
        assert!(parse(r#"{"webhook":{"address":"http://127.0.0.1:9/x"}}"#).unwrap().is_some());
        let code = |body: &str| parse(body).err().map(|e| e.code);
        assert_eq!(code(r#"{"webhook":{"address":"ftp://hooks.example"}}"#), Some("AF20021"));
        assert_eq!(code(r#"{"webhook":{"address":"/relative"}}"#), Some("AF20021"));
        assert_eq!(code(r#"{"webhook":{"authId":"x"}}"#), Some("AF20001"));
        assert_eq!(code(r#"{"webhook":{"address":"https://h.example","expiration":"2001-01-01T00:00:00Z"}}"#), Some("AF20003"));
        assert_eq!(code(r#"{"webhook":{"address":"https://h.example","expiration":"soon"}}"#), Some("AF20002"));
        assert_eq!(code("[1]"), Some("AF20002"));
        assert_eq!(code(r#"{"webhook":"https://h.example"}"#), Some("AF20002"));
    }

    #[test]
    fn three_failed_notifications_disable_and_a_success_resets() {
        let request = parse_start_body(br#"{"webhook":{"address":"https://h.example"}}"#, Utc::now()).unwrap().unwrap();
        let mut hook = Webhook::new(1, request);
        hook.record_notification(false);
        hook.record_notification(false);
        hook.record_notification(true);
        hook.record_notification(false);
        hook.record_notification(false);
        assert_eq!(hook.status(Utc::now()), WebhookStatus::Enabled);
        hook.record_notification(false);
        assert_eq!(hook.status(Utc::now()), WebhookStatus::Disabled);
        assert_eq!(hook.to_json()["status"], "disabled");
    }

    #[test]
    fn a_webhook_past_its_expiration_is_expired() {
        let now = Utc::now();
        let body =
            format!(r#"{{"webhook":{{"address":"https://h.example","expiration":"{}"}}}}"#, (now + TimeDelta::hours(1)).to_rfc3339());
        let hook = Webhook::new(1, parse_start_body(body.as_bytes(), now).unwrap().unwrap());
        assert_eq!(hook.status(now), WebhookStatus::Enabled);
        assert_eq!(hook.status(now + TimeDelta::hours(2)), WebhookStatus::Expired);
    }
}
