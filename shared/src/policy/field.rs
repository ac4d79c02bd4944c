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
//!
//! Values are visited in place, on the record's JSON tape ([`crate::tape`]): nothing is
//! allocated but a field's tape, and what a string holds is decoded once per record however
//! many policies read it.

use crate::tape::{Doc, Kind, NodeRef};
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU32;

/// Where a path starts: a record's top-level fields.
pub trait FieldSource {
    /// A top-level field by name (exact, else ignoring ASCII case); `None` when absent or null.
    /// `hint` is the path's memory of where the field was last found (see
    /// [`crate::audit::AuditRecord::field_node`]); a source may ignore it.
    fn top_field(&self, key: &str, hint: Option<&FieldHint>) -> Option<NodeRef<'_>>;
}

impl FieldSource for crate::audit::AuditRecord {
    fn top_field(&self, key: &str, hint: Option<&FieldHint>) -> Option<NodeRef<'_>> {
        self.field_node(key, hint)
    }
}

/// A document whose root is an object: its members are the top-level fields.
impl FieldSource for Doc {
    fn top_field(&self, key: &str, _hint: Option<&FieldHint>) -> Option<NodeRef<'_>> {
        self.root().member(key).filter(|node| node.kind() != Kind::Null)
    }
}

/// What a path knows about its first segment before it looks: the key's print (see
/// [`crate::audit::AuditRecord::field_node`]) and where it was last found among a record's
/// fields (records of one type list their fields in the same order).
#[derive(Debug, Default)]
pub struct FieldHint {
    pub(crate) print: u64,
    pub(crate) at: AtomicU32,
}

impl FieldHint {
    /// The hint of a path starting at `key`.
    #[must_use]
    pub fn new(key: &str) -> Self {
        Self { print: crate::audit::key_print(key.as_bytes()), at: AtomicU32::new(0) }
    }
}

impl Clone for FieldHint {
    fn clone(&self) -> Self {
        Self { print: self.print, at: AtomicU32::new(self.at.load(std::sync::atomic::Ordering::Relaxed)) }
    }
}

