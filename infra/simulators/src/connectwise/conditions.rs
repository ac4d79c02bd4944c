//! The `conditions` query language.
//!
//! Grammar (keywords case-insensitive):
//! ```text
//! expr       := and_expr ("or" and_expr)*
//! and_expr   := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | comparison
//! comparison := field op literal | field ["not"] ("contains" | "like") literal
//!             | field ["not"] "in" "(" literal ("," literal)* ")"
//! op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal    := "string" | 'string' | number | true | false | null | [date-time]
//! field      := name ("/" name)*
//! ```
//! Strings may escape their quote with a backslash. String comparisons are case-insensitive
//! (SQL Server's default collation). `!=` is the plain negation of `=` (so it also matches
//! tickets where the field is empty).

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use super::listing::lookup;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Date(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Date(DateTime<FixedOffset>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Like,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cond {
    Cmp { path: Vec<String>, op: Op, lit: Lit },
    In { path: Vec<String>, lits: Vec<Lit> },
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

type Resolver<'a> = &'a dyn Fn(&str) -> Result<Vec<String>, String>;

/// Parses `text`, resolving field names with `resolve` (which rejects unknown fields).
pub(super) fn parse(text: &str, resolve: Resolver<'_>) -> Result<Cond, String> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0, resolve };
    let cond = p.expr(0)?;
    match p.peek() {
        None => Ok(cond),
        Some(t) => Err(format!("unexpected {} after a complete condition", describe(t))),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-')
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let start = i;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("unterminated string starting at position {start}"));
                        }
                        Some('\\') if i + 1 < chars.len() => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) if ch == c => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(s));
            }
            '[' => {
                let start = i;
                let end = chars[i..]
                    .iter()
                    .position(|&ch| ch == ']')
                    .ok_or_else(|| format!("unterminated [date] starting at position {start}"))?;
                out.push(Token::Date(chars[i + 1..i + end].iter().collect::<String>().trim().to_string()));
                i += end + 1;
            }
            '=' => {
                out.push(Token::Op("="));
                i += 1;
            }
            '!' if next == Some('=') => {
                out.push(Token::Op("!="));
                i += 2;
            }
            '<' if next == Some('=') => {
                out.push(Token::Op("<="));
                i += 2;
            }
            '<' if next == Some('>') => {
                out.push(Token::Op("!="));
                i += 2;
            }
            '<' => {
                out.push(Token::Op("<"));
                i += 1;
            }
            '>' if next == Some('=') => {
                out.push(Token::Op(">="));
                i += 2;
            }
            '>' => {
                out.push(Token::Op(">"));
                i += 1;
            }
            c if is_word_char(c) => {
                let start = i;
                while i < chars.len() && is_word_char(chars[i]) {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?} at position {i}")),
        }
    }
    Ok(out)
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("{w:?}"),
        Token::Str(s) => format!("string {s:?}"),
        Token::Date(d) => format!("date [{d}]"),
        Token::Op(o) => format!("operator {o}"),
        Token::LParen => "\"(\"".to_string(),
        Token::RParen => "\")\"".to_string(),
        Token::Comma => "\",\"".to_string(),
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    resolve: Resolver<'a>,
}

