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

use actix_web::{dev::Payload, web, FromRequest, HttpMessage as _, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::bearer;
use super::error::{AdminError, Throttled};
use super::limits::retry_after;
use super::openapi::{Doc, Routes};
use super::reply::json_body;
use super::state::AppState;
use crate::store::{ProductGrant, ProductScope, TenantKey};

/// The product API's routes, each with its documentation (`super::openapi`).
pub fn routes() -> Routes {
    use crate::store::{ProductEvents, ProductSeat, ProductUserSeats, UsageReport};
    use actix_web::http::Method as M;
    Routes::new("/product/v1")
        .add(
            M::GET,
            "/openapi.json",
            openapi_json,
            Doc::new("This document: the product API's OpenAPI 3.1 description")
                .any_object("The document."),
        )
        .add(
            M::GET,
            "/events",
            all_events,
            feed_page(Doc::new(
                "The seat-event feed of every tenant (operator product token only)",
            ))
            .ok::<ProductEvents>("A page of events, each naming its tenant."),
        )
        .add(
            M::GET,
            "/tenants/{tenant}/events",
            tenant_events,
            feed_page(Doc::new("The tenant's seat-event feed"))
                .ok::<ProductEvents>("A page of events."),
        )
        .add(
            M::GET,
            "/tenants/{tenant}/users/{user}/seats",
            user_seats,
            Doc::new("A user's seats across the tenant's licenses")
                .describe("409 when an email address belongs to several users.")
                .ok::<ProductUserSeats>("The user and their seats."),
        )
        .add(
            M::GET,
            "/tenants/{tenant}/licenses/{license}/users/{user}",
            check,
            Doc::new("May this user use this license? The seat check")
                .query("reasons", "`true`: unless simply holding a seat, the group that entitles them (`entitledBy`) and why (`reason`), in words to show the person.")
                .ok::<ProductSeat>("The seat (state none when the user has no seat)."),
        )
        .add(
            M::POST,
            "/tenants/{tenant}/licenses/{license}/checks",
            checks,
            Doc::new("The seat check for up to 1000 users at once, in order")
                .query("reasons", "`true`: each answer with `entitledBy` and `reason` as the single check gives them.")
                .body::<Checks>()
                .list::<crate::store::ProductCheck>(
                    "results",
                    "One answer per user asked, in order.",
                ),
        )
        .add(
            M::POST,
            "/tenants/{tenant}/usage",
            usage,
            Doc::new("Report that users used licenses (up to 1000 events): their seats' last use")
                .body::<Usage>()
                .accepted::<UsageReport>("What was recorded and what named no seat."),
        )
}

pub fn scope() -> actix_web::Scope {
    routes().into_scope(|s| {
        // A query string that does not parse is a JSON 400 like every other refusal here.
        s.app_data(web::QueryConfig::default().error_handler(|e, _| {
            AdminError::bad_request(format!("invalid query string: {e}")).into()
        }))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(AdminError::new(
                404,
                "not_found",
                "no such product endpoint",
            ))
        }))
    })
}

/// `GET /product/v1/openapi.json`: made once from the route table.
async fn openapi_json() -> HttpResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| {
        routes()
            .document(
                "seatkeeper product API",
                "What the vendor's product asks when a user signs in: the user's seats, the seat check alone or in a batch, the seat-event feed, and usage reports. Every request carries `Authorization: Bearer` with a product token (`skp_...`): a tenant's reads that tenant, an operator's every tenant. `{tenant}` is a tenant's id or name, `{license}` a license's id or name.",
                "A product token (skp_...).",
            )
            .to_json()
            .unwrap_or_default()
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.clone())
}

/// Proof that the request carries a valid product token, and whose.
pub struct Product(pub ProductGrant);

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
        Some(grant) => {
            req.extensions_mut().insert(super::auth::Proven);
            if let Some(d) = state.limits.product(&grant.credential, 1) {
                return Err(over_rate(d));
            }
            Ok(Product(grant))
        }
        None => Err(fail("the product token is not valid")),
    }
}

