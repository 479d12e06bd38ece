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
    /// The cursor of the page to show (older than it) ...
    before: Option<String>,
    /// ... or newer than it.
    after: Option<String>,
    /// The first and last day shown (`YYYY-MM-DD`, in the tenant's zone).
    from: Option<String>,
    to: Option<String>,
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

/// Entries one activity page shows.
const PAGE: i64 = 200;

/// A license's name by its id (an entry names a license by id; a deleted one shows its id).
fn names_of(licenses: &[store::LicenseView]) -> impl Fn(&str) -> String {
    let names: std::collections::HashMap<String, String> = licenses
        .iter()
        .map(|l| (l.id.clone(), l.name.clone()))
        .collect();
    move |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned())
}

/// The store's query for the page's filters (`limit` entries).
fn store_query(
    q: &ActivityQuery,
    licenses: &[store::LicenseView],
    t: &store::Tenant,
    limit: i64,
) -> Result<store::ActivityQuery> {
    let given = |o: &Option<String>| {
        o.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let day = |o: &Option<String>, what: &str| -> Result<Option<crate::alloc::Millis>> {
        match given(o) {
            None => Ok(None),
            Some(d) => crate::notify::when::day_start(&d, &t.time_zone)
                .map(Some)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the {what} day is a date such as 2026-12-01, not {d:?}"
                    ))
                }),
        }
    };
    let text = given(&q.q);
    let license = given(&q.license);
    Ok(store::ActivityQuery {
        before: given(&q.before),
        after: given(&q.after),
        from: day(&q.from, "first")?,
        // Through the last day: up to the start of the next.
        until: day(&q.to, "last")?.map(|d| d + 86_400_000),
        text_licenses: text.as_deref().map_or_else(Vec::new, |n| {
            let n = n.to_lowercase();
            licenses
                .iter()
                .filter(|l| l.name.to_lowercase().contains(&n))
                .map(|l| l.id.clone())
                .collect()
        }),
        text,
        license_id: license.as_deref().map(|l| {
            licenses
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(l) || x.id == l)
                .map_or_else(|| l.to_owned(), |x| x.id.clone())
        }),
        license_name: license,
        user: given(&q.user),
        actor: given(&q.actor),
        kind: given(&q.kind),
        limit,
    })
}

pub(super) async fn activity(v: Visit, q: web::Query<ActivityQuery>) -> Result<HttpResponse> {
    let Visit { state, s, t, .. } = v;
    let notifications = state.store.notifications(t.key, None, 100).await?;
    let licenses = state.store.list_licenses(t.key).await?;
    let name_of = names_of(&licenses);
    let kind = q.kind.clone().unwrap_or_default();
    // Filtered and paged in the store: a page reads at most PAGE entries.
    let query = store_query(&q, &licenses, &t, PAGE)?;
    let page = state.store.activity_page(t.key, query).await?;
    let entries: Vec<(store::AuditEntry, String)> = page
        .entries
        .into_iter()
        .map(|e| {
            let text = super::sentences::sentence(&e, &name_of);
            (e, text)
        })
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
            from: q.from.as_deref().unwrap_or(""),
            to: q.to.as_deref().unwrap_or(""),
            older: page.older.as_deref(),
            newer: page.newer.as_deref(),
        },
        q.notice.as_deref(),
    ))
}

/// Most entries one export holds.
const EXPORT: usize = 100_000;

/// The activity the filters select, newest first, as CSV: when (in the tenant's zone), who,
/// the action, what happened in words, and the entry's detail (JSON).
pub(super) async fn activity_csv(v: Visit, q: web::Query<ActivityQuery>) -> Result<HttpResponse> {
    let Visit { state, t, .. } = v;
    let licenses = state.store.list_licenses(t.key).await?;
    let name_of = names_of(&licenses);
    let mut query = store_query(&q, &licenses, &t, 1000)?;
    query.after = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    loop {
        let page = state.store.activity_page(t.key, query.clone()).await?;
        for e in &page.entries {
            rows.push(vec![
                crate::notify::when::format_rfc3339(&e.at, &t.time_zone),
                e.actor.clone(),
                e.action.clone(),
                super::sentences::sentence(e, &name_of),
                e.detail.to_string(),
            ]);
        }
        match page.older {
            Some(c) if rows.len() < EXPORT => query.before = Some(c),
            _ => break,
        }
    }
    rows.truncate(EXPORT);
    let headers: Vec<String> = ["when", "who", "action", "what", "detail"]
        .map(str::to_owned)
        .to_vec();
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"activity.csv\"",
        ))
        .body(crate::csv::table(&headers, &rows)))
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
