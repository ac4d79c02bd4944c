//! MSPs, their customer tenants, their PSA settings and credentials, and API tokens.

use crate::ids::{AuditStream, IdError, MspId, TenantId};
use crate::secret::SecretString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An MSP using Vigil.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Msp {
    pub id: MspId,
    pub name: String,
    /// The MSP's own Entra tenant id, sent as `PublisherIdentifier` on its tenants' Management
    /// Activity API calls so throttling counts against the MSP's own quota. `None`: the
    /// deployment's default.
    #[serde(default)]
    pub publisher_identifier: Option<TenantId>,
    /// How far back, in hours, a new tenant's streams start (1 to 168; Microsoft keeps 7 days).
    #[serde(default = "Msp::default_first_lookback_hours")]
    pub first_lookback_hours: u32,
    /// Alerts whose newest hit is older than this many hours (backfilled after an outage or a
    /// first look-back) are raised but get no ticket; `None`: every alert gets one.
    #[serde(default)]
    pub backfill_ticket_max_age_hours: Option<u32>,
    /// The MSP's own partner tenant, whose GDAP relationships with its customers Vigil reads
    /// (with the app credentials at [`crate::ports::SecretName::partner_app`]); `None`: not
    /// connected.
    #[serde(default)]
    pub partner_tenant_id: Option<TenantId>,
    /// How often the partner tenant is read, in hours (1 to 168).
    #[serde(default = "Msp::default_partner_read_every_hours")]
    pub partner_read_every_hours: u32,
    /// How often each customer tenant's licences are read, in hours (1 to 168).
    #[serde(default = "Msp::default_licence_read_every_hours")]
    pub licence_read_every_hours: u32,
    /// A subscription whose next lifecycle date (expiry or renewal) is within this many days
    /// raises the licence policy "lifecycle date near" (1 to 365).
    #[serde(default = "Msp::default_licence_lifecycle_days")]
    pub licence_lifecycle_days: u32,
    pub created_at: DateTime<Utc>,
}

impl Msp {
    /// The default of [`Msp::first_lookback_hours`].
    pub const DEFAULT_FIRST_LOOKBACK_HOURS: u32 = 24;
    /// The range [`Msp::first_lookback_hours`] must be in.
    pub const FIRST_LOOKBACK_HOURS: std::ops::RangeInclusive<u32> = 1..=168;

    fn default_first_lookback_hours() -> u32 {
        Self::DEFAULT_FIRST_LOOKBACK_HOURS
    }

    /// The default of [`Msp::partner_read_every_hours`]: daily.
    pub const DEFAULT_PARTNER_READ_EVERY_HOURS: u32 = 24;
    /// The range [`Msp::partner_read_every_hours`] must be in.
    pub const PARTNER_READ_EVERY_HOURS: std::ops::RangeInclusive<u32> = 1..=168;

    fn default_partner_read_every_hours() -> u32 {
        Self::DEFAULT_PARTNER_READ_EVERY_HOURS
    }

    /// The default of [`Msp::licence_read_every_hours`]: daily.
    pub const DEFAULT_LICENCE_READ_EVERY_HOURS: u32 = 24;
    /// The range [`Msp::licence_read_every_hours`] must be in.
    pub const LICENCE_READ_EVERY_HOURS: std::ops::RangeInclusive<u32> = 1..=168;
    /// The default of [`Msp::licence_lifecycle_days`].
    pub const DEFAULT_LICENCE_LIFECYCLE_DAYS: u32 = 30;
    /// The range [`Msp::licence_lifecycle_days`] must be in.
    pub const LICENCE_LIFECYCLE_DAYS: std::ops::RangeInclusive<u32> = 1..=365;

    fn default_licence_read_every_hours() -> u32 {
        Self::DEFAULT_LICENCE_READ_EVERY_HOURS
    }

    fn default_licence_lifecycle_days() -> u32 {
        Self::DEFAULT_LICENCE_LIFECYCLE_DAYS
    }

