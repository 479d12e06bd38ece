//! The background sender: closes digests whose window is over, renders each once, and delivers
//! the stored bytes through lettre's async SMTP transport (or into the `mail/` folder beside the
//! database when no `smtp_url` is configured).
//!
//! Delivery is at-least-once with one narrow window: a message is marked `sent` right after the
//! server accepted it (`250` to DATA). Only a crash between that reply and the commit that
//! follows (milliseconds) makes a restart send it again, with the same Message-ID, which mail
//! systems use to drop the duplicate. A 5xx reply marks it `failed` with the server's reason;
//! anything else (4xx, connection refused, timeout, TLS) is retried with exponential back-off
//! and jitter, for as long as it takes: an outage delays mail, never loses it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::address::{Address, Envelope};
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand::Rng;
use tokio::sync::{watch, Notify};

use crate::alloc::Millis;
use crate::notify::{combined, render, Digest};
use crate::store::events::outbox::{
    Closed, OperatorCopy, Outgoing, RenderedCombined, RenderedDigest,
};
use crate::store::{self, Store};

/// How often the sender looks for due work when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);
/// First retry after a transient failure; doubles per attempt up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: Millis = 30_000;
const MAX_BACKOFF_MS: Millis = 30 * 60_000;
/// One SMTP conversation may take this long.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes.
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP configured: each message is written as an `.eml` file here and logged.
    Folder(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("smtp_url: {0}")]
    Url(String),
    #[error("smtp_ca_file {path}: {message}")]
    Ca { path: PathBuf, message: String },
}

impl Transport {
    /// The SMTP transport for `url` (lettre's URL form: `smtp://host:25`,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://host:465`), trusting `ca` (a PEM file)
    /// besides the public roots when given.
    pub fn smtp(url: &str, ca: Option<&Path>) -> Result<Transport, Error> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Error::Url(e.to_string()))?;
        if let Some(path) = ca {
            let ca_err = |message: String| Error::Ca {
                path: path.to_owned(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| ca_err(e.to_string()))?;
            let parsed = url::Url::parse(url).map_err(|e| Error::Url(e.to_string()))?;
            let host = parsed
                .host_str()
                .ok_or_else(|| Error::Url("no host".into()))?
                .trim_matches(['[', ']'])
                .to_owned();
            let params = TlsParameters::builder(host)
                .add_root_certificate(cert)
                .build_rustls()
                .map_err(|e| ca_err(e.to_string()))?;
            let mode = parsed
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned());
            let tls =
                match (parsed.scheme(), mode.as_deref()) {
                    ("smtps", _) => Tls::Wrapper(params),
                    ("smtp", Some("required")) => Tls::Required(params),
                    ("smtp", Some("opportunistic")) => Tls::Opportunistic(params),
                    _ => return Err(ca_err(
                        "a CA file needs a TLS smtp_url (smtps://..., or smtp://...?tls=required)"
                            .into(),
                    )),
                };
            b = b.tls(tls);
        }
        Ok(Transport::Smtp(b.timeout(Some(SMTP_TIMEOUT)).build()))
    }

    /// The `mail/` folder beside the SQLite database (in the working directory when the
    /// database is a PostgreSQL URL).
    pub fn folder_beside(database: &Path) -> Transport {
        let Some(database) = crate::store::engine::address::file(database) else {
            return Transport::Folder(PathBuf::from("mail"));
        };
        let dir = database
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Transport::Folder(dir.join("mail"))
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    /// Passes the sender finished (tests wait for one to begin and end after a change).
    pub passes: AtomicU64,
}

pub struct Sender {
    pub store: Store,
    pub transport: Transport,
    pub from: Mailbox,
    /// How long a digest collects events before it is sent.
    pub window_ms: Millis,
    pub public_url: Option<String>,
    /// `operator_notify`: who gets the operator's copy of which kinds.
    pub operator: Vec<crate::notify::Recipient>,
    pub wake: Arc<Notify>,
    pub stats: Arc<Stats>,
}

/// The delay before attempt `attempts + 1`: 30 s doubling to 30 min, ±20 % jitter.
fn backoff(attempts: i64) -> Millis {
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1 << attempts.clamp(0, 16))
        .min(MAX_BACKOFF_MS);
    let jitter = rand::thread_rng().gen_range(-0.2..=0.2);
    base + (base as f64 * jitter) as Millis
}

