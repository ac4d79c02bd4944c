//! Lookups: service boards with their board-specific statuses and types, priorities, companies
//! and contacts — the fixed and seeded data a ticket's references are checked against.
//!
//! Seeded data (ids are what the repository's tests, demo and local stack use):
//!
//! * boards: 1 `Service Desk` (statuses 1 `New`·default, 2 `In Progress`, 99 `>Closed`·closed;
//!   types 1 `Incident`, 2 `Service Request`), 2 `Security Alerts` (11 `New`·default,
//!   12 `Assigned`, 19 `Completed`·closed, 20 `>Closed - Resolved`·closed; types 21
//!   `Security Incident`, 22 `Suspicious Sign-in`), 7 `Vigil Alerts` (71 `New`·default,
//!   72 `Waiting on Customer`, 79 `>Closed`·closed; type 71 `Microsoft 365 Alert`) — board 7 is
//!   the board the local-stack tests configure;
//! * priorities 1–4 (`Priority 1 - Emergency Response` … `Priority 4 - Schedule Maintenance`,
//!   3 is the default) and 8–11 (`Security - High`, `- Medium`, `- Low`, `- Informational`);
//! * companies 250 `Contoso`, 251 `Fabrikam`, 252 `Adventure Works` (deleted), 260, 270, 280,
//!   299 (the security tests' and the demo's other MSP customers), 1000–1049 (the ingestion
//!   scale test's fifty customers) and 19297 `Vigil MSP (own)`; identifiers are the names
//!   without spaces;
//! * contacts 1 Alice Anders `alice@contoso.com` (company 250) and 2 Bob Berg
//!   `bob@fabrikam.com` (company 251).
//!
//! Contacts by e-mail: ConnectWise keeps e-mail addresses in the `communicationItems` child
//! collection, which `conditions` cannot reach; clients filter with
//! `childConditions=communicationItems/value="a@b.com" and communicationItems/communicationType="Email"`.
//! The simulator evaluates `childConditions` per item (a contact matches when one of its items
//! satisfies the whole expression) and refuses `communicationItems/…` inside `conditions`.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::http::{ApiError, SimRequest, not_found};
use super::listing::ChildSpec;
use super::{API_MEMBER, API_PATH, Shared, SimState};

/// One status of a board.
pub(super) struct StatusDef {
    pub(super) id: i64,
    pub(super) name: &'static str,
    pub(super) closed: bool,
    pub(super) default: bool,
}

/// A service board with its own status and type tables.
pub(super) struct BoardDef {
    pub(super) id: i64,
    pub(super) name: &'static str,
    pub(super) statuses: &'static [StatusDef],
    pub(super) types: &'static [(i64, &'static str)],
}

const fn st(id: i64, name: &'static str, closed: bool, default: bool) -> StatusDef {
    StatusDef { id, name, closed, default }
}

pub(super) const BOARDS: &[BoardDef] = &[
    BoardDef {
        id: 1,
        name: "Service Desk",
        statuses: &[st(1, "New", false, true), st(2, "In Progress", false, false), st(99, ">Closed", true, false)],
        types: &[(1, "Incident"), (2, "Service Request")],
    },
    BoardDef {
        id: 2,
        name: "Security Alerts",
        statuses: &[
            st(11, "New", false, true),
            st(12, "Assigned", false, false),
            st(19, "Completed", true, false),
            st(20, ">Closed - Resolved", true, false),
        ],
        types: &[(21, "Security Incident"), (22, "Suspicious Sign-in")],
    },
    BoardDef {
        id: 7,
        name: "Vigil Alerts",
        statuses: &[st(71, "New", false, true), st(72, "Waiting on Customer", false, false), st(79, ">Closed", true, false)],
        types: &[(71, "Microsoft 365 Alert")],
    },
];

/// (id, name, level, default, color). `sortOrder` is the position in this table.
const PRIORITIES: &[(i64, &str, &str, bool, &str)] = &[
    (1, "Priority 1 - Emergency Response", "Critical", false, "#FF0000"),
    (2, "Priority 2 - Quick Response", "High", false, "#FF8000"),
    (3, "Priority 3 - Normal Response", "Medium", true, "#00A000"),
    (4, "Priority 4 - Schedule Maintenance", "Low", false, "#0000FF"),
    (8, "Security - High", "High", false, "#C00000"),
    (9, "Security - Medium", "Medium", false, "#E0A000"),
    (10, "Security - Low", "Low", false, "#4080C0"),
    (11, "Security - Informational", "Low", false, "#808080"),
];

