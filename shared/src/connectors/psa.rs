//! The [`TicketSystemProvider`] of production: builds the connector a destination's kind calls
//! for (a PSA's ticket system, or a channel's message connector), from its settings and its
//! credentials in the secret store, behind its request gate, and reuses it for
//! [`CLIENT_CACHE_TTL`] (or until the destination is saved again).
//!
//! This is the one place that maps a destination kind to a connector: adding a kind is a new
//! connector module and one more arm here.

use super::autotask::AutotaskClient;
use super::channels::email::EmailChannel;
use super::channels::signed_webhook::SignedWebhookChannel;
use super::channels::slack::SlackChannel;
use super::channels::teams::TeamsChannel;
use super::connectwise::ConnectWiseClient;
use super::destination_url::DestinationPolicy;
use super::halopsa::HaloPsaClient;
use super::tigerpaw::TigerpawClient;
use crate::clock::Clock;
use crate::destination::{Destination, DestinationCredentials, DestinationSettings, LEGACY_DESTINATION_ID};
use crate::error::SecretError;
use crate::ids::{DestinationId, MspId};
use crate::ports::{
    BillingTarget, BillingTargets, MailSender, MessageChannel, RequestBudget, RequestGate, SecretName, SecretStore, SinkSetupError,
    TicketSystem, TicketSystemProvider,
};
use crate::tenant::LegacyConnectWiseCredentials;
use crate::ticket::TicketRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a built connector is reused before settings and credentials are read again.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(300);

type CacheKey = (MspId, DestinationId);
/// A built connector: when, for which version of its destination (`updated_at`), and the connector.
type CacheEntry = (Instant, DateTime<Utc>, Built);

/// A built connector.
#[derive(Clone)]
enum Built {
    Tickets(Arc<dyn TicketSystem>),
    Messages(Arc<dyn MessageChannel>),
}

/// Builds each destination's connector.
pub struct PsaProvider {
    secrets: Arc<dyn SecretStore>,
    /// Built on the first PSA call, not at start: loading TLS roots costs milliseconds of cold
    /// start that a Lambda without PSA work should not pay.
    http: std::sync::OnceLock<reqwest::Client>,
    policy: DestinationPolicy,
    budget: Arc<dyn RequestBudget>,
    clock: Arc<dyn Clock>,
    /// Sends the e-mail of e-mail destinations (`None`: e-mail destinations cannot be built).
    mail: Option<Arc<dyn MailSender>>,
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, CacheEntry>>,
}

