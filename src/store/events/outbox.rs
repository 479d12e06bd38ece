//! The notification outbox (see `schema.sql`): events recorded in the transaction of the change
//! that caused them, coalesced into one open digest per (tenant, kind, license), then closed,
//! rendered once and delivered by the sender in `workers::mail`.
//!
//! Digest life: `collecting` → (window over) `closing` → (rendered) `pending` → `sent` |
//! `failed` (a permanent SMTP rejection) | `skipped` (no recipients); or `combined` when every
//! recipient got its notices in a combined email (`notify::combined`: one email per recipient
//! for a window's license notices), an outbox row of kind `combined` whose events name the
//! digests it carries. A transient failure keeps
//! the row `pending` with a later `due`. A failed row stays until someone retries it (back to
//! `pending`) or dismisses it (`dismissed`); finished rows go after 30 days.

use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{json, Value};

use crate::alloc::{LicenseKey, Millis, Report};
use crate::notify::items::{self, stored, Item, Num, Text};
use crate::notify::{addresses_for, Kind, Recipient};
use crate::store::engine::time::rfc3339;
use crate::store::{Error, Lock, Result, Store, TenantKey};

/// The state of an outbox row (see the module doc). The string forms are stable: stored, the
/// admin API's `state` filter, the CLI, `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestState {
    Collecting,
    Closing,
    Pending,
    Sent,
    Failed,
    Skipped,
    Dismissed,
    /// Its notices went out in combined emails (rows of kind `combined`), not on their own.
    Combined,
}

impl DigestState {
    pub const ALL: [DigestState; 8] = [
        DigestState::Collecting,
        DigestState::Closing,
        DigestState::Pending,
        DigestState::Sent,
        DigestState::Failed,
        DigestState::Skipped,
        DigestState::Dismissed,
        DigestState::Combined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DigestState::Collecting => "collecting",
            DigestState::Closing => "closing",
            DigestState::Pending => "pending",
            DigestState::Sent => "sent",
            DigestState::Failed => "failed",
            DigestState::Skipped => "skipped",
            DigestState::Dismissed => "dismissed",
            DigestState::Combined => "combined",
        }
    }

    pub fn parse(s: &str) -> Option<DigestState> {
        DigestState::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Failed or skipped: someone may retry or dismiss it.
    pub fn needs_action(self) -> bool {
        matches!(self, DigestState::Failed | DigestState::Skipped)
    }
}

/// How long a node's claim on a message it is sending lasts (PostgreSQL, several nodes).
const SEND_LEASE_MS: Millis = 120_000;

/// Records events (about `license`, 0 for the tenant as a whole) into the open digest of their
/// kind, opening one when there is none. Each item gets `at` when it has none.
pub(crate) fn record<T: Item>(
    c: &Db,
    tenant: TenantKey,
    license: LicenseKey,
    at: Millis,
    items: Vec<T>,
) -> Result<()> {
    let n = items.len();
    record_each(c, tenant, T::KIND, license, at, n, items.iter().map(stored))
}

/// As [`record`], for a license its caller has just read to be enforced (not observing).
fn record_enforced<T: Item>(
    c: &Db,
    tenant: TenantKey,
    license: LicenseKey,
    at: Millis,
    items: Vec<T>,
) -> Result<()> {
    let n = items.len();
    write_each(c, tenant, T::KIND, license, at, n, items.iter().map(stored))
}

/// As [`record`], for `n` items made one at a time (a selection can block half a million
/// users: their items are written as they are made, never held together).
fn record_each(
    c: &Db,
    tenant: TenantKey,
    kind: Kind,
    license: LicenseKey,
    at: Millis,
    n: usize,
    items: impl IntoIterator<Item = Value>,
) -> Result<()> {
    // A license in shadow mode tells no one: its notices would describe seats nobody enforces.
    if n == 0 || (license > 0 && crate::store::allocation::license_view::observing(c, license)?) {
        return Ok(());
    }
    write_each(c, tenant, kind, license, at, n, items)
}

