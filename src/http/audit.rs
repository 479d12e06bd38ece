//! The audit log in the admin API: a tenant's at `GET /admin/v1/tenants/{tenant}/audit`, the
//! operator's own acts (operator product tokens and webhooks) at `GET /admin/v1/audit`.
//!
//! Newest first, a page at a time (`before` = the previous page's `next`), or oldest first from
//! `after`; filtered by `actor` (a prefix: `tenant-admin:` matches every tenant admin token),
//! `action` (exact, or a prefix ending with `.`: `license.`), `from` and `to` (RFC 3339 or
//! YYYY-MM-DD, inclusive). `format=jsonl` exports every matching entry, oldest first, as JSON
//! lines, streamed a page at a time.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::OnOwner;
use super::error::AdminError;
use super::openapi::{Doc, Routes};
use super::reply::{int_param, query_param};
use super::state::AppState;
use crate::store::events::audit::{AuditPage, AuditQuery, OPERATOR_CHAIN};
use crate::store::TenantKey;

pub fn routes(r: Routes) -> Routes {
    use actix_web::http::Method as M;
    let doc = |summary: &'static str| {
        Doc::new(summary)
            .describe("Newest first from `before`, or oldest first from `after`. `format=jsonl` exports every matching entry, oldest first, as JSON lines.")
            .query_int("before", "Entries older than this cursor (the previous page's `next`).")
            .query_int("after", "Entries newer than this cursor, oldest first.")
            .query("actor", "Actors starting with this: operator, tenant-admin:<id>, console:..., cli:<user>, reconciler.")
            .query("action", "This action, or every action starting with it when it ends with a dot (license.).")
            .query("from", "From this time (RFC 3339 or YYYY-MM-DD).")
            .query("to", "Up to this time (RFC 3339 or YYYY-MM-DD, the whole day).")
            .query_int("limit", "At most this many entries (default 200, at most 10000).")
            .query("format", "jsonl: every matching entry as JSON lines.")
            .ok::<AuditPage>("A page of entries, each with its hash.")
    };
    r.add(
        M::GET,
        "/tenants/{tenant}/audit",
        audit,
        doc("The tenant's audit log: every admin act, its actor and what it changed"),
    )
    .add(
        M::GET,
        "/audit",
        audit,
        doc("The operator's own acts: operator product tokens and webhooks (operator only)"),
    )
}

/// A time given as RFC 3339 or a date (its start, or with `end` its last millisecond).
pub(crate) fn parse_time(s: &str, end: bool) -> Option<i64> {
    let t = s.trim();
    if let Ok(dt) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return Some((dt.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let d = time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let start = d.midnight().assume_utc().unix_timestamp() * 1000;
    Some(if end { start + 86_400_000 - 1 } else { start })
}

fn query_of(req: &HttpRequest) -> Result<(AuditQuery, bool), AdminError> {
    let time = |name: &str, end: bool| -> Result<Option<i64>, AdminError> {
        match query_param(req, name)? {
            None => Ok(None),
            Some(v) => parse_time(&v, end).map(Some).ok_or_else(|| {
                AdminError::bad_request(format!(
                    "{name}: an RFC 3339 time or YYYY-MM-DD, not {v:?}"
                ))
            }),
        }
    };
    let cursor = |name: &str| -> Result<Option<i64>, AdminError> {
        Ok(match query_param(req, name)? {
            None => None,
            Some(_) => Some(int_param(req, name, 0, i64::MAX)?),
        })
    };
    let jsonl = match query_param(req, "format")?.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(other) => {
            return Err(AdminError::bad_request(format!(
                "format: json or jsonl, not {other:?}"
            )))
        }
    };
    Ok((
        AuditQuery {
            before: cursor("before")?,
            after: cursor("after")?,
            actor: query_param(req, "actor")?,
            action: query_param(req, "action")?,
            from: time("from", false)?,
            to: time("to", true)?,
            limit: int_param(req, "limit", 200, 10_000)?,
        },
        jsonl,
    ))
}

async fn answer(
    state: &AppState,
    tenant: TenantKey,
    req: &HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (q, jsonl) = query_of(req)?;
    if !jsonl {
        return Ok(HttpResponse::Ok().json(state.store.audit_page(tenant, q).await?));
    }
    // Oldest first, a page at a time, streamed. A whole export (no filter) is noted when its
    // last page is read: with `audit_retention_days`, what it held may be pruned later.
    let whole = q.whole();
    let store = state.store.clone();
    let first = AuditQuery {
        after: Some(q.after.unwrap_or(0)),
        before: None,
        limit: 1000,
        ..q
    };
    let pages = futures_util::stream::unfold(Some(first), move |next| {
        let store = store.clone();
        async move {
            let q = next?;
            match store.audit_page(tenant, q.clone()).await {
                Ok(page) => {
                    let mut body = Vec::new();
                    for e in &page.entries {
                        if serde_json::to_writer(&mut body, e).is_ok() {
                            body.push(b'\n');
                        }
                    }
                    let more = page.next.map(|n| AuditQuery {
                        after: Some(n),
                        ..q.clone()
                    });
                    if more.is_none() && whole {
                        let through = page.entries.last().map(|e| e.cursor).or(q.after);
                        if let Some(through) = through.filter(|t| *t > 0) {
                            if let Err(e) = store.audit_exported(tenant, through).await {
                                return Some((Err(AdminError::from(e).into()), None));
                            }
                        }
                    }
                    Some((Ok::<_, actix_web::Error>(web::Bytes::from(body)), more))
                }
                Err(e) => Some((Err(AdminError::from(e).into()), None)),
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(pages))
}

/// A tenant's audit log, or (on `/audit`, the operator only) the operator's own chain.
async fn audit(at: OnOwner, req: HttpRequest) -> Result<HttpResponse, AdminError> {
    answer(&at.state, at.key().unwrap_or(OPERATOR_CHAIN), &req).await
}
