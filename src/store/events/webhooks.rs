//! Webhook endpoints and their outbox.
//!
//! An endpoint belongs to a tenant, or to the operator (`tenant` NULL: every tenant's events).
//! Events are written by the write job of the change they announce, in its transaction
//! ([`record`]; seat events through `seats::TxSeats`, which queues them while the allocator runs
//! and writes them when it flushes): one `webhook_events` row with the body fixed then, and one
//! `webhook_deliveries` row per enabled endpoint subscribed to its type. A committed change
//! therefore cannot lose its webhooks and a rolled-back one (a preview) sends none; the
//! dispatcher (`workers::webhooks`) only reads them and records outcomes.
//!
//! Order: deliveries of one subject (a user, or a license for `license.updated`) to one
//! endpoint go one at a time in event order: [`Store::due_webhooks`] offers a delivery only when
//! no earlier one of its subject is still pending there.

use serde::Serialize;
use serde_json::{json, Value};

use crate::alloc::Millis;
use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use crate::store::engine::time::rfc3339;
use crate::store::events::audit::{record as audit, Actor, OPERATOR_CHAIN};
use crate::store::{Error, Lock, Result, Store, TenantKey};
use crate::webhook::{new_secret, EventType, Events};

/// How long a rotated-out secret keeps signing beside the new one.
pub const OLD_SECRET_MS: Millis = 24 * 3_600_000;
/// A PostgreSQL node's claim on a delivery it is sending lasts this long.
const SEND_LEASE_MS: Millis = 120_000;

/// A webhook endpoint, as listed (never with its secret).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled, when it was by seatkeeper (the endpoint kept failing, or said 410).
    #[serde(rename = "disabledReason")]
    pub disabled_reason: Option<String>,
    /// Failing since (RFC 3339): the first failure after the last success.
    #[serde(rename = "failingSince")]
    pub failing_since: Option<String>,
    /// Deliveries waiting for their (next) attempt.
    pub pending: i64,
    pub created: String,
}

/// A new endpoint or a rotated secret: the secret is shown this once.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WebhookSecret {
    pub id: String,
    pub secret: String,
    #[serde(flatten)]
    pub webhook: WebhookView,
}

/// What an update may change.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `true` re-enables a disabled endpoint (its pending deliveries resume).
    pub enabled: Option<bool>,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The event's `webhook-id` (the same on every attempt and every endpoint).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed` (refused for good; can be redelivered).
    pub state: String,
    pub attempts: i64,
    /// The HTTP status of the last attempt, when one answered.
    #[serde(rename = "lastStatus")]
    pub last_status: Option<i64>,
    #[serde(rename = "lastError")]
    pub last_error: Option<String>,
    /// When the event happened.
    pub at: String,
    /// Delivered or failed at; for a pending delivery, its next attempt.
    #[serde(rename = "doneAt")]
    pub done_at: Option<String>,
    #[serde(rename = "nextAttempt")]
    pub next_attempt: Option<String>,
}

/// A delivery due now, with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub webhook: i64,
    pub event: i64,
    pub webhook_id: String,
    pub url: String,
    /// The secrets to sign with: the current one, and the previous one while it still signs.
    pub secrets: Vec<String>,
    pub msg_id: String,
    pub body: String,
    pub attempts: i64,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Delivered { status: u16 },
    /// Timeout, connection error, 408, 429 or 5xx: again at `next` (ms).
    Retry {
        status: Option<u16>,
        error: String,
        next: Millis,
    },
    /// Another answer (a 4xx, a redirect): not retried; can be redelivered by hand. `gone`: the
    /// endpoint said 410 and is disabled.
    Refused {
        status: Option<u16>,
        error: String,
        gone: bool,
    },
}

/// The enabled endpoints that receive `tenant`'s events, with their subscriptions.
pub(in crate::store) fn endpoints(c: &Db, tenant: TenantKey) -> Result<Vec<(i64, Events)>> {
    c.prepare_cached(ENDPOINTS_SQL)?
        .query_all([tenant], endpoint_row)
}

/// The enabled endpoints that receive a tenant's events ([`endpoints`]).
pub(in crate::store) const ENDPOINTS_SQL: &str =
    "SELECT rk, events FROM webhooks WHERE (tenant = ? OR tenant IS NULL) AND enabled ORDER BY rk";

