//! Shadow mode's cut-over: the people who hold a seat in the product today, carried over onto a
//! license that observes (`carry_holders`, `clear_holders`), and the shadow report (`shadow`):
//! what enforcing the license would do against those seats — who keeps one, who gains one, who
//! waits and who loses one. The report is the switch itself, made and rolled back
//! (`Store::dry_run`), so it cannot disagree with what enforcing then does
//! (`Allocator::carry_over`).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::alloc::LicenseKey;
use crate::scim::resource::fold;
use crate::store::allocation::license_view::{
    license_key, observing, view, LicenseMode, LicenseRef,
};
use crate::store::allocation::licenses::{update_in, LicenseChange};
use crate::store::engine::sql::{params, Db, Param};
use crate::store::engine::time::rfc3339;
use crate::store::events::acts::{Act, HoldersCarried};
use crate::store::events::audit::{record as audit, Actor};
use crate::store::{Error, Lock, Result, Store, TenantKey};

/// Most references one request may carry over.
pub const MAX_HOLDERS: usize = 100_000;

/// References resolved per statement.
const CHUNK: usize = 300;

/// What carrying people over did.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HoldersReport {
    pub license: LicenseRef,
    /// People carried over now, in all (this request's and earlier ones').
    pub carried_over: i64,
    /// Added by this request (a person already carried over keeps their first place).
    pub added: i64,
    /// References that match no user (by id, userName, externalId or email).
    pub unmatched: Vec<String>,
    /// References that name several users (name them by id).
    pub ambiguous: Vec<String>,
    /// People carried over whom the directory does not entitle now: enforcing would take
    /// their seat (through the license's grace), unless the directory sends them before.
    pub not_entitled: Vec<String>,
}

/// One person in the shadow report.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ShadowPerson {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    /// Their place on the waitlist, when they would wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<i64>,
    /// Why a person carried over would lose their seat: `waiting` (entitled, no seat left for
    /// them: `place` says where they wait), `grace` (not entitled: they keep it until
    /// `releaseAt`), `not_entitled` (not entitled: it goes at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(rename = "releaseAt", skip_serializing_if = "Option::is_none")]
    pub release_at: Option<String>,
}

/// How many people are in each list of the report.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ShadowCounts {
    pub keep: i64,
    pub gain: i64,
    pub wait: i64,
    pub lose: i64,
}

/// What enforcing an observing license would do, against the seats carried over.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ShadowView {
    pub license: LicenseRef,
    pub mode: LicenseMode,
    /// The seat count (with any agreed overage, as many seats as would be granted).
    pub seats: i64,
    /// People carried over as today's seat holders.
    pub carried_over: i64,
    pub counts: ShadowCounts,
    /// Carried over and keeping their seat.
    pub keep: Vec<ShadowPerson>,
    /// Not carried over, given a seat.
    pub gain: Vec<ShadowPerson>,
    /// Not carried over, waiting (with their place).
    pub wait: Vec<ShadowPerson>,
    /// Carried over and losing their seat (with the reason).
    pub lose: Vec<ShadowPerson>,
    /// Whether a list was cut at `limit` (the counts are whole).
    pub truncated: bool,
}

/// How references resolve: each reference to the one user it names, or why not.
enum Resolved {
    User(String),
    Unmatched,
    Ambiguous,
}

/// Resolves `refs` as the product API does (a SCIM id, a userName case-insensitively, an
/// externalId or an email; a reference naming two users is ambiguous), a chunk per statement.
fn resolve_all(c: &Db, tenant: TenantKey, refs: &[String]) -> Result<Vec<Resolved>> {
    let mut out = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(CHUNK) {
        let folded: Vec<String> = chunk.iter().map(|r| fold(r)).collect();
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT id, user_name_key, external_id FROM users WHERE tenant = ? AND (id IN ({marks}) OR user_name_key IN ({marks}) OR external_id IN ({marks}))"
        );
        let mut args: Vec<&dyn Param> = vec![&tenant];
        args.extend(chunk.iter().map(|r| r as &dyn Param));
        args.extend(folded.iter().map(|r| r as &dyn Param));
        args.extend(chunk.iter().map(|r| r as &dyn Param));
        let rows: Vec<(String, String, Option<String>)> = c
            .prepare(&sql)?
            .query_all(args.as_slice(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let sql = format!(
            "SELECT e.value_key, u.id FROM user_emails e JOIN users u ON u.rk = e.user_rk WHERE e.tenant = ? AND e.value_key IN ({marks})"
        );
        let mut args: Vec<&dyn Param> = vec![&tenant];
        args.extend(folded.iter().map(|r| r as &dyn Param));
        let emails: Vec<(String, String)> = c
            .prepare(&sql)?
            .query_all(args.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut by_email: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (key, id) in &emails {
            by_email.entry(key).or_default().insert(id);
        }
        for (r, f) in chunk.iter().zip(&folded) {
            let mut ids: HashSet<&str> = HashSet::new();
            // id and externalId match as given, userName and email folded.
            for (id, name_key, ext) in &rows {
                if id == r || name_key == f || ext.as_deref() == Some(r.as_str()) {
                    ids.insert(id);
                }
            }
            if let Some(e) = by_email.get(f.as_str()) {
                ids.extend(e);
            }
            out.push(match ids.len() {
                0 => Resolved::Unmatched,
                1 => Resolved::User(ids.into_iter().next().unwrap_or_default().to_owned()),
                _ => Resolved::Ambiguous,
            });
        }
    }
    Ok(out)
}

/// Refuses a license that enforces: carrying over and the shadow report are for a license in
/// observe mode.
fn must_observe(c: &Db, l: LicenseKey, what: &str) -> Result<()> {
    if observing(c, l)? {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "the license is enforced: {what} is for a license in observe mode (set \"mode\": \"observe\" first)"
    )))
}

