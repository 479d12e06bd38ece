//! Tenants, their settings and status, and their SCIM and admin bearer tokens.
//!
//! A token is `skt_<id>_<secret>`: `id` finds the row, the SHA-256 of the whole token is compared
//! with the stored hash in constant time. The token itself is returned once, at issue, and never
//! stored. An accepted token is trusted for a second ([`AuthCache`]), so the provider's stream of
//! requests does not read the token table for each one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sql::{params, Db, OptionalExtension, Row};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit::{record as audit, Actor};
use super::licenses::Selector;
use super::reconciler::ReconcileReport;
use super::seats::{millis_of, rfc3339};
use super::{Error, Lock, Result, Store, TenantKey};
use crate::alloc::Millis;
use crate::notify::{when::Weekly, Recipient};

/// The longest a pending reference is kept: the product promises to wait for late changes up
/// to 72 hours, and no longer (an older database's longer setting is read as this).
pub const PENDING_WINDOW_MAX: i64 = 72 * 3600;

/// A SCIM token's lifetime when it has one: at least a minute (the CLI and the API cannot mint
/// a token that is expired or about to be), at most ten years.
pub const TOKEN_SECONDS_MIN: i64 = 60;
pub const TOKEN_SECONDS_MAX: i64 = 10 * 366 * 86_400;
/// How long a rotated token may keep working beside its replacement, at most.
pub const OVERLAP_SECONDS_MAX: i64 = 30 * 86_400;

/// How long an accepted SCIM token is taken on trust without reading the database again.
/// Revoking or rotating a token through this process (the admin API, the console) takes effect
/// at once; a change written by another process (the CLI against a running daemon's database)
/// within this long.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most tokens remembered at once; past it the cache starts over.
const AUTH_CACHE_ENTRIES: usize = 10_000;

/// Accepted SCIM tokens by the SHA-256 of the presented token, each with the tenant it selects
/// and until when it may be trusted: the shorter of [`AUTH_CACHE_TTL`] and the token's expiry.
/// Every provider request carries a token, and answering it from here spares the request two
/// lookups and a read transaction. Refusals are never remembered. A change to tokens or tenants
/// made by this process bumps the generation and empties the cache after it commits; a lookup
/// that started before the bump cannot put its (possibly stale) answer back.
#[derive(Default)]
pub(super) struct AuthCache {
    entries: Mutex<AuthEntries>,
}

/// The generation, and each remembered token's tenant and trust deadline.
type AuthEntries = (u64, HashMap<[u8; 32], (Arc<Tenant>, Instant)>);

impl AuthCache {
    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Tenant>> {
        let entries = self.entries.lock().ok()?;
        let (tenant, until) = entries.1.get(digest)?;
        (Instant::now() < *until).then(|| tenant.clone())
    }

    fn generation(&self) -> u64 {
        self.entries.lock().map(|e| e.0).unwrap_or(u64::MAX)
    }

    /// Remembers an accepted token until the cache's TTL, or its expiry (`expires`, by the
    /// store's clock, which reads `now_ms` now) when that comes first.
    fn put(
        &self,
        generation: u64,
        digest: [u8; 32],
        tenant: Arc<Tenant>,
        expires: Option<&str>,
        now_ms: crate::alloc::Millis,
    ) {
        let now = Instant::now();
        let mut until = now + AUTH_CACHE_TTL;
        if let Some(e) = expires {
            let left = (millis_of(e) - now_ms).max(0);
            until = until.min(now + Duration::from_millis(left as u64));
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.0 != generation {
            return;
        }
        if entries.1.len() >= AUTH_CACHE_ENTRIES {
            entries.1.retain(|_, (_, u)| *u > now);
            if entries.1.len() >= AUTH_CACHE_ENTRIES {
                entries.1.clear();
            }
        }
        entries.1.insert(digest, (tenant, until));
    }

    /// Forgets every token: called after a write that revokes, rotates or changes a tenant.
    pub(super) fn invalidate(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.0 += 1;
            entries.1.clear();
        }
    }
}

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

/// A token as listed: never the secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
}

const TENANT_COLS: &str =
    "rk, id, name, notify, created, expected_sync_seconds, pending_window_seconds, time_zone, weekly_summary, hold_threshold_percent, hold_min_seats, hold_window_seconds, forecast_horizon_days";

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
    })
}

