//! webhook-receiver: the endpoint Microsoft calls back. Unknown routes answer problem+json, never
//! a silent 200.
//!
//! Routes:
//! - `GET /webhooks/health`
//! - `POST /webhooks/psa/{msp_id}/{destination_id}`: a PSA's callback that a ticket changed,
//!   verified by the destination's connector on the raw body ([`psa_callbacks`]).
//! - `POST /webhooks/o365/{msp_id}/{tenant_id}`: Office 365 Management Activity API webhooks
//!   (reference §3). One address per tenant; the tenant's start-subscription registered it with a
//!   random per-tenant `authId`, of which the tenant record keeps only the SHA-256
//!   ([`vigil::tenant::Tenant::webhook_auth_hash`]).
//!
//! A request is handled in this order, on the raw body bytes:
//! 1. The path's MSP and tenant are parsed and the tenant is looked up: malformed or unknown →
//!    401, exactly like a wrong AuthID, so a prober cannot learn which MSPs and tenants exist.
//! 2. `Webhook-AuthID` is hashed and compared with the stored hash in constant time. A missing
//!    header, a tenant without a stored hash or any mismatch → 401, whatever the reason, and
//!    nothing is enqueued.
//! 3. Only then is the body read as JSON: an object with `validationCode` is the validation
//!    handshake (200, nothing to do); an array is a notification; anything else → 400.
//! 4. Notification items are read one by one (see below); the usable ones are grouped by content
//!    type into [`PollJob::Fetch`] jobs on the poll-jobs queue. The poller fetches the blobs;
//!    polling remains the safety net, and a blob announced twice, or both announced and listed,
//!    is processed once.
//!
//! # Notification items
//!
//! A live notification item carries `contentType`, `contentId`, `contentUri`, `contentCreated`,
//! `contentExpiration`, `notificationStatus` and `notificationSent`, and **no** `tenantId` or
//! `clientId` (the documented example shows both). So:
//! - An item without `tenantId` (or with a blank one) belongs to the tenant the path names: the
//!   path was authenticated by that tenant's own `Webhook-AuthID`, which is the proof of origin;
//!   `tenantId`, when present, is only a cross-check.
//! - An item whose `tenantId` names another tenant (compared case-insensitively) is refused: it
//!   is not enqueued under this tenant, whose token could not fetch it anyway.
//! - `notificationStatus` is not a filter: `Failed` says an earlier delivery failed, and the
//!   content exists all the same, so the item is processed like any other.
//! - An item that is not an object, lacks `contentType`/`contentId`/`contentUri`, names an
//!   unknown content type (matched by [`ContentType::from_wire`]; the receiver does not rely on
//!   exact casing, the live service writes `Audit.Sharepoint`) or whose `contentCreated` is
//!   missing or not a date-time is dropped. A `contentId` repeated within one notification is
//!   enqueued once.
//!
//! Nothing is dropped silently: every refused or dropped item is logged at `warn` with its
//! position and reason, and counted in the EMF metric `NotificationItemsDropped`, whose
//! `ErrorClass` dimension is the [`DropReason`] (a closed set; never a tenant id or free text),
//! next to `NotificationItemsReceived` and `NotificationItemsEnqueued`. The body of the 200
//! answer sums the notification up (`received`, `enqueued`, `duplicates`, `dropped` by reason):
//! Microsoft ignores it, an operator replaying a notification can read it.
//!
//! # The answer when items are refused
//!
//! An authenticated notification that is a JSON array is answered **200** however many of its
//! items were refused or dropped, even all of them. Microsoft retries anything but 200 with the
//! *same* body and eventually disables the webhook: refusing the batch for one foreign or
//! malformed item could never succeed, would hold back the good items of the batch, and would end
//! with the tenant's webhook disabled. A refused item is a fact about the item, not a transient
//! failure; the metric and the log make it visible, and polling still lists every blob that
//! really exists. Non-2xx answers are kept for what a retry can fix: 503 when the tenant lookup
//! or the queue is unavailable (then nothing is enqueued and Microsoft sends the notification
//! again).
//!
//! The `authId` is a secret: it is never logged or stored.

