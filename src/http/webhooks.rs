//! Twilio-format webhooks: check the signature over the configured public URL and the raw path and query,
//! parse into a domain report, apply it in one transaction, answer TwiML. Nothing is written unless the
//! signature is valid, and nothing is acknowledged until it is committed.

use super::{AppState, HttpError};
use crate::clock::Millis;
use crate::config::BusinessConfig;
use crate::events::{self, Answer, Applied, Env};
use crate::providers::twilio::{self, CallHook, DialOptions, ParseError};
use crate::providers::SignedRequest;
use crate::store::{self, Conn};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};

/// A request whose signature checked out, with the business it is for.
struct Verified {
    params: Vec<(String, String)>,
    business: BusinessConfig,
    provider: String,
    /// `I-Twilio-Idempotency-Token`, scoped to the route.
    token: Option<String>,
}

/// Which parameter names the business number.
#[derive(Clone, Copy)]
enum Addressed {
    /// Calls and inbound texts: the number called or texted.
    To,
    /// Delivery receipts: the number the text was sent from.
    From,
    /// Call status: `To` for inbound calls, `From` for the business's own outbound calls.
    ToOrFrom,
    /// Call screening legs: the `business` query parameter we put in the URL.
    Query,
}

fn verify(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    addressed: Addressed,
) -> Result<Verified, HttpError> {
    let config = state.config.get();
    let form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(HttpError::UnsupportedMediaType);
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    let url = format!("{}{path_and_query}", state.public_url);
    let signature = req
        .headers()
        .get(twilio::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if signature.is_none() {
        return Err(HttpError::Forbidden("missing X-Twilio-Signature"));
    }
    let number = match addressed {
        Addressed::To | Addressed::ToOrFrom => twilio::addressed_to(&params),
        Addressed::From => twilio::receipt_sender(&params),
        Addressed::Query => None,
    };
    let mut business = number.and_then(|n| config.business_for_number(n));
    if business.is_none() && matches!(addressed, Addressed::ToOrFrom) {
        let from = twilio::receipt_sender(&params);
        business = from
            .and_then(|n| config.business_for_number(n))
            .or_else(|| from.and_then(|n| config.business_for_staff_number(n)));
    }
    if matches!(addressed, Addressed::Query) {
        business = query(req, "business").and_then(|id| config.business(&id));
    }
    let signed = SignedRequest {
        url: &url,
        params: &params,
        body,
        signature,
    };
    // The business's own account signs its webhooks; for an unknown number any account may have.
    let provider = match business {
        Some(b) => {
            let name = config.provider_name(b);
            state
                .providers
                .get(name)
                .filter(|p| p.verify(&signed))
                .map(|_| name.to_string())
        }
        None => state
            .providers
            .all()
            .into_iter()
            .find(|(_, p)| p.verify(&signed))
            .map(|(name, _)| name),
    };
    let Some(provider) = provider else {
        tracing::warn!(path = req.path(), "webhook refused: invalid signature");
        return Err(HttpError::Forbidden("invalid X-Twilio-Signature"));
    };
    let Some(business) = business else {
        return Err(HttpError::NotFound(format!(
            "the number {} is not configured for any business",
            number.unwrap_or("(none)")
        )));
    };
    let token = req
        .headers()
        .get(twilio::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .map(|t| format!("{}:{t}", req.path()));
    Ok(Verified {
        params,
        business: business.clone(),
        provider,
        token,
    })
}

fn query(req: &HttpRequest, key: &str) -> Option<String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn bad_request(e: ParseError) -> HttpError {
    HttpError::BadRequest(e.0)
}

fn twiml(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(body)
}

fn after(state: &AppState, applied: Applied) {
    if applied.due.is_some() {
        state.scheduler.wake();
    }
}

fn missed_twiml(state: &AppState, biz: &BusinessConfig) -> String {
    let record = biz
        .voicemail
        .then(|| format!("{}/hooks/twilio/recording", state.public_url));
    twilio::twiml_missed(&biz.missed_greeting, record.as_deref())
}

/// `POST /hooks/twilio/voice`: a call is ringing. Ring staff, with our dial action as the callback.
pub async fn voice(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::To)?;
    let report = twilio::parse_call(&v.params, CallHook::Voice).map_err(bad_request)?;
    let now = state.clock.now();
    let call_sid = report.call_sid.clone();
    let (biz, provider, public) = (
        v.business.clone(),
        v.provider.clone(),
        state.public_url.clone(),
    );
    let (answer, applied) = state
        .store
        .write_async(move |c| {
            let env = Env {
                biz: &biz,
                provider: &provider,
                public_url: &public,
            };
            events::incoming_call(c, &env, &report, now)
        })
        .await?;
    after(&state, applied);
    let _ = state.live.send(v.business.id.clone());
    let biz = &v.business;
    let screen = biz.call_screening.then(|| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("business", &biz.id)
            .append_pair("parent", &call_sid)
            .finish();
        format!("{}/hooks/twilio/screen?{q}", state.public_url)
    });
    Ok(twiml(match answer {
        Answer::Dial => twilio::twiml_dial(
            &biz.forward_to,
            biz.ring_timeout.secs(),
            &format!("{}/hooks/twilio/dial", state.public_url),
            DialOptions {
                screen_url: screen.as_deref(),
                machine_detection: biz.machine_detection,
            },
        ),
        Answer::Missed => missed_twiml(&state, biz),
    }))
}

