//! Conditions: a tree of `all` / `any` / `not` over predicates on record fields.
//!
//! JSON form (what the API accepts and the built-in catalogue is written in):
//!
//! ```json
//! {"all": [
//!   {"field": "Operation", "op": "in", "value": ["New-InboxRule", "Set-InboxRule"]},
//!   {"any": [{"field": "Parameters.ForwardTo", "op": "exists"}, {"field": "Parameters.RedirectTo", "op": "exists"}]},
//!   {"not": {"field": "ResultStatus", "op": "equals", "value": "False"}}
//! ]}
//! ```
//!
//! A predicate's `field` is a [`FieldPath`]; it may reach several values, and the predicate holds
//! when `any` of them passes (default) or when there is at least one and `all` pass
//! (`"quantifier": "all"`). A predicate on a field that is absent is false (so `not` of it is
//! true). Text comparisons ignore case unless `"case_sensitive": true`. Instead of a `value`,
//! `in`, `equals`, `domain_in` and `domain_not_in` may take `"value_from": "tenant.domains"` or
//! `"tenant.break_glass_accounts"`: lists from the tenant's configuration.
//!
//! Operators: `equals`, `not_equals` (the field exists and no value equals), `in`, `contains`,
//! `starts_with`, `ends_with`, `glob` (`*`, `?`), `regex` (linear-time engine, no backtracking),
//! `ip_in_cidr` (IPv4/IPv6 networks or addresses; ports and brackets stripped), `domain_in` /
//! `domain_not_in` (the domains of e-mail addresses in the value, subdomains included; false when
//! the list is empty, as a tenant without configured domains has no notion of external), `gt`,
//! `gte`, `lt`, `lte` (numeric), `exists` (a non-empty value).

use super::field::{FieldPath, FieldSource};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::net::IpAddr;
use std::ops::ControlFlow;

/// The tenant facts a predicate may refer to.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantContext<'a> {
    /// The tenant's accepted mail domains, lowercase.
    pub domains: &'a [String],
    /// Accounts that should never sign in except in an emergency, lowercase.
    pub break_glass_accounts: &'a [String],
}

/// A list from the tenant's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantList {
    Domains,
    BreakGlassAccounts,
}

impl TenantList {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "tenant.domains" => Ok(Self::Domains),
            "tenant.break_glass_accounts" => Ok(Self::BreakGlassAccounts),
            other => Err(format!("value_from {other:?} is not one of tenant.domains, tenant.break_glass_accounts")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Domains => "tenant.domains",
            Self::BreakGlassAccounts => "tenant.break_glass_accounts",
        }
    }

    fn values<'a>(self, tenant: &TenantContext<'a>) -> &'a [String] {
        match self {
            Self::Domains => tenant.domains,
            Self::BreakGlassAccounts => tenant.break_glass_accounts,
        }
    }
}

/// A predicate operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Glob,
    Regex,
    IpInCidr,
    DomainIn,
    DomainNotIn,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
}

const OPERATORS: [(&str, Operator); 16] = [
    ("equals", Operator::Equals),
    ("not_equals", Operator::NotEquals),
    ("in", Operator::In),
    ("contains", Operator::Contains),
    ("starts_with", Operator::StartsWith),
    ("ends_with", Operator::EndsWith),
    ("glob", Operator::Glob),
    ("regex", Operator::Regex),
    ("ip_in_cidr", Operator::IpInCidr),
    ("domain_in", Operator::DomainIn),
    ("domain_not_in", Operator::DomainNotIn),
    ("gt", Operator::Gt),
    ("gte", Operator::Gte),
    ("lt", Operator::Lt),
    ("lte", Operator::Lte),
    ("exists", Operator::Exists),
];

impl Operator {
    fn parse(text: &str) -> Result<Self, String> {
        OPERATORS.iter().find(|(name, _)| *name == text).map(|(_, op)| *op).ok_or_else(|| {
            format!("unknown operator {text:?}; use one of {}", OPERATORS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))
        })
    }

    fn as_str(self) -> &'static str {
        OPERATORS.iter().find(|(_, op)| *op == self).map_or("equals", |(name, _)| name)
    }
}

/// How a predicate treats a field with several values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantifier {
    #[default]
    Any,
    All,
}

