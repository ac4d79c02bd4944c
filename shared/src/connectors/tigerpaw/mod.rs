//! Tigerpaw (Tigerpaw One, hosted or on-premises) as a [`TicketSystem`]: one service order per
//! alert, built per destination by [`super::psa::PsaProvider`]. Wire format:
//! `shared/reference/psa-apis.md` §4 and `licences-billing-outputs.md` §3 (API 18.2.1; there
//! is no public schema).
//!
//! * **Every request** ([`TigerpawClient`]) goes to the MSP's own base URL (`settings.url`,
//!   paths under `/api/…`, checked against the destination policy), first takes one request
//!   from the destination's share ([`crate::ports::RequestGate::admit`]), and carries
//!   `Authorization: TSI base64(public:private)` or `Basic base64(public:private)` as
//!   `settings.auth` says (marked sensitive, never logged), `Accept: application/json`, and on
//!   `POST`/`PUT` `Content-Type: application/json` with a `Content-Length`.
//! * **Failures** ([`errors`]): HTTP failures by status; an HTTP 200 whose body says
//!   `"Success": false` is a failure too — transient when its message says the order is locked
//!   (a user has it open in the GUI), permanent otherwise.
//! * **Service orders** ([`orders`]): `POST /api/ServiceOrders` with `AccountNumber` (the company
//!   link), `BriefDescription` (title), `WorkRequested` (text), `Reference` (the alert
//!   reference), `Priority`, `Status` (`settings.new_status`), `ServiceOrderType`,
//!   `DispatchBoardNumber` (the place) and `ContactNumber` (the account's contact with the
//!   affected user's e-mail); found by `POST /api/serviceorders/search` (SearchType
//!   `Reference`, MatchType `Equal`); notes `POST /api/serviceorders/{n}/notes` `{"Topic",
//!   "Note", "RepNumber"}`, found by reading `GET /api/serviceorders/{n}/notes`; completed by
//!   `PUT /api/serviceorders/{n}` `{"Status", "DateTimeClosed": {"DateTime"}, "WorkPerformed"}`
//!   with the routing's `closed_status`, else the statuses table's first closing status, else
//!   "Completed"; states read with `GET /api/serviceorders/{n}` (404: gone).
//! * **Lookups and check** ([`lookup`]): accounts by `POST /api/accounts/search` paged with
//!   `PageSize`/`StartRow`/`NextRow`; dispatch boards, priorities, statuses (with `closes`),
//!   service order types, note topics and reps from the master tables; contacts from
//!   `GET /api/contacts/account/{n}`. `check` reads the statuses table and, when the configured
//!   authorization form is refused, tries the other once and says which one the server takes.
//!
//! # Built from unconfirmed material — check these first in a Tigerpaw sandbox
//!
//! 1. **The authorization scheme**: Tigerpaw's sample sends `Authorization: TSI
//!    base64(public:private)`, the 18.2.1 SDK's swagger declares HTTP Basic; both are supported
//!    (`settings.auth`) and `check` reports which one the server accepts.
//! 2. **The base URL** is per MSP (no discovery); paths are taken to be `{url}/api/…` (a
//!    configured URL ending in `/api` is not doubled).
//! 3. **Required create fields**: the swagger marks everything optional; Vigil always sends
//!    `AccountNumber`, `BriefDescription`, `WorkRequested` and `Reference`, and leaves
//!    `Priority`, `Status` and `ServiceOrderType` to the server's defaults when not configured.
//! 4. **Field lengths**: none are published; Vigil cuts `BriefDescription` to 100 characters,
//!    `WorkRequested`, `WorkPerformed` and notes to 8,000, and keeps references ≤ 50.
//! 5. **The alert reference lives in `Reference`**, found with the advanced search (SearchType
//!    `Reference`, MatchType `Equal`): the create model has no `ExternalTicketId` (only the
//!    managed endpoint `PUT /api/serviceorders/managed` does, and whether it creates is
//!    unconfirmed), so `GET /api/serviceorders/externalticket` is not used.
//! 6. **`Success: false` with HTTP 200** as the failure form, and its message wording: a lock
//!    is recognised by the words in [`errors::LOCK_PHRASES`] ("lock", "in use", "being edited",
//!    …); the real lock message is not published.
//! 7. **HTTP status codes**: a 404 from `GET /api/serviceorders/{n}` (and its `/notes`) means
//!    the order is gone; a deleted order's exact answer is unknown. 429 with `Retry-After` for
//!    throttling (no rate limits are published; without `Retry-After` Vigil waits a minute).
//! 8. **Response shapes**: `GET /api/serviceorders/{n}` returns the `TsiWebServiceOrderSummary`
//!    unwrapped; `GET …/notes` returns an array of `TsiWebServiceOrderNote` (an object with
//!    `Notes` is also read); the search answers `{"ServiceOrders": [summary…], "NextRow", …}`
//!    and the account search `{"Accounts": [{"AccountNumber", "AccountName",
//!    "AccountStatus"}], "NextRow", …}`; `NextRow` is the next `StartRow`, absent or not
//!    greater at the end.
//! 9. **Search semantics**: criteria combine with AND; an empty `Criteria` list searches every
//!    account; SearchType `AccountName` exists for accounts; MatchType `Equal` compares the
//!    whole `Reference`.
//! 10. **Master tables** are bare arrays; entry names are read from `Description` (or `Name`,
//!     `Status`, `Priority`, `Topic`, `Value`), a closing status from `IsClosedStatus` (or
//!     `IsClosed`, `Closed`, `ClosesServiceOrder`, `IsCompleted`, `Completed`), a default from
//!     `IsDefault`; reps from `GET /api/mastertables/reps` as `RepNumber`; note topics from
//!     `GET /api/mastertables/serviceOrder/noteTopics`. Without closed flags, "Completed" closes.
//! 11. **Closing**: `PUT /api/serviceorders/{n}` with `Status`, `DateTimeClosed` as
//!     `{"DateTime": "yyyy-MM-ddTHH:mm:ss"}` (UTC, no zone) and `WorkPerformed` (what a
//!     technician wrote is kept, the resolution appended); whether the server stamps
//!     `DateTimeClosed` itself is unknown.
//! 12. **Closed by and when**: the 18.2.1 model has no closed-by field; the closer reported is the
//!     summary's `PrimaryTechnicianName`, the time `ServiceOrder.DateTimeClosed` read as UTC
//!     when it carries no zone.
//! 13. **Contacts**: `GET /api/contacts/account/{accountNumber}` (an SDK endpoint the reference
//!     does not list) read as an array of `{"ContactNumber", "FirstName", "LastName",
//!     "EmailAddress"}`; a refused read files the order without a contact.
//! 14. **Notes**: `Topic` defaults to the first note topic; `RepNumber` is sent only when
//!     `settings.rep_number` is set (otherwise the keys' own rep is assumed to be used).
//! 15. **States** are read one order per request (no batch read by number is known).
//! 16. **No web link to a service order**: neither the reference (psa-apis.md §4) nor the SDK
//!     names a web page that opens an order, so
//!     [`crate::ports::TicketSystemProvider::ticket_url`] gives none for Tigerpaw (the console
//!     shows the order number and its state without a link).

