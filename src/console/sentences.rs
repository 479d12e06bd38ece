//! The activity feed as sentences a licensing admin reads: who did what to which license, with
//! the values before and after, instead of action codes and JSON (which stays one click away
//! on the page). Pure: an audit entry or seat event in, a sentence out.

use serde_json::Value;

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

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
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

/// `seats from 10 to 12; selected Design` from a `changed` object.
fn changes(changed: &Value) -> String {
    let Some(o) = changed.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (field, ch) in o {
        if field == "groups" {
            for (key, verb) in [("selected", "selected"), ("unselected", "unselected")] {
                let names: Vec<String> = ch[key]
                    .as_array()
                    .map(|a| a.iter().map(shown).collect())
                    .unwrap_or_default();
                if !names.is_empty() {
                    parts.push(format!("{verb} {}", names.join(", ")));
                }
            }
            continue;
        }
        if field == "limits" {
            // [{"group": "Sales", "reserve": [0, 4], "max": [null, 8]}]
            for l in ch.as_array().into_iter().flatten() {
                let mut what = Vec::new();
                for (key, word) in [("reserve", "reserve"), ("max", "ceiling")] {
                    let (from, to) = (&l[key][0], &l[key][1]);
                    if from != to {
                        let show = |v: &Value| {
                            if v.is_null() {
                                "none".to_owned()
                            } else {
                                shown(v)
                            }
                        };
                        what.push(format!("{word} from {} to {}", show(from), show(to)));
                    }
                }
                parts.push(format!("{}'s {}", shown(&l["group"]), what.join(" and ")));
            }
            continue;
        }
        let name = field.replace('_', " ");
        parts.push(format!(
            "{name} from {} to {}",
            shown(&ch["from"]),
            shown(&ch["to"])
        ));
    }
    parts.join("; ")
}

/// A user as a seat event names them.
fn who(d: &Value) -> String {
    match s(d, "userName") {
        n if n.is_empty() => format!("User {}", s(d, "userId")),
        n => n,
    }
}

