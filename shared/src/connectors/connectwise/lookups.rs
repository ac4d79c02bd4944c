//! Lookups for the config API, the contact a new ticket links to, the closed status of a
//! board, and the check of a destination's routing against what the PSA holds.
//!
//! Requests (paths below the API root; lists read [`super::http::PAGE_SIZE`] per page):
//!
//! * companies: `GET /company/companies?conditions=deletedFlag=false[ and (name like "*x*" or identifier like "*x*")]&fields=id,identifier,name&orderBy=name asc`;
//! * places: `GET /service/boards?conditions=inactiveFlag=false&fields=id,name`;
//! * priorities: `GET /service/priorities?fields=id,name,defaultFlag`;
//! * statuses: `GET /service/boards/{id}/statuses?fields=id,name,closedStatus,defaultFlag,inactive&orderBy=sortOrder asc`
//!   (a board named by name is found in the boards first);
//! * contacts: `GET /company/contacts?conditions=company/id=N and inactiveFlag=false[&childConditions=communicationItems/value="e@x"]`.
//!   E-mail addresses live in the contact's `communicationItems` child collection, which
//!   `conditions` cannot reach; `childConditions=communicationItems/value="…"` is what working
//!   open-source clients send (confirmed in clients, not in ConnectWise's own documentation);
//! * check: `GET /system/info`, the boards, the priorities, one contact (may the API member read
//!   contacts?), and each routed board's types (when
//!   the destination sets a ticket type) and statuses.

use super::ConnectWiseClient;
use super::body::{company_condition, company_id, names, positive_id, quoted};
use super::http::Missing;
use crate::destination::{Destination, DestinationSettings};
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem};
use serde::Deserialize;
use serde_json::Value;
use std::sync::PoisonError;

/// Pages a lookup reads at most (5,000 items).
const LOOKUP_PAGES: usize = 5;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    id: i64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    default_flag: Option<bool>,
    #[serde(default)]
    inactive_flag: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BoardStatus {
    id: i64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    closed_status: Option<bool>,
    #[serde(default)]
    default_flag: Option<bool>,
    #[serde(default)]
    inactive: Option<bool>,
}

impl BoardStatus {
    fn usable(&self) -> bool {
        self.inactive != Some(true)
    }
    fn closes(&self) -> bool {
        self.closed_status == Some(true)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    id: i64,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    default_flag: Option<bool>,
    #[serde(default)]
    communication_items: Vec<CommunicationItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommunicationItem {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    communication_type: Option<String>,
    #[serde(default)]
    default_flag: Option<bool>,
}

impl Contact {
    /// The e-mail address to show: the one searched for, else the default e-mail item, else
    /// the first.
    fn email(&self, wanted: Option<&str>) -> Option<String> {
        let emails: Vec<&CommunicationItem> = self
            .communication_items
            .iter()
            .filter(|i| i.communication_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("email")))
            .filter(|i| i.value.as_deref().is_some_and(|v| v.contains('@')))
            .collect();
        let value = |i: &&CommunicationItem| i.value.clone();
        wanted
            .and_then(|w| emails.iter().find(|i| i.value.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(w))).and_then(value))
            .or_else(|| emails.iter().find(|i| i.default_flag == Some(true)).and_then(value))
            .or_else(|| emails.first().and_then(value))
    }

    fn name(&self) -> String {
        [self.first_name.as_deref(), self.last_name.as_deref()].into_iter().flatten().map(str::trim).collect::<Vec<_>>().join(" ")
    }
}

fn item(id: i64, name: String) -> LookupItem {
    LookupItem { id: id.to_string(), name, closes: None, email: None, default: false }
}

