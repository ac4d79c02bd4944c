//! The delivery core on in-memory adapters: fan-out, the ticket lifecycle both ways, failures
//! injected between effects and their records. Each PSA connector proves the same against its
//! simulator (the ticket-port contract suite and the local-stack tests).

use super::*;
use crate::alert::{Alert, AlertHits, AlertStatus, Category, PolicyMode};
use crate::clock::ManualClock;
use crate::contract::{sample_alert, sample_destination, sample_tenant};
use crate::destination::UnlinkedTenant;
use crate::error::ErrorClass;
use crate::ids::RecordId;
use crate::memory::*;
use crate::ports::Suppression;
use crate::ticket::Delivery;
use chrono::Utc;

pub(super) struct Fixture {
    pub(super) service: DispatchService,
    pub(super) alerts: Arc<MemoryAlertStore>,
    pub(super) config: Arc<MemoryConfigStore>,
    pub(super) policies: Arc<MemoryPolicyStore>,
    pub(super) psas: MemoryTicketSystemProvider,
    pub(super) queue: Arc<MemoryQueue>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) alert: Alert,
    pub(super) psa: DestinationId,
}

pub(super) async fn fixture_with(alerts: Arc<dyn AlertStore>, memory: Arc<MemoryAlertStore>) -> Fixture {
    let config = Arc::new(MemoryConfigStore::default());
    let alert = sample_alert(Utc::now());
    config.create_tenant(&sample_tenant(&alert.msp_id, &alert.tenant_id)).await.unwrap();
    let psa = DestinationId::parse("psa").unwrap();
    config.put_destination(&sample_destination(&alert.msp_id, "psa")).await.unwrap();
    let psas = MemoryTicketSystemProvider::default();
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let policies = Arc::new(MemoryPolicyStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let service = DispatchService {
        config: config.clone(),
        destinations: config.clone(),
        alerts,
        policies: policies.clone(),
        systems: Arc::new(psas.clone()),
        tickets: queue.clone(),
        billing_sync: None,
        credentials: None,
        clock: clock.clone(),
        settings: DispatchSettings { api_base: Some("https://vigil.example".into()), ..DispatchSettings::default() },
    };
    Fixture { service, alerts: memory, config, policies, psas, queue, clock, alert, psa }
}

pub(super) async fn fixture() -> Fixture {
    let memory = Arc::new(MemoryAlertStore::default());
    fixture_with(memory.clone(), memory).await
}

impl Fixture {
    pub(super) async fn hit(&self, ids: &[&str]) -> Alert {
        let records = ids.iter().map(|id| (RecordId::parse(id).unwrap(), self.alert.first_seen)).collect();
        self.alerts.record_hits(&AlertHits::of_records(self.alert.clone(), records), Utc::now()).await.unwrap()
    }
    pub(super) async fn dispatch(&self) -> Result<DispatchOutcome, DispatchError> {
        self.service.dispatch(&self.alert.msp_id, &self.alert.id, &self.psa).await
    }
    pub(super) fn system(&self) -> Arc<MemoryTicketSystem> {
        self.psas.system(&self.psa)
    }
    pub(super) async fn delivery(&self) -> Delivery {
        self.alerts.get_delivery(&self.alert.msp_id, &self.alert.id, &self.psa).await.unwrap().unwrap()
    }
    pub(super) async fn stored(&self) -> Alert {
        self.alerts.get_alert(&self.alert.msp_id, &self.alert.id).await.unwrap().unwrap()
    }
    /// Links the fixture's tenant to `company` in `destination`.
    pub(super) async fn link(&self, destination: DestinationId, company: &str) {
        let change = crate::ports::TenantChange::CompanyLink { destination, company: Some(company.to_owned()) };
        self.config.update_tenant(&self.alert.msp_id, &self.alert.tenant_id, &change).await.unwrap();
    }

    pub(super) async fn add_destination(&self, id: &str, change: impl FnOnce(&mut crate::destination::Destination)) -> DestinationId {
        let mut destination = sample_destination(&self.alert.msp_id, id);
        change(&mut destination);
        self.config.put_destination(&destination).await.unwrap();
        destination.id
    }
}

#[tokio::test]
async fn first_dispatch_creates_one_ticket_under_the_linked_company_in_the_routed_place() {
    let f = fixture().await;
    f.add_destination("psa", |d| {
        d.routing.places.insert(Category::ThreatManagement, "security-board".into());
        d.routing.priorities.insert(f.alert.severity, "p2".into());
    })
    .await;
    f.hit(&["a", "b"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
    let tickets = f.system().tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        (tickets[0].company.as_str(), tickets[0].place.as_deref(), tickets[0].priority.as_deref()),
        ("250", Some("security-board"), Some("p2"))
    );
    assert!(tickets[0].description.contains("https://vigil.example/v1/alerts/"), "the ticket links back to the alert");
    assert_eq!(tickets[0].reference, format!("vigil:{}", f.alert.id));
}

#[tokio::test]
async fn a_change_fans_out_to_every_destination_whose_routing_takes_the_alert_and_only_those() {
    let f = fixture().await;
    f.add_destination("mail-only", |d| d.routing.categories = vec![Category::MailFlow]).await;
    f.add_destination("everything", |_| {}).await;
    f.add_destination("switched-off", |d| d.enabled = false).await;
    f.hit(&["a"]).await;
    let body = serde_json::to_string(&AlertChangedMessage::fan_out(f.alert.msp_id.clone(), f.alert.id.clone())).unwrap();
    assert_eq!(f.service.handle(&body).await.unwrap(), DispatchOutcome::FannedOut(2));
    let mut sent: Vec<String> =
        f.queue.drain().iter().map(|b| serde_json::from_str::<AlertChangedMessage>(b).unwrap().destination.unwrap().to_string()).collect();
    sent.sort();
    assert_eq!(sent, ["everything", "psa"]);
}

#[tokio::test]
async fn a_policy_that_names_a_destination_sends_its_alerts_there_only() {
    let f = fixture().await;
    f.add_destination("other", |_| {}).await;
    let mut alert = f.alert.clone();
    alert.detail.destinations = vec![DestinationId::parse("other").unwrap()];
    f.alerts
        .record_hits(&AlertHits::of_records(alert, vec![(RecordId::parse("a").unwrap(), f.alert.first_seen)]), Utc::now())
        .await
        .unwrap();
    assert_eq!(f.service.fan_out(&f.alert.msp_id, &f.alert.id).await.unwrap(), DispatchOutcome::FannedOut(1));
}

#[tokio::test]
async fn one_psa_that_is_down_does_not_keep_another_from_its_ticket() {
    let f = fixture().await;
    let second = f.add_destination("second", |_| {}).await;
    f.link(second.clone(), "S-9").await;
    f.hit(&["a"]).await;
    f.system().fail_next_create(SinkError::Unavailable("503".into()));
    assert_eq!(f.dispatch().await.unwrap_err().class(), ErrorClass::Transient);
    assert!(matches!(f.service.dispatch(&f.alert.msp_id, &f.alert.id, &second).await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.psas.system(&second).tickets()[0].company, "S-9");
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)), "the retry of the first delivery proceeds");
}

