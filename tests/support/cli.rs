//! Runs the `seatkeeper` CLI as an operator would: another process on a database.

/// Runs `seatkeeper ARGS` with `SEATKEEPER_DATABASE=database` (and no admin token from the
/// environment): (success, stdout, stderr).
pub fn cli(database: &std::path::Path, args: &[&str]) -> (bool, String, String) {
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
