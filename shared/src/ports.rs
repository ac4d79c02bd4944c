//! Ports: the traits through which services reach storage, queues, secrets, Microsoft 365 and
//! PSAs. One trait per aggregate or capability. Each has an in-memory adapter
//! ([`crate::memory`]) and a production adapter (DynamoDB, SQS, Secrets Manager, HTTP), and one
//! contract suite ([`crate::contract`]) that both must pass.

mod billing;
mod channels;
mod delegated;
mod licences;
mod offboarding;
mod onboarding;
mod relationships;
mod selfmon;
pub use billing::{BillingStore, BillingTarget, BillingTargets, MailboxCountStore, MailboxDirectory};
pub use channels::{MessageChannel, PostError};
pub use delegated::{CustomerDirectory, DelegatedSession};
pub use licences::{LicenceSource, LicenceStore};
pub use offboarding::{OffboardingStore, TenantData};
pub use onboarding::{OnboardingStore, TenantAccessProbe};
pub use relationships::{AdminRelationshipSource, MailSender, RelationshipStore};
pub use selfmon::CredentialsEpisodeStore;

use crate::access::{AuditEntry, AuditPage, Principal, StoredToken};
use crate::alert::{Alert, AlertHits};
use crate::changes::{ChangePage, ChangeQuery};
use crate::destination::Destination;
use crate::error::{QueueError, SecretError, SinkError, SourceError, StoreError};
use crate::ids::{AlertId, AuditStream, ContentType, DestinationId, MspId, PolicyId, PrincipalId, RecordId, TenantId};
use crate::policy::condition::Condition;
use crate::policy::model::PolicyDefinition;
use crate::policy::trigger::TriggerState;
use crate::render::RenderedTicket;
use crate::secret::SecretString;
use crate::tenant::{M365AppCredentials, Msp, Tenant, TokenHash};
use crate::ticket::{Delivery, TicketNote, TicketRef, TicketState};
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
    /// One page of the MSP's tenants in tenant-id order: at most `limit` (at least one is
    /// read), after `after`; reads about `limit` items, never the whole partition.
    async fn tenants_page(&self, msp_id: &MspId, limit: usize, after: Option<&TenantId>) -> Result<TenantPage, StoreError>;
    /// Every tenant of every MSP (the scheduler's view; never exposed through the API).
    async fn list_all_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
}

/// A page of an MSP's tenants ([`ConfigStore::tenants_page`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantPage {
    pub tenants: Vec<Tenant>,
    /// The last tenant's id when more follow (`None`: this was the last page).
    pub next: Option<TenantId>,
}

/// An MSP's principals and their API tokens (stored as hashes). Every key starts with the MSP
/// id; a token is found by the MSP id its text names and its hash.
#[async_trait]
pub trait PrincipalStore: Send + Sync {
    /// Creates or replaces a principal.
    async fn put_principal(&self, principal: &Principal) -> Result<(), StoreError>;
    async fn get_principal(&self, msp_id: &MspId, id: &PrincipalId) -> Result<Option<Principal>, StoreError>;
    /// Every principal of the MSP, by id.
    async fn list_principals(&self, msp_id: &MspId) -> Result<Vec<Principal>, StoreError>;
    /// `false` when there was nothing to delete. The principal's tokens stay (revoked by the
    /// caller first).
    async fn delete_principal(&self, msp_id: &MspId, id: &PrincipalId) -> Result<bool, StoreError>;
    /// Creates or replaces a token.
    async fn put_token(&self, token: &StoredToken) -> Result<(), StoreError>;
    /// The token with this hash, under this MSP only.
    async fn token(&self, msp_id: &MspId, hash: &TokenHash) -> Result<Option<StoredToken>, StoreError>;
    /// Every token of the MSP (legacy tokens included), oldest first.
    async fn tokens(&self, msp_id: &MspId) -> Result<Vec<StoredToken>, StoreError>;
    async fn delete_token(&self, msp_id: &MspId, hash: &TokenHash) -> Result<(), StoreError>;
}

/// An MSP's configuration audit log: append-only, read newest first, kept
/// [`crate::access::AUDIT_RETENTION_DAYS`].
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Up to `limit` entries older than the entry `before` (newest first from the start).
    async fn entries(&self, msp_id: &MspId, limit: usize, before: Option<&str>) -> Result<AuditPage, StoreError>;
}