/// A predicate, compiled: patterns parsed, texts folded, networks parsed.
#[derive(Debug, Clone)]
pub struct Predicate {
    field: FieldPath,
    op: Operator,
    quantifier: Quantifier,
    case_sensitive: bool,
    /// The `value` as written (kept to serialise the condition back).
    value: Option<Value>,
    value_from: Option<TenantList>,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    /// The values, and the set of their lengths (see [`length_bit`]): a value of another
    /// length equals none of them, which rejects most texts without comparing.
    Texts(Vec<String>, u64),
    Regex(regex::Regex),
    Networks(Vec<Network>),
    Number(f64),
    Tenant(TenantList),
    Exists,
}

/// An IP network (an address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address.
    ///
    /// # Errors
    /// When it is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
            None => max,
        };
        Ok(Self { address, prefix })
    }

    /// Whether `ip` lies in the network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(u128::from(u32::from(net)), u128::from(u32::from(ip)), self.prefix, 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(net), u128::from(ip), self.prefix, 128),
            (IpAddr::V4(net), IpAddr::V6(ip)) => {
                ip.to_ipv4_mapped().is_some_and(|ip| masked(u128::from(u32::from(net)), u128::from(u32::from(ip)), self.prefix, 32))
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn masked(net: u128, ip: u128, prefix: u8, bits: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (net >> shift) == (ip >> shift)
}

/// A condition tree.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Predicate(Box<Predicate>),
}

impl Condition {
    /// A condition that always holds (`{"all": []}`).
    #[must_use]
    pub fn always() -> Self {
        Self::All(Vec::new())
    }

    /// Parses and compiles a condition from its JSON form; errors name the offending place.
    ///
    /// # Errors
    /// A message saying what is wrong and where (e.g. `all[1].any[0]: unknown operator "eq"`).
    pub fn from_json(value: &Value) -> Result<Self, String> {
        Self::parse_at(value, "condition")
    }

    fn parse_at(value: &Value, at: &str) -> Result<Self, String> {
        let Value::Object(object) = value else {
            return Err(format!("{at}: a condition is an object with all, any, not, or field and op"));
        };
        let list = |key: &str, items: &Value| -> Result<Vec<Condition>, String> {
            let Value::Array(items) = items else {
                return Err(format!("{at}.{key}: must be a list of conditions"));
            };
            items.iter().enumerate().map(|(i, item)| Self::parse_at(item, &format!("{at}.{key}[{i}]"))).collect()
        };
        if object.len() == 1 {
            if let Some(items) = object.get("all") {
                return list("all", items).map(Self::All);
            }
            if let Some(items) = object.get("any") {
                return list("any", items).map(Self::Any);
            }
            if let Some(inner) = object.get("not") {
                return Self::parse_at(inner, &format!("{at}.not")).map(|c| Self::Not(Box::new(c)));
            }
        }
        Predicate::parse(object).map(|p| Self::Predicate(Box::new(p))).map_err(|e| format!("{at}: {e}"))
    }

