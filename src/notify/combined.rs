//! One email per recipient per digest window for the license notices: a sync that blocks
//! people in eight licenses and fills two of them sends each of the tenant's recipients one
//! email, grouped by license inside, not ten.
//!
//! Pure. [`plan`] takes the digests of one window with the addresses each goes to and decides
//! who gets what: an address that receives two or more license notices of a tenant gets them
//! all in one combined email, shared by every address that receives exactly the same notices
//! (so a recipient of one license's notices still gets only that license's); a notice whose
//! address receives nothing else keeps its own email. [`render`] lays a combined email out:
//! the summary and the button first, then a section per license saying what each notice says
//! (`wording::content`), at most [`INLINE`] people per list with the rest in the CSV.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::SystemTime;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use maud::{html, DOCTYPE};

use super::render::{Error, Rendered};
use super::wording::{self, Content};
use super::{Digest, Kind};

/// The kinds about one license that are combined: what one sync can cause in many licenses
/// at once. A hold (`seats_held`) keeps its own email: it asks an admin to decide.
pub const COMBINED: [Kind; 6] = [
    Kind::Blocked,
    Kind::Threshold,
    Kind::CapacityLowered,
    Kind::ReclaimNotice,
    Kind::Overage,
    Kind::RunOut,
];

/// Most people listed inline per notice in a combined email; every one is in its CSV.
pub const INLINE: usize = 25;

/// People listed inline in the whole email: with many notices, each lists fewer (never fewer
/// than three), so that the email stays short to read and under Gmail's clipping size.
const INLINE_TOTAL: usize = 100;

/// Licenses told in full; the summary at the top names every one, the console has the rest.
pub const SECTIONS: usize = 12;

/// How many people each notice lists inline when the email carries `parts` notices.
fn inline(parts: usize) -> usize {
    (INLINE_TOTAL / parts.max(1)).clamp(3, INLINE)
}

/// The notices told in full (those of the first [`SECTIONS`] licenses) and how many licenses
/// are left to the summary.
fn told<'a, 'b>(parts: &'a [Part<'b>]) -> (&'a [Part<'b>], usize) {
    let mut licenses = 0;
    let mut last: Option<String> = None;
    for (i, p) in parts.iter().enumerate() {
        let l = wording::license_name(p.digest).unwrap_or_default();
        if last.as_ref() != Some(&l) {
            licenses += 1;
            if licenses > SECTIONS {
                let all: BTreeSet<String> = parts
                    .iter()
                    .filter_map(|p| wording::license_name(p.digest))
                    .collect();
                return (&parts[..i], all.len() - SECTIONS);
            }
            last = Some(l);
        }
    }
    (parts, 0)
}

/// Who gets what of one window's digests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// For each digest (by its index in the input), the addresses that get it in an email of
    /// its own.
    pub own: Vec<Vec<String>>,
    /// Combined emails: the digests each holds (indexes, in license order) and its addresses.
    pub combined: Vec<(Vec<usize>, Vec<String>)>,
}

/// Decides who gets what: see the module doc. `digests` are one window's closed digests with
/// the addresses each goes to; addresses compare case-insensitively.
pub fn plan(digests: &[(Digest, Vec<String>)]) -> Plan {
    let mut own: Vec<Vec<String>> = vec![Vec::new(); digests.len()];
    // For each tenant and address (folded), the combinable digests it receives, the address
    // as first written and when it was first named (addresses keep that order).
    let mut wants: BTreeMap<(String, String), (usize, String, BTreeSet<usize>)> = BTreeMap::new();
    let mut named = 0;
    for (i, (d, to)) in digests.iter().enumerate() {
        for a in to {
            if COMBINED.contains(&d.kind) && d.license_name.is_some() {
                named += 1;
                wants
                    .entry((d.tenant_id.clone(), a.to_lowercase()))
                    .or_insert_with(|| (named, a.clone(), BTreeSet::new()))
                    .2
                    .insert(i);
            } else {
                own[i].push(a.clone());
            }
        }
    }
    // Addresses receiving the same set share one email.
    let mut wants: Vec<(usize, String, BTreeSet<usize>)> = wants.into_values().collect();
    wants.sort_by_key(|w| w.0);
    let mut groups: BTreeMap<BTreeSet<usize>, Vec<String>> = BTreeMap::new();
    for (_, address, set) in wants {
        groups.entry(set).or_default().push(address);
    }
    let mut combined = Vec::new();
    for (set, addresses) in groups {
        if set.len() == 1 {
            let i = *set.iter().next().unwrap_or(&0);
            own[i].extend(addresses);
            continue;
        }
        let mut parts: Vec<usize> = set.into_iter().collect();
        parts.sort_by_key(|&i| {
            let d = &digests[i].0;
            (
                wording::license_name(d).unwrap_or_default().to_lowercase(),
                COMBINED.iter().position(|k| *k == d.kind),
                d.id,
            )
        });
        combined.push((parts, addresses));
    }
    Plan { own, combined }
}

