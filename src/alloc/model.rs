//! The allocator's vocabulary: keys, seat states, a license's policy, a seat, counts, what
//! happened to a seat and why, refusals of an admin's act, and the report of a run.

use serde::Serialize;

use super::{Breaker, Held, PoolRule};

pub type UserId = String;
pub type GroupId = String;
/// A license's internal key.
pub type LicenseKey = i64;
/// Milliseconds since the Unix epoch.
pub type Millis = i64;
/// A hold's key (see the circuit breaker in the module doc).
pub type HoldId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatState {
    Granted,
    Blocked,
    Releasing,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Granted => "granted",
            SeatState::Blocked => "blocked",
            SeatState::Releasing => "releasing",
        }
    }
    pub fn parse(s: &str) -> Option<SeatState> {
        Some(match s {
            "granted" => SeatState::Granted,
            "blocked" => SeatState::Blocked,
            "releasing" => SeatState::Releasing,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnLowered {
    Keep,
    BlockNewest,
}

impl OnLowered {
    pub const ALL: [OnLowered; 2] = [OnLowered::Keep, OnLowered::BlockNewest];

    /// The stable string form (API field, stored column, CLI and console values).
    pub fn as_str(self) -> &'static str {
        match self {
            OnLowered::Keep => "keep",
            OnLowered::BlockNewest => "block_newest",
        }
    }

    pub fn parse(s: &str) -> Option<OnLowered> {
        OnLowered::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverrideKind {
    Pin,
    Exclude,
    /// Reclaimed for idleness (the license's `reclaim_idle_days`): not entitled, like an
    /// exclusion, until the product reports the user using the license again. Set by the
    /// reclaim pass, never by an admin; its seat goes through the grace like a directory change.
    Idle,
}

impl OverrideKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideKind::Pin => "pin",
            OverrideKind::Exclude => "exclude",
            OverrideKind::Idle => "idle",
        }
    }

    pub fn parse(s: &str) -> Option<OverrideKind> {
        match s {
            "pin" => Some(OverrideKind::Pin),
            "exclude" => Some(OverrideKind::Exclude),
            "idle" => Some(OverrideKind::Idle),
            _ => None,
        }
    }
}

/// What the allocator needs of a license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub capacity: i64,
    pub auto_promote: bool,
    pub grace_ms: Millis,
    pub on_lowered: OnLowered,
    pub free_on_delete: bool,
    /// The tenant's circuit breaker on mass seat loss.
    pub breaker: Breaker,
    /// Reservations and ceilings per selected group, in selector order; empty unless some
    /// selector carries one (see `pools`).
    pub pools: Vec<PoolRule>,
}

impl Policy {
    /// Whether the license shares its seats out among its groups (see `pools`).
    pub fn pooled(&self) -> bool {
        !self.pools.is_empty()
    }
}

/// One (license, user) seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub user: UserId,
    pub state: SeatState,
    pub pinned: bool,
    /// When the user became entitled, in microseconds: the waitlist order. Distinct changes get
    /// distinct, increasing values (see [`Allocator::with_order`]); the users of one change share
    /// it and are ordered by id.
    pub entitled_at: i64,
    /// When the seat entered its current state.
    pub since: Millis,
    /// For `releasing`: when the seat is freed.
    pub release_at: Option<Millis>,
    /// A granted seat whose user lost the entitlement while the circuit breaker held it.
    pub held: Option<Held>,
    /// The selected group the seat counts against, in a license with reservations or
    /// ceilings (see `pools`); `None` elsewhere.
    pub pool: Option<GroupId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub granted: i64,
    pub releasing: i64,
    pub blocked: i64,
}

impl Counts {
    pub fn in_use(&self) -> i64 {
        self.granted + self.releasing
    }
}

/// A seat change, as recorded in the seat-event feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A seat was given to a user who just became entitled (or came back inside the grace).
    Granted,
    /// An entitled user waits for a seat.
    Blocked,
    /// A user stopped being entitled and keeps the seat until its release time.
    Releasing,
    /// The seat (or the waitlist place) is gone.
    Released,
    /// A waiting user got a freed seat.
    Promoted,
    /// The user lost the entitlement but keeps the seat: the circuit breaker holds the loss.
    Held,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Granted => "granted",
            EventKind::Blocked => "blocked",
            EventKind::Releasing => "releasing",
            EventKind::Released => "released",
            EventKind::Promoted => "promoted",
            EventKind::Held => "held",
        }
    }
}

/// Why the allocator runs: decides whether a seat is freed at once or after the grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A change from the identity provider.
    Directory,
    /// The user was deleted at the provider.
    UserDeleted,
    /// An admin action that frees at once (an exclusion).
    Admin,
    /// An admin's license change (a group unselected, an override removed), the idle reclaim or
    /// an approved hold: the grace applies, the circuit breaker does not.
    License,
    /// The reconciler repairing drift.
    Reconcile,
}

impl Cause {
    /// The stored form (a seat event's `cause`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Directory => "directory",
            Cause::UserDeleted => "deleted",
            Cause::Admin => "admin",
            Cause::License => "license",
            Cause::Reconcile => "reconcile",
        }
    }
}

/// Why a manual grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the user is not waiting for a seat of this license (state: {0})")]
    NotBlocked(&'static str),
    #[error("no seat is free: {in_use} of {capacity} in use")]
    NoFreeSeat { in_use: i64, capacity: i64 },
    #[error("no seat is free for the user's group {0}: its ceiling is reached or the free seats are reserved for other groups")]
    NoRoomInGroup(GroupId),
}

/// Counts of what one run changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub granted: u64,
    pub blocked: u64,
    pub releasing: u64,
    pub released: u64,
    pub promoted: u64,
    /// Losses the circuit breaker held.
    pub held: u64,
    /// Pairs whose stored seat disagreed with the rules (reconcile only).
    pub repaired: u64,
    /// Users blocked for lack of seats in this run, per license (for notifications).
    #[serde(skip)]
    pub newly_blocked: Vec<(LicenseKey, UserId)>,
    /// Licenses whose seats changed in this run (for capacity thresholds).
    #[serde(skip)]
    pub touched: std::collections::BTreeSet<LicenseKey>,
}

impl Report {
    pub(super) fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::Granted => self.granted += 1,
            EventKind::Blocked => self.blocked += 1,
            EventKind::Releasing => self.releasing += 1,
            EventKind::Released => self.released += 1,
            EventKind::Promoted => self.promoted += 1,
            EventKind::Held => self.held += 1,
        }
    }
    pub fn merge(&mut self, o: Report) {
        self.granted += o.granted;
        self.blocked += o.blocked;
        self.releasing += o.releasing;
        self.released += o.released;
        self.promoted += o.promoted;
        self.held += o.held;
        self.repaired += o.repaired;
        self.newly_blocked.extend(o.newly_blocked);
        self.touched.extend(o.touched);
    }
    pub fn is_empty(&self) -> bool {
        self.granted
            + self.blocked
            + self.releasing
            + self.released
            + self.promoted
            + self.held
            + self.repaired
            == 0
    }
}
