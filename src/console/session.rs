//! Console sessions: a random id in a `Secure; HttpOnly; SameSite=Strict` cookie scoped to
//! `/console`, kept in memory (a restart signs everyone out), with its CSRF token. A session
//! ends after 30 minutes idle or 12 hours in all, by the store's clock.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::alloc::Millis;
use crate::store::TenantKey;

pub const COOKIE: &str = "sk_session";
/// The double-submit cookie that protects the sign-in form itself.
pub const LOGIN_COOKIE: &str = "sk_login";
pub const IDLE_MS: Millis = 30 * 60_000;
pub const MAX_MS: Millis = 12 * 3_600_000;
const MAX_SESSIONS: usize = 10_000;

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
    created: Millis,
    seen: Millis,
}

impl Session {
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

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn live(s: &Session, now: Millis) -> bool {
    now - s.seen < IDLE_MS && now - s.created < MAX_MS
}

impl Sessions {
    pub fn create(&self, scope: Scope, now: Millis) -> Session {
        let s = Session {
            id: random_token(),
            scope,
            csrf: random_token(),
            created: now,
            seen: now,
        };
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= MAX_SESSIONS {
                m.retain(|_, v| live(v, now));
            }
            m.insert(s.id.clone(), s.clone());
        }
        s
    }

    /// The live session with this id (its idle timer restarts); an expired one is dropped.
    pub fn get(&self, id: &str, now: Millis) -> Option<Session> {
        let mut m = self.map.lock().ok()?;
        let s = m.get_mut(id)?;
        if !live(s, now) {
            m.remove(id);
            return None;
        }
        s.seen = now;
        Some(s.clone())
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    /// Ends every session of a tenant scope (its credential was revoked).
    pub fn remove_scope(&self, scope: Scope) {
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, s| s.scope != scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_in_all() {
        let s = Sessions::default();
        let a = s.create(Scope::Operator, 0);
        assert!(s.get(&a.id, IDLE_MS - 1).is_some());
        assert!(
            s.get(&a.id, 2 * IDLE_MS - 2).is_some(),
            "use restarts the idle timer"
        );
        assert!(s.get(&a.id, 4 * IDLE_MS).is_none());
        assert!(s.get(&a.id, 0).is_none(), "an expired session is gone");
        let b = s.create(Scope::Tenant(3), 0);
        let mut t = 0;
        while t < MAX_MS - IDLE_MS {
            t += IDLE_MS / 2;
            assert!(s.get(&b.id, t).is_some());
        }
        assert!(s.get(&b.id, MAX_MS).is_none(), "12 hours at most");
        assert!(b.may(3) && !b.may(4));
        assert!(b.csrf_ok(&b.csrf.clone()) && !b.csrf_ok("nope"));
    }
}
