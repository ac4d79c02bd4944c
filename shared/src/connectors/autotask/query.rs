//! Autotask's query language and paging: `POST {Entity}/query` with `{"MaxRecords",
//! "IncludeFields", "filter"}`, then `GET` of each absolute `pageDetails.nextPageUrl` (checked
//! against the destination policy and the zone's origin) until it is null.

use super::client::AutotaskClient;
use crate::error::SinkError;
use reqwest::Method;
use serde_json::{Value, json};

/// Autotask's largest page, and the most conditions (ids of an `in`) one query may hold.
pub const MAX_RECORDS: usize = 500;
/// Pages read before a query is given up (500 × 100 records).
pub const MAX_PAGES: usize = 100;

/// `{"op": op, "field": field, "value": value}`.
#[must_use]
pub fn condition(op: &str, field: &str, value: impl Into<Value>) -> Value {
    json!({"op": op, "field": field, "value": value.into()})
}

/// A query body: every condition ANDed, only `fields` returned, `max_records` per page.
#[must_use]
pub fn query_body(max_records: usize, fields: &[&str], filter: Vec<Value>) -> Value {
    json!({"MaxRecords": max_records.clamp(1, MAX_RECORDS), "IncludeFields": fields, "filter": filter})
}

/// A picklist or id value as Autotask stores it: an integer when the text is one.
#[must_use]
pub fn wire_value(text: &str) -> Value {
    text.trim().parse::<i64>().map_or_else(|_| Value::String(text.trim().to_owned()), Value::from)
}

/// A field's value as text (`5` and `"5"` both give `5`; empty for none).
#[must_use]
pub fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The `id` of an item, as text.
#[must_use]
pub fn item_id(item: &Value) -> Option<String> {
    match item.get("id")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

impl AutotaskClient {
    /// Runs a query on `entity`, handing each page's items to `visit` until it returns `true`
    /// (then `Ok(true)`) or the pages end (`Ok(false)`).
    pub(super) async fn query_pages(
        &self,
        entity: &str,
        body: &Value,
        operation: &str,
        mut visit: impl FnMut(&[Value]) -> bool,
    ) -> Result<bool, SinkError> {
        let mut page = self.send(Method::POST, &format!("{entity}/query"), body, operation).await?;
        for _ in 0..MAX_PAGES {
            let items = page.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            if visit(items) {
                return Ok(true);
            }
            let Some(next) = page.pointer("/pageDetails/nextPageUrl").and_then(Value::as_str).filter(|u| !u.is_empty()) else {
                return Ok(false);
            };
            let url = self.next_page(next).await?;
            page = self.call(Method::GET, url, None, operation).await?;
        }
        Err(SinkError::Rejected(format!("{operation}: more than {} pages of results", MAX_PAGES)))
    }

    /// Every item a query finds (following pages).
    pub(super) async fn query_all(&self, entity: &str, body: &Value, operation: &str) -> Result<Vec<Value>, SinkError> {
        let mut all = Vec::new();
        self.query_pages(entity, body, operation, |items| {
            all.extend_from_slice(items);
            false
        })
        .await?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_bounded_to_autotasks_page_size() {
        let body = query_body(1000, &["id"], vec![condition("eq", "externalID", "vigil:a")]);
        assert_eq!(
            body,
            json!({"MaxRecords": 500, "IncludeFields": ["id"], "filter": [{"op": "eq", "field": "externalID", "value": "vigil:a"}]})
        );
        assert_eq!(query_body(0, &[], vec![])["MaxRecords"], 1);
    }

    #[test]
    fn numeric_texts_go_on_the_wire_as_integers() {
        assert_eq!(wire_value("29683481"), json!(29_683_481));
        assert_eq!(wire_value(" -2 "), json!(-2));
        assert_eq!(wire_value("abc"), json!("abc"));
        assert_eq!(item_id(&json!({"id": 7001})), Some("7001".into()));
        assert_eq!(item_id(&json!({"id": null})), None);
    }
}
