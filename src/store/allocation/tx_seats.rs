//! The allocator's [`SeatStore`] over a write transaction. The entry points that run the
//! allocator after every write, in the same transaction, live in `allocate`.

use crate::store::engine::sql::strings;
use crate::store::engine::sql::{
    in_slices, params, Db, Engine, OptionalExtension, Param, Read, Row, FRESH_FROM,
};

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
    /// What this run read of the directory and the seats in sets ([`SeatStore::prefetch`]).
    known: Known,
    /// Each license's seats and the extra seats of its agreed overage, read with its policy
    /// (for the day's history, [`TxSeats::flush`]).
    terms: HashMap<LicenseKey, (i64, i64)>,
    /// Each license's notified levels as read with its policy: alert level, overage, overage
    /// percent, overage notified ([`TxSeats::use_of`]).
    levels: HashMap<LicenseKey, [i64; 4]>,
    /// Policies and selected groups read ahead ([`TxSeats::preload`]), each taken by its
    /// first read.
    policies: HashMap<LicenseKey, Option<Policy>>,
    selected: HashMap<LicenseKey, Vec<GroupId>>,
}

/// The facts a run read for many users at once ([`TxSeats::prefetch`]): each read of one of
/// them is then answered here, not by a statement. The allocator writes none of the directory
/// or the overrides, and every seat it writes passes here ([`SeatStore::save_seat`]).
#[derive(Default)]
struct Known {
    /// The license the per-user facts below are of.
    license: Option<LicenseKey>,
    /// Users of the last prefetch: active or not (`None`: no such user).
    active: HashMap<UserId, Option<bool>>,
    /// Their overrides in `license`.
    overrides: HashMap<UserId, Option<OverrideKind>>,
    /// Their direct groups (by id, and by externalId).
    user_parents: HashMap<UserId, Vec<GroupId>>,
    /// Groups' direct parents, for every group above a prefetched user (kept for the run).
    group_parents: HashMap<GroupId, Vec<GroupId>>,
    /// Seats as this run has them, by license and user (`None`: no seat row).
    seats: HashMap<(LicenseKey, UserId), Option<Seat>>,
    /// The users of the last prefetch, in its order (a repeat of it reads nothing).
    batch: Vec<UserId>,
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
    seat_row_at(r, 0)
}

/// A seat read from [`SEAT_COLS`] starting at column `at`.
fn seat_row_at(r: &Row, at: usize) -> Result<Seat> {
    let state: String = r.get(at + 1)?;
    let hold: Option<HoldId> = r.get(at + 6)?;
    let loss: Option<String> = r.get(at + 7)?;
    Ok(Seat {
        user: r.get(at)?,
        state: SeatState::parse(&state).unwrap_or(SeatState::Blocked),
        pinned: r.get(at + 2)?,
        entitled_at: r.get(at + 3)?,
        since: r.get(at + 4)?,
        release_at: r.get(at + 5)?,
        held: hold.map(|hold| Held {
            hold,
            loss: Loss::parse(loss.as_deref().unwrap_or("other")),
        }),
        pool: r.get(at + 8)?,
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
            known: Known::default(),
            terms: HashMap::new(),
            levels: HashMap::new(),
            policies: HashMap::new(),
            selected: HashMap::new(),
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
            self.c.execute_later(
                "UPDATE licenses SET granted = ?, releasing = ?, blocked = ?, waitlist_gen = waitlist_gen + ? WHERE rk = ?",
                params![k.now.granted, k.now.releasing, k.now.blocked, i64::from(k.new_generation), *l],
            )?;
            // The day's history follows the counts (a run without an instant writes none).
            if k.changed && self.now > 0 {
                match self.terms.get(l) {
                    Some((seats, extra)) => crate::store::allocation::history::record_counts(
                        self.c,
                        *l,
                        self.now,
                        *seats,
                        *extra,
                        k.now.in_use(),
                        k.now.blocked,
                    )?,
                    None => crate::store::allocation::history::record(self.c, *l, self.now)?,
                }
            }
            k.changed = false;
            k.new_generation = false;
        }
        Ok(())
    }
}