const MAX_NESTING: usize = 32;

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expr(&mut self, depth: usize) -> Result<Cond, String> {
        if depth > MAX_NESTING {
            return Err("conditions are nested too deeply".to_string());
        }
        let mut left = self.and_expr(depth)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and_expr(depth)?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize) -> Result<Cond, String> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary(depth)?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Cond, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.expr(depth + 1)?;
            return match self.next() {
                Some(Token::RParen) => Ok(inner),
                Some(t) => Err(format!("expected \")\", got {}", describe(&t))),
                None => Err("missing \")\"".to_string()),
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Cond, String> {
        let field = match self.next() {
            Some(Token::Word(w)) if w.starts_with(|c: char| c.is_alphabetic() || c == '_') => w,
            Some(t) => return Err(format!("expected a field name, got {}", describe(&t))),
            None => {
                return Err("expected a field name, got the end of the conditions".to_string());
            }
        };
        let path = (self.resolve)(&field)?;
        let negated = self.keyword("not");
        if negated {
            self.pos += 1;
        }
        let op = match self.next() {
            Some(Token::Op(o)) if !negated => match o {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("contains") => Op::Contains,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                let lits = self.list()?;
                let cond = Cond::In { path, lits };
                return Ok(if negated { Cond::Not(Box::new(cond)) } else { cond });
            }
            Some(t) => {
                return Err(format!("expected an operator after {field}, got {}", describe(&t)));
            }
            None => return Err(format!("expected an operator after {field}")),
        };
        let lit = self.literal()?;
        if matches!(op, Op::Contains | Op::Like) && !matches!(lit, Lit::Str(_)) {
            return Err(format!("{field}: contains/like need a quoted string"));
        }
        let cond = Cond::Cmp { path, op, lit };
        Ok(if negated { Cond::Not(Box::new(cond)) } else { cond })
    }

    fn list(&mut self) -> Result<Vec<Lit>, String> {
        if self.next() != Some(Token::LParen) {
            return Err("in must be followed by a parenthesised list".to_string());
        }
        let mut lits = vec![self.literal()?];
        loop {
            match self.next() {
                Some(Token::Comma) => lits.push(self.literal()?),
                Some(Token::RParen) => return Ok(lits),
                Some(t) => {
                    return Err(format!("expected \",\" or \")\" in list, got {}", describe(&t)));
                }
                None => return Err("unterminated in (...) list".to_string()),
            }
        }
    }

    fn literal(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Lit::Str(s)),
            Some(Token::Date(d)) => {
                DateTime::parse_from_rfc3339(&d).map(Lit::Date).map_err(|e| format!("[{d}] is not an RFC 3339 date-time: {e}"))
            }
            Some(Token::Word(w)) => {
                if w.eq_ignore_ascii_case("true") {
                    Ok(Lit::Bool(true))
                } else if w.eq_ignore_ascii_case("false") {
                    Ok(Lit::Bool(false))
                } else if w.eq_ignore_ascii_case("null") {
                    Ok(Lit::Null)
                } else if let Ok(n) = w.parse::<f64>()
                    && n.is_finite()
                {
                    Ok(Lit::Num(n))
                } else {
                    Err(format!("{w:?} is not a value: quote strings (\"...\")"))
                }
            }
            Some(t) => Err(format!("expected a value, got {}", describe(&t))),
            None => Err("expected a value, got the end of the conditions".to_string()),
        }
    }
}

