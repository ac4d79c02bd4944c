//! The web address of a HaloPSA ticket, for people (the console's link), built from the
//! instance's address alone (no request, no credentials): the agent application's ticket page,
//! `{url}/tickets?id={id}`, on the host whose `/api` and `/auth` Vigil calls.
//!
//! Not confirmed: the page's path and parameter (`/tickets?id=` is the address Halo's agent
//! application shows for an open ticket; Halo's API documentation does not describe its web
//! pages). An instance under a path (`https://host/halo`) keeps it.

use crate::ticket::TicketRef;
use url::Url;

/// The ticket's page in HaloPSA, or `None` when the address is not a URL or the id is not a
/// Halo ticket id (a number).
#[must_use]
pub fn ticket_url(instance: &str, ticket: &TicketRef) -> Option<Url> {
    if ticket.id.is_empty() || !ticket.id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut url = Url::parse(instance.trim()).ok()?;
    url.host_str()?;
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}/tickets"));
    url.set_fragment(None);
    url.query_pairs_mut().clear().append_pair("id", &ticket.id);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(instance: &str, id: &str) -> Option<String> {
        ticket_url(instance, &TicketRef::new(id)).map(String::from)
    }

    #[test]
    fn a_ticket_opens_on_the_instance_the_api_is_called_on() {
        assert_eq!(link("https://msp.halopsa.com", "2201").as_deref(), Some("https://msp.halopsa.com/tickets?id=2201"));
        assert_eq!(link("https://halo.msp.example/halo/", "9").as_deref(), Some("https://halo.msp.example/halo/tickets?id=9"));
        assert_eq!(link("http://127.0.0.1:7001", "9").as_deref(), Some("http://127.0.0.1:7001/tickets?id=9"));
    }

    #[test]
    fn an_id_that_is_not_a_number_or_an_address_that_is_not_a_url_has_no_link() {
        assert_eq!(link("https://msp.halopsa.com", "1&id=2"), None);
        assert_eq!(link("msp.halopsa.com", "1"), None);
    }
}
