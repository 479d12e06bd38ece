//! The seat-usage-over-time chart of a license page: a server-rendered SVG from the seat-event
//! history (each event carries the license's seats in use and waiting right after it), with the
//! forecast's projection of demand and its run-out date when there is one. Pure.

use std::fmt::Write as _;

use crate::alloc::Millis;

/// One point of the history: when, seats in use (granted + releasing), users waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub at: Millis,
    pub in_use: i64,
    pub waiting: i64,
}

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// Most points drawn; longer histories keep the last point of each pixel column.
const MAX_POINTS: usize = 600;

/// An instant in the tenant's zone, as the emails write it.
fn date(ms: Millis, zone: &str) -> String {
    crate::notify::when::format_ms(ms, zone)
}

/// The forecast drawn on the chart: demand (in use + waiting) from now at `per_day`, up to
/// `until`, and the run-out date when it has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    pub per_day: f64,
    pub until: Millis,
    pub run_out: Option<Millis>,
}

/// The chart as an inline `<svg>` (accessible: a title and a text summary).
pub fn svg(points: &[Point], capacity: i64, now: Millis) -> String {
    svg_projected(points, capacity, now, None, "UTC")
}

/// [`svg`] with the forecast's projection.
pub fn svg_projected(
    points: &[Point],
    capacity: i64,
    now: Millis,
    projection: Option<Projection>,
    zone: &str,
) -> String {
    let mut out = String::new();
    let last = points.last().copied();
    let summary = match last {
        None => "No seat activity yet.".to_owned(),
        Some(p) => format!(
            "{} of {capacity} seats in use and {} waiting now; history since {}.{}",
            p.in_use,
            p.waiting,
            date(points[0].at, zone),
            match projection.and_then(|p| p.run_out) {
                Some(r) => format!(
                    " At the present trend seats run out around {}.",
                    day(r, zone)
                ),
                None => String::new(),
            }
        ),
    };
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"chart-title chart-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">Seat usage over time</title><desc id=\"chart-desc\">{summary}</desc>"
    );
    let Some(last) = last else {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"muted\">No seat activity yet</text></svg>",
            W / 2.0,
            H / 2.0
        );
        return out;
    };
    let start = points[0].at;
    let now = now.max(last.at);
    let demand_now = (last.in_use + last.waiting) as f64;
    let projection = projection.filter(|p| p.until > now && p.per_day.abs() > 1e-9);
    let projected_end = projection
        .map(|p| (demand_now + p.per_day * (p.until - now) as f64 / 86_400_000.0).max(0.0));
    let end = now
        .max(projection.map_or(0, |p| p.until))
        .max(start + 60_000);
    let top = points
        .iter()
        .map(|p| p.in_use.max(p.waiting))
        .max()
        .unwrap_or(0)
        .max(capacity)
        .max(projected_end.map_or(0, |v| v.ceil() as i64))
        .max(1);
    let y_max = (top as f64 * 1.1).ceil();
    let x = |t: Millis| LEFT + (t - start) as f64 / (end - start) as f64 * (W - LEFT - RIGHT);
    let y = |v: i64| TOP + (1.0 - v as f64 / y_max) * (H - TOP - BOTTOM);
    // Thin out: the last point of each pixel column.
    let mut kept: Vec<Point> = Vec::with_capacity(points.len().min(MAX_POINTS + 1));
    for p in points {
        let col = (x(p.at) * MAX_POINTS as f64 / W) as i64;
        match kept.last_mut() {
            Some(k) if (x(k.at) * MAX_POINTS as f64 / W) as i64 == col => *k = *p,
            _ => kept.push(*p),
        }
    }
    // Axes and gridlines.
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\"/>\
         <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" class=\"tick\">{ymax}</text>\
         <text x=\"{lx}\" y=\"{b}\" text-anchor=\"end\" class=\"tick\">0</text>\
         <text x=\"{LEFT}\" y=\"{dy}\" class=\"tick\">{d0}</text>\
         <text x=\"{r}\" y=\"{dy}\" text-anchor=\"end\" class=\"tick\">{d1}</text>",
        b = H - BOTTOM,
        r = W - RIGHT,
        lx = LEFT - 6.0,
        ty = TOP + 10.0,
        ymax = y_max as i64,
        dy = H - 8.0,
        d0 = day(start, zone),
        d1 = day(end, zone),
    );
    // Capacity.
    let _ = write!(
        out,
        "<line class=\"capacity\" x1=\"{LEFT}\" y1=\"{cy:.1}\" x2=\"{r}\" y2=\"{cy:.1}\"/>\
         <text x=\"{r}\" y=\"{ly:.1}\" text-anchor=\"end\" class=\"capacity-label\">capacity {capacity}</text>",
        cy = y(capacity),
        ly = y(capacity) - 4.0,
        r = W - RIGHT,
    );
    // Step lines: in use, waiting.
    for (class, value) in [
        ("waiting", (|p: &Point| p.waiting) as fn(&Point) -> i64),
        ("in-use", |p: &Point| p.in_use),
    ] {
        let mut d = String::new();
        let mut prev: Option<f64> = None;
        for p in &kept {
            let (px, py) = (x(p.at), y(value(p)));
            match prev {
                None => {
                    let _ = write!(d, "M{px:.1},{py:.1}");
                }
                Some(_) => {
                    let _ = write!(d, " H{px:.1} V{py:.1}");
                }
            }
            prev = Some(py);
        }
        let _ = write!(d, " H{:.1}", x(now));
        let _ = write!(out, "<path class=\"{class}\" d=\"{d}\"/>");
    }
    if let (Some(p), Some(v)) = (projection, projected_end) {
        let yf = |v: f64| TOP + (1.0 - v / y_max) * (H - TOP - BOTTOM);
        let _ = write!(
            out,
            "<line class=\"projection\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
            x(now),
            yf(demand_now),
            x(p.until),
            yf(v)
        );
        if let Some(r) = p.run_out {
            let _ = write!(
                out,
                "<line class=\"run-out\" x1=\"{rx:.1}\" y1=\"{TOP}\" x2=\"{rx:.1}\" y2=\"{b}\"/>\
                 <text x=\"{tx:.1}\" y=\"{ty}\" text-anchor=\"end\" class=\"run-out-label\">runs out ~{d}</text>",
                rx = x(r),
                tx = x(r) - 4.0,
                ty = TOP + 24.0,
                b = H - BOTTOM,
                d = day(r, zone),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// The day of an instant in the tenant's zone: `Mon 23 Nov 2026`.
fn day(ms: Millis, zone: &str) -> String {
    crate::notify::when::format_day(ms, zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_history_says_so() {
        let s = svg(&[], 10, 1_000_000);
        assert!(s.contains("No seat activity yet"));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
    }

    #[test]
    fn steps_capacity_and_summary() {
        let pts = [
            Point {
                at: 0,
                in_use: 1,
                waiting: 0,
            },
            Point {
                at: 60_000,
                in_use: 2,
                waiting: 0,
            },
            Point {
                at: 120_000,
                in_use: 2,
                waiting: 3,
            },
        ];
        let s = svg(&pts, 2, 180_000);
        assert!(s.contains("class=\"in-use\""));
        assert!(s.contains("class=\"waiting\""));
        assert!(s.contains("capacity 2"));
        assert!(s.contains("2 of 2 seats in use and 3 waiting now"));
    }

    #[test]
    fn the_projection_runs_to_the_run_out_date() {
        let pts = [Point {
            at: 0,
            in_use: 8,
            waiting: 0,
        }];
        let day = 86_400_000;
        let s = svg_projected(
            &pts,
            10,
            day,
            Some(Projection {
                per_day: 1.0,
                until: 3 * day,
                run_out: Some(3 * day),
            }),
            "UTC",
        );
        assert!(s.contains("class=\"projection\""), "{s}");
        assert!(s.contains("runs out ~Sun 4 Jan 1970"), "{s}");
        assert!(s.contains("seats run out around Sun 4 Jan 1970"), "{s}");
    }

    #[test]
    fn long_histories_are_thinned() {
        let pts: Vec<Point> = (0..100_000)
            .map(|i| Point {
                at: i * 1000,
                in_use: i % 50,
                waiting: 0,
            })
            .collect();
        let s = svg(&pts, 50, 100_000_000);
        assert!(s.matches(" H").count() < 2 * (MAX_POINTS + 10));
    }
}
