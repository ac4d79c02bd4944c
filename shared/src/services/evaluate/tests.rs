//! The evaluator's specifications, on in-memory stores: aggregation, redelivery, triggers,
//! suppressions, shadow mode, failure isolation.

use super::*;
use crate::ids::{MspId, TenantId};
use crate::memory::*;
use serde_json::{Value, json};

struct Fixture {
    service: EvaluateService,
    alerts: Arc<MemoryAlertStore>,
    tickets: Arc<MemoryQueue>,
    policies: Arc<MemoryPolicyStore>,
    clock: Arc<crate::clock::ManualClock>,
}

async fn fixture_with(triggers: Arc<dyn TriggerStateStore>) -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let mut tenant =
        crate::contract::sample_tenant(&MspId::parse("acme").unwrap(), &TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap());
    tenant.domains = Vec::new();
    config.create_tenant(&tenant).await.unwrap();
    let alerts = Arc::new(MemoryAlertStore::default());
    let tickets = Arc::new(MemoryQueue::default());
    let policies = Arc::new(MemoryPolicyStore::default());
    let clock = Arc::new(crate::clock::ManualClock::at(
        chrono::DateTime::parse_from_rfc3339("2026-01-05T10:00:00Z").unwrap().with_timezone(&chrono::Utc),
    ));
    let service = EvaluateService {
        config,
        alerts: alerts.clone(),
        policies: policies.clone(),
        triggers,
        tickets: tickets.clone(),
        cache: PolicyCache::default(),
        clock: clock.clone(),
        partner_activity: Arc::new(MemoryConfigStore::default()),
    };
    Fixture { service, alerts, tickets, policies, clock }
}

async fn service() -> (EvaluateService, Arc<MemoryAlertStore>, Arc<MemoryQueue>) {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    (f.service, f.alerts, f.tickets)
}

