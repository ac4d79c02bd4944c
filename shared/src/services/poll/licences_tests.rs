//! Tests of the licence read: scheduled daily per tenant with credentials (the MSP's period),
//! findings sent once as Vigil's own events and cleared once, a refusal raising "needs
//! re-consent" without forgetting the licences, a transient failure retried, and the Defender
//! finding only where Threat Intelligence policies are on.

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::error::{Classified, ErrorClass, SourceError};
use crate::licences::{DefenderPlan, LicenceSnapshot, LicenceStatus, LicenceSubscription, LicensedSku, PrepaidUnits};
use crate::memory::*;
use crate::ports::{ConfigStore, SecretName, SecretStore as _};
use crate::secret::SecretString;
use crate::services::poll::PollSettings;
use crate::tenant::Msp;
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

struct Fixture {
    service: PollService,
    config: Arc<MemoryConfigStore>,
    source: Arc<MemoryLicenceSource>,
    store: Arc<MemoryLicenceStore>,
    policies: Arc<MemoryPolicyStore>,
    jobs: Arc<MemoryQueue>,
    events: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    msp: MspId,
    tenant: TenantId,
}

async fn fixture() -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let secrets = Arc::new(MemorySecretStore::default());
    let msp = MspId::parse("acme").unwrap();
    config.create_msp(&Msp::new(msp.clone(), "Acme".into(), Utc::now())).await.unwrap();
    let tenant = TenantId::parse(TENANT).unwrap();
    config.create_tenant(&crate::contract::sample_tenant(&msp, &tenant)).await.unwrap();
    let credentials = serde_json::json!({"client_id": "app", "client_secret": "s3cret"}).to_string();
    secrets.put_secret(&SecretName::m365_app(&msp, &tenant), &SecretString::new(credentials)).await.unwrap();
    let source = Arc::new(MemoryLicenceSource::default());
    let store = Arc::new(MemoryLicenceStore::default());
    let policies = Arc::new(MemoryPolicyStore::default());
    let audit = Arc::new(MemoryAuditSource::default());
    let jobs = Arc::new(MemoryQueue::default());
    let events = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let service = PollService {
        config: config.clone(),
        state: Arc::new(MemoryIngestState::default()),
        secrets,
        source: audit.clone(),
        subscriptions: audit,
        security_alerts: Arc::new(MemorySecurityAlertSource::default()),
        events: events.clone(),
        dead_letters: Arc::new(MemoryQueue::default()),
        jobs: jobs.clone(),
        replays: Arc::new(MemoryReplayStore::default()),
        relationship_source: Arc::new(MemoryRelationshipSource::default()),
        relationships: config.clone(),
        mailbox_directory: Arc::new(MemoryMailboxDirectory::default()),
        mailbox_counts: Arc::new(MemoryBillingStore::default()),
        billing_jobs: Arc::new(crate::memory::MemoryQueue::default()),
        mail: Arc::new(MemoryMailSender::default()),
        licences: LicencePorts { source: source.clone(), store: store.clone(), policies: policies.clone() },
        clock: clock.clone(),
        settings: PollSettings { streams: vec![], ..PollSettings::default() },
    };
    Fixture { service, config, source, store, policies, jobs, events, clock, msp, tenant }
}

/// A tenant with Business Premium (one subscription in `status`) and a Defender for Office
/// 365 Plan 2 add-on whose product is in `defender`.
fn snapshot(status: LicenceStatus, next_in_days: i64, now: chrono::DateTime<Utc>, defender: LicenceStatus) -> LicenceSnapshot {
    let usable = status.usable();
    let defender_sku = LicensedSku {
        sku_id: "3dd6cf57-d688-4eed-ba52-9e40b5468c3e".into(),
        sku_part_number: "THREAT_INTELLIGENCE".into(),
        capability_status: defender,
        consumed_units: 5,
        prepaid_units: PrepaidUnits { enabled: if defender.usable() { 5 } else { 0 }, suspended: 5, ..PrepaidUnits::default() },
        defender_plans: vec![DefenderPlan::Plan2],
        subscription_ids: vec!["sub-d".into()],
    };
    LicenceSnapshot {
        skus: vec![
            defender_sku,
            LicensedSku {
                sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46".into(),
                sku_part_number: "SPB".into(),
                capability_status: status,
                consumed_units: 18,
                prepaid_units: PrepaidUnits { enabled: if usable { 20 } else { 0 }, ..PrepaidUnits::default() },
                defender_plans: vec![],
                subscription_ids: vec!["sub-1".into()],
            },
        ],
        subscriptions: vec![LicenceSubscription {
            id: "sub-1".into(),
            sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46".into(),
            sku_part_number: "SPB".into(),
            status,
            is_trial: false,
            next_lifecycle_at: Some(now + chrono::Duration::days(next_in_days)),
            total_licences: 20,
            created_at: None,
        }],
    }
}

