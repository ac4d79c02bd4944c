//! ConnectWise Manage as a [`BillingTarget`]: an agreement (`agreement_id` = the agreement id)
//! and an addition of a catalog product on it (`product_id` = the catalog item's id, or its
//! `identifier`), `shared/reference/psa-apis.md` §1 (billing).
//!
//! * **Check**: `GET /finance/agreements/{id}` (a JSON `404`: it does not exist), neither
//!   `cancelledFlag` nor an `endDate` already passed (unless `noEndingDateFlag`), and the product
//!   in the catalog (`GET /procurement/catalog/{id}`, or `conditions=identifier="…"`), not
//!   `inactiveFlag`. The product need not be on the agreement yet: the first set adds it.
//! * **Quantity**: the `quantity` of the agreement's addition of the product
//!   (`GET /finance/agreements/{id}/additions?conditions=product/id=…`), an addition cancelled
//!   on or before the effective date left out; none, the product is not on it (`None`).
//! * **Set**: an **absolute** quantity, so a retry repeats the same value:
//!   `PATCH …/additions/{additionId}` `[{"op":"replace","path":"/quantity","value":N}]` on the
//!   addition found, or, when there is none, `POST …/additions` with `product`, `quantity`,
//!   `billCustomer` `Billable` and `effectiveDate`. A `POST` whose answer was lost is found by the
//!   next run's read (the sync reads the quantity before it writes), so no second addition.
//!
//! Unconfirmed (the reference confirms the GET forms and the `Addition` schema, not the write
//! verbs): that `POST` and `PATCH` on additions behave like ConnectWise's other resources, and
//! that ConnectWise itself refuses additions on a cancelled agreement (checked here first).

use super::ConnectWiseClient;
use super::http::Missing;
use crate::billing::sync::{BillingLine, BillingPeriod};
use crate::error::SinkError;
use crate::ports::BillingTarget;
use async_trait::async_trait;
use chrono::NaiveDate;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

