//! The SCIM filter grammar of RFC 7644 §3.4.2.2, parsed into a plain AST.
//!
//! Precedence, lowest first: `or`, `and`, `not (...)` / `( ... )` / attribute expressions.
//! Operators and keywords are case-insensitive. A syntax error names the character position where
//! parsing failed. The same lexer and parser read PATCH paths (`emails[type eq "work"].value`,
//! [`PatchPath`]). [`Filter`]'s `Display` prints a filter that parses back to the same AST.
//!
//! Evaluation against a JSON resource lives in [`crate::scim::eval`]; translation to SQL lives in
//! the store. This module only knows syntax.

use std::fmt;

use serde_json::Number;

use super::error::{Error, Result};
use super::path::AttrPath;

/// Longest filter text accepted.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not` and value paths accepted.
pub const MAX_FILTER_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A comparison value: `false / null / true / number / string`.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath [ valFilter ]`: the inner filter applies to each value of a multi-valued attribute.
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    /// Parses filter text, enforcing the length and depth limits.
    ///
    /// ```
    /// use seatkeeper::scim::filter::Filter;
    /// let f = Filter::parse(r#"userName eq "bjensen" and emails[type eq "work"]"#).unwrap();
    /// assert_eq!(f.to_string(), r#"userName eq "bjensen" and emails[type eq "work"]"#);
    /// let err = Filter::parse("userName eq").unwrap_err();
    /// assert_eq!(err.status, 400);
    /// assert!(err.detail.contains("position 12"));
    /// ```
    pub fn parse(text: &str) -> Result<Filter> {
        if text.len() > MAX_FILTER_LEN {
            return Err(Error::invalid_filter(format!(
                "filter is {} characters long; the limit is {MAX_FILTER_LEN}",
                text.len()
            )));
        }
        let mut p = Parser::new(text)?;
        let f = p.parse_or(0, false)?;
        p.expect_end()?;
        Ok(f)
    }
}

/// A PATCH path: `attrPath [ "[" valFilter "]" [ "." subAttr ] ]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`emails[type eq "work"].value`); without a filter
    /// the sub-attribute is `attr.sub`.
    pub sub: Option<String>,
}

