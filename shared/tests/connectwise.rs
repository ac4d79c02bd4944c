//! ConnectWise Manage as a [`TicketSystem`] against the project's ConnectWise simulator, started
//! on `127.0.0.1` per test: the shared ticket-port contract, the contact link by e-mail,
//! per-board closed statuses, batched state reads, lookups, the destination check, the request
//! gate, and how failures are classified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use vigil::alert::{Category, Severity};
use vigil::clock::SystemClock;
use vigil::connectors::connectwise::ConnectWiseClient;
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::connectors::psa::PsaProvider;
use vigil::contract::sample_alert;
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, LEGACY_DESTINATION_ID, Routing};
use vigil::error::{Classified, ErrorClass, SinkError};
use vigil::ids::{DestinationId, MspId};
use vigil::memory::{MemoryRequestBudget, MemorySecretStore};
use vigil::ports::{Lookup, NewTicket, RequestGate, SecretName, SecretStore, SinkSetupError, TicketSystem, TicketSystemProvider};
use vigil::render::render_ticket;
use vigil::secret::SecretString;
use vigil::ticket::{TicketNote, TicketRef, TicketState};
use vigil::ticket_contract::{PsaHarness, ticket_system_contract};
use vigil_simulators::connectwise::{self as cw_sim, ConnectWiseSim, ConnectWiseSimHandle, FailureMode, SimOperation};

/// The simulator listens on 127.0.0.1 over http: the local stack's opt-in.
const LOCAL: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;
/// Seeded in the simulator: Contoso, with the contact Alice Anders `alice@contoso.com` (id 1).
const CONTOSO: &str = "250";
const ALICE: i64 = 1;
/// Seeded boards: 1 Service Desk (closed: 99), 2 Security Alerts (closed: 19, 20), 7 Vigil Alerts (closed: 79).
const VIGIL_BOARD: &str = "7";
const SECURITY_BOARD: &str = "2";

fn local_http() -> reqwest::Client {
    destination_http_client(LOCAL).unwrap()
}

async fn simulator() -> ConnectWiseSimHandle {
    ConnectWiseSim::start(cw_sim::ConnectWiseCredentials::sample()).await.unwrap()
}