/// 429 for a product token over `product_requests_per_second`.
fn over_rate(d: std::time::Duration) -> actix_web::Error {
    Throttled {
        retry_after: retry_after(d),
        admin: true,
        detail: "too many product API requests for this token",
    }
    .into()
}

impl Product {
    /// Counts the rest of a batch of `n` (the request itself counted one).
    fn batch(&self, state: &AppState, n: usize) -> Result<(), actix_web::Error> {
        let more = u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX);
        match state.limits.product(&self.0.credential, more) {
            Some(d) => Err(over_rate(d)),
            None => Ok(()),
        }
    }

    /// The tenant named `key`, if this token may read it. A tenant it may not read answers as
    /// one that does not exist: a token learns nothing about other tenants. A tenant's token is
    /// authorized against its own tenant (the path is never resolved for it); only an operator
    /// token resolves the name, under a cache entry that only it can find.
    async fn tenant(&self, state: &AppState, key: &str) -> Result<TenantKey, AdminError> {
        let missing = || AdminError::new(404, "not_found", format!("tenant {key:?} not found"));
        let found = match &self.0.tenant {
            Some(own) => match state.store.path_names(own, key).await? {
                true => Ok(own.key),
                false => return Err(missing()),
            },
            None => state
                .store
                .tenant_for_operator(&self.0.credential, key)
                .await
                .map(|t| t.key),
        };
        let found = match found {
            // A closed tenant answers as one that does not exist, to every product token.
            Ok(t) if self.0.tenant.is_none() => match state.store.tenant_by_key(t).await {
                Ok(tenant) if tenant.closed.is_some() => return Err(missing()),
                _ => Ok(t),
            },
            other => other,
        };
        match found {
            Ok(t) if self.0.scope.may(t) => Ok(t),
            Ok(_) | Err(crate::store::Error::NotFound(_)) => Err(missing()),
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

/// `?reasons=true`: anyone not simply holding a seat is told why, and which group entitles
/// them (to show the person); without it the check stays one lean read.
fn reasons(req: &actix_web::HttpRequest) -> Result<bool, AdminError> {
    match super::reply::query_param(req, "reasons")?.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(AdminError::bad_request("reasons must be true or false")),
    }
}

async fn check(
    p: Product,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (t, license, user) = path.into_inner();
    let t = p.tenant(&state, &t).await?;
    let reasons = reasons(&req)?;
    Ok(HttpResponse::Ok().json(state.store.product_check(t, license, user, reasons).await?))
}

/// Users to check, as the product knows them (any form `{user}` takes).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Checks {
    users: Vec<String>,
}

async fn checks(
    p: Product,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let (t, license) = path.into_inner();
    let t = p.tenant(&state, &t).await?;
    let reasons = reasons(&req)?;
    let body: Checks = json_body(payload, &state).await?;
    p.batch(&state, body.users.len())?;
    let results = state
        .store
        .product_checks(t, license, body.users, reasons)
        .await
        .map_err(AdminError::from)?;
    Ok(HttpResponse::Ok().json(json!({ "results": results })))
}

/// Uses of licenses by users.
#[derive(Deserialize, utoipa::ToSchema)]
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
) -> Result<HttpResponse, actix_web::Error> {
    let t = p.tenant(&state, &path).await?;
    let body: Usage = json_body(payload, &state).await?;
    p.batch(&state, body.events.len())?;
    let report = state
        .store
        .record_usage(t, body.events)
        .await
        .map_err(AdminError::from)?;
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
    if p.0.scope != ProductScope::Operator {
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

/// The query parameters of a page of the event feed.
fn feed_page(doc: Doc) -> Doc {
    doc.query_int(
        "after",
        "Read events after this cursor (the `next` of the previous page).",
    )
    .query_int(
        "limit",
        "At most this many events (1 to 1000, default 1000).",
    )
}
