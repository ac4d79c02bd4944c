//! A small, dependency-free validator for JSON request bodies against the component schemas of
//! an OpenAPI 3.0 document.
//!
//! It understands exactly the subset of OpenAPI that the vendor schemas we simulate use
//! (ConnectWise Manage publishes its models this way):
//!
//! * `$ref` to `#/components/schemas/X` (all references are checked when the set is built);
//! * `type` `string`, `integer` (with `format: int32`/`int64` range checks), `number`,
//!   `boolean`, `object` (with `properties`, `required`, `additionalProperties`) and `array`
//!   (with `items`);
//! * `enum` on strings, `nullable`;
//! * string formats `date-time` (RFC 3339) and `uuid`;
//! * maximum string lengths, which ConnectWise does **not** express as `maxLength` but inside the
//!   property `description`, as `" Max length: N;"` (a real `maxLength` keyword is honoured too).
//!
//! Deliberate differences from a general-purpose validator:
//!
//! * **Unknown properties are rejected** (when the schema lists `properties` and has no
//!   `additionalProperties`), as the live ConnectWise API refuses unknown members with a `400`;
//!   this also catches typos in our own clients (`externalXref` instead of `externalXRef`).
//! * A schema of `type: object` with neither `properties` nor `additionalProperties` is treated
//!   as "any JSON value". Such schemas come from .NET `object` members (for example
//!   `CustomFieldValue.value`), which accept strings, numbers and booleans on the real API.
//! * `_info` (read-only metadata, `additionalProperties: string`) is accepted in requests like
//!   any other declared property.
//! * String lengths are counted in Unicode scalar values (`char`s).
//!
//! Violations carry a ConnectWise-style code (`NullValue`, `InvalidField`, `MaxLength`) and a
//! slash-separated field path (`summary`, `company/id`, `customFields/0/id`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

const REF_PREFIX: &str = "#/components/schemas/";
/// Guard against pathological recursion (schemas may be self-referential; values are finite,
/// but a hostile deeply nested body should not blow the stack).
const MAX_DEPTH: usize = 64;

/// What kind of rule a value broke. The names follow ConnectWise's per-field error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationCode {
    /// A required property is missing, or a property is `null` although not `nullable`.
    NullValue,
    /// Wrong JSON type, value not in the `enum`, out of the integer range, bad format, or a
    /// property the schema does not declare.
    InvalidField,
    /// A string longer than the schema's maximum length.
    MaxLength,
}

impl ViolationCode {
    /// The wire spelling of the code, e.g. `"NullValue"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::NullValue => "NullValue",
            ViolationCode::InvalidField => "InvalidField",
            ViolationCode::MaxLength => "MaxLength",
        }
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Slash-separated path of the offending property, e.g. `"summary"` or `"company/id"`.
    /// Empty for the root value.
    pub field: String,
    pub code: ViolationCode,
    pub message: String,
}

/// What [`SchemaSet::lookup_property`] found at the end of a property path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedProperty {
    /// The path with each segment spelled exactly as the schema declares it.
    pub canonical_path: Vec<String>,
    /// `type` of the leaf schema (after following `$ref`), if it declares one.
    pub type_name: Option<String>,
    /// `format` of the leaf schema, if any.
    pub format: Option<String>,
}

/// The component schemas of one OpenAPI document, ready to validate values against.
#[derive(Debug, Clone)]
pub struct SchemaSet {
    schemas: BTreeMap<String, Value>,
}

