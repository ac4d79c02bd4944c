//! The SIEM feed on DynamoDB (moto) under concurrent updates: writers change alerts (triage
//! with optimistic concurrency, new hits, a write committed a second after it was stamped)
//! while a reader follows the feed with the cursor it is given. Nothing is skipped (the reader
//! ends up with every alert's last version), order is kept (keys only ever increase), and every
//! entry read is a distinct stored change (duplicates bounded by the writes made).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use vigil::alert::{AlertHits, AlertStatus};
use vigil::aws::dynamodb::DynamoAlertStore;
use vigil::changes::ChangeKey;
use vigil::clock::SystemClock;
use vigil::contract;
use vigil::error::StoreError;
use vigil::ids::{AlertId, MspId, RecordId};
use vigil::memory::{MemoryConfigStore, MemoryPolicyStore, MemoryQueue};
use vigil::ports::AlertStore;
use vigil::services::alert_feed::{CursorUse, decode_cursor};
use vigil::services::tuning::TuningService;
use vigil_local::provision::{ProvisionOptions, provision};
use vigil_local::template::StackModel;
use vigil_tests::moto_sdk;

const ALERTS: i64 = 6;
const WRITERS: usize = 4;
const WRITES_EACH: usize = 12;
/// Local moto commits in milliseconds; a short overlap keeps duplicates few.
const OVERLAP: Duration = Duration::seconds(2);
/// How often the reader polls once caught up.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// A triage write with optimistic concurrency, retried on a lost race; the version written.
async fn triage(store: &DynamoAlertStore, msp_id: &MspId, id: &AlertId, n: usize) -> u64 {
    loop {
        let mut alert = store.get_alert(msp_id, id).await.unwrap().unwrap();
        alert.triage.assignee = Some(format!("tech{n}@msp.example"));
        alert.status = if n % 2 == 0 { AlertStatus::InProgress } else { AlertStatus::New };
        alert.version += 1;
        match store.update_alert(&alert).await {
            Ok(()) => return alert.version,
            Err(StoreError::Conflict { .. }) => tokio::task::yield_now().await,
            Err(other) => panic!("{other}"),
        }
    }
}

