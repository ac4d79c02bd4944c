//! Autotask PSA (Datto/Kaseya) as a [`TicketSystem`], built per destination by
//! [`super::psa::PsaProvider`]. Wire format: `shared/reference/psa-apis.md` §2.
//!
//! * **Zone** ([`AutotaskClient`]): the destination's `zone_url`, or discovered without credentials at
//!   `GET https://webservices2.autotask.net/atservicesrest/v1.0/zoneInformation?user={username}`
//!   and kept 24 h in a process-wide cache keyed by user name; `v1.0/` is appended to the
//!   zone's `url`. Every URL (configured, discovered, each `nextPageUrl`) is checked against
//!   the [`DestinationPolicy`](super::destination_url::DestinationPolicy), and a page URL must
//!   stay on the zone's origin.
//! * **Every request** first takes one request from the destination's share
//!   ([`crate::ports::RequestGate::admit`], zone discovery included), then carries
//!   `ApiIntegrationCode`, `UserName`, `Secret` (the two secrets marked sensitive) and
//!   `Content-Type: application/json`.
//! * **Tickets** ([`tickets`]): `POST Tickets` with the rendered title (≤ 255) and text
//!   (≤ 8000), `externalID` = the reference (≤ 50, longer is refused), `dueDateTime`, the
//!   routed queue and priority, the configured picklists, and the contact whose e-mail is the
//!   affected user's. Found by `externalID`; completed by `PATCH Tickets`; states read with
//!   `in` queries of up to 500 ids.
//! * **Notes** ([`notes`]): `POST Tickets/{id}/Notes`, found by marker through
//!   `TicketNotes/query`.
//! * **Picklists** ([`picklists`]): `entityInformation/fields` read once per client; defaults,
//!   labels and the Complete status come from there.
//! * **Errors** ([`errors`]): classified once; Autotask's validation-as-500 is `Rejected`.
//!   A ticket that no longer exists (`GET Tickets/{id}` answers `{"item": null}`) is
//!   [`SinkError::Gone`] for notes and closing.
//!
//! Choices where the reference is silent or unconfirmed (the simulator follows the same
//! reading; verify against a sandbox tenant):
//! * zone discovery is sent without the secret and integration code (it needs none);
//! * a closer's name comes from `Resources/query` (`firstName lastName`, else `userName`);
//!   when that is refused (an API user who may not read resources) the state says `resource #N`;
//! * the note search's `contains` leaves out the marker's brackets (a SQL `LIKE` would read
//!   them as a character class) and every hit is checked for the whole marker;
//! * a contact is linked only by e-mail (Autotask has no default contact of a company), and a
//!   refused contact query files the ticket without one;
//! * throttling without `Retry-After` waits [`errors::DEFAULT_THROTTLE_DELAY`].

mod billing;
mod client;
pub mod errors;
pub mod links;
mod lookup;
pub mod notes;
pub mod picklists;
pub mod query;
pub mod tickets;

pub use client::{AutotaskClient, DEFAULT_DISCOVERY_BASE, Settings, ZONE_CACHE_TTL};

use crate::destination::Destination;
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem, NewTicket, TicketSystem};
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;

#[async_trait]
impl TicketSystem for AutotaskClient {
    /// `POST Tickets/query` `{"MaxRecords":1,"IncludeFields":["id"],"filter":[externalID eq]}`.
    async fn find_ticket(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        self.find(reference).await
    }

    /// (`entityInformation/fields` once,) `Contacts/query` when the content names an affected
    /// user, then `POST Tickets`.
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        self.create(ticket).await
    }

    /// `POST Tickets/{id}/Notes`; refused and `GET Tickets/{id}` is null: gone.
    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        self.note(ticket, note).await
    }

    /// `TicketNotes/query` (ticketID eq, description contains), pages followed; not found and
    /// `GET Tickets/{id}` is null: gone.
    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        self.find_note(ticket, marker).await
    }

    /// `GET Tickets/{id}` (null: gone; already complete: done), then `PATCH Tickets`.
    async fn close_ticket(&self, ticket: &TicketRef, status: Option<&str>, resolution: &str) -> Result<(), SinkError> {
        self.close(ticket, status, resolution).await
    }

    /// `Tickets/query` with `id in […]` per 500 tickets, and `Resources/query` for the closers.
    async fn ticket_states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        self.states(tickets).await
    }

    async fn lookup(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        self.look_up(what).await
    }

    /// `GET ThresholdInformation`, then the picklists of tickets and notes.
    async fn check(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        self.check_destination(destination).await
    }
}