fn licence_jobs(f: &Fixture) -> Vec<PollJob> {
    f.jobs
        .drain()
        .iter()
        .map(|body| serde_json::from_str::<PollJob>(body).unwrap())
        .filter(|j| matches!(j, PollJob::Licences { .. }))
        .collect()
}

/// The licence events sent so far (and forgets them).
fn events(f: &Fixture) -> Vec<Value> {
    f.events
        .drain()
        .iter()
        .map(|body| serde_json::from_str::<AuditEventsMessage>(body).unwrap())
        .inspect(|m| assert_eq!(m.content_id, crate::messages::LICENCE_EVENTS))
        .flat_map(|m| m.records)
        .collect()
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events.iter().map(|e| (e["Finding"].as_str().unwrap().to_owned(), e["Operation"].as_str().unwrap().to_owned())).collect()
}

#[tokio::test]
async fn each_tenant_is_read_once_per_the_msps_period_and_a_tenant_without_credentials_not_at_all() {
    let f = fixture().await;
    let other = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-000000000002").unwrap();
    let mut without = crate::contract::sample_tenant(&f.msp, &other);
    without.m365_credentials_set = false;
    f.config.create_tenant(&without).await.unwrap();
    // Ten minutes into an hour, so the next tick falls in the same hour.
    let ten_past =
        chrono::DurationRound::duration_trunc(f.clock.now(), chrono::Duration::hours(1)).unwrap() + chrono::Duration::minutes(10);
    f.clock.set(ten_past);
    f.service.fan_out().await.unwrap();
    let jobs = licence_jobs(&f);
    let hour = chrono::DurationRound::duration_trunc(f.clock.now(), chrono::Duration::hours(1)).unwrap();
    assert_eq!(jobs, vec![PollJob::Licences { msp_id: f.msp.clone(), tenant_id: f.tenant.clone(), at: Some(hour) }]);
    f.clock.advance(chrono::Duration::seconds(1));
    f.service.fan_out().await.unwrap();
    assert_eq!(licence_jobs(&f), jobs, "sent again while the first waits in the queue: the same job, so the same events");
    f.service.run_job(jobs[0].clone()).await.unwrap();
    f.clock.advance(chrono::Duration::hours(23));
    f.service.fan_out().await.unwrap();
    assert!(licence_jobs(&f).is_empty(), "not again within the day");
    f.clock.advance(chrono::Duration::hours(1));
    f.service.fan_out().await.unwrap();
    assert_eq!(licence_jobs(&f).len(), 1, "a day later");
    let mut msp = f.config.get_msp(&f.msp).await.unwrap().unwrap();
    msp.licence_read_every_hours = 6;
    f.config.put_msp(&msp).await.unwrap();
    f.service.run_job(PollJob::Licences { msp_id: f.msp.clone(), tenant_id: f.tenant.clone(), at: None }).await.unwrap();
    f.clock.advance(chrono::Duration::hours(6));
    f.service.fan_out().await.unwrap();
    assert_eq!(licence_jobs(&f).len(), 1, "the MSP's own period");
}

