//! Tickets: find by reference, create (linked to the affected user's contact), notes, close,
//! and the state of many tickets in few requests.
//!
//! Requests (paths below the API root):
//!
//! * find: `GET /service/tickets?conditions=externalXRef="…"&fields=id&orderBy=id asc&pageSize=1`;
//! * create: the contact lookup of `lookups` when the content names an affected user, then
//!   `POST /service/tickets`;
//! * add a note: `POST /service/tickets/{id}/notes` (internal analysis, no notifications);
//! * find a note: `GET /service/tickets/{id}/notes?fields=id,text&pageSize=1000&page=n`, searched
//!   here (a `contains` condition would be a SQL `LIKE`, where a marker's brackets are wildcards);
//! * close: `GET /service/tickets/{id}?fields=id,board/id,closedFlag`, the board's statuses once
//!   per board (`lookups`), then `PATCH /service/tickets/{id}` with
//!   `[{"op":"replace","path":"/status","value":{"id":N}}]`;
//! * states: `GET /service/tickets?conditions=id in (…)&fields=id,status/name,closedFlag,closedBy,closedDate&pageSize=n`
//!   per [`STATES_PER_REQUEST`] tickets.

use super::ConnectWiseClient;
use super::body::{company_id, ids_condition, positive_id, reference, ticket_body, xref_condition};
use super::http::{Missing, PAGE_SIZE};
use crate::error::SinkError;
use crate::ports::NewTicket;
use crate::ticket::{TicketNote, TicketRef, TicketState};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

/// Tickets read per state request (the ids travel in the query string).
pub const STATES_PER_REQUEST: usize = 50;
/// Note pages read before giving up looking for a marker.
const MAX_NOTE_PAGES: usize = 50;
/// The fields a state read needs.
const STATE_FIELDS: &str = "id,status/name,closedFlag,closedBy,closedDate";

#[derive(Deserialize)]
struct WithId {
    id: i64,
}

#[derive(Deserialize)]
struct NoteText {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct Reference {
    #[serde(default)]
    pub(super) id: Option<i64>,
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TicketStateRow {
    id: i64,
    #[serde(default)]
    status: Option<Reference>,
    #[serde(default)]
    closed_flag: Option<bool>,
    #[serde(default)]
    closed_by: Option<String>,
    #[serde(default)]
    closed_date: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TicketForClose {
    #[serde(default)]
    board: Option<Reference>,
    #[serde(default)]
    closed_flag: Option<bool>,
}

/// A ticket reference as a ConnectWise ticket id (never put into a path otherwise).
fn ticket_id(ticket: &TicketRef, operation: &str) -> Result<i64, SinkError> {
    positive_id(&ticket.id).ok_or_else(|| SinkError::Rejected(format!("{operation}: {:?} is not a ConnectWise ticket id", ticket.id)))
}

/// What ConnectWise says of a ticket it returned.
fn state_of(row: TicketStateRow) -> TicketState {
    let status = row.status.and_then(|s| s.name).unwrap_or_default();
    if row.closed_flag == Some(true) {
        let at = row.closed_date.as_deref().and_then(|d| DateTime::parse_from_rfc3339(d).ok()).map(|d| d.with_timezone(&Utc));
        TicketState::Closed { status, by: row.closed_by.filter(|b| !b.trim().is_empty()), at }
    } else {
        TicketState::Open { status }
    }
}

impl ConnectWiseClient {
    pub(super) async fn find_by_reference(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        let conditions = xref_condition(reference);
        let found: Vec<WithId> = self
            .get(
                "/service/tickets",
                &[("conditions", conditions.as_str()), ("fields", "id"), ("orderBy", "id asc"), ("pageSize", "1")],
                "find ticket",
                Missing::Rejected,
            )
            .await?;
        Ok(found.first().map(|ticket| TicketRef::new(ticket.id.to_string())))
    }

    pub(super) async fn create(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        let company = company_id(&ticket.company)?;
        let contact = match ticket.content.affected_user.as_deref().map(str::trim).filter(|user| user.contains('@')) {
            Some(email) => match self.contact_by_email(company, email).await {
                Ok(contact) => contact,
                // The link is a convenience: an API member that may not read contacts still
                // files tickets (under the company's default contact). Transient failures retry.
                Err(error @ (SinkError::Unauthorized(_) | SinkError::Rejected(_))) => {
                    tracing::warn!(error = %error, "could not look up the affected user's contact; the ticket gets the company's default");
                    None
                }
                Err(error) => return Err(error),
            },
            None => None,
        };
        let body = ticket_body(ticket, self.ticket_type.as_deref(), self.source.as_deref(), contact)?;
        let text = self.call(Method::POST, "/service/tickets", &[], Some(&body), "create ticket", Missing::Rejected).await?;
        // The ticket exists but its id is unreadable: transient, so the retry finds it by reference.
        let created: WithId = serde_json::from_str(&text)
            .map_err(|e| SinkError::Unavailable(format!("create ticket: the response has no ticket id: {e}")))?;
        tracing::info!(ticket_id = created.id, reference = %ticket.reference, contact, "created ConnectWise ticket");
        Ok(TicketRef::new(created.id.to_string()))
    }

    pub(super) async fn post_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        let id = ticket_id(ticket, "add note")?;
        let body = json!({
            "text": note.text,
            "internalAnalysisFlag": true,
            "detailDescriptionFlag": false,
            "processNotifications": false,
        });
        self.call(Method::POST, &format!("/service/tickets/{id}/notes"), &[], Some(&body), "add note", Missing::Gone).await?;
        Ok(())
    }

    pub(super) async fn find_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        let id = ticket_id(ticket, "list notes")?;
        let path = format!("/service/tickets/{id}/notes");
        let page_size = PAGE_SIZE.to_string();
        for page in 1..=MAX_NOTE_PAGES {
            let page = page.to_string();
            let notes: Vec<NoteText> = self
                .get(
                    &path,
                    &[("fields", "id,text"), ("pageSize", page_size.as_str()), ("page", page.as_str())],
                    "list notes",
                    Missing::Gone,
                )
                .await?;
            if notes.iter().any(|note| note.text.as_deref().is_some_and(|text| text.contains(marker))) {
                return Ok(true);
            }
            if notes.len() < PAGE_SIZE {
                return Ok(false);
            }
        }
        Err(SinkError::Rejected(format!("list notes: ticket {id} has more than {} notes", PAGE_SIZE * MAX_NOTE_PAGES)))
    }

