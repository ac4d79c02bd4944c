//! Tests of [`super::AccessService`]: the token lifecycle, the last owner, and the audit entries
//! principal changes leave.

use super::*;
use crate::clock::ManualClock;
use crate::memory::MemoryConfigStore;
use chrono::TimeZone;

struct Fixture {
    service: AccessService,
    store: Arc<MemoryConfigStore>,
    clock: Arc<ManualClock>,
    msp: MspId,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryConfigStore::default());
    let clock = Arc::new(ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()));
    let service = AccessService {
        config: store.clone(),
        principals: store.clone(),
        audit: AuditTrail { log: store.clone(), clock: clock.clone() },
        clock: clock.clone(),
    };
    Fixture { service, store, clock, msp: MspId::parse("acme").unwrap() }
}

fn analyst() -> NewPrincipal {
    NewPrincipal {
        name: "Ann Analyst".into(),
        email: Some("Ann@Acme.example".into()),
        role: Role::Analyst,
        categories: Some([Category::ThreatManagement].into()),
        scopes: BTreeSet::new(),
    }
}

fn named(name: &str) -> NewToken {
    NewToken { name: name.into(), expires_in_days: Some(30) }
}

#[tokio::test]
async fn the_first_owner_authenticates_and_a_token_names_its_principal_only_within_its_msp() {
    let f = fixture();
    let (owner, issued) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive Owner", "olive@acme.example").await.unwrap();
    let access = f.service.authenticate(issued.token.expose()).await.unwrap();
    assert_eq!((access.msp_id(), access.principal_id(), access.role()), (&f.msp, &owner.principal_id, Role::Owner));
    assert_eq!(access.actor(), format!("Olive Owner ({})", owner.principal_id));
    let forged = issued.token.expose().replacen("vgl_acme_", "vgl_other_", 1);
    assert!(matches!(f.service.authenticate(&forged).await, Err(AdminError::Unauthenticated)), "a token is stored under one MSP");
    assert!(matches!(f.service.authenticate("nonsense").await, Err(AdminError::Unauthenticated)));
    assert!(!format!("{issued:?}").contains(issued.token.expose()), "the token's text never reaches Debug");
}

