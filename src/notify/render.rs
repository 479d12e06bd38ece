//! A digest as an email: the subject naming the tenant, the license and what happened; a
//! plain-text and an HTML part (maud, inline styles, one column, no images) saying what
//! [`wording`] wrote: what happened, who is concerned (the first [`BODY_ITEMS`]), the seats now
//! and where to act; the whole list as a CSV attachment; `Date`, `Message-ID`,
//! `Auto-Submitted: auto-generated`. Pure: no I/O.

use std::fmt::Write as _;
use std::time::SystemTime;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use maud::{html, DOCTYPE};

use super::wording::{self, Content};
use super::{Audience, Digest, BODY_ITEMS};

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies, no loops.
#[derive(Debug, Clone)]
pub(super) struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// Exchange's equivalent of Auto-Submitted.
#[derive(Debug, Clone)]
pub(super) struct SuppressAutoResponse;

impl Header for SuppressAutoResponse {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Auto-Response-Suppress")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(SuppressAutoResponse)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "All".into())
    }
}

/// The event kind, for filtering rules in the recipients' mail clients.
#[derive(Debug, Clone)]
pub(super) struct EventHeader(pub(super) String);

impl Header for EventHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Seatkeeper-Event")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(EventHeader(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a valid recipient address")]
    Recipient(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// A rendered email.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub message_id: String,
    /// The whole RFC 5322 message, as it is sent.
    pub bytes: Vec<u8>,
}

/// The subject: `[seatkeeper] <tenant> / <license>: <what happened>`; the operator's copy
/// says it is one.
pub fn subject(d: &Digest) -> String {
    subject_of(d, &wording::content(d))
}

fn subject_of(d: &Digest, c: &Content) -> String {
    let mut subject = match wording::license_name(d) {
        Some(l) => format!("[seatkeeper] {} / {l}: {}", d.tenant_name, c.headline),
        None => format!("[seatkeeper] {}: {}", d.tenant_name, c.headline),
    };
    if d.audience == Audience::Operator {
        subject.push_str(" (operator copy)");
    }
    subject.chars().filter(|c| !c.is_control()).collect()
}

const SIGNATURE: &str =
    "This message was generated automatically by seatkeeper; replies are not read.";

/// The plain-text part: says what the HTML part says.
pub fn text_body(d: &Digest, c: &Content) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{}\n", subject_of(d, c));
    for p in &c.paragraphs {
        let _ = writeln!(t, "{p}\n");
    }
    if let Some(line) = &c.seats {
        let _ = writeln!(t, "{line}\n");
    }
    let _ = writeln!(t, "What you can do");
    match &c.act.url {
        Some(url) => {
            let _ = writeln!(
                t,
                "Open {} in the seatkeeper console:\n  {url}",
                c.act.place
            );
        }
        None => {
            let _ = writeln!(
                t,
                "In the seatkeeper console, open {} (ask whoever runs seatkeeper for the console's address).",
                c.act.place
            );
        }
    }
    for step in &c.act.steps {
        let _ = writeln!(t, "  * {step}");
    }
    if let Some(table) = c.table.as_ref().filter(|t| !t.rows.is_empty()) {
        t.push('\n');
        text_rows(&mut t, table, BODY_ITEMS, "spreadsheet (CSV)");
        t.push('\n');
    }
    if !c.operator.is_empty() {
        let _ = writeln!(t, "\nFor the operator");
        for hint in &c.operator {
            let _ = writeln!(t, "  * {hint}");
        }
    }
    let _ = writeln!(t, "\n--\n{SIGNATURE}");
    t
}

/// The first `limit` rows of `table` as text lines (`Header: value · ...`), and how many more
/// are in `attachment`.
pub(super) fn text_rows(t: &mut String, table: &wording::Table, limit: usize, attachment: &str) {
    let _ = writeln!(t, "{} ({}):", table.title, table.rows.len());
    for row in table.rows.iter().take(limit) {
        let cells: Vec<String> = table
            .headers
            .iter()
            .zip(row)
            .filter(|(_, v)| !v.is_empty() && *v != "—")
            .map(|(h, v)| format!("{h}: {v}"))
            .collect();
        let _ = writeln!(t, "  - {}", cells.join(" · "));
    }
    if table.rows.len() > limit {
        let _ = writeln!(
            t,
            "  ... and {} more: every one is in the attached {attachment} and on the console page.",
            table.rows.len() - limit
        );
    }
}

