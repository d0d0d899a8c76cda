//! The admin UI's pages and forms: log in and out, first-run setup, the inbox, a conversation and its
//! actions, the dashboard, and the embedded static files. Every state-changing form carries the session's
//! CSRF token; staff see only their businesses, and another business's conversation is a 404.

use super::{AppState, HttpError};
use crate::auth;
use crate::clock::{format_utc, Millis};
use crate::config::BusinessConfig;
use crate::events::{self, Env};
use crate::report;
use crate::store::contacts::{Contact, InboxFilter};
use crate::store::users::User;
use crate::store::{self, calls, contacts, jobs, messages, users, Conn};
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

#[derive(Serialize)]
struct ErrorPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
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
    let ctx = ErrorPage {
        user: signed.map(|s| s.user.name.as_str()),
        csrf: signed.map_or("", |s| s.csrf.as_str()),
        nav: "",
        flash: None,
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

async fn read<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Conn<'_>) -> store::Result<R> + Send + 'static,
) -> Result<R, HttpError> {
    let store = state.store.clone();
    web::block(move || store.read(f))
        .await
        .map_err(|_| HttpError::Unavailable(store::Error::WriterGone))?
        .map_err(HttpError::from)
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

fn csrf_refused(state: &AppState, signed: Option<&Signed>) -> HttpResponse {
    error_page(
        state,
        StatusCode::FORBIDDEN,
        signed,
        "Form expired",
        "This form is out of date or did not come from textback. Go back, reload the page and try again.",
    )
}

// -------------------------------------------------------------------------------------------------------------
// Log in, log out, first-run setup

#[derive(Serialize)]
struct LoginPage<'a> {
    user: Option<&'a str>,
    nav: &'a str,
    flash: Option<&'a str>,
    csrf: &'a str,
    name: &'a str,
    error: Option<&'a str>,
}

/// `GET /login`
pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    if signed_in(&state, &req).await?.is_some() {
        return Ok(redirect("/"));
    }
    Ok(login_page(&state, StatusCode::OK, "", None))
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    name: &str,
    error: Option<&str>,
) -> HttpResponse {
    // Login CSRF: the form must echo a random value also set as a cookie (double submit).
    let token = auth::new_token();
    let ctx = LoginPage {
        user: None,
        nav: "",
        flash: None,
        csrf: &token,
        name,
        error,
    };
    let mut resp = html(state, status, "login.html", &ctx);
    let _ = resp.add_cookie(&cookie(state, LOGIN_COOKIE, token.clone()));
    resp
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    name: String,
    password: String,
}

/// `POST /login`: rate-limited per IP and per user name.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, HttpError> {
    let expected = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Ok(login_page(
            &state,
            StatusCode::FORBIDDEN,
            &form.name,
            Some("The form expired; please try again."),
        ));
    }
    let now = state.clock.now();
    let ip = format!(
        "ip:{}",
        req.peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    );
    let who = format!("user:{}", form.name.trim());
    if !state.limiter.allowed(&ip, now) || !state.limiter.allowed(&who, now) {
        return Ok(login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &form.name,
            Some("Too many failed attempts. Wait 15 minutes and try again."),
        ));
    }
    let name = form.name.trim().to_string();
    let user = read(&state, move |c| users::by_name(c, &name)).await?;
    let password = form.password.clone();
    let verified = match user {
        Some(u) => {
            web::block(move || auth::verify_password(&password, &u.password_hash).then_some(u))
                .await
                .unwrap_or(None)
        }
        None => None,
    };
    let Some(user) = verified else {
        state.limiter.failed(&ip, now);
        state.limiter.failed(&who, now);
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &form.name,
            Some("Wrong user name or password."),
        ));
    };
    state.limiter.clear(&who);
    let token = start_session(&state, user.id, now).await?;
    let mut resp = redirect("/");
    let _ = resp.add_cookie(&cookie(&state, SESSION_COOKIE, token));
    let mut gone = cookie(&state, LOGIN_COOKIE, String::new());
    gone.make_removal();
    let _ = resp.add_cookie(&gone);
    Ok(resp)
}

async fn start_session(state: &AppState, user_id: i64, now: Millis) -> Result<String, HttpError> {
    let (token, csrf) = (auth::new_token(), auth::new_token());
    let hash = auth::token_hash(&token);
    state
        .store
        .write_async(move |c| users::create_session(c, &hash, user_id, &csrf, now))
        .await?;
    Ok(token)
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(csrf_refused(&state, Some(&signed)));
    }
    if let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let hash = auth::token_hash(&token);
        state
            .store
            .write_async(move |c| users::end_session(c, &hash))
            .await?;
    }
    let mut resp = redirect("/login");
    let mut gone = cookie(&state, SESSION_COOKIE, String::new());
    gone.make_removal();
    let _ = resp.add_cookie(&gone);
    Ok(resp)
}

#[derive(Serialize)]
struct SetupPage<'a> {
    user: Option<&'a str>,
    nav: &'a str,
    flash: Option<&'a str>,
    csrf: &'a str,
    token: &'a str,
    name: &'a str,
    error: Option<&'a str>,
}

/// `?token=` of the setup link.
#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// `GET /setup?token=…`: the one-time link `serve` prints while no user exists.
pub async fn setup_form(
    state: web::Data<AppState>,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, HttpError> {
    let (hash, now) = (auth::token_hash(&query.token), state.clock.now());
    let valid = read(&state, move |c| {
        Ok(users::count(c)? == 0 && users::setup_token_valid(c, &hash, now)?)
    })
    .await?;
    if !valid {
        return Ok(error_page(&state, StatusCode::NOT_FOUND, None, "Link expired", "This setup link was used already or has expired. Restart textback for a new one, or add a user with `textback user add`."));
    }
    let ctx = SetupPage {
        user: None,
        nav: "",
        flash: None,
        csrf: "",
        token: &query.token,
        name: "",
        error: None,
    };
    Ok(html(&state, StatusCode::OK, "setup.html", &ctx))
}

/// The setup form.
#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    name: String,
    password: String,
}

