//! Idle-seat reclaim: a license with `reclaim_idle_days` takes back a granted, unpinned seat
//! whose user has not used it for that long (by the product's usage reports; counted from the
//! grant when none was ever reported), through the normal path: the user gets an `idle`
//! override (not entitled, like an exclusion), the seat goes through the release grace, then
//! the waitlist moves up. A use reported later lifts the override: within the grace the seat is
//! kept; after it, the user queues again at the end of the waitlist. `reclaim_notice_days`
//! before, the recipients get one digest naming the seats about to go. Reclaims are seat events
//! with the cause `idle`, audited, and can be previewed ([`Store::reclaim_preview`]).

use std::collections::HashSet;

use serde::Serialize;
use serde_json::json;

use super::feed::audit;
use super::licenses::{license_key, view};
use super::outbox;
use super::seats::{allocate, allocate_reclaiming, rfc3339};
use super::sql::{params, Db};
use super::{Result, Store, TenantKey};
use crate::alloc::{Cause, LicenseKey, Millis};
use crate::notify::Kind;

const DAY_MS: Millis = 86_400_000;

/// A seat the reclaim will take, or would take.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdleSeat {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    #[serde(rename = "lastUsed")]
    pub last_used: Option<String>,
    /// When the seat is (or was due to be) reclaimed.
    #[serde(rename = "reclaimAt")]
    pub reclaim_at: String,
}

/// What the reclaim of one license would do now.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReclaimPreview {
    pub reclaim_idle_days: i64,
    pub reclaim_notice_days: i64,
    /// Reclaimed at the next pass.
    pub due: Vec<IdleSeat>,
    /// Reclaimed within the notice period unless used.
    pub soon: Vec<IdleSeat>,
}

/// Granted, unpinned seats of `l` idle since at or before `idle_before`, in user order.
fn idle_seats(
    c: &Db,
    l: LicenseKey,
    idle_before: Millis,
    idle_ms: Millis,
) -> Result<Vec<IdleSeat>> {
    let mut st = c.prepare_cached(
        // Idle since the later of the last reported use and the grant.
        "SELECT s.user_id, u.user_name, s.last_used, CASE WHEN s.last_used > s.since THEN s.last_used ELSE s.since END FROM seats s
         LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.user_id
         WHERE s.license_rk = ? AND s.state = 'granted' AND s.pinned = ?
           AND (CASE WHEN s.last_used > s.since THEN s.last_used ELSE s.since END) <= ?
         ORDER BY s.user_id",
    )?;
    let v = st
        .query_map(params![l, false, idle_before], |r| {
            let last_used: Option<i64> = r.get(2)?;
            let idle_since: i64 = r.get(3)?;
            Ok(IdleSeat {
                user_id: r.get(0)?,
                user_name: r.get(1)?,
                last_used: last_used.map(rfc3339),
                reclaim_at: rfc3339(idle_since + idle_ms),
            })
        })?
        .collect::<Result<Vec<_>>>()?;
    Ok(v)
}

/// The reclaim pass over a tenant's licenses (run by the reconciler): notices first, then the
/// seats whose time has come.
pub(super) fn reclaim_pass(c: &Db, tenant: TenantKey, at: Millis) -> Result<()> {
    let licenses: Vec<(LicenseKey, i64, i64)> = {
        let mut st = c.prepare_cached(
            "SELECT rk, reclaim_idle_days, reclaim_notice_days FROM licenses WHERE tenant = ? AND reclaim_idle_days > 0 ORDER BY rk",
        )?;
        let v = st
            .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>>>()?;
        v
    };
    for (l, idle_days, notice_days) in licenses {
        let idle_ms = idle_days * DAY_MS;
        let due = idle_seats(c, l, at - idle_ms, idle_ms)?;
        if !due.is_empty() {
            let users: Vec<String> = due.iter().map(|s| s.user_id.clone()).collect();
            let mut set = c.prepare_cached(
                "INSERT INTO overrides (license_rk, tenant, user_id, kind, created) VALUES (?, ?, ?, 'idle', ?)
                 ON CONFLICT (license_rk, user_id) DO UPDATE SET kind = 'idle', created = excluded.created",
            )?;
            for u in &users {
                set.execute(params![l, tenant, u, rfc3339(at)])?;
            }
            let idle: HashSet<String> = users.iter().cloned().collect();
            allocate_reclaiming(c, tenant, at, idle, |a| {
                a.reevaluate(l, &users, Cause::Directory, false)
            })?;
            let names: Vec<String> = due
                .iter()
                .map(|s| s.user_name.clone().unwrap_or_else(|| s.user_id.clone()))
                .collect();
            audit(
                c,
                tenant,
                at,
                "reclaimer",
                "seat.reclaim",
                json!({"license": view(c, l)?.id, "users": names, "idleDays": idle_days}),
            )?;
        }
        if notice_days > 0 {
            let soon: Vec<IdleSeat> =
                idle_seats(c, l, at - idle_ms + notice_days * DAY_MS, idle_ms)?;
            let mut unnoticed = c.prepare_cached(
                "UPDATE seats SET reclaim_noticed = ? WHERE license_rk = ? AND user_id = ? AND reclaim_noticed IS NULL",
            )?;
            let mut items = Vec::new();
            for s in soon {
                if unnoticed.execute(params![at, l, s.user_id])? == 1 {
                    items.push(json!({"userId": s.user_id, "userName": s.user_name,
                        "lastUsed": s.last_used, "reclaimAt": s.reclaim_at}));
                }
            }
            outbox::record(c, tenant, Kind::ReclaimNotice, l, at, items)?;
        }
    }
    Ok(())
}

/// A use reported for (`l`, `user`): an idle override goes, and the user is re-evaluated (the
/// seat kept within its grace; else queued again). Returns whether there was one.
pub(super) fn used(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    l: LicenseKey,
    user: &str,
) -> Result<bool> {
    let n = c
        .prepare_cached(
            "DELETE FROM overrides WHERE license_rk = ? AND user_id = ? AND kind = 'idle'",
        )?
        .execute(params![l, user])?;
    if n == 0 {
        return Ok(false);
    }
    let users = [user.to_owned()];
    allocate(c, tenant, at, |a| {
        a.reevaluate(l, &users, Cause::Directory, false)
    })?;
    Ok(true)
}

impl Store {
    /// What the idle-seat reclaim of a license would take now, and soon.
    pub async fn reclaim_preview(&self, tenant: TenantKey, key: String) -> Result<ReclaimPreview> {
        let now = self.now_ms();
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let (idle_days, notice_days): (i64, i64) = c
                .prepare_cached(
                    "SELECT reclaim_idle_days, reclaim_notice_days FROM licenses WHERE rk = ?",
                )?
                .query_row([l], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if idle_days == 0 {
                return Ok(ReclaimPreview {
                    reclaim_idle_days: 0,
                    reclaim_notice_days: notice_days,
                    due: Vec::new(),
                    soon: Vec::new(),
                });
            }
            let idle_ms = idle_days * DAY_MS;
            let due = idle_seats(c, l, now - idle_ms, idle_ms)?;
            let due_users: HashSet<String> = due.iter().map(|s| s.user_id.clone()).collect();
            let soon = idle_seats(c, l, now - idle_ms + notice_days.max(1) * DAY_MS, idle_ms)?
                .into_iter()
                .filter(|s| !due_users.contains(&s.user_id))
                .collect();
            Ok(ReclaimPreview {
                reclaim_idle_days: idle_days,
                reclaim_notice_days: notice_days,
                due,
                soon,
            })
        })
        .await
    }
}
