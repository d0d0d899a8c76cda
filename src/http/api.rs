//! The read-only JSON API, `/api/v1/…`, for people who connect other tools. Bearer tokens come from
//! `textback token create`; a token sees what its user sees.

use super::{read, AppState, HttpError};
use crate::auth;
use crate::store::contacts::InboxFilter;
use crate::store::users::User;
use crate::store::{self, calls, contacts, messages, users};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

const TOUCH_EVERY_MS: i64 = 60_000;

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer realm=\"textback\""))
        .json(json!({ "error": "a valid bearer token is required (create one with `textback token create`; revoked or expired tokens do not work)" }))
}

async fn caller(state: &AppState, req: &HttpRequest) -> Result<Option<User>, HttpError> {
    let Some(token) = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let (hash, now) = (auth::token_hash(token), state.clock.now());
    let found = read(state, move |c| match users::api_token(c, &hash, now)? {
        Some(t) => Ok(users::get(c, t.user_id)?.map(|u| (t, u))),
        None => Ok(None),
    })
    .await?;
    let Some((token, user)) = found else {
        return Ok(None);
    };
    // Recorded at most once a minute, so reading the API does not write on every request.
    if token
        .last_used_at
        .is_none_or(|at| now - at >= TOUCH_EVERY_MS)
    {
        let id = token.id;
        state
            .store
            .write_async(move |c| users::touch_api_token(c, id, now))
            .await?;
    }
    Ok(Some(user))
}

/// Filters common to the list endpoints.
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    business: Option<String>,
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    filter: Option<String>,
    /// `next` of the previous page.
    #[serde(default)]
    before: Option<String>,
}

/// Rows per page of a list endpoint; `next` in the answer fetches the following page.
const PAGE: usize = 200;

impl ListQuery {
    /// The page to start after; `Err` says why `before` is not a cursor.
    fn cursor(&self, len: usize) -> Result<Option<store::Cursor>, String> {
        match self.before.as_deref().filter(|b| !b.is_empty()) {
            None => Ok(None),
            Some(b) => store::Cursor::parse(b, len).map(Some).ok_or_else(|| {
                format!("before={b:?} is not a cursor this list gave out (use `next` from the previous page)")
            }),
        }
    }
}

#[derive(Serialize)]
struct CallJson {
    id: i64,
    business: String,
    call_sid: String,
    from: String,
    state: String,
    miss_reason: Option<String>,
    duration_secs: Option<i64>,
    recording_url: Option<String>,
    textback: Option<String>,
    textback_reason: Option<String>,
    contact_id: Option<i64>,
    started_at: i64,
}

fn call_json(c: calls::Call) -> CallJson {
    CallJson {
        id: c.id,
        business: c.business_id,
        call_sid: c.call_sid,
        from: c.from_raw,
        state: c.state,
        miss_reason: c.miss_reason,
        duration_secs: c.duration_secs,
        recording_url: c.recording_url,
        textback: c.textback,
        textback_reason: c.textback_reason,
        contact_id: c.contact_id,
        started_at: c.started_at,
    }
}

#[derive(Serialize)]
struct MessageJson {
    id: i64,
    direction: String,
    purpose: String,
    from: String,
    to: String,
    body: String,
    status: String,
    error_code: Option<String>,
    provider_sid: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

fn message_json(m: messages::Message) -> MessageJson {
    MessageJson {
        id: m.id,
        direction: m.direction,
        purpose: m.purpose,
        from: m.from_number,
        to: m.to_number,
        body: m.body,
        status: m.status,
        error_code: m.error_code,
        provider_sid: m.provider_sid,
        created_at: m.created_at,
        sent_at: m.sent_at,
    }
}

fn unknown_business(id: &str) -> HttpResponse {
    HttpResponse::NotFound()
        .json(json!({ "error": format!("no business {id:?} that this token may see") }))
}

/// The businesses a request covers: `wanted`, or every one the user may see. A business the user may not
/// see is as unknown as one that does not exist (404), never an empty answer that reads as "no calls".
fn scope(
    user: &User,
    config: &crate::config::Config,
    wanted: Option<&str>,
) -> Result<Vec<String>, String> {
    let ids: Vec<String> = config
        .businesses
        .iter()
        .filter(|b| user.can_see(&b.id) && wanted.is_none_or(|w| w == b.id))
        .map(|b| b.id.clone())
        .collect();
    match wanted {
        Some(w) if ids.is_empty() => Err(w.to_string()),
        _ => Ok(ids),
    }
}

/// `GET /api/v1/calls?days=30&business=ID`
pub async fn calls(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(user) = caller(&state, &req).await? else {
        return Ok(unauthorized());
    };
    let ids = match scope(&user, &state.config.get(), q.business.as_deref()) {
        Ok(ids) => ids,
        Err(unknown) => return Ok(unknown_business(&unknown)),
    };
    let since = state.clock.now() - i64::from(q.days.unwrap_or(30).clamp(1, 366)) * 24 * 3_600_000;
    let before = match q.cursor(2) {
        Ok(b) => b,
        Err(why) => return Ok(HttpResponse::BadRequest().json(json!({ "error": why }))),
    };
    let page = read(&state, move |c| {
        calls::since(c, &ids, since, before.as_ref(), PAGE)
    })
    .await?;
    let next = page.next.map(|n| n.to_string());
    let data: Vec<CallJson> = page.rows.into_iter().map(call_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "calls": data, "next": next })))
}

