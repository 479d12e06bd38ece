//! An in-memory [`SeatStore`]: one tenant's directory (users, groups and their members),
//! licenses and seats in plain maps. It runs the allocator without a database: the unit tests
//! below, and the model-based test (`tests/alloc_model.rs`) at many more cases per second than
//! the store-backed run, which stays as the integration check.
//!
//! It answers as the SQL store does (the same orders, the same waitlist, held seats kept out of
//! `block_newest`), with one difference that is the caller's to mind: an open hold without held
//! seats dissolves in [`MemoryStore::flush`], which a caller runs after each allocator run, as
//! the SQL store dissolves it when its transaction's run flushes.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Counts, EventKind, GroupId, HoldId, LicenseKey, Loss, LossWindow, Millis, OverrideKind, Policy,
    Seat, SeatState, SeatStore, UserId,
};

/// A license as the memory store keeps it.
#[derive(Debug, Clone)]
pub struct MemoryLicense {
    pub policy: Policy,
    /// The groups it selects.
    pub selected: BTreeSet<GroupId>,
    pub overrides: BTreeMap<UserId, OverrideKind>,
    pub seats: BTreeMap<UserId, Seat>,
    pub window: LossWindow,
}

impl MemoryLicense {
    pub fn new(policy: Policy) -> MemoryLicense {
        MemoryLicense {
            policy,
            selected: BTreeSet::new(),
            overrides: BTreeMap::new(),
            seats: BTreeMap::new(),
            window: LossWindow::default(),
        }
    }
}

/// A hold's state in the memory store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Open,
    Approved,
    Rejected,
    Dissolved,
}

#[derive(Debug, Clone)]
pub struct MemoryHold {
    pub license: LicenseKey,
    pub state: HoldState,
    pub held: i64,
}

/// One tenant in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// Users and whether each is active.
    pub users: BTreeMap<UserId, bool>,
    /// Groups and their direct members (user or group ids; an id that is neither is pending).
    pub groups: BTreeMap<GroupId, BTreeSet<String>>,
    pub licenses: BTreeMap<LicenseKey, MemoryLicense>,
    /// Holds by id (ids count up from 1).
    pub holds: BTreeMap<HoldId, MemoryHold>,
    /// Every seat event, in order.
    pub events: Vec<(LicenseKey, UserId, EventKind)>,
}

impl MemoryStore {
    /// The end of an allocator run: open holds left without held seats dissolve.
    pub fn flush(&mut self) {
        for h in self.holds.values_mut() {
            if h.state == HoldState::Open && h.held == 0 {
                h.state = HoldState::Dissolved;
            }
        }
    }

    fn license(&mut self, l: LicenseKey) -> Option<&mut MemoryLicense> {
        self.licenses.get_mut(&l)
    }

    fn seats_of(&self, l: LicenseKey) -> impl Iterator<Item = &Seat> {
        self.licenses
            .get(&l)
            .into_iter()
            .flat_map(|x| x.seats.values())
    }
}

impl SeatStore for MemoryStore {
    type Error = std::convert::Infallible;

    fn user_active(&mut self, user: &str) -> Result<Option<bool>, Self::Error> {
        Ok(self.users.get(user).copied())
    }

    fn parent_groups(&mut self, member: &str) -> Result<Vec<GroupId>, Self::Error> {
        Ok(self
            .groups
            .iter()
            .filter(|(_, m)| m.contains(member))
            .map(|(g, _)| g.clone())
            .collect())
    }

    fn direct_members(&mut self, group: &str) -> Result<(Vec<UserId>, Vec<GroupId>), Self::Error> {
        let Some(m) = self.groups.get(group) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let users = m
            .iter()
            .filter(|x| self.users.contains_key(*x))
            .cloned()
            .collect();
        let groups = m
            .iter()
            .filter(|x| self.groups.contains_key(*x))
            .cloned()
            .collect();
        Ok((users, groups))
    }

    fn licenses_selecting(&mut self, groups: &[GroupId]) -> Result<Vec<LicenseKey>, Self::Error> {
        Ok(self
            .licenses
            .iter()
            .filter(|(_, x)| groups.iter().any(|g| x.selected.contains(g)))
            .map(|(l, _)| *l)
            .collect())
    }

