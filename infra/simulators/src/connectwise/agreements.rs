//! Agreements, their additions and the product catalog (`shared/reference/psa-apis.md` §1, the
//! billing sync's ConnectWise side):
//!
//! * `GET /finance/agreements/{id}` — an `Agreement` (`cancelledFlag`, `endDate`,
//!   `noEndingDateFlag`); an unknown id answers `404 NotFound`;
//! * `GET /finance/agreements/{id}/additions[/count]` — its `Addition`s, with `conditions`
//!   (`product/id=…`), paging and `fields` like every list; `GET …/additions/{additionId}`;
//! * `POST /finance/agreements/{id}/additions` — validated against the `Addition` schema
//!   (`product` and `billCustomer` required, `billCustomer` in its enum, unknown members
//!   refused), `product` must name a catalog item by `id` or `identifier`, a cancelled agreement
//!   takes no addition: `400 InvalidObject` with per-field `errors`;
//! * `PATCH /finance/agreements/{id}/additions/{additionId}` — a JSON-Patch array of `replace`
//!   ops on the addition's writable members, the result validated again (`quantity` must be a
//!   number not below zero);
//! * `GET /procurement/catalog[/count]` and `GET /procurement/catalog/{id}` — `CatalogItem`s.
//!
//! Control (`control.rs`): `POST /_sim/agreements/{id}/additions/{additionId}/quantity`
//! `{"quantity": N}` edits an addition as someone would in ConnectWise's own screens.
//!
//! Unconfirmed (the reference has GET forms only for additions): the POST and PATCH verbs are
//! served like ConnectWise's other resources; a cancelled agreement's refusal of new additions
//! is the simulator's reading.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::http::{
    ApiError, FieldError, SimRequest, bad_request, invalid_object_errors, json_response, not_found, now_rfc3339, parse_json_body,
    reference_error,
};
use super::{API_MEMBER, Shared, SimState};

/// First id handed to agreements, additions and catalog items.
pub(super) const FIRST_AGREEMENT_ID: i64 = 301;
pub(super) const FIRST_ADDITION_ID: i64 = 5001;
pub(super) const FIRST_PRODUCT_ID: i64 = 801;
/// Addition members a `PATCH` may replace.
const WRITABLE: &[&str] = &[
    "quantity",
    "lessIncluded",
    "unitPrice",
    "unitCost",
    "billCustomer",
    "effectiveDate",
    "cancelledDate",
    "taxableFlag",
    "invoiceDescription",
    "description",
];

/// The agreement and catalog routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AgreementRoute {
    Agreement(i64),
    Additions { agreement: i64, count: bool },
    Addition(i64, i64),
    AddAddition(i64),
    PatchAddition(i64, i64),
    Catalog { count: bool },
    CatalogItem(i64),
}

impl AgreementRoute {
    /// Whether the route writes (its own failure-injection operation).
    pub(super) fn writes(self) -> bool {
        matches!(self, AgreementRoute::AddAddition(_) | AgreementRoute::PatchAddition(..))
    }
}

fn agreement_not_found(id: i64) -> ApiError {
    not_found(&format!("Agreement with id {id} was not found"))
}

fn date_time(day: chrono::NaiveDate) -> String {
    format!("{day}T00:00:00Z")
}

impl Shared {
    pub(super) fn agreement_route(&self, state: &mut SimState, route: AgreementRoute, req: &SimRequest) -> Result<Response, ApiError> {
        match route {
            AgreementRoute::Agreement(id) => {
                let agreement = state.agreements.get(&id).cloned().ok_or_else(|| agreement_not_found(id))?;
                self.single(req, "Agreement", agreement)
            }
            AgreementRoute::Additions { agreement, count } => {
                if !state.agreements.contains_key(&agreement) {
                    return Err(agreement_not_found(agreement));
                }
                let items = state.additions.values().filter(|a| a["agreementId"] == agreement).cloned().collect();
                self.list(req, "Addition", items, count)
            }
            AgreementRoute::Addition(agreement, id) => {
                let addition = state.additions.get(&id).filter(|a| a["agreementId"] == agreement).cloned();
                self.single(req, "Addition", addition.ok_or_else(|| addition_not_found(id))?)
            }
            AgreementRoute::AddAddition(agreement) => self.add_addition(state, agreement, req),
            AgreementRoute::PatchAddition(agreement, id) => self.patch_addition(state, agreement, id, req),
            AgreementRoute::Catalog { count } => self.list(req, "CatalogItem", state.products.values().cloned().collect(), count),
            AgreementRoute::CatalogItem(id) => {
                let item = state.products.get(&id).cloned().ok_or_else(|| not_found(&format!("CatalogItem with id {id} was not found")))?;
                self.single(req, "CatalogItem", item)
            }
        }
    }

