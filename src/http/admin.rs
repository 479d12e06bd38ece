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

use super::auth::Admin;
use super::error::AdminError;
use super::{body, AppState};
use crate::notify::Recipient;
use crate::store::{self, TenantChange};

pub fn scope() -> actix_web::Scope {
    super::webhooks::routes(super::notifications::routes(super::licenses::routes(
        web::scope("/admin/v1"),
    )))
    .route("/tenants", web::post().to(create_tenant))
    .route("/tenants", web::get().to(list_tenants))
    .route("/tenants/{tenant}", web::get().to(get_tenant))
    .route("/tenants/{tenant}", web::patch().to(update_tenant))
    .route("/tenants/{tenant}/tokens", web::post().to(issue_token))
    .route("/tenants/{tenant}/tokens", web::get().to(list_tokens))
    .route(
        "/tenants/{tenant}/tokens/{id}",
        web::delete().to(revoke_token),
    )
    .route(
        "/tenants/{tenant}/tokens/{id}/rotate",
        web::post().to(rotate_token),
    )
    .route(
        "/tenants/{tenant}/admin-tokens",
        web::post().to(issue_admin_token),
    )
    .route(
        "/tenants/{tenant}/admin-tokens",
        web::get().to(list_admin_tokens),
    )
    .route(
        "/tenants/{tenant}/admin-tokens/{id}",
        web::delete().to(revoke_admin_token),
    )
    .route(
        "/tenants/{tenant}/product-tokens",
        web::post().to(issue_product_token),
    )
    .route(
        "/tenants/{tenant}/product-tokens",
        web::get().to(list_product_tokens),
    )
    .route(
        "/tenants/{tenant}/product-tokens/{id}",
        web::delete().to(revoke_product_token),
    )
    .route("/product-tokens", web::post().to(issue_product_token))
    .route("/product-tokens", web::get().to(list_product_tokens))
    .route(
        "/product-tokens/{id}",
        web::delete().to(revoke_product_token),
    )
    .default_service(web::to(|| async {
        Err::<HttpResponse, _>(AdminError::new(404, "not_found", "no such admin endpoint"))
    }))
}

/// The internal key of the tenant named by id or name.
pub(super) async fn tenant_of(
    state: &AppState,
    key: &str,
) -> Result<crate::store::TenantKey, AdminError> {
    Ok(state.store.tenant(key).await?.key)
}

/// Reads a JSON body into `T`, answering 400 with what was wrong.
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    payload: web::Payload,
    state: &AppState,
) -> Result<T, AdminError> {
    let v = body::json(payload, state.config.max_body_bytes)
        .await
        .map_err(|e| AdminError::new(e.status, "invalid_request", e.detail))?;
    serde_json::from_value(v)
        .map_err(|e| AdminError::bad_request(format!("invalid request body: {e}")))
}

