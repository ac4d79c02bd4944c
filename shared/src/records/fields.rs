//! The building blocks of the typed records: a field reader that borrows the raw record and
//! names the field in every diagnostic, number-or-string enums, Name/Value lists and
//! `ModifiedProperties`.

use crate::audit::{int_or_string, json_in_string, name_value_list, parse_creation_time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// Why a record's type-specific fields could not be read. The record itself stays usable
/// (it parses to [`RecordDetail::Other`](super::RecordDetail::Other)); this only explains why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field} is malformed: {reason}")]
pub struct Malformed {
    /// The field, with its path inside nested objects: `AttachmentData[0].FileVerdict`.
    pub field: String,
    /// What was wrong with it.
    pub reason: String,
}

impl Malformed {
    fn new(field: &str, expected: &str, found: &Value) -> Self {
        Self { field: field.to_owned(), reason: format!("expected {expected}, found {}", describe(found)) }
    }

    /// Prefixes the field path with the enclosing field: `FileVerdict` → `FileData.FileVerdict`.
    fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// A short description of a JSON value for diagnostics (strings shortened, never the whole value).
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => format!("the string {:?}…", s.chars().take(40).collect::<String>()),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Reads the fields of one JSON object, remembering which keys it consumed so that the rest can
/// be kept as `extra`. Keys are matched exactly first, then ASCII case-insensitively (the docs
/// write `URL`, the wire says `Url`). `null`, `""` and `"<null>"` read as absent.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    used: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, used: Vec::new() }
    }

    /// The value of `key`, or `None` when absent or null. Marks the key as consumed.
    pub(crate) fn value(&mut self, key: &str) -> Option<&'a Value> {
        let map = self.map;
        let (found, value) = map.get_key_value(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))?;
        self.used.push(found.as_str());
        (!value.is_null()).then_some(value)
    }

    /// A string; numbers and booleans are accepted as their text.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, Malformed> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok((!is_blank(s)).then(|| s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(Malformed::new(key, "a string", other)),
        }
    }

    /// An integer, as a number or a numeric string.
    pub(crate) fn int(&mut self, key: &str) -> Result<Option<i64>, Malformed> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) if is_blank(s) => Ok(None),
            Some(value) => int_or_string(value).map(Some).ok_or_else(|| Malformed::new(key, "an integer", value)),
        }
    }

    /// A boolean: `true`, `"True"`, `"false"`, `0`, `1`.
    pub(crate) fn boolean(&mut self, key: &str) -> Result<Option<bool>, Malformed> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if is_blank(s) => Ok(None),
            Some(value @ Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(Malformed::new(key, "a boolean", value)),
            },
            Some(value) => match int_or_string(value) {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(Malformed::new(key, "a boolean", value)),
            },
        }
    }

    /// A UTC time in any format [`parse_creation_time`] accepts (with or without `Z`).
    pub(crate) fn time(&mut self, key: &str) -> Result<Option<DateTime<Utc>>, Malformed> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) if is_blank(s) => Ok(None),
            Some(value) => value.as_str().and_then(parse_creation_time).map(Some).ok_or_else(|| Malformed::new(key, "a time", value)),
        }
    }

    /// A number-or-string enum.
    pub(crate) fn coded<E: Coded>(&mut self, key: &str) -> Result<Option<E>, Malformed> {
        match self.value(key) {
            None => Ok(None),
            Some(value) => coded_from_value(value).map_err(|()| Malformed::new(key, "a number or a name", value)),
        }
    }

    /// A list of strings; one string is a list of one.
    pub(crate) fn strings(&mut self, key: &str) -> Result<Vec<String>, Malformed> {
        match self.value(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(if is_blank(s) { Vec::new() } else { vec![s.clone()] }),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::Null => None,
                    Value::String(s) => Some(Ok(s.clone())),
                    Value::Number(n) => Some(Ok(n.to_string())),
                    other => Some(Err(Malformed::new(&format!("{key}[{i}]"), "a string", other))),
                })
                .collect(),
            Some(other) => Err(Malformed::new(key, "a list of strings", other)),
        }
    }

    /// A Name/Value list: an array of `{"Name","Value"}`, a cmdlet-line string, or a JSON array
    /// encoded in a string.
    pub(crate) fn name_values(&mut self, key: &str) -> Result<NameValues, Malformed> {
        let Some(value) = self.value(key) else { return Ok(NameValues::default()) };
        let decoded;
        let value = match value {
            Value::String(text) if text.trim_start().starts_with('[') => match json_in_string(value) {
                Some(list @ Value::Array(_)) => {
                    decoded = list;
                    &decoded
                }
                _ => return Err(Malformed::new(key, "a Name/Value list", value)),
            },
            _ => value,
        };
        let pairs = name_value_list(value).ok_or_else(|| Malformed::new(key, "a Name/Value list", value))?;
        Ok(NameValues(pairs.into_iter().map(|(name, value)| NameValue { name, value }).collect()))
    }

    /// `ModifiedProperties`: an array of `{"Name","NewValue","OldValue"}`.
    pub(crate) fn modified_properties(&mut self, key: &str) -> Result<Vec<ModifiedProperty>, Malformed> {
        self.objects(key, |f| {
            let name = f.string("Name")?.ok_or_else(|| Malformed { field: "Name".into(), reason: "missing".into() })?;
            Ok(ModifiedProperty { name, old_value: f.text("OldValue"), new_value: f.text("NewValue") })
        })
    }

    /// Any value as text: strings as they are, other JSON as its compact text, absent as `""`.
    fn text(&mut self, key: &str) -> String {
        match self.value(key) {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }

    /// A JSON document, possibly encoded in a string (SCC and AIR `Data`).
    pub(crate) fn json(&mut self, key: &str) -> Result<Option<Value>, Malformed> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) if is_blank(s) => Ok(None),
            Some(value) => json_in_string(value).map(Some).ok_or_else(|| Malformed::new(key, "JSON (or JSON in a string)", value)),
        }
    }

    /// A list of objects read with `read`; one object is a list of one.
    pub(crate) fn objects<T>(&mut self, key: &str, read: impl Fn(&mut Fields<'a>) -> Result<T, Malformed>) -> Result<Vec<T>, Malformed> {
        match self.value(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => Ok(vec![read(&mut Fields::new(map)).map_err(|e| e.within(key))?]),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter(|(_, item)| !item.is_null())
                .map(|(i, item)| match item {
                    Value::Object(map) => read(&mut Fields::new(map)).map_err(|e| e.within(&format!("{key}[{i}]"))),
                    other => Err(Malformed::new(&format!("{key}[{i}]"), "an object", other)),
                })
                .collect(),
            Some(other) => Err(Malformed::new(key, "a list of objects", other)),
        }
    }

    /// One object read with `read`.
    pub(crate) fn object<T>(&mut self, key: &str, read: impl Fn(&mut Fields<'a>) -> Result<T, Malformed>) -> Result<Option<T>, Malformed> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Object(map)) => read(&mut Fields::new(map)).map(Some).map_err(|e| e.within(key)),
            Some(other) => Err(Malformed::new(key, "an object", other)),
        }
    }

    /// Every field not consumed and not in `known`, cloned: nothing is lost.
    pub(crate) fn extra(&self, known: &[&str]) -> Map<String, Value> {
        self.map
            .iter()
            .filter(|(key, _)| !self.used.contains(&key.as_str()) && !known.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

fn is_blank(text: &str) -> bool {
    let text = text.trim();
    text.is_empty() || text.eq_ignore_ascii_case("<null>")
}

/// An enum documented as `Edm.Int32` that arrives as a number, a numeric string or a name.
/// Implemented by `coded_enum!`.
pub trait Coded: Sized {
    /// The variant with this documented number.
    fn from_code(code: i64) -> Option<Self>;
    /// The variant with this name (compared ignoring case, spaces and punctuation) or alias.
    fn from_name(name: &str) -> Option<Self>;
    /// A value not documented (yet), kept as received.
    fn other(text: String) -> Self;
}

/// Number, numeric string or name → the enum; `Ok(None)` for a blank string; `Err` for other
/// JSON types.
fn coded_from_value<E: Coded>(value: &Value) -> Result<Option<E>, ()> {
    match value {
        Value::Number(n) => Ok(Some(n.as_i64().and_then(E::from_code).unwrap_or_else(|| E::other(n.to_string())))),
        Value::String(s) if is_blank(s) => Ok(None),
        Value::String(s) => {
            let text = s.trim();
            let known = match text.parse::<i64>() {
                Ok(code) => E::from_code(code),
                Err(_) => E::from_name(text),
            };
            Ok(Some(known.unwrap_or_else(|| E::other(text.to_owned()))))
        }
        _ => Err(()),
    }
}

/// Names compared ignoring ASCII case and everything but letters and digits:
/// `Block page` = `BlockPage`, `MoveToJMF` = `MoveToJmf`.
pub(crate) fn names_match(a: &str, b: &str) -> bool {
    let normal = |s: &'_ str| s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect::<Vec<_>>();
    normal(a) == normal(b)
}

/// Declares a number-or-string enum: each variant with its documented number and optional
/// aliases (names seen on the wire), plus `Other(String)` for anything undocumented.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident ($code:literal $(, $alias:literal)*) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value not documented (yet): the number or the text as received.
            Other(String),
        }

        impl $name {
            /// The documented number, or the number received for an undocumented value.
            #[must_use]
            pub fn code(&self) -> Option<i64> {
                match self {
                    $( Self::$variant => Some($code), )+
                    Self::Other(text) => text.parse().ok(),
                }
            }

            /// The variant's name, or the text received for an undocumented value.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => stringify!($variant), )+
                    Self::Other(text) => text,
                }
            }
        }

        impl $crate::records::Coded for $name {
            fn from_code(code: i64) -> Option<Self> {
                $( if code == $code { return Some(Self::$variant); } )+
                None
            }

            fn from_name(name: &str) -> Option<Self> {
                use $crate::records::fields::names_match;
                $( if names_match(name, stringify!($variant)) $(|| names_match(name, $alias))* { return Some(Self::$variant); } )+
                None
            }

            fn other(text: String) -> Self {
                Self::Other(text)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use coded_enum;

/// One `{"Name","Value"}` entry of `Parameters`, `ExtendedProperties`, `DeviceProperties`,
/// `AuthDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// A Name/Value list, read from either wire shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NameValues(pub Vec<NameValue>);

impl NameValues {
    /// The value of the first entry named `name` (compared case-insensitively).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|entry| entry.name.eq_ignore_ascii_case(name)).map(|entry| entry.value.as_str())
    }
}

impl std::ops::Deref for NameValues {
    type Target = [NameValue];

    fn deref(&self) -> &[NameValue] {
        &self.0
    }
}

/// One entry of `ModifiedProperties`. Values are kept as received: strings that often hold JSON
/// text with `\r\n` (`"[\r\n  true\r\n]"`); see [`ModifiedProperty::new_text`] and
/// [`ModifiedProperty::new_json`] to read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModifiedProperty {
    pub name: String,
    pub old_value: String,
    pub new_value: String,
}

