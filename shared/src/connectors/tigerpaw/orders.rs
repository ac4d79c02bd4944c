//! Service orders: the create body (within the limits Vigil assumes), finding an order by the
//! alert reference in its `Reference`, notes found again by their marker, completing an order
//! with a resolution, and reading orders' states (one `GET` each).

use super::client::TigerpawClient;
use crate::error::SinkError;
use crate::ports::NewTicket;
use crate::render::cut;
use crate::ticket::{TicketNote, TicketRef, TicketState};
use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

/// `BriefDescription` is cut to this (**unconfirmed**: Tigerpaw publishes no lengths).
pub const BRIEF_DESCRIPTION_MAX: usize = 100;
/// `WorkRequested`, `WorkPerformed` and a note's text are cut to this (**unconfirmed**).
pub const TEXT_MAX: usize = 8000;
/// The longest reference Vigil stores in `Reference` (**unconfirmed**; Vigil's references are
/// at most 50 characters).
pub const REFERENCE_MAX: usize = 50;

/// A Tigerpaw number (an order, account, board or rep) from its text.
pub(super) fn number(what: &str, text: &str) -> Result<i64, SinkError> {
    text.trim().parse::<i64>().map_err(|_| SinkError::Invalid(format!("{what} {text:?} is not a Tigerpaw number")))
}

/// `yyyy-MM-ddTHH:mm:ss`, the form Tigerpaw's examples use (no zone; Vigil sends UTC).
fn tigerpaw_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A Tigerpaw date: RFC 3339, or without a zone (read as UTC, **unconfirmed**).
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|d| d.and_utc()))
}

/// The `POST /api/ServiceOrders` body.
///
/// # Errors
/// [`SinkError::Rejected`] for a reference longer than [`REFERENCE_MAX`]; [`SinkError::Invalid`]
/// for an account or board that is not a number. Nothing is sent then.
pub fn order_body(ticket: &NewTicket, settings: &crate::destination::TigerpawSettings, contact: Option<i64>) -> Result<Value, SinkError> {
    if ticket.reference.chars().count() > REFERENCE_MAX {
        return Err(SinkError::Rejected(format!(
            "the reference {:?} is longer than Vigil stores in Reference ({REFERENCE_MAX})",
            ticket.reference
        )));
    }
    let mut body = json!({
        "AccountNumber": number("account", &ticket.company)?,
        "BriefDescription": ticket.content.title_within(BRIEF_DESCRIPTION_MAX),
        "WorkRequested": ticket.content.text_within(TEXT_MAX),
        "Reference": ticket.reference,
    });
    if let Some(place) = &ticket.place {
        body["DispatchBoardNumber"] = json!(number("dispatch board", place)?);
    }
    for (member, value) in
        [("Priority", &ticket.priority), ("Status", &settings.new_status), ("ServiceOrderType", &settings.service_order_type)]
    {
        if let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            body[member] = json!(value);
        }
    }
    if let Some(contact) = contact {
        body["ContactNumber"] = json!(contact);
    }
    Ok(body)
}

/// The note's text within [`TEXT_MAX`], its marker always kept.
#[must_use]
pub fn note_text(note: &TicketNote) -> String {
    if note.text.chars().count() <= TEXT_MAX {
        return note.text.clone();
    }
    let room = TEXT_MAX.saturating_sub(note.marker.chars().count() + 1);
    format!("{}\n{}", cut(&note.text, room), note.marker)
}

fn order_of(summary: &Value) -> &Value {
    summary.get("ServiceOrder").unwrap_or(&Value::Null)
}

fn text_of<'a>(value: &'a Value, member: &str) -> Option<&'a str> {
    value.get(member).and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty())
}

impl TigerpawClient {
    /// `GET api/serviceorders/{n}`: the summary, or `None` when Tigerpaw knows no such order.
    pub(super) async fn order(&self, number: i64) -> Result<Option<Value>, SinkError> {
        self.get_optional(&format!("api/serviceorders/{number}"), "read service order").await
    }

    /// `error`, or [`SinkError::Gone`] when it is a refusal and the order no longer exists.
    async fn gone_or(&self, number: i64, error: SinkError) -> SinkError {
        if !matches!(error, SinkError::Rejected(_)) {
            return error;
        }
        match self.order(number).await {
            Ok(None) => SinkError::Gone(format!("Tigerpaw service order {number} no longer exists")),
            Ok(Some(_)) => error,
            Err(lookup) => lookup,
        }
    }

