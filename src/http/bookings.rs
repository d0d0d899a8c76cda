//! Booking tools' webhooks: `POST /hooks/booking/{calcom|calendly|generic}/{business}`. The signature is
//! checked on the raw body with the business's key for that tool before anything is read; the booking is
//! then applied in one transaction (`events::booking`). Answers are JSON: `{"result": "booked"}` and the like.

use super::{AppState, HttpError};
use crate::bookings::{self, Parsed, Refusal, Source};
use crate::config::BookingsConfig;
use actix_web::{web, HttpRequest, HttpResponse};

fn refusal(r: Refusal) -> HttpError {
    match r {
        Refusal::Unsigned(why) | Refusal::BadSignature(why) | Refusal::Stale(why) => {
            HttpError::Unauthorized(why)
        }
        Refusal::Malformed(why) => HttpError::BadRequest(why),
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Checks the request with the key configured for the tool, then reads it.
fn check(
    source: Source,
    keys: &BookingsConfig,
    req: &HttpRequest,
    body: &[u8],
    now_secs: i64,
) -> Result<Parsed, HttpError> {
    let tolerance = i64::try_from(keys.tolerance.secs()).unwrap_or(i64::MAX);
    let missing = |key: &str| {
        HttpError::NotFound(format!(
            "{} bookings are not set up for this business: set business.bookings.{key}",
            source.label()
        ))
    };
    match source {
        Source::CalCom => {
            let key = keys
                .calcom_secret
                .as_ref()
                .ok_or_else(|| missing("calcom_secret"))?;
            bookings::verify_calcom(
                key.expose().as_bytes(),
                body,
                header(req, "X-Cal-Signature-256"),
            )
            .map_err(refusal)?;
            bookings::calcom(body, keys.calcom_phone_field.as_deref()).map_err(refusal)
        }
        Source::Calendly => {
            let key = keys
                .calendly_signing_key
                .as_ref()
                .ok_or_else(|| missing("calendly_signing_key"))?;
            bookings::verify_calendly(
                key.expose().as_bytes(),
                body,
                header(req, "Calendly-Webhook-Signature"),
                now_secs,
                tolerance,
            )
            .map_err(refusal)?;
            bookings::calendly(body, keys.calendly_phone_question.as_deref()).map_err(refusal)
        }
        Source::Generic => {
            let key = keys.secret.as_ref().ok_or_else(|| missing("secret"))?;
            bookings::verify_generic(
                key.expose().as_bytes(),
                body,
                header(req, bookings::SIGNATURE_HEADER),
                now_secs,
                tolerance,
            )
            .map_err(refusal)?;
            bookings::generic(body).map_err(refusal)
        }
    }
}

/// `POST /hooks/booking/{tool}/{business}`
pub async fn hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let (tool, business) = path.into_inner();
    let source = match tool.as_str() {
        "calcom" => Source::CalCom,
        "calendly" => Source::Calendly,
        "generic" => Source::Generic,
        other => {
            return Err(HttpError::NotFound(format!(
                "no booking tool named {other:?} (calcom, calendly or generic)"
            )))
        }
    };
    let config = state.config.get();
    let biz = config
        .business(&business)
        .ok_or_else(|| HttpError::NotFound(format!("no business {business:?} here")))?
        .clone();
    let now = state.clock.now();
    let booking = match check(source, &biz.bookings, &req, &body, now / 1000)? {
        Parsed::Booking(b) => b,
        Parsed::Ignored(why) => {
            tracing::info!(business = %biz.id, tool = %tool, %why, "booking webhook ignored");
            return Ok(
                HttpResponse::Ok().json(serde_json::json!({ "result": "ignored", "why": why }))
            );
        }
    };
    let id = biz.id.clone();
    let result = state
        .store
        .write_async(move |c| crate::events::booking(c, &biz, &booking, now))
        .await?;
    tracing::info!(business = %id, tool = %tool, result = result.as_str(), "booking webhook");
    if result != crate::events::BookingResult::Duplicate {
        state.scheduler.wake();
        let _ = state.live.send(id);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "result": result.as_str() })))
}
