//! The Autotask connector against the Autotask simulator (`vigil_simulators::autotask`), one
//! simulator per test on `127.0.0.1`: the shared ticket-port contract, zone discovery, the
//! auth headers, Autotask's validation-as-500, picklist defaults, contacts, paging, the
//! request gate and the request threshold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use vigil::clock::SystemClock;
use vigil::connectors::autotask::AutotaskClient;
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::destination::{AutotaskSettings, Destination, DestinationCredentials, DestinationSettings, Routing};
use vigil::error::SinkError;
use vigil::ids::{DestinationId, MspId};
use vigil::memory::MemoryRequestBudget;
use vigil::ports::{Lookup, NewTicket, RequestGate, TicketSystem};
use vigil::render::render_ticket;
use vigil::secret::SecretString;
use vigil::ticket::{TicketNote, TicketRef, TicketState};
use vigil::ticket_contract::{PsaHarness, ticket_system_contract};
use vigil_simulators::autotask::directory::CONTOSO_COMPANY_ID;
use vigil_simulators::autotask::{AutotaskOperation, AutotaskSim, AutotaskSimHandle, FailureMode};

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;
const SECURITY_OPERATIONS_QUEUE: &str = "29683481";

fn settings(zone_url: Option<String>) -> DestinationSettings {
    DestinationSettings::autotask(zone_url)
}

