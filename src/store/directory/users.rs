//! SCIM Users: rows, their indexed columns and email index, and the groups they are in.

use crate::store::allocation::runs;
use crate::store::directory::filters::Listed;
use crate::store::directory::rows::*;
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::engine::time::rfc3339;
use serde_json::Value;

use crate::alloc::{Cause, Millis};
use crate::scim::patch::{self, PatchOp};
use crate::scim::resource::{fold, user_fields, Doc, Meta};
use crate::scim::schema::ResourceKind;
use crate::store::{
    allocation::tx_seats, is_unique_violation, Error, ListQuery, Lock, Page, Result, Store,
    TenantKey,
};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: String,
    pub doc: Doc,
    pub meta: Meta,
    pub groups: Vec<GroupRef>,
}

fn load(c: &Db, tenant: TenantKey, id: &str) -> Result<Loaded> {
    load_resource(c, ResourceKind::User, tenant, id)
}

/// A user as answered, with its group references read now.
pub(in crate::store) fn record(c: &Db, tenant: TenantKey, row: Loaded) -> Result<UserRecord> {
    let groups = groups_of(c, tenant, &row.id)?;
    Ok(with_groups(row, groups))
}

fn with_groups(row: Loaded, groups: Vec<GroupRef>) -> UserRecord {
    UserRecord {
        id: row.id,
        doc: row.doc,
        meta: row.meta,
        groups,
    }
}

