//! The reconciler: a periodic pass per tenant that recomputes every license from the rules and
//! repairs drift, frees releases that are due, promotes waiting users, expires pending
//! references older than the tenant's window and notices a provider that has gone silent. It
//! also keeps the time of each tenant's last provider call, noted in memory by every SCIM
//! request and written here.

use crate::store::engine::sql::{params, Db};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::alloc::{LicenseKey, Millis, Report};
use crate::notify::items::{self, Num, Text};
use crate::store::allocation::runs::allocate;
use crate::store::allocation::selection::Selector;
use crate::store::engine::time::rfc3339;
use crate::store::events::audit::{record as audit, Actor};
use crate::store::events::outbox;
use crate::store::{Error, Lock, Result, Store, TenantKey};

/// What one allocator run changed, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunCounts {
    pub granted: u64,
    pub blocked: u64,
    pub releasing: u64,
    pub released: u64,
    pub promoted: u64,
    /// Seats whose stored state disagreed with the rules.
    pub repaired: u64,
}

impl From<&Report> for RunCounts {
    fn from(r: &Report) -> Self {
        RunCounts {
            granted: r.granted,
            blocked: r.blocked,
            releasing: r.releasing,
            released: r.released,
            promoted: r.promoted,
            repaired: r.repaired,
        }
    }
}

/// One reconciler pass over a tenant, as answered and kept as the tenant's last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReconcileReport {
    #[serde(flatten)]
    pub counts: RunCounts,
    pub at: String,
    /// Licenses recomputed.
    pub licenses: usize,
    /// Licenses whose stored counters (granted, releasing, blocked: what the seat check and
    /// the invariant check read) disagreed with their seat rows and were rewritten.
    #[serde(default)]
    pub counters_repaired: Vec<CountersRepaired>,
    pub expired: Expired,
}

/// A license whose stored counters a pass rewrote from its seat rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CountersRepaired {
    pub license: String,
    /// [granted, releasing, blocked] as stored, then as the rows say.
    pub stored: [i64; 3],
    pub actual: [i64; 3],
}

/// Rewrites the stored counters of every license of `tenant` that disagree with its seat
/// rows; returns the ones it rewrote. Runs after the allocator, which keeps them right
/// itself: a disagreement here is damage from outside (a restore, a hand edit, a bug).
fn repair_counters(c: &Db, tenant: TenantKey) -> Result<Vec<CountersRepaired>> {
    let mut st = c.prepare_cached(
        "SELECT l.rk, l.name, l.granted, l.releasing, l.blocked,
                (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.state = 'granted'),
                (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.state = 'releasing'),
                (SELECT count(*) FROM seats s WHERE s.license_rk = l.rk AND s.state = 'blocked')
         FROM licenses l WHERE l.tenant = ? ORDER BY l.rk",
    )?;
    let wrong = st
        .query_all([tenant], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                CountersRepaired {
                    license: r.get(1)?,
                    stored: [r.get(2)?, r.get(3)?, r.get(4)?],
                    actual: [r.get(5)?, r.get(6)?, r.get(7)?],
                },
            ))
        })?
        .into_iter()
        .filter(|(_, c)| c.stored != c.actual)
        .collect::<Vec<_>>();
    for (rk, r) in &wrong {
        c.prepare_cached(
            "UPDATE licenses SET granted = ?, releasing = ?, blocked = ? WHERE rk = ?",
        )?
        .execute(params![r.actual[0], r.actual[1], r.actual[2], rk])?;
        tracing::warn!(tenant, license = %r.license, stored = ?r.stored, actual = ?r.actual,
            "the reconciler rewrote a license's seat counters from its seat rows");
    }
    Ok(wrong.into_iter().map(|(_, r)| r).collect())
}

/// What a background pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// Tenants this node reconciled.
    pub reconciled: usize,
    /// Names of the tenants whose pass failed (each logged).
    pub failed: Vec<String>,
}

/// Pending references a pass dropped because they outlived the tenant's window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Expired {
    pub selectors: Vec<ExpiredSelector>,
    pub members: Vec<ExpiredMember>,
}

impl Expired {
    fn is_empty(&self) -> bool {
        self.selectors.is_empty() && self.members.is_empty()
    }
}