#[tokio::test]
async fn new_hits_become_one_note_on_the_open_ticket() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.hit(&["b", "c"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::NoteAdded(_)));
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
    let tickets = f.system().tickets();
    assert_eq!((tickets.len(), tickets[0].notes.len()), (1, 1));
    assert!(tickets[0].notes[0].contains("Hits: 3 (+2"));
}

#[tokio::test]
async fn a_resolved_alert_gets_one_resolution_note_and_its_ticket_is_closed_once() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketClosed(_)));
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
    let ticket = &f.system().tickets()[0];
    assert_eq!(ticket.notes.len(), 1);
    assert!(ticket.notes[0].contains("resolved"));
    assert_eq!(ticket.closed_by.as_deref(), Some("vigil"));
    assert_eq!(f.system().calls(MemoryOperation::Close), 1);
    assert_eq!(f.system().calls(MemoryOperation::HasNote), 0, "no marker search when no note was pending");
}

#[tokio::test]
async fn the_close_uses_the_destinations_closed_status_when_it_names_one() {
    let f = fixture().await;
    f.add_destination("psa", |d| d.routing.closed_status = Some(">Closed - Resolved".into())).await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    f.dispatch().await.unwrap();
    assert_eq!(f.system().tickets()[0].closed_status.as_deref(), Some(">Closed - Resolved"));
}