/// Seeded companies: (id, name, deleted).
const COMPANIES: &[(i64, &str, bool)] = &[
    (250, "Contoso", false),
    (251, "Fabrikam", false),
    (252, "Adventure Works", true),
    (260, "Northwind Traders", false),
    (270, "Tailspin Toys", false),
    (280, "Woodgrove Bank", false),
    (299, "Litware", false),
    (19297, "Vigil MSP (own)", false),
];
/// The ingestion scale test maps fifty tenants to companies 1000..=1049.
const LOAD_TEST_COMPANIES: std::ops::RangeInclusive<i64> = 1000..=1049;
/// First id `add_company` hands out.
pub(super) const FIRST_ADDED_COMPANY_ID: i64 = 20000;
/// Seeded contacts: (id, company, first, last, e-mail).
const CONTACTS: &[(i64, i64, &str, &str, &str)] =
    &[(1, 250, "Alice", "Anders", "alice@contoso.com"), (2, 251, "Bob", "Berg", "bob@fabrikam.com")];
pub(super) const FIRST_ADDED_CONTACT_ID: i64 = 100;

pub(super) fn board(id: i64) -> Option<&'static BoardDef> {
    BOARDS.iter().find(|b| b.id == id)
}

pub(super) fn board_by_name(name: &str) -> Option<&'static BoardDef> {
    BOARDS.iter().find(|b| b.name.eq_ignore_ascii_case(name.trim()))
}

impl BoardDef {
    pub(super) fn status(&self, id: i64) -> Option<&StatusDef> {
        self.statuses.iter().find(|s| s.id == id)
    }

    /// By name, case-insensitively; `Closed` also finds `>Closed`.
    pub(super) fn status_by_name(&self, name: &str) -> Option<&StatusDef> {
        let name = name.trim();
        self.statuses
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .or_else(|| self.statuses.iter().find(|s| s.name.trim_start_matches('>').eq_ignore_ascii_case(name.trim_start_matches('>'))))
    }

    pub(super) fn default_status(&self) -> Option<&StatusDef> {
        self.statuses.iter().find(|s| s.default)
    }

    pub(super) fn first_closed_status(&self) -> Option<&StatusDef> {
        self.statuses.iter().find(|s| s.closed)
    }

    fn reference(&self) -> Value {
        json!({"id": self.id, "name": self.name})
    }
}

/// The board a ticket names (`board.id`, else `board.name`); `None` for a ticket without board.
pub(super) fn ticket_board(ticket: &Map<String, Value>) -> Option<&'static BoardDef> {
    let b = ticket.get("board")?;
    match b.get("id").and_then(Value::as_i64) {
        Some(id) => board(id),
        None => board_by_name(b.get("name").and_then(Value::as_str)?),
    }
}

/// `(id, name)` of a priority, by id or name.
pub(super) fn priority(id: Option<i64>, name: Option<&str>) -> Option<(i64, &'static str)> {
    PRIORITIES
        .iter()
        .find(|p| Some(p.0) == id || (id.is_none() && name.is_some_and(|n| n.trim().eq_ignore_ascii_case(p.1))))
        .map(|p| (p.0, p.1))
}

fn board_json(b: &BoardDef, root: &str) -> Value {
    json!({
        "id": b.id, "name": b.name,
        "location": {"id": 2, "name": "Main"}, "department": {"id": 10, "name": "Services"},
        "inactiveFlag": false, "projectFlag": false,
        "_info": {"lastUpdated": "2026-01-01T00:00:00Z", "updatedBy": "admin1",
                  "statuses_href": format!("{root}/service/boards/{}/statuses", b.id),
                  "types_href": format!("{root}/service/boards/{}/types", b.id)},
    })
}

fn status_json(b: &BoardDef, index: usize, s: &StatusDef, root: &str) -> Value {
    json!({
        "id": s.id, "name": s.name, "board": b.reference(),
        "sortOrder": index, "displayOnBoard": true, "inactive": false,
        "closedStatus": s.closed, "timeEntryNotAllowed": false, "defaultFlag": s.default,
        "_info": {"lastUpdated": "2026-01-01T00:00:00Z", "updatedBy": "admin1",
                  "status_href": format!("{root}/service/boards/{}/statuses/{}", b.id, s.id)},
    })
}

fn type_json(b: &BoardDef, index: usize, id: i64, name: &str) -> Value {
    json!({
        "id": id, "name": name, "category": "Reactive", "defaultFlag": index == 0,
        "inactiveFlag": false, "requestForChangeFlag": false, "board": b.reference(),
    })
}

fn priority_json(index: usize, p: &(i64, &str, &str, bool, &str)) -> Value {
    json!({"id": p.0, "name": p.1, "color": p.4, "sortOrder": index + 1, "level": p.2, "defaultFlag": p.3})
}

/// A company object in the shape `GET /company/companies/{id}` returns.
pub(super) fn company_json(id: i64, identifier: &str, name: &str, deleted: bool, now: &str) -> Value {
    json!({
        "id": id, "identifier": identifier, "name": name,
        "status": {"id": 1, "name": "Active"},
        "types": [{"id": 1, "name": "Client"}],
        "deletedFlag": deleted,
        "_info": {"lastUpdated": now, "updatedBy": API_MEMBER, "dateEntered": now, "enteredBy": API_MEMBER},
    })
}

