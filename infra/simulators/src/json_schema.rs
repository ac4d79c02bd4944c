//! A small JSON Schema validator (the draft-06 keywords vendor schemas we simulate use), so a
//! simulator checks a body against the vendor's own schema file, not a hand-written idea of it.
//!
//! Supported: `$ref` to `#/definitions/…` (and `#`), `allOf`, `anyOf`, `oneOf`, `not`, `type`
//! (one or a list), `enum`, `const`, `properties`, `required`, `additionalProperties` (boolean
//! or schema, over the schema's own `properties` as the specification says), `items` (one
//! schema), `minItems`, `maxItems`, `minLength`, `maxLength` (in characters), `minimum`,
//! `maximum` and `pattern` (a regular expression, searched). Annotations (`description`,
//! `default`, `examples`, `title`, `format`, …) are ignored. A failed `anyOf` reports the
//! branch that came closest (fewest violations), so "the third body element's `wrap` must be
//! a boolean" reads as such instead of "matches none of 40 element kinds".

use serde_json::Value;

/// Guard against runaway recursion (schemas reference themselves; values are finite).
const MAX_DEPTH: usize = 128;

/// One violation: where (a JSON pointer into the value) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{path}: {}", self.message)
    }
}

/// A schema document (its `definitions` resolve `$ref`s).
#[derive(Debug, Clone)]
pub struct JsonSchema {
    root: Value,
}

