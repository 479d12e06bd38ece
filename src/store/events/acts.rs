//! What each audit entry records, typed: one variant of [`Act`] per action, each with the
//! struct of its detail. The store builds an `Act` when it writes an entry
//! ([`super::audit::record`]) and the console reads one back to word it
//! (`console::sentences`), so the writer and the reader share one shape: a renamed field is
//! renamed on both sides, and an action without a sentence does not compile.
//!
//! Stored as before: the action's text in `audit.action` and the detail's JSON in
//! `audit.detail` (serde's adjacent tagging splits them). Entries written by an older release
//! read back with missing fields defaulted; an action this release does not know reads back
//! as `None` and stays text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::AuditAction;

/// A record as the API showed it when the act happened (a tenant, a token's listing, a
/// webhook endpoint, a license's settings, a run's outcome): kept whole, as evidence.
pub type Snapshot = Value;

/// One audited act with its detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", content = "detail")]
pub enum Act {
    /// The tenant as created.
    #[serde(rename = "tenant.create")]
    TenantCreate(Snapshot),
    #[serde(rename = "tenant.update")]
    TenantUpdate(TenantUpdated),
    #[serde(rename = "tenant.close")]
    TenantClose(TenantClosed),
    #[serde(rename = "tenant.reopen")]
    TenantReopen(TenantRef),
    #[serde(rename = "tenant.export")]
    TenantExport(TenantExported),
    #[serde(rename = "tenant.purge")]
    TenantPurge(TenantRef),
    #[serde(rename = "scim_token.issue")]
    ScimTokenIssue(TokenIssued),
    #[serde(rename = "scim_token.rotate")]
    ScimTokenRotate(TokenRotated),
    #[serde(rename = "scim_token.revoke")]
    ScimTokenRevoke(TokenRef),
    #[serde(rename = "admin_token.issue")]
    AdminTokenIssue(TokenIssued),
    #[serde(rename = "admin_token.revoke")]
    AdminTokenRevoke(TokenRef),
    #[serde(rename = "product_token.issue")]
    ProductTokenIssue(TokenIssued),
    #[serde(rename = "product_token.revoke")]
    ProductTokenRevoke(TokenRef),
    #[serde(rename = "license.create")]
    LicenseCreate(LicenseCreated),
    #[serde(rename = "license.update")]
    LicenseUpdate(LicenseUpdated),
    #[serde(rename = "license.delete")]
    LicenseDelete(LicenseRef),
    #[serde(rename = "license.holders")]
    LicenseHolders(HoldersCarried),
    #[serde(rename = "license.holders_clear")]
    LicenseHoldersClear(HoldersCarried),
    #[serde(rename = "override.pin")]
    OverridePin(ByHand),
    #[serde(rename = "override.exclude")]
    OverrideExclude(ByHand),
    #[serde(rename = "override.idle")]
    OverrideIdle(ByHand),
    #[serde(rename = "override.remove")]
    OverrideRemove(ByHand),
    #[serde(rename = "seat.grant")]
    SeatGrant(ByHand),
    #[serde(rename = "seat.reclaim")]
    SeatReclaim(Reclaimed),
    #[serde(rename = "notification.test")]
    NotificationTest(TestSent),
    #[serde(rename = "notification.retry")]
    NotificationRetry(NotificationRef),
    #[serde(rename = "notification.dismiss")]
    NotificationDismiss(NotificationRef),
    #[serde(rename = "webhook.create")]
    WebhookCreate(WebhookRecord),
    #[serde(rename = "webhook.update")]
    WebhookUpdate(WebhookUpdated),
    #[serde(rename = "webhook.rotate")]
    WebhookRotate(WebhookRef),
    #[serde(rename = "webhook.delete")]
    WebhookDelete(WebhookRecord),
    #[serde(rename = "webhook.redeliver")]
    WebhookRedeliver(Redelivered),
    #[serde(rename = "hold.open")]
    HoldOpen(HoldOpened),
    #[serde(rename = "hold.dissolve")]
    HoldDissolve(HoldRef),
    #[serde(rename = "hold.approve")]
    HoldApprove(HoldDecided),
    #[serde(rename = "hold.reject")]
    HoldReject(HoldDecided),
    /// What the reconciler's run did (`Store::reconcile`'s outcome).
    #[serde(rename = "reconcile")]
    Reconcile(Snapshot),
    #[serde(rename = "console.sign_out_all")]
    ConsoleSignOutAll(SignedOut),
    #[serde(rename = "audit.key")]
    AuditKey(Keyed),
    #[serde(rename = "seat.granted")]
    SeatGranted(SeatMove),
    #[serde(rename = "seat.promoted")]
    SeatPromoted(SeatMove),
    #[serde(rename = "seat.blocked")]
    SeatBlocked(SeatMove),
    #[serde(rename = "seat.releasing")]
    SeatReleasing(SeatMove),
    #[serde(rename = "seat.released")]
    SeatReleased(SeatMove),
    #[serde(rename = "seat.held")]
    SeatHeld(SeatMove),
}

