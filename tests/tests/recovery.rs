//! Recovery end to end on the local stack (issue 14): a tenant unreachable for 30 hours is
//! backfilled in windows Microsoft accepts (< 24 h) with every record of the outage exactly one
//! hit; a new tenant's first poll looks back as far as the MSP chose (up to 7 days). The
//! Microsoft 365 simulator refuses windows of 24 h or more and starts over 7 days back, as the
//! live service does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, Utc};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use vigil::aws::dynamodb::{DynamoConfigStore, DynamoIngestState};
use vigil::ids::{AuditStream, ContentType, MspId, TenantId};
use vigil::ports::{ConfigStore, IngestStateStore, StreamKey};
use vigil_local::LocalStack;
use vigil_simulators::m365::{M365Failure, M365Operation};
use vigil_tests::{forwarding_record, onboard, poll_and_settle, start_stack, start_stack_with_template_timeouts};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

fn ingest_state(stack: &LocalStack) -> DynamoIngestState {
    DynamoIngestState::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.provisioned.table_names["StateTable"].clone())
}

/// Makes Vigil's webhook refuse Microsoft's notifications (a wrong AuthID hash), so the
/// outage's content can only arrive by polling.
async fn refuse_notifications(stack: &LocalStack) {
    let config = DynamoConfigStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.provisioned.table_names["ConfigTable"].clone());
    let mut tenant = config.get_tenant(&MspId::parse(MSP).unwrap(), &TenantId::parse(TENANT).unwrap()).await.unwrap().unwrap();
    tenant.webhook_auth_hash = Some(webhook_receiver::webhook_auth_hash("an-authid-microsoft-does-not-have"));
    config.put_tenant(&tenant).await.unwrap();
}

fn exchange_key() -> StreamKey {
    StreamKey {
        msp_id: MspId::parse(MSP).unwrap(),
        tenant_id: TenantId::parse(TENANT).unwrap(),
        stream: AuditStream::from(ContentType::Exchange),
    }
}

/// A well-formed Exchange record no built-in policy matches.
fn quiet_record(id: &str, at: DateTime<Utc>) -> Value {
    json!({
        "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "Set-MailboxRegionalConfiguration",
        "OrganizationId": TENANT, "RecordType": 1, "ResultStatus": "Succeeded", "UserKey": "10032001A2B3C4D6", "UserType": 0,
        "Version": 1, "Workload": "Exchange", "UserId": "bob@contoso.com", "ClientIP": "198.51.100.20"
    })
}

fn id(n: usize) -> String {
    format!("cccccccc-0000-4000-8000-{n:012}")
}

