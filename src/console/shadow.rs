//! Shadow mode in the console: a license that observes shows what enforcing it would do
//! against the seats the product grants today — who keeps a seat, who gains one, who waits
//! (with their place) and who loses one (and why) — with the forms that carry today's holders
//! over and the button that switches to enforce. The page is the preview of that switch: the
//! same store call as the admin API (`GET …/shadow`) and the CLI (`license shadow`).

use maud::{html, Markup};

use super::licenses::OfLicense;
use super::pages::{csrf, layout, notice};
use super::*;

/// People shown per list (the counts are whole; the admin API and the CLI list everyone).
const SHOWN: usize = 200;

#[derive(Deserialize, Default)]
pub(super) struct ShadowQuery {
    notice: Option<String>,
}

pub(super) async fn shadow(
    v: Visit,
    p: web::Path<OfLicense>,
    q: web::Query<ShadowQuery>,
) -> Result<HttpResponse> {
    let Visit { state, s, t, .. } = v;
    shadow_page(&state, &s, &t, p.into_inner().l, q.notice.as_deref(), None).await
}

/// The page; `carried` is what carrying people over just did (its unmatched references are
/// listed).
async fn shadow_page(
    state: &AppState,
    s: &super::session::Session,
    t: &store::Tenant,
    lk: String,
    code: Option<&str>,
    carried: Option<&store::HoldersReport>,
) -> Result<HttpResponse> {
    let l = state.store.license(t.key, lk).await?;
    let base = format!("/console/tenants/{}/licenses/{}", t.id, l.id);
    let report = match l.mode {
        store::LicenseMode::Observe => Some(
            state
                .store
                .shadow(t.key, l.id.clone(), SHOWN, s.actor())
                .await?,
        ),
        store::LicenseMode::Enforce => None,
    };
    let when = |at: &str| crate::notify::when::format_rfc3339(at, &t.time_zone);
    let person = |p: &store::ShadowPerson| -> Markup {
        match &p.user_name {
            Some(name) => {
                html! { a href={ "/console/tenants/" (t.id) "/people/" (super::license_pages::urlencode(name)) } { (name) } }
            }
            None => html! { (p.user_id) },
        }
    };
    let list = |title: &str,
                id: &str,
                n: i64,
                people: &[store::ShadowPerson],
                why: &dyn Fn(&store::ShadowPerson) -> String|
     -> Markup {
        html! {
            section.card aria-labelledby=(id) {
                h2 id=(id) { (title) " (" (n) ")" }
                @if people.is_empty() {
                    p.muted { "Nobody." }
                } @else {
                    ul.people {
                        @for p in people {
                            li { (person(p)) @let w = why(p); @if !w.is_empty() { span.small.muted { " — " (w) } } }
                        }
                    }
                    @if (people.len() as i64) < n {
                        p.small.muted { "and " (n - people.len() as i64) " more: the admin API and " code { "seatkeeper license shadow" } " list everyone." }
                    }
                }
            }
        }
    };
    let body = html! {
        p.crumbs { a href={ "/console/tenants/" (t.id) } { (t.name) } " / " a href=(base) { (l.name) } " / enforcing" }
        h1 { "Enforcing " (l.name) }
        (notice(code))
        @if let Some(r) = carried {
            div.notice.ok role="status" {
                (r.added) " carried over (" (r.carried_over) " in all)."
                @if !r.not_entitled.is_empty() { " " (r.not_entitled.len()) " of those carried over are not in a selected group now." }
            }
            @if !r.unmatched.is_empty() || !r.ambiguous.is_empty() {
                div.notice.warn role="alert" {
                    @if !r.unmatched.is_empty() {
                        p { "These match nobody the directory has sent (check the spelling, or wait for the directory to send them): " (r.unmatched.iter().take(50).cloned().collect::<Vec<_>>().join(", ")) @if r.unmatched.len() > 50 { ", and " (r.unmatched.len() - 50) " more" } }
                    }
                    @if !r.ambiguous.is_empty() {
                        p { "These name several people (name each by id): " (r.ambiguous.iter().take(50).cloned().collect::<Vec<_>>().join(", ")) }
                    }
                }
            }
        }
        @match &report {
            None => {
                p { (l.name) " is enforced: the product is told each person's seat, and emails and webhooks go out." }
                form method="post" action={ (base) "/mode" } {
                    (csrf(s))
                    input type="hidden" name="mode" value="observe";
                    p.small.muted { "Observing computes the seats from what the directory sends without enforcing them: the product keeps granting access as it does today, and nobody is emailed. Use it to try a change of groups before it counts." }
                    button.secondary type="submit" { "Observe instead" }
                }
            }
            Some(r) => {
                div.notice role="status" {
                    strong { (l.name) " observes: nothing is enforced yet." }
                    " The product keeps today's seats and nobody is emailed. Below is what enforcing would do now, against the "
                    (r.carried_over) " people carried over as today's seat holders."
                }
                div.grid {
                    (list("Keep their seat", "keep", r.counts.keep, &r.keep, &|_| String::new()))
                    (list("Lose their seat", "lose", r.counts.lose, &r.lose, &|p| match p.reason {
                        Some("waiting") => format!("no seat left for them: they would wait, place {}", p.place.unwrap_or(0)),
                        Some("grace") => format!("not in a selected group: keeps the seat until {}", p.release_at.as_deref().map(when).unwrap_or_default()),
                        _ => "not in a selected group: loses it at once".to_owned(),
                    }))
                    (list("Gain a seat", "gain", r.counts.gain, &r.gain, &|_| String::new()))
                    (list("Wait", "wait", r.counts.wait, &r.wait, &|p| format!("place {}", p.place.unwrap_or(0))))
                }
                section.card aria-labelledby="switch" {
                    h2 #switch { "Switch to enforce" }
                    p { "Enforcing makes these seats real: " (r.counts.keep + r.counts.gain) " people get a seat of " (r.seats) ", " (r.counts.wait) " wait"
                        @if r.counts.lose > 0 { ", and " (r.counts.lose) " carried over lose theirs" } ". The people carried over are then forgotten and the ordinary rules apply." }
                    form method="post" action={ (base) "/mode" } {
                        (csrf(s))
                        input type="hidden" name="mode" value="enforce";
                        button type="submit" { "Enforce " (l.name) " now" }
                        " " a href=(base) { "Not yet" }
                    }
                }
                section.card aria-labelledby="holders" {
                    h2 #holders { "Today's seat holders" }
                    p { "People who hold a seat in the product today keep it when you enforce, first come in the order you give them (while seats last). One person per line: their user name, email, id or external id; a CSV's first column works too." }
                    form method="post" action={ (base) "/holders" } {
                        (csrf(s))
                        input type="hidden" name="action" value="add";
                        label for="people" { "People to carry over (added after the " (r.carried_over) " already carried over)" }
                        textarea #people name="people" rows="6" required {}
                        p { button type="submit" { "Carry them over" } }
                    }
                    @if r.carried_over > 0 {
                        form method="post" action={ (base) "/holders" } {
                            (csrf(s))
                            input type="hidden" name="action" value="clear";
                            button.secondary type="submit" { "Forget the " (r.carried_over) " carried over" }
                        }
                    }
                }
            }
        }
    };
    ok(layout(
        &format!("Enforcing {}", l.name),
        Some(s),
        Some(t),
        body,
    ))
}

