//! User creates as write jobs of their own kind, on both engines; merged on PostgreSQL. An identity provider's first sync is a stream of
//! `POST /Users`, many at a time; a tenant's writes run one after another under its lock
//! (`engine::postgres_batch`), so written one statement each they cost a round trip and a statement's
//! overhead apiece, and the tenant's lock holder, not the machine, sets the rate. Instead the
//! creates of one tenant waiting side by side in a batch are written by **one** statement
//! ([`insert_merged_postgres`]): their rows, their email index and the check whether a group already
//! lists them by externalId. The answers are those of one create at a time:
//! - a userName already stored, or taken by a create earlier in the same statement, is answered
//!   as taken (`ON CONFLICT DO NOTHING`, then a missing row is a conflict), so the first of two
//!   creates of one name wins, as when they run one by one;
//! - a user a group already lists runs the allocator, in the order of the requests;
//! - any other failure rolls the statement back (its savepoint) and the creates run again one by
//!   one, each in its own savepoint, so a bad one fails alone.
//!
//! On SQLite a create is one job of the writer's batch ([`Create`] runs as any job): SQLite
//! statements cost no round trip, and the writer already commits creates in batches.

use serde_json::Value;
use tokio::sync::oneshot;

use crate::alloc::Cause;
use crate::scim::resource::{fold, user_fields, Doc};
use crate::store::allocation::runs;
use crate::store::directory::users::{self, UserRecord};
use crate::store::engine::jobs::{settle, Job, Merge, Mode, NotCommitted};
use crate::store::engine::sql::{Db, Param};
use crate::store::{Error, Result, TenantKey, Ticker};

/// Most creates one statement writes (twelve parameters each).
pub(in crate::store) const MERGED_MAX: usize = 64;

/// A user create waiting for its tenant's batch.
pub(in crate::store) struct Create {
    tenant: TenantKey,
    doc: Doc,
    ticker: Ticker,
    result: Option<Result<UserRecord>>,
    reply: oneshot::Sender<Result<UserRecord>>,
}

impl Create {
    pub(in crate::store) fn new(
        tenant: TenantKey,
        doc: Doc,
        ticker: Ticker,
    ) -> (Create, oneshot::Receiver<Result<UserRecord>>) {
        let (reply, rx) = oneshot::channel();
        let job = Create {
            tenant,
            doc,
            ticker,
            result: None,
            reply,
        };
        (job, rx)
    }
}

