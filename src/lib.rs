//! textback: a self-hosted missed-call text-back appliance. One binary, one TOML file, one SQLite database.
//!
//! Data flows provider → `http` (verify, parse) → `events` (decide with `policy`, record and enqueue in one
//! transaction) → `scheduler` (send at the due time through `providers`, record the outcome). See DESIGN.md.
#![warn(missing_docs)]

pub mod accounts;
pub mod app;
pub mod auth;
pub mod backup;
pub mod bookings;
pub mod charts;
pub mod cli;
pub mod clientip;
pub mod clock;
pub mod config;
pub mod country;
pub mod cron;
pub mod digest;
pub mod display;
pub mod email;
pub mod events;
pub mod hours;
pub mod http;
pub mod icons;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod outbox;
pub mod periodic;
pub mod policy;
pub mod providers;
pub mod push;
pub mod registration;
pub mod reload;
pub mod report;
pub mod retention;
pub mod scheduler;
pub mod script;
pub mod settings;
pub mod setup;
pub mod simulate;
pub mod staff;
pub mod store;
pub mod systemd;
pub mod ui;
pub mod webhook;
pub mod zone;
