//! A license's pages: its seats and selected groups, the group picker, the seat count with its
//! preview, the policy form, the seat list with search and paging, its CSV, and seat actions
//! (pin, exclude, grant).

use super::*;

/// `{l}` of a path: a license's id or name.
#[derive(Deserialize)]
pub(super) struct OfLicense {
    pub(super) l: String,
}

/// `{l}` and `{user}` of a path.
#[derive(Deserialize)]
pub(super) struct OfSeat {
    l: String,
    user: String,
}

#[derive(Deserialize)]
pub(super) struct NewLicense {
    csrf: String,
    name: String,
    seats: String,
}

pub(super) async fn create_license(v: Visit, form: web::Form<NewLicense>) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let Visit { state, s, t, .. } = v;
    let seats = opt_number("seats", &Some(form.seats.clone()))?
        .ok_or_else(|| Error::Invalid("give the number of seats".into()))?;
    let spec: store::LicenseSpec =
        serde_json::from_value(serde_json::json!({"name": form.name, "seats": seats}))
            .map_err(|e| Error::Invalid(e.to_string()))?;
    let l = state.store.create_license(t.key, spec, s.actor()).await?;
    see_other(&format!(
        "/console/tenants/{}/licenses/{}?notice=license-created",
        t.id, l.id
    ))
}

#[derive(Deserialize, Default)]
pub(super) struct LicenseQuery {
    notice: Option<String>,
    /// The seat-event cursor before a change just saved: the page names who it moved.
    since: Option<i64>,
    /// The group picker is open (with this search).
    pick: Option<String>,
    q: Option<String>,
    /// The true-up period.
    from: Option<String>,
    to: Option<String>,
}

/// A proposed change the license page shows the effect of before it is saved.
pub(super) enum Proposal {
    None,
    /// A new seat count.
    Seats(i64, store::PreviewView),
    /// New limits of one selected group.
    Limits(super::groups::LimitsPreview),
}

pub(super) async fn license_page(
    state: &AppState,
    s: &Session,
    tkey: &str,
    lkey: &str,
    query: &LicenseQuery,
    preview: Proposal,
) -> Result<HttpResponse> {
    let t = tenant_of(state, s, tkey).await?;
    let l = state.store.license(t.key, lkey.to_owned()).await?;
    let history = state
        .store
        .seat_history(t.key, l.id.clone(), 20_000)
        .await?;
    let history: Vec<chart::Point> = history
        .into_iter()
        .map(|p| chart::Point {
            at: p.at,
            in_use: p.in_use,
            waiting: p.waiting,
        })
        .collect();
    let now = state.store.now_ms();
    let forecast = state.store.forecast(t.key, l.id.clone()).await?;
    let (from, to) = super::planning::period(query.from.as_deref(), query.to.as_deref(), now);
    let true_up = state.store.true_up(t.key, l.id.clone(), from, to).await?;
    let chart = chart::svg_projected(
        &history,
        l.seats,
        now,
        super::planning::projection(&forecast, now),
        &t.time_zone,
    );
    let planning = super::planning::section(
        &format!("/console/tenants/{}/licenses/{}", t.id, l.id),
        &l,
        &forecast,
        &true_up,
    );
    let picker = match &query.pick {
        Some(_) => Some(
            state
                .store
                .search_groups(t.key, query.q.clone().unwrap_or_default(), 50)
                .await?,
        ),
        None => None,
    };
    let (seats_preview, limits_preview) = match preview {
        Proposal::None => (None, None),
        Proposal::Seats(n, p) => (Some((n, p)), None),
        Proposal::Limits(p) => (None, Some(p)),
    };
    let moves = match query.since {
        Some(after) => Some(state.store.seat_moves(t.key, l.id.clone(), after).await?),
        None => None,
    };
    ok(license_pages::license(
        s,
        &t,
        &l,
        &chart,
        planning,
        picker.as_deref(),
        query.q.as_deref().unwrap_or(""),
        seats_preview,
        limits_preview.as_ref(),
        query.notice.as_deref(),
        moves.as_ref(),
    ))
}

