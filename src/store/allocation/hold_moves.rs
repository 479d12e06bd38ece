//! How an allocator run moved circuit-breaker holds, written when the run flushes (by
//! `tx_seats`): counts and causes, holds that open or dissolve, their audit entries and the
//! `seats_held` email. Deciding a hold (approve, reject) is `holds`.

use std::collections::HashMap;

use crate::alloc::{HoldId, LicenseKey, Millis};
use crate::store::engine::sql::{params, Db};
use crate::store::{Result, TenantKey};

/// A hold's change in one run.
#[derive(Default)]
pub(in crate::store) struct HoldMove {
    pub license: LicenseKey,
    pub held: i64,
    pub total: i64,
    /// Held losses by [`Loss::key`].
    pub changes: HashMap<String, i64>,
    /// Opened in this run.
    pub opened: bool,
}

/// Writes how a run moved holds: counts and causes; an open hold left without held seats
/// dissolves; each opened or dissolved hold is audited and an opened one told by email.
/// Returns the licenses whose open hold dissolved.
pub(in crate::store) fn record_moves(
    c: &Db,
    tenant: TenantKey,
    now: Millis,
    moves: HashMap<HoldId, HoldMove>,
) -> Result<Vec<LicenseKey>> {
    let mut dissolved = Vec::new();
    let mut keys: Vec<&HoldId> = moves.keys().collect();
    keys.sort_unstable();
    for hold in keys {
        let m = &moves[hold];
        let stored: String = c
            .prepare_cached("SELECT changes FROM holds WHERE rk = ?")?
            .query_row([*hold], |r| r.get(0))?;
        let mut changes: std::collections::BTreeMap<String, i64> =
            serde_json::from_str(&stored).unwrap_or_default();
        for (k, n) in &m.changes {
            *changes.entry(k.clone()).or_default() += n;
        }
        let (held, state): (i64, String) = c
            .prepare_cached(
                "UPDATE holds SET held = held + ?, total = total + ?, changes = ? WHERE rk = ? RETURNING held, state",
            )?
            .query_row(
                params![m.held, m.total, serde_json::json!(changes).to_string(), *hold],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        let (license, name): (String, String) = c
            .prepare_cached("SELECT id, name FROM licenses WHERE rk = ?")?
            .query_row([m.license], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if m.opened {
            let before = crate::store::allocation::holds::released_before(
                c,
                tenant,
                m.license,
                *hold,
                i64::MAX,
            )?;
            crate::store::events::audit::record(
                c,
                tenant,
                now,
                crate::store::events::audit::Actor::directory().as_str(),
                crate::store::events::acts::Act::HoldOpen(crate::store::events::acts::HoldOpened {
                    hold: *hold,
                    license: license.clone(),
                    name: name.clone(),
                    held,
                    changes: changes.clone(),
                    released_before: before
                        .iter()
                        .take(25)
                        .map(|u| u.user_name.clone().unwrap_or_else(|| u.user_id.clone()))
                        .collect(),
                    released: before.len() as i64,
                }),
            )?;
            crate::store::events::outbox::record(
                c,
                tenant,
                m.license,
                now,
                vec![crate::notify::items::SeatsHeld {
                    hold: crate::notify::items::Num(*hold),
                    ..Default::default()
                }],
            )?;
        }
        if held == 0 && state == "open" {
            c.prepare_cached(
                "UPDATE holds SET state = 'dissolved', decided = ?, decided_by = ? WHERE rk = ?",
            )?
            .execute(params![
                now,
                crate::store::events::audit::Actor::directory().as_str(),
                *hold
            ])?;
            dissolved.push(m.license);
            crate::store::events::audit::record(
                c,
                tenant,
                now,
                crate::store::events::audit::Actor::directory().as_str(),
                crate::store::events::acts::Act::HoldDissolve(
                    crate::store::events::acts::HoldRef {
                        hold: *hold,
                        license,
                        name,
                    },
                ),
            )?;
        }
    }
    Ok(dissolved)
}
