//! Ticket notes: added under the ticket (`POST Tickets/{id}/Notes`, the only way Autotask
//! creates one), found again by the marker in their description.

use super::client::AutotaskClient;
use super::query::{MAX_RECORDS, condition, query_body, wire_value};
use super::tickets::numeric;
use crate::error::SinkError;
use crate::render::cut;
use crate::ticket::{TicketNote, TicketRef};
use reqwest::Method;
use serde_json::{Value, json};

/// Autotask's limit on a note's `title`.
pub const NOTE_TITLE_MAX: usize = 250;
/// Autotask's limit on a note's `description`.
pub const NOTE_DESCRIPTION_MAX: usize = 32000;

/// The note's description within [`NOTE_DESCRIPTION_MAX`], its marker always kept (a cut text
/// gets the marker appended again, so the note can still be found).
#[must_use]
pub fn note_description(note: &TicketNote) -> String {
    if note.text.chars().count() <= NOTE_DESCRIPTION_MAX {
        return note.text.clone();
    }
    let room = NOTE_DESCRIPTION_MAX.saturating_sub(note.marker.chars().count() + 1);
    format!("{}\n{}", cut(&note.text, room), note.marker)
}

/// The note's title: its first non-empty line, within [`NOTE_TITLE_MAX`].
#[must_use]
pub fn note_title(note: &TicketNote) -> String {
    let first = note.text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("Vigil");
    cut(first, NOTE_TITLE_MAX)
}

/// The `POST Tickets/{id}/Notes` body.
#[must_use]
pub fn note_body(ticket_id: i64, note: &TicketNote, note_type: &str, publish: &str) -> Value {
    json!({
        "ticketID": ticket_id,
        "title": note_title(note),
        "description": note_description(note),
        "noteType": wire_value(note_type),
        "publish": wire_value(publish),
    })
}

/// The longest part of `marker` without `[` or `]`: what a `contains` filter can search for
/// safely (Autotask's `contains` may become a SQL `LIKE`, where brackets are a character class;
/// `%` and `_` only widen the match, and every hit is checked for the whole marker).
fn searchable(marker: &str) -> &str {
    marker.split(['[', ']']).max_by_key(|part| part.len()).unwrap_or(marker)
}

impl AutotaskClient {
    pub(super) async fn note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        let id = numeric("ticket", &ticket.id)?;
        let fields = self.note_fields().await?;
        let note_type = self
            .settings
            .note_type
            .as_deref()
            .or_else(|| fields.default_of("noteType"))
            .ok_or_else(|| SinkError::Rejected("add note: no note type configured and the noteType picklist has no default".into()))?;
        let publish =
            self.settings.note_publish.as_deref().or_else(|| fields.default_of("publish")).ok_or_else(|| {
                SinkError::Rejected("add note: no publish value configured and the publish picklist has no default".into())
            })?;
        let body = note_body(id, note, note_type, publish);
        match self.send(Method::POST, &format!("Tickets/{id}/Notes"), &body, "add note").await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.gone_or(id, error).await),
        }
    }

    pub(super) async fn find_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        let id = numeric("ticket", &ticket.id)?;
        let body = query_body(
            MAX_RECORDS,
            &["id", "description"],
            vec![condition("eq", "ticketID", id), condition("contains", "description", searchable(marker))],
        );
        let found = self
            .query_pages("TicketNotes", &body, "find note", |notes| {
                notes.iter().any(|n| n.get("description").and_then(Value::as_str).is_some_and(|d| d.contains(marker)))
            })
            .await?;
        if found {
            return Ok(true);
        }
        match self.ticket_item(id).await? {
            None => Err(SinkError::Gone(format!("Autotask ticket {id} no longer exists"))),
            Some(_) => Ok(false),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_is_cut_but_keeps_its_marker() {
        let marker = "[vigil:a1:hits=2]".to_owned();
        let note = TicketNote { text: format!("{}\n{marker}", "é".repeat(40_000)), marker: marker.clone() };
        let description = note_description(&note);
        assert!(description.chars().count() <= NOTE_DESCRIPTION_MAX);
        assert!(description.ends_with(&marker));
        let short = TicketNote { text: format!("Matched again.\n{marker}"), marker };
        assert_eq!(note_description(&short), short.text);
    }

    #[test]
    fn the_note_body_names_the_ticket_type_and_publish_values() {
        let note = TicketNote { text: format!("\n  {}\nmore\n[m]", "t".repeat(300)), marker: "[m]".into() };
        let body = note_body(7001, &note, "3", "2");
        assert_eq!(body["ticketID"], 7001);
        assert_eq!((body["noteType"].clone(), body["publish"].clone()), (json!(3), json!(2)));
        let title = body["title"].as_str().unwrap();
        assert!(title.chars().count() <= NOTE_TITLE_MAX && title.starts_with("ttt"), "{title}");
    }

    #[test]
    fn a_marker_is_searched_without_its_brackets() {
        assert_eq!(searchable("[vigil:a1:hits=2]"), "vigil:a1:hits=2");
        assert_eq!(searchable("plain"), "plain");
    }
}
