//! Listing with SCIM filters: the part of a filter on indexed columns becomes SQL; anything else
//! is evaluated in memory over the tenant's resources (the full grammar is always answered, the
//! indexed part never scans).
//!
//! Indexed: `id`, `externalId`, `userName`, `displayName` and `active` (eq), `emails.value` (eq)
//! for Users; `id`, `externalId`, `displayName` and `members.value` (eq) for Groups; and `and`,
//! `or`, `not` over those. Results come in creation order (stable across pages).
//!
//! What is not indexed is bounded, so that one tenant's expensive listing cannot hurt the
//! others: rows stream past the filter and only the requested page is kept (a bounded top-k
//! heap when sorting, at most [`MAX_SORT_WINDOW`] deep), at most [`MAX_SCAN`] rows are
//! examined (past either: 400 `tooMany`), and a tenant runs one such listing at a time, on a
//! low-priority background thread (`Store::read_expensive`); the rest of its listings wait for
//! it, not for other tenants, and other tenants' requests get the CPU first.

use crate::store::engine::sql::{Db, Param};

/// A statement argument built with the statement.
type Sql = Box<dyn Param>;
use serde_json::Value;

use crate::scim::eval::{self, Scope, SortValue};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::resource::{fold, render, Meta};
use crate::scim::schema::ResourceKind;
use crate::store::directory::rows::{groups_of, members_of, parse_doc, row, COLS};
use crate::store::{Result, TenantKey};

pub use crate::scim::search::ListQuery;

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub total: i64,
    pub items: Vec<T>,
}

type RawRow = (i64, String, String, Meta);

/// A listed row, and what [`companion`] read with it (a user's group references on
/// PostgreSQL, see [`rows::POSTGRES_GROUPS_COLUMN`](crate::store::directory::rows::POSTGRES_GROUPS_COLUMN)), `None` when
/// nothing was.
pub(in crate::store) type Listed = (RawRow, Option<Vec<String>>);

/// What an indexed listing of `kind` reads beside each row, as extra SELECT columns: on
/// PostgreSQL, where each statement is a round trip, a user's group references come in the
/// same statement ([`rows::POSTGRES_GROUPS_COLUMN`](crate::store::directory::rows::POSTGRES_GROUPS_COLUMN)); SQLite reads them
/// after, in the same snapshot, for less than a subquery would cost.
/// `groups_on_row`: the engine keeps a user's group references on its row (PostgreSQL).
fn companion(groups_on_row: bool, kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User if groups_on_row => {
            crate::store::directory::rows::POSTGRES_GROUPS_COLUMN
        }
        _ => "",
    }
}

/// Whether `c`'s engine keeps a user's group references on its row.
fn groups_on_row(c: &Db) -> bool {
    c.twin(false, true)
}

/// The resource rows `sql` selects with `args`, with the companion column when `sql` has one.
fn rows(c: &Db, sql: &str, args: &[Sql], with: bool) -> Result<Vec<Listed>> {
    c.prepare_cached(sql)?
        .query_all(arg_refs(args).as_slice(), |r| listed(r, with))
}

/// One listed row, with the companion column when `with`.
pub(in crate::store) fn listed(r: &crate::store::engine::sql::Row, with: bool) -> Result<Listed> {
    Ok((row(r)?, if with { Some(r.text_array(6)?) } else { None }))
}

/// Statement arguments as parameters.
pub(in crate::store) fn arg_refs(args: &[Sql]) -> Vec<&dyn Param> {
    args.iter().map(AsRef::as_ref).collect()
}

/// A point listing (a filter with an `id` or `userName` eq part: at most one row) as one
/// statement (`groups_on_row`: see [`companion`]): its SQL, its arguments, and whether it reads the companion column.
/// `None` when `q` is not one.
pub(in crate::store) fn point_statement(
    groups_on_row: bool,
    tenant: TenantKey,
    kind: ResourceKind,
    q: &ListQuery,
) -> Option<(String, Vec<Sql>, bool)> {
    let f = q.filter.as_ref().filter(|f| is_point(kind, f))?;
    if let Some((path, _)) = &q.sort {
        sort_column(kind, path)?;
    }
    let mut args: Vec<Sql> = vec![Box::new(tenant)];
    let cond = to_sql(kind, f, &mut args)?;
    let (t, with) = (table(kind), companion(groups_on_row, kind));
    let sql = format!("SELECT {COLS}{with} FROM {t} r WHERE r.tenant = ? AND {cond}");
    Some((sql, args, !with.is_empty()))
}

