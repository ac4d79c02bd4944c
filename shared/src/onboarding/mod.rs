//! Onboarding customers by consent link, with an access test, and finding them in the MSP's
//! partner tenant. The MSP registers its multi-tenant Entra app once (one secret per MSP app,
//! [`crate::ports::SecretName::msp_app`]); each customer gets an admin-consent link whose signed,
//! expiring, single-use `state` ([`state`]) is the only authentication Microsoft's redirect
//! back carries. A consented tenant takes its credentials from the MSP app. The access test
//! ([`access_test`]) tries every capability Vigil needs and says, per capability, what Microsoft
//! answered and how to fix it. Discovery ([`discovery`]) lists the partner tenant's customers
//! with their GDAP roles and whether Vigil already watches them. AWS-free.

pub mod access_test;
pub mod direct;
pub mod discovery;
pub mod state;

use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use access_test::{AccessTest, Capability, CapabilityCheck};
pub use discovery::{BulkItem, BulkJob, BulkMethod, DiscoveredCustomer};

/// How long a consent link stays valid when the request names no lifetime, in hours.
pub const DEFAULT_LINK_HOURS: u32 = 72;
/// The range a consent link's lifetime must be in, in hours (up to 30 days).
pub const LINK_HOURS: std::ops::RangeInclusive<u32> = 1..=720;
/// How long a used or expired link's record is kept to show its outcome, in days.
pub const LINK_RECORD_DAYS: i64 = 30;
/// Most customers one bulk onboarding takes.
pub const BULK_MAX: usize = 50;
/// Longest `error` / `error_description` from Microsoft's failure redirect kept, in characters.
pub const REDIRECT_ERROR_CHARS: usize = 500;

/// The public part of the MSP's multi-tenant Entra app (the secret is only in the secret store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MspApp {
    /// The app's (client) id; public, it is in every consent link.
    pub client_id: String,
    /// Where Microsoft sends the administrator back after consent (register it in Entra).
    pub redirect_uri: String,
    pub registered_at: DateTime<Utc>,
}

/// Where a consent link stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LinkStatus {
    /// Sent, not used yet.
    Issued,
    /// The administrator consented and Microsoft confirmed the tenant: it is watched.
    Consented { tenant_id: TenantId },
    /// The administrator declined or Microsoft failed the consent (its failure redirect).
    Declined { error: String, description: String },
    /// The redirect was refused: a tenant other than the one the link was made for, or one
    /// that Microsoft's token did not confirm.
    Refused { reason: String },
    /// The consent came back but no token could be obtained for the tenant (the access test
    /// says why).
    Unconfirmed { tenant_id: TenantId, error: String },
}

/// A consent link the MSP issued, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentLink {
    /// The state's nonce: the link's id.
    pub id: String,
    /// The URL to send to the customer's administrator.
    pub url: String,
    /// The customer's name, as the tenant will be called once it consents.
    pub customer_name: String,
    /// The tenant the link is bound to; a consent from another tenant is refused.
    pub expected_tenant: Option<TenantId>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The bulk onboarding the link was made by, if any.
    #[serde(default)]
    pub bulk_job: Option<String>,
    pub status: LinkStatus,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
}

/// What Microsoft's redirect to Vigil carried (the query string, parsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentRedirect {
    pub state: Option<String>,
    pub tenant: Option<String>,
    pub admin_consent: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl ConsentRedirect {
    /// Reads the redirect's query string (`tenant`, `state`, `admin_consent`, or `error`,
    /// `error_description`); unknown parameters are ignored, a repeated one keeps its first value.
    #[must_use]
    pub fn parse(query: &str) -> Self {
        let mut redirect = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "state" => &mut redirect.state,
                "tenant" => &mut redirect.tenant,
                "admin_consent" => &mut redirect.admin_consent,
                "error" => &mut redirect.error,
                "error_description" => &mut redirect.error_description,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        redirect
    }
}

/// Cuts `text` to `max` characters.
#[must_use]
pub fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_redirect_is_read_with_its_escapes() {
        let r = ConsentRedirect::parse("tenant=5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11&state=v1.ab.cd&admin_consent=True&x=1&tenant=other");
        assert_eq!(r.tenant.as_deref(), Some("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11"), "the first value wins");
        assert_eq!(r.state.as_deref(), Some("v1.ab.cd"));
        assert_eq!(r.admin_consent.as_deref(), Some("True"));
        let failed = ConsentRedirect::parse("error=permission_denied&error_description=AADSTS65004%3A+User+declined&state=s");
        assert_eq!(failed.error.as_deref(), Some("permission_denied"));
        assert_eq!(failed.error_description.as_deref(), Some("AADSTS65004: User declined"));
    }

    #[test]
    fn link_status_is_tagged_by_its_name() {
        let link = ConsentLink {
            id: "n".into(),
            url: "https://login/x".into(),
            customer_name: "Contoso".into(),
            expected_tenant: None,
            issued_at: DateTime::<Utc>::MIN_UTC,
            expires_at: DateTime::<Utc>::MIN_UTC,
            bulk_job: None,
            status: LinkStatus::Declined { error: "permission_denied".into(), description: "no".into() },
            updated_at: DateTime::<Utc>::MIN_UTC,
        };
        let json = serde_json::to_value(&link).unwrap();
        assert_eq!(json["status"]["status"], "declined");
        assert_eq!(json["status"]["error"], "permission_denied");
        assert_eq!(serde_json::from_value::<ConsentLink>(json).unwrap(), link);
    }
}
