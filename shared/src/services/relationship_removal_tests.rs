//! Preview and confirmation of removals, against in-memory stores.

use super::*;
use crate::access::{Principal, Role};
use crate::clock::ManualClock;
use crate::contract::{sample_relationship, unique_msp, unique_tenant};
use crate::ids::{MspId, PrincipalId};
use crate::memory::{MemoryConfigStore, MemoryQueue};
use crate::ports::AuditLog;
use crate::relationships::{GLOBAL_ADMINISTRATOR, RelationshipKind};
use chrono::TimeZone;

struct Fixture {
    service: RelationshipRemovalService,
    store: Arc<MemoryConfigStore>,
    jobs: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    msp: MspId,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryConfigStore::default());
    let jobs = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()));
    let service = RelationshipRemovalService {
        store: store.clone(),
        jobs: jobs.clone(),
        audit: AuditTrail { log: store.clone(), clock: clock.clone() },
        clock: clock.clone(),
    };
    Fixture { service, store, jobs, clock, msp: unique_msp() }
}

fn person(msp: &MspId, id: &str, role: Role) -> Access {
    let at = Utc.timestamp_opt(1_760_000_000, 0).unwrap();
    Access::of(&Principal {
        msp_id: msp.clone(),
        principal_id: PrincipalId::parse(id).unwrap(),
        name: format!("{id} name"),
        email: None,
        role,
        categories: None,
        scopes: Default::default(),
        created_at: at,
        updated_at: at,
    })
}

/// Three relationships of the MSP: two of one customer (one with Global Administrator), a DAP.
async fn seeded(f: &Fixture) -> (String, String, String) {
    let (contoso, fabrikam) = (unique_tenant(), unique_tenant());
    let plain = sample_relationship("rel-plain", &contoso);
    let mut admin = sample_relationship("rel-admin", &contoso);
    admin.roles.push(GLOBAL_ADMINISTRATOR.into());
    let dap = crate::relationships::AdminRelationship { kind: RelationshipKind::Dap, ..sample_relationship("dap-x", &fabrikam) };
    f.store.replace_relationships(&f.msp, &[plain, admin, dap]).await.unwrap();
    ("rel-plain".into(), "rel-admin".into(), "dap-x".into())
}

fn ids(list: &[&str]) -> PreviewRequest {
    PreviewRequest { relationship_ids: list.iter().map(|s| (*s).to_owned()).collect(), notify: Default::default() }
}

#[tokio::test]
async fn a_preview_says_what_goes_who_loses_access_and_what_breaks_and_removes_nothing() {
    let f = fixture();
    let (plain, admin, dap) = seeded(&f).await;
    let owner = person(&f.msp, "olive", Role::Owner);
    let preview = f.service.preview(&owner, &ids(&[&admin, &plain, &admin, &dap])).await.unwrap();
    assert!(preview.token.expose().starts_with(TOKEN_PREFIX) && preview.token.expose().len() > 60);
    assert!(!format!("{preview:?}").contains(preview.token.expose()), "the token never reaches a log");
    assert_eq!(preview.expires_at, f.clock.now() + Duration::minutes(PREVIEW_MINUTES));
    let listed: Vec<&str> = preview.items.iter().map(|i| i.relationship_id.as_str()).collect();
    assert_eq!(listed, vec![admin.as_str(), plain.as_str(), dap.as_str()], "each once, in the order asked");
    assert!(preview.items[0].roles.contains(&"Global Administrator".to_owned()), "roles by name: {:?}", preview.items[0].roles);
    assert_eq!(preview.items[0].groups_losing_access.len(), 1);
    assert!(preview.items[0].consequences.iter().any(|c| c.contains("keeps another relationship")), "{:?}", preview.items[0].consequences);
    assert!(!preview.items[2].removable && preview.items[2].refusal.as_deref().is_some_and(|r| r.contains("Partner Center")));
    assert_eq!(preview.removable, 2);
    assert!(f.store.removals(&f.msp).await.unwrap().is_empty() && f.jobs.drain().is_empty(), "a preview removes nothing");
}

#[tokio::test]
async fn only_a_principal_allowed_to_remove_relationships_may_preview_or_confirm() {
    let f = fixture();
    let (plain, ..) = seeded(&f).await;
    for role in [Role::Engineer, Role::Analyst, Role::ReadOnly] {
        let caller = person(&f.msp, "someone", role);
        assert!(matches!(f.service.preview(&caller, &ids(&[&plain])).await, Err(AdminError::Forbidden(_))), "{role:?}");
        let confirm = ConfirmRequest { token: SecretString::new("vrp_x") };
        assert!(matches!(f.service.confirm(&caller, &confirm).await, Err(AdminError::Forbidden(_))), "{role:?}");
    }
}