/// An MSP's destinations. Every key starts with the MSP id.
#[async_trait]
pub trait DestinationStore: Send + Sync {
    /// Creates or replaces a destination.
    async fn put_destination(&self, destination: &Destination) -> Result<(), StoreError>;
    async fn get_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<Option<Destination>, StoreError>;
    /// Every destination of the MSP, by id.
    async fn list_destinations(&self, msp_id: &MspId) -> Result<Vec<Destination>, StoreError>;
    /// `false` when there was nothing to delete.
    async fn delete_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<bool, StoreError>;
    /// Every destination of every MSP (the status read-back's view; never exposed through the API).
    async fn list_all_destinations(&self) -> Result<Vec<Destination>, StoreError>;
}

/// A change to some attributes of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantChange {
    /// Links the tenant to a company of a destination (`None`: removes the link).
    CompanyLink {
        destination: DestinationId,
        company: Option<String>,
    },
    /// The tenant's own credentials were stored (they replace the MSP app's, if it used them).
    M365CredentialsSet,
    /// The tenant consented to the MSP app, whose credentials it now uses.
    MspAppConsented,
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
    /// Offboarded at this instant: marked, its webhook `authId` hash and its company links
    /// removed (so webhooks are refused and no delivery finds a company).
    Offboarded(DateTime<Utc>),
}

