//! Direct onboarding on the in-memory adapters: the delegated credential (owner only,
//! write-only), a customer onboarded directly and polled, every step idempotent (grants present
//! → no grant call; a crash after any grant → the retry finishes), the rotated refresh token's
//! failed write leaving the stored one working, and the customers a bulk job gives a link
//! (roles that cannot grant, no relationship Microsoft knows, no privileged role). The same
//! against the Microsoft 365 simulator is in `shared/tests/direct_onboarding.rs`.

use super::tests::{Harness, acme, registered, tenant};
use super::*;
use crate::contract::sample_relationship;
use crate::onboarding::direct::{REQUIRED_APP_ROLES, StepResult};
use crate::onboarding::{BulkMethod, LinkStatus};
use crate::relationships::GLOBAL_ADMINISTRATOR;

/// The partner tenant's relationships as last read: each customer with Global Administrator
/// when `privileged`, else a role that cannot grant app roles.
async fn relationships(h: &Harness, customers: &[(u8, bool)]) {
    let list: Vec<_> = customers
        .iter()
        .map(|(n, privileged)| {
            let mut r = sample_relationship(&format!("r{n}"), &tenant(*n));
            r.customer_name = format!("Customer {n}");
            if *privileged {
                r.roles = vec![GLOBAL_ADMINISTRATOR.into()];
                r.access_assignments[0].roles = vec![GLOBAL_ADMINISTRATOR.into()];
            }
            r
        })
        .collect();
    crate::ports::RelationshipStore::replace_relationships(h.config.as_ref(), &acme(), &list).await.unwrap();
}

async fn with_credential() -> (Harness, SecretString) {
    let h = registered().await;
    let token = h.directory.issue_refresh_token();
    h.service.store_delegated_credential(&Access::operator(&acme()), token.clone()).await.unwrap();
    (h, token)
}

async fn stored(h: &Harness) -> SecretString {
    h.secrets.get_secret(&SecretName::delegated_credential(&acme())).await.unwrap().unwrap()
}

async fn attempt(h: &Harness, n: u8) -> direct::DirectAttempt {
    h.service.onboard_directly(&Access::operator(&acme()), &acme(), &tenant(n), "Customer").await.unwrap()
}

#[tokio::test]
async fn a_customer_whose_roles_allow_it_is_onboarded_directly_watched_tested_and_polled() {
    let (h, first) = with_credential().await;
    relationships(&h, &[(1, true)]).await;
    h.directory.add_customer(&tenant(1), true);
    let job = h.service.bulk_onboard(&Access::operator(&acme()), &[tenant(1)], None).await.unwrap();
    let item = &job.items[0];
    assert_eq!(item.method, BulkMethod::Direct);
    assert_eq!((item.link_id.as_ref(), item.url.as_ref()), (None, None), "no link");
    assert_eq!(item.status, LinkStatus::Consented { tenant_id: tenant(1) });
    assert_eq!(item.access_test_passed, Some(true));
    assert!(item.steps.iter().all(|s| s.result != StepResult::Failed), "{:#?}", item.steps);
    let made: Vec<&str> = item.steps.iter().filter(|s| s.result == StepResult::Done).map(|s| s.step.as_str()).collect();
    assert_eq!(made.len(), 3 + REQUIRED_APP_ROLES.len() + 1, "token, stored, principal, each grant, access test: {made:?}");
    let mut wanted: Vec<String> = REQUIRED_APP_ROLES.iter().map(|(_, p)| (*p).to_owned()).collect();
    wanted.sort();
    assert_eq!(h.directory.granted(&tenant(1), "app-1"), wanted, "every role, on the MSP app's new principal");
    let watched = h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().unwrap();
    assert!(watched.credentials_from_msp_app && watched.name == "Customer 1");
    assert_eq!(h.jobs.drain().len(), AuditStream::all().len(), "the first poll is queued");
    assert!(h.service.store.access_test(&acme(), &tenant(1)).await.unwrap().unwrap().passed);
    let rotated = stored(&h).await;
    assert_ne!(rotated, first, "the rotated refresh token replaced the stored one");
    assert!(h.directory.accepts(&rotated));
    let progress = h.service.bulk(&Access::operator(&acme()), &job.id).await.unwrap();
    assert_eq!(progress.items[0].status, LinkStatus::Consented { tenant_id: tenant(1) });
}

