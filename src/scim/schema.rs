//! The SCIM schemas seatkeeper serves (RFC 7643 §4, §8.7): core User, core Group and the
//! enterprise User extension, as static data.
//!
//! These tables drive everything schema-dependent: input normalization (types, mutability,
//! canonical attribute names), case-exactness in filters, `returned` in projections, and the
//! `/Schemas` and `/ResourceTypes` discovery documents. What is declared here is exactly what is
//! stored and served.

use serde_json::{json, Map, Value};

use super::path::{AttrPath, CORE_GROUP, CORE_USER, ENTERPRISE_USER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Reference,
    Complex,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Copy)]
pub struct AttrDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical: &'static [&'static str],
    pub ref_types: &'static [&'static str],
    pub sub: &'static [AttrDef],
    pub description: &'static str,
}

const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> AttrDef {
    AttrDef {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical: &[],
        ref_types: &[],
        sub: &[],
        description,
    }
}
const fn string(name: &'static str, d: &'static str) -> AttrDef {
    attr(name, AttrType::String, d)
}
const fn complex(name: &'static str, sub: &'static [AttrDef], d: &'static str) -> AttrDef {
    let mut a = attr(name, AttrType::Complex, d);
    a.sub = sub;
    a
}
const fn multi(name: &'static str, sub: &'static [AttrDef], d: &'static str) -> AttrDef {
    let mut a = complex(name, sub, d);
    a.multi = true;
    a
}
const fn reference(name: &'static str, types: &'static [&'static str], d: &'static str) -> AttrDef {
    let mut a = attr(name, AttrType::Reference, d);
    a.ref_types = types;
    a
}

impl AttrDef {
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    const fn always(mut self) -> Self {
        self.returned = Returned::Always;
        self
    }
    const fn server_unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical = values;
        self
    }

    /// Looks a sub-attribute up by name, case-insensitively.
    pub fn sub_attr(&self, name: &str) -> Option<&'static AttrDef> {
        find(self.sub, name)
    }
}

