//! Thin actix-web handlers, one module per surface: [`scim`] under `/scim/v2`, [`admin`] under
//! `/admin/v1`, plus `/healthz` and `/readyz`. Handlers parse the request with the pure protocol
//! code, call one store operation and render the answer; they hold no business rules.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod body;
pub mod error;
pub mod holds;
pub mod licenses;
pub mod limits;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod paths;
pub mod product;
pub mod query;
pub mod reply;
pub mod scim;
pub mod scrape;
pub mod state;
pub mod table;
pub mod tls;
pub mod webhooks;

use std::time::Instant;

use actix_web::dev::Service as _;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpResponse};
use futures_util::FutureExt as _;
use tracing::Instrument as _;

pub use state::AppState;

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    ops_routes(cfg, with_metrics);
    cfg.service(scim::scope())
        .service(admin::scope())
        .service(product::scope())
        .service(crate::console::scope());
}

/// Every route the service listener registers, as (method, full path with `{name}`
/// parameters), from each surface's route table: SCIM, the admin API, the product API and the
/// console (health, readiness and metrics are not a tenant's). The cross-tenant matrix test
/// enumerates this.
pub fn route_table() -> Vec<(actix_web::http::Method, String)> {
    let mut all = scim::routes().table();
    all.extend(admin::routes().table());
    all.extend(product::routes().table());
    all.extend(crate::console::routes().table());
    all
}

/// Health, readiness and (when `with_metrics`) metrics: what the operations listener serves.
pub fn ops_routes(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
    if with_metrics {
        cfg.route("/metrics", web::get().to(scrape::metrics));
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// `/readyz`: the database answers. Checked at most once a second (every probe in between is
/// answered from the last check), so a flood of probes costs the database nothing.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let cached = state
        .ready
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .filter(|(at, _)| at.elapsed() < std::time::Duration::from_secs(1));
    let verdict = match cached {
        Some((_, v)) => v,
        None => {
            state
                .metrics
                .readiness_checks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let v = state.store.ping().await.err().map(|e| e.to_string());
            if let Ok(mut r) = state.ready.lock() {
                *r = Some((Instant::now(), v.clone()));
            }
            v
        }
    };
    match verdict {
        None => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Some(e) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!("not ready: {e}\n")),
    }
}

/// The route pattern a resource was registered with (`/admin/v1/tenants/{tenant}`), kept with
/// the resource so that the metrics label costs no second match of the path against every
/// route.
pub struct RoutePattern(pub String);

/// The metrics label of a handled request: its route's pattern, or `unmatched`.
fn route_of(req: &actix_web::HttpRequest) -> String {
    match req.app_data::<RoutePattern>() {
        Some(p) => p.0.clone(),
        None => req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned()),
    }
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Everything (no separate operations listener).
    All,
    /// SCIM, admin, health; metrics live on the operations listener.
    Service,
    /// Health, readiness and metrics only.
    Ops,
}

/// Builds the actix `App` for one worker.
pub fn app(
    state: web::Data<AppState>,
    surface: Surface,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(state)
        .app_data(web::Data::new(scrape::OpsListener(surface == Surface::Ops)))
        .configure(move |cfg| match surface {
            Surface::All => routes(cfg, true),
            Surface::Service => routes(cfg, false),
            Surface::Ops => ops_routes(cfg, true),
        })
        .default_service(web::to(|| async {
            HttpResponse::NotFound().json(serde_json::json!({"error": "not_found", "message": "no such endpoint"}))
        }))
        .wrap(actix_web::middleware::Condition::new(
            surface != Surface::Ops,
            actix_web::middleware::from_fn(per_address),
        ))
        .wrap_fn(|req, srv| {
            let start = Instant::now();
            let method = req.method().clone();
            let path = req.path().to_owned();
            let id = request_id(req.headers().get("x-request-id").and_then(|v| v.to_str().ok()));
            let plain_json = prefers_plain_json(req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()));
            let state = req.app_data::<web::Data<AppState>>().cloned();
            let span = tracing::info_span!("request", request_id = %id);
            let in_flight = crate::background::InFlight::enter();
            srv.call(req).instrument(span.clone()).map(move |res| {
                drop(in_flight);
                let _enter = span.enter();
                res.map(|mut r| {
                    let route = route_of(r.request());
                    tracing::info!(%method, %path, status = r.status().as_u16(), ms = start.elapsed().as_millis() as u64, "request");
                    if let Some(s) = &state {
                        s.metrics.observe(&route, method.as_str(), r.status().as_u16(), start.elapsed().as_secs_f64());
                        if r.status().as_u16() >= 400 {
                            failed_request(s, &r, &method, &route);
                        }
                    }
                    let h = r.headers_mut();
                    if plain_json && h.get(header::CONTENT_TYPE).is_some_and(|v| v == crate::scim::SCIM_MEDIA_TYPE) {
                        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    }
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        h.insert(HeaderName::from_static("x-request-id"), v);
                    }
                    for (name, value) in SECURITY_HEADERS {
                        // A page that sets its own (the console's CSP, a stylesheet's caching) keeps it.
                        let name = HeaderName::from_static(name);
                        if !h.contains_key(&name) {
                            h.insert(name, HeaderValue::from_static(value));
                        }
                    }
                    r
                })
            })
        })
        // Outermost, so routing, metrics and logs see the canonical path.
        .wrap_fn(|mut req, srv| {
            if let Some(path) = paths::canonical(req.path()) {
                let uri = with_path(req.uri(), &path);
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
            srv.call(req)
        })
}

