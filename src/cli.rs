//! The command line (clap types only).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The version line: the release and the database schema it writes.
pub fn version() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        format!(
            "{} (database schema {})",
            env!("CARGO_PKG_VERSION"),
            crate::store::migrations::known()
        )
    })
}

/// textback: text back every caller you missed.
#[derive(Debug, Parser)]
#[command(name = "textback", version = version(), about, long_about = None)]
pub struct Cli {
    /// Config file [default: ./textback.toml, then /etc/textback/textback.toml, else built-in defaults]
    #[arg(
        long,
        short,
        global = true,
        env = "TEXTBACK_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// What to do [default: serve]
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance: webhooks, scheduler and database
    Serve {
        /// Listen on this address instead of server.listen, e.g. 127.0.0.1:9090 (port 0: any free port)
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Write a commented config file to start from (the same text as config.example.toml)
    Init {
        /// Where to write it [default: --config, else ./textback.toml]
        path: Option<PathBuf>,
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Validate the config file and print a summary, or every problem with its line and key
    CheckConfig,
    /// Point each business number's webhooks at this server through its provider's API (Twilio, SignalWire)
    Connect {
        /// Only this business [default: every one]
        #[arg(long)]
        business: Option<String>,
        /// Show what would change, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Check what breaks live set-ups (config, database, clock, credentials, numbers, public URL, 10DLC)
    Doctor,
    /// Send one real text through the business's provider and wait for its delivery receipt
    SendTest {
        /// Where to send it (your own mobile), e.g. +14805550111
        number: String,
        /// The business [default: the only one]
        #[arg(long)]
        business: Option<String>,
        /// How long to wait for the receipt
        #[arg(long, default_value = "2m")]
        wait: humantime::Duration,
    },
    /// Write the A2P 10DLC campaign registration for a business, from its configuration
    #[command(name = "10dlc")]
    TenDlc {
        /// The business [default: the only one]
        #[arg(long)]
        business: Option<String>,
        /// As JSON, with the API's field names
        #[arg(long)]
        json: bool,
    },
    /// Show pending, sent, failed and suppressed texts, read from the database
    Status {
        /// How many of the latest rows to list in each section
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
    /// Copy the database, consistently, while the server runs: to PATH (a new file, or a folder to put
    /// textback-<time>.db in), made private, integrity-checked
    Backup {
        /// Where [default: ./textback-<time>.db]
        path: Option<std::path::PathBuf>,
    },
    /// Put a backup in place of the database (the server must be stopped); the current one is kept aside
    Restore {
        /// The backup file
        path: std::path::PathBuf,
    },
    /// Write a business's data (contacts, consent history, calls, messages, bookings) as JSON lines
    Export {
        /// The business [default: all]
        #[arg(long)]
        business: Option<String>,
    },
    /// Send a test email through the [email] settings, at once, and say what the server answered
    EmailTest {
        /// Where to send it, e.g. you@example.com
        address: String,
    },
    /// Send signed, Twilio-shaped webhooks to a running textback, as Twilio would
    #[command(subcommand)]
    Simulate(Simulate),
    /// Record that a contact booked (the reports count it as recovered); stops their follow-ups
    MarkBooked {
        /// The contact's number, e.g. +14805550111
        number: String,
        /// What the job is worth, e.g. 385 or 385.50
        #[arg(long)]
        value: Option<String>,
        /// The business [default: the only one]
        #[arg(long)]
        business: Option<String>,
    },
    /// Record that a conversation is lost; stops its follow-ups
    MarkLost {
        /// The contact's number
        number: String,
        /// The business [default: the only one]
        #[arg(long)]
        business: Option<String>,
    },
    /// Never text this number (and call off what is pending for it)
    Block {
        /// The number
        number: String,
        /// The business [default: the only one]
        #[arg(long)]
        business: Option<String>,
    },
    /// Undo `block`
    Unblock {
        /// The number
        number: String,
        /// The business [default: the only one]
        #[arg(long)]
        business: Option<String>,
    },
    /// Manage the admin UI's users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage bearer tokens for the read-only JSON API
    #[command(subcommand)]
    Token(TokenCommand),
    /// Text a contact as staff (automatic texts then stay quiet for human_hold)
    Reply {
        /// The contact's number
        number: String,
        /// The text
        #[arg(long)]
        body: String,
        /// The business [default: the only one]
        #[arg(long)]
        business: Option<String>,
    },
}

/// What to simulate.
#[derive(Debug, Subcommand)]
pub enum Simulate {
    /// A call that nobody answered (or answered briefly)
    MissedCall {
        /// The caller's number, e.g. +14805550111
        #[arg(long)]
        from: String,
        /// The business number called [default: the first business's first number]
        #[arg(long)]
        to: Option<String>,
        /// How the forwarded call ended
        #[arg(long, default_value = "no-answer", value_parser = clap::builder::PossibleValuesParser::new(crate::providers::simulator::webhooks::DIAL_STATUSES))]
        status: String,
        /// With --status completed: how many seconds it was answered
        #[arg(long)]
        duration: Option<u64>,
        /// Where textback listens [default: http:// + server.listen]
        #[arg(long)]
        url: Option<String>,
    },
    /// An inbound text, e.g. a reply or STOP
    Sms {
        /// The sender's number
        #[arg(long)]
        from: String,
        /// The business number texted [default: the first business's first number]
        #[arg(long)]
        to: Option<String>,
        /// The text
        #[arg(long)]
        body: String,
        /// Where textback listens [default: http:// + server.listen]
        #[arg(long)]
        url: Option<String>,
    },
}

/// `textback user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (asks for the password, or reads it from standard input)
    Add {
        /// Login name
        name: String,
        /// owner (sees every business) or staff (sees the businesses given with --business)
        #[arg(long, default_value = "staff", value_parser = ["owner", "staff"])]
        role: String,
        /// A business the user may see (repeat for several) [default for staff: the only business]
        #[arg(long = "business", value_name = "ID")]
        businesses: Vec<String>,
    },
    /// Change a user's password (signs them out everywhere)
    Passwd {
        /// Login name
        name: String,
    },
    /// List users
    List,
    /// Remove a user
    Remove {
        /// Login name
        name: String,
    },
}

/// `textback token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token that reads with a user's access; prints it once
    Create {
        /// What the token is for, e.g. "zapier"
        name: String,
        /// The user whose access it has
        #[arg(long)]
        user: String,
        /// Stop working after this long, e.g. 90d [default: never]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List tokens: id, name, user, created, last used, expiry (never the token itself)
    List,
    /// Revoke a token at once
    Revoke {
        /// The token's id, from `textback token list`
        id: i64,
    },
}
