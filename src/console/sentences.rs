//! The activity feed as sentences a licensing admin reads: who did what to which license, with
//! the values before and after, instead of action codes and JSON (which stays one click away
//! on the page). Pure: an audit entry or seat event in, a sentence out.

use serde_json::Value;

use crate::store::events::acts::{Act, Changes, SeatMove};
use crate::store::AuditEntry;

/// Who an actor string names, for a sentence.
pub fn actor(a: &str) -> String {
    if let Some(inner) = a.strip_prefix("console:") {
        return format!("{} in the console", actor(inner));
    }
    if let Some(id) = a.strip_prefix("tenant-admin:") {
        let tail: String = id
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return format!("A tenant admin (token ska_…{tail})");
    }
    if let Some(user) = a.strip_prefix("cli:") {
        return format!("{user} on the command line");
    }
    match a {
        "operator" | "admin" => "The operator".into(),
        "tenant-admin" => "A tenant admin".into(),
        "cli" => "Someone on the command line".into(),
        "console" => "Someone in the console".into(),
        "reconciler" => "The reconciler".into(),
        "allocator" => "seatkeeper".into(),
        "directory" => "The identity provider".into(),
        other => other.to_owned(),
    }
}

/// A JSON value as a reader sees it.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "on".into(),
        Value::Bool(false) => "off".into(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(shown).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o
            .get("email")
            .or_else(|| o.get("displayName"))
            .or_else(|| o.get("id"))
            .map(shown)
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

/// `seats from 10 to 12; selected Design; Sales's reserve from 0 to 4` from what changed.
fn changes(changed: &Changes) -> String {
    let mut parts = Vec::new();
    for (field, ch) in &changed.fields {
        // A duration kept in seconds reads as one (`grace from 2 hours to 1 day`).
        if let (Some(name), Some(from), Some(to)) = (
            field.strip_suffix("_seconds"),
            ch.from.as_i64(),
            ch.to.as_i64(),
        ) {
            parts.push(format!(
                "{} from {} to {}",
                name.replace('_', " "),
                crate::notify::when::duration(from),
                crate::notify::when::duration(to)
            ));
            continue;
        }
        let name = field.replace('_', " ");
        parts.push(format!(
            "{name} from {} to {}",
            shown(&ch.from),
            shown(&ch.to)
        ));
    }
    if let Some(g) = &changed.groups {
        for (names, verb) in [(&g.selected, "selected"), (&g.unselected, "unselected")] {
            if !names.is_empty() {
                parts.push(format!("{verb} {}", names.join(", ")));
            }
        }
    }
    let show = |v: Option<i64>| v.map_or_else(|| "none".to_owned(), |n| n.to_string());
    for l in &changed.limits {
        let mut what = Vec::new();
        if l.reserve.0 != l.reserve.1 {
            what.push(format!("reserve from {} to {}", l.reserve.0, l.reserve.1));
        }
        if l.max.0 != l.max.1 {
            what.push(format!(
                "ceiling from {} to {}",
                show(l.max.0),
                show(l.max.1)
            ));
        }
        parts.push(format!("{}'s {}", l.group, what.join(" and ")));
    }
    parts.join("; ")
}

/// A user as a seat event names them.
fn who(m: &SeatMove) -> String {
    match &m.user_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => format!("User {}", m.user_id),
    }
}

