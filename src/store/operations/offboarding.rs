//! A customer leaves: the tenant is closed at once (every credential of it refused, no mail, no
//! webhooks, no reconciler work), its data kept for `tenant_retention_days` during which it can
//! be exported as JSON lines and reopened, then every row of it purged. The operator's own audit
//! chain records the close, the export, the reopening and the purge (the tenant's own chain goes
//! with its data).
//!
//! The purge walks the database's catalogue: every table with a `tenant` (or `tenant_rk`)
//! column loses the tenant's rows, so a table added later is purged without a change here (and
//! `tests/api/offboarding.rs` walks the catalogue the same way to prove it).

use serde_json::{json, Value};

use crate::alloc::Millis;
use crate::store::engine::sql::{params, Db};
use crate::store::engine::time::rfc3339;
use crate::store::events::acts::{Act, TenantClosed, TenantExported, TenantRef};
use crate::store::events::audit::{record as audit, Actor, OPERATOR_CHAIN};
use crate::store::{Error, Lock, Result, Store, TenantKey};

const DAY_MS: Millis = 86_400_000;

/// The tables of the database that hold a tenant's rows, and the column that names the tenant.
pub fn tenant_tables(c: &Db) -> Result<Vec<(String, String)>> {
    let columns = crate::store::engine::dialect::columns(c)?;
    Ok(columns
        .into_iter()
        .filter(|(t, col)| t != "tenants" && (col == "tenant" || col == "tenant_rk"))
        .collect())
}

