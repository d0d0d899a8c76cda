//! The admin UI's pages and forms, one module per page: sign-in and first-run setup, the inbox, a
//! conversation and its actions, contacts, the dashboard, settings, the simulator, live updates and static
//! files. Every state-changing form carries the session's CSRF token; staff see only their businesses, and
//! another business's conversation is a 404. This module holds what the pages share: the session, rendering
//! and visibility.

mod assets;
mod conversation;
mod dashboard;
mod directory;
mod golive;
mod inbox;
mod integrations;
mod live;
mod notifications;
mod session;
mod settings;
mod simulator;

pub use assets::asset;
pub use conversation::{act, conversation};
pub use dashboard::dashboard;
pub use directory::{contact_erase, contact_page, contact_save, contacts_csv, contacts_page};
pub use golive::{golive, golive_connect, golive_test, golive_test_text};
pub use inbox::inbox;
pub use integrations::{integrations, integrations_act};
pub use live::events;
pub use notifications::{
    notifications, push_allow, push_subscribe, push_test, push_unsubscribe, pwa_file,
};
pub use session::{login, login_form, logout, setup, setup_form, MAX_NAME};
pub use settings::{settings, settings_preview, settings_save, settings_test_text};
pub use simulator::{simulator, simulator_act};

use super::{read, AppState, HttpError};
use crate::auth;
use crate::clock::{format_utc, Millis};
use crate::config::BusinessConfig;
use crate::events::{self, Env};
use crate::report;
use crate::store::contacts::{Contact, InboxFilter};
use crate::store::users::User;
use crate::store::{self, calls, contacts, jobs, messages, users};
use crate::ui::{asset_hash, Assets};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

const SESSION_COOKIE: &str = "tb_session";
const LOGIN_COOKIE: &str = "tb_login";
/// Sessions are touched at most this often, so reading pages does not write on every request.
const TOUCH_EVERY_MS: Millis = 60_000;

/// A signed-in request.
pub struct Signed {
    /// Who.
    pub user: User,
    /// The session's CSRF token.
    pub csrf: String,
}

fn cookie<'a>(state: &AppState, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.public_url.starts_with("https://"))
        .finish()
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

fn html(
    state: &AppState,
    status: StatusCode,
    template: &str,
    ctx: &impl Serialize,
) -> HttpResponse {
    match state.ui.render(template, ctx) {
        Ok(body) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            HttpResponse::InternalServerError()
                .content_type(ContentType::plaintext())
                .body("internal error\n")
        }
    }
}

/// What every page's layout needs: who is signed in, the CSRF token its forms carry, the current tab, a
/// one-line message, and whether to show the simulator tab.
#[derive(Serialize)]
struct Chrome<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    simulator: bool,
    owner: bool,
}

impl<'a> Chrome<'a> {
    /// The layout for a signed-in user.
    fn signed(
        signed: &'a Signed,
        nav: &'a str,
        flash: Option<&'a str>,
        config: &crate::config::Config,
    ) -> Self {
        Self {
            user: Some(&signed.user.name),
            csrf: &signed.csrf,
            nav,
            flash,
            simulator: !simulated(config, &signed.user).is_empty(),
            owner: signed.user.role == "owner",
        }
    }

    /// The layout before sign-in.
    fn anonymous(csrf: &'a str) -> Self {
        Self {
            user: None,
            csrf,
            nav: "",
            flash: None,
            simulator: false,
            owner: false,
        }
    }
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    title: &'a str,
    message: &'a str,
}

fn error_page(
    state: &AppState,
    status: StatusCode,
    signed: Option<&Signed>,
    title: &str,
    message: &str,
) -> HttpResponse {
    let config = state.config.get();
    let chrome = match signed {
        Some(s) => Chrome::signed(s, "", None, &config),
        None => Chrome::anonymous(""),
    };
    let ctx = ErrorPage {
        chrome,
        title,
        message,
    };
    html(state, status, "error.html", &ctx)
}

fn not_found(state: &AppState, signed: &Signed) -> HttpResponse {
    error_page(
        state,
        StatusCode::NOT_FOUND,
        Some(signed),
        "Not found",
        "There is no such conversation, or it belongs to a business you do not see.",
    )
}

/// The signed-in user of a request, if the session cookie is valid.
pub async fn signed_in(state: &AppState, req: &HttpRequest) -> Result<Option<Signed>, HttpError> {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    let hash = auth::token_hash(&token);
    let now = state.clock.now();
    let h = hash.clone();
    let found = read(state, move |c| {
        let Some(session) = users::session(c, &h)? else {
            return Ok(None);
        };
        Ok(users::get(c, session.user_id)?.map(|u| (session, u)))
    })
    .await?;
    let Some((session, user)) = found else {
        return Ok(None);
    };
    if !auth::session_valid(session.created_at, session.last_seen_at, now) {
        state
            .store
            .write_async(move |c| users::end_session(c, &hash))
            .await?;
        return Ok(None);
    }
    if now - session.last_seen_at > TOUCH_EVERY_MS {
        state
            .store
            .write_async(move |c| users::touch_session(c, &hash, now))
            .await?;
    }
    Ok(Some(Signed {
        user,
        csrf: session.csrf,
    }))
}

fn csrf_ok(signed: &Signed, given: &str) -> bool {
    !given.is_empty() && bool::from(signed.csrf.as_bytes().ct_eq(given.as_bytes()))
}

/// The signed-in user of a form post whose CSRF token checks out; otherwise the answer to send instead:
/// the way to the login page, or the refusal of a forged or stale form.
async fn signed_form(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
) -> Result<Result<Signed, HttpResponse>, HttpError> {
    let Some(signed) = signed_in(state, req).await? else {
        return Ok(Err(redirect("/login")));
    };
    if !csrf_ok(&signed, csrf) {
        return Ok(Err(csrf_refused(state, Some(&signed))));
    }
    Ok(Ok(signed))
}

