//! The contract every [`MessageChannel`] (chat, signed webhook, e-mail connector) must honour,
//! run against each connector with its simulator (and against the in-memory channel): a post
//! shows once; a post whose answer is lost is reported as maybe posted, and the dispatcher
//! then shows the change once (a receiver that keeps ids gets it again under the same id; any
//! other is not posted to twice); throttling is reported with its delay and shows nothing; a
//! revoked endpoint is a permanent refusal; an oversize alert is cut to fit, never refused.
//!
//! A [`ChannelHarness`] gives the suite a connector and the simulator's hands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::alert::{AlertHits, Severity};
use crate::channel::{AlertChange, render_message};
use crate::clock::ManualClock;
use crate::contract::{sample_alert, sample_destination, sample_tenant};
use crate::destination::{Destination, DestinationSettings};
use crate::error::{Classified, ErrorClass, SinkError};
use crate::ids::RecordId;
use crate::memory::{MemoryAlertStore, MemoryConfigStore, MemoryPolicyStore, MemoryQueue};
use crate::ports::{
    AlertStore, ConfigStore, DestinationStore, MessageChannel, PostError, SinkSetupError, TicketSystem, TicketSystemProvider,
};
use crate::services::dispatch::{DispatchOutcome, DispatchService, DispatchSettings};
use async_trait::async_trait;
use chrono::Utc;
use std::sync::Arc;

/// A connector and its simulator, for [`message_channel_contract`].
#[async_trait]
pub trait ChannelHarness: Send + Sync {
    /// The connector under test (a fresh endpoint each call is not required).
    fn channel(&self) -> Arc<dyn MessageChannel>;
    /// The destination settings of this kind (the dispatcher branches on the kind).
    fn settings(&self) -> DestinationSettings;
    /// How many messages the receiving end shows so far.
    async fn shown(&self) -> usize;
    /// The next post arrives and its answer is lost (the client gives up waiting).
    async fn lose_next_answer(&self);
    /// The next post is throttled with a `Retry-After`.
    async fn throttle_next(&self);
    /// The endpoint is revoked (webhook deleted, app uninstalled, endpoint removed).
    async fn revoke(&self);
}

/// Hands the harness's channel to the dispatcher.
struct OneChannel(Arc<dyn MessageChannel>);

#[async_trait]
impl TicketSystemProvider for OneChannel {
    async fn system_for(&self, destination: &Destination) -> Result<Arc<dyn TicketSystem>, SinkSetupError> {
        Err(SinkSetupError::NotConfigured(format!("{} keeps no tickets", destination.id)))
    }
    async fn channel_for(&self, _destination: &Destination) -> Result<Arc<dyn MessageChannel>, SinkSetupError> {
        Ok(self.0.clone())
    }
}

/// Runs the whole contract. Revokes the endpoint last.
pub async fn message_channel_contract(harness: &dyn ChannelHarness) {
    let channel = harness.channel();
    let mut alert = sample_alert(Utc::now());
    alert.id = crate::ids::AlertId::derive(&["message-contract", &crate::contract::unique_suffix()]);
    alert.severity = Severity::High;
    alert.hit_count = 1;
    let before = harness.shown().await;

    // A post shows once.
    channel.post(&render_message(&alert, AlertChange::Raised, Some("https://vigil.example"))).await.unwrap();
    assert_eq!(harness.shown().await, before + 1, "a post shows once");

    // An oversize alert is cut to fit, never refused.
    let mut huge = alert.clone();
    huge.title = "An alert title that goes on ".repeat(400);
    huge.detail.description = "A description with <markup> & symbols, repeated. ".repeat(3_000);
    huge.policy_name = "P".repeat(2_000);
    huge.hit_count = 2;
    channel
        .post(&render_message(&huge, AlertChange::Refired, Some("https://vigil.example")))
        .await
        .expect("an oversize alert is cut to fit");
    assert_eq!(harness.shown().await, before + 2);

    // Throttled: reported with its delay, nothing shown.
    harness.throttle_next().await;
    match channel.post(&render_message(&alert, AlertChange::Resolved, None)).await {
        Err(PostError::NotPosted(SinkError::Throttled { retry_after })) => assert!(retry_after.is_some(), "the delay is kept"),
        other => panic!("a throttled post is not posted and says so: {other:?}"),
    }
    assert_eq!(harness.shown().await, before + 2);

    // A lost answer: maybe posted, and through the dispatcher the change shows once.
    once_under_a_lost_answer(harness).await;
    let after_lost = harness.shown().await;

    // A revoked endpoint: a permanent refusal.
    harness.revoke().await;
    let refused = channel.post(&render_message(&alert, AlertChange::Raised, None)).await.expect_err("a revoked endpoint refuses");
    assert!(!refused.maybe_posted(), "a refusal is not a maybe: {refused:?}");
    assert_eq!(refused.into_sink().class(), ErrorClass::Permanent, "a revoked endpoint is not retried forever");
    assert_eq!(harness.shown().await, after_lost);
}

