//! Recurring-service contracts for the Autotask simulator, as the billing sync reads and writes
//! them (`shared/reference/psa-apis.md` §2.7; models from the reference swagger):
//!
//! * `GET /V1.0/Contracts/{id}` → `{"item": {id, contractName, contractType, status, companyID,
//!   startDate, endDate}}` (`{"item": null}` when unknown, like tickets);
//! * `POST /V1.0/ContractServices/query` and `POST /V1.0/ContractServiceUnits/query` with `eq`
//!   on `id`, `contractID`, `serviceID` and, for units, `lte startDate` / `gte endDate` (other
//!   fields or operators are refused). Units are one row per calendar month of the contract, each
//!   carrying the units as of its last day: the service's first units plus every adjustment
//!   effective on or before it;
//! * `POST /V1.0/ContractServiceAdjustments` (create only): `contractID`, `effectiveDate`
//!   (required, as in the constraints file), `unitChange` (a **delta**: not zero, never taking
//!   the units below zero) and `serviceID` or `contractServiceID`; the contract must exist, be
//!   active (`status` 1) and be a recurring-service contract (`contractType` 7), the service must be
//!   on it and the effective date inside the contract. Properties are the swagger's
//!   `ContractServiceAdjustmentModel`'s; others are refused. Failures answer HTTP 500
//!   `{"errors": [...]}` naming the field, as the rest of the simulator. → `{"itemId": N}`.
//!
//! Control (`/_sim`): `POST /_sim/contracts` `{"name", "startDate", "endDate", "companyID"?,
//! "status"?, "contractType"?}` → `{"id"}`; `POST /_sim/contracts/{id}/services` `{"serviceID",
//! "units"}` → `{"id"}`; `POST /_sim/contracts/{id}/services/{serviceID}/units` `{"units",
//! "effectiveDate"?}` (a technician's hand edit: an adjustment made in the PSA's screens);
//! `POST /_sim/contracts/{id}/status` `{"status"}`; `GET /_sim/contracts/{id}/adjustments`.
//!
//! Unconfirmed and chosen here: the delta semantics (the reference marks them unconfirmed), the
//! monthly unit rows, and that an inactive contract refuses adjustments.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value, json};

use super::server::{ApiError, SimRequest, json_response, ok};

/// `contractType` of a recurring-service contract.
pub(crate) const RECURRING_SERVICE: i64 = 7;
/// `status` of an active contract.
pub(crate) const ACTIVE: i64 = 1;
const ADJUSTMENT_FIELDS: [&str; 11] = [
    "adjustedUnitCost",
    "adjustedUnitPrice",
    "allowRepeatService",
    "contractID",
    "contractServiceID",
    "effectiveDate",
    "id",
    "quoteItemID",
    "serviceID",
    "soapParentPropertyId",
    "unitChange",
];

pub(crate) struct Contract {
    name: String,
    company_id: i64,
    status: i64,
    contract_type: i64,
    start: NaiveDate,
    end: NaiveDate,
}

pub(crate) struct ContractService {
    contract_id: i64,
    service_id: i64,
    units: i64,
    /// (effective date, unit change), by Vigil's adjustments and by hand.
    changes: Vec<(NaiveDate, i64)>,
}

impl ContractService {
    fn units_on(&self, day: NaiveDate) -> i64 {
        self.units + self.changes.iter().filter(|(at, _)| *at <= day).map(|(_, change)| change).sum::<i64>()
    }
}

/// Contracts, their services and adjustments; in the simulator's state.
#[derive(Default)]
pub(crate) struct Contracts {
    contracts: BTreeMap<i64, Contract>,
    services: BTreeMap<i64, ContractService>,
    adjustments: Vec<Value>,
    next_id: i64,
}

