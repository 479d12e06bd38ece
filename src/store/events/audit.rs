//! The audit log an auditor would accept: every admin act, written by the write job of the
//! change (so an act is audited exactly when it happened), naming its real actor, chained.
//!
//! Tamper evidence: each entry stores the SHA-256 of its canonical content (tenant, time, actor,
//! action, detail) together with the hash of the tenant's previous entry (`prev_hash`): a hash
//! chain per tenant (tenant 0 holds the operator's own acts, such as operator product tokens).
//! Changing an entry breaks its hash; deleting or inserting one breaks the next entry's link.
//! [`Store::verify_audit`] walks a chain and names the first broken entry. On PostgreSQL an
//! entry takes its tenant's advisory lock first, so two nodes never chain onto the same entry.
//! Entries written before the chain existed (schema version 10 and older) carry no hash and
//! are reported as unchained, not broken.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::alloc::Millis;
use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use crate::store::engine::time::rfc3339;
use crate::store::{Lock, Result, Store, TenantKey};

/// The name of what an audit entry records: every admin act, and the seat events of the
/// activity feed (`seat.granted`, ...), which the feed shows beside the acts. Stored as its
/// text ([`AuditAction::as_str`]); an action read back that this release does not know stays
/// text ([`AuditAction::parse`] answers `None`). The act with its typed detail is
/// [`crate::store::events::acts::Act`], which the store writes and the console words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `tenant.create`: a tenant created.
    TenantCreate,
    /// `tenant.update`: a tenant's settings changed.
    TenantUpdate,
    /// `tenant.close`: a tenant offboarded (the operator's chain).
    TenantClose,
    /// `tenant.reopen`: a closed tenant opened again (the operator's chain).
    TenantReopen,
    /// `tenant.export`: a tenant's data exported (the operator's chain).
    TenantExport,
    /// `tenant.purge`: every row of a closed tenant deleted (the operator's chain).
    TenantPurge,
    /// `scim_token.issue`: a SCIM token issued.
    ScimTokenIssue,
    /// `scim_token.rotate`: a SCIM token rotated.
    ScimTokenRotate,
    /// `scim_token.revoke`: a SCIM token revoked.
    ScimTokenRevoke,
    /// `admin_token.issue`: a tenant admin token issued.
    AdminTokenIssue,
    /// `admin_token.revoke`: a tenant admin token revoked.
    AdminTokenRevoke,
    /// `product_token.issue`: a product token issued.
    ProductTokenIssue,
    /// `product_token.revoke`: a product token revoked.
    ProductTokenRevoke,
    /// `license.create`: a license created.
    LicenseCreate,
    /// `license.update`: a license changed.
    LicenseUpdate,
    /// `license.delete`: a license deleted.
    LicenseDelete,
    /// `license.holders`: people carried over as today's seat holders of an observing license.
    LicenseHolders,
    /// `license.holders_clear`: the people carried over forgotten.
    LicenseHoldersClear,
    /// `override.pin`: a user pinned.
    OverridePin,
    /// `override.exclude`: a user excluded.
    OverrideExclude,
    /// `override.idle`: an idle override set by hand.
    OverrideIdle,
    /// `override.remove`: an override cleared.
    OverrideRemove,
    /// `seat.grant`: a seat granted by hand.
    SeatGrant,
    /// `seat.reclaim`: idle seats reclaimed.
    SeatReclaim,
    /// `notification.test`: a test message queued.
    NotificationTest,
    /// `notification.retry`: a notification retried.
    NotificationRetry,
    /// `notification.dismiss`: a notification dismissed.
    NotificationDismiss,
    /// `webhook.create`: a webhook endpoint registered.
    WebhookCreate,
    /// `webhook.update`: a webhook endpoint changed.
    WebhookUpdate,
    /// `webhook.rotate`: a webhook secret rotated.
    WebhookRotate,
    /// `webhook.delete`: a webhook endpoint deleted.
    WebhookDelete,
    /// `webhook.redeliver`: a delivery sent again.
    WebhookRedeliver,
    /// `hold.open`: the circuit breaker held seat losses.
    HoldOpen,
    /// `hold.dissolve`: a hold dissolved by the directory.
    HoldDissolve,
    /// `hold.approve`: a hold approved.
    HoldApprove,
    /// `hold.reject`: a hold rejected.
    HoldReject,
    /// `reconcile`: a reconciler run.
    Reconcile,
    /// `console.sign_out_all`: every console session ended.
    ConsoleSignOutAll,
    /// `audit.key`: the chain keyed with the audit key.
    AuditKey,
    /// `seat.granted` (a seat event of the feed).
    SeatGranted,
    /// `seat.promoted` (a seat event of the feed).
    SeatPromoted,
    /// `seat.blocked` (a seat event of the feed).
    SeatBlocked,
    /// `seat.releasing` (a seat event of the feed).
    SeatReleasing,
    /// `seat.released` (a seat event of the feed).
    SeatReleased,
    /// `seat.held` (a seat event of the feed).
    SeatHeld,
}

