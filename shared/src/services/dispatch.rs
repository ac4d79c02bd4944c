//! Dispatching alerts to PSA tickets, exactly once per (alert, destination).
//!
//! For each announced alert: if it has no ticket yet, create one (company from the tenant's
//! mapping); if it has one and the alert gained hits since the ticket last described it, add a
//! note. The delivery record is leased and carries the intent of each effect before the effect
//! happens, so a crash or retry after "ticket created" but before "ticket id stored" finds the
//! ticket by the alert reference it carries instead of creating a second one, and a half-done
//! note is found by its marker instead of being added twice.

use crate::alert::{Alert, AlertStatus, PolicyMode};
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, SinkError, StoreError};
use crate::ids::{AlertId, MspId};
use crate::messages::AlertChangedMessage;
use crate::policy::suppression::holds_back_ticket;
use crate::ports::{AlertStore, ConfigStore, PolicyStore, SinkSetupError, TicketSink, TicketSinkProvider};
use crate::ticket::{Delivery, Destination, TicketNote, TicketRef, note_marker, resolution_marker};
use chrono::Duration;
use std::sync::Arc;
use tracing::{info, warn};

/// Why an alert could not be dispatched (this time).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("tickets message is malformed: {0}")]
    MalformedMessage(String),
    #[error("alert {0} does not exist")]
    UnknownAlert(String),
    #[error("tenant {0} is not registered")]
    UnknownTenant(String),
    #[error("tenant {0} is not mapped to a ConnectWise company")]
    TenantNotMapped(String),
    #[error("another invocation is delivering alert {0}")]
    Busy(String),
    #[error(transparent)]
    Setup(#[from] SinkSetupError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classified for DispatchError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::MalformedMessage(_) => ErrorClass::Invalid,
            Self::UnknownAlert(_) | Self::UnknownTenant(_) | Self::TenantNotMapped(_) => ErrorClass::Permanent,
            Self::Busy(_) => ErrorClass::Transient,
            Self::Setup(SinkSetupError::NotConfigured(_)) => ErrorClass::Permanent,
            Self::Setup(SinkSetupError::Store(e)) => e.class(),
            Self::Setup(SinkSetupError::Secret(e)) => e.class(),
            Self::Sink(e) => e.class(),
            Self::Store(StoreError::Conflict { .. }) => ErrorClass::Transient,
            Self::Store(e) => e.class(),
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Sink(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// What dispatching did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// A new ticket was created.
    TicketCreated(TicketRef),
    /// A ticket created by an earlier, interrupted attempt was found and recorded.
    TicketRecovered(TicketRef),
    /// A note about new hits was added.
    NoteAdded(TicketRef),
    /// A note saying the alert resolved itself was added.
    ResolutionNoted(TicketRef),
    /// Nothing to do: the ticket already describes the alert.
    UpToDate,
    /// No ticket: the policy's daily ticket limit for the tenant is used up by other alerts.
    /// The alert stays visible through the API.
    HeldByDailyLimit,
    /// No ticket: the alert's policy runs in shadow mode.
    Shadow,
    /// No ticket: a suppression rule created after the alert was raised covers it.
    Suppressed,
}

/// Tunables of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// How long one invocation owns a delivery; at least the function timeout.
    pub lease: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self { lease: Duration::seconds(60) }
    }
}

/// The dispatch use case.
pub struct DispatchService {
    pub config: Arc<dyn ConfigStore>,
    pub alerts: Arc<dyn AlertStore>,
    /// Suppression rules, checked before an alert's first ticket.
    pub policies: Arc<dyn PolicyStore>,
    pub sinks: Arc<dyn TicketSinkProvider>,
    pub clock: Arc<dyn Clock>,
    pub settings: DispatchSettings,
}

