//! Notifiable events that no write carries, counted in the database: a tenant's failing SCIM
//! requests, and requests refused a token of the tenant (revoked, expired, a wrong secret).
//!
//! Behind a load balancer each node sees only its share of a tenant's requests. Counted in a
//! node's memory, twenty failures spread over two nodes reached neither node's threshold, and a
//! token refused through both was recorded by each. Here every node adds to the same rows
//! (`scim_failures`, `alert_marks`), in a write job under the tenant's lock, so the threshold is
//! reached by the sum of the nodes' shares, and the notification is recorded once, in the same
//! transaction that decides it is due. Times are the store's clock ([`Store::ticker`]).
//!
//! - Failing requests: a notification when `threshold` requests failed within `window`, at most
//!   once per window, with the most common errors. At most [`KEPT`] failures are kept per
//!   tenant.
//! - Refused tokens: recorded at most once a minute per token, with how many refusals the
//!   record stands for (the refusals in between are counted, never lost).

use crate::alloc::Millis;
use crate::notify::items::{self, Num, Text};
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::events::outbox::record;
use crate::store::{Lock, Result, Store, TenantKey};

/// Failures kept per tenant to count and to name the most common errors.
pub const KEPT: i64 = 1000;
/// A token's refusals are recorded at most this often (ms), with the count in between.
pub const REFUSALS_EVERY: Millis = 60_000;
/// The mark of a tenant's failing-requests notification.
const FAILURES: &str = "failures";

impl Store {
    /// Counts a failed SCIM request of `tenant` (`label`: status, error type and route), and
    /// records the failing-requests notification when the tenant's failures within `window`
    /// (ms) reach `threshold` (0: never), at most once per window.
    pub async fn count_failed_request(
        &self,
        tenant: TenantKey,
        label: String,
        threshold: u32,
        window: Millis,
    ) -> Result<()> {
        if threshold == 0 {
            return Ok(());
        }
        let now = self.ticker().now();
        self.write(Lock::Tenant(tenant), move |c| {
            if let Some(event) = failed(c, tenant, &label, threshold, window, now)? {
                record(c, tenant, 0, now, vec![event])?;
            }
            Ok(())
        })
        .await
    }

    /// Counts a request refused the token `token_id` of `tenant` (`reason`, from `client`), and
    /// records it when the token's last record is a minute old, with the refusals since. True
    /// when it recorded.
    pub async fn count_refused_token(
        &self,
        tenant: TenantKey,
        token_id: String,
        reason: &'static str,
        client: Option<String>,
    ) -> Result<bool> {
        let now = self.ticker().now();
        self.write(Lock::Tenant(tenant), move |c| {
            let Some(requests) = refused(c, tenant, &token_id, now)? else {
                return Ok(false);
            };
            let event = items::AuthFailures {
                token_id: Text(token_id.clone()),
                reason: Text::from(reason),
                client: Text::from(client.clone()),
                requests: Num(requests),
                ..Default::default()
            };
            record(c, tenant, 0, now, vec![event])?;
            Ok(true)
        })
        .await
    }
}

/// Adds one failure; the notification's event when it is due.
fn failed(
    c: &Db,
    tenant: TenantKey,
    label: &str,
    threshold: u32,
    window: Millis,
    now: Millis,
) -> Result<Option<items::ScimFailures>> {
    c.prepare_cached("INSERT INTO scim_failures (tenant_rk, at, label) VALUES (?, ?, ?)")?
        .execute(params![tenant, now, label])?;
    c.prepare_cached("DELETE FROM scim_failures WHERE tenant_rk = ? AND at < ?")?
        .execute(params![tenant, now - window])?;
    let mut count: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM scim_failures WHERE tenant_rk = ?")?
        .query_row(params![tenant], |r| r.get(0))?;
    if count > KEPT {
        c.prepare_cached(
            "DELETE FROM scim_failures WHERE tenant_rk = ? AND id <= (SELECT id FROM scim_failures WHERE tenant_rk = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )?
        .execute(params![tenant, tenant, KEPT])?;
        count = KEPT;
    }
    if count < i64::from(threshold) {
        return Ok(None);
    }
    let last: Option<Millis> = c
        .prepare_cached("SELECT at FROM alert_marks WHERE tenant_rk = ? AND name = ?")?
        .query_row(params![tenant, FAILURES], |r| r.get(0))
        .optional()?;
    if last.is_some_and(|at| now - at < window) {
        return Ok(None);
    }
    mark(c, tenant, FAILURES, now, 0)?;
    let top: Vec<String> = c
        .prepare_cached(
            "SELECT label, COUNT(*) AS n FROM scim_failures WHERE tenant_rk = ? GROUP BY label ORDER BY n DESC, label LIMIT 5",
        )?
        .query_all(params![tenant], |r| {
            let (label, n): (String, i64) = (r.get(0)?, r.get(1)?);
            Ok(format!("{n} × {label}"))
        })?;
    Ok(Some(items::ScimFailures {
        failed_requests: Num(count),
        within_seconds: Num(window / 1000),
        most_common_errors: Text(top.join("; ")),
    }))
}

/// Adds one refusal of a token; how many refusals to record when a record is due.
fn refused(c: &Db, tenant: TenantKey, token_id: &str, now: Millis) -> Result<Option<i64>> {
    let name = format!("refused {token_id}");
    let last: Option<(Millis, i64)> = c
        .prepare_cached("SELECT at, unrecorded FROM alert_marks WHERE tenant_rk = ? AND name = ?")?
        .query_row(params![tenant, name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match last {
        Some((at, unrecorded)) if now - at < REFUSALS_EVERY => {
            mark(c, tenant, &name, at, unrecorded + 1)?;
            Ok(None)
        }
        Some((_, unrecorded)) => {
            mark(c, tenant, &name, now, 0)?;
            Ok(Some(unrecorded + 1))
        }
        None => {
            mark(c, tenant, &name, now, 0)?;
            Ok(Some(1))
        }
    }
}

/// Sets a tenant's mark `name`: last recorded `at`, with `unrecorded` events since.
pub(in crate::store) fn mark(
    c: &Db,
    tenant: TenantKey,
    name: &str,
    at: Millis,
    unrecorded: i64,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO alert_marks (tenant_rk, name, at, unrecorded) VALUES (?, ?, ?, ?)
         ON CONFLICT (tenant_rk, name) DO UPDATE SET at = excluded.at, unrecorded = excluded.unrecorded",
    )?
    .execute(params![tenant, name, at, unrecorded])?;
    Ok(())
}
