//! Licenses: create, read, update (seat count, policy, selected groups and their limits),
//! delete. Every change runs the allocator in the transaction that makes it. The group
//! selection lives in `selection`, the dry-run preview of a change in `preview`, seat
//! operations on one user in `seat_admin`, the reconciler in `reconciler`, the feed and audit in
//! `feed`.

use crate::store::engine::sql::{params, Db};
use serde::Deserialize;
use serde_json::json;

use crate::alloc::{Allocator, LicenseKey, Millis, OnLowered, Report, SeatStore};
use crate::notify::items::Num;
use crate::notify::Recipient;
use crate::store::allocation::license_view::{license_key, view, LicenseMode, LicenseView};
use crate::store::allocation::runs::allocate;
use crate::store::allocation::selection::SelectorView;
use crate::store::allocation::selection::{
    distinct, selection_changed, set_selectors, validate_reserves, validate_selectors, GroupEntry,
    GroupSelection,
};
use crate::store::allocation::tx_seats::TxSeats;
use crate::store::engine::time::rfc3339;
use crate::store::events::audit::{record as audit, Actor};
use crate::store::events::outbox;
use crate::store::{Error, Lock, Result, Store, TenantKey};

/// Longest release grace: the 72-hour reconciliation window.
pub const MAX_GRACE_SECONDS: i64 = 259_200;

/// A license as created (every policy field has its default).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseSpec {
    pub name: String,
    pub seats: i64,
    #[serde(default)]
    #[schema(value_type = Vec<GroupEntry>)]
    pub groups: Vec<GroupSelection>,
    #[serde(default = "yes")]
    pub auto_promote: bool,
    #[serde(default = "default_grace")]
    pub grace_seconds: i64,
    #[serde(default = "keep")]
    pub on_capacity_lowered: OnLowered,
    #[serde(default = "yes")]
    pub free_on_delete: bool,
    /// Recipients of this license's emails, besides the tenant's.
    #[serde(default)]
    pub notify: Vec<Recipient>,
    /// A granted, unpinned seat unused this many days is reclaimed (0: never).
    #[serde(default)]
    pub reclaim_idle_days: i64,
    /// The recipients are told this many days before a reclaim (0: not told).
    #[serde(default = "default_notice")]
    pub reclaim_notice_days: i64,
    /// Agreed overage: this many seats may be granted beyond `seats` (settled at true-up) ...
    #[serde(default)]
    pub overage: i64,
    /// ... or this share of `seats` (only one of the two).
    #[serde(default)]
    pub overage_percent: i64,
    /// `enforce` (the default) or `observe`: shadow mode, for a cut-over (see `LicenseMode`).
    #[serde(default)]
    pub mode: LicenseMode,
}

fn default_notice() -> i64 {
    3
}

/// Checks a license's overage settings together.
fn validate_overage(overage: i64, percent: i64) -> Result<()> {
    if !(0..=1_000_000).contains(&overage) || !(0..=1000).contains(&percent) {
        return Err(Error::Invalid(
            "overage must be between 0 and 1000000 seats, overage_percent between 0 and 1000"
                .into(),
        ));
    }
    if overage > 0 && percent > 0 {
        return Err(Error::Invalid(
            "give overage (seats) or overage_percent, not both".into(),
        ));
    }
    Ok(())
}

/// Checks a license's reclaim settings together.
fn validate_reclaim(idle: i64, notice: i64) -> Result<()> {
    if !(0..=3650).contains(&idle) {
        return Err(Error::Invalid(
            "reclaim_idle_days must be between 0 (never) and 3650".into(),
        ));
    }
    if notice < 0 || (idle > 0 && notice >= idle) {
        return Err(Error::Invalid(format!(
            "reclaim_notice_days must be at least 0 and less than reclaim_idle_days ({idle})"
        )));
    }
    Ok(())
}

/// The release grace of a new license when none is given: two hours. Entra provisions in
/// cycles of about 40 minutes, so a group move (removed in one cycle, added in the next) or an
/// account disabled and re-enabled by mistake arrives within one cycle; two hours cover a late
/// cycle too. The user keeps the seat meanwhile instead of losing it to the next waiter and
/// waiting behind everyone. Admins who want seats back at once set 0.
pub const DEFAULT_GRACE_SECONDS: i64 = 7200;

fn default_grace() -> i64 {
    DEFAULT_GRACE_SECONDS
}

fn yes() -> bool {
    true
}
fn keep() -> OnLowered {
    OnLowered::Keep
}

