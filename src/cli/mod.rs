//! The command line: `serve` runs the daemon; the other verbs are admin actions run directly on
//! the database (safe while the daemon runs: SQLite WAL serializes the writers; on PostgreSQL
//! they take the tenant's lock as a node does). Licenses, the product's side and the audit log
//! have modules of their own.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::alloc::{OnLowered, OverrideKind, SeatState};
use crate::app::Application;
use crate::config::Config;
use crate::store::events::audit::Actor;
use crate::store::{GroupSelection, LicenseChange, LicenseSpec, Selector, Store};

mod audit;
mod license;
mod product;

use audit::audit;
pub use audit::{AuditCommand, AuditFilter};
use license::license;
pub use license::{LicenseCommand, LicenseFlags};
use product::{product_token, webhook};
pub use product::{ProductTokenCommand, WebhookCommand, WebhookOwner};

#[derive(Parser, Debug)]
#[command(
    name = "seatkeeper",
    version,
    about = "Seat-license allocation daemon with SCIM 2.0 directory sync"
)]
pub struct Cli {
    /// TOML configuration file (see deploy/seatkeeper.example.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon.
    Serve,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's SCIM bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage tenant admin tokens (the admin API and console for one tenant only).
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Product tokens (`skp_...`): the product's read-only credential for /product/v1.
    #[command(subcommand)]
    ProductToken(ProductTokenCommand),
    /// The tamper-evident audit log: list, export (JSON lines) and verify its hash chains.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Signed webhooks to the product: endpoints of a tenant, or with --operator of every tenant.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Manage licenses, their seats and overrides.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Run the reconciler over a tenant now and print its report.
    Reconcile { tenant: String },
    /// Write a consistent copy of the database to FILE while the daemon runs (SQLite: online
    /// backup; PostgreSQL: pg_dump's custom format, one snapshot).
    Backup { file: PathBuf },
    /// Replace the database with a backup (stop the daemon first; SQLite: the old file is kept
    /// aside; PostgreSQL: pg_restore into an empty database, in one transaction).
    Restore { file: PathBuf },
    /// Integrity check and seat-invariant audit of every license; exit status 1 on problems.
    Check,
    /// Bring the database's schema up to this release (what `serve` does at start) and print the
    /// version; refuses a database newer than this release. Run it before starting the new
    /// release's nodes in a rolling upgrade (deploy/README.md, "Upgrade").
    Migrate,
    /// Copy the configured SQLite database into an empty PostgreSQL database (every seat state
    /// and waitlist order, tokens, outbox, audit), verify the copy and say what was copied.
    Transfer {
        /// The PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (or ?host=/socket/dir).
        #[arg(long)]
        to: String,
    },
    /// A tenant's status: last provider call, silence, pending references, last reconcile.
    Status { tenant: String },
    /// A tenant's notification outbox; test messages; retries.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// The circuit breaker's holds of mass seat loss: list, show, approve, reject.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Console sessions.
    #[command(subcommand)]
    Console(ConsoleCommand),
    /// The seat-event feed of a tenant after a cursor.
    Events {
        tenant: String,
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// End every console session (of one tenant with --tenant), on every node, at once.
    SignOutAll {
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        name: String,
        /// A notification recipient (repeatable): `EMAIL`, or `EMAIL:KIND,KIND` for only
        /// those kinds (blocked, threshold, capacity_lowered, pending_expired, silence,
        /// scim_failures, auth_failures, drift_repaired, weekly_summary, reclaim_notice).
        #[arg(long = "notify", value_name = "EMAIL[:KINDS]")]
        notify: Vec<String>,
    },
    /// Change a tenant's settings (only the options given change).
    Set {
        tenant: String,
        /// Notification recipient (repeatable; `EMAIL` or `EMAIL:KIND,KIND`); replaces the list.
        #[arg(long = "notify", value_name = "EMAIL[:KINDS]")]
        notify: Vec<String>,
        /// Remove every notification recipient.
        #[arg(long, conflicts_with = "notify")]
        no_notify: bool,
        /// Longer than this without a provider call, the tenant is silent (60 to 2592000).
        #[arg(long)]
        expected_sync_seconds: Option<i64>,
        /// How long pending references wait (0 to 259200: at most 72 hours).
        #[arg(long)]
        pending_window_seconds: Option<i64>,
        /// The IANA time zone of the tenant's emails (e.g. Europe/Berlin).
        #[arg(long)]
        time_zone: Option<String>,
        /// The weekly summary: `DAY:HOUR` in the tenant's time zone (e.g. monday:8), or `off`.
        #[arg(long, value_name = "DAY:HOUR|off")]
        weekly_summary: Option<String>,
        /// Circuit breaker: hold directory-made seat losses above this share of a license's
        /// granted seats (0 to 100; 100 switches it off).
        #[arg(long)]
        hold_threshold_percent: Option<i64>,
        /// ... once at least this many people would lose a seat.
        #[arg(long)]
        hold_min_seats: Option<i64>,
        /// ... within this many seconds of the first loss (60 to 259200).
        #[arg(long)]
        hold_window_seconds: Option<i64>,
        /// Email when a license's forecast runs out of seats within this many days (1 to 365).
        #[arg(long)]
        forecast_horizon_days: Option<i64>,
        /// Group names unique in the tenant (true, the default) or not (false: same-named
        /// groups allowed; a by-name selection of such a name selects neither).
        #[arg(long)]
        group_names_unique: Option<bool>,
        /// Warn the tenant's recipients past this share (1 to 100) of the identity provider's
        /// requests failing over 7 days (with 100 failures at least).
        #[arg(long)]
        idp_failure_warn_percent: Option<i64>,
    },
    /// List tenants.
    List,
    /// Offboard a tenant: closed at once (every credential refused, no mail, webhooks or
    /// reconciler work), every row purged after tenant_retention_days (--purge-now: at once).
    Delete {
        tenant: String,
        #[arg(long)]
        purge_now: bool,
    },
    /// Every record of a tenant as JSON lines on stdout (before offboarding it).
    Export { tenant: String },
    /// Reopen a closed tenant that is not purged yet.
    Restore { tenant: String },
    /// Show one tenant (by id or name).
    Show { tenant: String },
    /// The identity provider's failing requests of the last 7 days, each with its count and
    /// likely cause, and the failure rate against the provider's quarantine rule.
    Failures { tenant: String },
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Issue a tenant admin token (`ska_...`); printed once, only its hash is kept.
    Issue { tenant: String },
    /// List a tenant's admin tokens (no secrets).
    List { tenant: String },
    /// Revoke a tenant admin token at once.
    Revoke { tenant: String, id: String },
}

#[derive(Subcommand, Debug)]
pub enum HoldCommand {
    /// The tenant's holds, newest first.
    List {
        tenant: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["open", "approved", "rejected", "dissolved"]))]
        state: Option<String>,
    },
    /// One hold with the users it holds.
    Show { tenant: String, id: i64 },
    /// Approve a hold: the held seat losses go through (grace, release, promotion).
    Approve { tenant: String, id: i64 },
    /// Reject a hold: the held users keep their seats.
    Reject { tenant: String, id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum NotificationsCommand {
    /// The outbox, newest first: state, attempts, last error.
    List {
        tenant: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::store::DigestState::ALL.map(crate::store::DigestState::as_str)))]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One notification with the events it lists.
    Show { tenant: String, id: i64 },
    /// Queue a test message (sent by the running daemon within a second).
    Test {
        tenant: String,
        /// Recipient (repeatable; default: the tenant's notify list).
        #[arg(long = "to", value_name = "EMAIL")]
        to: Vec<String>,
    },
    /// Queue a failed or skipped notification again.
    Retry { tenant: String, id: i64 },
    /// Close a failed or skipped notification unsent (failed ones are kept until then).
    Dismiss { tenant: String, id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a SCIM token for a tenant; it is printed once and only its hash is kept.
    Issue {
        tenant: String,
        /// Seconds until the token expires (default: never).
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// Issue a replacement token; the old one stays valid for --overlap seconds (default 86400).
    Rotate {
        tenant: String,
        id: String,
        #[arg(long, default_value_t = 86_400)]
        overlap: i64,
    },
    /// List a tenant's tokens (no secrets).
    List { tenant: String },
    /// Revoke a token (a running daemon refuses it within a second).
    Revoke { tenant: String, id: String },
}

fn recipients(values: &[String]) -> anyhow::Result<Vec<crate::notify::Recipient>> {
    values
        .iter()
        .map(|v| crate::notify::Recipient::parse_line(v).map_err(|e| anyhow::anyhow!(e)))
        .collect()
}

/// `--weekly-summary`: `DAY:HOUR` or `off`.
fn weekly(v: &str) -> anyhow::Result<Option<crate::notify::when::Weekly>> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (day, hour) = v.split_once(':').unwrap_or((v, "8"));
    let day: crate::notify::when::Day =
        serde_json::from_value(json!(day.trim().to_ascii_lowercase()))
            .map_err(|_| anyhow::anyhow!("{day:?} is not a day of the week"))?;
    let hour: i8 = hour
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{hour:?} is not an hour (0 to 23)"))?;
    let w = crate::notify::when::Weekly { day, hour };
    w.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(Some(w))
}

