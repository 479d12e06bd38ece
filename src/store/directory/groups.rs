//! SCIM Groups and their member table.
//!
//! Members are rows, not part of the group's document, so adding or removing one member is one
//! row whatever the group's size. A member row keeps the id the provider sent even when no such
//! user or group exists yet.

use crate::store::allocation::runs;
use crate::store::engine::sql::{params, Db, Param};
use std::collections::HashSet;

use serde_json::{json, Value};

use crate::alloc::{Cause, Change, Millis};
use crate::scim::eval::{self, Scope};
use crate::scim::patch::{self, MemberChange, PatchOp};
use crate::scim::path::AttrPath;
use crate::scim::resource::{fold, group_fields, Doc, MemberRef, Meta};
use crate::scim::schema::ResourceKind;
use crate::store::directory::rows::{
    load_matching, load_resource, members_of, new_resource, parse_doc, Loaded, MemberRow,
};
use crate::store::engine::time::rfc3339;
use crate::store::{Error, ListQuery, Lock, Page, Result, Store, TenantKey};

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub id: String,
    pub doc: Doc,
    pub meta: Meta,
    /// `None` when the caller did not ask for members.
    pub members: Option<Vec<MemberRow>>,
}

fn load(c: &Db, tenant: TenantKey, id: &str) -> Result<Loaded> {
    load_resource(c, ResourceKind::Group, tenant, id)
}

/// Writes a group's row (`rk`: an existing group, `renamed` when its displayName or externalId
/// changed).
fn save(
    c: &Db,
    tenant: TenantKey,
    rk: Option<i64>,
    id: &str,
    doc: &Doc,
    meta: &Meta,
    renamed: bool,
) -> Result<i64> {
    let (display, external_id) = group_fields(doc);
    crate::scim::resource::check_group_fields(&display, external_id.as_deref())?;
    if rk.is_some() && !renamed {
        // Its names are the ones it had (a member change): nothing to check, and nothing in
        // the update can fail, so it goes with the next statement (`Db::execute_later`).
        let text = Value::Object(doc.clone()).to_string();
        c.execute_later(
            "UPDATE groups SET doc = ?, last_modified = ?, version = ? WHERE rk = ?",
            params![text, meta.last_modified, meta.version, rk],
        )?;
        return Ok(rk.unwrap_or_default());
    }
    check_unique(c, tenant, rk, &display, external_id.as_deref())?;
    let text = Value::Object(doc.clone()).to_string();
    Ok(match rk {
        None => {
            c.prepare_cached(
                "INSERT INTO groups (tenant, id, display_name, display_name_key, external_id, doc, created, last_modified, version)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![tenant, id, display, fold(&display), external_id, text, meta.created, meta.last_modified, meta.version])?;
            c.last_insert_rowid()?
        }
        Some(rk) => {
            c.prepare_cached(
                "UPDATE groups SET display_name = ?, display_name_key = ?, external_id = ?, doc = ?, last_modified = ?, version = ? WHERE rk = ?",
            )?
            .execute(params![display, fold(&display), external_id, text, meta.last_modified, meta.version, rk])?;
            rk
        }
    })
}

/// A group's names are its own (under the tenant's write lock, so two writes cannot both pass):
/// its `externalId` always, its `displayName` (case-insensitively) unless the tenant allows
/// same-named groups (`group_names_unique`). 409 `uniqueness`, as for a taken `userName`.
fn check_unique(
    c: &Db,
    tenant: TenantKey,
    rk: Option<i64>,
    display: &str,
    external_id: Option<&str>,
) -> Result<()> {
    let me = rk.unwrap_or(-1);
    if let Some(e) = external_id {
        let taken: bool = c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM groups WHERE tenant = ? AND external_id = ? AND rk <> ?)",
            )?
            .query_row(params![tenant, e, me], |r| r.get(0))?;
        if taken {
            return Err(Error::Conflict(format!(
                "a group with externalId {e:?} exists"
            )));
        }
    }
    let unique: bool = c
        .prepare_cached("SELECT group_names_unique FROM tenants WHERE rk = ?")?
        .query_row([tenant], |r| r.get(0))?;
    if unique {
        let taken: bool = c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM groups WHERE tenant = ? AND display_name_key = ? AND rk <> ?)",
            )?
            .query_row(params![tenant, fold(display), me], |r| r.get(0))?;
        if taken {
            return Err(Error::Conflict(format!(
                "a group named {display:?} exists (group names are unique in this tenant, case-insensitively)"
            )));
        }
    }
    Ok(())
}

