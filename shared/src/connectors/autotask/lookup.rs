//! What the config API looks up in Autotask (queues, priorities, statuses from the ticket
//! picklists; companies and contacts by query), and the check of a destination's settings,
//! which reads and creates nothing.

use super::client::{AutotaskClient, Settings};
use super::picklists::EntityFields;
use super::query::{MAX_RECORDS, condition, item_id, query_body};
use super::tickets::numeric;
use crate::destination::Destination;
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem};
use serde_json::Value;

/// Companies (or contacts) one lookup returns at most.
pub const LOOKUP_MAX: usize = 1000;

fn picklist_items(fields: &EntityFields, field: &str, closing: Option<&[String]>) -> Vec<LookupItem> {
    fields
        .picklist(field)
        .iter()
        .filter(|v| v.is_active)
        .map(|v| LookupItem {
            id: v.value.clone(),
            name: v.label.clone(),
            closes: closing.map(|c| c.contains(&v.value)),
            email: None,
            default: v.is_default,
        })
        .collect()
}

fn text(item: &Value, field: &str) -> String {
    item.get(field).and_then(Value::as_str).unwrap_or_default().trim().to_owned()
}

/// The problems of `settings` and the routing's `places`, `priorities` and `closed_status`
/// against the picklists.
fn picklist_problems(destination: &Destination, settings: &Settings, tickets: &EntityFields, notes: &EntityFields) -> Vec<String> {
    let routing = &destination.routing;
    let mut problems = Vec::new();
    let mut need = |fields: &EntityFields, field: &str, value: Option<&String>, what: &str| {
        if let Some(value) = value
            && let Some(problem) = fields.problem(field, value)
        {
            problems.push(format!("{what}: {problem}"));
        }
    };
    need(tickets, "queueID", routing.default_place.as_ref(), "default queue");
    for (category, place) in &routing.places {
        need(tickets, "queueID", Some(place), &format!("queue of {}", category.as_str()));
    }
    for (severity, priority) in &routing.priorities {
        need(tickets, "priority", Some(priority), &format!("priority of {}", severity.as_str()));
    }
    need(tickets, "status", routing.closed_status.as_ref(), "closed status");
    need(tickets, "status", settings.new_status.as_ref(), "new status");
    need(tickets, "source", settings.source.as_ref(), "source");
    need(tickets, "issueType", settings.issue_type.as_ref(), "issue type");
    need(tickets, "subIssueType", settings.sub_issue_type.as_ref(), "sub-issue type");
    need(tickets, "ticketType", settings.ticket_type.as_ref(), "ticket type");
    need(tickets, "ticketCategory", settings.ticket_category.as_ref(), "ticket category");
    need(notes, "noteType", settings.note_type.as_ref(), "note type");
    need(notes, "publish", settings.note_publish.as_ref(), "note publish");
    if let (Some(sub), Some(issue)) = (&settings.sub_issue_type, &settings.issue_type)
        && let Some(parent) = tickets.value("subIssueType", sub).and_then(|v| v.parent.as_deref())
        && parent != issue.trim()
    {
        problems.push(format!("sub-issue type {sub} belongs to issue type {parent}, not {issue}"));
    }
    let sent = [
        ("companyID", true),
        ("title", true),
        ("description", true),
        ("status", true),
        ("priority", true),
        ("dueDateTime", true),
        ("externalID", true),
        ("contactID", false),
        ("queueID", routing.default_place.is_some() || !routing.places.is_empty()),
        ("source", settings.source.is_some()),
        ("issueType", settings.issue_type.is_some()),
        ("subIssueType", settings.sub_issue_type.is_some()),
        ("ticketType", settings.ticket_type.is_some()),
        ("ticketCategory", settings.ticket_category.is_some()),
    ];
    for field in tickets.fields.iter().filter(|f| f.is_required && !f.is_read_only && !f.name.eq_ignore_ascii_case("id")) {
        let covered = sent.iter().any(|(name, sent)| *sent && name.eq_ignore_ascii_case(&field.name));
        if !covered && tickets.default_of(&field.name).is_none() {
            problems.push(format!("Autotask requires the ticket field {}, which this destination does not set", field.name));
        }
    }
    if routing.closed_status.is_none() && tickets.complete_status(None).is_none() {
        problems.push("the status picklist has no Complete status; name the closed status in the routing".into());
    }
    if settings.new_status.is_none() && tickets.default_of("status").is_none() {
        problems.push("the status picklist has no default; name the new status".into());
    }
    if settings.note_type.is_none() && notes.default_of("noteType").is_none() {
        problems.push("the note type picklist has no default; name the note type".into());
    }
    if settings.note_publish.is_none() && notes.default_of("publish").is_none() {
        problems.push("the note publish picklist has no default; name the publish value".into());
    }
    problems
}

