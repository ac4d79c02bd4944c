//! Onboarding use cases: the MSP registers its multi-tenant app once, issues consent links,
//! and Microsoft's redirect back records each consent (the signed state being its only
//! authentication); an access test ([`access`]) then says per capability what works, and a
//! passing tenant's subscriptions start and its first poll jobs are queued. Discovery and bulk
//! onboarding from the partner tenant's relationships are in [`bulk`]; onboarding a customer
//! directly with a partner technician's delegated credential is in [`direct`].
//!
//! Exactly once: a state's nonce is claimed (a conditional write) before anything else is done
//! with it, so a replayed redirect changes nothing. A crash after the claim leaves the link
//! used but the consent unrecorded; the MSP issues a new link (tenant creation and the consent
//! change are idempotent, so the second consent finishes the work).

pub mod access;
pub mod bulk;
pub mod direct;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_direct;

use super::access::AuditTrail;
use crate::access::{Access, Permission};
use crate::clock::Clock;
use crate::ids::{AuditStream, MspId, TenantId};
use crate::limits;
use crate::onboarding::state::{ConsentState, StateError, StateSigner};
use crate::onboarding::{
    AccessTest, ConsentLink, ConsentRedirect, DEFAULT_LINK_HOURS, LINK_HOURS, LinkStatus, MspApp, REDIRECT_ERROR_CHARS, clip,
};
use crate::ports::{
    AdminRelationshipSource, ConfigStore, LicenceSource, MessageQueue, OnboardingStore, RelationshipStore, SecretName, SecretStore,
    SecurityAlertSource, SubscriptionManager, TenantAccessProbe, TenantChange,
};
use crate::secret::SecretString;
use crate::services::admin::AdminError;
use crate::tenant::{M365AppCredentials, Tenant};
use chrono::Duration;
use std::sync::Arc;

/// The Microsoft side of a customer tenant, as the access test uses it.
#[derive(Clone)]
pub struct TenantApis {
    pub probe: Arc<dyn TenantAccessProbe>,
    pub subscriptions: Arc<dyn SubscriptionManager>,
    pub alerts: Arc<dyn SecurityAlertSource>,
    pub licences: Arc<dyn LicenceSource>,
    pub sign_ins: Arc<dyn AdminRelationshipSource>,
    /// A partner technician's delegated session in a customer tenant (direct onboarding).
    pub directory: Arc<dyn crate::ports::CustomerDirectory>,
}

/// Onboarding: the MSP app, consent links, consents, access tests, discovery and bulk.
pub struct OnboardingService {
    pub config: Arc<dyn ConfigStore>,
    pub store: Arc<dyn OnboardingStore>,
    pub relationships: Arc<dyn RelationshipStore>,
    pub secrets: Arc<dyn SecretStore>,
    /// The poll-jobs queue: a consented tenant's first poll.
    pub jobs: Arc<dyn MessageQueue>,
    pub apis: TenantApis,
    pub audit: AuditTrail,
    pub clock: Arc<dyn Clock>,
    /// Microsoft's sign-in host, e.g. `https://login.microsoftonline.com` (the consent URL's).
    pub login_base: String,
    /// Vigil's API address, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com`: the consent
    /// redirect is `{api_base}/v1/consent/{msp}`. `None`: links cannot be made.
    pub api_base: Option<String>,
    /// The streams a tenant without its own choice polls.
    pub default_streams: Vec<AuditStream>,
}

