//! The seat allocator: the rules of SPEC "Allocation semantics" and "Reconciliation window" as
//! domain logic, with no SQL and no HTTP.
//!
//! The allocator reads and writes through the [`SeatStore`] trait, which the store implements over
//! the very transaction of the SCIM or admin write that caused the change (so the seat invariant is
//! never observable broken), and which the tests implement over anything they like. Work is
//! proportional to the users a change touches: a membership add evaluates one user; selecting a
//! group evaluates its members; filling free seats reads the head of the waitlist, never the whole
//! license.
//!
//! Rules (see README "Licenses and seats"):
//! - **Entitled**: the user exists, is active, is a member (directly or through nested groups) of
//!   a group the license selects, and is not excluded.
//! - **Order**: pinned first, then by the time the user became entitled, ties by user id.
//! - **Invariant**: a seat is granted only while granted + releasing < capacity.
//! - **Fill**: free seats go to the head of the waitlist when `auto_promote` is on; when it is
//!   off, only users becoming entitled in this very change may take a free seat, and only when no
//!   one waits ahead of them. Raising the capacity (an admin act) promotes either way.
//! - **Grace**: a granted user who stops being entitled keeps the seat as `releasing` for
//!   `grace`; re-entitled inside it, they keep the seat without queuing again. A deleted user
//!   (when `free_on_delete`), an excluded user, or a zero grace frees the seat at once.
//! - **Lowered capacity**: `keep` evicts no one; `block_newest` moves the most recently granted
//!   (unpinned, not held first) back to the waitlist until use fits.
//! - **Circuit breaker** (the tenant's [`Breaker`]): directory changes that take granted seats
//!   ([`Cause::Directory`], [`Cause::UserDeleted`]) are counted per license in a window that
//!   opens at the first such loss, against the granted seats at that moment. Past
//!   `max(base × percent / 100, min_seats − 1)` losses in one window, a further loss is
//!   **held**: the user keeps the granted seat, marked with the license's open hold, so nothing
//!   frees and nobody is promoted. A held user entitled again is simply no longer held (when
//!   an open hold loses its last user it dissolves); an admin approves a hold (its losses go
//!   the normal way: grace, release, promotion: [`Allocator::release_held`]) or rejects it (the
//!   seats stay held until the directory entitles their users again or an admin releases them).
//!   Admin acts ([`Cause::Admin`], [`Cause::License`]) and the reconciler are never held; an
//!   admin act on a held user ends the hold of that seat; the reconciler leaves held seats alone.
//!
//! (About 720 lines: the [`SeatStore`] trait and the [`Allocator`] with every rule above, one
//! `impl` that reads top to bottom. Its vocabulary is in `model`, group limits in `pools`, the
//! breaker in `breaker`, the cut-over from shadow mode in `carry`.)

use std::collections::{HashMap, HashSet, VecDeque};

mod breaker;
mod carry;
pub mod memory;
mod model;
mod pools;
pub use breaker::{Breaker, Change, Held, Loss, LossWindow};
pub use pools::{pool_of, room, PoolRule, PoolUse};

pub use model::*;

