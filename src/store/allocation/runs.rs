//! The allocator's entry points on the store: each runs `crate::alloc` over a [`TxSeats`] in
//! the transaction of the write that caused it (a user created or changed, members added or
//! removed, a license's selection or capacity changed, a grant), stamping the waitlist order
//! under the tenant's writer; and a group's reach (which users and licenses a change of it
//! touches), with pending selectors bound as their group arrives.

use crate::alloc::{Allocator, Cause, Change, LicenseKey, Millis, Report, UserId};
use crate::store::allocation::tx_seats::TxSeats;
use crate::store::engine::sql::{
    in_slices, params, Db, OptionalExtension, Param, Read, FRESH_FROM,
};
use crate::store::{Result, TenantKey};

/// As [`allocate`], for a run in which an admin grants `user` a seat by hand (the promotion's
/// cause is `manual`).
pub(in crate::store) fn allocate_granting(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    user: &str,
    f: impl FnOnce(&mut Allocator<TxSeats>) -> Result<()>,
) -> Result<Report> {
    allocate_in(
        c,
        tenant,
        now,
        Default::default(),
        Some(user.to_owned()),
        None,
        f,
    )
}

/// Runs `f` with an allocator over this transaction and records what it notifies (blocked
/// users, capacity thresholds) in the outbox, in the same transaction; returns what it changed.
pub(in crate::store) fn allocate(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    f: impl FnOnce(&mut Allocator<TxSeats>) -> Result<()>,
) -> Result<Report> {
    allocate_reclaiming(c, tenant, now, Default::default(), f)
}

/// As [`allocate`], for a run that reclaims the seats of `idle` users (their events carry the
/// cause `idle`).
pub(in crate::store) fn allocate_reclaiming(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    idle: std::collections::HashSet<String>,
    f: impl FnOnce(&mut Allocator<TxSeats>) -> Result<()>,
) -> Result<Report> {
    allocate_in(c, tenant, now, idle, None, None, f)
}

/// `ahead`: the licenses and users the run will re-evaluate, when the caller knows them: what
/// the run first asks of them is read in one round trip ([`TxSeats::preload`]).
fn allocate_in(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    idle: std::collections::HashSet<String>,
    manual: Option<String>,
    ahead: Option<(&[LicenseKey], &[UserId])>,
    f: impl FnOnce(&mut Allocator<TxSeats>) -> Result<()>,
) -> Result<Report> {
    let mut view = TxSeats::new(c, tenant);
    let order = match ahead {
        Some((licenses, users)) => view.preload(now, licenses, users)?,
        None => crate::store::engine::dialect::next_order(c, tenant, now)?,
    };
    view.idle = idle;
    view.manual = manual;
    view.now = now;
    let mut a = Allocator::with_order(&mut view, now, order);
    f(&mut a)?;
    a.finish()?;
    let report = std::mem::take(&mut a.report);
    drop(a);
    view.flush()?;
    crate::store::events::outbox::after_allocation(c, tenant, now, &report, |l| view.use_of(l))?;
    Ok(report)
}

/// After a user was created, changed or is about to be deleted. `extra` are licenses to
/// re-evaluate besides those the user's groups reach (its seats before a delete).
pub(in crate::store) fn user_changed(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    user: &str,
    extra: &[LicenseKey],
    cause: Cause,
) -> Result<Report> {
    allocate(c, tenant, now, |a| a.member_changed(user, extra, cause))
}