/// Rows one member statement writes or deletes at most (a full slice's statement is cached).
const MEMBER_SLICE: usize = 100;

/// The types of members the client did not type: a Group when a group has that id, else a
/// User; read for all of them by one statement per slice.
fn member_types(c: &Db, tenant: TenantKey, members: &[MemberRef]) -> Result<Vec<&'static str>> {
    let untyped: Vec<&String> = members
        .iter()
        .filter(|m| m.kind.is_none())
        .map(|m| &m.value)
        .collect();
    let mut groups: HashSet<String> = HashSet::new();
    for slice in untyped.chunks(MEMBER_SLICE) {
        let sql = format!(
            "SELECT id FROM groups WHERE tenant = ? AND id IN ({})",
            vec!["?"; slice.len()].join(", ")
        );
        let mut args: Vec<&dyn Param> = vec![&tenant];
        args.extend(slice.iter().map(|v| *v as &dyn Param));
        groups.extend(first_column(c, &sql, slice.len(), &args)?);
    }
    Ok(members
        .iter()
        .map(|m| match &m.kind {
            Some(k) if k == "Group" => "Group",
            Some(_) => "User",
            None if groups.contains(&m.value) => "Group",
            None => "User",
        })
        .collect())
}

/// The first column of what `sql` (a statement over `rows` slice rows) answers with `args`; a
/// full slice's statement is cached, a shorter last one is not (its text is seen once).
fn first_column(c: &Db, sql: &str, rows: usize, args: &[&dyn Param]) -> Result<Vec<String>> {
    // A long list is planned for the tables as they are (`Db::query_in`).
    c.query_in(sql, rows, args, |r| r.get::<_, String>(0))
}

/// Adds members, a slice of rows per statement; returns the values that were new.
fn add_members(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    group_rk: i64,
    members: &[MemberRef],
) -> Result<Vec<String>> {
    let added = crate::store::engine::time::rfc3339(at);
    let kinds = member_types(c, tenant, members)?;
    let mut new = Vec::new();
    for (slice, kinds) in members.chunks(MEMBER_SLICE).zip(kinds.chunks(MEMBER_SLICE)) {
        let sql = format!(
            "INSERT INTO group_members (group_rk, tenant, member_id, member_type, display, added) VALUES {}
             ON CONFLICT DO NOTHING RETURNING member_id",
            vec!["(?, ?, ?, ?, ?, ?)"; slice.len()].join(", ")
        );
        let mut args: Vec<&dyn Param> = Vec::with_capacity(6 * slice.len());
        for (m, kind) in slice.iter().zip(kinds) {
            args.extend([
                &group_rk as &dyn Param,
                &tenant,
                &m.value,
                kind,
                &m.display,
                &added,
            ]);
        }
        new.extend(first_column(c, &sql, slice.len(), &args)?);
    }
    Ok(new)
}

/// Removes members, a slice per statement; returns the values that were there.
fn remove_members(c: &Db, group_rk: i64, ids: &[String]) -> Result<Vec<String>> {
    let mut gone = Vec::new();
    for slice in ids.chunks(MEMBER_SLICE) {
        let sql = format!(
            "DELETE FROM group_members WHERE group_rk = ? AND member_id IN ({}) RETURNING member_id",
            vec!["?"; slice.len()].join(", ")
        );
        let mut args: Vec<&dyn Param> = vec![&group_rk];
        args.extend(slice.iter().map(|v| v as &dyn Param));
        gone.extend(first_column(c, &sql, slice.len(), &args)?);
    }
    Ok(gone)
}

/// The values of a group's members, in no particular order.
fn member_ids(c: &Db, group_rk: i64) -> Result<HashSet<String>> {
    let mut st = c.prepare_cached("SELECT member_id FROM group_members WHERE group_rk = ?")?;
    let ids = st
        .query_map([group_rk], |r| r.get(0))?
        .collect::<Result<HashSet<String>>>()?;
    Ok(ids)
}

