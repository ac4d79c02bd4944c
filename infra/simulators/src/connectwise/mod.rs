//! A faithful in-process simulator of the ConnectWise Manage (ConnectWise PSA) REST API, for
//! tests and the local stack, on the shared [`kit`](crate::kit) (server lifecycle, fault plan,
//! request log).
//!
//! It serves, on `127.0.0.1` and a random port:
//!
//! * `GET /login/companyinfo/{company}` — unauthenticated codebase discovery (`null` for an
//!   unknown company, like the real server);
//! * under `/{codebase}/apis/3.0` (the discovery answer says `v4_6_release/`; any `v…` codebase
//!   is accepted, as the real cloud does):
//!   * `POST /service/tickets`, `GET /service/tickets`, `GET /service/tickets/count`,
//!     `GET|PATCH /service/tickets/{id}` (`tickets.rs`, references checked in `references.rs`);
//!   * `POST|GET /service/tickets/{id}/notes`, `GET /service/tickets/{id}/notes/count`,
//!     `GET /service/tickets/{id}/notes/{noteId}` (`notes.rs`);
//!   * lookups (`lookups.rs`): `GET /service/boards[/{id}]`, `/service/boards/{id}/statuses[/{id}]`
//!     (board-specific tables), `/service/boards/{id}/types`, `/service/priorities[/{id}]`,
//!     `/company/companies[/count|/{id}]`, `/company/contacts[/count|/{id}]` (with
//!     `childConditions` on `communicationItems`), and `GET /system/info`;
//!   * callbacks (`callbacks.rs`): `POST|GET /system/callbacks`, `GET|DELETE /system/callbacks/{id}`;
//!   * agreements (`agreements.rs`): `GET /finance/agreements/{id}`, `GET|POST
//!     /finance/agreements/{id}/additions`, `GET|PATCH …/additions/{id}`, `GET /procurement/catalog[/{id}]`;
//! * `GET /{codebase}/system/callbackkey/index.rails?companyName=…&id=…` — a callback's
//!   signing key, the target of every delivery's `Metadata.key_url`;
//! * control endpoints without authentication (`control.rs`): `GET /_sim/tickets`,
//!   `POST /_sim/fail`, `POST /_sim/reset`, `GET /_sim/requests`, and technician actions (`technician.rs`)
//!   `POST /_sim/tickets/{id}/close|reopen|delete|merge`, and an addition's quantity edited by
//!   hand `POST /_sim/agreements/{id}/additions/{additionId}/quantity`.
//!
//! The modules: `auth.rs` (credentials, `Basic` + `clientId`, discovery), `http.rs` (plumbing,
//! error shapes, routing, armed failures), `listing.rs` (`conditions`, `childConditions`,
//! `orderBy`, `fields`, paging) over `conditions.rs` (the query language).
//!
//! What the simulator checks, like the real API (see `shared/reference/psa-apis.md` §1):
//! `Authorization: Basic base64("{companyId}+{publicKey}:{privateKey}")` and a `clientId`
//! header on every API request (header names case-insensitive); request bodies against the
//! published OpenAPI component schemas (`Ticket`, `ServiceNote`, …) including the max lengths
//! hidden in descriptions, answering ConnectWise's `400 InvalidObject` shape with per-field
//! `errors`; the `conditions` query language (`=`, `!=`, `<`, `<=`, `>`, `>=`, `contains`,
//! `like` with `*`, `in (…)`, `not`, `and`, `or`, parentheses, nested `a/b` paths, quoted strings,
//! numbers, booleans, `null`, `[dates]`); `page`/`pageSize` paging with a `Link` header and
//! forward-only paging (`pagination-type: forward-only` + `pageId`); `fields` projections and
//! `orderBy`.
//!
//! Like the live API, unknown members in a request body are refused: `400 InvalidObject` with an
//! `InvalidField` error naming the member. A path no route matches answers the server's HTML
//! `404` page (not JSON; an unknown ticket id is still the JSON `NotFound`); an injected 5xx is a
//! server exception `{"code":"ConnectWiseApi","message":"…","errors":null}`; `GET` of one ticket
//! returns the full live shape (`status` with `Sort` and `_info.status_href`, `_info` hrefs).
//!
//! Where the simulator is deliberately stricter than ConnectWise, to catch our own bugs:
//! unknown fields in `conditions` and `orderBy` are rejected, and JSON bodies must be sent as
//! `application/json`.
//!
//! Failures can be injected per operation ([`ConnectWiseSimHandle::fail_next`]; lookups and
//! callback registration have their own [`SimOperation`]s): a plain error status before any work, an error status *after* the work was committed (a crash after
//! commit, the case that makes clients create duplicate tickets), or a `429` throttle with
//! `Retry-After: 1`.

