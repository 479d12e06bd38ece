//! The console's pages as maud templates (escaped by default). Pure: data in, HTML out.

use maud::{html, Markup, DOCTYPE};

use super::session::{Scope, Session};
use crate::store::events::webhooks::WebhookView;
use crate::store::{Health, LicenseView, Tenant, TenantStatus, TokenInfo};

fn notice_text(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "tenant-created" => (
            "ok",
            "Tenant created. Issue a SCIM token for its identity provider below.",
        ),
        "settings-saved" => ("ok", "Settings saved."),
        "tenant-closed" => (
            "ok",
            "Tenant closed: every credential of it is refused. Its data is purged after the retention period unless it is restored (seatkeeper tenant restore).",
        ),
        "token-revoked" => ("ok", "Token revoked: it stops working at once."),
        "webhook-enabled" => ("ok", "Webhook enabled: waiting deliveries go out now."),
        "webhook-disabled" => (
            "ok",
            "Webhook disabled: nothing is sent to it until it is enabled.",
        ),
        "webhook-deleted" => ("ok", "Webhook deleted."),
        "license-created" => (
            "ok",
            "License created. Select the groups whose members get seats.",
        ),
        "selection-saved" => ("ok", "Selection saved; seats follow at once."),
        "license-saved" => ("ok", "License saved."),
        "license-enforced" => (
            "ok",
            "Enforced: the seats are real now, the product is told, and emails and webhooks go out. The people carried over kept their seats first.",
        ),
        "license-observes" => (
            "ok",
            "Observing: seats are computed but not enforced, and nobody is emailed. See what enforcing would do under Enforcing.",
        ),
        "holders-cleared" => ("ok", "The people carried over are forgotten."),
        "seat-granted" => ("ok", "Seat granted."),
        "override-saved" => ("ok", "Override saved."),
        "retry-queued" => ("ok", "Queued for sending again."),
        "dismissed" => ("ok", "Dismissed: it will not be sent."),
        "hold-approved" => (
            "ok",
            "Hold approved: the held seats are released after the license's grace period and go to the waitlist.",
        ),
        "hold-rejected" => (
            "ok",
            "Hold rejected: the held people keep their seats until the directory entitles them again or you approve the hold after all.",
        ),
        _ => return None,
    })
}

/// A token just issued, shown once on the tenant page.
pub enum NewToken {
    /// A SCIM token: id and secret.
    Scim(String, String),
    /// A product token: id and secret.
    Product(String, String),
    /// A webhook's signing secret (new or rotated): the webhook's id and the secret.
    Webhook(String, String),
}

pub(super) fn notice(code: Option<&str>) -> Markup {
    match code.and_then(notice_text) {
        Some((class, text)) => html! { div.notice.(class) role="status" { (text) } },
        None => html! {},
    }
}

/// What a change just moved, by person: "Ann got a seat; Carl loses his after the grace;
/// Dana waits" (at most 10 names a line). Nothing when the change moved no seat.
pub(super) fn moved(m: Option<&crate::store::SeatMoves>) -> Markup {
    let Some(m) = m else { return html! {} };
    let names = |v: &[String]| {
        let mut shown = v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 10 {
            shown.push_str(&format!(" and {} more", v.len() - 10));
        }
        shown
    };
    let n = |v: &[String]| if v.len() == 1 { "" } else { "s" };
    html! {
        div.notice.ok role="status" #moved {
            @if m.is_empty() {
                "No seat moved."
            } @else {
                strong { "Seats moved. " }
                ul {
                    @if !m.gained.is_empty() { li { "Got a seat: " (names(&m.gained)) } }
                    @if !m.releasing.is_empty() { li { "Lose their seat" (n(&m.releasing)) " after the grace: " (names(&m.releasing)) } }
                    @if !m.lost.is_empty() { li { "Lost their seat" (n(&m.lost)) ": " (names(&m.lost)) } }
                    @if !m.waiting.is_empty() { li { "Now waiting: " (names(&m.waiting)) } }
                    @if !m.held.is_empty() { li { "Held by the circuit breaker: " (names(&m.held)) } }
                }
            }
        }
    }
}