impl TenantChange {
    /// Applies the change to an in-memory tenant.
    pub fn apply(&self, tenant: &mut Tenant) {
        match self {
            Self::CompanyLink { destination, company } => {
                // A link to `connectwise` supersedes the legacy company; a link to another
                // destination leaves it (it is still the tenant's ConnectWise company).
                if destination.as_str() == crate::destination::LEGACY_DESTINATION_ID {
                    tenant.legacy_connectwise_company_id = None;
                }
                match company {
                    Some(company) => tenant.company_links.insert(destination.clone(), company.clone()),
                    None => tenant.company_links.remove(destination),
                };
            }
            Self::M365CredentialsSet => {
                tenant.m365_credentials_set = true;
                tenant.credentials_from_msp_app = false;
            }
            Self::MspAppConsented => {
                tenant.m365_credentials_set = true;
                tenant.credentials_from_msp_app = true;
            }
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
            Self::Offboarded(at) => {
                tenant.offboarded_at.get_or_insert(*at);
                tenant.webhook_auth_hash = None;
                tenant.webhook_registered = false;
                tenant.company_links.clear();
                tenant.legacy_connectwise_company_id = None;
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The stream's self-monitoring episodes ([`crate::selfmon`]).
    #[serde(default)]
    pub monitoring: crate::selfmon::StreamMonitoring,
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
            monitoring: crate::selfmon::StreamMonitoring::default(),
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
    /// Lists an MSP's alerts in key order (not time order), `limit` at a time.
    async fn list_alerts(&self, msp_id: &MspId, limit: usize, after: Option<&str>) -> Result<AlertPage, StoreError>;
    /// Reads the MSP's change index ([`crate::changes`]): alerts in the order they were last
    /// written, each under its latest key only, looking at no more than `query.read` entries
    /// (of the selected tenant only, when the query selects one). Every alert write above
    /// stamps the alert anew (a key that sorts after its previous one).
    /// (Test doubles that wrap a store for other purposes may leave it out: it then refuses.)
    async fn alerts_by_change(&self, msp_id: &MspId, query: &ChangeQuery) -> Result<ChangePage, StoreError> {
        let _ = (msp_id, query);
        Err(StoreError::Rejected("this alert store keeps no change index".into()))
    }
    async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: &DestinationId) -> Result<Option<Delivery>, StoreError>;
    /// Every delivery of the alert (one per destination it went to).
    async fn list_deliveries(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<Delivery>, StoreError>;
    /// The alerts whose current ticket in `destination` is open as far as Vigil knows (an index
    /// kept by [`AlertStore::save_delivery`]; an entry may be stale, never missing).
    async fn list_open_tickets(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<(AlertId, TicketRef)>, StoreError>;
    /// The deliveries held because the tenant had no company link in `destination`.
    async fn list_held_deliveries(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<AlertId>, StoreError>;
    /// Takes one of the `limit` tickets a policy may open for a tenant on `day` (UTC) for this
    /// alert. `true` when the alert holds a place (taking it again is a no-op), `false` when the
    /// day's places are all held by other alerts.
    async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError>;
    /// Takes one of the `limit` messages `destination` may receive on `day` (UTC) about one
    /// policy's alerts in one tenant, for the message `message_id`. `true` when the message holds
    /// a place (taking it again is a no-op), `false` when the day's places are all held.
    async fn take_daily_message(
        &self,
        alert: &Alert,
        destination: &DestinationId,
        day: chrono::NaiveDate,
        limit: u32,
        message_id: &str,
    ) -> Result<bool, StoreError>;
    /// Writes `delivery` only if the stored version is `delivery.version - 1` (absent for 1);
    /// otherwise [`StoreError::Conflict`]. Keeps the open-ticket and held indexes in step.
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

    /// The app credentials of the MSP's own partner tenant (GDAP relationships).
    #[must_use]
    pub fn partner_app(msp_id: &MspId) -> Self {
        Self(format!("{msp_id}/partner/m365"))
    }

    /// The MSP's own multi-tenant app, whose credentials reach every tenant that consented to
    /// it (one secret per MSP app, not one per tenant).
    #[must_use]
    pub fn msp_app(msp_id: &MspId) -> Self {
        Self(format!("{msp_id}/msp-app/m365"))
    }

    /// A partner technician's refresh token for the MSP app (direct onboarding; write-only).
    #[must_use]
    pub fn delegated_credential(msp_id: &MspId) -> Self {
        Self(format!("{msp_id}/msp-app/delegated"))
    }

    /// The key that signs the MSP's consent-link states.
    #[must_use]
    pub fn consent_state_key(msp_id: &MspId) -> Self {
        Self(format!("{msp_id}/msp-app/state-key"))
    }

    /// The credentials of one of the MSP's destinations.
    #[must_use]
    pub fn destination(msp_id: &MspId, destination: &DestinationId) -> Self {
        Self(format!("{msp_id}/destinations/{destination}"))
    }

    /// Where the ConnectWise keys lived before destinations were data (read once, to carry
    /// them over to the destination `connectwise`).
    #[must_use]
    pub fn legacy_connectwise(msp_id: &MspId) -> Self {
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
    /// Deletes the secret at once (no recovery window: an offboarded tenant's credentials must
    /// not linger); deleting one that does not exist succeeds.
    async fn delete_secret(&self, name: &SecretName) -> Result<(), SecretError>;
}

/// A queue of JSON messages.
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Sends every body or fails; on failure some may have been sent (receivers are idempotent).
    async fn send_all(&self, bodies: &[String]) -> Result<(), QueueError>;
    /// Like [`MessageQueue::send_all`], each message becoming visible only after `delay`
    /// (at most [`MAX_MESSAGE_DELAY`]; longer is cut to it).
    async fn send_delayed(&self, bodies: &[String], delay: std::time::Duration) -> Result<(), QueueError>;
}

/// The longest delay a queue message can have (SQS `DelaySeconds` allows 15 minutes).
pub const MAX_MESSAGE_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

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

/// A new ticket: its rendered content and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub content: RenderedTicket,
    /// The reference the ticket carries so it can be found again ([`crate::ticket::external_reference`]).
    pub reference: String,
    /// The PSA company (its id, as text).
    pub company: String,
    /// The board or queue (its id, as text); `None`: the PSA's default.
    pub place: Option<String>,
    /// The priority (its id, as text); `None`: the PSA's default.
    pub priority: Option<String>,
}

/// Something the config API can look up in a PSA, so an MSP maps tenants and routes without
/// opening the PSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Companies whose name or identifier contains `search` (all when `None`), active ones.
    Companies {
        search: Option<String>,
    },
    /// Boards (ConnectWise) or queues (Autotask).
    Places,
    Priorities,
    /// Ticket statuses, of one board where statuses are per board.
    Statuses {
        place: Option<String>,
    },
    /// Contacts of a company, optionally only the one with this e-mail address.
    Contacts {
        company: String,
        email: Option<String>,
    },
    /// The PSA's technicians (the people who work tickets), for settings that name one.
    Technicians,
    /// A company's sites (locations), where the PSA keeps them.
    Sites {
        company: String,
    },
}

/// One answer of a [`Lookup`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LookupItem {
    /// The id to put in a destination's settings or a company link.
    pub id: String,
    pub name: String,
    /// For statuses: whether the status closes (completes) a ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closes: Option<bool>,
    /// For contacts: the e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the PSA marks it as its default.
    #[serde(default)]
    pub default: bool,
}

/// A PSA that keeps tickets for alerts. Ticket and company references are strings; every
/// connector maps them to its own ids.
#[async_trait]
pub trait TicketSystem: Send + Sync {
    /// The ticket carrying `reference`, if one exists (found after a lost response).
    async fn find_ticket(&self, reference: &str) -> Result<Option<TicketRef>, SinkError>;
    /// Creates a ticket. Links it to the company contact whose e-mail address is the content's
    /// affected user, when there is one, else to the company's default contact.
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError>;
    /// Adds a note. [`SinkError::Gone`] when the ticket was deleted or merged away.
    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError>;
    /// Whether the ticket has a note containing `marker`. [`SinkError::Gone`] as above.
    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError>;
    /// Closes (completes) the ticket with `status` (`None`: the first closing status of its
    /// board or queue) and a resolution text where the PSA has one. Closing a closed ticket
    /// succeeds; [`SinkError::Gone`] when the ticket is gone.
    async fn close_ticket(&self, ticket: &TicketRef, status: Option<&str>, resolution: &str) -> Result<(), SinkError>;
    /// The state of each ticket, in as few requests as the PSA allows (a ticket the PSA does
    /// not know any more is [`TicketState::Gone`]).
    async fn ticket_states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError>;
    /// Looks something up for the config API.
    async fn lookup(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError>;
    /// Checks the credentials and that the destination's places, priorities and statuses
    /// exist, creating nothing. Returns each problem found (empty: all is well).
    async fn check(&self, destination: &Destination) -> Result<Vec<String>, SinkError>;
    /// Asks the PSA to call `url` when a ticket changes, where the PSA has callbacks. Repeating
    /// it keeps one registration. `false`: this PSA has no callbacks (polling covers it).
    async fn register_callback(&self, _url: &str) -> Result<bool, SinkError> {
        Ok(false)
    }
    /// Checks a callback the PSA sent (its raw body and headers, names lowercase) and returns the
    /// ticket it names; `None` when it is not authentic or this PSA has no callbacks.
    async fn verify_callback(&self, _body: &[u8], _headers: &[(String, String)]) -> Result<Option<TicketRef>, SinkError> {
        Ok(None)
    }
}

/// Why no ticket system could be built for a destination.
#[derive(Debug, thiserror::Error)]
pub enum SinkSetupError {
    #[error("the destination is not usable: {0}")]
    NotConfigured(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Builds the connector of one destination from its settings and stored credentials: a
/// ticket system for kinds that keep tickets, a message channel for the others.
#[async_trait]
pub trait TicketSystemProvider: Send + Sync {
    async fn system_for(&self, destination: &Destination) -> Result<Arc<dyn TicketSystem>, SinkSetupError>;
    /// The channel of a destination that does not keep tickets.
    async fn channel_for(&self, destination: &Destination) -> Result<Arc<dyn MessageChannel>, SinkSetupError> {
        Err(SinkSetupError::NotConfigured(format!("destination {} is not a message channel", destination.id)))
    }
    /// The web page of one of the destination's tickets, for people (built from the settings
    /// alone: no request, no credentials); `None` where the kind has no such page or the
    /// settings do not tell its address.
    fn ticket_url(&self, _destination: &Destination, _ticket: &crate::ticket::TicketRef) -> Option<url::Url> {
        None
    }
}

/// What taking from a request budget gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetGrant {
    Granted,
    /// The share is used up; the oldest counted requests leave the rolling hour after this.
    Exhausted {
        retry_after: std::time::Duration,
    },
}

/// Counts a destination's requests over a rolling hour, so Vigil keeps within the share of a
/// PSA's allowance the MSP gave it.
#[async_trait]
pub trait RequestBudget: Send + Sync {
    /// Takes `requests` from the destination's hourly share of `per_hour`, or says how long
    /// to wait. Never grants more than `per_hour` in any rolling hour.
    async fn take(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
        requests: u32,
        per_hour: u32,
        now: DateTime<Utc>,
    ) -> Result<BudgetGrant, StoreError>;
}

/// What a rate limit decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// The window's requests are used up; the next window opens after this.
    Limited {
        retry_after: std::time::Duration,
    },
}

/// Counts a caller's requests to a class of routes in fixed windows, shared by every instance
/// of the API: `caller` is a fingerprint of the API token (never the token), `class` names the
/// routes (`lookups`, `destination-tests`).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request in the window of `window` that holds `now`, allowed while the window
    /// has counted fewer than `limit`; a refused request is not counted.
    async fn admit(
        &self,
        msp_id: &MspId,
        caller: &str,
        class: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<RateDecision, StoreError>;
}

/// The window of `window` holding `now`: its start (epoch seconds) and how long until it ends
/// (at least a second).
#[must_use]
pub fn rate_window(window: Duration, now: DateTime<Utc>) -> (i64, std::time::Duration) {
    let length = window.num_seconds().max(1);
    let start = now.timestamp().div_euclid(length) * length;
    let left = u64::try_from(start + length - now.timestamp()).unwrap_or(1).max(1);
    (start, std::time::Duration::from_secs(left))
}

/// Where Microsoft should send webhook notifications for a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistration {
    /// The HTTPS address of Vigil's webhook receiver for this tenant.
    pub address: String,
    /// The per-tenant random value Microsoft echoes in `Webhook-AuthID`.
    pub auth_id: SecretString,
}

/// The state of a webhook on a subscription, as `subscriptions/list` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookState {
    Enabled,
    /// Disabled by Microsoft after failed notifications.
    Disabled,
    /// Past its expiration.
    Expired,
    /// Another status Microsoft may add (kept as given).
    Other(String),
}

/// One content type's subscription, as `subscriptions/list` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSubscription {
    pub content_type: ContentType,
    /// `status: enabled` (a missing status counts as not enabled).
    pub enabled: bool,
    /// The registered webhook's state; `None`: no webhook (`webhook: null`).
    pub webhook: Option<WebhookState>,
}

