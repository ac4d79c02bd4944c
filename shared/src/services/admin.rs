//! The MSP-facing configuration use cases behind the config API: the MSP's settings, tenants,
//! their credentials and streams, and alert details. Every method takes the *authenticated
//! caller's* [`Access`] and checks its permission before anything is read; nothing here reads
//! an MSP id from a request body. Changes are recorded in the audit log.

use super::access::AuditTrail;
use crate::access::{Access, Permission};
use crate::alert::Alert;
use crate::clock::Clock;
use crate::error::{QueueError, SecretError, StoreError};
use crate::ids::AuditStream;
use crate::ids::DestinationId;
use crate::ids::{AlertId, MspId, TenantId};
use crate::limits::{self, LimitError};
use crate::ports::{AlertStore, ConfigStore, IngestStateStore, SecretName, SecretStore, StreamKey, StreamState, TenantChange};
use crate::secret::SecretString;
use crate::tenant::{M365AppCredentials, Msp, Tenant};
use crate::ticket::Delivery;
use std::sync::Arc;

/// Why a configuration request failed. Each variant maps to one HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 401: no usable credentials.
    #[error("missing or invalid API token")]
    Unauthenticated,
    /// 403: the caller is authenticated but its role or scopes do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 409: the request conflicts with the current state (the text says how).
    #[error("{0}")]
    Refused(String),
    /// 404: the thing does not exist for this MSP (also when it belongs to another MSP).
    #[error("{0} not found")]
    NotFound(String),
    /// 409: it already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// 422: the request is well-formed but its values are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// 503/500: a backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// 503: a message could not be queued.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// 502: a PSA refused or failed a lookup; the text names its complaint (no secrets).
    #[error("the PSA answered: {0}")]
    Upstream(String),
    #[error("could not generate a token: {0}")]
    Random(String),
}

/// A change to an MSP's settings: `None` keeps a field, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MspSettingsChange {
    pub publisher_identifier: Option<Option<TenantId>>,
    pub first_lookback_hours: Option<u32>,
    pub backfill_ticket_max_age_hours: Option<Option<u32>>,
    pub partner_read_every_hours: Option<u32>,
    pub licence_read_every_hours: Option<u32>,
    pub licence_lifecycle_days: Option<u32>,
}

impl From<LimitError> for AdminError {
    fn from(error: LimitError) -> Self {
        Self::Invalid(error.to_string())
    }
}

impl From<crate::destination_checks::CheckError> for AdminError {
    fn from(error: crate::destination_checks::CheckError) -> Self {
        Self::Invalid(error.to_string())
    }
}

/// An offboarded tenant takes no new registration, credentials or company link until its purge
/// has deleted it (`GET /v1/tenants/{id}/offboarding` says when); then it can be registered
/// afresh.
pub(crate) fn refuse_offboarded(tenant: &Tenant) -> Result<(), AdminError> {
    match tenant.offboarded_at {
        Some(at) => Err(AdminError::Refused(format!(
            "tenant {} was offboarded at {}; it can be registered again once its data is purged (GET /v1/tenants/{}/offboarding)",
            tenant.tenant_id,
            at.format("%Y-%m-%d %H:%M UTC"),
            tenant.tenant_id
        ))),
        None => Ok(()),
    }
}

/// Mail domains as a tenant's configuration keeps them: trimmed, lowercase, checked.
///
/// # Errors
/// Invalid for too many, or for the first value that is too long or not a domain name.
pub fn mail_domains(domains: Vec<String>) -> Result<Vec<String>, AdminError> {
    limits::entries("domains", &domains, limits::DOMAINS_MAX)?;
    let domains: Vec<String> = domains.into_iter().map(|d| d.trim().to_ascii_lowercase()).collect();
    limits::list("domains", &domains, limits::DOMAINS_MAX, limits::DOMAIN_CHARS)?;
    if let Some(bad) = domains.iter().find(|d| d.is_empty() || !d.contains('.') || d.contains(|c: char| c.is_whitespace() || c == '@')) {
        return Err(AdminError::Invalid(format!("{bad:?} is not a domain name")));
    }
    Ok(domains)
}

/// The caller's alert `alert_id`: NotFound when the MSP has none, or when it is of a category
/// the caller does not see (the same answer, so a limited principal learns nothing of it).
///
/// # Errors
/// NotFound, or a store failure.
pub(crate) async fn visible_alert(
    alerts: &dyn AlertStore,
    access: &Access,
    msp_id: &MspId,
    alert_id: &AlertId,
) -> Result<Alert, AdminError> {
    alerts
        .get_alert(msp_id, alert_id)
        .await?
        .filter(|alert| access.sees(alert.category))
        .ok_or_else(|| AdminError::NotFound(format!("alert {alert_id}")))
}

