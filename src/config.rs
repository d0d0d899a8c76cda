//! The one TOML file: its schema, the built-in defaults, loading and validation.
//!
//! Type errors are reported by the `toml` parser with the line, column and key. Rules that span several keys
//! are checked by [`Config::validate`], which reports every problem at once, each with the file, the line
//! (found with `toml_edit`, which keeps spans) and the key path (`business[0].numbers[1]`).
//! Depends on model and script.

use crate::hours;
use crate::model::PhoneNumber;
use crate::script;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The commented example configuration; `textback init` writes it and it equals the built-in defaults.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

/// Where `serve` looks for a config file when `--config` is not given, in order.
pub const SEARCH_PATHS: [&str; 2] = ["textback.toml", "/etc/textback/textback.toml"];

/// The longest business name: every text carries it.
const MAX_NAME: usize = 100;
/// The longest value of a custom script field.
const MAX_FIELD: usize = 500;
/// Saved replies per business: a row of buttons, not a library.
pub const MAX_SAVED_REPLIES: usize = 20;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: where to listen and the public URL providers call.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[storage]`: the SQLite database.
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[log]`: log verbosity.
    #[serde(default)]
    pub log: LogConfig,
    /// `[providers.NAME]`: provider accounts by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[[business]]`: the businesses this instance answers for.
    #[serde(default, rename = "business")]
    pub businesses: Vec<BusinessConfig>,
    /// `[push]`: notifications to staff phones (Web Push); off until `contact` is set.
    #[serde(default)]
    pub push: PushConfig,
    /// `[email]`: the SMTP server staff alerts and digests are sent through; no email without it.
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// `[backup]`: scheduled backups of the database; none without it.
    #[serde(default)]
    pub backup: Option<BackupConfig>,
    /// `[retention]`: how long message bodies, calls and receipts are kept; everything by default.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// `[metrics]`: who may read `/metrics`; off until a token or an allow-list is set.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `[metrics]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token Prometheus sends (`authorization: credentials` in its scrape config).
    pub token: Option<Secret>,
    /// Addresses or blocks that may scrape without a token, e.g. `["127.0.0.1/32"]`.
    pub allow: Vec<crate::clientip::Cidr>,
}

impl MetricsConfig {
    /// Whether `/metrics` is served at all.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || !self.allow.is_empty()
    }
}

/// `[retention]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Message bodies older than this are replaced by a note (the messages, their states and the
    /// conversation stay).
    pub message_bodies: Option<Dur>,
    /// Calls and delivery receipts older than this are deleted (contacts and consent records stay).
    pub calls: Option<Dur>,
}

/// `[backup]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// The folder backups go to (relative to the database's folder); best on another disk.
    pub dir: PathBuf,
    /// When: a cron expression (`minute hour day month weekday`) in `timezone`.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// How many backups are kept; the oldest goes after each good new one.
    #[serde(default = "default_backup_keep")]
    pub keep: usize,
    /// The time zone of `schedule`; the first business's when unset.
    #[serde(default)]
    pub timezone: Option<String>,
}

fn default_backup_schedule() -> String {
    "30 3 * * *".into()
}
fn default_backup_keep() -> usize {
    7
}

impl BackupConfig {
    /// The folder, resolved against the database's folder.
    pub fn dir_for(&self, database: &Path) -> PathBuf {
        if self.dir.is_absolute() {
            self.dir.clone()
        } else {
            database
                .parent()
                .map_or_else(|| self.dir.clone(), |p| p.join(&self.dir))
        }
    }
}

impl Config {
    /// The time zone `[backup] schedule` is read in.
    pub fn backup_tz(&self) -> crate::zone::Tz {
        self.backup
            .as_ref()
            .and_then(|b| b.timezone.as_deref())
            .and_then(|t| t.parse().ok())
            .or_else(|| self.businesses.first().map(BusinessConfig::tz))
            .unwrap_or(crate::zone::UTC)
    }
}

/// `[email]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server.
    pub host: String,
    /// Its port; by default 465 for `implicit`, 587 for `starttls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit` (TLS from the first byte, port 465), `starttls` (port 587, the upgrade required) or `none`
    /// (a relay on this machine or network only, with `allow_plaintext = true` and no password).
    #[serde(default)]
    pub tls: EmailTls,
    /// The account name, when the server wants one.
    #[serde(default)]
    pub user: Option<String>,
    /// Its password (inline, `env:NAME` or `file:/path`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender, `alerts@example.com` or `Acme alerts <alerts@example.com>`.
    pub from: String,
    /// Allows `tls = "none"` (mail in clear text, for a local relay).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// How long one SMTP exchange may take.
    #[serde(default = "default_email_timeout")]
    pub timeout: Dur,
    /// The first retry's wait after a temporary failure; later ones double, up to 15 minutes.
    #[serde(default = "default_email_backoff")]
    pub retry_backoff: Dur,
}

impl EmailConfig {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            EmailTls::Implicit => 465,
            EmailTls::Starttls => 587,
            EmailTls::None => 25,
        })
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// TLS from the first byte (RFC 8314, port 465).
    #[default]
    Implicit,
    /// STARTTLS, required: no mail and no password go out if the upgrade fails.
    Starttls,
    /// No TLS (a local relay only).
    None,
}

fn default_email_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_email_backoff() -> Dur {
    Dur(Duration::from_secs(60))
}

/// `[push]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Who runs this appliance, for the push services (`mailto:you@yourcompany.com` or an `https://` page).
    /// Push notifications are off until it is set; Apple refuses placeholders.
    pub contact: Option<String>,
    /// Push services besides the browser vendors' that notifications may be posted to, as origins
    /// (`https://push.example.net`), e.g. a self-hosted autopush.
    pub services: Vec<String>,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// The URL the provider calls (scheme, host, optional port and path prefix); signatures are computed over it.
    /// Defaults to `http://` + `listen`.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or blocks); nothing by default.
    pub trusted_proxies: Vec<crate::clientip::Cidr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The public base URL without a trailing slash.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The SQLite file, relative to the config file's folder.
    pub database: PathBuf,
    /// How long a write waits while another process (a backup, a `sqlite3` shell) holds the database's lock;
    /// after that the webhook answers 503 and the provider retries it.
    pub busy_timeout: Dur,
    /// Copy the write-ahead log into the database every second on a thread of its own; `false` when
    /// Litestream replicates the database (it checkpoints itself).
    pub checkpoints: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            database: "textback.db".into(),
            busy_timeout: Dur(Duration::from_secs(5)),
            checkpoints: true,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `textback=debug`; `RUST_LOG` overrides it.
    pub level: String,
    /// `text` for people and journald, `json` (one object per line) for log shippers.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// How a setting of a provider kind is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    /// A string.
    Text,
    /// An http(s) URL.
    Url,
    /// A secret: inline, `env:NAME` or `file:/path`.
    Secret,
    /// `true` or `false`.
    Flag,
}

/// One setting of a provider kind.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    /// Its key.
    pub key: &'static str,
    /// How it is written.
    pub ty: SettingType,
    /// When the kind needs it: where to find the value, said when it is missing.
    pub required: Option<&'static str>,
}

/// What an account of a kind can do, as its provider module declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// It sends texts (and can be a business's `sms_provider`).
    pub texts: bool,
    /// It reports calls (and can be a business's `provider`).
    pub reports_calls: bool,
    /// Its route answers STOP with its own confirmation, as carriers do on A2P routes (a phone's SIM does
    /// not).
    pub confirms_stop: bool,
    /// It calls back URLs textback gives it (and signs them), so `server.public_url` must be set.
    pub calls_back: bool,
    /// It speaks Twilio's webhook format: it answers at `/hooks/twilio/...` and `textback simulate` plays it.
    pub twilio_webhooks: bool,
    /// New callers' line types are looked up before the first text.
    pub line_type_lookup: bool,
    /// Forwarded calls can be screened ("press 1") and checked for answering machines.
    pub screens_calls: bool,
    /// It can phone staff to read them an urgent message.
    pub places_calls: bool,
    /// The built-in simulator: nothing leaves the machine, and the admin UI's phone plays its calls.
    pub simulated: bool,
}

impl Default for Caps {
    /// An account that reports calls and texts through a carrier.
    fn default() -> Self {
        Self {
            texts: true,
            reports_calls: true,
            confirms_stop: true,
            calls_back: false,
            twilio_webhooks: false,
            line_type_lookup: false,
            screens_calls: false,
            places_calls: false,
            simulated: false,
        }
    }
}

/// A kind of provider account as the configuration sees it. The provider registry (`providers::KINDS`) holds
/// one per kind and hands them to [`parse`] and [`load`]: the configuration knows kinds only through these,
/// so adding a provider changes nothing here.
#[derive(Debug)]
pub struct KindRules {
    /// The name written as `kind`.
    pub name: &'static str,
    /// Its own settings (besides `kind`, and the three timings of a kind that texts).
    pub settings: &'static [SettingSpec],
    /// What an account with these settings can do.
    pub caps: fn(&ProviderConfig) -> Caps,
    /// The checks beyond each setting's type and presence: `(key, problem)`.
    pub check: fn(&ProviderConfig) -> Vec<(&'static str, String)>,
}

/// The settings every kind that texts takes besides its own.
const TIMINGS: [&str; 3] = ["send_timeout", "settle_time", "retry_backoff"];

/// `[providers.NAME]`: a table tagged by `kind`, each kind with only its own settings. The kind's settings
/// are kept as written and checked against its [`KindRules`] by validation, which names the file, line and
/// key of anything wrong; secrets are resolved then. Its `Debug` shows setting names, never values (an
/// inline secret is one of them).
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    /// Which kind of account this is (`twilio`, `pbx`, ...).
    pub kind: String,
    /// How long one call to the provider's API may take before it counts as unanswered (30 s). Generous: a
    /// send that times out may still have been accepted, and must then be checked before anything is resent.
    pub send_timeout: Option<Dur>,
    /// After a send whose outcome is unclear (a timeout, a cut connection), how long to wait for the text to
    /// show up in the provider's records before deciding it was not sent and sending it again (2 minutes).
    pub settle_time: Option<Dur>,
    /// The first retry after a temporary failure (5xx, 429, no connection) waits this long (5 s); each
    /// further one twice as long, up to 15 minutes, never less than the provider's `Retry-After`.
    pub retry_backoff: Option<Dur>,
    /// The kind's own settings as written (secrets as `env:NAME`, not their values).
    settings: BTreeMap<String, toml::Value>,
    /// The kind's secrets, resolved by validation.
    secrets: BTreeMap<String, Secret>,
    /// What the account can do; set by validation from its kind.
    pub caps: Caps,
}

