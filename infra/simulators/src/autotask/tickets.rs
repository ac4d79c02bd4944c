//! Tickets: `POST /V1.0/Tickets` (create), `PATCH /V1.0/Tickets` (partial update by `id`), the
//! ticket-level checks the field validation cannot make alone (required fields, the company
//! exists, the contact belongs to it, the sub-issue type belongs to the issue type, resources
//! exist), and the technician actions tests drive through the handle or `/_sim`: complete,
//! delete, merge.
//!
//! System fields the simulator maintains: `id`, `ticketNumber` (`T{yyyymmdd}.{nnnn}`),
//! `createDate`, `creatorResourceID`/`creatorType` (the API user, or the
//! `ImpersonationResourceId` header's resource), `lastActivityDate` (every change, including
//! new notes), `lastTrackedModificationDateTime`, and `completedDate`/`completedByResourceID`
//! (set when the status becomes Complete (5), cleared when a completed ticket is reopened).
//! Absent `ticketType` and `ticketCategory` take their picklists' defaults. Assigning a resource
//! needs both `assignedResourceID` (an existing resource) and `assignedResourceRoleID` (any role
//! id: the simulator keeps no role table), as the real API insists.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::directory::{API_RESOURCE_ID, TECHNICIAN_RESOURCE_ID};
use super::model::{Entity, EntitySpec, format_datetime, validate_members};
use super::picklists::{self, NOTE_TYPE_TASK_NOTES, PUBLISH_INTERNAL, STATUS_COMPLETE};
use super::server::{ApiError, FIRST_TICKET_ID, Shared, SimRequest, SimState, ok};

fn int(map: &Map<String, Value>, field: &str) -> Option<i64> {
    map.get(field).and_then(Value::as_i64)
}