fn month_end(day: NaiveDate) -> NaiveDate {
    let (y, m) = if day.month() == 12 { (day.year() + 1, 1) } else { (day.year(), day.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).unwrap_or(day)
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn date_of(value: &Value) -> Option<NaiveDate> {
    let text = value.as_str()?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// A query's conditions: `(field lower-cased, op, value)`.
fn conditions(req: &SimRequest) -> Result<Vec<(String, String, Value)>, ApiError> {
    let body: Value = req.json()?;
    let filter = body
        .get("filter")
        .or_else(|| body.get("Filter"))
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("filter: at least one condition is required"))?;
    filter
        .iter()
        .map(|c| {
            let field = c.get("field").and_then(Value::as_str).ok_or_else(|| ApiError::invalid("filter: a condition without a field"))?;
            let op = c.get("op").and_then(Value::as_str).ok_or_else(|| ApiError::invalid("filter: a condition without an op"))?;
            Ok((field.to_ascii_lowercase(), op.to_ascii_lowercase(), c.get("value").cloned().unwrap_or(Value::Null)))
        })
        .collect()
}

fn items(rows: Vec<Value>) -> Result<Response, ApiError> {
    let count = rows.len();
    ok(&json!({"items": rows, "pageDetails": {"count": count, "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null}}))
}

impl Contracts {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        29_680_000 + self.next_id
    }

    pub(crate) fn add_contract(&mut self, name: &str, company_id: i64, start: NaiveDate, end: NaiveDate) -> i64 {
        let id = self.id();
        self.contracts
            .insert(id, Contract { name: name.to_owned(), company_id, status: ACTIVE, contract_type: RECURRING_SERVICE, start, end });
        id
    }

    pub(crate) fn set_status(&mut self, contract_id: i64, status: i64) -> bool {
        self.contracts.get_mut(&contract_id).map(|c| c.status = status).is_some()
    }

    pub(crate) fn set_type(&mut self, contract_id: i64, contract_type: i64) -> bool {
        self.contracts.get_mut(&contract_id).map(|c| c.contract_type = contract_type).is_some()
    }

    pub(crate) fn add_service(&mut self, contract_id: i64, service_id: i64, units: i64) -> Option<i64> {
        self.contracts.contains_key(&contract_id).then_some(())?;
        let id = self.id();
        self.services.insert(id, ContractService { contract_id, service_id, units, changes: Vec::new() });
        Some(id)
    }

    fn service_mut(&mut self, contract_id: i64, service_id: i64) -> Option<&mut ContractService> {
        self.services.values_mut().find(|s| s.contract_id == contract_id && s.service_id == service_id)
    }

    /// A technician makes the units `units` from `day` on (an adjustment made by hand).
    pub(crate) fn set_units_by_hand(&mut self, contract_id: i64, service_id: i64, units: i64, day: NaiveDate) -> bool {
        let Some(service) = self.service_mut(contract_id, service_id) else { return false };
        let now = service.units_on(month_end(day));
        service.changes.push((day, units - now));
        true
    }

    /// The units of a contract's service on `day` (its month's row).
    pub(crate) fn units_on(&self, contract_id: i64, service_id: i64, day: NaiveDate) -> Option<i64> {
        self.services.values().find(|s| s.contract_id == contract_id && s.service_id == service_id).map(|s| s.units_on(month_end(day)))
    }

    pub(crate) fn adjustments(&self, contract_id: i64) -> Vec<Value> {
        self.adjustments.iter().filter(|a| a["contractID"] == json!(contract_id)).cloned().collect()
    }

    pub(crate) fn get_contract(&self, id: i64) -> Value {
        self.contracts.get(&id).map_or(Value::Null, |c| {
            json!({"id": id, "contractName": c.name, "contractType": c.contract_type, "status": c.status, "companyID": c.company_id,
                   "startDate": format!("{}T00:00:00", c.start), "endDate": format!("{}T00:00:00", c.end)})
        })
    }

    pub(crate) fn query_services(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let conditions = conditions(req)?;
        let mut rows = Vec::new();
        for (id, service) in &self.services {
            if self.matches(*id, service, &conditions, None)? {
                rows.push(
                    json!({"id": id, "contractID": service.contract_id, "serviceID": service.service_id, "unitPrice": 4.5, "unitCost": 1.0,
                                 "invoiceDescription": null, "internalDescription": null}),
                );
            }
        }
        items(rows)
    }

    pub(crate) fn query_units(&self, req: &SimRequest) -> Result<Response, ApiError> {
        let conditions = conditions(req)?;
        let mut rows = Vec::new();
        for (id, service) in &self.services {
            let Some(contract) = self.contracts.get(&service.contract_id) else { continue };
            let mut month = month_start(contract.start);
            while month <= contract.end {
                let end = month_end(month);
                if self.matches(*id, service, &conditions, Some((month, end)))? {
                    rows.push(
                        json!({"id": id * 1000 + i64::from(month.month()), "contractID": service.contract_id, "contractServiceID": id,
                        "serviceID": service.service_id, "startDate": format!("{month}T00:00:00"), "endDate": format!("{end}T00:00:00"),
                        "units": service.units_on(end), "price": 4.5, "cost": 1.0, "approveAndPostDate": null}),
                    );
                }
                month = end.succ_opt().unwrap_or(end);
                if month == end {
                    break;
                }
            }
        }
        items(rows)
    }

    fn matches(
        &self,
        id: i64,
        service: &ContractService,
        conditions: &[(String, String, Value)],
        period: Option<(NaiveDate, NaiveDate)>,
    ) -> Result<bool, ApiError> {
        for (field, op, value) in conditions {
            let holds = match (field.as_str(), op.as_str(), period) {
                ("id", "eq", _) => value.as_i64() == Some(id),
                ("contractid", "eq", _) => value.as_i64() == Some(service.contract_id),
                ("serviceid", "eq", _) => value.as_i64() == Some(service.service_id),
                ("startdate", "lte", Some((start, _))) => date_of(value).is_some_and(|d| start <= d),
                ("enddate", "gte", Some((_, end))) => date_of(value).is_some_and(|d| end >= d),
                _ => return Err(ApiError::invalid(format!("filter: {op} on {field} is not supported by this simulator"))),
            };
            if !holds {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn create_adjustment(&mut self, req: &SimRequest) -> Result<Response, ApiError> {
        let body: Value = req.json()?;
        let object = body.as_object().ok_or_else(|| ApiError::invalid("the body must be a ContractServiceAdjustment object"))?;
        let mut fields: Map<String, Value> = Map::new();
        for (key, value) in object {
            let Some(name) = ADJUSTMENT_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(key)) else {
                return Err(ApiError::invalid(format!("Unknown property '{key}' on ContractServiceAdjustment")));
            };
            fields.insert((*name).to_owned(), value.clone());
        }
        let contract_id =
            fields.get("contractID").and_then(Value::as_i64).ok_or_else(|| ApiError::invalid("contractID: a value is required"))?;
        let effective =
            fields.get("effectiveDate").and_then(date_of).ok_or_else(|| ApiError::invalid("effectiveDate: a date is required"))?;
        let change =
            fields.get("unitChange").and_then(Value::as_i64).ok_or_else(|| ApiError::invalid("unitChange: an integer is required"))?;
        if change == 0 {
            return Err(ApiError::invalid("unitChange: the value 0 is not valid (a change of units must not be zero)"));
        }
        let contract = self
            .contracts
            .get(&contract_id)
            .ok_or_else(|| ApiError::invalid(format!("contractID: contract {contract_id} does not exist")))?;
        if contract.status != ACTIVE {
            return Err(ApiError::invalid(format!("contractID: the value {contract_id} is not valid: the contract is not active")));
        }
        if contract.contract_type != RECURRING_SERVICE {
            return Err(ApiError::invalid(format!("contractID: the value {contract_id} is not valid: not a recurring service contract")));
        }
        if effective < contract.start || effective > contract.end {
            return Err(ApiError::invalid(format!(
                "effectiveDate: the value {effective} is not valid: outside the contract ({} to {})",
                contract.start, contract.end
            )));
        }
        let by_service = fields.get("serviceID").and_then(Value::as_i64);
        let by_line = fields.get("contractServiceID").and_then(Value::as_i64);
        let line = match (by_line, by_service) {
            (Some(line), _) => self.services.get_mut(&line).filter(|s| s.contract_id == contract_id),
            (None, Some(service)) => self.services.values_mut().find(|s| s.contract_id == contract_id && s.service_id == service),
            (None, None) => return Err(ApiError::invalid("serviceID: a serviceID or contractServiceID is required")),
        }
        .ok_or_else(|| ApiError::invalid(format!("serviceID: the value is not valid: the service is not on contract {contract_id}")))?;
        if line.units_on(month_end(effective)) + change < 0 {
            return Err(ApiError::invalid("unitChange: the value is not valid: the units cannot go below zero"));
        }
        line.changes.push((effective, change));
        let id = self.id();
        fields.insert("id".into(), json!(id));
        self.adjustments.push(Value::Object(fields));
        Ok(json_response(StatusCode::OK, &json!({"itemId": id})))
    }
}