#[tokio::test]
async fn a_tenant_with_every_grant_present_gets_no_grant_call_and_no_new_principal() {
    let (h, _) = with_credential().await;
    h.directory.add_customer(&tenant(1), true);
    assert!(attempt(&h, 1).await.onboarded.is_some());
    let (grants, creations) = (h.directory.calls("grant"), h.directory.calls("create_service_principal"));
    assert_eq!(grants, u32::try_from(REQUIRED_APP_ROLES.len()).unwrap());
    let again = attempt(&h, 1).await;
    assert!(again.onboarded.is_some());
    assert_eq!(h.directory.calls("grant"), grants, "no grant call");
    assert_eq!(h.directory.calls("create_service_principal"), creations, "no principal made");
    let skipped: Vec<_> = again.steps.iter().filter(|s| s.step.starts_with("grant ") || s.step.contains("principal")).collect();
    assert!(skipped.iter().all(|s| s.result == StepResult::AlreadyDone), "{skipped:#?}");
    assert_eq!(skipped.len(), REQUIRED_APP_ROLES.len() + 1);
}

#[tokio::test]
async fn a_principal_made_by_someone_else_between_lookup_and_create_is_taken_as_it_is() {
    let (h, _) = with_credential().await;
    h.directory.add_customer(&tenant(1), true);
    assert!(attempt(&h, 1).await.onboarded.is_some());
    // The MSP app's principal exists, but the lookup misses it: the create answers "exists".
    h.directory.miss_lookups(1);
    let again = attempt(&h, 1).await;
    assert!(again.onboarded.is_some(), "{:#?}", again.steps);
    let principal = again.steps.iter().find(|s| s.step == "service-principal").unwrap();
    assert_eq!(principal.result, StepResult::AlreadyDone);
    assert_eq!(h.directory.calls("create_service_principal"), 2, "one create each time, the second refused as existing");
    assert_eq!(h.directory.granted(&tenant(1), "app-1").len(), REQUIRED_APP_ROLES.len(), "the grants found on it");
}

