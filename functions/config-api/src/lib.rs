//! config-api: the MSP-facing REST API behind API Gateway (`/v1/...`). Every route except
//! health requires `Authorization: Bearer <token>`; the token decides the MSP, and every read
//! and write is keyed by it. Credentials are write-only. Errors are RFC 7807 problem+json.
//!
//! Routes:
//! - `POST /v1/tenants`, `GET /v1/tenants`, `GET /v1/tenants/{tenant_id}`
//! - `PUT /v1/tenants/{tenant_id}/m365-credentials` (write-only)
//! - `PUT /v1/tenants/{tenant_id}/connectwise-company`
//! - `GET /v1/tenants/{tenant_id}/streams` (coverage and health), `PUT` (choose streams)
//! - `GET /v1/msp`, `PUT /v1/msp` (the MSP's own `publisher_identifier`, `first_lookback_hours`,
//!   `backfill_ticket_max_age_hours`; absent fields keep their value)
//! - `PUT /v1/psa/connectwise` (keys write-only), `GET /v1/psa/connectwise`
//! - `GET /v1/alerts?limit=&cursor=&status=&severity=&category=&policy=&tenant=&mode=&from=&to=`,
//!   `GET /v1/alerts/{alert_id}`, `PATCH /v1/alerts/{alert_id}` (status, assignee,
//!   classification, comment), `POST /v1/alerts/{alert_id}/suppress`
//! - `GET|POST /v1/policies`, `GET|PUT|DELETE /v1/policies/{policy_id}`, `POST /v1/policies/test`
//! - `PUT /v1/tenants/{tenant_id}/policies/{policy_id}` (on/off per tenant),
//!   `PUT /v1/tenants/{tenant_id}/policy-context` (mail domains, break-glass accounts)
//! - `GET|POST /v1/suppressions`, `DELETE /v1/suppressions/{suppression_id}`

pub mod extract;
pub mod problem;
mod routes;
pub mod strict_json;
mod tuning_routes;

use aws_config::SdkConfig;
use axum::Router;
use std::sync::Arc;
use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore, DynamoIngestState};
use vigil::aws::policy_store::DynamoPolicyStore;
use vigil::aws::secrets::SecretsManagerStore;
use vigil::clock::SystemClock;
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::services::admin::AdminService;
use vigil::services::tuning::TuningService;
use vigil::settings::{ConfigError, required};

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    pub admin: Arc<AdminService>,
    pub tuning: Arc<TuningService>,
    /// Which PSA addresses the API accepts (strict unless the local stack opts into loopback).
    pub destination_policy: DestinationPolicy,
}

/// The API's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONFIG_TABLE`.
    pub config_table: String,
    /// `ALERTS_TABLE`.
    pub alerts_table: String,
    /// `STATE_TABLE`: the poller's coverage ledgers (read-only here).
    pub state_table: String,
    /// `SECRET_PREFIX`.
    pub secret_prefix: String,
    /// `DESTINATION_ALLOW_LOOPBACK` (default `false`; only the local stack sets it): which PSA
    /// addresses the API accepts.
    pub destination_policy: DestinationPolicy,
}

impl Config {
    /// Reads the configuration through `lookup`.
    ///
    /// # Errors
    /// Names the first missing variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config_table: required(lookup, "CONFIG_TABLE")?,
            alerts_table: required(lookup, "ALERTS_TABLE")?,
            state_table: required(lookup, "STATE_TABLE")?,
            secret_prefix: required(lookup, "SECRET_PREFIX")?,
            destination_policy: DestinationPolicy::from_lookup(lookup)?,
        })
    }
}

/// Builds the state once per container.
#[must_use]
pub fn build(config: &Config, sdk: &SdkConfig) -> AppState {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let config_store = Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone()));
    let alert_store = Arc::new(DynamoAlertStore::new(dynamo.clone(), config.alerts_table.clone()));
    let tuning = Arc::new(TuningService {
        config: config_store.clone(),
        policies: Arc::new(DynamoPolicyStore::new(dynamo.clone(), config.config_table.clone())),
        alerts: alert_store.clone(),
        clock: Arc::new(SystemClock),
    });
    AppState {
        tuning,
        admin: Arc::new(AdminService {
            config: config_store,
            alerts: alert_store,
            ingest: Arc::new(DynamoIngestState::new(dynamo, config.state_table.clone())),
            secrets: Arc::new(SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), config.secret_prefix.clone())),
            clock: Arc::new(SystemClock),
        }),
        destination_policy: config.destination_policy,
    }
}

/// Largest body most routes accept (tenants, credentials, suppressions, triage …).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Largest body of `POST /v1/policies` and `PUT /v1/policies/{id}`.
pub const POLICY_BODY_LIMIT: usize = 256 * 1024;
/// Largest body of `POST /v1/policies/test` (sample records included); under Lambda's 6 MB
/// payload limit, so the caller gets a 413 problem rather than a gateway error.
pub const POLICY_TEST_BODY_LIMIT: usize = 5 * 1024 * 1024;

/// The router, callable in tests without a network.
pub fn app(state: AppState) -> Router {
    routes::router().layer(axum::extract::DefaultBodyLimit::max(DEFAULT_BODY_LIMIT)).with_state(state)
}
