//! Unusual-activity policies end to end on the local stack: an MSP's own policy learns each
//! user's hourly baseline in the state table and raises one alert when an hour's count jumps
//! above it. A week of history is seeded into the trigger store directly (learning it through
//! the simulator would take 168 polls); everything after that goes through the poller, the
//! queues and the evaluator as in production.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use vigil::ids::{MspId, PolicyId, TenantId};
use vigil::policy::trigger::{BASELINE_HOURS, BaselineState, TriggerState, hour_of};
use vigil::ports::{TriggerKey, TriggerStateStore};
use vigil_tests::{file_accessed_record, onboard, poll_and_settle, record_id, seed_trigger_state, start_stack, trigger_store};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const POLICY: &str = "custom.unusual-file-access";

fn policy() -> Value {
    json!({
        "id": POLICY,
        "name": "Unusual volume of file access",
        "description": "A user opened far more SharePoint files in one hour than their own 7-day baseline (at least 10).",
        "category": "InformationGovernance", "severity": "Medium",
        "activity": {"record_types": [6], "operations": ["FileAccessed"]},
        "conditions": {"field": "Workload", "op": "equals", "value": "SharePoint"},
        "trigger": {"type": "unusual_activity", "group_by": ["UserId"], "min_count": 10},
        "aggregation": {"window_minutes": 60, "group_by": ["UserId"]},
        "title": "Unusual file access by {UserId}"
    })
}

/// `n` records of `user` in the first minute of the hour `hour`, ids from `first_id`.
fn accesses(user: &str, hour: i64, first_id: usize, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let at = DateTime::from_timestamp(hour * 3600 + i64::try_from(i % 60).unwrap(), 0).unwrap();
            file_accessed_record(TENANT, &record_id(first_id + i), user, at)
        })
        .collect()
}

fn policy_alerts(alerts: &[Value]) -> Vec<&Value> {
    alerts.iter().filter(|a| a["policy_id"] == POLICY).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusual_activity_policy_is_silent_while_young_or_normal_and_raises_one_alert_when_an_hour_jumps() {
    let stack = start_stack().await;
    let msp = onboard(&stack, "acme", TENANT, 250).await;
    let created = msp.call(Method::POST, "/v1/policies", Some(policy())).await;
    assert_eq!(created.0, 201, "{created:?}");

    // The hour under test has begun at least two minutes ago, so its records are in the past.
    let hour = hour_of(Utc::now() - Duration::minutes(2));
    // alice: a week of 10 to 14 accesses an hour (μ = 12, σ ≈ 1.4: the margin is about 16).
    let mut hours = BTreeMap::new();
    for h in hour - BASELINE_HOURS..hour {
        hours.insert(h, 10 + u32::try_from(h.rem_euclid(5)).unwrap());
    }
    let baseline = BaselineState { first_hour: Some(hour - BASELINE_HOURS), hours, applied: Vec::new() };
    let alice = TriggerKey {
        msp_id: MspId::parse("acme").unwrap(),
        tenant_id: TenantId::parse(TENANT).unwrap(),
        policy_id: PolicyId::parse(POLICY).unwrap(),
        key: "alice@contoso.com".into(),
    };
    seed_trigger_state(&stack, &alice, &TriggerState::Baseline(baseline)).await;

    // A normal hour for alice (14: above min_count, within her baseline), and a burst from a
    // user first seen now (no baseline yet: the 7-day warm-up holds it back).
    let mut records = accesses("alice@contoso.com", hour, 0, 14);
    records.extend(accesses("young@contoso.com", hour, 1000, 40));
    stack.m365.add_records(TENANT, "Audit.SharePoint", records);
    poll_and_settle(&stack).await;
    let alerts = msp.alerts().await;
    assert!(policy_alerts(&alerts).is_empty(), "a normal hour and a young baseline stay silent: {alerts:#?}");

    // The same hour jumps: 30 more for alice, 44 in all, far above μ + 3σ.
    stack.m365.add_records(TENANT, "Audit.SharePoint", accesses("alice@contoso.com", hour, 100, 30));
    poll_and_settle(&stack).await;
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "one alert, and only from this policy: {alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["policy_id"], POLICY);
    assert_eq!(alert["group_key"], "alice@contoso.com");
    assert_eq!(alert["title"], "Unusual file access by alice@contoso.com");
    let hits = alert["hit_count"].as_u64().unwrap();
    assert!((1..=30).contains(&hits), "only the burst's records are hits: {alert}");
    let trigger = alert["facts"].as_array().unwrap().iter().find(|f| f["name"] == "Trigger").expect("a Trigger fact");
    assert!(trigger["value"].as_str().unwrap().contains("7-day baseline 12.0 per hour"), "{trigger}");
    assert_eq!(stack.connectwise.tickets().len(), 1, "one ticket");

    // The evaluator kept both baselines in the state table, every access counted once.
    let store = trigger_store(&stack);
    let Some((TriggerState::Baseline(alice_now), _)) = store.load_trigger(&alice).await.unwrap() else { panic!("alice's baseline") };
    assert_eq!(alice_now.hours.get(&hour), Some(&44));
    let young = TriggerKey { key: "young@contoso.com".into(), ..alice };
    let Some((TriggerState::Baseline(young), _)) = store.load_trigger(&young).await.unwrap() else { panic!("young's baseline") };
    assert_eq!((young.first_hour, young.hours.get(&hour)), (Some(hour), Some(&40)));
    stack.shutdown().await;
}