/// How many additions of one product an agreement is read for (one is expected).
const MAX_ADDITION_PAGES: usize = 1;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Agreement {
    #[serde(default)]
    cancelled_flag: Option<bool>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    no_ending_date_flag: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogItem {
    id: i64,
    #[serde(default)]
    inactive_flag: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Addition {
    id: i64,
    #[serde(default)]
    quantity: Option<f64>,
    #[serde(default)]
    cancelled_date: Option<String>,
}

/// The day of a ConnectWise date-time (`2026-12-31T00:00:00Z`).
fn day_of(value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value.get(..10)?, "%Y-%m-%d").ok()
}

fn agreement_id(line: &BillingLine) -> Result<i64, SinkError> {
    line.agreement_id
        .trim()
        .parse::<i64>()
        .map_err(|_| SinkError::Invalid(format!("agreement {:?} is not a ConnectWise agreement id", line.agreement_id)))
}

/// `None`: the product is named by its identifier.
fn product_number(line: &BillingLine) -> Option<i64> {
    line.product_id.trim().parse::<i64>().ok()
}

fn gone_to(error: SinkError, what: String) -> SinkError {
    match error {
        SinkError::Gone(_) => SinkError::Rejected(what),
        other => other,
    }
}

impl ConnectWiseClient {
    /// The catalog item the line names (by id or identifier); refused when there is none.
    async fn product(&self, line: &BillingLine) -> Result<CatalogItem, SinkError> {
        let missing = format!("product {} does not exist in the ConnectWise catalog", line.product_id);
        if let Some(id) = product_number(line) {
            let path = format!("/procurement/catalog/{id}");
            return self.get(&path, &[], "read catalog item", Missing::Gone).await.map_err(|e| gone_to(e, missing));
        }
        let identifier = line.product_id.trim();
        if identifier.is_empty() || identifier.contains('"') || identifier.contains('\\') {
            return Err(SinkError::Invalid(format!("product {:?} is not a ConnectWise catalog identifier", line.product_id)));
        }
        let conditions = format!("identifier=\"{identifier}\"");
        let items: Vec<CatalogItem> =
            self.get_all("/procurement/catalog", &[("conditions", conditions.as_str())], "find catalog item", 1).await?;
        items.into_iter().next().ok_or(SinkError::Rejected(missing))
    }

    /// The agreement's current addition of `product` on `day`.
    async fn addition(&self, agreement: i64, product: i64, day: NaiveDate) -> Result<Option<Addition>, SinkError> {
        let path = format!("/finance/agreements/{agreement}/additions");
        let conditions = format!("product/id={product}");
        let additions: Vec<Addition> = self
            .get_all(&path, &[("conditions", conditions.as_str()), ("orderBy", "id asc")], "read agreement additions", MAX_ADDITION_PAGES)
            .await?;
        Ok(additions.into_iter().find(|a| a.cancelled_date.as_deref().and_then(day_of).is_none_or(|cancelled| cancelled > day)))
    }
}

#[async_trait]
impl BillingTarget for ConnectWiseClient {
    fn writes(&self) -> bool {
        true
    }

    async fn check_line(&self, line: &BillingLine) -> Result<(), SinkError> {
        let id = agreement_id(line)?;
        let agreement: Agreement = self
            .get(&format!("/finance/agreements/{id}"), &[], "read agreement", Missing::Gone)
            .await
            .map_err(|e| gone_to(e, format!("agreement {id} does not exist")))?;
        if agreement.cancelled_flag == Some(true) {
            return Err(SinkError::Rejected(format!("agreement {id} is cancelled")));
        }
        let today = chrono::Utc::now().date_naive();
        if agreement.no_ending_date_flag != Some(true)
            && let Some(end) = agreement.end_date.as_deref().and_then(day_of)
            && end < today
        {
            return Err(SinkError::Rejected(format!("agreement {id} ended on {end}")));
        }
        let product = self.product(line).await?;
        if product.inactive_flag == Some(true) {
            return Err(SinkError::Rejected(format!("product {} is inactive in the ConnectWise catalog", line.product_id)));
        }
        Ok(())
    }

    async fn quantity(&self, line: &BillingLine, period: &BillingPeriod) -> Result<Option<u32>, SinkError> {
        let agreement = agreement_id(line)?;
        let product = self.product(line).await?;
        let Some(addition) = self.addition(agreement, product.id, period.effective).await? else { return Ok(None) };
        Ok(Some(addition.quantity.unwrap_or(0.0).max(0.0).round() as u32))
    }

    async fn set_quantity(&self, line: &BillingLine, period: &BillingPeriod, found: Option<u32>, target: u32) -> Result<(), SinkError> {
        let agreement = agreement_id(line)?;
        if found == Some(target) {
            return Ok(());
        }
        let product = self.product(line).await?;
        let path = format!("/finance/agreements/{agreement}/additions");
        match self.addition(agreement, product.id, period.effective).await? {
            Some(addition) => {
                let patch = json!([{"op": "replace", "path": "/quantity", "value": target}]);
                let path = format!("{path}/{}", addition.id);
                self.call(Method::PATCH, &path, &[], Some(&patch), "set addition quantity", Missing::Rejected).await?;
            }
            None => {
                let body: Value = json!({
                    "product": {"id": product.id},
                    "quantity": target,
                    "billCustomer": "Billable",
                    "effectiveDate": format!("{}T00:00:00Z", period.effective),
                });
                self.call(Method::POST, &path, &[], Some(&body), "add agreement addition", Missing::Rejected).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connectwise_date_times_are_read_as_their_day() {
        assert_eq!(day_of("2026-12-31T00:00:00Z"), NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(day_of("soon"), None);
    }

    #[test]
    fn an_agreement_id_must_be_a_number_and_a_product_may_be_an_identifier() {
        let line = |a: &str, p: &str| BillingLine { agreement_id: a.into(), product_id: p.into() };
        assert!(matches!(agreement_id(&line("CW-1", "801")), Err(SinkError::Invalid(m)) if m.contains("CW-1")));
        assert_eq!(agreement_id(&line(" 301 ", "801")).unwrap(), 301);
        assert_eq!(product_number(&line("301", "801")), Some(801));
        assert_eq!(product_number(&line("301", "VIGIL-MBX")), None);
    }
}