/// Subscriptions of the Management Activity API.
#[async_trait]
pub trait SubscriptionManager: Send + Sync {
    /// The tenant's subscriptions (`subscriptions/list`), one per content type Microsoft lists;
    /// content types it does not know are left out.
    async fn list_subscriptions(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
    ) -> Result<Vec<ListedSubscription>, SourceError>;
    /// Starts (or updates) the subscription of one content type, with an optional webhook.
    /// "Already enabled" (AF20024) counts as success.
    async fn start_subscription(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        webhook: Option<&WebhookRegistration>,
    ) -> Result<(), SourceError>;
    /// Stops the content type's subscription (and so its webhook); a subscription that does not
    /// exist or is already stopped counts as success.
    async fn stop_subscription(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// What a connector asks before every request to a destination: one request from the
/// destination's hourly share, if it has one. Refused, the connector fails the call with
/// [`SinkError::OverBudget`] carrying how long to wait (nothing was sent), and the dispatcher
/// puts the delivery back on the queue for then.
#[derive(Clone)]
pub struct RequestGate {
    budget: Option<(Arc<dyn RequestBudget>, MspId, DestinationId, u32)>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl std::fmt::Debug for RequestGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestGate").field("per_hour", &self.budget.as_ref().map(|b| b.3)).finish_non_exhaustive()
    }
}

impl RequestGate {
    /// A gate that admits every request (no share configured).
    #[must_use]
    pub fn open() -> Self {
        Self { budget: None, clock: Arc::new(crate::clock::SystemClock) }
    }

