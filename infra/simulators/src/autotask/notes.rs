//! Ticket notes: created only through the parent URL, `POST /V1.0/Tickets/{id}/Notes` (the root
//! `POST /V1.0/TicketNotes` is refused, see the server), read through
//! `GET /V1.0/Tickets/{id}/Notes[/{noteId}]`, `GET /V1.0/TicketNotes/{id}` and
//! `TicketNotes/query`.
//!
//! `TicketNoteModel` rules: `description` required (≤ 32000), `title` ≤ 250, `noteType` and
//! `publish` required active picklist values; `ticketID` comes from the URL (a body `ticketID`
//! must match it). A new note records activity on its ticket (`lastActivityDate`).

use serde_json::{Map, Value, json};

use super::directory::API_RESOURCE_ID;
use super::model::{Entity, format_datetime, full_item, validate_members};
use super::server::{ApiError, Shared, SimRequest, SimState, ok};
use super::tickets::touch;

impl Shared {
    /// Stores a note on an existing ticket; returns its id.
    pub(crate) fn insert_note(&self, state: &mut SimState, ticket_id: i64, mut note: Map<String, Value>, by: i64, now: &str) -> i64 {
        let id = state.next_note_id;
        state.next_note_id += 1;
        note.insert("id".into(), json!(id));
        note.insert("ticketID".into(), json!(ticket_id));
        note.insert("createDateTime".into(), json!(now));
        note.insert("creatorResourceID".into(), json!(by));
        note.insert("lastActivityDate".into(), json!(now));
        state.notes.insert(id, note);
        if let Some(ticket) = state.tickets.get_mut(&ticket_id) {
            touch(ticket, by, now);
        }
        id
    }

    /// `POST /V1.0/Tickets/{ticketId}/Notes` → `{"itemId": N}`.
    pub(crate) fn add_note(&self, ticket_id: i64, req: &SimRequest) -> Result<axum::response::Response, ApiError> {
        let body = req.json()?;
        let spec = self.specs.of(Entity::TicketNotes);
        let note = validate_members(spec, &body).map_err(ApiError::validation)?;
        let mut errors = Vec::new();
        if let Some(sent) = note.get("ticketID").filter(|v| !v.is_null())
            && sent.as_i64() != Some(ticket_id)
        {
            errors.push(format!("ticketID: {sent} does not match the parent ticket {ticket_id} of the URL."));
        }
        for field in spec.fields.iter().filter(|f| f.required && !f.read_only && f.name != "ticketID") {
            if note.get(&field.name).is_none_or(Value::is_null) {
                errors.push(format!("Missing required field: {}.", field.name));
            }
        }
        let now = format_datetime(self.kit.clock.now());
        let mut state = self.lock();
        if !state.tickets.contains_key(&ticket_id) {
            errors.push(format!("ticketID: ticket {ticket_id} does not exist."));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let id = self.insert_note(&mut state, ticket_id, note, API_RESOURCE_ID, &now);
        ok(&json!({"itemId": id}))
    }

    /// `GET /V1.0/Tickets/{ticketId}/Notes`: all notes of the ticket, one page.
    pub(crate) fn list_notes(&self, ticket_id: i64) -> Value {
        let spec = self.specs.of(Entity::TicketNotes);
        let state = self.lock();
        let items: Vec<Value> = state
            .notes
            .values()
            .filter(|n| n.get("ticketID").and_then(Value::as_i64) == Some(ticket_id))
            .map(|n| full_item(spec, n))
            .collect();
        json!({
            "items": items,
            "pageDetails": {"count": items.len(), "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null},
        })
    }

    /// `GET /V1.0/Tickets/{ticketId}/Notes/{noteId}`: the note, or `null` when it is not a note
    /// of that ticket.
    pub(crate) fn child_note(&self, ticket_id: i64, note_id: i64) -> Value {
        let spec = self.specs.of(Entity::TicketNotes);
        let state = self.lock();
        state
            .notes
            .get(&note_id)
            .filter(|n| n.get("ticketID").and_then(Value::as_i64) == Some(ticket_id))
            .map_or(Value::Null, |n| full_item(spec, n))
    }
}
