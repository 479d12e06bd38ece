//! `/scim/v2/Users`: create, read, list, search, replace, patch, delete.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{
    base_url, if_match, not_modified, projection_of, respond_list, respond_resource, ListParams,
    ScimError,
};
use crate::http::auth::ScimTenant;
use crate::http::{body, AppState};
use crate::scim::patch;
use crate::scim::projection::Projection;
use crate::scim::resource::{normalize, render};
use crate::scim::schema::ResourceKind;
use crate::store::UserRecord;

const KIND: ResourceKind = ResourceKind::User;

pub fn render_user(u: UserRecord, base: &str) -> Value {
    let groups = u
        .groups
        .into_iter()
        .map(|g| {
            let r = format!("{base}/Groups/{}", g.id);
            json!({"value": g.id, "$ref": r, "display": g.display, "type": "direct"})
        })
        .collect();
    render(KIND, &u.id, u.doc, &u.meta, base, Some(groups))
}

fn shown(u: UserRecord, base: &str, projection: &Projection) -> Value {
    let mut v = render_user(u, base);
    projection.apply(KIND, &mut v);
    v
}

/// A user as a resource response: its representation and ETag.
fn answer(status: StatusCode, u: UserRecord, base: &str, projection: &Projection) -> HttpResponse {
    let etag = u.meta.etag();
    respond_resource(status, &shown(u, base, projection), &etag)
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    payload: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let input = body::json(payload, state.config.max_body_bytes).await?;
    let (doc, _) = normalize(KIND, &input)?;
    let u = state.store.create_user(t.0.key, doc).await?;
    Ok(answer(
        StatusCode::CREATED,
        u,
        &base_url(&req, &state),
        &projection,
    ))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let u = state.store.get_user(t.0.key, id.into_inner()).await?;
    if not_modified(&req, u.meta.version) {
        return Ok(HttpResponse::NotModified()
            .insert_header(("ETag", u.meta.etag()))
            .finish());
    }
    Ok(answer(
        StatusCode::OK,
        u,
        &base_url(&req, &state),
        &projection,
    ))
}

async fn list_with(
    req: &HttpRequest,
    state: &AppState,
    t: ScimTenant,
    params: ListParams,
) -> Result<HttpResponse, ScimError> {
    let start = params.query.start_index;
    let page = state.store.list_users(t.0.key, params.query).await?;
    let base = base_url(req, state);
    let resources = page
        .items
        .into_iter()
        .map(|u| shown(u, &base, &params.projection))
        .collect();
    Ok(respond_list(page.total, start, resources))
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_query(&req, state.config.max_results)?;
    list_with(&req, &state, t, params).await
}

pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    payload: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let input = body::json(payload, state.config.max_body_bytes).await?;
    let params = ListParams::from_search(&input, state.config.max_results)?;
    list_with(&req, &state, t, params).await
}

pub async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let input = body::json(payload, state.config.max_body_bytes).await?;
    let (doc, _) = normalize(KIND, &input)?;
    let u = state
        .store
        .replace_user(t.0.key, id.into_inner(), doc, if_match(&req))
        .await?;
    Ok(answer(
        StatusCode::OK,
        u,
        &base_url(&req, &state),
        &projection,
    ))
}

pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let input = body::json(payload, state.config.max_body_bytes).await?;
    let ops = patch::parse(input)?;
    let u = state
        .store
        .patch_user(t.0.key, id.into_inner(), ops, if_match(&req))
        .await?;
    Ok(answer(
        StatusCode::OK,
        u,
        &base_url(&req, &state),
        &projection,
    ))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    state
        .store
        .delete_user(t.0.key, id.into_inner(), if_match(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