impl ConnectWiseClient {
    pub(super) async fn look_up(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        match what {
            Lookup::Companies { search } => {
                let conditions = company_condition(search.as_deref());
                let query = [("conditions", conditions.as_str()), ("fields", "id,identifier,name"), ("orderBy", "name asc")];
                let companies: Vec<Named> = self.get_all("/company/companies", &query, "look up companies", LOOKUP_PAGES).await?;
                Ok(companies.into_iter().map(|c| item(c.id, c.name)).collect())
            }
            Lookup::Places => {
                let query = [("conditions", "inactiveFlag=false"), ("fields", "id,name")];
                let boards: Vec<Named> = self.get_all("/service/boards", &query, "look up boards", LOOKUP_PAGES).await?;
                Ok(boards.into_iter().map(|b| item(b.id, b.name)).collect())
            }
            Lookup::Priorities => {
                let priorities = self.priorities().await?;
                Ok(priorities.into_iter().map(|p| LookupItem { default: p.default_flag == Some(true), ..item(p.id, p.name) }).collect())
            }
            Lookup::Statuses { place } => {
                let Some(place) = place.as_deref().or(self.default_place.as_deref()) else {
                    return Err(SinkError::Invalid("look up statuses: name a board (the destination has no default board)".into()));
                };
                let board = self.board_id(place).await?;
                let statuses = self.board_statuses(board).await?;
                Ok(statuses
                    .into_iter()
                    .filter(BoardStatus::usable)
                    .map(|s| LookupItem { closes: Some(s.closes()), default: s.default_flag == Some(true), ..item(s.id, s.name) })
                    .collect())
            }
            Lookup::Contacts { company, email } => {
                let company = company_id(company)?;
                let contacts = self.contacts(company, email.as_deref(), LOOKUP_PAGES).await?;
                Ok(contacts
                    .into_iter()
                    .map(|c| LookupItem { email: c.email(email.as_deref()), default: c.default_flag == Some(true), ..item(c.id, c.name()) })
                    .collect())
            }
            Lookup::Technicians | Lookup::Sites { .. } => {
                Err(SinkError::Invalid("Vigil looks up companies, boards, priorities, statuses and contacts in ConnectWise".into()))
            }
        }
    }

    /// The active contact of `company` with the e-mail address `email`, if there is one (the
    /// lowest id when several share it).
    pub(super) async fn contact_by_email(&self, company: i64, email: &str) -> Result<Option<i64>, SinkError> {
        let contacts = self.contacts(company, Some(email), 1).await?;
        Ok(contacts.iter().map(|c| c.id).min())
    }

    async fn contacts(&self, company: i64, email: Option<&str>, pages: usize) -> Result<Vec<Contact>, SinkError> {
        let conditions = format!("company/id={company} and inactiveFlag=false");
        let child = email.map(|email| format!("communicationItems/value={}", quoted(email.trim())));
        let mut query = vec![("conditions", conditions.as_str()), ("orderBy", "id asc")];
        if let Some(child) = &child {
            query.push(("childConditions", child.as_str()));
        }
        self.get_all("/company/contacts", &query, "look up contacts", pages).await
    }

    async fn priorities(&self) -> Result<Vec<Named>, SinkError> {
        self.get_all("/service/priorities", &[("fields", "id,name,defaultFlag")], "look up priorities", LOOKUP_PAGES).await
    }

    /// Every board, active or not.
    async fn boards(&self) -> Result<Vec<Named>, SinkError> {
        self.get_all("/service/boards", &[("fields", "id,name,inactiveFlag")], "look up boards", LOOKUP_PAGES).await
    }

    /// The id of the board `place` names (an id, or a board's name).
    async fn board_id(&self, place: &str) -> Result<i64, SinkError> {
        if let Some(id) = positive_id(place) {
            return Ok(id);
        }
        let conditions = format!("name={}", quoted(place.trim()));
        let boards: Vec<Named> = self
            .get("/service/boards", &[("conditions", conditions.as_str()), ("fields", "id,name")], "look up boards", Missing::Rejected)
            .await?;
        boards.first().map(|b| b.id).ok_or_else(|| SinkError::Invalid(format!("look up boards: there is no board named {place:?}")))
    }

    async fn board_statuses(&self, board: i64) -> Result<Vec<BoardStatus>, SinkError> {
        let query = [("fields", "id,name,closedStatus,defaultFlag,inactive"), ("orderBy", "sortOrder asc")];
        self.get_all(&format!("/service/boards/{board}/statuses"), &query, "look up statuses", LOOKUP_PAGES).await
    }

    /// The first (by sort order) active closed status of `board`, read once per board.
    pub(super) async fn first_closed_status(&self, board: i64) -> Result<i64, SinkError> {
        if let Some(status) = self.closed_statuses.lock().unwrap_or_else(PoisonError::into_inner).get(&board) {
            return Ok(*status);
        }
        let statuses = self.board_statuses(board).await?;
        let closed = statuses
            .iter()
            .find(|s| s.usable() && s.closes())
            .map(|s| s.id)
            .ok_or_else(|| SinkError::Rejected(format!("close ticket: board {board} has no closed status")))?;
        self.closed_statuses.lock().unwrap_or_else(PoisonError::into_inner).insert(board, closed);
        Ok(closed)
    }