#[tokio::test]
async fn unknown_or_another_msps_relationships_and_empty_or_long_lists_are_refused() {
    let f = fixture();
    let (plain, ..) = seeded(&f).await;
    let stranger = person(&unique_msp(), "olive", Role::Owner);
    assert!(matches!(f.service.preview(&stranger, &ids(&[&plain])).await, Err(AdminError::NotFound(_))), "another MSP's relationship");
    let owner = person(&f.msp, "olive", Role::Owner);
    assert!(matches!(f.service.preview(&owner, &ids(&["rel-nope"])).await, Err(AdminError::NotFound(_))));
    assert!(matches!(f.service.preview(&owner, &ids(&[])).await, Err(AdminError::Invalid(_))));
    let many: Vec<String> = (0..=MAX_PER_PREVIEW).map(|i| format!("rel-{i}")).collect();
    let long = PreviewRequest { relationship_ids: many, notify: Default::default() };
    assert!(matches!(f.service.preview(&owner, &long).await, Err(AdminError::Invalid(_))));
}

#[tokio::test]
async fn confirming_records_one_removal_and_one_job_per_removable_relationship_names_both_people_and_uses_the_token_up() {
    let f = fixture();
    let (plain, admin, dap) = seeded(&f).await;
    let olive = person(&f.msp, "olive", Role::Owner);
    let oscar = person(&f.msp, "oscar", Role::Owner);
    let preview = f.service.preview(&olive, &ids(&[&plain, &admin, &dap])).await.unwrap();
    f.clock.advance(Duration::minutes(PREVIEW_MINUTES));
    let removals = f.service.confirm(&oscar, &ConfirmRequest { token: preview.token.clone() }).await.unwrap();
    let removed: Vec<&str> = removals.iter().map(|r| r.relationship_id.as_str()).collect();
    assert_eq!(removed, vec![plain.as_str(), admin.as_str()], "the DAP one is left alone");
    assert!(removals.iter().all(|r| r.status == RemovalStatus::Requested && r.request_id.is_none()));
    assert_eq!(removals[0].requested_by, format!("{}, previewed by {}", oscar.actor(), olive.actor()));
    let jobs = f.jobs.drain();
    assert_eq!(jobs.len(), 2);
    let job: PollJob = serde_json::from_str(&jobs[0]).unwrap();
    assert_eq!(job, PollJob::RemoveRelationship { msp_id: f.msp.clone(), relationship_id: plain.clone() });
    let trail = f.store.entries(&f.msp, 10, None).await.unwrap().entries;
    assert_eq!(trail.iter().filter(|e| e.action == "admin-relationship.removal-confirmed").count(), 2);
    assert!(
        trail.iter().filter(|e| e.action == "admin-relationship.removal-confirmed").all(|e| e.actor.name == "oscar name"),
        "the trail names who confirmed"
    );
    let previewed: Vec<_> = trail.iter().filter(|e| e.action == "admin-relationship.removal-previewed").collect();
    assert_eq!(previewed.len(), 1);
    assert_eq!((previewed[0].actor.name.as_str(), previewed[0].target.as_str()), ("olive name", "rel-plain, rel-admin, dap-x"));
    assert!(matches!(f.service.confirm(&olive, &ConfirmRequest { token: preview.token }).await, Err(AdminError::NotFound(_))), "once");
    assert!(f.jobs.drain().is_empty());
}

#[tokio::test]
async fn an_expired_or_foreign_token_is_refused_and_removes_nothing() {
    let f = fixture();
    let (plain, ..) = seeded(&f).await;
    let owner = person(&f.msp, "olive", Role::Owner);
    let stale = f.service.preview(&owner, &ids(&[&plain])).await.unwrap();
    let fresh = f.service.preview(&owner, &ids(&[&plain])).await.unwrap();
    let stranger = person(&unique_msp(), "olive", Role::Owner);
    assert!(
        matches!(f.service.confirm(&stranger, &ConfirmRequest { token: fresh.token.clone() }).await, Err(AdminError::NotFound(_))),
        "another MSP's token is unknown here"
    );
    f.clock.advance(Duration::minutes(PREVIEW_MINUTES) + Duration::seconds(1));
    assert!(matches!(f.service.confirm(&owner, &ConfirmRequest { token: stale.token }).await, Err(AdminError::Refused(_))));
    assert!(matches!(
        f.service.confirm(&owner, &ConfirmRequest { token: SecretString::new("vrp_guess") }).await,
        Err(AdminError::NotFound(_))
    ));
    assert!(f.store.removals(&f.msp).await.unwrap().is_empty() && f.jobs.drain().is_empty());
}

