//! The circuit breaker's holds in the admin API (see `alloc`'s module doc):
//!
//! - `GET /tenants/{tenant}/holds?state=` → `{"holds": [...]}`, newest first; each with `id`,
//!   `license {id, name}`, `state` (open, approved, rejected, dissolved), `created`, `held`
//!   (seats held now), `total` (losses ever held), `changes` (`[{change, kind, count}]`: what the
//!   directory did), `decidedAt`, `decidedBy`
//! - `GET /tenants/{tenant}/holds/{id}` → one, with `users` (`[{userId, userName, displayName,
//!   change}]`, the first 1,000 by user name)
//! - `POST /tenants/{tenant}/holds/{id}/approve` → 200, the hold approved: its losses go through
//!   (grace, release, promotion). Also releases the seats a rejected hold kept.
//! - `POST /tenants/{tenant}/holds/{id}/reject` → 200, the hold rejected: the held users keep
//!   their seats until the directory entitles them again or an admin approves it after all.
//!
//! Deciding a hold that is no longer open (or, for approve, rejected) answers 409.

use actix_web::{web, HttpRequest};

use super::auth::OnTenant;
use super::error::AdminError;
use super::openapi::{Doc, Routes};
use super::reply::query_param;
use super::reply::{ok, Reply};
use crate::store::{Decision, HoldView};

/// The hold routes, added to the admin routes.
pub fn routes(r: Routes) -> Routes {
    use actix_web::http::Method as M;
    r.add(
        M::GET,
        "/tenants/{tenant}/holds",
        list,
        Doc::new("The tenant's circuit-breaker holds, newest first")
            .query(
                "state",
                "Only holds in this state: open, approved, rejected or dissolved.",
            )
            .list::<HoldView>("holds", "The holds."),
    )
    .add(
        M::GET,
        "/tenants/{tenant}/holds/{id}",
        get,
        Doc::new("One hold with the users it holds").ok::<HoldView>("The hold."),
    )
    .add(
        M::POST,
        "/tenants/{tenant}/holds/{id}/approve",
        approve,
        Doc::new("Approve a hold: the held seat losses go through (grace, release, promotion)")
            .ok::<HoldView>("The hold, approved."),
    )
    .add(
        M::POST,
        "/tenants/{tenant}/holds/{id}/reject",
        reject,
        Doc::new("Reject a hold: the held users keep their seats")
            .ok::<HoldView>("The hold, rejected."),
    )
}

fn id_of(raw: &str) -> Result<i64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::new(404, "not_found", format!("hold {raw:?} not found")))
}

/// `{id}` of a path.
#[derive(serde::Deserialize)]
struct OfHold {
    id: String,
}

async fn list(at: OnTenant, req: HttpRequest) -> Reply {
    let filter = query_param(&req, "state")?;
    ok(serde_json::json!({"holds": at.store().holds(at.key(), filter).await?}))
}

async fn get(at: OnTenant, p: web::Path<OfHold>) -> Reply {
    ok(at.store().hold(at.key(), id_of(&p.id)?).await?)
}

async fn decide(at: OnTenant, p: web::Path<OfHold>, decision: Decision) -> Reply {
    let id = id_of(&p.id)?;
    let hold = at
        .store()
        .decide_hold(at.key(), id, decision, at.actor())
        .await?;
    // An approval may have freed seats and notified: the mail sender looks now.
    at.state.mail_wake.notify_one();
    ok(hold)
}

async fn approve(at: OnTenant, p: web::Path<OfHold>) -> Reply {
    decide(at, p, Decision::Approve).await
}

async fn reject(at: OnTenant, p: web::Path<OfHold>) -> Reply {
    decide(at, p, Decision::Reject).await
}
