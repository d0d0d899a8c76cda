//! Editing a business's settings from the admin UI: changes are applied to the TOML text with `toml_edit`
//! (comments and layout survive; only keys whose value changed are written), the result is validated
//! exactly as at start-up, and only a valid file is written: atomically, through a temporary file that has
//! the original's permissions from its first byte, keeping its owner, and through a symlink to the real
//! file. A form carries the version of the file it was rendered from, so a stale form cannot undo a newer
//! save. (`reload` serializes saves and puts the result in force.)

use crate::config::{BusinessConfig, Config, ConfigErrors, Dur};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The settings the form edits, as text fields, with the label the page gives each.
pub const FIELDS: [(&str, &str); 16] = [
    ("name", "Business name"),
    ("script", "Text after a call missed in opening hours"),
    (
        "after_hours_script",
        "Text after a call missed outside opening hours",
    ),
    (
        "returning_script",
        "Text for returning contacts (empty: the ones above)",
    ),
    ("booking_link", "Booking link"),
    ("missed_greeting", "What callers hear when nobody answers"),
    ("text_delay", "Wait before texting"),
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
    ("saved_replies", "Saved replies, one per line"),
];

/// The settings page's sections: an anchor, a title, and the keys each edits (`hours` is the weekday form).
pub const SECTIONS: [(&str, &str, &[&str]); 6] = [
    (
        "scripts",
        "Scripts",
        &[
            "name",
            "script",
            "after_hours_script",
            "returning_script",
            "booking_link",
            "missed_greeting",
        ],
    ),
    ("hours", "Hours", &["hours"]),
    (
        "pace",
        "Quiet hours and pace",
        &[
            "quiet_hours",
            "quiet_hours_policy",
            "text_delay",
            "repeat_window",
            "max_deferral",
            "daily_cap",
            "send_rate",
        ],
    ),
    ("alerts", "Alerts", &[]),
    ("replies", "Saved replies", &["saved_replies"]),
    ("prices", "Prices", &["average_ticket", "sms_price"]),
];

/// Script keys: a built-in name is shown as its words, and can be reset to the default.
pub const SCRIPTS: [&str; 3] = ["script", "after_hours_script", "returning_script"];

/// Keys that hold numbers in the file, not strings.
const INTEGERS: [&str; 1] = ["daily_cap"];
const FLOATS: [&str; 3] = ["send_rate", "average_ticket", "sms_price"];
/// Keys that are removed when left empty.
const OPTIONAL: [&str; 2] = ["returning_script", "booking_link"];
/// Keys that hold a list of strings, one per line in the form; removed when left empty.
const LISTS: [&str; 1] = ["saved_replies"];
/// The weekday keys of `[business.hours]`.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why an edit was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A value could not be put in the file.
    #[error("{0}")]
    Value(String),
    /// The edited file is not valid; nothing was written.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// The file changed since the form was rendered (another save, an edit by hand).
    #[error("the settings changed since this page was loaded (someone else saved, or the file was edited); reload the page and try again")]
    Stale,
}

/// Writes a new file at `path` holding `text`, readable by its owner and group only, and never over an
/// existing file. It appears whole or not at all: written to a temporary file beside it first, then linked
/// into place (which fails if something is there).
pub fn write_new(path: &Path, text: &str) -> Result<(), SaveError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(".textback.toml.new-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&temp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    written.map_err(|e| SaveError::Io(format!("cannot create {}: {e}", path.display())))
}

