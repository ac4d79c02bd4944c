//! HaloPSA as a [`TicketSystem`], built per destination by [`super::psa::PsaProvider`]. Wire
//! format: `shared/reference/psa-apis.md` §3 and `licences-billing-outputs.md` §4; field names
//! from the vendor schema subset (`halopsa-ticketing-subset.json`: Tickets are `Faults`,
//! Actions `Actions`, POST bodies are arrays).
//!
//! * **Token** ([`client`]): `POST {url}/auth/token` (form: `grant_type=client_credentials`,
//!   `client_id`, `client_secret`, `scope=all`), with `?tenant={tenant}` only when the settings
//!   name a tenant (Halo-hosted; none for self-hosted). Cached until [`client::TOKEN_MARGIN`]
//!   before `expires_in`; a `401` from `/api` forgets it and the request is sent once more with
//!   a new one. Every request (token requests included) first takes one request from the
//!   destination's share ([`crate::ports::RequestGate::admit`]).
//! * **Tickets** ([`tickets`]): `POST /api/Tickets` `[{summary, details_html, client_id, team,
//!   priority_id, tickettype_id, user_id, site_id, supplier_reference}]` → the created ticket
//!   (`id`). Closed with `POST /api/Tickets` `[{id, status_id, closure_note}]`; states read with
//!   `GET /api/Tickets/{id}` (`status_id`, `hasbeenclosed`, `dateclosed`; `404` is
//!   [`TicketState::Gone`]), status names from `GET /api/Status`, the closer from the action
//!   that set the closing status.
//! * **Notes** ([`notes`]): `POST /api/Actions` `[{ticket_id, outcome_id, hiddenfromuser: true,
//!   note_html}]`; found by marker listing `GET /api/Actions?ticket_id=`.
//! * **Lists** are read with `pageinate=true&page_size&page_no` until `record_count` items
//!   (a bare array is the whole list).
//! * **Errors** ([`errors`]): classified once; a refused note or close whose ticket answers
//!   `404` is [`crate::error::SinkError::Gone`].
//!
//! Choices where the reference is silent or unconfirmed (the simulator follows the same
//! reading; verify against a sandbox instance):
//! * **the reference lives in `supplier_reference`** (a string on `Faults`), found with
//!   `GET /api/Tickets?search_supplier_reference=` — the one string field of `Faults` whose
//!   list filter the schema declares. Halo documents no external-id search; `reference` and
//!   `third_party_id_string` are also declared strings but have no declared filter. A hit whose
//!   `supplier_reference` is present and differs (a `LIKE` match) is skipped; a hit without
//!   the member is trusted to the filter. Whether a default list includes closed tickets is
//!   unconfirmed (the simulator's does);
//! * the text is sent as `details_html` (escaped, `<br>` per line) and notes as `note_html`,
//!   the forms CIPP is confirmed to send; `summary` is cut to [`tickets::SUMMARY_MAX`] (250,
//!   unconfirmed) and the reference to 50 characters;
//! * the place is a team **name** (`team` is a string on `Faults`), the priority the
//!   `priorityid` shared by every SLA's row of `GET /api/Priority`;
//! * with no closed status in the routing, the status named "Closed" is used (9 on default
//!   installs); a ticket is closed when `hasbeenclosed` or its status is that one;
//! * the closer is the `who` of the latest action whose `new_status` is the ticket's status
//!   (else `agent #{who_agentid}` or `#{closure_agent_id}`);
//! * a contact is linked by `user_id` (and its `site_id`) when `GET /api/Users?client_id=&search=`
//!   finds the affected user's e-mail address (`emailaddress`); a refused lookup files the
//!   ticket without one;
//! * throttling without `Retry-After` waits [`errors::DEFAULT_THROTTLE_DELAY`].

pub mod billing;
mod client;
pub mod errors;
pub mod links;
mod lookup;
pub mod notes;
pub mod tickets;

pub use client::{DEFAULT_TOKEN_LIFETIME, HaloPsaClient, PAGE_SIZE, Settings, TOKEN_MARGIN};

use crate::destination::Destination;
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem, NewTicket, TicketSystem};
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;

#[async_trait]
impl TicketSystem for HaloPsaClient {
    /// `GET /api/Tickets?search_supplier_reference=…`.
    async fn find_ticket(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        self.find(reference).await
    }

    /// `GET /api/Users` when the content names an affected user, then `POST /api/Tickets`.
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        self.create(ticket).await
    }

    /// `POST /api/Actions`; refused and `GET /api/Tickets/{id}` is 404: gone.
    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        self.note(ticket, note).await
    }

    /// `GET /api/Actions?ticket_id=`, pages followed; not found and the ticket is 404: gone.
    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        self.find_note(ticket, marker).await
    }

    /// `GET /api/Tickets/{id}` (404: gone; already closed: done), then `POST /api/Tickets`.
    async fn close_ticket(&self, ticket: &TicketRef, status: Option<&str>, resolution: &str) -> Result<(), SinkError> {
        self.close(ticket, status, resolution).await
    }

    /// `GET /api/Tickets/{id}` per ticket (`GET /api/Status` once; the actions of closed ones).
    async fn ticket_states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        self.states(tickets).await
    }

    async fn lookup(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        self.look_up(what).await
    }

    /// A token and `GET /api/Status`, then the teams and priorities the routing names.
    async fn check(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        self.check_destination(destination).await
    }
}
