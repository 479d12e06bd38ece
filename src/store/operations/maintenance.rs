//! Operator maintenance: online backup, restore, and `check` (SQLite integrity plus an audit of
//! the seat invariant and counters of every license).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::store::engine::sql::Db;
use serde::Serialize;

use crate::store::{Error, Result, Store};

fn copy(from: &Connection, to: &Path) -> Result<()> {
    // The copy holds every tenant's directory and token hashes: readable by its owner only
    // (made so before SQLite writes to it; its journal takes the same mode).
    let mut new = std::fs::OpenOptions::new();
    new.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut new, 0o600);
    new.open(to)
        .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", to.display())))?;
    let mut dst = Connection::open(to)?;
    let backup = rusqlite::backup::Backup::new(from, &mut dst)?;
    backup.run_to_completion(256, std::time::Duration::from_millis(5), None)?;
    Ok(())
}

/// One thing `check` found wrong.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// `integrity`, `foreign_keys`, `counters`, `invariant`, `waitlist`, `group_twins` or
    /// `user_twins`.
    pub kind: &'static str,
    /// The license's id, for a license's problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The license's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub detail: String,
}

impl Problem {
    fn of_database(kind: &'static str, detail: String) -> Problem {
        Problem {
            kind,
            license: None,
            name: None,
            detail,
        }
    }
}

/// Problems found in a database: integrity, foreign keys, seat counters, the seat invariant.
pub(in crate::store) fn audit(c: &Db) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    if c.sqlite().is_some() {
        sqlite_integrity(c, &mut problems)?;
    }
    license_audit(c, &mut problems)?;
    group_twins(c, &mut problems)?;
    Ok(problems)
}

/// Groups that share an externalId, or a displayName in a tenant whose group names are unique
/// (a database from before names were kept unique may hold them): a selector by that name
/// could mean either. Rename or delete one of each pair at the identity provider.
fn group_twins(c: &Db, problems: &mut Vec<Problem>) -> Result<()> {
    let mut st = c.prepare(
        "SELECT t.name, 'displayName', min(g.display_name), count(*) FROM groups g JOIN tenants t ON t.rk = g.tenant
         WHERE t.group_names_unique GROUP BY t.name, g.display_name_key HAVING count(*) > 1
         UNION ALL
         SELECT t.name, 'externalId', min(g.external_id), count(*) FROM groups g JOIN tenants t ON t.rk = g.tenant
         WHERE g.external_id IS NOT NULL GROUP BY t.name, g.external_id HAVING count(*) > 1
         ORDER BY 1, 2, 3",
    )?;
    let twins = st.query_all([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for (tenant, what, value, n) in twins {
        problems.push(Problem::of_database(
            "group_twins",
            format!("tenant {tenant:?}: {n} groups share the {what} {value:?}"),
        ));
    }
    // Users that share an externalId (a database from before it was kept unique).
    let mut st = c.prepare(
        "SELECT t.name, min(u.external_id), count(*) FROM users u JOIN tenants t ON t.rk = u.tenant
         WHERE u.external_id IS NOT NULL GROUP BY t.name, u.external_id HAVING count(*) > 1 ORDER BY 1, 2",
    )?;
    let twins = st.query_all([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for (tenant, value, n) in twins {
        problems.push(Problem::of_database(
            "user_twins",
            format!("tenant {tenant:?}: {n} users share the externalId {value:?}"),
        ));
    }
    Ok(())
}

/// SQLite's own checks: the file's integrity and its foreign keys (PostgreSQL enforces both).
fn sqlite_integrity(c: &Db, problems: &mut Vec<Problem>) -> Result<()> {
    let integrity: Vec<String> = c
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_>>()?;
    if integrity != ["ok"] {
        problems.extend(
            integrity
                .into_iter()
                .map(|line| Problem::of_database("integrity", line)),
        );
    }
    let fk: i64 = c
        .prepare("PRAGMA foreign_key_check")?
        .query_map([], |_| Ok(()))?
        .count() as i64;
    if fk > 0 {
        problems.push(Problem::of_database(
            "foreign_keys",
            format!("{fk} rows violate a foreign key"),
        ));
    }
    Ok(())
}

/// Every license's stored counters against its seat rows, the seat invariant and the waitlist.
pub(in crate::store) fn license_audit(c: &Db, problems: &mut Vec<Problem>) -> Result<()> {
    let mut st = c.prepare(
        "SELECT l.id, l.name, l.seats, l.on_capacity_lowered, l.granted, l.releasing, l.blocked, l.auto_promote,
                (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.state = 'granted'),
                (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.state = 'releasing'),
                (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.state = 'blocked'),
                (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.hold IS NOT NULL),
                l.overage, l.overage_percent, l.rk
         FROM licenses l ORDER BY l.rk",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            [r.get::<_, i64>(4)?, r.get(5)?, r.get(6)?],
            [r.get::<_, i64>(8)?, r.get(9)?, r.get(10)?],
            r.get::<_, bool>(7)?,
            r.get::<_, i64>(11)?,
            (r.get::<_, i64>(12)?, r.get::<_, i64>(13)?),
            r.get::<_, i64>(14)?,
        ))
    })?;
    for row in rows {
        let (id, name, seats, policy, kept, actual, auto_promote, held, (overage, percent), l) =
            row?;
        // The allocator grants up to the seat count plus the agreed overage.
        let seats = seats + crate::capacity::overage_seats(seats, overage, percent);
        let problem = |kind, detail| Problem {
            kind,
            license: Some(id.clone()),
            name: Some(name.clone()),
            detail,
        };
        if kept != actual {
            problems.push(problem(
                "counters",
                format!("stored granted/releasing/blocked {kept:?}, rows say {actual:?}"),
            ));
        }
        let in_use = actual[0] + actual[1];
        // Under `keep`, use above the count is legitimate after a lowering. Under
        // `block_newest` the granted seats are brought under it, but not the seats inside
        // their grace or held by the circuit breaker, which end by themselves or by a decision.
        let evictable = actual[0] - held;
        if evictable > seats
            && crate::alloc::OnLowered::parse(&policy) == Some(crate::alloc::OnLowered::BlockNewest)
        {
            problems.push(problem(
                "invariant",
                format!("{evictable} seats granted (and not held) of {seats} under block_newest"),
            ));
        }
        let rules = crate::store::allocation::tx_seats::pool_rules(c, l)?;
        if !rules.is_empty() {
            // With reservations or ceilings: no one waits whose group has room.
            let counts = crate::store::allocation::license_view::pool_counts(c, l)?;
            let used = counts.iter().map(|(g, (u, _))| (g.clone(), *u)).collect();
            for (g, (_, waiting)) in &counts {
                let room = crate::alloc::room(seats, &rules, in_use, &used, Some(g));
                if *waiting > 0 && room > 0 && auto_promote {
                    problems.push(problem(
                        "waitlist",
                        format!("{waiting} of group {g} waiting while it has room for {room}"),
                    ));
                }
            }
        } else if in_use < seats && actual[2] > 0 && auto_promote {
            problems.push(problem(
                "waitlist",
                format!(
                    "{} waiting while {in_use} of {seats} seats are in use",
                    actual[2]
                ),
            ));
        }
    }
    // Holds: each one's count of held seats agrees with the seats it holds, which are granted.
    let mut st = c.prepare(
        "SELECT l.id, l.name, h.rk, h.held,
                (SELECT count(*) FROM seats s WHERE s.license_rk = h.license_rk AND s.hold = h.rk),
                (SELECT count(*) FROM seats s WHERE s.license_rk = h.license_rk AND s.hold = h.rk AND s.state <> 'granted')
         FROM holds h JOIN licenses l ON l.rk = h.license_rk ORDER BY h.rk",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            [r.get::<_, i64>(3)?, r.get(4)?, r.get(5)?],
        ))
    })?;
    for row in rows {
        let (id, name, hold, [kept, actual, not_granted]) = row?;
        if kept != actual || not_granted > 0 {
            problems.push(Problem {
                kind: "holds",
                license: Some(id),
                name: Some(name),
                detail: format!(
                    "hold {hold} counts {kept} held seats, rows say {actual} ({not_granted} not granted)"
                ),
            });
        }
    }
    Ok(())
}

