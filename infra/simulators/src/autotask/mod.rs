//! A faithful in-process simulator of the Autotask PSA REST API (`ATServicesRest/V1.0`), for
//! tests and the local stack, built on the shared [`kit`](crate::kit).
//!
//! It serves, on `127.0.0.1` and a random port (paths are matched case-insensitively, like
//! the IIS-hosted original):
//!
//! * without authentication: `GET /atservicesrest/v1.0/zoneInformation?user={email}` (zone
//!   discovery; the zone `url` is this server's `http://127.0.0.1:PORT/atservicesrest/`; an
//!   unknown user answers `404 {"errors":[…]}`) and `GET /atservicesrest/versioninformation`;
//! * with the `ApiIntegrationCode`, `UserName` and `Secret` headers (names case-insensitive;
//!   missing or wrong → `401` with an empty body), under `/atservicesrest/V1.0`:
//!   * `POST /Tickets` → `{"itemId": N}`; `GET /Tickets/{id}` → `{"item": {…}}` — an unknown
//!     (or deleted) id answers **`200 {"item": null}`**, like the real API; `PATCH /Tickets`
//!     with `{"id": N, …}` (partial update) → `{"itemId": N}`;
//!   * `POST /Tickets/query`, `GET /Tickets/query?search=`, `POST|GET /Tickets/query/count`,
//!     `GET /Tickets/query/next?paging=&search=` (the `nextPageUrl`/`prevPageUrl` targets);
//!   * `POST /Tickets/{id}/Notes` → `{"itemId": N}` (the only way to create a note: `POST
//!     /TicketNotes` answers `405 {"errors":[…]}`), `GET /Tickets/{id}/Notes`,
//!     `GET /Tickets/{id}/Notes/{noteId}`, `POST|GET /TicketNotes/query[/count]`,
//!     `GET /TicketNotes/{id}`;
//!   * `POST|GET /Companies/query[/count]`, `GET /Companies/{id}`, and the same for `Contacts`
//!     and `Resources` (technicians: `{id, firstName, lastName, userName, email, isActive,
//!     resourceType, …}`, the display name split into first and last name, see [`directory`]);
//!   * `GET /{Entity}/entityInformation`, `/entityInformation/fields` (with the simulator's
//!     picklists, see [`picklists`]), `/entityInformation/userDefinedFields`;
//!   * `GET /ThresholdInformation`;
//!   * recurring-service contracts for the billing sync: `GET /Contracts/{id}`,
//!     `POST /ContractServices/query`, `POST /ContractServiceUnits/query`,
//!     `POST /ContractServiceAdjustments` (unit deltas), with control routes to create contracts
//!     and edit units by hand (see [`contracts`]);
//!   * a served path with another method answers ASP.NET's `405 {"Message": "The requested
//!     resource does not support http method 'GET'."}` (e.g. `GET /Tickets`); an unknown path
//!     `404 {"errors": […]}`.
//! * control routes without authentication: the kit's `POST /_sim/fail`, `POST /_sim/reset`,
//!   `GET /_sim/requests`, plus `GET /_sim/tickets`, `POST /_sim/tickets/{id}/complete`
//!   `{"by": "Resource name"}` or `{"byResourceID": N}`, `POST /_sim/tickets/{id}/delete`,
//!   `POST /_sim/tickets/{id}/merge` `{"into": N}`, `POST /_sim/threshold` `{"threshold": N}`,
//!   `POST /_sim/clock/advance` `{"seconds": N}`, `POST /_sim/companies` `{"name"}`,
//!   `POST /_sim/contacts` `{"companyID","emailAddress","firstName","lastName"}`,
//!   `POST /_sim/resources` `{"name"}`.
//!
//! Validation follows the real API (see `shared/reference/psa-apis.md` §2): property names are
//! case-insensitive on input and emitted camelCase; unknown properties are refused; required
//! fields and max lengths come from the embedded constraints file
//! (`infra/schemas/autotask-field-constraints.derived.json`), field names and types from the
//! embedded swagger subset (`infra/schemas/autotask-ticketing-subset.json`, whose
//! `ResourceModel` is the reference swagger's, unmodified, and gives the queryable `Resources`
//! fields, so an unknown one is refused like an unknown `Contacts` field); picklist fields must
//! hold active values; `companyID` must exist and `contactID` must belong to it. Validation
//! failures answer **HTTP 500** `{"errors": ["…"]}` naming the field (Autotask's habit);
//! malformed JSON answers `400 {"errors": […]}`. Read-only fields (`createDate`,
//! `completedDate`, `ticketNumber`, …) sent in a body are ignored, as the real API does.
//!
//! The simulator's deliberate choices where the reference is silent or unconfirmed:
//! * `dueDateTime` is **required** on ticket creation (required in the SOAP era; clients send it);
//! * a query needs at least one filter condition and at most 500;
//! * `PATCH` of an unknown ticket id answers `404 {"errors":[…]}`;
//! * over the request threshold ([`threshold`]) requests answer `429` with
//!   `{"errors":["…threshold…"]}` and a `Retry-After` header (the real status is unconfirmed);
//! * merging ([`AutotaskSimHandle::merge_ticket`]) completes the merged ticket and records the
//!   survivor in notes on both tickets (real Autotask's merge semantics are not in the
//!   reference: unconfirmed).

