//! `POST /webhooks/psa/{msp_id}/{destination_id}`: a PSA says one of its tickets changed.
//!
//! The callback only makes Vigil read that ticket's state back sooner (the dispatcher's
//! scheduled read-back covers every ticket anyway), so it carries no state Vigil trusts: the
//! dispatcher asks the PSA itself. Still, nothing is enqueued for a callback the destination's
//! connector does not verify on the raw body (ConnectWise: `x-content-signature`, an HMAC-SHA256
//! of the raw bytes under the key its `key_url` serves, the key fetched only from the
//! destination's own API host). A malformed path, an unknown MSP or destination, a destination
//! kind without callbacks and a signature that does not verify all answer 401 alike, so a prober
//! learns nothing. A PSA that cannot be asked for the key answers 503 (the PSA retries).

use crate::problem;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use vigil::error::{Classified, ErrorClass};
use vigil::ids::{DestinationId, MspId};
use vigil::messages::TicketChangedMessage;
use vigil::ports::{DestinationStore, MessageQueue, TicketSystemProvider};

/// What the PSA callback route needs.
#[derive(Clone)]
pub struct CallbackState {
    pub destinations: Arc<dyn DestinationStore>,
    pub systems: Arc<dyn TicketSystemProvider>,
    /// The tickets queue of the dispatcher.
    pub tickets: Arc<dyn MessageQueue>,
}

fn unauthorized() -> Response {
    problem(StatusCode::UNAUTHORIZED, "Unauthorized", "the callback could not be verified")
}

/// Handles one PSA callback.
pub async fn receive(
    State(state): State<CallbackState>,
    Path((msp, destination)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Ok(msp_id), Ok(destination_id)) = (MspId::parse(&msp), DestinationId::parse(&destination)) else {
        return unauthorized();
    };
    let destination = match state.destinations.get_destination(&msp_id, &destination_id).await {
        Ok(Some(destination)) if destination.enabled => destination,
        Ok(_) => return unauthorized(),
        Err(error) => {
            tracing::warn!(message = "Could not read a destination for a PSA callback.", %error);
            return problem(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", "try again later");
        }
    };
    let system = match state.systems.system_for(&destination).await {
        Ok(system) => system,
        Err(error) => {
            tracing::warn!(message = "No connector for a PSA callback's destination.", destination = %destination_id, %error);
            return unauthorized();
        }
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect();
    let ticket = match system.verify_callback(&body, &headers).await {
        Ok(Some(ticket)) => ticket,
        Ok(None) => {
            tracing::warn!(message = "PSA callback refused: not verified.", msp_id = %msp_id, destination = %destination_id);
            return unauthorized();
        }
        Err(error) if error.class() == ErrorClass::Transient => {
            tracing::warn!(message = "Could not verify a PSA callback now.", destination = %destination_id, %error);
            return problem(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", "try again later");
        }
        Err(error) => {
            tracing::warn!(message = "PSA callback refused.", destination = %destination_id, %error);
            return unauthorized();
        }
    };
    let message = TicketChangedMessage { msp_id, destination: destination_id, ticket_id: ticket.id };
    let body = match serde_json::to_string(&message) {
        Ok(body) => body,
        Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", "could not encode the message"),
    };
    match state.tickets.send_all(&[body]).await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"accepted": true}))).into_response(),
        Err(error) => {
            tracing::warn!(message = "Could not enqueue a PSA callback.", %error);
            problem(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", "try again later")
        }
    }
}
