//! config-api: the MSP-facing REST API behind API Gateway (`/v1/...`). Every route except
//! health requires `Authorization: Bearer <token>`; the token decides the MSP and the
//! principal, whose role (or an automation's scopes) and alert categories the services check
//! ([`vigil::access`]); every read and write is keyed by the MSP. Credentials are write-only.
//! Errors are RFC 7807 problem+json (403 when the role does not allow a route).
//!
//! Routes:
//! - `POST /v1/tenants`, `GET /v1/tenants`, `GET /v1/tenants/{tenant_id}` (with `company_links`)
//! - `PUT /v1/tenants/{tenant_id}/m365-credentials` (write-only)
//! - `PUT /v1/tenants/{tenant_id}/destinations/{destination_id}/company` (`null` unlinks;
//!   linking releases the tenant's alerts the destination held)
//! - `GET /v1/tenants/{tenant_id}/streams` (coverage and health), `PUT` (choose streams)
//! - `GET /v1/msp`, `PUT /v1/msp` (the MSP's own `publisher_identifier`, `first_lookback_hours`,
//!   `backfill_ticket_max_age_hours`; absent fields keep their value)
//! - `GET /v1/destinations`, `GET|PUT|DELETE /v1/destinations/{destination_id}` (credentials
//!   write-only), `POST /v1/destinations/{destination_id}/test`, and lookups in the PSA:
//!   `GET /v1/destinations/{destination_id}/companies?search=`, `/places`, `/priorities`,
//!   `/statuses?place=`, `/contacts?company=&email=`, `/technicians`, `/sites?company=` (tests
//!   and lookups call the PSA: each is limited per API token per minute, then 429 with
//!   `Retry-After`)
//! - `GET /v1/alerts?limit=&cursor=&status=&severity=&category=&policy=&tenant=&mode=&from=&to=`
//!   (newest change first; a page may be short of `limit` when filters pass few alerts, and
//!   `next_cursor` continues it),
//!   `GET /v1/alerts/{alert_id}` (with each destination's delivery), `PATCH /v1/alerts/{alert_id}`
//!   (status, assignee, classification, comment; resolving announces the alert so its tickets
//!   close), `POST /v1/alerts/{alert_id}/suppress`
//! - `GET /v1/siem/alerts?since=&limit=&from=&to=`: the SIEM feed (alerts created or changed after the
//!   cursor, in the order of the changes, at least once; a caught-up feed re-reads the last
//!   minute, so deduplicate on `id` + `version`)
//! - `GET|POST /v1/policies`, `GET|PUT|DELETE /v1/policies/{policy_id}`, `POST /v1/policies/test`
//! - `GET /v1/tenants/{tenant_id}/policies` (the tenant's own switches),
//!   `PUT /v1/tenants/{tenant_id}/policies/{policy_id}` (on/off per tenant),
//!   `PUT /v1/tenants/{tenant_id}/policy-context` (mail domains, break-glass accounts)
//! - `GET|POST /v1/suppressions`, `DELETE /v1/suppressions/{suppression_id}`
//! - `POST /v1/tenants/{tenant_id}/replays` (a policy in shadow over the tenant's last hours of
//!   audit content, run by the audit-poller: 202 and `Location`),
//!   `GET /v1/tenants/{tenant_id}/replays/{replay_id}` (status, progress, would-be alerts)
//! - `POST /v1/tenants/{tenant_id}/offboarding` (`tenants:offboard`: stop watching the tenant,
//!   purge its data after `retention_days`; run by the audit-poller: 202, or 200 when already
//!   under way), `GET /v1/tenants/{tenant_id}/offboarding` (phase, purge date, what was removed)
//! - `GET /v1/me` (the caller's principal, role and permissions); owners (principals:manage):
//!   `GET|POST /v1/principals`, `GET|PATCH|DELETE /v1/principals/{principal_id}`,
//!   `GET|POST /v1/principals/{principal_id}/tokens` (a token's text is in the answer to its
//!   creation only), `DELETE /v1/principals/{principal_id}/tokens/{token_id}` (revoke),
//!   `POST /v1/principals/{principal_id}/tokens/{token_id}/rotate`
//! - `GET /v1/admin-relationships?bucket=&recommendation=&kind=&status=&customer=&sort=&limit=&cursor=`
//!   (the MSP's delegated admin access to each customer, with the summary),
//!   `GET /v1/admin-relationships/summary`, `GET /v1/admin-relationships/export` (CSV);
//!   `POST /v1/admin-relationships/removal-previews`, `POST /v1/admin-relationships/removals`
//!   (with the preview's token), `GET /v1/admin-relationships/removals`,
//!   `POST /v1/admin-relationships/refresh` (read the partner tenant now)
//! - `GET /v1/mailbox-counts` (each tenant's current protected-mailbox figure and the total),
//!   `GET /v1/mailbox-counts/export` (CSV), `GET /v1/tenants/{tenant_id}/mailbox-counts?from=&to=`
//!   (the daily series), `/export` (CSV); `GET|PUT /v1/billing/settings` (the series' retention)
//! - `GET /v1/tenants/{tenant_id}/licences`: the tenant's licences as last read (snapshot,
//!   status changes, licence findings raised, "needs re-consent")
//! - `GET /v1/billing/mappings`, `PUT|DELETE /v1/tenants/{tenant_id}/billing/{destination_id}`
//!   (checked in the PSA), `POST /v1/billing/dry-run`, `POST /v1/billing/sync`
//! - Onboarding: `PUT|GET /v1/onboarding/app` (the MSP's multi-tenant app; credentials
//!   write-only), `POST|GET /v1/onboarding/consent-links`, `GET /v1/consent/{msp_id}` (Microsoft's
//!   consent redirect: no token, the signed single-use `state` authenticates it),
//!   `POST|GET /v1/tenants/{tenant_id}/access-test`, `GET /v1/onboarding/discovery`,
//!   `POST /v1/onboarding/bulk`, `GET /v1/onboarding/bulk/{job_id}`
//! - `GET /v1/audit-log?limit=&cursor=`: every configuration change, newest first, with the
//!   principal who made it
//! - `GET /console` (no token): the web console for MSP staff, its assets compiled in
//!   ([`console_routes`]); it signs in with an API token and calls the routes above
//! - Gone (410, naming the route that replaced them): `PUT|GET /v1/psa/connectwise`,
//!   `PUT /v1/tenants/{tenant_id}/connectwise-company`. Settings saved through them carry over
//!   as the destination `connectwise`.
//!
//! The router needs no AWS: [`build`] (the production wiring) and the Lambda binary are behind
//! the default `aws` feature, so `cargo test -p config-api --no-default-features` runs every
//! route on the in-memory adapters.