impl SchemaSet {
    /// Parses an OpenAPI 3 document and keeps its `components.schemas`. Fails if the text is not
    /// JSON, has no `components.schemas` object, or contains a `$ref` that does not resolve to
    /// one of those schemas.
    pub fn from_openapi_json(text: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("OpenAPI document is not JSON: {e}"))?;
        let schemas = doc
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(Value::as_object)
            .ok_or_else(|| "OpenAPI document has no components.schemas object".to_string())?;
        let set = SchemaSet { schemas: schemas.iter().map(|(k, v)| (k.clone(), v.clone())).collect() };
        for (name, schema) in &set.schemas {
            set.check_refs(schema).map_err(|e| format!("schema {name}: {e}"))?;
        }
        Ok(set)
    }

    /// Whether a component schema of that name exists.
    pub fn contains(&self, schema_name: &str) -> bool {
        self.schemas.contains_key(schema_name)
    }

    /// Names of all component schemas, sorted.
    pub fn schema_names(&self) -> impl Iterator<Item = &str> {
        self.schemas.keys().map(String::as_str)
    }

    /// Validates `value` against the component schema `schema_name`. An empty result means the
    /// value is valid. An unknown schema name yields a single `InvalidField` violation on the
    /// root.
    pub fn validate(&self, schema_name: &str, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        match self.schemas.get(schema_name) {
            Some(schema) => self.validate_value(schema, value, "", 0, &mut out),
            None => out.push(Violation {
                field: String::new(),
                code: ViolationCode::InvalidField,
                message: format!("unknown schema {schema_name}"),
            }),
        }
        out
    }

    /// Follows a slash-separated property path (`company/id`, `status/name`) through
    /// `properties` and `$ref`s of `schema_name`, matching property names case-insensitively (as
    /// ConnectWise's condition parser does). Returns `None` if a segment is unknown or the path
    /// tries to descend into something that is not an object with properties.
    pub fn lookup_property(&self, schema_name: &str, path: &str) -> Option<ResolvedProperty> {
        let mut schema = self.resolve(self.schemas.get(schema_name)?)?;
        let mut canonical = Vec::new();
        for segment in path.split('/') {
            let props = schema.get("properties")?.as_object()?;
            let (name, sub) = props.iter().find(|(k, _)| k.eq_ignore_ascii_case(segment))?;
            canonical.push(name.clone());
            schema = self.resolve(sub)?;
        }
        if canonical.is_empty() {
            return None;
        }
        Some(ResolvedProperty {
            canonical_path: canonical,
            type_name: schema.get("type").and_then(Value::as_str).map(str::to_string),
            format: schema.get("format").and_then(Value::as_str).map(str::to_string),
        })
    }

    fn check_refs(&self, schema: &Value) -> Result<(), String> {
        match schema {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref") {
                    let r = r.as_str().ok_or("non-string $ref")?;
                    let name = r.strip_prefix(REF_PREFIX).ok_or_else(|| format!("unsupported $ref {r}"))?;
                    if !self.schemas.contains_key(name) {
                        return Err(format!("dangling $ref {r}"));
                    }
                }
                map.values().try_for_each(|v| self.check_refs(v))
            }
            Value::Array(items) => items.iter().try_for_each(|v| self.check_refs(v)),
            _ => Ok(()),
        }
    }

    /// Follows `$ref` chains (bounded) to the schema object that describes the value.
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> Option<&'a Value> {
        for _ in 0..MAX_DEPTH {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => schema = self.schemas.get(r.strip_prefix(REF_PREFIX)?)?,
                None => return Some(schema),
            }
        }
        None
    }

    fn validate_value(&self, schema: &Value, value: &Value, path: &str, depth: usize, out: &mut Vec<Violation>) {
        let label = if path.is_empty() { "value" } else { path };
        if depth > MAX_DEPTH {
            push(out, path, ViolationCode::InvalidField, format!("{label} is nested too deeply"));
            return;
        }
        let Some(schema) = self.resolve(schema) else {
            push(out, path, ViolationCode::InvalidField, format!("{label} has an unresolvable schema"));
            return;
        };

        if value.is_null() {
            if !schema.get("nullable").and_then(Value::as_bool).unwrap_or(false) {
                push(out, path, ViolationCode::NullValue, format!("{label} may not be null"));
            }
            return;
        }

        match schema.get("type").and_then(Value::as_str) {
            Some("string") => self.validate_string(schema, value, path, label, out),
            Some("integer") => validate_integer(schema, value, path, label, out),
            Some("number") if !value.is_number() => push(out, path, ViolationCode::InvalidField, type_msg(label, "a number", value)),
            Some("boolean") if !value.is_boolean() => push(out, path, ViolationCode::InvalidField, type_msg(label, "a boolean", value)),
            Some("array") => match value.as_array() {
                Some(items) => {
                    if let Some(item_schema) = schema.get("items") {
                        for (i, item) in items.iter().enumerate() {
                            let item_path = join(path, &i.to_string());
                            self.validate_value(item_schema, item, &item_path, depth + 1, out);
                        }
                    }
                }
                None => push(out, path, ViolationCode::InvalidField, type_msg(label, "an array", value)),
            },
            Some("object") => self.validate_object(schema, value, path, label, depth, out),
            // No type (or one we do not model): anything goes.
            _ => {}
        }
    }

    fn validate_string(&self, schema: &Value, value: &Value, path: &str, label: &str, out: &mut Vec<Violation>) {
        let Some(s) = value.as_str() else {
            push(out, path, ViolationCode::InvalidField, type_msg(label, "a string", value));
            return;
        };
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| a.as_str() == Some(s))
        {
            let list: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
            push(out, path, ViolationCode::InvalidField, format!("{label} must be one of {}, got {s:?}", list.join(", ")));
            return;
        }
        if let Some(max) = max_length(schema) {
            let len = s.chars().count();
            if len > max {
                push(out, path, ViolationCode::MaxLength, format!("{label} may be at most {max} characters long, got {len}"));
            }
        }
        match schema.get("format").and_then(Value::as_str) {
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                push(out, path, ViolationCode::InvalidField, format!("{label} must be an RFC 3339 date-time (e.g. 2025-01-01T00:00:00Z)"))
            }
            Some("uuid") if !is_uuid(s) => push(out, path, ViolationCode::InvalidField, format!("{label} must be a UUID")),
            _ => {}
        }
    }

    fn validate_object(&self, schema: &Value, value: &Value, path: &str, label: &str, depth: usize, out: &mut Vec<Violation>) {
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        if props.is_none() && additional.is_none() {
            // .NET `object`: free-form, any JSON value (see module docs).
            return;
        }
        let Some(obj) = value.as_object() else {
            push(out, path, ViolationCode::InvalidField, type_msg(label, "an object", value));
            return;
        };
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    let field = join(path, name);
                    push(out, &field, ViolationCode::NullValue, format!("{field} is required"));
                }
            }
        }
        let empty = Map::new();
        let props = props.unwrap_or(&empty);
        for (key, v) in obj {
            let field = join(path, key);
            if let Some(prop_schema) = props.get(key) {
                self.validate_value(prop_schema, v, &field, depth + 1, out);
            } else {
                match additional {
                    Some(Value::Bool(true)) => {}
                    Some(extra @ Value::Object(_)) => self.validate_value(extra, v, &field, depth + 1, out),
                    _ => {
                        let hint =
                            props.keys().find(|k| k.eq_ignore_ascii_case(key)).map(|k| format!(" (did you mean {k}?)")).unwrap_or_default();
                        push(out, &field, ViolationCode::InvalidField, format!("{field} is not a known property{hint}"));
                    }
                }
            }
        }
    }
}