impl std::fmt::Debug for PsaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PsaProvider").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl PsaProvider {
    /// A provider reading credentials from `secrets`, calling PSAs through a
    /// [`super::destination_url::destination_http_client`] of `policy` (built on first use),
    /// counting requests in `budget`.
    #[must_use]
    pub fn new(secrets: Arc<dyn SecretStore>, policy: DestinationPolicy, budget: Arc<dyn RequestBudget>, clock: Arc<dyn Clock>) -> Self {
        Self {
            secrets,
            http: std::sync::OnceLock::new(),
            policy,
            budget,
            clock,
            mail: None,
            ttl: CLIENT_CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Sends e-mail destinations' messages through `mail`.
    #[must_use]
    pub fn with_mail(mut self, mail: Arc<dyn MailSender>) -> Self {
        self.mail = Some(mail);
        self
    }

    /// Uses `http` instead of building a client (tests).
    #[must_use]
    pub fn with_http(self, http: reqwest::Client) -> Self {
        let _ = self.http.set(http);
        self
    }

    fn http(&self) -> Result<reqwest::Client, SinkSetupError> {
        if let Some(http) = self.http.get() {
            return Ok(http.clone());
        }
        let built = super::destination_url::destination_http_client(self.policy)
            .map_err(|e| SinkSetupError::NotConfigured(format!("no HTTP client: {e}")))?;
        Ok(self.http.get_or_init(|| built).clone())
    }

    /// Changes how long a built connector is reused (zero: rebuild every time).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The destination's credentials: its own secret, or for the destination carried over from
    /// the single-PSA days, the ConnectWise keys stored then.
    async fn credentials(&self, destination: &Destination) -> Result<DestinationCredentials, SinkSetupError> {
        let name = SecretName::destination(&destination.msp_id, &destination.id);
        if let Some(secret) = self.secrets.get_secret(&name).await? {
            return serde_json::from_str(secret.expose())
                .map_err(|_| SinkSetupError::Secret(SecretError::Malformed { name: name.as_str().to_owned() }));
        }
        if destination.id.as_str() == LEGACY_DESTINATION_ID {
            let legacy = SecretName::legacy_connectwise(&destination.msp_id);
            if let Some(secret) = self.secrets.get_secret(&legacy).await? {
                let keys: LegacyConnectWiseCredentials = serde_json::from_str(secret.expose())
                    .map_err(|_| SinkSetupError::Secret(SecretError::Malformed { name: legacy.as_str().to_owned() }))?;
                return Ok(DestinationCredentials::ConnectWise {
                    company_id: keys.company_id,
                    public_key: keys.public_key,
                    private_key: keys.private_key,
                    client_id: keys.client_id,
                });
            }
        }
        Err(SinkSetupError::NotConfigured(format!("destination {} has no credentials", destination.id)))
    }

    /// A PSA connector's parts: the destination's credentials (of its kind), its request gate and
    /// the HTTP client.
    async fn parts(&self, destination: &Destination) -> Result<(DestinationCredentials, RequestGate, reqwest::Client), SinkSetupError> {
        let credentials = self.credentials(destination).await?;
        if credentials.kind() != destination.kind() {
            return Err(SinkSetupError::NotConfigured(format!("destination {}'s credentials are for another kind", destination.id)));
        }
        let gate = RequestGate::for_destination(destination, self.budget.clone(), self.clock.clone());
        Ok((credentials, gate, self.http()?))
    }

    async fn build(&self, destination: &Destination) -> Result<Built, SinkSetupError> {
        if let Some(address) = destination.settings.address()
            && let Err(refused) = self.policy.validate(address)
        {
            // Saved before the rules existed, or edited in the store: permanent until the MSP
            // saves a permitted address. No request is made.
            tracing::warn!(msp_id = %destination.msp_id, destination = %destination.id, reason = %refused, "a destination's address is refused");
            return Err(SinkSetupError::NotConfigured(format!("destination {} has a refused address", destination.id)));
        }
        if let DestinationSettings::Email(settings) = &destination.settings {
            let mail = self.mail.clone().ok_or_else(|| SinkSetupError::NotConfigured("e-mail is not configured here".into()))?;
            return Ok(Built::Messages(Arc::new(EmailChannel::new(mail, settings.clone()))));
        }
        let (credentials, gate, http) = self.parts(destination).await?;
        let service_url = |url: &crate::secret::SecretString| {
            self.policy.validate_service(url.expose(), crate::destination::service_hosts(destination.kind())).map(drop).map_err(|refused| {
                tracing::warn!(msp_id = %destination.msp_id, destination = %destination.id, reason = %refused, "a destination's webhook URL is refused");
                SinkSetupError::NotConfigured(format!("destination {} has a refused webhook URL", destination.id))
            })
        };
        Ok(match (&destination.settings, credentials) {
            (DestinationSettings::ConnectWise { .. }, credentials) => {
                Built::Tickets(Arc::new(ConnectWiseClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            (DestinationSettings::Autotask(_), credentials) => {
                Built::Tickets(Arc::new(AutotaskClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            (DestinationSettings::HaloPsa(_), credentials) => {
                Built::Tickets(Arc::new(HaloPsaClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            (DestinationSettings::Tigerpaw(_), credentials) => {
                Built::Tickets(Arc::new(TigerpawClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            (DestinationSettings::Teams {}, DestinationCredentials::Teams { workflow_url }) => {
                service_url(&workflow_url)?;
                Built::Messages(Arc::new(TeamsChannel::new(http, workflow_url, gate)))
            }
            (DestinationSettings::Slack {}, DestinationCredentials::Slack { webhook_url }) => {
                service_url(&webhook_url)?;
                Built::Messages(Arc::new(SlackChannel::new(http, webhook_url, gate)))
            }
            (DestinationSettings::Webhook(settings), DestinationCredentials::Webhook { secret, previous_secret, previous_valid_until }) => {
                let previous = previous_secret.zip(previous_valid_until);
                Built::Messages(Arc::new(SignedWebhookChannel::new(http, settings.url.clone(), secret, previous, gate, self.clock.clone())))
            }
            _ => return Err(SinkSetupError::NotConfigured(format!("destination {}'s credentials are for another kind", destination.id))),
        })
    }

    async fn built(&self, destination: &Destination) -> Result<Built, SinkSetupError> {
        let key = (destination.msp_id.clone(), destination.id.clone());
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((built, version, connector)) = cache.get(&key)
                && built.elapsed() < self.ttl
                && *version == destination.updated_at
            {
                return Ok(connector.clone());
            }
        }
        let connector = self.build(destination).await?;
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, (Instant::now(), destination.updated_at, connector.clone()));
        Ok(connector)
    }
}

/// The billing side of a PSA destination (see [`crate::billing::sync`]): Autotask contracts and
/// ConnectWise agreement additions; Tigerpaw agreements and HaloPSA recurring invoices,
/// report-only (their write paths are unconfirmed). Other kinds answer that billing is not
/// available.
#[async_trait]
impl BillingTargets for PsaProvider {
    async fn billing_for(&self, destination: &Destination) -> Result<Arc<dyn BillingTarget>, SinkSetupError> {
        if let Some(address) = destination.settings.address()
            && self.policy.validate(address).is_err()
        {
            return Err(SinkSetupError::NotConfigured(format!("destination {} has a refused address", destination.id)));
        }
        match &destination.settings {
            DestinationSettings::Autotask(_) => {
                let (credentials, gate, http) = self.parts(destination).await?;
                Ok(Arc::new(AutotaskClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            DestinationSettings::ConnectWise { .. } => {
                let (credentials, gate, http) = self.parts(destination).await?;
                Ok(Arc::new(ConnectWiseClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            DestinationSettings::Tigerpaw(_) => {
                let (credentials, gate, http) = self.parts(destination).await?;
                Ok(Arc::new(TigerpawClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            DestinationSettings::HaloPsa(_) => {
                let (credentials, gate, http) = self.parts(destination).await?;
                Ok(Arc::new(HaloPsaClient::for_destination(http, destination, credentials, gate, self.policy)?))
            }
            _ => Err(SinkSetupError::NotConfigured(format!("billing sync is not available for destination {} (its kind)", destination.id))),
        }
    }
}

#[async_trait]
impl TicketSystemProvider for PsaProvider {
    async fn system_for(&self, destination: &Destination) -> Result<Arc<dyn TicketSystem>, SinkSetupError> {
        match self.built(destination).await? {
            Built::Tickets(system) => Ok(system),
            Built::Messages(_) => Err(SinkSetupError::NotConfigured(format!("destination {} keeps no tickets", destination.id))),
        }
    }

    async fn channel_for(&self, destination: &Destination) -> Result<Arc<dyn MessageChannel>, SinkSetupError> {
        match self.built(destination).await? {
            Built::Messages(channel) => Ok(channel),
            Built::Tickets(_) => Err(SinkSetupError::NotConfigured(format!("destination {} is not a message channel", destination.id))),
        }
    }

    /// Each PSA's own link ([`super::connectwise::links`], [`super::autotask::links`],
    /// [`super::halopsa::links`]); Tigerpaw and the channels have none. A link to an address the
    /// destination policy refuses is not offered either.
    fn ticket_url(&self, destination: &Destination, ticket: &TicketRef) -> Option<url::Url> {
        if let Some(address) = destination.settings.address()
            && self.policy.validate(address).is_err()
        {
            return None;
        }
        match &destination.settings {
            DestinationSettings::ConnectWise { api_root, .. } => super::connectwise::links::ticket_url(api_root, ticket),
            DestinationSettings::Autotask(settings) => super::autotask::links::ticket_url(settings.zone_url.as_deref(), ticket),
            DestinationSettings::HaloPsa(settings) => super::halopsa::links::ticket_url(&settings.url, ticket),
            DestinationSettings::Tigerpaw(_)
            | DestinationSettings::Teams {}
            | DestinationSettings::Slack {}
            | DestinationSettings::Webhook(_)
            | DestinationSettings::Email(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::destination::{AutotaskSettings, EmailSettings, HaloPsaSettings, Routing, TigerpawSettings};
    use crate::memory::{MemoryRequestBudget, MemorySecretStore};

    fn provider(policy: DestinationPolicy) -> PsaProvider {
        PsaProvider::new(Arc::new(MemorySecretStore::default()), policy, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock))
    }

    fn destination(settings: DestinationSettings) -> Destination {
        Destination {
            msp_id: MspId::parse("acme").unwrap(),
            id: DestinationId::parse("psa").unwrap(),
            name: "PSA".into(),
            enabled: true,
            settings,
            routing: Routing::default(),
            requests_per_hour: None,
            credentials_set: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn link(policy: DestinationPolicy, settings: DestinationSettings) -> Option<String> {
        provider(policy).ticket_url(&destination(settings), &TicketRef::new("1001")).map(String::from)
    }

    #[test]
    fn each_psa_kind_links_its_ticket_through_its_own_adapter() {
        let cw = link(
            DestinationPolicy::STRICT,
            DestinationSettings::ConnectWise {
                api_root: "https://api-na.myconnectwise.net/v4_6_release/apis/3.0".into(),
                ticket_type: None,
                source: None,
            },
        );
        assert_eq!(
            cw.as_deref(),
            Some(
                "https://na.myconnectwise.net/v4_6_release/services/system_io/router/openrecord.rails?locale=en_US&recordType=ServiceFv&recid=1001"
            )
        );
        let autotask =
            AutotaskSettings { zone_url: Some("https://webservices15.autotask.net/atservicesrest/".into()), ..AutotaskSettings::default() };
        assert_eq!(
            link(DestinationPolicy::STRICT, DestinationSettings::Autotask(autotask)).as_deref(),
            Some("https://ww15.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID=1001")
        );
        let halo = HaloPsaSettings { url: "https://msp.halopsa.com".into(), tenant: None, ticket_type: None, note_outcome: None };
        assert_eq!(
            link(DestinationPolicy::STRICT, DestinationSettings::HaloPsa(halo)).as_deref(),
            Some("https://msp.halopsa.com/tickets?id=1001")
        );
    }

    #[test]
    fn tigerpaw_and_the_channels_have_no_ticket_link() {
        let tigerpaw: TigerpawSettings = serde_json::from_value(serde_json::json!({"url": "https://tigerpaw.msp.example"})).unwrap();
        assert_eq!(link(DestinationPolicy::STRICT, DestinationSettings::Tigerpaw(tigerpaw)), None);
        assert_eq!(link(DestinationPolicy::STRICT, DestinationSettings::Teams {}), None);
        assert_eq!(link(DestinationPolicy::STRICT, DestinationSettings::Slack {}), None);
        let email = EmailSettings { recipients: vec!["soc@msp.example".into()], subject_prefix: None };
        assert_eq!(link(DestinationPolicy::STRICT, DestinationSettings::Email(email)), None);
    }

    #[test]
    fn a_destination_at_an_address_the_policy_refuses_gets_no_link() {
        let local = || DestinationSettings::ConnectWise {
            api_root: "http://127.0.0.1:8080/v4_6_release/apis/3.0".into(),
            ticket_type: None,
            source: None,
        };
        assert_eq!(link(DestinationPolicy::STRICT, local()), None);
        assert!(link(DestinationPolicy::LOOPBACK_ALLOWED, local()).is_some_and(|url| url.starts_with("http://127.0.0.1:8080/")));
    }
}
