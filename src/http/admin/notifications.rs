//! The installable app and its notifications: the web app manifest, the icons and the service worker a
//! phone needs to put the inbox on its home screen; each user's Notifications page, where a browser
//! subscribes to Web Push; and the owners' switch that allows a user notifications.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::store::push;

/// The manifest, the service worker and the icons; public (browsers fetch the manifest without cookies).
pub async fn pwa_file(req: HttpRequest) -> HttpResponse {
    let name = req.path().trim_start_matches('/');
    let (data, mime, cache): (Vec<u8>, &str, &str) = match name {
        "manifest.webmanifest" => match Assets::get(name) {
            Some(f) => (f.data.into_owned(), "application/manifest+json", "no-cache"),
            None => return HttpResponse::NotFound().finish(),
        },
        // The worker must come from the root to control every page; browsers check it for updates.
        "sw.js" => match Assets::get(name) {
            Some(f) => (
                f.data.into_owned(),
                "text/javascript; charset=utf-8",
                "no-cache",
            ),
            None => return HttpResponse::NotFound().finish(),
        },
        icon => match crate::icons::get(icon) {
            Some(png) => (png.to_vec(), "image/png", "public, max-age=86400"),
            None => return HttpResponse::NotFound().finish(),
        },
    };
    HttpResponse::Ok()
        .content_type(mime)
        .insert_header((header::CACHE_CONTROL, cache))
        .body(data)
}

/// The appliance's VAPID public key, made the first time anyone asks.
async fn vapid_public_key(state: &AppState) -> Result<String, HttpError> {
    let fresh = crate::push::Vapid::generate().to_stored();
    let stored = state
        .store
        .write_async(move |c| push::vapid_key(c, &fresh))
        .await?;
    crate::push::Vapid::from_stored(&stored)
        .map(|v| v.public_key())
        .ok_or_else(|| HttpError::BadRequest("the stored VAPID key is damaged".into()))
}

#[derive(Serialize)]
struct NotificationsPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    /// `[push] contact` is set.
    configured: bool,
    /// An owner allowed this user notifications.
    allowed: bool,
    /// Browsers this user subscribed.
    browsers: usize,
    /// The key browsers subscribe with (only when the user may subscribe).
    key: Option<String>,
}

/// `?sent=1` after a test.
#[derive(Deserialize)]
pub struct NotificationsQuery {
    #[serde(default)]
    sent: Option<String>,
}

/// `GET /notifications`: turn notifications on or off on this device, and send oneself a test.
pub async fn notifications(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<NotificationsQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let config = state.config.get();
    let configured = config.push.contact.is_some();
    let user = signed.user.id;
    let (allowed, browsers) = read(&state, move |c| {
        Ok((push::allowed(c, user)?, push::of_user(c, user)?.len()))
    })
    .await?;
    let key = if configured && allowed {
        Some(vapid_public_key(&state).await?)
    } else {
        None
    };
    let flash = query
        .sent
        .as_ref()
        .map(|_| "Test notification sent to your devices.");
    let ctx = NotificationsPage {
        chrome: Chrome::signed(&signed, "notifications", flash, &config),
        configured,
        allowed,
        browsers,
        key,
    };
    Ok(html(&state, StatusCode::OK, "notifications.html", &ctx))
}

/// A browser's subscription as `PushSubscription.toJSON()` gives it.
#[derive(Deserialize)]
pub struct SubscriptionJson {
    endpoint: String,
    #[serde(default)]
    keys: KeysJson,
}

/// Its keys.
#[derive(Deserialize, Default)]
pub struct KeysJson {
    #[serde(default)]
    p256dh: String,
    #[serde(default)]
    auth: String,
}

/// `POST /push/subscribe` and `/push/unsubscribe`: the page's CSRF token and the subscription.
#[derive(Deserialize)]
pub struct SubscribeRequest {
    #[serde(default)]
    csrf: String,
    subscription: SubscriptionJson,
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message }))
}

