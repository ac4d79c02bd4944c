//! Tickets (`Faults`) and actions of the HaloPSA simulator: `POST /api/Tickets` (array: create,
//! or update an element with `id`), `GET /api/Tickets[/{id}]`, `DELETE /api/Tickets/{id}`,
//! `POST /api/Actions` (array; `outcome_id` required), `GET /api/Actions?ticket_id=`; and the
//! technician's close and delete behind the control routes.
//!
//! Every element is first validated against its schema (unknown members refused, types
//! checked), then its references are checked against the [`super::directory`]; nothing is
//! stored unless every element passes. Setting the closed status ([`CLOSED_STATUS_ID`]) marks
//! `hasbeenclosed`, `dateclosed` and `closure_agent_id` and logs an action with `new_status`
//! and `who`, as Halo's ticket history shows a close.

use axum::response::Response;
use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use super::directory::{API_AGENT_ID, CLOSED_STATUS_ID, Directory, contains_ci};
use super::server::{ApiError, Shared, SimRequest, SimState, action_view, ok, paged};

/// Parses a POST body that must be a non-empty JSON array of objects.
pub(crate) fn elements(req: &SimRequest, what: &str) -> Result<Vec<Map<String, Value>>, ApiError> {
    let body: Value =
        serde_json::from_slice(&req.body).map_err(|e| ApiError::field("body", format!("The request body is not valid JSON: {e}")))?;
    let Value::Array(items) = body else {
        return Err(ApiError::field("body", format!("The request body must be an array of {what}.")));
    };
    if items.is_empty() {
        return Err(ApiError::field("body", format!("The request body must contain at least one of {what}.")));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(o) => Ok(o),
            _ => Err(ApiError::field(&format!("[{i}]"), "Each element must be an object.")),
        })
        .collect()
}

/// A check that a referenced id exists in the directory.
type Exists = fn(&Directory, i64) -> bool;

fn int(item: &Map<String, Value>, name: &str) -> Option<i64> {
    item.get(name).and_then(Value::as_i64)
}

/// One answer per element: the object for one, the array for several.
fn answer(mut items: Vec<Value>) -> Result<Response, ApiError> {
    if items.len() == 1 { ok(&items.swap_remove(0)) } else { ok(&Value::Array(items)) }
}

impl Shared {
    /// Schema violations of every element, keyed `[i].field`.
    fn validate(&self, schema: &str, items: &[Map<String, Value>]) -> Result<(), ApiError> {
        let mut errors = Map::new();
        for (i, item) in items.iter().enumerate() {
            for violation in self.schemas.validate(schema, &Value::Object(item.clone())) {
                errors.insert(format!("[{i}].{}", violation.field.replace('/', ".")), json!(violation.message));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ApiError::fields(errors)) }
    }