/// `GET /api/v1/conversations?filter=needs-reply&business=ID`
pub async fn conversations(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(user) = caller(&state, &req).await? else {
        return Ok(unauthorized());
    };
    let ids = match scope(&user, &state.config.get(), q.business.as_deref()) {
        Ok(ids) => ids,
        Err(unknown) => return Ok(unknown_business(&unknown)),
    };
    let filter = InboxFilter::parse(q.filter.as_deref().unwrap_or_default());
    let before = match q.cursor(4) {
        Ok(b) => b,
        Err(why) => return Ok(HttpResponse::BadRequest().json(json!({ "error": why }))),
    };
    let page = read(&state, move |c| {
        contacts::inbox(c, &ids, filter, before.as_ref(), PAGE)
    })
    .await?;
    let next = page.next.map(|n| n.to_string());
    let data: Vec<_> = page
        .rows
        .into_iter()
        .map(|r| {
            json!({
                "contact_id": r.id, "business": r.business_id, "phone": r.phone, "name": r.name,
                "state": r.state, "urgent": r.urgent, "needs_reply": r.needs_reply, "unread": r.unread,
                "last_message": r.last_body, "last_activity_at": r.last_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "conversations": data, "next": next })))
}

/// `GET /api/v1/conversations/{id}/messages`
pub async fn messages(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let Some(user) = caller(&state, &req).await? else {
        return Ok(unauthorized());
    };
    let id = path.into_inner();
    let found = read(&state, move |c| match contacts::get(c, id) {
        Ok(k) => Ok(Some((k.business_id.clone(), messages::for_contact(c, id)?))),
        Err(store::Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    match found {
        Some((business, list)) if user.can_see(&business) => {
            let data: Vec<MessageJson> = list.into_iter().map(message_json).collect();
            Ok(HttpResponse::Ok().json(json!({ "contact_id": id, "messages": data })))
        }
        _ => Ok(HttpResponse::NotFound().json(json!({ "error": "no such conversation" }))),
    }
}

/// `GET /api/v1/contacts?business=ID`
pub async fn contacts(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(user) = caller(&state, &req).await? else {
        return Ok(unauthorized());
    };
    let ids = match scope(&user, &state.config.get(), q.business.as_deref()) {
        Ok(ids) => ids,
        Err(unknown) => return Ok(unknown_business(&unknown)),
    };
    let before = match q.cursor(2) {
        Ok(b) => b,
        Err(why) => return Ok(HttpResponse::BadRequest().json(json!({ "error": why }))),
    };
    let page = read(&state, move |c| {
        contacts::search(c, &ids, "", before.as_ref(), PAGE)
    })
    .await?;
    let next = page.next.map(|n| n.to_string());
    let data: Vec<_> = page
        .rows
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id, "business": k.business_id, "phone": k.phone, "name": k.name, "state": k.state,
                "tags": k.tags, "opted_out_at": k.opted_out_at, "blocked_at": k.blocked_at,
                "booked_at": k.booked_at, "booked_value_cents": k.booked_value_cents, "created_at": k.created_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "contacts": data, "next": next })))
}

/// `GET /api/v1/stats?days=30&business=ID`: the dashboard's figures.
pub async fn stats(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(user) = caller(&state, &req).await? else {
        return Ok(unauthorized());
    };
    let ids = match scope(&user, &state.config.get(), q.business.as_deref()) {
        Ok(ids) => ids,
        Err(unknown) => return Ok(unknown_business(&unknown)),
    };
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let d = super::figures(&state, ids, days, crate::zone::UTC).await?;
    Ok(HttpResponse::Ok().json(json!({
        "days": days,
        "funnel": d.funnel,
        "recovered_cents": d.money.recovered_cents,
        "sms_segments": d.money.segments,
        "sms_spend_cents": (d.money.spend_centicents + 50) / 100,
    })))
}
