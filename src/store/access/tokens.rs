//! Credentials of a tenant: SCIM tokens (issue, rotate with an overlap, revoke, authenticate,
//! with a short trust cache on the hot path), tenant admin tokens, and console sessions. Only
//! SHA-256 hashes of tokens are stored; a token is shown once, when issued.
//!
//! A token is `skt_<id>_<secret>`: `id` finds the row, the SHA-256 of the whole token is compared
//! with the stored hash in constant time. An accepted token is trusted for a second
//! ([`AuthCache`]), so the provider's stream of requests does not read the token table for each
//! one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::alloc::Millis;
use crate::store::access::tenants::{find_tenant, Tenant};
use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use crate::store::engine::time::{millis_of, rfc3339};
use crate::store::events::audit::{record as audit, Actor};
use crate::store::{Error, Lock, Result, Store, TenantKey};

/// (hash, revoked, expires, tenant id, tenant key) of a stored token.
type TokenRow = (Vec<u8>, Option<String>, Option<String>, String, TenantKey);

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
/// lookups and a read transaction. Only a well-formed SCIM token ([`well_formed`]) is looked up
/// here, and nothing but accepted SCIM tokens is ever put here: each kind of remembered thing has
/// a cache of its own, so no other credential, and nothing a client can type that is not a whole
/// SCIM token, can hit an entry. Refusals are never remembered. A change to tokens or tenants
/// made by this process bumps the generation and empties the cache after it commits; a lookup
/// that started before the bump cannot put its (possibly stale) answer back.
pub(in crate::store) type ScimCache = TrustCache<Arc<Tenant>>;

/// Credentials accepted a moment ago, by the SHA-256 of what was presented, with what they
/// grant (`V`): the shape of [`AuthCache`], also used for product tokens.
pub(in crate::store) struct TrustCache<V> {
    entries: Mutex<Entries<V>>,
}

impl<V> Default for TrustCache<V> {
    fn default() -> Self {
        TrustCache {
            entries: Mutex::new((0, HashMap::new())),
        }
    }
}

/// The generation, and each remembered credential's grant and trust deadline.
type Entries<V> = (u64, HashMap<[u8; 32], (V, Instant)>);

/// True when `token` has the shape of a credential of ours of kind `prefix` (`skt_`, `ska_`,
/// `skp_`): the prefix, an id of 16 hexadecimal digits, `_`, a secret of 64. Checked before any
/// cache or database lookup: what is not shaped like a token costs nothing and finds nothing.
pub fn well_formed(token: &str, prefix: &str) -> bool {
    let Some((id, secret)) = token.strip_prefix(prefix).and_then(|r| r.split_once('_')) else {
        return false;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    hex(id, 16) && hex(secret, 64)
}

/// The id part of a well-formed token of kind `prefix`.
pub(in crate::store) fn token_id(token: &str, prefix: &str) -> Option<String> {
    well_formed(token, prefix).then(|| token[prefix.len()..prefix.len() + 16].to_owned())
}

impl<V: Clone> TrustCache<V> {
    pub(in crate::store) fn get(&self, digest: &[u8; 32]) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (tenant, until) = entries.1.get(digest)?;
        (Instant::now() < *until).then(|| tenant.clone())
    }

    pub(in crate::store) fn generation(&self) -> u64 {
        self.entries.lock().map(|e| e.0).unwrap_or(u64::MAX)
    }

    /// Remembers an accepted token until the cache's TTL, or its expiry (`expires`, by the
    /// store's clock, which reads `now_ms` now) when that comes first.
    pub(in crate::store) fn put(
        &self,
        generation: u64,
        digest: [u8; 32],
        tenant: V,
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

    /// Forgets every credential: called after a write that revokes, rotates or changes a
    /// tenant.
    pub(in crate::store) fn invalidate(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.0 += 1;
            entries.1.clear();
        }
    }
}

/// A token as listed: never the secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
}

pub(in crate::store) fn token_row(r: &Row) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        created: r.get(1)?,
        expires: r.get(2)?,
        revoked: r.get(3)?,
    })
}

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

/// A SCIM token's row by its id: hash, revocation, expiry, and its tenant's id and key.
const SCIM_TOKEN_ROW: &str = "SELECT t.hash, t.revoked, t.expires, n.id, n.rk FROM scim_tokens t JOIN tenants n ON n.rk = t.tenant WHERE t.id = ?";

fn scim_token_row(r: &Row) -> Result<TokenRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// What a presented SCIM token's row says.
enum Verdict {
    /// Valid: the tenant (by id) to read, and the token's expiry.
    Accept {
        tenant: String,
        expires: Option<String>,
    },
    Refuse(Authn),
}