/// Whether a group lists a new user by its externalId (`external_id`): members name users by
/// id, and a new id is in no group yet, so only then can the user's seats change. The usual
/// order of a sync (users first, then groups) makes this false, and a create runs no allocator.
pub(in crate::store) fn listed(
    c: &Db,
    tenant: TenantKey,
    external_id: Option<&str>,
) -> Result<bool> {
    let Some(x) = external_id else {
        return Ok(false);
    };
    Ok(
        c.prepare_cached("SELECT 1 FROM group_members WHERE tenant = ? AND member_id = ? LIMIT 1")?
            .query_row(params![tenant, x], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// The licenses and users a group reaches, taken before the group (or a member) goes away.
pub(in crate::store) struct Reach {
    licenses: Vec<LicenseKey>,
    users: Vec<UserId>,
}

/// What changing `members` of `group` can affect: the licenses selecting the group or a group
/// containing it, and every user under those members (a member may be a nested group, or an
/// externalId standing for a user).
pub(in crate::store) fn reach(
    c: &Db,
    tenant: TenantKey,
    group: &str,
    members: &[String],
) -> Result<Reach> {
    // The group and every group above it, and the licenses selecting any (one statement; the
    // group's row is there: it was written, or is about to be deleted), and each member as a
    // user (by id or externalId) or a nested group (one statement a slice): read together.
    let mut licenses: Vec<LicenseKey> = Vec::new();
    let slices: Vec<(String, Vec<&str>)> = in_slices(members).collect();
    let mut found: Vec<Vec<(String, bool)>> = slices.iter().map(|_| Vec::new()).collect();
    {
        let mut reads = vec![Read {
            sql: "WITH RECURSIVE up(g) AS (
                      SELECT id FROM groups WHERE tenant = ? AND id = ?
                    UNION
                      -- CROSS JOIN keeps this order on SQLite (each group's parents by index;
                      -- left to itself it walked every membership of the tenant).
                      SELECT p.id FROM up CROSS JOIN group_members m CROSS JOIN groups p
                      WHERE m.tenant = ? AND m.member_id = up.g AND p.rk = m.group_rk
                  )
                  SELECT DISTINCT license_rk FROM license_groups
                  WHERE tenant = ? AND group_id IN (SELECT g FROM up) ORDER BY license_rk"
                .to_owned(),
            params: vec![&tenant, &group, &tenant, &tenant],
            fresh: false,
            row: Box::new(|r| {
                licenses.push(r.get(0)?);
                Ok(())
            }),
        }];
        for ((marks, slice), found) in slices.iter().zip(found.iter_mut()) {
            let mut params: Vec<&dyn Param> = Vec::with_capacity(3 * slice.len() + 3);
            for _ in 0..3 {
                params.push(&tenant);
                params.extend(slice.iter().map(|m| m as &dyn Param));
            }
            reads.push(Read {
                sql: format!(
                    "SELECT id, CAST(0 AS BIGINT) FROM users WHERE tenant = ? AND id IN ({marks})
                     UNION ALL SELECT id, CAST(0 AS BIGINT) FROM users WHERE tenant = ? AND external_id IN ({marks})
                     UNION ALL SELECT id, CAST(1 AS BIGINT) FROM groups WHERE tenant = ? AND id IN ({marks})"
                ),
                params,
                fresh: slice.len() >= FRESH_FROM,
                row: Box::new(move |r| {
                    found.push((r.get(0)?, r.get::<_, i64>(1)? == 1));
                    Ok(())
                }),
            });
        }
        c.read_many(reads)?;
    }
    let mut users = Vec::new();
    if licenses.is_empty() {
        // No license selects the group or a group above it: its members' seats cannot change
        // (a large group no license uses costs its own rows only).
        return Ok(Reach { licenses, users });
    }
    let mut nested = Vec::new();
    for (id, is_group) in found.into_iter().flatten() {
        if is_group {
            nested.push(id);
        } else {
            users.push(id);
        }
    }
    nested.sort();
    nested.dedup();
    if !nested.is_empty() {
        let mut view = TxSeats::new(c, tenant);
        let mut a = Allocator::new(&mut view, 0);
        for g in &nested {
            users.extend(a.member_closure(g)?);
        }
    }
    users.sort();
    users.dedup();
    Ok(Reach { licenses, users })
}

/// Re-evaluates what a group change reached (taken with [`reach`] before and/or after it);
/// `change` names it for the losses the circuit breaker holds.
pub(in crate::store) fn reevaluate_reach(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    reach: Reach,
    cause: Cause,
    change: Option<Change>,
) -> Result<Report> {
    let ahead = Some((reach.licenses.as_slice(), reach.users.as_slice()));
    allocate_in(c, tenant, now, Default::default(), None, ahead, |a| {
        if let Some(change) = change {
            a.because(change);
        }
        for l in &reach.licenses {
            a.reevaluate(*l, &reach.users, cause, false)?;
        }
        Ok(())
    })
}

impl Reach {
    pub fn merge(mut self, other: Reach) -> Reach {
        self.licenses.extend(other.licenses);
        self.licenses.sort_unstable();
        self.licenses.dedup();
        self.users.extend(other.users);
        self.users.sort();
        self.users.dedup();
        self
    }
}

/// Binds pending selectors that name this group (by id, externalId or displayName) and returns
/// the licenses that gained it. A name that also names another group (same-named groups, where
/// the tenant allows them) binds nothing: the admin picks one by id.
pub(in crate::store) fn bind_selectors(
    c: &Db,
    tenant: TenantKey,
    group: &str,
) -> Result<Vec<LicenseKey>> {
    let (id, ext, name): (String, Option<String>, String) = c
        .prepare_cached(
            "SELECT id, external_id, display_name_key FROM groups WHERE tenant = ? AND id = ?",
        )?
        .query_row(params![tenant, group], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let mut st = c.prepare_cached(
        "UPDATE license_groups SET group_id = ?2, pending_since = NULL
         WHERE tenant = ?1 AND group_id IS NULL AND (
             (selector = 'id' AND value = ?2)
             OR (selector = 'externalId' AND value = ?3
                 AND (SELECT count(*) FROM groups g WHERE g.tenant = ?1 AND g.external_id = ?3) = 1)
             OR (selector = 'displayName' AND lower(value) = ?4
                 AND (SELECT count(*) FROM groups g WHERE g.tenant = ?1 AND g.display_name_key = ?4) = 1))
         RETURNING license_rk",
    )?;
    st.query_all::<LicenseKey, _>(params![tenant, id, ext, name], |r| r.get(0))
}

/// A deleted group's selectors go back to pending (a later group may match them).
pub(in crate::store) fn unbind_selectors(
    c: &Db,
    tenant: TenantKey,
    group: &str,
    now: &str,
) -> Result<()> {
    c.prepare_cached("UPDATE license_groups SET group_id = NULL, pending_since = ? WHERE tenant = ? AND group_id = ?")?
        .execute(params![now, tenant, group])?;
    Ok(())
}

/// A group's display name (for what a held loss says), or its id when it has none.
pub(in crate::store) fn group_name(c: &Db, tenant: TenantKey, group: &str) -> Result<String> {
    Ok(
        c.prepare_cached("SELECT display_name FROM groups WHERE tenant = ? AND id = ?")?
            .query_row(params![tenant, group], |r| r.get::<_, String>(0))
            .optional()?
            .unwrap_or_else(|| group.to_owned()),
    )
}
