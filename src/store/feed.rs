//! The record of what happened: the audit log of admin changes and reconciler reports (written
//! by the job that made the change, [`audit`]), the seat-event feed a product can follow with a
//! cursor, and a license's usage history for the console's chart.

use super::sql::{params, Engine};
use serde::Serialize;
use serde_json::Value;

use super::licenses::license_key;
use super::seats::rfc3339;
use super::{Result, Store, TenantKey};
use crate::alloc::Millis;

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

/// A seat event read from its columns `seq, license_id, user_id, user_name, event, at, cause`
/// (the first seven of the row).
pub(super) fn seat_event(r: &super::sql::Row) -> Result<SeatEvent> {
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

/// The newest entries of a tenant's audit log.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
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

    /// The audit log: admin changes, reconciler reports and every seat change, newest first.
    pub async fn audit_log(&self, tenant: TenantKey, limit: i64) -> Result<AuditLog> {
        self.read(move |c| {
            // A seat event's detail as the JSON text audit rows hold: the one function the
            // dialects spell differently.
            let object = match c.engine() {
                Engine::Sqlite => "json_object",
                Engine::Postgres => "json_build_object",
            };
            let mut st = c.prepare_cached(&format!(
                "SELECT at, actor, action, detail FROM (
                     SELECT seq, at, actor, action, detail, 1 AS src FROM audit WHERE tenant = ?1
                     UNION ALL
                     SELECT seq, at, 'allocator', 'seat.' || event,
                            CAST({object}('license', license_id, 'userId', user_id, 'userName', user_name, 'cause', cause) AS TEXT), 0
                     FROM seat_events WHERE tenant = ?1) AS entries
                 ORDER BY at DESC, src DESC, seq DESC LIMIT ?2"
            ))?;
            let entries = st
                .query_all(params![tenant, limit], |r| {
                    let detail: String = r.get(3)?;
                    Ok(AuditEntry {
                        at: rfc3339(r.get(0)?),
                        actor: r.get(1)?,
                        action: r.get(2)?,
                        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                    })
                })?;
            Ok(AuditLog { entries })
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
