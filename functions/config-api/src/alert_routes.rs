//! `GET /v1/alerts/{alert_id}`: one alert with its delivery to each destination — the ticket,
//! its state as the PSA last reported it and when that was read, a web link to it built by the
//! destination's adapter, and for chat, webhook and e-mail destinations the messages' result.

use crate::AppState;
use crate::extract::Caller;
use crate::problem::Problem;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil::alert::Alert;
use vigil::destination::DestinationKind;
use vigil::ids::{AlertId, DestinationId};
use vigil::services::alert_tickets::AlertTicket;
use vigil::ticket::TicketState;

/// A ticket filed for the alert before the current one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EarlierTicketView {
    ticket: String,
    /// `closed` (by a technician) or `gone` (deleted or merged in the PSA).
    ended: String,
    at: DateTime<Utc>,
    /// The ticket's page in the PSA, where its kind has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

/// The alert's delivery to one destination.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DeliveryView {
    destination: DestinationId,
    /// The destination's name (absent: the destination was deleted since).
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_name: Option<String>,
    /// The destination's kind (absent: the destination was deleted since).
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_kind: Option<DestinationKind>,
    /// The PSA's id of the current ticket, once filed.
    ticket: Option<String>,
    /// The current ticket's page in the PSA (opens in the PSA's own sign-in), where the
    /// destination's kind has one and its settings tell the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_url: Option<String>,
    /// The ticket's state as last read from the PSA.
    psa_state: Option<TicketState>,
    /// When the PSA was last read to report `psa_state` (a read that finds it unchanged
    /// writes nothing, so this is when the state was first seen as it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    psa_checked_at: Option<DateTime<Utc>>,
    earlier_tickets: Vec<EarlierTicketView>,
    /// Vigil closed the ticket (the alert resolved).
    closed: bool,
    /// Waiting for the tenant's company link in this destination.
    held_until_linked: bool,
    /// For a channel (chat, webhook, e-mail): messages posted.
    #[serde(skip_serializing_if = "is_zero")]
    messages_posted: u64,
    /// Messages that got no answer on a channel that cannot de-duplicate: not posted again, so
    /// they may or may not have arrived.
    #[serde(skip_serializing_if = "is_zero")]
    messages_uncertain: u64,
    /// E-mails not sent because the policy's daily e-mail limit was reached.
    #[serde(skip_serializing_if = "is_zero")]
    messages_over_limit: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<AlertTicket> for DeliveryView {
    fn from(t: AlertTicket) -> Self {
        let d = t.delivery;
        let (destination_name, destination_kind) = t.destination.map_or((None, None), |(name, kind)| (Some(name), Some(kind)));
        let mut earlier_urls = t.earlier_urls.into_iter();
        Self {
            destination: d.destination,
            destination_name,
            destination_kind,
            ticket: d.ticket.map(|t| t.id),
            ticket_url: t.ticket_url.map(String::from),
            psa_state: d.psa_state,
            psa_checked_at: d.psa_checked_at,
            earlier_tickets: d
                .earlier_tickets
                .into_iter()
                .map(|e| EarlierTicketView {
                    ticket: e.ticket.id,
                    ended: e.ended,
                    at: e.at,
                    url: earlier_urls.next().flatten().map(String::from),
                })
                .collect(),
            closed: d.closed,
            held_until_linked: d.held_unlinked,
            messages_posted: d.messages_posted,
            messages_uncertain: d.messages_uncertain,
            messages_over_limit: d.messages_over_limit,
        }
    }
}

/// An alert with its delivery to each destination.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AlertView {
    #[serde(flatten)]
    alert: Alert,
    deliveries: Vec<DeliveryView>,
}

/// One alert (activities, entities, triage) with its delivery to each destination: each
/// ticket's PSA state and link.
#[utoipa::path(get, path = "/v1/alerts/{alert_id}", tag = "alerts", params(("alert_id" = String, Path, description = "The alert's id")),
    responses((status = 200, body = AlertView)))]
pub(crate) async fn get_alert(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<AlertView>, Problem> {
    let alert_id = AlertId::parse(&raw).map_err(|_| Problem::not_found(format!("alert {raw} not found")))?;
    let (detail, tickets) = state.destinations.alert_tickets(&access, &alert_id).await?;
    Ok(Json(AlertView { alert: detail.alert, deliveries: tickets.into_iter().map(DeliveryView::from).collect() }))
}
