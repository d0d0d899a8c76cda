//! Logging setup: `RUST_LOG` overrides the configured level; no timestamps under journald, which adds its own;
//! colour only on a terminal, and never with `NO_COLOR` set.

use std::io::IsTerminal;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Reads a level or a list of `target=level` directives ("info", "textback=debug,warn"). Targets, not
/// EnvFilter: the same grammar for everything an operator writes here, without a regex engine in the binary.
/// Every level must be a level's name: a bare "infoo" would otherwise be read as a target and silence the log.
pub fn filter(spec: &str) -> Result<Targets, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let refuse = || {
        format!(
            "{spec:?} is not a log level such as \"info\", \"debug\" or \"textback=debug,warn\""
        )
    };
    for directive in spec.split(',').map(str::trim) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(refuse());
        }
    }
    spec.trim().parse::<Targets>().map_err(|_| refuse())
}

/// Whether log lines get ANSI colour: only when stderr is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>). journald, files and pipes get plain text.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&str>) -> bool {
    stderr_is_terminal && no_color.is_none_or(str::is_empty)
}

/// Installs the global subscriber writing to stderr. Safe to call once.
pub fn init(level: &str) {
    let targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| filter(&spec).ok())
        .or_else(|| filter(level).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let no_color = std::env::var("NO_COLOR").ok();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour(std::io::stderr().is_terminal(), no_color.as_deref()));
    let registry = tracing_subscriber::registry().with(targets);
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        registry.with(fmt.without_time()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    let _ = result;
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels_and_directives_are_read_and_nonsense_refused() {
        for good in [
            "info",
            "debug",
            "warn",
            "textback=debug",
            "textback=debug,warn",
            " error ",
        ] {
            assert!(super::filter(good).is_ok(), "{good}");
        }
        for bad in ["loud", "textback=loud", "info,,=x="] {
            let err = super::filter(bad).unwrap_err();
            assert!(err.contains("is not a log level"), "{bad}: {err}");
        }
    }

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
