//! Bearer-token extractors: [`ScimTenant`] (a tenant's SCIM token selects the tenant) and
//! [`Admin`] (the operator's admin token, compared in constant time).

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, FromRequest, HttpMessage as _, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{AdminError, ScimError, Throttled};
use super::limits::{retry_after, AdminKey};
use super::state::AppState;
use crate::scim;
use crate::store::{Authn, Tenant};

pub(crate) fn bearer(req: &HttpRequest) -> Option<String> {
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
pub struct ScimTenant(pub std::sync::Arc<Tenant>);

impl FromRequest for ScimTenant {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let state = state(req);
        let client = state.as_ref().and_then(|s| s.limits.client(req));
        let req = req.clone();
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ScimError(scim::Error::new(500, None, "no application state")))?;
            let brake = |d| Throttled {
                retry_after: retry_after(d),
                admin: false,
                detail: "too many failed authentications from this address",
            };
            // The token is checked before the brake: a valid one is served whatever else
            // came from its address (a shared proxy or egress); only failures are braked.
            let outcome = match &token {
                Some(t) => state
                    .store
                    .authenticate(t.clone())
                    .await
                    .map_err(ScimError::from)?,
                None => Authn::Refused {
                    tenant: None,
                    reason: "no token",
                },
            };
            let t = match outcome {
                Authn::Tenant(t) => t,
                Authn::Refused { tenant, reason } => {
                    if let Some((key, token_id)) = tenant {
                        // Counted in the store, where every node's refusals add up
                        // (`store::alerts`); recorded at most once a minute per token.
                        let store = state.store.clone();
                        let client = client.map(|c| c.to_string());
                        tokio::spawn(async move {
                            match store
                                .count_refused_token(key, token_id.clone(), reason, client)
                                .await
                            {
                                Ok(true) => {
                                    tracing::warn!(token = %token_id, reason, "SCIM request with a refused token")
                                }
                                Ok(false) => {}
                                Err(err) => {
                                    tracing::warn!(error = %err, "cannot count a refused token")
                                }
                            }
                        });
                    }
                    if let Some(d) = state.limits.failure(client) {
                        return Err(brake(d).into());
                    }
                    let why = if token.is_some() {
                        "the bearer token is not valid"
                    } else {
                        "a bearer token is required"
                    };
                    return Err(ScimError(scim::Error::unauthorized(why)).into());
                }
            };
            req.extensions_mut().insert(TenantTag(t.key));
            req.extensions_mut().insert(Proven);
            if let Some(d) = state.limits.scim(t.key) {
                return Err(Throttled {
                    retry_after: retry_after(d),
                    admin: false,
                    detail: "too many requests for this tenant",
                }
                .into());
            }
            state.store.provider_called(t.key);
            Ok(ScimTenant(t))
        })
    }
}

/// Marks a request whose credential proved valid: only such a request is exempt from its
/// address's request rate (`super::per_address`).
#[derive(Debug, Clone, Copy)]
pub struct Proven;

/// Marks a request as the tenant's (for the failing-request count), once its token is accepted.
#[derive(Debug, Clone, Copy)]
pub struct TenantTag(pub crate::store::TenantKey);

/// Proof that the request carries the operator's admin token, or a tenant admin token
/// (`ska_...`) on a path of its own tenant.
pub struct Admin {
    /// `None` for the operator; the tenant of a tenant admin token.
    pub tenant: Option<crate::store::TenantKey>,
    /// Who this is, as the audit log names it.
    pub actor: crate::store::events::audit::Actor,
}

impl Admin {
    /// Refuses tenant admin tokens (operator-only endpoints).
    pub fn operator(&self) -> Result<(), AdminError> {
        match self.tenant {
            None => Ok(()),
            Some(_) => Err(AdminError::new(
                403,
                "forbidden",
                "only the operator's admin token may do this",
            )),
        }
    }
}

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { admin(&req).await.map(|(a, _)| a) })
    }
}

/// An admin request with what its path names resolved before the handler runs: the credential
/// checked as [`Admin`] checks it and the `{tenant}` segment resolved by id or name, once. The
/// one preamble of every admin handler that acts on a tenant's (or the operator's) resources.
pub struct AdminOn<T> {
    /// Who asks.
    pub admin: Admin,
    /// The tenant the path names: [`OnTenant`] always has one; [`OnOwner`] has none on the
    /// operator-wide paths.
    pub tenant: T,
    /// The application.
    pub state: actix_web::web::Data<AppState>,
}

