//! Capacity planning, pure: a license's agreed overage, the true-up figures a vendor bills on,
//! and the run-out forecast, computed from the license's daily history (one row per license
//! and UTC day: `store::history`). No I/O.
//!
//! **History.** Each day keeps the seat count and overage in effect at its end, the peak of
//! seats in use, of demand (in use + waiting) and of use above the seat count, and the values at
//! its end. A day without a row had no seat change: it repeats the last values before it
//! ([`fill_days`]).
//!
//! **Forecast method.** Demand moves in steps: a provisioning sync (an initial import, a group
//! selected, an Entra cycle) adds or removes many people at once, between steps it drifts. A
//! least-squares line over a window that contains a step tilts towards the step and predicts a
//! growth that is not there; Holt's linear trend carries the step into its trend for many days.
//! So the forecast (1) finds the steps: daily changes far outside the ordinary day-to-day
//! change (more than `max(3, 4 × the median absolute change, 10 % of the level)`); (2) fits the
//! trend over the days since the last step only (up to [`WINDOW_DAYS`]), with the Theil–Sen
//! estimator (the median of the slopes between every pair of days), which a stray day does not
//! move; (3) projects today's demand at that slope to the capacity (seats + overage). Confidence
//! is `high` with at least 14 days since the last step and a fit whose median residual is small
//! next to the projected change, `medium` with at least 7, `low` otherwise (and no run-out date
//! is given from fewer than 3 days).

use serde::Serialize;

/// Days of history the forecast looks at.
pub const WINDOW_DAYS: usize = 28;
/// Days the forecast projects at most.
pub const PROJECT_DAYS: i64 = 90;

/// The extra seats an overage setting allows on `seats` (`overage` seats, or `percent` of the
/// seats rounded down; only one of them is set).
pub fn overage_seats(seats: i64, overage: i64, percent: i64) -> i64 {
    overage + seats * percent / 100
}

/// One UTC day of a license's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// Days since 1970-01-01.
    pub n: i64,
    /// The seat count and overage in effect at the day's end.
    pub seats: i64,
    pub overage: i64,
    pub peak_in_use: i64,
    pub peak_demand: i64,
    /// The most seats in use above the seat count at any moment of the day (0: none).
    pub peak_over: i64,
    pub last_in_use: i64,
    pub last_demand: i64,
}

/// Every day from `from` to `to` (day numbers, inclusive), from the stored `rows` (sorted by
/// day; the last one before `from`, when there is one, gives the values `from` starts with). A
/// day without a row repeats the end of the day before it; days before the first row are left
/// out (the license had no history yet).
pub fn fill_days(rows: &[Day], from: i64, to: i64) -> Vec<Day> {
    let mut out = Vec::new();
    let mut last: Option<Day> = None;
    let mut i = 0;
    while i < rows.len() && rows[i].n < from {
        last = Some(rows[i]);
        i += 1;
    }
    for n in from..=to {
        if i < rows.len() && rows[i].n == n {
            out.push(rows[i]);
            last = Some(rows[i]);
            i += 1;
        } else if let Some(l) = last {
            out.push(Day {
                n,
                seats: l.seats,
                overage: l.overage,
                peak_in_use: l.last_in_use,
                peak_demand: l.last_demand,
                peak_over: (l.last_in_use - l.seats).max(0),
                last_in_use: l.last_in_use,
                last_demand: l.last_demand,
            });
        }
    }
    out
}

/// `YYYY-MM-DD` of a day number.
pub fn day_name(n: i64) -> String {
    time::Date::from_julian_day((n + 2_440_588) as i32)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// The day number of `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<i64> {
    let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(i64::from(d.to_julian_day()) - 2_440_588)
}

/// The day number of an instant (ms since the epoch, UTC).
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// One day of a true-up report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrueUpDay {
    pub day: String,
    pub seats: i64,
    pub overage: i64,
    #[serde(rename = "peakInUse")]
    pub peak_in_use: i64,
    /// Seats in use above the seat count at the day's peak (0: none).
    pub over: i64,
}

