//! The allocator's [`SeatStore`] over a write transaction. The entry points that run the
//! allocator after every write, in the same transaction, live in `allocate`.

use crate::store::engine::sql::strings;
use crate::store::engine::sql::{params, Db, OptionalExtension, Row};

use std::collections::HashMap;

use crate::alloc::{
    Breaker, Counts, EventKind, GroupId, Held, HoldId, LicenseKey, Loss, LossWindow, Millis,
    OnLowered, OverrideKind, Policy, PoolRule, Seat, SeatState, SeatStore, UserId,
};
use crate::store::events::webhooks;
use crate::store::{Error, Result, TenantKey};
use crate::webhook::{EventType, Events};

/// A tenant's seats and directory, seen from inside one transaction.
///
/// A license's seat counters (`licenses.granted`, `releasing`, `blocked`) are read once and
/// then kept here while the allocator moves them; [`TxSeats::flush`] writes each changed
/// license's counters once, before anything else reads them in SQL ([`allocate`] does, before
/// the outbox looks at thresholds). Updating the one counter row per seat instead made every
/// further read of it walk one more row version on PostgreSQL, whose MVCC keeps each version
/// until the transaction ends: selecting a group of n users cost O(n²).
pub struct TxSeats<'c> {
    pub c: &'c Db<'c>,
    pub tenant: TenantKey,
    counters: std::collections::HashMap<LicenseKey, Counters>,
    /// Users whose seats this run reclaims for idleness: their releasing and released events
    /// carry the cause `idle`.
    pub(in crate::store) idle: std::collections::HashSet<String>,
    /// The webhook endpoints that receive this tenant's events (read at the first event).
    hooks: Option<Vec<(i64, Events)>>,
    /// Seat events for webhooks, written by [`TxSeats::flush`] (positions are then read once
    /// per license, not once per event).
    hook_queue: Vec<crate::store::allocation::seat_webhooks::HookEvent>,
    /// The run's instant (holds opened or dissolved are stamped with it).
    pub(in crate::store) now: Millis,
    /// A user an admin grants a seat by hand in this run: the promotion's cause is `manual`.
    pub(in crate::store) manual: Option<String>,
    /// Each license's open hold, once read or opened.
    open_holds: HashMap<LicenseKey, HoldId>,
    /// How holds moved in this run, written once each by [`TxSeats::flush`] (as the counters).
    hold_moves: HashMap<HoldId, crate::store::allocation::hold_moves::HoldMove>,
    /// Whether each license observes (shadow mode: its seat events send no webhook), once read.
    observing: HashMap<LicenseKey, bool>,
}

/// A license's counters as this transaction has them.
#[derive(Clone, Copy)]
struct Counters {
    now: Counts,
    /// Moved since read (to be written).
    changed: bool,
    /// A waiting seat was touched: the waitlist gets a new generation (see `ranks`).
    new_generation: bool,
}

pub(in crate::store) fn seat_row(r: &Row) -> Result<Seat> {
    let state: String = r.get(1)?;
    let hold: Option<HoldId> = r.get(6)?;
    let loss: Option<String> = r.get(7)?;
    Ok(Seat {
        user: r.get(0)?,
        state: SeatState::parse(&state).unwrap_or(SeatState::Blocked),
        pinned: r.get(2)?,
        entitled_at: r.get(3)?,
        since: r.get(4)?,
        release_at: r.get(5)?,
        held: hold.map(|hold| Held {
            hold,
            loss: Loss::parse(loss.as_deref().unwrap_or("other")),
        }),
        pool: r.get(8)?,
    })
}

const SEAT_COLS: &str =
    "user_id, state, pinned, entitled_at, since, release_at, hold, hold_loss, pool";

