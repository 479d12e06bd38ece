//! Console sessions: a random id in a `Secure; HttpOnly; SameSite=Strict` cookie scoped to
//! `/console`, with its CSRF token, kept in the database under the id's hash, so that a session
//! works on whichever node a request lands and survives a restart, and revoking a tenant admin
//! token ends its sessions everywhere. A session ends after 30 minutes idle or 12 hours in all,
//! by the store's clock.

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::alloc::Millis;
use crate::store::events::audit::Actor;
use crate::store::{self, Store, TenantKey};

pub const COOKIE: &str = "sk_session";
/// The double-submit cookie that protects the sign-in form itself.
pub const LOGIN_COOKIE: &str = "sk_login";
pub const IDLE_MS: Millis = 30 * 60_000;
pub const MAX_MS: Millis = 12 * 3_600_000;

/// What a session may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The operator's admin token: every tenant.
    Operator,
    /// A tenant admin token: that tenant only.
    Tenant(TenantKey),
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub scope: Scope,
    pub csrf: String,
    /// Who signed in (`operator`, `tenant-admin:<id>`).
    pub signed_in_as: Actor,
}

impl Session {
    /// The audit log's actor for what this session does.
    pub fn actor(&self) -> Actor {
        Actor::console(&self.signed_in_as)
    }

    /// True when the session may act on `tenant`.
    pub fn may(&self, tenant: TenantKey) -> bool {
        match self.scope {
            Scope::Operator => true,
            Scope::Tenant(t) => t == tenant,
        }
    }

    /// Constant-time check of a form's CSRF token.
    pub fn csrf_ok(&self, given: &str) -> bool {
        given.len() == self.csrf.len() && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn live(created: Millis, seen: Millis, now: Millis) -> bool {
    now - seen < IDLE_MS && now - created < MAX_MS
}

/// What binds session `id` to the credential that opened it: HMAC-SHA-256 keyed by the session
/// id (which only the cookie holds; the database keeps its hash) over the operator's admin
/// token, or over a tenant admin token's id. A changed operator token ends every operator
/// session; revoking a tenant admin token deletes its tenant's sessions.
fn binding(id: &str, credential: &str) -> Vec<u8> {
    use hmac::{KeyInit as _, Mac as _};
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(id.as_bytes()) else {
        return Vec::new();
    };
    mac.update(credential.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The credential a session of `scope` signed in as `actor` is bound to now.
fn credential(scope: Scope, actor: &Actor, admin_token: Option<&str>) -> Option<String> {
    match scope {
        Scope::Operator => admin_token.map(|t| format!("operator:{t}")),
        Scope::Tenant(_) => Some(format!("tenant:{}", actor.as_str())),
    }
}

/// Signs a scope in: a new session, stored in the database (so every node knows it).
pub async fn create(
    store: &Store,
    scope: Scope,
    signed_in_as: Actor,
    now: Millis,
    admin_token: Option<&str>,
) -> Result<Session, store::Error> {
    let s = Session {
        id: random_token(),
        scope,
        csrf: random_token(),
        signed_in_as,
    };
    let tenant = match scope {
        Scope::Operator => None,
        Scope::Tenant(t) => Some(t),
    };
    let bound = credential(scope, &s.signed_in_as, admin_token)
        .map(|c| binding(&s.id, &c))
        .unwrap_or_default();
    store
        .create_console_session(
            tenant,
            &s.id,
            s.csrf.clone(),
            now,
            s.signed_in_as.clone(),
            bound,
        )
        .await?;
    Ok(s)
}

/// The live session with this id (use restarts its idle timer); an expired one, or one whose
/// credential has changed since it signed in (`admin_token`: the operator's token now), is
/// deleted.
pub async fn get(
    store: &Store,
    id: &str,
    now: Millis,
    admin_token: Option<&str>,
) -> Result<Option<Session>, store::Error> {
    let owned = id.to_owned();
    let admin_token = admin_token.map(str::to_owned);
    let still = move |s: &store::ConsoleSession, now: Millis| {
        let scope = s.tenant.map_or(Scope::Operator, Scope::Tenant);
        let expected =
            credential(scope, &s.actor, admin_token.as_deref()).map(|c| binding(&owned, &c));
        let bound = match (&s.bound, expected) {
            (Some(b), Some(e)) => !b.is_empty() && bool::from(b.ct_eq(&e)),
            _ => false,
        };
        bound && live(s.created, s.seen, now)
    };
    Ok(store
        .console_session(id, now, &still)
        .await?
        .map(|s| Session {
            id: id.to_owned(),
            scope: s.tenant.map_or(Scope::Operator, Scope::Tenant),
            csrf: s.csrf,
            signed_in_as: s.actor,
        }))
}

/// Signs out.
pub async fn remove(store: &Store, id: &str) -> Result<(), store::Error> {
    store.end_console_session(id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_in_all() {
        assert!(live(0, 0, IDLE_MS - 1));
        assert!(!live(0, 0, IDLE_MS));
        assert!(
            live(0, IDLE_MS, 2 * IDLE_MS - 1),
            "use restarts the idle timer"
        );
        assert!(live(0, MAX_MS - 2, MAX_MS - 1));
        assert!(!live(0, MAX_MS - 1, MAX_MS), "12 hours at most");
        let b = Session {
            id: random_token(),
            scope: Scope::Tenant(3),
            csrf: random_token(),
            signed_in_as: Actor::operator(),
        };
        assert!(b.may(3) && !b.may(4));
        assert!(b.csrf_ok(&b.csrf.clone()) && !b.csrf_ok("nope"));
    }
}