#[tokio::test]
async fn the_lifecycle_raises_one_event_per_state_and_clears_it_and_a_rerun_sends_nothing_new() {
    let f = fixture().await;
    let now = f.clock.now();
    f.source.set(&f.tenant, snapshot(LicenceStatus::Enabled, 200, now, LicenceStatus::Enabled));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert!(events(&f).is_empty(), "nothing wrong");
    f.clock.advance(chrono::Duration::days(1));
    f.source.set(&f.tenant, snapshot(LicenceStatus::Warning, 30, f.clock.now(), LicenceStatus::Enabled));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    let warning = events(&f);
    assert_eq!(summary(&warning), vec![("grace_period".into(), "Vigil.LicenceFinding".into())]);
    assert_eq!(warning[0]["OrganizationName"], "Contoso");
    assert!(warning[0]["LicenceMessage"].as_str().unwrap().contains("was Enabled, now Warning"), "{:#}", warning[0]);
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert!(events(&f).is_empty(), "still in grace: nothing new");
    f.clock.advance(chrono::Duration::days(30));
    f.source.set(&f.tenant, snapshot(LicenceStatus::Suspended, 90, f.clock.now(), LicenceStatus::Enabled));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    let suspended = events(&f);
    assert_eq!(
        summary(&suspended),
        vec![("grace_period".into(), "Vigil.LicenceFindingCleared".into()), ("suspended".into(), "Vigil.LicenceFinding".into())]
    );
    assert_eq!(suspended[0]["CreationTime"], warning[0]["CreationTime"], "the cleared event lands on the alert it raised");
    f.clock.advance(chrono::Duration::days(2));
    f.source.set(&f.tenant, snapshot(LicenceStatus::Enabled, 365, f.clock.now(), LicenceStatus::Enabled));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert_eq!(summary(&events(&f)), vec![("suspended".into(), "Vigil.LicenceFindingCleared".into())], "renewed");
    let state = f.store.licences(&f.msp, &f.tenant).await.unwrap().unwrap();
    assert!(state.raised.is_empty());
    assert_eq!(state.changes.len(), 3, "Enabled → Warning → Suspended → Enabled");
}

#[tokio::test]
async fn a_refusal_raises_needs_reconsent_and_keeps_the_licences_and_a_transient_failure_is_retried() {
    let f = fixture().await;
    f.source.set(&f.tenant, snapshot(LicenceStatus::Warning, 20, f.clock.now(), LicenceStatus::Enabled));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert_eq!(events(&f).len(), 1);
    f.source.fail_next(SourceError::AccessRefused {
        code: "Authorization_RequestDenied".into(),
        message: "the app lacks Organization.Read.All".into(),
    });
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    let refused = events(&f);
    assert_eq!(summary(&refused), vec![("needs_reconsent".into(), "Vigil.LicenceFinding".into())], "the grace finding is not cleared");
    assert!(refused[0]["LicenceMessage"].as_str().unwrap().contains("Organization.Read.All"));
    let state = f.store.licences(&f.msp, &f.tenant).await.unwrap().unwrap();
    assert!(state.needs_reconsent && state.snapshot.subscriptions.len() == 1, "never \"no licences\"");
    f.source.fail_next(SourceError::Throttled { retry_after: Some(std::time::Duration::from_secs(3)) });
    let throttled = f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap_err();
    assert_eq!((throttled.class(), throttled.retry_after()), (ErrorClass::Transient, Some(std::time::Duration::from_secs(3))));
    assert!(events(&f).is_empty());
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert_eq!(summary(&events(&f)), vec![("needs_reconsent".into(), "Vigil.LicenceFindingCleared".into())]);
    // A token refused by the identity platform is the connection problem's to report.
    f.source.fail_next(SourceError::AccessRefused { code: "AADSTS7000215".into(), message: "invalid_client".into() });
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert!(events(&f).is_empty(), "no second alert beside the connection problem");
    let state = f.store.licences(&f.msp, &f.tenant).await.unwrap().unwrap();
    assert!(!state.needs_reconsent && state.error.is_some() && state.snapshot.subscriptions.len() == 1);
}

#[tokio::test]
async fn a_retried_job_sends_the_same_events_so_the_evaluator_counts_them_once() {
    let f = fixture().await;
    f.source.set(&f.tenant, snapshot(LicenceStatus::Suspended, 20, f.clock.now(), LicenceStatus::Enabled));
    let at = Some(f.clock.now());
    f.service.read_licences(&f.msp, &f.tenant, at).await.unwrap();
    let first = events(&f);
    // As if the state write had failed after the events went out: the job runs again.
    f.store.put_licences(&f.msp, &f.tenant, &crate::licences::TenantLicences::default()).await.unwrap();
    f.clock.advance(chrono::Duration::minutes(5));
    f.service.read_licences(&f.msp, &f.tenant, at).await.unwrap();
    let again = events(&f);
    assert_eq!(first[0]["Id"], again[0]["Id"], "the same record id");
}

