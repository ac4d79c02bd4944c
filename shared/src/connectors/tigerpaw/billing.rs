//! Tigerpaw as a **report-only** [`BillingTarget`]: a service agreement (`agreement_id` = the
//! agreement number) and an additional charge on it (`product_id` = the charge's price book item,
//! `SpecialItemId`), `shared/reference/psa-apis.md` §4.7 and `licences-billing-outputs.md` §3.
//!
//! * **Check**: `GET api/agreements/{n}/details`; a 404 is an agreement that does not exist, a
//!   `Status` other than `Active` (`Cancelled`, `Expired`) one that is cancelled or ended.
//!   The details' member names and status words are not published (**unconfirmed**; the
//!   simulator follows this reading).
//! * **Quantity**: `GET api/agreements/{n}/additionalcharges` (confirmed, read-only in the 18.2.1
//!   SDK): the sum of `Quantity` over the charges whose `SpecialItemId` is the product; none,
//!   the product is not on the agreement (`None`).
//! * **Set**: never. The REST 18.2.1 API exposes additional charges read-only; integrations that
//!   write them (Kaspersky) probably go through the ASMX API, and whether the REST contract
//!   line items (`itemscovered`) drive invoicing is unconfirmed. So [`BillingTarget::writes`] is
//!   `false`: the sync reports the current quantity next to Vigil's figure and writes nothing.

use super::TigerpawClient;
use crate::billing::sync::{BillingLine, BillingPeriod};
use crate::error::SinkError;
use crate::ports::BillingTarget;
use async_trait::async_trait;
use serde_json::Value;

fn agreement(line: &BillingLine) -> Result<i64, SinkError> {
    line.agreement_id
        .trim()
        .parse::<i64>()
        .map_err(|_| SinkError::Invalid(format!("agreement {:?} is not a Tigerpaw agreement number", line.agreement_id)))
}

/// A charge's price book item as text (Tigerpaw item ids are codes; a number is read as one).
fn item_of(charge: &Value) -> Option<String> {
    match charge.get("SpecialItemId")? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[async_trait]
impl BillingTarget for TigerpawClient {
    fn writes(&self) -> bool {
        false
    }

    async fn check_line(&self, line: &BillingLine) -> Result<(), SinkError> {
        let number = agreement(line)?;
        let details = self
            .get_optional(&format!("api/agreements/{number}/details"), "read agreement")
            .await?
            .ok_or_else(|| SinkError::Rejected(format!("agreement {number} does not exist")))?;
        let status = details.get("Status").and_then(Value::as_str).unwrap_or_default().trim();
        if !status.eq_ignore_ascii_case("active") {
            let shown = if status.is_empty() { "not active" } else { status };
            return Err(SinkError::Rejected(format!("agreement {number} is {shown} (cancelled or ended)")));
        }
        Ok(())
    }

    async fn quantity(&self, line: &BillingLine, _period: &BillingPeriod) -> Result<Option<u32>, SinkError> {
        let number = agreement(line)?;
        let Some(charges) = self.get_optional(&format!("api/agreements/{number}/additionalcharges"), "read additional charges").await?
        else {
            return Err(SinkError::Rejected(format!("agreement {number} does not exist")));
        };
        let charges = charges.as_array().ok_or_else(|| SinkError::Unavailable("read additional charges: not a list".into()))?;
        let product = line.product_id.trim();
        let quantities: Vec<i64> = charges
            .iter()
            .filter(|c| item_of(c).is_some_and(|item| item.eq_ignore_ascii_case(product)))
            .map(|c| c.get("Quantity").and_then(Value::as_f64).map_or(0, |q| q.round() as i64))
            .collect();
        if quantities.is_empty() {
            return Ok(None);
        }
        Ok(Some(u32::try_from(quantities.iter().sum::<i64>().max(0)).unwrap_or(u32::MAX)))
    }

    async fn set_quantity(&self, _line: &BillingLine, _period: &BillingPeriod, _found: Option<u32>, _target: u32) -> Result<(), SinkError> {
        Err(SinkError::Rejected("Tigerpaw billing is report-only: the REST API reads agreement additional charges only".into()))
    }
}
