//! The product's side: product tokens (`skp_...`, read and report only; one tenant's, or the
//! operator's for every tenant) and the entitlement reads the vendor's product makes when a user
//! signs in: a user found by SCIM id, userName, externalId or email; the user's seats; one seat
//! check or a batch of them; the seat-event feed of one tenant or of all.

use std::sync::Arc;

use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::alloc::LicenseKey;
use crate::scim::resource::fold;
use crate::store::access::tokens::{hash, new_token, token_row, TokenInfo};
use crate::store::allocation::license_view::LicenseRef;
use crate::store::allocation::license_view::{license_key, view};
use crate::store::allocation::seat_admin::{seat_view, SeatView};
use crate::store::allocation::waitlist_ranks::RankCache;
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::engine::time::rfc3339;
use crate::store::events::audit::{record as audit, Actor, OPERATOR_CHAIN};
use crate::store::events::feed::{seat_event, SeatEvent};
use crate::store::{in_snapshot, Error, Lock, Result, Store, TenantKey};

/// Most users one batch check may name.
pub const MAX_CHECKS: usize = 1000;

/// Whose product token a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductScope {
    /// An operator product token: every tenant.
    Operator,
    /// One tenant's product token.
    Tenant(TenantKey),
}

impl ProductScope {
    pub fn may(&self, tenant: TenantKey) -> bool {
        match self {
            ProductScope::Operator => true,
            ProductScope::Tenant(t) => *t == tenant,
        }
    }
}

/// An accepted product token: whose it is, the tenant of a tenant's token (to authorize a
/// path against without resolving the path), and the SHA-256 of the whole token (the key of
/// what an operator token resolves, `Store::tenant_for_operator`).
#[derive(Debug, Clone)]
pub struct ProductGrant {
    pub scope: ProductScope,
    pub tenant: Option<Arc<crate::store::access::tenants::Tenant>>,
    pub credential: [u8; 32],
}

/// A user as the product sees it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProductUser {
    pub id: String,
    #[serde(rename = "userName")]
    pub user_name: String,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    pub active: bool,
}

/// One seat as the product sees it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProductSeat {
    /// `granted`, `releasing`, `blocked`, or `none` (no seat row).
    pub state: crate::store::UserState,
    /// The place on the waitlist while `blocked`.
    pub position: Option<i64>,
    pub since: Option<String>,
    #[serde(rename = "releaseAt")]
    pub release_at: Option<String>,
    /// When the product last reported the user using the license.
    #[serde(rename = "lastUsed")]
    pub last_used: Option<String>,
    /// `false` while the license observes (shadow mode): the state is what seatkeeper would
    /// decide, and the product keeps granting access as it did before.
    pub enforced: bool,
    /// For anyone not simply holding a seat: which selected group entitles them, and why they
    /// are where they are, in the admin's words.
    #[serde(rename = "entitledBy", skip_serializing_if = "Option::is_none")]
    pub entitled_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<SeatView> for ProductSeat {
    fn from(v: SeatView) -> Self {
        ProductSeat {
            state: v.state,
            position: v.position,
            since: v.since,
            release_at: v.release_at,
            last_used: v.last_used,
            enforced: v.enforced,
            entitled_by: v.entitled_by,
            reason: v.reason,
        }
    }
}

/// One use the product reports: `user` (any form [`find_user`] takes) used `license` at `at`
/// (RFC 3339; now when absent).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    pub user: String,
    pub license: String,
    pub at: Option<String>,
}

/// What a usage report recorded.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UsageReport {
    /// Seats whose last use moved (or stayed, when a later use was already known).
    pub recorded: usize,
    /// Events that named no seat: `{user, license, reason}`.
    pub ignored: Vec<serde_json::Value>,
}

/// Most events one usage report may carry.
pub const MAX_USAGE: usize = 1000;

/// A user's seats across the tenant's licenses.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProductUserSeats {
    pub user: ProductUser,
    pub seats: Vec<ProductLicenseSeat>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProductLicenseSeat {
    pub license: LicenseRef,
    #[serde(flatten)]
    pub seat: ProductSeat,
}