/// One notice of a combined email, as worded for it.
struct Part<'a> {
    digest: &'a Digest,
    content: Content,
}

/// The subject: the tenant, the license (or how many), and the first notices in a few words.
fn subject(parts: &[Part]) -> String {
    let Some(first) = parts.first() else {
        return "[seatkeeper]".into();
    };
    let licenses: BTreeSet<String> = parts
        .iter()
        .filter_map(|p| wording::license_name(p.digest))
        .collect();
    if licenses.len() == 1 {
        let headlines: Vec<&str> = parts.iter().map(|p| p.content.headline.as_str()).collect();
        let s = format!(
            "[seatkeeper] {} / {}: {}",
            first.digest.tenant_name,
            licenses.iter().next().map_or("", |l| l.as_str()),
            headlines.join("; ")
        );
        return s.chars().filter(|c| !c.is_control()).collect();
    }
    let mut said: Vec<String> = parts
        .iter()
        .take(2)
        .map(|p| {
            format!(
                "{}: {}",
                wording::license_name(p.digest).unwrap_or_default(),
                p.content.headline
            )
        })
        .collect();
    if parts.len() > 2 {
        said.push(format!("{} more", parts.len() - 2));
    }
    let s = format!(
        "[seatkeeper] {}: {} — {}",
        first.digest.tenant_name,
        wording::count(licenses.len(), "license", "licenses"),
        said.join("; ")
    );
    s.chars().filter(|c| !c.is_control()).collect()
}

