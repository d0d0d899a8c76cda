//! Logging setup: `RUST_LOG` overrides the configured level; no timestamps under journald, which adds its own.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber writing to stderr. Safe to call once.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().with_ansi(false).try_init()
    } else {
        builder.try_init()
    };
    let _ = result;
}
