//! The admin web console under `/console/`: server-rendered HTML (maud), a stylesheet and a
//! few lines of progressive-enhancement script embedded in the binary, no external network.
//!
//! - Sign-in with the operator's admin token, or a tenant admin token (`ska_...`, that tenant
//!   only), entered once; the session lives in a `Secure; HttpOnly; SameSite=Strict` cookie
//!   ([`session`]). Every form carries the session's CSRF token; every POST also checks `Origin`.
//! - Pages: tenants (create, SCIM URL and tokens for the provider, status), a tenant (tokens,
//!   recipients, licenses), a license (gauge, usage chart, groups with the "Group Select"
//!   picker, seat count with a preview before saving, policy), seats (search, pages, pin /
//!   exclude / grant, CSV), activity (audit, seat events, notifications with retry), holds
//!   (the circuit breaker's held seat losses, approved or rejected).
//!
//! Handlers call the same store operations as the admin API; they hold no business rules. They
//! are split like the HTTP layer: `auth` (sign-in and out), `tenants`, `licenses` (a
//! license, its seats and their actions), `activity`, `holds`, `provisioning` (the provider's
//! failing requests); this module keeps the routes, the error
//! page ([`Error`], worded from `store::Failure` with the API's statuses) and the request
//! helpers (session, CSRF and origin checks).

mod activity;
mod activity_page;
pub mod assets;
mod auth;
pub mod chart;
mod groups;
mod holds;
mod license_pages;
mod licenses;
mod pages;
mod people;
mod planning;
mod provisioning;
pub mod sentences;
pub mod session;
mod shadow;
mod tenants;
mod webhooks;

use activity::*;
use auth::*;
use holds::*;
use licenses::*;
use people::{group, person};
use planning::true_up_csv;
use provisioning::provisioning;
use tenants::*;
use webhooks::*;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use maud::Markup;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::state::AppState;
use crate::http::table::Listed;
use crate::store::{self, LicenseChange, Selector};
use session::{Scope, Session};

/// What a console request can fail with; each renders as a page (or a redirect to sign in).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sign in first")]
    SignIn,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// It clashes with what exists (409, as the admin API answers).
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the form has expired or did not come from this console; reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    Unavailable(String),
    /// Too many failed authentications from this address: retry after this many seconds.
    #[error("too many failed sign-ins from this address; try again in {0} s")]
    Throttled(u64),
    #[error("internal error")]
    Internal,
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        use store::Failure as F;
        match e.classify() {
            F::NotFound(m) => Error::NotFound(m),
            F::Conflict(m) => Error::Conflict(m),
            F::Precondition => Error::Conflict("changed meanwhile; reload and try again".into()),
            F::Scim(e) => Error::Invalid(e.detail),
            F::Invalid(m) => Error::Invalid(m),
            F::ShuttingDown => Error::Unavailable(F::SHUTTING_DOWN.into()),
            F::Busy => {
                Error::Unavailable("too many changes are waiting; try again in a moment".into())
            }
            F::Unavailable => Error::Unavailable(F::UNAVAILABLE.into()),
            F::Contention => Error::Unavailable(F::CONTENTION.into()),
            F::TooMany(_, after) => Error::Throttled(after),
            F::Internal => Error::Internal,
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> actix_web::http::StatusCode {
        use actix_web::http::StatusCode as S;
        match self {
            Error::SignIn => S::SEE_OTHER,
            Error::Forbidden(_) | Error::Csrf => S::FORBIDDEN,
            Error::NotFound(_) => S::NOT_FOUND,
            Error::Invalid(_) => S::BAD_REQUEST,
            Error::Conflict(_) => S::CONFLICT,
            Error::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            Error::Throttled(_) => S::TOO_MANY_REQUESTS,
            Error::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        if let Error::SignIn = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/login"))
                .finish();
        }
        let mut r = html(self.status_code(), pages::error_page(&self.to_string()));
        if let Error::Throttled(secs) = self {
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: actix_web::http::StatusCode, body: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("content-security-policy", CSP))
        // `no-referrer` (the service's default) makes browsers send `Origin: null` on form
        // posts, which the origin check below must refuse; same-origin keeps it meaningful.
        .insert_header(("referrer-policy", "same-origin"))
        .body(body.into_string())
}

fn ok(body: Markup) -> Result<HttpResponse> {
    Ok(html(actix_web::http::StatusCode::OK, body))
}

fn see_other(to: &str) -> Result<HttpResponse> {
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish())
}