/// A short fingerprint of the file's text, carried by the form to detect a stale save.
pub fn version(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The text the form shows for a business's key, and expects back unchanged when the owner did not touch it.
pub fn field_value(b: &BusinessConfig, key: &str) -> String {
    let dur = |d: Dur| humantime::format_duration(d.0).to_string();
    match key {
        "name" => b.name.clone(),
        "script" => script_words(&b.script),
        "after_hours_script" => script_words(&b.after_hours_script),
        "returning_script" => b
            .returning_script
            .as_deref()
            .map(script_words)
            .unwrap_or_default(),
        "saved_replies" => b.saved_replies.join("\n"),
        "booking_link" => b.booking_link.clone().unwrap_or_default(),
        "missed_greeting" => b.missed_greeting.clone(),
        "text_delay" => dur(b.text_delay),
        "repeat_window" => dur(b.repeat_window),
        "quiet_hours" => b.quiet_hours.clone(),
        "quiet_hours_policy" => format!("{:?}", b.quiet_hours_policy).to_lowercase(),
        "max_deferral" => dur(b.max_deferral),
        "daily_cap" => b.daily_cap.to_string(),
        "send_rate" => b.send_rate.to_string(),
        "average_ticket" => b.average_ticket.to_string(),
        "sms_price" => b.sms_price.to_string(),
        _ => String::new(),
    }
}

/// A script as the form shows it: a built-in's words (its template), never its name.
pub fn script_words(script: &str) -> String {
    crate::script::BUILT_IN
        .iter()
        .find(|(name, _)| *name == script)
        .map_or_else(|| script.to_string(), |(_, text)| (*text).to_string())
}

/// The script a key holds when the file does not set it (`returning_script` has none).
pub fn default_script(key: &str) -> Option<String> {
    match key {
        "script" => Some(crate::config::default_script()),
        "after_hours_script" => Some(crate::config::default_after_hours_script()),
        _ => None,
    }
}

/// The built-in a script setting names, if it is one: "direct question".
pub fn built_in_name(script: &str) -> Option<String> {
    crate::script::BUILT_IN
        .iter()
        .any(|(name, _)| *name == script)
        .then(|| script.replace('_', " "))
}

/// The text the form shows for a weekday's opening hours.
pub fn day_value(b: &BusinessConfig, day: &str) -> String {
    b.hours
        .days()
        .iter()
        .find(|(d, _)| *d == day)
        .map(|(_, spans)| spans.join(", "))
        .unwrap_or_default()
}

/// Applies form values (key → text; `hours.mon` → "08:00-12:00, 13:00-17:00") to business number `index`.
/// A value equal to what the form showed for the file's current value is left alone: saving one field
/// writes one key, not every default in another style.
pub fn apply(text: &str, index: usize, changes: &[(String, String)]) -> Result<String, SaveError> {
    let current: Config = toml::from_str(text).map_err(|e| {
        SaveError::Value(format!(
            "the file does not parse ({}); fix it first",
            e.message().trim()
        ))
    })?;
    let biz = current
        .businesses
        .get(index)
        .ok_or_else(|| SaveError::Value(format!("there is no business[{index}] in the file")))?;
    let resets: Vec<&str> = changes
        .iter()
        .filter(|(k, _)| k == "reset")
        .map(|(_, v)| v.trim())
        .collect();
    let changes: Vec<&(String, String)> = changes
        .iter()
        .filter(|(key, value)| {
            if key == "reset" {
                return SCRIPTS.contains(&value.as_str());
            }
            // A key being reset is not also set from the form.
            if resets.contains(&key.as_str()) {
                return false;
            }
            let shown = match key.strip_prefix("hours.") {
                Some(day) => day_value(biz, day),
                None => field_value(biz, key),
            };
            value.trim() != shown.trim()
        })
        .collect();
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
        if key == "reset" {
            // Back to the default: the key leaves the file.
            table.remove(value);
            continue;
        }
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
        if value.is_empty() && (OPTIONAL.contains(&key.as_str()) || LISTS.contains(&key.as_str())) {
            table.remove(key);
            continue;
        }
        if LISTS.contains(&key.as_str()) {
            let items: toml_edit::Array = value
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            table.insert(key, toml_edit::value(items));
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

/// Writes `text` to the config file atomically. A symlinked file is written through the link (the link
/// stays). The temporary file beside the real one is created exclusively, under a random name, with the
/// original's permissions from the start (it may hold secrets), given the original's owner and group where
/// permitted, synced, then renamed over the original; the folder is synced too.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), SaveError> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let io = |what: &str, e: std::io::Error| {
        SaveError::Io(format!("cannot {what} {}: {e}", path.display()))
    };
    let real = std::fs::canonicalize(path).map_err(|e| io("find", e))?;
    let meta = std::fs::metadata(&real).map_err(|e| io("read", e))?;
    let (tmp, mut file) = create_temp(&real, meta.permissions().mode() & 0o7777)
        .map_err(|e| io("write next to", e))?;
    let written = (|| {
        // Keeping the owner works for root and for the owner itself; otherwise the file becomes the server's,
        // with the same permissions, which is the most it can do.
        let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &real)
    })();
    written.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        io("write", e)
    })?;
    // The new file is in place; syncing its folder makes the rename itself durable. If that fails the
    // save has still happened, so it is reported in the log, not as a failed save.
    if let Some(dir) = real.parent() {
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(folder = %dir.display(), error = %e, "cannot sync the config folder after saving");
        }
    }
    Ok(())
}