#[derive(Deserialize)]
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
    let mut tenant = state.store.create_tenant(t.name, t.notify).await?;
    if change != TenantChange::default() {
        state
            .store
            .update_tenant(tenant.key, change, "admin")
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

async fn get_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    Ok(HttpResponse::Ok().json(state.store.tenant(&path).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantSettings {
    notify: Option<Vec<Recipient>>,
    expected_sync_seconds: Option<i64>,
    pending_window_seconds: Option<i64>,
    time_zone: Option<String>,
    /// Absent: unchanged; `null` or `false`: off; `true`: Monday 08:00; `{day, hour}`.
    #[serde(default, deserialize_with = "present")]
    weekly_summary: Option<Option<WeeklySetting>>,
}

/// `weekly_summary` as written: `false`/`true`, or `{"day": "monday", "hour": 8}`.
#[derive(Deserialize)]
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

async fn update_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = state.store.tenant(&path).await?;
    let s: TenantSettings = json_body(payload, &state).await?;
    state
        .store
        .update_tenant(
            tenant.key,
            TenantChange {
                notify: s.notify,
                expected_sync_seconds: s.expected_sync_seconds,
                pending_window_seconds: s.pending_window_seconds,
                time_zone: s.time_zone,
                weekly_summary: s
                    .weekly_summary
                    .map(|w| w.and_then(WeeklySetting::into_weekly)),
            },
            "admin",
        )
        .await?;
    Ok(HttpResponse::Ok().json(state.store.tenant(&tenant.id).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewToken {
    expires_in_seconds: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotation {
    overlap_seconds: Option<i64>,
}

/// A JSON body that may be absent (then `T::default()`).
pub(super) async fn optional_body<T: serde::de::DeserializeOwned + Default>(
    payload: web::Payload,
    state: &AppState,
) -> Result<T, AdminError> {
    let bytes = body::read(payload, state.config.max_body_bytes)
        .await
        .map_err(|e| AdminError::new(e.status, "invalid_request", e.detail))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| AdminError::bad_request(format!("invalid request body: {e}")))
}

async fn issue_token(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = state.store.tenant(&path).await?;
    let body: NewToken = optional_body(payload, &state).await?;
    let (info, token) = state
        .store
        .issue_token(tenant.key, body.expires_in_seconds)
        .await?;
    Ok(HttpResponse::Created()
        .json(json!({"id": info.id, "token": token, "created": info.created, "expires": info.expires, "tenant": tenant.id})))
}

async fn rotate_token(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let (tenant, id) = path.into_inner();
    let tenant = state.store.tenant(&tenant).await?;
    let body: Rotation = optional_body(payload, &state).await?;
    let overlap = body.overlap_seconds.unwrap_or(86_400);
    let (info, token, old) = state.store.rotate_token(tenant.key, id, overlap).await?;
    Ok(HttpResponse::Created().json(json!({"id": info.id, "token": token, "created": info.created, "expires": info.expires,
                                           "tenant": tenant.id, "replaces": {"id": old.id, "expires": old.expires}})))
}

async fn list_tokens(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let tenant = state.store.tenant(&path).await?;
    Ok(HttpResponse::Ok().json(json!({"tokens": state.store.list_tokens(tenant.key).await?})))
}

async fn revoke_token(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, id) = path.into_inner();
    let tenant = state.store.tenant(&tenant).await?;
    state.store.revoke_token(tenant.key, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn issue_admin_token(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    admin.operator()?;
    let tenant = state.store.tenant(&path).await?;
    let (info, token) = state.store.issue_admin_token(tenant.key).await?;
    Ok(HttpResponse::Created()
        .json(json!({"id": info.id, "token": token, "created": info.created, "tenant": tenant.id})))
}

async fn list_admin_tokens(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    admin.operator()?;
    let tenant = state.store.tenant(&path).await?;
    Ok(
        HttpResponse::Ok()
            .json(json!({"tokens": state.store.list_admin_tokens(tenant.key).await?})),
    )
}

async fn revoke_admin_token(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    admin.operator()?;
    let (tenant, id) = path.into_inner();
    let tenant = state.store.tenant(&tenant).await?;
    // Console sessions signed in with a token of this tenant end too (in the same write).
    state.store.revoke_admin_token(tenant.key, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{tenant}` resolved, or `None` on the operator-wide paths (operator only).
async fn product_owner(
    admin: &Admin,
    state: &AppState,
    tenant: Option<&str>,
) -> Result<Option<store::Tenant>, AdminError> {
    match tenant {
        Some(t) => Ok(Some(state.store.tenant(t).await?)),
        None => {
            admin.operator()?;
            Ok(None)
        }
    }
}

/// `POST .../product-tokens`: a product token (`skp_...`, shown once) reading one tenant, or
/// (on `/admin/v1/product-tokens`, the operator only) every tenant.
async fn issue_product_token(
    admin: Admin,
    state: web::Data<AppState>,
    path: Option<web::Path<String>>,
) -> Result<HttpResponse, AdminError> {
    let owner = product_owner(&admin, &state, path.as_deref().map(String::as_str)).await?;
    let (info, token) = state
        .store
        .issue_product_token(owner.as_ref().map(|t| t.key))
        .await?;
    Ok(HttpResponse::Created().json(
        json!({"id": info.id, "token": token, "created": info.created,
        "tenant": owner.map(|t| t.id)}),
    ))
}

async fn list_product_tokens(
    admin: Admin,
    state: web::Data<AppState>,
    path: Option<web::Path<String>>,
) -> Result<HttpResponse, AdminError> {
    let owner = product_owner(&admin, &state, path.as_deref().map(String::as_str)).await?;
    let tokens = state
        .store
        .list_product_tokens(owner.map(|t| t.key))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

#[derive(Deserialize)]
struct ProductTokenPath {
    tenant: Option<String>,
    id: String,
}

async fn revoke_product_token(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<ProductTokenPath>,
) -> Result<HttpResponse, AdminError> {
    let owner = product_owner(&admin, &state, path.tenant.as_deref()).await?;
    state
        .store
        .revoke_product_token(owner.map(|t| t.key), path.id.clone())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