mod access_routes;
mod alert_routes;
mod billing_routes;
pub mod console_routes;
mod coverage_routes;
mod destination_routes;
pub mod extract;
mod licence_routes;
mod mailbox_routes;
mod offboarding_routes;
mod onboarding_routes;
pub mod openapi;
pub mod problem;
pub mod rate_limits;
mod relationship_routes;
mod replay_routes;
mod routes;
mod siem_routes;
pub mod strict_json;
mod tuning_routes;

use axum::Router;
use std::sync::Arc;
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::services::access::AccessService;
use vigil::services::admin::AdminService;
use vigil::services::destinations::DestinationsService;
use vigil::services::replay::ReplayService;
use vigil::services::tuning::TuningService;
use vigil::settings::{ConfigError, required};

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// Who a token is; principals, tokens and the audit log.
    pub access: Arc<AccessService>,
    pub admin: Arc<AdminService>,
    pub tuning: Arc<TuningService>,
    /// Destinations, their PSA lookups and the tenants' company links.
    pub destinations: Arc<DestinationsService>,
    /// Replays of a policy over a tenant's last days (run by the audit-poller).
    pub replays: Arc<ReplayService>,
    /// The admin-relationship report.
    pub relationships: Arc<vigil::services::relationships::RelationshipReportService>,
    /// Previews and confirmations of admin-relationship removals (run by the audit-poller).
    pub removals: Arc<vigil::services::relationship_removal::RelationshipRemovalService>,
    /// Billing mappings and sync runs.
    pub billing: Arc<vigil::services::billing::BillingService>,
    /// The protected-mailbox figures and the billing settings.
    pub mailbox_counts: Arc<vigil::services::mailbox_counts::MailboxCountService>,
    /// Each tenant's licences as last read.
    pub licences: Arc<vigil::services::licences::LicenceService>,
    /// Per-token counts of the routes that call a PSA ([`rate_limits`]).
    pub rate_limits: Arc<dyn vigil::ports::RateLimiter>,
    /// The MSP app, consent links, access tests, discovery and bulk onboarding.
    pub onboarding: Arc<vigil::services::onboarding::OnboardingService>,
    /// Offboarding tenants (the work is the audit-poller's).
    pub offboarding: Arc<vigil::services::offboarding::OffboardingRequests>,
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
    /// `TICKETS_QUEUE_URL`: where alerts resolved through the API, and alerts released by a
    /// company link, are announced to the ticket dispatcher.
    pub tickets_queue_url: String,
    /// `POLL_JOBS_QUEUE_URL`: where replays are sent to the audit-poller.
    pub poll_jobs_queue_url: String,
    /// `EVENTS_QUEUE_URL`: where a billing sync run through the API reports a quantity changed
    /// by hand in a PSA (Vigil's own event, for the evaluator).
    pub events_queue_url: String,
    /// `DESTINATION_ALLOW_LOOPBACK` (default `false`; only the local stack sets it): which PSA
    /// addresses the API accepts and calls.
    pub destination_policy: DestinationPolicy,
    /// `PSA_CALLBACK_BASE_URL` (optional): where PSAs with callbacks call Vigil back
    /// (`…/webhooks/psa`); unset: `https://{the API's host}/webhooks/psa` (the local stack sets
    /// it, its gateway speaking plain http).
    pub callback_base: Option<String>,
    /// `NOTIFY_FROM_ADDRESS` (optional): the SES-verified sender of e-mail destinations, for
    /// their test message.
    pub notify_from_address: Option<String>,
    /// `API_BASE_URL` (optional): the API's own address; consent links send Microsoft's
    /// redirect to `{API_BASE_URL}/v1/consent/{msp}`. Unset: to the host the app registration
    /// arrived on (API Gateway's own domain in a deployment).
    pub api_base_url: Option<String>,
    /// `M365_LOGIN_BASE`, `M365_MANAGEMENT_BASE`, `M365_GRAPH_BASE`: Microsoft's endpoints (per
    /// cloud), for consent links and access tests.
    pub m365_login_base: String,
    pub m365_management_base: String,
    pub m365_graph_base: String,
    /// `PUBLISHER_IDENTIFIER`: sent on the access test's Management Activity API call.
    pub publisher_identifier: String,
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
            tickets_queue_url: required(lookup, "TICKETS_QUEUE_URL")?,
            poll_jobs_queue_url: required(lookup, "POLL_JOBS_QUEUE_URL")?,
            events_queue_url: required(lookup, "EVENTS_QUEUE_URL")?,
            destination_policy: DestinationPolicy::from_lookup(lookup)?,
            callback_base: lookup("PSA_CALLBACK_BASE_URL").filter(|v| !v.trim().is_empty()),
            notify_from_address: lookup("NOTIFY_FROM_ADDRESS").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
            api_base_url: lookup("API_BASE_URL").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
            m365_login_base: required(lookup, "M365_LOGIN_BASE")?,
            m365_management_base: required(lookup, "M365_MANAGEMENT_BASE")?,
            m365_graph_base: required(lookup, "M365_GRAPH_BASE")?,
            publisher_identifier: required(lookup, "PUBLISHER_IDENTIFIER")?,
        })
    }
}