impl JsonSchema {
    /// Parses a schema document.
    ///
    /// # Errors
    /// When the text is not JSON.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        Ok(Self { root: serde_json::from_str(text)? })
    }

    /// Every violation of `value` against the whole document (empty: valid).
    pub fn validate(&self, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(&self.root, value, "", 0, &mut out);
        out
    }

    /// Every violation of `value` against the definition `name`.
    pub fn validate_definition(&self, name: &str, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        match self.root.get("definitions").and_then(|d| d.get(name)) {
            Some(schema) => self.check(schema, value, "", 0, &mut out),
            None => out.push(Violation { path: String::new(), message: format!("no definition {name:?}") }),
        }
        out
    }

    fn resolve(&self, reference: &str) -> Option<&Value> {
        if reference == "#" {
            return Some(&self.root);
        }
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn check(&self, schema: &Value, value: &Value, path: &str, depth: usize, out: &mut Vec<Violation>) {
        let fail = |out: &mut Vec<Violation>, message: String| out.push(Violation { path: path.to_owned(), message });
        if depth > MAX_DEPTH {
            fail(out, "nested too deeply".into());
            return;
        }
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return fail(out, "no value is allowed here".into()),
            Value::Object(schema) => schema,
            _ => return,
        };
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => self.check(target, value, path, depth + 1, out),
                None => fail(out, format!("the schema's $ref {reference:?} does not resolve")),
            }
            // Draft-06: siblings of `$ref` are ignored.
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, path, depth + 1, out);
            }
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            let mut closest: Option<Vec<Violation>> = None;
            for sub in any {
                let mut errors = Vec::new();
                self.check(sub, value, path, depth + 1, &mut errors);
                if errors.is_empty() {
                    closest = None;
                    break;
                }
                if closest.as_ref().is_none_or(|c| errors.len() < c.len()) {
                    closest = Some(errors);
                }
            }
            if let Some(errors) = closest {
                out.extend(errors);
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let passing = one
                .iter()
                .filter(|sub| {
                    let mut errors = Vec::new();
                    self.check(sub, value, path, depth + 1, &mut errors);
                    errors.is_empty()
                })
                .count();
            if passing != 1 {
                fail(out, format!("must match exactly one of {} schemas (matches {passing})", one.len()));
            }
        }
        if let Some(not) = schema.get("not") {
            let mut errors = Vec::new();
            self.check(not, value, path, depth + 1, &mut errors);
            if errors.is_empty() {
                fail(out, "matches a schema it must not".into());
            }
        }
        if let Some(types) = schema.get("type") {
            let names: Vec<&str> = match types {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !names.is_empty() && !names.iter().any(|name| is_type(value, name)) {
                fail(out, format!("must be {} (is {})", names.join(" or "), type_name(value)));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let shown: Vec<String> = allowed.iter().take(12).map(Value::to_string).collect();
            fail(out, format!("{value} is not one of {}", shown.join(", ")));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            fail(out, format!("must be {constant}"));
        }
        match value {
            Value::Object(object) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                if let Some(required) = schema.get("required").and_then(Value::as_array) {
                    for name in required.iter().filter_map(Value::as_str) {
                        if !object.contains_key(name) {
                            fail(out, format!("{name:?} is required"));
                        }
                    }
                }
                for (name, member) in object {
                    let member_path = format!("{path}/{}", name.replace('~', "~0").replace('/', "~1"));
                    match properties.and_then(|p| p.get(name)) {
                        Some(sub) => self.check(sub, member, &member_path, depth + 1, out),
                        None => match schema.get("additionalProperties") {
                            Some(Value::Bool(false)) => fail(out, format!("{name:?} is not an allowed property")),
                            Some(extra @ Value::Object(_)) => self.check(extra, member, &member_path, depth + 1, out),
                            _ => {}
                        },
                    }
                }
            }
            Value::Array(items) => {
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    fail(out, format!("needs at least {min} items"));
                }
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                    && (items.len() as u64) > max
                {
                    fail(out, format!("takes at most {max} items"));
                }
                if let Some(item_schema) = schema.get("items").filter(|s| s.is_object() || s.is_boolean()) {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}/{i}"), depth + 1, out);
                    }
                }
            }
            Value::String(text) => {
                let chars = text.chars().count() as u64;
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && chars < min
                {
                    fail(out, format!("must have at least {min} characters"));
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && chars > max
                {
                    fail(out, format!("must have at most {max} characters (has {chars})"));
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                    match regex::Regex::new(pattern) {
                        Ok(re) if !re.is_match(text) => fail(out, format!("{text:?} does not match {pattern:?}")),
                        Ok(_) => {}
                        Err(_) => fail(out, format!("the schema's pattern {pattern:?} is not a regular expression")),
                    }
                }
            }
            Value::Number(number) => {
                let n = number.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                    && n < min
                {
                    fail(out, format!("must be at least {min}"));
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                    && n > max
                {
                    fail(out, format!("must be at most {max}"));
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> JsonSchema {
        JsonSchema::parse(
            r##"{"definitions": {
                "Text": {"type": "object", "properties": {"type": {"enum": ["Text"]}, "text": {"type": "string", "maxLength": 5}}, "required": ["text"], "additionalProperties": false},
                "Number": {"type": "object", "properties": {"type": {"enum": ["Number"]}, "n": {"type": "integer", "minimum": 1}}, "additionalProperties": false},
                "Item": {"anyOf": [{"$ref": "#/definitions/Text"}, {"$ref": "#/definitions/Number"}]}
            }, "type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/Item"}, "maxItems": 2},
               "color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}}}"##,
        )
        .unwrap()
    }

    #[test]
    fn a_valid_document_has_no_violations() {
        assert!(
            schema()
                .validate(&json!({"items": [{"type": "Text", "text": "hi"}, {"type": "Number", "n": 2}], "color": "#a0b1c2"}))
                .is_empty()
        );
    }

    #[test]
    fn each_rule_reports_where_and_what() {
        let s = schema();
        let shown = |v: Value| s.validate(&v).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            shown(json!({"items": [{"type": "Text", "text": "too long"}]})),
            ["/items/0/text: must have at most 5 characters (has 8)"]
        );
        assert_eq!(
            shown(json!({"items": [{"type": "Text", "txt": "x"}]})),
            ["/items/0: \"text\" is required", "/items/0: \"txt\" is not an allowed property"]
        );
        assert_eq!(shown(json!({"items": [{"type": "Number", "n": 0}]})), ["/items/0/n: must be at least 1"]);
        assert_eq!(shown(json!({"color": "red"})), ["/color: \"red\" does not match \"^#[0-9a-f]{6}$\""]);
        assert_eq!(shown(json!({"items": [1, 2, 3]})).len(), 4, "three non-objects and one item too many");
    }
}
