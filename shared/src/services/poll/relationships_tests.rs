//! Tests of the partner-tenant read: scheduled once a day per connected MSP, relationships
//! replaced, a refusal recorded and not retried, a transient failure retried, and an MSP that
//! disconnected skipped.

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::error::{Classified, ErrorClass, SourceError};
use crate::ids::TenantId;
use crate::memory::*;
use crate::ports::{ConfigStore, RelationshipStore, SecretStore as _};
use crate::secret::SecretString;
use crate::services::poll::PollSettings;
use crate::tenant::Msp;
use chrono::Utc;
use std::sync::Arc;

const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

struct Fixture {
    service: PollService,
    config: Arc<MemoryConfigStore>,
    source: Arc<MemoryRelationshipSource>,
    jobs: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    msp: MspId,
}

async fn fixture() -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let secrets = Arc::new(MemorySecretStore::default());
    let msp = MspId::parse("acme").unwrap();
    let mut profile = Msp::new(msp.clone(), "Acme".into(), Utc::now());
    profile.partner_tenant_id = Some(TenantId::parse(PARTNER).unwrap());
    config.create_msp(&profile).await.unwrap();
    let customer = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    config.create_tenant(&crate::contract::sample_tenant(&msp, &customer)).await.unwrap();
    let credentials = serde_json::json!({"client_id": "partner-app", "client_secret": "s3cret"}).to_string();
    secrets.put_secret(&SecretName::partner_app(&msp), &SecretString::new(credentials)).await.unwrap();
    let source = Arc::new(MemoryRelationshipSource::default());
    source.set(&TenantId::parse(PARTNER).unwrap(), vec![crate::contract::sample_relationship("rel-1", &customer)]);
    let audit = Arc::new(MemoryAuditSource::default());
    let jobs = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let service = PollService {
        config: config.clone(),
        state: Arc::new(MemoryIngestState::default()),
        secrets,
        source: audit.clone(),
        subscriptions: audit,
        security_alerts: Arc::new(MemorySecurityAlertSource::default()),
        events: Arc::new(MemoryQueue::default()),
        dead_letters: Arc::new(MemoryQueue::default()),
        jobs: jobs.clone(),
        replays: Arc::new(MemoryReplayStore::default()),
        relationship_source: source.clone(),
        relationships: config.clone(),
        clock: clock.clone(),
        settings: PollSettings { streams: vec![], ..PollSettings::default() },
    };
    Fixture { service, config, source, jobs, clock, msp }
}

/// The partner-tenant jobs of one tick.
async fn partner_jobs_of_a_tick(f: &Fixture) -> Vec<PollJob> {
    f.service.fan_out().await.unwrap();
    f.jobs
        .drain()
        .iter()
        .map(|body| serde_json::from_str::<PollJob>(body).unwrap())
        .filter(|j| matches!(j, PollJob::AdminRelationships { .. }))
        .collect()
}

#[tokio::test]
async fn a_connected_partner_tenant_is_read_once_a_day_and_its_relationships_replace_the_stored_ones() {
    let f = fixture().await;
    let jobs = partner_jobs_of_a_tick(&f).await;
    assert_eq!(jobs, vec![PollJob::AdminRelationships { msp_id: f.msp.clone() }]);
    f.service.run_job(jobs[0].clone()).await.unwrap();
    assert_eq!(f.config.relationships(&f.msp).await.unwrap().len(), 1);
    let state = f.config.refresh_state(&f.msp).await.unwrap().unwrap();
    assert_eq!((state.relationships, state.error.as_deref(), state.last_success), (1, None, Some(f.clock.now())));
    f.clock.advance(chrono::Duration::hours(READ_EVERY_HOURS) - chrono::Duration::seconds(1));
    assert!(partner_jobs_of_a_tick(&f).await.is_empty(), "not again within the day");
    f.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(partner_jobs_of_a_tick(&f).await.len(), 1, "a day later");
    f.source.set(&TenantId::parse(PARTNER).unwrap(), vec![]);
    f.service.read_partner_tenant(&f.msp).await.unwrap();
    assert!(f.config.relationships(&f.msp).await.unwrap().is_empty(), "a relationship no longer listed is gone");
}

#[tokio::test]
async fn a_refused_read_is_recorded_and_kept_until_tomorrow_and_a_transient_one_is_retried() {
    let f = fixture().await;
    f.service.read_partner_tenant(&f.msp).await.unwrap();
    f.clock.advance(chrono::Duration::hours(1));
    f.source.fail_next(SourceError::AccessRefused {
        code: "Forbidden".into(),
        message: "the app lacks DelegatedAdminRelationship.Read.All".into(),
    });
    f.service.read_partner_tenant(&f.msp).await.unwrap();
    let state = f.config.refresh_state(&f.msp).await.unwrap().unwrap();
    assert!(state.error.as_deref().unwrap().contains("DelegatedAdminRelationship.Read.All"), "{state:?}");
    assert_eq!(state.relationships, 1, "the last good read's count, whose relationships stay");
    assert_eq!(f.config.relationships(&f.msp).await.unwrap().len(), 1);
    assert!(partner_jobs_of_a_tick(&f).await.is_empty(), "a refusal waits for the next day");
    f.source.fail_next(SourceError::Throttled { retry_after: None });
    let error = f.service.read_partner_tenant(&f.msp).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "the queue retries it");
}

#[tokio::test]
async fn an_msp_without_a_partner_tenant_or_its_credentials_is_not_read() {
    let f = fixture().await;
    f.config.put_msp(&Msp::new(f.msp.clone(), "Acme".into(), Utc::now())).await.unwrap();
    assert!(partner_jobs_of_a_tick(&f).await.is_empty());
    f.service.read_partner_tenant(&f.msp).await.unwrap();
    assert_eq!(f.source.reads(), 0, "a job sent before it disconnected does nothing");
    let mut g = fixture().await;
    g.service.secrets = Arc::new(MemorySecretStore::default());
    g.service.read_partner_tenant(&g.msp).await.unwrap();
    let state = g.config.refresh_state(&g.msp).await.unwrap().unwrap();
    assert!(state.error.unwrap().contains("no Microsoft app credentials"), "missing credentials are recorded, not retried");
    assert_eq!(g.source.reads(), 0);
}
