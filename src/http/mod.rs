//! The HTTP layer: translates requests to events and answers; holds no SQL and no business rules.
//! `routes` is the whole routing table.

mod admin;
mod api;
mod bookings;
mod error;
mod health;
mod metrics;
mod webhooks;

pub use error::HttpError;

use crate::clock::Clock;
use crate::providers::Providers;
use crate::scheduler;
use crate::store::Store;
use actix_web::web;
use std::sync::Arc;

/// User names are at most this long.
pub const MAX_USER_NAME: usize = admin::MAX_NAME;

/// Webhook bodies larger than this are refused (Twilio's are a few KB).
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Provider accounts.
    pub providers: Providers,
    /// The configuration.
    pub config: crate::config::Shared,
    /// The config file settings are saved to (`None` on the built-in defaults).
    /// Changes to the configuration in force (settings saves, SIGHUP), one at a time.
    pub running: Arc<crate::reload::Live>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The scheduler, to wake when a job is added.
    pub scheduler: Arc<scheduler::Handle>,
    /// The public base URL (no trailing slash) signatures are computed over.
    pub public_url: String,
    /// The admin UI's templates.
    pub ui: crate::ui::Ui,
    /// Login attempts per account and per client address.
    pub limiter: crate::auth::Limiter,
    /// Password hashing, bounded in threads and queue.
    pub hasher: crate::auth::Hasher,
    /// Tells open admin pages that a business's data changed (server-sent events).
    pub live: tokio::sync::broadcast::Sender<String>,
}

/// The client's address: the peer, or behind a trusted proxy the client it forwarded for.
pub(crate) fn client_ip(
    req: &actix_web::HttpRequest,
    config: &crate::config::Config,
) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    // Every X-Forwarded-For line, in order: a proxy may add its own line below one the client sent.
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("X-Forwarded-For")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = forwarded.join(", ");
    Some(crate::clientip::client_ip(
        peer,
        Some(forwarded.as_str()).filter(|f| !f.is_empty()),
        &config.server.trusted_proxies,
    ))
}

/// Runs a read on a pooled connection off the async workers.
pub(crate) async fn read<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&crate::store::Conn<'_>) -> crate::store::Result<R> + Send + 'static,
) -> Result<R, HttpError> {
    let store = state.store.clone();
    web::block(move || store.read(f))
        .await
        .map_err(|_| HttpError::Unavailable(crate::store::Error::WriterGone))?
        .map_err(HttpError::from)
}

/// The dashboard's figures for some businesses over the last `days`, by local day in `tz`.
pub(crate) async fn figures(
    state: &AppState,
    ids: Vec<String>,
    days: u32,
    tz: crate::zone::Tz,
) -> Result<crate::report::Dashboard, HttpError> {
    let since = state.clock.now() - i64::from(days) * 24 * 3_600_000;
    figures_since(state, ids, since, days, tz).await
}

/// The dashboard's figures from `since` (the daily chart covers the last `days`).
pub(crate) async fn figures_since(
    state: &AppState,
    ids: Vec<String>,
    since: crate::clock::Millis,
    days: u32,
    tz: crate::zone::Tz,
) -> Result<crate::report::Dashboard, HttpError> {
    let now = state.clock.now();
    let (rows, segments) = read(state, move |c| {
        Ok((
            crate::store::reports::missed_calls(c, since)?,
            crate::store::reports::segments_sent(c, since)?,
        ))
    })
    .await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| ids.contains(&r.business_id))
        .collect();
    let segments: Vec<_> = segments
        .into_iter()
        .filter(|(b, _)| ids.contains(b))
        .collect();
    let config = state.config.get();
    let prices = move |id: &str| crate::report::prices_of(config.business(id));
    Ok(crate::report::dashboard(
        &rows, &segments, prices, tz, days, now,
    ))
}

