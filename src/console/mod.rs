//! The admin web console under `/console/`: server-rendered HTML (maud), a stylesheet and a
//! few lines of progressive-enhancement script embedded in the binary, no external network.
//!
//! - Sign-in with the operator's admin token, or a tenant admin token (`ska_...`, that tenant
//!   only), entered once; the session lives in a `Secure; HttpOnly; SameSite=Strict` cookie
//!   ([`session`]). Every form carries the session's CSRF token; every POST also checks `Origin`.
//! - Pages: tenants (create, SCIM URL and tokens for the provider, status), a tenant (tokens,
//!   recipients, licenses), a license (gauge, usage chart, groups with the "Group Select"
//!   picker, seat count with a preview before saving, policy), seats (search, pages, pin /
//!   exclude / grant, CSV), activity (audit, seat events, notifications with retry).
//!
//! Handlers call the same store operations as the admin API; they hold no business rules.

pub mod assets;
pub mod chart;
mod pages;
pub mod session;

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
            "/tenants/{t}/licenses/{l}/seats.csv",
            web::get().to(seats_csv),
        )
        .route(
            "/tenants/{t}/licenses/{l}/seats/{user}",
            web::post().to(seat_action),
        )
        .route("/tenants/{t}/activity", web::get().to(activity))
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

/// A POST's session: signed in, same origin, and the form's CSRF token matches.
async fn posted(req: &HttpRequest, state: &AppState, csrf: &str) -> Result<Session> {
    let s = session(req, state).await?;
    same_origin(req)?;
    if !s.csrf_ok(csrf) {
        return Err(Error::Csrf);
    }
    Ok(s)
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

async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    match s.scope {
        Scope::Operator => see_other("/console/tenants"),
        Scope::Tenant(t) => {
            let id = state
                .store
                .list_tenants()
                .await?
                .into_iter()
                .find(|x| x.key == t)
                .map(|x| x.id)
                .ok_or(Error::SignIn)?;
            see_other(&format!("/console/tenants/{id}"))
        }
    }
}

async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    gate(&req, &state)?;
    let token = session::random_token();
    let mut r = html(actix_web::http::StatusCode::OK, pages::login(&token, None));
    let _ = r.add_cookie(&cookie(session::LOGIN_COOKIE, token, "/console/login"));
    Ok(r)
}

fn cookie(name: &'static str, value: String, path: &'static str) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .finish()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    csrf: String,
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse> {
    gate(&req, &state)?;
    same_origin(&req)?;
    let expected = req
        .cookie(session::LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Err(Error::Csrf);
    }
    let client = state.limits.client(&req);
    // The admin API's own check: the operator's token or a tenant admin token.
    let scope = match crate::http::auth::admin_identity(&state, form.token.trim()).await? {
        Some(crate::http::auth::AdminIdentity::Operator) => Some(Scope::Operator),
        Some(crate::http::auth::AdminIdentity::Tenant { tenant, .. }) => {
            Some(Scope::Tenant(tenant.key))
        }
        None => None,
    };
    // A valid token signs in whatever else came from its address; failures are braked.
    let Some(scope) = scope else {
        if state.limits.failure(client).is_some() {
            return Err(Error::Forbidden(
                "too many failed sign-ins from this address; wait a minute".into(),
            ));
        }
        let token = session::random_token();
        let mut r = html(
            actix_web::http::StatusCode::UNAUTHORIZED,
            pages::login(&token, Some("That token is not valid.")),
        );
        let _ = r.add_cookie(&cookie(session::LOGIN_COOKIE, token, "/console/login"));
        return Ok(r);
    };
    let s = session::create(&state.store, scope, state.store.now_ms()).await?;
    let mut r = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/"))
        .finish();
    let _ = r.add_cookie(&cookie(session::COOKIE, s.id, "/console"));
    let mut gone = cookie(session::LOGIN_COOKIE, String::new(), "/console/login");
    gone.make_removal();
    let _ = r.add_cookie(&gone);
    Ok(r)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    session::remove(&state.store, &s.id).await?;
    let mut r = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/login"))
        .finish();
    let mut gone = cookie(session::COOKIE, String::new(), "/console");
    gone.make_removal();
    let _ = r.add_cookie(&gone);
    Ok(r)
}

#[derive(Deserialize, Default)]
struct Notice {
    notice: Option<String>,
}