impl AuditAction {
    /// Every action.
    pub const ALL: &'static [AuditAction] = &[
        AuditAction::TenantCreate,
        AuditAction::TenantUpdate,
        AuditAction::TenantClose,
        AuditAction::TenantReopen,
        AuditAction::TenantExport,
        AuditAction::TenantPurge,
        AuditAction::ScimTokenIssue,
        AuditAction::ScimTokenRotate,
        AuditAction::ScimTokenRevoke,
        AuditAction::AdminTokenIssue,
        AuditAction::AdminTokenRevoke,
        AuditAction::ProductTokenIssue,
        AuditAction::ProductTokenRevoke,
        AuditAction::LicenseCreate,
        AuditAction::LicenseUpdate,
        AuditAction::LicenseDelete,
        AuditAction::LicenseHolders,
        AuditAction::LicenseHoldersClear,
        AuditAction::OverridePin,
        AuditAction::OverrideExclude,
        AuditAction::OverrideIdle,
        AuditAction::OverrideRemove,
        AuditAction::SeatGrant,
        AuditAction::SeatReclaim,
        AuditAction::NotificationTest,
        AuditAction::NotificationRetry,
        AuditAction::NotificationDismiss,
        AuditAction::WebhookCreate,
        AuditAction::WebhookUpdate,
        AuditAction::WebhookRotate,
        AuditAction::WebhookDelete,
        AuditAction::WebhookRedeliver,
        AuditAction::HoldOpen,
        AuditAction::HoldDissolve,
        AuditAction::HoldApprove,
        AuditAction::HoldReject,
        AuditAction::Reconcile,
        AuditAction::ConsoleSignOutAll,
        AuditAction::AuditKey,
        AuditAction::SeatGranted,
        AuditAction::SeatPromoted,
        AuditAction::SeatBlocked,
        AuditAction::SeatReleasing,
        AuditAction::SeatReleased,
        AuditAction::SeatHeld,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::TenantCreate => "tenant.create",
            AuditAction::TenantUpdate => "tenant.update",
            AuditAction::TenantClose => "tenant.close",
            AuditAction::TenantReopen => "tenant.reopen",
            AuditAction::TenantExport => "tenant.export",
            AuditAction::TenantPurge => "tenant.purge",
            AuditAction::ScimTokenIssue => "scim_token.issue",
            AuditAction::ScimTokenRotate => "scim_token.rotate",
            AuditAction::ScimTokenRevoke => "scim_token.revoke",
            AuditAction::AdminTokenIssue => "admin_token.issue",
            AuditAction::AdminTokenRevoke => "admin_token.revoke",
            AuditAction::ProductTokenIssue => "product_token.issue",
            AuditAction::ProductTokenRevoke => "product_token.revoke",
            AuditAction::LicenseCreate => "license.create",
            AuditAction::LicenseUpdate => "license.update",
            AuditAction::LicenseDelete => "license.delete",
            AuditAction::LicenseHolders => "license.holders",
            AuditAction::LicenseHoldersClear => "license.holders_clear",
            AuditAction::OverridePin => "override.pin",
            AuditAction::OverrideExclude => "override.exclude",
            AuditAction::OverrideIdle => "override.idle",
            AuditAction::OverrideRemove => "override.remove",
            AuditAction::SeatGrant => "seat.grant",
            AuditAction::SeatReclaim => "seat.reclaim",
            AuditAction::NotificationTest => "notification.test",
            AuditAction::NotificationRetry => "notification.retry",
            AuditAction::NotificationDismiss => "notification.dismiss",
            AuditAction::WebhookCreate => "webhook.create",
            AuditAction::WebhookUpdate => "webhook.update",
            AuditAction::WebhookRotate => "webhook.rotate",
            AuditAction::WebhookDelete => "webhook.delete",
            AuditAction::WebhookRedeliver => "webhook.redeliver",
            AuditAction::HoldOpen => "hold.open",
            AuditAction::HoldDissolve => "hold.dissolve",
            AuditAction::HoldApprove => "hold.approve",
            AuditAction::HoldReject => "hold.reject",
            AuditAction::Reconcile => "reconcile",
            AuditAction::ConsoleSignOutAll => "console.sign_out_all",
            AuditAction::AuditKey => "audit.key",
            AuditAction::SeatGranted => "seat.granted",
            AuditAction::SeatPromoted => "seat.promoted",
            AuditAction::SeatBlocked => "seat.blocked",
            AuditAction::SeatReleasing => "seat.releasing",
            AuditAction::SeatReleased => "seat.released",
            AuditAction::SeatHeld => "seat.held",
        }
    }

    /// The action stored as `s`, if this release knows it.
    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The chain of the operator's own acts (not of one tenant).