    fn now_text(&self) -> String {
        self.kit.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Applies a status change to ticket `id` (closing or reopening it) and logs the action.
    fn set_status(&self, state: &mut SimState, id: i64, status: i64, agent: i64, note: &str) {
        let now = self.now_text();
        let name = state.directory.status_name(status).unwrap_or_default();
        let who = state.directory.agent_name(agent);
        let Some(ticket) = state.tickets.get_mut(&id) else { return };
        let was_closed = ticket.get("hasbeenclosed").and_then(Value::as_bool) == Some(true);
        ticket.insert("status_id".into(), json!(status));
        ticket.insert("status_name".into(), json!(name));
        if status == CLOSED_STATUS_ID && !was_closed {
            ticket.insert("hasbeenclosed".into(), json!(true));
            ticket.insert("dateclosed".into(), json!(now));
            ticket.insert("closure_agent_id".into(), json!(agent));
        } else if status != CLOSED_STATUS_ID {
            ticket.insert("hasbeenclosed".into(), json!(false));
        }
        let action_id = state.next_action_id;
        state.next_action_id += 1;
        let action = json!({
            "id": action_id, "ticket_id": id, "outcome": "Status Change", "note": note, "new_status": status,
            "new_status_name": name, "who": who, "who_agentid": agent, "datetime": now, "hiddenfromuser": true
        });
        if let Value::Object(action) = action {
            state.actions.insert(action_id, action);
        }
    }

    /// The reference problems of one ticket element (after schema validation).
    fn ticket_problems(state: &SimState, i: usize, item: &Map<String, Value>, errors: &mut Map<String, Value>) {
        let mut problem = |field: &str, message: String| {
            errors.insert(format!("[{i}].{field}"), json!(message));
        };
        let existing = int(item, "id").filter(|id| *id > 0);
        if let Some(id) = existing
            && !state.tickets.contains_key(&id)
        {
            problem("id", format!("Ticket {id} does not exist."));
            return;
        }
        let client = int(item, "client_id").or_else(|| existing.and_then(|id| int(&state.tickets[&id], "client_id")));
        if existing.is_none() {
            if item.get("summary").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
                problem("summary", "Please enter a summary.".into());
            }
            match client {
                None => problem("client_id", "Please select a customer.".into()),
                Some(c) if !state.directory.client_exists(c) => problem("client_id", format!("Client {c} does not exist.")),
                Some(_) => {}
            }
        }
        let directory = &state.directory;
        if let Some(team) = item.get("team").and_then(Value::as_str).filter(|t| !t.is_empty())
            && directory.team(team).is_none()
        {
            problem("team", format!("Team '{team}' does not exist."));
        }
        let checks: [(&str, Exists); 3] = [
            ("priority_id", Directory::priority_exists),
            ("tickettype_id", Directory::ticket_type_exists),
            ("status_id", |d, id| d.status_name(id).is_some()),
        ];
        for (field, exists) in checks {
            if let Some(id) = int(item, field)
                && !exists(directory, id)
            {
                problem(field, format!("{field} {id} does not exist."));
            }
        }
        if let Some(user) = int(item, "user_id").filter(|u| *u > 0)
            && !client.is_some_and(|c| directory.user_of(user, c))
        {
            problem("user_id", format!("User {user} does not belong to the ticket's client."));
        }
        if let Some(site) = int(item, "site_id").filter(|s| *s > 0)
            && !client.is_some_and(|c| directory.site_of(site, c))
        {
            problem("site_id", format!("Site {site} does not belong to the ticket's client."));
        }
    }

