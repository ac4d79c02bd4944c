//! Ticket notes: `POST /service/tickets/{id}/notes` (validated against `ServiceNote`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{ApiError, SimRequest, invalid_object, json_response, now_rfc3339, parse_json_body, violation};
use super::tickets::{ticket_not_found, touch};
use super::{API_MEMBER, Shared, SimState};
use crate::openapi_validate::ViolationCode;

impl Shared {
    pub(super) fn add_note(&self, state: &mut SimState, id: i64, req: &SimRequest) -> Result<Response, ApiError> {
        if !state.tickets.contains_key(&id) {
            return Err(ticket_not_found(id));
        }
        let value = parse_json_body(req, "serviceNote")?;
        let Value::Object(mut note) = value else {
            return Err(invalid_object("serviceNote", &[violation("", ViolationCode::InvalidField, "the note must be a JSON object")]));
        };
        let mut violations = self.schemas.validate("ServiceNote", &Value::Object(note.clone()));
        let has_text = note.get("text").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty());
        let text_reported = violations.iter().any(|v| v.field == "text");
        if !has_text && !text_reported {
            violations.push(violation("text", ViolationCode::NullValue, "text is required"));
        }
        // [unconfirmed] The real API is reported to reject notes that are neither discussion,
        // internal analysis nor resolution; see psa-apis.md §1.4.
        let flags = ["detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag"];
        if !flags.iter().any(|f| note.get(*f).and_then(Value::as_bool) == Some(true)) {
            violations.push(violation(
                "detailDescriptionFlag",
                ViolationCode::InvalidField,
                "at least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true",
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_object("serviceNote", &violations));
        }

        let note_id = state.next_note_id;
        state.next_note_id += 1;
        let now = now_rfc3339();
        note.insert("id".into(), json!(note_id));
        note.insert("ticketId".into(), json!(id));
        for flag in flags.iter().chain(&["issueFlag", "internalFlag", "externalFlag"]) {
            note.entry(*flag).or_insert(json!(false));
        }
        note.insert("dateCreated".into(), json!(now));
        note.insert("createdBy".into(), json!(API_MEMBER));
        note.insert("_info".into(), json!({"lastUpdated": now, "updatedBy": API_MEMBER}));
        let note = Value::Object(note);
        if let Some(ticket) = state.tickets.get_mut(&id) {
            ticket.notes.push(note.clone());
            touch(&mut ticket.body, &now, API_MEMBER);
        }
        Ok(json_response(StatusCode::CREATED, &note))
    }
}
