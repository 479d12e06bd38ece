//! Notifications by email.
//!
//! - This module, [`when`], [`wording`], [`render`] and [`combined`] (one email per recipient
//!   for a window's license notices) are pure: the event kinds, who receives
//!   which kind, what a digest holds, what each kind says to its recipient (in the tenant's time
//!   zone, with a link to the console page that shows the situation) and how it becomes an email
//!   (subject, plain-text and HTML parts, CSV attachment, headers).
//! - [`sender`] is the background task that drains the outbox (`store::outbox`) and delivers
//!   through lettre's async SMTP transport, or into the `mail/` folder when no SMTP is set.
//!
//! Events are written to the outbox by the store, in the transaction of the change that caused
//! them; nothing is sent from a request handler.

pub mod combined;
pub mod items;
pub mod render;
pub mod when;
pub mod wording;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a notification is about. The string forms are stable (admin API, stored rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Users became entitled but no seat was free: they wait.
    Blocked,
    /// A license's use crossed 90 % or 100 % of its seats.
    Threshold,
    /// An admin lowered a license's capacity below the seats in use.
    CapacityLowered,
    /// Pending references (selectors, members) waited longer than the tenant's window.
    PendingExpired,
    /// No provider call for longer than the tenant's `expected_sync_seconds`.
    Silence,
    /// Many SCIM requests of the tenant failed within a short time.
    ScimFailures,
    /// Requests with a revoked, expired or wrong token of the tenant.
    AuthFailures,
    /// The reconciler found and repaired seats that disagreed with the rules.
    DriftRepaired,
    /// An admin asked for a test message.
    Test,
    /// The tenant's opt-in weekly summary of its licenses.
    WeeklySummary,
    /// Seats about to be reclaimed for not being used (the license's `reclaim_notice_days`).
    ReclaimNotice,
    /// A webhook endpoint kept failing (or answered 410 Gone) and was disabled.
    WebhookDisabled,
    /// The circuit breaker held directory-made seat losses of a license: an admin decides.
    SeatsHeld,
    /// A license started using its agreed overage (use above the seat count).
    Overage,
    /// The forecast says a license runs out of seats within the tenant's horizon.
    RunOut,
    /// More than the tenant's `idp_failure_warn_percent` of its identity provider's requests
    /// failed over 7 days: heading towards the provider's quarantine.
    ProviderFailures,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Blocked,
        Kind::Threshold,
        Kind::CapacityLowered,
        Kind::PendingExpired,
        Kind::Silence,
        Kind::ScimFailures,
        Kind::AuthFailures,
        Kind::DriftRepaired,
        Kind::Test,
        Kind::WeeklySummary,
        Kind::ReclaimNotice,
        Kind::WebhookDisabled,
        Kind::SeatsHeld,
        Kind::Overage,
        Kind::RunOut,
        Kind::ProviderFailures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blocked => "blocked",
            Kind::Threshold => "threshold",
            Kind::CapacityLowered => "capacity_lowered",
            Kind::PendingExpired => "pending_expired",
            Kind::Silence => "silence",
            Kind::ScimFailures => "scim_failures",
            Kind::AuthFailures => "auth_failures",
            Kind::DriftRepaired => "drift_repaired",
            Kind::Test => "test",
            Kind::WeeklySummary => "weekly_summary",
            Kind::ReclaimNotice => "reclaim_notice",
            Kind::WebhookDisabled => "webhook_disabled",
            Kind::SeatsHeld => "seats_held",
            Kind::Overage => "overage",
            Kind::RunOut => "run_out",
            Kind::ProviderFailures => "provider_failures",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One notification recipient: an address, limited to some kinds or receiving all of them.
///
/// Written as a plain string (`"it@contoso.com"`: every kind) or as an object
/// (`{"email": "it@contoso.com", "kinds": ["blocked", "threshold"]}`), and given back in the
/// same shape, so lists written before kinds existed read as they always did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Recipient {
    All(String),
    Kinds { email: String, kinds: Vec<Kind> },
}

