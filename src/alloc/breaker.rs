//! The circuit breaker on mass seat loss (see the module doc of `alloc`): the tenant's
//! thresholds, a license's window of directory-made losses, what a held seat remembers, and the
//! allocator's steps that count a loss, name it and release an approved hold.

use super::{Allocator, Cause, HoldId, LicenseKey, Millis, Policy, SeatStore, UserId};

/// When directory changes hold seat losses instead of letting them through (tenant settings
/// `hold_threshold_percent`, `hold_min_seats`, `hold_window_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// Losses above this share of the granted seats are held; 100 switches the breaker off.
    pub percent: i64,
    /// Losses are held only from this many on.
    pub min_seats: i64,
    pub window_ms: Millis,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            percent: 20,
            min_seats: 10,
            window_ms: 3_600_000,
        }
    }
}

impl Breaker {
    /// How many losses one window lets through when `base` seats were granted as it opened:
    /// the n-th loss is held when n > base × percent / 100 and n >= min_seats.
    pub fn allowed(&self, base: i64) -> i64 {
        if self.percent >= 100 {
            return i64::MAX;
        }
        (base * self.percent / 100).max(self.min_seats - 1)
    }
}

/// A license's current window of directory-made seat losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LossWindow {
    /// When the window opened (its first loss); `None`: no window yet.
    pub since: Option<Millis>,
    /// Granted seats as it opened.
    pub base: i64,
    /// Losses it let through.
    pub losses: i64,
}

/// Why a held user stopped being entitled, as their seat remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loss {
    Deactivated,
    Deleted,
    /// Removed from the named group (directly, or a group containing them was).
    RemovedFrom(String),
    /// The named selected group was deleted.
    GroupDeleted(String),
    /// No longer in a selected group otherwise.
    Other,
}

impl Loss {
    /// The stored form: `deactivated`, `deleted`, `removed:<group>`, `group_deleted:<group>`,
    /// `other`.
    pub fn key(&self) -> String {
        match self {
            Loss::Deactivated => "deactivated".into(),
            Loss::Deleted => "deleted".into(),
            Loss::RemovedFrom(g) => format!("removed:{g}"),
            Loss::GroupDeleted(g) => format!("group_deleted:{g}"),
            Loss::Other => "other".into(),
        }
    }

    pub fn parse(s: &str) -> Loss {
        match s.split_once(':') {
            Some(("removed", g)) => Loss::RemovedFrom(g.to_owned()),
            Some(("group_deleted", g)) => Loss::GroupDeleted(g.to_owned()),
            _ => match s {
                "deactivated" => Loss::Deactivated,
                "deleted" => Loss::Deleted,
                _ => Loss::Other,
            },
        }
    }

    /// What the directory did to the people, in words: "deactivated in the directory",
    /// "removed from the group Designers", "in the deleted group Designers".
    pub fn describe(&self) -> String {
        match self {
            Loss::Deactivated => "deactivated in the directory".into(),
            Loss::Deleted => "deleted in the directory".into(),
            Loss::RemovedFrom(g) => format!("removed from the group {g}"),
            Loss::GroupDeleted(g) => format!("in the deleted group {g}"),
            Loss::Other => "no longer in a selected group".into(),
        }
    }
}

/// A held seat's hold and the loss it holds back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub hold: HoldId,
    pub loss: Loss,
}

/// The directory change an allocator run follows, so that a held loss can say what caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Members of the named group changed.
    Members(String),
    /// The named group was deleted.
    GroupDeleted(String),
}

impl<S: SeatStore> Allocator<'_, S> {
    /// Whether one more directory loss of `l` is past the breaker's threshold (then it is
    /// held); one that is not is counted in the license's window.
    pub(super) fn trips(&mut self, l: LicenseKey, policy: &Policy) -> Result<bool, S::Error> {
        let b = policy.breaker;
        if b.percent >= 100 {
            return Ok(false);
        }
        let mut w = self.store.loss_window(l)?;
        if w.since.is_none_or(|since| self.now >= since + b.window_ms) {
            w = LossWindow {
                since: Some(self.now),
                base: self.store.counts(l)?.granted,
                losses: 0,
            };
        }
        let trip = w.losses >= b.allowed(w.base);
        if !trip {
            w.losses += 1;
        }
        self.store.set_loss_window(l, w)?;
        Ok(trip)
    }

    /// What took `user`'s entitlement, as far as this run knows.
    pub(super) fn loss_of(&mut self, user: &str, cause: Cause) -> Result<Loss, S::Error> {
        if cause == Cause::UserDeleted {
            return Ok(Loss::Deleted);
        }
        Ok(match self.store.user_active(user)? {
            None => Loss::Deleted,
            Some(false) => Loss::Deactivated,
            Some(true) => match &self.change {
                Some(Change::Members(g)) => Loss::RemovedFrom(g.clone()),
                Some(Change::GroupDeleted(g)) => Loss::GroupDeleted(g.clone()),
                None => Loss::Other,
            },
        })
    }

    /// An admin approved a hold: each of `users` (with the loss held for them) is no longer
    /// held; one the directory entitles again keeps the seat, the others lose it the normal way
    /// (the grace, or at once where a deleted user's seat is freed on delete); then free seats
    /// go to the waitlist.
    pub fn release_held(
        &mut self,
        l: LicenseKey,
        users: &[(UserId, Loss)],
    ) -> Result<(), S::Error> {
        self.guard = false;
        for (u, loss) in users {
            let cause = if *loss == Loss::Deleted {
                Cause::UserDeleted
            } else {
                Cause::Directory
            };
            let e = self.entitlement(l, u)?;
            let mut newcomer = None;
            self.settle(l, u, e, cause, &mut newcomer)?;
        }
        self.guard = true;
        self.fill(l, &[], false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_lets_through_its_share_and_no_fewer_than_min_seats_minus_one() {
        let b = Breaker::default();
        // 100 granted: the 21st loss is past 20 %.
        assert_eq!(b.allowed(100), 20);
        // 12 granted: 20 % is 2.4, but fewer than 10 losses are never held.
        assert_eq!(b.allowed(12), 9);
        assert_eq!(b.allowed(0), 9);
        let tight = Breaker {
            percent: 0,
            min_seats: 1,
            window_ms: 60_000,
        };
        assert_eq!(tight.allowed(50), 0);
        let off = Breaker {
            percent: 100,
            ..Breaker::default()
        };
        assert_eq!(off.allowed(5), i64::MAX);
    }

    #[test]
    fn a_loss_reads_back_as_it_was_stored() {
        for l in [
            Loss::Deactivated,
            Loss::Deleted,
            Loss::RemovedFrom("Design: UX".into()),
            Loss::GroupDeleted("Sales".into()),
            Loss::Other,
        ] {
            assert_eq!(Loss::parse(&l.key()), l);
        }
        assert_eq!(
            Loss::RemovedFrom("Designers".into()).describe(),
            "removed from the group Designers"
        );
    }
}