/// The console's routes.
pub fn routes() -> Listed {
    use actix_web::http::Method as M;
    Listed::new("/console")
        .route(M::GET, "", root)
        .route(M::GET, "/", home)
        .route(M::GET, "/static/app.css", css)
        .route(M::GET, "/static/app.js", js)
        .route(M::GET, "/login", login_page)
        .route(M::POST, "/login", login)
        .route(M::POST, "/logout", logout)
        .route(M::GET, "/tenants", tenants)
        .route(M::POST, "/tenants", create_tenant)
        .route(M::GET, "/tenants/{t}", tenant)
        .route(M::POST, "/tenants/{t}/settings", tenant_settings)
        .route(M::POST, "/tenants/{t}/delete", delete_tenant)
        .route(M::POST, "/tenants/{t}/tokens", issue_token)
        .route(M::POST, "/tenants/{t}/tokens/{id}/revoke", revoke_token)
        .route(M::POST, "/tenants/{t}/product-tokens", issue_product_token)
        .route(
            M::POST,
            "/tenants/{t}/product-tokens/{id}/revoke",
            revoke_product_token,
        )
        .route(M::POST, "/tenants/{t}/webhooks", create_webhook)
        .route(M::POST, "/tenants/{t}/webhooks/{id}/rotate", rotate_webhook)
        .route(
            M::POST,
            "/tenants/{t}/webhooks/{id}/{action}",
            change_webhook,
        )
        .route(M::POST, "/tenants/{t}/licenses", create_license)
        .route(M::GET, "/tenants/{t}/licenses/{l}", license)
        .route(M::POST, "/tenants/{t}/licenses/{l}/groups", license_groups)
        .route(
            M::POST,
            "/tenants/{t}/licenses/{l}/preview",
            license_preview,
        )
        .route(
            M::POST,
            "/tenants/{t}/licenses/{l}/settings",
            license_settings,
        )
        .route(M::GET, "/tenants/{t}/licenses/{l}/shadow", shadow::shadow)
        .route(M::POST, "/tenants/{t}/licenses/{l}/mode", shadow::mode)
        .route(
            M::POST,
            "/tenants/{t}/licenses/{l}/holders",
            shadow::holders,
        )
        .route(M::GET, "/tenants/{t}/licenses/{l}/seats", seats)
        .route(M::GET, "/tenants/{t}/licenses/{l}/true-up.csv", true_up_csv)
        .route(M::GET, "/tenants/{t}/licenses/{l}/seats.csv", seats_csv)
        .route(
            M::POST,
            "/tenants/{t}/licenses/{l}/seats/{user}",
            seat_action,
        )
        .route(M::GET, "/tenants/{t}/activity", activity)
        .route(M::GET, "/tenants/{t}/activity.csv", activity_csv)
        .route(M::GET, "/tenants/{t}/provisioning", provisioning)
        .route(M::GET, "/tenants/{t}/people/{user}", person)
        .route(M::GET, "/tenants/{t}/groups/{g}", group)
        .route(M::GET, "/tenants/{t}/holds", holds)
        .route(M::POST, "/tenants/{t}/holds/{id}/{action}", hold_action)
        .route(
            M::POST,
            "/tenants/{t}/notifications/{id}/{action}",
            notification_action,
        )
}

pub fn scope() -> actix_web::Scope {
    routes().into_scope(|s| s)
}

async fn root() -> Result<HttpResponse> {
    see_other("/console/")
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(assets::CSS)
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(assets::JS)
}

/// The admin API's gate applies here too (`http::auth::admin_gate`).
fn gate(req: &HttpRequest, state: &AppState) -> Result<()> {
    use crate::http::auth::Shut;
    crate::http::auth::admin_gate(req, &state.config).map_err(|shut| match shut {
        Shut::Off => Error::Unavailable(
            "the console is off, like the admin API: set admin_token (SEATKEEPER_ADMIN_TOKEN) or admin_token_file".into(),
        ),
        Shut::LoopbackOnly => Error::Forbidden(
            "the console answers loopback clients only; set admin_remote = true to open it".into(),
        ),
    })
}