/// `POST /setup`: creates the first owner (once) and signs them in.
pub async fn setup(
    state: web::Data<AppState>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, HttpError> {
    let name = form.name.trim().to_string();
    let problem = if name.is_empty() {
        Some("Choose a user name.".to_string())
    } else {
        auth::check_password(&form.password).err()
    };
    if let Some(problem) = problem {
        let ctx = SetupPage {
            user: None,
            nav: "",
            flash: None,
            csrf: "",
            token: &form.token,
            name: &name,
            error: Some(&problem),
        };
        return Ok(html(&state, StatusCode::BAD_REQUEST, "setup.html", &ctx));
    }
    let password = form.password.clone();
    let hash = web::block(move || auth::hash_password(&password))
        .await
        .map_err(|_| HttpError::BadRequest("cannot hash the password".into()))?
        .map_err(HttpError::BadRequest)?;
    let (token_hash, now) = (auth::token_hash(&form.token), state.clock.now());
    let created = state
        .store
        .write_async(move |c| {
            if users::count(c)? > 0 || !users::use_setup_token(c, &token_hash, now)? {
                return Ok(None);
            }
            users::create(c, &name, &hash, "owner", &[], now).map(Some)
        })
        .await?;
    let Some(user_id) = created else {
        return Ok(error_page(
            &state,
            StatusCode::NOT_FOUND,
            None,
            "Link expired",
            "This setup link was used already or has expired.",
        ));
    };
    let token = start_session(&state, user_id, now).await?;
    let mut resp = redirect("/");
    let _ = resp.add_cookie(&cookie(&state, SESSION_COOKIE, token));
    Ok(resp)
}

// -------------------------------------------------------------------------------------------------------------
// Inbox

#[derive(Serialize)]
struct InboxItem {
    id: i64,
    name: String,
    state: String,
    urgent: bool,
    needs_reply: bool,
    unread: bool,
    last: String,
    business: String,
    when: String,
}

#[derive(Serialize)]
struct FilterLink {
    label: &'static str,
    href: String,
    active: bool,
}

#[derive(Serialize)]
struct InboxPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    simulator: bool,
    filter: &'a str,
    business: &'a str,
    businesses: Vec<BusinessOption>,
    filters: Vec<FilterLink>,
    conversations: Vec<InboxItem>,
}

/// Inbox query string.
#[derive(Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    filter: String,
    #[serde(default)]
    business: String,
}

fn visible<'a>(config: &'a crate::config::Config, user: &User) -> Vec<&'a BusinessConfig> {
    config
        .businesses
        .iter()
        .filter(|b| user.can_see(&b.id))
        .collect()
}

/// `GET /`: conversations, urgent and needs-reply first.
pub async fn inbox(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let filter = match query.filter.as_str() {
        "needs-reply" => InboxFilter::NeedsReply,
        "urgent" => InboxFilter::Urgent,
        "booked" => InboxFilter::Booked,
        "opted-out" => InboxFilter::OptedOut,
        _ => InboxFilter::All,
    };
    let config = state.config.get();
    let businesses = visible(&config, &signed.user);
    let business = businesses
        .iter()
        .find(|b| b.id == query.business)
        .map(|b| b.id.clone());
    let allowed: Vec<String> = businesses.iter().map(|b| b.id.clone()).collect();
    let rows = read(&state, move |c| {
        contacts::inbox(c, business.as_deref(), filter, 300)
    })
    .await?;
    let all = state.config.get();
    let names: std::collections::HashMap<&str, &str> = all
        .businesses
        .iter()
        .map(|b| (b.id.as_str(), b.name.as_str()))
        .collect();
    let conversations = rows
        .into_iter()
        .filter(|r| allowed.contains(&r.business_id))
        .map(|r| InboxItem {
            id: r.id,
            name: r.name.clone().unwrap_or_else(|| r.phone.clone()),
            state: r.state,
            urgent: r.urgent,
            needs_reply: r.needs_reply,
            unread: r.unread,
            last: r.last_body.unwrap_or_else(|| "(missed call)".into()),
            business: names
                .get(r.business_id.as_str())
                .map_or(r.business_id.clone(), |n| (*n).to_string()),
            when: format_utc(r.last_at),
        })
        .collect();
    let b = if query.business.is_empty() {
        String::new()
    } else {
        format!("&business={}", query.business)
    };
    let filters = [
        ("All", ""),
        ("Needs reply", "needs-reply"),
        ("Urgent", "urgent"),
        ("Booked", "booked"),
        ("Opted out", "opted-out"),
    ]
    .into_iter()
    .map(|(label, key)| FilterLink {
        label,
        href: format!("/?filter={key}{b}"),
        active: query.filter == key,
    })
    .collect();
    let ctx = InboxPage {
        user: Some(&signed.user.name),
        csrf: &signed.csrf,
        nav: "inbox",
        flash: None,
        simulator: !simulated(&config, &signed.user).is_empty(),
        filter: &query.filter,
        business: &query.business,
        businesses: visible(&config, &signed.user)
            .iter()
            .map(|b| BusinessOption {
                id: b.id.clone(),
                name: b.name.clone(),
            })
            .collect(),
        filters,
        conversations,
    };
    Ok(html(&state, StatusCode::OK, "inbox.html", &ctx))
}

