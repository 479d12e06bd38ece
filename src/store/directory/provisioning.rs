//! What a tenant's provisioning looks like from outside: the last provider call and silence,
//! pending references waiting for their group or user, each license's group limits and the
//! last reconcile report (`status`, the console's dashboard, `/metrics`).

use serde::Serialize;

use crate::store::access::tenants::silent_at;
use crate::store::allocation::reconciler::ReconcileReport;
use crate::store::allocation::selection::Selector;
use crate::store::engine::sql::Db;
use crate::store::engine::time::{millis_of, rfc3339};
use crate::store::{Result, Store, TenantKey};

/// A tenant's provisioning health: its provider's last call, whether it has gone silent, the
/// references still pending and the last reconciler pass.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TenantStatus {
    pub last_provider_call: Option<String>,
    pub expected_sync_seconds: i64,
    pub pending_window_seconds: i64,
    /// No provider call for longer than `expected_sync_seconds`.
    pub silent: bool,
    pub silent_for_seconds: i64,
    pub pending: Pending,
    pub last_reconcile: Option<ReconcileReport>,
    /// Circuit-breaker holds waiting for an admin's decision, and the seats they hold.
    pub open_holds: i64,
    pub held_seats: i64,
    /// Notification emails the mail server refused for good, kept until someone retries or
    /// dismisses them.
    pub undelivered: i64,
    /// Licenses with reservations or ceilings: each selected group's use against them.
    pub group_limits: Vec<LicenseGroups>,
}

/// A license's selected groups with their reservations, ceilings and use.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LicenseGroups {
    pub license: String,
    pub name: String,
    pub groups: Vec<crate::store::allocation::selection::SelectorView>,
}

/// The tenant's licenses with reservations or ceilings, each group's use against them.
fn group_limits(c: &Db, tenant: TenantKey) -> Result<Vec<LicenseGroups>> {
    let mut st = c.prepare_cached(
        "SELECT rk FROM licenses l WHERE tenant = ? AND EXISTS (SELECT 1 FROM license_groups lg WHERE lg.license_rk = l.rk AND (lg.reserve > 0 OR lg.max_seats IS NOT NULL))
         ORDER BY created, id",
    )?;
    let keys = st.query_all::<i64, _>([tenant], |r| r.get(0))?;
    keys.into_iter()
        .map(|l| {
            let v = crate::store::allocation::license_view::view(c, l)?;
            Ok(LicenseGroups {
                license: v.id,
                name: v.name,
                groups: v.groups,
            })
        })
        .collect()
}

/// Whether a tenant's provider calls as expected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub last_provider_call: Option<String>,
    pub silent: bool,
    pub silent_for_seconds: i64,
}

impl TenantStatus {
    pub fn health(&self) -> Health {
        Health {
            last_provider_call: self.last_provider_call.clone(),
            silent: self.silent,
            silent_for_seconds: self.silent_for_seconds,
        }
    }
}

/// References that name nothing yet: selectors waiting for their group, member values waiting
/// for their user or group (the first 1,000, oldest first).
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Pending {
    pub selectors: Vec<PendingSelector>,
    pub members: Vec<PendingMember>,
}

/// A license's selector that matches no group yet.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PendingSelector {
    /// The license's name.
    pub license: String,
    #[serde(flatten)]
    pub selector: Selector,
    pub since: Option<String>,
}

/// A group member value that names no user or group yet.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PendingMember {
    #[serde(rename = "groupId")]
    pub group_id: String,
    /// The group's displayName.
    pub group: String,
    pub member: String,
    pub since: String,
}