    /// A new MSP with default settings.
    #[must_use]
    pub fn new(id: MspId, name: String, created_at: DateTime<Utc>) -> Self {
        Self {
            id,
            name,
            publisher_identifier: None,
            first_lookback_hours: Self::DEFAULT_FIRST_LOOKBACK_HOURS,
            backfill_ticket_max_age_hours: None,
            partner_tenant_id: None,
            partner_read_every_hours: Self::DEFAULT_PARTNER_READ_EVERY_HOURS,
            licence_read_every_hours: Self::DEFAULT_LICENCE_READ_EVERY_HOURS,
            licence_lifecycle_days: Self::DEFAULT_LICENCE_LIFECYCLE_DAYS,
            created_at,
        }
    }
}

/// A customer tenant an MSP looks after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    /// The customer's display name.
    pub name: String,
    /// The tenant's accepted mail domains (used to tell internal from external).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Emergency-access accounts that should never sign in in normal times (lowercase UPNs).
    #[serde(default)]
    pub break_glass_accounts: Vec<String>,
    /// The company this tenant's tickets are filed under, per destination (the PSA's company
    /// id, as text).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub company_links: std::collections::BTreeMap<crate::ids::DestinationId, String>,
    /// The ConnectWise company of a tenant stored before destinations were data; it counts as
    /// the link to the destination `connectwise` until a link is set.
    #[serde(default, rename = "connectwise_company_id", skip_serializing_if = "Option::is_none")]
    pub legacy_connectwise_company_id: Option<i64>,
    /// Whether Microsoft app credentials were stored for the tenant (the values never are here).
    #[serde(default)]
    pub m365_credentials_set: bool,
    /// The tenant consented to the MSP's multi-tenant app (a consent link): its credentials are
    /// the MSP app's ([`crate::ports::SecretName::msp_app`]), not a secret of its own.
    #[serde(default)]
    pub credentials_from_msp_app: bool,
    /// Hex SHA-256 of the tenant's webhook `authId` (the value Microsoft echoes in
    /// `Webhook-AuthID`); the raw value is never stored. `None` until a webhook is registered.
    #[serde(default)]
    pub webhook_auth_hash: Option<String>,
    /// Whether every enabled content type's subscription carries Vigil's webhook.
    #[serde(default)]
    pub webhook_registered: bool,
    /// The audit streams polled for this tenant; `None` means Vigil's defaults.
    #[serde(default)]
    pub streams: Option<Vec<AuditStream>>,
    /// When the MSP offboarded the tenant (`GET /v1/tenants/{id}/offboarding` tells how far it
    /// got): from then on it is not polled and webhooks for it are refused, until the purge
    /// deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboarded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The MSP's ConnectWise Manage settings as stored before destinations were data; read once
/// to carry them over to the destination `connectwise`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegacyConnectWiseSettings {
    pub api_root: String,
    pub board_id: Option<i64>,
    #[serde(default)]
    pub priorities: LegacyPriorityMap,
}

/// ConnectWise priority ids by alert severity, as stored before destinations were data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegacyPriorityMap {
    pub high: Option<i64>,
    pub medium: Option<i64>,
    pub low: Option<i64>,
    pub informational: Option<i64>,
}

/// ConnectWise API member keys as stored before destinations were data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegacyConnectWiseCredentials {
    pub company_id: String,
    pub public_key: String,
    pub private_key: SecretString,
    pub client_id: String,
}

impl Tenant {
    /// The tenant's company in `destination`, if linked.
    #[must_use]
    pub fn company_link(&self, destination: &crate::ids::DestinationId) -> Option<String> {
        self.company_links.get(destination).cloned().or_else(|| {
            (destination.as_str() == crate::destination::LEGACY_DESTINATION_ID)
                .then_some(self.legacy_connectwise_company_id)
                .flatten()
                .map(|id| id.to_string())
        })
    }
}