async fn tenants(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<Notice>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    if s.scope != Scope::Operator {
        return home(req, state).await;
    }
    let mut rows = Vec::new();
    for t in state.store.list_tenants().await? {
        let status = state.store.status(t.key).await?;
        rows.push((t, status));
    }
    ok(pages::tenants(
        &s,
        &rows,
        &scim_url(&req, &state),
        q.notice.as_deref(),
    ))
}

#[derive(Deserialize)]
struct NewTenant {
    csrf: String,
    name: String,
    #[serde(default)]
    notify: String,
}

/// Recipients as typed in the console: addresses separated by commas, spaces or lines; a line
/// `it@contoso.com: blocked threshold` limits that address to those kinds.
fn recipients(text: &str) -> Result<Vec<crate::notify::Recipient>> {
    let mut out = Vec::new();
    for line in text
        .split(['\n', ';'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if line.contains(':') {
            out.push(crate::notify::Recipient::parse_line(line).map_err(Error::Invalid)?);
        } else {
            out.extend(
                line.split([',', ' '])
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(|e| crate::notify::Recipient::All(e.to_owned())),
            );
        }
    }
    Ok(out)
}

async fn create_tenant(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<NewTenant>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    if s.scope != Scope::Operator {
        return Err(Error::Forbidden("only the operator creates tenants".into()));
    }
    let t = state
        .store
        .create_tenant(form.name.clone(), recipients(&form.notify)?)
        .await?;
    see_other(&format!("/console/tenants/{}?notice=tenant-created", t.id))
}

async fn tenant_page(
    req: &HttpRequest,
    state: &AppState,
    s: &Session,
    key: &str,
    new_token: Option<pages::NewToken>,
    notice: Option<&str>,
) -> Result<HttpResponse> {
    let t = tenant_of(state, s, key).await?;
    let tokens = state.store.list_tokens(t.key).await?;
    let product_tokens = state.store.list_product_tokens(Some(t.key)).await?;
    let status = state.store.status(t.key).await?;
    let licenses = state.store.list_licenses(t.key).await?;
    ok(pages::tenant(
        s,
        &t,
        &tokens,
        &product_tokens,
        &status,
        &licenses,
        &scim_url(req, state),
        new_token,
        notice,
    ))
}

async fn tenant(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<Notice>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    tenant_page(&req, &state, &s, &path, None, q.notice.as_deref()).await
}

#[derive(Deserialize)]
struct TenantSettings {
    csrf: String,
    #[serde(default)]
    notify: String,
    expected_sync_seconds: Option<String>,
    pending_window_seconds: Option<String>,
    time_zone: Option<String>,
    /// `off`, or a day of the week.
    weekly_day: Option<String>,
    weekly_hour: Option<String>,
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

/// The weekly summary the settings form asks for; `None` when it leaves it as it is.
fn weekly_of(
    form: &TenantSettings,
    t: &store::Tenant,
) -> Result<Option<Option<crate::notify::when::Weekly>>> {
    let Some(day) = form.weekly_day.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if day == "off" {
        return Ok((t.weekly_summary.is_some()).then_some(None));
    }
    let day: crate::notify::when::Day = serde_json::from_value(serde_json::json!(day))
        .map_err(|_| Error::Invalid(format!("{day:?} is not a day of the week")))?;
    let hour = opt_number("weekly_hour", &form.weekly_hour)?.unwrap_or(8);
    let w = crate::notify::when::Weekly {
        day,
        hour: i8::try_from(hour).unwrap_or(-1),
    };
    Ok((t.weekly_summary != Some(w)).then_some(Some(w)))
}

async fn tenant_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<TenantSettings>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let t = tenant_of(&state, &s, &path).await?;
    state
        .store
        .update_tenant(
            t.key,
            store::TenantChange {
                notify: Some(recipients(&form.notify)?),
                expected_sync_seconds: opt_number(
                    "expected_sync_seconds",
                    &form.expected_sync_seconds,
                )?,
                pending_window_seconds: opt_number(
                    "pending_window_seconds",
                    &form.pending_window_seconds,
                )?,
                time_zone: form
                    .time_zone
                    .as_deref()
                    .map(str::trim)
                    .filter(|z| !z.is_empty())
                    .map(str::to_owned),
                weekly_summary: weekly_of(&form, &t)?,
            },
            "console",
        )
        .await?;
    see_other(&format!("/console/tenants/{}?notice=settings-saved", t.id))
}

async fn issue_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let t = tenant_of(&state, &s, &path).await?;
    let (info, token) = state.store.issue_token(t.key, None).await?;
    // Rendered, not redirected: the token is shown this once.
    tenant_page(
        &req,
        &state,
        &s,
        &t.id,
        Some(pages::NewToken::Scim(info.id, token)),
        None,
    )
    .await
}