/// A tenant's alert together with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDetail {
    pub alert: Alert,
    pub deliveries: Vec<Delivery>,
}

/// The configuration use cases.
pub struct AdminService {
    pub config: Arc<dyn ConfigStore>,
    pub alerts: Arc<dyn AlertStore>,
    /// The poller's coverage ledgers, read for stream health.
    pub ingest: Arc<dyn IngestStateStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    /// Where configuration changes are recorded.
    pub audit: AuditTrail,
}

/// Most tenants one page of [`AdminService::tenants_page`] holds.
pub const TENANT_PAGE_MAX: usize = 1000;

impl AdminService {
    /// The caller's MSP record (its settings).
    ///
    /// # Errors
    /// NotFound when the MSP record is missing.
    pub async fn msp(&self, access: &Access) -> Result<Msp, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        self.config.get_msp(msp_id).await?.ok_or_else(|| AdminError::NotFound(format!("MSP {msp_id}")))
    }

    /// Changes the MSP's settings; a field left `None` keeps its value.
    ///
    /// # Errors
    /// NotFound when the MSP record is missing; Invalid (naming the field) when a value is out
    /// of range.
    pub async fn update_msp_settings(&self, access: &Access, change: MspSettingsChange) -> Result<Msp, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let mut msp = self.config.get_msp(msp_id).await?.ok_or_else(|| AdminError::NotFound(format!("MSP {msp_id}")))?;
        if let Some(publisher_identifier) = change.publisher_identifier {
            msp.publisher_identifier = publisher_identifier;
        }
        if let Some(hours) = change.first_lookback_hours {
            if !Msp::FIRST_LOOKBACK_HOURS.contains(&hours) {
                return Err(AdminError::Invalid(format!(
                    "first_lookback_hours: {} to {} (Microsoft keeps audit content for 7 days)",
                    Msp::FIRST_LOOKBACK_HOURS.start(),
                    Msp::FIRST_LOOKBACK_HOURS.end()
                )));
            }
            msp.first_lookback_hours = hours;
        }
        if let Some(max_age) = change.backfill_ticket_max_age_hours {
            if max_age == Some(0) {
                return Err(AdminError::Invalid("backfill_ticket_max_age_hours: at least 1, or null for no limit".into()));
            }
            msp.backfill_ticket_max_age_hours = max_age;
        }
        if let Some(hours) = change.partner_read_every_hours {
            if !Msp::PARTNER_READ_EVERY_HOURS.contains(&hours) {
                return Err(AdminError::Invalid(format!(
                    "partner_read_every_hours: {} to {}",
                    Msp::PARTNER_READ_EVERY_HOURS.start(),
                    Msp::PARTNER_READ_EVERY_HOURS.end()
                )));
            }
            msp.partner_read_every_hours = hours;
        }
        if let Some(hours) = change.licence_read_every_hours {
            if !Msp::LICENCE_READ_EVERY_HOURS.contains(&hours) {
                return Err(AdminError::Invalid(format!(
                    "licence_read_every_hours: {} to {}",
                    Msp::LICENCE_READ_EVERY_HOURS.start(),
                    Msp::LICENCE_READ_EVERY_HOURS.end()
                )));
            }
            msp.licence_read_every_hours = hours;
        }
        if let Some(days) = change.licence_lifecycle_days {
            if !Msp::LICENCE_LIFECYCLE_DAYS.contains(&days) {
                return Err(AdminError::Invalid(format!(
                    "licence_lifecycle_days: {} to {}",
                    Msp::LICENCE_LIFECYCLE_DAYS.start(),
                    Msp::LICENCE_LIFECYCLE_DAYS.end()
                )));
            }
            msp.licence_lifecycle_days = days;
        }
        self.config.put_msp(&msp).await?;
        self.audit.record(access, "msp.settings-changed", format!("MSP {msp_id}")).await?;
        Ok(msp)
    }

    /// Registers a customer tenant.
    ///
    /// # Errors
    /// Invalid name, or Conflict when the MSP already has the tenant.
    pub async fn register_tenant(
        &self,
        access: &Access,
        tenant_id: TenantId,
        name: &str,
        domains: Vec<String>,
    ) -> Result<Tenant, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(AdminError::Invalid(format!("name: 1 to {} characters", limits::TENANT_NAME_CHARS)));
        }
        limits::chars("name", name, limits::TENANT_NAME_CHARS)?;
        let domains = mail_domains(domains)?;
        let tenant = Tenant {
            msp_id: msp_id.clone(),
            tenant_id,
            name: name.to_owned(),
            domains,
            break_glass_accounts: Vec::new(),
            company_links: std::collections::BTreeMap::new(),
            legacy_connectwise_company_id: None,
            m365_credentials_set: false,
            credentials_from_msp_app: false,
            webhook_auth_hash: None,
            webhook_registered: false,
            offboarded_at: None,
            streams: None,
            created_at: self.clock.now(),
        };
        if self.config.create_tenant(&tenant).await? {
            self.audit.record(access, "tenant.registered", format!("tenant {} ({})", tenant.tenant_id, tenant.name)).await?;
            Ok(tenant)
        } else {
            if let Some(existing) = self.config.get_tenant(msp_id, &tenant.tenant_id).await? {
                refuse_offboarded(&existing)?;
            }
            Err(AdminError::Conflict(format!("tenant {}", tenant.tenant_id)))
        }
    }

    /// One of the MSP's tenants.
    ///
    /// # Errors
    /// NotFound when the MSP has no such tenant.
    pub async fn tenant(&self, access: &Access, tenant_id: &TenantId) -> Result<Tenant, AdminError> {
        self.tenant_of(access.permit(Permission::ConfigRead)?, tenant_id).await
    }

    pub(crate) async fn tenant_of(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Tenant, AdminError> {
        self.config.get_tenant(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))
    }

    /// The MSP's tenants.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn tenants(&self, access: &Access) -> Result<Vec<Tenant>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        Ok(self.config.list_tenants(msp_id).await?)
    }

    /// One page of the MSP's tenants in tenant-id order (`limit` 1 to [`TENANT_PAGE_MAX`]),
    /// continuing after `after`: a page costs about `limit` reads however many tenants there are.
    ///
    /// # Errors
    /// Forbidden without config:read; Invalid for a limit out of range; when the store fails.
    pub async fn tenants_page(
        &self,
        access: &Access,
        limit: usize,
        after: Option<&TenantId>,
    ) -> Result<crate::ports::TenantPage, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        if !(1..=TENANT_PAGE_MAX).contains(&limit) {
            return Err(AdminError::Invalid(format!("limit must be 1 to {TENANT_PAGE_MAX}")));
        }
        Ok(self.config.tenants_page(msp_id, limit, after).await?)
    }

    /// Connects the MSP's own partner tenant: its id, and the app credentials (write-only) with
    /// `DelegatedAdminRelationship.Read.All` that read its GDAP relationships; the next tick
    /// reads it.
    ///
    /// # Errors
    /// Forbidden without credentials:write; Invalid for blank or too long values.
    pub async fn connect_partner_tenant(
        &self,
        access: &Access,
        partner_tenant_id: TenantId,
        credentials: M365AppCredentials,
    ) -> Result<Msp, AdminError> {
        let msp_id = access.permit(Permission::CredentialsWrite)?;
        if credentials.client_id.trim().is_empty() || credentials.client_secret.is_blank() {
            return Err(AdminError::Invalid("client_id and client_secret are required".into()));
        }
        limits::chars("client_id", &credentials.client_id, limits::M365_CLIENT_ID_CHARS)?;
        limits::chars("client_secret", credentials.client_secret.expose(), limits::CLIENT_SECRET_CHARS)?;
        let mut msp = self.config.get_msp(msp_id).await?.ok_or_else(|| AdminError::NotFound(format!("MSP {msp_id}")))?;
        let value = serde_json::to_string(&credentials).map_err(|e| AdminError::Invalid(e.to_string()))?;
        // The secret first: a connected partner tenant always has the credentials it claims.
        self.secrets.put_secret(&SecretName::partner_app(msp_id), &SecretString::new(value)).await?;
        msp.partner_tenant_id = Some(partner_tenant_id.clone());
        self.config.put_msp(&msp).await?;
        self.audit.record(access, "msp.partner-tenant-connected", format!("partner tenant {partner_tenant_id}")).await?;
        Ok(msp)
    }

    /// Stores the Microsoft app credentials that reach a tenant (write-only).
    ///
    /// # Errors
    /// NotFound for an unknown tenant, Invalid for blank or too long values.
    pub async fn set_m365_credentials(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        credentials: M365AppCredentials,
    ) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::CredentialsWrite)?;
        if credentials.client_id.trim().is_empty() || credentials.client_secret.is_blank() {
            return Err(AdminError::Invalid("client_id and client_secret are required".into()));
        }
        limits::chars("client_id", &credentials.client_id, limits::M365_CLIENT_ID_CHARS)?;
        limits::chars("client_secret", credentials.client_secret.expose(), limits::CLIENT_SECRET_CHARS)?;
        let tenant = self.tenant_of(msp_id, tenant_id).await?;
        refuse_offboarded(&tenant)?;
        let value = serde_json::to_string(&credentials).map_err(|e| AdminError::Invalid(e.to_string()))?;
        self.secrets.put_secret(&SecretName::m365_app(msp_id, tenant_id), &SecretString::new(value)).await?;
        if !tenant.m365_credentials_set || tenant.credentials_from_msp_app {
            self.changed(msp_id, tenant_id, TenantChange::M365CredentialsSet).await?;
        }
        self.audit.record(access, "tenant.m365-credentials-set", format!("tenant {tenant_id}")).await
    }

    /// Links a tenant to the company its tickets go to in one destination (`None`: unlinks it).
    ///
    /// # Errors
    /// NotFound for an unknown tenant, Invalid for a blank or over-long company reference.
    pub(crate) async fn link_company(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        destination: &DestinationId,
        company: Option<String>,
    ) -> Result<Tenant, AdminError> {
        let company = company.map(|c| c.trim().to_owned());
        if let Some(company) = &company {
            if company.is_empty() {
                return Err(AdminError::Invalid("company: must not be blank (null unlinks the tenant)".into()));
            }
            limits::chars("company", company, limits::PSA_REFERENCE_CHARS)?;
        }
        refuse_offboarded(&self.tenant_of(msp_id, tenant_id).await?)?;
        self.changed(msp_id, tenant_id, TenantChange::CompanyLink { destination: destination.clone(), company }).await
    }

    /// Changes some attributes of a tenant, leaving the rest as stored.
    async fn changed(&self, msp_id: &MspId, tenant_id: &TenantId, change: TenantChange) -> Result<Tenant, AdminError> {
        self.config.update_tenant(msp_id, tenant_id, &change).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))
    }

    /// Chooses which audit streams are polled for a tenant (`None`: Vigil's defaults).
    ///
    /// # Errors
    /// NotFound for an unknown tenant, Invalid for an empty list.
    pub async fn set_streams(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        streams: Option<Vec<AuditStream>>,
    ) -> Result<Tenant, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        if streams.as_ref().is_some_and(Vec::is_empty) {
            return Err(AdminError::Invalid("streams must name at least one stream, or be null for the defaults".into()));
        }
        let streams = streams.map(|mut s| {
            s.sort();
            s.dedup();
            s
        });
        // Also marks the webhook unregistered: new content types need it on their subscriptions.
        let tenant = self.changed(msp_id, tenant_id, TenantChange::Streams(streams)).await?;
        self.audit.record(access, "tenant.streams-changed", format!("tenant {tenant_id}")).await?;
        Ok(tenant)
    }

    /// The health of each stream of a tenant: coverage, last success, failures, losses.
    ///
    /// # Errors
    /// NotFound for an unknown tenant.
    pub async fn stream_health(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        default_streams: &[AuditStream],
    ) -> Result<Vec<(AuditStream, Option<StreamState>)>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let tenant = self.tenant_of(msp_id, tenant_id).await?;
        let mut health = Vec::new();
        for stream in tenant.streams.clone().unwrap_or_else(|| default_streams.to_vec()) {
            let key = StreamKey { msp_id: msp_id.clone(), tenant_id: tenant_id.clone(), stream };
            health.push((stream, self.ingest.get_stream(&key).await?));
        }
        Ok(health)
    }

    /// One alert and its deliveries.
    ///
    /// # Errors
    /// Forbidden without alerts:read; NotFound when the MSP has no such alert, or it is of a
    /// category the caller does not see.
    pub async fn alert(&self, access: &Access, alert_id: &AlertId) -> Result<AlertDetail, AdminError> {
        let msp_id = access.permit(Permission::AlertsRead)?;
        let alert = visible_alert(self.alerts.as_ref(), access, msp_id, alert_id).await?;
        let deliveries = self.alerts.list_deliveries(msp_id, alert_id).await?;
        Ok(AlertDetail { alert, deliveries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::memory::*;

    fn service() -> (AdminService, Arc<MemorySecretStore>) {
        let secrets = Arc::new(MemorySecretStore::default());
        let service = AdminService {
            ingest: Arc::new(MemoryIngestState::default()),
            config: Arc::new(MemoryConfigStore::default()),
            alerts: Arc::new(MemoryAlertStore::default()),
            secrets: secrets.clone(),
            clock: Arc::new(SystemClock),
            audit: AuditTrail { log: Arc::new(MemoryConfigStore::default()), clock: Arc::new(SystemClock) },
        };
        (service, secrets)
    }

    fn tenant_id() -> TenantId {
        TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap()
    }

    #[tokio::test]
    async fn msp_settings_change_only_the_fields_given_and_out_of_range_values_name_the_field() {
        let (service, _) = service();
        let acme = MspId::parse("acme").unwrap();
        service.config.create_msp(&Msp::new(acme.clone(), "Acme".into(), chrono::Utc::now())).await.unwrap();
        assert_eq!(service.msp(&Access::operator(&acme)).await.unwrap().first_lookback_hours, 24, "a day by default");
        let publisher = TenantId::parse("9a1c8f7e-0000-4000-8000-00000000aa02").unwrap();
        service
            .update_msp_settings(
                &crate::access::Access::operator(&acme),
                MspSettingsChange { publisher_identifier: Some(Some(publisher.clone())), ..Default::default() },
            )
            .await
            .unwrap();
        let changed = service
            .update_msp_settings(
                &crate::access::Access::operator(&acme),
                MspSettingsChange { first_lookback_hours: Some(168), backfill_ticket_max_age_hours: Some(Some(48)), ..Default::default() },
            )
            .await
            .unwrap();
        assert_eq!(
            (changed.publisher_identifier, changed.first_lookback_hours, changed.backfill_ticket_max_age_hours),
            (Some(publisher), 168, Some(48))
        );
        for wrong in [0, 169] {
            let refused = service
                .update_msp_settings(
                    &crate::access::Access::operator(&acme),
                    MspSettingsChange { first_lookback_hours: Some(wrong), ..Default::default() },
                )
                .await
                .unwrap_err();
            assert!(matches!(&refused, AdminError::Invalid(m) if m.contains("first_lookback_hours")), "{refused}");
        }
        let refused = service
            .update_msp_settings(
                &crate::access::Access::operator(&acme),
                MspSettingsChange { backfill_ticket_max_age_hours: Some(Some(0)), ..Default::default() },
            )
            .await
            .unwrap_err();
        assert!(matches!(&refused, AdminError::Invalid(m) if m.contains("backfill_ticket_max_age_hours")), "{refused}");
        assert_eq!(service.msp(&Access::operator(&acme)).await.unwrap().first_lookback_hours, 168, "a refused change changes nothing");
        assert_eq!(service.msp(&Access::operator(&acme)).await.unwrap().partner_read_every_hours, 24, "daily by default");
        for wrong in [0, 169] {
            let change = MspSettingsChange { partner_read_every_hours: Some(wrong), ..Default::default() };
            assert!(
                matches!(service.update_msp_settings(&Access::operator(&acme), change).await, Err(AdminError::Invalid(m)) if m.contains("partner_read_every_hours"))
            );
        }
        let hourly = MspSettingsChange { partner_read_every_hours: Some(1), ..Default::default() };
        assert_eq!(service.update_msp_settings(&Access::operator(&acme), hourly).await.unwrap().partner_read_every_hours, 1);
        let msp = service.msp(&Access::operator(&acme)).await.unwrap();
        assert_eq!((msp.licence_read_every_hours, msp.licence_lifecycle_days), (24, 30), "licences daily, 30 days ahead by default");
        for (hours, days) in [(Some(0), None), (Some(169), None), (None, Some(0)), (None, Some(366))] {
            let change = MspSettingsChange { licence_read_every_hours: hours, licence_lifecycle_days: days, ..Default::default() };
            assert!(
                matches!(service.update_msp_settings(&Access::operator(&acme), change).await, Err(AdminError::Invalid(m)) if m.contains("licence_"))
            );
        }
        let tuned = MspSettingsChange { licence_read_every_hours: Some(6), licence_lifecycle_days: Some(60), ..Default::default() };
        let msp = service.update_msp_settings(&Access::operator(&acme), tuned).await.unwrap();
        assert_eq!((msp.licence_read_every_hours, msp.licence_lifecycle_days), (6, 60));
    }

    #[tokio::test]
    async fn tenants_are_invisible_to_other_msps() {
        let (service, _) = service();
        let acme = MspId::parse("acme").unwrap();
        let other = MspId::parse("other").unwrap();
        service.register_tenant(&Access::operator(&acme), tenant_id(), "Contoso", vec!["contoso.com".into()]).await.unwrap();
        assert!(matches!(
            service.register_tenant(&Access::operator(&acme), tenant_id(), "Contoso", vec![]).await,
            Err(AdminError::Conflict(_))
        ));
        assert!(matches!(service.tenant(&Access::operator(&other), &tenant_id()).await, Err(AdminError::NotFound(_))));
        let psa = DestinationId::parse("psa").unwrap();
        assert!(matches!(service.link_company(&other, &tenant_id(), &psa, Some("250".into())).await, Err(AdminError::NotFound(_))));
        assert_eq!(
            service.link_company(&acme, &tenant_id(), &psa, Some("250".into())).await.unwrap().company_link(&psa).as_deref(),
            Some("250")
        );
    }

    #[tokio::test]
    async fn credentials_go_to_the_secret_store_under_the_msp_and_only_a_flag_to_config() {
        let (service, secrets) = service();
        let acme = MspId::parse("acme").unwrap();
        service.register_tenant(&Access::operator(&acme), tenant_id(), "Contoso", vec![]).await.unwrap();
        service
            .set_m365_credentials(&Access::operator(&acme), &tenant_id(), M365AppCredentials::new("app", SecretString::new("s3cret")))
            .await
            .unwrap();
        let stored = secrets.get_secret(&SecretName::m365_app(&acme, &tenant_id())).await.unwrap().unwrap();
        assert!(stored.expose().contains("s3cret"));
        let tenant = service.tenant(&Access::operator(&acme), &tenant_id()).await.unwrap();
        assert!(tenant.m365_credentials_set);
        assert!(!serde_json::to_string(&tenant).unwrap().contains("s3cret"));
        assert!(matches!(
            service
                .set_m365_credentials(&Access::operator(&acme), &tenant_id(), M365AppCredentials::new("app", SecretString::new(" ")))
                .await,
            Err(AdminError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn tenant_names_domains_and_app_credentials_over_their_limits_are_refused_naming_the_field() {
        let (service, secrets) = service();
        let acme = MspId::parse("acme").unwrap();
        let refused = |result: Result<(), AdminError>| match result {
            Err(AdminError::Invalid(message)) => message,
            other => panic!("{other:?}"),
        };
        let long_name = "n".repeat(limits::TENANT_NAME_CHARS + 1);
        assert_eq!(
            refused(service.register_tenant(&Access::operator(&acme), tenant_id(), &long_name, vec![]).await.map(|_| ())),
            "name: at most 256 characters"
        );
        let many: Vec<String> = (0..=limits::DOMAINS_MAX).map(|i| format!("d{i}.example")).collect();
        assert_eq!(
            refused(service.register_tenant(&Access::operator(&acme), tenant_id(), "Contoso", many).await.map(|_| ())),
            "domains: at most 500 entries"
        );
        let long = vec!["contoso.com".to_owned(), format!("{}.example", "d".repeat(250))];
        assert_eq!(
            refused(service.register_tenant(&Access::operator(&acme), tenant_id(), "Contoso", long).await.map(|_| ())),
            "domains[1]: at most 253 characters"
        );
        service.register_tenant(&Access::operator(&acme), tenant_id(), "Contoso", vec!["contoso.com".into()]).await.unwrap();
        let credentials = |id: String, secret: String| M365AppCredentials::new(id, SecretString::new(secret));
        let huge_secret = credentials("app".into(), "s".repeat(1 << 20));
        assert_eq!(
            refused(service.set_m365_credentials(&Access::operator(&acme), &tenant_id(), huge_secret).await),
            "client_secret: at most 1024 characters"
        );
        let long_id = credentials("a".repeat(limits::M365_CLIENT_ID_CHARS + 1), "s3cret".into());
        assert_eq!(
            refused(service.set_m365_credentials(&Access::operator(&acme), &tenant_id(), long_id).await),
            "client_id: at most 256 characters"
        );
        assert_eq!(secrets.get_secret(&SecretName::m365_app(&acme, &tenant_id())).await.unwrap(), None, "nothing was stored");
        let at_limit = credentials("app".into(), "s".repeat(limits::CLIENT_SECRET_CHARS));
        service.set_m365_credentials(&Access::operator(&acme), &tenant_id(), at_limit).await.unwrap();
    }
}
