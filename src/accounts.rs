//! `textback user` and `textback token`: admin accounts and API tokens, written straight to the database.

use crate::auth;
use crate::cli::{TokenCommand, UserCommand};
use crate::clock::{format_utc, Clock, SystemClock};
use crate::config::Loaded;
use crate::store::{users, Store};
use anyhow::{anyhow, bail, Context};
use std::io::{BufRead, IsTerminal};

/// Reads a new password: prompted twice without echo on a terminal, else the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    auth::check_password(&password).map_err(|e| anyhow!(e))?;
    Ok(password)
}

fn open(loaded: &Loaded) -> anyhow::Result<Store> {
    Store::open_for_cli(&loaded.database)
        .with_context(|| format!("while opening the database {}", loaded.database.display()))
}

fn refused(e: crate::store::Error) -> anyhow::Error {
    anyhow!("{e}")
}

/// Runs a `textback user` command; returns what to print.
pub fn user(loaded: &Loaded, command: UserCommand) -> anyhow::Result<String> {
    let now = SystemClock.now();
    match command {
        UserCommand::Add {
            name,
            role,
            mut businesses,
        } => {
            // A staff user of the only business needs no --business.
            if role == "staff" && businesses.is_empty() {
                if let [only] = loaded.config.businesses.as_slice() {
                    businesses.push(only.id.clone());
                }
            }
            for b in &businesses {
                if loaded.config.business(b).is_none() {
                    bail!("no business {b:?} in the configuration");
                }
            }
            if role == "staff" && businesses.is_empty() {
                let ids: Vec<&str> = loaded
                    .config
                    .businesses
                    .iter()
                    .map(|b| b.id.as_str())
                    .collect();
                bail!(
                    "a staff user sees only the businesses given with --business ID; give at least one of: {}",
                    ids.join(", ")
                );
            }
            if name.trim().is_empty() {
                bail!("the user name is empty");
            }
            let max = crate::http::MAX_USER_NAME;
            if name.chars().count() > max || name.chars().any(char::is_control) {
                bail!("a user name has at most {max} characters and no control characters");
            }
            let hash = auth::hash_password(&read_password()?).map_err(|e| anyhow!(e))?;
            let store = open(loaded)?;
            let (n, r) = (name.clone(), role.clone());
            store
                .write(move |c| users::create(c, &n, &hash, &r, &businesses, now))
                .map_err(refused)?;
            Ok(format!("created {role} {name:?}"))
        }
        UserCommand::Passwd { name } => {
            let store = open(loaded)?;
            let n = name.clone();
            let user = store
                .read(move |c| users::by_name(c, &n))
                .map_err(refused)?;
            let Some(user) = user else {
                bail!("no user named {name:?}")
            };
            let hash = auth::hash_password(&read_password()?).map_err(|e| anyhow!(e))?;
            store
                .write(move |c| users::set_password(c, user.id, &hash, now))
                .map_err(refused)?;
            Ok(format!(
                "changed the password of {name:?}; their sessions were ended and their API tokens revoked"
            ))
        }
        UserCommand::List => {
            let store = open(loaded)?;
            let list = store.read(users::list).map_err(refused)?;
            if list.is_empty() {
                return Ok("no users yet: `textback serve` prints a setup link, or run `textback user add NAME --role owner`".into());
            }
            Ok(list
                .iter()
                .map(|u| {
                    let scope = if u.role == "owner" {
                        "all businesses".to_string()
                    } else {
                        u.businesses.join(", ")
                    };
                    format!("{:<20} {:<6} {scope}", u.name, u.role)
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        UserCommand::Remove { name } => {
            let store = open(loaded)?;
            let n = name.clone();
            let removed = store
                .write(move |c| match users::by_name(c, &n)? {
                    Some(u) => users::remove(c, u.id).map(|()| true),
                    None => Ok(false),
                })
                .map_err(refused)?;
            if !removed {
                bail!("no user named {name:?}");
            }
            Ok(format!("removed {name:?}"))
        }
    }
}

/// Runs a `textback token` command; returns what to print (a new token, once).
pub fn token(loaded: &Loaded, command: TokenCommand) -> anyhow::Result<String> {
    let store = open(loaded)?;
    let now = SystemClock.now();
    match command {
        TokenCommand::Create {
            name,
            user,
            expires,
        } => {
            let expires_at = match expires {
                None => None,
                Some(d) => {
                    let d = humantime::parse_duration(&d).map_err(|e| {
                        anyhow!("--expires {d:?} is not a duration like 90d or 12h: {e}")
                    })?;
                    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                    if ms <= 0 {
                        bail!("--expires must be longer than zero");
                    }
                    Some(now.saturating_add(ms))
                }
            };
            let token = auth::new_token();
            let (hash, u) = (auth::token_hash(&token), user.clone());
            let created = store
                .write(move |c| match users::by_name(c, &u)? {
                    Some(found) => {
                        users::create_api_token(c, &name, &hash, found.id, expires_at, now)
                            .map(Some)
                    }
                    None => Ok(None),
                })
                .map_err(refused)?;
            let Some(id) = created else {
                bail!("no user named {user:?}");
            };
            let until = expires_at.map_or_else(
                || "it does not expire".to_string(),
                |at| format!("it expires {}", format_utc(at)),
            );
            Ok(format!(
                "{token}\n(shown once: send it as `Authorization: Bearer <token>` to /api/v1/...; token id {id}, {until}; revoke it with `textback token revoke {id}`)"
            ))
        }
        TokenCommand::List => {
            let list = store.read(users::api_tokens).map_err(refused)?;
            if list.is_empty() {
                return Ok(
                    "no API tokens: create one with `textback token create NAME --user USER`"
                        .into(),
                );
            }
            let mut out = format!(
                "{:<5} {:<16} {:<16} {:<24} {:<24} expires",
                "id", "name", "user", "created", "last used"
            );
            for t in list {
                let expiry = match t.expires_at {
                    None => "never".to_string(),
                    Some(at) if at <= now => format!("{} (expired)", format_utc(at)),
                    Some(at) => format_utc(at),
                };
                out.push_str(&format!(
                    "\n{:<5} {:<16} {:<16} {:<24} {:<24} {expiry}",
                    t.id,
                    t.name,
                    t.user,
                    format_utc(t.created_at),
                    t.last_used_at.map_or_else(|| "never".into(), format_utc),
                ));
            }
            Ok(out)
        }
        TokenCommand::Revoke { id } => {
            let revoked = store
                .write(move |c| users::revoke_api_token(c, id))
                .map_err(refused)?;
            if !revoked {
                bail!("no API token with id {id} (see `textback token list`)");
            }
            Ok(format!("revoked token {id}: it no longer works"))
        }
    }
}