impl DispatchService {
    /// Handles one tickets-queue message body.
    ///
    /// # Errors
    /// See [`DispatchError`]; its class decides retry or dead-letter.
    pub async fn handle(&self, body: &str) -> Result<DispatchOutcome, DispatchError> {
        let message: AlertChangedMessage = serde_json::from_str(body).map_err(|e| DispatchError::MalformedMessage(e.to_string()))?;
        self.dispatch(&message.msp_id, &message.alert_id).await
    }

    /// Brings the alert's ConnectWise ticket up to date.
    ///
    /// # Errors
    /// See [`DispatchError`].
    pub async fn dispatch(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<DispatchOutcome, DispatchError> {
        let destination = Destination::ConnectWise;
        let alert = self.alerts.get_alert(msp_id, alert_id).await?.ok_or_else(|| DispatchError::UnknownAlert(alert_id.to_string()))?;
        let current = self
            .alerts
            .get_delivery(msp_id, alert_id, destination)
            .await?
            .unwrap_or_else(|| Delivery::new(msp_id.clone(), alert_id.clone(), destination));
        if alert.detail.mode == PolicyMode::Shadow {
            return Ok(DispatchOutcome::Shadow);
        }
        if current.ticket.is_none() && !current.create_attempted {
            let now = self.clock.now();
            let rules = self.policies.list_suppressions(msp_id).await?;
            if let Some(rule) = rules.iter().find(|rule| holds_back_ticket(rule, &alert, now)) {
                info!(message = "Alert suppressed before its first ticket.", alert_id = %alert.id, suppression_id = %rule.id);
                return Ok(DispatchOutcome::Suppressed);
            }
        }
        if current.ticket.is_none()
            && !current.create_attempted
            && let Some(limit) = alert.detail.daily_limit
            && !self.alerts.take_daily_ticket(&alert, alert.window_start.date_naive(), limit).await?
        {
            info!(message = "Daily ticket limit reached; alert kept without a ticket.", alert_id = %alert.id, policy_id = %alert.policy_id, limit);
            return Ok(DispatchOutcome::HeldByDailyLimit);
        }
        let resolution_due = alert.status == AlertStatus::Resolved && !current.resolution_noted;
        if current.ticket.is_some()
            && current.pending_note_hits.is_none()
            && current.notified_hits >= alert.hit_count
            && !resolution_due
            && !current.resolution_note_pending
        {
            return Ok(DispatchOutcome::UpToDate);
        }
        let now = self.clock.now();
        if current.leased_at(now) {
            return Err(DispatchError::Busy(alert_id.to_string()));
        }
        let tenant = self
            .config
            .get_tenant(msp_id, &alert.tenant_id)
            .await?
            .ok_or_else(|| DispatchError::UnknownTenant(alert.tenant_id.to_string()))?;
        let company_id = tenant.connectwise_company_id.ok_or_else(|| DispatchError::TenantNotMapped(alert.tenant_id.to_string()))?;
        let sink = self.sinks.sink_for(msp_id, destination).await?;

        // Take the lease and record the intent in one conditional write.
        let mut delivery = current.clone();
        let may_have_unrecorded_ticket = delivery.ticket.is_none() && delivery.create_attempted;
        delivery.create_attempted = true;
        delivery.lease_until = Some(now + self.settings.lease);
        self.save(&mut delivery).await?;

        let result = self.deliver(&alert, &mut delivery, sink.as_ref(), company_id, may_have_unrecorded_ticket).await;
        // Release the lease whatever happened, so a retry need not wait for it to expire.
        delivery.lease_until = None;
        match result {
            Ok(outcome) => {
                self.save(&mut delivery).await?;
                info!(message = "Alert delivered.", alert_id = %alert.id, outcome = ?outcome, hit_count = alert.hit_count);
                Ok(outcome)
            }
            Err(error) => {
                if let Err(release) = self.save(&mut delivery).await {
                    warn!(message = "Could not release a delivery lease; it will expire.", alert_id = %alert.id, error = %release);
                }
                Err(error)
            }
        }
    }

    async fn deliver(
        &self,
        alert: &Alert,
        delivery: &mut Delivery,
        sink: &dyn TicketSink,
        company_id: i64,
        may_have_unrecorded_ticket: bool,
    ) -> Result<DispatchOutcome, DispatchError> {
        let Some(ticket) = delivery.ticket.clone() else {
            let (ticket, outcome) = match if may_have_unrecorded_ticket { sink.find_ticket(alert).await? } else { None } {
                Some(found) => (found.clone(), DispatchOutcome::TicketRecovered(found)),
                None => {
                    let created = sink.create_ticket(alert, company_id).await?;
                    (created.clone(), DispatchOutcome::TicketCreated(created))
                }
            };
            delivery.ticket = Some(ticket.clone());
            delivery.notified_hits = alert.hit_count;
            delivery.pending_note_hits = None;
            self.note_resolution(alert, delivery, sink, &ticket).await?;
            return Ok(outcome);
        };
        if let Some(pending) = delivery.pending_note_hits.take() {
            if sink.has_note(&ticket, &note_marker(&alert.id, pending)).await? {
                delivery.notified_hits = delivery.notified_hits.max(pending);
            }
        }
        let mut outcome = DispatchOutcome::UpToDate;
        if alert.hit_count > delivery.notified_hits {
            let note = update_note(alert, delivery.notified_hits);
            delivery.pending_note_hits = Some(alert.hit_count);
            self.save(delivery).await?;
            sink.add_note(&ticket, &note).await?;
            delivery.notified_hits = alert.hit_count;
            delivery.pending_note_hits = None;
            outcome = DispatchOutcome::NoteAdded(ticket.clone());
        }
        if self.note_resolution(alert, delivery, sink, &ticket).await? {
            outcome = DispatchOutcome::ResolutionNoted(ticket);
        }
        Ok(outcome)
    }

    /// Tells the ticket, once, that the alert resolved itself. Returns whether a note was added.
    async fn note_resolution(
        &self,
        alert: &Alert,
        delivery: &mut Delivery,
        sink: &dyn TicketSink,
        ticket: &TicketRef,
    ) -> Result<bool, DispatchError> {
        if delivery.resolution_noted || alert.status != AlertStatus::Resolved {
            return Ok(false);
        }
        let marker = resolution_marker(&alert.id);
        if delivery.resolution_note_pending && sink.has_note(ticket, &marker).await? {
            delivery.resolution_noted = true;
            delivery.resolution_note_pending = false;
            return Ok(false);
        }
        delivery.resolution_note_pending = true;
        self.save(delivery).await?;
        let when = alert.resolved_at.map_or_else(String::new, |t| format!(" at {} UTC", t.format("%Y-%m-%d %H:%M:%S")));
        let text = format!(
            "Vigil: the condition behind \"{}\" cleared{when}; the alert is resolved. This ticket can be closed.\n{marker}",
            alert.policy_name
        );
        sink.add_note(ticket, &TicketNote { text, marker }).await?;
        delivery.resolution_noted = true;
        delivery.resolution_note_pending = false;
        Ok(true)
    }

    async fn save(&self, delivery: &mut Delivery) -> Result<(), DispatchError> {
        delivery.version += 1;
        let result = self.alerts.save_delivery(delivery).await;
        if result.is_err() {
            delivery.version -= 1;
        }
        match result {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(DispatchError::Busy(delivery.alert_id.to_string())),
            Err(other) => Err(other.into()),
        }
    }
}

/// The note added when an alert gains hits after its ticket was created.
#[must_use]
pub fn update_note(alert: &Alert, previously_notified: u64) -> TicketNote {
    let marker = note_marker(&alert.id, alert.hit_count);
    let text = format!(
        "Vigil: \"{}\" matched again for {}.\nHits: {} (+{} since the last update). Last seen: {} UTC.\n{}",
        alert.policy_name,
        alert.group_key,
        alert.hit_count,
        alert.hit_count.saturating_sub(previously_notified),
        alert.last_seen.format("%Y-%m-%d %H:%M:%S"),
        marker
    );
    TicketNote { text, marker }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertHits;
    use crate::clock::ManualClock;
    use crate::contract::sample_alert;
    use crate::ids::RecordId;
    use crate::memory::*;
    use async_trait::async_trait;
    use chrono::Utc;

    struct Fixture {
        service: DispatchService,
        alerts: Arc<MemoryAlertStore>,
        policies: Arc<MemoryPolicyStore>,
        sink: Arc<MemoryTicketSink>,
        clock: Arc<ManualClock>,
        alert: Alert,
    }

    async fn fixture_with(alerts: Arc<dyn AlertStore>, memory: Arc<MemoryAlertStore>) -> Fixture {
        let config = Arc::new(MemoryConfigStore::default());
        let alert = sample_alert(Utc::now());
        config.create_tenant(&crate::contract::sample_tenant(&alert.msp_id, &alert.tenant_id)).await.unwrap();
        let provider = MemoryTicketSinkProvider::default();
        let sink = provider.sink.clone();
        let clock = Arc::new(ManualClock::at(Utc::now()));
        let policies = Arc::new(MemoryPolicyStore::default());
        let service = DispatchService {
            config,
            alerts,
            policies: policies.clone(),
            sinks: Arc::new(provider),
            clock: clock.clone(),
            settings: DispatchSettings::default(),
        };
        Fixture { service, alerts: memory, policies, sink, clock, alert }
    }

    async fn fixture() -> Fixture {
        let memory = Arc::new(MemoryAlertStore::default());
        fixture_with(memory.clone(), memory).await
    }

    async fn hit(f: &Fixture, ids: &[&str]) -> Alert {
        let records = ids.iter().map(|id| (RecordId::parse(id).unwrap(), f.alert.first_seen)).collect();
        f.alerts.record_hits(&AlertHits::of_records(f.alert.clone(), records), Utc::now()).await.unwrap()
    }

    #[tokio::test]
    async fn a_policys_daily_ticket_limit_holds_back_further_alerts_of_the_day_but_not_their_notes() {
        let f = fixture().await;
        let make = |n: u32| {
            let mut alert = f.alert.clone();
            alert.id = AlertId::derive(&["limited", &n.to_string()]);
            alert.detail.daily_limit = Some(2);
            alert
        };
        let mut outcomes = Vec::new();
        for n in 0..3 {
            let alert = make(n);
            f.alerts
                .record_hits(
                    &AlertHits::of_records(alert.clone(), vec![(RecordId::parse(&format!("r{n}")).unwrap(), alert.first_seen)]),
                    Utc::now(),
                )
                .await
                .unwrap();
            outcomes.push(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap());
        }
        assert!(matches!(outcomes[0], DispatchOutcome::TicketCreated(_)));
        assert!(matches!(outcomes[1], DispatchOutcome::TicketCreated(_)));
        assert_eq!(outcomes[2], DispatchOutcome::HeldByDailyLimit);
        assert_eq!(f.sink.tickets().len(), 2);
        let first = make(0);
        f.alerts
            .record_hits(&AlertHits::of_records(first.clone(), vec![(RecordId::parse("r9").unwrap(), first.first_seen)]), Utc::now())
            .await
            .unwrap();
        assert!(
            matches!(f.service.dispatch(&first.msp_id, &first.id).await.unwrap(), DispatchOutcome::NoteAdded(_)),
            "a ticketed alert still gets notes"
        );
    }

    #[tokio::test]
    async fn a_suppression_created_after_an_alert_keeps_it_from_its_first_ticket_but_not_an_existing_one() {
        let f = fixture().await;
        let ticketed = hit(&f, &["r1"]).await;
        assert!(matches!(f.service.dispatch(&ticketed.msp_id, &ticketed.id).await.unwrap(), DispatchOutcome::TicketCreated(_)));
        let rule = crate::ports::Suppression {
            id: "s1".into(),
            msp_id: ticketed.msp_id.clone(),
            tenant_id: Some(ticketed.tenant_id.clone()),
            user: None,
            policy_id: Some(ticketed.policy_id.clone()),
            conditions: None,
            expires_at: None,
            reason: "known".into(),
            author: "dana".into(),
            created_at: Utc::now(),
        };
        f.policies.put_suppression(&rule).await.unwrap();
        let mut later = f.alert.clone();
        later.id = AlertId::derive(&["later"]);
        f.alerts
            .record_hits(&AlertHits::of_records(later.clone(), vec![(RecordId::parse("r2").unwrap(), later.first_seen)]), Utc::now())
            .await
            .unwrap();
        assert_eq!(f.service.dispatch(&later.msp_id, &later.id).await.unwrap(), DispatchOutcome::Suppressed);
        let more = hit(&f, &["r3"]).await;
        assert!(
            matches!(f.service.dispatch(&more.msp_id, &more.id).await.unwrap(), DispatchOutcome::NoteAdded(_)),
            "a ticketed alert keeps its ticket up to date"
        );
        assert_eq!(f.sink.tickets().len(), 1);
    }

    #[tokio::test]
    async fn a_shadow_alert_is_never_ticketed_even_if_announced() {
        let f = fixture().await;
        let mut alert = f.alert.clone();
        alert.detail.mode = PolicyMode::Shadow;
        f.alerts
            .record_hits(&AlertHits::of_records(alert.clone(), vec![(RecordId::parse("r1").unwrap(), alert.first_seen)]), Utc::now())
            .await
            .unwrap();
        assert_eq!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::Shadow);
        assert!(f.sink.tickets().is_empty());
    }

