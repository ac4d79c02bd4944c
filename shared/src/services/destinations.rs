//! An MSP's destinations behind the config API: create or replace (settings, routing, name,
//! enabled flag, request share and write-only credentials), read, list, delete, a dry-run
//! `test` against the PSA, lookups in the PSA (companies, boards or queues, priorities,
//! statuses, contacts), and the tenant company links that let held alerts go out.
//!
//! Every method takes the authenticated caller's MSP id; another MSP's destination is simply
//! not found. Credentials go to the secret store under [`SecretName::destination`] as JSON and
//! only the `credentials_set` flag is kept with the destination. Everything a caller sends is
//! checked before anything is written ([`validate`]), and each refusal names its field
//! (`settings.api_root: must use https (not http)`), answered 422 by the API.
//!
//! Deleting a destination removes its record only: its secret stays in the secret store (the
//! [`SecretStore`] port cannot delete, and a destination created again under the same id must
//! send credentials, which overwrite it), and so do the tenants' company links to it and the
//! alerts' deliveries to it (the alert view keeps showing the tickets that were filed).

use super::admin::{AdminError, AdminService};
use crate::access::{Access, Permission};
use crate::connectors::destination_url::DestinationPolicy;
use crate::destination::{Destination, DestinationCredentials, DestinationSettings, Routing, UnlinkedTenant};
use crate::destination_checks::reference;
use crate::error::{SecretError, SinkError};
use crate::ids::{DestinationId, MspId, TenantId};
use crate::limits::{self, LimitError};
use crate::messages::AlertChangedMessage;
use crate::ports::{DestinationStore, Lookup, LookupItem, MessageQueue, SecretName, SinkSetupError, TicketSystemProvider};
use crate::secret::SecretString;
use crate::tenant::Tenant;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Longest PSA complaint passed on to the caller (characters).
pub const PSA_COMPLAINT_CHARS: usize = 300;

/// `PUT /v1/destinations/{id}`: the whole destination. Credentials may be left out when
/// replacing a destination of the same kind (the stored ones stay); creating one needs them.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DestinationRequest {
    pub name: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub settings: DestinationSettings,
    #[serde(default)]
    pub routing: Routing,
    #[serde(default)]
    pub requests_per_hour: Option<u32>,
    #[serde(default)]
    pub credentials: Option<DestinationCredentials>,
}

fn enabled_by_default() -> bool {
    true
}

/// What `test` found: `ok` when the PSA accepted the credentials and knows every board or
/// queue, priority and status the destination names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestinationTest {
    pub ok: bool,
    pub problems: Vec<String>,
}

/// The destination use cases.
pub struct DestinationsService {
    /// Tenants (company links), alerts, secrets and the clock.
    pub admin: Arc<AdminService>,
    pub destinations: Arc<dyn DestinationStore>,
    /// Builds a destination's PSA client (for `test` and lookups).
    pub systems: Arc<dyn TicketSystemProvider>,
    /// The tickets queue: held alerts are announced on it when their tenant is linked.
    pub tickets: Arc<dyn MessageQueue>,
    /// Which PSA addresses are acceptable.
    pub policy: DestinationPolicy,
    /// Where PSAs with callbacks should call Vigil back (`…/webhooks/psa`), when configured;
    /// `None`: derived from the host the API was called on (see [`DestinationsService::put`]).
    pub callback_base: Option<String>,
    /// The billing mappings and each destination's billing side: `test` checks the mappings'
    /// agreements and products too (`None`: not checked).
    pub billing: Option<(Arc<dyn crate::ports::BillingStore>, Arc<dyn crate::ports::BillingTargets>)>,
}