/// The page of a point listing, cut from the rows it found (no count statement).
pub(in crate::store) fn point_page(found: Vec<Listed>, q: &ListQuery) -> Page<Listed> {
    let offset = (q.start_index.max(1) - 1).max(0);
    Page {
        total: found.len() as i64,
        items: found
            .into_iter()
            .skip(offset as usize)
            .take(q.count.max(0) as usize)
            .collect(),
    }
}

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
        Filter::Compare(
            path,
            op @ (CompareOp::Sw | CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le),
            CompValue::String(v),
        ) => compare_range(kind, path, *op, v, args),
        Filter::Present(path) => present(kind, path),
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

/// A path of `kind`'s core schema as (attribute, sub-attribute), lower-cased; `None` for a
/// path of another schema (an extension's attributes are never indexed).
fn core_path(kind: ResourceKind, path: &AttrPath) -> Option<(String, Option<String>)> {
    if path
        .urn
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(kind.core_schema()))
    {
        return None;
    }
    Some((
        path.name.to_ascii_lowercase(),
        path.sub.as_deref().map(str::to_ascii_lowercase),
    ))
}

fn compare_eq(
    kind: ResourceKind,
    path: &AttrPath,
    value: &CompValue,
    args: &mut Vec<Sql>,
) -> Option<String> {
    let (name, sub) = core_path(kind, path)?;
    let text = match value {
        CompValue::String(s) => Some(s.clone()),
        _ => None,
    };
    let (cond, arg) = match (kind, name.as_str(), sub.as_deref(), text) {
        (_, "id", None, Some(s)) => ("id = ?", Box::new(s) as Sql),
        (_, "externalid", None, Some(s)) => ("external_id = ?", Box::new(s) as Sql),
        (ResourceKind::User, "username", None, Some(s)) => ("user_name_key = ?", Box::new(fold(&s)) as Sql),
        (ResourceKind::User, "displayname", None, Some(s)) => ("display_name_key = ?", Box::new(fold(&s)) as Sql),
        (ResourceKind::Group, "displayname", None, Some(s)) => ("display_name_key = ?", Box::new(fold(&s)) as Sql),
        (ResourceKind::User, "emails", None | Some("value"), Some(s)) => (
            "EXISTS (SELECT 1 FROM user_emails e WHERE e.user_rk = r.rk AND e.tenant = r.tenant AND e.value_key = ?)",
            Box::new(fold(&s)) as Sql,
        ),
        (ResourceKind::Group, "members", None | Some("value"), Some(s)) => (
            "EXISTS (SELECT 1 FROM group_members m WHERE m.group_rk = r.rk AND m.member_id = ?)",
            Box::new(s) as Sql,
        ),
        (ResourceKind::User, "active", None, None) => match value {
            CompValue::Bool(b) => ("active = ?", Box::new(*b) as Sql),
            _ => return None,
        },
        _ => return None,
    };
    args.push(arg);
    Some(cond.to_owned())
}

/// The indexed column a sort path maps to, when there is one.
fn sort_column(kind: ResourceKind, path: &AttrPath) -> Option<&'static str> {
    let (name, sub) = core_path(kind, path)?;
    Some(match (kind, name.as_str(), sub.as_deref()) {
        (_, "id", None) => "r.id",
        (_, "externalid", None) => "r.external_id",
        (_, "displayname", None) => "r.display_name_key",
        (ResourceKind::User, "username", None) => "r.user_name_key",
        (_, "meta", Some("created")) => "r.created",
        (_, "meta", Some("lastmodified")) => "r.last_modified",
        _ => return None,
    })
}

