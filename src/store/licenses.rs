//! Licenses and everything the admin API does with seats: selection (with pending selectors),
//! policy, overrides, manual grants, dry-run previews, the reconciler pass, tenant status, the
//! seat-event feed and the audit log. Every change runs the allocator in its own transaction.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::outbox;
use super::ranks::{Lookup, RankCache};
use super::seats::{allocate, rfc3339, TxSeats};
use super::{in_snapshot, Error, Result, Store, TenantKey};
use crate::alloc::{
    Allocator, Cause, LicenseKey, Millis, OnLowered, OverrideKind, Refusal, Report, SeatState,
    SeatStore,
};
use crate::notify::Kind;
use crate::scim::resource::fold;

/// Longest release grace: the 72-hour reconciliation window.
pub const MAX_GRACE_SECONDS: i64 = 259_200;

/// How a license names a group it selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Selector {
    #[serde(rename = "id")]
    Id(String),
    #[serde(rename = "externalId")]
    ExternalId(String),
    #[serde(rename = "displayName")]
    DisplayName(String),
}

impl Selector {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Selector::Id(v) => ("id", v),
            Selector::ExternalId(v) => ("externalId", v),
            Selector::DisplayName(v) => ("displayName", v),
        }
    }
    fn from_parts(kind: &str, value: String) -> Selector {
        match kind {
            "id" => Selector::Id(value),
            "externalId" => Selector::ExternalId(value),
            _ => Selector::DisplayName(value),
        }
    }
}

/// A license as created (every policy field has its default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseSpec {
    pub name: String,
    pub seats: i64,
    #[serde(default)]
    pub groups: Vec<Selector>,
    #[serde(default = "yes")]
    pub auto_promote: bool,
    #[serde(default)]
    pub grace_seconds: i64,
    #[serde(default = "keep")]
    pub on_capacity_lowered: OnLowered,
    #[serde(default = "yes")]
    pub free_on_delete: bool,
}

fn yes() -> bool {
    true
}
fn keep() -> OnLowered {
    OnLowered::Keep
}

/// A change to a license: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseChange {
    pub name: Option<String>,
    pub seats: Option<i64>,
    pub groups: Option<Vec<Selector>>,
    pub auto_promote: Option<bool>,
    pub grace_seconds: Option<i64>,
    pub on_capacity_lowered: Option<OnLowered>,
    pub free_on_delete: Option<bool>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SelectorView {
    #[serde(flatten)]
    pub selector: Value,
    #[serde(rename = "groupId")]
    pub group_id: Option<String>,
    pub pending: bool,
    #[serde(rename = "pendingSince", skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LicenseView {
    pub id: String,
    pub name: String,
    pub seats: i64,
    pub groups: Vec<SelectorView>,
    pub auto_promote: bool,
    pub grace_seconds: i64,
    pub on_capacity_lowered: OnLowered,
    pub free_on_delete: bool,
    pub granted: i64,
    pub blocked: i64,
    pub releasing: i64,
    pub created: String,
    pub updated: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeatView {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    pub state: &'static str,
    /// When the user became entitled (the waitlist order).
    #[serde(rename = "entitledAt")]
    pub entitled_at: Option<String>,
    pub since: Option<String>,
    pub position: Option<i64>,
    #[serde(rename = "releaseAt")]
    pub release_at: Option<String>,
    pub pinned: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeatsView {
    pub capacity: i64,
    pub granted: i64,
    pub blocked: i64,
    pub releasing: i64,
    pub seats: Vec<SeatView>,
}

/// Who would be granted, blocked, released, ... by a proposed change.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct PreviewView {
    pub granted: Vec<String>,
    pub promoted: Vec<String>,
    pub blocked: Vec<String>,
    pub releasing: Vec<String>,
    pub released: Vec<String>,
    pub capacity: i64,
    pub after: serde_json::Map<String, Value>,
}

fn validate_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.len() > 200 || n.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "a license name is 1 to 200 printable characters".into(),
        ));
    }
    Ok(n.to_owned())
}

fn validate_seats(seats: i64) -> Result<i64> {
    if !(0..=10_000_000).contains(&seats) {
        return Err(Error::Invalid(
            "seats must be between 0 and 10000000".into(),
        ));
    }
    Ok(seats)
}

fn validate_grace(g: i64) -> Result<i64> {
    if !(0..=MAX_GRACE_SECONDS).contains(&g) {
        return Err(Error::Invalid(format!(
            "grace_seconds must be between 0 and {MAX_GRACE_SECONDS}"
        )));
    }
    Ok(g)
}

fn validate_selectors(groups: &[Selector]) -> Result<()> {
    if groups.len() > 1000 {
        return Err(Error::Invalid("at most 1000 groups per license".into()));
    }
    if groups.iter().any(|s| s.parts().1.trim().is_empty()) {
        return Err(Error::Invalid(
            "a group selector needs a non-empty value".into(),
        ));
    }
    Ok(())
}

pub(super) fn audit(
    c: &Connection,
    tenant: TenantKey,
    at: Millis,
    actor: &str,
    action: &str,
    detail: Value,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO audit (tenant, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![tenant, at, actor, action, detail.to_string()])?;
    Ok(())
}

