//! What a technician does in the ConnectWise UI, simulated: close a ticket as a named member,
//! reopen it, delete it, merge it into another. Reachable through control routes
//! (`POST /_sim/tickets/{id}/close|reopen|delete|merge`) and handle methods; every action is
//! visible through the API afterwards and announced to matching callbacks.
//!
//! Merging (unconfirmed): the merged ticket is closed (its board's first closed status) by the
//! member, gains the internal note `Merged into ticket #N` and `mergedParentTicket: {id: N}`,
//! and is then removed, as ConnectWise deletes merged children: `GET` of it answers the JSON
//! `404 NotFound` and searches no longer return it. The ticket merged into gains
//! `hasMergedChildTicketFlag: true`. Callbacks: `deleted` for the child, `updated` for the
//! parent.

use serde_json::{Map, Value, json};

use super::http::now_rfc3339;
use super::lookups::ticket_board;
use super::tickets::{public_ticket, touch};
use super::{STATUSES, Shared, SimState};

/// Why a technician action could not be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ActionError {
    NotFound(String),
    Invalid(String),
}

impl ActionError {
    pub(super) fn message(&self) -> &str {
        match self {
            ActionError::NotFound(m) | ActionError::Invalid(m) => m,
        }
    }
}

fn missing(id: i64) -> ActionError {
    ActionError::NotFound(format!("ticket {id} does not exist (or was deleted)"))
}

/// The status a close (`closed: true`) or reopen moves the ticket to: `requested` if it is one
/// of the ticket's board's statuses of the right kind, else the board's first closed / default
/// status. Without a board, the global table (99 `>Closed`, 1 `New`).
fn target_status(ticket: &Map<String, Value>, requested: Option<i64>, closed: bool) -> Result<(i64, &'static str), ActionError> {
    let kind = if closed { "closed" } else { "open" };
    match ticket_board(ticket) {
        Some(board) => match requested {
            Some(id) => match board.status(id) {
                Some(s) if s.closed == closed => Ok((s.id, s.name)),
                Some(s) => Err(ActionError::Invalid(format!("status {id} ({}) of board {} is not a {kind} status", s.name, board.id))),
                None => Err(ActionError::Invalid(format!("status {id} is not a status of board {} ({})", board.id, board.name))),
            },
            None => {
                let s = if closed { board.first_closed_status() } else { board.default_status() };
                s.map(|s| (s.id, s.name)).ok_or_else(|| ActionError::Invalid(format!("board {} has no {kind} status", board.id)))
            }
        },
        None => {
            let id = requested.unwrap_or(if closed { 99 } else { 1 });
            match STATUSES.iter().find(|(sid, _, _)| *sid == id) {
                Some((sid, name, c)) if *c == closed => Ok((*sid, name)),
                _ => Err(ActionError::Invalid(format!("status {id} is not a {kind} status (tickets without board: 1, 2 open; 99 closed)"))),
            }
        }
    }
}

fn set_closed(ticket: &mut Map<String, Value>, status: (i64, &str), by: &str, now: &str) {
    ticket.insert("status".into(), json!({"id": status.0, "name": status.1}));
    ticket.insert("closedFlag".into(), json!(true));
    ticket.insert("closedDate".into(), json!(now));
    ticket.insert("closedBy".into(), json!(by));
    touch(ticket, now, by);
}

impl Shared {
    pub(super) fn technician_close(&self, state: &mut SimState, id: i64, by: &str, status_id: Option<i64>) -> Result<Value, ActionError> {
        let stored = state.tickets.get_mut(&id).ok_or_else(|| missing(id))?;
        let status = target_status(&stored.body, status_id, true)?;
        set_closed(&mut stored.body, status, by, &now_rfc3339());
        let body = stored.body.clone();
        self.emit_ticket_event(state, "updated", id, &body, by, true);
        Ok(public_ticket(&body))
    }