/// Case-insensitive lookup in a list of attribute definitions.
pub fn find(attrs: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

const TYPE_WORK_HOME_OTHER: &[&str] = &["work", "home", "other"];

/// The usual sub-attributes of a multi-valued attribute (value, display, type, primary).
macro_rules! mv_subs {
    ($types:expr) => {
        &[
            string("value", "The attribute's significant value."),
            string(
                "display",
                "A human-readable name, primarily used for display purposes.",
            ),
            string("type", "A label indicating the attribute's function.").canonical($types),
            attr(
                "primary",
                AttrType::Boolean,
                "Indicates the primary or preferred value.",
            ),
        ]
    };
}

const NAME_SUBS: &[AttrDef] = &[
    string("formatted", "The full name, formatted for display."),
    string("familyName", "The family name of the User."),
    string("givenName", "The given name of the User."),
    string("middleName", "The middle name(s) of the User."),
    string("honorificPrefix", "The honorific prefix(es) of the User."),
    string("honorificSuffix", "The honorific suffix(es) of the User."),
];

const ADDRESS_SUBS: &[AttrDef] = &[
    string("formatted", "The full mailing address."),
    string("streetAddress", "The full street address component."),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string("country", "The country name component."),
    string("type", "A label indicating the attribute's function.").canonical(TYPE_WORK_HOME_OTHER),
    attr(
        "primary",
        AttrType::Boolean,
        "Indicates the primary address.",
    ),
];

const GROUP_REF_SUBS: &[AttrDef] = &[
    string("value", "The identifier of the User's group.").read_only(),
    reference("$ref", &["User", "Group"], "The URI of the group.").read_only(),
    string("display", "A human-readable name of the group.").read_only(),
    string("type", "Direct or indirect membership.")
        .canonical(&["direct", "indirect"])
        .read_only(),
];

pub const USER_ATTRS: &[AttrDef] = &[
    string(
        "userName",
        "Unique identifier for the User, case-insensitive.",
    )
    .required()
    .server_unique(),
    complex("name", NAME_SUBS, "The components of the user's real name."),
    string("displayName", "The name of the User, suitable for display."),
    string("nickName", "The casual way to address the user."),
    reference(
        "profileUrl",
        &["external"],
        "A URI of the User's online profile.",
    ),
    string("title", "The user's title."),
    string(
        "userType",
        "The relationship between the organization and the user.",
    ),
    string(
        "preferredLanguage",
        "The User's preferred written or spoken language.",
    ),
    string("locale", "The User's default location."),
    string("timezone", "The User's time zone in the 'Olson' format."),
    attr(
        "active",
        AttrType::Boolean,
        "The User's administrative status.",
    ),
    multi(
        "emails",
        mv_subs!(TYPE_WORK_HOME_OTHER),
        "Email addresses for the user.",
    ),
    multi(
        "phoneNumbers",
        mv_subs!(&["work", "home", "mobile", "fax", "pager", "other"]),
        "Phone numbers for the User.",
    ),
    multi(
        "ims",
        mv_subs!(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
        "Instant messaging addresses for the User.",
    ),
    multi(
        "photos",
        mv_subs!(&["photo", "thumbnail"]),
        "URLs of photos of the User.",
    ),
    multi(
        "addresses",
        ADDRESS_SUBS,
        "A physical mailing address for this User.",
    ),
    multi(
        "groups",
        GROUP_REF_SUBS,
        "A list of groups to which the user belongs.",
    )
    .read_only(),
    multi(
        "entitlements",
        mv_subs!(&[]),
        "A list of entitlements for the User.",
    ),
    multi("roles", mv_subs!(&[]), "A list of roles for the User."),
    multi(
        "x509Certificates",
        mv_subs!(&[]),
        "A list of certificates issued to the User.",
    ),
];

const MEMBER_SUBS: &[AttrDef] = &[
    string("value", "Identifier of the member of this Group.").immutable(),
    reference("$ref", &["User", "Group"], "The URI of the member.").immutable(),
    string("display", "A human-readable name of the member."),
    string("type", "The type of the member.")
        .canonical(&["User", "Group"])
        .immutable(),
];

pub const GROUP_ATTRS: &[AttrDef] = &[
    string("displayName", "A human-readable name for the Group.").required(),
    multi("members", MEMBER_SUBS, "A list of members of the Group."),
];

const MANAGER_SUBS: &[AttrDef] = &[
    string(
        "value",
        "The id of the SCIM resource representing the User's manager.",
    ),
    reference(
        "$ref",
        &["User"],
        "The URI of the SCIM resource representing the User's manager.",
    ),
    string("displayName", "The displayName of the User's manager.").read_only(),
];

pub const ENTERPRISE_ATTRS: &[AttrDef] = &[
    string(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person.",
    ),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    complex("manager", MANAGER_SUBS, "The User's manager."),
];

/// Attributes every resource has (RFC 7643 §3.1), handled by the service itself.
pub const COMMON_ATTRS: &[AttrDef] = &[
    string(
        "id",
        "Unique identifier for the resource, assigned by the service provider.",
    )
    .case_exact()
    .read_only()
    .always()
    .server_unique(),
    string(
        "externalId",
        "Identifier of the resource as defined by the provisioning client.",
    )
    .case_exact(),
    complex("meta", META_SUBS, "Resource metadata.").read_only(),
];

const META_SUBS: &[AttrDef] = &[
    string(
        "resourceType",
        "The name of the resource type of the resource.",
    )
    .case_exact()
    .read_only(),
    attr(
        "created",
        AttrType::DateTime,
        "When the resource was added.",
    )
    .read_only(),
    attr(
        "lastModified",
        AttrType::DateTime,
        "When the resource was last updated.",
    )
    .read_only(),
    reference("location", &["uri"], "The URI of the resource.").read_only(),
    string("version", "The version (ETag) of the resource.")
        .case_exact()
        .read_only(),
];

/// The two resource types seatkeeper serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }
    pub fn core_schema(self) -> &'static str {
        match self {
            ResourceKind::User => CORE_USER,
            ResourceKind::Group => CORE_GROUP,
        }
    }
    pub fn core_attrs(self) -> &'static [AttrDef] {
        match self {
            ResourceKind::User => USER_ATTRS,
            ResourceKind::Group => GROUP_ATTRS,
        }
    }
    /// Extension schemas this resource type accepts: (urn, attributes).
    pub fn extensions(self) -> &'static [(&'static str, &'static [AttrDef])] {
        match self {
            ResourceKind::User => &[(ENTERPRISE_USER, ENTERPRISE_ATTRS)],
            ResourceKind::Group => &[],
        }
    }
    /// The attribute list and canonical schema URN of an extension, matched case-insensitively.
    pub fn extension(self, urn: &str) -> Option<(&'static str, &'static [AttrDef])> {
        self.extensions()
            .iter()
            .copied()
            .find(|(u, _)| u.eq_ignore_ascii_case(urn))
    }

    /// Resolves a path to its definition: (extension urn if any, the attribute).
    /// Common attributes (`id`, `externalId`, `meta`) resolve too.
    pub fn resolve(self, path: &AttrPath) -> Option<(Option<&'static str>, &'static AttrDef)> {
        match path.urn.as_deref() {
            Some(urn) if !urn.eq_ignore_ascii_case(self.core_schema()) => {
                let (u, attrs) = self.extension(urn)?;
                Some((Some(u), find(attrs, &path.name)?))
            }
            _ => find(self.core_attrs(), &path.name)
                .or_else(|| find(COMMON_ATTRS, &path.name))
                .map(|a| (None, a)),
        }
    }

    /// The definition a (possibly sub-attribute) path ends at.
    pub fn leaf(self, path: &AttrPath) -> Option<&'static AttrDef> {
        let (_, def) = self.resolve(path)?;
        match &path.sub {
            Some(s) => def.sub_attr(s),
            None => Some(def),
        }
    }
}

