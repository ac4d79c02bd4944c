//! Recurring invoices (seat billing) for the HaloPSA simulator, as the report-only billing sync
//! reads them (`shared/reference/licences-billing-outputs.md` §4):
//!
//! * `GET /api/RecurringInvoice/{id}` → the invoice with its `lines` (the reference: lines are
//!   reliably returned only by this call) **[confirmed S-HA8]**: `{"id", "client_id",
//!   "client_name", "invoice_date", "disabled", "lines": [{"id", "item_id", "item_code",
//!   "item_shortdescription", "qty_order", "unit_price"}]}` (`qty_order`, `unit_price` and
//!   `disabled` confirmed; `item_id`/`item_code` as Halo's item lines elsewhere, **unconfirmed**
//!   here); an unknown id `404`;
//! * `GET /api/RecurringInvoice` (`client_id`, `includeinactive`, `includelines`; paged with
//!   `pageinate`) → `{"record_count", "invoices": [...]}` without lines unless `includelines`,
//!   disabled templates only with `includeinactive` **[confirmed S-HA8]**;
//! * `POST /api/RecurringInvoice` (an array of invoices carrying `id`: Halo's update, **[confirmed
//!   S-HA6]**): each element must name an existing invoice; a `lines[]` element with a line `id`
//!   and `qty_order` sets that quantity (this line shape is **unconfirmed**, which is why Vigil
//!   does not write here). Every such POST is counted ([`RecurringInvoices::writes`]) so a test
//!   can show the report-only sync never sent one.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::server::{ApiError, Shared, SimRequest, ok, paged};
use super::tickets::elements;

/// The simulator's recurring invoices; in its state.
#[derive(Default)]
pub(crate) struct RecurringInvoices {
    invoices: BTreeMap<i64, Map<String, Value>>,
    next_id: i64,
    writes: u64,
}

impl RecurringInvoices {
    /// Adds an enabled recurring invoice of `client_id` with one line per `(item_id, qty)`; its id.
    pub(crate) fn add(&mut self, client_id: i64, client_name: &str, lines: &[(i64, f64)]) -> i64 {
        self.next_id += 1;
        let id = 300 + self.next_id;
        let lines: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (item, qty))| {
                json!({"id": id * 100 + i64::try_from(i).unwrap_or_default() + 1, "item_id": item, "item_code": format!("ITEM-{item}"),
                    "item_shortdescription": format!("Item {item}"), "qty_order": qty, "unit_price": 3.5})
            })
            .collect();
        let invoice = json!({"id": id, "client_id": client_id, "client_name": client_name, "invoice_date": "2026-12-01T00:00:00",
            "disabled": false, "lines": lines});
        if let Value::Object(map) = invoice {
            self.invoices.insert(id, map);
        }
        id
    }

    /// Disables (or enables) the template.
    pub(crate) fn set_disabled(&mut self, id: i64, disabled: bool) -> bool {
        self.invoices.get_mut(&id).map(|i| i.insert("disabled".into(), json!(disabled))).is_some()
    }

    /// A technician sets the `qty_order` of the invoice's line for `item_id`.
    pub(crate) fn set_quantity(&mut self, id: i64, item_id: i64, qty: f64) -> bool {
        let Some(lines) = self.invoices.get_mut(&id).and_then(|i| i.get_mut("lines")).and_then(Value::as_array_mut) else { return false };
        let Some(line) = lines.iter_mut().find(|l| l["item_id"].as_i64() == Some(item_id)) else { return false };
        line["qty_order"] = json!(qty);
        true
    }

    /// How many `POST /api/RecurringInvoice` were received.
    pub(crate) fn writes(&self) -> u64 {
        self.writes
    }
}

impl Shared {
    /// `GET /api/RecurringInvoice/{id}`.
    pub(crate) fn get_recurring_invoice(&self, id: i64) -> Result<Response, ApiError> {
        let state = self.lock();
        let invoice = state.recurring.invoices.get(&id).ok_or_else(|| ApiError::not_found(format!("Recurring invoice {id} not found")))?;
        ok(&Value::Object(invoice.clone()))
    }

    /// `GET /api/RecurringInvoice`.
    pub(crate) fn list_recurring_invoices(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let client = req.number("client_id")?;
        let (inactive, with_lines) = (req.flag("includeinactive"), req.flag("includelines"));
        let invoices: Vec<Value> = self
            .lock()
            .recurring
            .invoices
            .values()
            .filter(|i| client.is_none_or(|c| i["client_id"].as_i64() == Some(c)))
            .filter(|i| inactive || i["disabled"] != json!(true))
            .map(|i| {
                let mut view = i.clone();
                if !with_lines {
                    view.remove("lines");
                }
                Value::Object(view)
            })
            .collect();
        paged(req, "invoices", invoices)
    }

    /// `POST /api/RecurringInvoice` (update by `id`).
    pub(crate) fn post_recurring_invoices(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let items = elements(req, "recurring invoices")?;
        let mut state = self.lock();
        state.recurring.writes += 1;
        let mut errors = Map::new();
        for (i, item) in items.iter().enumerate() {
            match item.get("id").and_then(Value::as_i64) {
                Some(id) if state.recurring.invoices.contains_key(&id) => {}
                _ => {
                    errors.insert(format!("[{i}].id"), json!("An existing recurring invoice id is required."));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let mut saved = Vec::new();
        for item in items {
            let id = item.get("id").and_then(Value::as_i64).unwrap_or_default();
            let Some(invoice) = state.recurring.invoices.get_mut(&id) else { continue };
            for line in item.get("lines").and_then(Value::as_array).into_iter().flatten() {
                let (Some(line_id), Some(qty)) = (line.get("id").and_then(Value::as_i64), line.get("qty_order").and_then(Value::as_f64))
                else {
                    continue;
                };
                if let Some(stored) = invoice
                    .get_mut("lines")
                    .and_then(Value::as_array_mut)
                    .and_then(|ls| ls.iter_mut().find(|l| l["id"].as_i64() == Some(line_id)))
                {
                    stored["qty_order"] = json!(qty);
                }
            }
            if let Some(disabled) = item.get("disabled") {
                invoice.insert("disabled".into(), disabled.clone());
            }
            saved.push(Value::Object(invoice.clone()));
        }
        if saved.len() == 1 { ok(&saved.swap_remove(0)) } else { ok(&Value::Array(saved)) }
    }
}
