//! The tenant's opt-in weekly summary: when its slot (a day and hour in the tenant's time zone,
//! `notify::when::Weekly`) has come, the reconciler's pass records one `weekly_summary` event
//! in the outbox with each license's figures for the week before, read from the seat events.

use crate::alloc::{LicenseKey, Millis};
use crate::notify::items::{Num, WeeklyLicense, WeeklySummary};
use crate::notify::when::Weekly;
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::events::outbox::record;
use crate::store::{Result, TenantKey};

/// Records the tenant's weekly summary once its slot (a day and hour in its time zone) has come:
/// per license, the seats in use, waiting, and the seats given and ended in the week before the
/// slot; the references still pending. A week in which no seat changed is skipped. Runs in the
/// reconciler's pass (one node per tenant on PostgreSQL), so a slot is summarized once.
pub(crate) fn check_weekly(c: &Db, tenant: TenantKey, at: Millis) -> Result<()> {
    let (weekly, zone, sent): (Option<String>, String, i64) = c
        .prepare_cached("SELECT weekly_summary, time_zone, weekly_sent FROM tenants WHERE rk = ?")?
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let Some(weekly) = weekly.and_then(|w| serde_json::from_str::<Weekly>(&w).ok()) else {
        return Ok(());
    };
    let Some(slot) = weekly.last_slot(at, &zone) else {
        return Ok(());
    };
    if slot <= sent {
        return Ok(());
    }
    c.prepare_cached("UPDATE tenants SET weekly_sent = ? WHERE rk = ?")?
        .execute(params![slot, tenant])?;
    let from = slot - 7 * 86_400_000;
    let (first, last) = (
        events_after(c, tenant, from)?,
        events_after(c, tenant, slot)?,
    );
    let mut changes: std::collections::HashMap<(LicenseKey, String), i64> = Default::default();
    let mut st = c.prepare_cached(
        "SELECT license_rk, event, count(*) FROM seat_events WHERE tenant = ? AND seq >= ? AND seq < ?
         GROUP BY license_rk, event",
    )?;
    for row in st.query_map(params![tenant, first, last], |r| {
        Ok((
            (r.get::<_, LicenseKey>(0)?, r.get::<_, String>(1)?),
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (k, n) = row?;
        changes.insert(k, n);
    }
    if changes.is_empty() {
        tracing::debug!(tenant, "no seat changed this week: weekly summary skipped");
        return Ok(());
    }
    let of = |l: LicenseKey, events: &[&str]| -> i64 {
        events
            .iter()
            .map(|e| changes.get(&(l, (*e).to_owned())).copied().unwrap_or(0))
            .sum()
    };
    // A license in shadow mode tells no one (its seats are not enforced).
    let mut st = c.prepare_cached(
        "SELECT rk, id, name, seats, granted + releasing, blocked FROM licenses WHERE tenant = ? AND mode = 'enforce' ORDER BY name, id",
    )?;
    let licenses = st.query_all([tenant], |r| {
        Ok((
            r.get::<_, LicenseKey>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let licenses: Vec<WeeklyLicense> = licenses
        .into_iter()
        .map(|(rk, id, name, seats, in_use, waiting)| WeeklyLicense {
            id: id.into(),
            name: name.into(),
            seats: Num(seats),
            in_use: Num(in_use),
            waiting: Num(waiting),
            granted: Num(of(rk, &["granted", "promoted"])),
            released: Num(of(rk, &["released"])),
        })
        .collect();
    let pending: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM license_groups WHERE tenant = ? AND group_id IS NULL",
        )?
        .query_row([tenant], |r| r.get(0))?;
    record(
        c,
        tenant,
        0,
        at,
        vec![WeeklySummary {
            from: Num(from),
            to: Num(slot),
            licenses,
            pending: Num(pending),
        }],
    )
}

/// The first seat-event sequence number of the tenant at or after which every event happened
/// after `t`: a binary search over the `(tenant, seq)` index (events are appended in time
/// order), so a summary reads one week of events, never the tenant's whole history.
fn events_after(c: &Db, tenant: TenantKey, t: Millis) -> Result<i64> {
    let bounds: (Option<i64>, Option<i64>) = c
        .prepare_cached("SELECT min(seq), max(seq) FROM seat_events WHERE tenant = ?")?
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(mut lo), Some(max)) = bounds else {
        return Ok(0);
    };
    let mut hi = max + 1;
    let mut next = c.prepare_cached(
        "SELECT seq, at FROM seat_events WHERE tenant = ? AND seq >= ? ORDER BY seq LIMIT 1",
    )?;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let found: Option<(i64, i64)> = next
            .query_row(params![tenant, mid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((_, at)) if at > t => hi = mid,
            Some((seq, _)) => lo = seq + 1,
            None => hi = mid,
        }
    }
    Ok(lo)
}
