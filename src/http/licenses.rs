//! The admin API of licenses and seats (stable contract), under `/admin/v1/tenants/{tenant}`:
//!
//! - `POST /licenses`, `GET /licenses`, `GET|PATCH|DELETE /licenses/{license}`
//! - `GET /licenses/{license}/seats[?state=granted|blocked|releasing]`
//! - `GET /licenses/{license}/seats/{userName}` — the seat check; `POST .../seats/{userName}/grant`
//! - `GET /licenses/{license}/overrides`; `PUT|DELETE /licenses/{license}/overrides/{userName}` with `{"kind": "pin"|"exclude"}`
//! - `GET /licenses/{license}/reclaim` — what idle-seat reclaim would take
//! - `POST|DELETE /licenses/{license}/holders` — people carried over as today's seat holders of
//!   a license in observe mode (JSON or CSV); `GET /licenses/{license}/shadow` — what
//!   enforcing it would do
//! - `POST /licenses/{license}/preview` with any license change, an `override` or a `grant`
//! - `GET /users/{userName}/seats` — every seat of one user
//! - `POST /reconcile`, `GET /status`, `PATCH` the tenant's settings
//! - `GET /seat-events?after=CURSOR&limit=N`, `GET /audit?limit=N`
//!
//! `{license}` is a license id or name.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::OnTenant;
use super::error::AdminError;
use super::openapi::{Doc, Routes};
use super::reply::{int_param, query_param};
use super::reply::{json_body, ok, Reply};
use crate::alloc::{OverrideKind, SeatState};
use crate::store::{GroupSelection, LicenseChange, LicenseSpec, Proposed};

