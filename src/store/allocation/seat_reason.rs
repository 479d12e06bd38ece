//! Why a person is where they are in a license, in the admin's words: the group that entitles
//! them, and for anyone not simply holding a seat the reason — "all 32 seats are in use; 2 are
//! ahead of hugo@…; the next seat frees at 14:08 (farid@…'s grace period ends)", "Sales is at its
//! ceiling of 8", "excluded by the operator on Thu 3 Dec 2026", "not in a selected group",
//! "held by the circuit breaker". One pure function ([`words`]) over the facts the allocator
//! decides from ([`Facts`]), read by [`explain`] for a seat check, the console's pages and the
//! CSV.

use crate::alloc::{LicenseKey, Millis};
use crate::store::allocation::license_view::view;
use crate::store::allocation::seat_admin::{SeatView, UserState};
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::{Result, TenantKey};

/// What the allocator knows about one person in one license.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub state: Option<UserState>,
    pub user: String,
    /// Seats the allocator grants up to (the count and any agreed overage), and in use.
    pub capacity: i64,
    pub in_use: i64,
    /// People ahead of them on the waitlist.
    pub ahead: Option<i64>,
    /// The next releasing seat to free: when, and whose it is.
    pub next_free: Option<(Millis, String)>,
    pub auto_promote: bool,
    /// Their group's ceiling, when it is reached: (group, max).
    pub ceiling: Option<(String, i64)>,
    /// An override on them: (kind, who set it, since: RFC 3339).
    pub override_: Option<(String, Option<String>, String)>,
    /// `Some(active)` for a user the directory has.
    pub active: Option<bool>,
    pub held: bool,
    /// For `releasing`: when the seat frees.
    pub release_at: Option<Millis>,
    pub zone: String,
}

/// The reason in the admin's words; `None` for a seat simply held.
pub fn words(f: &Facts) -> Option<String> {
    let at = |ms: Millis| crate::notify::when::format_ms(ms, &f.zone);
    let day = |t: &str| crate::notify::when::format_rfc3339(t, &f.zone);
    let day = |t: &str| match t.parse::<jiff::Timestamp>() {
        Ok(ts) => crate::notify::when::format_day(ts.as_millisecond(), &f.zone),
        Err(_) => day(t),
    };
    let by = |who: &Option<String>| by_whom(who.as_deref().unwrap_or_default());
    Some(match f.state {
        Some(UserState::Granted) if f.held => {
            "held by the circuit breaker: the directory took their entitlement, and the seat stays until an admin decides".to_owned()
        }
        Some(UserState::Granted) => return None,
        Some(UserState::Releasing) => match f.release_at {
            Some(r) => format!("no longer entitled: keeps the seat until {} (the grace period)", at(r)),
            None => "no longer entitled: keeps the seat for the grace period".to_owned(),
        },
        Some(UserState::Blocked) => {
            if let Some((group, max)) = &f.ceiling {
                format!("{group} is at its ceiling of {max}")
            } else if f.in_use >= f.capacity {
                let mut s = match f.capacity {
                    1 => "the only seat is in use".to_owned(),
                    n => format!("all {n} seats are in use"),
                };
                match f.ahead {
                    Some(0) | None => s.push_str(&format!("; {} is next", f.user)),
                    Some(1) => s.push_str(&format!("; 1 person is ahead of {}", f.user)),
                    Some(n) => s.push_str(&format!("; {n} people are ahead of {}", f.user)),
                }
                if let Some((when, whose)) = &f.next_free {
                    s.push_str(&format!(
                        "; the next seat frees at {} ({whose}'s grace period ends)",
                        at(*when)
                    ));
                }
                s
            } else if !f.auto_promote {
                "a seat is free, and an admin gives it: automatic promotion is off".to_owned()
            } else {
                "the free seats are kept for other groups' reserves".to_owned()
            }
        }
        Some(UserState::None) | None => match &f.override_ {
            Some((kind, who, since)) if kind == "exclude" => {
                format!("excluded by {} on {}", by(who), day(since))
            }
            Some((kind, _, since)) if kind == "idle" => {
                format!("reclaimed on {}: not used for too long (a reported use brings it back)", day(since))
            }
            _ => match f.active {
                None => "not in the directory".to_owned(),
                Some(false) => "inactive in the directory".to_owned(),
                Some(true) => "not in a selected group".to_owned(),
            },
        },
    })
}

