//! Audit records from the Office 365 Management Activity API, parsed leniently.
//!
//! The common schema is modelled strictly enough to key and route records (`Id`, `RecordType`,
//! `CreationTime`, `Operation`); every other field is kept as JSON so nothing is lost and unknown
//! record types never fail. The quirks of real data are handled here once: `CreationTime`
//! without `Z`, numbers as strings, `Parameters` as a Name/Value list *or* one cmdlet-line
//! string, `ClientIP` with ports and brackets.

use crate::ids::RecordId;
use crate::policy::field::FieldHint;
use crate::tape::{Kind, NodeRef, Tape, skip_ws};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

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
///
/// The record keeps its JSON text and an index of its top-level fields; a field is parsed the
/// first time something asks for it ([`AuditRecord::field`]), and the whole object only when
/// something needs all of it ([`AuditRecord::raw`]). Most policies look at a handful of fields
/// of a record of 30, so evaluation parses little of what it reads.
#[derive(Debug, Clone)]
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
    source: Source,
}

/// Where a record's fields come from.
#[derive(Debug)]
enum Source {
    /// JSON text, as the evaluator receives it: indexed, each field parsed on first use.
    Text(TextSource),
    /// An object already parsed (the poller's blobs, the policy test bench); policy paths read
    /// it through its text, printed on first use.
    Object { map: Map<String, Value>, text: OnceLock<TextSource> },
}

impl Clone for Source {
    fn clone(&self) -> Self {
        match self {
            Source::Text(text) => Source::Text(TextSource::new(&text.text).unwrap_or_else(TextSource::empty)),
            Source::Object { map, .. } => Source::Object { map: map.clone(), text: OnceLock::new() },
        }
    }
}

/// A record's JSON text and its tape (one pass over the text at parse, one list of nodes), the
/// top-level fields indexed for lookup.
#[derive(Debug)]
struct TextSource {
    /// The record's JSON (a buffer reused from a dropped record of this thread when one is free).
    text: String,
    /// The whole record; node 0 is the object.
    tape: Tape,
    /// A 256-bit filter of the prints: a key whose bit is clear is not in the record, found
    /// without a scan (most policies ask for some fields a record does not have).
    present: [u64; 4],
    /// Each top-level value as a `serde_json::Value`, parsed on first use (for callers that
    /// want one; policies read the tape, so the list itself is made on first use too).
    values: OnceLock<Vec<OnceLock<Value>>>,
    /// The whole object, parsed on first use.
    full: OnceLock<Map<String, Value>>,
}

impl PartialEq for AuditRecord {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

impl AuditRecord {
    /// A record from its JSON value.
    ///
    /// # Errors
    /// When a common field needed to key or route the record is missing or invalid.
    pub fn from_value(value: Value) -> Result<Self, RecordError> {
        let Value::Object(map) = value else {
            return Err(RecordError::NotAnObject);
        };
        let common = {
            let field = |key: &str| object_get(&map, key);
            CommonFields::read(|key| field(key).and_then(Value::as_str).map(Cow::Borrowed), |key| field(key).and_then(int_or_string))?
        };
        Ok(common.into_record(Source::Object { map, text: OnceLock::new() }))
    }

    /// Reads a record from its JSON text (an object), indexing its top-level fields and parsing
    /// only the common ones.
    ///
    /// # Errors
    /// When the text is not a JSON object, or a common field needed to key or route the record
    /// is missing or invalid.
    pub fn from_json(json: &str) -> Result<Self, RecordError> {
        let source = TextSource::new(json).ok_or(RecordError::NotAnObject)?;
        let common = CommonFields::read(|key| source.common_str(key), |key| source.common_int(key))?;
        Ok(common.into_record(Source::Text(source)))
    }

    /// A record from its JSON text and the tape [`Tape::build_record_prefix`] built over it
    /// (the evaluator reads a message's records in one pass: the tape also validated the text).
    ///
    /// # Errors
    /// When the text is not an object, or a common field needed to key or route the record
    /// is missing or invalid.
    pub fn from_tape(json: &str, tape: Tape) -> Result<Self, RecordError> {
        let source = TextSource::with_tape(json, tape).ok_or(RecordError::NotAnObject)?;
        let common = CommonFields::read(|key| source.common_str(key), |key| source.common_int(key))?;
        Ok(common.into_record(Source::Text(source)))
    }

