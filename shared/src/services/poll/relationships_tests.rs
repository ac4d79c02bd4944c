//! Tests of the partner-tenant read: scheduled once a day per connected MSP, relationships
//! replaced, a refusal recorded and not retried, a transient failure retried, and an MSP that
//! disconnected skipped; findings sent once as Vigil's own events and cleared once; confirmed
//! removals carried out once under retries and crashes.

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::error::{Classified, ErrorClass, SourceError};
use crate::ids::TenantId;
use crate::memory::*;
use crate::ports::{AdminRelationshipSource as _, ConfigStore, RelationshipStore, SecretStore as _};
use crate::relationships::RelationshipStatus;
use crate::relationships::removal::{Removal, RemovalNotificationStatus};
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
    events: Arc<MemoryQueue>,
    mail: Arc<MemoryMailSender>,
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
    let events = Arc::new(MemoryQueue::default());
    let mail = Arc::new(MemoryMailSender::default());
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
        relationship_source: source.clone(),
        relationships: config.clone(),
        mailbox_directory: Arc::new(crate::memory::MemoryMailboxDirectory::default()),
        mailbox_counts: Arc::new(crate::memory::MemoryBillingStore::default()),
        billing_jobs: Arc::new(crate::memory::MemoryQueue::default()),
        mail: mail.clone(),
        licences: crate::services::poll::LicencePorts::in_memory(),
        clock: clock.clone(),
        settings: PollSettings { streams: vec![], ..PollSettings::default() },
    };
    Fixture { service, config, source, jobs, events, mail, clock, msp }
}

/// The partner-tenant jobs of one tick.
async fn partner_jobs_of_a_tick(f: &Fixture) -> Vec<PollJob> {
    f.service.fan_out().await.unwrap();
    let at_once: Vec<PollJob> = f.jobs.drain().iter().map(|body| serde_json::from_str::<PollJob>(body).unwrap()).collect();
    assert!(!at_once.iter().any(|j| matches!(j, PollJob::AdminRelationships { .. })), "the partner read waits for its head start");
    f.jobs
        .drain_delayed()
        .iter()
        .map(|(body, delay)| {
            assert_eq!(*delay, PollSettings::default().partner_read_head_start);
            serde_json::from_str::<PollJob>(body).unwrap()
        })
        .filter(|j| matches!(j, PollJob::AdminRelationships { .. }))
        .collect()
}

#[tokio::test]
async fn a_connected_partner_tenant_is_read_once_a_day_and_its_relationships_replace_the_stored_ones() {
    let f = fixture().await;
    let jobs = partner_jobs_of_a_tick(&f).await;
    assert_eq!(jobs, vec![PollJob::AdminRelationships { msp_id: f.msp.clone(), at: Some(f.clock.now()) }]);
    f.service.run_job(jobs[0].clone()).await.unwrap();
    assert_eq!(f.config.relationships(&f.msp).await.unwrap().len(), 1);
    let state = f.config.refresh_state(&f.msp).await.unwrap().unwrap();
    assert_eq!((state.relationships, state.error.as_deref(), state.last_success), (1, None, Some(f.clock.now())));
    f.clock.advance(chrono::Duration::hours(READ_EVERY_HOURS) - chrono::Duration::seconds(1));
    assert!(partner_jobs_of_a_tick(&f).await.is_empty(), "not again within the day");
    f.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(partner_jobs_of_a_tick(&f).await.len(), 1, "a day later");
    f.source.set(&TenantId::parse(PARTNER).unwrap(), vec![]);
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    assert!(f.config.relationships(&f.msp).await.unwrap().is_empty(), "a relationship no longer listed is gone");
}

#[tokio::test]
async fn a_refused_read_is_recorded_and_kept_until_tomorrow_and_a_transient_one_is_retried() {
    let f = fixture().await;
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    f.clock.advance(chrono::Duration::hours(1));
    f.source.fail_next(SourceError::AccessRefused {
        code: "Forbidden".into(),
        message: "the app lacks DelegatedAdminRelationship.Read.All".into(),
    });
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    let state = f.config.refresh_state(&f.msp).await.unwrap().unwrap();
    assert!(state.error.as_deref().unwrap().contains("DelegatedAdminRelationship.Read.All"), "{state:?}");
    assert_eq!(state.relationships, 1, "the last good read's count, whose relationships stay");
    assert_eq!(f.config.relationships(&f.msp).await.unwrap().len(), 1);
    assert!(partner_jobs_of_a_tick(&f).await.is_empty(), "a refusal waits for the next day");
    f.source.fail_next(SourceError::Throttled { retry_after: None });
    let error = f.service.read_partner_tenant(&f.msp, None).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "the queue retries it");
}

