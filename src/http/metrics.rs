//! Prometheus metrics at `GET /metrics` (text exposition format, written by hand): requests by
//! route and status, latency histograms by route, rate-limited requests, reconciler passes, and
//! seats (capacity, granted, releasing, blocked, held) per license, the notification outbox by state
//! and mail delivery counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub rate_limited: AtomicU64,
    pub reconcile_runs: AtomicU64,
    pub reconcile_failures: AtomicU64,
    /// Readiness checks that asked the database (`/readyz` answers from the last one in between).
    pub readiness_checks: AtomicU64,
}

impl Metrics {
    /// Records one answered request. `route` is the matched pattern (`/scim/v2/Users/{id}`), so
    /// ids never become labels.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_owned()).or_default();
            h.count += 1;
            h.sum += seconds;
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.buckets[i] += 1;
                }
            }
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP seatkeeper_http_requests_total HTTP requests answered, by route, method and status.");
        let _ = writeln!(out, "# TYPE seatkeeper_http_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for ((route, method, status), n) in r.iter() {
                let _ = writeln!(out, "seatkeeper_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}", esc(route));
            }
        }
        let _ = writeln!(
            out,
            "# HELP seatkeeper_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE seatkeeper_http_request_duration_seconds histogram"
        );
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                let route = esc(route);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "seatkeeper_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}", h.buckets[i]);
                }
                let _ = writeln!(out, "seatkeeper_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(
                    out,
                    "seatkeeper_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "seatkeeper_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        for (name, help, v) in [
            (
                "seatkeeper_rate_limited_total",
                "Requests answered 429.",
                &self.rate_limited,
            ),
            (
                "seatkeeper_reconcile_runs_total",
                "Background reconciler passes.",
                &self.reconcile_runs,
            ),
            (
                "seatkeeper_reconcile_failures_total",
                "Background reconciler passes that failed.",
                &self.reconcile_failures,
            ),
            (
                "seatkeeper_readiness_checks_total",
                "Readiness checks that asked the database (at most one a second; /readyz answers from the last in between).",
                &self.readiness_checks,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Per selected group of licenses with reservations or ceilings: use against reserve and max.
pub(crate) fn group_gauges(out: &mut String, rows: &[(String, String, String, [i64; 4])]) {
    for (i, (metric, help)) in [
        (
            "seatkeeper_license_group_in_use",
            "Seats (granted and releasing) counting against a selected group of a license with reservations or ceilings.",
        ),
        (
            "seatkeeper_license_group_waiting",
            "A selected group's members waiting for a seat of the license.",
        ),
        (
            "seatkeeper_license_group_reserve",
            "Seats of the license kept for a selected group's members.",
        ),
        (
            "seatkeeper_license_group_max",
            "The most seats of the license a selected group's members may hold (absent: no ceiling).",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
        for (tenant, license, group, values) in rows {
            if i == 3 && values[3] < 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "{metric}{{tenant=\"{}\",license=\"{}\",group=\"{}\"}} {}",
                esc(tenant),
                esc(license),
                esc(group),
                values[i]
            );
        }
    }
}
