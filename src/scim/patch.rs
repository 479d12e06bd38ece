//! PATCH (RFC 7644 §3.5.2) as a pure function: operations in, a changed document and a list of
//! member changes out.
//!
//! [`parse`] reads a PatchOp request, accepting the op names in any case ("Add", "Replace",
//! "Remove" as Entra writes them). [`apply`] runs the operations in order on a normalized [`Doc`].
//! A Group's `members` are never materialized as a list here: operations on them become
//! [`MemberChange`]s that the store applies to its member table, so adding one member to a group of
//! 100,000 costs one row, not a rewrite.
//!
//! (Over 700 lines with its unit tests, which cover each form of path Entra and Okta send; the
//! code is under 670.)
//!
//! Both of Entra's forms are handled: path-less `replace` whose keys are attribute paths (even
//! `emails[type eq "work"].value` or urn-qualified names), member removal by a value filter
//! (`members[value eq "id"]`) and by a `value` list on path `members` (only those are removed).

use serde_json::{Map, Value};

use super::error::{Error, Result};
use super::eval::{self, Scope};
use super::filter::{CompValue, CompareOp, Filter, PatchPath};
use super::resource::{
    check_required, members_from, normalize_attr, normalize_value, Doc, MemberRef,
};
use super::schema::{AttrDef, AttrType, Mutability, ResourceKind};

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most operations one PATCH request may carry.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A change to a Group's member list, in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    Add(Vec<MemberRef>),
    Remove(Vec<String>),
    /// Remove the members matching a filter over `value`, `display` and `type`.
    RemoveWhere(Filter),
    RemoveAll,
    Replace(Vec<MemberRef>),
}

/// Removes `key` from an object, matched exactly or else ignoring case.
fn take_ci(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    map.remove(key).or_else(|| {
        let k = map.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone();
        map.remove(&k)
    })
}

/// Reads a PatchOp request body. It takes the body: operation values (a hundred thousand
/// members in one request) move into the operations rather than being copied.
pub fn parse(body: Value) -> Result<Vec<PatchOp>> {
    let Value::Object(mut obj) = body else {
        return Err(Error::invalid_syntax(
            "the PATCH body must be a JSON object",
        ));
    };
    if let Some(schemas) = obj.get("schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_SCHEMA))
            })
        });
        if !ok {
            return Err(Error::invalid_syntax(format!(
                "\"schemas\" must be [\"{PATCH_SCHEMA}\"]"
            )));
        }
    }
    let Some(Value::Array(ops)) = take_ci(&mut obj, "Operations") else {
        return Err(Error::invalid_syntax(
            "\"Operations\" must be a list of operations",
        ));
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(Error::too_many(format!(
            "at most {MAX_OPERATIONS} operations per PATCH"
        )));
    }
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            let at = |what: &str| Error::invalid_syntax(format!("Operations[{i}]: {what}"));
            let Value::Object(mut op) = op else {
                return Err(at("each operation must be an object"));
            };
            let kind = match take_ci(&mut op, "op")
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => OpKind::Add,
                Some("replace") => OpKind::Replace,
                Some("remove") => OpKind::Remove,
                _ => return Err(at("\"op\" must be add, replace or remove")),
            };
            let path = match take_ci(&mut op, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(PatchPath::parse(p.trim())?),
                Some(_) => {
                    return Err(Error::invalid_path(format!(
                        "Operations[{i}]: \"path\" must be a string"
                    )))
                }
            };
            let value = take_ci(&mut op, "value");
            if kind != OpKind::Remove && value.is_none() {
                return Err(Error::invalid_value(format!(
                    "Operations[{i}]: {kind:?} needs a \"value\""
                )));
            }
            if kind == OpKind::Remove && path.is_none() {
                return Err(Error::no_target(format!(
                    "Operations[{i}]: remove needs a \"path\""
                )));
            }
            Ok(PatchOp {
                op: kind,
                path,
                value,
            })
        })
        .collect()
}

