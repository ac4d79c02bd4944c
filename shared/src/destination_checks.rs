//! What each destination kind's settings and credentials must be before they are stored: the
//! one place, beside the kinds themselves ([`crate::destination`]), that knows each kind's
//! rules, so the destination use cases stay vendor-neutral. Every refusal names its field
//! (`settings.api_root: must use https (not http)`).

use crate::connectors::destination_url::DestinationPolicy;
use crate::destination::{
    AutotaskSettings, DestinationCredentials, DestinationKind, DestinationSettings, EmailSettings, HaloPsaSettings, TigerpawSettings,
    WebhookSettings, check_signing_secret, service_hosts,
};
use crate::limits::{self, LimitError};

/// Why settings or credentials are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(detail: impl Into<String>) -> CheckError {
    CheckError::Invalid(detail.into())
}

/// A reference to something in the PSA: not blank, at most [`limits::PSA_REFERENCE_CHARS`].
pub fn reference(field: &str, value: Option<&str>) -> Result<(), LimitError> {
    let Some(value) = value else { return Ok(()) };
    if value.trim().is_empty() {
        return Err(LimitError::Blank { field: field.to_owned() });
    }
    limits::chars(field, value, limits::PSA_REFERENCE_CHARS)
}

fn address(field: &str, value: &str, policy: DestinationPolicy) -> Result<url::Url, CheckError> {
    policy.validate(value).map_err(|refused| invalid(format!("{field}: {refused}")))
}

/// Checks a kind's settings: its address under the destination URL policy (a ConnectWise root
/// must be the `/apis/3.0` one), every PSA reference, each kind's own bounds.
///
/// # Errors
/// The first refusal, naming its field.
pub fn check_settings(settings: &DestinationSettings, policy: DestinationPolicy) -> Result<(), CheckError> {
    match settings {
        DestinationSettings::ConnectWise { api_root, ticket_type, source } => {
            let url = address("settings.api_root", api_root, policy)?;
            if !url.path().contains("/apis/3.0") {
                return Err(invalid(
                    "settings.api_root: must be the REST API root, ending in /apis/3.0 \
                     (e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0)",
                ));
            }
            reference("settings.ticket_type", ticket_type.as_deref())?;
            reference("settings.source", source.as_deref())?;
        }
        DestinationSettings::Autotask(AutotaskSettings {
            zone_url,
            source,
            issue_type,
            sub_issue_type,
            ticket_type,
            ticket_category,
            new_status,
            note_type,
            note_publish,
            due_in_hours,
        }) => {
            if let Some(zone_url) = zone_url {
                address("settings.zone_url", zone_url, policy)?;
            }
            for (field, value) in [
                ("settings.source", source),
                ("settings.issue_type", issue_type),
                ("settings.sub_issue_type", sub_issue_type),
                ("settings.ticket_type", ticket_type),
                ("settings.ticket_category", ticket_category),
                ("settings.new_status", new_status),
                ("settings.note_type", note_type),
                ("settings.note_publish", note_publish),
            ] {
                reference(field, value.as_deref())?;
            }
            if !(1..=limits::DUE_IN_HOURS_MAX).contains(due_in_hours) {
                return Err(invalid(format!("settings.due_in_hours: 1 to {}", limits::DUE_IN_HOURS_MAX)));
            }
        }
        DestinationSettings::HaloPsa(HaloPsaSettings { url, tenant, ticket_type, note_outcome }) => {
            address("settings.url", url, policy)?;
            reference("settings.tenant", tenant.as_deref())?;
            reference("settings.ticket_type", ticket_type.as_deref())?;
            reference("settings.note_outcome", note_outcome.as_deref())?;
        }
        DestinationSettings::Tigerpaw(TigerpawSettings { url, auth: _, rep_number, service_order_type, new_status, note_topic }) => {
            address("settings.url", url, policy)?;
            for (field, value) in [
                ("settings.rep_number", rep_number),
                ("settings.service_order_type", service_order_type),
                ("settings.new_status", new_status),
                ("settings.note_topic", note_topic),
            ] {
                reference(field, value.as_deref())?;
            }
        }
        DestinationSettings::Teams {} | DestinationSettings::Slack {} => {}
        DestinationSettings::Webhook(WebhookSettings { url, rotation_grace_hours }) => {
            address("settings.url", url, policy)?;
            if !(1..=limits::ROTATION_GRACE_HOURS_MAX).contains(rotation_grace_hours) {
                return Err(invalid(format!("settings.rotation_grace_hours: 1 to {}", limits::ROTATION_GRACE_HOURS_MAX)));
            }
        }
        DestinationSettings::Email(EmailSettings { recipients, subject_prefix }) => {
            if recipients.is_empty() {
                return Err(invalid("settings.recipients: at least one address"));
            }
            limits::entries("settings.recipients", recipients, limits::EMAIL_RECIPIENTS_MAX)?;
            for (i, recipient) in recipients.iter().enumerate() {
                crate::mail::check_address(recipient).map_err(|why| invalid(format!("settings.recipients[{i}]: {why}")))?;
            }
            if let Some(prefix) = subject_prefix {
                limits::chars("settings.subject_prefix", prefix, limits::SUBJECT_PREFIX_CHARS)?;
                if prefix.chars().any(char::is_control) {
                    return Err(invalid("settings.subject_prefix: must be one line"));
                }
            }
        }
    }
    Ok(())
}

/// Checks what credentials say beyond their lengths: a chat webhook URL names its service's
/// host (under the destination URL policy), a signing secret has the Standard Webhooks form.
///
/// # Errors
/// The first refusal, naming its field.
pub fn check_credentials(credentials: &DestinationCredentials, policy: DestinationPolicy) -> Result<(), CheckError> {
    let kind = credentials.kind();
    match credentials {
        DestinationCredentials::Teams { workflow_url: url } | DestinationCredentials::Slack { webhook_url: url } => {
            let field = if kind == DestinationKind::Teams { "workflow_url" } else { "webhook_url" };
            policy
                .validate_service(url.expose(), service_hosts(kind))
                .map_err(|refused| invalid(format!("credentials.{field}: {refused}")))?;
        }
        DestinationCredentials::Webhook { secret, previous_secret, .. } => {
            check_signing_secret(secret.expose()).map_err(|why| invalid(format!("credentials.secret: {why}")))?;
            if let Some(previous) = previous_secret {
                check_signing_secret(previous.expose()).map_err(|why| invalid(format!("credentials.previous_secret: {why}")))?;
            }
        }
        DestinationCredentials::ConnectWise { .. }
        | DestinationCredentials::Autotask { .. }
        | DestinationCredentials::HaloPsa { .. }
        | DestinationCredentials::Tigerpaw { .. } => {}
    }
    Ok(())
}
