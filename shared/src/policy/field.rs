//! Field paths: how a policy names a value inside an audit record.
//!
//! A path is dot-separated (`Parameters.ForwardTo`, `ModifiedProperties.Role.DisplayName.NewValue`,
//! `Target.ID`) and reaches through the shapes Microsoft actually sends:
//!
//! * objects: a segment is a key (exact, then case-insensitive);
//! * arrays: flattened, each element is followed (so a path yields zero or more values);
//! * Name/Value lists (`Parameters`, `ExtendedProperties`, `ModifiedProperties`): a segment
//!   selects the entries whose `Name` matches (names may contain dots: the longest match wins);
//!   the path may then go on into the entry (`.NewValue`, `.OldValue`) or stop, giving `Value`
//!   (or `NewValue` for a `ModifiedProperties` entry);
//! * JSON inside a string (`ModifiedProperties` values, alert `Data`): decoded when the path goes
//!   on into it, and a string holding a JSON array is flattened at the end of the path;
//! * `Parameters` as one cmdlet-line string (`-Identity "x" -Force`): parsed like the list.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses `A.B.C`.
    ///
    /// # Errors
    /// When the path is empty or has an empty segment.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("a field path must not be empty".to_owned());
        }
        let segments: Vec<String> = trimmed.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| s.trim().is_empty()) {
            return Err(format!("field path {trimmed:?} has an empty segment"));
        }
        Ok(Self { text: trimmed.to_owned(), segments })
    }

    /// The path as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every value the path reaches in `root` (empty when it reaches nothing). `null` values are
    /// left out.
    #[must_use]
    pub fn resolve<'a>(&self, root: &'a Map<String, Value>) -> Vec<Cow<'a, Value>> {
        let mut out = Vec::new();
        let (first, rest) = self.segments.split_first().unwrap_or_else(|| unreachable!("a parsed path has a segment"));
        if let Some(value) = object_get(root, first) {
            walk(Cow::Borrowed(value), rest, &mut out);
        }
        out
    }

    /// The first value the path reaches, as text.
    #[must_use]
    pub fn first_text(&self, root: &Map<String, Value>) -> Option<String> {
        self.resolve(root).first().and_then(|v| text_of(v).map(Cow::into_owned))
    }
}

fn object_get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Scalar text of a value: strings as they are, numbers and booleans printed, arrays and objects
/// as JSON; `None` for null.
#[must_use]
pub fn text_of<'v>(value: &'v Value) -> Option<Cow<'v, str>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

fn push<'a>(value: Cow<'a, Value>, out: &mut Vec<Cow<'a, Value>>) {
    if !value.is_null() {
        out.push(value);
    }
}

fn walk<'a>(value: Cow<'a, Value>, rest: &[String], out: &mut Vec<Cow<'a, Value>>) {
    if rest.is_empty() {
        return finish(value, out);
    }
    match value {
        Cow::Borrowed(Value::Array(items)) => {
            if !select_named(items.iter().map(Cow::Borrowed), rest, out) {
                for item in items {
                    walk(Cow::Borrowed(item), rest, out);
                }
            }
        }
        Cow::Owned(Value::Array(items)) => {
            let named: Vec<Cow<'a, Value>> = items.into_iter().map(Cow::Owned).collect();
            if !select_named(named.iter().cloned(), rest, out) {
                for item in named {
                    walk(item, rest, out);
                }
            }
        }
        Cow::Borrowed(Value::Object(map)) => {
            if let Some(child) = object_get(map, &rest[0]) {
                walk(Cow::Borrowed(child), &rest[1..], out);
            }
        }
        Cow::Owned(Value::Object(mut map)) => {
            let key = map.keys().find(|k| **k == rest[0] || k.eq_ignore_ascii_case(&rest[0])).cloned();
            if let Some(child) = key.and_then(|k| map.remove(&k)) {
                walk(Cow::Owned(child), &rest[1..], out);
            }
        }
        Cow::Borrowed(Value::String(text)) => walk_into_string(text, rest, out),
        Cow::Owned(Value::String(text)) => walk_into_string(&text, rest, out),
        _ => {}
    }
}

fn walk_into_string<'a>(text: &str, rest: &[String], out: &mut Vec<Cow<'a, Value>>) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        if let Ok(decoded) = serde_json::from_str::<Value>(text) {
            walk(Cow::Owned(decoded), rest, out);
        }
    } else if trimmed.starts_with('-')
        && let Some(pairs) = crate::audit::name_value_list(&Value::String(text.to_owned()))
    {
        let list: Vec<Value> = pairs.into_iter().map(|(name, value)| serde_json::json!({"Name": name, "Value": value})).collect();
        walk(Cow::Owned(Value::Array(list)), rest, out);
    }
}

/// At the end of a path: arrays are flattened, strings holding a JSON array decoded and flattened.
fn finish<'a>(value: Cow<'a, Value>, out: &mut Vec<Cow<'a, Value>>) {
    let decoded = match &*value {
        Value::String(text) if text.trim_start().starts_with('[') => serde_json::from_str::<Value>(text).ok(),
        _ => None,
    };
    if let Some(Value::Array(items)) = decoded {
        items.into_iter().for_each(|item| finish(Cow::Owned(item), out));
        return;
    }
    match value {
        Cow::Borrowed(Value::Array(items)) => items.iter().for_each(|item| finish(Cow::Borrowed(item), out)),
        Cow::Owned(Value::Array(items)) => items.into_iter().for_each(|item| finish(Cow::Owned(item), out)),
        other => push(other, out),
    }
}

