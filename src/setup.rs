//! Going live: `textback connect` points each business number at this server through its provider's API,
//! `textback doctor` checks what breaks live set-ups and says how to fix each, and `textback send-test`
//! sends one real text and waits for its receipt. The admin UI's Setup page runs the same checks.

use crate::clock::Millis;
use crate::config::{BusinessConfig, Config};
use crate::providers::{Check, Level, NumberPlan, Providers, SetupError, Wants};
use crate::store::Store;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Cell voicemail commonly picks up after 20 to 25 s: a forwarded call that rings longer is answered by it.
const VOICEMAIL_PICKUP_SECS: u64 = 20;
/// How long `textback doctor` may spend asking providers.
pub const DOCTOR_BUDGET: Duration = Duration::from_secs(120);
/// How long the Setup page may: reverse proxies give up on a page after about a minute.
pub const PAGE_BUDGET: Duration = Duration::from_secs(25);
/// Signed webhooks (Telnyx, PBX reports, the phone) are refused when their time is 5 minutes off.
const MAX_SKEW: Duration = Duration::from_secs(300);
/// A clock this far off is worth a warning before it is worth a failure.
const WARN_SKEW: Duration = Duration::from_secs(30);

/// One number's set-up at one account: which account, and what it takes.
#[derive(Debug, Clone)]
pub struct NumberStep {
    /// The business.
    pub business: String,
    /// The account's name.
    pub account: String,
    /// What pointing it here takes, or why that could not be found out.
    pub plan: Result<NumberPlan, SetupError>,
}

/// The webhooks of a business's numbers each account should send here: the calls to the account that
/// reports them, the texts to the one that texts (both to one that does both).
pub fn accounts_of<'c>(config: &'c Config, biz: &'c BusinessConfig) -> Vec<(&'c str, Wants)> {
    let calls = config.provider_name(biz);
    let texts = config.sms_provider_name(biz);
    if calls == texts {
        vec![(
            calls,
            Wants {
                calls: true,
                texts: true,
            },
        )]
    } else {
        vec![
            (
                calls,
                Wants {
                    calls: true,
                    texts: false,
                },
            ),
            (
                texts,
                Wants {
                    calls: false,
                    texts: true,
                },
            ),
        ]
    }
}

/// The businesses `only` names (every one when `None`); an unknown id is an error naming the known ones.
pub fn businesses<'c>(
    config: &'c Config,
    only: Option<&str>,
) -> Result<Vec<&'c BusinessConfig>, String> {
    match only {
        None => Ok(config.businesses.iter().collect()),
        Some(id) => config.business(id).map(|b| vec![b]).ok_or_else(|| {
            let ids: Vec<&str> = config.businesses.iter().map(|b| b.id.as_str()).collect();
            format!("no business {id:?}; the businesses are: {}", ids.join(", "))
        }),
    }
}

/// What `connect` would do (or, with `apply`, does) for every number of `businesses`. Accounts that cannot
/// be set up from here are left out and listed by [`by_hand`].
pub fn connect(
    config: &Config,
    providers: &Providers,
    businesses: &[&BusinessConfig],
    apply: bool,
) -> Vec<NumberStep> {
    let managed: Vec<String> = config
        .businesses
        .iter()
        .flat_map(|b| b.numbers.iter().cloned())
        .collect();
    let mut steps = Vec::new();
    for biz in businesses {
        for (account, wants) in accounts_of(config, biz) {
            let Some(provider) = providers.get(account) else {
                continue;
            };
            let Some(setup) = provider.setup() else {
                continue;
            };
            for number in &biz.numbers {
                let plan = setup.plan(number, wants, &managed).and_then(|plan| {
                    if apply && plan.blockers.is_empty() && !plan.changes.is_empty() {
                        setup.apply(&plan)?;
                    }
                    Ok(plan)
                });
                steps.push(NumberStep {
                    business: biz.id.clone(),
                    account: account.to_string(),
                    plan,
                });
            }
        }
    }
    steps
}