/// Every row of tenant `t` as JSON lines: the tenant, users, groups with their members,
/// licenses with their selected groups, seats (waiting ones with their place), overrides,
/// holds and the audit log.
fn export_lines(c: &Db, t: TenantKey) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut line = |kind: &str, v: Value| {
        out.push(json!({"type": kind, "data": v}).to_string());
    };
    let tenant = crate::store::access::tenants::tenant_by_key(c, t)?;
    line("tenant", json!(tenant));
    let docs = |sql: &str| -> Result<Vec<Value>> {
        c.prepare(sql)?.query_all([t], |r| {
            let doc: String = r.get(0)?;
            Ok(serde_json::from_str(&doc).unwrap_or(Value::Null))
        })
    };
    let users = docs("SELECT doc FROM users WHERE tenant = ? ORDER BY id")?;
    for u in users {
        line("user", u);
    }
    let groups: Vec<(String, Value)> = c
        .prepare("SELECT id, doc FROM groups WHERE tenant = ? ORDER BY id")?
        .query_all([t], |r| {
            let doc: String = r.get(1)?;
            Ok((r.get(0)?, serde_json::from_str(&doc).unwrap_or(Value::Null)))
        })?;
    for (id, mut g) in groups {
        let members: Vec<String> = c
            .prepare(
                "SELECT m.member_id FROM group_members m JOIN groups g ON g.rk = m.group_rk
                 WHERE g.tenant = ? AND g.id = ? ORDER BY m.member_id",
            )?
            .query_all(params![t, id], |r| r.get(0))?;
        g["members"] = json!(members);
        line("group", g);
    }
    let licenses: Vec<(i64, String)> = c
        .prepare("SELECT rk, id FROM licenses WHERE tenant = ? ORDER BY id")?
        .query_all([t], |r| Ok((r.get(0)?, r.get(1)?)))?;
    for (rk, _) in &licenses {
        line(
            "license",
            json!(crate::store::allocation::license_view::view(c, *rk)?),
        );
        // Seats in the allocator's order: granted, releasing, then the waitlist by place.
        let seats: Vec<Value> = c
            .prepare(
                "SELECT s.user_id, s.state, s.pinned, s.entitled_at, s.since, s.release_at, s.hold, s.pool FROM seats s
                 WHERE s.license_rk = ?
                 ORDER BY CASE s.state WHEN 'granted' THEN 0 WHEN 'releasing' THEN 1 ELSE 2 END,
                          s.pinned DESC, s.entitled_at, s.user_id",
            )?
            .query_all([rk], |r| {
                Ok(json!({
                    "userId": r.get::<_, String>(0)?,
                    "state": r.get::<_, String>(1)?,
                    "pinned": r.get::<_, bool>(2)?,
                    "entitledAt": r.get::<_, i64>(3)?,
                    "since": rfc3339(r.get::<_, i64>(4)?),
                    "releaseAt": r.get::<_, Option<i64>>(5)?.map(rfc3339),
                    "hold": r.get::<_, Option<i64>>(6)?,
                    "pool": r.get::<_, Option<String>>(7)?,
                }))
            })?;
        let mut place = 0;
        for mut s in seats {
            if s["state"] == "blocked" {
                place += 1;
                s["position"] = json!(place);
            }
            s["license"] = json!(licenses.iter().find(|(k, _)| k == rk).map(|(_, id)| id));
            line("seat", s);
        }
        let overrides: Vec<Value> = c
            .prepare("SELECT user_id, kind, created, set_by FROM overrides WHERE license_rk = ? ORDER BY user_id")?
            .query_all([rk], |r| {
                Ok(json!({"userId": r.get::<_, String>(0)?, "kind": r.get::<_, String>(1)?,
                    "since": r.get::<_, String>(2)?, "setBy": r.get::<_, Option<String>>(3)?}))
            })?;
        for o in overrides {
            line("override", o);
        }
    }
    let holds: Vec<Value> = c
        .prepare("SELECT rk, state, created, held, total, changes, decided, decided_by FROM holds WHERE tenant = ? ORDER BY rk")?
        .query_all([t], |r| {
            let changes: String = r.get(5)?;
            Ok(json!({"id": r.get::<_, i64>(0)?, "state": r.get::<_, String>(1)?,
                "opened": rfc3339(r.get::<_, i64>(2)?), "held": r.get::<_, i64>(3)?,
                "total": r.get::<_, i64>(4)?,
                "changes": serde_json::from_str::<Value>(&changes).unwrap_or(Value::Null),
                "decided": r.get::<_, Option<i64>>(6)?.map(rfc3339),
                "decidedBy": r.get::<_, Option<String>>(7)?}))
        })?;
    for h in holds {
        line("hold", h);
    }
    let audit_rows: Vec<Value> = c
        .prepare(
            "SELECT seq, at, actor, action, detail, hash FROM audit WHERE tenant = ? ORDER BY seq",
        )?
        .query_all([t], |r| {
            let detail: String = r.get(4)?;
            Ok(
                json!({"cursor": r.get::<_, i64>(0)?, "at": rfc3339(r.get::<_, i64>(1)?),
                "actor": r.get::<_, String>(2)?, "action": r.get::<_, String>(3)?,
                "detail": serde_json::from_str::<Value>(&detail).unwrap_or(Value::Null),
                "hash": r.get::<_, Option<String>>(5)?}),
            )
        })?;
    for a in audit_rows {
        line("audit", a);
    }
    Ok(out)
}

/// Deletes every row of tenant `t`: the tenant's row (whose foreign keys cascade), then what
/// names it in any other table.
fn purge(c: &Db, t: TenantKey) -> Result<()> {
    let tables = tenant_tables(c)?;
    c.execute("DELETE FROM tenants WHERE rk = ?", [t])?;
    for (table, column) in tables {
        c.execute(&format!("DELETE FROM {table} WHERE {column} = ?"), [t])?;
    }
    Ok(())
}