impl Job for Create {
    fn run(&mut self, conn: &Db) -> bool {
        let doc = std::mem::take(&mut self.doc);
        let (tenant, now) = (self.tenant, self.ticker.now());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            users::create_one(conn, tenant, now, doc)
        }))
        .unwrap_or_else(|_| Err(Error::Internal("a user create panicked".into())));
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }
    fn mode(&self) -> Mode {
        Mode::Batched
    }
    fn tenant(&self) -> Option<TenantKey> {
        Some(self.tenant)
    }
    fn finish(self: Box<Self>, commit: std::result::Result<(), NotCommitted>) {
        let _ = self.reply.send(settle(commit, self.result));
    }
    fn fail(self: Box<Self>, e: Error) {
        let _ = self.reply.send(Err(e));
    }
    fn merge(&self) -> Option<Merge> {
        Some(Merge {
            kind: "user create",
            max: MERGED_MAX,
            write: insert_merged_postgres,
        })
    }
    fn merge_part(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

/// One new user's row, as bound to the merged statement.
struct NewRow {
    at: crate::alloc::Millis,
    id: String,
    meta: crate::scim::resource::Meta,
    user_name: String,
    key: String,
    external_id: Option<String>,
    display_key: Option<String>,
    active: bool,
    text: String,
    emails: String,
}

/// The merged statement for `n` creates: the rows as a `VALUES` list, inserted in request
/// order with conflicts skipped; the inserted rows' emails; and for each inserted user whether
/// a group lists it by externalId.
fn merged_sql(n: usize) -> String {
    let row = "?, ?, ?, ?, ?, CAST(? AS boolean), ?, ?, ?, CAST(? AS bigint), ?)";
    let rows: Vec<String> = (0..n).map(|i| format!("({i}, {row}")).collect();
    format!(
        "WITH d (ord, id, user_name, user_name_key, external_id, display_name_key, active, doc, created, last_modified, version, emails)
              AS (VALUES {}),
              u AS (INSERT INTO users (tenant, id, user_name, user_name_key, external_id, display_name_key, active, doc, created, last_modified, version)
                    SELECT ?, id, user_name, user_name_key, external_id, display_name_key, active, doc, created, last_modified, version
                    FROM d WHERE d.external_id IS NULL
                      OR NOT EXISTS (SELECT 1 FROM users x WHERE x.tenant = ? AND x.external_id = d.external_id)
                    ORDER BY ord ON CONFLICT DO NOTHING RETURNING rk, id, external_id),
              e AS (INSERT INTO user_emails (user_rk, tenant, value_key)
                    SELECT u.rk, ?, x FROM u JOIN d ON d.id = u.id, json_array_elements_text(CAST(d.emails AS json)) AS x
                    ON CONFLICT DO NOTHING)
         SELECT u.id, EXISTS (SELECT 1 FROM group_members m WHERE m.tenant = ? AND m.member_id = u.external_id) FROM u",
        rows.join(", ")
    )
}

/// Writes the creates `jobs` (each a [`Create`], all of `tenant`) with one statement and sets
/// each one's answer. On an error nothing is answered: the caller rolls the statement back and
/// runs them one by one.
pub(in crate::store) fn insert_merged_postgres(
    c: &Db,
    tenant: TenantKey,
    jobs: &mut [Box<dyn Job>],
) -> Result<()> {
    let mut rows = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut() {
        let create = job
            .merge_part()
            .and_then(|p| p.downcast_mut::<Create>())
            .ok_or_else(|| Error::Internal("a merged create is not a create".into()))?;
        let at = create.ticker.now();
        let (id, meta) = crate::store::directory::rows::new_resource(at);
        let f = user_fields(&create.doc);
        // A create that must fail fails the unit: they run again one by one, and it alone fails.
        f.check()?;
        rows.push(NewRow {
            at,
            key: fold(&f.user_name),
            display_key: f.display_name.as_deref().map(fold),
            text: serde_json::to_string(&create.doc)
                .map_err(|e| Error::Internal(format!("a user is not JSON: {e}")))?,
            emails: Value::from(f.emails).to_string(),
            user_name: f.user_name,
            external_id: f.external_id,
            active: f.active,
            id,
            meta,
        });
    }
    let mut args: Vec<&dyn Param> = Vec::with_capacity(11 * rows.len() + 3);
    for r in &rows {
        args.extend([
            &r.id as &dyn Param,
            &r.user_name,
            &r.key,
            &r.external_id,
            &r.display_key,
            &r.active,
            &r.text,
            &r.meta.created,
            &r.meta.last_modified,
            &r.meta.version,
            &r.emails,
        ]);
    }
    // Two creates with one externalId: one by one, so that the second alone is refused.
    let mut external = std::collections::HashSet::new();
    if rows
        .iter()
        .filter_map(|r| r.external_id.as_deref())
        .any(|e| !external.insert(e))
    {
        return Err(Error::Conflict("two creates with one externalId".into()));
    }
    args.extend([&tenant as &dyn Param, &tenant, &tenant, &tenant]);
    let inserted: std::collections::HashMap<String, bool> = c
        .prepare_cached(&merged_sql(rows.len()))?
        .query_all(args.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?
        .into_iter()
        .collect();
    if inserted.len() < rows.len() {
        // A userName or externalId taken: one by one, so that each refusal says which.
        return Err(Error::Conflict("a merged create was refused".into()));
    }
    // The allocator for users a group already lists, in request order.
    for r in &rows {
        if inserted.get(&r.id) == Some(&true) {
            runs::user_changed(c, tenant, r.at, &r.id, &[], Cause::Directory)?;
        }
    }
    for (job, r) in jobs.iter_mut().zip(rows) {
        let Some(create) = job.merge_part().and_then(|p| p.downcast_mut::<Create>()) else {
            continue;
        };
        create.result = Some(Ok(UserRecord {
            id: r.id,
            doc: std::mem::take(&mut create.doc),
            meta: r.meta,
            groups: Vec::new(),
        }));
    }
    Ok(())
}
