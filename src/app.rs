//! Builds the running daemon: opens the store, binds the listener (port 0 picks a free port, as
//! the tests do) and starts the HTTP server. Used by `seatkeeper serve` and by every integration
//! test.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, HttpServer};

use crate::config::Config;
use crate::http::{self, AppState};
use crate::store::Store;

pub struct Application {
    port: u16,
    ops: Option<(
        u16,
        ServerHandle,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    server: Server,
    store: Store,
    /// A SQLite database is marked as served while this runs (`maintenance::serving`).
    _serving: Option<crate::store::operations::maintenance::Serving>,
    /// What wakes the notification sender, and its counters.
    mail: (Arc<tokio::sync::Notify>, Arc<crate::workers::mail::Stats>),
    webhooks_probe: (
        Arc<tokio::sync::Notify>,
        Arc<crate::workers::webhooks::Stats>,
    ),
    reconciler: tokio::task::JoinHandle<()>,
    /// Writes this node's provider-call times to the database every second.
    /// The PostgreSQL statistics keeper (`spawn_statistics_keeper`).
    statistics: tokio::task::JoinHandle<()>,
    calls: tokio::task::JoinHandle<()>,
    sender: (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
    /// The webhook dispatcher: its stop signal and task.
    webhooks: (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
}

/// Every second, the provider calls this node served since the last second are written to the
/// database (the latest per tenant, never an earlier one), so that whichever node judges a
/// tenant's silence sees every node's calls, at most a second late.
fn spawn_call_recorder(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut down = crate::background::Outage::default();
        loop {
            tick.tick().await;
            match store.flush_provider_calls().await {
                Ok(()) => down.ok("provider-call recorder"),
                Err(crate::store::Error::Closed) => break,
                Err(e) if e.unavailable() => down.failed("provider-call recorder", &e),
                Err(e) => tracing::warn!(error = %e, "cannot record provider calls"),
            }
        }
    })
}

/// Every two seconds, the write path's tables that grew by a fifth are analyzed on
/// PostgreSQL (`Store::keep_statistics`).
fn spawn_statistics_keeper(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut down = crate::background::Outage::default();
        loop {
            tick.tick().await;
            match store.keep_statistics().await {
                Ok(analyzed) => {
                    down.ok("statistics keeper");
                    if !analyzed.is_empty() {
                        tracing::debug!(tables = ?analyzed, "analyzed tables that grew");
                    }
                }
                Err(crate::store::Error::Closed) => break,
                Err(e) if e.unavailable() => down.failed("statistics keeper", &e),
                Err(e) => tracing::warn!(error = %e, "cannot keep the planner's statistics"),
            }
        }
    })
}