impl TxSeats<'_> {
    /// On PostgreSQL, reads what re-evaluating `users` in license `l` asks of each (active,
    /// override, seat, direct groups, and the groups above those) in two statements per
    /// [`IN_MAX`](crate::store::engine::sql::IN_MAX) users, sent together,
    /// instead of about six per user: see [`Known`]. The facts of the previous call are
    /// dropped (a selection's slices are read one after another), except groups' parents.
    fn read_facts(&mut self, l: LicenseKey, users: &[UserId]) -> Result<()> {
        if self.c.engine() == Engine::Sqlite {
            // A statement costs SQLite no round trip: its point reads, each by an index, are
            // as fast as it gets (the sets were slower there).
            return Ok(());
        }
        if self.known.license == Some(l) && self.known.batch == users {
            // Read for this very re-evaluation already ([`TxSeats::preload`]).
            return Ok(());
        }
        self.begin_facts(l, users);
        for (marks, slice) in in_slices(users) {
            let mut rows = FactRows::default();
            let tenant = self.tenant;
            self.c.read_many(
                fact_reads(
                    self.c.engine() == Engine::Postgres,
                    &l,
                    &tenant,
                    &marks,
                    &slice,
                    &mut rows,
                )
                .into(),
            )?;
            self.known.take(l, rows);
            self.read_above()?;
        }
        Ok(())
    }

    /// Reads the groups above the groups known so far whose own groups are not, a level per
    /// statement (read once per run: a group known from an earlier slice is not read again).
    /// A walk written as one recursive statement was planned with a scan of every membership
    /// per level.
    fn read_above(&mut self) -> Result<()> {
        let known = &mut self.known;
        let mut above: Vec<GroupId> = known
            .group_parents
            .values()
            .flatten()
            .filter(|g| !known.group_parents.contains_key(*g))
            .cloned()
            .collect();
        while !above.is_empty() {
            above.sort();
            above.dedup();
            let mut next = Vec::new();
            for (marks, groups) in in_slices(&above) {
                let mut params: Vec<&dyn Param> = vec![&self.tenant];
                params.extend(groups.iter().map(|g| g as &dyn Param));
                for g in &groups {
                    known.group_parents.entry((*g).to_owned()).or_default();
                }
                let edges = self.c.query_in(
                    &format!(
                        "SELECT m.member_id, g.id FROM group_members m JOIN groups g ON g.rk = m.group_rk
                         WHERE m.tenant = ? AND m.member_id IN ({marks})"
                    ),
                    groups.len(),
                    params.as_slice(),
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )?;
                for (member, parent) in edges {
                    if !known.group_parents.contains_key(&parent) {
                        next.push(parent.clone());
                    }
                    let list = known.group_parents.entry(member).or_default();
                    if !list.contains(&parent) {
                        list.push(parent);
                    }
                }
            }
            above = next;
        }
        Ok(())
    }

    /// Begins reading the facts of `users` in license `l` (what [`TxSeats::read_facts`] keeps).
    fn begin_facts(&mut self, l: LicenseKey, users: &[UserId]) {
        let known = &mut self.known;
        known.license = Some(l);
        known.batch = users.to_vec();
        known.active.clear();
        known.overrides.clear();
        known.user_parents.clear();
        known.seats.retain(|(sl, _), _| *sl != l);
        for u in users {
            // Not found by the reads: no such user (its seat, if any, is read on its own).
            known.active.insert(u.clone(), None);
            known.user_parents.insert(u.clone(), Vec::new());
        }
    }

    /// Reads in one round trip what a run over `licenses` and `users` asks first: the waitlist
    /// stamp (PostgreSQL keeps it in the database), each license's policy and selected groups,
    /// the tenant's webhook endpoints, and the first license's facts of `users` when they fit
    /// one slice. Returns the stamp. Each read is then answered from what was read.
    pub(in crate::store) fn preload(
        &mut self,
        now: Millis,
        licenses: &[LicenseKey],
        users: &[UserId],
    ) -> Result<i64> {
        let sqlite = self.c.engine() == Engine::Sqlite;
        let mut order = 0;
        if sqlite {
            order = crate::store::engine::dialect::next_order(self.c, self.tenant, now)?;
        }
        let stamp = now * 1000;
        let tenant = self.tenant;
        let mut policies: Vec<(LicenseKey, Option<PolicyRow>)> =
            licenses.iter().map(|l| (*l, None)).collect();
        let mut selected: Vec<(LicenseKey, Vec<GroupId>)> =
            licenses.iter().map(|l| (*l, Vec::new())).collect();
        let mut hooks: Vec<(i64, Events)> = Vec::new();
        let facts_of = licenses.first().copied().filter(|_| {
            !sqlite && !users.is_empty() && users.len() <= crate::store::engine::sql::IN_MAX
        });
        if let Some(l) = facts_of {
            self.begin_facts(l, users);
        }
        let slices: Vec<(String, Vec<&str>)> = match facts_of {
            Some(_) => in_slices(users).collect(),
            None => Vec::new(),
        };
        let mut rows = FactRows::default();
        {
            let mut reads: Vec<Read> = Vec::new();
            if !sqlite {
                let order = &mut order;
                reads.push(Read {
                    sql: crate::store::engine::dialect::NEXT_ORDER_POSTGRES.to_owned(),
                    params: vec![&stamp, &tenant],
                    fresh: false,
                    row: Box::new(move |r| {
                        *order = r.get(0)?;
                        Ok(())
                    }),
                });
            }
            for ((l, p), (_, groups)) in policies.iter_mut().zip(selected.iter_mut()) {
                reads.push(Read {
                    sql: POLICY_SQL.to_owned(),
                    params: vec![l, &tenant],
                    fresh: false,
                    row: Box::new(move |r| {
                        *p = Some(policy_row(r)?);
                        Ok(())
                    }),
                });
                reads.push(Read {
                    sql: SELECTED_SQL.to_owned(),
                    params: vec![l, &tenant],
                    fresh: false,
                    row: Box::new(move |r| {
                        groups.push(r.get(0)?);
                        Ok(())
                    }),
                });
            }
            if self.hooks.is_none() {
                let hooks = &mut hooks;
                reads.push(Read {
                    sql: webhooks::ENDPOINTS_SQL.to_owned(),
                    params: vec![&tenant],
                    fresh: false,
                    row: Box::new(move |r| {
                        hooks.push(webhooks::endpoint_row(r)?);
                        Ok(())
                    }),
                });
            }
            if let (Some(l), Some((marks, slice))) = (facts_of.as_ref(), slices.first()) {
                reads.extend(fact_reads(!sqlite, l, &tenant, marks, slice, &mut rows));
            }
            self.c.read_many(reads)?;
        }
        if self.hooks.is_none() {
            self.hooks = Some(hooks);
        }
        for (l, p) in policies {
            let policy = self.adopt(l, p)?;
            self.policies.insert(l, policy);
        }
        self.selected.extend(selected);
        if let Some(l) = facts_of {
            self.known.take(l, rows);
            self.read_above()?;
        }
        Ok(order)
    }
}

