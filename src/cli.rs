//! The command line: `serve` runs the daemon; the other verbs are admin actions run directly on
//! the database file (safe while the daemon runs: SQLite WAL serializes the writers).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::alloc::{OnLowered, OverrideKind, SeatState};
use crate::app::Application;
use crate::config::Config;
use crate::store::audit::Actor;
use crate::store::{GroupSelection, LicenseChange, LicenseSpec, Selector, Store};

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
    /// Write a consistent copy of the database to FILE while the daemon runs (SQLite online backup).
    Backup { file: PathBuf },
    /// Replace the database with a backup (stop the daemon first); the old file is kept aside.
    Restore { file: PathBuf },
    /// Integrity check and seat-invariant audit of every license; exit status 1 on problems.
    Check,
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
    /// The seat-event feed of a tenant after a cursor.
    Events {
        tenant: String,
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
}

/// Group selection and policy flags shared by `license create` and `license set`.
#[derive(clap::Args, Debug, Default)]
pub struct LicenseFlags {
    /// Select a group by displayName (repeatable).
    #[arg(long = "group", value_name = "DISPLAY_NAME")]
    pub groups: Vec<String>,
    /// Select a group by its SCIM id (repeatable).
    #[arg(long = "group-id", value_name = "ID")]
    pub group_ids: Vec<String>,
    /// Select a group by its externalId (repeatable).
    #[arg(long = "group-external-id", value_name = "EXTERNAL_ID")]
    pub group_external_ids: Vec<String>,
    /// Serve freed seats to the waitlist automatically.
    #[arg(long)]
    pub auto_promote: Option<bool>,
    /// Release grace in seconds (0 to 259200; default 7200 for a new license).
    #[arg(long)]
    pub grace_seconds: Option<i64>,
    /// On lowering the seat count below use: keep or block_newest.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(OnLowered::ALL.map(OnLowered::as_str)))]
    pub on_capacity_lowered: Option<String>,
    /// Free a deleted user's seat at once (true) or after the grace (false).
    #[arg(long)]
    pub free_on_delete: Option<bool>,
    /// A recipient of this license's emails besides the tenant's (repeatable; `EMAIL` or
    /// `EMAIL:KIND,KIND`); replaces the license's list.
    #[arg(long = "notify", value_name = "EMAIL[:KINDS]")]
    pub notify: Vec<String>,
    /// Remove the license's own recipients.
    #[arg(long, conflicts_with = "notify")]
    pub no_notify: bool,
    /// Reclaim a granted, unpinned seat unused this many days (0: never).
    #[arg(long)]
    pub reclaim_idle_days: Option<i64>,
    /// Tell the recipients this many days before a reclaim.
    #[arg(long)]
    pub reclaim_notice_days: Option<i64>,
    /// Agreed overage: seats granted beyond the count, billed at true-up.
    #[arg(long)]
    pub overage: Option<i64>,
    /// Agreed overage as a share of the seat count (instead of --overage).
    #[arg(long)]
    pub overage_percent: Option<i64>,
    /// Seats kept for a selected group's members: `GROUP=N`, GROUP as the selector names it
    /// (repeatable). Without --group flags, applies to the license's current groups.
    #[arg(long = "reserve", value_name = "GROUP=N")]
    pub reserve: Vec<String>,
    /// At most N seats for a selected group's members: `GROUP=N`, or `GROUP=none` to lift it
    /// (repeatable). A member counts against the first selected group containing them, in the
    /// order --group, --group-id, --group-external-id are given.
    #[arg(long = "max", value_name = "GROUP=N")]
    pub max: Vec<String>,
}