#[tokio::test]
async fn an_alert_that_resolved_before_its_first_delivery_never_gets_a_ticket() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
    assert!(f.system().tickets().is_empty());
}

#[tokio::test]
async fn a_ticket_closed_by_a_technician_resolves_the_alert_with_the_closer_in_its_history() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let DispatchOutcome::TicketCreated(ticket) = f.dispatch().await.unwrap() else { panic!("ticket expected") };
    f.system().close_by_technician(&ticket.id, "jsmith");
    let report = f.service.read_back_all().await.unwrap();
    assert_eq!((report.checked, report.closed), (1, 1));
    let alert = f.stored().await;
    assert_eq!(alert.status, AlertStatus::Resolved);
    assert!(alert.triage.history.iter().any(|c| c.author == "jsmith" && c.field == "status" && c.to.as_deref() == Some("Resolved")));
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate, "no note and no close on the closed ticket");
    assert!(f.system().tickets()[0].notes.is_empty());
    assert_eq!(f.service.read_back_all().await.unwrap().checked, 0, "a closed ticket is not read again");
}

#[tokio::test]
async fn a_hit_after_a_technician_closed_the_ticket_opens_a_new_ticket_that_names_the_old_one() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let DispatchOutcome::TicketCreated(first) = f.dispatch().await.unwrap() else { panic!("ticket expected") };
    f.system().close_by_technician(&first.id, "jsmith");
    f.service.read_back_all().await.unwrap();
    let reopened = f.hit(&["b"]).await;
    assert_eq!(reopened.status, AlertStatus::New, "new activity reopens the alert");
    let DispatchOutcome::TicketReplaced { earlier, ticket } = f.dispatch().await.unwrap() else { panic!("a new ticket expected") };
    assert_eq!(earlier, first);
    let tickets = f.system().tickets();
    assert_eq!(tickets.len(), 2);
    assert!(tickets[0].notes.is_empty(), "never a note on the closed ticket");
    assert!(tickets[1].description.contains(&format!("{first} was closed")), "{}", tickets[1].description);
    assert_ne!(tickets[0].reference, tickets[1].reference, "each ticket carries its own reference");
    assert_eq!(f.delivery().await.ticket, Some(ticket));
}

#[tokio::test]
async fn a_hit_on_a_ticket_closed_since_the_last_read_back_still_opens_a_new_ticket_instead_of_a_note() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let DispatchOutcome::TicketCreated(first) = f.dispatch().await.unwrap() else { panic!("ticket expected") };
    f.system().close_by_technician(&first.id, "jsmith");
    f.hit(&["b"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketReplaced { .. }));
    let tickets = f.system().tickets();
    assert!(tickets[0].notes.is_empty());
    assert_eq!(tickets[1].company, "250", "the new ticket goes to the tenant's company");
}

#[tokio::test]
async fn a_ticket_deleted_in_the_psa_is_recorded_and_the_next_hit_opens_a_new_one() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let DispatchOutcome::TicketCreated(first) = f.dispatch().await.unwrap() else { panic!("ticket expected") };
    f.system().delete(&first.id);
    f.hit(&["b"]).await;
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::TicketGone(first.clone()), "recorded, not retried forever");
    assert!(f.stored().await.triage.history.iter().any(|c| c.field == "ticket" && c.to.as_deref().is_some_and(|t| t.contains("gone"))));
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate, "the gone ticket's hits are not re-announced");
    f.hit(&["c"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketReplaced { .. }));
    assert_eq!(f.system().live_tickets().len(), 1);
}

#[tokio::test]
async fn the_read_back_records_a_gone_ticket_once() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let DispatchOutcome::TicketCreated(first) = f.dispatch().await.unwrap() else { panic!("ticket expected") };
    f.system().delete(&first.id);
    assert_eq!(f.service.read_back_all().await.unwrap().gone, 1);
    assert_eq!(f.service.read_back_all().await.unwrap().checked, 0);
    assert_eq!(f.stored().await.status, AlertStatus::New, "a gone ticket does not resolve the alert");
}