pub(super) async fn license(
    v: Visit,
    p: web::Path<OfLicense>,
    q: web::Query<LicenseQuery>,
) -> Result<HttpResponse> {
    license_page(&v.state, &v.s, &v.t.id, &p.l, &q, Proposal::None).await
}

#[derive(Deserialize)]
pub(super) struct GroupForm {
    csrf: String,
    action: String,
    kind: String,
    value: String,
    /// For `limits`: the group's reserve and ceiling (empty: none) ...
    #[serde(default)]
    reserve: String,
    #[serde(default)]
    max: String,
    /// ... previewed (`preview`) or saved (anything else).
    #[serde(default)]
    step: String,
}

/// A limit field of the console's form: empty is `None`.
fn limit(field: &str, what: &str) -> Result<Option<i64>> {
    let v = field.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| Error::Invalid(format!("the {what} is a whole number of seats, not {v:?}")))
}

pub(super) fn selector(kind: &str, value: String) -> Result<Selector> {
    Ok(match kind {
        "id" => Selector::Id(value),
        "externalId" => Selector::ExternalId(value),
        "displayName" => Selector::DisplayName(value),
        _ => return Err(Error::Invalid(format!("unknown selector kind {kind:?}"))),
    })
}

pub(super) fn selectors_of(l: &store::LicenseView) -> Vec<store::GroupSelection> {
    l.groups.iter().map(store::GroupSelection::from).collect()
}

