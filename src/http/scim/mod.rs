//! The SCIM 2.0 service provider under `/scim/v2`: routing, list parameters, and the response
//! helpers every resource handler shares.

mod bulk;
mod discovery;
mod groups;
mod users;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::error::ScimError;
use super::table::{Listed, ListedResource};
use crate::http::state::AppState;
use crate::scim::projection::Projection;
use crate::scim::search::ListQuery;
use crate::scim::{Error, LIST_RESPONSE, SCIM_MEDIA_TYPE};

pub use crate::scim::search::{ListParams, SEARCH_REQUEST};

/// The SCIM routes, each path answering its other methods 405.
pub fn routes() -> Listed {
    use actix_web::http::Method as M;
    let r = |path: &str| ListedResource::new(path).otherwise(method_not_allowed);
    Listed::new("/scim/v2")
        .resource(
            r("/Users")
                .to(M::GET, list::<users::Users>)
                .to(M::POST, users::create),
        )
        .resource(r("/Users/.search").to(M::POST, search::<users::Users>))
        .resource(
            r("/Users/{id}")
                .to(M::GET, users::get)
                .to(M::PUT, users::replace)
                .to(M::PATCH, users::patch)
                .to(M::DELETE, users::delete),
        )
        .resource(
            r("/Groups")
                .to(M::GET, list::<groups::Groups>)
                .to(M::POST, groups::create),
        )
        .resource(r("/Groups/.search").to(M::POST, search::<groups::Groups>))
        .resource(
            r("/Groups/{id}")
                .to(M::GET, groups::get)
                .to(M::PUT, groups::replace)
                .to(M::PATCH, groups::patch)
                .to(M::DELETE, groups::delete),
        )
        .resource(r("/.search").to(M::POST, search_all))
        .resource(r("/Bulk").to(M::POST, bulk::bulk))
        .resource(r("/ServiceProviderConfig").to(M::GET, discovery::service_provider_config))
        .resource(r("/ResourceTypes").to(M::GET, discovery::resource_types))
        .resource(r("/ResourceTypes/{name}").to(M::GET, discovery::resource_type))
        .resource(r("/Schemas").to(M::GET, discovery::schemas))
        .resource(r("/Schemas/{id}").to(M::GET, discovery::schema))
}

pub fn scope() -> actix_web::Scope {
    routes().into_scope(|s| {
        s.default_service(web::to(|| async {
            Err::<HttpResponse, _>(ScimError(Error::not_found("no such SCIM endpoint")))
        }))
    })
}

/// What a SCIM handler answers.
pub type Reply = Result<HttpResponse, ScimError>;

/// A request on a tenant's SCIM resources: the tenant its token selects, the application,
/// and what the Users and Groups handlers read of the request (projection, preconditions,
/// list parameters, body) in one place.
pub struct On {
    pub req: HttpRequest,
    pub state: web::Data<AppState>,
    pub tenant: std::sync::Arc<crate::store::Tenant>,
}

impl actix_web::FromRequest for On {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<On, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let tenant = super::auth::ScimTenant::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let tenant = tenant.await?.0;
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ScimError(Error::new(500, None, "no application state")))?;
            Ok(On { req, state, tenant })
        })
    }
}

impl On {
    /// The tenant's key.
    pub fn key(&self) -> crate::store::TenantKey {
        self.tenant.key
    }

    /// The store.
    pub fn store(&self) -> &crate::store::Store {
        &self.state.store
    }

    /// The SCIM base URL as the client sees it.
    pub fn base(&self) -> String {
        base_url(&self.req, &self.state)
    }

    /// `attributes`/`excludedAttributes` of the query string.
    pub fn projection(&self) -> Result<Projection, Error> {
        projection_of(&self.req)
    }

    /// The request's JSON body (within `max_body_bytes`).
    pub async fn body(&self, payload: web::Payload) -> Result<Value, ScimError> {
        Ok(super::body::json(payload, self.state.config.max_body_bytes).await?)
    }

    /// The `If-Match` header, when present.
    pub fn if_match(&self) -> Option<String> {
        if_match(&self.req)
    }

    /// `304 Not Modified` when `If-None-Match` names the resource's version.
    pub fn not_modified(&self, meta: &crate::scim::resource::Meta) -> Option<HttpResponse> {
        not_modified(&self.req, meta.version).then(|| {
            HttpResponse::NotModified()
                .insert_header((header::ETAG, meta.etag()))
                .finish()
        })
    }

    /// The list parameters of the query string.
    pub fn list_params(&self) -> Result<ListParams, Error> {
        list_params(&self.req, self.state.config.max_results)
    }

    /// The list parameters of a SearchRequest body.
    pub async fn search_params(&self, payload: web::Payload) -> Result<ListParams, ScimError> {
        let input = self.body(payload).await?;
        Ok(ListParams::from_search(
            &input,
            self.state.config.max_results,
        )?)
    }
}

/// A resource type's endpoint (`/Users`, `/Groups`): its page of a list; the list and search
/// handlers are shared.
pub trait Endpoint {
    /// The page `params` asks for, rendered as a ListResponse.
    fn page(on: &On, params: ListParams) -> impl std::future::Future<Output = Reply>;
}

/// `GET /Users`, `GET /Groups`.
async fn list<E: Endpoint>(on: On) -> Reply {
    let params = on.list_params()?;
    E::page(&on, params).await
}

/// `POST /Users/.search`, `POST /Groups/.search`.
async fn search<E: Endpoint>(on: On, payload: web::Payload) -> Reply {
    let params = on.search_params(payload).await?;
    E::page(&on, params).await
}