/// The indexed part of a filter that is not wholly indexed: the conjuncts of a top-level `and`
/// that compile, which every match satisfies (the whole filter is then checked in memory).
fn prefilter(kind: ResourceKind, f: &Filter, args: &mut Vec<Sql>) -> Option<String> {
    match f {
        Filter::And(a, b) => match (prefilter(kind, a, args), prefilter(kind, b, args)) {
            (Some(x), Some(y)) => Some(format!("({x} AND {y})")),
            (x, y) => x.or(y),
        },
        other => {
            let mark = args.len();
            let r = to_sql(kind, other, args);
            if r.is_none() {
                args.truncate(mark);
            }
            r
        }
    }
}

/// An indexed single-valued text column: (column, folded to lower case).
fn text_column(kind: ResourceKind, path: &AttrPath) -> Option<(&'static str, bool)> {
    if path
        .urn
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(kind.core_schema()))
        || path.sub.is_some()
    {
        return None;
    }
    Some(match (kind, path.name.to_ascii_lowercase().as_str()) {
        (_, "id") => ("id", false),
        (_, "externalid") => ("external_id", false),
        (_, "displayname") => ("display_name_key", true),
        (ResourceKind::User, "username") => ("user_name_key", true),
        _ => return None,
    })
}

/// `sw`, `gt`, `ge`, `lt`, `le` on an indexed text column, as an index range.
fn compare_range(
    kind: ResourceKind,
    path: &AttrPath,
    op: CompareOp,
    value: &str,
    args: &mut Vec<Sql>,
) -> Option<String> {
    let (col, folded) = text_column(kind, path)?;
    let v = if folded {
        fold(value)
    } else {
        value.to_owned()
    };
    Some(match op {
        CompareOp::Sw => {
            args.push(Box::new(v.clone()) as Sql);
            args.push(Box::new(format!("{v}\u{10FFFF}")) as Sql);
            format!("({col} >= ? AND {col} < ?)")
        }
        _ => {
            let sym = match op {
                CompareOp::Gt => ">",
                CompareOp::Ge => ">=",
                CompareOp::Lt => "<",
                _ => "<=",
            };
            args.push(Box::new(v) as Sql);
            format!("{col} {sym} ?")
        }
    })
}

/// `pr` on an indexed column.
fn present(kind: ResourceKind, path: &AttrPath) -> Option<String> {
    let (col, _) = text_column(kind, path)?;
    Some(format!("{col} IS NOT NULL"))
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

/// True when a filter matches at most one resource: an `eq` on a unique column (`id`, and
/// `userName` for Users), alone or as a conjunct of a top-level `and`. Such a listing is a point
/// read: one index lookup, no count, cheap enough to run inline (`Store::read_now`).
pub(in crate::store) fn is_point(kind: ResourceKind, f: &Filter) -> bool {
    match f {
        Filter::And(a, b) => is_point(kind, a) || is_point(kind, b),
        Filter::Compare(path, CompareOp::Eq, CompValue::String(_)) => {
            path.sub.is_none()
                && path
                    .urn
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(kind.core_schema()))
                && (path.name.eq_ignore_ascii_case("id")
                    || (kind == ResourceKind::User && path.name.eq_ignore_ascii_case("userName")))
        }
        _ => false,
    }
}