    /// Moves the ticket to `status` (an id or name; `None`: its board's first closed status).
    /// A ticket already closed is left as it is, so repeating a close changes nothing.
    pub(super) async fn close(&self, ticket: &TicketRef, status: Option<&str>) -> Result<(), SinkError> {
        let id = ticket_id(ticket, "close ticket")?;
        let path = format!("/service/tickets/{id}");
        let current: TicketForClose = self.get(&path, &[("fields", "id,board/id,closedFlag")], "close ticket", Missing::Gone).await?;
        if current.closed_flag == Some(true) {
            return Ok(());
        }
        let value = match status.map(str::trim).filter(|s| !s.is_empty()) {
            Some(status) => reference(status),
            None => {
                let board = current.board.and_then(|b| b.id).ok_or_else(|| {
                    SinkError::Rejected(format!(
                        "close ticket: ticket {id} has no board to take a closed status from (set the destination's closed status)"
                    ))
                })?;
                json!({ "id": self.first_closed_status(board).await? })
            }
        };
        let patch = json!([{ "op": "replace", "path": "/status", "value": value }]);
        let text = self.call(Method::PATCH, &path, &[], Some(&patch), "close ticket", Missing::Gone).await?;
        // The answer is the ticket as changed: a status that does not close (a misconfigured
        // override) leaves it open, which is the MSP's to fix, not a reason to retry.
        let changed: TicketForClose = serde_json::from_str(&text).unwrap_or_default();
        if changed.closed_flag == Some(false) {
            return Err(SinkError::Rejected(format!("close ticket: status {value} does not close ticket {id} on its board")));
        }
        tracing::info!(ticket_id = id, "closed ConnectWise ticket");
        Ok(())
    }

    pub(super) async fn states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        let ids: Vec<i64> = tickets.iter().filter_map(|t| positive_id(&t.id)).collect::<BTreeSet<_>>().into_iter().collect();
        let mut found: HashMap<i64, TicketState> = HashMap::new();
        for chunk in ids.chunks(STATES_PER_REQUEST) {
            let conditions = ids_condition(chunk);
            let page_size = chunk.len().to_string();
            let rows: Vec<TicketStateRow> = self
                .get(
                    "/service/tickets",
                    &[("conditions", conditions.as_str()), ("fields", STATE_FIELDS), ("pageSize", page_size.as_str())],
                    "read ticket states",
                    Missing::Rejected,
                )
                .await?;
            for row in rows {
                found.insert(row.id, state_of(row));
            }
        }
        // A ticket ConnectWise does not return was deleted or merged away (or never was one).
        Ok(tickets
            .iter()
            .map(|t| (t.clone(), positive_id(&t.id).and_then(|id| found.get(&id).cloned()).unwrap_or(TicketState::Gone)))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_closed_row_reads_as_closed_by_whom_and_when_and_an_open_one_as_its_status() {
        let row: TicketStateRow = serde_json::from_value(json!({
            "id": 1001, "status": {"name": ">Closed"}, "closedFlag": true, "closedBy": "jsmith", "closedDate": "2026-01-05T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            state_of(row),
            TicketState::Closed {
                status: ">Closed".into(),
                by: Some("jsmith".into()),
                at: Some(Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap())
            }
        );
        let open: TicketStateRow = serde_json::from_value(json!({"id": 1002, "status": {"name": "New"}, "closedFlag": false})).unwrap();
        assert_eq!(state_of(open), TicketState::Open { status: "New".into() });
    }

    #[test]
    fn only_numeric_ticket_ids_reach_a_path() {
        assert_eq!(ticket_id(&TicketRef::new("1001"), "x").unwrap(), 1001);
        for bad in ["../system/members", "1001/notes", "", "-1"] {
            assert!(matches!(ticket_id(&TicketRef::new(bad), "x"), Err(SinkError::Rejected(_))), "{bad}");
        }
    }
}