/// Builds the state once per container.
///
/// Makes no network call and loads no TLS roots: the PSA client is built on the first
/// destination test or lookup.
#[cfg(feature = "aws")]
#[must_use]
pub fn build(config: &Config, sdk: &aws_config::SdkConfig) -> AppState {
    use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore, DynamoIngestState};
    use vigil::aws::policy_store::DynamoPolicyStore;
    use vigil::aws::secrets::SecretsManagerStore;
    use vigil::aws::sqs::SqsQueue;
    use vigil::clock::SystemClock;
    use vigil::connectors::psa::PsaProvider;
    use vigil::ports::{MessageQueue, RequestBudget, SecretStore};

    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let config_store = Arc::new(DynamoConfigStore::new(dynamo.clone(), config.config_table.clone()));
    let config_store_for_report = config_store.clone();
    let config_store_for_offboarding = config_store.clone();
    let audit = vigil::services::access::AuditTrail { log: config_store.clone(), clock: Arc::new(SystemClock) };
    let access = Arc::new(AccessService {
        config: config_store.clone(),
        principals: config_store.clone(),
        audit: audit.clone(),
        clock: Arc::new(SystemClock),
    });
    let alert_store = Arc::new(DynamoAlertStore::new(dynamo.clone(), config.alerts_table.clone()));
    let secrets: Arc<dyn SecretStore> =
        Arc::new(SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), config.secret_prefix.clone()));
    let onboarding_secrets = secrets.clone();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let tickets: Arc<dyn MessageQueue> = Arc::new(SqsQueue::new(sqs.clone(), config.tickets_queue_url.clone()));
    let admin = Arc::new(AdminService {
        config: config_store.clone(),
        alerts: alert_store.clone(),
        ingest: Arc::new(DynamoIngestState::new(dynamo.clone(), config.state_table.clone())),
        secrets: secrets.clone(),
        clock: Arc::new(SystemClock),
        audit: audit.clone(),
    });
    let tuning = Arc::new(TuningService {
        config: config_store.clone(),
        policies: Arc::new(DynamoPolicyStore::new(dynamo.clone(), config.config_table.clone())),
        alerts: alert_store,
        tickets: tickets.clone(),
        clock: Arc::new(SystemClock),
        audit: audit.clone(),
    });
    let poll_jobs: Arc<dyn MessageQueue> = Arc::new(SqsQueue::new(sqs, config.poll_jobs_queue_url.clone()));
    let poll_jobs_for_report = poll_jobs.clone();
    let poll_jobs_for_offboarding = poll_jobs.clone();
    let removals = Arc::new(vigil::services::relationship_removal::RelationshipRemovalService {
        store: config_store.clone(),
        jobs: poll_jobs.clone(),
        audit: audit.clone(),
        clock: Arc::new(SystemClock),
    });
    let replays = Arc::new(ReplayService {
        tuning: tuning.clone(),
        replays: Arc::new(vigil::aws::replays::DynamoReplayStore::new(dynamo.clone(), config.state_table.clone())),
        jobs: poll_jobs,
        clock: Arc::new(SystemClock),
    });
    // Lookups and tests count against the destination's `requests_per_hour` like the
    // dispatcher's calls.
    let budget: Arc<dyn RequestBudget> =
        Arc::new(vigil::aws::request_budget::DynamoRequestBudget::new(dynamo.clone(), config.alerts_table.clone()));
    let rate_limits = Arc::new(vigil::aws::rate_limits::DynamoRateLimiter::new(dynamo.clone(), config.alerts_table.clone()));
    let policy = config.destination_policy;
    let mail = vigil::aws::mail::SesMailSender::new(aws_sdk_sesv2::Client::new(sdk), config.notify_from_address.clone());
    let systems = Arc::new(PsaProvider::new(secrets, policy, budget, Arc::new(SystemClock)).with_mail(Arc::new(mail)));
    let destinations = Arc::new(DestinationsService {
        admin: admin.clone(),
        destinations: config_store.clone(),
        systems: systems.clone(),
        tickets,
        policy,
        callback_base: config.callback_base.clone(),
        billing: Some((config_store.clone(), systems.clone())),
    });
    let relationships = Arc::new(vigil::services::relationships::RelationshipReportService {
        store: config_store_for_report.clone(),
        config: config_store_for_report.clone(),
        jobs: poll_jobs_for_report.clone(),
        clock: Arc::new(SystemClock),
    });
    let licences = Arc::new(vigil::services::licences::LicenceService {
        config: config_store_for_report.clone(),
        store: config_store_for_report.clone(),
    });
    let onboarding = Arc::new(onboarding_service(config, config_store.clone(), onboarding_secrets, poll_jobs_for_report, audit.clone()));
    let events: Arc<dyn MessageQueue> = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), config.events_queue_url.clone()));
    let sync = Arc::new(vigil::services::billing_sync::BillingSyncService {
        billing: config_store.clone(),
        counts: config_store.clone(),
        destinations: config_store.clone(),
        targets: systems.clone(),
        events,
        clock: Arc::new(SystemClock),
    });
    let billing = Arc::new(vigil::services::billing::BillingService {
        billing: config_store.clone(),
        counts: config_store.clone(),
        config: config_store.clone(),
        destinations: config_store,
        targets: systems,
        sync,
        audit: audit.clone(),
        clock: Arc::new(SystemClock),
    });
    let mailbox_counts = Arc::new(vigil::services::mailbox_counts::MailboxCountService {
        counts: config_store_for_report.clone(),
        config: config_store_for_report,
        audit,
        clock: Arc::new(SystemClock),
    });
    let offboarding = Arc::new(vigil::services::offboarding::OffboardingRequests {
        config: config_store_for_offboarding.clone(),
        offboardings: Arc::new(vigil::aws::offboarding::DynamoOffboardingStore::new(dynamo.clone(), config.config_table.clone())),
        audit: config_store_for_offboarding,
        jobs: poll_jobs_for_offboarding,
        clock: Arc::new(SystemClock),
    });
    AppState {
        access,
        admin,
        tuning,
        destinations,
        replays,
        relationships,
        removals,
        billing,
        mailbox_counts,
        licences,
        rate_limits,
        offboarding,
        onboarding,
    }
}