#[tokio::test]
async fn a_ticket_closed_in_one_psa_closes_the_alerts_ticket_in_the_other() {
    let f = fixture().await;
    let second = f.add_destination("second", |_| {}).await;
    f.link(second.clone(), "S-9").await;
    f.hit(&["a"]).await;
    let DispatchOutcome::TicketCreated(first) = f.dispatch().await.unwrap() else { panic!("ticket expected") };
    f.service.dispatch(&f.alert.msp_id, &f.alert.id, &second).await.unwrap();
    f.system().close_by_technician(&first.id, "jsmith");
    f.service.read_back_all().await.unwrap();
    let fanned: Vec<String> = f.queue.drain();
    assert_eq!(fanned.len(), 2, "the resolution is announced to every destination: {fanned:?}");
    assert!(matches!(f.service.dispatch(&f.alert.msp_id, &f.alert.id, &second).await.unwrap(), DispatchOutcome::TicketClosed(_)));
    let other = &f.psas.system(&second).tickets()[0];
    assert!(other.notes[0].contains("jsmith resolved the alert"), "{}", other.notes[0]);
}

#[tokio::test]
async fn an_unlinked_tenant_is_held_by_default_and_delivered_once_linked() {
    let f = fixture().await;
    let held = f.add_destination("held", |_| {}).await;
    f.hit(&["a"]).await;
    assert_eq!(f.service.dispatch(&f.alert.msp_id, &f.alert.id, &held).await.unwrap(), DispatchOutcome::HeldUntilLinked);
    assert_eq!(f.alerts.list_held_deliveries(&f.alert.msp_id, &held).await.unwrap(), vec![f.alert.id.clone()]);
    f.link(held.clone(), "H-1").await;
    assert!(matches!(f.service.dispatch(&f.alert.msp_id, &f.alert.id, &held).await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert!(f.alerts.list_held_deliveries(&f.alert.msp_id, &held).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unlinked_tenant_goes_to_the_catch_all_company_when_the_destination_has_one() {
    let f = fixture().await;
    let catch_all = f.add_destination("catch", |d| d.routing.unlinked_tenant = UnlinkedTenant::CatchAll { company: "19297".into() }).await;
    f.hit(&["a"]).await;
    assert!(matches!(f.service.dispatch(&f.alert.msp_id, &f.alert.id, &catch_all).await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.psas.system(&catch_all).tickets()[0].company, "19297");
}

#[tokio::test]
async fn a_lost_create_response_is_recovered_by_the_reference_and_never_duplicates_the_ticket() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.system().fail_next(MemoryOperation::Create, MemoryFailure::AfterCommit(SinkError::Unavailable("response lost".into())));
    assert!(f.dispatch().await.is_err());
    assert_eq!(f.system().tickets().len(), 1, "the ticket exists though the response was lost");
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketRecovered(_)));
    assert_eq!(f.system().tickets().len(), 1);
}

#[tokio::test]
async fn a_note_committed_then_failed_is_found_by_its_marker_and_not_added_twice() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.hit(&["b"]).await;
    f.system().fail_next(MemoryOperation::AddNote, MemoryFailure::AfterCommit(SinkError::Unavailable("response lost".into())));
    assert!(f.dispatch().await.is_err());
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
    assert_eq!(f.system().tickets()[0].notes.len(), 1);
}

#[tokio::test]
async fn a_close_committed_then_failed_is_repeated_harmlessly_and_the_note_is_not_doubled() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    f.system().fail_next(MemoryOperation::Close, MemoryFailure::AfterCommit(SinkError::Unavailable("response lost".into())));
    assert!(f.dispatch().await.is_err());
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketClosed(_)));
    let ticket = &f.system().tickets()[0];
    assert_eq!((ticket.notes.len(), ticket.closed_by.as_deref()), (1, Some("vigil")));
    assert!(f.delivery().await.closed);
}

#[tokio::test]
async fn a_throttled_psa_is_transient_and_keeps_its_retry_after() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.system().fail_next_create(SinkError::Throttled { retry_after: Some(std::time::Duration::from_secs(17)) });
    let error = f.dispatch().await.unwrap_err();
    assert_eq!((error.class(), error.retry_after()), (ErrorClass::Transient, Some(std::time::Duration::from_secs(17))));
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)), "the lease was released");
}

