//! Attribute paths (RFC 7644 §3.10): `[URN ":"] attrName ["." subAttr]`.
//!
//! URNs contain dots and colons (`...:enterprise:2.0:User:manager.value`), so a path is split at a
//! known schema URN first and at the last colon otherwise. A path that is exactly an extension URN
//! names the whole extension object (PATCH uses that form).

use std::fmt;

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Schema URNs the paths may be qualified with.
pub const KNOWN_SCHEMAS: [&str; 3] = [CORE_USER, CORE_GROUP, ENTERPRISE_USER];

/// A parsed attribute path. `name` is empty when the path names a whole extension object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn simple(name: &str) -> Self {
        AttrPath {
            urn: None,
            name: name.to_owned(),
            sub: None,
        }
    }

    /// Parses a path without brackets. Returns `None` when it is not a valid path.
    pub fn parse(text: &str) -> Option<AttrPath> {
        let (urn, rest) = split_urn(text)?;
        if rest.is_empty() {
            return urn.map(|u| AttrPath {
                urn: Some(u),
                name: String::new(),
                sub: None,
            });
        }
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
            return None;
        }
        Some(AttrPath {
            urn,
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        })
    }

    /// True when the path names a whole extension object (`urn:...:enterprise:2.0:User`).
    pub fn is_whole_extension(&self) -> bool {
        self.name.is_empty()
    }

    /// The same path with the sub-attribute dropped.
    pub fn parent(&self) -> AttrPath {
        AttrPath {
            urn: self.urn.clone(),
            name: self.name.clone(),
            sub: None,
        }
    }
}

/// Splits an optional schema URN prefix off `text`; the URN comes back in its canonical spelling
/// when it is a known schema.
fn split_urn(text: &str) -> Option<(Option<String>, &str)> {
    if !text
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        return Some((None, text));
    }
    for known in KNOWN_SCHEMAS {
        if let Some(head) = text.get(..known.len()) {
            if head.eq_ignore_ascii_case(known) {
                let rest = &text[known.len()..];
                if rest.is_empty() {
                    return Some((Some(known.to_owned()), ""));
                }
                if let Some(rest) = rest.strip_prefix(':') {
                    return Some((Some(known.to_owned()), rest));
                }
            }
        }
    }
    let (urn, rest) = text.rsplit_once(':')?;
    Some((Some(urn.to_owned()), rest))
}

/// ATTRNAME = ALPHA *(nameChar), plus `$ref`.
pub fn is_attr_name(s: &str) -> bool {
    if s == "$ref" {
        return true;
    }
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            f.write_str(urn)?;
            if !self.name.is_empty() {
                f.write_str(":")?;
            }
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_sub_attribute_paths() {
        assert_eq!(
            AttrPath::parse("userName"),
            Some(AttrPath::simple("userName"))
        );
        let p = AttrPath::parse("name.givenName").unwrap();
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("name", Some("givenName"))
        );
    }

    #[test]
    fn parses_urn_qualified_paths_with_dots_in_the_urn() {
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(p.urn.as_deref(), Some(ENTERPRISE_USER));
        assert_eq!(p.name, "manager");
        assert_eq!(p.sub.as_deref(), Some("value"));
        let whole = AttrPath::parse(ENTERPRISE_USER).unwrap();
        assert!(whole.is_whole_extension());
        assert_eq!(whole.to_string(), ENTERPRISE_USER);
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(AttrPath::parse("1abc"), None);
        assert_eq!(AttrPath::parse("a b"), None);
        assert_eq!(AttrPath::parse(""), None);
        assert_eq!(AttrPath::parse("name."), None);
    }
}