impl Store {
    /// Carries `refs` over as today's seat holders of the observing license `key`, after
    /// those carried over before, in the order given (see `Allocator::carry_over`).
    pub async fn carry_holders(
        &self,
        tenant: TenantKey,
        key: String,
        refs: Vec<String>,
        actor: Actor,
    ) -> Result<HoldersReport> {
        if refs.len() > MAX_HOLDERS {
            return Err(Error::Invalid(format!(
                "at most {MAX_HOLDERS} people per request, not {}: send the rest in another",
                refs.len()
            )));
        }
        let refs: Vec<String> = refs
            .into_iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();
        let ticker = self.ticker();
        self.write_alone(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            must_observe(c, l, "carrying seat holders over")?;
            let (mut unmatched, mut ambiguous, mut users) = (Vec::new(), Vec::new(), Vec::new());
            let mut seen = HashSet::new();
            for (r, found) in refs.iter().zip(resolve_all(c, tenant, &refs)?) {
                match found {
                    Resolved::User(u) if seen.insert(u.clone()) => users.push(u),
                    Resolved::User(_) => {}
                    Resolved::Unmatched => unmatched.push(r.clone()),
                    Resolved::Ambiguous => ambiguous.push(r.clone()),
                }
            }
            let last: i64 = c
                .prepare_cached(
                    "SELECT CAST(coalesce(max(position), 0) AS BIGINT) FROM carried_holders WHERE license_rk = ?",
                )?
                .query_row([l], |r| r.get(0))?;
            let mut added = 0;
            let positions: Vec<i64> = (1..=users.len() as i64).map(|i| last + i).collect();
            for (chunk, pos) in users.chunks(CHUNK).zip(positions.chunks(CHUNK)) {
                let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut args: Vec<&dyn Param> = Vec::with_capacity(chunk.len() * 4);
                for (u, p) in chunk.iter().zip(pos) {
                    args.extend([&l as &dyn Param, &tenant, u, p]);
                }
                added += c.execute(
                    &format!(
                        "INSERT INTO carried_holders (license_rk, tenant, user_id, position) VALUES {values}
                         ON CONFLICT (license_rk, user_id) DO NOTHING"
                    ),
                    args.as_slice(),
                )? as i64;
            }
            let v = view(c, l)?;
            let not_entitled = crate::store::engine::sql::strings(
                c,
                "SELECT coalesce(u.user_name, h.user_id) FROM carried_holders h
                 LEFT JOIN users u ON u.tenant = h.tenant AND u.id = h.user_id
                 WHERE h.license_rk = ? AND NOT EXISTS (
                     SELECT 1 FROM seats s WHERE s.license_rk = h.license_rk AND s.user_id = h.user_id
                       AND s.state IN ('granted', 'blocked'))
                 ORDER BY h.position",
                params![l],
            )?;
            audit(
                c,
                tenant,
                at,
                actor.as_str(),
                Act::LicenseHolders(HoldersCarried {
                    license: v.id.clone(),
                    name: v.name.clone(),
                    people: added,
                    unmatched: (unmatched.len() + ambiguous.len()) as i64,
                }),
            )?;
            Ok(HoldersReport {
                license: LicenseRef {
                    id: v.id,
                    name: v.name,
                },
                carried_over: v.carried_over,
                added,
                unmatched,
                ambiguous,
                not_entitled,
            })
        })
        .await
    }

    /// Forgets the people carried over onto license `key`; answers how many there were.
    pub async fn clear_holders(&self, tenant: TenantKey, key: String, actor: Actor) -> Result<i64> {
        let ticker = self.ticker();
        self.write(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            let n = c
                .prepare_cached("DELETE FROM carried_holders WHERE license_rk = ?")?
                .execute([l])? as i64;
            let v = view(c, l)?;
            audit(
                c,
                tenant,
                at,
                actor.as_str(),
                Act::LicenseHoldersClear(HoldersCarried {
                    license: v.id,
                    name: v.name,
                    people: n,
                    unmatched: 0,
                }),
            )?;
            Ok(n)
        })
        .await
    }

    /// The shadow report of the observing license `key`: enforcing it now, made and rolled
    /// back, compared with the people carried over. Each list holds at most `limit` people.
    pub async fn shadow(
        &self,
        tenant: TenantKey,
        key: String,
        limit: usize,
        actor: Actor,
    ) -> Result<ShadowView> {
        let ticker = self.ticker();
        self.dry_run(Lock::Tenant(tenant), move |c| {
            let at = ticker.now();
            let l = license_key(c, tenant, &key)?;
            must_observe(c, l, "the shadow report")?;
            let carried = crate::store::engine::sql::strings(
                c,
                "SELECT user_id FROM carried_holders WHERE license_rk = ? ORDER BY position",
                params![l],
            )?;
            let change = LicenseChange {
                mode: Some(LicenseMode::Enforce),
                ..Default::default()
            };
            let after = update_in(c, tenant, at, &key, &change, &actor)?;
            report(c, tenant, l, &carried, after, limit)
        })
        .await
    }
}

