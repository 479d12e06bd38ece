//! The items of each kind of digest: the same structs written by the store into the outbox
//! (JSON with camelCase keys, empty fields left out; the admin API shows them as stored) and
//! read by the wording, so a renamed field fails to compile rather than rendering empty; each
//! struct names its kind ([`Item::KIND`]). Reading is lenient, as an email must still go out: a missing field is empty
//! (or 0), a number where text is expected is its decimal form, and an item of an older
//! release without a newer field reads like one where it is empty.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{Digest, Kind};

/// A digest item of one kind, as written and read.
pub trait Item: Serialize {
    const KIND: Kind;
}

/// `item` as stored: its fields without the empty ones (text `""`, `null`), which read back as
/// empty.
pub fn stored<T: Item>(item: &T) -> Value {
    let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !(x.is_null() || x.as_str() == Some("")));
    }
    v
}

/// A text field: a string, or any other JSON value as written (`null` or missing: empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.to_owned())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(s)
    }
}

impl From<Option<String>> for Text {
    fn from(s: Option<String>) -> Self {
        Text(s.unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match Value::deserialize(d)? {
            Value::Null => String::new(),
            Value::String(s) => s,
            other => other.to_string(),
        }))
    }
}

/// A count: a whole number (anything else: 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Num(pub i64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A real number, shown as JSON writes it (a rate: `1.5`, `2.0`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Real(pub f64);

impl Serialize for Real {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Real {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Real(Value::deserialize(d)?.as_f64().unwrap_or(0.0)))
    }
}

impl std::fmt::Display for Real {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::Number::from_f64(self.0) {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("0"),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Num(Value::deserialize(d)?.as_i64().unwrap_or(0)))
    }
}

/// The items of `d` as `T` (an item that is not even an object reads as `T::default()`).
pub fn of<T: DeserializeOwned + Default>(d: &Digest) -> Vec<T> {
    d.items
        .iter()
        .map(|i| T::deserialize(i).unwrap_or_default())
        .collect()
}

/// The last item of `d` as `T` (the latest state of a one-item kind), or `T::default()`.
pub fn last<T: DeserializeOwned + Default>(d: &Digest) -> T {
    d.items
        .last()
        .map(|i| T::deserialize(i).unwrap_or_default())
        .unwrap_or_default()
}

/// `blocked`: a person who became entitled while no seat was free, and where they are now.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Blocked {
    pub user_id: Text,
    pub user_name: Text,
    pub display_name: Text,
    pub email: Text,
    /// Their place on the waitlist now, while they wait.
    pub position: Option<i64>,
    /// Their seat's state now: blocked, granted, releasing, or none.
    pub state: Text,
    /// The selected group that entitles them (its display name), when one does.
    pub group: Text,
    pub at: Text,
}

/// `threshold`: use crossed a level (90 or 100 %).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Threshold {
    pub level: Num,
    pub in_use: Num,
    pub capacity: Num,
    pub at: Text,
}

/// `capacity_lowered`: an admin lowered the seat count below the seats in use.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CapacityLowered {
    pub from: Num,
    pub to: Num,
    pub in_use: Num,
    pub policy: Text,
    pub at: Text,
}

/// `pending_expired`: a selector or a member that waited longer than the pending window.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PendingExpired {
    /// `license selector` or `group member`.
    pub reference: Text,
    pub license: Text,
    /// How a selector named its group: one of these is set.
    pub display_name: Option<Text>,
    pub external_id: Option<Text>,
    pub id: Option<Text>,
    pub group_name: Text,
    /// The group a pending member waits in (its id).
    pub group: Text,
    pub member: Text,
}

/// `silence`: no provider call for longer than expected.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Silence {
    pub last_provider_call: Text,
    pub expected_sync_seconds: Num,
    pub silent_for_seconds: Num,
}

/// `scim_failures`: many failed SCIM requests in a short time.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScimFailures {
    pub failed_requests: Num,
    pub within_seconds: Num,
    /// `N × error; M × error`.
    pub most_common_errors: Text,
}

/// `auth_failures`: requests with a refused token.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AuthFailures {
    pub token_id: Text,
    pub token_issued: Text,
    pub reason: Text,
    pub client: Text,
    pub requests: Num,
}

/// `drift_repaired`: what the reconciler corrected.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DriftRepaired {
    pub granted: Num,
    pub promoted: Num,
    pub blocked: Num,
    pub releasing: Num,
    pub released: Num,
    pub repaired: Num,
    pub by: Text,
    /// The license counters it rewrote, as written (shown to the operator).
    pub counters_repaired: Option<Value>,
}