fn license_key(c: &Connection, tenant: TenantKey, key: &str) -> Result<LicenseKey> {
    c.prepare_cached("SELECT rk FROM licenses WHERE tenant = ?1 AND (id = ?2 OR name = ?2 COLLATE NOCASE) ORDER BY id = ?2 DESC LIMIT 1")?
        .query_row(params![tenant, key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("license {key:?}")))
}

fn user_by_name(c: &Connection, tenant: TenantKey, user_name: &str) -> Result<(String, String)> {
    c.prepare_cached("SELECT id, user_name FROM users WHERE tenant = ? AND user_name_key = ?")?
        .query_row(params![tenant, fold(user_name)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("user {user_name:?}")))
}

fn view(c: &Connection, l: LicenseKey) -> Result<LicenseView> {
    let mut st = c.prepare_cached(
        "SELECT selector, value, group_id, pending_since FROM license_groups WHERE license_rk = ? ORDER BY selector, value",
    )?;
    let groups = st
        .query_map([l], |r| {
            let kind: String = r.get(0)?;
            let value: String = r.get(1)?;
            let group_id: Option<String> = r.get(2)?;
            Ok(SelectorView {
                selector: json!({ kind: value }),
                pending: group_id.is_none(),
                group_id,
                pending_since: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(c.prepare_cached(
        "SELECT id, name, seats, auto_promote, grace_seconds, on_capacity_lowered, free_on_delete, granted, blocked, releasing, created, updated
         FROM licenses WHERE rk = ?",
    )?
    .query_row([l], |r| {
        let lowered: String = r.get(5)?;
        Ok(LicenseView {
            id: r.get(0)?,
            name: r.get(1)?,
            seats: r.get(2)?,
            groups,
            auto_promote: r.get(3)?,
            grace_seconds: r.get(4)?,
            on_capacity_lowered: if lowered == "block_newest" { OnLowered::BlockNewest } else { OnLowered::Keep },
            free_on_delete: r.get(6)?,
            granted: r.get(7)?,
            blocked: r.get(8)?,
            releasing: r.get(9)?,
            created: r.get(10)?,
            updated: r.get(11)?,
        })
    })?)
}

/// Resolves a selector to a group id (the oldest match).
fn resolve(c: &Connection, tenant: TenantKey, s: &Selector) -> Result<Option<String>> {
    let sql = match s {
        Selector::Id(_) => "SELECT id FROM groups WHERE tenant = ? AND id = ?",
        Selector::ExternalId(_) => {
            "SELECT id FROM groups WHERE tenant = ? AND external_id = ? ORDER BY rk LIMIT 1"
        }
        Selector::DisplayName(_) => {
            "SELECT id FROM groups WHERE tenant = ? AND display_name_key = ? ORDER BY rk LIMIT 1"
        }
    };
    let value = match s {
        Selector::DisplayName(v) => fold(v),
        other => other.parts().1.to_owned(),
    };
    Ok(c.prepare_cached(sql)?
        .query_row(params![tenant, value], |r| r.get(0))
        .optional()?)
}

fn selectors(c: &Connection, l: LicenseKey) -> Result<Vec<(Selector, Option<String>)>> {
    let mut st = c.prepare_cached(
        "SELECT selector, value, group_id FROM license_groups WHERE license_rk = ?",
    )?;
    let v = st
        .query_map([l], |r| {
            Ok((
                Selector::from_parts(&r.get::<_, String>(0)?, r.get(1)?),
                r.get(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Sets a license's selectors; returns (groups no longer selected, groups newly selected).
fn set_selectors(
    c: &Connection,
    tenant: TenantKey,
    l: LicenseKey,
    at: Millis,
    wanted: &[Selector],
) -> Result<(Vec<String>, Vec<String>)> {
    let before = selectors(c, l)?;
    let old_groups: HashSet<String> = before.iter().filter_map(|(_, g)| g.clone()).collect();
    let wanted_set: HashSet<&Selector> = wanted.iter().collect();
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
    for s in wanted {
        if had.contains(s) {
            continue;
        }
        let (kind, value) = s.parts();
        let group = resolve(c, tenant, s)?;
        let pending = group.is_none().then(|| rfc3339(at));
        c.prepare_cached(
            "INSERT OR IGNORE INTO license_groups (license_rk, tenant, selector, value, group_id, pending_since) VALUES (?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![l, tenant, kind, value, group, pending])?;
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
fn selection_changed(
    a: &mut Allocator<TxSeats>,
    l: LicenseKey,
    removed: &[String],
    added: &[String],
    notify: impl FnMut(&mut Allocator<TxSeats>) -> Result<()>,
) -> Result<()> {
    let mut gone = Vec::new();
    for g in removed {
        gone.extend(a.member_closure(g)?);
    }
    gone.sort();
    gone.dedup();
    a.reevaluate(l, &gone, Cause::Directory, false)?;
    let mut fresh = Vec::new();
    for g in added {
        fresh.extend(a.member_closure(g)?);
    }
    fresh.sort();
    fresh.dedup();
    a.reevaluate_selected(l, fresh, notify)
}

fn apply_change(
    c: &Connection,
    tenant: TenantKey,
    l: LicenseKey,
    at: Millis,
    change: &LicenseChange,
) -> Result<Report> {
    let mut view_now = TxSeats { c, tenant };
    let old = view_now
        .policy(l)?
        .ok_or_else(|| Error::NotFound("license".into()))?;
    let set = |col: &str, v: &dyn rusqlite::ToSql| -> Result<()> {
        c.execute(
            &format!("UPDATE licenses SET {col} = ? WHERE rk = ?"),
            params![v, l],
        )?;
        Ok(())
    };
    if let Some(n) = &change.name {
        let n = validate_name(n)?;
        set("name", &n).map_err(|e| match e {
            Error::Sqlite(ref s) if super::is_unique_violation(s) => {
                Error::Conflict(format!("a license named {n:?} exists"))
            }
            e => e,
        })?;
    }
    if let Some(s) = change.seats {
        set("seats", &validate_seats(s)?)?;
    }
    if let Some(b) = change.auto_promote {
        set("auto_promote", &b)?;
    }
    if let Some(g) = change.grace_seconds {
        set("grace_seconds", &validate_grace(g)?)?;
    }
    if let Some(p) = change.on_capacity_lowered {
        set(
            "on_capacity_lowered",
            &if p == OnLowered::BlockNewest {
                "block_newest"
            } else {
                "keep"
            },
        )?;
    }
    if let Some(b) = change.free_on_delete {
        set("free_on_delete", &b)?;
    }
    set("updated", &rfc3339(at))?;
    let (removed, added) = match &change.groups {
        Some(g) => {
            validate_selectors(g)?;
            set_selectors(c, tenant, l, at, g)?
        }
        None => (Vec::new(), Vec::new()),
    };
    let in_use_before = view_now.counts(l)?.in_use();
    let report = allocate(c, tenant, at, |a| {
        // Blocked users are written to the outbox slice by slice (see `reevaluate_selected`).
        let notify =
            |a: &mut Allocator<TxSeats>| outbox::record_blocked(c, tenant, at, &mut a.report);
        selection_changed(a, l, &removed, &added, notify)?;
        if let Some(s) = change.seats {
            if s != old.capacity {
                a.capacity_changed(l, old.capacity)?;
            }
        }
        if change.auto_promote == Some(true) && !old.auto_promote {
            a.fill(l, &[], false)?;
        }
        Ok(())
    })?;
    if let Some(s) = change
        .seats
        .filter(|s| *s < old.capacity && *s < in_use_before)
    {
        let policy = change.on_capacity_lowered.unwrap_or(old.on_lowered);
        outbox::record(
            c,
            tenant,
            Kind::CapacityLowered,
            l,
            at,
            vec![
                json!({"from": old.capacity, "to": s, "inUse": in_use_before,
                        "policy": if policy == OnLowered::BlockNewest { "block_newest" } else { "keep" }}),
            ],
        )?;
    }
    // A capacity change moves the thresholds even when no seat changed.
    outbox::check_threshold(c, tenant, l, at)?;
    Ok(report)
}

/// One user's seat in license `l`. On a read snapshot pass `ranks`: a long waitlist's position
/// then comes from its in-memory copy; a write job passes `None` (its changes are uncommitted).
fn seat_view(
    c: &Connection,
    tenant: TenantKey,
    l: LicenseKey,
    user_id: &str,
    user_name: Option<String>,
    ranks: Option<&RankCache>,
) -> Result<SeatView> {
    try_seat_view(c, tenant, l, user_id, user_name, ranks, true)?
        .ok_or_else(|| Error::Internal("a seat view that may scan gave up".into()))
}

/// [`seat_view`]; unless `may_scan`, `None` when only a scan of a long waitlist (a count, or
/// copying its order) could give the user's position.
fn try_seat_view(
    c: &Connection,
    tenant: TenantKey,
    l: LicenseKey,
    user_id: &str,
    user_name: Option<String>,
    ranks: Option<&RankCache>,
    may_scan: bool,
) -> Result<Option<SeatView>> {
    let mut v = TxSeats { c, tenant };
    let Some(seat) = v.seat(l, user_id)? else {
        return Ok(Some(SeatView {
            user_id: user_id.to_owned(),
            user_name,
            state: "none",
            entitled_at: None,
            since: None,
            position: None,
            release_at: None,
            pinned: false,
        }));
    };
    let waiting = seat.state == SeatState::Blocked;
    let lookup = match ranks {
        Some(r) if waiting => {
            r.position(c, l, seat.pinned, seat.entitled_at, &seat.user, may_scan)?
        }
        _ => Lookup::Count,
    };
    let position = match lookup {
        Lookup::At(p) => Some(p),
        Lookup::Defer => return Ok(None),
        Lookup::Count if !waiting => None,
        Lookup::Count => {
            let ahead: i64 = c
            .prepare_cached(
                // Three index ranges of seats_order (those ahead only), not one OR over the
                // whole waitlist: the position costs what is ahead of the user.
                "SELECT (SELECT count(*) FROM seats WHERE license_rk = ?1 AND state = 'blocked' AND pinned > ?2)
                      + (SELECT count(*) FROM seats WHERE license_rk = ?1 AND state = 'blocked' AND pinned = ?2 AND entitled_at < ?3)
                      + (SELECT count(*) FROM seats WHERE license_rk = ?1 AND state = 'blocked' AND pinned = ?2 AND entitled_at = ?3 AND user_id < ?4)",
            )?
            .query_row(params![l, seat.pinned, seat.entitled_at, seat.user], |r| r.get(0))?;
            Some(ahead + 1)
        }
    };
    Ok(Some(SeatView {
        user_id: seat.user,
        user_name,
        state: seat.state.as_str(),
        entitled_at: Some(rfc3339(seat.entitled_at / 1000)),
        since: Some(rfc3339(seat.since)),
        position,
        release_at: seat.release_at.map(rfc3339),
        pinned: seat.pinned,
    }))
}

/// Expires pending references older than the tenant's window: unresolved selectors and member
/// values that name no user or group. Returns what was dropped.
fn expire_pending(c: &Connection, tenant: TenantKey, at: Millis) -> Result<Value> {
    let window: i64 = c.query_row(
        "SELECT pending_window_seconds FROM tenants WHERE rk = ?",
        [tenant],
        |r| r.get(0),
    )?;
    let cutoff = rfc3339(at - window * 1000);
    let mut st = c.prepare_cached(
        "DELETE FROM license_groups WHERE tenant = ? AND group_id IS NULL AND pending_since < ?
         RETURNING (SELECT name FROM licenses WHERE rk = license_rk), selector, value",
    )?;
    let selectors = st
        .query_map(params![tenant, cutoff], |r| {
            let (kind, value): (String, String) = (r.get(1)?, r.get(2)?);
            Ok(json!({"license": r.get::<_, Option<String>>(0)?, (kind): value}))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = c.prepare_cached(
        "SELECT m.group_rk, m.member_id, g.id FROM group_members m JOIN groups g ON g.rk = m.group_rk
         WHERE m.tenant = ?1 AND m.added < ?2
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.external_id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM groups s WHERE s.tenant = ?1 AND s.id = m.member_id)",
    )?;
    let stale = st
        .query_map(params![tenant, cutoff], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut members = Vec::new();
    for (group_rk, member, group) in stale {
        c.prepare_cached("DELETE FROM group_members WHERE group_rk = ? AND member_id = ?")?
            .execute(params![group_rk, member])?;
        c.prepare_cached(
            "UPDATE groups SET version = version + 1, last_modified = ? WHERE rk = ?",
        )?
        .execute(params![super::now(), group_rk])?;
        members.push(json!({"group": group, "member": member}));
    }
    Ok(json!({"selectors": selectors, "members": members}))
}

/// Pending references of a tenant, for its status.
fn pending(c: &Connection, tenant: TenantKey) -> Result<Value> {
    let mut st = c.prepare_cached(
        "SELECT l.name, s.selector, s.value, s.pending_since FROM license_groups s JOIN licenses l ON l.rk = s.license_rk
         WHERE s.tenant = ? AND s.group_id IS NULL ORDER BY s.pending_since",
    )?;
    let selectors = st
        .query_map([tenant], |r| {
            let (kind, value): (String, String) = (r.get(1)?, r.get(2)?);
            Ok(json!({"license": r.get::<_, String>(0)?, (kind): value, "since": r.get::<_, Option<String>>(3)?}))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = c.prepare_cached(
        "SELECT g.id, g.display_name, m.member_id, m.added FROM group_members m JOIN groups g ON g.rk = m.group_rk
         WHERE m.tenant = ?1
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.external_id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM groups s WHERE s.tenant = ?1 AND s.id = m.member_id)
         ORDER BY m.added LIMIT 1000",
    )?;
    let members = st
        .query_map([tenant], |r| {
            Ok(json!({"groupId": r.get::<_, String>(0)?, "group": r.get::<_, String>(1)?, "member": r.get::<_, String>(2)?, "since": r.get::<_, String>(3)?}))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(json!({"selectors": selectors, "members": members}))
}

/// One reconciler pass over a tenant: every license recomputed, drift repaired, due releases
/// freed, waitlists promoted, pending references expired. The report is kept as the tenant's
/// last and in the audit log.
fn reconcile_tenant(c: &Connection, tenant: TenantKey, at: Millis, actor: &str) -> Result<Value> {
    let expired = expire_pending(c, tenant, at)?;
    let licenses: Vec<LicenseKey> = {
        let mut st = c.prepare_cached("SELECT rk FROM licenses WHERE tenant = ? ORDER BY rk")?;
        let v = st
            .query_map([tenant], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        v
    };
    let report = allocate(c, tenant, at, |a| {
        for l in &licenses {
            a.reconcile(*l)?;
        }
        Ok(())
    })?;
    let mut out = serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?;
    out["at"] = json!(rfc3339(at));
    out["licenses"] = json!(licenses.len());
    out["expired"] = expired;
    c.prepare_cached("UPDATE tenants SET last_reconcile = ? WHERE rk = ?")?
        .execute(params![out.to_string(), tenant])?;
    let expired_any = ["selectors", "members"]
        .iter()
        .any(|k| out["expired"][k].as_array().is_some_and(|a| !a.is_empty()));
    if !report.is_empty() || expired_any {
        audit(c, tenant, at, actor, "reconcile", out.clone())?;
    }
    if report.repaired > 0 {
        outbox::record(
            c,
            tenant,
            Kind::DriftRepaired,
            0,
            at,
            vec![
                json!({"repaired": report.repaired, "granted": report.granted, "promoted": report.promoted,
                        "blocked": report.blocked, "releasing": report.releasing, "released": report.released, "by": actor}),
            ],
        )?;
    }
    let mut expired_items = Vec::new();
    for s in out["expired"]["selectors"].as_array().into_iter().flatten() {
        let mut item = json!({"reference": "license selector"});
        for (k, v) in s.as_object().into_iter().flatten() {
            item[k] = v.clone();
        }
        expired_items.push(item);
    }
    for m in out["expired"]["members"].as_array().into_iter().flatten() {
        expired_items
            .push(json!({"reference": "group member", "group": m["group"], "member": m["member"]}));
    }
    outbox::record(c, tenant, Kind::PendingExpired, 0, at, expired_items)?;
    check_silence(c, tenant, at)?;
    Ok(out)
}

/// Notifies a tenant's silence once: when no provider call came for longer than its
/// `expected_sync_seconds`; the next call re-arms it.
fn check_silence(c: &Connection, tenant: TenantKey, at: Millis) -> Result<()> {
    let (created, expected, last_call, notified): (String, i64, Option<String>, bool) = c.query_row(
        "SELECT created, expected_sync_seconds, last_provider_call, silence_notified FROM tenants WHERE rk = ?",
        [tenant],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let since = super::seats::millis_of(last_call.as_deref().unwrap_or(&created));
    let silent = at - since > expected * 1000;
    if silent && !notified {
        outbox::record(
            c,
            tenant,
            Kind::Silence,
            0,
            at,
            vec![
                json!({"lastProviderCall": last_call, "expectedSyncSeconds": expected, "silentForSeconds": (at - since) / 1000}),
            ],
        )?;
    }
    if silent != notified {
        c.prepare_cached("UPDATE tenants SET silence_notified = ? WHERE rk = ?")?
            .execute(params![silent, tenant])?;
    }
    Ok(())
}

impl Store {
    pub async fn create_license(
        &self,
        tenant: TenantKey,
        spec: LicenseSpec,
        actor: &'static str,
    ) -> Result<LicenseView> {
        let name = validate_name(&spec.name)?;
        validate_seats(spec.seats)?;
        validate_grace(spec.grace_seconds)?;
        validate_selectors(&spec.groups)?;
        let ticker = self.ticker();
        self.write_alone(move |c| {
            let at = ticker.now();
            let id = uuid::Uuid::new_v4().to_string();
            let ts = rfc3339(at);
            c.prepare_cached(
                "INSERT INTO licenses (tenant, id, name, seats, auto_promote, grace_seconds, on_capacity_lowered, free_on_delete, created, updated)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                tenant,
                id,
                name,
                spec.seats,
                spec.auto_promote,
                spec.grace_seconds,
                if spec.on_capacity_lowered == OnLowered::BlockNewest { "block_newest" } else { "keep" },
                spec.free_on_delete,
                ts,
                ts
            ])
            .map_err(|e| if super::is_unique_violation(&e) { Error::Conflict(format!("a license named {name:?} exists")) } else { e.into() })?;
            let l = c.last_insert_rowid();
            let (_, added) = set_selectors(c, tenant, l, at, &spec.groups)?;
            allocate(c, tenant, at, |a| {
                let notify = |a: &mut Allocator<TxSeats>| outbox::record_blocked(c, tenant, at, &mut a.report);
                selection_changed(a, l, &[], &added, notify)
            })?;
            let v = view(c, l)?;
            audit(c, tenant, at, actor, "license.create", json!({"license": v.id, "name": v.name, "seats": v.seats}))?;
            Ok(v)
        })
        .await
    }

    pub async fn license(&self, tenant: TenantKey, key: String) -> Result<LicenseView> {
        self.read(move |c| view(c, license_key(c, tenant, &key)?))
            .await
    }

    pub async fn list_licenses(&self, tenant: TenantKey) -> Result<Vec<LicenseView>> {
        self.read(move |c| {
            let mut st =
                c.prepare_cached("SELECT rk FROM licenses WHERE tenant = ? ORDER BY created, id")?;
            let keys = st
                .query_map([tenant], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<LicenseKey>>>()?;
            keys.into_iter().map(|l| view(c, l)).collect()
        })
        .await
    }

    pub async fn update_license(
        &self,
        tenant: TenantKey,
        key: String,
        change: LicenseChange,
        actor: &'static str,
    ) -> Result<LicenseView> {
        let ticker = self.ticker();
        self.write_alone(move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            let before = view(c, l)?;
            apply_change(c, tenant, l, at, &change)?;
            let after = view(c, l)?;
            audit(
                c,
                tenant,
                at,
                actor,
                "license.update",
                json!({"license": after.id, "before": {"seats": before.seats, "groups": before.groups.len()},
                       "after": {"seats": after.seats, "groups": after.groups.len()}}),
            )?;
            Ok(after)
        })
        .await
    }

    pub async fn delete_license(
        &self,
        tenant: TenantKey,
        key: String,
        actor: &'static str,
    ) -> Result<()> {
        let ticker = self.ticker();
        self.write_alone(move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            let v = view(c, l)?;
            let mut seats = TxSeats { c, tenant };
            for s in seats.all_seats(l)? {
                seats.record(l, &s.user, crate::alloc::EventKind::Released, at)?;
            }
            c.prepare_cached("DELETE FROM licenses WHERE rk = ?")?
                .execute([l])?;
            // Its notifications keep the name; the key may be reused by a later license.
            c.prepare_cached(
                "UPDATE outbox SET license_rk = -id WHERE tenant = ? AND license_rk = ?",
            )?
            .execute(params![tenant, l])?;
            audit(
                c,
                tenant,
                at,
                actor,
                "license.delete",
                json!({"license": v.id, "name": v.name}),
            )?;
            Ok(())
        })
        .await
    }

    /// The seats of a license, in order: granted, releasing, then the waitlist by position.
    pub async fn seats(
        &self,
        tenant: TenantKey,
        key: String,
        state: Option<SeatState>,
    ) -> Result<SeatsView> {
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let v = view(c, l)?;
            let mut st = c.prepare_cached(
                "SELECT s.user_id, u.user_name, s.state, s.since, s.release_at, s.pinned, s.entitled_at FROM seats s
                 LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.user_id
                 WHERE s.license_rk = ?1 AND (?2 IS NULL OR s.state = ?2)
                 ORDER BY CASE s.state WHEN 'granted' THEN 0 WHEN 'releasing' THEN 1 ELSE 2 END,
                          s.pinned DESC, s.entitled_at, s.user_id",
            )?;
            let mut position = 0;
            let seats = st
                .query_map(params![l, state.map(SeatState::as_str)], |r| {
                    let state: String = r.get(2)?;
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, state, r.get::<_, i64>(3)?, r.get::<_, Option<i64>>(4)?, r.get::<_, bool>(5)?, r.get::<_, i64>(6)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut out = Vec::with_capacity(seats.len());
            for (user_id, user_name, st, since, release_at, pinned, entitled_at) in seats {
                let state = SeatState::parse(&st).unwrap_or(SeatState::Blocked);
                let pos = if state == SeatState::Blocked {
                    position += 1;
                    Some(position)
                } else {
                    None
                };
                out.push(SeatView {
                    user_id,
                    user_name,
                    state: state.as_str(),
                    entitled_at: Some(rfc3339(entitled_at / 1000)),
                    since: Some(rfc3339(since)),
                    position: pos,
                    release_at: release_at.map(rfc3339),
                    pinned,
                });
            }
            Ok(SeatsView { capacity: v.seats, granted: v.granted, blocked: v.blocked, releasing: v.releasing, seats: out })
        })
        .await
    }

    /// One user's seat (`none` when the user has no seat row): the seat check.
    pub async fn seat_of(
        &self,
        tenant: TenantKey,
        key: String,
        user_name: String,
    ) -> Result<SeatView> {
        let ranks = self.inner.ranks.clone();
        let check = move |c: &Connection, may_scan: bool| {
            let l = license_key(c, tenant, &key)?;
            let (id, name) = user_by_name(c, tenant, &user_name)?;
            try_seat_view(c, tenant, l, &id, Some(name), Some(&ranks), may_scan)
        };
        // Inline on this HTTP worker's read connection when nothing needs a scan of a long
        // waitlist (a granted user, a short waitlist, a current copy); on a pooled reader else.
        if let Some(v) = self.read_now(|c| check(c, false))? {
            return Ok(v);
        }
        self.read(move |c| in_snapshot(c, |c| check(c, true)))
            .await?
            .ok_or_else(|| Error::Internal("a seat view that may scan gave up".into()))
    }

    /// Every seat a user holds or waits for, across the tenant's licenses.
    pub async fn seats_of_user(&self, tenant: TenantKey, user_name: String) -> Result<Vec<Value>> {
        let ranks = self.inner.ranks.clone();
        self.read(move |c| {
            in_snapshot(c, |c| {
                let (id, name) = user_by_name(c, tenant, &user_name)?;
                let mut st = c.prepare_cached(
                    "SELECT license_rk FROM seats WHERE tenant = ? AND user_id = ?",
                )?;
                let ls = st
                    .query_map(params![tenant, id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<LicenseKey>>>()?;
                let mut out = Vec::new();
                for l in ls {
                    let lv = view(c, l)?;
                    let sv = seat_view(c, tenant, l, &id, Some(name.clone()), Some(&ranks))?;
                    let mut v =
                        serde_json::to_value(sv).map_err(|e| Error::Internal(e.to_string()))?;
                    v["license"] = json!({"id": lv.id, "name": lv.name});
                    out.push(v);
                }
                Ok(out)
            })
        })
        .await
    }

    pub async fn set_override(
        &self,
        tenant: TenantKey,
        key: String,
        user_name: String,
        kind: Option<OverrideKind>,
        actor: &'static str,
    ) -> Result<SeatView> {
        let ticker = self.ticker();
        self.write(move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            let (id, name) = user_by_name(c, tenant, &user_name)?;
            match kind {
                Some(k) => {
                    c.prepare_cached(
                        "INSERT INTO overrides (license_rk, tenant, user_id, kind, created) VALUES (?, ?, ?, ?, ?)
                         ON CONFLICT (license_rk, user_id) DO UPDATE SET kind = excluded.kind, created = excluded.created",
                    )?
                    .execute(params![l, tenant, id, if k == OverrideKind::Pin { "pin" } else { "exclude" }, rfc3339(at)])?;
                }
                None => {
                    let n = c.prepare_cached("DELETE FROM overrides WHERE license_rk = ? AND user_id = ?")?.execute(params![l, id])?;
                    if n == 0 {
                        return Err(Error::NotFound(format!("override for {name:?}")));
                    }
                }
            }
            let cause = if kind == Some(OverrideKind::Exclude) { Cause::Admin } else { Cause::Directory };
            allocate(c, tenant, at, |a| a.reevaluate(l, std::slice::from_ref(&id), cause, false))?;
            let action = match kind {
                Some(OverrideKind::Pin) => "override.pin",
                Some(OverrideKind::Exclude) => "override.exclude",
                None => "override.remove",
            };
            audit(c, tenant, at, actor, action, json!({"license": view(c, l)?.id, "userName": name}))?;
            seat_view(c, tenant, l, &id, Some(name), None)
        })
        .await
    }

    /// Grants a waiting user a free seat by hand, out of order.
    pub async fn grant(
        &self,
        tenant: TenantKey,
        key: String,
        user_name: String,
        actor: &'static str,
    ) -> Result<SeatView> {
        let ticker = self.ticker();
        self.write(move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            let (id, name) = user_by_name(c, tenant, &user_name)?;
            let mut refusal: Option<Refusal> = None;
            allocate(c, tenant, at, |a| {
                a.fill(l, &[], false)?;
                refusal = a.manual_grant(l, &id)?.err();
                Ok(())
            })?;
            if let Some(r) = refusal {
                return Err(Error::Conflict(r.to_string()));
            }
            audit(
                c,
                tenant,
                at,
                actor,
                "seat.grant",
                json!({"license": view(c, l)?.id, "userName": name}),
            )?;
            seat_view(c, tenant, l, &id, Some(name), None)
        })
        .await
    }

    /// What a proposed seat count and/or selection would do, without changing anything: the
    /// change runs in a transaction that is rolled back ([`Store::dry_run`]).
    pub async fn preview(
        &self,
        tenant: TenantKey,
        key: String,
        seats: Option<i64>,
        groups: Option<Vec<Selector>>,
    ) -> Result<PreviewView> {
        let ticker = self.ticker();
        self.dry_run(move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            {
                let first: i64 = c.query_row("SELECT coalesce(max(seq), 0) FROM seat_events", [], |r| r.get(0))?;
                let change = LicenseChange { seats, groups, ..LicenseChange::default() };
                apply_change(c, tenant, l, at, &change)?;
                let mut out = PreviewView::default();
                let mut st = c.prepare_cached(
                    "SELECT coalesce(user_name, user_id), event FROM seat_events WHERE seq > ? AND license_rk = ? ORDER BY seq",
                )?;
                for row in st.query_map(params![first, l], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                    let (who, event) = row?;
                    match event.as_str() {
                        "granted" => out.granted.push(who),
                        "promoted" => out.promoted.push(who),
                        "blocked" => out.blocked.push(who),
                        "releasing" => out.releasing.push(who),
                        _ => out.released.push(who),
                    }
                }
                let v = view(c, l)?;
                out.capacity = v.seats;
                out.after = json!({"granted": v.granted, "blocked": v.blocked, "releasing": v.releasing}).as_object().cloned().unwrap_or_default();
                Ok(out)
            }
        })
        .await
    }

    /// Runs the reconciler over one tenant now.
    pub async fn reconcile(&self, tenant: TenantKey, actor: &'static str) -> Result<Value> {
        self.flush_provider_calls().await?;
        let at = self.now_ms();
        self.write_alone(move |c| reconcile_tenant(c, tenant, at, actor))
            .await
    }

    /// Runs the reconciler over every tenant (the background pass), one transaction per tenant.
    pub async fn reconcile_all(&self) -> Result<usize> {
        self.prune_outbox().await?;
        let tenants: Vec<TenantKey> = self
            .list_tenants()
            .await?
            .into_iter()
            .map(|t| t.key)
            .collect();
        for t in &tenants {
            self.reconcile(*t, "reconciler").await?;
        }
        Ok(tenants.len())
    }

    /// Notes that the tenant's provider called now (kept in memory, written by the reconciler).
    pub fn provider_called(&self, tenant: TenantKey) {
        let now = self.now_ms();
        if let Ok(mut m) = self.inner.provider_calls.lock() {
            m.insert(tenant, now);
        }
    }

    /// Writes the remembered provider calls to the database.
    pub async fn flush_provider_calls(&self) -> Result<()> {
        let calls: Vec<(TenantKey, Millis)> = match self.inner.provider_calls.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return Ok(()),
        };
        if calls.is_empty() {
            return Ok(());
        }
        self.write(move |c| {
            for (t, at) in calls {
                c.prepare_cached("UPDATE tenants SET last_provider_call = max(coalesce(last_provider_call, ''), ?) WHERE rk = ?")?
                    .execute(params![rfc3339(at), t])?;
            }
            Ok(())
        })
        .await
    }

    /// Last provider call, silence flag, pending references, last reconcile report.
    pub async fn status(&self, tenant: TenantKey) -> Result<Value> {
        let now = self.now_ms();
        let in_memory = self
            .inner
            .provider_calls
            .lock()
            .ok()
            .and_then(|m| m.get(&tenant).copied());
        self.read(move |c| {
            let (created, expected, window, last_call, last_reconcile): (String, i64, i64, Option<String>, Option<String>) = c.query_row(
                "SELECT created, expected_sync_seconds, pending_window_seconds, last_provider_call, last_reconcile FROM tenants WHERE rk = ?",
                [tenant],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let last = match (in_memory, last_call.as_deref().map(super::seats::millis_of)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let since = last.unwrap_or_else(|| super::seats::millis_of(&created));
            let silent = now - since > expected * 1000;
            Ok(json!({
                "last_provider_call": last.map(rfc3339),
                "expected_sync_seconds": expected,
                "pending_window_seconds": window,
                "silent": silent,
                "silent_for_seconds": if silent { (now - since) / 1000 } else { 0 },
                "pending": pending(c, tenant)?,
                "last_reconcile": last_reconcile.and_then(|s| serde_json::from_str::<Value>(&s).ok()),
            }))
        })
        .await
    }

    /// Changes a tenant's settings: notification recipients, silence threshold, pending window.
    pub async fn update_tenant(
        &self,
        tenant: TenantKey,
        notify: Option<Vec<String>>,
        expected_sync_seconds: Option<i64>,
        pending_window_seconds: Option<i64>,
        actor: &'static str,
    ) -> Result<()> {
        if let Some(bad) = notify
            .iter()
            .flatten()
            .find(|e| !super::tenants::valid_email(e))
        {
            return Err(Error::Invalid(format!("{bad:?} is not an email address")));
        }
        if expected_sync_seconds.is_some_and(|s| !(60..=30 * 86_400).contains(&s)) {
            return Err(Error::Invalid(
                "expected_sync_seconds must be between 60 and 2592000".into(),
            ));
        }
        if pending_window_seconds.is_some_and(|s| !(0..=30 * 86_400).contains(&s)) {
            return Err(Error::Invalid(
                "pending_window_seconds must be between 0 and 2592000".into(),
            ));
        }
        let ticker = self.ticker();
        let updated = self.write(move |c| {
            let at = ticker.now();
            if let Some(n) = &notify {
                c.execute("UPDATE tenants SET notify = ? WHERE rk = ?", params![json!(n).to_string(), tenant])?;
            }
            if let Some(s) = expected_sync_seconds {
                c.execute("UPDATE tenants SET expected_sync_seconds = ? WHERE rk = ?", params![s, tenant])?;
            }
            if let Some(s) = pending_window_seconds {
                c.execute("UPDATE tenants SET pending_window_seconds = ? WHERE rk = ?", params![s, tenant])?;
            }
            audit(
                c,
                tenant,
                at,
                actor,
                "tenant.update",
                json!({"notify": notify, "expected_sync_seconds": expected_sync_seconds, "pending_window_seconds": pending_window_seconds}),
            )
        })
        .await;
        // Authenticated requests carry the tenant as it was read with their token.
        self.inner.auth_cache.invalidate();
        updated
    }

    /// The seat-event feed after a cursor, oldest first.
    pub async fn seat_events(&self, tenant: TenantKey, after: i64, limit: i64) -> Result<Value> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT seq, license_id, user_id, user_name, event, at FROM seat_events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?",
            )?;
            let events = st
                .query_map(params![tenant, after, limit], |r| {
                    Ok(json!({"cursor": r.get::<_, i64>(0)?, "license": r.get::<_, String>(1)?, "userId": r.get::<_, String>(2)?,
                              "userName": r.get::<_, Option<String>>(3)?, "event": r.get::<_, String>(4)?, "at": rfc3339(r.get(5)?)}))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let next = events.last().and_then(|e| e["cursor"].as_i64()).unwrap_or(after);
            Ok(json!({"events": events, "next": next}))
        })
        .await
    }

    /// The audit log: admin changes, reconciler reports and every seat change, newest first.
    pub async fn audit_log(&self, tenant: TenantKey, limit: i64) -> Result<Value> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT at, actor, action, detail FROM (
                     SELECT seq, at, actor, action, detail, 1 AS src FROM audit WHERE tenant = ?1
                     UNION ALL
                     SELECT seq, at, 'allocator', 'seat.' || event,
                            json_object('license', license_id, 'userId', user_id, 'userName', user_name), 0 FROM seat_events WHERE tenant = ?1)
                 ORDER BY at DESC, src DESC, seq DESC LIMIT ?2",
            )?;
            let entries = st
                .query_map(params![tenant, limit], |r| {
                    let detail: String = r.get(3)?;
                    Ok(json!({"at": rfc3339(r.get(0)?), "actor": r.get::<_, String>(1)?, "action": r.get::<_, String>(2)?,
                              "detail": serde_json::from_str::<Value>(&detail).unwrap_or(Value::Null)}))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(json!({"entries": entries}))
        })
        .await
    }

    /// The license's seats in use and waiting after each seat event, oldest first (at most the
    /// last `limit` events): the usage chart.
    pub async fn seat_history(
        &self,
        tenant: TenantKey,
        key: String,
        limit: i64,
    ) -> Result<Vec<crate::console::chart::Point>> {
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let mut st = c.prepare_cached(
                "SELECT at, in_use, waiting FROM (
                     SELECT seq, at, in_use, waiting FROM seat_events
                     WHERE license_rk = ? AND in_use IS NOT NULL ORDER BY seq DESC LIMIT ?)
                 ORDER BY seq",
            )?;
            let v = st
                .query_map(params![l, limit], |r| {
                    Ok(crate::console::chart::Point {
                        at: r.get(0)?,
                        in_use: r.get(1)?,
                        waiting: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(v)
        })
        .await
    }

    /// A license's overrides: (userName or id, "pin" | "exclude", since), by user.
    pub async fn overrides(
        &self,
        tenant: TenantKey,
        key: String,
    ) -> Result<Vec<(String, String, String)>> {
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let mut st = c.prepare_cached(
                "SELECT coalesce(u.user_name, o.user_id), o.kind, o.created FROM overrides o
                 LEFT JOIN users u ON u.tenant = o.tenant AND u.id = o.user_id
                 WHERE o.license_rk = ? ORDER BY 1",
            )?;
            let v = st
                .query_map([l], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(v)
        })
        .await
    }
}