/// The sentence for one activity entry; `license_name` turns a license id into its name.
pub fn sentence(e: &AuditEntry, license_name: &dyn Fn(&str) -> String) -> String {
    let d = &e.detail;
    let by = actor(&e.actor);
    let license = || {
        let id = s(d, "license");
        match s(d, "name") {
            n if !n.is_empty() => n,
            _ => license_name(&id),
        }
    };
    use crate::store::events::audit::AuditAction as A;
    // Every action has its sentence (the match is exhaustive); an action this release does not
    // know (written by a newer one) shows as it is.
    let Some(action) = A::parse(&e.action) else {
        return format!("{by}: {}", e.action);
    };
    match action {
        A::SeatGranted => format!("{} got a seat of {}", who(d), license()),
        A::SeatPromoted if s(d, "cause") == "manual" => format!(
            "{} got a seat of {} (granted by an admin ahead of the waitlist)",
            who(d),
            license()
        ),
        // Freed seats go to the head of the waitlist: whoever is promoted was first in it.
        A::SeatPromoted => format!(
            "{} got a seat of {} (promoted from the waitlist, position 1)",
            who(d),
            license()
        ),
        A::SeatBlocked => format!("{} is waiting for a seat of {}", who(d), license()),
        A::SeatReleasing => format!(
            "{} is no longer entitled to {} and keeps the seat until the grace period ends",
            who(d),
            license()
        ),
        A::SeatReleased => format!("{} no longer holds a seat of {}", who(d), license()),
        A::SeatHeld => format!(
            "{} is no longer entitled to {}, but keeps the seat: the circuit breaker holds the loss",
            who(d),
            license()
        ),
        A::HoldOpen => format!(
            "The identity provider's changes would take too many seats of {}: the circuit breaker holds {} losses ({})",
            license(),
            s(d, "held"),
            held_changes(&d["changes"])
        ),
        A::HoldDissolve => format!(
            "The identity provider restored everyone held for {}: hold {} dissolved",
            license(),
            s(d, "hold")
        ),
        A::HoldApprove => format!(
            "{by} approved hold {} of {}: {} held losses go through",
            s(d, "hold"),
            license(),
            s(d, "held")
        ),
        A::HoldReject => format!(
            "{by} rejected hold {} of {}: {} people keep their seats",
            s(d, "hold"),
            license(),
            s(d, "held")
        ),
        A::LicenseCreate => format!(
            "{by} created the license {} with {} seats",
            license(),
            s(&d["settings"], "seats")
        ),
        A::LicenseUpdate => match changes(&d["changed"]) {
            c if c.is_empty() => format!("{by} saved {} without changes", license()),
            c => format!("{by} changed {}: {c}", license()),
        },
        A::LicenseDelete => format!("{by} deleted the license {}", license()),
        A::TenantCreate => format!("{by} created the tenant"),
        A::TenantUpdate => match changes(&d["changed"]) {
            c if c.is_empty() => format!("{by} saved the tenant's settings without changes"),
            c => format!("{by} changed the tenant's settings: {c}"),
        },
        A::ScimTokenIssue => format!("{by} issued a SCIM token"),
        A::ScimTokenRotate => format!("{by} rotated a SCIM token"),
        A::ScimTokenRevoke => format!("{by} revoked SCIM token {}", s(d, "token")),
        A::AdminTokenIssue => format!("{by} issued a tenant admin token"),
        A::AdminTokenRevoke => format!("{by} revoked tenant admin token {}", s(d, "token")),
        A::ProductTokenIssue => format!("{by} issued a product token"),
        A::ProductTokenRevoke => format!("{by} revoked product token {}", s(d, "token")),
        A::WebhookCreate => format!("{by} added the webhook {}", s(&d["webhook"], "url")),
        A::WebhookUpdate => match changes(&d["changed"]) {
            c if c.is_empty() => format!("{by} saved a webhook without changes"),
            c => format!("{by} changed a webhook: {c}"),
        },
        A::WebhookDelete => format!("{by} deleted the webhook {}", s(&d["webhook"], "url")),
        A::WebhookRotate => format!("{by} made a new signing secret for a webhook"),
        A::WebhookRedeliver => format!("{by} sent a webhook delivery again"),
        A::NotificationTest => format!("{by} sent a test email to {}", shown(&d["to"])),
        A::NotificationRetry => format!("{by} queued notification {} again", s(d, "notification")),
        A::NotificationDismiss => format!("{by} dismissed notification {}", s(d, "notification")),
        A::OverridePin => format!("{by} pinned {} on {}", s(d, "userName"), license()),
        A::OverrideExclude => format!("{by} excluded {} from {}", s(d, "userName"), license()),
        A::OverrideRemove => format!(
            "{by} removed the override of {} on {}",
            s(d, "userName"),
            license()
        ),
        A::SeatGrant => format!(
            "{by} gave {} a seat of {} by hand",
            s(d, "userName"),
            license()
        ),
        A::SeatReclaim => format!("{by} reclaimed idle seats of {}", license()),
        A::Reconcile => format!("{by} checked every seat against the rules"),
        A::OverrideIdle => format!(
            "{by} marked {} idle on {}: the seat goes back to the waitlist",
            s(d, "userName"),
            license()
        ),
        A::TenantClose => format!(
            "{by} closed the tenant {} (its data is purged on {})",
            s(d, "name"),
            s(d, "purgeAt")
        ),
        A::TenantReopen => format!("{by} reopened the tenant {}", s(d, "tenant")),
        A::TenantExport => format!("{by} exported every record of the tenant {}", s(d, "tenant")),
        A::TenantPurge => format!("{by} purged every record of the tenant {}", s(d, "tenant")),
        A::ConsoleSignOutAll => format!("{by} signed everyone out of the console"),
        A::AuditKey => "The audit log is chained with the operator's audit key from here".to_owned(),
    }
}

/// A hold's causes as stored (`{loss key: count}`), in words.
fn held_changes(changes: &Value) -> String {
    let Some(o) = changes.as_object() else {
        return String::new();
    };
    o.iter()
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
                "The operator in the console changed the tenant's settings: expected sync seconds from 7200 to 3600",
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
