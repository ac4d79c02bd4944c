//! The HaloPSA connector against the HaloPSA simulator (`vigil_simulators::halopsa`), one
//! simulator per test on `127.0.0.1`: the shared ticket-port contract, the token (hosted with
//! its tenant, self-hosted without, renewed once on a 401), the array bodies, `record_count`
//! paging, a technician's close and delete, lookups and the destination check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use chrono::Utc;
use std::sync::Arc;
use vigil::alert::{Category, Severity};
use vigil::connectors::destination_url::{DestinationPolicy, destination_http_client};
use vigil::connectors::halopsa::HaloPsaClient;
use vigil::contract::sample_destination;
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, HaloPsaSettings, Routing};
use vigil::error::SinkError;
use vigil::ids::MspId;
use vigil::ports::{Lookup, NewTicket, RequestGate, TicketSystem};
use vigil::render::render_ticket;
use vigil::secret::SecretString;
use vigil::ticket::{TicketNote, TicketRef, TicketState};
use vigil::ticket_contract::{PsaHarness, ticket_system_contract};
use vigil_simulators::halopsa::directory::{CONTOSO_CLIENT_ID, CONTOSO_SITE_ID, CONTOSO_USER_ID, SECURITY_TEAM};
use vigil_simulators::halopsa::{FailureMode, HaloOperation, HaloSim, HaloSimConfig, HaloSimHandle};

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;

fn destination(sim: &HaloSimHandle, routing: Routing) -> Destination {
    let mut destination = sample_destination(&MspId::parse("acme").unwrap(), "halo");
    destination.settings = DestinationSettings::HaloPsa(HaloPsaSettings {
        url: sim.base_url(),
        tenant: sim.config().tenant,
        ticket_type: Some("21".into()),
        note_outcome: None,
    });
    destination.routing = routing;
    destination
}

fn credentials(sim: &HaloSimHandle) -> DestinationCredentials {
    let config = sim.config();
    DestinationCredentials::HaloPsa { client_id: config.client_id, client_secret: SecretString::new(config.client_secret) }
}

fn client_for(destination: &Destination, credentials: DestinationCredentials) -> HaloPsaClient {
    HaloPsaClient::for_destination(destination_http_client(POLICY).unwrap(), destination, credentials, RequestGate::open(), POLICY).unwrap()
}

async fn started(config: HaloSimConfig) -> (HaloSimHandle, HaloPsaClient) {
    let sim = HaloSim::start(config).await.unwrap();
    let client = client_for(&destination(&sim, Routing::default()), credentials(&sim));
    (sim, client)
}

fn new_ticket(reference: &str) -> NewTicket {
    let alert = vigil::contract::sample_alert(Utc::now());
    NewTicket {
        content: render_ticket(&alert, None, None),
        reference: reference.into(),
        company: CONTOSO_CLIENT_ID.to_string(),
        place: Some(SECURITY_TEAM.into()),
        priority: Some("2".into()),
    }
}

fn ticket_id(ticket: &TicketRef) -> i64 {
    ticket.id.parse().unwrap()
}

fn token_requests(sim: &HaloSimHandle) -> Vec<vigil_simulators::kit::LoggedRequest> {
    sim.requests().into_iter().filter(|r| r.path.eq_ignore_ascii_case("/auth/token")).collect()
}

struct HaloHarness {
    sim: HaloSimHandle,
    system: Arc<HaloPsaClient>,
}

