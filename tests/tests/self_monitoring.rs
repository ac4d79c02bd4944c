//! Self-monitoring alerts open and close on the local stack (moto, the Microsoft 365 and
//! ConnectWise simulators, every handler): a webhook Microsoft disabled and audit content that
//! aged past Microsoft's 7 days unfetched each open one alert with one ticket on the MSP's own
//! company; fixing the condition (the next tick registers the webhook again; a day of polling
//! without a new loss) resolves the alert and closes its ticket. Coverage is read through
//! `GET /v1/coverage`. ConnectWise refusing Vigil's credentials for several tickets opens one
//! alert about the MSP itself, which its next answer resolves. (A subscription a tenant admin keeps disabled fails its listing, whose
//! job then waits 5 minutes before its retry: that condition is proved by the poller's unit
//! tests on the in-memory adapters and the simulator's own tests.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use vigil::aws::ingest_state::DynamoIngestState;
use vigil::ids::{AuditStream, ContentType, MspId, TenantId};
use vigil::ports::{IngestStateStore, StreamKey};
use vigil_local::stack::LocalStack;
use vigil_tests::{MspClient, forwarding_record, onboard, poll_and_settle, record_id, start_stack};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

fn ingest_state(stack: &LocalStack) -> DynamoIngestState {
    DynamoIngestState::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.provisioned.table_names["StateTable"].clone())
}

fn key(content_type: ContentType) -> StreamKey {
    StreamKey { msp_id: MspId::parse(MSP).unwrap(), tenant_id: TenantId::parse(TENANT).unwrap(), stream: AuditStream::from(content_type) }
}

/// Gives the ConnectWise destination the MSP's own company, and returns its id.
async fn own_company(stack: &LocalStack, msp: &MspClient) -> i64 {
    let own = stack.connectwise.add_company("AcmeMSP", "Acme MSP (internal)");
    let mut destination = msp.call(reqwest::Method::GET, "/v1/destinations/connectwise", None).await.2;
    destination["routing"]["own_company"] = json!(own.to_string());
    let replace = json!({"name": destination["name"], "enabled": destination["enabled"], "settings": destination["settings"],
                         "routing": destination["routing"], "requests_per_hour": destination["requests_per_hour"]});
    let put = msp.call(reqwest::Method::PUT, "/v1/destinations/connectwise", Some(replace)).await;
    assert!((200..300).contains(&put.0), "{put:?}");
    own
}

async fn alerts_of(msp: &MspClient, policy: &str) -> Vec<Value> {
    msp.alerts().await.into_iter().filter(|a| a["policy_id"] == policy).collect()
}

/// ConnectWise tickets whose summary contains `text`: (company id, closed).
fn tickets_about(stack: &LocalStack, text: &str) -> Vec<(i64, bool)> {
    stack
        .connectwise
        .tickets()
        .into_iter()
        .filter(|t| t.body["summary"].as_str().is_some_and(|s| s.contains(text)))
        .map(|t| (t.body["company"]["id"].as_i64().unwrap_or_default(), t.body["closedFlag"] == true))
        .collect()
}

