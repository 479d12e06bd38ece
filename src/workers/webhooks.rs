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

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};

use crate::alloc::Millis;
use crate::store::events::webhooks::{DueDelivery, Outcome};
use crate::store::{self, Store};
use crate::webhook::vet::{refusal, GuardedResolver, Policy, CONNECT_TIMEOUT};
pub use crate::webhook::PER_ENDPOINT;
use crate::webhook::{backoff, forbidden, retry_after, signature};

/// How often the dispatcher looks for due deliveries.
const POLL: Duration = Duration::from_millis(250);
/// Most deliveries in flight at once, across every endpoint and tenant. A delivery is a task of
/// its own: a slow endpoint holds its own slots, never a batch that others wait for.
const CONCURRENCY: usize = 64;
/// An answer slower than this backs its endpoint off like a failure, so that an endpoint that
/// is slow to answer does not keep slots from everyone else.
pub const SLOW: Duration = Duration::from_secs(2);
/// At most this much of a response body is read (it is kept as the error text of a failure).
pub const BODY_LIMIT: usize = 4096;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Rounds that found nothing due and nothing in flight: what was due is delivered (tests
    /// wait for the next such round instead of sleeping).
    pub idle_rounds: AtomicU64,
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
    /// The dispatcher; `proxy` is the operator's `webhook_proxy` (proxies of the environment,
    /// `HTTP(S)_PROXY` and `ALL_PROXY`, are never used: a proxy resolves the names itself and the
    /// internal-address guard would not see them).
    pub fn new(
        store: Store,
        policy: Policy,
        timeout: Duration,
        disable_after: Duration,
        proxy: Option<&str>,
    ) -> Result<Dispatcher, String> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .no_proxy()
            .user_agent(concat!("seatkeeper-webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(p) = proxy {
            b = b.proxy(
                reqwest::Proxy::all(p).map_err(|_| "webhook_proxy: not a proxy URL".to_owned())?,
            );
        }
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

    /// Runs until `stop` turns true; the deliveries in flight when it does are finished and
    /// their outcomes recorded first. Each delivery runs as a task of its own, at most
    /// [`CONCURRENCY`] at once and [`PER_ENDPOINT`] per endpoint, taken in turns by tenant: a
    /// tenant whose endpoints are slow holds its own slots and delays no one else.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let mut tasks: tokio::task::JoinSet<i64> = tokio::task::JoinSet::new();
        let mut busy: std::collections::HashMap<i64, usize> = Default::default();
        let mut down = crate::background::Outage::default();
        loop {
            if *stop.borrow() {
                break;
            }
            let room = CONCURRENCY.saturating_sub(tasks.len());
            if room > 0 {
                let exclude: Vec<i64> = busy.keys().copied().collect();
                match me
                    .store
                    .due_webhooks(me.store.now_ms(), room, &exclude)
                    .await
                {
                    Ok(due) => {
                        down.ok("webhook dispatcher");
                        if due.is_empty() && tasks.is_empty() {
                            me.stats.idle_rounds.fetch_add(1, Ordering::SeqCst);
                        }
                        for d in due {
                            *busy.entry(d.webhook).or_default() += 1;
                            let me = me.clone();
                            tasks.spawn(async move {
                                me.attempt(&d).await;
                                d.webhook
                            });
                        }
                    }
                    Err(store::Error::Closed) => break,
                    Err(e) if e.unavailable() => down.failed("webhook dispatcher", &e),
                    Err(e) => tracing::error!(error = %e, "webhook dispatcher pass failed"),
                }
            }
            let pause = down.pause(POLL);
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(webhook) = done {
                        release(&mut busy, webhook);
                    }
                    // More may finish at once: take them all before claiming again.
                    while let Some(Ok(webhook)) = tasks.try_join_next() {
                        release(&mut busy, webhook);
                    }
                }
                alive = crate::background::idle(&me.wake, pause, &mut stop) => {
                    if !alive {
                        break;
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Delivers every due delivery (as [`Dispatcher::run`] would, waiting for each round to
    /// end) and returns when none is due: for tests, which drain the queue with it instead of
    /// sleeping.
    pub async fn pass(&self, stop: &watch::Receiver<bool>) -> store::Result<()> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let due = self
                .store
                .due_webhooks(self.store.now_ms(), CONCURRENCY, &[])
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            futures_util::future::join_all(due.iter().map(|d| self.attempt(d))).await;
        }
    }

    /// One delivery sent and its outcome recorded (a slow answer backs the endpoint off).
    async fn attempt(&self, d: &DueDelivery) {
        let started = Instant::now();
        let outcome = self.deliver(d).await;
        let slow = started.elapsed() > SLOW;
        let recorded = self
            .store
            .webhook_outcome(d.webhook, d.event, outcome.clone(), self.disable_after)
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, webhook = %d.webhook_id, "cannot record a webhook outcome; the delivery's lease lets it be sent again");
            return;
        }
        if slow && matches!(outcome, Outcome::Delivered { .. }) {
            // Answered, but slowly: the endpoint rests for a while (longer the slower it was)
            // before its next delivery, as a failing one does.
            let pause = (started.elapsed().as_millis() as Millis * 6).clamp(10_000, 300_000);
            tracing::warn!(webhook = %d.webhook_id, ms = started.elapsed().as_millis() as u64,
                "webhook endpoint answers slowly; its next deliveries wait");
            if let Err(e) = self
                .store
                .webhook_rest(d.webhook, self.store.now_ms() + pause)
                .await
            {
                tracing::warn!(error = %e, "cannot back off a slow webhook endpoint");
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
                retry_at = %store::engine::time::rfc3339(next), "webhook not delivered; will retry");
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
                if ip.is_some_and(|ip| forbidden(ip).is_some()) {
                    return refused(None, "refused: the host is an internal address".into());
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

/// One delivery of `webhook` ended.
fn release(busy: &mut std::collections::HashMap<i64, usize>, webhook: i64) {
    if let Some(n) = busy.get_mut(&webhook) {
        *n -= 1;
        if *n == 0 {
            busy.remove(&webhook);
        }
    }
}
