//! Dead-letter redrive on the local stack (issue 18, docs/runbook.md): `vigil-admin dlq` reads
//! a dead-letter queue, says why each message failed as far as the message tells, refuses to
//! redrive what cannot succeed, and sends chosen messages back to their queue. A redriven
//! message whose effect already happened (the ticket exists) has no second effect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use vigil::ids::{AlertId, MspId};
use vigil::messages::AlertChangedMessage;
use vigil_local::dlq::{Diagnosis, Dlq, QueueKind, depth};
use vigil_tests::{forwarding_record, in_current_window, onboard, poll_and_settle, record_id, start_stack};

const MSP: &str = "acme";
const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redriving_ticket_work_whose_ticket_exists_opens_no_second_ticket_and_unreadable_work_stays() {
    let stack = start_stack().await;
    let msp = onboard(&stack, MSP, TENANT, 250).await;
    stack.m365.add_records(TENANT, "Audit.Exchange", vec![forwarding_record(TENANT, &record_id(1), in_current_window(10))]);
    poll_and_settle(&stack).await;
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "the alert became one ticket");
    let notes_before = tickets[0].notes.len();
    let alerts = msp.alerts().await;
    let alert_id = alerts[0]["id"].as_str().unwrap().to_owned();

    // The alert's ticket work dead-lettered after its ticket was made (e.g. the dispatcher timed
    // out after the PSA answered), beside a body no dispatcher can read.
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let dlq_url = stack.provisioned.queue_urls["TicketsDeadLetterQueue"].clone();
    let source_url = stack.provisioned.queue_urls["TicketsQueue"].clone();
    let work = AlertChangedMessage::fan_out(MspId::parse(MSP).unwrap(), AlertId::parse(&alert_id).unwrap());
    let good_id = sqs
        .send_message()
        .queue_url(&dlq_url)
        .message_body(serde_json::to_string(&work).unwrap())
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    let bad_id = sqs.send_message().queue_url(&dlq_url).message_body("{\"alert\": ").send().await.unwrap().message_id.unwrap();

    // Inspect: each message with why it failed; nothing moves and both stay visible.
    let dlq = Dlq::read(sqs.clone(), QueueKind::Tickets, &dlq_url, 100, 30).await.unwrap();
    assert_eq!(dlq.letters.len(), 2);
    let good = dlq.letters.iter().find(|l| l.message_id == good_id).unwrap();
    assert_eq!(good.diagnosis, Diagnosis::ProcessingFailed);
    assert_eq!(good.subject.get("alert"), Some(&alert_id));
    assert_eq!(good.subject.get("msp").map(String::as_str), Some(MSP));
    let bad = dlq.letters.iter().find(|l| l.message_id == bad_id).unwrap();
    assert!(matches!(bad.diagnosis, Diagnosis::Unreadable(_)), "{:?}", bad.diagnosis);
    dlq.release().await.unwrap();
    assert_eq!(depth(&sqs, &dlq_url).await.unwrap(), 2);

    // Redriving the unreadable one is refused and moves nothing.
    let dlq = Dlq::read(sqs.clone(), QueueKind::Tickets, &dlq_url, 100, 30).await.unwrap();
    let refused = dlq.redrive(&source_url, std::slice::from_ref(&bad_id), false, false).await.unwrap_err();
    assert!(refused.to_string().contains(&bad_id), "{refused}");
    assert_eq!(depth(&sqs, &dlq_url).await.unwrap(), 2);

    // Redriving the valid one: back on the tickets queue, the dispatcher finds the alert's
    // delivery up to date, and ConnectWise still has one ticket with the same notes.
    let received = || stack.mappings["TicketDispatcherFunction"].messages.load(std::sync::atomic::Ordering::Relaxed);
    let received_before = received();
    let dlq = Dlq::read(sqs.clone(), QueueKind::Tickets, &dlq_url, 100, 30).await.unwrap();
    let moved = dlq.redrive(&source_url, &[], true, false).await.unwrap();
    assert_eq!(moved, vec![good_id.clone()], "--all moves only what can succeed");
    stack.wait_idle(Duration::from_secs(60)).await.unwrap();
    assert!(received() > received_before, "the dispatcher received the redriven work");
    let tickets = stack.connectwise.tickets();
    assert_eq!(tickets.len(), 1, "no second ticket");
    assert_eq!(tickets[0].notes.len(), notes_before, "no note either");
    assert_eq!(depth(&sqs, &source_url).await.unwrap(), 0);
    let left = Dlq::read(sqs.clone(), QueueKind::Tickets, &dlq_url, 100, 30).await.unwrap();
    assert_eq!(left.letters.iter().map(|l| l.message_id.clone()).collect::<Vec<_>>(), vec![bad_id]);
    left.release().await.unwrap();
}
