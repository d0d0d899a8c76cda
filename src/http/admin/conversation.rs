//! A conversation's timeline and the actions staff take on it.

#[allow(clippy::wildcard_imports)]
use super::*;
use actix_web::ResponseError;

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
    #[serde(flatten)]
    chrome: Chrome<'a>,
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
            (Some(t), Some(r)) => Some(format!(
                "text-back {t}: {}",
                crate::model::SuppressReason::parse(r).map_or(r.as_str(), |r| r.describe())
            )),
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
            // Only https links are ever shown (webhooks refuse others; old rows might hold one).
            link: c.recording_url.filter(|u| u.starts_with("https://")),
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
        if let Some(script) = &m.script {
            detail.push_str(&format!(" · {script}"));
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
        chrome: Chrome::signed(&signed, "inbox", None, &state.config.get()),
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
    let signed = match signed_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
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
    let (public, author) = (state.public_url.clone(), signed.user.name.clone());
    let phone = contact.phone.clone();
    let result = state
        .store
        .write_async(move |c| {
            let env = Env::of(&config, &biz, &public);
            match action.as_str() {
                "reply" => events::staff_reply(c, &env, &phone, &form.body, now).map(Some),
                "booked" => events::mark_booked(c, &biz, &phone, value, now).map(|_| None),
                "lost" => events::mark_lost(c, &biz, &phone, now).map(|_| None),
                "urgent" => {
                    Ok(contacts::set_urgent(c, id, form.urgent == "1", now).map(|()| None)?)
                }
                "block" => {
                    events::set_blocked(c, &biz, &phone, form.blocked == "1", now).map(|_| None)
                }
                "note" if !form.body.trim().is_empty() => {
                    Ok(contacts::add_note(c, id, &author, form.body.trim(), now).map(|()| None)?)
                }
                "cancel-follow-ups" => {
                    Ok(events::cancel_follow_ups_by_staff(c, id, now).map(|()| None)?)
                }
                _ => Err(events::Error::Store(store::Error::NotFound)),
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
        Err(events::Error::Store(store::Error::NotFound)) => Ok(not_found(&state, &signed)),
        Err(e) => match HttpError::from(e) {
            // A refusal is shown on a page the user can go back from; an unusable store is a 503.
            HttpError::Unavailable(cause) => Err(HttpError::Unavailable(cause)),
            refusal => Ok(error_page(
                &state,
                refusal.status_code(),
                Some(&signed),
                "Not done",
                &refusal.to_string(),
            )),
        },
    }
}
