//! `seatkeeper`: parse the command line, load the configuration, run.

use clap::Parser;
use seatkeeper::cli::{self, Cli};
use seatkeeper::config::{Config, LogFormat};

/// glibc's malloc gives every thread that allocates an arena of its own (up to eight per core)
/// and keeps what was freed in each; the daemon's threads (HTTP workers, blocking readers, the
/// writer) then hold far more memory than they use. Two arenas halved the peak RSS of the load
/// benchmark, but then the HTTP workers (one per core) shared an arena and waited on its lock
/// (a tenth of the CPU time of a read-heavy load went to that lock). Two plus one per core
/// keeps both: the workers allocate without contention and the peak RSS stays small.
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "one documented libc call, see SAFETY")]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(2 + cores).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets a parameter of the allocator; this runs first in main,
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("seatkeeper: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(file) = &config.audit_key_file {
        // Read (and checked) when the configuration was loaded.
        match std::fs::read(file) {
            Ok(content) => seatkeeper::store::events::audit::set_keys(&content),
            Err(e) => {
                eprintln!(
                    "seatkeeper: configuration error: audit_key_file: {}",
                    e.kind()
                );
                std::process::exit(2);
            }
        }
    }
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("seatkeeper: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seatkeeper: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