/// `reclaim_notice`: a seat about to be reclaimed for not being used.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReclaimNotice {
    pub user_id: Text,
    pub user_name: Text,
    pub last_used: Text,
    pub reclaim_at: Text,
}

/// `webhook_disabled`: an endpoint disabled after failing.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WebhookDisabled {
    pub webhook_id: Text,
    pub url: Text,
    pub reason: Text,
}

/// `weekly_summary`: the week of every license.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WeeklySummary {
    pub from: Num,
    pub to: Num,
    pub pending: Num,
    pub licenses: Vec<WeeklyLicense>,
}

/// One license's week.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WeeklyLicense {
    pub id: Text,
    pub name: Text,
    pub seats: Num,
    pub in_use: Num,
    pub waiting: Num,
    pub granted: Num,
    pub released: Num,
}

/// `seats_held`: a hold of the circuit breaker and how it stands.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default, rename_all = "camelCase")]
pub struct SeatsHeld {
    pub hold: Num,
    /// open, approved, rejected or dissolved.
    pub state: Text,
    pub held: Num,
    pub total: Num,
    pub percent: Num,
    pub min_seats: Num,
    pub window_minutes: Num,
    pub changes: Vec<HeldChange>,
    pub people: Vec<HeldPerson>,
    /// The people the same window's changes took a seat from before the breaker tripped.
    pub released_before: Vec<HeldPerson>,
    pub decided_by: Text,
    pub at: Text,
}

/// What the directory did, and to how many.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub struct HeldChange {
    pub change: Text,
    pub count: Num,
}

/// One person a hold keeps on their seat.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default, rename_all = "camelCase")]
pub struct HeldPerson {
    pub name: Text,
    pub user_name: Text,
    pub change: Text,
}

/// `overage`: use went above the seat count into the agreed overage.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default, rename_all = "camelCase")]
pub struct Overage {
    pub seats: Num,
    pub overage_seats: Num,
    pub in_use: Num,
    pub at: Text,
}

/// `run_out`: the forecast says the seats run out within the horizon.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RunOut {
    pub run_out_at: Text,
    pub demand_per_day: Real,
    pub in_use: Num,
    pub capacity: Num,
    pub waiting: Num,
    pub confidence: Text,
    pub horizon_days: Num,
}

/// `provider_failures`: the identity provider's failure rate over the health window passed
/// the tenant's warning level.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProviderFailures {
    pub requests: Num,
    pub failures: Num,
    pub failure_percent: Num,
    pub warn_percent: Num,
    pub days: Num,
    /// The most frequent failures, each `{count, request, status, cause}`.
    pub top: Vec<FailureLine>,
}

/// One kind of failing request, as the warning lists it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FailureLine {
    pub count: Num,
    /// `PATCH /scim/v2/Groups/{id}`.
    pub request: Text,
    /// `400 invalidValue`.
    pub status: Text,
    pub cause: Text,
}

impl Item for ProviderFailures {
    const KIND: Kind = Kind::ProviderFailures;
}

impl Item for Blocked {
    const KIND: Kind = Kind::Blocked;
}

impl Item for Threshold {
    const KIND: Kind = Kind::Threshold;
}

impl Item for CapacityLowered {
    const KIND: Kind = Kind::CapacityLowered;
}

impl Item for PendingExpired {
    const KIND: Kind = Kind::PendingExpired;
}

impl Item for Silence {
    const KIND: Kind = Kind::Silence;
}

impl Item for ScimFailures {
    const KIND: Kind = Kind::ScimFailures;
}

impl Item for AuthFailures {
    const KIND: Kind = Kind::AuthFailures;
}

impl Item for DriftRepaired {
    const KIND: Kind = Kind::DriftRepaired;
}

impl Item for ReclaimNotice {
    const KIND: Kind = Kind::ReclaimNotice;
}

impl Item for WebhookDisabled {
    const KIND: Kind = Kind::WebhookDisabled;
}

impl Item for WeeklySummary {
    const KIND: Kind = Kind::WeeklySummary;
}

impl Item for SeatsHeld {
    const KIND: Kind = Kind::SeatsHeld;
}

impl Item for Overage {
    const KIND: Kind = Kind::Overage;
}

impl Item for RunOut {
    const KIND: Kind = Kind::RunOut;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_read_leniently() {
        let b: Blocked = serde_json::from_value(
            json!({"userName": 7, "displayName": null, "position": 3, "extra": true}),
        )
        .unwrap();
        assert_eq!(b.user_name.as_str(), "7", "a number where text is expected");
        assert!(b.display_name.is_empty() && b.email.is_empty());
        assert_eq!(b.position, Some(3));
        let t: Threshold = serde_json::from_value(json!({"level": "high"})).unwrap();
        assert_eq!(t.level, Num(0), "not a number: 0");
    }
}