/// Judges the token presented as `presented` (its hash) with id `id` by its row, at `now`.
fn judge(row: Option<TokenRow>, presented: &[u8; 32], id: String, now: &str) -> Verdict {
    // Compare even when there is no row, so a miss costs what a hit costs.
    let stored = row.as_ref().map_or(&[0u8; 32][..], |r| &r.0[..]);
    let equal: bool = stored.ct_eq(&presented[..]).into();
    let Some((_, revoked, expires, tenant, key)) = row else {
        return Verdict::Refuse(Authn::Refused {
            tenant: None,
            reason: "unknown token",
        });
    };
    let reason = if !equal {
        "wrong secret"
    } else if revoked.is_some() {
        "revoked"
    } else if expires.as_ref().is_some_and(|e| e.as_str() <= now) {
        "expired"
    } else {
        return Verdict::Accept { tenant, expires };
    };
    Verdict::Refuse(Authn::Refused {
        tenant: Some((key, id)),
        reason,
    })
}

pub(in crate::store) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(in crate::store) fn new_token() -> (String, String, [u8; 32]) {
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
        crate::store::engine::time::rfc3339(at),
        expires
    ])?;
    Ok(())
}

fn token_info(c: &Db, id: &str) -> Result<TokenInfo> {
    c.prepare_cached("SELECT id, created, expires, revoked FROM scim_tokens WHERE id = ?")?
        .query_row([id], token_row)
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
    /// What binds it to the credential that opened it (`console::session`); `None` for a
    /// session from before sessions were bound, which no longer counts.
    pub bound: Option<Vec<u8>>,
}