/// A request under `/admin/v1/tenants/{tenant}/...`.
pub type OnTenant = AdminOn<Tenant>;
/// A request on resources a tenant or the operator owns (product tokens, webhooks, the audit
/// log): under `/admin/v1/tenants/{tenant}/...` as [`OnTenant`]; on the operator-wide paths (no
/// `{tenant}`) the operator's admin token only.
pub type OnOwner = AdminOn<Option<Tenant>>;

impl<T> AdminOn<T> {
    /// The audit log's name for who asks.
    pub fn actor(&self) -> crate::store::events::audit::Actor {
        self.admin.actor.clone()
    }

    /// The store.
    pub fn store(&self) -> &crate::store::Store {
        &self.state.store
    }
}

impl OnTenant {
    /// The tenant's key.
    pub fn key(&self) -> crate::store::TenantKey {
        self.tenant.key
    }
}

impl OnOwner {
    /// The owning tenant's key, `None` for the operator's own.
    pub fn key(&self) -> Option<crate::store::TenantKey> {
        self.tenant.as_ref().map(|t| t.key)
    }
}

/// What an [`AdminOn`] keeps of the tenant its path names, with the rule that goes with it.
pub trait PathTenant: Sized + 'static {
    /// From the tenant the path names (`None` on an operator-wide path), for `admin`.
    fn from_path(admin: &Admin, tenant: Option<Tenant>) -> Result<Self, actix_web::Error>;
}

impl PathTenant for Tenant {
    fn from_path(_: &Admin, tenant: Option<Tenant>) -> Result<Self, actix_web::Error> {
        tenant.ok_or_else(|| AdminError::new(500, "internal", "the route names no tenant").into())
    }
}

impl PathTenant for Option<Tenant> {
    /// Operator-wide paths are the operator's only.
    fn from_path(admin: &Admin, tenant: Option<Tenant>) -> Result<Self, actix_web::Error> {
        if tenant.is_none() {
            admin.operator()?;
        }
        Ok(tenant)
    }
}

impl<T: PathTenant> FromRequest for AdminOn<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (admin, tenant, state) = admin_on(&req).await?;
            let tenant = T::from_path(&admin, tenant)?;
            Ok(AdminOn {
                admin,
                tenant,
                state,
            })
        })
    }
}

/// The admin credential checked and the `{tenant}` segment, where the route has one, resolved
/// by id or name once the credential is known to be allowed on it (see [`admin`]).
async fn admin_on(
    req: &HttpRequest,
) -> Result<(Admin, Option<Tenant>, actix_web::web::Data<AppState>), actix_web::Error> {
    let (admin, tenant) = admin(req).await?;
    let state =
        state(req).ok_or_else(|| AdminError::new(500, "internal", "no application state"))?;
    Ok((admin, tenant, state))
}

/// Whose admin credential a token is.
pub(crate) enum AdminIdentity {
    /// The operator's admin token.
    Operator,
    /// A tenant admin token (`ska_<id>_...`) of this tenant.
    Tenant {
        tenant: Box<Tenant>,
        token_id: String,
    },
}

/// Whose admin credential `given` is, if any: the operator's admin token (compared in constant
/// time, as hashes) or a valid tenant admin token. The one check behind the admin API and the
/// console's sign-in.
pub(crate) async fn admin_identity(
    state: &AppState,
    given: &str,
) -> Result<Option<AdminIdentity>, crate::store::Error> {
    if let Some(expected) = state
        .config
        .admin_token
        .as_ref()
        .filter(|_| !given.is_empty())
    {
        let a = Sha256::digest(given.as_bytes());
        let b = Sha256::digest(expected.0.as_bytes());
        if bool::from(a.ct_eq(&b)) {
            return Ok(Some(AdminIdentity::Operator));
        }
    }
    if !given.starts_with("ska_") {
        return Ok(None);
    }
    let token_id = given.split('_').nth(1).unwrap_or_default().to_owned();
    Ok(state
        .store
        .authenticate_admin(given.to_owned())
        .await?
        .map(|tenant| AdminIdentity::Tenant {
            tenant: Box::new(tenant),
            token_id,
        }))
}

/// Why the admin surfaces (the admin API and the console) are shut to a request.
pub(crate) enum Shut {
    /// No admin token is configured: both are off.
    Off,
    /// The client is not on loopback and `admin_remote` is not set.
    LoopbackOnly,
}