/// The accounts of `businesses` that are pointed here by hand, with where.
pub fn by_hand(
    config: &Config,
    providers: &Providers,
    businesses: &[&BusinessConfig],
) -> Vec<(String, crate::providers::Connect)> {
    let mut out: Vec<(String, crate::providers::Connect)> = Vec::new();
    for biz in businesses {
        for (account, _) in accounts_of(config, biz) {
            let Some(provider) = providers.get(account) else {
                continue;
            };
            if provider.setup().is_none() && !out.iter().any(|(a, _)| a == account) {
                out.push((account.to_string(), provider.connect()));
            }
        }
    }
    out
}

/// `connect`'s report, for the terminal; and whether every number is (or, in a dry run, can be) pointed
/// here.
pub fn render_connect(
    steps: &[NumberStep],
    by_hand: &[(String, crate::providers::Connect)],
    applied: bool,
) -> (String, bool) {
    let mut out = String::new();
    let mut fine = true;
    for step in steps {
        match &step.plan {
            Err(e) => {
                fine = false;
                out.push_str(&format!(
                    "{} ({}): not connected: {e}\n",
                    step.business, step.account
                ));
            }
            Ok(plan) => {
                out.push_str(&format!(
                    "{} ({}, account {:?}, {}):\n",
                    plan.number, step.business, step.account, plan.id
                ));
                for c in &plan.changes {
                    let now = if c.now.is_empty() {
                        "(not set)"
                    } else {
                        &c.now
                    };
                    out.push_str(&format!("  {}: {now} -> {}\n", c.field, c.wanted));
                }
                if !plan.blockers.is_empty() {
                    fine = false;
                    for b in &plan.blockers {
                        out.push_str(&format!("  refused: {b}\n"));
                    }
                    out.push_str("  nothing was changed; run connect again after the change\n");
                } else if plan.changes.is_empty() {
                    out.push_str("  already points at this server\n");
                } else if applied {
                    out.push_str("  changed\n");
                } else {
                    out.push_str("  would change (dry run: nothing was changed)\n");
                }
            }
        }
    }
    for (account, connect) in by_hand {
        out.push_str(&format!(
            "account {account:?} is pointed here by hand. {}\n",
            connect.instructions
        ));
        for u in &connect.urls {
            out.push_str(&format!("  {}: {}\n", u.what, u.url));
        }
    }
    if out.is_empty() {
        out.push_str("nothing to connect\n");
    }
    (out, fine)
}

/// How far apart two clocks are.
fn skew(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
}

/// The clock check against a provider's `Date`.
pub fn clock_check(account: &str, provider_now: SystemTime, now: SystemTime) -> Check {
    let off = skew(provider_now, now);
    let what = format!("clock: {}s from {account}'s", off.as_secs());
    if off > MAX_SKEW {
        Check::fail(
            what,
            "set the clock right (systemd-timesyncd or chrony): signed webhooks more than 5 minutes off are refused",
        )
    } else if off > WARN_SKEW {
        Check::warn(what, "turn on time sync (timedatectl set-ntp true)")
    } else {
        Check::ok(what)
    }
}

/// The ring-time check: forwarded calls that ring long enough reach cell voicemail, which answers them.
pub fn ring_check(biz: &BusinessConfig) -> Check {
    let secs = biz.ring_timeout.secs();
    if biz.forward_to.is_empty() || biz.call_screening || secs < VOICEMAIL_PICKUP_SECS {
        return Check::ok(format!("{}: ring_timeout {secs}s", biz.id));
    }
    Check::warn(
        format!(
            "{}: ring_timeout {secs}s: cell voicemail often answers after {VOICEMAIL_PICKUP_SECS}-25 s, and a call it answers is not a missed call",
            biz.id
        ),
        "set ring_timeout = \"18s\", or call_screening = true (a voicemail never presses 1)",
    )
}

/// Whether scheduled backups are on and the last one went well.
pub fn backup_check(config: &Config, store: &Store, now: crate::clock::Millis) -> Check {
    let Some(settings) = &config.backup else {
        return Check::warn(
            "backups: no [backup] section, so nothing copies the database on a schedule",
            "add [backup] dir = \"/var/backups/textback\" (or run textback backup from cron)",
        );
    };
    let ago = |at: crate::clock::Millis| format!("{} h ago", (now - at) / 3_600_000);
    match store.read(crate::backup::last) {
        Ok(crate::backup::Last {
            failed: Some((at, why)),
            ..
        }) => Check::fail(
            format!("backups: the last one failed {}: {why}", ago(at)),
            "fix the cause, then run textback backup to check",
        ),
        Ok(crate::backup::Last {
            ok: Some((at, path)),
            failed: None,
        }) => Check::ok(format!(
            "backups: the last one was written {} ({path})",
            ago(at)
        )),
        Ok(crate::backup::Last {
            ok: None,
            failed: None,
        }) => Check::ok(format!(
            "backups: on (\"{}\" into {}), none written yet",
            settings.schedule,
            settings.dir.display()
        )),
        Err(e) => Check::warn(
            format!("backups: cannot read their state: {e}"),
            "check the database",
        ),
    }
}

