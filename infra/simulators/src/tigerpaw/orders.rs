//! Service orders: create, read, update (complete) and notes, with the body checks of the
//! create, update and note models (member names exact, unknown ones refused,
//! types checked), the business checks answered as `200 {"Success": false}` (see the module
//! docs of [`super`]), and the technician's hands (complete, delete, lock).
//!
//! Dates are written `yyyy-MM-ddTHH:mm:ss` without a zone, in UTC (Tigerpaw's own time zone
//! handling is **unconfirmed**); `DateTimeClosed` and the other split/optional date members are
//! sent as `{"DateTime": …}` and stored flat, as `TsiWebServiceOrder` reads them.

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::server::{ApiError, Shared, SimRequest, StoredOrder, failure};
use super::tables::{self, API_REP, BOARDS, NOTE_TOPICS, TYPES, Tables};

/// Longest `BriefDescription` (**unconfirmed**).
pub const BRIEF_DESCRIPTION_MAX: usize = 100;
/// Longest `Reference` (**unconfirmed**).
pub const REFERENCE_MAX: usize = 50;
/// Longest `WorkRequested`, `WorkPerformed`, `InternalComments` or note text (**unconfirmed**).
pub const TEXT_MAX: usize = 8000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Bool,
    Number,
    Object,
    Array,
}

const COMMON: &[(&str, Kind)] = &[
    ("ContactNumber", Kind::Int),
    ("TechnicianAssigned", Kind::Int),
    ("EstimatedHours", Kind::Int),
    ("EstimatedMinutes", Kind::Int),
    ("CallBackCount", Kind::Int),
    ("RepToCredit", Kind::Int),
    ("ContractNumber", Kind::Int),
    ("TakenBy", Kind::Int),
    ("DispatchBoardNumber", Kind::Int),
    ("PayMethodsId", Kind::Int),
    ("Severity", Kind::Int),
    ("AlternatePhoneNumber", Kind::Text),
    ("AlternatePhoneLocation", Kind::Text),
    ("AlternateContactEmailAddress", Kind::Text),
    ("AlternateContactPhoneNumber", Kind::Text),
    ("AlternateContactPhoneLocation", Kind::Text),
    ("BriefDescription", Kind::Text),
    ("Reference", Kind::Text),
    ("Priority", Kind::Text),
    ("Status", Kind::Text),
    ("ServiceOrderType", Kind::Text),
    ("System", Kind::Text),
    ("WorkRequested", Kind::Text),
    ("WorkPerformed", Kind::Text),
    ("PaymentMethod", Kind::Text),
    ("ShippingMethod", Kind::Text),
    ("InternalComments", Kind::Text),
    ("DirectionsToLocation", Kind::Text),
    ("CustomerPurchaseOrder", Kind::Text),
    ("VerifiedBy", Kind::Text),
    ("ServiceZone", Kind::Text),
    ("RequestedBy", Kind::Text),
    ("TagNumber", Kind::Text),
    ("LoanAgreement", Kind::Text),
    ("DebitCreditMemo", Kind::Text),
    ("InvoiceTerms", Kind::Text),
    ("FreightTerms", Kind::Text),
    ("SalesTaxCode", Kind::Text),
    ("DateTimeReceived", Kind::Text),
    ("DateTimeRequested", Kind::Object),
    ("DateTimeOpened", Kind::Object),
    ("DateTimeClosed", Kind::Object),
    ("VerifiedDate", Kind::Object),
    ("ResolvedOnPhone", Kind::Bool),
    ("BidPrice", Kind::Number),
    ("TradeIn", Kind::Number),
    ("Deposit", Kind::Number),
    ("Freight", Kind::Number),
    ("BillToAddressType", Kind::Text),
    ("BillToAddressAccountNumber", Kind::Int),
    ("BillTo", Kind::Object),
    ("ShipToAddressType", Kind::Text),
    ("ShipToAddressAccountNumber", Kind::Int),
    ("ShipTo", Kind::Object),
    ("UseAlternateShipToTaxCode", Kind::Bool),
    ("CanReassignToHourlyUsageContractAlreadyInvoiced", Kind::Bool),
    ("CanUpdateContractMeterReadingToServiceOrderReading", Kind::Bool),
    ("AllowInactiveContract", Kind::Bool),
    ("AllowFutureContract", Kind::Bool),
    ("AllowContractNoRemaining", Kind::Bool),
    ("UseContractDefaultTech", Kind::Bool),
    ("DisplayOnCustomerPortal", Kind::Bool),
];
const CREATE_ONLY: &[(&str, Kind)] = &[("AccountNumber", Kind::Int)];
const UPDATE_ONLY: &[(&str, Kind)] = &[
    ("DiscountType", Kind::Text),
    ("DiscountPercent", Kind::Number),
    ("DiscountAmount", Kind::Number),
    ("DiscountSellForPrice", Kind::Number),
    ("DiscountMarginPercent", Kind::Number),
    ("CompleteOpenTasks", Kind::Bool),
];
const NOTE: &[(&str, Kind)] =
    &[("Topic", Kind::Text), ("Note", Kind::Text), ("RepNumber", Kind::Int), ("EmailTo", Kind::Text), ("EmailCarbonCopy", Kind::Text)];