use aws_config::SdkConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use vigil::aws::dynamodb::DynamoConfigStore;
use vigil::aws::sqs::SqsQueue;
use vigil::ids::{ContentType, MspId, TenantId};
use vigil::lambda::metrics::MetricSet;
use vigil::messages::{AnnouncedBlob, PollJob};
use vigil::ports::{ConfigStore, MessageQueue};
use vigil::settings::{ConfigError, required};

/// The header Microsoft echoes the registered `authId` in.
pub const AUTH_HEADER: &str = "webhook-authid";
/// At most this many blobs per [`PollJob::Fetch`] message (a few hundred bytes each, so a job
/// stays far below the SQS message size limit however many items Microsoft batches).
pub const MAX_BLOBS_PER_JOB: usize = 200;
/// The `Service` dimension of the receiver's metrics.
pub const SERVICE: &str = "webhook-receiver";

pub mod psa_callbacks;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// Tenant records (for the stored `authId` hash).
    pub config: Arc<dyn ConfigStore>,
    /// The poll-jobs queue of the audit-poller.
    pub poll_jobs: Arc<dyn MessageQueue>,
    /// PSA callbacks: destinations, their connectors, the dispatcher's tickets queue.
    pub callbacks: psa_callbacks::CallbackState,
}

/// The function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`.
    pub config_table: String,
    /// `POLL_JOBS_QUEUE_URL`.
    pub poll_jobs_queue_url: String,
    /// `TICKETS_QUEUE_URL`: where a verified PSA callback asks the dispatcher to read back.
    pub tickets_queue_url: String,
    /// `ALERTS_TABLE`: destinations' request budgets (verifying a callback may ask the PSA).
    pub alerts_table: String,
    /// `SECRET_PREFIX`: destination credentials (to fetch a callback's signing key).
    pub secret_prefix: String,
    /// `DESTINATION_ALLOW_LOOPBACK` (only the local stack sets it).
    pub destination_policy: vigil::connectors::destination_url::DestinationPolicy,
}

impl Config {
    /// Reads the configuration through `lookup`.
    ///
    /// # Errors
    /// Names the first missing variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config_table: required(lookup, "CONFIG_TABLE")?,
            poll_jobs_queue_url: required(lookup, "POLL_JOBS_QUEUE_URL")?,
            tickets_queue_url: required(lookup, "TICKETS_QUEUE_URL")?,
            alerts_table: required(lookup, "ALERTS_TABLE")?,
            secret_prefix: required(lookup, "SECRET_PREFIX")?,
            destination_policy: vigil::connectors::destination_url::DestinationPolicy::from_lookup(lookup)?,
        })
    }
}

/// Builds the state once per container.
#[must_use]
pub fn build(config: &Config, sdk: &SdkConfig) -> AppState {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let config_store = Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone()));
    let secrets = Arc::new(vigil::secret_cache::CachingSecretStore::new(
        Arc::new(vigil::aws::secrets::SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), config.secret_prefix.clone())),
        std::time::Duration::from_secs(300),
    ));
    let budget = Arc::new(vigil::aws::request_budget::DynamoRequestBudget::new(dynamo, config.alerts_table.clone()));
    let systems =
        Arc::new(vigil::connectors::psa::PsaProvider::new(secrets, config.destination_policy, budget, Arc::new(vigil::clock::SystemClock)));
    AppState {
        config: config_store.clone(),
        poll_jobs: Arc::new(SqsQueue::new(sqs.clone(), config.poll_jobs_queue_url.clone())),
        callbacks: psa_callbacks::CallbackState {
            destinations: config_store,
            systems,
            tickets: Arc::new(SqsQueue::new(sqs, config.tickets_queue_url.clone())),
        },
    }
}

/// The router, callable in tests without a network.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/health", get(|| async { axum::Json(serde_json::json!({"status": "ok", "service": "webhook-receiver"})) }))
        .route("/webhooks/o365/{msp_id}/{tenant_id}", post(o365_notification))
        .route("/webhooks/psa/{msp_id}/{destination_id}", post(psa_callbacks::receive).with_state(state.callbacks.clone()))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "Not found", "no such webhook route") })
        .with_state(state)
}