impl Store {
    /// Closes tenant `t` at once; its rows are purged `retention_days` later (now with 0).
    /// Pending mail is skipped, console sessions end; the operator's chain records it.
    pub async fn close_tenant(
        &self,
        t: TenantKey,
        retention_days: i64,
        actor: Actor,
    ) -> Result<()> {
        let ticker = self.ticker();
        let by = actor.clone();
        let closed = self
            .write(Lock::Tenant(t), move |c| {
                let at = ticker.now();
                let (id, name, closed): (String, String, Option<Millis>) = c
                    .query_row("SELECT id, name, closed_at FROM tenants WHERE rk = ?", [t], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                if closed.is_some() {
                    return Err(Error::Conflict(format!("tenant {name:?} is closed already")));
                }
                let purge_at = at + retention_days.max(0) * DAY_MS;
                c.execute(
                    "UPDATE tenants SET closed_at = ?, purge_at = ? WHERE rk = ?",
                    params![at, purge_at, t],
                )?;
                c.execute("DELETE FROM console_sessions WHERE tenant = ?", [t])?;
                c.execute(
                    "UPDATE outbox SET state = 'skipped' WHERE tenant = ? AND state IN ('collecting', 'closing', 'pending')",
                    [t],
                )?;
                audit(
                    c,
                    OPERATOR_CHAIN,
                    at,
                    by.as_str(),
                    Act::TenantClose(TenantClosed {
                        tenant: id,
                        name,
                        purge_at: rfc3339(purge_at),
                    }),
                )
            })
            .await;
        self.forget_tenants();
        closed?;
        if retention_days <= 0 {
            self.purge_tenant(t, actor).await?;
        }
        Ok(())
    }

    /// Reopens a closed tenant that is not purged yet: its credentials work again.
    pub async fn reopen_tenant(&self, t: TenantKey, actor: Actor) -> Result<()> {
        let ticker = self.ticker();
        let reopened = self
            .write(Lock::Tenant(t), move |c| {
                let (id, closed): (String, Option<Millis>) =
                    c.query_row("SELECT id, closed_at FROM tenants WHERE rk = ?", [t], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                if closed.is_none() {
                    return Err(Error::Conflict("the tenant is open".into()));
                }
                c.execute(
                    "UPDATE tenants SET closed_at = NULL, purge_at = NULL WHERE rk = ?",
                    [t],
                )?;
                audit(
                    c,
                    OPERATOR_CHAIN,
                    ticker.now(),
                    actor.as_str(),
                    Act::TenantReopen(TenantRef { tenant: id }),
                )
            })
            .await;
        self.forget_tenants();
        reopened
    }

    /// Every row of tenant `t` as JSON lines (see `export_lines`), in one read snapshot; the
    /// operator's chain records that it was exported.
    pub async fn export_tenant(&self, t: TenantKey, actor: Actor) -> Result<Vec<String>> {
        let lines = self
            .read(move |c| crate::store::in_snapshot(c, |c| export_lines(c, t)))
            .await?;
        let ticker = self.ticker();
        let count = lines.len();
        self.write(Lock::None, move |c| {
            let id: String =
                c.query_row("SELECT id FROM tenants WHERE rk = ?", [t], |r| r.get(0))?;
            audit(
                c,
                OPERATOR_CHAIN,
                ticker.now(),
                actor.as_str(),
                Act::TenantExport(TenantExported {
                    tenant: id,
                    lines: count,
                }),
            )
        })
        .await?;
        Ok(lines)
    }

    /// Purges a closed tenant now: every row of it, in every table.
    pub async fn purge_tenant(&self, t: TenantKey, actor: Actor) -> Result<()> {
        let ticker = self.ticker();
        let purged = self
            .write_alone(Lock::Tenant(t), move |c| {
                let (id, name, closed): (String, String, Option<Millis>) = c.query_row(
                    "SELECT id, name, closed_at FROM tenants WHERE rk = ?",
                    [t],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                if closed.is_none() {
                    return Err(Error::Conflict(format!(
                        "tenant {name:?} is open: close it first (DELETE /admin/v1/tenants/{{t}})"
                    )));
                }
                purge(c, t)?;
                audit(
                    c,
                    OPERATOR_CHAIN,
                    ticker.now(),
                    actor.as_str(),
                    Act::TenantPurge(TenantRef { tenant: id }),
                )
            })
            .await;
        self.forget_tenants();
        purged
    }

    /// Purges every closed tenant whose retention has passed (the reconciler's pass).
    pub async fn purge_due_tenants(&self) -> Result<usize> {
        let now = self.now_ms();
        let due: Vec<TenantKey> = self
            .read(move |c| {
                c.prepare("SELECT rk FROM tenants WHERE closed_at IS NOT NULL AND purge_at <= ?")?
                    .query_all([now], |r| r.get(0))
            })
            .await?;
        for t in &due {
            self.purge_tenant(*t, Actor::reconciler()).await?;
        }
        Ok(due.len())
    }
}