    /// The problems of `destination` in this PSA: refused credentials, a routed board or
    /// priority that does not exist, contacts the API member may not read, a ticket type that is
    /// not a type of each routed board, a closed status that is not a closed status of each
    /// routed board (or, without one, a routed board without any closed status). Creates nothing.
    pub(super) async fn check_destination(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        let mut problems = Vec::new();
        match self.get::<Value>("/system/info", &[], "check credentials", Missing::Rejected).await {
            Ok(_) => {}
            Err(SinkError::Unauthorized(why)) => return Ok(vec![format!("ConnectWise refused the credentials: {why}")]),
            Err(SinkError::Rejected(why)) => return Ok(vec![format!("the API root does not answer like ConnectWise: {why}")]),
            Err(other) => return Err(other),
        }
        let routing = &destination.routing;
        let mut places: Vec<(String, &str)> = Vec::new();
        if let Some(place) = &routing.default_place {
            places.push(("the default board".to_owned(), place));
        }
        for (category, place) in &routing.places {
            places.push((format!("the board for {}", category.as_str()), place));
        }
        let mut routed_boards: Vec<i64> = Vec::new();
        if !places.is_empty() {
            let boards = self.boards().await?;
            for (role, place) in places {
                match boards.iter().find(|b| names(place, b.id, &b.name)) {
                    None => problems.push(format!("{role} ({place}) does not exist in ConnectWise")),
                    Some(board) if board.inactive_flag == Some(true) => {
                        problems.push(format!("{role} ({place}, {}) is inactive in ConnectWise", board.name));
                    }
                    Some(board) if !routed_boards.contains(&board.id) => routed_boards.push(board.id),
                    Some(_) => {}
                }
            }
        }
        if !routing.priorities.is_empty() {
            let priorities = self.priorities().await?;
            for (severity, priority) in &routing.priorities {
                if !priorities.iter().any(|p| names(priority, p.id, &p.name)) {
                    problems.push(format!("the priority for {} alerts ({priority}) does not exist in ConnectWise", severity.as_str()));
                }
            }
        }
        let contacts = [("fields", "id"), ("pageSize", "1")];
        match self.get::<Vec<Value>>("/company/contacts", &contacts, "look up contacts", Missing::Rejected).await {
            Ok(_) => {}
            Err(SinkError::Unauthorized(_) | SinkError::Rejected(_)) => {
                problems.push("the API member may not read contacts: tickets will not be linked to the affected user's contact".to_owned())
            }
            Err(other) => return Err(other),
        }
        if let DestinationSettings::ConnectWise { ticket_type: Some(ticket_type), .. } = &destination.settings {
            for board in &routed_boards {
                let path = format!("/service/boards/{board}/types");
                let types: Vec<Named> =
                    self.get_all(&path, &[("fields", "id,name,inactiveFlag")], "look up ticket types", LOOKUP_PAGES).await?;
                if !types.iter().any(|t| t.inactive_flag != Some(true) && names(ticket_type, t.id, &t.name)) {
                    problems.push(format!("the ticket type ({ticket_type}) is not a type of board {board}"));
                }
            }
        }
        for board in routed_boards {
            let statuses = self.board_statuses(board).await?;
            let Some(closed) = &routing.closed_status else {
                if !statuses.iter().any(|s| s.usable() && s.closes()) {
                    problems.push(format!("board {board} has no closed status, so Vigil cannot close its tickets"));
                }
                continue;
            };
            match statuses.iter().find(|s| names(closed, s.id, &s.name)) {
                None => problems.push(format!("the closed status ({closed}) is not a status of board {board}")),
                Some(status) if !status.closes() => {
                    problems.push(format!("the closed status ({closed}, {}) does not close tickets on board {board}", status.name));
                }
                Some(status) if !status.usable() => {
                    problems.push(format!("the closed status ({closed}, {}) is inactive on board {board}", status.name));
                }
                Some(_) => {}
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_contact_shows_the_searched_address_else_its_default_email() {
        let contact: Contact = serde_json::from_value(json!({
            "id": 1, "firstName": "Alice", "lastName": "Anders",
            "communicationItems": [
                {"value": "+1 555 0100", "communicationType": "Phone", "defaultFlag": true},
                {"value": "a.anders@contoso.com", "communicationType": "Email"},
                {"value": "alice@contoso.com", "communicationType": "Email", "defaultFlag": true}
            ]
        }))
        .unwrap();
        assert_eq!(contact.name(), "Alice Anders");
        assert_eq!(contact.email(Some("A.Anders@contoso.com")).as_deref(), Some("a.anders@contoso.com"));
        assert_eq!(contact.email(None).as_deref(), Some("alice@contoso.com"));
        let bare: Contact = serde_json::from_value(json!({"id": 2, "firstName": "Bob"})).unwrap();
        assert_eq!((bare.name().as_str(), bare.email(None)), ("Bob", None));
    }
}