fn attr_json(a: &AttrDef) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(a.name));
    o.insert(
        "type".into(),
        json!(match a.ty {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
            AttrType::Binary => "binary",
        }),
    );
    o.insert("multiValued".into(), json!(a.multi));
    o.insert("description".into(), json!(a.description));
    o.insert("required".into(), json!(a.required));
    if a.ty != AttrType::Complex && a.ty != AttrType::Boolean {
        o.insert("caseExact".into(), json!(a.case_exact));
    }
    if !a.canonical.is_empty() {
        o.insert("canonicalValues".into(), json!(a.canonical));
    }
    if !a.ref_types.is_empty() {
        o.insert("referenceTypes".into(), json!(a.ref_types));
    }
    o.insert(
        "mutability".into(),
        json!(match a.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }),
    );
    o.insert(
        "returned".into(),
        json!(match a.returned {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }),
    );
    if a.ty != AttrType::Complex && a.ty != AttrType::Boolean {
        o.insert(
            "uniqueness".into(),
            json!(match a.uniqueness {
                Uniqueness::None => "none",
                Uniqueness::Server => "server",
            }),
        );
    }
    if !a.sub.is_empty() {
        o.insert(
            "subAttributes".into(),
            Value::Array(a.sub.iter().map(attr_json).collect()),
        );
    }
    Value::Object(o)
}

/// (urn, name, description, attributes) of every schema served.
pub const SCHEMAS: &[(&str, &str, &str, &[AttrDef])] = &[
    (CORE_USER, "User", "User Account", USER_ATTRS),
    (CORE_GROUP, "Group", "Group", GROUP_ATTRS),
    (
        ENTERPRISE_USER,
        "EnterpriseUser",
        "Enterprise User",
        ENTERPRISE_ATTRS,
    ),
];

/// The `/Schemas/{id}` document of one schema; `base` is the SCIM base URL.
pub fn schema_json(urn: &str, base: &str) -> Option<Value> {
    let (id, name, description, attrs) = SCHEMAS.iter().find(|(u, ..)| *u == urn)?;
    Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    }))
}

/// The `/ResourceTypes/{name}` document of one resource type.
pub fn resource_type_json(kind: ResourceKind, base: &str) -> Value {
    let extensions: Vec<Value> = kind
        .extensions()
        .iter()
        .map(|(urn, _)| json!({"schema": urn, "required": false}))
        .collect();
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": format!("/{}", kind.endpoint()),
        "description": kind.name(),
        "schema": kind.core_schema(),
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{}", kind.name()),
        },
    });
    if !extensions.is_empty() {
        v["schemaExtensions"] = Value::Array(extensions);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_case_insensitively() {
        let k = ResourceKind::User;
        assert_eq!(
            k.leaf(&AttrPath::parse("USERNAME").unwrap()).unwrap().name,
            "userName"
        );
        assert_eq!(
            k.leaf(&AttrPath::parse("emails.VALUE").unwrap())
                .unwrap()
                .name,
            "value"
        );
        let dept = AttrPath::parse(&format!("{ENTERPRISE_USER}:department")).unwrap();
        assert_eq!(k.resolve(&dept).unwrap().0, Some(ENTERPRISE_USER));
        assert!(k.leaf(&AttrPath::parse("nope").unwrap()).is_none());
        assert_eq!(
            k.leaf(&AttrPath::parse("id").unwrap()).unwrap().mutability,
            Mutability::ReadOnly
        );
    }

    #[test]
    fn schema_documents_list_every_attribute() {
        let v = schema_json(CORE_USER, "http://x/scim/v2").unwrap();
        assert_eq!(v["attributes"].as_array().unwrap().len(), USER_ATTRS.len());
        assert!(schema_json("urn:nope", "").is_none());
    }
}