impl Act {
    /// The action this act is stored as.
    pub fn action(&self) -> AuditAction {
        use AuditAction as A;
        match self {
            Act::TenantCreate(_) => A::TenantCreate,
            Act::TenantUpdate(_) => A::TenantUpdate,
            Act::TenantClose(_) => A::TenantClose,
            Act::TenantReopen(_) => A::TenantReopen,
            Act::TenantExport(_) => A::TenantExport,
            Act::TenantPurge(_) => A::TenantPurge,
            Act::ScimTokenIssue(_) => A::ScimTokenIssue,
            Act::ScimTokenRotate(_) => A::ScimTokenRotate,
            Act::ScimTokenRevoke(_) => A::ScimTokenRevoke,
            Act::AdminTokenIssue(_) => A::AdminTokenIssue,
            Act::AdminTokenRevoke(_) => A::AdminTokenRevoke,
            Act::ProductTokenIssue(_) => A::ProductTokenIssue,
            Act::ProductTokenRevoke(_) => A::ProductTokenRevoke,
            Act::LicenseCreate(_) => A::LicenseCreate,
            Act::LicenseUpdate(_) => A::LicenseUpdate,
            Act::LicenseDelete(_) => A::LicenseDelete,
            Act::LicenseHolders(_) => A::LicenseHolders,
            Act::LicenseHoldersClear(_) => A::LicenseHoldersClear,
            Act::OverridePin(_) => A::OverridePin,
            Act::OverrideExclude(_) => A::OverrideExclude,
            Act::OverrideIdle(_) => A::OverrideIdle,
            Act::OverrideRemove(_) => A::OverrideRemove,
            Act::SeatGrant(_) => A::SeatGrant,
            Act::SeatReclaim(_) => A::SeatReclaim,
            Act::NotificationTest(_) => A::NotificationTest,
            Act::NotificationRetry(_) => A::NotificationRetry,
            Act::NotificationDismiss(_) => A::NotificationDismiss,
            Act::WebhookCreate(_) => A::WebhookCreate,
            Act::WebhookUpdate(_) => A::WebhookUpdate,
            Act::WebhookRotate(_) => A::WebhookRotate,
            Act::WebhookDelete(_) => A::WebhookDelete,
            Act::WebhookRedeliver(_) => A::WebhookRedeliver,
            Act::HoldOpen(_) => A::HoldOpen,
            Act::HoldDissolve(_) => A::HoldDissolve,
            Act::HoldApprove(_) => A::HoldApprove,
            Act::HoldReject(_) => A::HoldReject,
            Act::Reconcile(_) => A::Reconcile,
            Act::ConsoleSignOutAll(_) => A::ConsoleSignOutAll,
            Act::AuditKey(_) => A::AuditKey,
            Act::SeatGranted(_) => A::SeatGranted,
            Act::SeatPromoted(_) => A::SeatPromoted,
            Act::SeatBlocked(_) => A::SeatBlocked,
            Act::SeatReleasing(_) => A::SeatReleasing,
            Act::SeatReleased(_) => A::SeatReleased,
            Act::SeatHeld(_) => A::SeatHeld,
        }
    }