/// Writes `n` items into the open digest of their kind (the license known to notify).
fn write_each(
    c: &Db,
    tenant: TenantKey,
    kind: Kind,
    license: LicenseKey,
    at: Millis,
    n: usize,
    items: impl IntoIterator<Item = Value>,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let (id, total): (i64, i64) = c
        .prepare_cached(
            "INSERT INTO outbox (tenant, kind, license_rk, license_name, state, created, due, items, message_id)
             VALUES (?1, ?2, ?3, (SELECT name FROM licenses WHERE rk = ?3 AND tenant = ?1), 'collecting', ?4, ?4, ?5, ?6)
             ON CONFLICT (tenant, kind, license_rk) WHERE state = 'collecting'
             DO UPDATE SET items = outbox.items + excluded.items, license_name = coalesce(excluded.license_name, outbox.license_name)
             RETURNING id, items",
        )?
        .query_row(
            params![tenant, kind.as_str(), license, at, n as i64, token],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    let mut seq = total - n as i64;
    let stamp = rfc3339(at);
    for mut item in items {
        seq += 1;
        if let Some(o) = item.as_object_mut() {
            o.entry("at").or_insert_with(|| json!(stamp));
        }
        // Sent with the next statement: a digest of many items waits for the database once.
        c.execute_later(
            "INSERT INTO outbox_items (outbox_id, seq, at, detail) VALUES (?, ?, ?, ?)",
            params![id, seq, at, item.to_string()],
        )?;
    }
    Ok(())
}

/// The seat-use level of a license: 100 when full, 90 from 90 %, else 0 (none without seats).
fn level(in_use: i64, capacity: i64) -> i64 {
    if capacity <= 0 {
        0
    } else if in_use >= capacity {
        100
    } else if in_use * 10 >= capacity * 9 {
        90
    } else {
        0
    }
}

/// Notifies a license crossing 90 % or 100 % of its seats, once per crossing: the level is
/// re-armed only after use falls at least 5 points below it, so one seat coming and going at the
/// boundary does not mail anyone again.
pub(crate) fn check_threshold(c: &Db, tenant: TenantKey, l: LicenseKey, at: Millis) -> Result<()> {
    // The license's mode and overage in the same read: an observing license's levels are
    // judged when it is enforced (the switch runs this again).
    let row: Option<(Use, String)> = c
        .prepare_cached(
            "SELECT seats, granted + releasing, alert_level, mode, overage, overage_percent, overage_notified
             FROM licenses WHERE rk = ? AND tenant = ?",
        )?
        .query_row(params![l, tenant], |r| {
            Ok((
                Use {
                    seats: r.get(0)?,
                    in_use: r.get(1)?,
                    alert_level: r.get(2)?,
                    overage: r.get(4)?,
                    overage_percent: r.get(5)?,
                    overage_notified: r.get(6)?,
                },
                r.get(3)?,
            ))
        })
        .optional()?;
    match row {
        Some((u, mode)) if mode != "observe" => check_use(c, tenant, l, at, &u),
        _ => Ok(()),
    }
}

/// As [`check_threshold`], for a license whose use and levels its caller knows (an allocation
/// run read them with the license and counted its seats since).
pub(crate) fn check_use(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    at: Millis,
    u: &Use,
) -> Result<()> {
    let (capacity, in_use, stored) = (u.seats, u.in_use, u.alert_level);
    let now = level(in_use, capacity);
    let next = if now > stored {
        record_enforced(
            c,
            tenant,
            l,
            at,
            vec![items::Threshold {
                level: Num(now),
                in_use: Num(in_use),
                capacity: Num(capacity),
                ..Default::default()
            }],
        )?;
        now
    } else if now < stored && in_use * 100 < (stored - 5) * capacity {
        now
    } else {
        stored
    };
    if next != stored {
        c.execute_later(
            "UPDATE licenses SET alert_level = ? WHERE rk = ?",
            params![next, l],
        )?;
    }
    check_overage(c, tenant, l, at, u)
}

/// A license's use and what was last notified of it ([`check_threshold`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Use {
    pub seats: i64,
    pub in_use: i64,
    pub alert_level: i64,
    pub overage: i64,
    pub overage_percent: i64,
    pub overage_notified: i64,
}