/// The per-address request rate ([`limits::Limits::address`]) for every request whose
/// credential did not prove valid. A request without a credential is counted before anything
/// else runs; one that carries a bearer token or a session cookie runs first, and unless its
/// credential proved valid (an extractor marked it [`auth::Proven`]) it is counted then and
/// answered 429 when its address is over the rate, like a request with no credential: a junk
/// token or cookie buys nothing. A valid credential is limited by whose it is (its tenant's SCIM
/// rate, its admin or product token's bucket), so strangers at an address shared with a tenant
/// (a proxy, an identity provider's egress) can exhaust neither that tenant's rate nor its
/// address. Health and readiness are exempt (a load balancer probes them from one address).
async fn per_address(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage as _;
    use actix_web::ResponseError as _;
    if matches!(req.path(), "/healthz" | "/readyz") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let over = |r: &actix_web::HttpRequest| {
        let d = state.limits.address(state.limits.client(r))?;
        Some(
            error::Throttled {
                retry_after: limits::retry_after(d),
                admin: !r.path().starts_with("/scim/"),
                detail: "too many requests from this address",
            }
            .error_response(),
        )
    };
    let credentialed = req.headers().contains_key(header::AUTHORIZATION)
        || req.cookie(crate::console::session::COOKIE).is_some();
    if !credentialed {
        if let Some(answer) = over(req.request()) {
            return Ok(req.into_response(answer));
        }
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let res = next.call(req).await?;
    if res.request().extensions().contains::<auth::Proven>() {
        return Ok(res.map_into_boxed_body());
    }
    match over(res.request()) {
        Some(answer) => Ok(res.into_response(answer)),
        None => Ok(res.map_into_boxed_body()),
    }
}

/// `uri` with its path replaced by `path` (a canonical form of it), the query kept.
fn with_path(uri: &actix_web::http::Uri, path: &str) -> actix_web::http::Uri {
    let mut parts = uri.clone().into_parts();
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    parts.path_and_query = path_and_query.parse().ok();
    actix_web::http::Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// Counts a failed request of an authenticated tenant, in the store (`store::alerts`: every
/// node's failures add up there), which records the notification when the tenant's failures
/// reach the threshold.
fn failed_request<B>(
    state: &web::Data<AppState>,
    r: &actix_web::dev::ServiceResponse<B>,
    method: &actix_web::http::Method,
    route: &str,
) {
    use actix_web::HttpMessage as _;
    let Some(auth::TenantTag(tenant)) = r.request().extensions().get::<auth::TenantTag>().copied()
    else {
        return;
    };
    let (kind, detail) = r
        .response()
        .extensions()
        .get::<error::ErrorKind>()
        .map(|k| (k.0, k.1.clone()))
        .unwrap_or(("", String::new()));
    let status = r.status().as_u16();
    if crate::scim::explain::counts(method.as_str(), status) {
        // The provider's failure log: never a body or a credential, only what the answer said.
        let failed = crate::store::FailedRequest {
            method: method.to_string(),
            route: route.to_owned(),
            resource: r.request().path().to_owned(),
            status,
            scim_type: (!kind.is_empty()).then(|| kind.to_owned()),
            detail: detail.chars().take(300).collect(),
        };
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_provider_failure(tenant, failed).await {
                tracing::warn!(error = %e, "cannot record a failing request");
            }
        });
    }
    let threshold = state.config.scim_failure_threshold;
    if threshold == 0 {
        return;
    }
    let label = format!("{} {kind} on {method} {route}", r.status().as_u16()).replace("  ", " ");
    let window = (state.config.scim_failure_window_seconds as i64).saturating_mul(1000);
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store
            .count_failed_request(tenant, label, threshold, window)
            .await
        {
            tracing::warn!(error = %e, "cannot count a failing request");
        }
    });
}

/// Headers every answer carries: nothing here is to be sniffed, framed, cached or referred.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// RFC 7644 §3.8: a client that accepts `application/json` but not `application/scim+json`
/// (OneLogin requires this) gets SCIM bodies labelled `application/json`.
fn prefers_plain_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let types: Vec<&str> = accept
        .split(',')
        .filter_map(|t| t.split(';').next())
        .map(str::trim)
        .collect();
    types
        .iter()
        .any(|t| t.eq_ignore_ascii_case("application/json"))
        && !types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(crate::scim::SCIM_MEDIA_TYPE))
}

/// The client's `X-Request-Id` when it is a sane token (1 to 64 of `[A-Za-z0-9._-]`), else a new one.
fn request_id(given: Option<&str>) -> String {
    match given {
        Some(g)
            if !g.is_empty()
                && g.len() <= 64
                && g.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            g.to_owned()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}
