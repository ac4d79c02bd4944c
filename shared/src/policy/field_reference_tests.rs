//! Property test: paths read through a record's tape give exactly what the previous walker over
//! `serde_json::Value` gave (kept here as the reference), on random record-shaped documents:
//! Name/Value lists, JSON and cmdlet lines inside strings, numbers, escapes, nulls, nesting.

use super::*;
use crate::audit::AuditRecord;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// The walker paths used before the tape: a `serde_json::Value` tree, decoded per visit.
struct Reference<'a> {
    segments: Vec<&'a str>,
    joined: Vec<Vec<String>>,
}

impl<'a> Reference<'a> {
    fn new(path: &'a str) -> Self {
        let segments: Vec<&str> = path.split('.').collect();
        let joined =
            (0..segments.len()).map(|start| (start + 1..=segments.len()).map(|end| segments[start..end].join(".")).collect()).collect();
        Self { segments, joined }
    }

    fn texts(&self, record: &Map<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(top) = object_get(record, self.segments[0]).filter(|v| !v.is_null()) {
            let _ = self.walk(top, 1, &mut |v| {
                out.extend(text_of(v).map(Cow::into_owned));
                ControlFlow::Continue(())
            });
        }
        out
    }

    fn walk(&self, value: &Value, at: usize, f: &mut dyn FnMut(&Value) -> ControlFlow<()>) -> ControlFlow<()> {
        if at == self.segments.len() {
            return finish_value(value, f);
        }
        match value {
            Value::Array(items) => match self.select_named(items, at, f) {
                Some(flow) => flow,
                None => {
                    for item in items {
                        self.walk(item, at, f)?;
                    }
                    ControlFlow::Continue(())
                }
            },
            Value::Object(map) => match object_get(map, self.segments[at]) {
                Some(child) => self.walk(child, at + 1, f),
                None => ControlFlow::Continue(()),
            },
            Value::String(text) => {
                let trimmed = text.trim_start();
                if trimmed.starts_with('[') || trimmed.starts_with('{') {
                    if let Ok(decoded) = serde_json::from_str::<Value>(text) {
                        return self.walk(&decoded, at, f);
                    }
                } else if trimmed.starts_with('-')
                    && let Some(pairs) = crate::audit::name_value_list(value)
                {
                    let list: Vec<Value> = pairs.into_iter().map(|(name, value)| json!({"Name": name, "Value": value})).collect();
                    return self.walk(&Value::Array(list), at, f);
                }
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn select_named(&self, items: &[Value], at: usize, f: &mut dyn FnMut(&Value) -> ControlFlow<()>) -> Option<ControlFlow<()>> {
        let names = &self.joined[at];
        for take in (1..=names.len()).rev() {
            let name = &names[take - 1];
            let mut found = false;
            for item in items {
                if !item.get("Name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name)) {
                    continue;
                }
                found = true;
                let next = at + take;
                let flow = if next == self.segments.len() {
                    match ["Value", "NewValue"].into_iter().find_map(|key| item.get(key)) {
                        Some(value) => finish_value(value, f),
                        None => ControlFlow::Continue(()),
                    }
                } else {
                    self.walk(item, next, f)
                };
                if flow.is_break() {
                    return Some(flow);
                }
            }
            if found {
                return Some(ControlFlow::Continue(()));
            }
        }
        None
    }
}

fn object_get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

fn finish_value(value: &Value, f: &mut dyn FnMut(&Value) -> ControlFlow<()>) -> ControlFlow<()> {
    match value {
        Value::Null => ControlFlow::Continue(()),
        Value::Array(items) => {
            for item in items {
                finish_value(item, f)?;
            }
            ControlFlow::Continue(())
        }
        Value::String(text) if text.trim_start().starts_with('[') => match serde_json::from_str::<Value>(text) {
            Ok(decoded @ Value::Array(_)) => finish_value(&decoded, f),
            _ => f(value),
        },
        other => f(other),
    }
}

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Keys and names a path can ask for (some differ only in case, one holds a dot).
const KEYS: &[&str] = &["Name", "Value", "NewValue", "OldValue", "Role", "Role.DisplayName", "DisplayName", "state", "State", "Id", "x"];

fn scalar(random: &mut Random) -> Value {
    match random.below(9) {
        0 => Value::Null,
        1 => json!(random.below(3) == 0),
        2 => json!(random.below(2000) as i64 - 1000),
        3 => json!(1.5e3),
        4 => json!(0.25),
        5 => json!("C:\\Temp \"quoted\" \u{e9}"),
        6 => json!(random.pick(&["Enabled", "enabled", "1", "", "x@contoso.com"])),
        7 => json!("-Identity \"a b\" -State Enabled -Force"),
        _ => json!(random.pick(KEYS)),
    }
}

fn document(random: &mut Random, depth: usize) -> Value {
    if depth == 0 {
        return scalar(random);
    }
    match random.below(6) {
        0 | 1 => scalar(random),
        2 => {
            let list: Vec<Value> = (0..random.below(4))
                .map(|_| {
                    let mut entry = Map::new();
                    entry.insert("Name".into(), json!(random.pick(KEYS)));
                    entry.insert(random.pick(&["Value", "NewValue", "OldValue"]).into(), document(random, depth - 1));
                    if random.below(2) == 0 {
                        entry.insert("OldValue".into(), document(random, depth - 1));
                    }
                    Value::Object(entry)
                })
                .collect();
            Value::Array(list)
        }
        3 => Value::Array((0..random.below(4)).map(|_| document(random, depth - 1)).collect()),
        4 => Value::String(document(random, depth - 1).to_string()),
        _ => {
            let mut object = Map::new();
            for _ in 0..random.below(4) {
                object.insert(random.pick(KEYS).to_owned(), document(random, depth - 1));
            }
            Value::Object(object)
        }
    }
}

#[test]
fn property_paths_read_through_the_tape_give_what_the_value_walker_gave() {
    let mut random = Random(0x5EED_F1E1_D0C5);
    let mut reached = 0usize;
    for case in 0..5000 {
        let mut record = Map::new();
        for key in ["Role", "state", "Value", "x"] {
            record.insert(key.to_owned(), document(&mut random, 4));
        }
        let root = random.pick(&["Role", "state", "STATE", "Value", "x"]);
        let path_text = std::iter::once(root).chain((0..random.below(3)).map(|_| random.pick(KEYS))).collect::<Vec<_>>().join(".");
        let path = FieldPath::parse(&path_text).unwrap();
        let expected = Reference::new(&path_text).texts(&record);
        assert_eq!(path.resolve(&Doc::from_value(&Value::Object(record.clone()))), expected, "case {case}: {path_text} in a document");
        let mut with_common = record.clone();
        with_common.extend([
            ("Id".to_owned(), json!("r-1")),
            ("RecordType".to_owned(), json!(1)),
            ("CreationTime".to_owned(), json!("2026-01-05T10:00:00")),
            ("Operation".to_owned(), json!("X")),
        ]);
        let text = Value::Object(with_common).to_string();
        assert_eq!(path.resolve(&AuditRecord::from_json(&text).unwrap()), expected, "case {case}: {path_text} in {text}");
        reached += usize::from(!expected.is_empty());
    }
    assert!(reached > 1000, "the paths reach values in enough cases to mean something ({reached})");
}