/// Notifies a license starting to use its agreed overage (use above the seat count), once
/// until use is back within the seats. Without an agreed overage, use above the seat count
/// comes from a lowered count (`capacity_lowered` says so), not from grants.
fn check_overage(c: &Db, tenant: TenantKey, l: LicenseKey, at: Millis, u: &Use) -> Result<()> {
    let (seats, in_use, notified) = (u.seats, u.in_use, u.overage_notified);
    let extra = crate::capacity::overage_seats(seats, u.overage, u.overage_percent);
    let over = in_use > seats && extra > 0;
    if over && notified == 0 {
        record_enforced(
            c,
            tenant,
            l,
            at,
            vec![items::Overage {
                seats: Num(seats),
                overage_seats: Num(extra),
                in_use: Num(in_use),
                ..Default::default()
            }],
        )?;
    }
    if over != (notified != 0) {
        c.execute_later(
            "UPDATE licenses SET overage_notified = ? WHERE rk = ?",
            params![i64::from(over), l],
        )?;
    }
    Ok(())
}

/// What an allocation run notifies: the users it blocked (one digest per license) and the
/// thresholds the licenses it touched crossed.
/// `known` gives the use of the licenses the run read and counted (an enforced license; `None`
/// for one that observes, which notifies nothing), so that no statement reads them again.
pub(crate) fn after_allocation(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    report: &Report,
    known: impl Fn(LicenseKey) -> Option<Option<Use>>,
) -> Result<()> {
    record_blocked_users(c, tenant, at, &report.newly_blocked, &known)?;
    for l in &report.touched {
        match known(*l) {
            Some(Some(u)) => check_use(c, tenant, *l, at, &u)?,
            Some(None) => {}
            None => check_threshold(c, tenant, *l, at)?,
        }
    }
    Ok(())
}

/// Records the users `report` holds as newly blocked, and forgets them there: a long run (a
/// selection) calls this as it goes; [`after_allocation`] records the rest.
pub(crate) fn record_blocked(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    report: &mut crate::alloc::Report,
) -> Result<()> {
    let blocked = std::mem::take(&mut report.newly_blocked);
    record_blocked_users(c, tenant, at, &blocked, &|_| None)
}

/// `known`, as [`after_allocation`]'s: a license known to observe records nothing, one known to
/// enforce is not read again.
fn record_blocked_users(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    blocked: &[(LicenseKey, crate::alloc::UserId)],
    known: &impl Fn(LicenseKey) -> Option<Option<Use>>,
) -> Result<()> {
    let mut per_license: std::collections::BTreeMap<LicenseKey, usize> = Default::default();
    for (l, _) in blocked {
        *per_license.entry(*l).or_default() += 1;
    }
    for (l, n) in per_license {
        let users = blocked.iter().filter(|(k, _)| *k == l);
        let items = users.map(|(_, user)| {
            stored(&items::Blocked {
                user_id: Text(user.clone()),
                ..Default::default()
            })
        });
        match known(l) {
            Some(Some(_)) => write_each(c, tenant, Kind::Blocked, l, at, n, items)?,
            Some(None) => {}
            None => record_each(c, tenant, Kind::Blocked, l, at, n, items)?,
        }
    }
    Ok(())
}

/// What became of a closed digest.
pub enum Closed {
    /// Rendered: the exact message to deliver.
    Ready {
        subject: String,
        message_id: String,
        /// The whole RFC 5322 message, as it is sent.
        bytes: Vec<u8>,
    },
    NoRecipients {
        subject: String,
    },
    Unrenderable(String),
    /// Every recipient (`recipients`) got its notices in combined emails.
    Combined {
        subject: String,
    },
}

