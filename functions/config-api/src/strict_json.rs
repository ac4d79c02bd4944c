//! Strict JSON bodies: a request body is checked for nesting depth before it is parsed, must be
//! a JSON object, and is turned into its typed struct without serde's silent coercions.
//!
//! serde's derived structs also accept a JSON *array* (fields by position), so `[]` sent where
//! an object is expected became a struct of defaults: `PUT …/policy-context` with `[]` cleared a
//! tenant's domains. [`Strict`] is a deserializer over a parsed [`Value`] that refuses anything
//! but an object for a struct, at every level; errors carry the path of the offending field
//! (`priorities.high: invalid type …`) through `serde_path_to_error`.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::Value;

/// Deepest nesting of arrays and objects a request body may have. Policy condition trees, the
/// deepest thing callers send, use two levels per `all`/`any`, so this leaves room for ~30.
pub const MAX_JSON_DEPTH: usize = 64;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON, or nested too deep to be read safely (400).
    Malformed(String),
    /// JSON, but not the shape or types the route takes (422); the message names the field.
    Invalid(String),
}

/// Parses `bytes` as a JSON object of type `T`, strictly.
///
/// # Errors
/// [`BodyError::Malformed`] for bodies that are not JSON or nest deeper than
/// [`MAX_JSON_DEPTH`]; [`BodyError::Invalid`] for a top level that is not an object or fields of
/// the wrong type.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if let Some(depth) = nesting_exceeds(bytes, MAX_JSON_DEPTH) {
        return Err(BodyError::Malformed(format!("JSON nested deeper than {MAX_JSON_DEPTH} levels (found {depth} or more)")));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| BodyError::Malformed(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(BodyError::Invalid(format!("the body must be a JSON object, not {}", kind(&value))));
    }
    serde_path_to_error::deserialize(Strict(&value)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        BodyError::Invalid(if path == "." { inner.to_string() } else { format!("{path}: {inner}") })
    })
}

/// The depth reached when it passes `max` (counting `[` and `{` outside strings), else `None`.
/// Linear, without recursion, so it is safe on any input.
#[must_use]
pub fn nesting_exceeds(bytes: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => n.as_i64().map_or_else(|| Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)), Unexpected::Signed),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// A deserializer over a parsed value that gives structs objects only.
pub struct Strict<'de>(pub &'de Value);

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(StrictSeq(items.iter())),
            Value::Object(map) => visitor.visit_map(StrictMap { entries: map.iter(), value: None }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.0.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(StrictMap { entries: map.iter(), value: None }),
            other => Err(de::Error::invalid_type(unexpected(other), &"a JSON object")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct identifier
    }
}

struct StrictSeq<'de>(std::slice::Iter<'de, Value>);

impl<'de> SeqAccess<'de> for StrictSeq<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, Self::Error> {
        self.0.next().map(|value| seed.deserialize(Strict(value))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct StrictMap<'de> {
    entries: serde_json::map::Iter<'de>,
    value: Option<&'de Value>,
}

impl<'de> MapAccess<'de> for StrictMap<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.value = Some(value);
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Self::Error> {
        let value = self.value.take().ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        high: u8,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        domains: Vec<String>,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        value: Option<Value>,
    }

    #[test]
    fn an_array_is_never_taken_for_an_object_at_any_level() {
        assert_eq!(parse_object::<Body>(b"[]"), Err(BodyError::Invalid("the body must be a JSON object, not an array".into())));
        let nested = parse_object::<Body>(br#"{"inner": [1]}"#).unwrap_err();
        assert!(
            matches!(&nested, BodyError::Invalid(m) if m.starts_with("inner: invalid type: sequence, expected a JSON object")),
            "{nested:?}"
        );
    }

    #[test]
    fn well_typed_bodies_parse_as_serde_would() {
        let body = parse_object::<Body>(br#"{"domains": ["contoso.com"], "inner": {"high": 1}, "value": [1, {"a": null}]}"#).unwrap();
        assert_eq!(body.domains, vec!["contoso.com"]);
        assert_eq!(body.inner, Some(Inner { high: 1 }));
        assert_eq!(body.value, Some(serde_json::json!([1, {"a": null}])));
        assert_eq!(parse_object::<Body>(b"{}").unwrap(), Body { domains: vec![], inner: None, value: None });
    }

    #[test]
    fn type_errors_name_the_field() {
        let error = parse_object::<Body>(br#"{"domains": ["a", 7]}"#).unwrap_err();
        assert!(matches!(&error, BodyError::Invalid(m) if m.starts_with("domains[1]: invalid type: integer `7`")), "{error:?}");
        let unknown = parse_object::<Body>(br#"{"msp_id": "other"}"#).unwrap_err();
        assert!(matches!(&unknown, BodyError::Invalid(m) if m.contains("unknown field `msp_id`")), "{unknown:?}");
    }

    #[test]
    fn nesting_is_measured_outside_strings_only() {
        assert_eq!(nesting_exceeds(b"[[[]]]", 3), None);
        assert_eq!(nesting_exceeds(b"[[[[]]]]", 3), Some(4));
        assert_eq!(nesting_exceeds(br#"{"a": "[[[[[[\"[[[["}"#, 1), None, "brackets inside strings (and escaped quotes) do not count");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(parse_object::<Body>(deep.as_bytes()), Err(BodyError::Malformed(m)) if m.contains("nested deeper than 64")));
    }

    #[test]
    fn malformed_json_is_malformed() {
        assert!(matches!(parse_object::<Body>(b"{\"domains\": "), Err(BodyError::Malformed(_))));
        assert!(matches!(parse_object::<Body>(&[0xff, 0xfe]), Err(BodyError::Malformed(_))));
    }
}
