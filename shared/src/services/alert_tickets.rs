//! An alert's tickets as a person sees them: each delivery with its destination's name and
//! kind, the ticket's state as the PSA last reported it (and when that was read), and a web
//! link to the ticket (and to each earlier ticket) built by the destination's own adapter
//! through [`TicketSystemProvider::ticket_url`] from its settings alone — no PSA request, no
//! credentials read, so opening an alert costs no PSA call.
//!
//! A delivery whose destination was deleted keeps its ticket ids (the MSP may still want them)
//! but has no name, kind or link. Access is the alert's: whoever may read the alert sees where
//! it went (destination names and ticket links, never settings or credentials).

use super::admin::{AdminError, AlertDetail};
use super::destinations::DestinationsService;
use crate::access::{Access, Permission};
use crate::destination::{Destination, DestinationKind};
use crate::ids::{AlertId, DestinationId};
use crate::ticket::Delivery;
use std::collections::HashMap;
use url::Url;

/// One delivery of an alert, with what is needed to show and open its ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTicket {
    pub delivery: Delivery,
    /// The destination's name and kind (`None`: the destination was deleted since).
    pub destination: Option<(String, DestinationKind)>,
    /// The current ticket's web page, where the adapter can build one.
    pub ticket_url: Option<Url>,
    /// The web page of each of `delivery.earlier_tickets`, in the same order.
    pub earlier_urls: Vec<Option<Url>>,
}

impl DestinationsService {
    /// The alert (as [`super::admin::AdminService::alert`] gives it) and each of its deliveries
    /// with its destination and ticket links.
    ///
    /// # Errors
    /// As [`super::admin::AdminService::alert`] (Forbidden without alerts:read, NotFound for
    /// another MSP's alert or a category the caller does not see), or a store failure.
    pub async fn alert_tickets(&self, access: &Access, alert_id: &AlertId) -> Result<(AlertDetail, Vec<AlertTicket>), AdminError> {
        let detail = self.admin.alert(access, alert_id).await?;
        let msp_id = access.permit(Permission::AlertsRead)?;
        let destinations: HashMap<DestinationId, Destination> = if detail.deliveries.is_empty() {
            HashMap::new()
        } else {
            self.destinations
                .list_destinations(msp_id)
                .await?
                .into_iter()
                .filter(|d| &d.msp_id == msp_id)
                .map(|d| (d.id.clone(), d))
                .collect()
        };
        let tickets = detail
            .deliveries
            .iter()
            .map(|delivery| {
                let destination = destinations.get(&delivery.destination);
                let link = |ticket| destination.and_then(|d| self.systems.ticket_url(d, ticket));
                AlertTicket {
                    destination: destination.map(|d| (d.name.clone(), d.kind())),
                    ticket_url: delivery.ticket.as_ref().and_then(link),
                    earlier_urls: delivery.earlier_tickets.iter().map(|e| link(&e.ticket)).collect(),
                    delivery: delivery.clone(),
                }
            })
            .collect();
        Ok((detail, tickets))
    }
}

#[cfg(test)]
#[cfg(feature = "connectors")]
#[path = "alert_tickets_tests.rs"]
mod tests;
