//! The change-index contract of [`AlertStore::alerts_by_change`], run against the in-memory
//! store and against DynamoDB on moto: every alert write (hits, resolve, triage) moves the alert
//! to the end of the index under one key, reads go either way from any key, look at no more
//! entries than asked, apply the selection and the time bounds, and never show another MSP's
//! alerts; a read of one tenant looks at that tenant's entries only
//! ([`tenant_change_index_contract`]).

use super::{sample_alert_for, unique_msp, unique_tenant};
use crate::alert::{Alert, AlertHits, AlertStatus, Severity};
use crate::changes::{AlertSelection, ChangeKey, ChangeQuery};
use crate::ids::{AlertId, MspId, RecordId, TenantId};
use crate::ports::AlertStore;
use chrono::{Duration, TimeZone, Utc};

/// Reads the whole index page by page (`read` entries at a time), returning the ids in order.
async fn follow(store: &dyn AlertStore, msp_id: &MspId, mut query: ChangeQuery) -> Vec<AlertId> {
    let mut ids = Vec::new();
    for _ in 0..100 {
        let page = store.alerts_by_change(msp_id, &query).await.unwrap();
        assert!(page.read <= query.read.max(1), "a read looks at no more entries than asked");
        let keys: Vec<&ChangeKey> = page.alerts.iter().map(|a| &a.key).collect();
        let ordered = keys.windows(2).all(|w| if query.newest_first { w[0] > w[1] } else { w[0] < w[1] });
        assert!(ordered, "a page is in index order");
        ids.extend(page.alerts.iter().map(|a| a.alert.id.clone()));
        if !page.more {
            return ids;
        }
        assert!(page.last_read.is_some(), "a page with more to come says where it stopped");
        query.after = page.last_read;
    }
    panic!("the index never ran out");
}

