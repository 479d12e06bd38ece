//! Tenants and their settings: create, list, find by id or name, change (recipients, sync and
//! pending windows, time zone, weekly summary, breaker and forecast settings). Their tokens and
//! console sessions live in `tokens`, their provisioning status in `status`.

use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use std::sync::Arc;

use sha2::Digest as _;

use serde::Serialize;
use serde_json::json;

use crate::alloc::Millis;
use crate::notify::{when::Weekly, Recipient};
use crate::store::engine::time::rfc3339;
use crate::store::events::audit::{record as audit, Actor};
use crate::store::{Error, Lock, Result, Store, TenantKey};

/// The longest a pending reference is kept: the product promises to wait for late changes up
/// to 72 hours, and no longer (an older database's longer setting is read as this).
pub const PENDING_WINDOW_MAX: i64 = 72 * 3600;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Tenant {
    #[serde(skip)]
    pub key: TenantKey,
    pub id: String,
    pub name: String,
    /// Who receives the tenant's emails (each address limited to some kinds, or all).
    pub notify: Vec<Recipient>,
    pub created: String,
    /// Longer than this without a SCIM call, the tenant is flagged silent.
    pub expected_sync_seconds: i64,
    /// How long pending references wait for what they name.
    pub pending_window_seconds: i64,
    /// The IANA time zone its emails show times in.
    pub time_zone: String,
    /// When its weekly summary is sent (in `time_zone`); `null`: none.
    pub weekly_summary: Option<Weekly>,
    /// Circuit breaker: directory-made seat losses above this share of a license's granted
    /// seats within `hold_window_seconds` are held for an admin's decision (100: off) ...
    pub hold_threshold_percent: i64,
    /// ... once at least this many would be lost ...
    pub hold_min_seats: i64,
    /// ... counted in a window this long from its first loss.
    pub hold_window_seconds: i64,
    /// A license whose forecast runs out of seats within this many days is emailed about.
    pub forecast_horizon_days: i64,
    /// A group's displayName is unique in the tenant, case-insensitively (409 for a second);
    /// off for directories that really hold same-named groups (a by-name selection of such a
    /// name is then ambiguous and selects neither).
    pub group_names_unique: bool,
    /// Offboarded at this time (every credential of the tenant refused; no mail, webhooks or
    /// reconciler work); `null` while open.
    pub closed: Option<String>,
    /// When a closed tenant's rows are purged.
    pub purge_at: Option<String>,
    /// The tenant's recipients are warned when more than this share of the identity provider's
    /// requests failed over 7 days (with at least 100 failures): long before the provider's
    /// own quarantine rule (Entra ID: 40 %).
    pub idp_failure_warn_percent: i64,
}

/// A change of a tenant's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChange {
    pub notify: Option<Vec<Recipient>>,
    pub expected_sync_seconds: Option<i64>,
    pub pending_window_seconds: Option<i64>,
    pub time_zone: Option<String>,
    /// `Some(None)` turns the weekly summary off.
    pub weekly_summary: Option<Option<Weekly>>,
    pub hold_threshold_percent: Option<i64>,
    pub hold_min_seats: Option<i64>,
    pub hold_window_seconds: Option<i64>,
    pub forecast_horizon_days: Option<i64>,
    pub group_names_unique: Option<bool>,
    pub idp_failure_warn_percent: Option<i64>,
}

