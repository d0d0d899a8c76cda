//! Prometheus metrics: counters and histograms kept in process (one registry for the process, as the
//! official clients do), gauges read from the database at scrape time, and the text exposition format 0.0.4
//! written by hand (a few lines; no client crate). Label values are bounded: provider account names from the
//! config, hook names the provider knows, outcomes and reasons from fixed lists; never numbers or ids.
//! Depends on nothing internal.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// Upper bounds of the latency histograms, in seconds.
const SECONDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the write batch size histogram.
const SIZES: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A metric family: its name, help, type and buckets.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Histogram(&'static [f64]),
}

/// Every family the process records (gauges read at scrape time are written by `render`).
const FAMILIES: [Family; 9] = [
    Family {
        name: "textback_webhooks_received_total",
        help: "Provider webhooks received, by provider account, hook and outcome (ok, refused, error).",
        kind: Kind::Counter,
    },
    Family {
        name: "textback_sends_total",
        help: "Attempts to hand a text to a provider, by provider account and outcome.",
        kind: Kind::Counter,
    },
    Family {
        name: "textback_provider_errors_total",
        help: "Provider errors on sends, by provider account and class (rejected, retryable, ambiguous).",
        kind: Kind::Counter,
    },
    Family {
        name: "textback_send_duration_seconds",
        help: "How long a provider took to take a text, by provider account.",
        kind: Kind::Histogram(&SECONDS),
    },
    Family {
        name: "textback_send_lateness_seconds",
        help: "How late a text reached the provider after it was due.",
        kind: Kind::Histogram(&SECONDS),
    },
    Family {
        name: "textback_event_deliveries_total",
        help: "Signed event deliveries, by outcome (delivered, retry, failed, gone).",
        kind: Kind::Counter,
    },
    Family {
        name: "textback_db_write_batch_size",
        help: "Writes committed together in one transaction (group commit).",
        kind: Kind::Histogram(&SIZES),
    },
    Family {
        name: "textback_db_commit_duration_seconds",
        help: "How long a write batch took from BEGIN to COMMIT, fsync included.",
        kind: Kind::Histogram(&SECONDS),
    },
    Family {
        name: "textback_db_write_failures_total",
        help: "Write batches that could not be committed.",
        kind: Kind::Counter,
    },
];

#[derive(Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// `a="x",b="y"`, escaped as the format asks.
fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds one to a counter.
pub fn inc(name: &'static str, pairs: &[(&str, &str)]) {
    if let Ok(mut r) = registry().lock() {
        *r.counters.entry((name, labels(pairs))).or_insert(0) += 1;
    }
}

/// Records one observation in a histogram.
pub fn observe(name: &'static str, pairs: &[(&str, &str)], value: f64) {
    let Some(bounds) = FAMILIES.iter().find_map(|f| match f.kind {
        Kind::Histogram(b) if f.name == name => Some(b),
        _ => None,
    }) else {
        return;
    };
    if let Ok(mut r) = registry().lock() {
        let h = r.histograms.entry((name, labels(pairs))).or_default();
        if h.buckets.is_empty() {
            h.buckets = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if value <= *b {
                h.buckets[i] += 1;
            }
        }
        h.sum += value;
        h.count += 1;
    }
}

/// Records a duration in milliseconds as seconds.
pub fn observe_ms(name: &'static str, pairs: &[(&str, &str)], ms: i64) {
    #[allow(clippy::cast_precision_loss)]
    observe(name, pairs, ms.max(0) as f64 / 1000.0);
}

/// A gauge read at scrape time: name, help, and its samples (labels, value).
pub struct Gauge {
    /// The metric's name.
    pub name: &'static str,
    /// What it measures.
    pub help: &'static str,
    /// Its samples: labels as pairs, and the value.
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

/// `name{labels}`, or `name` alone when there are none.
fn series(name: &str, labels: &str) -> String {
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

/// The exposition: every recorded family, then the gauges given.
pub fn render(gauges: &[Gauge]) -> String {
    let mut out = String::new();
    let Ok(r) = registry().lock() else {
        return out;
    };
    for f in &FAMILIES {
        match f.kind {
            Kind::Counter => {
                let _ = writeln!(
                    out,
                    "# HELP {} {}\n# TYPE {} counter",
                    f.name, f.help, f.name
                );
                for ((name, l), v) in r.counters.range((f.name, String::new())..) {
                    if *name != f.name {
                        break;
                    }
                    let _ = writeln!(out, "{} {v}", series(f.name, l));
                }
            }
            Kind::Histogram(bounds) => {
                let _ = writeln!(
                    out,
                    "# HELP {} {}\n# TYPE {} histogram",
                    f.name, f.help, f.name
                );
                for ((name, l), h) in r.histograms.range((f.name, String::new())..) {
                    if *name != f.name {
                        break;
                    }
                    let sep = if l.is_empty() { "" } else { "," };
                    for (b, n) in bounds.iter().zip(&h.buckets) {
                        let _ = writeln!(
                            out,
                            "{}_bucket{{{l}{sep}le=\"{}\"}} {n}",
                            f.name,
                            number(*b)
                        );
                    }
                    let _ = writeln!(out, "{}_bucket{{{l}{sep}le=\"+Inf\"}} {}", f.name, h.count);
                    let _ = writeln!(
                        out,
                        "{} {}",
                        series(&format!("{}_sum", f.name), l),
                        number(h.sum)
                    );
                    let _ = writeln!(
                        out,
                        "{} {}",
                        series(&format!("{}_count", f.name), l),
                        h.count
                    );
                }
            }
        }
    }
    drop(r);
    for g in gauges {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} gauge", g.name, g.help, g.name);
        for (pairs, v) in &g.samples {
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let _ = writeln!(out, "{} {}", series(g.name, &labels(&pairs)), number(*v));
        }
    }
    out
}

/// The process's resident memory in bytes and open file descriptors (connections included), from /proc.
pub fn process() -> (Option<f64>, Option<f64>) {
    #[allow(clippy::cast_precision_loss)]
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| (pages * 4096) as f64);
    #[allow(clippy::cast_precision_loss)]
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    (rss, fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_help_type_buckets_sum_and_count() {
        inc(
            "textback_event_deliveries_total",
            &[("outcome", "delivered")],
        );
        inc(
            "textback_event_deliveries_total",
            &[("outcome", "delivered")],
        );
        observe("textback_send_lateness_seconds", &[], 0.02);
        observe("textback_send_lateness_seconds", &[], 3.0);
        let text = render(&[Gauge {
            name: "textback_jobs_pending",
            help: "Jobs waiting.",
            samples: vec![(vec![("kind".into(), "text\"back".into())], 3.0)],
        }]);
        assert!(
            text.contains("# TYPE textback_event_deliveries_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("textback_event_deliveries_total{outcome=\"delivered\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("textback_send_lateness_seconds_bucket{le=\"0.025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("textback_send_lateness_seconds_bucket{le=\"5\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("textback_send_lateness_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("textback_send_lateness_seconds_count 2\n"),
            "{text}"
        );
        assert!(
            text.contains("textback_jobs_pending{kind=\"text\\\"back\"} 3\n"),
            "{text}"
        );
        assert!(text.ends_with('\n'));
    }
}