/// An alert store whose delivery writes fail while `refuses` says so (it sees each write):
/// a process that dies, a DynamoDB hiccup.
pub(super) struct FailingWrites {
    inner: Arc<MemoryAlertStore>,
    refuses: std::sync::Mutex<WriteRule>,
}

/// Whether a delivery write fails.
type WriteRule = Box<dyn FnMut(&Delivery) -> bool + Send>;

impl FailingWrites {
    pub(super) fn new(inner: Arc<MemoryAlertStore>) -> Arc<Self> {
        Arc::new(Self { inner, refuses: std::sync::Mutex::new(Box::new(|_| false)) })
    }
    pub(super) fn refuse(&self, rule: impl FnMut(&Delivery) -> bool + Send + 'static) {
        *self.refuses.lock().unwrap() = Box::new(rule);
    }
}

#[async_trait::async_trait]
impl AlertStore for FailingWrites {
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
    async fn alerts_by_change(
        &self,
        msp_id: &MspId,
        query: &crate::changes::ChangeQuery,
    ) -> Result<crate::changes::ChangePage, StoreError> {
        self.inner.alerts_by_change(msp_id, query).await
    }
    async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError> {
        self.inner.take_daily_ticket(alert, day, limit).await
    }
    async fn take_daily_message(
        &self,
        alert: &Alert,
        destination: &DestinationId,
        day: chrono::NaiveDate,
        limit: u32,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        self.inner.take_daily_message(alert, destination, day, limit, message_id).await
    }
    async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: &DestinationId) -> Result<Option<Delivery>, StoreError> {
        self.inner.get_delivery(msp_id, alert_id, destination).await
    }
    async fn list_deliveries(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_deliveries(msp_id, alert_id).await
    }
    async fn list_open_tickets(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<(AlertId, TicketRef)>, StoreError> {
        self.inner.list_open_tickets(msp_id, destination).await
    }
    async fn list_held_deliveries(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<AlertId>, StoreError> {
        self.inner.list_held_deliveries(msp_id, destination).await
    }
    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        if (self.refuses.lock().unwrap())(delivery) {
            return Err(StoreError::Unavailable("injected: the write failed".into()));
        }
        self.inner.save_delivery(delivery).await
    }
}

#[tokio::test]
async fn a_crash_between_ticket_creation_and_state_write_never_duplicates_the_ticket() {
    let memory = Arc::new(MemoryAlertStore::default());
    let crashing = FailingWrites::new(memory.clone());
    // The process dies at the write that records the created ticket: nothing is written after.
    let mut down = false;
    crashing.refuse(move |delivery| {
        down |= delivery.ticket.is_some();
        down
    });
    let f = fixture_with(crashing.clone(), memory).await;
    f.hit(&["a"]).await;
    assert!(f.dispatch().await.is_err(), "the state write fails after the ticket exists");
    assert_eq!(f.system().tickets().len(), 1);
    crashing.refuse(|_| false);
    // The crashed invocation did not release its lease: another invocation waits it out.
    assert!(matches!(f.dispatch().await.unwrap_err(), DispatchError::Busy(_)), "the lease is held for the whole delivery");
    f.clock.advance(Duration::seconds(61));
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketRecovered(_)));
    assert_eq!(f.system().tickets().len(), 1);
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
}

#[tokio::test]
async fn a_held_lease_makes_a_concurrent_dispatch_retry_later() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let mut leased = Delivery::new(f.alert.msp_id.clone(), f.alert.id.clone(), f.psa.clone());
    leased.version = 1;
    leased.lease_until = Some(f.clock.now() + Duration::seconds(30));
    f.alerts.save_delivery(&leased).await.unwrap();
    assert!(matches!(f.dispatch().await.unwrap_err(), DispatchError::Busy(_)));
    assert!(f.system().tickets().is_empty());
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
        outcomes.push(f.service.dispatch(&alert.msp_id, &alert.id, &f.psa).await.unwrap());
    }
    assert!(matches!(outcomes[0], DispatchOutcome::TicketCreated(_)));
    assert!(matches!(outcomes[1], DispatchOutcome::TicketCreated(_)));
    assert_eq!(outcomes[2], DispatchOutcome::HeldByDailyLimit);
    let first = make(0);
    f.alerts
        .record_hits(&AlertHits::of_records(first.clone(), vec![(RecordId::parse("r9").unwrap(), first.first_seen)]), Utc::now())
        .await
        .unwrap();
    assert!(matches!(f.service.dispatch(&first.msp_id, &first.id, &f.psa).await.unwrap(), DispatchOutcome::NoteAdded(_)));
}

