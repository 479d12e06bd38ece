//! A run's seat events for webhook endpoints: queued by `seats::TxSeats` as the allocator
//! records them, written into the webhook outbox when the run flushes, with the waitlist
//! positions of the users who became blocked read once per license.

use std::collections::{HashMap, HashSet};

use crate::alloc::{EventKind, LicenseKey, Millis, SeatState};
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::events::webhooks;
use crate::store::{Result, TenantKey};
use crate::webhook::{EventType, Events};

/// A seat event some webhook endpoint subscribes to, until it is written.
pub(in crate::store) struct HookEvent {
    pub l: LicenseKey,
    pub user: String,
    pub kind: EventKind,
    pub previous: Option<SeatState>,
    pub cause: Option<&'static str>,
    pub at: Millis,
}

/// From this many waiting users of one license in one run, their webhook positions come from
/// one read of the waitlist instead of one count each.
const POSITIONS_BY_SCAN: usize = 16;

/// Writes a run's queued seat events into the webhook outbox for the endpoints `to`.
pub(in crate::store) fn write(
    c: &Db,
    tenant_key: TenantKey,
    to: &[(i64, Events)],
    queue: Vec<HookEvent>,
) -> Result<()> {
    let tenant = webhooks::tenant_ref(c, tenant_key)?;
    // Waitlist positions of the users who became blocked, as they stand after the run.
    let mut waiting: HashMap<LicenseKey, Vec<&str>> = HashMap::new();
    for q in queue.iter().filter(|q| q.kind == EventKind::Blocked) {
        waiting.entry(q.l).or_default().push(&q.user);
    }
    let mut positions: HashMap<(LicenseKey, &str), i64> = HashMap::new();
    for (l, users) in waiting {
        if users.len() < POSITIONS_BY_SCAN {
            let mut st = c.prepare_cached(
                "SELECT count(*) FROM seats s JOIN seats me ON me.license_rk = s.license_rk
                 WHERE me.license_rk = ?1 AND me.user_id = ?2 AND me.state = 'blocked' AND s.state = 'blocked'
                   AND (s.pinned > me.pinned OR (s.pinned = me.pinned AND (s.entitled_at < me.entitled_at
                        OR (s.entitled_at = me.entitled_at AND s.user_id <= me.user_id))))",
            )?;
            for u in users {
                let n: i64 = st.query_row(params![l, u], |r| r.get(0))?;
                if n > 0 {
                    positions.insert((l, u), n);
                }
            }
        } else {
            let wanted: HashSet<&str> = users.into_iter().collect();
            let mut st = c.prepare_cached(
                "SELECT user_id FROM seats WHERE license_rk = ? AND state = 'blocked' ORDER BY pinned DESC, entitled_at, user_id",
            )?;
            let order = st.query_all([l], |r| r.get::<_, String>(0))?;
            for (i, u) in order.iter().enumerate() {
                if let Some(u) = wanted.get(u.as_str()) {
                    positions.insert((l, u), i as i64 + 1);
                }
            }
        }
    }
    let mut licenses: HashMap<LicenseKey, serde_json::Value> = HashMap::new();
    let mut users =
        c.prepare_cached("SELECT user_name, external_id FROM users WHERE tenant = ? AND id = ?")?;
    for q in &queue {
        let license = match licenses.get(&q.l) {
            Some(v) => v.clone(),
            None => {
                let v = c
                    .prepare_cached("SELECT id, name FROM licenses WHERE rk = ?")?
                    .query_row([q.l], |r| {
                        Ok(serde_json::json!({"id": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?}))
                    })?;
                licenses.insert(q.l, v.clone());
                v
            }
        };
        let (user_name, external_id): (Option<String>, Option<String>) = users
            .query_row(params![tenant_key, q.user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or_default();
        let data = serde_json::json!({
            "tenant": tenant,
            "license": license,
            "user": {"id": q.user, "userName": user_name, "externalId": external_id},
            "state": EventType::state_after(q.kind),
            "previous": q.previous.map(SeatState::as_str),
            "position": positions.get(&(q.l, q.user.as_str())),
            "cause": q.cause,
        });
        webhooks::record(
            c,
            tenant_key,
            to,
            EventType::of_seat(q.kind).unwrap_or(EventType::SeatGranted),
            &q.user,
            q.at,
            data,
        )?;
    }
    Ok(())
}
