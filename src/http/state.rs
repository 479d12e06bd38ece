//! What every handler can reach: the store, the configuration, limits, metrics, the workers'
//! statistics and the last readiness check.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::http::{limits, metrics};
use crate::store::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub limits: Arc<limits::Limits>,
    pub metrics: Arc<metrics::Metrics>,
    /// Wakes the notification sender (a test message is due at once).
    pub mail_wake: Arc<tokio::sync::Notify>,
    pub mail_stats: Arc<crate::workers::mail::Stats>,
    pub webhook_stats: Arc<crate::workers::webhooks::Stats>,
    /// The last readiness check: when it ran and what it found (`None`: ready).
    pub ready: std::sync::Mutex<Option<(Instant, Option<String>)>>,
}
