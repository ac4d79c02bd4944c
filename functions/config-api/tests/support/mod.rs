//! The config API in memory, for the integration tests: two MSPs (`acme`, `other`) with their
//! tokens, in-memory stores, an in-memory PSA per destination, the tickets queue, and a caller
//! that sends any body to any route.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use config_api::{AppState, app};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;
use vigil::clock::SystemClock;
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::ids::MspId;
use vigil::memory::{MemoryAlertStore, MemoryConfigStore, MemoryQueue, MemorySecretStore, MemoryTicketSystemProvider};
use vigil::services::access::{AccessService, AuditTrail, NewToken};
use vigil::services::admin::AdminService;
use vigil::services::destinations::DestinationsService;

pub const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

/// A ConnectWise API root the strict destination policy accepts.
pub const CW_ROOT: &str = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0";

/// ConnectWise credentials whose private key is `priv-secret`.
pub fn connectwise_credentials() -> Value {
    serde_json::json!({"kind": "connectwise", "company_id": "acme", "public_key": "pub", "private_key": "priv-secret",
                       "client_id": "3f0c0a3e-0000-4000-8000-000000000001"})
}

/// A `PUT /v1/destinations/{id}` body: a ConnectWise destination with credentials.
pub fn connectwise_destination() -> Value {
    serde_json::json!({
        "name": "ConnectWise", "settings": {"kind": "connectwise", "api_root": CW_ROOT},
        "routing": {"default_place": "1", "priorities": {"High": "8"}}, "credentials": connectwise_credentials()
    })
}

pub struct Api {
    pub state: AppState,
    pub secrets: Arc<MemorySecretStore>,
    /// One in-memory PSA per destination id.
    pub psa: MemoryTicketSystemProvider,
    /// The tickets queue (what the dispatcher would receive).
    pub tickets: Arc<MemoryQueue>,
    /// The poll-jobs queue (what the audit-poller would receive: replays).
    pub poll_jobs: Arc<MemoryQueue>,
    /// The billing side of each destination (in-memory agreements).
    pub billing_targets: Arc<vigil::memory::MemoryBillingTargets>,
    /// The events queue (billing hand-edit reports).
    pub events: Arc<MemoryQueue>,
    pub acme_token: String,
    pub other_token: String,
}