/// The facts and seat rows the allocator works on, scoped to one tenant.
pub trait SeatStore {
    type Error;
    /// About to re-evaluate `users` in license `l`: a store may read what that asks of each
    /// (activity, override, seat, groups) in sets now, to answer the reads that follow without
    /// a statement each. Reads must answer the same with or without it.
    fn prefetch(&mut self, _l: LicenseKey, _users: &[UserId]) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `Some(active)` for an existing user, `None` for no such user.
    fn user_active(&mut self, user: &str) -> Result<Option<bool>, Self::Error>;
    /// Groups that list this user or group as a direct member.
    fn parent_groups(&mut self, member: &str) -> Result<Vec<GroupId>, Self::Error>;
    /// Direct members of a group that exist: (users, groups). A user may appear twice (listed
    /// by id and by externalId); [`Allocator::member_closure`] removes duplicates.
    fn direct_members(&mut self, group: &str) -> Result<(Vec<UserId>, Vec<GroupId>), Self::Error>;
    /// Licenses selecting any of these groups.
    fn licenses_selecting(&mut self, groups: &[GroupId]) -> Result<Vec<LicenseKey>, Self::Error>;
    /// Licenses where the user has a seat row.
    fn seat_licenses(&mut self, user: &str) -> Result<Vec<LicenseKey>, Self::Error>;
    fn policy(&mut self, l: LicenseKey) -> Result<Option<Policy>, Self::Error>;
    /// Groups the license selects (resolved selectors only).
    fn selected_groups(&mut self, l: LicenseKey) -> Result<Vec<GroupId>, Self::Error>;
    fn override_of(
        &mut self,
        l: LicenseKey,
        user: &str,
    ) -> Result<Option<OverrideKind>, Self::Error>;
    /// Every override of the license (pins and exclusions).
    fn overrides(&mut self, l: LicenseKey) -> Result<Vec<(UserId, OverrideKind)>, Self::Error>;
    fn seat(&mut self, l: LicenseKey, user: &str) -> Result<Option<Seat>, Self::Error>;
    fn all_seats(&mut self, l: LicenseKey) -> Result<Vec<Seat>, Self::Error>;
    fn counts(&mut self, l: LicenseKey) -> Result<Counts, Self::Error>;
    /// The first `n` blocked seats in waitlist order.
    fn blocked_head(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>, Self::Error>;
    /// The `n` most recently granted seats that are not held, unpinned first.
    fn newest_granted(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>, Self::Error>;
    /// The first `n` blocked seats counting against `pool`, in waitlist order.
    fn blocked_head_in(
        &mut self,
        l: LicenseKey,
        pool: &str,
        n: usize,
    ) -> Result<Vec<Seat>, Self::Error>;
    /// The `n` most recently granted seats counting against `pool` that are not held, in the
    /// order of [`Self::newest_granted`].
    fn newest_granted_in(
        &mut self,
        l: LicenseKey,
        pool: &str,
        n: usize,
    ) -> Result<Vec<Seat>, Self::Error>;
    /// Seats in use (granted and releasing) per pool.
    fn pool_use(&mut self, l: LicenseKey) -> Result<Vec<(GroupId, i64)>, Self::Error>;
    /// Releasing seats whose release time has come.
    fn releasing_due(&mut self, l: LicenseKey, now: Millis) -> Result<Vec<Seat>, Self::Error>;
    /// Writes a seat whose stored state was `previous` (`None`: a new row).
    fn save_seat(
        &mut self,
        l: LicenseKey,
        seat: &Seat,
        previous: Option<SeatState>,
    ) -> Result<(), Self::Error>;
    /// Deletes a seat whose stored state is `previous`.
    fn remove_seat(
        &mut self,
        l: LicenseKey,
        user: &str,
        previous: SeatState,
    ) -> Result<(), Self::Error>;
    /// The license's window of seat losses.
    fn loss_window(&mut self, l: LicenseKey) -> Result<LossWindow, Self::Error>;
    fn set_loss_window(&mut self, l: LicenseKey, w: LossWindow) -> Result<(), Self::Error>;
    /// The license's open hold, opened now when it has none, counting one more held `loss`.
    fn hold(&mut self, l: LicenseKey, loss: &Loss) -> Result<HoldId, Self::Error>;
    /// A seat of `hold` is no longer held (an open hold without held seats dissolves).
    fn unhold(&mut self, l: LicenseKey, hold: HoldId) -> Result<(), Self::Error>;
    /// Records a seat event; `previous` is the seat's state before the change; `cause` is what
    /// decided a seat's loss (the run's cause where it took or moved a seat; `None` for grants,
    /// promotions and a grace running out).
    fn record(
        &mut self,
        l: LicenseKey,
        user: &str,
        kind: EventKind,
        previous: Option<SeatState>,
        at: Millis,
        cause: Option<Cause>,
    ) -> Result<(), Self::Error>;
}

/// One allocation run over a store, at one instant.
pub struct Allocator<'a, S: SeatStore> {
    store: &'a mut S,
    now: Millis,
    order: i64,
    selected: HashMap<LicenseKey, HashSet<GroupId>>,
    policies: HashMap<LicenseKey, Option<Policy>>,
    /// Overrides of licenses re-evaluated for many users at once, read once per run.
    overrides: HashMap<LicenseKey, HashMap<UserId, OverrideKind>>,
    /// The directory change this run follows (for held losses).
    change: Option<Change>,
    /// Whether directory losses go through the circuit breaker (not while approving a hold).
    guard: bool,
    /// Seats in use per pool of pooled licenses, read once per run (see `pools`).
    pool_use: HashMap<LicenseKey, PoolUse>,
    /// Seats freed now are left for the rest of the same change to give out
    /// ([`Allocator::reevaluate_leaving`]).
    defer_fill: bool,
    /// Licenses under `block_newest` where a seat came back to its user, entitled again (a
    /// held seat kept, or a releasing one back inside its grace): the seat counts against the
    /// count as granted once more, so use is brought under it when the run ends
    /// ([`Allocator::finish`]).
    regained: HashSet<LicenseKey>,
    /// The cause of the seat decision being made (see [`SeatStore::record`]).
    cause_now: Option<Cause>,
    /// While set, seat changes record no event (a rearrangement that records its net effect
    /// after: [`Allocator::carry_over`]).
    quiet: bool,
    pub report: Report,
}

/// From this many users, a re-evaluation reads the license's overrides once instead of one
/// lookup per user.
const BULK_OVERRIDES: usize = 32;

/// Users re-evaluated per slice when a group is selected ([`Allocator::reevaluate_selected`]).
/// Small in debug builds, so that the test suite (the model-based test included) runs the
/// sliced path on small selections too.
#[cfg(not(debug_assertions))]
const SELECT_SLICE: usize = 16_384;
#[cfg(debug_assertions)]
const SELECT_SLICE: usize = 3;

impl<'a, S: SeatStore> Allocator<'a, S> {
    pub fn new(store: &'a mut S, now: Millis) -> Self {
        Self::with_order(store, now, now * 1000)
    }