fn forwarding(id: &str, minute: u32) -> Value {
    json!({"Id": id, "RecordType": 1, "CreationTime": format!("2026-01-05T09:{minute:02}:00"), "Operation": "New-InboxRule",
           "UserId": "alice@contoso.com", "Workload": "Exchange", "ResultStatus": "True",
           "Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}]})
}

fn message(records: Vec<Value>) -> String {
    json!({"msp_id": "acme", "tenant_id": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "stream": "Audit.Exchange", "content_id": "c1", "records": records}).to_string()
}

#[tokio::test]
async fn matches_in_one_window_become_one_alert_with_their_hit_count() {
    let (service, alerts, tickets) = service().await;
    let report = service.handle(&message(vec![forwarding("a", 31), forwarding("b", 40), forwarding("c", 44)])).await.unwrap();
    assert_eq!((report.hits, report.alerts.len()), (3, 1));
    let alert = alerts.get_alert(&MspId::parse("acme").unwrap(), &report.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.hit_count, 3);
    assert_eq!(tickets.drain().len(), 1);
}

#[tokio::test]
async fn a_redelivered_message_counts_nothing_twice_but_announces_again() {
    let (service, alerts, tickets) = service().await;
    let body = message(vec![forwarding("a", 31), forwarding("b", 32)]);
    let first = service.handle(&body).await.unwrap();
    service.handle(&body).await.unwrap();
    let alert = alerts.get_alert(&MspId::parse("acme").unwrap(), &first.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.hit_count, 2);
    assert_eq!(tickets.drain().len(), 2);
}

#[tokio::test]
async fn records_that_match_nothing_raise_nothing() {
    let (service, _, tickets) = service().await;
    let mut harmless = forwarding("a", 31);
    harmless["Parameters"] = json!([{"Name": "MoveToFolder", "Value": "Archive"}]);
    let report = service.handle(&message(vec![harmless])).await.unwrap();
    assert_eq!(report.hits, 0);
    assert!(tickets.drain().is_empty());
}

/// acme's suppression `s1` of `policy` under `conditions`, for every tenant and user, forever.
fn suppression(now: DateTime<Utc>, policy: &str, conditions: Value) -> Suppression {
    Suppression {
        id: "s1".into(),
        msp_id: MspId::parse("acme").unwrap(),
        tenant_id: None,
        user: None,
        policy_id: Some(crate::ids::PolicyId::parse(policy).unwrap()),
        conditions: Some(crate::policy::condition::Condition::from_json(&conditions).unwrap()),
        expires_at: None,
        reason: "migration".into(),
        author: "dana".into(),
        created_at: now,
    }
}

/// An events message as the poller sends Vigil's own events.
fn vigil_message(records: Vec<Value>) -> String {
    json!({"msp_id": "acme", "tenant_id": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "stream": "Audit.Exchange", "content_id": "vigil-connection", "records": records}).to_string()
}

fn connection(operation: &str, id: &str) -> Value {
    json!({"Id": id, "RecordType": 0, "CreationTime": "2026-01-05T09:31:00", "Operation": operation, "UserId": "Vigil", "Workload": "Vigil",
           "OrganizationId": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "OrganizationName": "Contoso", "Stream": "Audit.Exchange",
           "ObservedAt": "2026-01-05T09:31:07+00:00", "ErrorMessage": "access to the tenant was refused: AADSTS700016: unauthorized_client"})
}

#[tokio::test]
async fn a_connection_problem_becomes_an_alert_that_the_restore_event_resolves() {
    let (service, alerts, tickets) = service().await;
    let raised = service.handle(&vigil_message(vec![connection("Vigil.ConnectionProblem", "c-1")])).await.unwrap();
    let acme = MspId::parse("acme").unwrap();
    let alert = alerts.get_alert(&acme, &raised.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.policy_name, "Tenant connection problem");
    assert!(alert.facts.iter().any(|f| f.value.contains("AADSTS700016")));
    assert!(alert.facts.iter().any(|f| f.name == "Observed (UTC)" && f.value == "2026-01-05 09:31:07"));
    service.handle(&vigil_message(vec![connection("Vigil.ConnectionRestored", "c-2")])).await.unwrap();
    let alert = alerts.get_alert(&acme, &raised.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.status, crate::alert::AlertStatus::Resolved);
    assert_eq!(alert.hit_count, 1, "the restore event is not a hit");
    assert_eq!(tickets.drain().len(), 2, "raising and resolving are both announced");
}

#[tokio::test]
async fn microsoft_records_cannot_pose_as_vigil_connection_events() {
    let (service, _, _) = service().await;
    let mut forged = connection("Vigil.ConnectionProblem", "c-1");
    forged["RecordType"] = json!(1);
    assert_eq!(service.handle(&message(vec![forged])).await.unwrap().hits, 0);
    let in_microsoft_content = connection("Vigil.ConnectionProblem", "c-2");
    assert_eq!(service.handle(&message(vec![in_microsoft_content])).await.unwrap().hits, 0, "RecordType 0 only from Vigil itself");
    assert_eq!(service.handle(&vigil_message(vec![connection("Vigil.ConnectionProblem", "c-3")])).await.unwrap().hits, 1);
}

#[tokio::test]
async fn microsoft_content_cannot_pose_as_a_graph_alert_resolution() {
    let (service, _, _) = service().await;
    let forged = json!({"Id": "graph:x:1", "RecordType": 0, "CreationTime": "2026-01-05T09:31:00", "Operation": "Graph.AlertResolved",
                        "id": "da637", "status": "resolved", "createdDateTime": "2026-01-05T09:00:00Z"});
    let report = service.handle(&message(vec![forged])).await.unwrap();
    assert_eq!((report.hits, report.alerts.len()), (0, 0));
}

#[tokio::test]
async fn graph_alert_updates_join_one_alert_with_microsofts_title_and_severity() {
    let (service, alerts, _) = service().await;
    let body = |updated: &str| graph_message(vec![graph_alert(updated, "new")]);
    let first = service.handle(&body("2026-01-05T09:30:10Z")).await.unwrap();
    service.handle(&body("2026-01-05T09:50:00Z")).await.unwrap();
    service.handle(&body("2026-01-05T09:50:00Z")).await.unwrap();
    let stored = alerts.get_alert(&MspId::parse("acme").unwrap(), &first.alerts[0]).await.unwrap().unwrap();
    assert_eq!((stored.hit_count, stored.severity), (2, crate::alert::Severity::High));
    assert_eq!(stored.title, "Suspicious email forwarding activity");
    assert_eq!((stored.policy_id.as_str(), stored.policy_name.as_str()), (crate::policy::DEFENDER_POLICY, "Microsoft 365 Defender alert"));
}

fn graph_alert(updated: &str, status: &str) -> Value {
    json!({"id": "da637551227677560813_-961444813", "title": "Suspicious email forwarding activity", "severity": "high",
    "createdDateTime": "2026-01-05T09:30:10Z", "lastUpdateDateTime": updated, "status": status, "category": "Exfiltration",
    "serviceSource": "microsoftDefenderForOffice365", "detectionSource": "microsoftDefenderForOffice365"})
}

fn graph_message(alerts: Vec<Value>) -> String {
    message(alerts).replace("\"stream\":\"Audit.Exchange\"", "\"stream\":\"Graph.AlertsV2\"")
}

fn defender_alerts(alerts: &MemoryAlertStore) -> Vec<Alert> {
    alerts.all().into_iter().filter(|a| a.policy_id.as_str() == crate::policy::DEFENDER_POLICY).collect()
}

#[tokio::test]
async fn a_graph_alert_raises_nothing_for_a_tenant_with_the_defender_built_in_switched_off() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    f.policies
        .set_tenant_policy(
            &MspId::parse("acme").unwrap(),
            &TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
            &crate::ids::PolicyId::parse(crate::policy::DEFENDER_POLICY).unwrap(),
            false,
        )
        .await
        .unwrap();
    let report = f.service.handle(&graph_message(vec![graph_alert("2026-01-05T09:30:10Z", "new")])).await.unwrap();
    assert_eq!(report.hits, 0);
    assert!(defender_alerts(&f.alerts).is_empty());
    assert!(f.tickets.drain().is_empty());
}

#[tokio::test]
async fn a_suppression_on_a_graph_alert_field_holds_the_alert_back() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let now = f.clock.now();
    f.policies
        .put_suppression(&Suppression {
            reason: "handled in Defender by the customer".into(),
            ..suppression(
                now,
                crate::policy::DEFENDER_POLICY,
                json!({"field": "serviceSource", "op": "equals", "value": "microsoftDefenderForOffice365"}),
            )
        })
        .await
        .unwrap();
    let report = f.service.handle(&graph_message(vec![graph_alert("2026-01-05T09:30:10Z", "new")])).await.unwrap();
    assert_eq!((report.hits, report.suppressed), (0, 1));
    assert!(defender_alerts(&f.alerts).is_empty());
    assert!(f.tickets.drain().is_empty());
}