impl LicenseFlags {
    /// The groups the flags select, with their limits; with limits but no groups, the limits
    /// apply to `current` (the license's groups now).
    fn selectors(
        &self,
        current: Option<&crate::store::LicenseView>,
    ) -> anyhow::Result<Option<Vec<GroupSelection>>> {
        let mut s: Vec<GroupSelection> = self
            .groups
            .iter()
            .map(|g| Selector::DisplayName(g.clone()))
            .chain(self.group_ids.iter().map(|g| Selector::Id(g.clone())))
            .chain(
                self.group_external_ids
                    .iter()
                    .map(|g| Selector::ExternalId(g.clone())),
            )
            .map(GroupSelection::from)
            .collect();
        if self.reserve.is_empty() && self.max.is_empty() {
            return Ok((!s.is_empty()).then_some(s));
        }
        if s.is_empty() {
            let Some(l) = current else {
                anyhow::bail!("--reserve and --max name groups given with --group, --group-id or --group-external-id");
            };
            s = l.groups.iter().map(GroupSelection::from).collect();
        }
        for (flag, list) in [("--reserve", &self.reserve), ("--max", &self.max)] {
            for item in list {
                let Some((name, n)) = item.rsplit_once('=') else {
                    anyhow::bail!("{flag} takes GROUP=N, not {item:?}");
                };
                let Some(g) = s.iter_mut().find(|g| g.selector.parts().1 == name) else {
                    anyhow::bail!("{flag} {item:?}: the license selects no group named {name:?}");
                };
                let n = n.trim();
                if flag == "--max" && n.eq_ignore_ascii_case("none") {
                    g.max = None;
                    continue;
                }
                let n: i64 = n
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{flag} {item:?}: {n:?} is not a number"))?;
                if flag == "--reserve" {
                    g.reserve = n;
                } else {
                    g.max = Some(n);
                }
            }
        }
        Ok(Some(s))
    }
    fn lowered(&self) -> Option<OnLowered> {
        self.on_capacity_lowered
            .as_deref()
            .and_then(OnLowered::parse)
    }
}