impl Store {
    /// Writes a consistent copy of the live database to `to` (SQLite online backup; the daemon
    /// keeps serving).
    pub async fn backup(&self, to: std::path::PathBuf) -> Result<()> {
        if to.exists() {
            return Err(Error::Invalid(format!(
                "{} exists; choose a new file",
                to.display()
            )));
        }
        self.read(move |c| match c.sqlite() {
            Some(c) => copy(c, &to),
            None => Err(Error::Invalid(
                "backup copies a SQLite database; back PostgreSQL up with pg_dump or PITR".into(),
            )),
        })
        .await
    }

    /// (tenant, license, [capacity, granted, releasing, blocked, held]) of every license, for
    /// metrics.
    pub async fn license_gauges(&self) -> Result<Vec<(String, String, [i64; 5])>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.name, l.name, l.seats, l.granted, l.releasing, l.blocked,
                        (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.hold IS NOT NULL)
                 FROM licenses l JOIN tenants t ON t.rk = l.tenant ORDER BY t.name, l.name",
            )?;
            st
                .query_all([], |r| Ok((r.get(0)?, r.get(1)?, [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?])))
        })
        .await
    }

    /// Per selected group of every license with reservations or ceilings: (tenant, license,
    /// group, [in use, waiting, reserve, max or -1]), for `/metrics`.
    pub async fn group_gauges(&self) -> Result<Vec<(String, String, String, [i64; 4])>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.name, l.name, l.rk FROM licenses l JOIN tenants t ON t.rk = l.tenant
                 WHERE EXISTS (SELECT 1 FROM license_groups lg WHERE lg.license_rk = l.rk AND (lg.reserve > 0 OR lg.max_seats IS NOT NULL))
                 ORDER BY t.name, l.name",
            )?;
            let licenses = st
                .query_all([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
            let mut out = Vec::new();
            for (tenant, license, l) in licenses {
                for g in crate::store::allocation::license_view::view(c, l)?.groups {
                    let name = g.group_name.clone().unwrap_or_else(|| g.selector.parts().1.to_owned());
                    out.push((
                        tenant.clone(),
                        license.clone(),
                        name,
                        [g.in_use.unwrap_or(0), g.waiting.unwrap_or(0), g.reserve, g.max.unwrap_or(-1)],
                    ));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Integrity and invariant audit; an empty list means healthy.
    pub async fn check(&self) -> Result<Vec<Problem>> {
        self.read(audit).await
    }
}

/// Restores `database` from the backup `from` (the daemon must be stopped): the backup is
/// checked first, and the current file is kept beside it as `<database>.before-restore`.
/// The mark a serving daemon holds on its SQLite database: a shared lock on `<file>-serving.lock`
/// for as long as it runs (the operating system drops it when the process ends, however it
/// ends). Commands that must not run under a daemon (`transfer`, `restore`) take it exclusively.
pub struct Serving(#[allow(dead_code)] std::fs::File);

fn serving_lock_file(database: &Path) -> Result<std::fs::File> {
    let mut name = database.as_os_str().to_owned();
    name.push("-serving.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::path::PathBuf::from(name))
        .map_err(|e| {
            Error::Invalid(format!(
                "cannot open the serving lock of {}: {e}",
                database.display()
            ))
        })
}

/// Marks `database` (a SQLite file) as served by this process until the answer is dropped.
pub fn serving(database: &Path) -> Result<Serving> {
    let f = serving_lock_file(database)?;
    f.lock_shared()
        .map_err(|e| Error::Invalid(format!("cannot lock {}: {e}", database.display())))?;
    Ok(Serving(f))
}

/// Refuses `database` while a daemon serves it; answers a guard that keeps daemons from
/// starting on it meanwhile.
pub fn not_served(database: &Path) -> Result<Serving> {
    let f = serving_lock_file(database)?;
    match f.try_lock() {
        Ok(()) => Ok(Serving(f)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
            "a running seatkeeper serves {}: stop it first (it may still be writing)",
            database.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Invalid(format!(
            "cannot lock {}: {e}",
            database.display()
        ))),
    }
}

pub fn restore(from: &Path, database: &Path) -> Result<()> {
    let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let problems = audit(&Db::Sqlite(&src))?;
    if !problems.is_empty() {
        return Err(Error::Invalid(format!(
            "the backup fails its check: {}",
            serde_json::to_string(&problems).unwrap_or_default()
        )));
    }
    let version: i64 = src.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 || version > crate::store::engine::migrate::CURRENT {
        return Err(Error::Invalid(format!(
            "{} is not a seatkeeper database this version can use",
            from.display()
        )));
    }
    if database.exists() {
        let aside = database.with_extension("db.before-restore");
        std::fs::rename(database, &aside)
            .map_err(|e| Error::Invalid(format!("cannot move the current database aside: {e}")))?;
        for ext in ["-wal", "-shm"] {
            let side = std::path::PathBuf::from(format!("{}{ext}", database.display()));
            let _ = std::fs::remove_file(side);
        }
    }
    copy(&src, database)
}

/// The tables whose statistics steer the plans of the write path (see
/// [`Store::keep_statistics`]).
const PLANNED_TABLES: [&str; 8] = [
    "users",
    "groups",
    "group_members",
    "seats",
    "overrides",
    "license_groups",
    "seat_events",
    "outbox_items",
];

impl Store {
    /// On PostgreSQL, analyzes each of the write path's tables that grew by more than a fifth
    /// (and 500 rows) since its statistics were taken, or was never analyzed; returns the
    /// tables analyzed. Growth is what misleads the planner (rows updated in place, as a sync's
    /// renames and deactivations, leave its estimates right, and analyzing 100,000 users costs
    /// a third of a second). Autovacuum does the same, but looks at a database once a minute: a fresh
    /// tenant's first sync grows `users`, `group_members` and `seats` a hundredfold in that
    /// minute, and until they are analyzed the planner takes them for the few rows they had,
    /// scanning a whole table where an index finds a row (the multi-second stalls of a member
    /// sync). Run every few seconds by every node; the check is one read of the statistics
    /// views. SQLite plans without them: nothing to do.
    pub async fn keep_statistics(&self) -> Result<Vec<String>> {
        if self.inner.pg.is_none() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let names = PLANNED_TABLES.map(|t| format!("'{t}'")).join(", ");
            let stale = crate::store::engine::sql::strings(
                c,
                &format!(
                    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class k ON k.oid = s.relid
                     WHERE s.schemaname = current_schema() AND s.relname IN ({names})
                       AND s.n_live_tup > 500
                       AND (k.reltuples < 0 OR s.n_live_tup > 1.2 * k.reltuples + 500)
                     ORDER BY s.relname"
                ),
                [],
            )?;
            for t in &stale {
                // Names from the fixed list above only.
                if PLANNED_TABLES.contains(&t.as_str()) {
                    c.execute_batch(&format!("ANALYZE {t}"))?;
                }
            }
            Ok(stale)
        })
        .await
    }
}
