//! Random request bodies for property tests of the config API: every route must answer them with
//! a 2xx or a 4xx problem, never a 5xx or a dropped connection.
//!
//! Bodies are drawn from a seeded generator (xorshift), so a failing case is reproduced by its
//! seed. They mix what fuzzers find and what callers get wrong: well-formed objects whose keys are
//! the API's own field names with values of every type, wrong top-level types, deep nesting,
//! long strings and lists, numbers at the edges, and bytes that are not JSON or not UTF-8.

use serde_json::{Map, Value, json};

/// Field names the API's bodies use, so random objects reach past "unknown field".
pub const API_FIELD_NAMES: &[&str] = &[
    "tenant_id",
    "name",
    "domains",
    "client_id",
    "client_secret",
    "company_id",
    "api_root",
    "public_key",
    "private_key",
    "board_id",
    "priorities",
    "high",
    "streams",
    "publisher_identifier",
    "status",
    "assignee",
    "classification",
    "comment",
    "reason",
    "scope",
    "expires_at",
    "user",
    "policy_id",
    "conditions",
    "policy",
    "records",
    "enabled",
    "break_glass_accounts",
    "id",
    "description",
    "category",
    "severity",
    "activity",
    "trigger",
    "all",
    "any",
    "not",
    "field",
    "op",
    "value",
    "RecordType",
    "Operation",
    "CreationTime",
    "Id",
    "UserId",
];

/// A seeded generator of hostile bodies.
#[derive(Debug, Clone)]
pub struct RandomJson {
    state: u64,
}

impl RandomJson {
    /// A generator; the same seed gives the same bodies.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    fn string(&mut self) -> String {
        match self.below(8) {
            0 => String::new(),
            1 => "x".repeat(self.below(70_000)),
            2 => "é☃\u{0}\u{202e}\"\\".repeat(1 + self.below(50)),
            3 => "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11".into(),
            4 => "builtin.forwarding-rule".into(),
            5 => "https://127.0.0.1:22/apis/3.0".into(),
            6 => "2026-01-05T10:00:00Z".into(),
            _ => API_FIELD_NAMES[self.below(API_FIELD_NAMES.len())].to_owned(),
        }
    }

    fn number(&mut self) -> Value {
        match self.below(6) {
            0 => json!(0),
            1 => json!(-1),
            2 => json!(i64::MAX),
            3 => json!(u64::MAX),
            4 => json!(1e308),
            _ => json!(self.below(1000)),
        }
    }

    /// A random value at most `depth` levels deep.
    pub fn value(&mut self, depth: usize) -> Value {
        let pick = if depth == 0 { self.below(4) } else { self.below(7) };
        match pick {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => self.number(),
            3 => Value::String(self.string()),
            4 => {
                let len = if self.below(10) == 0 { self.below(2_000) } else { self.below(5) };
                let child_depth = if len > 10 { 0 } else { depth - 1 };
                Value::Array((0..len).map(|_| self.value(child_depth)).collect())
            }
            _ => self.object(depth - 1),
        }
    }

    /// A random object whose keys are mostly the API's field names.
    pub fn object(&mut self, depth: usize) -> Value {
        let mut map = Map::new();
        for _ in 0..self.below(7) {
            let key = if self.below(5) == 0 { self.string() } else { API_FIELD_NAMES[self.below(API_FIELD_NAMES.len())].to_owned() };
            let value = self.value(depth);
            map.insert(key, value);
        }
        Value::Object(map)
    }

    /// A random request body: mostly JSON objects, sometimes other JSON, deep nesting, or bytes
    /// that are not JSON at all.
    pub fn body(&mut self) -> Vec<u8> {
        match self.below(12) {
            0 => {
                let depth = 1 + self.below(20_000);
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
            }
            1 => {
                let depth = 1 + self.below(20_000);
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()
            }
            2 => {
                let mut text = self.object(3).to_string().into_bytes();
                let cut = self.below(text.len());
                text.truncate(cut);
                text
            }
            3 => (0..self.below(64)).map(|_| u8::try_from(self.below(256)).unwrap_or(0)).collect(),
            4 => self.value(3).to_string().into_bytes(),
            _ => self.object(4).to_string().into_bytes(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bodies() {
        let (mut a, mut b) = (RandomJson::new(7), RandomJson::new(7));
        for _ in 0..50 {
            assert_eq!(a.body(), b.body());
        }
    }

    #[test]
    fn bodies_cover_objects_other_json_and_non_json() {
        let mut random = RandomJson::new(1);
        let bodies: Vec<Vec<u8>> = (0..400).map(|_| random.body()).collect();
        let parsed: Vec<Option<Value>> = bodies.iter().map(|b| serde_json::from_slice(b).ok()).collect();
        assert!(parsed.iter().any(|v| v.as_ref().is_some_and(Value::is_object)));
        assert!(parsed.iter().any(|v| v.as_ref().is_some_and(|v| !v.is_object())));
        assert!(parsed.iter().any(Option::is_none));
    }
}
