//! The background task that delivers webhooks: it takes due deliveries from the store's webhook
//! outbox, signs and POSTs each, and records the outcome (delivered; retried with back-off after
//! a timeout, a connection error, 408, 429 or 5xx, honouring `Retry-After`; refused for good after
//! another answer). Delivery is at least once: a crash between the receiver's 2xx and the commit
//! that records it sends that one event again, with the same `webhook-id`, which receivers use to
//! drop the duplicate (as the Standard Webhooks specification says).
//!
//! Safety: the HTTP client resolves names through [`GuardedResolver`], which drops loopback,
//! private, link-local and metadata addresses (unless `webhook_allow_private_addresses`), so the
//! check holds at delivery time, after DNS, for the address actually connected to; redirects are
//! not followed; connect and response have timeouts; at most [`BODY_LIMIT`] bytes of a response
//! are read.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};

use super::{backoff, check_url, forbidden, retry_after, signature};
use crate::alloc::Millis;
use crate::store::webhooks::{DueDelivery, Outcome};
use crate::store::{self, Store};

/// How often the dispatcher looks for due deliveries.
const POLL: Duration = Duration::from_millis(250);
/// Deliveries sent at once (each the next of its subject at its endpoint).
const BATCH: usize = 32;
/// At most this much of a response body is read (it is kept as the error text of a failure).
pub const BODY_LIMIT: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Finished deliveries are pruned this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What the operator allows endpoints to be.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// `webhook_allow_http`.
    pub allow_http: bool,
    /// `webhook_allow_private_addresses`.
    pub allow_private: bool,
}

impl Policy {
    /// The operator's settings (`webhook_allow_http`, `webhook_allow_private_addresses`).
    pub fn of(config: &crate::config::Config) -> Policy {
        Policy {
            allow_http: config.webhook_allow_http,
            allow_private: config.webhook_allow_private_addresses,
        }
    }
}

/// Why an endpoint URL is refused at registration.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks an endpoint URL before it is registered: its form ([`check_url`]), and every address
/// its host resolves to now ([`forbidden`]).
pub async fn vet(url: &str, policy: Policy) -> Result<(), Refused> {
    let u = check_url(url, policy.allow_http).map_err(Refused)?;
    if policy.allow_private {
        return Ok(());
    }
    let port = u.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match u.host() {
        Some(url::Host::Ipv4(a)) => vec![IpAddr::V4(a)],
        Some(url::Host::Ipv6(a)) => vec![IpAddr::V6(a)],
        Some(url::Host::Domain(d)) => {
            let lookup = tokio::net::lookup_host((d, port));
            match tokio::time::timeout(CONNECT_TIMEOUT, lookup).await {
                Ok(Ok(it)) => it.map(|s| s.ip()).collect(),
                Ok(Err(e)) => return Err(Refused(format!("url: cannot resolve {d}: {e}"))),
                Err(_) => return Err(Refused(format!("url: resolving {d} timed out"))),
            }
        }
        None => return Err(Refused("url: no host".into())),
    };
    if addrs.is_empty() {
        return Err(Refused("url: the host has no address".into()));
    }
    for a in addrs {
        if let Some(why) = forbidden(a) {
            return Err(Refused(format!(
                "url: {a} is {why}; webhooks are not sent to internal addresses (the operator can allow them with webhook_allow_private_addresses)"
            )));
        }
    }
    Ok(())
}

/// The error of a name that resolved only to forbidden addresses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ForbiddenAddress(String);

