//! `/scim/v2/Users`: create, read, replace, patch, delete; list and search are shared with
//! Groups (`super::Endpoint`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::Value;

use super::{
    respond_list, respond_resource, respond_serialized, Endpoint, ListParams, On, Reply, Serialized,
};
use crate::scim::patch;
use crate::scim::projection::Projection;
use crate::scim::resource::{group_ref, normalize, render, WrittenUser};
use crate::scim::schema::ResourceKind;
use crate::store::UserRecord;

const KIND: ResourceKind = ResourceKind::User;

/// The Users endpoint.
pub struct Users;

pub fn render_user(u: UserRecord, base: &str) -> Value {
    let groups = u
        .groups
        .iter()
        .map(|g| group_ref(base, &g.id, &g.display))
        .collect();
    render(KIND, &u.id, u.doc, &u.meta, base, Some(groups))
}

/// A user as shown: rendered, then projected.
pub(super) fn shown(u: UserRecord, base: &str, projection: &Projection) -> Value {
    let mut v = render_user(u, base);
    projection.apply(KIND, &mut v);
    v
}

/// A user shown whole (no projection), written straight from the record.
fn written<'a>(u: &'a UserRecord, base: &'a str) -> WrittenUser<'a> {
    WrittenUser {
        id: &u.id,
        doc: &u.doc,
        meta: &u.meta,
        base,
        groups: u
            .groups
            .iter()
            .map(|g| (g.id.as_str(), g.display.as_str()))
            .collect(),
    }
}

/// A user as a resource response: its representation and ETag.
fn answer(on: &On, status: StatusCode, u: UserRecord, projection: &Projection) -> Reply {
    let etag = u.meta.etag();
    let base = on.base();
    if projection.is_empty() {
        let location = format!("{base}/{}/{}", KIND.endpoint(), u.id);
        let body = Serialized::written(&written(&u, &base), location);
        return Ok(respond_serialized(status, body, &etag));
    }
    Ok(respond_resource(
        status,
        &shown(u, &base, projection),
        &etag,
    ))
}

pub async fn create(on: On, payload: web::Payload) -> Reply {
    let projection = on.projection()?;
    let (doc, _) = normalize(KIND, &on.body(payload).await?)?;
    let u = on.store().create_user(on.key(), doc).await?;
    answer(&on, StatusCode::CREATED, u, &projection)
}

pub async fn get(on: On, id: web::Path<String>) -> Reply {
    let projection = on.projection()?;
    let u = on.store().get_user(on.key(), id.into_inner()).await?;
    match on.not_modified(&u.meta) {
        Some(unchanged) => Ok(unchanged),
        None => answer(&on, StatusCode::OK, u, &projection),
    }
}

impl Endpoint for Users {
    async fn page(on: &On, params: ListParams) -> Reply {
        let start = params.query.start_index;
        let page = on.store().list_users(on.key(), params.query).await?;
        let base = on.base();
        if params.projection.is_empty() {
            let resources: Vec<_> = page.items.iter().map(|u| written(u, &base)).collect();
            return Ok(respond_list(page.total, start, resources));
        }
        let resources: Vec<Value> = page
            .items
            .into_iter()
            .map(|u| shown(u, &base, &params.projection))
            .collect();
        Ok(respond_list(page.total, start, resources))
    }
}

pub async fn replace(on: On, id: web::Path<String>, payload: web::Payload) -> Reply {
    let projection = on.projection()?;
    let (doc, _) = normalize(KIND, &on.body(payload).await?)?;
    let (id, if_match) = (id.into_inner(), on.if_match());
    let u = on.store().replace_user(on.key(), id, doc, if_match).await?;
    answer(&on, StatusCode::OK, u, &projection)
}

pub async fn patch(on: On, id: web::Path<String>, payload: web::Payload) -> Reply {
    let projection = on.projection()?;
    let ops = patch::parse(on.body(payload).await?)?;
    let (id, if_match) = (id.into_inner(), on.if_match());
    let u = on.store().patch_user(on.key(), id, ops, if_match).await?;
    answer(&on, StatusCode::OK, u, &projection)
}

pub async fn delete(on: On, id: web::Path<String>) -> Reply {
    let (id, if_match) = (id.into_inner(), on.if_match());
    on.store().delete_user(on.key(), id, if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
