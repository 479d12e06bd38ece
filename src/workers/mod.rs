//! The background workers that use the store: the mail sender (`mail`: closes digests,
//! renders each once, delivers the stored bytes) and the webhook dispatcher (`webhooks`: takes
//! due deliveries, signs and POSTs them, records outcomes). What they send is decided by the
//! store where things happen; how it reads is `notify` and `webhook`, which the store may use.

pub mod mail;
pub mod webhooks;