/// A contact object in the shape `GET /company/contacts/{id}` returns.
pub(super) fn contact_json(id: i64, company: Value, first: &str, last: &str, email: &str, now: &str) -> Value {
    json!({
        "id": id, "firstName": first, "lastName": last, "company": company,
        "inactiveFlag": false, "defaultFlag": false,
        "communicationItems": [{
            "id": id * 10 + 1, "type": {"id": 1, "name": "Email"}, "value": email,
            "defaultFlag": true, "communicationType": "Email",
        }],
        "_info": {"lastUpdated": now, "updatedBy": API_MEMBER},
    })
}

/// `{id, identifier, name}` of a stored company, for references.
pub(super) fn company_reference(company: &Value) -> Value {
    json!({"id": company["id"], "identifier": company["identifier"], "name": company["name"]})
}

pub(super) fn seed_companies(now: &str) -> BTreeMap<i64, Value> {
    let mut out = BTreeMap::new();
    for (id, name, deleted) in COMPANIES {
        out.insert(*id, company_json(*id, &name.replace(' ', ""), name, *deleted, now));
    }
    for id in LOAD_TEST_COMPANIES {
        let name = format!("Load Test Customer {}", id - 1000);
        out.insert(id, company_json(id, &format!("LoadTest{id}"), &name, false, now));
    }
    out
}

pub(super) fn seed_contacts(companies: &BTreeMap<i64, Value>, now: &str) -> BTreeMap<i64, Value> {
    let mut out = BTreeMap::new();
    for (id, company, first, last, email) in CONTACTS {
        let reference = companies.get(company).map_or_else(|| json!({"id": company}), company_reference);
        out.insert(*id, contact_json(*id, reference, first, last, email, now));
    }
    out
}

/// The lookup routes served by [`Shared::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LookupRoute {
    Boards,
    Board(i64),
    BoardStatuses(i64),
    BoardStatus(i64, i64),
    BoardTypes(i64),
    Priorities,
    Priority(i64),
    Companies { count: bool },
    Company(i64),
    Contacts { count: bool },
    Contact(i64),
}

const CONTACT_CHILDREN: ChildSpec = ChildSpec { field: "communicationItems", schema: "ContactCommunicationItem" };

impl Shared {
    pub(super) fn api_root_url(&self) -> String {
        format!("http://{}{API_PATH}", self.addr)
    }

    pub(super) fn lookup(&self, state: &SimState, route: LookupRoute, req: &SimRequest) -> Result<Response, ApiError> {
        let root = self.api_root_url();
        let board_or_404 = |id: i64| board(id).ok_or_else(|| not_found(&format!("Board with id {id} was not found")));
        match route {
            LookupRoute::Boards => self.list(req, "Board", BOARDS.iter().map(|b| board_json(b, &root)).collect(), false),
            LookupRoute::Board(id) => self.single(req, "Board", board_json(board_or_404(id)?, &root)),
            LookupRoute::BoardStatuses(id) => {
                let b = board_or_404(id)?;
                let items = b.statuses.iter().enumerate().map(|(i, s)| status_json(b, i, s, &root)).collect();
                self.list(req, "BoardStatus", items, false)
            }
            LookupRoute::BoardStatus(id, status_id) => {
                let b = board_or_404(id)?;
                let (i, s) = b
                    .statuses
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.id == status_id)
                    .ok_or_else(|| not_found(&format!("Status with id {status_id} was not found on board {id}")))?;
                self.single(req, "BoardStatus", status_json(b, i, s, &root))
            }
            LookupRoute::BoardTypes(id) => {
                let b = board_or_404(id)?;
                let items = b.types.iter().enumerate().map(|(i, (tid, name))| type_json(b, i, *tid, name)).collect();
                self.list(req, "BoardType", items, false)
            }
            LookupRoute::Priorities => {
                self.list(req, "Priority", PRIORITIES.iter().enumerate().map(|(i, p)| priority_json(i, p)).collect(), false)
            }
            LookupRoute::Priority(id) => {
                let (i, p) = PRIORITIES
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.0 == id)
                    .ok_or_else(|| not_found(&format!("Priority with id {id} was not found")))?;
                self.single(req, "Priority", priority_json(i, p))
            }
            LookupRoute::Companies { count } => self.list(req, "Company", state.companies.values().cloned().collect(), count),
            LookupRoute::Company(id) => match state.companies.get(&id) {
                Some(c) => self.single(req, "Company", c.clone()),
                None => Err(not_found(&format!("Company with id {id} was not found"))),
            },
            LookupRoute::Contacts { count } => {
                self.list_with_children(req, "Contact", state.contacts.values().cloned().collect(), count, Some(CONTACT_CHILDREN))
            }
            LookupRoute::Contact(id) => match state.contacts.get(&id) {
                Some(c) => self.single(req, "Contact", c.clone()),
                None => Err(not_found(&format!("Contact with id {id} was not found"))),
            },
        }
    }
}
