//! Model-based test of the seat allocator: random sequences of directory changes, license
//! changes, overrides and time steps run against the real store (real SQLite file, the real
//! allocator inside each write's transaction) and against a tiny reference model written here
//! from SPEC's rules, which recomputes everything at every step. After every step the seats must
//! agree, state for state and waitlist position for position, and so must the circuit breaker's
//! holds (which seats are held, by which hold, and each hold's state); every reconcile must find
//! nothing to repair (the incremental path equals a recomputation from scratch).

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use seatkeeper::alloc::OverrideKind;
use seatkeeper::scim::patch;
use seatkeeper::scim::resource::normalize;
use seatkeeper::scim::schema::ResourceKind;
use seatkeeper::store::{GroupSelection, LicenseChange, LicenseSpec, Selector, Store};
use serde_json::json;

/// Whether this binary runs on PostgreSQL (see `support/postgres.rs`).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = false;
#[path = "support/postgres.rs"]
pub mod postgres_support;

const USERS: usize = 5;
const GROUPS: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    AddMember(usize, usize),
    RemoveMember(usize, usize),
    SetActive(usize, bool),
    DeleteUser(usize),
    /// Group 1 becomes (or stops being) a member of group 0.
    Nest(bool),
    /// Which groups the license selects (bit i = group i).
    Select(u8),
    Capacity(i64),
    /// Some(true) pin, Some(false) exclude, None clear.
    Override(usize, Option<bool>),
    /// Time passes, then the reconciler runs.
    Advance(i64),
    /// Days pass, then the reconciler runs (idle seats are reclaimed where that is on).
    Days(i64),
    /// The product reports the user using the license.
    Use(usize),
    Reconcile,
    /// An admin approves (true) or rejects the newest hold that can be.
    Decide(bool),
    /// The reserve and ceiling of a group's selector (applied when the group is selected).
    Limits(usize, i64, Option<i64>),
    /// The policy for a count lowered below use switches from `keep` to `block_newest`: a
    /// license over its count gives back its newest seats at once, as the preview foretold.
    BlockNewest,
    /// The license observes, the users of these bits are carried over as today's seat holders
    /// (in the order of `carried_order`), and the license is enforced again.
    CutOver(u8),
}

