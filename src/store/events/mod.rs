//! What happened, for people and machines: the notification outbox (`outbox`), closed digests
//! made readable (`digest`), failing-request and refused-token alerts (`alerts`), the weekly
//! summary (`weekly`), webhook endpoints and their outbox (`webhooks`), the seat-event feed
//! (`feed`), the identity provider's failing requests and failure rate (`provider_health`) and the audit log (`audit`, each act's detail typed in `acts`).

pub mod acts;
pub(crate) mod alerts;
pub mod audit;
pub(crate) mod digest;
pub(crate) mod feed;
pub mod outbox;
pub mod provider_health;
pub mod webhooks;
pub(crate) mod weekly;
