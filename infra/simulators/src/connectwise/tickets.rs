//! Tickets: create (`POST`), update (`PATCH` with JSON-Patch) and the shapes the API returns.
//! References are checked in `references.rs`; every successful create or update is
//! announced to matching callbacks (`added` / `updated`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::http::{
    ApiError, FieldError, SimRequest, bad_request, invalid_object, invalid_object_errors, json_response, not_found, now_rfc3339,
    parse_json_body, violation,
};
use super::lookups::{self, ticket_board};
use super::references::{check_references, is_closed_status};
use super::{API_MEMBER, POST_ONLY_TICKET_FIELDS, READ_ONLY_TICKET_FIELDS, STATUSES, Shared, SimState, StoredTicket};
use crate::openapi_validate::ViolationCode;

impl Shared {
    pub(super) fn create_ticket(&self, state: &mut SimState, req: &SimRequest) -> Result<Response, ApiError> {
        let value = parse_json_body(req, "ticket")?;
        let Value::Object(mut ticket) = value else {
            return Err(invalid_object("ticket", &[violation("", ViolationCode::InvalidField, "the ticket must be a JSON object")]));
        };
        let mut violations = self.schemas.validate("Ticket", &Value::Object(ticket.clone()));
        // .NET's [Required] also rejects empty strings.
        if let Some(Value::String(s)) = ticket.get("summary")
            && s.trim().is_empty()
        {
            violations.push(violation("summary", ViolationCode::NullValue, "summary may not be empty"));
        }
        let company_reported = violations.iter().any(|v| v.field == "company" || v.field.starts_with("company/"));
        if let Some(Value::Object(company)) = ticket.get("company")
            && !company_reported
        {
            let has_id = company.get("id").is_some_and(Value::is_number);
            let has_identifier = company.get("identifier").and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
            if !has_id && !has_identifier {
                violations.push(violation("company", ViolationCode::NullValue, "company must reference a company by id or identifier"));
            }
        }
        let mut errors: Vec<FieldError> = violations.iter().map(FieldError::from).collect();
        let reference_errors = check_references(state, &mut ticket, &errors, true);
        errors.extend(reference_errors);
        if !errors.is_empty() {
            return Err(invalid_object_errors("ticket", &errors));
        }

        let id = state.next_ticket_id;
        state.next_ticket_id += 1;
        let now = now_rfc3339();
        ticket.insert("id".into(), json!(id));
        ticket.insert("closedFlag".into(), json!(false));
        update_closed_fields(&mut ticket, &now, API_MEMBER);
        ticket.insert(
            "_info".into(),
            json!({
                "lastUpdated": now, "updatedBy": API_MEMBER,
                "dateEntered": now, "enteredBy": API_MEMBER,
            }),
        );
        let public = public_ticket(&ticket);
        self.emit_ticket_event(state, "added", id, &ticket, API_MEMBER, true);
        state.tickets.insert(id, StoredTicket { body: ticket, notes: Vec::new() });
        Ok(json_response(StatusCode::CREATED, &public))
    }

    pub(super) fn patch_ticket(&self, state: &mut SimState, id: i64, req: &SimRequest) -> Result<Response, ApiError> {
        let Some(stored) = state.tickets.get(&id) else {
            return Err(ticket_not_found(id));
        };
        let value = parse_json_body(req, "ticket")?;
        let Value::Array(ops) = value else {
            return Err(bad_request(
                "PATCH bodies must be a JSON-Patch array, e.g. [{\"op\":\"replace\",\"path\":\"/status\",\"value\":{\"id\":99}}]",
            ));
        };
        let mut ticket = stored.body.clone();
        for (i, op) in ops.iter().enumerate() {
            self.apply_patch_op(&mut ticket, op).map_err(|e| bad_request(&format!("patch operation {i}: {e}")))?;
        }
        let violations = self.schemas.validate("Ticket", &Value::Object(ticket.clone()));
        let mut errors: Vec<FieldError> = violations.iter().map(FieldError::from).collect();
        let reference_errors = check_references(state, &mut ticket, &errors, false);
        errors.extend(reference_errors);
        if !errors.is_empty() {
            return Err(invalid_object_errors("ticket", &errors));
        }
        let now = now_rfc3339();
        update_closed_fields(&mut ticket, &now, API_MEMBER);
        touch(&mut ticket, &now, API_MEMBER);
        let public = public_ticket(&ticket);
        self.emit_ticket_event(state, "updated", id, &ticket, API_MEMBER, true);
        if let Some(stored) = state.tickets.get_mut(&id) {
            stored.body = ticket;
        }
        Ok(json_response(StatusCode::OK, &public))
    }