/// What [`fact_reads`] read for a slice of users.
#[derive(Default)]
struct FactRows {
    /// (user, active, override, seat).
    facts: Vec<(UserId, bool, Option<String>, Option<Seat>)>,
    /// (member, direct group, level): level 0 a user's group, 1 a group of such a group.
    edges: Vec<(String, GroupId, i64)>,
}

/// The two reads of a slice of users (its `IN` list's `marks` and keys) in license `l`: each
/// user's activity, override and seat; and each user's groups (listed by id or by externalId)
/// with those groups' own groups. Sent together ([`Db::read_many`]).
fn fact_reads<'a>(
    postgres: bool,
    l: &'a LicenseKey,
    tenant: &'a TenantKey,
    marks: &str,
    slice: &'a [&'a str],
    into: &'a mut FactRows,
) -> [Read<'a>; 2] {
    let seat_cols = SEAT_COLS
        .split(", ")
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let fresh = slice.len() >= FRESH_FROM;
    // On PostgreSQL each user's seats are looked up by user (`OFFSET 0` keeps the planner from
    // joining otherwise), the license chosen among them after. A selection's own seats are not
    // in the statistics until it commits: a join planned for a license of no seats read every
    // seat the selection had written, for each slice, and even a lookup by the seat's key was
    // planned on the waitlist's index, whose user is its last column (every seat of the
    // license read for each user). By user, only `seats_user` can serve. SQLite has no
    // LATERAL, and looks each seat up by its key.
    let (seat_join, mut facts): (String, Vec<&dyn Param>) = if postgres {
        (
            format!(
                "LEFT JOIN LATERAL (SELECT {SEAT_COLS}, license_rk FROM seats
                                    WHERE tenant = ? AND user_id = u.id OFFSET 0) AS s ON s.license_rk = ?"
            ),
            vec![l, tenant, l, tenant],
        )
    } else {
        (
            "LEFT JOIN seats s ON s.license_rk = ? AND s.user_id = u.id".to_owned(),
            vec![l, l, tenant],
        )
    };
    facts.extend(slice.iter().map(|u| u as &dyn Param));
    let mut groups: Vec<&dyn Param> = vec![tenant];
    groups.extend(slice.iter().map(|u| u as &dyn Param));
    groups.push(tenant);
    groups.extend(slice.iter().map(|u| u as &dyn Param));
    groups.push(tenant);
    let FactRows {
        facts: fact_rows,
        edges,
    } = into;
    [
        Read {
            sql: format!(
                "SELECT u.id, u.active, o.kind, {seat_cols} FROM users u
                   LEFT JOIN overrides o ON o.license_rk = ? AND o.user_id = u.id
                   {seat_join}
                 WHERE u.tenant = ? AND u.id IN ({marks})"
            ),
            params: facts,
            fresh,
            row: Box::new(move |r| {
                let kind: Option<String> = r.get(2)?;
                let seat = match r.get::<_, Option<String>>(3)? {
                    Some(_) => Some(seat_row_at(r, 3)?),
                    None => None,
                };
                fact_rows.push((r.get(0)?, r.get(1)?, kind, seat));
                Ok(())
            }),
        },
        Read {
            sql: format!(
                "WITH d (member, parent) AS (
                     SELECT m.member_id, g.id FROM group_members m JOIN groups g ON g.rk = m.group_rk
                     WHERE m.tenant = ? AND m.member_id IN ({marks})
                     UNION
                     SELECT u.id, g.id FROM users u
                       JOIN group_members m ON m.tenant = u.tenant AND m.member_id = u.external_id
                       JOIN groups g ON g.rk = m.group_rk
                     WHERE u.tenant = ? AND u.id IN ({marks}) AND u.external_id IS NOT NULL
                 )
                 SELECT member, parent, CAST(0 AS BIGINT) FROM d
                 UNION ALL
                 SELECT m.member_id, g.id, CAST(1 AS BIGINT) FROM group_members m JOIN groups g ON g.rk = m.group_rk
                 WHERE m.tenant = ? AND m.member_id IN (SELECT parent FROM d)"
            ),
            params: groups,
            fresh,
            row: Box::new(move |r| {
                edges.push((r.get(0)?, r.get(1)?, r.get(2)?));
                Ok(())
            }),
        },
    ]
}

