//! A tenant's activity: the audit log and seat events, and the notification outbox with retry
//! and dismiss.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct ActivityQuery {
    q: Option<String>,
    /// A license's id or name.
    license: Option<String>,
    /// A part of a userName or user id.
    user: Option<String>,
    /// `operator`, `tenant-admin`, `console`, `cli`, `reconciler`, `allocator`.
    actor: Option<String>,
    /// What kind of act: an action prefix (`seat.`, `license.`, `token`, ...).
    kind: Option<String>,
    notice: Option<String>,
}

/// The kinds the activity filter offers: (label, what an action starts with or contains).
pub(super) const KINDS: [(&str, &str); 7] = [
    ("Seat changes", "seat."),
    ("Licenses", "license."),
    ("Overrides", "override."),
    ("Tokens", "_token."),
    ("Webhooks", "webhook."),
    ("Notifications", "notification."),
    ("Tenant settings", "tenant."),
];

pub(super) async fn activity(v: Visit, q: web::Query<ActivityQuery>) -> Result<HttpResponse> {
    let Visit { state, s, t, .. } = v;
    let audit = state.store.audit_log(t.key, 2000).await?;
    let notifications = state.store.notifications(t.key, None, 100).await?;
    let licenses = state.store.list_licenses(t.key).await?;
    let names: std::collections::HashMap<String, String> = licenses
        .iter()
        .map(|l| (l.id.clone(), l.name.clone()))
        .collect();
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let lower = |o: &Option<String>| o.as_deref().unwrap_or("").trim().to_lowercase();
    let (needle, license, user, actor, kind) = (
        lower(&q.q),
        lower(&q.license),
        lower(&q.user),
        lower(&q.actor),
        q.kind.clone().unwrap_or_default(),
    );
    let entries: Vec<(store::AuditEntry, String)> = audit
        .entries
        .into_iter()
        .map(|e| {
            let text = super::sentences::sentence(&e, &name_of);
            (e, text)
        })
        .filter(|(e, text)| {
            let field = |k: &str| {
                e.detail
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_lowercase()
            };
            (needle.is_empty()
                || text.to_lowercase().contains(&needle)
                || e.detail.to_string().to_lowercase().contains(&needle))
                && (license.is_empty()
                    || field("license") == license
                    || name_of(&field("license")).to_lowercase() == license
                    || field("name") == license)
                && (user.is_empty()
                    || field("userName").contains(&user)
                    || field("userId").contains(&user))
                && (actor.is_empty()
                    || e.actor.to_lowercase().starts_with(&actor)
                    || (actor == "console" && e.actor.starts_with("console:")))
                && (kind.is_empty() || e.action.starts_with(&kind) || e.action.contains(&kind))
        })
        .take(200)
        .collect();
    ok(activity_page::activity(
        &s,
        &t,
        &entries,
        &notifications.notifications,
        &licenses,
        activity_page::ActivityFilter {
            q: q.q.as_deref().unwrap_or(""),
            license: q.license.as_deref().unwrap_or(""),
            user: q.user.as_deref().unwrap_or(""),
            actor: q.actor.as_deref().unwrap_or(""),
            kind: &kind,
        },
        q.notice.as_deref(),
    ))
}

/// A failed or skipped notification: `retry` (queued again) or `dismiss` (closed unsent).
pub(super) async fn notification_action(
    v: Visit,
    p: web::Path<OfAction<i64>>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let OfAction { id, action } = p.into_inner();
    let Visit { state, s, t, .. } = v;
    let notice = match action.as_str() {
        "retry" => {
            state.store.retry_notification(t.key, id, s.actor()).await?;
            state.mail_wake.notify_one();
            "retry-queued"
        }
        "dismiss" => {
            state
                .store
                .dismiss_notification(t.key, id, s.actor())
                .await?;
            "dismissed"
        }
        _ => return Err(Error::NotFound("no such action".into())),
    };
    see_other(&format!(
        "/console/tenants/{}/activity?notice={notice}",
        t.id
    ))
}