pub use vigil::tenant::webhook_auth_hash;

/// An RFC 7807 `application/problem+json` response.
pub(crate) fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let slug = title.to_ascii_lowercase().replace(' ', "-");
    let body = serde_json::json!({
        "type": format!("https://vigil.dev/problems/{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    (status, [(header::CONTENT_TYPE, "application/problem+json")], axum::Json(body)).into_response()
}

fn unauthorized() -> Response {
    problem(StatusCode::UNAUTHORIZED, "Unauthorized", "the notification is not authenticated for this tenant")
}

fn unavailable() -> Response {
    problem(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable", "a backend is unavailable; retry later")
}

/// Whether the presented `Webhook-AuthID` hashes to the stored hash. Constant time in the
/// compared bytes; a stored value that is not a SHA-256 hex digest never matches.
fn auth_matches(presented: Option<&[u8]>, stored_hash: Option<&str>) -> bool {
    let (Some(presented), Some(stored)) = (presented.filter(|p| !p.is_empty()), stored_hash) else {
        return false;
    };
    let Ok(stored) = hex::decode(stored.trim()) else {
        return false;
    };
    if stored.len() != 32 {
        return false;
    }
    let digest = Sha256::digest(presented);
    bool::from(digest.as_slice().ct_eq(&stored))
}

async fn o365_notification(
    State(state): State<AppState>,
    Path((msp_id, tenant_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Ok(msp_id), Ok(tenant_id)) = (MspId::parse(&msp_id), TenantId::parse(&tenant_id)) else {
        return unauthorized();
    };
    let tenant = match state.config.get_tenant(&msp_id, &tenant_id).await {
        // An offboarded tenant's subscriptions are being stopped: a late notification is refused
        // (its authId hash is gone too), so Microsoft sends no more.
        Ok(Some(tenant)) if tenant.offboarded_at.is_some() => {
            tracing::info!(msp_id = %msp_id, tenant_id = %tenant_id, "webhook call refused: the tenant is offboarded");
            return unauthorized();
        }
        Ok(Some(tenant)) => tenant,
        Ok(None) => return unauthorized(),
        Err(error) => {
            tracing::error!(msp_id = %msp_id, tenant_id = %tenant_id, error = %error, "tenant lookup failed");
            return unavailable();
        }
    };
    let presented = headers.get(AUTH_HEADER).map(|value| value.as_bytes());
    if !auth_matches(presented, tenant.webhook_auth_hash.as_deref()) {
        tracing::warn!(
            msp_id = %msp_id,
            tenant_id = %tenant_id,
            header_present = presented.is_some(),
            hash_stored = tenant.webhook_auth_hash.is_some(),
            "webhook call refused: Webhook-AuthID does not match"
        );
        return unauthorized();
    }

    let payload: Value = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(error) => {
            return problem(StatusCode::BAD_REQUEST, "Bad request", &format!("the body is not JSON: {error}"));
        }
    };
    let items = match payload {
        Value::Object(object) if object.contains_key("validationCode") => {
            tracing::info!(msp_id = %msp_id, tenant_id = %tenant_id, "webhook validation handshake answered");
            return StatusCode::OK.into_response();
        }
        Value::Array(items) => items,
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "expected a validation message ({\"validationCode\": ...}) or an array of notifications",
            );
        }
    };

    let outcome = read_items(&tenant_id, &items);
    let jobs = fetch_jobs(&msp_id, &tenant_id, outcome.grouped.clone());
    let mut bodies = Vec::with_capacity(jobs.len());
    for job in &jobs {
        match serde_json::to_string(job) {
            Ok(body) => bodies.push(body),
            Err(error) => {
                tracing::error!(msp_id = %msp_id, tenant_id = %tenant_id, error = %error, "a fetch job could not be serialized");
                return problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "retry later");
            }
        }
    }
    if !bodies.is_empty() {
        if let Err(error) = state.poll_jobs.send_all(&bodies).await {
            tracing::error!(msp_id = %msp_id, tenant_id = %tenant_id, error = %error, "fetch jobs could not be enqueued");
            return unavailable();
        }
    }
    let metrics = MetricSet::new(SERVICE);
    outcome.count_into(&metrics);
    metrics.flush();
    tracing::info!(
        msp_id = %msp_id,
        tenant_id = %tenant_id,
        received = outcome.received,
        enqueued = outcome.enqueued(),
        duplicates = outcome.duplicates,
        dropped = outcome.dropped_total(),
        after_failed_delivery = outcome.after_failed_delivery,
        jobs = bodies.len(),
        "webhook notification enqueued"
    );
    (StatusCode::OK, axum::Json(outcome.summary())).into_response()
}