/// Members of the stored `TsiWebServiceOrder` a create or update writes.
const STORED: &[&str] = &[
    "AccountNumber",
    "ContactNumber",
    "TechnicianAssigned",
    "TakenBy",
    "DispatchBoardNumber",
    "Severity",
    "BriefDescription",
    "Reference",
    "Priority",
    "Status",
    "ServiceOrderType",
    "System",
    "WorkRequested",
    "WorkPerformed",
    "InternalComments",
    "ServiceZone",
    "RequestedBy",
    "DateTimeOpened",
    "DateTimeClosed",
    "DisplayOnCustomerPortal",
];

fn fits(kind: Kind, value: &Value) -> bool {
    match kind {
        _ if value.is_null() => true,
        Kind::Int => value.is_i64(),
        Kind::Text => value.is_string(),
        Kind::Bool => value.is_boolean(),
        Kind::Number => value.is_number(),
        Kind::Object => value.is_object(),
        Kind::Array => value.is_array(),
    }
}

/// Refuses unknown members and members of the wrong type (`400` with ModelState).
pub(crate) fn check_members(body: &Map<String, Value>, model: &str, lists: &[&[(&str, Kind)]]) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    for (name, value) in body {
        match lists.iter().flat_map(|l| l.iter()).find(|(member, _)| member == name) {
            None => problems.push((name.clone(), format!("The member {name} is not part of {model}."))),
            Some((_, kind)) if !fits(*kind, value) => problems.push((name.clone(), format!("The value of {name} is not valid."))),
            Some(_) => {}
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(ApiError::invalid(problems)) }
}

pub(crate) fn text<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

pub(crate) fn int(body: &Map<String, Value>, name: &str) -> Option<i64> {
    body.get(name).and_then(Value::as_i64)
}

fn check_lengths(body: &Map<String, Value>) -> Result<(), ApiError> {
    let limits = [("BriefDescription", BRIEF_DESCRIPTION_MAX), ("Reference", REFERENCE_MAX)];
    let long = ["WorkRequested", "WorkPerformed", "InternalComments"].map(|f| (f, TEXT_MAX));
    let problems: Vec<(String, String)> = limits
        .iter()
        .chain(long.iter())
        .filter(|(field, max)| text(body, field).is_some_and(|t| t.chars().count() > *max))
        .map(|(field, max)| ((*field).to_string(), format!("{field} may be at most {max} characters.")))
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(ApiError::invalid(problems)) }
}

