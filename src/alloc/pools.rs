//! Reservations and ceilings per selected group: a license's seats shared out among the groups
//! it selects.
//!
//! A selector of a license may carry a `reserve` (seats kept for that group's members: others
//! cannot take them, even while they wait) and a `max` (that group's members hold at most this
//! many of the license's seats). When any selector of a license carries one, the license is
//! **pooled**: every seat counts against one selected group, its **pool**, and the rules below
//! decide every grant. A license without limits is not pooled and works exactly as before (no
//! pool is computed or stored).
//!
//! - **Which group a member counts against**: the first selector, in the order of the license's
//!   `groups`, whose group contains the user (directly or through nested groups). The order is
//!   the admin's: put the group whose reserve should serve people in several groups first. A
//!   releasing seat keeps the pool it had while its user was entitled.
//! - **In use** of a pool: its granted and releasing seats (held seats are granted).
//! - **Unmet reserve** of a pool: `max(0, reserve − in use)`; a selector whose group has not
//!   arrived yet keeps its whole reserve (the reservation is for the group's members when the
//!   provider sends them, in whatever order it syncs groups).
//! - **Room** of pool q: `min(capacity − in use − Σ unmet reserves of the other pools,
//!   max_q − in use of q)`. A member of q is granted a seat only while q's room is at least 1.
//!   Since the sum of reserves never exceeds the seat count (400 otherwise), every pool can
//!   always reach its reserve once seats free up.
//! - **Fair order within each group**: filling walks the waitlist in its order and skips the
//!   waiting users whose pool has no room; no grant ever gives a pool more room, so one walk
//!   serves everyone it can. It is done as a merge of the pools' own waitlist heads.
//! - **Changing the limits** never takes a seat, except that under `block_newest` a pool above
//!   its new `max` gives back its most recently granted seats (as a lowered capacity does);
//!   seats it frees go to the waitlist. A raised reserve is met as seats free up.
//! - A pinned user goes first in the waitlist, but inside its pool's limits; an admin's manual
//!   grant also respects them.

use std::collections::HashMap;

use super::{Allocator, EventKind, GroupId, LicenseKey, Policy, Seat, SeatState, SeatStore};

/// A selected group's share of a license, in the order of the license's selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRule {
    /// The selected group; `None` while the selector names no group yet.
    pub group: Option<GroupId>,
    /// Seats kept for this group's members.
    pub reserve: i64,
    /// At most this many seats for this group's members.
    pub max: Option<i64>,
}

/// Seats in use per pool.
pub type PoolUse = HashMap<GroupId, i64>;

/// How many more members of pool `q` may be granted now in a license of `capacity` seats with
/// these rules (see the module doc).
pub fn room(
    capacity: i64,
    rules: &[PoolRule],
    in_use: i64,
    used: &PoolUse,
    q: Option<&str>,
) -> i64 {
    let used_of = |g: &Option<GroupId>| g.as_ref().and_then(|g| used.get(g)).copied().unwrap_or(0);
    let mut unmet_others = 0;
    let mut ceiling = i64::MAX;
    for r in rules {
        let mine = q.is_some() && r.group.as_deref() == q;
        if mine {
            if let Some(m) = r.max {
                ceiling = ceiling.min(m - used_of(&r.group));
            }
        } else {
            unmet_others += (r.reserve - used_of(&r.group)).max(0);
        }
    }
    (capacity - in_use - unmet_others).min(ceiling)
}

/// The pool a user counts against: the first rule whose group is among the user's groups.
pub fn pool_of(policy: &Policy, groups: &std::collections::HashSet<GroupId>) -> Option<GroupId> {
    policy
        .pools
        .iter()
        .filter_map(|r| r.group.as_ref())
        .find(|g| groups.contains(*g))
        .cloned()
}

/// The waitlist order of a seat: pinned first, then the time of entitlement, then user id.
fn wait_key(s: &Seat) -> (bool, i64, &str) {
    (!s.pinned, s.entitled_at, s.user.as_str())
}

/// Whether a state occupies a seat.
fn occupies(s: Option<SeatState>) -> bool {
    matches!(s, Some(SeatState::Granted | SeatState::Releasing))
}