/// The signed-in session of a request. A session cookie that names no live session counts as
/// a failed authentication of its address, as a wrong token does.
async fn session(req: &HttpRequest, state: &AppState) -> Result<Session> {
    use actix_web::HttpMessage as _;
    gate(req, state)?;
    let id = req.cookie(session::COOKIE).ok_or(Error::SignIn)?;
    let found = session::get(
        &state.store,
        id.value(),
        state.store.now_ms(),
        state.config.admin_token.as_ref().map(|t| t.0.as_str()),
    )
    .await?;
    match found {
        Some(s) => {
            req.extensions_mut().insert(crate::http::auth::Proven);
            Ok(s)
        }
        None => match state.limits.failure(state.limits.client(req)) {
            Some(d) => Err(Error::Throttled(crate::http::limits::retry_after(d))),
            None => Err(Error::SignIn),
        },
    }
}

/// A signed-in console request on one tenant (`/console/tenants/{t}/...`): the session and the
/// tenant the path names (one the session may see), resolved once before the handler runs.
pub(super) struct Visit {
    pub req: HttpRequest,
    pub state: web::Data<AppState>,
    pub s: Session,
    pub t: store::Tenant,
}

impl actix_web::FromRequest for Visit {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<Visit, Self::Error>>>,
    >;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or(Error::Internal)?;
            let s = session(&req, &state).await?;
            let key = req.match_info().get("t").unwrap_or_default().to_owned();
            let t = tenant_of(&state, &s, &key).await?;
            Ok(Visit { req, state, s, t })
        })
    }
}

impl Visit {
    /// For a POST: the request is same-origin and the form's CSRF token matches the session's.
    pub fn posted(&self, csrf: &str) -> Result<()> {
        checked(&self.req, &self.s, csrf)
    }

    /// The store.
    pub fn store(&self) -> &store::Store {
        &self.state.store
    }
}

/// A POST's session: signed in, same origin, and the form's CSRF token matches.
async fn posted(req: &HttpRequest, state: &AppState, csrf: &str) -> Result<Session> {
    let s = session(req, state).await?;
    checked(req, &s, csrf)?;
    Ok(s)
}

/// A POST of session `s` is same-origin and its form's CSRF token matches the session's.
fn checked(req: &HttpRequest, s: &Session, csrf: &str) -> Result<()> {
    same_origin(req)?;
    if !s.csrf_ok(csrf) {
        return Err(Error::Csrf);
    }
    Ok(())
}

fn same_origin(req: &HttpRequest) -> Result<()> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let host = req.connection_info().host().to_owned();
    let origin = origin.to_str().unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if origin_host.eq_ignore_ascii_case(&host) {
        Ok(())
    } else {
        Err(Error::Csrf)
    }
}

/// The tenant named in the path, if the session may see it: a tenant's session is authorized
/// against its own tenant (the path is never resolved for it); the operator's resolves it.
async fn tenant_of(state: &AppState, s: &Session, key: &str) -> Result<store::Tenant> {
    let missing = || Error::NotFound(format!("tenant {key:?} not found"));
    match s.scope {
        session::Scope::Tenant(own) => {
            let t = state.store.tenant_by_key(own).await?;
            if !state.store.path_names(&t, key).await? {
                return Err(missing());
            }
            Ok(t)
        }
        session::Scope::Operator => state.store.tenant(key).await.map_err(|e| match e {
            store::Error::NotFound(_) => missing(),
            e => e.into(),
        }),
    }
}

fn scim_url(req: &HttpRequest, state: &AppState) -> String {
    crate::http::scim::base_url(req, state)
}

fn cookie(name: &'static str, value: String, path: &'static str) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .finish()
}

/// `{id}` of a path.
#[derive(Deserialize)]
struct OfId {
    id: String,
}

/// `{id}` and `{action}` of a path.
#[derive(Deserialize)]
struct OfAction<Id = String> {
    id: Id,
    action: String,
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[derive(Deserialize, Default)]
struct Notice {
    notice: Option<String>,
}

/// A duration the console asks in hours (`2`, `0.5`, `72`), as seconds.
fn opt_hours(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => match t.replace(',', ".").parse::<f64>() {
            Ok(h) if h.is_finite() && (0.0..=1_000_000.0).contains(&h) => {
                Ok(Some((h * 3600.0).round() as i64))
            }
            _ => Err(Error::Invalid(format!("{name} must be a number of hours"))),
        },
    }
}

/// Seconds as hours for a form's value (`7200` → `2`, `1800` → `0.5`).
fn hours(seconds: i64) -> String {
    let h = seconds as f64 / 3600.0;
    let s = format!("{h:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn opt_number(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| Error::Invalid(format!("{name} must be a whole number"))),
    }
}