/// Who may subscribe: signed in, the page's own request, push configured, allowed by an owner.
async fn subscriber(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
) -> Result<Result<Signed, HttpResponse>, HttpError> {
    let Some(signed) = signed_in(state, req).await? else {
        return Ok(Err(json_error(StatusCode::UNAUTHORIZED, "sign in first")));
    };
    if !csrf_ok(&signed, csrf) {
        return Ok(Err(json_error(
            StatusCode::FORBIDDEN,
            "the page expired; reload it",
        )));
    }
    Ok(Ok(signed))
}

/// `POST /push/subscribe` (JSON): stores this browser's subscription for the signed-in user.
pub async fn push_subscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SubscribeRequest>,
) -> Result<HttpResponse, HttpError> {
    let signed = match subscriber(&state, &req, &body.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let config = state.config.get();
    if config.push.contact.is_none() {
        return Ok(json_error(
            StatusCode::CONFLICT,
            "notifications are off on this appliance: the operator must set [push] contact in the config file",
        ));
    }
    let user = signed.user.id;
    if !read(&state, move |c| push::allowed(c, user)).await? {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "an owner has not turned on notifications for you (Settings, Alerts)",
        ));
    }
    let sub = body.into_inner().subscription;
    if let Err(why) = crate::push::check_endpoint(&sub.endpoint, &config.push.services) {
        return Ok(json_error(StatusCode::BAD_REQUEST, &why));
    }
    if let Err(why) = crate::push::Keys::parse(&sub.keys.p256dh, &sub.keys.auth) {
        return Ok(json_error(StatusCode::BAD_REQUEST, &why));
    }
    let now = state.clock.now();
    let id = state
        .store
        .write_async(move |c| {
            push::subscribe(
                c,
                user,
                &sub.endpoint,
                sub.keys.p256dh.trim(),
                sub.keys.auth.trim(),
                now,
            )
        })
        .await?;
    tracing::info!(user = %signed.user.name, subscription = id, "push subscription stored");
    Ok(HttpResponse::Created().json(serde_json::json!({ "ok": true })))
}

/// `POST /push/unsubscribe` (JSON): forgets this browser.
pub async fn push_unsubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SubscribeRequest>,
) -> Result<HttpResponse, HttpError> {
    let signed = match subscriber(&state, &req, &body.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let (user, endpoint) = (signed.user.id, body.into_inner().subscription.endpoint);
    state
        .store
        .write_async(move |c| push::unsubscribe(c, user, &endpoint))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ok": true })))
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    on: String,
}

/// `POST /push/test`: a notification to each of the user's own browsers.
pub async fn push_test(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match signed_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let (user, now) = (signed.user.id, state.clock.now());
    let note = crate::push::Notification {
        title: "textback test".into(),
        body: format!("Notifications work on this device, {}.", signed.user.name),
        url: "/notifications".into(),
        tag: "test".into(),
        urgent: false,
    };
    state
        .store
        .write_async(move |c| {
            for sub in push::of_user(c, user)? {
                crate::events::queue_push(c, sub.id, &note, now)?;
            }
            Ok::<_, store::Error>(())
        })
        .await?;
    state.scheduler.wake();
    Ok(redirect("/notifications?sent=1"))
}

/// `POST /settings/push/{user}`: an owner allows (`on=1`) or stops a user's notifications.
pub async fn push_allow(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match owner_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let (user, on) = (path.into_inner(), form.on == "1");
    let found = state
        .store
        .write_async(move |c| push::set_allowed(c, user, on))
        .await?;
    if !found {
        return Ok(error_page(
            &state,
            StatusCode::NOT_FOUND,
            Some(&signed),
            "Not found",
            "There is no such user.",
        ));
    }
    tracing::info!(by = %signed.user.name, user, on, "push notifications changed for a user");
    Ok(redirect("/settings#alerts"))
}

/// One user's line in Settings, Alerts.
#[derive(Serialize)]
pub(super) struct PushUser {
    id: i64,
    name: String,
    role: String,
    allowed: bool,
    browsers: i64,
}

/// Every user and whether they get notifications, for Settings.
pub(super) async fn push_users(state: &AppState) -> Result<Vec<PushUser>, HttpError> {
    Ok(read(state, push::users)
        .await?
        .into_iter()
        .map(|u| PushUser {
            id: u.id,
            name: u.name,
            role: u.role,
            allowed: u.allowed,
            browsers: u.browsers,
        })
        .collect())
}
