//! Audit records from the Office 365 Management Activity API, parsed leniently.
//!
//! The common schema is modelled strictly enough to key and route records (`Id`, `RecordType`,
//! `CreationTime`, `Operation`); every other field is kept as JSON so nothing is lost and unknown
//! record types never fail. The quirks of real data are handled here once: `CreationTime`
//! without `Z`, numbers as strings, `Parameters` as a Name/Value list *or* one cmdlet-line
//! string, `ClientIP` with ports and brackets.

use crate::ids::RecordId;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// Why a record cannot be used. The record is dead-lettered, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is not a JSON object")]
    NotAnObject,
    #[error("record field {0} is missing or empty")]
    Missing(&'static str),
    #[error("record field {field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

/// One audit record: the common fields, plus the whole record as received.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// `Id`: the dedupe key.
    pub id: RecordId,
    /// `RecordType` (number, also accepted as a numeric string).
    pub record_type: i64,
    /// `CreationTime`, UTC.
    pub creation_time: DateTime<Utc>,
    /// `Operation`, e.g. a cmdlet name.
    pub operation: String,
    /// `UserId`, the actor (may be a system account); empty when absent.
    pub user_id: String,
    /// `Workload`; empty when absent.
    pub workload: String,
    /// The record exactly as received.
    pub raw: Map<String, Value>,
}

impl AuditRecord {
    /// Parses a record from its JSON value.
    ///
    /// # Errors
    /// When a common field needed to key or route the record is missing or invalid.
    pub fn from_value(value: Value) -> Result<Self, RecordError> {
        let Value::Object(raw) = value else {
            return Err(RecordError::NotAnObject);
        };
        let id = match raw.get("Id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => RecordId::parse(id).map_err(|e| RecordError::InvalidField { field: "Id", reason: e.reason })?,
            _ => return Err(RecordError::Missing("Id")),
        };
        let record_type = raw
            .get("RecordType")
            .and_then(int_or_string)
            .ok_or(RecordError::InvalidField { field: "RecordType", reason: "not an integer".into() })?;
        let creation_time = match raw.get("CreationTime").and_then(Value::as_str) {
            Some(text) => parse_creation_time(text)
                .ok_or_else(|| RecordError::InvalidField { field: "CreationTime", reason: format!("unrecognised time {text:?}") })?,
            None => return Err(RecordError::Missing("CreationTime")),
        };
        let operation = match raw.get("Operation").and_then(Value::as_str) {
            Some(op) if !op.is_empty() => op.to_owned(),
            _ => return Err(RecordError::Missing("Operation")),
        };
        let text = |key: &str| raw.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok(Self { id, record_type, creation_time, operation, user_id: text("UserId"), workload: text("Workload"), raw })
    }

    /// A top-level string field, or `None` when absent or not a string.
    #[must_use]
    pub fn field_str(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }

    /// `ResultStatus` says the operation failed (`False`, `Failed`, `Failure`).
    #[must_use]
    pub fn failed(&self) -> bool {
        matches!(self.field_str("ResultStatus").map(str::to_ascii_lowercase).as_deref(), Some("false" | "failed" | "failure"))
    }

    /// The cmdlet parameters of an Exchange admin record, from either wire shape.
    #[must_use]
    pub fn parameters(&self) -> Vec<(String, String)> {
        self.raw.get("Parameters").and_then(name_value_list).unwrap_or_default()
    }

    /// The value of one cmdlet parameter (name compared case-insensitively).
    #[must_use]
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.parameters().into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// `ClientIP` without port or brackets; `None` when empty or `<null>`.
    #[must_use]
    pub fn client_ip(&self) -> Option<String> {
        self.field_str("ClientIP").and_then(normalise_client_ip)
    }
}

/// Accepts `42` and `"42"`.
#[must_use]
pub fn int_or_string(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses `CreationTime`: `2026-01-05T09:41:27` (no zone, UTC), with or without fraction,
/// or RFC 3339 with `Z`/offset.
#[must_use]
pub fn parse_creation_time(text: &str) -> Option<DateTime<Utc>> {
    if let Some(fast) = parse_plain_utc(text) {
        return Some(fast);
    }
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), format).ok())
        .map(|naive| naive.and_utc())
}

