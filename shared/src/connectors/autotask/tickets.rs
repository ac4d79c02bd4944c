//! Tickets: the create body (within Autotask's limits), finding a ticket by its `externalID`,
//! completing one, and reading many tickets' states in few queries.

use super::client::{AutotaskClient, Settings};
use super::picklists::EntityFields;
use super::query::{MAX_RECORDS, condition, item_id, query_body, value_text, wire_value};
use crate::error::SinkError;
use crate::ports::NewTicket;
use crate::render::cut;
use crate::ticket::{TicketRef, TicketState};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Autotask's limit on `title`.
pub const TITLE_MAX: usize = 255;
/// Autotask's limit on `description`.
pub const DESCRIPTION_MAX: usize = 8000;
/// Autotask's limit on `resolution`.
pub const RESOLUTION_MAX: usize = 32000;
/// Autotask's limit on `externalID`.
pub const EXTERNAL_ID_MAX: usize = 50;

/// An Autotask id (a ticket, company, contact or picklist value) from its text.
pub(super) fn numeric(what: &str, text: &str) -> Result<i64, SinkError> {
    text.trim().parse::<i64>().map_err(|_| SinkError::Invalid(format!("{what} {text:?} is not an Autotask id (a number)")))
}

/// The `POST Tickets` body for `ticket`: `status` and `priority` are the ticket's (or the
/// settings') values, else the picklists' defaults; the optional picklists only when configured.
///
/// # Errors
/// [`SinkError::Rejected`] when the reference is longer than [`EXTERNAL_ID_MAX`], an id is not
/// a number, or no status or priority can be chosen.
pub fn ticket_body(
    ticket: &NewTicket,
    settings: &Settings,
    fields: &EntityFields,
    contact: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Value, SinkError> {
    if ticket.reference.encode_utf16().count() > EXTERNAL_ID_MAX {
        return Err(SinkError::Rejected(format!(
            "the reference {:?} is longer than Autotask's externalID ({EXTERNAL_ID_MAX})",
            ticket.reference
        )));
    }
    let status =
        settings.new_status.as_deref().or_else(|| fields.default_of("status")).ok_or_else(|| {
            SinkError::Rejected("no status for a new ticket: none configured and the status picklist has no default".into())
        })?;
    let priority =
        ticket.priority.as_deref().or_else(|| fields.default_of("priority")).ok_or_else(|| {
            SinkError::Rejected("no priority for a new ticket: none routed and the priority picklist has no default".into())
        })?;
    let due = now + chrono::Duration::hours(i64::from(settings.due_in_hours));
    let mut body = json!({
        "companyID": numeric("company", &ticket.company)?,
        "title": ticket.content.title_within(TITLE_MAX),
        "description": ticket.content.text_within(DESCRIPTION_MAX),
        "status": numeric("status", status)?,
        "priority": numeric("priority", priority)?,
        "dueDateTime": due.to_rfc3339_opts(SecondsFormat::Secs, true),
        "externalID": ticket.reference,
    });
    if let Some(place) = &ticket.place {
        body["queueID"] = json!(numeric("queue", place)?);
    }
    for (field, value) in [
        ("source", &settings.source),
        ("issueType", &settings.issue_type),
        ("subIssueType", &settings.sub_issue_type),
        ("ticketType", &settings.ticket_type),
        ("ticketCategory", &settings.ticket_category),
    ] {
        if let Some(value) = value {
            body[field] = wire_value(value);
        }
    }
    if let Some(contact) = contact {
        body["contactID"] = json!(contact);
    }
    Ok(body)
}

fn is_active(item: &Value) -> bool {
    match item.get("isActive") {
        Some(Value::Bool(active)) => *active,
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        _ => true,
    }
}

impl AutotaskClient {
    /// `GET Tickets/{id}`: the ticket, or `None` when Autotask answers `{"item": null}` (gone).
    pub(super) async fn ticket_item(&self, id: i64) -> Result<Option<Value>, SinkError> {
        let body = self.get(&format!("Tickets/{id}"), "read ticket").await?;
        Ok(body.get("item").filter(|item| !item.is_null()).cloned())
    }

    /// `error`, or [`SinkError::Gone`] when it is a refusal and the ticket no longer exists.
    pub(super) async fn gone_or(&self, id: i64, error: SinkError) -> SinkError {
        if !matches!(error, SinkError::Rejected(_)) {
            return error;
        }
        match self.ticket_item(id).await {
            Ok(None) => SinkError::Gone(format!("Autotask ticket {id} no longer exists")),
            Ok(Some(_)) => error,
            Err(lookup) => lookup,
        }
    }

    /// The active contact of `company` whose e-mail address is `email`.
    pub(super) async fn contact_for(&self, company: i64, email: &str) -> Result<Option<i64>, SinkError> {
        let body = query_body(
            MAX_RECORDS,
            &["id", "isActive"],
            vec![condition("eq", "companyID", company), condition("eq", "emailAddress", email.trim())],
        );
        let contacts = self.query_all("Contacts", &body, "find contact").await?;
        Ok(contacts.iter().filter(|c| is_active(c)).find_map(|c| c.get("id").and_then(Value::as_i64)))
    }

    pub(super) async fn find(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        let body = query_body(1, &["id"], vec![condition("eq", "externalID", reference)]);
        let found = self.send(Method::POST, "Tickets/query", &body, "find ticket").await?;
        Ok(found.get("items").and_then(Value::as_array).and_then(|items| items.first()).and_then(item_id).map(TicketRef::new))
    }

    pub(super) async fn create(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        // Refused before any request: nothing Autotask could do would make it fit.
        if ticket.reference.encode_utf16().count() > EXTERNAL_ID_MAX {
            return Err(SinkError::Rejected(format!("the reference is longer than Autotask's externalID ({EXTERNAL_ID_MAX})")));
        }
        let company = numeric("company", &ticket.company)?;
        let fields = self.ticket_fields().await?;
        // Best effort: a refused contact query (an API user whose security level hides
        // contacts) files the ticket without a contact rather than not at all.
        let contact = match ticket.content.affected_user.as_deref().filter(|e| e.contains('@')) {
            Some(email) => match self.contact_for(company, email).await {
                Ok(contact) => contact,
                Err(SinkError::Rejected(why)) => {
                    tracing::info!(reason = %why, "Autotask contacts are not readable; filing the ticket without a contact");
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let body = ticket_body(ticket, &self.settings, &fields, contact, Utc::now())?;
        let created = self.send(Method::POST, "Tickets", &body, "create ticket").await?;
        // The ticket exists but its id is unreadable: transient, so the retry finds it by reference.
        let id = created
            .get("itemId")
            .and_then(Value::as_i64)
            .ok_or_else(|| SinkError::Unavailable("create ticket: the answer has no itemId".into()))?;
        tracing::info!(ticket_id = id, "created Autotask ticket");
        Ok(TicketRef::new(id.to_string()))
    }

    pub(super) async fn close(&self, ticket: &TicketRef, status: Option<&str>, resolution: &str) -> Result<(), SinkError> {
        let id = numeric("ticket", &ticket.id)?;
        let fields = self.ticket_fields().await?;
        let complete = fields
            .complete_status(status.or(self.closed_status.as_deref()))
            .ok_or_else(|| SinkError::Rejected("close ticket: the status picklist has no Complete status".into()))?;
        let Some(item) = self.ticket_item(id).await? else {
            return Err(SinkError::Gone(format!("Autotask ticket {id} no longer exists")));
        };
        if value_text(item.get("status")) == complete || fields.closing_statuses(None).contains(&value_text(item.get("status"))) {
            return Ok(());
        }
        let mut body = json!({"id": id, "status": numeric("status", &complete)?});
        if fields.has("resolution") && !resolution.trim().is_empty() {
            body["resolution"] = json!(cut(resolution, RESOLUTION_MAX));
        }
        match self.send(Method::PATCH, "Tickets", &body, "close ticket").await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.gone_or(id, error).await),
        }
    }

    /// The display names of resources, by id; a resource whose name cannot be read is
    /// "resource #N" (also when the API user may not read resources).
    async fn resource_names(&self, ids: &[i64]) -> Result<HashMap<i64, String>, SinkError> {
        let mut names: HashMap<i64, String> = ids.iter().map(|id| (*id, format!("resource #{id}"))).collect();
        if ids.is_empty() {
            return Ok(names);
        }
        let body = query_body(MAX_RECORDS, &["id", "firstName", "lastName", "userName"], vec![condition("in", "id", ids.to_vec())]);
        match self.query_all("Resources", &body, "read resources").await {
            Ok(resources) => {
                for resource in resources {
                    let Some(id) = resource.get("id").and_then(Value::as_i64) else { continue };
                    let part = |name: &str| resource.get(name).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
                    let full = format!("{} {}", part("firstName"), part("lastName")).trim().to_owned();
                    let name = if full.is_empty() { part("userName") } else { full };
                    if !name.is_empty() {
                        names.insert(id, name);
                    }
                }
            }
            Err(SinkError::Rejected(why)) => tracing::info!(reason = %why, "Autotask resource names are not readable; using ids"),
            Err(other) => return Err(other),
        }
        Ok(names)
    }

    pub(super) async fn states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        let ids: Vec<Option<i64>> = tickets.iter().map(|t| t.id.trim().parse::<i64>().ok()).collect();
        let wanted: Vec<i64> = ids.iter().flatten().copied().collect();
        let mut found: HashMap<i64, Value> = HashMap::new();
        if !wanted.is_empty() {
            for chunk in wanted.chunks(MAX_RECORDS) {
                let body = query_body(
                    MAX_RECORDS,
                    &["id", "status", "completedDate", "completedByResourceID"],
                    vec![condition("in", "id", chunk.to_vec())],
                );
                for item in self.query_all("Tickets", &body, "read ticket states").await? {
                    if let Some(id) = item.get("id").and_then(Value::as_i64) {
                        found.insert(id, item);
                    }
                }
            }
        }
        let fields = if found.is_empty() { None } else { Some(self.ticket_fields().await?) };
        let closing = fields.as_ref().map(|f| f.closing_statuses(self.closed_status.as_deref())).unwrap_or_default();
        let status_of = |item: &Value| value_text(item.get("status"));
        let closers: Vec<i64> = found
            .values()
            .filter(|item| closing.contains(&status_of(item)))
            .filter_map(|item| item.get("completedByResourceID").and_then(Value::as_i64))
            .collect();
        let names = self.resource_names(&closers).await?;
        Ok(tickets
            .iter()
            .zip(ids)
            .map(|(ticket, id)| {
                let state = match id.and_then(|id| found.get(&id)) {
                    None => TicketState::Gone,
                    Some(item) => {
                        let value = status_of(item);
                        let label = fields.as_ref().and_then(|f| f.label("status", &value)).map_or_else(|| value.clone(), str::to_owned);
                        if closing.contains(&value) {
                            TicketState::Closed {
                                status: label,
                                by: item.get("completedByResourceID").and_then(Value::as_i64).and_then(|r| names.get(&r).cloned()),
                                at: item
                                    .get("completedDate")
                                    .and_then(Value::as_str)
                                    .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                                    .map(|d| d.with_timezone(&Utc)),
                            }
                        } else {
                            TicketState::Open { status: label }
                        }
                    }
                };
                (ticket.clone(), state)
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::contract::sample_alert;
    use crate::render::render_ticket;
    use chrono::TimeZone;

    fn fields() -> EntityFields {
        EntityFields::parse(&json!({"fields": [
            {"name": "status", "picklistValues": [{"value": "1", "label": "New", "isDefaultValue": true, "isActive": true}]},
            {"name": "priority", "picklistValues": [{"value": "2", "label": "Medium", "isDefaultValue": true, "isActive": true}]}
        ]}))
    }

    fn new_ticket() -> NewTicket {
        let mut alert = sample_alert(Utc.with_ymd_and_hms(2026, 1, 5, 9, 41, 27).unwrap());
        alert.policy_name = "A policy with a long name ".repeat(20);
        alert.facts = (0..400).map(|i| crate::alert::Fact::new(format!("Fact{i}"), "x".repeat(60))).collect();
        NewTicket {
            content: render_ticket(&alert, None, None),
            reference: "vigil:abc".into(),
            company: "174".into(),
            place: Some("29683481".into()),
            priority: None,
        }
    }

    fn settings() -> Settings {
        Settings { due_in_hours: 24, ..Settings::default() }
    }

    #[test]
    fn the_body_keeps_within_autotasks_limits_and_uses_picklist_defaults() {
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
        let body = ticket_body(&new_ticket(), &settings(), &fields(), None, now).unwrap();
        assert!(body["title"].as_str().unwrap().chars().count() <= TITLE_MAX);
        let description = body["description"].as_str().unwrap();
        assert!(description.chars().count() <= DESCRIPTION_MAX, "{}", description.chars().count());
        assert_eq!(body["companyID"], 174);
        assert_eq!(body["status"], 1, "the status picklist's default");
        assert_eq!(body["priority"], 2, "the priority picklist's default");
        assert_eq!(body["queueID"], 29_683_481);
        assert_eq!(body["dueDateTime"], "2026-01-06T10:00:00Z");
        assert_eq!(body["externalID"], "vigil:abc");
        for absent in ["source", "issueType", "subIssueType", "ticketType", "ticketCategory", "contactID"] {
            assert!(body.get(absent).is_none(), "{absent} is only sent when configured");
        }
    }

    #[test]
    fn configured_values_and_the_contact_win_over_defaults() {
        let settings = Settings {
            new_status: Some("8".into()),
            source: Some("-2".into()),
            issue_type: Some("7".into()),
            sub_issue_type: Some("101".into()),
            ticket_type: Some("5".into()),
            ticket_category: Some("4".into()),
            due_in_hours: 4,
            ..Settings::default()
        };
        let ticket = NewTicket { priority: Some("1".into()), place: None, ..new_ticket() };
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
        let body = ticket_body(&ticket, &settings, &fields(), Some(30_682_834), now).unwrap();
        assert_eq!((body["status"].clone(), body["priority"].clone()), (json!(8), json!(1)));
        assert_eq!(body["source"], -2);
        assert_eq!((body["issueType"].clone(), body["subIssueType"].clone()), (json!(7), json!(101)));
        assert_eq!((body["ticketType"].clone(), body["ticketCategory"].clone()), (json!(5), json!(4)));
        assert_eq!(body["contactID"], 30_682_834);
        assert_eq!(body["dueDateTime"], "2026-01-05T14:00:00Z");
        assert!(body.get("queueID").is_none());
    }

    #[test]
    fn a_reference_longer_than_the_external_id_or_a_non_numeric_company_is_rejected() {
        let now = Utc::now();
        let long = NewTicket { reference: "v".repeat(51), ..new_ticket() };
        assert!(matches!(ticket_body(&long, &settings(), &fields(), None, now), Err(SinkError::Rejected(_))));
        let fits = NewTicket { reference: "v".repeat(50), ..new_ticket() };
        assert!(ticket_body(&fits, &settings(), &fields(), None, now).is_ok());
        let named = NewTicket { company: "Contoso".into(), ..new_ticket() };
        assert!(matches!(ticket_body(&named, &settings(), &fields(), None, now), Err(SinkError::Invalid(_))), "nothing is sent");
        let no_defaults = EntityFields::default();
        assert!(matches!(ticket_body(&new_ticket(), &settings(), &no_defaults, None, now), Err(SinkError::Rejected(_))));
    }
}