mod agreements;
mod auth;
mod callbacks;
mod conditions;
mod control;
mod http;
mod listing;
mod lookups;
mod notes;
mod references;
mod technician;
mod tickets;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use auth::ConnectWiseCredentials;
pub use callbacks::{CallbackDelivery, callback_signature};

use crate::kit::{Kit, LoggedRequest, Operation, SimServer};
use crate::openapi_validate::SchemaSet;

/// The codebase the discovery endpoint advertises (with the trailing slash CW uses).
pub const CODEBASE: &str = "v4_6_release/";
/// Path of the API root below the base URL.
pub const API_PATH: &str = "/v4_6_release/apis/3.0";
/// Version of the ConnectWise model the embedded schemas describe.
pub const API_VERSION: &str = "2026.4";

const SCHEMA_JSON: &str = include_str!("../../../schemas/connectwise-manage-ticketing-schemas.json");
/// `Contact` and its closure (extract of the same spec), merged into the ticketing schemas.
const CONTACT_SCHEMA_JSON: &str = include_str!("../../../schemas/connectwise-manage-contact-schemas.json");
/// `CatalogItem` and its closure (extract of the same spec), for the agreement additions.
const FINANCE_SCHEMA_JSON: &str = include_str!("../../../schemas/connectwise-manage-finance-schemas.json");
const FIRST_TICKET_ID: i64 = 1001;
const FIRST_NOTE_ID: i64 = 1;
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 1000;
/// Identifier of the API member the simulator pretends the keys belong to (`_info.updatedBy`).
const API_MEMBER: &str = "VigilSimApi";
/// Board status table: (id, name, closed). Ids not in the table are stored as sent.
const STATUSES: &[(i64, &str, bool)] = &[(1, "New", false), (2, "In Progress", false), (99, ">Closed", true)];
/// `POST`-only ticket fields that ConnectWise accepts but never returns.
const POST_ONLY_TICKET_FIELDS: &[&str] = &["initialDescription", "initialInternalAnalysis", "initialResolution"];
/// Ticket fields a `PATCH` may not change (server-maintained).
const READ_ONLY_TICKET_FIELDS: &[&str] = &["id", "_info", "closedFlag", "closedDate", "closedBy"];

fn schemas() -> Result<&'static SchemaSet, String> {
    static SCHEMAS: OnceLock<Result<SchemaSet, String>> = OnceLock::new();
    SCHEMAS.get_or_init(build_schemas).as_ref().map_err(Clone::clone)
}

/// The ticketing extract, plus the contact extract and the hand-written `CallbackEntry` schema.
fn build_schemas() -> Result<SchemaSet, String> {
    let mut doc: Value = serde_json::from_str(SCHEMA_JSON).map_err(|e| format!("ticketing schemas: {e}"))?;
    let contacts: Value = serde_json::from_str(CONTACT_SCHEMA_JSON).map_err(|e| format!("contact schemas: {e}"))?;
    let finance: Value = serde_json::from_str(FINANCE_SCHEMA_JSON).map_err(|e| format!("finance schemas: {e}"))?;
    let target = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut).ok_or("ticketing schemas have no components")?;
    for extract in [&contacts, &finance] {
        let extra = extract.pointer("/components/schemas").and_then(Value::as_object).ok_or("an extract has no components")?;
        for (name, schema) in extra {
            target.insert(name.clone(), schema.clone());
        }
    }
    target.insert("CallbackEntry".to_string(), callbacks::callback_entry_schema());
    SchemaSet::from_openapi_json(&doc.to_string())
}