/// The periodic reconciler: every `interval`, one pass over every tenant.
fn spawn_reconciler(
    store: Store,
    interval: std::time::Duration,
    metrics: Arc<crate::http::metrics::Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the first pass waits one interval
        let mut down = crate::background::Outage::default();
        loop {
            tick.tick().await;
            match store
                .reconcile_all_leased(interval.as_millis() as i64)
                .await
            {
                Ok(outcome) => {
                    down.ok("reconciler");
                    metrics
                        .reconcile_runs
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    metrics.reconcile_failures.fetch_add(
                        outcome.failed.len() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    tracing::debug!(
                        tenants = outcome.reconciled,
                        failed = outcome.failed.len(),
                        "reconcile pass done"
                    )
                }
                Err(crate::store::Error::Closed) => break,
                Err(e) if e.unavailable() => {
                    metrics
                        .reconcile_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    down.failed("reconciler", &e);
                }
                Err(e) => {
                    metrics
                        .reconcile_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(error = %e, "reconcile pass failed")
                }
            }
        }
    })
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with_clock(config, crate::store::system_clock()).await
    }

    /// As [`Application::build`], with the clock the allocator reads (tests move time forward
    /// instead of sleeping through grace periods and pending windows).
    pub async fn build_with_clock(
        config: Config,
        clock: crate::store::Clock,
    ) -> anyhow::Result<Application> {
        let serving = crate::store::operations::backups::serving(&config.database)?;
        let store = Store::open_with_clock(&config.database_to_open()?, clock).map_err(|e| {
            anyhow::anyhow!("cannot open the database {}: {e}", config.database_shown())
        })?;
        store.set_retention(crate::store::operations::retention::Retention {
            seat_events_days: config.seat_events_retention_days,
            webhook_days: config.webhook_retention_days,
            mail_days: config.mail_retention_days,
            audit_days: config.audit_retention_days,
        });
        // With an audit key: every chain ends keyed from now on (see `store::audit`).
        match store.key_audit_chains().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(chains = n, "audit chains keyed with the audit key"),
            Err(e) => anyhow::bail!("cannot key the audit chains: {e}"),
        }
        let tls = match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => Some(http::tls::server_config(cert, key)?),
            _ => None,
        };
        let listener = TcpListener::bind(config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (`listen`): {e}", config.listen))?;
        let port = listener.local_addr()?.port();
        if config.admin_token.is_none() {
            tracing::warn!("the admin API is off: set admin_token (SEATKEEPER_ADMIN_TOKEN) or admin_token_file to turn it on");
        }
        let transport = match &config.smtp_url {
            Some(url) => {
                crate::workers::mail::Transport::smtp(&url.0, config.smtp_ca_file.as_deref())
                    .map_err(|e| anyhow::anyhow!("invalid mail settings: {e}"))?
            }
            None => match &config.mail_dir {
                Some(dir) => crate::workers::mail::Transport::Folder(dir.clone()),
                None => crate::workers::mail::Transport::folder_beside(&config.database),
            },
        };
        let from: lettre::message::Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid `mail_from`: {e}"))?;
        let limits = Arc::new(crate::http::limits::Limits::new(&config));
        let metrics = Arc::new(crate::http::metrics::Metrics::default());
        let idle = limits.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                idle.shrink();
            }
        });
        let mail_wake = Arc::new(tokio::sync::Notify::new());
        let mail_stats = Arc::new(crate::workers::mail::Stats::default());
        let (stop_sender, stopped) = tokio::sync::watch::channel(false);
        let sender = crate::workers::mail::Sender {
            store: store.clone(),
            transport,
            from,
            window_ms: config.digest_window_seconds as i64 * 1000,
            public_url: config.public_url.clone(),
            operator: config.operator_notify.clone(),
            wake: mail_wake.clone(),
            stats: mail_stats.clone(),
        };
        let sender = (stop_sender, tokio::spawn(sender.run(stopped)));
        let dispatcher = crate::workers::webhooks::Dispatcher::new(
            store.clone(),
            crate::webhook::vet::Policy::of(&config),
            std::time::Duration::from_secs(config.webhook_timeout_seconds),
            std::time::Duration::from_secs(config.webhook_disable_after_seconds),
            config.webhook_proxy.as_ref().map(|p| p.0.as_str()),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let webhook_stats = dispatcher.stats.clone();
        let webhooks_probe = (dispatcher.wake.clone(), webhook_stats.clone());
        let (stop_webhooks, webhooks_stopped) = tokio::sync::watch::channel(false);
        let webhooks = (
            stop_webhooks,
            tokio::spawn(dispatcher.run(webhooks_stopped)),
        );
        let state = web::Data::new(AppState {
            store: store.clone(),
            config: Arc::new(config.clone()),
            limits: limits.clone(),
            metrics: metrics.clone(),
            mail_wake: mail_wake.clone(),
            mail_stats: mail_stats.clone(),
            webhook_stats,
            ready: Default::default(),
        });
        let surface = if config.metrics_listen.is_some() {
            http::Surface::Service
        } else {
            http::Surface::All
        };
        let ops = match config.metrics_listen {
            None => None,
            Some(addr) => {
                let l = TcpListener::bind(addr).map_err(|e| {
                    anyhow::anyhow!("cannot listen on {addr} (`metrics_listen`): {e}")
                })?;
                let ops_port = l.local_addr()?.port();
                let s = state.clone();
                let server = HttpServer::new(move || http::app(s.clone(), http::Surface::Ops))
                    .listen(l)?
                    .workers(1)
                    .shutdown_timeout(5)
                    .run();
                let handle = server.handle();
                tracing::info!(address = %addr.ip(), port = ops_port, "metrics and health listening");
                Some((ops_port, handle, tokio::spawn(server)))
            }
        };
        let state_main = state.clone();
        let server = HttpServer::new(move || http::app(state_main.clone(), surface))
            .workers(config.workers)
            .shutdown_timeout(30)
            // A client gets 10 s to send its request head (slowloris), 5 s to close, and 3 s
            // (actix's default) to finish a TLS handshake.
            .client_request_timeout(std::time::Duration::from_secs(10))
            .client_disconnect_timeout(std::time::Duration::from_secs(5))
            .max_connections(config.max_connections);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls)?,
            None => server.listen(listener)?,
        }
        .run();
        tracing::info!(address = %config.listen.ip(), port, scheme, database = %config.database_shown(), "seatkeeper listening");
        let reconciler = spawn_reconciler(
            store.clone(),
            std::time::Duration::from_secs(config.reconcile_interval_seconds),
            metrics.clone(),
        );
        let calls = spawn_call_recorder(store.clone());
        let statistics = spawn_statistics_keeper(store.clone());
        Ok(Application {
            port,
            ops,
            server,
            store,
            _serving: serving,
            reconciler,
            calls,
            statistics,
            sender,
            webhooks,
            mail: (mail_wake, mail_stats),
            webhooks_probe,
        })
    }

    /// What wakes the notification sender, and its counters (`passes`): a test wakes it and
    /// waits for a pass that began after a change, so that its "nothing was sent" is not true
    /// merely because the sender had not looked yet.
    pub fn mail_probe(&self) -> (Arc<tokio::sync::Notify>, Arc<crate::workers::mail::Stats>) {
        self.mail.clone()
    }

    /// The webhook dispatcher's wake-up and counters (tests drain the queue with them).
    pub fn webhooks_probe(
        &self,
    ) -> (
        Arc<tokio::sync::Notify>,
        Arc<crate::workers::webhooks::Stats>,
    ) {
        self.webhooks_probe.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the operations listener, when `metrics_listen` is set.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops.as_ref().map(|(p, ..)| *p)
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM or the handle), finishes in-flight requests, then
    /// closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let r = self.server.await;
        if let Some((_, handle, task)) = self.ops {
            handle.stop(true).await;
            let _ = task.await;
        }
        self.reconciler.abort();
        self.calls.abort();
        self.statistics.abort();
        // The sender and the webhook dispatcher finish what they hold and record its outcome
        // before the store closes.
        let (stop, task) = self.sender;
        let (stop_hooks, hooks) = self.webhooks;
        let _ = stop.send(true);
        let _ = stop_hooks.send(true);
        let wait = std::time::Duration::from_secs(40);
        let (mail, hooks) = tokio::join!(
            tokio::time::timeout(wait, task),
            tokio::time::timeout(wait, hooks)
        );
        if mail.is_err() {
            tracing::warn!("the notification sender did not stop in time");
        }
        if hooks.is_err() {
            tracing::warn!("the webhook dispatcher did not stop in time");
        }
        if let Err(e) = self.store.flush_provider_calls().await {
            tracing::warn!(error = %e, "could not record the last provider calls");
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .ok();
        tracing::info!("seatkeeper stopped");
        r
    }
}
