//! The [`crate::ports::OnboardingStore`] contract, run against memory and DynamoDB on moto: the
//! MSP app, consent links kept and listed per MSP, a state's nonce used once only (per MSP),
//! access tests and bulk onboardings — every key under its MSP.

use super::{unique_msp, unique_tenant};
use crate::onboarding::{AccessTest, BulkItem, BulkJob, BulkMethod, Capability, CapabilityCheck, ConsentLink, LinkStatus, MspApp};
use chrono::{Duration, TimeZone, Utc};

/// What every [`crate::ports::OnboardingStore`] must do.
pub async fn onboarding_store_contract(store: &dyn crate::ports::OnboardingStore) {
    let (msp, other) = (unique_msp(), unique_msp());
    let at = Utc.timestamp_opt(1_765_000_000, 0).unwrap();

    assert_eq!(store.app(&msp).await.unwrap(), None);
    let app = MspApp { client_id: "app-1".into(), redirect_uri: "https://vigil.example/v1/consent/acme".into(), registered_at: at };
    store.put_app(&msp, &app).await.unwrap();
    assert_eq!(store.app(&msp).await.unwrap(), Some(app.clone()));
    assert_eq!(store.app(&other).await.unwrap(), None, "another MSP has no app");
    let replaced = MspApp { client_id: "app-2".into(), ..app };
    store.put_app(&msp, &replaced).await.unwrap();
    assert_eq!(store.app(&msp).await.unwrap(), Some(replaced));

    let link = |id: &str| ConsentLink {
        id: id.into(),
        url: format!("https://login.example/common/adminconsent?state={id}"),
        customer_name: "Contoso".into(),
        expected_tenant: None,
        issued_at: at,
        expires_at: at + Duration::hours(72),
        bulk_job: Some("job-1".into()),
        status: LinkStatus::Issued,
        updated_at: at,
    };
    store.put_link(&msp, &link("n2")).await.unwrap();
    store.put_link(&msp, &link("n1")).await.unwrap();
    let tenant = unique_tenant();
    let consented = ConsentLink { status: LinkStatus::Consented { tenant_id: tenant.clone() }, ..link("n1") };
    store.put_link(&msp, &consented).await.unwrap();
    assert_eq!(store.link(&msp, "n1").await.unwrap(), Some(consented.clone()), "replaced with its outcome");
    assert_eq!(store.links(&msp).await.unwrap(), vec![consented, link("n2")], "by id");
    assert_eq!(store.link(&other, "n1").await.unwrap(), None, "another MSP reads none");
    assert!(store.links(&other).await.unwrap().is_empty());

    let expires = Utc::now() + Duration::hours(1);
    assert!(store.claim_nonce(&msp, "nonce-a", expires).await.unwrap(), "first use");
    assert!(!store.claim_nonce(&msp, "nonce-a", expires).await.unwrap(), "second use refused");
    assert!(store.claim_nonce(&msp, "nonce-b", expires).await.unwrap(), "another nonce is free");
    assert!(store.claim_nonce(&other, "nonce-a", expires).await.unwrap(), "nonces are per MSP");

    assert_eq!(store.access_test(&msp, &tenant).await.unwrap(), None);
    let failed = AccessTest::new(
        tenant.clone(),
        at,
        vec![
            CapabilityCheck::pass(Capability::Token),
            CapabilityCheck::from_result(
                Capability::ManagementActivity,
                Some(&crate::error::SourceError::AccessRefused { code: "AF10001".into(), message: "no role".into() }),
            ),
        ],
    );
    store.put_access_test(&msp, &failed).await.unwrap();
    assert_eq!(store.access_test(&msp, &tenant).await.unwrap(), Some(failed));
    let passed = AccessTest::new(tenant.clone(), at + Duration::minutes(5), vec![CapabilityCheck::pass(Capability::Token)]);
    store.put_access_test(&msp, &passed).await.unwrap();
    assert_eq!(store.access_test(&msp, &tenant).await.unwrap(), Some(passed), "the last test replaces the one before");
    assert_eq!(store.access_test(&other, &tenant).await.unwrap(), None);

    let second = crate::ids::TenantId::parse("6f2a3d9b-8e52-4a1f-8b62-3c8e1d0f5b22").unwrap();
    let mut job = BulkJob {
        id: "job-1".into(),
        created_at: at,
        items: vec![BulkItem {
            tenant_id: tenant.clone(),
            name: "Contoso".into(),
            method: BulkMethod::ConsentLink,
            link_id: Some("n1".into()),
            url: Some("https://login.example".into()),
            status: LinkStatus::Issued,
            steps: Vec::new(),
            access_test_passed: None,
        }],
        remaining: vec![second.clone()],
    };
    store.put_bulk(&msp, &job).await.unwrap();
    assert_eq!(store.bulk(&msp, "job-1").await.unwrap().as_ref(), Some(&job));
    // Progress is kept per customer: the same job written again with its next customer.
    job.items.push(BulkItem {
        tenant_id: second.clone(),
        name: "Fabrikam".into(),
        method: BulkMethod::Direct,
        link_id: None,
        url: None,
        status: LinkStatus::Consented { tenant_id: second },
        steps: vec![
            crate::onboarding::direct::DirectStep::done("token"),
            crate::onboarding::direct::DirectStep::failed("access-test", &"AF10001"),
        ],
        access_test_passed: Some(false),
    });
    job.remaining.clear();
    store.put_bulk(&msp, &job).await.unwrap();
    assert_eq!(store.bulk(&msp, "job-1").await.unwrap(), Some(job));
    assert_eq!(store.bulk(&msp, "job-2").await.unwrap(), None);
    assert_eq!(store.bulk(&other, "job-1").await.unwrap(), None);
}
