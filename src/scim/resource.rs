//! Users and Groups as SCIM documents: input normalization ("parse, don't validate") and output
//! rendering.
//!
//! [`normalize`] turns a client's JSON into a [`Doc`]: attribute names in their canonical case,
//! values of the declared types, read-only attributes dropped, unknown attributes dropped,
//! required attributes checked. Entra's known deviations are accepted here, once: booleans sent as
//! `"True"`/`"False"`, a complex attribute sent as its bare `value` (the manager given as an id),
//! a single object where an array belongs, and extra schema URIs on create.
//!
//! A `Doc` never holds `id`, `meta`, `schemas`, a User's `groups` or a Group's `members`: those
//! are the service's (members live in their own table, see [`MemberRef`]).

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{Error, Result};
use super::schema::{find, AttrDef, AttrType, Mutability, ResourceKind, COMMON_ATTRS};

/// Most values of one multi-valued User attribute (emails, phoneNumbers, ...).
pub const MAX_VALUES: usize = 1000;
/// Most group members one request may name.
pub const MAX_MEMBERS: usize = 100_000;

/// A normalized resource body (see the module doc for what it never holds).
pub type Doc = Map<String, Value>;

/// One member of a Group, as sent by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub value: String,
    pub display: Option<String>,
    pub kind: Option<String>,
}

/// Normalizes a whole resource body (POST or PUT). Group members come back separately.
pub fn normalize(kind: ResourceKind, input: &Value) -> Result<(Doc, Vec<MemberRef>)> {
    let obj = input
        .as_object()
        .ok_or_else(|| Error::invalid_syntax("the request body must be a JSON object"))?;
    if let Some(schemas) = obj.get("schemas") {
        let list = schemas
            .as_array()
            .filter(|a| a.iter().all(Value::is_string))
            .ok_or_else(|| Error::invalid_syntax("\"schemas\" must be an array of URIs"))?;
        if !list.is_empty()
            && !list.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(kind.core_schema()))
            })
        {
            return Err(Error::invalid_value(format!(
                "\"schemas\" must include {}",
                kind.core_schema()
            )));
        }
    }
    let mut doc = Doc::new();
    let mut members = Vec::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some((urn, attrs)) = kind.extension(key) {
            let ext = normalize_complex(attrs, value, urn)?;
            if !ext.is_empty() {
                doc.insert(urn.to_owned(), Value::Object(ext));
            }
            continue;
        }
        if kind == ResourceKind::Group && key.eq_ignore_ascii_case("members") {
            members = members_from(value)?;
            continue;
        }
        let Some(def) = find(kind.core_attrs(), key).or_else(|| find(COMMON_ATTRS, key)) else {
            continue; // unknown attributes and foreign schema URIs are ignored
        };
        if def.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = normalize_attr(def, value, def.name)? {
            doc.insert(def.name.to_owned(), v);
        }
    }
    check_required(kind, &doc)?;
    Ok((doc, members))
}

