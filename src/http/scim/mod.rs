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
use super::AppState;
use crate::scim::filter::Filter;
use crate::scim::projection::Projection;
use crate::scim::{self as proto, Error, LIST_RESPONSE, SCIM_MEDIA_TYPE};
use crate::store::ListQuery;

pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

pub fn scope() -> actix_web::Scope {
    let r =
        |path: &str| web::resource(path.to_owned()).default_service(web::to(method_not_allowed));
    web::scope("/scim/v2")
        .service(
            r("/Users")
                .route(web::get().to(users::list))
                .route(web::post().to(users::create)),
        )
        .service(r("/Users/.search").route(web::post().to(users::search)))
        .service(
            r("/Users/{id}")
                .route(web::get().to(users::get))
                .route(web::put().to(users::replace))
                .route(web::patch().to(users::patch))
                .route(web::delete().to(users::delete)),
        )
        .service(
            r("/Groups")
                .route(web::get().to(groups::list))
                .route(web::post().to(groups::create)),
        )
        .service(r("/Groups/.search").route(web::post().to(groups::search)))
        .service(
            r("/Groups/{id}")
                .route(web::get().to(groups::get))
                .route(web::put().to(groups::replace))
                .route(web::patch().to(groups::patch))
                .route(web::delete().to(groups::delete)),
        )
        .service(r("/.search").route(web::post().to(search_all)))
        .service(r("/Bulk").route(web::post().to(bulk::bulk)))
        .service(
            r("/ServiceProviderConfig").route(web::get().to(discovery::service_provider_config)),
        )
        .service(r("/ResourceTypes").route(web::get().to(discovery::resource_types)))
        .service(r("/ResourceTypes/{name}").route(web::get().to(discovery::resource_type)))
        .service(r("/Schemas").route(web::get().to(discovery::schemas)))
        .service(r("/Schemas/{id}").route(web::get().to(discovery::schema)))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ScimError(Error::not_found("no such SCIM endpoint")))
        }))
}

/// `POST /.search` at the root: Users then Groups, paged as one list (RFC 7644 §3.4.3).
async fn search_all(
    req: HttpRequest,
    state: web::Data<AppState>,
    t: super::auth::ScimTenant,
    payload: web::Payload,
) -> Result<HttpResponse, ScimError> {
    use crate::scim::schema::ResourceKind;
    let input = super::body::json(payload, state.config.max_body_bytes).await?;
    let params = ListParams::from_search(&input, state.config.max_results)?;
    let q = params.query;
    let base = base_url(&req, &state);
    let users = state.store.list_users(t.0.key, q.clone()).await?;
    let mut resources: Vec<Value> = users
        .items
        .into_iter()
        .map(|u| {
            let mut v = users::render_user(u, &base);
            params.projection.apply(ResourceKind::User, &mut v);
            v
        })
        .collect();
    let group_query = ListQuery {
        filter: q.filter.clone(),
        sort: q.sort.clone(),
        start_index: (q.start_index - users.total).max(1),
        count: q.count - resources.len() as i64,
    };
    let with_members = !params.projection.drops(ResourceKind::Group, "members");
    let groups = state
        .store
        .list_groups(t.0.key, group_query, with_members)
        .await?;
    resources.extend(groups.items.iter().map(|g| {
        let mut v = groups::render_group(g, &base);
        params.projection.apply(ResourceKind::Group, &mut v);
        v
    }));
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
    reason = "a JSON value written to a Vec cannot fail"
)]
fn to_bytes(body: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, body).expect("a JSON value always serializes");
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
        .is_some_and(|v| crate::store::version_matches(v, version))
}

/// The `attributes`/`excludedAttributes` of a request's query string.
pub(super) fn projection_of(req: &HttpRequest) -> Result<Projection, Error> {
    let q = crate::http::query::pairs(req).map_err(Error::invalid_syntax)?;
    Projection::parse(
        crate::http::query::value(&q, "attributes", true).as_deref(),
        crate::http::query::value(&q, "excludedAttributes", true).as_deref(),
    )
}