/// One answer of a batch check, in the order asked.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProductCheck {
    /// The user as named in the request.
    pub user: String,
    #[serde(flatten)]
    pub seat: ProductSeat,
    /// Why there is no answer for this user (`not_found`, `ambiguous`); absent when there is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// One event of the feed, naming its tenant (the operator's feed spans tenants).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProductEvent {
    #[serde(flatten)]
    pub event: SeatEvent,
    pub tenant: TenantRef,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TenantRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProductEvents {
    pub events: Vec<ProductEvent>,
    /// The cursor after the last event (the one given when there is none).
    pub next: i64,
}

/// The user `reference` names: a SCIM id, a userName (case-insensitively), an externalId, or
/// an email address of the user, tried in that order. An email shared by several users is a
/// conflict: the product must name the user more precisely.
/// How many different users `?2` (a reference as given) and `?3` (it folded) name in tenant
/// `?1` through any of id, userName, externalId and email.
pub(in crate::store) const USERS_NAMED: &str = "SELECT count(*) FROM (
      SELECT id FROM users WHERE tenant = ?1 AND id = ?2
      UNION SELECT id FROM users WHERE tenant = ?1 AND user_name_key = ?3
      UNION SELECT id FROM users WHERE tenant = ?1 AND external_id = ?2
      UNION SELECT u.id FROM user_emails e JOIN users u ON u.rk = e.user_rk WHERE e.tenant = ?1 AND e.value_key = ?3
    ) named";

/// The refusal of a reference that names several users.
pub(in crate::store) fn ambiguous(reference: &str) -> Error {
    Error::Conflict(format!(
        "{reference:?} names several users (one's id, userName, externalId or email is another's): name the user by id"
    ))
}

pub(in crate::store) fn find_user(
    c: &Db,
    tenant: TenantKey,
    reference: &str,
) -> Result<ProductUser> {
    let named: i64 = c
        .prepare_cached(USERS_NAMED)?
        .query_row(params![tenant, reference, fold(reference)], |r| r.get(0))?;
    if named > 1 {
        return Err(ambiguous(reference));
    }
    let row = |sql: &str, value: &str| -> Result<Option<ProductUser>> {
        c.prepare_cached(sql)?
            .query_row(params![tenant, value], |r| {
                Ok(ProductUser {
                    id: r.get(0)?,
                    user_name: r.get(1)?,
                    external_id: r.get(2)?,
                    active: r.get(3)?,
                })
            })
            .optional()
    };
    const COLS: &str = "SELECT id, user_name, external_id, active FROM users";
    let folded = fold(reference);
    if let Some(u) = row(&format!("{COLS} WHERE tenant = ? AND id = ?"), reference)? {
        return Ok(u);
    }
    if let Some(u) = row(
        &format!("{COLS} WHERE tenant = ? AND user_name_key = ?"),
        &folded,
    )? {
        return Ok(u);
    }
    if let Some(u) = row(
        &format!("{COLS} WHERE tenant = ? AND external_id = ?"),
        reference,
    )? {
        return Ok(u);
    }
    if reference.contains('@') {
        let mut st = c.prepare_cached(&format!(
            "{COLS} WHERE rk IN (SELECT user_rk FROM user_emails WHERE tenant = ? AND value_key = ?) ORDER BY id LIMIT 2"
        ))?;
        let found = st.query_all(params![tenant, folded], |r| {
            Ok(ProductUser {
                id: r.get(0)?,
                user_name: r.get(1)?,
                external_id: r.get(2)?,
                active: r.get(3)?,
            })
        })?;
        let mut found = found.into_iter();
        match (found.next(), found.next()) {
            (None, _) => {}
            (Some(u), None) => return Ok(u),
            (Some(_), Some(_)) => {
                return Err(Error::Conflict(format!(
                    "the email {reference:?} belongs to several users: name the user by id, userName or externalId"
                )))
            }
        }
    }
    Err(Error::NotFound(format!("user {reference:?}")))
}

fn check_one(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    reference: &str,
    ranks: &RankCache,
    facts: Option<&crate::store::allocation::seat_reason::LicenseFacts>,
) -> Result<ProductSeat> {
    let u = find_user(c, tenant, reference)?;
    let mut v = seat_view(c, tenant, l, &u.id, Some(u.user_name), Some(ranks))?;
    if let Some(facts) = facts {
        if v.state != crate::store::UserState::Granted || v.hold.is_some() {
            crate::store::allocation::seat_reason::explain(c, tenant, l, facts, &mut v)?;
        }
    }
    Ok(v.into())
}