pub mod billing;
mod client;
pub mod errors;
mod lookup;
pub mod orders;

pub use client::{TigerpawClient, other, scheme};
pub use lookup::{FALLBACK_CLOSED_STATUS, LOOKUP_MAX, Statuses};

use crate::destination::Destination;
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem, NewTicket, TicketSystem};
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;

#[async_trait]
impl TicketSystem for TigerpawClient {
    /// `POST /api/serviceorders/search` (Reference Equal).
    async fn find_ticket(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        self.find(reference).await
    }

    /// (`GET /api/contacts/account/{n}` when the content names an affected user,) then
    /// `POST /api/ServiceOrders`.
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        self.create(ticket).await
    }

    /// (The note topics once,) `POST /api/serviceorders/{n}/notes`; refused and the order is
    /// not found: gone.
    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        self.note(ticket, note).await
    }

    /// `GET /api/serviceorders/{n}/notes` (404: gone).
    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        self.find_note(ticket, marker).await
    }

    /// (The statuses once,) `GET /api/serviceorders/{n}` (404: gone; closed: done), then
    /// `PUT /api/serviceorders/{n}`. A locked order is transient.
    async fn close_ticket(&self, ticket: &TicketRef, status: Option<&str>, resolution: &str) -> Result<(), SinkError> {
        self.close(ticket, status, resolution).await
    }

    /// `GET /api/serviceorders/{n}` per order.
    async fn ticket_states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        self.states(tickets).await
    }

    async fn lookup(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        self.look_up(what).await
    }

    /// The statuses table (in both authorization forms if needed), then the configured values.
    async fn check(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        self.check_destination(destination).await
    }
}