impl<'de> Deserialize<'de> for ProviderConfig {
    /// Reads the common keys with their types (a wrong value is reported at its own line) and keeps the
    /// rest for the kind's rules.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ProviderConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a provider table with a kind")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ProviderConfig, A::Error> {
                let mut p = ProviderConfig::new("");
                let mut kind = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "kind" => kind = Some(map.next_value::<String>()?),
                        "send_timeout" => p.send_timeout = Some(map.next_value()?),
                        "settle_time" => p.settle_time = Some(map.next_value()?),
                        "retry_backoff" => p.retry_backoff = Some(map.next_value()?),
                        _ => {
                            let value = map.next_value::<toml::Value>()?;
                            p.settings.insert(key, value);
                        }
                    }
                }
                p.kind = kind.ok_or_else(|| serde::de::Error::missing_field("kind"))?;
                Ok(p)
            }
        }
        d.deserialize_map(Visit)
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("send_timeout", &self.send_timeout)
            .field("settle_time", &self.settle_time)
            .field("retry_backoff", &self.retry_backoff)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl ProviderConfig {
    /// An account of `kind` with no settings.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
            send_timeout: None,
            settle_time: None,
            retry_backoff: None,
            settings: BTreeMap::new(),
            secrets: BTreeMap::new(),
            caps: Caps::default(),
        }
    }

    /// A text (or URL) setting.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(toml::Value::as_str)
    }

    /// A true/false setting.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.settings.get(key).and_then(toml::Value::as_bool)
    }

    /// A secret setting's value (resolved by validation).
    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key).map(Secret::expose)
    }

    /// The REST API base URL without a trailing slash, `default` unless the file sets `api_base`.
    pub fn api_base_or(&self, default: &str) -> String {
        self.text("api_base")
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string()
    }
    /// `send_timeout`, 30 s unless set.
    pub fn send_timeout(&self) -> Dur {
        self.send_timeout.unwrap_or(Dur(Duration::from_secs(30)))
    }
    /// `settle_time`, 2 minutes unless set.
    pub fn settle_time(&self) -> Dur {
        self.settle_time.unwrap_or(Dur(Duration::from_secs(120)))
    }
    /// `retry_backoff`, 5 s unless set.
    pub fn retry_backoff(&self) -> Dur {
        self.retry_backoff.unwrap_or(Dur(Duration::from_secs(5)))
    }

    /// Checks the settings against the kind's rules, resolves its secrets and sets what it can do.
    fn apply_rules(&mut self, p: &mut Problems<'_>, name: &str, kinds: &[&KindRules]) {
        let key = |k: &str| format!("providers.{name}.{k}");
        let Some(rules) = kinds.iter().find(|k| k.name == self.kind) else {
            let names: Vec<String> = kinds.iter().map(|k| format!("`{}`", k.name)).collect();
            p.add(
                key("kind"),
                format!(
                    "unknown kind `{}`, expected one of {}",
                    self.kind,
                    names.join(", ")
                ),
            );
            return;
        };
        self.secrets.clear();
        for spec in rules.settings {
            let Some(value) = self.settings.get(spec.key) else {
                if let Some(help) = spec.required {
                    let how = if spec.ty == SettingType::Secret {
                        "; inline, env:NAME or file:/path"
                    } else {
                        ""
                    };
                    p.add(
                        key(spec.key),
                        format!("is required for kind = \"{}\" ({help}{how})", rules.name),
                    );
                }
                continue;
            };
            match (spec.ty, value) {
                (SettingType::Flag, toml::Value::Boolean(_)) => {}
                (SettingType::Flag, _) => p.add(key(spec.key), "must be true or false"),
                (_, toml::Value::String(s)) if s.trim().is_empty() => {
                    p.add(key(spec.key), "is empty");
                }
                (SettingType::Text, toml::Value::String(_)) => {}
                (SettingType::Url, toml::Value::String(u)) => {
                    if let Err(why) = check_url(u) {
                        p.add(key(spec.key), why);
                    }
                }
                (SettingType::Secret, toml::Value::String(s)) => match Secret::resolve(s) {
                    Ok(secret) => {
                        self.secrets.insert(spec.key.to_string(), secret);
                    }
                    Err(why) => p.add(key(spec.key), why),
                },
                (_, _) => p.add(key(spec.key), "must be a string"),
            }
        }
        self.caps = (rules.caps)(self);
        let mut own: Vec<&str> = rules.settings.iter().map(|s| s.key).collect();
        if self.caps.texts {
            own.extend(TIMINGS);
        }
        let given = self
            .settings
            .keys()
            .map(String::as_str)
            .chain(TIMINGS.into_iter().filter(|t| match *t {
                "send_timeout" => self.send_timeout.is_some(),
                "settle_time" => self.settle_time.is_some(),
                _ => self.retry_backoff.is_some(),
            }));
        for k in given {
            if !own.contains(&k) {
                let guess =
                    closest(k, &own).map_or_else(String::new, |g| format!("; did you mean `{g}`?"));
                p.add(
                    key(k),
                    format!(
                        "is not a setting of kind = \"{}\" (its settings: {}){guess}",
                        rules.name,
                        own.join(", ")
                    ),
                );
            }
        }
        for (k, why) in (rules.check)(self) {
            p.add(key(k), why);
        }
    }
}

/// `[[business]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessConfig {
    /// Short stable identifier used in the database.
    pub id: String,
    /// The name callers know; scripts say it.
    pub name: String,
    /// The provider numbers callers dial.
    pub numbers: Vec<String>,
    /// Where calls ring first (staff phones).
    #[serde(default)]
    pub forward_to: Vec<String>,
    /// The provider account that reports its calls (and texts, unless `sms_provider` says otherwise);
    /// optional when only one is defined.
    #[serde(default)]
    pub provider: Option<String>,
    /// The provider account that sends and receives its texts, when not `provider` (a PBX reports the calls,
    /// Twilio or a phone on the desk texts).
    #[serde(default)]
    pub sms_provider: Option<String>,
    /// IANA time zone of the business.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Wait this long after a missed call before texting, so the text never races the voicemail.
    #[serde(default = "default_text_delay")]
    pub text_delay: Dur,
    /// How long forwarded calls ring.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout: Dur,
    /// An answered call shorter than this counts as missed.
    #[serde(default = "default_short_call")]
    pub short_call: Dur,
    /// At most one text-back per caller within this window.
    #[serde(default = "default_repeat_window")]
    pub repeat_window: Dur,
    /// `direct_question`, `booking_link`, `emergency_triage`, or a custom template.
    #[serde(default = "default_script")]
    pub script: String,
    /// The booking page the `booking_link` script sends.
    #[serde(default)]
    pub booking_link: Option<String>,
    /// Texts staff insert with one tap while replying ("On our way"), plain text, at most 20.
    #[serde(default)]
    pub saved_replies: Vec<String>,
    /// What the caller hears when nobody answered; empty for nothing.
    #[serde(default = "default_missed_greeting")]
    pub missed_greeting: String,
    /// Record a voicemail after a missed call (its link is stored with the call).
    #[serde(default)]
    pub voicemail: bool,
    /// Extra fields that custom scripts can use, e.g. `fields = { area = "Phoenix" }`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Weekly opening hours; outside them missed calls get `after_hours_script`.
    #[serde(default)]
    pub hours: WeeklyHours,
    /// Whole days closed, `YYYY-MM-DD` (holidays).
    #[serde(default)]
    pub closed: Vec<String>,
    /// The script for calls missed outside opening hours.
    #[serde(default = "default_after_hours_script")]
    pub after_hours_script: String,
    /// The script for returning contacts (who texted or booked before); `script` when unset.
    #[serde(default)]
    pub returning_script: Option<String>,
    /// When automatic texts wait (`HH:MM-HH:MM`, business time; `""` for never).
    #[serde(default = "default_quiet_hours")]
    pub quiet_hours: String,
    /// What the first text-back does in quiet hours: `send`, `defer` or `skip`.
    #[serde(default)]
    pub quiet_hours_policy: QuietPolicy,
    /// A deferred or follow-up text that would leave later than this after what caused it is dropped.
    #[serde(default = "default_max_deferral")]
    pub max_deferral: Dur,
    /// Staff numbers besides `forward_to`: never texted.
    #[serde(default)]
    pub staff: Vec<String>,
    /// Numbers and prefixes never texted, e.g. `["+1900", "+14805550123"]`.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Countries (ISO codes) whose numbers may be texted; empty means the business number's country.
    #[serde(default)]
    pub allowed_countries: Vec<String>,
    /// Do not text callers whose caller ID failed carrier verification (`StirVerstat`).
    #[serde(default)]
    pub skip_unverified_callers: bool,
    /// Treat hang-ups shorter than 2 s from numbers never seen before as spam.
    #[serde(default)]
    pub skip_instant_hangups: bool,
    /// Automatic texts stay quiet this long after staff replied by hand.
    #[serde(default = "default_human_hold")]
    pub human_hold: Dur,
    /// Forwarded calls ask "press 1 to take this call", so a voicemail that picks up counts as missed.
    #[serde(default)]
    pub call_screening: bool,
    /// Ask Twilio to detect answering machines on forwarded calls; a machine answer counts as missed.
    #[serde(default)]
    pub machine_detection: bool,
    /// At most this many automatic texts per contact in 24 hours.
    #[serde(default = "default_daily_cap")]
    pub daily_cap: u32,
    /// Texts per second from each sending number (10DLC tiers allow more); extra texts queue.
    #[serde(default = "default_send_rate")]
    pub send_rate: f64,
    /// Up to 5 follow-ups, each `after` the previous text, while the contact has not answered.
    #[serde(default = "default_follow_ups")]
    pub follow_ups: Vec<FollowUp>,
    /// Keyword rules for inbound texts; replaces the default emergency rule when set.
    #[serde(default = "default_keywords")]
    pub keywords: Vec<KeywordRule>,
    /// People alerted about replies, emergencies and callbacks.
    #[serde(default)]
    pub notify: Vec<Person>,
    /// An HTTP endpoint alerted too (chat tools).
    #[serde(default)]
    pub alert_webhook: Option<AlertWebhook>,
    /// Endpoints that receive signed JSON events (CRMs, Zapier, Make, n8n).
    #[serde(default)]
    pub webhooks: Vec<EventWebhook>,
    /// Booking tools whose webhooks mark conversations booked.
    #[serde(default)]
    pub bookings: BookingsConfig,
    /// When the daily digest is emailed to the notify list: a cron expression in the business's time zone,
    /// e.g. `"0 7 * * *"`.
    #[serde(default)]
    pub digest: Option<String>,
    /// Also phone on-call people for an emergency and read them the message.
    #[serde(default)]
    pub call_on_emergency: bool,
    /// What a booked job is worth when no value was entered, in dollars (the dashboard's recovered revenue).
    #[serde(default = "default_average_ticket")]
    pub average_ticket: f64,
    /// What one SMS segment costs, in dollars (the dashboard's SMS spend).
    #[serde(default = "default_sms_price")]
    pub sms_price: f64,
}