impl PatchPath {
    pub fn parse(text: &str) -> Result<PatchPath> {
        let invalid = |why: &str| Error::invalid_path(format!("invalid path {text:?}: {why}"));
        if text.len() > MAX_FILTER_LEN {
            return Err(invalid("too long"));
        }
        let Some(open) = text.find('[') else {
            let attr =
                AttrPath::parse(text.trim()).ok_or_else(|| invalid("not an attribute path"))?;
            return Ok(PatchPath {
                attr,
                filter: None,
                sub: None,
            });
        };
        let attr =
            AttrPath::parse(&text[..open]).ok_or_else(|| invalid("not an attribute path"))?;
        if attr.sub.is_some() || attr.is_whole_extension() {
            return Err(invalid(
                "a value filter must follow a multi-valued attribute",
            ));
        }
        let close = text.rfind(']').ok_or_else(|| invalid("missing ']'"))?;
        if close < open {
            return Err(invalid("missing ']'"));
        }
        let mut p = Parser::new(&text[open + 1..close]).map_err(|e| invalid(&e.detail))?;
        let filter = p.parse_or(1, true).map_err(|e| invalid(&e.detail))?;
        p.expect_end().map_err(|e| invalid(&e.detail))?;
        let tail = &text[close + 1..];
        let sub = if tail.is_empty() {
            None
        } else {
            let s = tail
                .strip_prefix('.')
                .ok_or_else(|| invalid("unexpected text after ']'"))?;
            if !super::path::is_attr_name(s) {
                return Err(invalid("bad sub-attribute after ']'"));
            }
            Some(s.to_owned())
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub,
        })
    }

    /// The sub-attribute the path ends in, with or without a filter.
    pub fn sub_attr(&self) -> Option<&str> {
        self.sub.as_deref().or(self.attr.sub.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn new(text: &str) -> Result<Parser> {
        Ok(Parser {
            toks: lex(text)?,
            pos: 0,
            end: text.chars().count(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|(p, _)| *p).unwrap_or(self.end)
    }

    fn fail<T>(&self, what: &str) -> Result<T> {
        let found = match self.peek() {
            None => "end of filter".to_owned(),
            Some(Tok::Word(w)) => format!("{w:?}"),
            Some(Tok::Str(s)) => format!("string {s:?}"),
            Some(t) => format!("{t:?}"),
        };
        Err(Error::invalid_filter(format!(
            "invalid filter at position {}: expected {what}, found {found}",
            self.at() + 1
        )))
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect_end(&self) -> Result<()> {
        if self.pos < self.toks.len() {
            return self.fail("end of filter, 'and' or 'or'");
        }
        Ok(())
    }

    fn check_depth(&self, depth: usize) -> Result<()> {
        if depth > MAX_FILTER_DEPTH {
            return Err(Error::invalid_filter(format!(
                "invalid filter at position {}: nested deeper than {MAX_FILTER_DEPTH} levels",
                self.at() + 1
            )));
        }
        Ok(())
    }

    fn parse_or(&mut self, depth: usize, in_value_path: bool) -> Result<Filter> {
        let mut left = self.parse_and(depth, in_value_path)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.parse_and(depth, in_value_path)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, depth: usize, in_value_path: bool) -> Result<Filter> {
        let mut left = self.parse_unary(depth, in_value_path)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.parse_unary(depth, in_value_path)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self, depth: usize, in_value_path: bool) -> Result<Filter> {
        self.check_depth(depth)?;
        if self.keyword("not") && matches!(self.toks.get(self.pos + 1), Some((_, Tok::LParen))) {
            self.pos += 2;
            let inner = self.parse_or(depth + 1, in_value_path)?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let inner = self.parse_or(depth + 1, in_value_path)?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(inner);
        }
        self.parse_attr_exp(depth, in_value_path)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<()> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    fn parse_attr_exp(&mut self, depth: usize, in_value_path: bool) -> Result<Filter> {
        let path = match self.peek() {
            Some(Tok::Word(w)) => match AttrPath::parse(w) {
                Some(p) if !p.is_whole_extension() => p,
                _ => return self.fail("an attribute path"),
            },
            _ => return self.fail("an attribute path, 'not' or '('"),
        };
        self.pos += 1;
        if self.peek() == Some(&Tok::LBracket) {
            if in_value_path {
                return self.fail("a comparison (value filters cannot nest)");
            }
            if path.sub.is_some() {
                return self.fail("'[' after an attribute without a sub-attribute");
            }
            self.pos += 1;
            let inner = self.parse_or(depth + 1, true)?;
            self.expect(Tok::RBracket, "']'")?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let op_word = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            _ => return self.fail("an operator (eq ne co sw ew gt ge lt le pr)"),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            self.pos += 1;
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::parse(&op_word) else {
            return self.fail("an operator (eq ne co sw ew gt ge lt le pr)");
        };
        self.pos += 1;
        let value = match self.peek() {
            Some(Tok::Str(s)) => CompValue::String(s.clone()),
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => CompValue::Bool(true),
                "false" => CompValue::Bool(false),
                "null" => CompValue::Null,
                _ => match serde_json::from_str::<Number>(w) {
                    Ok(n) => CompValue::Number(n),
                    Err(_) => return self.fail("a value (string, number, true, false or null)"),
                },
            },
            _ => return self.fail("a value (string, number, true, false or null)"),
        };
        self.pos += 1;
        Ok(Filter::Compare(path, op, value))
    }
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push((i, Tok::LParen));
                i += 1
            }
            ')' => {
                toks.push((i, Tok::RParen));
                i += 1
            }
            '[' => {
                toks.push((i, Tok::LBracket));
                i += 1
            }
            ']' => {
                toks.push((i, Tok::RBracket));
                i += 1
            }
            '"' => {
                let start = i;
                i += 1;
                let mut raw = String::from('"');
                let mut closed = false;
                while i < chars.len() {
                    let ch = chars[i];
                    raw.push(ch);
                    i += 1;
                    if ch == '\\' && i < chars.len() {
                        raw.push(chars[i]);
                        i += 1;
                    } else if ch == '"' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(Error::invalid_filter(format!(
                        "invalid filter at position {}: unterminated string",
                        start + 1
                    )));
                }
                let s: String = serde_json::from_str(&raw).map_err(|_| {
                    Error::invalid_filter(format!(
                        "invalid filter at position {}: bad escape in string",
                        start + 1
                    ))
                })?;
                toks.push((start, Tok::Str(s)));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | '[' | ']' | '"')
                {
                    i += 1;
                }
                toks.push((start, Tok::Word(chars[start..i].iter().collect())));
            }
        }
    }
    Ok(toks)
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `and` binds tighter than `or` and both associate to the left, so a right operand
            // of the same operator keeps its parentheses: the printed form parses back to this tree.
            Filter::Or(a, b) => match **b {
                Filter::Or(..) => write!(f, "{a} or ({b})"),
                _ => write!(f, "{a} or {b}"),
            },
            Filter::And(a, b) => {
                let left = match **a {
                    Filter::Or(..) => format!("({a})"),
                    _ => a.to_string(),
                };
                let right = match **b {
                    Filter::Or(..) | Filter::And(..) => format!("({b})"),
                    _ => b.to_string(),
                };
                write!(f, "{left} and {right}")
            }
            Filter::Not(x) => write!(f, "not ({x})"),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.as_str()),
            Filter::ValuePath(p, x) => write!(f, "{p}[{x}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(path: &str, v: &str) -> Filter {
        Filter::Compare(
            AttrPath::parse(path).unwrap(),
            CompareOp::Eq,
            CompValue::String(v.into()),
        )
    }

    #[test]
    fn parses_entra_test_connection_filter() {
        let f = Filter::parse(r#"userName eq "ffd0c2a8-83b3-4b4c-a5d4-7d3e4b2c1a11""#).unwrap();
        assert_eq!(f, eq("userName", "ffd0c2a8-83b3-4b4c-a5d4-7d3e4b2c1a11"));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = Filter::parse(r#"a eq "1" or b eq "2" and c eq "3""#).unwrap();
        assert_eq!(
            f,
            Filter::Or(
                Box::new(eq("a", "1")),
                Box::new(Filter::And(Box::new(eq("b", "2")), Box::new(eq("c", "3"))))
            )
        );
    }

    #[test]
    fn keywords_are_case_insensitive_and_values_typed() {
        let f = Filter::parse("active EQ True AND meta.version Pr").unwrap();
        let Filter::And(a, b) = f else {
            panic!("expected and")
        };
        assert_eq!(
            *a,
            Filter::Compare(
                AttrPath::simple("active"),
                CompareOp::Eq,
                CompValue::Bool(true)
            )
        );
        assert!(matches!(*b, Filter::Present(_)));
        let n = Filter::parse("x gt 10.5").unwrap();
        assert!(matches!(
            n,
            Filter::Compare(_, CompareOp::Gt, CompValue::Number(_))
        ));
    }

    #[test]
    fn parses_value_paths_and_not() {
        let f = Filter::parse(r#"emails[type eq "work" and value co "@example.com"]"#).unwrap();
        assert!(matches!(f, Filter::ValuePath(ref p, _) if p.name == "emails"));
        let n = Filter::parse(r#"not (members[value eq "x"])"#).unwrap();
        assert!(matches!(n, Filter::Not(_)));
    }

    #[test]
    fn urn_qualified_attribute_in_filter() {
        let f = Filter::parse(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#,
        )
        .unwrap();
        let Filter::Compare(p, _, _) = f else {
            panic!()
        };
        assert_eq!(p.name, "department");
    }

    #[test]
    fn errors_name_the_position() {
        let e = Filter::parse(r#"userName eq"#).unwrap_err();
        assert!(e.detail.contains("position 12"), "{}", e.detail);
        let e = Filter::parse(r#"userName xx "a""#).unwrap_err();
        assert!(e.detail.contains("position 10"), "{}", e.detail);
        let e = Filter::parse(r#"(userName eq "a""#).unwrap_err();
        assert!(e.detail.contains("')'"), "{}", e.detail);
        assert!(Filter::parse(r#"userName eq "unterminated"#).is_err());
        assert!(Filter::parse("").is_err());
        assert!(Filter::parse(r#"a[b[c eq 1]]"#).is_err());
    }

    #[test]
    fn depth_and_length_are_limited() {
        let deep = format!("{}a pr{}", "(".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&deep).unwrap_err().detail.contains("nested"));
        let long = format!(r#"a eq "{}""#, "x".repeat(MAX_FILTER_LEN));
        assert!(Filter::parse(&long).is_err());
    }

    #[test]
    fn printing_parses_back_to_the_same_filter() {
        for text in [
            r#"userName eq "bjensen""#,
            r#"a eq "1" or b eq "2" and c eq "3""#,
            r#"(a eq "1" or b eq "2") and c eq "3""#,
            r#"not (a pr) and emails[type eq "work" or primary eq true]"#,
            r#"title pr and userType eq "Employee" and meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"x eq null and y ne false and z le -1.5e3"#,
            r#"s eq "quote \" and backslash \\""#,
            // Found by the fuzzer: a large integer printed as a float must parse back exactly.
            "Ye eq 111111111111111111111111",
            // Found by the fuzzer: a right operand of the same operator keeps its parentheses.
            r#"e[t co "@%qm"] or (no[te co "@x"] or not (t pr))"#,
            r#"a pr and (b pr and c pr)"#,
            r#"a pr and (b pr or c pr) and d pr"#,
        ] {
            let f = Filter::parse(text).unwrap();
            let printed = f.to_string();
            assert_eq!(Filter::parse(&printed).unwrap(), f, "{text} -> {printed}");
        }
    }

    #[test]
    fn patch_paths() {
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr.name, "emails");
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert!(p.filter.is_some());
        let p = PatchPath::parse(r#"members[value eq "2819c223"]"#).unwrap();
        assert_eq!(p.sub_attr(), None);
        let p = PatchPath::parse("name.givenName").unwrap();
        assert_eq!(p.sub_attr(), Some("givenName"));
        assert!(PatchPath::parse("emails[type eq").is_err());
        assert!(PatchPath::parse("emails[type eq \"x\"]junk").is_err());
        assert_eq!(
            PatchPath::parse("bad path").unwrap_err().scim_type,
            Some(super::super::error::ScimType::InvalidPath)
        );
    }

    mod generated {
        use super::super::*;
        use proptest::prelude::*;

        fn path() -> impl Strategy<Value = AttrPath> {
            let name = prop_oneof![
                Just("userName"),
                Just("title"),
                Just("active"),
                Just("emails"),
                Just("not"),
                Just("and"),
                Just("x-custom_1"),
            ];
            let sub = prop_oneof![Just(None), Just(Some("value")), Just(Some("type"))];
            let urn = prop_oneof![
                3 => Just(None),
                1 => Just(Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")),
            ];
            (urn, name, sub).prop_map(|(u, n, s)| AttrPath {
                urn: u.map(str::to_owned),
                name: n.to_owned(),
                sub: s.map(str::to_owned),
            })
        }

        fn value() -> impl Strategy<Value = CompValue> {
            prop_oneof![
                Just(CompValue::Null),
                any::<bool>().prop_map(CompValue::Bool),
                (-1000i64..1000).prop_map(|n| CompValue::Number(n.into())),
                "[ -~\\u{e9}\\u{4e2d}\"\\\\]{0,12}".prop_map(CompValue::String),
            ]
        }

        fn op() -> impl Strategy<Value = CompareOp> {
            prop_oneof![
                Just(CompareOp::Eq),
                Just(CompareOp::Ne),
                Just(CompareOp::Co),
                Just(CompareOp::Sw),
                Just(CompareOp::Ew),
                Just(CompareOp::Gt),
                Just(CompareOp::Ge),
                Just(CompareOp::Lt),
                Just(CompareOp::Le),
            ]
        }

        fn leaf() -> impl Strategy<Value = Filter> {
            prop_oneof![
                path().prop_map(Filter::Present),
                (path(), op(), value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
            ]
        }

        fn filter() -> impl Strategy<Value = Filter> {
            let inner = leaf().prop_recursive(3, 12, 2, |f| {
                prop_oneof![
                    (f.clone(), f.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                    (f.clone(), f.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                    f.prop_map(|x| Filter::Not(Box::new(x))),
                ]
            });
            prop_oneof![
                4 => leaf().prop_recursive(4, 24, 2, |f| {
                    prop_oneof![
                        (f.clone(), f.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                        (f.clone(), f.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                        f.prop_map(|x| Filter::Not(Box::new(x))),
                    ]
                }),
                1 => (path().prop_map(|mut p| { p.sub = None; p }), inner).prop_map(|(p, f)| Filter::ValuePath(p, Box::new(f))),
            ]
        }

        proptest! {
            /// Any tree prints to text that parses back to the same tree.
            #[test]
            fn parse_print_parse_round_trips(f in filter()) {
                let printed = f.to_string();
                let parsed = Filter::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
                prop_assert_eq!(&parsed, &f, "{}", printed);
                prop_assert_eq!(parsed.to_string(), printed.clone());
                prop_assert_eq!(Filter::parse(&parsed.to_string()).unwrap(), parsed);
            }

            /// Any text either parses or fails with a 400 invalidFilter; nothing panics.
            #[test]
            fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
                if let Err(e) = Filter::parse(&s) {
                    prop_assert_eq!(e.status, 400);
                }
                let _ = PatchPath::parse(&s);
            }
        }
    }
}
