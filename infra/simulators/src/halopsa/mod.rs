//! A faithful in-process simulator of the HaloPSA REST API, for tests and the local stack,
//! built on the shared [`kit`](crate::kit). Wire format: `shared/reference/psa-apis.md` §3,
//! `licences-billing-outputs.md` §4 and the vendor schema subset
//! (`infra/schemas/halopsa-ticketing-subset.json`, embedded).
//!
//! It serves, on `127.0.0.1` and a random port (paths matched case-insensitively, like the
//! IIS-hosted original):
//!
//! * `POST /auth/token` ([`auth`]): form body `grant_type=client_credentials&client_id&
//!   client_secret&scope`; a hosted instance ([`HaloSimConfig::tenant`] set) also needs
//!   `?tenant=` to name it → `{"access_token","token_type":"Bearer","expires_in","scope"}`;
//! * with `Authorization: Bearer {token}` (unknown or expired → `401`, empty body), under
//!   `/api`:
//!   * `POST /Tickets` (**an array** of `Faults`; create, or update when an element has an
//!     `id`) → the ticket (one element) or the tickets; `GET /Tickets` (filters `search`,
//!     `search_supplier_reference`, `client_id`, `open_only`); `GET /Tickets/{id}` (404 when
//!     deleted); `DELETE /Tickets/{id}` ([`tickets`]);
//!   * `POST /Actions` (an array of `Actions`; `outcome_id` required), `GET /Actions?ticket_id=`
//!     ([`tickets`]);
//!   * `GET /RecurringInvoice/{id}`, `GET /RecurringInvoice`, `POST /RecurringInvoice` (update
//!     by `id`, counted) ([`recurring`]);
//!   * `GET /Client` (`search`, `includeinactive`), `GET /Users?client_id=&search=`, `GET /Team`,
//!     `GET /Priority`, `GET /Status`, `GET /TicketType`, `GET /Outcome` ([`directory`]);
//!   * lists of clients, users, tickets and actions page with `pageinate=true&page_size&
//!     page_no` (1-based) → `{"record_count": N, "<plural>": [...]}` (unpaged: the same shape,
//!     everything); teams, priorities, statuses, ticket types and outcomes are bare arrays;
//! * control routes without authentication ([`control`]): the kit's `POST /_sim/fail`,
//!   `POST /_sim/reset`, `GET /_sim/requests`, plus `GET /_sim/tickets`,
//!   `POST /_sim/tickets/{id}/close` `{"by": "Agent name"}`, `POST /_sim/tickets/{id}/delete`,
//!   `POST /_sim/clients` `{"name", "inactive"}`, `POST /_sim/tokens/expire`,
//!   `POST /_sim/clock/advance` `{"seconds"}`.
//!
//! Validation: a POST body that is not a JSON array answers `400`; each element is validated
//! against its schema (`Faults`, `Actions`): unknown members are refused and types checked.
//! Failures answer Halo's `400` with an object keyed by field (`{"[0].client_id": "…"}`).
//!
//! Deliberate choices where the reference is silent or unconfirmed:
//! * `client_id` must name an existing client on create; `team` (by name), `priority_id`
//!   (a `priorityid`), `tickettype_id`, `status_id`, `user_id` (of that client) and `site_id`
//!   must exist when sent; a blank `summary` is refused;
//! * an update (element with `id`) of an unknown ticket answers `400 {"[0].id": "…"}`;
//! * `search` matches summary, details and `supplier_reference` (substring, case-insensitive),
//!   `search_supplier_reference` that field only (substring, like a SQL `LIKE`);
//! * only the status "Closed" (9) closes a ticket: setting it marks `hasbeenclosed`,
//!   `dateclosed` and `closure_agent_id`, and logs an action with `new_status` and `who`;
//! * a hosted instance refuses a missing or wrong `tenant` with `400 {"error":
//!   "invalid_request"}`; a self-hosted one ignores the parameter;
//! * the GET list answers' members follow what public clients read (`id`, `name`,
//!   `emailaddress`, `site_id`, `priorityid`, …), since the schema declares no GET responses.

