//! The web address of a ConnectWise Manage ticket, for people (the console's link), built from
//! the destination's API root alone (no request, no credentials).
//!
//! ConnectWise opens any record through `/{codebase}services/system_io/router/openrecord.rails`
//! with `recordType=ServiceFv` and `recid={ticket id}` on the site's host. Confirmed: the path
//! and its `recordType`/`recid` parameters (report-writer hyperlink examples of ConnectWise's
//! own documentation; `ServiceFv` is the service-ticket record type). Not confirmed: whether a
//! cloud site is always the API host without its `api-` prefix (`api-na.myconnectwise.net` →
//! `na.myconnectwise.net`, as `/login/companyinfo` reports `SiteUrl` for the clouds seen);
//! on-premises servers serve both on one host, which the rule leaves as it is. The optional
//! `companyName` parameter is left out (it only pre-fills the login form).

use crate::ticket::TicketRef;
use url::Url;

/// The ticket's page in ConnectWise Manage, or `None` when the API root is not a URL or the
/// ticket id is not a ConnectWise ticket number.
#[must_use]
pub fn ticket_url(api_root: &str, ticket: &TicketRef) -> Option<Url> {
    if ticket.id.is_empty() || !ticket.id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let root = Url::parse(api_root.trim()).ok()?;
    let host = root.host_str()?;
    let site = host.strip_prefix("api-").filter(|rest| rest.contains('.')).unwrap_or(host);
    // The codebase is what precedes `apis/3.0` in the API root (`v4_6_release/`, `v2025_1/`).
    let path = root.path();
    let codebase = path.find("apis/").map_or("v4_6_release/", |at| &path[..at]).trim_start_matches('/');
    let codebase = if codebase.is_empty() { "v4_6_release/" } else { codebase };
    let mut url = root.clone();
    url.set_host(Some(site)).ok()?;
    url.set_path(&format!("/{codebase}services/system_io/router/openrecord.rails"));
    url.set_fragment(None);
    url.query_pairs_mut().clear().append_pair("locale", "en_US").append_pair("recordType", "ServiceFv").append_pair("recid", &ticket.id);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(root: &str, id: &str) -> Option<String> {
        ticket_url(root, &TicketRef::new(id)).map(String::from)
    }

    #[test]
    fn a_cloud_ticket_opens_on_the_site_host_with_the_api_roots_codebase() {
        assert_eq!(
            link("https://api-na.myconnectwise.net/v4_6_release/apis/3.0", "1001").as_deref(),
            Some(
                "https://na.myconnectwise.net/v4_6_release/services/system_io/router/openrecord.rails?locale=en_US&recordType=ServiceFv&recid=1001"
            )
        );
        assert_eq!(
            link("https://api-eu.myconnectwise.net/v2025_1/apis/3.0/", "7").as_deref(),
            Some(
                "https://eu.myconnectwise.net/v2025_1/services/system_io/router/openrecord.rails?locale=en_US&recordType=ServiceFv&recid=7"
            )
        );
    }

    #[test]
    fn an_on_premises_server_keeps_its_host_and_port() {
        assert_eq!(
            link("http://127.0.0.1:8123/v4_6_release/apis/3.0", "42").as_deref(),
            Some(
                "http://127.0.0.1:8123/v4_6_release/services/system_io/router/openrecord.rails?locale=en_US&recordType=ServiceFv&recid=42"
            )
        );
        assert_eq!(
            link("https://cw.msp.example/apis/3.0", "42").as_deref(),
            Some(
                "https://cw.msp.example/v4_6_release/services/system_io/router/openrecord.rails?locale=en_US&recordType=ServiceFv&recid=42"
            )
        );
    }

    #[test]
    fn a_ticket_id_that_is_not_a_number_or_a_root_that_is_not_a_url_has_no_link() {
        assert_eq!(link("https://api-na.myconnectwise.net/v4_6_release/apis/3.0", "12&recordType=CompanyFv"), None);
        assert_eq!(link("https://api-na.myconnectwise.net/v4_6_release/apis/3.0", ""), None);
        assert_eq!(link("not a url", "1"), None);
    }
}