/// `POST /.search` at the root: Users then Groups, paged as one list (RFC 7644 §3.4.3).
async fn search_all(on: On, payload: web::Payload) -> Reply {
    use crate::scim::schema::ResourceKind;
    let params = on.search_params(payload).await?;
    let q = params.query;
    let base = on.base();
    let users = on.store().list_users(on.key(), q.clone()).await?;
    let mut resources: Vec<Value> = users
        .items
        .into_iter()
        .map(|u| users::shown(u, &base, &params.projection))
        .collect();
    let group_query = ListQuery {
        filter: q.filter.clone(),
        sort: q.sort.clone(),
        start_index: (q.start_index - users.total).max(1),
        count: q.count - resources.len() as i64,
    };
    let with_members = !params.projection.drops(ResourceKind::Group, "members");
    let groups = on
        .store()
        .list_groups(on.key(), group_query, with_members)
        .await?;
    resources.extend(
        groups
            .items
            .iter()
            .map(|g| groups::shown(g, &base, &params.projection)),
    );
    Ok(respond_list(
        users.total + groups.total,
        q.start_index,
        resources,
    ))
}

async fn method_not_allowed() -> Result<HttpResponse, ScimError> {
    Err(ScimError(Error::new(
        405,
        None,
        "method not allowed on this endpoint",
    )))
}

/// The SCIM base URL as clients see it (`https://host/scim/v2`).
pub fn base_url(req: &HttpRequest, state: &AppState) -> String {
    match &state.config.public_url {
        Some(u) => format!("{u}/scim/v2"),
        None => {
            let info = req.connection_info();
            format!("{}://{}/scim/v2", info.scheme(), info.host())
        }
    }
}

/// A SCIM JSON response.
pub fn respond(status: actix_web::http::StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(SCIM_MEDIA_TYPE)
        .body(to_bytes(body))
}

/// `body` serialized into one buffer sized for a typical resource up front, rather than grown
/// from empty a few bytes at a time.
#[allow(
    clippy::expect_used,
    reason = "a JSON value or a resource written (string keys only) to a Vec cannot fail"
)]
fn to_bytes(body: &impl serde::Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, body).expect("a resource always serializes");
    out
}

/// A resource response with its ETag (and Location on create).
pub fn respond_resource(
    status: actix_web::http::StatusCode,
    body: &Value,
    etag: &str,
) -> HttpResponse {
    respond_serialized(status, serialized(body), etag)
}

/// A resource serialized, with its `meta.location`: what [`respond_serialized`] answers.
pub struct Serialized {
    bytes: Vec<u8>,
    location: Option<String>,
}

/// Serializes a resource (call it on a blocking thread for a large one).
pub fn serialized(body: &Value) -> Serialized {
    Serialized {
        bytes: to_bytes(body),
        location: body
            .pointer("/meta/location")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

impl Serialized {
    /// A resource written straight from its parts (`resource::WrittenUser`), at `location`.
    pub fn written(body: &impl serde::Serialize, location: String) -> Serialized {
        Serialized {
            bytes: to_bytes(body),
            location: Some(location),
        }
    }
}

/// As [`respond_resource`], for a resource serialized already.
pub fn respond_serialized(
    status: actix_web::http::StatusCode,
    body: Serialized,
    etag: &str,
) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    r.content_type(SCIM_MEDIA_TYPE)
        .insert_header((header::ETAG, etag.to_owned()));
    if status == actix_web::http::StatusCode::CREATED {
        if let Some(loc) = body.location {
            r.insert_header((header::LOCATION, loc));
        }
    }
    r.body(body.bytes)
}

/// The `If-Match` header, when present.
pub fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// True when `If-None-Match` names the current version (answer 304).
pub fn not_modified(req: &HttpRequest, version: i64) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| crate::scim::etag::matches(v, version))
}

/// The list parameters of a request's query string.
pub fn list_params(req: &HttpRequest, max: usize) -> Result<ListParams, Error> {
    let pairs = crate::http::query::pairs(req).map_err(Error::invalid_syntax)?;
    ListParams::from_pairs(&pairs, max)
}

/// The `attributes`/`excludedAttributes` of a request's query string.
pub(super) fn projection_of(req: &HttpRequest) -> Result<Projection, Error> {
    let pairs = crate::http::query::pairs(req).map_err(Error::invalid_syntax)?;
    ListParams::projection_of(&pairs)
}

/// A ListResponse (RFC 7644 §3.4.2), serialized straight from its parts.
#[allow(
    clippy::expect_used,
    reason = "JSON values written to a Vec cannot fail"
)]
pub fn respond_list<T: serde::Serialize>(
    total: i64,
    start_index: i64,
    resources: Vec<T>,
) -> HttpResponse {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ListResponse<'a, T> {
        schemas: [&'static str; 1],
        total_results: i64,
        start_index: i64,
        items_per_page: usize,
        #[serde(rename = "Resources")]
        resources: &'a [T],
    }
    let body = ListResponse {
        schemas: [LIST_RESPONSE],
        total_results: total,
        start_index,
        items_per_page: resources.len(),
        resources: &resources,
    };
    let mut out = Vec::with_capacity(256 + 1024 * resources.len());
    serde_json::to_writer(&mut out, &body).expect("a list response always serializes");
    HttpResponse::build(StatusCode::OK)
        .content_type(SCIM_MEDIA_TYPE)
        .body(out)
}
