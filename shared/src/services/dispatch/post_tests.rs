//! Channel destinations (chat, signed webhook, e-mail) on in-memory adapters: one message per
//! alert change, never twice on a channel that cannot de-duplicate, again under the same id on
//! one that can, failures on either side of the wire, the daily e-mail limit across midnight.
//! Each real channel proves the same port against its simulator in the message-port contract
//! suite.

use super::tests::{FailingWrites, Fixture, fixture, fixture_with};
use super::*;
use crate::alert::AlertStatus;
use crate::channel::AlertChange;
use crate::destination::{DestinationSettings, EmailSettings};
use crate::error::ErrorClass;
use crate::memory::{ChannelFault, MemoryAlertStore, MemoryChannel};
use crate::ports::Suppression;
use chrono::{TimeZone, Utc};

async fn chat(f: &Fixture) -> DestinationId {
    f.add_destination("chat", |d| d.settings = DestinationSettings::Teams {}).await
}

async fn post(f: &Fixture, destination: &DestinationId) -> Result<DispatchOutcome, DispatchError> {
    f.service.dispatch(&f.alert.msp_id, &f.alert.id, destination).await
}

#[tokio::test]
async fn a_channel_hears_raised_fired_again_and_resolved_each_once() {
    let f = fixture().await;
    let chat = chat(&f).await;
    f.hit(&["a"]).await;
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Raised));
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::UpToDate);
    f.hit(&["b", "c"]).await;
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Refired));
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Resolved));
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::UpToDate);
    let shown = f.psas.channel(&chat).shown();
    assert_eq!(
        shown.iter().map(|m| (m.change, m.hit_count)).collect::<Vec<_>>(),
        [(AlertChange::Raised, 1), (AlertChange::Refired, 3), (AlertChange::Resolved, 3)]
    );
    assert!(f.psas.system(&chat).tickets().is_empty(), "a channel is never asked for a ticket");
    let delivery = f.alerts.get_delivery(&f.alert.msp_id, &f.alert.id, &chat).await.unwrap().unwrap();
    assert_eq!((delivery.messages_posted, delivery.messages_uncertain, delivery.pending_message), (3, 0, None));
}

#[tokio::test]
async fn an_alert_that_resolved_before_its_first_message_posts_nothing() {
    let f = fixture().await;
    let chat = chat(&f).await;
    f.hit(&["a"]).await;
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::UpToDate);
    assert!(f.psas.channel(&chat).shown().is_empty());
}

#[tokio::test]
async fn a_lost_answer_on_a_chat_channel_is_never_posted_again_and_counts_as_uncertain() {
    let f = fixture().await;
    let chat = chat(&f).await;
    f.psas.channel(&chat).fail_next(ChannelFault::LoseAnswer);
    f.hit(&["a"]).await;
    let error = post(&f, &chat).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "the queue retries it");
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessageUncertain(AlertChange::Raised));
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::UpToDate);
    assert_eq!(f.psas.channel(&chat).shown().len(), 1, "posted once");
    f.hit(&["b"]).await;
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Refired), "the next change posts as usual");
    let delivery = f.alerts.get_delivery(&f.alert.msp_id, &f.alert.id, &chat).await.unwrap().unwrap();
    assert_eq!((delivery.messages_posted, delivery.messages_uncertain), (1, 1));
}

#[tokio::test]
async fn a_lost_answer_on_a_receiver_that_keeps_ids_is_sent_again_under_the_same_id() {
    let f = fixture().await;
    let hook = f.add_destination("hook", |d| d.settings = DestinationSettings::Teams {}).await;
    let receiver = f.psas.put_channel(&hook, MemoryChannel::deduplicating());
    receiver.fail_next(ChannelFault::LoseAnswer);
    f.hit(&["a"]).await;
    post(&f, &hook).await.unwrap_err();
    assert_eq!(post(&f, &hook).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Raised));
    assert_eq!(receiver.shown().len(), 1, "the receiver shows the id once");
    let delivery = f.alerts.get_delivery(&f.alert.msp_id, &f.alert.id, &hook).await.unwrap().unwrap();
    assert_eq!((delivery.messages_posted, delivery.messages_uncertain), (1, 0));
}

#[tokio::test]
async fn a_refused_or_unsent_post_leaves_no_intent_so_its_retry_posts_it_once() {
    let f = fixture().await;
    let chat = chat(&f).await;
    let channel = f.psas.channel(&chat);
    channel.fail_next(ChannelFault::Throttle(7));
    channel.fail_next(ChannelFault::Unreachable);
    f.hit(&["a"]).await;
    let throttled = post(&f, &chat).await.unwrap_err();
    assert_eq!((throttled.class(), throttled.retry_after()), (ErrorClass::Transient, Some(std::time::Duration::from_secs(7))));
    assert_eq!(post(&f, &chat).await.unwrap_err().class(), ErrorClass::Transient);
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Raised));
    assert_eq!(channel.shown().len(), 1);
}

#[tokio::test]
async fn a_revoked_endpoint_is_a_permanent_failure_that_records_nothing_as_posted() {
    let f = fixture().await;
    let chat = chat(&f).await;
    f.psas.channel(&chat).fail_next(ChannelFault::Revoked);
    f.hit(&["a"]).await;
    assert_eq!(post(&f, &chat).await.unwrap_err().class(), ErrorClass::Permanent, "dead-lettered, not retried forever");
    let delivery = f.alerts.get_delivery(&f.alert.msp_id, &f.alert.id, &chat).await.unwrap().unwrap();
    assert_eq!((delivery.notified_hits, delivery.pending_message.as_deref(), delivery.lease_until), (0, None, None));
}

