//! Inbound webhooks, for every provider: `POST /hooks/{provider}/{hook}`. The provider account checks the
//! request and reads it into a domain event; the event is applied in one transaction; the provider writes
//! the answer in its own format. Nothing is written unless the request checks out, and nothing is
//! acknowledged until it is committed. `/hooks/twilio/...` keeps working for Twilio numbers set up before
//! accounts had their own URLs: it is answered by whichever Twilio-format account signed it.

use super::{read, AppState, HttpError};
use crate::clock::Millis;
use crate::config::{BusinessConfig, Config};
use crate::events::{self, Answer, Applied, Env};
use crate::model::{CallReportKind, Direction};
use crate::providers::{Addressed, Event, ParseError, Parsed, Provider, Refused, Reply, Request};
use crate::store::{self, Conn};
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

/// The path segment of the URLs Twilio numbers were pointed at before accounts had their own.
const LEGACY_TWILIO: &str = "twilio";

/// A business of the configuration a webhook was checked against, shared rather than copied: the handler,
/// its write and its answer all read the same one, and a webhook costs no copy of the business's settings.
#[derive(Clone)]
struct Biz {
    config: Arc<Config>,
    index: usize,
}

impl Biz {
    fn of(config: &Arc<Config>, b: &BusinessConfig) -> Option<Biz> {
        let index = config.businesses.iter().position(|x| std::ptr::eq(x, b))?;
        Some(Biz {
            config: Arc::clone(config),
            index,
        })
    }
}

impl std::ops::Deref for Biz {
    type Target = BusinessConfig;
    fn deref(&self) -> &BusinessConfig {
        &self.config.businesses[self.index]
    }
}

/// A request that checked out: the account that sent it, what it says, and the business it is for.
struct Checked {
    account: String,
    provider: Arc<dyn Provider>,
    parsed: Parsed,
    business: Option<Biz>,
}

fn refused(r: Refused) -> HttpError {
    match r {
        Refused::Unsupported(why) => HttpError::UnsupportedMediaType(why),
        Refused::Forbidden(why) => HttpError::Forbidden(why),
    }
}

fn unreadable(e: ParseError) -> HttpError {
    match e {
        ParseError::Malformed(why) => HttpError::BadRequest(why),
        ParseError::Unsupported(why) => HttpError::UnsupportedMediaTypeOwned(why),
        ParseError::NoSuchHook(hook) => HttpError::NotFound(format!("no webhook named {hook:?}")),
    }
}

/// The accounts that may have sent a request to `/hooks/{segment}/...`: the account of that name, or for
/// the legacy Twilio path every account that speaks Twilio's format.
fn candidates(
    state: &AppState,
    config: &Config,
    segment: &str,
) -> Vec<(String, Arc<dyn Provider>)> {
    if let Some(p) = state.providers.get(segment) {
        return vec![(segment.to_string(), p)];
    }
    if segment != LEGACY_TWILIO {
        return vec![];
    }
    state
        .providers
        .all()
        .into_iter()
        .filter(|(name, _)| {
            config
                .providers
                .get(name)
                .is_some_and(|p| p.caps.twilio_webhooks)
        })
        .collect()
}