#[tokio::test]
async fn a_graph_alert_that_arrives_resolved_or_classified_false_or_benign_positive_opens_nothing() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let resolved = graph_alert("2026-01-05T09:40:00Z", "resolved");
    let mut false_positive = graph_alert("2026-01-05T09:41:00Z", "new");
    false_positive["classification"] = json!("falsePositive");
    let mut benign = graph_alert("2026-01-05T09:42:00Z", "inProgress");
    benign["classification"] = json!("informationalExpectedActivity");
    let report = f.service.handle(&graph_message(vec![resolved, false_positive, benign])).await.unwrap();
    assert_eq!(report.hits, 0);
    assert!(f.alerts.all().is_empty(), "{:#?}", f.alerts.all());
    assert!(f.tickets.drain().is_empty());
}

#[tokio::test]
async fn microsoft_resolving_a_graph_alert_later_resolves_vigils_alert_and_announces_it() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let raised = f.service.handle(&graph_message(vec![graph_alert("2026-01-05T09:30:10Z", "new")])).await.unwrap();
    assert_eq!(f.tickets.drain().len(), 1);
    // Resolved an hour later: the update is outside the first update's window, the alert's
    // creation time still names the same Vigil alert.
    let mut resolved = graph_alert("2026-01-05T10:45:00Z", "resolved");
    resolved["classification"] = json!("falsePositive");
    let report = f.service.handle(&graph_message(vec![resolved])).await.unwrap();
    assert_eq!(report.alerts, raised.alerts);
    let alert = f.alerts.get_alert(&MspId::parse("acme").unwrap(), &raised.alerts[0]).await.unwrap().unwrap();
    assert_eq!((alert.status, alert.hit_count), (crate::alert::AlertStatus::Resolved, 1), "the resolution is not a hit");
    assert_eq!(f.tickets.drain().len(), 1, "the resolution is announced, so the ticket gets its note");
}

#[tokio::test]
async fn a_shadow_copy_of_the_defender_built_in_raises_graph_alerts_that_are_never_announced() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let mut shadow = (**crate::policy::catalogue::builtin(crate::policy::DEFENDER_POLICY).unwrap()).clone();
    shadow.mode = PolicyMode::Shadow;
    let stored = crate::ports::StoredPolicy { definition: shadow, updated_at: f.clock.now(), updated_by: "dana".into() };
    f.policies.put_policy(&MspId::parse("acme").unwrap(), &stored).await.unwrap();
    let report = f.service.handle(&graph_message(vec![graph_alert("2026-01-05T09:30:10Z", "new")])).await.unwrap();
    assert_eq!(report.alerts.len(), 1);
    assert_eq!(defender_alerts(&f.alerts)[0].detail.mode, PolicyMode::Shadow);
    assert!(f.tickets.drain().is_empty());
}