/// Resolves names with the system resolver and keeps only addresses an endpoint may have.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| forbidden(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = all
                    .first()
                    .and_then(|a| forbidden(a.ip()).map(|w| format!("{} is {w}", a.ip())))
                    .unwrap_or_else(|| "no address".into());
                return Err(Box::new(ForbiddenAddress(format!(
                    "refused: {host} resolves to internal addresses only ({why})"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal in `e`'s chain of causes, if an address check refused the connection.
fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(f) = err.downcast_ref::<ForbiddenAddress>() {
            return Some(f.0.clone());
        }
        cur = err.source();
    }
    None
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
}

pub struct Dispatcher {
    store: Store,
    client: reqwest::Client,
    policy: Policy,
    /// An endpoint failing this long (ms) is disabled.
    disable_after: Millis,
    pub stats: Arc<Stats>,
    pub wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        policy: Policy,
        timeout: Duration,
        disable_after: Duration,
    ) -> Result<Dispatcher, String> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .user_agent(concat!("seatkeeper-webhooks/", env!("CARGO_PKG_VERSION")));
        if !policy.allow_private {
            b = b.dns_resolver(Arc::new(GuardedResolver));
        }
        let client = b.build().map_err(|e| format!("webhook client: {e}"))?;
        Ok(Dispatcher {
            store,
            client,
            policy,
            disable_after: disable_after.as_millis() as Millis,
            stats: Arc::default(),
            wake: Arc::default(),
        })
    }

    /// Runs until `stop` turns true; the deliveries in hand when it does are finished and
    /// their outcomes recorded first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut pruned = Instant::now();
        loop {
            match self.pass(&stop).await {
                Ok(()) => {}
                Err(store::Error::Closed) => break,
                Err(e) => tracing::error!(error = %e, "webhook dispatcher pass failed"),
            }
            if pruned.elapsed() > PRUNE_EVERY {
                pruned = Instant::now();
                if let Err(e) = self.store.prune_webhooks(self.store.now_ms()).await {
                    tracing::warn!(error = %e, "cannot prune delivered webhooks");
                }
            }
            if !crate::background::idle(&self.wake, POLL, &mut stop).await {
                break;
            }
        }
    }

    /// Delivers every due delivery, a batch at a time.
    pub async fn pass(&self, stop: &watch::Receiver<bool>) -> store::Result<()> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let due = self.store.due_webhooks(self.store.now_ms(), BATCH).await?;
            if due.is_empty() {
                return Ok(());
            }
            let outcomes =
                futures_util::future::join_all(due.iter().map(|d| self.deliver(d))).await;
            for (d, outcome) in due.iter().zip(outcomes) {
                self.store
                    .webhook_outcome(d.webhook, d.event, outcome, self.disable_after)
                    .await?;
            }
        }
    }

    /// One attempt.
    async fn deliver(&self, d: &DueDelivery) -> Outcome {
        let attempt = d.attempts + 1;
        let retry = |status: Option<u16>, error: String, after: Option<Millis>| {
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
            let next = self.store.now_ms() + after.unwrap_or_else(|| backoff(attempt));
            tracing::warn!(webhook = %d.webhook_id, id = %d.msg_id, attempt, error = %error,
                retry_at = %store::seats::rfc3339(next), "webhook not delivered; will retry");
            Outcome::Retry {
                status,
                error,
                next,
            }
        };
        let refused = |status: Option<u16>, error: String| {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(webhook = %d.webhook_id, id = %d.msg_id, error = %error, "webhook refused; not retried");
            Outcome::Refused {
                gone: status == Some(410),
                status,
                error,
            }
        };
        // The resolver guards names; an address written in the URL is checked here.
        if !self.policy.allow_private {
            if let Ok(u) = url::Url::parse(&d.url) {
                let ip = match u.host() {
                    Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
                    Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
                    _ => None,
                };
                if let Some(why) = ip.and_then(|ip| forbidden(ip).map(|w| (ip, w))) {
                    return refused(None, format!("refused: {} is {}", why.0, why.1));
                }
            }
        }
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let secrets: Vec<&str> = d.secrets.iter().map(String::as_str).collect();
        let sig = signature(&secrets, &d.msg_id, timestamp, d.body.as_bytes());
        let sent = self
            .client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sig)
            .body(d.body.clone())
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                if let Some(why) = refusal(&e) {
                    return refused(None, why);
                }
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                let mut msg = format!("{what}: {e}");
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                return retry(None, msg, None);
            }
        };
        let status = resp.status();
        let wait = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match tokio::time::timeout(CONNECT_TIMEOUT, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(BODY_LIMIT);
        let code = status.as_u16();
        if status.is_success() {
            self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(webhook = %d.webhook_id, id = %d.msg_id, status = code, "webhook delivered");
            return Outcome::Delivered { status: code };
        }
        let text = String::from_utf8_lossy(&body);
        let error = format!(
            "HTTP {code}{}{}",
            if text.trim().is_empty() { "" } else { ": " },
            text.trim().chars().take(300).collect::<String>()
        );
        if code == 408 || code == 429 || status.is_server_error() {
            retry(Some(code), error, wait)
        } else {
            refused(Some(code), error)
        }
    }
}