    /// Applies one `{op, path, value}` operation. Supported: `replace`/`add` (same thing for an
    /// object property) and `remove`, on a top-level ticket property (`/summary`, `/status`) or
    /// on one property of a reference (`status/id`, which replaces the whole reference with
    /// `{"id": value}` because CW re-resolves references).
    pub(super) fn apply_patch_op(&self, ticket: &mut Map<String, Value>, op: &Value) -> Result<(), String> {
        let obj = op.as_object().ok_or("must be an object {op, path, value}")?;
        let kind = obj.get("op").and_then(Value::as_str).ok_or("missing op")?.to_ascii_lowercase();
        let path = obj.get("path").and_then(Value::as_str).ok_or("missing path")?;
        let path = path.trim().trim_start_matches('/');
        let resolved = self.schemas.lookup_property("Ticket", path).ok_or_else(|| format!("unknown ticket field {path:?}"))?;
        let canonical = resolved.canonical_path;
        let top = canonical[0].clone();
        if READ_ONLY_TICKET_FIELDS.contains(&top.as_str()) {
            return Err(format!("{top} is read-only"));
        }
        let value = || obj.get("value").cloned().ok_or_else(|| format!("{kind} needs a value"));
        match (kind.as_str(), canonical.len()) {
            ("replace" | "add", 1) => {
                ticket.insert(top, value()?);
            }
            ("replace" | "add", 2) => {
                ticket.insert(top, json!({ canonical[1].clone(): value()? }));
            }
            ("remove", 1) => {
                ticket.remove(&top);
            }
            ("replace" | "add" | "remove", _) => {
                return Err(format!("path {path:?} is too deep"));
            }
            _ => {
                return Err(format!("unsupported op {kind:?} (use replace, add or remove)"));
            }
        }
        Ok(())
    }
}

pub(super) fn ticket_not_found(id: i64) -> ApiError {
    not_found(&format!("Ticket with id {id} was not found"))
}

