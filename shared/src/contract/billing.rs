//! The [`crate::ports::MailboxCountStore`] contract, run against memory and DynamoDB on moto: a
//! day recorded twice keeps the last figure, ranges come oldest first, the latest figure per
//! tenant never moves back to an older day, days past the MSP's retention are gone once the
//! next day is recorded, settings default until set — every key under its MSP.

use super::{unique_msp, unique_tenant};
use crate::billing::{BillingSettings, DailyCount};
use crate::ids::TenantId;
use chrono::{NaiveDate, TimeZone, Utc};

/// A fresh figure of `protected` mailboxes for `tenant` on `day`.
#[must_use]
pub fn sample_count(tenant: &TenantId, day: NaiveDate, protected: u32) -> DailyCount {
    DailyCount {
        tenant_id: tenant.clone(),
        day,
        protected_mailboxes: protected,
        users: protected + 3,
        counted_on: day,
        recorded_at: Utc.timestamp_opt(1_765_000_000, 0).unwrap(),
        carried_over: None,
    }
}

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Duration::days(i64::from(n))
}

/// What every [`crate::ports::MailboxCountStore`] must do.
pub async fn mailbox_count_store_contract(store: &dyn crate::ports::MailboxCountStore) {
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let (t1, t2) = (unique_tenant(), unique_tenant());
    assert_eq!(store.billing_settings(&msp_id).await.unwrap(), BillingSettings::default(), "defaults until set");
    let keep_week = BillingSettings { count_retention_days: 7 };
    store.put_billing_settings(&msp_id, &keep_week).await.unwrap();
    assert_eq!(store.billing_settings(&msp_id).await.unwrap(), keep_week);
    assert_eq!(store.billing_settings(&other_msp).await.unwrap(), BillingSettings::default(), "another MSP's are its own");

    assert_eq!(store.counts_requested_on(&msp_id).await.unwrap(), None);
    store.set_counts_requested_on(&msp_id, day(3)).await.unwrap();
    store.set_counts_requested_on(&msp_id, day(4)).await.unwrap();
    assert_eq!(store.counts_requested_on(&msp_id).await.unwrap(), Some(day(4)));
    assert_eq!(store.counts_requested_on(&other_msp).await.unwrap(), None);

    let long = BillingSettings::default();
    for n in 0..5 {
        store.record_count(&msp_id, &sample_count(&t1, day(n), 10 + n), &long).await.unwrap();
    }
    store.record_count(&msp_id, &sample_count(&t2, day(2), 99), &long).await.unwrap();
    let carried = sample_count(&t1, day(3), 13).carried_to(day(4), "throttled", Utc.timestamp_opt(1_765_100_000, 0).unwrap());
    store.record_count(&msp_id, &carried, &long).await.unwrap();
    let series = store.counts(&msp_id, &t1, day(1), day(4)).await.unwrap();
    assert_eq!(series.iter().map(|c| c.day).collect::<Vec<_>>(), vec![day(1), day(2), day(3), day(4)], "oldest first, both ends");
    assert_eq!(series[3], carried, "a day recorded again keeps the last figure");
    assert!(store.counts(&msp_id, &t1, day(4), day(1)).await.unwrap().is_empty(), "an empty range");
    assert!(store.counts(&other_msp, &t1, day(0), day(9)).await.unwrap().is_empty(), "another MSP reads none");

    let latest = store.latest_counts(&msp_id).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[&t1], carried);
    assert_eq!(latest[&t2].protected_mailboxes, 99);
    store.record_count(&msp_id, &sample_count(&t2, day(1), 1), &long).await.unwrap();
    assert_eq!(store.latest_counts(&msp_id).await.unwrap()[&t2].day, day(2), "an older day written late is not the latest");
    assert!(store.latest_counts(&other_msp).await.unwrap().is_empty());

    store.record_count(&msp_id, &sample_count(&t1, day(10), 20), &keep_week).await.unwrap();
    let kept = store.counts(&msp_id, &t1, day(0), day(10)).await.unwrap();
    assert_eq!(kept.iter().map(|c| c.day).collect::<Vec<_>>(), vec![day(4), day(10)], "days older than a week before day 10 are gone");
    assert_eq!(store.counts(&msp_id, &t2, day(0), day(10)).await.unwrap().len(), 2, "another tenant's series is left alone");
}
