//! Entra ID (Azure AD): directory changes (RecordType 8) and STS sign-ins (RecordType 15).

use super::fields::{Fields, Malformed, ModifiedProperty, NameValues};
use super::{COMMON_FIELDS, EntityList};
use serde::Serialize;
use serde_json::{Map, Value};

/// One identity of an `Actor` or `Target`: `{"ID": "...", "Type": 5}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub id: String,
    /// `IdentityType` as a number (inferred: 0 Claim, 1 Name, 2 Other, 3 PUID, 4 SPN, 5 UPN);
    /// informational only.
    pub kind: Option<i64>,
}

impl Identity {
    fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        let id = f.string("ID")?.ok_or_else(|| Malformed { field: "ID".into(), reason: "missing".into() })?;
        Ok(Self { id, kind: f.int("Type")? })
    }

    /// The identity looks like a user principal name or e-mail address.
    #[must_use]
    pub fn is_upn(&self) -> bool {
        super::looks_like_address(&self.id)
    }
}

/// The fields every Entra ID record shares (the base schema plus `Actor`/`Target`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AadEvent {
    /// `AzureActiveDirectoryEventType` (inferred: 0 AccountLogon, 1 AzureApplicationAuditEvent).
    pub event_type: Option<i64>,
    /// `ExtendedProperties` (`UserAgent`, `RequestType`, `ResultStatusDetail`, …).
    pub extended_properties: NameValues,
    pub modified_properties: Vec<ModifiedProperty>,
    /// Who performed the action (several identities of the same actor).
    pub actor: Vec<Identity>,
    /// `ActorContextId`: the actor's tenant; differs from the target's for partner actors.
    pub actor_context_id: Option<String>,
    pub actor_ip_address: Option<String>,
    pub inter_systems_id: Option<String>,
    /// `IntraSystemId` (the docs spell it `IntraSystemsId`; both are read).
    pub intra_system_id: Option<String>,
    pub support_ticket_id: Option<String>,
    /// The object acted upon.
    pub target: Vec<Identity>,
    pub target_context_id: Option<String>,
}

impl AadEvent {
    fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            event_type: f.int("AzureActiveDirectoryEventType")?,
            extended_properties: f.name_values("ExtendedProperties")?,
            modified_properties: f.modified_properties("ModifiedProperties")?,
            actor: f.objects("Actor", Identity::read)?,
            actor_context_id: f.string("ActorContextId")?,
            actor_ip_address: f.string("ActorIpAddress")?,
            inter_systems_id: f.string("InterSystemsId")?,
            intra_system_id: {
                let wire = f.string("IntraSystemId")?;
                let documented = f.string("IntraSystemsId")?;
                wire.or(documented)
            },
            support_ticket_id: f.string("SupportTicketId")?,
            target: f.objects("Target", Identity::read)?,
            target_context_id: f.string("TargetContextId")?,
        })
    }

    /// The actor's user principal name, when one of its identities is one.
    #[must_use]
    pub fn actor_upn(&self) -> Option<&str> {
        self.actor.iter().find(|identity| identity.is_upn()).map(|identity| identity.id.as_str())
    }

    /// The target's user principal name, when one of its identities is one.
    #[must_use]
    pub fn target_upn(&self) -> Option<&str> {
        self.target.iter().find(|identity| identity.is_upn()).map(|identity| identity.id.as_str())
    }

    /// The actor belongs to another tenant than the target (`ActorContextId` ≠
    /// `TargetContextId`): typically a partner (GDAP/DAP) technician.
    #[must_use]
    pub fn is_cross_tenant(&self) -> bool {
        match (&self.actor_context_id, &self.target_context_id) {
            (Some(actor), Some(target)) => !actor.eq_ignore_ascii_case(target),
            _ => false,
        }
    }

    /// One `ExtendedProperties` value (name compared case-insensitively).
    #[must_use]
    pub fn extended_property(&self, name: &str) -> Option<&str> {
        self.extended_properties.get(name)
    }

    /// One `ModifiedProperties` entry (name compared case-insensitively).
    #[must_use]
    pub fn modified_property(&self, name: &str) -> Option<&ModifiedProperty> {
        self.modified_properties.iter().find(|property| property.name.eq_ignore_ascii_case(name))
    }

    fn collect_entities(&self, out: &mut EntityList) {
        for identity in self.actor.iter().chain(&self.target).filter(|identity| identity.is_upn()) {
            out.user(&identity.id);
        }
        if let Some(ip) = &self.actor_ip_address {
            out.ip(ip);
        }
    }
}

/// A directory change (RecordType 8): users, groups, roles, applications, policies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectoryChange {
    /// `ObjectId`: the target, e.g. a UPN.
    pub object_id: Option<String>,
    #[serde(flatten)]
    pub aad: AadEvent,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DirectoryChange {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self { object_id: f.string("ObjectId")?, aad: AadEvent::read(f)?, extra: f.extra(COMMON_FIELDS) })
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        self.aad.collect_entities(out);
        if let Some(object) = self.object_id.as_deref().filter(|id| super::looks_like_address(id)) {
            out.user(object);
        }
    }
}

/// An STS sign-in (RecordType 15, `UserLoggedIn` / `UserLoginFailed`). `ResultStatus` says
/// nothing about the sign-in itself: read [`StsLogon::is_failure`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StsLogon {
    #[serde(flatten)]
    pub aad: AadEvent,
    /// `ApplicationId`: the application signed into.
    pub application_id: Option<String>,
    pub client: Option<String>,
    /// `DeviceProperties` (`OS`, `BrowserType`, `IsCompliant`, `TrustType`, …).
    pub device_properties: NameValues,
    /// `ErrorCode` (docs) or `ErrorNumber` (wire): the AADSTS number, `"0"` on success.
    pub error_code: Option<String>,
    /// `LogonError`: the readable failure reason, e.g. `InvalidUserNameOrPassword`.
    pub logon_error: Option<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StsLogon {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            aad: AadEvent::read(f)?,
            application_id: f.string("ApplicationId")?,
            client: f.string("Client")?,
            device_properties: f.name_values("DeviceProperties")?,
            error_code: {
                let documented = f.string("ErrorCode")?;
                let wire = f.string("ErrorNumber")?;
                documented.or(wire)
            },
            logon_error: f.string("LogonError")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    /// The sign-in failed: a non-zero error code or a logon error. (Combine with the operation,
    /// `UserLoginFailed`, when one is missing.)
    #[must_use]
    pub fn is_failure(&self) -> bool {
        self.error_code.as_deref().is_some_and(|code| code.trim() != "0") || self.logon_error.is_some()
    }

    /// `UserAgent` from `ExtendedProperties`.
    #[must_use]
    pub fn user_agent(&self) -> Option<&str> {
        self.aad.extended_property("UserAgent")
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        self.aad.collect_entities(out);
    }
}