/// `all 10 seats are in use` as a heading: `All 10 seats are in use`.
fn heading(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The console's licenses of the tenant, when the public URL is known.
fn tenant_url(d: &Digest) -> Option<String> {
    d.public_url.as_deref().map(|base| {
        format!(
            "{}/console/tenants/{}",
            base.trim_end_matches('/'),
            d.tenant_id
        )
    })
}

const SIGNATURE: &str =
    "This message was generated automatically by seatkeeper; replies are not read.";

/// The plain-text part.
fn text_body(parts: &[Part]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{}\n", subject(parts));
    let _ = writeln!(t, "In short:");
    for p in parts {
        let _ = writeln!(
            t,
            "  - {}: {}",
            wording::license_name(p.digest).unwrap_or_default(),
            p.content.headline
        );
    }
    t.push('\n');
    match parts.first().and_then(|p| tenant_url(p.digest)) {
        Some(url) => {
            let _ = writeln!(t, "Open the licenses in the seatkeeper console:\n  {url}\n");
        }
        None => {
            let _ = writeln!(t, "In the seatkeeper console, open Licenses (ask whoever runs seatkeeper for the console's address).\n");
        }
    }
    let rows = inline(parts.len());
    let (told, left) = told(parts);
    let mut last_license = None;
    for p in told {
        let license = wording::license_name(p.digest).unwrap_or_default();
        if last_license.as_ref() != Some(&license) {
            let _ = writeln!(t, "== {license} ==\n");
            if let Some(line) = &p.content.seats {
                let _ = writeln!(t, "{line}\n");
            }
            last_license = Some(license);
        }
        let c = &p.content;
        let _ = writeln!(t, "{}", heading(&c.headline));
        for para in &c.paragraphs {
            let _ = writeln!(t, "{para}\n");
        }
        if let Some(table) = c.table.as_ref().filter(|t| !t.rows.is_empty()) {
            super::render::text_rows(&mut t, table, rows, &csv_name(p.digest));
            t.push('\n');
        }
        match &c.act.url {
            Some(url) => {
                let _ = writeln!(t, "Open {}:\n  {url}", c.act.place);
            }
            None => {
                let _ = writeln!(t, "In the console: {}", c.act.place);
            }
        }
        for step in &c.act.steps {
            let _ = writeln!(t, "  * {step}");
        }
        t.push('\n');
    }
    if left > 0 {
        let _ = writeln!(t, "{}\n", more_licenses(left));
    }
    let _ = writeln!(t, "--\n{SIGNATURE}");
    t
}

/// The HTML part: one column that fits a phone, the summary and the button first, tables of
/// at most [`INLINE`] rows whose cells stack at narrow widths.
fn html_body(parts: &[Part]) -> String {
    const H2: &str =
        "font-size:1.1rem;margin:1.5rem 0 .5rem;border-top:1px solid #ddd;padding-top:1rem";
    const H3: &str = "font-size:1rem;margin:1rem 0 .5rem";
    const BUTTON: &str = "display:inline-block;background:#1d4ed8;color:#ffffff;text-decoration:none;padding:8px 14px;border-radius:4px;font-weight:600";
    let title = subject(parts);
    let url = parts.first().and_then(|p| tenant_url(p.digest));
    let rows = inline(parts.len());
    let (told, left) = told(parts);
    let mut sections: Vec<(String, Vec<&Part>)> = Vec::new();
    for p in told {
        let license = wording::license_name(p.digest).unwrap_or_default();
        match sections.last_mut() {
            Some((l, ps)) if *l == license => ps.push(p),
            _ => sections.push((license, vec![p])),
        }
    }
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
            }
            body style="margin:0;padding:12px;font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1a1a1a;line-height:1.45;background:#ffffff" {
                div style="max-width:640px;margin:0 auto" {
                    h1 style="font-size:1.2rem;margin:0 0 .75rem" { (title) }
                    ul style="margin:0 0 .75rem;padding-left:1.25rem" {
                        @for p in parts {
                            li { strong { (wording::license_name(p.digest).unwrap_or_default()) } ": " (p.content.headline) }
                        }
                    }
                    @match &url {
                        Some(url) => p style="margin:0 0 1rem" { a href=(url) style=(BUTTON) { "Open the licenses" } },
                        None => p style="margin:0 0 1rem" { "In the seatkeeper console, open " strong { "Licenses" } " (ask whoever runs seatkeeper for the console's address)." },
                    }
                    @for (license, ps) in &sections {
                        h2 style=(H2) { (license) }
                        @if let Some(line) = ps.first().and_then(|p| p.content.seats.as_ref()) {
                            p style="background:#f3f4f6;padding:8px 12px;border-radius:4px;margin:0 0 .75rem" { (line) }
                        }
                        @for p in ps {
                            h3 style=(H3) { (heading(&p.content.headline)) }
                            @for para in &p.content.paragraphs { p style="margin:0 0 .75rem" { (para) } }
                            @if let Some(table) = p.content.table.as_ref().filter(|t| !t.rows.is_empty()) {
                                p style="margin:0 0 .25rem;font-weight:600" { (table.title) " (" (table.rows.len()) ")" }
                                (super::render::html_rows(table, rows, &csv_name(p.digest)))
                            }
                            @match &p.content.act.url {
                                Some(u) => p style="margin:.5rem 0" { a href=(u) { "Open " (p.content.act.place) } },
                                None => p style="margin:.5rem 0" { "In the console: " (p.content.act.place) },
                            }
                            @if !p.content.act.steps.is_empty() {
                                ul style="margin:0 0 .75rem;padding-left:1.25rem" { @for s in &p.content.act.steps { li { (s) } } }
                            }
                        }
                    }
                    @if left > 0 { p style="margin:1rem 0" { (more_licenses(left)) } }
                    p style="color:#555;font-size:.85rem;margin-top:1.5rem" { (SIGNATURE) }
                }
            }
        }
    };
    markup.into_string()
}