/// Licenses, seats and the rest of the allocation admin API, added to the admin routes.
pub fn routes(r: Routes) -> Routes {
    use crate::store::{
        LicenseView, PreviewView, ReclaimPreview, ReconcileReport, SeatEvents, SeatView, SeatsView,
        TenantStatus, UserSeat,
    };
    use actix_web::http::Method as M;
    let lic = "/tenants/{tenant}/licenses/{license}";
    r.add(
        M::POST,
        "/tenants/{tenant}/licenses",
        create,
        Doc::new("Create a license: its seat count, the groups it selects and its policy")
            .body::<LicenseSpec>()
            .created::<LicenseView>("The license; seats are allocated at once."),
    )
    .add(
        M::GET,
        "/tenants/{tenant}/licenses",
        list,
        Doc::new("The tenant's licenses").list::<LicenseView>("licenses", "The licenses."),
    )
    .add(
        M::GET,
        lic,
        get,
        Doc::new("One license").ok::<LicenseView>("The license."),
    )
    .add(
        M::PATCH,
        lic,
        update,
        Doc::new("Change a license: seats, groups, policy, recipients, idle reclaim")
            .body::<LicenseChange>()
            .ok::<LicenseView>("The license as changed; seats are reallocated in the same write."),
    )
    .add(
        M::DELETE,
        lic,
        delete,
        Doc::new("Delete a license and its seats").no_content("Deleted."),
    )
    .add(
        M::GET,
        &format!("{lic}/true-up"),
        true_up,
        Doc::new("What a vendor bills on over a period: peak use, days and seat-days above the seat count, per day (UTC days)")
            .query("from", "First day, YYYY-MM-DD (default: the first of this month).")
            .query("to", "Last day, YYYY-MM-DD (default: today).")
            .query("format", "`csv` for CSV.")
            .ok::<crate::store::LicenseTrueUp>("The true-up.")
            .ok_text("text/csv", "The true-up as CSV (format=csv)."),
    )
    .add(
        M::GET,
        &format!("{lic}/forecast"),
        forecast,
        Doc::new("When the license runs out of seats at the present trend of demand")
            .ok::<crate::capacity::Forecast>("The forecast."),
    )
    .add(
        M::GET,
        &format!("{lic}/seats"),
        seats,
        Doc::new("The license's seats: granted, releasing and the waitlist in order")
            .query(
                "state",
                "Only seats in this state: granted, blocked or releasing.",
            )
            .query(
                "reasons",
                "`true`: each seat with the group that entitles it (`entitledBy`) and, when it is not simply held, why (`reason`), as the seat check has them (a few more reads per seat).",
            )
            .ok::<SeatsView>("The seats."),
    )
    .add(
        M::GET,
        &format!("{lic}/seats/{{user}}"),
        seat,
        Doc::new("One user's seat (state none when there is no seat row)")
            .query(
                "reasons",
                "`true`: unless simply holding a seat, the group that entitles them (`entitledBy`) and why (`reason`), in the admin's words (one more read).",
            )
            .ok::<SeatView>("The seat."),
    )
    .add(
        M::POST,
        &format!("{lic}/seats/{{user}}/grant"),
        grant,
        Doc::new("Grant a waiting user a free seat out of order")
            .ok::<SeatView>("The seat, granted."),
    )
    .add(
        M::GET,
        &format!("{lic}/overrides"),
        overrides,
        Doc::new("The license's overrides: pins, exclusions and idle reclaims, with who set each")
            .list::<crate::store::OverrideView>("overrides", "By userName."),
    )
    .add(
        M::PUT,
        &format!("{lic}/overrides/{{user}}"),
        put_override,
        Doc::new("Pin (always served first) or exclude (never served) a user")
            .body::<OverrideBody>()
            .ok::<SeatView>("The user's seat after the override."),
    )
    .add(
        M::DELETE,
        &format!("{lic}/overrides/{{user}}"),
        delete_override,
        Doc::new("Remove a user's override")
            .no_content("Removed; the user's seat follows the rules again."),
    )
    .add(
        M::POST,
        &format!("{lic}/preview"),
        preview,
        Doc::new("What a proposed license change, override or manual grant would do, without doing it")
            .body::<PreviewBody>()
            .ok::<PreviewView>("Who would be granted, promoted, blocked, releasing or released."),
    )
    .add(
        M::GET,
        &format!("{lic}/reclaim"),
        reclaim,
        Doc::new(
            "The seats idle-seat reclaim would take at its next pass and within the notice period",
        )
        .ok::<ReclaimPreview>("Due and soon."),
    )
    .add(
        M::POST,
        &format!("{lic}/holders"),
        carry_holders,
        Doc::new("Carry over the people who hold a seat today (a license in observe mode): served first, in the order given, when the license switches to enforce. A JSON array of user references (id, userName, externalId or email), `{\"holders\": [...]}`, or CSV (`text/csv`, the first column; a header row is skipped); at most 100,000 per request, added after those carried over before")
            .body::<HoldersBody>()
            .ok::<crate::store::HoldersReport>("Who was carried over, and the references that matched nobody."),
    )
    .add(
        M::DELETE,
        &format!("{lic}/holders"),
        clear_holders,
        Doc::new("Forget the people carried over").ok::<HoldersCleared>("How many were forgotten."),
    )
    .add(
        M::GET,
        &format!("{lic}/shadow"),
        shadow,
        Doc::new("What enforcing a license in observe mode would do against the seats carried over: who keeps a seat, who gains one, who waits (with their place) and who loses one (with why)")
            .query_int("limit", "At most this many people per list (default 10000, at most 100000); the counts are whole.")
            .ok::<crate::store::ShadowView>("The shadow report."),
    )
    .add(
        M::GET,
        "/tenants/{tenant}/users/{user}/seats",
        user_seats,
        Doc::new("A user's seats across the tenant's licenses")
            .list::<UserSeat>("seats", "The seats."),
    )
    .add(
        M::POST,
        "/tenants/{tenant}/reconcile",
        reconcile,
        Doc::new("Run the reconciler over the tenant now")
            .ok::<ReconcileReport>("What it found and repaired."),
    )
    .add(
        M::GET,
        "/tenants/{tenant}/status",
        status,
        Doc::new("Provisioning status, seat figures and pending references")
            .ok::<TenantStatus>("The status."),
    )
    .add(
        M::GET,
        "/tenants/{tenant}/provisioning/failures",
        provisioning_failures,
        Doc::new("The identity provider's failing requests of the last 7 days, each kind with its count and likely cause, and the failure rate against the provider's quarantine rule")
            .ok::<crate::store::ProviderHealth>("The provider's health."),
    )
    .add(
        M::GET,
        "/tenants/{tenant}/seat-events",
        seat_events,
        Doc::new("The seat-event feed, oldest first, from a cursor")
            .query_int(
                "after",
                "Read events after this cursor (the `next` of the previous page).",
            )
            .query_int(
                "limit",
                "At most this many events (default 1000, at most 10000).",
            )
            .ok::<SeatEvents>("A page of events."),
    )
}

/// `{license}` of a path (id or name).
#[derive(Deserialize)]
struct OfLicense {
    license: String,
}

