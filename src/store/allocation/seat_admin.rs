//! Seat operations on one user or one license's seats: the seat list, the seat check (one
//! user's state and waitlist position), a user's seats across licenses, overrides (pin,
//! exclude) and manual grants. Writes run the allocator in their own transaction; reads of a
//! long waitlist's positions use its in-memory copy (`ranks`).

use crate::store::engine::sql::{params, Db, OptionalExtension};
use serde::Serialize;

use crate::alloc::{Cause, LicenseKey, OverrideKind, Refusal, SeatState, SeatStore};
use crate::store::allocation::license_view::{license_key, user_by_name, view, LicenseRef};
use crate::store::allocation::runs::allocate;
use crate::store::allocation::tx_seats::TxSeats;
use crate::store::allocation::waitlist_ranks::{Lookup, RankCache, Stamp};
use crate::store::engine::time::rfc3339;
use crate::store::events::acts::ByHand;
use crate::store::events::audit::{record as audit, Actor};
use crate::store::{in_snapshot, Error, Lock, Result, Store, TenantKey};

/// A user's state in a license as answered: their seat's state, or `none` (no seat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserState {
    Granted,
    Blocked,
    Releasing,
    None,
}

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Granted => "granted",
            UserState::Blocked => "blocked",
            UserState::Releasing => "releasing",
            UserState::None => "none",
        }
    }

    /// The state as a person reads it (the API's values stay): someone `blocked` is waiting.
    pub fn word(self) -> &'static str {
        match self {
            UserState::Granted => "granted",
            UserState::Blocked => "waiting",
            UserState::Releasing => "releasing",
            UserState::None => "no seat",
        }
    }
}

