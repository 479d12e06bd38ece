//! What each kind of email says, written for its recipient: the customer's licensing admin.
//!
//! People by name and email, their place on the waitlist, times in the tenant's time zone, no
//! internal ids, and one link to the console page that shows the situation with the action
//! there that fixes it (or, without `public_url`, where that page is in the console). The
//! operator's copy ([`Audience::Operator`]) says the same and adds the ids and the admin API and
//! CLI hints. Pure: [`content`] turns a [`Digest`] into [`Content`]; `render` lays it out.

use serde_json::Value;

use super::when;
use super::{Audience, Digest, Kind};

/// What one email says, before it is laid out as text and HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// What happened, in a few words: the end of the subject.
    pub headline: String,
    pub paragraphs: Vec<String>,
    /// The people or events concerned, every one (the body shows the first
    /// [`super::BODY_ITEMS`], the CSV all).
    pub table: Option<Table>,
    /// The license's seats now, when the email is about one license.
    pub seats: Option<String>,
    /// Where to act and what to do there.
    pub act: Act,
    /// Admin API and CLI hints, with ids: only in the operator's copy.
    pub operator: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    /// The console page, as a reader finds it: `Licenses › MindManager › Waitlist`.
    pub place: String,
    /// Its address, when `public_url` is set.
    pub url: Option<String>,
    /// What to do there.
    pub steps: Vec<String>,
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn n(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A digest's license: its current name, or the name it had when the events happened.
pub fn license_name(d: &Digest) -> Option<String> {
    d.license
        .as_ref()
        .map(|l| l.name.clone())
        .or_else(|| d.license_name.clone())
}

/// The console page `path` (under `/console/tenants/{tenant}`), found at `place`.
fn page(d: &Digest, path: &str, place: String, steps: Vec<String>) -> Act {
    Act {
        place,
        url: d.public_url.as_deref().map(|base| {
            format!(
                "{}/console/tenants/{}{path}",
                base.trim_end_matches('/'),
                d.tenant_id
            )
        }),
        steps,
    }
}

/// The license's page (with `rest`: a sub-page or anchor), or the tenant's licenses when the
/// license is gone.
fn license_page(d: &Digest, rest: &str, section: &str, steps: Vec<String>) -> Act {
    match &d.license {
        Some(l) => page(
            d,
            &format!("/licenses/{}{rest}", l.id),
            format!("Licenses › {}{section}", l.name),
            steps,
        ),
        None => page(d, "", "Licenses".into(), steps),
    }
}

fn time(d: &Digest, rfc3339: &str) -> String {
    when::format_rfc3339(rfc3339, &d.time_zone)
}

/// The API path of the tenant (operator hints).
fn api(d: &Digest, suffix: &str) -> String {
    format!(
        "{}/admin/v1/tenants/{}{suffix}",
        d.public_url.as_deref().unwrap_or("").trim_end_matches('/'),
        d.tenant_id
    )
}

/// A table's headers; the operator's copy adds the column of ids `id_column`.
fn columns(d: &Digest, names: &[&str], id_column: &str) -> Vec<String> {
    let mut headers: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    if d.audience == Audience::Operator {
        headers.push(id_column.to_owned());
    }
    headers
}

/// The API path of the digest's license (the tenant's licenses when it is gone).
fn license_api(d: &Digest) -> String {
    match &d.license {
        Some(l) => api(d, &format!("/licenses/{}", l.id)),
        None => api(d, "/licenses"),
    }
}

/// Everything the email of `d` says.
pub fn content(d: &Digest) -> Content {
    let mut c = match d.kind {
        Kind::Blocked => blocked(d),
        Kind::Threshold => threshold(d),
        Kind::CapacityLowered => capacity_lowered(d),
        Kind::PendingExpired => pending_expired(d),
        Kind::Silence => silence(d),
        Kind::ScimFailures => scim_failures(d),
        Kind::AuthFailures => auth_failures(d),
        Kind::DriftRepaired => drift_repaired(d),
        Kind::Test => test(d),
        Kind::WeeklySummary => weekly_summary(d),
        Kind::ReclaimNotice => reclaim_notice(d),
        Kind::WebhookDisabled => webhook_disabled(d),
        Kind::SeatsHeld => seats_held(d),
        Kind::Overage => overage(d),
        Kind::RunOut => run_out(d),
    };
    c.seats = d.license.as_ref().map(|l| {
        format!(
            "{} now: {} of {} seats in use{}, {} waiting.",
            l.name,
            l.in_use(),
            l.capacity,
            if l.releasing > 0 {
                format!(" ({} of them ending after their grace period)", l.releasing)
            } else {
                String::new()
            },
            count(l.blocked as usize, "person", "people")
        )
    });
    if d.audience == Audience::Operator {
        let mut ids = vec![format!("Tenant {} (id {})", d.tenant_name, d.tenant_id)];
        if let Some(l) = &d.license {
            ids.push(format!("license {} (id {})", l.name, l.id));
        }
        c.operator.insert(0, format!("{}.", ids.join(", ")));
    } else {
        c.operator.clear();
    }
    c
}

fn blocked(d: &Digest) -> Content {
    let total = d.items.len();
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let auto = d.license.as_ref().is_none_or(|l| l.auto_promote);
    let mut paragraphs = vec![format!(
        "{} became entitled to {license} through a group the license selects, but every seat was taken. {} {}",
        count(total, "person", "people"),
        if total == 1 { "They are on the waitlist" } else { "They are on the waitlist, in the order shown," },
        if d.license.is_none() {
            "and the license has since been deleted.".to_owned()
        } else if auto {
            "and get a seat by themselves as soon as one frees up.".to_owned()
        } else {
            "and get a seat when an admin grants one: automatic promotion is off for this license.".to_owned()
        }
    )];
    let seated = d
        .items
        .iter()
        .filter(|i| matches!(s(i, "state").as_str(), "granted" | "releasing"))
        .count();
    if seated > 0 {
        paragraphs.push(format!(
            "Since then, {} of them got a seat (shown as \"has a seat\").",
            seated
        ));
    }
    let operator = d.audience == Audience::Operator;
    let headers = columns(
        d,
        &["Position", "Name", "Email", "Waiting since", "Now"],
        "User id",
    );
    let rows = d
        .items
        .iter()
        .map(|i| {
            let user_name = s(i, "userName");
            let display = s(i, "displayName");
            let email = match s(i, "email") {
                e if !e.is_empty() => e,
                _ if user_name.contains('@') => user_name.clone(),
                _ => "—".into(),
            };
            let name = if display.is_empty() {
                user_name
            } else {
                display
            };
            let mut row = vec![
                i.get("position")
                    .and_then(Value::as_i64)
                    .map_or_else(|| "—".into(), |p| p.to_string()),
                name,
                email,
                time(d, &s(i, "at")),
                match s(i, "state").as_str() {
                    "blocked" => "waiting",
                    "granted" => "has a seat",
                    "releasing" => "has a seat (ending after its grace period)",
                    _ => "no longer entitled",
                }
                .to_owned(),
            ];
            if operator {
                row.push(s(i, "userId"));
            }
            row
        })
        .collect();
    let l_api = license_api(d);
    Content {
        headline: format!(
            "{} could not get a seat",
            count(total, "person", "people")
        ),
        paragraphs,
        table: Some(Table {
            title: "Who is waiting".into(),
            headers,
            rows,
        }),
        seats: None,
        act: license_page(
            d,
            "/seats?state=blocked",
            " › Seats, showing who waits",
            vec![
                "To give them seats, raise the seat count on the license's page (Seat count), or narrow the groups it selects so that only the people who need it are entitled.".into(),
                "To let one person go first, grant them a seat from this list once one is free, or pin them so they keep it.".into(),
            ],
        ),
        operator: vec![
            format!("Raise the seat count: PATCH {l_api} with {{\"seats\": N}}, or `seatkeeper license set {} {license} --seats N` (`license preview` first shows who would get a seat).", d.tenant_name),
            format!("Pin or exclude a user: PUT {l_api}/overrides/{{user}}; grant a seat by hand: POST {l_api}/seats/{{user}}/grant."),
        ],
    }
}

fn threshold(d: &Digest) -> Content {
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let top = d.items.iter().map(|i| n(i, "level")).max().unwrap_or(90);
    let capacity = d.items.last().map(|i| n(i, "capacity")).unwrap_or_default();
    let steps: Vec<String> = d
        .items
        .iter()
        .map(|i| {
            let what = if n(i, "level") >= 100 {
                format!("all {} of its seats", n(i, "capacity"))
            } else {
                format!(
                    "{}% of its seats ({} of {})",
                    n(i, "level"),
                    n(i, "inUse"),
                    n(i, "capacity")
                )
            };
            format!("{what} on {}", time(d, &s(i, "at")))
        })
        .collect();
    Content {
        headline: if top >= 100 {
            format!("all {capacity} seats are in use")
        } else {
            format!("{top}% of seats are in use")
        },
        paragraphs: vec![
            format!(
                "{license} reached {}. Once every seat is taken, people who become entitled wait for a seat.",
                steps.join(", then ")
            ),
            "You are told again only after use falls at least 5 points below this level and then reaches it once more.".into(),
        ],
        table: None,
        seats: None,
        act: license_page(
            d,
            "#count",
            " › Seat count",
            vec!["Raise the seat count there before the seats run out, or narrow the groups the license selects (Selected groups).".into()],
        ),
        operator: vec![format!(
            "PATCH {} with {{\"seats\": N}}.",
            license_api(d)
        )],
    }
}

fn capacity_lowered(d: &Digest) -> Content {
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let i = d.items.last().cloned().unwrap_or(Value::Null);
    let (from, to, in_use) = (n(&i, "from"), n(&i, "to"), n(&i, "inUse"));
    let effect = if s(&i, "policy") == "block_newest" {
        format!(
            "The {} who got their seats most recently were moved back to the waitlist, first in line for the next free seat.",
            count((in_use - to).max(0) as usize, "person", "people")
        )
    } else {
        format!(
            "Nobody lost a seat: the {in_use} people holding one keep it, and people who become entitled wait until fewer than {to} seats are in use."
        )
    };
    Content {
        headline: format!("seat count lowered from {from} to {to}, below the {in_use} seats in use"),
        paragraphs: vec![
            format!(
                "On {}, the seat count of {license} was lowered from {from} to {to} while {in_use} seats were in use.",
                time(d, &s(&i, "at"))
            ),
            effect,
        ],
        table: None,
        seats: None,
        act: license_page(
            d,
            "#count",
            " › Seat count",
            vec![
                "If this was a mistake, raise the seat count again there.".into(),
                "To free seats on purpose, narrow the groups the license selects, or exclude people in Overrides.".into(),
            ],
        ),
        operator: vec![format!(
            "PATCH {} with {{\"seats\": N}}.",
            license_api(d)
        )],
    }
}

fn pending_expired(d: &Digest) -> Content {
    let total = d.items.len();
    let rows = d
        .items
        .iter()
        .map(|i| {
            if s(i, "reference") == "group member" {
                let group = match s(i, "groupName") {
                    g if !g.is_empty() => g,
                    _ => "a group that has since been deleted".into(),
                };
                vec![
                    "A member of a group".to_owned(),
                    format!("Group {group}"),
                    format!("member {}", s(i, "member")),
                ]
            } else {
                let reference = [
                    ("displayName", "the group named"),
                    ("externalId", "the group with external id"),
                    ("id", "the group with id"),
                ]
                .iter()
                .find(|(k, _)| i.get(*k).is_some())
                .map(|(k, what)| format!("{what} \"{}\"", s(i, k)))
                .unwrap_or_default();
                vec![
                    "A selected group".to_owned(),
                    format!("License {}", s(i, "license")),
                    reference,
                ]
            }
        })
        .collect();
    Content {
        headline: format!(
            "{} never arrived from your identity provider",
            count(total, "group or member", "groups or members")
        ),
        paragraphs: vec![
            "These names referred to a group or a member that your identity provider never sent within the time seatkeeper waits for it (the tenant's pending window), so seatkeeper stopped waiting. Nobody got or lost a seat through them.".into(),
        ],
        table: Some(Table {
            title: "What never arrived".into(),
            headers: ["What", "Where", "Reference"].map(String::from).to_vec(),
            rows,
        }),
        seats: None,
        act: page(
            d,
            "#prov",
            "your tenant's page › Provisioning".into(),
            vec![
                "For a selected group: check its name on the license's page (Selected groups): a typo, or a group renamed in the directory.".into(),
                "Check that the group and its members are in the provisioning scope of your identity provider (Entra ID: the enterprise app's Users and groups).".into(),
            ],
        ),
        operator: vec![format!(
            "Change the window: PATCH {} with {{\"pending_window_seconds\": N}}.",
            api(d, "")
        )],
    }
}

fn silence(d: &Digest) -> Content {
    let i = d.items.last().cloned().unwrap_or(Value::Null);
    let since = match s(&i, "lastProviderCall") {
        t if t.is_empty() => "it was set up in seatkeeper".to_owned(),
        t => time(d, &t),
    };
    Content {
        headline: format!(
            "no provisioning calls for {}",
            when::duration(n(&i, "silentForSeconds"))
        ),
        paragraphs: vec![
            format!(
                "Your identity provider has not called seatkeeper since {since}: longer than the {} expected between syncs.",
                when::duration(n(&i, "expectedSyncSeconds"))
            ),
            "Seats follow your directory only while it syncs: people who joined or left since then have not got or lost seats.".into(),
        ],
        table: None,
        seats: None,
        act: page(
            d,
            "#prov",
            "your tenant's page › Provisioning".into(),
            vec![
                "In your identity provider, open the app's provisioning (Entra ID: the enterprise app › Provisioning): is provisioning on, is the job in quarantine, does Test Connection succeed?".into(),
                "If the secret token expired or was revoked, issue a new SCIM token on this page and paste it as the Secret Token.".into(),
                "If your provider syncs less often on purpose, raise the expected sync interval (Notifications and timing).".into(),
            ],
        ),
        operator: vec![format!(
            "PATCH {} with {{\"expected_sync_seconds\": N}}.",
            api(d, "")
        )],
    }
}

/// What a failing request's status means to the person who fixes the provider's mappings.
fn explain(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("uniqueness") {
        "a user or group with that name already exists (two users share a user name?)"
    } else if e.contains("invalidvalue") || e.contains("invalidsyntax") || e.contains("invalidpath")
    {
        "a value the attribute mappings send is not valid"
    } else if e.starts_with("404") {
        "the provider refers to a user or group seatkeeper does not have"
    } else if e.starts_with("412") {
        "the provider sent a change based on an outdated copy"
    } else if e.starts_with("413") || e.contains("toomany") {
        "the request was too large"
    } else if e.starts_with("429") || e.starts_with("503") {
        "seatkeeper asked the provider to slow down; it retries by itself"
    } else if e.starts_with('5') {
        "a fault in seatkeeper: tell whoever runs it"
    } else {
        "see your provider's provisioning logs for the request"
    }
}

fn scim_failures(d: &Digest) -> Content {
    let i = d.items.last().cloned().unwrap_or(Value::Null);
    let rows = s(&i, "mostCommonErrors")
        .split("; ")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (times, what) = e.split_once(" × ").unwrap_or(("", e));
            vec![times.to_owned(), what.to_owned(), explain(what).to_owned()]
        })
        .collect();
    Content {
        headline: format!(
            "{} provisioning requests failed within {}",
            n(&i, "failedRequests"),
            when::duration(n(&i, "withinSeconds"))
        ),
        paragraphs: vec![
            "Many requests from your identity provider failed in a short time. A failed request changes nothing, so the users and groups it carried are not up to date in seatkeeper, and their seats may be wrong until it succeeds.".into(),
        ],
        table: Some(Table {
            title: "The most common errors".into(),
            headers: ["Requests", "Error", "What it usually means"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
        seats: None,
        act: page(
            d,
            "#prov",
            "your tenant's page › Provisioning".into(),
            vec![
                "Compare with your identity provider's provisioning logs (Entra ID: Provisioning logs; Okta: System Log), and fix the attribute mappings or the directory entries they point to.".into(),
            ],
        ),
        operator: vec![format!(
            "The failures are in the daemon's log (tenant id {}); GET {} shows the tenant's status.",
            d.tenant_id,
            api(d, "/status")
        )],
    }
}

fn auth_failures(d: &Digest) -> Content {
    let operator = d.audience == Audience::Operator;
    let headers = columns(
        d,
        &["Token", "Why refused", "From address", "Requests"],
        "Token id",
    );
    let rows = d
        .items
        .iter()
        .map(|i| {
            let token = match s(i, "tokenIssued") {
                t if t.is_empty() => "a token of this tenant".to_owned(),
                t => format!("issued {}", when::format_rfc3339(&t, &d.time_zone)),
            };
            let mut row = vec![
                token,
                match s(i, "reason").as_str() {
                    "revoked" => "it was revoked".to_owned(),
                    "expired" => "it expired".to_owned(),
                    "wrong secret" => "the secret is wrong".to_owned(),
                    other => other.to_owned(),
                },
                match s(i, "client") {
                    c if c.is_empty() => "unknown".into(),
                    c => c,
                },
                s(i, "requests"),
            ];
            if operator {
                row.push(s(i, "tokenId"));
            }
            row
        })
        .collect();
    Content {
        headline: "requests with a revoked or wrong token were refused".into(),
        paragraphs: vec![
            "Requests reached seatkeeper with a SCIM token of yours that is revoked, expired or wrong. They were refused, so nothing they carried was applied: if your identity provider sent them, provisioning has stopped.".into(),
        ],
        table: Some(Table {
            title: "Refused requests".into(),
            headers,
            rows,
        }),
        seats: None,
        act: page(
            d,
            "#prov",
            "your tenant's page › Provisioning".into(),
            vec![
                "If your provider still uses an old token: issue a new SCIM token there and paste it as the Secret Token in the provider.".into(),
                "If you do not recognize the address the requests came from, leave the token revoked.".into(),
            ],
        ),
        operator: vec![format!("Issue a token: POST {}.", api(d, "/tokens"))],
    }
}

fn drift_repaired(d: &Digest) -> Content {
    let i = d.items.last().cloned().unwrap_or(Value::Null);
    let changes: Vec<String> = [
        ("granted", "granted"),
        ("promoted", "given to people waiting"),
        ("blocked", "moved to the waitlist"),
        ("releasing", "set to end after their grace period"),
        ("released", "ended"),
    ]
    .iter()
    .filter(|(k, _)| n(&i, k) > 0)
    .map(|(k, what)| format!("{} {what}", count(n(&i, k) as usize, "seat", "seats")))
    .collect();
    let mut operator = vec![format!("Run by: {}.", s(&i, "by"))];
    if let Some(c) = i.get("countersRepaired") {
        operator.push(format!("Seat counters repaired: {c}."));
    }
    Content {
        headline: format!(
            "seatkeeper corrected {}",
            count(n(&i, "repaired").max(1) as usize, "seat", "seats")
        ),
        paragraphs: vec![
            format!(
                "seatkeeper's regular check recomputed every license from your directory and found seats that did not match the rules. It corrected them{}.",
                if changes.is_empty() { String::new() } else { format!(": {}", changes.join(", ")) }
            ),
            "Nothing is needed from you. If this happens again, tell whoever runs seatkeeper: it points to a fault.".into(),
        ],
        table: None,
        seats: None,
        act: page(
            d,
            "/activity",
            "your tenant's Activity".into(),
            vec!["The seat events there show each person whose seat changed.".into()],
        ),
        operator,
    }
}

fn test(d: &Digest) -> Content {
    Content {
        headline: "test message".into(),
        paragraphs: vec![format!(
            "This is a test message from seatkeeper for {}: notifications about its licenses reach this address.",
            d.tenant_name
        )],
        table: None,
        seats: None,
        act: page(
            d,
            "#settings",
            "your tenant's page › Notifications and timing".into(),
            vec!["The recipients of these emails are set there.".into()],
        ),
        operator: vec![],
    }
}

fn reclaim_notice(d: &Digest) -> Content {
    let total = d.items.len();
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let operator = d.audience == Audience::Operator;
    let headers = columns(d, &["Name", "Last used", "Reclaimed on"], "User id");
    let rows = d
        .items
        .iter()
        .map(|i| {
            let mut row = vec![
                match s(i, "userName") {
                    n if n.is_empty() => "(deleted user)".to_owned(),
                    n => n,
                },
                match s(i, "lastUsed") {
                    t if t.is_empty() => "never reported".to_owned(),
                    t => time(d, &t),
                },
                time(d, &s(i, "reclaimAt")),
            ];
            if operator {
                row.push(s(i, "userId"));
            }
            row
        })
        .collect();
    Content {
        headline: format!(
            "{} will be reclaimed for not being used",
            count(total, "seat", "seats")
        ),
        paragraphs: vec![
            format!(
                "These people hold a seat of {license} but have not used it for a long time. Unless they use {license} before the date shown, their seats go to the people waiting (after the usual grace period); they can queue again when they need it."
            ),
        ],
        table: Some(Table {
            title: "Seats to be reclaimed".into(),
            headers,
            rows,
        }),
        seats: None,
        act: license_page(
            d,
            "#policy",
            " › Policy",
            vec![
                "To keep someone's seat, pin them on the license's seat list; to stop reclaiming, set idle reclaim to 0 days in the license's policy.".into(),
            ],
        ),
        operator: vec![format!(
            "Preview: GET {}/reclaim; settings: PATCH with {{\"reclaim_idle_days\": N, \"reclaim_notice_days\": N}}.",
            license_api(d)
        )],
    }
}

fn webhook_disabled(d: &Digest) -> Content {
    let operator = d.audience == Audience::Operator;
    let headers = columns(d, &["Endpoint", "Why"], "Webhook id");
    let rows = d
        .items
        .iter()
        .map(|i| {
            let mut row = vec![s(i, "url"), s(i, "reason")];
            if operator {
                row.push(s(i, "webhookId"));
            }
            row
        })
        .collect();
    Content {
        headline: format!(
            "{} disabled",
            count(d.items.len(), "webhook endpoint", "webhook endpoints")
        ),
        paragraphs: vec![
            "seatkeeper could not deliver seat changes to this endpoint for a long time (or it answered that it is gone), so it stopped sending to it. Your product no longer hears about seat changes through it.".into(),
            "Nothing is lost: the deliveries that were waiting stay queued and are sent when the endpoint is enabled again; changes made while it is disabled can be read from the product API's event feed.".into(),
        ],
        table: Some(Table {
            title: "Disabled endpoints".into(),
            headers,
            rows,
        }),
        seats: None,
        act: page(
            d,
            "#webhooks",
            "your tenant's page › Webhooks".into(),
            vec![
                "Check that the endpoint is up and answers 2xx to seatkeeper's POSTs (its last error is shown with its deliveries), then enable it again.".into(),
            ],
        ),
        operator: vec![format!(
            "Deliveries: GET {}/webhooks/{{id}}/deliveries; enable: PATCH {}/webhooks/{{id}} with {{\"enabled\": true}}.",
            api(d, ""),
            api(d, "")
        )],
    }
}

fn weekly_summary(d: &Digest) -> Content {
    let i = d.items.last().cloned().unwrap_or(Value::Null);
    let (from, to) = (n(&i, "from"), n(&i, "to"));
    let operator = d.audience == Audience::Operator;
    let headers = columns(
        d,
        &[
            "License",
            "Seats in use",
            "Seats",
            "Waiting",
            "Seats given this week",
            "Seats ended this week",
        ],
        "License id",
    );
    let rows = i
        .get("licenses")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    let mut row = vec![
                        s(l, "name"),
                        s(l, "inUse"),
                        s(l, "seats"),
                        s(l, "waiting"),
                        s(l, "granted"),
                        s(l, "released"),
                    ];
                    if operator {
                        row.push(s(l, "id"));
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let pending = n(&i, "pending");
    let mut paragraphs = vec![format!(
        "Your licenses in the week from {} to {}.",
        when::format_day(from, &d.time_zone),
        when::format_day(to, &d.time_zone)
    )];
    paragraphs.push(if pending > 0 {
        format!(
            "{} still waiting to arrive from your identity provider (see Provisioning).",
            count(
                pending as usize,
                "group or member is",
                "groups or members are"
            )
        )
    } else {
        "Every group and member your licenses name has arrived from your identity provider.".into()
    });
    Content {
        headline: format!("weekly seat summary to {}", when::format_day(to, &d.time_zone)),
        paragraphs,
        table: Some(Table {
            title: "Licenses".into(),
            headers,
            rows,
        }),
        seats: None,
        act: page(
            d,
            "",
            "your tenant's page".into(),
            vec!["Each license's page shows its seats, waitlist and selected groups. To stop this summary, turn the weekly summary off in Notifications and timing.".into()],
        ),
        operator: vec![],
    }
}

/// Items (one per hold, made readable by the store when the digest closes): `hold`, `state`
/// now, `held` now, `total` ever held, `percent`, `windowMinutes`, `changes`
/// (`[{change, count}]`), `people` (`[{userName, name, change}]`), `decidedBy`.
fn seats_held(d: &Digest) -> Content {
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let held: i64 = d.items.iter().map(|i| n(i, "held")).sum();
    let total: i64 = d.items.iter().map(|i| n(i, "total")).sum();
    let open = d.items.iter().any(|i| s(i, "state") == "open");
    let first = d.items.first().cloned().unwrap_or(Value::Null);
    let mut paragraphs = vec![format!(
        "Changes from your identity provider would have taken seats of {license} from more people within {} minutes than your tenant allows (more than {} % of its granted seats, and at least {} people). To protect against a provisioning mistake, seatkeeper held {}: they keep their seats, and no freed seat goes to anyone else, until you decide.",
        n(&first, "windowMinutes"),
        n(&first, "percent"),
        n(&first, "minSeats"),
        count(total as usize, "loss", "losses"),
    )];
    let mut changes: Vec<String> = Vec::new();
    for i in &d.items {
        for c in i
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            changes.push(format!(
                "{} {}",
                count(n(c, "count") as usize, "person", "people"),
                s(c, "change")
            ));
        }
    }
    if !changes.is_empty() {
        paragraphs.push(format!("What the directory did: {}.", changes.join("; ")));
    }
    for i in &d.items {
        match s(i, "state").as_str() {
            "open" if n(i, "held") < n(i, "total") => paragraphs.push(format!(
                "Since then the directory restored {} of them; {} still held.",
                n(i, "total") - n(i, "held"),
                count(n(i, "held") as usize, "loss is", "losses are")
            )),
            "approved" => paragraphs.push(format!(
                "An admin has since approved the hold ({}): the losses went through.",
                s(i, "decidedBy")
            )),
            "rejected" => paragraphs.push(format!(
                "An admin has since rejected the hold ({}): the people keep their seats.",
                s(i, "decidedBy")
            )),
            "dissolved" => paragraphs.push(
                "The directory has since restored everyone: the hold dissolved by itself and there is nothing to decide.".into(),
            ),
            _ => {}
        }
    }
    if open {
        paragraphs.push("If this was a mistake upstream (an app's scoping or assignments changed), undo it in the identity provider: as the people are restored, the hold dissolves by itself.".into());
    }
    let rows: Vec<Vec<String>> = d
        .items
        .iter()
        .flat_map(|i| {
            i.get("people")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .map(|p| vec![s(&p, "name"), s(&p, "userName"), s(&p, "change")])
        .collect();
    let holds: Vec<String> = d.items.iter().map(|i| s(i, "hold")).collect();
    Content {
        headline: if open {
            format!(
                "{} held for your decision",
                count(held as usize, "seat loss", "seat losses")
            )
        } else {
            "held seat losses settled".to_owned()
        },
        paragraphs,
        table: (!rows.is_empty()).then(|| Table {
            title: "Held people".into(),
            headers: vec!["Name".into(), "User name".into(), "What changed".into()],
            rows,
        }),
        seats: None,
        act: page(
            d,
            "/holds",
            "your tenant's page › Holds".into(),
            if open {
                vec![
                    "Approve: the losses go through (each seat is released after the license's grace period, and freed seats go to the waitlist).".into(),
                    "Reject: the people keep their seats until the directory entitles them again or an admin releases them.".into(),
                ]
            } else {
                vec!["Nothing to do: the page shows how the hold ended.".into()]
            },
        ),
        operator: vec![format!(
            "Hold {}: GET {}/holds/{{id}}; decide with POST {}/holds/{{id}}/approve or /reject; CLI: seatkeeper hold approve|reject TENANT ID.",
            holds.join(", "),
            api(d, ""),
            api(d, "")
        )],
    }
}

/// Items: `seats`, `overageSeats` (the extra seats agreed), `inUse`, when use first went above
/// the seat count.
fn overage(d: &Digest) -> Content {
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let first = d.items.first().cloned().unwrap_or(Value::Null);
    let (seats, extra) = (n(&first, "seats"), n(&first, "overageSeats"));
    Content {
        headline: "the agreed overage is in use".into(),
        paragraphs: vec![
            format!(
                "{license} now has more people with a seat than its {seats} seats ({} in use on {}). Your agreement allows up to {extra} more, so nobody was turned away; the seats in use above {seats} are billed at the true-up.",
                n(&first, "inUse"),
                time(d, &s(&first, "at"))
            ),
            "You are told again only after use is back within the seat count and then goes above it once more.".into(),
        ],
        table: None,
        seats: None,
        act: license_page(
            d,
            "#planning",
            " › Capacity planning",
            vec![
                "The true-up there shows the days and seat-days above the seat count; raise the seat count if this use is here to stay.".into(),
            ],
        ),
        operator: vec![format!(
            "True-up: GET {}/true-up?from=YYYY-MM-DD&to=YYYY-MM-DD (format=csv for CSV).",
            license_api(d)
        )],
    }
}

/// Items: `runOutAt` (YYYY-MM-DD), `demandPerDay`, `inUse`, `capacity`, `waiting`,
/// `confidence`, `horizonDays`.
fn run_out(d: &Digest) -> Content {
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let i = d.items.last().cloned().unwrap_or(Value::Null);
    let date = crate::capacity::parse_day(&s(&i, "runOutAt"))
        .and_then(|n| time::Date::from_julian_day((n + 2_440_588) as i32).ok())
        .map(|day| format!("{} {}", day.day(), day.month()))
        .unwrap_or_else(|| s(&i, "runOutAt"));
    let waiting = n(&i, "waiting");
    let mut first = format!("At the present rate {license} runs out of seats around {date}",);
    if waiting > 0 {
        first.push_str(&format!(
            "; {} already waiting",
            count(waiting as usize, "person is", "people are")
        ));
    }
    first.push('.');
    Content {
        headline: format!("seats run out around {date}"),
        paragraphs: vec![
            first,
            format!(
                "Demand (people with a seat or waiting for one) grows by about {} a day; {} of {} seats are in use. The forecast follows the trend since the last large change from your identity provider (confidence: {}).",
                s(&i, "demandPerDay"),
                n(&i, "inUse"),
                n(&i, "capacity"),
                s(&i, "confidence")
            ),
            format!(
                "You are told once each time the run-out date comes within {} days.",
                n(&i, "horizonDays")
            ),
        ],
        table: None,
        seats: None,
        act: license_page(
            d,
            "#count",
            " › Seat count",
            vec!["Raise the seat count before then, or narrow the groups the license selects.".into()],
        ),
        operator: vec![format!("Forecast: GET {}/forecast.", license_api(d))],
    }
}