/// Security headers on every answer: no inline scripts or styles, no framing, no referrers leaking
/// conversation URLs, and nothing kept in caches (pages and exports hold personal data; the static files
/// set their own long-lived caching). Behind https, browsers are told to use nothing else.
pub fn security_headers(public_url: &str) -> actix_web::middleware::DefaultHeaders {
    let headers = actix_web::middleware::DefaultHeaders::new();
    let headers = if public_url.starts_with("https://") {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    };
    headers
        .add(("Cache-Control", "no-store"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src https:; connect-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
}

/// The routing table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for (icon, _, _) in crate::icons::ICONS {
        cfg.route(&format!("/{icon}"), web::get().to(admin::pwa_file));
    }
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .app_data(web::FormConfig::default().limit(MAX_BODY))
        .app_data(web::JsonConfig::default().limit(MAX_BODY))
        // Webhooks first: routes are tried in order, each pattern with a `{...}` is a regular expression, and
        // providers' requests are most of the traffic.
        .route(
            "/hooks/booking/{tool}/{business}",
            web::post().to(bookings::hook),
        )
        .route("/hooks/{provider}/{hook}", web::post().to(webhooks::hook))
        .route("/", web::get().to(admin::inbox))
        .route("/healthz", web::get().to(health::get))
        .route("/metrics", web::get().to(metrics::get))
        .route("/login", web::get().to(admin::login_form))
        .route("/login", web::post().to(admin::login))
        .route("/logout", web::post().to(admin::logout))
        .route("/setup", web::get().to(admin::setup_form))
        .route("/setup", web::post().to(admin::setup))
        .route("/dashboard", web::get().to(admin::dashboard))
        .route("/golive", web::get().to(admin::golive))
        .route("/golive/connect", web::post().to(admin::golive_connect))
        .route("/golive/test-text", web::post().to(admin::golive_test_text))
        .route("/golive/test/{id}", web::get().to(admin::golive_test))
        .route("/settings", web::get().to(admin::settings))
        .route("/settings/preview", web::post().to(admin::settings_preview))
        .route("/settings/integrations", web::get().to(admin::integrations))
        .route(
            "/settings/integrations/{action}",
            web::post().to(admin::integrations_act),
        )
        .route("/settings/{index}", web::post().to(admin::settings_save))
        .route(
            "/settings/{index}/test-text",
            web::post().to(admin::settings_test_text),
        )
        .route("/simulator", web::get().to(admin::simulator))
        .route("/simulator/{action}", web::post().to(admin::simulator_act))
        .route("/contacts", web::get().to(admin::contacts_page))
        .route("/contacts.csv", web::get().to(admin::contacts_csv))
        .route("/contacts/{id}", web::get().to(admin::contact_page))
        .route("/contacts/{id}", web::post().to(admin::contact_save))
        .route("/contacts/{id}/erase", web::post().to(admin::contact_erase))
        .route("/conversations/{id}", web::get().to(admin::conversation))
        .route("/conversations/{id}/{action}", web::post().to(admin::act))
        .route("/static/{hash}/{file}", web::get().to(admin::asset))
        .route("/events", web::get().to(admin::events))
        .route("/notifications", web::get().to(admin::notifications))
        .route("/push/subscribe", web::post().to(admin::push_subscribe))
        .route("/push/unsubscribe", web::post().to(admin::push_unsubscribe))
        .route("/push/test", web::post().to(admin::push_test))
        .route("/settings/push/{user}", web::post().to(admin::push_allow))
        .route("/manifest.webmanifest", web::get().to(admin::pwa_file))
        .route("/sw.js", web::get().to(admin::pwa_file))
        .service(
            web::scope("/api/v1")
                .route("/calls", web::get().to(api::calls))
                .route("/conversations", web::get().to(api::conversations))
                .route("/conversations/{id}/messages", web::get().to(api::messages))
                .route("/contacts", web::get().to(api::contacts))
                .route("/stats", web::get().to(api::stats)),
        );
}