/// Who set an override, as the audit log names them (`console:operator`, `cli:ana`,
/// `tenant-admin:<id>`), in words.
fn by_whom(actor: &str) -> String {
    let actor = actor.strip_prefix("console:").unwrap_or(actor);
    match actor {
        "operator" | "admin" => "the operator".into(),
        "cli" => "an admin on the command line".into(),
        a if a.starts_with("tenant-admin") => "a tenant admin".into(),
        a if a.starts_with("cli:") => format!("{} on the command line", &a[4..]),
        _ => "an admin".into(),
    }
}

/// The facts shared by every seat of license `l`: (capacity, in use, auto-promotion, the next
/// seat to free, the tenant's zone, the groups at their ceiling by group id).
pub(in crate::store) struct LicenseFacts {
    capacity: i64,
    in_use: i64,
    auto_promote: bool,
    next_free: Option<(Millis, String)>,
    zone: String,
    ceilings: Vec<(String, String, i64)>,
    /// The selected groups in the license's order: (id, display name).
    selected: Vec<(String, String)>,
}

pub(in crate::store) fn license_facts(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
) -> Result<LicenseFacts> {
    let v = view(c, l)?;
    let next_free: Option<(Millis, String)> = c
        .prepare_cached(
            "SELECT s.release_at, coalesce(u.user_name, s.user_id) FROM seats s
             LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.user_id
             WHERE s.license_rk = ? AND s.state = 'releasing' AND s.release_at IS NOT NULL
             ORDER BY s.release_at, s.user_id LIMIT 1",
        )?
        .query_row([l], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let zone: String = c
        .prepare_cached("SELECT time_zone FROM tenants WHERE rk = ?")?
        .query_row([tenant], |r| r.get(0))?;
    let ceilings = v
        .groups
        .iter()
        .filter_map(|g| {
            let (id, max) = (g.group_id.clone()?, g.max?);
            (g.in_use.unwrap_or(0) >= max)
                .then(|| (id, g.group_name.clone().unwrap_or_default(), max))
        })
        .collect();
    let selected = v
        .groups
        .iter()
        .filter_map(|g| {
            let id = g.group_id.clone()?;
            Some((id.clone(), g.group_name.clone().unwrap_or(id)))
        })
        .collect();
    Ok(LicenseFacts {
        capacity: v.seats + v.overage_seats,
        in_use: v.granted + v.releasing,
        auto_promote: v.auto_promote,
        next_free,
        zone,
        ceilings,
        selected,
    })
}

/// Fills `seat`'s `reason` and `entitledBy` from the facts (`lf`: [`license_facts`] of its
/// license).
pub(in crate::store) fn explain(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    lf: &LicenseFacts,
    seat: &mut SeatView,
) -> Result<()> {
    let override_: Option<(String, Option<String>, String)> = c
        .prepare_cached(
            "SELECT kind, set_by, created FROM overrides WHERE license_rk = ? AND user_id = ?",
        )?
        .query_row(params![l, seat.user_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let found: Option<(bool, String)> = c
        .prepare_cached("SELECT active, user_name FROM users WHERE tenant = ? AND id = ?")?
        .query_row(params![tenant, seat.user_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let active = found.as_ref().map(|f| f.0);
    let name = seat
        .user_name
        .clone()
        .or(found.map(|f| f.1))
        .unwrap_or_else(|| seat.user_id.clone());
    let release_at = seat
        .release_at
        .as_deref()
        .and_then(|r| r.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond());
    // The group that entitles them: the first selected group containing them.
    if seat.entitled_by.is_none() && seat.state != UserState::None {
        let mut tx = crate::store::allocation::tx_seats::TxSeats::new(c, tenant);
        let mut walk = crate::alloc::Allocator::new(&mut tx, 0);
        let above = walk.ancestors(&seat.user_id)?;
        seat.entitled_by = lf
            .selected
            .iter()
            .find(|(g, _)| above.contains(g))
            .map(|(_, name)| name.clone());
    }
    let facts = Facts {
        state: Some(seat.state),
        user: name,
        capacity: lf.capacity,
        in_use: lf.in_use,
        ahead: seat.position.map(|p| p - 1),
        next_free: lf.next_free.clone(),
        auto_promote: lf.auto_promote,
        ceiling: seat.group_id.as_ref().and_then(|g| {
            lf.ceilings
                .iter()
                .find(|(id, _, _)| id == g)
                .map(|(_, name, max)| (name.clone(), *max))
        }),
        override_,
        active,
        held: seat.hold.is_some(),
        release_at,
        zone: lf.zone.clone(),
    };
    seat.reason = words(&facts);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> Facts {
        Facts {
            state: Some(UserState::Blocked),
            user: "hugo@contoso.com".into(),
            capacity: 32,
            in_use: 32,
            ahead: Some(2),
            auto_promote: true,
            active: Some(true),
            zone: "Europe/Paris".into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_reason_in_the_admins_words() {
        assert_eq!(
            words(&waiting()).unwrap(),
            "all 32 seats are in use; 2 people are ahead of hugo@contoso.com"
        );
        let soon = Facts {
            next_free: Some((1_796_130_480_000, "farid@contoso.com".into())),
            ahead: Some(0),
            ..waiting()
        };
        assert_eq!(
            words(&soon).unwrap(),
            "all 32 seats are in use; hugo@contoso.com is next; the next seat frees at Tue 1 Dec 2026, 14:08 CET (farid@contoso.com's grace period ends)"
        );
        let capped = Facts {
            ceiling: Some(("Sales".into(), 8)),
            ..waiting()
        };
        assert_eq!(words(&capped).unwrap(), "Sales is at its ceiling of 8");
        let manual = Facts {
            in_use: 30,
            auto_promote: false,
            ..waiting()
        };
        assert!(words(&manual)
            .unwrap()
            .contains("automatic promotion is off"));
        let reserved = Facts {
            in_use: 30,
            ..waiting()
        };
        assert!(words(&reserved).unwrap().contains("reserves"));
        let none = |o: Option<(&str, Option<&str>)>, active: Option<bool>| Facts {
            state: Some(UserState::None),
            override_: o.map(|(k, w)| {
                (
                    k.to_owned(),
                    w.map(str::to_owned),
                    "2026-12-03T09:00:00Z".to_owned(),
                )
            }),
            active,
            ..waiting()
        };
        assert_eq!(
            words(&none(Some(("exclude", Some("cli:ana"))), Some(true))).unwrap(),
            "excluded by ana on the command line on Thu 3 Dec 2026"
        );
        assert!(words(&none(Some(("idle", None)), Some(true)))
            .unwrap()
            .starts_with("reclaimed on Thu 3 Dec 2026"));
        assert_eq!(
            words(&none(None, Some(true))).unwrap(),
            "not in a selected group"
        );
        assert_eq!(
            words(&none(None, Some(false))).unwrap(),
            "inactive in the directory"
        );
        assert_eq!(words(&none(None, None)).unwrap(), "not in the directory");
        let held = Facts {
            state: Some(UserState::Granted),
            held: true,
            ..waiting()
        };
        assert!(words(&held)
            .unwrap()
            .starts_with("held by the circuit breaker"));
        let granted = Facts {
            state: Some(UserState::Granted),
            ..waiting()
        };
        assert_eq!(words(&granted), None);
        let releasing = Facts {
            state: Some(UserState::Releasing),
            release_at: Some(1_796_130_480_000),
            ..waiting()
        };
        assert_eq!(
            words(&releasing).unwrap(),
            "no longer entitled: keeps the seat until Tue 1 Dec 2026, 14:08 CET (the grace period)"
        );
    }
}