    /// One top-level field (exact name, else compared ignoring ASCII case); `None` when absent
    /// or null. From text, it is parsed on first use.
    #[must_use]
    pub fn field(&self, key: &str) -> Option<&Value> {
        match &self.source {
            Source::Object { map, .. } => object_get(map, key),
            Source::Text(source) => source.value(key),
        }
    }

    /// One top-level field as a tape node (what policy paths read); `None` when absent or null.
    /// `hint` remembers where the field was last found: records of one type list their fields
    /// in the same order, so the next record usually has it at the same place.
    #[must_use]
    pub fn field_node(&self, key: &str, hint: Option<&FieldHint>) -> Option<NodeRef<'_>> {
        let source = match &self.source {
            Source::Text(source) => source,
            Source::Object { map, text } => {
                text.get_or_init(|| TextSource::new(&serde_json::to_string(map).unwrap_or_default()).unwrap_or_else(TextSource::empty))
            }
        };
        source.node(key, hint)
    }

    /// The whole record as a JSON object (from text, parsed on first use).
    #[must_use]
    pub fn raw(&self) -> &Map<String, Value> {
        match &self.source {
            Source::Text(source) => source.full.get_or_init(|| serde_json::from_str(&source.text).unwrap_or_default()),
            Source::Object { map, .. } => map,
        }
    }

    /// A top-level string field, or `None` when absent or not a string.
    #[must_use]
    pub fn field_str(&self, key: &str) -> Option<&str> {
        self.field(key).and_then(Value::as_str)
    }

    /// `ResultStatus` says the operation failed (`False`, `Failed`, `Failure`).
    #[must_use]
    pub fn failed(&self) -> bool {
        matches!(self.field_str("ResultStatus").map(str::to_ascii_lowercase).as_deref(), Some("false" | "failed" | "failure"))
    }

    /// The cmdlet parameters of an Exchange admin record, from either wire shape.
    #[must_use]
    pub fn parameters(&self) -> Vec<(String, String)> {
        self.field("Parameters").and_then(name_value_list).unwrap_or_default()
    }

    /// The value of one cmdlet parameter (name compared case-insensitively).
    #[must_use]
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.parameters().into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// `ClientIP` without port or brackets; `None` when empty or `<null>`.
    #[must_use]
    pub fn client_ip(&self) -> Option<String> {
        // Read through the tape: no `serde_json::Value` is built for it.
        self.field_node("ClientIP", None).and_then(|node| node.str()).and_then(client_ip_text).map(str::to_owned)
    }
}

/// The common fields every record must have, read before the record is built.
struct CommonFields {
    id: RecordId,
    record_type: i64,
    creation_time: DateTime<Utc>,
    operation: String,
    user_id: String,
    workload: String,
}

impl CommonFields {
    fn read<'a>(text: impl Fn(&str) -> Option<Cow<'a, str>>, int: impl Fn(&str) -> Option<i64>) -> Result<Self, RecordError> {
        let id = match text("Id") {
            Some(id) if !id.is_empty() => RecordId::parse(&id).map_err(|e| RecordError::InvalidField { field: "Id", reason: e.reason })?,
            _ => return Err(RecordError::Missing("Id")),
        };
        let record_type = int("RecordType").ok_or(RecordError::InvalidField { field: "RecordType", reason: "not an integer".into() })?;
        let creation_time = match text("CreationTime") {
            Some(time) => parse_creation_time(&time)
                .ok_or_else(|| RecordError::InvalidField { field: "CreationTime", reason: format!("unrecognised time {time:?}") })?,
            None => return Err(RecordError::Missing("CreationTime")),
        };
        let operation = match text("Operation") {
            Some(op) if !op.is_empty() => op.into_owned(),
            _ => return Err(RecordError::Missing("Operation")),
        };
        let owned = |key: &str| text(key).map(Cow::into_owned).unwrap_or_default();
        Ok(Self { id, record_type, creation_time, operation, user_id: owned("UserId"), workload: owned("Workload") })
    }

    fn into_record(self, source: Source) -> AuditRecord {
        let Self { id, record_type, creation_time, operation, user_id, workload } = self;
        AuditRecord { id, record_type, creation_time, operation, user_id, workload, source }
    }
}