/// The business a webhook that came to `account` is for, and the direction of the call it reports when the
/// addressing decided it.
fn business_of(
    config: &Arc<Config>,
    account: &str,
    addressed: &Addressed,
) -> Result<Option<(Biz, Option<Direction>)>, HttpError> {
    if let Addressed::Call { from, to } = addressed {
        let found = match config.business_for_number(to) {
            Some(b) => Some((b, Direction::Inbound)),
            None => config
                .business_for_number(from)
                .or_else(|| config.business_for_staff_number(from))
                .map(|b| (b, Direction::Outbound)),
        };
        return match found {
            Some((b, direction)) => Ok(Biz::of(config, b).map(|b| (b, Some(direction)))),
            None => Err(HttpError::NotFound(format!(
                "neither {to} nor {from} is configured for any business"
            ))),
        };
    }
    let found = match addressed {
        Addressed::Nobody => return Ok(None),
        Addressed::Call { .. } => None,
        Addressed::Account { number } => {
            let users: Vec<&BusinessConfig> = config
                .businesses
                .iter()
                .filter(|b| {
                    config.provider_name(b) == account || config.sms_provider_name(b) == account
                })
                .collect();
            match (users.as_slice(), number) {
                ([only], _) => Some(*only),
                (_, Some(n)) => config.business_for_number(n),
                _ => None,
            }
        }
        Addressed::Business(id) => config.business(id),
        Addressed::Number { number, or } => config.business_for_number(number).or_else(|| {
            or.as_deref().and_then(|n| {
                config
                    .business_for_number(n)
                    .or_else(|| config.business_for_staff_number(n))
            })
        }),
    };
    match found {
        Some(b) => Ok(Biz::of(config, b).map(|b| (b, None))),
        None => Err(HttpError::NotFound(match addressed {
            Addressed::Number { number, .. } => {
                format!("the number {number} is not configured for any business")
            }
            Addressed::Account { .. } => format!(
                "no business uses the account {account:?} alone, and the webhook names no business number"
            ),
            Addressed::Business(_) | Addressed::Nobody | Addressed::Call { .. } => {
                "no such business".into()
            }
        })),
    }
}

/// A provider account and its name.
type Account = (String, Arc<dyn Provider>);

/// The accounts a request to `/hooks/{segment}/...` verifies with (at least one, or the refusal).
fn verified(
    state: &AppState,
    config: &Config,
    segment: &str,
    req: &Request<'_>,
) -> Result<Vec<Account>, HttpError> {
    let accounts = candidates(state, config, segment);
    if accounts.is_empty() {
        return Err(HttpError::NotFound(format!(
            "no provider account named {segment:?}"
        )));
    }
    let mut verified = Vec::new();
    let mut refusal = None;
    for (name, provider) in accounts {
        match provider.verify(req) {
            Ok(()) => verified.push((name, provider)),
            Err(Refused::Unsupported(why)) => return Err(HttpError::UnsupportedMediaType(why)),
            Err(r) => refusal = Some(r),
        }
    }
    if verified.is_empty() {
        tracing::warn!(
            path = req.url,
            "webhook refused: {}",
            refusal.map_or_else(String::new, |r| r.to_string())
        );
        return Err(refusal.map_or(HttpError::Forbidden("not signed"), refused));
    }
    Ok(verified)
}

/// Checks a request against the accounts that may have sent it and reads it.
fn check(state: &AppState, segment: &str, req: &Request<'_>) -> Result<Checked, HttpError> {
    let config = state.config.get();
    let mut verified = verified(state, &config, segment, req)?;
    let (first_name, first) = &verified[0];
    let mut parsed = first.parse(req).map_err(unreadable)?;
    let found = business_of(&config, first_name, &parsed.addressed)?;
    if let (Some((_, Some(direction))), Event::Call(report) | Event::Incoming(report)) =
        (&found, &mut parsed.event)
    {
        report.direction = *direction;
    }
    let business = found.map(|(b, _)| b);
    // The business's own account must have sent it: calls come from the account that reports them (a
    // second account's report of the same call would count it twice); texts and receipts from either.
    let (account, provider) = match &business {
        None => verified.swap_remove(0),
        Some(b) => {
            let own = match parsed.event {
                Event::Text(_) | Event::Receipt(_) | Event::Ignored => {
                    vec![config.provider_name(b), config.sms_provider_name(b)]
                }
                Event::Incoming(_)
                | Event::Call(_)
                | Event::ScreenAnswered { .. }
                | Event::ScreenKey { .. } => vec![config.provider_name(b)],
            };
            let Some(i) = verified
                .iter()
                .position(|(name, _)| own.contains(&name.as_str()))
            else {
                tracing::warn!(path = req.url, business = %b.id, "webhook refused: signed by another account");
                return Err(HttpError::Forbidden(
                    "signed by an account this business does not use",
                ));
            };
            verified.swap_remove(i)
        }
    };
    Ok(Checked {
        account,
        provider,
        parsed,
        business,
    })
}