#[tokio::test]
async fn a_suppression_created_after_an_alert_keeps_it_from_its_first_ticket_but_not_an_existing_one() {
    let f = fixture().await;
    let ticketed = f.hit(&["r1"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)));
    let rule = Suppression {
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
    assert_eq!(f.service.dispatch(&later.msp_id, &later.id, &f.psa).await.unwrap(), DispatchOutcome::Suppressed);
    f.hit(&["r3"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::NoteAdded(_)), "a ticketed alert keeps its ticket up to date");
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
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::Shadow);
    assert!(f.system().tickets().is_empty());
}

#[tokio::test]
async fn a_deleted_destination_drops_its_pending_deliveries_without_error() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.config.delete_destination(&f.alert.msp_id, &f.psa).await.unwrap();
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::DestinationUnavailable);
}

#[tokio::test]
async fn a_malformed_message_is_invalid_and_a_ticket_callback_reads_that_ticket_back() {
    let f = fixture().await;
    assert_eq!(f.service.handle("{\"msp_id\": 3}").await.unwrap_err().class(), ErrorClass::Invalid);
    f.hit(&["a"]).await;
    let DispatchOutcome::TicketCreated(ticket) = f.dispatch().await.unwrap() else { panic!("ticket expected") };
    f.system().close_by_technician(&ticket.id, "jsmith");
    let body = serde_json::json!({"msp_id": f.alert.msp_id, "destination": "psa", "ticket_id": ticket.id}).to_string();
    let DispatchOutcome::StatesRead(report) = f.service.handle(&body).await.unwrap() else { panic!("a read-back expected") };
    assert_eq!((report.checked, report.closed), (1, 1));
    assert_eq!(f.stored().await.status, AlertStatus::Resolved);
}

#[tokio::test]
async fn a_delivery_over_its_request_share_is_deferred_as_a_new_message_and_its_create_is_not_an_attempt() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    let wait = std::time::Duration::from_secs(40);
    f.system().fail_next(MemoryOperation::Create, MemoryFailure::Before(SinkError::OverBudget { retry_after: wait }));
    let body = serde_json::to_string(&AlertChangedMessage {
        msp_id: f.alert.msp_id.clone(),
        alert_id: f.alert.id.clone(),
        destination: Some(f.psa.clone()),
    })
    .unwrap();
    let DispatchOutcome::Deferred(delay) = f.service.handle(&body).await.unwrap() else { panic!("deferred expected") };
    assert!(delay >= wait && delay < wait + DEFER_SPREAD, "{delay:?}");
    assert_eq!(f.queue.drain_delayed(), vec![(body.clone(), delay)], "the same delivery, re-sent with the delay");
    assert!(!f.delivery().await.create_attempted, "the refused create was never sent: no find before the next try");
    assert!(matches!(f.service.handle(&body).await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.system().calls(MemoryOperation::Find), 0);
}

#[tokio::test]
async fn a_note_over_the_request_share_is_not_left_pending() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.hit(&["b"]).await;
    f.system().fail_next(
        MemoryOperation::AddNote,
        MemoryFailure::Before(SinkError::OverBudget { retry_after: std::time::Duration::from_secs(5) }),
    );
    assert!(f.dispatch().await.is_err());
    assert_eq!(f.delivery().await.pending_note_hits, None, "the refused note was never sent");
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::NoteAdded(_)));
    assert_eq!(f.system().calls(MemoryOperation::HasNote), 0, "no marker search for a note that was never sent");
}

#[tokio::test]
async fn a_ticket_created_just_before_a_crash_is_found_and_closed_when_the_alert_resolved_meanwhile() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.system().fail_next(MemoryOperation::Create, MemoryFailure::AfterCommit(SinkError::Unavailable("response lost".into())));
    assert!(f.dispatch().await.is_err());
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketRecovered(_)));
    let tickets = f.system().tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].closed_by.as_deref(), Some("vigil"), "the recovered ticket of a resolved alert is closed");
}

