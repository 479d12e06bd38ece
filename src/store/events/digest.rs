//! What a closed digest says: its events read back from the outbox and made readable for the
//! recipient (each blocked person's name, email and place on the waitlist now; when a refused
//! token was issued; the name of a group whose member never arrived), the license's seats now,
//! the tenant's time zone, and the addresses of the tenant's and the license's recipients of
//! its kind. `notify::wording` then says it.

use serde_json::Value;

use crate::alloc::LicenseKey;
use crate::notify::items::{stored, AuthFailures, Blocked, PendingExpired};
use crate::notify::{addresses_for, Audience, Digest, Kind, Recipient, Seats};
use crate::store::engine::sql::{params, Db, OptionalExtension};
use crate::store::{Error, Result, Store, TenantKey};

impl Store {
    /// A closed digest with everything its email says (for the tenant's recipients), and the
    /// addresses it goes to: fixed ones (a test message, a retried message), or the tenant's and
    /// the license's recipients of its kind.
    pub async fn digest(
        &self,
        id: i64,
        public_url: Option<String>,
    ) -> Result<Option<(Digest, Vec<String>)>> {
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT o.kind, o.license_rk, o.license_name, o.created, o.message_id, o.recipients, t.name, t.id, t.notify, o.tenant, t.time_zone
                     FROM outbox o JOIN tenants t ON t.rk = o.tenant WHERE o.id = ?",
                )?
                .query_row([id], |r| {
                    Ok((
                        (r.get::<_, String>(0)?, r.get::<_, LicenseKey>(1)?, r.get::<_, Option<String>>(2)?),
                        (r.get::<_, i64>(3)?, r.get::<_, String>(4)?, r.get::<_, Option<String>>(5)?),
                        (r.get::<_, String>(6)?, r.get::<_, String>(7)?, r.get::<_, String>(8)?),
                        (r.get::<_, TenantKey>(9)?, r.get::<_, String>(10)?),
                    ))
                })
                .optional()?;
            let Some(((kind, l, license_name), (created, token, fixed), (tenant_name, tenant_id, notify), (tenant, time_zone))) = row else {
                return Ok(None);
            };
            let kind = Kind::parse(&kind).ok_or_else(|| Error::Internal(format!("outbox row {id} has kind {kind:?}")))?;
            let license = c
                .prepare_cached("SELECT id, name, seats, granted, releasing, blocked, auto_promote, notify FROM licenses WHERE rk = ? AND tenant = ?")?
                .query_row(params![l, tenant], |r| {
                    Ok((
                        Seats { id: r.get(0)?, name: r.get(1)?, capacity: r.get(2)?, granted: r.get(3)?, releasing: r.get(4)?, blocked: r.get(5)?, auto_promote: r.get(6)? },
                        r.get::<_, String>(7)?,
                    ))
                })
                .optional()?;
            let (license, license_notify) = match license {
                Some((seats, notify)) => (Some(seats), notify),
                None => (None, "[]".to_owned()),
            };
            let mut st = c.prepare_cached("SELECT detail FROM outbox_items WHERE outbox_id = ? ORDER BY seq")?;
            let items = st
                .query_map([id], |r| r.get::<_, String>(0))?
                .map(|d| d.map(|d| serde_json::from_str::<Value>(&d).unwrap_or(Value::Null)))
                .collect::<Result<Vec<Value>>>()?;
            let items = match kind {
                Kind::Blocked => blocked_items(c, tenant, l, items)?,
                Kind::AuthFailures => token_items(c, tenant, items)?,
                Kind::PendingExpired => group_items(c, tenant, items)?,
                Kind::SeatsHeld => crate::store::allocation::holds::digest_items(c, tenant, items)?,
                _ => items,
            };
            let recipients = match fixed {
                Some(fixed) => serde_json::from_str(&fixed).unwrap_or_default(),
                None => {
                    let tenant_list: Vec<Recipient> = serde_json::from_str(&notify).unwrap_or_default();
                    let license_list: Vec<Recipient> = serde_json::from_str(&license_notify).unwrap_or_default();
                    addresses_for(kind, &[&tenant_list, &license_list])
                }
            };
            Ok(Some((
                Digest {
                    id,
                    kind,
                    audience: Audience::Tenant,
                    tenant_name,
                    tenant_id,
                    license,
                    license_name,
                    items,
                    first_at: created,
                    token,
                    public_url,
                    time_zone,
                },
                recipients,
            )))
        })
        .await
    }
}

