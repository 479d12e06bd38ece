//! Evaluates a parsed [`Filter`] against a JSON resource or one value of a multi-valued attribute.
//!
//! String comparisons follow the schema's `caseExact` (userName, emails.value and displayName are
//! case-insensitive; id and externalId are exact); dateTime attributes compare as instants;
//! numbers as numbers. A multi-valued attribute matches when any of its values matches, and a
//! complex multi-valued attribute without a sub-attribute compares its `value`.

use std::cmp::Ordering;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::filter::{CompValue, CompareOp, Filter};
use super::path::AttrPath;
use super::schema::{find, AttrDef, AttrType, ResourceKind};

/// What the attribute names of a filter are relative to.
#[derive(Clone, Copy)]
pub enum Scope {
    /// A whole resource of this kind.
    Resource(ResourceKind),
    /// One value of a complex multi-valued attribute with these sub-attributes.
    Element(&'static [AttrDef]),
}

/// True when `target` matches `filter`.
pub fn matches(filter: &Filter, target: &Value, scope: Scope) -> bool {
    match filter {
        Filter::Or(a, b) => matches(a, target, scope) || matches(b, target, scope),
        Filter::And(a, b) => matches(a, target, scope) && matches(b, target, scope),
        Filter::Not(x) => !matches(x, target, scope),
        Filter::Present(path) => {
            let (values, _) = lookup(target, scope, path, false);
            values.iter().any(|v| is_present(v))
        }
        Filter::Compare(path, op, cv) => {
            let (values, def) = lookup(target, scope, path, true);
            let present: Vec<&Value> = values.into_iter().filter(|v| is_present(v)).collect();
            match (op, cv) {
                (CompareOp::Eq, CompValue::Null) => present.is_empty(),
                (CompareOp::Ne, CompValue::Null) => !present.is_empty(),
                (CompareOp::Ne, _) => !present.iter().any(|v| compare(v, CompareOp::Eq, cv, def)),
                _ => present.iter().any(|v| compare(v, *op, cv, def)),
            }
        }
        Filter::ValuePath(path, inner) => {
            let (values, def) = lookup(target, scope, path, false);
            let subs = def.map(|d| d.sub).unwrap_or(&[]);
            values
                .iter()
                .any(|v| matches(inner, v, Scope::Element(subs)))
        }
    }
}

/// A value to sort resources by (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// The value `path` sorts `resource` by: the attribute's value (for a multi-valued attribute, the
/// primary value, else the first), folded to lower case unless the schema says caseExact.
/// `None` when the resource has no value there.
pub fn sort_value(kind: ResourceKind, path: &AttrPath, resource: &Value) -> Option<SortValue> {
    let (values, def) = lookup(resource, Scope::Resource(kind), path, true);
    let primary = if path.sub.is_none() || path.sub.as_deref() == Some("value") {
        resource_primary(resource, kind, path)
    } else {
        None
    };
    let v = primary.or_else(|| values.into_iter().find(|v| is_present(v)))?;
    Some(match v {
        Value::Bool(b) => SortValue::Bool(*b),
        Value::Number(n) => SortValue::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) if def.is_some_and(|d| d.case_exact) => SortValue::Text(s.clone()),
        Value::String(s) => SortValue::Text(s.to_lowercase()),
        other => SortValue::Text(other.to_string()),
    })
}