/// `[business.hours]`: periods per weekday, `HH:MM-HH:MM`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeeklyHours {
    /// Monday.
    pub mon: Vec<String>,
    /// Tuesday.
    pub tue: Vec<String>,
    /// Wednesday.
    pub wed: Vec<String>,
    /// Thursday.
    pub thu: Vec<String>,
    /// Friday.
    pub fri: Vec<String>,
    /// Saturday.
    pub sat: Vec<String>,
    /// Sunday.
    pub sun: Vec<String>,
}

impl Default for WeeklyHours {
    fn default() -> Self {
        let day = || vec!["08:00-17:00".to_string()];
        Self {
            mon: day(),
            tue: day(),
            wed: day(),
            thu: day(),
            fri: day(),
            sat: vec![],
            sun: vec![],
        }
    }
}

impl WeeklyHours {
    /// The days Monday first, with their key names.
    pub fn days(&self) -> [(&'static str, &Vec<String>); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

pub use crate::model::QuietPolicy;

/// `[[business.follow_ups]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Wait this long after the previous text.
    pub after: Dur,
    /// What it says (a built-in script name or a template).
    pub script: String,
}

/// `[[business.keywords]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordRule {
    /// Words or phrases that trigger the rule (any case, punctuation ignored).
    pub words: Vec<String>,
    /// An automatic reply (a template over the business's fields).
    #[serde(default)]
    pub reply: Option<String>,
    /// Mark the conversation urgent (alerts then ignore quiet hours and reach on-call people).
    #[serde(default)]
    pub urgent: bool,
    /// Alert the notify list at once.
    #[serde(default)]
    pub alert: bool,
}

/// `[[business.notify]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Who.
    pub name: String,
    /// Their cell, for SMS alerts.
    #[serde(default)]
    pub sms: Option<String>,
    /// Their own quiet hours (`HH:MM-HH:MM`, business time); urgent alerts ignore them.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    /// Alerted (and phoned, with `call_on_emergency`) about emergencies.
    #[serde(default)]
    pub on_call: bool,
    /// Their email address, for alerts and the daily digest (needs `[email]`).
    #[serde(default)]
    pub email: Option<String>,
}

/// `[[business.webhooks]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventWebhook {
    /// Where events are POSTed.
    pub url: String,
    /// The key that signs them (inline, `env:NAME` or `file:/path`), at least 16 characters.
    pub secret: Secret,
    /// The event types sent; empty for all.
    #[serde(default)]
    pub events: Vec<String>,
    /// The first retry's wait after a failed delivery; later ones double, up to 15 minutes, for 24 hours.
    #[serde(default = "default_event_backoff")]
    pub retry_backoff: Dur,
}

impl EventWebhook {
    /// Whether this endpoint takes events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind || e == "*")
    }
}

fn default_event_backoff() -> Dur {
    Dur(Duration::from_secs(30))
}

/// `[business.bookings]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BookingsConfig {
    /// The Cal.com webhook's secret; Cal.com bookings are refused without it.
    pub calcom_secret: Option<Secret>,
    /// A booking question holding the caller's phone, besides Cal.com's own phone fields.
    pub calcom_phone_field: Option<String>,
    /// The Calendly subscription's signing key; Calendly bookings are refused without it.
    pub calendly_signing_key: Option<Secret>,
    /// The Calendly question that asks for the phone number, when text reminders are off.
    pub calendly_phone_question: Option<String>,
    /// The key of the generic booking endpoint (signed like outbound events).
    pub secret: Option<Secret>,
    /// How old a signed timestamp may be.
    pub tolerance: Dur,
}

impl Default for BookingsConfig {
    fn default() -> Self {
        Self {
            calcom_secret: None,
            calcom_phone_field: None,
            calendly_signing_key: None,
            calendly_phone_question: None,
            secret: None,
            tolerance: Dur(Duration::from_secs(300)),
        }
    }
}

/// `[business.alert_webhook]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertWebhook {
    /// Where to POST.
    pub url: String,
    /// `json`, `slack` (`{"text": …}`, also Mattermost and Discord-compatible) or `ntfy` (plain text with
    /// Title and Priority headers).
    #[serde(default)]
    pub format: WebhookFormat,
}

/// The body shape of alert webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Our own JSON document.
    #[default]
    Json,
    /// `{"text": "…"}`.
    Slack,
    /// ntfy: the message as the body.
    Ntfy,
}

fn default_timezone() -> String {
    "UTC".into()
}
fn default_text_delay() -> Dur {
    Dur(Duration::from_secs(20))
}
fn default_ring_timeout() -> Dur {
    Dur(Duration::from_secs(20))
}
fn default_short_call() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_repeat_window() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}
/// The script when the file sets none.
pub(crate) fn default_script() -> String {
    "direct_question".into()
}
fn default_missed_greeting() -> String {
    "Sorry we missed your call. We will text you in a moment.".into()
}
/// The after-hours script when the file sets none.
pub(crate) fn default_after_hours_script() -> String {
    "emergency_triage".into()
}
fn default_quiet_hours() -> String {
    "21:00-08:00".into()
}
fn default_max_deferral() -> Dur {
    Dur(Duration::from_secs(12 * 3600))
}
fn default_human_hold() -> Dur {
    Dur(Duration::from_secs(30 * 60))
}
fn default_average_ticket() -> f64 {
    250.0
}
fn default_sms_price() -> f64 {
    0.0083
}
fn default_daily_cap() -> u32 {
    3
}
fn default_send_rate() -> f64 {
    1.0
}
fn default_follow_ups() -> Vec<FollowUp> {
    vec![FollowUp {
        after: Dur(Duration::from_secs(2 * 3600)),
        script: "Hi again from {{ name }} - still need a hand? Reply here with what's going on and we'll get you sorted.".into(),
    }]
}
/// The emergency rule every business gets unless it writes its own `keywords`.
pub fn default_keywords() -> Vec<KeywordRule> {
    vec![KeywordRule {
        words: vec!["EMERGENCY".into(), "URGENT".into(), "911".into()],
        reply: Some(
            "Thanks - we're getting someone to the phone for you right now. If anyone is in danger, call 911.".into(),
        ),
        urgent: true,
        alert: true,
    }]
}

impl BusinessConfig {
    /// The business's parsed numbers (validation guarantees they parse).
    pub fn numbers(&self) -> Vec<PhoneNumber> {
        self.numbers
            .iter()
            .filter_map(|n| PhoneNumber::parse(n).ok())
            .collect()
    }
    /// The parsed `forward_to` numbers.
    pub fn forward_to(&self) -> Vec<PhoneNumber> {
        self.forward_to
            .iter()
            .filter_map(|n| PhoneNumber::parse(n).ok())
            .collect()
    }
    /// The first number, used as the sender of texts (validation guarantees there is one).
    pub fn sender(&self) -> &str {
        self.numbers.first().map(|s| s.trim()).unwrap_or_default()
    }
    /// The business's time zone (validation guarantees it parses).
    pub fn tz(&self) -> crate::zone::Tz {
        self.timezone.parse().unwrap_or(crate::zone::UTC)
    }

    /// Opening hours and closure dates.
    pub fn schedule(&self) -> hours::Schedule {
        let days = self.hours.days().map(|(_, spans)| {
            spans
                .iter()
                .filter_map(|s| hours::parse_span(s).ok())
                .collect()
        });
        hours::Schedule {
            tz: self.tz(),
            days,
            closed: self
                .closed
                .iter()
                .filter_map(|d| hours::parse_date(d).ok())
                .collect(),
        }
    }

    /// The business's quiet hours.
    pub fn quiet(&self) -> hours::Window {
        window(self.tz(), &self.quiet_hours)
    }

    /// A person's own quiet hours (never, when unset).
    pub fn person_quiet(&self, person: &Person) -> hours::Window {
        window(self.tz(), person.quiet_hours.as_deref().unwrap_or(""))
    }

    /// Staff numbers: `forward_to`, `staff` and the notify list. Never texted as callers.
    pub fn staff_numbers(&self) -> Vec<PhoneNumber> {
        self.forward_to
            .iter()
            .chain(&self.staff)
            .chain(self.notify.iter().filter_map(|p| p.sms.as_ref()))
            .filter_map(|n| PhoneNumber::parse(n).ok())
            .collect()
    }

    /// Countries whose numbers may be texted: as configured, else the business number's own.
    pub fn allowed_countries(&self) -> Vec<String> {
        if self.allowed_countries.is_empty() {
            crate::country::of(self.sender())
                .map(|c| vec![c.to_string()])
                .unwrap_or_default()
        } else {
            self.allowed_countries.clone()
        }
    }

    /// The fields a script template sees.
    pub fn script_fields(&self) -> BTreeMap<String, String> {
        let mut f = self.fields.clone();
        f.insert("id".into(), self.id.clone());
        f.insert("name".into(), self.name.clone());
        f.insert(
            "booking_link".into(),
            self.booking_link.clone().unwrap_or_default(),
        );
        f
    }
}