mod auth;
mod contracts;
mod control;
pub mod directory;
mod model;
mod notes;
pub mod picklists;
mod query;
mod server;
pub mod threshold;
mod tickets;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use crate::kit::FailureMode;
use crate::kit::{LoggedRequest, Operation, SimServer};

/// Path of the zone root below the base URL (what zone discovery's `url` points to).
pub const ZONE_PATH: &str = "/atservicesrest/";
/// Path of the API root below the base URL.
pub const API_PATH: &str = "/atservicesrest/V1.0";
/// Autotask's default request threshold per rolling hour.
pub const DEFAULT_THRESHOLD: u64 = 10_000;

/// The API user the simulated tenant accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct AutotaskCredentials {
    /// API-only user name, in email form (compared case-insensitively).
    pub username: String,
    /// That user's secret (compared exactly).
    pub secret: String,
    /// The `ApiIntegrationCode` (tracking identifier; compared exactly).
    pub integration_code: String,
}

impl AutotaskCredentials {
    /// Fixed, obviously fake credentials for tests and the local stack.
    pub fn sample() -> Self {
        AutotaskCredentials {
            username: "vigil-api@vigilsim.example".to_string(),
            secret: "SimSecret0001".to_string(),
            integration_code: "VIGILSIMTRACKING0001".to_string(),
        }
    }
}

impl fmt::Debug for AutotaskCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutotaskCredentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("integration_code", &"<redacted>")
            .finish()
    }
}

/// An operation failures can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutotaskOperation {
    /// `POST /Tickets`.
    CreateTicket,
    /// `GET /Tickets/{id}`.
    GetTicket,
    /// `Tickets/query…` (query, count, next page).
    QueryTickets,
    /// `PATCH /Tickets`.
    UpdateTicket,
    /// `POST /Tickets/{id}/Notes`.
    AddNote,
    /// `GET /Tickets/{id}/Notes…`, `TicketNotes/query…`, `GET /TicketNotes/{id}`.
    QueryNotes,
    /// Companies, contacts, resources, entity information, threshold information.
    Lookup,
    /// `GET /Contracts/{id}`, `ContractServices/query`, `ContractServiceUnits/query` (the
    /// billing sync's reads).
    Billing,
    /// `POST /ContractServiceAdjustments` (the billing sync's write).
    AdjustContract,
    /// Every authenticated API request (not zone discovery, not `/_sim`).
    Any,
}