#[tokio::test]
async fn a_delivery_with_nothing_to_do_is_neither_leased_nor_written() {
    let f = fixture().await;
    // Resolved before it ever needed a ticket: no delivery record at all.
    f.hit(&["a"]).await;
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
    assert!(f.alerts.get_delivery(&f.alert.msp_id, &f.alert.id, &f.psa).await.unwrap().is_none());
    // An open ticket that already describes every hit.
    let mut other = f.alert.clone();
    other.id = AlertId::derive(&["other"]);
    f.alerts
        .record_hits(&AlertHits::of_records(other.clone(), vec![(RecordId::parse("b").unwrap(), other.first_seen)]), Utc::now())
        .await
        .unwrap();
    f.service.dispatch(&other.msp_id, &other.id, &f.psa).await.unwrap();
    let version = |d: Option<Delivery>| d.map(|d| d.version);
    let before = version(f.alerts.get_delivery(&other.msp_id, &other.id, &f.psa).await.unwrap());
    assert_eq!(f.service.dispatch(&other.msp_id, &other.id, &f.psa).await.unwrap(), DispatchOutcome::UpToDate);
    assert_eq!(version(f.alerts.get_delivery(&other.msp_id, &other.id, &f.psa).await.unwrap()), before, "not written again");
    // Resolved, noted and closed.
    f.alerts.resolve_alert(&other.msp_id, &other.id, Utc::now()).await.unwrap();
    f.service.dispatch(&other.msp_id, &other.id, &f.psa).await.unwrap();
    let closed = version(f.alerts.get_delivery(&other.msp_id, &other.id, &f.psa).await.unwrap());
    assert_eq!(f.service.dispatch(&other.msp_id, &other.id, &f.psa).await.unwrap(), DispatchOutcome::UpToDate);
    assert_eq!(version(f.alerts.get_delivery(&other.msp_id, &other.id, &f.psa).await.unwrap()), closed, "not written again");
}

#[tokio::test]
async fn a_suppression_created_after_an_unrecorded_create_does_not_keep_the_ticket_from_being_recorded() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.system().fail_next(MemoryOperation::Create, MemoryFailure::AfterCommit(SinkError::Unavailable("response lost".into())));
    assert!(f.dispatch().await.is_err());
    let rule = Suppression {
        id: "late".into(),
        msp_id: f.alert.msp_id.clone(),
        tenant_id: None,
        user: None,
        policy_id: Some(f.alert.policy_id.clone()),
        conditions: None,
        expires_at: None,
        reason: "added after the ticket".into(),
        author: "dana".into(),
        created_at: Utc::now(),
    };
    f.policies.put_suppression(&rule).await.unwrap();
    assert!(
        matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketRecovered(_)),
        "the ticket exists: it is recorded, not suppressed"
    );
}

#[tokio::test]
async fn an_alert_that_resolved_after_a_create_that_never_reached_the_psa_gets_no_ticket() {
    let f = fixture().await;
    f.hit(&["a"]).await;
    f.system().fail_next_create(SinkError::Unavailable("503".into()));
    assert!(f.dispatch().await.is_err());
    f.alerts.resolve_alert(&f.alert.msp_id, &f.alert.id, Utc::now()).await.unwrap();
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::UpToDate);
    assert!(f.system().tickets().is_empty(), "looked for, not found, and not created for a resolved alert");
}

#[tokio::test]
async fn a_write_that_fails_mid_delivery_still_releases_the_lease_so_the_retry_proceeds_at_once() {
    let memory = Arc::new(MemoryAlertStore::default());
    let flaky = FailingWrites::new(memory.clone());
    let f = fixture_with(flaky.clone(), memory).await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.hit(&["b"]).await;
    // The lease write succeeds, the note's intent write fails: the lease must still be released.
    let mut writes = 0;
    flaky.refuse(move |_| {
        writes += 1;
        writes == 2
    });
    assert!(f.dispatch().await.is_err());
    assert_eq!(f.delivery().await.lease_until, None, "the lease was released after the failed write");
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::NoteAdded(_)), "the retry is not held back by a stale lease");
}