// -------------------------------------------------------------------------------------------------------------
// Conversation

#[derive(Serialize)]
struct ContactView {
    id: i64,
    name: String,
    phone: String,
    business: String,
    state: String,
    urgent: bool,
    opted_out: bool,
    blocked: bool,
    booked_value: Option<String>,
}

#[derive(Serialize)]
struct Event {
    at: Millis,
    when: String,
    kind: &'static str,
    title: String,
    body: Option<String>,
    detail: Option<String>,
    link: Option<String>,
}

#[derive(Serialize)]
struct ConversationPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    contact: ContactView,
    timeline: Vec<Event>,
    pending_follow_ups: usize,
}

fn timeline(
    calls: Vec<calls::Call>,
    messages: Vec<messages::Message>,
    notes: Vec<(String, String, i64)>,
    pending: &[jobs::JobRow],
) -> Vec<Event> {
    let mut out = Vec::new();
    for c in calls {
        let title = match c.state.as_str() {
            "missed" => format!(
                "Missed call ({})",
                c.miss_reason.as_deref().unwrap_or("missed")
            ),
            "answered" => "Answered call".to_string(),
            _ => "Call".to_string(),
        };
        let detail = match (&c.textback, &c.textback_reason) {
            (Some(t), Some(r)) => Some(format!("text-back {t}: {r}")),
            (Some(t), None) => Some(format!("text-back {t}")),
            _ => None,
        };
        let detail = match c.duration_secs {
            Some(d) => Some(format!(
                "{d} s{}",
                detail.map(|x| format!(" · {x}")).unwrap_or_default()
            )),
            None => detail,
        };
        out.push(Event {
            at: c.started_at,
            when: format_utc(c.started_at),
            kind: "call",
            title,
            body: None,
            detail,
            link: c.recording_url,
        });
    }
    for m in messages {
        let (kind, title) = if m.direction == "in" {
            (
                "in",
                match &m.keyword {
                    Some(k) => format!("Text from them (keyword {k})"),
                    None => "Text from them".to_string(),
                },
            )
        } else {
            ("out", format!("Text to them ({})", m.purpose))
        };
        let mut detail = m.status.clone();
        if let Some(code) = m.error_code {
            detail.push_str(&format!(" · error {code}"));
        }
        if let Some(e) = &m.error_message {
            detail.push_str(&format!(" · {e}"));
        }
        out.push(Event {
            at: m.created_at,
            when: format_utc(m.created_at),
            kind,
            title,
            body: Some(m.body),
            detail: Some(detail),
            link: None,
        });
    }
    for (author, body, at) in notes {
        out.push(Event {
            at,
            when: format_utc(at),
            kind: "note",
            title: format!("Note by {author}"),
            body: Some(body),
            detail: None,
            link: None,
        });
    }
    for j in pending
        .iter()
        .filter(|j| matches!(j.job.kind(), "follow_up" | "text_back"))
    {
        out.push(Event {
            at: j.run_at,
            when: format_utc(j.run_at),
            kind: "pending",
            title: format!("Pending {}", j.job.kind().replace('_', " ")),
            body: None,
            detail: Some("scheduled".into()),
            link: None,
        });
    }
    out.sort_by_key(|e| e.at);
    out
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

/// `GET /conversations/{id}`: the whole timeline of a contact.
pub async fn conversation(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let id = path.into_inner();
    let Some(contact) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    let (calls, msgs, notes, pending) = read(&state, move |c| {
        let pending: Vec<jobs::JobRow> = jobs::pending_for_contact(c, id)?;
        Ok((
            calls::for_contact(c, id)?,
            messages::for_contact(c, id)?,
            contacts::notes(c, id)?,
            pending,
        ))
    })
    .await?;
    if contact.unread {
        state
            .store
            .write_async(move |c| contacts::mark_read(c, id))
            .await?;
    }
    let pending_follow_ups = pending
        .iter()
        .filter(|j| j.job.kind() == "follow_up")
        .count();
    let business = state
        .config
        .get()
        .business(&contact.business_id)
        .map_or(contact.business_id.clone(), |b| b.name.clone());
    let view = ContactView {
        id,
        name: contact
            .name
            .clone()
            .unwrap_or_else(|| contact.phone.clone()),
        phone: contact.phone.clone(),
        business,
        state: contact.state.clone(),
        urgent: contact.urgent,
        opted_out: contact.opted_out_at.is_some(),
        blocked: contact.blocked_at.is_some(),
        booked_value: contact.booked_value_cents.map(report::dollars),
    };
    let ctx = ConversationPage {
        user: Some(&signed.user.name),
        csrf: &signed.csrf,
        nav: "inbox",
        flash: None,
        contact: view,
        timeline: timeline(calls, msgs, notes, &pending),
        pending_follow_ups,
    };
    Ok(html(&state, StatusCode::OK, "conversation.html", &ctx))
}

/// Any action form on a conversation.
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    urgent: String,
    #[serde(default)]
    blocked: String,
}