impl Known {
    /// Takes what [`fact_reads`] read for license `l`.
    fn take(&mut self, l: LicenseKey, rows: FactRows) {
        for (id, active, kind, seat) in rows.facts {
            self.active.insert(id.clone(), Some(active));
            self.overrides.insert(
                id.clone(),
                kind.map(|k| OverrideKind::parse(&k).unwrap_or(OverrideKind::Exclude)),
            );
            self.seats.insert((l, id), seat);
        }
        // The users' groups have had their own groups read: known (none, when no row says
        // otherwise), unless an earlier slice knew them.
        let mut fresh: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
        for (member, parent, level) in &rows.edges {
            if *level == 0 {
                self.user_parents
                    .entry(member.clone())
                    .or_default()
                    .push(parent.clone());
                if !self.group_parents.contains_key(parent) {
                    fresh.entry(parent.clone()).or_default();
                }
            }
        }
        for (member, parent, level) in rows.edges {
            if level == 1 {
                if let Some(list) = fresh.get_mut(&member) {
                    if !list.contains(&parent) {
                        list.push(parent);
                    }
                }
            }
        }
        self.group_parents.extend(fresh);
    }
}

/// A license's policy with its counters, mode, whether any selector limits it, and its
/// notified levels: the first thing every run asks of a license, in one statement.
const POLICY_SQL: &str =
    "SELECT l.seats, l.auto_promote, l.grace_seconds, l.on_capacity_lowered, l.free_on_delete,
            t.hold_threshold_percent, t.hold_min_seats, t.hold_window_seconds, l.overage, l.overage_percent,
            l.granted, l.releasing, l.blocked, l.mode,
            EXISTS (SELECT 1 FROM license_groups g WHERE g.license_rk = l.rk
                    AND (g.reserve > 0 OR g.max_seats IS NOT NULL)),
            l.alert_level, l.overage_notified
     FROM licenses l JOIN tenants t ON t.rk = l.tenant WHERE l.rk = ? AND l.tenant = ?";

