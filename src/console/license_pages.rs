//! The console's license pages as maud templates: the license (its figures, groups, policy
//! and history) and its seat list. Pure: data in, HTML out.

use maud::{html, Markup, PreEscaped};

use super::pages::{csrf, gauge, layout, local_time, moved, notice};
use super::session::Session;
use crate::store::{GroupChoice, LicenseView, PreviewView, SeatView, Selector, Tenant};

/// How a selector names its group, in words.
pub(super) fn selector_kind(kind: &str) -> &'static str {
    match kind {
        "id" => "id",
        "externalId" => "external id",
        _ => "name",
    }
}

pub(super) fn selector_text(sel: &Selector) -> (String, String) {
    let (kind, value) = sel.parts();
    (kind.to_owned(), value.to_owned())
}

#[allow(clippy::too_many_arguments)]
pub fn license(
    s: &Session,
    t: &Tenant,
    l: &LicenseView,
    chart: &str,
    planning: Markup,
    picker: Option<&[GroupChoice]>,
    q: &str,
    preview: Option<(i64, PreviewView)>,
    limits_preview: Option<&super::groups::LimitsPreview>,
    code: Option<&str>,
    moves: Option<&crate::store::SeatMoves>,
) -> Markup {
    let base = format!("/console/tenants/{}/licenses/{}", t.id, l.id);
    let selected: Vec<(String, String)> = l
        .groups
        .iter()
        .map(|g| selector_text(&g.selector))
        .collect();
    layout(
        &l.name,
        Some(s),
        Some(t),
        html! {
            p.crumbs { a href={ "/console/tenants/" (t.id) } { (t.name) } " / " (l.name) }
            h1 { (l.name) }
            (notice(code))
            (moved(moves))
            @if l.mode == crate::store::LicenseMode::Observe {
                div.notice.warn role="status" #observing {
                    strong { "Observing: nothing is enforced." }
                    " Seats below are what seatkeeper would decide; the product keeps today's seats and nobody is emailed. "
                    (l.carried_over) " people carried over as today's seat holders. "
                    a href={ (base) "/shadow" } { "What enforcing would do" }
                }
            } @else {
                p.small.muted { "Enforced. " a href={ (base) "/shadow" } { "Observe instead" } " to see what a change of groups would do before it counts." }
            }
            section.card aria-labelledby="use" {
                h2 #use { "Seats" }
                (gauge(l))
                p { a.button.secondary href={ (base) "/seats" } { "Holders and waitlist" } }
                (PreEscaped(chart))
                p.small.muted { "Blue: seats in use. Amber, dashed: users waiting. Red, dashed: capacity. Blue, dotted: the forecast of demand." }
            }
            (planning)
            div.grid {
                (super::groups::card(s, &base, l, limits_preview))
                section.card aria-labelledby="count" {
                    h2 #count { "Seat count" }
                    form method="post" action={ (base) "/preview" } {
                        (csrf(s))
                        label for="seats" { "Seats" }
                        input #seats type="number" name="seats" min="0" value=(preview.as_ref().map(|p| p.0).unwrap_or(l.seats)) required;
                        p { button type="submit" { "Preview" } }
                    }
                    @if let Some((n, p)) = &preview {
                        div.notice.warn role="status" #preview {
                            strong { "With " (n) " seats:" }
                            ul {
                                li { (p.granted.len() + p.promoted.len()) " would get a seat" @if !p.promoted.is_empty() { " (" (p.promoted.iter().take(10).cloned().collect::<Vec<_>>().join(", ")) @if p.promoted.len() > 10 { ", …" } ")" } }
                                li { (p.blocked.len()) " would be moved to the waitlist" }
                                li { (p.released.len() + p.releasing.len()) " would lose a seat" }
                                li { "after: " (p.after.granted) " granted, " (p.after.blocked) " waiting" }
                            }
                            form method="post" action={ (base) "/settings" } {
                                (csrf(s))
                                input type="hidden" name="form" value="seats";
                                input type="hidden" name="seats" value=(n);
                                button type="submit" { "Save " (n) " seats" }
                                " " a href=(base) { "Cancel" }
                            }
                        }
                    }
                }
                section.card aria-labelledby="policy" {
                    h2 #policy { "Policy" }
                    form method="post" action={ (base) "/settings" } {
                        (csrf(s))
                        input type="hidden" name="form" value="policy";
                        label { input type="checkbox" name="auto_promote" value="1" checked[l.auto_promote]; " Promote the waitlist when a seat frees" }
                        label { input type="checkbox" name="free_on_delete" value="1" checked[l.free_on_delete]; " Free a deleted user's seat at once" }
                        label for="grace" { "Release grace (hours, up to 72)" }
                        input #grace type="number" name="grace_hours" min="0" max="72" step="any" value=(super::hours(l.grace_seconds));
                        label for="lowered" { "When the seat count is lowered below use" }
                        select #lowered name="on_capacity_lowered" {
                            option value="keep" selected[matches!(l.on_capacity_lowered, crate::alloc::OnLowered::Keep)] { "keep: nobody loses a seat" }
                            option value="block_newest" selected[matches!(l.on_capacity_lowered, crate::alloc::OnLowered::BlockNewest)] { "block_newest: the newest holders wait" }
                        }
                        label for="idle-days" { "Reclaim a seat unused for (days; 0: never)" }
                        input #idle-days type="number" name="reclaim_idle_days" min="0" max="3650" value=(l.reclaim_idle_days);
                        label for="notice-days" { "Tell the recipients this many days before" }
                        input #notice-days type="number" name="reclaim_notice_days" min="0" value=(l.reclaim_notice_days);
                        label for="overage" { "Agreed overage (extra seats, billed at true-up)" }
                        div.row {
                            input #overage type="number" name="overage" min="0" value=(l.overage) aria-label="Extra seats";
                            label.skip for="overage-percent" { "or % of the seats" }
                            input #overage-percent type="number" name="overage_percent" min="0" max="1000" value=(l.overage_percent) aria-label="Extra seats as a share of the seat count";
                        }
                        label for="lnotify" { "Also email about this license" }
                        input #lnotify type="text" name="notify" value=(l.notify.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; ")) placeholder="pm@contoso.com; cfo@contoso.com: threshold";
                        p.small.muted { "Besides the tenant's recipients. " code { "address: blocked threshold" } " limits an address to those kinds." }
                        p { button type="submit" { "Save policy" } }
                    }
                }
            }
            dialog #picker aria-labelledby="picker-title" open[picker.is_some()] data-open-now[picker.is_some()] {
                h2 #picker-title { "Group Select" }
                form method="get" action=(base) role="search" {
                    input type="hidden" name="pick" value="1";
                    label for="q" { "Search groups by name" }
                    div.row {
                        input #q type="search" name="q" value=(q) autofocus;
                        button type="submit" { "Search" }
                    }
                }
                @match picker {
                    None => p.muted { "Search to list the groups the provider has sent." },
                    Some([]) => p.muted { "No group matches." },
                    Some(groups) => {
                        ul {
                            @for g in groups {
                                li {
                                    (g.display_name) " " span.small.muted { (g.members) " members" }
                                    @if selected.iter().any(|(k, v)| (k == "id" && *v == g.id) || (k == "displayName" && v.eq_ignore_ascii_case(&g.display_name)) || (k == "externalId" && Some(v) == g.external_id.as_ref())) {
                                        " " span.badge.granted { "selected" }
                                    } @else {
                                        form.inline method="post" action={ (base) "/groups" } {
                                            (csrf(s))
                                            input type="hidden" name="action" value="add";
                                            input type="hidden" name="kind" value="id";
                                            input type="hidden" name="value" value=(g.id);
                                            " " button type="submit" aria-label={ "Select " (g.display_name) } { "Select" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action={ (base) "/groups" } {
                    (csrf(s))
                    input type="hidden" name="action" value="add";
                    input type="hidden" name="kind" value="displayName";
                    label for="pending-name" { "Or select by name before the group arrives (pending)" }
                    div.row {
                        input #pending-name type="text" name="value";
                        button.secondary type="submit" { "Select by name" }
                    }
                }
                p { a href=(base) data-close="" { "Close" } }
            }
        },
    )
}

/// The selected group of `seat` whose ceiling is reached, if any.
fn ceiling_reached<'a>(
    l: &'a LicenseView,
    seat: &SeatView,
) -> Option<&'a crate::store::SelectorView> {
    l.groups.iter().find(|g| {
        g.group_id.is_some()
            && g.group_id == seat.group_id
            && g.max.is_some_and(|m| g.in_use.unwrap_or(0) >= m)
    })
}

/// Why a waiting person waits, in the admin's words.
pub(super) fn why_waiting(l: &LicenseView, seat: &SeatView) -> String {
    let limit = l.seats + l.overage_seats;
    let free = l.granted + l.releasing < limit;
    match ceiling_reached(l, seat) {
        Some(g) => format!(
            "Waiting: {}'s ceiling of {} seats is reached.",
            g.group_name.clone().unwrap_or_default(),
            g.max.unwrap_or(0)
        ),
        None if !free => format!("Waiting: all {limit} seats are in use."),
        None if !l.auto_promote => {
            "Waiting for an admin: a seat is free, and seats are not given out on their own (auto-promotion is off).".to_owned()
        }
        None => "Waiting: a seat is being freed.".to_owned(),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn seats(
    s: &Session,
    t: &Tenant,
    l: &LicenseView,
    overrides: &[(String, String, String, bool)],
    shown: &[SeatView],
    total: usize,
    page: usize,
    pages: usize,
    q: &str,
    state: &str,
    code: Option<&str>,
    moves: Option<&crate::store::SeatMoves>,
) -> Markup {
    let base = format!("/console/tenants/{}/licenses/{}", t.id, l.id);
    // A seat is free while granted and releasing seats are fewer than the count (and the
    // agreed overage): only then can a waiting person be granted one by hand.
    let limit = l.seats + l.overage_seats;
    let free = l.granted + l.releasing < limit;
    let ceiling_of = |seat: &SeatView| ceiling_reached(l, seat);
    let why_waiting = |seat: &SeatView| why_waiting(l, seat);
    let query = |p: usize| {
        format!(
            "{base}/seats?q={}&state={}&page={p}",
            urlencode(q),
            urlencode(state)
        )
    };
    layout(
        &format!("Seats of {}", l.name),
        Some(s),
        Some(t),
        html! {
            p.crumbs { a href={ "/console/tenants/" (t.id) } { (t.name) } " / " a href=(base) { (l.name) } " / seats" }
            h1 { "Seats of " (l.name) }
            (notice(code))
            (moved(moves))
            (gauge(l))
            form.row method="get" action={ (base) "/seats" } role="search" {
                div { label for="q" { "Search users" } input #q type="search" name="q" value=(q); }
                div {
                    label for="state" { "State" }
                    select #state name="state" {
                        option value="" selected[state.is_empty()] { "all" }
                        @for (st, word) in [("granted", "granted"), ("releasing", "releasing"), ("blocked", "waiting")] { option value=(st) selected[state == st] { (word) } }
                    }
                }
                div { button type="submit" { "Filter" } }
                div { a.button.secondary href={ (base) "/seats.csv?q=" (urlencode(q)) "&state=" (urlencode(state)) } download { "Export CSV" } }
            }
            div.table-wrap {
                table {
                    caption.small.muted { (total) " seats" @if pages > 1 { ", page " (page) " of " (pages) } }
                    thead { tr {
                        th scope="col" { "User" } th scope="col" { "State" } th scope="col" { "Position" }
                        th scope="col" .hide-narrow { "Since" } th scope="col" .hide-narrow { "Release" } th scope="col" .hide-narrow { "Last used" } th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for seat in shown {
                            @let who = seat.user_name.clone().unwrap_or_else(|| seat.user_id.clone());
                            tr {
                                td { a href={ "/console/tenants/" (t.id) "/people/" (urlencode(&who)) } { (who) } @if let Some(d) = &seat.display_name { br; span.small.muted { (d) } } @if seat.pinned { " " span.badge.granted title="Pinned: served first" { "pinned" } } @if seat.overage { " " span.badge.pending title="Granted beyond the seat count, in the agreed overage (billed at the true-up)" { "overage" } } @if seat.hold.is_some() { " " a.badge.blocked href={ "/console/tenants/" (t.id) "/holds" } title="The directory took this user's entitlement; the circuit breaker holds the loss until an admin decides" { "held" } } @if let Some(g) = &seat.group_name { " " span.badge.group title="The selected group this seat counts against (its reserve and ceiling)" { (g) } } }
                                td {
                                    span.badge.(seat.state.as_str()) { (seat.state.word()) }
                                    @if let Some(r) = &seat.reason { br; span.small.why { (super::pages::capital(r)) "." } }
                                    @else if seat.state == crate::store::UserState::Blocked { br; span.small.why { (why_waiting(seat)) } }
                                    @if let Some(g) = &seat.entitled_by { br; span.small.muted { "through " (g) } }
                                }
                                td { @if let Some(p) = seat.position { (p) } }
                                td.small.hide-narrow { @if let Some(at) = &seat.since { (local_time(at, t)) } }
                                td.small.hide-narrow { @if let Some(at) = &seat.release_at { (local_time(at, t)) } }
                                td.small.hide-narrow { @if let Some(at) = &seat.last_used { (local_time(at, t)) } }
                                td {
                                    @for (action, label) in [("pin", "Pin"), ("exclude", "Exclude"), ("clear", "Clear override")] {
                                        @if offered(action, seat.pinned) {
                                            form.inline method="post" action={ (base) "/seats/" (urlencode(&who)) } {
                                                (csrf(s))
                                                input type="hidden" name="action" value=(action);
                                                button.secondary type="submit" aria-label={ (label) " " (who) } { (label) }
                                            }
                                            " "
                                        }
                                    }
                                    @if seat.state == crate::store::UserState::Blocked && free && ceiling_of(seat).is_none() {
                                        form.inline method="post" action={ (base) "/seats/" (urlencode(&who)) } {
                                            (csrf(s))
                                            input type="hidden" name="action" value="grant";
                                            button type="submit" aria-label={ "Grant a seat to " (who) } { "Grant" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if page > 1 { a href=(query(page - 1)) rel="prev" { "← Previous" } }
                span.muted { "Page " (page) " of " (pages) }
                @if page < pages { a href=(query(page + 1)) rel="next" { "Next →" } }
            }
            h2 { "Overrides" }
            @if overrides.is_empty() { p.muted { "No user is pinned or excluded." } }
            @else {
                ul {
                    @for (who, kind, since, entitled) in overrides {
                        li {
                            (who) " " span.badge.(if kind == "pin" { "granted" } else { "blocked" }) { (match kind.as_str() { "pin" => "pinned", "idle" => "idle: reclaimed until used again", _ => "excluded" }) }
                            @if kind == "pin" && !entitled {
                                " " span.small.why { "No effect now: not entitled to this license (in no selected group, or inactive)." }
                            }
                            " " span.small.muted { "since " (local_time(since, t)) }
                            form.inline method="post" action={ (base) "/seats/" (urlencode(who)) } {
                                (csrf(s))
                                input type="hidden" name="action" value="clear";
                                " " button.secondary type="submit" aria-label={ "Clear the override of " (who) } { "Clear" }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Which override buttons a seat row offers: pin unless pinned, clear only when pinned.
fn offered(action: &str, pinned: bool) -> bool {
    match action {
        "pin" => !pinned,
        "clear" => pinned,
        _ => true,
    }
}

pub(super) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What a seat action would do, before it is done: who would gain, lose or wait, with the
/// button that does it; or, when it cannot be done, why (and the way back).
pub(super) fn seat_action_preview(
    s: &Session,
    t: &Tenant,
    l: &LicenseView,
    user: &str,
    action: &str,
    preview: std::result::Result<crate::store::PreviewView, crate::store::Failure>,
) -> Markup {
    let base = format!("/console/tenants/{}/licenses/{}", t.id, l.id);
    let (title, button) = match action {
        "grant" => (
            format!("Grant {user} a seat of {}?", l.name),
            "Grant the seat",
        ),
        "exclude" => (format!("Exclude {user} from {}?", l.name), "Exclude"),
        _ => (
            format!("Clear the override of {user} on {}?", l.name),
            "Clear the override",
        ),
    };
    confirm_page(
        s,
        t,
        l,
        &title,
        preview,
        &format!("{base}/seats/{}", urlencode(user)),
        &[("action", action.to_owned()), ("confirm", "1".to_owned())],
        button,
        &format!("{base}/seats"),
    )
}

/// A change previewed before it is made: what it would do (who would gain, lose or wait, from
/// the very write job rolled back), and a form that posts `fields` to `to` to make it; or why
/// it cannot be made, with the way back to `back`.
#[allow(clippy::too_many_arguments)]
pub(super) fn confirm_page(
    s: &Session,
    t: &Tenant,
    l: &LicenseView,
    title: &str,
    preview: std::result::Result<crate::store::PreviewView, crate::store::Failure>,
    to: &str,
    fields: &[(&str, String)],
    button: &str,
    back: &str,
) -> Markup {
    let base = format!("/console/tenants/{}/licenses/{}", t.id, l.id);
    let names = |v: &[String]| {
        let mut shown = v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 10 {
            shown.push_str(&format!(" and {} more", v.len() - 10));
        }
        shown
    };
    layout(
        title,
        Some(s),
        Some(t),
        html! {
            p.crumbs { a href={ "/console/tenants/" (t.id) } { (t.name) } " / " a href=(base) { (l.name) } }
            h1 { (title) }
            @match &preview {
                Ok(p) => {
                    div.notice.warn role="status" #preview {
                        strong { "This would:" }
                        ul {
                            @let gain: Vec<String> = p.granted.iter().chain(&p.promoted).cloned().collect();
                            @let lose: Vec<String> = p.released.iter().chain(&p.releasing).cloned().collect();
                            @if gain.is_empty() && lose.is_empty() && p.blocked.is_empty() { li { "move no seat now" } }
                            @if !gain.is_empty() { li { "give a seat to " (names(&gain)) } }
                            @if !lose.is_empty() { li { "take the seat of " (names(&lose)) @if !p.releasing.is_empty() { " (after the grace period)" } } }
                            @if !p.blocked.is_empty() { li { "put " (names(&p.blocked)) " on the waitlist" } }
                            li { "leave " (p.after.granted + p.after.releasing) " of " (p.capacity) " seats in use, " (p.after.blocked) " waiting" }
                        }
                        form method="post" action=(to) {
                            (csrf(s))
                            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
                            button type="submit" { (button) }
                            " " a href=(back) { "Cancel" }
                        }
                    }
                }
                Err(f) => {
                    div.notice.bad role="alert" {
                        strong { "This cannot be done now: " }
                        (failure_words(f))
                    }
                    p { a href=(back) { @if back.ends_with("/seats") { "Back to the seats" } @else { "Back to the license" } } }
                }
            }
        },
    )
}

/// A refusal in the admin's words.
fn failure_words(f: &crate::store::Failure) -> String {
    use crate::store::Failure as F;
    match f {
        F::NotFound(m) | F::Conflict(m) | F::Invalid(m) => m.clone(),
        F::Scim(e) => e.detail.clone(),
        F::TooMany(m, _) => m.clone(),
        _ => "seatkeeper could not do it just now; try again in a moment.".into(),
    }
}