impl Operation for AutotaskOperation {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "create_ticket" => AutotaskOperation::CreateTicket,
            "get_ticket" => AutotaskOperation::GetTicket,
            "query_tickets" => AutotaskOperation::QueryTickets,
            "update_ticket" => AutotaskOperation::UpdateTicket,
            "add_note" => AutotaskOperation::AddNote,
            "query_notes" => AutotaskOperation::QueryNotes,
            "lookup" => AutotaskOperation::Lookup,
            "billing" => AutotaskOperation::Billing,
            "adjust_contract" => AutotaskOperation::AdjustContract,
            "any" => AutotaskOperation::Any,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            AutotaskOperation::CreateTicket => "create_ticket",
            AutotaskOperation::GetTicket => "get_ticket",
            AutotaskOperation::QueryTickets => "query_tickets",
            AutotaskOperation::UpdateTicket => "update_ticket",
            AutotaskOperation::AddNote => "add_note",
            AutotaskOperation::QueryNotes => "query_notes",
            AutotaskOperation::Lookup => "lookup",
            AutotaskOperation::Billing => "billing",
            AutotaskOperation::AdjustContract => "adjust_contract",
            AutotaskOperation::Any => "any",
        }
    }

    fn is_any(self) -> bool {
        self == AutotaskOperation::Any
    }
}

/// A stored ticket as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimTicket {
    /// Ticket id.
    pub id: i64,
    /// The ticket as `GET /Tickets/{id}` returns it (camelCase, every known field).
    pub item: Value,
    /// Its notes, oldest first, as the API returns them.
    pub notes: Vec<Value>,
    /// The surviving ticket, when this one was merged into another.
    pub merged_into: Option<i64>,
}

/// Entry point: `AutotaskSim::start(creds).await`.
pub struct AutotaskSim;

impl AutotaskSim {
    /// Binds `127.0.0.1:0` and serves the simulator on the current tokio runtime until the last
    /// clone of the returned handle is dropped or [`AutotaskSimHandle::shutdown`] is called.
    pub async fn start(creds: AutotaskCredentials) -> std::io::Result<AutotaskSimHandle> {
        let specs = model::specs().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(server::Shared::new(creds, specs, addr));
        let app = server::router(shared.clone());
        let server = SimServer::serve("autotask", listener, app)?;
        Ok(AutotaskSimHandle { shared, server })
    }
}

/// Handle on a running simulator. Clones share the server; it stops when the last clone is
/// dropped or when [`shutdown`](Self::shutdown) is called on any clone.
#[derive(Clone)]
pub struct AutotaskSimHandle {
    shared: Arc<server::Shared>,
    server: SimServer,
}