pub(in crate::store) fn list(
    c: &Db,
    tenant: TenantKey,
    kind: ResourceKind,
    q: &ListQuery,
) -> Result<Page<Listed>> {
    if let Some((sql, args, with)) = point_statement(groups_on_row(c), tenant, kind, q) {
        return Ok(point_page(rows(c, &sql, &args, with)?, q));
    }
    let t = table(kind);
    let with = companion(groups_on_row(c), kind);
    let mut args: Vec<Sql> = vec![Box::new(tenant)];
    let cond = match &q.filter {
        None => Some("TRUE".to_owned()),
        Some(f) => to_sql(kind, f, &mut args),
    };
    let order = match &q.sort {
        None => Some("r.rk".to_owned()),
        Some((path, desc)) => sort_column(kind, path).map(|col| {
            // Missing values sort last ascending and first descending; ties keep creation order.
            if *desc {
                format!("{col} IS NULL DESC, {col} DESC, r.rk")
            } else {
                format!("{col} IS NULL, {col}, r.rk")
            }
        }),
    };
    let offset = (q.start_index.max(1) - 1).max(0);
    if let (Some(cond), Some(order)) = (&cond, &order) {
        let total: i64 = c
            .prepare_cached(&format!(
                "SELECT count(*) FROM {t} r WHERE r.tenant = ? AND {cond}"
            ))?
            .query_row(
                args.iter()
                    .map(AsRef::as_ref)
                    .collect::<Vec<&dyn Param>>()
                    .as_slice(),
                |r| r.get(0),
            )?;
        if q.count == 0 {
            return Ok(Page {
                total,
                items: Vec::new(),
            });
        }
        args.push(Box::new(q.count));
        args.push(Box::new(offset));
        let items = rows(
            c,
            &format!(
                "SELECT {COLS}{with} FROM {t} r WHERE r.tenant = ? AND {cond} ORDER BY {order} LIMIT ? OFFSET ?"
            ),
            &args,
            !with.is_empty(),
        )?;
        return Ok(Page { total, items });
    }
    // Not indexed: evaluate (and sort) in memory over the rows the indexed part selects.
    let residual = if cond.is_some() {
        None
    } else {
        q.filter.as_ref()
    };
    let needs = |name: &str| {
        residual.is_some_and(|f| mentions(f, name))
            || q.sort
                .as_ref()
                .is_some_and(|(p, _)| p.name.eq_ignore_ascii_case(name))
    };
    let extra = match kind {
        ResourceKind::User => needs("groups"),
        ResourceKind::Group => needs("members"),
    };
    let cond = match (cond, &q.filter) {
        (Some(c), _) => c,
        (None, Some(f)) => {
            args.truncate(1);
            prefilter(kind, f, &mut args).unwrap_or_else(|| "TRUE".to_owned())
        }
        (None, None) => "TRUE".to_owned(),
    };
    let sql = format!("SELECT {COLS} FROM {t} r WHERE r.tenant = ? AND {cond} ORDER BY r.rk");
    let args: Vec<&dyn Param> = args.iter().map(AsRef::as_ref).collect();
    // Streamed (on PostgreSQL through a cursor, `Db::for_each_row`): only the requested page is
    // kept (a bounded top-k when sorting), never the tenant; and at most MAX_SCAN rows are
    // examined.
    let window = offset as usize + q.count.max(0) as usize;
    if q.sort.is_some() && window > MAX_SORT_WINDOW {
        return Err(crate::scim::Error::too_many(format!(
            "sorting on this attribute serves the first {MAX_SORT_WINDOW} results only: narrow the filter or sort by id, userName or displayName"
        ))
        .into());
    }
    let mut top = TopK::new(window, q.sort.as_ref().is_some_and(|(_, d)| *d));
    let mut total = 0i64;
    let mut scanned = 0usize;
    c.for_each_row(&sql, args.as_slice(), is_scan(kind, q), |r| {
        if scanned >= MAX_SCAN {
            return Err(crate::scim::Error::too_many(format!(
                "this filter is not on an indexed attribute and the tenant has more than {MAX_SCAN} resources to examine: filter on id, externalId, userName, displayName, emails.value or members.value"
            ))
            .into());
        }
        scanned += 1;
        let raw = row(r)?;
        if residual.is_none() && q.sort.is_none() {
            total += 1;
            top.offer(None, raw);
            return Ok(true);
        }
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
                members_of(c, raw.0)?
                    .into_iter()
                    .map(|m| serde_json::json!({"value": m.value, "display": m.display, "type": m.kind}))
                    .collect::<Vec<Value>>(),
            )
        };
        let view = render(kind, &raw.1, doc, &raw.3, "", extra_values);
        if residual.is_some_and(|f| !eval::matches(f, &view, Scope::Resource(kind))) {
            return Ok(true);
        }
        total += 1;
        let key = q
            .sort
            .as_ref()
            .and_then(|(p, _)| eval::sort_value(kind, p, &view));
        top.offer(key, raw);
        Ok(true)
    })?;
    let items = top
        .into_sorted()
        .into_iter()
        .skip(offset as usize)
        .map(|r| (r, None))
        .collect();
    Ok(Page { total, items })
}