fn failed_sign_in(id: &str, user: &str, second: u32) -> Value {
    json!({"Id": id, "RecordType": 15, "CreationTime": format!("2026-01-05T09:3{}:{:02}", second / 60, second % 60), "Operation": "UserLoginFailed",
           "UserId": user, "Workload": "AzureActiveDirectory", "ResultStatus": "Failed", "ClientIP": "198.51.100.23",
           "LogonError": "InvalidUserNameOrPassword", "ErrorNumber": "50126"})
}

fn sign_ins(user: &str, from: usize, to: usize) -> Vec<Value> {
    (from..to).map(|i| failed_sign_in(&format!("{user}-{i}"), user, u32::try_from(i).unwrap() * 10)).collect()
}

fn brute_force_alerts(alerts: &MemoryAlertStore) -> Vec<Alert> {
    alerts.all().into_iter().filter(|a| a.policy_id.as_str() == "builtin.brute-force").collect()
}

#[tokio::test]
async fn nine_failed_sign_ins_stay_below_the_threshold_and_the_tenth_raises_one_alert_with_all_ten() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let report = f.service.handle(&message(sign_ins("alice@contoso.com", 0, 9))).await.unwrap();
    assert_eq!((report.hits, report.below_trigger), (0, 18), "brute force and password spray both count them");
    assert!(brute_force_alerts(&f.alerts).is_empty());
    assert!(f.tickets.drain().is_empty());
    let report = f.service.handle(&message(sign_ins("alice@contoso.com", 9, 10))).await.unwrap();
    assert_eq!(report.hits, 1);
    let alerts = brute_force_alerts(&f.alerts);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].hit_count, 10, "the nine earlier failures join the alert");
    assert_eq!(alerts[0].detail.activity_counts.get("UserLoginFailed"), Some(&1), "details are known for this message's records");
    assert!(alerts[0].facts.iter().any(|f| f.name == "Trigger" && f.value.starts_with("10 matches within 10 minutes")));
    assert_eq!(f.tickets.drain().len(), 1);
    f.service.handle(&message(sign_ins("alice@contoso.com", 9, 12))).await.unwrap();
    assert_eq!(brute_force_alerts(&f.alerts)[0].hit_count, 12, "a redelivered record is not counted twice; later ones are");
}

#[tokio::test]
async fn failures_of_different_users_are_counted_apart() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let mut records = sign_ins("alice@contoso.com", 0, 5);
    records.extend(sign_ins("bob@contoso.com", 0, 5));
    f.service.handle(&message(records)).await.unwrap();
    assert!(brute_force_alerts(&f.alerts).is_empty());
}

/// A trigger store that counts its writes and can fail the next ones after the hits were
/// written (the crash window) or lose them to another writer.
#[derive(Default)]
struct FailingSave {
    inner: MemoryTriggerStore,
    failures_left: std::sync::atomic::AtomicUsize,
    conflicts_left: std::sync::atomic::AtomicUsize,
    saves: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl TriggerStateStore for FailingSave {
    async fn load_trigger(&self, key: &TriggerKey) -> Result<Option<(TriggerState, u64)>, StoreError> {
        self.inner.load_trigger(key).await
    }
    async fn save_trigger(&self, key: &TriggerKey, state: &TriggerState, version: u64, expires: DateTime<Utc>) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.saves.fetch_add(1, SeqCst);
        if self.failures_left.load(SeqCst) > 0 {
            self.failures_left.fetch_sub(1, SeqCst);
            return Err(StoreError::Unavailable("injected: the state write never happened".into()));
        }
        if self.conflicts_left.load(SeqCst) > 0 {
            self.conflicts_left.fetch_sub(1, SeqCst);
            // Another evaluator wrote this key in between.
            let (current, v) = self.inner.load_trigger(key).await?.map_or((state.clone(), 0), |x| x);
            self.inner.save_trigger(key, &current, v, expires).await?;
        }
        self.inner.save_trigger(key, state, version, expires).await
    }
}

#[tokio::test]
async fn a_crash_between_writing_hits_and_saving_trigger_state_loses_and_doubles_nothing() {
    let store = Arc::new(FailingSave::default());
    store.failures_left.store(1, std::sync::atomic::Ordering::SeqCst);
    let f = fixture_with(store.clone()).await;
    let body = message(sign_ins("alice@contoso.com", 0, 12));
    let error = f.service.handle(&body).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "the message is retried");
    assert_eq!(brute_force_alerts(&f.alerts)[0].hit_count, 12, "the hits were written before the state");
    f.service.handle(&body).await.unwrap();
    assert_eq!(brute_force_alerts(&f.alerts)[0].hit_count, 12, "the retry adds nothing twice");
    f.service.handle(&message(sign_ins("alice@contoso.com", 12, 13))).await.unwrap();
    assert_eq!(brute_force_alerts(&f.alerts)[0].hit_count, 13, "and the state carried on");
}