    /// An allocator whose newcomers are stamped `order` (microseconds). Successive changes must
    /// pass increasing values, so that the waitlist follows the order changes were applied in
    /// even when several fall in the same millisecond.
    pub fn with_order(store: &'a mut S, now: Millis, order: i64) -> Self {
        Allocator {
            store,
            now,
            order,
            selected: HashMap::new(),
            policies: HashMap::new(),
            overrides: HashMap::new(),
            change: None,
            guard: true,
            pool_use: HashMap::new(),
            defer_fill: false,
            regained: HashSet::new(),
            quiet: false,
            cause_now: None,
            report: Report::default(),
        }
    }

    /// Names the directory change this run follows: a held loss then says what caused it.
    pub fn because(&mut self, change: Change) {
        self.change = Some(change);
    }

    fn policy(&mut self, l: LicenseKey) -> Result<Option<Policy>, S::Error> {
        if let Some(p) = self.policies.get(&l) {
            return Ok(p.clone());
        }
        let p = self.store.policy(l)?;
        self.policies.insert(l, p.clone());
        Ok(p)
    }

    fn override_of(&mut self, l: LicenseKey, user: &str) -> Result<Option<OverrideKind>, S::Error> {
        match self.overrides.get(&l) {
            Some(all) => Ok(all.get(user).copied()),
            None => self.store.override_of(l, user),
        }
    }

    /// Records a seat change of `user`, whose seat was `previous` before this change (`None`:
    /// no seat row, or one written earlier in this same change).
    fn emit(
        &mut self,
        l: LicenseKey,
        user: &str,
        kind: EventKind,
        previous: Option<SeatState>,
    ) -> Result<(), S::Error> {
        if self.quiet {
            return Ok(());
        }
        self.report.count(kind);
        self.report.touched.insert(l);
        if kind == EventKind::Blocked {
            self.report.newly_blocked.push((l, user.to_owned()));
        }
        self.store
            .record(l, user, kind, previous, self.now, self.cause_now)
    }

    /// Every group containing `member`, directly or through nested groups (cycles tolerated).
    pub fn ancestors(&mut self, member: &str) -> Result<HashSet<GroupId>, S::Error> {
        let mut seen = HashSet::new();
        let mut queue: VecDeque<String> = self.store.parent_groups(member)?.into();
        while let Some(g) = queue.pop_front() {
            if seen.insert(g.clone()) {
                queue.extend(self.store.parent_groups(&g)?);
            }
        }
        Ok(seen)
    }