    /// The JSON form.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::All(items) => json!({"all": items.iter().map(Self::to_json).collect::<Vec<_>>()}),
            Self::Any(items) => json!({"any": items.iter().map(Self::to_json).collect::<Vec<_>>()}),
            Self::Not(inner) => json!({"not": inner.to_json()}),
            Self::Predicate(p) => p.to_json(),
        }
    }

    /// Whether the record satisfies the condition.
    #[must_use]
    pub fn matches<S: FieldSource + ?Sized>(&self, record: &S, tenant: &TenantContext<'_>) -> bool {
        match self {
            Self::All(items) => items.iter().all(|c| c.matches(record, tenant)),
            Self::Any(items) => items.iter().any(|c| c.matches(record, tenant)),
            Self::Not(inner) => !inner.matches(record, tenant),
            Self::Predicate(p) => p.matches(record, tenant),
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}

impl Predicate {
    fn parse(object: &Map<String, Value>) -> Result<Self, String> {
        for key in object.keys() {
            if !matches!(key.as_str(), "field" | "op" | "value" | "value_from" | "case_sensitive" | "quantifier") {
                return Err(format!("unknown key {key:?} (a predicate has field, op, value or value_from, case_sensitive, quantifier)"));
            }
        }
        let field = object.get("field").and_then(Value::as_str).ok_or("a predicate needs a \"field\"")?;
        let field = FieldPath::parse(field)?;
        let op = Operator::parse(object.get("op").and_then(Value::as_str).ok_or("a predicate needs an \"op\"")?)?;
        let case_sensitive = match object.get("case_sensitive") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("case_sensitive must be true or false".to_owned()),
        };
        let quantifier = match object.get("quantifier").map(|q| q.as_str()) {
            None | Some(Some("any")) => Quantifier::Any,
            Some(Some("all")) => Quantifier::All,
            Some(_) => return Err("quantifier must be \"any\" or \"all\"".to_owned()),
        };
        let value = object.get("value").cloned();
        let value_from = object.get("value_from").map(|v| v.as_str().ok_or("value_from must be a string").map(TenantList::parse));
        let value_from = match value_from {
            Some(Ok(Ok(list))) => Some(list),
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(e)) => return Err(e.to_owned()),
            None => None,
        };
        let test = compile(op, value.as_ref(), value_from, case_sensitive)?;
        Ok(Self { field, op, quantifier, case_sensitive, value, value_from, test })
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("field".into(), json!(self.field.as_str()));
        object.insert("op".into(), json!(self.op.as_str()));
        if let Some(value) = &self.value {
            object.insert("value".into(), value.clone());
        }
        if let Some(list) = self.value_from {
            object.insert("value_from".into(), json!(list.as_str()));
        }
        if self.case_sensitive {
            object.insert("case_sensitive".into(), json!(true));
        }
        if self.quantifier == Quantifier::All {
            object.insert("quantifier".into(), json!("all"));
        }
        Value::Object(object)
    }

    pub(crate) fn matches<S: FieldSource + ?Sized>(&self, record: &S, tenant: &TenantContext<'_>) -> bool {
        match self.quantifier {
            Quantifier::Any => self
                .field
                .visit(record, &mut |v| if self.test_value(v, tenant) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }),
            Quantifier::All => {
                let mut seen = false;
                let failed = self.field.visit(record, &mut |v| {
                    seen = true;
                    if self.test_value(v, tenant) { ControlFlow::Continue(()) } else { ControlFlow::Break(()) }
                });
                seen && !failed
            }
        }
    }

    fn test_value(&self, text: &str, tenant: &TenantContext<'_>) -> bool {
        match (&self.test, self.op) {
            (Test::Exists, _) => !text.trim().is_empty(),
            (Test::Texts(expected, lengths), op) => self.compare_texts(op, text, *lengths, expected.iter().map(String::as_str)),
            (Test::Tenant(list), op) => self.compare_texts(op, text, u64::MAX, list.values(tenant).iter().map(String::as_str)),
            (Test::Regex(regex), _) => regex.is_match(text),
            (Test::Networks(networks), _) => crate::audit::client_ip_text(text)
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| networks.iter().any(|n| n.contains(ip))),
            (Test::Number(bound), op) => text.trim().parse::<f64>().is_ok_and(|n| match op {
                Operator::Gt => n > *bound,
                Operator::Gte => n >= *bound,
                Operator::Lt => n < *bound,
                _ => n <= *bound,
            }),
        }
    }

    /// Compares `text` with expected values, which are stored lowercase unless the predicate is
    /// case-sensitive (tenant lists are always lowercase). ASCII text is compared in place.
    /// `lengths` is the set of the expected values' lengths ([`length_bit`]; all bits set when
    /// not known).
    fn compare_texts<'e>(&self, op: Operator, text: &str, lengths: u64, mut expected: impl Iterator<Item = &'e str>) -> bool {
        // Exact, or ASCII text folded in place; other text is lowercased once.
        let folded: Option<String> = (!self.case_sensitive && !text.is_ascii()).then(|| text.to_lowercase());
        let (text, exact) = match &folded {
            Some(lower) => (lower.as_str(), true),
            None => (text, self.case_sensitive),
        };
        // Equal texts have equal lengths (ASCII case folding keeps the length).
        if lengths & length_bit(text.len()) == 0 {
            match op {
                Operator::Equals | Operator::In => return false,
                Operator::NotEquals => return true,
                _ => {}
            }
        }
        match op {
            Operator::Equals | Operator::In => expected.any(|e| text_eq(text, e, exact)),
            Operator::NotEquals => !expected.any(|e| text_eq(text, e, exact)),
            Operator::Contains => expected.any(|e| text_contains(text, e, exact)),
            Operator::StartsWith => expected.any(|e| text_starts_with(text, e, exact)),
            Operator::EndsWith => expected.any(|e| text_ends_with(text, e, exact)),
            Operator::Glob => {
                let folded = fold_if(text, exact);
                expected.any(|e| glob_matches(e, &folded))
            }
            Operator::DomainIn | Operator::DomainNotIn => {
                let domains: Vec<&str> = expected.collect();
                if domains.is_empty() {
                    // Without the tenant's domains nothing can be called internal or external.
                    return false;
                }
                let mut found = email_domains(text).peekable();
                if found.peek().is_none() {
                    return false;
                }
                let inside = |d: &str| domains.iter().any(|known| d == *known || d.strip_suffix(known).is_some_and(|p| p.ends_with('.')));
                if op == Operator::DomainIn { found.any(|d| inside(&d)) } else { found.any(|d| !inside(&d)) }
            }
            _ => false,
        }
    }
}