/// The report from the seats of license `l` once enforced (in the switch's transaction).
fn report(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    carried: &[String],
    after: crate::store::LicenseView,
    limit: usize,
) -> Result<ShadowView> {
    let seats: Vec<(String, String, Option<i64>, Option<String>)> = c
        .prepare_cached(
            "SELECT s.user_id, s.state, s.release_at, u.user_name FROM seats s
             LEFT JOIN users u ON u.tenant = ? AND u.id = s.user_id
             WHERE s.license_rk = ?
             ORDER BY s.state, s.pinned DESC, s.entitled_at, s.user_id",
        )?
        .query_all(params![tenant, l], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let mut place = HashMap::new();
    let mut state = HashMap::new();
    for (u, s, release_at, name) in &seats {
        if s == "blocked" {
            let p = place.len() as i64 + 1;
            place.insert(u.as_str(), p);
        }
        state.insert(u.as_str(), (s.as_str(), *release_at, name.clone()));
    }
    let carried_set: HashSet<&str> = carried.iter().map(String::as_str).collect();
    let mut out = ShadowView {
        license: LicenseRef {
            id: after.id.clone(),
            name: after.name.clone(),
        },
        mode: LicenseMode::Observe,
        seats: after.seats + after.overage_seats,
        carried_over: carried.len() as i64,
        counts: ShadowCounts::default(),
        keep: Vec::new(),
        gain: Vec::new(),
        wait: Vec::new(),
        lose: Vec::new(),
        truncated: false,
    };
    let mut name_of =
        c.prepare_cached("SELECT user_name FROM users WHERE tenant = ? AND id = ?")?;
    let mut truncated = false;
    let mut push = |list: &mut Vec<ShadowPerson>, count: &mut i64, p: ShadowPerson| {
        *count += 1;
        if list.len() < limit {
            list.push(p);
        } else {
            truncated = true;
        }
    };
    // Carried over, in the order given: keep or lose.
    for u in carried {
        let person = |name: Option<String>| ShadowPerson {
            user_id: u.clone(),
            user_name: name,
            place: None,
            reason: None,
            release_at: None,
        };
        match state.get(u.as_str()) {
            Some(("granted", _, name)) => {
                push(&mut out.keep, &mut out.counts.keep, person(name.clone()))
            }
            Some(("blocked", _, name)) => {
                let mut p = person(name.clone());
                p.place = place.get(u.as_str()).copied();
                p.reason = Some("waiting");
                push(&mut out.lose, &mut out.counts.lose, p);
            }
            Some(("releasing", release_at, name)) => {
                let mut p = person(name.clone());
                p.reason = Some("grace");
                p.release_at = release_at.map(rfc3339);
                push(&mut out.lose, &mut out.counts.lose, p);
            }
            _ => {
                let name: Option<String> = name_of.query_row(params![tenant, u], |r| r.get(0)).ok();
                let mut p = person(name);
                p.reason = Some("not_entitled");
                push(&mut out.lose, &mut out.counts.lose, p);
            }
        }
    }
    // Everyone else: gain or wait, in the seats' order.
    for (u, s, _, name) in &seats {
        if carried_set.contains(u.as_str()) {
            continue;
        }
        let p = ShadowPerson {
            user_id: u.clone(),
            user_name: name.clone(),
            place: None,
            reason: None,
            release_at: None,
        };
        match s.as_str() {
            "granted" => push(&mut out.gain, &mut out.counts.gain, p),
            "blocked" => {
                let mut p = p;
                p.place = place.get(u.as_str()).copied();
                push(&mut out.wait, &mut out.counts.wait, p);
            }
            _ => {}
        }
    }
    out.wait.sort_by_key(|p| p.place);
    out.truncated = truncated;
    Ok(out)
}