impl PartialEq for FieldHint {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for FieldHint {}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
    /// `joined[start][n - 1]`: segments `start..start + n` joined by dots, for Name/Value names
    /// that contain dots (`Role.DisplayName`).
    joined: Vec<Vec<String>>,
    hint: FieldHint,
    /// The last segment names an IP address field (see [`Self::is_ip_field`]).
    ip: bool,
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
        // Each pair of segments is indexed below, so the length is bounded before splitting.
        if trimmed.chars().nth(crate::limits::FIELD_PATH_CHARS).is_some() {
            return Err(format!("a field path has at most {} characters", crate::limits::FIELD_PATH_CHARS));
        }
        let segments: Vec<String> = trimmed.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| s.trim().is_empty()) {
            return Err(format!("field path {trimmed:?} has an empty segment"));
        }
        let joined =
            (0..segments.len()).map(|start| (start + 1..=segments.len()).map(|end| segments[start..end].join(".")).collect()).collect();
        let hint = FieldHint::new(&segments[0]);
        let ip = segments.last().is_some_and(|s| {
            let s = s.to_ascii_lowercase();
            s.ends_with("ip") || s.ends_with("ipaddress")
        });
        Ok(Self { text: trimmed.to_owned(), segments, joined, hint, ip })
    }

    /// The path as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the path names an IP address field (`ClientIP`, `ActorIpAddress`, …), whose
    /// values are compared without port or brackets.
    #[must_use]
    pub fn is_ip_field(&self) -> bool {
        self.ip
    }

    /// Calls `f` with the text of every value the path reaches in `root` (`null`s left out;
    /// see [`NodeRef::text`]) until `f` breaks. Returns whether it broke.
    pub fn visit<S: FieldSource + ?Sized>(&self, root: &S, f: &mut dyn FnMut(&str) -> ControlFlow<()>) -> bool {
        match root.top_field(&self.segments[0], Some(&self.hint)) {
            Some(node) => self.walk(node, 1, f).is_break(),
            None => false,
        }
    }

    /// Every value the path reaches in `root` (empty when it reaches nothing), as text; for tests.
    #[cfg(test)]
    #[must_use]
    pub fn resolve<S: FieldSource + ?Sized>(&self, root: &S) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(root, &mut |text| {
            out.push(text.to_owned());
            ControlFlow::Continue(())
        });
        out
    }

    /// The first value the path reaches, as text.
    #[must_use]
    pub fn first_text<S: FieldSource + ?Sized>(&self, root: &S) -> Option<String> {
        let mut found = None;
        self.visit(root, &mut |text| {
            found = Some(text.to_owned());
            ControlFlow::Break(())
        });
        found
    }

    fn walk(&self, node: NodeRef<'_>, at: usize, f: &mut dyn FnMut(&str) -> ControlFlow<()>) -> ControlFlow<()> {
        if at == self.segments.len() {
            return finish(node, f);
        }
        match node.kind() {
            Kind::Array => match self.select_named(node, at, f) {
                Some(flow) => flow,
                None => {
                    for item in node.items() {
                        self.walk(item, at, f)?;
                    }
                    ControlFlow::Continue(())
                }
            },
            Kind::Object => match node.member(&self.segments[at]) {
                Some(child) => self.walk(child, at + 1, f),
                None => ControlFlow::Continue(()),
            },
            // JSON inside a string, or a cmdlet line: followed as what it holds.
            Kind::String => match node.inner() {
                Some(inner) => self.walk(inner, at, f),
                None => ControlFlow::Continue(()),
            },
            _ => ControlFlow::Continue(()),
        }
    }

    /// Treats `list` as a Name/Value list and follows the entries named by the longest run of
    /// segments from `at`. `None` when no entry has a matching name (the caller then flattens).
    fn select_named(&self, list: NodeRef<'_>, at: usize, f: &mut dyn FnMut(&str) -> ControlFlow<()>) -> Option<ControlFlow<()>> {
        let names = &self.joined[at];
        for take in (1..=names.len()).rev() {
            let name = &names[take - 1];
            let mut found = false;
            for item in list.items() {
                if !item.name_member().and_then(|n| n.str()).is_some_and(|n| n.eq_ignore_ascii_case(name)) {
                    continue;
                }
                found = true;
                let next = at + take;
                let flow = if next == self.segments.len() {
                    match item.member_exact("Value").or_else(|| item.member_exact("NewValue")) {
                        Some(value) => finish(value, f),
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

/// Scalar text of a `serde_json::Value` as paths read it before the tape (strings as they are,
/// numbers and booleans printed, arrays and objects as JSON; `None` for null): the reference
/// [`NodeRef::text`] is tested against.
#[cfg(test)]
#[must_use]
pub(crate) fn text_of(value: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    use serde_json::Value;
    use std::borrow::Cow;
    match value {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// At the end of a path: arrays are flattened, strings holding a JSON array decoded and flattened.
fn finish(node: NodeRef<'_>, f: &mut dyn FnMut(&str) -> ControlFlow<()>) -> ControlFlow<()> {
    match node.kind() {
        Kind::Null => ControlFlow::Continue(()),
        Kind::Array => {
            for item in node.items() {
                finish(item, f)?;
            }
            ControlFlow::Continue(())
        }
        Kind::String => {
            let text = node.str().unwrap_or_default();
            if opens_array(text)
                && let Some(inner) = node.inner().filter(|inner| inner.kind() == Kind::Array)
            {
                return finish(inner, f);
            }
            f(text)
        }
        _ => match node.text() {
            Some(text) => f(&text),
            None => ControlFlow::Continue(()),
        },
    }
}

/// Whether `text` starts with `[` after any whitespace (as `text.trim_start().starts_with('[')`),
/// answered from the first byte when it is ASCII and not whitespace, as nearly every value's is.
fn opens_array(text: &str) -> bool {
    match text.as_bytes().first() {
        None => false,
        Some(b'[') => true,
        Some(&byte) if byte.is_ascii() && !char::from(byte).is_whitespace() => false,
        Some(_) => text.trim_start().starts_with('['),
    }
}

#[cfg(test)]
#[path = "field_reference_tests.rs"]
mod reference_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn texts(path: &str, record: &Value) -> Vec<String> {
        FieldPath::parse(path).unwrap().resolve(&Doc::from_value(record))
    }

    #[test]
    fn a_text_opens_an_array_exactly_when_it_does_after_its_leading_whitespace() {
        for text in ["", "[", "[1]", " [", "\u{b}[", "\u{a0}[", "\u{2003}x", "x[", "{", "\t\n\r\u{c} [x", "é[", " "] {
            assert_eq!(opens_array(text), text.trim_start().starts_with('['), "{text:?}");
        }
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
    fn paths_are_equal_by_what_they_name_whatever_their_hints_learned() {
        let (used, fresh) = (FieldPath::parse("UserId").unwrap(), FieldPath::parse("UserId").unwrap());
        let record = Doc::from_value(&json!({"Id": "r", "Other": 1, "UserId": "alice"}));
        assert_eq!(used.first_text(&record).as_deref(), Some("alice"));
        used.hint.at.store(2, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(used, fresh);
        assert_ne!(used, FieldPath::parse("UserKey").unwrap());
        assert!(FieldPath::parse("ClientIP").unwrap().is_ip_field() && FieldPath::parse("Actor.IPAddress").unwrap().is_ip_field());
        assert!(!FieldPath::parse("UserId").unwrap().is_ip_field());
    }

    #[test]
    fn empty_paths_and_segments_are_refused() {
        assert!(FieldPath::parse("").is_err());
        assert!(FieldPath::parse("Parameters..X").is_err());
    }
}