fn window(tz: crate::zone::Tz, spec: &str) -> hours::Window {
    hours::Window {
        tz,
        span: if spec.trim().is_empty() {
            None
        } else {
            hours::parse_span(spec).ok()
        },
    }
}

/// A human duration such as `"20s"`, `"2h"` or `"1d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    /// Whole milliseconds.
    pub fn millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
    /// Whole seconds.
    pub fn secs(self) -> u64 {
        self.0.as_secs()
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration in quotes such as \"20s\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                humantime::parse_duration(s).map(Dur).map_err(|e| {
                    E::custom(format!(
                        "invalid duration {s:?} ({e}); write it like \"20s\", \"5m\", \"2h\" or \"1d\""
                    ))
                })
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs quotes and a unit: write \"{n}s\" for {n} seconds"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs quotes and a unit: write \"{n}s\" for {n} seconds"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs quotes and a unit: write \"{n}s\" for {n} seconds"
                )))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A secret written inline, as `env:NAME`, or as `file:/path`; resolved when the file is read.
/// Its `Debug` hides the value and it has no `Display`, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: String,
    value: String,
}

impl Secret {
    /// A secret from a literal value (tests and defaults).
    pub fn literal(value: &str) -> Self {
        Self {
            source: "inline".into(),
            value: value.into(),
        }
    }
    /// The secret value, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.value
    }
    /// Reads a secret as the file writes it: inline, `env:NAME` or `file:/path`.
    pub fn resolve(spec: &str) -> Result<Self, String> {
        if let Some(name) = spec.strip_prefix("env:") {
            let value = std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?;
            return Ok(Self {
                source: spec.into(),
                value,
            });
        }
        if let Some(path) = spec.strip_prefix("file:") {
            let value = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file {path}: {e}"))?;
            return Ok(Self {
                source: spec.into(),
                value: value.trim_end_matches(['\n', '\r']).to_string(),
            });
        }
        Ok(Self {
            source: "inline".into(),
            value: spec.into(),
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, ***)", self.source)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Secret::resolve(&s).map_err(serde::de::Error::custom)
    }
}

/// The demo business of the built-in defaults: every other key at its default.
fn demo_business() -> BusinessConfig {
    let demo = r#"
        id = "demo"
        name = "Demo Plumbing"
        numbers = ["+16025550100"]
        forward_to = ["+16025550199"]
        timezone = "America/Phoenix"
        saved_replies = ["On our way!", "Can you send a photo of the problem?"]
    "#;
    // A unit test parses this; it cannot fail at run time.
    #[allow(clippy::expect_used)]
    toml::from_str(demo).expect("the demo business parses")
}

impl Default for Config {
    /// The built-in defaults: the simulator provider and one demo business, so `textback serve` works with no
    /// file at all. `config.example.toml` spells out exactly this.
    fn default() -> Self {
        let mut providers = BTreeMap::new();
        providers.insert(
            "simulator".to_string(),
            ProviderConfig {
                send_timeout: Some(Dur(Duration::from_secs(30))),
                settle_time: Some(Dur(Duration::from_secs(120))),
                retry_backoff: Some(Dur(Duration::from_secs(5))),
                ..ProviderConfig::new("simulator")
            },
        );
        Self {
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            log: LogConfig::default(),
            providers,
            businesses: vec![demo_business()],
            push: PushConfig::default(),
            email: None,
            backup: None,
            retention: RetentionConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// One problem with the configuration, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when there is one.
    pub file: Option<PathBuf>,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// Key path such as `business[0].numbers[1]`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<built-in defaults>".into());
        match self.line {
            Some(l) => write!(f, "{file}:{l}: ")?,
            None => write!(f, "{file}: ")?,
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// All the problems found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The configuration in force, shared by the HTTP workers and the scheduler, and replaced whole when the
/// settings page saves a change (no restart).
#[derive(Clone, Debug)]
pub struct Shared(std::sync::Arc<std::sync::RwLock<std::sync::Arc<Config>>>);

impl Shared {
    /// Shares a configuration.
    pub fn new(config: Config) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(
            std::sync::Arc::new(config),
        )))
    }

    /// The configuration now. Hold it for one request or one job, not longer.
    pub fn get(&self) -> std::sync::Arc<Config> {
        match self.0.read() {
            Ok(c) => std::sync::Arc::clone(&c),
            Err(poisoned) => std::sync::Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts a new configuration in force.
    pub fn set(&self, config: Config) {
        let fresh = std::sync::Arc::new(config);
        match self.0.write() {
            Ok(mut c) => *c = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }
}

/// A validated configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file it was read from; `None` for the built-in defaults.
    pub path: Option<PathBuf>,
    /// The database path, resolved against the file's folder.
    pub database: PathBuf,
}

impl Loaded {
    /// Describes the source for start-up messages.
    pub fn source(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "built-in defaults (no config file found)".into(),
        }
    }
}

/// Finds the config file: the explicit path if given (it must exist), else the first of [`SEARCH_PATHS`]
/// that exists, else `None` for the built-in defaults.
pub fn find(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    SEARCH_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Loads and validates the file at `path`, or the built-in defaults when `path` is `None`, with the provider
/// kinds `kinds` (the provider registry's).
pub fn load(path: Option<&Path>, kinds: &[&KindRules]) -> Result<Loaded, ConfigErrors> {
    let Some(path) = path else {
        let mut config = Config::default();
        let errors = config.validate(None, None, kinds);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let database = config.storage.database.clone();
        return Ok(Loaded {
            config,
            path: None,
            database,
        });
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: Some(path.to_path_buf()),
            line: None,
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    let config = parse(&text, Some(path), kinds)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let database = if config.storage.database.is_absolute() {
        config.storage.database.clone()
    } else {
        base.join(&config.storage.database)
    };
    Ok(Loaded {
        config,
        path: Some(path.to_path_buf()),
        database,
    })
}

/// Parses and validates TOML text with the provider kinds `kinds`; `file` is only used in messages. Every
/// problem is reported at once: a value of the wrong type or an unknown key is reported, taken out, and
/// the rest read again; then the rules that span keys are checked on what is left.
pub fn parse(
    text: &str,
    file: Option<&Path>,
    kinds: &[&KindRules],
) -> Result<Config, ConfigErrors> {
    let at = |line: Option<usize>, key: String, message: String| ConfigError {
        file: file.map(Path::to_path_buf),
        line,
        key,
        message,
    };
    let Ok(doc) = toml_edit::Document::parse(text.to_string()) else {
        // Not TOML at all: the parser's one error is all there is to say.
        let (line, message) = toml::from_str::<toml::Table>(text).err().map_or_else(
            || (None, "the file is not valid TOML".to_string()),
            |e| {
                (
                    e.span().map(|s| line_of_offset(text, s.start)),
                    e.message().trim().to_string(),
                )
            },
        );
        return Err(ConfigErrors(vec![at(line, String::new(), message)]));
    };
    let read = read_all(text);
    let mut all: Vec<ConfigError> = read
        .errors
        .into_iter()
        .map(|(key, message)| at(line_of_key(text, &doc, &key), key, message))
        .collect();
    if let Some(mut config) = read.config {
        // Keys taken out fall back to their defaults; what the rules then say about them is not news.
        let removed = read.removed;
        all.extend(
            config
                .validate(file, Some((text, &doc)), kinds)
                .into_iter()
                .filter(|e| {
                    !removed
                        .iter()
                        .any(|r| e.key == *r || e.key.starts_with(&format!("{r}.")))
                }),
        );
        if all.is_empty() {
            return Ok(config);
        }
    }
    Err(ConfigErrors(all))
}

/// What reading a file's values into the schema found.
struct Read {
    /// The configuration, once everything wrong was replaced or taken out (`None` when that did not get
    /// it read).
    config: Option<Config>,
    /// The keys replaced or taken out, by path: what validation says of them is not news.
    removed: Vec<String>,
    /// `(key path, problem)` for each value of the wrong type or shape, unknown key and missing key.
    errors: Vec<(String, String)>,
}

/// Deserializes `text`, reporting each value serde refuses and putting a harmless one of the expected
/// type in its place (or taking it out: an unknown key), then reading again, so one run names every
/// problem. Values keep their places, so every key path still points at the file as written.
fn read_all(text: &str) -> Read {
    let mut current = text.to_string();
    let mut read = Read {
        config: None,
        removed: Vec::new(),
        errors: Vec::new(),
    };
    // A file has few enough keys; the bound only guards against a loop.
    for _ in 0..200 {
        let e = match toml::from_str::<Config>(&current) {
            Ok(config) => {
                read.config = Some(config);
                return read;
            }
            Err(e) => e,
        };
        let Ok(doc) = toml_edit::Document::parse(current.clone()) else {
            break;
        };
        let table = e
            .span()
            .and_then(|span| key_at(&doc, span.start))
            .unwrap_or_default();
        let raw = e.message().trim().to_string();
        let (key, fill) = match missing_field(&raw) {
            // A required key is absent: said once (unless it was taken out here), then given a stand-in.
            Some(field) => (join_key(&table, field), Some(toml_edit::Value::from(""))),
            None => (table, placeholder(&raw)),
        };
        if !read.removed.contains(&key) {
            read.errors.push((key.clone(), explain(&raw)));
        } else if read.removed.iter().filter(|r| **r == key).count() > 2 {
            // No stand-in satisfies it: stop rather than go round.
            break;
        }
        if key.is_empty() {
            break;
        }
        let Some(next) = patch_key(&current, &key, fill) else {
            break;
        };
        read.removed.push(key);
        current = next;
    }
    read
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The field named by serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// A value of the type serde said it expected, to stand in for a wrong one; `None` to take it out.
fn placeholder(message: &str) -> Option<toml_edit::Value> {
    if message.starts_with("unknown field") {
        return None;
    }
    if message.starts_with("a duration") || message.starts_with("invalid duration") {
        return Some("1s".into());
    }
    if let Some(variants) = message
        .split_once("expected one of `")
        .or_else(|| message.split_once("expected `"))
        .map(|(_, rest)| rest)
    {
        return variants.split('`').next().map(toml_edit::Value::from);
    }
    let expected = message.rsplit_once("expected ").map_or("", |(_, e)| e);
    match expected {
        "a string" => Some("".into()),
        "a boolean" => Some(false.into()),
        "a sequence" => Some(toml_edit::Value::Array(toml_edit::Array::new())),
        e if e.starts_with('u') || e.starts_with('i') => Some(0i64.into()),
        e if e.starts_with('f') => Some(0.0.into()),
        _ => None,
    }
}

/// `text` with the value at `path` (`business[0].numbers[1]`) replaced by `with`, or taken out when `with`
/// is `None`; `None` when the path is not there.
fn patch_key(text: &str, path: &str, with: Option<toml_edit::Value>) -> Option<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().ok()?;
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, path),
    };
    let mut item = doc.as_item_mut();
    if let Some(parent) = parent {
        for part in parent.split('.') {
            item = step(item, part)?;
        }
    }
    let (name, index) = split_index(last);
    match (index, with) {
        (None, Some(v)) => {
            item.as_table_like_mut()?
                .insert(name, toml_edit::Item::Value(v));
        }
        (None, None) => {
            item.as_table_like_mut()?.remove(name)?;
        }
        (Some(i), with) => {
            let list = item.get_mut(name)?;
            if let Some(a) = list.as_array_mut() {
                if i >= a.len() {
                    return None;
                }
                match with {
                    Some(v) => {
                        a.replace(i, v);
                    }
                    None => {
                        a.remove(i);
                    }
                }
            } else if let Some(a) = list.as_array_of_tables_mut() {
                (i < a.len()).then(|| a.remove(i))?;
            } else {
                return None;
            }
        }
    }
    Some(doc.to_string())
}

fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
        None => (part, None),
    }
}

