//! A JSON tape: one pass over a value's text records each node's kind, its span and where its
//! subtree ends, so policy field paths walk the record's own text instead of a tree of
//! allocated `serde_json::Value`s (one allocation per field instead of one per string, key and
//! object). A string is unescaped, and JSON held inside a string (or a cmdlet line) decoded, at
//! most once per node, on first use, and shared by every policy that reads it.
//!
//! Building a tape validates the text as JSON, as strictly as serde_json does (string escapes,
//! unescaped control characters, the number grammar, literals, brackets, trailing text), so the
//! evaluator reads each message in one pass, without a serde_json pass before it; nesting
//! deeper than [`MAX_DEPTH`] is refused too. A JSON text held inside a string that does not
//! validate reads as a plain string, never as something else.

use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::OnceLock;

/// Nesting deeper than this is refused (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 128;

/// How many node lists a thread keeps for reuse, and the largest it keeps.
const SPARE_LISTS: usize = 64;
const SPARE_LIST_NODES: usize = 2048;

thread_local! {
    /// Node lists of dropped tapes, reused by the next tapes built on the same thread: records
    /// are read and dropped by the thousand, and a list of a few kilobytes is too big for the
    /// allocator's fast path.
    static SPARE_NODES: RefCell<Vec<Vec<Node>>> = const { RefCell::new(Vec::new()) };
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    True,
    False,
    Number,
    String,
    Array,
    Object,
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// A string whose content holds a backslash (so it must be unescaped to be read).
    escaped: bool,
    /// A member of an object: its key's raw content (between the quotes); `(0, 0)` otherwise.
    key: (u32, u32),
    /// A string: its content between the quotes; any other value: all of it.
    span: (u32, u32),
    /// The index of the first node after this node's subtree.
    next: u32,
    /// An object's first member keyed exactly `Name` (its node index; 0: none), so a
    /// Name/Value list is searched without reading each entry's keys.
    name: u32,
}

/// What a string node learns on first use.
#[derive(Debug)]
struct StringCache {
    /// The text unescaped (`None` when it has no escapes: the raw text is the text).
    unescaped: Option<Box<str>>,
    /// What the string holds when read as JSON (`[`/`{`) or as a cmdlet line (`-Name value`),
    /// decoded on first use; `None` when it is neither.
    inner: OnceLock<Option<Doc>>,
}

/// The tape of one value inside a text it does not own (a whole record, whose text the
/// record keeps beside it).
#[derive(Debug)]
pub struct Tape {
    nodes: Vec<Node>,
    /// What string nodes learn on first use, by node index; the list itself is made when the
    /// first string needs it (kept apart so the nodes stay small: most never need it).
    caches: OnceLock<Box<[OnceLock<Box<StringCache>>]>>,
    /// With [`Tape::build_record`]: the root object's members, each as its key's print (see
    /// [`crate::audit::key_print`]) and its node, noted while they are read.
    top: Vec<(u64, u32)>,
    record: bool,
}

/// A text with its own tape: JSON decoded from inside a string, or a whole small document.
#[derive(Debug)]
pub struct Doc {
    text: Box<str>,
    tape: Tape,
}

/// One node of a tape, with the text it spans.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    text: &'a str,
    tape: &'a Tape,
    index: usize,
}

impl Tape {
    /// The tape of the value spanning `range` of `text`; `None` when that is not one JSON value.
    #[must_use]
    pub fn build(text: &str, range: std::ops::Range<usize>) -> Option<Self> {
        Self::build_as(text, range, false)
    }

    /// Like [`Self::build`], noting the root object's members for lookup as it goes
    /// ([`Self::top`]): a record's top-level fields.
    #[must_use]
    pub fn build_record(text: &str, range: std::ops::Range<usize>) -> Option<Self> {
        Self::build_as(text, range, true)
    }

