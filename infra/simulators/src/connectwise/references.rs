//! A ticket's references — `company`, `board`, `status`, `priority`, `contact` — checked against
//! the lookup data like the live API does, and completed where ConnectWise completes them.
//!
//! * `company` must name an existing, not deleted company (by `id`, else `identifier`).
//! * `board` must name a board (by `id`, else `name`; a name-only reference gains its `id`).
//! * With a board, `status` must be one of *that board's* statuses (by `id`, else `name`) and
//!   gains its `id` and `name`; a ticket created without status gets the board's default status.
//!   A status of another board is refused (`400 InvalidObject`, field `status`). Without a board
//!   the simulator keeps its board-less behaviour: the global table 1 `New`, 2 `In Progress`,
//!   99 `>Closed` completes known statuses, other ids are stored as sent.
//! * `priority` must name a priority (by `id`, else `name`; a name-only reference gains its id).
//! * `contact` (by `id`) must exist and belong to the ticket's company.
//!
//! Each failure is one `errors` entry with code `InvalidObject` naming the field (the per-error
//! code is unconfirmed for ticket references).

use serde_json::{Map, Value, json};

use super::http::{FieldError, reference_error};
use super::lookups::{self, BoardDef};
use super::{STATUSES, SimState};

/// The company a reference names: `Ok(Some(id))`, `Ok(None)` when the reference is not an
/// object, or the error to report.
pub(super) fn resolve_company(state: &SimState, company: Option<&Value>) -> Result<Option<i64>, String> {
    let Some(Value::Object(company)) = company else {
        return Ok(None);
    };
    let found = match company.get("id").and_then(Value::as_i64) {
        Some(id) => state.companies.get(&id).ok_or_else(|| format!("company {id} was not found"))?,
        None => {
            let identifier = company.get("identifier").and_then(Value::as_str).unwrap_or("").trim();
            state
                .companies
                .values()
                .find(|c| c["identifier"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(identifier)))
                .ok_or_else(|| format!("company with identifier {identifier:?} was not found"))?
        }
    };
    let id = found["id"].as_i64().unwrap_or_default();
    if found["deletedFlag"].as_bool() == Some(true) {
        return Err(format!("company {id} is deleted"));
    }
    Ok(Some(id))
}

/// Whether `status` is a closed status of `board` (or, without a board, of the global table:
/// id 99 or a name `Closed` / `>Closed`).
pub(super) fn is_closed_status(board: Option<&BoardDef>, status: Option<&Value>) -> bool {
    let Some(status) = status else {
        return false;
    };
    let id = status.get("id").and_then(Value::as_i64);
    if let (Some(board), Some(id)) = (board, id)
        && let Some(known) = board.status(id)
    {
        return known.closed;
    }
    let name = status.get("name").and_then(Value::as_str).unwrap_or("").trim();
    id == Some(99) || name.trim_start_matches('>').eq_ignore_ascii_case("closed")
}

/// Completes a board-less status reference from the global table (`{id}` gains its name,
/// `{name}` its id).
pub(super) fn normalize_global_status(ticket: &mut Map<String, Value>) {
    let Some(Value::Object(status)) = ticket.get_mut("status") else {
        return;
    };
    let id = status.get("id").and_then(Value::as_i64);
    let name = status.get("name").and_then(Value::as_str).map(str::to_string);
    let known = STATUSES
        .iter()
        .find(|(sid, sname, _)| Some(*sid) == id || (id.is_none() && name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(sname))));
    if let Some((sid, sname, _)) = known {
        status.insert("id".into(), json!(sid));
        status.insert("name".into(), json!(sname));
    }
}

/// Checks (and completes) the references of `ticket`. `reported` holds the fields that already
/// failed schema validation; they are not checked again. `creating`: a missing status gets the
/// default one.
pub(super) fn check_references(
    state: &SimState,
    ticket: &mut Map<String, Value>,
    reported: &[FieldError],
    creating: bool,
) -> Vec<FieldError> {
    let skip = |field: &str| reported.iter().any(|e| e.field == field || e.field.starts_with(&format!("{field}/")));
    let mut errors = Vec::new();

    let company_id = if skip("company") {
        None
    } else {
        resolve_company(state, ticket.get("company")).unwrap_or_else(|e| {
            errors.push(reference_error("company", e));
            None
        })
    };

    let mut board_ok = true;
    let board = match ticket.get_mut("board") {
        Some(Value::Object(b)) if !skip("board") => {
            let found = match b.get("id").and_then(Value::as_i64) {
                Some(id) => lookups::board(id).ok_or_else(|| format!("board {id} was not found")),
                None => {
                    let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                    lookups::board_by_name(name).ok_or_else(|| format!("board {name:?} was not found"))
                }
            };
            match found {
                Ok(found) => {
                    b.insert("id".into(), json!(found.id));
                    Some(found)
                }
                Err(e) => {
                    board_ok = false;
                    errors.push(reference_error("board", e));
                    None
                }
            }
        }
        Some(Value::Object(_)) => {
            board_ok = false;
            None
        }
        _ => None,
    };

    match board {
        Some(board) if !skip("status") => match ticket.get_mut("status") {
            Some(Value::Object(status)) => {
                let known = match status.get("id").and_then(Value::as_i64) {
                    Some(id) => board.status(id),
                    None => status.get("name").and_then(Value::as_str).and_then(|n| board.status_by_name(n)),
                };
                match known {
                    Some(known) => {
                        status.insert("id".into(), json!(known.id));
                        status.insert("name".into(), json!(known.name));
                    }
                    None => {
                        let named = status.get("id").map_or_else(|| status.get("name").cloned().unwrap_or(Value::Null), Clone::clone);
                        errors.push(reference_error(
                            "status",
                            format!("status {named} is not a status of board {} ({})", board.id, board.name),
                        ));
                    }
                }
            }
            None | Some(Value::Null) if creating => {
                if let Some(default) = board.default_status() {
                    ticket.insert("status".into(), json!({"id": default.id, "name": default.name}));
                }
            }
            _ => {}
        },
        Some(_) => {}
        None if board_ok => {
            if creating && !ticket.get("status").is_some_and(Value::is_object) {
                ticket.insert("status".into(), json!({"id": 1, "name": "New"}));
            }
            normalize_global_status(ticket);
        }
        None => {}
    }

    if let Some(Value::Object(p)) = ticket.get_mut("priority")
        && !skip("priority")
    {
        let id = p.get("id").and_then(Value::as_i64);
        match lookups::priority(id, p.get("name").and_then(Value::as_str)) {
            Some((pid, _)) => {
                p.insert("id".into(), json!(pid));
            }
            None => {
                let named = id.map_or_else(|| p.get("name").cloned().unwrap_or(Value::Null), |i| json!(i));
                errors.push(reference_error("priority", format!("priority {named} was not found")));
            }
        }
    }

    if let Some(Value::Object(c)) = ticket.get("contact")
        && !skip("contact")
        && let Some(contact_id) = c.get("id").and_then(Value::as_i64)
    {
        match state.contacts.get(&contact_id) {
            None => errors.push(reference_error("contact", format!("contact {contact_id} was not found"))),
            Some(contact) => {
                let of = contact["company"]["id"].as_i64();
                if let Some(company_id) = company_id
                    && of != Some(company_id)
                {
                    let of = of.map_or_else(|| "no company".to_string(), |o| format!("company {o}"));
                    errors.push(reference_error(
                        "contact",
                        format!("contact {contact_id} belongs to {of}, not to the ticket's company {company_id}"),
                    ));
                }
            }
        }
    }
    errors
}