impl Store {
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
                expires_in.map(|s| crate::store::engine::time::rfc3339(at + s * 1000)),
            )?;
            let info = token_info(c, &id)?;
            audit(
                c,
                tenant,
                at,
                actor.as_str(),
                crate::store::events::acts::Act::ScimTokenIssue(
                    crate::store::events::acts::TokenIssued { token: json!(info) },
                ),
            )?;
            Ok((info, token.clone()))
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
            let until = crate::store::engine::time::rfc3339(at + overlap * 1000);
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
            audit(c, tenant, at, actor.as_str(), crate::store::events::acts::Act::ScimTokenRotate(crate::store::events::acts::TokenRotated { token: json!(new), replaces: json!(old) }))?;
            Ok((new, token.clone(), old))
        })
        .await;
        self.inner.scim_cache.invalidate();
        rotated
    }

    pub async fn list_tokens(&self, tenant: TenantKey) -> Result<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, created, expires, revoked FROM scim_tokens WHERE tenant = ? ORDER BY created, id",
            )?;
            st.query_all([tenant], token_row)
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
            audit(c, tenant, ticker.now(), actor.as_str(), crate::store::events::acts::Act::ScimTokenRevoke(crate::store::events::acts::TokenRef { token: id.clone() }))
        })
        .await;
        self.inner.scim_cache.invalidate();
        revoked
    }

    /// The tenant a bearer token belongs to, if the token is valid, unrevoked and unexpired;
    /// else why not, and whose token it was when its id is known. An accepted token is
    /// remembered for [`AUTH_CACHE_TTL`] (see [`AuthCache`]).
    pub async fn authenticate(&self, token: String) -> Result<Authn> {
        // The shape first: what is not a whole SCIM token of ours is refused before any cache
        // or database lookup (junk from strangers costs nothing, and finds nothing).
        let Some(id) = token_id(&token, "skt_") else {
            return Ok(Authn::Refused {
                tenant: None,
                reason: "unknown token",
            });
        };
        let presented = hash(&token);
        let cache = &self.inner.scim_cache;
        if let Some(t) = cache.get(&presented) {
            return Ok(Authn::Tenant(t));
        }
        let generation = cache.generation();
        // Expiry by the store's clock, the one that stamped the token's `expires`.
        let now_ms = self.now_ms();
        let now_text = rfc3339(now_ms);
        let outcome = if let Some(p) = self.point() {
            // On PostgreSQL the token's row is read on this thread's own connection, so a
            // refusal (most of what a stranger sends) costs no blocking thread; an accepted
            // token's tenant is read after (once a second per token, see the cache).
            let row = p.query(SCIM_TOKEN_ROW, params![id], scim_token_row).await?;
            match judge(row.into_iter().next(), &presented, id, &now_text) {
                Verdict::Refuse(refused) => (refused, None),
                Verdict::Accept { tenant, expires } => {
                    let tenant = self.read_point(move |c| find_tenant(c, &tenant)).await?;
                    (Authn::Tenant(Arc::new(tenant)), expires)
                }
            }
        } else {
            // Two primary-key lookups: cheaper inline than handed to a blocking thread.
            self.read_point(move |c| {
                let row = c
                    .prepare_cached(SCIM_TOKEN_ROW)?
                    .query_row([&id], scim_token_row)
                    .optional()?;
                Ok(match judge(row, &presented, id, &now_text) {
                    Verdict::Refuse(refused) => (refused, None),
                    Verdict::Accept { tenant, expires } => {
                        (Authn::Tenant(Arc::new(find_tenant(c, &tenant)?)), expires)
                    }
                })
            })
            .await?
        };
        if let (Authn::Tenant(t), _) = &outcome {
            if t.closed.is_some() {
                // Offboarded: every credential of the tenant is refused.
                return Ok(Authn::Refused {
                    tenant: None,
                    reason: "tenant closed",
                });
            }
        }
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
            let at = crate::store::engine::time::rfc3339(ticker.now());
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
                crate::store::events::acts::Act::AdminTokenIssue(
                    crate::store::events::acts::TokenIssued { token: json!(info) },
                ),
            )?;
            Ok((info, token.clone()))
        })
        .await
    }

    pub async fn list_admin_tokens(&self, tenant: TenantKey) -> Result<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, created, NULL, revoked FROM admin_tokens WHERE tenant = ? ORDER BY created, id",
            )?;
            st.query_all([tenant], token_row)
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
            audit(c, tenant, ticker.now(), actor.as_str(), crate::store::events::acts::Act::AdminTokenRevoke(crate::store::events::acts::TokenRef { token: id.clone() }))
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
        bound: Vec<u8>,
    ) -> Result<()> {
        let key = hash(id).to_vec();
        self.write(Lock::None, move |c| {
            c.prepare_cached(
                "INSERT INTO console_sessions (id_hash, tenant, csrf, created, seen, actor, bound) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![key, tenant, csrf, now, now, actor.as_str(), bound])?;
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
        live: &(dyn Fn(&ConsoleSession, Millis) -> bool + Send + Sync),
    ) -> Result<Option<ConsoleSession>> {
        let key = hash(id).to_vec();
        let found = {
            let key = key.clone();
            self.read(move |c| {
                c.prepare_cached(
                    "SELECT tenant, csrf, created, seen, actor, bound FROM console_sessions WHERE id_hash = ?",
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
                        bound: r.get(5)?,
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
        if !live(&s, now) {
            self.write(Lock::None, move |c| {
                c.prepare_cached("DELETE FROM console_sessions WHERE id_hash = ?")?
                    .execute([&key])?;
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

    /// Ends every console session (of `tenant`, or of everyone): `seatkeeper console
    /// sign-out-all`. Answers how many ended; the operator's audit chain records it.
    pub async fn end_all_console_sessions(
        &self,
        tenant: Option<TenantKey>,
        actor: Actor,
    ) -> Result<usize> {
        let ticker = self.ticker();
        self.write(Lock::None, move |c| {
            let n = match tenant {
                Some(t) => c
                    .prepare_cached("DELETE FROM console_sessions WHERE tenant = ?")?
                    .execute([t])?,
                None => c
                    .prepare_cached("DELETE FROM console_sessions")?
                    .execute([])?,
            };
            audit(
                c,
                tenant.unwrap_or(crate::store::events::audit::OPERATOR_CHAIN),
                ticker.now(),
                actor.as_str(),
                crate::store::events::acts::Act::ConsoleSignOutAll(
                    crate::store::events::acts::SignedOut { sessions: n as i64 },
                ),
            )?;
            Ok(n)
        })
        .await
    }

    /// Ends one console session (sign-out).
    pub async fn end_console_session(&self, id: &str) -> Result<()> {
        let key = hash(id).to_vec();
        self.write(Lock::None, move |c| {
            c.prepare_cached("DELETE FROM console_sessions WHERE id_hash = ?")?
                .execute([&key])?;
            Ok(())
        })
        .await
    }

    /// The tenant a tenant admin token belongs to, if it is valid and unrevoked.
    pub async fn authenticate_admin(&self, token: String) -> Result<Option<Tenant>> {
        // Two primary-key lookups: inline on this worker's connection (`read_point`), as for
        // SCIM tokens; a hand-off to a blocking thread would cost more than the read.
        let Some(id) = token_id(&token, "ska_") else {
            return Ok(None);
        };
        let id = Some(id);
        self.read_point(move |c| {
            let presented = hash(&token);
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
                Some((_, None, tenant)) if equal => {
                    find_tenant(c, &tenant).map(|t| t.closed.is_none().then_some(t))
                }
                _ => Ok(None),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_token_of_its_kind_is_well_formed() {
        let (_, token, _) = new_token();
        assert!(well_formed(&token, "skt_"));
        assert!(!well_formed(&token, "skp_"));
        for junk in [
            "tenant:acme",
            "skt_",
            "skt_0123456789abcdef_short",
            "skt_0123456789abcdef",
            &format!("{token}x"),
            &token.replace("skt_", "skt_x"),
            &token
                .to_uppercase()
                .replace("SKT_", "skt_")
                .replacen('_', "-", 2),
        ] {
            assert!(!well_formed(junk, "skt_"), "{junk}");
        }
        assert_eq!(token_id(&token, "skt_").map(|i| i.len()), Some(16));
    }
}
