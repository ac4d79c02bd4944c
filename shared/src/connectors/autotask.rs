//! Autotask PSA as a [`crate::ports::TicketSystem`] — being built (placeholder so the provider
//! compiles; replaced by the connector in the next commits).

use super::destination_url::DestinationPolicy;
use crate::destination::{Destination, DestinationCredentials};
use crate::ports::{RequestGate, SinkSetupError};

/// Placeholder.
pub struct AutotaskClient;

impl AutotaskClient {
    /// Placeholder.
    ///
    /// # Errors
    /// Always, until the connector lands.
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
