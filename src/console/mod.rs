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
//! license, its seats and their actions), `activity`, `holds`; this module keeps the routes, the error
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
mod planning;
mod sentences;
pub mod session;
mod tenants;
mod webhooks;

use activity::*;
use auth::*;
use holds::*;
use licenses::*;
use planning::true_up_csv;
use tenants::*;
use webhooks::*;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use maud::Markup;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::AppState;
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
            Error::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        if let Error::SignIn = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/login"))
                .finish();
        }
        html(self.status_code(), pages::error_page(&self.to_string()))
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

pub fn scope() -> actix_web::Scope {
    web::scope("/console")
        .route("", web::get().to(|| async { see_other("/console/") }))
        .route("/", web::get().to(home))
        .route("/static/app.css", web::get().to(css))
        .route("/static/app.js", web::get().to(js))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/tenants", web::get().to(tenants))
        .route("/tenants", web::post().to(create_tenant))
        .route("/tenants/{t}", web::get().to(tenant))
        .route("/tenants/{t}/settings", web::post().to(tenant_settings))
        .route("/tenants/{t}/tokens", web::post().to(issue_token))
        .route(
            "/tenants/{t}/tokens/{id}/revoke",
            web::post().to(revoke_token),
        )
        .route(
            "/tenants/{t}/product-tokens",
            web::post().to(issue_product_token),
        )
        .route(
            "/tenants/{t}/product-tokens/{id}/revoke",
            web::post().to(revoke_product_token),
        )
        .route("/tenants/{t}/webhooks", web::post().to(create_webhook))
        .route(
            "/tenants/{t}/webhooks/{id}/rotate",
            web::post().to(rotate_webhook),
        )
        .route(
            "/tenants/{t}/webhooks/{id}/{action}",
            web::post().to(change_webhook),
        )
        .route("/tenants/{t}/licenses", web::post().to(create_license))
        .route("/tenants/{t}/licenses/{l}", web::get().to(license))
        .route(
            "/tenants/{t}/licenses/{l}/groups",
            web::post().to(license_groups),
        )
        .route(
            "/tenants/{t}/licenses/{l}/preview",
            web::post().to(license_preview),
        )
        .route(
            "/tenants/{t}/licenses/{l}/settings",
            web::post().to(license_settings),
        )
        .route("/tenants/{t}/licenses/{l}/seats", web::get().to(seats))
        .route(
            "/tenants/{t}/licenses/{l}/true-up.csv",
            web::get().to(true_up_csv),
        )
        .route(
            "/tenants/{t}/licenses/{l}/seats.csv",
            web::get().to(seats_csv),
        )
        .route(
            "/tenants/{t}/licenses/{l}/seats/{user}",
            web::post().to(seat_action),
        )
        .route("/tenants/{t}/activity", web::get().to(activity))
        .route("/tenants/{t}/holds", web::get().to(holds))
        .route(
            "/tenants/{t}/holds/{id}/{action}",
            web::post().to(hold_action),
        )
        .route(
            "/tenants/{t}/notifications/{id}/{action}",
            web::post().to(notification_action),
        )
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

/// The admin API's gate applies here too: off without an admin token, loopback only unless
/// `admin_remote`.
fn gate(req: &HttpRequest, state: &AppState) -> Result<()> {
    if state.config.admin_token.is_none() {
        return Err(Error::Unavailable(
            "the console is off, like the admin API: set admin_token (SEATKEEPER_ADMIN_TOKEN) or admin_token_file".into(),
        ));
    }
    if !state.config.admin_remote && !req.peer_addr().is_some_and(|a| a.ip().is_loopback()) {
        return Err(Error::Forbidden(
            "the console answers loopback clients only; set admin_remote = true to open it".into(),
        ));
    }
    Ok(())
}

/// The signed-in session of a request.
async fn session(req: &HttpRequest, state: &AppState) -> Result<Session> {
    gate(req, state)?;
    let id = req.cookie(session::COOKIE).ok_or(Error::SignIn)?;
    session::get(&state.store, id.value(), state.store.now_ms())
        .await?
        .ok_or(Error::SignIn)
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

/// The tenant named in the path, if the session may see it.
async fn tenant_of(state: &AppState, s: &Session, key: &str) -> Result<store::Tenant> {
    let t = state.store.tenant(key).await?;
    if !s.may(t.key) {
        return Err(Error::NotFound(format!("tenant {key:?} not found")));
    }
    Ok(t)
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

fn opt_number(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| Error::Invalid(format!("{name} must be a whole number"))),
    }
}