/// `{license}` and `{user}` (id or userName) of a path.
#[derive(Deserialize)]
struct OfSeat {
    license: String,
    user: String,
}

/// `{user}` of a path.
#[derive(Deserialize)]
struct OfUser {
    user: String,
}

async fn create(at: OnTenant, payload: web::Payload) -> Reply {
    let spec: LicenseSpec = json_body(payload, &at.state).await?;
    let license = at
        .store()
        .create_license(at.key(), spec, at.actor())
        .await?;
    Ok(HttpResponse::Created().json(license))
}

async fn list(at: OnTenant) -> Reply {
    ok(json!({"licenses": at.store().list_licenses(at.key()).await?}))
}

async fn get(at: OnTenant, p: web::Path<OfLicense>) -> Reply {
    ok(at.store().license(at.key(), p.into_inner().license).await?)
}

async fn update(at: OnTenant, p: web::Path<OfLicense>, payload: web::Payload) -> Reply {
    let change: LicenseChange = json_body(payload, &at.state).await?;
    let license = p.into_inner().license;
    ok(at
        .store()
        .update_license(at.key(), license, change, at.actor())
        .await?)
}

async fn delete(at: OnTenant, p: web::Path<OfLicense>) -> Reply {
    let license = p.into_inner().license;
    at.store()
        .delete_license(at.key(), license, at.actor())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn seats(at: OnTenant, req: HttpRequest, p: web::Path<OfLicense>) -> Reply {
    let filter = match query_param(&req, "state")? {
        None => None,
        Some(s) => Some(SeatState::parse(&s).ok_or_else(|| {
            AdminError::bad_request("state must be granted, blocked or releasing")
        })?),
    };
    let reasons = match query_param(&req, "reasons")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(AdminError::bad_request("reasons must be true or false")),
    };
    let license = p.into_inner().license;
    if reasons {
        return ok(at
            .store()
            .seats_explained(at.key(), license, filter)
            .await?);
    }
    ok(at.store().seats(at.key(), license, filter).await?)
}

async fn seat(at: OnTenant, req: HttpRequest, p: web::Path<OfSeat>) -> Reply {
    let OfSeat { license, user } = p.into_inner();
    let reasons = match query_param(&req, "reasons")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(AdminError::bad_request("reasons must be true or false")),
    };
    ok(at.store().seat_of(at.key(), license, user, reasons).await?)
}

async fn grant(at: OnTenant, p: web::Path<OfSeat>) -> Reply {
    let OfSeat { license, user } = p.into_inner();
    ok(at
        .store()
        .grant(at.key(), license, user, at.actor())
        .await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    kind: OverrideKind,
}

async fn put_override(at: OnTenant, p: web::Path<OfSeat>, payload: web::Payload) -> Reply {
    let OfSeat { license, user } = p.into_inner();
    let body: OverrideBody = json_body(payload, &at.state).await?;
    let (t, kind) = (at.key(), Some(body.kind));
    ok(at
        .store()
        .set_override(t, license, user, kind, at.actor())
        .await?)
}

async fn delete_override(at: OnTenant, p: web::Path<OfSeat>) -> Reply {
    let OfSeat { license, user } = p.into_inner();
    at.store()
        .set_override(at.key(), license, user, None, at.actor())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The people carried over, as JSON (or CSV: see the route).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // read as JSON by hand; the type documents the body
enum HoldersBody {
    List(Vec<String>),
    Object { holders: Vec<String> },
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct HoldersCleared {
    forgotten: i64,
}

/// Largest body of carried-over holders: 100,000 references of any reasonable length.
const HOLDERS_BODY: usize = 32 * 1024 * 1024;

/// `POST .../licenses/{license}/holders`: JSON (an array, or `{"holders": [...]}`) or CSV.
async fn carry_holders(
    at: OnTenant,
    req: HttpRequest,
    p: web::Path<OfLicense>,
    payload: web::Payload,
) -> Reply {
    let csv = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with("text/csv") || v.starts_with("text/plain")
        });
    let limit = HOLDERS_BODY.max(at.state.config.max_body_bytes);
    let bytes = crate::http::body::read(payload, limit)
        .await
        .map_err(|e| AdminError::new(e.status, "invalid_request", e.detail))?;
    let refs: Vec<String> = if csv {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| AdminError::bad_request("the CSV is not UTF-8 text"))?;
        crate::csv::first_column(text)
    } else {
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            AdminError::bad_request(format!(
                "invalid request body: {e} (send a JSON array of user references, or CSV as text/csv)"
            ))
        })?;
        let list = match &v {
            serde_json::Value::Object(o) if o.len() == 1 && o.contains_key("holders") => {
                &o["holders"]
            }
            v => v,
        };
        serde_json::from_value(list.clone()).map_err(|_| {
            AdminError::bad_request(
                "holders are a JSON array of user references (strings: id, userName, externalId or email), or {\"holders\": [...]}",
            )
        })?
    };
    if refs.is_empty() {
        return Err(AdminError::bad_request("no user references in the body"));
    }
    ok(at
        .store()
        .carry_holders(at.key(), p.into_inner().license, refs, at.actor())
        .await?)
}