/// `POST /conversations/{id}/{action}`: reply, booked, lost, urgent, block, note, cancel-follow-ups.
pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, HttpError> {
    let config = state.config.get();
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(csrf_refused(&state, Some(&signed)));
    }
    let (id, action) = path.into_inner();
    let Some(contact) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    let Some(biz) = config.business(&contact.business_id).cloned() else {
        return Ok(not_found(&state, &signed));
    };
    let now = state.clock.now();
    let form = form.into_inner();
    let value = if action == "booked" && !form.value.trim().is_empty() {
        match crate::staff::parse_money(&form.value) {
            Ok(v) => Some(v),
            Err(e) => {
                return Ok(error_page(
                    &state,
                    StatusCode::BAD_REQUEST,
                    Some(&signed),
                    "Not an amount",
                    &e.to_string(),
                ))
            }
        }
    } else {
        None
    };
    let (provider, public, author) = (
        config.provider_name(&biz).to_string(),
        state.public_url.clone(),
        signed.user.name.clone(),
    );
    let phone = contact.phone.clone();
    let result = state
        .store
        .write_async(move |c| {
            let env = Env {
                biz: &biz,
                provider: &provider,
                public_url: &public,
            };
            match action.as_str() {
                "reply" => events::staff_reply(c, &env, &phone, &form.body, now).map(Some),
                "booked" => events::mark_booked(c, &biz, &phone, value, now).map(|_| None),
                "lost" => events::mark_lost(c, &biz, &phone, now).map(|_| None),
                "urgent" => contacts::set_urgent(c, id, form.urgent == "1", now).map(|()| None),
                "block" => {
                    events::set_blocked(c, &biz, &phone, form.blocked == "1", now).map(|_| None)
                }
                "note" if !form.body.trim().is_empty() => {
                    contacts::add_note(c, id, &author, form.body.trim(), now).map(|()| None)
                }
                "cancel-follow-ups" => {
                    events::cancel_follow_ups_by_staff(c, id, now).map(|()| None)
                }
                _ => Err(store::Error::NotFound),
            }
        })
        .await;
    match result {
        Ok(due) => {
            if due.is_some() {
                state.scheduler.wake();
            }
            let _ = state.live.send(contact.business_id.clone());
            Ok(redirect(&format!("/conversations/{id}")))
        }
        Err(store::Error::Refused(why)) => Ok(error_page(
            &state,
            StatusCode::CONFLICT,
            Some(&signed),
            "Not done",
            &why,
        )),
        Err(store::Error::NotFound) => Ok(not_found(&state, &signed)),
        Err(e) => Err(e.into()),
    }
}

// -------------------------------------------------------------------------------------------------------------
// Dashboard

#[derive(Serialize)]
struct BusinessOption {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct FunnelView {
    missed: u32,
    texted: u32,
    delivered: u32,
    replied: u32,
    booked: u32,
    suppressed: u32,
    rate: String,
}

#[derive(Serialize)]
struct MoneyView {
    recovered: String,
    spend: String,
    segments: i64,
    roi: String,
}

#[derive(Serialize)]
struct DashboardPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    days: u32,
    business: String,
    businesses: Vec<BusinessOption>,
    funnel: FunnelView,
    money: MoneyView,
    daily_chart: String,
    heatmap: String,
    public_url: &'a str,
}

/// Dashboard query string.
#[derive(Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    business: String,
}

/// `GET /dashboard`: the funnel, the money and when calls are missed.
pub async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<DashboardQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let days = query.days.unwrap_or(30).clamp(1, 366);
    let config = state.config.get();
    let businesses = visible(&config, &signed.user);
    let chosen: Vec<&BusinessConfig> = businesses
        .iter()
        .copied()
        .filter(|b| query.business.is_empty() || b.id == query.business)
        .collect();
    let ids: Vec<String> = chosen.iter().map(|b| b.id.clone()).collect();
    let now = state.clock.now();
    let since = now - i64::from(days) * 24 * 3_600_000;
    let (rows, segments) = read(&state, move |c| {
        Ok((
            store::reports::missed_calls(c, since)?,
            store::reports::segments_sent(c, since)?,
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
    let prices = move |id: &str| report::prices_of(config.business(id));
    let tz = chosen.first().map_or(chrono_tz::UTC, |b| b.tz());
    let d = report::dashboard(&rows, &segments, prices, tz, days, now);
    let f = d.funnel;
    let percent = |n: u32, of: u32| {
        if of == 0 {
            "–".to_string()
        } else {
            format!("{:.0}%", f64::from(n) * 100.0 / f64::from(of))
        }
    };
    let spend_cents = (d.money.spend_centicents + 50) / 100;
    #[allow(clippy::cast_precision_loss)]
    let roi = if spend_cents == 0 {
        "–".to_string()
    } else {
        format!(
            "{:.0}×",
            d.money.recovered_cents as f64 / spend_cents as f64
        )
    };
    let ctx = DashboardPage {
        user: Some(&signed.user.name),
        csrf: &signed.csrf,
        nav: "dashboard",
        flash: None,
        days,
        business: query.business.clone(),
        businesses: businesses
            .iter()
            .map(|b| BusinessOption {
                id: b.id.clone(),
                name: b.name.clone(),
            })
            .collect(),
        funnel: FunnelView {
            missed: f.missed,
            texted: f.texted,
            delivered: f.delivered,
            replied: f.replied,
            booked: f.booked,
            suppressed: f.suppressed,
            rate: percent(f.booked, f.missed),
        },
        money: MoneyView {
            recovered: report::dollars(d.money.recovered_cents),
            spend: report::dollars(spend_cents),
            segments: d.money.segments,
            roi,
        },
        daily_chart: crate::charts::daily(&d.daily),
        heatmap: crate::charts::heatmap(&d.heat),
        public_url: &state.public_url,
    };
    Ok(html(&state, StatusCode::OK, "dashboard.html", &ctx))
}

// -------------------------------------------------------------------------------------------------------------
// Static files

/// `GET /static/{hash}/{file}`: embedded files under content-hashed URLs, cached for a year.
pub async fn asset(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, file) = path.into_inner();
    let (Some(data), Some(expected)) = (Assets::get(&file), asset_hash(&file)) else {
        return HttpResponse::NotFound().finish();
    };
    if hash != expected {
        return HttpResponse::NotFound().finish();
    }
    let etag = format!("\"{expected}\"");
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return HttpResponse::NotModified().finish();
    }
    let mime = match file.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    HttpResponse::Ok()
        .content_type(mime)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::ETAG, etag))
        .body(data.data.into_owned())
}