/// The sentence for one activity entry; `license_name` turns a license id into its name.
pub fn sentence(e: &AuditEntry, license_name: &dyn Fn(&str) -> String) -> String {
    let by = actor(&e.actor);
    // A license as the entry names it: its name when the entry kept it, else by its id.
    let license = |id: &str, name: &str| {
        if name.is_empty() {
            license_name(id)
        } else {
            name.to_owned()
        }
    };
    let of = |id: &str| license_name(id);
    // Every action has its sentence (the match is exhaustive); an action this release does not
    // know (written by a newer one) shows as it is.
    let Some(act) = Act::read(&e.action, &e.detail) else {
        return format!("{by}: {}", e.action);
    };
    match act {
        Act::SeatGranted(m) => format!("{} got a seat of {}", who(&m), of(&m.license)),
        Act::SeatPromoted(m) if m.cause.as_deref() == Some("manual") => format!(
            "{} got a seat of {} (granted by an admin ahead of the waitlist)",
            who(&m),
            of(&m.license)
        ),
        // Freed seats go to the head of the waitlist: whoever is promoted was first in it.
        Act::SeatPromoted(m) => format!(
            "{} got a seat of {} (promoted from the waitlist, position 1)",
            who(&m),
            of(&m.license)
        ),
        Act::SeatBlocked(m) => format!(
            "{} is waiting for a seat of {}{}",
            who(&m),
            of(&m.license),
            because(m.cause.as_deref())
        ),
        Act::SeatReleasing(m) => format!(
            "{} is no longer entitled to {} and keeps the seat until the grace period ends{}",
            who(&m),
            of(&m.license),
            because(m.cause.as_deref())
        ),
        Act::SeatReleased(m) => format!(
            "{} no longer holds a seat of {}{}",
            who(&m),
            of(&m.license),
            because(m.cause.as_deref())
        ),
        Act::SeatHeld(m) => format!(
            "{} is no longer entitled to {}, but keeps the seat: the circuit breaker holds the loss",
            who(&m),
            of(&m.license)
        ),
        Act::HoldOpen(h) => {
            let before = match h.released {
                0 => String::new(),
                n => {
                    let mut names = h.released_before.join(", ");
                    if n > h.released_before.len() as i64 {
                        names.push_str(&format!(" and {} more", n - h.released_before.len() as i64));
                    }
                    format!(
                        "; {} lost their seat in the same window just before ({names})",
                        plural(n, "person", "people")
                    )
                }
            };
            format!(
                "The identity provider's changes would take too many seats of {}: the circuit breaker holds {} ({}){before}",
                license(&h.license, &h.name),
                plural(h.held, "loss", "losses"),
                held_changes(&h.changes)
            )
        }
        Act::HoldDissolve(h) => format!(
            "The identity provider restored everyone held for {}: hold {} dissolved",
            license(&h.license, &h.name),
            h.hold
        ),
        Act::HoldApprove(h) => format!(
            "{by} approved hold {} of {}: {} go through",
            h.hold,
            license(&h.license, &h.name),
            plural(h.held, "held loss", "held losses")
        ),
        Act::HoldReject(h) => format!(
            "{by} rejected hold {} of {}: {} {} their seats",
            h.hold,
            license(&h.license, &h.name),
            plural(h.held, "person", "people"),
            if h.held == 1 { "keeps" } else { "keep" }
        ),
        Act::LicenseCreate(l) => format!(
            "{by} created the license {} with {} seats",
            license(&l.license, &l.name),
            l.seats().map_or_else(String::new, |n| n.to_string())
        ),
        Act::LicenseUpdate(u) => match changes(&u.changed) {
            c if c.is_empty() => format!(
                "{by} saved {} without changes",
                license(&u.license, &u.name)
            ),
            c => format!("{by} changed {}: {c}", license(&u.license, &u.name)),
        },
        Act::LicenseDelete(l) => {
            format!("{by} deleted the license {}", license(&l.license, &l.name))
        }
        Act::LicenseHolders(h) => {
            let unmatched = match h.unmatched {
                0 => String::new(),
                n => format!(" ({} matched nobody)", plural(n, "reference", "references")),
            };
            format!(
                "{by} carried over {} as today's seat holders of {}{unmatched}",
                plural(h.people, "person", "people"),
                license(&h.license, &h.name)
            )
        }
        Act::LicenseHoldersClear(h) => format!(
            "{by} forgot the {} carried over as seat holders of {}",
            plural(h.people, "person", "people"),
            license(&h.license, &h.name)
        ),
        Act::TenantCreate(_) => format!("{by} created the tenant"),
        Act::TenantUpdate(u) => match changes(&u.changed) {
            c if c.is_empty() => format!("{by} saved the tenant's settings without changes"),
            c => format!("{by} changed the tenant's settings: {c}"),
        },
        Act::ScimTokenIssue(_) => format!("{by} issued a SCIM token"),
        Act::ScimTokenRotate(_) => format!("{by} rotated a SCIM token"),
        Act::ScimTokenRevoke(t) => format!("{by} revoked SCIM token {}", t.token),
        Act::AdminTokenIssue(_) => format!("{by} issued a tenant admin token"),
        Act::AdminTokenRevoke(t) => format!("{by} revoked tenant admin token {}", t.token),
        Act::ProductTokenIssue(_) => format!("{by} issued a product token"),
        Act::ProductTokenRevoke(t) => format!("{by} revoked product token {}", t.token),
        Act::WebhookCreate(w) => format!("{by} added the webhook {}", w.url()),
        Act::WebhookUpdate(u) => match changes(&u.changed) {
            c if c.is_empty() => format!("{by} saved a webhook without changes"),
            c => format!("{by} changed a webhook: {c}"),
        },
        Act::WebhookDelete(w) => format!("{by} deleted the webhook {}", w.url()),
        Act::WebhookRotate(_) => format!("{by} made a new signing secret for a webhook"),
        Act::WebhookRedeliver(_) => format!("{by} sent a webhook delivery again"),
        Act::NotificationTest(t) => match t.to.is_empty() {
            true => format!("{by} sent a test email"),
            false => format!("{by} sent a test email to {}", t.to.join(", ")),
        },
        Act::NotificationRetry(n) => {
            format!("{by} queued notification {} again", n.notification)
        }
        Act::NotificationDismiss(n) => {
            format!("{by} dismissed notification {}", n.notification)
        }
        Act::OverridePin(h) => format!("{by} pinned {} on {}", h.user_name, of(&h.license)),
        Act::OverrideExclude(h) => {
            format!("{by} excluded {} from {}", h.user_name, of(&h.license))
        }
        Act::OverrideRemove(h) => format!(
            "{by} removed the override of {} on {}",
            h.user_name,
            of(&h.license)
        ),
        Act::SeatGrant(h) => format!(
            "{by} gave {} a seat of {} by hand",
            h.user_name,
            of(&h.license)
        ),
        Act::SeatReclaim(r) => match r.users.len() {
            0 => format!("{by} reclaimed idle seats of {}", of(&r.license)),
            n => format!(
                "{by} reclaimed {} of {} idle for {} days: {}",
                plural(n as i64, "seat", "seats"),
                of(&r.license),
                r.idle_days,
                r.users.join(", ")
            ),
        },
        Act::Reconcile(_) => format!("{by} checked every seat against the rules"),
        Act::OverrideIdle(h) => format!(
            "{by} marked {} idle on {}: the seat goes back to the waitlist",
            h.user_name,
            of(&h.license)
        ),
        Act::TenantClose(t) => format!(
            "{by} closed the tenant {} (its data is purged on {})",
            t.name, t.purge_at
        ),
        Act::TenantReopen(t) => format!("{by} reopened the tenant {}", t.tenant),
        Act::TenantExport(t) => format!(
            "{by} exported every record of the tenant {} ({})",
            t.tenant,
            plural(t.lines as i64, "line", "lines")
        ),
        Act::TenantPurge(t) => format!("{by} purged every record of the tenant {}", t.tenant),
        Act::ConsoleSignOutAll(o) => format!(
            "{by} signed everyone out of the console ({} ended)",
            plural(o.sessions, "session", "sessions")
        ),
        Act::AuditKey(_) => {
            "The audit log is chained with the operator's audit key from here".to_owned()
        }
    }
}