fn destination(settings: DestinationSettings) -> Destination {
    Destination {
        msp_id: MspId::parse("acme").unwrap(),
        id: DestinationId::parse("autotask").unwrap(),
        name: "Autotask".into(),
        enabled: true,
        settings,
        routing: Routing::default(),
        requests_per_hour: None,
        credentials_set: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn credentials(sim: &AutotaskSimHandle) -> DestinationCredentials {
    let c = sim.credentials();
    DestinationCredentials::Autotask {
        username: c.username,
        secret: SecretString::new(c.secret),
        integration_code: SecretString::new(c.integration_code),
    }
}

fn client_for(
    sim: &AutotaskSimHandle,
    destination: &Destination,
    credentials: DestinationCredentials,
    gate: RequestGate,
) -> AutotaskClient {
    AutotaskClient::for_destination(destination_http_client(POLICY).unwrap(), destination, credentials, gate, POLICY)
        .unwrap()
        .with_discovery_base(sim.base_url())
}

async fn started() -> (AutotaskSimHandle, AutotaskClient) {
    let sim = AutotaskSim::start(vigil_simulators::autotask::AutotaskCredentials::sample()).await.unwrap();
    let client = client_for(&sim, &destination(settings(Some(sim.zone_url()))), credentials(&sim), RequestGate::open());
    (sim, client)
}

fn new_ticket(reference: &str) -> NewTicket {
    let alert = vigil::contract::sample_alert(Utc::now());
    NewTicket {
        content: render_ticket(&alert, None, None),
        reference: reference.into(),
        company: CONTOSO_COMPANY_ID.to_string(),
        place: Some(SECURITY_OPERATIONS_QUEUE.into()),
        priority: None,
    }
}

fn ticket_id(ticket: &TicketRef) -> i64 {
    ticket.id.parse().unwrap()
}

fn count_requests(sim: &AutotaskSimHandle, path_part: &str) -> usize {
    sim.requests().iter().filter(|r| r.path.to_lowercase().contains(&path_part.to_lowercase())).count()
}

struct AutotaskHarness {
    sim: AutotaskSimHandle,
    system: Arc<AutotaskClient>,
}

#[async_trait]
impl PsaHarness for AutotaskHarness {
    fn system(&self) -> Arc<dyn TicketSystem> {
        self.system.clone()
    }
    fn company(&self) -> String {
        CONTOSO_COMPANY_ID.to_string()
    }
    fn place(&self) -> Option<String> {
        Some(SECURITY_OPERATIONS_QUEUE.into())
    }
    async fn lose_next_create_response(&self) {
        self.sim.fail_next(AutotaskOperation::CreateTicket, FailureMode::AfterCommit(503), 1);
    }
    async fn throttle_next(&self) {
        self.sim.fail_next(AutotaskOperation::Any, FailureMode::Throttle { retry_after: 2 }, 1);
    }
    async fn close_as_technician(&self, ticket: &TicketRef, by: &str) {
        let resource = self.sim.add_resource(by);
        self.sim.complete_ticket(ticket_id(ticket), Some(resource)).unwrap();
    }
    async fn delete(&self, ticket: &TicketRef) {
        self.sim.delete_ticket(ticket_id(ticket)).unwrap();
    }
    async fn ticket_count(&self) -> usize {
        self.sim.tickets().len()
    }
    async fn notes(&self, ticket: &TicketRef) -> Vec<String> {
        self.sim
            .ticket(ticket_id(ticket))
            .map(|t| t.notes.iter().filter_map(|n| n["description"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// The shared contract, including the closer's name, which the connector reads from the
/// simulator's `Resources` entity.
#[tokio::test]
async fn the_autotask_connector_honours_the_ticket_system_contract() {
    let (sim, client) = started().await;
    ticket_system_contract(&AutotaskHarness { sim, system: Arc::new(client) }).await;
}

#[tokio::test]
async fn the_zone_is_discovered_from_the_user_name_once_and_reused_by_later_clients() {
    let (sim, _) = started().await;
    let discovering = destination(settings(None));
    let first = client_for(&sim, &discovering, credentials(&sim), RequestGate::open());
    assert_eq!(first.find_ticket("vigil:none").await.unwrap(), None);
    assert_eq!(count_requests(&sim, "zoneInformation"), 1);
    let discovery = sim.requests().into_iter().find(|r| r.path.to_lowercase().contains("zoneinformation")).unwrap();
    assert_eq!(discovery.method, "GET");
    let second = client_for(&sim, &discovering, credentials(&sim), RequestGate::open());
    assert_eq!(second.find_ticket("vigil:none").await.unwrap(), None);
    assert_eq!(count_requests(&sim, "zoneInformation"), 1, "the zone is cached per user name");
    assert_eq!(count_requests(&sim, "Tickets/query"), 2);
}

#[tokio::test]
async fn a_user_no_zone_knows_is_unauthorized() {
    let (sim, _) = started().await;
    let stranger = DestinationCredentials::Autotask {
        username: "nobody@elsewhere.example".into(),
        secret: SecretString::new("whatever-secret"),
        integration_code: SecretString::new("whatever-code"),
    };
    let client = client_for(&sim, &destination(settings(None)), stranger, RequestGate::open());
    assert!(matches!(client.find_ticket("vigil:x").await, Err(SinkError::Unauthorized(_))));
}

#[tokio::test]
async fn refused_auth_headers_are_unauthorized_and_the_secret_never_shows() {
    let (sim, _) = started().await;
    let wrong = DestinationCredentials::Autotask {
        username: sim.credentials().username,
        secret: SecretString::new("WrongSecret0001"),
        integration_code: SecretString::new(sim.credentials().integration_code),
    };
    let client = client_for(&sim, &destination(settings(Some(sim.zone_url()))), wrong, RequestGate::open());
    let error = client.find_ticket("vigil:x").await.unwrap_err();
    assert!(matches!(error, SinkError::Unauthorized(_)), "{error:?}");
    assert!(!error.to_string().contains("WrongSecret0001") && !format!("{client:?}").contains("WrongSecret0001"));
}

#[tokio::test]
async fn a_validation_failure_answered_as_500_is_a_permanent_rejection() {
    let (sim, client) = started().await;
    let missing_company = NewTicket { company: "999999".into(), ..new_ticket("vigil:bad-company") };
    let error = client.create_ticket(&missing_company).await.unwrap_err();
    assert!(matches!(&error, SinkError::Rejected(m) if m.contains("HTTP 500")), "{error:?}");
    let inactive_priority = NewTicket { priority: Some("5".into()), ..new_ticket("vigil:bad-priority") };
    assert!(matches!(client.create_ticket(&inactive_priority).await, Err(SinkError::Rejected(_))));
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn a_reference_longer_than_the_external_id_is_refused_without_a_request() {
    let (sim, client) = started().await;
    let long = new_ticket(&"v".repeat(51));
    assert!(matches!(client.create_ticket(&long).await, Err(SinkError::Rejected(_))));
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn picklist_defaults_fill_what_the_destination_leaves_open() {
    let (sim, client) = started().await;
    let ticket = client.create_ticket(&new_ticket("vigil:defaults")).await.unwrap();
    client.add_note(&ticket, &TicketNote { text: "Matched again.\n[m:1]".into(), marker: "[m:1]".into() }).await.unwrap();
    let stored = sim.ticket(ticket_id(&ticket)).unwrap();
    assert_eq!(stored.item["status"], 1, "New, the status default");
    assert_eq!(stored.item["priority"], 2, "Medium, the priority default");
    assert_eq!(stored.item["queueID"], 29_683_481);
    assert_eq!(stored.item["externalID"], "vigil:defaults");
    assert!(stored.item["title"].as_str().unwrap().len() <= 255);
    assert_eq!(stored.notes[0]["noteType"], 3, "Task Notes, the note type default");
    assert_eq!(stored.notes[0]["publish"], 1, "All Autotask Users, the publish default");
    assert_eq!(stored.notes[0]["title"], "Matched again.");
    assert_eq!(count_requests(&sim, "entityInformation/fields"), 2, "ticket and note fields, each read once");
    client.create_ticket(&new_ticket("vigil:defaults-2")).await.unwrap();
    assert_eq!(count_requests(&sim, "entityInformation/fields"), 2, "and kept by the client");
}

#[tokio::test]
async fn configured_picklist_values_are_sent() {
    let sim = AutotaskSim::start(vigil_simulators::autotask::AutotaskCredentials::sample()).await.unwrap();
    let configured = DestinationSettings::Autotask(AutotaskSettings {
        zone_url: Some(sim.zone_url()),
        source: Some("8".into()),
        issue_type: Some("7".into()),
        sub_issue_type: Some("102".into()),
        ticket_type: Some("5".into()),
        ticket_category: Some("4".into()),
        new_status: Some("8".into()),
        note_type: Some("1".into()),
        note_publish: Some("2".into()),
        due_in_hours: 4,
    });
    let client = client_for(&sim, &destination(configured), credentials(&sim), RequestGate::open());
    let ticket = client.create_ticket(&NewTicket { priority: Some("1".into()), ..new_ticket("vigil:configured") }).await.unwrap();
    client.add_note(&ticket, &TicketNote { text: "n [m:2]".into(), marker: "[m:2]".into() }).await.unwrap();
    let stored = sim.ticket(ticket_id(&ticket)).unwrap();
    for (field, value) in
        [("source", 8), ("issueType", 7), ("subIssueType", 102), ("ticketType", 5), ("ticketCategory", 4), ("status", 8), ("priority", 1)]
    {
        assert_eq!(stored.item[field], value, "{field}");
    }
    assert_eq!((stored.notes[0]["noteType"].clone(), stored.notes[0]["publish"].clone()), (1.into(), 2.into()));
}

#[tokio::test]
async fn the_ticket_is_linked_to_the_active_contact_with_the_affected_users_address() {
    let (sim, client) = started().await;
    let contact = sim.add_contact(CONTOSO_COMPANY_ID, "Alice@Contoso.com", "Alice", "Example");
    let linked = client.create_ticket(&new_ticket("vigil:contact")).await.unwrap();
    assert_eq!(sim.ticket(ticket_id(&linked)).unwrap().item["contactID"], contact);
    let mut stranger = new_ticket("vigil:no-contact");
    stranger.content.affected_user = Some("bob@contoso.com".into());
    let unlinked = client.create_ticket(&stranger).await.unwrap();
    assert!(sim.ticket(ticket_id(&unlinked)).unwrap().item["contactID"].is_null());
}

#[tokio::test]
async fn queries_follow_next_page_urls_to_the_end() {
    let (sim, client) = started().await;
    for n in 0..620 {
        sim.add_company(&format!("Paging Customer {n:03}"));
    }
    let companies = client.lookup(&Lookup::Companies { search: Some("paging customer".into()) }).await.unwrap();
    assert_eq!(companies.len(), 620);
    assert_eq!(count_requests(&sim, "Companies/query/next"), 1, "a second page, by its nextPageUrl");
    let all = client.lookup(&Lookup::Companies { search: None }).await.unwrap();
    assert!(all.iter().any(|c| c.id == CONTOSO_COMPANY_ID.to_string()));
}

#[tokio::test]
async fn lookups_read_queues_priorities_statuses_and_contacts() {
    let (sim, client) = started().await;
    let queues = client.lookup(&Lookup::Places).await.unwrap();
    assert!(queues.iter().any(|q| q.id == SECURITY_OPERATIONS_QUEUE && q.name == "Security Operations"));
    assert!(!queues.iter().any(|q| q.name == "Post Sale"), "inactive queues are not offered");
    let priorities = client.lookup(&Lookup::Priorities).await.unwrap();
    assert!(priorities.iter().any(|p| p.id == "2" && p.default));
    let statuses = client.lookup(&Lookup::Statuses { place: None }).await.unwrap();
    assert_eq!(statuses.iter().filter(|s| s.closes == Some(true)).map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Complete"]);
    let contacts = client.lookup(&Lookup::Contacts { company: CONTOSO_COMPANY_ID.to_string(), email: None }).await.unwrap();
    assert!(contacts.iter().any(|c| c.email.as_deref() == Some("it.admin@contoso.example") && c.name == "Ida Admin"));
    let resources = client.lookup(&Lookup::Technicians).await.unwrap();
    assert!(resources.iter().any(|r| r.id == "29682886" && r.name == "Alex Tech"), "{resources:?}");
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn check_names_unknown_and_inactive_values_and_creates_nothing() {
    let (sim, client) = started().await;
    let mut good = destination(settings(Some(sim.zone_url())));
    good.routing.default_place = Some(SECURITY_OPERATIONS_QUEUE.into());
    assert_eq!(client.check(&good).await.unwrap(), Vec::<String>::new());
    let mut bad = good.clone();
    bad.routing.default_place = Some("29683482".into());
    bad.routing.closed_status = Some("999".into());
    bad.settings = DestinationSettings::Autotask(AutotaskSettings {
        zone_url: Some(sim.zone_url()),
        source: Some("12".into()),
        issue_type: Some("9".into()),
        sub_issue_type: Some("101".into()),
        note_type: Some("18".into()),
        ..AutotaskSettings::default()
    });
    let problems = client.check(&bad).await.unwrap();
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("default queue") && p.contains("inactive")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("closed status") && p.contains("does not exist")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("belongs to issue type 7")), "{problems:#?}");
    assert!(sim.tickets().is_empty());
    let wrong = DestinationCredentials::Autotask {
        username: sim.credentials().username,
        secret: SecretString::new("WrongSecret0001"),
        integration_code: SecretString::new("WrongCode0001"),
    };
    let refused = client_for(&sim, &good, wrong, RequestGate::open());
    let problems = refused.check(&good).await.unwrap();
    assert!(problems.len() == 1 && problems[0].contains("refused the credentials"), "{problems:?}");
}

#[tokio::test]
async fn the_request_gate_stops_requests_once_the_share_is_used_up() {
    let (sim, _) = started().await;
    let mut limited = destination(settings(Some(sim.zone_url())));
    limited.requests_per_hour = Some(3);
    let gate = RequestGate::for_destination(&limited, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock));
    let client = client_for(&sim, &limited, credentials(&sim), gate);
    for _ in 0..3 {
        client.find_ticket("vigil:x").await.unwrap();
    }
    match client.find_ticket("vigil:x").await {
        Err(SinkError::OverBudget { retry_after }) => assert!(retry_after > Duration::ZERO),
        other => panic!("the fourth request is refused by the gate, not {other:?}"),
    }
    assert_eq!(sim.request_count(), 3, "the refused request was never sent");
}

#[tokio::test]
async fn the_request_threshold_refusal_is_throttled_with_its_delay() {
    let (sim, client) = started().await;
    sim.set_threshold(2);
    client.find_ticket("vigil:a").await.unwrap();
    client.find_ticket("vigil:b").await.unwrap();
    match client.find_ticket("vigil:c").await {
        Err(SinkError::Throttled { retry_after: Some(delay) }) => assert!(delay > Duration::ZERO && delay <= Duration::from_secs(3601)),
        other => panic!("over the threshold is throttled, not {other:?}"),
    }
}

#[tokio::test]
async fn a_merged_ticket_reads_back_as_closed_and_a_completed_one_is_not_reopened_by_close() {
    let (sim, client) = started().await;
    let kept = client.create_ticket(&new_ticket("vigil:kept")).await.unwrap();
    let merged = client.create_ticket(&new_ticket("vigil:merged")).await.unwrap();
    sim.merge_ticket(ticket_id(&merged), ticket_id(&kept)).unwrap();
    let states = client.ticket_states(&[merged.clone(), TicketRef::new("not-a-number")]).await.unwrap();
    assert!(matches!(states[0].1, TicketState::Closed { .. }), "{states:?}");
    assert_eq!(states[1].1, TicketState::Gone);
    client.close_ticket(&merged, None, "done").await.unwrap();
    assert!(!sim.requests().iter().any(|r| r.method == "PATCH"), "no PATCH for a complete ticket");
}

#[tokio::test]
async fn a_technicians_completion_reads_back_as_closed_by_that_resource() {
    let (sim, client) = started().await;
    let ticket = client.create_ticket(&new_ticket("vigil:tech")).await.unwrap();
    let open = client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap();
    assert_eq!(open[0].1, TicketState::Open { status: "New".into() });
    let technician = sim.add_resource("Jane Smith");
    sim.complete_ticket(ticket_id(&ticket), Some(technician)).unwrap();
    let states = client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap();
    match &states[0].1 {
        TicketState::Closed { status, by, at } => {
            assert_eq!(status, "Complete");
            assert_eq!(by.as_deref(), Some("Jane Smith"), "firstName and lastName of the resource");
            assert!(at.is_some(), "completedDate is read");
        }
        other => panic!("a completed ticket is closed, not {other:?}"),
    }
    assert_eq!(count_requests(&sim, "Resources/query"), 1);
}

#[tokio::test]
async fn an_unreadable_resource_leaves_the_closer_named_by_its_id() {
    let (sim, client) = started().await;
    let ticket = client.create_ticket(&new_ticket("vigil:hidden-tech")).await.unwrap();
    // Reads the status picklist once, so the only lookup left is the resource query.
    client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap();
    let technician = sim.add_resource("Jane Smith");
    sim.complete_ticket(ticket_id(&ticket), Some(technician)).unwrap();
    // An API user whose security level hides resources is refused (a 4xx).
    sim.fail_next(AutotaskOperation::Lookup, FailureMode::Status(404), 1);
    let states = client.ticket_states(std::slice::from_ref(&ticket)).await.unwrap();
    match &states[0].1 {
        TicketState::Closed { by, .. } => assert_eq!(by.as_deref(), Some(format!("resource #{technician}").as_str())),
        other => panic!("a completed ticket is closed, not {other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_ticket_is_gone_for_states_notes_and_closing() {
    let (sim, client) = started().await;
    let kept = client.create_ticket(&new_ticket("vigil:kept-open")).await.unwrap();
    let doomed = client.create_ticket(&new_ticket("vigil:doomed")).await.unwrap();
    sim.delete_ticket(ticket_id(&doomed)).unwrap();
    let states = client.ticket_states(&[doomed.clone(), kept.clone()]).await.unwrap();
    assert_eq!(states[0], (doomed.clone(), TicketState::Gone));
    assert!(matches!(states[1].1, TicketState::Open { .. }));
    let note = TicketNote { text: "again [m:9]".into(), marker: "[m:9]".into() };
    assert!(matches!(client.add_note(&doomed, &note).await, Err(SinkError::Gone(_))));
    assert!(matches!(client.has_note(&doomed, "[m:9]").await, Err(SinkError::Gone(_))));
    assert!(matches!(client.close_ticket(&doomed, None, "x").await, Err(SinkError::Gone(_))));
    client.close_ticket(&kept, None, "Resolved in Vigil.").await.unwrap();
    let closed = sim.ticket(ticket_id(&kept)).unwrap();
    assert_eq!(closed.item["status"], 5);
    assert_eq!(closed.item["resolution"], "Resolved in Vigil.");
}

#[tokio::test]
async fn the_provider_builds_the_autotask_connector_from_the_stored_credentials() {
    use vigil::connectors::psa::PsaProvider;
    use vigil::memory::MemorySecretStore;
    use vigil::ports::{SecretName, SecretStore, TicketSystemProvider};
    let (sim, _) = started().await;
    let destination = destination(settings(Some(sim.zone_url())));
    let secrets = Arc::new(MemorySecretStore::default());
    let stored = serde_json::to_string(&credentials(&sim)).unwrap();
    secrets.put_secret(&SecretName::destination(&destination.msp_id, &destination.id), &SecretString::new(stored)).await.unwrap();
    let provider = PsaProvider::new(secrets, POLICY, Arc::new(MemoryRequestBudget::default()), Arc::new(SystemClock))
        .with_http(destination_http_client(POLICY).unwrap());
    let system = provider.system_for(&destination).await.unwrap();
    let ticket = system.create_ticket(&new_ticket("vigil:provided")).await.unwrap();
    assert_eq!(system.find_ticket("vigil:provided").await.unwrap(), Some(ticket));
}
