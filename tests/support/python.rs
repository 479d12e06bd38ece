//! Python tools the tests drive (the SCIM conformance checkers, a real SMTP server), installed
//! once per requirements file into a virtualenv under cargo's target directory. Python 3 with
//! venv is the only prerequisite; PyPI must be reachable the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The python of virtualenv `name`, created and filled from `requirements` on first use (and
/// again whenever the requirements change). Safe to call from concurrent tests (one lock per
/// process) and test binaries (the virtualenv is built aside and renamed into place).
pub fn venv(name: &str, requirements: &Path) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = dir.join("bin/python");
    let wanted = std::fs::read_to_string(requirements).unwrap();
    let marker = dir.join("installed.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let aside = dir.with_extension(format!("building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&aside);
        run(Command::new("python3").args(["-m", "venv"]).arg(&aside));
        run(Command::new(aside.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements));
        std::fs::write(aside.join("installed.txt"), &wanted).unwrap();
        // Another binary may have finished first: either copy serves.
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
            let _ = std::fs::remove_dir_all(&dir);
            if std::fs::rename(&aside, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&aside);
            }
        } else {
            let _ = std::fs::remove_dir_all(&aside);
        }
    }
    python
}
