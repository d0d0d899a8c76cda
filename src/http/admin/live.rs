//! Live updates: server-sent events telling open pages that something changed.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Keep-alive comments keep proxies from closing an idle stream.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether the session behind a stream is still signed in (not logged out, expired, or its user removed).
async fn still_signed_in(state: &AppState, hash: String) -> bool {
    let now = state.clock.now();
    let found = read(state, move |c| {
        Ok(match users::session(c, &hash)? {
            Some(s) if users::get(c, s.user_id)?.is_some() => Some(s),
            _ => None,
        })
    })
    .await;
    matches!(found, Ok(Some(s)) if auth::session_valid(s.created_at, s.last_seen_at, now))
}

/// `GET /events`: server-sent events telling open pages that one of the user's businesses changed. Before
/// every message, keep-alives included, the session is checked again: a stream ends with its session.
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(HttpResponse::Unauthorized().finish());
    };
    let Some(hash) = req
        .cookie(SESSION_COOKIE)
        .map(|c| auth::token_hash(c.value()))
    else {
        return Ok(HttpResponse::Unauthorized().finish());
    };
    let rx = state.live.subscribe();
    let user = signed.user;
    let stream = futures_util::stream::unfold(
        (rx, user, state, hash),
        |(mut rx, user, state, hash)| async move {
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
            if !still_signed_in(&state, hash.clone()).await {
                return None;
            }
            Some((
                Ok::<_, actix_web::Error>(web::Bytes::from(chunk)),
                (rx, user, state, hash),
            ))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