/// The first `limit` rows of `table` as HTML: one block per row, its cells one after another,
/// so that nothing runs off a phone's screen; and how many more are in `attachment`.
pub(super) fn html_rows(table: &wording::Table, limit: usize, attachment: &str) -> maud::Markup {
    html! {
        @for row in table.rows.iter().take(limit) {
            div style="border-bottom:1px solid #e5e7eb;padding:6px 0;font-size:.9rem" {
                @for (i, (h, cell)) in table.headers.iter().zip(row).filter(|(_, v)| !v.is_empty() && *v != "—").enumerate() {
                    @if i == 0 { strong { (h) ": " (cell) } } @else { span style="color:#555" { " · " (h) ": " (cell) } }
                }
            }
        }
        @if table.rows.len() > limit {
            p style="margin:.5rem 0" { "... and " (table.rows.len() - limit) " more: every one is in the attached " (attachment) " and on the console page." }
        }
    }
}

/// The HTML part: one column, inline styles, no images; maud escapes every value.
pub fn html_body(d: &Digest, c: &Content) -> String {
    const H2: &str = "font-size:1.05rem;margin:1.25rem 0 .5rem";
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (subject_of(d, c)) }
            }
            body style="margin:0;padding:16px;font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1a1a1a;line-height:1.45;background:#ffffff" {
                div style="max-width:640px;margin:0 auto" {
                    h1 style="font-size:1.25rem;margin:0 0 1rem" { (subject_of(d, c)) }
                    @for p in &c.paragraphs { p style="margin:0 0 .75rem" { (p) } }
                    @if let Some(line) = &c.seats {
                        p style="background:#f3f4f6;padding:8px 12px;border-radius:4px;margin:0 0 .75rem" { strong { (line) } }
                    }
                    h2 style=(H2) { "What you can do" }
                    @match &c.act.url {
                        Some(url) => {
                            p style="margin:0 0 .75rem" {
                                a href=(url) style="display:inline-block;background:#1d4ed8;color:#ffffff;text-decoration:none;padding:8px 14px;border-radius:4px;font-weight:600" {
                                    "Open " (c.act.place)
                                }
                            }
                        }
                        None => {
                            p style="margin:0 0 .75rem" {
                                "In the seatkeeper console, open " strong { (c.act.place) } " (ask whoever runs seatkeeper for the console's address)."
                            }
                        }
                    }
                    ul style="margin:0 0 .75rem;padding-left:1.25rem" { @for step in &c.act.steps { li { (step) } } }
                    @if let Some(table) = c.table.as_ref().filter(|t| !t.rows.is_empty()) {
                        h2 style=(H2) { (table.title) " (" (table.rows.len()) ")" }
                        (html_rows(table, BODY_ITEMS, "spreadsheet (CSV)"))
                    }
                    @if !c.operator.is_empty() {
                        h2 style=(H2) { "For the operator" }
                        ul style="margin:0 0 .75rem;padding-left:1.25rem;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem" {
                            @for hint in &c.operator { li { (hint) } }
                        }
                    }
                    p style="color:#555;font-size:.85rem;margin-top:1.5rem" { (SIGNATURE) }
                }
            }
        }
    };
    markup.into_string()
}

/// The Message-ID of a digest: unique, stable across retries, in the sender's domain.
pub fn message_id(d: &Digest, from: &Mailbox) -> String {
    let copy = if d.audience == Audience::Operator {
        ".operator"
    } else {
        ""
    };
    format!("<{}.{}{copy}@{}>", d.token, d.id, from.email.domain())
}