/// A license's selector that never matched a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExpiredSelector {
    /// The license's name.
    pub license: Option<String>,
    #[serde(flatten)]
    pub selector: Selector,
}

/// A group member value that never named a user or group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExpiredMember {
    /// The group's id.
    pub group: String,
    pub member: String,
}

/// Expires pending references older than the tenant's window: unresolved selectors and member
/// values that name no user or group. Returns what was dropped.
fn expire_pending(c: &Db, tenant: TenantKey, at: Millis) -> Result<Expired> {
    let window: i64 = c.query_row(
        "SELECT pending_window_seconds FROM tenants WHERE rk = ?",
        [tenant],
        |r| r.get(0),
    )?;
    let window = window.min(crate::store::access::tenants::PENDING_WINDOW_MAX);
    let cutoff = rfc3339(at - window * 1000);
    let mut st = c.prepare_cached(
        "DELETE FROM license_groups WHERE tenant = ? AND group_id IS NULL AND pending_since < ?
         RETURNING (SELECT name FROM licenses WHERE rk = license_rk), selector, value",
    )?;
    let selectors = st.query_all(params![tenant, cutoff], |r| {
        Ok(ExpiredSelector {
            license: r.get(0)?,
            selector: Selector::from_parts(&r.get::<_, String>(1)?, r.get(2)?),
        })
    })?;
    let mut st = c.prepare_cached(
        "SELECT m.group_rk, m.member_id, g.id FROM group_members m JOIN groups g ON g.rk = m.group_rk
         WHERE m.tenant = ?1 AND m.added < ?2
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.external_id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM groups s WHERE s.tenant = ?1 AND s.id = m.member_id)",
    )?;
    let stale = st.query_all(params![tenant, cutoff], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut members = Vec::new();
    for (group_rk, member, group) in stale {
        c.prepare_cached("DELETE FROM group_members WHERE group_rk = ? AND member_id = ?")?
            .execute(params![group_rk, member])?;
        c.prepare_cached(
            "UPDATE groups SET version = version + 1, last_modified = ? WHERE rk = ?",
        )?
        .execute(params![rfc3339(at), group_rk])?;
        members.push(ExpiredMember { group, member });
    }
    Ok(Expired { selectors, members })
}

/// One reconciler pass over a tenant: every license recomputed, drift repaired, due releases
/// freed, waitlists promoted, pending references expired. The report is kept as the tenant's
/// last and in the audit log.
fn reconcile_tenant(c: &Db, tenant: TenantKey, at: Millis, actor: &str) -> Result<ReconcileReport> {
    let expired = expire_pending(c, tenant, at)?;
    crate::store::allocation::reclaim::reclaim_pass(c, tenant, at)?;
    let licenses: Vec<LicenseKey> = {
        let mut st = c.prepare_cached("SELECT rk FROM licenses WHERE tenant = ? ORDER BY rk")?;
        st.query_all([tenant], |r| r.get(0))?
    };
    // Counters first: the allocator's capacity checks read them.
    let counters_repaired = repair_counters(c, tenant)?;
    let report = allocate(c, tenant, at, |a| {
        for l in &licenses {
            a.reconcile(*l)?;
        }
        Ok(())
    })?;
    let out = ReconcileReport {
        counts: RunCounts::from(&report),
        at: rfc3339(at),
        licenses: licenses.len(),
        counters_repaired,
        expired,
    };
    let kept = serde_json::to_value(&out).map_err(|e| Error::Internal(e.to_string()))?;
    c.prepare_cached("UPDATE tenants SET last_reconcile = ? WHERE rk = ?")?
        .execute(params![kept.to_string(), tenant])?;
    if !report.is_empty() || !out.expired.is_empty() || !out.counters_repaired.is_empty() {
        audit(
            c,
            tenant,
            at,
            actor,
            crate::store::events::acts::Act::Reconcile(kept),
        )?;
    }
    if report.repaired > 0 || !out.counters_repaired.is_empty() {
        let n = |v: u64| Num(v as i64);
        let item = items::DriftRepaired {
            granted: n(out.counts.granted),
            promoted: n(out.counts.promoted),
            blocked: n(out.counts.blocked),
            releasing: n(out.counts.releasing),
            released: n(out.counts.released),
            repaired: n(out.counts.repaired),
            by: actor.into(),
            counters_repaired: (!out.counters_repaired.is_empty())
                .then(|| json!(out.counters_repaired)),
        };
        outbox::record(c, tenant, 0, at, vec![item])?;
    }
    let mut expired_items = Vec::new();
    for s in &out.expired.selectors {
        let (kind, value) = s.selector.parts();
        let named = |k: &str| (kind == k).then(|| Text(value.to_owned()));
        expired_items.push(items::PendingExpired {
            reference: "license selector".into(),
            license: s.license.clone().into(),
            display_name: named("displayName"),
            external_id: named("externalId"),
            id: named("id"),
            ..Default::default()
        });
    }
    for m in &out.expired.members {
        expired_items.push(items::PendingExpired {
            reference: "group member".into(),
            group: m.group.clone().into(),
            member: m.member.clone().into(),
            ..Default::default()
        });
    }
    outbox::record(c, tenant, 0, at, expired_items)?;
    check_silence(c, tenant, at)?;
    crate::store::events::weekly::check_weekly(c, tenant, at)?;
    crate::store::allocation::history::check_run_out(c, tenant, at)?;
    Ok(out)
}

