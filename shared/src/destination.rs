//! Destinations: where an MSP's alerts go. A destination is data — an id, a name, a kind with
//! its settings (one variant per kind), write-only credentials kept in the secret store under
//! a per-destination name, an enabled flag and its routing: which alerts it takes, where in the
//! PSA they land (a board or queue per category), the priority per severity, the status that
//! closes a ticket, and what to do with a tenant that has no company link.
//!
//! Nothing here talks to a PSA: connectors map a destination's settings to their wire format.
//! The vendor names below are the *kinds* a destination can have, nothing more.

use crate::alert::{Alert, Category, Severity};
use crate::ids::{DestinationId, MspId, PolicyId, TenantId};
use crate::secret::SecretString;
use crate::tenant::LegacyConnectWiseSettings;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The id the ConnectWise settings stored before destinations were data carry over to.
pub const LEGACY_DESTINATION_ID: &str = "connectwise";

/// What a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    ConnectWise,
    Autotask,
    /// HaloPSA (hosted or self-hosted).
    #[serde(rename = "halopsa")]
    HaloPsa,
    /// Tigerpaw One (hosted or on-premises): service orders.
    Tigerpaw,
    /// A Microsoft Teams channel, through a Workflows webhook.
    Teams,
    /// A Slack channel, through an incoming webhook.
    Slack,
    /// An HTTPS endpoint of the MSP's own, signed per the Standard Webhooks specification.
    Webhook,
    /// E-mail to a list of recipients.
    Email,
}

impl DestinationKind {
    /// The stable name used in the API and in metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectWise => "connectwise",
            Self::Autotask => "autotask",
            Self::HaloPsa => "halopsa",
            Self::Tigerpaw => "tigerpaw",
            Self::Teams => "teams",
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }

    /// Whether the destination keeps tickets (with a lifecycle), as opposed to a channel that
    /// only hears about alerts.
    #[must_use]
    pub fn keeps_tickets(self) -> bool {
        match self {
            Self::ConnectWise | Self::Autotask | Self::HaloPsa | Self::Tigerpaw => true,
            Self::Teams | Self::Slack | Self::Webhook | Self::Email => false,
        }
    }

    /// Whether the destination sends e-mail (the policy's daily e-mail limit applies).
    #[must_use]
    pub fn is_mail(self) -> bool {
        self == Self::Email
    }

    /// Whether the destination needs credentials of its own (e-mail goes out through the
    /// deployment's sender and needs none).
    #[must_use]
    pub fn needs_credentials(self) -> bool {
        self != Self::Email
    }
}

/// A kind's own settings (non-secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DestinationSettings {
    ConnectWise {
        /// API root, e.g. `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`.
        api_root: String,
        /// Ticket type id on the board (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ticket_type: Option<String>,
        /// Ticket source id (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    Autotask(AutotaskSettings),
    #[serde(rename = "halopsa")]
    HaloPsa(HaloPsaSettings),
    Tigerpaw(TigerpawSettings),
    /// The Workflows URL carries its own signature, so it is a credential.
    Teams {},
    /// The incoming-webhook URL is the credential.
    Slack {},
    Webhook(WebhookSettings),
    Email(EmailSettings),
}

/// A HaloPSA destination's settings. Tickets go to the linked client (`client_id`); a category's
/// place is a Halo team name, a severity's priority a `priority_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HaloPsaSettings {
    /// The instance's address, e.g. `https://msp.halopsa.com` (its `/auth` and `/api` are used).
    pub url: String,
    /// The `tenant` query parameter of the token request, for Halo-hosted instances (`None`:
    /// self-hosted, no parameter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `tickettype_id` of new tickets (`None`: the instance's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<String>,
    /// `outcome_id` of Vigil's actions (notes); default `7`, the built-in private note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_outcome: Option<String>,
}

/// How a Tigerpaw server takes the API keys (`psa-apis.md` §4.2 lists both; `test` tells which
/// one the server accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TigerpawAuth {
    /// `Authorization: TSI base64(public:private)` (Tigerpaw's own sample).
    #[default]
    Tsi,
    /// `Authorization: Basic base64(public:private)` (what the 18.2.1 SDK's swagger declares).
    Basic,
}

