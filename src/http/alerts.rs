//! Notifiable events that no write carries: a tenant's SCIM requests failing again and again,
//! and requests with a revoked, expired or wrong token of the tenant. Counted here in memory;
//! when one is due, the caller records it in the outbox (`Store::notify_event`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::store::TenantKey;

/// Failures kept per tenant to name the most common errors.
const KEPT: usize = 1000;
/// A tenant's refused tokens are recorded at most this often (with the count in between).
const AUTH_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Failures {
    recent: VecDeque<(Instant, String)>,
    last_alert: Option<Instant>,
}

#[derive(Default)]
struct Refusals {
    count: u64,
    last_recorded: Option<Instant>,
}

pub struct Alerts {
    threshold: usize,
    window: Duration,
    failures: Mutex<HashMap<TenantKey, Failures>>,
    refusals: Mutex<HashMap<(TenantKey, String), Refusals>>,
}

impl Alerts {
    pub fn new(threshold: u32, window_seconds: u64) -> Alerts {
        Alerts {
            threshold: threshold as usize,
            window: Duration::from_secs(window_seconds),
            failures: Default::default(),
            refusals: Default::default(),
        }
    }

    /// Counts a failed SCIM request of `tenant` (`label`: status, error type and route). Returns
    /// the event to record when this failure reaches the threshold within the window, at most
    /// once per window.
    pub fn request_failed(&self, tenant: TenantKey, label: String) -> Option<Value> {
        if self.threshold == 0 {
            return None;
        }
        let now = Instant::now();
        let mut map = self.failures.lock().ok()?;
        let f = map.entry(tenant).or_default();
        f.recent.push_back((now, label));
        while f
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
            || f.recent.len() > KEPT
        {
            f.recent.pop_front();
        }
        let quiet = f
            .last_alert
            .is_none_or(|t| now.duration_since(t) >= self.window);
        if f.recent.len() < self.threshold || !quiet {
            return None;
        }
        f.last_alert = Some(now);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (_, l) in &f.recent {
            *counts.entry(l.as_str()).or_default() += 1;
        }
        let mut top: Vec<(&str, usize)> = counts.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let errors: Vec<String> = top
            .iter()
            .take(5)
            .map(|(l, n)| format!("{n} × {l}"))
            .collect();
        Some(json!({
            "failedRequests": f.recent.len(),
            "withinSeconds": self.window.as_secs(),
            "mostCommonErrors": errors.join("; "),
        }))
    }

    /// Counts a refused token of `tenant`. Returns the event to record at most once a minute
    /// per token, with how many refusals it stands for.
    pub fn token_refused(
        &self,
        tenant: TenantKey,
        token_id: &str,
        reason: &str,
        client: Option<String>,
    ) -> Option<Value> {
        let now = Instant::now();
        let mut map = self.refusals.lock().ok()?;
        if map.len() > 10_000 {
            map.retain(|_, r| {
                r.last_recorded
                    .is_some_and(|t| now.duration_since(t) < AUTH_EVERY)
            });
        }
        let r = map.entry((tenant, token_id.to_owned())).or_default();
        r.count += 1;
        if r.last_recorded
            .is_some_and(|t| now.duration_since(t) < AUTH_EVERY)
        {
            return None;
        }
        let count = std::mem::take(&mut r.count);
        r.last_recorded = Some(now);
        Some(json!({
            "tokenId": token_id,
            "reason": reason,
            "client": client,
            "requests": count,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_alert_once_per_window_with_the_most_common_errors() {
        let a = Alerts::new(3, 600);
        assert!(a.request_failed(1, "409 uniqueness".into()).is_none());
        assert!(a.request_failed(1, "400 invalidValue".into()).is_none());
        let e = a.request_failed(1, "409 uniqueness".into()).unwrap();
        assert_eq!(e["failedRequests"], 3);
        assert_eq!(
            e["mostCommonErrors"],
            "2 × 409 uniqueness; 1 × 400 invalidValue"
        );
        assert!(a.request_failed(1, "409 uniqueness".into()).is_none());
        assert!(a.request_failed(2, "404".into()).is_none(), "per tenant");
        assert!(Alerts::new(0, 600).request_failed(1, "x".into()).is_none());
    }

    #[test]
    fn refusals_are_recorded_at_most_once_a_minute_per_token() {
        let a = Alerts::new(20, 600);
        let first = a.token_refused(1, "abc", "revoked", None).unwrap();
        assert_eq!(first["requests"], 1);
        assert!(a.token_refused(1, "abc", "revoked", None).is_none());
        assert!(a.token_refused(1, "def", "wrong secret", None).is_some());
    }
}
