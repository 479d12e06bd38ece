//! A license's group selection: how a license names a group (id, externalId or displayName),
//! the selectors as stored in their order with each group's reserve and ceiling, resolving a
//! selector to a group (a pending selector waits for its group to arrive), and what changing
//! the selection does to seats (the allocator runs in the same write).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::alloc::{Allocator, Cause, LicenseKey, Millis, UserId};
use crate::scim::resource::fold;
use crate::store::engine::sql::{params, Db};
use crate::store::engine::time::rfc3339;
use crate::store::{Error, Result, TenantKey};

/// How a license names a group it selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Selector {
    #[serde(rename = "id")]
    Id(String),
    #[serde(rename = "externalId")]
    ExternalId(String),
    #[serde(rename = "displayName")]
    DisplayName(String),
}

impl Selector {
    /// The selector's kind (`id`, `externalId`, `displayName`) and value.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Selector::Id(v) => ("id", v),
            Selector::ExternalId(v) => ("externalId", v),
            Selector::DisplayName(v) => ("displayName", v),
        }
    }
    pub(in crate::store) fn from_parts(kind: &str, value: String) -> Selector {
        match kind {
            "id" => Selector::Id(value),
            "externalId" => Selector::ExternalId(value),
            _ => Selector::DisplayName(value),
        }
    }
}

/// A group a license selects, with the seats kept for its members (`reserve`) and the most
/// they may hold (`max`): see `alloc::pools`. On the wire: `{"displayName": "Sales",
/// "reserve": 5, "max": 20}` (or `id` / `externalId`); both limits are optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "GroupEntry")]
pub struct GroupSelection {
    pub selector: Selector,
    pub reserve: i64,
    pub max: Option<i64>,
}

impl From<Selector> for GroupSelection {
    fn from(selector: Selector) -> Self {
        GroupSelection {
            selector,
            reserve: 0,
            max: None,
        }
    }
}

impl From<&SelectorView> for GroupSelection {
    fn from(v: &SelectorView) -> Self {
        GroupSelection {
            selector: v.selector.clone(),
            reserve: v.reserve,
            max: v.max,
        }
    }
}

/// A group selection as sent: exactly one of `id`, `externalId`, `displayName`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub id: Option<String>,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
    /// Seats kept for this group's members (default 0).
    #[serde(default)]
    pub reserve: i64,
    /// At most this many seats for this group's members (default: no ceiling).
    pub max: Option<i64>,
}

impl TryFrom<GroupEntry> for GroupSelection {
    type Error = String;
    fn try_from(e: GroupEntry) -> std::result::Result<Self, String> {
        let selector =
            match (e.id, e.external_id, e.display_name) {
                (Some(v), None, None) => Selector::Id(v),
                (None, Some(v), None) => Selector::ExternalId(v),
                (None, None, Some(v)) => Selector::DisplayName(v),
                _ => return Err(
                    "a group is named by exactly one of \"id\", \"externalId\" or \"displayName\""
                        .into(),
                ),
            };
        Ok(GroupSelection {
            selector,
            reserve: e.reserve,
            max: e.max,
        })
    }
}

