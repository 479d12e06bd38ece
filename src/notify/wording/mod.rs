//! What each kind of email says, written for its recipient: the customer's licensing admin.
//!
//! People by name and email, their place on the waitlist, times in the tenant's time zone, no
//! internal ids, and one link to the console page that shows the situation with the action
//! there that fixes it (or, without `public_url`, where that page is in the console). The
//! operator's copy ([`Audience::Operator`]) says the same and adds the ids and the admin API and
//! CLI hints. Pure: [`content`] turns a [`Digest`] into [`Content`]; `render` lays it out.

use super::when;
use super::{Audience, Digest, Kind};

mod seats;
mod service;

use seats::*;
use service::*;

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

pub(super) fn count(n: usize, one: &str, many: &str) -> String {
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
pub(super) fn page(d: &Digest, path: &str, place: String, steps: Vec<String>) -> Act {
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
pub(super) fn license_page(d: &Digest, rest: &str, section: &str, steps: Vec<String>) -> Act {
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

pub(super) fn time(d: &Digest, rfc3339: &str) -> String {
    when::format_rfc3339(rfc3339, &d.time_zone)
}

/// The API path of the tenant (operator hints).
pub(super) fn api(d: &Digest, suffix: &str) -> String {
    format!(
        "{}/admin/v1/tenants/{}{suffix}",
        d.public_url.as_deref().unwrap_or("").trim_end_matches('/'),
        d.tenant_id
    )
}

/// A table's headers; the operator's copy adds the column of ids `id_column`.
pub(super) fn columns(d: &Digest, names: &[&str], id_column: &str) -> Vec<String> {
    let mut headers: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    if d.audience == Audience::Operator {
        headers.push(id_column.to_owned());
    }
    headers
}

/// The API path of the digest's license (the tenant's licenses when it is gone).
pub(super) fn license_api(d: &Digest) -> String {
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
        Kind::ProviderFailures => provider_failures(d),
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
