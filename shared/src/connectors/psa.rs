//! The [`TicketSystemProvider`] of production: builds the connector a destination's kind calls
//! for, from its settings and its credentials in the secret store, behind its request gate,
//! and reuses it for [`CLIENT_CACHE_TTL`] (or until the destination is saved again).
//!
//! This is the one place that maps a destination kind to a connector: adding a PSA is a new
//! connector module and one more arm here.

use super::autotask::AutotaskClient;
use super::connectwise::ConnectWiseClient;
use super::destination_url::DestinationPolicy;
use crate::clock::Clock;
use crate::destination::{Destination, DestinationCredentials, LEGACY_DESTINATION_ID};
use crate::error::SecretError;
use crate::ids::{DestinationId, MspId};
use crate::ports::{RequestBudget, RequestGate, SecretName, SecretStore, SinkSetupError, TicketSystem, TicketSystemProvider};
use crate::tenant::LegacyConnectWiseCredentials;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a built connector is reused before settings and credentials are read again.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(300);

type CacheKey = (MspId, DestinationId);
/// A built connector: when, for which version of its destination (`updated_at`), and the connector.
type CacheEntry = (Instant, DateTime<Utc>, Arc<dyn TicketSystem>);

/// Builds each destination's connector.
pub struct PsaProvider {
    secrets: Arc<dyn SecretStore>,
    /// Built on the first PSA call, not at start: loading TLS roots costs milliseconds of cold
    /// start that a Lambda without PSA work should not pay.
    http: std::sync::OnceLock<reqwest::Client>,
    policy: DestinationPolicy,
    budget: Arc<dyn RequestBudget>,
    clock: Arc<dyn Clock>,
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
        Self { secrets, http: std::sync::OnceLock::new(), policy, budget, clock, ttl: CLIENT_CACHE_TTL, cache: Mutex::new(HashMap::new()) }
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

    async fn build(&self, destination: &Destination) -> Result<Arc<dyn TicketSystem>, SinkSetupError> {
        if let Some(address) = destination.settings.address()
            && let Err(refused) = self.policy.validate(address)
        {
            // Saved before the rules existed, or edited in the store: permanent until the MSP
            // saves a permitted address. No request is made.
            tracing::warn!(msp_id = %destination.msp_id, destination = %destination.id, reason = %refused, "a destination's address is refused");
            return Err(SinkSetupError::NotConfigured(format!("destination {} has a refused address", destination.id)));
        }
        let credentials = self.credentials(destination).await?;
        if credentials.kind() != destination.kind() {
            return Err(SinkSetupError::NotConfigured(format!("destination {}'s credentials are for another kind", destination.id)));
        }
        let gate = RequestGate::for_destination(destination, self.budget.clone(), self.clock.clone());
        let http = self.http()?;
        Ok(match destination.kind() {
            crate::destination::DestinationKind::ConnectWise => {
                Arc::new(ConnectWiseClient::for_destination(http, destination, credentials, gate, self.policy)?)
            }
            crate::destination::DestinationKind::Autotask => {
                Arc::new(AutotaskClient::for_destination(http, destination, credentials, gate, self.policy)?)
            }
        })
    }
}

#[async_trait]
impl TicketSystemProvider for PsaProvider {
    async fn system_for(&self, destination: &Destination) -> Result<Arc<dyn TicketSystem>, SinkSetupError> {
        let key = (destination.msp_id.clone(), destination.id.clone());
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((built, version, system)) = cache.get(&key)
                && built.elapsed() < self.ttl
                && *version == destination.updated_at
            {
                return Ok(Arc::clone(system));
            }
        }
        let system = self.build(destination).await?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (Instant::now(), destination.updated_at, Arc::clone(&system)));
        Ok(system)
    }
}