/// The form nearly every record uses, `YYYY-MM-DDTHH:MM:SS` (UTC, optionally with `Z`), read
/// without a format parser: this runs once per record on the hot path.
fn parse_plain_utc(text: &str) -> Option<DateTime<Utc>> {
    let b = text.strip_suffix('Z').unwrap_or(text).as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(number(0..4)?).ok()?, number(5..7)?, number(8..10)?)?;
    Some(date.and_hms_opt(number(11..13)?, number(14..16)?, number(17..19)?)?.and_utc())
}

/// Strips ports and brackets: `[2001:db8::1]:443` → `2001:db8::1`, `10.1.2.3:5000` → `10.1.2.3`.
#[must_use]
pub fn normalise_client_ip(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("<null>") {
        return None;
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next().map(str::to_owned);
    }
    // One colon: IPv4 (or host) with a port. More colons: a bare IPv6 address.
    if text.matches(':').count() == 1 {
        return text.split(':').next().map(str::to_owned);
    }
    Some(text.to_owned())
}

/// A Name/Value list in either wire shape: an array of `{"Name", "Value"}` objects (entries
/// without a string `Name` are skipped; a non-string `Value` is kept as its JSON text, a missing
/// or null one as `""`), or one cmdlet-line string (`-Identity "x" -Force "True"`). `null` is an
/// empty list; `None` when the value has neither shape (a number, a boolean, an object).
#[must_use]
pub fn name_value_list(value: &Value) -> Option<Vec<(String, String)>> {
    match value {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|item| {
                    let name = item.get("Name")?.as_str()?;
                    let value = match item.get("Value") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    };
                    Some((name.to_owned(), value))
                })
                .collect(),
        ),
        Value::String(line) => Some(parse_cmdlet_line(line)),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// A JSON document that may arrive encoded as a string (SCC alert `Data`, AIR `Data`,
/// `ModifiedProperties` values): a string is parsed a second time, an array or object is
/// returned as is. `None` for an empty or non-JSON string and for other values.
#[must_use]
pub fn json_in_string(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) if !text.trim().is_empty() => serde_json::from_str(text).ok(),
        Value::Array(_) | Value::Object(_) => Some(value.clone()),
        _ => None,
    }
}