/// An operation failures can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimOperation {
    /// `POST /service/tickets`.
    CreateTicket,
    /// `GET /service/tickets/{id}`.
    GetTicket,
    /// `GET /service/tickets` and `GET /service/tickets/count`.
    SearchTickets,
    /// `PATCH /service/tickets/{id}`.
    UpdateTicket,
    /// `POST /service/tickets/{id}/notes`.
    AddNote,
    /// `GET /service/tickets/{id}/notes[...]`.
    ListNotes,
    /// `GET /system/info`, boards (with their statuses and types), priorities, companies and
    /// contacts.
    Lookup,
    /// `POST|GET /system/callbacks`, `GET|DELETE /system/callbacks/{id}` (not the deliveries).
    Callbacks,
    /// `GET` of agreements, their additions and the product catalog.
    ReadAgreements,
    /// `POST|PATCH /finance/agreements/{id}/additions[/{id}]`.
    WriteAddition,
    /// Every authenticated API request (not `/login/companyinfo`, not `/_sim`).
    Any,
}

impl SimOperation {
    /// Parses the snake_case name used by `POST /_sim/fail` (`create_ticket`, `any`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "create_ticket" => SimOperation::CreateTicket,
            "get_ticket" => SimOperation::GetTicket,
            "search_tickets" => SimOperation::SearchTickets,
            "update_ticket" => SimOperation::UpdateTicket,
            "add_note" => SimOperation::AddNote,
            "list_notes" => SimOperation::ListNotes,
            "lookup" => SimOperation::Lookup,
            "callbacks" => SimOperation::Callbacks,
            "read_agreements" => SimOperation::ReadAgreements,
            "write_addition" => SimOperation::WriteAddition,
            "any" => SimOperation::Any,
            _ => return None,
        })
    }
}

impl Operation for SimOperation {
    fn from_name(name: &str) -> Option<Self> {
        SimOperation::from_name(name)
    }

    fn name(self) -> &'static str {
        match self {
            SimOperation::CreateTicket => "create_ticket",
            SimOperation::GetTicket => "get_ticket",
            SimOperation::SearchTickets => "search_tickets",
            SimOperation::UpdateTicket => "update_ticket",
            SimOperation::AddNote => "add_note",
            SimOperation::ListNotes => "list_notes",
            SimOperation::Lookup => "lookup",
            SimOperation::Callbacks => "callbacks",
            SimOperation::ReadAgreements => "read_agreements",
            SimOperation::WriteAddition => "write_addition",
            SimOperation::Any => "any",
        }
    }

    fn is_any(self) -> bool {
        self == SimOperation::Any
    }
}

/// How an injected failure behaves. ConnectWise keeps its own kind rather than the kit's
/// [`FailureMode`](crate::kit::FailureMode): its throttle always answers `Retry-After: 1` (a
/// unit variant callers match on) and it has no latency mode; the kit's [`FaultPlan`](
/// crate::kit::FaultPlan) queues it all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureMode {
    /// Answer this status without doing anything.
    Status(u16),
    /// Do the work (a ticket or note is stored) and then answer this status, like a crash after
    /// commit. Only triggers when the work itself succeeds; a request that fails validation
    /// gets its real error and leaves the injected failure armed.
    AfterCommit(u16),
    /// Answer `429 Too Many Requests` with `Retry-After: 1` without doing anything.
    Throttle,
    /// Do the work, then hold the response for this many seconds before sending it: the
    /// client's caller is killed (e.g. a Lambda timeout) after the ticket exists but before it
    /// learns the ticket id — a crash between "ticket created" and "ticket id stored".
    HangAfterCommit(u16),
}

/// Internal marker from the synchronous request path to the async handler: hold the response.
const HANG_HEADER: &str = "x-vigil-sim-hang-seconds";

/// A stored ticket as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimTicket {
    pub id: i64,
    /// The full stored ticket, including `POST`-only fields such as `initialDescription` that
    /// the API never returns.
    pub body: Value,
    /// Notes in creation order.
    pub notes: Vec<Value>,
}