#[tokio::test]
async fn a_crash_after_any_grant_is_finished_by_the_retry_without_granting_twice() {
    for done_before_crash in 0..u32::try_from(REQUIRED_APP_ROLES.len()).unwrap() {
        let (h, _) = with_credential().await;
        h.directory.add_customer(&tenant(1), true);
        h.directory.fail_grants_after(Some(done_before_crash));
        let crashed = attempt(&h, 1).await;
        assert!(crashed.onboarded.is_none());
        assert_eq!(crashed.steps.last().unwrap().result, StepResult::Failed);
        assert_eq!(h.directory.granted(&tenant(1), "app-1").len(), done_before_crash as usize);
        assert!(h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().is_none(), "not watched before every grant");
        h.directory.fail_grants_after(None);
        let retried = attempt(&h, 1).await;
        assert!(retried.onboarded.is_some(), "{:#?}", retried.steps);
        assert_eq!(h.directory.granted(&tenant(1), "app-1").len(), REQUIRED_APP_ROLES.len());
        let granted_now = retried.steps.iter().filter(|s| s.step.starts_with("grant ") && s.result == StepResult::Done).count();
        assert_eq!(granted_now, REQUIRED_APP_ROLES.len() - done_before_crash as usize, "only the rest");
        let found_granted: Vec<&str> = retried
            .steps
            .iter()
            .filter(|s| s.step.starts_with("grant ") && s.result == StepResult::AlreadyDone)
            .map(|s| s.step.as_str())
            .collect();
        assert_eq!(
            found_granted.len(),
            done_before_crash as usize,
            "the grants made before the crash are reported as found: {found_granted:?}"
        );
        assert!(h.config.get_tenant(&acme(), &tenant(1)).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_failed_write_of_the_rotated_refresh_token_leaves_the_stored_one_working_for_the_next_attempt() {
    let (h, first) = with_credential().await;
    h.directory.add_customer(&tenant(1), true);
    h.directory.add_customer(&tenant(2), true);
    h.secrets.fail_next_puts(1);
    let one = attempt(&h, 1).await;
    let store_step = one.steps.iter().find(|s| s.step == "store-refresh-token").unwrap();
    assert_eq!(store_step.result, StepResult::Failed);
    assert!(one.onboarded.is_some(), "the session in hand still finished the customer");
    assert_eq!(stored(&h).await, first, "the stored token is the one Microsoft already rotated");
    let two = attempt(&h, 2).await;
    assert_eq!(two.steps[0].result, StepResult::Done, "the old token still redeems: {:#?}", two.steps);
    assert!(two.onboarded.is_some());
    assert_ne!(stored(&h).await, first, "and its rotation is stored this time");
}

#[tokio::test]
async fn a_bulk_job_links_the_customers_the_technician_cannot_grant_for_with_microsofts_error() {
    let (h, _) = with_credential().await;
    // 1: GA and granting works; 2: GA on paper but the directory refuses grants (403);
    // 3: GA on paper but Microsoft knows no relationship (AADSTS50020); 4: no privileged role.
    relationships(&h, &[(1, true), (2, true), (3, true), (4, false)]).await;
    h.directory.add_customer(&tenant(1), true);
    h.directory.add_customer(&tenant(2), false);
    h.directory.add_customer(&tenant(4), true);
    let job = h.service.bulk_onboard(&Access::operator(&acme()), &[tenant(1), tenant(2), tenant(3), tenant(4)], None).await.unwrap();
    let methods: Vec<_> = job.items.iter().map(|i| i.method).collect();
    assert_eq!(methods, [BulkMethod::Direct, BulkMethod::ConsentLink, BulkMethod::ConsentLink, BulkMethod::ConsentLink]);
    let denied = job.items[1].steps.last().unwrap();
    assert_eq!((denied.step.as_str(), denied.result), ("grant ActivityFeed.Read", StepResult::Failed));
    assert!(denied.error.as_ref().unwrap().contains("Authorization_RequestDenied"), "{denied:?}");
    assert!(job.items[2].steps[0].error.as_ref().unwrap().contains("AADSTS50020"), "{:?}", job.items[2].steps);
    assert!(job.items[3].steps.is_empty(), "no attempt without a privileged role");
    assert!(job.items[1..].iter().all(|i| i.url.as_ref().unwrap().contains(&format!("/{}/adminconsent", i.tenant_id))));
    for n in 2..=4 {
        assert!(h.config.get_tenant(&acme(), &tenant(n)).await.unwrap().is_none(), "tenant {n} waits for its consent");
    }
    assert_eq!(h.directory.calls("redeem"), 3, "one redemption per customer tried directly");
}

#[tokio::test]
async fn without_a_delegated_credential_every_customer_gets_a_link_and_microsoft_is_not_called() {
    let h = registered().await;
    relationships(&h, &[(1, true)]).await;
    h.directory.add_customer(&tenant(1), true);
    let job = h.service.bulk_onboard(&Access::operator(&acme()), &[tenant(1)], None).await.unwrap();
    assert_eq!(job.items[0].method, BulkMethod::ConsentLink);
    assert_eq!(h.directory.calls("redeem"), 0);
}

#[tokio::test]
async fn the_delegated_credential_is_an_owners_write_only_secret_that_can_be_forgotten() {
    let h = registered().await;
    let token = h.directory.issue_refresh_token();
    let engineer = Access::of(&crate::access::Principal {
        msp_id: acme(),
        principal_id: crate::ids::PrincipalId::parse("eng").unwrap(),
        name: "Eng".into(),
        email: None,
        role: crate::access::Role::Engineer,
        categories: None,
        scopes: std::collections::BTreeSet::new(),
        created_at: h.clock.now(),
        updated_at: h.clock.now(),
    });
    let automation = Access::of(&crate::access::Principal {
        msp_id: acme(),
        principal_id: crate::ids::PrincipalId::parse("bot").unwrap(),
        name: "Bot".into(),
        email: None,
        role: crate::access::Role::Automation,
        categories: None,
        scopes: [Permission::CredentialsWrite].into(),
        created_at: h.clock.now(),
        updated_at: h.clock.now(),
    });
    for caller in [&engineer, &automation] {
        assert!(matches!(h.service.store_delegated_credential(caller, token.clone()).await, Err(AdminError::Forbidden(_))));
        assert!(matches!(h.service.forget_delegated_credential(caller).await, Err(AdminError::Forbidden(_))));
    }
    let owner = Access::operator(&acme());
    for bad in ["", "   ", &"x".repeat(crate::onboarding::direct::REFRESH_TOKEN_CHARS + 1)] {
        assert!(matches!(h.service.store_delegated_credential(&owner, SecretString::new(bad)).await, Err(AdminError::Invalid(_))));
    }
    h.service.store_delegated_credential(&owner, token.clone()).await.unwrap();
    assert_eq!(stored(&h).await, token);
    h.service.forget_delegated_credential(&owner).await.unwrap();
    assert!(h.secrets.get_secret(&SecretName::delegated_credential(&acme())).await.unwrap().is_none());
    h.service.forget_delegated_credential(&owner).await.unwrap();
    let unregistered = super::tests::harness();
    assert!(matches!(unregistered.service.store_delegated_credential(&owner, token).await, Err(AdminError::Refused(_))));
}
