//! The cut-over from shadow mode: a license that observed (its allocation computed but not
//! enforced) switches to enforce, and the people who held a seat before (carried over by the
//! admin, in an order the admin gave) keep it.
//!
//! While a license observes, its seats follow the ordinary rules in the order the directory
//! happened to send people. Enforcing gives the seats out again, once, in this order:
//!
//! 1. **Carried-over users who are entitled**, in the order given: granted while a seat is
//!    free (and their group has room, in a license with reservations or ceilings); the rest
//!    wait at the head of the waitlist, in that order.
//! 2. **Carried-over users who are not entitled** (they held a seat in the product, the
//!    directory does not entitle them): they lose the seat the ordinary way, through the
//!    license's grace — `releasing` until the grace ends while a seat is free, released at once
//!    when the grace is 0, the user was deleted or excluded, or no seat is left.
//! 3. **Everyone else entitled**, in the ordinary waitlist order (pinned first, then when they
//!    became entitled): granted while seats are free, the rest wait.
//!
//! Seats the circuit breaker holds stay as they are. Nobody else's seat from the observed
//! allocation survives the switch unless the order above gives it again (a releasing seat of
//! someone not carried over is released: the product never granted it). The run records one
//! event per user whose seat differs before and after (not the steps in between), and every
//! user left waiting is reported newly blocked, since nobody was told while the license
//! observed. After the switch the carried-over marks have done their work: the ordinary rules
//! apply.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{Allocator, EventKind, LicenseKey, OverrideKind, Seat, SeatState, SeatStore, UserId};