fn destination(sim: &ConnectWiseSimHandle, routing: Routing) -> Destination {
    Destination {
        msp_id: MspId::parse("acme").unwrap(),
        id: DestinationId::parse("cw").unwrap(),
        name: "ConnectWise".into(),
        enabled: true,
        settings: DestinationSettings::ConnectWise { api_root: sim.api_root(), ticket_type: None, source: None },
        routing,
        requests_per_hour: None,
        credentials_set: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn routed_to_vigil_board() -> Routing {
    Routing { default_place: Some(VIGIL_BOARD.into()), ..Routing::default() }
}

fn credentials(sim: &ConnectWiseSimHandle) -> DestinationCredentials {
    let keys = sim.credentials();
    DestinationCredentials::ConnectWise {
        company_id: keys.company_id,
        public_key: keys.public_key,
        private_key: SecretString::new(keys.private_key),
        client_id: keys.client_id,
    }
}

fn client_for(sim: &ConnectWiseSimHandle, destination: &Destination, gate: RequestGate) -> Arc<ConnectWiseClient> {
    Arc::new(ConnectWiseClient::for_destination(local_http(), destination, credentials(sim), gate, LOCAL).unwrap())
}

async fn connectwise() -> (ConnectWiseSimHandle, Arc<ConnectWiseClient>) {
    let sim = simulator().await;
    let client = client_for(&sim, &destination(&sim, routed_to_vigil_board()), RequestGate::open());
    (sim, client)
}

/// A ticket for Contoso about `group_key` (its affected user when it is an address).
fn new_ticket(reference: &str, group_key: &str, place: Option<&str>) -> NewTicket {
    let mut alert = sample_alert(Utc::now());
    alert.severity = Severity::High;
    alert.group_key = group_key.into();
    NewTicket {
        content: render_ticket(&alert, None, None),
        reference: reference.into(),
        company: CONTOSO.into(),
        place: place.map(str::to_owned),
        priority: Some("8".into()),
    }
}

fn stored(sim: &ConnectWiseSimHandle, ticket: &TicketRef) -> serde_json::Value {
    sim.tickets().into_iter().find(|t| t.id.to_string() == ticket.id).expect("the simulator holds the ticket").body
}

fn sim_id(ticket: &TicketRef) -> i64 {
    ticket.id.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The ticket-port contract
// ---------------------------------------------------------------------------------------------

struct ConnectWiseHarness {
    sim: ConnectWiseSimHandle,
    client: Arc<ConnectWiseClient>,
}

#[async_trait]
impl PsaHarness for ConnectWiseHarness {
    fn system(&self) -> Arc<dyn TicketSystem> {
        self.client.clone()
    }
    fn company(&self) -> String {
        CONTOSO.into()
    }
    fn place(&self) -> Option<String> {
        Some(VIGIL_BOARD.into())
    }
    async fn lose_next_create_response(&self) {
        self.sim.fail_next(SimOperation::CreateTicket, FailureMode::AfterCommit(500), 1);
    }
    async fn throttle_next(&self) {
        self.sim.fail_next(SimOperation::Any, FailureMode::Throttle, 1);
    }
    async fn close_as_technician(&self, ticket: &TicketRef, by: &str) {
        self.sim.close_ticket(sim_id(ticket), by, None).unwrap();
    }
    async fn delete(&self, ticket: &TicketRef) {
        self.sim.delete_ticket(sim_id(ticket), "jsmith").unwrap();
    }
    async fn ticket_count(&self) -> usize {
        self.sim.tickets().len()
    }
    async fn notes(&self, ticket: &TicketRef) -> Vec<String> {
        let Some(found) = self.sim.tickets().into_iter().find(|t| t.id.to_string() == ticket.id) else { return Vec::new() };
        found.notes.iter().filter_map(|n| n["text"].as_str().map(str::to_owned)).collect()
    }
}

#[tokio::test]
async fn the_connectwise_connector_honours_the_ticket_system_contract() {
    let (sim, client) = connectwise().await;
    ticket_system_contract(&ConnectWiseHarness { sim, client }).await;
}

// ---------------------------------------------------------------------------------------------
// Create: the body ConnectWise stores, and the contact link
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_created_ticket_carries_its_reference_routing_and_the_rendered_text_within_connectwise_limits() {
    let (sim, client) = connectwise().await;
    let ticket = new_ticket("vigil:body", "alice@contoso.com", Some(VIGIL_BOARD));

    let created = client.create_ticket(&ticket).await.unwrap();

    let body = stored(&sim, &created);
    assert_eq!(body["externalXRef"], "vigil:body");
    assert_eq!(body["company"]["id"], 250);
    assert_eq!(body["board"]["id"], 7);
    assert_eq!(body["priority"]["id"], 8);
    assert_eq!(body["severity"], "High");
    assert_eq!(body["processNotifications"], false);
    assert_eq!(body["status"]["id"], 71, "the board's default status");
    assert!(body["summary"].as_str().unwrap().encode_utf16().count() <= 100);
    assert!(body["initialDescription"].as_str().unwrap().contains("ForwardTo"));
}

#[tokio::test]
async fn a_ticket_is_linked_to_the_company_contact_with_the_affected_users_address() {
    let (sim, client) = connectwise().await;

    let alices = client.create_ticket(&new_ticket("vigil:alice", "alice@contoso.com", None)).await.unwrap();
    assert_eq!(stored(&sim, &alices)["contact"]["id"], ALICE);

    let carol = sim.add_contact(250, "Carol", "Chen", "carol@contoso.com");
    let carols = client.create_ticket(&new_ticket("vigil:carol", "carol@contoso.com", None)).await.unwrap();
    assert_eq!(stored(&sim, &carols)["contact"]["id"], carol);

    for (reference, group_key) in [("vigil:bob", "bob@fabrikam.com"), ("vigil:nobody", "nobody@contoso.com"), ("vigil:key", "CONTOSO\\x")] {
        let ticket = client.create_ticket(&new_ticket(reference, group_key, None)).await.unwrap();
        assert!(
            stored(&sim, &ticket).get("contact").is_none(),
            "{group_key}: no contact of this company has the address, so ConnectWise uses the company's default"
        );
    }
}

#[tokio::test]
async fn a_contact_lookup_the_api_member_may_not_make_still_files_the_ticket_under_the_default_contact() {
    let (sim, client) = connectwise().await;
    sim.fail_next(SimOperation::Lookup, FailureMode::Status(403), 1);

    let ticket = client.create_ticket(&new_ticket("vigil:no-contacts", "alice@contoso.com", None)).await.unwrap();

    assert!(stored(&sim, &ticket).get("contact").is_none());
    sim.fail_next(SimOperation::Lookup, FailureMode::Status(503), 1);
    let error = client.create_ticket(&new_ticket("vigil:later", "alice@contoso.com", None)).await.unwrap_err();
    assert!(matches!(error, SinkError::Unavailable(_)), "an outage is retried, not skipped: {error:?}");
    assert_eq!(sim.tickets().len(), 1);
}

#[tokio::test]
async fn a_company_that_is_not_a_connectwise_id_is_refused_before_anything_is_sent() {
    let (sim, client) = connectwise().await;
    let mut ticket = new_ticket("vigil:x", "alice@contoso.com", None);
    ticket.company = "Contoso".into();
    let before = sim.request_count();

    let error = client.create_ticket(&ticket).await.unwrap_err();

    assert!(matches!(error, SinkError::Invalid(_)), "{error:?}");
    assert_eq!(sim.request_count(), before);
}

#[tokio::test]
async fn a_server_error_on_create_is_unavailable_and_creates_nothing() {
    let (sim, client) = connectwise().await;
    sim.fail_next(SimOperation::CreateTicket, FailureMode::Status(500), 1);

    let error = client.create_ticket(&new_ticket("vigil:x", "x", None)).await.unwrap_err();

    assert!(matches!(error, SinkError::Unavailable(_)), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(sim.tickets().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Close and states
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn closing_takes_the_first_closed_status_of_the_tickets_own_board_read_once_per_board() {
    let (sim, client) = connectwise().await;
    let on_security = client.create_ticket(&new_ticket("vigil:s1", "x", Some(SECURITY_BOARD))).await.unwrap();
    let again_on_security = client.create_ticket(&new_ticket("vigil:s2", "x", Some(SECURITY_BOARD))).await.unwrap();
    let on_vigil = client.create_ticket(&new_ticket("vigil:v1", "x", Some(VIGIL_BOARD))).await.unwrap();

    let before = sim.request_count();
    client.close_ticket(&on_security, None, "resolved").await.unwrap();
    assert_eq!(sim.request_count() - before, 3, "the ticket, its board's statuses, the change");
    let before = sim.request_count();
    client.close_ticket(&again_on_security, None, "resolved").await.unwrap();
    assert_eq!(sim.request_count() - before, 2, "the board's closed status is known now");
    client.close_ticket(&on_vigil, None, "resolved").await.unwrap();

    assert_eq!(stored(&sim, &on_security)["status"]["id"], 19, "Security Alerts' first closed status");
    assert_eq!(stored(&sim, &again_on_security)["status"]["id"], 19);
    assert_eq!(stored(&sim, &on_vigil)["status"]["id"], 79, "Vigil Alerts' own closed status");
    assert!(sim.tickets().iter().all(|t| t.notes.is_empty()), "closing adds no note (the dispatcher notes, once)");
}

#[tokio::test]
async fn a_closed_status_override_is_used_and_a_closed_ticket_is_left_as_it_is() {
    let (sim, client) = connectwise().await;
    let ticket = client.create_ticket(&new_ticket("vigil:o", "x", Some(SECURITY_BOARD))).await.unwrap();

    client.close_ticket(&ticket, Some("20"), "resolved").await.unwrap();
    assert_eq!(stored(&sim, &ticket)["status"]["id"], 20);

    let before = sim.request_count();
    client.close_ticket(&ticket, Some("19"), "resolved").await.unwrap();
    assert_eq!(sim.request_count() - before, 1, "only the read: nothing to change");
    assert_eq!(stored(&sim, &ticket)["status"]["id"], 20);
    let states = client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap();
    assert!(matches!(&states[0].1, TicketState::Closed { status, at: Some(_), .. } if status == ">Closed - Resolved"), "{states:?}");
}

#[tokio::test]
async fn a_closed_status_override_that_does_not_close_is_refused_permanently() {
    let (_sim, client) = connectwise().await;
    let ticket = client.create_ticket(&new_ticket("vigil:open", "x", Some(SECURITY_BOARD))).await.unwrap();

    let error = client.close_ticket(&ticket, Some("12"), "resolved").await.unwrap_err();

    assert!(matches!(&error, SinkError::Rejected(m) if m.contains("does not close")), "{error:?}");
    let states = client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap();
    assert!(matches!(&states[0].1, TicketState::Open { status } if status == "Assigned"), "{states:?}");
}

#[tokio::test]
async fn states_are_read_fifty_tickets_a_request_and_a_ticket_not_returned_is_gone() {
    let (sim, client) = connectwise().await;
    let mut tickets = Vec::new();
    for i in 0..51 {
        tickets.push(client.create_ticket(&new_ticket(&format!("vigil:many{i}"), "x", None)).await.unwrap());
    }
    let merged = tickets[1].clone();
    sim.merge_ticket(sim_id(&merged), sim_id(&tickets[0]), "jsmith").unwrap();
    tickets.push(TicketRef::new("999999"));
    tickets.push(TicketRef::new("not-a-number"));

    let before = sim.request_count();
    let states = client.ticket_states(&tickets).await.unwrap();

    assert_eq!(sim.request_count() - before, 2, "52 distinct ids: two requests");
    assert_eq!(states.len(), tickets.len());
    assert_eq!(states.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), tickets, "in the order asked");
    let gone: Vec<&TicketRef> = states.iter().filter(|(_, s)| *s == TicketState::Gone).map(|(t, _)| t).collect();
    assert_eq!(gone, [&merged, &tickets[51], &tickets[52]]);
    assert!(matches!(client.add_note(&merged, &TicketNote { text: "x".into(), marker: "x".into() }).await, Err(SinkError::Gone(_))));
    assert!(matches!(client.has_note(&merged, "x").await, Err(SinkError::Gone(_))));
}

// ---------------------------------------------------------------------------------------------
// Lookups and the destination check
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lookups_list_companies_boards_priorities_statuses_and_contacts() {
    let (_sim, client) = connectwise().await;

    let companies = client.lookup(&Lookup::Companies { search: Some("conto".into()) }).await.unwrap();
    assert_eq!(companies.iter().map(|c| (c.id.as_str(), c.name.as_str())).collect::<Vec<_>>(), [("250", "Contoso")]);
    assert!(client.lookup(&Lookup::Companies { search: Some("Adventure".into()) }).await.unwrap().is_empty(), "deleted");
    assert!(client.lookup(&Lookup::Companies { search: None }).await.unwrap().len() > 50);

    let boards = client.lookup(&Lookup::Places).await.unwrap();
    assert_eq!(boards.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), ["1", "2", "7"]);

    let priorities = client.lookup(&Lookup::Priorities).await.unwrap();
    assert_eq!(priorities.iter().filter(|p| p.default).map(|p| p.id.as_str()).collect::<Vec<_>>(), ["3"]);

    let security = client.lookup(&Lookup::Statuses { place: Some("Security Alerts".into()) }).await.unwrap();
    let closing: Vec<&str> = security.iter().filter(|s| s.closes == Some(true)).map(|s| s.id.as_str()).collect();
    assert_eq!(closing, ["19", "20"]);
    let default_board = client.lookup(&Lookup::Statuses { place: None }).await.unwrap();
    assert_eq!(default_board.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["71", "72", "79"], "the destination's default board");
    assert!(default_board.iter().any(|s| s.default && s.name == "New"));

    let contacts = client.lookup(&Lookup::Contacts { company: CONTOSO.into(), email: None }).await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!((contacts[0].name.as_str(), contacts[0].email.as_deref()), ("Alice Anders", Some("alice@contoso.com")));
    let bob = Lookup::Contacts { company: CONTOSO.into(), email: Some("bob@fabrikam.com".into()) };
    assert!(client.lookup(&bob).await.unwrap().is_empty(), "Bob is Fabrikam's");
    let bob = Lookup::Contacts { company: "251".into(), email: Some("bob@fabrikam.com".into()) };
    assert_eq!(client.lookup(&bob).await.unwrap()[0].id, "2");
}

#[tokio::test]
async fn the_check_finds_a_missing_board_a_missing_priority_and_a_status_that_does_not_close() {
    let (sim, client) = connectwise().await;
    let sound = Routing {
        default_place: Some(VIGIL_BOARD.into()),
        places: BTreeMap::from([(Category::ThreatManagement, "Security Alerts".to_owned())]),
        priorities: BTreeMap::from([(Severity::High, "8".to_owned()), (Severity::Low, "Security - Low".to_owned())]),
        ..Routing::default()
    };
    assert_eq!(client.check(&destination(&sim, sound.clone())).await.unwrap(), Vec::<String>::new());
    let closes_on_vigil = Routing { closed_status: Some(">Closed".into()), ..routed_to_vigil_board() };
    assert_eq!(client.check(&destination(&sim, closes_on_vigil)).await.unwrap(), Vec::<String>::new());
    let not_on_security = Routing { closed_status: Some(">Closed".into()), ..sound.clone() };
    assert_eq!(
        client.check(&destination(&sim, not_on_security)).await.unwrap(),
        ["the closed status (>Closed) is not a status of board 2"],
        "a closed status must close on every routed board"
    );

    let broken = Routing {
        places: BTreeMap::from([(Category::ThreatManagement, "42".to_owned())]),
        priorities: BTreeMap::from([(Severity::High, "8".to_owned()), (Severity::Low, "77".to_owned())]),
        closed_status: Some("72".into()),
        ..sound
    };
    let problems = client.check(&destination(&sim, broken)).await.unwrap();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("(42) does not exist"), "{problems:#?}");
    assert!(problems[1].contains("priority for Low alerts (77) does not exist"), "{problems:#?}");
    assert!(problems[2].contains("does not close tickets on board 7"), "{problems:#?}");
    assert!(sim.tickets().is_empty(), "the check creates nothing");
}

#[tokio::test]
async fn the_check_finds_a_ticket_type_that_is_not_a_type_of_every_routed_board() {
    let (sim, client) = connectwise().await;
    let mut d = destination(&sim, routed_to_vigil_board());
    d.settings =
        DestinationSettings::ConnectWise { api_root: sim.api_root(), ticket_type: Some("Microsoft 365 Alert".into()), source: None };
    assert_eq!(client.check(&d).await.unwrap(), Vec::<String>::new());

    d.routing.places.insert(Category::ThreatManagement, SECURITY_BOARD.into());
    assert_eq!(client.check(&d).await.unwrap(), ["the ticket type (Microsoft 365 Alert) is not a type of board 2"]);
}

#[tokio::test]
async fn the_check_reports_refused_credentials_as_a_problem_without_showing_them() {
    let sim = simulator().await;
    let d = destination(&sim, routed_to_vigil_board());
    let DestinationCredentials::ConnectWise { company_id, public_key, client_id, .. } = credentials(&sim) else { unreachable!() };
    let wrong =
        DestinationCredentials::ConnectWise { company_id, public_key, private_key: SecretString::new("WrongPrivateKey-0042"), client_id };
    let client = ConnectWiseClient::for_destination(local_http(), &d, wrong, RequestGate::open(), LOCAL).unwrap();

    let problems = client.check(&d).await.unwrap();

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("refused the credentials") && !problems[0].contains("WrongPrivateKey"), "{problems:?}");
    let error = client.create_ticket(&new_ticket("vigil:x", "x", None)).await.unwrap_err();
    assert!(matches!(error, SinkError::Unauthorized(_)), "{error:?}");
    let rendered = format!("{error} {error:?} {client:?}");
    assert!(
        !rendered.contains("WrongPrivateKey-0042") && !rendered.contains("Basic ") && !rendered.contains(&sim.credentials().private_key)
    );
}

// ---------------------------------------------------------------------------------------------
// The request gate, addresses, throttling
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_request_passes_the_gate_and_an_exhausted_share_sends_nothing() {
    let sim = simulator().await;
    let mut d = destination(&sim, routed_to_vigil_board());
    d.requests_per_hour = Some(3);
    let gate = RequestGate::for_destination(&d, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock));
    let client = client_for(&sim, &d, gate);

    // A create with an affected user is two requests (the contact, the ticket); a find is one.
    let ticket = client.create_ticket(&new_ticket("vigil:gate", "alice@contoso.com", None)).await.unwrap();
    assert_eq!(client.find_ticket("vigil:gate").await.unwrap(), Some(ticket.clone()));
    let sent = sim.request_count();
    assert_eq!(sent, 3);

    for refused in [
        client.find_ticket("vigil:gate").await.unwrap_err(),
        client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap_err(),
        client.close_ticket(&ticket, None, "x").await.unwrap_err(),
        client.lookup(&Lookup::Places).await.unwrap_err(),
        client.add_note(&ticket, &TicketNote { text: "x".into(), marker: "x".into() }).await.unwrap_err(),
    ] {
        assert!(matches!(refused, SinkError::OverBudget { retry_after } if retry_after > Duration::ZERO), "{refused:?}");
    }
    assert_eq!(sim.request_count(), sent, "nothing reached ConnectWise");
}

#[tokio::test]
async fn throttling_is_throttled_with_the_servers_retry_after() {
    let (sim, client) = connectwise().await;
    sim.fail_next(SimOperation::SearchTickets, FailureMode::Throttle, 1);

    let error = client.find_ticket("vigil:x").await.unwrap_err();

    assert!(matches!(error, SinkError::Throttled { retry_after: Some(delay) } if delay == Duration::from_secs(1)), "{error:?}");
}

#[tokio::test]
async fn an_api_root_that_reaches_the_servers_html_404_page_is_rejected_and_never_retires_a_ticket() {
    let sim = simulator().await;
    let mut d = destination(&sim, Routing::default());
    d.settings = DestinationSettings::ConnectWise { api_root: format!("{}/nowhere", sim.api_root()), ticket_type: None, source: None };
    let client = client_for(&sim, &d, RequestGate::open());

    let error = client.add_note(&TicketRef::new("1001"), &TicketNote { text: "x".into(), marker: "x".into() }).await.unwrap_err();

    assert!(matches!(&error, SinkError::Rejected(message) if message.contains("404")), "not Gone: {error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn without_the_loopback_opt_in_no_client_is_built_for_a_psa_on_loopback() {
    let sim = simulator().await;
    let d = destination(&sim, Routing::default());
    let strict = DestinationPolicy::STRICT;

    let refused =
        ConnectWiseClient::for_destination(destination_http_client(strict).unwrap(), &d, credentials(&sim), RequestGate::open(), strict);

    assert!(matches!(refused, Err(SinkSetupError::NotConfigured(_))));
    assert_eq!(sim.request_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_provider_builds_a_working_connector_from_a_destination_and_its_stored_credentials() {
    let sim = simulator().await;
    let secrets = Arc::new(MemorySecretStore::default());
    let d = destination(&sim, routed_to_vigil_board());
    let keys = serde_json::to_string(&credentials(&sim)).unwrap();
    secrets.put_secret(&SecretName::destination(&d.msp_id, &d.id), &SecretString::new(keys)).await.unwrap();
    let provider =
        PsaProvider::new(secrets.clone(), LOCAL, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock)).with_http(local_http());

    let system = provider.system_for(&d).await.unwrap();
    let ticket = system.create_ticket(&new_ticket("vigil:provided", "alice@contoso.com", None)).await.unwrap();
    assert_eq!(system.find_ticket("vigil:provided").await.unwrap(), Some(ticket));

    // The destination carried over from the single-PSA days reads the keys stored then.
    let mut legacy = destination(&sim, routed_to_vigil_board());
    legacy.id = DestinationId::parse(LEGACY_DESTINATION_ID).unwrap();
    let keys = sim.credentials();
    let old =
        json!({"company_id": keys.company_id, "public_key": keys.public_key, "private_key": keys.private_key, "client_id": keys.client_id});
    secrets.put_secret(&SecretName::legacy_connectwise(&legacy.msp_id), &SecretString::new(old.to_string())).await.unwrap();
    let carried_over = provider.system_for(&legacy).await.unwrap();
    assert!(carried_over.find_ticket("vigil:provided").await.unwrap().is_some());

    let mut unknown = destination(&sim, Routing::default());
    unknown.id = DestinationId::parse("other").unwrap();
    assert!(matches!(provider.system_for(&unknown).await, Err(SinkSetupError::NotConfigured(_))), "no credentials stored");
}