fn print(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs a parsed command line with a loaded configuration.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let Command::Serve = cli.command {
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        return Ok(());
    }
    if let Command::Transfer { to } = &cli.command {
        let (from, to) = (config.database.clone(), to.clone());
        // The PostgreSQL client blocks: off the async runtime.
        let copied = tokio::task::spawn_blocking(move || {
            crate::store::engine::transfer::transfer(&from, &to)
        })
        .await??;
        let total: i64 = copied.tables.iter().map(|(_, n)| n).sum();
        for (table, n) in &copied.tables {
            println!("{table:>14} {n:>10}");
        }
        eprintln!(
            "copied {total} rows from {} and verified them (row counts and the seat audit)",
            config.database_shown()
        );
        return Ok(());
    }
    if let Command::Backup { file } = &cli.command {
        let how =
            crate::store::operations::backups::backup(&config.database_to_open()?, file).await?;
        eprintln!("backup written to {} ({how})", file.display());
        return Ok(());
    }
    if let Command::Restore { file } = &cli.command {
        let how =
            crate::store::operations::backups::restore(&config.database_to_open()?, file).await?;
        eprintln!(
            "restored {} from {} ({how})",
            config.database_shown(),
            file.display()
        );
        return Ok(());
    }
    let store = Store::open(&config.database_to_open()?)?;
    let result = match cli.command {
        Command::Webhook(cmd) => webhook(cmd, &store, &config).await,
        Command::Tenant(TenantCommand::Delete { tenant, purge_now }) => {
            match store.tenant(&tenant).await {
                Ok(t) => {
                    let days = if purge_now {
                        0
                    } else {
                        i64::from(config.tenant_retention_days)
                    };
                    match store.close_tenant(t.key, days, Actor::cli()).await {
                        Ok(()) if purge_now => {
                            print(&json!({"purged": t.id}));
                            Ok(())
                        }
                        Ok(()) => {
                            print(&json!(store.tenant(&t.id).await?));
                            Ok(())
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Audit(cmd) => audit(cmd, &store).await,
        other => admin(other, &store).await,
    };
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.close()).await.ok();
    result
}

async fn admin(command: Command, store: &Store) -> anyhow::Result<()> {
    match command {
        Command::Serve
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Transfer { .. }
        | Command::Webhook(_)
        | Command::Audit(_) => {
            unreachable!("handled by run")
        }
        Command::Console(ConsoleCommand::SignOutAll { tenant }) => {
            let t = match tenant {
                Some(t) => Some(store.tenant(&t).await?.key),
                None => None,
            };
            let n = store.end_all_console_sessions(t, Actor::cli()).await?;
            print(&json!({"ended": n}));
        }
        Command::Migrate => {
            print(&json!({
                "engine": store.engine_name(),
                "schema_version": store.schema_version().await?,
            }));
        }
        Command::Check => {
            let problems = store.check().await?;
            print(&json!({"ok": problems.is_empty(), "problems": problems}));
            if !problems.is_empty() {
                anyhow::bail!("{} problem(s) found", problems.len());
            }
        }
        Command::Tenant(TenantCommand::Create { name, notify }) => {
            print(&json!(
                store
                    .create_tenant(name, recipients(&notify)?, Actor::cli())
                    .await?
            ));
        }
        Command::Tenant(TenantCommand::Set {
            tenant,
            notify,
            no_notify,
            expected_sync_seconds,
            pending_window_seconds,
            time_zone,
            weekly_summary,
            hold_threshold_percent,
            hold_min_seats,
            hold_window_seconds,
            forecast_horizon_days,
            group_names_unique,
            idp_failure_warn_percent,
        }) => {
            let t = store.tenant(&tenant).await?;
            let notify = (no_notify || !notify.is_empty()).then_some(recipients(&notify)?);
            let weekly_summary = weekly_summary.as_deref().map(weekly).transpose()?;
            store
                .update_tenant(
                    t.key,
                    crate::store::TenantChange {
                        notify,
                        expected_sync_seconds,
                        pending_window_seconds,
                        time_zone,
                        weekly_summary,
                        hold_threshold_percent,
                        hold_min_seats,
                        hold_window_seconds,
                        forecast_horizon_days,
                        group_names_unique,
                        idp_failure_warn_percent,
                    },
                    Actor::cli(),
                )
                .await?;
            print(&json!(store.tenant(&t.id).await?));
        }
        Command::Hold(cmd) => match cmd {
            HoldCommand::List { tenant, state } => {
                let t = store.tenant(&tenant).await?;
                print(&json!({"holds": store.holds(t.key, state).await?}));
            }
            HoldCommand::Show { tenant, id } => {
                let t = store.tenant(&tenant).await?;
                print(&json!(store.hold(t.key, id).await?));
            }
            HoldCommand::Approve { tenant, id } => {
                let t = store.tenant(&tenant).await?;
                print(&json!(
                    store
                        .decide_hold(t.key, id, crate::store::Decision::Approve, Actor::cli())
                        .await?
                ));
            }
            HoldCommand::Reject { tenant, id } => {
                let decision = crate::store::Decision::Reject;
                let t = store.tenant(&tenant).await?;
                print(&json!(
                    store.decide_hold(t.key, id, decision, Actor::cli()).await?
                ));
            }
        },
        Command::Notifications(cmd) => match cmd {
            NotificationsCommand::List {
                tenant,
                state,
                limit,
            } => {
                let t = store.tenant(&tenant).await?;
                print(&store.notifications(t.key, state, limit).await?)
            }
            NotificationsCommand::Show { tenant, id } => {
                let t = store.tenant(&tenant).await?;
                print(&store.notification(t.key, id, 1000).await?)
            }
            NotificationsCommand::Test { tenant, to } => {
                let t = store.tenant(&tenant).await?;
                if to.is_empty() && t.notify.is_empty() {
                    anyhow::bail!("the tenant has no notify recipients: set them (tenant set --notify) or give --to");
                }
                print(&store.notification_test(t.key, to, Actor::cli()).await?)
            }
            NotificationsCommand::Retry { tenant, id } => {
                let t = store.tenant(&tenant).await?;
                print(&store.retry_notification(t.key, id, Actor::cli()).await?)
            }
            NotificationsCommand::Dismiss { tenant, id } => {
                let t = store.tenant(&tenant).await?;
                print(&store.dismiss_notification(t.key, id, Actor::cli()).await?)
            }
        },
        Command::Tenant(TenantCommand::List) => print(&json!(store.list_tenants().await?)),
        Command::Tenant(TenantCommand::Delete { .. }) => unreachable!("handled by run"),
        Command::Tenant(TenantCommand::Export { tenant }) => {
            use std::io::Write as _;
            let t = store.tenant(&tenant).await?;
            let mut out = std::io::stdout().lock();
            for line in store.export_tenant(t.key, Actor::cli()).await? {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        Command::Tenant(TenantCommand::Restore { tenant }) => {
            let t = store.tenant(&tenant).await?;
            store.reopen_tenant(t.key, Actor::cli()).await?;
            print(&json!(store.tenant(&t.id).await?));
        }
        Command::Tenant(TenantCommand::Show { tenant }) => {
            print(&json!(store.tenant(&tenant).await?))
        }
        Command::Tenant(TenantCommand::Failures { tenant }) => {
            let t = store.tenant(&tenant).await?;
            print(&json!(store.provider_failures(t.key).await?))
        }
        Command::Token(TokenCommand::Rotate {
            tenant,
            id,
            overlap,
        }) => {
            let t = store.tenant(&tenant).await?;
            let (info, token, old) = store.rotate_token(t.key, id, overlap, Actor::cli()).await?;
            eprintln!(
                "token {} replaces {} (valid until {}) — shown once, store it now:",
                info.id,
                old.id,
                old.expires.unwrap_or_default()
            );
            println!("{token}");
        }
        Command::Token(TokenCommand::Issue { tenant, expires_in }) => {
            let t = store.tenant(&tenant).await?;
            let (info, token) = store.issue_token(t.key, expires_in, Actor::cli()).await?;
            eprintln!(
                "token {} for tenant {} — shown once, store it now:",
                info.id, t.name
            );
            println!("{token}");
        }
        Command::Token(TokenCommand::List { tenant }) => {
            let t = store.tenant(&tenant).await?;
            print(&json!(store.list_tokens(t.key).await?));
        }
        Command::Token(TokenCommand::Revoke { tenant, id }) => {
            let t = store.tenant(&tenant).await?;
            store.revoke_token(t.key, id.clone(), Actor::cli()).await?;
            eprintln!("token {id} revoked");
        }
        Command::AdminToken(cmd) => match cmd {
            AdminTokenCommand::Issue { tenant } => {
                let t = store.tenant(&tenant).await?;
                let (info, token) = store.issue_admin_token(t.key, Actor::cli()).await?;
                eprintln!(
                    "tenant admin token {} for tenant {} — shown once, store it now:",
                    info.id, t.name
                );
                println!("{token}");
            }
            AdminTokenCommand::List { tenant } => {
                let t = store.tenant(&tenant).await?;
                print(&json!(store.list_admin_tokens(t.key).await?));
            }
            AdminTokenCommand::Revoke { tenant, id } => {
                let t = store.tenant(&tenant).await?;
                store
                    .revoke_admin_token(t.key, id.clone(), Actor::cli())
                    .await?;
                eprintln!("admin token {id} revoked");
            }
        },
        Command::ProductToken(cmd) => product_token(cmd, store).await?,
        Command::License(cmd) => license(cmd, store).await?,
        Command::Reconcile { tenant } => {
            let t = store.tenant(&tenant).await?;
            print(&store.reconcile(t.key, Actor::cli()).await?);
        }
        Command::Status { tenant } => print(&store.status(store.tenant(&tenant).await?.key).await?),
        Command::Events {
            tenant,
            after,
            limit,
        } => print(
            &store
                .seat_events(store.tenant(&tenant).await?.key, after, limit)
                .await?,
        ),
    }
    Ok(())
}