/// The users a cut-over carries over, in the order given (not the users' order).
fn carried_order(bits: u8) -> Vec<usize> {
    let mut v: Vec<usize> = (0..USERS).filter(|u| bits & (1 << u) != 0).collect();
    v.sort_by_key(|u| (u * 3) % USERS);
    v
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    let g = 0..GROUPS;
    prop_oneof![
        4 => (u.clone(), g.clone()).prop_map(|(u, g)| Op::AddMember(u, g)),
        2 => (u.clone(), g).prop_map(|(u, g)| Op::RemoveMember(u, g)),
        2 => (u.clone(), any::<bool>()).prop_map(|(u, a)| Op::SetActive(u, a)),
        1 => u.clone().prop_map(Op::DeleteUser),
        1 => any::<bool>().prop_map(Op::Nest),
        1 => (0u8..4).prop_map(Op::Select),
        2 => (0i64..5).prop_map(Op::Capacity),
        2 => (u, prop_oneof![Just(Some(true)), Just(Some(false)), Just(None)]).prop_map(|(u, k)| Op::Override(u, k)),
        1 => (0i64..15).prop_map(Op::Advance),
        4 => (1i64..3).prop_map(Op::Days),
        1 => (0..USERS).prop_map(Op::Use),
        1 => Just(Op::Reconcile),
        2 => any::<bool>().prop_map(Op::Decide),
        3 => (0..GROUPS, 0i64..3, prop_oneof![Just(None), (0i64..4).prop_map(Some)]).prop_map(|(g, r, m)| Op::Limits(g, r, m)),
        1 => Just(Op::BlockNewest),
        1 => (0u8..32).prop_map(Op::CutOver),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Granted,
    Blocked,
    Releasing,
}

#[derive(Debug, Clone)]
struct MSeat {
    state: St,
    pinned: bool,
    order: i64,
    since: i64,
    release_at: Option<i64>,
    /// The last reported use.
    last_used: Option<i64>,
    /// When the coming reclaim was told.
    told: Option<i64>,
    /// Held by this hold (index in `Model::holds`); true when the held user was deleted.
    held: Option<(usize, bool)>,
    /// The group the seat counts against, while the license has limits.
    pool: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldSt {
    Open,
    Approved,
    Rejected,
    Dissolved,
}

impl HoldSt {
    fn as_str(self) -> &'static str {
        match self {
            HoldSt::Open => "open",
            HoldSt::Approved => "approved",
            HoldSt::Rejected => "rejected",
            HoldSt::Dissolved => "dissolved",
        }
    }
}

/// The tenant's circuit breaker: percent, min seats, window (ms).
#[derive(Debug, Clone, Copy)]
struct Breaker {
    percent: i64,
    min_seats: i64,
    window_ms: i64,
}

/// A license's window of directory-made losses: opened at, granted seats then, losses let
/// through.
#[derive(Debug, Clone, Copy)]
struct Window {
    since: i64,
    base: i64,
    losses: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ov {
    Pin,
    Exclude,
    /// Reclaimed for idleness, until a use is reported.
    Idle,
}

/// The license's `reclaim_idle_days` in runs that reclaim, and its `reclaim_notice_days`.
const IDLE_DAYS: i64 = 2;
const NOTICE_DAYS: i64 = 1;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cause {
    /// A directory change: the grace applies, the circuit breaker guards.
    Directory,
    Deleted,
    /// An exclusion: at once.
    Admin,
    /// An admin's license change or the reclaim: the grace applies, never held.
    License,
}

/// The reference model: SPEC's rules applied to the whole state at every step.
struct Model {
    ids: Vec<String>,
    exists: Vec<bool>,
    active: Vec<bool>,
    members: HashSet<(usize, usize)>,
    nested: bool,
    selected: [bool; GROUPS],
    capacity: i64,
    auto_promote: bool,
    grace_ms: i64,
    block_newest: bool,
    free_on_delete: bool,
    reclaim: bool,
    /// The agreed overage: the allocator grants up to capacity + overage.
    overage: i64,
    overrides: HashMap<usize, Ov>,
    seats: BTreeMap<usize, MSeat>,
    now: i64,
    order: i64,
    breaker: Breaker,
    window: Option<Window>,
    holds: Vec<HoldSt>,
    /// Each group's reserve and ceiling (they apply while it is selected).
    limits: [(i64, Option<i64>); GROUPS],
    /// A held or releasing seat came back to its user in this step (entitled again): under
    /// `block_newest` use is brought under the count at the end of the step.
    regained: bool,
}

impl Model {
    /// The selected groups' limits in selector order (group order); none unless one is set.
    fn rules(&self) -> Vec<(usize, i64, Option<i64>)> {
        let r: Vec<(usize, i64, Option<i64>)> = (0..GROUPS)
            .filter(|&g| self.selected[g])
            .map(|g| (g, self.limits[g].0, self.limits[g].1))
            .collect();
        if r.iter().all(|(_, res, max)| *res == 0 && max.is_none()) {
            return Vec::new();
        }
        r
    }

    /// The sum of the selected groups' reserves (at most the seat count).
    fn reserved(&self) -> i64 {
        (0..GROUPS)
            .filter(|&g| self.selected[g])
            .map(|g| self.limits[g].0)
            .sum()
    }

    /// The group `u` counts against: the first selected group containing it.
    fn pool_of(&self, u: usize) -> Option<usize> {
        if self.rules().is_empty() {
            return None;
        }
        (0..GROUPS).find(|&g| self.selected[g] && self.in_group(u, g))
    }

    fn used(&self, g: usize) -> i64 {
        self.seats
            .values()
            .filter(|s| s.state != St::Blocked && s.pool == Some(g))
            .count() as i64
    }

    /// How many more members of pool `q` may be granted now.
    fn room(&self, q: Option<usize>) -> i64 {
        let mut unmet = 0;
        let mut ceiling = i64::MAX;
        for (g, reserve, max) in self.rules() {
            if Some(g) == q {
                if let Some(m) = max {
                    ceiling = m - self.used(g);
                }
            } else {
                unmet += (reserve - self.used(g)).max(0);
            }
        }
        (self.capacity - self.in_use() - unmet).min(ceiling)
    }

    /// After a change of limits alone: seats move to their groups, the waitlist is served,
    /// and under `block_newest` groups above their ceiling give seats back.
    fn limits_changed(&mut self) {
        self.repool();
        self.fill(&HashSet::new(), false);
        if self.block_newest {
            self.evict();
        }
    }

    /// Every entitled user's seat counts against its group now; without limits no seat has one.
    fn repool(&mut self) {
        let pooled = !self.rules().is_empty();
        let users: Vec<usize> = self.seats.keys().copied().collect();
        for u in users {
            if !pooled {
                self.seats.get_mut(&u).unwrap().pool = None;
            } else if self.entitled(u) {
                let p = self.pool_of(u);
                self.seats.get_mut(&u).unwrap().pool = p;
            }
        }
    }
    fn in_group(&self, u: usize, g: usize) -> bool {
        self.members.contains(&(u, g)) || (g == 0 && self.nested && self.members.contains(&(u, 1)))
    }

    fn entitled(&self, u: usize) -> bool {
        self.exists[u]
            && self.active[u]
            && !matches!(self.overrides.get(&u), Some(Ov::Exclude | Ov::Idle))
            && (0..GROUPS).any(|g| self.selected[g] && self.in_group(u, g))
    }

    fn sort_key(&self, u: usize) -> (bool, i64, String) {
        let s = &self.seats[&u];
        (!s.pinned, s.order, self.ids[u].clone())
    }

    /// Settles every user, then fills (`force`: an admin raised the capacity).
    fn step(&mut self, cause_of: impl Fn(usize) -> Cause, force: bool) {
        self.order += 1;
        let mut newcomers = HashSet::new();
        for u in 0..USERS {
            let e = self.entitled(u);
            let pinned = e && self.overrides.get(&u) == Some(&Ov::Pin);
            let cause = cause_of(u);
            if e && !self.seats.contains_key(&u) {
                self.seats.insert(
                    u,
                    MSeat {
                        state: St::Blocked,
                        pinned,
                        order: self.order,
                        since: self.now,
                        release_at: None,
                        last_used: None,
                        told: None,
                        held: None,
                        pool: self.pool_of(u),
                    },
                );
                newcomers.insert(u);
                continue;
            }
            self.settle(u, e, cause, true);
        }
        self.fill(&newcomers, force);
        self.dissolve();
    }

    /// Enforcing after observing (`alloc::carry`): the carried-over users who are entitled
    /// first, in the order given; those who are not through the grace while seats last; then
    /// the waitlist. Held seats stay; a seat in the state it had keeps its time.
    fn carry_over(&mut self, carried: &[usize]) {
        self.order += 1;
        let now = self.now;
        self.seats
            .retain(|_, s| !(s.state == St::Releasing && s.release_at.is_some_and(|r| r <= now)));
        let before: BTreeMap<usize, (St, i64)> = self
            .seats
            .iter()
            .map(|(u, s)| (*u, (s.state, s.since)))
            .collect();
        let first = self
            .seats
            .values()
            .map(|s| s.order)
            .min()
            .unwrap_or(self.order)
            .min(self.order);
        let (mut entitled, mut unentitled) = (Vec::new(), Vec::new());
        for &u in carried {
            match self.seats.get(&u) {
                Some(s) if s.held.is_some() => {}
                Some(s) if s.state != St::Releasing => entitled.push(u),
                _ if self.entitled(u) => entitled.push(u),
                _ => unentitled.push(u),
            }
        }
        for s in self.seats.values_mut() {
            if s.held.is_none() && s.state == St::Granted {
                s.state = St::Blocked;
            }
        }
        self.seats
            .retain(|u, s| !(s.state == St::Releasing && s.held.is_none() && !carried.contains(u)));
        let pooled = !self.rules().is_empty();
        let n = entitled.len() as i64;
        for (i, u) in entitled.into_iter().enumerate() {
            if !self.seats.contains_key(&u) {
                let pinned = self.overrides.get(&u) == Some(&Ov::Pin);
                let pool = self.pool_of(u);
                self.seats.insert(
                    u,
                    MSeat {
                        state: St::Blocked,
                        pinned,
                        order: self.order,
                        since: now,
                        release_at: None,
                        last_used: None,
                        told: None,
                        held: None,
                        pool,
                    },
                );
            }
            let pool = self.seats[&u].pool;
            let free = if pooled {
                self.room(pool) > 0
            } else {
                self.in_use() < self.capacity
            };
            let s = self.seats.get_mut(&u).unwrap();
            s.order = first - (n - i as i64);
            s.release_at = None;
            s.state = if free { St::Granted } else { St::Blocked };
        }
        for u in unentitled {
            let free = if pooled {
                self.room(None) > 0
            } else {
                self.in_use() < self.capacity
            };
            let keeps = self.grace_ms > 0
                && self.exists[u]
                && self.overrides.get(&u) != Some(&Ov::Exclude)
                && free;
            if !keeps {
                self.seats.remove(&u);
                continue;
            }
            let order = self.order;
            let s = self.seats.entry(u).or_insert(MSeat {
                state: St::Releasing,
                pinned: false,
                order,
                since: now,
                release_at: None,
                last_used: None,
                told: None,
                held: None,
                pool: None,
            });
            s.state = St::Releasing;
            s.pinned = false;
            s.release_at = Some(now + self.grace_ms);
        }
        self.fill(&HashSet::new(), true);
        for (u, s) in self.seats.iter_mut() {
            s.since = match before.get(u) {
                Some((state, since)) if *state == s.state => *since,
                _ => now,
            };
        }
    }

    /// Under `block_newest`, a change that gave a held or releasing seat back brings use back
    /// under the count once it is whole (the allocator's `finish`).
    fn evict_regained(&mut self) {
        if std::mem::take(&mut self.regained) && self.block_newest {
            self.evict();
        }
    }

    /// Brings an existing seat of `u` in line with its entitlement `e` (`guard`: the circuit
    /// breaker may hold a directory-made loss).
    fn settle(&mut self, u: usize, e: bool, cause: Cause, guard: bool) {
        let pinned = e && self.overrides.get(&u) == Some(&Ov::Pin);
        {
            match (e, self.seats.get(&u).cloned()) {
                (true, Some(mut s)) => {
                    s.pinned = pinned;
                    if s.held.take().is_some() {
                        self.regained = true;
                    }
                    if !self.rules().is_empty() {
                        s.pool = self.pool_of(u);
                    }
                    if s.state == St::Releasing {
                        s.state = St::Granted;
                        s.since = self.now;
                        s.release_at = None;
                        self.regained = true;
                    }
                    self.seats.insert(u, s);
                }
                (false, Some(mut s)) => {
                    let guarded = guard && matches!(cause, Cause::Directory | Cause::Deleted);
                    if let Some((h, deleted)) = s.held {
                        if guarded {
                            s.held = Some((h, deleted || cause == Cause::Deleted));
                            self.seats.insert(u, s);
                            return;
                        }
                        s.held = None;
                    }
                    if guarded && s.state == St::Granted && self.trips() {
                        let h = self.open_hold();
                        s.held = Some((h, cause == Cause::Deleted || !self.exists[u]));
                        s.pinned = false;
                        self.seats.insert(u, s);
                        return;
                    }
                    let at_once = self.grace_ms == 0
                        || cause == Cause::Admin
                        || (cause == Cause::Deleted && self.free_on_delete);
                    match s.state {
                        St::Granted if !at_once => {
                            s.state = St::Releasing;
                            s.since = self.now;
                            s.release_at = Some(self.now + self.grace_ms);
                            s.pinned = false;
                            self.seats.insert(u, s);
                        }
                        St::Releasing if !at_once => {}
                        _ => {
                            self.seats.remove(&u);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether one more directory loss is past the breaker's threshold; one that is not is
    /// counted in the window (a new one when the last has run out).
    fn trips(&mut self) -> bool {
        let b = self.breaker;
        if b.percent >= 100 {
            return false;
        }
        let granted = self
            .seats
            .values()
            .filter(|s| s.state == St::Granted)
            .count() as i64;
        let mut w = match self.window {
            Some(w) if self.now < w.since + b.window_ms => w,
            _ => Window {
                since: self.now,
                base: granted,
                losses: 0,
            },
        };
        let allowed = (w.base * b.percent / 100).max(b.min_seats - 1);
        let trip = w.losses >= allowed;
        if !trip {
            w.losses += 1;
        }
        self.window = Some(w);
        trip
    }

    /// The open hold, opened now when there is none.
    fn open_hold(&mut self) -> usize {
        match self.holds.iter().position(|h| *h == HoldSt::Open) {
            Some(h) => h,
            None => {
                self.holds.push(HoldSt::Open);
                self.holds.len() - 1
            }
        }
    }

    /// An open hold that holds no seat any more dissolves (the end of each allocator run).
    fn dissolve(&mut self) {
        for h in 0..self.holds.len() {
            if self.holds[h] == HoldSt::Open
                && !self
                    .seats
                    .values()
                    .any(|s| s.held.is_some_and(|(x, _)| x == h))
            {
                self.holds[h] = HoldSt::Dissolved;
            }
        }
    }

    /// The newest hold an admin can approve (open or rejected) or reject (open).
    fn decidable(&self, approve: bool) -> Option<usize> {
        (0..self.holds.len()).rev().find(|&h| {
            self.holds[h] == HoldSt::Open || (approve && self.holds[h] == HoldSt::Rejected)
        })
    }

    /// An admin approves hold `h`: its users lose their seats the normal way (unless the
    /// directory entitles them again), then the waitlist is served.
    fn approve(&mut self, h: usize) {
        self.holds[h] = HoldSt::Approved;
        self.order += 1;
        let users: Vec<(usize, bool)> = self
            .seats
            .iter()
            .filter_map(|(u, s)| match s.held {
                Some((x, deleted)) if x == h => Some((*u, deleted)),
                _ => None,
            })
            .collect();
        for (u, deleted) in users {
            let cause = if deleted {
                Cause::Deleted
            } else {
                Cause::Directory
            };
            let e = self.entitled(u);
            self.settle(u, e, cause, false);
        }
        self.fill(&HashSet::new(), false);
    }

    /// The reclaim pass: granted, unpinned seats idle (since the later of their last use and
    /// their grant) for the license's days get an idle override.
    /// A seat reclaimed now must also have been told at least the notice period before, during
    /// this idle period.
    fn reclaim(&mut self) -> HashSet<usize> {
        let mut idle = HashSet::new();
        if !self.reclaim {
            return idle;
        }
        let now = self.now;
        for (u, s) in &self.seats {
            let idle_since = s.last_used.map_or(s.since, |l| l.max(s.since));
            let told = s
                .told
                .is_some_and(|t| t > idle_since && t <= now - NOTICE_DAYS * DAY_MS);
            if s.state == St::Granted
                && s.held.is_none()
                && !s.pinned
                && idle_since <= now - IDLE_DAYS * DAY_MS
                && told
            {
                idle.insert(*u);
            }
        }
        for u in &idle {
            self.overrides.insert(*u, Ov::Idle);
        }
        idle
    }

    /// The reclaim notice: granted, unpinned seats idle long enough and not told during this
    /// idle period are told now.
    fn tell(&mut self) {
        if !self.reclaim {
            return;
        }
        let now = self.now;
        for s in self.seats.values_mut() {
            let idle_since = s.last_used.map_or(s.since, |l| l.max(s.since));
            if s.state == St::Granted
                && s.held.is_none()
                && !s.pinned
                && idle_since <= now - (IDLE_DAYS - NOTICE_DAYS) * DAY_MS
                && s.told.is_none_or(|t| t <= idle_since)
            {
                s.told = Some(now);
            }
        }
    }

    fn in_use(&self) -> i64 {
        self.seats
            .values()
            .filter(|s| s.state != St::Blocked)
            .count() as i64
    }

    fn fill(&mut self, newcomers: &HashSet<usize>, force: bool) {
        let now = self.now;
        self.seats
            .retain(|_, s| !(s.state == St::Releasing && s.release_at.is_some_and(|r| r <= now)));
        let free = self.capacity - self.in_use();
        if free <= 0 {
            return;
        }
        let mut waiting: Vec<usize> = self
            .seats
            .iter()
            .filter(|(_, s)| s.state == St::Blocked)
            .map(|(u, _)| *u)
            .collect();
        waiting.sort_by_key(|u| self.sort_key(*u));
        if !self.rules().is_empty() {
            // With limits: the waitlist in order, each served when its group has room.
            for u in waiting {
                if self.room(self.seats[&u].pool) < 1 {
                    continue;
                }
                if !self.auto_promote && !force && !newcomers.contains(&u) {
                    break;
                }
                let s = self.seats.get_mut(&u).unwrap();
                s.state = St::Granted;
                s.since = now;
            }
            return;
        }
        for u in waiting.into_iter().take(free as usize) {
            if !self.auto_promote && !force && !newcomers.contains(&u) {
                break;
            }
            let s = self.seats.get_mut(&u).unwrap();
            s.state = St::Granted;
            s.since = now;
        }
    }

    /// `block_newest`: groups above their ceiling give back their newest seats, then the
    /// license does until use fits; seats the ceilings freed go to the waitlist.
    fn evict(&mut self) {
        let mut moved = false;
        for (g, _, max) in self.rules() {
            let Some(max) = max else { continue };
            let over = self.used(g) - max;
            if over > 0 {
                self.evict_from(Some(g), over);
                moved = true;
            }
        }
        let over = self.in_use() - self.capacity;
        if over > 0 {
            self.evict_from(None, over);
        }
        if moved {
            self.fill(&HashSet::new(), false);
        }
    }

    /// Moves the `over` most recently granted (of pool `g`, or of all) back to the waitlist.
    fn evict_from(&mut self, g: Option<usize>, over: i64) {
        let mut granted: Vec<usize> = self
            .seats
            .iter()
            .filter(|(_, s)| {
                s.state == St::Granted && s.held.is_none() && (g.is_none() || s.pool == g)
            })
            .map(|(u, _)| *u)
            .collect();
        granted.sort_by_key(|u| {
            let s = &self.seats[u];
            (
                s.pinned,
                std::cmp::Reverse(s.since),
                std::cmp::Reverse(s.order),
                std::cmp::Reverse(self.ids[*u].clone()),
            )
        });
        for u in granted.into_iter().take(over as usize) {
            let s = self.seats.get_mut(&u).unwrap();
            s.state = St::Blocked;
            s.since = self.now;
        }
    }

    /// Each seat's group (by `groups`' ids) while the license has limits.
    fn pools(&self, groups: &[String]) -> BTreeMap<String, Option<String>> {
        self.seats
            .iter()
            .map(|(u, s)| (self.ids[*u].clone(), s.pool.map(|g| groups[g].clone())))
            .collect()
    }

    /// The license's `groups` with their limits, for a selection `mask`.
    fn selections(
        &self,
        mask: u8,
        limits: &[(i64, Option<i64>); GROUPS],
        groups: &[String],
    ) -> Vec<GroupSelection> {
        (0..GROUPS)
            .filter(|g| mask & (1 << g) != 0)
            .map(|g| GroupSelection {
                selector: Selector::Id(groups[g].clone()),
                reserve: limits[g].0,
                max: limits[g].1,
            })
            .collect()
    }

    fn mask(&self) -> u8 {
        (0..GROUPS)
            .filter(|&g| self.selected[g])
            .map(|g| 1u8 << g)
            .sum()
    }

    /// (user id, state) in the order the admin API lists them: granted and releasing by user,
    /// then the waitlist in position order.
    fn view(&self) -> (BTreeMap<String, &'static str>, Vec<String>) {
        let states = self
            .seats
            .iter()
            .map(|(u, s)| {
                (
                    self.ids[*u].clone(),
                    match s.state {
                        St::Granted => "granted",
                        St::Blocked => "blocked",
                        St::Releasing => "releasing",
                    },
                )
            })
            .collect();
        let mut waiting: Vec<usize> = self
            .seats
            .iter()
            .filter(|(_, s)| s.state == St::Blocked)
            .map(|(u, _)| *u)
            .collect();
        waiting.sort_by_key(|u| self.sort_key(*u));
        (
            states,
            waiting.into_iter().map(|u| self.ids[u].clone()).collect(),
        )
    }
}

struct Real {
    store: Store,
    tenant: i64,
    groups: Vec<String>,
    clock: Arc<AtomicI64>,
}

fn group_patch(op: &str, member: &str) -> Vec<patch::PatchOp> {
    let body = if op == "add" {
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}]})
    } else {
        json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]})
    };
    patch::parse(body).unwrap()
}

/// Which hold (by creation order) holds each held seat, and every hold's state, oldest first.
async fn real_holds(r: &Real) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut holds = r.store.holds(r.tenant, None).await.unwrap();
    holds.sort_by_key(|h| h.id);
    let index: HashMap<i64, usize> = holds.iter().enumerate().map(|(i, h)| (h.id, i)).collect();
    let v = r.store.seats(r.tenant, "L".into(), None).await.unwrap();
    let held = v
        .seats
        .iter()
        .filter_map(|s| s.hold.map(|h| (s.user_id.clone(), index[&h])))
        .collect();
    (
        held,
        holds
            .into_iter()
            .map(|h| h.state.as_str().to_owned())
            .collect(),
    )
}

