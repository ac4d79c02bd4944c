//! Ports: the traits through which services reach storage, queues, secrets, Microsoft 365 and
//! PSAs. One trait per aggregate or capability. Each has an in-memory adapter
//! ([`crate::memory`]) and a production adapter (DynamoDB, SQS, Secrets Manager, HTTP), and one
//! contract suite ([`crate::contract`]) that both must pass.

use crate::alert::{Alert, AlertHits};
use crate::error::{QueueError, SecretError, SinkError, SourceError, StoreError};
use crate::ids::{AlertId, AuditStream, ContentType, MspId, PolicyId, RecordId, TenantId};
use crate::policy::condition::Condition;
use crate::policy::model::PolicyDefinition;
use crate::policy::trigger::TriggerState;
use crate::secret::SecretString;
use crate::tenant::{ConnectWiseSettings, M365AppCredentials, Msp, Tenant, TokenHash};
use crate::ticket::{Delivery, Destination, TicketNote, TicketRef};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// MSPs, API tokens, tenants and PSA settings. Every key starts with the MSP id.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// Creates an MSP; `false` if it already exists (unchanged).
    async fn create_msp(&self, msp: &Msp) -> Result<bool, StoreError>;
    async fn get_msp(&self, msp_id: &MspId) -> Result<Option<Msp>, StoreError>;
    /// Replaces an MSP's record (its settings).
    async fn put_msp(&self, msp: &Msp) -> Result<(), StoreError>;
    /// Stores the hash of a newly issued API token.
    async fn add_api_token(&self, msp_id: &MspId, hash: &TokenHash, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn api_token_exists(&self, msp_id: &MspId, hash: &TokenHash) -> Result<bool, StoreError>;
    /// Creates a tenant; `false` if the MSP already has it (unchanged).
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError>;
    /// Replaces a tenant record.
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    /// Changes some attributes of an existing tenant, leaving the others as stored (so two
    /// writers of different attributes never undo each other). Returns the tenant afterwards,
    /// or `None` when it does not exist.
    async fn update_tenant(&self, msp_id: &MspId, tenant_id: &TenantId, change: &TenantChange) -> Result<Option<Tenant>, StoreError>;
    async fn get_tenant(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    async fn list_tenants(&self, msp_id: &MspId) -> Result<Vec<Tenant>, StoreError>;
    /// Every tenant of every MSP (the scheduler's view; never exposed through the API).
    async fn list_all_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    async fn put_connectwise_settings(&self, msp_id: &MspId, settings: &ConnectWiseSettings) -> Result<(), StoreError>;
    async fn get_connectwise_settings(&self, msp_id: &MspId) -> Result<Option<ConnectWiseSettings>, StoreError>;
}

/// A change to some attributes of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantChange {
    ConnectWiseCompany(i64),
    M365CredentialsSet,
    /// The streams, and `webhook_registered = false` so new content types get the webhook.
    Streams(Option<Vec<AuditStream>>),
    Webhook {
        auth_hash: String,
        registered: bool,
    },
    /// What policies know of the tenant: its mail domains and break-glass accounts.
    PolicyContext {
        domains: Vec<String>,
        break_glass_accounts: Vec<String>,
    },
}

impl TenantChange {
    /// Applies the change to an in-memory tenant.
    pub fn apply(&self, tenant: &mut Tenant) {
        match self {
            Self::ConnectWiseCompany(id) => tenant.connectwise_company_id = Some(*id),
            Self::M365CredentialsSet => tenant.m365_credentials_set = true,
            Self::Streams(streams) => {
                tenant.streams.clone_from(streams);
                tenant.webhook_registered = false;
            }
            Self::Webhook { auth_hash, registered } => {
                tenant.webhook_auth_hash = Some(auth_hash.clone());
                tenant.webhook_registered = *registered;
            }
            Self::PolicyContext { domains, break_glass_accounts } => {
                tenant.domains.clone_from(domains);
                tenant.break_glass_accounts.clone_from(break_glass_accounts);
            }
        }
    }
}