async fn once_under_a_lost_answer(harness: &dyn ChannelHarness) {
    let config = Arc::new(MemoryConfigStore::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let mut alert = sample_alert(Utc::now());
    alert.id = crate::ids::AlertId::derive(&["message-contract", &crate::contract::unique_suffix()]);
    config.create_tenant(&sample_tenant(&alert.msp_id, &alert.tenant_id)).await.unwrap();
    let mut destination = sample_destination(&alert.msp_id, "channel");
    destination.settings = harness.settings();
    config.put_destination(&destination).await.unwrap();
    alert.severity = Severity::High;
    let alert = alerts
        .record_hits(&AlertHits::of_records(alert, vec![(RecordId::parse("lost-1").unwrap(), Utc::now())]), Utc::now())
        .await
        .unwrap();
    let service = DispatchService {
        config: config.clone(),
        destinations: config,
        alerts: alerts.clone(),
        policies: Arc::new(MemoryPolicyStore::default()),
        systems: Arc::new(OneChannel(harness.channel())),
        tickets: Arc::new(MemoryQueue::default()),
        billing_sync: None,
        credentials: None,
        clock: Arc::new(ManualClock::at(Utc::now())),
        settings: DispatchSettings { api_base: Some("https://vigil.example".into()), ..DispatchSettings::default() },
    };
    let before = harness.shown().await;
    harness.lose_next_answer().await;
    let lost = service.dispatch(&alert.msp_id, &alert.id, &destination.id).await.expect_err("the answer was lost");
    assert_eq!(lost.class(), ErrorClass::Transient, "a lost answer is retried");
    let retried = service.dispatch(&alert.msp_id, &alert.id, &destination.id).await.unwrap();
    assert!(
        matches!(retried, DispatchOutcome::MessagePosted(AlertChange::Raised) | DispatchOutcome::MessageUncertain(AlertChange::Raised)),
        "{retried:?}"
    );
    assert_eq!(service.dispatch(&alert.msp_id, &alert.id, &destination.id).await.unwrap(), DispatchOutcome::UpToDate);
    assert_eq!(harness.shown().await, before + 1, "the change shows once");
}

/// The in-memory channel passes the contract (so the suite itself is checked without a network).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{ChannelFault, MemoryChannel};

    struct Memory(Arc<MemoryChannel>);

    #[async_trait]
    impl ChannelHarness for Memory {
        fn channel(&self) -> Arc<dyn MessageChannel> {
            self.0.clone()
        }
        fn settings(&self) -> DestinationSettings {
            DestinationSettings::Slack {}
        }
        async fn shown(&self) -> usize {
            self.0.shown().len()
        }
        async fn lose_next_answer(&self) {
            self.0.fail_next(ChannelFault::LoseAnswer);
        }
        async fn throttle_next(&self) {
            self.0.fail_next(ChannelFault::Throttle(3));
        }
        async fn revoke(&self) {
            for _ in 0..10 {
                self.0.fail_next(ChannelFault::Revoked);
            }
        }
    }

    #[tokio::test]
    async fn a_chat_like_memory_channel_passes_the_contract() {
        message_channel_contract(&Memory(Arc::new(MemoryChannel::chat()))).await;
    }

    #[tokio::test]
    async fn a_deduplicating_memory_channel_passes_the_contract() {
        message_channel_contract(&Memory(Arc::new(MemoryChannel::deduplicating()))).await;
    }
}
