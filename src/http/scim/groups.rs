//! `/scim/v2/Groups`: create, read, replace, patch, delete; list and search are shared with
//! Users (`super::Endpoint`). Members are loaded only when the response shows them
//! (`excludedAttributes=members` skips them, as Entra asks).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::Value;

use super::{respond_list, respond_resource, Endpoint, ListParams, On, Reply, ScimError};
use crate::config::{GroupPatchResponse, GROUP_PATCH_RESOURCE_MAX};
use crate::scim::patch;
use crate::scim::projection::Projection;
use crate::scim::resource::{member_ref, normalize, render};
use crate::scim::schema::ResourceKind;
use crate::store::GroupRecord;

const KIND: ResourceKind = ResourceKind::Group;

/// The Groups endpoint.
pub struct Groups;

pub fn render_group(g: &GroupRecord, base: &str) -> Value {
    let members = g.members.as_ref().map(|list| {
        list.iter()
            .map(|m| member_ref(base, &m.value, m.kind.as_deref(), m.display.as_deref()))
            .collect()
    });
    render(KIND, &g.id, g.doc.clone(), &g.meta, base, members)
}

/// A group as shown: rendered, then projected.
pub(super) fn shown(g: &GroupRecord, base: &str, projection: &Projection) -> Value {
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

pub async fn create(on: On, payload: web::Payload) -> Reply {
    let projection = on.projection()?;
    let (doc, members) = normalize(KIND, &on.body(payload).await?)?;
    let g = on.store().create_group(on.key(), doc, members).await?;
    respond_group(StatusCode::CREATED, g, on.base(), projection).await
}

pub async fn get(on: On, id: web::Path<String>) -> Reply {
    let projection = on.projection()?;
    let with_members = !projection.drops(KIND, "members");
    let id = id.into_inner();
    let g = on.store().get_group(on.key(), id, with_members).await?;
    match on.not_modified(&g.meta) {
        Some(unchanged) => Ok(unchanged),
        None => respond_group(StatusCode::OK, g, on.base(), projection).await,
    }
}

impl Endpoint for Groups {
    async fn page(on: &On, params: ListParams) -> Reply {
        let start = params.query.start_index;
        let with_members = !params.projection.drops(KIND, "members");
        let page = on
            .store()
            .list_groups(on.key(), params.query, with_members)
            .await?;
        let base = on.base();
        let resources = page
            .items
            .iter()
            .map(|g| shown(g, &base, &params.projection))
            .collect();
        Ok(respond_list(page.total, start, resources))
    }
}

pub async fn replace(on: On, id: web::Path<String>, payload: web::Payload) -> Reply {
    let projection = on.projection()?;
    let (doc, members) = normalize(KIND, &on.body(payload).await?)?;
    let (id, if_match) = (id.into_inner(), on.if_match());
    let g = on
        .store()
        .replace_group(on.key(), id, doc, members, if_match)
        .await?;
    respond_group(StatusCode::OK, g, on.base(), projection).await
}

/// PATCH answers 200 with the group, or 204 as `group_patch_response` says (by default: 204
/// once the group has more than 1,000 members). `attributes`/`excludedAttributes` always get
/// the resource; `excludedAttributes=members` keeps the member list out of the answer and the read.
pub async fn patch(on: On, id: web::Path<String>, payload: web::Payload) -> Reply {
    let projection = on.projection()?;
    let mode = if projection.is_empty() {
        on.state.config.group_patch_response
    } else {
        GroupPatchResponse::Resource
    };
    let with_members = !projection.drops(KIND, "members");
    let ops = patch::parse(on.body(payload).await?)?;
    let (id, if_match) = (id.into_inner(), on.if_match());
    let written = on.store().patch_group(on.key(), id, ops, if_match).await?;
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
        Some(cap) => match on
            .store()
            .get_group_within(on.key(), written.id.clone(), cap)
            .await
        {
            Ok(Some(g)) => g,
            Ok(None) => return Ok(no_content()),
            Err(crate::store::Error::NotFound(_)) => written.clone(),
            Err(e) => return Err(e.into()),
        },
    };
    respond_group(StatusCode::OK, g, on.base(), projection).await
}

pub async fn delete(on: On, id: web::Path<String>) -> Reply {
    let (id, if_match) = (id.into_inner(), on.if_match());
    on.store().delete_group(on.key(), id, if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