async fn clear_holders(at: OnTenant, p: web::Path<OfLicense>) -> Reply {
    let n = at
        .store()
        .clear_holders(at.key(), p.into_inner().license, at.actor())
        .await?;
    ok(HoldersCleared { forgotten: n })
}

async fn shadow(at: OnTenant, req: HttpRequest, p: web::Path<OfLicense>) -> Reply {
    let limit = int_param(&req, "limit", 10_000, 100_000)? as usize;
    ok(at
        .store()
        .shadow(at.key(), p.into_inner().license, limit, at.actor())
        .await?)
}

/// A proposed change: any field the update route takes (`seats`, `groups`, the policy, grace,
/// overage, reclaim, ...), or instead `override` (pin, exclude or clear one user) or `grant`
/// (a seat by hand).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    name: Option<String>,
    seats: Option<i64>,
    #[schema(value_type = Option<Vec<crate::store::GroupEntry>>)]
    groups: Option<Vec<GroupSelection>>,
    auto_promote: Option<bool>,
    grace_seconds: Option<i64>,
    /// A policy for a count lowered below use: switching to `block_newest` takes effect at once.
    on_capacity_lowered: Option<crate::alloc::OnLowered>,
    free_on_delete: Option<bool>,
    notify: Option<Vec<crate::notify::Recipient>>,
    reclaim_idle_days: Option<i64>,
    reclaim_notice_days: Option<i64>,
    overage: Option<i64>,
    overage_percent: Option<i64>,
    /// `enforce` previews the cut-over of an observing license (who keeps, gains, waits, loses).
    mode: Option<crate::store::LicenseMode>,
    /// Pin, exclude or clear (`kind` null) one user's override.
    #[serde(rename = "override")]
    override_: Option<ProposedOverride>,
    /// Grant one waiting user a free seat by hand.
    grant: Option<ProposedGrant>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProposedOverride {
    /// The user's userName or id.
    user: String,
    /// `pin` or `exclude`; null clears the override.
    kind: Option<crate::alloc::OverrideKind>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProposedGrant {
    /// The user's userName or id.
    user: String,
}

/// `GET .../licenses/{license}/overrides`: pins, exclusions and idle reclaims, with who set each.
async fn overrides(at: OnTenant, p: web::Path<OfLicense>) -> Reply {
    let list = at
        .store()
        .override_list(at.key(), p.into_inner().license)
        .await?;
    ok(serde_json::json!({ "overrides": list }))
}

/// `GET .../licenses/{license}/reclaim`: the seats the idle-seat reclaim would take at its next
/// pass (`due`) and within the notice period (`soon`).
async fn reclaim(at: OnTenant, p: web::Path<OfLicense>) -> Reply {
    ok(at
        .store()
        .reclaim_preview(at.key(), p.into_inner().license)
        .await?)
}

async fn preview(at: OnTenant, p: web::Path<OfLicense>, payload: web::Payload) -> Reply {
    let body: PreviewBody = json_body(payload, &at.state).await?;
    let change = LicenseChange {
        name: body.name,
        seats: body.seats,
        groups: body.groups,
        auto_promote: body.auto_promote,
        grace_seconds: body.grace_seconds,
        on_capacity_lowered: body.on_capacity_lowered,
        free_on_delete: body.free_on_delete,
        notify: body.notify,
        reclaim_idle_days: body.reclaim_idle_days,
        reclaim_notice_days: body.reclaim_notice_days,
        overage: body.overage,
        overage_percent: body.overage_percent,
        mode: body.mode,
    };
    // Only a seat count, a selection and the lowered-count policy: computed off the writer over
    // a copy of the seats (a huge selection never holds other writes). Anything else: by making
    // the change in a transaction that is rolled back.
    let fast = change.name.is_none()
        && change.auto_promote.is_none()
        && change.grace_seconds.is_none()
        && change.free_on_delete.is_none()
        && change.notify.is_none()
        && change.reclaim_idle_days.is_none()
        && change.reclaim_notice_days.is_none()
        && change.overage.is_none()
        && change.overage_percent.is_none()
        && change.mode.is_none();
    let proposed = match (body.override_, body.grant) {
        (Some(_), Some(_)) => {
            return Err(AdminError::bad_request(
                "preview one change at a time: an override or a grant, not both",
            ))
        }
        (Some(o), None) => Some(Proposed::Override {
            user: o.user,
            kind: o.kind,
        }),
        (None, Some(g)) => Some(Proposed::Grant { user: g.user }),
        (None, None) => None,
    };
    let nothing = change.seats.is_none()
        && change.groups.is_none()
        && change.on_capacity_lowered.is_none()
        && fast;
    let license = p.into_inner().license;
    let view = match proposed {
        Some(_) if !nothing => {
            return Err(AdminError::bad_request(
                "preview one change at a time: a license change, an override or a grant",
            ))
        }
        Some(proposed) => {
            at.store()
                .preview_change(at.key(), license, proposed, at.actor())
                .await?
        }
        None if nothing => {
            return Err(AdminError::bad_request(
                "give a proposed license change (any field the update takes), an \"override\" or a \"grant\"",
            ))
        }
        None if fast => {
            at.store()
                .preview(
                    at.key(),
                    license,
                    change.seats,
                    change.groups,
                    change.on_capacity_lowered,
                )
                .await?
        }
        None => {
            at.store()
                .preview_change(at.key(), license, Proposed::License(change), at.actor())
                .await?
        }
    };
    // Its lists name every user the change reaches (tens of thousands on a large license): it
    // is serialized off the HTTP worker, at a low priority (`background::cpu`).
    let failed = |e: String| AdminError::new(500, "internal", format!("rendering failed: {e}"));
    let body = crate::background::cpu()
        .run(move || serde_json::to_vec(&view))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn user_seats(at: OnTenant, p: web::Path<OfUser>) -> Reply {
    ok(json!({"seats": at.store().seats_of_user(at.key(), p.into_inner().user).await?}))
}

async fn reconcile(at: OnTenant) -> Reply {
    at.store().flush_provider_calls().await?;
    ok(at.store().reconcile(at.key(), at.actor()).await?)
}

async fn status(at: OnTenant) -> Reply {
    ok(at.store().status(at.key()).await?)
}

async fn provisioning_failures(at: OnTenant) -> Reply {
    ok(at.store().provider_failures(at.key()).await?)
}

async fn seat_events(at: OnTenant, req: HttpRequest) -> Reply {
    let after = int_param(&req, "after", 0, i64::MAX)?;
    let limit = int_param(&req, "limit", 1000, 10_000)?;
    ok(at.store().seat_events(at.key(), after, limit).await?)
}

/// `GET .../true-up?from=&to=&format=csv`.
async fn true_up(at: OnTenant, req: HttpRequest, p: web::Path<OfLicense>) -> Reply {
    let today = crate::capacity::day_of(at.store().now_ms());
    let today_name = crate::capacity::day_name(today);
    let from = query_param(&req, "from")?.unwrap_or_else(|| format!("{}01", &today_name[..8]));
    let to = query_param(&req, "to")?.unwrap_or(today_name);
    let license = p.into_inner().license;
    let report = at.store().true_up(at.key(), license, from, to).await?;
    match query_param(&req, "format")?.as_deref() {
        None | Some("json") => ok(report),
        Some("csv") => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "content-disposition",
                format!(
                    "attachment; filename=\"true-up-{}-{}-{}.csv\"",
                    report.license.id, report.true_up.from, report.true_up.to
                ),
            ))
            .body(crate::capacity::true_up_csv(&report.true_up))),
        Some(other) => Err(AdminError::bad_request(format!(
            "format {other:?} is not json or csv"
        ))),
    }
}

/// `GET .../forecast`.
async fn forecast(at: OnTenant, p: web::Path<OfLicense>) -> Reply {
    ok(at
        .store()
        .forecast(at.key(), p.into_inner().license)
        .await?)
}