async fn write_gap() {
    // Keys are stamped to the millisecond: keep writes in distinct milliseconds.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

/// The contract.
///
/// # Panics
/// When the store breaks it.
pub async fn alert_change_index_contract(store: &dyn AlertStore) {
    let msp_id = unique_msp();
    let tenant_id = unique_tenant();
    let t0 = Utc.timestamp_opt(1_767_600_000, 0).unwrap();
    let record = |n: u32| (RecordId::parse(&format!("c{n}")).unwrap(), t0);
    let mut written: Vec<Alert> = Vec::new();
    for hour in 0..3 {
        let alert = sample_alert_for(&msp_id, &tenant_id, t0 + Duration::hours(hour));
        written.push(store.record_hits(&AlertHits::of_records(alert, vec![record(1)]), t0).await.unwrap());
        write_gap().await;
    }
    let (a, b, c) = (written[0].id.clone(), written[1].id.clone(), written[2].id.clone());
    let everything = ChangeQuery { read: 10, ..ChangeQuery::default() };

    assert_eq!(follow(store, &msp_id, everything.clone()).await, vec![a.clone(), b.clone(), c.clone()], "oldest change first");
    assert!(store.alerts_by_change(&unique_msp(), &everything).await.unwrap().alerts.is_empty(), "another MSP's index is empty");
    let page = store.alerts_by_change(&msp_id, &everything).await.unwrap();
    let (first, last) = (page.alerts[0].key.clone(), page.alerts[2].key.clone());
    assert_eq!(page.alerts[0].alert, written[0], "an entry is the alert as stored");
    assert_eq!(page.last_read.as_ref(), Some(&last));

    // Triage moves `a` to the end; it is listed once, under its new key.
    let mut triaged = store.get_alert(&msp_id, &a).await.unwrap().unwrap();
    triaged.status = AlertStatus::InProgress;
    triaged.version += 1;
    store.update_alert(&triaged).await.unwrap();
    write_gap().await;
    let since_last = store.alerts_by_change(&msp_id, &ChangeQuery { after: Some(last.clone()), ..everything.clone() }).await.unwrap();
    assert_eq!(since_last.alerts.iter().map(|e| e.alert.id.clone()).collect::<Vec<_>>(), vec![a.clone()], "a triage is a change");
    assert_eq!(since_last.alerts[0].alert.status, AlertStatus::InProgress);
    assert!(since_last.alerts[0].key > last && since_last.alerts[0].key > first);
    assert_eq!(follow(store, &msp_id, everything.clone()).await, vec![b.clone(), c.clone(), a.clone()]);

    // Resolving and new hits are changes too.
    store.resolve_alert(&msp_id, &b, t0 + Duration::hours(5)).await.unwrap();
    write_gap().await;
    assert_eq!(follow(store, &msp_id, everything.clone()).await, vec![c.clone(), a.clone(), b.clone()], "a resolve is a change");
    let c_alert = store.get_alert(&msp_id, &c).await.unwrap().unwrap();
    store.record_hits(&AlertHits::of_records(c_alert, vec![record(2)]), t0).await.unwrap();
    write_gap().await;
    assert_eq!(follow(store, &msp_id, everything.clone()).await, vec![a.clone(), b.clone(), c.clone()], "a hit is a change");

    // One entry at a time, both ways.
    assert_eq!(follow(store, &msp_id, ChangeQuery { read: 1, ..everything.clone() }).await, vec![a.clone(), b.clone(), c.clone()]);
    let newest = ChangeQuery { newest_first: true, read: 1, ..everything.clone() };
    assert_eq!(follow(store, &msp_id, newest.clone()).await, vec![c.clone(), b.clone(), a.clone()], "newest change first");

    // The selection is applied while reading: entries that fail it still count as read.
    let in_progress = AlertSelection { status: Some(AlertStatus::InProgress), ..AlertSelection::default() };
    let first_look = store.alerts_by_change(&msp_id, &ChangeQuery { selection: in_progress.clone(), ..newest.clone() }).await.unwrap();
    assert!(first_look.alerts.is_empty() && first_look.more, "the newest entry (c) fails the selection");
    assert_eq!(first_look.last_read.as_ref().map(|k| k.as_str().ends_with(c.as_str())), Some(true), "and the read says it passed it");
    assert_eq!(follow(store, &msp_id, ChangeQuery { selection: in_progress, ..newest.clone() }).await, vec![a.clone()]);
    let resolved = AlertSelection { status: Some(AlertStatus::Resolved), severity: Some(Severity::Informational), tenant: Some(tenant_id) };
    assert_eq!(follow(store, &msp_id, ChangeQuery { selection: resolved, ..everything.clone() }).await, vec![b.clone()]);
    let elsewhere = AlertSelection { tenant: Some(unique_tenant()), ..AlertSelection::default() };
    assert!(follow(store, &msp_id, ChangeQuery { selection: elsewhere, ..everything.clone() }).await.is_empty());
    let high = AlertSelection { severity: Some(Severity::High), ..AlertSelection::default() };
    assert!(follow(store, &msp_id, ChangeQuery { selection: high, ..everything.clone() }).await.is_empty());

    // Time bounds: keys are the write times.
    let now = Utc::now();
    let before_all = ChangeQuery { changed_before: Some(now - Duration::hours(1)), ..everything.clone() };
    assert!(follow(store, &msp_id, before_all).await.is_empty(), "nothing was written an hour ago");
    assert!(follow(store, &msp_id, ChangeQuery { changed_since: Some(now + Duration::hours(1)), ..everything.clone() }).await.is_empty());
    let window = ChangeQuery {
        changed_since: Some(now - Duration::hours(1)),
        changed_before: Some(now + Duration::minutes(1)),
        ..everything.clone()
    };
    assert_eq!(follow(store, &msp_id, window.clone()).await, vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(follow(store, &msp_id, ChangeQuery { newest_first: true, ..window }).await, vec![c, b, a]);
}

/// The tenant contract: a read selecting a tenant looks at that tenant's entries only, by key,
/// however many entries the MSP's other tenants have around them; `read` counts only the
/// tenant's entries, `after` pages within the tenant both ways, status and severity still count
/// as read, and the same tenant id under another MSP is another tenant.
///
/// # Panics
/// When the store breaks it.
pub async fn tenant_change_index_contract(store: &dyn AlertStore) {
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let (rare, busy) = (unique_tenant(), unique_tenant());
    let t0 = Utc.timestamp_opt(1_767_600_000, 0).unwrap();
    let mut hour = 0;
    let mut write = async |msp_id: &MspId, tenant_id: &TenantId| {
        hour += 1;
        let alert = sample_alert_for(msp_id, tenant_id, t0 + Duration::hours(hour));
        let record = (RecordId::parse("t1").unwrap(), t0);
        let stored = store.record_hits(&AlertHits::of_records(alert, vec![record]), t0).await.unwrap();
        write_gap().await;
        stored.id
    };
    // The rare tenant's two alerts sit between fifteen of the busy tenant's on either side, and
    // the rare tenant's id also names a tenant of another MSP, written last.
    for _ in 0..15 {
        write(&msp_id, &busy).await;
    }
    let (a, b) = (write(&msp_id, &rare).await, write(&msp_id, &rare).await);
    for _ in 0..15 {
        write(&msp_id, &busy).await;
    }
    let elsewhere = write(&other_msp, &rare).await;

    let of_rare = AlertSelection { tenant: Some(rare.clone()), ..AlertSelection::default() };
    let ids = |page: &crate::changes::ChangePage| page.alerts.iter().map(|e| e.alert.id.clone()).collect::<Vec<_>>();
    for newest_first in [false, true] {
        let in_order = if newest_first { vec![b.clone(), a.clone()] } else { vec![a.clone(), b.clone()] };
        let two = ChangeQuery { newest_first, selection: of_rare.clone(), read: 2, ..ChangeQuery::default() };
        let page = store.alerts_by_change(&msp_id, &two).await.unwrap();
        assert_eq!(ids(&page), in_order, "two entries read are the tenant's two alerts (newest first: {newest_first})");
        assert_eq!(page.read, 2, "only the tenant's entries are looked at");
        let three = store.alerts_by_change(&msp_id, &ChangeQuery { read: 3, ..two.clone() }).await.unwrap();
        assert_eq!((ids(&three), three.read, three.more), (in_order.clone(), 2, false), "the tenant has two entries, and no more");

        let one = ChangeQuery { read: 1, ..two.clone() };
        let first = store.alerts_by_change(&msp_id, &one).await.unwrap();
        assert_eq!((ids(&first), first.read), (in_order[..1].to_vec(), 1), "one entry read is the tenant's first");
        let next = store.alerts_by_change(&msp_id, &ChangeQuery { after: first.last_read.clone(), ..one.clone() }).await.unwrap();
        assert_eq!((ids(&next), next.read), (in_order[1..].to_vec(), 1), "after it comes the tenant's second");
        assert_eq!(follow(store, &msp_id, one).await, in_order, "paging stays within the tenant");

        let high = AlertSelection { severity: Some(Severity::High), ..of_rare.clone() };
        let failing = store.alerts_by_change(&msp_id, &ChangeQuery { selection: high, ..two.clone() }).await.unwrap();
        assert!(failing.alerts.is_empty(), "the severity is still applied");
        assert_eq!(failing.read, 2, "and the tenant's entries failing it still count as read");
        let fresh = AlertSelection { status: Some(AlertStatus::New), ..of_rare.clone() };
        assert_eq!(follow(store, &msp_id, ChangeQuery { selection: fresh, ..two.clone() }).await, in_order, "so is the status");
    }

    let everything = ChangeQuery { read: 100, ..ChangeQuery::default() };
    assert_eq!(follow(store, &msp_id, everything.clone()).await.len(), 32, "the MSP's index still holds every tenant's alerts");
    let of_other = ChangeQuery { selection: of_rare.clone(), ..everything.clone() };
    assert_eq!(follow(store, &other_msp, of_other.clone()).await, vec![elsewhere.clone()], "another MSP's tenant of that id is its own");
    assert!(!follow(store, &msp_id, of_other).await.contains(&elsewhere), "and never read as this MSP's");
    let unknown = AlertSelection { tenant: Some(unique_tenant()), ..AlertSelection::default() };
    let none = store.alerts_by_change(&msp_id, &ChangeQuery { selection: unknown, ..everything }).await.unwrap();
    assert_eq!((none.alerts.len(), none.read, none.more), (0, 0, false), "a tenant without alerts has an empty index");
}
