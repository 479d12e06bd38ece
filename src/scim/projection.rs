//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) applied to a rendered resource.
//!
//! `id` and `schemas` are returned always; everything else follows the request. Paths may name a
//! sub-attribute (`name.givenName`, `emails.value`) or be urn-qualified.

use serde_json::{Map, Value};

use super::error::{Error, Result};
use super::path::AttrPath;
use super::schema::{ResourceKind, Returned};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

fn parse_list(text: Option<&str>, param: &str) -> Result<Vec<AttrPath>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            AttrPath::parse(s).ok_or_else(|| {
                Error::invalid_value(format!("{param}: {s:?} is not an attribute path"))
            })
        })
        .collect()
}

impl Projection {
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Projection> {
        Ok(Projection {
            attributes: parse_list(attributes, "attributes")?,
            excluded: parse_list(excluded, "excludedAttributes")?,
        })
    }

    /// True when the client asked for no projection at all.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// True when the projection drops the whole top-level attribute `name` (used to skip loading a
    /// Group's members when the client asked not to see them).
    pub fn drops(&self, kind: ResourceKind, name: &str) -> bool {
        let names =
            |p: &AttrPath| p.sub.is_none() && is_core(kind, p) && p.name.eq_ignore_ascii_case(name);
        let requested = |p: &AttrPath| is_core(kind, p) && p.name.eq_ignore_ascii_case(name);
        self.excluded.iter().any(names)
            || (!self.attributes.is_empty() && !self.attributes.iter().any(requested))
    }

    pub fn apply(&self, kind: ResourceKind, resource: &mut Value) {
        let Value::Object(obj) = resource else { return };
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            for (key, value) in std::mem::take(obj) {
                if always(kind, &key) {
                    kept.insert(key, value);
                    continue;
                }
                if let Some((urn, _)) = kind.extension(&key) {
                    if self
                        .attributes
                        .iter()
                        .any(|p| p.urn.as_deref() == Some(urn) && p.is_whole_extension())
                    {
                        kept.insert(key, value);
                    } else if let Value::Object(inner) = value {
                        let wanted: Vec<&AttrPath> = self
                            .attributes
                            .iter()
                            .filter(|p| p.urn.as_deref() == Some(urn))
                            .collect();
                        let sub = keep_only(inner, &wanted);
                        if !sub.is_empty() {
                            kept.insert(key, Value::Object(sub));
                        }
                    }
                    continue;
                }
                let wanted: Vec<&AttrPath> = self
                    .attributes
                    .iter()
                    .filter(|p| is_core(kind, p) && p.name.eq_ignore_ascii_case(&key))
                    .collect();
                if wanted.iter().any(|p| p.sub.is_none()) {
                    kept.insert(key, value);
                } else if !wanted.is_empty() {
                    let subs: Vec<&str> = wanted.iter().filter_map(|p| p.sub.as_deref()).collect();
                    if let Some(v) = keep_subs(value, &subs) {
                        kept.insert(key, v);
                    }
                }
            }
            *obj = kept;
        }
        for p in &self.excluded {
            if p.sub.is_none() && always(kind, &p.name) {
                continue;
            }
            let container = match p.urn.as_deref().and_then(|u| kind.extension(u)) {
                Some((urn, _)) if p.is_whole_extension() => {
                    obj.remove(urn);
                    continue;
                }
                Some((urn, _)) => match obj.get_mut(urn) {
                    Some(Value::Object(o)) => o,
                    _ => continue,
                },
                None => &mut *obj,
            };
            remove_path(container, p);
        }
        for (urn, _) in kind.extensions() {
            if obj
                .get(*urn)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                obj.remove(*urn);
            }
        }
    }
}

fn is_core(kind: ResourceKind, p: &AttrPath) -> bool {
    p.urn
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(kind.core_schema()))
}

fn always(kind: ResourceKind, name: &str) -> bool {
    name == "schemas"
        || kind
            .resolve(&AttrPath::simple(name))
            .is_some_and(|(_, d)| d.returned == Returned::Always)
}

fn keep_only(inner: Map<String, Value>, wanted: &[&AttrPath]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in inner {
        let hits: Vec<&&AttrPath> = wanted
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case(&k))
            .collect();
        if hits.iter().any(|p| p.sub.is_none()) {
            out.insert(k, v);
        } else if !hits.is_empty() {
            let subs: Vec<&str> = hits.iter().filter_map(|p| p.sub.as_deref()).collect();
            if let Some(v) = keep_subs(v, &subs) {
                out.insert(k, v);
            }
        }
    }
    out
}

fn keep_subs(value: Value, subs: &[&str]) -> Option<Value> {
    let pick = |o: Map<String, Value>| -> Map<String, Value> {
        o.into_iter()
            .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .collect()
    };
    match value {
        Value::Object(o) => {
            Some(Value::Object(pick(o))).filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .into_iter()
                .filter_map(|i| match i {
                    Value::Object(o) => Some(Value::Object(pick(o))),
                    _ => None,
                })
                .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                .collect();
            Some(Value::Array(kept)).filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        }
        _ => None,
    }
}

fn remove_path(container: &mut Map<String, Value>, p: &AttrPath) {
    let Some(key) = container
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&p.name))
        .cloned()
    else {
        return;
    };
    match &p.sub {
        None => {
            container.remove(&key);
        }
        Some(sub) => match container.get_mut(&key) {
            Some(Value::Object(o)) => o.retain(|k, _| !k.eq_ignore_ascii_case(sub)),
            Some(Value::Array(items)) => items.iter_mut().for_each(|i| {
                if let Value::Object(o) = i {
                    o.retain(|k, _| !k.eq_ignore_ascii_case(sub))
                }
            }),
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({"schemas": ["s"], "id": "1", "userName": "b", "name": {"givenName": "B", "familyName": "J"},
               "emails": [{"value": "a@b", "type": "work"}], "meta": {"version": "W/\"1\""},
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "costCenter": "C"}})
    }

    #[test]
    fn attributes_keeps_only_requested_plus_always() {
        let mut u = user();
        Projection::parse(Some("userName,name.givenName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"), None)
            .unwrap()
            .apply(ResourceKind::User, &mut u);
        assert_eq!(
            u,
            json!({"schemas": ["s"], "id": "1", "userName": "b", "name": {"givenName": "B"}, "emails": [{"value": "a@b"}],
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}})
        );
    }

    #[test]
    fn excluded_attributes_drop_but_never_id() {
        let mut u = user();
        let p = Projection::parse(None, Some("id,emails,name.familyName,meta")).unwrap();
        p.apply(ResourceKind::User, &mut u);
        assert_eq!(u["id"], "1");
        assert!(u.get("emails").is_none() && u.get("meta").is_none());
        assert_eq!(u["name"], json!({"givenName": "B"}));
        assert!(Projection::parse(None, Some("members"))
            .unwrap()
            .drops(ResourceKind::Group, "members"));
        assert!(Projection::parse(Some("displayName"), None)
            .unwrap()
            .drops(ResourceKind::Group, "members"));
        assert!(!Projection::parse(None, None)
            .unwrap()
            .drops(ResourceKind::Group, "members"));
        assert!(Projection::parse(Some("bad path!"), None).is_err());
    }
}
