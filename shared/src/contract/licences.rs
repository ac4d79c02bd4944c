//! The [`crate::ports::LicenceStore`] contract, run against memory and DynamoDB on moto: a
//! tenant's licence state written whole and read back unchanged, replaced by the next read,
//! a state near the kept bounds stored whole, and read times listed per MSP — every key under
//! its MSP.

use super::{unique_msp, unique_tenant};
use crate::licences::findings::{FindingKind, RaisedFinding};
use crate::licences::{
    CHANGES_MAX, DefenderPlan, LicenceSnapshot, LicenceStatus, LicenceSubscription, LicensedSku, PrepaidUnits, SUBSCRIPTIONS_MAX,
    TenantLicences,
};
use chrono::{Duration, TimeZone, Utc};

fn subscription(i: usize, status: LicenceStatus) -> LicenceSubscription {
    let at = Utc.timestamp_opt(1_765_000_000, 0).unwrap();
    LicenceSubscription {
        id: format!("5a1e0000-0000-4000-8000-{i:012}"),
        sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46".into(),
        sku_part_number: "SPB".into(),
        status,
        is_trial: i % 7 == 0,
        next_lifecycle_at: (i % 3 != 0).then_some(at + Duration::days(20)),
        total_licences: 20,
        created_at: Some(at - Duration::days(300)),
    }
}

/// What every [`crate::ports::LicenceStore`] must do.
pub async fn licence_store_contract(store: &dyn crate::ports::LicenceStore) {
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let (t1, t2) = (unique_tenant(), unique_tenant());
    let at = Utc.timestamp_opt(1_765_000_000, 0).unwrap();
    assert_eq!(store.licences(&msp_id, &t1).await.unwrap(), None, "never read");
    assert!(store.licence_reads(&msp_id).await.unwrap().is_empty());

    let mut state = TenantLicences::default();
    let sku = LicensedSku {
        sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46".into(),
        sku_part_number: "SPB".into(),
        capability_status: LicenceStatus::Warning,
        consumed_units: 18,
        prepaid_units: PrepaidUnits { enabled: 0, warning: 20, suspended: 0, locked_out: 0 },
        defender_plans: vec![DefenderPlan::Plan1],
        subscription_ids: vec![subscription(1, LicenceStatus::Warning).id],
    };
    state.take_snapshot(LicenceSnapshot { skus: vec![sku.clone()], subscriptions: vec![subscription(1, LicenceStatus::Enabled)] }, at);
    state.take_snapshot(
        LicenceSnapshot { skus: vec![sku], subscriptions: vec![subscription(1, LicenceStatus::Warning)] },
        at + Duration::days(1),
    );
    state.raised.insert(subscription(1, LicenceStatus::Warning).id, vec![RaisedFinding { kind: FindingKind::GracePeriod, since: at }]);
    store.put_licences(&msp_id, &t1, &state).await.unwrap();
    assert_eq!(store.licences(&msp_id, &t1).await.unwrap().as_ref(), Some(&state), "read back unchanged");
    assert_eq!(store.licences(&other_msp, &t1).await.unwrap(), None, "another MSP reads none");

    let mut failed = state.clone();
    failed.read_failed(at + Duration::days(2), "access to the tenant was refused: Authorization_RequestDenied".into(), true);
    store.put_licences(&msp_id, &t1, &failed).await.unwrap();
    assert_eq!(store.licences(&msp_id, &t1).await.unwrap().as_ref(), Some(&failed), "replaced by the next read");

    // A tenant at the kept bounds: every subscription, every change.
    let mut big = TenantLicences::default();
    for round in 0..=CHANGES_MAX {
        let status = if round % 2 == 0 { LicenceStatus::Enabled } else { LicenceStatus::Warning };
        let subscriptions = (0..SUBSCRIPTIONS_MAX).map(|i| subscription(i, status)).collect();
        big.take_snapshot(LicenceSnapshot { skus: vec![], subscriptions }, at + Duration::hours(i64::try_from(round).unwrap()));
    }
    assert_eq!(big.changes.len(), CHANGES_MAX);
    // moto does not enforce DynamoDB's 400 KB item limit: the JSON size is an upper bound of it.
    let size = serde_json::to_string(&big).unwrap().len();
    assert!(size < 300 * 1024, "a tenant at the bounds is {size} bytes");
    store.put_licences(&msp_id, &t2, &big).await.unwrap();
    assert_eq!(store.licences(&msp_id, &t2).await.unwrap().as_ref(), Some(&big), "stored whole at the bounds");

    let reads = store.licence_reads(&msp_id).await.unwrap();
    assert_eq!(reads.len(), 2);
    assert_eq!(reads[&t1], at + Duration::days(2), "the last read, failed or not");
    assert_eq!(reads[&t2], big.read_at.unwrap());
    assert!(store.licence_reads(&other_msp).await.unwrap().is_empty(), "another MSP lists none");
}