#[tokio::test]
async fn an_msp_without_a_partner_tenant_or_its_credentials_is_not_read() {
    let f = fixture().await;
    f.config.put_msp(&Msp::new(f.msp.clone(), "Acme".into(), Utc::now())).await.unwrap();
    assert!(partner_jobs_of_a_tick(&f).await.is_empty());
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    assert_eq!(f.source.reads(), 0, "a job sent before it disconnected does nothing");
    let mut g = fixture().await;
    g.service.secrets = Arc::new(MemorySecretStore::default());
    g.service.read_partner_tenant(&g.msp, None).await.unwrap();
    let state = g.config.refresh_state(&g.msp).await.unwrap().unwrap();
    assert!(state.error.unwrap().contains("no Microsoft app credentials"), "missing credentials are recorded, not retried");
    assert_eq!(g.source.reads(), 0);
}

/// The findings events sent so far: (operation, finding, id, creation time), in order.
fn findings_sent(f: &Fixture) -> Vec<(String, String, String, String)> {
    f.events
        .drain()
        .iter()
        .flat_map(|body| {
            let message: crate::messages::AuditEventsMessage = serde_json::from_str(body).unwrap();
            assert_eq!(message.content_id, crate::messages::ADMIN_RELATIONSHIP_EVENTS);
            message.records
        })
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
            (text("Operation"), text("Finding"), text("Id"), text("CreationTime"))
        })
        .collect()
}