/// A row of [`ENDPOINTS_SQL`]: the endpoint and the events it takes.
pub(in crate::store) fn endpoint_row(r: &crate::store::engine::sql::Row) -> Result<(i64, Events)> {
    let events: String = r.get(1)?;
    let names: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
    Ok((r.get(0)?, Events::parse(&names).unwrap_or_default()))
}

/// `{id, name}` of the tenant.
pub(in crate::store) fn tenant_ref(c: &Db, tenant: TenantKey) -> Result<Value> {
    c.prepare_cached("SELECT id, name FROM tenants WHERE rk = ?")?
        .query_row([tenant], |r| {
            Ok(json!({"id": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?}))
        })
}

/// Writes an event of `kind` about `subject` (a user's id, or `license:<id>`) for every endpoint
/// in `to` subscribed to it, in the caller's transaction.
pub(in crate::store) fn record(
    c: &Db,
    tenant: TenantKey,
    to: &[(i64, Events)],
    kind: EventType,
    subject: &str,
    at: Millis,
    data: Value,
) -> Result<()> {
    let targets: Vec<i64> = to
        .iter()
        .filter(|(_, e)| e.contains(kind))
        .map(|(rk, _)| *rk)
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let msg_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let body = json!({"type": kind.as_str(), "timestamp": rfc3339(at), "data": data}).to_string();
    let seq: i64 = c
        .prepare_cached(
            "INSERT INTO webhook_events (tenant, msg_id, type, at, body) VALUES (?, ?, ?, ?, ?) RETURNING seq",
        )?
        .query_row(params![tenant, msg_id, kind.as_str(), at, body], |r| {
            r.get(0)
        })?;
    let mut st = c.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook, event, tenant, subject, state, due) VALUES (?, ?, ?, ?, 'pending', ?)",
    )?;
    for w in targets {
        st.execute(params![w, seq, tenant, subject, at])?;
    }
    Ok(())
}

/// `license.updated`, from the license's view before and after an admin's change.
pub(in crate::store) fn license_updated(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    before: &crate::store::allocation::license_view::LicenseView,
    after: &crate::store::allocation::license_view::LicenseView,
) -> Result<()> {
    use crate::store::allocation::license_view::LicenseMode;
    // A license observing before and after the change tells the product nothing.
    if before.mode == LicenseMode::Observe && after.mode == LicenseMode::Observe {
        return Ok(());
    }
    let to = endpoints(c, tenant)?;
    if !to
        .iter()
        .any(|(_, e)| e.contains(EventType::LicenseUpdated))
    {
        return Ok(());
    }
    let data = json!({
        "tenant": tenant_ref(c, tenant)?,
        "license": after,
        "previous": before,
    });
    record(
        c,
        tenant,
        &to,
        EventType::LicenseUpdated,
        &format!("license:{}", after.id),
        at,
        data,
    )
}

fn view_row(r: &Row) -> Result<WebhookView> {
    let events: String = r.get(2)?;
    Ok(WebhookView {
        id: r.get(0)?,
        url: r.get(1)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        enabled: r.get(3)?,
        disabled_reason: r.get(4)?,
        failing_since: r.get::<_, Option<Millis>>(5)?.map(rfc3339),
        pending: r.get(6)?,
        created: rfc3339(r.get(7)?),
    })
}

const VIEW: &str = "SELECT w.id, w.url, w.events, w.enabled, w.disabled_reason, w.failing_since,
    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook = w.rk AND d.state = 'pending'), w.created
    FROM webhooks w";

/// The endpoint `id` of `tenant` (`None`: the operator's).
fn webhook_key(c: &Db, tenant: Option<TenantKey>, id: &str) -> Result<i64> {
    c.prepare_cached(
        "SELECT rk FROM webhooks WHERE id = ?1 AND (tenant = ?2 OR (tenant IS NULL AND CAST(?2 AS BIGINT) IS NULL))",
    )?
    .query_row(params![id, tenant], |r| r.get(0))
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("webhook {id:?}")))
}

fn view(c: &Db, rk: i64) -> Result<WebhookView> {
    c.prepare_cached(&format!("{VIEW} WHERE w.rk = ?"))?
        .query_row([rk], view_row)
}

fn event_names(events: &[String]) -> Result<String> {
    let parsed = Events::parse(events).map_err(|e| Error::Invalid(format!("events: {e}")))?;
    Ok(serde_json::to_string(&parsed.names()).unwrap_or_else(|_| "[]".into()))
}

