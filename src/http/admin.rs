//! The admin API under `/admin/v1` (JSON, the operator's bearer token). Paths and field names are
//! a stable contract: outside tooling drives them.
//!
//! - `POST /tenants` `{"name", "notify": [emails]}` → 201 tenant; `GET /tenants`; `GET /tenants/{tenant}`
//! - `POST /tenants/{tenant}/tokens` → 201 `{"id", "token", "created"}` (the token, shown once)
//! - `GET /tenants/{tenant}/tokens` (no secrets); `DELETE /tenants/{tenant}/tokens/{id}` → 204
//! - `POST /tenants/{tenant}/admin-tokens` → 201 a tenant admin token (`ska_...`, shown once):
//!   the admin API and the console for that tenant only; `GET`, `DELETE .../{id}` (operator only)
//! - `POST /tenants/{tenant}/product-tokens` → 201 `{"id", "token", "created", "tenant"}`: a
//!   product token (`skp_...`, shown once) for `/product/v1` of that tenant; `GET`, `DELETE
//!   .../{id}`; `POST /product-tokens` (operator only): one for every tenant
//! - webhooks: see [`super::webhooks`]
//!
//! `{tenant}` is a tenant's id or its name.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Admin, OnOwner, OnTenant};
use super::error::AdminError;
use super::openapi::{Doc, Routes};
use super::reply::{json_body, ok, optional_body, Reply};
use super::state::AppState;
use crate::notify::Recipient;
use crate::store::{self, TenantChange};

/// The admin API's routes, each with its documentation (`super::openapi`).
pub fn routes() -> Routes {
    use actix_web::http::Method as M;
    let r = Routes::new("/admin/v1")
        .add(
            M::GET,
            "/openapi.json",
            openapi_json,
            Doc::new("This document: the admin API's OpenAPI 3.1 description").any_object("The document."),
        )
        .add(
            M::POST,
            "/tenants",
            create_tenant,
            Doc::new("Create a tenant (operator only)").body::<NewTenant>().created::<store::Tenant>("The tenant."),
        )
        .add(
            M::GET,
            "/tenants",
            list_tenants,
            Doc::new("Every tenant (operator only)").list::<store::Tenant>("tenants", "The tenants."),
        )
        .add(M::GET, "/tenants/{tenant}", get_tenant, Doc::new("One tenant").ok::<store::Tenant>("The tenant."))
        .add(
            M::PATCH,
            "/tenants/{tenant}",
            update_tenant,
            Doc::new("Change a tenant's recipients, timing, time zone or weekly summary")
                .body::<TenantSettings>()
                .ok::<store::Tenant>("The tenant as changed."),
        )
        .add(
            M::DELETE,
            "/tenants/{tenant}",
            close_tenant,
            Doc::new("Offboard a tenant (operator only): closed at once, every row purged after tenant_retention_days")
                .query("purge", "`now`: purge every row at once instead of keeping them for the retention.")
                .ok::<store::Tenant>("The closed tenant, with when it is purged (204 when purged now)."),
        )
        .add(
            M::GET,
            "/tenants/{tenant}/export",
            export_tenant,
            Doc::new("Every record of a tenant as JSON lines (operator only): the tenant, users, groups, licenses, seats with waitlist places, overrides, holds, audit")
                .ok_text("application/x-ndjson", "One JSON object per line: {type, data}."),
        )
        .add(
            M::POST,
            "/tenants/{tenant}/restore",
            reopen_tenant,
            Doc::new("Reopen a closed tenant before it is purged (operator only)")
                .ok::<store::Tenant>("The tenant, open again."),
        )
        .add(
            M::POST,
            "/tenants/{tenant}/tokens",
            issue_token,
            Doc::new("Issue a SCIM token (shown once)")
                .optional_body::<NewToken>()
                .created::<IssuedScimToken>("The token; only its hash is kept."),
        )
        .add(
            M::GET,
            "/tenants/{tenant}/tokens",
            list_tokens,
            Doc::new("The tenant's SCIM tokens (no secrets)").list::<store::TokenInfo>("tokens", "The tokens."),
        )
        .add(
            M::DELETE,
            "/tenants/{tenant}/tokens/{id}",
            revoke_token,
            Doc::new("Revoke a SCIM token at once").no_content("Revoked."),
        )
        .add(
            M::POST,
            "/tenants/{tenant}/tokens/{id}/rotate",
            rotate_token,
            Doc::new("Issue a replacement SCIM token; the old one stays valid for the overlap")
                .optional_body::<Rotation>()
                .created::<IssuedScimToken>("The new token, and the one it replaces."),
        )
        .add(
            M::POST,
            "/tenants/{tenant}/admin-tokens",
            issue_admin_token,
            Doc::new("Issue a tenant admin token: the admin API and console of this tenant only (operator only)")
                .created::<IssuedToken>("The token (ska_...), shown once."),
        )
        .add(
            M::GET,
            "/tenants/{tenant}/admin-tokens",
            list_admin_tokens,
            Doc::new("The tenant's admin tokens (operator only)").list::<store::TokenInfo>("tokens", "The tokens."),
        )
        .add(
            M::DELETE,
            "/tenants/{tenant}/admin-tokens/{id}",
            revoke_admin_token,
            Doc::new("Revoke a tenant admin token and end its console sessions (operator only)").no_content("Revoked."),
        )
        .add(
            M::POST,
            "/tenants/{tenant}/product-tokens",
            issue_product_token,
            Doc::new("Issue a product token (skp_...) reading this tenant through /product/v1")
                .created::<IssuedToken>("The token, shown once."),
        )
        .add(
            M::GET,
            "/tenants/{tenant}/product-tokens",
            list_product_tokens,
            Doc::new("The tenant's product tokens (no secrets)").list::<store::TokenInfo>("tokens", "The tokens."),
        )
        .add(
            M::DELETE,
            "/tenants/{tenant}/product-tokens/{id}",
            revoke_product_token,
            Doc::new("Revoke a product token at once").no_content("Revoked."),
        )
        .add(
            M::POST,
            "/product-tokens",
            issue_product_token,
            Doc::new("Issue an operator product token reading every tenant (operator only)")
                .created::<IssuedToken>("The token, shown once."),
        )
        .add(
            M::GET,
            "/product-tokens",
            list_product_tokens,
            Doc::new("The operator's product tokens (operator only)").list::<store::TokenInfo>("tokens", "The tokens."),
        )
        .add(
            M::DELETE,
            "/product-tokens/{id}",
            revoke_product_token,
            Doc::new("Revoke an operator product token (operator only)").no_content("Revoked."),
        );
    super::holds::routes(super::audit::routes(super::webhooks::routes(
        super::notifications::routes(super::licenses::routes(r)),
    )))
}