/// One (tenant, audit stream) source of audit data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    pub stream: AuditStream,
}

/// The coverage ledger of one stream: how far it is covered, how healthy polling is, and what
/// could not be covered any more (content Microsoft no longer holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// Everything before this instant has been listed and enqueued.
    pub covered_until: DateTime<Utc>,
    /// When polling last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// Failed polls since the last success.
    pub consecutive_failures: u32,
    /// The last failure, classified (no secrets; a bounded code and a short message).
    pub last_error: Option<String>,
    /// When the open connection problem of this stream began (its alert is open), if any.
    #[serde(default)]
    pub problem_since: Option<DateTime<Utc>>,
    /// Intervals that were never covered because they left Microsoft's 7-day retention first.
    /// Merged and bounded by [`StreamState::record_lost`], so it never grows per poll.
    #[serde(default)]
    pub lost: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// When a poll last moved `covered_until` forward (or succeeded); `None` before the first.
    #[serde(default)]
    pub advanced_at: Option<DateTime<Utc>>,
    /// When the open "stream stuck" episode began (its alert is open), if any.
    #[serde(default)]
    pub stuck_since: Option<DateTime<Utc>>,
}

impl StreamState {
    /// A stream that starts covering at `start`.
    #[must_use]
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            covered_until: start,
            last_success: None,
            consecutive_failures: 0,
            last_error: None,
            problem_since: None,
            lost: Vec::new(),
            advanced_at: None,
            stuck_since: None,
        }
    }

    /// The most lost intervals a ledger keeps; beyond it the oldest are merged (the merged
    /// interval then also spans the covered time between them, erring towards "lost").
    pub const LOST_INTERVALS_MAX: usize = 50;

    /// Records `[from, to)` as lost: overlapping and adjacent intervals merge, and the list is
    /// capped at [`Self::LOST_INTERVALS_MAX`], so a stream that stays wedged does not grow its
    /// ledger item on every poll.
    pub fn record_lost(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        if to <= from {
            return;
        }
        self.lost.push((from, to));
        self.lost.sort();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(self.lost.len());
        for (start, end) in self.lost.drain(..) {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        while merged.len() > Self::LOST_INTERVALS_MAX {
            let (_, second_end) = merged.remove(1);
            merged[0].1 = merged[0].1.max(second_end);
        }
        self.lost = merged;
    }
}

/// Result of trying to claim an audit record for processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This caller now owns the record and must enqueue it, then mark it complete.
    Claimed,
    /// The record was already enqueued: skip it.
    AlreadyProcessed,
    /// Another caller claimed it moments ago and has not finished: skip it for now.
    InFlight,
}

/// The poller's state: cursors, record claims, finished blobs. Claims and blob markers expire
/// (TTL) after Microsoft's 7-day content retention.
#[async_trait]
pub trait IngestStateStore: Send + Sync {
    /// A stream's coverage ledger.
    async fn get_stream(&self, stream: &StreamKey) -> Result<Option<StreamState>, StoreError>;
    async fn put_stream(&self, stream: &StreamKey, state: &StreamState) -> Result<(), StoreError>;
    /// Claims a record by `(tenant, record id)`. A claim that was never completed can be taken
    /// over once its lease has passed, so a crash between claim and enqueue loses nothing.
    async fn claim_record(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_id: &RecordId,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError>;
    /// Marks claimed records as enqueued.
    async fn complete_records(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_ids: &[RecordId],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str) -> Result<bool, StoreError>;
    async fn mark_blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
}

/// A page of alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    /// Pass back to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// Alerts and their per-destination delivery state.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Adds each record of `hits` to the alert at most once, creating the alert if needed,
    /// and returns the alert as stored afterwards. Safe to repeat with the same records.
    async fn record_hits(&self, hits: &AlertHits, now: DateTime<Utc>) -> Result<Alert, StoreError>;
    async fn get_alert(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Option<Alert>, StoreError>;
    /// Marks an alert resolved (its condition cleared); repeating it changes nothing. Returns
    /// the alert as stored, or `None` when it does not exist.
    async fn resolve_alert(&self, msp_id: &MspId, alert_id: &AlertId, at: DateTime<Utc>) -> Result<Option<Alert>, StoreError>;
    /// Replaces an alert's triage and status if the stored version is `alert.version - 1`;
    /// otherwise [`StoreError::Conflict`].
    async fn update_alert(&self, alert: &Alert) -> Result<(), StoreError>;
    /// Lists an MSP's alerts, `limit` at a time.
    async fn list_alerts(&self, msp_id: &MspId, limit: usize, after: Option<&str>) -> Result<AlertPage, StoreError>;
    async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: Destination) -> Result<Option<Delivery>, StoreError>;
    /// Takes one of the `limit` tickets a policy may open for a tenant on `day` (UTC) for this
    /// alert. `true` when the alert holds a place (taking it again is a no-op), `false` when the
    /// day's places are all held by other alerts.
    async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError>;
    /// Writes `delivery` only if the stored version is `delivery.version - 1` (absent for 1);
    /// otherwise [`StoreError::Conflict`].
    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
}

