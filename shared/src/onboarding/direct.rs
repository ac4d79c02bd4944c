//! Direct onboarding: the MSP app granted its app roles in a customer tenant by a partner
//! technician's delegated session (the "secure application model" MSP tools use), instead of a
//! consent link the customer's administrator follows.
//!
//! The MSP stores a technician's refresh token for its multi-tenant app (write-only,
//! [`crate::ports::SecretName::delegated_credential`]). To onboard a customer Vigil redeems it
//! for a token of the *customer* tenant — which Microsoft issues only while the technician's
//! GDAP relationship with that customer is active — then, in that tenant: makes the MSP app's
//! service principal if it is missing, finds the resource service principals and the ids of
//! the app roles Vigil needs ([`REQUIRED_APP_ROLES`], by their `value`), and grants each one not
//! yet granted. Every step is idempotent, so a retry after a crash between grants finishes the
//! rest. What each step did, or Microsoft's error text when it failed, is kept per customer
//! ([`DirectStep`]); a customer the technician's roles cannot grant for gets a consent link.
//! AWS-free.

use serde::{Deserialize, Serialize};

/// The app id of Microsoft Graph's service principal.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// The app id of the Office 365 Management APIs' service principal.
pub const MANAGEMENT_APP_ID: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";

/// The application permissions Vigil needs in a customer tenant: (resource app id, app role
/// value). The same ones the consent link asks for (`shared/reference/microsoft-apis.md` §1.7);
/// role ids are read from each resource's `appRoles` at run time, never hard-coded.
pub const REQUIRED_APP_ROLES: [(&str, &str); 6] = [
    (MANAGEMENT_APP_ID, "ActivityFeed.Read"),
    (GRAPH_APP_ID, "SecurityAlert.Read.All"),
    (GRAPH_APP_ID, "AuditLog.Read.All"),
    (GRAPH_APP_ID, "Directory.Read.All"),
    (GRAPH_APP_ID, "Organization.Read.All"),
    (GRAPH_APP_ID, "User.Read.All"),
];

/// Longest refresh token accepted, in characters (Microsoft's are opaque, around 1–2 kB).
pub const REFRESH_TOKEN_CHARS: usize = 8192;
/// Longest error text from Microsoft kept per step, in characters.
pub const STEP_ERROR_CHARS: usize = 500;

/// A service principal in a customer tenant, as direct onboarding reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipal {
    /// Its object id in the tenant.
    pub id: String,
    /// The app it stands for.
    pub app_id: String,
    /// The app roles it defines: (id, value).
    pub app_roles: Vec<(String, String)>,
}

impl ServicePrincipal {
    /// The id of the app role named `value`.
    #[must_use]
    pub fn role_id(&self, value: &str) -> Option<&str> {
        self.app_roles.iter().find(|(_, v)| v == value).map(|(id, _)| id.as_str())
    }
}

/// An app role granted to a service principal: (resource service principal id, app role id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleGrant {
    pub resource_id: String,
    pub app_role_id: String,
}

/// What one step of a direct onboarding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    /// Done now.
    Done,
    /// Nothing to do: it was so already (an earlier attempt, or the tenant itself).
    AlreadyDone,
    /// Failed; `error` says what Microsoft answered.
    Failed,
}

/// One step of a direct onboarding and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectStep {
    /// `token`, `store-refresh-token`, `service-principal`, `grant {permission}`,
    /// `access-test`.
    pub step: String,
    pub result: StepResult,
    /// Microsoft's error code and text when the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DirectStep {
    #[must_use]
    pub fn done(step: impl Into<String>) -> Self {
        Self { step: step.into(), result: StepResult::Done, error: None }
    }

    #[must_use]
    pub fn already(step: impl Into<String>) -> Self {
        Self { step: step.into(), result: StepResult::AlreadyDone, error: None }
    }

    #[must_use]
    pub fn failed(step: impl Into<String>, error: &impl std::fmt::Display) -> Self {
        Self { step: step.into(), result: StepResult::Failed, error: Some(super::clip(&error.to_string(), STEP_ERROR_CHARS)) }
    }
}

/// The app roles of [`REQUIRED_APP_ROLES`] that `grants` lacks, each with the resource
/// service principal that defines it and the role id: (permission, resource id, app role id).
///
/// # Errors
/// The permission no resource defines (a tenant whose resource principal lacks the role).
pub fn missing_grants<'a>(
    resources: &'a [ServicePrincipal],
    grants: &[RoleGrant],
) -> Result<Vec<(&'static str, &'a str, &'a str)>, &'static str> {
    let mut missing = Vec::new();
    for (app_id, permission) in REQUIRED_APP_ROLES {
        let resource = resources.iter().find(|r| r.app_id.eq_ignore_ascii_case(app_id)).ok_or(permission)?;
        let role_id = resource.role_id(permission).ok_or(permission)?;
        if !grants.iter().any(|g| g.resource_id == resource.id && g.app_role_id == role_id) {
            missing.push((permission, resource.id.as_str(), role_id));
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Vec<ServicePrincipal> {
        vec![
            ServicePrincipal {
                id: "sp-graph".into(),
                app_id: GRAPH_APP_ID.into(),
                app_roles: REQUIRED_APP_ROLES
                    .iter()
                    .filter(|(app, _)| *app == GRAPH_APP_ID)
                    .map(|(_, v)| (format!("role-{v}"), (*v).to_owned()))
                    .collect(),
            },
            ServicePrincipal {
                id: "sp-mgmt".into(),
                app_id: MANAGEMENT_APP_ID.into(),
                app_roles: vec![("role-af".into(), "ActivityFeed.Read".into()), ("role-dlp".into(), "ActivityFeed.ReadDlp".into())],
            },
        ]
    }

    #[test]
    fn every_required_role_is_missing_from_a_principal_without_grants_each_on_its_own_resource() {
        let resources = resources();
        let missing = missing_grants(&resources, &[]).unwrap();
        assert_eq!(missing.len(), REQUIRED_APP_ROLES.len());
        assert_eq!(missing[0], ("ActivityFeed.Read", "sp-mgmt", "role-af"));
        assert!(missing[1..].iter().all(|(_, resource, _)| *resource == "sp-graph"));
    }

    #[test]
    fn a_role_granted_already_is_not_missing_but_the_same_role_id_on_another_resource_does_not_count() {
        let resources = resources();
        let grants = vec![
            RoleGrant { resource_id: "sp-mgmt".into(), app_role_id: "role-af".into() },
            RoleGrant { resource_id: "sp-mgmt".into(), app_role_id: "role-User.Read.All".into() },
        ];
        let missing = missing_grants(&resources, &grants).unwrap();
        assert_eq!(missing.len(), REQUIRED_APP_ROLES.len() - 1);
        assert!(missing.iter().any(|(p, _, _)| *p == "User.Read.All"), "granted on the wrong resource");
    }

    #[test]
    fn a_resource_or_role_the_tenant_lacks_is_named() {
        let mut resources = resources();
        resources[1].app_roles.clear();
        assert_eq!(missing_grants(&resources, &[]), Err("ActivityFeed.Read"));
        assert_eq!(missing_grants(&resources[..1], &[]), Err("ActivityFeed.Read"));
    }

    #[test]
    fn a_failed_step_keeps_a_clipped_error() {
        let step = DirectStep::failed("token", &"x".repeat(STEP_ERROR_CHARS + 10));
        assert_eq!(step.error.unwrap().len(), STEP_ERROR_CHARS);
        assert_eq!(serde_json::to_value(DirectStep::already("grant User.Read.All")).unwrap()["result"], "already_done");
    }
}