    /// The detail as stored (the JSON of the variant's struct).
    pub fn detail(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut o)) => o.remove("detail").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// An entry read back: `None` for an action this release does not know (a newer release
    /// wrote it). A detail that is not an object reads as an empty one.
    pub fn read(action: &str, detail: &Value) -> Option<Act> {
        AuditAction::parse(action)?;
        let typed = |d: &Value| {
            serde_json::from_value::<Act>(serde_json::json!({"action": action, "detail": d})).ok()
        };
        typed(detail).or_else(|| typed(&Value::Object(Default::default())))
    }
}

/// A tenant's settings changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantUpdated {
    pub tenant: String,
    pub changed: Changes,
}

/// A tenant offboarded: purged at `purge_at` unless reopened before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TenantClosed {
    pub tenant: String,
    pub name: String,
    pub purge_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantRef {
    pub tenant: String,
}

/// A tenant's records exported (`lines` JSON lines).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantExported {
    pub tenant: String,
    pub lines: usize,
}

/// A token issued: its listing (never the secret).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenIssued {
    pub token: Snapshot,
}

/// A SCIM token rotated: `token` replaces `replaces` (which stays valid for the overlap),
/// both as listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRotated {
    pub token: Snapshot,
    pub replaces: Snapshot,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRef {
    pub token: String,
}

/// A license created with its settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LicenseCreated {
    pub license: String,
    pub name: String,
    pub settings: Snapshot,
}

impl LicenseCreated {
    /// The seat count it was created with.
    pub fn seats(&self) -> Option<i64> {
        self.settings.get("seats").and_then(Value::as_i64)
    }
}

/// A license changed: what differs, setting by setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LicenseUpdated {
    pub license: String,
    pub name: String,
    pub changed: Changes,
}

/// A license named by id and name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LicenseRef {
    pub license: String,
    pub name: String,
}

/// People carried over as a license's seat holders (or forgotten): how many, and how many
/// references matched nobody.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldersCarried {
    pub license: String,
    pub name: String,
    /// Added to the list (or, clearing, taken off it).
    pub people: i64,
    /// References that named nobody, or several people.
    pub unmatched: i64,
}

/// What changed between two versions of a record: each differing setting's values, and for
/// a license the groups (un)selected and the limits changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupsChanged>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitChanged>,
    #[serde(flatten)]
    pub fields: BTreeMap<String, FromTo>,
}

impl Changes {
    /// The settings that differ between two records (JSON objects), except `ignore`d ones
    /// (counters, timestamps).
    pub fn between(before: &Value, after: &Value, ignore: &[&str]) -> Changes {
        let empty = serde_json::Map::new();
        let (b, a) = (
            before.as_object().unwrap_or(&empty),
            after.as_object().unwrap_or(&empty),
        );
        let mut fields = BTreeMap::new();
        for (k, to) in a {
            if ignore.contains(&k.as_str()) {
                continue;
            }
            let from = b.get(k).unwrap_or(&Value::Null);
            if from != to {
                fields.insert(
                    k.clone(),
                    FromTo {
                        from: from.clone(),
                        to: to.clone(),
                    },
                );
            }
        }
        Changes {
            fields,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.groups.is_none() && self.limits.is_empty()
    }
}

/// A setting's value before and after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FromTo {
    pub from: Value,
    pub to: Value,
}

/// Groups a license selected and stopped selecting, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupsChanged {
    pub selected: Vec<String>,
    pub unselected: Vec<String>,
}

/// A selected group's reserve and ceiling, before and after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitChanged {
    pub group: String,
    pub reserve: (i64, i64),
    pub max: (Option<i64>, Option<i64>),
}