    /// The root object's members as noted by [`Self::build_record`]: each key's print and node.
    #[must_use]
    pub fn top(&self) -> &[(u64, u32)] {
        &self.top
    }

    /// Like [`Self::build_record`] for the value at the start of `text` (after whitespace),
    /// which may go on after it (the next records of a message): the tape, and the index just
    /// past the value. Nothing after the value is read.
    #[must_use]
    pub fn build_record_prefix(text: &str) -> Option<(Self, usize)> {
        Self::build_from(text, 0, text.len() / 2, true)
    }

    /// Like [`Self::build`] for the value at the start of `text` (after whitespace), which may
    /// go on after it: the tape, and the index just past the value.
    #[must_use]
    pub fn build_prefix(text: &str) -> Option<(Self, usize)> {
        Self::build_from(text, 0, 64, false)
    }

    fn build_as(text: &str, range: std::ops::Range<usize>, record: bool) -> Option<Self> {
        let bytes = text.as_bytes().get(..range.end)?;
        let (tape, end) = Self::build_from(text.get(..range.end)?, range.start, range.len(), record)?;
        (skip_ws(bytes, end) == range.end).then_some(tape)
    }

    /// The tape of the value at `start` of `text` (room made for `expected` bytes of it), and
    /// the index just past the value.
    fn build_from(text: &str, start: usize, expected: usize, record: bool) -> Option<(Self, usize)> {
        let bytes = text.as_bytes();
        // Room for a node per 12 bytes of JSON (records have about one per 20), so the list
        // rarely grows.
        let mut nodes = SPARE_NODES.try_with(|spare| spare.borrow_mut().pop()).ok().flatten().unwrap_or_default();
        nodes.reserve(1 + expected / 12);
        let top = if record { Vec::with_capacity(48) } else { Vec::new() };
        let mut tape = Self { nodes, caches: OnceLock::new(), top, record };
        let end = tape.value(bytes, start, (0, 0), 0)?;
        Some((tape, end))
    }

    /// The root node, over the text the tape was built from.
    #[must_use]
    pub fn root<'a>(&'a self, text: &'a str) -> NodeRef<'a> {
        self.node(text, 0)
    }

    /// The node at `index` (see [`NodeRef::index`]).
    #[must_use]
    pub fn node<'a>(&'a self, text: &'a str, index: usize) -> NodeRef<'a> {
        NodeRef { text, tape: self, index }
    }

    fn push(&mut self, kind: Kind, key: (u32, u32), span: (usize, usize), escaped: bool) -> usize {
        let index = self.nodes.len();
        self.nodes.push(Node { kind, escaped, key, span: (offset(span.0), offset(span.1)), next: offset(index + 1), name: 0 });
        index
    }