impl Recipient {
    pub fn email(&self) -> &str {
        match self {
            Recipient::All(e) | Recipient::Kinds { email: e, .. } => e,
        }
    }

    /// Whether this recipient receives `kind`. A test message goes to every recipient: it
    /// checks delivery, not a kind.
    pub fn wants(&self, kind: Kind) -> bool {
        match self {
            Recipient::All(_) => true,
            Recipient::Kinds { kinds, .. } => kind == Kind::Test || kinds.contains(&kind),
        }
    }

    /// Parses the console's one-line form: `it@contoso.com` or
    /// `it@contoso.com: blocked threshold`.
    pub fn parse_line(line: &str) -> Result<Recipient, String> {
        match line.split_once(':') {
            None => Ok(Recipient::All(line.trim().to_owned())),
            Some((email, kinds)) => {
                let kinds = kinds
                    .split([',', ' ', '\t'])
                    .filter(|k| !k.is_empty())
                    .map(|k| Kind::parse(k).ok_or_else(|| unknown_kind(k)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Recipient::Kinds {
                    email: email.trim().to_owned(),
                    kinds,
                })
            }
        }
    }
}

impl std::fmt::Display for Recipient {
    /// The console's one-line form (see [`Recipient::parse_line`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipient::All(e) => f.write_str(e),
            Recipient::Kinds { email, kinds } => {
                let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                write!(f, "{email}: {}", kinds.join(" "))
            }
        }
    }
}

fn unknown_kind(k: &str) -> String {
    let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    format!(
        "{k:?} is not a notification kind (one of {})",
        known.join(", ")
    )
}

/// The addresses of `lists` that receive `kind`, each once (compared case-insensitively), in
/// the order first named.
pub fn addresses_for(kind: Kind, lists: &[&[Recipient]]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in lists.iter().flat_map(|l| l.iter()) {
        if r.wants(kind) && !out.iter().any(|e| e.eq_ignore_ascii_case(r.email())) {
            out.push(r.email().to_owned());
        }
    }
    out
}

/// Who an email is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The tenant's licensing admins: plain language, console links, no internal ids.
    Tenant,
    /// The operator's copy (`operator_notify`): the same, plus ids and admin API and CLI hints.
    Operator,
}

/// A license's seat figures at the time a digest is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seats {
    pub id: String,
    pub name: String,
    pub capacity: i64,
    pub granted: i64,
    pub releasing: i64,
    pub blocked: i64,
    /// Whether freed seats go to the waitlist by themselves.
    pub auto_promote: bool,
}

impl Seats {
    pub fn in_use(&self) -> i64 {
        self.granted + self.releasing
    }
}

/// Everything one email is made of, read from the outbox when its digest closes.
#[derive(Debug, Clone)]
pub struct Digest {
    /// The outbox row.
    pub id: i64,
    pub kind: Kind,
    pub audience: Audience,
    pub tenant_name: String,
    pub tenant_id: String,
    /// The license the digest is about (gone if it was deleted since); its name as recorded.
    pub license: Option<Seats>,
    pub license_name: Option<String>,
    /// One JSON object per event, oldest first (each with `at`, RFC 3339).
    pub items: Vec<Value>,
    /// When the first event of the digest happened (ms since the epoch).
    pub first_at: i64,
    /// A random token, unique per digest, for the Message-ID.
    pub token: String,
    /// The daemon's external URL, when configured (for links to the console).
    pub public_url: Option<String>,
    /// The tenant's time zone (an IANA name) for every time the email shows.
    pub time_zone: String,
}

/// Most items listed in an email body (a phone's screen or two; Gmail clips a message past
/// about 102 KB); all of them are in the CSV attachment and on the console page.
pub const BODY_ITEMS: usize = 25;
