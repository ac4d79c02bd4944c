//! PLACEHOLDER — replaced by the HaloPSA connector (work in progress, not to be committed as is).

use super::destination_url::DestinationPolicy;
use crate::destination::{Destination, DestinationCredentials};
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem, NewTicket, RequestGate, SinkSetupError, TicketSystem};
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;

/// PLACEHOLDER.
#[derive(Debug)]
pub struct HaloPsaClient;

impl HaloPsaClient {
    /// PLACEHOLDER.
    ///
    /// # Errors
    /// Always.
    pub fn for_destination(
        _http: reqwest::Client,
        destination: &Destination,
        _credentials: DestinationCredentials,
        _gate: RequestGate,
        _policy: DestinationPolicy,
    ) -> Result<Self, SinkSetupError> {
        Err(SinkSetupError::NotConfigured(format!("destination {}: the HaloPSA connector is not built yet", destination.id)))
    }
}

fn not_built() -> SinkError {
    SinkError::Invalid("the HaloPSA connector is not built yet".into())
}

#[async_trait]
impl TicketSystem for HaloPsaClient {
    async fn find_ticket(&self, _reference: &str) -> Result<Option<TicketRef>, SinkError> {
        Err(not_built())
    }
    async fn create_ticket(&self, _ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        Err(not_built())
    }
    async fn add_note(&self, _ticket: &TicketRef, _note: &TicketNote) -> Result<(), SinkError> {
        Err(not_built())
    }
    async fn has_note(&self, _ticket: &TicketRef, _marker: &str) -> Result<bool, SinkError> {
        Err(not_built())
    }
    async fn close_ticket(&self, _ticket: &TicketRef, _status: Option<&str>, _resolution: &str) -> Result<(), SinkError> {
        Err(not_built())
    }
    async fn ticket_states(&self, _tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        Err(not_built())
    }
    async fn lookup(&self, _what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        Err(not_built())
    }
    async fn check(&self, _destination: &Destination) -> Result<Vec<String>, SinkError> {
        Err(not_built())
    }
}