/// A change to a license: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseChange {
    pub name: Option<String>,
    pub seats: Option<i64>,
    #[schema(value_type = Option<Vec<GroupEntry>>)]
    pub groups: Option<Vec<GroupSelection>>,
    pub auto_promote: Option<bool>,
    pub grace_seconds: Option<i64>,
    pub on_capacity_lowered: Option<OnLowered>,
    pub free_on_delete: Option<bool>,
    pub notify: Option<Vec<Recipient>>,
    pub reclaim_idle_days: Option<i64>,
    pub reclaim_notice_days: Option<i64>,
    pub overage: Option<i64>,
    pub overage_percent: Option<i64>,
    /// Switching an observing license to `enforce` serves the people carried over first
    /// (see `Allocator::carry_over`); switching to `observe` changes no seat.
    pub mode: Option<LicenseMode>,
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

pub(in crate::store) fn validate_seats(seats: i64) -> Result<i64> {
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

fn apply_change(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    at: Millis,
    change: &LicenseChange,
) -> Result<Report> {
    let mut view_now = TxSeats::new(c, tenant);
    let old = view_now
        .policy(l)?
        .ok_or_else(|| Error::NotFound("license".into()))?;
    let rules_before = crate::store::allocation::tx_seats::pool_rules(c, l)?;
    let observed = crate::store::allocation::license_view::observing(c, l)?;
    let set = |col: &str, v: &dyn crate::store::engine::sql::Param| -> Result<()> {
        c.execute(
            &format!("UPDATE licenses SET {col} = ? WHERE rk = ?"),
            &[v, &l] as &[&dyn crate::store::engine::sql::Param],
        )?;
        Ok(())
    };
    if let Some(n) = &change.name {
        let n = validate_name(n)?;
        set("name", &n).map_err(|e| match e {
            ref e if crate::store::is_unique_violation(e) => {
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
        set("on_capacity_lowered", &p.as_str())?;
    }
    if let Some(b) = change.free_on_delete {
        set("free_on_delete", &b)?;
    }
    if let Some(n) = &change.notify {
        crate::store::check_recipients(n)?;
        set("notify", &json!(n).to_string())?;
    }
    if change.overage.is_some() || change.overage_percent.is_some() {
        let (old_overage, old_percent): (i64, i64) = c
            .prepare_cached("SELECT overage, overage_percent FROM licenses WHERE rk = ?")?
            .query_row([l], |r| Ok((r.get(0)?, r.get(1)?)))?;
        // Giving one of them replaces the other.
        let (overage, percent) = match (change.overage, change.overage_percent) {
            (Some(o), Some(p)) => (o, p),
            (Some(o), None) => (o, if o > 0 { 0 } else { old_percent }),
            (None, Some(p)) => (if p > 0 { 0 } else { old_overage }, p),
            (None, None) => (old_overage, old_percent),
        };
        validate_overage(overage, percent)?;
        set("overage", &overage)?;
        set("overage_percent", &percent)?;
    }
    if change.reclaim_idle_days.is_some() || change.reclaim_notice_days.is_some() {
        let (old_idle, old_notice): (i64, i64) = c
            .prepare_cached(
                "SELECT reclaim_idle_days, reclaim_notice_days FROM licenses WHERE rk = ?",
            )?
            .query_row([l], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (idle, notice) = (
            change.reclaim_idle_days.unwrap_or(old_idle),
            change.reclaim_notice_days.unwrap_or(old_notice),
        );
        validate_reclaim(idle, notice)?;
        set("reclaim_idle_days", &idle)?;
        set("reclaim_notice_days", &notice)?;
    }
    if let Some(m) = change.mode {
        set("mode", &m.as_str())?;
    }
    // Enforcing a license that observed: the people carried over are served first.
    let carried = match change.mode {
        Some(LicenseMode::Enforce) if observed => crate::store::engine::sql::strings(
            c,
            "SELECT user_id FROM carried_holders WHERE license_rk = ? ORDER BY position",
            params![l],
        )?,
        _ => Vec::new(),
    };
    let switching = change.mode == Some(LicenseMode::Enforce) && observed;
    set("updated", &rfc3339(at))?;
    let (removed, added) = match &change.groups {
        Some(g) => {
            validate_selectors(g)?;
            set_selectors(c, tenant, l, at, g)?
        }
        None => (Vec::new(), Vec::new()),
    };
    let (seats, reserved): (i64, i64) = c
        .prepare_cached(
            "SELECT seats, (SELECT CAST(coalesce(sum(reserve), 0) AS BIGINT) FROM license_groups WHERE license_rk = licenses.rk) FROM licenses WHERE rk = ?",
        )?
        .query_row([l], |r| Ok((r.get(0)?, r.get(1)?)))?;
    validate_reserves(seats, reserved)?;
    // New reservations, ceilings or order of groups: seats move to their new pools first, so
    // that the selection below is served by the new rules.
    let rules_changed = crate::store::allocation::tx_seats::pool_rules(c, l)? != rules_before;
    let in_use_before = view_now.counts(l)?.in_use();
    // The seats the allocator grants up to: the count plus the agreed overage.
    let new_capacity = view_now.policy(l)?.map_or(old.capacity, |p| p.capacity);
    let report = allocate(c, tenant, at, |a| {
        // Blocked users are written to the outbox slice by slice (see `reevaluate_selected`).
        let notify =
            |a: &mut Allocator<TxSeats>| outbox::record_blocked(c, tenant, at, &mut a.report);
        if rules_changed {
            a.repool_all(l)?;
        }
        selection_changed(a, l, &removed, &added, notify)?;
        if new_capacity != old.capacity {
            a.capacity_changed(l, old.capacity)?;
        }
        if rules_changed {
            a.limits_changed(l)?;
        }
        if change.auto_promote == Some(true) && !old.auto_promote {
            a.fill(l, &[], false)?;
        }
        if change.on_capacity_lowered == Some(OnLowered::BlockNewest)
            && old.on_lowered != OnLowered::BlockNewest
        {
            // The policy takes effect in this change, as a seat count does.
            a.on_lowered_changed(l)?;
        }
        if switching {
            a.carry_over(l, &carried)?;
        }
        Ok(())
    })?;
    if switching {
        // The marks have done their work: the ordinary rules apply from now on.
        c.prepare_cached("DELETE FROM carried_holders WHERE license_rk = ?")?
            .execute([l])?;
    }
    if let Some(s) = change
        .seats
        .filter(|s| *s < old.capacity && *s < in_use_before)
    {
        let policy = change.on_capacity_lowered.unwrap_or(old.on_lowered);
        outbox::record(
            c,
            tenant,
            l,
            at,
            vec![crate::notify::items::CapacityLowered {
                from: Num(old.capacity),
                to: Num(s),
                in_use: Num(in_use_before),
                policy: policy.as_str().into(),
                ..Default::default()
            }],
        )?;
    }
    // A capacity change moves the thresholds and the history even when no seat changed.
    outbox::check_threshold(c, tenant, l, at)?;
    crate::store::allocation::history::record(c, l, at)?;
    Ok(report)
}

/// A license update in the write job that makes it (or previews it, `preview::preview_change`):
/// the change, the allocator's run, its webhook and its audit entry.
pub(in crate::store) fn update_in(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    key: &str,
    change: &LicenseChange,
    actor: &Actor,
) -> Result<LicenseView> {
    let l = license_key(c, tenant, key)?;
    let before = view(c, l)?;
    apply_change(c, tenant, l, at, change)?;
    let after = view(c, l)?;
    crate::store::events::webhooks::license_updated(c, tenant, at, &before, &after)?;
    audit(
        c,
        tenant,
        at,
        actor.as_str(),
        crate::store::events::acts::Act::LicenseUpdate(license_changes(&before, &after)),
    )?;
    Ok(after)
}

impl Store {
    pub async fn create_license(
        &self,
        tenant: TenantKey,
        spec: LicenseSpec,
        actor: Actor,
    ) -> Result<LicenseView> {
        let name = validate_name(&spec.name)?;
        validate_seats(spec.seats)?;
        validate_grace(spec.grace_seconds)?;
        validate_selectors(&spec.groups)?;
        validate_reserves(
            spec.seats,
            distinct(&spec.groups).iter().map(|g| g.reserve).sum(),
        )?;
        crate::store::check_recipients(&spec.notify)?;
        validate_reclaim(spec.reclaim_idle_days, spec.reclaim_notice_days)?;
        validate_overage(spec.overage, spec.overage_percent)?;
        let ticker = self.ticker();
        self.write_alone(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let id = uuid::Uuid::new_v4().to_string();
            let ts = rfc3339(at);
            c.prepare_cached(
                "INSERT INTO licenses (tenant, id, name, seats, auto_promote, grace_seconds, on_capacity_lowered, free_on_delete, created, updated, notify, reclaim_idle_days, reclaim_notice_days, overage, overage_percent, mode)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                tenant,
                id,
                name,
                spec.seats,
                spec.auto_promote,
                spec.grace_seconds,
                spec.on_capacity_lowered.as_str(),
                spec.free_on_delete,
                ts,
                ts,
                json!(spec.notify).to_string(),
                spec.reclaim_idle_days,
                spec.reclaim_notice_days,
                spec.overage,
                spec.overage_percent,
                spec.mode.as_str()
            ])
            .map_err(|e| if crate::store::is_unique_violation(&e) { Error::Conflict(format!("a license named {name:?} exists")) } else { e })?;
            let l = c.last_insert_rowid()?;
            let (_, added) = set_selectors(c, tenant, l, at, &spec.groups)?;
            allocate(c, tenant, at, |a| {
                let notify = |a: &mut Allocator<TxSeats>| outbox::record_blocked(c, tenant, at, &mut a.report);
                selection_changed(a, l, &[], &added, notify)
            })?;
            crate::store::allocation::history::record(c, l, at)?;
            let v = view(c, l)?;
            audit(c, tenant, at, actor.as_str(), crate::store::events::acts::Act::LicenseCreate(crate::store::events::acts::LicenseCreated { license: v.id.clone(), name: v.name.clone(), settings: settings_of(&v) }))?;
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
            let keys = st.query_all::<LicenseKey, _>([tenant], |r| r.get(0))?;
            keys.into_iter().map(|l| view(c, l)).collect()
        })
        .await
    }

    pub async fn update_license(
        &self,
        tenant: TenantKey,
        key: String,
        change: LicenseChange,
        actor: Actor,
    ) -> Result<LicenseView> {
        let ticker = self.ticker();
        self.write_alone(Lock::Tenant(tenant), move |c| {
            update_in(c, tenant, ticker.now(), &key, &change, &actor)
        })
        .await
    }

    pub async fn delete_license(&self, tenant: TenantKey, key: String, actor: Actor) -> Result<()> {
        let ticker = self.ticker();
        self.write_alone(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            let v = view(c, l)?;
            let mut seats = TxSeats::new(c, tenant);
            for s in seats.all_seats(l)? {
                seats.record(
                    l,
                    &s.user,
                    crate::alloc::EventKind::Released,
                    Some(s.state),
                    at,
                    Some(crate::alloc::Cause::License),
                )?;
            }
            // Its seats' webhooks name the license: written before it goes.
            seats.flush()?;
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
                actor.as_str(),
                crate::store::events::acts::Act::LicenseDelete(
                    crate::store::events::acts::LicenseRef {
                        license: v.id.clone(),
                        name: v.name.clone(),
                    },
                ),
            )?;
            Ok(())
        })
        .await
    }
}

/// A license's settings as an admin sets them (no counters or timestamps), for the audit log.
fn settings_of(v: &LicenseView) -> serde_json::Value {
    let mut j = json!(v);
    if let Some(o) = j.as_object_mut() {
        for k in [
            "granted",
            "blocked",
            "releasing",
            "held",
            "carried_over",
            "created",
            "updated",
            "id",
        ] {
            o.remove(k);
        }
    }
    j
}

/// What an update changed: each setting with its value before and after, and the groups
/// selected and unselected (by how they were named), for the audit log.
fn license_changes(
    before: &LicenseView,
    after: &LicenseView,
) -> crate::store::events::acts::LicenseUpdated {
    use crate::store::events::acts::{Changes, GroupsChanged, LicenseUpdated, LimitChanged};
    // The group's display name when it has arrived; else how the selector names it.
    let name = |s: &SelectorView| {
        if let Some(n) = &s.group_name {
            return n.clone();
        }
        serde_json::to_value(s)
            .ok()
            .and_then(|v| {
                v.get("displayName")
                    .or_else(|| v.get("id"))
                    .or_else(|| v.get("externalId"))
                    .and_then(|x| x.as_str().map(str::to_owned))
            })
            .unwrap_or_default()
    };
    let (b, a): (Vec<String>, Vec<String>) = (
        before.groups.iter().map(name).collect(),
        after.groups.iter().map(name).collect(),
    );
    let mut changed = Changes::between(&settings_of(before), &settings_of(after), &["groups"]);
    let added: Vec<String> = a.iter().filter(|g| !b.contains(g)).cloned().collect();
    let removed: Vec<String> = b.iter().filter(|g| !a.contains(g)).cloned().collect();
    if !added.is_empty() || !removed.is_empty() {
        changed.groups = Some(GroupsChanged {
            selected: added,
            unselected: removed,
        });
    }
    // Reservations and ceilings of groups selected before and after.
    let mut limits = Vec::new();
    for (bv, bn) in before.groups.iter().zip(&b) {
        let Some((av, _)) = after.groups.iter().zip(&a).find(|(_, an)| *an == bn) else {
            continue;
        };
        if (bv.reserve, bv.max) != (av.reserve, av.max) {
            limits.push(LimitChanged {
                group: bn.clone(),
                reserve: (bv.reserve, av.reserve),
                max: (bv.max, av.max),
            });
        }
    }
    changed.limits = limits;
    LicenseUpdated {
        license: after.id.clone(),
        name: after.name.clone(),
        changed,
    }
}