fn object_get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let value = map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))?;
    (!value.is_null()).then_some(value)
}

impl TextSource {
    fn new(json: &str) -> Option<Self> {
        let start = skip_ws(json.as_bytes(), 0);
        let tape = Tape::build_record(json, start..json.len())?;
        Self::with_tape(json, tape)
    }

    /// A record's text with its tape already built over it (offsets from the text's start);
    /// `None` when it is not an object.
    fn with_tape(json: &str, tape: Tape) -> Option<Self> {
        if tape.root(json).kind() != Kind::Object {
            return None;
        }
        let mut text = SPARE_TEXTS.try_with(|spare| spare.borrow_mut().pop()).ok().flatten().unwrap_or_default();
        text.push_str(json);
        let mut present = [0u64; 4];
        for (print, _) in tape.top() {
            let bit = filter_bit(*print);
            present[bit / 64] |= 1 << (bit % 64);
        }
        Some(Self { text, tape, present, values: OnceLock::new(), full: OnceLock::new() })
    }

    fn empty() -> Self {
        Self::new("{}").unwrap_or_else(|| unreachable!("{{}} is an object"))
    }

    fn member(&self, at: usize) -> NodeRef<'_> {
        self.tape.node(&self.text, self.tape.top()[at].1 as usize)
    }

    /// Where a top-level field is: the exact key, else ignoring ASCII case. The filter first,
    /// then the hinted place, then prints: this runs for every path of every policy.
    fn position(&self, key: &str, hint: Option<&FieldHint>) -> Option<usize> {
        let print = hint.map_or_else(|| key_print(key.as_bytes()), |h| h.print);
        let bit = filter_bit(print);
        if self.present[bit / 64] & (1 << (bit % 64)) == 0 {
            return None;
        }
        if let Some(at) = hint.map(|h| h.at.load(Ordering::Relaxed) as usize)
            && self.tape.top().get(at).is_some_and(|(p, _)| *p == print)
            && same_bytes(self.member(at).key().as_bytes(), key.as_bytes())
        {
            return Some(at);
        }
        let (mut found, mut folded) = (None, None);
        for (at, _) in self.tape.top().iter().enumerate().filter(|(_, (p, _))| *p == print) {
            let member = self.member(at).key();
            if same_bytes(member.as_bytes(), key.as_bytes()) {
                found = Some(at);
                break;
            }
            if folded.is_none() && member.eq_ignore_ascii_case(key) {
                folded = Some(at);
            }
        }
        let found = found.or(folded)?;
        if let Some(hint) = hint {
            hint.at.store(u32::try_from(found).unwrap_or(0), Ordering::Relaxed);
        }
        Some(found)
    }

    fn value(&self, key: &str) -> Option<&Value> {
        let at = self.position(key, None)?;
        let values = self.values.get_or_init(|| (0..self.tape.top().len()).map(|_| OnceLock::new()).collect());
        let value = values[at].get_or_init(|| self.member(at).to_value());
        (!value.is_null()).then_some(value)
    }

    fn node(&self, key: &str, hint: Option<&FieldHint>) -> Option<NodeRef<'_>> {
        let node = self.member(self.position(key, hint)?);
        (node.kind() != Kind::Null).then_some(node)
    }

    /// A common field's text, read from the tape without building a value.
    fn common_str(&self, key: &str) -> Option<Cow<'_, str>> {
        self.node(key, common_hint(key))?.str().map(Cow::Borrowed)
    }

    /// A common field that is a number, or a string holding one.
    fn common_int(&self, key: &str) -> Option<i64> {
        let node = self.node(key, common_hint(key))?;
        match node.kind() {
            Kind::Number => node.raw().parse().ok(),
            Kind::String => node.str()?.trim().parse().ok(),
            _ => None,
        }
    }
}

/// How many text buffers a thread keeps for reuse, and the largest it keeps.
const SPARE_TEXTS_KEPT: usize = 64;
const SPARE_TEXT_BYTES: usize = 16 * 1024;