pub(super) fn token_row(r: &Row) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        created: r.get(1)?,
        expires: r.get(2)?,
        revoked: r.get(3)?,
    })
}

/// (hash, revoked, expires, tenant id, tenant key) of a stored token.
type TokenRow = (Vec<u8>, Option<String>, Option<String>, String, TenantKey);

/// The outcome of presenting a SCIM token.
#[derive(Debug)]
pub enum Authn {
    Tenant(Arc<Tenant>),
    /// Refused; `tenant` (key, token id) when the token's id names a token of a tenant.
    Refused {
        tenant: Option<(TenantKey, String)>,
        reason: &'static str,
    },
}

pub(super) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn new_token() -> (String, String, [u8; 32]) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let id = hex(&id);
    let token = format!("skt_{id}_{}", hex(&secret));
    let digest = hash(&token);
    (id, token, digest)
}

fn insert_token(
    c: &Db,
    tenant: TenantKey,
    id: &str,
    digest: &[u8; 32],
    at: crate::alloc::Millis,
    expires: Option<String>,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO scim_tokens (id, tenant, hash, created, expires) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        id,
        tenant,
        &digest[..],
        super::seats::rfc3339(at),
        expires
    ])?;
    Ok(())
}

fn token_info(c: &Db, id: &str) -> Result<TokenInfo> {
    c.prepare_cached("SELECT id, created, expires, revoked FROM scim_tokens WHERE id = ?")?
        .query_row([id], token_row)
}

/// Finds a tenant by its id or, failing that, its name (case-insensitive).
/// The tenant with internal key `tenant`.
fn tenant_by_key(conn: &Db, tenant: TenantKey) -> Result<Tenant> {
    conn.prepare_cached(&format!("SELECT {TENANT_COLS} FROM tenants WHERE rk = ?"))?
        .query_row([tenant], tenant_row)
}

pub(crate) fn find_tenant(conn: &Db, key: &str) -> Result<Tenant> {
    conn.prepare_cached(&format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1 OR lower(name) = lower(?1) ORDER BY id = ?1 DESC LIMIT 1"))?
        .query_row([key], tenant_row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("tenant {key:?}")))
}

/// How often a console session's last use is written: its idle timer is this coarse.
const SESSION_TOUCH_MS: Millis = 60_000;

/// A console session as stored (the cookie's id is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// `None`: the operator's session; else one tenant's.
    pub tenant: Option<TenantKey>,
    /// Who signed in (the audit log's actor behind the session's acts).
    pub actor: Actor,
    pub csrf: String,
    pub created: Millis,
    pub seen: Millis,
}

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
    pub groups: Vec<super::licenses::SelectorView>,
}