#[tokio::test]
async fn the_defender_plan_lapsing_is_raised_only_where_threat_intelligence_policies_are_on() {
    let f = fixture().await;
    f.source.set(&f.tenant, snapshot(LicenceStatus::Enabled, 200, f.clock.now(), LicenceStatus::Enabled));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert!(events(&f).is_empty(), "Plan 2 works");
    f.source.set(&f.tenant, snapshot(LicenceStatus::Enabled, 200, f.clock.now(), LicenceStatus::Suspended));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    let lapsed = events(&f);
    let defender = lapsed.iter().find(|e| e["Finding"] == "defender_plan_missing").expect("raised");
    assert_eq!(
        defender["MissingRecordTypes"],
        "28 (ThreatIntelligence), 41 (ThreatIntelligenceUrl), 47 (ThreatIntelligenceAtpContent), 64 (AirInvestigation)"
    );
    assert_eq!(defender["SubscriptionId"], crate::licences::findings::DEFENDER_SUBJECT);
    // Every Threat Intelligence built-in switched off for the tenant: nothing to say any more.
    let threat = crate::policy::catalogue::builtin_definitions()
        .iter()
        .filter(|d| d.activity.record_types.iter().any(|t| [28, 41, 47, 64].contains(t)));
    for definition in threat {
        f.policies.set_tenant_policy(&f.msp, &f.tenant, &definition.id, false).await.unwrap();
    }
    let watched = f.service.threat_record_types(&f.msp, &f.tenant).await.unwrap();
    assert!(watched.is_empty(), "{watched:?}");
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    assert_eq!(summary(&events(&f)), vec![("defender_plan_missing".into(), "Vigil.LicenceFindingCleared".into())]);
}

/// Vigil's self-monitoring events sent so far (and forgets every event).
fn conditions(f: &Fixture) -> Vec<(String, String)> {
    f.events
        .drain()
        .iter()
        .map(|body| serde_json::from_str::<AuditEventsMessage>(body).unwrap())
        .filter(|m| m.content_id == crate::messages::SELF_MONITORING_EVENTS)
        .flat_map(|m| m.records)
        .map(|e| (e["Condition"].as_str().unwrap().to_owned(), e["Operation"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn licence_reads_that_keep_failing_raise_one_condition_and_the_next_good_read_clears_it() {
    let f = fixture().await;
    f.source.set(&f.tenant, snapshot(LicenceStatus::Enabled, 200, f.clock.now(), LicenceStatus::Enabled));
    f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    f.events.drain();
    let at = Some(f.clock.now());
    for attempt in 1..=5 {
        f.source.fail_next(SourceError::Unavailable("503 from Graph".into()));
        assert!(f.service.read_licences(&f.msp, &f.tenant, at).await.is_err(), "retried");
        let expected: Vec<(String, String)> =
            if attempt == 3 { vec![("reads_failing".into(), "Vigil.SelfMonitoring".into())] } else { vec![] };
        assert_eq!(conditions(&f), expected, "attempt {attempt}");
    }
    f.service.read_licences(&f.msp, &f.tenant, at).await.unwrap();
    assert_eq!(conditions(&f), vec![("reads_failing".into(), "Vigil.SelfMonitoringCleared".into())]);
    f.service.read_licences(&f.msp, &f.tenant, at).await.unwrap();
    assert!(conditions(&f).is_empty());
}

#[tokio::test]
async fn a_refused_licence_read_is_not_a_failing_read() {
    let f = fixture().await;
    f.source.set(&f.tenant, snapshot(LicenceStatus::Enabled, 200, f.clock.now(), LicenceStatus::Enabled));
    for _ in 0..4 {
        f.source.fail_next(SourceError::AccessRefused { code: "Authorization_RequestDenied".into(), message: "no role".into() });
        f.service.read_licences(&f.msp, &f.tenant, None).await.unwrap();
    }
    assert!(conditions(&f).is_empty(), "needs re-consent speaks for it");
}