/// The business checks of master-table values and references: the first problem's message.
fn master_problem(body: &Map<String, Value>, tables: &Tables, account: Option<i64>) -> Option<String> {
    if let Some(p) = text(body, "Priority").filter(|p| tables::known(&tables::priority_names(), p).is_none()) {
        return Some(format!("Priority '{p}' is not a valid priority."));
    }
    if let Some(s) = text(body, "Status").filter(|s| tables::status(s).is_none()) {
        return Some(format!("Status '{s}' is not a valid service order status."));
    }
    if let Some(t) = text(body, "ServiceOrderType").filter(|t| tables::known(TYPES, t).is_none()) {
        return Some(format!("Service order type '{t}' is not a valid service order type."));
    }
    if let Some(b) = int(body, "DispatchBoardNumber").filter(|b| !BOARDS.iter().any(|(n, _)| n == b)) {
        return Some(format!("Dispatch board {b} does not exist."));
    }
    if let Some(c) = int(body, "ContactNumber")
        && tables.contacts.get(&c).map(|c| c.account) != account
    {
        return Some(format!("Contact {c} is not a contact of the account."));
    }
    if let Some(t) = int(body, "TechnicianAssigned").filter(|t| !tables.reps.contains_key(t)) {
        return Some(format!("Rep {t} does not exist."));
    }
    None
}