    pub(super) async fn find(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        let body = json!({
            "Criteria": [{"SearchType": "Reference", "MatchType": "Equal", "Criteria": reference}],
            "PageSize": 10,
            "StartRow": 1,
        });
        let found = self.call(Method::POST, "api/serviceorders/search", Some(&body), "find ticket").await?;
        let orders = found.get("ServiceOrders").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        Ok(orders
            .iter()
            .filter(|s| text_of(order_of(s), "Reference") == Some(reference))
            .find_map(|s| s.get("ServiceOrderNumber").and_then(Value::as_i64))
            .map(|n| TicketRef::new(n.to_string())))
    }

    pub(super) async fn create(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        order_body(ticket, &self.settings, None)?;
        let account = number("account", &ticket.company)?;
        // Best effort: a refused contact read files the order without a contact.
        let contact = match ticket.content.affected_user.as_deref().filter(|e| e.contains('@')) {
            Some(email) => match self.contacts(account).await {
                Ok(contacts) => contacts
                    .iter()
                    .find(|c| c.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email.trim())))
                    .and_then(|c| c.id.parse::<i64>().ok()),
                Err(SinkError::Rejected(why)) => {
                    tracing::info!(reason = %why, "Tigerpaw contacts are not readable; filing the order without a contact");
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let body = order_body(ticket, &self.settings, contact)?;
        let created = self.call(Method::POST, "api/ServiceOrders", Some(&body), "create ticket").await?;
        // The order exists but its number is unreadable: transient, so the retry finds it.
        let number = created
            .get("ServiceOrderSummary")
            .and_then(|s| s.get("ServiceOrderNumber"))
            .and_then(Value::as_i64)
            .ok_or_else(|| SinkError::Unavailable("create ticket: the answer has no ServiceOrderNumber".into()))?;
        tracing::info!(service_order = number, "created Tigerpaw service order");
        Ok(TicketRef::new(number.to_string()))
    }

    pub(super) async fn note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        let order = number("service order", &ticket.id)?;
        let mut body = json!({"Note": note_text(note)});
        if let Some(topic) = self.topic().await? {
            body["Topic"] = json!(topic);
        }
        if let Some(rep) = &self.settings.rep_number {
            body["RepNumber"] = json!(number("rep", rep)?);
        }
        match self.call(Method::POST, &format!("api/serviceorders/{order}/notes"), Some(&body), "add note").await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.gone_or(order, error).await),
        }
    }

    pub(super) async fn find_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        let order = number("service order", &ticket.id)?;
        let Some(notes) = self.get_optional(&format!("api/serviceorders/{order}/notes"), "find note").await? else {
            return Err(SinkError::Gone(format!("Tigerpaw service order {order} no longer exists")));
        };
        let list = notes.as_array().or_else(|| notes.get("Notes").and_then(Value::as_array)).map(Vec::as_slice).unwrap_or_default();
        Ok(list.iter().any(|n| n.get("Note").and_then(Value::as_str).is_some_and(|t| t.contains(marker))))
    }

    pub(super) async fn close(&self, ticket: &TicketRef, status: Option<&str>, resolution: &str) -> Result<(), SinkError> {
        let order = number("service order", &ticket.id)?;
        let statuses = self.statuses().await?;
        let target = statuses.closing(status.or(self.closed_status.as_deref()));
        let Some(summary) = self.order(order).await? else {
            return Err(SinkError::Gone(format!("Tigerpaw service order {order} no longer exists")));
        };
        let current = text_of(order_of(&summary), "Status").unwrap_or_default();
        if current.eq_ignore_ascii_case(&target) || statuses.closes(current, self.closed_status.as_deref()) {
            return Ok(());
        }
        let mut body = json!({"Status": target, "DateTimeClosed": {"DateTime": tigerpaw_time(Utc::now())}});
        if !resolution.trim().is_empty() {
            // Keeps what a technician wrote; Vigil's resolution follows it.
            let performed = match text_of(order_of(&summary), "WorkPerformed") {
                Some(before) => format!("{before}\n\n{}", resolution.trim()),
                None => resolution.trim().to_owned(),
            };
            body["WorkPerformed"] = json!(cut(&performed, TEXT_MAX));
        }
        match self.call(Method::PUT, &format!("api/serviceorders/{order}"), Some(&body), "close ticket").await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.gone_or(order, error).await),
        }
    }

    pub(super) async fn states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        let mut states = Vec::with_capacity(tickets.len());
        let mut statuses = None;
        for ticket in tickets {
            let summary = match ticket.id.trim().parse::<i64>() {
                Ok(order) => self.order(order).await?,
                Err(_) => None,
            };
            let state = match summary {
                None => TicketState::Gone,
                Some(summary) => {
                    let statuses = match &statuses {
                        Some(s) => std::sync::Arc::clone(s),
                        None => statuses.insert(self.statuses().await?).clone(),
                    };
                    let order = order_of(&summary);
                    let status = text_of(order, "Status").unwrap_or_default().to_owned();
                    if statuses.closes(&status, self.closed_status.as_deref()) {
                        TicketState::Closed {
                            status,
                            by: text_of(&summary, "PrimaryTechnicianName").map(str::to_owned),
                            at: text_of(order, "DateTimeClosed").and_then(parse_time),
                        }
                    } else {
                        TicketState::Open { status }
                    }
                }
            };
            states.push((ticket.clone(), state));
        }
        Ok(states)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::contract::sample_alert;
    use crate::destination::{TigerpawAuth, TigerpawSettings};
    use crate::render::render_ticket;
    use chrono::TimeZone;

    fn settings() -> TigerpawSettings {
        TigerpawSettings {
            url: "https://tigerpaw.msp.example".into(),
            auth: TigerpawAuth::Tsi,
            rep_number: None,
            service_order_type: Some("Security".into()),
            new_status: None,
            note_topic: None,
        }
    }

    fn new_ticket() -> NewTicket {
        let mut alert = sample_alert(Utc.with_ymd_and_hms(2026, 1, 5, 9, 41, 27).unwrap());
        alert.policy_name = "A policy with a long name ".repeat(20);
        alert.facts = (0..400).map(|i| crate::alert::Fact::new(format!("Fact{i}"), "x".repeat(60))).collect();
        NewTicket {
            content: render_ticket(&alert, None, None),
            reference: "vigil:abc".into(),
            company: "1053145".into(),
            place: Some("3".into()),
            priority: Some("High".into()),
        }
    }

    #[test]
    fn the_body_is_pascal_case_within_limits_and_carries_the_reference() {
        let body = order_body(&new_ticket(), &settings(), Some(501)).unwrap();
        assert_eq!(body["AccountNumber"], 1_053_145);
        assert!(body["BriefDescription"].as_str().unwrap().chars().count() <= BRIEF_DESCRIPTION_MAX);
        assert!(body["WorkRequested"].as_str().unwrap().chars().count() <= TEXT_MAX);
        assert_eq!((body["Reference"].clone(), body["DispatchBoardNumber"].clone()), (json!("vigil:abc"), json!(3)));
        assert_eq!((body["Priority"].clone(), body["ServiceOrderType"].clone()), (json!("High"), json!("Security")));
        assert_eq!(body["ContactNumber"], 501);
        assert!(body.get("Status").is_none(), "the server's default status when none is configured");
    }

    #[test]
    fn a_long_reference_or_a_named_account_is_refused_before_sending() {
        let long = NewTicket { reference: "v".repeat(51), ..new_ticket() };
        assert!(matches!(order_body(&long, &settings(), None), Err(SinkError::Rejected(_))));
        let named = NewTicket { company: "Contoso".into(), ..new_ticket() };
        assert!(matches!(order_body(&named, &settings(), None), Err(SinkError::Invalid(_))));
    }

    #[test]
    fn a_long_note_keeps_its_marker_and_dates_read_with_or_without_a_zone() {
        let note = TicketNote { text: format!("{}\n[m:1]", "é".repeat(20_000)), marker: "[m:1]".into() };
        let text = note_text(&note);
        assert!(text.chars().count() <= TEXT_MAX && text.ends_with("[m:1]"));
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
        assert_eq!(parse_time(&tigerpaw_time(at)), Some(at));
        assert_eq!(parse_time("2026-01-05T10:00:00.000Z"), Some(at));
        assert_eq!(parse_time("yesterday"), None);
    }
}