/// `POST /hooks/twilio/screen`: the person who answered a forwarded call hears who is calling and must press
/// 1; a machine that answered is hung up on, so the call counts as missed.
pub async fn screen(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::Query)?;
    if twilio::answered_by(twilio::param(&v.params, "AnsweredBy"))
        == crate::model::AnsweredBy::Machine
    {
        return Ok(twiml(twilio::twiml_hangup()));
    }
    let parent =
        query(&req, "parent").ok_or_else(|| HttpError::BadRequest("missing parent".into()))?;
    let (provider, p) = (v.provider.clone(), parent.clone());
    let caller = super::read(&state, move |c| {
        crate::store::calls::by_sid(c, &provider, &p)
    })
    .await?
    .map(|call| call.from_raw)
    .unwrap_or_default();
    let accept: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("business", &v.business.id)
        .append_pair("parent", &parent)
        .finish();
    Ok(twiml(twilio::twiml_screen(
        &v.business.name,
        &caller,
        &format!("{}/hooks/twilio/screen-accept?{accept}", state.public_url),
    )))
}

/// `POST /hooks/twilio/screen-accept`: the key pressed on a screened call. 1 connects it; anything else hangs
/// up the forwarded leg, and the caller's call counts as missed.
pub async fn screen_accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::Query)?;
    let parent =
        query(&req, "parent").ok_or_else(|| HttpError::BadRequest("missing parent".into()))?;
    if twilio::digits(&v.params) != Some("1") {
        return Ok(twiml(twilio::twiml_hangup()));
    }
    apply_once(&state, v, move |c, env, now| {
        events::screened_in(c, env, &parent, now)?;
        Ok(Applied::default())
    })
    .await?;
    Ok(twiml(twilio::twiml_empty()))
}

/// Applies an event for the verified request's business in one transaction, once: a redelivery carrying
/// an idempotency token already seen changes nothing. Wakes the scheduler when a job was added.
async fn apply_once<F>(state: &AppState, v: Verified, f: F) -> Result<(), HttpError>
where
    F: FnOnce(&Conn<'_>, &Env<'_>, Millis) -> store::Result<Applied> + Send + 'static,
{
    apply_once_then(state, v, f, |_, _| Ok(())).await
}

/// [`apply_once`], then `answer` in the same transaction, redelivery or not: what the provider is told
/// follows what was recorded.
async fn apply_once_then<F, A, R>(
    state: &AppState,
    v: Verified,
    f: F,
    answer: A,
) -> Result<R, HttpError>
where
    F: FnOnce(&Conn<'_>, &Env<'_>, Millis) -> store::Result<Applied> + Send + 'static,
    A: FnOnce(&Conn<'_>, &Env<'_>) -> store::Result<R> + Send + 'static,
    R: Send + 'static,
{
    let now = state.clock.now();
    let Verified {
        business,
        provider,
        token,
        ..
    } = v;
    let public = state.public_url.clone();
    let id = business.id.clone();
    let (applied, answered) = state
        .store
        .write_async(move |c| {
            let env = Env {
                biz: &business,
                provider: &provider,
                public_url: &public,
            };
            let applied = if events::seen_token(c, token.as_deref(), now)? {
                Applied::default()
            } else {
                f(c, &env, now)?
            };
            Ok::<_, store::Error>((applied, answer(c, &env)?))
        })
        .await?;
    after(state, applied);
    if !applied.duplicate {
        // Nobody listening is fine.
        let _ = state.live.send(id);
    }
    Ok(answered)
}

async fn call_report(state: &AppState, v: Verified, hook: CallHook) -> Result<(), HttpError> {
    let report = twilio::parse_call(&v.params, hook).map_err(bad_request)?;
    apply_once(state, v, move |c, env, now| {
        events::call_report(c, env, &report, now)
    })
    .await
}

/// `POST /hooks/twilio/dial`: the forwarded leg ended. A missed call hears the greeting (and voicemail).
/// The answer follows the outcome recorded for the call (one decision: screening, machines and short
/// calls included), so a redelivered dial action gets the same TwiML.
pub async fn dial(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::To)?;
    let biz = v.business.clone();
    let report = twilio::parse_call(&v.params, CallHook::Dial).map_err(bad_request)?;
    let sid = report.call_sid.clone();
    let missed = apply_once_then(
        &state,
        v,
        move |c, env, now| events::call_report(c, env, &report, now),
        move |c, env| events::call_missed(c, env.provider, &sid),
    )
    .await?;
    Ok(twiml(if missed {
        missed_twiml(&state, &biz)
    } else {
        twilio::twiml_hangup()
    }))
}

/// `POST /hooks/twilio/call-status`: the call's final status; the backstop when no dial action came. Also
/// the status of the business's own outbound calls, which show it called a contact back.
pub async fn call_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::ToOrFrom)?;
    call_report(&state, v, CallHook::Status).await?;
    Ok(twiml(twilio::twiml_empty()))
}

/// `POST /hooks/twilio/recording`: a voicemail was recorded.
pub async fn recording(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::To)?;
    call_report(&state, v, CallHook::Recording).await?;
    Ok(twiml(twilio::twiml_hangup()))
}

/// `POST /hooks/twilio/sms`: an inbound text.
pub async fn inbound_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::To)?;
    let text = twilio::parse_inbound_text(&v.params).map_err(bad_request)?;
    apply_once(&state, v, move |c, env, now| {
        events::inbound_text(c, env, &text, now).map(|(_, a)| a)
    })
    .await?;
    Ok(twiml(twilio::twiml_empty()))
}

/// `POST /hooks/twilio/message-status`: a delivery receipt.
pub async fn message_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let v = verify(&state, &req, &body, Addressed::From)?;
    let receipt = twilio::parse_receipt(&v.params).map_err(bad_request)?;
    apply_once(&state, v, move |c, env, now| {
        events::delivery_receipt(c, env.provider, &receipt, now)
    })
    .await?;
    Ok(twiml(twilio::twiml_empty()))
}