impl Sender {
    /// Runs until `stop` turns true; the message being sent when it does is finished and its
    /// outcome recorded first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if let Transport::Folder(dir) = &self.transport {
            tracing::info!(folder = %dir.display(), "no smtp_url: notification emails are written to this folder and logged, not sent");
        }
        let mut down = crate::background::Outage::default();
        loop {
            match self.pass(&stop).await {
                Ok(()) => down.ok("notification sender"),
                Err(store::Error::Closed) => break,
                Err(e) if e.unavailable() => down.failed("notification sender", &e),
                Err(e) => tracing::error!(error = %e, "notification sender pass failed"),
            }
            self.stats.passes.fetch_add(1, Ordering::Relaxed);
            if !crate::background::idle(&self.wake, down.pause(POLL), &mut stop).await {
                break;
            }
        }
    }

    /// One pass: close and render due digests (a window's license notices combined into one
    /// email per recipient, `notify::combined`), then deliver every due message.
    pub async fn pass(&self, stop: &watch::Receiver<bool>) -> store::Result<()> {
        let now = self.store.now_ms();
        let mut window = Vec::new();
        for id in self.store.close_digests(now - self.window_ms).await? {
            if let Some(found) = self.store.digest(id, self.public_url.clone()).await? {
                window.push(found);
            }
        }
        if !window.is_empty() {
            self.render_window(window).await?;
        }
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            // One message at a time is claimed by this node (so several nodes share a burst):
            // once taken, it is the message in hand and is delivered even if a stop comes.
            let due = self.store.due_messages(self.store.now_ms(), 1).await?;
            if due.is_empty() {
                return Ok(());
            }
            for (i, m) in due.into_iter().enumerate() {
                if i > 0 && *stop.borrow() {
                    return Ok(());
                }
                let outcome = self.deliver(&m).await;
                self.store.delivery(m.id, outcome).await?;
            }
        }
    }

    /// Renders a window's closed digests: the combined emails [`combined::plan`] decides,
    /// then each digest for the addresses that get it on its own; stores it all at once.
    async fn render_window(&self, window: Vec<(Digest, Vec<String>)>) -> store::Result<()> {
        let mut plan = combined::plan(&window);
        let mut combined_out = Vec::new();
        for (parts, to) in std::mem::take(&mut plan.combined) {
            let digests: Vec<Digest> = parts.iter().map(|&i| window[i].0.clone()).collect();
            let (from, recipients) = (self.from.clone(), to.clone());
            let token = uuid::Uuid::new_v4().simple().to_string();
            let rendered = tokio::task::spawn_blocking(move || {
                let refs: Vec<&Digest> = digests.iter().collect();
                combined::render(&refs, &from, &recipients, SystemTime::now(), &token)
            })
            .await
            .map_err(|e| store::Error::Internal(e.to_string()))?;
            match rendered {
                Ok(r) => combined_out.push(RenderedCombined {
                    parts: parts.iter().map(|&i| window[i].0.id).collect(),
                    recipients: to,
                    subject: r.subject,
                    message_id: r.message_id,
                    bytes: r.bytes,
                }),
                Err(e) => {
                    // Each notice then goes to these addresses on its own (and fails there
                    // the same way, visibly, on its own row).
                    tracing::error!(error = %e, "cannot render a combined notification");
                    for &i in &parts {
                        plan.own[i].extend(to.iter().cloned());
                    }
                }
            }
        }
        let mut digests = Vec::new();
        for ((digest, all), own) in window.into_iter().zip(plan.own) {
            let id = digest.id;
            let copy = self.operator_copy(&digest).await;
            let closed = if own.is_empty() && !all.is_empty() {
                Closed::Combined {
                    subject: render::subject(&digest),
                }
            } else if own.is_empty() {
                tracing::warn!(
                    notification = id,
                    kind = digest.kind.as_str(),
                    tenant = %digest.tenant_name,
                    "the tenant has no notify recipients: notification skipped"
                );
                Closed::NoRecipients {
                    subject: render::subject(&digest),
                }
            } else {
                let from = self.from.clone();
                let recipients = own.clone();
                let rendered = tokio::task::spawn_blocking(move || {
                    render::render(&digest, &from, &recipients, SystemTime::now())
                })
                .await
                .map_err(|e| store::Error::Internal(e.to_string()))?;
                match rendered {
                    Ok(r) => Closed::Ready {
                        subject: r.subject,
                        message_id: r.message_id,
                        bytes: r.bytes,
                    },
                    Err(e) => {
                        tracing::error!(notification = id, error = %e, "cannot render a notification");
                        Closed::Unrenderable(e.to_string())
                    }
                }
            };
            // A combined digest lists everyone it reached; one of its own, who it is sent to.
            let recipients = if matches!(closed, Closed::Combined { .. }) {
                all
            } else {
                own
            };
            digests.push(RenderedDigest {
                id,
                recipients,
                closed,
                copy,
            });
        }
        match self.store.window_rendered(digests, combined_out).await {
            Err(store::Error::Conflict(why)) => {
                // Another node stored part of this window first: what is still closing is
                // rendered again by the next pass.
                tracing::debug!(reason = %why, "a digest window was rendered elsewhere");
                Ok(())
            }
            r => r,
        }
    }

    /// The operator's copy of `digest`, rendered, when `operator_notify` asks for its kind (a
    /// test message is the tenant's own and never copied).
    async fn operator_copy(&self, digest: &crate::notify::Digest) -> Option<OperatorCopy> {
        if digest.kind == crate::notify::Kind::Test {
            return None;
        }
        let to = crate::notify::addresses_for(digest.kind, &[&self.operator]);
        if to.is_empty() {
            return None;
        }
        let mut copy = digest.clone();
        copy.audience = crate::notify::Audience::Operator;
        let from = self.from.clone();
        let recipients = to.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            render::render(&copy, &from, &recipients, SystemTime::now())
        })
        .await
        .ok()?;
        match rendered {
            Ok(r) => Some(OperatorCopy {
                recipients: to,
                subject: r.subject,
                message_id: r.message_id,
                bytes: r.bytes,
            }),
            Err(e) => {
                tracing::error!(notification = digest.id, error = %e, "cannot render the operator's copy of a notification");
                None
            }
        }
    }

    async fn deliver(&self, m: &Outgoing) -> Result<(), (String, Option<Millis>)> {
        let retry = |why: String, stats: &Stats| {
            stats.retried.fetch_add(1, Ordering::Relaxed);
            let next = self.store.now_ms() + backoff(m.attempts);
            tracing::warn!(notification = m.id, kind = %m.kind, attempts = m.attempts + 1, error = %why,
                retry_at = %store::engine::time::rfc3339(next), "notification not delivered; will retry");
            Err((why, Some(next)))
        };
        match &self.transport {
            Transport::Smtp(smtp) => {
                let mut to = Vec::new();
                for r in &m.recipients {
                    match r.parse::<Address>() {
                        Ok(a) => to.push(a),
                        Err(_) => return self.failed(m, format!("{r:?} is not an address")),
                    }
                }
                let envelope = match Envelope::new(Some(self.from.email.clone()), to) {
                    Ok(e) => e,
                    Err(e) => return self.failed(m, e.to_string()),
                };
                match smtp.send_raw(&envelope, &m.message).await {
                    Ok(_) => self.sent(m, None),
                    Err(e) if e.is_permanent() => {
                        self.failed(m, format!("rejected by the SMTP server: {e}"))
                    }
                    Err(e) => retry(e.to_string(), &self.stats),
                }
            }
            Transport::Folder(dir) => {
                let path = dir.join(format!("{:06}-{}.eml", m.id, m.kind));
                let tmp = dir.join(format!(".{:06}.tmp", m.id));
                let bytes = m.message.clone();
                let written = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(&tmp, &bytes).await?;
                    tokio::fs::rename(&tmp, &path).await
                }
                .await;
                match written {
                    Ok(()) => self.sent(m, Some(&path)),
                    Err(e) => retry(format!("cannot write {}: {e}", path.display()), &self.stats),
                }
            }
        }
    }

    fn sent(&self, m: &Outgoing, file: Option<&Path>) -> Result<(), (String, Option<Millis>)> {
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        match file {
            Some(f) => {
                tracing::info!(notification = m.id, kind = %m.kind, to = ?m.recipients, file = %f.display(),
                "notification written (no smtp_url configured)")
            }
            None => {
                tracing::info!(notification = m.id, kind = %m.kind, to = ?m.recipients, "notification sent")
            }
        }
        Ok(())
    }

    fn failed(&self, m: &Outgoing, why: String) -> Result<(), (String, Option<Millis>)> {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(notification = m.id, kind = %m.kind, to = ?m.recipients, error = %why, "notification failed for good");
        Err((why, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        for attempts in 0..30 {
            let b = backoff(attempts);
            let base = (FIRST_BACKOFF_MS << attempts.min(16)).min(MAX_BACKOFF_MS);
            assert!(b >= base * 8 / 10 && b <= base * 12 / 10, "{attempts}: {b}");
        }
    }

    #[tokio::test]
    async fn a_ca_file_needs_a_tls_url() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        assert!(Transport::smtp("smtp://127.0.0.1:2525", Some(&ca)).is_err());
        assert!(Transport::smtp("ftp://127.0.0.1", None).is_err());
        assert!(Transport::smtp("smtp://127.0.0.1:2525", None).is_ok());
    }
}