/// A Tigerpaw destination's settings. Service orders go to the linked account (its account
/// number); a category's place is a dispatch board number, a severity's priority a Priority
/// master-table value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TigerpawSettings {
    /// The REST API's address (hosted or on-premises), e.g. `https://tigerpaw.msp.example`
    /// (paths under `/api/…`).
    pub url: String,
    #[serde(default)]
    pub auth: TigerpawAuth,
    /// The account rep number Vigil's notes are written as (`RepNumber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rep_number: Option<String>,
    /// `ServiceOrderType` of new service orders (`None`: the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_order_type: Option<String>,
    /// `Status` of new service orders (`None`: the server's default, usually Open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_status: Option<String>,
    /// `Topic` of Vigil's notes (`None`: the first note topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_topic: Option<String>,
}

/// A signed webhook's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The HTTPS endpoint that receives the events.
    pub url: String,
    /// After a new secret is stored, the previous one keeps signing (a second signature) for
    /// this many hours, so the receiver can switch without losing events (default 24).
    #[serde(default = "default_rotation_grace_hours")]
    pub rotation_grace_hours: u32,
}

fn default_rotation_grace_hours() -> u32 {
    24
}

/// An e-mail destination's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// Who receives the e-mails (1 to 50 addresses, one message to all of them).
    pub recipients: Vec<String>,
    /// Put before every subject, e.g. `[Contoso SOC]` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
}

/// An Autotask destination's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AutotaskSettings {
    /// The zone's REST root (`https://webservicesN.autotask.net/atservicesrest/`); `None`:
    /// discovered from the API user name (`zoneInformation?user=`) and cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_url: Option<String>,
    /// Picklist values (the `value` of `Tickets/entityInformation/fields`), each optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_issue_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_category: Option<String>,
    /// The status a new ticket gets (`None`: the picklist's default, usually New).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_status: Option<String>,
    /// Note type and publish picklist values for Vigil's notes (`None`: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_publish: Option<String>,
    /// `dueDateTime` of a new ticket, this many hours after creation (default 24).
    #[serde(default = "default_due_hours")]
    pub due_in_hours: u32,
}

impl Default for AutotaskSettings {
    /// Discovered zone, every picklist value left to the PSA's defaults, due in 24 hours.
    fn default() -> Self {
        Self {
            zone_url: None,
            source: None,
            issue_type: None,
            sub_issue_type: None,
            ticket_type: None,
            ticket_category: None,
            new_status: None,
            note_type: None,
            note_publish: None,
            due_in_hours: default_due_hours(),
        }
    }
}

fn default_due_hours() -> u32 {
    24
}

impl DestinationSettings {
    /// Autotask settings with every picklist value left to the PSA's defaults.
    #[must_use]
    pub fn autotask(zone_url: Option<String>) -> Self {
        Self::Autotask(AutotaskSettings { zone_url, ..AutotaskSettings::default() })
    }

    /// The Autotask settings, when these are an Autotask destination's.
    #[must_use]
    pub fn as_autotask(&self) -> Option<&AutotaskSettings> {
        match self {
            Self::Autotask(settings) => Some(settings),
            _ => None,
        }
    }

    /// The kind these settings belong to.
    #[must_use]
    pub fn kind(&self) -> DestinationKind {
        match self {
            Self::ConnectWise { .. } => DestinationKind::ConnectWise,
            Self::Autotask(_) => DestinationKind::Autotask,
            Self::HaloPsa(_) => DestinationKind::HaloPsa,
            Self::Tigerpaw(_) => DestinationKind::Tigerpaw,
            Self::Teams {} => DestinationKind::Teams,
            Self::Slack {} => DestinationKind::Slack,
            Self::Webhook(_) => DestinationKind::Webhook,
            Self::Email(_) => DestinationKind::Email,
        }
    }

    /// How long a replaced signing secret keeps signing (zero for kinds without one).
    #[must_use]
    pub fn rotation_grace(&self) -> chrono::Duration {
        match self {
            Self::Webhook(settings) => chrono::Duration::hours(i64::from(settings.rotation_grace_hours)),
            _ => chrono::Duration::zero(),
        }
    }