fn answer(provider: &dyn Provider, reply: &Reply<'_>) -> HttpResponse {
    let a = provider.reply(reply);
    HttpResponse::Ok().content_type(a.content_type).body(a.body)
}

fn after(state: &AppState, applied: Applied) {
    if applied.due.is_some() {
        state.scheduler.wake();
    }
}

/// `POST /hooks/{provider}/{hook}`: every provider's webhooks, counted by account, hook and outcome. Labels
/// stay bounded: an account not configured is `unknown`, and the hook is named only when the request
/// checked out (anyone can put anything in a URL).
pub async fn hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let (segment, hook) = path.into_inner();
    let account = if state.providers.get(&segment).is_some() || segment == LEGACY_TWILIO {
        segment.clone()
    } else {
        "unknown".to_string()
    };
    let answer = receive(&state, &req, segment, hook.clone(), &body).await;
    let (outcome, hook) = match &answer {
        Ok(_) => ("ok", hook.as_str()),
        Err(HttpError::Unavailable(_)) => ("error", "-"),
        Err(_) => ("refused", "-"),
    };
    crate::metrics::inc(
        "textback_webhooks_received_total",
        &[("provider", &account), ("hook", hook), ("outcome", outcome)],
    );
    answer
}

async fn receive(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    segment: String,
    hook: String,
    body: &web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let state = state.clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    let url = format!("{}{path_and_query}", state.public_url);
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let request = Request {
        url: &url,
        hook: &hook,
        query: &query,
        headers: &headers,
        body,
    };
    // `textback doctor` proves the public URL reaches this server and that signatures made over it check
    // out: a signed ping is answered and changes nothing.
    if hook == "ping" {
        verified(&state, &state.config.get(), &segment, &request)?;
        return Ok(HttpResponse::Ok().content_type("text/plain").body("pong\n"));
    }
    let checked = check(&state, &segment, &request)?;
    // Redeliveries carrying the same provider key change nothing; the key is scoped to the route.
    let token = checked
        .parsed
        .idempotency_key
        .as_ref()
        .map(|t| format!("{}:{t}", req.path()));
    handle(&state, checked, token).await
}

