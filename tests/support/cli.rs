//! Runs the `seatkeeper` CLI as an operator would: another process on a database.

/// Runs `seatkeeper ARGS` with `SEATKEEPER_DATABASE=database` (and no admin token from the
/// environment): (success, stdout, stderr).
pub fn cli(database: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    record_verb(args);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
        .args(args)
        .env("SEATKEEPER_DATABASE", database)
        .env_remove("SEATKEEPER_ADMIN_TOKEN")
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// With `SEATKEEPER_ROUTE_HITS=<file>`, appends the command line and the test's name to
/// `<file>.cli`, for `.ci/route-coverage` to list the tests of each CLI verb.
fn record_verb(args: &[&str]) {
    use std::io::Write as _;
    let Ok(file) = std::env::var("SEATKEEPER_ROUTE_HITS") else {
        return;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.split('-').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{file}.cli"))
    {
        let line = args.join(" ").replace(['\n', '\t'], " ");
        let _ = writeln!(f, "{line}\t{binary}::{test}");
    }
}