/// What a vendor bills on over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrueUp {
    pub from: String,
    pub to: String,
    /// The most seats in use on any day, and the first day it happened.
    #[serde(rename = "peakInUse")]
    pub peak_in_use: i64,
    #[serde(rename = "peakDay")]
    pub peak_day: Option<String>,
    /// Days on which use went above the seat count.
    #[serde(rename = "daysOver")]
    pub days_over: i64,
    /// The sum over the days of the seats in use above the seat count (at each day's peak).
    #[serde(rename = "seatDaysOver")]
    pub seat_days_over: i64,
    pub days: Vec<TrueUpDay>,
}

/// The true-up over `days` (from [`fill_days`]) for the period `from`..=`to`.
pub fn true_up(days: &[Day], from: i64, to: i64) -> TrueUp {
    let mut t = TrueUp {
        from: day_name(from),
        to: day_name(to),
        peak_in_use: 0,
        peak_day: None,
        days_over: 0,
        seat_days_over: 0,
        days: Vec::with_capacity(days.len()),
    };
    for d in days {
        if t.peak_day.is_none() || d.peak_in_use > t.peak_in_use {
            t.peak_in_use = d.peak_in_use;
            t.peak_day = Some(day_name(d.n));
        }
        if d.peak_over > 0 {
            t.days_over += 1;
            t.seat_days_over += d.peak_over;
        }
        t.days.push(TrueUpDay {
            day: day_name(d.n),
            seats: d.seats,
            overage: d.overage,
            peak_in_use: d.peak_in_use,
            over: d.peak_over,
        });
    }
    t
}

/// The true-up as CSV (a header line, one line per day, then the totals).
pub fn true_up_csv(t: &TrueUp) -> String {
    let mut out = String::from("day,seats,overage,peak_in_use,over\n");
    for d in &t.days {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            d.day, d.seats, d.overage, d.peak_in_use, d.over
        ));
    }
    out.push_str(&format!(
        "total,,,{},{}\n# peak in use {} on {}; {} days over the seat count; {} seat-days over\n",
        t.peak_in_use,
        t.seat_days_over,
        t.peak_in_use,
        t.peak_day.as_deref().unwrap_or("-"),
        t.days_over,
        t.seat_days_over
    ));
    out
}

/// One point of a forecast: a past day's demand, or a projected one.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ForecastPoint {
    pub day: String,
    pub demand: f64,
    pub projected: bool,
}

/// The run-out forecast of a license.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Forecast {
    pub in_use: i64,
    /// Seats plus the agreed overage: what demand runs out of.
    pub capacity: i64,
    pub waiting: i64,
    /// The trend of demand (in use + waiting), people per day.
    pub demand_per_day: f64,
    /// The day demand reaches the capacity at this trend (today when it already has); `null`
    /// when it does not grow towards it within [`PROJECT_DAYS`] or the history is too short.
    pub run_out_at: Option<String>,
    /// `low`, `medium` or `high` (see the module doc).
    pub confidence: &'static str,
    /// Days since the last step change of demand, the days the trend was fitted on.
    pub fitted_days: i64,
    pub points: Vec<ForecastPoint>,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The index of the first day after the last step change of `demand`.
fn after_last_step(demand: &[f64]) -> usize {
    if demand.len() < 3 {
        return 0;
    }
    let mut changes: Vec<f64> = demand.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let typical = median(&mut changes.clone());
    let mut start = 0;
    for (i, c) in changes.drain(..).enumerate() {
        let level = demand[i].abs().max(demand[i + 1].abs());
        if c > (4.0 * typical).max(0.1 * level).max(3.0) {
            start = i + 1;
        }
    }
    start
}