/// What replacing members `had` with `list` changes: the values to remove and the members to
/// add. Members in both stay as they are.
fn replace_diff(had: &HashSet<String>, list: &[MemberRef]) -> (Vec<String>, Vec<MemberRef>) {
    let keep: HashSet<&str> = list.iter().map(|m| m.value.as_str()).collect();
    let gone = had
        .iter()
        .filter(|v| !keep.contains(v.as_str()))
        .cloned()
        .collect();
    let new = list
        .iter()
        .filter(|m| !had.contains(&m.value))
        .cloned()
        .collect();
    (gone, new)
}

/// A replacement of a large group's members, worked out on a read snapshot before the write
/// (off the writer, at a low priority): valid while the group is still at `version`.
struct PlannedReplace {
    rk: i64,
    version: i64,
    /// Members removed and added.
    size: usize,
    changes: [MemberChange; 2],
}

/// Applies member changes in order; returns the member values added or removed.
fn apply_changes(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    group_rk: i64,
    changes: &[MemberChange],
) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for ch in changes {
        changed.extend(match ch {
            MemberChange::Add(list) => add_members(c, tenant, at, group_rk, list)?,
            MemberChange::Remove(ids) => remove_members(c, group_rk, ids)?,
            MemberChange::RemoveAll => {
                let all: Vec<String> = members_of(c, group_rk)?
                    .into_iter()
                    .map(|m| m.value)
                    .collect();
                remove_members(c, group_rk, &all)?
            }
            MemberChange::Replace(list) => {
                // Only the difference is written: a PUT of a large group that changes a few
                // members costs those few, not the group.
                let (gone, new) = replace_diff(&member_ids(c, group_rk)?, list);
                let mut v = remove_members(c, group_rk, &gone)?;
                v.extend(add_members(c, tenant, at, group_rk, &new)?);
                v
            }
            MemberChange::RemoveWhere(filter) => {
                let subs = ResourceKind::Group
                    .leaf(&AttrPath::simple("members"))
                    .map(|d| d.sub)
                    .unwrap_or(&[]);
                let gone: Vec<String> = members_of(c, group_rk)?
                    .into_iter()
                    .filter(|m| eval::matches(filter, &member_json(m), Scope::Element(subs)))
                    .map(|m| m.value)
                    .collect();
                remove_members(c, group_rk, &gone)?
            }
        });
    }
    changed.sort();
    changed.dedup();
    Ok(changed)
}

/// After a group's document or members changed: binds pending selectors its new name or
/// externalId now matches, and re-allocates every user the change reached.
fn allocate_after(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    group: &str,
    name: &str,
    changed_members: &[String],
    renamed: bool,
) -> Result<()> {
    let mut reach = runs::reach(c, tenant, group, changed_members)?;
    if renamed {
        let gained = runs::bind_selectors(c, tenant, group)?;
        if !gained.is_empty() {
            reach = reach.merge(runs::reach(c, tenant, group, &[group.to_owned()])?);
        }
    }
    let change = Change::Members(name.to_owned());
    runs::reevaluate_reach(c, tenant, at, reach, Cause::Directory, Some(change))?;
    Ok(())
}

fn member_json(m: &MemberRow) -> Value {
    json!({"value": m.value, "display": m.display, "type": m.kind})
}

/// Removes `member_id` from every group of the tenant (the user or group was deleted), bumping
/// those groups' versions.
pub(in crate::store) fn drop_memberships_of(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    member_id: &str,
) -> Result<()> {
    c.prepare_cached(
        "UPDATE groups SET version = version + 1, last_modified = ?
         WHERE rk IN (SELECT group_rk FROM group_members WHERE tenant = ? AND member_id = ?)",
    )?
    .execute(params![rfc3339(at), tenant, member_id])?;
    c.prepare_cached("DELETE FROM group_members WHERE tenant = ? AND member_id = ?")?
        .execute(params![tenant, member_id])?;
    Ok(())
}

fn record(c: &Db, row: Loaded, with_members: bool) -> Result<GroupRecord> {
    let members = if with_members {
        Some(members_of(c, row.rk)?)
    } else {
        None
    };
    Ok(GroupRecord {
        id: row.id,
        doc: row.doc,
        meta: row.meta,
        members,
    })
}