/// The group references of a [`POSTGRES_GROUPS_COLUMN`], in the order of [`groups_of`]: by display
/// name case-folded as `groups.display_name_key` is, then by id.
fn from_column(column: Vec<String>) -> Result<Vec<GroupRef>> {
    let mut rows = column
        .into_iter()
        .map(|s| match s.split_once(' ') {
            Some((id, display)) => Ok((
                fold(display),
                GroupRef {
                    id: id.to_owned(),
                    display: display.to_owned(),
                },
            )),
            None => Err(Error::Internal(format!(
                "a group reference without a name: {s:?}"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    rows.sort_unstable_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.id.cmp(&y.id)));
    Ok(rows.into_iter().map(|(_, g)| g).collect())
}

/// A listed user row with its group references (read with it on PostgreSQL), as answered.
fn from_listed(c: Option<&Db>, tenant: TenantKey, listed: Listed) -> Result<UserRecord> {
    let ((rk, id, doc, meta), groups) = listed;
    let row = Loaded {
        rk,
        id,
        doc: parse_doc(&doc)?,
        meta,
    };
    match (groups, c) {
        (Some(column), _) => Ok(with_groups(row, from_column(column)?)),
        (None, Some(c)) => record(c, tenant, row),
        (None, None) => Err(Error::Internal("a user listed without its groups".into())),
    }
}

pub(in crate::store) fn taken(user_name: &str) -> Error {
    Error::Conflict(format!("userName {user_name:?} is already in use"))
}

/// Email addresses written by one statement.
const EMAILS_PER_INSERT: usize = 16;

/// A new user's row; eleven parameters.
const INSERT_USER: &str = "INSERT INTO users (tenant, id, user_name, user_name_key, external_id, display_name_key, active, doc, created, last_modified, version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Inserts a new user (its row and its email index) and says whether a group already lists it
/// by its externalId, so that the allocator must run for it.
fn insert(c: &Db, tenant: TenantKey, id: &str, doc: &Doc, meta: &Meta) -> Result<bool> {
    type Insert = fn(&Db, TenantKey, &str, &Doc, &Meta) -> Result<bool>;
    c.twin(insert_sqlite as Insert, insert_postgres)(c, tenant, id, doc, meta)
}

/// [`insert`] on SQLite: the row, then its emails, then whether a group lists it.
fn insert_sqlite(c: &Db, tenant: TenantKey, id: &str, doc: &Doc, meta: &Meta) -> Result<bool> {
    let f = user_fields(doc);
    f.check()?;
    save(c, tenant, None, id, doc, meta)?;
    runs::listed(c, tenant, f.external_id.as_deref())
}

/// [`insert`] on PostgreSQL, where each statement is a round trip: all of it one statement.
fn insert_postgres(c: &Db, tenant: TenantKey, id: &str, doc: &Doc, meta: &Meta) -> Result<bool> {
    let f = user_fields(doc);
    f.check()?;
    let key = fold(&f.user_name);
    let text = Value::Object(doc.clone()).to_string();
    let display_key = f.display_name.as_deref().map(fold);
    let emails = Value::from(f.emails.clone()).to_string();
    // The externalId is checked in the same statement: a taken one inserts nothing.
    let (external_taken, listed): (bool, bool) = c
        .prepare_cached(
            "WITH x AS (SELECT CAST(?1 AS text) IS NOT NULL
                          AND EXISTS (SELECT 1 FROM users WHERE tenant = ?2 AND external_id = CAST(?1 AS text)) AS taken),
                  u AS (INSERT INTO users (tenant, id, user_name, user_name_key, external_id, display_name_key, active, doc, created, last_modified, version)
                        SELECT ?2, ?3, ?4, ?5, ?1, ?6, CAST(?7 AS boolean), ?8, ?9, ?10, CAST(?11 AS bigint) FROM x WHERE NOT x.taken
                        RETURNING rk),
                  e AS (INSERT INTO user_emails (user_rk, tenant, value_key)
                        SELECT u.rk, ?2, v FROM u, json_array_elements_text(CAST(CAST(?12 AS text) AS json)) AS v ON CONFLICT DO NOTHING)
             SELECT x.taken, EXISTS (SELECT 1 FROM group_members WHERE tenant = ?2 AND member_id = CAST(?1 AS text)) FROM x",
        )?
        .query_row(
            params![f.external_id, tenant, id, f.user_name, key, display_key, f.active, text, meta.created, meta.last_modified, meta.version, emails],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| if is_unique_violation(&e) { taken(&f.user_name) } else { e })?;
    if external_taken {
        return Err(external_id_taken(
            f.external_id.as_deref().unwrap_or_default(),
        ));
    }
    Ok(listed)
}

/// The conflict of an externalId another user of the tenant has.
fn external_id_taken(external_id: &str) -> Error {
    Error::Conflict(format!("a user with externalId {external_id:?} exists"))
}

/// Writes a user's columns and email index; `rk` is None for a new user.
fn save(
    c: &Db,
    tenant: TenantKey,
    rk: Option<i64>,
    id: &str,
    doc: &Doc,
    meta: &Meta,
) -> Result<i64> {
    let f = user_fields(doc);
    f.check()?;
    let key = fold(&f.user_name);
    // A new user's name is checked by the unique index alone (the insert fails, answered as
    // taken); a renamed user's first, as an update that collides would be.
    if rk.is_some() {
        let clash: Option<i64> = c
            .prepare_cached("SELECT rk FROM users WHERE tenant = ? AND user_name_key = ?")?
            .query_row(params![tenant, key], |r| r.get(0))
            .optional()?;
        if clash.is_some() && clash != rk {
            return Err(taken(&f.user_name));
        }
    }
    // externalId is unique per tenant where given (as a group's is).
    if let Some(e) = f.external_id.as_deref() {
        let taken_by_other: bool = c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM users WHERE tenant = ? AND external_id = ? AND rk <> ?)",
            )?
            .query_row(params![tenant, e, rk.unwrap_or(-1)], |r| r.get(0))?;
        if taken_by_other {
            return Err(external_id_taken(e));
        }
    }
    let text = Value::Object(doc.clone()).to_string();
    let display_key = f.display_name.as_deref().map(fold);
    let rk = match rk {
        None => {
            // The new key comes back with the insert.
            c.prepare_cached(&format!("{INSERT_USER} RETURNING rk"))?
                .query_row(
                    params![
                        tenant,
                        id,
                        f.user_name,
                        key,
                        f.external_id,
                        display_key,
                        f.active,
                        text,
                        meta.created,
                        meta.last_modified,
                        meta.version
                    ],
                    |r| r.get(0),
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        taken(&f.user_name)
                    } else {
                        e
                    }
                })?
        }
        Some(rk) => {
            c.prepare_cached(
                "UPDATE users SET user_name = ?, user_name_key = ?, external_id = ?, display_name_key = ?, active = ?, doc = ?,
                 last_modified = ?, version = ? WHERE rk = ?",
            )?
            .execute(params![f.user_name, key, f.external_id, display_key, f.active, text, meta.last_modified, meta.version, rk])
            .map_err(|e| if is_unique_violation(&e) { taken(&f.user_name) } else { e })?;
            c.prepare_cached("DELETE FROM user_emails WHERE user_rk = ?")?
                .execute([rk])?;
            rk
        }
    };
    // Every address in one statement (one round trip on PostgreSQL); a user has a few.
    for chunk in f.emails.chunks(EMAILS_PER_INSERT) {
        let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let mut args: Vec<&dyn crate::store::engine::sql::Param> =
            Vec::with_capacity(3 * chunk.len());
        for e in chunk {
            args.extend([&rk as &dyn crate::store::engine::sql::Param, &tenant, e]);
        }
        c.prepare_cached(&format!(
            "INSERT INTO user_emails (user_rk, tenant, value_key) VALUES {rows} ON CONFLICT DO NOTHING"
        ))?
        .execute(args.as_slice())?;
    }
    Ok(rk)
}