/// True when a Group PATCH may change more than `limit` members: value lists over the limit in
/// all, a `replace` of the member list (it drops every current member), or a `remove` of the
/// whole list or by a filter other than `value eq`. The store runs such a request alone.
pub fn may_change_many_members(ops: &[PatchOp], limit: usize) -> bool {
    fn members_path(p: &PatchPath) -> bool {
        p.attr.name.eq_ignore_ascii_case("members")
    }
    fn count(v: &Value) -> usize {
        match v {
            Value::Array(a) => a.len(),
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("members"))
                .map(|(_, v)| v.as_array().map_or(1, Vec::len))
                .sum::<usize>()
                .max(1),
            _ => 1,
        }
    }
    let mut values = 0usize;
    for op in ops {
        values += op.value.as_ref().map_or(0, count);
        let whole = match (&op.op, &op.path) {
            (OpKind::Replace, Some(p)) => members_path(p),
            (OpKind::Replace, None) => op
                .value
                .as_ref()
                .and_then(Value::as_object)
                .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case("members"))),
            (OpKind::Remove, Some(p)) if members_path(p) => match &p.filter {
                None => op.value.is_none(),
                Some(Filter::Compare(a, CompareOp::Eq, _)) => !a.name.eq_ignore_ascii_case("value"),
                Some(_) => true,
            },
            _ => false,
        };
        if whole || values > limit {
            return true;
        }
    }
    false
}

/// Applies operations to `doc`; returns the member changes for a Group, in order.
pub fn apply(kind: ResourceKind, doc: &mut Doc, ops: &[PatchOp]) -> Result<Vec<MemberChange>> {
    let mut changes = Vec::new();
    for op in ops {
        match &op.path {
            Some(path) => apply_one(
                kind,
                doc,
                op.op,
                path,
                op.value.as_ref(),
                true,
                &mut changes,
            )?,
            None => {
                let Some(Value::Object(values)) = &op.value else {
                    return Err(Error::invalid_value(
                        "an operation without \"path\" needs an object \"value\"",
                    ));
                };
                for (key, value) in values {
                    if ["schemas", "id", "meta"]
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(key))
                    {
                        continue;
                    }
                    let Ok(path) = PatchPath::parse(key) else {
                        continue;
                    };
                    apply_one(kind, doc, op.op, &path, Some(value), false, &mut changes)?;
                }
            }
        }
    }
    check_required(kind, doc)?;
    let named: usize = changes
        .iter()
        .map(|c| match c {
            MemberChange::Add(l) | MemberChange::Replace(l) => l.len(),
            MemberChange::Remove(l) => l.len(),
            MemberChange::RemoveWhere(_) | MemberChange::RemoveAll => 0,
        })
        .sum();
    if named > super::resource::MAX_MEMBERS {
        return Err(Error::too_many(format!(
            "{named} member values in one PATCH; at most {}",
            super::resource::MAX_MEMBERS
        )));
    }
    Ok(changes)
}

/// One operation at one path. `explicit` is false for the keys of a path-less value, where unknown
/// and read-only attributes are skipped instead of rejected.
fn apply_one(
    kind: ResourceKind,
    doc: &mut Doc,
    op: OpKind,
    path: &PatchPath,
    value: Option<&Value>,
    explicit: bool,
    changes: &mut Vec<MemberChange>,
) -> Result<()> {
    if path.attr.is_whole_extension() {
        let urn = path.attr.urn.as_deref().unwrap_or_default();
        let Some((urn, attrs)) = kind.extension(urn) else {
            return if explicit {
                Err(Error::invalid_path(format!("unknown schema {urn}")))
            } else {
                Ok(())
            };
        };
        if op == OpKind::Remove {
            doc.remove(urn);
            return Ok(());
        }
        let Some(Value::Object(values)) = value else {
            return Err(Error::invalid_value(format!(
                "the value for {urn} must be an object"
            )));
        };
        for (key, v) in values {
            let Some(def) = super::schema::find(attrs, key) else {
                continue;
            };
            let sub_path = PatchPath {
                attr: super::path::AttrPath {
                    urn: Some(urn.to_owned()),
                    name: def.name.to_owned(),
                    sub: None,
                },
                filter: None,
                sub: None,
            };
            apply_one(kind, doc, op, &sub_path, Some(v), false, changes)?;
        }
        return Ok(());
    }
    let Some((ext, def)) = kind.resolve(&path.attr) else {
        return if explicit {
            Err(Error::invalid_path(format!(
                "unknown attribute \"{}\"",
                path.attr
            )))
        } else {
            Ok(())
        };
    };
    if kind == ResourceKind::Group && ext.is_none() && def.name == "members" {
        changes.push(member_change(op, path, value)?);
        return Ok(());
    }
    if def.mutability == Mutability::ReadOnly {
        return if explicit {
            Err(Error::mutability(format!("\"{}\" is read-only", def.name)))
        } else {
            Ok(())
        };
    }
    let container: &mut Doc = match ext {
        None => doc,
        Some(urn) => {
            if op == OpKind::Remove && !doc.contains_key(urn) {
                return Ok(());
            }
            let entry = doc
                .entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(m) => m,
                _ => return Err(Error::invalid_value(format!("{urn} is not an object"))),
            }
        }
    };
    let sub = match path.sub_attr() {
        None => None,
        Some(s) => {
            let sd = def.sub_attr(s).ok_or_else(|| {
                Error::invalid_path(format!("unknown attribute \"{}.{s}\"", def.name))
            })?;
            if sd.mutability == Mutability::ReadOnly {
                return if explicit {
                    Err(Error::mutability(format!(
                        "\"{}.{}\" is read-only",
                        def.name, sd.name
                    )))
                } else {
                    Ok(())
                };
            }
            Some(sd)
        }
    };
    match &path.filter {
        None => apply_at_attr(container, def, sub, op, value)?,
        Some(f) => apply_filtered(container, def, f, sub, op, value)?,
    }
    tidy(container, def.name);
    if let Some(urn) = ext {
        if doc
            .get(urn)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            doc.remove(urn);
        }
    }
    Ok(())
}