fn validate_integer(schema: &Value, value: &Value, path: &str, label: &str, out: &mut Vec<Violation>) {
    let n = match value {
        Value::Number(n) => n,
        _ => {
            push(out, path, ViolationCode::InvalidField, type_msg(label, "an integer", value));
            return;
        }
    };
    let Some(i) = n.as_i64() else {
        let msg = if n.is_u64() { format!("{label} is out of range") } else { type_msg(label, "an integer", value) };
        push(out, path, ViolationCode::InvalidField, msg);
        return;
    };
    if schema.get("format").and_then(Value::as_str) == Some("int32") && i32::try_from(i).is_err() {
        push(out, path, ViolationCode::InvalidField, format!("{label} is out of the 32-bit integer range"));
    }
}

/// `maxLength`, or ConnectWise's `"... Max length: N; ..."` inside `description`.
fn max_length(schema: &Value) -> Option<usize> {
    if let Some(n) = schema.get("maxLength").and_then(Value::as_u64) {
        return usize::try_from(n).ok();
    }
    let desc = schema.get("description")?.as_str()?;
    let rest = &desc[desc.find("Max length:")? + "Max length:".len()..];
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() { segment.to_string() } else { format!("{path}/{segment}") }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_msg(label: &str, expected: &str, value: &Value) -> String {
    format!("{label} must be {expected}, got {}", json_type(value))
}

fn push(out: &mut Vec<Violation>, field: &str, code: ViolationCode, message: String) {
    out.push(Violation { field: field.to_string(), code, message });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    const CW_SCHEMAS: &str = include_str!("../../schemas/connectwise-manage-ticketing-schemas.json");

    fn cw() -> SchemaSet {
        SchemaSet::from_openapi_json(CW_SCHEMAS).unwrap()
    }

    fn codes(v: &[Violation]) -> Vec<(String, ViolationCode)> {
        v.iter().map(|v| (v.field.clone(), v.code)).collect()
    }

    fn tiny(schemas: Value) -> SchemaSet {
        SchemaSet::from_openapi_json(&json!({"openapi": "3.0.1", "components": {"schemas": schemas}}).to_string()).unwrap()
    }

    #[test]
    fn loads_the_connectwise_document() {
        let set = cw();
        for name in ["Ticket", "ServiceNote", "TicketNote", "CompanyReference", "BoardReference"] {
            assert!(set.contains(name), "{name}");
        }
        assert!(set.schema_names().count() > 50);
    }

    #[test]
    fn rejects_documents_without_schemas_or_with_dangling_refs() {
        assert!(SchemaSet::from_openapi_json("not json").is_err());
        assert!(SchemaSet::from_openapi_json(r#"{"openapi":"3.0.1"}"#).is_err());
        let dangling = json!({"components": {"schemas": {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}}
        }}});
        let err = SchemaSet::from_openapi_json(&dangling.to_string()).unwrap_err();
        assert!(err.contains("dangling"), "{err}");
    }

    #[test]
    fn minimal_ticket_is_valid() {
        let v = cw().validate("Ticket", &json!({"summary": "x", "company": {"id": 250}}));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn typical_ticket_is_valid() {
        let body = json!({
            "summary": "Vigil: impossible travel", "company": {"identifier": "ACME"},
            "board": {"id": 1}, "status": {"name": "New"}, "priority": {"id": 8},
            "severity": "High", "impact": "Medium", "recordType": "ServiceTicket",
            "initialDescription": "details", "externalXRef": "vigil:alert:abc",
            "processNotifications": false, "budgetHours": 1.5, "integratorTags": ["vigil"],
            "requiredDate": "2025-01-01T00:00:00Z",
            "customFields": [{"id": 3, "value": "free-form"}],
            "_info": {"lastUpdated": "2025-01-01T00:00:00Z"}
        });
        let v = cw().validate("Ticket", &body);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn missing_required_fields_are_null_value() {
        let v = cw().validate("Ticket", &json!({}));
        assert_eq!(codes(&v), vec![("summary".to_string(), ViolationCode::NullValue), ("company".to_string(), ViolationCode::NullValue)]);
    }

    #[test]
    fn null_where_not_nullable_is_null_value_but_nullable_is_fine() {
        let v = cw().validate("Ticket", &json!({"summary": null, "company": {"id": null}, "severity": null}));
        assert_eq!(codes(&v), vec![("summary".to_string(), ViolationCode::NullValue)]);
    }

    #[test]
    fn max_length_comes_from_the_description() {
        let v = cw().validate("Ticket", &json!({"summary": "a".repeat(101), "company": {"id": 1}, "zip": "1234567890123"}));
        assert_eq!(codes(&v), vec![("summary".to_string(), ViolationCode::MaxLength), ("zip".to_string(), ViolationCode::MaxLength)]);
        let ok = cw().validate("Ticket", &json!({"summary": "é".repeat(100), "company": {"id": 1}}));
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn wrong_types_enums_and_ranges_are_invalid_field() {
        let v = cw().validate(
            "Ticket",
            &json!({
                "summary": 5, "company": {"id": "250"}, "severity": "Critical",
                "closedFlag": "no", "budgetHours": "1", "integratorTags": "vigil",
                "board": {"id": 3_000_000_000_i64}, "priority": [], "mobileGuid": "nope",
                "requiredDate": "yesterday"
            }),
        );
        let mut got = codes(&v);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let expect: Vec<(String, ViolationCode)> = [
            "board/id",
            "budgetHours",
            "closedFlag",
            "company/id",
            "integratorTags",
            "mobileGuid",
            "priority",
            "requiredDate",
            "severity",
            "summary",
        ]
        .iter()
        .map(|f| (f.to_string(), ViolationCode::InvalidField))
        .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn unknown_properties_are_rejected_with_a_hint() {
        let v = cw().validate("Ticket", &json!({"summary": "x", "company": {"id": 1, "nmae": "x"}, "externalXref": "y"}));
        assert_eq!(
            codes(&v),
            vec![("company/nmae".to_string(), ViolationCode::InvalidField), ("externalXref".to_string(), ViolationCode::InvalidField)]
        );
        assert!(v[1].message.contains("did you mean externalXRef"), "{}", v[1].message);
    }

    #[test]
    fn additional_properties_schema_validates_info_values() {
        let v = cw().validate("Ticket", &json!({"summary": "x", "company": {"id": 1}, "_info": {"lastUpdated": 5}}));
        assert_eq!(codes(&v), vec![("_info/lastUpdated".to_string(), ViolationCode::InvalidField)]);
    }

    #[test]
    fn array_items_are_validated_with_indexed_paths() {
        let v = cw().validate(
            "Ticket",
            &json!({"summary": "x", "company": {"id": 1},
                    "customFields": [{"id": 1}, {"id": "two"}], "integratorTags": ["a", 1]}),
        );
        assert_eq!(
            codes(&v),
            vec![
                ("customFields/1/id".to_string(), ViolationCode::InvalidField),
                ("integratorTags/1".to_string(), ViolationCode::InvalidField)
            ]
        );
    }

    #[test]
    fn service_note_has_no_required_fields() {
        let set = cw();
        assert!(set.validate("ServiceNote", &json!({})).is_empty());
        assert!(set.validate("ServiceNote", &json!({"text": "hi", "internalAnalysisFlag": true})).is_empty());
        let v = set.validate("ServiceNote", &json!({"text": 1, "detailFlag": true}));
        assert_eq!(
            codes(&v),
            vec![("detailFlag".to_string(), ViolationCode::InvalidField), ("text".to_string(), ViolationCode::InvalidField)]
        );
    }

    #[test]
    fn unknown_schema_and_non_object_root() {
        let set = cw();
        assert_eq!(set.validate("Nope", &json!({})).len(), 1);
        let v = set.validate("Ticket", &json!([1]));
        assert_eq!(codes(&v), vec![(String::new(), ViolationCode::InvalidField)]);
    }

    #[test]
    fn maxlength_keyword_and_additional_properties_true_are_supported() {
        let set = tiny(json!({
            "A": {"type": "object", "additionalProperties": true,
                  "properties": {"s": {"type": "string", "maxLength": 2}}}
        }));
        assert!(set.validate("A", &json!({"s": "ab", "other": 1})).is_empty());
        assert_eq!(codes(&set.validate("A", &json!({"s": "abc"}))), vec![("s".to_string(), ViolationCode::MaxLength)]);
    }

    #[test]
    fn self_referential_schemas_terminate() {
        let set = tiny(json!({
            "Node": {"type": "object", "properties": {
                "next": {"$ref": "#/components/schemas/Node"}, "v": {"type": "integer"}}}
        }));
        let mut value = json!({"v": 1});
        for _ in 0..100 {
            value = json!({"next": value});
        }
        let v = set.validate("Node", &value);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("too deeply"));
    }

    #[test]
    fn lookup_property_is_case_insensitive_and_follows_refs() {
        let set = cw();
        let p = set.lookup_property("Ticket", "Company/ID").unwrap();
        assert_eq!(p.canonical_path, vec!["company", "id"]);
        assert_eq!(p.type_name.as_deref(), Some("integer"));
        let p = set.lookup_property("Ticket", "externalxref").unwrap();
        assert_eq!(p.canonical_path, vec!["externalXRef"]);
        assert!(set.lookup_property("Ticket", "company/nope").is_none());
        assert!(set.lookup_property("Ticket", "summary/x").is_none());
        assert!(set.lookup_property("Ticket", "").is_none());
    }
}