/// The `value` of the primary element of a multi-valued attribute.
fn resource_primary<'a>(
    resource: &'a Value,
    kind: ResourceKind,
    path: &AttrPath,
) -> Option<&'a Value> {
    let (_, def) = kind.resolve(path)?;
    if !def.multi {
        return None;
    }
    let container = match kind.resolve(path) {
        Some((Some(urn), _)) => get_ci(resource, urn)?,
        _ => resource,
    };
    get_ci(container, &path.name)?
        .as_array()?
        .iter()
        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        .and_then(|e| e.get("value"))
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Gets a key case-insensitively.
pub fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The values a path selects in `target`, flattened over multi-valued attributes, and the leaf
/// definition when the schema knows it. With `compare_value`, a complex multi-valued attribute
/// named without a sub-attribute yields the `value` of each of its values.
fn lookup<'a>(
    target: &'a Value,
    scope: Scope,
    path: &AttrPath,
    compare_value: bool,
) -> (Vec<&'a Value>, Option<&'static AttrDef>) {
    let (container, def) = match scope {
        Scope::Resource(kind) => {
            let resolved = kind.resolve(path);
            let container = match resolved {
                Some((Some(urn), _)) => get_ci(target, urn),
                _ => Some(target),
            };
            (container, resolved.map(|(_, d)| d))
        }
        Scope::Element(subs) => (Some(target), find(subs, &path.name)),
    };
    let Some(attr) = container.and_then(|c| get_ci(c, &path.name)) else {
        return (Vec::new(), leaf(def, path));
    };
    let items: Vec<&Value> = match attr {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let sub = match (&path.sub, def) {
        (Some(s), _) => Some(s.as_str()),
        // A complex multi-valued attribute without a sub-attribute compares its "value".
        (None, Some(d)) if compare_value && d.ty == AttrType::Complex && d.multi => Some("value"),
        _ => None,
    };
    let values = match sub {
        Some(s) => items.into_iter().filter_map(|i| get_ci(i, s)).collect(),
        None => items,
    };
    let leaf_def = match (&path.sub, def) {
        (None, Some(d)) if compare_value && d.ty == AttrType::Complex && d.multi => {
            d.sub_attr("value")
        }
        _ => leaf(def, path),
    };
    (values, leaf_def)
}

fn leaf(def: Option<&'static AttrDef>, path: &AttrPath) -> Option<&'static AttrDef> {
    match (&path.sub, def) {
        (Some(s), Some(d)) => d.sub_attr(s),
        (None, d) => d,
        _ => None,
    }
}

fn compare(v: &Value, op: CompareOp, cv: &CompValue, def: Option<&AttrDef>) -> bool {
    match (v, cv) {
        (Value::String(s), CompValue::String(c)) => {
            if def.is_some_and(|d| d.ty == AttrType::DateTime) {
                if let (Ok(a), Ok(b)) = (
                    OffsetDateTime::parse(s, &Rfc3339),
                    OffsetDateTime::parse(c, &Rfc3339),
                ) {
                    return ordered(a.cmp(&b), op);
                }
            }
            let exact = def.is_some_and(|d| d.case_exact);
            let (a, b) = if exact {
                (s.clone(), c.clone())
            } else {
                (s.to_lowercase(), c.to_lowercase())
            };
            match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordered(a.cmp(&b), op),
            }
        }
        (Value::Bool(a), CompValue::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        (Value::Number(a), CompValue::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).is_some_and(|o| ordered(o, op)),
            _ => false,
        },
        _ => false,
    }
}

fn ordered(o: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "2819c223", "userName": "BJensen", "active": true, "externalId": "Ext-1",
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                       {"value": "babs@home.example", "type": "home"}],
            "name": {"givenName": "Barbara"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            "meta": {"lastModified": "2024-05-13T04:42:34Z"}
        })
    }

    fn m(f: &str) -> bool {
        matches(
            &Filter::parse(f).unwrap(),
            &user(),
            Scope::Resource(ResourceKind::User),
        )
    }

    #[test]
    fn case_exactness_follows_the_schema() {
        assert!(m(r#"userName eq "bjensen""#));
        assert!(!m(r#"externalId eq "ext-1""#));
        assert!(m(r#"externalId eq "Ext-1""#));
        assert!(!m(r#"id eq "2819C223""#));
    }

    #[test]
    fn multi_valued_and_value_paths() {
        assert!(m(r#"emails.value eq "BABS@home.example""#));
        assert!(m(r#"emails eq "babs@home.example""#));
        assert!(m(r#"emails[type eq "work" and primary eq true]"#));
        assert!(!m(r#"emails[type eq "home" and primary eq true]"#));
        assert!(m(r#"emails[value ew "example.com"]"#));
    }

    #[test]
    fn operators_types_and_extensions() {
        assert!(m("active eq true and not (title pr)"));
        assert!(m(r#"name.givenName sw "bar" and name.givenName co "RBA""#));
        assert!(m(r#"meta.lastModified gt "2024-05-13T00:00:00+02:00""#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#
        ));
        assert!(m("title eq null"));
        assert!(m(r#"title ne "x""#));
        assert!(!m(r#"userName ne "BJENSEN""#));
    }
}
