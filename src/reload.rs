//! Putting a new configuration in force while running: a settings save from the admin UI, or the file
//! reloaded on SIGHUP. One change at a time (a lock covers read, edit, validate, write and swap, so no
//! acknowledged edit is lost to a concurrent one), validated exactly as at start-up, and swapped whole with
//! the provider accounts rebuilt from it. Keys that only take effect at start-up (where to listen, the public
//! URL, the database, logging) keep their running values and are reported as needing a restart.
//! Depends on config, providers and settings.

use crate::config::{self, Config, ConfigErrors, Shared};
use crate::providers::{Providers, SimulatorToken};
use crate::settings::{self, SaveError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The configuration and provider accounts in force, and how to change them.
pub struct Live {
    config: Shared,
    providers: Providers,
    simulator: SimulatorToken,
    /// The configuration the process started with: start-up-only keys are compared with it.
    started: Config,
    /// The config file, when there is one; the built-in defaults get one on their first settings save.
    path: Mutex<Option<PathBuf>>,
    lock: Mutex<()>,
}

/// What a change did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Businesses whose settings changed (by id), added or removed.
    pub businesses: Vec<String>,
    /// Provider accounts built anew.
    pub providers: Vec<String>,
    /// Keys the file changed that take effect only after a restart.
    pub restart_needed: Vec<&'static str>,
}

impl Report {
    /// One line for the log and the settings page.
    pub fn summary(&self) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let mut out = format!(
            "businesses changed: {}; providers rebuilt: {}",
            list(&self.businesses),
            list(&self.providers)
        );
        if !self.restart_needed.is_empty() {
            out.push_str(&format!(
                "; restart textback to apply: {}",
                self.restart_needed.join(", ")
            ));
        }
        out
    }
}

impl Live {
    /// The running configuration and accounts; `started` as loaded at start-up from `path` (`None`: the
    /// built-in defaults).
    pub fn new(
        config: Shared,
        providers: Providers,
        simulator: SimulatorToken,
        started: Config,
        path: Option<PathBuf>,
    ) -> Self {
        Self {
            config,
            providers,
            simulator,
            started,
            path: Mutex::new(path),
            lock: Mutex::new(()),
        }
    }