async fn real_pools(r: &Real) -> BTreeMap<String, Option<String>> {
    let v = r.store.seats(r.tenant, "L".into(), None).await.unwrap();
    v.seats
        .iter()
        .map(|s| (s.user_id.clone(), s.group_id.clone()))
        .collect()
}

async fn real_view(r: &Real) -> (BTreeMap<String, &'static str>, Vec<String>, i64) {
    let v = r.store.seats(r.tenant, "L".into(), None).await.unwrap();
    let states = v
        .seats
        .iter()
        .map(|s| (s.user_id.clone(), s.state.as_str()))
        .collect();
    let waiting: Vec<String> = v
        .seats
        .iter()
        .filter(|s| s.state == seatkeeper::store::UserState::Blocked)
        .map(|s| s.user_id.clone())
        .collect();
    // The seat check agrees with the list: its positions come from the in-memory copy of the
    // waitlist order (the store is told to copy even these short waitlists) or from a count
    // while the copy is stale.
    for s in &v.seats {
        // A deleted user's releasing seat has no user to look up.
        let Some(name) = s.user_name.clone() else {
            continue;
        };
        let one = r
            .store
            .seat_of(r.tenant, "L".into(), name, false)
            .await
            .unwrap();
        assert_eq!((one.state, one.position), (s.state, s.position), "{s:?}");
    }
    (states, waiting, v.granted + v.releasing)
}

