//! The identity provider's health as seatkeeper sees it: every failing SCIM request of a tenant
//! (`scim::explain::counts`), kept for [`HEALTH_DAYS`] as one row per kind of failure (method,
//! route, status, `scimType`, detail) with how often it repeated, when first and last, and the
//! last resource it named — never a body or a credential; and the tenant's requests and
//! failures per hour, so that the failure rate the provider's own quarantine rule judges can be
//! shown. Requests are counted in each node's memory and added to the hour's row every second
//! (`Store::flush_provider_calls`), so every node's share adds up; a failure is written at once.
//! When the rate over the window passes the tenant's `idp_failure_warn_percent` (with at least
//! [`WARN_MIN_FAILURES`] failures) its recipients are told once per window (`provider_failures`).

use serde::Serialize;

use crate::alloc::Millis;
use crate::notify::items::{self, Num, Text};
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::engine::time::rfc3339;
use crate::store::{Lock, Result, Store, TenantKey};

/// How many days of failures and requests are kept and judged.
pub const HEALTH_DAYS: i64 = 7;
const HEALTH_MS: Millis = HEALTH_DAYS * 86_400_000;
const HOUR_MS: Millis = 3_600_000;
/// Kinds of failure kept per tenant (the most recent).
pub const KEPT_KINDS: i64 = 200;
/// Fewer failures than this in the window never warn, whatever the rate.
pub const WARN_MIN_FAILURES: i64 = 100;
/// The mark of a tenant's warning (`alert_marks`).
const WARNED: &str = "provider failure rate";

/// One failing request, as the HTTP edge saw it.
#[derive(Debug, Clone)]
pub struct FailedRequest {
    pub method: String,
    /// The matched route (`/scim/v2/Groups/{id}`).
    pub route: String,
    /// The path it named.
    pub resource: String,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: String,
}

/// One kind of failing request of the window.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProviderFailure {
    pub method: String,
    pub route: String,
    /// The path the last one named.
    pub resource: String,
    pub status: u16,
    #[serde(rename = "scimType")]
    pub scim_type: Option<String>,
    pub detail: String,
    /// What it most likely means and what to do (`scim::explain`).
    pub cause: String,
    /// How many times it failed in the window.
    pub count: i64,
    pub first: String,
    pub last: String,
}

/// The provider's health over the last [`HEALTH_DAYS`] days.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProviderHealth {
    pub days: i64,
    /// Requests of the provider the tenant's token proved (up to a second late per node).
    pub requests: i64,
    /// Of them, failed.
    pub failed: i64,
    /// `failed` of `requests`, in percent (one decimal).
    pub failure_percent: f64,
    /// The tenant's warning level.
    pub warn_percent: i64,
    /// The provider's own rule, for comparison.
    pub quarantine: Quarantine,
    /// Each kind of failure, the most recent first.
    pub failures: Vec<ProviderFailure>,
}

/// Microsoft Entra ID's quarantine rule and where the tenant stands against it (its window
/// is the provider's; seatkeeper's week is a guide).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Quarantine {
    pub rule: &'static str,
    /// At least 5,000 failures: the provider judges the job.
    pub judged: bool,
    /// Judged, and past 40 % failed (or 40,000 failures).
    pub past_the_limit: bool,
}

const RULE: &str = "Microsoft Entra ID puts a provisioning job in quarantine when, after at least 5,000 failures, more than 40 % of its requests fail (or 40,000 fail); it then syncs once a day and disables the job after four weeks.";

fn percent(failed: i64, requests: i64) -> f64 {
    if requests <= 0 {
        return 0.0;
    }
    (failed as f64 * 1000.0 / requests as f64).round() / 10.0
}

/// Adds `requests` and `failures` to the hour of `at`.
fn add_to_hour(c: &Db, tenant: TenantKey, at: Millis, requests: i64, failures: i64) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO provider_requests (tenant_rk, hour, requests, failures) VALUES (?, ?, ?, ?)
         ON CONFLICT (tenant_rk, hour) DO UPDATE SET requests = provider_requests.requests + excluded.requests,
                                                     failures = provider_requests.failures + excluded.failures",
    )?
    .execute(params![tenant, at / HOUR_MS, requests, failures])?;
    Ok(())
}

