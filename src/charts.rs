//! Server-rendered SVG charts for the dashboard: pure functions from numbers to markup. Colours come from
//! CSS classes, so the charts follow the page's light or dark theme.

use std::fmt::Write;

/// One day's bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// Label under the bars, e.g. `11-28`.
    pub label: String,
    /// Missed calls.
    pub missed: u32,
    /// Of which recovered (booked).
    pub recovered: u32,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How wide a chart is drawn, in SVG units: text keeps its size in these units, so the narrow variant,
/// shown on phones at about its own width, keeps labels as readable as the wide one on a desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// For screens wider than a phone.
    Wide,
    /// For a phone, 360 px or so.
    Narrow,
}

/// Missed and recovered calls per day, as paired bars with a legend.
pub fn daily(days: &[Day], width: Width) -> String {
    let w = match width {
        Width::Wide => 640.0_f64,
        Width::Narrow => 340.0_f64,
    };
    let (h, top, bottom, left) = (220.0_f64, 24.0_f64, 28.0_f64, 28.0_f64);
    let labels = match width {
        Width::Wide => 10,
        Width::Narrow => 4,
    };
    let max = days
        .iter()
        .map(|d| d.missed.max(d.recovered))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (w - left) / days.len().max(1) as f64;
    let bar = (slot * 0.38).max(1.0);
    let scale = (h - top - bottom) / f64::from(max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Missed and recovered calls per day\">"
    );
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{}\" x2=\"{w}\" y2=\"{}\"/>",
        h - bottom,
        h - bottom
    );
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{}\">{max}</text><text x=\"0\" y=\"{}\">0</text>",
        top + 4.0,
        h - bottom
    );
    let every = days.len().div_ceil(labels).max(1);
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.1;
        let hm = f64::from(d.missed) * scale;
        let hr = f64::from(d.recovered) * scale;
        let _ = write!(
            svg,
            "<rect class=\"missed\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{hm:.1}\"><title>{}: {} missed</title></rect>",
            h - bottom - hm,
            escape(&d.label),
            d.missed
        );
        let _ = write!(
            svg,
            "<rect class=\"recovered\" x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{hr:.1}\"><title>{}: {} recovered</title></rect>",
            x + bar,
            h - bottom - hr,
            escape(&d.label),
            d.recovered
        );
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\">{}</text>",
                h - 8.0,
                escape(&d.label)
            );
        }
    }
    let _ = write!(
        svg,
        "<rect class=\"missed\" x=\"{left}\" y=\"4\" width=\"10\" height=\"10\"/><text x=\"{}\" y=\"13\">missed</text>\
         <rect class=\"recovered\" x=\"{}\" y=\"4\" width=\"10\" height=\"10\"/><text x=\"{}\" y=\"13\">recovered</text></svg>",
        left + 14.0,
        left + 80.0,
        left + 94.0
    );
    svg
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Missed calls by weekday (rows, Monday first) and hour of day (columns): darker means more.
pub fn heatmap(counts: &[[u32; 24]; 7], width: Width) -> String {
    let (cell, left, top) = match width {
        Width::Wide => (24.0_f64, 36.0_f64, 18.0_f64),
        Width::Narrow => (12.5_f64, 36.0_f64, 18.0_f64),
    };
    let step = match width {
        Width::Wide => 3,
        Width::Narrow => 6,
    };
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    let (w, h) = (left + cell * 24.0, top + cell * 7.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Missed calls by weekday and hour\">"
    );
    for hour in (0..24).step_by(step) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"12\">{hour:02}</text>",
            left + cell * f64::from(hour)
        );
    }
    for (d, row) in counts.iter().enumerate() {
        let y = top + cell * d as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\">{}</text>",
            y + cell * 0.65,
            WEEKDAYS[d]
        );
        for (hour, &n) in row.iter().enumerate() {
            let x = left + cell * hour as f64;
            let opacity = if n == 0 {
                0.06
            } else {
                0.2 + 0.8 * f64::from(n) / f64::from(max)
            };
            let _ = write!(
                svg,
                "<rect class=\"recovered\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill-opacity=\"{opacity:.2}\"><title>{} {hour:02}:00: {n} missed</title></rect>",
                cell - 2.0,
                cell - 2.0,
                WEEKDAYS[d]
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
        let channel = |shift: u32| {
            let c = f64::from((v >> shift) & 0xff) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(16) + 0.7152 * channel(8) + 0.0722 * channel(0)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    /// The value of `--name:` in a block of the stylesheet.
    fn var(block: &str, name: &str) -> String {
        let at = block.find(&format!("--{name}:")).unwrap() + name.len() + 3;
        block[at..]
            .trim_start()
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn chart_series_stand_out_from_the_page_in_light_and_dark() {
        let css =
            String::from_utf8(crate::ui::Assets::get("app.css").unwrap().data.to_vec()).unwrap();
        let dark_at = css.find("prefers-color-scheme: dark").unwrap();
        for block in [&css[..dark_at], &css[dark_at..]] {
            for series in ["chart-missed", "chart-recovered"] {
                for background in ["bg", "card"] {
                    let ratio = contrast(&var(block, series), &var(block, background));
                    assert!(ratio >= 3.0, "{series} on {background}: {ratio:.2}:1");
                }
            }
            // And the two series are told apart by more than hue alone.
            let between = contrast(&var(block, "chart-missed"), &var(block, "chart-recovered"));
            assert!(between >= 1.2, "missed vs recovered: {between:.2}:1");
        }
    }

    #[test]
    fn daily_bars_scale_to_the_busiest_day() {
        let days = vec![
            Day {
                label: "11-27".into(),
                missed: 4,
                recovered: 1,
            },
            Day {
                label: "11-28".into(),
                missed: 2,
                recovered: 2,
            },
        ];
        let svg = daily(&days, Width::Wide);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"missed\"").count(), 3); // two bars and the legend
        assert!(svg.contains("<title>11-27: 4 missed</title>"));
        assert!(
            svg.contains("height=\"168.0\""),
            "the busiest bar fills the plot: {svg}"
        );
        assert!(daily(&[], Width::Wide).contains("</svg>"));
        // The phone variant is drawn about as wide as a phone shows it, with fewer day labels, so its
        // text is not shrunk.
        let month: Vec<Day> = (1..=30)
            .map(|d| Day {
                label: format!("11-{d:02}"),
                missed: d,
                recovered: 0,
            })
            .collect();
        let narrow = daily(&month, Width::Narrow);
        assert!(narrow.contains("viewBox=\"0 0 340 220\""), "{narrow}");
        assert!(narrow.matches("<text").count() <= 2 + 4 + 2);
        assert!(daily(&month, Width::Wide).matches("<text").count() > 10);
    }

    #[test]
    fn the_heatmap_has_a_cell_per_hour_and_weekday() {
        let mut counts = [[0u32; 24]; 7];
        counts[0][9] = 5;
        counts[6][23] = 1;
        let svg = heatmap(&counts, Width::Wide);
        assert_eq!(svg.matches("<rect").count(), 7 * 24);
        let narrow = heatmap(&counts, Width::Narrow);
        assert_eq!(narrow.matches("<rect").count(), 7 * 24);
        assert!(narrow.contains("viewBox=\"0 0 336 "), "{narrow}");
        assert!(svg.contains("<title>Mon 09:00: 5 missed</title>"));
        assert!(svg.contains("fill-opacity=\"1.00\""));
    }
}