pub const OPERATOR_CHAIN: TenantKey = 0;

/// Who did something, as the audit log names it: `operator` (the operator's admin token),
/// `tenant-admin:<token id>`, `console:<either of those>`, `cli:<OS user>`, `reconciler`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor(String);

impl Actor {
    pub fn operator() -> Actor {
        Actor("operator".into())
    }

    pub fn tenant_admin(token_id: &str) -> Actor {
        Actor(format!("tenant-admin:{token_id}"))
    }

    /// A console session signed in as `signed_in_as`.
    pub fn console(signed_in_as: &Actor) -> Actor {
        Actor(format!("console:{}", signed_in_as.0))
    }

    /// The CLI, as the OS user running it.
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor(format!("cli:{user}"))
    }

    pub fn reconciler() -> Actor {
        Actor("reconciler".into())
    }

    /// The identity provider's SCIM changes (a hold opened or dissolved by them).
    pub fn directory() -> Actor {
        Actor("directory".into())
    }

    /// An actor as stored.
    pub fn from_stored(s: String) -> Actor {
        Actor(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The audit keys of this process (`audit_key_file`, one key per line, the first current; the
/// others only verify entries written under them), set once at start-up from the
/// configuration. Without one, entries are chained with plain SHA-256.
static KEYS: std::sync::RwLock<Vec<AuditKey>> = std::sync::RwLock::new(Vec::new());

/// One audit key and its fingerprint (what an entry's `key_id` names; it reveals nothing of
/// the key).
#[derive(Clone)]
struct AuditKey {
    id: String,
    secret: Vec<u8>,
}

/// Sets the audit keys from the content of `audit_key_file` (blank lines ignored).
pub fn set_keys(file_content: &[u8]) {
    let keys: Vec<AuditKey> = file_content
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .map(|secret| {
            let mut h = Sha256::new();
            h.update(b"seatkeeper audit key\0");
            h.update(secret);
            let id: String = h.finalize()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            AuditKey {
                id,
                secret: secret.to_vec(),
            }
        })
        .collect();
    if let Ok(mut k) = KEYS.write() {
        *k = keys;
    }
}

fn current_key() -> Option<AuditKey> {
    KEYS.read().ok()?.first().cloned()
}

fn key_named(id: &str) -> Option<AuditKey> {
    KEYS.read().ok()?.iter().find(|k| k.id == id).cloned()
}

/// The hash of an entry: SHA-256 (hex) over its fields and the previous entry's hash, each
/// preceded by its length (so no field can slide into the next); HMAC-SHA-256 under `key`
/// when the entry is keyed.
fn entry_hash(
    tenant: TenantKey,
    at: Millis,
    actor: &str,
    action: &str,
    detail: &str,
    prev: Option<&str>,
    key: Option<&[u8]>,
) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let (tenant, at) = (tenant.to_string(), at.to_string());
    let parts = [
        tenant.as_str(),
        at.as_str(),
        actor,
        action,
        detail,
        prev.unwrap_or(""),
    ];
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match key.and_then(|k| hmac::Hmac::<Sha256>::new_from_slice(k).ok()) {
        Some(mut mac) => {
            for part in parts {
                mac.update(&(part.len() as u64).to_be_bytes());
                mac.update(part.as_bytes());
            }
            hex(&mac.finalize().into_bytes())
        }
        None => {
            let mut h = Sha256::new();
            for part in parts {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part.as_bytes());
            }
            hex(&h.finalize())
        }
    }
}

/// Records an act in the transaction of the change, chained to the tenant's previous entry.
pub(in crate::store) fn record(
    c: &Db,
    tenant: TenantKey,
    at: Millis,
    actor: &str,
    act: crate::store::events::acts::Act,
) -> Result<()> {
    let action = act.action().as_str();
    let detail = act.detail();
    // One chain per tenant, whichever node writes: an act without the tenant's writer lock
    // (tenant creation, the operator's chain) is serialized here.
    crate::store::engine::dialect::serialize_tenant(c, tenant)?;
    let prev: Option<String> = c
        .prepare_cached(
            "SELECT hash FROM audit WHERE tenant = ? AND hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    let detail = detail.to_string();
    let key = current_key();
    let hash = entry_hash(
        tenant,
        at,
        actor,
        action,
        &detail,
        prev.as_deref(),
        key.as_ref().map(|k| k.secret.as_slice()),
    );
    c.prepare_cached(
        "INSERT INTO audit (tenant, at, actor, action, detail, prev_hash, hash, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![tenant, at, actor, action, detail, prev, hash, key.map(|k| k.id)])?;
    Ok(())
}

impl Store {
    /// With an audit key set: every chain whose newest entry is not keyed under the current key
    /// gets an `audit.key` entry that is, so that from now on every chain ends keyed and
    /// `audit verify` can insist on it. Run once at start-up; answers how many chains.
    pub async fn key_audit_chains(&self) -> Result<usize> {
        let Some(key) = current_key() else {
            return Ok(0);
        };
        let ticker = self.ticker();
        let chains: Vec<(TenantKey, Option<String>)> = self
            .read(|c| {
                let mut st = c.prepare_cached(
                    "SELECT a.tenant, a.key_id FROM audit a
                     WHERE a.seq = (SELECT max(b.seq) FROM audit b WHERE b.tenant = a.tenant)",
                )?;
                st.query_all([], |r| Ok((r.get(0)?, r.get(1)?)))
            })
            .await?;
        let mut n = 0;
        for (tenant, key_id) in chains {
            if key_id.as_deref() == Some(key.id.as_str()) {
                continue;
            }
            let lock = if tenant == OPERATOR_CHAIN {
                crate::store::Lock::None
            } else {
                crate::store::Lock::Tenant(tenant)
            };
            let (id, previous) = (key.id.clone(), key_id.clone());
            let ticker = ticker.clone();
            self.write(lock, move |c| {
                record(
                    c,
                    tenant,
                    ticker.now(),
                    "seatkeeper",
                    crate::store::events::acts::Act::AuditKey(crate::store::events::acts::Keyed {
                        key: id.clone(),
                        previous: previous.clone(),
                    }),
                )
            })
            .await?;
            n += 1;
        }
        Ok(n)
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Pass as `before` for the entries older than this one (or `after` for newer).
    pub cursor: i64,
    pub at: String,
    /// `operator`, `tenant-admin:<id>`, `console:...`, `cli:<user>`, `reconciler`.
    pub actor: String,
    /// `license.update`, `token.issue`, `webhook.create`, `reconcile`, ...
    pub action: String,
    /// What the act changed: before and after values, ids.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The SHA-256 (hex) of this entry with the previous one's: the chain `audit verify` checks.
    pub hash: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    /// The cursor to pass as `before` (newest first) or `after` (oldest first) for the next
    /// page; `null` when this page is the last.
    pub next: Option<i64>,
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Newest first, older than this cursor.
    pub before: Option<i64>,
    /// Oldest first, newer than this cursor (takes precedence over `before`).
    pub after: Option<i64>,
    /// Actors starting with this (`tenant-admin:` matches every tenant admin token).
    pub actor: Option<String>,
    /// Actions equal to this, or starting with it when it ends with `.` (`license.`).
    pub action: Option<String>,
    /// From and to (ms, inclusive).
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub limit: i64,
}

impl AuditQuery {
    /// Whether this query, read oldest first to its end, is a whole export of the chain (no
    /// filter, from its first kept entry).
    pub fn whole(&self) -> bool {
        self.after.unwrap_or(0) == 0
            && self.actor.is_none()
            && self.action.is_none()
            && self.from.is_none()
            && self.to.is_none()
    }
}

/// Whether a chain is whole.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditVerdict {
    /// The chain's tenant (its id; `operator` for the operator's own acts).
    pub tenant: String,
    /// Entries checked.
    pub checked: i64,
    /// Entries from before the chain existed (no hash), not checked.
    pub unchained: i64,
    /// Entries chained under an audit key (HMAC), among `checked`.
    pub keyed: i64,
    /// The newest entry: record it (`cursor:hash`) and pass it to `audit verify --expect-head`
    /// later, so that a chain cut short or rewritten from the start is found too.
    pub head: Option<String>,
    /// The first entry that does not match, and why; `None`: whole.
    pub broken: Option<BrokenEntry>,
    /// Entries up to this cursor were pruned after an export (`audit_retention_days`); the
    /// chain is checked from the kept hash of the last of them.
    #[serde(rename = "prunedThrough", skip_serializing_if = "Option::is_none")]
    pub pruned_through: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BrokenEntry {
    pub cursor: i64,
    pub at: String,
    pub action: String,
    pub reason: String,
}

fn record_row(r: &Row) -> Result<AuditRecord> {
    let detail: String = r.get(4)?;
    Ok(AuditRecord {
        cursor: r.get(0)?,
        at: rfc3339(r.get(1)?),
        actor: r.get(2)?,
        action: r.get(3)?,
        detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
        hash: r.get(5)?,
    })
}

impl Store {
    /// A page of `tenant`'s audit log (the operator's own acts: [`OPERATOR_CHAIN`]).
    pub async fn audit_page(&self, tenant: TenantKey, q: AuditQuery) -> Result<AuditPage> {
        self.read(move |c| {
            let ascending = q.after.is_some();
            let action_prefix = q.action.as_deref().filter(|a| a.ends_with('.'));
            let sql = format!(
                "SELECT seq, at, actor, action, detail, hash FROM audit
                 WHERE tenant = ?1 AND seq {} ?2
                   AND (CAST(?3 AS TEXT) IS NULL OR substr(actor, 1, length(CAST(?3 AS TEXT))) = ?3)
                   AND (CAST(?4 AS TEXT) IS NULL OR action = ?4 OR (CAST(?5 AS TEXT) IS NOT NULL AND substr(action, 1, length(CAST(?5 AS TEXT))) = ?5))
                   AND (CAST(?6 AS BIGINT) IS NULL OR at >= ?6) AND (CAST(?7 AS BIGINT) IS NULL OR at <= ?7)
                 ORDER BY seq {} LIMIT ?8",
                if ascending { ">" } else { "<" },
                if ascending { "ASC" } else { "DESC" }
            );
            let cursor = q.after.or(q.before).unwrap_or(if ascending { 0 } else { i64::MAX });
            let limit = q.limit.clamp(1, 10_000);
            let mut st = c.prepare_cached(&sql)?;
            let entries = st
                .query_all(
                    params![tenant, cursor, q.actor, q.action, action_prefix, q.from, q.to, limit + 1],
                    record_row,
                )?;
            let mut entries = entries;
            let more = entries.len() as i64 > limit;
            entries.truncate(limit as usize);
            let next = if more { entries.last().map(|e| e.cursor) } else { None };
            Ok(AuditPage { entries, next })
        })
        .await
    }

    /// Checks the hash chain of `tenant` (or of every tenant and the operator's, `None`).
    pub async fn verify_audit(&self, tenant: Option<TenantKey>) -> Result<Vec<AuditVerdict>> {
        self.read(move |c| {
            let chains: Vec<(TenantKey, String)> = match tenant {
                Some(t) => vec![(t, tenant_name(c, t)?)],
                None => {
                    let mut v = vec![(OPERATOR_CHAIN, "operator".to_owned())];
                    let mut st = c.prepare_cached("SELECT rk, id FROM tenants ORDER BY rk")?;
                    v.extend(
                        st.query_all([], |r| Ok((r.get(0)?, r.get(1)?)))?,
                    );
                    v
                }
            };
            let mut out = Vec::new();
            for (t, name) in chains {
                let mut verdict = AuditVerdict {
                    tenant: name,
                    checked: 0,
                    unchained: 0,
                    keyed: 0,
                    head: None,
                    broken: None,
                    pruned_through: None,
                };
                let pruned: Option<(i64, Option<String>)> = c
                    .prepare_cached(
                        "SELECT pruned_through, pruned_hash FROM audit_retention WHERE tenant = ? AND pruned_through > 0",
                    )?
                    .query_row([t], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let mut st = c.prepare_cached(
                    "SELECT seq, at, actor, action, detail, prev_hash, hash, key_id FROM audit WHERE tenant = ? ORDER BY seq",
                )?;
                let mut prev: Option<String> = None;
                if let Some((through, hash)) = pruned {
                    verdict.pruned_through = Some(through);
                    prev = hash;
                }
                let rows = st
                    .query_all([t], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Millis>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Option<String>>(6)?,
                            r.get::<_, Option<String>>(7)?,
                        ))
                    })?;
                let total = rows.len();
                let mut last_keyed = false;
                for (seq, at, actor, action, detail, prev_hash, hash, key_id) in rows {
                    let broken = |reason: &str| BrokenEntry {
                        cursor: seq,
                        at: rfc3339(at),
                        action: action.clone(),
                        reason: reason.into(),
                    };
                    let Some(hash) = hash else {
                        if prev.is_some() {
                            verdict.broken = Some(broken("the entry has no hash inside the chain"));
                            break;
                        }
                        verdict.unchained += 1;
                        continue;
                    };
                    let key = match &key_id {
                        None if last_keyed => {
                            verdict.broken = Some(broken("an entry without the audit key follows keyed ones (the chain was rewritten)"));
                            break;
                        }
                        None => None,
                        Some(id) => match key_named(id) {
                            Some(k) => Some(k.secret),
                            None => {
                                verdict.broken = Some(broken("the entry is keyed with an audit key this process does not have (set audit_key_file)"));
                                break;
                            }
                        },
                    };
                    let reason = if prev_hash != prev {
                        Some("it does not link to the entry before it (an entry was removed, inserted or reordered)")
                    } else if entry_hash(t, at, &actor, &action, &detail, prev_hash.as_deref(), key.as_deref()) != hash {
                        Some("its content does not match its hash (the entry was changed)")
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        verdict.broken = Some(broken(reason));
                        break;
                    }
                    verdict.checked += 1;
                    last_keyed = key.is_some();
                    verdict.keyed += i64::from(last_keyed);
                    verdict.head = Some(format!("{seq}:{hash}"));
                    prev = Some(hash);
                }
                if verdict.broken.is_none() && total > 0 && verdict.checked == 0 {
                    verdict.broken = Some(BrokenEntry {
                        cursor: 0,
                        at: String::new(),
                        action: String::new(),
                        reason: format!("none of its {total} entries carries a hash (the hashes were removed)"),
                    });
                }
                if verdict.broken.is_none() && verdict.checked > 0 && !last_keyed && current_key().is_some() {
                    verdict.broken = Some(BrokenEntry {
                        cursor: 0,
                        at: String::new(),
                        action: String::new(),
                        reason: "its newest entry is not keyed although an audit key is set (the daemon keys every chain when it starts with one): the chain was rewritten or cut short".into(),
                    });
                }
                out.push(verdict);
            }
            Ok(out)
        })
        .await
    }
}

impl Store {
    /// Notes that a whole export of `tenant`'s chain (no filter, from its first kept entry)
    /// held every entry up to `through`: with `audit_retention_days` set, those entries may be
    /// pruned once they are old enough.
    pub async fn audit_exported(&self, tenant: TenantKey, through: i64) -> Result<()> {
        let at = self.now_ms();
        self.write(Lock::None, move |c| {
            c.prepare_cached(
                "INSERT INTO audit_retention (tenant, exported_through, exported_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant) DO UPDATE SET
                   exported_through = CASE WHEN excluded.exported_through > audit_retention.exported_through
                                           THEN excluded.exported_through ELSE audit_retention.exported_through END,
                   exported_at = excluded.exported_at",
            )?
            .execute(params![tenant, through, at])?;
            Ok(())
        })
        .await
    }

    /// The hash of entry `cursor` of `tenant`'s chain, if the chain holds it.
    pub async fn audit_entry_hash(&self, tenant: TenantKey, cursor: i64) -> Result<Option<String>> {
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT hash FROM audit WHERE tenant = ? AND seq = ?")?
                    .query_row(params![tenant, cursor], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                    .flatten(),
            )
        })
        .await
    }
}

