//! Exchange admin cmdlets (RecordType 1) and Security & Compliance Center cmdlets (RecordType 18).

use super::fields::{Fields, Malformed, ModifiedProperty, NameValues};
use super::{COMMON_FIELDS, EntityList};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// An Exchange admin cmdlet run (RecordType 1, `Operation` = the cmdlet name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExchangeAdmin {
    /// `ObjectId`: the object the cmdlet modified, e.g. `contoso.onmicrosoft.com\alice\Rule`.
    pub object_id: Option<String>,
    /// `Parameters`, from the Name/Value list or the one-string cmdlet line.
    pub parameters: NameValues,
    pub modified_object_resolved_name: Option<String>,
    pub modified_properties: Vec<ModifiedProperty>,
    /// `ExternalAccess`: run by Microsoft datacenter staff, a service account or a delegated
    /// (partner) administrator.
    pub external_access: Option<bool>,
    pub originating_server: Option<String>,
    pub organization_name: Option<String>,
    pub device_id: Option<String>,
    /// `TokenObjectId`: `oid` of the Entra token used.
    pub token_object_id: Option<String>,
    /// `TokenTenantId`: `tid` of the token; differs from `OrganizationId` for cross-tenant actors.
    pub token_tenant_id: Option<String>,
    pub app_id: Option<String>,
    pub client_app_id: Option<String>,
    pub session_id: Option<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ExchangeAdmin {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            object_id: f.string("ObjectId")?,
            parameters: f.name_values("Parameters")?,
            modified_object_resolved_name: f.string("ModifiedObjectResolvedName")?,
            modified_properties: f.modified_properties("ModifiedProperties")?,
            external_access: f.boolean("ExternalAccess")?,
            originating_server: f.string("OriginatingServer")?,
            organization_name: f.string("OrganizationName")?,
            device_id: f.string("DeviceId")?,
            token_object_id: f.string("TokenObjectId")?,
            token_tenant_id: f.string("TokenTenantId")?,
            app_id: f.string("AppId")?,
            client_app_id: f.string("ClientAppId")?,
            session_id: f.string("SessionId")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    /// The value of one cmdlet parameter (name compared case-insensitively).
    #[must_use]
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name)
    }

    /// The token was issued by another tenant than the one audited (`organization_id`): a
    /// partner or otherwise cross-tenant actor (an inference, see the reference 4.5).
    #[must_use]
    pub fn token_from_other_tenant(&self, organization_id: &str) -> bool {
        self.token_tenant_id.as_deref().is_some_and(|tid| !tid.eq_ignore_ascii_case(organization_id))
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        mailboxes_in_parameters(&self.parameters, out);
    }
}

/// A Security & Compliance Center cmdlet run (RecordType 18).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SccCmdlet {
    /// `ObjectId`: the object the cmdlet acted on.
    pub object_id: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub client_request_id: Option<String>,
    pub cmdlet_version: Option<String>,
    /// `EffectiveOrganization` (deprecated).
    pub effective_organization: Option<String>,
    pub user_service_plan: Option<String>,
    pub client_application: Option<String>,
    /// `Parameters`: a cmdlet-line string here (a Name/Value list is accepted too).
    pub parameters: NameValues,
    /// Fields not modelled here nor in the common schema (`NonPiiParameters`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SccCmdlet {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            object_id: f.string("ObjectId")?,
            start_time: f.time("StartTime")?,
            client_request_id: f.string("ClientRequestId")?,
            cmdlet_version: f.string("CmdletVersion")?,
            effective_organization: f.string("EffectiveOrganization")?,
            user_service_plan: f.string("UserServicePlan")?,
            client_application: f.string("ClientApplication")?,
            parameters: f.name_values("Parameters")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    /// The value of one cmdlet parameter (name compared case-insensitively).
    #[must_use]
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name)
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        mailboxes_in_parameters(&self.parameters, out);
    }
}

/// Every e-mail address in parameter values (`ForwardTo`, `RedirectTo`,
/// `ForwardingSmtpAddress "smtp:x@y"`, `Identity`, …) is a mailbox entity.
fn mailboxes_in_parameters(parameters: &NameValues, out: &mut EntityList) {
    for parameter in parameters.iter() {
        out.mailbox(&parameter.value);
    }
}