/// Rewrites the alert as a writer would that stamped it a second ago and commits only now.
async fn late_commit(client: &Client, table: &str, msp_id: &MspId, id: &AlertId) {
    let key = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("MSP#{msp_id}"))),
        ("sk".to_owned(), AttributeValue::S(format!("ALERT#{id}"))),
    ]);
    let mut item = client.get_item().table_name(table).set_key(Some(key)).consistent_read(true).send().await.unwrap().item.unwrap();
    let version: u64 = item["version"].as_n().unwrap().parse().unwrap();
    item.insert("version".into(), AttributeValue::N((version + 1).to_string()));
    item.insert("changed".into(), AttributeValue::S(ChangeKey::new(Utc::now() - Duration::seconds(1), id).as_str().to_owned()));
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("version = :v")
        .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_the_feed_during_concurrent_updates_misses_nothing_and_keeps_order() {
    let (sdk, _moto) = moto_sdk().await;
    let model = StackModel::load(&vigil_local::repo_root().join("template.yaml")).unwrap();
    let options = ProvisionOptions {
        prefix: format!("siem-{}-", contract::unique_suffix()),
        parameters: BTreeMap::new(),
        visibility_timeout_override: Some(5),
    };
    let stack = provision(&model, &sdk, &options).await.unwrap();
    let (client, table) = (Client::new(&sdk), stack.table_names["AlertsTable"].clone());
    let store = Arc::new(DynamoAlertStore::new(client.clone(), &table));
    let tuning = TuningService {
        config: Arc::new(MemoryConfigStore::default()),
        policies: Arc::new(MemoryPolicyStore::default()),
        alerts: store.clone(),
        tickets: Arc::new(MemoryQueue::default()),
        clock: Arc::new(SystemClock),
        audit: vigil::services::access::AuditTrail { log: Arc::new(MemoryConfigStore::default()), clock: Arc::new(SystemClock) },
    };
    let (msp_id, tenant_id) = (contract::unique_msp(), contract::unique_tenant());
    let t0 = Utc::now() - Duration::days(1);
    let mut ids = Vec::new();
    for hour in 0..ALERTS {
        let alert = contract::sample_alert_for(&msp_id, &tenant_id, t0 + Duration::hours(hour));
        let hits = AlertHits::of_records(alert, vec![(RecordId::parse("seed").unwrap(), t0)]);
        ids.push(store.record_hits(&hits, t0).await.unwrap().id);
    }

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, msp_id, ids, client, table) = (store.clone(), msp_id.clone(), ids.clone(), client.clone(), table.clone());
            tokio::spawn(async move {
                let mut written = 0;
                for n in 0..WRITES_EACH {
                    let id = &ids[(w * 7 + n * 5) % ids.len()];
                    match n % 4 {
                        0 => {
                            let alert = store.get_alert(&msp_id, id).await.unwrap().unwrap();
                            let record = (RecordId::parse(&format!("w{w}n{n}")).unwrap(), Utc::now());
                            store.record_hits(&AlertHits::of_records(alert, vec![record]), Utc::now()).await.unwrap();
                        }
                        3 if w == 0 => late_commit(&client, &table, &msp_id, id).await,
                        _ => {
                            triage(&store, &msp_id, id, n).await;
                        }
                    }
                    written += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                written
            })
        })
        .collect();

    let mut cursor: Option<String> = None;
    let mut entries = 0usize;
    let mut polls = 0usize;
    let mut seen: HashMap<AlertId, u64> = HashMap::new();
    let mut returned: HashMap<(AlertId, u64), usize> = HashMap::new();
    let mut writes_done_at = None;
    loop {
        let position = cursor.as_deref().map(|c| decode_cursor(c, CursorUse::Feed, &msp_id).unwrap()).unwrap_or_default();
        let page = tuning.alert_changes(&vigil::access::Access::operator(&msp_id), position, None, 4, OVERLAP).await.unwrap();
        polls += 1;
        let keys: Vec<&ChangeKey> = page.alerts.iter().map(|e| &e.key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "order kept within a page: {keys:?}");
        for entry in &page.alerts {
            let previous = seen.insert(entry.alert.id.clone(), entry.alert.version);
            assert!(previous.is_none_or(|v| v <= entry.alert.version), "an alert's versions never go back");
            *returned.entry((entry.alert.id.clone(), entry.alert.version)).or_default() += 1;
            entries += 1;
        }
        cursor = Some(page.next_cursor.clone());
        if let Some(done) = writes_done_at
            && Utc::now() > done + OVERLAP + Duration::seconds(1)
            && !page.more
        {
            break;
        }
        if writes_done_at.is_none() && writers.iter().all(tokio::task::JoinHandle::is_finished) {
            writes_done_at = Some(Utc::now());
        }
        if !page.more {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
    let mut total_writes = 0usize;
    for writer in writers {
        total_writes += writer.await.unwrap();
    }

    for id in &ids {
        let stored = store.get_alert(&msp_id, id).await.unwrap().unwrap();
        assert_eq!(seen.get(id), Some(&stored.version), "nothing skipped: the reader saw alert {id}'s last change");
    }
    assert!(returned.len() > ids.len(), "the reader followed changes as they happened, not only the end state");
    assert!(returned.len() <= ids.len() + total_writes, "every entry is a stored change");
    // A change comes again only in the polls made within the overlap after it (plus the one
    // that crosses it).
    let most = returned.values().max().copied().unwrap_or_default();
    let bound = 2 + usize::try_from(OVERLAP.num_milliseconds()).unwrap() / usize::try_from(POLL_EVERY.as_millis()).unwrap();
    assert!(most <= bound, "duplicates bounded: a change came {most} times (bound {bound}); {entries} entries in {polls} polls");
}
