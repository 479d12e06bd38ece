//! License previews computed off the writer. A preview answers "what would this change of
//! seats or selected groups do?" by running the very allocator code the change runs, over a
//! [`PreviewSeats`]: the directory (users, groups, memberships, overrides) is read from one
//! read snapshot, and the license's seats are an in-memory copy that takes the allocator's
//! writes. Nothing is written and no lock is taken, so a preview of a huge license never holds
//! the SQLite writer or a tenant's PostgreSQL lock: other writes go on meanwhile. Its memory is
//! the license's seats.

use std::collections::{BTreeSet, HashMap};

use crate::alloc::{
    Allocator, Counts, EventKind, GroupId, HoldId, LicenseKey, Loss, LossWindow, Millis,
    OverrideKind, Policy, Seat, SeatState, SeatStore, UserId,
};

use crate::store::allocation::tx_seats::TxSeats;
use crate::store::{Error, Result};

use std::collections::HashSet;

use serde::Serialize;

use crate::store::allocation::license_view::{license_key, view, SeatCounts};
use crate::store::allocation::licenses::validate_seats;
use crate::store::allocation::selection::{
    distinct, resolve, selection_changed, selectors, validate_reserves, validate_selectors,
    GroupSelection,
};
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::{Store, TenantKey};

/// Who would be granted, blocked, released, ... by a proposed change.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct PreviewView {
    pub granted: Vec<String>,
    pub promoted: Vec<String>,
    pub blocked: Vec<String>,
    pub releasing: Vec<String>,
    pub released: Vec<String>,
    pub capacity: i64,
    /// The license's counts after the change.
    pub after: SeatCounts,
    /// With reservations or ceilings after the change: each group's use after it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<PoolView>,
    /// Everyone waiting after the change who was not waiting before, with their place on the
    /// waitlist then (previews of any change, see [`Store::preview_change`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Place>,
    /// People whose seat loss the circuit breaker would hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// Someone's place on the waitlist.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Place {
    pub user: String,
    pub place: i64,
}

/// A change to preview: anything the license update route takes, an override, a manual grant.
#[derive(Debug, Clone)]
pub enum Proposed {
    License(crate::store::LicenseChange),
    /// Pin or exclude `user` (`None`: clear their override).
    Override {
        user: String,
        kind: Option<crate::alloc::OverrideKind>,
    },
    /// Grant `user` a free seat by hand.
    Grant {
        user: String,
    },
}

/// A selected group's use of a license against its reserve and ceiling.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PoolView {
    #[serde(rename = "groupId")]
    pub group_id: String,
    #[serde(rename = "groupName")]
    pub group_name: Option<String>,
    pub reserve: i64,
    pub max: Option<i64>,
    #[serde(rename = "inUse")]
    pub in_use: i64,
    pub waiting: i64,
}

impl Store {
    /// What a proposed change would do, computed by making it: the very write job that applies
    /// it (the same functions, the same allocator run, under the same lock) runs, the license's
    /// seats are compared user by user before and after, and the transaction is rolled back
    /// (`Store::dry_run`), so preview and apply cannot disagree. It takes the writer (SQLite) or
    /// the tenant's lock (PostgreSQL) as long as the change would.
    pub async fn preview_change(
        &self,
        tenant: TenantKey,
        key: String,
        proposed: Proposed,
        actor: crate::store::events::audit::Actor,
    ) -> Result<PreviewView> {
        if let Proposed::Override {
            kind: Some(crate::alloc::OverrideKind::Idle),
            ..
        } = proposed
        {
            return Err(Error::Invalid(
                "an idle override is set by the reclaim of idle seats, not by hand: pin or exclude"
                    .into(),
            ));
        }
        let ticker = self.ticker();
        self.dry_run(crate::store::Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            let before = seat_states(c, l)?;
            match &proposed {
                Proposed::License(change) => {
                    crate::store::allocation::licenses::update_in(
                        c, tenant, at, &key, change, &actor,
                    )?;
                }
                Proposed::Override { user, kind } => {
                    crate::store::allocation::seat_admin::override_in(
                        c, tenant, at, &key, user, *kind, &actor,
                    )?;
                }
                Proposed::Grant { user } => {
                    crate::store::allocation::seat_admin::grant_in(
                        c, tenant, at, &key, user, &actor,
                    )?;
                }
            }
            let after = seat_states(c, l)?;
            compare(c, tenant, l, &before, &after)
        })
        .await
    }

    /// What a proposed seat count and/or selection would do, without changing anything: the
    /// allocator runs over a copy of the license's seats, off the writer (`store::preview`).
    pub async fn preview(
        &self,
        tenant: TenantKey,
        key: String,
        seats: Option<i64>,
        groups: Option<Vec<GroupSelection>>,
        on_lowered: Option<crate::alloc::OnLowered>,
    ) -> Result<PreviewView> {
        let at = self.now_ms();
        // Off the writer, in one read snapshot, on a low-priority thread (see `store::preview`
        // and `crate::background`).
        self.read_expensive(tenant, move |c| {
            preview_in(c, tenant, &key, at, seats, groups, on_lowered)
        })
        .await
    }
}

