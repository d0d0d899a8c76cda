//! `textback user` and `textback token`: admin accounts and API tokens, written straight to the database.

use crate::auth;
use crate::cli::{TokenCommand, UserCommand};
use crate::clock::{Clock, SystemClock};
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
    Store::open(&loaded.database)
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
            businesses,
        } => {
            for b in &businesses {
                if loaded.config.business(b).is_none() {
                    bail!("no business {b:?} in the configuration");
                }
            }
            if role == "staff" && businesses.is_empty() {
                bail!("a staff user sees only the businesses given with --business ID; give at least one");
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
                "changed the password of {name:?}; their sessions were ended"
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

/// Runs a `textback token` command; returns what to print (the token, once).
pub fn token(loaded: &Loaded, command: TokenCommand) -> anyhow::Result<String> {
    let TokenCommand::Create { name, user } = command;
    let store = open(loaded)?;
    let token = auth::new_token();
    let (hash, now, u) = (auth::token_hash(&token), SystemClock.now(), user.clone());
    let created = store
        .write(move |c| match users::by_name(c, &u)? {
            Some(found) => users::create_api_token(c, &name, &hash, found.id, now).map(Some),
            None => Ok(None),
        })
        .map_err(refused)?;
    if created.is_none() {
        bail!("no user named {user:?}");
    }
    Ok(format!(
        "{token}\n(shown once: send it as `Authorization: Bearer <token>` to /api/v1/...)"
    ))
}
