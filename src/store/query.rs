//! Listing with SCIM filters: the part of a filter on indexed columns becomes SQL; anything else
//! is evaluated in memory over the tenant's resources (the full grammar is always answered, the
//! indexed part never scans).
//!
//! Indexed: `id`, `externalId`, `userName`, `displayName` and `active` (eq), `emails.value` (eq)
//! for Users; `id`, `externalId`, `displayName` and `members.value` (eq) for Groups; and `and`,
//! `or`, `not` over those. Results come in creation order (stable across pages).

use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection};
use serde_json::Value;

use super::users::{groups_of, parse_doc, row, COLS};
use super::{Result, TenantKey};
use crate::scim::eval::{self, Scope};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::resource::{fold, render, Meta};
use crate::scim::schema::ResourceKind;

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based index of the first result.
    pub start_index: i64,
    /// Most results to return; 0 returns only the total.
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub total: i64,
    pub items: Vec<T>,
}

type RawRow = (i64, String, String, Meta);

fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

/// The SQL condition for a filter over indexed columns, or `None` when some part is not indexed.
fn to_sql(kind: ResourceKind, f: &Filter, args: &mut Vec<Sql>) -> Option<String> {
    match f {
        Filter::And(a, b) => Some(format!(
            "({} AND {})",
            to_sql(kind, a, args)?,
            to_sql(kind, b, args)?
        )),
        Filter::Or(a, b) => Some(format!(
            "({} OR {})",
            to_sql(kind, a, args)?,
            to_sql(kind, b, args)?
        )),
        Filter::Not(x) => Some(format!("(NOT {})", to_sql(kind, x, args)?)),
        Filter::Compare(path, CompareOp::Eq, value) => compare_eq(kind, path, value, args),
        Filter::ValuePath(path, inner) if path.sub.is_none() => match &**inner {
            Filter::Compare(p, CompareOp::Eq, v)
                if p.name.eq_ignore_ascii_case("value") && p.sub.is_none() =>
            {
                let full = AttrPath {
                    urn: path.urn.clone(),
                    name: path.name.clone(),
                    sub: Some("value".into()),
                };
                compare_eq(kind, &full, v, args)
            }
            _ => None,
        },
        _ => None,
    }
}

fn compare_eq(
    kind: ResourceKind,
    path: &AttrPath,
    value: &CompValue,
    args: &mut Vec<Sql>,
) -> Option<String> {
    if path
        .urn
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(kind.core_schema()))
    {
        return None;
    }
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
    let text = match value {
        CompValue::String(s) => Some(s.clone()),
        _ => None,
    };
    let (cond, arg) = match (kind, name.as_str(), sub.as_deref(), text) {
        (_, "id", None, Some(s)) => ("id = ?", Sql::Text(s)),
        (_, "externalid", None, Some(s)) => ("external_id = ?", Sql::Text(s)),
        (ResourceKind::User, "username", None, Some(s)) => ("user_name_key = ?", Sql::Text(fold(&s))),
        (ResourceKind::User, "displayname", None, Some(s)) => ("display_name_key = ?", Sql::Text(fold(&s))),
        (ResourceKind::Group, "displayname", None, Some(s)) => ("display_name_key = ?", Sql::Text(fold(&s))),
        (ResourceKind::User, "emails", None | Some("value"), Some(s)) => (
            "EXISTS (SELECT 1 FROM user_emails e WHERE e.user_rk = r.rk AND e.tenant = r.tenant AND e.value_key = ?)",
            Sql::Text(fold(&s)),
        ),
        (ResourceKind::Group, "members", None | Some("value"), Some(s)) => (
            "EXISTS (SELECT 1 FROM group_members m WHERE m.group_rk = r.rk AND m.member_id = ?)",
            Sql::Text(s),
        ),
        (ResourceKind::User, "active", None, None) => match value {
            CompValue::Bool(b) => ("active = ?", Sql::Integer(i64::from(*b))),
            _ => return None,
        },
        _ => return None,
    };
    args.push(arg);
    Some(cond.to_owned())
}

/// True when the filter reads the attribute `name` (so the in-memory view must include it).
fn mentions(f: &Filter, name: &str) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => mentions(a, name) || mentions(b, name),
        Filter::Not(x) => mentions(x, name),
        Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => {
            p.name.eq_ignore_ascii_case(name)
        }
    }
}

pub(super) fn list(
    c: &Connection,
    tenant: TenantKey,
    kind: ResourceKind,
    q: &ListQuery,
) -> Result<Page<RawRow>> {
    let t = table(kind);
    let mut args = vec![Sql::Integer(tenant)];
    let cond = match &q.filter {
        None => Some("1".to_owned()),
        Some(f) => to_sql(kind, f, &mut args),
    };
    let offset = (q.start_index.max(1) - 1).max(0);
    if let Some(cond) = cond {
        let total: i64 = c
            .prepare_cached(&format!(
                "SELECT count(*) FROM {t} r WHERE r.tenant = ? AND {cond}"
            ))?
            .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
        if q.count == 0 {
            return Ok(Page {
                total,
                items: Vec::new(),
            });
        }
        args.push(Sql::Integer(q.count));
        args.push(Sql::Integer(offset));
        let mut st = c.prepare_cached(&format!(
            "SELECT {COLS} FROM {t} r WHERE r.tenant = ? AND {cond} ORDER BY r.rk LIMIT ? OFFSET ?"
        ))?;
        let items = st
            .query_map(params_from_iter(args.iter()), row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        return Ok(Page { total, items });
    }
    // Not indexed: evaluate over the tenant's resources in creation order.
    let Some(filter) = &q.filter else {
        unreachable!("no filter is always indexed")
    };
    let extra = match kind {
        ResourceKind::User => mentions(filter, "groups"),
        ResourceKind::Group => mentions(filter, "members"),
    };
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM {t} WHERE tenant = ? ORDER BY rk"
    ))?;
    let mut rows = st.query([tenant])?;
    let mut matched = Vec::new();
    let mut total = 0i64;
    while let Some(r) = rows.next()? {
        let raw = row(r)?;
        let doc = parse_doc(&raw.2)?;
        let extra_values = if !extra {
            None
        } else if kind == ResourceKind::User {
            Some(
                groups_of(c, tenant, &raw.1)?
                    .into_iter()
                    .map(|g| serde_json::json!({"value": g.id, "display": g.display}))
                    .collect(),
            )
        } else {
            Some(
                super::groups::members_of(c, raw.0)?
                    .into_iter()
                    .map(|m| serde_json::json!({"value": m.value, "display": m.display, "type": m.kind}))
                    .collect::<Vec<Value>>(),
            )
        };
        let view = render(kind, &raw.1, &doc, &raw.3, "", extra_values);
        if eval::matches(filter, &view, Scope::Resource(kind)) {
            total += 1;
            if total > offset && (matched.len() as i64) < q.count {
                matched.push(raw);
            }
        }
    }
    Ok(Page {
        total,
        items: matched,
    })
}