pub fn scope() -> actix_web::Scope {
    routes().into_scope(|s| {
        s.default_service(web::to(|| async {
            Err::<HttpResponse, _>(AdminError::new(404, "not_found", "no such admin endpoint"))
        }))
    })
}

/// `GET /admin/v1/openapi.json`: made once from the route table.
async fn openapi_json() -> HttpResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| {
        let d = routes().document(
            "seatkeeper admin API",
            "Tenants and their tokens, licenses and seats, notifications and webhooks. Every request carries `Authorization: Bearer` with the operator's admin token or a tenant admin token (`ska_...`, its tenant only). `{tenant}` is a tenant's id or name, `{license}` a license's id or name.",
            "The operator's admin token, or a tenant admin token (ska_...).",
        );
        d.to_json().unwrap_or_default()
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.clone())
}

/// A SCIM token just issued: the secret, shown once.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct IssuedScimToken {
    id: String,
    /// The bearer token (shown once; only its hash is kept).
    token: String,
    created: String,
    expires: Option<String>,
    /// The tenant's id.
    tenant: String,
    /// The token a rotation replaces, valid until `expires`.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaces: Option<Replaced>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Replaced {
    id: String,
    expires: Option<String>,
}

/// An admin or product token just issued: the secret, shown once.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct IssuedToken {
    id: String,
    /// The bearer token (shown once; only its hash is kept).
    token: String,
    created: String,
    /// The tenant's id (`null`: an operator product token, every tenant).
    tenant: Option<String>,
}

/// The internal key of the tenant named by id or name.

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
    #[serde(default)]
    notify: Vec<Recipient>,
    time_zone: Option<String>,
    weekly_summary: Option<WeeklySetting>,
}