    /// The MSP-supplied address this destination calls, if it has a fixed one (checked against
    /// the destination URL policy before saving and before every call).
    #[must_use]
    pub fn address(&self) -> Option<&str> {
        match self {
            Self::ConnectWise { api_root, .. } => Some(api_root),
            Self::Autotask(settings) => settings.zone_url.as_deref(),
            Self::HaloPsa(settings) => Some(&settings.url),
            Self::Tigerpaw(settings) => Some(&settings.url),
            Self::Webhook(settings) => Some(&settings.url),
            Self::Teams {} | Self::Slack {} | Self::Email(_) => None,
        }
    }
}

/// A destination's credentials. Stored only in the secret store (as JSON), never returned.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DestinationCredentials {
    ConnectWise {
        /// Login company id (the `{company}` in `company+publicKey`).
        company_id: String,
        public_key: String,
        private_key: SecretString,
        /// The integration's registered `clientId` GUID.
        client_id: String,
    },
    Autotask {
        /// The API-only user's user name (e-mail form).
        username: String,
        secret: SecretString,
        /// The integration's tracking identifier (`ApiIntegrationCode`).
        integration_code: SecretString,
    },
    #[serde(rename = "halopsa")]
    HaloPsa {
        /// The API application's client id (Configuration → Integrations → HaloPSA API →
        /// Applications, authentication method *Client ID and Secret*).
        client_id: String,
        client_secret: SecretString,
    },
    Tigerpaw {
        /// The account rep's REST API public key.
        public_key: String,
        private_key: SecretString,
    },
    Teams {
        /// The Workflows trigger URL ("When a Teams webhook request is received"); its `sig`
        /// parameter is the credential.
        workflow_url: SecretString,
    },
    Slack {
        /// The incoming-webhook URL (`https://hooks.slack.com/services/…`).
        webhook_url: SecretString,
    },
    Webhook {
        /// The signing secret, `whsec_` and the base64 of 24 to 64 random bytes.
        secret: SecretString,
        /// Set by Vigil when a new secret replaces one: the previous secret, which keeps
        /// signing until `previous_valid_until`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_secret: Option<SecretString>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_valid_until: Option<DateTime<Utc>>,
    },
}

impl std::fmt::Debug for DestinationCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ConnectWise { company_id, public_key, client_id, .. } => f
                .debug_struct("ConnectWise")
                .field("company_id", company_id)
                .field("public_key", public_key)
                .field("private_key", &"<redacted>")
                .field("client_id", client_id)
                .finish(),
            Self::Autotask { username, .. } => f
                .debug_struct("Autotask")
                .field("username", username)
                .field("secret", &"<redacted>")
                .field("integration_code", &"<redacted>")
                .finish(),
            Self::HaloPsa { client_id, .. } => {
                f.debug_struct("HaloPsa").field("client_id", client_id).field("client_secret", &"<redacted>").finish()
            }
            Self::Tigerpaw { public_key, .. } => {
                f.debug_struct("Tigerpaw").field("public_key", public_key).field("private_key", &"<redacted>").finish()
            }
            Self::Teams { .. } => f.debug_struct("Teams").field("workflow_url", &"<redacted>").finish(),
            Self::Slack { .. } => f.debug_struct("Slack").field("webhook_url", &"<redacted>").finish(),
            Self::Webhook { previous_valid_until, .. } => f
                .debug_struct("Webhook")
                .field("secret", &"<redacted>")
                .field("previous_valid_until", previous_valid_until)
                .finish_non_exhaustive(),
        }
    }
}

impl DestinationCredentials {
    /// The kind these credentials belong to.
    #[must_use]
    pub fn kind(&self) -> DestinationKind {
        match self {
            Self::ConnectWise { .. } => DestinationKind::ConnectWise,
            Self::Autotask { .. } => DestinationKind::Autotask,
            Self::HaloPsa { .. } => DestinationKind::HaloPsa,
            Self::Tigerpaw { .. } => DestinationKind::Tigerpaw,
            Self::Teams { .. } => DestinationKind::Teams,
            Self::Slack { .. } => DestinationKind::Slack,
            Self::Webhook { .. } => DestinationKind::Webhook,
        }
    }

    /// Whether storing new credentials of this kind keeps something of the stored ones (a
    /// replaced signing secret), so the stored ones must be read first.
    #[must_use]
    pub fn keeps_replaced_secret(&self) -> bool {
        matches!(self, Self::Webhook { .. })
    }

