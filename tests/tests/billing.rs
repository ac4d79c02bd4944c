//! The scheduled billing sync on the local stack (moto, the Microsoft 365 simulator's Graph
//! `users`, the Autotask simulator's contracts, every handler): the tick's daily count of an MSP
//! on the daily schedule sends one billing sync job to the ticket-dispatcher, which sets the
//! mapped contract service's units in Autotask with one adjustment and no API call; the same
//! job delivered again, and the next tick of the same day, change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use vigil::billing::sync::SyncSchedule;
use vigil::ids::MspId;
use vigil::messages::BillingSyncJob;
use vigil_tests::{onboard, poll_and_settle, start_stack};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
/// The Autotask service billed per protected mailbox.
const MAILBOX_SERVICE: i64 = 410;
/// Units on the contract before the first sync.
const UNITS_BEFORE: i64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_count_syncs_billing_on_the_msps_schedule_once_even_when_the_job_is_delivered_twice() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    let at = stack.autotask.credentials();
    let autotask = json!({
        "name": "Autotask",
        "settings": {"kind": "autotask", "zone_url": stack.autotask.zone_url()},
        "routing": {"categories": ["Others"], "default_place": "29683481"},
        "credentials": {"kind": "autotask", "username": at.username, "secret": at.secret, "integration_code": at.integration_code}
    });
    let created = msp.call(reqwest::Method::PUT, "/v1/destinations/autotask", Some(autotask)).await;
    assert!((200..300).contains(&created.0), "{created:?}");
    stack.m365.add_licensed_mailboxes(TENANT, 37);
    let today = chrono::Utc::now().date_naive();
    let year = chrono::Datelike::year(&today);
    let contract = stack.autotask.add_contract(
        "Contoso managed security",
        0,
        chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(year, 12, 31).unwrap(),
    );
    stack.autotask.add_contract_service(contract, MAILBOX_SERVICE, UNITS_BEFORE).unwrap();
    let mapped = msp
        .call(
            reqwest::Method::PUT,
            &format!("/v1/tenants/{TENANT}/billing/autotask"),
            Some(json!({"agreement_id": contract.to_string(), "product_id": MAILBOX_SERVICE.to_string()})),
        )
        .await;
    assert!((200..300).contains(&mapped.0), "{mapped:?}");
    let daily =
        msp.call(reqwest::Method::PUT, "/v1/billing/settings", Some(json!({"count_retention_days": 400, "sync_schedule": "daily"}))).await;
    assert!((200..300).contains(&daily.0), "{daily:?}");

    // The tick counts; the count completing the day sends the sync job to the dispatcher.
    poll_and_settle(&stack).await;
    let figures = msp.call(reqwest::Method::GET, "/v1/mailbox-counts", None).await.2;
    let counted = figures["tenants"][0]["protected_mailboxes"].as_i64().expect("the day's count");
    assert!(counted >= 37, "{figures}");
    let adjustments = stack.autotask.adjustments(contract);
    assert_eq!(adjustments.len(), 1, "{adjustments:?}");
    assert_eq!(adjustments[0]["unitChange"], counted - UNITS_BEFORE);
    assert_eq!(stack.autotask.units_on(contract, MAILBOX_SERVICE, today), Some(counted));
    let mappings = msp.call(reqwest::Method::GET, "/v1/billing/mappings", None).await.2;
    assert_eq!(mappings["mappings"][0]["last_sync"]["period"], today.to_string(), "{mappings}");

    // The same job delivered again (SQS is at-least-once), and another tick the same day.
    let job = BillingSyncJob {
        msp_id: MspId::parse(MSP).unwrap(),
        tenant_id: None,
        billing_period: SyncSchedule::Daily.period_on(today).unwrap(),
        day: today,
    };
    aws_sdk_sqs::Client::new(&stack.sdk)
        .send_message()
        .queue_url(stack.provisioned.queue_urls["TicketsQueue"].clone())
        .message_body(serde_json::to_string(&job).unwrap())
        .send()
        .await
        .unwrap();
    poll_and_settle(&stack).await;
    assert_eq!(stack.autotask.adjustments(contract).len(), 1, "a period is synced once");
    assert_eq!(stack.autotask.units_on(contract, MAILBOX_SERVICE, today), Some(counted));
    assert_eq!(stack.queue_depth("TicketsDeadLetterQueue").await.unwrap(), 0, "the job was handled, not dead-lettered");
    stack.shutdown().await;
}
