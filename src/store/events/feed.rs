//! The record of what happened: the audit log of admin changes and reconciler reports (written
//! by the job that made the change, [`audit`]), the seat-event feed a product can follow with a
//! cursor, and a license's usage history for the console's chart.

use crate::store::engine::dialect;
use crate::store::engine::sql::params;
use serde::Serialize;
use serde_json::Value;

use crate::alloc::Millis;
use crate::store::allocation::license_view::license_key;
use crate::store::engine::time::rfc3339;
use crate::store::{Result, Store, TenantKey};

/// One seat event of the feed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeatEvent {
    /// Pass as `after` to read on from here.
    pub cursor: i64,
    /// The license's id.
    pub license: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    /// `granted`, `blocked`, `releasing`, `released`, `promoted`, or `held` (the user lost the
    /// entitlement; the circuit breaker keeps the seat until an admin decides).
    pub event: String,
    pub at: String,
    /// Why, when the event alone does not say: `idle` (an idle seat reclaimed), `manual` (an
    /// admin granted the seat ahead of the waitlist).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Most seat events [`Store::seat_moves`] reads.
pub const MOVES: i64 = 10_000;

/// What a change moved, by person (user names).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SeatMoves {
    pub gained: Vec<String>,
    /// Losing their seat after the grace.
    pub releasing: Vec<String>,
    pub lost: Vec<String>,
    pub waiting: Vec<String>,
    /// Whose loss the circuit breaker holds.
    pub held: Vec<String>,
}

impl SeatMoves {
    pub fn is_empty(&self) -> bool {
        self.gained.is_empty()
            && self.releasing.is_empty()
            && self.lost.is_empty()
            && self.waiting.is_empty()
            && self.held.is_empty()
    }
}

/// A seat event read from its columns `seq, license_id, user_id, user_name, event, at, cause`
/// (the first seven of the row).
pub(in crate::store) fn seat_event(r: &crate::store::engine::sql::Row) -> Result<SeatEvent> {
    Ok(SeatEvent {
        cursor: r.get(0)?,
        license: r.get(1)?,
        user_id: r.get(2)?,
        user_name: r.get(3)?,
        event: r.get(4)?,
        at: rfc3339(r.get(5)?),
        cause: r.get(6)?,
    })
}

/// A page of the seat-event feed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeatEvents {
    pub events: Vec<SeatEvent>,
    /// The cursor after the last event (the one given when there is none).
    pub next: i64,
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at: String,
    /// `admin`, `cli`, `console`, `reconciler`, `allocator`, ...
    pub actor: String,
    /// `license.update`, `seat.granted`, `reconcile`, ...
    pub action: String,
    /// What the action recorded; its shape depends on the action.
    pub detail: Value,
}

/// Which of a tenant's activity entries to read, newest first (the console's activity page).
/// Text filters are matched case-insensitively as parts; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    /// Older than this cursor (a page's `older`).
    pub before: Option<String>,
    /// Newer than this cursor (a page's `newer`): the `limit` entries just after it.
    pub after: Option<String>,
    /// At or after this instant (ms) ...
    pub from: Option<Millis>,
    /// ... and before this one.
    pub until: Option<Millis>,
    /// In the action, the actor or the detail; or naming one of these license ids.
    pub text: Option<String>,
    pub text_licenses: Vec<String>,
    /// The license's id, or the name a `license.create` entry gave.
    pub license_id: Option<String>,
    pub license_name: Option<String>,
    /// A part of the userName or user id.
    pub user: Option<String>,
    /// How the actor starts (`console` also matches `console:...`).
    pub actor: Option<String>,
    /// A part of the action (`seat.`, `_token.`).
    pub kind: Option<String>,
    pub limit: i64,
}

/// A page of activity, newest first.
#[derive(Debug, Clone)]
pub struct ActivityPage {
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next (older) page; `None` on the last.
    pub older: Option<String>,
    /// The cursor of the page before (newer); `None` on the first.
    pub newer: Option<String>,
}

/// `text` as a LIKE pattern matching it as a part, its wildcards escaped (with `\`).
fn part(text: &str) -> String {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// A license's seats in use and waiting right after one seat event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePoint {
    /// Milliseconds since the epoch.
    pub at: Millis,
    pub in_use: i64,
    pub waiting: i64,
}