/// An hour passes for the subscription check of `content_type`'s stream.
async fn subscription_check_due(stack: &LocalStack, content_type: ContentType) {
    let state = ingest_state(stack);
    let mut ledger = state.get_stream(&key(content_type)).await.unwrap().unwrap();
    ledger.monitoring.subscription_checked_at = Some(Utc::now() - Duration::hours(2));
    state.put_stream(&key(content_type), &ledger).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_monitoring_alerts_open_on_the_msps_own_company_and_close_when_the_condition_clears() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let own = own_company(&stack, &msp).await;
    poll_and_settle(&stack).await;
    poll_and_settle(&stack).await;
    assert!(msp.alerts().await.is_empty(), "a healthy new tenant raises nothing: {:#?}", msp.alerts().await);

    // Microsoft disables the webhook on Audit.General (failed notifications).
    assert!(stack.m365.disable_webhook(TENANT, "Audit.General"));
    subscription_check_due(&stack, ContentType::General).await;
    poll_and_settle(&stack).await;
    let disabled: Vec<Value> = alerts_of(&msp, "builtin.selfmon-webhook-disabled")
        .await
        .into_iter()
        .filter(|a| a["title"].as_str().is_some_and(|t| t.contains("Audit.General")))
        .collect();
    assert_eq!(disabled.len(), 1, "{disabled:#?}");
    assert_eq!(tickets_about(&stack, "webhook for Audit.General disabled"), [(own, false)]);
    // The next tick registers it again; the check after the poll sees it enabled.
    poll_and_settle(&stack).await;
    poll_and_settle(&stack).await;
    assert_eq!(stack.m365.subscription(TENANT, "Audit.General").unwrap()["webhook"]["status"], "enabled");
    let disabled = alerts_of(&msp, "builtin.selfmon-webhook-disabled").await;
    assert!(disabled.iter().all(|a| a["status"] == "Resolved"), "{disabled:#?}");
    assert!(tickets_about(&stack, "webhook for Audit.").iter().all(|(company, closed)| *company == own && *closed));

    // Vigil could not poll Exchange for 8 days: the oldest day aged out of Microsoft's retention.
    let state = ingest_state(&stack);
    let mut ledger = state.get_stream(&key(ContentType::Exchange)).await.unwrap().unwrap();
    ledger.covered_until = Utc::now() - Duration::days(8);
    state.put_stream(&key(ContentType::Exchange), &ledger).await.unwrap();
    poll_and_settle(&stack).await;
    let lost = alerts_of(&msp, "builtin.selfmon-lost-interval").await;
    assert_eq!(lost.len(), 1, "{lost:#?}");
    assert_eq!(tickets_about(&stack, "Audit.Exchange content lost"), [(own, false)]);
    let ledger = state.get_stream(&key(ContentType::Exchange)).await.unwrap().unwrap();
    assert_eq!(ledger.lost.len(), 1);
    poll_and_settle(&stack).await;
    assert_eq!(alerts_of(&msp, "builtin.selfmon-lost-interval").await[0]["status"], "New", "open while the loss is recent");

    // A day of polling without a new loss (the ledger's loss moved a day back): resolved.
    let mut ledger = state.get_stream(&key(ContentType::Exchange)).await.unwrap().unwrap();
    ledger.lost = ledger.lost.iter().map(|(from, to)| (*from - Duration::hours(25), *to - Duration::hours(25))).collect();
    state.put_stream(&key(ContentType::Exchange), &ledger).await.unwrap();
    poll_and_settle(&stack).await;
    assert_eq!(alerts_of(&msp, "builtin.selfmon-lost-interval").await[0]["status"], "Resolved");
    assert_eq!(tickets_about(&stack, "Audit.Exchange content lost"), [(own, true)]);

    // Coverage: every stream polled up to now.
    let (status, _, coverage) = msp.call(reqwest::Method::GET, "/v1/coverage", None).await;
    assert_eq!(status, 200, "{coverage}");
    assert_eq!(coverage["tenants_total"], 1);
    let figure = coverage["tenants"][0]["coverage_24h"].as_f64().unwrap();
    assert!(figure > 0.99 && figure <= 1.0, "{coverage}");
    assert_eq!(coverage["msp_coverage_24h"].as_f64(), Some(figure));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psa_refusing_vigils_credentials_for_several_tickets_opens_one_alert_that_its_next_answer_resolves() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    poll_and_settle(&stack).await;
    // The MSP's ConnectWise member keys are rotated: the next three requests to create a ticket
    // are refused with 401, as the real server answers a wrong key.
    stack.connectwise.fail_next(
        vigil_simulators::connectwise::SimOperation::CreateTicket,
        vigil_simulators::connectwise::FailureMode::Status(401),
        3,
    );
    let at = Utc::now() - Duration::minutes(1);
    let mut records = Vec::new();
    for (n, user) in ["alice@contoso.com", "bob@contoso.com"].into_iter().enumerate() {
        let mut record = forwarding_record(TENANT, &record_id(900 + n), at);
        record["UserId"] = json!(user);
        records.push(record);
    }
    stack.m365.add_records(TENANT, "Audit.Exchange", records);
    poll_and_settle(&stack).await;

    let refused = stack.connectwise.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/service/tickets")).count();
    assert!(refused >= 4, "three creates refused, then ConnectWise answered again: {refused}");
    let own = alerts_of(&msp, "builtin.selfmon-destination-credentials").await;
    assert_eq!(own.len(), 1, "one alert for every refused ticket: {own:#?}");
    assert_eq!(own[0]["hit_count"], 1, "raised once");
    assert_eq!(own[0]["tenant_id"], vigil::selfmon::MSP_ITSELF, "about the MSP itself");
    assert_eq!(own[0]["status"], "Resolved", "the next answer cleared it: {own:#?}");
    assert!(own[0]["title"].as_str().unwrap().contains("refuses Vigil's credentials"), "{own:#?}");
    let forwarding = alerts_of(&msp, "builtin.external-forwarding").await;
    assert_eq!(forwarding.len(), 2, "{forwarding:#?}");
    assert_eq!(tickets_about(&stack, "forwarding").len(), 2, "both tickets created once ConnectWise answered");
    let dead = stack.peek("TicketsDeadLetterQueue").await.unwrap().len() + stack.peek("EventsDeadLetterQueue").await.unwrap().len();
    assert_eq!(dead, 0, "nothing dead-lettered");

    // The episode is closed in DynamoDB: a later refusal opens a new alert.
    let config = vigil::aws::dynamodb::DynamoConfigStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.provisioned.table_names["ConfigTable"].clone(),
    );
    let connectwise = vigil::ids::DestinationId::parse("connectwise").unwrap();
    let episode = vigil::ports::CredentialsEpisodeStore::credentials_episode(&config, &MspId::parse(MSP).unwrap(), &connectwise).await;
    assert_eq!(episode.unwrap(), None);
    stack.shutdown().await;
}