pub(in crate::store) fn validate_selectors(groups: &[GroupSelection]) -> Result<()> {
    if groups.len() > 1000 {
        return Err(Error::Invalid("at most 1000 groups per license".into()));
    }
    if groups
        .iter()
        .any(|s| s.selector.parts().1.trim().is_empty())
    {
        return Err(Error::Invalid(
            "a group selector needs a non-empty value".into(),
        ));
    }
    for g in groups {
        let name = g.selector.parts().1;
        if !(0..=10_000_000).contains(&g.reserve) {
            return Err(Error::Invalid(format!(
                "the reserve of group {name:?} must be between 0 and 10000000"
            )));
        }
        match g.max {
            Some(m) if !(0..=10_000_000).contains(&m) => {
                return Err(Error::Invalid(format!(
                    "the max of group {name:?} must be between 0 and 10000000"
                )))
            }
            Some(m) if m < g.reserve => {
                return Err(Error::Invalid(format!(
                    "the max of group {name:?} ({m}) is below its reserve ({})",
                    g.reserve
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The sum of a license's reserves cannot exceed its seat count.
pub(in crate::store) fn validate_reserves(seats: i64, reserved: i64) -> Result<()> {
    if reserved > seats {
        return Err(Error::Invalid(format!(
            "the groups' reserves add up to {reserved} seats, more than the license's {seats}"
        )));
    }
    Ok(())
}

/// `groups` without repeated selectors (the first of each is kept).
pub(in crate::store) fn distinct(groups: &[GroupSelection]) -> Vec<&GroupSelection> {
    let mut seen = HashSet::new();
    groups.iter().filter(|g| seen.insert(&g.selector)).collect()
}

/// Resolves a selector to a group id (the oldest match).
pub(in crate::store) fn resolve(c: &Db, tenant: TenantKey, s: &Selector) -> Result<Option<String>> {
    Ok(match matches(c, tenant, s)?.as_slice() {
        [one] => Some(one.clone()),
        // None, or several (same-named groups where the tenant allows them): a name that
        // names two groups selects neither until the admin picks one by id.
        _ => None,
    })
}

/// The groups a selector names (at most two: more is as ambiguous as two).
pub(in crate::store) fn matches(c: &Db, tenant: TenantKey, s: &Selector) -> Result<Vec<String>> {
    let sql = match s {
        Selector::Id(_) => "SELECT id FROM groups WHERE tenant = ? AND id = ?",
        Selector::ExternalId(_) => {
            "SELECT id FROM groups WHERE tenant = ? AND external_id = ? ORDER BY rk LIMIT 2"
        }
        Selector::DisplayName(_) => {
            "SELECT id FROM groups WHERE tenant = ? AND display_name_key = ? ORDER BY rk LIMIT 2"
        }
    };
    let value = match s {
        Selector::DisplayName(v) => fold(v),
        other => other.parts().1.to_owned(),
    };
    c.prepare_cached(sql)?
        .query_all(params![tenant, value], |r| r.get(0))
}

pub(in crate::store) fn selectors(
    c: &Db,
    l: LicenseKey,
) -> Result<Vec<(Selector, Option<String>)>> {
    let mut st = c.prepare_cached(
        "SELECT selector, value, group_id FROM license_groups WHERE license_rk = ?",
    )?;
    st.query_all([l], |r| {
        Ok((
            Selector::from_parts(&r.get::<_, String>(0)?, r.get(1)?),
            r.get(2)?,
        ))
    })
}

/// Sets a license's selectors, in order, with their limits; returns (groups no longer
/// selected, groups newly selected).
pub(in crate::store) fn set_selectors(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    at: Millis,
    wanted: &[GroupSelection],
) -> Result<(Vec<String>, Vec<String>)> {
    let wanted = distinct(wanted);
    let before = selectors(c, l)?;
    let old_groups: HashSet<String> = before.iter().filter_map(|(_, g)| g.clone()).collect();
    let wanted_set: HashSet<&Selector> = wanted.iter().map(|g| &g.selector).collect();
    for (s, _) in &before {
        if !wanted_set.contains(s) {
            let (kind, value) = s.parts();
            c.prepare_cached(
                "DELETE FROM license_groups WHERE license_rk = ? AND selector = ? AND value = ?",
            )?
            .execute(params![l, kind, value])?;
        }
    }
    let had: HashSet<&Selector> = before.iter().map(|(s, _)| s).collect();
    for (position, g) in wanted.iter().enumerate() {
        let s = &g.selector;
        let (kind, value) = s.parts();
        let position = position as i64;
        if had.contains(s) {
            c.prepare_cached(
                "UPDATE license_groups SET position = ?, reserve = ?, max_seats = ? WHERE license_rk = ? AND selector = ? AND value = ?",
            )?
            .execute(params![position, g.reserve, g.max, l, kind, value])?;
            continue;
        }
        let group = resolve(c, tenant, s)?;
        let pending = group.is_none().then(|| rfc3339(at));
        c.prepare_cached(
            "INSERT INTO license_groups (license_rk, tenant, selector, value, group_id, pending_since, position, reserve, max_seats) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![l, tenant, kind, value, group, pending, position, g.reserve, g.max])?;
    }
    let new_groups: HashSet<String> = selectors(c, l)?
        .into_iter()
        .filter_map(|(_, g)| g)
        .collect();
    let removed = old_groups.difference(&new_groups).cloned().collect();
    let added = new_groups.difference(&old_groups).cloned().collect();
    Ok((removed, added))
}

/// Re-allocates after a license's selection changed.
pub(in crate::store) fn selection_changed<S: crate::alloc::SeatStore<Error = Error>>(
    a: &mut Allocator<S>,
    l: LicenseKey,
    removed: &[String],
    added: &[String],
    notify: impl FnMut(&mut Allocator<S>) -> Result<()>,
) -> Result<()> {
    let gone = closure(a, removed)?;
    // An admin's unselection: the grace applies, the circuit breaker does not. The seats it
    // frees are given out with the newly selected groups' users, in one order.
    a.reevaluate_leaving(l, &gone, Cause::License)?;
    drop(gone);
    let fresh = closure(a, added)?;
    a.reevaluate_selected(l, fresh, notify)
}

/// The users of `groups` and of their nested groups, sorted, each once. One group's closure is
/// taken as it is (already sorted and distinct), without a copy.
fn closure<S: crate::alloc::SeatStore<Error = Error>>(
    a: &mut Allocator<S>,
    groups: &[String],
) -> Result<Vec<UserId>> {
    if let [one] = groups {
        return a.member_closure(one);
    }
    let mut users = Vec::new();
    for g in groups {
        users.extend(a.member_closure(g)?);
    }
    users.sort_unstable();
    users.dedup();
    Ok(users)
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SelectorView {
    #[serde(flatten)]
    pub selector: Selector,
    #[serde(rename = "groupId")]
    pub group_id: Option<String>,
    /// The selected group's display name now (`null` while pending).
    #[serde(rename = "groupName")]
    pub group_name: Option<String>,
    pub pending: bool,
    #[serde(rename = "pendingSince", skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<String>,
    /// The name (or externalId) names several groups: the selector selects none of them
    /// until the admin picks one by id (present only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ambiguous: bool,
    /// Seats kept for this group's members, and the most they may hold (`null`: no ceiling).
    pub reserve: i64,
    pub max: Option<i64>,
    /// In a license with reservations or ceilings: the seats counting against this group
    /// (granted and releasing) and its members waiting. Absent in other licenses.
    #[serde(rename = "inUse", skip_serializing_if = "Option::is_none")]
    pub in_use: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<i64>,
}
