//! The console's activity page as a maud template: the audit log and seat events, filtered,
//! and the notification outbox. Pure: data in, HTML out.

use maud::{html, Markup};

use super::pages::{csrf, layout, notice};
use super::session::Session;
use crate::store::{AuditEntry, LicenseView, Notification, Tenant};
use serde_json::Value;

/// What the activity list is filtered by, as given.
pub struct ActivityFilter<'a> {
    pub q: &'a str,
    pub license: &'a str,
    pub user: &'a str,
    pub actor: &'a str,
    pub kind: &'a str,
    /// The first and last day, as given.
    pub from: &'a str,
    pub to: &'a str,
    /// The cursor of the next (older) page, if there is one ...
    pub older: Option<&'a str>,
    /// ... and of the page before (newer).
    pub newer: Option<&'a str>,
}

/// The query string with the same filters, and `cursor` as `key` (`before`, `after`) if given.
fn query(f: &ActivityFilter, cursor: Option<(&str, &str)>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("q", f.q)
        .append_pair("license", f.license)
        .append_pair("user", f.user)
        .append_pair("actor", f.actor)
        .append_pair("kind", f.kind)
        .append_pair("from", f.from)
        .append_pair("to", f.to);
    if let Some((key, c)) = cursor {
        q.append_pair(key, c);
    }
    q.finish()
}

/// Consecutive entries of one seat event of one license (a sync that queued 1,000 people):
/// runs of at least this many show as one line that opens to the whole run.
const RUN: usize = 3;

/// The entries as runs: (first index, length).
fn runs(entries: &[(AuditEntry, String)]) -> Vec<(usize, usize)> {
    let key = |e: &AuditEntry| {
        (
            e.action.clone(),
            e.actor.clone(),
            e.detail.get("license").cloned(),
            e.detail.get("cause").cloned(),
        )
    };
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, (e, _)) in entries.iter().enumerate() {
        match out.last_mut() {
            Some((start, len))
                if e.action.starts_with("seat.") && key(&entries[*start].0) == key(e) =>
            {
                *len += 1
            }
            _ => out.push((i, 1)),
        }
    }
    // Short runs show line by line.
    out.into_iter()
        .flat_map(|(start, len)| {
            if len >= RUN {
                vec![(start, len)]
            } else {
                (start..start + len).map(|i| (i, 1)).collect()
            }
        })
        .collect()
}

pub fn activity(
    s: &Session,
    t: &Tenant,
    entries: &[(AuditEntry, String)],
    notifications: &[Notification],
    licenses: &[LicenseView],
    f: ActivityFilter,
    code: Option<&str>,
) -> Markup {
    let raw = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    layout(
        &format!("Activity of {}", t.name),
        Some(s),
        Some(t),
        html! {
            p.crumbs { a href={ "/console/tenants/" (t.id) } { (t.name) } " / activity" }
            h1 { "Activity" }
            (notice(code))
            h2 { "Notifications" }
            @if notifications.is_empty() { p.muted { "No notification yet." } }
            @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Event" } th scope="col" { "State" } th scope="col" .hide-narrow { "Created" } th scope="col" { "Subject" } th scope="col" { "Attempts" } th scope="col" { span.skip { "Actions" } } } }
                    tbody {
                        @for n in notifications {
                            tr {
                                td { (super::pages::kind_words(&n.kind)) }
                                td { span.badge.(n.state.as_str()) { (n.state.as_str()) } @if let Some(e) = &n.last_error { br; span.small.muted { (e) } } }
                                td.small.hide-narrow { (super::pages::local_time(&n.created, t)) }
                                td { (n.subject.as_deref().unwrap_or("")) }
                                td { (n.attempts) }
                                td {
                                    @if n.state.needs_action() {
                                        form.inline method="post" action={ "/console/tenants/" (t.id) "/notifications/" (n.id) "/retry" } {
                                            (csrf(s))
                                            button.secondary type="submit" { "Retry" }
                                        }
                                        form.inline method="post" action={ "/console/tenants/" (t.id) "/notifications/" (n.id) "/dismiss" } {
                                            (csrf(s))
                                            button.secondary type="submit" { "Dismiss" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
            h2 { "What happened" }
            form.row method="get" action={ "/console/tenants/" (t.id) "/activity" } role="search" {
                div { label for="aq" { "Search" } input #aq type="search" name="q" value=(f.q) placeholder="e.g. alice, Design"; }
                div { label for="al" { "License" }
                    select #al name="license" {
                        option value="" { "Any" }
                        @for l in licenses { option value=(l.name) selected[f.license.eq_ignore_ascii_case(&l.name)] { (l.name) } }
                    }
                }
                div { label for="au" { "User" } input #au type="search" name="user" value=(f.user) placeholder="userName"; }
                div { label for="aa" { "Who" }
                    select #aa name="actor" {
                        @for (v, label) in [("", "Anyone"), ("operator", "The operator"), ("tenant-admin", "Tenant admins"), ("console", "In the console"), ("cli", "The command line"), ("reconciler", "The reconciler"), ("allocator", "seatkeeper (seat changes)")] {
                            option value=(v) selected[f.actor == v] { (label) }
                        }
                    }
                }
                div { label for="ak" { "Kind" }
                    select #ak name="kind" {
                        option value="" { "Everything" }
                        @for (label, v) in super::activity::KINDS { option value=(v) selected[f.kind == v] { (label) } }
                    }
                }
                div { label for="afrom" { "From" } input #afrom type="date" name="from" value=(f.from); }
                div { label for="ato" { "To" } input #ato type="date" name="to" value=(f.to); }
                div { button type="submit" { "Filter" } }
            }
            p.small { a #export href={ "/console/tenants/" (t.id) "/activity.csv?" (query(&f, None)) } { "Export what matches (CSV)" } " · times in " (t.time_zone) }
            @if entries.is_empty() { p.muted { "Nothing matches." } }
            ul.activity {
                @for (start, len) in runs(entries) {
                    @let (e, text) = &entries[start];
                    @if len == 1 {
                        li {
                            time datetime=(e.at) { (crate::notify::when::format_rfc3339(&e.at, &t.time_zone)) }
                            " "
                            span { (text) }
                            @if let Some(u) = e.detail.get("userName").and_then(Value::as_str) {
                                " " a.small href={ "/console/tenants/" (t.id) "/people/" (super::license_pages::urlencode(u)) } aria-label={ "The page of " (u) } { "person" }
                            }
                            details.small {
                                summary { "raw" }
                                pre.mono { (format!("{} {} {}\n{}", e.at, e.actor, e.action, raw(&e.detail))) }
                            }
                        }
                    } @else {
                        li.run {
                            time datetime=(e.at) { (crate::notify::when::format_rfc3339(&e.at, &t.time_zone)) }
                            " "
                            details {
                                summary { span { (text) } strong { " and " (len - 1) " more like it" } }
                                ul {
                                    @for (e, text) in &entries[start + 1..start + len] {
                                        li { time datetime=(e.at) { (crate::notify::when::format_rfc3339(&e.at, &t.time_zone)) } " " (text) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.row {
                @if let Some(newer) = f.newer {
                    a rel="prev" href={ "/console/tenants/" (t.id) "/activity?" (query(&f, Some(("after", newer)))) } { "Newer entries" }
                    " "
                }
                @if let Some(older) = f.older {
                    a rel="next" href={ "/console/tenants/" (t.id) "/activity?" (query(&f, Some(("before", older)))) } { "Older entries" }
                }
            }
        },
    )
}