/// One step down a key path: `name` or `name[i]` (an array's value or an array of tables' table).
fn step<'a>(item: &'a mut toml_edit::Item, part: &str) -> Option<&'a mut toml_edit::Item> {
    let (name, index) = split_index(part);
    let next = item.get_mut(name)?;
    match index {
        None => Some(next),
        Some(i) => next.get_mut(i),
    }
}

/// A serde message in the file's words: a suggestion for a misspelt key, the expected form for a wrong
/// type.
fn explain(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return match closest(field, &known) {
            Some(k) => format!("unknown key `{field}`: did you mean `{k}`?"),
            None => {
                format!("unknown key `{field}` (config.example.toml lists every key of this table)")
            }
        };
    }
    let hint = if message.contains("expected a boolean") {
        "write true or false, without quotes"
    } else if message.contains("expected a sequence") {
        "write a list in brackets, e.g. [\"first\", \"second\"]"
    } else if message.contains("invalid type: integer")
        || message.contains("invalid type: floating point")
    {
        if message.contains("expected a string") {
            "write it in quotes"
        } else {
            ""
        }
    } else {
        ""
    };
    if hint.is_empty() {
        message.to_string()
    } else {
        format!("{message}: {hint}")
    }
}

/// The known name nearest to `given`, when it is near enough to be a typo (at most a third of its letters
/// off).
pub fn closest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::osa_distance(given, k), *k))
        .filter(|(d, k)| *d <= (given.len().max(k.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

type Spans<'a> = Option<(&'a str, &'a toml_edit::Document<String>)>;

struct Problems<'a> {
    file: Option<&'a Path>,
    spans: Spans<'a>,
    list: Vec<ConfigError>,
}

impl Problems<'_> {
    fn add(&mut self, key: String, message: impl Into<String>) {
        let line = self
            .spans
            .and_then(|(text, doc)| line_of_key(text, doc, &key));
        self.list.push(ConfigError {
            file: self.file.map(Path::to_path_buf),
            line,
            key,
            message: message.into(),
        });
    }
}

impl Config {
    /// The business with this id.
    pub fn business(&self, id: &str) -> Option<&BusinessConfig> {
        self.businesses.iter().find(|b| b.id == id)
    }

    /// The business that owns this number (as a provider sends it).
    pub fn business_for_number(&self, number: &str) -> Option<&BusinessConfig> {
        let number = number.trim();
        self.businesses
            .iter()
            .find(|b| b.numbers.iter().any(|n| n.trim() == number))
    }

    /// The business a staff phone (`forward_to` or `staff`) belongs to, for callbacks placed from it.
    pub fn business_for_staff_number(&self, number: &str) -> Option<&BusinessConfig> {
        let number = number.trim();
        self.businesses.iter().find(|b| {
            b.forward_to
                .iter()
                .chain(&b.staff)
                .any(|n| n.trim() == number)
        })
    }

    /// The name of the provider account that reports a business's calls (validation guarantees there is
    /// one).
    pub fn provider_name<'a>(&'a self, business: &'a BusinessConfig) -> &'a str {
        match &business.provider {
            Some(name) => name,
            None => self.providers.keys().next().map_or("", String::as_str),
        }
    }

    /// The name of the provider account that texts for a business: `sms_provider`, else `provider`.
    pub fn sms_provider_name<'a>(&'a self, business: &'a BusinessConfig) -> &'a str {
        business
            .sms_provider
            .as_deref()
            .unwrap_or_else(|| self.provider_name(business))
    }

    /// Checks the rules that span keys, and each provider account against its kind's rules (resolving its
    /// secrets); returns every problem found.
    fn validate(
        &mut self,
        file: Option<&Path>,
        spans: Spans<'_>,
        kinds: &[&KindRules],
    ) -> Vec<ConfigError> {
        let mut p = Problems {
            file,
            spans,
            list: Vec::new(),
        };
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            p.add(
                "server.listen".into(),
                format!(
                    "{:?} is not an address and port such as \"127.0.0.1:8080\"",
                    self.server.listen
                ),
            );
        }
        if let Err(why) = crate::logging::filter(&self.log.level) {
            p.add("log.level".into(), why);
        }
        if let Some(u) = &self.server.public_url {
            if let Err(why) = check_url(u) {
                p.add("server.public_url".into(), why);
            }
        }
        if let Some(contact) = &self.push.contact {
            if let Err(why) = crate::push::check_contact(contact) {
                p.add("push.contact".into(), why);
            }
        }
        for (i, origin) in self.push.services.iter().enumerate() {
            let bare = url::Url::parse(origin)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .filter(|u| u.origin().ascii_serialization() == origin.trim_end_matches('/'));
            if bare.is_none() {
                p.add(
                    format!("push.services[{i}]"),
                    format!("{origin:?} is not an origin such as \"https://push.example.net\" (scheme, host and port only)"),
                );
            }
        }
        if self.storage.busy_timeout.0 > Duration::from_secs(60) {
            p.add(
                "storage.busy_timeout".into(),
                "must be at most 1m: a webhook waiting longer is retried by the provider anyway",
            );
        }
        if self.providers.is_empty() {
            p.add(
                "providers".into(),
                "no provider is defined: add a [providers.NAME] table (kind = \"twilio\" or \"simulator\")",
            );
        }
        for (name, prov) in &mut self.providers {
            prov.apply_rules(&mut p, name, kinds);
            validate_timings(&mut p, name, prov);
            if prov.caps.calls_back && self.server.public_url.is_none() {
                p.add(
                    "server.public_url".into(),
                    format!(
                        "is required with the {} provider {name:?}: it calls back the URLs textback gives it (and signs them), e.g. \"https://textback.example.com\"",
                        prov.kind
                    ),
                );
            }
        }
        if self.businesses.is_empty() {
            p.add(
                "business".into(),
                "no business is defined: add a [[business]] table",
            );
        }
        let mut ids = BTreeSet::new();
        let mut numbers: BTreeMap<String, usize> = BTreeMap::new();
        for (i, b) in self.businesses.iter().enumerate() {
            if !ids.insert(b.id.clone()) {
                p.add(
                    format!("business[{i}].id"),
                    format!("{:?} is used by another business", b.id),
                );
            }
            for (j, n) in b.numbers.iter().enumerate() {
                if let Some(other) = numbers.insert(n.trim().to_string(), i) {
                    if other != i {
                        p.add(
                            format!("business[{i}].numbers[{j}]"),
                            format!("{n} is already a number of business[{other}]"),
                        );
                    }
                }
            }
            self.validate_business(&mut p, i, b);
        }
        validate_email(&mut p, self.email.as_ref(), &self.businesses);
        if self
            .metrics
            .token
            .as_ref()
            .is_some_and(|t| t.expose().chars().count() < MIN_SECRET_CHARS)
        {
            p.add(
                "metrics.token".into(),
                format!("must be at least {MIN_SECRET_CHARS} characters; make one with `openssl rand -hex 32`"),
            );
        }
        for (key, d) in [
            ("retention.message_bodies", self.retention.message_bodies),
            ("retention.calls", self.retention.calls),
        ] {
            if d.is_some_and(|d| d.0 < Duration::from_secs(24 * 3600)) {
                p.add(key.into(), "must be at least 1d (it deletes data for good)");
            }
        }
        if let Some(b) = &self.backup {
            if b.dir.as_os_str().is_empty() {
                p.add(
                    "backup.dir".into(),
                    "must name a folder, e.g. \"/var/backups/textback\"",
                );
            }
            if let Err(why) = crate::cron::Cron::parse(&b.schedule) {
                p.add("backup.schedule".into(), why);
            }
            if !(1..=1000).contains(&b.keep) {
                p.add("backup.keep".into(), "must be from 1 to 1000");
            }
            if let Some(tz) = &b.timezone {
                if tz.parse::<crate::zone::Tz>().is_err() {
                    p.add(
                        "backup.timezone".into(),
                        format!("{tz:?} is not an IANA time zone such as \"America/Phoenix\""),
                    );
                }
            }
        }
        for (i, b) in self.businesses.iter().enumerate() {
            if b.digest.is_some() && !b.notify.iter().any(|n| n.email.is_some()) {
                p.add(
                    format!("business[{i}].digest"),
                    "goes to the notify list's email addresses, and no one on it has one",
                );
            }
        }
        p.list
    }

    fn no_provider_named(&self, name: &str) -> String {
        let defined: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        format!(
            "no provider named {name:?}; defined: {}",
            defined.join(", ")
        )
    }

    fn validate_business(&self, p: &mut Problems<'_>, i: usize, b: &BusinessConfig) {
        let key = |k: &str| format!("business[{i}].{k}");
        if b.id.is_empty()
            || !b
                .id
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
        {
            p.add(
                key("id"),
                format!(
                    "{:?} must be lowercase letters, digits, - or _ (it is stored in the database)",
                    b.id
                ),
            );
        }
        if b.name.trim().is_empty() {
            p.add(key("name"), "must not be empty: scripts say it to callers");
        }
        if b.name.chars().count() > MAX_NAME {
            p.add(
                key("name"),
                format!("must be at most {MAX_NAME} characters: every text says it"),
            );
        }
        for (k, v) in &b.fields {
            if v.chars().count() > MAX_FIELD {
                p.add(
                    format!("business[{i}].fields.{k}"),
                    format!("must be at most {MAX_FIELD} characters"),
                );
            }
        }
        if b.numbers.is_empty() {
            p.add(
                key("numbers"),
                "list at least one provider number callers dial, e.g. [\"+16025550100\"]",
            );
        }
        for (j, n) in b.numbers.iter().enumerate() {
            if let Err(e) = PhoneNumber::parse(n) {
                p.add(format!("business[{i}].numbers[{j}]"), e.to_string());
            }
        }
        for (j, n) in b.forward_to.iter().enumerate() {
            if let Err(e) = PhoneNumber::parse(n) {
                p.add(format!("business[{i}].forward_to[{j}]"), e.to_string());
            }
        }
        match &b.provider {
            Some(name) if !self.providers.contains_key(name) => {
                p.add(key("provider"), self.no_provider_named(name))
            }
            None if self.providers.len() > 1 => p.add(
                key("provider"),
                "several providers are defined, so say which one this business uses",
            ),
            _ => {}
        }
        if let Some(calls) = self.providers.get(self.provider_name(b)) {
            for (on, setting) in [
                (b.call_screening, "call_screening"),
                (b.machine_detection, "machine_detection"),
            ] {
                if on && calls.caps.reports_calls && !calls.caps.screens_calls {
                    p.add(
                        key(setting),
                        format!(
                            "the {} account {:?} that reports this business's calls cannot screen forwarded calls: turn it off",
                            calls.kind,
                            self.provider_name(b)
                        ),
                    );
                }
            }
            if !calls.caps.reports_calls {
                p.add(
                    key("provider"),
                    format!(
                        "an {} account texts but cannot report calls: make it this business's sms_provider",
                        calls.kind
                    ),
                );
            }
        }
        if let Some(texts) = self.providers.get(self.sms_provider_name(b)) {
            if !texts.caps.texts {
                p.add(
                    key(if b.sms_provider.is_some() { "sms_provider" } else { "provider" }),
                    format!(
                        "a {} account reports calls but cannot text: set sms_provider to an account that texts",
                        texts.kind
                    ),
                );
            }
        }
        if let Some(name) = &b.sms_provider {
            if !self.providers.contains_key(name) {
                p.add(key("sms_provider"), self.no_provider_named(name));
            }
        }
        if b.timezone.parse::<crate::zone::Tz>().is_err() {
            p.add(
                key("timezone"),
                format!(
                    "{:?} is not an IANA time zone such as \"America/Phoenix\"",
                    b.timezone
                ),
            );
        }
        if b.text_delay.0 > Duration::from_secs(3600) {
            p.add(
                key("text_delay"),
                "must be at most 1h: a text-back only helps while the caller is still deciding",
            );
        }
        if !(5..=600).contains(&b.ring_timeout.secs()) {
            p.add(
                key("ring_timeout"),
                "must be between 5s and 10m (Twilio's <Dial timeout> range)",
            );
        }
        if b.short_call.0 > Duration::from_secs(600) {
            p.add(key("short_call"), "must be at most 10m");
        }
        if let Some(link) = &b.booking_link {
            if let Err(why) = check_url(link) {
                p.add(key("booking_link"), why);
            }
        }
        if b.script == "booking_link" && b.booking_link.is_none() {
            p.add(
                key("script"),
                "the booking_link script needs business.booking_link to be set",
            );
        }
        if let Err(e) = script::render(&b.script, &b.script_fields()) {
            p.add(key("script"), e.to_string());
        }
        if b.saved_replies.len() > MAX_SAVED_REPLIES {
            p.add(
                key("saved_replies"),
                format!("at most {MAX_SAVED_REPLIES} saved replies"),
            );
        }
        for (j, r) in b.saved_replies.iter().enumerate() {
            if r.trim().is_empty() || r.chars().count() > script::MAX_OUTPUT {
                p.add(
                    format!("business[{i}].saved_replies[{j}]"),
                    format!("must be between 1 and {} characters", script::MAX_OUTPUT),
                );
            }
        }
        validate_engine(p, i, b);
    }
}