async fn handle(
    state: &AppState,
    checked: Checked,
    token: Option<String>,
) -> Result<HttpResponse, HttpError> {
    let Checked {
        account,
        provider,
        parsed,
        business,
    } = checked;
    let Some(biz) = business else {
        return Ok(answer(provider.as_ref(), &Reply::Ack));
    };
    let ctx = Ctx {
        state,
        biz: biz.clone(),
        account,
        token,
    };
    match parsed.event {
        Event::Ignored => Ok(answer(provider.as_ref(), &Reply::Ack)),
        Event::Incoming(report) => {
            let call_sid = report.call_sid.clone();
            let now = state.clock.now();
            let (biz_w, account, public) =
                (biz.clone(), ctx.account.clone(), state.public_url.clone());
            let config = state.config.get();
            let (decided, applied) = state
                .store
                .write_async(move |c| {
                    let env = Env {
                        provider: &account,
                        ..Env::of(&config, &biz_w, &public)
                    };
                    events::incoming_call(c, &env, &report, now)
                })
                .await?;
            after(state, applied);
            let _ = state.live.send(biz.id.clone());
            let reply = match decided {
                Answer::Dial => Reply::Forward {
                    numbers: &biz.forward_to,
                    ring_secs: biz.ring_timeout.secs(),
                    screen: biz
                        .call_screening
                        .then_some((biz.id.as_str(), call_sid.as_str())),
                    machine_detection: biz.machine_detection,
                },
                Answer::Missed => Reply::Missed {
                    greeting: &biz.missed_greeting,
                    voicemail: biz.voicemail,
                },
            };
            Ok(answer(provider.as_ref(), &reply))
        }
        Event::Call(report) => {
            let kind = report.kind.clone();
            let sid = report.call_sid.clone();
            // Only a dial action's answer depends on the outcome; other reports are acknowledged.
            let dial_ended = matches!(kind, CallReportKind::DialEnded { .. });
            let missed = ctx
                .apply(
                    move |c, env, now| events::call_report(c, env, &report, now),
                    move |c, env| {
                        if dial_ended {
                            events::call_missed(c, env.provider, &sid)
                        } else {
                            Ok(false)
                        }
                    },
                )
                .await?;
            // After the forwarded leg ends, a missed call hears the greeting (and leaves a voicemail); the
            // answer follows the outcome recorded, so a redelivery gets the same one.
            let reply = match kind {
                CallReportKind::DialEnded { .. } if missed => Reply::Missed {
                    greeting: &biz.missed_greeting,
                    voicemail: biz.voicemail,
                },
                CallReportKind::DialEnded { .. } | CallReportKind::Recording { .. } => {
                    Reply::Hangup
                }
                CallReportKind::Status { .. }
                | CallReportKind::Ended { .. }
                | CallReportKind::Incoming => Reply::Ack,
            };
            Ok(answer(provider.as_ref(), &reply))
        }
        Event::ScreenAnswered { call, machine } => {
            if machine {
                return Ok(answer(provider.as_ref(), &Reply::Hangup));
            }
            let (account, c) = (ctx.account.clone(), call.clone());
            let caller = read(state, move |conn| {
                crate::store::calls::by_sid(conn, &account, &c)
            })
            .await?
            .map(|found| found.from_raw)
            .unwrap_or_default();
            Ok(answer(
                provider.as_ref(),
                &Reply::ScreenPrompt {
                    business_name: &biz.name,
                    caller: &caller,
                    call: (&biz.id, &call),
                },
            ))
        }
        Event::ScreenKey { call, accepted } => {
            if !accepted {
                return Ok(answer(provider.as_ref(), &Reply::Hangup));
            }
            ctx.apply(
                move |c, env, now| {
                    events::screened_in(c, env, &call, now)?;
                    Ok(Applied::default())
                },
                |_, _| Ok(()),
            )
            .await?;
            Ok(answer(provider.as_ref(), &Reply::Ack))
        }
        Event::Text(text) => {
            ctx.apply(
                move |c, env, now| events::inbound_text(c, env, &text, now).map(|(_, a)| a),
                |_, _| Ok(()),
            )
            .await?;
            Ok(answer(provider.as_ref(), &Reply::Ack))
        }
        Event::Receipt(receipt) => {
            ctx.apply(
                move |c, env, now| events::delivery_receipt(c, env, &receipt, now),
                |_, _| Ok(()),
            )
            .await?;
            Ok(answer(provider.as_ref(), &Reply::Ack))
        }
    }
}

/// What applying a webhook's event needs.
struct Ctx<'s> {
    state: &'s AppState,
    biz: Biz,
    account: String,
    token: Option<String>,
}

impl Ctx<'_> {
    /// Applies an event for the business in one transaction, once: a redelivery carrying an idempotency key
    /// already seen changes nothing. Then `answer` reads, in the same transaction, what the provider is to
    /// be told, redelivery or not. Wakes the scheduler when a job was added.
    async fn apply<F, A, R>(self, f: F, answer: A) -> Result<R, HttpError>
    where
        F: FnOnce(&Conn<'_>, &Env<'_>, Millis) -> store::Result<Applied> + Send + 'static,
        A: FnOnce(&Conn<'_>, &Env<'_>) -> store::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let now = self.state.clock.now();
        let Self {
            state,
            biz,
            account,
            token,
        } = self;
        let (public, config) = (state.public_url.clone(), state.config.get());
        let id = biz.id.clone();
        let (applied, answered) = state
            .store
            .write_async(move |c| {
                let env = Env {
                    provider: &account,
                    ..Env::of(&config, &biz, &public)
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
}
