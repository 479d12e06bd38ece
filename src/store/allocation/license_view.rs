//! A license as read: its view (seat count, policy, selected groups with their use, counters),
//! found by id or name, and a license named by id and name. Read by every part that reports on
//! a license; written only by `licenses`.

use std::collections::HashSet;

use serde::Serialize;

use crate::alloc::{LicenseKey, OnLowered};
use crate::notify::Recipient;
use crate::scim::resource::fold;
use crate::store::allocation::selection::{Selector, SelectorView};
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::{Error, Result, TenantKey};

/// A license named by id and name.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LicenseRef {
    pub id: String,
    pub name: String,
}

/// Whether a license's allocation is enforced outward.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LicenseMode {
    /// Today's behaviour: the product is told each seat, emails and webhooks go out.
    #[default]
    Enforce,
    /// Shadow mode: the allocator runs as usual on what the directory sends, but nothing is
    /// enforced outward: the product API answers `enforced: false`, and no email or webhook is
    /// sent for the license. Its shadow report shows what enforcing would do against the seats
    /// carried over from before.
    Observe,
}

impl LicenseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseMode::Enforce => "enforce",
            LicenseMode::Observe => "observe",
        }
    }
    pub fn parse(s: &str) -> Option<LicenseMode> {
        match s {
            "enforce" => Some(LicenseMode::Enforce),
            "observe" => Some(LicenseMode::Observe),
            _ => None,
        }
    }
}

