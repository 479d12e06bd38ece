//! `seatkeeper backup` and `restore` on PostgreSQL, through PostgreSQL's own `pg_dump` (custom
//! format) and `pg_restore`. The password never goes on a command line (where `ps` would show
//! it): it is handed over in `PGPASSWORD`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::store::{Error, Result};

/// `pg_dump` or `pg_restore`: on `PATH`, else the newest under `/usr/lib/postgresql/*/bin`
/// (Debian's server packages).
fn tool(name: &str) -> Result<PathBuf> {
    if let Ok(paths) = std::env::var("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin").join(name))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.is_file());
    found.sort();
    found.pop().ok_or_else(|| {
        Error::Invalid(format!(
            "{name} not found: install PostgreSQL's client tools (Debian: postgresql-client)"
        ))
    })
}

/// The URL without its password, and the password.
fn split(url: &str) -> Result<(String, Option<String>)> {
    let mut u = url::Url::parse(url)
        .map_err(|_| Error::Invalid("database: not a PostgreSQL URL".into()))?;
    let password = u.password().map(|p| {
        url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    });
    let _ = u.set_password(None);
    Ok((u.to_string(), password))
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| Error::Internal(format!("{what} did not start: {e}")))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A consistent copy of the database (one snapshot, while nodes keep serving) in `file`.
pub(in crate::store) fn backup(url: &str, file: &Path) -> Result<()> {
    if file.exists() {
        return Err(Error::Invalid(format!(
            "{} exists; choose a new file",
            file.display()
        )));
    }
    let (url, password) = split(url)?;
    let mut cmd = Command::new(tool("pg_dump")?);
    cmd.args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(file)
        .arg("--dbname")
        .arg(&url);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    run(cmd, "pg_dump")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Internal(format!("{}: {e}", file.display())))?;
    }
    Ok(())
}

/// Loads a backup into an empty database (stop every node first, or restore into a new
/// database and point the nodes at it), in one transaction.
pub(in crate::store) fn restore(url: &str, file: &Path) -> Result<()> {
    let (url, password) = split(url)?;
    let mut cmd = Command::new(tool("pg_restore")?);
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--dbname",
    ])
    .arg(&url)
    .arg(file);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    run(cmd, "pg_restore")
}