/// Parses the one-string form of `Parameters`: `-Identity "x y" -Force "True" -Enabled`.
fn parse_cmdlet_line(line: &str) -> Vec<(String, String)> {
    let mut result = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '-' {
            continue;
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = match chars.peek() {
            Some('"') | Some('\'') => {
                let quote = chars.next().unwrap_or('"');
                let value: String = std::iter::from_fn(|| chars.next_if(|c| *c != quote)).collect();
                chars.next();
                value
            }
            Some('-') | None => String::new(),
            Some(_) => std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect(),
        };
        if !name.is_empty() {
            result.push((name, value));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inbox_rule() -> Value {
        json!({
            "CreationTime": "2026-01-05T09:41:27", "Id": "8d3c1f0a-5b62-4e8c-9a1d-3f7e2b6c4d10",
            "Operation": "New-InboxRule", "OrganizationId": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11",
            "RecordType": 1, "ResultStatus": "True", "UserKey": "10032001A2B3C4D5", "UserType": 0,
            "Version": 1, "Workload": "Exchange", "ClientIP": "[2001:db8:12::7]:51544",
            "ObjectId": "contoso.onmicrosoft.com\\alice\\Forward to external", "UserId": "alice@contoso.com",
            "Parameters": [
                {"Name": "ForwardTo", "Value": "drop@mail-collector.example"},
                {"Name": "Name", "Value": "Forward to external"}
            ]
        })
    }

    #[test]
    fn parses_the_documented_exchange_admin_record() {
        let record = AuditRecord::from_value(inbox_rule()).unwrap();
        assert_eq!(record.record_type, 1);
        assert_eq!(record.operation, "New-InboxRule");
        assert_eq!(record.creation_time.to_rfc3339(), "2026-01-05T09:41:27+00:00");
        assert_eq!(record.parameter("forwardto").as_deref(), Some("drop@mail-collector.example"));
        assert_eq!(record.client_ip().as_deref(), Some("2001:db8:12::7"));
        assert!(!record.failed());
    }

    #[test]
    fn accepts_record_type_as_string_and_unknown_types() {
        let mut value = inbox_rule();
        value["RecordType"] = json!("463");
        assert_eq!(AuditRecord::from_value(value).unwrap().record_type, 463);
    }

    #[test]
    fn rejects_records_without_id_or_with_bad_time() {
        let mut value = inbox_rule();
        value.as_object_mut().unwrap().remove("Id");
        assert_eq!(AuditRecord::from_value(value), Err(RecordError::Missing("Id")));
        let mut value = inbox_rule();
        value["CreationTime"] = json!("yesterday");
        assert!(matches!(AuditRecord::from_value(value), Err(RecordError::InvalidField { field: "CreationTime", .. })));
        assert_eq!(AuditRecord::from_value(json!([1])), Err(RecordError::NotAnObject));
    }

    #[test]
    fn parameters_given_as_one_cmdlet_line_are_understood() {
        let mut value = inbox_rule();
        value["Parameters"] = json!("-Name \"Fwd all\" -RedirectTo 'bob@evil.example' -StopProcessingRules");
        let record = AuditRecord::from_value(value).unwrap();
        assert_eq!(record.parameter("RedirectTo").as_deref(), Some("bob@evil.example"));
        assert_eq!(record.parameter("Name").as_deref(), Some("Fwd all"));
        assert_eq!(record.parameter("StopProcessingRules").as_deref(), Some(""));
    }

    #[test]
    fn the_fast_path_reads_the_plain_form_like_chrono_and_refuses_impossible_dates() {
        for text in ["2026-01-05T10:02:11", "2026-12-31T23:59:59Z", "2024-02-29T00:00:00"] {
            let slow = NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S").unwrap().and_utc();
            assert_eq!(parse_creation_time(text), Some(slow), "{text}");
        }
        for text in ["2026-02-30T10:02:11", "2026-01-05T25:02:11", "2026-01-05 10:02:1x", "20260105T100211"] {
            assert_eq!(parse_plain_utc(text), None, "{text}");
        }
    }

    #[test]
    fn creation_time_accepts_every_seen_format() {
        for text in ["2026-01-05T10:02:11", "2026-01-05T10:02:11Z", "2026-01-05T10:02:11.123", "2026-01-05T10:02:11.5+00:00"] {
            assert!(parse_creation_time(text).is_some(), "{text}");
        }
    }

    #[test]
    fn name_value_lists_come_in_every_wire_shape() {
        let pairs = |v: Value| name_value_list(&v);
        let expected = Some(vec![("Identity".to_owned(), "x".to_owned()), ("Force".to_owned(), "True".to_owned())]);
        assert_eq!(pairs(json!([{"Name": "Identity", "Value": "x"}, {"Name": "Force", "Value": "True"}])), expected);
        assert_eq!(pairs(json!("-Identity \"x\" -Force \"True\"")), expected);
        assert_eq!(
            pairs(json!([{"Name": "Count", "Value": 3}, {"Value": "nameless"}, {"Name": "Empty"}])),
            Some(vec![("Count".into(), "3".into()), ("Empty".into(), String::new())])
        );
        assert_eq!(pairs(Value::Null), Some(Vec::new()));
        assert_eq!(pairs(json!(42)), None);
        assert_eq!(pairs(json!({"Name": "x"})), None);
    }

    #[test]
    fn json_in_a_string_is_decoded_once_more() {
        assert_eq!(json_in_string(&json!("{\"f3u\":\"grace@contoso.com\"}")), Some(json!({"f3u": "grace@contoso.com"})));
        assert_eq!(json_in_string(&json!("[\r\n  true\r\n]")), Some(json!([true])));
        assert_eq!(json_in_string(&json!({"already": "decoded"})), Some(json!({"already": "decoded"})));
        assert_eq!(json_in_string(&json!("not json")), None);
        assert_eq!(json_in_string(&json!("")), None);
        assert_eq!(json_in_string(&json!(5)), None);
    }

    #[test]
    fn client_ip_forms_are_normalised() {
        assert_eq!(normalise_client_ip("10.11.12.13:12345").as_deref(), Some("10.11.12.13"));
        assert_eq!(normalise_client_ip("[2001:db8::abcd]").as_deref(), Some("2001:db8::abcd"));
        assert_eq!(normalise_client_ip("2001:db8::abcd").as_deref(), Some("2001:db8::abcd"));
        assert_eq!(normalise_client_ip("<null>"), None);
        assert_eq!(normalise_client_ip(""), None);
    }
}
