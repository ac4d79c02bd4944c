//! The web address of an Autotask ticket, for people (the console's link), built from the
//! destination's zone alone (no request, no credentials).
//!
//! Autotask's documented way to open a page from another application is the ExecuteCommand
//! API: `https://ww{N}.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=…` on the
//! zone's web host (confirmed: Autotask's "Using the ExecuteCommand API" page). The zone's web
//! host is `webUrl` of `zoneInformation` (`https://ww15.autotask.net/`, psa-apis.md §2.1),
//! which pairs with the REST host `webservices15.autotask.net`; Vigil stores only the REST
//! root, so the web host is derived from it (`webservicesN` → `wwN`). Not confirmed: the
//! command's name and parameter, `Code=OpenTicketDetail&TicketID={id}` (the page's list of
//! commands was not available to check). A zone on any other host (the local simulator,
//! whose `webUrl` is its own address) is its own web host. No zone in the settings (it is
//! discovered at run time and not stored): no link.

use crate::ticket::TicketRef;
use url::Url;

/// The ticket's page in Autotask, or `None` without a zone URL or with a ticket id that is not
/// an Autotask ticket id.
#[must_use]
pub fn ticket_url(zone_url: Option<&str>, ticket: &TicketRef) -> Option<Url> {
    if ticket.id.is_empty() || !ticket.id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let zone = Url::parse(zone_url?.trim()).ok()?;
    let host = zone.host_str()?.to_ascii_lowercase();
    let web_host = host
        .strip_prefix("webservices")
        .and_then(|rest| rest.split_once('.'))
        .filter(|(n, domain)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && *domain == "autotask.net")
        .map(|(n, domain)| format!("ww{n}.{domain}"));
    let mut url = zone.clone();
    if let Some(web_host) = web_host {
        url.set_host(Some(&web_host)).ok()?;
    }
    url.set_path("/Autotask/AutotaskExtend/ExecuteCommand.aspx");
    url.set_fragment(None);
    url.query_pairs_mut().clear().append_pair("Code", "OpenTicketDetail").append_pair("TicketID", &ticket.id);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(zone: Option<&str>, id: &str) -> Option<String> {
        ticket_url(zone, &TicketRef::new(id)).map(String::from)
    }

    #[test]
    fn a_ticket_opens_on_the_web_host_of_its_zone() {
        assert_eq!(
            link(Some("https://webservices15.autotask.net/atservicesrest/"), "7001").as_deref(),
            Some("https://ww15.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID=7001")
        );
        assert_eq!(
            link(Some("https://webservices2.autotask.net/atservicesrest/v1.0/"), "5").as_deref(),
            Some("https://ww2.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID=5")
        );
    }

    #[test]
    fn a_zone_on_another_host_is_its_own_web_host() {
        assert_eq!(
            link(Some("http://127.0.0.1:9001/atservicesrest/"), "7001").as_deref(),
            Some("http://127.0.0.1:9001/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID=7001")
        );
        // Only autotask.net's own numbered hosts are rewritten.
        assert_eq!(
            link(Some("https://webservices3.evil.example/atservicesrest/"), "1").as_deref(),
            Some("https://webservices3.evil.example/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID=1")
        );
    }

    #[test]
    fn without_a_stored_zone_or_with_a_foreign_ticket_id_there_is_no_link() {
        assert_eq!(link(None, "7001"), None);
        assert_eq!(link(Some("https://webservices15.autotask.net/atservicesrest/"), "7001&Code=NewTicket"), None);
        assert_eq!(link(Some("::"), "1"), None);
    }
}