#[tokio::test]
async fn a_crash_after_a_chat_post_settles_as_uncertain_once_the_lease_expires_and_is_not_posted_twice() {
    let memory = Arc::new(MemoryAlertStore::default());
    let crashing = FailingWrites::new(memory.clone());
    let f = fixture_with(crashing.clone(), memory).await;
    let chat = chat(&f).await;
    f.hit(&["a"]).await;
    // The write after the post fails: the intent and the lease stay behind, like a crash.
    crashing.refuse(|d| d.messages_posted > 0);
    post(&f, &chat).await.unwrap_err();
    crashing.refuse(|_| false);
    assert!(matches!(post(&f, &chat).await.unwrap_err(), DispatchError::Busy(_)), "the lease holds");
    f.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessageUncertain(AlertChange::Raised));
    assert_eq!(f.psas.channel(&chat).shown().len(), 1, "posted once");
}

#[tokio::test]
async fn a_channel_takes_alerts_by_its_routing_and_hears_the_resolution_after_routing_changed() {
    let f = fixture().await;
    let chat = f
        .add_destination("chat", |d| {
            d.settings = DestinationSettings::Slack {};
            d.routing.min_severity = Some(f.alert.severity);
        })
        .await;
    f.add_destination("quiet", |d| {
        d.settings = DestinationSettings::Slack {};
        d.routing.categories = vec![crate::alert::Category::MailFlow];
    })
    .await;
    f.hit(&["a"]).await;
    let chosen: Vec<String> =
        f.service.destinations_of(&f.alert.msp_id, &f.alert.id).await.unwrap().into_iter().map(|d| d.id.to_string()).collect();
    assert!(chosen.contains(&"chat".to_owned()) && !chosen.contains(&"quiet".to_owned()), "{chosen:?}");
    post(&f, &chat).await.unwrap();
    f.add_destination("chat", |d| {
        d.settings = DestinationSettings::Slack {};
        d.routing.tenants = vec![crate::contract::unique_tenant()];
    })
    .await;
    let chosen = f.service.destinations_of(&f.alert.msp_id, &f.alert.id).await.unwrap();
    assert!(chosen.iter().any(|d| d.id == chat), "a channel that heard of the alert still hears its resolution");
}

#[tokio::test]
async fn a_shadow_policy_or_a_suppression_posts_nothing_to_a_channel() {
    let f = fixture().await;
    let chat = chat(&f).await;
    let mut alert = f.hit(&["a"]).await;
    f.policies
        .put_suppression(&Suppression {
            id: "s1".into(),
            msp_id: f.alert.msp_id.clone(),
            tenant_id: Some(f.alert.tenant_id.clone()),
            user: None,
            policy_id: Some(f.alert.policy_id.clone()),
            conditions: None,
            expires_at: None,
            reason: "known".into(),
            author: "dana".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::Suppressed);
    f.policies.delete_suppression(&f.alert.msp_id, "s1").await.unwrap();
    alert.detail.mode = crate::alert::PolicyMode::Shadow;
    alert.version += 1;
    f.alerts.update_alert(&alert).await.unwrap();
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::Shadow);
    assert!(f.psas.channel(&chat).shown().is_empty());
}

#[tokio::test]
async fn the_daily_email_limit_holds_back_emails_beyond_it_until_the_next_utc_day() {
    let f = fixture().await;
    let mail = f
        .add_destination("mail", |d| {
            d.settings = DestinationSettings::Email(EmailSettings { recipients: vec!["soc@msp.example".into()], subject_prefix: None });
        })
        .await;
    let chat = chat(&f).await;
    f.clock.set(Utc.with_ymd_and_hms(2026, 12, 6, 23, 50, 0).unwrap());
    let mut limited = f.hit(&["a"]).await;
    limited.detail.daily_email_limit = Some(1);
    limited.version += 1;
    f.alerts.update_alert(&limited).await.unwrap();
    assert_eq!(post(&f, &mail).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Raised));
    f.hit(&["b"]).await;
    assert_eq!(post(&f, &mail).await.unwrap(), DispatchOutcome::HeldByDailyLimit, "the second e-mail of the day is held back");
    assert_eq!(post(&f, &mail).await.unwrap(), DispatchOutcome::UpToDate, "and not retried");
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Raised), "the limit is e-mail's only");
    let alert = f.stored().await;
    assert_eq!(alert.status, AlertStatus::New, "the alert is still recorded");
    f.clock.set(Utc.with_ymd_and_hms(2026, 12, 7, 0, 10, 0).unwrap());
    f.hit(&["c"]).await;
    assert_eq!(post(&f, &mail).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Refired), "a new UTC day, a new allowance");
    assert_eq!(f.psas.channel(&mail).shown().len(), 2);
    let delivery = f.alerts.get_delivery(&f.alert.msp_id, &f.alert.id, &mail).await.unwrap().unwrap();
    assert_eq!((delivery.messages_posted, delivery.messages_over_limit), (2, 1));
}

#[tokio::test]
async fn a_suppression_made_after_the_first_message_does_not_hold_back_the_alerts_later_changes() {
    let f = fixture().await;
    let chat = chat(&f).await;
    f.hit(&["a"]).await;
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Raised));
    f.policies
        .put_suppression(&Suppression {
            id: "later".into(),
            msp_id: f.alert.msp_id.clone(),
            tenant_id: Some(f.alert.tenant_id.clone()),
            user: None,
            policy_id: Some(f.alert.policy_id.clone()),
            conditions: None,
            expires_at: None,
            reason: "known".into(),
            author: "dana".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    f.hit(&["b"]).await;
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Refired), "like a ticket, once told");
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert_eq!(post(&f, &chat).await.unwrap(), DispatchOutcome::MessagePosted(AlertChange::Resolved));
}