/// One closed digest of a window, rendered: what became of it, and the operator's copy.
pub struct RenderedDigest {
    pub id: i64,
    pub recipients: Vec<String>,
    pub closed: Closed,
    pub copy: Option<OperatorCopy>,
}

/// A combined email of a window: the digests it carries (outbox ids), rendered for its
/// recipients.
pub struct RenderedCombined {
    pub parts: Vec<i64>,
    pub recipients: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub bytes: Vec<u8>,
}

/// The operator's copy of a digest (`operator_notify`), rendered.
pub struct OperatorCopy {
    pub recipients: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub bytes: Vec<u8>,
}

/// A message due for delivery.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub kind: String,
    pub tenant: TenantKey,
    pub subject: String,
    pub recipients: Vec<String>,
    pub message: Vec<u8>,
    pub attempts: i64,
}

/// One row of a tenant's outbox: a digest (or test message) and its delivery.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Notification {
    pub id: i64,
    /// The event kind (`blocked`, `threshold`, ..., `test`).
    pub kind: String,
    /// The license's name, for a license's digest.
    pub license: Option<String>,
    pub state: DigestState,
    pub created: String,
    /// When a pending message is tried next.
    #[serde(rename = "nextAttempt")]
    pub next_attempt: Option<String>,
    /// Events the digest holds.
    pub items: i64,
    pub attempts: i64,
    #[serde(rename = "lastError")]
    pub last_error: Option<String>,
    /// Fixed when the digest was rendered.
    pub recipients: Option<Vec<String>>,
    pub subject: Option<String>,
    /// Once rendered.
    #[serde(rename = "messageId")]
    pub message_id: Option<String>,
    pub sent: Option<String>,
}

/// The newest rows of a tenant's outbox and its counts by state.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Notifications {
    pub notifications: Vec<Notification>,
    pub counts: std::collections::BTreeMap<String, i64>,
}

/// One outbox row with its events.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct NotificationDetail {
    #[serde(flatten)]
    pub notification: Notification,
    /// Each event's detail as recorded; its fields depend on the kind.
    pub events: Vec<Value>,
}

fn outbox_row(r: &Row) -> Result<Notification> {
    let recipients: Option<String> = r.get(9)?;
    let state = DigestState::parse(&r.get::<_, String>(3)?)
        .ok_or_else(|| Error::Internal("an outbox row in an unknown state".into()))?;
    let due: i64 = r.get(5)?;
    Ok(Notification {
        id: r.get(0)?,
        kind: r.get(1)?,
        license: r.get(2)?,
        next_attempt: (state == DigestState::Pending).then(|| rfc3339(due)),
        state,
        created: rfc3339(r.get(4)?),
        items: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        recipients: recipients.and_then(|s| serde_json::from_str(&s).ok()),
        subject: r.get(10)?,
        message_id: r.get(11)?,
        sent: r.get::<_, Option<i64>>(12)?.map(rfc3339),
    })
}

const OUTBOX_COLS: &str = "id, kind, license_name, state, created, due, items, attempts, last_error, recipients, subject, \
     CASE WHEN message IS NULL THEN NULL ELSE message_id END, sent";

/// Test messages one tenant may queue in an hour: a test is for checking the mail path, not
/// for mailing.
pub const TESTS_PER_HOUR: usize = 5;
const HOUR_MS: Millis = 3_600_000;

impl Store {
    /// Closes the digests whose window began at or before `cutoff`; returns every digest waiting
    /// to be rendered (including any a crash left behind).
    pub async fn close_digests(&self, cutoff: Millis) -> Result<Vec<i64>> {
        self.write(Lock::None, move |c| {
            c.prepare_cached(
                "UPDATE outbox SET state = 'closing' WHERE state = 'collecting' AND due <= ?",
            )?
            .execute([cutoff])?;
            let mut st =
                c.prepare_cached("SELECT id FROM outbox WHERE state = 'closing' ORDER BY id")?;
            st.query_all::<i64, _>([], |r| r.get(0))
        })
        .await
    }