/// The keys of the conversation engine: hours, quiet hours, exclusions, follow-ups, keywords, alerts.
/// The signed outbound events, booking hooks, digest and email addresses of one business.
fn validate_integrations(p: &mut Problems<'_>, i: usize, b: &BusinessConfig) {
    let key = |k: &str| format!("business[{i}].{k}");
    let mut urls = BTreeSet::new();
    for (j, w) in b.webhooks.iter().enumerate() {
        let wk = |k: &str| format!("business[{i}].webhooks[{j}].{k}");
        if let Some(why) = host_problem(&w.url) {
            p.add(wk("url"), why);
        } else if check_url(&w.url).is_err() {
            p.add(
                wk("url"),
                "is not an http(s) URL without query, fragment or spaces, e.g. \"https://crm.example.com/hooks/textback\"",
            );
        } else if !urls.insert(w.url.as_str()) {
            p.add(
                wk("url"),
                "is listed twice: each endpoint once, with all the events it takes",
            );
        }
        if w.secret.expose().chars().count() < MIN_SECRET_CHARS {
            p.add(
                wk("secret"),
                format!("must be at least {MIN_SECRET_CHARS} characters; make one with `openssl rand -hex 32`"),
            );
        }
        for (k, e) in w.events.iter().enumerate() {
            if e != "*"
                && !crate::outbound::Kind::ALL
                    .iter()
                    .any(|kind| kind.as_str() == e)
            {
                let names: Vec<&str> = crate::outbound::Kind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect();
                let guess = closest(e, &names)
                    .map_or_else(String::new, |g| format!("; did you mean `{g}`?"));
                p.add(
                    wk(&format!("events[{k}]")),
                    format!(
                        "{e:?} is not an event type (they are: {}){guess}",
                        names.join(", ")
                    ),
                );
            }
        }
        if w.retry_backoff.0 < Duration::from_millis(10)
            || w.retry_backoff.0 > Duration::from_secs(3600)
        {
            p.add(wk("retry_backoff"), "must be between 10ms and 1h");
        }
    }
    let bk = &b.bookings;
    for (name, secret) in [
        ("calcom_secret", &bk.calcom_secret),
        ("calendly_signing_key", &bk.calendly_signing_key),
        ("secret", &bk.secret),
    ] {
        if secret
            .as_ref()
            .is_some_and(|s| s.expose().trim().is_empty())
        {
            p.add(key(&format!("bookings.{name}")), "must not be empty");
        }
    }
    if bk.tolerance.0 < Duration::from_secs(30) || bk.tolerance.0 > Duration::from_secs(3600) {
        p.add(key("bookings.tolerance"), "must be between 30s and 1h");
    }
    if let Some(expr) = &b.digest {
        if let Err(why) = crate::cron::Cron::parse(expr) {
            p.add(key("digest"), why);
        }
    }
    for (j, person) in b.notify.iter().enumerate() {
        if let Some(addr) = &person.email {
            if let Err(why) = check_email(addr) {
                p.add(format!("business[{i}].notify[{j}].email"), why);
            }
        }
    }
}

/// The fewest characters a signing secret may have.
pub const MIN_SECRET_CHARS: usize = 16;

/// Checks an email address written in the file (`a@b.example`).
pub fn check_email(addr: &str) -> Result<(), String> {
    addr.trim()
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|_| format!("{addr:?} is not an email address like \"owner@example.com\""))
}

/// `[email]`, and that every business asking for email has it.
fn validate_email(
    p: &mut Problems<'_>,
    email: Option<&EmailConfig>,
    businesses: &[BusinessConfig],
) {
    if let Some(e) = email {
        if e.host.trim().is_empty() {
            p.add(
                "email.host".into(),
                "must name the SMTP server, e.g. \"smtp.example.com\"",
            );
        } else if let Some(why) = host_problem(&e.host) {
            p.add("email.host".into(), why);
        }
        if e.from.trim().parse::<lettre::message::Mailbox>().is_err() {
            p.add(
                "email.from".into(),
                format!("{:?} is not a sender like \"alerts@example.com\" or \"Acme alerts <alerts@example.com>\"", e.from),
            );
        }
        if e.port == Some(0) {
            p.add("email.port".into(), "must be a port number from 1 to 65535");
        }
        if e.password.is_some() && e.user.is_none() {
            p.add("email.user".into(), "is required with a password");
        }
        if e.tls == EmailTls::None {
            if !e.allow_plaintext {
                p.add(
                    "email.tls".into(),
                    "\"none\" sends mail in clear text: use \"implicit\" (port 465) or \"starttls\" (port 587), or set allow_plaintext = true for a relay on this machine",
                );
            }
            if e.user.is_some() || e.password.is_some() {
                p.add(
                    "email.password".into(),
                    "cannot be used with tls = \"none\": a password is never sent in clear text",
                );
            }
        }
        if e.timeout.0 < Duration::from_millis(100) || e.timeout.0 > Duration::from_secs(300) {
            p.add("email.timeout".into(), "must be between 100ms and 5m");
        }
        if e.retry_backoff.0 < Duration::from_millis(10)
            || e.retry_backoff.0 > Duration::from_secs(3600)
        {
            p.add("email.retry_backoff".into(), "must be between 10ms and 1h");
        }
    }
    if email.is_some() {
        return;
    }
    for (i, b) in businesses.iter().enumerate() {
        if b.digest.is_some() {
            p.add(
                format!("business[{i}].digest"),
                "needs an [email] section to send it through",
            );
        }
        for (j, person) in b.notify.iter().enumerate() {
            if person.email.is_some() {
                p.add(
                    format!("business[{i}].notify[{j}].email"),
                    "needs an [email] section to send alerts through",
                );
            }
        }
    }
}