/// Checks the required attributes of a finished document.
pub fn check_required(kind: ResourceKind, doc: &Doc) -> Result<()> {
    for def in kind.core_attrs().iter().filter(|d| d.required) {
        match doc.get(def.name) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(Value::String(_)) | None => {
                return Err(Error::invalid_value(format!(
                    "\"{}\" is required",
                    def.name
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Normalizes the value of one attribute. `Ok(None)` means unassigned (null, or empty).
pub fn normalize_attr(def: &AttrDef, value: &Value, at: &str) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if def.multi {
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        if items.len() > MAX_VALUES {
            return Err(Error::too_many(format!(
                "\"{at}\" has {} values; at most {MAX_VALUES}",
                items.len()
            )));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = normalize_value(def, item, at)? {
                out.push(v);
            }
        }
        fix_primary(&mut out);
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    if let Value::Array(a) = value {
        // A one-element list where a single value belongs (seen from several clients).
        if a.len() == 1 {
            return normalize_value(def, &a[0], at);
        }
        return Err(Error::invalid_value(format!(
            "\"{at}\" is single-valued, got a list"
        )));
    }
    normalize_value(def, value, at)
}

/// At most one value of a multi-valued attribute may be primary: the first one wins.
fn fix_primary(values: &mut [Value]) {
    let mut seen = false;
    for v in values.iter_mut() {
        if let Some(o) = v.as_object_mut() {
            if o.get("primary") == Some(&Value::Bool(true)) {
                if seen {
                    o.insert("primary".into(), Value::Bool(false));
                }
                seen = true;
            }
        }
    }
}

pub fn normalize_value(def: &AttrDef, value: &Value, at: &str) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    let wrong = |want: &str| {
        Error::invalid_value(format!("\"{at}\" must be {want}, got {}", json_kind(value)))
    };
    Ok(Some(match def.ty {
        AttrType::Complex => {
            let obj = match value {
                Value::Object(_) => normalize_complex(def.sub, value, at)?,
                // The bare value of a complex attribute (Entra's manager as an id).
                Value::String(_) | Value::Number(_) | Value::Bool(_)
                    if !def.multi && def.sub_attr("value").is_some() =>
                {
                    normalize_complex(def.sub, &serde_json::json!({ "value": value }), at)?
                }
                _ => return Err(wrong("an object")),
            };
            if obj.is_empty() {
                return Ok(None);
            }
            Value::Object(obj)
        }
        AttrType::Boolean => match value {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
            _ => return Err(wrong("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => value.clone(),
            _ => return Err(wrong("a number")),
        },
        AttrType::DateTime => match value {
            Value::String(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => value.clone(),
            _ => return Err(wrong("an RFC 3339 dateTime")),
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(_) => value.clone(),
            _ => return Err(wrong("a string")),
        },
    }))
}

fn normalize_complex(subs: &'static [AttrDef], value: &Value, at: &str) -> Result<Doc> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::invalid_value(format!("\"{at}\" must be an object")))?;
    let mut out = Doc::new();
    for (k, v) in obj {
        let Some(sub) = find(subs, k) else { continue };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = normalize_attr(sub, v, &format!("{at}.{}", sub.name))? {
            out.insert(sub.name.to_owned(), v);
        }
    }
    Ok(out)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads a `members` value: a list of `{"value", "display", "type"}` (a single object is accepted).
pub fn members_from(value: &Value) -> Result<Vec<MemberRef>> {
    let items: Vec<&Value> = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    if items.len() > MAX_MEMBERS {
        return Err(Error::too_many(format!(
            "{} members in one request; at most {MAX_MEMBERS}",
            items.len()
        )));
    }
    items.into_iter().map(member_from).collect()
}

fn member_from(item: &Value) -> Result<MemberRef> {
    let text = |k: &str| -> Result<Option<String>> {
        match super::eval::get_ci(item, k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid_value(format!(
                "members.{k} must be a string"
            ))),
        }
    };
    if !item.is_object() {
        return Err(Error::invalid_value(
            "each member must be an object with a \"value\"",
        ));
    }
    let value = text("value")?
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::invalid_value("each member needs a non-empty \"value\""))?;
    check_indexed("members.value", &value)?;
    let kind = match text("type")? {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("user") => Some("User".to_owned()),
        Some(t) if t.eq_ignore_ascii_case("group") => Some("Group".to_owned()),
        Some(t) => {
            return Err(Error::invalid_value(format!(
                "members.type {t:?} is not User or Group"
            )))
        }
    };
    Ok(MemberRef {
        value,
        display: text("display")?,
        kind,
    })
}

/// The most characters the value of an indexed attribute may have (`userName`, `externalId`,
/// `displayName`, `emails.value`, a member's `value`): far above what identity providers send
/// (Entra's userPrincipalName is at most 113), and within what one database index entry holds
/// on every engine (PostgreSQL's B-tree takes about 2,700 bytes; 512 characters are at most
/// 2,048 bytes of UTF-8). A longer value is refused as invalid, never half-stored.
pub const MAX_INDEXED_CHARS: usize = 512;

/// Refuses a value of indexed attribute `attr` longer than [`MAX_INDEXED_CHARS`].
pub fn check_indexed(attr: &str, value: &str) -> Result<()> {
    // (A cheap bound first: a string of at most that many bytes has at most that many chars.)
    if value.len() > MAX_INDEXED_CHARS && value.chars().count() > MAX_INDEXED_CHARS {
        return Err(Error::invalid_value(format!(
            "\"{attr}\" is longer than {MAX_INDEXED_CHARS} characters"
        )));
    }
    Ok(())
}

/// Refuses a Group whose indexed values are too long (see [`check_indexed`]).
pub fn check_group_fields(display: &str, external_id: Option<&str>) -> Result<()> {
    check_indexed("displayName", display)?;
    external_id.map_or(Ok(()), |e| check_indexed("externalId", e))
}

/// The indexed columns of a User, read off its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    /// Email values, lowercased (emails are case-insensitive).
    pub emails: Vec<String>,
}

impl UserFields {
    /// Refuses a User whose indexed values are too long (see [`check_indexed`]).
    pub fn check(&self) -> Result<()> {
        check_indexed("userName", &self.user_name)?;
        if let Some(e) = &self.external_id {
            check_indexed("externalId", e)?;
        }
        if let Some(d) = &self.display_name {
            check_indexed("displayName", d)?;
        }
        self.emails
            .iter()
            .try_for_each(|e| check_indexed("emails.value", e))
    }
}

pub fn user_fields(doc: &Doc) -> UserFields {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut emails: Vec<String> = doc
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("value").and_then(Value::as_str))
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    emails.sort();
    emails.dedup();
    UserFields {
        user_name: s("userName").unwrap_or_default(),
        external_id: s("externalId"),
        display_name: s("displayName"),
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        emails,
    }
}

/// The indexed columns of a Group.
pub fn group_fields(doc: &Doc) -> (String, Option<String>) {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    (s("displayName").unwrap_or_default(), s("externalId"))
}

/// The case-insensitive key under which userName and displayName are indexed and compared.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Resource metadata kept by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub created: String,
    pub last_modified: String,
    pub version: i64,
}

impl Meta {
    /// The weak entity tag of this version.
    pub fn etag(&self) -> String {
        super::etag::of(self.version)
    }
}

/// A user's `groups` entry (RFC 7643 §4.1.2): the group's id, its `$ref` under `base`, its
/// display name, and `direct` (memberships through nested groups are not listed).
pub fn group_ref(base: &str, id: &str, display: &str) -> Value {
    json!({"value": id, "$ref": format!("{base}/Groups/{id}"), "display": display, "type": "direct"})
}

/// A group's `members` entry: the member's id, its `$ref` (a `Group` or, by default, a
/// `User`), its type, and its display name when known.
pub fn member_ref(base: &str, value: &str, kind: Option<&str>, display: Option<&str>) -> Value {
    let kind = kind.unwrap_or("User");
    let endpoint = if kind == "Group" { "Groups" } else { "Users" };
    let mut v = json!({"value": value, "$ref": format!("{base}/{endpoint}/{value}"), "type": kind});
    if let Some(d) = display {
        v["display"] = Value::String(d.to_owned());
    }
    v
}

/// Renders a stored resource as its SCIM representation. `extra` holds the service-computed
/// multi-valued attribute (`groups` of a User, `members` of a Group), when there is one.
pub fn render(
    kind: ResourceKind,
    id: &str,
    doc: Doc,
    meta: &Meta,
    base: &str,
    extra: Option<Vec<Value>>,
) -> Value {
    let mut out = Map::with_capacity(doc.len() + 4);
    let mut schemas = vec![Value::String(kind.core_schema().to_owned())];
    for (urn, _) in kind.extensions() {
        if doc.contains_key(*urn) {
            schemas.push(Value::String((*urn).to_owned()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_owned()));
    out.extend(doc);
    if let Some(list) = extra.filter(|l| !l.is_empty()) {
        let key = if kind == ResourceKind::User {
            "groups"
        } else {
            "members"
        };
        out.insert(key.into(), Value::Array(list));
    }
    out.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": kind.name(),
            "created": meta.created,
            "lastModified": meta.last_modified,
            "location": format!("{base}/{}/{id}", kind.endpoint()),
            "version": meta.etag(),
        }),
    );
    Value::Object(out)
}

/// A User's representation as [`render`] makes it and an empty [`Projection`] leaves it, written
/// straight to the serializer with no `Value` tree in between: a list page or a create answers
/// this way unless the client asked for `attributes` or `excludedAttributes`. Building and then
/// dropping the tree (its keys, strings and `$ref`s) was a sixth of the daemon's CPU on a
/// `userName eq` filter (measured with `perf`); the test `written_user_equals_rendered_user`
/// holds the two to the same bytes.
///
/// [`Projection`]: super::projection::Projection
pub struct WrittenUser<'a> {
    pub id: &'a str,
    pub doc: &'a Doc,
    pub meta: &'a Meta,
    pub base: &'a str,
    /// The user's groups: id and display name, in the order to list them.
    pub groups: Vec<(&'a str, &'a str)>,
}

impl serde::Serialize for WrittenUser<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const KIND: ResourceKind = ResourceKind::User;
        let mut schemas = vec![KIND.core_schema()];
        schemas.extend(
            KIND.extensions()
                .iter()
                .map(|(urn, _)| *urn)
                .filter(|urn| self.doc.contains_key(*urn)),
        );
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("schemas", &schemas)?;
        m.serialize_entry("id", self.id)?;
        for (key, value) in self.doc {
            // An empty extension object is left out, as a projection leaves it out.
            let empty = matches!(value, Value::Object(o) if o.is_empty());
            if !(empty && KIND.extension(key).is_some()) {
                m.serialize_entry(key, value)?;
            }
        }
        if !self.groups.is_empty() {
            let refs: Vec<WrittenGroupRef> = self
                .groups
                .iter()
                .map(|&(id, display)| WrittenGroupRef {
                    base: self.base,
                    id,
                    display,
                })
                .collect();
            m.serialize_entry("groups", &refs)?;
        }
        m.serialize_entry(
            "meta",
            &WrittenMeta {
                kind: KIND,
                id: self.id,
                meta: self.meta,
                base: self.base,
            },
        )?;
        m.end()
    }
}