pub async fn api() -> Api {
    let secrets = Arc::new(MemorySecretStore::default());
    let config = Arc::new(MemoryConfigStore::default());
    let audit = AuditTrail { log: config.clone(), clock: Arc::new(SystemClock) };
    let access =
        Arc::new(AccessService { config: config.clone(), principals: config.clone(), audit: audit.clone(), clock: Arc::new(SystemClock) });
    let admin = Arc::new(AdminService {
        ingest: Arc::new(vigil::memory::MemoryIngestState::default()),
        config: config.clone(),
        alerts: Arc::new(MemoryAlertStore::default()),
        secrets: secrets.clone(),
        clock: Arc::new(SystemClock),
        audit: audit.clone(),
    });
    let owner_token = |msp: &'static str| {
        let access = access.clone();
        async move {
            let (_, issued) = access
                .create_msp_with_owner(&MspId::parse(msp).unwrap(), msp, "Olive Owner", &format!("olive@{msp}.example"))
                .await
                .unwrap();
            issued.token.expose().to_owned()
        }
    };
    let acme_token = owner_token("acme").await;
    let other_token = owner_token("other").await;
    let tickets = Arc::new(MemoryQueue::default());
    let tuning = Arc::new(vigil::services::tuning::TuningService {
        config: admin.config.clone(),
        policies: Arc::new(vigil::memory::MemoryPolicyStore::default()),
        alerts: admin.alerts.clone(),
        tickets: tickets.clone(),
        clock: Arc::new(SystemClock),
        audit: audit.clone(),
    });
    let psa = MemoryTicketSystemProvider::default();
    let billing_store = Arc::new(vigil::memory::MemoryBillingStore::default());
    let billing_targets = Arc::new(vigil::memory::MemoryBillingTargets::default());
    let destinations = Arc::new(DestinationsService {
        admin: admin.clone(),
        destinations: config.clone(),
        systems: Arc::new(psa.clone()),
        tickets: tickets.clone(),
        // Strict, as in production: PSA addresses on loopback are refused.
        policy: DestinationPolicy::default(),
        callback_base: None,
        billing: Some((billing_store.clone(), billing_targets.clone())),
    });
    let poll_jobs = Arc::new(MemoryQueue::default());
    let replays = Arc::new(vigil::services::replay::ReplayService {
        tuning: tuning.clone(),
        replays: Arc::new(vigil::memory::MemoryReplayStore::default()),
        jobs: poll_jobs.clone(),
        clock: Arc::new(SystemClock),
    });
    let rate_limits = Arc::new(vigil::memory::MemoryRateLimiter::default());
    let relationships = Arc::new(vigil::services::relationships::RelationshipReportService {
        store: config.clone(),
        config: config.clone(),
        jobs: poll_jobs.clone(),
        clock: Arc::new(SystemClock),
    });
    let removals = Arc::new(vigil::services::relationship_removal::RelationshipRemovalService {
        store: config.clone(),
        jobs: poll_jobs.clone(),
        audit: audit.clone(),
        clock: Arc::new(SystemClock),
    });
    let events = Arc::new(MemoryQueue::default());
    let sync = Arc::new(vigil::services::billing_sync::BillingSyncService {
        billing: billing_store.clone(),
        counts: billing_store.clone(),
        destinations: config.clone(),
        targets: billing_targets.clone(),
        events: events.clone(),
        clock: Arc::new(SystemClock),
    });
    let billing = Arc::new(vigil::services::billing::BillingService {
        billing: billing_store.clone(),
        counts: billing_store.clone(),
        config: config.clone(),
        destinations: config.clone(),
        targets: billing_targets.clone(),
        sync,
        audit: audit.clone(),
        clock: Arc::new(SystemClock),
    });
    let mailbox_counts = Arc::new(vigil::services::mailbox_counts::MailboxCountService {
        counts: billing_store,
        config: config.clone(),
        audit,
        clock: Arc::new(SystemClock),
    });
    let licences = Arc::new(vigil::services::licences::LicenceService {
        config: config.clone(),
        store: Arc::new(vigil::memory::MemoryLicenceStore::default()),
    });
    let onboarding = Arc::new(vigil::services::onboarding::OnboardingService {
        config: config.clone(),
        store: Arc::new(vigil::memory::MemoryOnboardingStore::default()),
        relationships: config.clone(),
        secrets: secrets.clone(),
        jobs: poll_jobs.clone(),
        apis: vigil::services::onboarding::TenantApis {
            probe: Arc::new(vigil::memory::MemoryAccessProbe::default()),
            subscriptions: Arc::new(vigil::memory::MemoryAuditSource::default()),
            alerts: Arc::new(vigil::memory::MemorySecurityAlertSource::default()),
            licences: Arc::new(vigil::memory::MemoryLicenceSource::healthy()),
            sign_ins: Arc::new(vigil::memory::MemoryRelationshipSource::default()),
            directory: Arc::new(vigil::memory::MemoryDirectory::default()),
        },
        audit: AuditTrail { log: config.clone(), clock: Arc::new(SystemClock) },
        clock: Arc::new(SystemClock),
        login_base: "https://login.example".into(),
        api_base: Some("https://vigil.example".into()),
        default_streams: vigil::ids::AuditStream::all(),
    });
    let offboarding = Arc::new(vigil::services::offboarding::OffboardingRequests {
        config: config.clone(),
        offboardings: Arc::new(vigil::memory::MemoryOffboardingStore::default()),
        audit: config.clone(),
        jobs: poll_jobs.clone(),
        clock: Arc::new(SystemClock),
    });
    let state = AppState {
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
        onboarding,
        offboarding,
    };
    Api { state, secrets, psa, tickets, poll_jobs, billing_targets, events, acme_token, other_token }
}

impl Api {
    /// Sends a request and returns (status, content type, JSON body or Null).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (StatusCode, String, Value) {
        self.call_bytes(method, path, token, body.map(|b| b.as_bytes().to_vec())).await
    }

    /// As [`Api::call`], with a body of raw bytes (not necessarily UTF-8 or JSON).
    pub async fn call_bytes(&self, method: &str, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> (StatusCode, String, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let response = app(self.state.clone()).oneshot(request.body(Body::from(body.unwrap_or_default())).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A bodiless request with `token`, returning (status, headers, JSON body or Null).
    pub async fn call_with_headers(&self, method: &str, path: &str, token: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {token}"));
        let response = app(self.state.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// As `acme`, with a JSON body (`null`: none).
    pub async fn send(&self, method: &str, path: &str, body: Value) -> (StatusCode, String, Value) {
        self.acme(method, path, Some(body).filter(|b| !b.is_null())).await
    }

    /// As `acme`, with a JSON body.
    pub async fn acme(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, String, Value) {
        self.call(method, path, Some(&self.acme_token.clone()), body.map(|b| b.to_string()).as_deref()).await
    }
}

impl Api {
    /// A new token of `msp`'s principal `principal_id`, issued by the operator.
    pub async fn token_for(&self, msp: &str, principal_id: &vigil::ids::PrincipalId) -> String {
        let operator = vigil::access::Access::operator(&MspId::parse(msp).unwrap());
        let request = NewToken { name: "test".into(), expires_in_days: None };
        self.state.access.issue_token(&operator, principal_id, request).await.unwrap().token.expose().to_owned()
    }
}

/// Asserts an RFC 7807 problem with `status`.
pub fn assert_problem(result: &(StatusCode, String, Value), status: StatusCode) {
    assert_eq!(result.0, status, "{:?}", result.2);
    assert_eq!(result.1, "application/problem+json");
    assert_eq!(result.2["status"], status.as_u16());
    assert!(result.2["title"].is_string() && result.2["detail"].is_string() && result.2["type"].is_string());
}
