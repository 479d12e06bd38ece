//! The notification outbox in the admin API:
//!
//! - `GET /tenants/{tenant}/notifications?state=&limit=` → `{"notifications": [...], "counts": {state: n}}`,
//!   newest first; each with `id`, `kind`, `license`, `state` (collecting, closing, pending, sent,
//!   failed, skipped), `created`, `nextAttempt`, `items`, `attempts`, `lastError`, `recipients`,
//!   `subject`, `messageId`, `sent`
//! - `GET /tenants/{tenant}/notifications/{id}` → one, with its `events`
//! - `POST /tenants/{tenant}/notifications/test` `{"to": [emails]}` (optional; default: the tenant's
//!   `notify`; addresses outside it are refused with 400) → 202, the queued message, sent at once
//! - `POST /tenants/{tenant}/notifications/{id}/retry` → 200, a failed or skipped one queued again
//! - `POST /tenants/{tenant}/notifications/{id}/dismiss` → 200, a failed or skipped one closed
//!   unsent (failed ones are kept until retried or dismissed)

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::admin::{optional_body, tenant_of};
use super::auth::Admin;
use super::error::AdminError;
use super::licenses::{int_param, query_param};
use super::AppState;
use crate::store::DigestState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/tenants/{tenant}/notifications", web::get().to(list))
        .route("/tenants/{tenant}/notifications/test", web::post().to(test))
        .route("/tenants/{tenant}/notifications/{id}", web::get().to(get))
        .route(
            "/tenants/{tenant}/notifications/{id}/{action}",
            web::post().to(act),
        )
}

async fn list(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let t = tenant_of(&state, &path).await?;
    let filter = query_param(&req, "state")?;
    if let Some(s) = filter
        .as_deref()
        .filter(|s| DigestState::parse(s).is_none())
    {
        let known: Vec<&str> = DigestState::ALL.iter().map(|d| d.as_str()).collect();
        return Err(AdminError::bad_request(format!(
            "state {s:?} is not one of {}",
            known.join(", ")
        )));
    }
    let limit = int_param(&req, "limit", 100, 10_000)?;
    Ok(HttpResponse::Ok().json(state.store.notifications(t, filter, limit).await?))
}

fn id_of(raw: &str) -> Result<i64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::new(404, "not_found", format!("notification {raw:?} not found")))
}

async fn get(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, id) = path.into_inner();
    let t = tenant_of(&state, &tenant).await?;
    let limit = int_param(&req, "limit", 1000, 100_000)?;
    Ok(HttpResponse::Ok().json(state.store.notification(t, id_of(&id)?, limit).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestMessage {
    #[serde(default)]
    to: Vec<String>,
}

async fn test(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = state.store.tenant(&path).await?;
    let body: TestMessage = optional_body(payload, &state).await?;
    if body.to.is_empty() && tenant.notify.is_empty() {
        return Err(AdminError::bad_request(
            "the tenant has no notify recipients: set them (PATCH the tenant) or give \"to\"",
        ));
    }
    let queued = state.store.notification_test(tenant.key, body.to).await?;
    state.mail_wake.notify_one();
    Ok(HttpResponse::Accepted().json(queued))
}

/// `retry` (a failed or skipped message queued again, sent at once) or `dismiss` (closed
/// unsent).
async fn act(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, id, action) = path.into_inner();
    let t = tenant_of(&state, &tenant).await?;
    let id = id_of(&id)?;
    let row = match action.as_str() {
        "retry" => {
            let row = state.store.retry_notification(t, id).await?;
            state.mail_wake.notify_one();
            row
        }
        "dismiss" => state.store.dismiss_notification(t, id).await?,
        _ => return Err(AdminError::new(404, "not_found", "no such endpoint")),
    };
    Ok(HttpResponse::Ok().json(row))
}