    pub(crate) fn post_tickets(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let items = elements(req, "tickets")?;
        self.validate("Faults", &items)?;
        let mut state = self.lock();
        let mut errors = Map::new();
        for (i, item) in items.iter().enumerate() {
            Self::ticket_problems(&state, i, item, &mut errors);
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let mut saved = Vec::new();
        for mut item in items {
            let status = int(&item, "status_id");
            item.remove("status_id");
            if let Some(team) = item.get("team").and_then(Value::as_str).and_then(|t| state.directory.team(t)) {
                item.insert("team".into(), json!(team));
            }
            let id = match int(&item, "id").filter(|id| *id > 0) {
                Some(id) => {
                    if let Some(ticket) = state.tickets.get_mut(&id) {
                        ticket.extend(item);
                    }
                    id
                }
                None => {
                    let id = state.next_ticket_id;
                    state.next_ticket_id += 1;
                    let client = int(&item, "client_id").unwrap_or_default();
                    item.insert("id".into(), json!(id));
                    item.insert("client_name".into(), json!(state.directory.client_name(client)));
                    item.insert("datecreated".into(), json!(self.now_text()));
                    item.insert("hasbeenclosed".into(), json!(false));
                    item.insert("status_id".into(), json!(1));
                    item.insert("status_name".into(), json!("New"));
                    state.tickets.insert(id, item);
                    id
                }
            };
            if let Some(status) = status
                && int(&state.tickets[&id], "status_id") != Some(status)
            {
                let note = state.tickets[&id].get("closure_note").and_then(Value::as_str).unwrap_or("Status changed").to_owned();
                self.set_status(&mut state, id, status, API_AGENT_ID, &note);
            }
            saved.push(Value::Object(state.tickets[&id].clone()));
        }
        answer(saved)
    }

    pub(crate) fn list_tickets(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let client = req.number("client_id")?;
        let search = req.param("search").filter(|s| !s.trim().is_empty());
        let reference = req.param("search_supplier_reference").filter(|s| !s.trim().is_empty());
        let open_only = req.flag("open_only");
        let text = |t: &Map<String, Value>, f: &str| t.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
        let tickets: Vec<Value> = self
            .lock()
            .tickets
            .values()
            .filter(|t| client.is_none_or(|c| int(t, "client_id") == Some(c)))
            .filter(|t| !open_only || t.get("hasbeenclosed").and_then(Value::as_bool) != Some(true))
            .filter(|t| reference.as_deref().is_none_or(|r| contains_ci(&text(t, "supplier_reference"), r)))
            .filter(|t| {
                search.as_deref().is_none_or(|s| {
                    ["summary", "details", "details_html", "supplier_reference"].iter().any(|f| contains_ci(&text(t, f), s))
                })
            })
            .map(|t| Value::Object(t.clone()))
            .collect();
        paged(req, "tickets", tickets)
    }

    pub(crate) fn get_ticket(&self, id: i64) -> Result<Response, ApiError> {
        match self.lock().tickets.get(&id) {
            Some(ticket) => ok(&Value::Object(ticket.clone())),
            None => Err(ApiError::not_found(format!("Ticket {id} not found."))),
        }
    }

    /// Deletes ticket `id` and its actions.
    pub(crate) fn delete_ticket(&self, id: i64) -> Result<(), String> {
        let mut state = self.lock();
        if state.tickets.remove(&id).is_none() {
            return Err(format!("ticket {id} does not exist"));
        }
        state.actions.retain(|_, a| int(a, "ticket_id") != Some(id));
        Ok(())
    }

    /// A technician (the agent `by`) closes ticket `id`.
    pub(crate) fn close_as_agent(&self, id: i64, by: &str) -> Result<(), String> {
        let mut state = self.lock();
        if !state.tickets.contains_key(&id) {
            return Err(format!("ticket {id} does not exist"));
        }
        let agent = state.directory.agent_named(by);
        self.set_status(&mut state, id, CLOSED_STATUS_ID, agent, "Closed by the technician.");
        Ok(())
    }

    pub(crate) fn post_actions(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let items = elements(req, "actions")?;
        self.validate("Actions", &items)?;
        let mut state = self.lock();
        let mut errors = Map::new();
        for (i, item) in items.iter().enumerate() {
            match int(item, "ticket_id") {
                None => {
                    errors.insert(format!("[{i}].ticket_id"), json!("Please select a ticket."));
                }
                Some(t) if !state.tickets.contains_key(&t) => {
                    errors.insert(format!("[{i}].ticket_id"), json!(format!("Ticket {t} does not exist.")));
                }
                Some(_) => {}
            }
            match int(item, "outcome_id") {
                None => {
                    errors.insert(format!("[{i}].outcome_id"), json!("An Outcome must be entered for this Action"));
                }
                Some(o) if state.directory.outcome_name(o).is_none() => {
                    errors.insert(format!("[{i}].outcome_id"), json!(format!("Outcome {o} does not exist.")));
                }
                Some(_) => {}
            }
            if let Some(s) = int(item, "new_status")
                && state.directory.status_name(s).is_none()
            {
                errors.insert(format!("[{i}].new_status"), json!(format!("Status {s} does not exist.")));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let mut saved = Vec::new();
        for mut item in items {
            let ticket = int(&item, "ticket_id").unwrap_or_default();
            let outcome = state.directory.outcome_name(int(&item, "outcome_id").unwrap_or_default());
            let id = state.next_action_id;
            state.next_action_id += 1;
            item.insert("id".into(), json!(id));
            item.insert("outcome".into(), json!(outcome));
            item.insert("who".into(), json!(state.directory.agent_name(API_AGENT_ID)));
            item.insert("who_agentid".into(), json!(API_AGENT_ID));
            item.insert("datetime".into(), json!(self.now_text()));
            let status = int(&item, "new_status");
            state.actions.insert(id, item.clone());
            if let Some(status) = status {
                self.set_status(&mut state, ticket, status, API_AGENT_ID, "Status changed by an action");
            }
            saved.push(action_view(&item, true));
        }
        answer(saved)
    }

    pub(crate) fn list_actions(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let ticket = req.number("ticket_id")?;
        let with_html = req.flag("includehtmlnote");
        let actions: Vec<Value> = self
            .lock()
            .actions
            .values()
            .filter(|a| ticket.is_none_or(|t| int(a, "ticket_id") == Some(t)))
            .map(|a| action_view(a, with_html))
            .collect();
        paged(req, "actions", actions)
    }
}