/// Replaces a stored user's document, bumping its version, and re-allocates the user's seats;
/// a no-op when nothing changed.
fn update(c: &Db, tenant: TenantKey, at: Millis, mut row: Loaded, doc: Doc) -> Result<UserRecord> {
    if doc != row.doc {
        row.meta.version += 1;
        row.meta.last_modified = rfc3339(at);
        save(c, tenant, Some(row.rk), &row.id, &doc, &row.meta)?;
        row.doc = doc;
        runs::user_changed(c, tenant, at, &row.id, &[], Cause::Directory)?;
    }
    record(c, tenant, row)
}

/// A user by id with its group references, as answered: on PostgreSQL in one statement.
fn find(c: &Db, tenant: TenantKey, id: &str) -> Result<UserRecord> {
    let row = load(c, tenant, id)?;
    record(c, tenant, row)
}

/// Creates user `doc` at `at`: its row, its email index, and its seats when a group already
/// lists it by externalId.
pub(in crate::store) fn create_one(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    doc: Doc,
) -> Result<UserRecord> {
    let (id, meta) = new_resource(at);
    if insert(c, tenant, &id, &doc, &meta)? {
        runs::user_changed(c, tenant, at, &id, &[], Cause::Directory)?;
    }
    // A new id is in no group yet (members name users by id, and this one was just made), so
    // there are no group references to read.
    Ok(UserRecord {
        id,
        doc,
        meta,
        groups: Vec::new(),
    })
}

impl Store {
    pub async fn create_user(&self, tenant: TenantKey, doc: Doc) -> Result<UserRecord> {
        let ticker = self.ticker();
        // A job of its own kind, which an engine that batches may merge with the creates
        // waiting beside it into one statement (`creates`); run again when the database gives
        // it up for contention, as any write job (`Store::submit`).
        let mut attempt = 1;
        loop {
            let (job, rx) =
                crate::store::directory::creates::Create::new(tenant, doc.clone(), ticker.clone());
            self.queue_job(Some(tenant), Box::new(job)).await?;
            match rx.await.map_err(|_| Error::Closed)? {
                Err(e) if e.contention() => self.again_after(attempt, e).await?,
                answer => return answer,
            }
            attempt += 1;
        }
    }

