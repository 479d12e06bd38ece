//! Rate limits (governor), each answered with 429 and `Retry-After` (which Entra honours):
//!
//! - per client address, for requests without a credential (`client_requests_per_second`;
//!   health and readiness exempt); a credentialed request is limited by whose it is, below;
//! - per tenant for SCIM (`scim_requests_per_second`, `scim_burst`);
//! - per product token for the product API (`product_requests_per_second`, bursts to twice
//!   that; a batch of N checks or usage events counts N);
//! - per admin token for the admin API: the operator's token and each tenant admin token have
//!   buckets of their own, so one tenant's admin cannot drain the API for the others;
//! - a brute-force brake per client address on failed authentication. It answers only the
//!   failures: a request whose credential is valid is served whatever its address did, so
//!   strangers sharing an address with a tenant (a proxy, an identity provider's egress) cannot
//!   lock that tenant out.
//!
//! The client address is the TCP peer, unless the peer is a trusted proxy (`trusted_proxies`)
//! and `client_ip_header` is set: then it is the right-most address in that header that is not
//! a trusted proxy (entries to its left were written by whoever sent the request, and may lie).
//! The defaults let Entra's and Okta's normal rates through untouched.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;
use crate::store::TenantKey;

/// How long a client address that failed authentication too often is refused.
const BLOCK: Duration = Duration::from_secs(60);

/// Whose bucket an admin request draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AdminKey {
    Operator,
    /// A tenant admin token, by its id.
    Token(String),
}

pub struct Limits {
    scim: Option<DefaultKeyedRateLimiter<TenantKey>>,
    admin: Option<DefaultKeyedRateLimiter<AdminKey>>,
    /// Per product token, by the SHA-256 of the (proven) token.
    product: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    clients: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    client_ip_header: Option<String>,
    trusted: Vec<ipnet::IpNet>,
}