#[tokio::test]
async fn each_finding_is_sent_once_and_its_clearing_once_with_the_time_it_was_first_seen() {
    let f = fixture().await;
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    let raised = findings_sent(&f);
    let kinds: Vec<(&str, &str)> = raised.iter().map(|(op, kind, ..)| (op.as_str(), kind.as_str())).collect();
    assert_eq!(
        kinds,
        vec![("Vigil.AdminRelationshipFinding", "unused_over_60_days"), ("Vigil.AdminRelationshipFinding", "unused_over_90_days")],
        "never used since it was granted, over a year ago"
    );
    f.clock.advance(chrono::Duration::days(1));
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    assert!(findings_sent(&f).is_empty(), "a finding that still holds is not sent again");
    let customer = f.config.relationships(&f.msp).await.unwrap()[0].customer_tenant_id.clone();
    let used = crate::relationships::PartnerActivity { last_sign_in: Some(f.clock.now()), agents_last_day: 1, sign_ins_last_day: 1 };
    f.config.put_activity(&f.msp, &customer, &used).await.unwrap();
    f.clock.advance(chrono::Duration::days(1));
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    let cleared = findings_sent(&f);
    assert_eq!(cleared.len(), 2);
    for ((op, kind, id, at), (_, raised_kind, raised_id, raised_at)) in cleared.iter().zip(&raised) {
        assert_eq!((op.as_str(), kind, at), ("Vigil.AdminRelationshipFindingCleared", raised_kind, raised_at), "same alert window");
        assert_ne!(id, raised_id);
    }
    assert!(f.config.findings(&f.msp).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_read_retried_after_a_crash_sends_the_same_events_again_not_new_ones() {
    let f = fixture().await;
    let tick = f.clock.now();
    f.service.run_job(PollJob::AdminRelationships { msp_id: f.msp.clone(), at: Some(tick) }).await.unwrap();
    let first = findings_sent(&f);
    // The job stopped after sending, before the findings were stored; SQS delivers it again.
    f.config.put_findings(&f.msp, "rel-1", &[]).await.unwrap();
    f.config.replace_relationships(&f.msp, &[]).await.unwrap();
    f.clock.advance(chrono::Duration::minutes(5));
    f.service.run_job(PollJob::AdminRelationships { msp_id: f.msp.clone(), at: Some(tick) }).await.unwrap();
    assert_eq!(findings_sent(&f), first, "the same record ids, which the evaluator counts once");
}

/// A confirmed removal of `rel-1`, as the config API records it.
async fn confirmed_removal(f: &Fixture) {
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    findings_sent(f);
    let relationship = f.config.relationships(&f.msp).await.unwrap().remove(0);
    let removal = Removal {
        msp_id: f.msp.clone(),
        relationship_id: relationship.id.clone(),
        relationship_name: relationship.display_name.clone(),
        customer_tenant_id: relationship.customer_tenant_id.clone(),
        customer_name: relationship.customer_name.clone(),
        status: RemovalStatus::Requested,
        requested_by: "Olive (olive)".into(),
        requested_at: f.clock.now(),
        request_id: None,
        completed_at: None,
        error: None,
        notify: Some("it@contoso.example".into()),
        notification: None,
    };
    assert!(f.config.create_removal(&removal).await.unwrap());
}

/// Runs the removal job as SQS would: again each time it put itself back with a delay.
async fn run_removal_to_its_end(f: &Fixture) -> usize {
    let mut runs = 0;
    let mut job = PollJob::RemoveRelationship { msp_id: f.msp.clone(), relationship_id: "rel-1".into() };
    loop {
        f.service.run_job(job.clone()).await.unwrap();
        runs += 1;
        let delayed = f.jobs.drain_delayed();
        let Some((body, delay)) = delayed.into_iter().next() else { return runs };
        assert_eq!(delay, crate::services::poll::FOLLOW_UP_DELAY);
        job = serde_json::from_str(&body).unwrap();
        assert!(runs < 10, "the termination never ended");
    }
}

#[tokio::test]
async fn a_confirmed_removal_terminates_once_follows_graph_to_terminated_and_clears_the_findings() {
    let f = fixture().await;
    confirmed_removal(&f).await;
    let runs = run_removal_to_its_end(&f).await;
    assert_eq!(f.source.terminations(), 1);
    assert_eq!(runs, 3, "terminationRequested, terminating, terminated");
    let removal = f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap();
    assert_eq!((removal.status, removal.request_id.as_deref()), (RemovalStatus::Terminated, Some("req-rel-1")));
    assert!(removal.completed_at.is_some());
    let cleared = findings_sent(&f);
    assert_eq!(cleared.len(), 2, "both unused-access findings clear: {cleared:?}");
    assert!(cleared.iter().all(|(op, ..)| op == "Vigil.AdminRelationshipFindingCleared"));
    assert_eq!(f.config.relationships(&f.msp).await.unwrap()[0].status, RelationshipStatus::Terminated, "the report says so");
    let mails = f.mail.sent();
    assert_eq!(mails.len(), 1, "the customer's contact is told once");
    assert_eq!(
        (mails[0].to[0].as_str(), mails[0].subject.as_str()),
        ("it@contoso.example", "Acme removed its delegated admin access to Contoso")
    );
    assert!(mails[0].text.contains("rel-1"), "{}", mails[0].text);
    let notification = removal.notification.unwrap();
    assert_eq!((notification.status, notification.message_id.as_deref()), (RemovalNotificationStatus::Sent, Some("memory-1")));
    f.service.run_job(PollJob::RemoveRelationship { msp_id: f.msp.clone(), relationship_id: "rel-1".into() }).await.unwrap();
    assert_eq!(f.source.terminations(), 1, "a finished removal redelivered does nothing");
    f.clock.advance(chrono::Duration::days(1));
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    assert!(findings_sent(&f).is_empty(), "Vigil's own removal is not the customer terminating access");
}

#[tokio::test]
async fn a_crash_between_the_terminate_request_and_recording_it_does_not_request_it_again() {
    let f = fixture().await;
    confirmed_removal(&f).await;
    let partner = TenantId::parse(PARTNER).unwrap();
    let credentials = f.service.partner_credentials(&f.msp).await.unwrap().unwrap();
    f.source.request_termination(&partner, &credentials, "rel-1").await.unwrap();
    run_removal_to_its_end(&f).await;
    assert_eq!(f.source.terminations(), 1, "the request already made was found and followed");
    let removal = f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap();
    assert_eq!((removal.status, removal.request_id.as_deref()), (RemovalStatus::Terminated, Some("req-rel-1")));
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_a_refusal_fails_the_removal_with_graphs_reason() {
    let f = fixture().await;
    confirmed_removal(&f).await;
    f.source.fail_next(SourceError::Throttled { retry_after: None });
    let job = PollJob::RemoveRelationship { msp_id: f.msp.clone(), relationship_id: "rel-1".into() };
    assert_eq!(f.service.run_job(job.clone()).await.unwrap_err().class(), ErrorClass::Transient);
    assert_eq!(f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap().status, RemovalStatus::Requested);
    let mut expired = crate::contract::sample_relationship("rel-1", &f.config.relationships(&f.msp).await.unwrap()[0].customer_tenant_id);
    expired.status = RelationshipStatus::Expired;
    f.source.set(&TenantId::parse(PARTNER).unwrap(), vec![expired]);
    f.service.run_job(job).await.unwrap();
    let removal = f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap();
    assert_eq!(removal.status, RemovalStatus::Failed);
    assert!(removal.error.as_deref().is_some_and(|e| e.contains("Expired")), "{removal:?}");
    assert_eq!(f.source.terminations(), 0);
}

#[tokio::test]
async fn an_unfinished_removal_is_queued_again_by_the_tick_after_a_while() {
    let f = fixture().await;
    confirmed_removal(&f).await;
    let removals = |jobs: Vec<String>| jobs.iter().filter(|b| b.contains("remove_relationship")).count();
    f.service.fan_out().await.unwrap();
    assert_eq!(removals(f.jobs.drain()), 0, "its own job is still on the queue");
    f.clock.advance(chrono::Duration::minutes(crate::services::poll::RESUME_REMOVALS_AFTER_MINUTES));
    f.service.fan_out().await.unwrap();
    assert_eq!(removals(f.jobs.drain()), 1);
}

fn partner_sign_in(customer: &TenantId, user: &str, at: chrono::DateTime<Utc>) -> crate::relationships::activity::SignIn {
    serde_json::from_value(serde_json::json!({
        "createdDateTime": at.to_rfc3339(), "userId": user, "homeTenantId": PARTNER, "resourceTenantId": customer.as_str(),
        "status": {"errorCode": 0}
    }))
    .unwrap()
}

#[tokio::test]
async fn partner_sign_ins_become_each_customers_activity_before_the_findings_are_decided() {
    let f = fixture().await;
    let customer = f.config.relationships(&f.msp).await.unwrap().first().map(|r| r.customer_tenant_id.clone());
    let customer = customer.unwrap_or_else(|| TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap());
    let partner = TenantId::parse(PARTNER).unwrap();
    let hour_ago = f.clock.now() - chrono::Duration::hours(1);
    f.source.set_sign_ins(&partner, vec![partner_sign_in(&customer, "ann", hour_ago), partner_sign_in(&customer, "bob", hour_ago)]);
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    let activity = f.config.activities(&f.msp).await.unwrap().remove(&customer).unwrap();
    assert_eq!((activity.last_sign_in, activity.agents_last_day, activity.sign_ins_last_day), (Some(hour_ago), 2, 2));
    assert!(findings_sent(&f).is_empty(), "access used an hour ago is not unused, though granted over a year ago");
    assert_eq!(f.config.refresh_state(&f.msp).await.unwrap().unwrap().activity_error, None);
}

#[tokio::test]
async fn a_refused_sign_in_read_is_reported_and_the_relationships_are_still_read_while_throttling_is_retried() {
    let f = fixture().await;
    let refused = SourceError::AccessRefused { code: "Forbidden".into(), message: "the app lacks AuditLog.Read.All".into() };
    f.source.fail_sign_ins_next(refused);
    f.service.read_partner_tenant(&f.msp, None).await.unwrap();
    let state = f.config.refresh_state(&f.msp).await.unwrap().unwrap();
    assert!(state.activity_error.as_deref().is_some_and(|e| e.contains("AuditLog.Read.All")), "{state:?}");
    assert_eq!((state.error, state.last_success), (None, Some(f.clock.now())), "the relationships were read");
    assert_eq!(f.config.relationships(&f.msp).await.unwrap().len(), 1);
    f.clock.advance(chrono::Duration::days(1));
    f.source.fail_sign_ins_next(SourceError::Throttled { retry_after: None });
    assert_eq!(f.service.read_partner_tenant(&f.msp, None).await.unwrap_err().class(), ErrorClass::Transient, "retried");
}

#[tokio::test]
async fn the_partner_tenant_is_read_as_often_as_the_msp_set() {
    let f = fixture().await;
    let mut msp = f.config.get_msp(&f.msp).await.unwrap().unwrap();
    msp.partner_read_every_hours = 6;
    f.config.put_msp(&msp).await.unwrap();
    let first = partner_jobs_of_a_tick(&f).await;
    f.service.run_job(first[0].clone()).await.unwrap();
    f.clock.advance(chrono::Duration::hours(6) - chrono::Duration::seconds(1));
    assert!(partner_jobs_of_a_tick(&f).await.is_empty());
    f.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(partner_jobs_of_a_tick(&f).await.len(), 1, "six hours later");
}

fn customer_sign_in(
    home: &str,
    resource: &TenantId,
    access: &str,
    at: chrono::DateTime<Utc>,
    error: i64,
) -> crate::relationships::activity::SignIn {
    serde_json::from_value(serde_json::json!({
        "createdDateTime": at.to_rfc3339(), "userId": "technician", "homeTenantId": home, "resourceTenantId": resource.as_str(),
        "crossTenantAccessType": access, "status": {"errorCode": error}
    }))
    .unwrap()
}

#[tokio::test]
async fn before_the_partner_read_each_customer_tenants_sign_in_logs_are_read_for_its_partner_technicians() {
    let f = fixture().await;
    let customer = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
    f.config.update_tenant(&f.msp, &customer, &crate::ports::TenantChange::M365CredentialsSet).await.unwrap();
    f.service
        .secrets
        .put_secret(&SecretName::m365_app(&f.msp, &customer), &SecretString::new(r#"{"client_id": "app", "client_secret": "s"}"#))
        .await
        .unwrap();
    f.service.fan_out().await.unwrap();
    let jobs: Vec<PollJob> = f.jobs.drain().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    let reads: Vec<&PollJob> = jobs.iter().filter(|j| matches!(j, PollJob::CustomerSignIns { .. })).collect();
    assert_eq!(reads.len(), 1, "one per tenant with credentials: {jobs:?}");
    let PollJob::CustomerSignIns { since, .. } = reads[0].clone() else { unreachable!() };
    assert_eq!(since, f.clock.now() - chrono::Duration::days(30), "the first read looks back as far as Entra keeps");

    let now = f.clock.now();
    let other_partner = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
    f.source.set_sign_ins(
        &customer,
        vec![
            customer_sign_in(PARTNER, &customer, "serviceProvider", now - chrono::Duration::hours(5), 0),
            customer_sign_in(PARTNER, &customer, "serviceProvider", now - chrono::Duration::hours(1), 50_126),
            customer_sign_in(other_partner, &customer, "serviceProvider", now - chrono::Duration::hours(2), 0),
            customer_sign_in(PARTNER, &customer, "b2bCollaboration", now - chrono::Duration::hours(3), 0),
        ],
    );
    f.service.run_job(reads[0].clone()).await.unwrap();
    let noted = f.config.partner_actions(&f.msp).await.unwrap();
    assert_eq!(noted.get(&customer), Some(&(now - chrono::Duration::hours(5))), "only this partner's successful service-provider sign-ins");

    f.source.fail_sign_ins_next(SourceError::AccessRefused {
        code: "Authentication_RequestFromNonPremiumTenantOrB2CTenant".into(),
        message: "no P1".into(),
    });
    f.service.run_job(reads[0].clone()).await.unwrap();
    f.source.fail_sign_ins_next(SourceError::Throttled { retry_after: None });
    assert_eq!(f.service.run_job(reads[0].clone()).await.unwrap_err().class(), ErrorClass::Transient);
}

#[tokio::test]
async fn a_notification_interrupted_while_sending_is_not_sent_twice_and_a_transient_failure_is_retried() {
    let f = fixture().await;
    confirmed_removal(&f).await;
    f.mail.fail_next(crate::mail::MailError::Unavailable("SES throttled".into()));
    let job = PollJob::RemoveRelationship { msp_id: f.msp.clone(), relationship_id: "rel-1".into() };
    let mut runs = 0;
    let outcome = loop {
        runs += 1;
        match f.service.run_job(job.clone()).await {
            Ok(_) if f.jobs.drain_delayed().is_empty() => break Ok(()),
            Ok(_) => {}
            Err(error) => break Err(error),
        }
        assert!(runs < 10);
    };
    assert_eq!(outcome.unwrap_err().class(), ErrorClass::Transient, "throttled mail: the job is retried");
    let pending = f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap();
    assert_eq!((pending.status, pending.notification.clone()), (RemovalStatus::Terminating, None), "not sent, not done");
    f.service.run_job(job.clone()).await.unwrap();
    assert_eq!(f.mail.sent().len(), 1);

    // Another removal whose attempt stopped after recording the intent to send.
    let g = fixture().await;
    confirmed_removal(&g).await;
    let mut interrupted = g.config.removal(&g.msp, "rel-1").await.unwrap().unwrap();
    interrupted.notification = Some(crate::relationships::removal::RemovalNotification {
        status: RemovalNotificationStatus::Sending,
        at: g.clock.now(),
        message_id: None,
        error: None,
    });
    g.config.put_removal(&interrupted).await.unwrap();
    run_removal_to_its_end(&g).await;
    let done = g.config.removal(&g.msp, "rel-1").await.unwrap().unwrap();
    assert_eq!((done.status, done.notification.map(|n| n.status)), (RemovalStatus::Terminated, Some(RemovalNotificationStatus::Unknown)));
    assert!(g.mail.sent().is_empty(), "it may have gone out: never twice");
}

#[tokio::test]
async fn a_refused_notification_is_recorded_and_the_removal_still_ends() {
    let f = fixture().await;
    confirmed_removal(&f).await;
    f.mail.fail_next(crate::mail::MailError::NotConfigured);
    run_removal_to_its_end(&f).await;
    let done = f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap();
    let notification = done.notification.unwrap();
    assert_eq!((done.status, notification.status), (RemovalStatus::Terminated, RemovalNotificationStatus::Failed));
    assert!(notification.error.unwrap().contains("NOTIFY_FROM_ADDRESS"));
}

fn request(
    id: &str,
    action: &str,
    status: crate::relationships::removal::RequestStatus,
) -> crate::relationships::removal::RelationshipRequest {
    crate::relationships::removal::RelationshipRequest { id: id.into(), action: action.into(), status }
}

#[tokio::test]
async fn another_kind_of_request_or_a_failed_terminate_is_not_taken_for_ours() {
    use crate::relationships::removal::RequestStatus;
    let f = fixture().await;
    confirmed_removal(&f).await;
    f.source.add_request("rel-1", request("lock-1", "lockForApproval", RequestStatus::Succeeded));
    f.source.add_request("rel-1", request("old-1", "terminate", RequestStatus::Failed));
    run_removal_to_its_end(&f).await;
    assert_eq!(f.source.terminations(), 1, "Vigil asked for its own termination");
    let removal = f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap();
    assert_eq!((removal.status, removal.request_id.as_deref()), (RemovalStatus::Terminated, Some("req-rel-1-3")));
}

#[tokio::test]
async fn a_throttled_terminate_request_is_retried_and_does_not_fail_the_removal() {
    let f = fixture().await;
    confirmed_removal(&f).await;
    f.source.fail_terminations_next(SourceError::Throttled { retry_after: None });
    let job = PollJob::RemoveRelationship { msp_id: f.msp.clone(), relationship_id: "rel-1".into() };
    assert_eq!(f.service.run_job(job).await.unwrap_err().class(), ErrorClass::Transient);
    assert_eq!(f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap().status, RemovalStatus::Requested);
    run_removal_to_its_end(&f).await;
    assert_eq!(f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap().status, RemovalStatus::Terminated);
}

#[tokio::test]
async fn graph_failing_our_terminate_request_fails_the_removal_and_another_failed_request_does_not() {
    use crate::relationships::removal::RequestStatus;
    let f = fixture().await;
    confirmed_removal(&f).await;
    let job = PollJob::RemoveRelationship { msp_id: f.msp.clone(), relationship_id: "rel-1".into() };
    f.service.run_job(job.clone()).await.unwrap();
    assert_eq!(f.jobs.drain_delayed().len(), 1, "followed up later");
    // Graph shows the relationship active again while our request is still pending, and an
    // older request of someone else's failed: not ours, so keep following.
    f.source.add_request("rel-1", request("old-1", "terminate", RequestStatus::Failed));
    let customer = f.config.relationships(&f.msp).await.unwrap()[0].customer_tenant_id.clone();
    f.source.set(&TenantId::parse(PARTNER).unwrap(), vec![crate::contract::sample_relationship("rel-1", &customer)]);
    f.service.run_job(job.clone()).await.unwrap();
    assert_eq!(f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap().status, RemovalStatus::Terminating);
    assert_eq!(f.jobs.drain_delayed().len(), 1);
    // Now Graph fails ours.
    f.source.fail_request("rel-1", RelationshipStatus::Active);
    f.service.run_job(job).await.unwrap();
    let removal = f.config.removal(&f.msp, "rel-1").await.unwrap().unwrap();
    assert_eq!(removal.status, RemovalStatus::Failed);
    assert!(removal.error.as_deref().is_some_and(|e| e.contains("failed")), "{removal:?}");
    assert!(f.jobs.drain_delayed().is_empty());
}