/// The groups a license selects (resolved selectors).
const SELECTED_SQL: &str =
    "SELECT DISTINCT group_id FROM license_groups WHERE license_rk = ? AND tenant = ? AND group_id IS NOT NULL";

/// A row of [`POLICY_SQL`], read.
struct PolicyRow {
    policy: Policy,
    /// Seats, and the extra seats of the agreed overage.
    terms: (i64, i64),
    counts: Counts,
    observing: bool,
    /// Some selector carries a reserve or a ceiling.
    limited: bool,
    /// Alert level, overage, overage percent, overage notified.
    levels: [i64; 4],
}

fn policy_row(r: &Row) -> Result<PolicyRow> {
    let lowered: String = r.get(3)?;
    let seats: i64 = r.get(0)?;
    let extra = crate::capacity::overage_seats(seats, r.get(8)?, r.get(9)?);
    let mode: String = r.get(13)?;
    Ok(PolicyRow {
        policy: Policy {
            // The agreed overage is granted like seats (use above `seats` is billed).
            capacity: seats + extra,
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
        },
        terms: (seats, extra),
        counts: Counts {
            granted: r.get(10)?,
            releasing: r.get(11)?,
            blocked: r.get(12)?,
        },
        observing: mode == "observe",
        limited: r.get(14)?,
        levels: [r.get(15)?, r.get(8)?, r.get(9)?, r.get(16)?],
    })
}