/// The admin surfaces' gate, one rule for the admin API and the console: off without an admin
/// token, loopback clients only unless `admin_remote`.
pub(crate) fn admin_gate(req: &HttpRequest, config: &crate::config::Config) -> Result<(), Shut> {
    if config.admin_token.is_none() {
        return Err(Shut::Off);
    }
    if !config.admin_remote && !req.peer_addr().is_some_and(|a| a.ip().is_loopback()) {
        return Err(Shut::LoopbackOnly);
    }
    Ok(())
}

/// The `{tenant}` segment of an admin path, decoded as the handlers' `web::Path` decodes it.
#[derive(serde::Deserialize)]
struct TenantSegment {
    tenant: String,
}

/// The admin credential of `req` checked, with the tenant its path names when a tenant admin
/// token's authorization already resolved it.
async fn admin(req: &HttpRequest) -> Result<(Admin, Option<Tenant>), actix_web::Error> {
    let state =
        state(req).ok_or_else(|| AdminError::new(500, "internal", "no application state"))?;
    match admin_gate(req, &state.config) {
        Ok(()) => {}
        Err(Shut::Off) => return Err(AdminError::new(
            404,
            "admin_disabled",
            "the admin API is off: set admin_token (SEATKEEPER_ADMIN_TOKEN) or admin_token_file",
        )
        .into()),
        Err(Shut::LoopbackOnly) => {
            return Err(AdminError::new(
                403,
                "forbidden",
                "the admin API answers loopback clients only; set admin_remote = true to open it",
            )
            .into())
        }
    }
    let brake = |d| Throttled {
        retry_after: retry_after(d),
        admin: true,
        detail: "too many failed authentications from this address",
    };
    let client = state.limits.client(req);
    // As for SCIM: a valid token is served whatever its address did; failures are braked.
    let fail = |message: &'static str| -> actix_web::Error {
        match state.limits.failure(client) {
            Some(d) => brake(d).into(),
            None => AdminError::new(401, "unauthorized", message).into(),
        }
    };
    let Some(given) = bearer(req) else {
        return Err(fail("a bearer token is required"));
    };
    let identity = admin_identity(&state, &given)
        .await
        .map_err(AdminError::from)?;
    // The path's `{tenant}` segment, decoded as the handlers' `web::Path` decodes it.
    let segment = match req.match_info().get("tenant") {
        Some(_) => Some(
            actix_web::web::Path::<TenantSegment>::extract(req)
                .await
                .map_err(|e| AdminError::bad_request(e.to_string()))?
                .into_inner()
                .tenant,
        ),
        None => None,
    };
    let (resolved, bucket) = match identity {
        Some(AdminIdentity::Operator) => {
            req.extensions_mut().insert(Proven);
            // The operator may act on every tenant: the path is resolved now, and remembered
            // under the hash of this very credential and the name.
            let resolved = match &segment {
                Some(name) => Some(
                    state
                        .store
                        .tenant_for_operator(&Sha256::digest(given.as_bytes()).into(), name)
                        .await
                        .map_err(AdminError::from)?,
                ),
                None => None,
            };
            (resolved, AdminKey::Operator)
        }
        Some(AdminIdentity::Tenant {
            tenant: t,
            token_id,
        }) => {
            req.extensions_mut().insert(Proven);
            // Authorized against the token's own tenant before anything else: the segment is
            // compared with that tenant's id and name, the path never resolved for a token
            // that may not act on it.
            let forbidden = || -> actix_web::Error {
                AdminError::new(
                    403,
                    "forbidden",
                    "a tenant admin token reaches /admin/v1/tenants/{its tenant}/... only",
                )
                .into()
            };
            let Some(segment) = segment else {
                return Err(forbidden());
            };
            if !state
                .store
                .path_names(&t, &segment)
                .await
                .map_err(AdminError::from)?
            {
                return Err(forbidden());
            }
            (Some(*t), AdminKey::Token(token_id))
        }
        None => return Err(fail("the admin token is not valid")),
    };
    let actor = match &bucket {
        AdminKey::Operator => crate::store::events::audit::Actor::operator(),
        AdminKey::Token(id) => crate::store::events::audit::Actor::tenant_admin(id),
    };
    if let Some(d) = state.limits.admin(bucket.clone()) {
        return Err(Throttled {
            retry_after: retry_after(d),
            admin: true,
            detail: "too many admin requests",
        }
        .into());
    }
    let tenant = match bucket {
        AdminKey::Operator => None,
        AdminKey::Token(_) => resolved.as_ref().map(|t| t.key),
    };
    Ok((Admin { tenant, actor }, resolved))
}
