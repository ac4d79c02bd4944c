//! HaloPSA as a **report-only** [`BillingTarget`]: a recurring invoice (`agreement_id` = its
//! id) and a line on it (`product_id` = the line's item id, `item_id`),
//! `shared/reference/licences-billing-outputs.md` §4.
//!
//! * **Check**: `GET /api/RecurringInvoice/{id}` (the call that reliably returns the lines); a
//!   404 is an invoice that does not exist, `disabled` one that is cancelled.
//! * **Quantity**: the `qty_order` of the invoice's line whose `item_id` is the product (several
//!   lines are summed); no such line, the product is not on the invoice (`None`). That a line
//!   names its item by `item_id` is **unconfirmed** (the simulator follows this reading).
//! * **Set**: never. An update is `POST /api/RecurringInvoice` with the invoice and its `id`
//!   (confirmed), but the line update shape (`lines[]` with the line `id` and `qty_order`) is
//!   unconfirmed, and a wrong shape could replace or drop invoice lines. So
//!   [`BillingTarget::writes`] is `false`: the sync reports the current quantity next to Vigil's
//!   figure and writes nothing.

use super::HaloPsaClient;
use super::client::numeric;
use crate::billing::sync::{BillingLine, BillingPeriod};
use crate::error::SinkError;
use crate::ports::BillingTarget;
use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::Value;

impl HaloPsaClient {
    /// `GET /api/RecurringInvoice/{id}`; refused naming it when Halo answers 404.
    async fn recurring_invoice(&self, id: i64) -> Result<Value, SinkError> {
        let answer = self.exchange(Method::GET, &format!("RecurringInvoice/{id}"), &[], None, "read recurring invoice").await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(SinkError::Rejected(format!("recurring invoice {id} does not exist")));
        }
        self.read(answer, "read recurring invoice")
    }
}

fn line_item(line: &Value) -> Option<i64> {
    match line.get("item_id")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[async_trait]
impl BillingTarget for HaloPsaClient {
    fn writes(&self) -> bool {
        false
    }

    async fn check_line(&self, line: &BillingLine) -> Result<(), SinkError> {
        let id = numeric("recurring invoice", &line.agreement_id)?;
        numeric("item", &line.product_id)?;
        let invoice = self.recurring_invoice(id).await?;
        if invoice.get("disabled").and_then(Value::as_bool) == Some(true) {
            return Err(SinkError::Rejected(format!("recurring invoice {id} is disabled (cancelled or ended)")));
        }
        Ok(())
    }

    async fn quantity(&self, line: &BillingLine, _period: &BillingPeriod) -> Result<Option<u32>, SinkError> {
        let id = numeric("recurring invoice", &line.agreement_id)?;
        let item = numeric("item", &line.product_id)?;
        let invoice = self.recurring_invoice(id).await?;
        let quantities: Vec<f64> = invoice
            .get("lines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|l| line_item(l) == Some(item))
            .map(|l| l.get("qty_order").and_then(Value::as_f64).unwrap_or(0.0))
            .collect();
        if quantities.is_empty() {
            return Ok(None);
        }
        let total = quantities.iter().sum::<f64>().max(0.0).round();
        Ok(Some(if total >= f64::from(u32::MAX) { u32::MAX } else { total as u32 }))
    }

    async fn set_quantity(&self, _line: &BillingLine, _period: &BillingPeriod, _found: Option<u32>, _target: u32) -> Result<(), SinkError> {
        Err(SinkError::Rejected("HaloPSA billing is report-only: the recurring-invoice line update shape is unconfirmed".into()))
    }
}
