//! The access test's vocabulary: the capabilities Vigil needs in a customer tenant, one check's
//! outcome with Microsoft's own error text, and the fix for each failure — which permission of
//! the app registration, or which consent, is missing. The test itself calls Microsoft through
//! the ports ([`crate::services::onboarding`]); what a failure *means* is decided here, once.

use crate::error::SourceError;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One thing Vigil does in a customer tenant, in the order the test tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// An app-only token from the tenant (client credentials with the MSP app): needs the
    /// tenant's admin consent.
    Token,
    /// Starting the Office 365 Management Activity subscription (`Audit.General`):
    /// `ActivityFeed.Read`.
    ManagementActivity,
    /// Reading Microsoft Graph security alerts (`alerts_v2`): `SecurityAlert.Read.All`.
    SecurityAlerts,
    /// Reading licences (`subscribedSkus`, `directory/subscriptions`): `Organization.Read.All`.
    Licences,
    /// Reading Entra ID sign-in logs (`auditLogs/signIns`): `AuditLog.Read.All` and
    /// `Directory.Read.All`, and an Entra ID P1/P2 licence in the tenant.
    SignIns,
}

impl Capability {
    /// Every capability, in test order.
    pub const ALL: [Capability; 5] = [Self::Token, Self::ManagementActivity, Self::SecurityAlerts, Self::Licences, Self::SignIns];

    /// The application permission(s) the capability needs on the app registration.
    #[must_use]
    pub fn permission(self) -> &'static str {
        match self {
            Self::Token => "admin consent to the app in the customer tenant",
            Self::ManagementActivity => "ActivityFeed.Read (Office 365 Management APIs)",
            Self::SecurityAlerts => "SecurityAlert.Read.All (Microsoft Graph)",
            Self::Licences => "Organization.Read.All (Microsoft Graph)",
            Self::SignIns => "AuditLog.Read.All and Directory.Read.All (Microsoft Graph)",
        }
    }
}

/// One capability's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CapabilityCheck {
    pub capability: Capability,
    pub passed: bool,
    /// Microsoft's answer (its code and text) when it failed.
    pub error: Option<String>,
    /// What to do about the failure: which permission or which consent.
    pub fix: Option<String>,
}

/// The outcome of one access test of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessTest {
    pub tenant_id: TenantId,
    pub ran_at: DateTime<Utc>,
    /// Every capability passed.
    pub passed: bool,
    /// One per [`Capability`], in test order.
    pub checks: Vec<CapabilityCheck>,
}

impl AccessTest {
    /// The test of `tenant_id` from its checks.
    #[must_use]
    pub fn new(tenant_id: TenantId, ran_at: DateTime<Utc>, checks: Vec<CapabilityCheck>) -> Self {
        Self { tenant_id, ran_at, passed: checks.iter().all(|c| c.passed), checks }
    }

    /// Whether `capability` passed.
    #[must_use]
    pub fn passed(&self, capability: Capability) -> bool {
        self.checks.iter().any(|c| c.capability == capability && c.passed)
    }
}

/// The fix that asks for a permission and a fresh consent.
fn grant_and_reconsent(capability: Capability) -> String {
    format!(
        "Add the application permission {} to the app registration (Entra admin center > App registrations > API permissions), then have the tenant's administrator consent again through a new consent link.",
        capability.permission()
    )
}

impl CapabilityCheck {
    /// A capability that worked.
    #[must_use]
    pub fn pass(capability: Capability) -> Self {
        Self { capability, passed: true, error: None, fix: None }
    }

    /// A capability not tried because the token could not be obtained.
    #[must_use]
    pub fn skipped(capability: Capability) -> Self {
        Self {
            capability,
            passed: false,
            error: Some("not tried: no token could be obtained for the tenant".into()),
            fix: Some("Fix the token first (see the token check).".into()),
        }
    }

    /// A token for the tenant was issued by another tenant than the one asked for.
    #[must_use]
    pub fn wrong_tenant(asked: &TenantId, issued_by: &str) -> Self {
        Self {
            capability: Capability::Token,
            passed: false,
            error: Some(format!("the token asked of tenant {asked} was issued by tenant {issued_by}")),
            fix: Some("Check the tenant id; consent links are bound to the tenant Microsoft confirms.".into()),
        }
    }