mod auth;
mod control;
pub mod directory;
mod recurring;
mod server;
#[cfg(test)]
mod tests;
mod tickets;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use crate::kit::FailureMode;
use crate::kit::{LoggedRequest, Operation, SimServer};

/// The vendor schema subset the simulator validates bodies against.
pub(crate) const SCHEMA_JSON: &str = include_str!("../../../schemas/halopsa-ticketing-subset.json");

/// The instance the simulator plays: its API application and, for a Halo-hosted instance,
/// its tenant name.
#[derive(Clone, PartialEq, Eq)]
pub struct HaloSimConfig {
    /// The API application's client id (compared exactly).
    pub client_id: String,
    /// Its secret (compared exactly).
    pub client_secret: String,
    /// `Some`: a hosted instance, whose token requests must carry `?tenant=` with this name;
    /// `None`: self-hosted.
    pub tenant: Option<String>,
    /// The lifetime of the tokens it issues.
    pub token_lifetime: Duration,
}

impl HaloSimConfig {
    /// A hosted instance (`tenant` "vigilsim") with fixed, obviously fake credentials.
    pub fn hosted() -> Self {
        HaloSimConfig {
            client_id: "vigil-sim-app".into(),
            client_secret: "HaloSimSecret0001".into(),
            tenant: Some("vigilsim".into()),
            token_lifetime: Duration::from_secs(3600),
        }
    }

    /// A self-hosted instance (no tenant parameter) with the same credentials.
    pub fn self_hosted() -> Self {
        HaloSimConfig { tenant: None, ..Self::hosted() }
    }
}

impl fmt::Debug for HaloSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HaloSimConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("tenant", &self.tenant)
            .field("token_lifetime", &self.token_lifetime)
            .finish()
    }
}

/// An operation failures can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HaloOperation {
    /// `POST /auth/token`.
    Token,
    /// `POST /api/Tickets` (create or update).
    PostTickets,
    /// `GET /api/Tickets/{id}`.
    GetTicket,
    /// `GET /api/Tickets`.
    ListTickets,
    /// `DELETE /api/Tickets/{id}`.
    DeleteTicket,
    /// `POST /api/Actions`.
    PostActions,
    /// `GET /api/Actions`.
    ListActions,
    /// `GET /api/RecurringInvoice[/{id}]`.
    ReadRecurringInvoices,
    /// `POST /api/RecurringInvoice` (update).
    PostRecurringInvoices,
    /// Clients, users, teams, priorities, statuses, ticket types, outcomes.
    Lookup,
    /// Every request but the control routes.
    Any,
}

impl Operation for HaloOperation {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "token" => HaloOperation::Token,
            "post_tickets" => HaloOperation::PostTickets,
            "get_ticket" => HaloOperation::GetTicket,
            "list_tickets" => HaloOperation::ListTickets,
            "delete_ticket" => HaloOperation::DeleteTicket,
            "post_actions" => HaloOperation::PostActions,
            "list_actions" => HaloOperation::ListActions,
            "read_recurring_invoices" => HaloOperation::ReadRecurringInvoices,
            "post_recurring_invoices" => HaloOperation::PostRecurringInvoices,
            "lookup" => HaloOperation::Lookup,
            "any" => HaloOperation::Any,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            HaloOperation::Token => "token",
            HaloOperation::PostTickets => "post_tickets",
            HaloOperation::GetTicket => "get_ticket",
            HaloOperation::ListTickets => "list_tickets",
            HaloOperation::DeleteTicket => "delete_ticket",
            HaloOperation::PostActions => "post_actions",
            HaloOperation::ListActions => "list_actions",
            HaloOperation::ReadRecurringInvoices => "read_recurring_invoices",
            HaloOperation::PostRecurringInvoices => "post_recurring_invoices",
            HaloOperation::Lookup => "lookup",
            HaloOperation::Any => "any",
        }
    }

    fn is_any(self) -> bool {
        self == HaloOperation::Any
    }
}

/// A stored ticket as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimTicket {
    /// Ticket id.
    pub id: i64,
    /// The ticket as `GET /api/Tickets/{id}` returns it.
    pub item: Value,
    /// Its actions, oldest first, as `GET /api/Actions` returns them (with `note_html`).
    pub actions: Vec<Value>,
}

