//! The advanced searches: `POST /api/serviceorders/search` (SearchType `ServiceOrderNumber`,
//! `Reference`, `AccountNumber`, `Status`, `Type`) and `POST /api/accounts/search` (SearchType
//! `AccountName`, `AccountNumber`), both `{"Criteria": [{"SearchType", "MatchType",
//! "Criteria"}], "PageSize", "StartRow"}`. Criteria combine with AND and an empty list matches
//! everything (**unconfirmed**); text matches ignore case; `StartRow` counts from 1, `PageSize`
//! defaults to 50 and is capped at 100, and `NextRow` is the next page's `StartRow` or `null`
//! after the last page (**unconfirmed**).

use serde_json::{Map, Value, json};

use super::orders::{Kind, check_members, int, summary, text};
use super::server::{ApiError, Shared, SimRequest};

const PAGE_SIZE_DEFAULT: usize = 50;
const PAGE_SIZE_MAX: usize = 100;

const SEARCH: &[(&str, Kind)] = &[("Criteria", Kind::Array), ("PageSize", Kind::Int), ("StartRow", Kind::Int)];
const CRITERION: &[(&str, Kind)] = &[
    ("SearchType", Kind::Text),
    ("MatchType", Kind::Text),
    ("Criteria", Kind::Text),
    ("CategoryName", Kind::Text),
    ("CustomFieldName", Kind::Text),
];

/// The page of `items` a search asks for, and its answer under `member`.
fn page(items: Vec<Value>, body: &Map<String, Value>, member: &str) -> Value {
    let size =
        int(body, "PageSize").and_then(|s| usize::try_from(s).ok()).filter(|s| *s > 0).unwrap_or(PAGE_SIZE_DEFAULT).min(PAGE_SIZE_MAX);
    let start = int(body, "StartRow").and_then(|s| usize::try_from(s).ok()).filter(|s| *s > 0).unwrap_or(1);
    let total = items.len();
    let chunk: Vec<Value> = items.into_iter().skip(start - 1).take(size).collect();
    let next = (start - 1 + chunk.len() < total).then_some(start + chunk.len());
    json!({member: chunk, "PageSize": size, "NextRow": next, "TotalCount": total, "Success": true, "Message": null})
}

/// Whether `value` matches `criterion` under `match_type` (text case-insensitively; the
/// comparisons numerically when both are numbers).
fn matches(value: &str, match_type: &str, criterion: &str) -> Result<bool, ApiError> {
    let (v, c) = (value.to_lowercase(), criterion.to_lowercase());
    let ordering = match (value.parse::<f64>(), criterion.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(v.cmp(&c)),
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    Ok(match match_type.to_ascii_lowercase().as_str() {
        "startswith" => v.starts_with(&c),
        "endswith" => v.ends_with(&c),
        "contains" => v.contains(&c),
        "equal" => v == c,
        "greaterthan" => ordering == Some(Greater),
        "greaterthanequal" => matches!(ordering, Some(Greater | Equal)),
        "lessthan" => ordering == Some(Less),
        "lessthanequal" => matches!(ordering, Some(Less | Equal)),
        other => return Err(ApiError::bad_request(format!("Invalid MatchType '{other}'."))),
    })
}

/// Parses the criteria: `(SearchType, MatchType, Criteria)` each.
fn criteria(body: &Map<String, Value>) -> Result<Vec<(String, String, String)>, ApiError> {
    check_members(body, "TsiWebAdvancedSearchRequest", &[SEARCH])?;
    let mut out = Vec::new();
    for entry in body.get("Criteria").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let Value::Object(entry) = entry else { return Err(ApiError::bad_request("Each criterion must be an object.")) };
        check_members(entry, "TsiWebSearchCriteria", &[CRITERION])?;
        let search_type = text(entry, "SearchType").ok_or_else(|| ApiError::bad_request("SearchType is required."))?;
        let match_type = text(entry, "MatchType").unwrap_or("StartsWith");
        out.push((search_type.to_string(), match_type.to_string(), text(entry, "Criteria").unwrap_or_default().to_string()));
    }
    Ok(out)
}

impl Shared {
    pub(crate) fn search_orders(&self, req: &SimRequest) -> Result<Value, ApiError> {
        let body = req.object()?;
        let criteria = criteria(&body)?;
        let state = self.lock();
        let mut found = Vec::new();
        for (number, stored) in &state.orders {
            let mut all = true;
            for (search_type, match_type, criterion) in &criteria {
                let field = |name: &str| stored.order.get(name).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
                let value = match search_type.to_ascii_lowercase().as_str() {
                    "serviceordernumber" => Some(number.to_string()),
                    "reference" => field("Reference"),
                    "accountnumber" => field("AccountNumber"),
                    "status" => field("Status"),
                    "type" => field("ServiceOrderType"),
                    _ => return Err(ApiError::bad_request(format!("Invalid SearchType '{search_type}'."))),
                };
                // An order without the member matches nothing (the MatchType is still checked).
                let hit = matches(value.as_deref().unwrap_or_default(), match_type, criterion)?;
                all &= value.is_some() && hit;
            }
            if all {
                found.push(summary(*number, stored, &state.tables));
            }
        }
        Ok(page(found, &body, "ServiceOrders"))
    }

    pub(crate) fn search_accounts(&self, req: &SimRequest) -> Result<Value, ApiError> {
        let body = req.object()?;
        let criteria = criteria(&body)?;
        let state = self.lock();
        let mut found = Vec::new();
        for (number, name) in &state.tables.accounts {
            let mut all = true;
            for (search_type, match_type, criterion) in &criteria {
                let value = match search_type.to_ascii_lowercase().as_str() {
                    "accountname" => name.clone(),
                    "accountnumber" => number.to_string(),
                    _ => return Err(ApiError::bad_request(format!("Invalid SearchType '{search_type}'."))),
                };
                all &= matches(&value, match_type, criterion)?;
            }
            if all && let Some(account) = state.tables.account_json(*number) {
                found.push(account);
            }
        }
        Ok(page(found, &body, "Accounts"))
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
    fn pages_count_rows_from_one_and_name_the_next_row() {
        let items: Vec<Value> = (0..120).map(|i| json!(i)).collect();
        let first = page(items.clone(), &object(json!({"PageSize": 500})), "X");
        assert_eq!(
            (first["PageSize"].clone(), first["NextRow"].clone(), first["TotalCount"].clone()),
            (json!(100), json!(101), json!(120))
        );
        let last = page(items, &object(json!({"PageSize": 100, "StartRow": 101})), "X");
        assert_eq!(last["X"].as_array().map(Vec::len), Some(20));
        assert!(last["NextRow"].is_null());
    }

    #[test]
    fn match_types_compare_text_and_numbers() {
        assert!(matches("Vigil:ABC", "Equal", "vigil:abc").unwrap_or(false));
        assert!(matches("Contoso Ltd", "Contains", "toso").unwrap_or(false));
        assert!(matches("12346", "GreaterThan", "12345").unwrap_or(false));
        assert!(!matches("9", "GreaterThan", "10").unwrap_or(true), "numbers compare as numbers");
        assert!(matches("x", "Sideways", "x").is_err());
    }
}