/// Theil–Sen: the median slope between every pair of points, and the median intercept.
fn theil_sen(y: &[f64]) -> (f64, f64) {
    if y.len() < 2 {
        return (0.0, y.first().copied().unwrap_or(0.0));
    }
    let mut slopes = Vec::with_capacity(y.len() * (y.len() - 1) / 2);
    for i in 0..y.len() {
        for j in i + 1..y.len() {
            slopes.push((y[j] - y[i]) / (j - i) as f64);
        }
    }
    let slope = median(&mut slopes);
    let mut intercepts: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, v)| v - slope * i as f64)
        .collect();
    (slope, median(&mut intercepts))
}

/// The forecast from `days` (consecutive, from [`fill_days`], ending today = `today`), with
/// today's live figures.
pub fn forecast(days: &[Day], today: i64, in_use: i64, waiting: i64, capacity: i64) -> Forecast {
    let window = &days[days.len().saturating_sub(WINDOW_DAYS)..];
    let demand: Vec<f64> = window.iter().map(|d| d.peak_demand as f64).collect();
    let start = after_last_step(&demand);
    let fitted = &demand[start..];
    let (slope, intercept) = theil_sen(fitted);
    let now = (in_use + waiting) as f64;
    let n = fitted.len() as i64;
    let mut residuals: Vec<f64> = fitted
        .iter()
        .enumerate()
        .map(|(i, v)| (v - (intercept + slope * i as f64)).abs())
        .collect();
    let spread = median(&mut residuals);
    let confidence = if n >= 14 && spread <= (slope.abs() * 7.0).max(1.0) {
        "high"
    } else if n >= 7 {
        "medium"
    } else {
        "low"
    };
    let run_out = if now >= capacity as f64 && capacity >= 0 && in_use + waiting > capacity {
        Some(0)
    } else if n >= 3 && slope > 1e-9 {
        let days = ((capacity as f64 - now) / slope).ceil().max(0.0) as i64;
        (days <= PROJECT_DAYS).then_some(days)
    } else {
        None
    };
    let mut points: Vec<ForecastPoint> = window
        .iter()
        .map(|d| ForecastPoint {
            day: day_name(d.n),
            demand: d.peak_demand as f64,
            projected: false,
        })
        .collect();
    if n >= 3 && slope.abs() > 1e-9 {
        let horizon = run_out.unwrap_or(30).clamp(1, PROJECT_DAYS);
        for k in 1..=horizon {
            points.push(ForecastPoint {
                day: day_name(today + k),
                demand: (now + slope * k as f64).max(0.0),
                projected: true,
            });
        }
    }
    Forecast {
        in_use,
        capacity,
        waiting,
        demand_per_day: (slope * 100.0).round() / 100.0,
        run_out_at: run_out.map(|d| day_name(today + d)),
        confidence,
        fitted_days: n,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(demand: &[i64], seats: i64) -> Vec<Day> {
        demand
            .iter()
            .enumerate()
            .map(|(i, d)| Day {
                n: 20_000 + i as i64,
                seats,
                overage: 0,
                peak_in_use: (*d).min(seats),
                peak_demand: *d,
                peak_over: 0,
                last_in_use: (*d).min(seats),
                last_demand: *d,
            })
            .collect()
    }

    fn run(demand: &[i64], capacity: i64) -> Forecast {
        let days = history(demand, capacity);
        let today = days.last().unwrap().n;
        let now = *demand.last().unwrap();
        forecast(
            &days,
            today,
            now.min(capacity),
            (now - capacity).max(0),
            capacity,
        )
    }

    /// Days from the last day of the history to the run-out date.
    fn days_to_run_out(f: &Forecast, demand: &[i64]) -> Option<i64> {
        let today = 20_000 + demand.len() as i64 - 1;
        f.run_out_at
            .as_deref()
            .map(|d| parse_day(d).unwrap() - today)
    }

    #[test]
    fn steady_growth_runs_out_when_the_line_says() {
        // 2 people a day from 40, 28 days: 94 today; 100 seats run out in 3 days.
        let demand: Vec<i64> = (0..28).map(|i| 40 + 2 * i).collect();
        let f = run(&demand, 100);
        assert!((f.demand_per_day - 2.0).abs() < 0.05, "{f:?}");
        assert_eq!(days_to_run_out(&f, &demand), Some(3));
        assert_eq!(f.confidence, "high");
    }

    #[test]
    fn a_step_from_the_initial_sync_is_not_a_trend() {
        // Nothing for 5 days, 300 people in one sync, then 1 a day for 20 days.
        let mut demand = vec![0; 5];
        demand.extend((0..20).map(|i| 300 + i));
        let f = run(&demand, 400);
        assert!((f.demand_per_day - 1.0).abs() < 0.05, "{f:?}");
        assert_eq!(f.fitted_days, 20);
        // 319 today, 81 to go at 1 a day.
        assert_eq!(days_to_run_out(&f, &demand), Some(81));
        // A least-squares line over the window would have said about 15 a day.
    }

    #[test]
    fn flat_demand_never_runs_out_and_shrinking_neither() {
        let flat = vec![80; 28];
        let f = run(&flat, 100);
        assert_eq!(f.demand_per_day, 0.0);
        assert_eq!(f.run_out_at, None);
        assert_eq!(f.confidence, "high");
        let shrinking: Vec<i64> = (0..28).map(|i| 90 - i).collect();
        let f = run(&shrinking, 100);
        assert!((f.demand_per_day + 1.0).abs() < 0.05, "{f:?}");
        assert_eq!(f.run_out_at, None);
    }

    #[test]
    fn noisy_growth_stays_close_and_demand_over_capacity_has_run_out() {
        // 3 a day with ±2 of noise: the slope stays within 0.3.
        let noise = [2, -1, 0, 1, -2, 2, 0, -1, 1, -2];
        let demand: Vec<i64> = (0..28)
            .map(|i| 100 + 3 * i + noise[i as usize % 10])
            .collect();
        let f = run(&demand, 400);
        assert!((f.demand_per_day - 3.0).abs() < 0.3, "{f:?}");
        let over = run(&[120; 10], 100);
        assert_eq!(days_to_run_out(&over, &[120; 10]), Some(0));
        assert_eq!(over.waiting, 20);
    }

    #[test]
    fn short_histories_give_no_date() {
        let f = run(&[10, 20], 100);
        assert_eq!((f.run_out_at.clone(), f.confidence), (None, "low"));
    }

    #[test]
    fn the_true_up_counts_days_and_seat_days_over_and_quiet_days_repeat() {
        let rows = [
            Day {
                n: 100,
                seats: 10,
                overage: 2,
                peak_in_use: 9,
                peak_demand: 9,
                peak_over: 0,
                last_in_use: 9,
                last_demand: 9,
            },
            Day {
                n: 102,
                seats: 10,
                overage: 2,
                peak_in_use: 12,
                peak_demand: 13,
                peak_over: 2,
                last_in_use: 11,
                last_demand: 11,
            },
            Day {
                n: 105,
                seats: 12,
                overage: 2,
                peak_in_use: 12,
                peak_demand: 12,
                peak_over: 0,
                last_in_use: 10,
                last_demand: 10,
            },
        ];
        let days = fill_days(&rows, 101, 106);
        assert_eq!(days.len(), 6);
        // Day 101 repeats day 100's end; 103 and 104 repeat 102's end (11 in use of 10).
        assert_eq!((days[0].peak_in_use, days[0].peak_over), (9, 0));
        assert_eq!((days[2].peak_in_use, days[2].peak_over), (11, 1));
        let t = true_up(&days, 101, 106);
        assert_eq!(t.peak_in_use, 12);
        assert_eq!(t.peak_day.as_deref(), Some(day_name(102).as_str()));
        assert_eq!(t.days_over, 3);
        assert_eq!(t.seat_days_over, 2 + 1 + 1);
        assert!(true_up_csv(&t).starts_with("day,seats,overage,peak_in_use,over\n"));
        assert_eq!(parse_day(&day_name(20_000)), Some(20_000));
        assert_eq!(overage_seats(50, 0, 10), 5);
    }
}