/// List parameters from a query string or a SearchRequest body.
pub struct ListParams {
    pub query: ListQuery,
    pub projection: Projection,
}

fn int_param(name: &str, v: &str) -> Result<i64, Error> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid_value(format!("{name} must be an integer, got {v:?}")))
}

/// List parameters as the client wrote them.
#[derive(Default)]
struct RawParams {
    filter: Option<String>,
    start: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
}

impl ListParams {
    fn build(raw: RawParams, max: usize) -> Result<ListParams, Error> {
        let filter = match raw
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(f) => Some(Filter::parse(f)?),
            None => None,
        };
        let descending = match raw.sort_order.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(Error::invalid_value(format!(
                    "sortOrder must be ascending or descending, got {o:?}"
                )))
            }
        };
        let sort = match raw
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(p) => Some((
                crate::scim::path::AttrPath::parse(p)
                    .filter(|p| !p.is_whole_extension())
                    .ok_or_else(|| {
                        Error::invalid_value(format!("sortBy: {p:?} is not an attribute path"))
                    })?,
                descending,
            )),
        };
        let max = max as i64;
        Ok(ListParams {
            query: ListQuery {
                filter,
                start_index: raw.start.unwrap_or(1).max(1),
                count: raw.count.unwrap_or(max).clamp(0, max),
                sort,
            },
            projection: Projection::parse(raw.attributes.as_deref(), raw.excluded.as_deref())?,
        })
    }

    /// From `?filter=...&startIndex=...&count=...&sortBy=...&sortOrder=...&attributes=...&excludedAttributes=...`.
    pub fn from_query(req: &HttpRequest, max: usize) -> Result<ListParams, Error> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map_err(|e| Error::invalid_syntax(format!("bad query string: {e}")))?
            .into_inner();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let raw = RawParams {
            filter: get("filter"),
            start: get("startIndex")
                .map(|v| int_param("startIndex", &v))
                .transpose()?,
            count: get("count").map(|v| int_param("count", &v)).transpose()?,
            attributes: get("attributes"),
            excluded: get("excludedAttributes"),
            sort_by: get("sortBy"),
            sort_order: get("sortOrder"),
        };
        Self::build(raw, max)
    }

    /// From a SearchRequest body (RFC 7644 §3.4.3).
    pub fn from_search(body: &Value, max: usize) -> Result<ListParams, Error> {
        if !body.is_object() {
            return Err(Error::invalid_syntax(
                "a SearchRequest must be a JSON object",
            ));
        }
        let get = |k: &str| proto::eval::get_ci(body, k);
        let text = |k: &str| -> Result<Option<String>, Error> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(a)) => Ok(Some(
                    a.iter()
                        .map(|v| {
                            v.as_str().map(str::to_owned).ok_or_else(|| {
                                Error::invalid_value(format!("{k} must list strings"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join(","),
                )),
                Some(_) => Err(Error::invalid_value(format!("{k} has the wrong type"))),
            }
        };
        let int = |k: &str| -> Result<Option<i64>, Error> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| Error::invalid_value(format!("{k} must be an integer"))),
                Some(Value::String(s)) => int_param(k, s).map(Some),
                Some(_) => Err(Error::invalid_value(format!("{k} must be an integer"))),
            }
        };
        let raw = RawParams {
            filter: text("filter")?,
            start: int("startIndex")?,
            count: int("count")?,
            attributes: text("attributes")?,
            excluded: text("excludedAttributes")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
        };
        Self::build(raw, max)
    }
}

/// A ListResponse (RFC 7644 §3.4.2), serialized straight from its parts.
#[allow(
    clippy::expect_used,
    reason = "JSON values written to a Vec cannot fail"
)]
pub fn respond_list(total: i64, start_index: i64, resources: Vec<Value>) -> HttpResponse {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ListResponse<'a> {
        schemas: [&'static str; 1],
        total_results: i64,
        start_index: i64,
        items_per_page: usize,
        #[serde(rename = "Resources")]
        resources: &'a [Value],
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
