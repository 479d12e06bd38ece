//! The product API under `/product/v1` (JSON, a product token `skp_...`): what the vendor's
//! product asks when a user signs in, with a least-privilege credential that can read seats
//! and nothing else. A tenant's product token reads that tenant; an operator product token
//! reads every tenant. No admin or SCIM token is accepted here, and a product token is accepted
//! nowhere else. Paths and field names are a stable contract.
//!
//! - `GET /tenants/{t}/users/{user}/seats` → `{user: {id, userName, externalId, active}, seats:
//!   [{license: {id, name}, state, position, since, releaseAt}]}`
//! - `GET /tenants/{t}/licenses/{l}/users/{user}` → `{state, position, since, releaseAt}`
//! - `POST /tenants/{t}/licenses/{l}/checks` `{users: [...]}` (at most 1000) → `{results: [...]}`
//! - `GET /events?after=&limit=` (operator token) and `GET /tenants/{t}/events?after=&limit=`
//! - `POST /tenants/{t}/usage` `{events: [{user, license, at?}]}` (at most 1000) → 202: the
//!   product reports who used what; each seat's `lastUsed` moves forward
//!
//! `{t}` is a tenant's id or name, `{l}` a license's; `{user}` a SCIM id, a userName, an
//! externalId or an email address of the user.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::json_body;
use super::auth::bearer;
use super::error::{AdminError, Throttled};
use super::limits::retry_after;
use super::AppState;
use crate::store::{ProductScope, TenantKey};

pub fn scope() -> actix_web::Scope {
    web::scope("/product/v1")
        // A query string that does not parse is a JSON 400 like every other refusal here.
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            AdminError::bad_request(format!("invalid query string: {e}")).into()
        }))
        .route("/events", web::get().to(all_events))
        .route("/tenants/{tenant}/events", web::get().to(tenant_events))
        .route(
            "/tenants/{tenant}/users/{user}/seats",
            web::get().to(user_seats),
        )
        .route(
            "/tenants/{tenant}/licenses/{license}/users/{user}",
            web::get().to(check),
        )
        .route(
            "/tenants/{tenant}/licenses/{license}/checks",
            web::post().to(checks),
        )
        .route("/tenants/{tenant}/usage", web::post().to(usage))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(AdminError::new(
                404,
                "not_found",
                "no such product endpoint",
            ))
        }))
}

/// Proof that the request carries a valid product token, and whose.
pub struct Product(pub ProductScope);

impl FromRequest for Product {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { product(&req).await })
    }
}

async fn product(req: &HttpRequest) -> Result<Product, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AdminError::new(500, "internal", "no application state"))?;
    let client = state.limits.client(req);
    // A valid token is served whatever its address did; failures are braked per address.
    let fail = |message: &'static str| -> actix_web::Error {
        match state.limits.failure(client) {
            Some(d) => Throttled {
                retry_after: retry_after(d),
                admin: true,
                detail: "too many failed authentications from this address",
            }
            .into(),
            None => AdminError::new(401, "unauthorized", message).into(),
        }
    };
    let Some(given) = bearer(req) else {
        return Err(fail("a product token (skp_...) is required"));
    };
    if !given.starts_with("skp_") {
        return Err(fail(
            "only a product token (skp_...) reaches /product/v1; admin and SCIM tokens do not",
        ));
    }
    match state
        .store
        .authenticate_product(given)
        .await
        .map_err(AdminError::from)?
    {
        Some(scope) => Ok(Product(scope)),
        None => Err(fail("the product token is not valid")),
    }
}

impl Product {
    /// The tenant named `key`, if this token may read it. A tenant it may not read answers as
    /// one that does not exist: a token learns nothing about other tenants.
    async fn tenant(&self, state: &AppState, key: &str) -> Result<TenantKey, AdminError> {
        let t = state.store.tenant(key).await;
        match t {
            Ok(t) if self.0.may(t.key) => Ok(t.key),
            Ok(_) | Err(crate::store::Error::NotFound(_)) => Err(AdminError::new(
                404,
                "not_found",
                format!("tenant {key:?} not found"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

async fn user_seats(
    p: Product,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (t, user) = path.into_inner();
    let t = p.tenant(&state, &t).await?;
    Ok(HttpResponse::Ok().json(state.store.product_user_seats(t, user).await?))
}

async fn check(
    p: Product,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (t, license, user) = path.into_inner();
    let t = p.tenant(&state, &t).await?;
    Ok(HttpResponse::Ok().json(state.store.product_check(t, license, user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Checks {
    users: Vec<String>,
}

async fn checks(
    p: Product,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let (t, license) = path.into_inner();
    let t = p.tenant(&state, &t).await?;
    let body: Checks = json_body(payload, &state).await?;
    let results = state.store.product_checks(t, license, body.users).await?;
    Ok(HttpResponse::Ok().json(json!({ "results": results })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Usage {
    events: Vec<crate::store::UsageEvent>,
}

/// `POST /tenants/{t}/usage` `{events: [{user, license, at?}]}` → 202 `{recorded, ignored}`.
async fn usage(
    p: Product,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let t = p.tenant(&state, &path).await?;
    let body: Usage = json_body(payload, &state).await?;
    let report = state.store.record_usage(t, body.events).await?;
    Ok(HttpResponse::Accepted().json(report))
}

#[derive(Deserialize)]
struct Feed {
    after: Option<i64>,
    limit: Option<i64>,
}

/// Most events one page returns (and the default).
const FEED_PAGE: i64 = 1000;

fn page(q: &Feed) -> Result<(i64, i64), AdminError> {
    let limit = q.limit.unwrap_or(FEED_PAGE);
    if !(1..=FEED_PAGE).contains(&limit) {
        return Err(AdminError::bad_request(format!(
            "limit must be between 1 and {FEED_PAGE}"
        )));
    }
    Ok((q.after.unwrap_or(0).max(0), limit))
}

async fn all_events(
    p: Product,
    state: web::Data<AppState>,
    q: web::Query<Feed>,
) -> Result<HttpResponse, AdminError> {
    if p.0 != ProductScope::Operator {
        return Err(AdminError::new(
            403,
            "forbidden",
            "the feed of every tenant needs an operator product token; a tenant's token reads /product/v1/tenants/{tenant}/events",
        ));
    }
    let (after, limit) = page(&q)?;
    Ok(HttpResponse::Ok().json(state.store.product_events(None, after, limit).await?))
}

async fn tenant_events(
    p: Product,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<Feed>,
) -> Result<HttpResponse, AdminError> {
    let t = p.tenant(&state, &path).await?;
    let (after, limit) = page(&q)?;
    Ok(HttpResponse::Ok().json(state.store.product_events(Some(t), after, limit).await?))
}