/// A host name with an optional port, nothing else (it ends up in a URL the PSA calls).
fn is_host(host: &str) -> bool {
    !host.is_empty() && host.len() <= 253 && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

fn invalid(detail: impl Into<String>) -> AdminError {
    AdminError::Invalid(detail.into())
}

fn routing(routing: &Routing) -> Result<(), LimitError> {
    limits::entries("routing.categories", &routing.categories, limits::ROUTING_LIST_MAX)?;
    limits::entries("routing.policies", &routing.policies, limits::ROUTING_LIST_MAX)?;
    limits::entries("routing.tenants", &routing.tenants, limits::ROUTING_LIST_MAX)?;
    reference("routing.default_place", routing.default_place.as_deref())?;
    for (category, place) in &routing.places {
        reference(&format!("routing.places.{category:?}"), Some(place))?;
    }
    for (severity, priority) in &routing.priorities {
        reference(&format!("routing.priorities.{severity:?}"), Some(priority))?;
    }
    reference("routing.closed_status", routing.closed_status.as_deref())?;
    if let UnlinkedTenant::CatchAll { company } = &routing.unlinked_tenant {
        reference("routing.unlinked_tenant.company", Some(company))?;
    }
    Ok(())
}

/// Checks a destination request against every rule, naming the field of the first refusal:
/// the name (1 to [`limits::DESTINATION_NAME_CHARS`] characters), the PSA address (the
/// destination URL policy; a ConnectWise root must be the `/apis/3.0` one), every PSA
/// reference (not blank, at most [`limits::PSA_REFERENCE_CHARS`]), the routing lists, the
/// request share (1 to [`limits::REQUESTS_PER_HOUR_MAX`]) and the credentials (of the
/// settings' kind, each field within [`limits::destination_credentials`]).
///
/// # Errors
/// [`AdminError::Invalid`] naming the field.
pub fn validate(request: &DestinationRequest, policy: DestinationPolicy) -> Result<(), AdminError> {
    let name = request.name.trim();
    if name.is_empty() {
        return Err(LimitError::Blank { field: "name".into() }.into());
    }
    limits::chars("name", name, limits::DESTINATION_NAME_CHARS)?;
    crate::destination_checks::check_settings(&request.settings, policy)?;
    routing(&request.routing)?;
    if let Some(share) = request.requests_per_hour
        && !(1..=limits::REQUESTS_PER_HOUR_MAX).contains(&share)
    {
        return Err(invalid(format!(
            "requests_per_hour: 1 to {} (leave it out for no limit of Vigil's own)",
            limits::REQUESTS_PER_HOUR_MAX
        )));
    }
    if let Some(credentials) = &request.credentials {
        let (given, wanted) = (credentials.kind(), request.settings.kind());
        if given != wanted {
            return Err(invalid(format!("credentials.kind: {} credentials for a {} destination", given.as_str(), wanted.as_str())));
        }
        limits::destination_credentials(credentials)?;
        crate::destination_checks::check_credentials(credentials, policy)?;
    }
    Ok(())
}

/// A PSA failure as the caller may read it: which kind of failure and the PSA's own words
/// (connectors keep secrets out of them), at most [`PSA_COMPLAINT_CHARS`] characters.
#[must_use]
pub fn psa_complaint(error: &SinkError) -> String {
    let text = match error {
        SinkError::Unauthorized(complaint) => format!("credentials refused: {complaint}"),
        SinkError::Rejected(complaint) => format!("request rejected: {complaint}"),
        SinkError::Invalid(complaint) => complaint.clone(),
        SinkError::Unavailable(complaint) => format!("PSA unavailable: {complaint}"),
        SinkError::Gone(complaint) => format!("not found: {complaint}"),
        SinkError::Throttled { retry_after } => match retry_after {
            Some(wait) => format!("throttled by the PSA: retry in {} s", wait.as_secs()),
            None => "throttled by the PSA: retry later".to_owned(),
        },
        SinkError::OverBudget { retry_after } => {
            format!("this destination's requests_per_hour is used up: retry in {} s", retry_after.as_secs())
        }
    };
    bounded(&text)
}

fn bounded(text: &str) -> String {
    if text.chars().nth(PSA_COMPLAINT_CHARS).is_none() {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(PSA_COMPLAINT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Why a destination's PSA client could not be built, as a problem the MSP can act on; `Err`
/// for a backend failure (the secret or destination store is unavailable).
fn setup_problem(error: SinkSetupError) -> Result<String, AdminError> {
    match error {
        SinkSetupError::NotConfigured(why) => Ok(bounded(&why)),
        SinkSetupError::Secret(SecretError::Malformed { .. }) => {
            Ok("the stored credentials cannot be read; send them again with PUT /v1/destinations/{id}".to_owned())
        }
        SinkSetupError::Secret(error) => Err(error.into()),
        SinkSetupError::Store(error) => Err(error.into()),
    }
}

impl DestinationsService {
    /// Creates or replaces a destination; `true` when it was created. Credentials, when given,
    /// are written to the secret store first, so a destination never claims credentials it
    /// does not have.
    ///
    /// # Errors
    /// Invalid (naming the field) for any refused value, for missing credentials on create or
    /// on a change of kind, and when the MSP already has [`limits::DESTINATIONS_MAX`].
    /// `api_host` is the host the API was called on (API Gateway's): unless a callback base is
    /// configured, a PSA with callbacks calls back `https://{api_host}/webhooks/psa/…`.
    pub async fn put(
        &self,
        access: &Access,
        id: &DestinationId,
        request: DestinationRequest,
        api_host: Option<&str>,
    ) -> Result<(Destination, bool), AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        if request.credentials.is_some() {
            access.permit(Permission::CredentialsWrite)?;
        }
        validate(&request, self.policy)?;
        let existing = self.destinations.get_destination(msp_id, id).await?;
        let needs_credentials = request.settings.kind().needs_credentials();
        match (&existing, &request.credentials) {
            (None, None) if needs_credentials => return Err(invalid("credentials: required when creating a destination")),
            (Some(old), None) if needs_credentials && old.kind() != request.settings.kind() => {
                return Err(invalid(format!(
                    "credentials: required when the kind changes (the stored ones are for {})",
                    old.kind().as_str()
                )));
            }
            _ => {}
        }
        if existing.is_none() {
            let count = self.destinations.list_destinations(msp_id).await?.len();
            if count >= limits::DESTINATIONS_MAX {
                return Err(LimitError::TooMany { field: "destinations".into(), max: limits::DESTINATIONS_MAX }.into());
            }
        }
        let now = self.admin.clock.now();
        let wrote_credentials = match request.credentials.clone() {
            Some(credentials) => {
                let name = SecretName::destination(msp_id, id);
                let stored = if credentials.keeps_replaced_secret() {
                    self.admin
                        .secrets
                        .get_secret(&name)
                        .await?
                        .and_then(|s| serde_json::from_str::<DestinationCredentials>(s.expose()).ok())
                } else {
                    None
                };
                let credentials = credentials.replacing(stored.as_ref(), now, request.settings.rotation_grace());
                let json = serde_json::to_string(&credentials).map_err(|e| invalid(format!("credentials: {e}")))?;
                self.admin.secrets.put_secret(&name, &SecretString::new(json)).await?;
                true
            }
            None => false,
        };
        let destination = Destination {
            msp_id: msp_id.clone(),
            id: id.clone(),
            name: request.name.trim().to_owned(),
            enabled: request.enabled,
            settings: request.settings,
            routing: request.routing,
            requests_per_hour: request.requests_per_hour,
            credentials_set: wrote_credentials || existing.as_ref().is_some_and(|d| d.credentials_set) || !needs_credentials,
            created_at: existing.as_ref().map_or(now, |d| d.created_at),
            updated_at: now,
        };
        self.destinations.put_destination(&destination).await?;
        let action = if existing.is_none() { "destination.created" } else { "destination.replaced" };
        let credentials = if wrote_credentials { ", credentials written" } else { "" };
        self.admin.audit.record(access, action, format!("destination {id} ({}{credentials})", destination.kind().as_str())).await?;
        let host_base = api_host.filter(|h| is_host(h)).map(|h| format!("https://{h}/webhooks/psa"));
        if let Some(base) = self.callback_base.clone().or(host_base) {
            self.register_callback(&destination, &base).await;
        }
        Ok((destination, existing.is_none()))
    }

    /// Asks the destination's PSA to call Vigil back when a ticket changes, where it has
    /// callbacks. A failure only costs speed (the scheduled read-back covers every ticket), so it
    /// is logged, not returned.
    async fn register_callback(&self, destination: &Destination, base: &str) {
        if !destination.enabled || !destination.kind().keeps_tickets() {
            return;
        }
        let url = format!("{}/{}/{}?recordId=", base.trim_end_matches('/'), destination.msp_id, destination.id);
        let registered = match self.systems.system_for(destination).await {
            Ok(system) => system.register_callback(&url).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match registered {
            Ok(true) => tracing::info!(message = "PSA callback registered.", destination = %destination.id),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(message = "Could not register a PSA callback; the read-back still covers it.", destination = %destination.id, %error)
            }
        }
    }

    /// One of the MSP's destinations.
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound when the MSP has no such destination.
    pub async fn get(&self, access: &Access, id: &DestinationId) -> Result<Destination, AdminError> {
        self.destination_of(access.permit(Permission::ConfigRead)?, id).await
    }

    async fn destination_of(&self, msp_id: &MspId, id: &DestinationId) -> Result<Destination, AdminError> {
        self.destinations.get_destination(msp_id, id).await?.ok_or_else(|| AdminError::NotFound(format!("destination {id}")))
    }

    /// The MSP's destinations, by id.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(&self, access: &Access) -> Result<Vec<Destination>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let mut destinations = self.destinations.list_destinations(msp_id).await?;
        destinations.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(destinations)
    }

    /// Deletes a destination's record (see the module docs for what stays).
    ///
    /// # Errors
    /// NotFound when the MSP has no such destination.
    pub async fn delete(&self, access: &Access, id: &DestinationId) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        if self.destinations.delete_destination(msp_id, id).await? {
            self.admin.audit.record(access, "destination.deleted", format!("destination {id}")).await
        } else {
            Err(AdminError::NotFound(format!("destination {id}")))
        }
    }

    /// Asks the PSA whether the destination works, creating nothing: the credentials, and every
    /// board or queue, priority and status it names. A channel (chat, webhook, e-mail) gets one
    /// test message instead, the only way to know it works. A refusal by the PSA, or a destination
    /// that cannot be set up (no credentials, a refused address), is a result with `ok: false`.
    ///
    /// # Errors
    /// NotFound for an unknown destination; a backend (store, secret store) failure.
    pub async fn test(&self, access: &Access, id: &DestinationId) -> Result<DestinationTest, AdminError> {
        let destination = self.destination_of(access.permit(Permission::ConfigWrite)?, id).await?;
        if !destination.kind().keeps_tickets() {
            // A channel cannot be asked anything: a test message is the only proof it works.
            let channel = match self.systems.channel_for(&destination).await {
                Ok(channel) => channel,
                Err(error) => return Ok(DestinationTest { ok: false, problems: vec![setup_problem(error)?] }),
            };
            let problems = match channel.test().await {
                Ok(problems) => problems.iter().map(|p| bounded(p)).collect(),
                Err(error) => vec![psa_complaint(&error)],
            };
            return Ok(DestinationTest { ok: problems.is_empty(), problems });
        }
        let system = match self.systems.system_for(&destination).await {
            Ok(system) => system,
            Err(error) => return Ok(DestinationTest { ok: false, problems: vec![setup_problem(error)?] }),
        };
        let mut problems: Vec<String> = match system.check(&destination).await {
            Ok(problems) => problems.iter().map(|p| bounded(p)).collect(),
            Err(error) => vec![psa_complaint(&error)],
        };
        problems.extend(self.billing_problems(&destination).await?);
        Ok(DestinationTest { ok: problems.is_empty(), problems })
    }

    /// What is wrong with the destination's billing mappings: each mapping's agreement and
    /// product checked in the PSA (one that does not exist or is cancelled, named).
    async fn billing_problems(&self, destination: &Destination) -> Result<Vec<String>, AdminError> {
        let Some((store, targets)) = &self.billing else { return Ok(Vec::new()) };
        let mappings: Vec<_> =
            store.mappings(&destination.msp_id).await?.into_iter().filter(|m| m.destination_id == destination.id).collect();
        if mappings.is_empty() {
            return Ok(Vec::new());
        }
        let target = match targets.billing_for(destination).await {
            Ok(target) => target,
            Err(error) => return Ok(vec![format!("billing: {}", setup_problem(error)?)]),
        };
        let mut problems = Vec::new();
        for mapping in mappings {
            if let Err(error) = target.check_line(&mapping.line()).await {
                problems.push(bounded(&format!("billing of tenant {}: {}", mapping.tenant_id, psa_complaint(&error))));
            }
        }
        Ok(problems)
    }

    /// Looks something up in the destination's PSA.
    ///
    /// # Errors
    /// NotFound for an unknown destination; Invalid for an over-long or blank parameter or a
    /// destination that cannot be set up; [`AdminError::Upstream`] naming the PSA's complaint.
    pub async fn lookup(&self, access: &Access, id: &DestinationId, what: &Lookup) -> Result<Vec<LookupItem>, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        match what {
            Lookup::Companies { search } => {
                if let Some(search) = search {
                    limits::chars("search", search, limits::LOOKUP_SEARCH_CHARS)?;
                }
            }
            Lookup::Statuses { place } => reference("place", place.as_deref())?,
            Lookup::Contacts { company, email } => {
                reference("company", Some(company))?;
                if let Some(email) = email {
                    limits::chars("email", email, limits::USER_CHARS)?;
                }
            }
            Lookup::Sites { company } => reference("company", Some(company))?,
            Lookup::Places | Lookup::Priorities | Lookup::Technicians => {}
        }
        let destination = self.destination_of(msp_id, id).await?;
        if !destination.kind().keeps_tickets() {
            return Err(invalid(format!("a {} destination has nothing to look up", destination.kind().as_str())));
        }
        let system = match self.systems.system_for(&destination).await {
            Ok(system) => system,
            Err(error) => return Err(invalid(setup_problem(error)?)),
        };
        system.lookup(what).await.map_err(|error| match error {
            // The caller's parameters (or the destination's settings) cannot be a lookup in
            // this PSA: the caller's to fix, not the PSA's failure.
            SinkError::Invalid(_) => AdminError::Invalid(psa_complaint(&error)),
            error => AdminError::Upstream(psa_complaint(&error)),
        })
    }

    /// Links a tenant to its company in a destination (`None`: unlinks it). Linking announces
    /// every alert of the tenant the destination holds for want of a link on the tickets
    /// queue, addressed to this destination only, so it is delivered now. Repeating a link
    /// announces them again (harmless: the dispatcher is idempotent), which is how a request
    /// that failed after the link was stored is retried.
    ///
    /// # Errors
    /// NotFound for an unknown tenant, or (when linking) an unknown destination; Invalid for a
    /// blank or over-long company; a backend failure.
    pub async fn link_company(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        id: &DestinationId,
        company: Option<String>,
    ) -> Result<Tenant, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let linking = company.is_some();
        if linking {
            // Unlinking works for a deleted destination too; linking needs one.
            self.destination_of(msp_id, id).await?;
        }
        let what = company.as_deref().map_or_else(|| "unlinked".to_owned(), |c| format!("linked to company {c}"));
        let tenant = self.admin.link_company(msp_id, tenant_id, id, company).await?;
        self.admin.audit.record(access, "tenant.company-linked", format!("tenant {tenant_id} in destination {id} {what}")).await?;
        if linking {
            self.release_held(msp_id, tenant_id, id).await?;
        }
        Ok(tenant)
    }

    /// Announces the tenant's alerts held by the destination.
    async fn release_held(&self, msp_id: &MspId, tenant_id: &TenantId, id: &DestinationId) -> Result<(), AdminError> {
        let mut bodies = Vec::new();
        for alert_id in self.admin.alerts.list_held_deliveries(msp_id, id).await? {
            let Some(alert) = self.admin.alerts.get_alert(msp_id, &alert_id).await? else { continue };
            if &alert.tenant_id != tenant_id {
                continue;
            }
            let message = AlertChangedMessage { msp_id: msp_id.clone(), alert_id, destination: Some(id.clone()) };
            bodies.push(serde_json::to_string(&message).map_err(|e| invalid(e.to_string()))?);
        }
        if !bodies.is_empty() {
            self.tickets.send_all(&bodies).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "destinations_tests.rs"]
mod tests;