#[tokio::test]
async fn one_batch_combines_its_messages_per_trigger_key_into_one_state_write() {
    let store = Arc::new(FailingSave::default());
    let f = fixture_with(store.clone()).await;
    let bodies = vec![message(sign_ins("alice@contoso.com", 0, 5)), message(sign_ins("alice@contoso.com", 5, 10)), "not json".to_owned()];
    let results = f.service.handle_batch(&bodies).await;
    assert!(results[0].is_ok() && results[1].is_ok());
    assert_eq!(results[2].as_ref().unwrap_err().class(), ErrorClass::Invalid, "a poison message fails alone");
    let alerts = brute_force_alerts(&f.alerts);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].hit_count, 10, "five and five in one batch reach the threshold of ten");
    let writes = store.saves.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(writes, 2, "one write per key per batch: brute force (alice) and password spray (the IP), not one per message");
    assert_eq!(results[0].as_ref().unwrap().hits + results[1].as_ref().unwrap().hits, 10);
}

#[tokio::test]
async fn when_a_shared_trigger_update_fails_every_message_that_fed_it_is_retried_and_the_others_are_not() {
    let store = Arc::new(FailingSave::default());
    store.failures_left.store(1, std::sync::atomic::Ordering::SeqCst);
    let f = fixture_with(store).await;
    let bodies = vec![
        message(sign_ins("alice@contoso.com", 0, 5)),
        message(sign_ins("alice@contoso.com", 5, 6)),
        message(vec![forwarding("f", 31)]),
    ];
    let results = f.service.handle_batch(&bodies).await;
    assert_eq!(results[0].as_ref().unwrap_err().class(), ErrorClass::Transient);
    assert_eq!(results[1].as_ref().unwrap_err().class(), ErrorClass::Transient);
    assert_eq!(results[2].as_ref().unwrap().hits, 1, "a message that fed no failed key succeeds");
    let retried = f.service.handle_batch(&bodies[..2]).await;
    assert!(retried.iter().all(Result::is_ok));
}

#[tokio::test]
async fn a_lost_race_on_trigger_state_is_retried_from_the_stored_state() {
    let store = Arc::new(FailingSave::default());
    store.conflicts_left.store(2, std::sync::atomic::Ordering::SeqCst);
    let f = fixture_with(store).await;
    f.service.handle(&message(sign_ins("alice@contoso.com", 0, 10))).await.unwrap();
    assert_eq!(brute_force_alerts(&f.alerts)[0].hit_count, 10);
}

#[tokio::test]
async fn a_suppression_holds_back_matches_until_it_expires() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let now = f.clock.now();
    f.policies
        .put_suppression(&Suppression {
            user: Some("ALICE@contoso.com".into()),
            expires_at: Some(now + Duration::hours(1)),
            ..suppression(now, "builtin.forwarding-rule", json!({"field": "Alert.Severity", "op": "equals", "value": "Informational"}))
        })
        .await
        .unwrap();
    let report = f.service.handle(&message(vec![forwarding("a", 31)])).await.unwrap();
    assert_eq!((report.hits, report.suppressed), (0, 1));
    assert!(f.tickets.drain().is_empty());
    f.clock.advance(Duration::hours(1));
    let report = f.service.handle(&message(vec![forwarding("b", 32)])).await.unwrap();
    assert_eq!((report.hits, report.suppressed), (1, 0), "the rule expired");
}

#[tokio::test]
async fn a_shadow_policy_raises_alerts_that_are_never_announced() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let mut shadow = (**crate::policy::catalogue::builtin("builtin.forwarding-rule").unwrap()).clone();
    shadow.mode = PolicyMode::Shadow;
    let stored = crate::ports::StoredPolicy { definition: shadow, updated_at: f.clock.now(), updated_by: "dana".into() };
    f.policies.put_policy(&MspId::parse("acme").unwrap(), &stored).await.unwrap();
    let report = f.service.handle(&message(vec![forwarding("a", 31)])).await.unwrap();
    assert_eq!(report.alerts.len(), 1);
    let alert = f.alerts.get_alert(&MspId::parse("acme").unwrap(), &report.alerts[0]).await.unwrap().unwrap();
    assert_eq!((alert.detail.mode, alert.hit_count), (PolicyMode::Shadow, 1));
    assert!(f.tickets.drain().is_empty(), "shadow alerts are never announced for ticketing");
}