    /// Reads the value at `i` (after whitespace); returns the index just past it.
    fn value(&mut self, b: &[u8], i: usize, key: (u32, u32), depth: usize) -> Option<usize> {
        let i = skip_ws(b, i);
        match *b.get(i)? {
            b'"' => {
                let (end, escaped) = scan_string(b, i)?;
                self.push(Kind::String, key, (i + 1, end - 1), escaped);
                Some(end)
            }
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let (kind, close) = if open == b'{' { (Kind::Object, b'}') } else { (Kind::Array, b']') };
                let index = self.push(kind, key, (i, i), false);
                let mut j = skip_ws(b, i + 1);
                if b.get(j) == Some(&close) {
                    j += 1;
                } else {
                    loop {
                        let member_key = if kind == Kind::Object {
                            if b.get(j) != Some(&b'"') {
                                return None;
                            }
                            let (key_end, _) = scan_string(b, j)?;
                            let member_key = (offset(j + 1), offset(key_end - 1));
                            j = skip_ws(b, key_end);
                            if b.get(j) != Some(&b':') {
                                return None;
                            }
                            j += 1;
                            member_key
                        } else {
                            (0, 0)
                        };
                        let member = self.nodes.len();
                        j = skip_ws(b, self.value(b, j, member_key, depth + 1)?);
                        let key_bytes = &b[member_key.0 as usize..member_key.1 as usize];
                        if self.nodes[index].name == 0 && key_bytes == b"Name" {
                            self.nodes[index].name = offset(member);
                        }
                        if depth == 0 && self.record && kind == Kind::Object {
                            self.top.push((crate::audit::key_print(key_bytes), offset(member)));
                        }
                        match b.get(j) {
                            Some(b',') => j = skip_ws(b, j + 1),
                            Some(c) if *c == close => {
                                j += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                let next = offset(self.nodes.len());
                let node = &mut self.nodes[index];
                node.span.1 = offset(j);
                node.next = next;
                Some(j)
            }
            first => {
                let (kind, literal): (Kind, &[u8]) = match first {
                    b't' => (Kind::True, b"true"),
                    b'f' => (Kind::False, b"false"),
                    b'n' => (Kind::Null, b"null"),
                    _ => (Kind::Number, b""),
                };
                let end =
                    if kind == Kind::Number { scan_number(b, i)? } else { b[i..].starts_with(literal).then_some(i + literal.len())? };
                self.push(kind, key, (i, end), false);
                Some(end)
            }
        }
    }
}

impl Drop for Tape {
    fn drop(&mut self) {
        let mut nodes = std::mem::take(&mut self.nodes);
        if nodes.capacity() == 0 || nodes.capacity() > SPARE_LIST_NODES {
            return;
        }
        nodes.clear();
        let _ = SPARE_NODES.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_LISTS {
                spare.push(nodes);
            }
        });
    }
}

impl Doc {
    /// A document over its own text; `None` when the text is not one JSON value.
    #[must_use]
    pub fn parse(text: Box<str>) -> Option<Self> {
        let start = skip_ws(text.as_bytes(), 0);
        let tape = Tape::build(&text, start..text.len())?;
        Some(Self { text, tape })
    }

    /// A document holding `value`.
    #[must_use]
    pub fn from_value(value: &Value) -> Self {
        Self::parse(value.to_string().into()).unwrap_or_else(|| Self { text: "null".into(), tape: Tape::null() })
    }

    /// The document's value.
    #[must_use]
    pub fn root(&self) -> NodeRef<'_> {
        self.tape.root(&self.text)
    }
}

impl Tape {
    fn null() -> Self {
        let mut tape = Self { nodes: Vec::new(), caches: OnceLock::new(), top: Vec::new(), record: false };
        tape.push(Kind::Null, (0, 0), (0, 4), false);
        tape
    }
}