async fn create_tenant(
    admin: Admin,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    admin.operator()?;
    let t: NewTenant = json_body(payload, &state).await?;
    let change = TenantChange {
        time_zone: t.time_zone,
        weekly_summary: t.weekly_summary.map(WeeklySetting::into_weekly),
        ..TenantChange::default()
    };
    // Check the settings before the tenant exists: a refused setting creates nothing.
    if let Some(z) = &change.time_zone {
        crate::notify::when::valid_zone(z).map_err(store::Error::Invalid)?;
    }
    if let Some(Some(w)) = &change.weekly_summary {
        w.validate().map_err(store::Error::Invalid)?;
    }
    let mut tenant = state
        .store
        .create_tenant(t.name, t.notify, admin.actor.clone())
        .await?;
    if change != TenantChange::default() {
        state
            .store
            .update_tenant(tenant.key, change, admin.actor.clone())
            .await?;
        tenant = state.store.tenant(&tenant.id).await?;
    }
    Ok(HttpResponse::Created().json(tenant))
}

async fn list_tenants(
    admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    admin.operator()?;
    Ok(HttpResponse::Ok().json(json!({"tenants": state.store.list_tenants().await?})))
}

#[derive(Deserialize)]
struct CloseQuery {
    purge: Option<String>,
}

async fn close_tenant(at: OnTenant, q: web::Query<CloseQuery>) -> Reply {
    at.admin.operator()?;
    let now = match q.purge.as_deref() {
        None => false,
        Some("now") => true,
        Some(other) => {
            return Err(AdminError::bad_request(format!(
                "purge={other:?}: the only value is \"now\""
            )))
        }
    };
    let days = if now {
        0
    } else {
        i64::from(at.state.config.tenant_retention_days)
    };
    at.store().close_tenant(at.key(), days, at.actor()).await?;
    if now {
        return Ok(HttpResponse::NoContent().finish());
    }
    ok(at.store().tenant(&at.tenant.id).await?)
}

async fn export_tenant(at: OnTenant) -> Reply {
    at.admin.operator()?;
    let lines = at.store().export_tenant(at.key(), at.actor()).await?;
    let mut body = lines.join("\n");
    body.push('\n');
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(body))
}

async fn reopen_tenant(at: OnTenant) -> Reply {
    at.admin.operator()?;
    at.store().reopen_tenant(at.key(), at.actor()).await?;
    ok(at.store().tenant(&at.tenant.id).await?)
}