#[derive(Subcommand, Debug)]
pub enum LicenseCommand {
    /// Create a license.
    Create {
        tenant: String,
        name: String,
        #[arg(long)]
        seats: i64,
        #[command(flatten)]
        flags: LicenseFlags,
    },
    /// Change a license (only the options given change; groups given replace the selection).
    Set {
        tenant: String,
        license: String,
        #[arg(long)]
        seats: Option<i64>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        flags: LicenseFlags,
    },
    /// Show one license, or list them all.
    Show {
        tenant: String,
        license: Option<String>,
    },
    /// Delete a license and its seats.
    Delete { tenant: String, license: String },
    /// List seats (or one user's seat with --user).
    Seats {
        tenant: String,
        license: String,
        #[arg(long, value_parser = ["granted", "blocked", "releasing"])]
        state: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
    /// What a vendor bills on over a period: peak use, days and seat-days over the seat count.
    TrueUp {
        tenant: String,
        license: String,
        /// First day (YYYY-MM-DD, UTC; default: the first of this month).
        #[arg(long)]
        from: Option<String>,
        /// Last day (default: today).
        #[arg(long)]
        to: Option<String>,
        /// Print CSV instead of JSON.
        #[arg(long)]
        csv: bool,
    },
    /// When the license runs out of seats at the present trend of demand.
    Forecast { tenant: String, license: String },
    /// Show what a seat count and/or selection would change, without changing it.
    Preview {
        tenant: String,
        license: String,
        #[arg(long)]
        seats: Option<i64>,
        #[command(flatten)]
        flags: LicenseFlags,
    },
    /// Pin (serve first), exclude (never grant) or clear an override for a user.
    Override {
        tenant: String,
        license: String,
        user: String,
        #[arg(value_parser = ["pin", "exclude", "none"])]
        kind: String,
    },
    /// Grant a waiting user a free seat by hand.
    Grant {
        tenant: String,
        license: String,
        user: String,
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
    },
    /// List tenants.
    List,
    /// Show one tenant (by id or name).
    Show { tenant: String },
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
pub enum ProductTokenCommand {
    /// Issue a product token (`skp_...`) for TENANT, or with --operator for every tenant;
    /// printed once, only its hash is kept.
    Issue {
        #[arg(required_unless_present = "operator")]
        tenant: Option<String>,
        #[arg(long, conflicts_with = "tenant")]
        operator: bool,
    },
    /// List the product tokens of TENANT, or with --operator the operator's (no secrets).
    List {
        #[arg(required_unless_present = "operator")]
        tenant: Option<String>,
        #[arg(long, conflicts_with = "tenant")]
        operator: bool,
    },
    /// Revoke a product token at once: `revoke TENANT ID`, or `revoke --operator ID`.
    Revoke {
        #[arg(num_args = 1..=2, required = true, value_name = "TENANT ID")]
        args: Vec<String>,
        #[arg(long)]
        operator: bool,
    },
}

/// Which entries of an audit log.
#[derive(clap::Args, Debug)]
pub struct AuditFilter {
    /// The tenant (id or name); omit with --operator for the operator's own acts.
    #[arg(required_unless_present = "operator")]
    tenant: Option<String>,
    #[arg(long, conflicts_with = "tenant")]
    operator: bool,
    /// Actors starting with this (operator, tenant-admin:, console:, cli:, reconciler).
    #[arg(long)]
    actor: Option<String>,
    /// This action, or actions starting with it when it ends with a dot (license.).
    #[arg(long)]
    action: Option<String>,
    /// From this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Up to this time (RFC 3339 or YYYY-MM-DD, the whole day).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// The newest entries (`--before CURSOR` for older ones).
    List {
        #[command(flatten)]
        filter: AuditFilter,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        before: Option<i64>,
    },
    /// Every matching entry, oldest first, as JSON lines on stdout.
    Export {
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// Checks the hash chain of TENANT (every tenant's and the operator's without one); exits
    /// non-zero naming the first broken entry.
    Verify { tenant: Option<String> },
}

/// `TENANT [ID...]`, or `--operator [ID...]`: whose endpoint.
#[derive(clap::Args, Debug)]
pub struct WebhookOwner {
    /// The tenant (id or name), then the webhook id where the verb takes one; with
    /// --operator, only the webhook id.
    #[arg(value_name = "TENANT [ID]", num_args = 0..=3)]
    args: Vec<String>,
    /// The operator's endpoints (every tenant's events).
    #[arg(long)]
    operator: bool,
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Register an endpoint: `add TENANT --url URL [--event TYPE]...` (every type when none);
    /// prints its id and signing secret (`whsec_...`, shown once).
    Add {
        #[command(flatten)]
        owner: WebhookOwner,
        #[arg(long)]
        url: String,
        /// seat.granted, seat.blocked, seat.releasing, seat.released or license.updated
        /// (repeatable).
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
    },
    /// The endpoints (no secrets).
    List {
        #[command(flatten)]
        owner: WebhookOwner,
    },
    /// Delete an endpoint and its deliveries: `remove TENANT ID`.
    Remove {
        #[command(flatten)]
        owner: WebhookOwner,
    },
    /// A new signing secret (the old one keeps signing beside it for a day): `rotate TENANT ID`.
    Rotate {
        #[command(flatten)]
        owner: WebhookOwner,
    },
    /// Enable an endpoint again (its waiting deliveries go out): `enable TENANT ID`.
    Enable {
        #[command(flatten)]
        owner: WebhookOwner,
    },
    /// Stop sending to an endpoint: `disable TENANT ID`.
    Disable {
        #[command(flatten)]
        owner: WebhookOwner,
    },
    /// An endpoint's deliveries, newest first: `deliveries TENANT ID [--state S]`.
    Deliveries {
        #[command(flatten)]
        owner: WebhookOwner,
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Send one delivery again: `redeliver TENANT ID MSG_ID`.
    Redeliver {
        #[command(flatten)]
        owner: WebhookOwner,
    },
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

async fn product_token(cmd: ProductTokenCommand, store: &Store) -> anyhow::Result<()> {
    let owner = |tenant: Option<String>| async move {
        match tenant {
            Some(t) => anyhow::Ok(Some(store.tenant(&t).await?)),
            None => anyhow::Ok(None),
        }
    };
    match cmd {
        ProductTokenCommand::Issue { tenant, .. } => {
            let t = owner(tenant).await?;
            let (info, token) = store
                .issue_product_token(t.as_ref().map(|t| t.key), Actor::cli())
                .await?;
            match &t {
                Some(t) => eprintln!(
                    "product token {} for tenant {} — shown once, store it now:",
                    info.id, t.name
                ),
                None => eprintln!(
                    "operator product token {} (every tenant) — shown once, store it now:",
                    info.id
                ),
            }
            println!("{token}");
        }
        ProductTokenCommand::List { tenant, .. } => {
            let t = owner(tenant).await?;
            print(&json!(store.list_product_tokens(t.map(|t| t.key)).await?));
        }
        ProductTokenCommand::Revoke { args, operator } => {
            let (tenant, id) = match (operator, args.as_slice()) {
                (true, [id]) => (None, id.clone()),
                (false, [tenant, id]) => (Some(tenant.clone()), id.clone()),
                _ => anyhow::bail!("give TENANT ID, or --operator ID"),
            };
            let t = owner(tenant).await?;
            store
                .revoke_product_token(t.map(|t| t.key), id.clone(), Actor::cli())
                .await?;
            eprintln!("product token {id} revoked");
        }
    }
    Ok(())
}

/// `--notify` values: `EMAIL` or `EMAIL:KIND,KIND`.
/// The owner and the ids a webhook verb names: `want` ids after TENANT (or after --operator).
async fn webhook_target(
    owner: WebhookOwner,
    want: usize,
    store: &Store,
) -> anyhow::Result<(Option<crate::store::TenantKey>, Vec<String>)> {
    let mut args = owner.args;
    let tenant = if owner.operator {
        None
    } else if args.is_empty() {
        anyhow::bail!("name the tenant (or give --operator)")
    } else {
        Some(store.tenant(&args.remove(0)).await?.key)
    };
    if args.len() != want {
        anyhow::bail!(
            "expected {want} id(s) after the {}, got {}",
            if owner.operator {
                "--operator flag"
            } else {
                "tenant"
            },
            args.len()
        );
    }
    Ok((tenant, args))
}

async fn webhook(cmd: WebhookCommand, store: &Store, config: &Config) -> anyhow::Result<()> {
    use crate::store::webhooks::WebhookChange;
    let enabled = |on: bool| WebhookChange {
        enabled: Some(on),
        ..WebhookChange::default()
    };
    match cmd {
        WebhookCommand::Add { owner, url, events } => {
            let (t, _) = webhook_target(owner, 0, store).await?;
            let policy = crate::webhook::dispatcher::Policy::of(config);
            crate::webhook::dispatcher::vet(&url, policy).await?;
            let w = store.create_webhook(t, url, events, Actor::cli()).await?;
            eprintln!(
                "webhook {} registered; its signing secret is shown once, store it now:",
                w.id
            );
            println!("{}", w.secret);
        }
        WebhookCommand::List { owner } => {
            let (t, _) = webhook_target(owner, 0, store).await?;
            print(&store.list_webhooks(t).await?);
        }
        WebhookCommand::Remove { owner } => {
            let (t, ids) = webhook_target(owner, 1, store).await?;
            store
                .delete_webhook(t, ids[0].clone(), Actor::cli())
                .await?;
            eprintln!("webhook {} removed", ids[0]);
        }
        WebhookCommand::Rotate { owner } => {
            let (t, ids) = webhook_target(owner, 1, store).await?;
            let w = store
                .rotate_webhook_secret(t, ids[0].clone(), Actor::cli())
                .await?;
            eprintln!(
                "webhook {}: new signing secret (the old one signs beside it for a day), shown once:",
                w.id
            );
            println!("{}", w.secret);
        }
        WebhookCommand::Enable { owner } => {
            let (t, ids) = webhook_target(owner, 1, store).await?;
            print(
                &store
                    .update_webhook(t, ids[0].clone(), enabled(true), Actor::cli())
                    .await?,
            );
        }
        WebhookCommand::Disable { owner } => {
            let (t, ids) = webhook_target(owner, 1, store).await?;
            print(
                &store
                    .update_webhook(t, ids[0].clone(), enabled(false), Actor::cli())
                    .await?,
            );
        }
        WebhookCommand::Deliveries {
            owner,
            state,
            limit,
        } => {
            let (t, ids) = webhook_target(owner, 1, store).await?;
            print(
                &store
                    .webhook_deliveries(t, ids[0].clone(), state, limit.clamp(1, 1000))
                    .await?,
            );
        }
        WebhookCommand::Redeliver { owner } => {
            let (t, ids) = webhook_target(owner, 2, store).await?;
            print(
                &store
                    .redeliver_webhook(t, ids[0].clone(), ids[1].clone(), Actor::cli())
                    .await?,
            );
        }
    }
    Ok(())
}

async fn audit_query(
    f: AuditFilter,
    store: &Store,
) -> anyhow::Result<(crate::store::TenantKey, crate::store::audit::AuditQuery)> {
    let tenant = match (&f.tenant, f.operator) {
        (Some(t), false) => store.tenant(t).await?.key,
        _ => crate::store::audit::OPERATOR_CHAIN,
    };
    let time = |v: &Option<String>, end: bool| -> anyhow::Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                crate::http::audit::parse_time(s, end)
                    .ok_or_else(|| anyhow::anyhow!("{s:?} is not an RFC 3339 time or YYYY-MM-DD"))
            })
            .transpose()
    };
    Ok((
        tenant,
        crate::store::audit::AuditQuery {
            actor: f.actor.clone(),
            action: f.action.clone(),
            from: time(&f.from, false)?,
            to: time(&f.to, true)?,
            limit: 100,
            ..Default::default()
        },
    ))
}

async fn audit(cmd: AuditCommand, store: &Store) -> anyhow::Result<()> {
    use std::io::Write as _;
    match cmd {
        AuditCommand::List {
            filter,
            limit,
            before,
        } => {
            let (t, mut q) = audit_query(filter, store).await?;
            q.limit = limit.clamp(1, 10_000);
            q.before = before;
            print(&store.audit_page(t, q).await?);
        }
        AuditCommand::Export { filter } => {
            let (t, mut q) = audit_query(filter, store).await?;
            q.limit = 1000;
            q.after = Some(0);
            let mut out = std::io::stdout().lock();
            loop {
                let page = store.audit_page(t, q.clone()).await?;
                for e in &page.entries {
                    serde_json::to_writer(&mut out, e)?;
                    out.write_all(b"\n")?;
                }
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
        }
        AuditCommand::Verify { tenant } => {
            let t = match tenant {
                Some(t) => Some(store.tenant(&t).await?.key),
                None => None,
            };
            let verdicts = store.verify_audit(t).await?;
            print(&verdicts);
            if let Some(v) = verdicts.iter().find(|v| v.broken.is_some()) {
                let b = v
                    .broken
                    .as_ref()
                    .map(|b| (b.cursor, b.at.clone(), b.action.clone(), b.reason.clone()));
                if let Some((cursor, at, action, reason)) = b {
                    anyhow::bail!(
                        "the audit chain of {} is broken at entry {cursor} ({action} at {at}): {reason}",
                        v.tenant
                    );
                }
            }
            let checked: i64 = verdicts.iter().map(|v| v.checked).sum();
            eprintln!(
                "audit chains whole: {checked} entries checked in {} chains",
                verdicts.len()
            );
        }
    }
    Ok(())
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
        if !crate::store::pg::is_url(to) {
            anyhow::bail!("--to takes a postgres:// or postgresql:// URL");
        }
        if config
            .database
            .to_str()
            .is_some_and(crate::store::pg::is_url)
        {
            anyhow::bail!(
                "the configured database is PostgreSQL already; transfer copies a SQLite file"
            );
        }
        let (from, to) = (config.database.clone(), to.clone());
        // The PostgreSQL client blocks: off the async runtime.
        let copied =
            tokio::task::spawn_blocking(move || crate::store::transfer::transfer(&from, &to))
                .await??;
        let total: i64 = copied.tables.iter().map(|(_, n)| n).sum();
        for (table, n) in &copied.tables {
            println!("{table:>14} {n:>10}");
        }
        eprintln!(
            "copied {total} rows from {} and verified them (row counts and the seat audit)",
            config.database.display()
        );
        return Ok(());
    }
    if let Command::Restore { file } = &cli.command {
        if config
            .database
            .to_str()
            .is_some_and(crate::store::pg::is_url)
        {
            anyhow::bail!("restore replaces a SQLite file; restore PostgreSQL with its own tools (pg_restore, PITR)");
        }
        crate::store::maintenance::restore(file, &config.database)?;
        eprintln!(
            "restored {} from {}",
            config.database.display(),
            file.display()
        );
        return Ok(());
    }
    let store = Store::open(&config.database)?;
    let result = match cli.command {
        Command::Webhook(cmd) => webhook(cmd, &store, &config).await,
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
        | Command::Restore { .. }
        | Command::Transfer { .. }
        | Command::Webhook(_)
        | Command::Audit(_) => {
            unreachable!("handled by run")
        }
        Command::Backup { file } => {
            store.backup(file.clone()).await?;
            eprintln!("backup written to {}", file.display());
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
        Command::Tenant(TenantCommand::Show { tenant }) => {
            print(&json!(store.tenant(&tenant).await?))
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

async fn license(cmd: LicenseCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        LicenseCommand::Create {
            tenant,
            name,
            seats,
            flags,
        } => {
            let t = store.tenant(&tenant).await?.key;
            let spec = LicenseSpec {
                name,
                seats,
                groups: flags.selectors(None)?.unwrap_or_default(),
                auto_promote: flags.auto_promote.unwrap_or(true),
                grace_seconds: flags
                    .grace_seconds
                    .unwrap_or(crate::store::DEFAULT_GRACE_SECONDS),
                on_capacity_lowered: flags.lowered().unwrap_or(OnLowered::Keep),
                free_on_delete: flags.free_on_delete.unwrap_or(true),
                notify: recipients(&flags.notify)?,
                reclaim_idle_days: flags.reclaim_idle_days.unwrap_or(0),
                reclaim_notice_days: flags.reclaim_notice_days.unwrap_or(3),
                overage: flags.overage.unwrap_or(0),
                overage_percent: flags.overage_percent.unwrap_or(0),
            };
            print(&json!(store.create_license(t, spec, Actor::cli()).await?));
        }
        LicenseCommand::Set {
            tenant,
            license,
            seats,
            name,
            flags,
        } => {
            let t = store.tenant(&tenant).await?.key;
            let current = store.license(t, license.clone()).await?;
            let change = LicenseChange {
                name,
                seats,
                groups: flags.selectors(Some(&current))?,
                auto_promote: flags.auto_promote,
                grace_seconds: flags.grace_seconds,
                on_capacity_lowered: flags.lowered(),
                free_on_delete: flags.free_on_delete,
                notify: (flags.no_notify || !flags.notify.is_empty())
                    .then(|| recipients(&flags.notify))
                    .transpose()?,
                reclaim_idle_days: flags.reclaim_idle_days,
                reclaim_notice_days: flags.reclaim_notice_days,
                overage: flags.overage,
                overage_percent: flags.overage_percent,
            };
            print(&json!(
                store
                    .update_license(t, license, change, Actor::cli())
                    .await?
            ));
        }
        LicenseCommand::Show { tenant, license } => {
            let t = store.tenant(&tenant).await?.key;
            match license {
                Some(l) => print(&json!(store.license(t, l).await?)),
                None => print(&json!(store.list_licenses(t).await?)),
            }
        }
        LicenseCommand::Delete { tenant, license } => {
            let t = store.tenant(&tenant).await?.key;
            store
                .delete_license(t, license.clone(), Actor::cli())
                .await?;
            eprintln!("license {license} deleted");
        }
        LicenseCommand::Seats {
            tenant,
            license,
            state,
            user,
        } => {
            let t = store.tenant(&tenant).await?.key;
            match user {
                Some(u) => print(&json!(store.seat_of(t, license, u).await?)),
                None => print(&json!(
                    store
                        .seats(t, license, state.as_deref().and_then(SeatState::parse))
                        .await?
                )),
            }
        }
        LicenseCommand::TrueUp {
            tenant,
            license,
            from,
            to,
            csv,
        } => {
            let t = store.tenant(&tenant).await?.key;
            let today = crate::capacity::day_name(crate::capacity::day_of(store.now_ms()));
            let from = from.unwrap_or_else(|| format!("{}01", &today[..8]));
            let report = store.true_up(t, license, from, to.unwrap_or(today)).await?;
            if csv {
                print!("{}", crate::capacity::true_up_csv(&report.true_up));
            } else {
                print(&json!(report));
            }
        }
        LicenseCommand::Forecast { tenant, license } => {
            let t = store.tenant(&tenant).await?.key;
            print(&json!(store.forecast(t, license).await?));
        }
        LicenseCommand::Preview {
            tenant,
            license,
            seats,
            flags,
        } => {
            let t = store.tenant(&tenant).await?.key;
            let current = store.license(t, license.clone()).await?;
            let groups = flags.selectors(Some(&current))?;
            if seats.is_none() && groups.is_none() {
                anyhow::bail!("give --seats and/or --group/--group-id/--group-external-id");
            }
            print(&json!(store.preview(t, license, seats, groups).await?));
        }
        LicenseCommand::Override {
            tenant,
            license,
            user,
            kind,
        } => {
            let t = store.tenant(&tenant).await?.key;
            let kind = match kind.as_str() {
                "pin" => Some(OverrideKind::Pin),
                "exclude" => Some(OverrideKind::Exclude),
                _ => None,
            };
            print(&json!(
                store
                    .set_override(t, license, user, kind, Actor::cli())
                    .await?
            ));
        }
        LicenseCommand::Grant {
            tenant,
            license,
            user,
        } => {
            let t = store.tenant(&tenant).await?.key;
            print(&json!(store.grant(t, license, user, Actor::cli()).await?));
        }
    }
    Ok(())
}