impl Store {
    /// Registers an endpoint (its URL already vetted by `webhook::vet::vet`); answers
    /// its new secret.
    pub async fn create_webhook(
        &self,
        tenant: Option<TenantKey>,
        url: String,
        events: Vec<String>,
        actor: Actor,
        max_per_tenant: u32,
    ) -> Result<WebhookSecret> {
        let names = event_names(&events)?;
        let ticker = self.ticker();
        let lock = tenant.map_or(Lock::None, Lock::Tenant);
        self.write(lock, move |c| {
            let at = ticker.now();
            if let Some(t) = tenant {
                // Under the tenant's lock: two creates cannot both pass the count.
                let n: i64 = c
                    .prepare_cached("SELECT count(*) FROM webhooks WHERE tenant = ?")?
                    .query_row([t], |r| r.get(0))?;
                if n >= i64::from(max_per_tenant) {
                    return Err(Error::Invalid(format!(
                        "a tenant has at most {max_per_tenant} webhook endpoints (webhook_max_endpoints_per_tenant); delete one first"
                    )));
                }
            }
            let id = uuid::Uuid::new_v4().to_string();
            let secret = new_secret();
            let rk: i64 = c
                .prepare_cached(
                    "INSERT INTO webhooks (id, tenant, url, events, secret, created) VALUES (?, ?, ?, ?, ?, ?) RETURNING rk",
                )?
                .query_row(params![id, tenant, url, names, secret, at], |r| r.get(0))?;
            let webhook = view(c, rk)?;
            audit(c, tenant.unwrap_or(OPERATOR_CHAIN), at, actor.as_str(), crate::store::events::acts::Act::WebhookCreate(crate::store::events::acts::WebhookRecord { webhook: json!(webhook) }))?;
            Ok(WebhookSecret {
                id,
                secret,
                webhook,
            })
        })
        .await
    }