#[tokio::test]
async fn the_read_back_adds_up_every_destination_and_skips_disabled_ones() {
    let f = fixture().await;
    let second = f.add_destination("second", |_| {}).await;
    f.link(second.clone(), "S-9").await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.service.dispatch(&f.alert.msp_id, &f.alert.id, &second).await.unwrap();
    assert_eq!(f.service.read_back_all().await.unwrap().checked, 2, "one open ticket in each destination");
    f.add_destination("second", |d| d.enabled = false).await;
    assert_eq!(f.service.read_back_all().await.unwrap().checked, 1, "a disabled destination is not read");
    assert_eq!(f.psas.system(&second).calls(MemoryOperation::States), 1);
}

#[tokio::test]
async fn one_psa_that_cannot_be_read_back_is_counted_and_the_others_are_still_read() {
    let f = fixture().await;
    let second = f.add_destination("second", |_| {}).await;
    f.link(second.clone(), "S-9").await;
    f.hit(&["a"]).await;
    f.dispatch().await.unwrap();
    f.service.dispatch(&f.alert.msp_id, &f.alert.id, &second).await.unwrap();
    f.psas.system(&second).fail_next(MemoryOperation::States, MemoryFailure::Before(SinkError::Unavailable("503".into())));
    let report = f.service.read_back_all().await.unwrap();
    assert_eq!((report.checked, report.failed_destinations), (1, 1), "{report:?}");
}

#[tokio::test]
async fn an_alert_about_the_msps_own_access_goes_to_the_msps_own_company_where_the_destination_names_one() {
    let mut f = fixture().await;
    f.alert.detail.about_msp_access = true;
    f.add_destination("psa", |d| d.routing.own_company = Some("9000".into())).await;
    f.hit(&["a"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.system().tickets()[0].company, "9000");
}

#[tokio::test]
async fn without_an_own_company_an_alert_about_the_msps_access_goes_to_the_customers_company() {
    let mut f = fixture().await;
    f.alert.detail.about_msp_access = true;
    f.hit(&["a"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.system().tickets()[0].company, "250");
}

#[tokio::test]
async fn the_own_company_never_takes_an_alert_about_activity_in_a_customer_tenant() {
    let f = fixture().await;
    f.add_destination("psa", |d| d.routing.own_company = Some("9000".into())).await;
    f.hit(&["a"]).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.system().tickets()[0].company, "250", "the customer's own company");
}

#[tokio::test]
async fn an_alert_about_access_to_a_customer_vigil_does_not_monitor_uses_the_catch_all_or_waits_and_any_other_is_refused() {
    let mut f = fixture().await;
    f.alert.tenant_id = crate::contract::unique_tenant();
    f.alert.detail.about_msp_access = true;
    f.hit(&["a"]).await;
    assert_eq!(f.dispatch().await.unwrap(), DispatchOutcome::HeldUntilLinked, "no link, no catch-all, no own company");
    f.add_destination("psa", |d| d.routing.unlinked_tenant = UnlinkedTenant::CatchAll { company: "777".into() }).await;
    assert!(matches!(f.dispatch().await.unwrap(), DispatchOutcome::TicketCreated(_)));
    assert_eq!(f.system().tickets()[0].company, "777");

    let mut g = fixture().await;
    g.alert.tenant_id = crate::contract::unique_tenant();
    g.hit(&["a"]).await;
    assert!(matches!(g.dispatch().await, Err(DispatchError::UnknownTenant(_))), "a tenant alert of an unregistered tenant");
}

#[tokio::test]
async fn a_billing_sync_job_reaching_a_dispatcher_without_the_billing_sync_is_dead_lettered_not_retried() {
    let f = fixture().await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    let job = crate::messages::BillingSyncJob {
        msp_id: f.alert.msp_id.clone(),
        tenant_id: None,
        billing_period: crate::billing::sync::SyncSchedule::Daily.period_on(day).unwrap(),
        day,
    };
    let error = f.service.handle(&serde_json::to_string(&job).unwrap()).await.unwrap_err();
    assert!(matches!(error, DispatchError::BillingSyncUnavailable), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
}