/// [`group_ref`], written.
struct WrittenGroupRef<'a> {
    base: &'a str,
    id: &'a str,
    display: &'a str,
}

impl serde::Serialize for WrittenGroupRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("value", self.id)?;
        m.serialize_entry(
            "$ref",
            &Joined(format_args!("{}/Groups/{}", self.base, self.id)),
        )?;
        m.serialize_entry("display", self.display)?;
        m.serialize_entry("type", "direct")?;
        m.end()
    }
}

/// [`render`]'s `meta`, written.
struct WrittenMeta<'a> {
    kind: ResourceKind,
    id: &'a str,
    meta: &'a Meta,
    base: &'a str,
}

impl serde::Serialize for WrittenMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("resourceType", self.kind.name())?;
        m.serialize_entry("created", &self.meta.created)?;
        m.serialize_entry("lastModified", &self.meta.last_modified)?;
        m.serialize_entry(
            "location",
            &Joined(format_args!(
                "{}/{}/{}",
                self.base,
                self.kind.endpoint(),
                self.id
            )),
        )?;
        m.serialize_entry("version", &self.meta.etag())?;
        m.end()
    }
}

/// A string written from its parts, never allocated.
struct Joined<'a>(std::fmt::Arguments<'a>);

impl serde::Serialize for Joined<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_user_equals_rendered_user() {
        let enterprise = ResourceKind::User.extensions()[0].0;
        let meta = Meta {
            created: "2026-11-30T10:00:00.000Z".into(),
            last_modified: "2026-11-30T11:00:00.000Z".into(),
            version: 7,
        };
        let docs = [
            json!({"userName": "a@b.example"}),
            json!({"userName": "Zoë \"Q\" <x>", "active": true, "displayName": "Zoë",
                "name": {"givenName": "Zoë", "familyName": "Ñ"},
                "emails": [{"value": "z@b.example", "type": "work", "primary": true}],
                "title": "line\nbreak", enterprise: {"department": "R&D", "manager": {"value": "m1"}}}),
            json!({"userName": "u", enterprise: {}}),
        ];
        let groups = [
            vec![],
            vec![("g1".to_owned(), "Staff".to_owned())],
            vec![
                ("g2".to_owned(), "A \"b\"".to_owned()),
                ("g3".to_owned(), String::new()),
            ],
        ];
        let base = "https://h.example/scim/v2";
        for doc in &docs {
            let doc = doc.as_object().unwrap().clone();
            for g in &groups {
                let refs = g.iter().map(|(id, d)| group_ref(base, id, d)).collect();
                let mut rendered = render(
                    ResourceKind::User,
                    "u-1",
                    doc.clone(),
                    &meta,
                    base,
                    Some(refs),
                );
                super::super::projection::Projection::default()
                    .apply(ResourceKind::User, &mut rendered);
                let written = WrittenUser {
                    id: "u-1",
                    doc: &doc,
                    meta: &meta,
                    base,
                    groups: g.iter().map(|(id, d)| (id.as_str(), d.as_str())).collect(),
                };
                let text = serde_json::to_string(&written).unwrap();
                assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), rendered);
                // Byte for byte too, but where the projection removed an empty extension:
                // its removal moves the last key (`meta`) into the extension's place.
                if doc.get(enterprise) != Some(&json!({})) {
                    assert_eq!(text, serde_json::to_string(&rendered).unwrap());
                }
            }
        }
    }

    #[test]
    fn indexed_values_are_counted_in_characters() {
        let wide = "\u{1F600}".repeat(MAX_INDEXED_CHARS);
        assert!(check_indexed("userName", &wide).is_ok());
        let err = check_indexed("userName", &format!("{wide}x")).unwrap_err();
        assert_eq!(
            (err.status, err.scim_type),
            (400, Some(super::super::error::ScimType::InvalidValue))
        );
        assert!(member_from(&json!({"value": "v".repeat(MAX_INDEXED_CHARS + 1)})).is_err());
    }

    #[test]
    fn references_name_their_endpoint_and_type() {
        let b = "https://h/scim/v2";
        assert_eq!(
            group_ref(b, "g1", "Designers"),
            serde_json::json!({"value": "g1", "$ref": "https://h/scim/v2/Groups/g1", "display": "Designers", "type": "direct"})
        );
        assert_eq!(
            member_ref(b, "u1", None, None),
            serde_json::json!({"value": "u1", "$ref": "https://h/scim/v2/Users/u1", "type": "User"})
        );
        let nested = member_ref(b, "g2", Some("Group"), Some("Team"));
        assert_eq!(nested["$ref"], "https://h/scim/v2/Groups/g2");
        assert_eq!(nested["display"], "Team");
    }

    #[test]
    fn normalizes_case_types_and_entra_forms() {
        let (doc, _) = normalize(
            ResourceKind::User,
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "USERNAME": "Test_User@contoso.com",
                "active": "False",
                "id": "client-chosen",
                "meta": {"resourceType": "User"},
                "emails": {"value": "a@b.c", "type": "work", "primary": "true"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "Department": "Sales", "manager": "mgr-id"
                },
                "unknownThing": 1
            }),
        )
        .unwrap();
        assert_eq!(doc["userName"], "Test_User@contoso.com");
        assert_eq!(doc["active"], false);
        assert!(
            !doc.contains_key("id")
                && !doc.contains_key("meta")
                && !doc.contains_key("unknownThing")
        );
        assert_eq!(
            doc["emails"],
            json!([{"value": "a@b.c", "type": "work", "primary": true}])
        );
        let ext = &doc["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert_eq!(
            ext,
            &json!({"department": "Sales", "manager": {"value": "mgr-id"}})
        );
    }

    #[test]
    fn rejects_wrong_types_and_missing_required() {
        let e = normalize(
            ResourceKind::User,
            &json!({"userName": "a", "active": "yes"}),
        )
        .unwrap_err();
        assert_eq!(
            e.scim_type,
            Some(super::super::error::ScimType::InvalidValue)
        );
        assert!(normalize(ResourceKind::User, &json!({"displayName": "x"})).is_err());
        assert!(normalize(ResourceKind::User, &json!({"userName": "  "})).is_err());
        assert!(normalize(ResourceKind::User, &json!({"userName": 5})).is_err());
        assert!(normalize(ResourceKind::User, &json!([1])).is_err());
        assert!(normalize(
            ResourceKind::User,
            &json!({"schemas": ["urn:x"], "userName": "a"})
        )
        .is_err());
    }

    #[test]
    fn group_members_are_split_off_and_foreign_schemas_ignored() {
        let (doc, members) = normalize(
            ResourceKind::Group,
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "displayName": "Sales", "externalId": "e1",
                "members": [{"value": "u1", "display": "U One"}, {"value": "g2", "type": "Group"}]
            }),
        )
        .unwrap();
        assert_eq!(doc.get("members"), None);
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].kind.as_deref(), Some("Group"));
        assert!(normalize(
            ResourceKind::Group,
            &json!({"displayName": "x", "members": [{"display": "no value"}]})
        )
        .is_err());
    }
}