    /// The config file in use, if any.
    pub fn path(&self) -> Option<PathBuf> {
        match self.path.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Gives the built-in defaults a file: writes `config::EXAMPLE` (which spells out exactly the defaults)
    /// to `path`, never over an existing file, and edits it from then on. Returns the file's absolute path
    /// and whether this call wrote it (a concurrent first save may have).
    pub fn adopt_file(&self, path: &Path) -> Result<(PathBuf, bool), SaveError> {
        let _one_at_a_time = self.lock();
        if let Some(existing) = self.path() {
            return Ok((existing, false));
        }
        settings::write_new(path, config::EXAMPLE)?;
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        match self.path.lock() {
            Ok(mut p) => *p = Some(absolute.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(absolute.clone()),
        }
        Ok((absolute, true))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        match self.lock.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Reads the file again (SIGHUP) and puts it in force; an invalid file changes nothing and every problem
    /// is returned.
    pub fn reload(&self, path: &Path) -> Result<Report, ConfigErrors> {
        let _one_at_a_time = self.lock();
        let loaded = config::load(Some(path), &crate::providers::rules())?;
        Ok(self.swap(loaded.config))
    }

    /// Edits the file (a settings save): refused as stale unless the file still has `version`, then `edit`
    /// changes its text, the result is validated, written atomically and put in force.
    pub fn edit(
        &self,
        path: &Path,
        version: &str,
        edit: impl FnOnce(&str) -> Result<String, SaveError>,
    ) -> Result<Report, SaveError> {
        let _one_at_a_time = self.lock();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SaveError::Io(format!("cannot read {}: {e}", path.display())))?;
        if settings::version(&text) != version {
            return Err(SaveError::Stale);
        }
        let edited = edit(&text)?;
        let new = config::parse(&edited, Some(path), &crate::providers::rules())
            .map_err(SaveError::Invalid)?;
        settings::write_atomic(path, &edited)?;
        Ok(self.swap(new))
    }

    fn swap(&self, new: Config) -> Report {
        let running = self.config.get();
        let (new, restart_needed) = keep_startup_keys(&self.started, &running, new);
        let providers = self.providers.rebuild(&running, &new, &self.simulator);
        let businesses = changed_businesses(&running, &new);
        self.config.set(new);
        Report {
            businesses,
            providers,
            restart_needed,
        }
    }
}

/// Keeps the running values of keys that only take effect at start-up, and names those the new file
/// changed (compared with what the process started with).
pub fn keep_startup_keys(
    started: &Config,
    running: &Config,
    mut new: Config,
) -> (Config, Vec<&'static str>) {
    let mut restart = Vec::new();
    if new.server.listen != started.server.listen {
        restart.push("server.listen");
    }
    if new.server.public_url != started.server.public_url {
        restart.push("server.public_url");
    }
    if new.storage != started.storage {
        restart.push("storage");
    }
    if new.log != started.log {
        restart.push("log");
    }
    new.server.listen.clone_from(&running.server.listen);
    new.server.public_url.clone_from(&running.server.public_url);
    new.storage = running.storage.clone();
    new.log = running.log.clone();
    (new, restart)
}

fn changed_businesses(old: &Config, new: &Config) -> Vec<String> {
    let mut ids: Vec<String> = new
        .businesses
        .iter()
        .filter(|b| old.business(&b.id) != Some(b))
        .map(|b| b.id.clone())
        .chain(
            old.businesses
                .iter()
                .filter(|b| new.business(&b.id).is_none())
                .map(|b| b.id.clone()),
        )
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[server]
listen = "127.0.0.1:8080"
[providers.sim]
kind = "simulator"
[[business]]
id = "acme"
name = "Acme HVAC"
numbers = ["+16025550100"]
"#;

    fn live_on(path: &Path) -> Live {
        let config = config::load(Some(path), &crate::providers::rules())
            .unwrap()
            .config;
        let simulator = SimulatorToken("k".into());
        let providers = Providers::from_config(&config, &simulator);
        Live::new(
            Shared::new(config.clone()),
            providers,
            simulator,
            config,
            None,
        )
    }

    #[test]
    fn start_up_keys_keep_their_running_values_and_are_reported() {
        let started = config::parse(FILE, None, &crate::providers::rules()).unwrap();
        let mut running = started.clone();
        running.server.public_url = Some("http://127.0.0.1:8080".into());
        let cases: &[(&str, &str, &[&str])] = &[
            ("name = \"Acme HVAC\"", "name = \"Acme Heating\"", &[]),
            (
                "listen = \"127.0.0.1:8080\"",
                "listen = \"0.0.0.0:9000\"",
                &["server.listen"],
            ),
            (
                "[server]",
                "[server]\npublic_url = \"https://t.example.com\"",
                &["server.public_url"],
            ),
            ("[server]", "[log]\nlevel = \"debug\"\n[server]", &["log"]),
            (
                "[server]",
                "[storage]\ndatabase = \"other.db\"\n[server]",
                &["storage"],
            ),
        ];
        for (from, to, want) in cases {
            let new =
                config::parse(&FILE.replace(from, to), None, &crate::providers::rules()).unwrap();
            let (kept, restart) = keep_startup_keys(&started, &running, new.clone());
            assert_eq!(restart, *want, "{to}");
            assert_eq!(kept.server, running.server, "{to}");
            assert_eq!(kept.storage, running.storage, "{to}");
            assert_eq!(kept.businesses, new.businesses, "{to}");
        }
    }

    #[test]
    fn an_edit_is_validated_written_and_applied_and_a_stale_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("textback.toml");
        std::fs::write(&path, FILE).unwrap();
        let live = live_on(&path);
        let v0 = settings::version(FILE);
        let set_name = |name: &'static str| {
            move |text: &str| settings::apply(text, 0, &[("name".into(), name.into())])
        };
        let report = live.edit(&path, &v0, set_name("Acme Heating")).unwrap();
        assert_eq!(report.businesses, vec!["acme".to_string()]);
        assert_eq!(live.config.get().businesses[0].name, "Acme Heating");
        // A form rendered before that save is stale now: refused, nothing changes.
        assert!(matches!(
            live.edit(&path, &v0, set_name("Acme Cooling")),
            Err(SaveError::Stale)
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("Acme Heating"), "{text}");
        // An invalid edit is refused with the key, and nothing is written or applied.
        let bad = live.edit(&path, &settings::version(&text), |t| {
            settings::apply(t, 0, &[("quiet_hours".into(), "9pm-8am".into())])
        });
        match bad {
            Err(SaveError::Invalid(e)) => {
                assert!(e.to_string().contains("business[0].quiet_hours"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(live.config.get().businesses[0].quiet_hours, "21:00-08:00");
    }

    #[test]
    fn a_reload_rebuilds_changed_providers_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("textback.toml");
        let two = format!("{FILE}\n[providers.other]\nkind = \"simulator\"\n")
            .replace("numbers = [", "provider = \"sim\"\nnumbers = [");
        std::fs::write(&path, &two).unwrap();
        let live = live_on(&path);
        let before = live.providers.get("other").unwrap();
        std::fs::write(
            &path,
            two.replace(
                "[providers.sim]\nkind = \"simulator\"",
                "[providers.sim]\nkind = \"simulator\"\nauth_token = \"new\"",
            ),
        )
        .unwrap();
        let report = live.reload(&path).unwrap();
        assert_eq!(report.providers, vec!["sim".to_string()]);
        assert!(std::sync::Arc::ptr_eq(
            &before,
            &live.providers.get("other").unwrap()
        ));
        // A broken file changes nothing.
        std::fs::write(&path, "[server]\nlisten = \"nope\"\n").unwrap();
        let errors = live.reload(&path).unwrap_err();
        assert!(errors.to_string().contains("server.listen"), "{errors}");
        assert!(live.providers.get("sim").is_some());
    }
}