/// What changing license `key`'s seat count and/or selected groups would do, computed by the
/// allocator over an in-memory copy of its seats (`store::preview`): nothing is written.
fn preview_in(
    c: &Db,
    tenant: TenantKey,
    key: &str,
    at: Millis,
    seats: Option<i64>,
    groups: Option<Vec<GroupSelection>>,
    on_lowered: Option<crate::alloc::OnLowered>,
) -> Result<PreviewView> {
    let l = license_key(c, tenant, key)?;
    let mut base = TxSeats::new(c, tenant);
    let old = base
        .policy(l)?
        .ok_or_else(|| Error::NotFound("license".into()))?;
    let mut policy = old.clone();
    if let Some(o) = on_lowered {
        policy.on_lowered = o;
    }
    if let Some(s) = seats {
        let (overage, percent): (i64, i64) = c
            .prepare_cached("SELECT overage, overage_percent FROM licenses WHERE rk = ?")?
            .query_row([l], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let s = validate_seats(s)?;
        policy.capacity = s + crate::capacity::overage_seats(s, overage, percent);
    }
    // The selection as `set_selectors` would leave it: kept selectors keep their group,
    // new ones resolve now.
    let before = selectors(c, l)?;
    let old_groups: HashSet<String> = before.iter().filter_map(|(_, g)| g.clone()).collect();
    let rules_before = policy.pools.clone();
    let new_groups: HashSet<String> = match &groups {
        None => old_groups.clone(),
        Some(wanted) => {
            validate_selectors(wanted)?;
            let mut out = HashSet::new();
            let mut rules = Vec::new();
            for g in distinct(wanted) {
                let s = &g.selector;
                let group = match before.iter().find(|(b, _)| b == s) {
                    Some((_, g)) => g.clone(),
                    None => resolve(c, tenant, s)?,
                };
                rules.push(crate::alloc::PoolRule {
                    group: group.clone(),
                    reserve: g.reserve,
                    max: g.max,
                });
                out.extend(group);
            }
            policy.pools = crate::store::allocation::tx_seats::normal_rules(rules);
            out
        }
    };
    let reserved: i64 = match &groups {
        Some(wanted) => distinct(wanted).iter().map(|g| g.reserve).sum(),
        None => c
            .prepare_cached(
                "SELECT CAST(coalesce(sum(reserve), 0) AS BIGINT) FROM license_groups WHERE license_rk = ?",
            )?
            .query_row([l], |r| r.get(0))?,
    };
    let rules_changed = policy.pools != rules_before;
    let mut removed: Vec<String> = old_groups.difference(&new_groups).cloned().collect();
    let mut added: Vec<String> = new_groups.difference(&old_groups).cloned().collect();
    removed.sort();
    added.sort();
    let mut selected: Vec<String> = new_groups.into_iter().collect();
    selected.sort();
    let new_capacity = policy.capacity;
    let capacity = match seats {
        Some(s) => s,
        None => view(c, l)?.seats,
    };
    validate_reserves(capacity, reserved)?;
    let rules = policy.pools.clone();
    let mut p = crate::store::allocation::preview::PreviewSeats::new(base, l, policy, selected)?;
    crate::store::allocation::preview::with_allocator(&mut p, at, |a| {
        if rules_changed {
            a.repool_all(l)?;
        }
        selection_changed(a, l, &removed, &added, |_| Ok(()))?;
        if new_capacity != old.capacity {
            a.capacity_changed(l, old.capacity)?;
        }
        if rules_changed {
            a.limits_changed(l)?;
        }
        if on_lowered == Some(crate::alloc::OnLowered::BlockNewest)
            && old.on_lowered != crate::alloc::OnLowered::BlockNewest
        {
            a.on_lowered_changed(l)?;
        }
        Ok(())
    })?;
    let mut out = PreviewView::default();
    let mut name = c.prepare_cached("SELECT user_name FROM users WHERE tenant = ? AND id = ?")?;
    // A user moved twice by one change (a releasing seat kept, then given back under
    // `block_newest`) is named once, by where the change leaves them.
    let last: HashMap<&UserId, usize> = p
        .events
        .iter()
        .enumerate()
        .map(|(i, (user, _))| (user, i))
        .collect();
    for (_, (user, kind)) in p
        .events
        .iter()
        .enumerate()
        .filter(|(i, (u, _))| last[u] == *i)
    {
        let who: String = name
            .query_row(params![tenant, user], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| user.clone());
        match kind {
            EventKind::Granted => out.granted.push(who),
            EventKind::Promoted => out.promoted.push(who),
            EventKind::Blocked => out.blocked.push(who),
            EventKind::Releasing => out.releasing.push(who),
            EventKind::Released => out.released.push(who),
            // An admin's change is never held.
            EventKind::Held => {}
        }
    }
    let after = p.counts_now();
    let use_of = p.pool_counts();
    let mut gname =
        c.prepare_cached("SELECT display_name FROM groups WHERE tenant = ? AND id = ?")?;
    for r in &rules {
        let Some(g) = &r.group else { continue };
        let (in_use, waiting) = use_of.get(g).copied().unwrap_or((0, 0));
        out.groups.push(PoolView {
            group_id: g.clone(),
            group_name: gname
                .query_row(params![tenant, g], |r| r.get(0))
                .optional()?,
            reserve: r.reserve,
            max: r.max,
            in_use,
            waiting,
        });
    }
    out.capacity = capacity;
    out.after = SeatCounts {
        granted: after.granted,
        blocked: after.blocked,
        releasing: after.releasing,
    };
    Ok(out)
}

/// The allocator's view for a preview of license `license`: reads from the snapshot, seats of
/// that one license in memory. Other licenses are invisible (a license change only moves its
/// own seats).
pub(in crate::store) struct PreviewSeats<'c> {
    pub base: TxSeats<'c>,
    pub license: LicenseKey,
    pub policy: Policy,
    /// The groups the license would select.
    pub selected: Vec<GroupId>,
    seats: HashMap<UserId, Seat>,
    /// Waiting seats in waitlist order: pinned first, then `entitled_at`, then user id.
    waiting: BTreeSet<(bool, i64, UserId)>,
    counts: Counts,
    /// What the allocator recorded, in order.
    pub events: Vec<(UserId, EventKind)>,
}

