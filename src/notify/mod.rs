//! Failure notifications by email.
//!
//! - This module and [`render`] are pure: the event kinds, what a digest holds, and how it
//!   becomes an email (subject, plain-text and HTML parts, CSV attachment, headers).
//! - [`sender`] is the background task that drains the outbox (`store::outbox`) and delivers
//!   through lettre's async SMTP transport, or into the `mail/` folder when no SMTP is set.
//!
//! Events are written to the outbox by the store, in the transaction of the change that caused
//! them; nothing is sent from a request handler.

pub mod render;
pub mod sender;

use serde::Serialize;
use serde_json::Value;

/// What a notification is about. The string forms are stable (admin API, stored rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Blocked,
        Kind::Threshold,
        Kind::CapacityLowered,
        Kind::PendingExpired,
        Kind::Silence,
        Kind::ScimFailures,
        Kind::AuthFailures,
        Kind::DriftRepaired,
        Kind::Test,
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
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
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
    /// The daemon's external URL, when configured (for links to the admin API).
    pub public_url: Option<String>,
}

/// Most items listed in an email body; all of them are in the CSV attachment.
pub const BODY_ITEMS: usize = 200;