/// Onboarding with the Microsoft connectors (built lazily: no TLS roots are loaded until a
/// consent or an access test calls Microsoft).
#[cfg(feature = "aws")]
fn onboarding_service(
    config: &Config,
    store: Arc<vigil::aws::dynamodb::DynamoConfigStore>,
    secrets: Arc<dyn vigil::ports::SecretStore>,
    poll_jobs: Arc<dyn vigil::ports::MessageQueue>,
    audit: vigil::services::access::AuditTrail,
) -> vigil::services::onboarding::OnboardingService {
    use vigil::connectors::LazyHttp;
    use vigil::connectors::m365::{M365Endpoints, ManagementActivityClient};
    let http = LazyHttp::new();
    let (login, graph) = (config.m365_login_base.clone(), config.m365_graph_base.clone());
    let endpoints = M365Endpoints { login_base: login.clone(), management_base: config.m365_management_base.clone() };
    let (http_directory, graph_directory) = (http.clone(), graph.clone());
    vigil::services::onboarding::OnboardingService {
        config: store.clone(),
        store: store.clone(),
        relationships: store,
        secrets,
        jobs: poll_jobs,
        apis: vigil::services::onboarding::TenantApis {
            probe: Arc::new(vigil::connectors::consent::TokenProbe::new(http.clone(), &login, &graph)),
            subscriptions: Arc::new(ManagementActivityClient::new(http.clone(), endpoints, config.publisher_identifier.clone())),
            alerts: Arc::new(vigil::connectors::graph::GraphAlertsClient::new(http.clone(), login.clone(), graph.clone())),
            licences: Arc::new(vigil::connectors::licences::GraphLicencesClient::new(http.clone(), login.clone(), graph.clone())),
            sign_ins: Arc::new(vigil::connectors::partner::PartnerRelationshipsClient::new(http, login.clone(), graph)),
            directory: Arc::new(vigil::connectors::directory::GraphDirectoryClient::new(http_directory, &login, &graph_directory)),
        },
        audit,
        clock: Arc::new(vigil::clock::SystemClock),
        login_base: login,
        api_base: config.api_base_url.clone(),
        default_streams: vigil::services::poll::PollSettings::default().streams,
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