/// Entry point: `ConnectWiseSim::start(creds).await`.
pub struct ConnectWiseSim;

impl ConnectWiseSim {
    /// Binds `127.0.0.1:0` and serves the simulator on the current tokio runtime until the last
    /// clone of the returned handle is dropped or [`ConnectWiseSimHandle::shutdown`] is called.
    pub async fn start(creds: ConnectWiseCredentials) -> std::io::Result<ConnectWiseSimHandle> {
        let schemas = schemas().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let outbox = callbacks::Outbox::start();
        let shared = Arc::new(Shared { creds, schemas, addr, kit: Kit::new(), state: Mutex::new(SimState::new()), outbox });
        let app = Router::new().fallback(http::handle).with_state(shared.clone());
        let server = SimServer::serve("connectwise", listener, app)?;
        Ok(ConnectWiseSimHandle { shared, server })
    }
}

/// Handle on a running simulator. Clones share the server; it stops when the last clone is
/// dropped or when [`shutdown`](Self::shutdown) is called on any clone.
#[derive(Clone)]
pub struct ConnectWiseSimHandle {
    shared: Arc<Shared>,
    server: SimServer,
}

impl fmt::Debug for ConnectWiseSimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectWiseSimHandle").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl ConnectWiseSimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `base_url() + "/v4_6_release/apis/3.0"`.
    pub fn api_root(&self) -> String {
        format!("{}{API_PATH}", self.base_url())
    }

    /// The credentials the simulator accepts.
    pub fn credentials(&self) -> ConnectWiseCredentials {
        self.shared.creds.clone()
    }

    /// Snapshot of all stored tickets, ordered by id.
    pub fn tickets(&self) -> Vec<SimTicket> {
        self.shared.lock().snapshot()
    }

    /// Arms a failure for the next `times` requests of `op` (`SimOperation::Any`: of any API
    /// operation). Failures are consumed in the order they were armed.
    pub fn fail_next(&self, op: SimOperation, mode: FailureMode, times: u32) {
        self.shared.kit.faults.arm(op, mode, times);
    }

    /// Number of requests received, control endpoints (`/_sim/...`) excluded.
    pub fn request_count(&self) -> u64 {
        self.shared.kit.log.request_count()
    }

    /// Every request received (control endpoints excluded), oldest first, with the operation
    /// it was routed to (`company_info`, `callback_key`, `unrouted` for the others).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.kit.log.requests()
    }

    /// Snapshot of the tickets deleted (or merged away) by a technician, ordered by id.
    pub fn deleted_tickets(&self) -> Vec<SimTicket> {
        self.shared.lock().deleted.iter().map(|(id, t)| t.sim_ticket(*id)).collect()
    }

    /// Adds a company (status Active, not deleted) and returns its id.
    pub fn add_company(&self, identifier: &str, name: &str) -> i64 {
        self.shared.add_company(identifier, name)
    }

    /// Adds a contact of `company_id` with one default e-mail communication item and returns its
    /// id. An unknown company is referenced by id only.
    pub fn add_contact(&self, company_id: i64, first: &str, last: &str, email: &str) -> i64 {
        self.shared.add_contact(company_id, first, last, email)
    }

    /// Adds a catalog item (a recurring service) and returns its id.
    pub fn add_product(&self, identifier: &str, description: &str) -> i64 {
        self.shared.add_product(identifier, description)
    }

    /// Adds an agreement of `company_id` from `start`, ending `end` (`None`: no ending date),
    /// and returns its id.
    pub fn add_agreement(&self, name: &str, company_id: i64, start: chrono::NaiveDate, end: Option<chrono::NaiveDate>) -> i64 {
        self.shared.add_agreement(name, company_id, start, end)
    }

    /// Cancels (or reinstates) an agreement; whether it exists.
    pub fn set_agreement_cancelled(&self, agreement_id: i64, cancelled: bool) -> bool {
        self.shared.set_agreement_cancelled(agreement_id, cancelled)
    }

    /// Sets an addition's quantity by hand (ConnectWise's own screens); whether it exists.
    pub fn set_addition_quantity_by_hand(&self, agreement_id: i64, addition_id: i64, quantity: f64) -> bool {
        self.shared.set_addition_quantity_by_hand(agreement_id, addition_id, quantity)
    }

    /// The additions of an agreement, oldest first, as the API returns them.
    pub fn additions(&self, agreement_id: i64) -> Vec<Value> {
        self.shared.additions_of(agreement_id)
    }

    /// Forgets all tickets and notes, callbacks, added companies and contacts, armed failures,
    /// the callback delivery log and the request count; ids restart and the seed data is back.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits (up to 5 s) for it to finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

