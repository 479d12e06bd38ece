//! How Users and Groups are read from their rows: the columns, a stored resource by id (for a
//! change, with its version checked), a user's group references (read by a join on SQLite,
//! from the user's row on PostgreSQL), a group's members, and a new resource's id and
//! metadata. Used by the writes (`users`, `groups`) and by listing (`filters`).

use crate::alloc::Millis;
use crate::scim::resource::{Doc, Meta};
use crate::scim::schema::ResourceKind;
use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use crate::store::engine::time::rfc3339;
use crate::store::{Error, Result, TenantKey};

/// A group a user is a direct member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub display: String,
}

pub(in crate::store) struct Loaded {
    pub rk: i64,
    pub id: String,
    pub doc: Doc,
    pub meta: Meta,
}

pub(in crate::store) fn parse_doc(text: &str) -> Result<Doc> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("stored document is not JSON: {e}")))
}

pub(in crate::store) fn row(r: &Row) -> Result<(i64, String, String, Meta)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        Meta {
            created: r.get(3)?,
            last_modified: r.get(4)?,
            version: r.get(5)?,
        },
    ))
}

pub(in crate::store) const COLS: &str = "rk, id, doc, created, last_modified, version";

/// A stored user or group (`kind`) by id, as read for a change.
pub(in crate::store) fn load_resource(
    c: &Db,
    kind: ResourceKind,
    tenant: TenantKey,
    id: &str,
) -> Result<Loaded> {
    let (table, noun) = match kind {
        ResourceKind::User => ("users", "User"),
        ResourceKind::Group => ("groups", "Group"),
    };
    let (rk, id, doc, meta) = c
        .prepare_cached(&format!(
            "SELECT {COLS} FROM {table} WHERE tenant = ? AND id = ?"
        ))?
        .query_row(params![tenant, id], row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("{noun} {id:?}")))?;
    Ok(Loaded {
        rk,
        id,
        doc: parse_doc(&doc)?,
        meta,
    })
}

/// The groups `id` is a direct member of, by display name (case-folded), then id.
pub(in crate::store) fn groups_of(c: &Db, tenant: TenantKey, id: &str) -> Result<Vec<GroupRef>> {
    // Sorted here rather than by SQL: a user is in a handful of groups, and an ORDER BY would
    // set up a sorter on every user read, most of which find no group at all.
    let mut st = c.prepare_cached(
        "SELECT g.display_name_key, g.id, g.display_name FROM group_members m JOIN groups g ON g.rk = m.group_rk
         WHERE m.tenant = ? AND m.member_id = ?",
    )?;
    let mut rows = st.query_all(params![tenant, id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            GroupRef {
                id: r.get(1)?,
                display: r.get(2)?,
            },
        ))
    })?;
    rows.sort_unstable_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.id.cmp(&y.id)));
    Ok(rows.into_iter().map(|(_, g)| g).collect())
}

/// A user's group references as one column of a statement over `users r`, on PostgreSQL,
/// where a user is read with its groups in one statement: an array of `"{id} {display name}"`,
/// split at the first space (a group's id is a UUID the service assigned, without spaces) by
/// [`from_column`]. The array is kept on the user's row (`users.group_refs`) by the schema's
/// triggers on memberships and group renames, so the read is one index lookup: joining the
/// memberships and groups for it took PostgreSQL as long again as the user's row alone and kept
/// the `userName eq` filter under half of the raw point-SELECT rate (pgbench at 100k users: the
/// statement 41,000/s with the join, 62,000/s without; the filter under `wrk` 26,500/s →
/// 38,000/s). The price is paid by the rarer writes: a membership change rewrites its user's
/// row (an UPDATE by key in the same transaction), a rename rewrites its members' rows.
pub(in crate::store) const POSTGRES_GROUPS_COLUMN: &str = ", r.group_refs";

/// A stored user or group (`kind`) by id, for a change that `if_match` (when given) must match.
pub(in crate::store) fn load_matching(
    c: &Db,
    kind: ResourceKind,
    tenant: TenantKey,
    id: &str,
    if_match: Option<&str>,
) -> Result<Loaded> {
    let row = load_resource(c, kind, tenant, id)?;
    check_version(if_match, &row.meta)?;
    Ok(row)
}

fn check_version(if_match: Option<&str>, meta: &Meta) -> Result<()> {
    match if_match {
        Some(m) if !crate::scim::etag::matches(m, meta.version) => Err(Error::VersionMismatch),
        _ => Ok(()),
    }
}

/// A new user's or group's id and metadata, created at `at`. Ids are time-ordered (UUIDv7):
/// new rows append to the id index instead of landing on a random page of it, so a sync dirties
/// a few pages per batch, not one per user.
pub(in crate::store) fn new_resource(at: Millis) -> (String, Meta) {
    let t = rfc3339(at);
    let meta = Meta {
        created: t.clone(),
        last_modified: t,
        version: 1,
    };
    (uuid::Uuid::now_v7().to_string(), meta)
}

/// One member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub value: String,
    pub display: Option<String>,
    pub kind: Option<String>,
}

pub(in crate::store) fn members_of(c: &Db, group_rk: i64) -> Result<Vec<MemberRow>> {
    let mut st = c.prepare_cached(
        "SELECT member_id, display, member_type FROM group_members WHERE group_rk = ? ORDER BY added, member_id",
    )?;
    st.query_all([group_rk], |r| {
        Ok(MemberRow {
            value: r.get(0)?,
            display: r.get(1)?,
            kind: r.get(2)?,
        })
    })
}
