//! The command line: `serve` runs the daemon; the other verbs are admin actions run directly on
//! the database file (safe while the daemon runs: SQLite WAL serializes the writers).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::app::Application;
use crate::config::Config;
use crate::store::Store;

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
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        name: String,
        /// A notification recipient (repeatable).
        #[arg(long = "notify", value_name = "EMAIL")]
        notify: Vec<String>,
    },
    /// List tenants.
    List,
    /// Show one tenant (by id or name).
    Show { tenant: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a SCIM token for a tenant; it is printed once and only its hash is kept.
    Issue { tenant: String },
    /// List a tenant's tokens (no secrets).
    List { tenant: String },
    /// Revoke a token at once.
    Revoke { tenant: String, id: String },
}

fn print(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs a parsed command line with a loaded configuration.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let Command::Serve = cli.command {
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        return Ok(());
    }
    let store = Store::open(&config.database)?;
    let result = admin(cli.command, &store).await;
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.close()).await.ok();
    result
}

async fn admin(command: Command, store: &Store) -> anyhow::Result<()> {
    match command {
        Command::Serve => unreachable!("handled by run"),
        Command::Tenant(TenantCommand::Create { name, notify }) => {
            print(&json!(store.create_tenant(name, notify).await?));
        }
        Command::Tenant(TenantCommand::List) => print(&json!(store.list_tenants().await?)),
        Command::Tenant(TenantCommand::Show { tenant }) => {
            print(&json!(store.tenant(&tenant).await?))
        }
        Command::Token(TokenCommand::Issue { tenant }) => {
            let t = store.tenant(&tenant).await?;
            let (info, token) = store.issue_token(t.key).await?;
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
            store.revoke_token(t.key, id.clone()).await?;
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}
