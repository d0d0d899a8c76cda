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

/// The largest booked value accepted: a million dollars is more than any one service job.
pub const MAX_CENTS: i64 = 100_000_000;

/// Parses an amount of money like `385`, `$385.50` or `1,200` into cents: digits, at most two decimals, no
/// sign, at most [`MAX_CENTS`].
pub fn parse_money(s: &str) -> anyhow::Result<i64> {
    let raw = s.trim();
    let digits = raw.strip_prefix('$').unwrap_or(raw).replace(',', "");
    let (whole, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !all_digits(whole) || !all_digits(frac) {
        bail!("{raw:?} is not an amount like 385 or 385.50 (digits only, no sign)");
    }
    if frac.len() > 2 {
        bail!("{raw:?} has more than two decimals");
    }
    let too_big = || {
        anyhow!(
            "{raw:?} is more than the largest value accepted, {}",
            MAX_CENTS / 100
        )
    };
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let cents = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(too_big)?;
    if cents > MAX_CENTS {
        return Err(too_big());
    }
    Ok(cents)
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
    let config = loaded.config.clone();
    let biz = business(&config, business_id)?.clone();
    let public = config.server.public_base();
    let store = Store::open_for_cli(&loaded.database)
        .with_context(|| format!("while opening the database {}", loaded.database.display()))?;
    let now = SystemClock.now();
    let name = biz.name.clone();
    let done = store.write(move |c| {
        let env = Env::of(&config, &biz, &public);
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
            ("1,200.00", Some(120_000)),
            ("0.99", Some(99)),
            (".5", Some(50)),
            ("0", Some(0)),
            ("1000000", Some(100_000_000)),
            ("1000000.01", None),
            ("92233720368547759", None),
            ("99999999999999999999", None),
            ("-0.5", None),
            ("-5", None),
            ("+5", None),
            ("5.-5", None),
            ("3.999", None),
            ("abc", None),
            ("", None),
            (".", None),
            ("1e3", None),
        ];
        for (s, want) in cases {
            assert_eq!(super::parse_money(s).ok(), *want, "{s}");
        }
    }
}