/// Checks a whole ticket (new, or existing with changes applied) against the rules that span
/// fields or refer to other entities. Every problem is reported.
fn check_ticket(spec: &EntitySpec, state: &SimState, ticket: &Map<String, Value>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for field in spec.fields.iter().filter(|f| f.required && !f.read_only) {
        if ticket.get(&field.name).is_none_or(Value::is_null) {
            errors.push(format!("Missing required field: {}.", field.name));
        }
    }
    if let Some(company) = int(ticket, "companyID")
        && !state.directory.company_exists(company)
    {
        errors.push(format!("Value does not reference an existing entity for companyID . Company {company} does not exist."));
    }
    if let Some(contact) = int(ticket, "contactID") {
        match state.directory.contact_company(contact) {
            None => errors.push(format!("Value does not reference an existing entity for contactID . Contact {contact} does not exist.")),
            Some(owner) if Some(owner) != int(ticket, "companyID") => errors.push(format!(
                "contactID: contact {contact} does not belong to company {}.",
                ticket.get("companyID").unwrap_or(&Value::Null)
            )),
            Some(_) => {}
        }
    }
    if let Some(sub) = int(ticket, "subIssueType") {
        let parent = picklists::SUB_ISSUE_TYPE.get(sub).and_then(|v| v.parent);
        let issue = int(ticket, "issueType");
        if issue.is_none() || parent != issue {
            errors.push(format!(
                "subIssueType: {sub} is not a sub-issue type of issueType {}.",
                issue.map_or("(none)".to_string(), |i| i.to_string())
            ));
        }
    }
    if let Some(r) = int(ticket, "assignedResourceID")
        && !state.directory.resources.contains_key(&r)
    {
        errors.push(format!("Value does not reference an existing entity for assignedResourceID . Resource {r} does not exist."));
    }
    // The real API's rule (and wording) for assigning a resource.
    if int(ticket, "assignedResourceID").is_some() != int(ticket, "assignedResourceRoleID").is_some() {
        errors.push("When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID.".to_string());
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

/// The resource a write is attributed to: the `ImpersonationResourceId` header's, else the API
/// user's.
fn acting_resource(req: &SimRequest, state: &SimState) -> Result<i64, ApiError> {
    match req.header("impersonationresourceid") {
        None => Ok(API_RESOURCE_ID),
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|id| state.directory.resources.contains_key(id))
            .ok_or_else(|| ApiError::invalid(format!("ImpersonationResourceId: resource '{raw}' does not exist."))),
    }
}

/// Sets or clears the completion fields after a status change.
fn apply_status_change(ticket: &mut Map<String, Value>, old_status: Option<i64>, by: i64, now: &str) {
    let new_status = int(ticket, "status");
    if new_status == Some(STATUS_COMPLETE) && old_status != Some(STATUS_COMPLETE) {
        ticket.insert("completedDate".into(), json!(now));
        ticket.insert("completedByResourceID".into(), json!(by));
    } else if new_status != Some(STATUS_COMPLETE) && old_status == Some(STATUS_COMPLETE) {
        ticket.insert("completedDate".into(), Value::Null);
        ticket.insert("completedByResourceID".into(), Value::Null);
    }
}

/// Records activity on a ticket.
pub(crate) fn touch(ticket: &mut Map<String, Value>, by: i64, now: &str) {
    ticket.insert("lastActivityDate".into(), json!(now));
    ticket.insert("lastActivityResourceID".into(), json!(by));
    ticket.insert("lastActivityPersonType".into(), json!(1));
    ticket.insert("lastTrackedModificationDateTime".into(), json!(now));
}

fn default_of(list: &picklists::Picklist) -> Option<i64> {
    list.values.iter().find(|v| v.is_default).map(|v| v.value)
}

impl Shared {
    /// `POST /V1.0/Tickets` → `{"itemId": N}`.
    pub(crate) fn create_ticket(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let body = req.json()?;
        let spec = self.specs.of(Entity::Tickets);
        let mut ticket = validate_members(spec, &body).map_err(ApiError::validation)?;
        let now_dt = self.kit.clock.now();
        let now = format_datetime(now_dt);
        let mut state = self.lock();
        let by = acting_resource(req, &state)?;
        check_ticket(spec, &state, &ticket)?;
        for list in [&picklists::TICKET_TYPE, &picklists::TICKET_CATEGORY] {
            if ticket.get(list.field).is_none_or(Value::is_null)
                && let Some(d) = default_of(list)
            {
                ticket.insert(list.field.into(), json!(d));
            }
        }
        let id = state.next_ticket_id;
        state.next_ticket_id += 1;
        ticket.insert("id".into(), json!(id));
        ticket.insert("ticketNumber".into(), json!(format!("T{}.{:04}", now_dt.format("%Y%m%d"), id - FIRST_TICKET_ID + 1)));
        ticket.insert("createDate".into(), json!(now));
        ticket.insert("creatorResourceID".into(), json!(by));
        ticket.insert("creatorType".into(), json!(1));
        if by != API_RESOURCE_ID {
            ticket.insert("impersonatorCreatorResourceID".into(), json!(API_RESOURCE_ID));
        }
        touch(&mut ticket, by, &now);
        apply_status_change(&mut ticket, None, by, &now);
        state.tickets.insert(id, ticket);
        ok(&json!({"itemId": id}))
    }

    /// `PATCH /V1.0/Tickets` with `{"id": N, ...}`: only the sent fields change.
    pub(crate) fn update_ticket(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let body = req.json()?;
        let id = body
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")))
            .map(|(_, v)| v)
            .ok_or_else(|| ApiError::invalid("id: the id of the ticket to update is required."))?
            .as_i64()
            .ok_or_else(|| ApiError::invalid("id: expected an integer."))?;
        let spec = self.specs.of(Entity::Tickets);
        let changes = validate_members(spec, &body).map_err(ApiError::validation)?;
        let now = format_datetime(self.kit.clock.now());
        let mut state = self.lock();
        let by = acting_resource(req, &state)?;
        let existing = state.tickets.get(&id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("Ticket {id} was not found.")))?;
        let old_status = int(existing, "status");
        let mut updated = existing.clone();
        updated.extend(changes);
        check_ticket(spec, &state, &updated)?;
        apply_status_change(&mut updated, old_status, by, &now);
        touch(&mut updated, by, &now);
        state.tickets.insert(id, updated);
        ok(&json!({"itemId": id}))
    }

    /// A technician completes a ticket.
    pub(crate) fn complete_ticket(&self, id: i64, by: Option<i64>) -> Result<(), String> {
        let now = format_datetime(self.kit.clock.now());
        let mut state = self.lock();
        let by = by.unwrap_or(TECHNICIAN_RESOURCE_ID);
        if !state.directory.resources.contains_key(&by) {
            return Err(format!("resource {by} does not exist"));
        }
        let ticket = state.tickets.get_mut(&id).ok_or_else(|| format!("ticket {id} does not exist"))?;
        complete(ticket, by, &now);
        Ok(())
    }

    /// A technician deletes a ticket and its notes.
    pub(crate) fn delete_ticket(&self, id: i64) -> Result<(), String> {
        let mut state = self.lock();
        state.tickets.remove(&id).ok_or_else(|| format!("ticket {id} does not exist"))?;
        state.notes.retain(|_, n| n.get("ticketID").and_then(Value::as_i64) != Some(id));
        state.merged_into.remove(&id);
        Ok(())
    }

    /// A technician merges ticket `id` into `into`.
    pub(crate) fn merge_ticket(&self, id: i64, into: i64) -> Result<(), String> {
        if id == into {
            return Err("a ticket cannot be merged into itself".to_string());
        }
        let now = format_datetime(self.kit.clock.now());
        let mut state = self.lock();
        let number = |state: &SimState, t: i64| -> Result<String, String> {
            let ticket = state.tickets.get(&t).ok_or_else(|| format!("ticket {t} does not exist"))?;
            Ok(ticket.get("ticketNumber").and_then(Value::as_str).unwrap_or_default().to_string())
        };
        let source_number = number(&state, id)?;
        let survivor_number = number(&state, into)?;
        if let Some(previous) = state.merged_into.get(&id) {
            return Err(format!("ticket {id} was already merged into ticket {previous}"));
        }
        let by = TECHNICIAN_RESOURCE_ID;
        let text = |title: &str, description: String| {
            let mut note = Map::new();
            note.insert("title".into(), json!(title));
            note.insert("description".into(), json!(description));
            note.insert("noteType".into(), json!(NOTE_TYPE_TASK_NOTES));
            note.insert("publish".into(), json!(PUBLISH_INTERNAL));
            note
        };
        let source_note = text("Ticket merged", format!("This ticket was merged into ticket {survivor_number} (id {into})."));
        let survivor_note = text("Ticket merged", format!("Ticket {source_number} (id {id}) was merged into this ticket."));
        self.insert_note(&mut state, id, source_note, by, &now);
        self.insert_note(&mut state, into, survivor_note, by, &now);
        if let Some(ticket) = state.tickets.get_mut(&id) {
            complete(ticket, by, &now);
        }
        state.merged_into.insert(id, into);
        Ok(())
    }
}

fn complete(ticket: &mut Map<String, Value>, by: i64, now: &str) {
    let old = int(ticket, "status");
    ticket.insert("status".into(), json!(STATUS_COMPLETE));
    apply_status_change(ticket, old, by, now);
    touch(ticket, by, now);
}