    /// The endpoints of `tenant`, or the operator's (`None`).
    pub async fn list_webhooks(&self, tenant: Option<TenantKey>) -> Result<Vec<WebhookView>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "{VIEW} WHERE (w.tenant = ?1 OR (w.tenant IS NULL AND CAST(?1 AS BIGINT) IS NULL)) ORDER BY w.created, w.id"
            ))?;
            st
                .query_all(params![tenant], view_row)
        })
        .await
    }

    pub async fn get_webhook(&self, tenant: Option<TenantKey>, id: String) -> Result<WebhookView> {
        self.read(move |c| view(c, webhook_key(c, tenant, &id)?))
            .await
    }

    /// Changes an endpoint's URL (already vetted), its events, or enables it again.
    pub async fn update_webhook(
        &self,
        tenant: Option<TenantKey>,
        id: String,
        change: WebhookChange,
        actor: Actor,
    ) -> Result<WebhookView> {
        let names = change.events.as_deref().map(event_names).transpose()?;
        let lock = tenant.map_or(Lock::None, Lock::Tenant);
        let ticker = self.ticker();
        self.write(lock, move |c| {
            let rk = webhook_key(c, tenant, &id)?;
            let before = view(c, rk)?;
            if let Some(url) = &change.url {
                c.prepare_cached("UPDATE webhooks SET url = ? WHERE rk = ?")?
                    .execute(params![url, rk])?;
            }
            if let Some(names) = &names {
                c.prepare_cached("UPDATE webhooks SET events = ? WHERE rk = ?")?
                    .execute(params![names, rk])?;
            }
            match change.enabled {
                Some(true) => {
                    c.prepare_cached(
                        "UPDATE webhooks SET enabled = ?, disabled_reason = NULL, failing_since = NULL, retry_at = NULL WHERE rk = ?",
                    )?
                    .execute(params![true, rk])?;
                    // What waited is due now, not at its last back-off.
                    c.prepare_cached(
                        "UPDATE webhook_deliveries SET due = ? WHERE webhook = ? AND state = 'pending' AND due > ?",
                    )?
                    .execute(params![ticker.now(), rk, ticker.now()])?
                }
                Some(false) => c
                    .prepare_cached(
                        "UPDATE webhooks SET enabled = ?, disabled_reason = 'disabled by an admin' WHERE rk = ?",
                    )?
                    .execute(params![false, rk])?,
                None => 0,
            };
            let after = view(c, rk)?;
            let changed = crate::store::events::acts::Changes::between(&json!(before), &json!(after), &["pending", "failingSince"]);
            audit(c, tenant.unwrap_or(OPERATOR_CHAIN), ticker.now(), actor.as_str(), crate::store::events::acts::Act::WebhookUpdate(crate::store::events::acts::WebhookUpdated { webhook: id.clone(), changed }))?;
            Ok(after)
        })
        .await
    }

    /// Deletes an endpoint and its deliveries.
    pub async fn delete_webhook(
        &self,
        tenant: Option<TenantKey>,
        id: String,
        actor: Actor,
    ) -> Result<()> {
        let lock = tenant.map_or(Lock::None, Lock::Tenant);
        let ticker = self.ticker();
        self.write(lock, move |c| {
            let rk = webhook_key(c, tenant, &id)?;
            let before = view(c, rk)?;
            audit(
                c,
                tenant.unwrap_or(OPERATOR_CHAIN),
                ticker.now(),
                actor.as_str(),
                crate::store::events::acts::Act::WebhookDelete(
                    crate::store::events::acts::WebhookRecord {
                        webhook: json!(before),
                    },
                ),
            )?;
            c.prepare_cached("DELETE FROM webhook_deliveries WHERE webhook = ?")?
                .execute([rk])?;
            c.prepare_cached("DELETE FROM webhooks WHERE rk = ?")?
                .execute([rk])?;
            Ok(())
        })
        .await
    }

    /// A new secret for an endpoint; the previous one keeps signing beside it for
    /// [`OLD_SECRET_MS`], so receivers can switch without losing a delivery.
    pub async fn rotate_webhook_secret(
        &self,
        tenant: Option<TenantKey>,
        id: String,
        actor: Actor,
    ) -> Result<WebhookSecret> {
        let ticker = self.ticker();
        let lock = tenant.map_or(Lock::None, Lock::Tenant);
        self.write(lock, move |c| {
            let at = ticker.now();
            let rk = webhook_key(c, tenant, &id)?;
            let secret = new_secret();
            c.prepare_cached(
                "UPDATE webhooks SET old_secret = secret, old_until = ?, secret = ? WHERE rk = ?",
            )?
            .execute(params![at + OLD_SECRET_MS, secret, rk])?;
            audit(
                c,
                tenant.unwrap_or(OPERATOR_CHAIN),
                at,
                actor.as_str(),
                crate::store::events::acts::Act::WebhookRotate(
                    crate::store::events::acts::WebhookRef {
                        webhook: id.clone(),
                    },
                ),
            )?;
            Ok(WebhookSecret {
                id: id.clone(),
                secret: secret.clone(),
                webhook: view(c, rk)?,
            })
        })
        .await
    }

    /// An endpoint's deliveries, newest first; `state` filters.
    pub async fn webhook_deliveries(
        &self,
        tenant: Option<TenantKey>,
        id: String,
        state: Option<String>,
        limit: i64,
    ) -> Result<Vec<DeliveryView>> {
        self.read(move |c| {
            let rk = webhook_key(c, tenant, &id)?;
            let mut st = c.prepare_cached(
                "SELECT e.msg_id, e.type, d.state, d.attempts, d.last_status, d.last_error, e.at, d.done, d.due
                 FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event
                 WHERE d.webhook = ?1 AND (CAST(?2 AS TEXT) IS NULL OR d.state = ?2)
                 ORDER BY d.event DESC LIMIT ?3",
            )?;
            st
                .query_all(params![rk, state, limit], |r| {
                    let state: String = r.get(2)?;
                    let pending = state == "pending";
                    Ok(DeliveryView {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        attempts: r.get(3)?,
                        last_status: r.get(4)?,
                        last_error: r.get(5)?,
                        at: rfc3339(r.get(6)?),
                        done_at: r.get::<_, Option<Millis>>(7)?.map(rfc3339),
                        next_attempt: pending.then(|| r.get::<_, Millis>(8)).transpose()?.map(rfc3339),
                        state,
                    })
                })
        })
        .await
    }

    /// Sends delivery `msg_id` of endpoint `id` again, now (after the earlier pending events of
    /// its subject, which keep their order).
    pub async fn redeliver_webhook(
        &self,
        tenant: Option<TenantKey>,
        id: String,
        msg_id: String,
        actor: Actor,
    ) -> Result<DeliveryView> {
        let ticker = self.ticker();
        let lock = tenant.map_or(Lock::None, Lock::Tenant);
        let (key, msg) = (id.clone(), msg_id.clone());
        self.write(lock, move |c| {
            let (id, msg_id) = (key.clone(), msg.clone());
            let rk = webhook_key(c, tenant, &id)?;
            let n = c
                .prepare_cached(
                    "UPDATE webhook_deliveries SET state = 'pending', due = ?, done = NULL
                     WHERE webhook = ? AND event = (SELECT seq FROM webhook_events WHERE msg_id = ?)",
                )?
                .execute(params![ticker.now(), rk, msg_id])?;
            if n == 0 {
                return Err(Error::NotFound(format!("delivery {msg_id:?}")));
            }
            audit(c, tenant.unwrap_or(OPERATOR_CHAIN), ticker.now(), actor.as_str(), crate::store::events::acts::Act::WebhookRedeliver(crate::store::events::acts::Redelivered { webhook: id, delivery: msg_id }))
        })
        .await?;
        let all = self
            .webhook_deliveries(tenant, id, Some("pending".into()), 1000)
            .await?;
        all.into_iter()
            .find(|d| d.id == msg_id)
            .ok_or_else(|| Error::NotFound("delivery".into()))
    }

    /// Deliveries due at `now`, at most `limit`, each the first pending one of its subject at its
    /// endpoint (so a subject's events go in order), of enabled endpoints not backing off. On
    /// PostgreSQL each is claimed by this node for [`SEND_LEASE_MS`] (its `due` moves a lease
    /// ahead), so that one node sends it.
    ///
    /// Endpoints in `busy` (deliveries in flight on this node) are skipped; at most
    /// `webhook::PER_ENDPOINT` deliveries of one endpoint are taken, and tenants take
    /// turns: the first due delivery of every tenant comes before the second of any (the
    /// operator's endpoints are one more "tenant"), so a tenant with a backlog or slow endpoints
    /// delays no one else.
    pub async fn due_webhooks(
        &self,
        now: Millis,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>> {
        // The ids are this process's own integers, written into the statement.
        let skip = if busy.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = busy.iter().map(i64::to_string).collect();
            format!("AND d.webhook NOT IN ({})", list.join(","))
        };
        let per_endpoint = crate::webhook::PER_ENDPOINT as i64;
        let candidates = format!(
            "SELECT webhook, event FROM (
               SELECT d.webhook, d.event, d.due,
                      ROW_NUMBER() OVER (PARTITION BY d.webhook ORDER BY d.due, d.event) AS nth_of_endpoint,
                      ROW_NUMBER() OVER (PARTITION BY coalesce(w.tenant, 0) ORDER BY d.due, d.event) AS turn
               FROM webhook_deliveries d JOIN webhooks w ON w.rk = d.webhook
               WHERE d.state = 'pending' AND d.due <= ?1 AND w.enabled AND (w.retry_at IS NULL OR w.retry_at <= ?1) {skip}
                 AND (w.tenant IS NULL OR NOT EXISTS (SELECT 1 FROM tenants t WHERE t.rk = w.tenant AND t.closed_at IS NOT NULL))
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.webhook = d.webhook AND p.subject = d.subject
                                 AND p.state = 'pending' AND p.event < d.event)
             ) c WHERE nth_of_endpoint <= {per_endpoint}
             ORDER BY turn, due, event LIMIT ?2"
        );
        let read = |r: &Row| -> Result<DueDelivery> {
            let old: Option<String> = r.get(5)?;
            let old_until: Option<Millis> = r.get(6)?;
            let mut secrets = vec![r.get::<_, String>(4)?];
            if let (Some(o), Some(u)) = (old, old_until) {
                if u > r.get::<_, Millis>(10)? {
                    secrets.push(o);
                }
            }
            Ok(DueDelivery {
                webhook: r.get(0)?,
                event: r.get(1)?,
                webhook_id: r.get(2)?,
                url: r.get(3)?,
                secrets,
                msg_id: r.get(7)?,
                body: r.get(8)?,
                attempts: r.get(9)?,
            })
        };
        let details = "SELECT d.webhook, d.event, w.id, w.url, w.secret, w.old_secret, w.old_until, e.msg_id, e.body, d.attempts, CAST(?1 AS BIGINT)
             FROM webhook_deliveries d JOIN webhooks w ON w.rk = d.webhook JOIN webhook_events e ON e.seq = d.event
             WHERE d.webhook = ?2 AND d.event = ?3";
        self.write(Lock::None, move |c| {
            let claim = crate::store::engine::claim::lease_sql(
                c,
                "webhook_deliveries",
                "webhook, event",
                &candidates,
                "webhook, event",
            );
            let picked: Vec<(i64, i64)> = c
                .prepare(&claim)?
                .query_all(params![now, limit as i64, SEND_LEASE_MS], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let mut st = c.prepare_cached(details)?;
            let mut out = Vec::with_capacity(picked.len());
            for (w, e) in picked {
                if let Some(d) = st.query_row(params![now, w, e], read).optional()? {
                    out.push(d);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Holds an endpoint's deliveries until `until` (ms): it answered, but slowly.
    pub async fn webhook_rest(&self, webhook: i64, until: Millis) -> Result<()> {
        self.write(Lock::None, move |c| {
            c.prepare_cached(
                "UPDATE webhooks SET retry_at = ?1 WHERE rk = ?2 AND enabled AND (retry_at IS NULL OR retry_at < ?1)",
            )?
            .execute(params![until, webhook])?;
            Ok(())
        })
        .await
    }

    /// Records how an attempt ended. A retry marks the endpoint failing (from its first failure
    /// since the last success) and holds its other deliveries until `next`; failing for longer
    /// than `disable_after` ms, or answering 410, disables it, and the tenant's recipients are
    /// told. Returns whether the endpoint was disabled now.
    pub async fn webhook_outcome(
        &self,
        webhook: i64,
        event: i64,
        outcome: Outcome,
        disable_after: Millis,
    ) -> Result<bool> {
        let ticker = self.ticker();
        self.write(Lock::None, move |c| {
            let now = ticker.now();
            let disable = |c: &Db, reason: String| -> Result<bool> {
                let n = c
                    .prepare_cached(
                        "UPDATE webhooks SET enabled = ?, disabled_reason = ? WHERE rk = ? AND enabled",
                    )?
                    .execute(params![false, reason, webhook])?;
                if n == 0 {
                    return Ok(false);
                }
                let (tenant, id, url): (Option<TenantKey>, String, String) = c
                    .prepare_cached("SELECT tenant, id, url FROM webhooks WHERE rk = ?")?
                    .query_row([webhook], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                tracing::error!(webhook = %id, url = %url, reason = %reason, "webhook endpoint disabled");
                if let Some(t) = tenant {
                    crate::store::events::outbox::record(
                        c,
                        t,
                        0,
                        now,
                        vec![crate::notify::items::WebhookDisabled {
                            webhook_id: id.into(),
                            url: url.into(),
                            reason: reason.to_string().into(),
                        }],
                    )?;
                }
                Ok(true)
            };
            match outcome.clone() {
                Outcome::Delivered { status } => {
                    c.prepare_cached(
                        "UPDATE webhook_deliveries SET state = 'delivered', done = ?, attempts = attempts + 1, last_status = ?, last_error = NULL
                         WHERE webhook = ? AND event = ?",
                    )?
                    .execute(params![now, i64::from(status), webhook, event])?;
                    c.prepare_cached(
                        "UPDATE webhooks SET failing_since = NULL, retry_at = NULL WHERE rk = ? AND (failing_since IS NOT NULL OR retry_at IS NOT NULL)",
                    )?
                    .execute([webhook])?;
                    Ok(false)
                }
                Outcome::Retry {
                    status,
                    error,
                    next,
                } => {
                    c.prepare_cached(
                        "UPDATE webhook_deliveries SET due = ?, attempts = attempts + 1, last_status = ?, last_error = ?
                         WHERE webhook = ? AND event = ?",
                    )?
                    .execute(params![next, status.map(i64::from), error, webhook, event])?;
                    let since: Millis = c
                        .prepare_cached(
                            "UPDATE webhooks SET failing_since = coalesce(failing_since, ?1), retry_at = ?2 WHERE rk = ?3
                             RETURNING failing_since",
                        )?
                        .query_row(params![now, next, webhook], |r| r.get(0))
                        .optional()?
                        .unwrap_or(now);
                    if now - since >= disable_after {
                        return disable(
                            c,
                            format!(
                                "failing for {} (last error: {error})",
                                crate::notify::when::duration((now - since) / 1000)
                            ),
                        );
                    }
                    Ok(false)
                }
                Outcome::Refused {
                    status,
                    error,
                    gone,
                } => {
                    c.prepare_cached(
                        "UPDATE webhook_deliveries SET state = 'failed', done = ?, attempts = attempts + 1, last_status = ?, last_error = ?
                         WHERE webhook = ? AND event = ?",
                    )?
                    .execute(params![now, status.map(i64::from), error, webhook, event])?;
                    if gone {
                        return disable(c, "the endpoint answered 410 Gone".into());
                    }
                    Ok(false)
                }
            }
        })
        .await
    }
}
