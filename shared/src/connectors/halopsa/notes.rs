//! Actions (Halo's notes): added with `POST /api/Actions` (an array of one private action with
//! the destination's outcome), found again by the marker in their text through
//! `GET /api/Actions?ticket_id=`.

use super::client::{HaloPsaClient, numeric};
use super::tickets::{escape_html, to_html};
use crate::error::SinkError;
use crate::render::cut;
use crate::ticket::{TicketNote, TicketRef};
use reqwest::Method;
use serde_json::{Value, json};

/// The outcome of Vigil's actions when the settings name none: 7, the built-in private note on
/// default installs (`psa-apis.md` §3.4).
pub const DEFAULT_NOTE_OUTCOME: &str = "7";
/// The longest note text Vigil sends (before HTML escaping; a bound of our own).
pub const NOTE_MAX: usize = 20_000;

/// The note's text within [`NOTE_MAX`], its marker always kept (a cut text gets the marker
/// appended again, so the note can still be found).
#[must_use]
pub fn note_text(note: &TicketNote) -> String {
    if note.text.chars().count() <= NOTE_MAX {
        return note.text.clone();
    }
    let room = NOTE_MAX.saturating_sub(note.marker.chars().count() + 1);
    format!("{}\n{}", cut(&note.text, room), note.marker)
}

/// The one action of the `POST /api/Actions` body.
///
/// # Errors
/// [`SinkError::Invalid`] when the outcome is not a number.
pub fn action_body(ticket_id: i64, note: &TicketNote, outcome: &str) -> Result<Value, SinkError> {
    Ok(json!({
        "ticket_id": ticket_id,
        "outcome_id": numeric("outcome", outcome)?,
        "hiddenfromuser": true,
        "note_html": to_html(&note_text(note)),
    }))
}

/// Whether an action (as `GET /api/Actions` lists it) carries `marker`, in its plain `note` or
/// its `note_html` (raw or escaped).
#[must_use]
pub fn carries(action: &Value, marker: &str) -> bool {
    let escaped = escape_html(marker);
    ["note", "note_html"]
        .iter()
        .filter_map(|field| action.get(*field).and_then(Value::as_str))
        .any(|t| t.contains(marker) || t.contains(&escaped))
}

impl HaloPsaClient {
    pub(super) async fn note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        let id = numeric("ticket", &ticket.id)?;
        let outcome = self.settings.note_outcome.as_deref().unwrap_or(DEFAULT_NOTE_OUTCOME);
        let body = json!([action_body(id, note, outcome)?]);
        match self.call(Method::POST, "Actions", &[], Some(&body), "add note").await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.gone_or(id, error).await),
        }
    }

    pub(super) async fn find_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        let id = numeric("ticket", &ticket.id)?;
        let query = [("ticket_id", id.to_string()), ("includehtmlnote", "true".to_owned())];
        let mut found = false;
        self.list("Actions", &query, "actions", "find note", |page| {
            found = page.iter().any(|a| carries(a, marker));
            found
        })
        .await?;
        if found {
            return Ok(true);
        }
        match self.ticket_item(id).await? {
            None => Err(SinkError::Gone(format!("HaloPSA ticket {id} no longer exists"))),
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
        let text = note_text(&note);
        assert!(text.chars().count() <= NOTE_MAX && text.ends_with(&marker));
    }

    #[test]
    fn the_action_is_private_with_the_outcome_and_escaped_html() {
        let note = TicketNote { text: "a <b>\n[m]".into(), marker: "[m]".into() };
        let body = action_body(42, &note, "7").unwrap();
        assert_eq!(
            (body["ticket_id"].clone(), body["outcome_id"].clone(), body["hiddenfromuser"].clone()),
            (json!(42), json!(7), json!(true))
        );
        assert_eq!(body["note_html"], "a &lt;b&gt;<br>\n[m]");
        assert!(matches!(action_body(42, &note, "private"), Err(SinkError::Invalid(_))));
    }

    #[test]
    fn a_marker_is_found_in_the_plain_or_the_html_note() {
        assert!(carries(&json!({"note": "x [vigil:a] y"}), "[vigil:a]"));
        assert!(carries(&json!({"note_html": "x &lt;vigil&gt;"}), "<vigil>"));
        assert!(!carries(&json!({"note": "x"}), "[vigil:a]"));
    }
}
