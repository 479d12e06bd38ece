//! The circuit breaker's holds in the console: the open ones with the people they hold and
//! the directory changes that caused them, approved or rejected (CSRF and a confirmation, as
//! every form), and the decided ones below. The same store calls as the admin API.

use maud::html;

use super::pages::{csrf, layout, notice};
use super::*;
use crate::store::HoldView;

pub(super) async fn holds(v: Visit, q: web::Query<Notice>) -> Result<HttpResponse> {
    let Visit { state, s, t, .. } = v;
    let all = state.store.holds(t.key, None).await?;
    let mut open = Vec::new();
    let mut settled = Vec::new();
    for h in all {
        if h.state.awaits_decision(h.held) {
            // With its people (the first of them): the admin decides on them.
            open.push(state.store.hold(t.key, h.id).await?);
        } else {
            settled.push(h);
        }
    }
    ok(page(&s, &t, &open, &settled, q.notice.as_deref()))
}

/// `approve` or `reject` a hold.
pub(super) async fn hold_action(
    v: Visit,
    p: web::Path<OfAction<i64>>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let OfAction { id, action } = p.into_inner();
    let Visit { state, s, t, .. } = v;
    let (decision, notice) = match action.as_str() {
        "approve" => (store::Decision::Approve, "hold-approved"),
        "reject" => (store::Decision::Reject, "hold-rejected"),
        _ => return Err(Error::NotFound("no such action".into())),
    };
    state
        .store
        .decide_hold(t.key, id, decision, s.actor())
        .await?;
    state.mail_wake.notify_one();
    see_other(&format!("/console/tenants/{}/holds?notice={notice}", t.id))
}

fn when(at: &str, t: &store::Tenant) -> Markup {
    html! { time datetime=(at) { (crate::notify::when::format_rfc3339(at, &t.time_zone)) } }
}

fn page(
    s: &Session,
    t: &store::Tenant,
    open: &[HoldView],
    settled: &[HoldView],
    code: Option<&str>,
) -> Markup {
    let base = format!("/console/tenants/{}/holds", t.id);
    layout(
        "Holds",
        Some(s),
        Some(t),
        html! {
            h1 { "Holds" }
            (notice(code))
            p.muted {
                "When changes from the identity provider would take seats from more than "
                (t.hold_threshold_percent) " % of a license's people (and at least " (t.hold_min_seats)
                ") within " (t.hold_window_seconds / 60) " minutes, seatkeeper holds the losses past that point: "
                "those people keep their seats and nobody else gets them until you decide. "
                "If the change was a mistake, undo it in the identity provider: the hold dissolves by itself."
            }
            @if open.is_empty() { p #no-holds { "No hold waits for a decision." } }
            @for h in open {
                section.card.hold id={ "hold-" (h.id) } {
                    h2 {
                        a href={ "/console/tenants/" (t.id) "/licenses/" (h.license.id) } { (h.license.name) }
                        ": " (h.held) @if h.held == 1 { " seat loss held" } @else { " seat losses held" }
                    }
                    p {
                        @if h.state == store::HoldState::Rejected {
                            "Rejected " @if let Some(at) = &h.decided_at { (when(at, t)) } ": these people keep their seats until the directory entitles them again. Approve to release them after all."
                        } @else {
                            "Held since " (when(&h.created, t)) "."
                        }
                    }
                    h3 { "What the directory did" }
                    ul.changes {
                        @for c in &h.changes { li { (c.count) " × " (c.change) } }
                    }
                    @if let Some(users) = &h.users {
                        table {
                            caption { "Held people" @if (users.len() as i64) < h.held { " (the first " (users.len()) " of " (h.held) ")" } }
                            thead { tr { th scope="col" { "Name" } th scope="col" { "User name" } th scope="col" { "What changed" } } }
                            tbody {
                                @for u in users {
                                    tr {
                                        td { (u.display_name.clone().unwrap_or_default()) }
                                        td { (u.user_name.clone().unwrap_or_else(|| u.user_id.clone())) }
                                        td { (u.change) }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(before) = h.released_before.as_ref().filter(|b| !b.is_empty()) {
                        table.released-before {
                            caption { "Released just before, in the same window (" (before.len()) " " (if before.len() == 1 { "person" } else { "people" }) "): the breaker counts them, it did not hold them" }
                            thead { tr { th scope="col" { "User name" } th scope="col" { "What happened" } } }
                            tbody {
                                @for u in before {
                                    tr {
                                        td { @if let Some(n) = &u.user_name { a href={ "/console/tenants/" (t.id) "/people/" (super::license_pages::urlencode(n)) } { (n) } } @else { (u.user_id) } }
                                        td { (u.change) }
                                    }
                                }
                            }
                        }
                    }
                    div.row {
                        form.inline method="post" action={ (base) "/" (h.id) "/approve" }
                            data-confirm={ "Approve? " (h.held) " people lose their seats of " (h.license.name) " after its grace period; the seats go to the waitlist." } {
                            (csrf(s))
                            button type="submit" { "Approve: release the seats" }
                        }
                        @if h.state.allows(store::Decision::Reject) {
                            form.inline method="post" action={ (base) "/" (h.id) "/reject" }
                                data-confirm={ "Reject? " (h.held) " people keep their seats of " (h.license.name) "." } {
                                (csrf(s))
                                button.secondary type="submit" { "Reject: keep their seats" }
                            }
                        }
                    }
                }
            }
            @if !settled.is_empty() {
                h2 { "Earlier holds" }
                table #settled {
                    thead { tr { th scope="col" { "License" } th scope="col" { "Held" } th scope="col" { "Outcome" } th scope="col" { "By" } th scope="col" { "When" } } }
                    tbody {
                        @for h in settled {
                            tr {
                                td { (h.license.name) }
                                td { (h.total) }
                                td { (match h.state {
                                    store::HoldState::Approved => "approved: the losses went through",
                                    store::HoldState::Rejected => "rejected: seats kept",
                                    store::HoldState::Dissolved => "dissolved: the directory undid the change",
                                    store::HoldState::Open => "open",
                                }) }
                                td { (h.decided_by.clone().unwrap_or_default()) }
                                td { @if let Some(at) = &h.decided_at { (when(at, t)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}