async fn get_tenant(at: OnTenant) -> Reply {
    // The settings as stored now (the path's tenant may have been resolved a moment ago).
    ok(at.store().tenant(&at.tenant.id).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantSettings {
    notify: Option<Vec<Recipient>>,
    expected_sync_seconds: Option<i64>,
    pending_window_seconds: Option<i64>,
    time_zone: Option<String>,
    /// Absent: unchanged; `null` or `false`: off; `true`: Monday 08:00; `{day, hour}`.
    #[serde(default, deserialize_with = "present")]
    weekly_summary: Option<Option<WeeklySetting>>,
    hold_threshold_percent: Option<i64>,
    hold_min_seats: Option<i64>,
    hold_window_seconds: Option<i64>,
    forecast_horizon_days: Option<i64>,
    group_names_unique: Option<bool>,
    /// Warn the tenant's recipients past this share (1 to 100) of the identity provider's
    /// requests failing over 7 days, with 100 failures at least.
    idp_failure_warn_percent: Option<i64>,
}

/// `weekly_summary` as written: `false`/`true`, or `{"day": "monday", "hour": 8}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum WeeklySetting {
    On(bool),
    At(crate::notify::when::Weekly),
}

impl WeeklySetting {
    fn into_weekly(self) -> Option<crate::notify::when::Weekly> {
        match self {
            WeeklySetting::On(false) => None,
            WeeklySetting::On(true) => Some(crate::notify::when::Weekly::default()),
            WeeklySetting::At(w) => Some(w),
        }
    }
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

async fn update_tenant(at: OnTenant, payload: web::Payload) -> Reply {
    let s: TenantSettings = json_body(payload, &at.state).await?;
    at.store()
        .update_tenant(
            at.key(),
            TenantChange {
                notify: s.notify,
                expected_sync_seconds: s.expected_sync_seconds,
                pending_window_seconds: s.pending_window_seconds,
                time_zone: s.time_zone,
                weekly_summary: s
                    .weekly_summary
                    .map(|w| w.and_then(WeeklySetting::into_weekly)),
                hold_threshold_percent: s.hold_threshold_percent,
                hold_min_seats: s.hold_min_seats,
                hold_window_seconds: s.hold_window_seconds,
                forecast_horizon_days: s.forecast_horizon_days,
                group_names_unique: s.group_names_unique,
                idp_failure_warn_percent: s.idp_failure_warn_percent,
            },
            at.actor(),
        )
        .await?;
    ok(at.store().tenant(&at.tenant.id).await?)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    expires_in_seconds: Option<i64>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Rotation {
    overlap_seconds: Option<i64>,
}

/// `{id}` of a path: a token.
#[derive(Deserialize)]
struct OfToken {
    id: String,
}

/// A token just issued, shown once, with the one it replaces.
fn issued(tenant: &store::Tenant, info: store::TokenInfo, token: String) -> IssuedScimToken {
    IssuedScimToken {
        id: info.id,
        token,
        created: info.created,
        expires: info.expires,
        tenant: tenant.id.clone(),
        replaces: None,
    }
}

async fn issue_token(at: OnTenant, payload: web::Payload) -> Reply {
    let body: NewToken = optional_body(payload, &at.state).await?;
    let expires = body.expires_in_seconds;
    let (info, token) = at
        .store()
        .issue_token(at.key(), expires, at.actor())
        .await?;
    Ok(HttpResponse::Created().json(issued(&at.tenant, info, token)))
}

async fn rotate_token(at: OnTenant, p: web::Path<OfToken>, payload: web::Payload) -> Reply {
    let body: Rotation = optional_body(payload, &at.state).await?;
    let overlap = body.overlap_seconds.unwrap_or(86_400);
    let (info, token, old) = at
        .store()
        .rotate_token(at.key(), p.into_inner().id, overlap, at.actor())
        .await?;
    let replaces = Some(Replaced {
        id: old.id,
        expires: old.expires,
    });
    Ok(HttpResponse::Created().json(IssuedScimToken {
        replaces,
        ..issued(&at.tenant, info, token)
    }))
}

async fn list_tokens(at: OnTenant) -> Reply {
    ok(json!({"tokens": at.store().list_tokens(at.key()).await?}))
}

async fn revoke_token(at: OnTenant, p: web::Path<OfToken>) -> Reply {
    let id = p.into_inner().id;
    at.store().revoke_token(at.key(), id, at.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn issue_admin_token(at: OnTenant) -> Reply {
    at.admin.operator()?;
    let (info, token) = at.store().issue_admin_token(at.key(), at.actor()).await?;
    Ok(HttpResponse::Created().json(IssuedToken {
        id: info.id,
        token,
        created: info.created,
        tenant: Some(at.tenant.id.clone()),
    }))
}

async fn list_admin_tokens(at: OnTenant) -> Reply {
    at.admin.operator()?;
    ok(json!({"tokens": at.store().list_admin_tokens(at.key()).await?}))
}

async fn revoke_admin_token(at: OnTenant, p: web::Path<OfToken>) -> Reply {
    at.admin.operator()?;
    // Console sessions signed in with a token of this tenant end too (in the same write).
    let id = p.into_inner().id;
    at.store()
        .revoke_admin_token(at.key(), id, at.actor())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST .../product-tokens`: a product token (`skp_...`, shown once) reading one tenant, or
/// (on `/admin/v1/product-tokens`, the operator only) every tenant.
async fn issue_product_token(at: OnOwner) -> Reply {
    let (info, token) = at.store().issue_product_token(at.key(), at.actor()).await?;
    Ok(HttpResponse::Created().json(IssuedToken {
        id: info.id,
        token,
        created: info.created,
        tenant: at.tenant.map(|t| t.id),
    }))
}

async fn list_product_tokens(at: OnOwner) -> Reply {
    ok(json!({ "tokens": at.store().list_product_tokens(at.key()).await? }))
}

async fn revoke_product_token(at: OnOwner, p: web::Path<OfToken>) -> Reply {
    let id = p.into_inner().id;
    at.store()
        .revoke_product_token(at.key(), id, at.actor())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