/// Notifies a tenant's silence once: when no provider call came for longer than its
/// `expected_sync_seconds`; the next call re-arms it.
fn check_silence(c: &Db, tenant: TenantKey, at: Millis) -> Result<()> {
    let (created, expected, last_call, notified): (String, i64, Option<String>, bool) = c.query_row(
        "SELECT created, expected_sync_seconds, last_provider_call, silence_notified FROM tenants WHERE rk = ?",
        [tenant],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let since = crate::store::engine::time::millis_of(last_call.as_deref().unwrap_or(&created));
    let silent = crate::store::access::tenants::silent_at(at, since, expected);
    if silent && !notified {
        outbox::record(
            c,
            tenant,
            0,
            at,
            vec![items::Silence {
                last_provider_call: last_call.into(),
                expected_sync_seconds: Num(expected),
                silent_for_seconds: Num((at - since) / 1000),
            }],
        )?;
    }
    if silent != notified {
        c.prepare_cached("UPDATE tenants SET silence_notified = ? WHERE rk = ?")?
            .execute(params![silent, tenant])?;
    }
    Ok(())
}

impl Store {
    /// Runs the reconciler over one tenant now.
    pub async fn reconcile(&self, tenant: TenantKey, actor: Actor) -> Result<ReconcileReport> {
        self.flush_provider_calls().await?;
        let at = self.now_ms();
        self.write_alone(Lock::Tenant(tenant), move |c| {
            reconcile_tenant(c, tenant, at, actor.as_str())
        })
        .await
    }

    /// Runs the reconciler over every tenant (the background pass), one transaction per tenant.
    pub async fn reconcile_all(&self) -> Result<PassOutcome> {
        self.reconcile_all_leased(0).await
    }

    /// As [`Store::reconcile_all`], the background pass of one of several nodes: on PostgreSQL
    /// a tenant is reconciled only by the node that takes its lease (`tenants.reconcile_lease`,
    /// `lease_ms` long, the pass interval), so each tenant has one pass per interval however
    /// many nodes run. Returns the tenants this node reconciled.
    ///
    /// Tenants are isolated: one whose pass fails is logged and counted in the answer's
    /// `failed`, and the pass goes on with the next. Only a closed store stops it.
    pub async fn reconcile_all_leased(&self, lease_ms: Millis) -> Result<PassOutcome> {
        let retention = self.retention();
        match self.prune_commit_marks().await {
            Ok(()) => {}
            // The database is down: every tenant would fail alike; the caller backs off.
            Err(e) if e.unavailable() => return Err(e),
            Err(e) => tracing::error!(error = %e, "pruning commit marks failed"),
        }
        match self.prune_history(self.now_ms(), retention).await {
            Ok(p) => {
                if let Ok(mut total) = self.inner.pruned.lock() {
                    total.seat_events += p.seat_events;
                    total.webhook_deliveries += p.webhook_deliveries;
                    total.webhook_events += p.webhook_events;
                    total.outbox += p.outbox;
                    total.audit += p.audit;
                }
            }
            Err(e) if e.unavailable() => return Err(e),
            Err(e) => tracing::error!(error = %e, "pruning the history failed"),
        }
        match self.purge_due_tenants().await {
            Ok(_) => {}
            Err(e) if e.unavailable() => return Err(e),
            Err(e) => tracing::error!(error = %e, "purging closed tenants failed"),
        }
        // A closed tenant gets no reconciler work (no mail, no seat changes).
        let tenants: Vec<(TenantKey, String)> = self
            .list_tenants()
            .await?
            .into_iter()
            .filter(|t| t.closed.is_none())
            .map(|t| (t.key, t.name))
            .collect();
        let mut outcome = PassOutcome::default();
        for (t, name) in &tenants {
            let step = async {
                if !self.lease_tenant(*t, lease_ms).await? {
                    return Ok(false);
                }
                self.reconcile(*t, Actor::reconciler()).await.map(|_| true)
            };
            match step.await {
                Ok(true) => outcome.reconciled += 1,
                Ok(false) => {}
                Err(Error::Closed) => return Err(Error::Closed),
                Err(e) if e.unavailable() => return Err(e),
                Err(e) => {
                    tracing::error!(tenant = %name, error = %e, "the reconciler pass of a tenant failed; the others go on");
                    outcome.failed.push(name.clone());
                }
            }
        }
        Ok(outcome)
    }

    /// Notes that the tenant's provider called now (kept in memory, written by the reconciler).
    pub fn provider_called(&self, tenant: TenantKey) {
        let now = self.now_ms();
        if let Ok(mut m) = self.inner.provider_calls.lock() {
            m.insert(tenant, now);
        }
        self.count_provider_request(tenant, now);
    }

    /// The provider call of `tenant` noted in memory and not written yet, if any.
    pub(in crate::store) fn unflushed_provider_call(&self, tenant: TenantKey) -> Option<Millis> {
        self.inner
            .provider_calls
            .lock()
            .ok()
            .and_then(|m| m.get(&tenant).copied())
    }

    /// Writes the remembered provider calls to the database.
    pub async fn flush_provider_calls(&self) -> Result<()> {
        let mut calls: Vec<(TenantKey, Millis)> = match self.inner.provider_calls.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return Ok(()),
        };
        // In tenant order: two nodes flushing at once lock the tenants' rows in the same order,
        // so they wait for each other instead of deadlocking.
        calls.sort_unstable();
        let mut requests = self.take_provider_requests();
        requests.sort_unstable();
        if calls.is_empty() && requests.is_empty() {
            return Ok(());
        }
        let kept = calls.clone();
        let kept_requests = requests.clone();
        let ticker = self.ticker();
        let written = self
            .write(Lock::None, move |c| {
                for &(t, at) in &calls {
                    c.prepare_cached("UPDATE tenants SET last_provider_call = CASE WHEN last_provider_call > ?1 THEN last_provider_call ELSE ?1 END WHERE rk = ?2")?
                        .execute(params![rfc3339(at), t])?;
                }
                // The requests each tenant's provider sent this node, added to their hours;
                // then whether a tenant's failure rate now warrants its warning.
                let now = ticker.now();
                let mut tenants = Vec::new();
                for &((t, hour), n) in &requests {
                    c.prepare_cached(
                        "INSERT INTO provider_requests (tenant_rk, hour, requests, failures)
                         SELECT rk, ?2, ?3, 0 FROM tenants WHERE rk = ?1
                         ON CONFLICT (tenant_rk, hour) DO UPDATE SET requests = provider_requests.requests + excluded.requests",
                    )?
                    .execute(params![t, hour, n])?;
                    if tenants.last() != Some(&t) {
                        tenants.push(t);
                    }
                }
                for t in tenants {
                    crate::store::events::provider_health::warn_if_due(c, t, now)?;
                }
                Ok(())
            })
            .await;
        if written.is_err() {
            self.keep_provider_requests(kept_requests);
            // Not lost: remembered again (the later of the two times) for the next flush.
            if let Ok(mut m) = self.inner.provider_calls.lock() {
                for (t, at) in kept {
                    let e = m.entry(t).or_insert(at);
                    *e = (*e).max(at);
                }
            }
        }
        written
    }
}