fn apply_at_attr(
    container: &mut Doc,
    def: &'static AttrDef,
    sub: Option<&'static AttrDef>,
    op: OpKind,
    value: Option<&Value>,
) -> Result<()> {
    let name = def.name;
    if let Some(sd) = sub {
        let v = match op {
            OpKind::Remove => None,
            _ => normalize_attr(
                sd,
                value.unwrap_or(&Value::Null),
                &format!("{name}.{}", sd.name),
            )?,
        };
        let slot = container.entry(name.to_owned()).or_insert_with(|| {
            if def.multi {
                Value::Array(vec![])
            } else {
                Value::Object(Map::new())
            }
        });
        let targets: Vec<&mut Value> = match slot {
            Value::Array(items) if items.is_empty() && v.is_some() => {
                items.push(Value::Object(Map::new()));
                items.iter_mut().collect()
            }
            Value::Array(items) => items.iter_mut().collect(),
            other => vec![other],
        };
        for t in targets {
            if let Value::Object(o) = t {
                set_or_remove(o, sd.name, v.clone());
            }
        }
        return Ok(());
    }
    match op {
        OpKind::Remove => match value {
            Some(v) if def.multi && !v.is_null() => {
                let gone: Vec<Value> = match v {
                    Value::Array(a) => a.clone(),
                    v => vec![v.clone()],
                };
                if let Some(Value::Array(items)) = container.get_mut(name) {
                    items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
                }
            }
            _ => {
                container.remove(name);
            }
        },
        OpKind::Add | OpKind::Replace => {
            let Some(v) = normalize_attr(def, value.unwrap_or(&Value::Null), name)? else {
                if op == OpKind::Replace {
                    container.remove(name);
                }
                return Ok(());
            };
            match (op, v) {
                (OpKind::Add, Value::Array(new)) => {
                    let items = container
                        .entry(name.to_owned())
                        .or_insert_with(|| Value::Array(vec![]));
                    let Value::Array(items) = items else {
                        unreachable_shape(name)?
                    };
                    if new
                        .iter()
                        .any(|n| n.get("primary") == Some(&Value::Bool(true)))
                    {
                        clear_primary(items);
                    }
                    for n in new {
                        if !items.iter().any(|i| i == &n) {
                            items.push(n);
                        }
                    }
                }
                (_, Value::Object(new)) if !def.multi => {
                    let slot = container
                        .entry(name.to_owned())
                        .or_insert_with(|| Value::Object(Map::new()));
                    let Value::Object(existing) = slot else {
                        unreachable_shape(name)?
                    };
                    for (k, v) in new {
                        existing.insert(k, v);
                    }
                }
                (_, v) => {
                    container.insert(name.to_owned(), v);
                }
            }
        }
    }
    Ok(())
}