/// Microsoft Entra app credentials that reach one customer tenant. Stored only in the secret store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct M365AppCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
    /// The `PublisherIdentifier` to send for this tenant (its MSP's own Entra tenant id); not
    /// stored with the secret, filled in by the poller from the MSP. `None`: the deployment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_identifier: Option<String>,
    /// The MSP that stored these credentials; never stored with the secret, filled in by the
    /// poller from the secret's name. Part of the key of every token the credentials earn, so
    /// two MSPs naming the same tenant and app never share a cached token.
    #[serde(skip)]
    pub msp_id: Option<MspId>,
}

impl M365AppCredentials {
    /// Credentials of an app, not yet tied to an MSP.
    #[must_use]
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self { client_id: client_id.into(), client_secret, publisher_identifier: None, msp_id: None }
    }

    /// These credentials, as held by `msp_id`.
    #[must_use]
    pub fn held_by(mut self, msp_id: &MspId) -> Self {
        self.msp_id = Some(msp_id.clone());
        self
    }

    /// Identifies the credential (client id, case-insensitively, and secret) without revealing
    /// it: lowercase hex SHA-256. A cached token is only ever handed to the same fingerprint,
    /// so a changed or wrong secret never reuses a token another secret earned.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(self.client_id.to_ascii_lowercase().as_bytes());
        digest.update([0u8]);
        digest.update(self.client_secret.expose().as_bytes());
        hex::encode(digest.finalize())
    }
}

/// The SHA-256 of an API token; the only form in which tokens are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenHash(pub String);

/// An MSP's bearer token: `vgl_<msp id>_<43 random url-safe characters>`. The MSP id inside
/// only says where to look; the token is valid only if its hash is stored under that MSP.
#[derive(Debug)]
pub struct ApiToken {
    pub msp_id: MspId,
    pub hash: TokenHash,
}

/// Why a presented token is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed API token")]
pub struct MalformedToken;

impl ApiToken {
    /// Issues a new random token for an MSP; returns it (show once) and its stored form.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn issue(msp_id: &MspId) -> Result<(SecretString, ApiToken), getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let token = format!("vgl_{}_{}", msp_id, hex::encode(bytes));
        let parsed = ApiToken { msp_id: msp_id.clone(), hash: hash_token(&token) };
        Ok((SecretString::new(token), parsed))
    }

    /// Reads a presented token.
    ///
    /// # Errors
    /// When the token does not have the `vgl_<msp>_<secret>` shape.
    pub fn parse(token: &str) -> Result<ApiToken, MalformedToken> {
        let rest = token.strip_prefix("vgl_").ok_or(MalformedToken)?;
        let (msp, secret) = rest.rsplit_once('_').ok_or(MalformedToken)?;
        if secret.len() != 64 || !secret.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(MalformedToken);
        }
        let msp_id = MspId::parse(msp).map_err(|_: IdError| MalformedToken)?;
        Ok(ApiToken { msp_id, hash: hash_token(token) })
    }
}

/// The value stored in [`Tenant::webhook_auth_hash`] for a webhook `authId`: lowercase hex
/// SHA-256.
#[must_use]
pub fn webhook_auth_hash(auth_id: &str) -> String {
    hex::encode(Sha256::digest(auth_id.as_bytes()))
}

/// A new random webhook `authId` (64 hex characters).
///
/// # Errors
/// When the operating system's random source fails.
pub fn new_webhook_auth_id() -> Result<SecretString, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(SecretString::new(hex::encode(bytes)))
}

fn hash_token(token: &str) -> TokenHash {
    TokenHash(hex::encode(Sha256::digest(token.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_parse_back_to_their_msp_and_hash() {
        let msp = MspId::parse("acme-msp").unwrap();
        let (token, issued) = ApiToken::issue(&msp).unwrap();
        let parsed = ApiToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.msp_id, msp);
        assert_eq!(parsed.hash, issued.hash);
        assert!(!format!("{token:?}").contains("vgl_"));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in ["", "Bearer x", "vgl_acme", "vgl_ACME_abc", &format!("vgl_acme_{}", "z".repeat(64))] {
            assert!(ApiToken::parse(token).is_err(), "{token}");
        }
    }
}