/// A text length's bit in a set of lengths: one bit per length up to 62, one for all longer.
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// `exact`, or else `text` is ASCII and compared ignoring ASCII case (see `compare_texts`).
fn text_eq(text: &str, expected: &str, exact: bool) -> bool {
    if exact { text == expected } else { text.eq_ignore_ascii_case(expected) }
}

fn text_starts_with(text: &str, expected: &str, exact: bool) -> bool {
    if exact {
        text.starts_with(expected)
    } else {
        text.len() >= expected.len() && text.as_bytes()[..expected.len()].eq_ignore_ascii_case(expected.as_bytes())
    }
}

fn text_ends_with(text: &str, expected: &str, exact: bool) -> bool {
    if exact {
        text.ends_with(expected)
    } else {
        text.len() >= expected.len() && text.as_bytes()[text.len() - expected.len()..].eq_ignore_ascii_case(expected.as_bytes())
    }
}

fn text_contains(text: &str, expected: &str, exact: bool) -> bool {
    if exact {
        return text.contains(expected);
    }
    let (haystack, needle) = (text.as_bytes(), expected.as_bytes());
    let Some(&first) = needle.first() else { return true };
    if haystack.len() < needle.len() {
        return false;
    }
    // Only where the needle's first byte is (in either case) can a window match it.
    let last_start = haystack.len() - needle.len();
    let matches_at = |at: usize| haystack[at..at + needle.len()].eq_ignore_ascii_case(needle);
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, &haystack[..=last_start]).any(matches_at)
}

fn fold(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) { Cow::Owned(text.to_lowercase()) } else { Cow::Borrowed(text) }
}

fn fold_if(text: &str, case_sensitive: bool) -> Cow<'_, str> {
    // Patterns are stored lowercase unless case-sensitive.
    if case_sensitive { Cow::Borrowed(text) } else { fold(text) }
}

/// The domains of the e-mail addresses in a text such as `smtp:x@evil.example`,
/// `"Bob" [SMTP:bob@fabrikam.com];carol@contoso.com`, lowercase.
fn email_domains(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| c.is_whitespace() || matches!(c, ';' | ',' | '<' | '>' | '[' | ']' | '"' | '\'' | '(' | ')'))
        .filter_map(|token| token.rsplit_once('@').map(|(_, domain)| domain.trim_end_matches('.').to_lowercase()))
        .filter(|domain| !domain.is_empty())
}

/// `*` matches any run of characters, `?` one character; everything else literally.
#[must_use]
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        // ASCII: a character is a byte, so no list of characters is made.
        return glob_slices(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob_slices(&pattern, &text, '*', '?')
}

fn glob_slices<T: PartialEq>(pattern: &[T], text: &[T], many: T, one: T) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == one || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == many {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == many)
}