/// Pending references of a tenant, for its status.
fn pending(c: &Db, tenant: TenantKey) -> Result<Pending> {
    let mut st = c.prepare_cached(
        "SELECT l.name, s.selector, s.value, s.pending_since FROM license_groups s JOIN licenses l ON l.rk = s.license_rk
         WHERE s.tenant = ? AND s.group_id IS NULL ORDER BY s.pending_since",
    )?;
    let selectors = st.query_all([tenant], |r| {
        Ok(PendingSelector {
            license: r.get(0)?,
            selector: Selector::from_parts(&r.get::<_, String>(1)?, r.get(2)?),
            since: r.get(3)?,
        })
    })?;
    let mut st = c.prepare_cached(
        "SELECT g.id, g.display_name, m.member_id, m.added FROM group_members m JOIN groups g ON g.rk = m.group_rk
         WHERE m.tenant = ?1
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = ?1 AND u.external_id = m.member_id)
           AND NOT EXISTS (SELECT 1 FROM groups s WHERE s.tenant = ?1 AND s.id = m.member_id)
         ORDER BY m.added LIMIT 1000",
    )?;
    let members = st.query_all([tenant], |r| {
        Ok(PendingMember {
            group_id: r.get(0)?,
            group: r.get(1)?,
            member: r.get(2)?,
            since: r.get(3)?,
        })
    })?;
    Ok(Pending { selectors, members })
}

impl Store {
    /// Last provider call, silence flag, pending references, last reconcile report.
    /// Every tenant's provider health in one read (the console's tenant list), by tenant key.
    pub async fn provider_health(&self) -> Result<std::collections::HashMap<TenantKey, Health>> {
        let now = self.now_ms();
        let rows: Vec<(TenantKey, String, i64, Option<String>)> = self
            .read(|c| {
                let mut st = c.prepare_cached(
                    "SELECT rk, created, expected_sync_seconds, last_provider_call FROM tenants",
                )?;
                st.query_all([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(t, created, expected, last_call)| {
                let last = match (
                    self.unflushed_provider_call(t),
                    last_call.as_deref().map(millis_of),
                ) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let since = last.unwrap_or_else(|| millis_of(&created));
                let silent = silent_at(now, since, expected);
                (
                    t,
                    Health {
                        last_provider_call: last.map(rfc3339),
                        silent,
                        silent_for_seconds: if silent { (now - since) / 1000 } else { 0 },
                    },
                )
            })
            .collect())
    }

    pub async fn status(&self, tenant: TenantKey) -> Result<TenantStatus> {
        let now = self.now_ms();
        let in_memory = self.unflushed_provider_call(tenant);
        self.read(move |c| {
            let (created, expected, window, last_call, last_reconcile): (String, i64, i64, Option<String>, Option<String>) = c.query_row(
                "SELECT created, expected_sync_seconds, pending_window_seconds, last_provider_call, last_reconcile FROM tenants WHERE rk = ?",
                [tenant],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let last = match (in_memory, last_call.as_deref().map(millis_of)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let since = last.unwrap_or_else(|| millis_of(&created));
            let silent = silent_at(now, since, expected);
            Ok(TenantStatus {
                last_provider_call: last.map(rfc3339),
                expected_sync_seconds: expected,
                pending_window_seconds: window,
                silent,
                silent_for_seconds: if silent { (now - since) / 1000 } else { 0 },
                pending: pending(c, tenant)?,
                last_reconcile: last_reconcile.and_then(|s| serde_json::from_str(&s).ok()),
                open_holds: c
                    .prepare_cached("SELECT count(*) FROM holds WHERE tenant = ? AND state = 'open'")?
                    .query_row([tenant], |r| r.get(0))?,
                held_seats: c
                    .prepare_cached("SELECT CAST(coalesce(sum(held), 0) AS BIGINT) FROM holds WHERE tenant = ? AND held > 0")?
                    .query_row([tenant], |r| r.get(0))?,
                undelivered: c
                    .prepare_cached("SELECT count(*) FROM outbox WHERE tenant = ? AND state = 'failed' AND copy_of IS NULL")?
                    .query_row([tenant], |r| r.get(0))?,
                group_limits: group_limits(c, tenant)?,
            })
        })
        .await
    }
}