fn validate_engine(p: &mut Problems<'_>, i: usize, b: &BusinessConfig) {
    let key = |k: &str| format!("business[{i}].{k}");
    for (day, spans) in b.hours.days() {
        for (j, span) in spans.iter().enumerate() {
            match hours::parse_span(span) {
                Err(why) => p.add(format!("business[{i}].hours.{day}[{j}]"), why),
                Ok(s) if s.start >= s.end => p.add(
                    format!("business[{i}].hours.{day}[{j}]"),
                    format!("{span:?} ends before it starts; split a period that crosses midnight in two"),
                ),
                Ok(_) => {}
            }
        }
    }
    for (j, d) in b.closed.iter().enumerate() {
        if let Err(why) = hours::parse_date(d) {
            p.add(format!("business[{i}].closed[{j}]"), why);
        }
    }
    if !b.quiet_hours.trim().is_empty() {
        if let Err(why) = hours::parse_span(&b.quiet_hours) {
            p.add(key("quiet_hours"), format!("{why} (or \"\" for none)"));
        }
    }
    let fields = b.script_fields();
    let mut scripts = vec![(
        "after_hours_script".to_string(),
        b.after_hours_script.clone(),
    )];
    if let Some(r) = &b.returning_script {
        scripts.push(("returning_script".into(), r.clone()));
    }
    for (j, f) in b.follow_ups.iter().enumerate() {
        scripts.push((format!("follow_ups[{j}].script"), f.script.clone()));
        if f.after.0 < Duration::from_secs(1) {
            p.add(
                format!("business[{i}].follow_ups[{j}].after"),
                "must be at least 1s",
            );
        }
    }
    for (j, k) in b.keywords.iter().enumerate() {
        if let Some(r) = &k.reply {
            scripts.push((format!("keywords[{j}].reply"), r.clone()));
        }
        if k.words.is_empty()
            || k.words
                .iter()
                .any(|w| !w.chars().any(char::is_alphanumeric))
        {
            p.add(
                format!("business[{i}].keywords[{j}].words"),
                "list one or more words or phrases, each with a letter or digit",
            );
        }
    }
    for (k, text) in scripts {
        if let Err(e) = script::render(&text, &fields) {
            p.add(key(&k), e.to_string());
        }
    }
    if b.follow_ups.len() > 5 {
        p.add(
            key("follow_ups"),
            "at most 5 follow-ups: more reads as spam",
        );
    }
    for (j, n) in b.staff.iter().enumerate() {
        if let Err(e) = PhoneNumber::parse(n) {
            p.add(format!("business[{i}].staff[{j}]"), e.to_string());
        }
    }
    for (j, d) in b.deny.iter().enumerate() {
        let ok = d.strip_prefix('+').is_some_and(|r| {
            !r.is_empty() && r.len() <= 15 && r.bytes().all(|c| c.is_ascii_digit())
        });
        if !ok {
            p.add(
                format!("business[{i}].deny[{j}]"),
                format!("{d:?} is not a number or prefix like \"+1900\" or \"+14805550123\""),
            );
        }
    }
    for (j, c) in b.allowed_countries.iter().enumerate() {
        if !(c == "*" || (c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))) {
            p.add(
                format!("business[{i}].allowed_countries[{j}]"),
                format!("{c:?} is not a two-letter country code such as \"US\" (or \"*\" for any)"),
            );
        }
    }
    if !(b.send_rate > 0.0 && b.send_rate <= 100.0) {
        p.add(
            key("send_rate"),
            "must be more than 0 and at most 100 texts per second",
        );
    }
    for (k, v) in [
        ("average_ticket", b.average_ticket),
        ("sms_price", b.sms_price),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            p.add(key(k), "must be a positive amount of dollars");
        }
    }
    if b.daily_cap == 0 {
        p.add(
            key("daily_cap"),
            "must be at least 1 (the text-back itself counts)",
        );
    }
    for (j, person) in b.notify.iter().enumerate() {
        let pk = |k: &str| format!("business[{i}].notify[{j}].{k}");
        if person.name.trim().is_empty() {
            p.add(pk("name"), "must not be empty");
        }
        if let Some(n) = &person.sms {
            if let Err(e) = PhoneNumber::parse(n) {
                p.add(pk("sms"), e.to_string());
            }
        }
        if let Some(q) = &person.quiet_hours {
            if !q.trim().is_empty() {
                if let Err(why) = hours::parse_span(q) {
                    p.add(pk("quiet_hours"), why);
                }
            }
        }
    }
    validate_integrations(p, i, b);
    if let Some(w) = &b.alert_webhook {
        // The URL is the webhook's only credential: the message does not repeat it (it may reach a log).
        if let Some(why) = host_problem(&w.url) {
            p.add(key("alert_webhook.url"), why);
        } else if check_url(&w.url).is_err() {
            p.add(
                key("alert_webhook.url"),
                "is not an http(s) URL without query, fragment or spaces, e.g. \"https://hooks.slack.com/services/...\"",
            );
        }
    }
}

/// The checks every kind shares: the timings' ranges.
fn validate_timings(p: &mut Problems<'_>, name: &str, prov: &ProviderConfig) {
    let key = |k: &str| format!("providers.{name}.{k}");
    if prov
        .send_timeout
        .is_some_and(|d| !(1..=120).contains(&d.0.as_secs()))
    {
        p.add(key("send_timeout"), "must be between 1s and 2m");
    }
    if prov
        .settle_time
        .is_some_and(|d| d.0 > Duration::from_secs(3600))
    {
        p.add(
            key("settle_time"),
            "must be at most 1h: an unclear text is checked and, if it never went, resent after it",
        );
    }
    if prov
        .retry_backoff
        .is_some_and(|d| d.0 < Duration::from_millis(100) || d.0 > Duration::from_secs(600))
    {
        p.add(key("retry_backoff"), "must be between 100ms and 10m");
    }
}

/// Why a URL's host cannot be used as written: textback resolves host names without Unicode tables (see
/// `idna_adapter` in Cargo.toml), so an internationalised name is written in its ASCII form. The message
/// does not repeat the URL (some URLs are credentials).
pub fn host_problem(u: &str) -> Option<&'static str> {
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!host.is_ascii()).then_some(
        "names its host with non-ASCII letters: write the host in its ASCII form (xn--...), as a browser's address bar shows it",
    )
}

/// Whether `u` is an http(s) URL without query or fragment; the reason when it is not.
pub fn check_url(u: &str) -> Result<(), String> {
    if let Some(why) = host_problem(u) {
        return Err(format!("{u:?} {why}"));
    }
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !u.contains(['?', '#', ' ']) => Ok(()),
        _ => Err(format!(
            "{u:?} is not an http(s) URL without query or fragment, e.g. \"https://textback.example.com\""
        )),
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Finds the line of a key path like `business[0].numbers[1]`, falling back to its nearest parent.
fn line_of_key(text: &str, doc: &toml_edit::Document<String>, path: &str) -> Option<usize> {
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best = None;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(next) = item.get(name) else { break };
        item = next;
        best = span_of(item).or(best);
        if let Some(i) = index {
            let Some(next) = item.get(i) else { break };
            item = next;
            best = span_of(item).or(best);
        }
    }
    best.map(|start| line_of_offset(text, start))
}

/// The key path (`business[0].quiet_hours_policy`) of the value or table header at byte `offset`.
fn key_at(doc: &toml_edit::Document<String>, offset: usize) -> Option<String> {
    fn covers(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
        span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
    }
    fn in_value(v: &toml_edit::Value, offset: usize, path: &str) -> Option<String> {
        match v {
            toml_edit::Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| in_value(x, offset, &format!("{path}[{i}]")))
                .or_else(|| covers(v.span(), offset).then(|| path.to_string())),
            toml_edit::Value::InlineTable(t) => t
                .iter()
                .find_map(|(k, x)| in_value(x, offset, &format!("{path}.{k}")))
                .or_else(|| covers(v.span(), offset).then(|| path.to_string())),
            _ => covers(v.span(), offset).then(|| path.to_string()),
        }
    }
    fn in_table(t: &toml_edit::Table, offset: usize, prefix: &str) -> Option<String> {
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        t.iter().find_map(|(k, item)| {
            let path = join(k);
            let key_span = t.key(k).and_then(toml_edit::Key::span);
            match item {
                toml_edit::Item::Value(v) => in_value(v, offset, &path)
                    .or_else(|| covers(key_span, offset).then(|| path.clone())),
                toml_edit::Item::Table(sub) => in_table(sub, offset, &path)
                    .or_else(|| covers(sub.span(), offset).then(|| path.clone())),
                toml_edit::Item::ArrayOfTables(a) => a.iter().enumerate().find_map(|(i, sub)| {
                    let path = format!("{path}[{i}]");
                    in_table(sub, offset, &path)
                        .or_else(|| covers(sub.span(), offset).then(|| path.clone()))
                }),
                toml_edit::Item::None => None,
            }
        })
    }
    in_table(doc.as_table(), offset, "")
}