/// Every Exchange listing window Vigil asked the simulator for.
fn exchange_windows(stack: &LocalStack) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let at = |raw: Option<String>| NaiveDateTime::parse_from_str(&raw?, "%Y-%m-%dT%H:%M:%S").ok().map(|t| t.and_utc());
    stack
        .m365
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/subscriptions/content") && r.query_param("contentType").as_deref() == Some("Audit.Exchange"))
        .filter_map(|r| Some((at(r.query_param("startTime"))?, at(r.query_param("endTime"))?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_unreachable_for_30_hours_is_backfilled_with_every_record_one_hit() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    poll_and_settle(&stack).await;
    // Vigil has not reached the tenant for 30 hours: the Exchange stream is covered until then.
    let state = ingest_state(&stack);
    let mut ledger = state.get_stream(&exchange_key()).await.unwrap().expect("the first poll wrote the ledger");
    let outage_start = (Utc::now() - Duration::hours(30)).duration_trunc(Duration::seconds(1)).unwrap();
    ledger.covered_until = outage_start;
    state.put_stream(&exchange_key(), &ledger).await.unwrap();
    // The notifications of that time were lost too.
    refuse_notifications(&stack).await;

    // What Microsoft made available meanwhile: forwarding rules 29 hours ago (one alert), and
    // quiet records throughout, one of them delivered twice in two blobs.
    let now = Utc::now();
    let window = (now - Duration::hours(29)).duration_trunc(Duration::minutes(15)).unwrap();
    let rules: Vec<Value> =
        (1..=3).map(|i| forwarding_record(TENANT, &id(i), window + Duration::seconds(i64::try_from(i).unwrap() * 10))).collect();
    stack.m365.add_records_at(TENANT, "Audit.Exchange", now - Duration::hours(29) + Duration::minutes(5), rules);
    stack.m365.add_records_at(TENANT, "Audit.Exchange", now - Duration::hours(25), vec![quiet_record(&id(4), now - Duration::hours(25))]);
    stack.m365.add_records_at(
        TENANT,
        "Audit.Exchange",
        now - Duration::hours(20),
        vec![quiet_record(&id(5), now - Duration::hours(20)), quiet_record(&id(6), now - Duration::hours(20))],
    );
    stack.m365.add_records_at(
        TENANT,
        "Audit.Exchange",
        now - Duration::hours(2),
        vec![quiet_record(&id(6), now - Duration::hours(20)), quiet_record(&id(7), now - Duration::hours(2))],
    );

    // The first polls after the outage still fail; SQS retries the jobs.
    stack.m365.fail_next(M365Operation::ListContent, M365Failure::ServerError, 3);
    let failures_before = stack.mappings["AuditPollerFunction"].failures.load(Ordering::Relaxed);
    let first = poll_and_settle(&stack).await;
    let second = poll_and_settle(&stack).await;
    assert!(stack.mappings["AuditPollerFunction"].failures.load(Ordering::Relaxed) >= failures_before + 3, "the listings failed");
    assert_eq!(first.records_enqueued + second.records_enqueued, 7, "every record once: {first:?} {second:?}");
    let third = poll_and_settle(&stack).await;
    assert_eq!(third.records_enqueued, 0, "nothing twice");

    let windows = exchange_windows(&stack);
    assert!(windows.iter().all(|(start, end)| *end - *start < Duration::hours(24)), "every window < 24 h: {windows:?}");
    assert!(windows.iter().any(|(start, _)| *start <= outage_start), "the gap was listed from its start");

    // Refused notifications make Microsoft disable the webhook: Vigil may say so in its own
    // alert (which the next tick's re-registration resolves); the customer's alert is one.
    let alerts = msp.alerts().await;
    let (own, customer): (Vec<&Value>, Vec<&Value>) =
        alerts.iter().partition(|a| a["policy_id"].as_str().is_some_and(|p| p.starts_with("builtin.selfmon-")));
    assert_eq!(customer.len(), 1, "{alerts:#?}");
    assert_eq!(customer[0]["hit_count"], 3, "each rule change is one hit");
    assert!(own.iter().all(|a| a["policy_id"] == "builtin.selfmon-webhook-disabled"), "{own:#?}");
    let forwarding_tickets =
        stack.connectwise.tickets().into_iter().filter(|t| !t.body["summary"].as_str().unwrap_or("").contains("webhook"));
    assert_eq!(forwarding_tickets.count(), 1);
    let ledger = state.get_stream(&exchange_key()).await.unwrap().unwrap();
    assert!(ledger.covered_until > Utc::now() - Duration::minutes(1), "covered until {}", ledger.covered_until);
    assert!(ledger.lost.is_empty());
    for queue in ["EventsDeadLetterQueue", "PollJobsDeadLetterQueue"] {
        assert!(stack.peek(queue).await.unwrap().is_empty(), "{queue}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tenant_looks_back_seven_days_when_the_msp_chose_it() {
    // A week of six streams on moto takes longer than the tests' 8 s, and a killed first
    // attempt would split the report this test reads.
    let stack = start_stack_with_template_timeouts().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let (status, _, body) = msp.call(reqwest::Method::PUT, "/v1/msp", Some(json!({"first_lookback_hours": 168}))).await;
    assert_eq!((status, body["first_lookback_hours"].clone()), (200, json!(168)));
    let now = Utc::now();
    for (n, age) in [(1, Duration::days(7) - Duration::hours(2)), (2, Duration::days(3)), (3, Duration::hours(30)), (4, Duration::hours(1))]
    {
        stack.m365.add_records_at(TENANT, "Audit.Exchange", now - age, vec![quiet_record(&id(n), now - age)]);
    }
    let first = poll_and_settle(&stack).await;
    assert_eq!(first.records_enqueued, 4, "a week of content: {first:?}");
    assert_eq!(poll_and_settle(&stack).await.records_enqueued, 0, "nothing twice");
    let windows = exchange_windows(&stack);
    assert!(windows.iter().all(|(start, end)| *end - *start < Duration::hours(24)), "{windows:?}");
    assert!(windows.iter().all(|(start, _)| *start >= now - Duration::days(7)), "never before Microsoft's 7 days: {windows:?}");
    assert!(windows.len() >= 8, "seven days in windows under a day");
    let ledger = ingest_state(&stack).get_stream(&exchange_key()).await.unwrap().unwrap();
    assert!(ledger.lost.is_empty(), "a first look-back loses nothing");
    assert!(stack.peek("PollJobsDeadLetterQueue").await.unwrap().is_empty());
    stack.shutdown().await;
}