impl TxSeats<'_> {
    /// Keeps what a license's policy row says (terms, levels, mode, counters unless this run
    /// moves them already) and returns its policy, with its pools when limited.
    fn adopt(&mut self, l: LicenseKey, read: Option<PolicyRow>) -> Result<Option<Policy>> {
        let Some(row) = read else {
            return Ok(None);
        };
        self.terms.insert(l, row.terms);
        self.levels.insert(l, row.levels);
        self.observing.entry(l).or_insert(row.observing);
        self.counters.entry(l).or_insert(Counters {
            now: row.counts,
            changed: false,
            new_generation: false,
        });
        let mut policy = row.policy;
        if row.limited {
            policy.pools = pool_rules(self.c, l)?;
        }
        Ok(Some(policy))
    }

    /// License `l`'s use as this run leaves it, with its notified levels as read with its
    /// policy: `Some(None)` when it observes (it notifies nothing), `None` when this run did
    /// not read it. Only after [`TxSeats::flush`].
    pub(in crate::store) fn use_of(
        &self,
        l: LicenseKey,
    ) -> Option<Option<crate::store::events::outbox::Use>> {
        let (seats, _) = self.terms.get(&l)?;
        let [alert_level, overage, overage_percent, overage_notified] = *self.levels.get(&l)?;
        let counts = self.counters.get(&l)?.now;
        if self.observing.get(&l).copied().unwrap_or(false) {
            return Some(None);
        }
        Some(Some(crate::store::events::outbox::Use {
            seats: *seats,
            in_use: counts.in_use(),
            alert_level,
            overage,
            overage_percent,
            overage_notified,
        }))
    }

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

    fn prefetch(&mut self, l: LicenseKey, users: &[UserId]) -> Result<()> {
        self.read_facts(l, users)
    }

    fn user_active(&mut self, user: &str) -> Result<Option<bool>> {
        if let Some(a) = self.known.active.get(user) {
            return Ok(*a);
        }
        self.c
            .prepare_cached("SELECT active FROM users WHERE tenant = ? AND id = ?")?
            .query_row(params![self.tenant, user], |r| r.get(0))
            .optional()
    }

    fn parent_groups(&mut self, member: &str) -> Result<Vec<GroupId>> {
        if let Some(p) = self
            .known
            .user_parents
            .get(member)
            .or_else(|| self.known.group_parents.get(member))
        {
            return Ok(p.clone());
        }
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
        if let Some(p) = self.policies.remove(&l) {
            return Ok(p);
        }
        let read = self
            .c
            .prepare_cached(POLICY_SQL)?
            .query_row(params![l, self.tenant], policy_row)
            .optional()?;
        self.adopt(l, read)
    }

    fn selected_groups(&mut self, l: LicenseKey) -> Result<Vec<GroupId>> {
        if let Some(groups) = self.selected.remove(&l) {
            return Ok(groups);
        }
        strings(self.c, SELECTED_SQL, params![l, self.tenant])
    }

    fn override_of(&mut self, l: LicenseKey, user: &str) -> Result<Option<OverrideKind>> {
        if self.known.license == Some(l) {
            if let Some(o) = self.known.overrides.get(user) {
                return Ok(*o);
            }
        }
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
        // (Nothing read ahead on SQLite: no key is made for the lookup.)
        if !self.known.seats.is_empty() {
            if let Some(seat) = self.known.seats.get(&(l, user.to_owned())) {
                return Ok(seat.clone());
            }
        }
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
        // Only a releasing seat has a release time: none, no statement.
        if self.counters(l)?.now.releasing == 0 {
            return Ok(Vec::new());
        }
        let mut st = self.c.prepare_cached(&format!(
            "SELECT {SEAT_COLS} FROM seats WHERE license_rk = ? AND release_at IS NOT NULL AND release_at <= ? ORDER BY release_at, user_id"
        ))?;
        st.query_all(params![l, now], seat_row)
    }

    fn save_seat(&mut self, l: LicenseKey, seat: &Seat, previous: Option<SeatState>) -> Result<()> {
        if !self.known.seats.is_empty() {
            if let Some(known) = self.known.seats.get_mut(&(l, seat.user.clone())) {
                *known = Some(seat.clone());
            }
        }
        // Sent with the run's next statement (`Db::execute_later`): the rows a run writes cost
        // no round trip each.
        self.c
            .execute_later(
                "INSERT INTO seats (license_rk, tenant, user_id, state, pinned, entitled_at, since, release_at, hold, hold_loss, pool) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (license_rk, user_id) DO UPDATE SET state = excluded.state, pinned = excluded.pinned,
                   entitled_at = excluded.entitled_at, since = excluded.since, release_at = excluded.release_at,
                   hold = excluded.hold, hold_loss = excluded.hold_loss, pool = excluded.pool",
            params![l, self.tenant, seat.user, seat.state.as_str(), seat.pinned, seat.entitled_at, seat.since, seat.release_at,
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
        if !self.known.seats.is_empty() {
            if let Some(known) = self.known.seats.get_mut(&(l, user.to_owned())) {
                *known = None;
            }
        }
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
        self.c.execute_later(
            "UPDATE licenses SET loss_since = ?, loss_base = ?, losses = ? WHERE rk = ?",
            params![w.since, w.base, w.losses, l],
        )?;
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
        self.c.execute_later(
                "INSERT INTO seat_events (tenant, license_rk, license_id, user_id, user_name, event, at, in_use, waiting, cause)
                 SELECT ?1, ?2, l.id, ?3, (SELECT user_name FROM users WHERE tenant = ?1 AND id = ?3), ?4, ?5, ?6, ?7, ?8
                 FROM licenses l WHERE l.rk = ?2",
            params![self.tenant, l, user, kind.as_str(), at, now.in_use(), now.blocked, cause])?;
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
