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

use crate::alloc::{Cause, LicenseKey, Millis};
use crate::store::allocation::license_view::{license_key, view};
use crate::store::allocation::runs::{allocate, allocate_reclaiming};
use crate::store::engine::sql::{params, Db};
use crate::store::engine::time::rfc3339;
use crate::store::events::audit::record as audit;
use crate::store::events::outbox;
use crate::store::{Result, Store, TenantKey};

const DAY_MS: Millis = 86_400_000;

/// A seat the reclaim will take, or would take.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ReclaimPreview {
    pub reclaim_idle_days: i64,
    pub reclaim_notice_days: i64,
    /// Reclaimed at the next pass.
    pub due: Vec<IdleSeat>,
    /// Reclaimed within the notice period unless used.
    pub soon: Vec<IdleSeat>,
}

/// Which idle seats [`idle_seats`] lists.
#[derive(Clone, Copy)]
enum Which {
    /// Due: idle long enough and, when notices are on (`notice_ms` > 0), told during this idle
    /// period at least `notice_ms` ago: nobody loses a seat without the notice period, even when
    /// reclaim is turned on for seats idle for years.
    Due { notice_ms: Millis },
    /// To tell: idle long enough for the notice, and not told during this idle period.
    Untold,
}

/// A seat is idle since the later of its last reported use and its grant.
const IDLE_SINCE: &str = "(CASE WHEN s.last_used > s.since THEN s.last_used ELSE s.since END)";

/// The seats of `l` due for reclaiming at `at`: idle `idle_ms` and told `notice_ms` before.
fn due_seats(
    c: &Db,
    l: LicenseKey,
    at: Millis,
    idle_ms: Millis,
    notice_ms: Millis,
) -> Result<Vec<IdleSeat>> {
    idle_seats(
        c,
        l,
        at,
        at - idle_ms,
        idle_ms,
        notice_ms,
        Which::Due { notice_ms },
    )
}

/// Granted, unpinned seats of `l` idle since at or before `idle_before`, in user order, each
/// with when it is reclaimed: once idle `idle_ms` and told `notice_ms` before (from `at` for
/// one not told yet).
fn idle_seats(
    c: &Db,
    l: LicenseKey,
    at: Millis,
    idle_before: Millis,
    idle_ms: Millis,
    notice_ms: Millis,
    which: Which,
) -> Result<Vec<IdleSeat>> {
    let (extra, bound) = match which {
        Which::Due { notice_ms: 0 } => ("AND CAST(? AS BIGINT) = 0".to_owned(), 0),
        Which::Due { notice_ms } => (
            format!("AND s.reclaim_noticed > {IDLE_SINCE} AND s.reclaim_noticed <= ?"),
            at - notice_ms,
        ),
        Which::Untold => (
            format!(
                "AND (s.reclaim_noticed IS NULL OR s.reclaim_noticed <= {IDLE_SINCE}) AND CAST(? AS BIGINT) = 0"
            ),
            0,
        ),
    };
    let mut st = c.prepare_cached(&format!(
        "SELECT s.user_id, u.user_name, s.last_used, {IDLE_SINCE}, s.reclaim_noticed FROM seats s
         LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.user_id
         WHERE s.license_rk = ? AND s.state = 'granted' AND s.hold IS NULL AND s.pinned = ? AND {IDLE_SINCE} <= ? {extra}
         ORDER BY s.user_id"
    ))?;
    let rows = st.query_all(params![l, false, idle_before, bound], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
        ))
    })?;
    Ok(rows
        .into_iter()
        .map(|(user_id, user_name, last_used, idle_since, told)| {
            let told = told.filter(|t| *t > idle_since).unwrap_or(at);
            IdleSeat {
                user_id,
                user_name,
                last_used: last_used.map(rfc3339),
                reclaim_at: rfc3339((idle_since + idle_ms).max(told + notice_ms)),
            }
        })
        .collect())
}

/// The reclaim pass over a tenant's licenses (run by the reconciler): the seats whose time has
/// come, then the notices.
pub(in crate::store) fn reclaim_pass(c: &Db, tenant: TenantKey, at: Millis) -> Result<()> {
    let licenses: Vec<(LicenseKey, i64, i64)> = {
        let mut st = c.prepare_cached(
            "SELECT rk, reclaim_idle_days, reclaim_notice_days FROM licenses WHERE tenant = ? AND reclaim_idle_days > 0 ORDER BY rk",
        )?;
        st.query_all([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    };
    for (l, idle_days, notice_days) in licenses {
        let (idle_ms, notice_ms) = (idle_days * DAY_MS, notice_days * DAY_MS);
        let due = due_seats(c, l, at, idle_ms, notice_ms)?;
        if !due.is_empty() {
            let users: Vec<String> = due.iter().map(|s| s.user_id.clone()).collect();
            let mut set = c.prepare_cached(
                "INSERT INTO overrides (license_rk, tenant, user_id, kind, created, set_by) VALUES (?, ?, ?, 'idle', ?, 'reclaimer')
                 ON CONFLICT (license_rk, user_id) DO UPDATE SET kind = 'idle', created = excluded.created, set_by = 'reclaimer'",
            )?;
            for u in &users {
                set.execute(params![l, tenant, u, rfc3339(at)])?;
            }
            let idle: HashSet<String> = users.iter().cloned().collect();
            allocate_reclaiming(c, tenant, at, idle, |a| {
                a.reevaluate(l, &users, Cause::License, false)
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
                crate::store::events::acts::Act::SeatReclaim(
                    crate::store::events::acts::Reclaimed {
                        license: view(c, l)?.id,
                        users: names,
                        idle_days,
                    },
                ),
            )?;
        }
        if notice_days > 0 {
            let untold = idle_seats(
                c,
                l,
                at,
                at - idle_ms + notice_ms,
                idle_ms,
                notice_ms,
                Which::Untold,
            )?;
            let mut told = c.prepare_cached(
                "UPDATE seats SET reclaim_noticed = ? WHERE license_rk = ? AND user_id = ?",
            )?;
            let mut items = Vec::new();
            for s in untold {
                told.execute(params![at, l, s.user_id])?;
                items.push(crate::notify::items::ReclaimNotice {
                    user_id: s.user_id.into(),
                    user_name: s.user_name.into(),
                    last_used: s.last_used.into(),
                    reclaim_at: s.reclaim_at.into(),
                });
            }
            outbox::record(c, tenant, l, at, items)?;
        }
    }
    Ok(())
}

/// A use reported for (`l`, `user`): an idle override goes, and the user is re-evaluated (the
/// seat kept within its grace; else queued again). Returns whether there was one.
pub(in crate::store) fn used(
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
            let (idle_ms, notice_ms) = (idle_days * DAY_MS, notice_days * DAY_MS);
            let due = due_seats(c, l, now, idle_ms, notice_ms)?;
            let due_users: HashSet<String> = due.iter().map(|s| s.user_id.clone()).collect();
            // Idle within the notice period (at least a day), or idle enough but not told
            // long enough ago: reclaimed at their `reclaimAt` unless used.
            let horizon = now - idle_ms + notice_ms.max(DAY_MS);
            let soon = idle_seats(
                c,
                l,
                now,
                horizon,
                idle_ms,
                notice_ms,
                Which::Due { notice_ms: 0 },
            )?
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
