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
    /// non-zero naming the first broken entry. Prints each chain's head (`cursor:hash`): keep it,
    /// and pass it back with --expect-head to find a chain cut short or rewritten since.
    Verify {
        tenant: Option<String>,
        /// A head recorded earlier, `CURSOR:HASH` (of TENANT, or of the operator's chain with
        /// --operator), or `CHAIN=CURSOR:HASH` where CHAIN is a tenant id or `operator`;
        /// repeatable. The chain must still hold that entry with that hash.
        #[arg(long = "expect-head")]
        expect_head: Vec<String>,
        /// The operator's own chain.
        #[arg(long, conflicts_with = "tenant")]
        operator: bool,
    },
}

async fn audit_query(
    f: AuditFilter,
    store: &Store,
) -> anyhow::Result<(
    crate::store::TenantKey,
    crate::store::events::audit::AuditQuery,
)> {
    let tenant = match (&f.tenant, f.operator) {
        (Some(t), false) => store.tenant(t).await?.key,
        _ => crate::store::events::audit::OPERATOR_CHAIN,
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
        crate::store::events::audit::AuditQuery {
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
            let whole = q.whole();
            let mut last = None;
            let mut out = std::io::stdout().lock();
            loop {
                let page = store.audit_page(t, q.clone()).await?;
                for e in &page.entries {
                    serde_json::to_writer(&mut out, e)?;
                    out.write_all(b"\n")?;
                    last = Some(e.cursor);
                }
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
            out.flush()?;
            // Written out whole: with audit_retention_days, what it held may be pruned later.
            if let (true, Some(through)) = (whole, last) {
                store.audit_exported(t, through).await?;
            }
        }
        AuditCommand::Verify {
            tenant,
            expect_head,
            operator,
        } => {
            let t = match (&tenant, operator) {
                (Some(t), _) => Some(store.tenant(t).await?.key),
                (None, true) => Some(crate::store::events::audit::OPERATOR_CHAIN),
                (None, false) => None,
            };
            let verdicts = store.verify_audit(t).await?;
            print(&verdicts);
            for v in &verdicts {
                eprintln!(
                    "{}: head {}",
                    v.tenant,
                    v.head.as_deref().unwrap_or("(empty)")
                );
            }
            if let Some(v) = verdicts.iter().find(|v| v.broken.is_some()) {
                let b = v
                    .broken
                    .as_ref()
                    .map(|b| (b.cursor, b.at.clone(), b.action.clone(), b.reason.clone()));
                if let Some((cursor, at, action, reason)) = b {
                    if cursor == 0 {
                        anyhow::bail!("the audit chain of {} is broken: {reason}", v.tenant);
                    }
                    anyhow::bail!(
                        "the audit chain of {} is broken at entry {cursor} ({action} at {at}): {reason}",
                        v.tenant
                    );
                }
            }
            for expected in &expect_head {
                let (chain, head) = match expected.split_once('=') {
                    Some((c, h)) => (Some(c.to_owned()), h),
                    None => (None, expected.as_str()),
                };
                let key = match (chain.as_deref(), t) {
                    (Some("operator"), _) => crate::store::events::audit::OPERATOR_CHAIN,
                    (Some(c), _) => store.tenant(c).await?.key,
                    (None, Some(k)) => k,
                    (None, None) => anyhow::bail!(
                        "--expect-head {expected}: name the chain (CHAIN=CURSOR:HASH) or verify one tenant"
                    ),
                };
                let Some((cursor, hash)) = head
                    .split_once(':')
                    .and_then(|(c, h)| Some((c.parse::<i64>().ok()?, h)))
                else {
                    anyhow::bail!("--expect-head {expected}: expected CURSOR:HASH");
                };
                if store.audit_entry_hash(key, cursor).await?.as_deref() != Some(hash) {
                    anyhow::bail!(
                        "the audit chain no longer holds the head {head} recorded earlier: it was cut short or rewritten"
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
