//! The Tigerpaw connector against the Tigerpaw simulator (`vigil_simulators::tigerpaw`), one
//! simulator per test on `127.0.0.1`: the shared ticket-port contract in both authorization
//! forms, `check` naming the form the server accepts, HTTP 200 `Success: false` as a failure
//! (permanent for an unknown account, transient for a locked order), a technician's completion
//! and deletion read back, account paging and the master-table lookups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use chrono::Utc;
use std::sync::Arc;
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::connectors::tigerpaw::TigerpawClient;
use vigil::contract::sample_destination;
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, Routing, TigerpawAuth, TigerpawSettings};
use vigil::error::{Classified, ErrorClass, SinkError};
use vigil::ids::MspId;
use vigil::ports::{Lookup, NewTicket, RequestGate, TicketSystem};
use vigil::render::render_ticket;
use vigil::secret::SecretString;
use vigil::ticket::{TicketNote, TicketRef, TicketState};
use vigil::ticket_contract::{PsaHarness, ticket_system_contract};
use vigil_simulators::tigerpaw::tables::{CONTOSO_ACCOUNT, SECURITY_BOARD};
use vigil_simulators::tigerpaw::{AuthForm, FailureMode, TigerpawKeys, TigerpawOperation, TigerpawSim, TigerpawSimHandle};

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;

fn settings(sim: &TigerpawSimHandle, auth: TigerpawAuth) -> TigerpawSettings {
    TigerpawSettings { url: sim.base_url(), auth, rep_number: None, service_order_type: None, new_status: None, note_topic: None }
}

fn destination(settings: TigerpawSettings) -> Destination {
    let mut destination = sample_destination(&MspId::parse("acme").unwrap(), "tigerpaw");
    destination.settings = DestinationSettings::Tigerpaw(settings);
    destination.routing = Routing::default();
    destination
}

fn credentials(sim: &TigerpawSimHandle) -> DestinationCredentials {
    let keys = sim.keys();
    DestinationCredentials::Tigerpaw { public_key: keys.public_key, private_key: SecretString::new(keys.private_key) }
}

fn client_for(sim: &TigerpawSimHandle, destination: &Destination) -> TigerpawClient {
    TigerpawClient::for_destination(destination_http_client(POLICY).unwrap(), destination, credentials(sim), RequestGate::open(), POLICY)
        .unwrap()
}

/// A simulator accepting `form`, and a client configured for `configured`.
async fn started_with(form: AuthForm, configured: TigerpawAuth) -> (TigerpawSimHandle, TigerpawClient) {
    let sim = TigerpawSim::start(TigerpawKeys::sample(), form).await.unwrap();
    let client = client_for(&sim, &destination(settings(&sim, configured)));
    (sim, client)
}

async fn started() -> (TigerpawSimHandle, TigerpawClient) {
    started_with(AuthForm::Tsi, TigerpawAuth::Tsi).await
}

fn new_ticket(reference: &str) -> NewTicket {
    let alert = vigil::contract::sample_alert(Utc::now());
    NewTicket {
        content: render_ticket(&alert, None, None),
        reference: reference.into(),
        company: CONTOSO_ACCOUNT.to_string(),
        place: Some(SECURITY_BOARD.to_string()),
        priority: Some("High".into()),
    }
}

fn number(ticket: &TicketRef) -> i64 {
    ticket.id.parse().unwrap()
}

struct TigerpawHarness {
    sim: TigerpawSimHandle,
    system: Arc<TigerpawClient>,
}

