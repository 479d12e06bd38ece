//! Circuit-breaker holds (see `alloc`'s module doc): listing them, one with its held users,
//! approving and rejecting them, and what a hold's email says when its digest closes.
//!
//! A hold is opened by the allocator's run that first holds a loss of its license (through
//! `SeatStore::hold`, in `seats`), gathers the further held losses of that license while it is
//! open, and ends approved or rejected by an admin, or dissolved when the directory has
//! entitled every held user again. Its public id is its key.

use serde::Serialize;
use serde_json::{json, Value};

use crate::alloc::{LicenseKey, Loss};
use crate::notify::items::{stored, HeldChange, HeldPerson, Num, SeatsHeld, Text};
use crate::store::allocation::runs::allocate;
use crate::store::engine::sql::{params, Db, OptionalExtension, Row};
use crate::store::engine::time::rfc3339;
use crate::store::events::audit::{record as audit, Actor};
use crate::store::{Error, Lock, Result, Store, TenantKey};

/// How many held users one hold's view lists (the count says how many there are).
pub const USERS_SHOWN: i64 = 1000;

/// A hold as the admin API, the CLI and the console show it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HoldView {
    pub id: i64,
    pub license: crate::store::allocation::license_view::LicenseRef,
    pub state: HoldState,
    pub created: String,
    /// Seats it holds now.
    pub held: i64,
    /// Losses it ever held.
    pub total: i64,
    /// The directory changes that caused it, with how many losses each.
    pub changes: Vec<HoldChange>,
    #[serde(rename = "decidedAt")]
    pub decided_at: Option<String>,
    /// The audit actor who decided (`directory` for a dissolved hold).
    #[serde(rename = "decidedBy")]
    pub decided_by: Option<String>,
    /// The held users (the first [`USERS_SHOWN`] by user name); only when one hold is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<HeldUser>>,
    /// The rest of the story: the people the identity provider's changes took a seat from in
    /// the same window before the breaker tripped (each once, in the order they lost it; the
    /// first [`USERS_SHOWN`]); only when one hold is read.
    #[serde(rename = "releasedBefore", skip_serializing_if = "Option::is_none")]
    pub released_before: Option<Vec<HeldUser>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct HoldChange {
    /// What the directory did, in words ("removed from the group Designers").
    pub change: String,
    /// The stored form (`deactivated`, `deleted`, `removed:<group>`, `group_deleted:<group>`).
    pub kind: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct HeldUser {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
    pub change: String,
}

const COLS: &str = "h.rk, l.id, l.name, h.state, h.created, h.held, h.total, h.changes, h.decided, h.decided_by, h.license_rk";

fn hold_row(r: &Row) -> Result<(HoldView, LicenseKey)> {
    let changes: String = r.get(7)?;
    let changes: std::collections::BTreeMap<String, i64> =
        serde_json::from_str(&changes).unwrap_or_default();
    let mut changes: Vec<HoldChange> = changes
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, count)| HoldChange {
            change: Loss::parse(&k).describe(),
            kind: k,
            count,
        })
        .collect();
    changes.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    Ok((
        HoldView {
            id: r.get(0)?,
            license: crate::store::allocation::license_view::LicenseRef {
                id: r.get(1)?,
                name: r.get(2)?,
            },
            state: HoldState::parse(&r.get::<_, String>(3)?).unwrap_or(HoldState::Open),
            created: rfc3339(r.get(4)?),
            held: r.get(5)?,
            total: r.get(6)?,
            changes,
            decided_at: r.get::<_, Option<i64>>(8)?.map(rfc3339),
            decided_by: r.get(9)?,
            users: None,
            released_before: None,
        },
        r.get(10)?,
    ))
}

/// One hold of the tenant, with its license's key.
fn load(c: &Db, tenant: TenantKey, id: i64) -> Result<(HoldView, LicenseKey)> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM holds h JOIN licenses l ON l.rk = h.license_rk WHERE h.tenant = ? AND h.rk = ?"
    ))?
    .query_row(params![tenant, id], hold_row)
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("hold {id}")))
}