// -------------------------------------------------------------------------------------------------------------
// Contacts

#[derive(Serialize)]
struct ContactRow {
    id: i64,
    name: String,
    phone: String,
    business: String,
    tags: String,
    state: String,
    opted_out: bool,
}

#[derive(Serialize)]
struct ContactsPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    q: &'a str,
    contacts: Vec<ContactRow>,
}

/// Contacts search.
#[derive(Deserialize)]
pub struct ContactsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    erased: Option<String>,
}

async fn visible_contacts(
    state: &AppState,
    signed: &Signed,
    q: &str,
    limit: usize,
) -> Result<Vec<Contact>, HttpError> {
    let query = q.to_string();
    let all = read(state, move |c| contacts::search(c, &query, limit)).await?;
    Ok(all
        .into_iter()
        .filter(|k| signed.user.can_see(&k.business_id))
        .collect())
}

/// `GET /contacts?q=`: search by number or name.
pub async fn contacts_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ContactsQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let list = visible_contacts(&state, &signed, &query.q, 500).await?;
    let all = state.config.get();
    let names: std::collections::HashMap<&str, &str> = all
        .businesses
        .iter()
        .map(|b| (b.id.as_str(), b.name.as_str()))
        .collect();
    let rows = list
        .into_iter()
        .map(|k| ContactRow {
            id: k.id,
            name: k.name.clone().unwrap_or_else(|| k.phone.clone()),
            business: names
                .get(k.business_id.as_str())
                .map_or(k.business_id.clone(), |n| (*n).to_string()),
            phone: k.phone,
            tags: k.tags,
            state: k.state,
            opted_out: k.opted_out_at.is_some(),
        })
        .collect();
    let flash = query.erased.as_ref().map(|_| "The contact was erased.");
    let ctx = ContactsPage {
        user: Some(&signed.user.name),
        csrf: &signed.csrf,
        nav: "contacts",
        flash,
        q: &query.q,
        contacts: rows,
    };
    Ok(html(&state, StatusCode::OK, "contacts.html", &ctx))
}

#[derive(Serialize)]
struct ContactDetail {
    id: i64,
    name: String,
    name_value: String,
    phone: String,
    tags: String,
    notes: String,
}

#[derive(Serialize)]
struct ConsentRow {
    when: String,
    change: String,
    source: String,
}

#[derive(Serialize)]
struct ContactPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    contact: ContactDetail,
    consent: Vec<ConsentRow>,
}

/// `GET /contacts/{id}`: details, consent history, erase.
pub async fn contact_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let id = path.into_inner();
    let Some(k) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    let history = read(&state, move |c| contacts::consent_history(c, id)).await?;
    let ctx = ContactPage {
        user: Some(&signed.user.name),
        csrf: &signed.csrf,
        nav: "contacts",
        flash: None,
        contact: ContactDetail {
            id,
            name: k.name.clone().unwrap_or_else(|| k.phone.clone()),
            name_value: k.name.clone().unwrap_or_default(),
            phone: k.phone.clone(),
            tags: k.tags.clone(),
            notes: k.notes.clone().unwrap_or_default(),
        },
        consent: history
            .into_iter()
            .map(|(change, source, at)| ConsentRow {
                when: format_utc(at),
                change: change.replace('_', " "),
                source,
            })
            .collect(),
    };
    Ok(html(&state, StatusCode::OK, "contact.html", &ctx))
}

/// The contact details form.
#[derive(Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /contacts/{id}`: save name, notes and tags.
pub async fn contact_save(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<ContactForm>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(csrf_refused(&state, Some(&signed)));
    }
    let id = path.into_inner();
    if visible_contact(&state, &signed, id).await?.is_none() {
        return Ok(not_found(&state, &signed));
    }
    let clean = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let (name, notes) = (clean(&form.name), clean(&form.notes));
    let tags = form
        .tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let now = state.clock.now();
    state
        .store
        .write_async(move |c| {
            contacts::set_details(c, id, name.as_deref(), notes.as_deref(), &tags, now)
        })
        .await?;
    Ok(redirect(&format!("/contacts/{id}")))
}

