//! A digest as an email: subject naming the tenant, the license and the event; a plain-text and
//! an HTML part saying what happened, who is affected (the first [`BODY_ITEMS`]), the current
//! seat numbers and what the admin can do; every item in a CSV attachment; `Date`, `Message-ID`,
//! `Auto-Submitted: auto-generated`. Pure: no I/O.

use std::fmt::Write as _;
use std::time::SystemTime;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::Value;

use super::{Digest, Kind, BODY_ITEMS};

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies, no loops.
#[derive(Debug, Clone)]
struct AutoSubmitted;

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
struct SuppressAutoResponse;

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
struct EventHeader(String);

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

/// What the email says, before it is laid out as text and HTML.
struct Content {
    headline: String,
    summary: Vec<String>,
    actions: Vec<String>,
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn content(d: &Digest) -> Content {
    let n = d.items.len();
    let license = d
        .license
        .as_ref()
        .map(|l| l.name.clone())
        .or_else(|| d.license_name.clone())
        .unwrap_or_else(|| "(deleted license)".into());
    let api = |suffix: &str| {
        format!(
            "{}/admin/v1/tenants/{}{suffix}",
            d.public_url.as_deref().unwrap_or(""),
            d.tenant_id
        )
    };
    let license_api = d
        .license
        .as_ref()
        .map(|l| api(&format!("/licenses/{}", l.id)))
        .unwrap_or_else(|| api("/licenses"));
    match d.kind {
        Kind::Blocked => Content {
            headline: format!("{} blocked for lack of seats", plural(n, "user", "users")),
            summary: vec![format!(
                "{} became entitled to {license} (through a selected group) while no seat was free. \
                 They are on the waitlist, in the order they became entitled, and get a seat when one frees up{}.",
                plural(n, "user", "users"),
                if d.license.is_some() { "" } else { " (the license has since been deleted)" }
            )],
            actions: vec![
                format!("Raise the seat count: PATCH {license_api} with {{\"seats\": N}}, or `seatkeeper license set {} {} --seats N` (`license preview` first shows who would get a seat).", d.tenant_name, license),
                "Change which groups the license selects, so that only the people who need it are entitled.".into(),
                "Pin the users who must keep a seat, or exclude users who should not hold one (PUT .../overrides/{user}).".into(),
                "Grant a seat by hand to a waiting user once one is free (POST .../seats/{user}/grant).".into(),
            ],
        },
        Kind::Threshold => {
            let top = d.items.iter().filter_map(|i| i["level"].as_i64()).max().unwrap_or(90);
            Content {
                headline: if top >= 100 {
                    "all seats in use".into()
                } else {
                    format!("{top}% of seats in use")
                },
                summary: vec![format!(
                    "{license} crossed {}. Once every seat is taken, newly entitled users are blocked and wait.",
                    d.items
                        .iter()
                        .map(|i| format!("{}% at {}", s(i, "level"), s(i, "at")))
                        .collect::<Vec<_>>()
                        .join(", then ")
                )],
                actions: vec![
                    format!("Plan for it: raise the seat count (PATCH {license_api} with {{\"seats\": N}}), or narrow the groups the license selects."),
                    "You are told again only after use has fallen at least 5 points below a threshold and crossed it once more.".into(),
                ],
            }
        }
        Kind::CapacityLowered => Content {
            headline: "capacity lowered below the seats in use".into(),
            summary: vec![format!(
                "The seat count of {license} was lowered below the number of seats in use. Under the policy \
                 `keep` nobody loses a seat: holders keep theirs and newly entitled users wait until use falls \
                 below the new count. Under `block_newest` the most recently granted holders were moved back \
                 to the waitlist."
            )],
            actions: vec![
                format!("If this was a mistake, raise the seat count again: PATCH {license_api} with {{\"seats\": N}}."),
                "To free seats on purpose, exclude users or narrow the selected groups.".into(),
            ],
        },
        Kind::PendingExpired => Content {
            headline: format!("{} expired", plural(n, "pending reference", "pending references")),
            summary: vec![
                "These references named a group or a member the identity provider never sent within the tenant's \
                 pending window, so they were dropped: a license selector no group matched, or a group member \
                 that no user or group matched."
                    .into(),
            ],
            actions: vec![
                "Check the selector's group id, externalId or displayName in the license (a typo, or a group renamed in the directory).".into(),
                "Check that the group and its members are in the provisioning scope of the identity provider (Entra ID: Users and groups of the enterprise app).".into(),
                format!("Change the window: PATCH {} with {{\"pending_window_seconds\": N}}.", api("")),
            ],
        },
        Kind::Silence => Content {
            headline: "no provisioning calls".into(),
            summary: vec![format!(
                "The identity provider has not called seatkeeper's SCIM endpoint for longer than the tenant expects ({}). \
                 Seats follow the directory only while it syncs: people who joined or left since are not reflected.",
                d.items.last().map(|i| format!("last call: {}", match s(i, "lastProviderCall").as_str() { "" => "never".to_owned(), t => t.to_owned() })).unwrap_or_default()
            )],
            actions: vec![
                "Open the provisioning settings of the enterprise app (Entra ID) or the app (Okta): is provisioning on, is the job in quarantine, does Test Connection succeed?".into(),
                "If the secret token expired or was revoked, issue a new one and paste it as the Secret Token.".into(),
                format!("If the provider syncs less often on purpose, raise expected_sync_seconds: PATCH {} .", api("")),
            ],
        },
        Kind::ScimFailures => Content {
            headline: "repeated failing SCIM requests".into(),
            summary: vec![
                "Many provisioning requests from the identity provider failed within a short time. The most common errors are listed below; \
                 failed requests change nothing, so the users and groups they carried are not up to date here."
                    .into(),
            ],
            actions: vec![
                "Look at the provisioning logs of the identity provider for the same errors (Entra ID: Provisioning logs; Okta: System Log).".into(),
                "Attribute-mapping errors (invalidValue, invalidSyntax) are fixed in the provider's attribute mappings; uniqueness errors mean two users share a userName.".into(),
            ],
        },
        Kind::AuthFailures => Content {
            headline: "requests with a revoked or wrong token".into(),
            summary: vec![
                "Requests reached seatkeeper with a token of this tenant that is revoked, expired or wrong. They were refused (401), so nothing they carried was applied."
                    .into(),
            ],
            actions: vec![
                format!("If your provider still uses an old token: issue a new one (POST {}) and paste it as the Secret Token.", api("/tokens")),
                "If you do not recognize the caller, keep the token revoked; the client address is listed.".into(),
            ],
        },
        Kind::DriftRepaired => Content {
            headline: "seats repaired by the reconciler".into(),
            summary: vec![
                "The periodic reconciler recomputed every license from the directory and found seats that disagreed with the rules. It repaired them; the figures are below."
                    .into(),
            ],
            actions: vec![
                "Nothing is needed from you. If this repeats, tell the operator of seatkeeper: it points to a defect.".into(),
            ],
        },
        Kind::Test => Content {
            headline: "test message".into(),
            summary: vec![format!(
                "This is a test message from seatkeeper for the tenant {}. Notifications for this tenant reach this address.",
                d.tenant_name
            )],
            actions: vec!["Nothing: this message only checks delivery.".into()],
        },
    }
}

fn seats_line(d: &Digest) -> Option<String> {
    let l = d.license.as_ref()?;
    Some(format!(
        "Seats of {} now: {} of {} in use ({} granted, {} releasing in their grace period), {} waiting.",
        l.name,
        l.in_use(),
        l.capacity,
        l.granted,
        l.releasing,
        l.blocked
    ))
}

/// The item's columns: the union of keys, in first-seen order.
fn columns(items: &[Value]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for i in items {
        if let Some(o) = i.as_object() {
            for k in o.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    cols
}

fn item_line(kind: Kind, i: &Value, cols: &[String]) -> String {
    match kind {
        Kind::Blocked => {
            let now = s(i, "stateNow");
            format!(
                "{} (id {}), blocked at {}{}",
                s(i, "userName"),
                s(i, "userId"),
                s(i, "at"),
                if now.is_empty() {
                    String::new()
                } else {
                    format!(", now: {now}")
                }
            )
        }
        _ => cols
            .iter()
            .filter(|c| !s(i, c).is_empty())
            .map(|c| format!("{c}: {}", s(i, c)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// One CSV field: quoted when needed; a leading `= + - @` is defused so a spreadsheet never
/// runs a provider-supplied value as a formula.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// Every item as CSV (RFC 4180, CRLF line ends), with a header row.
pub fn csv(items: &[Value]) -> String {
    let cols = columns(items);
    let mut out = cols
        .iter()
        .map(|c| csv_field(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for i in items {
        out.push_str(
            &cols
                .iter()
                .map(|c| csv_field(&s(i, c)))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The subject: `[seatkeeper] <tenant> / <license>: <what happened>`.
pub fn subject(d: &Digest) -> String {
    let c = content(d);
    let license = d
        .license
        .as_ref()
        .map(|l| l.name.clone())
        .or_else(|| d.license_name.clone());
    let subject = match license {
        Some(l) => format!("[seatkeeper] {} / {l}: {}", d.tenant_name, c.headline),
        None => format!("[seatkeeper] {}: {}", d.tenant_name, c.headline),
    };
    subject.chars().filter(|c| !c.is_control()).collect()
}

fn text_body(d: &Digest, c: &Content) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{}\n", subject(d));
    for p in &c.summary {
        let _ = writeln!(t, "{p}\n");
    }
    if let Some(line) = seats_line(d) {
        let _ = writeln!(t, "{line}\n");
    }
    if !d.items.is_empty() {
        let cols = columns(&d.items);
        let _ = writeln!(t, "Affected ({}):", d.items.len());
        for i in d.items.iter().take(BODY_ITEMS) {
            let _ = writeln!(t, "  - {}", item_line(d.kind, i, &cols));
        }
        if d.items.len() > BODY_ITEMS {
            let _ = writeln!(
                t,
                "  ... and {} more: every one is in the attached CSV.",
                d.items.len() - BODY_ITEMS
            );
        }
        t.push('\n');
    }
    let _ = writeln!(t, "What you can do:");
    for a in &c.actions {
        let _ = writeln!(t, "  * {a}");
    }
    let _ = writeln!(
        t,
        "\n--\nseatkeeper, for the tenant {} ({}). This message was generated automatically; replies are not read.",
        d.tenant_name, d.tenant_id
    );
    t
}

fn html_body(d: &Digest, c: &Content) -> String {
    let mut h = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title></title></head>\
         <body style=\"font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1a1a1a;line-height:1.45;max-width:48rem\">",
    );
    let _ = write!(
        h,
        "<h1 style=\"font-size:1.25rem\">{}</h1>",
        html_escape(&subject(d))
    );
    for p in &c.summary {
        let _ = write!(h, "<p>{}</p>", html_escape(p));
    }
    if let Some(line) = seats_line(d) {
        let _ = write!(
            h,
            "<p style=\"background:#f3f4f6;padding:.5rem .75rem;border-radius:4px\"><strong>{}</strong></p>",
            html_escape(&line)
        );
    }
    if !d.items.is_empty() {
        let cols = columns(&d.items);
        let _ = write!(
            h,
            "<h2 style=\"font-size:1.05rem\">Affected ({})</h2><table style=\"border-collapse:collapse\" cellpadding=\"4\"><thead><tr>",
            d.items.len()
        );
        for col in &cols {
            let _ = write!(
                h,
                "<th scope=\"col\" style=\"text-align:left;border-bottom:1px solid #999\">{}</th>",
                html_escape(col)
            );
        }
        h.push_str("</tr></thead><tbody>");
        for i in d.items.iter().take(BODY_ITEMS) {
            h.push_str("<tr>");
            for col in &cols {
                let _ = write!(
                    h,
                    "<td style=\"border-bottom:1px solid #ddd\">{}</td>",
                    html_escape(&s(i, col))
                );
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>");
        if d.items.len() > BODY_ITEMS {
            let _ = write!(
                h,
                "<p>... and {} more: every one is in the attached CSV.</p>",
                d.items.len() - BODY_ITEMS
            );
        }
    }
    h.push_str("<h2 style=\"font-size:1.05rem\">What you can do</h2><ul>");
    for a in &c.actions {
        let _ = write!(h, "<li>{}</li>", html_escape(a));
    }
    let _ = write!(
        h,
        "</ul><p style=\"color:#555;font-size:.85rem\">seatkeeper, for the tenant {} ({}). This message was generated automatically; replies are not read.</p></body></html>",
        html_escape(&d.tenant_name),
        html_escape(&d.tenant_id)
    );
    h
}

/// The Message-ID of a digest: unique, stable across retries, in the sender's domain.
pub fn message_id(d: &Digest, from: &Mailbox) -> String {
    format!("<{}.{}@{}>", d.token, d.id, from.email.domain())
}

/// Renders a digest for `to`, dated `date`.
pub fn render(
    d: &Digest,
    from: &Mailbox,
    to: &[String],
    date: SystemTime,
) -> Result<Rendered, Error> {
    let c = content(d);
    let subject = subject(d);
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
    let body = if d.items.is_empty() {
        alternative
    } else {
        let name = format!(
            "{}-{}-{}.csv",
            d.kind.as_str(),
            d.license
                .as_ref()
                .map(|l| l.id.as_str())
                .unwrap_or("tenant"),
            d.id
        );
        let csv_type = ContentType::parse("text/csv; charset=utf-8")
            .map_err(|e| Error::Build(e.to_string()))?;
        let attachment: SinglePart = Attachment::new(name).body(csv(&d.items), csv_type);
        MultiPart::mixed()
            .multipart(alternative)
            .singlepart(attachment)
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
    use crate::notify::Seats;
    use serde_json::json;

    fn digest(kind: Kind, items: Vec<Value>) -> Digest {
        Digest {
            id: 7,
            kind,
            tenant_name: "Contoso".into(),
            tenant_id: "t-1".into(),
            license: Some(Seats {
                id: "l-1".into(),
                name: "MindManager".into(),
                capacity: 10,
                granted: 9,
                releasing: 1,
                blocked: 3,
            }),
            license_name: Some("MindManager".into()),
            items,
            first_at: 0,
            token: "abc".into(),
            public_url: None,
        }
    }

    fn from() -> Mailbox {
        "seatkeeper <noreply@example.com>".parse().unwrap()
    }

    #[test]
    fn a_blocked_digest_names_tenant_license_event_and_lists_users() {
        let items: Vec<Value> = (0..250)
            .map(|i| json!({"userName": format!("u{i}@contoso.com"), "userId": format!("id{i}"), "at": "2026-11-22T10:00:00.000Z", "stateNow": "blocked"}))
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
            "[seatkeeper] Contoso / MindManager: 250 users blocked for lack of seats"
        );
        let text = String::from_utf8_lossy(&r.bytes);
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("Message-ID: <abc.7@example.com>"));
        assert!(text.contains("Date: "));
        assert!(text.contains("text/html"));
        assert!(text.contains("text/csv"));
        let body = text_body(&d, &content(&d));
        assert!(body.contains("u199@contoso.com"));
        assert!(!body.contains("u200@contoso.com"));
        assert!(body.contains("50 more"));
        assert!(body.contains("10 of 10 in use (9 granted, 1 releasing"));
        assert!(body.contains("Raise the seat count"));
        assert_eq!(csv(&d.items).lines().count(), 251);
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let items = vec![json!({"userName": "=HYPERLINK(\"x\")", "note": "a,b"})];
        assert_eq!(
            csv(&items),
            "userName,note\r\n\"'=HYPERLINK(\"\"x\"\")\",\"a,b\"\r\n"
        );
    }

    #[test]
    fn html_is_escaped_and_bad_recipients_are_refused() {
        let d = digest(
            Kind::Blocked,
            vec![json!({"userName": "<script>x</script>", "userId": "1"})],
        );
        let h = html_body(&d, &content(&d));
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;"));
        assert!(render(&d, &from(), &["not an address".into()], SystemTime::now()).is_err());
    }

    #[test]
    fn every_kind_renders() {
        for k in Kind::ALL {
            let d = digest(
                k,
                vec![json!({"at": "2026-11-22T10:00:00.000Z", "level": 90})],
            );
            let r = render(&d, &from(), &["a@example.com".into()], SystemTime::now()).unwrap();
            assert!(r.subject.starts_with("[seatkeeper] Contoso"), "{k:?}");
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }
}