/// A license's reservations and ceilings in selector order, none unless some selector carries
/// one (see `alloc::pools`); two selectors of one group count once, at the first.
pub(in crate::store) fn pool_rules(c: &Db, l: LicenseKey) -> Result<Vec<PoolRule>> {
    let mut st = c.prepare_cached(
        "SELECT group_id, reserve, max_seats FROM license_groups WHERE license_rk = ?
         ORDER BY position, selector, value",
    )?;
    let rules = st.query_all([l], |r| {
        Ok(PoolRule {
            group: r.get(0)?,
            reserve: r.get(1)?,
            max: r.get(2)?,
        })
    })?;
    Ok(normal_rules(rules))
}

/// Selectors' limits as the allocator takes them: none unless one carries a limit, a group
/// named twice counted at its first selector.
pub(in crate::store) fn normal_rules(rules: Vec<PoolRule>) -> Vec<PoolRule> {
    if rules.iter().all(|r| r.reserve == 0 && r.max.is_none()) {
        return Vec::new();
    }
    let mut seen = std::collections::HashSet::new();
    rules
        .into_iter()
        .filter(|r| r.group.as_ref().is_none_or(|g| seen.insert(g.clone())))
        .collect()
}

impl<'c> TxSeats<'c> {
    pub fn new(c: &'c Db<'c>, tenant: TenantKey) -> TxSeats<'c> {
        TxSeats {
            c,
            tenant,
            counters: Default::default(),
            idle: Default::default(),
            hooks: None,
            hook_queue: Vec::new(),
            now: 0,
            manual: None,
            open_holds: HashMap::new(),
            hold_moves: HashMap::new(),
            observing: HashMap::new(),
        }
    }

    /// License `l`'s counters, read from the database the first time.
    fn counters(&mut self, l: LicenseKey) -> Result<&mut Counters> {
        use std::collections::hash_map::Entry;
        Ok(match self.counters.entry(l) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let now = self
                    .c
                    .prepare_cached(
                        "SELECT granted, releasing, blocked FROM licenses WHERE rk = ?",
                    )?
                    .query_row([l], |r| {
                        Ok(Counts {
                            granted: r.get(0)?,
                            releasing: r.get(1)?,
                            blocked: r.get(2)?,
                        })
                    })
                    .optional()?
                    .unwrap_or_default();
                e.insert(Counters {
                    now,
                    changed: false,
                    new_generation: false,
                })
            }
        })
    }

    /// Moves a license's count of seats in `state` by `delta`, and makes a new waitlist
    /// generation when `waitlist` (see [`crate::store::allocation::waitlist_ranks`]); written by [`TxSeats::flush`].
    fn count(&mut self, l: LicenseKey, state: SeatState, delta: i64, waitlist: bool) -> Result<()> {
        let k = self.counters(l)?;
        match state {
            SeatState::Granted => k.now.granted += delta,
            SeatState::Releasing => k.now.releasing += delta,
            SeatState::Blocked => k.now.blocked += delta,
        }
        k.changed |= delta != 0;
        k.new_generation |= waitlist;
        Ok(())
    }

    /// Writes the counters of every license whose seats moved, once each.
    pub fn flush(&mut self) -> Result<()> {
        if !self.hook_queue.is_empty() {
            let queue = std::mem::take(&mut self.hook_queue);
            let to = self.hooks.clone().unwrap_or_default();
            crate::store::allocation::seat_webhooks::write(self.c, self.tenant, &to, queue)?;
        }
        let moves = std::mem::take(&mut self.hold_moves);
        for l in crate::store::allocation::hold_moves::record_moves(
            self.c,
            self.tenant,
            self.now,
            moves,
        )? {
            self.open_holds.remove(&l);
        }
        for (l, k) in self.counters.iter_mut() {
            if !k.changed && !k.new_generation {
                continue;
            }
            self.c
                .prepare_cached(
                    "UPDATE licenses SET granted = ?, releasing = ?, blocked = ?, waitlist_gen = waitlist_gen + ? WHERE rk = ?",
                )?
                .execute(params![k.now.granted, k.now.releasing, k.now.blocked, i64::from(k.new_generation), *l])?;
            // The day's history follows the counts (a run without an instant writes none).
            if k.changed && self.now > 0 {
                crate::store::allocation::history::record(self.c, *l, self.now)?;
            }
            k.changed = false;
            k.new_generation = false;
        }
        Ok(())
    }
}