/// A secret's name relative to the deployment's prefix; always starts with the MSP id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretName(String);

impl SecretName {
    /// Microsoft app credentials for one customer tenant.
    #[must_use]
    pub fn m365_app(msp_id: &MspId, tenant_id: &TenantId) -> Self {
        Self(format!("{msp_id}/tenants/{tenant_id}/m365"))
    }

    /// The MSP's ConnectWise API keys.
    #[must_use]
    pub fn connectwise(msp_id: &MspId) -> Self {
        Self(format!("{msp_id}/psa/connectwise"))
    }

    /// The relative name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Credentials. Values are written through the API and read only by the functions that use
/// them; never listed, returned or logged.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates or replaces a secret. Repeating the same write is a no-op.
    async fn put_secret(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError>;
    async fn get_secret(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError>;
}

/// A queue of JSON messages.
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Sends every body or fails; on failure some may have been sent (receivers are idempotent).
    async fn send_all(&self, bodies: &[String]) -> Result<(), QueueError>;
}

/// A half-open time window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One content blob announced by the Management Activity API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentBlob {
    pub content_id: String,
    pub content_uri: String,
    pub content_created: DateTime<Utc>,
}

/// Where audit content comes from (the Office 365 Management Activity API).
#[async_trait]
pub trait AuditSource: Send + Sync {
    /// Every blob available in the window, following paging; starts the subscription if
    /// Microsoft says none exists.
    async fn list_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        window: TimeWindow,
    ) -> Result<Vec<ContentBlob>, SourceError>;
    /// The raw body of one blob (a JSON array of records, if all is well).
    async fn fetch_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        blob: &ContentBlob,
    ) -> Result<String, SourceError>;
}

/// A PSA that holds tickets for alerts.
#[async_trait]
pub trait TicketSink: Send + Sync {
    /// The ticket already created for this alert, if any (found by the reference it carries).
    async fn find_ticket(&self, alert: &Alert) -> Result<Option<TicketRef>, SinkError>;
    /// Creates the alert's ticket under the given PSA company.
    async fn create_ticket(&self, alert: &Alert, company_id: i64) -> Result<TicketRef, SinkError>;
    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError>;
    /// Whether the ticket has a note containing `marker`.
    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError>;
}

/// Why no ticket sink could be built for an MSP.
#[derive(Debug, thiserror::Error)]
pub enum SinkSetupError {
    #[error("the MSP has not configured {0}")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Builds an MSP's ticket sink from its settings and credentials.
#[async_trait]
pub trait TicketSinkProvider: Send + Sync {
    async fn sink_for(&self, msp_id: &MspId, destination: Destination) -> Result<Arc<dyn TicketSink>, SinkSetupError>;
}

/// Where Microsoft should send webhook notifications for a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistration {
    /// The HTTPS address of Vigil's webhook receiver for this tenant.
    pub address: String,
    /// The per-tenant random value Microsoft echoes in `Webhook-AuthID`.
    pub auth_id: SecretString,
}

