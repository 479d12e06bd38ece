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

use super::auth::OnTenant;
use super::error::AdminError;
use super::openapi::{Doc, Routes};
use super::reply::{int_param, query_param};
use super::reply::{ok, optional_body, Reply};
use crate::store::DigestState;

/// The outbox routes, added to the admin routes.
pub fn routes(r: Routes) -> Routes {
    use crate::store::{Notification, NotificationDetail, Notifications};
    use actix_web::http::Method as M;
    r.add(
        M::GET,
        "/tenants/{tenant}/notifications",
        list,
        Doc::new("The tenant's notification outbox, newest first")
            .query("state", "Only notifications in this state: collecting, closing, pending, sent, failed or skipped.")
            .query_int("limit", "At most this many (default 100).")
            .ok::<Notifications>("The notifications and the counts per state."),
    )
    .add(
        M::POST,
        "/tenants/{tenant}/notifications/test",
        test,
        Doc::new("Queue a test message, sent at once")
            .optional_body::<TestMessage>()
            .accepted::<Notification>("The queued message."),
    )
    .add(
        M::GET,
        "/tenants/{tenant}/notifications/{id}",
        get,
        Doc::new("One notification with the events it lists")
            .query_int("limit", "At most this many events (default 1000).")
            .ok::<NotificationDetail>("The notification."),
    )
    .add(
        M::POST,
        "/tenants/{tenant}/notifications/{id}/retry",
        retry,
        Doc::new("Queue a failed or skipped notification again").ok::<Notification>("The notification, queued."),
    )
    .add(
        M::POST,
        "/tenants/{tenant}/notifications/{id}/dismiss",
        dismiss,
        Doc::new("Close a failed or skipped notification unsent").ok::<Notification>("The notification, closed."),
    )
}

/// `{id}` of a path.
#[derive(Deserialize)]
struct OfNotification {
    id: String,
}

async fn list(at: OnTenant, req: HttpRequest) -> Reply {
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
    ok(at.store().notifications(at.key(), filter, limit).await?)
}

fn id_of(raw: &str) -> Result<i64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::new(404, "not_found", format!("notification {raw:?} not found")))
}

async fn get(at: OnTenant, req: HttpRequest, p: web::Path<OfNotification>) -> Reply {
    let limit = int_param(&req, "limit", 1000, 100_000)?;
    ok(at
        .store()
        .notification(at.key(), id_of(&p.id)?, limit)
        .await?)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TestMessage {
    /// Recipients (default: the tenant's `notify`; others are refused).
    #[serde(default)]
    to: Vec<String>,
}

async fn test(at: OnTenant, payload: web::Payload) -> Reply {
    let body: TestMessage = optional_body(payload, &at.state).await?;
    if body.to.is_empty() && at.tenant.notify.is_empty() {
        return Err(AdminError::bad_request(
            "the tenant has no notify recipients: set them (PATCH the tenant) or give \"to\"",
        ));
    }
    let queued = at
        .store()
        .notification_test(at.key(), body.to, at.actor())
        .await?;
    at.state.mail_wake.notify_one();
    Ok(HttpResponse::Accepted().json(queued))
}

/// `retry`: a failed or skipped message queued again, sent at once.
async fn retry(at: OnTenant, p: web::Path<OfNotification>) -> Reply {
    let id = id_of(&p.id)?;
    let row = at
        .store()
        .retry_notification(at.key(), id, at.actor())
        .await?;
    at.state.mail_wake.notify_one();
    ok(row)
}

/// `dismiss`: a failed or skipped message closed unsent.
async fn dismiss(at: OnTenant, p: web::Path<OfNotification>) -> Reply {
    let id = id_of(&p.id)?;
    ok(at
        .store()
        .dismiss_notification(at.key(), id, at.actor())
        .await?)
}