/// An admin's act on one user's seat of a license (a pin, an exclusion, an idle mark, an
/// override cleared, a manual grant).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ByHand {
    pub license: String,
    pub user_name: String,
}

/// Idle seats reclaimed: whose, after how many idle days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Reclaimed {
    pub license: String,
    pub users: Vec<String>,
    pub idle_days: i64,
}

/// A test email queued to `to`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestSent {
    pub notification: i64,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationRef {
    pub notification: i64,
}

/// A webhook endpoint as listed (never its secret) when it was created or deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookRecord {
    pub webhook: Snapshot,
}

impl WebhookRecord {
    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        self.webhook
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookUpdated {
    pub webhook: String,
    pub changed: Changes,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookRef {
    pub webhook: String,
}

/// A delivery (by its message id) queued again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Redelivered {
    pub webhook: String,
    pub delivery: String,
}

/// The circuit breaker held `held` losses of a license; `changes` counts them by loss
/// (`alloc::Loss::key`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldOpened {
    pub hold: i64,
    pub license: String,
    pub name: String,
    pub held: i64,
    pub changes: BTreeMap<String, i64>,
    /// People who lost their seat in the same window before the breaker tripped (by name, the
    /// first 25), and how many in all.
    pub released_before: Vec<String>,
    pub released: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldRef {
    pub hold: i64,
    pub license: String,
    pub name: String,
}

/// A hold approved or rejected; `report` is what the approval's allocator run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldDecided {
    pub hold: i64,
    pub license: String,
    pub name: String,
    pub held: i64,
    pub report: Snapshot,
}

/// Console sessions ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignedOut {
    pub sessions: i64,
}

/// The chain keyed with the audit key `key` (fingerprint), after `previous`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Keyed {
    pub key: String,
    pub previous: Option<String>,
}

/// A seat event of the feed: whose seat of which license moved, and why (`manual`: an
/// admin's grant).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeatMove {
    pub license: String,
    pub user_id: String,
    pub user_name: Option<String>,
    pub cause: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_action_reads_back_as_its_act() {
        for a in AuditAction::ALL {
            let act = Act::read(a.as_str(), &json!({}))
                .unwrap_or_else(|| panic!("{a} does not read back"));
            assert_eq!(act.action(), *a, "serde's name and as_str disagree");
        }
        assert_eq!(Act::read("from.the_future", &json!({})), None);
        // A detail of another shape (an older release's) still reads, defaulted.
        assert!(Act::read("hold.open", &json!("text")).is_some());
    }

    #[test]
    fn a_detail_is_stored_as_the_struct_and_read_back_the_same() {
        let act = Act::LicenseUpdate(LicenseUpdated {
            license: "l-1".into(),
            name: "Zendesk".into(),
            changed: Changes {
                groups: Some(GroupsChanged {
                    selected: vec!["Design".into()],
                    unselected: vec![],
                }),
                limits: vec![LimitChanged {
                    group: "Sales".into(),
                    reserve: (0, 4),
                    max: (None, Some(8)),
                }],
                fields: [(
                    "seats".to_owned(),
                    FromTo {
                        from: json!(10),
                        to: json!(12),
                    },
                )]
                .into(),
            },
        });
        let d = act.detail();
        assert_eq!(d["changed"]["seats"], json!({"from": 10, "to": 12}));
        assert_eq!(d["changed"]["limits"][0]["max"], json!([null, 8]));
        assert_eq!(Act::read("license.update", &d), Some(act));
    }

    #[test]
    fn snapshots_answer_what_the_sentences_read() {
        let created = LicenseCreated {
            settings: json!({"seats": 25, "name": "x"}),
            ..Default::default()
        };
        assert_eq!(created.seats(), Some(25));
        let w = WebhookRecord {
            webhook: json!({"url": "https://hooks.example/x"}),
        };
        assert_eq!(w.url(), "https://hooks.example/x");
    }
}