pub(super) async fn license_groups(
    v: Visit,
    p: web::Path<OfLicense>,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let lk = p.into_inner().l;
    let Visit { state, s, t, .. } = v;
    let l = state.store.license(t.key, lk).await?;
    let value = form.value.trim().to_owned();
    if value.is_empty() {
        return Err(Error::Invalid("name a group".into()));
    }
    let target = selector(&form.kind, value.clone())?;
    let mut groups = selectors_of(&l);
    let selected = groups.iter().any(|g| g.selector == target);
    match form.action.as_str() {
        "add" | "remove" if form.step != "confirm" && (form.action == "remove") == selected => {
            // Seats move: what the new selection would do first, with the button that saves it.
            if form.action == "add" {
                groups.push(target.into());
            } else {
                groups.retain(|g| g.selector != target);
            }
            let preview = state
                .store
                .preview(t.key, l.id.clone(), None, Some(groups), None)
                .await;
            // The group by its name when it has arrived (the picker sends its id).
            let shown = match form.kind.as_str() {
                "id" => state
                    .store
                    .get_group(t.key, value.clone(), false)
                    .await
                    .ok()
                    .and_then(|g| {
                        g.doc
                            .get("displayName")
                            .and_then(|v| v.as_str())
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| value.clone()),
                _ => value.clone(),
            };
            let (title, button) = if form.action == "add" {
                (format!("Select {shown} for {}?", l.name), "Select")
            } else {
                (
                    format!("Stop selecting {shown} for {}?", l.name),
                    "Stop selecting",
                )
            };
            let base = format!("/console/tenants/{}/licenses/{}", t.id, l.id);
            return ok(super::license_pages::confirm_page(
                &s,
                &t,
                &l,
                &title,
                preview.map_err(|e| e.classify()),
                &format!("{base}/groups"),
                &[
                    ("action", form.action.clone()),
                    ("kind", form.kind.clone()),
                    ("value", value),
                    ("step", "confirm".to_owned()),
                ],
                button,
                &base,
            ));
        }
        "add" if !selected => groups.push(target.into()),
        "add" => {}
        "remove" => groups.retain(|g| g.selector != target),
        "limits" => {
            let Some(g) = groups.iter_mut().find(|g| g.selector == target) else {
                return Err(Error::Invalid(
                    "the license does not select that group".into(),
                ));
            };
            g.reserve = limit(&form.reserve, "reserve")?.unwrap_or(0);
            g.max = limit(&form.max, "max")?;
            if form.step == "preview" {
                let view = state
                    .store
                    .preview(t.key, l.id.clone(), None, Some(groups), None)
                    .await?;
                let proposal = Proposal::Limits(super::groups::LimitsPreview {
                    kind: form.kind.clone(),
                    value: form.value.trim().to_owned(),
                    reserve: form.reserve.trim().to_owned(),
                    max: form.max.trim().to_owned(),
                    view,
                });
                return license_page(&state, &s, &t.id, &l.id, &LicenseQuery::default(), proposal)
                    .await;
            }
        }
        other => return Err(Error::Invalid(format!("unknown action {other:?}"))),
    }
    let change = LicenseChange {
        groups: Some(groups),
        ..Default::default()
    };
    let since = state.store.seat_cursor(t.key).await?;
    state
        .store
        .update_license(t.key, l.id.clone(), change, s.actor())
        .await?;
    see_other(&format!(
        "/console/tenants/{}/licenses/{}?notice=selection-saved&since={since}",
        t.id, l.id
    ))
}

#[derive(Deserialize)]
pub(super) struct SeatsForm {
    csrf: String,
    seats: String,
}

pub(super) async fn license_preview(
    v: Visit,
    p: web::Path<OfLicense>,
    form: web::Form<SeatsForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let lk = p.into_inner().l;
    let Visit { state, s, t, .. } = v;
    let seats = opt_number("seats", &Some(form.seats.clone()))?
        .ok_or_else(|| Error::Invalid("give the number of seats".into()))?;
    let p = state
        .store
        .preview(t.key, lk.clone(), Some(seats), None, None)
        .await?;
    license_page(
        &state,
        &s,
        &t.id,
        &lk,
        &LicenseQuery::default(),
        Proposal::Seats(seats, p),
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct LicenseSettings {
    csrf: String,
    seats: Option<String>,
    auto_promote: Option<String>,
    /// The grace, in hours.
    grace_hours: Option<String>,
    on_capacity_lowered: Option<String>,
    free_on_delete: Option<String>,
    /// The license's own recipients (the policy form).
    notify: Option<String>,
    reclaim_idle_days: Option<String>,
    reclaim_notice_days: Option<String>,
    overage: Option<String>,
    overage_percent: Option<String>,
    /// Which form was sent: "seats" or "policy" (checkboxes are absent when unchecked).
    form: String,
    /// `confirm` once the policy change's preview was shown (a change that moves seats is
    /// previewed first).
    #[serde(default)]
    step: String,
}

pub(super) async fn license_settings(
    v: Visit,
    p: web::Path<OfLicense>,
    form: web::Form<LicenseSettings>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let lk = p.into_inner().l;
    let Visit { state, s, t, .. } = v;
    let mut change = LicenseChange::default();
    match form.form.as_str() {
        "seats" => {
            change.seats = opt_number("seats", &form.seats)?;
        }
        "policy" => {
            change.auto_promote = Some(form.auto_promote.is_some());
            change.free_on_delete = Some(form.free_on_delete.is_some());
            change.grace_seconds = opt_hours("the release grace", &form.grace_hours)?;
            if let Some(n) = &form.notify {
                change.notify = Some(recipients(n)?);
            }
            change.reclaim_idle_days = opt_number("reclaim_idle_days", &form.reclaim_idle_days)?;
            change.reclaim_notice_days =
                opt_number("reclaim_notice_days", &form.reclaim_notice_days)?;
            change.overage = opt_number("overage", &form.overage)?;
            change.overage_percent = opt_number("overage_percent", &form.overage_percent)?;
            change.on_capacity_lowered = match form.on_capacity_lowered.as_deref() {
                None => Some(crate::alloc::OnLowered::Keep),
                Some(p) => Some(
                    crate::alloc::OnLowered::parse(p)
                        .ok_or_else(|| Error::Invalid(format!("unknown policy {p:?}")))?,
                ),
            };
        }
        other => return Err(Error::Invalid(format!("unknown form {other:?}"))),
    }
    if form.form == "policy" && form.step != "confirm" {
        // A policy that moves seats (promoting the waitlist, `block_newest` over the count, an
        // overage changed) is shown first, with the button that saves it; one that moves none
        // is saved at once.
        let preview = state
            .store
            .preview_change(
                t.key,
                lk.clone(),
                store::Proposed::License(change.clone()),
                s.actor(),
            )
            .await;
        let moves = match &preview {
            Ok(p) => {
                !(p.granted.is_empty()
                    && p.promoted.is_empty()
                    && p.blocked.is_empty()
                    && p.releasing.is_empty()
                    && p.released.is_empty())
            }
            Err(_) => true,
        };
        if moves {
            let l = state.store.license(t.key, lk).await?;
            let base = format!("/console/tenants/{}/licenses/{}", t.id, l.id);
            let mut fields: Vec<(&str, String)> = vec![
                ("form", "policy".to_owned()),
                ("step", "confirm".to_owned()),
            ];
            for (name, v) in [
                ("auto_promote", &form.auto_promote),
                ("free_on_delete", &form.free_on_delete),
                ("grace_hours", &form.grace_hours),
                ("on_capacity_lowered", &form.on_capacity_lowered),
                ("notify", &form.notify),
                ("reclaim_idle_days", &form.reclaim_idle_days),
                ("reclaim_notice_days", &form.reclaim_notice_days),
                ("overage", &form.overage),
                ("overage_percent", &form.overage_percent),
            ] {
                if let Some(v) = v {
                    fields.push((name, v.clone()));
                }
            }
            return ok(super::license_pages::confirm_page(
                &s,
                &t,
                &l,
                &format!("Change the policy of {}?", l.name),
                preview.map_err(|e| e.classify()),
                &format!("{base}/settings"),
                &fields,
                "Save the policy",
                &base,
            ));
        }
    }
    let since = state.store.seat_cursor(t.key).await?;
    let l = state
        .store
        .update_license(t.key, lk, change, s.actor())
        .await?;
    see_other(&format!(
        "/console/tenants/{}/licenses/{}?notice=license-saved&since={since}",
        t.id, l.id
    ))
}

#[derive(Deserialize, Default)]
pub(super) struct SeatsQuery {
    q: Option<String>,
    state: Option<String>,
    page: Option<usize>,
    notice: Option<String>,
    /// As [`LicenseQuery::since`].
    since: Option<i64>,
}

/// Seats per page of the seats table.
pub(super) const PAGE: usize = 50;

fn state_filter(query: &SeatsQuery) -> Result<Option<crate::alloc::SeatState>> {
    match query.state.as_deref().unwrap_or("") {
        "" => Ok(None),
        s => crate::alloc::SeatState::parse(s)
            .map(Some)
            .ok_or_else(|| Error::Invalid(format!("unknown state {s:?}"))),
    }
}

/// Every seat matching the query (the CSV export; the page reads
/// [`crate::store::Store::seats_page`]).
pub(super) async fn filtered_seats(
    state: &AppState,
    t: &store::Tenant,
    lk: &str,
    query: &SeatsQuery,
) -> Result<(store::LicenseView, Vec<store::SeatView>)> {
    let l = state.store.license(t.key, lk.to_owned()).await?;
    let filter = state_filter(query)?;
    // The page's search rule, applied in the store (`seat_admin::SEAT_SEARCH`).
    let all = state
        .store
        .seats_matching(
            t.key,
            l.id.clone(),
            filter,
            query.q.clone().unwrap_or_default(),
            true,
        )
        .await?;
    Ok((l, all.seats))
}

pub(super) async fn seats(
    v: Visit,
    p: web::Path<OfLicense>,
    q: web::Query<SeatsQuery>,
) -> Result<HttpResponse> {
    let lk = p.into_inner().l;
    let Visit { state, s, t, .. } = v;
    let l = state.store.license(t.key, lk.to_owned()).await?;
    let filter = state_filter(&q)?;
    let needle = q.q.clone().unwrap_or_default();
    // Read a page at a time in the store: a license of 100,000 seats is never loaded whole.
    let read = |page: usize| {
        state.store.seats_page(
            t.key,
            l.id.clone(),
            filter,
            needle.clone(),
            ((page - 1) * PAGE) as i64,
            PAGE as i64,
        )
    };
    let mut page = q.page.unwrap_or(1).max(1);
    let (mut shown, mut total) = read(page).await?;
    let pages = (total as usize).div_ceil(PAGE).max(1);
    if page > pages {
        // Past the end (the list shrank): the last page.
        page = pages;
        (shown, total) = read(page).await?;
    }
    let overrides = state.store.overrides(t.key, l.id.clone()).await?;
    let moves = match q.since {
        Some(after) => Some(state.store.seat_moves(t.key, l.id.clone(), after).await?),
        None => None,
    };
    ok(license_pages::seats(
        &s,
        &t,
        &l,
        &overrides,
        &shown,
        total as usize,
        page,
        pages,
        q.q.as_deref().unwrap_or(""),
        q.state.as_deref().unwrap_or(""),
        q.notice.as_deref(),
        moves.as_ref(),
    ))
}

pub(super) async fn seats_csv(
    v: Visit,
    p: web::Path<OfLicense>,
    q: web::Query<SeatsQuery>,
) -> Result<HttpResponse> {
    let lk = p.into_inner().l;
    let Visit { state, t, .. } = v;
    let (l, all) = filtered_seats(&state, &t, &lk, &q).await?;
    let items: Vec<serde_json::Value> = all
        .iter()
        .map(|s| {
            serde_json::json!({"userName": s.user_name, "userId": s.user_id, "state": s.state,
                "position": s.position, "since": s.since, "entitledAt": s.entitled_at,
                "releaseAt": s.release_at, "pinned": s.pinned, "lastUsed": s.last_used,
                "entitledBy": s.entitled_by, "reason": s.reason})
        })
        .collect();
    let body = if items.is_empty() {
        "userName,userId,state,position,since,entitledAt,releaseAt,pinned,lastUsed,entitledBy,reason\r\n".to_owned()
    } else {
        crate::csv::items(&items)
    };
    let name: String = l
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"seats-{name}.csv\""),
        ))
        .body(body))
}

