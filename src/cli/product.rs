//! The product's side from the shell: product tokens (`seatkeeper product-token ...`) and
//! webhooks (`seatkeeper webhook ...`), a tenant's or the operator's.

use super::*;

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

pub(super) async fn product_token(cmd: ProductTokenCommand, store: &Store) -> anyhow::Result<()> {
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

pub(super) async fn webhook(
    cmd: WebhookCommand,
    store: &Store,
    config: &Config,
) -> anyhow::Result<()> {
    use crate::store::events::webhooks::WebhookChange;
    let enabled = |on: bool| WebhookChange {
        enabled: Some(on),
        ..WebhookChange::default()
    };
    match cmd {
        WebhookCommand::Add { owner, url, events } => {
            let (t, _) = webhook_target(owner, 0, store).await?;
            let policy = crate::webhook::vet::Policy::of(config);
            crate::webhook::vet::vet(&url, policy).await?;
            let w = store
                .create_webhook(
                    t,
                    url,
                    events,
                    Actor::cli(),
                    config.webhook_max_endpoints_per_tenant,
                )
                .await?;
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