fn tenant_name(c: &Db, t: TenantKey) -> Result<String> {
    if t == OPERATOR_CHAIN {
        return Ok("operator".into());
    }
    c.prepare_cached("SELECT id FROM tenants WHERE rk = ?")?
        .query_row([t], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field_and_the_link() {
        let base = entry_hash(1, 2, "operator", "license.update", "{}", Some("ab"), None);
        assert_eq!(base.len(), 64);
        let changed = [
            entry_hash(2, 2, "operator", "license.update", "{}", Some("ab"), None),
            entry_hash(1, 3, "operator", "license.update", "{}", Some("ab"), None),
            entry_hash(1, 2, "cli:root", "license.update", "{}", Some("ab"), None),
            entry_hash(1, 2, "operator", "license.delete", "{}", Some("ab"), None),
            entry_hash(
                1,
                2,
                "operator",
                "license.update",
                "{\"a\":1}",
                Some("ab"),
                None,
            ),
            entry_hash(1, 2, "operator", "license.update", "{}", None, None),
        ];
        for (i, other) in changed.iter().enumerate() {
            assert_ne!(&base, other, "field {i} is not covered");
        }
        // Fields cannot slide into each other.
        assert_ne!(
            entry_hash(1, 2, "a\nb", "c", "{}", None, None),
            entry_hash(1, 2, "a", "b\nc", "{}", None, None)
        );
        // Keyed: another hash, and another under another key.
        let keyed = entry_hash(
            1,
            2,
            "operator",
            "license.update",
            "{}",
            Some("ab"),
            Some(b"k1"),
        );
        assert_eq!(keyed.len(), 64);
        assert_ne!(keyed, base);
        assert_ne!(
            keyed,
            entry_hash(
                1,
                2,
                "operator",
                "license.update",
                "{}",
                Some("ab"),
                Some(b"k2")
            )
        );
    }
}