impl TenantChange {
    /// The numeric settings: column, new value, and the range it must lie in.
    fn numbers(&self) -> [(&'static str, Option<i64>, std::ops::RangeInclusive<i64>); 7] {
        [
            (
                "expected_sync_seconds",
                self.expected_sync_seconds,
                60..=30 * 86_400,
            ),
            (
                "pending_window_seconds",
                self.pending_window_seconds,
                0..=PENDING_WINDOW_MAX,
            ),
            (
                "hold_threshold_percent",
                self.hold_threshold_percent,
                0..=100,
            ),
            ("hold_min_seats", self.hold_min_seats, 1..=1_000_000),
            (
                "hold_window_seconds",
                self.hold_window_seconds,
                60..=PENDING_WINDOW_MAX,
            ),
            ("forecast_horizon_days", self.forecast_horizon_days, 1..=365),
            (
                "idp_failure_warn_percent",
                self.idp_failure_warn_percent,
                1..=100,
            ),
        ]
    }

    /// Refuses a value out of its range, a bad address, time zone or weekly slot.
    fn validate(&self) -> Result<()> {
        for (column, value, range) in self.numbers() {
            if value.is_some_and(|v| !range.contains(&v)) {
                let why = match column {
                    "pending_window_seconds" => " (72 hours: the longest a late change may take)",
                    "hold_window_seconds" => " (72 hours)",
                    "hold_threshold_percent" => " (100 switches the circuit breaker off)",
                    _ => "",
                };
                return Err(Error::Invalid(format!(
                    "{column} must be between {} and {}{why}",
                    range.start(),
                    range.end()
                )));
            }
        }
        if let Some(n) = &self.notify {
            check_recipients(n)?;
        }
        if let Some(z) = &self.time_zone {
            crate::notify::when::valid_zone(z).map_err(Error::Invalid)?;
        }
        if let Some(Some(w)) = &self.weekly_summary {
            w.validate().map_err(Error::Invalid)?;
        }
        Ok(())
    }
}

/// Checks a list of recipients: real addresses, and at least one kind where kinds are named.
pub fn check_recipients(list: &[Recipient]) -> Result<()> {
    for r in list {
        if !valid_email(r.email()) {
            return Err(Error::Invalid(format!(
                "{:?} is not an email address",
                r.email()
            )));
        }
        if let Recipient::Kinds { kinds, .. } = r {
            if kinds.is_empty() {
                return Err(Error::Invalid(format!(
                    "{:?} names no kinds: list the kinds it receives, or give the address alone for all of them",
                    r.email()
                )));
            }
        }
    }
    Ok(())
}

const TENANT_COLS: &str =
    "rk, id, name, notify, created, expected_sync_seconds, pending_window_seconds, time_zone, weekly_summary, hold_threshold_percent, hold_min_seats, hold_window_seconds, forecast_horizon_days, group_names_unique, closed_at, purge_at, idp_failure_warn_percent";

fn tenant_row(r: &Row) -> Result<Tenant> {
    let notify: String = r.get(3)?;
    Ok(Tenant {
        key: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        notify: serde_json::from_str(&notify).unwrap_or_default(),
        created: r.get(4)?,
        expected_sync_seconds: r.get(5)?,
        pending_window_seconds: r.get(6)?,
        time_zone: r.get(7)?,
        weekly_summary: r
            .get::<_, Option<String>>(8)?
            .and_then(|w| serde_json::from_str(&w).ok()),
        hold_threshold_percent: r.get(9)?,
        hold_min_seats: r.get(10)?,
        hold_window_seconds: r.get(11)?,
        forecast_horizon_days: r.get(12)?,
        group_names_unique: r.get(13)?,
        closed: r.get::<_, Option<Millis>>(14)?.map(rfc3339),
        purge_at: r.get::<_, Option<Millis>>(15)?.map(rfc3339),
        idp_failure_warn_percent: r.get(16)?,
    })
}

/// The tenant with internal key `tenant`.
pub(in crate::store) fn tenant_by_key(conn: &Db, tenant: TenantKey) -> Result<Tenant> {
    conn.prepare_cached(&format!("SELECT {TENANT_COLS} FROM tenants WHERE rk = ?"))?
        .query_row([tenant], tenant_row)
}

/// Finds a tenant by its id or, failing that, its name (case-insensitive).
pub(crate) fn find_tenant(conn: &Db, key: &str) -> Result<Tenant> {
    conn.prepare_cached(&format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1 OR lower(name) = lower(?1) ORDER BY id = ?1 DESC LIMIT 1"))?
        .query_row([key], tenant_row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("tenant {key:?}")))
}

/// Checks an email address well enough to catch typos (local@domain.tld, no spaces).
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// The silence rule, once: a tenant is silent at `now` when its provider's last call (or its
/// creation, `since`) is more than `expected_sync_seconds` ago.
pub(in crate::store) fn silent_at(now: Millis, since: Millis, expected_sync_seconds: i64) -> bool {
    now - since > expected_sync_seconds * 1000
}

impl Store {
    pub async fn create_tenant(
        &self,
        name: String,
        notify: Vec<Recipient>,
        actor: Actor,
    ) -> Result<Tenant> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "a tenant name is 1 to 200 printable characters".into(),
            ));
        }
        check_recipients(&notify)?;
        let ticker = self.ticker();
        self.write(Lock::None, move |c| {
            let id = uuid::Uuid::new_v4().to_string();
            let created = rfc3339(ticker.now());
            let notify_json =
                serde_json::to_string(&notify).map_err(|e| Error::Internal(e.to_string()))?;
            c.prepare_cached(
                "INSERT INTO tenants (id, name, notify, created) VALUES (?, ?, ?, ?)",
            )?
            .execute(params![id, name, notify_json, created])
            .map_err(|e| {
                if crate::store::is_unique_violation(&e) {
                    Error::Conflict(format!("a tenant named {name:?} exists"))
                } else {
                    e
                }
            })?;
            let t = find_tenant(c, &id)?;
            audit(
                c,
                t.key,
                ticker.now(),
                actor.as_str(),
                crate::store::events::acts::Act::TenantCreate(json!(t)),
            )?;
            Ok(t)
        })
        .await
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TENANT_COLS} FROM tenants ORDER BY created, id"
            ))?;
            st.query_all([], tenant_row)
        })
        .await
    }

    /// A tenant by id or name.
    /// The tenant `key` (its id or name) names, as read now.
    pub async fn tenant(&self, key: &str) -> Result<Tenant> {
        let key = key.to_owned();
        // A point read by a unique key: inline on this worker's connection.
        self.read_point(move |c| find_tenant(c, &key)).await
    }

    /// The tenant `key` (its id or name) names, for a credential that may act on every tenant
    /// (the operator's admin token, an operator product token), after that credential was
    /// checked: `credential` is the SHA-256 of the whole credential presented. The answer is
    /// remembered for `AUTH_CACHE_TTL` under the hash of the credential and the name together,
    /// so only that credential finds it again (emptied at once by a tenant change of this
    /// process; on PostgreSQL the read is a round trip). Its settings may be that much old;
    /// [`Store::tenant`] reads them now.
    pub async fn tenant_for_operator(&self, credential: &[u8; 32], key: &str) -> Result<Tenant> {
        let cache = &self.inner.operator_tenants;
        let mut h = sha2::Sha256::new();
        h.update(credential);
        h.update([0u8]);
        h.update(key.as_bytes());
        let digest: [u8; 32] = h.finalize().into();
        if let Some(t) = cache.get(&digest) {
            return Ok((*t).clone());
        }
        let generation = cache.generation();
        let now_ms = self.now_ms();
        let found = self.tenant(key).await?;
        cache.put(generation, digest, Arc::new(found.clone()), None, now_ms);
        Ok(found)
    }

    /// Empties every cache that carries a tenant as it was read (accepted SCIM and product
    /// tokens, operators' resolved names): after a change to a tenant by this process.
    pub(in crate::store) fn forget_tenants(&self) {
        self.inner.scim_cache.invalidate();
        self.inner.product_cache.invalidate();
        self.inner.operator_tenants.invalidate();
    }

    /// The tenant with this key, as read now.
    pub async fn tenant_by_key(&self, tenant: TenantKey) -> Result<Tenant> {
        self.read_point(move |c| tenant_by_key(c, tenant)).await
    }

    /// True when the path segment `segment` (decoded) names `own`, the one tenant a credential
    /// may act on: its id, or its name (case-insensitively, as [`find_tenant`] compares) unless
    /// another tenant's id is that text, which the path then names first. Answered from the
    /// credential's own tenant: the tenant the path names is never resolved for a credential
    /// that may not act on it.
    pub async fn path_names(&self, own: &Tenant, segment: &str) -> Result<bool> {
        if segment == own.id {
            return Ok(true);
        }
        if !segment.eq_ignore_ascii_case(&own.name) {
            return Ok(false);
        }
        // Ids are UUIDs: only a name shaped like one can be another tenant's id too.
        if uuid::Uuid::parse_str(segment).is_err() {
            return Ok(true);
        }
        match self.tenant(segment).await {
            Ok(t) => Ok(t.key == own.key),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Store {
    /// Changes a tenant's settings: notification recipients, silence threshold, pending
    /// window, time zone, weekly summary, circuit breaker.
    pub async fn update_tenant(
        &self,
        tenant: TenantKey,
        change: TenantChange,
        actor: Actor,
    ) -> Result<()> {
        change.validate()?;
        let ticker = self.ticker();
        let updated = self
            .write(Lock::Tenant(tenant), move |c| {
                let at = ticker.now();
                let before = tenant_by_key(c, tenant)?;
                if let Some(n) = &change.notify {
                    c.execute(
                        "UPDATE tenants SET notify = ? WHERE rk = ?",
                        params![json!(n).to_string(), tenant],
                    )?;
                }
                if let Some(z) = &change.time_zone {
                    c.execute(
                        "UPDATE tenants SET time_zone = ? WHERE rk = ?",
                        params![z, tenant],
                    )?;
                }
                if let Some(w) = &change.weekly_summary {
                    // The first summary is the next slot's: the week before was not watched.
                    c.execute(
                        "UPDATE tenants SET weekly_summary = ?, weekly_sent = ? WHERE rk = ?",
                        params![w.map(|w| json!(w).to_string()), at, tenant],
                    )?;
                }
                if let Some(unique) = change.group_names_unique {
                    if unique {
                        // Refused while twins exist: which one would a name select?
                        let twins: i64 = c.query_row(
                            "SELECT count(*) FROM (SELECT display_name_key FROM groups WHERE tenant = ? GROUP BY display_name_key HAVING count(*) > 1) AS t",
                            [tenant],
                            |r| r.get(0),
                        )?;
                        if twins > 0 {
                            return Err(Error::Conflict(format!(
                                "{twins} group names are held by several groups; rename or delete the twins first (seatkeeper check lists them)"
                            )));
                        }
                    }
                    c.execute(
                        "UPDATE tenants SET group_names_unique = ? WHERE rk = ?",
                        params![unique, tenant],
                    )?;
                }
                for (column, value, _) in change.numbers() {
                    if let Some(v) = value {
                        c.execute(
                            &format!("UPDATE tenants SET {column} = ? WHERE rk = ?"),
                            params![v, tenant],
                        )?;
                    }
                }
                let after = tenant_by_key(c, tenant)?;
                let changed = crate::store::events::acts::Changes::between(&json!(before), &json!(after), &[]);
                audit(
                    c,
                    tenant,
                    at,
                    actor.as_str(),
                    crate::store::events::acts::Act::TenantUpdate(crate::store::events::acts::TenantUpdated { tenant: after.id, changed }),
                )
            })
            .await;
        // Authenticated requests carry the tenant as it was read with their token.
        self.forget_tenants();
        updated
    }
}