fn more_licenses(left: usize) -> String {
    format!(
        "{} more {} notices too: the summary at the top names them, and the console shows each one.",
        left,
        if left == 1 { "license has" } else { "licenses have" }
    )
}

/// The CSV attachment's name of one notice.
fn csv_name(d: &Digest) -> String {
    let license: String = wording::license_name(d)
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{}-{}-{}.csv",
        d.kind.as_str().replace('_', "-"),
        license.trim_matches('-'),
        d.id
    )
}

/// Renders the combined email of `digests` (in the order [`plan`] gives) for `to`, dated
/// `date`; `token` makes its Message-ID unique.
pub fn render(
    digests: &[&Digest],
    from: &Mailbox,
    to: &[String],
    date: SystemTime,
    token: &str,
) -> Result<Rendered, Error> {
    let parts: Vec<Part> = digests
        .iter()
        .map(|d| Part {
            digest: d,
            content: wording::content(d),
        })
        .collect();
    let subject = subject(&parts);
    let message_id = format!("<{token}.combined@{}>", from.email.domain());
    let mut b = Message::builder()
        .from(from.clone())
        .subject(subject.clone())
        .date(date)
        .message_id(Some(message_id.clone()))
        .header(super::render::AutoSubmitted)
        .header(super::render::SuppressAutoResponse)
        .header(super::render::EventHeader("combined".into()));
    for r in to {
        b = b.to(r
            .parse::<Mailbox>()
            .map_err(|_| Error::Recipient(r.clone()))?);
    }
    let alternative = MultiPart::alternative_plain_html(text_body(&parts), html_body(&parts));
    let mut body = MultiPart::mixed().multipart(alternative);
    for p in &parts {
        if let Some(table) = p.content.table.as_ref().filter(|t| !t.rows.is_empty()) {
            let csv_type = ContentType::parse("text/csv; charset=utf-8")
                .map_err(|e| Error::Build(e.to_string()))?;
            let attachment: SinglePart = Attachment::new(csv_name(p.digest))
                .body(crate::csv::table(&table.headers, &table.rows), csv_type);
            body = body.singlepart(attachment);
        }
    }
    let message = b.multipart(body).map_err(|e| Error::Build(e.to_string()))?;
    Ok(Rendered {
        subject,
        message_id,
        bytes: message.formatted(),
    })
}

