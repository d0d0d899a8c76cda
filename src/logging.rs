//! Logging setup: `RUST_LOG` overrides the configured level; no timestamps under journald, which adds its own;
//! colour only on a terminal, and never with `NO_COLOR` set; or one JSON object per line for log shippers.

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
pub fn init(level: &str, format: crate::config::LogFormat) {
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
    let result = if format == crate::config::LogFormat::Json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .event_format(Json),
            )
            .try_init()
    } else if std::env::var_os("JOURNAL_STREAM").is_some() {
        registry.with(fmt.without_time()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    let _ = result;
}

/// One JSON object per event: `ts` (RFC 3339 UTC), `level`, `target`, `message`, the event's `fields`, and
/// the `spans` it happened in (their names and fields as text). Written here rather than with
/// tracing-subscriber's `json` feature, which would bring its own serializer for the same result.
struct Json;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Json
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = serde_json::Map::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let spans: Vec<serde_json::Value> = ctx
            .event_scope()
            .into_iter()
            .flat_map(tracing_subscriber::registry::Scope::from_root)
            .map(|span| {
                let ext = span.extensions();
                let text = ext
                    .get::<tracing_subscriber::fmt::FormattedFields<N>>()
                    .map(|f| f.fields.clone())
                    .unwrap_or_default();
                serde_json::json!({ "name": span.name(), "fields": text })
            })
            .collect();
        let meta = event.metadata();
        let line = serde_json::json!({
            "ts": crate::clock::format_rfc3339(crate::clock::to_millis(std::time::SystemTime::now())),
            "level": meta.level().as_str(),
            "target": meta.target(),
            "message": message,
            "fields": fields,
            "spans": spans,
        });
        writeln!(writer, "{line}")
    }
}

/// Collects an event's fields as JSON values.
struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
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
