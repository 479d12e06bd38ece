//! `seatkeeper audit ...`: read, filter, export and verify the tamper-evident audit log.

use super::*;

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

pub(super) async fn audit(cmd: AuditCommand, store: &Store) -> anyhow::Result<()> {
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