    fn add_addition(&self, state: &mut SimState, agreement_id: i64, req: &SimRequest) -> Result<Response, ApiError> {
        let agreement = state.agreements.get(&agreement_id).cloned().ok_or_else(|| agreement_not_found(agreement_id))?;
        let value = parse_json_body(req, "addition")?;
        let Value::Object(mut addition) = value else {
            return Err(bad_request("the addition must be a JSON object"));
        };
        let mut errors: Vec<FieldError> =
            self.schemas.validate("Addition", &Value::Object(addition.clone())).iter().map(FieldError::from).collect();
        if agreement["cancelledFlag"] == true {
            errors.push(reference_error("agreement", format!("Agreement {agreement_id} is cancelled: additions cannot be added")));
        }
        if !errors.iter().any(|e| e.field.starts_with("product")) {
            match catalog_item(state, addition.get("product")) {
                Some(item) => {
                    addition.insert("product".into(), json!({"id": item["id"], "identifier": item["identifier"]}));
                    if !addition.contains_key("unitPrice") {
                        addition.insert("unitPrice".into(), item.get("price").cloned().unwrap_or(json!(0.0)));
                    }
                    if !addition.contains_key("description") {
                        addition.insert("description".into(), item.get("description").cloned().unwrap_or(Value::Null));
                    }
                }
                None => errors.push(reference_error("product", "product must reference an existing catalog item by id or identifier")),
            }
        }
        quantity_errors(&addition, &mut errors);
        if !errors.is_empty() {
            return Err(invalid_object_errors("addition", &errors));
        }
        let id = state.next_addition_id;
        state.next_addition_id += 1;
        addition.insert("id".into(), json!(id));
        addition.insert("agreementId".into(), json!(agreement_id));
        addition.entry("quantity").or_insert(json!(0.0));
        addition.insert("agreementStatus".into(), json!("Active"));
        stamp(&mut addition, true);
        let stored = Value::Object(addition);
        state.additions.insert(id, stored.clone());
        Ok(json_response(StatusCode::CREATED, &stored))
    }

    fn patch_addition(&self, state: &mut SimState, agreement_id: i64, id: i64, req: &SimRequest) -> Result<Response, ApiError> {
        if !state.agreements.contains_key(&agreement_id) {
            return Err(agreement_not_found(agreement_id));
        }
        let Some(Value::Object(stored)) = state.additions.get(&id).filter(|a| a["agreementId"] == agreement_id) else {
            return Err(addition_not_found(id));
        };
        let value = parse_json_body(req, "addition")?;
        let Value::Array(ops) = value else {
            return Err(bad_request(
                "PATCH bodies must be a JSON-Patch array, e.g. [{\"op\":\"replace\",\"path\":\"/quantity\",\"value\":12}]",
            ));
        };
        let mut addition = stored.clone();
        for (i, op) in ops.iter().enumerate() {
            let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
            let path = op.get("path").and_then(Value::as_str).unwrap_or("");
            let field = path.trim_start_matches('/');
            if !kind.eq_ignore_ascii_case("replace") {
                return Err(bad_request(&format!("patch operation {i}: only replace is supported here, got {kind:?}")));
            }
            if !WRITABLE.contains(&field) {
                return Err(bad_request(&format!("patch operation {i}: {path:?} cannot be replaced")));
            }
            let Some(new) = op.get("value") else {
                return Err(bad_request(&format!("patch operation {i}: value is required")));
            };
            addition.insert(field.to_string(), new.clone());
        }
        let mut errors: Vec<FieldError> =
            self.schemas.validate("Addition", &Value::Object(addition.clone())).iter().map(FieldError::from).collect();
        quantity_errors(&addition, &mut errors);
        if !errors.is_empty() {
            return Err(invalid_object_errors("addition", &errors));
        }
        stamp(&mut addition, false);
        let stored = Value::Object(addition);
        state.additions.insert(id, stored.clone());
        Ok(json_response(StatusCode::OK, &stored))
    }