/// The users a hold holds now, by user name (at most `limit`).
fn held_users(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    hold: i64,
    limit: i64,
) -> Result<Vec<HeldUser>> {
    let mut st = c.prepare_cached(
        "SELECT s.user_id, u.user_name, u.doc, s.hold_loss FROM seats s
         LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.user_id
         WHERE s.license_rk = ? AND s.hold = ? AND s.tenant = ?
         ORDER BY u.user_name, s.user_id LIMIT ?",
    )?;
    st.query_all(params![l, hold, tenant, limit], |r| {
        let doc: Option<String> = r.get(2)?;
        let loss: Option<String> = r.get(3)?;
        Ok(HeldUser {
            user_id: r.get(0)?,
            user_name: r.get(1)?,
            display_name: doc
                .and_then(|d| serde_json::from_str::<Value>(&d).ok())
                .and_then(|d| {
                    d.get("displayName")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }),
            change: Loss::parse(loss.as_deref().unwrap_or("other")).describe(),
        })
    })
}

/// The people the directory took a seat of license `l` from in hold `hold`'s window before it
/// opened (see [`HoldView::released_before`]).
pub(in crate::store) fn released_before(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    hold: i64,
    limit: i64,
) -> Result<Vec<HeldUser>> {
    let mut st = c.prepare_cached(
        "SELECT e.user_id, max(e.user_name), min(e.seq), CAST(max(CASE WHEN e.event = 'released' THEN 1 ELSE 0 END) AS BIGINT)
         FROM seat_events e JOIN holds h ON h.rk = ?2
         WHERE e.license_rk = ?1 AND e.tenant = ?3 AND e.event IN ('releasing', 'released')
           AND e.cause IN ('directory', 'deleted')
           AND e.at >= coalesce(h.window_since, h.created) AND e.at <= h.created
         GROUP BY e.user_id ORDER BY min(e.seq) LIMIT ?4",
    )?;
    st.query_all(params![l, hold, tenant, limit], |r| {
        let freed: i64 = r.get(3)?;
        Ok(HeldUser {
            user_id: r.get(0)?,
            user_name: r.get(1)?,
            display_name: None,
            change: if freed == 1 {
                "lost the seat before the breaker tripped".to_owned()
            } else {
                "keeps the seat until the grace period ends (before the breaker tripped)".to_owned()
            },
        })
    })
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HoldState {
    /// Waiting for an admin's decision.
    Open,
    /// The held losses went through.
    Approved,
    /// The held users kept their seats.
    Rejected,
    /// The directory entitled every held user again.
    Dissolved,
}

impl HoldState {
    pub const ALL: [HoldState; 4] = [
        HoldState::Open,
        HoldState::Approved,
        HoldState::Rejected,
        HoldState::Dissolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Open => "open",
            HoldState::Approved => "approved",
            HoldState::Rejected => "rejected",
            HoldState::Dissolved => "dissolved",
        }
    }

    pub fn parse(s: &str) -> Option<HoldState> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// Whether `decision` may be taken on a hold in this state: an open hold may be approved
    /// or rejected, a rejected one approved (the admin releases the seats it kept).
    pub fn allows(self, decision: Decision) -> bool {
        match decision {
            Decision::Approve => matches!(self, HoldState::Open | HoldState::Rejected),
            Decision::Reject => self == HoldState::Open,
        }
    }

    /// Whether a hold in this state still keeps `held` seats an admin may release.
    pub fn awaits_decision(self, held: i64) -> bool {
        self == HoldState::Open || (self == HoldState::Rejected && held > 0)
    }
}

/// An admin's decision on a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The held losses go through: grace, release, promotion.
    Approve,
    /// The held users keep their seats until the directory entitles them again or an admin
    /// releases them (by approving the rejected hold).
    Reject,
}