#[async_trait]
impl PsaHarness for TigerpawHarness {
    fn system(&self) -> Arc<dyn TicketSystem> {
        self.system.clone()
    }
    fn company(&self) -> String {
        CONTOSO_ACCOUNT.to_string()
    }
    fn place(&self) -> Option<String> {
        Some(SECURITY_BOARD.to_string())
    }
    async fn lose_next_create_response(&self) {
        self.sim.fail_next(TigerpawOperation::CreateOrder, FailureMode::AfterCommit(503), 1);
    }
    async fn throttle_next(&self) {
        self.sim.fail_next(TigerpawOperation::Any, FailureMode::Throttle { retry_after: 2 }, 1);
    }
    async fn close_as_technician(&self, ticket: &TicketRef, by: &str) {
        self.sim.complete_order(number(ticket), by).unwrap();
    }
    async fn delete(&self, ticket: &TicketRef) {
        self.sim.delete_order(number(ticket)).unwrap();
    }
    async fn ticket_count(&self) -> usize {
        self.sim.orders().len()
    }
    async fn notes(&self, ticket: &TicketRef) -> Vec<String> {
        self.sim
            .order(number(ticket))
            .map(|o| o.notes.iter().filter_map(|n| n["Note"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn the_tigerpaw_connector_honours_the_ticket_system_contract_with_tsi_authorization() {
    let (sim, client) = started_with(AuthForm::Tsi, TigerpawAuth::Tsi).await;
    ticket_system_contract(&TigerpawHarness { sim: sim.clone(), system: Arc::new(client) }).await;
    assert!(sim.requests().iter().all(|r| r.operation != "unauthorized"), "every request carried the TSI form");
}

#[tokio::test]
async fn the_tigerpaw_connector_honours_the_ticket_system_contract_with_basic_authorization() {
    let (sim, client) = started_with(AuthForm::Basic, TigerpawAuth::Basic).await;
    ticket_system_contract(&TigerpawHarness { sim: sim.clone(), system: Arc::new(client) }).await;
    assert!(sim.requests().iter().all(|r| r.operation != "unauthorized"), "every request carried the Basic form");
}

#[tokio::test]
async fn check_names_the_authorization_form_the_server_accepts_when_the_configured_one_is_refused() {
    let (sim, client) = started_with(AuthForm::Basic, TigerpawAuth::Tsi).await;
    let configured = destination(settings(&sim, TigerpawAuth::Tsi));
    let problems = client.check(&configured).await.unwrap();
    assert_eq!(problems, ["the server accepts Basic authorization, not TSI: set settings.auth to basic"]);
    assert!(matches!(client.find_ticket("vigil:x").await, Err(SinkError::Unauthorized(_))), "requests keep the configured form");
    sim.set_auth_form(AuthForm::Tsi);
    let basic = client_for(&sim, &destination(settings(&sim, TigerpawAuth::Basic)));
    let problems = basic.check(&destination(settings(&sim, TigerpawAuth::Basic))).await.unwrap();
    assert_eq!(problems, ["the server accepts TSI authorization, not Basic: set settings.auth to tsi"]);
    let wrong = DestinationCredentials::Tigerpaw { public_key: sim.keys().public_key, private_key: SecretString::new("WrongPrivate0001") };
    let refused =
        TigerpawClient::for_destination(destination_http_client(POLICY).unwrap(), &configured, wrong, RequestGate::open(), POLICY).unwrap();
    let problems = refused.check(&configured).await.unwrap();
    assert!(problems.len() == 1 && problems[0].contains("both authorization forms"), "{problems:?}");
    assert!(!format!("{problems:?}{refused:?}").contains("WrongPrivate0001"));
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn check_names_values_missing_from_the_master_tables_and_passes_a_good_destination() {
    let (sim, client) = started().await;
    let mut good = destination(TigerpawSettings {
        rep_number: Some("1".into()),
        service_order_type: Some("Security".into()),
        new_status: Some("Open".into()),
        note_topic: Some("Alert".into()),
        ..settings(&sim, TigerpawAuth::Tsi)
    });
    good.routing.default_place = Some(SECURITY_BOARD.to_string());
    good.routing.priorities.insert(vigil::alert::Severity::High, "High".into());
    assert_eq!(client.check(&good).await.unwrap(), Vec::<String>::new());
    let mut bad = destination(TigerpawSettings {
        rep_number: Some("99".into()),
        service_order_type: Some("Hardware".into()),
        new_status: Some("New".into()),
        note_topic: Some("Gossip".into()),
        ..settings(&sim, TigerpawAuth::Tsi)
    });
    bad.routing.default_place = Some("42".into());
    bad.routing.priorities.insert(vigil::alert::Severity::High, "Urgent".into());
    bad.routing.closed_status = Some("Open".into());
    let problems = client.check(&bad).await.unwrap();
    assert_eq!(problems.len(), 7, "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("\"Open\" does not close")), "{problems:#?}");
    assert!(sim.orders().is_empty(), "check creates nothing");
}

#[tokio::test]
async fn a_success_false_answer_for_an_unknown_account_is_a_permanent_failure() {
    let (sim, client) = started().await;
    let error = client.create_ticket(&NewTicket { company: "999999".into(), ..new_ticket("vigil:unknown-account") }).await.unwrap_err();
    assert!(matches!(&error, SinkError::Rejected(m) if m.contains("Success: false") && m.contains("999999")), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
    let priority = client.create_ticket(&NewTicket { priority: Some("Urgent".into()), ..new_ticket("vigil:bad-priority") }).await;
    assert!(matches!(priority, Err(SinkError::Rejected(_))), "a value outside the master table: {priority:?}");
    assert!(sim.orders().is_empty());
    assert_eq!(client.find_ticket("vigil:unknown-account").await.unwrap(), None);
}

#[tokio::test]
async fn a_locked_order_fails_transiently_and_closes_once_the_user_leaves_it() {
    let (sim, client) = started().await;
    let ticket = client.create_ticket(&new_ticket("vigil:locked")).await.unwrap();
    sim.lock_order(number(&ticket), "Jane Smith").unwrap();
    let note = TicketNote { text: "again [m:1]".into(), marker: "[m:1]".into() };
    let refused = client.add_note(&ticket, &note).await.unwrap_err();
    assert!(matches!(&refused, SinkError::Unavailable(m) if m.contains("locked")), "{refused:?}");
    let error = client.close_ticket(&ticket, None, "Resolved in Vigil.").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "{error:?}");
    assert_eq!(sim.order(number(&ticket)).unwrap().summary["ServiceOrder"]["Status"], "Open");
    sim.unlock_order(number(&ticket)).unwrap();
    client.close_ticket(&ticket, None, "Resolved in Vigil.").await.unwrap();
    let order = sim.order(number(&ticket)).unwrap().summary["ServiceOrder"].clone();
    assert_eq!(order["Status"], "Completed", "the statuses table's first closing status");
    assert_eq!(order["WorkPerformed"], "Resolved in Vigil.");
    assert!(order["DateTimeClosed"].is_string());
}

#[tokio::test]
async fn a_technicians_completion_reads_back_as_closed_by_that_rep() {
    let (sim, client) = started().await;
    let ticket = client.create_ticket(&new_ticket("vigil:tech")).await.unwrap();
    let open = client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap();
    assert_eq!(open[0].1, TicketState::Open { status: "Open".into() });
    sim.complete_order(number(&ticket), "Jane Smith").unwrap();
    match &client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap()[0].1 {
        TicketState::Closed { status, by, at } => {
            assert_eq!(status, "Completed");
            assert_eq!(by.as_deref(), Some("Jane Smith"));
            assert!(at.is_some_and(|at| (Utc::now() - at).num_minutes().abs() < 5), "{at:?}");
        }
        other => panic!("a completed order is closed, not {other:?}"),
    }
    client.close_ticket(&ticket, None, "x").await.unwrap();
    assert!(!sim.requests().iter().any(|r| r.method == "PUT"), "no update of a completed order");
}

#[tokio::test]
async fn a_deleted_order_is_gone_for_states_notes_and_closing() {
    let (sim, client) = started().await;
    let kept = client.create_ticket(&new_ticket("vigil:kept")).await.unwrap();
    let doomed = client.create_ticket(&new_ticket("vigil:doomed")).await.unwrap();
    sim.delete_order(number(&doomed)).unwrap();
    let states = client.ticket_states(&[doomed.clone(), kept.clone(), TicketRef::new("not-a-number")]).await.unwrap();
    assert_eq!(states[0].1, TicketState::Gone);
    assert!(matches!(states[1].1, TicketState::Open { .. }));
    assert_eq!(states[2].1, TicketState::Gone);
    let note = TicketNote { text: "again [m:9]".into(), marker: "[m:9]".into() };
    assert!(matches!(client.add_note(&doomed, &note).await, Err(SinkError::Gone(_))));
    assert!(matches!(client.has_note(&doomed, "[m:9]").await, Err(SinkError::Gone(_))));
    assert!(matches!(client.close_ticket(&doomed, None, "x").await, Err(SinkError::Gone(_))));
}

#[tokio::test]
async fn the_order_carries_the_routed_values_the_reference_and_the_affected_users_contact() {
    let sim = TigerpawSim::start(TigerpawKeys::sample(), AuthForm::Tsi).await.unwrap();
    let configured = TigerpawSettings {
        rep_number: Some("5".into()),
        service_order_type: Some("Security".into()),
        new_status: Some("In Progress".into()),
        note_topic: None,
        ..settings(&sim, TigerpawAuth::Tsi)
    };
    let client = client_for(&sim, &destination(configured));
    let contact = sim.add_contact(CONTOSO_ACCOUNT, "Alice@Contoso.com", "Alice", "Example");
    let mut ticket = new_ticket("vigil:routed");
    ticket.content.affected_user = Some("alice@contoso.com".into());
    let created = client.create_ticket(&ticket).await.unwrap();
    client.add_note(&created, &TicketNote { text: "Matched again.\n[m:2]".into(), marker: "[m:2]".into() }).await.unwrap();
    let stored = sim.order(number(&created)).unwrap();
    let order = &stored.summary["ServiceOrder"];
    assert_eq!(order["Reference"], "vigil:routed");
    assert_eq!((order["Priority"].clone(), order["Status"].clone()), ("High".into(), "In Progress".into()));
    assert_eq!((order["ServiceOrderType"].clone(), order["DispatchBoardNumber"].clone()), ("Security".into(), SECURITY_BOARD.into()));
    assert_eq!(order["ContactNumber"], contact);
    assert!(order["BriefDescription"].as_str().unwrap().chars().count() <= 100);
    assert_eq!((stored.notes[0]["Topic"].clone(), stored.notes[0]["RepNumber"].clone()), ("General".into(), 5.into()));
    let requests = sim.requests();
    assert!(requests.iter().all(|r| r.operation != "length_required"), "POST and PUT carry Content-Length");
}

#[tokio::test]
async fn account_lookup_follows_next_row_to_the_last_page() {
    let (sim, client) = started().await;
    for n in 0..230 {
        sim.add_account(&format!("Paging Customer {n:03}"));
    }
    let accounts = client.lookup(&Lookup::Companies { search: Some("paging customer".into()) }).await.unwrap();
    assert_eq!(accounts.len(), 230);
    let searches = sim.requests().iter().filter(|r| r.path.to_lowercase() == "/api/accounts/search").count();
    assert_eq!(searches, 3, "pages of 100 rows");
    let all = client.lookup(&Lookup::Companies { search: None }).await.unwrap();
    assert!(all.iter().any(|a| a.id == CONTOSO_ACCOUNT.to_string() && a.name == "Contoso Ltd"));
    assert_eq!(all.len(), 232);
}

#[tokio::test]
async fn lookups_read_boards_priorities_statuses_contacts_and_reps() {
    let (sim, client) = started().await;
    let boards = client.lookup(&Lookup::Places).await.unwrap();
    assert!(boards.iter().any(|b| b.id == SECURITY_BOARD.to_string() && b.name == "Security Operations"));
    let priorities = client.lookup(&Lookup::Priorities).await.unwrap();
    assert!(priorities.iter().any(|p| p.id == "Medium" && p.default));
    assert_eq!(priorities.len(), 4);
    let statuses = client.lookup(&Lookup::Statuses { place: None }).await.unwrap();
    let closing: Vec<&str> = statuses.iter().filter(|s| s.closes == Some(true)).map(|s| s.name.as_str()).collect();
    assert_eq!(closing, ["Completed", "Cancelled"]);
    let contacts = client
        .lookup(&Lookup::Contacts { company: CONTOSO_ACCOUNT.to_string(), email: Some("IT.Admin@contoso.example".into()) })
        .await
        .unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!((contacts[0].name.as_str(), contacts[0].id.as_str()), ("Ida Admin", "501"));
    assert!(matches!(client.lookup(&Lookup::Contacts { company: "Contoso".into(), email: None }).await, Err(SinkError::Invalid(_))));
    let reps = client.lookup(&Lookup::Technicians).await.unwrap();
    assert!(reps.iter().any(|r| r.id == "5" && r.name != "5"), "reps by number and name: {reps:?}");
    assert!(matches!(client.lookup(&Lookup::Sites { company: CONTOSO_ACCOUNT.to_string() }).await, Err(SinkError::Invalid(_))));
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn the_provider_builds_the_tigerpaw_connector_from_the_stored_credentials() {
    use vigil::clock::SystemClock;
    use vigil::connectors::psa::PsaProvider;
    use vigil::memory::{MemoryRequestBudget, MemorySecretStore};
    use vigil::ports::{SecretName, SecretStore, TicketSystemProvider};
    let (sim, _) = started().await;
    let destination = destination(settings(&sim, TigerpawAuth::Tsi));
    let secrets = Arc::new(MemorySecretStore::default());
    let stored = serde_json::to_string(&credentials(&sim)).unwrap();
    secrets.put_secret(&SecretName::destination(&destination.msp_id, &destination.id), &SecretString::new(stored)).await.unwrap();
    let provider = PsaProvider::new(secrets, POLICY, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock))
        .with_http(destination_http_client(POLICY).unwrap());
    let system = provider.system_for(&destination).await.unwrap();
    let ticket = system.create_ticket(&new_ticket("vigil:provided")).await.unwrap();
    assert_eq!(system.find_ticket("vigil:provided").await.unwrap(), Some(ticket));
}