pub(super) fn layout(
    title: &str,
    s: Option<&Session>,
    tenant: Option<&Tenant>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · seatkeeper" }
                link rel="stylesheet" href="/console/static/app.css";
                script src="/console/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a href="/console/" { strong { "seatkeeper" } }
                    @if let Some(s) = s {
                        nav aria-label="Main" {
                            @if s.scope == Scope::Operator { a href="/console/tenants" { "Tenants" } }
                            @if let Some(t) = tenant {
                                a href={ "/console/tenants/" (t.id) } { (t.name) }
                                a href={ "/console/tenants/" (t.id) "/activity" } { "Activity" }
                                a href={ "/console/tenants/" (t.id) "/holds" } { "Holds" }
                            }
                        }
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A secret shown this once (a token, a signing secret): what it is, the field holding it
/// (`field`: its element id) and a copy button.
fn shown_once(what: Markup, label: &str, field: &str, secret: &str) -> Markup {
    html! {
        strong { (what) " — shown once, copy it now." }
        label for=(field) { (label) }
        div.row {
            input id=(field) type="text" readonly value=(secret);
            button.secondary type="button" data-copy={ "#" (field) } { "Copy" }
        }
    }
}

/// A tenant's tokens of one kind (`path`: `tokens` or `product-tokens`), each with its state
/// and a revoke button that asks `confirm` first.
/// A form of one button that issues a new credential of the tenant (`kind`: `tokens`,
/// `product-tokens`).
fn issue_button(s: &Session, t: &Tenant, kind: &str, label: &str) -> Markup {
    html! {
        form method="post" action={ "/console/tenants/" (t.id) "/" (kind) } {
            (csrf(s))
            button type="submit" { (label) }
        }
    }
}

fn token_table(
    s: &Session,
    t: &Tenant,
    tokens: &[TokenInfo],
    path: &str,
    noun: &str,
    confirm: &str,
) -> Markup {
    if tokens.is_empty() {
        return html! {};
    }
    html! {
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Token" } th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { span.skip { "Actions" } } } }
                tbody {
                    @for k in tokens {
                        tr {
                            td.mono { (k.id) }
                            td.small { (local_time(&k.created, t)) }
                            td {
                                @if let Some(r) = &k.revoked { span.badge.blocked { "revoked" } " " span.small { (local_time(r, t)) } }
                                @else if let Some(e) = &k.expires { "expires " span.small { (local_time(e, t)) } }
                                @else { span.badge.granted { "active" } }
                            }
                            td {
                                @if k.revoked.is_none() {
                                    form.inline method="post" action={ "/console/tenants/" (t.id) "/" (path) "/" (k.id) "/revoke" } data-confirm=(confirm) {
                                        (csrf(s))
                                        button.danger type="submit" aria-label={ "Revoke " (noun) " " (k.id) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

pub fn error_page(message: &str) -> Markup {
    layout(
        "Error",
        None,
        None,
        html! {
            h1 { "Something went wrong" }
            div.notice.bad role="alert" { (message) }
            p { a href="javascript:history.back()" { "Back" } " · " a href="/console/" { "Console home" } }
        },
    )
}

pub fn login(token: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { div.notice.bad role="alert" { (e) } }
            form.card method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(token);
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                p.small.muted { "The operator's admin token (admin_token), or a tenant admin token (ska_...) for one tenant. It is checked once; a session cookie keeps you signed in for up to 12 hours (30 minutes idle)." }
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn last_call(status: &Health) -> Markup {
    html! {
        @match &status.last_provider_call {
            Some(t) => span { (t) },
            None => span.muted { "never" },
        }
        @if status.silent {
            " " span.badge.blocked title="No provider call for longer than expected" { "silent " (status.silent_for_seconds / 60) " min" }
        }
    }
}

pub fn tenants(
    s: &Session,
    rows: &[(Tenant, Health)],
    scim_url: &str,
    code: Option<&str>,
) -> Markup {
    layout(
        "Tenants",
        Some(s),
        None,
        html! {
            h1 { "Tenants" }
            (notice(code))
            p.muted { "Every tenant's identity provider uses the same SCIM base URL: " code { (scim_url) } "; its token names the tenant." }
            div.table-wrap {
                table {
                    caption.muted.small { (rows.len()) " tenants" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Last provider call" } th scope="col" .hide-narrow { "Recipients" } } }
                    tbody {
                        @for (t, st) in rows {
                            tr {
                                td { a href={ "/console/tenants/" (t.id) } { (t.name) } }
                                td { (last_call(st)) }
                                td.hide-narrow { (t.notify.iter().map(|r| r.email()).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
            h2 { "Create a tenant" }
            form.card method="post" action="/console/tenants" {
                (csrf(s))
                label for="name" { "Name" }
                input #name type="text" name="name" required maxlength="200";
                label for="notify" { "Notification recipients" }
                input #notify type="text" name="notify" placeholder="it-admins@example.com, licensing@example.com";
                p { button type="submit" { "Create tenant" } }
            }
        },
    )
}

/// A time in the tenant's zone, in the emails' format (`Thu 1 Jan 2026, 01:00 CET`), with the
/// exact instant in the element for the viewer's tooltip.
pub(super) fn local_time(at: &str, t: &Tenant) -> Markup {
    html! { time datetime=(at) title=(at) { (crate::notify::when::format_rfc3339(at, &t.time_zone)) } }
}

/// `text` with its first letter in capitals (a reason as a sentence).
pub(super) fn capital(text: &str) -> String {
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A notification kind as a person reads it.
pub(super) fn kind_words(kind: &str) -> &str {
    match kind {
        "blocked" => "people waiting",
        "threshold" => "seats running out",
        "capacity_lowered" => "seat count lowered",
        "pending_expired" => "groups or members never arrived",
        "silence" => "no provisioning calls",
        "scim_failures" => "provisioning requests failing",
        "auth_failures" => "refused tokens",
        "drift_repaired" => "seats corrected",
        "test" => "test message",
        "weekly_summary" => "weekly summary",
        "reclaim_notice" => "idle seats to reclaim",
        "webhook_disabled" => "webhook disabled",
        "seats_held" => "seat losses held",
        "overage" => "overage in use",
        "run_out" => "seats run out soon",
        "provider_failures" => "identity provider failing",
        "combined" => "license notices",
        other => other,
    }
}

/// Where a license stands, in one word: `Observing` (shadow mode: nothing enforced), `Held`
/// (the circuit breaker holds losses), `Over` (more seats in use than the count), `Full` (every
/// seat taken, or people waiting), `OK`.
pub(super) fn standing(l: &LicenseView) -> (&'static str, &'static str) {
    let in_use = l.granted + l.releasing;
    if l.mode == crate::store::LicenseMode::Observe {
        ("Observing", "warn")
    } else if l.held > 0 {
        ("Held", "bad")
    } else if in_use > l.seats {
        ("Over", "bad")
    } else if l.blocked > 0 || (l.seats > 0 && in_use >= l.seats) {
        ("Full", "warn")
    } else {
        ("OK", "ok")
    }
}

pub(super) fn gauge(l: &LicenseView) -> Markup {
    // An SVG, not styled spans: the console's CSP allows no inline styles. The scale is the
    // seat count, or what is in use and waiting when that is more: a license over its count
    // shows past the count's mark (red), and the people waiting and held show on the bar.
    let in_use = l.granted + l.releasing;
    let total = (l.seats.max(in_use + l.blocked)).max(1) as f64;
    let part = |n: i64| n as f64 / total * 100.0;
    let held = part(l.held.min(l.granted));
    let g = part(l.granted) - held;
    let r = part(l.releasing);
    let w = part(l.blocked);
    let mark = part(l.seats);
    let over = in_use > l.seats;
    html! {
        svg.gauge.over[over] viewBox="0 0 100 6" preserveAspectRatio="none" role="img"
            aria-label={ (in_use) " of " (l.seats) " seats in use, " (l.blocked) " waiting" @if l.held > 0 { ", " (l.held) " held" } } {
            rect.bg x="0" y="0" width="100" height="6" {}
            rect.g x="0" y="0" width=(format!("{g:.2}")) height="6" {}
            rect.h x=(format!("{g:.2}")) y="0" width=(format!("{held:.2}")) height="6" {}
            rect.r x=(format!("{:.2}", g + held)) y="0" width=(format!("{r:.2}")) height="6" {}
            rect.w x=(format!("{:.2}", g + held + r)) y="0" width=(format!("{w:.2}")) height="6" {}
            @if mark < 100.0 { rect.mark x=(format!("{:.2}", (mark - 0.4).max(0.0))) y="0" width="0.8" height="6" {} }
        }
        div.legend {
            span { i.lg-g {} (l.granted) " granted" }
            span { i.lg-r {} (l.releasing) " releasing" }
            span { i.lg-w {} (l.blocked) " waiting" }
            @if l.held > 0 { span.held { i.lg-h {} (l.held) " held" } }
            span { strong { (in_use) " / " (l.seats) } " in use" }
        }
    }
}

/// The tenant's licenses as the licensing admin reads them first: each with its seats in use,
/// waiting, held, how far over its count, and where it stands.
fn license_table(t: &Tenant, licenses: &[LicenseView]) -> Markup {
    html! {
        div.table-wrap { table #licenses-table {
            thead { tr {
                th scope="col" { "License" }
                th scope="col" { "In use / seats" }
                th scope="col" { "Waiting" }
                th scope="col" { "Held" }
                th scope="col" { "Over by" }
                th scope="col" { "Status" }
                th scope="col" .hide-narrow { "Seats" }
            } }
            tbody {
                @for l in licenses {
                    @let in_use = l.granted + l.releasing;
                    @let (word, class) = standing(l);
                    tr {
                        th scope="row" { a href={ "/console/tenants/" (t.id) "/licenses/" (l.id) } { (l.name) } }
                        td { (in_use) " / " (l.seats) }
                        td { (l.blocked) }
                        td { (l.held) }
                        td { @if in_use > l.seats { (in_use - l.seats) } @else { "—" } }
                        td { span.badge.(class) { (word) } }
                        td.hide-narrow { (gauge(l)) }
                    }
                }
            }
        } }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn tenant(
    s: &Session,
    t: &Tenant,
    tokens: &[TokenInfo],
    product_tokens: &[TokenInfo],
    webhooks: &[WebhookView],
    status: &TenantStatus,
    licenses: &[LicenseView],
    scim_url: &str,
    new_token: Option<NewToken>,
    code: Option<&str>,
) -> Markup {
    let new_product = match &new_token {
        Some(NewToken::Product(id, token)) => Some((id.clone(), token.clone())),
        _ => None,
    };
    let new_secret = match &new_token {
        Some(NewToken::Webhook(id, secret)) => Some((id.clone(), secret.clone())),
        _ => None,
    };
    let new_token = match new_token {
        Some(NewToken::Scim(id, token)) => Some((id, token)),
        _ => None,
    };
    layout(
        &t.name,
        Some(s),
        Some(t),
        html! {
            p.crumbs { @if s.scope == Scope::Operator { a href="/console/tenants" { "Tenants" } " / " } (t.name) }
            h1 { (t.name) }
            (notice(code))
            @if status.open_holds > 0 {
                div.notice.bad #holds-waiting role="alert" {
                    (status.held_seats) " seat losses are held by the circuit breaker: "
                    a href={ "/console/tenants/" (t.id) "/holds" } { "decide on " (status.open_holds) @if status.open_holds == 1 { " hold" } @else { " holds" } }
                    "."
                }
            }
            @if status.undelivered > 0 {
                div.notice.warn role="status" {
                    strong { (status.undelivered) " notification email" @if status.undelivered != 1 { "s" } " could not be delivered." }
                    " The mail server refused them for good. "
                    a href={ "/console/tenants/" (t.id) "/activity" } { "See them in Activity" }
                    " to send them again or dismiss them."
                }
            }
            h2 #licenses { "Licenses" }
            @if licenses.is_empty() { p.muted { "No license yet." } } @else { (license_table(t, licenses)) }
            form.card method="post" action={ "/console/tenants/" (t.id) "/licenses" } {
                h3 { "Create a license" }
                (csrf(s))
                div.row {
                    div { label for="lname" { "Name" } input #lname type="text" name="name" required maxlength="200"; }
                    div { label for="lseats" { "Seats" } input #lseats type="number" name="seats" min="0" required; }
                    div { button type="submit" { "Create license" } }
                }
            }
            h2 #integration { "Provisioning, tokens, webhooks and settings" }
            div.grid {
                section.card aria-labelledby="prov" {
                    h2 #prov { "Provisioning" }
                    p { "Last provider call: " (last_call(&status.health())) }
                    p.small.muted { "Expected at least every " (t.expected_sync_seconds / 60) " minutes." }
                    p { a href={ "/console/tenants/" (t.id) "/provisioning" } { "Failing requests of your identity provider" } }
                    label for="scim-url" { "Tenant URL (SCIM base URL)" }
                    div.row {
                        input #scim-url type="text" readonly value=(scim_url);
                        button.secondary type="button" data-copy="#scim-url" { "Copy" }
                    }
                    @if let Some((id, token)) = &new_token {
                        div.notice.warn role="status" {
                            (shown_once(html! { "New token " code { (id) } }, "Secret Token", "secret-token", token))
                            p.small { "In Microsoft Entra ID: Enterprise application → Provisioning → Admin Credentials: paste the Tenant URL and the Secret Token, then Test Connection. In Okta: SCIM connector base URL, authentication mode HTTP Header, the token as Bearer." }
                        }
                    }
                    (issue_button(s, t, "tokens", "Issue a SCIM token"))
                    (token_table(s, t, tokens, "tokens", "token", "Revoke this token? The provider using it stops at once."))
                }
                section.card aria-labelledby="product" {
                    h2 #product { "Product tokens" }
                    p.small.muted { "Your product reads seats with these (" code { "/product/v1" } "): read only, this tenant only." }
                    @if let Some((id, token)) = &new_product {
                        div.notice.warn role="status" {
                            (shown_once(html! { "New product token " code { (id) } }, "Product token", "product-token", token))
                        }
                    }
                    (issue_button(s, t, "product-tokens", "Issue a product token"))
                    (token_table(s, t, product_tokens, "product-tokens", "product token", "Revoke this product token? The product using it stops reading seats at once."))
                }
                section.card aria-labelledby="webhooks" {
                    h2 #webhooks { "Webhooks" }
                    p.small.muted { "seatkeeper POSTs each seat change to these URLs, signed as the Standard Webhooks specification says (" code { "webhook-signature" } "), in order per user, retrying through outages." }
                    @if let Some((id, secret)) = &new_secret {
                        div.notice.warn role="status" {
                            (shown_once(html! { "Signing secret of webhook " code { (id) } }, "Signing secret", "webhook-secret", secret))
                        }
                    }
                    form method="post" action={ "/console/tenants/" (t.id) "/webhooks" } {
                        (csrf(s))
                        label for="webhook-url" { "Endpoint URL" }
                        input #webhook-url type="url" name="url" required placeholder="https://product.example.com/hooks/seats";
                        fieldset {
                            legend.small { "Events (none ticked: all)" }
                            @for ty in crate::webhook::EventType::ALL {
                                label.inline {
                                    input type="checkbox" name="events" value=(ty.as_str());
                                    " " code { (ty.as_str()) }
                                }
                            }
                        }
                        button type="submit" { "Add webhook" }
                    }
                    @if !webhooks.is_empty() {
                        div.table-wrap {
                            table {
                                thead { tr { th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "State" } th scope="col" { "Waiting" } th scope="col" { span.skip { "Actions" } } } }
                                tbody {
                                    @for w in webhooks {
                                        tr {
                                            td.mono { (w.url) br; span.small.muted { (w.id) } }
                                            td.small { (w.events.join(", ")) }
                                            td {
                                                @if w.enabled {
                                                    @if let Some(f) = &w.failing_since { span.badge.releasing { "failing" } " " span.small { "since " (local_time(f, t)) } }
                                                    @else { span.badge.granted { "active" } }
                                                } @else {
                                                    span.badge.blocked { "disabled" }
                                                    @if let Some(r) = &w.disabled_reason { " " span.small { (r) } }
                                                }
                                            }
                                            td { (w.pending) }
                                            td {
                                                @let base = format!("/console/tenants/{}/webhooks/{}", t.id, w.id);
                                                form.inline method="post" action={ (base) (if w.enabled { "/disable" } else { "/enable" }) } {
                                                    (csrf(s))
                                                    button.secondary type="submit" aria-label={ (if w.enabled { "Disable" } else { "Enable" }) " webhook " (w.id) } { (if w.enabled { "Disable" } else { "Enable" }) }
                                                }
                                                form.inline method="post" action={ (base) "/rotate" } data-confirm="Make a new signing secret? The old one keeps signing beside it for a day." {
                                                    (csrf(s))
                                                    button.secondary type="submit" aria-label={ "Rotate the secret of webhook " (w.id) } { "Rotate secret" }
                                                }
                                                form.inline method="post" action={ (base) "/delete" } data-confirm="Delete this webhook? Its waiting deliveries are dropped." {
                                                    (csrf(s))
                                                    button.danger type="submit" aria-label={ "Delete webhook " (w.id) } { "Delete" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                section.card aria-labelledby="settings" {
                    h2 #settings { "Notifications and timing" }
                    form method="post" action={ "/console/tenants/" (t.id) "/settings" } {
                        (csrf(s))
                        label for="notify" { "Recipients" }
                        input #notify type="text" name="notify" value=(t.notify.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "));
                        p.small.muted { "Separate addresses with commas; " code { "it@contoso.com: blocked threshold" } " limits one address to those kinds." }
                        label for="time-zone" { "Time zone of the emails (IANA name)" }
                        input #time-zone type="text" name="time_zone" value=(t.time_zone) placeholder="Europe/Berlin";
                        label for="weekly-day" { "Weekly summary" }
                        div.row {
                            select #weekly-day name="weekly_day" {
                                option value="off" selected[t.weekly_summary.is_none()] { "off" }
                                @for day in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] {
                                    option value=(day) selected[t.weekly_summary.is_some_and(|w| serde_json::json!(w.day) == day)] { (day) }
                                }
                            }
                            label.skip for="weekly-hour" { "Hour" }
                            input #weekly-hour type="number" name="weekly_hour" min="0" max="23" value=(t.weekly_summary.map_or(8, |w| w.hour)) aria-label="Hour of the weekly summary";
                        }
                        label for="expected" { "Expected sync interval (hours)" }
                        input #expected type="number" name="expected_sync_hours" min="0.02" step="any" value=(super::hours(t.expected_sync_seconds));
                        label for="window" { "Pending window (hours, up to 72)" }
                        input #window type="number" name="pending_window_hours" min="0" max="72" step="any" value=(super::hours(t.pending_window_seconds));
                        label for="horizon" { "Warn when seats run out within (days, by the forecast)" }
                        input #horizon type="number" name="forecast_horizon_days" min="1" max="365" value=(t.forecast_horizon_days);
                        label for="idp-warn" { "Warn when this share of the identity provider's requests fails (%, over 7 days)" }
                        input #idp-warn type="number" name="idp_failure_warn_percent" min="1" max="100" value=(t.idp_failure_warn_percent);
                        fieldset {
                            legend { "Circuit breaker on mass seat loss" }
                            p.small.muted { "Directory changes that would take seats from more than this share of a license's granted users (and at least this many people) within the window are held for your decision. 100 % switches it off." }
                            div.row {
                                div { label for="hold-percent" { "Share (%)" } input #hold-percent type="number" name="hold_threshold_percent" min="0" max="100" value=(t.hold_threshold_percent); }
                                div { label for="hold-min" { "At least (people)" } input #hold-min type="number" name="hold_min_seats" min="1" value=(t.hold_min_seats); }
                                div { label for="hold-window" { "Window (hours)" } input #hold-window type="number" name="hold_window_hours" min="0.02" max="72" step="any" value=(super::hours(t.hold_window_seconds)); }
                            }
                        }
                        p { button type="submit" { "Save" } }
                    }
                }
            }
            @if s.scope == Scope::Operator {
                form.card #offboard method="post" action={ "/console/tenants/" (t.id) "/delete" } {
                    h2 { "Offboard this customer" }
                    p {
                        "Closes the tenant at once: its SCIM, admin and product tokens stop working, and it gets no emails, webhooks or reconciler work. "
                        "Its data is kept for the retention period (export it first: "
                        code { "seatkeeper tenant export " (t.name) }
                        "), can be restored until then, and is then purged for good."
                    }
                    (csrf(s))
                    div.row {
                        div {
                            label for="confirm-name" { "Type the tenant's name, " strong { (t.name) } ", to confirm" }
                            input #confirm-name type="text" name="confirm" required autocomplete="off";
                        }
                        div { button.danger type="submit" { "Offboard " (t.name) } }
                    }
                }
            }
        },
    )
}