/// Blocked items as their recipient reads them: each person's user name, display name and
/// email (as the directory has them now), their seat's state now and, while they wait, their
/// place on the waitlist; in waitlist order. A user blocked twice in one window is listed once.
fn blocked_items(
    c: &Db,
    tenant: TenantKey,
    l: LicenseKey,
    items: Vec<Value>,
) -> Result<Vec<Value>> {
    // Positions: the waitlist in its order (pinned first, then by entitlement), read once.
    let mut positions: std::collections::HashMap<String, i64> = Default::default();
    if !items.is_empty() {
        let mut st = c.prepare_cached(
            "SELECT user_id FROM seats WHERE license_rk = ? AND state = 'blocked'
             ORDER BY pinned DESC, entitled_at, user_id",
        )?;
        let ids = st.query_all([l], |r| r.get::<_, String>(0))?;
        positions.extend(ids.into_iter().zip(1..));
    }
    let mut seen = std::collections::HashSet::new();
    let mut user_of =
        c.prepare_cached("SELECT user_name, doc FROM users WHERE tenant = ? AND id = ?")?;
    let mut state_of = c.prepare_cached(
        "SELECT state, entitled_at FROM seats WHERE license_rk = ? AND user_id = ?",
    )?;
    // The group that entitles each person: the first selected group (in the license's order)
    // containing them, directly or through nested groups.
    let selected: Vec<(String, String)> = c
        .prepare_cached(
            "SELECT lg.group_id, coalesce(g.display_name, lg.group_id) FROM license_groups lg
             JOIN groups g ON g.tenant = lg.tenant AND g.id = lg.group_id
             WHERE lg.license_rk = ? ORDER BY lg.position, lg.selector, lg.value",
        )?
        .query_all([l], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut view = crate::store::allocation::tx_seats::TxSeats::new(c, tenant);
    let mut walk = crate::alloc::Allocator::new(&mut view, 0);
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        let i: Blocked = serde_json::from_value(i).unwrap_or_default();
        let user = i.user_id.0.clone();
        if !seen.insert(user.clone()) {
            continue;
        }
        let found: Option<(String, String)> = user_of
            .query_row(params![tenant, user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (name, doc) = match found {
            Some((name, doc)) => (
                name,
                serde_json::from_str::<Value>(&doc).unwrap_or(Value::Null),
            ),
            None => ("(deleted user)".to_owned(), Value::Null),
        };
        let seat: Option<(String, i64)> = state_of
            .query_row(params![l, user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let position = positions.get(&user).copied();
        let group = if selected.is_empty() {
            String::new()
        } else {
            let above = walk.ancestors(&user)?;
            selected
                .iter()
                .find(|(g, _)| above.contains(g))
                .map(|(_, name)| name.clone())
                .unwrap_or_default()
        };
        let order = (
            position.unwrap_or(i64::MAX),
            seat.as_ref().map_or(i64::MAX, |s| s.1),
        );
        out.push((
            order,
            out.len(),
            Blocked {
                user_name: name.into(),
                display_name: doc
                    .get("displayName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
                email: primary_email(&doc).into(),
                user_id: user.into(),
                position,
                at: i.at,
                group: group.into(),
                state: seat.map_or_else(|| "none".into(), |s| s.0).into(),
            },
        ));
    }
    out.sort_by(|a, b| (a.0, a.2.user_id.as_str(), a.1).cmp(&(b.0, b.2.user_id.as_str(), b.1)));
    Ok(out.into_iter().map(|(_, _, v)| stored(&v)).collect())
}

/// A SCIM user's email to show: the primary one, else the work one, else the first.
fn primary_email(doc: &Value) -> Option<String> {
    let emails = doc.get("emails")?.as_array()?;
    let value = |e: &Value| e.get("value").and_then(Value::as_str).map(str::to_owned);
    emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))
        })
        .or_else(|| emails.first())
        .and_then(value)
}

/// Refused-token items with when the token was issued (how the console lists tokens).
fn token_items(c: &Db, tenant: TenantKey, items: Vec<Value>) -> Result<Vec<Value>> {
    let mut st = c.prepare_cached("SELECT created FROM scim_tokens WHERE tenant = ? AND id = ?")?;
    items
        .into_iter()
        .map(|i| {
            let mut i: AuthFailures = serde_json::from_value(i).unwrap_or_default();
            let issued: Option<String> = st
                .query_row(params![tenant, i.token_id.as_str()], |r| r.get(0))
                .optional()?;
            if let Some(t) = issued {
                i.token_issued = t.into();
            }
            Ok(stored(&i))
        })
        .collect()
}

/// Expired member references with their group's display name.
fn group_items(c: &Db, tenant: TenantKey, items: Vec<Value>) -> Result<Vec<Value>> {
    let mut st = c.prepare_cached("SELECT display_name FROM groups WHERE tenant = ? AND id = ?")?;
    items
        .into_iter()
        .map(|i| {
            let mut i: PendingExpired = serde_json::from_value(i).unwrap_or_default();
            if !i.group.is_empty() {
                let name: Option<String> = st
                    .query_row(params![tenant, i.group.as_str()], |r| r.get(0))
                    .optional()?;
                if let Some(n) = name {
                    i.group_name = n.into();
                }
            }
            Ok(stored(&i))
        })
        .collect()
}