    /// These credentials as they are to be stored, given the ones stored before: a new signing
    /// secret keeps the one it replaces valid for `grace` (both sign meanwhile); the same
    /// secret again changes nothing. Other kinds are stored as given.
    #[must_use]
    pub fn replacing(self, stored: Option<&Self>, now: DateTime<Utc>, grace: chrono::Duration) -> Self {
        match (self, stored) {
            (Self::Webhook { secret, .. }, Some(Self::Webhook { secret: old, previous_secret, previous_valid_until })) => {
                if secret.expose() == old.expose() {
                    Self::Webhook { secret, previous_secret: previous_secret.clone(), previous_valid_until: *previous_valid_until }
                } else {
                    Self::Webhook { secret, previous_secret: Some(old.clone()), previous_valid_until: Some(now + grace) }
                }
            }
            (Self::Webhook { secret, .. }, _) => Self::Webhook { secret, previous_secret: None, previous_valid_until: None },
            (other, _) => other,
        }
    }
}

/// The hosts a chat kind's webhook URL may name (exact names, or suffixes starting with `.`):
/// a URL stored for a channel cannot point Vigil anywhere else.
#[must_use]
pub fn service_hosts(kind: DestinationKind) -> &'static [&'static str] {
    match kind {
        // Workflows triggers: the current Power Platform hosts and the older Logic Apps ones.
        DestinationKind::Teams => &[".api.powerplatform.com", ".logic.azure.com"],
        DestinationKind::Slack => &["hooks.slack.com"],
        _ => &[],
    }
}

/// Checks a Standard Webhooks signing secret: `whsec_` then standard base64 of 24 to 64 bytes.
///
/// # Errors
/// What is wrong, without the secret.
pub fn check_signing_secret(secret: &str) -> Result<(), String> {
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return Err("must start with whsec_ (the Standard Webhooks form)".to_owned());
    };
    let body = encoded.trim_end_matches('=');
    let padding = encoded.len() - body.len();
    if padding > 2 || encoded.len() % 4 != 0 || !body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') {
        return Err("must be whsec_ followed by standard base64".to_owned());
    }
    let bytes = encoded.len() / 4 * 3 - padding;
    if !(24..=64).contains(&bytes) {
        return Err(format!("must encode 24 to 64 random bytes (this one has {bytes})"));
    }
    Ok(())
}

/// What happens to an alert of a tenant that has no company link for the destination.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum UnlinkedTenant {
    /// Keep the alert's delivery waiting; it is delivered as soon as the tenant is linked.
    #[default]
    Hold,
    /// File it under this catch-all company (the MSP's own, usually).
    CatchAll { company: String },
}

/// Which alerts a destination takes and where in the PSA they land.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// Only these categories (empty: every category).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// Only alerts at least this severe (`None`: every severity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Only these policies (empty: every policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyId>,
    /// Only these tenants (empty: every tenant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantId>,
    /// The board (ConnectWise) or queue (Autotask) for alerts of a category without its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_place: Option<String>,
    /// Board or queue per category.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub places: BTreeMap<Category, String>,
    /// Priority per severity (a missing one: the PSA's default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub priorities: BTreeMap<Severity, String>,
    /// The status that closes a ticket; `None`: looked up per board/queue (the first closed
    /// status of the ticket's board, Autotask's Complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_status: Option<String>,
    /// What to do with a tenant without a company link.
    #[serde(default)]
    pub unlinked_tenant: UnlinkedTenant,
    /// The MSP's own company in this destination: alerts about the MSP's own delegated access
    /// (admin relationships) are filed under it when set; unset, under the customer's company
    /// (or as `unlinked_tenant` says, for a customer without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_company: Option<String>,
}