impl Store {
    /// The seat-event feed after a cursor, oldest first.
    pub async fn seat_events(
        &self,
        tenant: TenantKey,
        after: i64,
        limit: i64,
    ) -> Result<SeatEvents> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT seq, license_id, user_id, user_name, event, at, cause FROM seat_events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?",
            )?;
            let events = st
                .query_all(params![tenant, after, limit], seat_event)?;
            let next = events.last().map_or(after, |e| e.cursor);
            Ok(SeatEvents { events, next })
        })
        .await
    }
    /// The cursor of the tenant's newest seat event (0 before any): taken before a change, it
    /// lets [`Store::seat_moves`] say what the change moved.
    pub async fn seat_cursor(&self, tenant: TenantKey) -> Result<i64> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM seat_events WHERE tenant = ?",
            )?
            .query_row([tenant], |r| r.get(0))
        })
        .await
    }

    /// Who gained, lost or started waiting for a seat of license `key` after cursor `after`,
    /// each person by where their last event left them (at most [`MOVES`] events read).
    pub async fn seat_moves(
        &self,
        tenant: TenantKey,
        key: String,
        after: i64,
    ) -> Result<SeatMoves> {
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let rows: Vec<(String, Option<String>, String)> = c
                .prepare_cached(
                    "SELECT user_id, user_name, event FROM seat_events
                     WHERE license_rk = ? AND seq > ? ORDER BY seq LIMIT ?",
                )?
                .query_all(params![l, after, MOVES], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            let mut last: Vec<(String, String, String)> = Vec::new();
            for (user, name, event) in rows {
                let name = name.unwrap_or_else(|| user.clone());
                match last.iter_mut().find(|(u, _, _)| *u == user) {
                    Some(e) => e.2 = event,
                    None => last.push((user, name, event)),
                }
            }
            let mut out = SeatMoves::default();
            for (_, name, event) in last {
                match event.as_str() {
                    "granted" | "promoted" => out.gained.push(name),
                    "releasing" => out.releasing.push(name),
                    "released" => out.lost.push(name),
                    "blocked" => out.waiting.push(name),
                    "held" => out.held.push(name),
                    _ => {}
                }
            }
            Ok(out)
        })
        .await
    }

    /// the database: a page reads at most `limit` entries, whatever the history's length.
    pub async fn activity_page(&self, tenant: TenantKey, q: ActivityQuery) -> Result<ActivityPage> {
        self.read(move |c| {
            let object = dialect::json_object(c);
            let f = |name: &str| dialect::json_text(c, "detail", name);
            let parse = |b: &str| -> Option<(Millis, i64, i64)> {
                let mut it = b.split('.').map(|p| p.parse::<i64>().ok());
                Some((it.next()??, it.next()??, it.next()??))
            };
            // Newer than a cursor: the entries just after it, read oldest first.
            let newer = q.after.as_deref().and_then(parse);
            let cursor = if newer.is_some() { None } else { q.before.as_deref().and_then(parse) };
            let (ca, cs, cq) = cursor.map_or((None, None, None), |(a, s, q)| (Some(a), Some(s), Some(q)));
            let (na, ns, nq) = newer.map_or((None, None, None), |(a, s, q)| (Some(a), Some(s), Some(q)));
            let order = if newer.is_some() { "ASC" } else { "DESC" };
            let text_lic = if q.text_licenses.is_empty() {
                String::new()
            } else {
                // License ids are this tenant's own UUIDs, checked as such before they are
                // written into the statement.
                let ids: Vec<String> = q
                    .text_licenses
                    .iter()
                    .filter(|i| uuid::Uuid::parse_str(i).is_ok())
                    .map(|i| format!("'{i}'"))
                    .collect();
                if ids.is_empty() { String::new() } else { format!(" OR lic IN ({})", ids.join(",")) }
            };
            let sql = format!(
                "SELECT at, src, seq, actor, action, detail FROM (
                     SELECT seq, at, actor, action, detail, CAST(1 AS BIGINT) AS src, {lic} AS lic, {name} AS lname,
                            {uname} AS uname, {uid} AS uid
                     FROM audit WHERE tenant = ?1
                     UNION ALL
                     SELECT seq, at, 'allocator', 'seat.' || event,
                            CAST({object}('license', license_id, 'userId', user_id, 'userName', user_name, 'cause', cause) AS TEXT), CAST(0 AS BIGINT),
                            license_id, NULL, user_name, user_id
                     FROM seat_events WHERE tenant = ?1) AS entries
                 WHERE (CAST(?2 AS BIGINT) IS NULL OR at < ?2 OR (at = ?2 AND (src < ?3 OR (src = ?3 AND seq < ?4))))
                   AND (CAST(?5 AS TEXT) IS NULL OR lower(action || ' ' || actor || ' ' || detail) LIKE ?5 ESCAPE '\\'{text_lic})
                   AND (CAST(?6 AS TEXT) IS NULL OR lic = ?6 OR lower(lname) = lower(CAST(?7 AS TEXT)))
                   AND (CAST(?8 AS TEXT) IS NULL OR lower(uname) LIKE ?8 ESCAPE '\\' OR lower(uid) LIKE ?8 ESCAPE '\\')
                   AND (CAST(?9 AS TEXT) IS NULL OR lower(actor) LIKE ?9 ESCAPE '\\')
                   AND (CAST(?10 AS TEXT) IS NULL OR action LIKE ?10 ESCAPE '\\')
                   AND (CAST(?12 AS BIGINT) IS NULL OR at > ?12 OR (at = ?12 AND (src > ?13 OR (src = ?13 AND seq > ?14))))
                   AND (CAST(?15 AS BIGINT) IS NULL OR at >= ?15)
                   AND (CAST(?16 AS BIGINT) IS NULL OR at < ?16)
                 ORDER BY at {order}, src {order}, seq {order} LIMIT ?11",
                lic = f("license"),
                name = f("name"),
                uname = f("userName"),
                uid = f("userId"),
            );
            let text = q.text.as_deref().map(part);
            let user = q.user.as_deref().map(part);
            let actor = q.actor.as_deref().map(|a| {
                let p = part(a);
                p[1..].to_owned() // a prefix: no leading wildcard
            });
            let kind = q.kind.as_deref().map(part);
            let limit = q.limit.clamp(1, 1000);
            let mut st = c.prepare(&sql)?;
            let rows = st.query_all(
                params![tenant, ca, cs, cq, text, q.license_id, q.license_name, user, actor, kind, limit + 1, na, ns, nq, q.from, q.until],
                |r| {
                    let detail: String = r.get(5)?;
                    let at: Millis = r.get(0)?;
                    let (src, seq): (i64, i64) = (r.get(1)?, r.get(2)?);
                    Ok((
                        format!("{at}.{src}.{seq}"),
                        AuditEntry {
                            at: rfc3339(at),
                            actor: r.get(3)?,
                            action: r.get(4)?,
                            detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                        },
                    ))
                },
            )?;
            let more = rows.len() as i64 > limit;
            let mut rows: Vec<(String, AuditEntry)> = rows.into_iter().take(limit as usize).collect();
            if newer.is_some() {
                rows.reverse();
            }
            let first = rows.first().map(|(c, _)| c.clone());
            let last = rows.last().map(|(c, _)| c.clone());
            // Read newer: there are older entries (the cursor's), and newer ones when more came.
            // Read older: newer ones when the page started from a cursor.
            let (older, newer_cursor) = if newer.is_some() {
                (last, if more { first } else { None })
            } else {
                (if more { last } else { None }, if cursor.is_some() { first } else { None })
            };
            Ok(ActivityPage {
                entries: rows.into_iter().map(|(_, e)| e).collect(),
                older,
                newer: newer_cursor,
            })
        })
        .await
    }

    /// The license's seats in use and waiting after each seat event, oldest first (at most the
    /// last `limit` events): the usage chart.
    pub async fn seat_history(
        &self,
        tenant: TenantKey,
        key: String,
        limit: i64,
    ) -> Result<Vec<UsagePoint>> {
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let mut st = c.prepare_cached(
                "SELECT at, in_use, waiting FROM (
                     SELECT seq, at, in_use, waiting FROM seat_events
                     WHERE license_rk = ? AND in_use IS NOT NULL ORDER BY seq DESC LIMIT ?) AS recent
                 ORDER BY seq",
            )?;
            st
                .query_all(params![l, limit], |r| {
                    Ok(UsagePoint {
                        at: r.get(0)?,
                        in_use: r.get(1)?,
                        waiting: r.get(2)?,
                    })
                })
        })
        .await
    }
}