impl Store {
    /// Issues a product token (`skp_<id>_<secret>`) for `tenant`, or for every tenant (`None`,
    /// the operator's). The returned string is the only copy of the secret.
    pub async fn issue_product_token(
        &self,
        tenant: Option<TenantKey>,
        actor: Actor,
    ) -> Result<(TokenInfo, String)> {
        let (id, secret, _) = new_token();
        let token = format!("skp_{}", secret.trim_start_matches("skt_"));
        let digest = hash(&token);
        let ticker = self.ticker();
        let lock = tenant.map_or(Lock::None, Lock::Tenant);
        self.write(lock, move |c| {
            let at = rfc3339(ticker.now());
            c.prepare_cached(
                "INSERT INTO product_tokens (id, tenant, hash, created) VALUES (?, ?, ?, ?)",
            )?
            .execute(params![id, tenant, &digest[..], at])?;
            let info = c
                .prepare_cached(
                    "SELECT id, created, NULL, revoked FROM product_tokens WHERE id = ?",
                )?
                .query_row([&id], token_row)?;
            audit(
                c,
                tenant.unwrap_or(OPERATOR_CHAIN),
                ticker.now(),
                actor.as_str(),
                crate::store::events::acts::Act::ProductTokenIssue(
                    crate::store::events::acts::TokenIssued {
                        token: serde_json::json!(info),
                    },
                ),
            )?;
            Ok((info, token.clone()))
        })
        .await
    }

