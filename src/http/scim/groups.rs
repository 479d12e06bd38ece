//! `/scim/v2/Groups`: create, read, list, search, replace, patch, delete. Members are loaded only
//! when the response shows them (`excludedAttributes=members` skips them, as Entra asks).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::projection_of;
use super::{
    base_url, if_match, not_modified, respond_list, respond_resource, ListParams, ScimError,
};
use crate::config::{GroupPatchResponse, GROUP_PATCH_RESOURCE_MAX};
use crate::http::auth::ScimTenant;
use crate::http::{body, AppState};
use crate::scim::patch;
use crate::scim::projection::Projection;
use crate::scim::resource::{normalize, render};
use crate::scim::schema::ResourceKind;
use crate::store::GroupRecord;

const KIND: ResourceKind = ResourceKind::Group;

pub fn render_group(g: &GroupRecord, base: &str) -> Value {
    let members = g.members.as_ref().map(|list| {
        list.iter()
            .map(|m| {
                let kind = m.kind.as_deref().unwrap_or("User");
                let endpoint = if kind == "Group" { "Groups" } else { "Users" };
                let mut v = json!({"value": m.value, "$ref": format!("{base}/{endpoint}/{}", m.value), "type": kind});
                if let Some(d) = &m.display {
                    v["display"] = Value::String(d.clone());
                }
                v
            })
            .collect()
    });
    render(KIND, &g.id, g.doc.clone(), &g.meta, base, members)
}

fn shown(g: &GroupRecord, base: &str, projection: &Projection) -> Value {
    let mut v = render_group(g, base);
    projection.apply(KIND, &mut v);
    v
}

/// Members above which a group's answer is rendered off the HTTP worker.
const RENDER_OFF_WORKER: usize = 1000;

/// The group as answered. A large group is rendered and serialized on a low-priority thread
/// (`background::cpu`): an HTTP worker serves many connections, and must not stop for a member
/// list of thousands.
async fn respond_group(
    status: StatusCode,
    g: GroupRecord,
    base: String,
    projection: Projection,
) -> Result<HttpResponse, ScimError> {
    let etag = g.meta.etag();
    if g.members
        .as_ref()
        .is_none_or(|m| m.len() <= RENDER_OFF_WORKER)
    {
        return Ok(respond_resource(
            status,
            &shown(&g, &base, &projection),
            &etag,
        ));
    }
    let body = crate::background::cpu()
        .run(move || super::serialized(&shown(&g, &base, &projection)))
        .await
        .map_err(|e| {
            ScimError(crate::scim::Error::new(
                500,
                None,
                format!("rendering failed: {e}"),
            ))
        })?;
    Ok(super::respond_serialized(status, body, &etag))
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    payload: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let input = body::json(payload, state.config.max_body_bytes).await?;
    let (doc, members) = normalize(KIND, &input)?;
    let g = state.store.create_group(t.0.key, doc, members).await?;
    respond_group(StatusCode::CREATED, g, base_url(&req, &state), projection).await
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let with_members = !projection.drops(KIND, "members");
    let g = state
        .store
        .get_group(t.0.key, id.into_inner(), with_members)
        .await?;
    if not_modified(&req, g.meta.version) {
        return Ok(HttpResponse::NotModified()
            .insert_header(("ETag", g.meta.etag()))
            .finish());
    }
    respond_group(StatusCode::OK, g, base_url(&req, &state), projection).await
}

async fn list_with(
    req: &HttpRequest,
    state: &AppState,
    t: ScimTenant,
    params: ListParams,
) -> Result<HttpResponse, ScimError> {
    let start = params.query.start_index;
    let with_members = !params.projection.drops(KIND, "members");
    let page = state
        .store
        .list_groups(t.0.key, params.query, with_members)
        .await?;
    let base = base_url(req, state);
    let resources = page
        .items
        .iter()
        .map(|g| shown(g, &base, &params.projection))
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
    let (doc, members) = normalize(KIND, &input)?;
    let g = state
        .store
        .replace_group(t.0.key, id.into_inner(), doc, members, if_match(&req))
        .await?;
    respond_group(StatusCode::OK, g, base_url(&req, &state), projection).await
}

/// PATCH answers 200 with the group, or 204 as `group_patch_response` says (by default: 204
/// once the group has more than 1,000 members). `attributes`/`excludedAttributes` always get
/// the resource; `excludedAttributes=members` keeps the member list out of the answer and the read.
pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let mode = if projection.is_empty() {
        state.config.group_patch_response
    } else {
        GroupPatchResponse::Resource
    };
    let with_members = !projection.drops(KIND, "members");
    let input = body::json(payload, state.config.max_body_bytes).await?;
    let ops = patch::parse(input)?;
    let id = id.into_inner();
    let written = state
        .store
        .patch_group(t.0.key, id, ops, if_match(&req))
        .await?;
    let no_content = || {
        HttpResponse::NoContent()
            .insert_header((actix_web::http::header::ETAG, written.meta.etag()))
            .finish()
    };
    // The member list is read after the commit, on a reader: the writer's cost stays the size
    // of the change. (A PATCH committed in between shows too, with its own version; a group
    // deleted in between is answered without members.)
    let cap = match mode {
        GroupPatchResponse::NoContent => return Ok(no_content()),
        _ if !with_members => None,
        GroupPatchResponse::Resource => Some(usize::MAX),
        GroupPatchResponse::Auto => Some(GROUP_PATCH_RESOURCE_MAX),
    };
    let g = match cap {
        None => written.clone(),
        Some(cap) => match state
            .store
            .get_group_within(t.0.key, written.id.clone(), cap)
            .await
        {
            Ok(Some(g)) => g,
            Ok(None) => return Ok(no_content()),
            Err(crate::store::Error::NotFound(_)) => written.clone(),
            Err(e) => return Err(e.into()),
        },
    };
    respond_group(StatusCode::OK, g, base_url(&req, &state), projection).await
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: ScimTenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    state
        .store
        .delete_group(t.0.key, id.into_inner(), if_match(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