#[tokio::test]
async fn a_policy_switched_off_for_the_tenant_stops_at_the_next_message() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    assert_eq!(f.service.handle(&message(vec![forwarding("a", 31)])).await.unwrap().hits, 1);
    f.policies
        .set_tenant_policy(
            &MspId::parse("acme").unwrap(),
            &TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
            &crate::ids::PolicyId::parse("builtin.forwarding-rule").unwrap(),
            false,
        )
        .await
        .unwrap();
    assert_eq!(f.service.handle(&message(vec![forwarding("b", 32)])).await.unwrap().hits, 0, "the cache saw the revision move");
}

#[tokio::test]
async fn malformed_messages_are_invalid_and_unknown_tenants_permanent() {
    let (service, _, _) = service().await;
    assert_eq!(service.handle("not json").await.unwrap_err().class(), ErrorClass::Invalid);
    let unknown = message(vec![]).replace("5e1f2c8a", "6e1f2c8a");
    assert_eq!(service.handle(&unknown).await.unwrap_err().class(), ErrorClass::Permanent);
}

/// An alert store that refuses to write the alerts of one group key (as DynamoDB refuses an
/// item it cannot take) until told otherwise.
struct RefusesOneAlert {
    inner: Arc<MemoryAlertStore>,
    refused_group_key: String,
    refusing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl AlertStore for RefusesOneAlert {
    async fn record_hits(&self, hits: &AlertHits, now: DateTime<Utc>) -> Result<Alert, StoreError> {
        if hits.alert.group_key == self.refused_group_key && self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Rejected("injected: ValidationException: Item size has exceeded the maximum allowed size".into()));
        }
        self.inner.record_hits(hits, now).await
    }
    async fn get_alert(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Option<Alert>, StoreError> {
        self.inner.get_alert(msp_id, alert_id).await
    }
    async fn resolve_alert(&self, msp_id: &MspId, alert_id: &AlertId, at: DateTime<Utc>) -> Result<Option<Alert>, StoreError> {
        self.inner.resolve_alert(msp_id, alert_id, at).await
    }
    async fn update_alert(&self, alert: &Alert) -> Result<(), StoreError> {
        self.inner.update_alert(alert).await
    }
    async fn list_alerts(&self, msp_id: &MspId, limit: usize, after: Option<&str>) -> Result<crate::ports::AlertPage, StoreError> {
        self.inner.list_alerts(msp_id, limit, after).await
    }
    async fn get_delivery(
        &self,
        msp_id: &MspId,
        alert_id: &AlertId,
        destination: &crate::ids::DestinationId,
    ) -> Result<Option<crate::ticket::Delivery>, StoreError> {
        self.inner.get_delivery(msp_id, alert_id, destination).await
    }
    async fn list_deliveries(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<crate::ticket::Delivery>, StoreError> {
        self.inner.list_deliveries(msp_id, alert_id).await
    }
    async fn list_open_tickets(
        &self,
        msp_id: &MspId,
        destination: &crate::ids::DestinationId,
    ) -> Result<Vec<(AlertId, crate::ticket::TicketRef)>, StoreError> {
        self.inner.list_open_tickets(msp_id, destination).await
    }
    async fn list_held_deliveries(&self, msp_id: &MspId, destination: &crate::ids::DestinationId) -> Result<Vec<AlertId>, StoreError> {
        self.inner.list_held_deliveries(msp_id, destination).await
    }
    async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError> {
        self.inner.take_daily_ticket(alert, day, limit).await
    }
    async fn take_daily_message(
        &self,
        alert: &Alert,
        destination: &crate::ids::DestinationId,
        day: chrono::NaiveDate,
        limit: u32,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        self.inner.take_daily_message(alert, destination, day, limit, message_id).await
    }
    async fn save_delivery(&self, delivery: &crate::ticket::Delivery) -> Result<(), StoreError> {
        self.inner.save_delivery(delivery).await
    }
}

#[tokio::test]
async fn an_alert_that_cannot_be_written_keeps_neither_other_users_alerts_nor_its_own_hits_from_landing() {
    let mut f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let refusing = Arc::new(RefusesOneAlert {
        inner: f.alerts.clone(),
        refused_group_key: "alice@contoso.com".into(),
        refusing: std::sync::atomic::AtomicBool::new(true),
    });
    f.service.alerts = refusing.clone();
    let mut bob = forwarding("bob-1", 33);
    bob["UserId"] = json!("bob@contoso.com");
    let body = message(vec![forwarding("alice-1", 31), bob]);

    let first = f.service.handle(&body).await;

    assert!(first.is_err(), "the message is retried while alice's alert cannot be written");
    let acme = MspId::parse("acme").unwrap();
    let stored = f.alerts.list_alerts(&acme, 10, None).await.unwrap().alerts;
    assert_eq!(stored.iter().map(|a| (a.group_key.as_str(), a.hit_count)).collect::<Vec<_>>(), vec![("bob@contoso.com", 1)]);
    assert_eq!(f.tickets.drain().len(), 1, "bob's alert was announced");

    refusing.refusing.store(false, std::sync::atomic::Ordering::SeqCst);
    f.service.handle(&body).await.unwrap();
    let mut stored: Vec<(String, u64)> =
        f.alerts.list_alerts(&acme, 10, None).await.unwrap().alerts.into_iter().map(|a| (a.group_key, a.hit_count)).collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![("alice@contoso.com".into(), 1), ("bob@contoso.com".into(), 1)],
        "alice's hit landed, bob's was not counted twice"
    );
}