/// One of an MSP's destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Destination {
    pub msp_id: MspId,
    pub id: DestinationId,
    pub name: String,
    pub enabled: bool,
    pub settings: DestinationSettings,
    #[serde(default)]
    pub routing: Routing,
    /// The share of the PSA's request allowance Vigil may use per rolling hour (`None`: no
    /// limit of Vigil's own; the PSA's throttling still applies). Autotask allows 10,000 per
    /// database and hour, shared with every other integration of the MSP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u32>,
    /// Whether credentials were stored (the values never are here).
    #[serde(default)]
    pub credentials_set: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Destination {
    /// The destination's kind.
    #[must_use]
    pub fn kind(&self) -> DestinationKind {
        self.settings.kind()
    }

    /// Whether this destination's routing takes `alert` (ignoring the policy's own choice).
    #[must_use]
    pub fn accepts(&self, alert: &Alert) -> bool {
        let routing = &self.routing;
        self.enabled
            && (routing.categories.is_empty() || routing.categories.contains(&alert.category))
            && routing.min_severity.is_none_or(|min| alert.severity >= min)
            && (routing.policies.is_empty() || routing.policies.contains(&alert.policy_id))
            && (routing.tenants.is_empty() || routing.tenants.contains(&alert.tenant_id))
    }

    /// The board or queue for an alert of `category`.
    #[must_use]
    pub fn place_for(&self, category: Category) -> Option<&str> {
        self.routing.places.get(&category).or(self.routing.default_place.as_ref()).map(String::as_str)
    }

    /// The priority for an alert of `severity`.
    #[must_use]
    pub fn priority_for(&self, severity: Severity) -> Option<&str> {
        self.routing.priorities.get(&severity).map(String::as_str)
    }
}