/// Most rows one listing examines in memory (a filter or sort on unindexed attributes); past
/// it the answer is 400 `tooMany`. A tenant of this many users still gets any filter answered.
pub const MAX_SCAN: usize = 250_000;
/// Deepest sorted window (`startIndex - 1 + count`) served when sorting in memory.
pub const MAX_SORT_WINDOW: usize = 10_000;

/// True when listing `q` examines rows in memory rather than reading an index.
pub fn is_scan(kind: ResourceKind, q: &ListQuery) -> bool {
    let mut args = Vec::new();
    let indexed_filter = q
        .filter
        .as_ref()
        .is_none_or(|f| to_sql(kind, f, &mut args).is_some());
    let indexed_sort = q
        .sort
        .as_ref()
        .is_none_or(|(p, _)| sort_column(kind, p).is_some());
    !(indexed_filter && indexed_sort)
}

/// The first `k` rows in sort order, kept in a bounded heap while rows stream past: memory is
/// `k` rows whatever the tenant's size. Without a sort key, the first `k` offered (creation
/// order). Equal keys keep creation order; missing values sort last ascending, first
/// descending (RFC 7644 §3.4.2.3).
struct TopK {
    k: usize,
    desc: bool,
    seq: usize,
    heap: std::collections::BinaryHeap<Ranked>,
}

struct Ranked {
    key: Option<SortValue>,
    desc: bool,
    seq: usize,
    row: RawRow,
}

impl Ranked {
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let by_key = match (&self.key, &other.key) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        };
        let by_key = if self.desc { by_key.reverse() } else { by_key };
        by_key.then(self.seq.cmp(&other.seq))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.order(other).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order(other)
    }
}

impl TopK {
    fn new(k: usize, desc: bool) -> TopK {
        TopK {
            k,
            desc,
            seq: 0,
            heap: std::collections::BinaryHeap::with_capacity(k.min(4096) + 1),
        }
    }

    fn offer(&mut self, key: Option<SortValue>, row: RawRow) {
        self.seq += 1;
        if self.k == 0 {
            return;
        }
        let ranked = Ranked {
            key,
            desc: self.desc,
            seq: self.seq,
            row,
        };
        if self.heap.len() < self.k {
            self.heap.push(ranked);
        } else if self.heap.peek().is_some_and(|worst| ranked < *worst) {
            self.heap.pop();
            self.heap.push(ranked);
        }
    }

    fn into_sorted(self) -> Vec<RawRow> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.row)
            .collect()
    }
}

#[cfg(test)]
mod top_k_tests {
    use super::*;

    fn raw(n: i64) -> RawRow {
        let meta = Meta {
            created: String::new(),
            last_modified: String::new(),
            version: 1,
        };
        (n, n.to_string(), String::new(), meta)
    }

    fn first(k: usize, desc: bool, keys: &[Option<i64>]) -> Vec<i64> {
        let mut t = TopK::new(k, desc);
        for (i, key) in keys.iter().enumerate() {
            t.offer(key.map(|v| SortValue::Number(v as f64)), raw(i as i64));
        }
        t.into_sorted().into_iter().map(|r| r.0).collect()
    }

    #[test]
    fn keeps_the_first_k_in_a_stable_order() {
        let keys = [Some(3), None, Some(1), Some(3), Some(2), None, Some(1)];
        // Ascending: 1 (#2), 1 (#6), 2 (#4), 3 (#0), 3 (#3), missing (#1), missing (#5).
        assert_eq!(first(10, false, &keys), vec![2, 6, 4, 0, 3, 1, 5]);
        assert_eq!(first(3, false, &keys), vec![2, 6, 4]);
        // Descending: missing first, then 3, 3, 2, 1, 1; ties in creation order.
        assert_eq!(first(4, true, &keys), vec![1, 5, 0, 3]);
        assert_eq!(first(0, false, &keys), Vec::<i64>::new());
        // Without keys: creation order.
        assert_eq!(first(2, false, &[None, None, None]), vec![0, 1]);
    }
}