/// Why a notification item was not enqueued: a closed set, so it can be a metric dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// The item is not a JSON object.
    NotAnObject,
    /// `tenantId` is present and names another tenant than the authenticated path.
    ForeignTenant,
    /// No `contentType` string.
    MissingContentType,
    /// A `contentType` Vigil does not know.
    UnknownContentType,
    /// No (or an empty) `contentId`.
    MissingContentId,
    /// No (or an empty) `contentUri`.
    MissingContentUri,
    /// `contentCreated` is missing or not a date-time.
    InvalidContentCreated,
}

impl DropReason {
    /// Every reason, in a stable order.
    pub const ALL: [Self; 7] = [
        Self::NotAnObject,
        Self::ForeignTenant,
        Self::MissingContentType,
        Self::UnknownContentType,
        Self::MissingContentId,
        Self::MissingContentUri,
        Self::InvalidContentCreated,
    ];

    /// The metric dimension value and the key in the answer's `dropped`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAnObject => "not_an_object",
            Self::ForeignTenant => "foreign_tenant",
            Self::MissingContentType => "missing_content_type",
            Self::UnknownContentType => "unknown_content_type",
            Self::MissingContentId => "missing_content_id",
            Self::MissingContentUri => "missing_content_uri",
            Self::InvalidContentCreated => "invalid_content_created",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnObject => "the item is not a JSON object",
            Self::ForeignTenant => "its tenantId names another tenant than the authenticated address",
            Self::MissingContentType => "it has no contentType",
            Self::UnknownContentType => "its contentType is not one Vigil knows",
            Self::MissingContentId => "it has no contentId",
            Self::MissingContentUri => "it has no contentUri",
            Self::InvalidContentCreated => "its contentCreated is missing or not a date-time",
        })
    }
}

impl std::error::Error for DropReason {}

/// What became of the items of one notification.
#[derive(Debug, Default)]
struct Outcome {
    received: usize,
    /// The usable blobs, by content type, without duplicate content ids.
    grouped: BTreeMap<ContentType, Vec<AnnouncedBlob>>,
    /// Items repeating a content id already in this notification.
    duplicates: usize,
    /// Usable items whose `notificationStatus` said an earlier delivery failed.
    after_failed_delivery: usize,
    dropped: BTreeMap<DropReason, usize>,
}

impl Outcome {
    fn enqueued(&self) -> usize {
        self.grouped.values().map(Vec::len).sum()
    }

    fn dropped_total(&self) -> usize {
        self.dropped.values().sum()
    }

    /// `NotificationItemsReceived`, `NotificationItemsEnqueued`, and `NotificationItemsDropped`
    /// under each reason that occurred.
    fn count_into(&self, metrics: &MetricSet) {
        #[allow(clippy::cast_precision_loss)]
        let count = |n: usize| n as f64;
        metrics.count("NotificationItemsReceived", None, count(self.received));
        metrics.count("NotificationItemsEnqueued", None, count(self.enqueued()));
        for (reason, n) in &self.dropped {
            metrics.count("NotificationItemsDropped", Some(reason.as_str()), count(*n));
        }
    }