impl<'a> NodeRef<'a> {
    fn node(&self) -> &'a Node {
        &self.tape.nodes[self.index]
    }

    fn slice(&self, (start, end): (u32, u32)) -> &'a str {
        &self.text[start as usize..end as usize]
    }

    /// The node's place in its tape.
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// What the node is.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.node().kind
    }

    /// The node's JSON text as it appears in the document (a string without its quotes).
    #[must_use]
    pub fn raw(&self) -> &'a str {
        self.slice(self.node().span)
    }

    /// A string's text, unescaped; `None` for other kinds.
    #[must_use]
    pub fn str(&self) -> Option<&'a str> {
        let node = self.node();
        if node.kind != Kind::String {
            return None;
        }
        let raw = self.slice(node.span);
        if !node.escaped {
            return Some(raw);
        }
        Some(self.cache().unescaped.as_deref().unwrap_or(raw))
    }

    fn cache(&self) -> &'a StringCache {
        let node = self.node();
        let caches = self.tape.caches.get_or_init(|| (0..self.tape.nodes.len()).map(|_| OnceLock::new()).collect());
        caches[self.index].get_or_init(|| {
            let unescaped = node.escaped.then(|| {
                let quoted = &self.text[node.span.0 as usize - 1..node.span.1 as usize + 1];
                serde_json::from_str::<String>(quoted).map_or_else(|_| self.slice(node.span).into(), String::into_boxed_str)
            });
            Box::new(StringCache { unescaped, inner: OnceLock::new() })
        })
    }

    /// The node as text, as a predicate compares it: a string as it is, `true`/`false`, a
    /// number as serde_json prints it, an object or array as compact JSON; `None` for null.
    #[must_use]
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match self.kind() {
            Kind::Null => None,
            Kind::String => self.str().map(Cow::Borrowed),
            Kind::True => Some(Cow::Borrowed("true")),
            Kind::False => Some(Cow::Borrowed("false")),
            Kind::Number => {
                let raw = self.raw();
                let digits = raw.strip_prefix('-').unwrap_or(raw);
                // Integers print as written; anything else the way serde_json prints its value.
                if !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|c| c.is_ascii_digit()) {
                    Some(Cow::Borrowed(raw))
                } else {
                    Some(Cow::Owned(serde_json::from_str::<serde_json::Number>(raw).map_or_else(|_| raw.to_owned(), |n| n.to_string())))
                }
            }
            Kind::Array | Kind::Object => {
                Some(Cow::Owned(serde_json::from_str::<Value>(self.raw()).map_or_else(|_| self.raw().to_owned(), |v| v.to_string())))
            }
        }
    }

    /// The node as a `serde_json::Value` (parsed now; for what is not on the hot path).
    #[must_use]
    pub fn to_value(&self) -> Value {
        match self.kind() {
            Kind::String => Value::String(self.str().unwrap_or_default().to_owned()),
            _ => serde_json::from_str(self.raw()).unwrap_or(Value::Null),
        }
    }

    /// The items of an array or the members of an object, in document order (nothing for
    /// other kinds).
    pub fn items(&self) -> impl Iterator<Item = NodeRef<'a>> + use<'a> {
        let (text, tape) = (self.text, self.tape);
        let node = self.node();
        let end = if matches!(node.kind, Kind::Array | Kind::Object) { node.next as usize } else { self.index + 1 };
        let mut at = self.index + 1;
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let item = NodeRef { text, tape, index: at };
                at = tape.nodes[at].next as usize;
                item
            })
        })
    }

    /// A member's key, raw (escapes left as written).
    #[must_use]
    pub fn key(&self) -> &'a str {
        self.slice(self.node().key)
    }

    /// An object's member by key: the exact key, else the first ignoring ASCII case.
    #[must_use]
    pub fn member(&self, key: &str) -> Option<NodeRef<'a>> {
        if self.kind() != Kind::Object {
            return None;
        }
        self.member_exact(key).or_else(|| self.items().find(|m| m.key().eq_ignore_ascii_case(key)))
    }

    /// An object's first member keyed exactly `Name` (found at parse, not searched).
    #[must_use]
    pub fn name_member(&self) -> Option<NodeRef<'a>> {
        let name = self.node().name as usize;
        (self.kind() == Kind::Object && name != 0).then_some(NodeRef { text: self.text, tape: self.tape, index: name })
    }

    /// An object's member with exactly this key.
    #[must_use]
    pub fn member_exact(&self, key: &str) -> Option<NodeRef<'a>> {
        if self.kind() != Kind::Object {
            return None;
        }
        self.items().find(|m| m.key() == key)
    }

    /// What a string holds: its JSON when it starts with `[` or `{`, its parameters as a
    /// Name/Value list when it is a cmdlet line (starts with `-`); decoded once per node.
    #[must_use]
    pub fn inner(&self) -> Option<NodeRef<'a>> {
        let text = self.str()?;
        let decoded = self.cache().inner.get_or_init(|| {
            let trimmed = text.trim_start();
            if trimmed.starts_with('[') || trimmed.starts_with('{') {
                Doc::parse(trimmed.into())
            } else if trimmed.starts_with('-') {
                let pairs = crate::audit::name_value_list(&Value::String(text.to_owned())).unwrap_or_default();
                let list: Vec<Value> = pairs.into_iter().map(|(name, value)| serde_json::json!({"Name": name, "Value": value})).collect();
                Some(Doc::from_value(&Value::Array(list)))
            } else {
                None
            }
        });
        decoded.as_ref().map(Doc::root)
    }
}

fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// The index of the first non-whitespace byte at or after `i`.
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The index just past the string starting at `i` (its opening quote), and whether it holds a
/// backslash. Eight bytes at a time: a word is tested for `"` and `\\` with bit arithmetic.
pub(crate) fn scan_string(b: &[u8], i: usize) -> Option<(usize, bool)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `word` that equals `byte` (exact for the lowest such byte).
    let find = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    // The high bit of each byte of `word` below 0x20 (exact for the lowest such byte).
    let control = |word: u64| word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let (mut j, mut escaped) = (i + 1, false);
    loop {
        while let Some(chunk) = b.get(j..j + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let hits = find(word, b'"') | find(word, b'\\') | control(word);
            if hits == 0 {
                j += 8;
            } else {
                j += (hits.trailing_zeros() / 8) as usize;
                break;
            }
        }
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                // The escapes JSON allows (as serde_json checks them): `\uXXXX` needs four hex digits.
                match *b.get(j + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 2,
                    b'u' if b.get(j + 2..j + 6)?.iter().all(u8::is_ascii_hexdigit) => j += 6,
                    _ => return None,
                }
            }
            // A control character must be escaped.
            0x00..0x20 => return None,
            _ => j += 1,
        }
    }
}

/// The index just past the number starting at `i`, which must follow JSON's grammar
/// (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as serde_json checks it).
fn scan_number(b: &[u8], i: usize) -> Option<usize> {
    let digits = |from: usize| from + b.get(from..).map_or(0, |rest| rest.iter().take_while(|c| c.is_ascii_digit()).count());
    let mut j = i + usize::from(b.get(i) == Some(&b'-'));
    match b.get(j)? {
        b'0' => j += 1,
        b'1'..=b'9' => j = digits(j + 1),
        _ => return None,
    }
    if b.get(j) == Some(&b'.') {
        let end = digits(j + 1);
        if end == j + 1 {
            return None;
        }
        j = end;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = digits(j);
        if end == j {
            return None;
        }
        j = end;
    }
    Some(j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: &Value) -> Doc {
        Doc::from_value(value)
    }

    #[test]
    fn every_kind_reads_back_as_serde_json_prints_it() {
        let value =
            json!({"s": "a\"b", "n": -12, "f": 1.50, "t": true, "x": false, "z": null, "a": [1, {"k": "v"}], "o": {"b": 2, "a": 1}});
        let doc = doc(&value);
        let root = doc.root();
        for (key, expected) in value.as_object().unwrap() {
            let member = root.member(key).unwrap();
            let text = crate::policy::field::text_of(expected).map(Cow::into_owned);
            assert_eq!(member.text().map(Cow::into_owned), text, "{key}");
            assert_eq!(member.to_value(), *expected, "{key}");
        }
    }

    #[test]
    fn members_are_found_exactly_first_then_ignoring_case() {
        let doc = Doc::parse(r#"{"userid": 1, "UserId": 2}"#.into()).unwrap();
        assert_eq!(doc.root().member("UserId").unwrap().raw(), "2");
        assert_eq!(doc.root().member("USERID").unwrap().raw(), "1");
        assert!(doc.root().member("Other").is_none());
    }

    #[test]
    fn items_skip_whole_subtrees() {
        let doc = Doc::parse(r#"[[1, [2, 3]], {"a": [4]}, "x"]"#.into()).unwrap();
        let items: Vec<String> = doc.root().items().map(|i| i.raw().to_owned()).collect();
        assert_eq!(items, [r"[1, [2, 3]]", r#"{"a": [4]}"#, "x"]);
    }

    #[test]
    fn json_and_cmdlet_lines_inside_strings_are_decoded_once() {
        let doc = doc(&json!({"m": "[{\"State\":1}]", "p": "-Identity \"a b\" -Force", "s": "plain"}));
        let inner = doc.root().member("m").unwrap().inner().unwrap();
        assert_eq!(inner.kind(), Kind::Array);
        assert_eq!(inner.items().next().unwrap().member("State").unwrap().raw(), "1");
        let again = doc.root().member("m").unwrap().inner().unwrap();
        assert!(std::ptr::eq(inner.text, again.text), "the decoded document is kept");
        let params: Vec<String> =
            doc.root().member("p").unwrap().inner().unwrap().items().map(|i| i.text().unwrap().into_owned()).collect();
        assert_eq!(params, [r#"{"Name":"Identity","Value":"a b"}"#, r#"{"Name":"Force","Value":""}"#]);
        assert!(doc.root().member("s").unwrap().inner().is_none());
    }

    #[test]
    fn strings_end_at_their_closing_quote_wherever_it_falls_in_a_word() {
        for len in 0usize..40 {
            for escape_at in [None, Some(0), Some(7), Some(8), Some(len.saturating_sub(1))] {
                let mut content: String = "x".repeat(len);
                if let Some(at) = escape_at.filter(|at| *at < len) {
                    content.replace_range(at..=at, "\\\"");
                }
                let text = format!("\"{content}\" tail");
                let (end, escaped) = scan_string(text.as_bytes(), 0).unwrap();
                assert_eq!(end, content.len() + 2, "{text:?}");
                assert_eq!(escaped, content.contains('\\'), "{text:?}");
            }
        }
        assert!(scan_string(b"\"never closed", 0).is_none());
        assert!(scan_string(b"\"ends in an escape\\", 0).is_none());
    }

    #[test]
    fn a_text_is_valid_json_for_the_tape_exactly_when_it_is_for_serde_json() {
        let cases = [
            "0",
            "-0",
            "12",
            "-1.25e+10",
            "1E5",
            "0.5",
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "1e+",
            "0x10",
            "1.5.2",
            "--1",
            r#""plain""#,
            r#""\n\t\"\\\/\b\f\r""#,
            r#""\u00e9\uD83D\uDE00""#,
            r#""\u12""#,
            r#""\x41""#,
            r#""\u12G4""#,
            "\"tab\there\"",
            "\"new\nline\"",
            "\"nul\u{0}\"",
            "\"del\u{7f} is fine\"",
            "\"\u{e9}t\u{e9}\"",
            r#"{"a": [1, {"b": null}], "c": true}"#,
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            "[1,]",
            "[,1]",
            r#"{1: 2}"#,
            "[true, fals]",
            "nul",
            "null x",
            "[1] [2]",
            "  [ ]  ",
            "{}",
        ];
        for text in cases {
            let serde_ok = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            assert_eq!(Doc::parse(text.into()).is_some(), serde_ok, "{text:?}");
        }
    }

    #[test]
    fn a_prefix_is_read_up_to_the_end_of_its_value() {
        let (tape, end) = Tape::build_record_prefix(r#" {"a": "x,]"} , {"b": 2}]"#).unwrap();
        assert_eq!(end, 13);
        assert_eq!(tape.top().len(), 1);
        assert!(Tape::build_prefix(r#"{"a": 1"#).is_none());
    }

    #[test]
    fn what_is_not_one_json_value_is_refused() {
        for text in ["", "[1, 2", "{\"a\" 1}", "tru", "[1] x", "{\"a\": 1,}"] {
            assert!(Doc::parse(text.into()).is_none(), "{text:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(Doc::parse(deep.into()).is_none(), "nesting is bounded");
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(Doc::parse(fine.into()).is_some());
    }
}
