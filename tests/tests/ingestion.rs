//! Audit ingestion at MSP scale, end to end on the local stack: many tenants × every audit
//! stream with paging, late and out-of-order content and duplicates; an outage backfilled from
//! the coverage ledger; revoked consent as a connection-problem alert that resolves itself;
//! webhook notifications authenticated per tenant; Microsoft Graph security alerts passed
//! through. Every test drives the real handlers through the simulators and moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration as StdDuration, Instant};
use vigil::aws::dynamodb::{DynamoConfigStore, DynamoIngestState};
use vigil::ids::{AuditStream, ContentType, MspId, TenantId};
use vigil::ports::{ConfigStore, IngestStateStore, StreamKey};
use vigil_local::LocalStack;
use vigil_simulators::m365::{CONTENT_TYPES, M365Failure, M365Operation};
use vigil_tests::{forwarding_record, in_current_window, onboard, onboard_tenant, poll_and_settle, start_stack};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

/// The `n`-th tenant of the scale test (distinct GUIDs).
fn tenant_guid(n: usize) -> String {
    format!("5e1f{n:04x}-7d41-4f0e-9a51-2b7d0c9e4a11")
}

fn wire_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A well-formed record of `content_type` that no built-in policy matches.
fn quiet_record(tenant_id: &str, content_type: &str, id: &str, at: DateTime<Utc>) -> Value {
    let (record_type, operation, workload) = match content_type {
        "Audit.AzureActiveDirectory" => (15, "UserLoggedIn", "AzureActiveDirectory"),
        "Audit.Exchange" => (1, "Set-MailboxRegionalConfiguration", "Exchange"),
        "Audit.SharePoint" => (6, "FileAccessed", "SharePoint"),
        "Audit.General" => (25, "MemberAdded", "MicrosoftTeams"),
        _ => (11, "DlpRuleMatch", "Exchange"),
    };
    json!({
        "CreationTime": wire_time(at), "Id": id, "Operation": operation, "OrganizationId": tenant_id, "RecordType": record_type,
        "ResultStatus": "Succeeded", "UserKey": "10032001A2B3C4D6", "UserType": 0, "Version": 1, "Workload": workload,
        "UserId": "bob@contoso.com", "ClientIP": "198.51.100.20"
    })
}

/// A deterministic Fisher–Yates shuffle (xorshift), so a failure can be reproduced.
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).unwrap();
        items.swap(i, j);
    }
    items
}

fn stream_key(tenant_id: &str, stream: AuditStream) -> StreamKey {
    StreamKey { msp_id: MspId::parse(MSP).unwrap(), tenant_id: TenantId::parse(tenant_id).unwrap(), stream }
}

fn ingest_state(stack: &LocalStack) -> DynamoIngestState {
    DynamoIngestState::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.provisioned.table_names["StateTable"].clone())
}

fn config_store(stack: &LocalStack) -> DynamoConfigStore {
    DynamoConfigStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.provisioned.table_names["ConfigTable"].clone())
}

/// Stores `auth_id`'s hash as the tenant's webhook AuthID (what the tick's registration does
/// with a random one).
async fn set_webhook_auth_id(stack: &LocalStack, tenant_id: &str, auth_id: &str) {
    let config = config_store(stack);
    let mut tenant = config.get_tenant(&MspId::parse(MSP).unwrap(), &TenantId::parse(tenant_id).unwrap()).await.unwrap().unwrap();
    tenant.webhook_auth_hash = Some(webhook_receiver::webhook_auth_hash(auth_id));
    config.put_tenant(&tenant).await.unwrap();
}