/// Creates a new, unique temporary file beside `real` with `mode`; never opens an existing file.
fn create_temp(real: &Path, mode: u32) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = real
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "textback.toml".into());
    loop {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => {
                // The process umask may have cleared bits the original has; set them exactly.
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(mode))?;
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
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
        let config = crate::config::parse(&out, None, &crate::providers::rules()).unwrap();
        assert_eq!(config.businesses[0].text_delay.secs(), 30);
        assert_eq!(config.businesses[0].hours.sat.len(), 2);
        // Clearing an optional key removes it.
        let cleared = apply(&out, 0, &set(&[("booking_link", "")])).unwrap();
        assert!(!cleared.contains("booking_link"), "{cleared}");
    }

    #[test]
    fn saving_one_field_writes_one_key() {
        let file = format!("{FILE}repeat_window = \"24h\"\n");
        let config = crate::config::parse(&file, None, &crate::providers::rules()).unwrap();
        let b = &config.businesses[0];
        // The form posts every field as it showed it, with the script changed.
        let mut form: Vec<(String, String)> = FIELDS
            .iter()
            .map(|(k, _)| ((*k).to_string(), field_value(b, k)))
            .collect();
        form.extend(DAYS.iter().map(|d| (format!("hours.{d}"), day_value(b, d))));
        for (k, v) in &mut form {
            if k == "script" {
                *v = "booking_link".into();
            }
        }
        form.push(("booking_link".into(), "https://b.example.com".into()));
        let out = apply(&file, 0, &form).unwrap();
        let added: Vec<&str> = out
            .lines()
            .filter(|l| !file.lines().any(|f| f == *l))
            .collect();
        assert_eq!(
            added,
            vec![
                "script = \"booking_link\"",
                "booking_link = \"https://b.example.com\""
            ],
            "{out}"
        );
        assert!(out.contains("repeat_window = \"24h\""), "{out}");
    }

    #[test]
    fn versions_tell_texts_apart() {
        assert_eq!(version(FILE), version(FILE));
        assert_ne!(version(FILE), version(&format!("{FILE} ")));
        assert_eq!(version(FILE).len(), 16);
    }

    #[test]
    fn the_file_is_written_through_its_symlink_with_its_mode_and_owner() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("real");
        std::fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("textback.toml");
        std::fs::write(&real, FILE).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .unwrap()
            .stdout
            == b"0\n";
        if root {
            std::os::unix::fs::chown(&real, Some(1234), Some(2345)).unwrap();
        }
        let owner = std::fs::metadata(&real).unwrap().uid();
        let link = dir.path().join("textback.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, "# new\n").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "# new\n");
        let meta = std::fs::metadata(&real).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.uid(), owner);
        if root {
            assert_eq!((meta.uid(), meta.gid()), (1234, 2345));
        }
        // No temporary file is left behind, in either folder.
        for d in [dir.path(), real_dir.as_path()] {
            let stray: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .collect();
            assert!(stray.is_empty(), "{stray:?}");
        }
    }

    #[test]
    fn the_temporary_file_never_has_wider_permissions_than_the_original() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("textback.toml");
        std::fs::write(&real, FILE).unwrap();
        let (tmp, _file) = create_temp(&real, 0o600).unwrap();
        // Checked before a byte is written: the secret in the file is never readable by others.
        assert_eq!(
            std::fs::metadata(&tmp).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (other, _f) = create_temp(&real, 0o600).unwrap();
        assert_ne!(tmp, other, "each save has its own temporary file");
    }

    #[test]
    fn built_in_scripts_show_as_words_saved_replies_are_lines_and_reset_removes_the_key() {
        let config = crate::config::parse(FILE, None, &crate::providers::rules()).unwrap();
        let b = &config.businesses[0];
        // The built-in is shown as its words; posting them back unchanged writes nothing.
        let words = field_value(b, "script");
        assert!(words.starts_with("Hi, this is {{ name }}."), "{words}");
        assert_eq!(built_in_name(&b.script).as_deref(), Some("direct question"));
        assert_eq!(apply(FILE, 0, &set(&[("script", &words)])).unwrap(), FILE);
        // Editing the words makes a custom script; reset takes the key out again.
        let custom = apply(FILE, 0, &set(&[("script", "Hi from {{ name }}!")])).unwrap();
        assert!(
            custom.contains("script = \"Hi from {{ name }}!\""),
            "{custom}"
        );
        let reset = apply(
            &custom,
            0,
            &set(&[
                ("reset", "script"),
                ("script", "Hi from {{ name }}, again!"),
            ]),
        )
        .unwrap();
        assert!(!reset.contains("script ="), "{reset}");
        // Only script keys can be reset.
        assert_eq!(apply(FILE, 0, &set(&[("reset", "numbers")])).unwrap(), FILE);
        // Saved replies: one per line, blank lines dropped, empty removes the key.
        let replies = apply(
            FILE,
            0,
            &set(&[(
                "saved_replies",
                "On our way!\r\n\r\n  Can you send a photo?  \n",
            )]),
        )
        .unwrap();
        assert!(
            replies.contains("saved_replies = [\"On our way!\", \"Can you send a photo?\"]"),
            "{replies}"
        );
        let parsed = crate::config::parse(&replies, None, &crate::providers::rules()).unwrap();
        assert_eq!(parsed.businesses[0].saved_replies.len(), 2);
        assert_eq!(
            field_value(&parsed.businesses[0], "saved_replies"),
            "On our way!\nCan you send a photo?"
        );
        let none = apply(&replies, 0, &set(&[("saved_replies", " ")])).unwrap();
        assert!(!none.contains("saved_replies"), "{none}");
    }
}