struct Shared {
    creds: ConnectWiseCredentials,
    schemas: &'static SchemaSet,
    addr: SocketAddr,
    /// The kit's fault plan (with ConnectWise's failure kind), request log and clock.
    kit: Kit<SimOperation, FailureMode>,
    state: Mutex<SimState>,
    outbox: callbacks::Outbox,
}

struct StoredTicket {
    body: Map<String, Value>,
    notes: Vec<Value>,
}

impl StoredTicket {
    fn sim_ticket(&self, id: i64) -> SimTicket {
        SimTicket { id, body: Value::Object(self.body.clone()), notes: self.notes.clone() }
    }
}

struct SimState {
    tickets: BTreeMap<i64, StoredTicket>,
    /// Tickets a technician deleted or merged into another: the API answers `404` for them.
    deleted: BTreeMap<i64, StoredTicket>,
    next_ticket_id: i64,
    next_note_id: i64,
    companies: BTreeMap<i64, Value>,
    next_company_id: i64,
    contacts: BTreeMap<i64, Value>,
    next_contact_id: i64,
    callbacks: BTreeMap<i64, callbacks::CallbackEntry>,
    next_callback_id: i64,
    agreements: BTreeMap<i64, Value>,
    next_agreement_id: i64,
    additions: BTreeMap<i64, Value>,
    next_addition_id: i64,
    /// The product catalog (`CatalogItem`s).
    products: BTreeMap<i64, Value>,
    next_product_id: i64,
}

impl SimState {
    fn new() -> Self {
        let now = http::now_rfc3339();
        let companies = lookups::seed_companies(&now);
        let contacts = lookups::seed_contacts(&companies, &now);
        SimState {
            tickets: BTreeMap::new(),
            deleted: BTreeMap::new(),
            next_ticket_id: FIRST_TICKET_ID,
            next_note_id: FIRST_NOTE_ID,
            companies,
            next_company_id: lookups::FIRST_ADDED_COMPANY_ID,
            contacts,
            next_contact_id: lookups::FIRST_ADDED_CONTACT_ID,
            callbacks: BTreeMap::new(),
            next_callback_id: callbacks::FIRST_CALLBACK_ID,
            agreements: BTreeMap::new(),
            next_agreement_id: agreements::FIRST_AGREEMENT_ID,
            additions: BTreeMap::new(),
            next_addition_id: agreements::FIRST_ADDITION_ID,
            products: BTreeMap::new(),
            next_product_id: agreements::FIRST_PRODUCT_ID,
        }
    }

    fn snapshot(&self) -> Vec<SimTicket> {
        self.tickets.iter().map(|(id, t)| t.sim_ticket(*id)).collect()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_company(&self, identifier: &str, name: &str) -> i64 {
        let mut state = self.lock();
        let id = state.next_company_id;
        state.next_company_id += 1;
        state.companies.insert(id, lookups::company_json(id, identifier, name, false, &http::now_rfc3339()));
        id
    }

    fn add_contact(&self, company_id: i64, first: &str, last: &str, email: &str) -> i64 {
        let mut state = self.lock();
        let id = state.next_contact_id;
        state.next_contact_id += 1;
        let company = state.companies.get(&company_id).map_or_else(|| json!({"id": company_id}), lookups::company_reference);
        state.contacts.insert(id, lookups::contact_json(id, company, first, last, email, &http::now_rfc3339()));
        id
    }

    fn reset(&self) {
        *self.lock() = SimState::new();
        self.outbox.clear_log();
        self.kit.reset();
    }
}