async fn issue_product_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let t = tenant_of(&state, &s, &path).await?;
    let (info, token) = state.store.issue_product_token(Some(t.key)).await?;
    // Rendered, not redirected: the token is shown this once.
    tenant_page(
        &req,
        &state,
        &s,
        &t.id,
        Some(pages::NewToken::Product(info.id, token)),
        None,
    )
    .await
}

async fn revoke_product_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (key, id) = path.into_inner();
    let t = tenant_of(&state, &s, &key).await?;
    state.store.revoke_product_token(Some(t.key), id).await?;
    see_other(&format!("/console/tenants/{}?notice=token-revoked", t.id))
}

async fn revoke_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (key, id) = path.into_inner();
    let t = tenant_of(&state, &s, &key).await?;
    state.store.revoke_token(t.key, id).await?;
    see_other(&format!("/console/tenants/{}?notice=token-revoked", t.id))
}

#[derive(Deserialize)]
struct NewLicense {
    csrf: String,
    name: String,
    seats: String,
}

async fn create_license(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<NewLicense>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let t = tenant_of(&state, &s, &path).await?;
    let seats = opt_number("seats", &Some(form.seats.clone()))?
        .ok_or_else(|| Error::Invalid("give the number of seats".into()))?;
    let spec: store::LicenseSpec =
        serde_json::from_value(serde_json::json!({"name": form.name, "seats": seats}))
            .map_err(|e| Error::Invalid(e.to_string()))?;
    let l = state.store.create_license(t.key, spec, "console").await?;
    see_other(&format!(
        "/console/tenants/{}/licenses/{}?notice=license-created",
        t.id, l.id
    ))
}

#[derive(Deserialize, Default)]
struct LicenseQuery {
    notice: Option<String>,
    /// The group picker is open (with this search).
    pick: Option<String>,
    q: Option<String>,
}

async fn license_page(
    state: &AppState,
    s: &Session,
    tkey: &str,
    lkey: &str,
    query: &LicenseQuery,
    preview: Option<(i64, store::PreviewView)>,
) -> Result<HttpResponse> {
    let t = tenant_of(state, s, tkey).await?;
    let l = state.store.license(t.key, lkey.to_owned()).await?;
    let history = state
        .store
        .seat_history(t.key, l.id.clone(), 20_000)
        .await?;
    let history: Vec<chart::Point> = history
        .into_iter()
        .map(|p| chart::Point {
            at: p.at,
            in_use: p.in_use,
            waiting: p.waiting,
        })
        .collect();
    let chart = chart::svg(&history, l.seats, state.store.now_ms());
    let picker = match &query.pick {
        Some(_) => Some(
            state
                .store
                .search_groups(t.key, query.q.clone().unwrap_or_default(), 50)
                .await?,
        ),
        None => None,
    };
    ok(pages::license(
        s,
        &t,
        &l,
        &chart,
        picker.as_deref(),
        query.q.as_deref().unwrap_or(""),
        preview,
        query.notice.as_deref(),
    ))
}

async fn license(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<LicenseQuery>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    let (t, l) = path.into_inner();
    license_page(&state, &s, &t, &l, &q, None).await
}

#[derive(Deserialize)]
struct GroupForm {
    csrf: String,
    action: String,
    kind: String,
    value: String,
}

fn selector(kind: &str, value: String) -> Result<Selector> {
    Ok(match kind {
        "id" => Selector::Id(value),
        "externalId" => Selector::ExternalId(value),
        "displayName" => Selector::DisplayName(value),
        _ => return Err(Error::Invalid(format!("unknown selector kind {kind:?}"))),
    })
}

fn selectors_of(l: &store::LicenseView) -> Vec<Selector> {
    l.groups.iter().map(|g| g.selector.clone()).collect()
}

