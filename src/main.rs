//! The `textback` binary: parse the command line, run the command, map failures to exit codes.

use clap::Parser;
use std::path::Path;
use std::process::ExitCode;
use textback::cli::{Cli, Command, Simulate};
use textback::clock::{Clock, SystemClock};
use textback::config::{self, ConfigErrors};
use textback::{app, logging, report, simulate, staff, store};

/// `EX_CONFIG`: the unit file's `RestartPreventExitStatus=78` stops systemd looping on a broken config.
const EXIT_CONFIG: u8 = 78;

enum Failure {
    Config(ConfigErrors),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl From<ConfigErrors> for Failure {
    fn from(e: ConfigErrors) -> Self {
        Self::Config(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(errors)) => {
            eprintln!("{errors}");
            eprintln!(
                "error: the configuration is not valid ({} problem(s))",
                errors.0.len()
            );
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(explicit: Option<&Path>) -> Result<config::Loaded, Failure> {
    Ok(config::load(
        config::find(explicit).as_deref(),
        &textback::providers::rules(),
    )?)
}

#[allow(clippy::print_stdout)]
fn staff_command(
    explicit: Option<&Path>,
    business: Option<String>,
    action: staff::Action,
) -> Result<(), Failure> {
    let loaded = load(explicit)?;
    println!("{}", staff::act(&loaded, business.as_deref(), action)?);
    Ok(())
}

#[allow(clippy::print_stdout)]
fn run(cli: Cli) -> Result<(), Failure> {
    let explicit = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Serve { listen: None }) {
        Command::Serve { listen } => {
            let mut loaded = load(explicit)?;
            if let Some(addr) = listen {
                if addr.parse::<std::net::SocketAddr>().is_err() {
                    return Err(anyhow::anyhow!(
                        "--listen {addr:?} is not an address and port such as 127.0.0.1:9090"
                    )
                    .into());
                }
                loaded.config.server.listen = addr;
            }
            logging::init(&loaded.config.log.level, loaded.config.log.format);
            app::serve(loaded)?;
        }
        Command::Init { path, force } => {
            let path = path
                .or_else(|| explicit.map(Path::to_path_buf))
                .unwrap_or_else(|| "textback.toml".into());
            if path.exists() && !force {
                return Err(anyhow::anyhow!(
                    "{} already exists; pass --force to overwrite it",
                    path.display()
                )
                .into());
            }
            std::fs::write(&path, config::EXAMPLE)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            println!(
                "Wrote {}. Edit it, then run: textback check-config --config {}",
                path.display(),
                path.display()
            );
        }
        Command::CheckConfig => {
            let loaded = load(explicit)?;
            let c = &loaded.config;
            println!("{}: OK", loaded.source());
            println!(
                "  listen {} (public URL {})",
                c.server.listen,
                c.server.public_base()
            );
            println!("  database {}", loaded.database.display());
            for (name, p) in &c.providers {
                println!("  provider {name}: {}", p.kind);
            }
            for b in &c.businesses {
                println!(
                    "  business {} ({}): numbers {}; rings {} for {}; texts after {} with script {}",
                    b.id,
                    b.name,
                    b.numbers.join(", "),
                    if b.forward_to.is_empty() { "nobody".to_string() } else { b.forward_to.join(", ") },
                    humantime::format_duration(b.ring_timeout.0),
                    humantime::format_duration(b.text_delay.0),
                    if b.script.contains(' ') { "custom" } else { &b.script },
                );
            }
        }
        Command::Connect { business, dry_run } => {
            let loaded = load(explicit)?;
            let (out, fine) = textback::setup::run_connect(&loaded, business.as_deref(), dry_run)?;
            print!("{out}");
            if !fine {
                return Err(anyhow::anyhow!("some numbers are not connected (see above)").into());
            }
        }
        Command::Doctor => {
            let loaded = load(explicit)?;
            let (out, fine) = textback::setup::run_doctor(&loaded)?;
            print!("{out}");
            if !fine {
                return Err(anyhow::anyhow!("some checks failed (see the fixes above)").into());
            }
        }
        Command::SendTest {
            number,
            business,
            wait,
        } => {
            let loaded = load(explicit)?;
            let (out, delivered) =
                textback::setup::run_send_test(&loaded, business.as_deref(), &number, wait.into())?;
            println!("{out}");
            if !delivered {
                return Err(anyhow::anyhow!("the test text was not confirmed delivered").into());
            }
        }
        Command::TenDlc { business, json } => {
            let loaded = load(explicit)?;
            let chosen = textback::setup::businesses(&loaded.config, business.as_deref())
                .map_err(anyhow::Error::msg)?;
            let [biz] = chosen.as_slice() else {
                return Err(anyhow::anyhow!(
                    "several businesses are configured: say which with --business ID"
                )
                .into());
            };
            let packet = textback::registration::packet(biz);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&packet).map_err(anyhow::Error::from)?
                );
            } else {
                print!("{}", textback::registration::render_text(&packet));
            }
        }
        Command::Backup { path } => {
            let loaded = load(explicit)?;
            let now = textback::clock::to_millis(std::time::SystemTime::now());
            let dest = path.unwrap_or_else(|| std::path::PathBuf::from("."));
            let done = textback::backup::backup(&loaded.database, &dest, now)
                .map_err(|e| anyhow::anyhow!("backup failed: {e}"))?;
            println!(
                "Backed up {} to {} ({} bytes, schema version {}, {} contacts, integrity ok).",
                loaded.database.display(),
                done.path.display(),
                done.bytes,
                done.inspection.schema_version,
                done.inspection.contacts
            );
        }
        Command::Restore { path } => {
            let loaded = load(explicit)?;
            let now = textback::clock::to_millis(std::time::SystemTime::now());
            let restored = textback::backup::restore(&loaded.database, &path, now)
                .map_err(|e| anyhow::anyhow!("not restored: {e}"))?;
            println!(
                "Restored {} to {} (schema version {}, {} contacts, integrity ok).",
                path.display(),
                loaded.database.display(),
                restored.inspection.schema_version,
                restored.inspection.contacts
            );
            if let Some(aside) = restored.aside {
                println!(
                    "The database it replaced is kept as {}. To undo: stop textback, then\n  mv {} {}",
                    aside.display(),
                    aside.display(),
                    loaded.database.display()
                );
            }
            println!("Start textback to use it; it applies any newer migrations itself.");
        }
        Command::Export { business } => {
            let loaded = load(explicit)?;
            if let Some(id) = &business {
                if loaded.config.business(id).is_none() {
                    return Err(anyhow::anyhow!("no business {id:?} in the configuration").into());
                }
            }
            let db = store::Store::open_read_only(&loaded.database)
                .map_err(|e| anyhow::anyhow!("while opening {}: {e}", loaded.database.display()))?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut write = |line: &str| {
                use std::io::Write as _;
                writeln!(out, "{line}")
            };
            let n = db
                .read(|c| store::retention::export(c, business.as_deref(), &mut write))
                .map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
            {
                use std::io::Write as _;
                out.flush()
                    .map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
            }
            eprintln!("{n} records written");
        }
        Command::EmailTest { address } => {
            let loaded = load(explicit)?;
            let Some(cfg) = loaded.config.email.as_ref() else {
                return Err(anyhow::anyhow!(
                    "email is not configured: add an [email] section (host, port, tls, user, password, from) to the config file"
                )
                .into());
            };
            textback::config::check_email(&address).map_err(|why| anyhow::anyhow!(why))?;
            let email = textback::email::Email::new(
                &address,
                "textback test email",
                format!(
                    "This is a test email from textback. Alerts and daily digests will come from {}.\n",
                    cfg.from
                ),
                None,
            );
            match textback::email::send(cfg, &email) {
                textback::email::Sent::Accepted(answer) => {
                    println!(
                        "Sent to {address} through {}:{}; the server answered: {answer}",
                        cfg.host,
                        cfg.port()
                    );
                }
                textback::email::Sent::Retry(why)
                | textback::email::Sent::Rejected(why)
                | textback::email::Sent::Unclear(why) => {
                    return Err(anyhow::anyhow!("not sent: {why}").into());
                }
            }
        }
        Command::Status { limit } => {
            let loaded = load(explicit)?;
            if !loaded.database.exists() {
                println!(
                    "No database at {} yet: nothing has happened. Start with `textback serve`.",
                    loaded.database.display()
                );
                return Ok(());
            }
            let db = store::Store::open_read_only(&loaded.database)
                .map_err(|e| anyhow::anyhow!("while opening {}: {e}", loaded.database.display()))?;
            let status = db
                .read(|c| report::read(c, limit))
                .map_err(|e| anyhow::anyhow!("while reading {}: {e}", loaded.database.display()))?;
            println!("textback status ({})", loaded.database.display());
            print!("{}", report::render(&status, SystemClock.now()));
        }
        Command::Simulate(what) => {
            let loaded = load(explicit)?;
            let out = match what {
                Simulate::MissedCall {
                    from,
                    to,
                    status,
                    duration,
                    url,
                } => simulate::missed_call(
                    &loaded,
                    &simulate::Call {
                        from,
                        to,
                        status,
                        duration,
                    },
                    url.as_deref(),
                )?,
                Simulate::Sms {
                    from,
                    to,
                    body,
                    url,
                } => simulate::text(&loaded, &simulate::Text { from, to, body }, url.as_deref())?,
            };
            println!("{out}");
        }
        Command::MarkBooked {
            number,
            value,
            business,
        } => {
            let value = value.as_deref().map(staff::parse_money).transpose()?;
            staff_command(explicit, business, staff::Action::Booked { number, value })?;
        }
        Command::MarkLost { number, business } => {
            staff_command(explicit, business, staff::Action::Lost { number })?;
        }
        Command::Block { number, business } => {
            staff_command(
                explicit,
                business,
                staff::Action::Block {
                    number,
                    blocked: true,
                },
            )?;
        }
        Command::Unblock { number, business } => {
            staff_command(
                explicit,
                business,
                staff::Action::Block {
                    number,
                    blocked: false,
                },
            )?;
        }
        Command::User(command) => {
            let loaded = load(explicit)?;
            println!("{}", textback::accounts::user(&loaded, command)?);
        }
        Command::Token(command) => {
            let loaded = load(explicit)?;
            println!("{}", textback::accounts::token(&loaded, command)?);
        }
        Command::Reply {
            number,
            body,
            business,
        } => {
            staff_command(explicit, business, staff::Action::Reply { number, body })?;
        }
    }
    Ok(())
}
