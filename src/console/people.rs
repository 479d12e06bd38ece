//! A person's page: who they are in the directory (name, emails, active, groups), every license
//! they hold or wait for with their place and why they wait, the overrides set on them with the
//! buttons that change them, and what happened to them lately. Names link here from the seat
//! lists.

use maud::html;

use super::license_pages::{urlencode, why_waiting};
use super::pages::{csrf, layout, local_time};
use super::*;

#[derive(Deserialize)]
pub(super) struct OfPerson {
    user: String,
}

pub(super) async fn person(v: Visit, p: web::Path<OfPerson>) -> Result<HttpResponse> {
    let user = p.into_inner().user;
    let Visit { state, s, t, .. } = v;
    let record = state.store.user_named(t.key, user.clone()).await?;
    let seats = state.store.seats_of_user(t.key, user.clone()).await?;
    let licenses = state.store.list_licenses(t.key).await?;
    let mut overrides = Vec::new();
    for l in &licenses {
        for o in state.store.override_list(t.key, l.id.clone()).await? {
            if o.user_id == record.id {
                overrides.push((l.clone(), o));
            }
        }
    }
    let names: std::collections::HashMap<String, String> = licenses
        .iter()
        .map(|l| (l.id.clone(), l.name.clone()))
        .collect();
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let activity = state
        .store
        .activity_page(
            t.key,
            store::ActivityQuery {
                user: Some(user.clone()),
                limit: 20,
                ..Default::default()
            },
        )
        .await?;
    let doc = &record.doc;
    let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let display = text("displayName");
    let active = doc.get("active").and_then(|v| v.as_bool()).unwrap_or(true);
    let emails: Vec<String> = doc
        .get("emails")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("value").and_then(|v| v.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let base = format!("/console/tenants/{}", t.id);
    ok(layout(
        &format!("{user} · people"),
        Some(&s),
        Some(&t),
        html! {
            p.crumbs { a href=(base) { (t.name) } " / people / " (user) }
            h1 { @if display.is_empty() { (user) } @else { (display) } }
            dl.facts {
                dt { "User name" } dd { (user) }
                @if !emails.is_empty() { dt { "Email" } dd { (emails.join(", ")) } }
                dt { "In the directory" } dd { @if active { "active" } @else { "deactivated: entitled to nothing" } }
                dt { "Groups" } dd {
                    @if record.groups.is_empty() { span.muted { "none" } }
                    @for (i, g) in record.groups.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ (base) "/groups/" (g.id) } { (g.display) }
                    }
                }
            }
            h2 { "Licenses" }
            @if seats.is_empty() { p.muted { "No seat of any license, waiting or held: not in a group a license selects." } }
            @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "License" } th scope="col" { "State" } th scope="col" { "Place" } th scope="col" { "Why" } th scope="col" .hide-narrow { "Since" } } }
                    tbody {
                        @for u in &seats {
                            @let l = licenses.iter().find(|l| l.id == u.license.id);
                            tr {
                                th scope="row" { a href={ (base) "/licenses/" (u.license.id) } { (u.license.name) } }
                                td { span.badge.(u.seat.state.as_str()) { (u.seat.state.word()) } @if u.seat.pinned { " " span.badge.granted { "pinned" } } @if u.seat.hold.is_some() { " " span.badge.blocked { "held" } } }
                                td { @if let Some(p) = u.seat.position { (p) } }
                                td.small {
                                    @match (u.seat.state, l) {
                                        _ if u.seat.reason.is_some() => { (super::pages::capital(u.seat.reason.as_deref().unwrap_or_default())) "." @if let Some(g) = &u.seat.entitled_by { " Entitled through " (g) "." } }
                                        (store::UserState::Blocked, Some(l)) => (why_waiting(l, &u.seat)),
                                        (store::UserState::Releasing, _) => { "No longer entitled: keeps the seat until " @if let Some(at) = &u.seat.release_at { (local_time(at, &t)) } "." }
                                        (store::UserState::Granted, _) => @if let Some(g) = u.seat.entitled_by.as_ref().or(u.seat.group_name.as_ref()) { "Entitled through " (g) "." } @else { "Entitled through a selected group." },
                                        _ => "",
                                    }
                                }
                                td.small.hide-narrow { @if let Some(at) = &u.seat.since { (local_time(at, &t)) } }
                            }
                        }
                    }
                } }
            }
            h2 { "Overrides" }
            @if overrides.is_empty() { p.muted { "None: the rules apply to them as to everyone." } }
            @else {
                ul {
                    @for (l, o) in &overrides {
                        li {
                            (o.kind) " on " a href={ (base) "/licenses/" (l.id) } { (l.name) }
                            ", since " (local_time(&o.since, &t))
                            @if let Some(by) = &o.set_by { " by " (super::sentences::actor(by)) }
                            @if !o.entitled { " " span.badge.blocked title="They are not entitled to this license now: the pin has no effect until they are" { "no effect now" } }
                            " "
                            form.inline method="post" action={ (base) "/licenses/" (l.id) "/seats/" (urlencode(&user)) } {
                                (csrf(&s))
                                input type="hidden" name="action" value="clear";
                                button.secondary type="submit" aria-label={ "Clear the override of " (user) " on " (l.name) } { "Clear override" }
                            }
                        }
                    }
                }
            }
            h2 { "Lately" }
            @if activity.entries.is_empty() { p.muted { "Nothing yet." } }
            @else {
                ul {
                    @for e in &activity.entries {
                        li { span.small.muted { (local_time(&e.at, &t)) } " " (super::sentences::sentence(e, &name_of)) }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct OfGroup {
    g: String,
}

/// Members listed on a group's page (the rest are counted).
const GROUP_MEMBERS: usize = 100;

/// A group's page: the licenses it feeds and its members with their seat in each.
pub(super) async fn group(v: Visit, p: web::Path<OfGroup>) -> Result<HttpResponse> {
    let gid = p.into_inner().g;
    let Visit { state, s, t, .. } = v;
    let g = state.store.get_group(t.key, gid.clone(), true).await?;
    let name = g
        .doc
        .get("displayName")
        .and_then(|v| v.as_str())
        .unwrap_or(&g.id)
        .to_owned();
    let licenses: Vec<store::LicenseView> = state
        .store
        .list_licenses(t.key)
        .await?
        .into_iter()
        .filter(|l| {
            l.groups
                .iter()
                .any(|x| x.group_id.as_deref() == Some(g.id.as_str()))
        })
        .collect();
    let members = g.members.clone().unwrap_or_default();
    let mut rows = Vec::new();
    for m in members.iter().take(GROUP_MEMBERS) {
        if m.kind.as_deref() == Some("Group") {
            rows.push((
                m.value.clone(),
                m.display.clone().unwrap_or_default(),
                None,
                Vec::new(),
            ));
            continue;
        }
        let Ok(u) = state.store.get_user(t.key, m.value.clone()).await else {
            // Named but not provisioned yet: a pending member.
            rows.push((
                m.value.clone(),
                "not provisioned yet".into(),
                None,
                Vec::new(),
            ));
            continue;
        };
        let user_name = u
            .doc
            .get("userName")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let seats = state
            .store
            .seats_of_user(t.key, user_name.clone())
            .await
            .unwrap_or_default();
        let states: Vec<String> = licenses
            .iter()
            .map(|l| {
                seats
                    .iter()
                    .find(|x| x.license.id == l.id)
                    .map_or_else(|| "no seat".to_owned(), |x| x.seat.state.word().to_owned())
            })
            .collect();
        let display = u
            .doc
            .get("displayName")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        rows.push((user_name, display, Some(()), states));
    }
    let base = format!("/console/tenants/{}", t.id);
    ok(layout(
        &format!("{name} · groups"),
        Some(&s),
        Some(&t),
        html! {
            p.crumbs { a href=(base) { (t.name) } " / groups / " (name) }
            h1 { (name) }
            h2 { "Licenses it feeds" }
            @if licenses.is_empty() { p.muted { "No license selects this group directly." } }
            @else {
                ul { @for l in &licenses { li { a href={ (base) "/licenses/" (l.id) } { (l.name) } " (" (l.granted + l.releasing) " / " (l.seats) " in use, " (l.blocked) " waiting)" } } }
            }
            h2 { "Members (" (members.len()) ")" }
            @if members.is_empty() { p.muted { "No member." } }
            @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Member" } @for l in &licenses { th scope="col" { (l.name) } } } }
                    tbody {
                        @for (who, display, user, states) in &rows {
                            tr {
                                td {
                                    @if user.is_some() { a href={ (base) "/people/" (urlencode(who)) } { (who) } } @else { (who) }
                                    @if !display.is_empty() { br; span.small.muted { (display) } }
                                }
                                @for st in states { td { (st) } }
                                @if states.is_empty() { @for _ in &licenses { td { "—" } } }
                            }
                        }
                    }
                } }
                @if members.len() > GROUP_MEMBERS { p.small.muted { "And " (members.len() - GROUP_MEMBERS) " more: each license's seat list has everyone." } }
            }
        },
    ))
}
