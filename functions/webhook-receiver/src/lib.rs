//! webhook-receiver: the endpoint Microsoft calls back. Unknown routes answer problem+json, never
//! a silent 200.
//!
//! Routes:
//! - `GET /webhooks/health`
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
//! 4. Notification items are read leniently: an item for another tenant, of an unknown content
//!    type, or without the fields the poller needs is dropped with a warning. The rest is grouped
//!    by content type into [`PollJob::Fetch`] jobs on the poll-jobs queue, and the answer is 200
//!    (Microsoft counts anything else as a failed delivery and eventually disables the webhook).
//!    The poller fetches the blobs; polling remains the safety net, and a blob announced twice,
//!    or both announced and listed, is processed once.
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
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use vigil::aws::dynamodb::DynamoConfigStore;
use vigil::aws::sqs::SqsQueue;
use vigil::ids::{ContentType, MspId, TenantId};
use vigil::messages::{AnnouncedBlob, PollJob};
use vigil::ports::{ConfigStore, MessageQueue};
use vigil::settings::{ConfigError, required};

/// The header Microsoft echoes the registered `authId` in.
pub const AUTH_HEADER: &str = "webhook-authid";
/// At most this many blobs per [`PollJob::Fetch`] message (a few hundred bytes each, so a job
/// stays far below the SQS message size limit however many items Microsoft batches).
pub const MAX_BLOBS_PER_JOB: usize = 200;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// Tenant records (for the stored `authId` hash).
    pub config: Arc<dyn ConfigStore>,
    /// The poll-jobs queue of the audit-poller.
    pub poll_jobs: Arc<dyn MessageQueue>,
}

/// The function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`.
    pub config_table: String,
    /// `POLL_JOBS_QUEUE_URL`.
    pub poll_jobs_queue_url: String,
}

impl Config {
    /// Reads the configuration through `lookup`.
    ///
    /// # Errors
    /// Names the first missing variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { config_table: required(lookup, "CONFIG_TABLE")?, poll_jobs_queue_url: required(lookup, "POLL_JOBS_QUEUE_URL")? })
    }
}

/// Builds the state once per container.
#[must_use]
pub fn build(config: &Config, sdk: &SdkConfig) -> AppState {
    AppState {
        config: Arc::new(DynamoConfigStore::new(aws_sdk_dynamodb::Client::new(sdk), config.config_table.clone())),
        poll_jobs: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), config.poll_jobs_queue_url.clone())),
    }
}

/// The router, callable in tests without a network.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/health", get(|| async { axum::Json(serde_json::json!({"status": "ok", "service": "webhook-receiver"})) }))
        .route("/webhooks/o365/{msp_id}/{tenant_id}", post(o365_notification))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "Not found", "no such webhook route") })
        .with_state(state)
}

pub use vigil::tenant::webhook_auth_hash;

/// An RFC 7807 `application/problem+json` response.
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
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

    let received = items.len();
    let grouped = group_blobs(&tenant_id, items);
    let accepted: usize = grouped.values().map(Vec::len).sum();
    let jobs = fetch_jobs(&msp_id, &tenant_id, grouped);
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
    tracing::info!(msp_id = %msp_id, tenant_id = %tenant_id, received, accepted, jobs = bodies.len(), "webhook notification enqueued");
    StatusCode::OK.into_response()
}

/// One notification item, as far as the poller needs it. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationItem {
    tenant_id: String,
    content_type: String,
    content_id: String,
    content_uri: String,
    content_created: String,
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

/// The usable items, by content type, without duplicate content ids. Every dropped item is
/// logged with its position and the reason.
fn group_blobs(tenant_id: &TenantId, items: Vec<Value>) -> BTreeMap<ContentType, Vec<AnnouncedBlob>> {
    let mut grouped: BTreeMap<ContentType, Vec<AnnouncedBlob>> = BTreeMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let item: NotificationItem = match serde_json::from_value(item) {
            Ok(item) => item,
            Err(error) => {
                tracing::warn!(tenant_id = %tenant_id, index, error = %error, "notification item dropped: missing or invalid fields");
                continue;
            }
        };
        if !item.tenant_id.trim().eq_ignore_ascii_case(tenant_id.as_str()) {
            tracing::warn!(tenant_id = %tenant_id, index, "notification item dropped: it belongs to another tenant");
            continue;
        }
        let Some(content_type) = ContentType::from_wire(item.content_type.trim()) else {
            tracing::warn!(tenant_id = %tenant_id, index, content_type = %item.content_type, "notification item dropped: unknown content type");
            continue;
        };
        let Some(content_created) = parse_content_created(&item.content_created) else {
            tracing::warn!(tenant_id = %tenant_id, index, "notification item dropped: contentCreated is not a date-time");
            continue;
        };
        if item.content_id.is_empty() || item.content_uri.is_empty() {
            tracing::warn!(tenant_id = %tenant_id, index, "notification item dropped: empty contentId or contentUri");
            continue;
        }
        let blobs = grouped.entry(content_type).or_default();
        if blobs.iter().any(|blob| blob.content_id == item.content_id) {
            continue;
        }
        blobs.push(AnnouncedBlob { content_id: item.content_id, content_uri: item.content_uri, content_created });
    }
    grouped
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
        let jobs = fetch_jobs(&MspId::parse("acme").unwrap(), &tenant, group_blobs(&tenant, items));
        assert_eq!(jobs.len(), 3);
        for job in &jobs {
            assert!(serde_json::to_string(job).unwrap().len() < vigil::messages::MAX_MESSAGE_BYTES);
        }
    }
}