#[derive(Deserialize)]
pub(super) struct ModeForm {
    csrf: String,
    mode: String,
}

/// Switches the license's mode: to enforce from its shadow page (the page was the preview),
/// to observe at once (no seat moves).
pub(super) async fn mode(
    v: Visit,
    p: web::Path<OfLicense>,
    form: web::Form<ModeForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let Visit { state, s, t, .. } = v;
    let mode = store::LicenseMode::parse(&form.mode)
        .ok_or_else(|| Error::Invalid(format!("unknown mode {:?}", form.mode)))?;
    let change = store::LicenseChange {
        mode: Some(mode),
        ..Default::default()
    };
    let since = state.store.seat_cursor(t.key).await?;
    let l = state
        .store
        .update_license(t.key, p.into_inner().l, change, s.actor())
        .await?;
    let code = match mode {
        store::LicenseMode::Enforce => "license-enforced",
        store::LicenseMode::Observe => "license-observes",
    };
    see_other(&format!(
        "/console/tenants/{}/licenses/{}?notice={code}&since={since}",
        t.id, l.id
    ))
}

#[derive(Deserialize)]
pub(super) struct HoldersForm {
    csrf: String,
    action: String,
    #[serde(default)]
    people: String,
}

/// Carries the people typed over (or forgets those carried over), then shows the report.
pub(super) async fn holders(
    v: Visit,
    p: web::Path<OfLicense>,
    form: web::Form<HoldersForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let Visit { state, s, t, .. } = v;
    let lk = p.into_inner().l;
    match form.action.as_str() {
        "add" => {
            let refs = crate::csv::first_column(&form.people);
            if refs.is_empty() {
                return Err(Error::Invalid(
                    "name one person per line: user name, email, id or external id".into(),
                ));
            }
            let r = state
                .store
                .carry_holders(t.key, lk.clone(), refs, s.actor())
                .await?;
            shadow_page(&state, &s, &t, lk, None, Some(&r)).await
        }
        "clear" => {
            state
                .store
                .clear_holders(t.key, lk.clone(), s.actor())
                .await?;
            let l = state.store.license(t.key, lk).await?;
            see_other(&format!(
                "/console/tenants/{}/licenses/{}/shadow?notice=holders-cleared",
                t.id, l.id
            ))
        }
        other => Err(Error::Invalid(format!("unknown action {other:?}"))),
    }
}