fn unreachable_shape<T>(name: &str) -> Result<T> {
    Err(Error::invalid_value(format!(
        "stored \"{name}\" has an unexpected shape"
    )))
}

fn apply_filtered(
    container: &mut Doc,
    def: &'static AttrDef,
    filter: &Filter,
    sub: Option<&'static AttrDef>,
    op: OpKind,
    value: Option<&Value>,
) -> Result<()> {
    let name = def.name;
    if !(def.multi && def.ty == AttrType::Complex) {
        return Err(Error::invalid_path(format!(
            "\"{name}\" is not multi-valued; a value filter does not apply"
        )));
    }
    let items = container
        .entry(name.to_owned())
        .or_insert_with(|| Value::Array(vec![]));
    let Value::Array(items) = items else {
        return unreachable_shape(name);
    };
    let hit: Vec<usize> = (0..items.len())
        .filter(|&i| eval::matches(filter, &items[i], Scope::Element(def.sub)))
        .collect();
    if op == OpKind::Remove {
        match sub {
            Some(sd) => hit.iter().for_each(|&i| {
                if let Value::Object(o) = &mut items[i] {
                    o.remove(sd.name);
                }
            }),
            None => {
                let mut i = 0;
                items.retain(|_| {
                    i += 1;
                    !hit.contains(&(i - 1))
                });
            }
        }
        return Ok(());
    }
    let value = value.unwrap_or(&Value::Null);
    if hit.is_empty() {
        // Entra writes `emails[type eq "work"].value` to set the work email whether or not it exists:
        // a filter of equalities describes the value to create.
        let Some(pairs) = eq_pairs(filter) else {
            return Err(Error::no_target(format!(
                "no value of \"{name}\" matches the filter"
            )));
        };
        let mut element: Map<String, Value> = pairs.into_iter().collect();
        match sub {
            Some(sd) => {
                element.insert(sd.name.to_owned(), value.clone());
            }
            None => match value {
                Value::Object(o) => element.extend(o.clone()),
                _ => {
                    return Err(Error::invalid_value(format!(
                        "the value for \"{name}[...]\" must be an object"
                    )))
                }
            },
        }
        if let Some(v) = normalize_value(def, &Value::Object(element), name)? {
            if v.get("primary") == Some(&Value::Bool(true)) {
                clear_primary(items);
            }
            items.push(v);
        }
        return Ok(());
    }
    for &i in &hit {
        match sub {
            Some(sd) => {
                let v = normalize_attr(sd, value, &format!("{name}.{}", sd.name))?;
                if let Value::Object(o) = &mut items[i] {
                    set_or_remove(o, sd.name, v);
                }
            }
            None => {
                let new = normalize_value(def, value, name)?.unwrap_or(Value::Object(Map::new()));
                match (op, &mut items[i], new) {
                    (OpKind::Add, Value::Object(existing), Value::Object(n)) => existing.extend(n),
                    (_, slot, n) => *slot = n,
                }
            }
        }
    }
    Ok(())
}

/// `a eq "x" and b eq true` → [(a, "x"), (b, true)]; any other filter → None.
fn eq_pairs(filter: &Filter) -> Option<Vec<(String, Value)>> {
    match filter {
        Filter::Compare(p, CompareOp::Eq, v) if p.urn.is_none() && p.sub.is_none() => {
            let v = match v {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            Some(vec![(p.name.clone(), v)])
        }
        Filter::And(a, b) => {
            let mut out = eq_pairs(a)?;
            out.extend(eq_pairs(b)?);
            Some(out)
        }
        _ => None,
    }
}

fn member_change(op: OpKind, path: &PatchPath, value: Option<&Value>) -> Result<MemberChange> {
    if path.sub_attr().is_some() || (path.filter.is_some() && op != OpKind::Remove) {
        return Err(Error::invalid_path(
            "members are added, replaced or removed whole; remove may use a filter such as members[value eq \"id\"]",
        ));
    }
    let value = value.filter(|v| !v.is_null());
    Ok(match op {
        OpKind::Add => MemberChange::Add(members_from(value.unwrap_or(&Value::Null))?),
        OpKind::Replace => match value {
            Some(v) => MemberChange::Replace(members_from(v)?),
            None => MemberChange::RemoveAll,
        },
        OpKind::Remove => match (&path.filter, value) {
            (Some(f), _) => match value_eqs(f) {
                Some(ids) => MemberChange::Remove(ids),
                None => MemberChange::RemoveWhere(f.clone()),
            },
            (None, Some(v)) => {
                MemberChange::Remove(members_from(v)?.into_iter().map(|m| m.value).collect())
            }
            (None, None) => MemberChange::RemoveAll,
        },
    })
}

/// `value eq "a" or value eq "b"` → ["a", "b"].
fn value_eqs(filter: &Filter) -> Option<Vec<String>> {
    match filter {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(s))
            if p.name.eq_ignore_ascii_case("value") && p.sub.is_none() =>
        {
            Some(vec![s.clone()])
        }
        Filter::Or(a, b) => {
            let mut out = value_eqs(a)?;
            out.extend(value_eqs(b)?);
            Some(out)
        }
        _ => None,
    }
}