/// Treats `items` as a Name/Value list and selects the entries named by the longest prefix of
/// `rest`. Returns `false` when no entry has a matching name (the caller then flattens).
fn select_named<'a>(items: impl Iterator<Item = Cow<'a, Value>> + Clone, rest: &[String], out: &mut Vec<Cow<'a, Value>>) -> bool {
    for take in (1..=rest.len()).rev() {
        let name = if take == 1 { Cow::Borrowed(rest[0].as_str()) } else { Cow::Owned(rest[..take].join(".")) };
        let mut found = false;
        for item in items.clone() {
            let matches = item.get("Name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name));
            if !matches {
                continue;
            }
            found = true;
            let remaining = &rest[take..];
            if remaining.is_empty() {
                let pick =
                    |item: &Value| -> Option<&'static str> { ["Value", "NewValue"].into_iter().find(|key| item.get(*key).is_some()) };
                match item {
                    Cow::Borrowed(entry) => {
                        if let Some(key) = pick(entry) {
                            finish(Cow::Borrowed(&entry[key]), out);
                        }
                    }
                    Cow::Owned(mut entry) => {
                        if let Some(key) = pick(&entry)
                            && let Some(value) = entry.as_object_mut().and_then(|m| m.remove(key))
                        {
                            finish(Cow::Owned(value), out);
                        }
                    }
                }
            } else {
                walk(item, remaining, out);
            }
        }
        if found {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(path: &str, record: &Value) -> Vec<String> {
        FieldPath::parse(path)
            .unwrap()
            .resolve(record.as_object().unwrap())
            .iter()
            .filter_map(|v| text_of(v).map(Cow::into_owned))
            .collect()
    }

    #[test]
    fn top_level_fields_are_found_exactly_or_ignoring_case() {
        let record = json!({"UserId": "alice@contoso.com", "RecordType": 15});
        assert_eq!(texts("UserId", &record), ["alice@contoso.com"]);
        assert_eq!(texts("userid", &record), ["alice@contoso.com"]);
        assert_eq!(texts("RecordType", &record), ["15"]);
        assert!(texts("Missing", &record).is_empty());
    }

    #[test]
    fn exchange_parameters_are_reached_by_name_in_either_wire_shape() {
        let list = json!({"Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}, {"Name": "Name", "Value": "r"}]});
        assert_eq!(texts("Parameters.ForwardTo", &list), ["x@evil.example"]);
        assert_eq!(texts("Parameters.forwardto", &list), ["x@evil.example"]);
        let line = json!({"Parameters": "-Identity \"r\" -RedirectTo \"y@evil.example\""});
        assert_eq!(texts("Parameters.RedirectTo", &line), ["y@evil.example"]);
        assert!(texts("Parameters.ForwardTo", &line).is_empty());
    }

    #[test]
    fn modified_properties_give_new_and_old_values_with_json_in_strings_decoded() {
        let record = json!({"ModifiedProperties": [
            {"Name": "StrongAuthenticationRequirement", "OldValue": "[{\"RelyingParty\":\"*\",\"State\":1}]", "NewValue": "[]"},
            {"Name": "Role.DisplayName", "OldValue": "", "NewValue": "Global Administrator"}
        ]});
        assert_eq!(texts("ModifiedProperties.Role.DisplayName", &record), ["Global Administrator"]);
        assert_eq!(texts("ModifiedProperties.Role.DisplayName.NewValue", &record), ["Global Administrator"]);
        assert_eq!(texts("ModifiedProperties.StrongAuthenticationRequirement.OldValue.State", &record), ["1"]);
        assert!(texts("ModifiedProperties.StrongAuthenticationRequirement.NewValue", &record).is_empty(), "[] decodes to nothing");
    }

    #[test]
    fn arrays_are_flattened_so_a_path_can_yield_many_values() {
        let record = json!({"Target": [{"ID": "a", "Type": 2}, {"ID": "b", "Type": 5}], "Recipients": ["x@y", "z@w"]});
        assert_eq!(texts("Target.ID", &record), ["a", "b"]);
        assert_eq!(texts("Recipients", &record), ["x@y", "z@w"]);
    }

    #[test]
    fn extended_properties_and_json_documents_in_strings_are_reachable() {
        let record = json!({"ExtendedProperties": [{"Name": "UserAgent", "Value": "python-requests/2.31"}],
                            "Data": "{\"f3u\":\"grace@contoso.com\",\"ts\":\"2026-01-05\"}"});
        assert_eq!(texts("ExtendedProperties.UserAgent", &record), ["python-requests/2.31"]);
        assert_eq!(texts("Data.f3u", &record), ["grace@contoso.com"]);
    }

    #[test]
    fn empty_paths_and_segments_are_refused() {
        assert!(FieldPath::parse("").is_err());
        assert!(FieldPath::parse("Parameters..X").is_err());
    }
}