/// Why Microsoft's redirect was refused. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// 400: no `state`, or a success without `tenant`/`admin_consent=True`.
    #[error("{0}")]
    BadRedirect(String),
    /// 403 (forged, other MSP, malformed) or 410 (expired).
    #[error(transparent)]
    State(#[from] StateError),
    /// 409: the state was used already.
    #[error("this consent link was used already; ask the MSP for a new one")]
    Replayed,
    /// 403: the tenant in the redirect is not the one the link was made for, or not the one
    /// Microsoft's token says.
    #[error("{0}")]
    TenantMismatch(String),
    /// Anything else (store, secrets, queue).
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// What a consent redirect did.
#[derive(Debug, Clone)]
pub struct ConsentResult {
    pub link: ConsentLink,
    /// The access test run on the consented tenant (`None` when the consent was declined).
    pub access_test: Option<AccessTest>,
    /// Poll jobs queued for the tenant's first poll.
    pub poll_jobs: usize,
}

/// A host name with an optional port and nothing else (no scheme, path, user or spaces).
fn is_plain_host(host: &str) -> bool {
    !host.is_empty() && host.len() <= 260 && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

impl OnboardingService {
    /// `{base}/v1/consent/{msp}`, where the base is the configured `api_base` or else the host
    /// the registration request arrived on (API Gateway's own domain: a deployment cannot give
    /// the config API its own URL in its environment without a circular dependency).
    fn redirect_uri(&self, msp_id: &MspId, request_host: Option<&str>) -> Result<String, AdminError> {
        let base = match (self.api_base.as_deref(), request_host.filter(|host| is_plain_host(host))) {
            (Some(base), _) => base.trim_end_matches('/').to_owned(),
            (None, Some(host)) => format!("https://{host}"),
            (None, None) => {
                return Err(AdminError::Refused(
                    "API_BASE_URL is not configured and the request names no host: no consent redirect".into(),
                ));
            }
        };
        Ok(format!("{base}/v1/consent/{msp_id}"))
    }

    /// Registers (or replaces) the MSP's multi-tenant app: the credentials go to the secret
    /// store only (one secret for every tenant that consents), the state key is made once.
    ///
    /// # Errors
    /// Forbidden without credentials:write; Invalid for blank or too long values.
    pub async fn register_app(
        &self,
        access: &Access,
        credentials: M365AppCredentials,
        request_host: Option<&str>,
    ) -> Result<MspApp, AdminError> {
        let msp_id = access.permit(Permission::CredentialsWrite)?;
        let client_id = credentials.client_id.trim().to_owned();
        if client_id.is_empty() || credentials.client_secret.is_blank() {
            return Err(AdminError::Invalid("client_id and client_secret are required".into()));
        }
        limits::chars("client_id", &client_id, limits::M365_CLIENT_ID_CHARS)?;
        limits::chars("client_secret", credentials.client_secret.expose(), limits::CLIENT_SECRET_CHARS)?;
        let redirect_uri = self.redirect_uri(msp_id, request_host)?;
        let stored = M365AppCredentials::new(client_id.clone(), credentials.client_secret);
        let value = serde_json::to_string(&stored).map_err(|e| AdminError::Invalid(e.to_string()))?;
        self.secrets.put_secret(&SecretName::msp_app(msp_id), &SecretString::new(value)).await?;
        self.state_key(msp_id, true).await?;
        let app = MspApp { client_id, redirect_uri, registered_at: self.clock.now() };
        self.store.put_app(msp_id, &app).await?;
        self.audit.record(access, "onboarding.app-registered", format!("app {}", app.client_id)).await?;
        Ok(app)
    }

    /// The MSP app's public part.
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound before registration.
    pub async fn app(&self, access: &Access) -> Result<MspApp, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        self.store.app(msp_id).await?.ok_or_else(|| AdminError::NotFound("MSP app".into()))
    }

    /// The MSP's state key; made when `create` and there is none.
    async fn state_key(&self, msp_id: &MspId, create: bool) -> Result<Option<StateSigner>, AdminError> {
        let name = SecretName::consent_state_key(msp_id);
        if let Some(key) = self.secrets.get_secret(&name).await? {
            return Ok(Some(StateSigner::new(key)));
        }
        if !create {
            return Ok(None);
        }
        let key = StateSigner::generate_key().map_err(|e| AdminError::Random(e.to_string()))?;
        self.secrets.put_secret(&name, &key).await?;
        Ok(Some(StateSigner::new(key)))
    }

    /// Issues a consent link for a customer (bound to `expected_tenant` when known), valid for
    /// `hours` (default [`DEFAULT_LINK_HOURS`]).
    ///
    /// # Errors
    /// Forbidden without credentials:write; Refused before the app is registered; Invalid for
    /// a blank or too long name or a lifetime out of range.
    pub async fn issue_link(
        &self,
        access: &Access,
        customer_name: &str,
        expected_tenant: Option<TenantId>,
        hours: Option<u32>,
        bulk_job: Option<String>,
    ) -> Result<ConsentLink, AdminError> {
        let link = self.make_link(access, customer_name, expected_tenant, hours, bulk_job).await?;
        self.audit.record(access, "onboarding.consent-link-issued", format!("link {} for {}", link.id, link.customer_name)).await?;
        Ok(link)
    }

    /// A new consent link, kept; not yet in the audit log.
    async fn make_link(
        &self,
        access: &Access,
        customer_name: &str,
        expected_tenant: Option<TenantId>,
        hours: Option<u32>,
        bulk_job: Option<String>,
    ) -> Result<ConsentLink, AdminError> {
        let msp_id = access.permit(Permission::CredentialsWrite)?;
        let name = customer_name.trim();
        if name.is_empty() {
            return Err(AdminError::Invalid(format!("customer_name: 1 to {} characters", limits::TENANT_NAME_CHARS)));
        }
        limits::chars("customer_name", name, limits::TENANT_NAME_CHARS)?;
        let hours = hours.unwrap_or(DEFAULT_LINK_HOURS);
        if !LINK_HOURS.contains(&hours) {
            return Err(AdminError::Invalid(format!("hours: {} to {}", LINK_HOURS.start(), LINK_HOURS.end())));
        }
        let app = self
            .store
            .app(msp_id)
            .await?
            .ok_or_else(|| AdminError::Refused("register the MSP app first (PUT /v1/onboarding/app)".into()))?;
        let signer = self.state_key(msp_id, true).await?.ok_or_else(|| AdminError::Refused("no state key".into()))?;
        let now = self.clock.now();
        let expires_at = now + Duration::hours(i64::from(hours));
        let state = ConsentState::new(msp_id, expires_at, expected_tenant.clone()).map_err(|e| AdminError::Random(e.to_string()))?;
        let authority = expected_tenant.as_ref().map_or_else(|| "organizations".to_owned(), ToString::to_string);
        let mut url = url::Url::parse(&format!("{}/{authority}/adminconsent", self.login_base.trim_end_matches('/')))
            .map_err(|e| AdminError::Invalid(format!("login base: {e}")))?;
        url.query_pairs_mut()
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", &app.redirect_uri)
            .append_pair("state", &signer.sign(&state));
        let link = ConsentLink {
            id: state.nonce.clone(),
            url: url.to_string(),
            customer_name: name.to_owned(),
            expected_tenant,
            issued_at: now,
            expires_at,
            bulk_job,
            status: LinkStatus::Issued,
            updated_at: now,
        };
        self.store.put_link(msp_id, &link).await?;
        Ok(link)
    }

    /// The MSP's consent links and what became of each.
    ///
    /// # Errors
    /// Forbidden without config:read.
    pub async fn links(&self, access: &Access) -> Result<Vec<ConsentLink>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        Ok(self.store.links(msp_id).await?)
    }

    /// Handles Microsoft's redirect to `/v1/consent/{msp_id}` with its raw query string. The
    /// state is checked first (signature over its raw bytes, MSP, expiry) and used once; a
    /// declined consent is recorded; a granted one must come from the tenant the link was made
    /// for and be confirmed by a token that tenant issued. The tenant is then watched with the
    /// MSP app's credentials, tested, and — where the test allows — polled at once.
    ///
    /// # Errors
    /// See [`ConsentError`].
    pub async fn complete_consent(&self, msp_id: &MspId, query: &str) -> Result<ConsentResult, ConsentError> {
        let redirect = ConsentRedirect::parse(query);
        let wire = redirect.state.as_deref().ok_or_else(|| ConsentError::BadRedirect("the redirect carries no state".into()))?;
        let signer = self.state_key(msp_id, false).await?.ok_or(ConsentError::State(StateError::Forged))?;
        let state = signer.verify(wire, msp_id, self.clock.now())?;
        if !self.store.claim_nonce(msp_id, &state.nonce, state.expiry()).await.map_err(AdminError::from)? {
            return Err(ConsentError::Replayed);
        }
        let actor = Access::consent_redirect(msp_id);
        let mut link = self.store.link(msp_id, &state.nonce).await.map_err(AdminError::from)?.unwrap_or_else(|| ConsentLink {
            id: state.nonce.clone(),
            url: String::new(),
            customer_name: String::new(),
            expected_tenant: state.expected_tenant.clone(),
            issued_at: self.clock.now(),
            expires_at: state.expiry(),
            bulk_job: None,
            status: LinkStatus::Issued,
            updated_at: self.clock.now(),
        });
        if let Some(error) = redirect.error {
            let description = clip(redirect.error_description.as_deref().unwrap_or_default(), REDIRECT_ERROR_CHARS);
            let error = clip(&error, REDIRECT_ERROR_CHARS);
            self.audit.record(&actor, "onboarding.consent-declined", format!("link {}: {error}", link.id)).await?;
            self.set_status(msp_id, &mut link, LinkStatus::Declined { error, description }).await?;
            return Ok(ConsentResult { link, access_test: None, poll_jobs: 0 });
        }
        if !redirect.admin_consent.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(ConsentError::BadRedirect("the redirect carries neither admin_consent=True nor an error".into()));
        }
        let tenant_id = redirect
            .tenant
            .as_deref()
            .and_then(|t| TenantId::parse(t).ok())
            .ok_or_else(|| ConsentError::BadRedirect("the redirect carries no tenant id".into()))?;
        if let Some(expected) = &state.expected_tenant
            && expected != &tenant_id
        {
            let reason = format!("the link was made for tenant {expected}, but tenant {tenant_id} consented");
            self.set_status(msp_id, &mut link, LinkStatus::Refused { reason: reason.clone() }).await?;
            return Err(ConsentError::TenantMismatch(reason));
        }
        let credentials = self.msp_app_credentials(msp_id).await?;
        let test = self.test_tenant(msp_id, &tenant_id, &credentials).await?;
        if let Some(issuer) = test.token_issuer.as_deref()
            && !issuer.eq_ignore_ascii_case(tenant_id.as_str())
        {
            let reason = format!("the redirect names tenant {tenant_id}, but Microsoft's token was issued by tenant {issuer}");
            self.set_status(msp_id, &mut link, LinkStatus::Refused { reason: reason.clone() }).await?;
            return Err(ConsentError::TenantMismatch(reason));
        }
        let test = test.result;
        if !test.passed(crate::onboarding::Capability::Token) {
            let error = test.checks.first().and_then(|c| c.error.clone()).unwrap_or_default();
            self.store.put_access_test(msp_id, &test).await.map_err(AdminError::from)?;
            self.set_status(msp_id, &mut link, LinkStatus::Unconfirmed { tenant_id, error }).await?;
            return Ok(ConsentResult { link, access_test: Some(test), poll_jobs: 0 });
        }
        let audit = ("onboarding.consented", format!("tenant {tenant_id} (link {})", link.id));
        let poll_jobs = self.onboarded(&actor, msp_id, &link.customer_name, &credentials, &test, audit).await?;
        self.set_status(msp_id, &mut link, LinkStatus::Consented { tenant_id }).await?;
        Ok(ConsentResult { link, access_test: Some(test), poll_jobs })
    }

    /// A tenant whose app roles are granted (by its administrator's consent, or directly):
    /// watched with the MSP app, audited, its access test kept, its subscriptions started and
    /// first poll queued. The number of poll jobs queued.
    pub(super) async fn onboarded(
        &self,
        actor: &Access,
        msp_id: &MspId,
        name: &str,
        credentials: &M365AppCredentials,
        test: &AccessTest,
        (action, detail): (&str, String),
    ) -> Result<usize, AdminError> {
        let tenant = self.watch(msp_id, &test.tenant_id, name).await?;
        self.audit.record(actor, action, detail).await?;
        self.store.put_access_test(msp_id, test).await?;
        self.start_polling(&tenant, credentials, test).await
    }

    async fn set_status(&self, msp_id: &MspId, link: &mut ConsentLink, status: LinkStatus) -> Result<(), AdminError> {
        link.status = status;
        link.updated_at = self.clock.now();
        Ok(self.store.put_link(msp_id, link).await?)
    }

    /// The MSP app's credentials, held by the MSP.
    async fn msp_app_credentials(&self, msp_id: &MspId) -> Result<M365AppCredentials, AdminError> {
        let name = SecretName::msp_app(msp_id);
        let secret = self.secrets.get_secret(&name).await?.ok_or_else(|| AdminError::Refused("the MSP app is not registered".into()))?;
        let credentials: M365AppCredentials = serde_json::from_str(secret.expose())
            .map_err(|_| AdminError::Secret(crate::error::SecretError::Malformed { name: name.as_str().to_owned() }))?;
        Ok(credentials.held_by(msp_id))
    }

    /// Makes the tenant a watched tenant of the MSP using the MSP app (created when new, its
    /// credentials switched to the MSP app when it had its own).
    async fn watch(&self, msp_id: &MspId, tenant_id: &TenantId, name: &str) -> Result<Tenant, AdminError> {
        let name = if name.trim().is_empty() { tenant_id.to_string() } else { name.trim().to_owned() };
        let tenant = Tenant {
            msp_id: msp_id.clone(),
            tenant_id: tenant_id.clone(),
            name,
            domains: Vec::new(),
            break_glass_accounts: Vec::new(),
            company_links: std::collections::BTreeMap::new(),
            legacy_connectwise_company_id: None,
            m365_credentials_set: true,
            credentials_from_msp_app: true,
            webhook_auth_hash: None,
            webhook_registered: false,
            offboarded_at: None,
            streams: None,
            created_at: self.clock.now(),
        };
        if self.config.create_tenant(&tenant).await? {
            return Ok(tenant);
        }
        if let Some(existing) = self.config.get_tenant(msp_id, tenant_id).await? {
            crate::services::admin::refuse_offboarded(&existing)?;
        }
        self.config
            .update_tenant(msp_id, tenant_id, &TenantChange::MspAppConsented)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))
    }
}