fn set_or_remove(obj: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    match v {
        Some(v) => {
            obj.insert(key.to_owned(), v);
        }
        None => {
            obj.remove(key);
        }
    }
}

fn clear_primary(items: &mut [Value]) {
    for i in items {
        if let Value::Object(o) = i {
            if o.get("primary") == Some(&Value::Bool(true)) {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Two values of a multi-valued attribute are the same when their `value`s are equal, or, without
/// a `value`, when they are equal as JSON.
fn same_value(item: &Value, given: &Value) -> bool {
    match (item.get("value"), given.get("value")) {
        (Some(a), Some(b)) => a == b,
        _ => item == given,
    }
}

/// Drops empty objects and lists that operations left behind.
fn tidy(container: &mut Doc, name: &str) {
    let empty = match container.get_mut(name) {
        Some(Value::Array(items)) => {
            items.retain(|i| !matches!(i, Value::Object(o) if o.is_empty()));
            items.is_empty()
        }
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        container.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::resource::normalize;
    use serde_json::json;

    #[test]
    fn large_member_changes_are_recognized() {
        let ops = |v: Value| parse(json!({"schemas": [PATCH_SCHEMA], "Operations": v})).unwrap();
        let ids = |n: usize| {
            (0..n)
                .map(|i| json!({"value": format!("u{i}")}))
                .collect::<Vec<_>>()
        };
        let small = ops(json!([{"op": "add", "path": "members", "value": ids(100)},
                               {"op": "remove", "path": "members[value eq \"u1\"]"},
                               {"op": "Replace", "path": "displayName", "value": "x"}]));
        assert!(!may_change_many_members(&small, 1000));
        let many = ops(json!([{"op": "add", "path": "members", "value": ids(1001)}]));
        assert!(may_change_many_members(&many, 1000));
        let pathless = ops(json!([{"op": "add", "value": {"members": ids(1001)}}]));
        assert!(may_change_many_members(&pathless, 1000));
        for whole in [
            json!([{"op": "replace", "path": "members", "value": []}]),
            json!([{"op": "replace", "value": {"members": []}}]),
            json!([{"op": "remove", "path": "members"}]),
            json!([{"op": "remove", "path": "members[type eq \"User\"]"}]),
        ] {
            assert!(
                may_change_many_members(&ops(whole.clone()), 1000),
                "{whole}"
            );
        }
    }

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Doc {
        normalize(
            ResourceKind::User,
            &json!({"userName": "bjensen", "active": true, "name": {"givenName": "Barbara", "familyName": "Jensen"},
                    "emails": [{"value": "b@work.example", "type": "work", "primary": true}]}),
        )
        .unwrap()
        .0
    }

    fn run(doc: &mut Doc, body: Value) -> Result<Vec<MemberChange>> {
        let kind = if doc.contains_key("userName") {
            ResourceKind::User
        } else {
            ResourceKind::Group
        };
        apply(kind, doc, &parse(body)?)
    }

    fn ops(list: Value) -> Value {
        json!({"schemas": [PATCH_SCHEMA], "Operations": list})
    }

    #[test]
    fn entra_old_form_ops_with_capital_names_and_string_booleans() {
        let mut d = user();
        run(&mut d, ops(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "nickName", "value": "Babs"},
            {"op": "Replace", "path": "displayName", "value": "Babs Jensen"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@work.example"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"},
            {"op": "Replace", "path": format!("{ENT}:manager"), "value": "mgr-1"},
        ])))
        .unwrap();
        assert_eq!(d["active"], false);
        assert_eq!(d["nickName"], "Babs");
        assert_eq!(
            d["emails"],
            json!([{"value": "new@work.example", "type": "work", "primary": true}])
        );
        assert_eq!(
            d["phoneNumbers"],
            json!([{"type": "mobile", "value": "+1 555"}])
        );
        assert_eq!(d[ENT]["manager"], json!({"value": "mgr-1"}));
    }

    #[test]
    fn entra_new_form_pathless_replace_with_path_keys() {
        let mut d = user();
        run(
            &mut d,
            ops(json!([{"op": "replace", "value": {
                "active": false,
                "name.givenName": "Barb",
                "emails[type eq \"work\"].value": "x@work.example",
                format!("{ENT}:department"): "Sales",
                ENT: {"employeeNumber": "42"},
                "id": "ignored", "unknown": 1
            }}])),
        )
        .unwrap();
        assert_eq!(d["active"], false);
        assert_eq!(
            d["name"],
            json!({"givenName": "Barb", "familyName": "Jensen"})
        );
        assert_eq!(d["emails"][0]["value"], "x@work.example");
        assert_eq!(
            d[ENT],
            json!({"department": "Sales", "employeeNumber": "42"})
        );
    }

    #[test]
    fn remove_forms() {
        let mut d = user();
        run(
            &mut d,
            ops(json!([
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "emails[type eq \"work\"]"},
            ])),
        )
        .unwrap();
        assert_eq!(d["name"], json!({"familyName": "Jensen"}));
        assert!(!d.contains_key("emails"));
        let e = run(&mut d, ops(json!([{"op": "remove", "path": "userName"}]))).unwrap_err();
        assert_eq!(e.status, 400);
        let e = run(&mut user(), ops(json!([{"op": "remove"}]))).unwrap_err();
        assert_eq!(e.scim_type, Some(crate::scim::error::ScimType::NoTarget));
    }

    #[test]
    fn errors() {
        let mut d = user();
        assert!(run(
            &mut d,
            ops(json!([{"op": "replace", "path": "id", "value": "x"}]))
        )
        .is_err());
        assert!(run(
            &mut d,
            ops(json!([{"op": "replace", "path": "nope", "value": "x"}]))
        )
        .is_err());
        assert!(run(
            &mut d,
            ops(json!([{"op": "frobnicate", "path": "title", "value": "x"}]))
        )
        .is_err());
        assert!(run(
            &mut d,
            ops(json!([{"op": "replace", "path": "active", "value": "maybe"}]))
        )
        .is_err());
        assert!(run(&mut d, ops(json!([{"op": "replace", "path": "emails[type eq \"home\" or type eq \"x\"].value", "value": "a"}]))).is_err());
        assert!(parse(json!({"Operations": "no"})).is_err());
        assert!(parse(json!({"schemas": ["urn:x"], "Operations": []})).is_err());
    }

    #[test]
    fn group_member_operations_become_changes() {
        let mut g = normalize(ResourceKind::Group, &json!({"displayName": "Sales"}))
            .unwrap()
            .0;
        let changes = apply(
            ResourceKind::Group,
            &mut g,
            &parse(ops(json!([
                {"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
                {"op": "Remove", "path": "members", "value": [{"value": "u1"}]},
                {"op": "remove", "path": "members[value eq \"u2\"]"},
                {"op": "remove", "path": "members[display eq \"x\"]"},
                {"op": "replace", "value": {"displayName": "Sales EMEA", "members": [{"value": "u3"}]}},
                {"op": "remove", "path": "members"},
            ])))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(g["displayName"], "Sales EMEA");
        assert!(matches!(&changes[0], MemberChange::Add(m) if m.len() == 2));
        assert_eq!(changes[1], MemberChange::Remove(vec!["u1".into()]));
        assert_eq!(changes[2], MemberChange::Remove(vec!["u2".into()]));
        assert!(matches!(changes[3], MemberChange::RemoveWhere(_)));
        assert!(matches!(&changes[4], MemberChange::Replace(m) if m[0].value == "u3"));
        assert_eq!(changes[5], MemberChange::RemoveAll);
    }
}
