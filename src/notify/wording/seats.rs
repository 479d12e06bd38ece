//! What the emails about a license's seats say: people waiting, use thresholds, a lowered
//! seat count, seats about to be reclaimed, held seat losses, the agreed overage in use, and
//! the forecast run-out.

use super::*;
use crate::notify::items;

pub(super) fn blocked(d: &Digest) -> Content {
    let items: Vec<items::Blocked> = items::of(d);
    let total = items.len();
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let auto = d.license.as_ref().is_none_or(|l| l.auto_promote);
    // Through which groups: named when the directory's groups are known.
    let mut groups: Vec<String> = Vec::new();
    for i in &items {
        let g = i.group.to_string();
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let through = match groups.as_slice() {
        [] => "through a group the license selects".to_owned(),
        [one] => format!("through the group {one}"),
        [first @ .., last] => format!("through the groups {} and {last}", first.join(", ")),
    };
    let mut paragraphs = vec![format!(
        "{} became entitled to {license} {through}, but every seat was taken. {} {}",
        count(total, "person", "people"),
        if total == 1 {
            "They are on the waitlist"
        } else {
            "They are on the waitlist, in the order shown,"
        },
        if d.license.is_none() {
            "and the license has since been deleted.".to_owned()
        } else if auto {
            "and get a seat by themselves as soon as one frees up.".to_owned()
        } else {
            "and get a seat when an admin grants one: automatic promotion is off for this license."
                .to_owned()
        }
    )];
    let seated = items
        .iter()
        .filter(|i| matches!(i.state.as_str(), "granted" | "releasing"))
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
        &["Position", "Name", "Email", "Group", "Waiting since", "Now"],
        "User id",
    );
    let rows = items
        .iter()
        .map(|i| {
            let user_name = i.user_name.to_string();
            let display = i.display_name.to_string();
            let email = match i.email.to_string() {
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
                i.position.map_or_else(|| "—".into(), |p| p.to_string()),
                name,
                email,
                match i.group.to_string() {
                    g if g.is_empty() => "—".into(),
                    g => g,
                },
                time(d, i.at.as_str()),
                match i.state.as_str() {
                    "blocked" => "waiting",
                    "granted" => "has a seat",
                    "releasing" => "has a seat (ending after its grace period)",
                    _ => "no longer entitled",
                }
                .to_owned(),
            ];
            if operator {
                row.push(i.user_id.to_string());
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

pub(super) fn threshold(d: &Digest) -> Content {
    let items: Vec<items::Threshold> = items::of(d);
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let top = items.iter().map(|i| i.level.0).max().unwrap_or(90);
    let capacity = items.last().map(|i| i.capacity.0).unwrap_or_default();
    let steps: Vec<String> = items
        .iter()
        .map(|i| {
            let what = if i.level.0 >= 100 {
                format!("all {} of its seats", i.capacity.0)
            } else {
                format!(
                    "{}% of its seats ({} of {})",
                    i.level.0, i.in_use.0, i.capacity.0
                )
            };
            format!("{what} on {}", time(d, i.at.as_str()))
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

pub(super) fn capacity_lowered(d: &Digest) -> Content {
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let i = items::last::<items::CapacityLowered>(d);
    let (from, to, in_use) = (i.from.0, i.to.0, i.in_use.0);
    let effect = if i.policy.to_string() == "block_newest" {
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
                time(d, i.at.as_str())
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

pub(super) fn reclaim_notice(d: &Digest) -> Content {
    let items: Vec<items::ReclaimNotice> = items::of(d);
    let total = items.len();
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let operator = d.audience == Audience::Operator;
    let headers = columns(d, &["Name", "Last used", "Reclaimed on"], "User id");
    let rows = items
        .iter()
        .map(|i| {
            let mut row = vec![
                match i.user_name.to_string() {
                    n if n.is_empty() => "(deleted user)".to_owned(),
                    n => n,
                },
                match i.last_used.to_string() {
                    t if t.is_empty() => "never reported".to_owned(),
                    t => time(d, &t),
                },
                time(d, i.reclaim_at.as_str()),
            ];
            if operator {
                row.push(i.user_id.to_string());
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

/// Items (one per hold, made readable by the store when the digest closes): `hold`, `state`
/// now, `held` now, `total` ever held, `percent`, `windowMinutes`, `changes`
/// (`[{change, count}]`), `people` (`[{userName, name, change}]`), `decidedBy`.
pub(super) fn seats_held(d: &Digest) -> Content {
    let items: Vec<items::SeatsHeld> = items::of(d);
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let held: i64 = items.iter().map(|i| i.held.0).sum();
    let total: i64 = items.iter().map(|i| i.total.0).sum();
    let open = items.iter().any(|i| i.state.to_string() == "open");
    let first = items.first().cloned().unwrap_or_default();
    let mut paragraphs = vec![format!(
        "Changes from your identity provider would have taken seats of {license} from more people within {} minutes than your tenant allows (more than {} % of its granted seats, and at least {} people). To protect against a provisioning mistake, seatkeeper held {}: they keep their seats, and no freed seat goes to anyone else, until you decide.",
        first.window_minutes.0,
        first.percent.0,
        first.min_seats.0,
        count(total as usize, "loss", "losses"),
    )];
    let mut changes: Vec<String> = Vec::new();
    for i in &items {
        for c in &i.changes {
            changes.push(format!(
                "{} {}",
                count(c.count.0 as usize, "person", "people"),
                c.change
            ));
        }
    }
    if !changes.is_empty() {
        paragraphs.push(format!("What the directory did: {}.", changes.join("; ")));
    }
    // The whole story: who lost a seat in the same window before the breaker tripped.
    let before: Vec<String> = items
        .iter()
        .flat_map(|i| i.released_before.iter())
        .map(|p| p.user_name.to_string())
        .collect();
    if !before.is_empty() {
        let mut names = before
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if before.len() > 25 {
            names.push_str(&format!(" and {} more", before.len() - 25));
        }
        paragraphs.push(format!(
            "Just before the breaker tripped, the same changes took the seat of {} ({names}): the breaker counts those losses but did not hold them.",
            count(before.len(), "person", "people"),
        ));
    }
    for i in &items {
        match i.state.as_str() {
            "open" if i.held.0 < i.total.0 => paragraphs.push(format!(
                "Since then the directory restored {} of them; {} still held.",
                i.total.0 - i.held.0,
                count(i.held.0 as usize, "loss is", "losses are")
            )),
            "approved" => paragraphs.push(format!(
                "An admin has since approved the hold ({}): the losses went through.",
                i.decided_by
            )),
            "rejected" => paragraphs.push(format!(
                "An admin has since rejected the hold ({}): the people keep their seats.",
                i.decided_by
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
    let rows: Vec<Vec<String>> = items
        .iter()
        .flat_map(|i| i.people.clone())
        .map(|p| {
            vec![
                p.name.to_string(),
                p.user_name.to_string(),
                p.change.to_string(),
            ]
        })
        .collect();
    let holds: Vec<String> = items.iter().map(|i| i.hold.to_string()).collect();
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
pub(super) fn overage(d: &Digest) -> Content {
    let items: Vec<items::Overage> = items::of(d);
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let first = items.first().cloned().unwrap_or_default();
    let (seats, extra) = (first.seats.0, first.overage_seats.0);
    Content {
        headline: "the agreed overage is in use".into(),
        paragraphs: vec![
            format!(
                "{license} now has more people with a seat than its {seats} seats ({} in use on {}). Your agreement allows up to {extra} more, so nobody was turned away; the seats in use above {seats} are billed at the true-up.",
                first.in_use.0,
                time(d, first.at.as_str())
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
pub(super) fn run_out(d: &Digest) -> Content {
    let license = license_name(d).unwrap_or_else(|| "the license".into());
    let i = items::last::<items::RunOut>(d);
    let date = crate::capacity::parse_day(i.run_out_at.as_str())
        .and_then(|n| time::Date::from_julian_day((n + 2_440_588) as i32).ok())
        .map(|day| format!("{} {}", day.day(), day.month()))
        .unwrap_or_else(|| i.run_out_at.to_string());
    let waiting = i.waiting.0;
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
                i.demand_per_day.to_string(),
                i.in_use.0,
                i.capacity.0,
                i.confidence.to_string()
            ),
            format!(
                "You are told once each time the run-out date comes within {} days.",
                i.horizon_days.0
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
