//! Editing a business's settings from the admin UI: changes are applied to the TOML text with `toml_edit`
//! (comments and layout survive), the result is validated exactly as at start-up, and only a valid file is
//! written, atomically (a temporary file renamed over the old one).

use crate::config::{self, Config, ConfigErrors};
use std::path::Path;

/// The settings the form edits, as text fields, with the label the page gives each.
pub const FIELDS: [(&str, &str); 15] = [
    ("name", "Business name"),
    ("script", "Script during opening hours"),
    ("after_hours_script", "Script outside opening hours"),
    (
        "returning_script",
        "Script for returning contacts (empty: the normal one)",
    ),
    ("booking_link", "Booking link"),
    ("missed_greeting", "What callers hear when nobody answers"),
    ("text_delay", "Text delay"),
    ("repeat_window", "One text-back per caller per"),
    ("quiet_hours", "Quiet hours (HH:MM-HH:MM, empty for none)"),
    (
        "quiet_hours_policy",
        "First text in quiet hours: send, defer or skip",
    ),
    ("max_deferral", "Drop deferred texts older than"),
    ("daily_cap", "Automatic texts per contact per day"),
    ("send_rate", "Texts per second per number"),
    ("average_ticket", "Average job value ($)"),
    ("sms_price", "Price per SMS segment ($)"),
];

/// Keys that hold numbers in the file, not strings.
const INTEGERS: [&str; 1] = ["daily_cap"];
const FLOATS: [&str; 3] = ["send_rate", "average_ticket", "sms_price"];
/// Keys that are removed when left empty.
const OPTIONAL: [&str; 2] = ["returning_script", "booking_link"];
/// The weekday keys of `[business.hours]`.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why an edit was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// There is no config file (the built-in defaults are running).
    #[error("textback runs on its built-in defaults; run `textback init` and restart with --config to edit settings")]
    NoFile,
    /// The file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A value could not be put in the file.
    #[error("{0}")]
    Value(String),
    /// The edited file is not valid; nothing was written.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Applies form values (key → text; `hours.mon` → "08:00-12:00, 13:00-17:00") to business number `index`.
pub fn apply(text: &str, index: usize, changes: &[(String, String)]) -> Result<String, SaveError> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| SaveError::Value(e.to_string()))?;
    let table = doc
        .get_mut("business")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
        .and_then(|a| a.get_mut(index))
        .ok_or_else(|| SaveError::Value(format!("there is no business[{index}] in the file")))?;
    for (key, raw) in changes {
        let value = raw.trim();
        if let Some(day) = key.strip_prefix("hours.") {
            if !DAYS.contains(&day) {
                continue;
            }
            let spans: toml_edit::Array = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if !table.contains_key("hours") {
                let mut hours = toml_edit::Table::new();
                hours.set_implicit(false);
                table.insert("hours", toml_edit::Item::Table(hours));
            }
            if let Some(hours) = table
                .get_mut("hours")
                .and_then(toml_edit::Item::as_table_like_mut)
            {
                hours.insert(day, toml_edit::value(spans));
            }
            continue;
        }
        if !FIELDS.iter().any(|(k, _)| k == key) {
            continue;
        }
        if value.is_empty() && OPTIONAL.contains(&key.as_str()) {
            table.remove(key);
            continue;
        }
        let item = if INTEGERS.contains(&key.as_str()) {
            let n: i64 = value
                .parse()
                .map_err(|_| SaveError::Value(format!("{key}: {value:?} is not a whole number")))?;
            toml_edit::value(n)
        } else if FLOATS.contains(&key.as_str()) {
            let n: f64 = value
                .parse()
                .map_err(|_| SaveError::Value(format!("{key}: {value:?} is not a number")))?;
            toml_edit::value(n)
        } else {
            toml_edit::value(value)
        };
        // Keep the key's own comments and spacing; only the value changes.
        match table.get_mut(key) {
            Some(existing) if existing.is_value() => {
                let decor = existing.as_value().map(|v| v.decor().clone());
                *existing = item;
                if let (Some(decor), Some(v)) = (decor, existing.as_value_mut()) {
                    *v.decor_mut() = decor;
                }
            }
            _ => {
                table.insert(key, item);
            }
        }
    }
    Ok(doc.to_string())
}

/// Validates the new text as the file at `path` and, if valid, writes it atomically; returns the new config.
pub fn save(path: Option<&Path>, new_text: &str) -> Result<Config, SaveError> {
    let path = path.ok_or(SaveError::NoFile)?;
    let config = config::parse(new_text, Some(path)).map_err(SaveError::Invalid)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "textback.toml".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(new_text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SaveError::Io(format!("cannot write {}: {e}", path.display()))
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# my settings
[providers.sim]
kind = "simulator"

[[business]]
id = "acme"   # never change this
name = "Acme HVAC"
numbers = ["+16025550100"]
# how long to wait
text_delay = "20s"
"#;

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn edits_keep_comments_and_layout() {
        let out = apply(
            FILE,
            0,
            &set(&[
                ("text_delay", "30s"),
                ("daily_cap", "2"),
                ("booking_link", "https://b.example.com"),
                ("hours.sat", "09:00-12:00, 13:00-15:00"),
            ]),
        )
        .unwrap();
        assert!(out.starts_with("# my settings\n"), "{out}");
        assert!(out.contains("id = \"acme\"   # never change this"), "{out}");
        assert!(
            out.contains("# how long to wait\ntext_delay = \"30s\""),
            "{out}"
        );
        assert!(out.contains("daily_cap = 2"), "{out}");
        assert!(
            out.contains("sat = [\"09:00-12:00\", \"13:00-15:00\"]"),
            "{out}"
        );
        let config = config::parse(&out, None).unwrap();
        assert_eq!(config.businesses[0].text_delay.secs(), 30);
        assert_eq!(config.businesses[0].hours.sat.len(), 2);
        // Clearing an optional key removes it.
        let cleared = apply(&out, 0, &set(&[("booking_link", "")])).unwrap();
        assert!(!cleared.contains("booking_link"), "{cleared}");
    }

    #[test]
    fn a_bad_edit_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("textback.toml");
        std::fs::write(&path, FILE).unwrap();
        let bad = apply(FILE, 0, &set(&[("quiet_hours", "9pm-8am")])).unwrap();
        match save(Some(&path), &bad) {
            Err(SaveError::Invalid(e)) => {
                assert!(e.to_string().contains("business[0].quiet_hours"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE);
        assert!(matches!(
            apply(FILE, 0, &set(&[("daily_cap", "lots")])),
            Err(SaveError::Value(_))
        ));
        let good = apply(FILE, 0, &set(&[("name", "Acme Heating")])).unwrap();
        let config = save(Some(&path), &good).unwrap();
        assert_eq!(config.businesses[0].name, "Acme Heating");
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("name = \"Acme Heating\""));
        assert!(matches!(save(None, &good), Err(SaveError::NoFile)));
    }
}
