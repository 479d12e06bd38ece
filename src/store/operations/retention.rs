//! Retention: the history tables do not grow without end. Seat events, finished webhook
//! deliveries (and the events no delivery needs any more) and finished notification emails older
//! than their retention are deleted by the reconciler's pass, in slices of [`SLICE`] rows, each
//! slice a short transaction of its own so that no write waits long behind it. With several
//! nodes on PostgreSQL one node prunes at a time (each slice takes a transaction-level advisory
//! lock with `pg_try_advisory_xact_lock`; a node that does not get it leaves the work to the one
//! that has it). The audit log is kept unless `audit_retention_days` is set; then an entry older
//! than that is pruned only once a whole export of its chain held it, and the chain stays
//! verifiable: the hash of the newest pruned entry is kept (`audit_retention.pruned_hash`), and
//! the first kept entry must link to it.

use crate::alloc::Millis;
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::{Lock, Result, Store};

/// Rows one slice deletes at most.
pub const SLICE: i64 = 5_000;

/// The advisory lock key of the pruning (no tenant's key is negative).
const PRUNE_LOCK: i64 = -2;

const DAY_MS: Millis = 86_400_000;

/// How long each kind of history is kept, in days (`0`: kept forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub seat_events_days: u32,
    pub webhook_days: u32,
    pub mail_days: u32,
    /// 0: the audit log is kept forever.
    pub audit_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            seat_events_days: 180,
            webhook_days: 180,
            mail_days: 90,
            audit_days: 0,
        }
    }
}

/// Rows deleted by one pass, per table (metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub seat_events: u64,
    pub webhook_deliveries: u64,
    pub webhook_events: u64,
    pub outbox: u64,
    pub audit: u64,
}

/// The statements of one slice, each deleting at most [`SLICE`] rows older than `?1`.
const STATEMENTS: [(&str, &str); 4] = [
    (
        "seat_events",
        "DELETE FROM seat_events WHERE seq IN (SELECT seq FROM seat_events WHERE at < ?1 ORDER BY seq LIMIT ?2)",
    ),
    (
        "webhook_deliveries",
        "DELETE FROM webhook_deliveries WHERE (webhook, event) IN (
           SELECT webhook, event FROM webhook_deliveries WHERE state <> 'pending' AND done < ?1 LIMIT ?2)",
    ),
    (
        "webhook_events",
        "DELETE FROM webhook_events WHERE seq IN (
           SELECT seq FROM webhook_events e WHERE at < ?1
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event = e.seq) LIMIT ?2)",
    ),
    (
        "outbox",
        // A failed message is not finished: it stays until retried or dismissed (an operator's
        // failed copy, which no tenant admin sees, goes with the rest).
        "DELETE FROM outbox WHERE id IN (
           SELECT id FROM outbox WHERE (state IN ('sent', 'skipped', 'dismissed', 'combined') OR (copy_of IS NOT NULL AND state = 'failed'))
             AND created < ?1 LIMIT ?2)",
    ),
];

impl Store {
    /// One pruning pass at `now` under `retention`: slice after slice until nothing is left.
    pub async fn prune_history(&self, now: Millis, retention: Retention) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        for (table, sql) in STATEMENTS {
            let days = match table {
                "seat_events" => retention.seat_events_days,
                "outbox" => retention.mail_days,
                _ => retention.webhook_days,
            };
            if days == 0 {
                continue;
            }
            let cutoff = now - i64::from(days) * DAY_MS;
            loop {
                let n = self
                    .write(Lock::None, move |c| {
                        if !crate::store::engine::dialect::only_one_node(c, PRUNE_LOCK)? {
                            return Ok(None);
                        }
                        Ok(Some(c.execute(sql, params![cutoff, SLICE])?))
                    })
                    .await?;
                let Some(n) = n else {
                    // Another node prunes now.
                    return Ok(pruned);
                };
                let n = n as u64;
                match table {
                    "seat_events" => pruned.seat_events += n,
                    "webhook_deliveries" => pruned.webhook_deliveries += n,
                    "webhook_events" => pruned.webhook_events += n,
                    _ => pruned.outbox += n,
                }
                if n < SLICE as u64 {
                    break;
                }
            }
        }
        if retention.audit_days > 0 {
            let cutoff = now - i64::from(retention.audit_days) * DAY_MS;
            loop {
                let n = self
                    .write(Lock::None, move |c| {
                        if !crate::store::engine::dialect::only_one_node(c, PRUNE_LOCK)? {
                            return Ok(None);
                        }
                        prune_audit_slice(c, cutoff).map(Some)
                    })
                    .await?;
                let Some(n) = n else {
                    return Ok(pruned);
                };
                pruned.audit += n;
                if n < SLICE as u64 {
                    break;
                }
            }
        }
        Ok(pruned)
    }
}

/// One slice of audit pruning: the oldest entries (at most [`SLICE`]) older than `cutoff` that
/// a whole export held, a prefix of each chain; the newest pruned entry's hash is kept first so
/// that the chain still verifies from there. Answers the entries deleted.
fn prune_audit_slice(c: &Db, cutoff: Millis) -> Result<u64> {
    let heads: Vec<(i64, i64)> = c
        .prepare_cached(
            "SELECT tenant, max(seq) FROM (
               SELECT a.tenant, a.seq FROM audit a JOIN audit_retention r ON r.tenant = a.tenant
               WHERE a.at < ?1 AND a.seq <= r.exported_through ORDER BY a.seq LIMIT ?2) t
             GROUP BY tenant",
        )?
        .query_all(params![cutoff, SLICE], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut deleted = 0;
    for (tenant, through) in heads {
        let hash: Option<String> = c
            .prepare_cached("SELECT hash FROM audit WHERE tenant = ? AND seq = ?")?
            .query_row(params![tenant, through], |r| r.get(0))
            .optional()?
            .flatten();
        c.prepare_cached(
            "UPDATE audit_retention SET pruned_through = ?, pruned_hash = coalesce(?, pruned_hash) WHERE tenant = ?",
        )?
        .execute(params![through, hash, tenant])?;
        deleted += c
            .prepare_cached("DELETE FROM audit WHERE tenant = ? AND seq <= ?")?
            .execute(params![tenant, through])? as u64;
    }
    Ok(deleted)
}