/// Writes the group's new document and member changes, bumping the version when anything
/// changed, and re-allocates what the change reached.
fn update(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    mut row: Loaded,
    doc: Doc,
    changes: &[MemberChange],
    with_members: bool,
) -> Result<GroupRecord> {
    let changed_members = apply_changes(c, tenant, at, row.rk, changes)?;
    let renamed = group_fields(&doc) != group_fields(&row.doc);
    if doc != row.doc || !changed_members.is_empty() {
        row.meta.version += 1;
        row.meta.last_modified = rfc3339(at);
        row.doc = doc;
        save(
            c,
            tenant,
            Some(row.rk),
            &row.id,
            &row.doc,
            &row.meta,
            renamed,
        )?;
        let name = group_fields(&row.doc).0;
        allocate_after(c, tenant, at, &row.id, &name, &changed_members, renamed)?;
    }
    record(c, row, with_members)
}

/// Member values above which a group write runs alone, in a transaction of its own
/// ([`Store::write_alone`]): batched jobs each keep a journal of the pages they touch.
const ALONE_MEMBERS: usize = 1000;

impl Store {
    pub async fn create_group(
        &self,
        tenant: TenantKey,
        doc: Doc,
        members: Vec<MemberRef>,
    ) -> Result<GroupRecord> {
        let ticker = self.ticker();
        self.write_sized(
            Lock::Tenant(tenant),
            members.len() > ALONE_MEMBERS,
            move |c| {
                let at = ticker.now();
                let (id, meta) = new_resource(at);
                let rk = save(c, tenant, None, &id, &doc, &meta, true)?;
                let added = add_members(c, tenant, at, rk, &members)?;
                let name = group_fields(&doc).0;
                allocate_after(c, tenant, at, &id, &name, &added, true)?;
                record(
                    c,
                    Loaded {
                        rk,
                        id,
                        doc: doc.clone(),
                        meta,
                    },
                    true,
                )
            },
        )
        .await
    }

    pub async fn get_group(
        &self,
        tenant: TenantKey,
        id: String,
        with_members: bool,
    ) -> Result<GroupRecord> {
        self.read(move |c| {
            let row = load(c, tenant, &id)?;
            record(c, row, with_members)
        })
        .await
    }

    /// The group with its members when it has at most `cap` of them; `None` when it has more
    /// (counted no further than `cap + 1`).
    pub async fn get_group_within(
        &self,
        tenant: TenantKey,
        id: String,
        cap: usize,
    ) -> Result<Option<GroupRecord>> {
        self.read(move |c| {
            let row = load(c, tenant, &id)?;
            if cap < usize::MAX {
                let over: bool = c
                    .prepare_cached(
                        "SELECT count(*) > ?2 FROM (SELECT 1 FROM group_members WHERE group_rk = ?1 LIMIT CAST(?2 AS BIGINT) + 1) AS m",
                    )?
                    .query_row(params![row.rk, cap as i64], |r| r.get(0))?;
                if over {
                    return Ok(None);
                }
            }
            record(c, row, true).map(Some)
        })
        .await
    }

    pub async fn replace_group(
        &self,
        tenant: TenantKey,
        id: String,
        doc: Doc,
        members: Vec<MemberRef>,
        if_match: Option<String>,
    ) -> Result<GroupRecord> {
        let ticker = self.ticker();
        let large = members.len() > ALONE_MEMBERS;
        // A large member list is compared with the stored one on a read snapshot first, as an
        // expensive read of the tenant: the writer then applies only the difference, unless the
        // group changed in between (then it compares again itself).
        let (planned, members) = if large {
            let id = id.clone();
            self.read_expensive(tenant, move |c| {
                let row = load(c, tenant, &id)?;
                let (gone, new) = replace_diff(&member_ids(c, row.rk)?, &members);
                let plan = PlannedReplace {
                    rk: row.rk,
                    version: row.meta.version,
                    size: gone.len() + new.len(),
                    changes: [MemberChange::Remove(gone), MemberChange::Add(new)],
                };
                Ok((Some(plan), members))
            })
            .await?
        } else {
            (None, members)
        };
        let alone = match &planned {
            Some(p) => p.size > ALONE_MEMBERS,
            None => large,
        };
        let written = self
            .write_sized(Lock::Tenant(tenant), alone, move |c| {
                let at = ticker.now();
                let row = load_matching(c, ResourceKind::Group, tenant, &id, if_match.as_deref())?;
                let replace = [MemberChange::Replace(members.clone())];
                let changes = match &planned {
                    Some(p) if p.rk == row.rk && p.version == row.meta.version => &p.changes[..],
                    _ => &replace[..],
                };
                update(c, tenant, at, row, doc.clone(), changes, false)
            })
            .await?;
        // As for a PATCH: the member list is read after the commit, off the writer (a large one
        // as an expensive read).
        let read = if large {
            let id = written.id.clone();
            self.read_expensive(tenant, move |c| record(c, load(c, tenant, &id)?, true))
                .await
        } else {
            self.get_group(tenant, written.id.clone(), true).await
        };
        match read {
            Err(Error::NotFound(_)) => Ok(written),
            other => other,
        }
    }

