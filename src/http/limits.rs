//! Rate limits (governor): per tenant for SCIM, for the admin API, and a brute-force brake per
//! client address on failed authentication. Over a limit the answer is 429 with `Retry-After`
//! (which Entra honours). The defaults let Entra's and Okta's normal rates through untouched.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;
use crate::store::TenantKey;

/// How long a client address that failed authentication too often is refused.
const BLOCK: Duration = Duration::from_secs(60);

pub struct Limits {
    scim: Option<DefaultKeyedRateLimiter<TenantKey>>,
    admin: Option<DefaultDirectRateLimiter>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    client_ip_header: Option<String>,
}

fn nz(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

impl Limits {
    pub fn new(c: &Config) -> Limits {
        Limits {
            scim: nz(c.scim_requests_per_second).map(|r| {
                RateLimiter::keyed(Quota::per_second(r).allow_burst(nz(c.scim_burst).unwrap_or(r)))
            }),
            admin: nz(c.admin_requests_per_second).map(|r| {
                RateLimiter::direct(
                    Quota::per_second(r).allow_burst(r.saturating_mul(nz(2).unwrap_or(r))),
                )
            }),
            failures: nz(c.auth_failures_per_minute)
                .map(|r| RateLimiter::keyed(Quota::per_minute(r))),
            blocked: Mutex::new(HashMap::new()),
            client_ip_header: c.client_ip_header.clone(),
        }
    }

    /// The client's address: the configured proxy header's first address, else the TCP peer.
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        if let Some(h) = &self.client_ip_header {
            if let Some(ip) = req
                .headers()
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
            {
                return Some(ip);
            }
        }
        req.peer_addr().map(|a| a.ip())
    }

    /// `Some(retry after)` while the address is refused for failing authentication.
    pub fn refused(&self, ip: Option<IpAddr>) -> Option<Duration> {
        let ip = ip?;
        let mut blocked = self.blocked.lock().ok()?;
        match blocked.get(&ip) {
            Some(until) if *until > Instant::now() => Some(*until - Instant::now()),
            Some(_) => {
                blocked.remove(&ip);
                None
            }
            None => None,
        }
    }

    /// Records a failed authentication; `Some(retry after)` when the address is now refused.
    pub fn failed(&self, ip: Option<IpAddr>) -> Option<Duration> {
        let (ip, limiter) = (ip?, self.failures.as_ref()?);
        if limiter.check_key(&ip).is_ok() {
            return None;
        }
        if let Ok(mut b) = self.blocked.lock() {
            b.insert(ip, Instant::now() + BLOCK);
        }
        tracing::warn!(client = %ip, "too many failed authentications: refusing this address for a minute");
        Some(BLOCK)
    }

    /// `Some(retry after)` when the tenant is over its SCIM rate.
    pub fn scim(&self, tenant: TenantKey) -> Option<Duration> {
        let limiter = self.scim.as_ref()?;
        limiter
            .check_key(&tenant)
            .err()
            .map(|n| n.wait_time_from(DefaultClock::default().now()))
    }

    /// `Some(retry after)` when the admin API is over its rate.
    pub fn admin(&self) -> Option<Duration> {
        let limiter = self.admin.as_ref()?;
        limiter
            .check()
            .err()
            .map(|n| n.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets idle keys (called periodically).
    pub fn shrink(&self) {
        if let Some(l) = &self.scim {
            l.retain_recent();
        }
        if let Some(l) = &self.failures {
            l.retain_recent();
        }
        if let Ok(mut b) = self.blocked.lock() {
            let now = Instant::now();
            b.retain(|_, until| *until > now);
        }
    }
}

/// Seconds for a `Retry-After` header (at least 1).
pub fn retry_after(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.is_zero()))
}
