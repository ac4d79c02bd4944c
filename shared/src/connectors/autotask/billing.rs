//! Autotask as a [`BillingTarget`]: a recurring-service contract (`agreement_id` = the contract
//! id) and a service on it (`product_id` = the service id), `shared/reference/psa-apis.md` §2.7.
//!
//! * **Check**: `GET Contracts/{id}` (`{"item": null}`: it does not exist), active (`status` 1)
//!   and a recurring-service contract (`contractType` 7), and the service on it
//!   (`ContractServices/query` on `contractID` and `serviceID`).
//! * **Quantity**: the `units` of the `ContractServiceUnits` row of the service whose period
//!   holds the effective date (`startDate lte`, `endDate gte`); no row, the service is not on
//!   the contract (`None`).
//! * **Set**: `POST ContractServiceAdjustments` with `contractID`, `serviceID`, `effectiveDate`
//!   and `unitChange` = target − current, a **delta** (no adjustment when it is zero). Whether a
//!   retry after a lost answer would add a second delta is decided by the sync's record, which
//!   reads the units again first ([`crate::billing::sync`]).
//!
//! Unconfirmed (the reference marks the delta semantics so): that the period's unit row
//! reflects an adjustment effective inside it; the simulator follows this reading.

use super::AutotaskClient;
use crate::billing::sync::{BillingLine, BillingPeriod};
use crate::error::SinkError;
use crate::ports::BillingTarget;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

const RECURRING_SERVICE: i64 = 7;
const ACTIVE: i64 = 1;

fn ids(line: &BillingLine) -> Result<(i64, i64), SinkError> {
    let contract = line
        .agreement_id
        .parse::<i64>()
        .map_err(|_| SinkError::Invalid(format!("contract {:?} is not an Autotask contract id", line.agreement_id)))?;
    let service = line
        .product_id
        .parse::<i64>()
        .map_err(|_| SinkError::Invalid(format!("service {:?} is not an Autotask service id", line.product_id)))?;
    Ok((contract, service))
}

fn eq(field: &str, value: i64) -> Value {
    json!({"op": "eq", "field": field, "value": value})
}

#[async_trait]
impl BillingTarget for AutotaskClient {
    fn writes(&self) -> bool {
        true
    }

    async fn check_line(&self, line: &BillingLine) -> Result<(), SinkError> {
        let (contract, service) = ids(line)?;
        let found = self.get(&format!("Contracts/{contract}"), "read contract").await?;
        let item =
            found.get("item").filter(|i| !i.is_null()).ok_or_else(|| SinkError::Rejected(format!("contract {contract} does not exist")))?;
        if item.get("status").and_then(Value::as_i64) != Some(ACTIVE) {
            return Err(SinkError::Rejected(format!("contract {contract} is not active (cancelled or ended)")));
        }
        if item.get("contractType").and_then(Value::as_i64) != Some(RECURRING_SERVICE) {
            return Err(SinkError::Rejected(format!("contract {contract} is not a recurring service contract")));
        }
        let body = json!({"MaxRecords": 10, "filter": [eq("contractID", contract), eq("serviceID", service)]});
        if self.query_all("ContractServices", &body, "find contract service").await?.is_empty() {
            return Err(SinkError::Rejected(format!("service {service} is not on contract {contract}")));
        }
        Ok(())
    }

    async fn quantity(&self, line: &BillingLine, period: &BillingPeriod) -> Result<Option<u32>, SinkError> {
        let (contract, service) = ids(line)?;
        let day = period.effective.to_string();
        let body = json!({"MaxRecords": 10, "filter": [eq("contractID", contract), eq("serviceID", service),
            {"op": "lte", "field": "startDate", "value": day}, {"op": "gte", "field": "endDate", "value": day}]});
        let rows = self.query_all("ContractServiceUnits", &body, "read contract service units").await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let units = row.get("units").and_then(Value::as_f64).ok_or_else(|| SinkError::Rejected("a unit row without units".into()))?;
        Ok(Some(units.max(0.0).round() as u32))
    }

    async fn set_quantity(&self, line: &BillingLine, period: &BillingPeriod, found: Option<u32>, target: u32) -> Result<(), SinkError> {
        let (contract, service) = ids(line)?;
        let change = i64::from(target) - i64::from(found.unwrap_or(0));
        if change == 0 {
            return Ok(());
        }
        let body = json!({"contractID": contract, "serviceID": service, "effectiveDate": format!("{}T00:00:00", period.effective), "unitChange": change});
        self.send(Method::POST, "ContractServiceAdjustments", &body, "adjust contract service units").await?;
        Ok(())
    }
}