    /// Stores what became of a window's closed digests, in one transaction: each digest
    /// `pending` with its exact message, `skipped` without recipients, `failed` when it cannot
    /// be rendered, `combined` when its recipients got it in combined emails; the operator's
    /// copy of each (once per digest: a retried digest is not copied again); and each combined
    /// email as a `pending` row of kind `combined`. All or nothing: when another node stored
    /// any of these digests first, nothing is stored ([`Error::Conflict`]) and the digests still
    /// closing are rendered again by the next pass, so that a notice is never marked as sent in
    /// a combined email that was not queued.
    pub async fn window_rendered(
        &self,
        digests: Vec<RenderedDigest>,
        combined: Vec<RenderedCombined>,
    ) -> Result<()> {
        let ticker = self.ticker();
        self.write(Lock::None, move |c| {
            let at = ticker.now();
            let mut moved = std::collections::HashSet::new();
            for d in &digests {
                let (id, to) = (d.id, json!(d.recipients).to_string());
                let n = match &d.closed {
                    Closed::Ready { subject, message_id, bytes } => c
                        .prepare_cached(
                            "UPDATE outbox SET state = 'pending', due = ?, recipients = ?, subject = ?, message_id = ?, message = ?
                             WHERE id = ? AND state = 'closing'",
                        )?
                        .execute(params![at, to, subject, message_id, bytes, id])?,
                    Closed::NoRecipients { subject } => c
                        .prepare_cached(
                            "UPDATE outbox SET state = 'skipped', due = ?, recipients = ?, subject = ?, last_error = ? WHERE id = ? AND state = 'closing'",
                        )?
                        .execute(params![at, to, subject, "no recipient of the tenant or the license receives this kind", id])?,
                    Closed::Unrenderable(why) => c
                        .prepare_cached(
                            "UPDATE outbox SET state = 'failed', due = ?, recipients = ?, last_error = ? WHERE id = ? AND state = 'closing'",
                        )?
                        .execute(params![at, to, why, id])?,
                    Closed::Combined { subject } => c
                        .prepare_cached(
                            "UPDATE outbox SET state = 'combined', due = ?, recipients = ?, subject = ? WHERE id = ? AND state = 'closing'",
                        )?
                        .execute(params![at, to, subject, id])?,
                };
                if n == 0 {
                    return Err(Error::Conflict(format!(
                        "notification {id} was rendered by another node"
                    )));
                }
                moved.insert(id);
                if let Some(copy) = &d.copy {
                    c.prepare_cached(
                        "INSERT INTO outbox (tenant, kind, license_rk, license_name, state, created, due, items, recipients, subject, message_id, message, copy_of)
                         SELECT tenant, kind, license_rk, license_name, 'pending', created, ?1, items, ?2, ?3, ?4, ?5, id FROM outbox
                         WHERE id = ?6 AND NOT EXISTS (SELECT 1 FROM outbox WHERE copy_of = ?6)",
                    )?
                    .execute(params![at, json!(copy.recipients).to_string(), copy.subject, copy.message_id, copy.bytes, id])?;
                }
            }
            for m in &combined {
                let Some(&first) = m.parts.first() else { continue };
                if !m.parts.iter().all(|p| moved.contains(p)) {
                    return Err(Error::Internal("a combined email carries a digest of another window".into()));
                }
                let id: i64 = c
                    .prepare_cached(
                        "INSERT INTO outbox (tenant, kind, license_rk, state, created, due, items, recipients, subject, message_id, message)
                         SELECT tenant, 'combined', 0, 'pending', ?1, ?1, ?2, ?3, ?4, ?5, ?6 FROM outbox WHERE id = ?7
                         RETURNING id",
                    )?
                    .query_row(
                        params![at, m.parts.len() as i64, json!(m.recipients).to_string(), m.subject, m.message_id, m.bytes, first],
                        |r| r.get(0),
                    )?;
                let mut st = c.prepare_cached(
                    "INSERT INTO outbox_items (outbox_id, seq, at, detail) VALUES (?, ?, ?, ?)",
                )?;
                for (seq, part) in m.parts.iter().enumerate() {
                    let (kind, license): (String, Option<String>) = c
                        .prepare_cached("SELECT kind, license_name FROM outbox WHERE id = ?")?
                        .query_row([*part], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    let detail = json!({"notification": part, "kind": kind, "license": license, "at": rfc3339(at)});
                    st.execute(params![id, seq as i64 + 1, at, detail.to_string()])?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Messages due for an attempt at `now`, in turns by tenant (each tenant's oldest before any
    /// tenant's second), so that one tenant's burst of mail delays no one else's.
    pub async fn due_messages(&self, now: Millis, limit: usize) -> Result<Vec<Outgoing>> {
        let read = |r: &Row| {
            let to: String = r.get(3)?;
            Ok(Outgoing {
                id: r.get(0)?,
                kind: r.get(1)?,
                tenant: r.get(2)?,
                recipients: serde_json::from_str(&to).unwrap_or_default(),
                message: r.get(4)?,
                attempts: r.get(5)?,
                subject: r.get(6)?,
            })
        };
        // Each message taken is claimed (leased), so that one node sends it; a node that dies
        // mid-send leaves it to be claimed again after the lease (see `engine::claim`).
        self.write(Lock::None, move |c| {
            let claim = crate::store::engine::claim::lease_sql(
                c,
                "outbox",
                "id",
                "SELECT id FROM (
                   SELECT id, due, ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY due, id) AS turn
                   FROM outbox WHERE state = 'pending' AND due <= ?1) t
                 ORDER BY turn, due, id LIMIT ?2",
                "id, kind, tenant, recipients, message, attempts, coalesce(subject, '')",
            );
            c.prepare(&claim)?
                .query_all(params![now, limit as i64, SEND_LEASE_MS], read)
        })
        .await
    }

    /// Records the outcome of one delivery attempt: `Ok` sent; `Err((reason, None))` failed for
    /// good; `Err((reason, Some(next)))` to be tried again at `next`.
    pub async fn delivery(
        &self,
        id: i64,
        outcome: std::result::Result<(), (String, Option<Millis>)>,
    ) -> Result<()> {
        let ticker = self.ticker();
        self.write(Lock::None, move |c| {
            let at = ticker.now();
            match &outcome {
                Ok(()) => c
                    .prepare_cached("UPDATE outbox SET state = 'sent', sent = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?")?
                    .execute(params![at, id])?,
                Err((why, None)) => c
                    .prepare_cached("UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?")?
                    .execute(params![why, id])?,
                Err((why, Some(next))) => c
                    .prepare_cached("UPDATE outbox SET due = ?, attempts = attempts + 1, last_error = ? WHERE id = ?")?
                    .execute(params![next, why, id])?,
            };
            Ok(())
        })
        .await
    }

    /// The tenant's outbox, newest first; `state` filters.
    pub async fn notifications(
        &self,
        tenant: TenantKey,
        state: Option<String>,
        limit: i64,
    ) -> Result<Notifications> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {OUTBOX_COLS} FROM outbox WHERE tenant = ?1 AND copy_of IS NULL AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = st
                .query_all(params![tenant, state, limit], outbox_row)?;
            let mut st = c.prepare_cached("SELECT state, count(*) FROM outbox WHERE tenant = ? AND copy_of IS NULL GROUP BY state")?;
            let counts = st
                .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_>>()?;
            Ok(Notifications { notifications: rows, counts })
        })
        .await
    }

    /// One outbox row with its items (first `limit`).
    pub async fn notification(
        &self,
        tenant: TenantKey,
        id: i64,
        limit: i64,
    ) -> Result<NotificationDetail> {
        self.read(move |c| {
            let notification = c
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLS} FROM outbox WHERE tenant = ? AND id = ? AND copy_of IS NULL"
                ))?
                .query_row(params![tenant, id], outbox_row)
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("notification {id}")))?;
            let mut st = c.prepare_cached(
                "SELECT detail FROM outbox_items WHERE outbox_id = ? ORDER BY seq LIMIT ?",
            )?;
            let events = st
                .query_map(params![id, limit], |r| r.get::<_, String>(0))?
                .map(|d| d.map(|d| serde_json::from_str::<Value>(&d).unwrap_or(Value::Null)))
                .collect::<Result<Vec<Value>>>()?;
            Ok(NotificationDetail {
                notification,
                events,
            })
        })
        .await
    }

    /// Queues a test message to `to` (the tenant's recipients when empty), sent at once; at
    /// most [`TESTS_PER_HOUR`] an hour per tenant (`Error::TooMany` past it).
    pub async fn notification_test(
        &self,
        tenant: TenantKey,
        to: Vec<String>,
        actor: crate::store::events::audit::Actor,
    ) -> Result<Notification> {
        if let Some(bad) = to
            .iter()
            .find(|e| !crate::store::access::tenants::valid_email(e))
        {
            return Err(Error::Invalid(format!("{bad:?} is not an email address")));
        }
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            // At most TESTS_PER_HOUR test messages a tenant, counted under its lock.
            let recent: Vec<Millis> = c
                .prepare_cached(
                    "SELECT created FROM outbox WHERE tenant = ? AND kind = 'test' AND created > ? ORDER BY created",
                )?
                .query_all(params![tenant, at - HOUR_MS], |r| r.get(0))?;
            if recent.len() >= TESTS_PER_HOUR {
                let frees = recent[recent.len() - TESTS_PER_HOUR] + HOUR_MS;
                return Err(Error::TooMany {
                    message: format!(
                        "at most {TESTS_PER_HOUR} test messages an hour per tenant; try again later"
                    ),
                    retry_after: ((frees - at) / 1000).max(1) as u64,
                });
            }
            let configured: String =
                c.query_row("SELECT notify FROM tenants WHERE rk = ?", [tenant], |r| r.get(0))?;
            let configured: Vec<Recipient> = serde_json::from_str(&configured).unwrap_or_default();
            let recipients = if to.is_empty() {
                json!(addresses_for(Kind::Test, &[&configured])).to_string()
            } else {
                // A test goes only to addresses the tenant already mails (its own recipients and
                // its licenses'): the endpoint must not turn the service into a relay for
                // whoever holds a tenant admin token.
                let mut known: Vec<String> = configured.iter().map(|r| r.email().to_owned()).collect();
                let mut st = c.prepare_cached("SELECT notify FROM licenses WHERE tenant = ?")?;
                for list in st.query_map([tenant], |r| r.get::<_, String>(0))? {
                    let list: Vec<Recipient> = serde_json::from_str(&list?).unwrap_or_default();
                    known.extend(list.iter().map(|r| r.email().to_owned()));
                }
                if let Some(stranger) =
                    to.iter().find(|e| !known.iter().any(|k| k.eq_ignore_ascii_case(e)))
                {
                    return Err(Error::Invalid(format!(
                        "{stranger:?} is not one of the tenant's notify recipients: a test goes only to them"
                    )));
                }
                json!(to).to_string()
            };
            let token = uuid::Uuid::new_v4().simple().to_string();
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO outbox (tenant, kind, state, created, due, items, recipients, message_id)
                     VALUES (?, 'test', 'closing', ?, ?, 1, ?, ?) RETURNING id",
                )?
                .query_row(params![tenant, at, at, recipients, token], |r| r.get(0))?;
            c.prepare_cached("INSERT INTO outbox_items (outbox_id, seq, at, detail) VALUES (?, 1, ?, ?)")?
                .execute(params![id, at, json!({"to": serde_json::from_str::<Value>(&recipients).unwrap_or(Value::Null), "at": rfc3339(at)}).to_string()])?;
            let row = c
                .prepare_cached(&format!("SELECT {OUTBOX_COLS} FROM outbox WHERE id = ?"))?
                .query_row([id], outbox_row)?;
            crate::store::events::audit::record(c, tenant, at, actor.as_str(), crate::store::events::acts::Act::NotificationTest(crate::store::events::acts::TestSent { notification: id, to: row.recipients.clone().unwrap_or_default() }))?;
            Ok(row)
        })
        .await
    }

    /// Sends a failed (or skipped) message again: back to `pending`, due now. A skipped digest
    /// was never rendered for anyone, so it is rendered again for the current recipients.
    pub async fn retry_notification(
        &self,
        tenant: TenantKey,
        id: i64,
        actor: crate::store::events::audit::Actor,
    ) -> Result<Notification> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let n = c
                .prepare_cached(
                    "UPDATE outbox SET state = CASE WHEN message IS NULL OR recipients = '[]' THEN 'closing' ELSE 'pending' END,
                            recipients = CASE WHEN recipients = '[]' THEN NULL ELSE recipients END,
                            due = ?, last_error = NULL
                     WHERE tenant = ? AND id = ? AND copy_of IS NULL AND state IN ('failed', 'skipped')",
                )?
                .execute(params![at, tenant, id])?;
            if n == 0 {
                return Err(Error::Conflict(format!(
                    "notification {id} is not failed or skipped (only those can be retried)"
                )));
            }
            crate::store::events::audit::record(c, tenant, at, actor.as_str(), crate::store::events::acts::Act::NotificationRetry(crate::store::events::acts::NotificationRef { notification: id }))?;
            c.prepare_cached(&format!("SELECT {OUTBOX_COLS} FROM outbox WHERE id = ?"))?
                .query_row([id], outbox_row)
        })
        .await
    }

    /// Closes a failed (or skipped) message without sending it: someone has seen it and acted.
    /// Failed messages are otherwise kept, and shown, until retried or dismissed.
    pub async fn dismiss_notification(
        &self,
        tenant: TenantKey,
        id: i64,
        actor: crate::store::events::audit::Actor,
    ) -> Result<Notification> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE outbox SET state = 'dismissed'
                     WHERE tenant = ? AND id = ? AND copy_of IS NULL AND state IN ('failed', 'skipped')",
                )?
                .execute(params![tenant, id])?;
            if n == 0 {
                return Err(Error::Conflict(format!(
                    "notification {id} is not failed or skipped (only those can be dismissed)"
                )));
            }
            crate::store::events::audit::record(c, tenant, ticker.now(), actor.as_str(), crate::store::events::acts::Act::NotificationDismiss(crate::store::events::acts::NotificationRef { notification: id }))?;
            c.prepare_cached(&format!("SELECT {OUTBOX_COLS} FROM outbox WHERE id = ?"))?
                .query_row([id], outbox_row)
        })
        .await
    }

    /// Each tenant's provisioning health (metrics): (name, last provider call in ms or 0,
    /// silent by the tenant's own threshold).
    pub async fn provisioning_gauges(&self) -> Result<Vec<(String, i64, bool)>> {
        let now = self.now_ms();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT name, last_provider_call, created, expected_sync_seconds FROM tenants ORDER BY name",
            )?;
            st.query_all([], |r| {
                let (name, last, created, expected): (String, Option<String>, String, i64) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let last_ms = last.as_deref().map(crate::store::engine::time::millis_of);
                let since = last_ms.unwrap_or_else(|| crate::store::engine::time::millis_of(&created));
                Ok((name, last_ms.unwrap_or(0), crate::store::access::tenants::silent_at(now, since, expected)))
            })
        })
        .await
    }

    /// Webhook endpoints by state, over every tenant and the operator (metrics).
    pub async fn webhook_endpoint_counts(&self) -> Result<(i64, i64)> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT count(*) FILTER (WHERE enabled), count(*) FILTER (WHERE NOT enabled) FROM webhooks",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }

    /// Outbox rows by state, over every tenant (metrics).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
            st.query_all([], |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }
}