impl Destination {
    /// The destination `connectwise` an MSP configured before destinations were data: its
    /// stored ConnectWise settings (API root, board, priority per severity), enabled, with
    /// the credentials it had (stored under the legacy secret name). Dated the Unix epoch,
    /// as the legacy settings carried no time.
    #[must_use]
    pub fn from_legacy(msp_id: &MspId, legacy: &LegacyConnectWiseSettings) -> Self {
        let priorities = [
            (Severity::High, legacy.priorities.high),
            (Severity::Medium, legacy.priorities.medium),
            (Severity::Low, legacy.priorities.low),
            (Severity::Informational, legacy.priorities.informational),
        ]
        .into_iter()
        .filter_map(|(severity, id)| id.map(|id| (severity, id.to_string())))
        .collect();
        Self {
            msp_id: msp_id.clone(),
            id: DestinationId::parse(LEGACY_DESTINATION_ID).unwrap_or_else(|_| unreachable!("the legacy id is a valid id")),
            name: "ConnectWise Manage".to_owned(),
            enabled: true,
            settings: DestinationSettings::ConnectWise { api_root: legacy.api_root.clone(), ticket_type: None, source: None },
            routing: Routing { default_place: legacy.board_id.map(|id| id.to_string()), priorities, ..Routing::default() },
            requests_per_hour: None,
            credentials_set: true,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }
}

/// The destinations an alert goes to: those the alert's policy names (each must still accept
/// it), or, when the policy names none, every enabled destination (ticketing or channel) whose
/// routing accepts it.
#[must_use]
pub fn destinations_for<'a>(all: &'a [Destination], alert: &Alert, chosen_by_policy: &[DestinationId]) -> Vec<&'a Destination> {
    all.iter()
        .filter(|d| d.msp_id == alert.msp_id && d.accepts(alert))
        .filter(|d| chosen_by_policy.is_empty() || chosen_by_policy.contains(&d.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::sample_alert;

    fn destination(id: &str, routing: Routing) -> Destination {
        let alert = sample_alert(Utc::now());
        Destination {
            msp_id: alert.msp_id,
            id: DestinationId::parse(id).unwrap(),
            name: id.to_owned(),
            enabled: true,
            settings: DestinationSettings::autotask(None),
            routing,
            requests_per_hour: None,
            credentials_set: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn routing_takes_an_alert_only_when_every_filter_accepts_it() {
        let alert = sample_alert(Utc::now());
        assert!(destination("all", Routing::default()).accepts(&alert));
        let other_category = if alert.category == Category::MailFlow { Category::Permissions } else { Category::MailFlow };
        assert!(!destination("cat", Routing { categories: vec![other_category], ..Routing::default() }).accepts(&alert));
        assert!(destination("cat", Routing { categories: vec![alert.category], ..Routing::default() }).accepts(&alert));
        let above = match alert.severity {
            Severity::Informational => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium | Severity::High => Severity::High,
        };
        let strict = destination("sev", Routing { min_severity: Some(above), ..Routing::default() });
        assert_eq!(strict.accepts(&alert), alert.severity >= above);
        assert!(destination("sev", Routing { min_severity: Some(alert.severity), ..Routing::default() }).accepts(&alert));
        let other_tenant = TenantId::parse("99999999-9999-4999-8999-999999999999").unwrap();
        assert!(!destination("ten", Routing { tenants: vec![other_tenant], ..Routing::default() }).accepts(&alert));
        let mut off = destination("off", Routing::default());
        off.enabled = false;
        assert!(!off.accepts(&alert));
    }

    #[test]
    fn a_policys_choice_narrows_the_destinations_and_no_choice_means_every_accepting_one() {
        let alert = sample_alert(Utc::now());
        let all = vec![destination("a", Routing::default()), destination("b", Routing::default())];
        assert_eq!(destinations_for(&all, &alert, &[]).len(), 2);
        let chosen = destinations_for(&all, &alert, &[DestinationId::parse("b").unwrap()]);
        assert_eq!(chosen.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["b"]);
        let mut foreign = destination("c", Routing::default());
        foreign.msp_id = MspId::parse("another-msp").unwrap();
        assert!(destinations_for(&[foreign], &alert, &[]).is_empty(), "another MSP's destination never takes the alert");
    }

    #[test]
    fn a_category_place_wins_over_the_default_place() {
        let mut places = BTreeMap::new();
        places.insert(Category::ThreatManagement, "security".to_owned());
        let d = destination("p", Routing { default_place: Some("desk".into()), places, ..Routing::default() });
        assert_eq!(d.place_for(Category::ThreatManagement), Some("security"));
        assert_eq!(d.place_for(Category::MailFlow), Some("desk"));
    }

    #[test]
    fn settings_read_by_kind_with_defaults_and_refuse_unknown_members() {
        let read: DestinationSettings = serde_json::from_str(r#"{"kind": "autotask", "source": "8"}"#).unwrap();
        assert_eq!(read, DestinationSettings::Autotask(AutotaskSettings { source: Some("8".into()), ..AutotaskSettings::default() }));
        assert_eq!(read.as_autotask().map(|s| s.due_in_hours), Some(24));
        assert!(serde_json::from_str::<DestinationSettings>(r#"{"kind": "autotask", "queue": "8"}"#).is_err());
        assert!(serde_json::from_str::<DestinationSettings>(r#"{"kind": "connectwise", "api_root": "x", "board": 1}"#).is_err());
    }

    #[test]
    fn credentials_never_show_their_secrets_in_debug() {
        let credentials = DestinationCredentials::Autotask {
            username: "api@msp.example".into(),
            secret: SecretString::new("s3cr3t-value"),
            integration_code: SecretString::new("TRACKING-CODE"),
        };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("TRACKING"), "{shown}");
    }

    #[test]
    fn legacy_connectwise_settings_carry_over_as_the_destination_connectwise() {
        use crate::tenant::LegacyPriorityMap;
        let msp = MspId::parse("acme-msp").unwrap();
        let legacy = LegacyConnectWiseSettings {
            api_root: "https://api-na.myconnectwise.net/v4_6_release/apis/3.0".into(),
            board_id: Some(12),
            priorities: LegacyPriorityMap { high: Some(1), medium: Some(2), low: None, informational: Some(4) },
        };
        let d = Destination::from_legacy(&msp, &legacy);
        assert_eq!((d.msp_id.as_str(), d.id.as_str(), d.name.as_str()), ("acme-msp", LEGACY_DESTINATION_ID, "ConnectWise Manage"));
        assert!(d.enabled && d.credentials_set);
        assert_eq!(d.settings.address(), Some(legacy.api_root.as_str()));
        assert_eq!(d.kind(), DestinationKind::ConnectWise);
        assert_eq!(d.routing.default_place.as_deref(), Some("12"));
        assert_eq!(
            (
                d.priority_for(Severity::High),
                d.priority_for(Severity::Medium),
                d.priority_for(Severity::Low),
                d.priority_for(Severity::Informational)
            ),
            (Some("1"), Some("2"), None, Some("4")),
            "a severity without a legacy priority keeps the PSA's default"
        );
        assert_eq!(d.routing.unlinked_tenant, UnlinkedTenant::Hold);
        assert_eq!((d.created_at, d.updated_at), (DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH));
    }
}