    /// The product tokens of `tenant`, or the operator's (`None`).
    pub async fn list_product_tokens(&self, tenant: Option<TenantKey>) -> Result<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, created, NULL, revoked FROM product_tokens
                 WHERE (tenant = ?1 OR (tenant IS NULL AND CAST(?1 AS BIGINT) IS NULL)) ORDER BY created, id",
            )?;
            st
                .query_all(params![tenant], token_row)
        })
        .await
    }

    /// Revokes a product token of `tenant` (or an operator's, `None`) at once.
    pub async fn revoke_product_token(
        &self,
        tenant: Option<TenantKey>,
        id: String,
        actor: Actor,
    ) -> Result<()> {
        let lock = tenant.map_or(Lock::None, Lock::Tenant);
        let ticker = self.ticker();
        let revoked = self.write(lock, move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE product_tokens SET revoked = coalesce(revoked, ?)
                     WHERE id = ? AND (tenant = ? OR (tenant IS NULL AND CAST(? AS BIGINT) IS NULL))",
                )?
                .execute(params![rfc3339(ticker.now()), id, tenant, tenant])?;
            if n == 0 {
                return Err(Error::NotFound(format!("product token {id:?}")));
            }
            audit(c, tenant.unwrap_or(OPERATOR_CHAIN), ticker.now(), actor.as_str(), crate::store::events::acts::Act::ProductTokenRevoke(crate::store::events::acts::TokenRef { token: id.clone() }))
        })
        .await;
        self.inner.product_cache.invalidate();
        revoked
    }

    /// Whose product token `token` is, if it is a valid one.
    /// An accepted token is trusted for `AUTH_CACHE_TTL` without reading it again, as a SCIM
    /// token is: revoked through this process it ends at once, through another within that.
    pub async fn authenticate_product(&self, token: String) -> Result<Option<ProductGrant>> {
        // The shape first: nothing that is not a whole product token reaches a cache or a read.
        let Some(id) = crate::store::access::tokens::token_id(&token, "skp_") else {
            return Ok(None);
        };
        let presented = hash(&token);
        let cache = &self.inner.product_cache;
        if let Some(grant) = cache.get(&presented) {
            return Ok(Some(grant));
        }
        let generation = cache.generation();
        let now_ms = self.now_ms();
        // One primary-key lookup (and the tenant's, for a tenant's token), inline on this
        // worker's connection, as for admin tokens.
        let grant = self
            .read_point(move |c| {
                let row: Option<(Vec<u8>, Option<String>, Option<TenantKey>)> = c
                    .prepare_cached(
                        "SELECT hash, revoked, tenant FROM product_tokens WHERE id = ?",
                    )?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let stored = row
                    .as_ref()
                    .map(|r| r.0.clone())
                    .unwrap_or_else(|| vec![0u8; 32]);
                let equal: bool = stored.ct_eq(&presented[..]).into();
                Ok(match row {
                    Some((_, None, tenant)) if equal => Some(match tenant {
                        Some(t) => {
                            let tenant = crate::store::access::tenants::tenant_by_key(c, t)?;
                            if tenant.closed.is_some() {
                                return Ok(None);
                            }
                            ProductGrant {
                                scope: ProductScope::Tenant(t),
                                tenant: Some(Arc::new(tenant)),
                                credential: presented,
                            }
                        }
                        None => ProductGrant {
                            scope: ProductScope::Operator,
                            tenant: None,
                            credential: presented,
                        },
                    }),
                    _ => None,
                })
            })
            .await?;
        if let Some(g) = &grant {
            cache.put(generation, presented, g.clone(), None, now_ms);
        }
        Ok(grant)
    }

    /// The user `reference` names and every seat the user holds or waits for.
    pub async fn product_user_seats(
        &self,
        tenant: TenantKey,
        reference: String,
    ) -> Result<ProductUserSeats> {
        let ranks = self.inner.ranks.clone();
        self.read(move |c| {
            in_snapshot(c, |c| {
                let user = find_user(c, tenant, &reference)?;
                let mut st = c.prepare_cached(
                    "SELECT license_rk FROM seats WHERE tenant = ? AND user_id = ? ORDER BY license_rk",
                )?;
                let ls = st
                    .query_all::<LicenseKey, _>(params![tenant, user.id], |r| r.get(0))?;
                let mut seats = Vec::with_capacity(ls.len());
                for l in ls {
                    let lv = view(c, l)?;
                    let seat = seat_view(c, tenant, l, &user.id, None, Some(&ranks))?;
                    seats.push(ProductLicenseSeat {
                        license: LicenseRef {
                            id: lv.id,
                            name: lv.name,
                        },
                        seat: seat.into(),
                    });
                }
                Ok(ProductUserSeats { user, seats })
            })
        })
        .await
    }

    /// The seat check: the state of the user `reference` names in license `license`.
    pub async fn product_check(
        &self,
        tenant: TenantKey,
        license: String,
        reference: String,
        reasons: bool,
    ) -> Result<ProductSeat> {
        // As the admin seat check, inline on the HTTP worker when it can be.
        // Ids are UUIDs (`users::new_resource`): anything else can only be another reference.
        let who = crate::store::allocation::seat_admin::Who {
            id: uuid::Uuid::parse_str(&reference)
                .is_ok()
                .then(|| reference.clone()),
            name_key: fold(&reference),
            show_name: false,
            reference: Some(reference.clone()),
        };
        let seat = self
            .seat_check(tenant, license, who, reasons, move |c| {
                Ok((find_user(c, tenant, &reference)?.id, None))
            })
            .await?;
        Ok(seat.into())
    }

    /// Seat checks of many users of one license, in the order given, in one snapshot. A user
    /// that cannot be found answers `none` with an `error`; the batch still succeeds.
    pub async fn product_checks(
        &self,
        tenant: TenantKey,
        license: String,
        references: Vec<String>,
        reasons: bool,
    ) -> Result<Vec<ProductCheck>> {
        if references.len() > MAX_CHECKS {
            return Err(Error::Invalid(format!(
                "at most {MAX_CHECKS} users per request, not {}",
                references.len()
            )));
        }
        let ranks: Arc<RankCache> = self.inner.ranks.clone();
        self.read(move |c| {
            in_snapshot(c, |c| {
                let l = license_key(c, tenant, &license)?;
                let enforced = !crate::store::allocation::license_view::observing(c, l)?;
                let facts = match reasons {
                    true => Some(crate::store::allocation::seat_reason::license_facts(
                        c, tenant, l,
                    )?),
                    false => None,
                };
                references
                    .into_iter()
                    .map(|r| {
                        let none = ProductSeat {
                            state: crate::store::UserState::None,
                            position: None,
                            since: None,
                            release_at: None,
                            last_used: None,
                            enforced,
                            entitled_by: None,
                            reason: None,
                        };
                        match check_one(c, tenant, l, &r, &ranks, facts.as_ref()) {
                            Ok(seat) => Ok(ProductCheck {
                                user: r,
                                seat,
                                error: None,
                            }),
                            Err(Error::NotFound(_)) => Ok(ProductCheck {
                                user: r,
                                seat: none,
                                error: Some("not_found"),
                            }),
                            Err(Error::Conflict(_)) => Ok(ProductCheck {
                                user: r,
                                seat: none,
                                error: Some("ambiguous"),
                            }),
                            Err(e) => Err(e),
                        }
                    })
                    .collect()
            })
        })
        .await
    }

    /// Records the product's report of who used what, in one write: each seat's `last_used`
    /// moves forward (never back), and a seat reclaimed for idleness comes back (within its
    /// grace) or its user queues again. A time in the future counts as now. Events naming no
    /// user, no license or no seat of that user are listed in the answer and change nothing.
    pub async fn record_usage(
        &self,
        tenant: TenantKey,
        events: Vec<UsageEvent>,
    ) -> Result<UsageReport> {
        if events.len() > MAX_USAGE {
            return Err(Error::Invalid(format!(
                "at most {MAX_USAGE} events per request, not {}",
                events.len()
            )));
        }
        let mut parsed = Vec::with_capacity(events.len());
        for e in events {
            let at = match &e.at {
                None => None,
                Some(t) => Some(
                    t.parse::<jiff::Timestamp>()
                        .map_err(|_| Error::Invalid(format!("at: {t:?} is not an RFC 3339 time")))?
                        .as_millisecond(),
                ),
            };
            parsed.push((e, at));
        }
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let now = ticker.now();
            let mut report = UsageReport {
                recorded: 0,
                ignored: Vec::new(),
            };
            for (e, at) in &parsed {
                let at = at.unwrap_or(now).min(now);
                let ignore = |reason: &str| {
                    serde_json::json!({"user": e.user, "license": e.license, "reason": reason})
                };
                let l = match license_key(c, tenant, &e.license) {
                    Ok(l) => l,
                    Err(Error::NotFound(_)) => {
                        report.ignored.push(ignore("no such license"));
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                let user = match find_user(c, tenant, &e.user) {
                    Ok(u) => u,
                    Err(Error::NotFound(_)) => {
                        report.ignored.push(ignore("no such user"));
                        continue;
                    }
                    Err(Error::Conflict(_)) => {
                        report.ignored.push(ignore("the email belongs to several users"));
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                // A reclaimed user who uses the product again is entitled again (and has a
                // seat row again when the directory still entitles them).
                crate::store::allocation::reclaim::used(c, tenant, now, l, &user.id)?;
                let n = c
                    .prepare_cached(
                        "UPDATE seats SET last_used = CASE WHEN last_used IS NULL OR last_used < ?1 THEN ?1 ELSE last_used END,
                                reclaim_noticed = NULL
                         WHERE license_rk = ?2 AND user_id = ?3",
                    )?
                    .execute(params![at, l, user.id])?;
                if n == 0 {
                    report.ignored.push(ignore("the user has no seat of this license"));
                } else {
                    report.recorded += 1;
                }
            }
            Ok(report)
        })
        .await
    }

    /// The seat-event feed after `after`: of one tenant, or of every tenant (`None`).
    pub async fn product_events(
        &self,
        tenant: Option<TenantKey>,
        after: i64,
        limit: i64,
    ) -> Result<ProductEvents> {
        self.read(move |c| {
            let sql = match tenant {
                Some(_) => {
                    "SELECT e.seq, e.license_id, e.user_id, e.user_name, e.event, e.at, e.cause, t.id, t.name
                     FROM seat_events e JOIN tenants t ON t.rk = e.tenant
                     WHERE e.tenant = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3"
                }
                None => {
                    "SELECT e.seq, e.license_id, e.user_id, e.user_name, e.event, e.at, e.cause, t.id, t.name
                     FROM seat_events e JOIN tenants t ON t.rk = e.tenant
                     WHERE CAST(?1 AS BIGINT) IS NULL AND e.seq > ?2 ORDER BY e.seq LIMIT ?3"
                }
            };
            let mut st = c.prepare_cached(sql)?;
            let events = st
                .query_all(params![tenant, after, limit], |r| {
                    Ok(ProductEvent {
                        event: seat_event(r)?,
                        tenant: TenantRef {
                            id: r.get(7)?,
                            name: r.get(8)?,
                        },
                    })
                })?;
            let next = events.last().map_or(after, |e| e.event.cursor);
            Ok(ProductEvents { events, next })
        })
        .await
    }
}