/// Renders a digest for `to`, dated `date`.
pub fn render(
    d: &Digest,
    from: &Mailbox,
    to: &[String],
    date: SystemTime,
) -> Result<Rendered, Error> {
    let c = wording::content(d);
    let subject = subject_of(d, &c);
    let message_id = message_id(d, from);
    let mut b = Message::builder()
        .from(from.clone())
        .subject(subject.clone())
        .date(date)
        .message_id(Some(message_id.clone()))
        .header(AutoSubmitted)
        .header(SuppressAutoResponse)
        .header(EventHeader(d.kind.as_str().into()));
    for r in to {
        b = b.to(r
            .parse::<Mailbox>()
            .map_err(|_| Error::Recipient(r.clone()))?);
    }
    let alternative = MultiPart::alternative_plain_html(text_body(d, &c), html_body(d, &c));
    let table = c.table.as_ref().filter(|t| !t.rows.is_empty());
    let body = if let Some(table) = table {
        let name = format!("{}-{}.csv", d.kind.as_str().replace('_', "-"), d.id);
        let csv_type = ContentType::parse("text/csv; charset=utf-8")
            .map_err(|e| Error::Build(e.to_string()))?;
        let attachment: SinglePart =
            Attachment::new(name).body(crate::csv::table(&table.headers, &table.rows), csv_type);
        MultiPart::mixed()
            .multipart(alternative)
            .singlepart(attachment)
    } else {
        alternative
    };
    let message = b.multipart(body).map_err(|e| Error::Build(e.to_string()))?;
    Ok(Rendered {
        subject,
        message_id,
        bytes: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{Kind, Seats};
    use serde_json::{json, Value};

    const AT: &str = "2026-10-24T12:00:00.000Z";

    fn digest(kind: Kind, items: Vec<Value>) -> Digest {
        Digest {
            id: 7,
            kind,
            audience: Audience::Tenant,
            tenant_name: "Contoso".into(),
            tenant_id: "0b6e1c52-tenant".into(),
            license: Some(Seats {
                id: "5d1f-license".into(),
                name: "MindManager".into(),
                capacity: 10,
                granted: 9,
                releasing: 1,
                blocked: 3,
                auto_promote: true,
            }),
            license_name: Some("MindManager".into()),
            items,
            first_at: 0,
            token: "abc".into(),
            public_url: Some("https://seats.vendor.example".into()),
            time_zone: "Europe/Berlin".into(),
        }
    }

    fn from() -> Mailbox {
        "seatkeeper <noreply@example.com>".parse().unwrap()
    }

    fn person(i: usize, state: &str, position: Option<usize>) -> Value {
        json!({"userId": format!("id-{i}"), "userName": format!("u{i}@contoso.com"),
               "displayName": if i.is_multiple_of(2) { json!(format!("Person {i}")) } else { Value::Null },
               "email": if i.is_multiple_of(3) { json!(format!("person{i}@mail.contoso.com")) } else { Value::Null },
               "group": if i.is_multiple_of(4) { "Sales" } else { "Designers" },
               "position": position, "state": state, "at": AT})
    }

    /// One realistic digest of each kind.
    fn sample(kind: Kind) -> Digest {
        let mut d = match kind {
            Kind::Blocked => digest(
                kind,
                vec![
                    person(0, "blocked", Some(1)),
                    person(1, "blocked", Some(2)),
                    person(2, "granted", None),
                    person(3, "none", None),
                ],
            ),
            Kind::Threshold => digest(
                kind,
                vec![
                    json!({"level": 90, "inUse": 9, "capacity": 10, "at": AT}),
                    json!({"level": 100, "inUse": 10, "capacity": 10, "at": "2026-10-26T09:30:00.000Z"}),
                ],
            ),
            Kind::CapacityLowered => digest(
                kind,
                vec![json!({"from": 12, "to": 8, "inUse": 10, "policy": "keep", "at": AT})],
            ),
            Kind::PendingExpired => digest(
                kind,
                vec![
                    json!({"reference": "license selector", "license": "MindManager", "displayName": "Desginers", "at": AT}),
                    json!({"reference": "group member", "group": "g-1", "groupName": "Designers", "member": "8f2c-unknown", "at": AT}),
                ],
            ),
            Kind::Silence => digest(
                kind,
                vec![
                    json!({"lastProviderCall": "2026-10-24T08:00:00.000Z", "expectedSyncSeconds": 7200, "silentForSeconds": 14_700, "at": AT}),
                ],
            ),
            Kind::ScimFailures => digest(
                kind,
                vec![json!({"failedRequests": 25, "withinSeconds": 600,
                    "mostCommonErrors": "20 × 409 uniqueness on POST /scim/v2/Users; 5 × 400 invalidValue on PATCH /scim/v2/Users/{id}", "at": AT})],
            ),
            Kind::AuthFailures => digest(
                kind,
                vec![
                    json!({"tokenId": "tok-1", "reason": "revoked", "client": "203.0.113.9", "requests": 42,
                    "tokenIssued": "2026-09-01T10:00:00Z", "at": AT}),
                ],
            ),
            Kind::DriftRepaired => digest(
                kind,
                vec![
                    json!({"granted": 1, "blocked": 0, "releasing": 0, "released": 2, "promoted": 0, "repaired": 3, "by": "reconciler", "at": AT}),
                ],
            ),
            Kind::Test => digest(kind, vec![json!({"to": ["it@contoso.com"], "at": AT})]),
            Kind::ReclaimNotice => digest(
                kind,
                vec![
                    json!({"userId": "id-7", "userName": "u7@contoso.com", "lastUsed": "2026-09-01T08:00:00.000Z", "reclaimAt": "2026-10-31T08:00:00.000Z", "at": AT}),
                    json!({"userId": "id-8", "userName": "u8@contoso.com", "lastUsed": null, "reclaimAt": "2026-10-27T09:00:00.000Z", "at": AT}),
                ],
            ),
            Kind::WebhookDisabled => digest(
                kind,
                vec![
                    json!({"webhookId": "8c1e-webhook", "url": "https://product.example.com/hooks/seats",
                    "reason": "failing for 5 days (last error: HTTP 503)", "at": AT}),
                ],
            ),
            Kind::Overage => digest(
                kind,
                vec![json!({"seats": 10, "overageSeats": 2, "inUse": 11, "at": AT})],
            ),
            Kind::ProviderFailures => digest(
                kind,
                vec![
                    json!({"requests": 2400, "failures": 372, "failurePercent": 15, "warnPercent": 10, "days": 7,
                    "top": [
                        {"count": 300, "request": "PATCH /scim/v2/Groups/{id}", "status": "400 invalidValue",
                         "cause": "A group PATCH named a member seatkeeper cannot use: provision the member first."},
                        {"count": 72, "request": "POST /scim/v2/Users", "status": "409 uniqueness",
                         "cause": "The provider tried to create a user whose userName seatkeeper already has."}
                    ], "at": AT}),
                ],
            ),
            Kind::RunOut => digest(
                kind,
                vec![
                    json!({"runOutAt": "2026-12-12", "demandPerDay": 1.5, "inUse": 10, "capacity": 10, "waiting": 3,
                    "confidence": "high", "horizonDays": 14, "at": AT}),
                ],
            ),
            Kind::SeatsHeld => digest(
                kind,
                vec![
                    json!({"hold": 17, "state": "open", "held": 80, "total": 80, "percent": 20, "minSeats": 10, "windowMinutes": 60,
                    "changes": [{"change": "removed from the group Designers", "count": 79}, {"change": "deactivated in the directory", "count": 1}],
                    "people": [
                        {"name": "Dana Designer", "userName": "dana@contoso.com", "change": "removed from the group Designers"},
                        {"name": "Eli Engineer", "userName": "eli@contoso.com", "change": "deactivated in the directory"}
                    ], "decidedBy": null, "at": AT}),
                ],
            ),
            Kind::WeeklySummary => digest(
                kind,
                vec![
                    json!({"from": 1_792_476_000_000_i64, "to": 1_793_084_400_000_i64, "pending": 1,
                    "licenses": [
                        {"id": "5d1f-license", "name": "MindManager", "seats": 10, "inUse": 10, "waiting": 3, "granted": 4, "released": 1},
                        {"id": "77aa-license", "name": "MindManager Viewer", "seats": 100, "inUse": 12, "waiting": 0, "granted": 0, "released": 0}
                    ], "at": AT}),
                ],
            ),
        };
        if matches!(
            kind,
            Kind::PendingExpired
                | Kind::Silence
                | Kind::ScimFailures
                | Kind::AuthFailures
                | Kind::DriftRepaired
                | Kind::Test
                | Kind::WeeklySummary
                | Kind::WebhookDisabled
                | Kind::ProviderFailures
        ) {
            d.license = None;
            d.license_name = None;
        }
        d
    }

    /// The HTML with one element per line, for a reviewable snapshot.
    fn lines(html: &str) -> String {
        html.replace("><", ">\n<")
    }

    #[test]
    fn every_kind_reads_as_its_recipient_sees_it() {
        for kind in Kind::ALL {
            let d = sample(kind);
            let c = wording::content(&d);
            insta::assert_snapshot!(format!("{}_text", kind.as_str()), text_body(&d, &c));
            insta::assert_snapshot!(format!("{}_html", kind.as_str()), lines(&html_body(&d, &c)));
            let r = render(&d, &from(), &["a@example.com".into()], SystemTime::now()).unwrap();
            assert!(r.subject.starts_with("[seatkeeper] Contoso"), "{kind:?}");
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            // Nothing internal reaches the tenant's recipients: no ids, no API paths, no CLI.
            // (Links carry ids in their paths; the words around them do not.)
            let text: String = text_body(&d, &c)
                .lines()
                .filter(|l| !l.trim_start().starts_with("https://"))
                .collect::<Vec<_>>()
                .join("\n");
            for internal in [
                "id-0",
                "5d1f-license",
                "tok-1",
                "g-1\n",
                "/admin/v1",
                "seatkeeper license",
                "T12:00:00",
            ] {
                assert!(
                    !text.contains(internal),
                    "{kind:?} shows {internal:?}:\n{text}"
                );
            }
        }
    }

    #[test]
    fn the_operator_copy_adds_ids_and_api_and_cli_hints() {
        for kind in [Kind::Blocked, Kind::AuthFailures, Kind::WeeklySummary] {
            let mut d = sample(kind);
            d.audience = Audience::Operator;
            let c = wording::content(&d);
            insta::assert_snapshot!(
                format!("{}_operator_text", kind.as_str()),
                text_body(&d, &c)
            );
        }
        let mut d = sample(Kind::Blocked);
        d.audience = Audience::Operator;
        let r = render(
            &d,
            &from(),
            &["ops@vendor.example".into()],
            SystemTime::now(),
        )
        .unwrap();
        assert!(r.subject.ends_with("(operator copy)"));
        assert_eq!(r.message_id, "<abc.7.operator@example.com>");
    }

    #[test]
    fn without_a_public_url_the_email_says_where_the_page_is() {
        let mut d = sample(Kind::Blocked);
        d.public_url = None;
        let text = text_body(&d, &wording::content(&d));
        assert!(!text.contains("http"), "{text}");
        insta::assert_snapshot!("blocked_without_public_url_text", text);
    }

    #[test]
    fn a_long_list_shows_its_first_items_and_attaches_every_one() {
        let items: Vec<Value> = (0..250)
            .map(|i| person(i, "blocked", Some(i + 1)))
            .collect();
        let d = digest(Kind::Blocked, items);
        let r = render(
            &d,
            &from(),
            &["admin@contoso.com".into()],
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(
            r.subject,
            "[seatkeeper] Contoso / MindManager: 250 people could not get a seat"
        );
        let text = String::from_utf8_lossy(&r.bytes);
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("Message-ID: <abc.7@example.com>"));
        assert!(text.contains("Date: "));
        assert!(text.contains("text/html"));
        assert!(text.contains("text/csv"));
        let c = wording::content(&d);
        let body = text_body(&d, &c);
        assert!(body.contains("u23@contoso.com"));
        assert!(!body.contains("u25@contoso.com"));
        assert!(body.contains("225 more"));
        // The button comes before the list.
        let html = html_body(&d, &c);
        assert!(html.find("Open Licenses").unwrap() < html.find("u1@contoso.com").unwrap());
        let table = c.table.unwrap();
        assert_eq!(
            crate::csv::table(&table.headers, &table.rows)
                .lines()
                .count(),
            251
        );
    }

    #[test]
    fn ten_thousand_people_make_an_email_gmail_does_not_clip() {
        let items: Vec<Value> = (0..10_000)
            .map(|i| person(i, "blocked", Some(i + 1)))
            .collect();
        let d = digest(Kind::Blocked, items);
        let c = wording::content(&d);
        let html = html_body(&d, &c);
        assert!(html.len() < 100_000, "{} bytes", html.len());
        assert!(html.contains("9975 more"), "the rest is counted");
        assert!(text_body(&d, &c).len() < 100_000);
    }

    #[test]
    fn html_is_escaped_and_bad_recipients_are_refused() {
        let mut p = person(0, "blocked", Some(1));
        p["displayName"] = json!("<script>x</script>");
        let d = digest(Kind::Blocked, vec![p]);
        let h = html_body(&d, &wording::content(&d));
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;"));
        assert!(render(&d, &from(), &["not an address".into()], SystemTime::now()).is_err());
    }
}