/// The circuit breaker of the runs (window 60 s): the tenant's defaults (20 %, from 10 losses:
/// never reached by 5 users), or tighter ones that trip.
fn breaker_of(tight: Option<(i64, i64)>) -> Breaker {
    match tight {
        None => Breaker {
            percent: 20,
            min_seats: 10,
            window_ms: 3_600_000,
        },
        Some((percent, min_seats)) => Breaker {
            percent,
            min_seats,
            window_ms: 60_000,
        },
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ops: Vec<Op>,
    capacity: i64,
    auto_promote: bool,
    grace: i64,
    block_newest: bool,
    free_on_delete: bool,
    reclaim: bool,
    tight: Option<(i64, i64)>,
    overage: i64,
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(1_767_225_600_000));
    let c2 = clock.clone();
    // The real store on the engine the suites run on: a SQLite file, or with
    // SEATKEEPER_TEST_ENGINE=postgres a new database in the test cluster.
    let db = if postgres_support::selected() {
        postgres_support::cluster().database().into()
    } else {
        dir.path().join("m.db")
    };
    let store = Store::open_with_clock(&db, Arc::new(move || c2.load(Ordering::SeqCst))).unwrap();
    store.set_waitlist_copy_threshold(1);
    let tenant = store
        .create_tenant(
            "model".into(),
            vec![],
            seatkeeper::store::events::audit::Actor::cli(),
        )
        .await
        .unwrap()
        .key;
    let breaker = breaker_of(tight);
    if tight.is_some() {
        store
            .update_tenant(
                tenant,
                seatkeeper::store::TenantChange {
                    hold_threshold_percent: Some(breaker.percent),
                    hold_min_seats: Some(breaker.min_seats),
                    hold_window_seconds: Some(breaker.window_ms / 1000),
                    ..Default::default()
                },
                seatkeeper::store::events::audit::Actor::cli(),
            )
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for i in 0..USERS {
        let (doc, _) =
            normalize(ResourceKind::User, &json!({"userName": format!("user{i}")})).unwrap();
        ids.push(store.create_user(tenant, doc).await.unwrap().id);
    }
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let (doc, _) = normalize(
            ResourceKind::Group,
            &json!({"displayName": format!("group{g}")}),
        )
        .unwrap();
        groups.push(store.create_group(tenant, doc, vec![]).await.unwrap().id);
    }
    let spec = LicenseSpec {
        name: "L".into(),
        seats: capacity,
        groups: vec![],
        auto_promote,
        grace_seconds: grace,
        on_capacity_lowered: if block_newest {
            seatkeeper::alloc::OnLowered::BlockNewest
        } else {
            seatkeeper::alloc::OnLowered::Keep
        },
        free_on_delete,
        notify: vec![],
        reclaim_idle_days: if reclaim { IDLE_DAYS } else { 0 },
        reclaim_notice_days: NOTICE_DAYS,
        overage,
        overage_percent: 0,
        mode: Default::default(),
    };
    store
        .create_license(tenant, spec, seatkeeper::store::events::audit::Actor::cli())
        .await
        .unwrap();
    let real = Real {
        store,
        tenant,
        groups,
        clock,
    };
    let mut m = Model {
        ids,
        exists: vec![true; USERS],
        active: vec![true; USERS],
        members: HashSet::new(),
        nested: false,
        selected: [false; GROUPS],
        capacity: capacity + overage,
        auto_promote,
        grace_ms: grace * 1000,
        block_newest,
        free_on_delete,
        reclaim,
        overage,
        overrides: HashMap::new(),
        seats: BTreeMap::new(),
        now: 1_767_225_600_000,
        order: 0,
        breaker,
        window: None,
        holds: Vec::new(),
        limits: [(0, None); GROUPS],
        regained: false,
    };
    let s = &real.store;
    let t = real.tenant;
    for (i, op) in ops.iter().enumerate() {
        let dir_cause = |_: usize| Cause::Directory;
        match op.clone() {
            Op::AddMember(u, g) => {
                s.patch_group(
                    t,
                    real.groups[g].clone(),
                    group_patch("add", &m.ids[u]),
                    None,
                )
                .await
                .unwrap();
                m.members.insert((u, g));
                m.step(dir_cause, false);
            }
            Op::RemoveMember(u, g) => {
                s.patch_group(
                    t,
                    real.groups[g].clone(),
                    group_patch("remove", &m.ids[u]),
                    None,
                )
                .await
                .unwrap();
                m.members.remove(&(u, g));
                m.step(dir_cause, false);
            }
            Op::SetActive(u, a) => {
                if !m.exists[u] {
                    continue;
                }
                let ops = patch::parse(
                    json!({"Operations": [{"op": "replace", "path": "active", "value": a}]}),
                )
                .unwrap();
                s.patch_user(t, m.ids[u].clone(), ops, None).await.unwrap();
                m.active[u] = a;
                m.step(dir_cause, false);
            }
            Op::DeleteUser(u) => {
                if !m.exists[u] {
                    continue;
                }
                s.delete_user(t, m.ids[u].clone(), None).await.unwrap();
                m.exists[u] = false;
                m.members.retain(|(x, _)| *x != u);
                m.step(
                    |x| {
                        if x == u {
                            Cause::Deleted
                        } else {
                            Cause::Directory
                        }
                    },
                    false,
                );
            }
            Op::Nest(on) => {
                let (g0, g1) = (real.groups[0].clone(), real.groups[1].clone());
                s.patch_group(
                    t,
                    g0,
                    group_patch(if on { "add" } else { "remove" }, &g1),
                    None,
                )
                .await
                .unwrap();
                m.nested = on;
                m.step(dir_cause, false);
            }
            Op::Select(mask) => {
                let groups = m.selections(mask, &m.limits, &real.groups);
                let reserved: i64 = groups.iter().map(|g| g.reserve).sum();
                if reserved > m.capacity - m.overage {
                    // The reserves cannot exceed the seat count: refused, nothing changes.
                    let change = LicenseChange {
                        groups: Some(groups.clone()),
                        ..Default::default()
                    };
                    refused(s, t, None, Some(groups), change).await;
                    continue;
                }
                let rules_before = m.rules();
                let before = seat_map(s, t).await;
                let preview = s
                    .preview(t, "L".into(), None, Some(groups.clone()), None)
                    .await
                    .unwrap();
                s.update_license(
                    t,
                    "L".into(),
                    LicenseChange {
                        groups: Some(groups),
                        ..Default::default()
                    },
                    seatkeeper::store::events::audit::Actor::cli(),
                )
                .await
                .unwrap();
                assert_previewed(s, t, &preview, &before, i).await;
                // Members of unselected groups are re-evaluated as an admin's change (a deleted
                // user is a member of nothing: a seat held for them stays held).
                let gone: HashSet<usize> = (0..USERS)
                    .filter(|&u| {
                        m.exists[u]
                            && (0..GROUPS)
                                .any(|g| m.selected[g] && mask & (1 << g) == 0 && m.in_group(u, g))
                    })
                    .collect();
                for g in 0..GROUPS {
                    m.selected[g] = mask & (1 << g) != 0;
                }
                m.step(
                    |x| {
                        if gone.contains(&x) {
                            Cause::License
                        } else {
                            Cause::Directory
                        }
                    },
                    false,
                );
                if m.rules() != rules_before {
                    m.repool();
                    if m.block_newest {
                        m.evict();
                    }
                }
            }
            Op::Limits(g, reserve, max) => {
                let mut limits = m.limits;
                limits[g] = (reserve, max);
                let groups = m.selections(m.mask(), &limits, &real.groups);
                let reserved: i64 = groups.iter().map(|g| g.reserve).sum();
                let change = LicenseChange {
                    groups: Some(groups.clone()),
                    ..Default::default()
                };
                // A ceiling below the reserve (never kept, for a later selection either), or
                // reserves above the seat count: refused.
                let invalid = max.is_some_and(|x| x < reserve);
                if invalid && !m.selected[g] {
                    continue;
                }
                if invalid || reserved > m.capacity - m.overage {
                    refused(s, t, None, Some(groups), change).await;
                    continue;
                }
                let before = seat_map(s, t).await;
                let preview = s
                    .preview(t, "L".into(), None, Some(groups), None)
                    .await
                    .unwrap();
                s.update_license(
                    t,
                    "L".into(),
                    change,
                    seatkeeper::store::events::audit::Actor::cli(),
                )
                .await
                .unwrap();
                assert_previewed(s, t, &preview, &before, i).await;
                let rules_before = m.rules();
                m.limits = limits;
                if m.rules() != rules_before {
                    m.limits_changed();
                }
            }
            Op::Capacity(n) => {
                if n < m.reserved() {
                    refused(
                        s,
                        t,
                        Some(n),
                        None,
                        LicenseChange {
                            seats: Some(n),
                            ..Default::default()
                        },
                    )
                    .await;
                    continue;
                }
                let before = seat_map(s, t).await;
                let preview = s.preview(t, "L".into(), Some(n), None, None).await.unwrap();
                s.update_license(
                    t,
                    "L".into(),
                    LicenseChange {
                        seats: Some(n),
                        ..Default::default()
                    },
                    seatkeeper::store::events::audit::Actor::cli(),
                )
                .await
                .unwrap();
                assert_previewed(s, t, &preview, &before, i).await;
                let old = m.capacity;
                m.capacity = n + m.overage;
                m.order += 1;
                m.fill(&HashSet::new(), n + m.overage > old);
                if n + m.overage < old && m.block_newest {
                    m.evict();
                }
            }
            Op::CutOver(bits) => {
                let mode = |m: seatkeeper::store::LicenseMode| LicenseChange {
                    mode: Some(m),
                    ..Default::default()
                };
                let cli = seatkeeper::store::events::audit::Actor::cli;
                s.update_license(
                    t,
                    "L".into(),
                    mode(seatkeeper::store::LicenseMode::Observe),
                    cli(),
                )
                .await
                .unwrap();
                let carried: Vec<usize> = carried_order(bits)
                    .into_iter()
                    .filter(|u| m.exists[*u])
                    .collect();
                if !carried.is_empty() {
                    let refs = carried.iter().map(|u| format!("user{u}")).collect();
                    let r = s.carry_holders(t, "L".into(), refs, cli()).await.unwrap();
                    assert_eq!(r.added as usize, carried.len(), "step {i}: {r:?}");
                }
                let shadow = s.shadow(t, "L".into(), 100, cli()).await.unwrap();
                s.update_license(
                    t,
                    "L".into(),
                    mode(seatkeeper::store::LicenseMode::Enforce),
                    cli(),
                )
                .await
                .unwrap();
                m.carry_over(&carried);
                // The shadow report foretold the switch.
                let v = s.seats(t, "L".into(), None).await.unwrap();
                let of = |list: &[seatkeeper::store::ShadowPerson]| -> BTreeSet<String> {
                    list.iter().map(|p| p.user_id.clone()).collect()
                };
                let granted: BTreeSet<String> = v
                    .seats
                    .iter()
                    .filter(|x| x.state == seatkeeper::store::UserState::Granted)
                    .map(|x| x.user_id.clone())
                    .collect();
                let foretold: BTreeSet<String> =
                    of(&shadow.keep).union(&of(&shadow.gain)).cloned().collect();
                assert_eq!(
                    granted, foretold,
                    "step {i}: the shadow report and the switch differ\nops: {ops:?}"
                );
                assert_eq!(
                    shadow.counts.keep + shadow.counts.lose,
                    carried.len() as i64,
                    "step {i}: {shadow:?}"
                );
            }
            Op::BlockNewest => {
                if m.block_newest {
                    continue;
                }
                let before = seat_map(s, t).await;
                let preview = s
                    .preview(
                        t,
                        "L".into(),
                        None,
                        None,
                        Some(seatkeeper::alloc::OnLowered::BlockNewest),
                    )
                    .await
                    .unwrap();
                s.update_license(
                    t,
                    "L".into(),
                    LicenseChange {
                        on_capacity_lowered: Some(seatkeeper::alloc::OnLowered::BlockNewest),
                        ..Default::default()
                    },
                    seatkeeper::store::events::audit::Actor::cli(),
                )
                .await
                .unwrap();
                assert_previewed(s, t, &preview, &before, i).await;
                m.block_newest = true;
                m.evict();
            }
            Op::Override(u, kind) => {
                if !m.exists[u] {
                    continue;
                }
                let k = kind.map(|p| {
                    if p {
                        OverrideKind::Pin
                    } else {
                        OverrideKind::Exclude
                    }
                });
                let ov = kind.map(|p| if p { Ov::Pin } else { Ov::Exclude });
                let had = m.overrides.contains_key(&u);
                let before = seat_map(s, t).await;
                let preview = s
                    .preview_change(
                        t,
                        "L".into(),
                        seatkeeper::store::Proposed::Override {
                            user: format!("user{u}"),
                            kind: k,
                        },
                        seatkeeper::store::events::audit::Actor::cli(),
                    )
                    .await;
                assert_eq!(
                    seat_map(s, t).await,
                    before,
                    "step {i}: a preview changes nothing"
                );
                let r = s
                    .set_override(
                        t,
                        "L".into(),
                        format!("user{u}"),
                        k,
                        seatkeeper::store::events::audit::Actor::cli(),
                    )
                    .await;
                if k.is_none() && !had {
                    assert!(r.is_err(), "clearing a missing override is an error");
                    assert!(preview.is_err(), "step {i}: its preview is refused alike");
                    continue;
                }
                r.unwrap();
                assert_previewed(s, t, &preview.unwrap(), &before, i).await;
                match ov {
                    Some(o) => m.overrides.insert(u, o),
                    None => m.overrides.remove(&u),
                };
                let admin = kind == Some(false);
                m.step(
                    |x| {
                        if x != u {
                            Cause::Directory
                        } else if admin {
                            Cause::Admin
                        } else {
                            Cause::License
                        }
                    },
                    false,
                );
            }
            Op::Advance(secs) => {
                real.clock.fetch_add(secs * 1000, Ordering::SeqCst);
                m.now += secs * 1000;
                let r = s
                    .reconcile(t, seatkeeper::store::events::audit::Actor::cli())
                    .await
                    .unwrap();
                assert_eq!(
                    r.counts.repaired, 0,
                    "step {i} {op:?}: reconcile repaired drift: {r:?}"
                );
                let idle = m.reclaim();
                m.step(
                    |x| {
                        if idle.contains(&x) {
                            Cause::License
                        } else {
                            Cause::Directory
                        }
                    },
                    false,
                );
                m.tell();
                if m.block_newest {
                    m.evict();
                }
            }
            Op::Days(days) => {
                real.clock.fetch_add(days * DAY_MS, Ordering::SeqCst);
                m.now += days * DAY_MS;
                let r = s
                    .reconcile(t, seatkeeper::store::events::audit::Actor::cli())
                    .await
                    .unwrap();
                assert_eq!(
                    r.counts.repaired, 0,
                    "step {i} {op:?}: reconcile repaired drift: {r:?}"
                );
                let idle = m.reclaim();
                m.step(
                    |x| {
                        if idle.contains(&x) {
                            Cause::License
                        } else {
                            Cause::Directory
                        }
                    },
                    false,
                );
                m.tell();
                if m.block_newest {
                    m.evict();
                }
            }
            Op::Use(u) => {
                if !m.exists[u] {
                    continue;
                }
                let r = s
                    .record_usage(
                        t,
                        vec![seatkeeper::store::UsageEvent {
                            user: format!("user{u}"),
                            license: "L".into(),
                            at: None,
                        }],
                    )
                    .await
                    .unwrap();
                if m.overrides.get(&u) == Some(&Ov::Idle) {
                    m.overrides.remove(&u);
                    m.step(dir_cause, false);
                }
                let now = m.now;
                let seat = m.seats.get_mut(&u);
                assert_eq!(r.recorded, usize::from(seat.is_some()), "step {i}: {r:?}");
                if let Some(seat) = seat {
                    seat.last_used = Some(now);
                }
            }
            Op::Decide(approve) => {
                let Some(h) = m.decidable(approve) else {
                    continue;
                };
                let mut holds = s.holds(t, None).await.unwrap();
                holds.sort_by_key(|h| h.id);
                let decision = if approve {
                    seatkeeper::store::Decision::Approve
                } else {
                    seatkeeper::store::Decision::Reject
                };
                s.decide_hold(
                    t,
                    holds[h].id,
                    decision,
                    seatkeeper::store::events::audit::Actor::cli(),
                )
                .await
                .unwrap();
                if approve {
                    m.approve(h);
                } else {
                    m.holds[h] = HoldSt::Rejected;
                }
            }
            Op::Reconcile => {
                let r = s
                    .reconcile(t, seatkeeper::store::events::audit::Actor::cli())
                    .await
                    .unwrap();
                assert_eq!(
                    r.counts.repaired, 0,
                    "step {i} {op:?}: reconcile repaired drift: {r:?}"
                );
                let idle = m.reclaim();
                m.step(
                    |x| {
                        if idle.contains(&x) {
                            Cause::License
                        } else {
                            Cause::Directory
                        }
                    },
                    false,
                );
                m.tell();
                if m.block_newest {
                    m.evict();
                }
            }
        }
        m.evict_regained();
        let (states, waiting, in_use) = real_view(&real).await;
        let (want_states, want_waiting) = m.view();
        assert_eq!(
            real_pools(&real).await,
            m.pools(&real.groups),
            "step {i} {op:?}: the groups seats count against differ\nops: {ops:?}"
        );
        assert_eq!(
            states, want_states,
            "step {i} {op:?}: seat states differ\nops: {ops:?}"
        );
        assert_eq!(
            waiting, want_waiting,
            "step {i} {op:?}: waitlist order differs\nops: {ops:?}"
        );
        assert_eq!(in_use, m.in_use());
        let (held, hold_states) = real_holds(&real).await;
        let want_held: BTreeMap<String, usize> = m
            .seats
            .iter()
            .filter_map(|(u, s)| s.held.map(|(h, _)| (m.ids[*u].clone(), h)))
            .collect();
        assert_eq!(
            held, want_held,
            "step {i} {op:?}: held seats differ\nops: {ops:?}"
        );
        let want_states: Vec<String> = m.holds.iter().map(|h| h.as_str().to_owned()).collect();
        assert_eq!(
            hold_states, want_states,
            "step {i} {op:?}: holds differ\nops: {ops:?}"
        );
    }
    let problems = real.store.check().await.unwrap();
    assert!(problems.is_empty(), "check: {problems:?}\nops: {ops:?}");
    real.store.close();
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Every case is a fresh database: on PostgreSQL (a database per case over the network)
        // fewer cases keep the suite short (each still runs up to 30 steps against the model).
        cases: cases(40, 100),
        ..ProptestConfig::default()
    })]

    #[test]
    fn allocator_matches_the_reference_model(
        ops in proptest::collection::vec(op(), 1..30),
        capacity in 0i64..4,
        auto_promote in any::<bool>(),
        grace in prop_oneof![Just(0i64), Just(10i64)],
        block_newest in any::<bool>(),
        free_on_delete in any::<bool>(),
        reclaim in any::<bool>(),
        tight in prop_oneof![Just(None), Just(Some((0i64, 1i64))), Just(Some((34, 2))), Just(Some((50, 1)))],
        overage in prop_oneof![3 => Just(0i64), 1 => Just(1i64), 1 => Just(2i64)],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops, capacity, auto_promote, grace, block_newest, free_on_delete, reclaim, tight, overage));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(25, 60),
        ..ProptestConfig::default()
    })]

    /// The circuit breaker, from a start where every user holds or waits for a seat: mass
    /// losses (removals, deactivations, deletions) against tight thresholds, decisions, undoing.
    #[test]
    fn circuit_breaker_matches_the_reference_model(
        ops in proptest::collection::vec(op(), 1..30),
        capacity in 2i64..5,
        auto_promote in any::<bool>(),
        grace in prop_oneof![Just(0i64), Just(10i64)],
        block_newest in any::<bool>(),
        free_on_delete in any::<bool>(),
        tight in prop_oneof![Just((0i64, 1i64)), Just((34, 2)), Just((50, 1)), Just((20, 2))],
    ) {
        let mut all = (0..USERS).map(|u| Op::AddMember(u, u % GROUPS)).collect::<Vec<_>>();
        all.push(Op::Select(3));
        all.extend(ops);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(all, capacity, auto_promote, grace, block_newest, free_on_delete, false, Some(tight), 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(25, 60),
        ..ProptestConfig::default()
    })]

    /// Reservations and ceilings per group, from a start where both groups are selected with
    /// limits and every user is in one of them.
    #[test]
    fn reservations_and_ceilings_match_the_reference_model(
        ops in proptest::collection::vec(op(), 1..30),
        capacity in 2i64..5,
        auto_promote in any::<bool>(),
        grace in prop_oneof![Just(0i64), Just(10i64)],
        block_newest in any::<bool>(),
        limits in ((0i64..2, prop_oneof![Just(None), (1i64..3).prop_map(Some)]), (0i64..2, prop_oneof![Just(None), (1i64..3).prop_map(Some)])),
        overage in prop_oneof![3 => Just(0i64), 1 => Just(1i64)],
    ) {
        let ((r0, m0), (r1, m1)) = limits;
        let mut all = vec![Op::Limits(0, r0, m0), Op::Limits(1, r1, m1)];
        all.extend((0..USERS).map(|u| Op::AddMember(u, u % GROUPS)));
        all.push(Op::Select(3));
        all.extend(ops);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(all, capacity, auto_promote, grace, block_newest, true, false, None, overage));
    }
}