    pub(super) fn technician_reopen(&self, state: &mut SimState, id: i64, by: &str, status_id: Option<i64>) -> Result<Value, ActionError> {
        let stored = state.tickets.get_mut(&id).ok_or_else(|| missing(id))?;
        let status = target_status(&stored.body, status_id, false)?;
        let t = &mut stored.body;
        t.insert("status".into(), json!({"id": status.0, "name": status.1}));
        t.insert("closedFlag".into(), json!(false));
        t.remove("closedDate");
        t.remove("closedBy");
        touch(t, &now_rfc3339(), by);
        let body = t.clone();
        self.emit_ticket_event(state, "updated", id, &body, by, true);
        Ok(public_ticket(&body))
    }

    pub(super) fn technician_delete(&self, state: &mut SimState, id: i64, by: &str) -> Result<(), ActionError> {
        let mut stored = state.tickets.remove(&id).ok_or_else(|| missing(id))?;
        touch(&mut stored.body, &now_rfc3339(), by);
        self.emit_ticket_event(state, "deleted", id, &stored.body, by, false);
        state.deleted.insert(id, stored);
        Ok(())
    }

    pub(super) fn technician_merge(&self, state: &mut SimState, id: i64, into: i64, by: &str) -> Result<(), ActionError> {
        if id == into {
            return Err(ActionError::Invalid(format!("ticket {id} cannot be merged into itself")));
        }
        if !state.tickets.contains_key(&into) {
            return Err(missing(into));
        }
        let mut child = state.tickets.remove(&id).ok_or_else(|| missing(id))?;
        let now = now_rfc3339();
        let status = match target_status(&child.body, None, true) {
            Ok(s) => s,
            Err(e) => {
                state.tickets.insert(id, child);
                return Err(e);
            }
        };
        set_closed(&mut child.body, status, by, &now);
        child.body.insert("mergedParentTicket".into(), json!({"id": into}));
        let note_id = state.next_note_id;
        state.next_note_id += 1;
        child.notes.push(json!({
            "id": note_id, "ticketId": id, "text": format!("Merged into ticket #{into}"),
            "detailDescriptionFlag": false, "internalAnalysisFlag": true, "resolutionFlag": false,
            "issueFlag": false, "internalFlag": true, "externalFlag": false,
            "member": {"identifier": by}, "dateCreated": now, "createdBy": by,
            "_info": {"lastUpdated": now, "updatedBy": by},
        }));
        self.emit_ticket_event(state, "deleted", id, &child.body, by, false);
        state.deleted.insert(id, child);
        if let Some(parent) = state.tickets.get_mut(&into) {
            parent.body.insert("hasMergedChildTicketFlag".into(), json!(true));
            touch(&mut parent.body, &now, by);
            let body = parent.body.clone();
            self.emit_ticket_event(state, "updated", into, &body, by, true);
        }
        Ok(())
    }
}

impl super::ConnectWiseSimHandle {
    /// A technician (`by`, a member identifier such as `jsmith`) closes ticket `id`: status
    /// `status_id` (a closed status of the ticket's board; default: the board's first closed
    /// status, 99 without board), `closedFlag`, `closedDate`, `closedBy: by`. Returns the ticket
    /// as the API now returns it.
    pub fn close_ticket(&self, id: i64, by: &str, status_id: Option<i64>) -> Result<Value, String> {
        let mut state = self.shared.lock();
        self.shared.technician_close(&mut state, id, by, status_id).map_err(|e| e.message().to_string())
    }

    /// A technician reopens ticket `id` (status `status_id`, an open status of its board;
    /// default: the board's default status, 1 without board); `closedDate`/`closedBy` go.
    pub fn reopen_ticket(&self, id: i64, by: &str, status_id: Option<i64>) -> Result<Value, String> {
        let mut state = self.shared.lock();
        self.shared.technician_reopen(&mut state, id, by, status_id).map_err(|e| e.message().to_string())
    }

    /// A technician deletes ticket `id`: the API answers `404` for it from now on.
    pub fn delete_ticket(&self, id: i64, by: &str) -> Result<(), String> {
        let mut state = self.shared.lock();
        self.shared.technician_delete(&mut state, id, by).map_err(|e| e.message().to_string())
    }

    /// A technician merges ticket `id` into ticket `into` (see the module docs).
    pub fn merge_ticket(&self, id: i64, into: i64, by: &str) -> Result<(), String> {
        let mut state = self.shared.lock();
        self.shared.technician_merge(&mut state, id, into, by).map_err(|e| e.message().to_string())
    }
}
