//! A license's daily history (table `license_days`, see `capacity`): written by the write jobs
//! that move its seats or change its seat count or overage, read by the true-up, the forecast
//! and the run-out alert.

use serde::Serialize;

use crate::alloc::{LicenseKey, Millis};
use crate::capacity::{self, day_of, Day, Forecast, TrueUp};
use crate::store::allocation::license_view::license_key;
use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use crate::store::{Result, Store, TenantKey};

fn day_row(r: &Row) -> Result<Day> {
    Ok(Day {
        n: r.get(0)?,
        seats: r.get(1)?,
        overage: r.get(2)?,
        peak_in_use: r.get(3)?,
        peak_demand: r.get(4)?,
        peak_over: r.get(5)?,
        last_in_use: r.get(6)?,
        last_demand: r.get(7)?,
    })
}

const DAY_COLS: &str =
    "day, seats, overage, peak_in_use, peak_demand, peak_over, last_in_use, last_demand";

/// Records license `l`'s figures now (as this transaction has them) into today's row: the
/// peaks rise, the day's end is now. A new day starts from the end of the last one, so a
/// quiet morning's level counts towards the day's peak.
pub(in crate::store) fn record(c: &Db, l: LicenseKey, now: Millis) -> Result<()> {
    let Some((tenant, seats, overage, percent, in_use, waiting)) = c
        .prepare_cached(
            "SELECT tenant, seats, overage, overage_percent, granted + releasing, blocked FROM licenses WHERE rk = ?",
        )?
        .query_row([l], |r| {
            Ok((
                r.get::<_, TenantKey>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()?
    else {
        return Ok(());
    };
    let day = day_of(now);
    let extra = capacity::overage_seats(seats, overage, percent);
    let demand = in_use + waiting;
    let over = (in_use - seats).max(0);
    let today: Option<Day> = c
        .prepare_cached(&format!(
            "SELECT {DAY_COLS} FROM license_days WHERE license_rk = ? AND day <= ? ORDER BY day DESC LIMIT 1"
        ))?
        .query_row(params![l, day], day_row)
        .optional()?;
    let (peak_in_use, peak_demand, peak_over) = match today {
        Some(d) if d.n == day => (
            d.peak_in_use.max(in_use),
            d.peak_demand.max(demand),
            d.peak_over.max(over),
        ),
        Some(d) => (
            d.last_in_use.max(in_use),
            d.last_demand.max(demand),
            (d.last_in_use - d.seats).max(0).max(over),
        ),
        None => (in_use, demand, over),
    };
    c.prepare_cached(
        "INSERT INTO license_days (license_rk, tenant, day, seats, overage, peak_in_use, peak_demand, peak_over, last_in_use, last_demand)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (license_rk, day) DO UPDATE SET seats = excluded.seats, overage = excluded.overage,
           peak_in_use = excluded.peak_in_use, peak_demand = excluded.peak_demand, peak_over = excluded.peak_over,
           last_in_use = excluded.last_in_use, last_demand = excluded.last_demand",
    )?
    .execute(params![l, tenant, day, seats, extra, peak_in_use, peak_demand, peak_over, in_use, demand])?;
    Ok(())
}

/// As [`record`], for a run that knows the license's terms (`seats`, and `extra` seats of its
/// agreed overage) and its counts: one statement, the day's peaks kept in SQL, sent with the
/// run's next statement (`Db::execute_later`).
pub(in crate::store) fn record_counts(
    c: &Db,
    l: LicenseKey,
    now: Millis,
    seats: i64,
    extra: i64,
    in_use: i64,
    waiting: i64,
) -> Result<()> {
    let over = (in_use - seats).max(0);
    // Today's row keeps its peaks; a new day starts from the last day's end (its last use, and
    // its use above its seats), as `record` does.
    c.execute_later(
        "INSERT INTO license_days (license_rk, tenant, day, seats, overage, peak_in_use, peak_demand, peak_over, last_in_use, last_demand)
         SELECT l.rk, l.tenant, ?2, ?3, ?4,
                CASE WHEN p.last_in_use > ?5 THEN p.last_in_use ELSE ?5 END,
                CASE WHEN p.last_demand > ?6 THEN p.last_demand ELSE ?6 END,
                CASE WHEN p.last_in_use - p.seats > ?7 THEN p.last_in_use - p.seats ELSE ?7 END,
                ?5, ?6
         FROM licenses l LEFT JOIN (SELECT last_in_use, last_demand, seats FROM license_days
                                    WHERE license_rk = ?1 AND day < ?2 ORDER BY day DESC LIMIT 1) AS p ON 1 = 1
         WHERE l.rk = ?1
         ON CONFLICT (license_rk, day) DO UPDATE SET seats = excluded.seats, overage = excluded.overage,
           peak_in_use = CASE WHEN license_days.peak_in_use > excluded.last_in_use
                              THEN license_days.peak_in_use ELSE excluded.last_in_use END,
           peak_demand = CASE WHEN license_days.peak_demand > excluded.last_demand
                              THEN license_days.peak_demand ELSE excluded.last_demand END,
           peak_over = CASE WHEN license_days.peak_over > excluded.last_in_use - excluded.seats
                            THEN license_days.peak_over ELSE excluded.last_in_use - excluded.seats END,
           last_in_use = excluded.last_in_use, last_demand = excluded.last_demand",
        params![l, day_of(now), seats, extra, in_use, in_use + waiting, over],
    )
}

/// The stored rows of `l` from the last one before `from` to `to`.
fn rows(c: &Db, l: LicenseKey, from: i64, to: i64) -> Result<Vec<Day>> {
    let start: i64 = c
        .prepare_cached(
            "SELECT coalesce(max(day), ?) FROM license_days WHERE license_rk = ? AND day < ?",
        )?
        .query_row(params![from, l, from], |r| r.get(0))?;
    let mut st = c.prepare_cached(&format!(
        "SELECT {DAY_COLS} FROM license_days WHERE license_rk = ? AND day >= ? AND day <= ? ORDER BY day"
    ))?;
    st.query_all(params![l, start, to], day_row)
}

/// License `l`'s forecast now.
pub(in crate::store) fn forecast_of(c: &Db, l: LicenseKey, now: Millis) -> Result<Forecast> {
    let today = day_of(now);
    let from = today - capacity::WINDOW_DAYS as i64 + 1;
    let days = capacity::fill_days(&rows(c, l, from, today)?, from, today);
    let (seats, overage, percent, in_use, waiting): (i64, i64, i64, i64, i64) = c
        .prepare_cached(
            "SELECT seats, overage, overage_percent, granted + releasing, blocked FROM licenses WHERE rk = ?",
        )?
        .query_row([l], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    let capacity = seats + capacity::overage_seats(seats, overage, percent);
    Ok(capacity::forecast(&days, today, in_use, waiting, capacity))
}

/// Tells the tenant's recipients when a license's forecast run-out comes within the tenant's
/// `forecast_horizon_days`: once per crossing (re-armed when the date moves out again).
pub(in crate::store) fn check_run_out(c: &Db, tenant: TenantKey, now: Millis) -> Result<()> {
    let horizon: i64 = c
        .prepare_cached("SELECT forecast_horizon_days FROM tenants WHERE rk = ?")?
        .query_row([tenant], |r| r.get(0))?;
    let mut st =
        c.prepare_cached("SELECT rk, runout_notified FROM licenses WHERE tenant = ? ORDER BY rk")?;
    let licenses = st.query_all([tenant], |r| {
        Ok((r.get::<_, LicenseKey>(0)?, r.get::<_, i64>(1)?))
    })?;
    let today = day_of(now);
    for (l, notified) in licenses {
        let f = forecast_of(c, l, now)?;
        // A run-out still ahead: one that has happened is the `threshold` and `blocked` emails'.
        let soon = f
            .run_out_at
            .as_deref()
            .and_then(capacity::parse_day)
            .is_some_and(|d| d > today && d - today <= horizon);
        if soon && notified == 0 {
            use crate::notify::items::{Num, Real, RunOut};
            crate::store::events::outbox::record(
                c,
                tenant,
                l,
                now,
                vec![RunOut {
                    run_out_at: f.run_out_at.clone().into(),
                    demand_per_day: Real(f.demand_per_day),
                    in_use: Num(f.in_use),
                    capacity: Num(f.capacity),
                    waiting: Num(f.waiting),
                    confidence: f.confidence.into(),
                    horizon_days: Num(horizon),
                }],
            )?;
        }
        if soon != (notified != 0) {
            c.prepare_cached("UPDATE licenses SET runout_notified = ? WHERE rk = ?")?
                .execute(params![i64::from(soon), l])?;
        }
    }
    Ok(())
}

/// A license's true-up with its name (the CSV's file name says it).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LicenseTrueUp {
    pub license: crate::store::allocation::license_view::LicenseRef,
    #[serde(flatten)]
    pub true_up: TrueUp,
}

/// The longest true-up period: a little over three years.
const MAX_DAYS: i64 = 1200;

impl Store {
    /// What a vendor bills license `key` on over `from`..=`to` (`YYYY-MM-DD`, UTC; `to` at
    /// most today).
    pub async fn true_up(
        &self,
        tenant: TenantKey,
        key: String,
        from: String,
        to: String,
    ) -> Result<LicenseTrueUp> {
        let bad =
            |s: &str| crate::store::Error::Invalid(format!("{s:?} is not a date (YYYY-MM-DD)"));
        let from_n = capacity::parse_day(&from).ok_or_else(|| bad(&from))?;
        let to_n = capacity::parse_day(&to).ok_or_else(|| bad(&to))?;
        let today = day_of(self.now_ms());
        if from_n > to_n {
            return Err(crate::store::Error::Invalid(format!(
                "from {from} is after to {to}"
            )));
        }
        if to_n - from_n >= MAX_DAYS {
            return Err(crate::store::Error::Invalid(format!(
                "a true-up covers at most {MAX_DAYS} days"
            )));
        }
        let asked_to = to_n;
        let to_n = to_n.min(today);
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let v = crate::store::allocation::license_view::view(c, l)?;
            let days = capacity::fill_days(&rows(c, l, from_n, to_n)?, from_n, to_n);
            Ok(LicenseTrueUp {
                license: crate::store::allocation::license_view::LicenseRef {
                    id: v.id,
                    name: v.name,
                },
                true_up: capacity::true_up(&days, from_n, asked_to),
            })
        })
        .await
    }

    /// License `key`'s run-out forecast.
    pub async fn forecast(&self, tenant: TenantKey, key: String) -> Result<Forecast> {
        let now = self.now_ms();
        self.read(move |c| forecast_of(c, license_key(c, tenant, &key)?, now))
            .await
    }
}