impl From<SeatState> for UserState {
    fn from(s: SeatState) -> Self {
        match s {
            SeatState::Granted => UserState::Granted,
            SeatState::Blocked => UserState::Blocked,
            SeatState::Releasing => UserState::Releasing,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeatView {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    /// The user's display name, where the seat list reads it (the console's pages).
    #[serde(rename = "displayName", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub state: UserState,
    /// When the user became entitled (the waitlist order).
    #[serde(rename = "entitledAt")]
    pub entitled_at: Option<String>,
    pub since: Option<String>,
    pub position: Option<i64>,
    #[serde(rename = "releaseAt")]
    pub release_at: Option<String>,
    pub pinned: bool,
    /// When the product last reported the user using the license.
    #[serde(rename = "lastUsed")]
    pub last_used: Option<String>,
    /// The circuit breaker's hold that keeps this granted seat although its user lost the
    /// entitlement (see `/holds`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<i64>,
    /// A granted seat above the seat count, in the agreed overage (the most recently granted
    /// are the ones in overage); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub overage: bool,
    /// Whether the license enforces this state: `false` while it observes (shadow mode), when
    /// the state is what seatkeeper would decide, not what the product should apply.
    pub enforced: bool,
    /// The selected group that entitles them (its display name), where it was read.
    #[serde(rename = "entitledBy", skip_serializing_if = "Option::is_none")]
    pub entitled_by: Option<String>,
    /// For anyone not simply holding a seat, why, in the admin's words (see `seat_reason`),
    /// where it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// In a license with reservations or ceilings: the selected group the seat counts
    /// against, and its display name; absent otherwise.
    #[serde(rename = "groupId", skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(rename = "groupName", skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
}

/// A group's display name by id.
fn group_name(c: &Db, tenant: TenantKey, group: Option<&str>) -> Result<Option<String>> {
    let Some(g) = group else { return Ok(None) };
    c.prepare_cached("SELECT display_name FROM groups WHERE tenant = ? AND id = ?")?
        .query_row(params![tenant, g], |r| r.get(0))
        .optional()
}

/// The users whose granted seats are in the license's overage: as many of the most recently
/// granted as use is above the seat count.
fn overage_users(c: &Db, l: LicenseKey) -> Result<std::collections::HashSet<String>> {
    let over: i64 = c
        .prepare_cached("SELECT granted + releasing - seats FROM licenses WHERE rk = ?")?
        .query_row([l], |r| r.get(0))?;
    if over <= 0 {
        return Ok(Default::default());
    }
    let mut st = c.prepare_cached(
        "SELECT user_id FROM seats WHERE license_rk = ? AND state = 'granted'
         ORDER BY since DESC, entitled_at DESC, user_id DESC LIMIT ?",
    )?;
    let v = st
        .query_map(params![l, over], |r| r.get::<_, String>(0))?
        .collect::<Result<_>>()?;
    Ok(v)
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeatsView {
    pub capacity: i64,
    pub granted: i64,
    pub blocked: i64,
    pub releasing: i64,
    pub seats: Vec<SeatView>,
}

/// One of a user's seats, with its license.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UserSeat {
    #[serde(flatten)]
    pub seat: SeatView,
    pub license: LicenseRef,
}

/// One user's seat in license `l`. On a read snapshot pass `ranks`: a long waitlist's position
/// then comes from its in-memory copy; a write job passes `None` (its changes are uncommitted).
pub(in crate::store) fn seat_view(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    user_id: &str,
    user_name: Option<String>,
    ranks: Option<&RankCache>,
) -> Result<SeatView> {
    try_seat_view(c, tenant, l, user_id, user_name, ranks, Defer::Never)?
        .ok_or_else(|| Error::Internal("a seat view that may scan gave up".into()))
}

/// [`seat_view`], or `None` where `defer` says: when only a scan of a long waitlist (a count,
/// or copying its order) could give the user's position.
/// When a seat view gives up (answers `None`) for the caller to ask again on a path that may
/// scan, in one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defer {
    /// Never: it counts the waitlist ahead when it must.
    Never,
    /// When the position needs a count of the waitlist (no current in-memory copy).
    Scan,
}

fn try_seat_view(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    user_id: &str,
    user_name: Option<String>,
    ranks: Option<&RankCache>,
    defer: Defer,
) -> Result<Option<SeatView>> {
    let enforced = !crate::store::allocation::license_view::observing(c, l)?;
    let mut v = TxSeats::new(c, tenant);
    let Some(seat) = v.seat(l, user_id)? else {
        let mut none = no_seat(user_id, user_name);
        none.enforced = enforced;
        return Ok(Some(none));
    };
    let last_used: Option<i64> = c
        .prepare_cached("SELECT last_used FROM seats WHERE license_rk = ? AND user_id = ?")?
        .query_row(params![l, seat.user], |r| r.get(0))?;
    let group_name = group_name(c, tenant, seat.pool.as_deref())?;
    let read = SeatRead {
        seat,
        last_used,
        group_name,
        stamp: None,
    };
    Ok(read
        .view(Some(c), l, user_name, ranks, defer)?
        .map(|v| SeatView { enforced, ..v }))
}

/// The answer for a user without a seat row in the license.
fn no_seat(user_id: &str, user_name: Option<String>) -> SeatView {
    SeatView {
        user_id: user_id.to_owned(),
        user_name,
        display_name: None,
        state: UserState::None,
        entitled_at: None,
        since: None,
        position: None,
        release_at: None,
        pinned: false,
        last_used: None,
        hold: None,
        overage: false,
        enforced: true,
        entitled_by: None,
        reason: None,
        group_id: None,
        group_name: None,
    }
}

/// A seat row as a seat check reads it: with its last use and its group's display name.
struct SeatRead {
    seat: crate::alloc::Seat,
    last_used: Option<i64>,
    group_name: Option<String>,
    /// The license's waitlist stamp when read with the seat.
    stamp: Option<Stamp>,
}

impl SeatRead {
    /// The seat's view; a waiting seat's position is read now (or `None` where `defer` says).
    /// Without a connection (`c` `None`) it reads nothing: a position it would count is deferred.
    fn view(
        self,
        c: Option<&Db>,
        l: LicenseKey,
        user_name: Option<String>,
        ranks: Option<&RankCache>,
        defer: Defer,
    ) -> Result<Option<SeatView>> {
        let SeatRead {
            seat,
            last_used,
            group_name,
            stamp,
        } = self;
        let waiting = seat.state == SeatState::Blocked;
        let may_scan = defer == Defer::Never && c.is_some();
        let (pinned, at, user) = (seat.pinned, seat.entitled_at, &seat.user);
        let lookup = match (ranks, stamp) {
            (Some(r), Some(stamp)) if waiting => {
                r.position_at(c, l, stamp, pinned, at, user, may_scan)?
            }
            (Some(r), None) if waiting => match c {
                Some(c) => r.position(c, l, pinned, at, user, may_scan)?,
                None => Lookup::Defer,
            },
            _ => Lookup::Count,
        };
        let position = match lookup {
            Lookup::At(p) => Some(p),
            Lookup::Defer => return Ok(None),
            Lookup::Count if !waiting => None,
            Lookup::Count => {
                let Some(c) = c else { return Ok(None) };
                let ahead: i64 = c
                .prepare_cached(
                    // Three index ranges of seats_order (those ahead only), not one OR over the
                    // whole waitlist: the position costs what is ahead of the user.
                    "SELECT (SELECT count(*) FROM seats WHERE license_rk = ?1 AND state = 'blocked' AND pinned > ?2)
                          + (SELECT count(*) FROM seats WHERE license_rk = ?1 AND state = 'blocked' AND pinned = ?2 AND entitled_at < ?3)
                          + (SELECT count(*) FROM seats WHERE license_rk = ?1 AND state = 'blocked' AND pinned = ?2 AND entitled_at = ?3 AND user_id < ?4)",
                )?
                .query_row(params![l, seat.pinned, seat.entitled_at, seat.user], |r| r.get(0))?;
                Some(ahead + 1)
            }
        };
        Ok(Some(SeatView {
            display_name: None,
            user_id: seat.user,
            user_name,
            state: seat.state.into(),
            entitled_at: Some(rfc3339(seat.entitled_at / 1000)),
            since: Some(rfc3339(seat.since)),
            position,
            release_at: seat.release_at.map(rfc3339),
            pinned: seat.pinned,
            last_used: last_used.map(rfc3339),
            hold: seat.held.map(|h| h.hold),
            overage: false,
            enforced: true,
            entitled_by: None,
            reason: None,
            group_name,
            group_id: seat.pool,
        }))
    }
}

/// The license `key` names and the user `user_name` names: (license, user id, userName).
fn named(c: &Db, tenant: TenantKey, key: &str, user: &str) -> Result<(LicenseKey, String, String)> {
    let l = license_key(c, tenant, key)?;
    let (id, name) = user_by_name(c, tenant, user)?;
    Ok((l, id, name))
}

/// After a seat was changed by hand (`action`): the audit entry, and the seat as it is now.
#[allow(clippy::too_many_arguments)]
fn changed_by_hand(
    c: &Db,
    tenant: TenantKey,
    at: crate::alloc::Millis,
    actor: &Actor,
    act: fn(ByHand) -> crate::store::events::acts::Act,
    l: LicenseKey,
    id: &str,
    name: String,
) -> Result<SeatView> {
    let license = view(c, l)?.id;
    audit(
        c,
        tenant,
        at,
        actor.as_str(),
        act(ByHand {
            license,
            user_name: name.clone(),
        }),
    )?;
    seat_view(c, tenant, l, id, Some(name), None)
}

/// How a seat check names its user, for [`POSTGRES_JOINED_SEAT_CHECK`]: by id (`id`, when the reference
/// may be one) or by `userName` (folded into `name_key`); `show_name` puts the stored userName
/// in the answer.
pub(in crate::store) struct Who {
    pub id: Option<String>,
    pub name_key: String,
    pub show_name: bool,
    /// The reference as the product gave it, when it may name a user by any of id, userName,
    /// externalId and email (and is refused when it names two).
    pub reference: Option<String>,
}

/// The joined seat check's statement, with the license found by `$license` and the user by
/// `$user` (see below). The name of a seat's group (a seat counted against a group's limit) is
/// not read here but by [`POOL_NAME`] after, only for a seat that has one: as a subquery it
/// cost PostgreSQL a fifth of the statement's time on every check, executed or not (`pgbench`,
/// 16 clients: 35,800 statements/s with it, 43,600/s without), and a join would probe the
/// groups index for every seat.
macro_rules! joined_seat_check {
    ($license:literal, $user:literal, $order:literal) => {
        concat!(
            "SELECT s.user_id, s.state, s.pinned, s.entitled_at, s.since, s.release_at, s.hold, s.hold_loss, s.pool,
                    s.last_used, l.rk, u.id, u.user_name, l.id, l.waitlist_gen, l.blocked, l.mode
             FROM licenses l
             JOIN users u ON u.tenant = l.tenant AND ", $user, "
             LEFT JOIN seats s ON s.license_rk = l.rk AND s.user_id = u.id
             WHERE l.tenant = ?1 AND ", $license, $order, " LIMIT 1"
        )
    };
}
/// A seat check on PostgreSQL in one statement, where each statement is a round trip: the
/// license, the user, the seat, its last use and its group's name, and the license's waitlist
/// stamp. Four variants: the license by id when its reference is a UUID (license ids are),
/// else by name; the user by id or userName when its reference may be an id, else by userName
/// alone. Each is one index lookup per table (an `OR` of two would combine two index scans,
/// and PostgreSQL's time for the statement grows by a third). No row when the license or the
/// user is not found that way (a license whose *name* looks like a UUID, an externalId or email
/// reference): the caller then takes the statement-by-statement path, which finds them by every
/// reference and answers the right error.
const POSTGRES_JOINED_SEAT_CHECK: [&str; 4] = [
    joined_seat_check!(
        "l.id = ?2",
        "(u.id = ?3 OR u.user_name_key = ?4)",
        " ORDER BY u.id = ?3 DESC"
    ),
    joined_seat_check!("l.id = ?2", "u.user_name_key = ?3", ""),
    joined_seat_check!(
        "lower(l.name) = lower(?2)",
        "(u.id = ?3 OR u.user_name_key = ?4)",
        " ORDER BY u.id = ?3 DESC"
    ),
    joined_seat_check!("lower(l.name) = lower(?2)", "u.user_name_key = ?3", ""),
];

/// The name of a seat's group, for a [`POSTGRES_JOINED_SEAT_CHECK`] row whose seat has one.
const POOL_NAME: &str = "SELECT display_name FROM groups WHERE tenant = ? AND id = ?";

/// A row of [`POSTGRES_JOINED_SEAT_CHECK`].
struct Joined {
    license: LicenseKey,
    user: String,
    name: String,
    /// The seat with its last use and the license's stamp (its group's name is read after,
    /// by [`POOL_NAME`]); `None` when the user has no seat in the license.
    seat: Option<SeatRead>,
    /// Whether the license enforces (not in observe mode).
    enforced: bool,
}

impl Joined {
    fn read(r: &crate::store::engine::sql::Row) -> Result<Joined> {
        let seat = match r.get::<_, Option<String>>(0)? {
            Some(_) => Some(SeatRead {
                seat: crate::store::allocation::tx_seats::seat_row(r)?,
                last_used: r.get(9)?,
                group_name: None,
                stamp: Some(Stamp {
                    license_id: r.get(13)?,
                    gen: r.get(14)?,
                    waiting: r.get(15)?,
                }),
            }),
            None => None,
        };
        Ok(Joined {
            license: r.get(10)?,
            user: r.get(11)?,
            name: r.get(12)?,
            seat,
            enforced: r.get::<_, String>(16)? != "observe",
        })
    }

    /// The seat's view; `None` when a waiting user's position is not in the in-memory copy of
    /// the waitlist (the caller counts it on the statement-by-statement path).
    fn view(self, who: &Who, ranks: &RankCache) -> Result<Option<SeatView>> {
        let name = who.show_name.then_some(self.name);
        let enforced = self.enforced;
        let v = match self.seat {
            None => Some(no_seat(&self.user, name)),
            Some(read) => read.view(None, self.license, name, Some(ranks), Defer::Scan)?,
        };
        Ok(v.map(|v| SeatView { enforced, ..v }))
    }
}

/// An override of a license, as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct OverrideView {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    /// `pin` (served first), `exclude` (never granted) or `idle` (reclaimed for not being used;
    /// lifted by the next reported use or by removing it).
    pub kind: String,
    pub since: String,
    /// Who set it, as the audit log names them (`reclaimer` for an idle reclaim; `null` for
    /// one set before this was kept).
    #[serde(rename = "setBy")]
    pub set_by: Option<String>,
    /// Whether the user is entitled to the license now (has a seat, waiting or not): a pin on
    /// someone who is not has no effect until they are.
    pub entitled: bool,
}

/// The seat search, one rule for the console's page, its CSV and every other list: `?3` is
/// [`search_pattern`] of what was typed (or NULL), matched against the userName's folded key
/// (so any script folds alike, on either engine) and the user's id.
const SEAT_SEARCH: &str = "(CAST(?3 AS TEXT) IS NULL OR coalesce(u.user_name_key, '') LIKE ?3 ESCAPE '\\' OR lower(s.user_id) LIKE ?3 ESCAPE '\\')";

/// The LIKE pattern of a seat search (`None`: no search).
fn search_pattern(needle: &str) -> Option<String> {
    let needle = crate::scim::resource::fold(needle.trim());
    (!needle.is_empty()).then(|| {
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    })
}

impl Store {
    /// The seats of a license, in order: granted, releasing, then the waitlist by position.
    pub async fn seats(
        &self,
        tenant: TenantKey,
        key: String,
        state: Option<SeatState>,
    ) -> Result<SeatsView> {
        self.seats_matching(tenant, key, state, String::new(), false)
            .await
    }