/// Whether license `l` observes (shadow mode): nothing about it is sent outward.
pub(in crate::store) fn observing(c: &Db, l: LicenseKey) -> Result<bool> {
    Ok(c.prepare_cached("SELECT mode FROM licenses WHERE rk = ?")?
        .query_row([l], |r| r.get::<_, String>(0))
        .optional()?
        .is_some_and(|m| m == "observe"))
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LicenseView {
    pub id: String,
    pub name: String,
    pub seats: i64,
    /// `enforce` (the default) or `observe` (shadow mode, see `/shadow`).
    pub mode: LicenseMode,
    /// People carried over as today's seat holders (`/holders`), served first when the
    /// license switches to enforce; 0 once it has.
    pub carried_over: i64,
    pub groups: Vec<SelectorView>,
    pub auto_promote: bool,
    pub grace_seconds: i64,
    pub on_capacity_lowered: OnLowered,
    pub free_on_delete: bool,
    /// Recipients of this license's emails, besides the tenant's.
    pub notify: Vec<Recipient>,
    /// Idle-seat reclaim: after this many days without a reported use (0: never) ...
    pub reclaim_idle_days: i64,
    /// ... told this many days before.
    pub reclaim_notice_days: i64,
    /// Agreed overage (seats, or a share of `seats`), and the extra seats it allows now: up to
    /// `seats + overage_seats` are granted; use above `seats` is billed at true-up.
    pub overage: i64,
    pub overage_percent: i64,
    pub overage_seats: i64,
    pub granted: i64,
    pub blocked: i64,
    pub releasing: i64,
    /// Granted seats whose loss the circuit breaker holds (counted in `granted`).
    pub held: i64,
    pub created: String,
    pub updated: String,
}

/// A license's seats by state.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default, utoipa::ToSchema)]
pub struct SeatCounts {
    pub granted: i64,
    pub blocked: i64,
    pub releasing: i64,
}

pub(in crate::store) fn license_key(c: &Db, tenant: TenantKey, key: &str) -> Result<LicenseKey> {
    c.prepare_cached("SELECT rk FROM licenses WHERE tenant = ?1 AND (id = ?2 OR lower(name) = lower(?2)) ORDER BY id = ?2 DESC LIMIT 1")?
        .query_row(params![tenant, key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("license {key:?}")))
}

pub(in crate::store) fn user_by_name(
    c: &Db,
    tenant: TenantKey,
    user_name: &str,
) -> Result<(String, String)> {
    c.prepare_cached("SELECT id, user_name FROM users WHERE tenant = ? AND user_name_key = ?")?
        .query_row(params![tenant, fold(user_name)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("user {user_name:?}")))
}

pub(in crate::store) fn view(c: &Db, l: LicenseKey) -> Result<LicenseView> {
    let mut st = c.prepare_cached(
        "SELECT lg.selector, lg.value, lg.group_id, lg.pending_since, g.display_name, lg.reserve, lg.max_seats, lg.tenant
         FROM license_groups lg LEFT JOIN groups g ON g.tenant = lg.tenant AND g.id = lg.group_id
         WHERE lg.license_rk = ? ORDER BY lg.position, lg.selector, lg.value",
    )?;
    let mut tenant = None;
    let mut groups = st.query_all([l], |r| {
        let kind: String = r.get(0)?;
        let value: String = r.get(1)?;
        let group_id: Option<String> = r.get(2)?;
        tenant = Some(r.get::<_, TenantKey>(7)?);
        Ok(SelectorView {
            selector: Selector::from_parts(&kind, value),
            pending: group_id.is_none(),
            group_id,
            pending_since: r.get(3)?,
            ambiguous: false,
            group_name: r.get(4)?,
            reserve: r.get(5)?,
            max: r.get(6)?,
            in_use: None,
            waiting: None,
        })
    })?;
    if let Some(t) = tenant {
        for g in &mut groups {
            if !matches!(g.selector, Selector::Id(_)) {
                g.ambiguous =
                    crate::store::allocation::selection::matches(c, t, &g.selector)?.len() > 1;
            }
        }
    }
    if groups.iter().any(|g| g.reserve > 0 || g.max.is_some()) {
        let use_of = pool_counts(c, l)?;
        let mut seen = HashSet::new();
        for g in &mut groups {
            // A group named by two selectors counts at the first.
            let first = g.group_id.as_ref().is_none_or(|id| seen.insert(id.clone()));
            let (in_use, waiting) = match (&g.group_id, first) {
                (Some(id), true) => use_of.get(id).copied().unwrap_or((0, 0)),
                _ => (0, 0),
            };
            g.in_use = Some(in_use);
            g.waiting = Some(waiting);
        }
    }
    c.prepare_cached(
        "SELECT id, name, seats, auto_promote, grace_seconds, on_capacity_lowered, free_on_delete, granted, blocked, releasing, created, updated, notify,
                reclaim_idle_days, reclaim_notice_days,
                (SELECT count(*) FROM seats s WHERE s.license_rk = licenses.rk AND s.hold IS NOT NULL),
                overage, overage_percent, mode,
                (SELECT count(*) FROM carried_holders h WHERE h.license_rk = licenses.rk)
         FROM licenses WHERE rk = ?",
    )?
    .query_row([l], |r| {
        let lowered: String = r.get(5)?;
        Ok(LicenseView {
            id: r.get(0)?,
            name: r.get(1)?,
            seats: r.get(2)?,
            mode: LicenseMode::parse(&r.get::<_, String>(18)?).unwrap_or_default(),
            carried_over: r.get(19)?,
            groups,
            auto_promote: r.get(3)?,
            grace_seconds: r.get(4)?,
            on_capacity_lowered: OnLowered::parse(&lowered).unwrap_or(OnLowered::Keep),
            free_on_delete: r.get(6)?,
            notify: serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or_default(),
            reclaim_idle_days: r.get(13)?,
            reclaim_notice_days: r.get(14)?,
            overage: r.get(16)?,
            overage_percent: r.get(17)?,
            overage_seats: crate::capacity::overage_seats(r.get(2)?, r.get(16)?, r.get(17)?),
            granted: r.get(7)?,
            blocked: r.get(8)?,
            releasing: r.get(9)?,
            held: r.get(15)?,
            created: r.get(10)?,
            updated: r.get(11)?,
        })
    })
}

/// Seats per pool of a license: (in use, waiting) by group id.
pub(in crate::store) fn pool_counts(
    c: &Db,
    l: LicenseKey,
) -> Result<std::collections::HashMap<String, (i64, i64)>> {
    let mut st = c.prepare_cached(
        "SELECT pool, state, count(*) FROM seats WHERE license_rk = ? AND pool IS NOT NULL GROUP BY pool, state",
    )?;
    let mut out: std::collections::HashMap<String, (i64, i64)> = Default::default();
    for row in st.query_map([l], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (pool, state, n) = row?;
        let e = out.entry(pool).or_insert((0, 0));
        if state == "blocked" {
            e.1 += n;
        } else {
            e.0 += n;
        }
    }
    Ok(out)
}