async fn license_groups(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (tk, lk) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
    let l = state.store.license(t.key, lk).await?;
    let value = form.value.trim().to_owned();
    if value.is_empty() {
        return Err(Error::Invalid("name a group".into()));
    }
    let target = selector(&form.kind, value)?;
    let mut groups = selectors_of(&l);
    match form.action.as_str() {
        "add" if !groups.contains(&target) => groups.push(target),
        "add" => {}
        "remove" => groups.retain(|g| *g != target),
        other => return Err(Error::Invalid(format!("unknown action {other:?}"))),
    }
    let change = LicenseChange {
        groups: Some(groups),
        ..Default::default()
    };
    state
        .store
        .update_license(t.key, l.id.clone(), change, "console")
        .await?;
    see_other(&format!(
        "/console/tenants/{}/licenses/{}?notice=selection-saved",
        t.id, l.id
    ))
}

#[derive(Deserialize)]
struct SeatsForm {
    csrf: String,
    seats: String,
}

async fn license_preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<SeatsForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (tk, lk) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
    let seats = opt_number("seats", &Some(form.seats.clone()))?
        .ok_or_else(|| Error::Invalid("give the number of seats".into()))?;
    let p = state
        .store
        .preview(t.key, lk.clone(), Some(seats), None)
        .await?;
    license_page(
        &state,
        &s,
        &t.id,
        &lk,
        &LicenseQuery::default(),
        Some((seats, p)),
    )
    .await
}

#[derive(Deserialize)]
struct LicenseSettings {
    csrf: String,
    seats: Option<String>,
    auto_promote: Option<String>,
    grace_seconds: Option<String>,
    on_capacity_lowered: Option<String>,
    free_on_delete: Option<String>,
    /// The license's own recipients (the policy form).
    notify: Option<String>,
    reclaim_idle_days: Option<String>,
    reclaim_notice_days: Option<String>,
    /// Which form was sent: "seats" or "policy" (checkboxes are absent when unchecked).
    form: String,
}

async fn license_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<LicenseSettings>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (tk, lk) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
    let mut change = LicenseChange::default();
    match form.form.as_str() {
        "seats" => {
            change.seats = opt_number("seats", &form.seats)?;
        }
        "policy" => {
            change.auto_promote = Some(form.auto_promote.is_some());
            change.free_on_delete = Some(form.free_on_delete.is_some());
            change.grace_seconds = opt_number("grace_seconds", &form.grace_seconds)?;
            if let Some(n) = &form.notify {
                change.notify = Some(recipients(n)?);
            }
            change.reclaim_idle_days = opt_number("reclaim_idle_days", &form.reclaim_idle_days)?;
            change.reclaim_notice_days =
                opt_number("reclaim_notice_days", &form.reclaim_notice_days)?;
            change.on_capacity_lowered = match form.on_capacity_lowered.as_deref() {
                Some("block_newest") => Some(crate::alloc::OnLowered::BlockNewest),
                Some("keep") | None => Some(crate::alloc::OnLowered::Keep),
                Some(other) => return Err(Error::Invalid(format!("unknown policy {other:?}"))),
            };
        }
        other => return Err(Error::Invalid(format!("unknown form {other:?}"))),
    }
    let l = state
        .store
        .update_license(t.key, lk, change, "console")
        .await?;
    see_other(&format!(
        "/console/tenants/{}/licenses/{}?notice=license-saved",
        t.id, l.id
    ))
}

#[derive(Deserialize, Default)]
struct SeatsQuery {
    q: Option<String>,
    state: Option<String>,
    page: Option<usize>,
    notice: Option<String>,
}

/// Seats per page of the seats table.
const PAGE: usize = 50;

async fn filtered_seats(
    state: &AppState,
    t: &store::Tenant,
    lk: &str,
    query: &SeatsQuery,
) -> Result<(store::LicenseView, Vec<store::SeatView>)> {
    let l = state.store.license(t.key, lk.to_owned()).await?;
    let filter = match query.state.as_deref().unwrap_or("") {
        "" => None,
        s => Some(
            crate::alloc::SeatState::parse(s)
                .ok_or_else(|| Error::Invalid(format!("unknown state {s:?}")))?,
        ),
    };
    let all = state.store.seats(t.key, l.id.clone(), filter).await?;
    let needle = query.q.as_deref().unwrap_or("").trim().to_lowercase();
    let seats = all
        .seats
        .into_iter()
        .filter(|s| {
            needle.is_empty()
                || s.user_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle))
                || s.user_id.to_lowercase().contains(&needle)
        })
        .collect();
    Ok((l, seats))
}