    /// The gate of `destination`: its `requests_per_hour` share, counted in `budget`.
    #[must_use]
    pub fn for_destination(destination: &Destination, budget: Arc<dyn RequestBudget>, clock: Arc<dyn crate::clock::Clock>) -> Self {
        Self {
            budget: destination.requests_per_hour.map(|limit| (budget, destination.msp_id.clone(), destination.id.clone(), limit)),
            clock,
        }
    }

    /// Takes one request from the share.
    ///
    /// # Errors
    /// [`SinkError::OverBudget`] when the share is used up; [`SinkError::Unavailable`] when the
    /// budget cannot be read (the request is not made).
    pub async fn admit(&self) -> Result<(), SinkError> {
        let Some((budget, msp_id, destination, per_hour)) = &self.budget else { return Ok(()) };
        match budget.take(msp_id, destination, 1, *per_hour, self.clock.now()).await {
            Ok(BudgetGrant::Granted) => Ok(()),
            Ok(BudgetGrant::Exhausted { retry_after }) => Err(SinkError::OverBudget { retry_after }),
            Err(error) => Err(SinkError::Unavailable(format!("request budget: {error}"))),
        }
    }
}

/// Replays ([`crate::replay::Replay`]), each kept a while after it was requested (then expired).
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Creates or replaces the replay (a run overwrites what it found, never adds to it).
    async fn put_replay(&self, replay: &crate::replay::Replay) -> Result<(), StoreError>;
    async fn get_replay(&self, msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Result<Option<crate::replay::Replay>, StoreError>;
    /// Remembers `replay_id` as the tenant's latest replay (one small item per tenant).
    async fn set_latest_replay(&self, msp_id: &MspId, tenant_id: &TenantId, replay_id: &str) -> Result<(), StoreError>;
    async fn latest_replay(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<String>, StoreError>;
}