impl Shared {
    /// A ticket as `GET /service/tickets/{id}` returns it live: [`public_ticket`] plus the
    /// server-made members — `status.Sort` and `status._info.status_href`, `company._info`,
    /// and the ticket's `_info` hrefs. Output only: the stored ticket stays schema-valid.
    ///
    /// References are completed the way the live API returns them: `company` gains its
    /// `identifier` and `name`, `board` and `priority` their `name`.
    pub(super) fn full_ticket(&self, state: &SimState, ticket: &Map<String, Value>) -> Value {
        let root = self.api_root_url();
        let mut t = public_ticket(ticket);
        let id = t.get("id").and_then(Value::as_i64).unwrap_or_default();
        let board = ticket_board(ticket);
        if let Some(Value::Object(status)) = t.get_mut("status") {
            let sid = status.get("id").and_then(Value::as_i64).unwrap_or_default();
            let sort = match board {
                Some(b) => b.statuses.iter().position(|s| s.id == sid).unwrap_or(b.statuses.len()),
                None => STATUSES.iter().position(|(known, _, _)| *known == sid).unwrap_or(STATUSES.len()),
            };
            let board_id = board.map_or(1, |b| b.id);
            status.insert("Sort".into(), json!(sort));
            status.insert("_info".into(), json!({"status_href": format!("{root}/service/boards/{board_id}/statuses/{sid}")}));
        }
        if let (Some(Value::Object(reference)), Some(b)) = (t.get_mut("board"), board) {
            reference.insert("name".into(), json!(b.name));
            reference.insert("_info".into(), json!({"board_href": format!("{root}/service/boards/{}", b.id)}));
        }
        if let Some(Value::Object(p)) = t.get_mut("priority")
            && let Some((pid, name)) = lookups::priority(p.get("id").and_then(Value::as_i64), None)
        {
            p.insert("name".into(), json!(name));
            p.insert("_info".into(), json!({"priority_href": format!("{root}/service/priorities/{pid}")}));
        }
        let company_id = super::references::resolve_company(state, ticket.get("company")).ok().flatten();
        if let Some(Value::Object(company)) = t.get_mut("company")
            && let Some(cid) = company.get("id").and_then(Value::as_i64).or(company_id)
        {
            if let Some(known) = state.companies.get(&cid) {
                company.insert("id".into(), json!(cid));
                company.insert("identifier".into(), known["identifier"].clone());
                company.insert("name".into(), known["name"].clone());
            }
            company.insert("_info".into(), json!({"company_href": format!("{root}/company/companies/{cid}")}));
        }
        if let Some(Value::Object(info)) = t.get_mut("_info") {
            for (name, path) in [
                ("activities_href", format!("/sales/activities?conditions=ticket/id={id}")),
                ("scheduleentries_href", format!("/schedule/entries?conditions=type/id='S' AND objectId={id}")),
                ("documents_href", format!("/system/documents?recordType=Ticket&recordId={id}")),
                ("configurations_href", format!("/service/tickets/{id}/configurations")),
                ("tasks_href", format!("/service/tickets/{id}/tasks")),
                ("notes_href", format!("/service/tickets/{id}/notes")),
                ("products_href", format!("/procurement/products?conditions=chargeToType='Ticket' AND chargeToId={id}")),
                (
                    "timeentries_href",
                    format!("/time/entries?conditions=(chargeToType='ServiceTicket' OR chargeToType='ProjectTicket') AND chargeToId={id}"),
                ),
                (
                    "expenseEntries_href",
                    format!(
                        "/expense/entries?conditions=(chargeToType='ServiceTicket' OR chargeToType='ProjectTicket') AND chargeToId={id}"
                    ),
                ),
            ] {
                info.insert(name.into(), json!(format!("{root}{path}")));
            }
        }
        t
    }
}

/// What the API returns for a stored ticket: everything but the `POST`-only fields.
pub(super) fn public_ticket(ticket: &Map<String, Value>) -> Value {
    let mut t = ticket.clone();
    for f in POST_ONLY_TICKET_FIELDS {
        t.remove(*f);
    }
    Value::Object(t)
}

pub(super) fn public_tickets(state: &SimState) -> Vec<Value> {
    state.tickets.values().map(|t| public_ticket(&t.body)).collect()
}

/// Sets `closedFlag` from the status (board-specific when the ticket has a board); a ticket
/// that becomes closed gets `closedDate` and `closedBy` (`member`), a reopened one loses them.
pub(super) fn update_closed_fields(ticket: &mut Map<String, Value>, now: &str, member: &str) {
    let closed = is_closed_status(ticket_board(ticket), ticket.get("status"));
    let was_closed = ticket.get("closedFlag").and_then(Value::as_bool) == Some(true);
    ticket.insert("closedFlag".into(), json!(closed));
    if closed && !was_closed {
        ticket.insert("closedDate".into(), json!(now));
        ticket.insert("closedBy".into(), json!(member));
    } else if !closed {
        ticket.remove("closedDate");
        ticket.remove("closedBy");
    }
}

/// Records an update by `member` in `_info`.
pub(super) fn touch(obj: &mut Map<String, Value>, now: &str, member: &str) {
    let info = obj.entry("_info").or_insert_with(|| json!({}));
    if let Value::Object(info) = info {
        info.insert("lastUpdated".into(), json!(now));
        info.insert("updatedBy".into(), json!(member));
    }
}
