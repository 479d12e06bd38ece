//! `seatkeeper license ...`: create, list, show, change (seats, groups and their limits, policy,
//! mode), delete, preview, seats, grant, pin and exclude, and shadow mode's carried-over
//! holders and report.

use super::*;

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
    /// `observe` (shadow mode: nothing enforced outward, see `license shadow`) or `enforce`
    /// (serves the people carried over with `license holders` first).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["enforce", "observe"]))]
    pub mode: Option<String>,
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
    fn mode(&self) -> Option<crate::store::LicenseMode> {
        self.mode
            .as_deref()
            .and_then(crate::store::LicenseMode::parse)
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
    /// List a license's overrides: pins, exclusions and idle reclaims, with who set each.
    Overrides { tenant: String, license: String },
    /// Every seat one user (by userName) holds or waits for, across the tenant's licenses.
    UserSeats { tenant: String, user: String },
    /// What idle-seat reclaim would take at its next pass, and within the notice period.
    Reclaim { tenant: String, license: String },
    /// Carry over the people who hold a seat today (a license in observe mode): a file with
    /// one user reference per line, or CSV whose first column holds them (`-`: standard input).
    /// They are served first, in that order, when the license switches to enforce.
    Holders {
        tenant: String,
        license: String,
        file: String,
        /// Forget the people carried over before instead of adding to them (the file may be
        /// empty then).
        #[arg(long)]
        replace: bool,
    },
    /// What enforcing a license in observe mode would do: who keeps a seat, gains one, waits,
    /// or loses one.
    Shadow {
        tenant: String,
        license: String,
        /// At most this many people per list.
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
}

pub(super) async fn license(cmd: LicenseCommand, store: &Store) -> anyhow::Result<()> {
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
                mode: flags.mode().unwrap_or_default(),
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
                mode: flags.mode(),
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
                Some(u) => print(&json!(store.seat_of(t, license, u, true).await?)),
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
            print(&json!(
                store.preview(t, license, seats, groups, None).await?
            ));
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
        LicenseCommand::Overrides { tenant, license } => {
            let t = store.tenant(&tenant).await?.key;
            print(&json!(store.override_list(t, license).await?));
        }
        LicenseCommand::UserSeats { tenant, user } => {
            let t = store.tenant(&tenant).await?.key;
            print(&json!(store.seats_of_user(t, user).await?));
        }
        LicenseCommand::Reclaim { tenant, license } => {
            let t = store.tenant(&tenant).await?.key;
            print(&json!(store.reclaim_preview(t, license).await?));
        }
        LicenseCommand::Holders {
            tenant,
            license,
            file,
            replace,
        } => {
            let t = store.tenant(&tenant).await?.key;
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?
            };
            let refs = crate::csv::first_column(&text);
            if replace {
                store
                    .clear_holders(t, license.clone(), Actor::cli())
                    .await?;
                if refs.is_empty() {
                    print(&json!(store.license(t, license).await?));
                    return Ok(());
                }
            }
            if refs.is_empty() {
                anyhow::bail!("{file} names nobody: one user reference per line");
            }
            print(&json!(
                store.carry_holders(t, license, refs, Actor::cli()).await?
            ));
        }
        LicenseCommand::Shadow {
            tenant,
            license,
            limit,
        } => {
            let t = store.tenant(&tenant).await?.key;
            print(&json!(store.shadow(t, license, limit, Actor::cli()).await?));
        }
    }
    Ok(())
}