    #[tokio::test]
    async fn first_dispatch_creates_one_ticket_under_the_mapped_company() {
        let f = fixture().await;
        let alert = hit(&f, &["a", "b"]).await;
        assert!(matches!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::TicketCreated(_)));
        assert_eq!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::UpToDate);
        let tickets = f.sink.tickets();
        assert_eq!(tickets.len(), 1);
        assert_eq!(tickets[0].company_id, 250);
    }

    #[tokio::test]
    async fn new_hits_become_one_note_on_the_existing_ticket() {
        let f = fixture().await;
        let alert = hit(&f, &["a"]).await;
        f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap();
        hit(&f, &["b", "c"]).await;
        assert!(matches!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::NoteAdded(_)));
        assert_eq!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::UpToDate);
        let tickets = f.sink.tickets();
        assert_eq!(tickets.len(), 1);
        assert_eq!(tickets[0].notes.len(), 1);
        assert!(tickets[0].notes[0].contains("Hits: 3 (+2"));
    }

    #[tokio::test]
    async fn a_resolved_alert_gets_one_resolution_note() {
        let f = fixture().await;
        let alert = hit(&f, &["a"]).await;
        f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap();
        f.alerts.resolve_alert(&alert.msp_id, &alert.id, Utc::now()).await.unwrap();
        assert!(matches!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::ResolutionNoted(_)));
        assert_eq!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::UpToDate);
        let notes = &f.sink.tickets()[0].notes;
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("resolved"));
    }

    #[tokio::test]
    async fn a_psa_outage_is_transient_and_the_retry_creates_exactly_one_ticket() {
        let f = fixture().await;
        let alert = hit(&f, &["a"]).await;
        f.sink.fail_next_create(SinkError::Unavailable("500".into()));
        let error = f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Transient);
        assert!(
            matches!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::TicketCreated(_)),
            "the lease was released, so the retry proceeds at once"
        );
        assert_eq!(f.sink.tickets().len(), 1);
    }

    /// An alert store whose process "dies" at the write that records a created ticket: from
    /// then on every delivery write fails, until the test restarts it.
    struct CrashAfterTicket {
        inner: Arc<MemoryAlertStore>,
        crashed: std::sync::Mutex<bool>,
        down: std::sync::Mutex<bool>,
    }

    #[async_trait]
    impl AlertStore for CrashAfterTicket {
        async fn record_hits(&self, hits: &AlertHits, now: chrono::DateTime<Utc>) -> Result<Alert, StoreError> {
            self.inner.record_hits(hits, now).await
        }
        async fn get_alert(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Option<Alert>, StoreError> {
            self.inner.get_alert(msp_id, alert_id).await
        }
        async fn resolve_alert(&self, msp_id: &MspId, alert_id: &AlertId, at: chrono::DateTime<Utc>) -> Result<Option<Alert>, StoreError> {
            self.inner.resolve_alert(msp_id, alert_id, at).await
        }
        async fn list_alerts(&self, msp_id: &MspId, limit: usize, after: Option<&str>) -> Result<crate::ports::AlertPage, StoreError> {
            self.inner.list_alerts(msp_id, limit, after).await
        }
        async fn update_alert(&self, alert: &Alert) -> Result<(), StoreError> {
            self.inner.update_alert(alert).await
        }
        async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError> {
            self.inner.take_daily_ticket(alert, day, limit).await
        }
        async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: Destination) -> Result<Option<Delivery>, StoreError> {
            self.inner.get_delivery(msp_id, alert_id, destination).await
        }
        async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
            {
                let mut crashed = self.crashed.lock().unwrap();
                let mut down = self.down.lock().unwrap();
                if delivery.ticket.is_some() && !*crashed {
                    *crashed = true;
                    *down = true;
                }
                if *down {
                    return Err(StoreError::Unavailable("injected crash".into()));
                }
            }
            self.inner.save_delivery(delivery).await
        }
    }

    #[tokio::test]
    async fn a_crash_between_ticket_creation_and_state_write_never_duplicates_the_ticket() {
        let memory = Arc::new(MemoryAlertStore::default());
        let crashing =
            Arc::new(CrashAfterTicket { inner: memory.clone(), crashed: std::sync::Mutex::new(false), down: std::sync::Mutex::new(false) });
        let f = fixture_with(crashing.clone(), memory).await;
        let alert = hit(&f, &["a"]).await;
        assert!(f.service.dispatch(&alert.msp_id, &alert.id).await.is_err(), "the state write fails after the ticket exists");
        assert_eq!(f.sink.tickets().len(), 1);
        *crashing.down.lock().unwrap() = false;
        // The crashed invocation may not have released its lease: wait it out.
        f.clock.advance(Duration::seconds(61));
        assert!(matches!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::TicketRecovered(_)));
        assert_eq!(f.sink.tickets().len(), 1);
        assert_eq!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap(), DispatchOutcome::UpToDate);
    }

    #[tokio::test]
    async fn a_held_lease_makes_a_concurrent_dispatch_retry_later() {
        let f = fixture().await;
        let alert = hit(&f, &["a"]).await;
        let mut leased = Delivery::new(alert.msp_id.clone(), alert.id.clone(), Destination::ConnectWise);
        leased.version = 1;
        leased.lease_until = Some(f.clock.now() + Duration::seconds(30));
        f.alerts.save_delivery(&leased).await.unwrap();
        let error = f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap_err();
        assert!(matches!(error, DispatchError::Busy(_)));
        assert!(f.sink.tickets().is_empty());
    }

    #[tokio::test]
    async fn an_unmapped_tenant_is_a_permanent_error() {
        let f = fixture().await;
        let alert = hit(&f, &["a"]).await;
        let mut tenant = f.service.config.get_tenant(&alert.msp_id, &alert.tenant_id).await.unwrap().unwrap();
        tenant.connectwise_company_id = None;
        f.service.config.put_tenant(&tenant).await.unwrap();
        assert_eq!(f.service.dispatch(&alert.msp_id, &alert.id).await.unwrap_err().class(), ErrorClass::Permanent);
    }
}