fn nz(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

fn wait(n: governor::NotUntil<governor::clock::QuantaInstant>) -> Duration {
    n.wait_time_from(DefaultClock::default().now())
}

impl Limits {
    pub fn new(c: &Config) -> Limits {
        let twice = |r: NonZeroU32| r.saturating_mul(nz(2).unwrap_or(r));
        Limits {
            scim: nz(c.scim_requests_per_second).map(|r| {
                RateLimiter::keyed(Quota::per_second(r).allow_burst(nz(c.scim_burst).unwrap_or(r)))
            }),
            admin: nz(c.admin_requests_per_second)
                .map(|r| RateLimiter::keyed(Quota::per_second(r).allow_burst(twice(r)))),
            product: nz(c.product_requests_per_second)
                .map(|r| RateLimiter::keyed(Quota::per_second(r).allow_burst(twice(r)))),
            clients: nz(c.client_requests_per_second)
                .map(|r| RateLimiter::keyed(Quota::per_second(r).allow_burst(twice(r)))),
            failures: nz(c.auth_failures_per_minute)
                .map(|r| RateLimiter::keyed(Quota::per_minute(r))),
            blocked: Mutex::new(HashMap::new()),
            client_ip_header: c.client_ip_header.clone(),
            trusted: c.trusted_proxies.clone(),
        }
    }

    fn trusts(&self, ip: &IpAddr) -> bool {
        let ip = canonical(*ip);
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// The client's address (see the module doc).
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr().map(|a| canonical(a.ip()));
        let (Some(peer), Some(h)) = (peer, &self.client_ip_header) else {
            return peer;
        };
        if !self.trusts(&peer) {
            return Some(peer);
        }
        let values: Vec<&str> = req
            .headers()
            .get_all(h.as_str())
            .filter_map(|v| v.to_str().ok())
            .collect();
        Some(client_from(&values, peer, |ip| self.trusts(ip)))
    }

    /// `Some(retry after)` when the address is over its request rate.
    pub fn address(&self, ip: Option<IpAddr>) -> Option<Duration> {
        let (ip, limiter) = (ip?, self.clients.as_ref()?);
        limiter.check_key(&ip).err().map(wait)
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

    /// Records a failed authentication; `Some(retry after)` when the address is refused
    /// (already, or from now on): the failure is then answered 429 rather than 401.
    pub fn failure(&self, ip: Option<IpAddr>) -> Option<Duration> {
        if let Some(d) = self.refused(ip) {
            return Some(d);
        }
        self.failed(ip)
    }

    /// Records a failed authentication; `Some(retry after)` when the address is now refused.
    fn failed(&self, ip: Option<IpAddr>) -> Option<Duration> {
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
        limiter.check_key(&tenant).err().map(wait)
    }

    /// `Some(retry after)` when this admin token is over its rate.
    pub fn admin(&self, key: AdminKey) -> Option<Duration> {
        let limiter = self.admin.as_ref()?;
        limiter.check_key(&key).err().map(wait)
    }

    /// `Some(retry after)` when this product token is over its rate with `n` more requests (a
    /// batch of N checks or usage events counts N).
    pub fn product(&self, token: &[u8; 32], n: u32) -> Option<Duration> {
        let limiter = self.product.as_ref()?;
        let n = NonZeroU32::new(n)?;
        match limiter.check_key_n(token, n) {
            Ok(Ok(())) => None,
            Ok(Err(wait_for)) => Some(wait(wait_for)),
            // More than the burst in one request: no wait makes room for it.
            Err(_) => Some(Duration::from_secs(1)),
        }
    }

    /// Forgets idle keys (called periodically).
    pub fn shrink(&self) {
        if let Some(l) = &self.scim {
            l.retain_recent();
        }
        for l in [&self.failures, &self.clients].into_iter().flatten() {
            l.retain_recent();
        }
        if let Some(l) = &self.admin {
            l.retain_recent();
        }
        if let Some(l) = &self.product {
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

/// An IPv4 address mapped into IPv6 (a dual-stack socket's peer) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client named by a trusted proxy's forwarding header (its values in order, each a
/// comma-separated list of hops, the nearest last): the right-most hop that `trusted` refuses.
/// When every hop is trusted, the left-most; an entry that is not an address stops the walk at
/// the hop that wrote it.
pub fn client_from(values: &[&str], peer: IpAddr, trusted: impl Fn(&IpAddr) -> bool) -> IpAddr {
    let mut client = peer;
    for hop in values.iter().flat_map(|v| v.split(',')).rev() {
        let hop = hop.trim();
        // `for=` (RFC 7239 style) and a port are tolerated: "[2001:db8::1]:443", "192.0.2.1:80".
        let hop = hop.strip_prefix("for=").unwrap_or(hop).trim_matches('"');
        let parsed = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()));
        let Some(ip) = parsed.map(canonical) else {
            return client;
        };
        client = ip;
        if !trusted(&ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let trusted = |a: &IpAddr| proxies.iter().any(|n| n.contains(a));
        let peer = ip("10.0.0.1");
        // A client that writes its own header cannot choose its address.
        assert_eq!(
            client_from(&["1.2.3.4, 198.51.100.9"], peer, trusted),
            ip("198.51.100.9")
        );
        // Proxies in a chain are skipped.
        assert_eq!(
            client_from(&["198.51.100.9, 10.1.1.1"], peer, trusted),
            ip("198.51.100.9")
        );
        // Several header lines read as one list.
        assert_eq!(
            client_from(&["203.0.113.5", "10.2.2.2"], peer, trusted),
            ip("203.0.113.5")
        );
        // Garbage stops at the hop that wrote it.
        assert_eq!(
            client_from(&["junk, 10.3.3.3"], peer, trusted),
            ip("10.3.3.3")
        );
        assert_eq!(client_from(&["junk"], peer, trusted), peer);
        // Only proxies: the left-most.
        assert_eq!(
            client_from(&["10.4.4.4, 10.5.5.5"], peer, trusted),
            ip("10.4.4.4")
        );
        // Ports and mapped addresses.
        assert_eq!(
            client_from(&["192.0.2.1:443"], peer, trusted),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_from(&["::ffff:192.0.2.2"], peer, trusted),
            ip("192.0.2.2")
        );
        assert_eq!(client_from(&[], peer, trusted), peer);
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after(Duration::from_secs(3)), 3);
    }
}