/// Free space on the database's disk.
pub fn disk_check(database: &Path) -> Check {
    let folder = database
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match rustix::fs::statvfs(folder) {
        Ok(st) => {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            let mib = free / (1024 * 1024);
            let what = format!("disk: {mib} MiB free for {}", database.display());
            if mib < 50 {
                Check::fail(what, "free some space: a full disk refuses every webhook")
            } else if mib < 500 {
                Check::warn(what, "free some space before it runs out")
            } else {
                Check::ok(what)
            }
        }
        Err(e) => Check::warn(
            format!(
                "disk: cannot tell the free space of {}: {e}",
                folder.display()
            ),
            "check it with df",
        ),
    }
}

/// The database takes a write (the doctor's own mark).
pub fn database_check(store: &Store, database: &Path, now: Millis) -> Check {
    match store.write(move |c| crate::store::meta::set(c, "doctor_checked_at", &now.to_string())) {
        Ok(()) => Check::ok(format!("database: {} takes writes", database.display())),
        Err(e) => Check::fail(
            format!("database: {} refuses writes: {e}", database.display()),
            "check the file's owner and permissions, and that no other program holds it locked",
        ),
    }
}

/// The public URL: HTTPS where providers call it, reachable from here, and a signed request through it
/// checks out at this server (so signatures over it match what providers sign).
pub fn public_url_checks(config: &Config, providers: &Providers, http: &ureq::Agent) -> Vec<Check> {
    let public = config.server.public_base();
    // Carriers' and the phone's webhooks need HTTPS; a PBX on the LAN and the simulator do not.
    let called_back = config
        .providers
        .values()
        .any(|p| !p.caps.simulated && p.caps.texts);
    let mut checks = Vec::new();
    if !public.starts_with("https://") {
        if called_back && loopback(&public) {
            checks.push(Check::warn(
                format!("public_url {public} is this machine: providers cannot call it; fine for a trial, not for going live"),
                "put textback behind HTTPS (the README's \"Go live\" shows Caddy, nginx and tunnels) and set server.public_url to that address",
            ));
        } else if called_back {
            checks.push(Check::fail(
                format!("public_url {public} is not HTTPS"),
                "put textback behind HTTPS (the README's \"Go live\" shows Caddy, nginx and tunnels) and set server.public_url to that address",
            ));
        } else {
            checks.push(Check::ok(format!(
                "public_url {public}: only the simulator is used, so HTTP will do"
            )));
        }
    }
    match http.get(&format!("{public}/healthz")).call() {
        Ok(_) => checks.push(Check::ok(format!(
            "public_url {public} reaches a healthy textback"
        ))),
        Err(ureq::Error::Status(code, _)) => checks.push(Check::fail(
            format!("{public}/healthz answered HTTP {code}"),
            "make sure the proxy forwards to this textback, and see `textback status` and the log",
        )),
        Err(ureq::Error::Transport(t)) => {
            let tls = matches!(t.kind(), ureq::ErrorKind::ConnectionFailed)
                && t.to_string().to_ascii_lowercase().contains("certificate");
            checks.push(Check::fail(
                format!("{public} cannot be reached from here: {t}"),
                if tls {
                    "the certificate is not valid: use one a public CA issued (Caddy and certbot get Let's Encrypt ones)"
                } else {
                    "check DNS, the firewall and the reverse proxy, and that textback serve is running"
                },
            ));
            return checks;
        }
    }
    for (name, provider) in providers.all() {
        let url = format!("{public}/hooks/{name}/ping");
        let Some(probe) = provider.probe(&url) else {
            continue;
        };
        let mut req = http.post(&url).set("Content-Type", probe.content_type);
        for (k, v) in &probe.headers {
            req = req.set(k, v);
        }
        checks.push(match req.send_string(&probe.body) {
            Ok(_) => Check::ok(format!("a request signed for {name} round-trips through {public}")),
            Err(ureq::Error::Status(403, _)) => Check::fail(
                format!("a request signed for {name} over {url} was refused"),
                "server.public_url must be exactly the URL providers call: scheme, host, port and any path prefix the proxy strips",
            ),
            Err(e) => Check::fail(
                format!("a request signed for {name} did not come back: {e}"),
                "make sure the proxy forwards /hooks/ to textback unchanged",
            ),
        });
    }
    checks
}

