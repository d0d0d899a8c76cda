//! Logging setup: `RUST_LOG` overrides the configured level; no timestamps under journald, which adds its own;
//! colour only on a terminal, and never with `NO_COLOR` set.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Whether log lines get ANSI colour: only when stderr is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>). journald, files and pipes get plain text.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&str>) -> bool {
    stderr_is_terminal && no_color.is_none_or(str::is_empty)
}

/// Installs the global subscriber writing to stderr. Safe to call once.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let no_color = std::env::var("NO_COLOR").ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour(std::io::stderr().is_terminal(), no_color.as_deref()));
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    let _ = result;
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (tty, no_color, want) in cases {
            assert_eq!(super::colour(tty, no_color), want, "{tty} {no_color:?}");
        }
    }
}
