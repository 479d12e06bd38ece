//! The identity provider's failing requests in the console: the week's failure rate against the
//! provider's quarantine rule, and each kind of failure, the most recent first, with its count,
//! the resource it named, the answer and its likely cause in the admin's words. The same store
//! call as the admin API (`GET …/provisioning/failures`) and the CLI (`tenant failures`).

use maud::html;

use super::pages::layout;
use super::*;

pub(super) async fn provisioning(v: Visit) -> Result<HttpResponse> {
    let Visit { state, s, t, .. } = v;
    let h = state.store.provider_failures(t.key).await?;
    let when = |at: &str| {
        html! { time datetime=(at) { (crate::notify::when::format_rfc3339(at, &t.time_zone)) } }
    };
    let rate_class = if h.failure_percent > h.warn_percent as f64 {
        "notice warn"
    } else {
        "notice"
    };
    ok(layout(
        "Provisioning failures",
        Some(&s),
        Some(&t),
        html! {
            p.crumbs { a href={ "/console/tenants/" (t.id) } { (t.name) } " / provisioning failures" }
            h1 { "Provisioning failures" }
            div class=(rate_class) role="status" {
                strong { (h.failed) " of " (h.requests) " requests failed in the last " (h.days) " days (" (h.failure_percent) " %)." }
                " You are warned by email past " (h.warn_percent) " % (with 100 failures at least)."
            }
            p.small.muted { (h.quarantine.rule) }
            @if h.quarantine.past_the_limit {
                div.notice.warn role="alert" { "At this rate your identity provider would put this app's provisioning in quarantine: fix the failures below first." }
            }
            @if h.failures.is_empty() {
                p.muted { "No request of your identity provider failed in the last " (h.days) " days." }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { "Last" }
                        th scope="col" { "Times" }
                        th scope="col" { "Request" }
                        th scope="col" { "Answer" }
                        th scope="col" { "Likely cause and what to do" }
                    } }
                    tbody {
                        @for f in &h.failures {
                            tr {
                                td.small { (when(&f.last)) }
                                td { (f.count) }
                                td { code { (f.method) " " (f.resource) } }
                                td { (f.status) @if let Some(k) = &f.scim_type { " " (k) } @if !f.detail.is_empty() { br; span.small.muted { (f.detail) } } }
                                td { (f.cause) }
                            }
                        }
                    }
                } }
            }
        },
    ))
}
