//! Signing in and out: the sign-in page and form (the admin API's own credential check), the
//! session cookie, and the home page that sends each scope where it belongs.

use super::*;
use crate::store::events::audit::Actor;

pub(super) async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
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

pub(super) async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    gate(&req, &state)?;
    let token = session::random_token();
    let mut r = html(actix_web::http::StatusCode::OK, pages::login(&token, None));
    let _ = r.add_cookie(&cookie(session::LOGIN_COOKIE, token, "/console/login"));
    Ok(r)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    csrf: String,
}

pub(super) async fn login(
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
        Some(crate::http::auth::AdminIdentity::Operator) => {
            Some((Scope::Operator, Actor::operator()))
        }
        Some(crate::http::auth::AdminIdentity::Tenant { tenant, token_id }) => {
            Some((Scope::Tenant(tenant.key), Actor::tenant_admin(&token_id)))
        }
        None => None,
    };
    // A valid token signs in whatever else came from its address; failures are braked.
    let Some((scope, signed_in_as)) = scope else {
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
    let s = session::create(
        &state.store,
        scope,
        signed_in_as,
        state.store.now_ms(),
        state.config.admin_token.as_ref().map(|t| t.0.as_str()),
    )
    .await?;
    let mut r = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/"))
        .finish();
    let _ = r.add_cookie(&cookie(session::COOKIE, s.id, "/console"));
    let mut gone = cookie(session::LOGIN_COOKIE, String::new(), "/console/login");
    gone.make_removal();
    let _ = r.add_cookie(&gone);
    Ok(r)
}

pub(super) async fn logout(
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