/// Cases per property: the CI's count on each engine, or `SEATKEEPER_MODEL_CASES` for a longer
/// run (e.g. 2000 before a release).
fn cases(postgres: u32, sqlite: u32) -> u32 {
    std::env::var("SEATKEEPER_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if postgres_support::selected() {
            postgres
        } else {
            sqlite
        })
}

/// A change the store must refuse as invalid (its preview too): nothing changes.
async fn refused(
    s: &Store,
    t: seatkeeper::store::TenantKey,
    seats: Option<i64>,
    groups: Option<Vec<GroupSelection>>,
    change: LicenseChange,
) {
    assert!(s.preview(t, "L".into(), seats, groups, None).await.is_err());
    let r = s
        .update_license(
            t,
            "L".into(),
            change,
            seatkeeper::store::events::audit::Actor::cli(),
        )
        .await;
    assert!(
        matches!(r, Err(seatkeeper::store::Error::Invalid(_))),
        "{r:?}"
    );
}

/// A license's seats by user name: state and whether the breaker holds the loss.
async fn seat_map(
    s: &seatkeeper::store::Store,
    t: seatkeeper::store::TenantKey,
) -> BTreeMap<String, (&'static str, bool)> {
    s.seats(t, "L".into(), None)
        .await
        .unwrap()
        .seats
        .into_iter()
        .map(|v| {
            (
                v.user_name.clone().unwrap_or(v.user_id.clone()),
                (v.state.as_str(), v.hold.is_some()),
            )
        })
        .collect()
}