fn waiting_key(s: &Seat) -> (bool, i64, UserId) {
    (!s.pinned, s.entitled_at, s.user.clone())
}

impl<'c> PreviewSeats<'c> {
    pub fn new(
        mut base: TxSeats<'c>,
        license: LicenseKey,
        policy: Policy,
        selected: Vec<GroupId>,
    ) -> Result<Self> {
        let all = base.all_seats(license)?;
        let mut p = PreviewSeats {
            base,
            license,
            policy,
            selected,
            seats: HashMap::with_capacity(all.len()),
            waiting: BTreeSet::new(),
            counts: Counts::default(),
            events: Vec::new(),
        };
        for s in all {
            p.add(s);
        }
        Ok(p)
    }

    /// A stamp for newcomers after every stamp the license holds (and not before now).
    pub fn next_order(&self, at: Millis) -> i64 {
        let last = self
            .seats
            .values()
            .map(|s| s.entitled_at)
            .max()
            .unwrap_or(0);
        (at * 1000).max(last + 1)
    }

    pub fn counts_now(&self) -> Counts {
        self.counts
    }

    fn tally(&mut self, state: SeatState, by: i64) {
        match state {
            SeatState::Granted => self.counts.granted += by,
            SeatState::Releasing => self.counts.releasing += by,
            SeatState::Blocked => self.counts.blocked += by,
        }
    }