impl AutotaskClient {
    pub(super) async fn look_up(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        match what {
            Lookup::Places => Ok(picklist_items(&*self.ticket_fields().await?, "queueID", None)),
            Lookup::Priorities => Ok(picklist_items(&*self.ticket_fields().await?, "priority", None)),
            Lookup::Statuses { .. } => {
                let fields = self.ticket_fields().await?;
                let closing = fields.closing_statuses(self.closed_status.as_deref());
                Ok(picklist_items(&fields, "status", Some(&closing)))
            }
            Lookup::Companies { search } => {
                let mut filter = vec![condition("eq", "isActive", true)];
                if let Some(search) = search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    filter.push(condition("contains", "companyName", search));
                }
                let body = query_body(MAX_RECORDS, &["id", "companyName"], filter);
                let mut items = Vec::new();
                self.query_pages("Companies", &body, "look up companies", |page| {
                    items.extend(page.iter().filter_map(|c| {
                        Some(LookupItem { id: item_id(c)?, name: text(c, "companyName"), closes: None, email: None, default: false })
                    }));
                    items.len() >= LOOKUP_MAX
                })
                .await?;
                items.truncate(LOOKUP_MAX);
                Ok(items)
            }
            Lookup::Contacts { company, email } => {
                let mut filter = vec![condition("eq", "companyID", numeric("company", company)?)];
                if let Some(email) = email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    filter.push(condition("eq", "emailAddress", email));
                }
                let body = query_body(MAX_RECORDS, &["id", "firstName", "lastName", "emailAddress", "isActive"], filter);
                let contacts = self.query_all("Contacts", &body, "look up contacts").await?;
                Ok(contacts
                    .iter()
                    .filter(|c| {
                        !matches!(c.get("isActive"), Some(Value::Bool(false))) && c.get("isActive").and_then(Value::as_i64) != Some(0)
                    })
                    .filter_map(|c| {
                        let email = text(c, "emailAddress");
                        Some(LookupItem {
                            id: item_id(c)?,
                            name: format!("{} {}", text(c, "firstName"), text(c, "lastName")).trim().to_owned(),
                            closes: None,
                            email: (!email.is_empty()).then_some(email),
                            default: false,
                        })
                    })
                    .take(LOOKUP_MAX)
                    .collect())
            }
            Lookup::Technicians => {
                let body = query_body(
                    MAX_RECORDS,
                    &["id", "firstName", "lastName", "userName", "email", "isActive"],
                    vec![condition("eq", "isActive", true)],
                );
                let resources = self.query_all("Resources", &body, "look up resources").await?;
                Ok(resources
                    .iter()
                    .filter_map(|r| {
                        let email = text(r, "email");
                        let name = format!("{} {}", text(r, "firstName"), text(r, "lastName")).trim().to_owned();
                        Some(LookupItem {
                            id: item_id(r)?,
                            name: if name.is_empty() { text(r, "userName") } else { name },
                            closes: None,
                            email: (!email.is_empty()).then_some(email),
                            default: false,
                        })
                    })
                    .take(LOOKUP_MAX)
                    .collect())
            }
            Lookup::Sites { .. } => Err(SinkError::Invalid("Autotask company locations are not looked up by Vigil".into())),
        }
    }

    pub(super) async fn check_destination(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        let Some(settings) = destination.settings.as_autotask().cloned() else {
            return Ok(vec!["the destination is not an Autotask destination".into()]);
        };
        match self.get("ThresholdInformation", "check credentials").await {
            Ok(_) => {}
            Err(SinkError::Unauthorized(why)) => return Ok(vec![format!("Autotask refused the credentials ({why})")]),
            Err(SinkError::Rejected(why)) => return Ok(vec![format!("Autotask refused the check ({why})")]),
            Err(other) => return Err(other),
        }
        let tickets = self.ticket_fields().await?;
        let notes = self.note_fields().await?;
        Ok(picklist_problems(destination, &settings, &tickets, &notes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::destination::{DestinationSettings, Routing};
    use crate::ids::{DestinationId, MspId};
    use chrono::Utc;
    use serde_json::json;

    fn destination() -> Destination {
        Destination {
            msp_id: MspId::parse("acme").unwrap(),
            id: DestinationId::parse("autotask").unwrap(),
            name: "Autotask".into(),
            enabled: true,
            settings: DestinationSettings::autotask(None),
            routing: Routing::default(),
            requests_per_hour: None,
            credentials_set: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn ticket_fields(extra: Value) -> EntityFields {
        let mut fields = vec![
            json!({"name": "id", "isRequired": true, "isReadOnly": true}),
            json!({"name": "title", "isRequired": true}),
            json!({"name": "status", "isRequired": true, "picklistValues": [
                {"value": "1", "label": "New", "isDefaultValue": true, "isActive": true},
                {"value": "5", "label": "Complete", "isActive": true}]}),
            json!({"name": "queueID", "isRequired": true, "picklistValues": [{"value": "8", "label": "Level I", "isActive": true}]}),
        ];
        fields.push(extra);
        EntityFields::parse(&json!({ "fields": fields }))
    }

    fn note_fields() -> EntityFields {
        EntityFields::parse(&json!({"fields": [
            {"name": "noteType", "picklistValues": [{"value": "3", "label": "Task Notes", "isDefaultValue": true, "isActive": true}]},
            {"name": "publish", "picklistValues": [{"value": "1", "label": "All", "isDefaultValue": true, "isActive": true}]}
        ]}))
    }

    #[test]
    fn a_field_the_tenant_requires_and_vigil_does_not_set_is_a_problem() {
        let mut destination = destination();
        let settings = destination.settings.as_autotask().cloned().unwrap();
        let fields = ticket_fields(json!({"name": "billingCodeID", "isRequired": true}));
        let problems = picklist_problems(&destination, &settings, &fields, &note_fields());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("queueID")) && problems.iter().any(|p| p.contains("billingCodeID")), "{problems:?}");
        destination.routing.default_place = Some("8".into());
        let problems = picklist_problems(&destination, &settings, &fields, &note_fields());
        assert_eq!(problems.len(), 1, "a routed queue covers queueID: {problems:?}");
    }

    #[test]
    fn statuses_say_which_close_a_ticket() {
        let fields = ticket_fields(json!({"name": "priority"}));
        let closing = fields.closing_statuses(Some("1"));
        let items = picklist_items(&fields, "status", Some(&closing));
        assert!(items.iter().all(|i| i.closes == Some(true)), "the override and Complete both close");
        let items = picklist_items(&fields, "status", Some(&fields.closing_statuses(None)));
        assert_eq!(items.iter().filter(|i| i.closes == Some(true)).map(|i| i.name.as_str()).collect::<Vec<_>>(), ["Complete"]);
        assert!(items.iter().any(|i| i.default && i.name == "New"));
    }
}