    pub async fn get_user(&self, tenant: TenantKey, id: String) -> Result<UserRecord> {
        // A point read (the user's row and its group references): inline, see `read_now`; on
        // PostgreSQL one statement on this thread's connection (`engine::postgres_point`).
        if let Some(p) = self.point() {
            let sql = format!(
                "SELECT {COLS}{POSTGRES_GROUPS_COLUMN} FROM users r WHERE r.tenant = ? AND r.id = ?"
            );
            let found = p
                .query(&sql, params![tenant, id], |r| {
                    crate::store::directory::filters::listed(r, true)
                })
                .await?;
            let listed = found
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound(format!("User {id:?}")))?;
            return from_listed(None, tenant, listed);
        }
        self.read_point(move |c| find(c, tenant, &id)).await
    }

    pub async fn replace_user(
        &self,
        tenant: TenantKey,
        id: String,
        doc: Doc,
        if_match: Option<String>,
    ) -> Result<UserRecord> {
        self.change_user(tenant, id, if_match, move |_| Ok(doc.clone()))
            .await
    }

    pub async fn patch_user(
        &self,
        tenant: TenantKey,
        id: String,
        ops: Vec<PatchOp>,
        if_match: Option<String>,
    ) -> Result<UserRecord> {
        self.change_user(tenant, id, if_match, move |mut doc| {
            patch::apply(ResourceKind::User, &mut doc, &ops)?;
            Ok(doc)
        })
        .await
    }

    /// Replaces user `id`'s document with what `change` makes of it, when `if_match` (if
    /// given) matches its version.
    async fn change_user(
        &self,
        tenant: TenantKey,
        id: String,
        if_match: Option<String>,
        change: impl Fn(Doc) -> Result<Doc> + Send + 'static,
    ) -> Result<UserRecord> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let row = load_matching(c, ResourceKind::User, tenant, &id, if_match.as_deref())?;
            let doc = change(row.doc.clone())?;
            update(c, tenant, at, row, doc)
        })
        .await
    }

    /// Deletes a user and removes it from every group.
    pub async fn delete_user(
        &self,
        tenant: TenantKey,
        id: String,
        if_match: Option<String>,
    ) -> Result<()> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let row = load_matching(c, ResourceKind::User, tenant, &id, if_match.as_deref())?;
            let mut view = tx_seats::TxSeats::new(c, tenant);
            let licenses = crate::alloc::SeatStore::seat_licenses(&mut view, &id)?;
            crate::store::directory::groups::drop_memberships_of(c, tenant, at, &id)?;
            c.prepare_cached("DELETE FROM users WHERE rk = ?")?
                .execute([row.rk])?;
            runs::allocate(c, tenant, at, |a| {
                for l in licenses {
                    a.reevaluate(l, std::slice::from_ref(&id), Cause::UserDeleted, false)?;
                }
                Ok(())
            })?;
            Ok(())
        })
        .await
    }

    pub async fn list_users(&self, tenant: TenantKey, q: ListQuery) -> Result<Page<UserRecord>> {
        let expensive = crate::store::directory::filters::is_scan(ResourceKind::User, &q);
        let q_is_point = q
            .filter
            .as_ref()
            .is_some_and(|f| crate::store::directory::filters::is_point(ResourceKind::User, f));
        if let Some(p) = self.point().filter(|_| q_is_point) {
            let point = crate::store::directory::filters::point_statement(
                true,
                tenant,
                ResourceKind::User,
                &q,
            );
            if let Some((sql, args, with)) = point {
                let args = crate::store::directory::filters::arg_refs(&args);
                let found = p
                    .query(&sql, &args, |r| {
                        crate::store::directory::filters::listed(r, with)
                    })
                    .await?;
                let page = crate::store::directory::filters::point_page(found, &q);
                let items = page.items.into_iter().map(|l| from_listed(None, tenant, l));
                return Ok(Page {
                    total: page.total,
                    items: items.collect::<Result<_>>()?,
                });
            }
        }
        let list = move |c: &Db| {
            let page = crate::store::directory::filters::list(c, tenant, ResourceKind::User, &q)?;
            let items = page
                .items
                .into_iter()
                .map(|l| from_listed(Some(c), tenant, l));
            Ok(Page {
                total: page.total,
                items: items.collect::<Result<_>>()?,
            })
        };
        if q_is_point {
            // `userName eq` is how every provider looks a user up before it writes: one index
            // lookup, answered on this thread rather than handed to a blocking one.
            self.read_point(list).await
        } else if expensive {
            self.read_expensive(tenant, list).await
        } else {
            self.read(list).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_columns_read_as_group_references_in_name_order() {
        let column = vec![
            "g3 sales team".to_owned(),
            "g2  Admins".to_owned(),
            "g1 Sales Team".to_owned(),
            "g4 ".to_owned(),
        ];
        let refs: Vec<(String, String)> = from_column(column)
            .unwrap()
            .into_iter()
            .map(|g| (g.id, g.display))
            .collect();
        let expect = [
            ("g4", ""),
            ("g2", " Admins"),
            ("g1", "Sales Team"),
            ("g3", "sales team"),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(i, d)| ((*i).to_owned(), (*d).to_owned()))
            .collect();
        assert_eq!(refs, expect);
        assert!(from_column(vec!["no-name".to_owned()]).is_err());
    }
}