/// Subscriptions of the Management Activity API.
#[async_trait]
pub trait SubscriptionManager: Send + Sync {
    /// Starts (or updates) the subscription of one content type, with an optional webhook.
    /// "Already enabled" (AF20024) counts as success.
    async fn start_subscription(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        webhook: Option<&WebhookRegistration>,
    ) -> Result<(), SourceError>;
}

/// Microsoft Graph security alerts (`/security/alerts_v2`).
#[async_trait]
pub trait SecurityAlertSource: Send + Sync {
    /// Every alert whose `lastUpdateDateTime` is at or after `since`, oldest update first,
    /// following `@odata.nextLink`. Each alert is the Graph JSON object, unchanged.
    async fn alerts_updated_since(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<serde_json::Value>, SourceError>;
}

/// Where a threshold or unusual-activity policy keeps the state of one group key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TriggerKey {
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    pub policy_id: PolicyId,
    /// The group key (lowercase field values), any text.
    pub key: String,
}

/// Trigger state, read and written with optimistic concurrency; expires (TTL) when stale.
#[async_trait]
pub trait TriggerStateStore: Send + Sync {
    /// The state and its version (`None` when there is none).
    async fn load_trigger(&self, key: &TriggerKey) -> Result<Option<(TriggerState, u64)>, StoreError>;
    /// Stores `state` as version `version + 1` if the stored version is `version` (0: none
    /// stored); otherwise [`StoreError::Conflict`].
    async fn save_trigger(&self, key: &TriggerKey, state: &TriggerState, version: u64, expires: DateTime<Utc>) -> Result<(), StoreError>;
}

/// An MSP's own policy, or its changed copy of a built-in.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub definition: PolicyDefinition,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A rule that keeps matching alerts from being raised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suppression {
    pub id: String,
    pub msp_id: MspId,
    /// Only this tenant (`None`: every tenant of the MSP).
    #[serde(default)]
    pub tenant_id: Option<TenantId>,
    /// Only this acting user / group key (case-insensitive).
    #[serde(default)]
    pub user: Option<String>,
    /// Only this policy.
    #[serde(default)]
    pub policy_id: Option<PolicyId>,
    /// Conditions over the event's fields and the alert's (`Alert.PolicyId`, `Alert.Severity`,
    /// `Alert.Category`, `Alert.Name`, `Alert.Title`, `Alert.GroupKey`).
    #[serde(default)]
    pub conditions: Option<Condition>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    pub reason: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

/// An MSP's policy configuration: its policies (own ones and changed built-ins), which policies
/// are off for which tenant, and its suppression rules. Every change bumps one revision, so
/// evaluators can keep compiled policies until it moves.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The revision: changes whenever anything below is written.
    async fn policy_revision(&self, msp_id: &MspId) -> Result<u64, StoreError>;
    async fn put_policy(&self, msp_id: &MspId, policy: &StoredPolicy) -> Result<(), StoreError>;
    async fn get_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<Option<StoredPolicy>, StoreError>;
    /// `false` when there was nothing to delete.
    async fn delete_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<bool, StoreError>;
    async fn list_policies(&self, msp_id: &MspId) -> Result<Vec<StoredPolicy>, StoreError>;
    /// Turns a policy on or off for one tenant (overrides the policy's own `enabled`).
    async fn set_tenant_policy(&self, msp_id: &MspId, tenant_id: &TenantId, policy_id: &PolicyId, enabled: bool) -> Result<(), StoreError>;
    /// The per-tenant switches of one tenant.
    async fn tenant_policies(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Vec<(PolicyId, bool)>, StoreError>;
    async fn put_suppression(&self, suppression: &Suppression) -> Result<(), StoreError>;
    async fn list_suppressions(&self, msp_id: &MspId) -> Result<Vec<Suppression>, StoreError>;
    /// `false` when there was nothing to delete.
    async fn delete_suppression(&self, msp_id: &MspId, id: &str) -> Result<bool, StoreError>;
}