/// `POST /contacts/{id}/erase`: right to erasure, after typing the number to confirm.
pub async fn contact_erase(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<ContactForm>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(csrf_refused(&state, Some(&signed)));
    }
    let id = path.into_inner();
    let Some(k) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    if form.confirm.trim() != k.phone {
        return Ok(error_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some(&signed),
            "Not erased",
            "Type the contact's number exactly to confirm. Nothing was changed.",
        ));
    }
    state
        .store
        .write_async(move |c| contacts::erase(c, id))
        .await?;
    tracing::info!(contact = id, by = %signed.user.name, "contact erased");
    Ok(redirect("/contacts?erased=1"))
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be run as a formula by spreadsheets; a plain E.164 number is safe as it is.
    let number = s
        .strip_prefix('+')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let s = if s.starts_with(['=', '+', '-', '@']) && !number {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /contacts.csv`: every visible contact.
pub async fn contacts_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let list = visible_contacts(&state, &signed, "", 1_000_000).await?;
    let mut out = String::from("id,business,phone,name,tags,state,opted_out_at,booked_value\n");
    for k in list {
        let fields = [
            k.id.to_string(),
            k.business_id.clone(),
            k.phone.clone(),
            k.name.clone().unwrap_or_default(),
            k.tags.clone(),
            k.state.clone(),
            k.opted_out_at.map(format_utc).unwrap_or_default(),
            k.booked_value_cents
                .map(report::dollars)
                .unwrap_or_default(),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"contacts.csv\"",
        ))
        .body(out))
}

// -------------------------------------------------------------------------------------------------------------
// Live updates

/// Keep-alive comments keep proxies from closing an idle stream.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// `GET /events`: server-sent events telling open pages that one of the user's businesses changed.
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(HttpResponse::Unauthorized().finish());
    };
    let rx = state.live.subscribe();
    let user = signed.user;
    let stream = futures_util::stream::unfold((rx, user), |(mut rx, user)| async move {
        let chunk = loop {
            match actix_rt::time::timeout(KEEP_ALIVE, rx.recv()).await {
                Err(_) => break ": keep-alive\n\n".to_string(),
                Ok(Ok(business)) if user.can_see(&business) => {
                    break "event: update\ndata: {}\n\n".to_string()
                }
                Ok(Ok(_)) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    break "event: update\ndata: {}\n\n".to_string()
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
            }
        };
        Some((
            Ok::<_, actix_web::Error>(web::Bytes::from(chunk)),
            (rx, user),
        ))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

// -------------------------------------------------------------------------------------------------------------
// Settings

#[derive(Serialize)]
struct FieldView {
    key: &'static str,
    label: &'static str,
    value: String,
    long: bool,
}

#[derive(Serialize)]
struct DayView {
    key: &'static str,
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct BusinessSettings {
    index: usize,
    id: String,
    name: String,
    numbers: String,
    forward_to: String,
    timezone: String,
    provider: String,
    fields: Vec<FieldView>,
    hours: Vec<DayView>,
}

#[derive(Serialize)]
struct SettingsPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    editable: bool,
    errors: Vec<String>,
    businesses: Vec<BusinessSettings>,
    public_url: &'a str,
}

fn field_value(b: &BusinessConfig, key: &str) -> String {
    let dur = |d: crate::config::Dur| humantime::format_duration(d.0).to_string();
    match key {
        "name" => b.name.clone(),
        "script" => b.script.clone(),
        "after_hours_script" => b.after_hours_script.clone(),
        "returning_script" => b.returning_script.clone().unwrap_or_default(),
        "booking_link" => b.booking_link.clone().unwrap_or_default(),
        "missed_greeting" => b.missed_greeting.clone(),
        "text_delay" => dur(b.text_delay),
        "repeat_window" => dur(b.repeat_window),
        "quiet_hours" => b.quiet_hours.clone(),
        "quiet_hours_policy" => format!("{:?}", b.quiet_hours_policy).to_lowercase(),
        "max_deferral" => dur(b.max_deferral),
        "daily_cap" => b.daily_cap.to_string(),
        "send_rate" => b.send_rate.to_string(),
        "average_ticket" => b.average_ticket.to_string(),
        "sms_price" => b.sms_price.to_string(),
        _ => String::new(),
    }
}

fn settings_view(config: &crate::config::Config) -> Vec<BusinessSettings> {
    let labels = [
        ("name", "Business name"),
        ("script", "Script during opening hours"),
        ("after_hours_script", "Script outside opening hours"),
        (
            "returning_script",
            "Script for returning contacts (empty: the normal one)",
        ),
        ("booking_link", "Booking link"),
        ("missed_greeting", "What callers hear when nobody answers"),
        ("text_delay", "Text delay"),
        ("repeat_window", "One text-back per caller per"),
        ("quiet_hours", "Quiet hours (HH:MM-HH:MM, empty for none)"),
        (
            "quiet_hours_policy",
            "First text in quiet hours: send, defer or skip",
        ),
        ("max_deferral", "Drop deferred texts older than"),
        ("daily_cap", "Automatic texts per contact per day"),
        ("send_rate", "Texts per second per number"),
        ("average_ticket", "Average job value ($)"),
        ("sms_price", "Price per SMS segment ($)"),
    ];
    let day_labels = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    config
        .businesses
        .iter()
        .enumerate()
        .map(|(index, b)| BusinessSettings {
            index,
            id: b.id.clone(),
            name: b.name.clone(),
            numbers: b.numbers.join(", "),
            forward_to: if b.forward_to.is_empty() {
                "nobody".into()
            } else {
                b.forward_to.join(", ")
            },
            timezone: b.timezone.clone(),
            provider: config.provider_name(b).to_string(),
            fields: labels
                .iter()
                .map(|(key, label)| FieldView {
                    key,
                    label,
                    value: field_value(b, key),
                    long: key.ends_with("script") || *key == "missed_greeting",
                })
                .collect(),
            hours: b
                .hours
                .days()
                .iter()
                .zip(day_labels)
                .map(|((key, spans), label)| DayView {
                    key,
                    label,
                    value: spans.join(", "),
                })
                .collect(),
        })
        .collect()
}

fn owner_only(state: &AppState, signed: &Signed) -> Option<HttpResponse> {
    (signed.user.role != "owner").then(|| {
        error_page(
            state,
            StatusCode::FORBIDDEN,
            Some(signed),
            "Owners only",
            "Only an owner can see and change settings.",
        )
    })
}

fn settings_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    flash: Option<&str>,
    errors: Vec<String>,
) -> HttpResponse {
    let config = state.config.get();
    let ctx = SettingsPage {
        user: Some(&signed.user.name),
        csrf: &signed.csrf,
        nav: "settings",
        flash,
        editable: state.config_path.is_some(),
        errors,
        businesses: settings_view(&config),
        public_url: &state.public_url,
    };
    html(state, status, "settings.html", &ctx)
}

/// `?saved=1` after a save.
#[derive(Deserialize)]
pub struct SettingsQuery {
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    sent: Option<String>,
}

/// `GET /settings`: every business's settings, editable by owners.
pub async fn settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SettingsQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    let flash = if query.saved.is_some() {
        Some("Saved and applied.")
    } else if query.sent.is_some() {
        Some("Test text queued.")
    } else {
        None
    };
    Ok(settings_page(
        &state,
        &signed,
        StatusCode::OK,
        flash,
        vec![],
    ))
}

/// `POST /settings/{index}`: validate, write the file atomically keeping its comments, apply at once.
pub async fn settings_save(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<usize>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    let given = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !csrf_ok(&signed, given) {
        return Ok(csrf_refused(&state, Some(&signed)));
    }
    let index = path.into_inner();
    let file = state.config_path.clone();
    let changes = form.into_inner();
    let result = web::block(move || {
        let path = file.ok_or(crate::settings::SaveError::NoFile)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            crate::settings::SaveError::Io(format!("cannot read {}: {e}", path.display()))
        })?;
        let edited = crate::settings::apply(&text, index, &changes)?;
        crate::settings::save(Some(&path), &edited)
    })
    .await
    .map_err(|_| HttpError::BadRequest("the save did not finish".into()))?;
    match result {
        Ok(mut config) => {
            // The running server keeps the URL it bound to when none is configured.
            if config.server.public_url.is_none() {
                config.server.public_url = Some(state.public_url.clone());
            }
            state.config.set(config);
            state.scheduler.wake();
            tracing::info!(by = %signed.user.name, business = index, "settings saved");
            Ok(redirect("/settings?saved=1"))
        }
        Err(crate::settings::SaveError::Invalid(errors)) => {
            let list = errors.0.iter().map(ToString::to_string).collect();
            Ok(settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not saved: nothing was changed."),
                list,
            ))
        }
        Err(e) => Ok(settings_page(
            &state,
            &signed,
            StatusCode::BAD_REQUEST,
            Some("Not saved: nothing was changed."),
            vec![e.to_string()],
        )),
    }
}

/// The preview request.
#[derive(Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    business: usize,
    #[serde(default)]
    script: String,
}

/// `POST /settings/preview`: a script rendered with the business's fields, with its segment count.
pub async fn settings_preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PreviewForm>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(HttpResponse::Unauthorized().finish());
    };
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(HttpResponse::Forbidden()
            .json(serde_json::json!({ "error": "the page expired; reload it" })));
    }
    let config = state.config.get();
    let Some(biz) = config
        .businesses
        .get(form.business)
        .filter(|b| signed.user.can_see(&b.id))
    else {
        return Ok(
            HttpResponse::NotFound().json(serde_json::json!({ "error": "no such business" }))
        );
    };
    let body = match crate::script::render(&form.script, &biz.script_fields()) {
        Ok(text) => crate::script::with_opt_out(&text),
        Err(e) => return Ok(HttpResponse::Ok().json(serde_json::json!({ "error": e.to_string() }))),
    };
    let s = crate::script::segments(&body);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "text": body,
        "segments": s.count,
        "encoding": if s.encoding == crate::script::Encoding::Gsm7 { "GSM-7" } else { "UCS-2" },
    })))
}

/// The test text form.
#[derive(Deserialize)]
pub struct TestTextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
}

/// `POST /settings/{index}/test-text`: texts the missed-call script to a number of the owner's choosing.
pub async fn settings_test_text(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<usize>,
    form: web::Form<TestTextForm>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(csrf_refused(&state, Some(&signed)));
    }
    let config = state.config.get();
    let Some(biz) = config.businesses.get(path.into_inner()).cloned() else {
        return Ok(not_found(&state, &signed));
    };
    let to = match crate::model::PhoneNumber::parse(&form.to) {
        Ok(n) => n,
        Err(e) => {
            return Ok(settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not sent."),
                vec![e.to_string()],
            ))
        }
    };
    let body = match crate::script::render(&biz.script, &biz.script_fields()) {
        Ok(b) => crate::script::with_opt_out(&format!("[test] {b}")),
        Err(e) => {
            return Ok(settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not sent."),
                vec![e.to_string()],
            ))
        }
    };
    let (provider, public, now) = (
        config.provider_name(&biz).to_string(),
        state.public_url.clone(),
        state.clock.now(),
    );
    state
        .store
        .write_async(move |c| {
            let env = Env {
                biz: &biz,
                provider: &provider,
                public_url: &public,
            };
            events::queue_message(
                c,
                &env,
                None,
                to.as_str(),
                &body,
                crate::model::Purpose::Alert,
                now,
                now,
            )
        })
        .await?;
    state.scheduler.wake();
    Ok(redirect("/settings?sent=1"))
}

// -------------------------------------------------------------------------------------------------------------
// Simulator

#[derive(Serialize)]
struct SimBusiness {
    id: String,
    name: String,
    number: String,
}

#[derive(Serialize)]
struct SimMessage {
    when: String,
    kind: &'static str,
    body: String,
    detail: Option<String>,
}

#[derive(Serialize)]
struct SimulatorPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    nav: &'a str,
    flash: Option<&'a str>,
    simulator: bool,
    businesses: Vec<SimBusiness>,
    business: String,
    number: String,
    from: String,
    thread: Vec<SimMessage>,
}

/// Which business and caller the simulator plays.
#[derive(Deserialize)]
pub struct SimulatorQuery {
    #[serde(default)]
    business: String,
    #[serde(default)]
    from: String,
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
                .is_some_and(|p| p.kind == crate::config::ProviderKind::Simulator)
        })
        .cloned()
        .collect()
}

const SIM_CALLER: &str = "+14805550111";

/// `GET /simulator`: a phone on screen, for businesses on the simulator provider.
pub async fn simulator(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SimulatorQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let config = state.config.get();
    let list = simulated(&config, &signed.user);
    let chosen = list
        .iter()
        .find(|b| b.id == query.business)
        .or_else(|| list.first())
        .cloned();
    let from = crate::model::PhoneNumber::parse(&query.from)
        .map_or_else(|_| SIM_CALLER.to_string(), |n| n.to_string());
    let thread = match &chosen {
        Some(b) => {
            let (id, phone) = (b.id.clone(), from.clone());
            read(&state, move |c| match contacts::find(c, &id, &phone)? {
                Some(k) => messages::for_contact(c, k.id),
                None => Ok(vec![]),
            })
            .await?
        }
        None => vec![],
    };
    let ctx = SimulatorPage {
        user: Some(&signed.user.name),
        csrf: &signed.csrf,
        nav: "simulator",
        flash: None,
        simulator: true,
        businesses: list
            .iter()
            .map(|b| SimBusiness {
                id: b.id.clone(),
                name: b.name.clone(),
                number: b.sender().to_string(),
            })
            .collect(),
        business: chosen.as_ref().map(|b| b.id.clone()).unwrap_or_default(),
        number: chosen
            .as_ref()
            .map(|b| b.sender().to_string())
            .unwrap_or_default(),
        from,
        thread: thread
            .into_iter()
            .filter(|m| m.status != crate::model::status::CANCELLED)
            .map(|m| SimMessage {
                when: format_utc(m.created_at),
                kind: if m.direction == "in" { "out" } else { "in" },
                body: m.body,
                detail: (m.direction == "out").then_some(m.status),
            })
            .collect(),
    };
    Ok(html(&state, StatusCode::OK, "simulator.html", &ctx))
}

/// The simulator's forms.
#[derive(Deserialize)]
pub struct SimulatorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    business: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    body: String,
}

fn sim_sid(prefix: &str) -> String {
    format!("{prefix}{}", &auth::token_hash(&auth::new_token())[..32])
}

/// `POST /simulator/{call|text}`: what the simulated phone does, applied as the provider's webhooks would be.
pub async fn simulator_act(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<SimulatorForm>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(csrf_refused(&state, Some(&signed)));
    }
    let config = state.config.get();
    let Some(biz) = simulated(&config, &signed.user)
        .into_iter()
        .find(|b| b.id == form.business)
    else {
        return Ok(not_found(&state, &signed));
    };
    let from = match crate::model::PhoneNumber::parse(&form.from) {
        Ok(n) => n.to_string(),
        Err(e) => {
            return Ok(error_page(
                &state,
                StatusCode::BAD_REQUEST,
                Some(&signed),
                "Not a number",
                &e.to_string(),
            ))
        }
    };
    let action = path.into_inner();
    let (provider, public, now) = (
        config.provider_name(&biz).to_string(),
        state.public_url.clone(),
        state.clock.now(),
    );
    let (to, status, body) = (
        biz.sender().to_string(),
        form.status.clone(),
        form.body.clone(),
    );
    let (b, f) = (biz.id.clone(), from.clone());
    let applied = state
        .store
        .write_async(move |c| {
            let env = Env {
                biz: &biz,
                provider: &provider,
                public_url: &public,
            };
            let report = |kind| crate::model::CallReport {
                call_sid: String::new(),
                from: from.clone(),
                to: to.clone(),
                direction: Some("inbound".into()),
                stir_verstat: None,
                answered_by: None,
                kind,
            };
            match action.as_str() {
                "call" => {
                    let sid = sim_sid("CA");
                    let mut ring = report(crate::model::CallReportKind::Incoming);
                    ring.call_sid.clone_from(&sid);
                    let (_, first) = events::incoming_call(c, &env, &ring, now)?;
                    let (dial_status, duration) = match status.as_str() {
                        "completed" => ("completed", Some(60)),
                        "busy" => ("busy", None),
                        _ => ("no-answer", None),
                    };
                    let mut ended = report(crate::model::CallReportKind::DialEnded {
                        dial_call_sid: Some(sim_sid("CA")),
                        dial_status: dial_status.into(),
                        duration_secs: duration,
                    });
                    ended.call_sid = sid;
                    let second = if env.biz.forward_to.is_empty() {
                        first
                    } else {
                        events::call_report(c, &env, &ended, now)?
                    };
                    Ok(second.due.or(first.due))
                }
                "text" if !body.trim().is_empty() => {
                    let text = crate::model::InboundText {
                        message_sid: sim_sid("SM"),
                        from: from.clone(),
                        to: to.clone(),
                        body: body.clone(),
                        opt_out_type: None,
                    };
                    events::inbound_text(c, &env, &text, now).map(|(_, a)| a.due)
                }
                _ => Err(store::Error::NotFound),
            }
        })
        .await;
    match applied {
        Ok(due) => {
            if due.is_some() {
                state.scheduler.wake();
            }
            let _ = state.live.send(b.clone());
            Ok(redirect(&format!(
                "/simulator?business={b}&from={}",
                f.replace('+', "%2B")
            )))
        }
        Err(store::Error::NotFound) => Ok(not_found(&state, &signed)),
        Err(e) => Err(e.into()),
    }
}