    /// Every user in `group`, directly or through nested groups, each once, by user id.
    /// (Sorted rather than deduplicated through a set: a million members are held once.)
    pub fn member_closure(&mut self, group: &str) -> Result<Vec<UserId>, S::Error> {
        let mut users = Vec::new();
        let mut seen = HashSet::from([group.to_owned()]);
        let mut queue = VecDeque::from([group.to_owned()]);
        while let Some(g) = queue.pop_front() {
            let (us, gs) = self.store.direct_members(&g)?;
            if users.is_empty() {
                // Taken as it is: a million-member group's ids are not copied to a second list.
                users = us;
            } else {
                users.extend(us);
            }
            for sub in gs {
                if seen.insert(sub.clone()) {
                    queue.push_back(sub);
                }
            }
        }
        users.sort_unstable();
        users.dedup();
        Ok(users)
    }

    /// The licenses a change to `member`'s place in the directory can affect: those selecting a
    /// group that contains it, and those where a user has a seat.
    pub fn licenses_for_member(&mut self, member: &str) -> Result<Vec<LicenseKey>, S::Error> {
        let groups: Vec<GroupId> = self.ancestors(member)?.into_iter().collect();
        let mut ls = self.store.licenses_selecting(&groups)?;
        ls.extend(self.store.seat_licenses(member)?);
        ls.sort_unstable();
        ls.dedup();
        Ok(ls)
    }

    /// Licenses selecting any of these groups.
    pub fn licenses_touching(&mut self, groups: &[GroupId]) -> Result<Vec<LicenseKey>, S::Error> {
        self.store.licenses_selecting(groups)
    }

    fn selected(&mut self, l: LicenseKey) -> Result<&HashSet<GroupId>, S::Error> {
        if !self.selected.contains_key(&l) {
            let s = self.store.selected_groups(l)?.into_iter().collect();
            self.selected.insert(l, s);
        }
        Ok(&self.selected[&l])
    }

    /// Is `user` entitled to `l` now?
    pub fn entitled(&mut self, l: LicenseKey, user: &str) -> Result<bool, S::Error> {
        Ok(self.entitlement(l, user)?.is_some())
    }

    /// `None` when `user` is not entitled to `l` now, else `Some` of the pool the user counts
    /// against (`Some(None)` in a license without pools).
    pub fn entitlement(
        &mut self,
        l: LicenseKey,
        user: &str,
    ) -> Result<Option<Option<GroupId>>, S::Error> {
        if self.store.user_active(user)? != Some(true) {
            return Ok(None);
        }
        if matches!(
            self.override_of(l, user)?,
            Some(OverrideKind::Exclude | OverrideKind::Idle)
        ) {
            return Ok(None);
        }
        let ancestors = self.ancestors(user)?;
        let selected = self.selected(l)?;
        if !ancestors.iter().any(|g| selected.contains(g)) {
            return Ok(None);
        }
        let pool = match self.policy(l)? {
            Some(p) if p.pooled() => pools::pool_of(&p, &ancestors),
            _ => None,
        };
        Ok(Some(pool))
    }

    /// Brings (l, user)'s seat in line with the user's entitlement. Newcomers are collected,
    /// not yet stored; [`Self::admit`] then decides who of them gets a free seat.
    /// Returns true when the seat changed.
    fn settle(
        &mut self,
        l: LicenseKey,
        user: &str,
        entitled: Option<Option<GroupId>>,
        cause: Cause,
        newcomer: &mut Option<(bool, Option<GroupId>)>,
    ) -> Result<bool, S::Error> {
        let outer = self.cause_now.replace(cause);
        let r = self.settle_by(l, user, entitled, cause, newcomer);
        self.cause_now = outer;
        r
    }

