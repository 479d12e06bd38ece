//! The edge where every layer's error becomes an HTTP response: SCIM error bodies under
//! `/scim/v2`, JSON error bodies under `/admin/v1`. Internal failures are logged here and
//! answered without details.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::scim;
use crate::store;

/// An error answered as a SCIM error body (RFC 7644 §3.12).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScimError(pub scim::Error);

impl From<scim::Error> for ScimError {
    fn from(e: scim::Error) -> Self {
        ScimError(e)
    }
}

impl From<store::Error> for ScimError {
    fn from(e: store::Error) -> Self {
        use store::Failure as F;
        ScimError(match e.classify() {
            F::NotFound(m) => scim::Error::not_found(m),
            F::Conflict(m) => scim::Error::uniqueness(m),
            F::Precondition => scim::Error::precondition_failed(
                "the resource has changed since the version in If-Match",
            ),
            F::Scim(e) => e,
            F::Invalid(m) => scim::Error::invalid_value(m),
            F::ShuttingDown => scim::Error::new(503, None, F::SHUTTING_DOWN),
            F::Busy => scim::Error::new(503, None, F::BUSY),
            F::Contention => scim::Error::new(503, None, F::CONTENTION),
            F::TooMany(m, _) => scim::Error::new(429, None, m),
            F::Unavailable => scim::Error::new(503, None, F::UNAVAILABLE),
            F::Internal => scim::Error::new(500, None, "internal error"),
        })
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        r.content_type(scim::SCIM_MEDIA_TYPE);
        if self.0.status == 401 {
            r.insert_header(("WWW-Authenticate", "Bearer realm=\"seatkeeper\""));
        }
        if self.0.status == 503 {
            // Entra and Okta back off and retry on 503 with Retry-After.
            r.insert_header(("Retry-After", "1"));
        }
        let mut resp = r.body(self.0.to_body().to_string());
        resp.extensions_mut().insert(ErrorKind(
            self.0.scim_type.map(|t| t.as_str()).unwrap_or(""),
            self.0.detail.clone(),
        ));
        resp
    }
}

/// The `scimType` and detail of a SCIM error answer, for the failing-request notification and
/// the identity provider's failure log.
#[derive(Debug, Clone)]
pub struct ErrorKind(pub &'static str, pub String);

/// An error of the admin API: `{"error": code, "message": text}`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AdminError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` on a 429.
    pub retry_after: Option<u64>,
}

impl AdminError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }
}

impl From<store::Error> for AdminError {
    fn from(e: store::Error) -> Self {
        use store::Failure as F;
        match e.classify() {
            F::NotFound(m) => AdminError::new(404, "not_found", m),
            F::Conflict(m) => AdminError::new(409, "conflict", m),
            F::Precondition => AdminError::new(412, "precondition_failed", "version mismatch"),
            F::Scim(e) => AdminError::new(e.status, "invalid_request", e.detail),
            F::Invalid(m) => AdminError::bad_request(m),
            F::ShuttingDown => AdminError::new(503, "unavailable", F::SHUTTING_DOWN),
            F::Busy => AdminError::new(503, "busy", F::BUSY),
            F::Contention => AdminError::new(503, "busy", F::CONTENTION),
            F::TooMany(m, after) => AdminError {
                retry_after: Some(after),
                ..AdminError::new(429, "rate_limited", m)
            },
            F::Unavailable => AdminError::new(503, "unavailable", F::UNAVAILABLE),
            F::Internal => AdminError::new(500, "internal", "internal error"),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if self.status == 401 {
            r.insert_header(("WWW-Authenticate", "Bearer realm=\"seatkeeper-admin\""));
        }
        if self.status == 503 {
            r.insert_header(("Retry-After", "1"));
        }
        if let Some(after) = self.retry_after {
            r.insert_header(("Retry-After", after.max(1).to_string()));
        }
        r.json(json!({"error": self.code, "message": self.message}))
    }
}

/// 429 Too Many Requests, with `Retry-After`, as a SCIM error body (or the admin API's JSON).
#[derive(Debug, thiserror::Error)]
#[error("too many requests; retry after {retry_after} s")]
pub struct Throttled {
    pub retry_after: u64,
    pub admin: bool,
    pub detail: &'static str,
}

impl ResponseError for Throttled {
    fn status_code(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS);
        r.insert_header(("Retry-After", self.retry_after.to_string()));
        if self.admin {
            r.json(json!({"error": "rate_limited", "message": self.detail}))
        } else {
            r.content_type(scim::SCIM_MEDIA_TYPE).body(
                scim::Error::new(429, None, self.detail)
                    .to_body()
                    .to_string(),
            )
        }
    }
}