impl ModifiedProperty {
    /// The old value decoded as JSON, `None` when it is not JSON text.
    #[must_use]
    pub fn old_json(&self) -> Option<Value> {
        decode_json_text(&self.old_value)
    }

    /// The new value decoded as JSON, `None` when it is not JSON text.
    #[must_use]
    pub fn new_json(&self) -> Option<Value> {
        decode_json_text(&self.new_value)
    }

    /// The old value as plain text (see [`property_text`]).
    #[must_use]
    pub fn old_text(&self) -> String {
        property_text(&self.old_value)
    }

    /// The new value as plain text (see [`property_text`]).
    #[must_use]
    pub fn new_text(&self) -> String {
        property_text(&self.new_value)
    }
}

/// Decodes JSON text held in a string, `None` when it is not JSON.
#[must_use]
pub fn decode_json_text(text: &str) -> Option<Value> {
    json_in_string(&Value::String(text.to_owned()))
}

/// A property value as plain text: JSON text is decoded and its scalars joined with `, `
/// (`"[\r\n  true\r\n]"` → `true`, `"[\"a\",\"b\"]"` → `a, b`); anything else is returned as is.
#[must_use]
pub fn property_text(text: &str) -> String {
    fn scalar(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    decode_json_text(text).map_or_else(|| text.to_owned(), |value| scalar(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    coded_enum! {
        /// A test enum.
        pub enum Colour {
            Red(1, "Rouge"),
            DarkBlue(-2),
        }
    }

    #[test]
    fn coded_enums_accept_numbers_numeric_strings_names_and_aliases() {
        for value in [json!(1), json!("1"), json!(" 1 "), json!("Red"), json!("rouge"), json!("RED")] {
            assert_eq!(coded_from_value::<Colour>(&value), Ok(Some(Colour::Red)), "{value}");
        }
        assert_eq!(coded_from_value::<Colour>(&json!(-2)), Ok(Some(Colour::DarkBlue)));
        assert_eq!(coded_from_value::<Colour>(&json!("Dark blue")), Ok(Some(Colour::DarkBlue)));
        assert_eq!(coded_from_value::<Colour>(&json!(7)), Ok(Some(Colour::Other("7".into()))));
        assert_eq!(Colour::Other("7".into()).code(), Some(7));
        assert_eq!(coded_from_value::<Colour>(&json!("Mauve")), Ok(Some(Colour::Other("Mauve".into()))));
        assert_eq!(coded_from_value::<Colour>(&json!("")), Ok(None));
        assert_eq!(coded_from_value::<Colour>(&json!([1])), Err(()));
        assert_eq!(Colour::DarkBlue.as_str(), "DarkBlue");
        assert_eq!(Colour::Red.code(), Some(1));
    }

    #[test]
    fn blank_and_null_placeholders_read_as_absent() {
        let map = object(json!({"A": "", "B": "<null>", "C": null, "D": "  ", "E": "x"}));
        let mut f = Fields::new(&map);
        for key in ["A", "B", "C", "D", "Missing"] {
            assert_eq!(f.string(key), Ok(None), "{key}");
        }
        assert_eq!(f.string("E"), Ok(Some("x".into())));
        assert!(f.extra(&[]).is_empty(), "every key was consumed");
    }

    #[test]
    fn keys_fall_back_to_case_insensitive_matches() {
        let map = object(json!({"URL": "https://a.example", "Other": 1}));
        let mut f = Fields::new(&map);
        assert_eq!(f.string("Url"), Ok(Some("https://a.example".into())));
        assert_eq!(f.extra(&[]), object(json!({"Other": 1})));
    }

    #[test]
    fn scalars_are_tolerant_of_their_wire_forms() {
        let map = object(json!({"N": "42", "B1": "True", "B2": 0, "T": "2026-01-05T10:02:11", "S": 12, "L": "one"}));
        let mut f = Fields::new(&map);
        assert_eq!(f.int("N"), Ok(Some(42)));
        assert_eq!(f.boolean("B1"), Ok(Some(true)));
        assert_eq!(f.boolean("B2"), Ok(Some(false)));
        assert_eq!(f.time("T").map(|t| t.map(|t| t.to_rfc3339())), Ok(Some("2026-01-05T10:02:11+00:00".into())));
        assert_eq!(f.string("S"), Ok(Some("12".into())));
        assert_eq!(f.strings("L"), Ok(vec!["one".to_owned()]));
    }

    #[test]
    fn malformed_fields_are_named_with_their_path() {
        let map = object(json!({"N": "many", "S": ["x"], "O": [{"Inner": {"a": 1}}], "T": "yesterday", "M": [{"OldValue": "x"}]}));
        let mut f = Fields::new(&map);
        assert_eq!(f.int("N").unwrap_err().field, "N");
        let error = f.string("S").unwrap_err();
        assert_eq!(error.to_string(), "field S is malformed: expected a string, found an array");
        let error = f.objects("O", |f| f.string("Inner")).unwrap_err();
        assert_eq!(error.field, "O[0].Inner");
        assert_eq!(f.time("T").unwrap_err().field, "T");
        assert_eq!(f.modified_properties("M").unwrap_err().field, "M[0].Name");
    }

    #[test]
    fn name_values_accept_lists_cmdlet_lines_and_json_text() {
        let map = object(json!({
            "List": [{"Name": "UserAgent", "Value": "curl/8"}],
            "Line": "-Identity \"Default\" -Enabled",
            "Json": "[{\"Name\":\"RequestType\",\"Value\":\"Login:login\"}]",
            "Bad": 3,
        }));
        let mut f = Fields::new(&map);
        assert_eq!(f.name_values("List").unwrap().get("useragent"), Some("curl/8"));
        let line = f.name_values("Line").unwrap();
        assert_eq!((line.get("Identity"), line.get("Enabled")), (Some("Default"), Some("")));
        assert_eq!(f.name_values("Json").unwrap().get("RequestType"), Some("Login:login"));
        assert_eq!(f.name_values("Bad").unwrap_err().field, "Bad");
        assert!(f.name_values("Missing").unwrap().is_empty());
    }

    #[test]
    fn modified_property_values_decode_json_in_strings() {
        let property =
            ModifiedProperty { name: "AccountEnabled".into(), old_value: "[\r\n  true\r\n]".into(), new_value: "[\r\n  false\r\n]".into() };
        assert_eq!(property.old_json(), Some(json!([true])));
        assert_eq!((property.old_text().as_str(), property.new_text().as_str()), ("true", "false"));
        assert_eq!(property_text("[\r\n  \"Global Administrator\",\r\n  \"x\"\r\n]"), "Global Administrator, x");
        assert_eq!(property_text("Global Administrator"), "Global Administrator");
        assert_eq!(property_text(""), "");
        assert_eq!(decode_json_text("plain"), None);
    }
}
