//! Staff actions from the command line (booked, lost, block, reply), applied to the database the running
//! server uses; its scheduler picks up anything they enqueue within a couple of seconds.

use crate::clock::{Clock, SystemClock};
use crate::config::{BusinessConfig, Config, Loaded};
use crate::events::{self, Env};
use crate::store::Store;
use anyhow::{anyhow, bail, Context};

/// What staff did.
#[derive(Debug, Clone)]
pub enum Action {
    /// The contact booked, worth `value` cents.
    Booked {
        /// The contact's number.
        number: String,
        /// Cents.
        value: Option<i64>,
    },
    /// The conversation is lost.
    Lost {
        /// The contact's number.
        number: String,
    },
    /// Block or unblock a number.
    Block {
        /// The number.
        number: String,
        /// Block (true) or unblock.
        blocked: bool,
    },
    /// A reply written by staff.
    Reply {
        /// The contact's number.
        number: String,
        /// The text.
        body: String,
    },
}

/// Parses an amount of money like `385` or `385.50` into cents.
pub fn parse_money(s: &str) -> anyhow::Result<i64> {
    let s = s.trim().trim_start_matches('$');
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = whole
        .parse()
        .map_err(|_| anyhow!("{s:?} is not an amount like 385 or 385.50"))?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac
            .parse::<i64>()
            .map(|f| f * 10)
            .map_err(|_| anyhow!("{s:?} is not an amount"))?,
        2 => frac
            .parse()
            .map_err(|_| anyhow!("{s:?} is not an amount"))?,
        _ => bail!("{s:?} has more than two decimals"),
    };
    if whole < 0 {
        bail!("the value cannot be negative");
    }
    Ok(whole * 100 + frac)
}

fn business<'a>(config: &'a Config, id: Option<&str>) -> anyhow::Result<&'a BusinessConfig> {
    match id {
        Some(id) => config
            .business(id)
            .ok_or_else(|| anyhow!("no business {id:?} in the configuration")),
        None if config.businesses.len() == 1 => Ok(&config.businesses[0]),
        None => bail!(
            "several businesses are configured; say which with --business ({})",
            config
                .businesses
                .iter()
                .map(|b| b.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Applies a staff action; returns what happened, for the terminal.
pub fn act(loaded: &Loaded, business_id: Option<&str>, action: Action) -> anyhow::Result<String> {
    let config = &loaded.config;
    let biz = business(config, business_id)?.clone();
    let provider = config.provider_name(&biz).to_string();
    let public = config.server.public_base();
    let store = Store::open(&loaded.database)
        .with_context(|| format!("while opening the database {}", loaded.database.display()))?;
    let now = SystemClock.now();
    let name = biz.name.clone();
    let done = store.write(move |c| {
        let env = Env {
            biz: &biz,
            provider: &provider,
            public_url: &public,
        };
        Ok(match action {
            Action::Booked { number, value } => {
                events::mark_booked(c, &biz, &number, value, now)?;
                match value {
                    Some(v) => format!("{number} booked with {name}, worth {}.{:02}", v / 100, v % 100),
                    None => format!("{number} booked with {name}"),
                }
            }
            Action::Lost { number } => {
                events::mark_lost(c, &biz, &number, now)?;
                format!("{number} marked lost")
            }
            Action::Block { number, blocked } => {
                events::set_blocked(c, &biz, &number, blocked, now)?;
                format!("{number} {}", if blocked { "blocked: it will never be texted" } else { "unblocked" })
            }
            Action::Reply { number, body } => {
                events::staff_reply(c, &env, &number, &body, now)?;
                format!("reply to {number} queued; it leaves within a few seconds if textback is running")
            }
        })
    });
    done.map_err(|e: events::Error| anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_money() {
        let cases: &[(&str, Option<i64>)] = &[
            ("385", Some(38_500)),
            ("385.5", Some(38_550)),
            ("385.50", Some(38_550)),
            ("$1200", Some(120_000)),
            ("0.99", Some(99)),
            ("3.999", None),
            ("abc", None),
            ("-5", None),
        ];
        for (s, want) in cases {
            assert_eq!(super::parse_money(s).ok(), *want, "{s}");
        }
    }
}
