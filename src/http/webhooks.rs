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
//! A URL is vetted before it is stored (`webhook::dispatcher::vet`): https unless
//! `webhook_allow_http`, and no internal address unless `webhook_allow_private_addresses`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::json_body;
use super::auth::Admin;
use super::error::AdminError;
use super::openapi::{Doc, Routes};
use super::AppState;
use crate::store::webhooks::WebhookChange;
use crate::store::TenantKey;
use crate::webhook::dispatcher::{vet, Policy};

/// The webhook routes (a tenant's, and the operator's), added to the admin routes.
pub fn routes(r: Routes) -> Routes {
    use crate::store::webhooks::{DeliveryView, WebhookSecret, WebhookView};
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
async fn owner(
    admin: &Admin,
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<TenantKey>, AdminError> {
    match req.match_info().get("tenant") {
        Some(t) => Ok(Some(state.store.tenant(t).await?.key)),
        None => {
            admin.operator()?;
            Ok(None)
        }
    }
}

fn policy(state: &AppState) -> Policy {
    Policy::of(&state.config)
}

fn id(req: &HttpRequest) -> String {
    req.match_info().get("id").unwrap_or_default().to_owned()
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

async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
    let w: NewWebhook = json_body(payload, &state).await?;
    vet(&w.url, policy(&state))
        .await
        .map_err(|e| AdminError::bad_request(e.0))?;
    let created = state
        .store
        .create_webhook(owner, w.url, w.events, admin.actor.clone())
        .await?;
    Ok(HttpResponse::Created().json(created))
}

async fn list(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
    let hooks = state.store.list_webhooks(owner).await?;
    Ok(HttpResponse::Ok().json(json!({ "webhooks": hooks })))
}

async fn get(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
    Ok(HttpResponse::Ok().json(state.store.get_webhook(owner, id(&req)).await?))
}

async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
    let change: WebhookChange = json_body(payload, &state).await?;
    if let Some(url) = &change.url {
        vet(url, policy(&state))
            .await
            .map_err(|e| AdminError::bad_request(e.0))?;
    }
    let w = state
        .store
        .update_webhook(owner, id(&req), change, admin.actor.clone())
        .await?;
    Ok(HttpResponse::Ok().json(w))
}

async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
    state
        .store
        .delete_webhook(owner, id(&req), admin.actor.clone())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
    let rotated = state
        .store
        .rotate_webhook_secret(owner, id(&req), admin.actor.clone())
        .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
}

async fn deliveries(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
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
    let list = state
        .store
        .webhook_deliveries(owner, id(&req), q.state, limit)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deliveries": list })))
}

async fn redeliver(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let owner = owner(&admin, &state, &req).await?;
    let delivery = req
        .match_info()
        .get("delivery")
        .unwrap_or_default()
        .to_owned();
    let d = state
        .store
        .redeliver_webhook(owner, id(&req), delivery, admin.actor.clone())
        .await?;
    Ok(HttpResponse::Accepted().json(d))
}
