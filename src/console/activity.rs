//! A tenant's activity: the audit log and seat events, and the notification outbox with retry
//! and dismiss.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct ActivityQuery {
    q: Option<String>,
    notice: Option<String>,
}

pub(super) async fn activity(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    let t = tenant_of(&state, &s, &path).await?;
    let audit = state.store.audit_log(t.key, 500).await?;
    let notifications = state.store.notifications(t.key, None, 100).await?;
    let needle = q.q.as_deref().unwrap_or("").trim().to_lowercase();
    let entries: Vec<store::AuditEntry> = audit
        .entries
        .into_iter()
        .filter(|e| {
            needle.is_empty()
                || [&e.actor, &e.action, &e.at, &e.detail.to_string()]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
        })
        .take(200)
        .collect();
    ok(pages::activity(
        &s,
        &t,
        &entries,
        &notifications.notifications,
        q.q.as_deref().unwrap_or(""),
        q.notice.as_deref(),
    ))
}

/// A failed or skipped notification: `retry` (queued again) or `dismiss` (closed unsent).
pub(super) async fn notification_action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i64, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (tk, id, action) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
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