impl Store {
    /// The tenant's holds, newest first; `state` keeps those in one state.
    pub async fn holds(&self, tenant: TenantKey, state: Option<String>) -> Result<Vec<HoldView>> {
        if let Some(s) = &state {
            if HoldState::parse(s).is_none() {
                return Err(Error::Invalid(format!(
                    "state {s:?} is not one of open, approved, rejected, dissolved"
                )));
            }
        }
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM holds h JOIN licenses l ON l.rk = h.license_rk
                 WHERE h.tenant = ? AND (CAST(? AS TEXT) IS NULL OR h.state = ?) ORDER BY h.rk DESC LIMIT 500"
            ))?;
            st
                .query_all(params![tenant, state, state], |r| {
                    hold_row(r).map(|(h, _)| h)
                })
        })
        .await
    }

    /// One hold with the users it holds.
    pub async fn hold(&self, tenant: TenantKey, id: i64) -> Result<HoldView> {
        self.read(move |c| {
            let (mut h, l) = load(c, tenant, id)?;
            h.users = Some(held_users(c, tenant, l, id, USERS_SHOWN)?);
            h.released_before = Some(released_before(c, tenant, l, id, USERS_SHOWN)?);
            Ok(h)
        })
        .await
    }

    /// Approves or rejects a hold. An open hold can be approved or rejected; a rejected one
    /// approved (the admin releases the seats it kept); anything else is a conflict.
    pub async fn decide_hold(
        &self,
        tenant: TenantKey,
        id: i64,
        decision: Decision,
        actor: Actor,
    ) -> Result<HoldView> {
        let ticker = self.ticker();
        self.write_alone(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let (h, l) = load(c, tenant, id)?;
            if !h.state.allows(decision) {
                return Err(Error::Conflict(format!(
                    "hold {id} is {}: it cannot be {} now",
                    h.state.as_str(),
                    match decision {
                        Decision::Approve => "approved",
                        Decision::Reject => "rejected",
                    }
                )));
            }
            let state = match decision {
                Decision::Approve => "approved",
                Decision::Reject => "rejected",
            };
            c.prepare_cached("UPDATE holds SET state = ?, decided = ?, decided_by = ? WHERE rk = ?")?
                .execute(params![state, at, actor.as_str(), id])?;
            let mut report = None;
            if decision == Decision::Approve {
                let mut st = c.prepare_cached(
                    "SELECT user_id, hold_loss FROM seats WHERE license_rk = ? AND hold = ? ORDER BY user_id",
                )?;
                let users = st
                    .query_all(params![l, id], |r| {
                        let loss: Option<String> = r.get(1)?;
                        Ok((r.get::<_, String>(0)?, Loss::parse(loss.as_deref().unwrap_or("other"))))
                    })?;
                report = Some(allocate(c, tenant, at, |a| a.release_held(l, &users))?);
            }
            audit(
                c,
                tenant,
                at,
                actor.as_str(),
                {
                    let decided = crate::store::events::acts::HoldDecided {
                        hold: id,
                        license: h.license.id.clone(),
                        name: h.license.name.clone(),
                        held: h.held,
                        report: json!(report),
                    };
                    match decision {
                        Decision::Approve => crate::store::events::acts::Act::HoldApprove(decided),
                        Decision::Reject => crate::store::events::acts::Act::HoldReject(decided),
                    }
                },
            )?;
            let (h, _) = load(c, tenant, id)?;
            Ok(h)
        })
        .await
    }
}

/// A hold's digest items made readable when the digest closes: each hold as it stands now
/// (state, counts, causes, its people) with the tenant's breaker settings.
pub(in crate::store) fn digest_items(
    c: &Db,
    tenant: TenantKey,
    items: Vec<Value>,
) -> Result<Vec<Value>> {
    let (percent, min_seats, window): (i64, i64, i64) = c
        .prepare_cached(
            "SELECT hold_threshold_percent, hold_min_seats, hold_window_seconds FROM tenants WHERE rk = ?",
        )?
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for i in items {
        let Some(id) = i.get("hold").and_then(Value::as_i64) else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        let Some((h, l)) = load(c, tenant, id).map(Some).or_else(|e| match e {
            Error::NotFound(_) => Ok(None),
            e => Err(e),
        })?
        else {
            continue;
        };
        let people: Vec<HeldPerson> = held_users(c, tenant, l, id, 10_000)?
            .into_iter()
            .map(|u| HeldPerson {
                name: u
                    .display_name
                    .clone()
                    .or(u.user_name.clone())
                    .unwrap_or(u.user_id.clone())
                    .into(),
                user_name: u.user_name.into(),
                change: u.change.into(),
            })
            .collect();
        let released_before: Vec<HeldPerson> = released_before(c, tenant, l, id, 10_000)?
            .into_iter()
            .map(|u| HeldPerson {
                name: u.user_name.clone().unwrap_or(u.user_id.clone()).into(),
                user_name: u.user_name.into(),
                change: u.change.into(),
            })
            .collect();
        let at: Text =
            serde_json::from_value(i.get("at").cloned().unwrap_or_default()).unwrap_or_default();
        out.push(stored(&SeatsHeld {
            released_before,
            hold: Num(id),
            state: h.state.as_str().into(),
            held: Num(h.held),
            total: Num(h.total),
            percent: Num(percent),
            min_seats: Num(min_seats),
            window_minutes: Num(window / 60),
            changes: h
                .changes
                .iter()
                .map(|c| HeldChange {
                    change: c.change.clone().into(),
                    count: Num(c.count),
                })
                .collect(),
            people,
            decided_by: h.decided_by.into(),
            at,
        }));
    }
    Ok(out)
}