impl<S: SeatStore> Allocator<'_, S> {
    /// Enforces license `l`, which observed until now, serving `carried` (user ids in the order
    /// given; repeats ignored) first (see the module doc).
    pub fn carry_over(&mut self, l: LicenseKey, carried: &[UserId]) -> Result<(), S::Error> {
        let Some(policy) = self.policy(l)? else {
            return Ok(());
        };
        let before: HashMap<UserId, Seat> = self
            .store
            .all_seats(l)?
            .into_iter()
            .map(|s| (s.user.clone(), s))
            .collect();
        let mut seen = HashSet::new();
        let carried: Vec<&UserId> = carried.iter().filter(|u| seen.insert(*u)).collect();
        // Who of them is entitled, and to which group's share.
        let mut entitled = Vec::new();
        let mut unentitled = Vec::new();
        for u in &carried {
            match before.get(*u) {
                Some(s) if s.held.is_some() => {}
                Some(s) if s.state != SeatState::Releasing => entitled.push((*u, s.pool.clone())),
                _ => match self.entitlement(l, u)? {
                    Some(pool) => entitled.push((*u, pool)),
                    None => unentitled.push(*u),
                },
            }
        }
        self.quiet = true;
        let mut users: Vec<&Seat> = before.values().collect();
        users.sort_by(|a, b| a.user.cmp(&b.user));
        for s in users {
            if s.held.is_some() {
                continue;
            }
            match s.state {
                // Every seat goes back to the waitlist, to be given again in the new order.
                SeatState::Granted => {
                    let mut s = s.clone();
                    s.state = SeatState::Blocked;
                    self.put(l, &s, Some(SeatState::Granted))?;
                }
                SeatState::Releasing if !seen.contains(&s.user) => self.drop_seat(l, s)?,
                _ => {}
            }
        }
        // 1. The carried-over users who are entitled, ahead of everyone, in the order given.
        let first = before
            .values()
            .map(|s| s.entitled_at)
            .min()
            .unwrap_or(self.order)
            .min(self.order);
        let n = entitled.len() as i64;
        for (i, (u, pool)) in entitled.into_iter().enumerate() {
            let previous = self.store.seat(l, u)?;
            let pinned = self.override_of(l, u)? == Some(OverrideKind::Pin);
            let mut seat = previous
                .clone()
                .unwrap_or_else(|| self.newcomer(u, pinned, &pool, SeatState::Blocked));
            seat.entitled_at = first - (n - i as i64);
            seat.release_at = None;
            seat.state = if self.free_for(l, &policy, pool.as_deref())? {
                SeatState::Granted
            } else {
                SeatState::Blocked
            };
            self.put(l, &seat, previous.map(|p| p.state))?;
        }
        // 2. The carried-over users who are not entitled: through the grace, while seats last.
        for u in unentitled {
            let previous = self.store.seat(l, u)?;
            let keeps = policy.grace_ms > 0
                && self.store.user_active(u)?.is_some()
                && self.override_of(l, u)? != Some(OverrideKind::Exclude)
                && self.free_for(l, &policy, None)?;
            match (keeps, previous) {
                (true, previous) => {
                    let mut seat = previous
                        .clone()
                        .unwrap_or_else(|| self.newcomer(u, false, &None, SeatState::Releasing));
                    seat.state = SeatState::Releasing;
                    seat.pinned = false;
                    seat.release_at = Some(self.now + policy.grace_ms);
                    self.put(l, &seat, previous.map(|p| p.state))?;
                }
                (false, Some(seat)) => self.drop_seat(l, &seat)?,
                (false, None) => {}
            }
        }
        // 3. Everyone else, in the waitlist's order.
        self.fill(l, &[], true)?;
        self.quiet = false;
        let outer = self.cause_now.replace(super::Cause::License);
        let r = self.net_events(l, &before);
        self.cause_now = outer;
        r
    }

    /// Whether a seat is free now for a member of pool `pool` (any pool in a license without
    /// limits).
    fn free_for(
        &mut self,
        l: LicenseKey,
        policy: &super::Policy,
        pool: Option<&str>,
    ) -> Result<bool, S::Error> {
        if policy.pooled() {
            return Ok(self.room_of(l, policy, pool)? > 0);
        }
        Ok(self.store.counts(l)?.in_use() < policy.capacity)
    }

    /// After a quiet rearrangement of `l`'s seats: one event per user whose seat differs from
    /// `before`, and everyone waiting now reported newly blocked.
    fn net_events(
        &mut self,
        l: LicenseKey,
        before: &HashMap<UserId, Seat>,
    ) -> Result<(), S::Error> {
        let after: HashMap<UserId, Seat> = self
            .store
            .all_seats(l)?
            .into_iter()
            .map(|s| (s.user.clone(), s))
            .collect();
        let users: BTreeSet<&UserId> = before.keys().chain(after.keys()).collect();
        for u in users {
            let was = before.get(u).map(|s| s.state);
            let now = after.get(u).map(|s| s.state);
            // A seat in the state it had keeps the time it entered it; a seat that moved
            // entered its state now.
            if let (Some(b), Some(a)) = (before.get(u), after.get(u)) {
                let since = if b.state == a.state {
                    b.since
                } else {
                    self.now
                };
                if a.since != since {
                    let seat = Seat { since, ..a.clone() };
                    self.store.save_seat(l, &seat, Some(a.state))?;
                }
            } else if let Some(a) = after.get(u).filter(|a| a.since != self.now) {
                let seat = Seat {
                    since: self.now,
                    ..a.clone()
                };
                self.store.save_seat(l, &seat, Some(a.state))?;
            }
            use SeatState::*;
            let kind = match (was, now) {
                (Some(Blocked), Some(Granted)) => Some(EventKind::Promoted),
                (w, Some(Granted)) if w != Some(Granted) => Some(EventKind::Granted),
                (w, Some(Blocked)) if w != Some(Blocked) => Some(EventKind::Blocked),
                (w, Some(Releasing)) if w != Some(Releasing) => Some(EventKind::Releasing),
                (Some(_), None) => Some(EventKind::Released),
                _ => None,
            };
            match kind {
                Some(k) => self.emit(l, u, k, was)?,
                None if now == Some(Blocked) => {
                    // Waiting before and after: told now, as nobody was while observing.
                    self.report.newly_blocked.push((l, u.clone()));
                    self.report.touched.insert(l);
                }
                None => {}
            }
        }
        Ok(())
    }
}
