//! The tenants pages: the operator's list and the tenant form; a tenant's page with its
//! provisioning status, SCIM and product tokens (each shown once), webhooks (`webhooks`), licenses,
//! and its notification and timing settings.

use super::*;

pub(super) async fn tenants(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<Notice>,
) -> Result<HttpResponse> {
    let s = session(&req, &state).await?;
    if s.scope != Scope::Operator {
        return home(req, state).await;
    }
    // One read for every tenant's provider health, not a status query per tenant.
    let mut health = state.store.provider_health().await?;
    let rows: Vec<_> = state
        .store
        .list_tenants()
        .await?
        .into_iter()
        .map(|t| {
            let h = health.remove(&t.key).unwrap_or_default();
            (t, h)
        })
        .collect();
    ok(pages::tenants(
        &s,
        &rows,
        &scim_url(&req, &state),
        q.notice.as_deref(),
    ))
}

#[derive(Deserialize)]
pub(super) struct NewTenant {
    csrf: String,
    name: String,
    #[serde(default)]
    notify: String,
}

/// Recipients as typed in the console: addresses separated by commas, spaces or lines; a line
/// `it@contoso.com: blocked threshold` limits that address to those kinds.
pub(super) fn recipients(text: &str) -> Result<Vec<crate::notify::Recipient>> {
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

pub(super) async fn create_tenant(
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
        .create_tenant(form.name.clone(), recipients(&form.notify)?, s.actor())
        .await?;
    see_other(&format!("/console/tenants/{}?notice=tenant-created", t.id))
}

pub(super) async fn tenant_page(
    v: &Visit,
    new_token: Option<pages::NewToken>,
    notice: Option<&str>,
) -> Result<HttpResponse> {
    let (state, t) = (&v.state, &v.t);
    let tokens = state.store.list_tokens(t.key).await?;
    let product_tokens = state.store.list_product_tokens(Some(t.key)).await?;
    let webhooks = state.store.list_webhooks(Some(t.key)).await?;
    let status = state.store.status(t.key).await?;
    let licenses = state.store.list_licenses(t.key).await?;
    ok(pages::tenant(
        &v.s,
        t,
        &tokens,
        &product_tokens,
        &webhooks,
        &status,
        &licenses,
        &scim_url(&v.req, state),
        new_token,
        notice,
    ))
}

pub(super) async fn tenant(v: Visit, q: web::Query<Notice>) -> Result<HttpResponse> {
    tenant_page(&v, None, q.notice.as_deref()).await
}

#[derive(Deserialize)]
pub(super) struct TenantSettings {
    csrf: String,
    #[serde(default)]
    notify: String,
    /// In hours, as the form asks them.
    expected_sync_hours: Option<String>,
    pending_window_hours: Option<String>,
    hold_threshold_percent: Option<String>,
    hold_min_seats: Option<String>,
    hold_window_hours: Option<String>,
    forecast_horizon_days: Option<String>,
    idp_failure_warn_percent: Option<String>,
    time_zone: Option<String>,
    /// `off`, or a day of the week.
    weekly_day: Option<String>,
    weekly_hour: Option<String>,
}

/// The weekly summary the settings form asks for; `None` when it leaves it as it is.
pub(super) fn weekly_of(
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

pub(super) async fn tenant_settings(
    v: Visit,
    form: web::Form<TenantSettings>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let t = &v.t;
    v.store()
        .update_tenant(
            t.key,
            store::TenantChange {
                notify: Some(recipients(&form.notify)?),
                expected_sync_seconds: opt_hours(
                    "the expected sync interval",
                    &form.expected_sync_hours,
                )?,
                pending_window_seconds: opt_hours(
                    "the pending window",
                    &form.pending_window_hours,
                )?,
                time_zone: form
                    .time_zone
                    .as_deref()
                    .map(str::trim)
                    .filter(|z| !z.is_empty())
                    .map(str::to_owned),
                weekly_summary: weekly_of(&form, t)?,
                hold_threshold_percent: opt_number(
                    "hold_threshold_percent",
                    &form.hold_threshold_percent,
                )?,
                hold_min_seats: opt_number("hold_min_seats", &form.hold_min_seats)?,
                hold_window_seconds: opt_hours(
                    "the circuit breaker's window",
                    &form.hold_window_hours,
                )?,
                forecast_horizon_days: opt_number(
                    "forecast_horizon_days",
                    &form.forecast_horizon_days,
                )?,
                group_names_unique: None,
                idp_failure_warn_percent: opt_number(
                    "idp_failure_warn_percent",
                    &form.idp_failure_warn_percent,
                )?,
            },
            v.s.actor(),
        )
        .await?;
    see_other(&format!("/console/tenants/{}?notice=settings-saved", t.id))
}

/// The tenant's page with a new secret (a token, a webhook's signing secret) shown this once:
/// rendered, not redirected, so the secret is never in a URL or a later page.
pub(super) async fn shown_once(v: &Visit, new: pages::NewToken) -> Result<HttpResponse> {
    tenant_page(v, Some(new), None).await
}

pub(super) async fn issue_token(v: Visit, form: web::Form<CsrfForm>) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let (info, token) = v.store().issue_token(v.t.key, None, v.s.actor()).await?;
    shown_once(&v, pages::NewToken::Scim(info.id, token)).await
}

pub(super) async fn issue_product_token(
    v: Visit,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let (t, actor) = (Some(v.t.key), v.s.actor());
    let (info, token) = v.store().issue_product_token(t, actor).await?;
    shown_once(&v, pages::NewToken::Product(info.id, token)).await
}

pub(super) async fn revoke_product_token(
    v: Visit,
    p: web::Path<OfId>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let (t, id) = (Some(v.t.key), p.into_inner().id);
    v.store().revoke_product_token(t, id, v.s.actor()).await?;
    see_other(&format!("/console/tenants/{}?notice=token-revoked", v.t.id))
}

pub(super) async fn revoke_token(
    v: Visit,
    p: web::Path<OfId>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let id = p.into_inner().id;
    v.store().revoke_token(v.t.key, id, v.s.actor()).await?;
    see_other(&format!("/console/tenants/{}?notice=token-revoked", v.t.id))
}

#[derive(Deserialize)]
pub(super) struct OffboardForm {
    csrf: String,
    confirm: String,
}

/// Offboards the tenant (operator only), once its name was typed to confirm: closed at once,
/// purged after `tenant_retention_days`.
pub(super) async fn delete_tenant(v: Visit, form: web::Form<OffboardForm>) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    if v.s.scope != session::Scope::Operator {
        return Err(Error::Forbidden(
            "only the operator offboards a tenant".into(),
        ));
    }
    if form.confirm.trim() != v.t.name {
        return Err(Error::Invalid(format!(
            "type the tenant's name, {:?}, exactly to confirm; nothing was changed",
            v.t.name
        )));
    }
    v.store()
        .close_tenant(
            v.t.key,
            i64::from(v.state.config.tenant_retention_days),
            v.s.actor(),
        )
        .await?;
    see_other("/console/tenants?notice=tenant-closed")
}