thread_local! {
    /// Text buffers of dropped records, reused by the next records read on the same thread
    /// (a record of a kilobyte or two is too big for the allocator's fast path).
    static SPARE_TEXTS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for TextSource {
    fn drop(&mut self) {
        let mut text = std::mem::take(&mut self.text);
        if text.capacity() == 0 || text.capacity() > SPARE_TEXT_BYTES {
            return;
        }
        text.clear();
        let _ = SPARE_TEXTS.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_TEXTS_KEPT {
                spare.push(text);
            }
        });
    }
}

/// The common fields' lookup hints, shared by every record read (records list them in the same
/// places, so after the first record each is found at once).
fn common_hint(key: &str) -> Option<&'static FieldHint> {
    static HINTS: std::sync::LazyLock<[(&str, FieldHint); 6]> = std::sync::LazyLock::new(|| {
        ["Id", "RecordType", "CreationTime", "Operation", "UserId", "Workload"].map(|key| (key, FieldHint::new(key)))
    });
    HINTS.iter().find(|(name, _)| *name == key).map(|(_, hint)| hint)
}

/// A number that two keys equal ignoring ASCII case share: the length and the first four and
/// last three bytes with the ASCII case bit set. Keys with different prints differ (keys that
/// differ only where the case bit is, e.g. `@` and a backquote, may share one: lookups compare
/// the key itself after the print).
pub(crate) fn key_print(key: &[u8]) -> u64 {
    const CASE: u32 = 0x2020_2020;
    let word = |bytes: &[u8]| {
        let mut padded = [0u8; 4];
        padded[..bytes.len()].copy_from_slice(bytes);
        u32::from_le_bytes(padded) | CASE
    };
    let first = word(&key[..key.len().min(4)]);
    let last = word(&key[key.len().saturating_sub(3)..]) & 0x00ff_ffff;
    ((key.len() as u64 & 0xff) << 56) | (u64::from(last) << 32) | u64::from(first)
}

/// `a == b`, for the short keys of records without a call to `memcmp`: two words from each
/// end compared when both are at most 16 bytes long.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if !(8..=16).contains(&len) {
        return a == b;
    }
    let word = |bytes: &[u8], at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8)
}

/// A print's bit in the 256-bit filter of a record's keys.
fn filter_bit(print: u64) -> usize {
    (print.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize
}

/// `YYYY-MM-DD HH:MM:SS`, as tickets and facts show UTC times (written out, not through a
/// format string parsed on every call).
#[must_use]
pub fn plain_utc(time: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = time.year();
    if !(0..=9999).contains(&year) {
        return format!("{year:04}-{:02}-{:02} {:02}:{:02}:{:02}", time.month(), time.day(), time.hour(), time.minute(), time.second());
    }
    // Digits written directly: this runs for every alert hit, and `format!` costs more than the rest of a fact.
    let mut out = String::with_capacity(19);
    let mut digits = |value: u32, width: u32, separator: Option<char>| {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + u8::try_from(value / 10u32.pow(place) % 10).unwrap_or(0)));
        }
        if let Some(separator) = separator {
            out.push(separator);
        }
    };
    digits(year.unsigned_abs(), 4, Some('-'));
    digits(time.month(), 2, Some('-'));
    digits(time.day(), 2, Some(' '));
    digits(time.hour(), 2, Some(':'));
    digits(time.minute(), 2, Some(':'));
    digits(time.second(), 2, None);
    out
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
    client_ip_text(text).map(str::to_owned)
}

