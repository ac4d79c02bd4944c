//! Service agreements and their additional charges for the Tigerpaw simulator, as the
//! report-only billing sync reads them (`shared/reference/psa-apis.md` §4.7,
//! `licences-billing-outputs.md` §3):
//!
//! * `GET /api/agreements/{n}/details` → the agreement: `{"AgreementNumber", "AccountNumber",
//!   "Description", "Status", "StartDate", "EndDate"}` (the path is the 18.2.1 SDK's; the member
//!   names and the `Status` words `Active` / `Cancelled` / `Expired` are **unconfirmed**), an
//!   unknown agreement `404 {"Message"}` (**unconfirmed**, as for service orders);
//! * `GET /api/agreements/{n}/additionalcharges` → a bare array of the agreement's additional
//!   charges with the SDK's members `DetailId`, `SpecialItemId` (the price book item),
//!   `ItemDescription`, `Quantity` (an integer), `Price`, `PriceLevel`, `Source`,
//!   `PrintWhenQuantityZero`, `DeleteAfterInvoicing`, `DateAdded`, `UseFlatPrice` **[confirmed
//!   S-TP2]**; an unknown agreement `404`;
//! * the 18.2.1 REST API exposes additional charges **read-only**: any `POST`, `PUT`, `PATCH` or
//!   `DELETE` below `/api/agreements` answers `405 {"Message"}` as ASP.NET Web API does for a
//!   verb a resource does not support, and is counted ([`Agreements::write_attempts`]) so a test
//!   can show that nothing tried to write.
//!
//! The charges themselves change only through the handle (a user in the Tigerpaw GUI, or the
//! ASMX integration the reference infers).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};

/// An agreement and its additional charges.
struct Agreement {
    account: i64,
    description: String,
    status: String,
    start: NaiveDate,
    end: Option<NaiveDate>,
    charges: Vec<Value>,
}

/// The simulator's agreements; in its state.
#[derive(Default)]
pub(crate) struct Agreements {
    agreements: BTreeMap<i64, Agreement>,
    next_agreement: i64,
    next_detail: i64,
    write_attempts: u64,
}

impl Agreements {
    /// Adds an active agreement of `account`; its number.
    pub(crate) fn add(&mut self, account: i64, description: &str, start: NaiveDate) -> i64 {
        self.next_agreement += 1;
        let number = 70_000 + self.next_agreement;
        self.agreements.insert(
            number,
            Agreement { account, description: description.to_owned(), status: "Active".into(), start, end: None, charges: Vec::new() },
        );
        number
    }

    /// Sets the agreement's `Status` (`Cancelled`, `Expired`, …) and, when it ends, its end date.
    pub(crate) fn set_status(&mut self, number: i64, status: &str, end: Option<NaiveDate>) -> bool {
        self.agreements
            .get_mut(&number)
            .map(|a| {
                status.clone_into(&mut a.status);
                a.end = end;
            })
            .is_some()
    }

    /// Sets the quantity of the agreement's charge for `item` (adding the charge when absent);
    /// its `DetailId`.
    pub(crate) fn set_charge(&mut self, number: i64, item: &str, quantity: i64, added: NaiveDate) -> Option<i64> {
        let agreement = self.agreements.get_mut(&number)?;
        if let Some(charge) = agreement.charges.iter_mut().find(|c| c["SpecialItemId"] == item) {
            charge["Quantity"] = json!(quantity);
            return charge["DetailId"].as_i64();
        }
        self.next_detail += 1;
        let detail = 880_000 + self.next_detail;
        agreement.charges.push(json!({
            "DetailId": detail, "SpecialItemId": item, "ItemDescription": format!("{item} (per protected mailbox)"),
            "Quantity": quantity, "Price": 3.5, "PriceLevel": "Standard", "Source": "Agreement",
            "PrintWhenQuantityZero": false, "DeleteAfterInvoicing": false,
            "DateAdded": format!("{added}T00:00:00"), "UseFlatPrice": false,
        }));
        Some(detail)
    }

    /// `GET /api/agreements/{n}/details`.
    pub(crate) fn details(&self, number: i64) -> Option<Value> {
        self.agreements.get(&number).map(|a| {
            json!({
                "AgreementNumber": number, "AccountNumber": a.account, "Description": a.description, "Status": a.status,
                "StartDate": format!("{}T00:00:00", a.start), "EndDate": a.end.map(|d| format!("{d}T00:00:00")),
            })
        })
    }

    /// `GET /api/agreements/{n}/additionalcharges`.
    pub(crate) fn charges(&self, number: i64) -> Option<Value> {
        self.agreements.get(&number).map(|a| Value::Array(a.charges.clone()))
    }

    /// Notes a write the API refused.
    pub(crate) fn refuse_write(&mut self) {
        self.write_attempts += 1;
    }

    /// How many writes to agreements were attempted (all refused).
    pub(crate) fn write_attempts(&self) -> u64 {
        self.write_attempts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_set_in_place_and_read_with_the_sdk_members() {
        let mut agreements = Agreements::default();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let n = agreements.add(1053145, "Managed security", day);
        let detail = agreements.set_charge(n, "VIGIL-MBX", 12, day).unwrap();
        assert_eq!(agreements.set_charge(n, "VIGIL-MBX", 14, day), Some(detail));
        let charges = agreements.charges(n).unwrap();
        assert_eq!(charges.as_array().unwrap().len(), 1);
        assert_eq!(charges[0]["Quantity"], 14);
        assert!(agreements.details(n + 1).is_none());
        assert!(agreements.set_status(n, "Cancelled", Some(day)));
        assert_eq!(agreements.details(n).unwrap()["Status"], "Cancelled");
    }
}