#[tokio::test]
async fn a_removal_under_way_is_not_started_twice_and_a_failed_one_may_be_asked_for_again() {
    let f = fixture();
    let (plain, ..) = seeded(&f).await;
    let owner = person(&f.msp, "olive", Role::Owner);
    let first = f.service.preview(&owner, &ids(&[&plain])).await.unwrap();
    let second = f.service.preview(&owner, &ids(&[&plain])).await.unwrap();
    f.service.confirm(&owner, &ConfirmRequest { token: first.token }).await.unwrap();
    assert_eq!(f.jobs.drain().len(), 1);
    let again = f.service.confirm(&owner, &ConfirmRequest { token: second.token }).await.unwrap();
    assert_eq!((again.len(), f.jobs.drain().len()), (1, 0), "the removal under way is shown, not restarted");
    let mut failed = f.store.removal(&f.msp, &plain).await.unwrap().unwrap();
    failed.status = RemovalStatus::Failed;
    f.store.put_removal(&failed).await.unwrap();
    let third = f.service.preview(&owner, &ids(&[&plain])).await.unwrap();
    let retried = f.service.confirm(&owner, &ConfirmRequest { token: third.token }).await.unwrap();
    assert_eq!((retried[0].status, f.jobs.drain().len()), (RemovalStatus::Requested, 1));
    assert_eq!(f.service.removals(&owner).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_preview_takes_up_to_50_relationships() {
    let f = fixture();
    seeded(&f).await;
    let owner = person(&f.msp, "olive", Role::Owner);
    let fifty: Vec<String> = (0..MAX_PER_PREVIEW).map(|i| format!("rel-{i}")).collect();
    let refused = f.service.preview(&owner, &PreviewRequest { relationship_ids: fifty, notify: Default::default() }).await;
    assert!(matches!(refused, Err(AdminError::NotFound(_))), "50 is allowed (these just do not exist): {refused:?}");
}

#[tokio::test]
async fn the_preview_says_no_access_remains_unless_the_same_customer_keeps_another_live_relationship() {
    let f = fixture();
    let (contoso, fabrikam) = (unique_tenant(), unique_tenant());
    let only = sample_relationship("rel-only", &contoso);
    let other_customers = sample_relationship("rel-fabrikam", &fabrikam);
    let mut ended_sibling = sample_relationship("rel-ended", &contoso);
    ended_sibling.status = crate::relationships::RelationshipStatus::Expired;
    f.store.replace_relationships(&f.msp, &[only, other_customers, ended_sibling]).await.unwrap();
    let owner = person(&f.msp, "olive", Role::Owner);
    let preview = f.service.preview(&owner, &ids(&["rel-only"])).await.unwrap();
    let consequences = preview.items[0].consequences.join(" ");
    assert!(consequences.contains("No delegated admin access"), "{consequences}");
    let mut live_sibling = sample_relationship("rel-live", &contoso);
    live_sibling.display_name = "second".into();
    f.store.replace_relationships(&f.msp, &[sample_relationship("rel-only", &contoso), live_sibling]).await.unwrap();
    let preview = f.service.preview(&owner, &ids(&["rel-only"])).await.unwrap();
    assert!(preview.items[0].consequences.join(" ").contains("keeps another relationship"));
}

#[tokio::test]
async fn whom_to_tell_is_checked_shown_in_the_preview_and_kept_with_the_removal() {
    let f = fixture();
    let (plain, admin, dap) = seeded(&f).await;
    let owner = person(&f.msp, "olive", Role::Owner);
    let ask = |notify: &[(&str, &str)]| PreviewRequest {
        relationship_ids: vec![plain.clone(), dap.clone()],
        notify: notify.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    };
    assert!(
        matches!(f.service.preview(&owner, &ask(&[(&plain, "not an address")])).await, Err(AdminError::Invalid(m)) if m.contains("notify"))
    );
    assert!(
        matches!(f.service.preview(&owner, &ask(&[(&admin, "it@contoso.com")])).await, Err(AdminError::Invalid(m)) if m.contains("not one of"))
    );
    let preview = f.service.preview(&owner, &ask(&[(&plain, "it@contoso.com"), (&dap, "it@fabrikam.com")])).await.unwrap();
    assert_eq!(preview.items[0].notify.as_deref(), Some("it@contoso.com"));
    assert!(preview.items[0].consequences.iter().any(|c| c.contains("it@contoso.com")));
    assert_eq!(preview.items[1].notify, None, "nobody is told of a removal that will not happen");
    let removals = f.service.confirm(&owner, &ConfirmRequest { token: preview.token }).await.unwrap();
    assert_eq!(removals[0].notify.as_deref(), Some("it@contoso.com"));
}
