//! The HTTP layer: translates requests to events and answers; holds no SQL and no business rules.
//! `routes` is the whole routing table.

mod error;
mod health;
mod webhooks;

pub use error::HttpError;

use crate::clock::Clock;
use crate::config::Config;
use crate::providers::Providers;
use crate::scheduler;
use crate::store::Store;
use actix_web::{web, HttpResponse};
use std::sync::Arc;

/// Webhook bodies larger than this are refused (Twilio's are a few KB).
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Provider accounts.
    pub providers: Providers,
    /// The configuration.
    pub config: Arc<Config>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The scheduler, to wake when a job is added.
    pub scheduler: Arc<scheduler::Handle>,
    /// The public base URL (no trailing slash) signatures are computed over.
    pub public_url: String,
}

/// The routing table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .route("/", web::get().to(index))
        .route("/healthz", web::get().to(health::get))
        .service(
            web::scope("/hooks/twilio")
                .route("/voice", web::post().to(webhooks::voice))
                .route("/dial", web::post().to(webhooks::dial))
                .route("/screen", web::post().to(webhooks::screen))
                .route("/screen-accept", web::post().to(webhooks::screen_accept))
                .route("/call-status", web::post().to(webhooks::call_status))
                .route("/recording", web::post().to(webhooks::recording))
                .route("/sms", web::post().to(webhooks::inbound_sms))
                .route("/message-status", web::post().to(webhooks::message_status)),
        );
}

/// `GET /`: what this is and which URLs to give the provider.
async fn index(state: web::Data<AppState>) -> HttpResponse {
    let base = &state.public_url;
    let body = format!(
        "textback {version} is running.\n\n\
         Paste these into your Twilio number's configuration:\n\
         \x20 Voice, \"A call comes in\" (HTTP POST):      {base}/hooks/twilio/voice\n\
         \x20 Voice, \"Call status changes\" (HTTP POST):  {base}/hooks/twilio/call-status\n\
         \x20 Messaging, \"A message comes in\" (HTTP POST): {base}/hooks/twilio/sms\n\n\
         Health: {base}/healthz\n",
        version = env!("CARGO_PKG_VERSION"),
    );
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