    /// The body of the 200 answer.
    fn summary(&self) -> Value {
        let dropped: serde_json::Map<String, Value> =
            self.dropped.iter().map(|(reason, n)| (reason.as_str().to_owned(), Value::from(*n))).collect();
        serde_json::json!({
            "received": self.received,
            "enqueued": self.enqueued(),
            "duplicates": self.duplicates,
            "dropped": dropped,
        })
    }
}

/// A usable notification item.
struct Item {
    content_type: ContentType,
    blob: AnnouncedBlob,
    after_failed_delivery: bool,
}

/// A non-empty string field, trimmed.
fn text<'a>(item: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a str> {
    item.get(field).and_then(Value::as_str).map(str::trim).filter(|text| !text.is_empty())
}

/// Reads one item for the tenant the path names (module doc, "Notification items").
fn read_item(tenant_id: &TenantId, item: &Value) -> Result<Item, DropReason> {
    let item = item.as_object().ok_or(DropReason::NotAnObject)?;
    match item.get("tenantId") {
        None | Some(Value::Null) => {}
        Some(Value::String(named)) if named.trim().is_empty() || named.trim().eq_ignore_ascii_case(tenant_id.as_str()) => {}
        Some(_) => return Err(DropReason::ForeignTenant),
    }
    let content_type = text(item, "contentType").ok_or(DropReason::MissingContentType)?;
    let content_type = ContentType::from_wire(content_type).ok_or(DropReason::UnknownContentType)?;
    let content_id = text(item, "contentId").ok_or(DropReason::MissingContentId)?;
    let content_uri = text(item, "contentUri").ok_or(DropReason::MissingContentUri)?;
    let content_created = text(item, "contentCreated").and_then(parse_content_created).ok_or(DropReason::InvalidContentCreated)?;
    let after_failed_delivery = text(item, "notificationStatus").is_some_and(|status| status.eq_ignore_ascii_case("failed"));
    Ok(Item {
        content_type,
        blob: AnnouncedBlob { content_id: content_id.to_owned(), content_uri: content_uri.to_owned(), content_created },
        after_failed_delivery,
    })
}

/// Reads every item: the usable ones grouped by content type without duplicate content ids,
/// every other one logged at `warn` with its position and reason, and counted.
fn read_items(tenant_id: &TenantId, items: &[Value]) -> Outcome {
    let mut outcome = Outcome { received: items.len(), ..Outcome::default() };
    for (index, item) in items.iter().enumerate() {
        let item = match read_item(tenant_id, item) {
            Ok(item) => item,
            Err(reason) => {
                tracing::warn!(tenant_id = %tenant_id, index, reason = reason.as_str(), "notification item dropped: {reason}");
                *outcome.dropped.entry(reason).or_default() += 1;
                continue;
            }
        };
        let blobs = outcome.grouped.entry(item.content_type).or_default();
        if blobs.iter().any(|blob| blob.content_id == item.blob.content_id) {
            outcome.duplicates += 1;
            continue;
        }
        outcome.after_failed_delivery += usize::from(item.after_failed_delivery);
        blobs.push(item.blob);
    }
    outcome
}

/// `contentCreated`: RFC 3339 (`2026-01-05T10:15:00.123Z`), or, leniently, the same without an
/// offset (read as UTC).
fn parse_content_created(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|at| at.and_utc()))
}

