//! The [`crate::ports::OffboardingStore`] contract, run against memory and DynamoDB on moto: a
//! record is created once per (MSP, tenant), replaced only at the version it was read at (so two
//! runners racing on one offboarding cannot both write), found by its tenant key under its MSP
//! only, and listed while unfinished — another MSP's record of the same tenant id untouched.

use super::{unique_msp, unique_tenant};
use crate::access::Actor;
use crate::error::StoreError;
use crate::ids::{ContentType, MspId, PrincipalId, TenantId};
use crate::offboarding::{DataKey, DataKind, Offboarding, OffboardingPhase, PendingPage, tenant_key};
use crate::ports::OffboardingStore;
use chrono::{Duration, TimeZone, Utc};

/// A record in its stop phase, as a request writes it (version 0: not stored yet).
fn requested(msp_id: &MspId, tenant_id: &TenantId) -> Offboarding {
    let at = Utc.timestamp_opt(1_765_000_000, 0).unwrap();
    Offboarding {
        msp_id: msp_id.clone(),
        tenant_key: tenant_key(msp_id, tenant_id),
        tenant_id: Some(tenant_id.clone()),
        requested_at: at,
        requested_by: Actor { principal_id: PrincipalId::parse("owner-1").unwrap(), name: "Olivia Owner".into() },
        retention_days: 30,
        purge_after: at + Duration::days(30),
        phase: OffboardingPhase::Stopping,
        content_types: vec![ContentType::AzureActiveDirectory, ContentType::Exchange],
        had_credentials: true,
        subscriptions_stopped: false,
        subscriptions_note: None,
        credentials_deleted: false,
        report: [("company_links".to_owned(), 2)].into_iter().collect(),
        purged: Vec::new(),
        cursor: None,
        pending: None,
        kind_count: 0,
        updated_at: at,
        completed_at: None,
        version: 0,
    }
}

/// The records of these MSPs among the unfinished ones (the store is shared with other suites).
async fn unfinished_of(store: &dyn OffboardingStore, msps: &[&MspId]) -> Vec<(MspId, String, u64)> {
    let mut found: Vec<(MspId, String, u64)> = store
        .list_unfinished_offboardings()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| msps.contains(&&o.msp_id))
        .map(|o| (o.msp_id, o.tenant_key, o.version))
        .collect();
    found.sort();
    found
}