/// What decided a seat's loss, as a sentence's end (a seat event's `cause`).
fn because(cause: Option<&str>) -> &'static str {
    match cause {
        Some("directory") => " (a change from the identity provider)",
        Some("deleted") => " (deleted at the identity provider)",
        Some("admin") => " (excluded by an admin)",
        Some("license") => " (an admin's change to the license)",
        Some("reconcile") => " (the reconciler's repair)",
        Some("idle") => " (unused: reclaimed)",
        _ => "",
    }
}

/// `1 loss`, `4 losses`.
fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A hold's causes as stored (`{loss key: count}`), in words.
fn held_changes(changes: &std::collections::BTreeMap<String, i64>) -> String {
    changes
        .iter()
        .map(|(k, n)| format!("{n} × {}", crate::alloc::Loss::parse(k).describe()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(actor: &str, action: &str, detail: Value) -> AuditEntry {
        AuditEntry {
            at: "2026-11-29T10:00:00.000Z".into(),
            actor: actor.into(),
            action: action.into(),
            detail,
        }
    }

    #[test]
    fn entries_read_as_sentences() {
        let name = |id: &str| {
            if id == "l-1" {
                "MindManager Enterprise".to_owned()
            } else {
                id.to_owned()
            }
        };
        let cases = [
            (
                entry("allocator", "seat.promoted", json!({"license": "l-1", "userId": "u", "userName": "designer11@contoso.com"})),
                "designer11@contoso.com got a seat of MindManager Enterprise (promoted from the waitlist, position 1)",
            ),
            (
                entry("allocator", "seat.promoted", json!({"license": "l-1", "userId": "u", "userName": "erin@contoso.com", "cause": "manual"})),
                "erin@contoso.com got a seat of MindManager Enterprise (granted by an admin ahead of the waitlist)",
            ),
            (
                entry("directory", "hold.open", json!({"hold": 3, "license": "l-1", "name": "MindManager Enterprise", "held": 80, "changes": {"removed:Designers": 80}})),
                "The identity provider's changes would take too many seats of MindManager Enterprise: the circuit breaker holds 80 losses (80 × removed from the group Designers)",
            ),
            (
                entry("tenant-admin:ska_0123456789abcdef3f", "hold.approve", json!({"hold": 3, "license": "l-1", "name": "MindManager Enterprise", "held": 80})),
                "A tenant admin (token ska_…ef3f) approved hold 3 of MindManager Enterprise: 80 held losses go through",
            ),
            (
                entry("tenant-admin:9f1c2a3f", "license.update", json!({"license": "l-1", "name": "MindManager Enterprise",
                    "changed": {"seats": {"from": 10, "to": 12}, "groups": {"selected": ["Design"], "unselected": []}}})),
                "A tenant admin (token ska_…2a3f) changed MindManager Enterprise: seats from 10 to 12; selected Design",
            ),
            (
                entry("cli:root", "license.update", json!({"license": "l-1", "name": "MindManager Enterprise",
                    "changed": {"limits": [{"group": "Sales", "reserve": [0, 4], "max": [null, 8]}]}})),
                "root on the command line changed MindManager Enterprise: Sales's reserve from 0 to 4 and ceiling from none to 8",
            ),
            (
                entry("console:operator", "tenant.update", json!({"changed": {"expected_sync_seconds": {"from": 7200, "to": 3600}}})),
                "The operator in the console changed the tenant's settings: expected sync from 2 hours to 1 hour",
            ),
            (
                entry("cli:root", "scim_token.revoke", json!({"token": "abc"})),
                "root on the command line revoked SCIM token abc",
            ),
            (
                entry("allocator", "seat.blocked", json!({"license": "l-2", "userId": "u-9", "userName": null})),
                "User u-9 is waiting for a seat of l-2",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(sentence(&e, &name), want);
        }
    }

    #[test]
    fn every_action_has_a_sentence_of_its_own() {
        use crate::store::events::audit::AuditAction;
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
            let text = sentence(&entry("operator", a.as_str(), json!({})), &|id| {
                id.to_owned()
            });
            assert!(
                !text.contains(a.as_str()),
                "{a} shows raw in the activity: {text}"
            );
        }
        let unknown = sentence(&entry("operator", "from.the_future", json!({})), &|i| {
            i.into()
        });
        assert!(unknown.ends_with("from.the_future"), "{unknown}");
    }
}