/// Whether a URL's host is this machine.
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "localhost" | "[::1]") || host.starts_with("127.")
}

/// Every check `doctor` runs, in order, within `budget`: the checks that ask providers stop there (with a
/// line saying so), so a slow provider never holds the Setup page or a terminal for long.
pub fn doctor(
    config: &Config,
    source: &str,
    database: &Path,
    store: &Store,
    providers: &Providers,
    http: &ureq::Agent,
    budget: Duration,
) -> Vec<Check> {
    let started = std::time::Instant::now();
    let out_of_time = |checks: &mut Vec<Check>| {
        let over = started.elapsed() > budget;
        if over {
            checks.push(Check::warn(
                format!(
                    "checks stopped after {}s: providers answered slowly, the rest were not run",
                    budget.as_secs()
                ),
                "run textback doctor again, or look at the provider's status page",
            ));
        }
        over
    };
    let mut checks = vec![
        Check::ok(format!(
            "config: {source} is valid ({} business(es), {} provider account(s))",
            config.businesses.len(),
            config.providers.len()
        )),
        database_check(store, database, crate::clock::to_millis(SystemTime::now())),
        disk_check(database),
        backup_check(config, store, crate::clock::to_millis(SystemTime::now())),
    ];
    let used: Vec<&BusinessConfig> = config.businesses.iter().collect();
    // Each account once: its credentials and the clock.
    let mut seen: Vec<&str> = Vec::new();
    for biz in &used {
        for (account, _) in accounts_of(config, biz) {
            if seen.contains(&account) {
                continue;
            }
            seen.push(account);
            let Some(provider) = providers.get(account) else {
                continue;
            };
            let Some(setup) = provider.setup() else {
                continue;
            };
            if out_of_time(&mut checks) {
                return checks;
            }
            match setup.account() {
                Ok(date) => {
                    checks.push(Check::ok(format!(
                        "account {account:?} accepts its credentials"
                    )));
                    // Compared with the clock when the answer came, not when the checks began.
                    if let Some(date) = date {
                        checks.push(clock_check(account, date, SystemTime::now()));
                    }
                }
                Err(e) => checks.push(Check::fail(
                    format!("account {account:?}: {e}"),
                    "fix the account's settings in textback.toml",
                )),
            }
        }
    }
    if out_of_time(&mut checks) {
        return checks;
    }
    for step in connect(config, providers, &used, false) {
        checks.push(match step.plan {
            Err(e) => Check::fail(
                format!("{}: {e}", step.account),
                "fix the number or the account, then run textback connect",
            ),
            Ok(plan) if !plan.blockers.is_empty() => Check::fail(
                format!(
                    "{} ignores this server's URLs: {}",
                    plan.number,
                    plan.blockers.join("; ")
                ),
                "make the change above, then run textback connect",
            ),
            Ok(plan) if !plan.changes.is_empty() => {
                let fields: Vec<&str> = plan.changes.iter().map(|c| c.field).collect();
                Check::fail(
                    format!(
                        "{} does not point at this server ({} differ)",
                        plan.number,
                        fields.join(", ")
                    ),
                    "run textback connect",
                )
            }
            Ok(plan) => Check::ok(format!(
                "{} ({}) points at this server",
                plan.number, step.account
            )),
        });
    }
    for (account, connect) in by_hand(config, providers, &used) {
        let urls: Vec<String> = connect.urls.iter().map(|u| u.url.clone()).collect();
        checks.push(Check::ok(format!(
            "account {account:?} is pointed here by hand: {}",
            urls.join(", ")
        )));
    }
    if out_of_time(&mut checks) {
        return checks;
    }
    checks.extend(public_url_checks(config, providers, http));
    for biz in &used {
        checks.push(ring_check(biz));
    }
    for biz in &used {
        let Some(provider) = providers.get(config.sms_provider_name(biz)) else {
            continue;
        };
        let Some(setup) = provider.setup() else {
            continue;
        };
        for number in &biz.numbers {
            if out_of_time(&mut checks) {
                return checks;
            }
            checks.extend(setup.a2p(number));
        }
    }
    checks
}