async fn seats(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<SeatsQuery>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    let (tk, lk) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
    let (l, all) = filtered_seats(&state, &t, &lk, &q).await?;
    let overrides = state.store.overrides(t.key, l.id.clone()).await?;
    let pages = all.len().div_ceil(PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let shown = &all[(page - 1) * PAGE..(page * PAGE).min(all.len())];
    ok(pages::seats(
        &s,
        &t,
        &l,
        &overrides,
        shown,
        all.len(),
        page,
        pages,
        q.q.as_deref().unwrap_or(""),
        q.state.as_deref().unwrap_or(""),
        q.notice.as_deref(),
    ))
}

async fn seats_csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<SeatsQuery>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    let (tk, lk) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
    let (l, all) = filtered_seats(&state, &t, &lk, &q).await?;
    let items: Vec<serde_json::Value> = all
        .iter()
        .map(|s| {
            serde_json::json!({"userName": s.user_name, "userId": s.user_id, "state": s.state,
                "position": s.position, "since": s.since, "entitledAt": s.entitled_at,
                "releaseAt": s.release_at, "pinned": s.pinned, "lastUsed": s.last_used})
        })
        .collect();
    let body = if items.is_empty() {
        "userName,userId,state,position,since,entitledAt,releaseAt,pinned,lastUsed\r\n".to_owned()
    } else {
        crate::notify::render::csv(&items)
    };
    let name: String = l
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"seats-{name}.csv\""),
        ))
        .body(body))
}

#[derive(Deserialize)]
struct SeatAction {
    csrf: String,
    action: String,
}

async fn seat_action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    form: web::Form<SeatAction>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (tk, lk, user) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
    let l = state.store.license(t.key, lk).await?;
    use crate::alloc::OverrideKind;
    let notice = match form.action.as_str() {
        "grant" => {
            state
                .store
                .grant(t.key, l.id.clone(), user, "console")
                .await?;
            "seat-granted"
        }
        "pin" | "exclude" | "clear" => {
            let kind = match form.action.as_str() {
                "pin" => Some(OverrideKind::Pin),
                "exclude" => Some(OverrideKind::Exclude),
                _ => None,
            };
            state
                .store
                .set_override(t.key, l.id.clone(), user, kind, "console")
                .await?;
            "override-saved"
        }
        other => return Err(Error::Invalid(format!("unknown action {other:?}"))),
    };
    see_other(&format!(
        "/console/tenants/{}/licenses/{}/seats?notice={notice}",
        t.id, l.id
    ))
}

#[derive(Deserialize, Default)]
struct ActivityQuery {
    q: Option<String>,
    notice: Option<String>,
}

async fn activity(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    let t = tenant_of(&state, &s, &path).await?;
    let audit = state.store.audit_log(t.key, 500).await?;
    let notifications = state.store.notifications(t.key, None, 100).await?;
    let needle = q.q.as_deref().unwrap_or("").trim().to_lowercase();
    let entries: Vec<store::AuditEntry> = audit
        .entries
        .into_iter()
        .filter(|e| {
            needle.is_empty()
                || [&e.actor, &e.action, &e.at, &e.detail.to_string()]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
        })
        .take(200)
        .collect();
    ok(pages::activity(
        &s,
        &t,
        &entries,
        &notifications.notifications,
        q.q.as_deref().unwrap_or(""),
        q.notice.as_deref(),
    ))
}

/// A failed or skipped notification: `retry` (queued again) or `dismiss` (closed unsent).
async fn notification_action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i64, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (tk, id, action) = path.into_inner();
    let t = tenant_of(&state, &s, &tk).await?;
    let notice = match action.as_str() {
        "retry" => {
            state.store.retry_notification(t.key, id).await?;
            state.mail_wake.notify_one();
            "retry-queued"
        }
        "dismiss" => {
            state.store.dismiss_notification(t.key, id).await?;
            "dismissed"
        }
        _ => return Err(Error::NotFound("no such action".into())),
    };
    see_other(&format!(
        "/console/tenants/{}/activity?notice={notice}",
        t.id
    ))
}