#[async_trait]
impl PsaHarness for HaloHarness {
    fn system(&self) -> Arc<dyn TicketSystem> {
        self.system.clone()
    }
    fn company(&self) -> String {
        CONTOSO_CLIENT_ID.to_string()
    }
    fn place(&self) -> Option<String> {
        Some(SECURITY_TEAM.into())
    }
    async fn lose_next_create_response(&self) {
        self.sim.fail_next(HaloOperation::PostTickets, FailureMode::AfterCommit(503), 1);
    }
    async fn throttle_next(&self) {
        self.sim.fail_next(HaloOperation::Any, FailureMode::Throttle { retry_after: 2 }, 1);
    }
    async fn close_as_technician(&self, ticket: &TicketRef, by: &str) {
        self.sim.close_ticket(ticket_id(ticket), by).unwrap();
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
            .map(|t| t.actions.iter().filter_map(|a| a["note"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn the_halopsa_connector_honours_the_ticket_system_contract() {
    let (sim, client) = started(HaloSimConfig::hosted()).await;
    ticket_system_contract(&HaloHarness { sim, system: Arc::new(client) }).await;
}

#[tokio::test]
async fn a_hosted_instance_gets_its_tenant_parameter_and_a_self_hosted_one_none() {
    let (hosted, client) = started(HaloSimConfig::hosted()).await;
    assert_eq!(client.find_ticket("vigil:none").await.unwrap(), None);
    let requests = token_requests(&hosted);
    assert_eq!(requests.len(), 1);
    assert_eq!((requests[0].method.as_str(), requests[0].query.as_str()), ("POST", "tenant=vigilsim"));

    let (own, client) = started(HaloSimConfig::self_hosted()).await;
    assert_eq!(client.find_ticket("vigil:none").await.unwrap(), None);
    let requests = token_requests(&own);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].query, "", "no tenant parameter for a self-hosted instance");

    // A hosted instance refuses a token request for another tenant: the settings are wrong.
    let mut wrong = destination(&hosted, Routing::default());
    if let DestinationSettings::HaloPsa(settings) = &mut wrong.settings {
        settings.tenant = Some("someone-else".into());
    }
    let error = client_for(&wrong, credentials(&hosted)).find_ticket("vigil:x").await.unwrap_err();
    assert!(matches!(error, SinkError::Unauthorized(_)), "{error:?}");
}

#[tokio::test]
async fn a_token_is_reused_until_it_expires_and_refreshed_once_when_halo_answers_401() {
    let (sim, client) = started(HaloSimConfig::hosted()).await;
    let ticket = client.create_ticket(&new_ticket("vigil:token-1")).await.unwrap();
    assert_eq!(client.find_ticket("vigil:token-1").await.unwrap(), Some(ticket.clone()));
    assert_eq!(token_requests(&sim).len(), 1, "one token serves many requests");

    sim.expire_tokens();
    let before = sim.requests().len();
    assert_eq!(client.find_ticket("vigil:token-1").await.unwrap(), Some(ticket), "the request succeeds after one refresh");
    let after: Vec<_> = sim.requests().into_iter().skip(before).collect();
    let operations: Vec<&str> = after.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(operations, ["unauthorized", "token", "list_tickets"], "{after:?}");
    assert_eq!(token_requests(&sim).len(), 2, "exactly one new token");
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_and_the_secret_never_shows() {
    let (sim, _) = started(HaloSimConfig::hosted()).await;
    let wrong = DestinationCredentials::HaloPsa { client_id: sim.config().client_id, client_secret: SecretString::new("WrongSecret0001") };
    let client = client_for(&destination(&sim, Routing::default()), wrong);
    let error = client.find_ticket("vigil:x").await.unwrap_err();
    assert!(matches!(error, SinkError::Unauthorized(_)), "{error:?}");
    assert!(!error.to_string().contains("WrongSecret0001") && !format!("{client:?}").contains("WrongSecret0001"));
}

#[tokio::test]
async fn a_ticket_is_created_with_an_array_body_carrying_the_routing_the_contact_and_the_reference() {
    let (sim, client) = started(HaloSimConfig::hosted()).await;
    let mut ticket = new_ticket("vigil:array-1");
    ticket.content.affected_user = Some("Adele.Vance@contoso.example".into());
    let created = client.create_ticket(&ticket).await.unwrap();
    let stored = sim.ticket(ticket_id(&created)).unwrap().item;
    assert_eq!(stored["client_id"], CONTOSO_CLIENT_ID);
    assert_eq!(stored["team"], SECURITY_TEAM);
    assert_eq!((stored["priority_id"].clone(), stored["tickettype_id"].clone()), (2.into(), 21.into()));
    assert_eq!((stored["user_id"].clone(), stored["site_id"].clone()), (CONTOSO_USER_ID.into(), CONTOSO_SITE_ID.into()));
    assert_eq!(stored["supplier_reference"], "vigil:array-1");
    assert!(stored["details_html"].as_str().unwrap().contains("<br>"));

    // The simulator refuses what Halo refuses: a client that does not exist, a team it lacks.
    let missing = NewTicket { company: "999".into(), ..new_ticket("vigil:array-2") };
    let error = client.create_ticket(&missing).await.unwrap_err();
    assert!(matches!(&error, SinkError::Rejected(m) if m.contains("[0].client_id")), "{error:?}");
    let no_team = NewTicket { place: Some("Nobody".into()), ..new_ticket("vigil:array-3") };
    assert!(matches!(client.create_ticket(&no_team).await, Err(SinkError::Rejected(_))));
    assert_eq!(sim.tickets().len(), 1);
}

#[tokio::test]
async fn the_simulator_refuses_a_body_that_is_not_an_array_or_breaks_the_schema() {
    let (sim, _) = started(HaloSimConfig::self_hosted()).await;
    let http = reqwest::Client::new();
    let config = sim.config();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
        ("scope", "all"),
    ];
    let token: serde_json::Value =
        http.post(format!("{}/auth/token", sim.base_url())).form(&form).send().await.unwrap().json().await.unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let post = |body: serde_json::Value| {
        http.post(format!("{}/api/Tickets", sim.base_url())).header("Authorization", bearer.clone()).json(&body).send()
    };
    let object = post(serde_json::json!({"summary": "x", "client_id": CONTOSO_CLIENT_ID})).await.unwrap();
    assert_eq!(object.status(), 400);
    let body: serde_json::Value = object.json().await.unwrap();
    assert!(body["body"].as_str().unwrap().contains("array"), "{body}");
    let unknown = post(serde_json::json!([{"summary": "x", "client_id": CONTOSO_CLIENT_ID, "externalid": "v"}])).await.unwrap();
    assert_eq!(unknown.status(), 400);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert!(body.get("[0].externalid").is_some(), "{body}");
    let typed = post(serde_json::json!([{"summary": "x", "client_id": "twelve"}])).await.unwrap();
    assert_eq!(typed.status(), 400);
    let action = http
        .post(format!("{}/api/Actions", sim.base_url()))
        .header("Authorization", bearer.clone())
        .json(&serde_json::json!([{"ticket_id": 1, "note": "x"}]))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = action.json().await.unwrap();
    assert_eq!(body["[0].outcome_id"], "An Outcome must be entered for this Action");
    assert!(sim.tickets().is_empty());
}

#[tokio::test]
async fn clients_are_read_page_by_page_until_the_record_count() {
    let (sim, client) = started(HaloSimConfig::hosted()).await;
    for i in 0..230 {
        sim.add_client(&format!("Paged client {i:03}"), false);
    }
    sim.add_client("Gone client", true);
    let clients = client.lookup(&Lookup::Companies { search: None }).await.unwrap();
    assert_eq!(clients.len(), 232, "230 added and the two seeded active clients; not the inactive ones");
    let pages: Vec<String> = sim.requests().into_iter().filter(|r| r.path.eq_ignore_ascii_case("/api/Client")).map(|r| r.query).collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages.iter().all(|q| q.contains("pageinate=true") && q.contains("page_size=100")), "{pages:?}");
    assert!(pages[2].contains("page_no=3"));
    let found = client.lookup(&Lookup::Companies { search: Some("fabrikam".into()) }).await.unwrap();
    assert_eq!(found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Fabrikam Inc"]);
}

#[tokio::test]
async fn a_technicians_close_reads_back_as_closed_with_who_and_when_and_a_deleted_ticket_as_gone() {
    let (sim, client) = started(HaloSimConfig::hosted()).await;
    let open = client.create_ticket(&new_ticket("vigil:state-1")).await.unwrap();
    let closed = client.create_ticket(&new_ticket("vigil:state-2")).await.unwrap();
    let deleted = client.create_ticket(&new_ticket("vigil:state-3")).await.unwrap();
    sim.close_ticket(ticket_id(&closed), "Jane Smith").unwrap();
    sim.delete_ticket(ticket_id(&deleted)).unwrap();
    let states = client.ticket_states(&[open.clone(), closed.clone(), deleted.clone()]).await.unwrap();
    assert_eq!(states[0], (open, TicketState::Open { status: "New".into() }));
    match &states[1].1 {
        TicketState::Closed { status, by, at } => {
            assert_eq!(status, "Closed");
            assert_eq!(by.as_deref(), Some("Jane Smith"));
            assert!(at.is_some_and(|at| (Utc::now() - at).num_minutes().abs() < 5), "{at:?}");
        }
        other => panic!("closed by a technician, not {other:?}"),
    }
    assert_eq!(states[2], (deleted.clone(), TicketState::Gone));
    let note = TicketNote { text: "x [m]".into(), marker: "[m]".into() };
    assert!(matches!(client.has_note(&deleted, "[m]").await, Err(SinkError::Gone(_))));
    assert!(matches!(client.add_note(&deleted, &note).await, Err(SinkError::Gone(_))));
}

#[tokio::test]
async fn vigil_closes_with_the_routed_status_and_a_note_is_a_private_action_with_the_outcome() {
    let (sim, _) = started(HaloSimConfig::hosted()).await;
    let client = client_for(&destination(&sim, Routing { closed_status: Some("9".into()), ..Routing::default() }), credentials(&sim));
    let ticket = client.create_ticket(&new_ticket("vigil:close-1")).await.unwrap();
    let note = TicketNote { text: "Matched again <3 times>.\n[vigil:close-1:hits=3]".into(), marker: "[vigil:close-1:hits=3]".into() };
    client.add_note(&ticket, &note).await.unwrap();
    let action = sim.ticket(ticket_id(&ticket)).unwrap().actions[0].clone();
    assert_eq!((action["outcome_id"].clone(), action["hiddenfromuser"].clone()), (7.into(), true.into()));
    assert!(action["note_html"].as_str().unwrap().contains("&lt;3 times&gt;"));
    assert!(client.has_note(&ticket, &note.marker).await.unwrap());
    client.close_ticket(&ticket, None, "Resolved in Vigil.").await.unwrap();
    let stored = sim.ticket(ticket_id(&ticket)).unwrap().item;
    assert_eq!((stored["status_id"].clone(), stored["hasbeenclosed"].clone()), (9.into(), true.into()));
    assert_eq!(stored["closure_note"], "Resolved in Vigil.");
    let posts = sim.requests().iter().filter(|r| r.operation == "post_tickets").count();
    client.close_ticket(&ticket, None, "Resolved in Vigil.").await.unwrap();
    assert_eq!(sim.requests().iter().filter(|r| r.operation == "post_tickets").count(), posts, "a closed ticket is not written again");
}

#[tokio::test]
async fn lookups_list_teams_priorities_statuses_agents_and_a_clients_users_and_sites() {
    let (_sim, client) = started(HaloSimConfig::hosted()).await;
    let teams = client.lookup(&Lookup::Places).await.unwrap();
    assert!(teams.iter().any(|t| t.id == SECURITY_TEAM && t.name == SECURITY_TEAM), "{teams:?}");
    let priorities = client.lookup(&Lookup::Priorities).await.unwrap();
    assert_eq!(priorities.iter().map(|p| (p.id.as_str(), p.name.as_str())).collect::<Vec<_>>()[..2], [("1", "Critical"), ("2", "High")]);
    let statuses = client.lookup(&Lookup::Statuses { place: None }).await.unwrap();
    let closing: Vec<&str> = statuses.iter().filter(|s| s.closes == Some(true)).map(|s| s.name.as_str()).collect();
    assert_eq!(closing, ["Closed"]);
    let users = client.lookup(&Lookup::Contacts { company: CONTOSO_CLIENT_ID.to_string(), email: None }).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!((users[0].id.as_str(), users[0].email.as_deref()), ("501", Some("adele.vance@contoso.example")));
    let none = client.lookup(&Lookup::Contacts { company: "13".into(), email: Some("adele.vance@contoso.example".into()) }).await.unwrap();
    assert!(none.is_empty());
    let sites = client.lookup(&Lookup::Sites { company: CONTOSO_CLIENT_ID.to_string() }).await.unwrap();
    assert_eq!(sites.iter().map(|s| (s.id.as_str(), s.name.as_str())).collect::<Vec<_>>(), [("21", "Contoso HQ")]);
    assert!(client.lookup(&Lookup::Sites { company: "13".into() }).await.unwrap().is_empty(), "another client's sites are not listed");
    let agents = client.lookup(&Lookup::Technicians).await.unwrap();
    assert!(agents.iter().any(|a| a.name == "Alex Tech"), "{agents:?}");
}

#[tokio::test]
async fn the_check_reports_a_missing_team_priority_and_closed_status_and_passes_a_good_routing() {
    let (sim, client) = started(HaloSimConfig::hosted()).await;
    let good = Routing {
        default_place: Some(SECURITY_TEAM.into()),
        priorities: [(Severity::High, "2".to_owned())].into(),
        closed_status: Some("9".into()),
        ..Routing::default()
    };
    assert_eq!(client.check(&destination(&sim, good)).await.unwrap(), Vec::<String>::new());
    let bad = Routing {
        default_place: Some(SECURITY_TEAM.into()),
        places: [(Category::ThreatManagement, "Blue Team".to_owned())].into(),
        priorities: [(Severity::High, "102".to_owned())].into(),
        closed_status: Some("77".into()),
        ..Routing::default()
    };
    let problems = client.check(&destination(&sim, bad)).await.unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("Blue Team") && problems[1].contains("102") && problems[2].contains("77"), "{problems:?}");
    assert!(sim.tickets().is_empty(), "the check creates nothing");
}