    fn add(&mut self, s: Seat) {
        self.tally(s.state, 1);
        if s.state == SeatState::Blocked {
            self.waiting.insert(waiting_key(&s));
        }
        self.seats.insert(s.user.clone(), s);
    }

    fn take(&mut self, user: &str) -> Option<Seat> {
        let s = self.seats.remove(user)?;
        self.tally(s.state, -1);
        if s.state == SeatState::Blocked {
            self.waiting.remove(&waiting_key(&s));
        }
        Some(s)
    }

    /// Seats per pool: (in use, waiting) by group id.
    pub fn pool_counts(&self) -> HashMap<GroupId, (i64, i64)> {
        let mut out: HashMap<GroupId, (i64, i64)> = HashMap::new();
        for s in self.seats.values() {
            if let Some(g) = &s.pool {
                let e = out.entry(g.clone()).or_insert((0, 0));
                if s.state == SeatState::Blocked {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
        out
    }

    fn sorted(&self, state: SeatState) -> Vec<&Seat> {
        self.seats.values().filter(|s| s.state == state).collect()
    }
}

impl SeatStore for PreviewSeats<'_> {
    type Error = Error;

    fn prefetch(&mut self, l: LicenseKey, users: &[UserId]) -> Result<()> {
        // The directory's facts (the seats are this preview's own).
        self.base.prefetch(l, users)
    }

    fn user_active(&mut self, user: &str) -> Result<Option<bool>> {
        self.base.user_active(user)
    }
    fn parent_groups(&mut self, member: &str) -> Result<Vec<GroupId>> {
        self.base.parent_groups(member)
    }
    fn direct_members(&mut self, group: &str) -> Result<(Vec<UserId>, Vec<GroupId>)> {
        self.base.direct_members(group)
    }
    fn licenses_selecting(&mut self, groups: &[GroupId]) -> Result<Vec<LicenseKey>> {
        let hit = groups.iter().any(|g| self.selected.contains(g));
        Ok(if hit { vec![self.license] } else { Vec::new() })
    }
    fn seat_licenses(&mut self, user: &str) -> Result<Vec<LicenseKey>> {
        Ok(if self.seats.contains_key(user) {
            vec![self.license]
        } else {
            Vec::new()
        })
    }
    fn policy(&mut self, l: LicenseKey) -> Result<Option<Policy>> {
        Ok((l == self.license).then(|| self.policy.clone()))
    }
    fn selected_groups(&mut self, l: LicenseKey) -> Result<Vec<GroupId>> {
        Ok(if l == self.license {
            self.selected.clone()
        } else {
            Vec::new()
        })
    }
    fn override_of(&mut self, l: LicenseKey, user: &str) -> Result<Option<OverrideKind>> {
        self.base.override_of(l, user)
    }
    fn overrides(&mut self, l: LicenseKey) -> Result<Vec<(UserId, OverrideKind)>> {
        self.base.overrides(l)
    }
    fn seat(&mut self, l: LicenseKey, user: &str) -> Result<Option<Seat>> {
        Ok(if l == self.license {
            self.seats.get(user).cloned()
        } else {
            None
        })
    }
    fn all_seats(&mut self, l: LicenseKey) -> Result<Vec<Seat>> {
        Ok(if l == self.license {
            self.seats.values().cloned().collect()
        } else {
            Vec::new()
        })
    }
    fn counts(&mut self, l: LicenseKey) -> Result<Counts> {
        Ok(if l == self.license {
            self.counts
        } else {
            Counts::default()
        })
    }
    fn blocked_head(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>> {
        if l != self.license {
            return Ok(Vec::new());
        }
        Ok(self
            .waiting
            .iter()
            .take(n)
            .filter_map(|(_, _, u)| self.seats.get(u).cloned())
            .collect())
    }
    fn newest_granted(&mut self, l: LicenseKey, n: usize) -> Result<Vec<Seat>> {
        if l != self.license {
            return Ok(Vec::new());
        }
        // As the store orders them: unpinned first, then the latest granted; held seats are
        // never taken back.
        let mut v = self.sorted(SeatState::Granted);
        v.retain(|s| s.held.is_none());
        v.sort_by(|a, b| {
            a.pinned
                .cmp(&b.pinned)
                .then(b.since.cmp(&a.since))
                .then(b.entitled_at.cmp(&a.entitled_at))
                .then(b.user.cmp(&a.user))
        });
        Ok(v.into_iter().take(n).cloned().collect())
    }
    fn blocked_head_in(&mut self, l: LicenseKey, pool: &str, n: usize) -> Result<Vec<Seat>> {
        if l != self.license {
            return Ok(Vec::new());
        }
        Ok(self
            .waiting
            .iter()
            .filter_map(|(_, _, u)| self.seats.get(u))
            .filter(|s| s.pool.as_deref() == Some(pool))
            .take(n)
            .cloned()
            .collect())
    }
    fn newest_granted_in(&mut self, l: LicenseKey, pool: &str, n: usize) -> Result<Vec<Seat>> {
        let mut v = self.newest_granted(l, usize::MAX)?;
        v.retain(|s| s.pool.as_deref() == Some(pool));
        v.truncate(n);
        Ok(v)
    }
    fn pool_use(&mut self, l: LicenseKey) -> Result<Vec<(GroupId, i64)>> {
        let mut used: HashMap<GroupId, i64> = HashMap::new();
        if l == self.license {
            for s in self
                .seats
                .values()
                .filter(|s| s.state != SeatState::Blocked)
            {
                if let Some(g) = &s.pool {
                    *used.entry(g.clone()).or_insert(0) += 1;
                }
            }
        }
        Ok(used.into_iter().collect())
    }
    fn releasing_due(&mut self, l: LicenseKey, now: Millis) -> Result<Vec<Seat>> {
        if l != self.license {
            return Ok(Vec::new());
        }
        let mut v: Vec<&Seat> = self
            .seats
            .values()
            .filter(|s| s.release_at.is_some_and(|r| r <= now))
            .collect();
        v.sort_by(|a, b| a.release_at.cmp(&b.release_at).then(a.user.cmp(&b.user)));
        Ok(v.into_iter().cloned().collect())
    }
    fn save_seat(&mut self, l: LicenseKey, seat: &Seat, _: Option<SeatState>) -> Result<()> {
        if l == self.license {
            self.take(&seat.user);
            self.add(seat.clone());
        }
        Ok(())
    }
    fn remove_seat(&mut self, l: LicenseKey, user: &str, _: SeatState) -> Result<()> {
        if l == self.license {
            self.take(user);
        }
        Ok(())
    }
    // A preview runs admin changes only, which the circuit breaker never holds: no window moves
    // and no hold opens.
    fn loss_window(&mut self, _: LicenseKey) -> Result<LossWindow> {
        Ok(LossWindow::default())
    }
    fn set_loss_window(&mut self, _: LicenseKey, _: LossWindow) -> Result<()> {
        Ok(())
    }
    fn hold(&mut self, _: LicenseKey, _: &Loss) -> Result<HoldId> {
        Err(Error::Internal("a preview never holds a seat loss".into()))
    }
    fn unhold(&mut self, _: LicenseKey, _: HoldId) -> Result<()> {
        Ok(())
    }
    fn record(
        &mut self,
        l: LicenseKey,
        user: &str,
        kind: EventKind,
        _: Option<SeatState>,
        _: Millis,
        _: Option<crate::alloc::Cause>,
    ) -> Result<()> {
        if l == self.license {
            self.events.push((user.to_owned(), kind));
        }
        Ok(())
    }
}

/// Runs `f` with an allocator over a [`PreviewSeats`].
pub(in crate::store) fn with_allocator(
    p: &mut PreviewSeats,
    at: Millis,
    f: impl FnOnce(&mut Allocator<PreviewSeats>) -> Result<()>,
) -> Result<()> {
    let order = p.next_order(at);
    let mut a = Allocator::with_order(p, at, order);
    f(&mut a)?;
    a.finish()
}

/// Each seat of license `l`: its state and whether the breaker holds its loss.
fn seat_states(c: &Db, l: LicenseKey) -> Result<HashMap<UserId, (SeatState, bool)>> {
    let mut st = c.prepare_cached(
        "SELECT user_id, state, hold IS NOT NULL FROM seats WHERE license_rk = ?",
    )?;
    let rows = st.query_all([l], |r| {
        let state: String = r.get(1)?;
        Ok((
            r.get::<_, String>(0)?,
            SeatState::parse(&state).unwrap_or(SeatState::Blocked),
            r.get::<_, bool>(2)?,
        ))
    })?;
    Ok(rows.into_iter().map(|(u, s, h)| (u, (s, h))).collect())
}

/// The preview of a change from the seats before and after it (in its transaction).
fn compare(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    before: &HashMap<UserId, (SeatState, bool)>,
    after: &HashMap<UserId, (SeatState, bool)>,
) -> Result<PreviewView> {
    let mut out = PreviewView::default();
    let mut name = c.prepare_cached("SELECT user_name FROM users WHERE tenant = ? AND id = ?")?;
    let mut who = |user: &str| -> Result<String> {
        Ok(name
            .query_row(params![tenant, user], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| user.to_owned()))
    };
    // Places on the waitlist after the change, in its order.
    let order: Vec<String> = c
        .prepare_cached(
            "SELECT user_id FROM seats WHERE license_rk = ? AND state = 'blocked'
             ORDER BY pinned DESC, entitled_at, user_id",
        )?
        .query_all([l], |r| r.get(0))?;
    let mut users: BTreeSet<&UserId> = before.keys().collect();
    users.extend(after.keys());
    for user in users {
        let (was, now) = (before.get(user).copied(), after.get(user).copied());
        let (was_state, now_state) = (was.map(|w| w.0), now.map(|n| n.0));
        use SeatState::*;
        match (was_state, now_state) {
            // As the allocator's events name the moves (a releasing seat kept is granted; a
            // waiting user who leaves the waitlist is released).
            (None | Some(Releasing), Some(Granted)) => out.granted.push(who(user)?),
            (Some(Blocked), Some(Granted)) => out.promoted.push(who(user)?),
            (w, Some(Blocked)) if w != Some(Blocked) => out.blocked.push(who(user)?),
            (Some(Granted), Some(Releasing)) => out.releasing.push(who(user)?),
            (Some(_), None) => out.released.push(who(user)?),
            _ => {}
        }
        if now_state == Some(Blocked) && was_state != Some(Blocked) {
            if let Some(p) = order.iter().position(|u| u == user) {
                out.waiting.push(Place {
                    user: who(user)?,
                    place: p as i64 + 1,
                });
            }
        }
        if now.is_some_and(|n| n.1) && !was.is_some_and(|w| w.1) {
            out.held.push(who(user)?);
        }
    }
    out.waiting.sort_by_key(|p| p.place);
    let v = view(c, l)?;
    out.capacity = v.seats;
    out.after = SeatCounts {
        granted: v.granted,
        blocked: v.blocked,
        releasing: v.releasing,
    };
    Ok(out)
}