/// Like `signed_form`, for what only owners may do.
async fn owner_form(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
) -> Result<Result<Signed, HttpResponse>, HttpError> {
    Ok(match signed_form(state, req, csrf).await? {
        Ok(signed) => match owner_only(state, &signed) {
            Some(refused) => Err(refused),
            None => Ok(signed),
        },
        refused => refused,
    })
}

fn csrf_refused(state: &AppState, signed: Option<&Signed>) -> HttpResponse {
    error_page(
        state,
        StatusCode::FORBIDDEN,
        signed,
        "Form expired",
        "This form is out of date or did not come from textback. Go back, reload the page and try again.",
    )
}

/// What became of a call, in a sentence: when its text-back leaves and with which script, or why it will
/// not.
pub(super) fn call_outcome(
    call: &calls::Call,
    due: Option<(Millis, String)>,
    sent_with: Option<&str>,
    tz: crate::zone::Tz,
) -> String {
    let at = crate::display::clock(call.started_at, tz);
    let missed = || {
        let why = call
            .miss_reason
            .as_deref()
            .unwrap_or("missed")
            .replace('-', " ");
        format!("{at} call missed ({why})")
    };
    match (call.state.as_str(), call.textback.as_deref()) {
        ("answered", _) => format!("{at} call answered: no text-back"),
        ("ringing", _) => format!("{at} call ringing"),
        (_, Some("scheduled")) => match due {
            Some((when, script)) => format!(
                "{}: text-back due at {} with {script}",
                missed(),
                crate::display::clock(when, tz)
            ),
            None => format!("{}: text-back being sent", missed()),
        },
        (_, Some("sent")) => match sent_with {
            Some(script) => format!("{}: texted with {script}", missed()),
            None => format!("{}: texted", missed()),
        },
        (_, Some("suppressed" | "cancelled")) => {
            let reason = call.textback_reason.as_deref().unwrap_or_default();
            let why = crate::model::SuppressReason::parse(reason).map_or(reason, |r| r.describe());
            format!("{}: not texted: {why}", missed())
        }
        (_, Some(other)) => format!(
            "{}: text-back {other}{}",
            missed(),
            call.textback_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        (_, None) => missed(),
    }
}

/// Refuses a non-owner, with the page saying so.
fn owner_only(state: &AppState, signed: &Signed) -> Option<HttpResponse> {
    (signed.user.role != "owner").then(|| {
        error_page(
            state,
            StatusCode::FORBIDDEN,
            Some(signed),
            "Owners only",
            "Only an owner can see and change settings or set textback up.",
        )
    })
}

/// A number typed in a form, in E.164, or the page that says why it is not one.
fn phone_or_page(
    state: &AppState,
    signed: &Signed,
    raw: &str,
) -> Result<String, Box<HttpResponse>> {
    crate::model::PhoneNumber::parse(raw)
        .map(|n| n.to_string())
        .map_err(|e| {
            Box::new(error_page(
                state,
                StatusCode::BAD_REQUEST,
                Some(signed),
                "Not a number",
                &e.to_string(),
            ))
        })
}

fn visible<'a>(config: &'a crate::config::Config, user: &User) -> Vec<&'a BusinessConfig> {
    config
        .businesses
        .iter()
        .filter(|b| user.can_see(&b.id))
        .collect()
}

/// A provider account as "connect your provider" shows it: which of the businesses shown use it, for what,
/// and where its webhooks go.
#[derive(Serialize)]
struct ConnectView {
    account: String,
    kind: String,
    uses: Vec<String>,
    instructions: &'static str,
    urls: Vec<crate::providers::HookUrl>,
}

/// The accounts `businesses` use, each once, in the config's order.
fn connect_views(
    state: &AppState,
    config: &crate::config::Config,
    businesses: &[&BusinessConfig],
) -> Vec<ConnectView> {
    config
        .providers
        .iter()
        .filter_map(|(name, p)| {
            let uses: Vec<String> = businesses
                .iter()
                .filter_map(|b| {
                    let calls = config.provider_name(b) == name;
                    let texts = config.sms_provider_name(b) == name;
                    let what = match (calls, texts) {
                        (true, true) => "calls and texts",
                        (true, false) => "calls",
                        (false, true) => "texts",
                        (false, false) => return None,
                    };
                    Some(format!("{} ({what})", b.name))
                })
                .collect();
            if uses.is_empty() {
                return None;
            }
            let connect = state.providers.get(name)?.connect();
            Some(ConnectView {
                account: name.clone(),
                kind: p.kind.clone(),
                uses,
                instructions: connect.instructions,
                urls: connect.urls,
            })
        })
        .collect()
}

#[derive(Serialize)]
struct BusinessOption {
    id: String,
    name: String,
}

async fn visible_contact(
    state: &AppState,
    signed: &Signed,
    id: i64,
) -> Result<Option<Contact>, HttpError> {
    let config = state.config.get();
    let contact = read(state, move |c| match contacts::get(c, id) {
        Ok(k) => Ok(Some(k)),
        Err(store::Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    Ok(contact.filter(|k| {
        signed.user.can_see(&k.business_id) && config.business(&k.business_id).is_some()
    }))
}

fn simulated(config: &crate::config::Config, user: &User) -> Vec<BusinessConfig> {
    config
        .businesses
        .iter()
        .filter(|b| user.can_see(&b.id))
        .filter(|b| {
            config
                .providers
                .get(config.provider_name(b))
                .is_some_and(|p| p.caps.simulated)
        })
        .cloned()
        .collect()
}