    /// The outcome of trying `capability`: the port's error, or `None` when it worked.
    #[must_use]
    pub fn from_result(capability: Capability, error: Option<&SourceError>) -> Self {
        let Some(error) = error else {
            return Self::pass(capability);
        };
        let (text, code) = match error {
            SourceError::AccessRefused { code, message }
            | SourceError::Rejected { code, message }
            | SourceError::WindowRefused { code, message } => (format!("{code}: {message}"), code.as_str()),
            SourceError::Throttled { .. } | SourceError::Unavailable(_) => (error.to_string(), ""),
        };
        let fix = match (capability, error) {
            (_, SourceError::Throttled { .. } | SourceError::Unavailable(_)) => {
                "Microsoft was unavailable or throttled the test: run the access test again.".to_owned()
            }
            (Capability::Token, _) => token_fix(code),
            (Capability::SignIns, _) if code.contains("NonPremium") => {
                "The tenant needs an Entra ID P1 or P2 licence for sign-in logs; nothing to change in the app.".to_owned()
            }
            (capability, _) => grant_and_reconsent(capability),
        };
        Self { capability, passed: false, error: Some(text), fix: Some(fix) }
    }
}

/// The fix of a token request Microsoft refused, by its AADSTS code.
fn token_fix(code: &str) -> String {
    let number = code.trim_start_matches("AADSTS").parse::<u64>().unwrap_or(0);
    match number {
        700_016 | 65_001 | 500_011 => "Admin consent is missing or was revoked in this tenant: send its administrator a consent link (POST /v1/onboarding/consent-links) and have them accept.".into(),
        7_000_215 | 7_000_222 | 7_000_218 | 7_000_112 => "The MSP app's client secret is wrong, expired or the app is disabled: create a new secret in Entra and register the app again (PUT /v1/onboarding/app).".into(),
        90_002 => "Microsoft does not know this tenant id (wrong id, or another cloud): check it.".into(),
        _ => "Microsoft refused the token: check the app registration and the tenant's consent.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str) -> SourceError {
        SourceError::AccessRefused { code: code.into(), message: "Microsoft's text".into() }
    }

    #[test]
    fn a_missing_consent_is_named_with_microsofts_text_and_the_consent_fix() {
        let check = CapabilityCheck::from_result(Capability::Token, Some(&refused("AADSTS700016")));
        assert!(!check.passed);
        assert_eq!(check.error.as_deref(), Some("AADSTS700016: Microsoft's text"));
        assert!(check.fix.unwrap().contains("consent link"));
    }

    #[test]
    fn a_bad_secret_asks_for_a_new_secret_not_a_consent() {
        let fix = CapabilityCheck::from_result(Capability::Token, Some(&refused("AADSTS7000215"))).fix.unwrap();
        assert!(fix.contains("new secret"), "{fix}");
    }

    #[test]
    fn each_api_capability_names_its_own_permission() {
        for (capability, permission) in [
            (Capability::ManagementActivity, "ActivityFeed.Read"),
            (Capability::SecurityAlerts, "SecurityAlert.Read.All"),
            (Capability::Licences, "Organization.Read.All"),
            (Capability::SignIns, "AuditLog.Read.All"),
        ] {
            let fix = CapabilityCheck::from_result(capability, Some(&refused("Authorization_RequestDenied"))).fix.unwrap();
            assert!(fix.contains(permission), "{capability:?}: {fix}");
            assert!(fix.contains("consent again"), "{fix}");
        }
    }

    #[test]
    fn a_tenant_without_premium_is_told_so_for_sign_ins() {
        let error =
            SourceError::AccessRefused { code: "Authentication_RequestFromNonPremiumTenantOrB2CTenant".into(), message: "m".into() };
        assert!(CapabilityCheck::from_result(Capability::SignIns, Some(&error)).fix.unwrap().contains("P1 or P2"));
    }

    #[test]
    fn a_throttled_check_is_a_failure_to_retry() {
        let check = CapabilityCheck::from_result(Capability::Licences, Some(&SourceError::Throttled { retry_after: None }));
        assert!(!check.passed);
        assert!(check.fix.unwrap().contains("again"));
    }

    #[test]
    fn the_test_passes_only_when_every_check_passes() {
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let all: Vec<_> = Capability::ALL.into_iter().map(CapabilityCheck::pass).collect();
        assert!(AccessTest::new(tenant.clone(), Utc::now(), all.clone()).passed);
        let mut one_failed = all;
        one_failed[3] = CapabilityCheck::from_result(Capability::Licences, Some(&refused("x")));
        let test = AccessTest::new(tenant, Utc::now(), one_failed);
        assert!(!test.passed);
        assert!(test.passed(Capability::SignIns) && !test.passed(Capability::Licences));
    }
}