    fn settle_by(
        &mut self,
        l: LicenseKey,
        user: &str,
        entitled: Option<Option<GroupId>>,
        cause: Cause,
        newcomer: &mut Option<(bool, Option<GroupId>)>,
    ) -> Result<bool, S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(false);
        };
        let seat = self.store.seat(l, user)?;
        let pinned = entitled.is_some() && self.override_of(l, user)? == Some(OverrideKind::Pin);
        match (entitled, seat) {
            (Some(pool), None) => {
                *newcomer = Some((pinned, pool));
                Ok(true)
            }
            (Some(pool), Some(mut seat)) => {
                let mut changed = policy.pooled() && self.repool(l, &mut seat, pool);
                if seat.pinned != pinned {
                    seat.pinned = pinned;
                    changed = true;
                }
                if let Some(h) = seat.held.take() {
                    // Entitled again (the mistake was undone upstream): no longer held.
                    self.store.unhold(l, h.hold)?;
                    self.store.save_seat(l, &seat, Some(seat.state))?;
                    if policy.on_lowered == OnLowered::BlockNewest {
                        self.regained.insert(l);
                    }
                    return Ok(true);
                }
                if seat.state == SeatState::Releasing {
                    // Back inside the grace: the seat is kept, no queuing again.
                    seat.state = SeatState::Granted;
                    seat.release_at = None;
                    seat.since = self.now;
                    self.put(l, &seat, Some(SeatState::Releasing))?;
                    self.emit(l, user, EventKind::Granted, Some(SeatState::Releasing))?;
                    if policy.on_lowered == OnLowered::BlockNewest {
                        self.regained.insert(l);
                    }
                    return Ok(true);
                }
                if changed {
                    self.store.save_seat(l, &seat, Some(seat.state))?;
                }
                Ok(false)
            }
            (None, Some(mut seat)) => {
                let guarded = self.guard && matches!(cause, Cause::Directory | Cause::UserDeleted);
                if let Some(h) = seat.held.take() {
                    if guarded || cause == Cause::Reconcile {
                        // Still held; a held user deleted since is released at once when
                        // the hold is approved (where the license frees on delete).
                        if cause == Cause::UserDeleted && h.loss != Loss::Deleted {
                            seat.held = Some(Held {
                                hold: h.hold,
                                loss: Loss::Deleted,
                            });
                            self.store.save_seat(l, &seat, Some(seat.state))?;
                        }
                        return Ok(false);
                    }
                    // An admin act (or an approval): the loss goes the normal way.
                    self.store.unhold(l, h.hold)?;
                }
                if guarded && seat.state == SeatState::Granted && self.trips(l, &policy)? {
                    let loss = self.loss_of(user, cause)?;
                    let hold = self.store.hold(l, &loss)?;
                    seat.held = Some(Held { hold, loss });
                    seat.pinned = false;
                    self.store.save_seat(l, &seat, Some(SeatState::Granted))?;
                    self.emit(l, user, EventKind::Held, Some(SeatState::Granted))?;
                    return Ok(true);
                }
                let at_once = policy.grace_ms == 0
                    || cause == Cause::Admin
                    || (cause == Cause::UserDeleted && policy.free_on_delete);
                match seat.state {
                    SeatState::Granted if !at_once => {
                        seat.state = SeatState::Releasing;
                        seat.since = self.now;
                        seat.release_at = Some(self.now + policy.grace_ms);
                        seat.pinned = false;
                        self.put(l, &seat, Some(SeatState::Granted))?;
                        self.emit(l, user, EventKind::Releasing, Some(SeatState::Granted))?;
                        Ok(true)
                    }
                    SeatState::Releasing if !at_once => Ok(false),
                    _ => {
                        self.drop_seat(l, &seat)?;
                        self.emit(l, user, EventKind::Released, Some(seat.state))?;
                        Ok(true)
                    }
                }
            }
            (None, None) => Ok(false),
        }
    }

    /// Re-evaluates `users` for license `l`, then fills its free seats. `known_entitled` skips the
    /// membership walk when the caller knows every user is in a selected group (a group was just
    /// selected); activity and exclusion are still checked.
    pub fn reevaluate(
        &mut self,
        l: LicenseKey,
        users: &[UserId],
        cause: Cause,
        known_entitled: bool,
    ) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        // A pooled license needs each user's groups to know the pool.
        let known_entitled = known_entitled && !policy.pooled();
        if users.len() >= BULK_OVERRIDES && !self.overrides.contains_key(&l) {
            let all = self.store.overrides(l)?.into_iter().collect();
            self.overrides.insert(l, all);
        }
        if !users.is_empty() {
            self.store.prefetch(l, users)?;
        }
        let mut newcomers = Vec::new();
        for (i, u) in users.iter().enumerate() {
            let e = if known_entitled {
                let e = self.store.user_active(u)? == Some(true)
                    && !matches!(
                        self.override_of(l, u)?,
                        Some(OverrideKind::Exclude | OverrideKind::Idle)
                    );
                e.then_some(None)
            } else {
                self.entitlement(l, u)?
            };
            let mut newcomer = None;
            let changed = self.settle(l, u, e, cause, &mut newcomer)?;
            if let Some((pinned, pool)) = newcomer {
                newcomers.push((i, pinned, pool));
            }
            if changed && cause == Cause::Reconcile {
                self.report.repaired += 1;
            }
        }
        self.admit(l, users, newcomers)
    }

    /// Ends a run (one change, whatever steps it took): under `block_newest`, a license where
    /// the run gave a held or releasing seat back to its user is brought back under its count,
    /// as the lowering would have done had the seat been granted then. Every run calls this
    /// once, after the whole change.
    pub fn finish(&mut self) -> Result<(), S::Error> {
        let mut regained: Vec<LicenseKey> = self.regained.drain().collect();
        regained.sort_unstable();
        for l in regained {
            if let Some(policy) = self.policy(l)? {
                if policy.on_lowered == OnLowered::BlockNewest {
                    self.enforce_capacity(l, &policy)?;
                }
            }
        }
        Ok(())
    }

    /// As [`Self::reevaluate`], for users who can only lose their entitlement (the members of
    /// unselected groups), without giving the seats freed out: the rest of the same change
    /// (the newly selected groups, [`Self::reevaluate_selected`]) fills them, so that they go to
    /// whoever is first once the whole change is applied — a pinned newcomer before someone
    /// already waiting, as one pass over the change would give them.
    pub fn reevaluate_leaving(
        &mut self,
        l: LicenseKey,
        users: &[UserId],
        cause: Cause,
    ) -> Result<(), S::Error> {
        self.defer_fill = true;
        let r = self.reevaluate(l, users, cause, false);
        self.defer_fill = false;
        r
    }

    /// Re-evaluates the users of newly selected groups (each known to be in a selected group)
    /// in slices of [`SELECT_SLICE`], taken in waitlist order (pinned first, then by user id):
    /// every newcomer carries this run's order stamp, so slice after slice gives what one pass
    /// would. `between` runs after each slice, for the caller to write out what the slice
    /// notified, so that nothing the size of the selection is held twice.
    pub fn reevaluate_selected(
        &mut self,
        l: LicenseKey,
        mut users: Vec<UserId>,
        mut between: impl FnMut(&mut Self) -> Result<(), S::Error>,
    ) -> Result<(), S::Error> {
        if users.len() <= SELECT_SLICE || self.policy(l)?.is_none() {
            self.reevaluate(l, &users, Cause::Directory, true)?;
            return between(self);
        }
        if !self.overrides.contains_key(&l) {
            let all = self.store.overrides(l)?.into_iter().collect();
            self.overrides.insert(l, all);
        }
        let pins = &self.overrides[&l];
        // Unstable (in place, no buffer of half the list): two equal ids are the same user.
        users.sort_unstable_by(|a, b| {
            let pinned = |u: &UserId| pins.get(u) == Some(&OverrideKind::Pin);
            pinned(b).cmp(&pinned(a)).then_with(|| a.cmp(b))
        });
        for slice in users.chunks(SELECT_SLICE) {
            self.reevaluate(l, slice, Cause::Directory, true)?;
            between(self)?;
        }
        Ok(())
    }

    /// The seat of a user who became entitled in this run.
    fn newcomer(&self, user: &str, pinned: bool, pool: &Option<GroupId>, state: SeatState) -> Seat {
        Seat {
            user: user.to_owned(),
            state,
            pinned,
            entitled_at: self.order,
            since: self.now,
            release_at: None,
            held: None,
            pool: pool.clone(),
        }
    }

    /// Stores the users who just became entitled (all stamped with this run's order) and gives
    /// free seats out. When nobody else waits, the newcomers are the whole waitlist: the first
    /// of them in waitlist order (pinned first, then by user id) are stored granted at once,
    /// the rest blocked. Otherwise they join the waitlist and [`Self::fill`] serves it in order.
    /// `newcomers` are indexes into `users` with the pinned flag and the pool of each. In a
    /// pooled license newcomers always join the waitlist first: the pools decide.
    fn admit(
        &mut self,
        l: LicenseKey,
        users: &[UserId],
        newcomers: Vec<(usize, bool, Option<GroupId>)>,
    ) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        self.release_due(l)?;
        if self.defer_fill && newcomers.is_empty() {
            return Ok(());
        }
        let counts = self.store.counts(l)?;
        if counts.blocked > 0 || policy.pooled() {
            for (i, pinned, pool) in &newcomers {
                let seat = self.newcomer(&users[*i], *pinned, pool, SeatState::Blocked);
                self.put(l, &seat, None)?;
            }
            let names: Vec<&str> = newcomers
                .iter()
                .map(|(i, _, _)| users[*i].as_str())
                .collect();
            return self.fill(l, &names, false);
        }
        let free = (policy.capacity - counts.in_use()).max(0) as usize;
        let mut order: Vec<usize> = (0..newcomers.len()).collect();
        order.sort_by(|&a, &b| {
            let ((ia, pa, _), (ib, pb, _)) = (&newcomers[a], &newcomers[b]);
            pb.cmp(pa).then_with(|| users[*ia].cmp(&users[*ib]))
        });
        let mut granted = vec![false; newcomers.len()];
        for &k in order.iter().take(free) {
            granted[k] = true;
            let (i, pinned, pool) = &newcomers[k];
            let seat = self.newcomer(&users[*i], *pinned, pool, SeatState::Granted);
            self.put(l, &seat, None)?;
            self.emit(l, &users[*i], EventKind::Granted, None)?;
        }
        for ((i, pinned, pool), _) in newcomers.iter().zip(&granted).filter(|(_, g)| !**g) {
            let seat = self.newcomer(&users[*i], *pinned, pool, SeatState::Blocked);
            self.put(l, &seat, None)?;
        }
        for ((i, _, _), _) in newcomers.iter().zip(&granted).filter(|(_, g)| !**g) {
            self.emit(l, &users[*i], EventKind::Blocked, None)?;
        }
        Ok(())
    }

    /// Frees the releasing seats of `l` whose grace ran out.
    fn release_due(&mut self, l: LicenseKey) -> Result<(), S::Error> {
        for seat in self.store.releasing_due(l, self.now)? {
            self.drop_seat(l, &seat)?;
            self.emit(l, &seat.user, EventKind::Released, Some(seat.state))?;
        }
        Ok(())
    }

    /// Re-evaluates one member (a user, or every user of a group) in every license it can affect.
    pub fn member_changed(
        &mut self,
        member: &str,
        extra_licenses: &[LicenseKey],
        cause: Cause,
    ) -> Result<(), S::Error> {
        let mut users = vec![member.to_owned()];
        if self.store.user_active(member)?.is_none() {
            // Not a user: a group (or nothing yet); its users are affected.
            users = self.member_closure(member)?;
        }
        let mut licenses = self.licenses_for_member(member)?;
        licenses.extend_from_slice(extra_licenses);
        licenses.sort_unstable();
        licenses.dedup();
        for l in licenses {
            self.reevaluate(l, &users, cause, false)?;
        }
        Ok(())
    }

    /// Frees releasing seats whose grace ran out, then gives free seats to the waitlist.
    /// `newcomers` just became entitled in this change: only they are served when
    /// `auto_promote` is off, unless `force` (an admin raised the capacity).
    pub fn fill(&mut self, l: LicenseKey, newcomers: &[&str], force: bool) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        self.release_due(l)?;
        let counts = self.store.counts(l)?;
        let free = policy.capacity - counts.in_use();
        let fresh: HashSet<&str> = newcomers.iter().copied().collect();
        let mut granted: HashSet<String> = HashSet::new();
        if free > 0 && policy.pooled() {
            self.fill_pooled(l, &policy, &fresh, force, &mut granted)?;
        } else if free > 0 {
            for mut seat in self.store.blocked_head(l, free as usize)? {
                let is_new = fresh.contains(seat.user.as_str());
                if !policy.auto_promote && !force && !is_new {
                    break;
                }
                seat.state = SeatState::Granted;
                seat.since = self.now;
                self.put(l, &seat, Some(SeatState::Blocked))?;
                self.emit(
                    l,
                    &seat.user,
                    if is_new {
                        EventKind::Granted
                    } else {
                        EventKind::Promoted
                    },
                    (!is_new).then_some(SeatState::Blocked),
                )?;
                granted.insert(seat.user);
            }
        }
        for u in newcomers {
            if !granted.contains(*u) {
                self.emit(l, u, EventKind::Blocked, None)?;
            }
        }
        Ok(())
    }

    /// After the capacity of `l` changed from `old` (the new one is already stored).
    pub fn capacity_changed(&mut self, l: LicenseKey, old: i64) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        if policy.capacity > old {
            return self.fill(l, &[], true);
        }
        if policy.on_lowered == OnLowered::BlockNewest {
            self.enforce_capacity(l, &policy)?;
        }
        Ok(())
    }

    /// After the license's policy for a lowered count became `block_newest`: a license over its
    /// count (lowered earlier under `keep`) gives back its newest seats now, in the change that
    /// switched the policy, not at the next reconcile.
    pub fn on_lowered_changed(&mut self, l: LicenseKey) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        if policy.on_lowered == OnLowered::BlockNewest {
            self.enforce_capacity(l, &policy)?;
        }
        Ok(())
    }

    /// `block_newest`: pools above their ceiling give back their most recently granted seats,
    /// then the most recently granted go back to the waitlist until use fits; seats the
    /// ceilings freed go to the waitlist.
    fn enforce_capacity(&mut self, l: LicenseKey, policy: &Policy) -> Result<(), S::Error> {
        let ceilings = policy.pooled() && self.enforce_ceilings(l, policy)?;
        let counts = self.store.counts(l)?;
        let over = counts.in_use() - policy.capacity;
        let newest = if over > 0 {
            self.store.newest_granted(l, over as usize)?
        } else {
            Vec::new()
        };
        let outer = self.cause_now.replace(Cause::License);
        for mut seat in newest {
            seat.state = SeatState::Blocked;
            seat.since = self.now;
            self.put(l, &seat, Some(SeatState::Granted))?;
            self.emit(l, &seat.user, EventKind::Blocked, Some(SeatState::Granted))?;
        }
        self.cause_now = outer;
        if ceilings {
            self.fill(l, &[], false)?;
        }
        Ok(())
    }

    /// An admin unblocks a waiting user by hand, out of order, when a seat is free.
    pub fn manual_grant(
        &mut self,
        l: LicenseKey,
        user: &str,
    ) -> Result<Result<(), Refusal>, S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(Err(Refusal::NotBlocked("none")));
        };
        let Some(mut seat) = self.store.seat(l, user)? else {
            return Ok(Err(Refusal::NotBlocked("none")));
        };
        if seat.state != SeatState::Blocked {
            return Ok(Err(Refusal::NotBlocked(seat.state.as_str())));
        }
        let counts = self.store.counts(l)?;
        if counts.in_use() >= policy.capacity {
            return Ok(Err(Refusal::NoFreeSeat {
                in_use: counts.in_use(),
                capacity: policy.capacity,
            }));
        }
        if policy.pooled() && self.room_of(l, &policy, seat.pool.as_deref())? < 1 {
            return Ok(Err(Refusal::NoRoomInGroup(
                seat.pool.clone().unwrap_or_default(),
            )));
        }
        seat.state = SeatState::Granted;
        seat.since = self.now;
        self.put(l, &seat, Some(SeatState::Blocked))?;
        self.emit(l, user, EventKind::Promoted, Some(SeatState::Blocked))?;
        Ok(Ok(()))
    }

    /// Recomputes the whole license from the directory and repairs any drift: entitled users
    /// without a seat row are queued, seat rows of users no longer entitled are released (after
    /// the grace), due releases are freed, free seats are filled, and under `block_newest` use is
    /// brought back under capacity.
    pub fn reconcile(&mut self, l: LicenseKey) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        let mut users: Vec<UserId> = Vec::new();
        let mut seen = HashSet::new();
        for g in self.store.selected_groups(l)? {
            for u in self.member_closure(&g)? {
                if seen.insert(u.clone()) {
                    users.push(u);
                }
            }
        }
        for s in self.store.all_seats(l)? {
            if seen.insert(s.user.clone()) {
                users.push(s.user);
            }
        }
        users.sort();
        self.reevaluate(l, &users, Cause::Reconcile, false)?;
        if policy.on_lowered == OnLowered::BlockNewest {
            self.enforce_capacity(l, &policy)?;
        }
        Ok(())
    }
}