#[tokio::test]
async fn an_alert_from_backfilled_records_older_than_the_msps_limit_is_raised_without_a_ticket() {
    let f = fixture_with(Arc::new(MemoryTriggerStore::default())).await;
    let acme = MspId::parse("acme").unwrap();
    let mut msp = crate::tenant::Msp::new(acme.clone(), "Acme".into(), f.clock.now());
    msp.backfill_ticket_max_age_hours = Some(24);
    f.service.config.put_msp(&msp).await.unwrap();
    let three_days_ago = |id: &str, minute: u32| {
        let mut record = forwarding(id, minute);
        record["CreationTime"] = json!(format!("2026-01-02T09:{minute:02}:00"));
        record
    };
    let old = f.service.handle(&message(vec![three_days_ago("old-1", 31), three_days_ago("old-2", 33)])).await.unwrap();
    let alert = f.alerts.get_alert(&acme, &old.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.hit_count, 2, "backfilled records still count");
    assert!(f.tickets.drain().is_empty(), "but the alert gets no ticket");

    f.service.handle(&message(vec![forwarding("fresh", 31)])).await.unwrap();
    assert_eq!(f.tickets.drain().len(), 1, "a recent alert is announced as always");

    let connection = json!({"Id": "vigil-connection:x", "RecordType": 0, "CreationTime": "2026-01-02T09:30:00",
        "Operation": "Vigil.ConnectionProblem", "UserId": "Vigil", "Workload": "Vigil", "OrganizationName": "Contoso"});
    f.service.handle(&vigil_message(vec![connection])).await.unwrap();
    assert_eq!(f.tickets.drain().len(), 1, "Vigil's own alerts are always announced, however old their episode");
}

#[tokio::test]
async fn without_a_backfill_limit_an_old_alert_is_announced() {
    let (service, _, tickets) = service().await;
    let mut record = forwarding("old", 31);
    record["CreationTime"] = json!("2026-01-02T09:31:00");
    service.handle(&message(vec![record])).await.unwrap();
    assert_eq!(tickets.drain().len(), 1);
}