#[tokio::test]
async fn a_token_stops_working_when_it_expires_is_revoked_or_its_principal_is_deleted() {
    let f = fixture();
    let (_, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let ann = f.service.create_principal(&owner, analyst()).await.unwrap();

    let expiring =
        f.service.issue_token(&owner, &ann.principal_id, NewToken { name: "short".into(), expires_in_days: Some(1) }).await.unwrap();
    assert!(f.service.authenticate(expiring.token.expose()).await.is_ok());
    f.clock.advance(Duration::days(1));
    assert!(matches!(f.service.authenticate(expiring.token.expose()).await, Err(AdminError::Unauthenticated)), "expired");

    let revoked = f.service.issue_token(&owner, &ann.principal_id, named("laptop")).await.unwrap();
    assert!(f.service.authenticate(revoked.token.expose()).await.is_ok());
    f.service.revoke_token(&owner, &ann.principal_id, &revoked.stored.token_id).await.unwrap();
    assert!(matches!(f.service.authenticate(revoked.token.expose()).await, Err(AdminError::Unauthenticated)), "revoked");

    let kept = f.service.issue_token(&owner, &ann.principal_id, named("desktop")).await.unwrap();
    f.service.delete_principal(&owner, &ann.principal_id).await.unwrap();
    assert!(matches!(f.service.authenticate(kept.token.expose()).await, Err(AdminError::Unauthenticated)), "principal deleted");
    let stored = f.store.token(&f.msp, &kept.stored.hash).await.unwrap().unwrap();
    assert!(stored.revoked_at.is_some(), "deleting a principal revokes its tokens, so re-creating an id could not revive them");
}

#[tokio::test]
async fn rotating_a_token_issues_a_new_one_and_the_old_one_works_only_for_the_grace_period() {
    let f = fixture();
    let (owner_principal, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let siem = f
        .service
        .create_principal(
            &owner,
            NewPrincipal {
                name: "SIEM".into(),
                email: None,
                role: Role::Automation,
                categories: None,
                scopes: [Permission::AlertsRead].into(),
            },
        )
        .await
        .unwrap();
    let old = f.service.issue_token(&owner, &siem.principal_id, named("sentinel")).await.unwrap();
    let new = f.service.rotate_token(&owner, &siem.principal_id, &old.stored.token_id, 60).await.unwrap();
    assert_eq!(new.stored.name, "sentinel", "same name");
    assert_eq!(new.stored.expires_at.unwrap() - new.stored.created_at, Duration::days(30), "same life");
    assert!(f.service.authenticate(old.token.expose()).await.is_ok(), "the old token works during the grace period");
    assert!(f.service.authenticate(new.token.expose()).await.is_ok());
    f.clock.advance(Duration::minutes(60));
    assert!(matches!(f.service.authenticate(old.token.expose()).await, Err(AdminError::Unauthenticated)), "then stops");
    assert!(f.service.authenticate(new.token.expose()).await.is_ok());
    assert!(
        matches!(f.service.rotate_token(&owner, &siem.principal_id, &old.stored.token_id, 0).await, Err(AdminError::Refused(_))),
        "a dead token is not rotated"
    );
    assert!(
        matches!(
            f.service.rotate_token(&owner, &owner_principal.principal_id, &new.stored.token_id, 0).await,
            Err(AdminError::NotFound(_))
        ),
        "a token is rotated only under its own principal"
    );
    let listed = f.service.tokens(&owner, &siem.principal_id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|t| t.ends_with.len() == 4), "tokens are listed by their last characters, never whole");
}

#[tokio::test]
async fn only_principals_manage_may_manage_principals_and_no_one_escalates_through_an_automation() {
    let f = fixture();
    let (_, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let engineer = f.service.create_principal(&owner, NewPrincipal { role: Role::Engineer, categories: None, ..analyst() }).await.unwrap();
    let token = f.service.issue_token(&owner, &engineer.principal_id, named("laptop")).await.unwrap();
    let engineer_access = f.service.authenticate(token.token.expose()).await.unwrap();
    assert!(matches!(f.service.principals(&engineer_access).await, Err(AdminError::Forbidden(_))));
    assert!(
        matches!(
            f.service
                .update_principal(
                    &engineer_access,
                    &engineer.principal_id,
                    PrincipalChange { role: Some(Role::Owner), ..Default::default() }
                )
                .await,
            Err(AdminError::Forbidden(_))
        ),
        "an engineer cannot make itself an owner"
    );
    assert!(matches!(f.service.issue_token(&engineer_access, &engineer.principal_id, named("x")).await, Err(AdminError::Forbidden(_))));
    let scoped = NewPrincipal {
        name: "bot".into(),
        email: None,
        role: Role::Automation,
        categories: None,
        scopes: [Permission::PrincipalsManage].into(),
    };
    assert!(matches!(f.service.create_principal(&owner, scoped).await, Err(AdminError::Invalid(_))));
}

#[tokio::test]
async fn the_last_owner_can_neither_be_deleted_nor_demoted() {
    let f = fixture();
    let (olive, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    assert!(matches!(f.service.delete_principal(&owner, &olive.principal_id).await, Err(AdminError::Refused(_))));
    let demote = PrincipalChange { role: Some(Role::Engineer), ..Default::default() };
    assert!(matches!(f.service.update_principal(&owner, &olive.principal_id, demote.clone()).await, Err(AdminError::Refused(_))));
    let second = f.service.create_principal(&owner, NewPrincipal { role: Role::Owner, categories: None, ..analyst() }).await.unwrap();
    f.service.update_principal(&owner, &olive.principal_id, demote).await.unwrap();
    assert!(matches!(f.service.delete_principal(&owner, &second.principal_id).await, Err(AdminError::Refused(_))), "now the other is last");
}

#[tokio::test]
async fn a_principal_holds_a_bounded_number_of_live_tokens_and_dead_ones_are_dropped_in_time() {
    let f = fixture();
    let (olive, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    for i in 1..LIVE_TOKENS_MAX {
        f.service.issue_token(&owner, &olive.principal_id, named(&format!("token {i}"))).await.unwrap();
    }
    assert!(matches!(f.service.issue_token(&owner, &olive.principal_id, named("one too many")).await, Err(AdminError::Refused(_))));
    f.clock.advance(Duration::days(31 + 30));
    f.service.issue_token(&owner, &olive.principal_id, named("after")).await.unwrap();
    let kept = f.service.tokens(&owner, &olive.principal_id).await.unwrap();
    assert_eq!(kept.len(), 2, "the first token (397 days) and the new one; tokens dead for 30 days are gone: {kept:?}");
    for (days, ok) in [(0, false), (1, true), (TOKEN_DAYS_MAX, true), (TOKEN_DAYS_MAX + 1, false)] {
        let result = f.service.issue_token(&owner, &olive.principal_id, NewToken { name: "x".into(), expires_in_days: Some(days) }).await;
        assert_eq!(result.is_ok(), ok, "{days} days");
        if let Ok(issued) = result {
            f.service.revoke_token(&owner, &olive.principal_id, &issued.stored.token_id).await.unwrap();
        }
    }
}

#[tokio::test]
async fn every_principal_and_token_change_is_in_the_audit_log_with_the_authenticated_actor() {
    let f = fixture();
    let (olive, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    // Entries are ordered by time; within one millisecond their order is arbitrary.
    let tick = || f.clock.advance(Duration::seconds(1));
    tick();
    let ann = f.service.create_principal(&owner, analyst()).await.unwrap();
    tick();
    let change = PrincipalChange { categories: Some(None), ..Default::default() };
    assert_eq!(f.service.update_principal(&owner, &ann.principal_id, change).await.unwrap().categories, None, "null lifts the limit");
    tick();
    let token = f.service.issue_token(&owner, &ann.principal_id, named("t")).await.unwrap();
    tick();
    let rotated = f.service.rotate_token(&owner, &ann.principal_id, &token.stored.token_id, 0).await.unwrap();
    tick();
    f.service.revoke_token(&owner, &ann.principal_id, &rotated.stored.token_id).await.unwrap();
    tick();
    f.service.delete_principal(&owner, &ann.principal_id).await.unwrap();
    let page = f.service.audit_log(&owner, 50, None).await.unwrap();
    let actions: Vec<(&str, &str)> = page.entries.iter().map(|e| (e.action.as_str(), e.actor.principal_id.as_str())).collect();
    let operator = crate::access::OPERATOR_PRINCIPAL;
    let me = olive.principal_id.as_str();
    assert_eq!(
        actions[..6],
        [
            ("principal.deleted", me),
            ("token.revoked", me),
            ("token.rotated", me),
            ("token.issued", me),
            ("principal.changed", me),
            ("principal.created", me),
        ]
    );
    let first_two: BTreeSet<&str> = page.entries[6..].iter().map(|e| e.action.as_str()).collect();
    assert_eq!(first_two, ["principal.created", "token.issued"].into(), "the operator's first owner and token");
    assert!(page.entries[6..].iter().all(|e| e.actor.principal_id.as_str() == operator));
    assert!(page.entries.iter().all(|e| !e.target.contains("vgl_")), "no token text in the log");
    let ann_token = f.service.issue_token(&owner, &olive.principal_id, named("x")).await.unwrap();
    let olive_again = f.service.authenticate(ann_token.token.expose()).await.unwrap();
    assert!(f.service.audit_log(&olive_again, 0, None).await.is_err(), "limit 1 to 200");
}

#[tokio::test]
async fn the_last_owner_may_still_change_its_own_name_and_tokens_are_named_within_bounds() {
    let f = fixture();
    let (olive, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let renamed = PrincipalChange { name: Some("Olive O.".into()), ..Default::default() };
    assert_eq!(
        f.service.update_principal(&owner, &olive.principal_id, renamed).await.unwrap().name,
        "Olive O.",
        "staying an owner is no loss"
    );
    let name = |n: usize| NewToken { name: "n".repeat(n), expires_in_days: None };
    assert!(f.service.issue_token(&owner, &olive.principal_id, name(crate::access::NAME_CHARS)).await.is_ok());
    for bad in [0, crate::access::NAME_CHARS + 1] {
        assert!(matches!(f.service.issue_token(&owner, &olive.principal_id, name(bad)).await, Err(AdminError::Invalid(_))), "{bad}");
    }
}

#[tokio::test]
async fn a_token_revoked_recently_stays_listed_so_its_holder_sees_why_it_fails() {
    let f = fixture();
    let (olive, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let laptop = f.service.issue_token(&owner, &olive.principal_id, named("laptop")).await.unwrap();
    f.service.revoke_token(&owner, &olive.principal_id, &laptop.stored.token_id).await.unwrap();
    f.clock.advance(Duration::days(1));
    f.service.issue_token(&owner, &olive.principal_id, named("desktop")).await.unwrap();
    let listed = f.service.tokens(&owner, &olive.principal_id).await.unwrap();
    assert!(listed.iter().any(|t| t.token_id == laptop.stored.token_id && t.revoked_at.is_some()), "{listed:?}");
}

#[tokio::test]
async fn revoking_a_token_in_its_rotation_grace_period_stops_it_at_once_and_the_grace_is_at_most_a_day() {
    let f = fixture();
    let (olive, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let old = f.service.issue_token(&owner, &olive.principal_id, named("siem")).await.unwrap();
    assert!(matches!(f.service.rotate_token(&owner, &olive.principal_id, &old.stored.token_id, 1_441).await, Err(AdminError::Invalid(_))));
    f.service.rotate_token(&owner, &olive.principal_id, &old.stored.token_id, 1_440).await.unwrap();
    assert!(f.service.authenticate(old.token.expose()).await.is_ok(), "a day of grace");
    let revoked = f.service.revoke_token(&owner, &olive.principal_id, &old.stored.token_id).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(f.clock.now()), "revoked now, not at the end of the grace");
    assert!(matches!(f.service.authenticate(old.token.expose()).await, Err(AdminError::Unauthenticated)));
}

#[tokio::test]
async fn a_token_dead_for_exactly_30_days_is_kept_and_one_dead_longer_is_dropped() {
    let f = fixture();
    let (olive, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let old = f.service.issue_token(&owner, &olive.principal_id, named("old")).await.unwrap();
    f.service.revoke_token(&owner, &olive.principal_id, &old.stored.token_id).await.unwrap();
    f.clock.advance(Duration::days(30));
    f.service.issue_token(&owner, &olive.principal_id, named("a")).await.unwrap();
    let listed = f.service.tokens(&owner, &olive.principal_id).await.unwrap();
    assert!(listed.iter().any(|t| t.name == "old"), "dead for exactly 30 days");
    f.clock.advance(Duration::seconds(1));
    f.service.issue_token(&owner, &olive.principal_id, named("b")).await.unwrap();
    let listed = f.service.tokens(&owner, &olive.principal_id).await.unwrap();
    assert!(!listed.iter().any(|t| t.name == "old"), "dead for longer");
}

#[tokio::test]
async fn the_audit_log_takes_only_the_cursors_it_gives() {
    let f = fixture();
    let (_, owner_token) = f.service.create_msp_with_owner(&f.msp, "Acme", "Olive", "olive@acme.example").await.unwrap();
    let owner = f.service.authenticate(owner_token.token.expose()).await.unwrap();
    let page = f.service.audit_log(&owner, 1, None).await.unwrap();
    let cursor = page.next.unwrap();
    assert!(cursor.contains('-'));
    assert_eq!(f.service.audit_log(&owner, 1, Some(&cursor)).await.unwrap().entries.len(), 1, "its own cursor is taken");
    assert!(f.service.audit_log(&owner, 200, Some(&"0".repeat(40))).await.is_ok(), "40 characters");
    for bad in ["0".repeat(41), "12ab;".to_owned(), "AUDIT#".to_owned()] {
        assert!(matches!(f.service.audit_log(&owner, 1, Some(&bad)).await, Err(AdminError::Invalid(_))), "{bad}");
    }
    assert!(matches!(f.service.audit_log(&owner, 201, None).await, Err(AdminError::Invalid(_))));
}