impl<S: SeatStore> Allocator<'_, S> {
    /// The seats in use per pool of a pooled license, read once per run and kept up to date by
    /// [`Self::put`] and [`Self::drop_seat`].
    pub(super) fn pool_use(&mut self, l: LicenseKey) -> Result<&mut PoolUse, S::Error> {
        Ok(match self.pool_use.entry(l) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.store.pool_use(l)?.into_iter().collect())
            }
        })
    }

    /// Counts a seat's move in its pool's use (when this run tracks the license's pools).
    fn track(&mut self, l: LicenseKey, pool: Option<&GroupId>, by: i64) {
        if let (Some(used), Some(g)) = (self.pool_use.get_mut(&l), pool) {
            *used.entry(g.clone()).or_insert(0) += by;
        }
    }

    /// Writes a seat whose stored state was `previous`, keeping the pools' use.
    pub(super) fn put(
        &mut self,
        l: LicenseKey,
        seat: &Seat,
        previous: Option<SeatState>,
    ) -> Result<(), S::Error> {
        let by = i64::from(occupies(Some(seat.state))) - i64::from(occupies(previous));
        self.track(l, seat.pool.as_ref(), by);
        self.store.save_seat(l, seat, previous)
    }

    /// Deletes a seat, keeping the pools' use.
    pub(super) fn drop_seat(&mut self, l: LicenseKey, seat: &Seat) -> Result<(), S::Error> {
        if occupies(Some(seat.state)) {
            self.track(l, seat.pool.as_ref(), -1);
        }
        self.store.remove_seat(l, &seat.user, seat.state)
    }

    /// Moves an entitled user's seat to the pool it counts against now (not yet saved).
    pub(super) fn repool(&mut self, l: LicenseKey, seat: &mut Seat, pool: Option<GroupId>) -> bool {
        if seat.pool == pool {
            return false;
        }
        if occupies(Some(seat.state)) {
            self.track(l, seat.pool.as_ref(), -1);
            self.track(l, pool.as_ref(), 1);
        }
        seat.pool = pool;
        true
    }

    /// The room of pool `q` in license `l` now.
    pub(super) fn room_of(
        &mut self,
        l: LicenseKey,
        policy: &Policy,
        q: Option<&str>,
    ) -> Result<i64, S::Error> {
        let in_use = self.store.counts(l)?.in_use();
        let used = self.pool_use(l)?;
        Ok(room(policy.capacity, &policy.pools, in_use, used, q))
    }

    /// [`Self::fill`] for a pooled license: the waitlist in order, each waiting user served
    /// when its pool has room (a merge of the pools' waitlist heads).
    pub(super) fn fill_pooled(
        &mut self,
        l: LicenseKey,
        policy: &Policy,
        fresh: &std::collections::HashSet<&str>,
        force: bool,
        granted: &mut std::collections::HashSet<String>,
    ) -> Result<(), S::Error> {
        let groups: Vec<GroupId> = policy
            .pools
            .iter()
            .filter_map(|r| r.group.clone())
            .collect();
        // Each pool's next waiting users, as many as it could take now: no grant gives a pool
        // more room, so these are all it can be served in this fill.
        let mut heads: Vec<(GroupId, std::collections::VecDeque<Seat>)> = Vec::new();
        for g in groups {
            let room = self.room_of(l, policy, Some(&g))?;
            if room > 0 {
                let seats = self.store.blocked_head_in(l, &g, room as usize)?;
                if !seats.is_empty() {
                    heads.push((g, seats.into()));
                }
            }
        }
        loop {
            // A pool without room now never gets it back in this fill.
            let mut best: Option<usize> = None;
            for i in 0..heads.len() {
                let g = heads[i].0.clone();
                if heads[i].1.is_empty() {
                    continue;
                }
                if self.room_of(l, policy, Some(&g))? < 1 {
                    heads[i].1.clear();
                    continue;
                }
                let Some(s) = heads[i].1.front() else {
                    continue;
                };
                if best.is_none_or(|b| {
                    heads[b]
                        .1
                        .front()
                        .is_none_or(|bs| wait_key(s) < wait_key(bs))
                }) {
                    best = Some(i);
                }
            }
            let Some(mut seat) = best.and_then(|b| heads[b].1.pop_front()) else {
                return Ok(());
            };
            let is_new = fresh.contains(seat.user.as_str());
            if !policy.auto_promote && !force && !is_new {
                return Ok(());
            }
            seat.state = SeatState::Granted;
            seat.since = self.now;
            self.put(l, &seat, Some(SeatState::Blocked))?;
            let kind = if is_new {
                EventKind::Granted
            } else {
                EventKind::Promoted
            };
            self.emit(l, &seat.user, kind, (!is_new).then_some(SeatState::Blocked))?;
            granted.insert(seat.user);
        }
    }

    /// `block_newest` for the ceilings: each pool above its `max` gives back its most recently
    /// granted seats. Returns whether any seat moved.
    pub(super) fn enforce_ceilings(
        &mut self,
        l: LicenseKey,
        policy: &Policy,
    ) -> Result<bool, S::Error> {
        let mut moved = false;
        for r in &policy.pools {
            let (Some(g), Some(max)) = (&r.group, r.max) else {
                continue;
            };
            let over = self.pool_use(l)?.get(g).copied().unwrap_or(0) - max;
            if over <= 0 {
                continue;
            }
            for mut seat in self.store.newest_granted_in(l, g, over as usize)? {
                seat.state = SeatState::Blocked;
                seat.since = self.now;
                self.put(l, &seat, Some(SeatState::Granted))?;
                self.emit(l, &seat.user, EventKind::Blocked, Some(SeatState::Granted))?;
                moved = true;
            }
        }
        Ok(moved)
    }

    /// After the admin changed a license's reservations, ceilings or the order of its groups
    /// (the new ones are stored): every entitled user's seat moves to the pool it counts
    /// against now (a releasing seat keeps its pool; without limits no seat has one). Nothing
    /// else changes; [`Self::limits_changed`] then serves and enforces.
    pub fn repool_all(&mut self, l: LicenseKey) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        self.pool_use.remove(&l);
        if !policy.pooled() {
            // No limits any more: no seat counts against a group.
            for mut seat in self.store.all_seats(l)? {
                if seat.pool.take().is_some() {
                    self.store.save_seat(l, &seat, Some(seat.state))?;
                }
            }
            return Ok(());
        }
        for mut seat in self.store.all_seats(l)? {
            if let Some(pool) = self.entitlement(l, &seat.user)? {
                let previous = seat.state;
                if self.repool(l, &mut seat, pool) {
                    self.store.save_seat(l, &seat, Some(previous))?;
                }
            }
        }
        Ok(())
    }

    /// After a change of limits: the waitlist is served where pools gained room, and under
    /// `block_newest` pools above their ceiling give seats back.
    pub fn limits_changed(&mut self, l: LicenseKey) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        self.fill(l, &[], false)?;
        if policy.on_lowered == super::OnLowered::BlockNewest {
            self.enforce_capacity(l, &policy)?;
        }
        Ok(())
    }
}
