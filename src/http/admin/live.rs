//! Live updates: server-sent events telling open pages that something changed.

#[allow(clippy::wildcard_imports)]
use super::*;

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