fn now_text() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Writes the stored members of `body` into `order` (dates flattened, master values in their
/// stored spelling) and keeps `DateTimeClosed` in step with the status.
fn apply(order: &mut Map<String, Value>, body: &Map<String, Value>) {
    for name in STORED {
        let Some(value) = body.get(*name) else { continue };
        let value = match (*name, value) {
            (_, Value::Object(date)) => date.get("DateTime").cloned().unwrap_or(Value::Null),
            ("Status", Value::String(s)) => tables::status(s).map_or(value.clone(), |(s, _)| json!(s)),
            ("Priority", Value::String(p)) => tables::known(&tables::priority_names(), p).map_or(value.clone(), |p| json!(p)),
            ("ServiceOrderType", Value::String(t)) => tables::known(TYPES, t).map_or(value.clone(), |t| json!(t)),
            _ => value.clone(),
        };
        order.insert((*name).to_string(), value);
    }
    let closed = order.get("Status").and_then(Value::as_str).and_then(tables::status).is_some_and(|(_, closes)| closes);
    if !closed {
        order.insert("DateTimeClosed".into(), Value::Null);
    } else if order.get("DateTimeClosed").is_none_or(Value::is_null) {
        order.insert("DateTimeClosed".into(), json!(now_text()));
    }
}

/// The `TsiWebServiceOrderSummary` of a stored order.
pub(crate) fn summary(number: i64, stored: &StoredOrder, tables: &Tables) -> Value {
    let order = &stored.order;
    let account = int(order, "AccountNumber");
    let contact = int(order, "ContactNumber").and_then(|c| tables.contacts.get(&c));
    let rep = |field: &str| int(order, field).and_then(|r| tables.reps.get(&r)).cloned();
    json!({
        "ServiceOrderNumber": number,
        "ServiceOrder": order,
        "AccountName": account.and_then(|a| tables.accounts.get(&a)),
        "ContactName": contact.map(|c| format!("{} {}", c.first_name, c.last_name)),
        "ContactEmailAddress": contact.map(|c| c.email.clone()),
        "PrimaryTechnicianName": rep("TechnicianAssigned"),
        "TakenByName": rep("TakenBy"),
        "Notes": stored.notes.len(),
        "ServiceOrderLock": stored.locked_by.as_ref().map(|(n, name)| json!({"LockingRepNumber": n, "LockingRepName": name})),
    })
}

fn not_found(number: i64) -> String {
    format!("Service order {number} was not found.")
}

fn locked(number: i64, by: &str) -> String {
    format!("Service order {number} is locked by {by} and cannot be updated until it is closed in Tigerpaw.")
}

impl Shared {
    pub(crate) fn create_order(&self, req: &SimRequest) -> Result<Value, ApiError> {
        let body = req.object()?;
        check_members(&body, "TsiWebCreateServiceOrderModel", &[COMMON, CREATE_ONLY])?;
        let mut missing = Vec::new();
        if int(&body, "AccountNumber").is_none() {
            missing.push(("AccountNumber".to_string(), "AccountNumber is required.".to_string()));
        }
        if text(&body, "BriefDescription").is_none_or(|t| t.trim().is_empty()) {
            missing.push(("BriefDescription".to_string(), "BriefDescription is required.".to_string()));
        }
        if !missing.is_empty() {
            return Err(ApiError::invalid(missing));
        }
        check_lengths(&body)?;
        let empty = ["ServiceOrderSummary"];
        let mut state = self.lock();
        let account = int(&body, "AccountNumber");
        if let Some(a) = account.filter(|a| !state.tables.accounts.contains_key(a)) {
            return Ok(failure(&empty, format!("Account {a} does not exist.")));
        }
        if let Some(problem) = master_problem(&body, &state.tables, account) {
            return Ok(failure(&empty, problem));
        }
        let mut order = Map::new();
        order.insert("Status".into(), json!(tables::default_status()));
        order.insert("Priority".into(), json!(tables::default_priority()));
        order.insert("TakenBy".into(), json!(API_REP));
        order.insert("DateCreated".into(), json!(now_text()));
        order.insert("DateTimeOpened".into(), json!(now_text()));
        apply(&mut order, &body);
        let number = state.next_order;
        state.next_order += 1;
        let stored = StoredOrder { order, notes: Vec::new(), locked_by: None };
        let summary = summary(number, &stored, &state.tables);
        state.orders.insert(number, stored);
        Ok(json!({"ServiceOrderSummary": summary, "Success": true, "Message": null}))
    }

    pub(crate) fn get_order(&self, number: i64) -> Result<Value, ApiError> {
        let state = self.lock();
        let stored = state.orders.get(&number).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, not_found(number)))?;
        Ok(summary(number, stored, &state.tables))
    }

    pub(crate) fn update_order(&self, number: i64, req: &SimRequest) -> Result<Value, ApiError> {
        let body = req.object()?;
        check_members(&body, "TsiWebUpdateServiceOrderModel", &[COMMON, UPDATE_ONLY])?;
        check_lengths(&body)?;
        let empty = ["ServiceOrderSummary"];
        let mut state = self.lock();
        let state = &mut *state;
        let Some(stored) = state.orders.get_mut(&number) else { return Ok(failure(&empty, not_found(number))) };
        if let Some((_, by)) = &stored.locked_by {
            return Ok(failure(&empty, locked(number, by)));
        }
        if let Some(problem) = master_problem(&body, &state.tables, int(&stored.order, "AccountNumber")) {
            return Ok(failure(&empty, problem));
        }
        apply(&mut stored.order, &body);
        Ok(json!({"ServiceOrderSummary": summary(number, stored, &state.tables), "Success": true, "Message": null}))
    }

    pub(crate) fn add_note(&self, number: i64, req: &SimRequest) -> Result<Value, ApiError> {
        let body = req.object()?;
        check_members(&body, "TsiWebCreateServiceOrderNoteModel", &[NOTE])?;
        let note = text(&body, "Note")
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| ApiError::invalid(vec![("Note".to_string(), "Note is required.".to_string())]))?;
        if note.chars().count() > TEXT_MAX {
            return Err(ApiError::invalid(vec![("Note".to_string(), format!("Note may be at most {TEXT_MAX} characters."))]));
        }
        let empty = ["Note"];
        let mut state = self.lock();
        let state = &mut *state;
        let topic = match text(&body, "Topic") {
            None => NOTE_TOPICS[0],
            Some(t) => match tables::known(NOTE_TOPICS, t) {
                Some(t) => t,
                None => return Ok(failure(&empty, format!("Topic '{t}' is not a valid note topic."))),
            },
        };
        let rep = int(&body, "RepNumber").unwrap_or(API_REP);
        let Some(rep_name) = state.tables.reps.get(&rep).cloned() else {
            return Ok(failure(&empty, format!("Rep {rep} does not exist.")));
        };
        let Some(stored) = state.orders.get_mut(&number) else { return Ok(failure(&empty, not_found(number))) };
        if let Some((_, by)) = &stored.locked_by {
            return Ok(failure(&empty, locked(number, by)));
        }
        let now = now_text();
        let note = json!({
            "ServiceOrderNoteNumber": state.next_note, "Topic": topic, "Note": note, "DateCreated": now,
            "StartTime": now, "LastModified": now, "EmailTo": null, "EmailCarbonCopy": null,
            "RepNumber": rep, "RepName": rep_name,
        });
        state.next_note += 1;
        stored.notes.push(note.clone());
        Ok(json!({"Note": note, "Success": true, "Message": null}))
    }

    pub(crate) fn list_notes(&self, number: i64) -> Result<Value, ApiError> {
        let state = self.lock();
        let stored = state.orders.get(&number).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, not_found(number)))?;
        Ok(Value::Array(stored.notes.clone()))
    }

    pub(crate) fn complete_order(&self, number: i64, rep: &str) -> Result<(), String> {
        let mut state = self.lock();
        let state = &mut *state;
        let rep = state.tables.rep_named(rep);
        let stored = state.orders.get_mut(&number).ok_or_else(|| format!("service order {number} does not exist"))?;
        let change = json!({"Status": tables::first_closed_status(), "TechnicianAssigned": rep});
        if let Value::Object(change) = change {
            apply(&mut stored.order, &change);
        }
        Ok(())
    }

    pub(crate) fn delete_order(&self, number: i64) -> Result<(), String> {
        self.lock().orders.remove(&number).map(|_| ()).ok_or_else(|| format!("service order {number} does not exist"))
    }

    pub(crate) fn lock_order(&self, number: i64, rep: Option<&str>) -> Result<(), String> {
        let mut state = self.lock();
        let state = &mut *state;
        let by = rep.map(|name| (state.tables.rep_named(name), name.trim().to_string()));
        let stored = state.orders.get_mut(&number).ok_or_else(|| format!("service order {number} does not exist"))?;
        stored.locked_by = by;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn unknown_members_and_wrong_types_are_refused_with_model_state() {
        let ok = object(json!({"AccountNumber": 1, "BriefDescription": "x", "DateTimeClosed": {"DateTime": null}}));
        assert!(check_members(&ok, "M", &[COMMON, CREATE_ONLY]).is_ok());
        let unknown = object(json!({"ExternalTicketId": "vigil:a"}));
        let refused = check_members(&unknown, "TsiWebCreateServiceOrderModel", &[COMMON, CREATE_ONLY]).err();
        assert!(refused.is_some_and(|e| e.status == StatusCode::BAD_REQUEST && e.model_state.is_some()));
        let wrong = object(json!({"AccountNumber": "1053145"}));
        assert!(check_members(&wrong, "M", &[COMMON, CREATE_ONLY]).is_err(), "AccountNumber is an int");
        assert!(check_members(&object(json!({"AccountNumber": 1})), "M", &[COMMON, UPDATE_ONLY]).is_err(), "not an update member");
    }

    #[test]
    fn a_closing_status_stamps_date_time_closed_and_reopening_clears_it() {
        let mut order = Map::new();
        apply(&mut order, &object(json!({"Status": "completed", "WorkPerformed": "done"})));
        assert_eq!(order["Status"], "Completed");
        assert!(order["DateTimeClosed"].is_string());
        apply(&mut order, &object(json!({"Status": "Open"})));
        assert!(order["DateTimeClosed"].is_null());
        apply(&mut order, &object(json!({"Status": "Completed", "DateTimeClosed": {"DateTime": "2026-01-05T10:00:00"}})));
        assert_eq!(order["DateTimeClosed"], "2026-01-05T10:00:00");
    }
}