fn compile(op: Operator, value: Option<&Value>, value_from: Option<TenantList>, case_sensitive: bool) -> Result<Test, String> {
    if op == Operator::Exists {
        return if value.is_none() && value_from.is_none() { Ok(Test::Exists) } else { Err("exists takes no value".to_owned()) };
    }
    if let Some(list) = value_from {
        if value.is_some() {
            return Err("give either value or value_from, not both".to_owned());
        }
        return match op {
            Operator::Equals | Operator::NotEquals | Operator::In | Operator::DomainIn | Operator::DomainNotIn => Ok(Test::Tenant(list)),
            other => Err(format!("{} cannot take value_from", other.as_str())),
        };
    }
    let value = value.ok_or_else(|| format!("{} needs a value", op.as_str()))?;
    let texts = |value: &Value| -> Result<Vec<String>, String> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        if items.is_empty() {
            return Err(format!("{} needs at least one value", op.as_str()));
        }
        items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(format!("{} compares with strings, numbers or booleans", op.as_str())),
            })
            .map(|t| t.map(|t| if case_sensitive { t } else { t.to_lowercase() }))
            .collect()
    };
    let with_lengths = |texts: Vec<String>| {
        let lengths = texts.iter().fold(0, |set, text| set | length_bit(text.len()));
        Test::Texts(texts, lengths)
    };
    match op {
        Operator::Regex => {
            let pattern = value.as_str().ok_or("regex takes one pattern string")?;
            let pattern = if case_sensitive { pattern.to_owned() } else { format!("(?i){pattern}") };
            regex::Regex::new(&pattern).map(Test::Regex).map_err(|e| format!("invalid regex: {e}"))
        }
        Operator::IpInCidr => {
            let networks: Result<Vec<Network>, String> = texts(value)?.iter().map(|t| Network::parse(t)).collect();
            networks.map(Test::Networks)
        }
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => match value {
            Value::Number(n) => n.as_f64().map(Test::Number).ok_or_else(|| "not a finite number".to_owned()),
            Value::String(s) => s.trim().parse().map(Test::Number).map_err(|_| format!("{} compares with a number", op.as_str())),
            _ => Err(format!("{} compares with a number", op.as_str())),
        },
        Operator::Equals | Operator::NotEquals | Operator::StartsWith | Operator::EndsWith | Operator::Contains | Operator::Glob => {
            texts(value).map(with_lengths)
        }
        Operator::In | Operator::DomainIn | Operator::DomainNotIn => texts(value).map(with_lengths),
        Operator::Exists => Ok(Test::Exists),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(value: Value) -> Condition {
        Condition::from_json(&value).unwrap()
    }

    #[test]
    fn text_comparisons_agree_with_their_plain_definitions() {
        let texts = ["", "a", "BAV2ROPC", "Client=REST;BAV2ROPC;x", "xbav2ropcx", "bav2rop", "ab", "aab", "ÉcoLe", "école", "a*b", "a?c"];
        let needles = ["", "a", "b", "bav2ropc", "ab", "cole", "x", "é"];
        for text in texts {
            for needle in needles {
                let plain = needle.is_empty() || text.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
                if text.is_ascii() {
                    assert_eq!(text_contains(text, needle, false), plain, "{text:?} contains {needle:?}");
                }
                assert_eq!(text_contains(text, needle, true), text.contains(needle), "{text:?} contains {needle:?} exactly");
            }
        }
        let globs = [
            ("a*b", "aXYb", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("é*e", "école", true),
            ("?cole", "école", true),
        ];
        for (pattern, text, expected) in globs {
            assert_eq!(glob_matches(pattern, text), expected, "{pattern:?} {text:?}");
        }
        let lengths = [3usize, 62, 63, 64, 500].iter().fold(0, |set, len| set | length_bit(*len));
        assert!(lengths & length_bit(1000) != 0 && lengths & length_bit(4) == 0 && lengths & length_bit(62) != 0);
    }

    fn holds(cond: Value, record: Value) -> bool {
        let tenant = TenantContext::default();
        condition(cond).matches(&crate::tape::Doc::from_value(&record), &tenant)
    }

    #[test]
    fn operators_compare_as_documented() {
        let record = json!({"UserId": "Alice@Contoso.com", "ClientIP": "[2001:db8::7]:443", "Size": "1500", "Ua": "python-requests/2.31"});
        let cases: Vec<(&str, Value, bool)> = vec![
            ("equals ignores case", json!({"field": "UserId", "op": "equals", "value": "alice@contoso.com"}), true),
            (
                "equals can respect case",
                json!({"field": "UserId", "op": "equals", "value": "alice@contoso.com", "case_sensitive": true}),
                false,
            ),
            ("not_equals", json!({"field": "UserId", "op": "not_equals", "value": "bob@contoso.com"}), true),
            ("not_equals on the same value", json!({"field": "UserId", "op": "not_equals", "value": "ALICE@contoso.com"}), false),
            ("in list", json!({"field": "UserId", "op": "in", "value": ["x", "alice@contoso.com"]}), true),
            ("contains", json!({"field": "UserId", "op": "contains", "value": "@contoso"}), true),
            ("starts_with", json!({"field": "Ua", "op": "starts_with", "value": "Python-"}), true),
            ("ends_with", json!({"field": "UserId", "op": "ends_with", "value": ".org"}), false),
            ("glob", json!({"field": "UserId", "op": "glob", "value": "a*@*.com"}), true),
            ("glob single char", json!({"field": "UserId", "op": "glob", "value": "?lice@contoso.co"}), false),
            ("regex", json!({"field": "Ua", "op": "regex", "value": "^python-requests/\\d+\\.\\d+$"}), true),
            (
                "ipv6 in cidr, brackets and port stripped",
                json!({"field": "ClientIP", "op": "ip_in_cidr", "value": ["2001:db8::/32"]}),
                true,
            ),
            ("ip outside cidr", json!({"field": "ClientIP", "op": "ip_in_cidr", "value": "10.0.0.0/8"}), false),
            ("numeric gt on a string number", json!({"field": "Size", "op": "gt", "value": 1000}), true),
            ("numeric lte", json!({"field": "Size", "op": "lte", "value": 1499}), false),
            ("exists", json!({"field": "Ua", "op": "exists"}), true),
            ("absent field is false", json!({"field": "Nope", "op": "equals", "value": "x"}), false),
            ("not of an absent field is true", json!({"not": {"field": "Nope", "op": "equals", "value": "x"}}), true),
        ];
        for (name, cond, expected) in cases {
            assert_eq!(holds(cond, record.clone()), expected, "{name}");
        }
    }

    #[test]
    fn ipv4_cidr_edges_and_ports() {
        let net = |t: &str| Network::parse(t).unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(net("203.0.113.0/24").contains(ip("203.0.113.255")));
        assert!(!net("203.0.113.0/24").contains(ip("203.0.114.0")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(net("203.0.113.7").contains(ip("203.0.113.7")));
        assert!(net("203.0.113.0/24").contains(ip("::ffff:203.0.113.9")));
        assert!(holds(
            json!({"field": "ClientIP", "op": "ip_in_cidr", "value": "203.0.113.0/24"}),
            json!({"ClientIP": "203.0.113.7:51544"})
        ));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("not-an-ip").is_err());
    }

    #[test]
    fn quantifiers_choose_any_or_all_of_many_values() {
        let record = json!({"Recipients": ["a@contoso.com", "b@evil.example"]});
        let any = json!({"field": "Recipients", "op": "ends_with", "value": "@contoso.com"});
        let all = json!({"field": "Recipients", "op": "ends_with", "value": "@contoso.com", "quantifier": "all"});
        assert!(holds(any, record.clone()));
        assert!(!holds(all.clone(), record));
        assert!(!holds(all, json!({"Recipients": []})), "all over no values is false");
    }

    #[test]
    fn tenant_domains_tell_external_from_internal_forwarding() {
        let domains = vec!["contoso.com".to_owned()];
        let tenant = TenantContext { domains: &domains, break_glass_accounts: &[] };
        let external = condition(json!({"field": "Parameters.ForwardTo", "op": "domain_not_in", "value_from": "tenant.domains"}));
        let record = |to: &str| json!({"Parameters": [{"Name": "ForwardTo", "Value": to}]});
        let external_to = |to: &str| external.matches(&crate::tape::Doc::from_value(&record(to)), &tenant);
        assert!(external_to("smtp:x@evil.example"));
        assert!(!external_to("bob@contoso.com"));
        assert!(!external_to("bob@mail.contoso.com"), "subdomains are internal");
        assert!(external_to("bob@notcontoso.com"), "a lookalike domain is external");
        assert!(external_to("\"Bob\" [SMTP:bob@contoso.com];eve@evil.example"), "one external recipient is enough");
        assert!(!external_to("Bob Smith"), "no address, nothing to call external");
    }

    #[test]
    fn errors_say_where_and_what() {
        let error = |v: Value| Condition::from_json(&v).unwrap_err();
        assert!(error(json!({"all": [{"field": "x", "op": "eq", "value": 1}]})).starts_with("condition.all[0]: unknown operator \"eq\""));
        assert!(error(json!({"any": {"field": "x"}})).contains("must be a list"));
        assert!(error(json!({"field": "x", "op": "regex", "value": "("})).contains("invalid regex"));
        assert!(error(json!({"field": "x", "op": "equals"})).contains("needs a value"));
        assert!(error(json!({"field": "x", "op": "exists", "value": 1})).contains("takes no value"));
        assert!(error(json!({"field": "x", "op": "in", "value_from": "tenant.secrets"})).contains("value_from"));
        assert!(error(json!({"field": "x", "op": "equals", "value": 1, "colour": "red"})).contains("unknown key"));
    }

    #[test]
    fn conditions_round_trip_through_json() {
        let text = json!({"all": [{"field": "Operation", "op": "in", "value": ["A", "B"]},
                                  {"not": {"field": "ClientIP", "op": "ip_in_cidr", "value": ["10.0.0.0/8"], "quantifier": "all"}},
                                  {"any": [{"field": "UserId", "op": "in", "value_from": "tenant.break_glass_accounts"}]}]});
        assert_eq!(condition(text.clone()).to_json(), text);
    }

    /// A small deterministic generator, so the properties below need no extra crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[(self.next() as usize) % items.len()]
        }
    }

    fn random_condition(rng: &mut Lcg, depth: u32) -> Value {
        let leaf = depth == 0 || rng.next() % 3 == 0;
        if leaf {
            let field = *rng.pick(&["UserId", "Operation", "ClientIP", "Parameters.ForwardTo", "Missing"]);
            let value = *rng.pick(&["alice@contoso.com", "New-InboxRule", "x@evil.example", "10.0.0.1", "zzz"]);
            let op = *rng.pick(&["equals", "contains", "starts_with", "ends_with", "glob", "exists"]);
            return if op == "exists" { json!({"field": field, "op": op}) } else { json!({"field": field, "op": op, "value": value}) };
        }
        let children: Vec<Value> = (0..rng.next() % 4).map(|_| random_condition(rng, depth - 1)).collect();
        match rng.next() % 3 {
            0 => json!({"all": children}),
            1 => json!({"any": children}),
            _ => json!({"not": random_condition(rng, depth - 1)}),
        }
    }

    #[test]
    fn property_not_all_is_any_not_and_double_negation_is_identity() {
        let mut rng = Lcg(42);
        let records = [
            json!({"UserId": "alice@contoso.com", "Operation": "New-InboxRule", "Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}]}),
            json!({"UserId": "bob@contoso.com", "Operation": "FileDownloaded", "ClientIP": "10.0.0.1:443"}),
            json!({}),
        ];
        for _ in 0..500 {
            let children: Vec<Value> = (0..1 + rng.next() % 4).map(|_| random_condition(&mut rng, 3)).collect();
            let not_all = json!({"not": {"all": children.clone()}});
            let any_not = json!({"any": children.iter().map(|c| json!({"not": c})).collect::<Vec<_>>()});
            let not_any = json!({"not": {"any": children.clone()}});
            let all_not = json!({"all": children.iter().map(|c| json!({"not": c})).collect::<Vec<_>>()});
            for record in &records {
                assert_eq!(holds(not_all.clone(), record.clone()), holds(any_not.clone(), record.clone()), "{not_all} on {record}");
                assert_eq!(holds(not_any.clone(), record.clone()), holds(all_not.clone(), record.clone()), "{not_any} on {record}");
                let child = &children[0];
                assert_eq!(holds(json!({"not": {"not": child}}), record.clone()), holds(child.clone(), record.clone()));
                let parsed = condition(child.clone());
                assert_eq!(parsed.to_json(), *child, "round trip");
            }
        }
    }

    #[test]
    fn property_glob_star_alone_matches_everything_and_a_literal_only_itself() {
        let mut rng = Lcg(7);
        let alphabet = ['a', 'b', '*', '?', '.'];
        for _ in 0..2000 {
            let text: String = (0..rng.next() % 8).map(|_| *rng.pick(&['a', 'b', '.'])).collect();
            assert!(glob_matches("*", &text));
            assert!(glob_matches(&text, &text), "a pattern without wildcards matches itself");
            let pattern: String = (0..rng.next() % 6).map(|_| *rng.pick(&alphabet)).collect();
            let regex = format!(
                "^{}$",
                pattern
                    .chars()
                    .map(|c| match c {
                        '*' => ".*".to_owned(),
                        '?' => ".".to_owned(),
                        '.' => "\\.".to_owned(),
                        c => c.to_string(),
                    })
                    .collect::<String>()
            );
            assert_eq!(glob_matches(&pattern, &text), regex::Regex::new(&regex).unwrap().is_match(&text), "{pattern} vs {text}");
        }
    }
}