/// One job per content type (split into [`MAX_BLOBS_PER_JOB`]-blob jobs if Microsoft batched
/// more).
fn fetch_jobs(msp_id: &MspId, tenant_id: &TenantId, grouped: BTreeMap<ContentType, Vec<AnnouncedBlob>>) -> Vec<PollJob> {
    grouped
        .into_iter()
        .flat_map(|(content_type, blobs)| {
            blobs
                .chunks(MAX_BLOBS_PER_JOB)
                .map(|chunk| PollJob::Fetch { msp_id: msp_id.clone(), tenant_id: tenant_id.clone(), content_type, blobs: chunk.to_vec() })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_registered_auth_id_matches() {
        let stored = webhook_auth_hash("per-tenant-secret");
        assert_eq!(stored.len(), 64);
        assert!(auth_matches(Some(b"per-tenant-secret"), Some(&stored)));
        assert!(auth_matches(Some(b"per-tenant-secret"), Some(&stored.to_ascii_uppercase())));
        assert!(!auth_matches(Some(b"per-tenant-secreT"), Some(&stored)));
        assert!(!auth_matches(None, Some(&stored)));
        assert!(!auth_matches(Some(b""), Some(&webhook_auth_hash(""))), "an empty header never authenticates");
        assert!(!auth_matches(Some(b"per-tenant-secret"), None));
        assert!(!auth_matches(Some(b"x"), Some("not hex")));
        assert!(!auth_matches(Some(b"x"), Some("abcd")));
    }

    #[test]
    fn content_created_is_read_leniently() {
        let expected = DateTime::parse_from_rfc3339("2026-01-05T10:15:00.123Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_content_created("2026-01-05T10:15:00.123Z"), Some(expected));
        assert_eq!(parse_content_created("2026-01-05T10:15:00.123"), Some(expected));
        assert_eq!(parse_content_created("2026-01-05T11:15:00.123+01:00"), Some(expected));
        assert_eq!(parse_content_created("yesterday"), None);
    }

    #[test]
    fn dropped_items_are_counted_in_emf_under_their_reason_only() {
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let good = serde_json::json!({
            "contentType": "Audit.Sharepoint",
            "contentId": "c1",
            "contentUri": "https://manage.office.com/api/v1.0/x/activity/feed/audit/c1",
            "contentCreated": "2026-01-05T10:15:00.123Z",
            "notificationStatus": "Failed",
        });
        let mut foreign = good.clone();
        foreign["tenantId"] = serde_json::json!("9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d");
        let mut undated = good.clone();
        undated["contentId"] = serde_json::json!("c2");
        undated["contentCreated"] = serde_json::json!("2026-13-45");
        let outcome = read_items(&tenant, &[good.clone(), foreign, undated, good]);
        assert_eq!((outcome.received, outcome.enqueued(), outcome.duplicates, outcome.after_failed_delivery), (4, 1, 1, 1));

        let metrics = MetricSet::new(SERVICE);
        outcome.count_into(&metrics);
        let documents = metrics.take_documents(0);
        let plain = documents.iter().find(|d| d.get("ErrorClass").is_none()).unwrap();
        assert_eq!((plain["NotificationItemsReceived"].as_f64(), plain["NotificationItemsEnqueued"].as_f64()), (Some(4.0), Some(1.0)));
        let mut dropped: Vec<(String, f64)> = documents
            .iter()
            .filter_map(|d| Some((d.get("ErrorClass")?.as_str()?.to_owned(), d["NotificationItemsDropped"].as_f64()?)))
            .collect();
        dropped.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(dropped, [("foreign_tenant".to_owned(), 1.0), ("invalid_content_created".to_owned(), 1.0)]);
        assert!(documents.iter().all(|d| d["Service"] == SERVICE && !d.to_string().contains(tenant.as_str())), "bounded dimensions");
    }

    #[test]
    fn drop_reasons_are_distinct_snake_case_names_with_a_description() {
        let names: std::collections::BTreeSet<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        assert!(DropReason::ALL.iter().all(|r| !r.to_string().is_empty()));
    }

    #[test]
    fn large_notifications_are_split_into_bounded_jobs() {
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let items: Vec<Value> = (0..450)
            .map(|i| {
                serde_json::json!({
                    "tenantId": tenant.as_str(),
                    "contentType": "Audit.General",
                    "contentId": format!("c{i}"),
                    "contentUri": format!("https://manage.office.com/api/v1.0/{tenant}/activity/feed/audit/c{i}"),
                    "contentCreated": "2026-01-05T10:15:00.123Z",
                })
            })
            .collect();
        let jobs = fetch_jobs(&MspId::parse("acme").unwrap(), &tenant, read_items(&tenant, &items).grouped);
        assert_eq!(jobs.len(), 3);
        for job in &jobs {
            assert!(serde_json::to_string(job).unwrap().len() < vigil::messages::MAX_MESSAGE_BYTES);
        }
    }
}
