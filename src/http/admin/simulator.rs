//! The simulator: a phone on screen for businesses on the simulator provider.

#[allow(clippy::wildcard_imports)]
use super::*;

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
    #[serde(flatten)]
    chrome: Chrome<'a>,
    businesses: Vec<SimBusiness>,
    business: String,
    number: String,
    from: String,
    /// What became of each call from this number, newest first.
    calls: Vec<String>,
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

/// The simulator's callers are drawn from +1 480 555 0100-0199 (numbers reserved for fiction): the first one
/// the business has never heard from, so a fresh page never plays a number that opted out in an earlier try.
fn fresh_caller(c: &store::Conn<'_>, business: &str) -> store::Result<String> {
    for n in 100..200 {
        let phone = format!("+14805550{n}");
        if contacts::find(c, business, &phone)?.is_none() {
            return Ok(phone);
        }
    }
    Ok("+14805550199".into())
}

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
        .map(|b| (*b).clone());
    let asked = crate::model::PhoneNumber::parse(&query.from)
        .ok()
        .map(|n| n.to_string());
    let (from, calls, thread) = match &chosen {
        Some(b) => {
            let b = b.clone();
            read(&state, move |c| {
                let from = match asked {
                    Some(n) => n,
                    None => fresh_caller(c, &b.id)?,
                };
                let Some(k) = contacts::find(c, &b.id, &from)? else {
                    return Ok((from, vec![], vec![]));
                };
                let thread = messages::for_contact(c, k.id)?;
                let pending = jobs::pending_for_contact(c, k.id)?;
                let mut outcomes = Vec::new();
                for call in calls::for_contact(c, k.id)?.iter().rev() {
                    let due = pending
                        .iter()
                        .find(|j| matches!(j.job, crate::model::Job::TextBack { call_id } if call_id == call.id))
                        .map(|j| -> store::Result<(Millis, String)> {
                            let open = b.schedule().is_open(call.started_at);
                            let quiet = b.quiet().contains(j.run_at);
                            let choice = crate::policy::choose_script(
                                open,
                                quiet,
                                contacts::returning(c, k.id, call.started_at)?,
                                b.returning_script.is_some(),
                            );
                            Ok((j.run_at, choice.describe(open, quiet)))
                        })
                        .transpose()?;
                    let sent_with = thread
                        .iter()
                        .find(|m| m.call_id == Some(call.id) && m.purpose == "textback")
                        .and_then(|m| m.script.as_deref());
                    outcomes.push(call_outcome(call, due, sent_with, b.tz()));
                }
                Ok((from, outcomes, thread))
            })
            .await?
        }
        None => (String::new(), vec![], vec![]),
    };
    let tz = chosen.as_ref().map_or(crate::zone::UTC, |b| b.tz());
    let ctx = SimulatorPage {
        chrome: Chrome::signed(&signed, "simulator", None, &state.config.get()),
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
        calls,
        thread: thread
            .into_iter()
            .filter(|m| m.status != crate::model::status::CANCELLED)
            .map(|m| SimMessage {
                when: crate::display::clock(m.created_at, tz),
                kind: if m.direction == "in" { "out" } else { "in" },
                body: m.body,
                detail: (m.direction == "out").then(|| {
                    let delivery = crate::display::delivery(&m.status);
                    match &m.script {
                        Some(script) => format!("{delivery} · {script}"),
                        None => delivery.to_string(),
                    }
                }),
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
    let signed = match signed_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let config = state.config.get();
    let Some(biz) = simulated(&config, &signed.user)
        .into_iter()
        .find(|b| b.id == form.business)
    else {
        return Ok(not_found(&state, &signed));
    };
    let from = match phone_or_page(&state, &signed, &form.from) {
        Ok(n) => n,
        Err(page) => return Ok(*page),
    };
    let action = path.into_inner();
    let (public, now) = (state.public_url.clone(), state.clock.now());
    let (to, status, body) = (
        biz.sender().to_string(),
        form.status.clone(),
        form.body.clone(),
    );
    let (b, f) = (biz.id.clone(), from.clone());
    let applied = state
        .store
        .write_async(move |c| {
            let env = Env::of(&config, &biz, &public);
            let report = |kind| crate::model::CallReport {
                call_sid: String::new(),
                from: from.clone(),
                to: to.clone(),
                direction: crate::model::Direction::Inbound,
                caller_id: crate::model::CallerId::Unchecked,
                answered_by: crate::model::AnsweredBy::Unknown,
                kind,
            };
            match action.as_str() {
                "call" => {
                    let sid = sim_sid("CA");
                    let mut ring = report(crate::model::CallReportKind::Incoming);
                    ring.call_sid.clone_from(&sid);
                    let (_, first) = events::incoming_call(c, &env, &ring, now)?;
                    use crate::model::CallEnd;
                    let (end, talk_secs) = match status.as_str() {
                        "completed" => (CallEnd::Completed, Some(60)),
                        "busy" => (CallEnd::Busy, None),
                        _ => (CallEnd::NoAnswer, None),
                    };
                    let mut ended = report(crate::model::CallReportKind::DialEnded {
                        leg_id: Some(sim_sid("CA")),
                        end,
                        talk_secs,
                    });
                    ended.call_sid = sid;
                    let second = if env.biz.forward_to.is_empty() {
                        first
                    } else {
                        events::call_report(c, &env, &ended, now)?
                    };
                    Ok(second.due.or(first.due))
                }
                // Send with nothing typed: nothing to do.
                "text" if body.trim().is_empty() => Ok(None),
                "text" => {
                    let text = crate::model::InboundText {
                        message_sid: sim_sid("SM"),
                        from: from.clone(),
                        to: to.clone(),
                        body: body.clone(),
                        opt_out: None,
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
