//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` (RFC 7644 §4): what seatkeeper
//! supports, exactly.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{base_url, respond, respond_list, ScimError};
use crate::http::auth::ScimTenant;
use crate::http::state::AppState;
use crate::scim::schema::{resource_type_json, schema_json, ResourceKind, SCHEMAS};
use crate::scim::Error;

const KINDS: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

pub async fn service_provider_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    _t: ScimTenant,
) -> HttpResponse {
    let base = base_url(&req, &state);
    respond(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/seatkeeper/seatkeeper#readme",
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": crate::scim::bulk::MAX_OPERATIONS, "maxPayloadSize": state.config.max_body_bytes},
            "filter": {"supported": true, "maxResults": state.config.max_results},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A per-tenant bearer token issued by the operator (seatkeeper token issue TENANT).",
                "primary": true
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
        }),
    )
}

pub async fn resource_types(
    req: HttpRequest,
    state: web::Data<AppState>,
    _t: ScimTenant,
) -> HttpResponse {
    let base = base_url(&req, &state);
    let all: Vec<_> = KINDS
        .iter()
        .map(|k| resource_type_json(*k, &base))
        .collect();
    respond_list(all.len() as i64, 1, all)
}

pub async fn resource_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    _t: ScimTenant,
    name: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let base = base_url(&req, &state);
    let kind = KINDS
        .iter()
        .find(|k| k.name() == name.as_str())
        .ok_or_else(|| Error::not_found(format!("resource type {:?} not found", name.as_str())))?;
    Ok(respond(StatusCode::OK, &resource_type_json(*kind, &base)))
}

pub async fn schemas(req: HttpRequest, state: web::Data<AppState>, _t: ScimTenant) -> HttpResponse {
    let base = base_url(&req, &state);
    let all: Vec<_> = SCHEMAS
        .iter()
        .filter_map(|(urn, ..)| schema_json(urn, &base))
        .collect();
    respond_list(all.len() as i64, 1, all)
}

pub async fn schema(
    req: HttpRequest,
    state: web::Data<AppState>,
    _t: ScimTenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let base = base_url(&req, &state);
    let doc = schema_json(id.as_str(), &base)
        .ok_or_else(|| Error::not_found(format!("schema {:?} not found", id.as_str())))?;
    Ok(respond(StatusCode::OK, &doc))
}