/// The tenant's licenses with reservations or ceilings, each group's use against them.
fn group_limits(c: &Db, tenant: TenantKey) -> Result<Vec<LicenseGroups>> {
    let mut st = c.prepare_cached(
        "SELECT rk FROM licenses l WHERE tenant = ? AND EXISTS (SELECT 1 FROM license_groups lg WHERE lg.license_rk = l.rk AND (lg.reserve > 0 OR lg.max_seats IS NOT NULL))
         ORDER BY created, id",
    )?;
    let keys = st
        .query_map([tenant], |r| r.get(0))?
        .collect::<Result<Vec<i64>>>()?;
    keys.into_iter()
        .map(|l| {
            let v = super::licenses::view(c, l)?;
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
    let selectors = st
        .query_map([tenant], |r| {
            Ok(PendingSelector {
                license: r.get(0)?,
                selector: Selector::from_parts(&r.get::<_, String>(1)?, r.get(2)?),
                since: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>>>()?;
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
            Ok(PendingMember {
                group_id: r.get(0)?,
                group: r.get(1)?,
                member: r.get(2)?,
                since: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>>>()?;
    Ok(Pending { selectors, members })
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
pub(super) fn silent_at(now: Millis, since: Millis, expected_sync_seconds: i64) -> bool {
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
                if super::is_unique_violation(&e) {
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
                "tenant.create",
                json!(t),
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
            let rows = st.query_map([], tenant_row)?.collect::<Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// A tenant by id or name.
    pub async fn tenant(&self, key: &str) -> Result<Tenant> {
        let key = key.to_owned();
        // A point read by a unique key: inline on this worker's connection.
        self.read_point(move |c| find_tenant(c, &key)).await
    }

    /// Issues a new SCIM token; the returned string is the only copy of the secret.
    /// Issues a new SCIM token, valid for `expires_in` seconds when given; the returned string is
    /// the only copy of the secret.
    pub async fn issue_token(
        &self,
        tenant: TenantKey,
        expires_in: Option<i64>,
        actor: Actor,
    ) -> Result<(TokenInfo, String)> {
        if expires_in.is_some_and(|s| !(TOKEN_SECONDS_MIN..=TOKEN_SECONDS_MAX).contains(&s)) {
            return Err(Error::Invalid(format!(
                "expires_in_seconds must be between {TOKEN_SECONDS_MIN} and {TOKEN_SECONDS_MAX} (ten years)"
            )));
        }
        let (id, token, digest) = new_token();
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            insert_token(
                c,
                tenant,
                &id,
                &digest,
                at,
                expires_in.map(|s| super::seats::rfc3339(at + s * 1000)),
            )?;
            let info = token_info(c, &id)?;
            audit(
                c,
                tenant,
                at,
                actor.as_str(),
                "scim_token.issue",
                json!({"token": info}),
            )?;
            Ok((info, token))
        })
        .await
    }

    /// Rotates a token: a new one is issued and the old one stays valid for `overlap` more seconds
    /// (never longer than it already would), so the provider can be switched without a gap.
    pub async fn rotate_token(
        &self,
        tenant: TenantKey,
        old: String,
        overlap: i64,
        actor: Actor,
    ) -> Result<(TokenInfo, String, TokenInfo)> {
        if !(0..=OVERLAP_SECONDS_MAX).contains(&overlap) {
            return Err(Error::Invalid(format!(
                "overlap_seconds must be between 0 and {OVERLAP_SECONDS_MAX} (30 days)"
            )));
        }
        let (id, token, digest) = new_token();
        let ticker = self.ticker();
        let rotated = self.write(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let until = super::seats::rfc3339(at + overlap * 1000);
            let n = c
                .prepare_cached(
                    "UPDATE scim_tokens SET expires = CASE WHEN expires IS NULL OR expires > ?1 THEN ?1 ELSE expires END
                     WHERE tenant = ?2 AND id = ?3 AND revoked IS NULL",
                )?
                .execute(params![until, tenant, old])?;
            if n == 0 {
                return Err(Error::NotFound(format!("active token {old:?}")));
            }
            insert_token(c, tenant, &id, &digest, at, None)?;
            let (new, old) = (token_info(c, &id)?, token_info(c, &old)?);
            audit(c, tenant, at, actor.as_str(), "scim_token.rotate", json!({"token": new, "replaces": old}))?;
            Ok((new, token, old))
        })
        .await;
        self.inner.auth_cache.invalidate();
        rotated
    }

    pub async fn list_tokens(&self, tenant: TenantKey) -> Result<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, created, expires, revoked FROM scim_tokens WHERE tenant = ? ORDER BY created, id",
            )?;
            let rows = st.query_map([tenant], token_row)?.collect::<Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// Revokes a token at once. Revoking a revoked token is not an error.
    pub async fn revoke_token(&self, tenant: TenantKey, id: String, actor: Actor) -> Result<()> {
        let ticker = self.ticker();
        let revoked = self.write(Lock::Tenant(tenant), move |c| {
            let n = c
                .prepare_cached("UPDATE scim_tokens SET revoked = coalesce(revoked, ?) WHERE tenant = ? AND id = ?")?
                .execute(params![rfc3339(ticker.now()), tenant, id])?;
            if n == 0 {
                return Err(Error::NotFound(format!("token {id:?}")));
            }
            audit(c, tenant, ticker.now(), actor.as_str(), "scim_token.revoke", json!({"token": id}))
        })
        .await;
        self.inner.auth_cache.invalidate();
        revoked
    }

    /// The tenant a bearer token belongs to, if the token is valid, unrevoked and unexpired;
    /// else why not, and whose token it was when its id is known. An accepted token is
    /// remembered for [`AUTH_CACHE_TTL`] (see [`AuthCache`]).
    pub async fn authenticate(&self, token: String) -> Result<Authn> {
        let presented = hash(&token);
        let cache = &self.inner.auth_cache;
        if let Some(t) = cache.get(&presented) {
            return Ok(Authn::Tenant(t));
        }
        if !token.strip_prefix("skt_").is_some_and(|r| r.contains('_')) {
            // Not shaped like a token of ours: refused without a read (junk from strangers
            // costs no database time).
            return Ok(Authn::Refused {
                tenant: None,
                reason: "unknown token",
            });
        }
        let generation = cache.generation();
        // Expiry by the store's clock, the one that stamped the token's `expires`.
        let now_ms = self.now_ms();
        let now_text = rfc3339(now_ms);
        // Two primary-key lookups: cheaper inline than handed to a blocking thread.
        let outcome = self.read_point(move |c| {
            let id = token.strip_prefix("skt_").and_then(|r| r.split_once('_')).map(|(id, _)| id.to_owned());
            let row: Option<TokenRow> = match &id {
                Some(id) => c
                    .prepare_cached(
                        "SELECT t.hash, t.revoked, t.expires, n.id, n.rk FROM scim_tokens t JOIN tenants n ON n.rk = t.tenant WHERE t.id = ?",
                    )?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                    .optional()?,
                None => None,
            };
            // Compare even when there is no row, so a miss costs what a hit costs.
            let stored = row.as_ref().map(|r| r.0.clone()).unwrap_or_else(|| vec![0u8; 32]);
            let equal: bool = stored.ct_eq(&presented[..]).into();
            let Some((_, revoked, expires, tenant_id, key)) = row else {
                return Ok((Authn::Refused { tenant: None, reason: "unknown token" }, None));
            };
            let reason = if !equal {
                "wrong secret"
            } else if revoked.is_some() {
                "revoked"
            } else if expires.as_ref().is_some_and(|e| *e <= now_text) {
                "expired"
            } else {
                let tenant = Arc::new(find_tenant(c, &tenant_id)?);
                return Ok((Authn::Tenant(tenant), expires));
            };
            Ok((Authn::Refused { tenant: Some((key, id.unwrap_or_default())), reason }, None))
        })
        .await?;
        if let (Authn::Tenant(t), expires) = &outcome {
            cache.put(generation, presented, t.clone(), expires.as_deref(), now_ms);
        }
        Ok(outcome.0)
    }

    /// Issues a tenant admin token (`ska_<id>_<secret>`): the admin API and the console for
    /// this tenant only. The returned string is the only copy of the secret.
    pub async fn issue_admin_token(
        &self,
        tenant: TenantKey,
        actor: Actor,
    ) -> Result<(TokenInfo, String)> {
        let (id, secret, _) = new_token();
        let token = format!("ska_{}", secret.trim_start_matches("skt_"));
        let digest = hash(&token);
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let at = super::seats::rfc3339(ticker.now());
            c.prepare_cached(
                "INSERT INTO admin_tokens (id, tenant, hash, created) VALUES (?, ?, ?, ?)",
            )?
            .execute(params![id, tenant, &digest[..], at])?;
            let info = c
                .prepare_cached("SELECT id, created, NULL, revoked FROM admin_tokens WHERE id = ?")?
                .query_row([&id], token_row)?;
            audit(
                c,
                tenant,
                ticker.now(),
                actor.as_str(),
                "admin_token.issue",
                json!({"token": info}),
            )?;
            Ok((info, token))
        })
        .await
    }

    pub async fn list_admin_tokens(&self, tenant: TenantKey) -> Result<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, created, NULL, revoked FROM admin_tokens WHERE tenant = ? ORDER BY created, id",
            )?;
            let rows = st.query_map([tenant], token_row)?.collect::<Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// Revokes a tenant admin token at once.
    pub async fn revoke_admin_token(
        &self,
        tenant: TenantKey,
        id: String,
        actor: Actor,
    ) -> Result<()> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let n = c
                .prepare_cached("UPDATE admin_tokens SET revoked = coalesce(revoked, ?) WHERE tenant = ? AND id = ?")?
                .execute(params![rfc3339(ticker.now()), tenant, id])?;
            if n == 0 {
                return Err(Error::NotFound(format!("admin token {id:?}")));
            }
            // Console sessions signed in with a token of this tenant end with it, on every
            // node and whichever process revoked it (the API, the console, the CLI).
            c.prepare_cached("DELETE FROM console_sessions WHERE tenant = ?")?
                .execute([tenant])?;
            audit(c, tenant, ticker.now(), actor.as_str(), "admin_token.revoke", json!({"token": id}))
        })
        .await
    }

    /// Stores a new console session under the SHA-256 of its `id` (`tenant`: `None` for the
    /// operator).
    pub async fn create_console_session(
        &self,
        tenant: Option<TenantKey>,
        id: &str,
        csrf: String,
        now: Millis,
        actor: Actor,
    ) -> Result<()> {
        let key = hash(id).to_vec();
        self.write(Lock::None, move |c| {
            c.prepare_cached(
                "INSERT INTO console_sessions (id_hash, tenant, csrf, created, seen, actor) VALUES (?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![key, tenant, csrf, now, now, actor.as_str()])?;
            Ok(())
        })
        .await
    }

    /// The console session with this `id`, if there is one that `live(created, seen)` keeps;
    /// a dead one is deleted. Its last use is written at most once a minute.
    pub async fn console_session(
        &self,
        id: &str,
        now: Millis,
        live: fn(Millis, Millis, Millis) -> bool,
    ) -> Result<Option<ConsoleSession>> {
        let key = hash(id).to_vec();
        let found = {
            let key = key.clone();
            self.read(move |c| {
                c.prepare_cached(
                    "SELECT tenant, csrf, created, seen, actor FROM console_sessions WHERE id_hash = ?",
                )?
                .query_row([key], |r| {
                    let tenant: Option<TenantKey> = r.get(0)?;
                    // Sessions from before actors were kept: the kind of token behind them.
                    let actor: Option<String> = r.get(4)?;
                    Ok(ConsoleSession {
                        tenant,
                        csrf: r.get(1)?,
                        created: r.get(2)?,
                        seen: r.get(3)?,
                        actor: Actor::from_stored(actor.unwrap_or_else(|| {
                            if tenant.is_some() { "tenant-admin" } else { "operator" }.into()
                        })),
                    })
                })
                .optional()
            })
            .await?
        };
        let Some(s) = found else { return Ok(None) };
        if !live(s.created, s.seen, now) {
            self.write(Lock::None, move |c| {
                c.prepare_cached("DELETE FROM console_sessions WHERE id_hash = ?")?
                    .execute([key])?;
                Ok(())
            })
            .await?;
            return Ok(None);
        }
        if now - s.seen > SESSION_TOUCH_MS {
            self.write(Lock::None, move |c| {
                c.prepare_cached("UPDATE console_sessions SET seen = ? WHERE id_hash = ?")?
                    .execute(params![now, key])?;
                Ok(())
            })
            .await?;
        }
        Ok(Some(s))
    }

    /// Ends one console session (sign-out).
    pub async fn end_console_session(&self, id: &str) -> Result<()> {
        let key = hash(id).to_vec();
        self.write(Lock::None, move |c| {
            c.prepare_cached("DELETE FROM console_sessions WHERE id_hash = ?")?
                .execute([key])?;
            Ok(())
        })
        .await
    }

    /// The tenant a tenant admin token belongs to, if it is valid and unrevoked.
    pub async fn authenticate_admin(&self, token: String) -> Result<Option<Tenant>> {
        // Two primary-key lookups: inline on this worker's connection (`read_point`), as for
        // SCIM tokens; a hand-off to a blocking thread would cost more than the read.
        self.read_point(move |c| {
            let presented = hash(&token);
            let id = token.strip_prefix("ska_").and_then(|r| r.split_once('_')).map(|(id, _)| id.to_owned());
            let row: Option<(Vec<u8>, Option<String>, String)> = match &id {
                Some(id) => c
                    .prepare_cached(
                        "SELECT a.hash, a.revoked, n.id FROM admin_tokens a JOIN tenants n ON n.rk = a.tenant WHERE a.id = ?",
                    )?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?,
                None => None,
            };
            let stored = row.as_ref().map(|r| r.0.clone()).unwrap_or_else(|| vec![0u8; 32]);
            let equal: bool = stored.ct_eq(&presented[..]).into();
            match row {
                Some((_, None, tenant)) if equal => find_tenant(c, &tenant).map(Some),
                _ => Ok(None),
            }
        })
        .await
    }
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
                let v = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<Result<Vec<_>>>()?;
                Ok(v)
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

    /// Changes a tenant's settings: notification recipients, silence threshold, pending
    /// window, time zone, weekly summary, circuit breaker.
    pub async fn update_tenant(
        &self,
        tenant: TenantKey,
        change: TenantChange,
        actor: Actor,
    ) -> Result<()> {
        let TenantChange {
            notify,
            expected_sync_seconds,
            pending_window_seconds,
            time_zone,
            weekly_summary,
            hold_threshold_percent,
            hold_min_seats,
            hold_window_seconds,
            forecast_horizon_days,
        } = change;
        if forecast_horizon_days.is_some_and(|d| !(1..=365).contains(&d)) {
            return Err(Error::Invalid(
                "forecast_horizon_days must be between 1 and 365".into(),
            ));
        }
        if hold_threshold_percent.is_some_and(|p| !(0..=100).contains(&p)) {
            return Err(Error::Invalid(
                "hold_threshold_percent must be between 0 and 100 (100 switches the circuit breaker off)".into(),
            ));
        }
        if hold_min_seats.is_some_and(|n| !(1..=1_000_000).contains(&n)) {
            return Err(Error::Invalid(
                "hold_min_seats must be between 1 and 1000000".into(),
            ));
        }
        if hold_window_seconds.is_some_and(|s| !(60..=PENDING_WINDOW_MAX).contains(&s)) {
            return Err(Error::Invalid(format!(
                "hold_window_seconds must be between 60 and {PENDING_WINDOW_MAX} (72 hours)"
            )));
        }
        if let Some(n) = &notify {
            check_recipients(n)?;
        }
        if let Some(z) = &time_zone {
            crate::notify::when::valid_zone(z).map_err(Error::Invalid)?;
        }
        if let Some(Some(w)) = &weekly_summary {
            w.validate().map_err(Error::Invalid)?;
        }
        if expected_sync_seconds.is_some_and(|s| !(60..=30 * 86_400).contains(&s)) {
            return Err(Error::Invalid(
                "expected_sync_seconds must be between 60 and 2592000".into(),
            ));
        }
        if pending_window_seconds.is_some_and(|s| !(0..=PENDING_WINDOW_MAX).contains(&s)) {
            return Err(Error::Invalid(
                format!("pending_window_seconds must be between 0 and {PENDING_WINDOW_MAX} (72 hours: the longest a late change may take)"),
            ));
        }
        let ticker = self.ticker();
        let updated = self
            .write(Lock::Tenant(tenant), move |c| {
                let at = ticker.now();
                let before = tenant_by_key(c, tenant)?;
                if let Some(n) = &notify {
                    c.execute(
                        "UPDATE tenants SET notify = ? WHERE rk = ?",
                        params![json!(n).to_string(), tenant],
                    )?;
                }
                if let Some(s) = expected_sync_seconds {
                    c.execute(
                        "UPDATE tenants SET expected_sync_seconds = ? WHERE rk = ?",
                        params![s, tenant],
                    )?;
                }
                if let Some(s) = pending_window_seconds {
                    c.execute(
                        "UPDATE tenants SET pending_window_seconds = ? WHERE rk = ?",
                        params![s, tenant],
                    )?;
                }
                if let Some(z) = &time_zone {
                    c.execute(
                        "UPDATE tenants SET time_zone = ? WHERE rk = ?",
                        params![z, tenant],
                    )?;
                }
                if let Some(w) = &weekly_summary {
                    // The first summary is the next slot's: the week before was not watched.
                    c.execute(
                        "UPDATE tenants SET weekly_summary = ?, weekly_sent = ? WHERE rk = ?",
                        params![w.map(|w| json!(w).to_string()), at, tenant],
                    )?;
                }
                for (column, value) in [
                    ("hold_threshold_percent", hold_threshold_percent),
                    ("hold_min_seats", hold_min_seats),
                    ("hold_window_seconds", hold_window_seconds),
                    ("forecast_horizon_days", forecast_horizon_days),
                ] {
                    if let Some(v) = value {
                        c.execute(
                            &format!("UPDATE tenants SET {column} = ? WHERE rk = ?"),
                            params![v, tenant],
                        )?;
                    }
                }
                let after = tenant_by_key(c, tenant)?;
                let changed = super::audit::changes(&json!(before), &json!(after), &[]);
                audit(
                    c,
                    tenant,
                    at,
                    actor.as_str(),
                    "tenant.update",
                    json!({"tenant": after.id, "changed": changed}),
                )
            })
            .await;
        // Authenticated requests carry the tenant as it was read with their token.
        self.inner.auth_cache.invalidate();
        updated
    }
}