impl Cond {
    pub(super) fn matches(&self, item: &Value) -> bool {
        match self {
            Cond::Cmp { path, op, lit } => compare_op(lookup(item, path), *op, lit),
            Cond::In { path, lits } => {
                let field = lookup(item, path);
                lits.iter().any(|l| equals(field, l))
            }
            Cond::Not(c) => !c.matches(item),
            Cond::And(a, b) => a.matches(item) && b.matches(item),
            Cond::Or(a, b) => a.matches(item) || b.matches(item),
        }
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(field: Option<&Value>, lit: &Lit) -> Option<Ordering> {
    let field = field.filter(|v| !v.is_null())?;
    match lit {
        Lit::Null => None,
        Lit::Bool(b) => field.as_bool().map(|f| f.cmp(b)),
        Lit::Num(n) => {
            let f = field.as_f64().or_else(|| field.as_str().and_then(|s| s.trim().parse().ok()))?;
            f.partial_cmp(n)
        }
        Lit::Str(s) => Some(text_of(field)?.to_lowercase().cmp(&s.to_lowercase())),
        Lit::Date(d) => {
            let f = DateTime::parse_from_rfc3339(field.as_str()?).ok()?;
            Some(f.cmp(d))
        }
    }
}

fn equals(field: Option<&Value>, lit: &Lit) -> bool {
    match lit {
        Lit::Null => field.is_none_or(Value::is_null),
        _ => compare(field, lit) == Some(Ordering::Equal),
    }
}

fn compare_op(field: Option<&Value>, op: Op, lit: &Lit) -> bool {
    match op {
        Op::Eq => equals(field, lit),
        Op::Ne => !equals(field, lit),
        Op::Lt => compare(field, lit) == Some(Ordering::Less),
        Op::Le => matches!(compare(field, lit), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => compare(field, lit) == Some(Ordering::Greater),
        Op::Ge => matches!(compare(field, lit), Some(Ordering::Greater | Ordering::Equal)),
        Op::Contains | Op::Like => {
            let (Some(text), Lit::Str(pattern)) = (field.and_then(text_of), lit) else {
                return false;
            };
            let text = text.to_lowercase();
            let pattern = pattern.to_lowercase();
            if op == Op::Contains {
                text.contains(&pattern)
            } else {
                glob(&text.chars().collect::<Vec<_>>(), &pattern.chars().collect::<Vec<_>>())
            }
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(text: &[char], pattern: &[char]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn resolve(f: &str) -> Result<Vec<String>, String> {
        match f.to_ascii_lowercase().as_str() {
            "unknown" => Err("unknown field".to_string()),
            _ => Ok(f.split('/').map(str::to_string).collect()),
        }
    }

    fn m(cond: &str, item: &Value) -> bool {
        parse(cond, &resolve).unwrap().matches(item)
    }

    #[test]
    fn evaluates_the_documented_operators() {
        let t = json!({"id": 1001, "summary": "Vigil: Impossible travel", "closedFlag": false,
                       "company": {"id": 250}, "externalXRef": "vigil:abc",
                       "_info": {"lastUpdated": "2025-06-01T00:00:00Z"}});
        assert!(m("company/id=250 and closedFlag=false and externalXRef=\"vigil:abc\"", &t));
        assert!(m("externalXRef='VIGIL:ABC'", &t));
        assert!(!m("company/id != 250", &t));
        assert!(m("summary contains \"impossible\"", &t));
        assert!(m("summary like \"Vigil:*travel\"", &t));
        assert!(!m("summary like \"travel*\"", &t));
        assert!(m("summary not like \"travel*\"", &t));
        assert!(m("id >= 1001 AND id < 1002", &t));
        assert!(m("id in (5, 1001)", &t));
        assert!(m("id not in (5, 6)", &t));
        assert!(m("(id = 5 or id = 1001) and not closedFlag = true", &t));
        assert!(m("_info/lastUpdated > [2025-01-01T00:00:00Z]", &t));
        assert!(m("owner = null", &t));
        assert!(!m("owner/id = 5", &t));
        assert!(m("summary = \"say \\\"hi\\\"\" or id=1001", &t));
    }

    #[test]
    fn rejects_bad_syntax_and_unknown_fields() {
        for bad in [
            "summary = vigil",
            "summary ==",
            "summary = \"x",
            "company/id = 250 and",
            "(id = 1",
            "id = 1 id = 2",
            "unknown = 1",
            "id ~ 1",
            "id contains 5",
            "id in 5",
            "lastUpdated > [yesterday]",
            "= 5",
        ] {
            assert!(parse(bad, &resolve).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn glob_matches_stars() {
        let g = |t: &str, p: &str| glob(&t.chars().collect::<Vec<_>>(), &p.chars().collect::<Vec<_>>());
        assert!(g("contoso ltd", "contoso*"));
        assert!(g("contoso ltd", "*ltd"));
        assert!(g("contoso ltd", "*so*l*"));
        assert!(g("", "*"));
        assert!(!g("contoso", "fabrikam*"));
        assert!(g("abc", "abc"));
        assert!(!g("abcd", "abc"));
    }
}