/// Who gained, lost, waits and is held between two seat maps, as a preview lists them:
/// (granted, promoted, blocked, releasing, released, held), each sorted.
type Moves = [Vec<String>; 6];

fn moves(
    before: &BTreeMap<String, (&'static str, bool)>,
    after: &BTreeMap<String, (&'static str, bool)>,
) -> Moves {
    let mut out: Moves = Default::default();
    let users: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for u in users {
        let (w, n) = (before.get(u), after.get(u));
        let (ws, ns) = (w.map(|x| x.0), n.map(|x| x.0));
        let slot = match (ws, ns) {
            (None | Some("releasing"), Some("granted")) => Some(0),
            (Some("blocked"), Some("granted")) => Some(1),
            (w, Some("blocked")) if w != Some("blocked") => Some(2),
            (Some("granted"), Some("releasing")) => Some(3),
            (Some(_), None) => Some(4),
            _ => None,
        };
        if let Some(i) = slot {
            out[i].push(u.clone());
        }
        if n.is_some_and(|x| x.1) && !w.is_some_and(|x| x.1) {
            out[5].push(u.clone());
        }
    }
    out
}

fn listed(p: &seatkeeper::store::PreviewView) -> Moves {
    let sorted = |v: &Vec<String>| {
        let mut v = v.clone();
        v.sort();
        v
    };
    [
        sorted(&p.granted),
        sorted(&p.promoted),
        sorted(&p.blocked),
        sorted(&p.releasing),
        sorted(&p.released),
        sorted(&p.held),
    ]
}

/// The preview foretold the change: the counts after it, and who moved, user by user.
async fn assert_previewed(
    s: &seatkeeper::store::Store,
    t: seatkeeper::store::TenantKey,
    preview: &seatkeeper::store::PreviewView,
    before: &BTreeMap<String, (&'static str, bool)>,
    step: usize,
) {
    let l = s.license(t, "L".into()).await.unwrap();
    assert_eq!(
        (
            preview.capacity,
            preview.after.granted,
            preview.after.releasing,
            preview.after.blocked
        ),
        (l.seats, l.granted, l.releasing, l.blocked),
        "step {step}: the preview {preview:?} foretold the change"
    );
    let after = seat_map(s, t).await;
    let mut want = moves(before, &after);
    // The copy-based preview lists no holds (an admin's change is never held).
    if preview.held.is_empty() {
        want[5].clear();
    }
    assert_eq!(
        listed(preview),
        want,
        "step {step}: the preview named who moved, user by user ({preview:?})"
    );
}

/// Cases proptest once found, kept as plain tests on both engines.
#[test]
fn an_idle_seat_reclaimed_over_two_days_is_gone_when_its_user_comes_back() {
    let ops = vec![
        Op::AddMember(3, 1),
        Op::Select(2),
        Op::Days(1),
        Op::Days(1),
        Op::Select(0),
        Op::Use(3),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(ops, 1, false, 0, false, false, true, None, 0));
}

/// The same operations on the allocator over the in-memory store (`alloc::memory`), driven as
/// the SQL store's hooks drive it (`store::seats`, `store::groups`, `store::licenses`), against
/// the same reference model: thousands of cases in the time the store-backed run takes for a
/// hundred. (No idle reclaim here: that pass lives in the store.)
mod in_memory {
    use super::*;
    use seatkeeper::alloc::memory::{HoldState, MemoryLicense, MemoryStore};
    use seatkeeper::alloc::{self, Allocator, Change, OnLowered, Policy, SeatState};

    const L: i64 = 1;

    struct Mem {
        m: MemoryStore,
        ids: Vec<String>,
        groups: [String; GROUPS],
        now: i64,
        last_order: i64,
    }

    impl Mem {
        fn run(&mut self, f: impl FnOnce(&mut Allocator<MemoryStore>)) {
            let order = (self.now * 1000).max(self.last_order + 1);
            self.last_order = order;
            let mut a = Allocator::with_order(&mut self.m, self.now, order);
            f(&mut a);
            a.finish().unwrap();
            drop(a);
            self.m.flush();
        }

        /// A change of `group`'s members `changed`, as `store::groups` re-allocates it: the
        /// licenses selecting the group or a group above it, for the changed member (a user) or
        /// every user under it (a group).
        fn members_changed(&mut self, group: usize, changed: &str) {
            let g = self.groups[group].clone();
            let name = format!("group{group}");
            let changed = changed.to_owned();
            let is_user = self.m.users.contains_key(&changed);
            self.run(|a| {
                let mut gs: Vec<String> = a.ancestors(&g).unwrap().into_iter().collect();
                gs.push(g.clone());
                let ls = a.licenses_touching(&gs).unwrap();
                let mut users = a.member_closure(&changed).unwrap();
                if is_user {
                    users.push(changed.clone());
                }
                a.because(Change::Members(name));
                for l in ls {
                    a.reevaluate(l, &users, alloc::Cause::Directory, false)
                        .unwrap();
                }
            });
        }

        /// Sets the license's limits as the store would read them back.
        fn set_rules(&mut self, rules: &[(usize, i64, Option<i64>)]) {
            self.m.licenses.get_mut(&L).unwrap().policy.pools = rules
                .iter()
                .map(|&(g, reserve, max)| alloc::PoolRule {
                    group: Some(self.groups[g].clone()),
                    reserve,
                    max,
                })
                .collect();
        }

        fn pools(&self) -> BTreeMap<String, Option<String>> {
            self.m.licenses[&L]
                .seats
                .values()
                .map(|s| (s.user.clone(), s.pool.clone()))
                .collect()
        }

        fn view(&self) -> (BTreeMap<String, &'static str>, Vec<String>) {
            let seats = &self.m.licenses[&L].seats;
            let states = seats
                .values()
                .map(|s| (s.user.clone(), s.state.as_str()))
                .collect();
            let mut waiting: Vec<&seatkeeper::alloc::Seat> = seats
                .values()
                .filter(|s| s.state == SeatState::Blocked)
                .collect();
            waiting.sort_by(|a, b| {
                b.pinned
                    .cmp(&a.pinned)
                    .then(a.entitled_at.cmp(&b.entitled_at))
                    .then(a.user.cmp(&b.user))
            });
            (
                states,
                waiting.into_iter().map(|s| s.user.clone()).collect(),
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        ops: Vec<Op>,
        capacity: i64,
        auto_promote: bool,
        grace: i64,
        block_newest: bool,
        free_on_delete: bool,
        tight: Option<(i64, i64)>,
        overage: i64,
    ) {
        let start = 1_767_225_600_000;
        let breaker = breaker_of(tight);
        let ids: Vec<String> = (0..USERS).map(|i| format!("user{i}")).collect();
        let mut m = MemoryStore::default();
        for u in &ids {
            m.users.insert(u.clone(), true);
        }
        let groups = ["group-0".to_owned(), "group-1".to_owned()];
        for g in &groups {
            m.groups.insert(g.clone(), Default::default());
        }
        m.licenses.insert(
            L,
            MemoryLicense::new(Policy {
                capacity: capacity + overage,
                auto_promote,
                grace_ms: grace * 1000,
                on_lowered: if block_newest {
                    OnLowered::BlockNewest
                } else {
                    OnLowered::Keep
                },
                free_on_delete,
                breaker: alloc::Breaker {
                    percent: breaker.percent,
                    min_seats: breaker.min_seats,
                    window_ms: breaker.window_ms,
                },
                pools: Vec::new(),
            }),
        );
        let mut mem = Mem {
            m,
            ids: ids.clone(),
            groups,
            now: start,
            last_order: 0,
        };
        let mut model = Model {
            ids,
            exists: vec![true; USERS],
            active: vec![true; USERS],
            members: HashSet::new(),
            nested: false,
            selected: [false; GROUPS],
            capacity: capacity + overage,
            auto_promote,
            grace_ms: grace * 1000,
            block_newest,
            free_on_delete,
            reclaim: false,
            overage,
            overrides: HashMap::new(),
            seats: BTreeMap::new(),
            now: start,
            order: 0,
            breaker,
            window: None,
            holds: Vec::new(),
            limits: [(0, None); GROUPS],
            regained: false,
        };
        let dir = |_: usize| Cause::Directory;
        for (i, op) in ops.iter().enumerate() {
            match op.clone() {
                Op::AddMember(u, g) | Op::RemoveMember(u, g) => {
                    let add = matches!(op, Op::AddMember(..));
                    let id = mem.ids[u].clone();
                    let set = mem.m.groups.get_mut(&mem.groups[g]).unwrap();
                    if add {
                        set.insert(id.clone());
                        model.members.insert((u, g));
                    } else {
                        set.remove(&id);
                        model.members.remove(&(u, g));
                    }
                    mem.members_changed(g, &id);
                    model.step(dir, false);
                }
                Op::SetActive(u, a) => {
                    if !model.exists[u] {
                        continue;
                    }
                    let id = mem.ids[u].clone();
                    mem.m.users.insert(id.clone(), a);
                    mem.run(|al| {
                        al.member_changed(&id, &[], alloc::Cause::Directory)
                            .unwrap()
                    });
                    model.active[u] = a;
                    model.step(dir, false);
                }
                Op::DeleteUser(u) => {
                    if !model.exists[u] {
                        continue;
                    }
                    let id = mem.ids[u].clone();
                    let ls = alloc::SeatStore::seat_licenses(&mut mem.m, &id).unwrap();
                    mem.m.users.remove(&id);
                    for g in mem.m.groups.values_mut() {
                        g.remove(&id);
                    }
                    mem.run(|a| {
                        for l in ls {
                            a.reevaluate(
                                l,
                                std::slice::from_ref(&id),
                                alloc::Cause::UserDeleted,
                                false,
                            )
                            .unwrap();
                        }
                    });
                    model.exists[u] = false;
                    model.members.retain(|(x, _)| *x != u);
                    model.step(
                        |x| {
                            if x == u {
                                Cause::Deleted
                            } else {
                                Cause::Directory
                            }
                        },
                        false,
                    );
                }
                Op::Nest(on) => {
                    let g1 = mem.groups[1].clone();
                    let set = mem.m.groups.get_mut(&mem.groups[0]).unwrap();
                    if on {
                        set.insert(g1.clone());
                    } else {
                        set.remove(&g1);
                    }
                    mem.members_changed(0, &g1);
                    model.nested = on;
                    model.step(dir, false);
                }
                Op::Select(mask) => {
                    let reserved: i64 = (0..GROUPS)
                        .filter(|g| mask & (1 << g) != 0)
                        .map(|g| model.limits[g].0)
                        .sum();
                    if reserved > model.capacity - model.overage {
                        continue;
                    }
                    let rules_before = model.rules();
                    let selected_before = model.selected;
                    for g in 0..GROUPS {
                        model.selected[g] = mask & (1 << g) != 0;
                    }
                    let rules = model.rules();
                    model.selected = selected_before;
                    let changed = rules != rules_before;
                    mem.set_rules(&rules);
                    let want: std::collections::BTreeSet<String> = (0..GROUPS)
                        .filter(|g| mask & (1 << g) != 0)
                        .map(|g| mem.groups[g].clone())
                        .collect();
                    let old = std::mem::replace(
                        &mut mem.m.licenses.get_mut(&L).unwrap().selected,
                        want.clone(),
                    );
                    let removed: Vec<String> = old.difference(&want).cloned().collect();
                    let added: Vec<String> = want.difference(&old).cloned().collect();
                    mem.run(|a| {
                        if changed {
                            a.repool_all(L).unwrap();
                        }
                        let mut gone = Vec::new();
                        for g in &removed {
                            gone.extend(a.member_closure(g).unwrap());
                        }
                        gone.sort();
                        gone.dedup();
                        a.reevaluate_leaving(L, &gone, alloc::Cause::License)
                            .unwrap();
                        let mut fresh = Vec::new();
                        for g in &added {
                            fresh.extend(a.member_closure(g).unwrap());
                        }
                        fresh.sort();
                        fresh.dedup();
                        a.reevaluate_selected(L, fresh, |_| Ok(())).unwrap();
                        if changed {
                            a.limits_changed(L).unwrap();
                        }
                    });
                    let gone: HashSet<usize> = (0..USERS)
                        .filter(|&u| {
                            model.exists[u]
                                && (0..GROUPS).any(|g| {
                                    model.selected[g]
                                        && mask & (1 << g) == 0
                                        && model.in_group(u, g)
                                })
                        })
                        .collect();
                    for g in 0..GROUPS {
                        model.selected[g] = mask & (1 << g) != 0;
                    }
                    model.step(
                        |x| {
                            if gone.contains(&x) {
                                Cause::License
                            } else {
                                Cause::Directory
                            }
                        },
                        false,
                    );
                    if changed {
                        model.repool();
                        if model.block_newest {
                            model.evict();
                        }
                    }
                }
                Op::Limits(g, reserve, max) => {
                    let mut limits = model.limits;
                    limits[g] = (reserve, max);
                    let reserved: i64 = (0..GROUPS)
                        .filter(|&x| model.selected[x])
                        .map(|x| limits[x].0)
                        .sum();
                    if reserved > model.capacity - model.overage || max.is_some_and(|x| x < reserve)
                    {
                        continue;
                    }
                    let rules_before = model.rules();
                    model.limits = limits;
                    let rules = model.rules();
                    if rules != rules_before {
                        mem.set_rules(&rules);
                        mem.run(|a| {
                            a.repool_all(L).unwrap();
                            a.limits_changed(L).unwrap();
                        });
                        model.limits_changed();
                    }
                }
                Op::Capacity(n) => {
                    if n < model.reserved() {
                        continue;
                    }
                    let old = mem.m.licenses[&L].policy.capacity;
                    mem.m.licenses.get_mut(&L).unwrap().policy.capacity = n + overage;
                    // As the store: the allocator runs only when the capacity changed.
                    if n + overage != old {
                        mem.run(|a| a.capacity_changed(L, old).unwrap());
                    }
                    let old = model.capacity;
                    model.capacity = n + overage;
                    model.order += 1;
                    model.fill(&HashSet::new(), n + overage > old);
                    if n + overage < old && model.block_newest {
                        model.evict();
                    }
                }
                Op::CutOver(bits) => {
                    let carried: Vec<usize> = carried_order(bits)
                        .into_iter()
                        .filter(|u| model.exists[*u])
                        .collect();
                    let refs: Vec<String> = carried.iter().map(|u| mem.ids[*u].clone()).collect();
                    mem.run(|a| a.carry_over(L, &refs).unwrap());
                    model.carry_over(&carried);
                }
                Op::BlockNewest => {
                    if model.block_newest {
                        continue;
                    }
                    mem.m.licenses.get_mut(&L).unwrap().policy.on_lowered =
                        alloc::OnLowered::BlockNewest;
                    mem.run(|a| a.on_lowered_changed(L).unwrap());
                    model.block_newest = true;
                    model.evict();
                }
                Op::Override(u, kind) => {
                    if !model.exists[u] {
                        continue;
                    }
                    let id = mem.ids[u].clone();
                    let ovs = &mut mem.m.licenses.get_mut(&L).unwrap().overrides;
                    match kind {
                        Some(p) => {
                            ovs.insert(
                                id.clone(),
                                if p {
                                    OverrideKind::Pin
                                } else {
                                    OverrideKind::Exclude
                                },
                            );
                            model
                                .overrides
                                .insert(u, if p { Ov::Pin } else { Ov::Exclude });
                        }
                        None => {
                            if ovs.remove(&id).is_none() {
                                continue;
                            }
                            model.overrides.remove(&u);
                        }
                    }
                    let admin = kind == Some(false);
                    let cause = if admin {
                        alloc::Cause::Admin
                    } else {
                        alloc::Cause::License
                    };
                    mem.run(|a| {
                        a.reevaluate(L, std::slice::from_ref(&id), cause, false)
                            .unwrap()
                    });
                    model.step(
                        |x| {
                            if x != u {
                                Cause::Directory
                            } else if admin {
                                Cause::Admin
                            } else {
                                Cause::License
                            }
                        },
                        false,
                    );
                }
                Op::Advance(_) | Op::Days(_) | Op::Reconcile => {
                    let ms = match op {
                        Op::Advance(s) => s * 1000,
                        Op::Days(d) => d * DAY_MS,
                        _ => 0,
                    };
                    mem.now += ms;
                    model.now += ms;
                    mem.run(|a| {
                        a.reconcile(L).unwrap();
                        assert_eq!(
                            a.report.repaired, 0,
                            "step {i} {op:?}: reconcile repaired drift"
                        );
                    });
                    model.step(dir, false);
                    if model.block_newest {
                        model.evict();
                    }
                }
                Op::Use(_) => {}
                Op::Decide(approve) => {
                    let Some(h) = model.decidable(approve) else {
                        continue;
                    };
                    let id = h as i64 + 1;
                    if approve {
                        mem.m.holds.get_mut(&id).unwrap().state = HoldState::Approved;
                        let held: Vec<(String, alloc::Loss)> = mem.m.licenses[&L]
                            .seats
                            .values()
                            .filter_map(|s| {
                                s.held
                                    .as_ref()
                                    .filter(|x| x.hold == id)
                                    .map(|x| (s.user.clone(), x.loss.clone()))
                            })
                            .collect();
                        mem.run(|a| a.release_held(L, &held).unwrap());
                        model.approve(h);
                    } else {
                        mem.m.holds.get_mut(&id).unwrap().state = HoldState::Rejected;
                        model.holds[h] = HoldSt::Rejected;
                    }
                }
            }
            model.evict_regained();
            let (states, waiting) = mem.view();
            let (want_states, want_waiting) = model.view();
            assert_eq!(
                mem.pools(),
                model.pools(&mem.groups),
                "step {i} {op:?}: the groups seats count against differ\nops: {ops:?}"
            );
            assert_eq!(
                states, want_states,
                "step {i} {op:?}: seat states differ\nops: {ops:?}"
            );
            assert_eq!(
                waiting, want_waiting,
                "step {i} {op:?}: waitlist differs\nops: {ops:?}"
            );
            let held: BTreeMap<String, usize> = mem.m.licenses[&L]
                .seats
                .values()
                .filter_map(|s| {
                    s.held
                        .as_ref()
                        .map(|h| (s.user.clone(), h.hold as usize - 1))
                })
                .collect();
            let want_held: BTreeMap<String, usize> = model
                .seats
                .iter()
                .filter_map(|(u, s)| s.held.map(|(h, _)| (model.ids[*u].clone(), h)))
                .collect();
            assert_eq!(
                held, want_held,
                "step {i} {op:?}: held seats differ\nops: {ops:?}"
            );
            let states: Vec<&str> = mem
                .m
                .holds
                .values()
                .map(|h| match h.state {
                    HoldState::Open => "open",
                    HoldState::Approved => "approved",
                    HoldState::Rejected => "rejected",
                    HoldState::Dissolved => "dissolved",
                })
                .collect();
            let want: Vec<&str> = model.holds.iter().map(|h| h.as_str()).collect();
            assert_eq!(states, want, "step {i} {op:?}: holds differ\nops: {ops:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn the_allocator_over_memory_matches_the_reference_model(
            ops in proptest::collection::vec(op(), 1..40),
            capacity in 0i64..5,
            auto_promote in any::<bool>(),
            grace in prop_oneof![Just(0i64), Just(10i64)],
            block_newest in any::<bool>(),
            free_on_delete in any::<bool>(),
            tight in prop_oneof![Just(None), Just(Some((0i64, 1i64))), Just(Some((34, 2))), Just(Some((50, 1)))],
            overage in prop_oneof![3 => Just(0i64), 1 => Just(1i64)],
            seeded in any::<bool>(),
        ) {
            // The same on both engines: the PostgreSQL binary leaves it to the SQLite one.
            if postgres_support::selected() {
                return Ok(());
            }
            let mut all = Vec::new();
            if seeded {
                all.extend((0..USERS).map(|u| Op::AddMember(u, u % GROUPS)));
                all.push(Op::Select(3));
            }
            all.extend(ops);
            run(all, capacity, auto_promote, grace, block_newest, free_on_delete, tight, overage);
        }
    }
}

/// Found by the circuit-breaker property in CI: under `block_newest`, a seat given back to its
/// user (back inside its grace after a group was unselected, or a held seat whose user is
/// entitled again) while the count had been lowered below use must not leave use above the
/// count: the same change gives back the newest seats.
#[test]
fn a_seat_given_back_after_a_lowering_counts_against_the_count_at_once() {
    for tight in [None, Some((0i64, 1i64))] {
        let mut all = (0..USERS)
            .map(|u| Op::AddMember(u, u % GROUPS))
            .collect::<Vec<_>>();
        all.push(Op::Select(3));
        all.extend([Op::Select(0), Op::Capacity(0), Op::Select(1)]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(all, 2, false, 10, true, false, false, tight, 0));
    }
}

/// Found by the reservations property: a change that gives seats back to their users in two
/// steps (a group selected, then the limits applied) brings use under a lowered count once,
/// when the change is whole, as the model does, not after its first step.
#[test]
fn seats_given_back_by_a_selection_with_limits_count_once_the_change_is_whole() {
    let mut all = vec![Op::Limits(0, 0, Some(1)), Op::Limits(1, 0, None)];
    all.extend((0..USERS).map(|u| Op::AddMember(u, u % GROUPS)));
    all.push(Op::Select(3));
    all.extend([
        Op::AddMember(0, 0),
        Op::Nest(false),
        Op::Select(0),
        Op::AddMember(0, 0),
        Op::Capacity(0),
        Op::BlockNewest,
        Op::Select(3),
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(all, 2, false, 10, false, true, false, None, 1));
}