    /// Applies PATCH operations to a group; answers the group as written, without its members
    /// (the HTTP layer reads them after the commit when the answer carries them, so the
    /// writer's cost stays the size of the change).
    pub async fn patch_group(
        &self,
        tenant: TenantKey,
        id: String,
        ops: Vec<PatchOp>,
        if_match: Option<String>,
    ) -> Result<GroupRecord> {
        let ticker = self.ticker();
        let alone = patch::may_change_many_members(&ops, ALONE_MEMBERS);
        self.write_sized(Lock::Tenant(tenant), alone, move |c| {
            let at = ticker.now();
            let row = load_matching(c, ResourceKind::Group, tenant, &id, if_match.as_deref())?;
            let mut doc = row.doc.clone();
            let changes = patch::apply(ResourceKind::Group, &mut doc, &ops)?;
            update(c, tenant, at, row, doc, &changes, false)
        })
        .await
    }

    pub async fn delete_group(
        &self,
        tenant: TenantKey,
        id: String,
        if_match: Option<String>,
    ) -> Result<()> {
        let ticker = self.ticker();
        self.write_alone(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let row = load_matching(c, ResourceKind::Group, tenant, &id, if_match.as_deref())?;
            let reach = runs::reach(c, tenant, &id, std::slice::from_ref(&id))?;
            let change = Change::GroupDeleted(runs::group_name(c, tenant, &id)?);
            drop_memberships_of(c, tenant, at, &id)?;
            c.prepare_cached("DELETE FROM groups WHERE rk = ?")?
                .execute([row.rk])?;
            runs::unbind_selectors(c, tenant, &id, &rfc3339(at))?;
            runs::reevaluate_reach(c, tenant, at, reach, Cause::Directory, Some(change))?;
            Ok(())
        })
        .await
    }

    pub async fn list_groups(
        &self,
        tenant: TenantKey,
        q: ListQuery,
        with_members: bool,
    ) -> Result<Page<GroupRecord>> {
        let expensive = crate::store::directory::filters::is_scan(ResourceKind::Group, &q);
        let list = move |c: &Db| {
            let page = crate::store::directory::filters::list(c, tenant, ResourceKind::Group, &q)?;
            let mut items = Vec::with_capacity(page.items.len());
            for ((rk, id, doc, meta), _) in page.items {
                items.push(record(
                    c,
                    Loaded {
                        rk,
                        id,
                        doc: parse_doc(&doc)?,
                        meta,
                    },
                    with_members,
                )?);
            }
            Ok(Page {
                total: page.total,
                items,
            })
        };
        if expensive {
            self.read_expensive(tenant, list).await
        } else {
            self.read(list).await
        }
    }
}

/// A group as the console's picker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChoice {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: i64,
}

impl Store {
    /// Groups whose displayName contains `q` (case-insensitive; all when empty), by name, with
    /// their direct member counts: the console's group picker.
    pub async fn search_groups(
        &self,
        tenant: TenantKey,
        q: String,
        limit: i64,
    ) -> Result<Vec<GroupChoice>> {
        self.read(move |c| {
            let pattern = format!(
                "%{}%",
                q.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let mut st = c.prepare_cached(
                "SELECT g.id, g.display_name, g.external_id,
                        (SELECT count(*) FROM group_members m WHERE m.group_rk = g.rk)
                 FROM groups g WHERE g.tenant = ? AND g.display_name_key LIKE ? ESCAPE '\\'
                 ORDER BY g.display_name_key, g.id LIMIT ?",
            )?;
            st.query_all(params![tenant, pattern, limit], |r| {
                Ok(GroupChoice {
                    id: r.get(0)?,
                    display_name: r.get(1)?,
                    external_id: r.get(2)?,
                    members: r.get(3)?,
                })
            })
        })
        .await
    }
}