async fn assert_dead_letter_queues_empty(stack: &LocalStack) {
    for queue in ["EventsDeadLetterQueue", "TicketsDeadLetterQueue", "PollJobsDeadLetterQueue"] {
        let dead = stack.peek(queue).await.unwrap();
        assert!(dead.is_empty(), "{queue}: {dead:?}");
    }
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("{key} in {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tenants_times_five_content_types_with_paging_and_out_of_order_blobs_evaluate_every_record_exactly_once() {
    let started = Instant::now();
    let stack = start_stack().await;
    let tenants: Vec<String> = (0..50).map(tenant_guid).collect();
    let company = |t: usize| 1000 + i64::try_from(t).unwrap();
    let msp = onboard(&stack, MSP, &tenants[0], company(0)).await;
    for (t, tenant) in tenants.iter().enumerate().skip(1) {
        onboard_tenant(&stack, &msp, tenant, company(t)).await;
    }
    let onboarded = started.elapsed();
    // With two or three blobs per stream, a page of two makes every three-blob stream page.
    stack.m365.set_page_size(2);

    let now = Utc::now();
    // One 15-minute window for every forwarding record, fixed once so no tenant straddles two.
    let window = in_current_window(0);
    let forwarding_tenant = |t: usize| t % 5 == 0;
    let (mut slots, mut distinct, mut duplicates) = (0, 0, 0);
    let mut expected_hits: BTreeMap<String, usize> = BTreeMap::new();
    for (t, tenant) in tenants.iter().enumerate() {
        for (c, content_type) in CONTENT_TYPES.iter().enumerate() {
            // A forwarding tenant's rule changes are all in its first Exchange blob, so one events
            // message feeds each alert: moto's TransactWriteItems is not isolated, and concurrent
            // hits on one alert can be lost there (never on DynamoDB).
            let forwarding = forwarding_tenant(t) && *content_type == "Audit.Exchange";
            let blob_count = if forwarding { 3 } else { 2 + (t + c) % 2 };
            // contentCreated out of creation order: the second blob is the oldest, the last the newest.
            let minutes_ago = [6 + (t % 5) as i64, 14 + (t % 30) as i64, 2];
            let mut n: i64 = 0;
            let mut repeated: Option<Value> = None;
            for (b, minutes) in minutes_ago.iter().enumerate().take(blob_count) {
                let record_count = 3 + (t + 2 * c + b) % 3;
                let mut records: Vec<Value> = (0..record_count)
                    .map(|_| {
                        n += 1;
                        let id = format!("{t:08x}-{c:04x}-4000-8000-{n:012}");
                        if forwarding && b == 0 {
                            forwarding_record(tenant, &id, window + Duration::seconds(n))
                        } else {
                            quiet_record(tenant, content_type, &id, now - Duration::minutes(20) + Duration::seconds(n))
                        }
                    })
                    .collect();
                distinct += records.len();
                if forwarding && b == 0 {
                    expected_hits.insert(tenant.clone(), records.len());
                }
                if b + 2 == blob_count {
                    repeated = Some(records[record_count / 2].clone());
                }
                if b + 1 == blob_count {
                    // Microsoft delivers a record of the blob before again.
                    records.push(repeated.take().unwrap());
                    duplicates += 1;
                }
                slots += records.len();
                let created = now - Duration::minutes(*minutes) - Duration::milliseconds(i64::try_from(t * 7 + c).unwrap());
                let seed = u64::try_from(t * 100 + c * 10 + b).unwrap();
                stack.m365.add_records_at(tenant, content_type, created, shuffled(records, seed));
            }
        }
    }
    assert!(slots <= 3000, "{slots} records keep the test CI-sized");

    let polled = Instant::now();
    let report = poll_and_settle(&stack).await;
    let first_poll = polled.elapsed();
    assert_eq!(report.records_enqueued, distinct, "{report:?}");
    assert_eq!(report.records_skipped, duplicates, "{report:?}");
    assert_eq!((report.quarantined, report.streams_failed), (0, 0), "{report:?}");
    assert_eq!(report.streams_polled, tenants.len() * AuditStream::all().len(), "every (tenant, stream) job succeeded: {report:?}");
    let listings = stack.m365.request_log().into_iter().filter(|r| r.path.ends_with("/subscriptions/content")).collect::<Vec<_>>();
    assert!(listings.iter().any(|r| r.query_param("nextPage").is_some()), "listing paged");

    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), expected_hits.len(), "one alert per forwarding tenant: {alerts:#?}");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), expected_hits.len(), "{tickets:#?}");
    for (tenant, hits) in &expected_hits {
        let theirs: Vec<&Value> = alerts.iter().filter(|a| a["tenant_id"] == tenant.as_str()).collect();
        assert_eq!(theirs.len(), 1, "{tenant}: {theirs:#?}");
        assert_eq!(theirs[0]["policy_name"], "Mail forwarding to an external address");
        assert_eq!(theirs[0]["hit_count"], *hits, "{tenant}: every record counted exactly once");
        let t = tenants.iter().position(|x| x == tenant).unwrap();
        let filed: Vec<_> = tickets.iter().filter(|ticket| ticket.body["company"]["id"] == company(t)).collect();
        assert_eq!(filed.len(), 1, "{tenant}: exactly one ticket");
        assert_eq!(filed[0].body["externalXRef"], format!("vigil:{}", str_of(theirs[0], "id")));
    }
    assert_dead_letter_queues_empty(&stack).await;

    let fetched = stack.m365.blob_fetch_count();
    let notes =
        |tickets: Vec<vigil_simulators::connectwise::SimTicket>| tickets.into_iter().map(|t| (t.id, t.notes.len())).collect::<Vec<_>>();
    let notes_before = notes(tickets);
    let again = poll_and_settle(&stack).await;
    assert_eq!((again.records_enqueued, again.blobs_fetched, again.streams_failed), (0, 0, 0), "{again:?}");
    assert_eq!(stack.m365.blob_fetch_count(), fetched);
    assert_eq!(notes(stack.connectwise.tickets()), notes_before, "no new ticket and no new note");
    assert_eq!(msp.alerts().await.len(), expected_hits.len());
    eprintln!(
        "[timing] scale: {slots} records ({distinct} distinct) in {} blobs; onboarding {onboarded:?}, first poll {first_poll:?}, total {:?}",
        fetched,
        started.elapsed()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_three_hours_is_detected_and_backfilled() {
    let started = Instant::now();
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    poll_and_settle(&stack).await;
    // Polling has been down for three hours: the Exchange stream is covered only until then.
    let state = ingest_state(&stack);
    let key = stream_key(TENANT, ContentType::Exchange.into());
    let mut ledger = state.get_stream(&key).await.unwrap().expect("the first poll wrote the ledger");
    let outage_start = (Utc::now() - Duration::hours(3)).duration_trunc(Duration::seconds(1)).unwrap();
    ledger.covered_until = outage_start;
    state.put_stream(&key, &ledger).await.unwrap();
    // The notifications of that time were lost too: Vigil's webhook refuses them.
    set_webhook_auth_id(&stack, TENANT, "an-authid-microsoft-does-not-have").await;

    // Content Microsoft made available during the outage: rule changes in one window, and
    // later content. (The forwarding records share one blob: concurrent hits on one alert are
    // not isolated on moto.)
    let now = Utc::now();
    let window = (now - Duration::minutes(160)).duration_trunc(Duration::minutes(15)).unwrap();
    let early = (1..=5).map(|i| forwarding_record(TENANT, &format!("bbbbbbbb-0000-4000-8000-{i:012}"), window + Duration::seconds(i * 10)));
    let early_blob = stack.m365.add_records_at(TENANT, "Audit.Exchange", now - Duration::minutes(150), shuffled(early.collect(), 7));
    let late = vec![
        quiet_record(TENANT, "Audit.Exchange", "bbbbbbbb-0000-4000-8000-000000000007", now - Duration::minutes(64)),
        quiet_record(TENANT, "Audit.Exchange", "bbbbbbbb-0000-4000-8000-000000000006", now - Duration::minutes(65)),
    ];
    let late_blob = stack.m365.add_records_at(TENANT, "Audit.Exchange", now - Duration::minutes(60), late);

    // The first poll after the outage fails for every content type; SQS retries the jobs.
    stack.m365.fail_next(M365Operation::ListContent, M365Failure::ServerError, 5);
    let failures_before = stack.mappings["AuditPollerFunction"].failures.load(Ordering::Relaxed);
    let first = poll_and_settle(&stack).await;
    assert!(stack.mappings["AuditPollerFunction"].failures.load(Ordering::Relaxed) >= failures_before + 5, "the listings failed");
    let second = poll_and_settle(&stack).await;
    assert_eq!(first.records_enqueued + second.records_enqueued, 7, "{first:?} {second:?}");
    assert_eq!(second.records_enqueued, 0, "nothing twice");

    let deliveries = stack.m365.webhook_deliveries();
    for blob in [&early_blob, &late_blob] {
        let theirs: Vec<_> = deliveries.iter().filter(|d| d.content_ids.contains(blob)).collect();
        assert!(!theirs.is_empty() && theirs.iter().all(|d| d.status == Some(401)), "notified and refused: {theirs:?}");
    }
    let earliest_listed = stack
        .m365
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/subscriptions/content") && r.query_param("contentType").as_deref() == Some("Audit.Exchange"))
        .filter_map(|r| NaiveDateTime::parse_from_str(&r.query_param("startTime")?, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|t| t.and_utc())
        .min()
        .unwrap();
    assert!(earliest_listed <= outage_start, "the gap was listed from {earliest_listed}");

    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["hit_count"], 5);
    assert_eq!(str_of(&alerts[0], "window_start").parse::<DateTime<Utc>>().unwrap(), window, "the alert is in the outage's window");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(tickets[0].body["externalXRef"], format!("vigil:{}", str_of(&alerts[0], "id")));

    let ledger = state.get_stream(&key).await.unwrap().unwrap();
    assert!(ledger.covered_until > Utc::now() - Duration::minutes(1), "covered until {}", ledger.covered_until);
    assert_eq!((ledger.consecutive_failures, ledger.last_error.as_deref()), (0, None));
    assert!(ledger.lost.is_empty());
    assert_dead_letter_queues_empty(&stack).await;
    eprintln!("[timing] outage: {:?}", started.elapsed());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_raises_a_connection_problem_ticket_that_is_resolved_when_consent_returns() {
    let started = Instant::now();
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let healthy = poll_and_settle(&stack).await;
    let streams: BTreeSet<String> = AuditStream::all().into_iter().map(|s| s.as_str().to_lowercase()).collect();
    assert_eq!((healthy.streams_polled, healthy.streams_failed), (streams.len(), 0));

    stack.m365.revoke_consent(TENANT);
    // Tokens issued before the revocation stay valid until they expire.
    stack.m365.expire_tokens();
    poll_and_settle(&stack).await;
    let connection_problems =
        |alerts: Vec<Value>| -> Vec<Value> { alerts.into_iter().filter(|a| a["policy_name"] == "Tenant connection problem").collect() };
    // Every stream failed, but it is one episode of one tenant: one alert, one ticket.
    let problems = connection_problems(msp.alerts().await);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let problem = &problems[0];
    assert_eq!((problem["status"].as_str(), problem["severity"].as_str()), (Some("New"), Some("Medium")), "{problem:#?}");
    assert_eq!(problem["tenant_id"], TENANT);
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let ticket = &tickets[0];
    assert_eq!(ticket.body["externalXRef"], format!("vigil:{}", str_of(problem, "id")));
    assert_eq!(ticket.body["company"]["id"], 250);
    let (summary, description) = (str_of(&ticket.body, "summary"), str_of(&ticket.body, "initialDescription"));
    assert!(summary.contains("Tenant connection problem") && summary.contains("Contoso Ltd"), "{summary}");
    assert!(description.contains("Contoso Ltd") && description.contains("AADSTS700016"), "{description}");
    let ledgers = ingest_state(&stack);
    for stream in AuditStream::all() {
        let ledger = ledgers.get_stream(&stream_key(TENANT, stream)).await.unwrap().unwrap();
        assert!(
            ledger.problem_since.is_some() && ledger.last_error.as_deref().is_some_and(|e| e.contains("AADSTS700016")),
            "{stream}: {ledger:?}"
        );
    }

    // Still broken on the next tick: the same alert, no second ticket, no note.
    let still_broken = poll_and_settle(&stack).await;
    assert_eq!(still_broken.streams_failed, streams.len(), "{still_broken:?}");
    let still = connection_problems(msp.alerts().await);
    assert_eq!(still.len(), 1);
    assert_eq!((&still[0]["id"], &still[0]["hit_count"]), (&problem["id"], &problem["hit_count"]), "no new hit while the problem lasts");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1);
    assert!(tickets[0].notes.is_empty(), "{tickets:#?}");

    stack.m365.restore_consent(TENANT);
    let restored = poll_and_settle(&stack).await;
    assert_eq!((restored.connection_problems_resolved, restored.streams_failed), (streams.len(), 0), "{restored:?}");
    let resolved = connection_problems(msp.alerts().await);
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0]["id"], problem["id"]);
    assert_eq!(resolved[0]["status"], "Resolved", "{resolved:#?}");
    assert!(!resolved[0]["resolved_at"].is_null());
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "no new ticket on recovery");
    assert_eq!(tickets[0].notes.len(), 1, "{tickets:#?}");
    assert!(str_of(&tickets[0].notes[0], "text").contains("resolved"), "{:?}", tickets[0].notes);
    assert_eq!(poll_and_settle(&stack).await.connection_problems_resolved, 0);
    assert_eq!(stack.connectwise.tickets()[0].notes.len(), 1, "the resolution is noted once");
    assert_dead_letter_queues_empty(&stack).await;
    eprintln!("[timing] consent: {:?}", started.elapsed());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_webhook_notification_is_rejected_and_nothing_is_enqueued() {
    let started = Instant::now();
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    set_webhook_auth_id(&stack, TENANT, "right-secret").await;
    let records: Vec<Value> =
        (1..=3).map(|i| forwarding_record(TENANT, &format!("cccccccc-0000-4000-8000-{i:012}"), in_current_window(i))).collect();
    let content_id = stack.m365.add_records(TENANT, "Audit.Exchange", records);
    let notification = json!([stack.m365.notification_item(TENANT, &content_id).unwrap()]);
    let http = reqwest::Client::new();
    let post = |path: String, auth_id: Option<&'static str>| {
        let mut request = http.post(format!("{}{path}", stack.api_url)).header("content-type", "application/json; utf-8");
        if let Some(auth_id) = auth_id {
            request = request.header("Webhook-AuthID", auth_id);
        }
        request.body(notification.to_string()).send()
    };
    let ours = format!("/webhooks/o365/{MSP}/{TENANT}");
    let forged = [
        (ours.clone(), Some("wrong-secret")),
        (ours.clone(), None),
        (ours.clone(), Some("")),
        (format!("/webhooks/o365/{MSP}/6e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11"), Some("right-secret")),
        (format!("/webhooks/o365/other-msp/{TENANT}"), Some("right-secret")),
    ];
    for (i, (path, auth_id)) in forged.into_iter().enumerate() {
        let response = post(path, auth_id).await.unwrap();
        assert_eq!(response.status(), 401, "case {i}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "case {i}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 401, "case {i}");
    }
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert_eq!(stack.queue_depth("PollJobsQueue").await.unwrap(), 0);
    assert_eq!(stack.mappings["AuditPollerFunction"].messages.load(Ordering::Relaxed), 0, "no job was ever enqueued");
    assert_eq!(stack.m365.blob_fetch_count(), 0);

    let response = post(ours.clone(), Some("right-secret")).await.unwrap();
    assert_eq!(response.status(), 200);
    stack.wait_idle(StdDuration::from_secs(60)).await.unwrap();
    assert_eq!(stack.m365.blob_fetch_count(), 1);
    let announced = stack.stats.polling();
    assert_eq!((announced.records_enqueued, announced.blobs_fetched), (3, 1), "{announced:?}");
    // Microsoft retries or replays the notification: the blob is done, nothing happens.
    assert_eq!(post(ours, Some("right-secret")).await.unwrap().status(), 200);
    stack.wait_idle(StdDuration::from_secs(60)).await.unwrap();

    // The tick lists the same blob.
    let listed = poll_and_settle(&stack).await;
    assert_eq!(listed.records_enqueued, 0, "{listed:?}");
    assert_eq!(stack.m365.blob_fetch_count(), 1, "fetched once although announced twice and listed");
    assert!(stack.m365.request_log().iter().any(|r| r.path.ends_with("/subscriptions/content")), "the tick did list");
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["hit_count"], 3);
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1);
    assert!(tickets[0].notes.is_empty());
    assert_dead_letter_queues_empty(&stack).await;
    eprintln!("[timing] webhook: {:?}", started.elapsed());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_security_alerts_become_alerts_and_updates_become_notes() {
    let started = Instant::now();
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let created = (Utc::now() - Duration::minutes(10)).duration_trunc(Duration::seconds(1)).unwrap();
    let graph_alert = |updated: DateTime<Utc>, status: &str| {
        json!({
            "id": "da637551227677560813_-961444813", "title": "Suspicious inbox forwarding", "severity": "high", "status": status,
            "category": "Exfiltration", "serviceSource": "microsoftDefenderForOffice365", "detectionSource": "microsoftDefenderForOffice365",
            "createdDateTime": created.to_rfc3339(), "lastUpdateDateTime": updated.to_rfc3339(),
        })
    };
    stack.m365.add_graph_alert(TENANT, graph_alert(created + Duration::minutes(1), "new"));
    let first = poll_and_settle(&stack).await;
    assert_eq!(first.records_enqueued, 1, "{first:?}");
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["title"], "Suspicious inbox forwarding");
    assert_eq!(alerts[0]["severity"], "High");
    assert_eq!(alerts[0]["policy_name"], "Microsoft 365 Defender alert");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].body["priority"]["id"], 1, "High maps to the configured priority");
    assert!(str_of(&tickets[0].body, "summary").contains("Suspicious inbox forwarding"));

    assert_eq!(poll_and_settle(&stack).await.records_enqueued, 0, "the same update is not an event twice");
    stack.m365.add_graph_alert(TENANT, graph_alert(Utc::now() - Duration::seconds(2), "inProgress"));
    let update = poll_and_settle(&stack).await;
    assert_eq!(update.records_enqueued, 1, "{update:?}");
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1, "an update joins the same alert: {alerts:#?}");
    assert_eq!(alerts[0]["hit_count"], 2);
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "same ticket");
    assert_eq!(tickets[0].notes.len(), 1, "{tickets:#?}");
    assert_dead_letter_queues_empty(&stack).await;
    eprintln!("[timing] graph: {:?}", started.elapsed());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_claimed_by_a_run_that_crashed_is_enqueued_once_its_lease_has_passed() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let ids = ["dddddddd-0000-4000-8000-000000000001", "dddddddd-0000-4000-8000-000000000002"];
    let records =
        ids.iter().enumerate().map(|(i, id)| forwarding_record(TENANT, id, in_current_window(i64::try_from(i).unwrap()))).collect();
    stack.m365.add_records(TENANT, "Audit.Exchange", records);
    // A run claimed the first record and was killed before enqueueing it; its claim (five
    // minutes, PollSettings::default) has a few seconds left.
    let lease = Duration::minutes(5);
    let claimed_at = Utc::now() - lease + Duration::seconds(4);
    let (msp_id, tenant_id) = (MspId::parse(MSP).unwrap(), TenantId::parse(TENANT).unwrap());
    let record = vigil::ids::RecordId::parse(ids[0]).unwrap();
    let outcome = ingest_state(&stack).claim_record(&msp_id, &tenant_id, &record, claimed_at, lease).await.unwrap();
    assert_eq!(outcome, vigil::ports::ClaimOutcome::Claimed);

    let first = poll_and_settle(&stack).await;
    assert_eq!((first.records_enqueued, first.records_skipped), (1, 1), "the claimed record is in flight: {first:?}");
    tokio::time::sleep(StdDuration::from_secs(5)).await;
    let second = poll_and_settle(&stack).await;
    assert_eq!(first.records_enqueued + second.records_enqueued, 2, "the abandoned claim is taken over: {second:?}");
    let alerts = msp.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["hit_count"], 2);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_msp_polls_with_its_own_publisher_identifier() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let own = "9a1c8f7e-0000-4000-8000-00000000aa02";
    let (status, _, _) = msp.call(reqwest::Method::PUT, "/v1/msp", Some(serde_json::json!({"publisher_identifier": own}))).await;
    assert_eq!(status, 200);
    poll_and_settle(&stack).await;
    let management_calls: Vec<_> = stack.m365.request_log().into_iter().filter(|r| r.path.contains("/activity/feed/")).collect();
    assert!(!management_calls.is_empty());
    assert!(management_calls.iter().all(|r| r.query_param("PublisherIdentifier").as_deref() == Some(own)), "{management_calls:?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_tenant_is_retried_after_retry_after_without_delaying_the_others() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let second = "0c1d2e3f-4a5b-4c6d-8e7f-901234567890";
    vigil_tests::onboard_tenant(&stack, &msp, second, 251).await;
    poll_and_settle(&stack).await;
    for tenant in [TENANT, second] {
        stack.m365.add_records(tenant, "Audit.Exchange", vec![forwarding_record(tenant, &vigil_tests::record_id(1), in_current_window(1))]);
    }
    // The next listing answers 429 + Retry-After: 1 (for whichever job asks first).
    stack.m365.fail_next(M365Operation::ListContent, M365Failure::Throttle, 1);
    let report = poll_and_settle(&stack).await;
    assert!(stack.mappings["AuditPollerFunction"].failures.load(Ordering::Relaxed) >= 1, "one job was throttled and retried");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 2, "both tenants' records arrive: {report:?}");
    assert!(stack.peek("PollJobsDeadLetterQueue").await.unwrap().is_empty());
    stack.shutdown().await;
}