    /// [`Store::seats`] with each seat's reason and the group that entitles it
    /// (`seat_reason`): a few more reads per seat.
    pub async fn seats_explained(
        &self,
        tenant: TenantKey,
        key: String,
        state: Option<SeatState>,
    ) -> Result<SeatsView> {
        self.seats_matching(tenant, key, state, String::new(), true)
            .await
    }

    /// [`Store::seats`], only those matching `needle` (the seat search); waiting seats keep
    /// their place in the whole waitlist.
    pub async fn seats_matching(
        &self,
        tenant: TenantKey,
        key: String,
        state: Option<SeatState>,
        needle: String,
        explained: bool,
    ) -> Result<SeatsView> {
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let v = view(c, l)?;
            let mut st = c.prepare_cached(&format!(
                // Each waiting seat's place is counted over the whole waitlist, before the
                // search narrows the list.
                "SELECT s.user_id, u.user_name, s.state, s.since, s.release_at, s.pinned, s.entitled_at, s.last_used, s.hold, s.pool, g.display_name, s.place
                 FROM (SELECT seats.*,
                              CASE WHEN state = 'blocked' THEN ROW_NUMBER() OVER (PARTITION BY state = 'blocked' ORDER BY pinned DESC, entitled_at, user_id) END AS place
                       FROM seats WHERE license_rk = ?1) AS s
                 LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.user_id
                 LEFT JOIN groups g ON g.tenant = s.tenant AND g.id = s.pool
                 WHERE (CAST(?2 AS TEXT) IS NULL OR s.state = ?2) AND {SEAT_SEARCH}
                 ORDER BY CASE s.state WHEN 'granted' THEN 0 WHEN 'releasing' THEN 1 ELSE 2 END,
                          s.pinned DESC, s.entitled_at, s.user_id"
            ))?;
            let overage = overage_users(c, l)?;
            let enforced = !crate::store::allocation::license_view::observing(c, l)?;
            let seats = st
                .query_all(params![l, state.map(SeatState::as_str), search_pattern(&needle)], |r| {
                    let state: String = r.get(2)?;
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, state, r.get::<_, i64>(3)?, r.get::<_, Option<i64>>(4)?, r.get::<_, bool>(5)?, r.get::<_, i64>(6)?, r.get::<_, Option<i64>>(7)?, r.get::<_, Option<i64>>(8)?, r.get::<_, Option<String>>(9)?, r.get::<_, Option<String>>(10)?, r.get::<_, Option<i64>>(11)?))
                })?;
            let mut out = Vec::with_capacity(seats.len());
            for (user_id, user_name, st, since, release_at, pinned, entitled_at, last_used, hold, group_id, group_name, place) in seats {
                let state = SeatState::parse(&st).unwrap_or(SeatState::Blocked);
                let pos = place.filter(|_| state == SeatState::Blocked);
                let in_overage = state == SeatState::Granted && overage.contains(&user_id);
                out.push(SeatView {
                    user_id,
                    user_name,
                    display_name: None,
                    state: state.into(),
                    entitled_at: Some(rfc3339(entitled_at / 1000)),
                    since: Some(rfc3339(since)),
                    position: pos,
                    release_at: release_at.map(rfc3339),
                    pinned,
                    overage: in_overage,
                    enforced,
                    entitled_by: None,
                    reason: None,
                    last_used: last_used.map(rfc3339),
                    hold,
                    group_id,
                    group_name,
                });
            }
            if explained {
                let facts = crate::store::allocation::seat_reason::license_facts(c, tenant, l)?;
                for seat in &mut out {
                    crate::store::allocation::seat_reason::explain(c, tenant, l, &facts, seat)?;
                }
            }
            Ok(SeatsView { capacity: v.seats, granted: v.granted, blocked: v.blocked, releasing: v.releasing, seats: out })
        })
        .await
    }

    /// One page of a license's seats in the order of [`Store::seats`], filtered by `state` and
    /// by `needle` (a case-insensitive part of the userName or user id), with the number that
    /// match: the console's seat list, read in the store a page at a time.
    pub async fn seats_page(
        &self,
        tenant: TenantKey,
        key: String,
        state: Option<SeatState>,
        needle: String,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<SeatView>, i64)> {
        let ranks = self.inner.ranks.clone();
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            // The one seat search (the page and the CSV alike): a part of the userName, folded
            // as the userName's key is (any script, either engine), or of the user's id.
            let pattern = search_pattern(&needle);
            let filter = format!(
                "FROM seats s LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.user_id
                 WHERE s.license_rk = ?1 AND (CAST(?2 AS TEXT) IS NULL OR s.state = ?2) AND {SEAT_SEARCH}"
            );
            let st_name = state.map(SeatState::as_str);
            let total: i64 = c
                .prepare_cached(&format!("SELECT count(*) {filter}"))?
                .query_row(params![l, st_name, pattern], |r| r.get(0))?;
            let display = crate::store::engine::dialect::json_text(c, "u.doc", "displayName");
            let mut st = c.prepare_cached(&format!(
                "SELECT s.user_id, u.user_name, {display} {filter}
                 ORDER BY CASE s.state WHEN 'granted' THEN 0 WHEN 'releasing' THEN 1 ELSE 2 END,
                          s.pinned DESC, s.entitled_at, s.user_id
                 LIMIT ?4 OFFSET ?5"
            ))?;
            let rows = st
                .query_all(params![l, st_name, pattern, limit, offset], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?;
            let mut out = Vec::with_capacity(rows.len());
            let overage = overage_users(c, l)?;
            let facts = crate::store::allocation::seat_reason::license_facts(c, tenant, l)?;
            for (user, name, display_name) in rows {
                // Positions of waiting seats from the waitlist's in-memory order (a long one's),
                // else a count over the index ranges ahead of each.
                let mut v = seat_view(c, tenant, l, &user, name, Some(&ranks))?;
                v.display_name = display_name.filter(|d| !d.is_empty());
                v.overage = v.state == UserState::Granted && overage.contains(&v.user_id);
                crate::store::allocation::seat_reason::explain(c, tenant, l, &facts, &mut v)?;
                out.push(v);
            }
            Ok((out, total))
        })
        .await
    }

    /// One user's seat (`none` when the user has no seat row): the seat check.
    pub async fn seat_of(
        &self,
        tenant: TenantKey,
        key: String,
        user_name: String,
        reasons: bool,
    ) -> Result<SeatView> {
        let who = Who {
            id: None,
            name_key: crate::scim::resource::fold(&user_name),
            show_name: true,
            // The admin seat check names the user by userName only.
            reference: None,
        };
        self.seat_check(tenant, key, who, reasons, move |c| {
            let (id, name) = user_by_name(c, tenant, &user_name)?;
            Ok((id, Some(name)))
        })
        .await
    }

    /// A seat check of the user `find` names (their id and the name to show) in license `key`
    /// (with `reasons`, why they are where they are: `seat_reason`):
    /// inline on this HTTP worker's read connection when nothing needs a scan of a long
    /// waitlist (a granted user, a short waitlist, a current copy); on a pooled reader else.
    pub(in crate::store) async fn seat_check(
        &self,
        tenant: TenantKey,
        key: String,
        who: Who,
        reasons: bool,
        find: impl Fn(&Db) -> Result<(String, Option<String>)> + Send + Sync + 'static,
    ) -> Result<SeatView> {
        let v = self.seat_state(tenant, key.clone(), who, find).await?;
        // Asked for (`reasons`), anyone not simply holding a seat is told why and which group
        // entitles them (one more read); the sign-in check itself stays as lean as it was.
        if !reasons || (v.state == UserState::Granted && v.hold.is_none()) {
            return Ok(v);
        }
        self.read(move |c| {
            let mut v = v.clone();
            let l = license_key(c, tenant, &key)?;
            let facts = crate::store::allocation::seat_reason::license_facts(c, tenant, l)?;
            crate::store::allocation::seat_reason::explain(c, tenant, l, &facts, &mut v)?;
            Ok(v)
        })
        .await
    }

    /// [`Store::seat_check`] without the reason.
    async fn seat_state(
        &self,
        tenant: TenantKey,
        key: String,
        who: Who,
        find: impl Fn(&Db) -> Result<(String, Option<String>)> + Send + Sync + 'static,
    ) -> Result<SeatView> {
        let key2 = key.clone();
        let ranks = self.inner.ranks.clone();
        let check = move |c: &Db, defer: Defer| {
            let l = license_key(c, tenant, &key)?;
            let (id, name) = find(c)?;
            try_seat_view(c, tenant, l, &id, name, Some(&ranks), defer)
        };
        let Some(p) = self.point() else {
            // Reads are cheap here: inline on this worker's own connection, a pooled reader
            // only when the waitlist must be scanned.
            if let Some(v) = self.read_now(|c| check(c, Defer::Scan))? {
                return Ok(v);
            }
            return self
                .read(move |c| in_snapshot(c, |c| check(c, Defer::Never)))
                .await?
                .ok_or_else(|| Error::Internal("a seat view that may scan gave up".into()));
        };
        // Where each statement is a round trip (an engine with a point reader, PostgreSQL):
        // one joined statement reads the license, the user and the seat, on this thread's own
        // connection, with no snapshot transaction around it (it sees the last commit, as a
        // point read does). A waiting user's position comes from the in-memory copy of the
        // order only at the generation it was taken at, so a copy never answers for a later
        // waitlist; where it cannot (or the user is named otherwise), the statement-by-
        // statement path answers.
        {
            let by_name = if uuid::Uuid::parse_str(&key2).is_ok() {
                0
            } else {
                2
            };
            let joined = async {
                match &who.id {
                    Some(id) => {
                        let args = params![tenant, key2, id, who.name_key];
                        p.query(POSTGRES_JOINED_SEAT_CHECK[by_name], args, Joined::read)
                            .await
                    }
                    None => {
                        let args = params![tenant, key2, who.name_key];
                        p.query(POSTGRES_JOINED_SEAT_CHECK[by_name + 1], args, Joined::read)
                            .await
                    }
                }
            };
            // Pipelined with it: whether the reference names anyone else too (409 then).
            let named = async {
                match &who.reference {
                    Some(r) => {
                        p.query(
                            crate::store::access::product::USERS_NAMED,
                            params![tenant, r, who.name_key],
                            |row| row.get::<_, i64>(0),
                        )
                        .await
                    }
                    None => Ok(Vec::new()),
                }
            };
            let (found, named) = futures_util::future::join(joined, named).await;
            let found = found?;
            if named?.into_iter().next().unwrap_or(0) > 1 {
                if let Some(r) = &who.reference {
                    return Err(crate::store::access::product::ambiguous(r));
                }
            }
            if let Some(mut joined) = found.into_iter().next() {
                if let Some(read) = joined.seat.as_mut() {
                    if let Some(pool) = read.seat.pool.clone() {
                        let names = p
                            .query(POOL_NAME, params![tenant, pool], |r| r.get(0))
                            .await?;
                        read.group_name = names.into_iter().next();
                    }
                }
                if let Some(v) = joined.view(&who, &self.inner.ranks)? {
                    return Ok(v);
                }
            }
        }
        self.read(move |c| check(c, Defer::Never))
            .await?
            .ok_or_else(|| Error::Internal("a seat view that may scan gave up".into()))
    }

    /// The user named `user_name` (the console's person page): its directory record.
    pub async fn user_named(
        &self,
        tenant: TenantKey,
        user_name: String,
    ) -> Result<crate::store::directory::users::UserRecord> {
        let id = self
            .read(move |c| Ok(user_by_name(c, tenant, &user_name)?.0))
            .await?;
        self.get_user(tenant, id).await
    }

    /// Every seat a user holds or waits for, across the tenant's licenses.
    pub async fn seats_of_user(
        &self,
        tenant: TenantKey,
        user_name: String,
    ) -> Result<Vec<UserSeat>> {
        let ranks = self.inner.ranks.clone();
        self.read(move |c| {
            in_snapshot(c, |c| {
                let (id, name) = user_by_name(c, tenant, &user_name)?;
                let mut st = c.prepare_cached(
                    "SELECT license_rk FROM seats WHERE tenant = ? AND user_id = ?",
                )?;
                let ls = st.query_all::<LicenseKey, _>(params![tenant, id], |r| r.get(0))?;
                let mut out = Vec::new();
                for l in ls {
                    let lv = view(c, l)?;
                    let mut seat = seat_view(c, tenant, l, &id, Some(name.clone()), Some(&ranks))?;
                    let facts = crate::store::allocation::seat_reason::license_facts(c, tenant, l)?;
                    crate::store::allocation::seat_reason::explain(
                        c, tenant, l, &facts, &mut seat,
                    )?;
                    out.push(UserSeat {
                        seat,
                        license: LicenseRef {
                            id: lv.id,
                            name: lv.name,
                        },
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    pub async fn set_override(
        &self,
        tenant: TenantKey,
        key: String,
        user_name: String,
        kind: Option<OverrideKind>,
        actor: Actor,
    ) -> Result<SeatView> {
        let ticker = self.ticker();
        if kind == Some(OverrideKind::Idle) {
            return Err(Error::Invalid(
                "an idle override is set by the reclaim of idle seats, not by hand: pin or exclude"
                    .into(),
            ));
        }
        self.write(Lock::Tenant(tenant), move |c| {
            override_in(c, tenant, ticker.now(), &key, &user_name, kind, &actor)
        })
        .await
    }

    /// Grants a waiting user a free seat by hand, out of order.
    pub async fn grant(
        &self,
        tenant: TenantKey,
        key: String,
        user_name: String,
        actor: Actor,
    ) -> Result<SeatView> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            grant_in(c, tenant, ticker.now(), &key, &user_name, &actor)
        })
        .await
    }

    /// A license's overrides: (userName or id, "pin" | "exclude", since), by user.
    pub async fn overrides(
        &self,
        tenant: TenantKey,
        key: String,
    ) -> Result<Vec<(String, String, String, bool)>> {
        Ok(self
            .override_list(tenant, key)
            .await?
            .into_iter()
            .map(|o| {
                (
                    o.user_name.unwrap_or(o.user_id),
                    o.kind,
                    o.since,
                    o.entitled,
                )
            })
            .collect())
    }

    /// A license's overrides as the admin API and the CLI list them: who, which kind, since
    /// when and who set it, by userName.
    pub async fn override_list(&self, tenant: TenantKey, key: String) -> Result<Vec<OverrideView>> {
        self.read(move |c| {
            let l = license_key(c, tenant, &key)?;
            let mut st = c.prepare_cached(
                "SELECT o.user_id, u.user_name, o.kind, o.created, o.set_by,
                        EXISTS (SELECT 1 FROM seats s WHERE s.license_rk = o.license_rk AND s.user_id = o.user_id)
                 FROM overrides o
                 LEFT JOIN users u ON u.tenant = o.tenant AND u.id = o.user_id
                 WHERE o.license_rk = ? ORDER BY coalesce(u.user_name, o.user_id)",
            )?;
            st.query_all([l], |r| {
                Ok(OverrideView {
                    user_id: r.get(0)?,
                    user_name: r.get(1)?,
                    kind: r.get(2)?,
                    since: r.get(3)?,
                    set_by: r.get(4)?,
                    entitled: r.get(5)?,
                })
            })
        })
        .await
    }
}

/// An override set or cleared in the write job that makes it (or previews it,
/// `preview::preview_change`): the override, the allocator's run for the user, the audit entry.
pub(in crate::store) fn override_in(
    c: &Db,
    tenant: TenantKey,
    at: crate::alloc::Millis,
    key: &str,
    user_name: &str,
    kind: Option<OverrideKind>,
    actor: &Actor,
) -> Result<SeatView> {
    let (l, id, name) = named(c, tenant, key, user_name)?;
    match kind {
        Some(k) => {
            c.prepare_cached(
                "INSERT INTO overrides (license_rk, tenant, user_id, kind, created, set_by) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (license_rk, user_id) DO UPDATE SET kind = excluded.kind, created = excluded.created, set_by = excluded.set_by",
            )?
            .execute(params![l, tenant, id, k.as_str(), rfc3339(at), actor.as_str()])?;
        }
        None => {
            let n = c
                .prepare_cached("DELETE FROM overrides WHERE license_rk = ? AND user_id = ?")?
                .execute(params![l, id])?;
            if n == 0 {
                return Err(Error::NotFound(format!("override for {name:?}")));
            }
        }
    }
    let cause = if kind == Some(OverrideKind::Exclude) {
        Cause::Admin
    } else {
        Cause::License
    };
    allocate(c, tenant, at, |a| {
        a.reevaluate(l, std::slice::from_ref(&id), cause, false)
    })?;
    use crate::store::events::acts::Act;
    let act: fn(ByHand) -> Act = match kind {
        Some(OverrideKind::Pin) => Act::OverridePin,
        Some(OverrideKind::Exclude) => Act::OverrideExclude,
        Some(OverrideKind::Idle) => Act::OverrideIdle,
        None => Act::OverrideRemove,
    };
    changed_by_hand(c, tenant, at, actor, act, l, &id, name)
}

/// A manual grant in the write job that makes it (or previews it).
pub(in crate::store) fn grant_in(
    c: &Db,
    tenant: TenantKey,
    at: crate::alloc::Millis,
    key: &str,
    user_name: &str,
    actor: &Actor,
) -> Result<SeatView> {
    let (l, id, name) = named(c, tenant, key, user_name)?;
    let mut refusal: Option<Refusal> = None;
    crate::store::allocation::runs::allocate_granting(c, tenant, at, &id, |a| {
        a.fill(l, &[], false)?;
        refusal = a.manual_grant(l, &id)?.err();
        Ok(())
    })?;
    if let Some(r) = refusal {
        return Err(Error::Conflict(r.to_string()));
    }
    changed_by_hand(
        c,
        tenant,
        at,
        actor,
        crate::store::events::acts::Act::SeatGrant,
        l,
        &id,
        name,
    )
}