/// [`normalise_client_ip`] without copying: the address's part of `text`.
#[must_use]
pub fn client_ip_text(text: &str) -> Option<&str> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("<null>") {
        return None;
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next();
    }
    // One colon: IPv4 (or host) with a port. More colons: a bare IPv6 address.
    if text.bytes().filter(|b| *b == b':').count() == 1 {
        return text.split(':').next();
    }
    Some(text)
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

    #[test]
    fn plain_utc_writes_what_the_format_string_writes() {
        use chrono::{Datelike, TimeZone, Timelike};
        let times = [(2026, 1, 5, 9, 4, 7), (1999, 12, 31, 23, 59, 59), (2, 3, 4, 0, 0, 0), (10_000, 1, 1, 1, 1, 1)];
        for (year, month, day, hour, minute, second) in times {
            let time = Utc.with_ymd_and_hms(year, month, day, hour, minute, second).unwrap();
            let expected = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                time.year(),
                time.month(),
                time.day(),
                time.hour(),
                time.minute(),
                time.second()
            );
            assert_eq!(plain_utc(time), expected);
        }
    }

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
    fn fields_are_read_from_the_text_one_at_a_time_whatever_the_layout() {
        let text = r#" { "Id" : "a\"b", "RecordType":15,"CreationTime":"2026-01-05T10:02:11", "Operation":"UserLoginFailed",
            "Nested": {"x": [1, {"y": "}]"}], "z": "\\"}, "Empty": [], "Flag": true, "Nothing": null, "userid": "Alice@Contoso.com" } "#;
        let record = AuditRecord::from_json(text).unwrap();
        assert_eq!(record.id.as_str(), "a\"b");
        assert_eq!(record.record_type, 15);
        assert_eq!(record.user_id, "Alice@Contoso.com", "field names are matched ignoring case when no exact one exists");
        assert_eq!(record.field("Nested"), Some(&json!({"x": [1, {"y": "}]"}], "z": "\\"})));
        assert_eq!(record.field("Flag"), Some(&json!(true)));
        assert_eq!(record.field("Nothing"), None);
        assert_eq!(record.field("Missing"), None);
        assert_eq!(record.raw().len(), 9);
        assert_eq!(record, AuditRecord::from_value(serde_json::from_str(text).unwrap()).unwrap());
    }

    #[test]
    fn short_keys_compare_equal_exactly_when_every_byte_is_equal() {
        let keys = ["", "Id", "UserId", "Workload", "ClientIP", "CreationTime", "OrganizationId", "ResultStatusX", "ClientIPAddress1"];
        for a in keys {
            for b in keys {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            }
            let mut changed = a.as_bytes().to_vec();
            for at in 0..changed.len() {
                changed[at] ^= 0x20;
                assert!(!same_bytes(a.as_bytes(), &changed), "{a} with byte {at} changed");
                changed[at] ^= 0x20;
            }
        }
    }

    #[test]
    fn keys_equal_ignoring_case_share_a_print_and_short_keys_have_one() {
        for (a, b) in [("UserId", "userid"), ("Id", "ID"), ("a", "A"), ("", ""), ("ClientIP", "CLIENTip")] {
            assert_eq!(key_print(a.as_bytes()), key_print(b.as_bytes()), "{a} {b}");
        }
        for (a, b) in [("UserId", "UserKey"), ("ClientIP", "ClientIPAddress"), ("Id", "Ip"), ("Operation", "Organization")] {
            assert_ne!(key_print(a.as_bytes()), key_print(b.as_bytes()), "{a} {b}");
        }
        let record =
            AuditRecord::from_json(r#"{"Id":"r-1","RecordType":1,"CreationTime":"2026-01-05T10:00:00","Operation":"X","ip":"a","IP":"b"}"#)
                .unwrap();
        assert_eq!(record.field_str("IP"), Some("b"), "the exact key wins over one equal ignoring case");
        assert_eq!(record.field_str("Ip"), Some("a"), "else the first equal ignoring case");
        assert_eq!(record.field_str("Missing"), None);
    }

    #[test]
    fn text_that_is_not_one_object_is_refused() {
        for text in ["[1]", "{\"Id\": \"x\"", "{\"Id\" \"x\"}", "{} {}", "\"Id\"", ""] {
            assert_eq!(AuditRecord::from_json(text).unwrap_err(), RecordError::NotAnObject, "{text}");
        }
        assert_eq!(AuditRecord::from_json("{}").unwrap_err(), RecordError::Missing("Id"));
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
    fn plain_utc_times_read_as_the_format_string_would_write_them() {
        for text in ["2026-01-05T09:04:07", "1999-12-31T23:59:59", "2026-02-28T00:00:00Z"] {
            let time = parse_creation_time(text).unwrap();
            assert_eq!(plain_utc(time), time.format("%Y-%m-%d %H:%M:%S").to_string());
        }
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
