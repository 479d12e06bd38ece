//! Webhook endpoints in the admin API: a tenant's under `/admin/v1/tenants/{tenant}/webhooks`,
//! the operator's (every tenant's events; operator token only) under `/admin/v1/webhooks`.
//!
//! - `POST .../webhooks` `{"url", "events": [types]}` → 201 `{"id", "secret", ...}` (the secret
//!   `whsec_...`, shown once); `GET .../webhooks`; `GET`, `PATCH` (`url`, `events`, `enabled`),
//!   `DELETE .../webhooks/{id}`
//! - `POST .../webhooks/{id}/rotate` → `{"id", "secret", ...}`: a new secret; the old one keeps
//!   signing beside it for a day
//! - `GET .../webhooks/{id}/deliveries?state=&limit=`; `POST
//!   .../webhooks/{id}/deliveries/{delivery}/redeliver`
//!
//! A URL is vetted before it is stored (`webhook::vet::vet`): https unless
//! `webhook_allow_http`, and no internal address unless `webhook_allow_private_addresses`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::OnOwner;
use super::error::AdminError;
use super::openapi::{Doc, Routes};
use super::reply::{json_body, ok, Reply};
use super::state::AppState;
use crate::store::events::webhooks::WebhookChange;
use crate::webhook::vet::{vet, Policy};

/// The webhook routes (a tenant's, and the operator's), added to the admin routes.
pub fn routes(r: Routes) -> Routes {
    use crate::store::events::webhooks::{DeliveryView, WebhookSecret, WebhookView};
    use actix_web::http::Method as M;
    let mut r = r;
    for (base, whose) in [
        ("/tenants/{tenant}/webhooks", "the tenant's"),
        (
            "/webhooks",
            "the operator's (every tenant's events; operator only)",
        ),
    ] {
        let one = format!("{base}/{{id}}");
        let _ = whose;
        r = r
            .add(
                M::POST,
                base,
                create,
                Doc::new("Register a webhook endpoint; its signing secret is shown once")
                    .describe("The URL must be https (unless the operator allows http) and may not resolve to an internal address. `events` empty or absent: every type.")
                    .body::<NewWebhook>()
                    .created::<WebhookSecret>("The endpoint and its secret (whsec_...)."),
            )
            .add(
                M::GET,
                base,
                list,
                Doc::new("The webhook endpoints (no secrets)").list::<WebhookView>("webhooks", "The endpoints."),
            )
            .add(M::GET, &one, get, Doc::new("One webhook endpoint").ok::<WebhookView>("The endpoint."))
            .add(
                M::PATCH,
                &one,
                update,
                Doc::new("Change an endpoint's URL or events, or enable or disable it")
                    .body::<WebhookChange>()
                    .ok::<WebhookView>("The endpoint as changed."),
            )
            .add(
                M::DELETE,
                &one,
                delete,
                Doc::new("Delete an endpoint and its deliveries").no_content("Deleted."),
            )
            .add(
                M::POST,
                &format!("{one}/rotate"),
                rotate,
                Doc::new("A new signing secret; the old one keeps signing beside it for a day")
                    .ok::<WebhookSecret>("The endpoint and its new secret."),
            )
            .add(
                M::GET,
                &format!("{one}/deliveries"),
                deliveries,
                Doc::new("The endpoint's deliveries, newest first")
                    .query("state", "Only deliveries in this state: pending, delivered or failed.")
                    .query_int("limit", "At most this many (default 100, at most 1000).")
                    .list::<DeliveryView>("deliveries", "The deliveries."),
            )
            .add(
                M::POST,
                &format!("{one}/deliveries/{{delivery}}/redeliver"),
                redeliver,
                Doc::new("Send a delivery again").accepted::<DeliveryView>("The delivery, pending."),
            );
    }
    r
}

/// The owner the path names: `{tenant}`, or the operator (operator token only).
fn policy(state: &AppState) -> Policy {
    Policy::of(&state.config)
}

/// `{id}` of a path: the webhook.
#[derive(Deserialize)]
struct OfWebhook {
    id: String,
}

/// `{id}` and `{delivery}` of a path.
#[derive(Deserialize)]
struct OfDelivery {
    id: String,
    delivery: String,
}

/// A webhook endpoint to register.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    /// Where to POST (https).
    url: String,
    /// seat.granted, seat.blocked, seat.releasing, seat.released, license.updated; empty: all.
    #[serde(default)]
    events: Vec<String>,
}

async fn create(at: OnOwner, payload: web::Payload) -> Reply {
    let w: NewWebhook = json_body(payload, &at.state).await?;
    vet(&w.url, policy(&at.state))
        .await
        .map_err(|e| AdminError::bad_request(e.0))?;
    let created = at
        .store()
        .create_webhook(
            at.key(),
            w.url,
            w.events,
            at.actor(),
            at.state.config.webhook_max_endpoints_per_tenant,
        )
        .await?;
    Ok(HttpResponse::Created().json(created))
}

async fn list(at: OnOwner) -> Reply {
    ok(json!({ "webhooks": at.store().list_webhooks(at.key()).await? }))
}

async fn get(at: OnOwner, p: web::Path<OfWebhook>) -> Reply {
    ok(at.store().get_webhook(at.key(), p.into_inner().id).await?)
}

async fn update(at: OnOwner, p: web::Path<OfWebhook>, payload: web::Payload) -> Reply {
    let change: WebhookChange = json_body(payload, &at.state).await?;
    if let Some(url) = &change.url {
        vet(url, policy(&at.state))
            .await
            .map_err(|e| AdminError::bad_request(e.0))?;
    }
    let id = p.into_inner().id;
    ok(at
        .store()
        .update_webhook(at.key(), id, change, at.actor())
        .await?)
}

async fn delete(at: OnOwner, p: web::Path<OfWebhook>) -> Reply {
    let id = p.into_inner().id;
    at.store().delete_webhook(at.key(), id, at.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate(at: OnOwner, p: web::Path<OfWebhook>) -> Reply {
    let id = p.into_inner().id;
    ok(at
        .store()
        .rotate_webhook_secret(at.key(), id, at.actor())
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
}

async fn deliveries(at: OnOwner, req: HttpRequest, p: web::Path<OfWebhook>) -> Reply {
    let q = web::Query::<DeliveryQuery>::from_query(req.query_string())
        .map_err(|e| AdminError::bad_request(format!("query: {e}")))?
        .into_inner();
    if let Some(s) = &q.state {
        if !["pending", "delivered", "failed"].contains(&s.as_str()) {
            return Err(AdminError::bad_request(
                "state: one of pending, delivered, failed",
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::bad_request("limit: from 1 to 1000"));
    }
    let (owner, id) = (at.key(), p.into_inner().id);
    let list = at
        .store()
        .webhook_deliveries(owner, id, q.state, limit)
        .await?;
    ok(json!({ "deliveries": list }))
}

async fn redeliver(at: OnOwner, p: web::Path<OfDelivery>) -> Reply {
    let OfDelivery { id, delivery } = p.into_inner();
    let d = at
        .store()
        .redeliver_webhook(at.key(), id, delivery, at.actor())
        .await?;
    Ok(HttpResponse::Accepted().json(d))
}
