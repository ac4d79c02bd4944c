//! Specifications of an alert's tickets with their links, on the in-memory stores and the
//! production provider (whose links need no request).

use super::*;
use crate::access::{Principal, Role};
use crate::alert::{AlertHits, Category};
use crate::clock::SystemClock;
use crate::connectors::destination_url::DestinationPolicy;
use crate::connectors::psa::PsaProvider;
use crate::contract::{sample_alert_for, unique_tenant};
use crate::destination::{DestinationSettings, HaloPsaSettings, Routing};
use crate::ids::{MspId, PrincipalId, RecordId};
use crate::memory::*;
use crate::ports::{AlertStore, DestinationStore};
use crate::services::admin::AdminService;
use crate::ticket::{EarlierTicket, TicketRef, TicketState};
use chrono::Utc;
use std::sync::Arc;

struct Harness {
    service: DestinationsService,
    alerts: Arc<MemoryAlertStore>,
    config: Arc<MemoryConfigStore>,
}

fn harness() -> Harness {
    let secrets = Arc::new(MemorySecretStore::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let config = Arc::new(MemoryConfigStore::default());
    let admin = Arc::new(AdminService {
        config: config.clone(),
        alerts: alerts.clone(),
        ingest: Arc::new(MemoryIngestState::default()),
        secrets: secrets.clone(),
        clock: Arc::new(SystemClock),
        audit: crate::services::access::AuditTrail { log: Arc::new(MemoryConfigStore::default()), clock: Arc::new(SystemClock) },
    });
    let policy = DestinationPolicy::STRICT;
    let systems = Arc::new(PsaProvider::new(secrets, policy, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock)));
    let service = DestinationsService {
        admin,
        destinations: config.clone(),
        systems,
        tickets: Arc::new(MemoryQueue::default()),
        policy,
        callback_base: None,
        billing: None,
    };
    Harness { service, alerts, config }
}

fn acme() -> MspId {
    MspId::parse("acme").unwrap()
}

fn did(raw: &str) -> DestinationId {
    DestinationId::parse(raw).unwrap()
}

async fn put_destination(h: &Harness, msp: &MspId, id: &str, name: &str, settings: DestinationSettings) {
    let now = Utc::now();
    let destination = Destination {
        msp_id: msp.clone(),
        id: did(id),
        name: name.into(),
        enabled: true,
        settings,
        routing: Routing::default(),
        requests_per_hour: None,
        credentials_set: true,
        created_at: now,
        updated_at: now,
    };
    h.config.put_destination(&destination).await.unwrap();
}

fn connectwise() -> DestinationSettings {
    DestinationSettings::ConnectWise {
        api_root: "https://api-na.myconnectwise.net/v4_6_release/apis/3.0".into(),
        ticket_type: None,
        source: None,
    }
}

/// An alert of acme with a delivery to each of `destinations` (ticket `100n`, open).
async fn alert_delivered_to(h: &Harness, destinations: &[&str]) -> AlertId {
    let alert = sample_alert_for(&acme(), &unique_tenant(), Utc::now());
    let hits = AlertHits::of_records(alert.clone(), vec![(RecordId::parse("r1").unwrap(), Utc::now())]);
    h.alerts.record_hits(&hits, Utc::now()).await.unwrap();
    for (n, destination) in destinations.iter().enumerate() {
        let mut delivery = Delivery::new(acme(), alert.id.clone(), did(destination));
        delivery.ticket = Some(TicketRef::new(format!("100{n}")));
        delivery.psa_state = Some(TicketState::Open { status: "New".into() });
        delivery.psa_checked_at = Some(Utc::now());
        delivery.earlier_tickets = vec![EarlierTicket { ticket: TicketRef::new("900"), ended: "closed".into(), at: Utc::now() }];
        delivery.version = 1;
        h.alerts.save_delivery(&delivery).await.unwrap();
    }
    alert.id
}

#[tokio::test]
async fn each_delivery_comes_with_its_destination_its_psa_state_and_links_to_its_tickets() {
    let h = harness();
    put_destination(&h, &acme(), "cw", "ConnectWise", connectwise()).await;
    let halo = HaloPsaSettings { url: "https://msp.halopsa.com".into(), tenant: None, ticket_type: None, note_outcome: None };
    put_destination(&h, &acme(), "halo", "Halo", DestinationSettings::HaloPsa(halo)).await;
    let alert_id = alert_delivered_to(&h, &["cw", "halo"]).await;
    let (detail, tickets) = h.service.alert_tickets(&Access::operator(&acme()), &alert_id).await.unwrap();
    assert_eq!(detail.alert.id, alert_id);
    assert_eq!(tickets.len(), 2);
    let cw = tickets.iter().find(|t| t.delivery.destination == did("cw")).unwrap();
    assert_eq!(cw.destination, Some(("ConnectWise".into(), DestinationKind::ConnectWise)));
    assert_eq!(cw.delivery.psa_state, Some(TicketState::Open { status: "New".into() }));
    assert!(cw.delivery.psa_checked_at.is_some());
    let cw_url = cw.ticket_url.as_ref().map(Url::as_str).unwrap();
    assert!(cw_url.starts_with("https://na.myconnectwise.net/") && cw_url.ends_with("recid=1000"), "{cw_url}");
    assert_eq!(cw.earlier_urls.len(), 1);
    assert!(cw.earlier_urls[0].as_ref().is_some_and(|u| u.as_str().ends_with("recid=900")));
    let halo = tickets.iter().find(|t| t.delivery.destination == did("halo")).unwrap();
    assert_eq!(halo.ticket_url.as_ref().map(Url::as_str), Some("https://msp.halopsa.com/tickets?id=1001"));
}

#[tokio::test]
async fn a_deleted_destination_keeps_its_ticket_ids_without_name_or_link() {
    let h = harness();
    let alert_id = alert_delivered_to(&h, &["gone"]).await;
    // Another MSP's destination of the same id is never used for acme's delivery.
    put_destination(&h, &MspId::parse("rival").unwrap(), "gone", "Rival's PSA", connectwise()).await;
    let (_, tickets) = h.service.alert_tickets(&Access::operator(&acme()), &alert_id).await.unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].delivery.ticket, Some(TicketRef::new("1000")));
    assert_eq!(tickets[0].destination, None);
    assert_eq!(tickets[0].ticket_url, None);
    assert_eq!(tickets[0].earlier_urls, vec![None]);
}

#[tokio::test]
async fn an_alert_the_caller_may_not_see_shows_no_tickets() {
    let h = harness();
    put_destination(&h, &acme(), "cw", "ConnectWise", connectwise()).await;
    let alert_id = alert_delivered_to(&h, &["cw"]).await;
    let now = Utc::now();
    let limited = Principal {
        msp_id: acme(),
        principal_id: PrincipalId::parse("p-1").unwrap(),
        name: "Ann".into(),
        email: None,
        role: Role::Analyst,
        categories: Some([Category::Permissions].into()),
        scopes: Default::default(),
        created_at: now,
        updated_at: now,
    };
    assert!(matches!(h.service.alert_tickets(&Access::of(&limited), &alert_id).await, Err(AdminError::NotFound(_))));
    let rival = Access::operator(&MspId::parse("rival").unwrap());
    assert!(matches!(h.service.alert_tickets(&rival, &alert_id).await, Err(AdminError::NotFound(_))));
    let sees = Access::of(&Principal { categories: Some([Category::ThreatManagement].into()), ..limited });
    assert_eq!(h.service.alert_tickets(&sees, &alert_id).await.unwrap().1.len(), 1);
}