/// An admin-relationship finding event about customer `tenant` (not a Vigil tenant), raised or
/// cleared, as the partner-tenant read makes it.
fn finding_message(tenant: &str, raised: bool) -> String {
    use crate::relationships::findings::{FindingKind, Transition, finding_event};
    let customer = TenantId::parse(tenant).unwrap();
    let relationship = crate::contract::sample_relationship("rel-9", &customer);
    let since = chrono::DateTime::parse_from_rfc3339("2026-01-05T06:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let transition = Transition { relationship: &relationship, kind: FindingKind::UnusedOver90Days, since, raised };
    let record = finding_event(&transition, &crate::relationships::PartnerActivity::default(), since);
    json!({"msp_id": "acme", "tenant_id": tenant, "stream": "Audit.AzureActiveDirectory",
           "content_id": crate::messages::ADMIN_RELATIONSHIP_EVENTS, "records": [record]})
    .to_string()
}

#[tokio::test]
async fn an_admin_relationship_finding_about_a_customer_vigil_does_not_monitor_raises_an_alert_about_the_msps_access_and_clears_it() {
    let (service, alerts, tickets) = service().await;
    let stranger = "0b0b0b0b-1111-4222-8333-444444444444";
    let raised = service.handle(&finding_message(stranger, true)).await.unwrap();
    assert_eq!(raised.alerts.len(), 1);
    let alert = alerts.get_alert(&MspId::parse("acme").unwrap(), &raised.alerts[0]).await.unwrap().unwrap();
    assert_eq!((alert.policy_id.as_str(), alert.tenant_name.as_str()), ("builtin.gdap-unused-90-days", "Contoso"));
    assert!(alert.detail.about_msp_access, "dispatch files it as the MSP's own");
    assert_eq!(alert.title, "Contoso (rel-9 access)");
    assert_eq!(tickets.drain().len(), 1);
    let cleared = service.handle(&finding_message(stranger, false)).await.unwrap();
    assert_eq!(cleared.alerts, raised.alerts, "the same alert");
    let alert = alerts.get_alert(&MspId::parse("acme").unwrap(), &raised.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.status, crate::alert::AlertStatus::Resolved);
}

#[tokio::test]
async fn only_admin_relationship_findings_may_name_a_tenant_that_is_not_registered() {
    let (service, _, tickets) = service().await;
    let stranger = "0b0b0b0b-1111-4222-8333-444444444444";
    let posing = finding_message(stranger, true).replace(crate::messages::ADMIN_RELATIONSHIP_EVENTS, "vigil-connection");
    assert!(matches!(service.handle(&posing).await, Err(EvaluateError::UnknownTenant { .. })));
    let content = message(vec![forwarding("a", 31)]).replace("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", stranger);
    assert!(matches!(service.handle(&content).await, Err(EvaluateError::UnknownTenant { .. })));
    assert!(tickets.drain().is_empty());
}

#[tokio::test]
async fn a_partner_technicians_audit_record_is_noted_as_activity_on_the_msps_access_to_the_tenant() {
    let (service, _, _) = service().await;
    let (acme, contoso) = (MspId::parse("acme").unwrap(), TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap());
    let mut user = forwarding("u1", 45);
    user["UserType"] = json!(0);
    user["Parameters"] = json!([{"Name": "Comment", "Value": "{\"UserType\":9}"}]);
    service.handle(&message(vec![user])).await.unwrap();
    assert!(service.partner_activity.partner_actions(&acme).await.unwrap().is_empty(), "UserType 9 inside a string is not a technician");
    let mut technician = forwarding("t1", 31);
    technician["UserType"] = json!(9);
    let mut later_technician = forwarding("t2", 33);
    later_technician["UserType"] = json!("9");
    service.handle(&message(vec![technician, later_technician, forwarding("u2", 50)])).await.unwrap();
    let noted = service.partner_activity.partner_actions(&acme).await.unwrap();
    let expected = chrono::DateTime::parse_from_rfc3339("2026-01-05T09:33:00Z").unwrap().with_timezone(&chrono::Utc);
    assert_eq!(noted.get(&contoso), Some(&expected), "the latest technician record, not a later user's");
}

#[tokio::test]
async fn every_admin_relationship_finding_raises_one_alert_of_its_own_built_in_once_and_its_clearing_resolves_it() {
    use crate::relationships::findings::{FindingKind, Transition, finding_event};
    let (service, alerts, tickets) = service().await;
    let acme = MspId::parse("acme").unwrap();
    let customer = TenantId::parse("0b0b0b0b-1111-4222-8333-444444444444").unwrap();
    let relationship = crate::contract::sample_relationship("rel-all", &customer);
    let since = chrono::DateTime::parse_from_rfc3339("2026-01-05T06:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let body = |kind: FindingKind, raised: bool| {
        let record = finding_event(&Transition { relationship: &relationship, kind, since, raised }, &Default::default(), since);
        json!({"msp_id": "acme", "tenant_id": customer.as_str(), "stream": "Audit.AzureActiveDirectory",
               "content_id": crate::messages::ADMIN_RELATIONSHIP_EVENTS, "records": [record]})
        .to_string()
    };
    let mut policies = std::collections::BTreeSet::new();
    for kind in FindingKind::ALL {
        let raised = service.handle(&body(kind, true)).await.unwrap();
        assert_eq!(raised.alerts.len(), 1, "{kind:?}");
        service.handle(&body(kind, true)).await.unwrap();
        let alert = alerts.get_alert(&acme, &raised.alerts[0]).await.unwrap().unwrap();
        assert_eq!(alert.hit_count, 1, "{kind:?}: the same event again is no new hit");
        assert_eq!(alert.category, crate::alert::Category::Permissions);
        policies.insert(alert.policy_id.to_string());
        let cleared = service.handle(&body(kind, false)).await.unwrap();
        assert_eq!(cleared.alerts, raised.alerts, "{kind:?}");
        assert_eq!(alerts.get_alert(&acme, &raised.alerts[0]).await.unwrap().unwrap().status, crate::alert::AlertStatus::Resolved);
    }
    assert_eq!(policies.len(), FindingKind::ALL.len(), "one built-in per finding: {policies:?}");
    assert_eq!(tickets.drain().len(), 3 * FindingKind::ALL.len(), "raised, redelivered, resolved: each announced");
}