/// Entry point: `HaloSim::start(config).await`.
pub struct HaloSim;

impl HaloSim {
    /// Binds `127.0.0.1:0` and serves the simulator on the current tokio runtime until the last
    /// clone of the returned handle is dropped or [`HaloSimHandle::shutdown`] is called.
    pub async fn start(config: HaloSimConfig) -> std::io::Result<HaloSimHandle> {
        let schemas = server::schemas().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let shared = Arc::new(server::Shared::new(config, schemas));
        let server = SimServer::start("halopsa", server::router(shared.clone())).await?;
        Ok(HaloSimHandle { shared, server })
    }
}

/// Handle on a running simulator. Clones share the server; it stops when the last clone is
/// dropped or when [`shutdown`](Self::shutdown) is called on any clone.
#[derive(Clone)]
pub struct HaloSimHandle {
    shared: Arc<server::Shared>,
    server: SimServer,
}

impl fmt::Debug for HaloSimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HaloSimHandle").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl HaloSimHandle {
    /// `http://127.0.0.1:PORT`: the instance root (`/auth` and `/api` below it).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The instance the simulator plays.
    pub fn config(&self) -> HaloSimConfig {
        self.shared.config.clone()
    }

    /// Snapshot of all stored (not deleted) tickets with their actions, ordered by id.
    pub fn tickets(&self) -> Vec<SimTicket> {
        self.shared.snapshot()
    }

    /// One stored ticket.
    pub fn ticket(&self, id: i64) -> Option<SimTicket> {
        self.shared.snapshot().into_iter().find(|t| t.id == id)
    }

    /// Arms a failure for the next `times` requests of `op`. Failures are consumed in the
    /// order they were armed.
    pub fn fail_next(&self, op: HaloOperation, mode: FailureMode, times: u32) {
        self.shared.kit.faults.arm(op, mode, times);
    }

    /// Every request received (control routes excluded), oldest first, with its query.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.kit.log.requests()
    }

    /// A technician closes the ticket as `by` (an agent of that name, added when unknown).
    pub fn close_ticket(&self, id: i64, by: &str) -> Result<(), String> {
        self.shared.close_as_agent(id, by)
    }

    /// A technician deletes the ticket: `GET /api/Tickets/{id}` answers 404 from now on.
    pub fn delete_ticket(&self, id: i64) -> Result<(), String> {
        self.shared.delete_ticket(id)
    }

    /// Adds a client (active unless `inactive`); returns its id.
    pub fn add_client(&self, name: &str, inactive: bool) -> i64 {
        self.shared.lock().directory.add_client(name, inactive)
    }

    /// Adds an enabled recurring invoice of `client_id` with one line per `(item_id,
    /// qty_order)`; its id.
    pub fn add_recurring_invoice(&self, client_id: i64, client_name: &str, lines: &[(i64, f64)]) -> i64 {
        self.shared.lock().recurring.add(client_id, client_name, lines)
    }

    /// A technician disables (or enables) the recurring invoice template.
    pub fn set_recurring_invoice_disabled(&self, id: i64, disabled: bool) -> bool {
        self.shared.lock().recurring.set_disabled(id, disabled)
    }

    /// A technician sets the `qty_order` of the invoice's line for `item_id`.
    pub fn set_recurring_invoice_quantity(&self, id: i64, item_id: i64, qty: f64) -> bool {
        self.shared.lock().recurring.set_quantity(id, item_id, qty)
    }

    /// How many `POST /api/RecurringInvoice` (writes) were received.
    pub fn recurring_invoice_writes(&self) -> u64 {
        self.shared.lock().recurring.writes()
    }

    /// Expires every token issued so far (the next API request answers 401).
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Moves the simulator's clock forward (token expiry, timestamps).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.kit.clock.advance(by);
    }

    /// Forgets tickets, actions, added clients and agents, tokens, armed failures and the
    /// request log; ids restart. The clock keeps its offset.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits (up to 5 s) for it to finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
