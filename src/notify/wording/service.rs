//! What the emails about provisioning and the service say: pending references that expired,
//! a silent provider, failing SCIM requests, refused tokens, drift the reconciler repaired, a
//! disabled webhook, the weekly summary and the test message.

use super::*;
use crate::notify::items;

pub(super) fn pending_expired(d: &Digest) -> Content {
    let items: Vec<items::PendingExpired> = items::of(d);
    let total = items.len();
    let rows = items
        .iter()
        .map(|i| {
            if i.reference.to_string() == "group member" {
                let group = match i.group_name.to_string() {
                    g if !g.is_empty() => g,
                    _ => "a group that has since been deleted".into(),
                };
                vec![
                    "A member of a group".to_owned(),
                    format!("Group {group}"),
                    format!("member {}", i.member.to_string()),
                ]
            } else {
                let reference = [
                    ("displayName", "the group named"),
                    ("externalId", "the group with external id"),
                    ("id", "the group with id"),
                ]
                .iter()
                .find_map(|(k, what)| {
                    let named = match *k {
                        "displayName" => &i.display_name,
                        "externalId" => &i.external_id,
                        _ => &i.id,
                    };
                    named.as_ref().map(|v| format!("{what} \"{v}\""))
                })
                .unwrap_or_default();
                vec![
                    "A selected group".to_owned(),
                    format!("License {}", i.license.to_string()),
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
        act: provisioning(
            d,
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

pub(super) fn silence(d: &Digest) -> Content {
    let i = items::last::<items::Silence>(d);
    let since = match i.last_provider_call.to_string() {
        t if t.is_empty() => "it was set up in seatkeeper".to_owned(),
        t => time(d, &t),
    };
    Content {
        headline: format!(
            "no provisioning calls for {}",
            when::duration(i.silent_for_seconds.0)
        ),
        paragraphs: vec![
            format!(
                "Your identity provider has not called seatkeeper since {since}: longer than the {} expected between syncs.",
                when::duration(i.expected_sync_seconds.0)
            ),
            "Seats follow your directory only while it syncs: people who joined or left since then have not got or lost seats.".into(),
        ],
        table: None,
        seats: None,
        act: provisioning(
            d,
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
pub(super) fn explain(error: &str) -> &'static str {
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

pub(super) fn provider_failures(d: &Digest) -> Content {
    let i = items::last::<items::ProviderFailures>(d);
    let rows = i
        .top
        .iter()
        .map(|f| {
            vec![
                f.count.0.to_string(),
                f.request.to_string(),
                f.status.to_string(),
                f.cause.to_string(),
            ]
        })
        .collect();
    Content {
        headline: format!(
            "{} % of your identity provider's requests failed in the last {} days",
            i.failure_percent.0, i.days.0
        ),
        paragraphs: vec![
            format!(
                "Of {} provisioning requests your identity provider sent in the last {} days, {} failed: more than the {} % you chose to be warned at. A failed request changes nothing, so the people and groups it carried are not up to date here, and their seats may be wrong.",
                i.requests.0, i.days.0, i.failures.0, i.warn_percent.0
            ),
            "Identity providers stop provisioning an app whose requests keep failing: Microsoft Entra ID puts a provisioning job in quarantine when, after at least 5,000 failures, more than 40 % of its requests fail (or 40,000 fail), then syncs only once a day, and disables the job after four weeks. Fixing the failures below keeps yours running.".into(),
        ],
        table: Some(Table {
            title: "The most frequent failures".into(),
            headers: ["Times", "Request", "Answer", "Likely cause and what to do"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
        seats: None,
        act: page(
            d,
            "/provisioning",
            "your tenant's Provisioning failures".into(),
            vec![
                "That page lists every failing request with its likely cause; compare with your identity provider's provisioning logs (Entra ID: Provisioning logs; Okta: System Log).".into(),
                "Fix the attribute mappings or the directory entries the failures point to; the provider's next cycles then succeed and the rate falls.".into(),
            ],
        ),
        operator: vec![format!(
            "GET {} lists the failures; the threshold is the tenant's idp_failure_warn_percent.",
            api(d, "/provisioning/failures")
        )],
    }
}

pub(super) fn scim_failures(d: &Digest) -> Content {
    let i = items::last::<items::ScimFailures>(d);
    let rows = i
        .most_common_errors
        .to_string()
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
            i.failed_requests.0,
            when::duration(i.within_seconds.0)
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
        act: provisioning(
            d,
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

pub(super) fn auth_failures(d: &Digest) -> Content {
    let operator = d.audience == Audience::Operator;
    let headers = columns(
        d,
        &["Token", "Why refused", "From address", "Requests"],
        "Token id",
    );
    let rows = items::of::<items::AuthFailures>(d)
        .iter()
        .map(|i| {
            let token = match i.token_issued.to_string() {
                t if t.is_empty() => "a token of this tenant".to_owned(),
                t => format!("issued {}", when::format_rfc3339(&t, &d.time_zone)),
            };
            let mut row = vec![
                token,
                match i.reason.as_str() {
                    "revoked" => "it was revoked".to_owned(),
                    "expired" => "it expired".to_owned(),
                    "wrong secret" => "the secret is wrong".to_owned(),
                    other => other.to_owned(),
                },
                match i.client.to_string() {
                    c if c.is_empty() => "unknown".into(),
                    c => c,
                },
                i.requests.to_string(),
            ];
            if operator {
                row.push(i.token_id.to_string());
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
        act: provisioning(
            d,
            vec![
                "If your provider still uses an old token: issue a new SCIM token there and paste it as the Secret Token in the provider.".into(),
                "If you do not recognize the address the requests came from, leave the token revoked.".into(),
            ],
        ),
        operator: vec![format!("Issue a token: POST {}.", api(d, "/tokens"))],
    }
}

pub(super) fn drift_repaired(d: &Digest) -> Content {
    let i = items::last::<items::DriftRepaired>(d);
    let changes: Vec<String> = [
        ("granted", "granted"),
        ("promoted", "given to people waiting"),
        ("blocked", "moved to the waitlist"),
        ("releasing", "set to end after their grace period"),
        ("released", "ended"),
    ]
    .iter()
    .filter_map(|(k, what)| {
        let n = match *k {
            "granted" => i.granted,
            "promoted" => i.promoted,
            "blocked" => i.blocked,
            "releasing" => i.releasing,
            _ => i.released,
        }
        .0;
        (n > 0).then(|| format!("{} {what}", count(n as usize, "seat", "seats")))
    })
    .collect();
    let mut operator = vec![format!("Run by: {}.", i.by.to_string())];
    if let Some(c) = &i.counters_repaired {
        operator.push(format!("Seat counters repaired: {c}."));
    }
    Content {
        headline: format!(
            "seatkeeper corrected {}",
            count(i.repaired.0.max(1) as usize, "seat", "seats")
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

pub(super) fn test(d: &Digest) -> Content {
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

pub(super) fn webhook_disabled(d: &Digest) -> Content {
    let items: Vec<items::WebhookDisabled> = items::of(d);
    let operator = d.audience == Audience::Operator;
    let headers = columns(d, &["Endpoint", "Why"], "Webhook id");
    let rows = items
        .iter()
        .map(|i| {
            let mut row = vec![i.url.to_string(), i.reason.to_string()];
            if operator {
                row.push(i.webhook_id.to_string());
            }
            row
        })
        .collect();
    Content {
        headline: format!(
            "{} disabled",
            count(items.len(), "webhook endpoint", "webhook endpoints")
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

pub(super) fn weekly_summary(d: &Digest) -> Content {
    let i = items::last::<items::WeeklySummary>(d);
    let (from, to) = (i.from.0, i.to.0);
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
        .licenses
        .iter()
        .map(|l| {
            let mut row = vec![
                l.name.to_string(),
                l.in_use.to_string(),
                l.seats.to_string(),
                l.waiting.to_string(),
                l.granted.to_string(),
                l.released.to_string(),
            ];
            if operator {
                row.push(l.id.to_string());
            }
            row
        })
        .collect();
    let pending = i.pending.0;
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

/// What to do on the tenant's console page, in its Provisioning section.
fn provisioning(d: &Digest, steps: Vec<String>) -> Act {
    page(
        d,
        "#prov",
        "your tenant's page › Provisioning".into(),
        steps,
    )
}