impl TxSeats<'_> {
    /// Whether license `l` observes (read once per run).
    fn observes(&mut self, l: LicenseKey) -> Result<bool> {
        if let Some(o) = self.observing.get(&l) {
            return Ok(*o);
        }
        let o = crate::store::allocation::license_view::observing(self.c, l)?;
        self.observing.insert(l, o);
        Ok(o)
    }

    /// Whether an endpoint receives seat events of type `t` (the endpoints are read once).
    fn hooked(&mut self, t: EventType) -> Result<bool> {
        if self.hooks.is_none() {
            self.hooks = Some(webhooks::endpoints(self.c, self.tenant)?);
        }
        Ok(self
            .hooks
            .as_ref()
            .is_some_and(|h| h.iter().any(|(_, e)| e.contains(t))))
    }
}

impl SeatStore for TxSeats<'_> {
    type Error = Error;

    fn user_active(&mut self, user: &str) -> Result<Option<bool>> {
        self.c
            .prepare_cached("SELECT active FROM users WHERE tenant = ? AND id = ?")?
            .query_row(params![self.tenant, user], |r| r.get(0))
            .optional()
    }

    fn parent_groups(&mut self, member: &str) -> Result<Vec<GroupId>> {
        strings(
            self.c,
            "SELECT g.id FROM group_members m JOIN groups g ON g.rk = m.group_rk WHERE m.tenant = ?1 AND m.member_id = ?2
             UNION
             SELECT g.id FROM users u JOIN group_members m ON m.tenant = u.tenant AND m.member_id = u.external_id
                  JOIN groups g ON g.rk = m.group_rk
             WHERE u.tenant = ?1 AND u.id = ?2 AND u.external_id IS NOT NULL",
            params![self.tenant, member],
        )
    }

    fn direct_members(&mut self, group: &str) -> Result<(Vec<UserId>, Vec<GroupId>)> {
        let users = strings(
            self.c,
            "SELECT u.id FROM groups g JOIN group_members m ON m.group_rk = g.rk
                  JOIN users u ON u.tenant = g.tenant AND u.id = m.member_id
             WHERE g.tenant = ?1 AND g.id = ?2
             -- ALL: the allocator removes duplicates (`member_closure`); a UNION would first
             -- build every member's id into a temporary table, in memory on the writer.
             UNION ALL
             -- CROSS JOIN keeps this order (group, its members, then each member's user by
             -- externalId); left to itself the planner walks every user with an externalId.
             SELECT u.id FROM groups g CROSS JOIN group_members m CROSS JOIN users u
             WHERE g.tenant = ?1 AND g.id = ?2 AND m.group_rk = g.rk
               AND u.tenant = g.tenant AND u.external_id = m.member_id",
            params![self.tenant, group],
        )?;
        let groups = strings(
            self.c,
            "SELECT s.id FROM groups g JOIN group_members m ON m.group_rk = g.rk
                  JOIN groups s ON s.tenant = g.tenant AND s.id = m.member_id
             WHERE g.tenant = ?1 AND g.id = ?2",
            params![self.tenant, group],
        )?;
        Ok((users, groups))
    }

    fn licenses_selecting(&mut self, groups: &[GroupId]) -> Result<Vec<LicenseKey>> {
        let mut out = Vec::new();
        let mut st = self.c.prepare_cached(
            "SELECT DISTINCT license_rk FROM license_groups WHERE tenant = ? AND group_id = ?",
        )?;
        for g in groups {
            for l in st.query_map(params![self.tenant, g], |r| r.get(0))? {
                out.push(l?);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn seat_licenses(&mut self, user: &str) -> Result<Vec<LicenseKey>> {
        let mut st = self
            .c
            .prepare_cached("SELECT license_rk FROM seats WHERE tenant = ? AND user_id = ?")?;
        st.query_all(params![self.tenant, user], |r| r.get(0))
    }

    fn policy(&mut self, l: LicenseKey) -> Result<Option<Policy>> {
        self
            .c
            .prepare_cached(
                "SELECT l.seats, l.auto_promote, l.grace_seconds, l.on_capacity_lowered, l.free_on_delete,
                        t.hold_threshold_percent, t.hold_min_seats, t.hold_window_seconds, l.overage, l.overage_percent
                 FROM licenses l JOIN tenants t ON t.rk = l.tenant WHERE l.rk = ? AND l.tenant = ?",
            )?
            .query_row(params![l, self.tenant], |r| {
                let lowered: String = r.get(3)?;
                let seats: i64 = r.get(0)?;
                Ok(Policy {
                    // The agreed overage is granted like seats (use above `seats` is billed).
                    capacity: seats + crate::capacity::overage_seats(seats, r.get(8)?, r.get(9)?),
                    auto_promote: r.get(1)?,
                    grace_ms: r.get::<_, i64>(2)? * 1000,
                    on_lowered: OnLowered::parse(&lowered).unwrap_or(OnLowered::Keep),
                    free_on_delete: r.get(4)?,
                    breaker: Breaker {
                        percent: r.get(5)?,
                        min_seats: r.get(6)?,
                        window_ms: r.get::<_, i64>(7)? * 1000,
                    },
                    pools: Vec::new(),
                })
            })
            .optional()?
            .map(|mut p| {
                p.pools = pool_rules(self.c, l)?;
                Ok(p)
            })
            .transpose()
    }

    fn selected_groups(&mut self, l: LicenseKey) -> Result<Vec<GroupId>> {
        strings(
            self.c,
            "SELECT DISTINCT group_id FROM license_groups WHERE license_rk = ? AND tenant = ? AND group_id IS NOT NULL",
            params![l, self.tenant],
        )
    }

    fn override_of(&mut self, l: LicenseKey, user: &str) -> Result<Option<OverrideKind>> {
        let kind: Option<String> = self
            .c
            .prepare_cached("SELECT kind FROM overrides WHERE license_rk = ? AND user_id = ?")?
            .query_row(params![l, user], |r| r.get(0))
            .optional()?;
        Ok(kind.map(|k| OverrideKind::parse(&k).unwrap_or(OverrideKind::Exclude)))
    }

    fn overrides(&mut self, l: LicenseKey) -> Result<Vec<(UserId, OverrideKind)>> {
        let mut st = self
            .c
            .prepare_cached("SELECT user_id, kind FROM overrides WHERE license_rk = ?")?;
        st.query_all([l], |r| {
            let kind: String = r.get(1)?;
            Ok((
                r.get(0)?,
                OverrideKind::parse(&kind).unwrap_or(OverrideKind::Exclude),
            ))
        })
    }

    fn seat(&mut self, l: LicenseKey, user: &str) -> Result<Option<Seat>> {
        self.c
            .prepare_cached(&format!(
                "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ? AND user_id = ?"
            ))?
            .query_row(params![l, user], seat_row)
            .optional()
    }

    fn all_seats(&mut self, l: LicenseKey) -> Result<Vec<Seat>> {
        let mut st = self.c.prepare_cached(&format!(
            "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ?"
        ))?;
        st.query_all([l], seat_row)
    }

    fn counts(&mut self, l: LicenseKey) -> Result<Counts> {
        Ok(self.counters(l)?.now)
    }

    fn blocked_head(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>> {
        let mut st = self.c.prepare_cached(&format!(
            "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ? AND state = 'blocked'
             ORDER BY pinned DESC, entitled_at, user_id LIMIT ?"
        ))?;
        st.query_all(params![l, n as i64], seat_row)
    }

    fn newest_granted(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>> {
        let mut st = self.c.prepare_cached(&format!(
            "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ? AND state = 'granted' AND hold IS NULL
             ORDER BY pinned, since DESC, entitled_at DESC, user_id DESC LIMIT ?"
        ))?;
        st.query_all(params![l, n as i64], seat_row)
    }

    fn blocked_head_in(&mut self, l: LicenseKey, pool: &str, n: usize) -> Result<Vec<Seat>> {
        let mut st = self.c.prepare_cached(&format!(
            "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ? AND pool = ? AND state = 'blocked'
             ORDER BY pinned DESC, entitled_at, user_id LIMIT ?"
        ))?;
        st.query_all(params![l, pool, n as i64], seat_row)
    }

    fn newest_granted_in(&mut self, l: LicenseKey, pool: &str, n: usize) -> Result<Vec<Seat>> {
        let mut st = self.c.prepare_cached(&format!(
            "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ? AND pool = ? AND state = 'granted' AND hold IS NULL
             ORDER BY pinned, since DESC, entitled_at DESC, user_id DESC LIMIT ?"
        ))?;
        st.query_all(params![l, pool, n as i64], seat_row)
    }

    fn pool_use(&mut self, l: LicenseKey) -> Result<Vec<(GroupId, i64)>> {
        let mut st = self.c.prepare_cached(
            "SELECT pool, count(*) FROM seats WHERE license_rk = ? AND pool IS NOT NULL
               AND state IN ('granted', 'releasing') GROUP BY pool",
        )?;
        st.query_all([l], |r| Ok((r.get(0)?, r.get(1)?)))
    }

    fn releasing_due(&mut self, l: LicenseKey, now: Millis) -> Result<Vec<Seat>> {
        let mut st = self.c.prepare_cached(&format!(
            "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ? AND release_at IS NOT NULL AND release_at <= ? ORDER BY release_at, user_id"
        ))?;
        st.query_all(params![l, now], seat_row)
    }

    fn save_seat(&mut self, l: LicenseKey, seat: &Seat, previous: Option<SeatState>) -> Result<()> {
        self.c
            .prepare_cached(
                "INSERT INTO seats (license_rk, tenant, user_id, state, pinned, entitled_at, since, release_at, hold, hold_loss, pool) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (license_rk, user_id) DO UPDATE SET state = excluded.state, pinned = excluded.pinned,
                   entitled_at = excluded.entitled_at, since = excluded.since, release_at = excluded.release_at,
                   hold = excluded.hold, hold_loss = excluded.hold_loss, pool = excluded.pool",
            )?
            .execute(params![l, self.tenant, seat.user, seat.state.as_str(), seat.pinned, seat.entitled_at, seat.since, seat.release_at,
                seat.held.as_ref().map(|h| h.hold), seat.held.as_ref().map(|h| h.loss.key()), seat.pool])?;
        // A write that touches a waiting seat (it joins, leaves or moves in the waitlist) makes
        // a new waitlist generation: cached waitlist orders of older generations go unused.
        let waitlist = previous == Some(SeatState::Blocked) || seat.state == SeatState::Blocked;
        if previous != Some(seat.state) {
            if let Some(o) = previous {
                self.count(l, o, -1, false)?;
            }
            self.count(l, seat.state, 1, waitlist)?;
        } else if waitlist {
            self.count(l, seat.state, 0, true)?;
        }
        Ok(())
    }

    fn remove_seat(&mut self, l: LicenseKey, user: &str, previous: SeatState) -> Result<()> {
        let n = self
            .c
            .prepare_cached("DELETE FROM seats WHERE license_rk = ? AND user_id = ?")?
            .execute(params![l, user])?;
        if n > 0 {
            self.count(l, previous, -1, previous == SeatState::Blocked)?;
        }
        Ok(())
    }

    fn loss_window(&mut self, l: LicenseKey) -> Result<LossWindow> {
        Ok(self
            .c
            .prepare_cached("SELECT loss_since, loss_base, losses FROM licenses WHERE rk = ?")?
            .query_row([l], |r| {
                Ok(LossWindow {
                    since: r.get(0)?,
                    base: r.get(1)?,
                    losses: r.get(2)?,
                })
            })
            .optional()?
            .unwrap_or_default())
    }

    fn set_loss_window(&mut self, l: LicenseKey, w: LossWindow) -> Result<()> {
        self.c
            .prepare_cached(
                "UPDATE licenses SET loss_since = ?, loss_base = ?, losses = ? WHERE rk = ?",
            )?
            .execute(params![w.since, w.base, w.losses, l])?;
        Ok(())
    }

    fn hold(&mut self, l: LicenseKey, loss: &Loss) -> Result<HoldId> {
        let (hold, opened) = match self.open_holds.get(&l) {
            Some(h) => (*h, false),
            None => {
                let open: Option<HoldId> = self
                    .c
                    .prepare_cached("SELECT rk FROM holds WHERE license_rk = ? AND state = 'open'")?
                    .query_row([l], |r| r.get(0))
                    .optional()?;
                let (h, opened) = match open {
                    Some(h) => (h, false),
                    None => (
                        self.c
                            .prepare_cached(
                                "INSERT INTO holds (tenant, license_rk, state, created, window_since)
                                 VALUES (?1, ?2, 'open', ?3, (SELECT loss_since FROM licenses WHERE rk = ?2)) RETURNING rk",
                            )?
                            .query_row(params![self.tenant, l, self.now], |r| r.get(0))?,
                        true,
                    ),
                };
                self.open_holds.insert(l, h);
                (h, opened)
            }
        };
        let m = self.hold_moves.entry(hold).or_default();
        m.license = l;
        m.opened |= opened;
        m.held += 1;
        m.total += 1;
        *m.changes.entry(loss.key()).or_default() += 1;
        Ok(hold)
    }

    fn unhold(&mut self, l: LicenseKey, hold: HoldId) -> Result<()> {
        let m = self.hold_moves.entry(hold).or_default();
        m.license = l;
        m.held -= 1;
        Ok(())
    }

    fn record(
        &mut self,
        l: LicenseKey,
        user: &str,
        kind: EventKind,
        previous: Option<SeatState>,
        at: Millis,
        decided_by: Option<crate::alloc::Cause>,
    ) -> Result<()> {
        // The counts as they stand in this transaction (`counters`), not as last written.
        let now = self.counts(l)?;
        // Reclaimed for idleness: the reclaim run's own events, and the release after the grace
        // (a later run) of a seat whose user still holds the idle override.
        let idle = match kind {
            EventKind::Releasing => self.idle.contains(user),
            EventKind::Released => {
                self.idle.contains(user)
                    || self
                        .c
                        .prepare_cached(
                            "SELECT 1 FROM overrides WHERE license_rk = ? AND user_id = ? AND kind = 'idle'",
                        )?
                        .query_row(params![l, user], |_| Ok(()))
                        .optional()?
                        .is_some()
            }
            _ => false,
        };
        // A loss (or a seat taken back to the waitlist) says what decided it.
        let loss = matches!(
            kind,
            EventKind::Releasing | EventKind::Released | EventKind::Held
        ) || (kind == EventKind::Blocked && previous == Some(SeatState::Granted));
        let cause = if idle {
            Some("idle")
        } else if kind == EventKind::Promoted && self.manual.as_deref() == Some(user) {
            Some("manual")
        } else if loss {
            decided_by.map(crate::alloc::Cause::as_str)
        } else {
            None
        };
        self.c
            .prepare_cached(
                "INSERT INTO seat_events (tenant, license_rk, license_id, user_id, user_name, event, at, in_use, waiting, cause)
                 SELECT ?1, ?2, l.id, ?3, (SELECT user_name FROM users WHERE tenant = ?1 AND id = ?3), ?4, ?5, ?6, ?7, ?8
                 FROM licenses l WHERE l.rk = ?2",
            )?
            .execute(params![self.tenant, l, user, kind.as_str(), at, now.in_use(), now.blocked, cause])?;
        let Some(hook_type) = EventType::of_seat(kind) else {
            return Ok(());
        };
        if self.hooked(hook_type)? && !self.observes(l)? {
            self.hook_queue
                .push(crate::store::allocation::seat_webhooks::HookEvent {
                    l,
                    user: user.to_owned(),
                    kind,
                    previous,
                    cause,
                    at,
                });
        }
        Ok(())
    }
}