    fn seat_licenses(&mut self, user: &str) -> Result<Vec<LicenseKey>, Self::Error> {
        Ok(self
            .licenses
            .iter()
            .filter(|(_, x)| x.seats.contains_key(user))
            .map(|(l, _)| *l)
            .collect())
    }

    fn policy(&mut self, l: LicenseKey) -> Result<Option<Policy>, Self::Error> {
        Ok(self.licenses.get(&l).map(|x| x.policy.clone()))
    }

    fn selected_groups(&mut self, l: LicenseKey) -> Result<Vec<GroupId>, Self::Error> {
        Ok(self
            .licenses
            .get(&l)
            .map(|x| {
                x.selected
                    .iter()
                    .filter(|g| self.groups.contains_key(*g))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn override_of(
        &mut self,
        l: LicenseKey,
        user: &str,
    ) -> Result<Option<OverrideKind>, Self::Error> {
        Ok(self
            .licenses
            .get(&l)
            .and_then(|x| x.overrides.get(user).copied()))
    }

    fn overrides(&mut self, l: LicenseKey) -> Result<Vec<(UserId, OverrideKind)>, Self::Error> {
        Ok(self
            .licenses
            .get(&l)
            .map(|x| x.overrides.iter().map(|(u, k)| (u.clone(), *k)).collect())
            .unwrap_or_default())
    }

    fn seat(&mut self, l: LicenseKey, user: &str) -> Result<Option<Seat>, Self::Error> {
        Ok(self
            .licenses
            .get(&l)
            .and_then(|x| x.seats.get(user).cloned()))
    }

    fn all_seats(&mut self, l: LicenseKey) -> Result<Vec<Seat>, Self::Error> {
        Ok(self.seats_of(l).cloned().collect())
    }

    fn counts(&mut self, l: LicenseKey) -> Result<Counts, Self::Error> {
        let mut c = Counts::default();
        for s in self.seats_of(l) {
            match s.state {
                SeatState::Granted => c.granted += 1,
                SeatState::Releasing => c.releasing += 1,
                SeatState::Blocked => c.blocked += 1,
            }
        }
        Ok(c)
    }

    fn blocked_head(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>, Self::Error> {
        let mut v: Vec<Seat> = self
            .seats_of(l)
            .filter(|s| s.state == SeatState::Blocked)
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            b.pinned
                .cmp(&a.pinned)
                .then(a.entitled_at.cmp(&b.entitled_at))
                .then(a.user.cmp(&b.user))
        });
        v.truncate(n);
        Ok(v)
    }

    fn newest_granted(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>, Self::Error> {
        let mut v: Vec<Seat> = self
            .seats_of(l)
            .filter(|s| s.state == SeatState::Granted && s.held.is_none())
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a.pinned
                .cmp(&b.pinned)
                .then(b.since.cmp(&a.since))
                .then(b.entitled_at.cmp(&a.entitled_at))
                .then(b.user.cmp(&a.user))
        });
        v.truncate(n);
        Ok(v)
    }

    fn blocked_head_in(
        &mut self,
        l: LicenseKey,
        pool: &str,
        n: usize,
    ) -> Result<Vec<Seat>, Self::Error> {
        let mut v = self.blocked_head(l, usize::MAX)?;
        v.retain(|s| s.pool.as_deref() == Some(pool));
        v.truncate(n);
        Ok(v)
    }

    fn newest_granted_in(
        &mut self,
        l: LicenseKey,
        pool: &str,
        n: usize,
    ) -> Result<Vec<Seat>, Self::Error> {
        let mut v = self.newest_granted(l, usize::MAX)?;
        v.retain(|s| s.pool.as_deref() == Some(pool));
        v.truncate(n);
        Ok(v)
    }

    fn pool_use(&mut self, l: LicenseKey) -> Result<Vec<(GroupId, i64)>, Self::Error> {
        let mut used: BTreeMap<GroupId, i64> = BTreeMap::new();
        for s in self.seats_of(l).filter(|s| s.state != SeatState::Blocked) {
            if let Some(g) = &s.pool {
                *used.entry(g.clone()).or_insert(0) += 1;
            }
        }
        Ok(used.into_iter().collect())
    }

    fn releasing_due(&mut self, l: LicenseKey, now: Millis) -> Result<Vec<Seat>, Self::Error> {
        let mut v: Vec<Seat> = self
            .seats_of(l)
            .filter(|s| s.release_at.is_some_and(|r| r <= now))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.release_at.cmp(&b.release_at).then(a.user.cmp(&b.user)));
        Ok(v)
    }

    fn save_seat(
        &mut self,
        l: LicenseKey,
        seat: &Seat,
        _: Option<SeatState>,
    ) -> Result<(), Self::Error> {
        if let Some(x) = self.license(l) {
            x.seats.insert(seat.user.clone(), seat.clone());
        }
        Ok(())
    }

    fn remove_seat(&mut self, l: LicenseKey, user: &str, _: SeatState) -> Result<(), Self::Error> {
        if let Some(x) = self.license(l) {
            x.seats.remove(user);
        }
        Ok(())
    }

    fn loss_window(&mut self, l: LicenseKey) -> Result<LossWindow, Self::Error> {
        Ok(self.licenses.get(&l).map(|x| x.window).unwrap_or_default())
    }

    fn set_loss_window(&mut self, l: LicenseKey, w: LossWindow) -> Result<(), Self::Error> {
        if let Some(x) = self.license(l) {
            x.window = w;
        }
        Ok(())
    }

    fn hold(&mut self, l: LicenseKey, _: &Loss) -> Result<HoldId, Self::Error> {
        let open = self
            .holds
            .iter()
            .find(|(_, h)| h.license == l && h.state == HoldState::Open)
            .map(|(id, _)| *id);
        let id = open.unwrap_or_else(|| self.holds.keys().next_back().map_or(1, |k| k + 1));
        let h = self.holds.entry(id).or_insert(MemoryHold {
            license: l,
            state: HoldState::Open,
            held: 0,
        });
        h.held += 1;
        Ok(id)
    }

    fn unhold(&mut self, _: LicenseKey, hold: HoldId) -> Result<(), Self::Error> {
        if let Some(h) = self.holds.get_mut(&hold) {
            h.held -= 1;
        }
        Ok(())
    }

    fn record(
        &mut self,
        l: LicenseKey,
        user: &str,
        kind: EventKind,
        _: Option<SeatState>,
        _: Millis,
        _: Option<super::Cause>,
    ) -> Result<(), Self::Error> {
        self.events.push((l, user.to_owned(), kind));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Allocator, Breaker, Cause, Change, OnLowered};
    use super::*;

    const L: LicenseKey = 1;

    fn policy(capacity: i64) -> Policy {
        Policy {
            capacity,
            auto_promote: true,
            grace_ms: 60_000,
            on_lowered: OnLowered::Keep,
            free_on_delete: true,
            breaker: Breaker::default(),
            pools: Vec::new(),
        }
    }

    /// A tenant with `n` active users `u00`.., all in group `g`, and license `L` selecting `g`.
    fn tenant(n: usize, p: Policy) -> MemoryStore {
        let mut m = MemoryStore::default();
        let mut members = BTreeSet::new();
        for i in 0..n {
            let u = format!("u{i:02}");
            m.users.insert(u.clone(), true);
            members.insert(u);
        }
        m.groups.insert("g".into(), members);
        let mut l = MemoryLicense::new(p);
        l.selected.insert("g".into());
        m.licenses.insert(L, l);
        m
    }

    /// Runs `f` with an allocator at `now` (stamped `order`), then flushes.
    fn run(
        m: &mut MemoryStore,
        now: Millis,
        order: i64,
        f: impl FnOnce(&mut Allocator<MemoryStore>),
    ) {
        let mut a = Allocator::with_order(m, now, order);
        f(&mut a);
        a.finish().unwrap();
        drop(a);
        m.flush();
    }

    fn states(m: &MemoryStore) -> Vec<(String, SeatState, bool)> {
        m.licenses[&L]
            .seats
            .values()
            .map(|s| (s.user.clone(), s.state, s.held.is_some()))
            .collect()
    }

    fn count(m: &MemoryStore, state: SeatState) -> usize {
        m.licenses[&L]
            .seats
            .values()
            .filter(|s| s.state == state)
            .count()
    }

    fn everyone(m: &MemoryStore) -> Vec<String> {
        m.users.keys().cloned().collect()
    }

    #[test]
    fn a_selection_grants_in_id_order_and_waitlists_the_rest() {
        let mut m = tenant(5, policy(3));
        let users = everyone(&m);
        run(&mut m, 1_000, 1, |a| {
            a.reevaluate_selected(L, users, |_| Ok(())).unwrap()
        });
        let s = states(&m);
        assert_eq!(
            s.iter()
                .map(|(u, st, _)| (u.as_str(), *st))
                .collect::<Vec<_>>(),
            vec![
                ("u00", SeatState::Granted),
                ("u01", SeatState::Granted),
                ("u02", SeatState::Granted),
                ("u03", SeatState::Blocked),
                ("u04", SeatState::Blocked),
            ]
        );
        // The first leaves: the seat is kept through the grace, then goes to u03.
        m.users.insert("u00".into(), false);
        run(&mut m, 2_000, 2, |a| {
            a.member_changed("u00", &[], Cause::Directory).unwrap()
        });
        assert_eq!(m.licenses[&L].seats["u00"].state, SeatState::Releasing);
        run(&mut m, 70_000, 3, |a| a.reconcile(L).unwrap());
        assert!(!m.licenses[&L].seats.contains_key("u00"));
        assert_eq!(m.licenses[&L].seats["u03"].state, SeatState::Granted);
        assert_eq!(m.licenses[&L].seats["u04"].state, SeatState::Blocked);
    }

    #[test]
    fn lowering_capacity_under_block_newest_blocks_the_newest_but_never_a_held_seat() {
        let mut p = policy(4);
        p.on_lowered = OnLowered::BlockNewest;
        let mut m = tenant(4, p);
        for (i, u) in everyone(&m).into_iter().enumerate() {
            run(&mut m, 1_000 + i as i64, 1 + i as i64, |a| {
                a.reevaluate(L, &[u], Cause::Directory, false).unwrap()
            });
        }
        assert_eq!(count(&m, SeatState::Granted), 4);
        // u03, the newest, is held (a breaker that holds every loss).
        m.licenses.get_mut(&L).unwrap().policy.breaker = Breaker {
            percent: 0,
            min_seats: 1,
            window_ms: 60_000,
        };
        m.users.insert("u03".into(), false);
        run(&mut m, 2_000, 10, |a| {
            a.member_changed("u03", &[], Cause::Directory).unwrap()
        });
        assert_eq!(
            m.licenses[&L].seats["u03"]
                .held
                .as_ref()
                .map(|h| h.loss.clone()),
            Some(Loss::Deactivated)
        );
        m.licenses.get_mut(&L).unwrap().policy.capacity = 2;
        run(&mut m, 3_000, 11, |a| a.capacity_changed(L, 4).unwrap());
        // Two over: u02 and u01 (newest not held) wait again; the held u03 keeps its seat.
        assert_eq!(m.licenses[&L].seats["u03"].state, SeatState::Granted);
        assert_eq!(m.licenses[&L].seats["u02"].state, SeatState::Blocked);
        assert_eq!(m.licenses[&L].seats["u01"].state, SeatState::Blocked);
        assert_eq!(m.licenses[&L].seats["u00"].state, SeatState::Granted);
    }

    #[test]
    fn the_breaker_holds_past_the_threshold_and_an_approval_releases() {
        let mut p = policy(20);
        p.breaker = Breaker {
            percent: 20,
            min_seats: 3,
            window_ms: 3_600_000,
        };
        let mut m = tenant(20, p);
        let users = everyone(&m);
        run(&mut m, 1_000, 1, |a| {
            a.reevaluate_selected(L, users.clone(), |_| Ok(())).unwrap()
        });
        // The group emptied in one change: 20 % of 20 is 4 losses through, 16 held.
        m.groups.get_mut("g").unwrap().clear();
        run(&mut m, 2_000, 2, |a| {
            a.because(Change::Members("Designers".into()));
            a.reevaluate(L, &users, Cause::Directory, false).unwrap()
        });
        assert_eq!(count(&m, SeatState::Releasing), 4);
        let held: Vec<&Seat> = m.licenses[&L]
            .seats
            .values()
            .filter(|s| s.held.is_some())
            .collect();
        assert_eq!(held.len(), 16);
        assert_eq!(
            held[0].held.as_ref().unwrap().loss,
            Loss::RemovedFrom("Designers".into())
        );
        assert_eq!(m.holds[&1].held, 16);
        // Restoring three of them ends their hold; approving releases the other 13.
        for u in &users[4..7] {
            m.groups.get_mut("g").unwrap().insert(u.clone());
        }
        run(&mut m, 3_000, 3, |a| {
            a.reevaluate(L, &users[4..7], Cause::Directory, false)
                .unwrap()
        });
        assert_eq!(m.holds[&1].held, 13);
        let held: Vec<(UserId, Loss)> = m.licenses[&L]
            .seats
            .values()
            .filter_map(|s| s.held.as_ref().map(|h| (s.user.clone(), h.loss.clone())))
            .collect();
        m.holds.get_mut(&1).unwrap().state = HoldState::Approved;
        run(&mut m, 4_000, 4, |a| a.release_held(L, &held).unwrap());
        assert_eq!(m.holds[&1].held, 0);
        assert_eq!(m.holds[&1].state, HoldState::Approved);
        assert_eq!(count(&m, SeatState::Releasing), 4 + 13);
        assert_eq!(count(&m, SeatState::Granted), 3);
        // An admin's unselection is never held.
        m.licenses.get_mut(&L).unwrap().selected.clear();
        let all = everyone(&m);
        run(&mut m, 5_000, 5, |a| {
            a.reevaluate(L, &all, Cause::License, false).unwrap()
        });
        assert_eq!(count(&m, SeatState::Granted), 0);
    }

    #[test]
    fn restored_before_the_decision_the_hold_dissolves() {
        let mut p = policy(5);
        p.breaker = Breaker {
            percent: 0,
            min_seats: 1,
            window_ms: 60_000,
        };
        let mut m = tenant(2, p);
        let users = everyone(&m);
        run(&mut m, 1_000, 1, |a| {
            a.reevaluate_selected(L, users.clone(), |_| Ok(())).unwrap()
        });
        m.users.insert("u00".into(), false);
        run(&mut m, 2_000, 2, |a| {
            a.member_changed("u00", &[], Cause::Directory).unwrap()
        });
        assert_eq!(m.holds[&1].state, HoldState::Open);
        m.users.insert("u00".into(), true);
        run(&mut m, 3_000, 3, |a| {
            a.member_changed("u00", &[], Cause::Directory).unwrap()
        });
        assert_eq!(m.holds[&1].state, HoldState::Dissolved);
        assert!(m.licenses[&L].seats["u00"].held.is_none());
        // The window has room for nothing more: the next loss opens a new hold.
        m.users.insert("u01".into(), false);
        run(&mut m, 4_000, 4, |a| {
            a.member_changed("u01", &[], Cause::Directory).unwrap()
        });
        assert_eq!(m.holds[&2].state, HoldState::Open);
    }

    #[test]
    fn pins_go_first_and_exclusions_free_at_once() {
        let mut m = tenant(3, policy(1));
        m.licenses
            .get_mut(&L)
            .unwrap()
            .overrides
            .insert("u02".into(), OverrideKind::Pin);
        let users = everyone(&m);
        run(&mut m, 1_000, 1, |a| {
            a.reevaluate_selected(L, users.clone(), |_| Ok(())).unwrap()
        });
        assert_eq!(m.licenses[&L].seats["u02"].state, SeatState::Granted);
        m.licenses
            .get_mut(&L)
            .unwrap()
            .overrides
            .insert("u02".into(), OverrideKind::Exclude);
        run(&mut m, 2_000, 2, |a| {
            a.reevaluate(L, &["u02".into()], Cause::Admin, false)
                .unwrap()
        });
        assert!(!m.licenses[&L].seats.contains_key("u02"));
        assert_eq!(m.licenses[&L].seats["u00"].state, SeatState::Granted);
    }
}