/// The window's requests and failures of `tenant` at `now` (requests never fewer than
/// failures: a node's requests reach the table up to a second after its failures).
fn totals(c: &Db, tenant: TenantKey, now: Millis) -> Result<(i64, i64)> {
    let (requests, failed): (Option<i64>, Option<i64>) = c
        .prepare_cached(
            "SELECT CAST(SUM(requests) AS BIGINT), CAST(SUM(failures) AS BIGINT) FROM provider_requests WHERE tenant_rk = ? AND hour >= ?",
        )?
        .query_row(params![tenant, (now - HEALTH_MS) / HOUR_MS], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let failed = failed.unwrap_or(0);
    Ok((requests.unwrap_or(0).max(failed), failed))
}

/// Records the warning when the window's rate passed the tenant's level (with enough
/// failures), once per window.
pub(in crate::store) fn warn_if_due(c: &Db, tenant: TenantKey, now: Millis) -> Result<()> {
    let (requests, failed) = totals(c, tenant, now)?;
    if failed < WARN_MIN_FAILURES {
        return Ok(());
    }
    let warn: i64 = c
        .prepare_cached("SELECT idp_failure_warn_percent FROM tenants WHERE rk = ?")?
        .query_row([tenant], |r| r.get(0))?;
    if failed * 100 <= warn * requests {
        return Ok(());
    }
    let last: Option<Millis> = c
        .prepare_cached("SELECT at FROM alert_marks WHERE tenant_rk = ? AND name = ?")?
        .query_row(params![tenant, WARNED], |r| r.get(0))
        .optional()?;
    if last.is_some_and(|at| now - at < HEALTH_MS) {
        return Ok(());
    }
    crate::store::events::alerts::mark(c, tenant, WARNED, now, 0)?;
    let top = failures(c, tenant, now, "count DESC, last_at DESC", 5)?
        .into_iter()
        .map(|f| items::FailureLine {
            count: Num(f.count),
            request: Text(format!("{} {}", f.method, f.route)),
            status: Text(
                format!("{} {}", f.status, f.scim_type.unwrap_or_default())
                    .trim()
                    .to_owned(),
            ),
            cause: Text(f.cause),
        })
        .collect();
    crate::store::events::outbox::record(
        c,
        tenant,
        0,
        now,
        vec![items::ProviderFailures {
            requests: Num(requests),
            failures: Num(failed),
            failure_percent: Num(percent(failed, requests).round() as i64),
            warn_percent: Num(warn),
            days: Num(HEALTH_DAYS),
            top,
        }],
    )
}

/// The window's kinds of failure of `tenant`, in `order`, at most `limit`.
fn failures(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    order: &str,
    limit: i64,
) -> Result<Vec<ProviderFailure>> {
    let mut st = c.prepare(&format!(
        "SELECT method, route, resource, status, scim_type, detail, count, first_at, last_at
         FROM provider_failures WHERE tenant_rk = ? AND last_at >= ? ORDER BY {order} LIMIT ?"
    ))?;
    st.query_all(params![tenant, now - HEALTH_MS, limit], |r| {
        let (method, route, status, scim_type, detail): (
            String,
            String,
            i64,
            Option<String>,
            String,
        ) = (r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let status = u16::try_from(status).unwrap_or(0);
        Ok(ProviderFailure {
            cause: crate::scim::explain::likely_cause(
                &method,
                &route,
                status,
                scim_type.as_deref(),
                &detail,
            ),
            method,
            route,
            resource: r.get(2)?,
            status,
            scim_type,
            detail,
            count: r.get(6)?,
            first: rfc3339(r.get(7)?),
            last: rfc3339(r.get(8)?),
        })
    })
}

impl Store {
    /// Counts one request of `tenant`'s provider, in this node's memory until the next flush.
    pub(in crate::store) fn count_provider_request(&self, tenant: TenantKey, at: Millis) {
        if let Ok(mut m) = self.inner.provider_requests.lock() {
            *m.entry((tenant, at / HOUR_MS)).or_default() += 1;
        }
    }

    /// The requests counted in memory, taken for a flush.
    pub(in crate::store) fn take_provider_requests(&self) -> Vec<((TenantKey, i64), i64)> {
        self.inner
            .provider_requests
            .lock()
            .map(|mut m| m.drain().collect())
            .unwrap_or_default()
    }

    /// Puts counts back after a flush that failed (they are added at the next).
    pub(in crate::store) fn keep_provider_requests(&self, counts: Vec<((TenantKey, i64), i64)>) {
        if let Ok(mut m) = self.inner.provider_requests.lock() {
            for (k, n) in counts {
                *m.entry(k).or_default() += n;
            }
        }
    }

    /// Records one failing request of `tenant`'s provider: its kind's row, the hour's failure
    /// count, what the window no longer holds forgotten, and the warning when it is due.
    pub async fn record_provider_failure(&self, tenant: TenantKey, f: FailedRequest) -> Result<()> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let now = ticker.now();
            let fingerprint: String = format!(
                "{} {} {} {} {}",
                f.method,
                f.route,
                f.status,
                f.scim_type.as_deref().unwrap_or(""),
                f.detail
            )
            .chars()
            .take(600)
            .collect();
            c.prepare_cached(
                "INSERT INTO provider_failures (tenant_rk, fingerprint, method, route, resource, status, scim_type, detail, first_at, last_at, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1)
                 ON CONFLICT (tenant_rk, fingerprint) DO UPDATE SET count = provider_failures.count + 1,
                     last_at = excluded.last_at, resource = excluded.resource",
            )?
            .execute(params![tenant, fingerprint, f.method, f.route, f.resource, i64::from(f.status), f.scim_type, f.detail, now])?;
            add_to_hour(c, tenant, now, 0, 1)?;
            c.prepare_cached("DELETE FROM provider_failures WHERE tenant_rk = ? AND last_at < ?")?
                .execute(params![tenant, now - HEALTH_MS])?;
            c.prepare_cached("DELETE FROM provider_requests WHERE tenant_rk = ? AND hour < ?")?
                .execute(params![tenant, (now - HEALTH_MS) / HOUR_MS])?;
            c.prepare_cached(
                "DELETE FROM provider_failures WHERE tenant_rk = ?1 AND fingerprint IN (
                   SELECT fingerprint FROM provider_failures WHERE tenant_rk = ?1
                   ORDER BY last_at DESC, fingerprint LIMIT 1000000 OFFSET ?2)",
            )?
            .execute(params![tenant, KEPT_KINDS])?;
            warn_if_due(c, tenant, now)
        })
        .await
    }

    /// `tenant`'s provider over the last [`HEALTH_DAYS`] days: its requests, failures and rate
    /// against the provider's quarantine rule, and each kind of failure with its likely cause.
    pub async fn provider_failures(&self, tenant: TenantKey) -> Result<ProviderHealth> {
        // This node's requests not written yet count too.
        let _ = self.flush_provider_calls().await;
        let now = self.now_ms();
        self.read(move |c| {
            let (requests, failed) = totals(c, tenant, now)?;
            let warn_percent: i64 = c
                .prepare_cached("SELECT idp_failure_warn_percent FROM tenants WHERE rk = ?")?
                .query_row([tenant], |r| r.get(0))?;
            let failure_percent = percent(failed, requests);
            Ok(ProviderHealth {
                days: HEALTH_DAYS,
                requests,
                failed,
                failure_percent,
                warn_percent,
                quarantine: Quarantine {
                    rule: RULE,
                    judged: failed >= 5_000,
                    past_the_limit: (failed >= 5_000 && failure_percent > 40.0) || failed >= 40_000,
                },
                failures: failures(c, tenant, now, "last_at DESC, fingerprint", KEPT_KINDS)?,
            })
        })
        .await
    }
}
