//! Autotask PSA as a [`crate::ports::TicketSystem`] — being built on its own branch. Until it
//! lands no Autotask client can exist: the type has no values, so the provider compiles and
//! every Autotask destination is refused as not configured.

use super::destination_url::DestinationPolicy;
use crate::destination::{Destination, DestinationCredentials};
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem, NewTicket, RequestGate, SinkSetupError, TicketSystem};
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;

/// The Autotask connector (no values until it lands).
pub enum AutotaskClient {}

impl AutotaskClient {
    /// Refuses every destination until the connector lands.
    ///
    /// # Errors
    /// Always [`SinkSetupError::NotConfigured`].
    pub fn for_destination(
        _http: reqwest::Client,
        _destination: &Destination,
        _credentials: DestinationCredentials,
        _gate: RequestGate,
        _policy: DestinationPolicy,
    ) -> Result<Self, SinkSetupError> {
        Err(SinkSetupError::NotConfigured("the Autotask connector is not built yet".into()))
    }
}

#[async_trait]
impl TicketSystem for AutotaskClient {
    async fn find_ticket(&self, _reference: &str) -> Result<Option<TicketRef>, SinkError> {
        match *self {}
    }
    async fn create_ticket(&self, _ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        match *self {}
    }
    async fn add_note(&self, _ticket: &TicketRef, _note: &TicketNote) -> Result<(), SinkError> {
        match *self {}
    }
    async fn has_note(&self, _ticket: &TicketRef, _marker: &str) -> Result<bool, SinkError> {
        match *self {}
    }
    async fn close_ticket(&self, _ticket: &TicketRef, _status: Option<&str>, _resolution: &str) -> Result<(), SinkError> {
        match *self {}
    }
    async fn ticket_states(&self, _tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        match *self {}
    }
    async fn lookup(&self, _what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        match *self {}
    }
    async fn check(&self, _destination: &Destination) -> Result<Vec<String>, SinkError> {
        match *self {}
    }
}