/// The text and HTML parts of a combined email (tests and snapshots).
pub fn bodies(digests: &[&Digest]) -> (String, String) {
    let parts: Vec<Part> = digests
        .iter()
        .map(|d| Part {
            digest: d,
            content: wording::content(d),
        })
        .collect();
    (text_body(&parts), html_body(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{Audience, Seats};
    use serde_json::{json, Value};

    const AT: &str = "2026-10-24T12:00:00.000Z";

    fn digest(id: i64, kind: Kind, license: &str, items: Vec<Value>) -> Digest {
        Digest {
            id,
            kind,
            audience: Audience::Tenant,
            tenant_name: "Contoso".into(),
            tenant_id: "0b6e1c52-tenant".into(),
            license: Some(Seats {
                id: format!("{license}-id"),
                name: license.into(),
                capacity: 10,
                granted: 10,
                releasing: 0,
                blocked: items.len() as i64,
                auto_promote: true,
            }),
            license_name: Some(license.into()),
            items,
            first_at: 0,
            token: format!("tok{id}"),
            public_url: Some("https://seats.vendor.example".into()),
            time_zone: "Europe/Berlin".into(),
        }
    }

    fn waiting(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| {
                json!({"userId": format!("id-{i}"), "userName": format!("person{i}@contoso.com"),
                       "displayName": format!("Person {i}"), "position": i + 1, "state": "blocked", "at": AT})
            })
            .collect()
    }

    fn full() -> Vec<Value> {
        vec![json!({"level": 100, "inUse": 10, "capacity": 10, "at": AT})]
    }

    #[test]
    fn each_address_gets_one_email_with_what_it_receives() {
        let admin = || vec!["it@contoso.com".to_owned(), "Lic@contoso.com".to_owned()];
        let digests = vec![
            (digest(1, Kind::Blocked, "Zendesk", waiting(3)), admin()),
            (digest(2, Kind::Threshold, "Zendesk", full()), admin()),
            // The license's own recipient gets only this license's notice, alone.
            (
                digest(3, Kind::Blocked, "Miro", waiting(1)),
                vec!["it@contoso.com".into(), "miro-owner@contoso.com".into()],
            ),
            // Not combined: a hold asks for a decision.
            (
                digest(4, Kind::SeatsHeld, "Miro", vec![json!({"hold": 1})]),
                vec!["it@contoso.com".into()],
            ),
        ];
        let p = plan(&digests);
        // lic@ receives both Zendesk notices and nothing else: one email for it too; it@
        // receives all three (Miro before Zendesk; waiting before full).
        assert_eq!(
            p.combined,
            vec![
                (vec![0, 1], vec!["Lic@contoso.com".to_owned()]),
                (vec![2, 0, 1], vec!["it@contoso.com".to_owned()])
            ],
        );
        assert_eq!(p.own[2], vec!["miro-owner@contoso.com".to_owned()]);
        assert_eq!(p.own[3], vec!["it@contoso.com".to_owned()]);
        let p2 = plan(&digests[..2]);
        assert_eq!(
            p2.combined,
            vec![(
                vec![0, 1],
                vec!["it@contoso.com".to_owned(), "Lic@contoso.com".to_owned()]
            )]
        );
        assert!(p2.own.iter().all(Vec::is_empty));
    }

    #[test]
    fn a_lone_notice_keeps_its_own_email() {
        let digests = vec![(
            digest(1, Kind::Blocked, "Zendesk", waiting(2)),
            vec!["it@contoso.com".into()],
        )];
        let p = plan(&digests);
        assert!(p.combined.is_empty());
        assert_eq!(p.own, vec![vec!["it@contoso.com".to_owned()]]);
    }

    #[test]
    fn a_combined_email_reads_by_license_and_stays_small_with_ten_thousand_people() {
        let a = digest(1, Kind::Blocked, "Zendesk", waiting(3));
        let b = digest(2, Kind::Threshold, "Zendesk", full());
        let c = digest(3, Kind::Blocked, "Miro", waiting(1));
        let (text, html) = bodies(&[&c, &a, &b]);
        insta::assert_snapshot!("combined_text", text);
        insta::assert_snapshot!("combined_html", html.replace("><", ">\n<"));
        let from: Mailbox = "seatkeeper <noreply@example.com>".parse().unwrap();
        let r = render(
            &[&c, &a, &b],
            &from,
            &["it@contoso.com".into()],
            SystemTime::now(),
            "t0k",
        )
        .unwrap();
        assert_eq!(
            r.subject,
            "[seatkeeper] Contoso: 2 licenses — Miro: 1 person could not get a seat; Zendesk: 3 people could not get a seat; 1 more"
        );
        assert_eq!(r.message_id, "<t0k.combined@example.com>");
        let many = digest(4, Kind::Blocked, "Figma", waiting(10_000));
        let (_, html) = bodies(&[&many, &a]);
        assert!(html.len() < 100_000, "{} bytes", html.len());
        assert!(html.contains("9975 more"), "the rest is counted");
        // Sixty licenses with a thousand people waiting in each: still one readable email.
        let many: Vec<Digest> = (0..60)
            .map(|i| {
                digest(
                    10 + i,
                    Kind::Blocked,
                    &format!("License {i:02}"),
                    waiting(1000),
                )
            })
            .collect();
        let refs: Vec<&Digest> = many.iter().collect();
        let (text, big) = bodies(&refs);
        assert!(big.len() < 100_000, "{} bytes", big.len());
        assert!(text.contains("48 more licenses have notices too"), "{text}");
        assert!(text.contains("  - License 59: 1000 people could not get a seat"));
        let summary = html.find("Open the licenses").unwrap();
        assert!(
            summary < html.find("person0@contoso.com").unwrap(),
            "the button comes first"
        );
    }
}