/// What every [`crate::ports::OffboardingStore`] must do.
pub async fn offboarding_store_contract(store: &dyn OffboardingStore) {
    let (msp, other) = (unique_msp(), unique_msp());
    let (tenant, neighbour) = (unique_tenant(), unique_tenant());
    let key = tenant_key(&msp, &tenant);

    // Created once: version 1 whatever the caller passed, and a second create is refused without
    // touching the first.
    assert_eq!(store.get_offboarding(&msp, &key).await.unwrap(), None);
    let first = Offboarding { version: 7, ..requested(&msp, &tenant) };
    assert!(store.create_offboarding(&first).await.unwrap(), "the first request creates the record");
    let stored = store.get_offboarding(&msp, &key).await.unwrap().expect("stored");
    assert_eq!(stored, Offboarding { version: 1, ..first.clone() }, "every field round-trips, at version 1");
    let again = Offboarding { retention_days: 0, ..requested(&msp, &tenant) };
    assert!(!store.create_offboarding(&again).await.unwrap(), "a repeated request finds the record");
    assert_eq!(store.get_offboarding(&msp, &key).await.unwrap(), Some(stored.clone()), "the first record is kept as it was");

    // Another MSP's offboarding of the same tenant id is its own record; neither sees the other.
    let other_key = tenant_key(&other, &tenant);
    assert_ne!(other_key, key);
    assert_eq!(store.get_offboarding(&other, &key).await.unwrap(), None, "another MSP cannot read it by its key");
    assert!(store.create_offboarding(&requested(&other, &tenant)).await.unwrap(), "another MSP's same tenant is a new record");
    let other_stored = store.get_offboarding(&other, &other_key).await.unwrap().expect("other stored");

    // Saved only at the version read; the saved record carries the new version.
    let mut progressed = stored.clone();
    progressed.phase = OffboardingPhase::Retained;
    progressed.subscriptions_stopped = true;
    progressed.credentials_deleted = true;
    progressed.report.insert("subscriptions".into(), 2);
    store.save_offboarding(&mut progressed).await.unwrap();
    assert_eq!(progressed.version, 2, "the passed record gets its new version");
    assert_eq!(store.get_offboarding(&msp, &key).await.unwrap(), Some(progressed.clone()));

    let mut stale = stored.clone();
    stale.phase = OffboardingPhase::Purging;
    assert!(matches!(store.save_offboarding(&mut stale).await, Err(StoreError::Conflict { .. })), "a save from a stale read is a conflict");
    assert_eq!(stale.version, 1, "a refused save leaves the caller's version");
    assert_eq!(store.get_offboarding(&msp, &key).await.unwrap(), Some(progressed.clone()), "and changes nothing");

    let mut unborn = requested(&msp, &neighbour);
    let mut twin = unborn.clone();
    store.save_offboarding(&mut unborn).await.unwrap();
    assert_eq!(unborn.version, 1, "version 0 saves a record none exists for");
    assert!(
        matches!(store.save_offboarding(&mut twin).await, Err(StoreError::Conflict { .. })),
        "version 0 is a conflict once one exists (a tenant re-offboarded twice at once)"
    );

    // A purge in progress keeps its pending page and cursor across the round trip.
    let mut purging = progressed.clone();
    purging.phase = OffboardingPhase::Purging;
    purging.purged = vec![DataKind::HitMarkers, DataKind::TicketIndex];
    purging.cursor = Some("1\n{\"pk\":\"MSP#x\",\"sk\":\"DELIVERY#a\"}".into());
    purging.pending = Some(PendingPage {
        kind: DataKind::Deliveries,
        keys: vec![DataKey { table: "alerts".into(), pk: format!("MSP#{msp}"), sk: "DELIVERY#a#d".into() }],
        next: Some("next".into()),
    });
    purging.kind_count = 3;
    store.save_offboarding(&mut purging).await.unwrap();
    assert_eq!(store.get_offboarding(&msp, &key).await.unwrap(), Some(purging.clone()));

    assert_eq!(
        unfinished_of(store, &[&msp, &other]).await,
        {
            let mut expected = vec![
                (msp.clone(), key.clone(), purging.version),
                (msp.clone(), tenant_key(&msp, &neighbour), 1),
                (other.clone(), other_key.clone(), 1),
            ];
            expected.sort();
            expected
        },
        "every unfinished record of every MSP is listed"
    );

    // Purged: the record no longer names the tenant and is not listed any more; the other MSP's
    // record of the same tenant id is untouched.
    let mut purged = purging.clone();
    purged.phase = OffboardingPhase::Purged;
    purged.tenant_id = None;
    purged.pending = None;
    purged.cursor = None;
    purged.purged = DataKind::ALL.to_vec();
    purged.completed_at = Some(purged.updated_at + Duration::days(30));
    store.save_offboarding(&mut purged).await.unwrap();
    assert_eq!(store.get_offboarding(&msp, &key).await.unwrap(), Some(purged.clone()), "found by the tenant key, naming no tenant");
    let listed = unfinished_of(store, &[&msp, &other]).await;
    assert!(!listed.iter().any(|(m, k, _)| m == &msp && k == &key), "a purged record is not listed");
    assert!(listed.iter().any(|(m, k, _)| m == &other && k == &other_key), "the other MSP's record still is");
    assert_eq!(store.get_offboarding(&other, &other_key).await.unwrap(), Some(other_stored), "the other MSP's record is untouched");

    // The tenant comes back and leaves again: the purged record is replaced at its version.
    let mut returning = Offboarding { version: purged.version, ..requested(&msp, &tenant) };
    assert!(!store.create_offboarding(&returning).await.unwrap(), "the purged record still occupies the key");
    store.save_offboarding(&mut returning).await.unwrap();
    assert_eq!(store.get_offboarding(&msp, &key).await.unwrap(), Some(returning), "the new offboarding replaces the purged one");
}