#[derive(Deserialize)]
pub(super) struct SeatAction {
    csrf: String,
    action: String,
    /// Present once the admin saw the preview and confirmed; absent: preview first.
    confirm: Option<String>,
}

pub(super) async fn seat_action(
    v: Visit,
    p: web::Path<OfSeat>,
    form: web::Form<SeatAction>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let OfSeat { l: lk, user } = p.into_inner();
    let Visit { state, s, t, .. } = v;
    let l = state.store.license(t.key, lk).await?;
    use crate::alloc::OverrideKind;
    if form.confirm.is_none() && form.action != "pin" {
        // Seats may move: what the change would do first, from the very write job that makes
        // it (rolled back), with the button that makes it; or why it cannot be made.
        let proposed = match form.action.as_str() {
            "grant" => store::Proposed::Grant { user: user.clone() },
            "exclude" => store::Proposed::Override {
                user: user.clone(),
                kind: Some(OverrideKind::Exclude),
            },
            "clear" => store::Proposed::Override {
                user: user.clone(),
                kind: None,
            },
            other => return Err(Error::Invalid(format!("unknown action {other:?}"))),
        };
        let preview = state
            .store
            .preview_change(t.key, l.id.clone(), proposed, s.actor())
            .await;
        return ok(super::license_pages::seat_action_preview(
            &s,
            &t,
            &l,
            &user,
            &form.action,
            preview.map_err(|e| e.classify()),
        ));
    }
    let since = state.store.seat_cursor(t.key).await?;
    let notice = match form.action.as_str() {
        "grant" => {
            state
                .store
                .grant(t.key, l.id.clone(), user, s.actor())
                .await?;
            "seat-granted"
        }
        "pin" | "exclude" | "clear" => {
            let kind = match form.action.as_str() {
                "pin" => Some(OverrideKind::Pin),
                "exclude" => Some(OverrideKind::Exclude),
                _ => None,
            };
            state
                .store
                .set_override(t.key, l.id.clone(), user, kind, s.actor())
                .await?;
            "override-saved"
        }
        other => return Err(Error::Invalid(format!("unknown action {other:?}"))),
    };
    see_other(&format!(
        "/console/tenants/{}/licenses/{}/seats?notice={notice}&since={since}",
        t.id, l.id
    ))
}