    /// Adds a catalog item (a recurring service) and returns its id.
    pub(super) fn add_product(&self, identifier: &str, description: &str) -> i64 {
        let mut state = self.lock();
        let id = state.next_product_id;
        state.next_product_id += 1;
        let item = json!({
            "id": id, "identifier": identifier, "description": description, "customerDescription": description,
            "inactiveFlag": false, "recurringFlag": true, "price": 3.0, "cost": 1.0,
            "subcategory": {"id": 1, "name": "Security"}, "type": {"id": 1, "name": "Service"},
            "_info": {"lastUpdated": now_rfc3339(), "updatedBy": API_MEMBER},
        });
        state.products.insert(id, item);
        id
    }

    /// Adds an agreement of `company_id` from `start`, ending `end` (`None`: no ending date).
    pub(super) fn add_agreement(&self, name: &str, company_id: i64, start: chrono::NaiveDate, end: Option<chrono::NaiveDate>) -> i64 {
        let mut state = self.lock();
        let id = state.next_agreement_id;
        state.next_agreement_id += 1;
        let company = state.companies.get(&company_id).map_or_else(|| json!({"id": company_id}), super::lookups::company_reference);
        let agreement = json!({
            "id": id, "name": name, "type": {"id": 1, "name": "Managed Services"}, "company": company,
            "contact": {"id": 1}, "startDate": date_time(start), "endDate": end.map(date_time),
            "noEndingDateFlag": end.is_none(), "cancelledFlag": false, "billingCycle": {"id": 1, "name": "Monthly"},
            "_info": {"lastUpdated": now_rfc3339(), "updatedBy": API_MEMBER},
        });
        state.agreements.insert(id, agreement);
        id
    }

    /// Cancels (or reinstates) an agreement; whether it exists.
    pub(super) fn set_agreement_cancelled(&self, id: i64, cancelled: bool) -> bool {
        let mut state = self.lock();
        let Some(Value::Object(agreement)) = state.agreements.get_mut(&id) else { return false };
        agreement.insert("cancelledFlag".into(), json!(cancelled));
        agreement.insert("dateCancelled".into(), if cancelled { json!(now_rfc3339()) } else { Value::Null });
        true
    }

    /// Sets an addition's quantity as a person would in ConnectWise; whether it exists.
    pub(super) fn set_addition_quantity_by_hand(&self, agreement_id: i64, id: i64, quantity: f64) -> bool {
        let mut state = self.lock();
        let Some(Value::Object(addition)) = state.additions.get_mut(&id).filter(|a| a["agreementId"] == agreement_id) else {
            return false;
        };
        addition.insert("quantity".into(), json!(quantity));
        addition.insert("_info".into(), json!({"lastUpdated": now_rfc3339(), "updatedBy": "admin1"}));
        true
    }

    /// The additions of an agreement, oldest first.
    pub(super) fn additions_of(&self, agreement_id: i64) -> Vec<Value> {
        self.lock().additions.values().filter(|a| a["agreementId"] == agreement_id).cloned().collect()
    }
}

fn addition_not_found(id: i64) -> ApiError {
    not_found(&format!("Addition with id {id} was not found"))
}

/// The catalog item a `product` reference names (by `id`, else by `identifier`).
fn catalog_item<'a>(state: &'a SimState, reference: Option<&Value>) -> Option<&'a Value> {
    let reference = reference?;
    if let Some(id) = reference.get("id").and_then(Value::as_i64) {
        return state.products.get(&id);
    }
    let identifier = reference.get("identifier").and_then(Value::as_str)?;
    state.products.values().find(|p| p["identifier"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(identifier)))
}

fn quantity_errors(addition: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    if let Some(q) = addition.get("quantity").and_then(Value::as_f64)
        && q < 0.0
    {
        errors.push(reference_error("quantity", "quantity may not be negative"));
    }
}

fn stamp(addition: &mut Map<String, Value>, entered: bool) {
    let now = now_rfc3339();
    let mut info = json!({"lastUpdated": now, "updatedBy": API_MEMBER});
    if entered {
        info["dateEntered"] = json!(now);
        info["enteredBy"] = json!(API_MEMBER);
    }
    addition.insert("_info".into(), info);
}