fn span_of(item: &toml_edit::Item) -> Option<usize> {
    match item {
        toml_edit::Item::Value(v) => v.span().map(|s| s.start),
        toml_edit::Item::Table(t) => t.span().map(|s| s.start),
        toml_edit::Item::ArrayOfTables(a) => a.span().map(|s| s.start),
        toml_edit::Item::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The provider registry's rules (tests only: the configuration itself never names a provider module).
    fn kinds() -> Vec<&'static KindRules> {
        crate::providers::rules()
    }

    #[test]
    fn the_example_file_is_the_built_in_default() {
        let parsed = parse(EXAMPLE, Some(Path::new("config.example.toml")), &kinds()).unwrap();
        assert_eq!(parsed, load(None, &kinds()).unwrap().config);
    }

    #[test]
    fn hosts_are_written_in_ascii() {
        // (url, accepted)
        let cases = [
            ("https://textback.example.com", true),
            ("https://xn--bcher-kva.example/hooks", true),
            ("https://example.com/caf\u{e9}", true),
            ("https://b\u{fc}cher.example/hooks", false),
            ("https://b\u{fc}cher.example", false),
        ];
        for (url, ok) in cases {
            assert_eq!(check_url(url).is_ok(), ok, "{url}");
            assert_eq!(host_problem(url).is_none(), ok, "{url}");
        }
        assert!(host_problem("smtp.b\u{fc}cher.example").is_some());
        // What the HTTP client makes of them, without Unicode tables.
        assert!(url::Url::parse("https://xn--bcher-kva.example/hooks").is_ok());
        assert!(url::Url::parse("https://b\u{fc}cher.example/hooks").is_err());
        let errors = errors_of(&GOOD.replace(
            "public_url = \"https://textback.example.com\"",
            "public_url = \"https://b\u{fc}cher.example\"",
        ));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("server.public_url") && e.contains("xn--")),
            "{errors:?}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert!(load(None, &kinds()).is_ok());
    }

    fn errors_of(text: &str) -> Vec<String> {
        match parse(text, Some(Path::new("t.toml")), &kinds()) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    const GOOD: &str = r#"
[server]
public_url = "https://textback.example.com"

[providers.main]
kind = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "secret"

[[business]]
id = "acme"
name = "Acme HVAC"
numbers = ["+16025550100"]
"#;

    #[test]
    fn a_minimal_twilio_file_is_valid() {
        assert_eq!(errors_of(GOOD), Vec::<String>::new());
    }

    #[test]
    fn reports_errors_with_file_line_and_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[server]\nlisten = \"nope\"\n",
                "t.toml:2: server.listen: \"nope\" is not an address",
            ),
            (
                "[server]\nlisen = \"x\"\n",
                "t.toml:2: server.lisen: unknown key `lisen`: did you mean `listen`?",
            ),
            (
                "[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\", \"602-555\"]\n[providers.s]\nkind = \"simulator\"\n",
                "t.toml:4: business[0].numbers[1]: \"602-555\" is not in E.164 form",
            ),
            (
                "[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\ntext_delay = \"20 parsecs\"\n[providers.s]\nkind = \"simulator\"\n",
                "t.toml:5: business[0].text_delay: invalid duration \"20 parsecs\"",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nmax_deferral = \"later\"\n",
                "t.toml:7: business[0].max_deferral: invalid duration \"later\"",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\nsettle_time = 5\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n",
                "t.toml:3: providers.s.settle_time: a duration needs quotes and a unit: write \"5s\" for 5 seconds",
            ),
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n",
                "t.toml:2: server.trusted_proxies: \"nope\" is not an address",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nnotify = [{ name = \"Sam\", on_call = \"yes\" }]\n",
                "t.toml:7: business[0].notify[0].on_call: invalid type",
            ),
            (
                "[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\ntimezone = \"Mars/Olympus\"\n[providers.s]\nkind = \"simulator\"\n",
                "t.toml:5: business[0].timezone: \"Mars/Olympus\" is not an IANA time zone",
            ),
            (
                "[log]\nlevel = \"infoo\"\n[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n",
                "t.toml:2: log.level: \"infoo\" is not a log level",
            ),
            (
                "[push]\ncontact = \"mailto:admin@localhost\"\nservices = [\"https://push.example.net/path\"]\n[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n",
                "t.toml:2: push.contact: localhost is not a domain the push services can reach",
            ),
            (
                "[push]\nservices = [\"https://push.example.net/path\"]\n[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n",
                "t.toml:2: push.services[0]: \"https://push.example.net/path\" is not an origin",
            ),
            (
                "[providers.main]\nkind = \"twilio\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n",
                "t.toml:1: providers.main.account_sid: is required",
            ),
            (
                "[providers.main]\nkind = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = \"x\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n",
                "t.toml:3: providers.main.account_sid: \"AC1\" is not a Twilio Account SID",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nprovider = \"main\"\n",
                "t.toml:7: business[0].provider: no provider named \"main\"",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nscript = \"booking_link\"\n",
                "t.toml:7: business[0].script: the booking_link script needs",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nscript = \"Hi from {{ nmae }}\"\n",
                "t.toml:7: business[0].script: ",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nquiet_hours = \"9pm-8am\"\n",
                "t.toml:7: business[0].quiet_hours: \"9pm\" is not a time",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n[business.hours]\nmon = [\"08:00-12:00\", \"17:00-13:00\"]\n",
                "t.toml:8: business[0].hours.mon[1]: \"17:00-13:00\" ends before it starts",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nclosed = [\"2026-13-01\"]\n",
                "t.toml:7: business[0].closed[0]: \"2026-13-01\" is not a date",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\ndeny = [\"1900\"]\nallowed_countries = [\"usa\"]\n",
                "t.toml:7: business[0].deny[0]: \"1900\" is not a number or prefix",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nallowed_countries = [\"usa\"]\n",
                "t.toml:7: business[0].allowed_countries[0]: \"usa\" is not a two-letter country code",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nquiet_hours_policy = \"later\"\n",
                "t.toml:7: business[0].quiet_hours_policy: unknown variant `later`",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nsend_rate = 0.0\n",
                "t.toml:7: business[0].send_rate: must be more than 0",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nnotify = [{ name = \"Sam\", sms = \"555-1234\" }]\n",
                "t.toml:7: business[0].notify[0].sms: \"555-1234\" is not in E.164 form",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n[[business.follow_ups]]\nafter = \"1h\"\nscript = \"Hi {{ nope }}\"\n",
                "t.toml:9: business[0].follow_ups[0].script: the script template does not render: undefined value (the fields are booking_link, id, name)",
            ),
            (
                "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nkeywords = [{ words = [\"!!\"] }]\n",
                "t.toml:7: business[0].keywords[0].words: list one or more words",
            ),
            (
                "[providers.s]\nkind = \"pigeon\"\n",
                "t.toml:2: providers.s.kind: unknown kind `pigeon`, expected one of `twilio`, `signalwire`",
            ),
            ("[providers.s]\nkind = \"simulator\"\n", "t.toml: business: no business is defined"),
            (
                "[providers.main]\nkind = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"env:TEXTBACK_TEST_SURELY_UNSET\"\n",
                "t.toml:4: providers.main.auth_token: environment variable TEXTBACK_TEST_SURELY_UNSET is not set",
            ),
        ];
        for (text, want) in cases {
            let got = errors_of(text);
            assert!(
                got.iter().any(|e| e.starts_with(want)),
                "for {text:?}\nwanted an error starting with {want:?}\ngot {got:#?}"
            );
        }
    }

    #[test]
    fn reports_every_type_error_and_unknown_key_in_one_run() {
        let text = "[server]\nlisen = \"x\"\n[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\ntext_delay = 20\nvoicemail = \"yes\"\nfoward_to = [\"+16025550199\"]\nquiet_hours = \"9pm-8am\"\nzzz = 1\n";
        let got = errors_of(text);
        let want = [
            "t.toml:2: server.lisen: unknown key `lisen`: did you mean `listen`?",
            "t.toml:9: business[0].text_delay: a duration needs quotes and a unit: write \"20s\" for 20 seconds",
            "t.toml:10: business[0].voicemail: invalid type: string \"yes\", expected a boolean: write true or false, without quotes",
            "t.toml:11: business[0].foward_to: unknown key `foward_to`: did you mean `forward_to`?",
            "t.toml:13: business[0].zzz: unknown key `zzz` (config.example.toml lists every key of this table)",
            "t.toml:12: business[0].quiet_hours: \"9pm\" is not a time",
        ];
        for w in want {
            assert!(
                got.iter().any(|e| e.starts_with(w)),
                "wanted {w:?}\ngot {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
        // Not TOML at all: the parser's own error, at its line.
        let got = errors_of("[server]\nlisten = \"x\"\n[[business]\n");
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].starts_with("t.toml:3: "), "{got:#?}");
        // A required key missing is said once, not again for what was taken out before it.
        let got = errors_of(
            "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nnumbers = 5\n",
        );
        assert!(
            got.iter().any(|e| e
                .contains("business[0].numbers: invalid type: integer `5`, expected a sequence")),
            "{got:#?}"
        );
        assert!(
            got.iter().any(|e| e.contains("missing field `name`")),
            "{got:#?}"
        );
        assert!(
            !got.iter().any(|e| e.contains("missing field `numbers`")),
            "{got:#?}"
        );
    }

    #[test]
    fn a_bad_required_key_does_not_hide_the_problems_after_it() {
        let text = "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = 5\nname = \"A\"\nnumbers = [\n  \"+16025550100\",\n  5,\n  \"+16025550102\",\n  7,\n]\n[[business]]\nid = \"b\"\nname = 6\nnumbers = [\"+16025550300\"]\nring_timeout = 30\nkeywords = [{ words = 5, reply = \"On it\" }, { words = [\"go\"], reply = 6 }]\n";
        let got = errors_of(text);
        let want = [
            "t.toml:4: business[0].id: invalid type: integer `5`, expected a string: write it in quotes",
            "t.toml:8: business[0].numbers[1]: invalid type: integer `5`, expected a string",
            "t.toml:10: business[0].numbers[3]: invalid type: integer `7`, expected a string",
            "t.toml:14: business[1].name: invalid type: integer `6`, expected a string",
            "t.toml:16: business[1].ring_timeout: a duration needs quotes and a unit",
            "t.toml:17: business[1].keywords[0].words: invalid type: integer `5`, expected a sequence",
            "t.toml:17: business[1].keywords[1].reply: invalid type: integer `6`, expected a string",
        ];
        for w in want {
            assert!(
                got.iter().any(|e| e.starts_with(w)),
                "wanted {w:?}\ngot {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn suggests_the_nearest_key() {
        let keys = ["listen", "public_url", "trusted_proxies"];
        let cases = [
            ("lisen", Some("listen")),
            ("publc_url", Some("public_url")),
            ("trusted_proxy", Some("trusted_proxies")),
            ("lsiten", Some("listen")),
            ("port", None),
            ("x", None),
        ];
        for (given, want) in cases {
            assert_eq!(closest(given, &keys), want, "{given}");
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let text = "[server]\nlisten = \"x\"\n[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"A B\"\nname = \"\"\nnumbers = [\"1\"]\n";
        assert_eq!(errors_of(text).len(), 4, "{:#?}", errors_of(text));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::literal("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let c = parse(GOOD, None, &kinds()).unwrap();
        assert!(!format!("{c:?}").contains("secret\""));
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "tok123\n").unwrap();
        let text = GOOD.replace("\"secret\"", &format!("\"file:{}\"", f.display()));
        let c = parse(&text, None, &kinds()).unwrap();
        assert_eq!(c.providers["main"].secret("auth_token"), Some("tok123"));
    }
}