/// `doctor`'s report, one line per check; and whether nothing failed.
pub fn render_checks(checks: &[Check]) -> (String, bool) {
    let mut out = String::new();
    for c in checks {
        let tag = match c.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{tag}  {}\n", c.what));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    let fine = !checks.iter().any(|c| c.level == Level::Fail);
    (out, fine)
}

/// The provider accounts of a loaded configuration, as the server builds them (the simulator signing with
/// the key the server keeps in the database, when there is one).
pub fn providers_of(loaded: &crate::config::Loaded) -> Providers {
    let token = crate::store::Store::open_read_only(&loaded.database)
        .ok()
        .and_then(|db| {
            db.read(|c| crate::store::meta::get(c, crate::providers::simulator::TOKEN_KEY))
                .ok()
                .flatten()
        })
        .unwrap_or_default();
    Providers::from_config(&loaded.config, &crate::providers::SimulatorToken(token))
}

/// `textback connect`: the report, and whether every number is (or can be) pointed here.
pub fn run_connect(
    loaded: &crate::config::Loaded,
    business: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<(String, bool)> {
    let config = &loaded.config;
    let chosen = businesses(config, business).map_err(anyhow::Error::msg)?;
    let providers = providers_of(loaded);
    let steps = connect(config, &providers, &chosen, !dry_run);
    let manual = by_hand(config, &providers, &chosen);
    Ok(render_connect(&steps, &manual, !dry_run))
}

/// `textback doctor`: the report, and whether nothing failed.
pub fn run_doctor(loaded: &crate::config::Loaded) -> anyhow::Result<(String, bool)> {
    let store = Store::open_for_cli(&loaded.database).map_err(|e| {
        anyhow::anyhow!(
            "while opening the database {}: {e}",
            loaded.database.display()
        )
    })?;
    let providers = providers_of(loaded);
    let http = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("textback-doctor/", env!("CARGO_PKG_VERSION")))
        .build();
    let checks = doctor(
        &loaded.config,
        &loaded.source(),
        &loaded.database,
        &store,
        &providers,
        &http,
        DOCTOR_BUDGET,
    );
    Ok(render_checks(&checks))
}

/// `textback send-test`: queues the text, then follows it until its receipt or `wait`; the report, and
/// whether it was delivered.
pub fn run_send_test(
    loaded: &crate::config::Loaded,
    business: Option<&str>,
    number: &str,
    wait: Duration,
) -> anyhow::Result<(String, bool)> {
    let config = &loaded.config;
    let biz = match businesses(config, business)
        .map_err(anyhow::Error::msg)?
        .as_slice()
    {
        [only] => (*only).clone(),
        _ => anyhow::bail!("several businesses are configured: say which with --business ID"),
    };
    let to = crate::model::PhoneNumber::parse(number)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let store = Store::open_for_cli(&loaded.database).map_err(|e| {
        anyhow::anyhow!(
            "while opening the database {}: {e}",
            loaded.database.display()
        )
    })?;
    let now = crate::clock::to_millis(SystemTime::now());
    let id = queue_test(&store, config, &biz, &to, now)
        .map_err(|e| anyhow::anyhow!("cannot queue the test text: {e}"))?;
    let providers = providers_of(loaded);
    let start = std::time::Instant::now();
    let mut last = String::new();
    loop {
        let m = store
            .read(move |c| crate::store::messages::get(c, id))
            .map_err(|e| anyhow::anyhow!("cannot read the test text: {e}"))?;
        let explain = m
            .error_code
            .as_deref()
            .and_then(|code| providers.get(&m.provider).and_then(|p| p.explain(code)));
        if let Some((delivered, said)) = test_outcome(&m, explain) {
            return Ok((format!("test text via {}: {said}", m.provider), delivered));
        }
        last.clone_from(&m.status);
        if start.elapsed() >= wait {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let said = if last == "scheduled" {
        "still waiting to be sent: is `textback serve` running? It goes out as soon as the server runs".to_string()
    } else {
        format!(
            "{last}, but no delivery receipt within {}: some carriers send none; check the phone",
            humantime::format_duration(wait)
        )
    };
    Ok((format!("test text to {to}: {said}"), false))
}

/// The text `send-test` sends.
pub fn test_text(biz: &BusinessConfig) -> String {
    format!(
        "textback test from {}: if this arrived, texting works.",
        biz.name
    )
}

/// Queues one test text from `biz` to `to` (through its texting account, as any text); returns the
/// message's id. It goes whatever the recipient's consent: it is the operator's own phone.
pub fn queue_test(
    store: &Store,
    config: &Config,
    biz: &BusinessConfig,
    to: &str,
    now: Millis,
) -> crate::store::Result<i64> {
    let (config, biz, to) = (config.clone(), biz.clone(), to.to_string());
    store.write(move |c| {
        let public = config.server.public_base();
        let env = crate::events::Env::of(&config, &biz, &public);
        crate::events::enqueue_message(
            c,
            &env,
            None,
            &to,
            &test_text(&biz),
            crate::model::Purpose::Test,
            now,
            now,
        )
    })
}

/// Where a test text stands, in words; `None` while there is nothing final to say.
pub fn test_outcome(
    m: &crate::store::messages::Message,
    explain: Option<&str>,
) -> Option<(bool, String)> {
    let why = || {
        let code = m.error_code.as_deref().map(|c| format!("error {c}"));
        let meaning = explain
            .map(str::to_string)
            .or_else(|| m.error_message.clone());
        match (code, meaning) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            (None, Some(m)) => m,
            (None, None) => "no reason given".into(),
        }
    };
    match m.status.as_str() {
        "delivered" | "read" => Some((true, format!("delivered to {}", m.to_number))),
        "failed" | "undelivered" => Some((
            false,
            format!("not delivered to {}: {}", m.to_number, why()),
        )),
        "cancelled" => Some((false, format!("not sent: {}", why()))),
        "unknown" => Some((
            false,
            format!("the provider could not say whether it went out: {}", why()),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn biz(extra: &str) -> BusinessConfig {
        toml::from_str(&format!(
            "id = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nforward_to = [\"+16025550199\"]\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn ring_times_that_reach_voicemail_are_warned_about() {
        let cases = [
            ("ring_timeout = \"18s\"", Level::Ok),
            ("ring_timeout = \"20s\"", Level::Warn),
            ("ring_timeout = \"30s\"", Level::Warn),
            ("ring_timeout = \"30s\"\ncall_screening = true", Level::Ok),
        ];
        for (extra, want) in cases {
            assert_eq!(ring_check(&biz(extra)).level, want, "{extra}");
        }
        let mut nobody = biz("ring_timeout = \"30s\"");
        nobody.forward_to.clear();
        assert_eq!(ring_check(&nobody).level, Level::Ok);
    }

    #[test]
    fn clocks_are_checked_to_the_signature_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let cases = [
            (0, Level::Ok),
            (30, Level::Ok),
            (31, Level::Warn),
            (300, Level::Warn),
            (301, Level::Fail),
        ];
        for (off, want) in cases {
            assert_eq!(
                clock_check("main", now + Duration::from_secs(off), now).level,
                want,
                "{off}"
            );
            assert_eq!(
                clock_check("main", now - Duration::from_secs(off), now).level,
                want,
                "-{off}"
            );
        }
    }

    #[test]
    fn loopback_urls_are_this_machine() {
        let cases = [
            ("http://127.0.0.1:8080", true),
            ("http://localhost", true),
            ("http://[::1]:9090/x", true),
            ("https://textback.example.com", false),
            ("http://192.168.1.5:8080", false),
        ];
        for (url, want) in cases {
            assert_eq!(loopback(url), want, "{url}");
        }
    }

    #[test]
    fn a_failure_fails_the_report() {
        let (text, fine) = render_checks(&[Check::ok("a"), Check::warn("b", "do b")]);
        assert!(fine);
        assert_eq!(text, "ok    a\nwarn  b\n      fix: do b\n");
        let (_, fine) = render_checks(&[Check::fail("c", "do c")]);
        assert!(!fine);
    }
}
