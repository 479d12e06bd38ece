//! What the admin API's handlers share: the answer type, `200 OK` with JSON, reading a JSON
//! body (required or optional), and query parameters.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::body;
use crate::http::error::AdminError;
use crate::http::state::AppState;

/// What an admin handler answers.
pub(crate) type Reply = Result<HttpResponse, AdminError>;

/// `200 OK` with `v` as JSON.
pub(crate) fn ok(v: impl serde::Serialize) -> Reply {
    Ok(HttpResponse::Ok().json(v))
}

/// Reads a JSON body into `T`, answering 400 with what was wrong.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    payload: web::Payload,
    state: &AppState,
) -> Result<T, AdminError> {
    let v = body::json(payload, state.config.max_body_bytes)
        .await
        .map_err(|e| AdminError::new(e.status, "invalid_request", e.detail))?;
    serde_json::from_value(v)
        .map_err(|e| AdminError::bad_request(format!("invalid request body: {e}")))
}

/// A JSON body that may be absent (then `T::default()`).
pub(crate) async fn optional_body<T: serde::de::DeserializeOwned + Default>(
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

/// The admin API's query parameter `name`, if given.
pub(crate) fn query_param(req: &HttpRequest, name: &str) -> Result<Option<String>, AdminError> {
    let q = crate::http::query::pairs(req).map_err(AdminError::bad_request)?;
    Ok(crate::http::query::value(&q, name, false))
}

pub(crate) fn int_param(
    req: &HttpRequest,
    name: &str,
    default: i64,
    max: i64,
) -> Result<i64, AdminError> {
    match query_param(req, name)? {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=max).contains(n) || name == "after")
            .ok_or_else(|| {
                AdminError::bad_request(format!("{name} must be a whole number up to {max}"))
            }),
    }
}