impl fmt::Debug for AutotaskSimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutotaskSimHandle").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl AutotaskSimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `http://127.0.0.1:PORT/atservicesrest/`: what zone discovery answers as `url`.
    pub fn zone_url(&self) -> String {
        format!("{}{ZONE_PATH}", self.base_url())
    }

    /// `http://127.0.0.1:PORT/atservicesrest/V1.0`.
    pub fn api_root(&self) -> String {
        format!("{}{API_PATH}", self.base_url())
    }

    /// The credentials the simulator accepts.
    pub fn credentials(&self) -> AutotaskCredentials {
        self.shared.creds.clone()
    }

    /// Snapshot of all stored (not deleted) tickets with their notes, ordered by id.
    pub fn tickets(&self) -> Vec<SimTicket> {
        self.shared.snapshot()
    }

    /// One stored ticket.
    pub fn ticket(&self, id: i64) -> Option<SimTicket> {
        self.shared.snapshot().into_iter().find(|t| t.id == id)
    }

    /// Arms a failure for the next `times` requests of `op` (`AutotaskOperation::Any`: of any
    /// API operation). Failures are consumed in the order they were armed.
    pub fn fail_next(&self, op: AutotaskOperation, mode: FailureMode, times: u32) {
        self.shared.kit.faults.arm(op, mode, times);
    }

    /// Every request received (control routes excluded), oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.kit.log.requests()
    }

    /// Number of requests received (control routes excluded).
    pub fn request_count(&self) -> u64 {
        self.shared.kit.log.request_count()
    }

    /// Sets the request threshold per rolling hour (default [`DEFAULT_THRESHOLD`]).
    pub fn set_threshold(&self, requests_per_hour: u64) {
        self.shared.lock().threshold = requests_per_hour;
    }

    /// Requests counted against the threshold in the current rolling hour.
    pub fn current_timeframe_request_count(&self) -> u64 {
        threshold::current_count(&self.shared.kit)
    }

    /// Adds an active recurring-service contract from `start` to `end`; its id.
    pub fn add_contract(&self, name: &str, company_id: i64, start: chrono::NaiveDate, end: chrono::NaiveDate) -> i64 {
        self.shared.lock().contracts.add_contract(name, company_id, start, end)
    }

    /// Puts service `service_id` on a contract with `units`; the contract service's id.
    pub fn add_contract_service(&self, contract_id: i64, service_id: i64, units: i64) -> Option<i64> {
        self.shared.lock().contracts.add_service(contract_id, service_id, units)
    }

    /// A contract's `status` (1 active, 0 inactive).
    pub fn set_contract_status(&self, contract_id: i64, status: i64) -> bool {
        self.shared.lock().contracts.set_status(contract_id, status)
    }

    /// A contract's `contractType` (7 recurring service).
    pub fn set_contract_type(&self, contract_id: i64, contract_type: i64) -> bool {
        self.shared.lock().contracts.set_type(contract_id, contract_type)
    }

    /// A technician makes a contract service's units `units` from `day` on.
    pub fn set_units_by_hand(&self, contract_id: i64, service_id: i64, units: i64, day: chrono::NaiveDate) -> bool {
        self.shared.lock().contracts.set_units_by_hand(contract_id, service_id, units, day)
    }

    /// A contract service's units in the month of `day`.
    #[must_use]
    pub fn units_on(&self, contract_id: i64, service_id: i64, day: chrono::NaiveDate) -> Option<i64> {
        self.shared.lock().contracts.units_on(contract_id, service_id, day)
    }

    /// The adjustments posted to a contract through the API, oldest first.
    #[must_use]
    pub fn adjustments(&self, contract_id: i64) -> Vec<serde_json::Value> {
        self.shared.lock().contracts.adjustments(contract_id)
    }

    /// Moves the simulator's clock forward (timestamps, the rolling threshold window).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.kit.clock.advance(by);
    }

    /// From now on, the simulator's clock runs `scale` times as fast as real time (0 freezes it).
    pub fn set_clock_scale(&self, scale: f64) {
        self.shared.kit.clock.set_scale(scale);
    }

    /// The simulator's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.kit.clock.now()
    }

    /// Adds an active customer company; returns its id.
    pub fn add_company(&self, name: &str) -> i64 {
        self.shared.lock().directory.add_company(name)
    }

    /// Adds an active contact of `company_id` (not checked: a test may want a dangling one);
    /// returns its id.
    pub fn add_contact(&self, company_id: i64, email: &str, first_name: &str, last_name: &str) -> i64 {
        self.shared.lock().directory.add_contact(company_id, email, first_name, last_name)
    }

    /// Adds an active resource (technician) named `name` (split into `firstName` and
    /// `lastName` at the first space, see [`directory`]); returns its id.
    pub fn add_resource(&self, name: &str) -> i64 {
        self.shared.lock().directory.add_resource(name)
    }

    /// A technician completes the ticket: status Complete (5), `completedDate` now,
    /// `completedByResourceID` (default: the first technician, "Alex Tech").
    pub fn complete_ticket(&self, id: i64, by_resource_id: Option<i64>) -> Result<(), String> {
        self.shared.complete_ticket(id, by_resource_id)
    }

    /// A technician deletes the ticket (and its notes): `GET` answers `{"item": null}` and
    /// queries no longer find it.
    pub fn delete_ticket(&self, id: i64) -> Result<(), String> {
        self.shared.delete_ticket(id)
    }

    /// A technician merges ticket `id` into `into`: `id` becomes Complete, a note on each ticket
    /// names the other, and [`SimTicket::merged_into`] records the survivor.
    pub fn merge_ticket(&self, id: i64, into: i64) -> Result<(), String> {
        self.shared.merge_ticket(id, into)
    }

    /// Forgets tickets, notes, added companies/contacts/resources, armed failures, the request
    /// log and the threshold setting; ids restart. The clock keeps its offset.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits (up to 5 s) for it to finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
