//! Bearer-token extractors: [`ScimTenant`] (a tenant's SCIM token selects the tenant) and
//! [`Admin`] (the operator's admin token, compared in constant time).

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{AdminError, ScimError};
use super::AppState;
use crate::scim;
use crate::store::Tenant;

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn state(req: &HttpRequest) -> Option<actix_web::web::Data<AppState>> {
    req.app_data::<actix_web::web::Data<AppState>>().cloned()
}

/// The tenant whose SCIM token authenticated the request.
pub struct ScimTenant(pub Tenant);

impl FromRequest for ScimTenant {
    type Error = ScimError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let state = state(req);
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ScimError(scim::Error::new(500, None, "no application state")))?;
            let Some(token) = token else {
                return Err(ScimError(scim::Error::unauthorized(
                    "a bearer token is required",
                )));
            };
            match state.store.authenticate(token).await? {
                Some(t) => {
                    state.store.provider_called(t.key);
                    Ok(ScimTenant(t))
                }
                None => Err(ScimError(scim::Error::unauthorized(
                    "the bearer token is not valid",
                ))),
            }
        })
    }
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = (|| {
            let state = state(req)
                .ok_or_else(|| AdminError::new(500, "internal", "no application state"))?;
            let Some(expected) = &state.config.admin_token else {
                return Err(AdminError::new(
                    404,
                    "admin_disabled",
                    "the admin API is off: set admin_token (SEATKEEPER_ADMIN_TOKEN) or admin_token_file",
                ));
            };
            let given = bearer(req).ok_or_else(|| {
                AdminError::new(401, "unauthorized", "a bearer token is required")
            })?;
            let a = Sha256::digest(given.as_bytes());
            let b = Sha256::digest(expected.0.as_bytes());
            if bool::from(a.ct_eq(&b)) {
                Ok(Admin)
            } else {
                Err(AdminError::new(
                    401,
                    "unauthorized",
                    "the admin token is not valid",
                ))
            }
        })();
        std::future::ready(result)
    }
}
